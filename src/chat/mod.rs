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

use std::collections::HashMap;
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
use crate::store::{self, Store};
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

pub struct ChatApp {
    store: Store,
    hub: Hub,
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
        log::info!(
            "loaded {} users, {} rooms, {} sessions; newest message id {}",
            hub.users.len(),
            hub.rooms.len(),
            hub.sessions.len(),
            hub.last_id
        );
        Ok(ChatApp {
            store,
            hub,
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
        self.hasher = Some(Hasher::start(waker));
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
        let Err(e) = self.store.commit_turn() else {
            return;
        };
        log::error!("could not save to the database: {e}; {} answers turned into errors", turn.durable.len());
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

    fn shutdown(&mut self) {
        if self.store.turn_open() {
            if let Err(e) = self.store.commit_turn() {
                log::error!("could not save to the database at shutdown: {e}");
            }
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
