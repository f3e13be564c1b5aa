//! The chat application: the wire contract (`shared/protocol.md`) on top of
//! the server core. `api` answers the HTTP routes, `commands` the WebSocket
//! messages; both read and change the `Hub` and write through the `Store`.
//!
//! Rule for every write: change the database first (inside the open
//! transaction), then the hub, then queue the answers with `durable_*` so
//! that, if the commit fails, those answers are replaced by `unavailable`
//! errors and the hub is reloaded from the database.
//!
//! When writes are committed: at the end of a turn if no sync is running;
//! otherwise the transaction stays open and later turns add to it, and it
//! is committed at the end of the first turn after the sync is reported
//! (one commit per fsync; see `store/syncer.rs`).

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

/// Answers that report writes not yet committed: they wait, with the open
/// transaction, for the running sync to end.
#[derive(Default)]
struct Uncommitted {
    outs: Vec<Out>,
    /// Sent instead if the commit fails.
    fallbacks: Vec<Out>,
    /// Nonces recorded by these writes, forgotten if the commit fails.
    nonces: Vec<(UserId, String)>,
}

/// Answers of one commit, held until the syncer says it is durable.
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
    /// Written in the open transaction, not yet committed.
    uncommitted: Option<Uncommitted>,
    /// Committed but not yet durable, oldest first.
    held: VecDeque<Held>,
    /// Answers in `uncommitted` and `held`, all together.
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
            store.commit()?;
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
            uncommitted: None,
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

    /// End of a turn with writes: the answers that report them leave
    /// `ctx.out` and wait with the open transaction; the others go now.
    fn set_aside(&mut self, ctx: &mut Ctx, turn: TurnLog) {
        let mut marked = vec![false; ctx.out.len()];
        for r in &turn.durable {
            for i in r.clone() {
                if let Some(m) = marked.get_mut(i) {
                    *m = true;
                }
            }
        }
        let waiting = self.uncommitted.get_or_insert_with(Uncommitted::default);
        let mut now = Vec::with_capacity(ctx.out.len());
        for (out, held) in std::mem::take(&mut ctx.out).into_iter().zip(marked) {
            if held {
                waiting.outs.push(out);
                self.held_outs += 1;
            } else {
                now.push(out);
            }
        }
        ctx.out = now;
        waiting.fallbacks.extend(turn.fallbacks);
        waiting.nonces.extend(turn.nonces);
    }

    /// Commits the open transaction. Its answers then wait for the syncer
    /// (without one, the commit was durable already and they go now).
    fn commit(&mut self, ctx: &mut Ctx) {
        let waiting = self.uncommitted.take().unwrap_or_default();
        if let Err(e) = self.store.commit() {
            self.commit_failed(ctx, waiting, &e.to_string());
            return;
        }
        let Some(syncer) = &self.syncer else {
            self.held_outs -= waiting.outs.len();
            ctx.out.extend(waiting.outs);
            self.durable_id = self.hub.last_id;
            return;
        };
        self.commits += 1;
        syncer.request(self.commits);
        self.held.push_back(Held {
            seq: self.commits,
            outs: waiting.outs,
            fallbacks: waiting.fallbacks,
            last_id: self.hub.last_id,
        });
    }

    /// A commit failed: nothing since the last commit is stored. Its answers
    /// become errors and the hub goes back to what the database holds.
    fn commit_failed(&mut self, ctx: &mut Ctx, waiting: Uncommitted, error: &str) {
        log::error!(
            "could not save to the database: {error}; {} answers turned into errors",
            waiting.fallbacks.len()
        );
        self.held_outs -= waiting.outs.len();
        ctx.out.extend(waiting.fallbacks);
        for (user, nonce) in &waiting.nonces {
            self.nonces.forget(*user, nonce);
        }
        if let Err(e) = self.hub.reload(&self.store, now_ms()) {
            log::error!("could not reload state from the database: {e}");
        }
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

    /// Queues `out` to go with the held commit that holds message `id`, or
    /// now if that is durable already, or with the open transaction.
    fn send_when_durable(&mut self, ctx: &mut Ctx, id: i64, out: Out) {
        if id <= self.durable_id {
            ctx.out.push(out);
        } else if let Some(h) = self.held.iter_mut().find(|h| h.last_id >= id) {
            h.outs.push(out);
            self.held_outs += 1;
        } else {
            // Not committed yet: it goes with the open transaction.
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
        if !self.store.in_transaction() {
            return;
        }
        self.set_aside(ctx, turn);
        // While a sync runs (every commit not yet reported durable is held),
        // later turns add to the open transaction; one SQLite rolled back is
        // ended (and reported) at once.
        if self.held.is_empty() || self.store.transaction_broken() {
            self.commit(ctx);
        }
    }

    fn shutdown(&mut self) {
        if self.store.in_transaction() {
            if let Err(e) = self.store.commit() {
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

    /// A chat app whose database holds ann, owner of #general, with ann
    /// connected as connection 7 (her `hello` already taken from `ctx`).
    fn ann_in_general(name: &str) -> (ChatApp, Ctx, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("hearth-chat-{name}-{}", std::process::id()));
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
        store.commit().unwrap();
        let mut app = ChatApp::new(store, ChatLimits::default(), None).unwrap();
        let user = app.hub.user_id("ann").unwrap();
        app.hub.conns.insert(7, ConnInfo { user, session: [0; 32] });
        let mut ctx = Ctx { now: Instant::now(), tls: true, out: Vec::new() };
        commands::open(&mut app, &mut ctx, 7);
        ctx.out.clear();
        (app, ctx, dir)
    }

    fn send_frame(nonce: &str) -> String {
        format!(r#"{{"type":"send","room":"general","text":"hi","nonce":"{nonce}"}}"#)
    }

    #[test]
    fn sends_are_refused_while_too_many_answers_wait_for_the_disk() {
        let (mut app, mut ctx, dir) = ann_in_general("behind");
        app.held_outs = HELD_LIMIT;
        commands::handle(&mut app, &mut ctx, 7, &send_frame("n"));
        assert!(text(&ctx.out[0]).contains(r#""code":"unavailable""#), "{}", text(&ctx.out[0]));
        assert_eq!(app.hub.last_id, 0, "nothing stored");
        ctx.out.clear();
        app.held_outs = HELD_LIMIT - 1;
        commands::handle(&mut app, &mut ctx, 7, &send_frame("n"));
        assert!(text(&ctx.out[0]).contains(r#""type":"message""#), "{}", text(&ctx.out[0]));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn writes_made_while_the_disk_is_busy_wait_in_the_open_transaction_for_the_next_commit() {
        let (mut app, mut ctx, dir) = ann_in_general("busy");
        app.store.defer_sync().unwrap();
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        app.syncer = Some(Syncer::start(app.store.path().to_path_buf(), waker));

        // Turn 1: committed at once, its message held until durable.
        commands::handle(&mut app, &mut ctx, 7, &send_frame("a"));
        app.end_turn(&mut ctx);
        assert!(ctx.out.is_empty(), "the message waits for the disk");
        assert_eq!(app.commits, 1);
        // Turns 2 and 3, while that sync may still run: not committed.
        for nonce in ["b", "c"] {
            commands::handle(&mut app, &mut ctx, 7, &send_frame(nonce));
            app.end_turn(&mut ctx);
        }
        assert_eq!(app.commits, 1, "no commit while the syncer is busy");
        assert_eq!(app.uncommitted.as_ref().map(|u| u.outs.len()), Some(2));
        assert_eq!(app.held_outs, 3);
        assert!(app.durable_id < 1);

        // The sync ends: turn 1's message goes out; the next turn commits
        // both waiting messages in one transaction.
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.commits == 1 {
            assert!(Instant::now() < deadline, "the syncer never finished");
            std::thread::sleep(Duration::from_millis(1));
            app.wake(&mut ctx);
            app.end_turn(&mut ctx);
        }
        assert_eq!(app.commits, 2, "one commit for turns 2 and 3");
        assert!(app.uncommitted.is_none());
        let sent: Vec<String> = ctx.out.iter().map(text).collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].contains(r#""nonce":"a""#), "{sent:?}");
        assert_eq!(app.durable_id, 1);
        let stored: i64 =
            app.store.read(|c| c.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))).unwrap();
        assert_eq!(stored, 3);
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
