//! The measured scenarios. Each seeds a fresh data directory, starts the
//! server, drives it over 127.0.0.1 only, and returns its figures. Every
//! loop is bounded by a count or a deadline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::time::{interval, sleep, timeout, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Http, Target, Ws};
use crate::setup::{self, room_name, token, Seed, ServerProc};

#[derive(Clone)]
pub struct Common {
    pub server: PathBuf,
    pub server_cpu: Option<usize>,
    pub tls: bool,
}

fn target(server: &ServerProc, tls: bool) -> Result<Target, String> {
    let ca = server.certs.join("ca.pem");
    Target::new(server.addr, tls.then_some(ca.as_path()))
}

async fn open_ws(t: &Target, user: usize) -> Result<Ws, String> {
    let mut ws = t.ws(&token(user)).await?;
    // Wait for hello: the connection is registered with the hub.
    let first = timeout(Duration::from_secs(20), ws.next()).await.map_err(|_| "no hello")?;
    match first {
        Some(Ok(Message::Text(t))) if t.contains("\"hello\"") => Ok(ws),
        other => Err(format!("expected hello, got {other:?}")),
    }
}

/// Opens one WebSocket per user in `users`, `parallel` handshakes at a time.
async fn open_many(t: &Target, users: Vec<usize>, parallel: usize) -> Result<Vec<Ws>, String> {
    let mut out = Vec::with_capacity(users.len());
    for chunk in users.chunks(parallel.max(1)) {
        let futs: Vec<_> = chunk.iter().map(|u| open_ws(t, *u)).collect();
        for r in futures_util::future::join_all(futs).await {
            out.push(r?);
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ fan-out

#[derive(Clone, Debug)]
pub struct FanoutOpts {
    pub rooms: usize,
    /// Clients (users, one connection each) per room.
    pub clients: usize,
    pub senders: usize,
    /// Messages per second, all senders together (open loop).
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    /// Logins per second running meanwhile (0: none).
    pub logins_per_s: f64,
}

#[derive(Clone, Debug, Default)]
pub struct FanoutResult {
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub cpu_us_per_msg: f64,
    pub logins: u64,
}

impl FanoutResult {
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }
}

/// Text of a bench message: sender, sequence, send time in µs since t0.
fn bench_text(sender: usize, seq: u64, t_us: u64) -> String {
    format!("b:{sender}:{seq}:{t_us}")
}

fn parse_sent_us(frame: &str) -> Option<u64> {
    let i = frame.find("\"text\":\"b:")? + 10;
    let rest = &frame[i..];
    let end = rest.find('"')?;
    rest[..end].rsplit(':').next()?.parse().ok()
}

pub async fn fanout(c: &Common, o: &FanoutOpts) -> Result<FanoutResult, String> {
    let users = o.rooms * o.clients;
    let dir = setup::temp_dir("fanout");
    let clients = o.clients;
    setup::seed(&dir, &Seed { users, rooms: o.rooms, messages: 0 }, |i| Some(i / clients))?;
    let mut server = ServerProc::start(&c.server, &dir, c.tls, c.server_cpu)?;
    let t = target(&server, c.tls)?;
    let conns = open_many(&t, (0..users).collect(), 64).await?;

    let t0 = Instant::now();
    let start_us = 300_000u64; // senders start 300 ms from now
    let win_start = start_us + o.warmup.as_micros() as u64;
    let win_end = win_start + o.duration.as_micros() as u64;
    let drain = Duration::from_secs(3);

    // Sender k speaks in room k % rooms, from that room's client k / rooms.
    let sender_ids: Vec<usize> =
        (0..o.senders).map(|k| (k % o.rooms) * o.clients + (k / o.rooms) % o.clients).collect();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    let sent_in_window = Arc::new(AtomicU64::new(0));
    let expected = Arc::new(AtomicU64::new(0));
    for (i, ws) in conns.into_iter().enumerate() {
        let (mut sink, mut stream) = ws.split();
        let deadline = t0 + Duration::from_micros(win_end) + drain;
        receivers.push(tokio::spawn(async move {
            let mut lat_us: Vec<u32> = Vec::new();
            let mut delivered = 0u64;
            while let Ok(Some(Ok(msg))) =
                timeout(deadline.saturating_duration_since(Instant::now()), stream.next()).await
            {
                if let Message::Text(text) = msg {
                    if let Some(sent) = parse_sent_us(&text) {
                        if (win_start..win_end).contains(&sent) {
                            let now = t0.elapsed().as_micros() as u64;
                            lat_us.push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
                            delivered += 1;
                        }
                    }
                }
            }
            (delivered, lat_us)
        }));
        if let Some(k) = sender_ids.iter().position(|s| *s == i) {
            let per_sender = o.rate / o.senders as f64;
            let room = room_name(i / o.clients);
            let members = o.clients as u64;
            let (sent_w, exp) = (sent_in_window.clone(), expected.clone());
            senders.push(tokio::spawn(async move {
                sleep(Duration::from_micros(start_us).saturating_sub(t0.elapsed())).await;
                let mut tick = interval(Duration::from_secs_f64(1.0 / per_sender));
                tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
                let mut seq = 0u64;
                loop {
                    tick.tick().await;
                    let now = t0.elapsed().as_micros() as u64;
                    if now >= win_end {
                        break;
                    }
                    let text = bench_text(k, seq, now);
                    let frame = format!(r#"{{"type":"send","room":"{room}","text":"{text}"}}"#);
                    if sink.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                    if (win_start..win_end).contains(&now) {
                        sent_w.fetch_add(1, Ordering::Relaxed);
                        exp.fetch_add(members, Ordering::Relaxed);
                    }
                    seq += 1;
                }
                sink
            }));
        } else {
            drop(sink);
        }
    }

    // Logins meanwhile, open loop, each on its own connection.
    let logins = Arc::new(AtomicU64::new(0));
    let login_task = (o.logins_per_s > 0.0).then(|| {
        let t = t.clone();
        let logins = logins.clone();
        let per = o.logins_per_s;
        tokio::spawn(async move {
            sleep(Duration::from_micros(start_us)).await;
            let mut tick = interval(Duration::from_secs_f64(1.0 / per));
            while t0.elapsed().as_micros() as u64 <= win_end {
                tick.tick().await;
                let (t, logins) = (t.clone(), logins.clone());
                tokio::spawn(async move {
                    if let Ok(mut h) = Http::connect(&t).await {
                        let body = format!(r#"{{"username":"u1","password":"{}"}}"#, setup::PASSWORD);
                        if let Ok((200, _)) = h.request("POST", "/api/login", None, Some(&body)).await {
                            logins.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        })
    });

    // CPU time of the server over the window.
    sleep(Duration::from_micros(win_start).saturating_sub(t0.elapsed())).await;
    let cpu0 = server.cpu_seconds();
    sleep(Duration::from_micros(win_end).saturating_sub(t0.elapsed())).await;
    let cpu1 = server.cpu_seconds();

    let mut sinks = Vec::new();
    for s in senders {
        sinks.push(s.await.map_err(|e| e.to_string())?);
    }
    let mut delivered = 0;
    let mut lat: Vec<u32> = Vec::new();
    for r in receivers {
        let (d, l) = r.await.map_err(|e| e.to_string())?;
        delivered += d;
        lat.extend(l);
    }
    if let Some(l) = login_task {
        l.abort();
    }
    drop(sinks);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied();
    let ms = |v: Option<u32>| v.map(|us| us as f64 / 1000.0).unwrap_or(f64::NAN);
    Ok(FanoutResult {
        sent: sent_in_window.load(Ordering::Relaxed),
        expected: expected.load(Ordering::Relaxed),
        delivered,
        per_second: delivered as f64 / o.duration.as_secs_f64(),
        p50_ms: ms(pct(0.50)),
        p99_ms: ms(pct(0.99)),
        max_ms: ms(lat.last().copied()),
        cpu_us_per_msg: if delivered > 0 { (cpu1 - cpu0) * 1e6 / delivered as f64 } else { f64::NAN },
        logins: logins.load(Ordering::Relaxed),
    })
}

// ------------------------------------------------------------------ idle

#[derive(Clone, Debug, Default)]
pub struct IdleResult {
    pub conns: usize,
    pub rss_before: u64,
    pub rss_after: u64,
    pub bytes_per_conn: f64,
    pub connect_s: f64,
    pub idle_cpu_s: f64,
}

pub async fn idle(c: &Common, n: usize) -> Result<IdleResult, String> {
    let dir = setup::temp_dir("idle");
    setup::seed(&dir, &Seed { users: n, rooms: 1, messages: 0 }, |_| None)?;
    let mut server = ServerProc::start(&c.server, &dir, c.tls, c.server_cpu)?;
    sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_bytes();
    let t = target(&server, c.tls)?;
    let start = Instant::now();
    let conns = open_many(&t, (0..n).collect(), 200).await?;
    let connect_s = start.elapsed().as_secs_f64();
    sleep(Duration::from_secs(2)).await;
    let rss_after = server.rss_bytes();
    // Idle: nothing to do, so no CPU should be used.
    let cpu0 = server.cpu_seconds();
    sleep(Duration::from_secs(5)).await;
    let idle_cpu_s = server.cpu_seconds() - cpu0;
    drop(conns);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(IdleResult {
        conns: n,
        rss_before,
        rss_after,
        bytes_per_conn: (rss_after as f64 - rss_before as f64) / n as f64,
        connect_s,
        idle_cpu_s,
    })
}

// ------------------------------------------------------------------ connect storm

pub async fn storm(c: &Common, total: usize, parallel: usize) -> Result<(f64, f64), String> {
    let users = parallel.min(total).max(1);
    let dir = setup::temp_dir("storm");
    setup::seed(&dir, &Seed { users, rooms: 1, messages: 0 }, |_| None)?;
    let mut server = ServerProc::start(&c.server, &dir, c.tls, c.server_cpu)?;
    let t = target(&server, c.tls)?;
    let start = Instant::now();
    let cpu0 = server.cpu_seconds();
    let mut tasks = Vec::new();
    for w in 0..parallel {
        let t = t.clone();
        let per = total / parallel + usize::from(w < total % parallel);
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let ws = open_ws(&t, w % users).await?;
                drop(ws);
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu0;
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok((total as f64 / elapsed, cpu * 1e6 / total as f64))
}

// ------------------------------------------------------------------ history

pub async fn history(
    c: &Common,
    messages: usize,
    parallel: usize,
    duration: Duration,
) -> Result<(f64, f64, f64), String> {
    let rooms = 10;
    let dir = setup::temp_dir("history");
    setup::seed(&dir, &Seed { users: 1, rooms, messages }, |_| None)?;
    let mut server = ServerProc::start(&c.server, &dir, c.tls, c.server_cpu)?;
    let t = target(&server, c.tls)?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..parallel {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Http::connect(&t).await?;
            let mut lat = Vec::new();
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ w as u64;
            while start.elapsed() < duration {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let room = (x % rooms as u64) as usize;
                let before = 1 + x % messages as u64;
                let path = format!("/api/rooms/{}/messages?before={before}&limit=50", room_name(room));
                let t1 = Instant::now();
                let (status, _) = h.request("GET", &path, Some(&token(0)), None).await?;
                if status != 200 {
                    return Err(format!("history status {status}"));
                }
                lat.push(t1.elapsed().as_micros() as u32);
            }
            Ok::<Vec<u32>, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await.map_err(|e| e.to_string())??);
    }
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    lat.sort_unstable();
    let p = |q: f64| lat.get((lat.len() as f64 * q) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    Ok((rate, p(0.5), p(0.99)))
}

// ------------------------------------------------------------------ smoke

/// Against a server someone else started (an ARM build under qemu, say):
/// `/healthz` over TLS verified by the CA, sign-up, a room, and a message
/// that comes back over the WebSocket.
pub async fn smoke(addr: std::net::SocketAddr, ca: Option<&std::path::Path>) -> Result<(), String> {
    let t = Target::new(addr, ca)?;
    let step = |what: &str| eprintln!("smoke: {what}");
    let mut h = Http::connect(&t).await?;
    let (status, body) = h.request("GET", "/healthz", None, None).await?;
    if (status, body.as_slice()) != (200, b"ok".as_slice()) {
        return Err(format!("/healthz answered {status}"));
    }
    step("GET /healthz over TLS: 200 ok");
    let creds = r#"{"username":"smoke","password":"smoke test password"}"#;
    let (status, body) =
        timeout(Duration::from_secs(60), h.request("POST", "/api/signup", None, Some(creds)))
            .await
            .map_err(|_| "signup timed out")??;
    if status != 201 {
        return Err(format!("signup answered {status}: {}", String::from_utf8_lossy(&body)));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let token = v["token"].as_str().ok_or("no token")?.to_string();
    step("sign-up: 201, the first user is admin");
    let (status, _) = h.request("POST", "/api/rooms", Some(&token), Some(r#"{"name":"smoke"}"#)).await?;
    if status != 201 {
        return Err(format!("create room answered {status}"));
    }
    let mut ws = t.ws(&token).await?;
    let frame = r#"{"type":"send","room":"smoke","text":"hello from the smoke test","nonce":"s1"}"#;
    ws.send(Message::Text(frame.into())).await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t))))
                if t.contains("\"type\":\"message\"") && t.contains("smoke test") =>
            {
                break
            }
            Ok(Some(Ok(_))) => {}
            _ => return Err("the message did not come back over the WebSocket".into()),
        }
    }
    step("WebSocket: message sent, stored and delivered");
    let _ = ws.close(None).await;
    Ok(())
}
