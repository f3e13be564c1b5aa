//! Nothing acknowledged is lost: kill -9 after acknowledgements, restart on
//! the same data, find everything; a full disk is an error to the sender,
//! not a half-written message, and the server lives on; the schema version
//! and epoch survive restarts.

mod common;

use common::chat::{BinServer, ChatServer, Target};
use common::TempDir;
use serde_json::json;

#[test]
fn every_acknowledged_message_survives_kill_9() {
    let dir = TempDir::new("kill9");
    let (data, certs) = (dir.join("data"), dir.join("certs"));
    let mut server = BinServer::start(&data, &certs, 0, &["--burst", "1000", "--rate", "1000"]);
    let ann = server.signup("ann");
    server.create_room(&ann, "general", "public");
    let mut ws = server.ws(&ann);
    ws.expect("hello");
    const N: usize = 300;
    for i in 0..N {
        ws.send(json!({"type": "send", "room": "general", "text": format!("durable {i}"), "nonce": format!("d{i}")}));
    }
    // Each `message` is the acknowledgement: it is sent only after its commit.
    let acked: Vec<i64> = ws.collect("message", N).iter().map(|m| m["id"].as_i64().unwrap()).collect();
    server.kill_hard();

    let port = server.addr.port();
    drop(server);
    let server = BinServer::start(&data, &certs, port, &[]);
    let ann = server.login("ann");
    let mut found = Vec::new();
    let mut after = 0;
    for _ in 0..10 {
        let r = server.call(
            "GET",
            &format!("/api/rooms/general/messages?after={after}&limit=500"),
            Some(&ann),
            None,
        );
        let page = r.json()["messages"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap()["id"].as_i64().unwrap();
        found.extend(page.iter().map(|m| m["id"].as_i64().unwrap()));
    }
    assert_eq!(found, acked, "all {N} acknowledged messages, once each, in order");
}

#[test]
fn a_full_disk_is_an_unavailable_error_and_the_server_keeps_running() {
    // max_page_count makes SQLite report "database or disk is full" once the
    // file would grow past it: the same error path as a real full disk.
    let s = ChatServer::start_with(
        |c| c.chat.burst = 10_000.0,
        |store| {
            let pages: u64 = store.read(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0))).unwrap();
            store.set_max_pages(pages + 40).unwrap();
        },
    );
    let ann = s.signup("ann");
    s.create_room(&ann, "general", "public");
    let mut ws = s.ws(&ann);
    ws.expect("hello");
    let text = "x".repeat(3900);
    let mut stored = 0;
    let mut full_errors = 0;
    for i in 0..300 {
        ws.send(json!({"type": "send", "room": "general", "text": text, "nonce": format!("f{i}")}));
        let v = ws.next(common::WAIT).expect("an answer");
        match v["type"].as_str().unwrap() {
            "message" => stored += 1,
            "error" => {
                assert_eq!(v["code"], "unavailable", "{v}");
                assert_eq!(v["nonce"], format!("f{i}"));
                full_errors += 1;
                if full_errors == 3 {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(stored > 0, "some messages fit before the disk filled");
    assert_eq!(full_errors, 3, "then each send is refused with unavailable");
    // The server lives on: reads work, and exactly what was acknowledged is there.
    let r = s.call("GET", "/api/rooms/general/messages?limit=500", Some(&ann), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["messages"].as_array().unwrap().len(), stored);
    ws.send(json!({"type": "sync", "since": 0}));
    ws.expect("synced");
}

#[test]
fn data_epoch_and_sessions_survive_a_restart() {
    let dir = TempDir::new("restart");
    let (data, certs) = (dir.join("data"), dir.join("certs"));
    let server = BinServer::start(&data, &certs, 0, &[]);
    let ann = server.signup("ann");
    let epoch = server.ws(&ann).expect("hello")["epoch"].clone();
    drop(server);
    let server = BinServer::start(&data, &certs, 0, &[]);
    assert_eq!(server.call("GET", "/api/me", Some(&ann), None).status, 200, "sessions are stored");
    assert_eq!(server.ws(&ann).expect("hello")["epoch"], epoch);
}

#[test]
fn a_resend_after_a_server_restart_is_still_recognised_by_its_nonce() {
    let dir = TempDir::new("nonce-restart");
    let (data, certs) = (dir.join("data"), dir.join("certs"));
    let mut server = BinServer::start(&data, &certs, 0, &[]);
    let ann = server.signup("ann");
    server.create_room(&ann, "general", "public");
    let mut ws = server.ws(&ann);
    ws.expect("hello");
    ws.send(json!({"type": "send", "room": "general", "text": "once", "nonce": "restart-1"}));
    let first = ws.expect("message");
    server.kill_hard();
    drop(ws);
    let port = server.addr.port();
    drop(server);
    let server = BinServer::start(&data, &certs, port, &[]);
    let mut ws = server.ws(&ann);
    ws.expect("hello");
    ws.send(json!({"type": "send", "room": "general", "text": "once", "nonce": "restart-1"}));
    assert_eq!(ws.expect("message")["id"], first["id"], "the original, not a copy");
    let history = server.call("GET", "/api/rooms/general/messages", Some(&ann), None).json();
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
}
