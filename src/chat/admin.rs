//! The server administrator's routes: users (disable, re-enable, promote,
//! reset a password), the sign-up policy, invites and an overview. Every
//! route answers `403 forbidden` to anyone but an administrator.

use serde::Deserialize;
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;

use super::api::{body, unavailable, Reply};
use super::hub::UserId;
use super::{ChatApp, PendingAuth};
use crate::auth::{self, Job};
use crate::clock::now_ms;
use crate::http::{Request, Response};
use crate::server::{ConnId, Ctx, Out};
use crate::store;

/// Sign-up policies.
pub const POLICIES: [&str; 3] = ["open", "invite", "closed"];
const INVITE_HOURS_DEFAULT: i64 = 72;
const INVITE_HOURS_MAX: i64 = 24 * 365;

fn error(status: u16, code: &str, message: &str) -> Reply {
    Some(Response::error(status, code, message))
}

pub fn route(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    method: &str,
    segs: &[&str],
    req: &Request,
) -> Reply {
    if !app.hub.users.get(&user).is_some_and(|u| u.is_admin()) {
        return error(403, "forbidden", "only the server administrator may do that");
    }
    match (method, segs) {
        ("GET", ["users"]) => users(app),
        ("PUT" | "PATCH", ["users", name]) => update_user(app, ctx, conn, user, name, req),
        ("POST", ["users", name, "password"]) => reset_password(app, conn, name, req),
        ("GET", ["overview"]) => overview(app),
        ("GET", ["settings"]) => Some(Response::json(200, &json!({"signup": app.signup_policy}))),
        ("PUT" | "PATCH", ["settings"]) => update_settings(app, ctx, conn, req),
        ("GET", ["invites"]) => list_invites(app),
        ("POST", ["invites"]) => create_invite(app, ctx, conn, user, req),
        ("DELETE", ["invites", code]) => delete_invite(app, ctx, conn, code),
        _ => error(404, "not_found", "no such route"),
    }
}

fn users(app: &ChatApp) -> Reply {
    let mut list: Vec<&super::hub::User> = app.hub.users.values().collect();
    list.sort_by_key(|u| u.name.to_lowercase());
    let users: Vec<Value> = list
        .into_iter()
        .map(|u| json!({"name": u.name, "role": u.role, "disabled": u.disabled, "online": u.online()}))
        .collect();
    Some(Response::json(200, &json!({ "users": users })))
}

#[derive(Deserialize)]
struct UserUpdate {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

fn update_user(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    me: UserId,
    name: &str,
    req: &Request,
) -> Reply {
    let upd: UserUpdate = match body(req) {
        Ok(u) => u,
        Err(r) => return Some(r),
    };
    let Some(target) = app.hub.user_id(name) else { return error(404, "no_such_user", "no such user") };
    if let Some(role) = &upd.role {
        if role != "admin" && role != "user" {
            return error(400, "bad_request", "role is \"admin\" or \"user\"");
        }
    }
    let admins = app.hub.users.values().filter(|u| u.is_admin() && !u.disabled).count();
    let target_is_admin = app.hub.users[&target].is_admin();
    let loses_admin = upd.role.as_deref() == Some("user") || upd.disabled == Some(true);
    if target_is_admin && loses_admin && admins <= 1 {
        return error(409, "last_admin", "the server needs at least one administrator");
    }
    if target == me && upd.disabled == Some(true) {
        return error(409, "cannot_disable_self", "you cannot disable your own account");
    }
    let result = app.store.write(|c| {
        if let Some(role) = &upd.role {
            store::set_user_role(c, target, role)?;
        }
        if let Some(d) = upd.disabled {
            store::set_user_disabled(c, target, d)?;
            if d {
                store::delete_user_sessions(c, target)?;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        log::error!("user change not saved: {e}");
        return Some(unavailable());
    }
    let start = ctx.out.len();
    if let Some(u) = app.hub.users.get_mut(&target) {
        if let Some(role) = upd.role {
            u.role = role;
        }
        if let Some(d) = upd.disabled {
            u.disabled = d;
        }
    }
    if upd.disabled == Some(true) {
        end_sessions(app, ctx, target, "account disabled");
        log::info!("account {name} disabled");
    }
    let u = &app.hub.users[&target];
    let answer =
        json!({"user": {"name": u.name, "role": u.role, "disabled": u.disabled, "online": u.online()}});
    ctx.respond(conn, Response::json(200, &answer));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
    None
}

/// Forgets every session of `user` and closes their WebSockets.
pub(super) fn end_sessions(app: &mut ChatApp, ctx: &mut Ctx, user: UserId, why: &'static str) {
    app.hub.sessions.retain(|_, s| s.user != user);
    let conns: Vec<ConnId> = app.hub.conns.iter().filter(|(_, i)| i.user == user).map(|(c, _)| *c).collect();
    for c in conns {
        ctx.close(c, CloseCode::Policy, why);
    }
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
}

fn reset_password(app: &mut ChatApp, conn: ConnId, name: &str, req: &Request) -> Reply {
    let arg: NewPassword = match body(req) {
        Ok(a) => a,
        Err(r) => return Some(r),
    };
    let Some(target) = app.hub.user_id(name) else { return error(404, "no_such_user", "no such user") };
    if !auth::valid_password(&arg.password) {
        return error(400, "bad_password", "passwords are 8 to 1024 bytes");
    }
    let id = app.next_job_id();
    let Some(hasher) = app.hasher.as_ref() else { return Some(unavailable()) };
    if hasher.submit(Job::Hash { id, password: arg.password }).is_err() {
        return error(503, "busy", "the server is busy; try again in a moment");
    }
    app.jobs.insert(id, PendingAuth::Reset { conn, user: target });
    None
}

pub(super) fn finish_reset(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    hash: Result<String, String>,
) {
    let Ok(hash) = hash else {
        ctx.respond(conn, Response::error(500, "internal", "could not hash the password"));
        return;
    };
    let result = app.store.write(|c| {
        store::set_password(c, user, &hash)?;
        store::delete_user_sessions(c, user)
    });
    if let Err(e) = result {
        log::error!("password reset not saved: {e}");
        ctx.respond(conn, unavailable());
        return;
    }
    let start = ctx.out.len();
    if let Some(u) = app.hub.users.get_mut(&user) {
        u.pw_hash = hash;
    }
    end_sessions(app, ctx, user, "password changed");
    ctx.respond(conn, Response::empty(204));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
}

fn overview(app: &ChatApp) -> Reply {
    let messages = app.store.read(store::count_messages).unwrap_or(-1);
    let rooms = app.hub.rooms.values().filter(|r| !r.is_dm()).count();
    let dms = app.hub.rooms.len() - rooms;
    let online = app.hub.users.values().filter(|u| u.online()).count();
    Some(Response::json(
        200,
        &json!({
            "users": app.hub.users.len(),
            "rooms": rooms,
            "direct_conversations": dms,
            "connections": app.hub.conns.len(),
            "online_users": online,
            "messages": messages,
            "db_bytes": app.store.size_bytes(),
            "uptime_s": app.started.elapsed().as_secs(),
            "version": crate::VERSION,
            "signup": app.signup_policy,
        }),
    ))
}

#[derive(Deserialize)]
struct SettingsUpdate {
    signup: String,
}

fn update_settings(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, req: &Request) -> Reply {
    let upd: SettingsUpdate = match body(req) {
        Ok(u) => u,
        Err(r) => return Some(r),
    };
    if !POLICIES.contains(&upd.signup.as_str()) {
        return error(400, "bad_request", "signup is \"open\", \"invite\" or \"closed\"");
    }
    if let Err(e) = app.store.write(|c| store::set_setting(c, "signup", &upd.signup)) {
        log::error!("settings not saved: {e}");
        return Some(unavailable());
    }
    app.signup_policy = upd.signup;
    log::info!("sign-up policy is now {}", app.signup_policy);
    let start = ctx.out.len();
    ctx.respond(conn, Response::json(200, &json!({"signup": app.signup_policy})));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
    None
}

fn invite_json(app: &ChatApp, row: &store::InviteRow, now: i64) -> Value {
    let name = |id: Option<UserId>| id.and_then(|i| app.hub.users.get(&i)).map(|u| u.name.clone());
    json!({
        "code": row.code,
        "link": format!("/?invite={}", row.code),
        "expires": row.expires_ms,
        "used_by": name(row.used_by),
        "created_by": name(row.created_by),
        "usable": row.used_by.is_none() && row.expires_ms > now,
    })
}

fn list_invites(app: &ChatApp) -> Reply {
    let now = now_ms();
    match app.store.read(store::list_invites) {
        Ok(rows) => {
            let list: Vec<Value> = rows.iter().map(|r| invite_json(app, r, now)).collect();
            Some(Response::json(200, &json!({ "invites": list })))
        }
        Err(e) => {
            log::error!("invites not read: {e}");
            Some(unavailable())
        }
    }
}

#[derive(Deserialize, Default)]
struct NewInvite {
    #[serde(default)]
    expires_in_hours: Option<i64>,
}

fn create_invite(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, user: UserId, req: &Request) -> Reply {
    let arg: NewInvite = if req.body.is_empty() {
        NewInvite::default()
    } else {
        match body(req) {
            Ok(a) => a,
            Err(r) => return Some(r),
        }
    };
    let hours = arg.expires_in_hours.unwrap_or(INVITE_HOURS_DEFAULT);
    if !(1..=INVITE_HOURS_MAX).contains(&hours) {
        return error(400, "bad_request", "expires_in_hours is 1 to 8760");
    }
    let code = auth::invite_code();
    let now = now_ms();
    let expires = now + hours * 3600 * 1000;
    if let Err(e) = app.store.write(|c| store::insert_invite(c, &code, user, now, expires)) {
        log::error!("invite not saved: {e}");
        return Some(unavailable());
    }
    let row = store::InviteRow { code, created_by: Some(user), expires_ms: expires, used_by: None };
    let start = ctx.out.len();
    ctx.respond(conn, Response::json(201, &json!({"invite": invite_json(app, &row, now)})));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
    None
}

fn delete_invite(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, code: &str) -> Reply {
    match app.store.write(|c| store::delete_invite(c, code)) {
        Ok(0) => error(404, "not_found", "no such invite"),
        Ok(_) => {
            let start = ctx.out.len();
            ctx.respond(conn, Response::empty(204));
            app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
            None
        }
        Err(e) => {
            log::error!("invite deletion not saved: {e}");
            Some(unavailable())
        }
    }
}
