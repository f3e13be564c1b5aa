//! The chat application: the wire contract (`shared/protocol.md`) on top of
//! the server core. `api` answers the HTTP routes, `commands` the WebSocket
//! messages; both read and change the `Hub` and write through the `Store`.
//!
//! Rule for every write: change the database first (inside the turn's
//! transaction), then the hub, then queue the answers with `durable_*` so
//! that, if the turn's commit fails, those answers are replaced by
//! `unavailable` errors and the hub is reloaded from the database.

mod admin;
mod api;
mod commands;
pub mod hub;
pub mod limits;
mod moderation;
pub mod permissions;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::auth::{self, Hasher, JobDone};
use crate::clock::now_ms;
use crate::config::ChatLimits;
use crate::http::{Request, Response};
use crate::server::{App, ConnId, Ctx, Out};
use crate::store::{self, Store, Syncer};
use hub::{ConnInfo, Hub, TokenHash, UserId};
use limits::{NonceCache, Throttle};

/// Name of the session cookie.
pub const COOKIE: &str = "hearth_session";
/// Failed logins allowed per account before delays start.
const FREE_FAILURES_PER_ACCOUNT: u32 = 5;
/// Per client address: higher, as a school or office may share one.
const FREE_FAILURES_PER_ADDRESS: u32 = 20;
/// How often expired sessions and idle throttle entries are cleared.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(600);
/// Answers waiting for the disk at most; past it new messages are refused
/// (`unavailable`) until the syncer catches up, so a hung disk cannot make
/// the held answers grow without end.
pub const HELD_LIMIT: usize = 200_000;
/// How often to look for changes made by `hearth admin` while running.
const EXTERNAL_CHECK_EVERY: Duration = Duration::from_secs(2);

/// A sign-up or login waiting for its hash.
enum PendingAuth {
    Signup { conn: ConnId, name: String, invite: Option<String> },
    Login { conn: ConnId, user: Option<UserId>, key: String, ip: IpAddr },
    Reset { conn: ConnId, user: UserId },
}

/// What this turn's answers depend on, to undo them if the commit fails.
#[derive(Default)]
struct TurnLog {
    /// Ranges of `ctx.out` that report writes: dropped on failure.
    durable: Vec<Range<usize>>,
    /// Sent instead, on failure (errors to those who asked).
    fallbacks: Vec<Out>,
    /// Nonces recorded this turn, forgotten on failure.
    nonces: Vec<(UserId, String)>,
}

/// Answers of one committed turn, held until the syncer says it is durable.
struct Held {
    /// Commit number.
    seq: u64,
    outs: Vec<Out>,
    /// Sent instead if the sync fails.
    fallbacks: Vec<Out>,
    /// The newest message id in that commit.
    last_id: i64,
}

pub struct ChatApp {
    store: Store,
    hub: Hub,
    /// Syncs the WAL off the loop thread (`None` until `start`: commits then sync themselves).
    syncer: Option<Syncer>,
    /// Commits made so far.
    commits: u64,
    /// Committed but not yet durable, oldest first.
    held: VecDeque<Held>,
    /// Answers in `held`, all commits together.
    held_outs: usize,
    /// Every message up to this id is durable: replays and history stop here.
    durable_id: i64,
    hasher: Option<Hasher>,
    epoch: String,
    jobs: HashMap<u64, PendingAuth>,
    next_job: u64,
    nonces: NonceCache,
    login_by_name: Throttle<String>,
    login_by_ip: Throttle<IpAddr>,
    turn: TurnLog,
    next_maintenance: Instant,
    /// `open`, `invite` or `closed`.
    signup_policy: String,
    started: Instant,
    /// SQLite's `data_version` when last checked: it moves when another
    /// process (`hearth admin`) commits.
    data_version: i64,
    next_external_check: Instant,
}

impl ChatApp {
    /// `signup`: a policy given on the command line, which replaces the stored one.
    pub fn new(
        mut store: Store,
        limits: ChatLimits,
        signup: Option<&str>,
    ) -> Result<ChatApp, store::StoreError> {
        if let Some(policy) = signup {
            store.write(|c| store::set_setting(c, "signup", policy))?;
            store.commit_turn()?;
        }
        let signup_policy = store.read(|c| store::get_setting(c, "signup"))?.unwrap_or_else(|| "open".into());
        let hub = Hub::load(&store, limits, now_ms())?;
        let epoch = store.read(store::epoch)?;
        let data_version = store.read(store::data_version)?;
        let nonces = restore_nonces(&store)?;
        let durable_id = hub.last_id;
        Ok(ChatApp {
            store,
            hub,
            syncer: None,
            commits: 0,
            held: VecDeque::new(),
            held_outs: 0,
            durable_id,
            hasher: None,
            epoch,
            jobs: HashMap::new(),
            next_job: 1,
            nonces,
            login_by_name: Throttle::new(FREE_FAILURES_PER_ACCOUNT),
            login_by_ip: Throttle::new(FREE_FAILURES_PER_ADDRESS),
            turn: TurnLog::default(),
            next_maintenance: Instant::now() + MAINTENANCE_EVERY,
            signup_policy,
            started: Instant::now(),
            data_version,
            next_external_check: Instant::now() + EXTERNAL_CHECK_EVERY,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether answers waiting for the disk have reached `HELD_LIMIT`.
    fn disk_behind(&self) -> bool {
        self.held_outs >= HELD_LIMIT
    }

    /// One line about what was loaded, for the log at start.
    pub fn summary(&self) -> String {
        format!(
            "database {}, {}: {} users, {} rooms, {} sessions, newest message id {}, sign-up {}",
            self.store.path().display(),
            self.store.schema_note(),
            self.hub.users.len(),
            self.hub.rooms.len(),
            self.hub.sessions.len(),
            self.hub.last_id,
            self.signup_policy
        )
    }

    /// Marks `ctx.out[start..]` as reporting this turn's writes, with the
    /// answer to send instead if the commit fails.
    fn durable_since(&mut self, ctx: &Ctx, start: usize, fallback: Option<Out>) {
        self.turn.durable.push(start..ctx.out.len());
        self.turn.fallbacks.extend(fallback);
    }

    /// The session behind a request: bearer token or cookie. Returns the
    /// user, the token hash, and whether it came from the cookie.
    fn authenticate(&mut self, req: &Request) -> Option<(UserId, TokenHash, bool)> {
        let (token, from_cookie) = match req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")) {
            Some(t) => (t.trim(), false),
            None => (req.cookie(COOKIE)?, true),
        };
        let hash = auth::token_hash(token);
        let now = now_ms();
        let session = self.hub.sessions.get(&hash)?;
        let user = session.user;
        if session.expires_ms <= now || self.hub.users.get(&user).is_none_or(|u| u.disabled) {
            return None;
        }
        // Renewed on use, at most once a day (one small write).
        if session.expires_ms - now < auth::SESSION_MS - 24 * 3600 * 1000 {
            let expires = now + auth::SESSION_MS;
            if self.store.write(|c| store::renew_session(c, &hash, expires)).is_ok() {
                if let Some(s) = self.hub.sessions.get_mut(&hash) {
                    s.expires_ms = expires;
                }
            }
        }
        Some((user, hash, from_cookie))
    }

    fn next_job_id(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job
    }

    fn finish_job(&mut self, ctx: &mut Ctx, done: JobDone) {
        let id = match &done {
            JobDone::Hashed { id, .. } | JobDone::Verified { id, .. } => *id,
        };
        let Some(pending) = self.jobs.remove(&id) else {
            return;
        };
        match (pending, done) {
            (PendingAuth::Signup { conn, name, invite }, JobDone::Hashed { result, .. }) => {
                api::finish_signup(self, ctx, conn, &name, invite.as_deref(), result)
            }
            (PendingAuth::Login { conn, user, key, ip }, JobDone::Verified { ok, .. }) => {
                api::finish_login(self, ctx, conn, user, &key, ip, ok)
            }
            (PendingAuth::Reset { conn, user }, JobDone::Hashed { result, .. }) => {
                admin::finish_reset(self, ctx, conn, user, result)
            }
            (
                PendingAuth::Signup { conn, .. }
                | PendingAuth::Login { conn, .. }
                | PendingAuth::Reset { conn, .. },
                _,
            ) => ctx.respond(conn, Response::error(500, "internal", "unexpected hashing result")),
        }
    }

    /// Picks up what `hearth admin` changed in the database while we run:
    /// reloads the hub, and closes connections whose session or account
    /// is gone.
    fn check_external_changes(&mut self, ctx: &mut Ctx) {
        self.next_external_check = ctx.now + EXTERNAL_CHECK_EVERY;
        let Ok(version) = self.store.read(store::data_version) else { return };
        if version == self.data_version {
            return;
        }
        self.data_version = version;
        log::info!("the database was changed by another program: reloading");
        if let Err(e) = self.hub.reload(&self.store, now_ms()) {
            log::error!("could not reload state from the database: {e}");
            return;
        }
        if let Ok(Some(policy)) = self.store.read(|c| store::get_setting(c, "signup")) {
            self.signup_policy = policy;
        }
        let gone: Vec<ConnId> = self
            .hub
            .conns
            .iter()
            .filter(|(_, i)| {
                !self.hub.sessions.contains_key(&i.session)
                    || self.hub.users.get(&i.user).is_none_or(|u| u.disabled)
            })
            .map(|(c, _)| *c)
            .collect();
        for c in gone {
            ctx.close(c, tungstenite::protocol::frame::coding::CloseCode::Policy, "session ended");
        }
    }

    /// After a commit: the answers that report it wait for the syncer; the
    /// others go now. Without a syncer the commit was already durable.
    fn hold_until_durable(&mut self, ctx: &mut Ctx, turn: TurnLog) {
        let Some(syncer) = &self.syncer else {
            self.durable_id = self.hub.last_id;
            return;
        };
        let mut marked = vec![false; ctx.out.len()];
        for r in &turn.durable {
            for i in r.clone() {
                if let Some(m) = marked.get_mut(i) {
                    *m = true;
                }
            }
        }
        let mut outs = Vec::new();
        let mut now = Vec::with_capacity(ctx.out.len());
        for (out, held) in std::mem::take(&mut ctx.out).into_iter().zip(marked) {
            if held {
                outs.push(out);
            } else {
                now.push(out);
            }
        }
        ctx.out = now;
        self.commits += 1;
        self.held_outs += outs.len();
        syncer.request(self.commits);
        self.held.push_back(Held {
            seq: self.commits,
            outs,
            fallbacks: turn.fallbacks,
            last_id: self.hub.last_id,
        });
    }

    /// The syncer finished: release what became durable (or, if the sync
    /// failed, tell those who asked that it may not be stored).
    fn release(&mut self, ctx: &mut Ctx, done: store::SyncDone) {
        while self.held.front().is_some_and(|h| h.seq <= done.upto) {
            let Some(h) = self.held.pop_front() else { break };
            self.held_outs -= h.outs.len();
            match &done.result {
                Ok(()) => {
                    ctx.out.extend(h.outs);
                    self.durable_id = self.durable_id.max(h.last_id);
                }
                Err(e) => {
                    log::error!(
                        "could not sync the database: {e}; {} answers turned into errors",
                        h.fallbacks.len()
                    );
                    ctx.out.extend(h.fallbacks);
                }
            }
        }
    }

    /// A commit failed: nothing of the turn is stored. Its answers become
    /// errors and the hub goes back to what the database holds.
    fn commit_failed(&mut self, ctx: &mut Ctx, turn: TurnLog, error: &str) {
        log::error!(
            "could not save to the database: {error}; {} answers turned into errors",
            turn.durable.len()
        );
        let mut keep = vec![true; ctx.out.len()];
        for r in &turn.durable {
            for i in r.clone() {
                if let Some(k) = keep.get_mut(i) {
                    *k = false;
                }
            }
        }
        let mut i = 0;
        ctx.out.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        ctx.out.extend(turn.fallbacks);
        for (user, nonce) in &turn.nonces {
            self.nonces.forget(*user, nonce);
        }
        if let Err(e) = self.hub.reload(&self.store, now_ms()) {
            log::error!("could not reload state from the database: {e}");
        }
    }

    /// Queues `out` to go with the held commit that holds message `id`, or
    /// now if that is durable already.
    fn send_when_durable(&mut self, ctx: &mut Ctx, id: i64, out: Out) {
        if id <= self.durable_id {
            ctx.out.push(out);
        } else if let Some(h) = self.held.iter_mut().find(|h| h.last_id >= id) {
            h.outs.push(out);
            self.held_outs += 1;
        } else {
            // Written in this very turn: it goes with this turn's commit.
            let start = ctx.out.len();
            ctx.out.push(out);
            self.durable_since(ctx, start, None);
        }
    }

    fn maintenance(&mut self, now: Instant) {
        let now_ms = now_ms();
        match self.store.write(|c| store::delete_expired_sessions(c, now_ms)) {
            Ok(n) if n > 0 => log::info!("removed {n} expired sessions"),
            Ok(_) => {}
            Err(e) => log::warn!("could not remove expired sessions: {e}"),
        }
        self.hub.sessions.retain(|_, s| s.expires_ms > now_ms);
        self.login_by_name.prune(now);
        self.login_by_ip.prune(now);
        self.next_maintenance = now + MAINTENANCE_EVERY;
    }
}

/// The nonce cache as it was: nonces of the last 10 minutes, from the
/// messages table, each remembered for the rest of its 10 minutes.
fn restore_nonces(store: &Store) -> Result<NonceCache, store::StoreError> {
    let now = Instant::now();
    let now_ms = now_ms();
    let ttl_ms = limits::NONCE_TTL.as_millis() as i64;
    let mut cache = NonceCache::default();
    for (user, nonce, id, ts) in store.read(|c| store::recent_nonces(c, now_ms - ttl_ms))? {
        let age = Duration::from_millis(now_ms.saturating_sub(ts).max(0) as u64);
        let inserted = now.checked_sub(age).unwrap_or(now);
        cache.insert(user, &nonce, id, inserted);
    }
    Ok(cache)
}

/// Whether the request carries an `Origin` other than this server's own.
pub fn foreign_origin(req: &Request, tls: bool) -> bool {
    let Some(origin) = req.header("origin") else {
        return false;
    };
    let Some(host) = req.header("host") else {
        return true;
    };
    let scheme = if tls { "https" } else { "http" };
    !origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

impl App for ChatApp {
    fn start(&mut self, waker: Arc<mio::Waker>) {
        self.hasher = Some(Hasher::start(waker.clone()));
        match self.store.defer_sync() {
            Ok(()) => self.syncer = Some(Syncer::start(self.store.path().to_path_buf(), waker)),
            Err(e) => log::warn!("syncing stays on the loop thread: {e}"),
        }
    }

    fn http(&mut self, ctx: &mut Ctx, conn: ConnId, peer: SocketAddr, req: Request) -> Option<Response> {
        api::handle(self, ctx, conn, peer, req)
    }

    fn ws_accept(&mut self, ctx: &mut Ctx, conn: ConnId, req: &Request) -> Result<(), Response> {
        if foreign_origin(req, ctx.tls) {
            return Err(Response::error(403, "bad_origin", "WebSocket from a foreign origin"));
        }
        let Some((user, session, _)) = self.authenticate(req) else {
            return Err(Response::error(401, "unauthorized", "log in first"));
        };
        self.hub.conns.insert(conn, ConnInfo { user, session });
        Ok(())
    }

    fn ws_open(&mut self, ctx: &mut Ctx, conn: ConnId) {
        commands::open(self, ctx, conn);
    }

    fn ws_text(&mut self, ctx: &mut Ctx, conn: ConnId, text: tungstenite::Utf8Bytes) {
        commands::handle(self, ctx, conn, &text);
    }

    fn ws_binary(&mut self, ctx: &mut Ctx, conn: ConnId, _data: tungstenite::Bytes) {
        commands::send_error(ctx, conn, "bad_request", "send JSON text frames, not binary", None);
    }

    fn ws_closed(&mut self, ctx: &mut Ctx, conn: ConnId) {
        commands::closed(self, ctx, conn);
    }

    fn wake(&mut self, ctx: &mut Ctx) {
        let done = self.hasher.as_ref().map(Hasher::finished).unwrap_or_default();
        for d in done {
            self.finish_job(ctx, d);
        }
        let synced = self.syncer.as_ref().map(Syncer::finished).unwrap_or_default();
        for s in synced {
            self.release(ctx, s);
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        Some(self.next_maintenance.min(self.next_external_check))
    }

    fn on_timer(&mut self, ctx: &mut Ctx) {
        if ctx.now >= self.next_external_check {
            self.check_external_changes(ctx);
        }
        if ctx.now >= self.next_maintenance {
            self.maintenance(ctx.now);
        }
    }

    fn end_turn(&mut self, ctx: &mut Ctx) {
        let turn = std::mem::take(&mut self.turn);
        if !self.store.turn_open() {
            return;
        }
        match self.store.commit_turn() {
            Ok(()) => self.hold_until_durable(ctx, turn),
            Err(e) => self.commit_failed(ctx, turn, &e.to_string()),
        }
    }

    fn shutdown(&mut self) {
        if self.store.turn_open() {
            if let Err(e) = self.store.commit_turn() {
                log::error!("could not save to the database at shutdown: {e}");
            }
        }
        if let Err(e) = self.store.sync_now() {
            log::error!("could not sync the database at shutdown: {e}");
        }
    }
}

/// A JSON error answer with `Retry-After`.
fn rate_limited(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    Response::error(429, "rate_limited", &format!("too many attempts; try again in {secs} s"))
        .with_header("Retry-After", secs.to_string())
}

/// The `{"user":...,"token":...}` answer with the session cookie.
fn session_response(status: u16, user: &hub::User, token: &str, tls: bool) -> Response {
    let body = json!({"user": user.json(), "token": token});
    let secure = if tls { "; Secure" } else { "" };
    Response::json(status, &body).with_header(
        "Set-Cookie",
        format!(
            "{COOKIE}={token}; HttpOnly{secure}; SameSite=Strict; Path=/; Max-Age={}",
            auth::SESSION_MS / 1000
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::Message;

    fn app(tag: &str) -> (ChatApp, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("hearth-chat-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir).unwrap();
        (ChatApp::new(store, ChatLimits::default(), None).unwrap(), dir)
    }

    fn text(out: &Out) -> String {
        match out {
            Out::Send(_, Message::Text(t)) => t.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn held_answers_go_out_in_commit_order_once_durable_or_become_their_fallbacks() {
        let (mut app, dir) = app("held");
        let mut ctx = Ctx { now: Instant::now(), tls: true, out: Vec::new() };
        let send = |s: &str| Out::Send(1, Message::Text(s.into()));
        for (seq, name) in [(1, "one"), (2, "two"), (3, "three")] {
            app.held.push_back(Held {
                seq,
                outs: vec![send(name)],
                fallbacks: vec![send(&format!("{name} failed"))],
                last_id: seq as i64 * 10,
            });
        }
        app.held_outs = 3;
        app.release(&mut ctx, store::SyncDone { upto: 2, result: Ok(()) });
        assert_eq!(ctx.out.iter().map(text).collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(app.durable_id, 20, "replays may now go up to the second commit");
        ctx.out.clear();
        app.release(&mut ctx, store::SyncDone { upto: 3, result: Err("disk on fire".into()) });
        assert_eq!(ctx.out.iter().map(text).collect::<Vec<_>>(), ["three failed"]);
        assert_eq!(app.durable_id, 20);
        assert!(app.held.is_empty());
        assert_eq!(app.held_outs, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sends_are_refused_while_too_many_answers_wait_for_the_disk() {
        let dir = std::env::temp_dir().join(format!("hearth-chat-behind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir).unwrap();
        store
            .write(|c| {
                let u = store::insert_user(c, "ann", "x", "admin", 0)?;
                let row = store::RoomRow {
                    id: 0,
                    name: "general".into(),
                    topic: String::new(),
                    visibility: "public".into(),
                    kind: "room".into(),
                };
                let r = store::insert_room(c, &row, 0)?;
                store::upsert_member(c, r, u, "owner")
            })
            .unwrap();
        store.commit_turn().unwrap();
        let mut app = ChatApp::new(store, ChatLimits::default(), None).unwrap();
        let user = app.hub.user_id("ann").unwrap();
        app.hub.conns.insert(7, ConnInfo { user, session: [0; 32] });
        let mut ctx = Ctx { now: Instant::now(), tls: true, out: Vec::new() };
        commands::open(&mut app, &mut ctx, 7);
        ctx.out.clear();
        let frame = r#"{"type":"send","room":"general","text":"hi","nonce":"n"}"#;
        app.held_outs = HELD_LIMIT;
        commands::handle(&mut app, &mut ctx, 7, frame);
        assert!(text(&ctx.out[0]).contains(r#""code":"unavailable""#), "{}", text(&ctx.out[0]));
        assert_eq!(app.hub.last_id, 0, "nothing stored");
        ctx.out.clear();
        app.held_outs = HELD_LIMIT - 1;
        commands::handle(&mut app, &mut ctx, 7, frame);
        assert!(text(&ctx.out[0]).contains(r#""type":"message""#), "{}", text(&ctx.out[0]));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_resend_of_a_message_not_yet_durable_waits_for_its_commit() {
        let (mut app, dir) = app("resend");
        let mut ctx = Ctx { now: Instant::now(), tls: true, out: Vec::new() };
        app.durable_id = 5;
        app.held.push_back(Held { seq: 1, outs: Vec::new(), fallbacks: Vec::new(), last_id: 9 });
        app.send_when_durable(&mut ctx, 4, Out::Send(1, Message::Text("old".into())));
        app.send_when_durable(&mut ctx, 7, Out::Send(1, Message::Text("held".into())));
        assert_eq!(ctx.out.iter().map(text).collect::<Vec<_>>(), ["old"]);
        assert_eq!(app.held[0].outs.iter().map(text).collect::<Vec<_>>(), ["held"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
