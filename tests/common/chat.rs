//! Helpers for the chat tests: the real chat server, in-process on loopback
//! TLS (`ChatServer`) or as the real binary in its own process
//! (`BinServer`, for kill -9 and signals); a JSON API client; a WebSocket
//! client that speaks the contract's frames.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth::chat::ChatApp;
use hearth::config::Config;
use hearth::server::{Handle, Server};
use hearth::store::Store;
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

use super::{
    is_timeout, local_config, request_bytes, tls_connect, Client, HttpResponse, ReadWrite, TempDir, WAIT,
};

pub const PASSWORD: &str = "correct horse battery";

/// Where a chat server listens, and how to trust it.
pub trait Target {
    fn addr(&self) -> std::net::SocketAddr;
    fn ca(&self) -> PathBuf;

    /// One request on a fresh TLS connection. `token` goes as a bearer token.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> HttpResponse {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(t) = token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        let body_bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        if body.is_some() {
            headers.push(("Content-Type", "application/json".into()));
        }
        let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.raw(&request_bytes(method, path, &hdrs, &body_bytes), method == "HEAD")
    }

    /// Sends raw request bytes on a fresh TLS connection and reads the answer.
    fn raw(&self, bytes: &[u8], head: bool) -> HttpResponse {
        let tls = tls_connect(self.addr(), &self.ca()).expect("TLS handshake");
        let mut client = Client::new(tls);
        client.send(bytes);
        client.read_response(head).expect("a response")
    }

    /// Signs `name` up and returns the session token.
    fn signup(&self, name: &str) -> String {
        let r =
            self.call("POST", "/api/signup", None, Some(&json!({"username": name, "password": PASSWORD})));
        assert_eq!(r.status, 201, "signup {name}: {}", r.text());
        r.json()["token"].as_str().expect("token").to_string()
    }

    fn login(&self, name: &str) -> String {
        let r = self.call("POST", "/api/login", None, Some(&json!({"username": name, "password": PASSWORD})));
        assert_eq!(r.status, 200, "login {name}: {}", r.text());
        r.json()["token"].as_str().expect("token").to_string()
    }

    /// Creates a room as `token`'s user; panics unless 201.
    fn create_room(&self, token: &str, name: &str, visibility: &str) -> Value {
        let body = json!({"name": name, "visibility": visibility});
        let r = self.call("POST", "/api/rooms", Some(token), Some(&body));
        assert_eq!(r.status, 201, "create room {name}: {}", r.text());
        r.json()["room"].clone()
    }

    /// A WebSocket authenticated by `token`; panics if refused.
    fn ws(&self, token: &str) -> ChatWs {
        self.try_ws(token, None).unwrap_or_else(|e| panic!("WebSocket refused: {e}"))
    }

    /// A WebSocket with an optional `Origin`; `Err` carries the refusal.
    fn try_ws(&self, token: &str, origin: Option<&str>) -> Result<ChatWs, String> {
        let tls = tls_connect(self.addr(), &self.ca()).map_err(|e| e.to_string())?;
        let mut req = format!("wss://localhost:{}/ws", self.addr().port()).into_client_request().unwrap();
        req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        let stream: Box<dyn ReadWrite> = Box::new(tls);
        match tungstenite::client::client_with_config(req, stream, None) {
            Ok((ws, _)) => Ok(ChatWs { ws }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                Err(format!("status {}", resp.status().as_u16()))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The chat server in-process, with its data in a temp dir.
pub struct ChatServer {
    pub addr: std::net::SocketAddr,
    pub dir: TempDir,
    pub handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Target for ChatServer {
    fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
    fn ca(&self) -> PathBuf {
        self.dir.join("certs/ca.pem")
    }
}

impl ChatServer {
    pub fn start() -> ChatServer {
        ChatServer::start_with(|_| {}, |_| {})
    }

    /// `tweak` changes the config; `hook` sees the store before the app starts.
    pub fn start_with(tweak: impl FnOnce(&mut Config), hook: impl FnOnce(&Store)) -> ChatServer {
        let dir = TempDir::new("chat");
        let mut config = local_config(&dir);
        tweak(&mut config);
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let prepared = hearth::prepare_tls(&config).expect("prepare TLS");
        let store = Store::open(&config.data_dir).expect("open the store");
        hook(&store);
        let app = ChatApp::new(store, config.chat.clone(), config.signup.as_deref()).expect("load the app");
        let server = Server::bind(&config, prepared.tls, prepared.site, app).expect("bind");
        let addr = server.local_addr();
        let handle = server.handle();
        let thread =
            std::thread::Builder::new().name("hearth-chat".into()).spawn(move || server.run()).unwrap();
        ChatServer { addr, dir, handle, thread: Some(thread) }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Graceful stop, bounded.
    pub fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + WAIT;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(t.is_finished(), "the chat server did not stop within {WAIT:?}");
            t.join().expect("server thread").expect("event loop");
        }
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.handle.shutdown();
            if let Some(t) = self.thread.take() {
                let deadline = Instant::now() + WAIT;
                while !t.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// The real `hearth` binary in its own process, on a port it picked.
pub struct BinServer {
    pub child: Child,
    pub addr: std::net::SocketAddr,
    pub certs: PathBuf,
}

impl Target for BinServer {
    fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
    fn ca(&self) -> PathBuf {
        self.certs.join("ca.pem")
    }
}

impl BinServer {
    /// Starts `hearth --listen 127.0.0.1:PORT --data DATA --certs CERTS`
    /// (port 0: any) and waits (bounded) for its banner.
    pub fn start(data: &Path, certs: &Path, port: u16, extra: &[&str]) -> BinServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data")
            .arg(data)
            .arg("--certs")
            .arg(certs)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hearth");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a.parse().expect("address in the banner"),
            Err(_) => {
                let _ = child.kill();
                panic!("hearth printed no 'Listening on' line within 10 s");
            }
        };
        BinServer { child, addr, certs: certs.to_path_buf() }
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BinServer {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// A WebSocket client that speaks JSON frames.
pub struct ChatWs {
    pub ws: WebSocket<Box<dyn ReadWrite>>,
}

impl ChatWs {
    pub fn send(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string().into())).expect("send a frame");
    }

    pub fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::Text(text.to_string().into())).expect("send a frame");
    }

    /// The next JSON frame within `within`, or `None` on timeout.
    pub fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("JSON frame")),
                Ok(Message::Close(c)) => panic!("closed by the server: {c:?}"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(e) => panic!("WebSocket failed: {e}"),
            }
        }
    }

    /// The next frame of `kind`, skipping others; panics after `WAIT`.
    pub fn expect(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(v) if v["type"] == kind => return v,
                Some(_) => {}
                None => panic!("no '{kind}' frame within {WAIT:?}"),
            }
        }
    }

    /// Frames of `kind` collected until `count` arrived; panics after `WAIT`.
    pub fn collect(&mut self, kind: &str, count: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < count {
            out.push(self.expect(kind));
        }
        out
    }

    /// Asserts that no frame of `kind` arrives within `within`.
    pub fn expect_no(&mut self, kind: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while let Some(v) = self.next(deadline.saturating_duration_since(Instant::now())) {
            assert_ne!(v["type"], kind, "unexpected frame: {v}");
            if Instant::now() >= deadline {
                break;
            }
        }
    }

    /// Reads until the server's close frame; returns its code.
    pub fn close_code(&mut self) -> u16 {
        super::ws_read_close(&mut self.ws, WAIT)
    }
}
