//! WebSocket messages of the contract: `hello` on open, presence, and the
//! client commands `join`, `leave`, `send`, `sync`, `typing`. A bad command
//! gets an `error` frame and the connection stays usable.

use serde_json::{json, Value};

use super::hub::{self, RoomRole, UserId};
use super::ChatApp;
use crate::clock::now_ms;
use crate::server::{ConnId, Ctx, Out};
use crate::store;

/// Longest message text, in characters.
pub const TEXT_MAX: usize = 4000;
/// Longest nonce, in characters.
pub const NONCE_MAX: usize = 64;
/// A `sync` replays at most this many messages, or this many bytes, per batch.
pub const SYNC_BATCH: u32 = 200;
pub const SYNC_BATCH_BYTES: usize = 256 * 1024;

pub fn send_error(ctx: &mut Ctx, conn: ConnId, code: &str, message: &str, nonce: Option<&Value>) {
    let mut v = json!({"type": "error", "code": code, "message": message});
    if let Some(n) = nonce {
        v["nonce"] = n.clone();
    }
    ctx.send_text(conn, hub::frame(&v));
}

/// A new connection: register it, say hello, and tell the user's rooms
/// when the user just came online.
pub fn open(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId) {
    let Some(info) = app.hub.conns.get(&conn) else {
        return;
    };
    let user_id = info.user;
    let Some(user) = app.hub.users.get_mut(&user_id) else {
        return;
    };
    let first = user.conns.is_empty();
    user.conns.push(conn);
    let user = &app.hub.users[&user_id];
    let rooms: Vec<Value> = user
        .rooms
        .iter()
        .filter_map(|r| app.hub.rooms.get(r))
        .map(|r| app.hub.room_json(r, user_id))
        .collect();
    let hello = json!({
        "type": "hello", "user": user.json(), "rooms": rooms,
        "last_id": app.durable_id, "epoch": app.epoch,
    });
    ctx.send_text(conn, hub::frame(&hello));
    if first {
        presence(app, ctx, user_id, true);
    }
}

pub fn closed(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId) {
    let Some(info) = app.hub.conns.remove(&conn) else {
        return;
    };
    let Some(user) = app.hub.users.get_mut(&info.user) else {
        return;
    };
    user.conns.retain(|c| *c != conn);
    if user.conns.is_empty() {
        presence(app, ctx, info.user, false);
    }
}

fn presence(app: &ChatApp, ctx: &mut Ctx, user_id: UserId, online: bool) {
    let user = &app.hub.users[&user_id];
    for room in &user.rooms {
        let Some(r) = app.hub.rooms.get(room) else {
            continue;
        };
        let f = hub::frame(&json!({"type": "presence", "room": r.name, "user": user.name, "online": online}));
        app.hub.send_room(ctx, *room, &f, Some(user_id));
    }
}

pub fn handle(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, text: &str) {
    let Some(user) = app.hub.conns.get(&conn).map(|i| i.user) else {
        return;
    };
    let msg: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return send_error(ctx, conn, "bad_request", "a command is a JSON object", None),
        Err(_) => return send_error(ctx, conn, "bad_json", "that is not valid JSON", None),
    };
    let nonce = msg.get("nonce").filter(|n| !n.is_null());
    let Some(kind) = msg.get("type").and_then(Value::as_str) else {
        return send_error(ctx, conn, "bad_request", "missing \"type\"", nonce);
    };
    let result = match kind {
        "join" => room_arg(&msg).and_then(|room| join(app, ctx, user, room)),
        "leave" => room_arg(&msg).and_then(|room| leave(app, ctx, user, room)),
        "send" => send(app, ctx, conn, user, &msg),
        "sync" => sync(app, ctx, conn, user, &msg),
        "typing" => room_arg(&msg).and_then(|room| typing(app, ctx, user, room)),
        _ => Err(("unknown_type", format!("unknown command type \"{kind}\""))),
    };
    if let Err((code, message)) = result {
        send_error(ctx, conn, code, &message, nonce);
    }
}

type CmdResult = Result<(), (&'static str, String)>;

fn bad(message: &str) -> (&'static str, String) {
    ("bad_request", message.to_string())
}

fn not_found() -> (&'static str, String) {
    ("not_found", "no such room".to_string())
}

fn unavailable() -> (&'static str, String) {
    ("unavailable", "the server could not save this; try again".to_string())
}

fn room_arg(msg: &Value) -> Result<&str, (&'static str, String)> {
    match msg.get("room") {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad("\"room\" must be a string")),
        None => Err(bad("missing \"room\"")),
    }
}

fn join(app: &mut ChatApp, ctx: &mut Ctx, user: UserId, name: &str) -> CmdResult {
    let room = app.hub.visible_room(name, user).ok_or_else(not_found)?;
    let room_id = room.id;
    if room.bans.contains(&user) {
        return Err(("banned", "you are banned from this room".into()));
    }
    if !room.members.contains_key(&user) {
        if let Err(e) = app.store.write(|c| store::upsert_member(c, room_id, user, RoomRole::Member.as_str()))
        {
            log::error!("join not saved: {e}");
            return Err(unavailable());
        }
        app.hub.set_member(room_id, user, RoomRole::Member);
        let start = ctx.out.len();
        let u = &app.hub.users[&user];
        let r = &app.hub.rooms[&room_id];
        let ev = hub::frame(&json!({"type": "member", "room": r.name, "user": u.name, "event": "joined"}));
        app.hub.send_room(ctx, room_id, &ev, Some(user));
        if u.online() {
            let p = hub::frame(&json!({"type": "presence", "room": r.name, "user": u.name, "online": true}));
            app.hub.send_room(ctx, room_id, &p, Some(user));
        }
        let joined = hub::frame(&json!({"type": "joined", "room": app.hub.room_json(r, user)}));
        app.hub.send_user(ctx, user, &joined);
        app.durable_since(ctx, start, None);
        return Ok(());
    }
    // Already a member: answer the same, so a retried join is harmless.
    let joined =
        hub::frame(&json!({"type": "joined", "room": app.hub.room_json(&app.hub.rooms[&room_id], user)}));
    app.hub.send_user(ctx, user, &joined);
    Ok(())
}

fn leave(app: &mut ChatApp, ctx: &mut Ctx, user: UserId, name: &str) -> CmdResult {
    let room = app.hub.visible_room(name, user).ok_or_else(not_found)?;
    let room_id = room.id;
    let room_name = room.name.clone();
    if room.is_dm() {
        return Err(bad("a direct conversation cannot be left"));
    }
    if room.members.get(&user) == Some(&RoomRole::Owner) && room.members.len() > 1 {
        return Err(("owner_must_transfer", "hand ownership to another member before leaving".into()));
    }
    if room.members.contains_key(&user) {
        if let Err(e) = app.store.write(|c| store::delete_member(c, room_id, user)) {
            log::error!("leave not saved: {e}");
            return Err(unavailable());
        }
        app.hub.remove_member(room_id, user);
        let start = ctx.out.len();
        let u = &app.hub.users[&user];
        let ev = hub::frame(&json!({"type": "member", "room": room_name, "user": u.name, "event": "left"}));
        app.hub.send_room(ctx, room_id, &ev, None);
        app.hub.send_user(ctx, user, &hub::frame(&json!({"type": "left", "room": room_name})));
        app.durable_since(ctx, start, None);
    } else {
        app.hub.send_user(ctx, user, &hub::frame(&json!({"type": "left", "room": room_name})));
    }
    Ok(())
}

fn send(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, user: UserId, msg: &Value) -> CmdResult {
    let name = room_arg(msg)?;
    let text = match msg.get("text") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(bad("\"text\" must be a string")),
        None => return Err(bad("missing \"text\"")),
    };
    let nonce = match msg.get("nonce") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= NONCE_MAX => Some(s.as_str()),
        Some(Value::String(_)) => {
            return Err(("too_long", format!("a nonce is at most {NONCE_MAX} characters")))
        }
        Some(_) => return Err(bad("\"nonce\" must be a string")),
    };
    let len = text.chars().count();
    if len == 0 || text.trim().is_empty() {
        return Err(bad("the message is empty"));
    }
    if len > TEXT_MAX {
        return Err(("too_long", format!("a message is at most {TEXT_MAX} characters")));
    }
    let room = app.hub.visible_room(name, user).ok_or_else(not_found)?;
    if !room.members.contains_key(&user) {
        return Err(("not_member", "join the room before sending to it".into()));
    }
    let room_id = room.id;
    // A resend of a nonce already stored: answer the original message.
    if let Some(nonce) = nonce {
        if let Some(id) = app.nonces.get(user, nonce, ctx.now) {
            if let Ok(Some(row)) = app.store.read(|c| store::message_by_id(c, id)) {
                let frame = tungstenite::Message::Text(hub::frame(&app.hub.message_json(&row)));
                app.send_when_durable(ctx, id, Out::Send(conn, frame));
                return Ok(());
            }
        }
    }
    let Some(u) = app.hub.users.get_mut(&user) else {
        return Ok(());
    };
    if !u.bucket.take(ctx.now) {
        return Err(("rate_limited", "slow down: too many messages".into()));
    }
    if app.disk_behind() {
        return Err(("unavailable", "the server's disk is not keeping up; try again in a moment".into()));
    }
    let ts = now_ms();
    let id = match app.store.write(|c| store::insert_message(c, room_id, user, text, ts, nonce)) {
        Ok(id) => id,
        Err(e) => {
            log::error!("message not saved: {e}");
            return Err(unavailable());
        }
    };
    app.hub.last_id = app.hub.last_id.max(id);
    if let Some(r) = app.hub.rooms.get_mut(&room_id) {
        r.last_id = id;
    }
    if let Some(n) = nonce {
        app.nonces.insert(user, n, id, ctx.now);
        app.turn.nonces.push((user, n.to_string()));
    }
    let row = store::MessageRow {
        id,
        room_id,
        user_id: user,
        text: text.to_string(),
        ts,
        nonce: nonce.map(String::from),
    };
    let start = ctx.out.len();
    app.hub.send_room(ctx, room_id, &hub::frame(&app.hub.message_json(&row)), None);
    let mut err = json!({"type": "error", "code": "unavailable", "message": "the server could not save this; try again"});
    if let Some(n) = msg.get("nonce") {
        err["nonce"] = n.clone();
    }
    app.durable_since(ctx, start, Some(Out::Send(conn, tungstenite::Message::Text(hub::frame(&err)))));
    Ok(())
}

fn sync(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, user: UserId, msg: &Value) -> CmdResult {
    let since = match msg.get("since") {
        Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| bad("\"since\" must be a message id"))?,
        None => 0,
    };
    let rows = app
        .store
        .read(|c| store::messages_since(c, user, since, app.durable_id, SYNC_BATCH + 1))
        .map_err(|e| {
            log::error!("sync not read: {e}");
            unavailable()
        })?;
    let mut more = rows.len() > SYNC_BATCH as usize;
    let mut last = since;
    let mut bytes = 0;
    for (i, row) in rows.iter().enumerate() {
        if i == SYNC_BATCH as usize || bytes >= SYNC_BATCH_BYTES {
            more = true;
            break;
        }
        let f = hub::frame(&app.hub.message_json(row));
        bytes += f.len();
        ctx.send_text(conn, f);
        last = row.id;
    }
    // Nothing missed: the cursor moves to the newest id on the server.
    if !more {
        last = last.max(app.durable_id);
    }
    ctx.send_text(conn, hub::frame(&json!({"type": "synced", "last_id": last, "more": more})));
    Ok(())
}

fn typing(app: &mut ChatApp, ctx: &mut Ctx, user: UserId, name: &str) -> CmdResult {
    let room = app.hub.visible_room(name, user).ok_or_else(not_found)?;
    if !room.members.contains_key(&user) {
        return Err(("not_member", "join the room first".into()));
    }
    let room_id = room.id;
    let frame = hub::frame(&json!({"type": "typing", "room": room.name, "user": app.hub.users[&user].name}));
    let Some(u) = app.hub.users.get_mut(&user) else {
        return Ok(());
    };
    // At most one relayed per user and room per second.
    let now = ctx.now;
    match u.typing.iter_mut().find(|(r, _)| *r == room_id) {
        Some((_, t)) if now.saturating_duration_since(*t) < std::time::Duration::from_secs(1) => {
            return Ok(())
        }
        Some((_, t)) => *t = now,
        None => u.typing.push((room_id, now)),
    }
    app.hub.send_room(ctx, room_id, &frame, Some(user));
    Ok(())
}
