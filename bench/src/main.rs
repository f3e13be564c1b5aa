//! hearth-bench: drives a real hearth server (started here, pinned to one
//! core) over 127.0.0.1 and reports medians and spread of several runs.
//!
//! ```text
//! hearth-bench fanout  [--rooms 10] [--clients 100] [--senders 10] [--rate 2000]
//!                      [--warmup 3] [--duration 10] [--logins 0] [--ramp]
//! hearth-bench idle    [--conns 10000]
//! hearth-bench storm   [--conns 2000] [--parallel 50]
//! hearth-bench logins  (fan-out at 500 msg/s, without then with 10 logins/s)
//! hearth-bench history [--messages 1000000] [--parallel 4] [--duration 10]
//! hearth-bench smoke   --addr 127.0.0.1:PORT --ca certs/ca.pem   (a running server: health,
//!                      sign-up, a room, a message over WebSocket; prints SMOKE OK)
//! common: [--runs 3] [--no-tls] [--server target/release/hearth] [--server-cpu 0|none]
//! ```

mod client;
mod scenarios;
mod setup;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use scenarios::{Common, FanoutOpts};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(scenario) = args.first().cloned() else {
        eprintln!("usage: hearth-bench fanout|idle|storm|logins|history [options]; see the source header");
        std::process::exit(2);
    };
    let mut opts: HashMap<String, String> = HashMap::new();
    let mut i = 1;
    while i < args.len() {
        let key = args[i].trim_start_matches("--").to_string();
        if matches!(key.as_str(), "no-tls" | "ramp") {
            opts.insert(key, "1".into());
        } else {
            i += 1;
            opts.insert(key, args.get(i).cloned().unwrap_or_default());
        }
        i += 1;
    }
    let num = |k: &str, d: f64| opts.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(d);
    let common = Common {
        server: opts
            .get("server")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/hearth")),
        server_cpu: match opts.get("server-cpu").map(String::as_str) {
            Some("none") => None,
            Some(v) => v.parse().ok(),
            None => Some(0),
        },
        tls: !opts.contains_key("no-tls"),
    };
    let runs = num("runs", 3.0) as usize;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let transport = if common.tls { "wss" } else { "ws" };
    let result = rt.block_on(async {
        match scenario.as_str() {
            "smoke" => {
                let addr = opts.get("addr").ok_or("smoke needs --addr")?.parse().map_err(|e| format!("--addr: {e}"))?;
                let ca = opts.get("ca").map(PathBuf::from);
                scenarios::smoke(addr, ca.as_deref()).await?;
                println!("SMOKE OK");
                Ok(())
            }
            "fanout" | "logins" => {
                let mut o = FanoutOpts {
                    rooms: num("rooms", 10.0) as usize,
                    clients: num("clients", 100.0) as usize,
                    senders: num("senders", 10.0) as usize,
                    rate: num("rate", 2000.0),
                    warmup: Duration::from_secs_f64(num("warmup", 3.0)),
                    duration: Duration::from_secs_f64(num("duration", 10.0)),
                    logins_per_s: num("logins", 0.0),
                };
                if scenario == "logins" {
                    o.rooms = num("rooms", 10.0) as usize;
                    o.clients = num("clients", 20.0) as usize;
                    o.rate = num("rate", 500.0);
                    for logins in [0.0, num("logins", 10.0)] {
                        o.logins_per_s = logins;
                        run_fanout(&common, &o, runs, transport).await?;
                    }
                    Ok(())
                } else if opts.contains_key("ramp") {
                    ramp(&common, o, transport).await
                } else {
                    run_fanout(&common, &o, runs, transport).await
                }
            }
            "idle" => {
                let n = num("conns", 10_000.0) as usize;
                println!("| run | transport | connections | RSS before | RSS after | bytes/conn | connect time | idle CPU (5 s) |");
                println!("|---|---|--:|--:|--:|--:|--:|--:|");
                let mut per = Vec::new();
                for run in 1..=runs {
                    let r = scenarios::idle(&common, n).await?;
                    println!(
                        "| {run} | {transport} | {} | {:.1} MiB | {:.1} MiB | {:.0} | {:.2} s | {:.3} s |",
                        r.conns,
                        r.rss_before as f64 / 1048576.0,
                        r.rss_after as f64 / 1048576.0,
                        r.bytes_per_conn,
                        r.connect_s,
                        r.idle_cpu_s
                    );
                    per.push(r);
                }
                summary("bytes/conn", per.iter().map(|r| r.bytes_per_conn).collect());
                summary("RSS after, MiB", per.iter().map(|r| r.rss_after as f64 / 1048576.0).collect());
                summary("connect s", per.iter().map(|r| r.connect_s).collect());
                Ok(())
            }
            "storm" => {
                let (total, par) = (num("conns", 2000.0) as usize, num("parallel", 50.0) as usize);
                println!("| run | transport | connections | parallel | handshakes+upgrades/s | server CPU µs each |");
                println!("|---|---|--:|--:|--:|--:|");
                let mut rates = Vec::new();
                for run in 1..=runs {
                    let (rate, cpu) = scenarios::storm(&common, total, par).await?;
                    println!("| {run} | {transport} | {total} | {par} | {rate:.0} | {cpu:.0} |");
                    rates.push(rate);
                }
                summary("per second", rates);
                Ok(())
            }
            "history" => {
                let msgs = num("messages", 1_000_000.0) as usize;
                let (par, dur) = (num("parallel", 4.0) as usize, Duration::from_secs_f64(num("duration", 10.0)));
                println!("| run | transport | messages stored | parallel | pages of 50 /s | p50 ms | p99 ms |");
                println!("|---|---|--:|--:|--:|--:|--:|");
                let mut rates = Vec::new();
                for run in 1..=runs {
                    let (rate, p50, p99) = scenarios::history(&common, msgs, par, dur).await?;
                    println!("| {run} | {transport} | {msgs} | {par} | {rate:.0} | {p50:.2} | {p99:.2} |");
                    rates.push(rate);
                }
                summary("pages/s", rates);
                Ok(())
            }
            other => Err(format!("unknown scenario '{other}'")),
        }
    });
    if let Err(e) = result {
        eprintln!("hearth-bench: {e}");
        std::process::exit(1);
    }
}

async fn run_fanout(c: &Common, o: &FanoutOpts, runs: usize, transport: &str) -> Result<(), String> {
    println!(
        "| run | transport | rooms x clients | senders | rate msg/s | logins/s (done) | sent | expected | delivered | lost | delivered/s | p50 ms | p99 ms | max ms | server CPU µs/delivered |"
    );
    println!("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut results = Vec::new();
    for run in 1..=runs {
        let r = scenarios::fanout(c, o).await?;
        println!(
            "| {run} | {transport} | {} x {} | {} | {:.0} | {:.0} ({}) | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            o.rooms,
            o.clients,
            o.senders,
            o.rate,
            o.logins_per_s,
            r.logins,
            r.sent,
            r.expected,
            r.delivered,
            r.lost(),
            r.per_second,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.cpu_us_per_msg
        );
        results.push(r);
    }
    summary("delivered/s", results.iter().map(|r| r.per_second).collect());
    summary("p99 ms", results.iter().map(|r| r.p99_ms).collect());
    summary("CPU µs/msg", results.iter().map(|r| r.cpu_us_per_msg).collect());
    Ok(())
}

/// Steps the rate up by 25 % until delivery is incomplete or p99 passes
/// 100 ms; reports the highest rate that met both. Stops early when the
/// generator itself cannot send at the asked rate (its core is full), since
/// higher steps would then measure the generator, not the server.
async fn ramp(c: &Common, mut o: FanoutOpts, transport: &str) -> Result<(), String> {
    o.duration = Duration::from_secs(5);
    o.warmup = Duration::from_secs(2);
    let mut best = None;
    println!(
        "| step | transport | asked msg/s | sent msg/s | delivered/s | lost | p99 ms | server core % | ok |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|---|");
    for step in 1..=20 {
        let r = scenarios::fanout(c, &o).await?;
        let sent_per_s = r.sent as f64 / o.duration.as_secs_f64();
        // CPU µs per delivered message x delivered per second = µs busy per second.
        let server_core = r.cpu_us_per_msg * r.per_second / 1e4;
        let ok = r.lost() == 0 && r.p99_ms < 100.0;
        println!(
            "| {step} | {transport} | {:.0} | {sent_per_s:.0} | {:.0} | {} | {:.2} | {server_core:.0} | {ok} |",
            o.rate,
            r.per_second,
            r.lost(),
            r.p99_ms,
        );
        if !ok {
            break;
        }
        best = Some((sent_per_s, r.per_second));
        if sent_per_s < 0.95 * o.rate {
            println!(
                "\nthe generator sent only {sent_per_s:.0} of {:.0} msg/s: its core is the limit",
                o.rate
            );
            break;
        }
        o.rate *= 1.25;
    }
    match best {
        Some((rate, per_s)) => println!("\nhighest good rate: {rate:.0} msg/s sent, {per_s:.0} delivered/s"),
        None => println!("\nno rate met 100 % delivery with p99 < 100 ms"),
    }
    Ok(())
}

fn summary(what: &str, mut v: Vec<f64>) {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = v[v.len() / 2];
    println!("\n{what}: median {median:.2}, min {:.2}, max {:.2} ({} runs)", v[0], v[v.len() - 1], v.len());
}
