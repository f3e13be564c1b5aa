//! The event loop: one thread, one `mio::Poll`, every connection in a slab.
//!
//! Only this module touches sockets, mio and rustls I/O. It terminates TLS,
//! parses HTTP, serves the built-in routes (health, CA, trust page, static
//! assets), upgrades `/ws`, and hands everything else to an [`App`]: the chat
//! application, or the echo app used by the conformance suite.
//!
//! One loop turn:
//! 1. poll (sleeping until a socket, the waker or the nearest timer is due);
//! 2. accept, read and parse every ready connection, calling the app, which
//!    queues its answers in [`Ctx`];
//! 3. fire expired timers; drop connections that ended (telling the app);
//! 4. `App::end_turn` (the app commits its writes, or keeps them in the
//!    open transaction while the disk is busy with the last commit), then the queued
//!    answers go to the connections: nothing reaches a socket before the
//!    writes it reports are durable;
//! 5. flush every connection that has output, directly, and rely on
//!    edge-triggered WRITABLE readiness only for what is left over.

mod conn;
pub mod echo;
mod site;
mod stream;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

pub use conn::ConnId;
use conn::{Conn, Fatal, Input};

use crate::config::{Config, NetLimits};
use crate::error::StartupError;
use crate::http::{assets, Request, Response};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
/// The loop's shared read buffer.
const SCRATCH_SIZE: usize = 16 * 1024;
/// A turn longer than this is logged: it delays every connection.
const SLOW_TURN: Duration = Duration::from_millis(100);
/// Listen backlog: a burst of connections waits here instead of being refused.
const BACKLOG: i32 = 4096;

/// What the server asks of an application. Every method runs on the loop
/// thread and must not block; answers go into `ctx`.
pub trait App {
    /// Called once before the loop starts, with the waker helper threads use.
    fn start(&mut self, _waker: Arc<Waker>) {}
    /// An HTTP request the built-in routes did not take. `Some` answers now;
    /// `None` means the app answers later with `Ctx::respond` (after a hash, say).
    fn http(&mut self, ctx: &mut Ctx, conn: ConnId, peer: SocketAddr, req: Request) -> Option<Response>;
    /// May this request become a WebSocket? `Err` is the refusal to send.
    fn ws_accept(&mut self, ctx: &mut Ctx, conn: ConnId, req: &Request) -> Result<(), Response>;
    /// The WebSocket is open (the 101 is queued).
    fn ws_open(&mut self, _ctx: &mut Ctx, _conn: ConnId) {}
    fn ws_text(&mut self, ctx: &mut Ctx, conn: ConnId, text: tungstenite::Utf8Bytes);
    fn ws_binary(&mut self, _ctx: &mut Ctx, _conn: ConnId, _data: tungstenite::Bytes) {}
    /// The WebSocket is gone (any reason); `conn` will not be seen again.
    fn ws_closed(&mut self, _ctx: &mut Ctx, _conn: ConnId) {}
    /// The waker fired: collect helper threads' results.
    fn wake(&mut self, _ctx: &mut Ctx) {}
    /// The earliest time the app wants `on_timer`.
    fn next_timer(&self) -> Option<Instant> {
        None
    }
    fn on_timer(&mut self, _ctx: &mut Ctx) {}
    /// End of a loop turn: the app commits its writes (or keeps them for a
    /// later turn while the disk is busy) and holds back, from `ctx`, the
    /// answers that report them until they are durable; on failure those
    /// answers become errors.
    fn end_turn(&mut self, _ctx: &mut Ctx) {}
    /// The loop is ending (shutdown).
    fn shutdown(&mut self) {}
}

/// What the app wants done with connections, applied after `end_turn`.
#[derive(Debug)]
pub enum Out {
    Respond(ConnId, Response),
    Send(ConnId, Message),
    Close(ConnId, CloseCode, &'static str),
}

/// The app's view of the server during one turn.
pub struct Ctx {
    /// The time the turn started.
    pub now: Instant,
    /// Whether clients reach us over TLS (for `Secure` cookies and origins).
    pub tls: bool,
    /// Answers queued this turn, in order.
    pub out: Vec<Out>,
}

impl Ctx {
    pub fn respond(&mut self, conn: ConnId, resp: Response) {
        self.out.push(Out::Respond(conn, resp));
    }
    pub fn send(&mut self, conn: ConnId, msg: Message) {
        self.out.push(Out::Send(conn, msg));
    }
    pub fn send_text(&mut self, conn: ConnId, text: tungstenite::Utf8Bytes) {
        self.out.push(Out::Send(conn, Message::Text(text)));
    }
    pub fn close(&mut self, conn: ConnId, code: CloseCode, reason: &'static str) {
        self.out.push(Out::Close(conn, code, reason));
    }
}

/// Stops a running server from another thread (tests, embedding).
#[derive(Clone)]
pub struct Handle {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl Handle {
    /// Begins a graceful shutdown, as SIGTERM does.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// What the built-in routes serve besides the assets.
#[derive(Clone, Default)]
pub struct SiteInfo {
    pub ca_pem: Option<String>,
    pub fingerprint: Option<String>,
    pub ca_fingerprint: Option<String>,
    pub urls: Vec<String>,
}

pub struct Server<A: App> {
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    serial: u32,
    app: A,
    limits: NetLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    site: SiteInfo,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    signals: Option<UnixStream>,
    ctx: Ctx,
    scratch: Vec<u8>,
    inputs: Vec<Input>,
    /// Connections that left input unread last turn.
    again: Vec<usize>,
    /// Connections with queued output.
    dirty: Vec<usize>,
    /// Connections to drop at the end of the turn (slot, id).
    to_close: Vec<(usize, ConnId)>,
    /// No connection deadline is earlier than this.
    next_sweep: Option<Instant>,
    accept_paused_until: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    /// `HEARTH_DEV_STATIC`: serve the UI from this directory (development).
    dev_static: Option<std::path::PathBuf>,
}

impl<A: App> Server<A> {
    /// Binds the listening socket. `tls` is `None` for plain HTTP.
    pub fn bind(
        config: &Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        site: SiteInfo,
        app: A,
    ) -> Result<Server<A>, StartupError> {
        Server::with_listener(listen(config.listen)?, config, tls, site, app)
    }

    /// Like `bind`, on a socket from [`listen`] (bound first, so a busy port
    /// is reported before anything is written to disk).
    pub fn with_listener(
        listener: TcpListener,
        config: &Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        site: SiteInfo,
        mut app: A,
    ) -> Result<Server<A>, StartupError> {
        let local_addr = listener.local_addr().map_err(|e| StartupError::env(e.to_string()))?;
        let poll = Poll::new().map_err(|e| StartupError::env(format!("cannot start the event loop: {e}")))?;
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| StartupError::env(format!("cannot watch the listening socket: {e}")))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER)
                .map_err(|e| StartupError::env(format!("cannot start the event loop: {e}")))?,
        );
        app.start(waker.clone());
        let tls_on = tls.is_some();
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            conns: Slab::new(),
            serial: 0,
            app,
            limits: config.net.clone(),
            tls,
            site,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            signals: None,
            ctx: Ctx { now: Instant::now(), tls: tls_on, out: Vec::new() },
            scratch: vec![0; SCRATCH_SIZE],
            inputs: Vec::new(),
            again: Vec::new(),
            dirty: Vec::new(),
            to_close: Vec::new(),
            next_sweep: None,
            accept_paused_until: None,
            shutdown_deadline: None,
            dev_static: std::env::var_os("HEARTH_DEV_STATIC").map(std::path::PathBuf::from),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn handle(&self) -> Handle {
        Handle { waker: self.waker.clone(), stop: self.stop.clone() }
    }

    pub fn app(&self) -> &A {
        &self.app
    }

    /// Makes SIGINT and SIGTERM start a graceful shutdown.
    pub fn handle_signals(&mut self) -> Result<(), StartupError> {
        let (read, write) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| StartupError::env(format!("cannot set up signal handling: {e}")))?;
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let w = write.try_clone().map_err(|e| StartupError::env(e.to_string()))?;
            signal_hook::low_level::pipe::register(sig, w)
                .map_err(|e| StartupError::env(format!("cannot set up signal handling: {e}")))?;
        }
        read.set_nonblocking(true).map_err(|e| StartupError::env(e.to_string()))?;
        let mut read = UnixStream::from_std(read);
        self.poll
            .registry()
            .register(&mut read, SIGNALS, Interest::READABLE)
            .map_err(|e| StartupError::env(e.to_string()))?;
        self.signals = Some(read);
        Ok(())
    }

    /// Runs until shutdown. Errors here are the poll itself failing.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            self.ctx.now = now;
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {
                        if self.stop.load(Ordering::SeqCst) {
                            self.begin_shutdown(now);
                        }
                        self.app.wake(&mut self.ctx);
                    }
                    SIGNALS => {
                        self.drain_signals();
                        self.begin_shutdown(now);
                    }
                    Token(slot) => self.drive(slot, true),
                }
            }
            for slot in std::mem::take(&mut self.again) {
                self.drive(slot, false);
            }
            self.fire_timers(now);
            self.reap();
            let t_commit = Instant::now();
            self.finish_turn();
            let t_flush = Instant::now();
            self.flush_dirty();
            self.reap();
            let took = now.elapsed();
            if took > SLOW_TURN {
                log::warn!(
                    "slow loop turn: {} ms ({} events; app and commit {} ms, flush {} ms)",
                    took.as_millis(),
                    events.iter().count(),
                    t_flush.duration_since(t_commit).as_millis(),
                    t_flush.elapsed().as_millis()
                );
            }
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
        }
        // Whatever is still open is cut off; the app commits and closes.
        self.app.end_turn(&mut self.ctx);
        self.app.shutdown();
        log::info!("stopped");
        Ok(())
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.again.is_empty() || !self.ctx.out.is_empty() {
            return Some(Duration::ZERO);
        }
        [self.next_sweep, self.app.next_timer(), self.accept_paused_until, self.shutdown_deadline]
            .into_iter()
            .flatten()
            .min()
            // Round up so a timer is never woken for a millisecond early.
            .map(|t| t.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn accept_all(&mut self, now: Instant) {
        let Some(listener) = self.listener.as_mut() else {
            return;
        };
        loop {
            let (socket, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of file descriptors (EMFILE/ENFILE) or memory: pause
                    // accepting instead of spinning or dying.
                    log::error!("cannot accept connections: {e}; pausing for 100 ms");
                    self.accept_paused_until = Some(now + Duration::from_millis(100));
                    return;
                }
            };
            if self.conns.len() >= self.limits.max_connections {
                log::warn!("connection limit ({}) reached: refusing {peer}", self.limits.max_connections);
                drop(socket);
                continue;
            }
            let _ = socket.set_nodelay(true);
            let _ = socket2::SockRef::from(&socket).set_send_buffer_size(self.limits.socket_send_buffer);
            let tls = match &self.tls {
                Some(cfg) => match tls::TlsSession::new(cfg.clone()) {
                    Ok(session) => Some(Box::new(session)),
                    Err(e) => {
                        log::error!("TLS session set-up failed: {e}");
                        continue;
                    }
                },
                None => None,
            };
            let entry = self.conns.vacant_entry();
            let slot = entry.key();
            self.serial = self.serial.wrapping_add(1);
            let id = (u64::from(self.serial) << 32) | slot as u64;
            let mut socket = socket;
            if let Err(e) = self.poll.registry().register(
                &mut socket,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::error!("cannot watch a new connection: {e}");
                continue;
            }
            let conn = entry.insert(Conn::new(id, socket, tls, peer, now, &self.limits));
            log::debug!("connection {id:x} from {peer}");
            self.next_sweep = Some(self.next_sweep.map_or(conn.deadline, |t| t.min(conn.deadline)));
        }
    }

    /// Handles readiness (or leftover input) of one connection: write what
    /// waits, read, and act on each input.
    fn drive(&mut self, slot: usize, flush_first: bool) {
        let now = self.ctx.now;
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        }; // sporadic event
           // A readiness event: write what is new, and what an earlier flush
           // left behind when the socket was full (`flush` clears `dirty`).
        if flush_first && (conn.dirty || conn.output_pending()) {
            if let Err(f) = conn.flush(now) {
                self.fail(slot, f);
                return;
            }
        }
        loop {
            let conn = &mut self.conns[slot];
            let mut inputs = std::mem::take(&mut self.inputs);
            inputs.clear();
            let result = conn.read_input(&mut self.scratch, now, &self.limits, &mut inputs);
            let progressed = !inputs.is_empty();
            let http = !conn.is_websocket();
            for input in inputs.drain(..) {
                self.dispatch(slot, input);
            }
            self.inputs = inputs;
            if let Err(f) = result {
                self.fail(slot, f);
                return;
            }
            // An HTTP request answered at once lets the next pipelined one in.
            let waiting = matches!(&self.conns[slot].phase, conn::Phase::Http(h) if h.awaiting.is_some());
            if !(http && progressed && !waiting) {
                break;
            }
        }
        if self.conns[slot].has_more_input() {
            self.again.push(slot);
        }
        self.touch(slot);
    }

    fn dispatch(&mut self, slot: usize, input: Input) {
        let now = self.ctx.now;
        let id = self.conns[slot].id;
        match input {
            Input::Request(req) => self.on_request(slot, req),
            Input::BadRequest(e) => {
                log::debug!("bad request from {}: {}", self.conns[slot].peer, e.message());
                let resp = Response::error(e.status(), e.code(), &e.message());
                self.conns[slot].queue_error_and_close(&resp, now);
            }
            Input::Text(text) => self.app.ws_text(&mut self.ctx, id, text),
            Input::Binary(data) => self.app.ws_binary(&mut self.ctx, id, data),
        }
    }

    /// Routes one request: built-in routes are answered here, `/ws` is
    /// upgraded, the rest goes to the app.
    fn on_request(&mut self, slot: usize, req: Box<Request>) {
        let now = self.ctx.now;
        let conn = &mut self.conns[slot];
        let id = conn.id;
        let peer = conn.peer;
        let get = req.method == "GET" || req.method == "HEAD";
        let builtin = if !get {
            None
        } else {
            match req.path.as_str() {
                "/healthz" => Some(Response::text(200, "ok")),
                "/ca.pem" | "/ca.crt" | "/trust" => Some(site::respond(&self.site, &req)),
                "/ws" if req.method == "GET" => {
                    self.upgrade(slot, &req);
                    return;
                }
                path => match &self.dev_static {
                    Some(dir) => assets::respond_from_dir(dir, path),
                    None => assets::find(path).map(|a| assets::respond(a, &req)),
                },
            }
        };
        let resp = match builtin {
            Some(resp) => Some(resp),
            None => self.app.http(&mut self.ctx, id, peer, *req),
        };
        if let Some(resp) = resp {
            let shutting = self.shutdown_deadline.is_some();
            self.conns[slot].queue_response(&resp, now, &self.limits, shutting);
        }
    }

    fn upgrade(&mut self, slot: usize, req: &Request) {
        let now = self.ctx.now;
        let id = self.conns[slot].id;
        let shutting = self.shutdown_deadline.is_some();
        let refuse = |conn: &mut Conn, resp: Response, limits: &NetLimits| {
            conn.queue_response(&resp, now, limits, shutting);
        };
        if !req.header_has_token("upgrade", "websocket") || !req.header_has_token("connection", "upgrade") {
            let resp = Response::error(426, "upgrade_required", "this route speaks WebSocket only")
                .with_header("Upgrade", "websocket");
            return refuse(&mut self.conns[slot], resp, &self.limits);
        }
        if req.header("sec-websocket-version") != Some("13") {
            let resp = Response::error(426, "upgrade_required", "WebSocket version 13 is required")
                .with_header("Sec-WebSocket-Version", "13");
            return refuse(&mut self.conns[slot], resp, &self.limits);
        }
        let Some(key) = req.header("sec-websocket-key").filter(|k| k.len() == 24) else {
            let resp = Response::error(400, "bad_request", "missing or malformed Sec-WebSocket-Key");
            return refuse(&mut self.conns[slot], resp, &self.limits);
        };
        if shutting {
            let resp = Response::error(503, "unavailable", "the server is shutting down");
            return refuse(&mut self.conns[slot], resp, &self.limits);
        }
        if let Err(resp) = self.app.ws_accept(&mut self.ctx, id, req) {
            return refuse(&mut self.conns[slot], resp, &self.limits);
        }
        let accept = conn::accept_key(key);
        self.conns[slot].upgrade(&accept, now, &self.limits);
        self.app.ws_open(&mut self.ctx, id);
    }

    /// Ends the turn: the app commits, then the queued answers reach the
    /// connections. Answers may let pipelined requests in, whose answers are
    /// handled the same way, until nothing is left.
    fn finish_turn(&mut self) {
        loop {
            self.app.end_turn(&mut self.ctx);
            if self.ctx.out.is_empty() {
                return;
            }
            let now = self.ctx.now;
            let shutting = self.shutdown_deadline.is_some();
            for out in std::mem::take(&mut self.ctx.out) {
                let (id, slot) = match &out {
                    Out::Respond(id, _) | Out::Send(id, _) | Out::Close(id, _, _) => {
                        (*id, *id as u32 as usize)
                    }
                };
                let Some(conn) = self.conns.get_mut(slot).filter(|c| c.id == id) else {
                    continue;
                };
                match out {
                    Out::Respond(_, resp) => {
                        if conn.queue_response(&resp, now, &self.limits, shutting) {
                            // The next pipelined request, if any.
                            self.drive(slot, false);
                        }
                    }
                    Out::Send(_, msg) => conn.queue_ws(msg, now, &self.limits),
                    Out::Close(_, code, reason) => conn.close_ws(code, reason, now),
                }
                self.touch(slot);
            }
        }
    }

    fn flush_dirty(&mut self) {
        for slot in std::mem::take(&mut self.dirty) {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if !conn.dirty {
                continue;
            }
            if let Err(f) = conn.flush(self.ctx.now) {
                self.fail(slot, f);
            }
        }
    }

    /// Notes output to flush and an earlier deadline, after any change to a connection.
    fn touch(&mut self, slot: usize) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        if conn.dirty {
            self.dirty.push(slot);
        }
        let d = conn.deadline;
        self.next_sweep = Some(self.next_sweep.map_or(d, |t| t.min(d)));
    }

    fn fail(&mut self, slot: usize, why: Fatal) {
        if let Some(conn) = self.conns.get(slot) {
            if let Fatal::Io(e) = &why {
                log::debug!("connection {:x} from {}: {e}", conn.id, conn.peer);
            }
            self.to_close.push((slot, conn.id));
        }
    }

    /// Drops the connections that ended, telling the app about WebSockets.
    fn reap(&mut self) {
        for (slot, id) in std::mem::take(&mut self.to_close) {
            // (`Option::is_none_or` needs Rust 1.82; the MSRV is 1.80.)
            if self.conns.get(slot).is_none_or(|c| c.id != id) {
                continue;
            }
            let mut conn = self.conns.remove(slot);
            let _ = self.poll.registry().deregister(&mut conn.socket);
            if conn.was_websocket {
                self.app.ws_closed(&mut self.ctx, id);
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
            self.accept_all(now);
        }
        if self.app.next_timer().is_some_and(|t| now >= t) {
            self.app.on_timer(&mut self.ctx);
        }
        if self.next_sweep.is_none_or(|t| now < t) {
            return;
        }
        let mut next: Option<Instant> = None;
        let slots: Vec<usize> =
            self.conns.iter().filter(|(_, c)| c.deadline <= now).map(|(s, _)| s).collect();
        for slot in slots {
            if let Err(f) = self.conns[slot].on_deadline(now, &self.limits) {
                self.fail(slot, f);
            } else if self.conns[slot].dirty {
                self.dirty.push(slot);
            }
        }
        for (_, conn) in self.conns.iter() {
            next = Some(next.map_or(conn.deadline, |t| t.min(conn.deadline)));
        }
        self.next_sweep = next;
    }

    fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        log::info!("shutting down: closing {} connections", self.conns.len());
        self.shutdown_deadline = Some(now + self.limits.shutdown_grace);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let slots: Vec<usize> = self.conns.iter().map(|(s, _)| s).collect();
        for slot in slots {
            let conn = &mut self.conns[slot];
            match &conn.phase {
                conn::Phase::WebSocket(_) => conn.close_ws(CloseCode::Away, "server shutting down", now),
                conn::Phase::Http(h) if h.awaiting.is_some() => {} // answered with Connection: close
                _ => conn.begin_closing(now),
            }
            self.touch(slot);
        }
    }

    fn drain_signals(&mut self) {
        if let Some(s) = self.signals.as_mut() {
            let mut buf = [0u8; 64];
            while matches!(io::Read::read(s, &mut buf), Ok(n) if n > 0) {}
        }
    }
}

/// Binds with a large backlog; a busy port or a foreign address is a
/// sentence the user can act on.
pub fn listen(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    let fail = |e: io::Error| {
        let port = addr.port();
        StartupError::env(match e.kind() {
            io::ErrorKind::AddrInUse => format!(
                "port {port} is already in use (is hearth already running?); stop the other program or choose another port with --listen"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "not allowed to listen on port {port}; use a port above 1023 or give hearth the CAP_NET_BIND_SERVICE capability"
            ),
            io::ErrorKind::AddrNotAvailable => {
                format!("{} is not an address of this machine; check --listen", addr.ip())
            }
            _ => format!("cannot listen on {addr}: {}", crate::certs::plain_io(&e)),
        })
    };
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)
        .map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(TcpListener::from_std(socket.into()))
}
