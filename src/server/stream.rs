//! `Stream`: one connection's socket seen through its TLS session (or not),
//! as blocking-style `Read`/`Write` that answer `WouldBlock` instead of
//! blocking. tungstenite and the HTTP code both use it.
//!
//! Contracts (see style.md §2):
//! 1. `read` returns plaintext, `Ok(0)` at end of stream, `WouldBlock` when
//!    neither the TLS session nor the socket has more now.
//! 2. `write` never returns `Ok(0)` for a non-empty buffer: a full TLS buffer
//!    whose bytes the socket cannot take is `WouldBlock` (tungstenite reads
//!    `Ok(0)` as a dead peer).
//! 3. `flush` pushes pending TLS records to the socket until none is left
//!    or the socket would block.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use super::tls::TlsSession;

pub struct Stream<'a> {
    pub socket: &'a mut TcpStream,
    pub tls: Option<&'a mut TlsSession>,
    /// Set when the peer's end of stream was seen.
    pub eof: &'a mut bool,
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(tls) = self.tls.as_deref_mut() {
            return tls.read(self.socket, buf, self.eof);
        }
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
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(tls) = self.tls.as_deref_mut() {
            return tls.write(self.socket, buf);
        }
        loop {
            return match self.socket.write(buf) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other,
            };
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => tls.flush(self.socket),
            None => Ok(()),
        }
    }
}

/// `WouldBlock`: the OS says "not now", not an error.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}
