//! The real `hearth` binary as a person starts it: flags, one-sentence
//! start-up errors with exit status 2, the banner, the certificate files,
//! and a graceful stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{tls_connect, ws_read_close, Client, TempDir, WAIT};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const BIN: &str = env!("CARGO_BIN_EXE_hearth");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A running `hearth` process, killed on drop if still running.
struct Hearth {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Hearth {
    /// Starts the binary in `dir` (its cwd) with a clean environment.
    fn spawn(dir: &Path, args: &[&str]) -> Hearth {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the hearth binary");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Hearth { child, stdout, stderr }
    }

    /// Waits (bounded) for the process to exit.
    fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "hearth still running after {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads stdout lines until one starts with `prefix` (bounded); returns
    /// every line read so far.
    fn stdout_until(&self, prefix: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with(prefix);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "no line starting with {prefix:?} on stdout; got {seen:?}, stderr {:?}",
                    drain(&self.stderr)
                ),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Hearth {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Forwards a pipe's lines to a channel from a helper thread.
fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The lines received so far, waiting briefly for a writer that just exited.
fn drain(rx: &Receiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        out.push(line);
    }
    out
}

/// Runs the binary to completion (bounded): status, stdout lines, stderr lines.
fn run(dir: &Path, args: &[&str]) -> (i32, Vec<String>, Vec<String>) {
    let mut h = Hearth::spawn(dir, args);
    let status = h.wait(Duration::from_secs(10));
    let code = status.code().expect("exited, not killed by a signal");
    (code, drain(&h.stdout), drain(&h.stderr))
}

/// Asserts a start-up failure: status 2, nothing on stdout, no panic, and
/// stderr ends with one line naming the problem. Log lines (INFO, when the
/// failure comes after the certificates were made) may precede it.
fn assert_startup_error(dir: &Path, args: &[&str], needle: &str) -> Vec<String> {
    let (code, out, err) = run(dir, args);
    assert_eq!(code, 2, "{args:?}: stderr {err:?}");
    assert!(out.is_empty(), "{args:?}: stdout {out:?}");
    assert!(!err.iter().any(|l| l.contains("panicked")), "{err:?}");
    let (last, logs) = err.split_last().expect("an error on stderr");
    assert!(last.starts_with("hearth: "), "{err:?}");
    assert!(last.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    for line in logs {
        assert!(line.contains("Z INFO "), "not a log line: {line:?}");
    }
    err
}

/// Flags for a server on a random loopback port with its files in `dir`.
fn serve_args(dir: &TempDir) -> Vec<String> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data".into(),
        dir.join("data").to_string_lossy().into_owned(),
        "--certs".into(),
        dir.join("certs").to_string_lossy().into_owned(),
    ]
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The address in the banner's `Listening on ADDR` line.
fn listening_addr(banner: &[String]) -> SocketAddr {
    let line = banner.last().unwrap();
    line.strip_prefix("Listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bad banner line {line:?}"))
}

#[test]
fn help_exits_0_and_prints_usage() {
    let dir = TempDir::new("help");
    let (code, out, err) = run(dir.path(), &["--help"]);
    assert_eq!(code, 0);
    assert!(out.iter().any(|l| l.starts_with("Usage: hearth")), "{out:?}");
    assert!(out.iter().any(|l| l.contains("--listen")), "{out:?}");
    assert!(err.is_empty(), "{err:?}");
}

#[test]
fn version_prints_the_version() {
    let dir = TempDir::new("version");
    let (code, out, _) = run(dir.path(), &["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out, [format!("hearth {VERSION}")]);
}

#[test]
fn unknown_flag_is_one_line_on_stderr_and_exit_2() {
    let dir = TempDir::new("flag");
    let err = assert_startup_error(dir.path(), &["--frobnicate"], "unknown option '--frobnicate'");
    assert_eq!(err.len(), 1, "exactly one line on stderr: {err:?}");
    // Nothing was created in the working directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn busy_port_is_exit_2_and_says_already_in_use() {
    let dir = TempDir::new("busy");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut args = serve_args(&dir);
    args[1] = taken.local_addr().unwrap().to_string();
    assert_startup_error(dir.path(), &as_strs(&args), "already in use");
}

#[test]
fn missing_cert_files_are_exit_2() {
    let dir = TempDir::new("nocert");
    let mut args = serve_args(&dir);
    let cert = dir.join("nope.pem").to_string_lossy().into_owned();
    let key = dir.join("nope-key.pem").to_string_lossy().into_owned();
    args.extend(["--cert".into(), cert, "--key".into(), key]);
    assert_startup_error(dir.path(), &as_strs(&args), "cannot read the certificate");
}

#[test]
fn garbage_key_file_is_exit_2() {
    let dir = TempDir::new("badkey");
    // A real certificate, made the way hearth makes its own.
    let made = dir.join("made");
    let now = hearth::clock::now_secs();
    hearth::certs::load(&made, None, &["localhost".to_string()], now).unwrap();
    std::fs::write(dir.join("key.pem"), "-----BEGIN NONSENSE-----\n").unwrap();
    let mut args = serve_args(&dir);
    args.extend([
        "--cert".into(),
        made.join("server.pem").to_string_lossy().into_owned(),
        "--key".into(),
        dir.join("key.pem").to_string_lossy().into_owned(),
    ]);
    assert_startup_error(dir.path(), &as_strs(&args), "is not a PEM private key");
}

#[test]
fn data_dir_that_cannot_be_written_is_exit_2() {
    let dir = TempDir::new("nodata");
    std::fs::write(dir.join("file"), "a regular file").unwrap();
    let mut args = serve_args(&dir);
    args[3] = dir.join("file/data").to_string_lossy().into_owned();
    assert_startup_error(dir.path(), &as_strs(&args), "cannot write to the data directory");
}

#[test]
fn banner_names_version_address_and_certificates_which_are_on_disk() {
    let dir = TempDir::new("banner");
    let args = serve_args(&dir);
    let h = Hearth::spawn(dir.path(), &as_strs(&args));
    let mut banner = h.stdout_until("Listening on ");
    let addr = listening_addr(&banner);
    assert_eq!(banner[0], format!("hearth {VERSION}"));
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    assert!(banner.contains(&format!("  https://127.0.0.1:{}", addr.port())), "{banner:?}");
    banner.extend(h.stdout_until("Local CA SHA-256:"));

    let certs = dir.join("certs");
    for f in ["ca-key.pem", "server-key.pem"] {
        let mode = std::fs::metadata(certs.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let ca = CertificateDer::from_pem_file(certs.join("ca.pem")).unwrap();
    let ca_line = format!("Local CA SHA-256:    {}", hearth::certs::fingerprint(&ca));
    assert!(banner.contains(&ca_line), "{banner:?}");

    // The certificate printed is the one served, and it chains to ca.pem.
    let tls = tls_connect(addr, &certs.join("ca.pem")).expect("TLS with the CA");
    let served = tls.conn.peer_certificates().unwrap()[0].clone();
    let cert_line = format!("Certificate SHA-256: {}", hearth::certs::fingerprint(&served));
    assert!(banner.contains(&cert_line), "{banner:?}");
    let r = Client::new(tls).get("/healthz");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
}

#[test]
fn sigterm_closes_websockets_with_1001_and_exits_0() {
    let dir = TempDir::new("sigterm");
    let args = serve_args(&dir);
    let mut h = Hearth::spawn(dir.path(), &as_strs(&args));
    let addr = listening_addr(&h.stdout_until("Listening on "));
    let ca = dir.join("certs/ca.pem");

    // The chat app's WebSocket wants a session: sign up for one.
    let mut c = Client::new(tls_connect(addr, &ca).unwrap());
    let body = br#"{"username":"alice","password":"correct horse battery"}"#;
    let r = c.request("POST", "/api/signup", &[("Content-Type", "application/json")], body);
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.json()["token"].as_str().expect("a token").to_string();

    let url = format!("wss://localhost:{}/ws", addr.port());
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let stream = tls_connect(addr, &ca).unwrap();
    let mut ws = match tungstenite::client::client_with_config(request, stream, None) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("WebSocket refused: {e}"),
    };

    let start = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &h.pid().to_string()]).status().unwrap();
    assert!(killed.success());
    assert_eq!(ws_read_close(&mut ws, WAIT), 1001);
    let _ = ws.read(); // sends our close reply
    let status = h.wait(WAIT);
    assert_eq!(status.code(), Some(0), "stderr: {:?}", drain(&h.stderr));
    assert!(start.elapsed() < WAIT, "took {:?}", start.elapsed());
}
