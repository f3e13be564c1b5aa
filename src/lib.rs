//! hearth: a self-hosted chat server in one binary.
//!
//! Data flows one way: socket → TLS → HTTP → router → handlers and hub →
//! store. [`server`] owns the sockets and the loop; the chat application
//! plugs into it through [`server::App`].

#![forbid(unsafe_code)]

pub mod auth;
pub mod certs;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod logger;
pub mod netinfo;
pub mod server;
pub mod store;

use std::path::Path;
use std::sync::Arc;

use config::Config;
use error::StartupError;
use server::{App, Server, SiteInfo};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// TLS and what the built-in pages show, ready for `Server::bind`.
pub struct Prepared {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub site: SiteInfo,
    /// What this start made ("certificate authority", "server certificate").
    pub created: Vec<&'static str>,
}

/// Loads or creates the TLS material named by `config`.
pub fn prepare_tls(config: &Config) -> Result<Prepared, StartupError> {
    let urls = netinfo::urls(config.listen, config.tls);
    if !config.tls {
        return Ok(Prepared {
            tls: None,
            site: SiteInfo { urls, ..SiteInfo::default() },
            created: Vec::new(),
        });
    }
    let user_pair = match (&config.cert, &config.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    let material =
        certs::load(&config.certs_dir, user_pair, &netinfo::certificate_names(), clock::now_secs())?;
    Ok(Prepared {
        tls: Some(material.config),
        site: SiteInfo {
            ca_pem: material.ca_pem,
            fingerprint: Some(material.fingerprint),
            ca_fingerprint: material.ca_fingerprint,
            urls,
        },
        created: material.created,
    })
}

/// Makes sure `dir` exists and can be written.
pub fn ensure_writable_dir(dir: &Path, flag: &str) -> Result<(), StartupError> {
    let fail = |e: std::io::Error| {
        StartupError::env(format!(
            "cannot write to the data directory {}: {}; choose another with {flag}",
            dir.display(),
            certs::plain_io(&e)
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".hearth-write-test");
    std::fs::write(&probe, b"ok").map_err(fail)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The lines printed at start, before anything else: what to open, where
/// the data is, which certificate is in use.
pub fn banner<A: App>(server: &Server<A>, config: &Config, site: &SiteInfo, data: &Path) -> String {
    let mut s = format!("hearth {VERSION}\n");
    let mut addr = config.listen;
    addr.set_port(server.local_addr().port());
    s.push_str("Open hearth in a browser at:\n");
    for url in netinfo::urls(addr, config.tls) {
        s.push_str(&format!("  {url}\n"));
    }
    s.push_str(&format!("Listening on {}\n", server.local_addr()));
    s.push_str(&format!("Data: {}\n", data.display()));
    if let Some(fp) = &site.fingerprint {
        s.push_str(&format!("Certificate SHA-256: {fp}\n"));
    }
    if let Some(fp) = &site.ca_fingerprint {
        s.push_str(&format!("Local CA SHA-256:    {fp}\n"));
        s.push_str("First time on a device? Open /trust on the server to stop the browser warning.\n");
    }
    if !config.tls {
        s.push_str("TLS is off (--no-tls): put a TLS reverse proxy in front of hearth.\n");
    }
    s
}

/// Each connection is a file descriptor: raise the soft limit (often 1024)
/// towards the hard one so `--max-connections` can be reached, and say so
/// when it cannot.
pub fn raise_file_limit(max_connections: usize) -> Option<String> {
    let want = max_connections as u64 + 64;
    match rlimit::increase_nofile_limit(want) {
        Ok(got) if got < want => Some(format!(
            "the open-file limit is {got}: at most about {} connections (raise it with LimitNOFILE= or ulimit -n)",
            got.saturating_sub(64)
        )),
        Ok(_) => None,
        Err(e) => Some(format!("cannot read the open-file limit: {e}")),
    }
}

/// Starts the chat server and runs it until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), StartupError> {
    // Nothing is logged before the banner: it is the first thing a person
    // sees. Start-up problems are `StartupError`s, printed by main.
    let limit_warning = raise_file_limit(config.net.max_connections);
    // The port first: a busy port is reported before anything is written.
    let listener = server::listen(config.listen)?;
    ensure_writable_dir(&config.data_dir, "--data")?;
    let prepared = prepare_tls(&config)?;
    let store = store::Store::open(&config.data_dir)?;
    let app = chat::ChatApp::new(store, config.chat.clone(), config.signup.as_deref())
        .map_err(|e| StartupError::env(format!("cannot read the database: {e}")))?;
    let mut server = Server::with_listener(listener, &config, prepared.tls, prepared.site.clone(), app)?;
    server.handle_signals()?;
    print!("{}", banner(&server, &config, &prepared.site, &config.data_dir));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    logger::init(config.log_level);
    for what in &prepared.created {
        log::info!("made a new {what} in {}", config.certs_dir.display());
    }
    log::info!("{}", server.app().summary());
    if let Some(w) = limit_warning {
        log::warn!("{w}");
    }
    server.run().map_err(|e| StartupError::env(format!("the event loop failed: {e}")))
}
