//! Typed queries. Each takes a `&Connection` (the store passes its own,
//! inside the turn transaction for writes) and returns plain rows.

use rusqlite::{params, Connection, OptionalExtension, Row};

pub type Id = i64;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Id,
    pub name: String,
    pub pw_hash: String,
    pub role: String,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct RoomRow {
    pub id: Id,
    pub name: String,
    pub topic: String,
    pub visibility: String,
    /// `room` or `dm`.
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub room_id: Id,
    pub user_id: Id,
    pub role: String,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_hash: Vec<u8>,
    pub user_id: Id,
    pub expires_ms: i64,
}

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: Id,
    pub room_id: Id,
    pub user_id: Id,
    pub text: String,
    pub ts: i64,
    pub nonce: Option<String>,
}

/// A random string fixed for the life of the database (see `hello.epoch`).
pub fn epoch(c: &Connection) -> rusqlite::Result<String> {
    c.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| r.get(0))
}

pub fn load_users(c: &Connection) -> rusqlite::Result<Vec<UserRow>> {
    let mut st = c.prepare("SELECT id, name, pw_hash, role, disabled FROM users ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok(UserRow {
            id: r.get(0)?,
            name: r.get(1)?,
            pw_hash: r.get(2)?,
            role: r.get(3)?,
            disabled: r.get(4)?,
        })
    })?;
    rows.collect()
}

pub fn insert_user(
    c: &Connection,
    name: &str,
    pw_hash: &str,
    role: &str,
    now_ms: i64,
) -> rusqlite::Result<Id> {
    c.execute(
        "INSERT INTO users(name, name_key, pw_hash, role, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, name.to_lowercase(), pw_hash, role, now_ms],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn load_rooms(c: &Connection) -> rusqlite::Result<Vec<RoomRow>> {
    let mut st = c.prepare("SELECT id, name, topic, visibility, kind FROM rooms ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok(RoomRow {
            id: r.get(0)?,
            name: r.get(1)?,
            topic: r.get(2)?,
            visibility: r.get(3)?,
            kind: r.get(4)?,
        })
    })?;
    rows.collect()
}

pub fn insert_room(c: &Connection, room: &RoomRow, now_ms: i64) -> rusqlite::Result<Id> {
    c.execute(
        "INSERT INTO rooms(name, name_key, topic, visibility, kind, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![room.name, room.name.to_lowercase(), room.topic, room.visibility, room.kind, now_ms],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn update_room(c: &Connection, id: Id, topic: &str, visibility: &str) -> rusqlite::Result<()> {
    c.execute("UPDATE rooms SET topic = ?2, visibility = ?3 WHERE id = ?1", params![id, topic, visibility])?;
    Ok(())
}

/// Deletes a room with its members, bans and messages.
pub fn delete_room(c: &Connection, id: Id) -> rusqlite::Result<()> {
    c.execute("DELETE FROM rooms WHERE id = ?1", [id])?;
    Ok(())
}

pub fn load_bans(c: &Connection) -> rusqlite::Result<Vec<(Id, Id)>> {
    let mut st = c.prepare("SELECT room_id, user_id FROM bans")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn insert_ban(c: &Connection, room: Id, user: Id, now_ms: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO bans(room_id, user_id, created_ms) VALUES (?1, ?2, ?3)",
        params![room, user, now_ms],
    )?;
    Ok(())
}

pub fn delete_ban(c: &Connection, room: Id, user: Id) -> rusqlite::Result<()> {
    c.execute("DELETE FROM bans WHERE room_id = ?1 AND user_id = ?2", params![room, user])?;
    Ok(())
}

pub fn delete_message(c: &Connection, id: Id) -> rusqlite::Result<()> {
    c.execute("DELETE FROM messages WHERE id = ?1", [id])?;
    Ok(())
}

pub fn set_user_role(c: &Connection, user: Id, role: &str) -> rusqlite::Result<()> {
    c.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![user, role])?;
    Ok(())
}

pub fn set_user_disabled(c: &Connection, user: Id, disabled: bool) -> rusqlite::Result<()> {
    c.execute("UPDATE users SET disabled = ?2 WHERE id = ?1", params![user, disabled])?;
    Ok(())
}

pub fn set_password(c: &Connection, user: Id, pw_hash: &str) -> rusqlite::Result<()> {
    c.execute("UPDATE users SET pw_hash = ?2 WHERE id = ?1", params![user, pw_hash])?;
    Ok(())
}

/// Ends every session of a user.
pub fn delete_user_sessions(c: &Connection, user: Id) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM sessions WHERE user_id = ?1", [user])
}

pub fn get_setting(c: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
}

pub fn set_setting(c: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct InviteRow {
    pub code: String,
    pub created_by: Option<Id>,
    pub expires_ms: i64,
    pub used_by: Option<Id>,
}

fn invite_row(r: &Row) -> rusqlite::Result<InviteRow> {
    Ok(InviteRow { code: r.get(0)?, created_by: r.get(1)?, expires_ms: r.get(2)?, used_by: r.get(3)? })
}

pub fn insert_invite(
    c: &Connection,
    code: &str,
    by: Id,
    now_ms: i64,
    expires_ms: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO invites(code, created_by, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
        params![code, by, now_ms, expires_ms],
    )?;
    Ok(())
}

pub fn list_invites(c: &Connection) -> rusqlite::Result<Vec<InviteRow>> {
    let mut st =
        c.prepare("SELECT code, created_by, expires_ms, used_by FROM invites ORDER BY created_ms DESC")?;
    let rows = st.query_map([], invite_row)?;
    rows.collect()
}

pub fn get_invite(c: &Connection, code: &str) -> rusqlite::Result<Option<InviteRow>> {
    c.query_row(
        "SELECT code, created_by, expires_ms, used_by FROM invites WHERE code = ?1",
        [code],
        invite_row,
    )
    .optional()
}

/// Marks an unused, unexpired invite used; false if it was not usable.
pub fn use_invite(c: &Connection, code: &str, user: Id, now_ms: i64) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE invites SET used_by = ?2 WHERE code = ?1 AND used_by IS NULL AND expires_ms > ?3",
        params![code, user, now_ms],
    )?;
    Ok(n == 1)
}

pub fn delete_invite(c: &Connection, code: &str) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM invites WHERE code = ?1", [code])
}

/// SQLite's change counter for commits by other connections (`hearth admin`).
pub fn data_version(c: &Connection) -> rusqlite::Result<i64> {
    c.pragma_query_value(None, "data_version", |r| r.get(0))
}

pub fn load_members(c: &Connection) -> rusqlite::Result<Vec<MemberRow>> {
    let mut st = c.prepare("SELECT room_id, user_id, role FROM members")?;
    let rows =
        st.query_map([], |r| Ok(MemberRow { room_id: r.get(0)?, user_id: r.get(1)?, role: r.get(2)? }))?;
    rows.collect()
}

pub fn upsert_member(c: &Connection, room: Id, user: Id, role: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO members(room_id, user_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT(room_id, user_id) DO UPDATE SET role = excluded.role",
        params![room, user, role],
    )?;
    Ok(())
}

pub fn delete_member(c: &Connection, room: Id, user: Id) -> rusqlite::Result<()> {
    c.execute("DELETE FROM members WHERE room_id = ?1 AND user_id = ?2", params![room, user])?;
    Ok(())
}

pub fn load_sessions(c: &Connection, now_ms: i64) -> rusqlite::Result<Vec<SessionRow>> {
    let mut st = c.prepare("SELECT token_hash, user_id, expires_ms FROM sessions WHERE expires_ms > ?1")?;
    let rows = st.query_map([now_ms], |r| {
        Ok(SessionRow { token_hash: r.get(0)?, user_id: r.get(1)?, expires_ms: r.get(2)? })
    })?;
    rows.collect()
}

pub fn insert_session(c: &Connection, token_hash: &[u8], user: Id, expires_ms: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO sessions(token_hash, user_id, expires_ms) VALUES (?1, ?2, ?3)",
        params![token_hash, user, expires_ms],
    )?;
    Ok(())
}

pub fn renew_session(c: &Connection, token_hash: &[u8], expires_ms: i64) -> rusqlite::Result<()> {
    c.execute("UPDATE sessions SET expires_ms = ?2 WHERE token_hash = ?1", params![token_hash, expires_ms])?;
    Ok(())
}

pub fn delete_session(c: &Connection, token_hash: &[u8]) -> rusqlite::Result<()> {
    c.execute("DELETE FROM sessions WHERE token_hash = ?1", params![token_hash])?;
    Ok(())
}

pub fn delete_expired_sessions(c: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    c.execute("DELETE FROM sessions WHERE expires_ms <= ?1", [now_ms])
}

pub fn insert_message(
    c: &Connection,
    room: Id,
    user: Id,
    text: &str,
    ts: i64,
    nonce: Option<&str>,
) -> rusqlite::Result<Id> {
    let mut st = c.prepare_cached(
        "INSERT INTO messages(room_id, user_id, text, ts, nonce) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    st.execute(params![room, user, text, ts, nonce])?;
    Ok(c.last_insert_rowid())
}

fn message_row(r: &Row) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        room_id: r.get(1)?,
        user_id: r.get(2)?,
        text: r.get(3)?,
        ts: r.get(4)?,
        nonce: r.get(5)?,
    })
}

const MESSAGE_COLUMNS: &str = "id, room_id, user_id, text, ts, nonce";

pub fn message_by_id(c: &Connection, id: Id) -> rusqlite::Result<Option<MessageRow>> {
    c.query_row(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"), [id], message_row)
        .optional()
}

/// A page of a room's history in ascending id order: the newest `limit`
/// before `before` (or overall), or with `after`, the oldest `limit` after it.
pub fn messages_page(
    c: &Connection,
    room: Id,
    before: Option<Id>,
    after: Option<Id>,
    limit: u32,
) -> rusqlite::Result<Vec<MessageRow>> {
    let before = before.unwrap_or(i64::MAX);
    let mut rows: Vec<MessageRow> = if let Some(after) = after {
        let mut st = c.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND id > ?2 AND id < ?3 ORDER BY id ASC LIMIT ?4"
        ))?;
        let rows = st.query_map(params![room, after, before, limit], message_row)?;
        rows.collect::<Result<_, _>>()?
    } else {
        let mut st = c.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows = st.query_map(params![room, before, limit], message_row)?;
        let mut v: Vec<MessageRow> = rows.collect::<Result<_, _>>()?;
        v.reverse();
        v
    };
    rows.shrink_to_fit();
    Ok(rows)
}

/// Messages after `since` and up to `upto` in the rooms `user` belongs to,
/// ascending, at most `limit`.
pub fn messages_since(
    c: &Connection,
    user: Id,
    since: Id,
    upto: Id,
    limit: u32,
) -> rusqlite::Result<Vec<MessageRow>> {
    let mut st = c.prepare_cached(
        "SELECT m.id, m.room_id, m.user_id, m.text, m.ts, m.nonce FROM messages m
         JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = ?1
         WHERE m.id > ?2 AND m.id <= ?3 ORDER BY m.id ASC LIMIT ?4",
    )?;
    let rows = st.query_map(params![user, since, upto, limit], message_row)?;
    rows.collect()
}

/// The newest message id ever given (deleted ones included).
pub fn last_message_id(c: &Connection) -> rusqlite::Result<Id> {
    Ok(c.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'messages'", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The newest message id of each room that has messages.
pub fn room_last_ids(c: &Connection) -> rusqlite::Result<Vec<(Id, Id)>> {
    let mut st = c.prepare("SELECT room_id, MAX(id) FROM messages GROUP BY room_id")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn count_messages(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
}

/// (user, nonce, message id, ts) of messages sent with a nonce since `since_ms`:
/// the nonce cache is rebuilt from these at start, so a resend after a
/// server restart is still recognised.
pub fn recent_nonces(c: &Connection, since_ms: i64) -> rusqlite::Result<Vec<(Id, String, Id, i64)>> {
    let mut st = c.prepare(
        "SELECT user_id, nonce, id, ts FROM messages WHERE nonce IS NOT NULL AND ts >= ?1 ORDER BY id",
    )?;
    let rows = st.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}
