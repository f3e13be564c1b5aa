//! `TlsSession`: one connection's TLS, on rustls's *unbuffered* API so that
//! the buffers are ours. rustls's buffered `ServerConnection` keeps a 4 KiB
//! receive buffer per connection for its whole life; here every buffer is
//! freed as soon as it is empty, so an idle connection holds only the
//! session's keys (see `docs/benchmarks.md`, bytes per idle connection).
//!
//! Buffers, each bounded:
//! - `incoming`: TLS bytes read from the socket, not yet a whole record
//!   (at most one record plus one read, about 34 KiB);
//! - `plain`: decrypted application data not yet taken by the reader (what
//!   the records in `incoming` held);
//! - `outgoing`: TLS records not yet taken by the socket; `write` answers
//!   `WouldBlock` past `OUTGOING_LIMIT`.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

/// Outgoing TLS bytes held before `write` pushes back with `WouldBlock`.
pub const OUTGOING_LIMIT: usize = 32 * 1024;
/// Plaintext bytes encrypted per record (the TLS maximum).
const RECORD_PLAINTEXT: usize = 16 * 1024;
/// One socket read.
const READ_CHUNK: usize = 16 * 1024;

pub struct TlsSession {
    conn: UnbufferedServerConnection,
    incoming: Vec<u8>,
    plain: Vec<u8>,
    plain_pos: usize,
    outgoing: Vec<u8>,
    out_pos: usize,
    /// The peer sent close_notify.
    peer_closed: bool,
}

/// What the state machine wants next.
enum Step {
    /// `n` bytes of the caller's data were encrypted.
    Wrote(usize),
    /// Nothing more without more bytes from the socket.
    NeedInput,
    /// The session is over.
    Closed,
}

/// What to do when rustls is ready for application data.
#[derive(Clone, Copy)]
enum Action<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl TlsSession {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            plain: Vec::new(),
            plain_pos: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            peer_closed: false,
        })
    }

    /// Whether TLS records wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.outgoing.len()
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues a close_notify alert (sent by the next `flush`).
    pub fn send_close_notify(&mut self) {
        let _ = self.process(Action::CloseNotify);
    }

    /// Drives rustls over `incoming` until it needs more input or has done
    /// `action`: decrypted data goes to `plain`, handshake records and
    /// encrypted data to `outgoing`.
    fn process(&mut self, action: Action) -> io::Result<Step> {
        // Bounded: every pass consumes input, emits output or returns.
        for _ in 0..1024 {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming);
            let step = match state {
                Err(e) => Err(tls_error(e)),
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    let mut result = Ok(None);
                    while let Some(record) = r.next_record() {
                        match record {
                            Ok(record) => self.plain.extend_from_slice(record.payload),
                            Err(e) => {
                                result = Err(tls_error(e));
                                break;
                            }
                        }
                    }
                    result
                }
                Ok(ConnectionState::ReadEarlyData(mut r)) => {
                    // Early data is not enabled; drop anything offered.
                    while let Some(Ok(_)) = r.next_record() {}
                    Ok(None)
                }
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    let start = self.outgoing.len();
                    let mut size = 4096;
                    loop {
                        self.outgoing.resize(start + size, 0);
                        match e.encode(&mut self.outgoing[start..]) {
                            Ok(n) => {
                                self.outgoing.truncate(start + n);
                                break Ok(None);
                            }
                            Err(EncodeError::InsufficientSize(s)) => size = s.required_size,
                            Err(other) => {
                                self.outgoing.truncate(start);
                                break Err(tls_error(other));
                            }
                        }
                    }
                }
                // Our `outgoing` keeps records in order, so they count as
                // transmitted once they are in it.
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    t.done();
                    Ok(None)
                }
                Ok(ConnectionState::WriteTraffic(mut w)) => match action {
                    Action::Nothing => Ok(Some(Step::NeedInput)),
                    Action::Encrypt(data) => {
                        let data = &data[..data.len().min(RECORD_PLAINTEXT)];
                        encrypt_into(&mut self.outgoing, data.len() + 64, |out| w.encrypt(data, out))
                            .map(|()| Some(Step::Wrote(data.len())))
                    }
                    Action::CloseNotify => {
                        encrypt_into(&mut self.outgoing, 64, |out| w.queue_close_notify(out))
                            .map(|()| Some(Step::Closed))
                    }
                },
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(Step::NeedInput)),
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Ok(None)
                }
                Ok(ConnectionState::Closed) => Ok(Some(Step::Closed)),
                Ok(_) => Ok(Some(Step::NeedInput)),
            };
            if discard > 0 {
                self.incoming.drain(..discard);
            }
            if self.incoming.is_empty() && self.incoming.capacity() > 0 {
                self.incoming = Vec::new();
            }
            match step {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        Err(tls_error("TLS state machine made no progress"))
    }

    /// Reads plaintext: `Ok(0)` at the end, `WouldBlock` when the socket has
    /// nothing more now.
    pub fn read(&mut self, socket: &mut TcpStream, buf: &mut [u8], eof: &mut bool) -> io::Result<usize> {
        loop {
            if self.plain_pos < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.plain_pos);
                buf[..n].copy_from_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
                self.plain_pos += n;
                if self.plain_pos == self.plain.len() {
                    self.plain = Vec::new();
                    self.plain_pos = 0;
                }
                return Ok(n);
            }
            if self.peer_closed || *eof {
                return Ok(0);
            }
            let step = match self.process(Action::Nothing) {
                Ok(step) => step,
                Err(e) => {
                    // rustls queued an alert for the peer: a last try to send it.
                    let _ = self.process(Action::Nothing);
                    let _ = self.flush(socket);
                    return Err(e);
                }
            };
            match step {
                Step::Closed => return Ok(0),
                Step::Wrote(_) => {}
                Step::NeedInput => {
                    if self.plain_pos < self.plain.len() || self.peer_closed {
                        continue;
                    }
                    let mut chunk = [0u8; READ_CHUNK];
                    match socket.read(&mut chunk) {
                        Ok(0) => *eof = true,
                        Ok(n) => self.incoming.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Encrypts up to one record of `buf`. Never `Ok(0)` for a non-empty
    /// buffer: a full outgoing buffer the socket cannot drain is `WouldBlock`.
    pub fn write(&mut self, socket: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.outgoing.len() - self.out_pos >= OUTGOING_LIMIT {
            self.flush(socket)?;
            if self.outgoing.len() - self.out_pos >= OUTGOING_LIMIT {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        match self.process(Action::Encrypt(buf))? {
            Step::Wrote(n) => Ok(n),
            Step::NeedInput => Err(io::ErrorKind::WouldBlock.into()),
            Step::Closed => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Writes pending records to the socket until they are out or it would block.
    pub fn flush(&mut self, socket: &mut TcpStream) -> io::Result<()> {
        while self.out_pos < self.outgoing.len() {
            match socket.write(&self.outgoing[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing = Vec::new();
        self.out_pos = 0;
        Ok(())
    }
}

/// Grows `out` until `f` fits its record at the end.
fn encrypt_into(
    out: &mut Vec<u8>,
    mut size: usize,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<()> {
    let start = out.len();
    loop {
        out.resize(start + size, 0);
        match f(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(s)) => size = s.required_size,
            Err(e) => {
                out.truncate(start);
                return Err(tls_error(e));
            }
        }
    }
}
