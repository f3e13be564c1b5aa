//! `Hub`: the chat state in plain structs, owned by the loop thread. Users,
//! their sessions and connections, rooms and their members. The database is
//! the truth; the hub is its in-memory image plus who is online now.
//!
//! Membership belongs to the user, not to a connection: every connection of
//! a user receives everything addressed to that user.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{json, Value};
use tungstenite::Utf8Bytes;

use super::limits::TokenBucket;
use crate::config::ChatLimits;
use crate::server::{ConnId, Ctx};
use crate::store::{self, Id, Store, StoreResult};

pub type UserId = Id;
pub type RoomId = Id;
pub type TokenHash = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomRole {
    Owner,
    Admin,
    Member,
}

impl RoomRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomRole::Owner => "owner",
            RoomRole::Admin => "admin",
            RoomRole::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Option<RoomRole> {
        match s {
            "owner" => Some(RoomRole::Owner),
            "admin" => Some(RoomRole::Admin),
            "member" => Some(RoomRole::Member),
            _ => None,
        }
    }
}

pub struct User {
    pub id: UserId,
    pub name: String,
    /// `admin` (server administrator) or `user`.
    pub role: String,
    pub disabled: bool,
    pub pw_hash: String,
    /// Open WebSockets of this user (tabs, devices).
    pub conns: Vec<ConnId>,
    pub rooms: BTreeSet<RoomId>,
    pub bucket: TokenBucket,
    /// Last `typing` relayed per room, to relay at most one a second.
    pub typing: Vec<(RoomId, std::time::Instant)>,
}

impl User {
    pub fn online(&self) -> bool {
        !self.conns.is_empty()
    }
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
    pub fn json(&self) -> Value {
        json!({"name": self.name, "role": self.role})
    }
}

pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub topic: String,
    /// `public` or `private`.
    pub visibility: String,
    /// `room`, or `dm` for a direct conversation between two users.
    pub kind: String,
    pub members: HashMap<UserId, RoomRole>,
    /// Users who may not join again.
    pub bans: HashSet<UserId>,
    /// Newest message id in the room (0 if none).
    pub last_id: Id,
}

impl Room {
    pub fn is_public(&self) -> bool {
        self.visibility == "public" && !self.is_dm()
    }
    pub fn is_dm(&self) -> bool {
        self.kind == "dm"
    }
}

/// The name of the direct conversation between two users: `@a+b`, lower
/// case, sorted. `@` cannot start a room name, so it never collides.
pub fn dm_name(a: &str, b: &str) -> String {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    if a <= b {
        format!("@{a}+{b}")
    } else {
        format!("@{b}+{a}")
    }
}

pub struct Session {
    pub user: UserId,
    pub expires_ms: i64,
}

pub struct ConnInfo {
    pub user: UserId,
    pub session: TokenHash,
}

pub struct Hub {
    pub users: HashMap<UserId, User>,
    user_keys: HashMap<String, UserId>,
    pub rooms: HashMap<RoomId, Room>,
    room_keys: HashMap<String, RoomId>,
    pub sessions: HashMap<TokenHash, Session>,
    pub conns: HashMap<ConnId, ConnInfo>,
    /// Newest message id on the server.
    pub last_id: Id,
    limits: ChatLimits,
}

impl Hub {
    /// Builds the hub from the database.
    pub fn load(store: &Store, limits: ChatLimits, now_ms: i64) -> StoreResult<Hub> {
        let mut hub = Hub {
            users: HashMap::new(),
            user_keys: HashMap::new(),
            rooms: HashMap::new(),
            room_keys: HashMap::new(),
            sessions: HashMap::new(),
            conns: HashMap::new(),
            last_id: store.read(store::last_message_id)?,
            limits,
        };
        for u in store.read(store::load_users)? {
            hub.add_user(u);
        }
        let last_ids: HashMap<Id, Id> = store.read(store::room_last_ids)?.into_iter().collect();
        for r in store.read(store::load_rooms)? {
            let last_id = last_ids.get(&r.id).copied().unwrap_or(0);
            hub.add_room(r, last_id);
        }
        for m in store.read(store::load_members)? {
            if let Some(role) = RoomRole::parse(&m.role) {
                hub.set_member(m.room_id, m.user_id, role);
            }
        }
        for (room, user) in store.read(store::load_bans)? {
            if let Some(r) = hub.rooms.get_mut(&room) {
                r.bans.insert(user);
            }
        }
        for s in store.read(|c| store::load_sessions(c, now_ms))? {
            if let Ok(hash) = <TokenHash>::try_from(s.token_hash.as_slice()) {
                hub.sessions.insert(hash, Session { user: s.user_id, expires_ms: s.expires_ms });
            }
        }
        Ok(hub)
    }

    /// Rebuilds from the database after a failed commit, keeping the open
    /// connections (they are not in the database).
    pub fn reload(&mut self, store: &Store, now_ms: i64) -> StoreResult<()> {
        let mut fresh = Hub::load(store, self.limits.clone(), now_ms)?;
        for (conn, info) in self.conns.drain() {
            if let Some(u) = fresh.users.get_mut(&info.user) {
                u.conns.push(conn);
                fresh.conns.insert(conn, info);
            }
        }
        *self = fresh;
        Ok(())
    }

    pub fn add_user(&mut self, u: store::UserRow) {
        self.user_keys.insert(u.name.to_lowercase(), u.id);
        self.users.insert(
            u.id,
            User {
                id: u.id,
                name: u.name,
                role: u.role,
                disabled: u.disabled,
                pw_hash: u.pw_hash,
                conns: Vec::new(),
                rooms: BTreeSet::new(),
                bucket: TokenBucket::new(self.limits.rate_per_sec, self.limits.burst),
                typing: Vec::new(),
            },
        );
    }

    pub fn add_room(&mut self, r: store::RoomRow, last_id: Id) {
        self.room_keys.insert(r.name.to_lowercase(), r.id);
        self.rooms.insert(
            r.id,
            Room {
                id: r.id,
                name: r.name,
                topic: r.topic,
                visibility: r.visibility,
                kind: r.kind,
                members: HashMap::new(),
                bans: HashSet::new(),
                last_id,
            },
        );
    }

    pub fn set_member(&mut self, room: RoomId, user: UserId, role: RoomRole) {
        if let (Some(r), Some(u)) = (self.rooms.get_mut(&room), self.users.get_mut(&user)) {
            r.members.insert(user, role);
            u.rooms.insert(room);
        }
    }

    /// Forgets a deleted room and every membership in it.
    pub fn remove_room(&mut self, room: RoomId) {
        if let Some(r) = self.rooms.remove(&room) {
            self.room_keys.remove(&r.name.to_lowercase());
            for user in r.members.keys() {
                if let Some(u) = self.users.get_mut(user) {
                    u.rooms.remove(&room);
                }
            }
        }
    }

    pub fn remove_member(&mut self, room: RoomId, user: UserId) {
        if let Some(r) = self.rooms.get_mut(&room) {
            r.members.remove(&user);
        }
        if let Some(u) = self.users.get_mut(&user) {
            u.rooms.remove(&room);
        }
    }

    pub fn user_id(&self, name: &str) -> Option<UserId> {
        self.user_keys.get(&name.to_lowercase()).copied()
    }

    pub fn room_id(&self, name: &str) -> Option<RoomId> {
        self.room_keys.get(&name.to_lowercase()).copied()
    }

    /// The room, if it exists *for this user*: a private room is invisible
    /// to non-members, except to the server administrator; a direct
    /// conversation is invisible to everyone but its two members.
    pub fn visible_room(&self, name: &str, user: UserId) -> Option<&Room> {
        let room = self.rooms.get(&self.room_id(name)?)?;
        let admin = !room.is_dm() && self.users.get(&user).is_some_and(User::is_admin);
        (room.is_public() || room.members.contains_key(&user) || admin).then_some(room)
    }

    /// The acting user as seen from `room`, for `permissions::allowed`.
    pub fn actor(&self, room: &Room, user: UserId) -> super::permissions::Actor {
        super::permissions::Actor {
            server_admin: !room.is_dm() && self.users.get(&user).is_some_and(User::is_admin),
            role: room.members.get(&user).copied(),
            direct: room.is_dm(),
        }
    }

    pub fn online_count(&self, room: &Room) -> usize {
        room.members.keys().filter(|u| self.users.get(u).is_some_and(User::online)).count()
    }

    /// The contract's `room` object, with the caller's role.
    pub fn room_json(&self, room: &Room, viewer: UserId) -> Value {
        let mut v = json!({
            "name": room.name,
            "topic": room.topic,
            "visibility": if room.is_dm() { "private" } else { room.visibility.as_str() },
            "members": room.members.len(),
            "online": self.online_count(room),
            "role": room.members.get(&viewer).map(|r| r.as_str()),
            "last_id": room.last_id,
            "kind": room.kind,
        });
        if room.is_dm() {
            let peer = room.members.keys().find(|u| **u != viewer).or_else(|| room.members.keys().next());
            v["peer"] = json!(peer.and_then(|p| self.users.get(p)).map(|u| u.name.as_str()));
        }
        v
    }

    /// Names of the members of `room` in the contract's `members` list form.
    pub fn members_json(&self, room: &Room) -> Vec<Value> {
        let mut members: Vec<(RoomRole, String, Value)> = room
            .members
            .iter()
            .filter_map(|(uid, role)| {
                let u = self.users.get(uid)?;
                Some((
                    *role,
                    u.name.to_lowercase(),
                    json!({"name": u.name, "role": role.as_str(), "online": u.online()}),
                ))
            })
            .collect();
        members.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
        members.into_iter().map(|m| m.2).collect()
    }

    /// A `message` frame (also the element of history pages).
    pub fn message_json(&self, m: &store::MessageRow) -> Value {
        let room = self.rooms.get(&m.room_id).map(|r| r.name.as_str()).unwrap_or("");
        let user = self.users.get(&m.user_id).map(|u| u.name.as_str()).unwrap_or("");
        let mut v = json!({
            "type": "message", "room": room, "id": m.id, "user": user, "text": m.text, "ts": m.ts,
        });
        if let Some(n) = &m.nonce {
            v["nonce"] = json!(n);
        }
        v
    }

    /// Queues `frame` to every connection of `user`.
    pub fn send_user(&self, ctx: &mut Ctx, user: UserId, frame: &Utf8Bytes) {
        if let Some(u) = self.users.get(&user) {
            for &c in &u.conns {
                ctx.send_text(c, frame.clone());
            }
        }
    }

    /// Queues `frame` to every connection of every member of `room`, except
    /// those of `except`. The frame is serialized once and shared.
    pub fn send_room(&self, ctx: &mut Ctx, room: RoomId, frame: &Utf8Bytes, except: Option<UserId>) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        for &member in r.members.keys() {
            if Some(member) != except {
                self.send_user(ctx, member, frame);
            }
        }
    }
}

/// Serializes a frame once, for sharing among recipients.
pub fn frame(v: &Value) -> Utf8Bytes {
    Utf8Bytes::from(v.to_string())
}
