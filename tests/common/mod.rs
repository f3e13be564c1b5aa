//! Helpers shared by the integration tests: temp dirs, an in-process echo
//! server on loopback, a blocking rustls client that trusts the server's
//! generated CA, raw HTTP/1.1 and WebSocket framing, and a tungstenite client.
//!
//! Every socket has read and write timeouts and every wait has a deadline, so
//! a broken server fails a test instead of hanging it.

#![allow(dead_code)] // each test crate uses its own subset

pub mod chat;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth::config::Config;
use hearth::server::echo::EchoApp;
use hearth::server::{Handle, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

/// How long one socket read or write may block before it reports a timeout.
pub const IO_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(5);

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

// ---------------------------------------------------------------- temp dirs

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("hearth-test-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------- the server

/// An in-process `Server<EchoApp>` on 127.0.0.1 with a random port, its
/// certificates in a temp dir. Dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    /// `certs_dir/ca.pem` (absent with `tls = false`).
    pub ca_pem: PathBuf,
    pub handle: Handle,
    pub tls: bool,
    thread: Option<JoinHandle<io::Result<()>>>,
    _dir: TempDir,
}

/// A server on 127.0.0.1, any port, its data and certificates in `dir`.
pub fn local_config(dir: &TempDir) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        certs_dir: dir.join("certs"),
        ..Config::default()
    }
}

impl TestServer {
    /// Starts an echo server; `tweak` adjusts the config (timeouts, TLS).
    pub fn echo(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = TempDir::new("server");
        let mut config = local_config(&dir);
        tweak(&mut config);
        let prepared = hearth::prepare_tls(&config).expect("prepare TLS");
        let server = Server::bind(&config, prepared.tls, prepared.site, EchoApp::default())
            .expect("bind the test server");
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("hearth-server".into())
            .spawn(move || server.run())
            .expect("spawn the server thread");
        TestServer {
            addr,
            ca_pem: config.certs_dir.join("ca.pem"),
            handle,
            tls: config.tls,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A plain TCP connection with timeouts.
    pub fn tcp(&self) -> TcpStream {
        tcp_connect(self.addr)
    }

    /// A TLS connection whose handshake is done and verified against the CA.
    pub fn tls(&self) -> TlsStream {
        tls_connect(self.addr, &self.ca_pem).expect("TLS handshake")
    }

    /// An HTTP client over TLS (or plain TCP when the server has no TLS).
    pub fn client(&self) -> Client<Box<dyn ReadWrite>> {
        if self.tls {
            Client::new(Box::new(self.tls()))
        } else {
            Client::new(Box::new(self.tcp()))
        }
    }

    /// A tungstenite WebSocket client on `/ws`.
    pub fn ws(&self) -> WebSocket<Box<dyn ReadWrite>> {
        self.try_ws().unwrap_or_else(|e| panic!("WebSocket handshake failed: {e}"))
    }

    /// Like `ws`, but a failed connection or handshake is an `Err`.
    pub fn try_ws(&self) -> Result<WebSocket<Box<dyn ReadWrite>>, String> {
        let (url, stream): (String, Box<dyn ReadWrite>) = if self.tls {
            let tls = tls_connect(self.addr, &self.ca_pem).map_err(|e| e.to_string())?;
            (format!("wss://localhost:{}/ws", self.port()), Box::new(tls))
        } else {
            (format!("ws://127.0.0.1:{}/ws", self.port()), Box::new(self.tcp()))
        };
        ws_handshake(&url, stream)
    }

    /// Starts a graceful shutdown and waits (bounded) for the loop to end.
    /// Returns how long it took; `Err` if it did not end within `within`,
    /// panicked or failed (never panics itself: `Drop` calls it).
    pub fn shutdown(&mut self, within: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        self.handle.shutdown();
        let Some(thread) = self.thread.take() else {
            return Err("already stopped".into());
        };
        while !thread.is_finished() {
            if start.elapsed() > within {
                // Leave the thread running; the caller reports it.
                return Err(format!("the loop did not end within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        match thread.join() {
            Ok(Ok(())) => Ok(start.elapsed()),
            Ok(Err(e)) => Err(format!("the event loop failed: {e}")),
            Err(_) => Err("the server thread panicked".into()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.shutdown(WAIT) {
                if std::thread::panicking() {
                    eprintln!("test server on {}: {e}", self.addr);
                } else {
                    panic!("test server on {}: {e}", self.addr);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- transports

/// A byte stream the helpers can drive: TCP or TLS.
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the test server");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A client config trusting only the CA in `ca_pem`.
pub fn client_config(ca_pem: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(ca_pem).expect("read the generated CA");
    roots.add(ca).expect("the CA is a usable trust anchor");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Connects and completes the TLS handshake for "localhost", verifying the
/// server's certificate against `ca_pem`.
pub fn tls_connect(addr: SocketAddr, ca_pem: &Path) -> io::Result<TlsStream> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(client_config(ca_pem), name).map_err(io::Error::other)?;
    let mut sock = tcp_connect(addr);
    let deadline = Instant::now() + WAIT;
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) && Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

// ---------------------------------------------------------------- HTTP

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Orderly end of stream (FIN, or TLS close_notify).
    Eof,
    /// Reset or a TLS stream cut short: also a close.
    Error(io::ErrorKind),
}

/// A raw HTTP/1.1 (and WebSocket frame) client over any stream. Bytes read
/// past one response stay buffered for the next (pipelining, frames after 101).
pub struct Client<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client { stream, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
        self.stream.flush().expect("flush to the server");
    }

    /// Sends a request with `Host` and (for a body) `Content-Length`, and reads the answer.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.send(&request_bytes(method, path, headers, body));
        self.read_response(method == "HEAD").unwrap_or_else(|e| panic!("{method} {path}: no response: {e}"))
    }

    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream. Timeouts
    /// are retried until `deadline`.
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if is_timeout(&e) && Instant::now() < deadline => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn take(&mut self, n: usize, deadline: Instant) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill(deadline)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads one response. `head` is true for the answer to a HEAD request
    /// (headers only, whatever Content-Length says).
    pub fn read_response(&mut self, head: bool) -> io::Result<HttpResponse> {
        let deadline = Instant::now() + WAIT;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill(deadline)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection ended inside a response head: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        };
        let raw = self.take(head_end, deadline)?;
        let text = String::from_utf8(raw).expect("response head is UTF-8");
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line: {status_line}");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {status_line}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(':').expect("header line has a colon");
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let mut resp = HttpResponse { status, headers, body: Vec::new() };
        let len: usize =
            resp.header("content-length").map(|v| v.parse().expect("numeric Content-Length")).unwrap_or(0);
        if !head {
            resp.body = self.take(len, deadline)?;
        }
        Ok(resp)
    }

    /// Waits (bounded by `within`) for the server to end the connection,
    /// ignoring nothing: any byte that arrives first fails the test.
    /// Returns how the stream ended and after how long.
    pub fn expect_closed(&mut self, within: Duration) -> (Ended, Duration) {
        let start = Instant::now();
        let deadline = start + within;
        // `fill` retries timeouts until the deadline.
        let ended = match self.fill(deadline) {
            Ok(0) => Ended::Eof,
            Ok(_) => panic!(
                "expected the connection to close, got bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) if is_timeout(&e) => panic!("connection still open after {within:?}"),
            Err(e) => Ended::Error(e.kind()),
        };
        (ended, start.elapsed())
    }

    // ------------------------------------------------------------ raw WebSocket

    /// Sends a WebSocket upgrade for `/ws` (plus `extra` bytes in the same
    /// write) and reads the 101.
    pub fn upgrade(&mut self, extra: &[u8]) -> HttpResponse {
        let mut bytes = request_bytes(
            "GET",
            "/ws",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            b"",
        );
        bytes.extend_from_slice(extra);
        self.send(&bytes);
        let resp = self.read_response(false).expect("an answer to the upgrade");
        assert_eq!(resp.status, 101, "upgrade refused: {}", resp.text());
        assert_eq!(
            resp.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "RFC 6455's sample key has this accept value"
        );
        resp
    }

    /// Reads one server frame: (opcode, payload). Server frames are unmasked.
    pub fn read_frame(&mut self, within: Duration) -> io::Result<(u8, Vec<u8>)> {
        let deadline = Instant::now() + within;
        let h = self.take(2, deadline)?;
        assert_eq!(h[1] & 0x80, 0, "server frames must not be masked");
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.take(2, deadline)?.try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.take(8, deadline)?.try_into().unwrap()) as usize,
            n => n as usize,
        };
        let payload = self.take(len, deadline)?;
        Ok((h[0] & 0x0f, payload))
    }
}

/// A masked client frame with FIN set.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The close code in a close frame's payload.
pub fn close_code(payload: &[u8]) -> u16 {
    assert!(payload.len() >= 2, "close frame without a code");
    u16::from_be_bytes([payload[0], payload[1]])
}

pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    s.push_str("\r\n");
    let mut bytes = s.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------- tungstenite

/// The client side of the opening handshake on an established stream.
pub fn ws_handshake<S: Read + Write>(url: &str, stream: S) -> Result<WebSocket<S>, String> {
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    match tungstenite::client::client_with_config(request, stream, None) {
        Ok((ws, resp)) if resp.status() == 101 => Ok(ws),
        Ok((_, resp)) => Err(format!("status {}", resp.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads the next message, retrying socket timeouts until `within` passes.
pub fn ws_read<S: Read + Write>(
    ws: &mut WebSocket<S>,
    within: Duration,
) -> Result<Message, tungstenite::Error> {
    let deadline = Instant::now() + within;
    loop {
        match ws.read() {
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) && Instant::now() < deadline => {}
            other => return other,
        }
    }
}

/// Reads until a close frame arrives (skipping data, pings and pongs) and
/// returns its code; panics if the connection ends without one.
pub fn ws_read_close<S: Read + Write>(ws: &mut WebSocket<S>, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws_read(ws, left) {
            Ok(Message::Close(Some(frame))) => return u16::from(frame.code),
            Ok(Message::Close(None)) => panic!("close frame without a code"),
            Ok(_) => {}
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    }
}

/// After a close frame was exchanged: reads until the server ends the
/// connection (bounded). True when it did within `within`.
pub fn ws_wait_end<S: Read + Write>(ws: &mut WebSocket<S>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match ws.read() {
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    false
}
