//! Clients of the wire contract over ws or wss: a WebSocket with a bearer
//! token, and a minimal HTTP/1.1 keep-alive client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Ws = WebSocketStream<Box<dyn Io>>;

/// How to reach the server.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    pub fn new(addr: SocketAddr, ca: Option<&Path>) -> Result<Target, String> {
        let tls = match ca {
            None => None,
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                let der = CertificateDer::from_pem_file(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
                roots.add(der).map_err(|e| e.to_string())?;
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let cfg = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Some(Arc::new(cfg))
            }
        };
        Ok(Target { addr, tls })
    }

    pub async fn stream(&self) -> Result<Box<dyn Io>, String> {
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(cfg) => {
                let connector = tokio_rustls::TlsConnector::from(cfg.clone());
                let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
                let tls = connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
                Ok(Box::new(tls))
            }
        }
    }

    pub async fn ws(&self, token: &str) -> Result<Ws, String> {
        let stream = self.stream().await?;
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let mut req = format!("{scheme}://localhost:{}/ws", self.addr.port())
            .into_client_request()
            .map_err(|e| e.to_string())?;
        req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().map_err(|_| "header")?);
        let cfg = WebSocketConfig::default().read_buffer_size(16 * 1024).write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(cfg))
            .await
            .map_err(|e| format!("upgrade: {e}"))?;
        Ok(ws)
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Http {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Http {
    pub async fn connect(t: &Target) -> Result<Http, String> {
        Ok(Http { stream: t.stream().await?, buf: Vec::with_capacity(64 * 1024) })
    }

    /// Sends a request and returns (status, body).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        self.stream.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        self.stream.flush().await.map_err(|e| e.to_string())?;
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let status: u16 =
                    head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + len {
                    self.fill().await?;
                }
                let body = self.buf[end + 4..end + 4 + len].to_vec();
                self.buf.drain(..end + 4 + len);
                return Ok((status, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}
