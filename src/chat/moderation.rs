//! Room moderation and direct messages over HTTP: members, roles, kicks,
//! bans, deleting messages, room settings, deleting rooms, starting a
//! direct conversation. Permissions come from `permissions::allowed`; a room
//! the caller cannot see answers exactly as a room that does not exist.

use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{body, unavailable, Reply};
use super::hub::{self, RoomId, RoomRole, UserId};
use super::permissions::{allowed, Action};
use super::ChatApp;
use crate::clock::now_ms;
use crate::http::{Request, Response};
use crate::server::{ConnId, Ctx, Out};
use crate::store;

fn error(status: u16, code: &str, message: &str) -> Reply {
    Some(Response::error(status, code, message))
}

fn room_not_found() -> Reply {
    error(404, "not_found", "no such room")
}

fn forbidden() -> Reply {
    error(403, "forbidden", "you are not allowed to do that in this room")
}

/// Resolves a room the caller can see, and the caller's standing in it.
fn visible(app: &ChatApp, user: UserId, name: &str) -> Option<(RoomId, super::permissions::Actor)> {
    let room = app.hub.visible_room(name, user)?;
    Some((room.id, app.hub.actor(room, user)))
}

/// The request's body as `T` and the room as the caller sees it, or the
/// answer that refuses (the body is checked first, so a hidden room and a
/// missing one answer alike).
fn body_and_room<T: serde::de::DeserializeOwned>(
    app: &ChatApp,
    user: UserId,
    name: &str,
    req: &Request,
) -> Result<(T, RoomId, super::permissions::Actor), Response> {
    let arg: T = body(req)?;
    let (room, actor) =
        visible(app, user, name).ok_or_else(|| Response::error(404, "not_found", "no such room"))?;
    Ok((arg, room, actor))
}

/// `body_and_room`, and the caller may do `action` there (else 403).
fn body_for<T: serde::de::DeserializeOwned>(
    app: &ChatApp,
    user: UserId,
    name: &str,
    req: &Request,
    action: Action,
) -> Result<(T, RoomId), Response> {
    let (arg, room, actor) = body_and_room::<T>(app, user, name, req)?;
    if !allowed(actor, action) {
        return Err(Response::error(403, "forbidden", "you are not allowed to do that in this room"));
    }
    Ok((arg, room))
}

#[derive(Deserialize)]
struct UserArg {
    user: String,
}

/// Answers `204` through `ctx`, marked durable with the events queued since `start`.
fn done(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, start: usize) -> Reply {
    ctx.respond(conn, Response::empty(204));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
    None
}

fn send_member_event(app: &ChatApp, ctx: &mut Ctx, room: RoomId, user: UserId, event: &str) {
    let (Some(r), Some(u)) = (app.hub.rooms.get(&room), app.hub.users.get(&user)) else { return };
    let f = hub::frame(&json!({"type": "member", "room": r.name, "user": u.name, "event": event}));
    app.hub.send_room(ctx, room, &f, Some(user));
}

pub fn add_member(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    name: &str,
    req: &Request,
) -> Reply {
    let (arg, room_id) = match body_for::<UserArg>(app, user, name, req, Action::AddMember) {
        Ok(v) => v,
        Err(r) => return Some(r),
    };
    let Some(target) = app.hub.user_id(&arg.user) else { return error(404, "no_such_user", "no such user") };
    let room = &app.hub.rooms[&room_id];
    if room.bans.contains(&target) {
        return error(409, "banned", "that user is banned from this room; lift the ban first");
    }
    if room.members.contains_key(&target) {
        return Some(Response::empty(204));
    }
    if let Err(e) = app.store.write(|c| store::upsert_member(c, room_id, target, RoomRole::Member.as_str())) {
        log::error!("add member not saved: {e}");
        return Some(unavailable());
    }
    app.hub.set_member(room_id, target, RoomRole::Member);
    let start = ctx.out.len();
    send_member_event(app, ctx, room_id, target, "joined");
    let joined = json!({"type": "joined", "room": app.hub.room_json(&app.hub.rooms[&room_id], target)});
    app.hub.send_user(ctx, target, &hub::frame(&joined));
    done(app, ctx, conn, start)
}

#[derive(Deserialize)]
struct RoleArg {
    role: String,
}

pub fn set_role(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    name: &str,
    target_name: &str,
    req: &Request,
) -> Reply {
    let (arg, room_id) = match body_for::<RoleArg>(app, user, name, req, Action::SetRole) {
        Ok(v) => v,
        Err(r) => return Some(r),
    };
    let Some(new_role) = RoomRole::parse(&arg.role) else {
        return error(400, "bad_request", "role is \"admin\", \"member\" or \"owner\"");
    };
    let Some(target) = app.hub.user_id(target_name) else {
        return error(404, "no_such_user", "no such user");
    };
    let room = &app.hub.rooms[&room_id];
    let Some(&old_role) = room.members.get(&target) else {
        return error(404, "not_member", "that user is not a member of this room");
    };
    if old_role == new_role {
        return Some(Response::empty(204));
    }
    if old_role == RoomRole::Owner {
        return error(409, "owner_must_transfer", "make another member the owner instead");
    }
    // Handing ownership over: the old owner stays on as an admin.
    let old_owner = room.members.iter().find(|(_, r)| **r == RoomRole::Owner).map(|(u, _)| *u);
    let result = app.store.write(|c| {
        store::upsert_member(c, room_id, target, new_role.as_str())?;
        if let (RoomRole::Owner, Some(o)) = (new_role, old_owner) {
            store::upsert_member(c, room_id, o, RoomRole::Admin.as_str())?;
        }
        Ok(())
    });
    if let Err(e) = result {
        log::error!("role change not saved: {e}");
        return Some(unavailable());
    }
    let mut changed = vec![(target, new_role)];
    if let (RoomRole::Owner, Some(o)) = (new_role, old_owner) {
        changed.push((o, RoomRole::Admin));
    }
    let start = ctx.out.len();
    for (u, role) in changed {
        app.hub.set_member(room_id, u, role);
        let (r, who) = (&app.hub.rooms[&room_id], &app.hub.users[&u]);
        let f = json!({"type": "member", "room": r.name, "user": who.name, "event": "role", "role": role.as_str()});
        app.hub.send_room(ctx, room_id, &hub::frame(&f), None);
    }
    done(app, ctx, conn, start)
}

/// Kick (or, for oneself, leave) over HTTP.
pub fn remove_member(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    name: &str,
    target_name: &str,
) -> Reply {
    let Some((room_id, actor)) = visible(app, user, name) else { return room_not_found() };
    let Some(target) = app.hub.user_id(target_name) else {
        return error(404, "no_such_user", "no such user");
    };
    let room = &app.hub.rooms[&room_id];
    if room.is_dm() {
        // Not a moderation matter: a direct conversation cannot be left (as with `leave`).
        return forbidden();
    }
    let Some(&target_role) = room.members.get(&target) else {
        return error(404, "not_member", "that user is not a member of this room");
    };
    if target == user {
        if target_role == RoomRole::Owner && room.members.len() > 1 {
            return error(409, "owner_must_transfer", "hand ownership to another member before leaving");
        }
    } else if !allowed(actor, Action::Remove(target_role)) {
        return forbidden();
    }
    remove(app, ctx, conn, room_id, target, false)
}

pub fn ban(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, user: UserId, name: &str, req: &Request) -> Reply {
    let (arg, room_id, actor) = match body_and_room::<UserArg>(app, user, name, req) {
        Ok(v) => v,
        Err(r) => return Some(r),
    };
    let Some(target) = app.hub.user_id(&arg.user) else { return error(404, "no_such_user", "no such user") };
    let room = &app.hub.rooms[&room_id];
    let target_role = room.members.get(&target).copied().unwrap_or(RoomRole::Member);
    if target == user || !allowed(actor, Action::Remove(target_role)) {
        return forbidden();
    }
    remove(app, ctx, conn, room_id, target, true)
}

/// Takes `target` out of the room (and bans them): their connections get
/// `removed` and, from this moment, nothing more from the room.
fn remove(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    room_id: RoomId,
    target: UserId,
    ban: bool,
) -> Reply {
    let was_member = app.hub.rooms[&room_id].members.contains_key(&target);
    let now = now_ms();
    let result = app.store.write(|c| {
        store::delete_member(c, room_id, target)?;
        if ban {
            store::insert_ban(c, room_id, target, now)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        log::error!("removal not saved: {e}");
        return Some(unavailable());
    }
    let start = ctx.out.len();
    if was_member {
        app.hub.remove_member(room_id, target);
        let room_name = app.hub.rooms[&room_id].name.clone();
        let who = app.hub.users[&target].name.clone();
        app.hub.send_user(ctx, target, &hub::frame(&json!({"type": "removed", "room": room_name})));
        let f = json!({"type": "member", "room": room_name, "user": who, "event": "removed"});
        app.hub.send_room(ctx, room_id, &hub::frame(&f), None);
    }
    if ban {
        if let Some(r) = app.hub.rooms.get_mut(&room_id) {
            r.bans.insert(target);
        }
    }
    done(app, ctx, conn, start)
}

pub fn list_bans(app: &ChatApp, user: UserId, name: &str) -> Reply {
    let Some((room_id, actor)) = visible(app, user, name) else { return room_not_found() };
    if !allowed(actor, Action::Unban) {
        return forbidden();
    }
    let mut names: Vec<&str> = app.hub.rooms[&room_id]
        .bans
        .iter()
        .filter_map(|u| app.hub.users.get(u))
        .map(|u| u.name.as_str())
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    let bans: Vec<Value> = names.into_iter().map(|n| json!({"name": n})).collect();
    Some(Response::json(200, &json!({ "bans": bans })))
}

pub fn unban(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    name: &str,
    target_name: &str,
) -> Reply {
    let Some((room_id, actor)) = visible(app, user, name) else { return room_not_found() };
    if !allowed(actor, Action::Unban) {
        return forbidden();
    }
    let Some(target) = app.hub.user_id(target_name) else {
        return error(404, "no_such_user", "no such user");
    };
    if !app.hub.rooms[&room_id].bans.contains(&target) {
        return Some(Response::empty(204));
    }
    if let Err(e) = app.store.write(|c| store::delete_ban(c, room_id, target)) {
        log::error!("unban not saved: {e}");
        return Some(unavailable());
    }
    if let Some(r) = app.hub.rooms.get_mut(&room_id) {
        r.bans.remove(&target);
    }
    let start = ctx.out.len();
    done(app, ctx, conn, start)
}

pub fn delete_message(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    name: &str,
    id: &str,
) -> Reply {
    let Some((room_id, actor)) = visible(app, user, name) else { return room_not_found() };
    let not_found = || error(404, "not_found", "no such message");
    let Ok(id) = id.parse::<i64>() else { return not_found() };
    let row = match app.store.read(|c| store::message_by_id(c, id)) {
        Ok(Some(row)) if row.room_id == room_id => row,
        Ok(_) => return not_found(),
        Err(e) => {
            log::error!("message lookup failed: {e}");
            return Some(unavailable());
        }
    };
    // Reading takes membership: an outsider of a public room sees no messages.
    if !allowed(actor, Action::Participate) {
        return not_found();
    }
    if !allowed(actor, Action::DeleteMessage { own: row.user_id == user }) {
        return forbidden();
    }
    if let Err(e) = app.store.write(|c| store::delete_message(c, id)) {
        log::error!("message deletion not saved: {e}");
        return Some(unavailable());
    }
    let start = ctx.out.len();
    let f = json!({"type": "deleted", "room": app.hub.rooms[&room_id].name, "id": id});
    app.hub.send_room(ctx, room_id, &hub::frame(&f), None);
    done(app, ctx, conn, start)
}

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
}

pub fn update_room(
    app: &mut ChatApp,
    ctx: &mut Ctx,
    conn: ConnId,
    user: UserId,
    name: &str,
    req: &Request,
) -> Reply {
    let (arg, room_id) = match body_for::<Settings>(app, user, name, req, Action::EditSettings) {
        Ok(v) => v,
        Err(r) => return Some(r),
    };
    let room = &app.hub.rooms[&room_id];
    let topic = arg.topic.unwrap_or_else(|| room.topic.clone());
    if topic.chars().count() > super::api::TOPIC_MAX {
        return error(400, "too_long", "the topic is too long (300 characters at most)");
    }
    let visibility = arg.visibility.unwrap_or_else(|| room.visibility.clone());
    if visibility != "public" && visibility != "private" {
        return error(400, "bad_request", "visibility is \"public\" or \"private\"");
    }
    if let Err(e) = app.store.write(|c| store::update_room(c, room_id, &topic, &visibility)) {
        log::error!("room settings not saved: {e}");
        return Some(unavailable());
    }
    let start = ctx.out.len();
    if let Some(r) = app.hub.rooms.get_mut(&room_id) {
        r.topic = topic;
        r.visibility = visibility;
    }
    let room = &app.hub.rooms[&room_id];
    for member in room.members.keys() {
        let f = json!({"type": "room", "room": app.hub.room_json(room, *member)});
        app.hub.send_user(ctx, *member, &hub::frame(&f));
    }
    ctx.respond(conn, Response::json(200, &json!({"room": app.hub.room_json(room, user)})));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
    None
}

pub fn delete_room(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, user: UserId, name: &str) -> Reply {
    let Some((room_id, actor)) = visible(app, user, name) else { return room_not_found() };
    if !allowed(actor, Action::DeleteRoom) {
        return forbidden();
    }
    if let Err(e) = app.store.write(|c| store::delete_room(c, room_id)) {
        log::error!("room deletion not saved: {e}");
        return Some(unavailable());
    }
    let start = ctx.out.len();
    let room = &app.hub.rooms[&room_id];
    let f = hub::frame(&json!({"type": "removed", "room": room.name}));
    app.hub.send_room(ctx, room_id, &f, None);
    log::info!("room {} deleted", room.name);
    app.hub.remove_room(room_id);
    done(app, ctx, conn, start)
}

/// `POST /api/dms {"user"}`: the direct conversation with `user`, made on
/// first use (201) or found (200).
pub fn open_dm(app: &mut ChatApp, ctx: &mut Ctx, conn: ConnId, user: UserId, req: &Request) -> Reply {
    let arg: UserArg = match body(req) {
        Ok(a) => a,
        Err(r) => return Some(r),
    };
    let Some(peer) = app.hub.user_id(&arg.user) else { return error(404, "no_such_user", "no such user") };
    if peer == user {
        return error(400, "bad_request", "a direct conversation needs another user");
    }
    let name = hub::dm_name(&app.hub.users[&user].name, &app.hub.users[&peer].name);
    if let Some(id) = app.hub.room_id(&name) {
        let room = &app.hub.rooms[&id];
        return Some(Response::json(200, &json!({"room": app.hub.room_json(room, user)})));
    }
    let row = store::RoomRow {
        id: 0,
        name: name.clone(),
        topic: String::new(),
        visibility: "private".into(),
        kind: "dm".into(),
    };
    let now = now_ms();
    let result = app.store.write(|c| {
        let id = store::insert_room(c, &row, now)?;
        store::upsert_member(c, id, user, RoomRole::Member.as_str())?;
        store::upsert_member(c, id, peer, RoomRole::Member.as_str())?;
        Ok(id)
    });
    let id = match result {
        Ok(id) => id,
        Err(e) => {
            log::error!("direct conversation not saved: {e}");
            return Some(unavailable());
        }
    };
    app.hub.add_room(store::RoomRow { id, ..row }, 0);
    app.hub.set_member(id, user, RoomRole::Member);
    app.hub.set_member(id, peer, RoomRole::Member);
    let start = ctx.out.len();
    for u in [user, peer] {
        let f = json!({"type": "joined", "room": app.hub.room_json(&app.hub.rooms[&id], u)});
        app.hub.send_user(ctx, u, &hub::frame(&f));
    }
    ctx.respond(conn, Response::json(201, &json!({"room": app.hub.room_json(&app.hub.rooms[&id], user)})));
    app.durable_since(ctx, start, Some(Out::Respond(conn, unavailable())));
    None
}

pub fn list_dms(app: &ChatApp, user: UserId) -> Reply {
    let u = &app.hub.users[&user];
    let mut rooms: Vec<&hub::Room> =
        u.rooms.iter().filter_map(|r| app.hub.rooms.get(r)).filter(|r| r.is_dm()).collect();
    rooms.sort_by_key(|r| std::cmp::Reverse(r.last_id));
    let list: Vec<Value> = rooms.into_iter().map(|r| app.hub.room_json(r, user)).collect();
    Some(Response::json(200, &json!({ "rooms": list })))
}
