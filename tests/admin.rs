//! The server administrator: user management, the sign-up policy, invites,
//! the overview; and the `hearth admin` / `hearth backup` subcommands on a
//! running server's data directory.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::chat::{BinServer, ChatServer, Target, PASSWORD};
use common::TempDir;
use serde_json::json;

fn creds(name: &str) -> serde_json::Value {
    json!({"username": name, "password": PASSWORD})
}

fn code(r: &common::HttpResponse) -> String {
    format!("{} {}", r.status, r.json()["error"]["code"].as_str().unwrap_or(""))
}

#[test]
fn admin_routes_are_for_administrators_only() {
    let s = ChatServer::start();
    let root = s.signup("root");
    let ann = s.signup("ann");
    let routes = [
        ("GET", "/api/admin/users", None),
        ("PUT", "/api/admin/users/root", Some(json!({"disabled": true}))),
        ("POST", "/api/admin/users/root/password", Some(json!({"password": "new password 1"}))),
        ("GET", "/api/admin/overview", None),
        ("GET", "/api/admin/settings", None),
        ("PUT", "/api/admin/settings", Some(json!({"signup": "closed"}))),
        ("GET", "/api/admin/invites", None),
        ("POST", "/api/admin/invites", Some(json!({}))),
        ("DELETE", "/api/admin/invites/abc", None),
    ];
    for (method, path, body) in &routes {
        let r = s.call(method, path, Some(&ann), body.as_ref());
        assert_eq!(code(&r), "403 forbidden", "{method} {path}");
        assert_eq!(s.call(method, path, None, body.as_ref()).status, 401, "{method} {path}");
    }
    let users = s.call("GET", "/api/admin/users", Some(&root), None).json();
    assert_eq!(
        users["users"],
        json!([
            {"name": "ann", "role": "user", "disabled": false, "online": false},
            {"name": "root", "role": "admin", "disabled": false, "online": false},
        ])
    );
    let o = s.call("GET", "/api/admin/overview", Some(&root), None).json();
    for key in
        ["users", "rooms", "connections", "online_users", "messages", "db_bytes", "uptime_s", "version"]
    {
        assert!(o.get(key).is_some(), "overview has {key}: {o}");
    }
    assert_eq!(o["users"], 2);
    assert!(o["db_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn an_administrator_promotes_another_and_the_last_one_cannot_be_removed() {
    let s = ChatServer::start();
    let root = s.signup("root");
    let ann = s.signup("ann");
    let r = s.call("PUT", "/api/admin/users/root", Some(&root), Some(&json!({"role": "user"})));
    assert_eq!(code(&r), "409 last_admin");
    let r = s.call("PUT", "/api/admin/users/ann", Some(&root), Some(&json!({"role": "admin"})));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"]["role"], "admin");
    assert_eq!(s.call("GET", "/api/me", Some(&ann), None).json()["user"]["role"], "admin");
    assert_eq!(s.call("GET", "/api/admin/users", Some(&ann), None).status, 200);
    let r = s.call("PUT", "/api/admin/users/ann", Some(&ann), Some(&json!({"disabled": true})));
    assert_eq!(code(&r), "409 cannot_disable_self");
}

#[test]
fn a_disabled_user_is_logged_out_everywhere_at_once_and_can_be_enabled_again() {
    let s = ChatServer::start();
    let root = s.signup("root");
    let ann = s.signup("ann");
    let mut tab = s.ws(&ann);
    tab.expect("hello");
    let r = s.call("PUT", "/api/admin/users/ann", Some(&root), Some(&json!({"disabled": true})));
    assert_eq!(r.status, 200);
    assert_eq!(tab.close_code(), 1008);
    assert_eq!(s.call("GET", "/api/me", Some(&ann), None).status, 401);
    let r = s.call("POST", "/api/login", None, Some(&creds("ann")));
    assert_eq!(code(&r), "403 disabled");
    let r =
        s.call("POST", "/api/login", None, Some(&json!({"username": "ann", "password": "wrong password"})));
    assert_eq!(code(&r), "401 bad_credentials", "a wrong password reveals nothing");
    s.call("PUT", "/api/admin/users/ann", Some(&root), Some(&json!({"disabled": false})));
    assert_eq!(s.call("POST", "/api/login", None, Some(&creds("ann"))).status, 200);
}

#[test]
fn an_administrator_resets_a_password_and_old_sessions_end() {
    let s = ChatServer::start();
    let root = s.signup("root");
    let ann = s.signup("ann");
    let mut tab = s.ws(&ann);
    tab.expect("hello");
    let r = s.call(
        "POST",
        "/api/admin/users/ann/password",
        Some(&root),
        Some(&json!({"password": "brand new pass"})),
    );
    assert_eq!(r.status, 204);
    assert_eq!(tab.close_code(), 1008);
    assert_eq!(s.call("GET", "/api/me", Some(&ann), None).status, 401);
    assert_eq!(s.call("POST", "/api/login", None, Some(&creds("ann"))).status, 401);
    let r =
        s.call("POST", "/api/login", None, Some(&json!({"username": "ann", "password": "brand new pass"})));
    assert_eq!(r.status, 200);
    let r = s.call("POST", "/api/admin/users/ann/password", Some(&root), Some(&json!({"password": "short"})));
    assert_eq!(code(&r), "400 bad_password");
}

#[test]
fn sign_up_policy_open_invite_closed() {
    let s = ChatServer::start();
    let root = s.signup("root");
    assert_eq!(s.call("GET", "/api/config", None, None).json()["signup"], "open");
    s.call("PUT", "/api/admin/settings", Some(&root), Some(&json!({"signup": "closed"})));
    assert_eq!(s.call("GET", "/api/config", None, None).json()["signup"], "closed");
    assert_eq!(code(&s.call("POST", "/api/signup", None, Some(&creds("ann")))), "403 signup_closed");
    s.call("PUT", "/api/admin/settings", Some(&root), Some(&json!({"signup": "invite"})));
    assert_eq!(code(&s.call("POST", "/api/signup", None, Some(&creds("ann")))), "403 invite_required");
    let inv = s.call("POST", "/api/admin/invites", Some(&root), Some(&json!({"expires_in_hours": 24})));
    assert_eq!(inv.status, 201);
    let invite = inv.json()["invite"].clone();
    let code_str = invite["code"].as_str().unwrap().to_string();
    assert_eq!(invite["link"], format!("/?invite={code_str}"));
    let with = |name: &str, code: &str| {
        s.call(
            "POST",
            "/api/signup",
            None,
            Some(&json!({"username": name, "password": PASSWORD, "invite": code})),
        )
    };
    assert_eq!(code(&with("ann", "wrong-code")), "403 bad_invite");
    assert_eq!(with("ann", &code_str).status, 201);
    assert_eq!(code(&with("bob", &code_str)), "403 bad_invite", "single use");
    let list = s.call("GET", "/api/admin/invites", Some(&root), None).json();
    assert_eq!(list["invites"][0]["used_by"], "ann");
    assert_eq!(list["invites"][0]["usable"], false);
    let r = s.call("PUT", "/api/admin/settings", Some(&root), Some(&json!({"signup": "sometimes"})));
    assert_eq!(r.status, 400);
}

#[test]
fn an_expired_invite_is_refused_and_a_deleted_one_too() {
    let s = ChatServer::start_with(|c| c.signup = Some("invite".into()), |_| {});
    let root = s.signup("root"); // the first account needs no invite
    let make = || {
        s.call("POST", "/api/admin/invites", Some(&root), Some(&json!({"expires_in_hours": 1}))).json()
            ["invite"]["code"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (expired, deleted) = (make(), make());
    // Age the first invite by two hours, as the clock would.
    let db = s.data_dir().join("hearth.db");
    let store = hearth::store::Store::open_file(&db).unwrap();
    store
        .read(|c| {
            c.execute(
                "UPDATE invites SET expires_ms = expires_ms - 2 * 3600 * 1000 WHERE code = ?1",
                [&expired],
            )
        })
        .unwrap();
    drop(store);
    let with = |name: &str, code: &str| {
        s.call(
            "POST",
            "/api/signup",
            None,
            Some(&json!({"username": name, "password": PASSWORD, "invite": code})),
        )
    };
    assert_eq!(code(&with("ann", &expired)), "403 bad_invite");
    assert_eq!(s.call("DELETE", &format!("/api/admin/invites/{deleted}"), Some(&root), None).status, 204);
    assert_eq!(code(&with("ann", &deleted)), "403 bad_invite");
    assert_eq!(s.call("DELETE", &format!("/api/admin/invites/{deleted}"), Some(&root), None).status, 404);
}

fn hearth(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).output().expect("run hearth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_subcommands_work_while_the_server_runs() {
    let dir = TempDir::new("cli");
    let (data, certs) = (dir.join("data"), dir.join("certs"));
    let server = BinServer::start(&data, &certs, 0, &[]);
    server.signup("root");
    let ann = server.signup("ann");
    let mut tab = server.ws(&ann);
    tab.expect("hello");
    let d = data.to_str().unwrap();

    let (status, out, _) = hearth(&["admin", "list-users", "--data", d]);
    assert_eq!(status, 0);
    assert!(out.contains("root") && out.contains("admin") && out.contains("ann"), "{out}");

    let (status, out, err) = hearth(&["admin", "reset-password", "ann", "--data", d]);
    assert_eq!(status, 0, "{err}");
    let password =
        out.split("New password for ann: ").nth(1).unwrap().lines().next().unwrap().trim().to_string();
    assert_eq!(password.len(), 16);
    // The running server notices within seconds: old sessions end.
    assert_eq!(tab.close_code(), 1008);
    let r = server.call("POST", "/api/login", None, Some(&json!({"username": "ann", "password": password})));
    assert_eq!(r.status, 200, "the printed password works: {}", r.text());

    let (status, out, _) = hearth(&["admin", "promote", "ann", "--data", d]);
    assert_eq!(status, 0, "{out}");
    let token = r.json()["token"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let role = server.call("GET", "/api/me", Some(&token), None).json()["user"]["role"].clone();
        if role == "admin" {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not see the promotion");
        std::thread::sleep(Duration::from_millis(200));
    }

    let (status, _, err) = hearth(&["admin", "promote", "nobody", "--data", d]);
    assert_eq!(status, 2);
    assert!(err.contains("no user 'nobody'"), "{err}");
    let (status, _, err) = hearth(&["admin", "list-users", "--data", dir.join("nowhere").to_str().unwrap()]);
    assert_eq!(status, 2);
    assert!(err.contains("no hearth database"), "{err}");
    let (status, _, err) = hearth(&["admin", "dance"]);
    assert_eq!(status, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn backup_while_writing_holds_every_message_acknowledged_before_it_began() {
    let dir = TempDir::new("backup");
    let (data, certs) = (dir.join("data"), dir.join("certs"));
    let server = BinServer::start(&data, &certs, 0, &["--rate", "5000", "--burst", "5000"]);
    let ann = server.signup("ann");
    server.create_room(&ann, "general", "public");
    let mut ws = server.ws(&ann);
    ws.expect("hello");
    for i in 0..200 {
        ws.send(json!({"type": "send", "room": "general", "text": format!("before {i}")}));
    }
    let acked: Vec<i64> = ws.collect("message", 200).iter().map(|m| m["id"].as_i64().unwrap()).collect();
    // Keep writing while the backup runs.
    let writer = std::thread::spawn(move || {
        for i in 0..400 {
            ws.send(json!({"type": "send", "room": "general", "text": format!("during {i}")}));
        }
        ws.collect("message", 400).len()
    });
    let file = dir.join("backup.db");
    let (status, out, err) = hearth(&["backup", file.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(status, 0, "{out}{err}");
    assert!(out.contains("Backup written"), "{out}");
    assert_eq!(writer.join().unwrap(), 400);
    // The copy opens as a hearth database and holds every acknowledged message.
    let copy = hearth::store::Store::open_file(&file).expect("the backup opens");
    let ids: Vec<i64> = copy
        .read(|c| {
            let mut st = c.prepare("SELECT id FROM messages ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .unwrap();
    for id in &acked {
        assert!(ids.contains(id), "message {id} acknowledged before the backup is in it");
    }
    let (status, _, err) = hearth(&["backup", file.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(status, 2, "never overwrites: {err}");
}
