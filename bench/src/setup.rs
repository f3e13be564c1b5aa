//! Everything around a run: a seeded data directory, the server process
//! (pinned to one core), its CPU time and memory from `/proc`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth::store::{self, Store};

pub const PASSWORD: &str = "bench password";

/// The session token of bench user `i` (64 hex characters, as the server makes).
pub fn token(i: usize) -> String {
    format!("{:064x}", 0xbe9c_0000_0000u64 + i as u64)
}

pub fn user_name(i: usize) -> String {
    format!("u{i}")
}

pub fn room_name(r: usize) -> String {
    format!("room{r}")
}

/// A temp data directory seeded straight through SQLite: `users` users with
/// sessions, `rooms` rooms, user `i` a member of room `member_of(i)`, and
/// `messages` messages spread over the rooms. One argon2 hash is computed and
/// shared, so seeding 10,000 users takes a second, not ten minutes.
pub struct Seed {
    pub users: usize,
    pub rooms: usize,
    pub messages: usize,
}

pub fn seed(dir: &Path, s: &Seed, member_of: impl Fn(usize) -> Option<usize>) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
    let mut st = Store::open(&dir.join("data")).map_err(|e| e.to_string())?;
    let hash = hearth::auth::hash_password(PASSWORD)?;
    let now = hearth::clock::now_ms();
    let far = now + 365 * 24 * 3600 * 1000;
    st.write(|c| {
        let mut room_ids = Vec::new();
        for r in 0..s.rooms {
            let row = store::RoomRow {
                id: 0,
                name: room_name(r),
                topic: String::new(),
                visibility: "public".into(),
                kind: "room".into(),
            };
            room_ids.push(store::insert_room(c, &row, now)?);
        }
        let mut first_user = None;
        for i in 0..s.users {
            let role = if i == 0 { "admin" } else { "user" };
            let id = store::insert_user(c, &user_name(i), &hash, role, now)?;
            first_user.get_or_insert(id);
            store::insert_session(c, &hearth::auth::token_hash(&token(i)), id, far)?;
            if let Some(r) = member_of(i) {
                store::upsert_member(c, room_ids[r], id, "member")?;
            }
        }
        if let Some(author) = first_user {
            for m in 0..s.messages {
                let room = room_ids[m % room_ids.len().max(1)];
                store::insert_message(c, room, author, &format!("seeded message {m}"), now, None)?;
            }
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    st.commit().map_err(|e| e.to_string())
}

/// The server under test, in its own process.
pub struct ServerProc {
    pub child: Child,
    pub addr: SocketAddr,
    pub certs: PathBuf,
}

impl ServerProc {
    /// Starts `bin` on `dir` (seeded), pinned to `cpu` with taskset when it exists.
    pub fn start(bin: &Path, dir: &Path, tls: bool, cpu: Option<usize>) -> Result<ServerProc, String> {
        let certs = dir.join("certs");
        let mut args: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data".into(),
            dir.join("data").display().to_string(),
            "--certs".into(),
            certs.display().to_string(),
            "--log-level".into(),
            "warn".into(),
            "--rate".into(),
            "10000".into(),
            "--burst".into(),
            "100000".into(),
            "--max-connections".into(),
            "19000".into(),
        ];
        if !tls {
            args.push("--no-tls".into());
        }
        let mut cmd = match cpu {
            Some(c) if Path::new("/usr/bin/taskset").exists() => {
                let mut cmd = Command::new("/usr/bin/taskset");
                cmd.arg("-c").arg(c.to_string()).arg(bin);
                cmd
            }
            _ => Command::new(bin),
        };
        let mut child =
            cmd.args(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().map_err(|e| {
                format!("cannot start {}: {e} (build it with cargo build --release)", bin.display())
            })?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(15))
            .map_err(|_| "the server printed no 'Listening on' line".to_string())?
            .parse()
            .map_err(|e| format!("bad address: {e}"))?;
        Ok(ServerProc { child, addr, certs })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's user + system CPU seconds so far.
    pub fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else { return 0.0 };
        // Fields after the command name (which may hold spaces) start after ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of stat: 12 and 13 after ')'.
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Resident set size in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid())) else { return 0 };
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// A fresh temp directory for one run.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
