//! The HTTP API of the contract: accounts, sessions and rooms. Each handler
//! takes the parsed request and answers a `Response` now, or `None` when the
//! answer waits for the password hasher.

use std::net::SocketAddr;

use serde::Deserialize;
use serde_json::{json, Value};

use super::hub::{self, RoomRole, UserId};
use super::permissions::{allowed, Action};
use super::{admin, moderation};
use super::{foreign_origin, rate_limited, session_response, ChatApp, PendingAuth, COOKIE};
use crate::auth::{self, Job};
use crate::clock::now_ms;
use crate::http::{percent_decode, Request, Response};
use crate::server::{ConnId, Ctx, Out};
use crate::store;

/// Largest `limit` of a history page.
pub const PAGE_MAX: u32 = 500;
pub const PAGE_DEFAULT: u32 = 50;
/// Longest room topic, in characters.
pub const TOPIC_MAX: usize = 300;

pub(super) type Reply = Option<Response>;

fn error(status: u16, code: &str, message: &str) -> Reply {
    Some(Response::error(status, code, message))
}

pub(super) fn unavailable() -> Response {
    Response::error(503, "unavailable", "the server could not save this; try again")
}

pub fn handle(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, peer: SocketAddr, req: Request) -> Reply {
    let Some(rest) = req.path.strip_prefix("/api/") else {
        return error(404, "not_found", "no such page");
    };
    let segments: Vec<String> = rest.split('/').map(percent_decode).collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method.as_str();
    let changes_state = !matches!(method, "GET" | "HEAD");
    // Cookie-authenticated changes must come from our own pages (CSRF).
    if changes_state && req.cookie(COOKIE).is_some() && foreign_origin(&req, ctx.tls) {
        return error(403, "bad_origin", "request from a foreign origin");
    }
    match (method, segs.as_slice()) {
        ("POST", ["signup"]) => signup(app, ctx, conn, &req),
        ("POST", ["login"]) => login(app, ctx, conn, peer, &req),
        (_, ["signup" | "login"]) => not_allowed("POST"),
        ("GET", ["config"]) => {
            Some(Response::json(200, &json!({"signup": app.signup_policy, "version": crate::VERSION})))
        }
        _ => {
            let Some((user, session, _)) = app.authenticate(&req) else {
                return error(401, "unauthorized", "log in first");
            };
            match (method, segs.as_slice()) {
                ("POST", ["logout"]) => logout(app, ctx, session),
                ("GET", ["me"]) => Some(Response::json(200, &json!({"user": app.hub.users[&user].json()}))),
                ("GET", ["rooms"]) => list_rooms(app, user),
                ("POST", ["rooms"]) => create_room(app, ctx, conn, user, &req),
                ("GET", ["rooms", name]) => room_detail(app, user, name),
                ("PATCH" | "PUT", ["rooms", name]) => {
                    moderation::update_room(app, ctx, conn, user, name, &req)
                }
                ("DELETE", ["rooms", name]) => moderation::delete_room(app, ctx, conn, user, name),
                ("GET", ["rooms", name, "messages"]) => history(app, user, name, &req),
                ("DELETE", ["rooms", name, "messages", id]) => {
                    moderation::delete_message(app, ctx, conn, user, name, id)
                }
                ("POST", ["rooms", name, "members"]) => {
                    moderation::add_member(app, ctx, conn, user, name, &req)
                }
                ("PUT" | "PATCH", ["rooms", name, "members", target]) => {
                    moderation::set_role(app, ctx, conn, user, name, target, &req)
                }
                ("DELETE", ["rooms", name, "members", target]) => {
                    moderation::remove_member(app, ctx, conn, user, name, target)
                }
                ("GET", ["rooms", name, "bans"]) => moderation::list_bans(app, user, name),
                ("POST", ["rooms", name, "bans"]) => moderation::ban(app, ctx, conn, user, name, &req),
                ("DELETE", ["rooms", name, "bans", target]) => {
                    moderation::unban(app, ctx, conn, user, name, target)
                }
                ("GET", ["dms"]) => moderation::list_dms(app, user),
                ("POST", ["dms"]) => moderation::open_dm(app, ctx, conn, user, &req),
                (_, ["admin", rest @ ..]) => admin::route(app, ctx, conn, user, method, rest, &req),
                (_, ["logout"]) => not_allowed("POST"),
                (_, ["me"]) => not_allowed("GET"),
                (_, ["rooms"] | ["dms"]) => not_allowed("GET, POST"),
                (_, ["rooms", _]) => not_allowed("GET, PATCH, DELETE"),
                (_, ["rooms", _, "messages"]) => not_allowed("GET"),
                (_, ["rooms", _, "members" | "bans"]) => not_allowed("POST"),
                _ => error(404, "not_found", "no such route"),
            }
        }
    }
}

fn not_allowed(allow: &str) -> Reply {
    Some(
        Response::error(405, "method_not_allowed", "this route does not take that method")
            .with_header("Allow", allow.to_string()),
    )
}

/// Parses a JSON body into `T`; errors are the contract's 415 and 400.
pub(super) fn body<'a, T: Deserialize<'a>>(req: &'a Request) -> Result<T, Response> {
    let json_type = req.header("content-type").is_some_and(|t| {
        t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json_type {
        return Err(Response::error(
            415,
            "unsupported_media_type",
            "send a JSON body (Content-Type: application/json)",
        ));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() { "bad_json" } else { "bad_request" };
        Response::error(400, code, &format!("invalid body: {e}"))
    })
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    /// Sign-up only: the invite code, when the policy is `invite`.
    #[serde(default)]
    invite: Option<String>,
}

fn signup(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, req: &Request) -> Reply {
    let creds: Credentials = match body(req) {
        Ok(c) => c,
        Err(resp) => return Some(resp),
    };
    if !auth::valid_name(&creds.username) {
        return error(400, "bad_name", "usernames are 1 to 32 letters, digits, '_', '.' or '-'");
    }
    if !auth::valid_password(&creds.password) {
        return error(400, "bad_password", "passwords are 8 to 1024 bytes");
    }
    if app.hub.user_id(&creds.username).is_some() {
        return error(409, "name_taken", "that username is taken");
    }
    let invite = match signup_allowed(app, creds.invite) {
        Ok(invite) => invite,
        Err(resp) => return Some(resp),
    };
    let id = app.next_job_id();
    let Some(hasher) = app.hasher.as_ref() else { return Some(unavailable()) };
    if hasher.submit(Job::Hash { id, password: creds.password }).is_err() {
        return error(503, "busy", "the server is busy; try again in a moment");
    }
    let _ = ctx;
    app.jobs.insert(id, PendingAuth::Signup { conn, name: creds.username, invite });
    None
}

/// Applies the sign-up policy; returns the invite code to spend, if any.
/// The first account is always allowed: it becomes the administrator.
fn signup_allowed(app: &ChatApp, invite: Option<String>) -> Result<Option<String>, Response> {
    if app.hub.users.is_empty() {
        return Ok(None);
    }
    match app.signup_policy.as_str() {
        "closed" => Err(Response::error(
            403,
            "signup_closed",
            "sign-up is closed on this server; ask the administrator",
        )),
        "invite" => {
            let Some(code) = invite.filter(|c| !c.is_empty()) else {
                return Err(Response::error(
                    403,
                    "invite_required",
                    "sign-up on this server takes an invite code",
                ));
            };
            let usable = app
                .store
                .read(|c| store::get_invite(c, &code))
                .ok()
                .flatten()
                .is_some_and(|i| i.used_by.is_none() && i.expires_ms > now_ms());
            if !usable {
                return Err(Response::error(
                    403,
                    "bad_invite",
                    "that invite code is not valid (used or expired)",
                ));
            }
            Ok(Some(code))
        }
        _ => Ok(None),
    }
}

pub(super) fn finish_signup(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    name: &str,
    invite: Option<&str>,
    hash: Result<String, String>,
) {
    let Ok(hash) = hash else {
        ctx.respond(conn, Response::error(500, "internal", "could not hash the password"));
        return;
    };
    if app.hub.user_id(name).is_some() {
        ctx.respond(conn, Response::error(409, "name_taken", "that username is taken"));
        return;
    }
    // The first account on an empty server is its administrator.
    let role = if app.hub.users.is_empty() { "admin" } else { "user" };
    let (token, token_hash) = auth::new_token();
    let now = now_ms();
    let expires = now + auth::SESSION_MS;
    let result = app.store.write(|c| {
        let id = store::insert_user(c, name, &hash, role, now)?;
        if let Some(code) = invite {
            if !store::use_invite(c, code, id, now)? {
                // Used by someone else meanwhile: undo this sign-up.
                return Ok(None);
            }
        }
        store::insert_session(c, &token_hash, id, expires)?;
        Ok(Some(id))
    });
    let id = match result {
        Ok(Some(id)) => id,
        Ok(None) => {
            let _ = app
                .store
                .write(|c| c.execute("DELETE FROM users WHERE name_key = ?1", [name.to_lowercase()]));
            ctx.respond(
                conn,
                Response::error(403, "bad_invite", "that invite code is not valid (used or expired)"),
            );
            return;
        }
        Err(e) => {
            log::error!("sign-up of {name} not saved: {e}");
            ctx.respond(conn, unavailable());
            return;
        }
    };
    app.hub.add_user(store::UserRow {
        id,
        name: name.to_string(),
        pw_hash: hash,
        role: role.into(),
        disabled: false,
    });
    app.hub.sessions.insert(token_hash, hub::Session { user: id, expires_ms: expires });
    log::info!("new account {name} ({role})");
    let start = ctx.out.len();
    ctx.respond(conn, session_response(201, &app.hub.users[&id], &token, ctx.tls));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
}

fn login(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, peer: SocketAddr, req: &Request) -> Reply {
    let creds: Credentials = match body(req) {
        Ok(c) => c,
        Err(resp) => return Some(resp),
    };
    if creds.password.len() > auth::PASSWORD_MAX {
        return error(400, "bad_password", "passwords are 8 to 1024 bytes");
    }
    let key = creds.username.to_lowercase();
    let ip = peer.ip();
    let wait = [app.login_by_name.blocked(&key, ctx.now), app.login_by_ip.blocked(&ip, ctx.now)]
        .into_iter()
        .flatten()
        .max();
    if let Some(wait) = wait {
        return Some(rate_limited(wait));
    }
    let user = app.hub.user_id(&creds.username);
    let phc = user.and_then(|u| app.hub.users.get(&u)).map(|u| u.pw_hash.clone());
    let id = app.next_job_id();
    let Some(hasher) = app.hasher.as_ref() else {
        return Some(unavailable());
    };
    if hasher.submit(Job::Verify { id, password: creds.password, phc }).is_err() {
        return error(503, "busy", "the server is busy; try again in a moment");
    }
    app.jobs.insert(id, PendingAuth::Login { conn, user, key, ip });
    None
}

pub(super) fn finish_login(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: Option<UserId>,
    key: &str,
    ip: std::net::IpAddr,
    ok: bool,
) {
    let Some(user) = user.filter(|_| ok) else {
        app.login_by_name.fail(key.to_string(), ctx.now);
        app.login_by_ip.fail(ip, ctx.now);
        ctx.respond(conn, Response::error(401, "bad_credentials", "wrong username or password"));
        return;
    };
    app.login_by_name.succeed(&key.to_string());
    if app.hub.users.get(&user).is_none_or(|u| u.disabled) {
        ctx.respond(
            conn,
            Response::error(403, "disabled", "this account is disabled; ask the administrator"),
        );
        return;
    }
    let (token, token_hash) = auth::new_token();
    let expires = now_ms() + auth::SESSION_MS;
    if let Err(e) = app.store.write(|c| store::insert_session(c, &token_hash, user, expires)) {
        log::error!("session not saved: {e}");
        ctx.respond(conn, unavailable());
        return;
    }
    app.hub.sessions.insert(token_hash, hub::Session { user, expires_ms: expires });
    let start = ctx.out.len();
    ctx.respond(conn, session_response(200, &app.hub.users[&user], &token, ctx.tls));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
}

fn logout(app: &mut ChatApp, ctx: &mut Ctx, session: hub::TokenHash) -> Reply {
    if let Err(e) = app.store.write(|c| store::delete_session(c, &session)) {
        log::error!("logout not saved: {e}");
        return Some(unavailable());
    }
    app.hub.sessions.remove(&session);
    // Every WebSocket of this session closes at once.
    let conns: Vec<ConnId> =
        app.hub.conns.iter().filter(|(_, info)| info.session == session).map(|(c, _)| *c).collect();
    for c in conns {
        ctx.close(c, tungstenite::protocol::frame::coding::CloseCode::Normal, "logged out");
    }
    let secure = if ctx.tls { "; Secure" } else { "" };
    Some(Response::empty(204).with_header(
        "Set-Cookie",
        format!("{COOKIE}=; HttpOnly{secure}; SameSite=Strict; Path=/; Max-Age=0"),
    ))
}

fn list_rooms(app: &ChatApp, user: UserId) -> Reply {
    let mut rooms: Vec<&hub::Room> = app
        .hub
        .rooms
        .values()
        .filter(|r| !r.is_dm() && (r.is_public() || r.members.contains_key(&user)))
        .collect();
    rooms.sort_by_key(|r| r.name.to_lowercase());
    let list: Vec<Value> = rooms.into_iter().map(|r| app.hub.room_json(r, user)).collect();
    Some(Response::json(200, &json!({ "rooms": list })))
}

#[derive(Deserialize)]
struct NewRoom {
    name: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
}

fn create_room(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, user: UserId, req: &Request) -> Reply {
    let new: NewRoom = match body(req) {
        Ok(n) => n,
        Err(resp) => return Some(resp),
    };
    if !auth::valid_name(&new.name) {
        return error(400, "bad_name", "room names are 1 to 32 letters, digits, '_', '.' or '-'");
    }
    let topic = new.topic.unwrap_or_default();
    if topic.chars().count() > TOPIC_MAX {
        return error(400, "too_long", "the topic is too long (300 characters at most)");
    }
    let visibility = new.visibility.unwrap_or_else(|| "public".into());
    if visibility != "public" && visibility != "private" {
        return error(400, "bad_request", "visibility is \"public\" or \"private\"");
    }
    if app.hub.room_id(&new.name).is_some() {
        return error(409, "name_taken", "a room with that name exists");
    }
    let now = now_ms();
    let result = app.store.write(|c| {
        let row = store::RoomRow {
            id: 0,
            name: new.name.clone(),
            topic: topic.clone(),
            visibility: visibility.clone(),
            kind: "room".into(),
        };
        let id = store::insert_room(c, &row, now)?;
        store::upsert_member(c, id, user, RoomRole::Owner.as_str())?;
        Ok(id)
    });
    let id = match result {
        Ok(id) => id,
        Err(e) => {
            log::error!("room {} not saved: {e}", new.name);
            return Some(unavailable());
        }
    };
    app.hub
        .add_room(store::RoomRow { id, name: new.name.clone(), topic, visibility, kind: "room".into() }, 0);
    app.hub.set_member(id, user, RoomRole::Owner);
    let room_json = app.hub.room_json(&app.hub.rooms[&id], user);
    let start = ctx.out.len();
    // The creator's open tabs learn of the room at once.
    app.hub.send_user(ctx, user, &hub::frame(&json!({"type": "joined", "room": room_json})));
    ctx.respond(conn, Response::json(201, &json!({ "room": room_json })));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
    // Answered through ctx so it is dropped with the rest if the commit fails.
    None
}

fn room_detail(app: &ChatApp, user: UserId, name: &str) -> Reply {
    let Some(room) = app.hub.visible_room(name, user) else {
        return error(404, "not_found", "no such room");
    };
    let mut members: Vec<(u8, String, Value)> = room
        .members
        .iter()
        .filter_map(|(uid, role)| {
            let u = app.hub.users.get(uid)?;
            let order = match role {
                RoomRole::Owner => 0,
                RoomRole::Admin => 1,
                RoomRole::Member => 2,
            };
            Some((
                order,
                u.name.to_lowercase(),
                json!({"name": u.name, "role": role.as_str(), "online": u.online()}),
            ))
        })
        .collect();
    members.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let members: Vec<Value> = members.into_iter().map(|m| m.2).collect();
    Some(Response::json(200, &json!({"room": app.hub.room_json(room, user), "members": members})))
}

fn history(app: &ChatApp, user: UserId, name: &str, req: &Request) -> Reply {
    let Some(room) = app.hub.visible_room(name, user) else {
        return error(404, "not_found", "no such room");
    };
    if !allowed(app.hub.actor(room, user), Action::Participate) {
        return error(403, "not_member", "join the room to read its messages");
    }
    let num =
        |key: &str| -> Result<Option<i64>, Response> {
            match req.query_param(key) {
                None => Ok(None),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).map(Some).ok_or_else(|| {
                    Response::error(400, "bad_request", &format!("'{key}' must be a message id"))
                }),
            }
        };
    let (before, after) = match (num("before"), num("after")) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(r), _) | (_, Err(r)) => return Some(r),
    };
    let limit = match num("limit") {
        Ok(None) => PAGE_DEFAULT,
        Ok(Some(n)) if (1..=i64::from(PAGE_MAX)).contains(&n) => n as u32,
        Ok(Some(_)) => return error(400, "bad_request", "'limit' is 1 to 500"),
        Err(r) => return Some(r),
    };
    // Only what is durable: a message still being synced is not history yet.
    let before = Some(before.unwrap_or(i64::MAX).min(app.durable_id + 1));
    match app.store.read(|c| store::messages_page(c, room.id, before, after, limit)) {
        Ok(rows) => {
            let list: Vec<Value> = rows.iter().map(|m| app.hub.message_json(m)).collect();
            Some(Response::json(200, &json!({ "messages": list })))
        }
        Err(e) => {
            log::error!("history of {} not read: {e}", room.name);
            Some(unavailable())
        }
    }
}
