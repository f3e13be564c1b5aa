//! Rooms over HTTP: creating, listing, details, private rooms that do not
//! exist for outsiders, and history paging.

mod common;

use common::chat::{ChatServer, Target};
use serde_json::{json, Value};

fn names(v: &Value) -> Vec<String> {
    v["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn creating_a_room_makes_the_creator_its_owner() {
    let s = ChatServer::start();
    let ann = s.signup("ann");
    let room = s.create_room(&ann, "General", "public");
    assert_eq!(room["name"], "General");
    assert_eq!(room["role"], "owner");
    assert_eq!(room["visibility"], "public");
    assert_eq!(room["members"], 1);
    assert_eq!(room["topic"], "");
    let r = s.call("GET", "/api/rooms/general", Some(&ann), None);
    assert_eq!(r.status, 200, "names are case-insensitive");
    let v = r.json();
    assert_eq!(v["room"]["name"], "General");
    assert_eq!(v["members"], json!([{"name": "ann", "role": "owner", "online": false}]));
}

#[test]
fn a_taken_room_name_is_409_whatever_its_case() {
    let s = ChatServer::start();
    let ann = s.signup("ann");
    s.create_room(&ann, "general", "public");
    let r = s.call("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "GENERAL"})));
    assert_eq!((r.status, r.json()["error"]["code"].as_str().unwrap()), (409, "name_taken"));
    let r = s.call("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "bad name"})));
    assert_eq!(r.status, 400);
}

#[test]
fn a_private_room_does_not_exist_for_non_members() {
    let s = ChatServer::start();
    let admin = s.signup("root"); // the first account is the server admin
    let ann = s.signup("ann");
    let bob = s.signup("bob");
    s.create_room(&ann, "secret", "private");
    s.create_room(&ann, "open", "public");
    assert_eq!(names(&s.call("GET", "/api/rooms", Some(&ann), None).json()), ["open", "secret"]);
    assert_eq!(names(&s.call("GET", "/api/rooms", Some(&bob), None).json()), ["open"]);
    let hidden = s.call("GET", "/api/rooms/secret", Some(&bob), None);
    let never = s.call("GET", "/api/rooms/never-made", Some(&bob), None);
    assert_eq!(hidden.status, 404);
    assert_eq!(hidden.body, never.body, "same answer as a name never used");
    let hidden = s.call("GET", "/api/rooms/secret/messages", Some(&bob), None);
    let never = s.call("GET", "/api/rooms/never-made/messages", Some(&bob), None);
    assert_eq!((hidden.status, hidden.body), (404, never.body));
    // Taking the name is still refused: names are unique server-wide.
    assert_eq!(s.call("POST", "/api/rooms", Some(&bob), Some(&json!({"name": "secret"}))).status, 409);
    // The server administrator sees it.
    assert_eq!(s.call("GET", "/api/rooms/secret", Some(&admin), None).status, 200);
}

#[test]
fn history_pages_with_before_after_and_limit_in_ascending_order() {
    let s = ChatServer::start();
    let ann = s.signup("ann");
    s.create_room(&ann, "general", "public");
    let mut ws = s.ws(&ann);
    ws.expect("hello");
    for i in 0..30 {
        ws.send(json!({"type": "send", "room": "general", "text": format!("m{i}")}));
    }
    let ids: Vec<i64> = ws.collect("message", 30).iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids strictly increase: {ids:?}");
    let page = |q: &str| -> Vec<i64> {
        let r = s.call("GET", &format!("/api/rooms/general/messages{q}"), Some(&ann), None);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        r.json()["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(page(""), ids, "default limit 50 covers all 30");
    assert_eq!(page("?limit=5"), ids[25..], "newest five");
    assert_eq!(page(&format!("?before={}&limit=5", ids[25])), ids[20..25]);
    assert_eq!(page(&format!("?after={}&limit=5", ids[3])), ids[4..9]);
    assert_eq!(page(&format!("?after={}&before={}", ids[3], ids[7])), ids[4..7]);
    assert_eq!(page(&format!("?before={}", ids[0])), Vec::<i64>::new());
    let m = &s.call("GET", "/api/rooms/general/messages?limit=1", Some(&ann), None).json()["messages"][0];
    assert_eq!(m["text"], "m29");
    assert_eq!(m["user"], "ann");
    assert_eq!(m["room"], "general");
    assert!(m["ts"].as_i64().unwrap() > 1_700_000_000_000);
    for bad in ["?limit=0", "?limit=501", "?limit=x", "?before=-1", "?after=abc"] {
        let r = s.call("GET", &format!("/api/rooms/general/messages{bad}"), Some(&ann), None);
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(page("?limit=500").len(), 30);
}

#[test]
fn reading_history_takes_membership() {
    let s = ChatServer::start();
    s.signup("root");
    let ann = s.signup("ann");
    let bob = s.signup("bob");
    s.create_room(&ann, "general", "public");
    let r = s.call("GET", "/api/rooms/general/messages", Some(&bob), None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str().unwrap()), (403, "not_member"));
    let mut ws = s.ws(&bob);
    ws.expect("hello");
    ws.send(json!({"type": "join", "room": "general"}));
    ws.expect("joined");
    assert_eq!(s.call("GET", "/api/rooms/general/messages", Some(&bob), None).status, 200);
}
