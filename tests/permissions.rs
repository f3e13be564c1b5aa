//! Walks the table of `docs/permissions.md`: for every action and every kind
//! of user, one request (HTTP or WebSocket) that must succeed or fail with
//! the documented answer. Each cell runs on a fresh room.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::chat::{ChatServer, Target};
use serde_json::{json, Value};

const ACTORS: [&str; 6] = ["root", "owner", "radmin", "member", "outsider", "banned"];

struct World {
    s: ChatServer,
    tokens: HashMap<&'static str, String>,
    rooms: usize,
}

impl World {
    fn new() -> World {
        let s = ChatServer::start_with(|c| c.chat.burst = 10_000.0, |_| {});
        let mut tokens = HashMap::new();
        // The first account is the server administrator.
        for name in ["root", "owner", "radmin", "radmin2", "member", "member2", "outsider", "banned", "guest"]
        {
            tokens.insert(name, s.signup(name));
        }
        World { s, tokens, rooms: 0 }
    }

    fn t(&self, name: &str) -> &str {
        &self.tokens[name]
    }

    fn ok(&self, method: &str, path: &str, who: &str, body: Option<Value>) {
        let r = self.s.call(method, path, Some(self.t(who)), body.as_ref());
        assert!(r.status < 300, "setup {method} {path} as {who}: {} {}", r.status, r.text());
    }

    /// A fresh room: owner, two room admins, two members, one banned user,
    /// and a message by member2. Returns its name and that message's id.
    fn room(&mut self, visibility: &str) -> (String, i64) {
        self.rooms += 1;
        let name = format!("{visibility}{}", self.rooms);
        self.s.create_room(self.t("owner"), &name, visibility);
        let base = format!("/api/rooms/{name}");
        for u in ["radmin", "radmin2", "member", "member2", "banned"] {
            self.ok("POST", &format!("{base}/members"), "owner", Some(json!({"user": u})));
        }
        for u in ["radmin", "radmin2"] {
            self.ok("PUT", &format!("{base}/members/{u}"), "owner", Some(json!({"role": "admin"})));
        }
        self.ok("POST", &format!("{base}/bans"), "owner", Some(json!({"user": "banned"})));
        let mut ws = self.s.ws(self.t("member2"));
        ws.expect("hello");
        ws.send(json!({"type": "send", "room": name, "text": "a message to delete"}));
        let id = ws.expect("message")["id"].as_i64().unwrap();
        (name, id)
    }

    /// Runs one HTTP action as `who` on a fresh room; returns the status and error code.
    fn http(&mut self, visibility: &str, who: &str, action: &str) -> String {
        let (room, msg) = self.room(visibility);
        let base = format!("/api/rooms/{room}");
        let (method, path, body): (&str, String, Option<Value>) = match action {
            "detail" => ("GET", base.clone(), None),
            "history" => ("GET", format!("{base}/messages"), None),
            "add" => ("POST", format!("{base}/members"), Some(json!({"user": "guest"}))),
            "kick_member" => ("DELETE", format!("{base}/members/member2"), None),
            "kick_admin" => ("DELETE", format!("{base}/members/radmin2"), None),
            "kick_owner" => ("DELETE", format!("{base}/members/owner"), None),
            "ban_member" => ("POST", format!("{base}/bans"), Some(json!({"user": "member2"}))),
            "list_bans" => ("GET", format!("{base}/bans"), None),
            "unban" => ("DELETE", format!("{base}/bans/banned"), None),
            "delete_other" => ("DELETE", format!("{base}/messages/{msg}"), None),
            "settings" => ("PATCH", base.clone(), Some(json!({"topic": "new topic"}))),
            "set_role" => ("PUT", format!("{base}/members/member2"), Some(json!({"role": "admin"}))),
            "delete_room" => ("DELETE", base.clone(), None),
            other => panic!("unknown action {other}"),
        };
        let r = self.s.call(method, &path, Some(self.t(who)), body.as_ref());
        if r.status < 300 {
            r.status.to_string()
        } else {
            format!("{} {}", r.status, r.json()["error"]["code"].as_str().unwrap())
        }
    }

    /// Runs one WebSocket command as `who`; returns the answer's type or error code.
    fn ws(&mut self, visibility: &str, who: &str, command: &str) -> String {
        let (room, _) = self.room(visibility);
        let mut ws = self.s.ws(self.t(who));
        ws.expect("hello");
        let frame = match command {
            "join" => json!({"type": "join", "room": room}),
            "send" => json!({"type": "send", "room": room, "text": "hello"}),
            "typing" => json!({"type": "typing", "room": room}),
            other => panic!("unknown command {other}"),
        };
        ws.send(frame);
        // `typing` has no answer when it works: follow it with a sync to know.
        if command == "typing" {
            ws.send(json!({"type": "sync", "since": i64::MAX / 2}));
        }
        loop {
            let v = ws.next(common::WAIT).expect("an answer");
            match v["type"].as_str().unwrap() {
                "error" => return v["code"].as_str().unwrap().to_string(),
                "joined" | "message" | "synced" => return v["type"].as_str().unwrap().to_string(),
                _ => {}
            }
        }
    }
}

/// Expected answers per actor, in the order of `ACTORS`.
fn check(world: &mut World, visibility: &str, action: &str, expected: [&str; 6], ws: bool) {
    for (who, want) in ACTORS.iter().zip(expected) {
        let got = if ws { world.ws(visibility, who, action) } else { world.http(visibility, who, action) };
        assert_eq!(got, want, "{visibility} room, {action} as {who}");
    }
}

#[test]
fn public_room_permission_table() {
    let mut w = World::new();
    let p = "public";
    //                                     root     owner    radmin   member   outsider  banned
    check(&mut w, p, "detail", ["200", "200", "200", "200", "200", "200"], false);
    check(&mut w, p, "history", ["200", "200", "200", "200", "403 not_member", "403 not_member"], false);
    check(&mut w, p, "add", ["204", "204", "204", "403 forbidden", "403 forbidden", "403 forbidden"], false);
    check(
        &mut w,
        p,
        "kick_member",
        ["204", "204", "204", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(
        &mut w,
        p,
        "kick_admin",
        ["204", "204", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(
        &mut w,
        p,
        "kick_owner",
        [
            "403 forbidden",
            "409 owner_must_transfer",
            "403 forbidden",
            "403 forbidden",
            "403 forbidden",
            "403 forbidden",
        ],
        false,
    );
    check(
        &mut w,
        p,
        "ban_member",
        ["204", "204", "204", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(
        &mut w,
        p,
        "list_bans",
        ["200", "200", "200", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(
        &mut w,
        p,
        "unban",
        ["204", "204", "204", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(
        &mut w,
        p,
        "delete_other",
        ["204", "204", "204", "403 forbidden", "404 not_found", "404 not_found"],
        false,
    );
    check(
        &mut w,
        p,
        "settings",
        ["200", "200", "200", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(
        &mut w,
        p,
        "set_role",
        ["204", "204", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(
        &mut w,
        p,
        "delete_room",
        ["204", "204", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden"],
        false,
    );
    check(&mut w, p, "join", ["joined", "joined", "joined", "joined", "joined", "banned"], true);
    check(
        &mut w,
        p,
        "send",
        ["not_member", "message", "message", "message", "not_member", "not_member"],
        true,
    );
    check(
        &mut w,
        p,
        "typing",
        ["not_member", "synced", "synced", "synced", "not_member", "not_member"],
        true,
    );
}

#[test]
fn private_room_permission_table() {
    let mut w = World::new();
    let p = "private";
    let hidden = "404 not_found";
    //                                     root     owner    radmin   member   outsider  banned
    check(&mut w, p, "detail", ["200", "200", "200", "200", hidden, hidden], false);
    check(&mut w, p, "history", ["200", "200", "200", "200", hidden, hidden], false);
    check(&mut w, p, "add", ["204", "204", "204", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "kick_member", ["204", "204", "204", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "kick_admin", ["204", "204", "403 forbidden", "403 forbidden", hidden, hidden], false);
    check(
        &mut w,
        p,
        "kick_owner",
        ["403 forbidden", "409 owner_must_transfer", "403 forbidden", "403 forbidden", hidden, hidden],
        false,
    );
    check(&mut w, p, "ban_member", ["204", "204", "204", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "list_bans", ["200", "200", "200", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "unban", ["204", "204", "204", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "delete_other", ["204", "204", "204", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "settings", ["200", "200", "200", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "set_role", ["204", "204", "403 forbidden", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "delete_room", ["204", "204", "403 forbidden", "403 forbidden", hidden, hidden], false);
    check(&mut w, p, "join", ["joined", "joined", "joined", "joined", "not_found", "not_found"], true);
    check(&mut w, p, "send", ["not_member", "message", "message", "message", "not_found", "not_found"], true);
    check(&mut w, p, "typing", ["not_member", "synced", "synced", "synced", "not_found", "not_found"], true);
}

#[test]
fn a_private_room_answers_outsiders_exactly_like_a_name_never_used() {
    let mut w = World::new();
    let (room, msg) = w.room("private");
    let o = w.t("outsider").to_string();
    let paths = [
        ("GET", format!("/api/rooms/{room}"), None),
        ("GET", format!("/api/rooms/{room}/messages"), None),
        ("PATCH", format!("/api/rooms/{room}"), Some(json!({"topic": "x"}))),
        ("DELETE", format!("/api/rooms/{room}"), None),
        ("POST", format!("/api/rooms/{room}/members"), Some(json!({"user": "guest"}))),
        ("DELETE", format!("/api/rooms/{room}/members/member"), None),
        ("POST", format!("/api/rooms/{room}/bans"), Some(json!({"user": "member"}))),
        ("DELETE", format!("/api/rooms/{room}/messages/{msg}"), None),
    ];
    for (method, path, body) in paths {
        let hidden = w.s.call(method, &path, Some(&o), body.as_ref());
        let never = w.s.call(method, &path.replace(&room, "never-used"), Some(&o), body.as_ref());
        assert_eq!((hidden.status, &hidden.body), (never.status, &never.body), "{method} {path}");
    }
    let rooms = w.s.call("GET", "/api/rooms", Some(&o), None).json();
    assert!(!rooms.to_string().contains(&room), "absent from the list");
}

#[test]
fn members_delete_their_own_messages_and_everyone_sees_deleted() {
    let mut w = World::new();
    let (room, _) = w.room("public");
    let mut member = w.s.ws(w.t("member"));
    member.expect("hello");
    let mut owner = w.s.ws(w.t("owner"));
    owner.expect("hello");
    member.send(json!({"type": "send", "room": room, "text": "oops"}));
    let id = member.expect("message")["id"].as_i64().unwrap();
    owner.expect("message");
    let r = w.s.call("DELETE", &format!("/api/rooms/{room}/messages/{id}"), Some(w.t("member")), None);
    assert_eq!(r.status, 204);
    for ws in [&mut member, &mut owner] {
        let d = ws.expect("deleted");
        assert_eq!((d["room"].as_str(), d["id"].as_i64()), (Some(room.as_str()), Some(id)));
    }
    let history = w.s.call("GET", &format!("/api/rooms/{room}/messages"), Some(w.t("owner")), None).json();
    assert!(history["messages"].as_array().unwrap().iter().all(|m| m["id"] != id));
    let again = w.s.call("DELETE", &format!("/api/rooms/{room}/messages/{id}"), Some(w.t("member")), None);
    assert_eq!(again.status, 404);
}

#[test]
fn a_kicked_member_gets_removed_and_nothing_more_from_the_room() {
    let mut w = World::new();
    let (room, _) = w.room("public");
    let mut member2 = w.s.ws(w.t("member2"));
    member2.expect("hello");
    let mut owner = w.s.ws(w.t("owner"));
    owner.expect("hello");
    let r = w.s.call("DELETE", &format!("/api/rooms/{room}/members/member2"), Some(w.t("radmin")), None);
    assert_eq!(r.status, 204);
    assert_eq!(member2.expect("removed")["room"], room.as_str());
    let ev = owner.expect("member");
    assert_eq!((ev["user"].as_str(), ev["event"].as_str()), (Some("member2"), Some("removed")));
    owner.send(json!({"type": "send", "room": room, "text": "after the kick"}));
    owner.expect("message");
    member2.expect_no("message", Duration::from_millis(400));
    member2.send(json!({"type": "send", "room": room, "text": "still here?"}));
    assert_eq!(member2.expect("error")["code"], "not_member");
    // A kick is not a ban: a public room may be joined again.
    member2.send(json!({"type": "join", "room": room}));
    member2.expect("joined");
}

#[test]
fn a_banned_user_cannot_rejoin_or_be_added_until_unbanned() {
    let mut w = World::new();
    let (room, _) = w.room("public");
    let mut member = w.s.ws(w.t("member"));
    member.expect("hello");
    let r = w.s.call(
        "POST",
        &format!("/api/rooms/{room}/bans"),
        Some(w.t("owner")),
        Some(&json!({"user": "member"})),
    );
    assert_eq!(r.status, 204);
    assert_eq!(member.expect("removed")["room"], room.as_str());
    member.send(json!({"type": "join", "room": room}));
    assert_eq!(member.expect("error")["code"], "banned");
    let r = w.s.call(
        "POST",
        &format!("/api/rooms/{room}/members"),
        Some(w.t("owner")),
        Some(&json!({"user": "member"})),
    );
    assert_eq!((r.status, r.json()["error"]["code"].as_str().unwrap()), (409, "banned"));
    let bans = w.s.call("GET", &format!("/api/rooms/{room}/bans"), Some(w.t("owner")), None).json();
    assert_eq!(bans["bans"], json!([{"name": "banned"}, {"name": "member"}]));
    w.ok("DELETE", &format!("/api/rooms/{room}/bans/member"), "owner", None);
    member.send(json!({"type": "join", "room": room}));
    member.expect("joined");
}

#[test]
fn ownership_is_handed_over_and_the_old_owner_stays_admin() {
    let mut w = World::new();
    let (room, _) = w.room("public");
    w.ok("PUT", &format!("/api/rooms/{room}/members/member"), "owner", Some(json!({"role": "owner"})));
    let detail = w.s.call("GET", &format!("/api/rooms/{room}"), Some(w.t("owner")), None).json();
    let roles: HashMap<String, String> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().into(), m["role"].as_str().unwrap().into()))
        .collect();
    assert_eq!(roles["member"], "owner");
    assert_eq!(roles["owner"], "admin");
    // The old owner can no longer delete the room; the new one can.
    let r = w.s.call("DELETE", &format!("/api/rooms/{room}"), Some(w.t("owner")), None);
    assert_eq!(r.status, 403);
    w.ok("DELETE", &format!("/api/rooms/{room}"), "member", None);
}

#[test]
fn deleting_a_room_removes_it_and_its_messages_for_everyone() {
    let mut w = World::new();
    let (room, _) = w.room("public");
    let mut member = w.s.ws(w.t("member"));
    member.expect("hello");
    w.ok("DELETE", &format!("/api/rooms/{room}"), "owner", None);
    assert_eq!(member.expect("removed")["room"], room.as_str());
    assert_eq!(w.s.call("GET", &format!("/api/rooms/{room}"), Some(w.t("owner")), None).status, 404);
    // The name is free again, with no old messages.
    w.s.create_room(w.t("member"), &room, "public");
    let h = w.s.call("GET", &format!("/api/rooms/{room}/messages"), Some(w.t("member")), None).json();
    assert_eq!(h["messages"], json!([]));
}

#[test]
fn room_settings_change_topic_and_visibility_and_notify_members() {
    let mut w = World::new();
    let (room, _) = w.room("public");
    let mut member = w.s.ws(w.t("member"));
    member.expect("hello");
    let r = w.s.call(
        "PATCH",
        &format!("/api/rooms/{room}"),
        Some(w.t("radmin")),
        Some(&json!({"topic": "Board games on Friday", "visibility": "private"})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["room"]["topic"], "Board games on Friday");
    let ev = member.expect("room");
    assert_eq!(
        (ev["room"]["visibility"].as_str(), ev["room"]["role"].as_str()),
        (Some("private"), Some("member"))
    );
    let r = w.s.call("GET", &format!("/api/rooms/{room}"), Some(w.t("outsider")), None);
    assert_eq!(r.status, 404, "now private: gone for outsiders");
    let r = w.s.call(
        "PATCH",
        &format!("/api/rooms/{room}"),
        Some(w.t("owner")),
        Some(&json!({"topic": "t".repeat(301)})),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn direct_messages_are_private_to_their_two_members() {
    let w = World::new();
    let (member, member2, root) = (w.t("member"), w.t("member2"), w.t("root"));
    let r = w.s.call("POST", "/api/dms", Some(member), Some(&json!({"user": "member2"})));
    assert_eq!(r.status, 201);
    let room = r.json()["room"].clone();
    let name = room["name"].as_str().unwrap().to_string();
    assert_eq!((room["kind"].as_str(), room["peer"].as_str()), (Some("dm"), Some("member2")));
    // From the other side: the same conversation, found.
    let r = w.s.call("POST", "/api/dms", Some(member2), Some(&json!({"user": "MEMBER"})));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["room"]["name"], name.as_str());
    assert_eq!(r.json()["room"]["peer"], "member");
    // Listed apart from rooms.
    let dms = w.s.call("GET", "/api/dms", Some(member), None).json();
    assert_eq!(dms["rooms"][0]["name"], name.as_str());
    let rooms = w.s.call("GET", "/api/rooms", Some(member), None).json();
    assert!(!rooms.to_string().contains(&name));
    // Both chat; nobody else, not even the server administrator, sees it.
    let mut a = w.s.ws(member);
    let hello = a.expect("hello");
    assert!(hello["rooms"].to_string().contains(&name));
    let mut b = w.s.ws(member2);
    b.expect("hello");
    a.send(json!({"type": "send", "room": name, "text": "psst"}));
    assert_eq!(b.expect("message")["text"], "psst");
    let path = format!("/api/rooms/{}/messages", name.replace('+', "%2B"));
    assert_eq!(w.s.call("GET", &path, Some(member2), None).status, 200);
    for outsider in ["root", "outsider"] {
        let t = w.t(outsider);
        assert_eq!(w.s.call("GET", &path, Some(t), None).status, 404, "{outsider}");
        let mut ws = w.s.ws(t);
        ws.expect("hello");
        ws.send(json!({"type": "join", "room": name}));
        assert_eq!(ws.expect("error")["code"], "not_found", "{outsider}");
        ws.send(json!({"type": "send", "room": name, "text": "let me in"}));
        assert_eq!(ws.expect("error")["code"], "not_found", "{outsider}");
    }
    let _ = root;
    // Moderation does not apply; leaving is refused.
    let r = w.s.call(
        "POST",
        &format!("/api/rooms/{}/members", name.replace('+', "%2B")),
        Some(member),
        Some(&json!({"user": "guest"})),
    );
    assert_eq!(r.status, 403);
    a.send(json!({"type": "leave", "room": name}));
    assert_eq!(a.expect("error")["code"], "bad_request");
    let r = w.s.call("POST", "/api/dms", Some(member), Some(&json!({"user": "member"})));
    assert_eq!(r.status, 400, "not with oneself");
    let r = w.s.call("POST", "/api/dms", Some(member), Some(&json!({"user": "nobody"})));
    assert_eq!(r.status, 404);
}
