//! `Conn`: one client connection and its state machine.
//!
//! ```text
//!   accept ──> Http ──(101)──> WebSocket ──(close handshake)──┐
//!               │                  │                           v
//!               └──(error, close)──┴──(slow consumer, timeout)─> Closing ─> dropped
//! ```
//! The TLS handshake happens inside `Http`: rustls yields no plaintext until
//! it is done. A `Conn` never calls the application; it reports what it read
//! as `Input` values and takes output through `queue_*` methods, so the server
//! decides when bytes reach the socket (after the turn's commit).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::Message;

use super::stream::{would_block, Stream};
use super::tls::TlsSession;
use crate::config::NetLimits;
use crate::http::{self, Request, Response};

/// A connection's id: slab slot in the low 32 bits, a serial in the high 32,
/// so an id kept by the app never reaches a later connection in the same slot.
pub type ConnId = u64;

/// Bytes of plaintext HTTP input held at most (a whole head plus body, and a
/// little room for the next pipelined request).
const HTTP_INPUT_CAP: usize = 16 * 1024 + 64 * 1024 + 4 * 1024;
/// Bytes of HTTP responses waiting for the socket before we stop parsing
/// pipelined requests.
const HTTP_OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// WebSocket messages handled per connection per turn, so one busy peer
/// cannot starve the others; the rest wait for the next turn.
const WS_MESSAGES_PER_TURN: usize = 64;
/// Write-buffer room kept for the frames sent after a close is queued.
const CLOSE_FRAME_ROOM: usize = 2 * 128;

/// How long the peer has to answer our close frame...
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// ...extended while our earlier output still drains to it, up to this.
const CLOSE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// What a connection read, for the server to act on.
#[derive(Debug)]
pub enum Input {
    Request(Box<Request>),
    /// A request the parser refused: answer with its status, then close.
    BadRequest(http::HttpError),
    Text(tungstenite::Utf8Bytes),
    Binary(tungstenite::Bytes),
}

/// Where the connection is in its life.
pub enum Phase {
    Http(HttpState),
    WebSocket(Box<WsState>),
    /// Writing what is left, then closing (lingering to read the peer's rest).
    Closing(ClosingState),
}

pub struct HttpState {
    /// Received plaintext not yet parsed into requests.
    inbuf: Vec<u8>,
    /// A request handed out whose response has not been written yet:
    /// (HEAD?, keep-alive?). Later requests wait, so answers stay in order.
    pub awaiting: Option<(bool, bool)>,
}

pub struct WsState {
    ctx: tungstenite::protocol::WebSocketContext,
    /// Messages the app queued, not yet handed to tungstenite.
    queue: VecDeque<Message>,
    queued_bytes: usize,
    last_heard: Instant,
    ping_sent: bool,
    /// Input is left unread because of the per-turn message cap.
    pub more_input: bool,
    /// We sent a close frame and wait for the peer's.
    closing_since: Option<Instant>,
    /// The peer broke the protocol (size, UTF-8, framing): its input is no
    /// longer parsed, and the TCP connection closes once our close frame is out.
    failed: bool,
}

pub struct ClosingState {
    /// `shutdown(Write)` was done; now reading until EOF or the deadline.
    shut: bool,
}

pub struct Conn {
    pub id: ConnId,
    pub socket: TcpStream,
    pub tls: Option<Box<TlsSession>>,
    pub peer: SocketAddr,
    pub phase: Phase,
    /// Plaintext HTTP output the transport has not taken yet.
    out: Vec<u8>,
    /// When this connection's current timer fires (its meaning follows the phase).
    pub deadline: Instant,
    /// The peer closed its sending side.
    eof: bool,
    /// Output was queued since the last flush.
    pub dirty: bool,
    /// This connection was upgraded: the app must hear when it ends.
    pub was_websocket: bool,
}

/// Why a connection should be dropped now.
#[derive(Debug)]
pub enum Fatal {
    Io(io::Error),
    /// Peer finished (EOF, close handshake done).
    Done,
}

impl Conn {
    pub fn new(
        id: ConnId,
        socket: TcpStream,
        tls: Option<Box<TlsSession>>,
        peer: SocketAddr,
        now: Instant,
        limits: &NetLimits,
    ) -> Conn {
        Conn {
            id,
            socket,
            tls,
            peer,
            phase: Phase::Http(HttpState { inbuf: Vec::new(), awaiting: None }),
            out: Vec::new(),
            deadline: now + limits.header_timeout,
            eof: false,
            dirty: false,
            was_websocket: false,
        }
    }

    fn stream(&mut self) -> Stream<'_> {
        Stream { socket: &mut self.socket, tls: self.tls.as_deref_mut(), eof: &mut self.eof }
    }

    pub fn is_websocket(&self) -> bool {
        matches!(self.phase, Phase::WebSocket(_))
    }

    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing(_))
    }

    /// Reads what the socket has, and returns at most one HTTP request (the
    /// next waits until this one is answered) or up to a turn's worth of
    /// WebSocket messages. `scratch` is the loop's shared read buffer.
    pub fn read_input(
        &mut self,
        scratch: &mut [u8],
        now: Instant,
        limits: &NetLimits,
        inputs: &mut Vec<Input>,
    ) -> Result<(), Fatal> {
        match &mut self.phase {
            Phase::Http(_) => self.read_http(scratch, now, limits, inputs),
            Phase::WebSocket(ws) if ws.failed => self.read_discard(scratch),
            Phase::WebSocket(_) => self.read_ws(now, limits, inputs),
            Phase::Closing(_) => self.read_discard(scratch),
        }
    }

    fn read_http(
        &mut self,
        scratch: &mut [u8],
        now: Instant,
        limits: &NetLimits,
        inputs: &mut Vec<Input>,
    ) -> Result<(), Fatal> {
        loop {
            let Phase::Http(h) = &self.phase else {
                return Ok(());
            };
            if h.awaiting.is_some() || self.out.len() > HTTP_OUTPUT_HIGH_WATER {
                // Pipelined input stays in the kernel until the answers are
                // out; the next event (readable or writable) resumes here.
                return Ok(());
            }
            let parse_limits = http::Limits { max_head: 16 * 1024, max_body: 64 * 1024 };
            if !h.inbuf.is_empty() {
                match http::parse_request(&h.inbuf, &parse_limits) {
                    Ok(http::Parsed::Complete(req, used)) => {
                        let Phase::Http(h) = &mut self.phase else { unreachable!() };
                        h.inbuf.drain(..used);
                        if h.inbuf.is_empty() {
                            h.inbuf = Vec::new();
                        }
                        h.awaiting = Some((req.is_head(), req.keep_alive()));
                        inputs.push(Input::Request(req));
                        return Ok(());
                    }
                    Ok(http::Parsed::Incomplete) => {}
                    Err(e) => {
                        inputs.push(Input::BadRequest(e));
                        return Ok(());
                    }
                }
            }
            if self.eof {
                return self.end_of_input(now);
            }
            let was_empty = h.inbuf.is_empty();
            let room = HTTP_INPUT_CAP.saturating_sub(h.inbuf.len()).min(scratch.len());
            if room == 0 {
                // Parser said incomplete with a full buffer: cannot happen
                // with these limits, but never spin.
                inputs.push(Input::BadRequest(http::HttpError::HeadTooLarge));
                return Ok(());
            }
            let mut stream = self.stream();
            match std::io::Read::read(&mut stream, &mut scratch[..room]) {
                Ok(0) => {
                    self.eof = true;
                    return self.end_of_input(now);
                }
                Ok(n) => {
                    let Phase::Http(h) = &mut self.phase else { unreachable!() };
                    h.inbuf.extend_from_slice(&scratch[..n]);
                    if was_empty {
                        // A new request starts: it has header_timeout to arrive whole.
                        self.deadline = now + limits.header_timeout;
                    }
                }
                Err(e) if would_block(&e) => {
                    // The TLS handshake may have produced records to send.
                    self.dirty |= self.tls.as_ref().is_some_and(|t| t.wants_write());
                    return Ok(());
                }
                Err(e) => return Err(Fatal::Io(e)),
            }
        }
    }

    fn read_ws(&mut self, now: Instant, limits: &NetLimits, inputs: &mut Vec<Input>) -> Result<(), Fatal> {
        let mut count = 0;
        loop {
            let Phase::WebSocket(ws) = &mut self.phase else {
                return Ok(());
            };
            if count == WS_MESSAGES_PER_TURN {
                ws.more_input = true;
                return Ok(());
            }
            ws.more_input = false;
            let mut stream =
                Stream { socket: &mut self.socket, tls: self.tls.as_deref_mut(), eof: &mut self.eof };
            let result = ws.ctx.read(&mut stream);
            // Automatic pongs and close replies sit in the TLS session: flush later.
            self.dirty = true;
            let Phase::WebSocket(ws) = &mut self.phase else { unreachable!() };
            match result {
                Ok(msg) => {
                    ws.last_heard = now;
                    ws.ping_sent = false;
                    if ws.closing_since.is_none() {
                        self.deadline = now + limits.ws_ping_after;
                    }
                    count += 1;
                    match msg {
                        Message::Text(t) => inputs.push(Input::Text(t)),
                        Message::Binary(b) => inputs.push(Input::Binary(b)),
                        _ => {}
                    }
                }
                Err(tungstenite::Error::Io(e)) if would_block(&e) => return Ok(()),
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    // The close handshake is done. tungstenite wrote its
                    // close reply into the TLS session, not yet to the socket:
                    // `Closing` sends it, then the TLS close, then ends.
                    self.begin_closing(now);
                    return Ok(());
                }
                Err(tungstenite::Error::Capacity(_)) => {
                    self.fail_ws(CloseCode::Size, "message too big", now);
                    return Ok(());
                }
                Err(tungstenite::Error::Utf8(_)) => {
                    self.fail_ws(CloseCode::Invalid, "invalid UTF-8", now);
                    return Ok(());
                }
                Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => return Err(Fatal::Done),
                Err(tungstenite::Error::Protocol(_)) => {
                    self.fail_ws(CloseCode::Protocol, "protocol error", now);
                    return Ok(());
                }
                Err(tungstenite::Error::Io(e)) => return Err(Fatal::Io(e)),
                Err(_) => return Err(Fatal::Done),
            }
        }
    }

    /// The peer will send nothing more. A client may half-close right after
    /// its request: answers already queued still go out, then the connection
    /// ends (`flush` sees `eof`); with nothing to send it ends now.
    fn end_of_input(&mut self, now: Instant) -> Result<(), Fatal> {
        if self.output_pending() {
            self.begin_closing(now);
            Ok(())
        } else {
            Err(Fatal::Done)
        }
    }

    /// Bytes queued here or in the TLS session that the socket has not taken yet.
    pub fn output_pending(&self) -> bool {
        !self.out.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// In `Closing`: read and drop whatever the peer still sends, so closing
    /// does not reset a connection whose last response is still in flight.
    fn read_discard(&mut self, scratch: &mut [u8]) -> Result<(), Fatal> {
        loop {
            let mut stream = self.stream();
            match std::io::Read::read(&mut stream, scratch) {
                // The peer is done; what we still owe it goes out first.
                Ok(0) if self.output_pending() => return Ok(()),
                Ok(0) => return Err(Fatal::Done),
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(()),
                Err(_) => return Err(Fatal::Done),
            }
        }
    }

    /// Queues an HTTP response to the request in flight. Returns false when
    /// this connection was not waiting for one.
    pub fn queue_response(
        &mut self,
        resp: &Response,
        now: Instant,
        limits: &NetLimits,
        shutting_down: bool,
    ) -> bool {
        let Phase::Http(h) = &mut self.phase else {
            return false;
        };
        let Some((head_only, keep_alive)) = h.awaiting.take() else {
            return false;
        };
        let close = !keep_alive || shutting_down;
        resp.write_to(&mut self.out, head_only, close);
        self.dirty = true;
        if close {
            self.begin_closing(now);
        } else {
            self.deadline =
                if h.inbuf.is_empty() { now + limits.idle_timeout } else { now + limits.header_timeout };
        }
        true
    }

    /// Answers a request the parser refused, then closes.
    pub fn queue_error_and_close(&mut self, resp: &Response, now: Instant) {
        resp.write_to(&mut self.out, false, true);
        self.dirty = true;
        self.begin_closing(now);
    }

    /// Writes the 101 answer and switches to WebSocket. Bytes the client sent
    /// after its upgrade request are kept as the first frames.
    pub fn upgrade(&mut self, accept_key: &str, now: Instant, limits: &NetLimits) {
        let Phase::Http(h) = &mut self.phase else {
            return;
        };
        let leftover = std::mem::take(&mut h.inbuf);
        h.awaiting = None;
        let resp = Response::empty(101)
            .with_header("Upgrade", "websocket")
            .with_header("Connection", "Upgrade")
            .with_header("Sec-WebSocket-Accept", accept_key);
        resp.write_to(&mut self.out, false, false);
        self.dirty = true;
        let ctx = tungstenite::protocol::WebSocketContext::from_partially_read(
            leftover,
            Role::Server,
            Some(ws_config(limits)),
        );
        self.phase = Phase::WebSocket(Box::new(WsState {
            ctx,
            queue: VecDeque::new(),
            queued_bytes: 0,
            last_heard: now,
            ping_sent: false,
            more_input: false,
            closing_since: None,
            failed: false,
        }));
        self.deadline = now + limits.ws_ping_after;
        self.was_websocket = true;
    }

    /// Queues a WebSocket message. A connection whose queue would pass its
    /// bound is a slow consumer: it is closed with 1008 (it may reconnect and sync).
    pub fn queue_ws(&mut self, msg: Message, now: Instant, limits: &NetLimits) {
        let Phase::WebSocket(ws) = &mut self.phase else {
            return;
        };
        if ws.closing_since.is_some() {
            return;
        }
        let len = msg.len();
        if ws.queued_bytes + len > limits.ws_max_output {
            log::info!("closing slow consumer {} ({} bytes waiting)", self.peer, ws.queued_bytes);
            ws.queue.clear();
            ws.queued_bytes = 0;
            self.close_ws(CloseCode::Policy, "too slow: output limit exceeded", now);
            return;
        }
        ws.queued_bytes += len;
        ws.queue.push_back(msg);
        self.dirty = true;
    }

    /// Starts the WebSocket close handshake with `code`.
    pub fn close_ws(&mut self, code: CloseCode, reason: &'static str, now: Instant) {
        let Phase::WebSocket(ws) = &mut self.phase else {
            self.begin_closing(now);
            return;
        };
        if ws.closing_since.is_some() {
            return;
        }
        ws.queue.clear();
        ws.queued_bytes = 0;
        ws.closing_since = Some(now);
        // tungstenite drops a close frame that does not fit its full write
        // buffer (a slow consumer's). Nothing but the close frame and a pong
        // (each at most 127 bytes) is written after it: make room for them.
        ws.ctx.set_config(|c| c.max_write_buffer_size += CLOSE_FRAME_ROOM);
        let frame = CloseFrame { code, reason: reason.into() };
        let mut stream =
            Stream { socket: &mut self.socket, tls: self.tls.as_deref_mut(), eof: &mut self.eof };
        // The frame is queued even when the socket would block.
        let _ = ws.ctx.close(&mut stream, Some(frame));
        self.dirty = true;
        // The peer has a few seconds to answer the close frame.
        self.deadline = now + CLOSE_WAIT;
    }

    /// Fails the WebSocket (RFC 6455 §7.1.7): a close frame with `code`,
    /// then the TCP connection closes once the frame is out. The peer's input
    /// is discarded unread: tungstenite's read state may be mid-frame.
    fn fail_ws(&mut self, code: CloseCode, reason: &'static str, now: Instant) {
        self.close_ws(code, reason, now);
        if let Phase::WebSocket(ws) = &mut self.phase {
            ws.failed = true;
        }
    }

    /// Moves to `Closing`: finish writing, then shut down.
    pub fn begin_closing(&mut self, now: Instant) {
        if !self.is_closing() {
            self.phase = Phase::Closing(ClosingState { shut: false });
            self.deadline = now + std::time::Duration::from_secs(2);
            self.dirty = true;
        }
    }

    /// Writes queued output towards the socket: HTTP bytes first, then
    /// WebSocket messages, then TLS records. Stops at `WouldBlock`.
    pub fn flush(&mut self, now: Instant) -> Result<(), Fatal> {
        self.dirty = false;
        // 1. HTTP bytes (responses, the 101).
        if !self.out.is_empty() {
            let mut written = 0;
            let mut stream =
                Stream { socket: &mut self.socket, tls: self.tls.as_deref_mut(), eof: &mut self.eof };
            while written < self.out.len() {
                match stream.write(&self.out[written..]) {
                    Ok(n) => written += n,
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(Fatal::Io(e)),
                }
            }
            self.out.drain(..written);
            if self.out.is_empty() {
                self.out = Vec::new();
            } else {
                return self.flush_tls();
            }
        }
        // 2. WebSocket messages.
        if let Phase::WebSocket(ws) = &mut self.phase {
            let mut stream =
                Stream { socket: &mut self.socket, tls: self.tls.as_deref_mut(), eof: &mut self.eof };
            while let Some(msg) = ws.queue.pop_front() {
                let len = msg.len();
                match ws.ctx.write(&mut stream, msg) {
                    Ok(()) => ws.queued_bytes -= len,
                    // Buffered by tungstenite; the socket is full for now.
                    Err(tungstenite::Error::Io(e)) if would_block(&e) => {
                        ws.queued_bytes -= len;
                        break;
                    }
                    Err(tungstenite::Error::WriteBufferFull(m)) => {
                        ws.queue.push_front(*m);
                        break;
                    }
                    Err(tungstenite::Error::Io(e)) => return Err(Fatal::Io(e)),
                    Err(_) => return Err(Fatal::Done),
                }
            }
            let ended = match ws.ctx.flush(&mut stream) {
                // A failed connection ends once its close frame is written.
                Ok(()) => ws.failed,
                Err(tungstenite::Error::Io(e)) if would_block(&e) => false,
                // Handshake done; the last frame may still sit in the TLS session.
                Err(tungstenite::Error::ConnectionClosed) => true,
                Err(tungstenite::Error::Io(e)) => return Err(Fatal::Io(e)),
                Err(_) => return Err(Fatal::Done),
            };
            if ended {
                self.begin_closing(now);
            }
        }
        // 3. TLS records, and the end of a closing connection.
        self.flush_tls()?;
        if let Phase::Closing(c) = &mut self.phase {
            if !c.shut && self.out.is_empty() && !self.tls.as_ref().is_some_and(|t| t.wants_write()) {
                if let Some(tls) = self.tls.as_deref_mut() {
                    tls.send_close_notify();
                    let mut stream = Stream { socket: &mut self.socket, tls: Some(tls), eof: &mut self.eof };
                    let _ = stream.flush();
                }
                let _ = self.socket.shutdown(std::net::Shutdown::Write);
                c.shut = true;
                if self.eof {
                    return Err(Fatal::Done);
                }
            }
        }
        Ok(())
    }

    fn flush_tls(&mut self) -> Result<(), Fatal> {
        let mut stream = self.stream();
        match stream.flush() {
            Ok(()) => Ok(()),
            Err(e) if would_block(&e) => Ok(()),
            Err(e) => Err(Fatal::Io(e)),
        }
    }

    /// Whether a WebSocket connection left input unread this turn.
    pub fn has_more_input(&self) -> bool {
        matches!(&self.phase, Phase::WebSocket(ws) if ws.more_input)
    }

    /// Acts on an expired deadline. Returns `Err` when the connection must go now.
    pub fn on_deadline(&mut self, now: Instant, limits: &NetLimits) -> Result<(), Fatal> {
        match &mut self.phase {
            Phase::Http(h) => {
                let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
                if h.awaiting.is_some() {
                    // The app is still working on it (a slow hash): wait.
                    self.deadline = now + limits.header_timeout;
                    Ok(())
                } else if h.inbuf.is_empty() || handshaking {
                    // Idle keep-alive, a connection that never sent a byte of
                    // a request (browsers preconnect), or a TLS handshake that
                    // never finished: close without a word.
                    Err(Fatal::Done)
                } else {
                    // Slowloris: a request head that did not arrive in time.
                    let resp = Response::error(408, "timeout", "the request took too long to arrive");
                    self.queue_error_and_close(&resp, now);
                    Ok(())
                }
            }
            Phase::WebSocket(ws) => {
                if let Some(since) = ws.closing_since {
                    // A peer still reading what we sent before the close frame
                    // gets more time, up to a bound; one that stopped reading
                    // does not hold the connection.
                    let still_sending = self.tls.as_ref().is_some_and(|t| t.wants_write());
                    if still_sending && now.duration_since(since) < CLOSE_WAIT_MAX {
                        self.deadline = now + CLOSE_WAIT;
                        return Ok(());
                    }
                    // No close reply in time: linger a little (shut our side,
                    // drain theirs) so a late reader still gets what was sent
                    // instead of a reset.
                    self.begin_closing(now);
                    return Ok(());
                }
                if ws.ping_sent || now.duration_since(ws.last_heard) >= limits.ws_silence_limit {
                    log::info!("closing silent WebSocket {}", self.peer);
                    self.close_ws(CloseCode::Away, "no answer to ping", now);
                    return Ok(());
                }
                ws.ping_sent = true;
                let ping = Message::Ping(tungstenite::Bytes::from_static(b"hearth"));
                // Counted like any queued message: `flush` subtracts it.
                ws.queued_bytes += ping.len();
                ws.queue.push_back(ping);
                self.dirty = true;
                self.deadline = ws.last_heard + limits.ws_silence_limit;
                Ok(())
            }
            Phase::Closing(_) => Err(Fatal::Done),
        }
    }
}

/// tungstenite settings sized for a small board: a small eagerly allocated
/// read buffer, our message cap, and a bounded write buffer.
pub fn ws_config(limits: &NetLimits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(16 * 1024 + limits.ws_max_message + 4096)
        .max_message_size(Some(limits.ws_max_message))
        .max_frame_size(Some(limits.ws_max_message))
}

/// The accept key of a WebSocket handshake (RFC 6455 §4.2.2).
pub fn accept_key(client_key: &str) -> String {
    tungstenite::handshake::derive_accept_key(client_key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream as StdTcpStream};
    use std::time::Duration;

    /// A server `Conn` already upgraded to WebSocket over plain loopback TCP
    /// with a small send buffer, and the raw peer socket.
    fn ws_pair(limits: &NetLimits) -> (Conn, StdTcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = StdTcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (socket, addr) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        socket2::SockRef::from(&socket).set_send_buffer_size(4096).unwrap();
        let now = Instant::now();
        let mut conn = Conn::new(1, TcpStream::from_std(socket), None, addr, now, limits);
        conn.upgrade(&accept_key("dGhlIHNhbXBsZSBub25jZQ=="), now, limits);
        (conn, peer)
    }

    fn queue_len(conn: &Conn) -> usize {
        match &conn.phase {
            Phase::WebSocket(ws) => ws.queue.len(),
            _ => panic!("not a WebSocket"),
        }
    }

    /// Splits complete server frames (unmasked, under 126 bytes) off `buf`.
    fn frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while buf.len() >= 2 && buf.len() >= 2 + (buf[1] & 0x7f) as usize {
            let len = (buf[1] & 0x7f) as usize;
            assert!(len < 126, "unexpected long frame");
            out.push((buf[0] & 0x0f, buf[2..2 + len].to_vec()));
            buf.drain(..2 + len);
        }
        out
    }

    #[test]
    fn close_frame_is_sent_even_when_the_write_buffer_is_full() {
        let limits = NetLimits { ws_max_output: usize::MAX / 2, ..NetLimits::default() };
        let (mut conn, mut peer) = ws_pair(&limits);
        let now = Instant::now();
        // 22-byte texts are 24-byte frames: a write buffer too full for one
        // more has under 24 bytes free, and the close frame below is 24 bytes.
        let text = "0123456789abcdefghijkl";
        let mut full = false;
        for _ in 0..100_000 {
            conn.queue_ws(Message::text(text), now, &limits);
            conn.flush(now).unwrap();
            // tungstenite handed the message back: its buffer is full.
            if queue_len(&conn) == 1 {
                full = true;
                break;
            }
        }
        assert!(full, "the peer's socket never filled up");
        conn.close_ws(CloseCode::Away, "server shutting down", now);

        // The peer reads everything: the texts, then the close frame.
        let (mut buf, mut texts, mut head) = (Vec::new(), 0, true);
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(2);
        let close = loop {
            assert!(Instant::now() < deadline, "no close frame after {texts} texts");
            let _ = conn.flush(now);
            match peer.read(&mut chunk) {
                Ok(0) => panic!("connection ended without a close frame"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("peer read failed: {e}"),
            }
            if head {
                // The 101 answer comes first.
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                buf.drain(..end + 4);
                head = false;
            }
            let mut close = None;
            for (op, payload) in frames(&mut buf) {
                match op {
                    0x1 => texts += 1,
                    0x8 => close = Some(payload),
                    other => panic!("unexpected opcode {other}"),
                }
            }
            if let Some(payload) = close {
                break payload;
            }
        };
        assert!(texts > 1000, "only {texts} texts before the close");
        assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1001);
        assert_eq!(&close[2..], b"server shutting down");
    }
}
