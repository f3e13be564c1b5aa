//! `Stream`: one connection's socket seen through its TLS session (or not),
//! as blocking-style `Read`/`Write` that answer `WouldBlock` instead of
//! blocking. tungstenite and the HTTP code both use it.
//!
//! Contracts (see style.md §2):
//! 1. `read` returns plaintext, `Ok(0)` at end of stream, `WouldBlock` when
//!    neither rustls nor the socket has more now.
//! 2. `write` never returns `Ok(0)` for a non-empty buffer: a full TLS buffer
//!    whose bytes the socket cannot take is `WouldBlock` (tungstenite reads
//!    `Ok(0)` as a dead peer).
//! 3. `flush` pushes rustls's pending records to the socket until it is empty
//!    or the socket would block.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ServerConnection;

pub struct Stream<'a> {
    pub socket: &'a mut TcpStream,
    pub tls: Option<&'a mut ServerConnection>,
    /// Set when the peer's end of stream was seen.
    pub eof: &'a mut bool,
}

impl Stream<'_> {
    /// Writes rustls's pending records to the socket.
    fn flush_tls(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(());
        };
        while tls.wants_write() {
            match tls.write_tls(self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            loop {
                return match self.socket.read(buf) {
                    Ok(0) => {
                        *self.eof = true;
                        Ok(0)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => other,
                };
            }
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if *self.eof {
                return Ok(0);
            }
            // No plaintext buffered: pull more records from the socket.
            match tls.read_tls(self.socket) {
                Ok(0) => {
                    *self.eof = true;
                    // A last process_new_packets lets rustls notice a
                    // missing close_notify; the next reader() call says so.
                    tls.process_new_packets().map_err(io::Error::other)?;
                }
                Ok(_) => {
                    let state = tls.process_new_packets();
                    if let Err(e) = state {
                        // Send the alert rustls queued before giving up.
                        let _ = tls.write_tls(self.socket);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.tls.is_none() {
            loop {
                return match self.socket.write(buf) {
                    Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => other,
                };
            }
        }
        for _ in 0..2 {
            // unwrap: checked is_some above.
            let n = self.tls.as_deref_mut().unwrap().writer().write(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // rustls's buffer is at its limit: move records to the socket.
            self.flush_tls()?;
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}

/// `WouldBlock`: the OS says "not now", not an error.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}
