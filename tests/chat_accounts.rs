//! Accounts and sessions over real TLS: sign-up, login, logout, cookies,
//! bearer tokens, throttling, origin checks and body validation.

mod common;

use std::time::{Duration, Instant};

use common::chat::{ChatServer, Target, PASSWORD};
use common::request_bytes;
use serde_json::json;

fn creds(name: &str, password: &str) -> serde_json::Value {
    json!({"username": name, "password": password})
}

#[test]
fn first_signup_is_admin_and_later_ones_are_users() {
    let s = ChatServer::start();
    let r = s.call("POST", "/api/signup", None, Some(&creds("Ann", PASSWORD)));
    assert_eq!(r.status, 201);
    let body = r.json();
    assert_eq!(body["user"], json!({"name": "Ann", "role": "admin"}));
    assert_eq!(body["token"].as_str().unwrap().len(), 64);
    let r = s.call("POST", "/api/signup", None, Some(&creds("bob", PASSWORD)));
    assert_eq!(r.json()["user"]["role"], "user");
}

#[test]
fn signup_validates_names_and_passwords_and_refuses_taken_names_case_insensitively() {
    let s = ChatServer::start();
    s.signup("Ann");
    let cases = [
        (creds("", PASSWORD), 400, "bad_name"),
        (creds("has space", PASSWORD), 400, "bad_name"),
        (creds(&"x".repeat(33), PASSWORD), 400, "bad_name"),
        (creds("carl", "short"), 400, "bad_password"),
        (creds("carl", &"p".repeat(1025)), 400, "bad_password"),
        (creds("ANN", PASSWORD), 409, "name_taken"),
    ];
    for (body, status, code) in cases {
        let r = s.call("POST", "/api/signup", None, Some(&body));
        assert_eq!((r.status, r.json()["error"]["code"].as_str().unwrap()), (status, code), "{body}");
    }
    // A name of exactly 32 characters and a password of 1024 bytes are fine.
    let r = s.call("POST", "/api/signup", None, Some(&creds(&"y".repeat(32), &"p".repeat(1024))));
    assert_eq!(r.status, 201);
}

#[test]
fn login_is_case_insensitive_and_shows_the_name_as_first_written() {
    let s = ChatServer::start();
    s.signup("MixedCase");
    let r = s.call("POST", "/api/login", None, Some(&creds("mixedcase", PASSWORD)));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"]["name"], "MixedCase");
}

#[test]
fn unknown_user_and_wrong_password_get_the_same_answer_in_similar_time() {
    let s = ChatServer::start();
    s.signup("ann");
    let mut times = [Duration::ZERO; 2];
    let mut bodies = Vec::new();
    for (i, name) in ["ann", "nobody"].iter().enumerate() {
        let t = Instant::now();
        let r = s.call("POST", "/api/login", None, Some(&creds(name, "wrong password")));
        times[i] = t.elapsed();
        assert_eq!(r.status, 401);
        bodies.push(r.body);
    }
    assert_eq!(bodies[0], bodies[1], "same body for unknown user and wrong password");
    let v: serde_json::Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(v["error"]["code"], "bad_credentials");
    // Both run one argon2 verification: neither answers in a fraction of the other's time.
    let (a, b) = (times[0].as_secs_f64(), times[1].as_secs_f64());
    assert!(a / b < 4.0 && b / a < 4.0, "wrong password {a:.3}s vs unknown user {b:.3}s");
}

#[test]
fn session_cookie_has_the_contract_flags_and_works_like_the_bearer_token() {
    let s = ChatServer::start();
    let r = s.call("POST", "/api/signup", None, Some(&creds("ann", PASSWORD)));
    let cookie = r.header("set-cookie").expect("a session cookie").to_string();
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert!(cookie.starts_with(&format!("hearth_session={token};")), "{cookie}");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|p| p == flag), "{flag} missing in {cookie}");
    }
    let by_cookie = s
        .raw(&request_bytes("GET", "/api/me", &[("Cookie", &format!("hearth_session={token}"))], b""), false);
    assert_eq!(by_cookie.status, 200);
    assert_eq!(by_cookie.json()["user"]["name"], "ann");
    let by_bearer = s.call("GET", "/api/me", Some(&token), None);
    assert_eq!(by_bearer.json(), by_cookie.json());
    let none = s.call("GET", "/api/me", None, None);
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"]["code"], "unauthorized");
    let bad = s.call("GET", "/api/me", Some("0123"), None);
    assert_eq!(bad.status, 401);
}

#[test]
fn cookie_has_no_secure_flag_without_tls() {
    // Behind a reverse proxy (--no-tls) the cookie must still reach the server.
    let s = ChatServer::start_with(|c| c.tls = false, |_| {});
    let mut client = common::Client::new(common::tcp_connect(s.addr));
    let body = creds("ann", PASSWORD).to_string();
    let r = client.request("POST", "/api/signup", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 201);
    let cookie = r.header("set-cookie").unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}

#[test]
fn logout_ends_the_session_everywhere_and_closes_its_websockets() {
    let s = ChatServer::start();
    let token = s.signup("ann");
    let other = s.login("ann");
    let mut tab1 = s.ws(&token);
    let mut tab2 = s.ws(&token);
    let mut other_device = s.ws(&other);
    for ws in [&mut tab1, &mut tab2, &mut other_device] {
        ws.expect("hello");
    }
    let r = s.call("POST", "/api/logout", Some(&token), None);
    assert_eq!(r.status, 204);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(tab1.close_code(), 1000);
    assert_eq!(tab2.close_code(), 1000);
    assert_eq!(s.call("GET", "/api/me", Some(&token), None).status, 401);
    assert!(s.try_ws(&token, None).is_err(), "the dead token opens no WebSocket");
    // The other session (another login) lives on.
    assert_eq!(s.call("GET", "/api/me", Some(&other), None).status, 200);
    other_device.send(json!({"type": "sync", "since": 0}));
    other_device.expect("synced");
}

#[test]
fn failed_logins_are_throttled_per_account() {
    let s = ChatServer::start();
    s.signup("ann");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let r = s.call("POST", "/api/login", None, Some(&creds("ann", "wrong password")));
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
            assert_eq!(r.json()["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    // Even the right password waits out the delay.
    let r = s.call("POST", "/api/login", None, Some(&creds("ann", PASSWORD)));
    assert_eq!(r.status, 429);
    // Another account is not affected.
    s.signup("bob");
    assert_eq!(s.call("POST", "/api/login", None, Some(&creds("bob", PASSWORD))).status, 200);
}

#[test]
fn cookie_requests_from_a_foreign_origin_are_refused() {
    let s = ChatServer::start();
    let token = s.signup("ann");
    let cookie = format!("hearth_session={token}");
    let body = json!({"name": "general"}).to_string();
    let post = |origin: &str| {
        let headers = [("Cookie", cookie.as_str()), ("Origin", origin), ("Content-Type", "application/json")];
        s.raw(&request_bytes("POST", "/api/rooms", &headers, body.as_bytes()), false)
    };
    let r = post("https://evil.example");
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "bad_origin");
    assert_eq!(post("https://localhost").status, 201, "our own origin is fine");
    // A WebSocket upgrade with a foreign Origin is refused too.
    assert_eq!(s.try_ws(&token, Some("https://evil.example")).err().as_deref(), Some("status 403"));
    // tungstenite sends `Host: localhost:PORT`, so that is our origin here.
    let own = format!("https://localhost:{}", s.addr.port());
    assert!(s.try_ws(&token, Some(&own)).is_ok());
    // Without any credentials the upgrade is 401.
    assert_eq!(s.try_ws("nope", None).err().as_deref(), Some("status 401"));
}

#[test]
fn bodies_must_be_json_of_the_right_shape() {
    let s = ChatServer::start();
    let token = s.signup("ann");
    let auth = format!("Bearer {token}");
    let send = |ctype: &str, body: &str| {
        let headers = [("Authorization", auth.as_str()), ("Content-Type", ctype)];
        s.raw(&request_bytes("POST", "/api/rooms", &headers, body.as_bytes()), false)
    };
    let cases = [
        ("text/plain", r#"{"name":"a"}"#, 415, "unsupported_media_type"),
        ("application/json", r#"{"name":"#, 400, "bad_json"),
        ("application/json", r#"{"name":5}"#, 400, "bad_request"),
        ("application/json", r#"{"topic":"no name"}"#, 400, "bad_request"),
        ("application/json", r#"{"name":"ok","visibility":"secret"}"#, 400, "bad_request"),
    ];
    for (ctype, body, status, code) in cases {
        let r = send(ctype, body);
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str().unwrap().to_string()),
            (status, code.into()),
            "{body}"
        );
    }
    assert_eq!(send("application/json; charset=utf-8", r#"{"name":"ok"}"#).status, 201);
}

#[test]
fn unknown_api_routes_are_404_and_wrong_methods_405() {
    let s = ChatServer::start();
    let token = s.signup("ann");
    let r = s.call("GET", "/api/nothing", Some(&token), None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str().unwrap()), (404, "not_found"));
    let r = s.call("DELETE", "/api/me", Some(&token), None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = s.call("GET", "/api/login", None, None);
    assert_eq!(r.status, 405);
}
