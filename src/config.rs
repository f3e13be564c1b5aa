//! Command-line flags and their `HEARTH_*` environment twins, turned into a
//! validated `Config`. Flags win over the environment. Validation only: nothing
//! here opens files or sockets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::StartupError;

/// Timeouts and size bounds of the network layer. Each is enforced in one place.
#[derive(Debug, Clone)]
pub struct NetLimits {
    /// Connections held at once; past it new ones are refused at once.
    pub max_connections: usize,
    /// A request head (or TLS handshake) must arrive within this (slowloris), else 408.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight closes after this.
    pub idle_timeout: Duration,
    /// Ping a WebSocket peer that has been silent this long.
    pub ws_ping_after: Duration,
    /// Close a WebSocket peer silent this long (1001 going away... see server).
    pub ws_silence_limit: Duration,
    /// Largest WebSocket message or frame; above it the connection closes with 1009.
    pub ws_max_message: usize,
    /// Unsent WebSocket output allowed per connection; above it, close 1008.
    pub ws_max_output: usize,
    /// Kernel send buffer per socket (`SO_SNDBUF`).
    pub socket_send_buffer: usize,
    /// Graceful shutdown gives connections this long to close.
    pub shutdown_grace: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ws_ping_after: Duration::from_secs(30),
            ws_silence_limit: Duration::from_secs(60),
            ws_max_message: 64 * 1024,
            ws_max_output: 1024 * 1024,
            socket_send_buffer: 64 * 1024,
            shutdown_grace: Duration::from_secs(4),
        }
    }
}

/// Chat-level limits (the hub's).
#[derive(Debug, Clone)]
pub struct ChatLimits {
    /// Messages per second a user may send (token bucket rate).
    pub rate_per_sec: f64,
    /// Token bucket burst.
    pub burst: f64,
}

impl Default for ChatLimits {
    fn default() -> Self {
        ChatLimits { rate_per_sec: 20.0, burst: 40.0 }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub certs_dir: PathBuf,
    /// A certificate chain and key given by the user; else a local CA is made.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// False with `--no-tls` (behind a reverse proxy).
    pub tls: bool,
    pub log_level: log::LevelFilter,
    pub net: NetLimits,
    pub chat: ChatLimits,
    /// Sign-up policy to set at start (`open`, `invite`, `closed`); `None`
    /// keeps the stored one (the administrator may change it at runtime).
    pub signup: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            data_dir: PathBuf::from("data"),
            certs_dir: PathBuf::from("certs"),
            cert: None,
            key: None,
            tls: true,
            log_level: log::LevelFilter::Info,
            net: NetLimits::default(),
            chat: ChatLimits::default(),
            signup: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

pub const USAGE: &str = "\
hearth: a self-hosted chat server

Usage: hearth [OPTIONS]
       hearth admin list-users | reset-password USER | promote USER  [--data DIR]
       hearth backup FILE  [--data DIR]

Options (each has an environment twin, e.g. --listen and HEARTH_LISTEN):
  --listen ADDR          address and port to listen on   [default: 0.0.0.0:8443]
  --data DIR             where the database lives        [default: ./data]
  --certs DIR            where the local CA and certificate live [default: ./certs]
  --cert FILE --key FILE use this certificate chain and private key (PEM)
  --no-tls               plain HTTP, for running behind a reverse proxy
  --log-level LEVEL      error, warn, info, debug or trace [default: info]
  --max-connections N    connections held at once        [default: 10000]
  --rate N               chat messages per second per user [default: 20]
  --burst N              chat message burst per user     [default: 40]
  --signup POLICY        who may sign up: open, invite or closed [default: as stored, first run open]
  -h, --help             print this help
  -V, --version          print the version
";

/// Every flag that takes a value, with its environment twin.
const VALUE_FLAGS: &[(&str, &str)] = &[
    ("--listen", "HEARTH_LISTEN"),
    ("--data", "HEARTH_DATA"),
    ("--certs", "HEARTH_CERTS"),
    ("--cert", "HEARTH_CERT"),
    ("--key", "HEARTH_KEY"),
    ("--log-level", "HEARTH_LOG_LEVEL"),
    ("--max-connections", "HEARTH_MAX_CONNECTIONS"),
    ("--rate", "HEARTH_RATE"),
    ("--burst", "HEARTH_BURST"),
    ("--signup", "HEARTH_SIGNUP"),
];

/// Parses flags (without the program name) over the environment `env`.
pub fn parse_args(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Command, StartupError> {
    let mut values: Vec<(&'static str, String)> = Vec::new();
    let mut no_tls = env("HEARTH_NO_TLS").is_some_and(|v| truthy(&v));
    for (flag, var) in VALUE_FLAGS {
        if let Some(v) = env(var) {
            values.push((flag, v));
        }
    }
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--no-tls" => no_tls = true,
            _ => {
                let Some((flag, _)) = VALUE_FLAGS.iter().find(|(f, _)| *f == name) else {
                    return Err(StartupError::usage(format!(
                        "unknown option '{arg}'; run 'hearth --help' for the list"
                    )));
                };
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| StartupError::usage(format!("option '{flag}' needs a value")))?
                    }
                };
                values.retain(|(f, _)| f != flag);
                values.push((flag, value));
            }
        }
        i += 1;
    }

    let mut c = Config { tls: !no_tls, ..Config::default() };
    for (flag, value) in values {
        match flag {
            "--listen" => c.listen = parse_listen(&value)?,
            "--data" => c.data_dir = non_empty_path(flag, &value)?,
            "--certs" => c.certs_dir = non_empty_path(flag, &value)?,
            "--cert" => c.cert = Some(non_empty_path(flag, &value)?),
            "--key" => c.key = Some(non_empty_path(flag, &value)?),
            "--log-level" => {
                c.log_level = value.parse().map_err(|_| {
                    StartupError::usage(format!(
                        "'{value}' is not a log level; use error, warn, info, debug or trace"
                    ))
                })?
            }
            "--max-connections" => c.net.max_connections = parse_num(flag, &value, 1, 1_000_000)?,
            "--rate" => c.chat.rate_per_sec = parse_num::<u32>(flag, &value, 1, 10_000)? as f64,
            "--burst" => c.chat.burst = parse_num::<u32>(flag, &value, 1, 100_000)? as f64,
            "--signup" => {
                if !["open", "invite", "closed"].contains(&value.as_str()) {
                    return Err(StartupError::usage(format!(
                        "'{value}' is not a sign-up policy; use open, invite or closed"
                    )));
                }
                c.signup = Some(value)
            }
            _ => unreachable!("every VALUE_FLAGS entry is handled"),
        }
    }
    if c.cert.is_some() != c.key.is_some() {
        return Err(StartupError::usage(
            "--cert and --key go together: give both, or neither to use the local certificate authority",
        ));
    }
    if !c.tls && c.cert.is_some() {
        return Err(StartupError::usage("--no-tls cannot be combined with --cert/--key"));
    }
    Ok(Command::Run(Box::new(c)))
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

fn parse_listen(value: &str) -> Result<SocketAddr, StartupError> {
    if let Ok(addr) = value.parse() {
        return Ok(addr);
    }
    // A bare port means every interface.
    if let Ok(port) = value.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    Err(StartupError::usage(format!(
        "'{value}' is not an address to listen on; use IP:PORT, e.g. 0.0.0.0:8443 or 127.0.0.1:8443"
    )))
}

fn non_empty_path(flag: &str, value: &str) -> Result<PathBuf, StartupError> {
    if value.trim().is_empty() {
        return Err(StartupError::usage(format!("option '{flag}' needs a path")));
    }
    Ok(PathBuf::from(value))
}

fn parse_num<T>(flag: &str, value: &str, min: T, max: T) -> Result<T, StartupError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match value.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(StartupError::usage(format!(
            "option '{flag}' needs a number from {min} to {max}, not '{value}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, StartupError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse_args(&args, &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse(args, env).unwrap() {
            Command::Run(c) => *c,
            other => panic!("expected run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_tls_on_8443_with_local_dirs() {
        let c = run(&[], &[]);
        assert_eq!(c.listen.to_string(), "0.0.0.0:8443");
        assert!(c.tls);
        assert_eq!(c.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn flags_override_environment_twins() {
        let c = run(&["--listen", "127.0.0.1:9000"], &[("HEARTH_LISTEN", "1.2.3.4:1")]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        let c = run(&[], &[("HEARTH_LISTEN", "127.0.0.1:1234"), ("HEARTH_NO_TLS", "1")]);
        assert_eq!(c.listen.port(), 1234);
        assert!(!c.tls);
        let c = run(&["--data=/tmp/x", "--max-connections", "5"], &[]);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.net.max_connections, 5);
    }

    #[test]
    fn bad_flags_are_one_clear_sentence() {
        for args in [
            &["--bogus"][..],
            &["--listen"],
            &["--listen", "nowhere"],
            &["--log-level", "loud"],
            &["--max-connections", "0"],
            &["--cert", "a.pem"],
        ] {
            let err = parse(args, &[]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(!err.to_string().contains('\n'), "{args:?}: {err}");
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(&["--help"], &[]).unwrap(), Command::Help));
        assert!(matches!(parse(&["-V"], &[]).unwrap(), Command::Version));
    }
}
