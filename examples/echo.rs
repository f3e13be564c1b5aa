//! A WebSocket echo server on hearth's own event loop, TLS and connection
//! code: the target of the Autobahn|Testsuite run (`.ci/autobahn.sh`).
//!
//! `cargo run --release --example echo -- --listen 127.0.0.1:9001 [--no-tls] --data DIR`
//! prints `listening on URL` and, with TLS, `ca PATH` for the client to trust.

use std::io::Write;

use hearth::config::{self, Command};
use hearth::server::{echo::EchoApp, Server};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match config::parse_args(&args, &|k| std::env::var(k).ok()) {
        Ok(Command::Run(c)) => *c,
        Ok(_) => {
            println!("usage: echo --listen ADDR [--no-tls] [--data DIR]");
            return;
        }
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(2);
        }
    };
    let mut config = config;
    config.certs_dir = config.data_dir.join("certs");
    hearth::logger::init(config.log_level);
    let run = || -> Result<(), hearth::error::StartupError> {
        hearth::ensure_writable_dir(&config.data_dir, "--data")?;
        let prepared = hearth::prepare_tls(&config)?;
        let mut server = Server::bind(&config, prepared.tls, prepared.site, EchoApp::default())?;
        server.handle_signals()?;
        let scheme = if config.tls { "https" } else { "http" };
        println!("listening on {scheme}://{}", server.local_addr());
        if config.tls {
            println!("ca {}", config.certs_dir.join("ca.pem").display());
        }
        let _ = std::io::stdout().flush();
        server.run().map_err(|e| hearth::error::StartupError::env(e.to_string()))
    };
    if let Err(e) = run() {
        eprintln!("echo: {e}");
        std::process::exit(2);
    }
}
