//! The HTTP/1.1 side of the core, with real clients over loopback: TLS
//! against the generated CA, keep-alive and pipelining, the size bounds, the
//! timeouts, the connection cap, the built-in routes and their headers.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use common::{request_bytes, tls_connect, Client, TestServer, WAIT};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const SECOND: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn tls_handshake_verifies_against_the_generated_ca_which_is_served() {
    let server = TestServer::echo(|_| {});
    // `tls()` fails unless the certificate chains to certs/ca.pem for "localhost".
    let mut c = server.client();
    let file = std::fs::read(&server.ca_pem).unwrap();

    let pem = c.get("/ca.pem");
    assert_eq!(pem.status, 200);
    assert_eq!(pem.header("content-type"), Some("application/x-pem-file"));
    assert_eq!(pem.body, file);

    let crt = c.get("/ca.crt");
    assert_eq!(crt.status, 200);
    let der = CertificateDer::from_pem_slice(&file).unwrap();
    assert_eq!(crt.body, der.as_ref());
}

#[test]
fn tls_client_that_does_not_trust_the_ca_is_refused() {
    let server = TestServer::echo(|_| {});
    let other = TestServer::echo(|_| {});
    // Each server makes its own CA: trusting the other one must fail.
    assert!(tls_connect(server.addr, &other.ca_pem).is_err());
}

#[test]
fn healthz_answers_ok() {
    let server = TestServer::echo(|_| {});
    let r = server.client().get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    for i in 0..3 {
        let body = format!("request {i}");
        let r = c.request("POST", "/echo", &[], body.as_bytes());
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), body);
        assert_eq!(r.header("connection"), None, "no Connection: close");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    let mut bytes = request_bytes("GET", "/healthz", &[], b"");
    bytes.extend(request_bytes("POST", "/echo", &[], b"second, with a body"));
    bytes.extend(request_bytes("GET", "/no-such-page", &[], b""));
    c.send(&bytes);

    let first = c.read_response(false).unwrap();
    assert_eq!((first.status, first.text().as_str()), (200, "ok"));
    let second = c.read_response(false).unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "second, with a body");
    let third = c.read_response(false).unwrap();
    assert_eq!(third.status, 404);
}

#[test]
fn request_sent_one_byte_at_a_time_is_parsed() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    let bytes = request_bytes("POST", "/echo", &[("X-Slow", "yes")], b"hello");
    for b in &bytes {
        // One TLS record and, with the pause, one TCP segment per byte.
        c.send(std::slice::from_ref(b));
        std::thread::sleep(ms(1));
    }
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    // The connection's parser state is clean for the next request.
    assert_eq!(c.get("/healthz").body, b"ok");
}

#[test]
fn body_of_exactly_64_kib_is_accepted() {
    let server = TestServer::echo(|_| {});
    let body: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let r = server.client().request("POST", "/echo", &[], &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
}

#[test]
fn body_over_64_kib_is_413_and_closes() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "too_large");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed(WAIT);
}

#[test]
fn chunked_body_is_411() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 411);
    assert_eq!(r.json()["error"]["code"], "length_required");
    c.expect_closed(WAIT);
}

#[test]
fn header_over_16_kib_is_431() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    let big = "a".repeat(17 * 1024);
    c.send(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["error"]["code"], "headers_too_large");
    c.expect_closed(WAIT);
}

#[test]
fn malformed_request_is_400_and_closes() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    c.send(b"THIS IS NOT HTTP\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "bad_request");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed(WAIT);
}

#[test]
fn slow_request_head_gets_408_after_header_timeout_and_closes() {
    let server = TestServer::echo(|c| c.net.header_timeout = SECOND);
    let mut c = server.client();
    let start = Instant::now();
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    let r = c.read_response(false).unwrap();
    let waited = start.elapsed();
    assert_eq!(r.status, 408);
    assert_eq!(r.json()["error"]["code"], "timeout");
    assert!(waited >= ms(900), "408 came too early: {waited:?}");
    assert!(waited < 3 * SECOND, "408 came too late: {waited:?}");
    c.expect_closed(WAIT);
}

#[test]
fn connection_that_never_starts_tls_is_closed_after_header_timeout() {
    let server = TestServer::echo(|c| c.net.header_timeout = SECOND);
    let start = Instant::now();
    let mut c = Client::new(server.tcp());
    c.expect_closed(WAIT);
    let waited = start.elapsed();
    assert!(waited >= ms(900), "closed too early: {waited:?}");
    assert!(waited < 3 * SECOND, "closed too late: {waited:?}");
}

#[test]
fn idle_keep_alive_connection_closes_after_idle_timeout() {
    let server = TestServer::echo(|c| c.net.idle_timeout = SECOND);
    let mut c = server.client();
    assert_eq!(c.get("/healthz").status, 200);
    std::thread::sleep(ms(500));
    // Still open half-way through, and each answer restarts the clock.
    assert_eq!(c.get("/healthz").status, 200);
    let (_, waited) = c.expect_closed(WAIT);
    assert!(waited >= ms(900), "closed too early: {waited:?}");
    assert!(waited < 3 * SECOND, "closed too late: {waited:?}");
}

#[test]
fn http10_and_connection_close_requests_close_after_the_answer() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed(WAIT);

    let mut c = server.client();
    let r = c.request("GET", "/healthz", &[("Connection", "close")], b"");
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_closed(WAIT);
}

#[test]
fn request_then_half_close_still_gets_its_answer_over_tcp() {
    let server = TestServer::echo(|c| c.tls = false);
    let stream = server.tcp();
    let mut c = Client::new(stream.try_clone().unwrap());
    c.send(&request_bytes("POST", "/echo", &[], b"bye"));
    stream.shutdown(Shutdown::Write).unwrap();
    let r = c.read_response(false).expect("the answer despite the half-close");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"bye"[..]));
    c.expect_closed(WAIT);
}

#[test]
fn request_then_close_notify_still_gets_its_answer_over_tls() {
    let server = TestServer::echo(|_| {});
    let mut tls = server.tls();
    tls.write_all(&request_bytes("POST", "/echo", &[], b"bye")).unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    tls.sock.shutdown(Shutdown::Write).unwrap();
    let mut c = Client::new(tls);
    let r = c.read_response(false).expect("the answer despite close_notify");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"bye"[..]));
    c.expect_closed(WAIT);
}

#[test]
fn large_pipelined_responses_arrive_when_the_client_reads_late() {
    // Plain TCP so that one thread can write while another reads.
    let server = TestServer::echo(|c| c.tls = false);
    let stream = server.tcp();
    let mut writer = stream.try_clone().unwrap();
    let bodies: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'a' + i; 60_000]).collect();
    let requests: Vec<Vec<u8>> = bodies.iter().map(|b| request_bytes("POST", "/echo", &[], b)).collect();
    let sender = std::thread::spawn(move || {
        for r in requests {
            writer.write_all(&r).unwrap();
        }
    });
    // Let the server fill the socket and its own output buffer.
    std::thread::sleep(ms(300));
    let mut c = Client::new(stream);
    for (i, body) in bodies.iter().enumerate() {
        let r = c.read_response(false).unwrap_or_else(|e| panic!("response {i}: {e}"));
        assert_eq!(r.status, 200, "response {i}");
        assert!(r.body == *body, "response {i} has the wrong body");
    }
    sender.join().unwrap();
}

#[test]
fn connections_past_the_cap_are_refused_at_once() {
    let server = TestServer::echo(|c| c.net.max_connections = 3);
    let mut held: Vec<_> = (0..3)
        .map(|_| {
            let mut c = server.client();
            assert_eq!(c.get("/healthz").status, 200);
            c
        })
        .collect();

    let start = Instant::now();
    let refused = tls_connect(server.addr, &server.ca_pem);
    assert!(refused.is_err(), "a 4th connection was served");
    assert!(start.elapsed() < SECOND, "refusal took {:?}", start.elapsed());

    for c in &mut held {
        assert_eq!(c.get("/healthz").status, 200);
    }

    // Once one closes, its place is free again.
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        match tls_connect(server.addr, &server.ca_pem) {
            Ok(s) => {
                assert_eq!(Client::new(s).get("/healthz").status, 200);
                break;
            }
            Err(e) if Instant::now() >= deadline => panic!("no place freed: {e}"),
            Err(_) => std::thread::sleep(ms(20)),
        }
    }
}

#[test]
fn asset_is_gzipped_when_the_client_accepts_it() {
    let asset = hearth::http::assets::find("/index.html").unwrap();
    assert!(asset.gzip.len() < asset.raw.len(), "precondition: gzip helps");
    let server = TestServer::echo(|_| {});
    let mut c = server.client();

    let gz = c.request("GET", "/", &[("Accept-Encoding", "gzip, deflate")], b"");
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    assert_eq!(gz.header("content-type"), Some(asset.mime));
    assert_ne!(gz.body, asset.raw);
    assert_eq!(gz.body, asset.gzip);

    let raw = c.get("/");
    assert_eq!(raw.header("content-encoding"), None);
    assert_eq!(raw.body, asset.raw);
}

#[test]
fn matching_etag_gets_304_without_a_body() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    let first = c.get("/style.css");
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag").to_string();

    let again = c.request("GET", "/style.css", &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.header("content-length"), None);
    assert!(again.body.is_empty());
    // Nothing followed the 304: the next answer parses cleanly.
    assert_eq!(c.get("/healthz").body, b"ok");

    let other = c.request("GET", "/style.css", &[("If-None-Match", "\"x\"")], b"");
    assert_eq!(other.status, 200);
}

#[test]
fn head_gives_headers_and_length_without_a_body() {
    let server = TestServer::echo(|_| {});
    let asset = hearth::http::assets::find("/index.html").unwrap();
    let mut c = server.client();
    let r = c.request("HEAD", "/index.html", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(asset.raw.len().to_string().as_str()));
    let r = c.request("HEAD", "/healthz", &[], b"");
    assert_eq!(r.header("content-length"), Some("2"));
    // Had a body followed either head, this would read it instead.
    assert_eq!(c.get("/healthz").body, b"ok");
}

#[test]
fn unknown_route_is_404_json() {
    let server = TestServer::echo(|_| {});
    let r = server.client().get("/no/such/thing");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["error"]["code"], "not_found");
    assert!(v["error"]["message"].is_string());
}

#[test]
fn every_response_carries_security_headers() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    for path in ["/healthz", "/", "/nope", "/trust"] {
        let r = c.get(path);
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
    }
}

#[test]
fn trust_page_shows_the_ca_fingerprint() {
    let server = TestServer::echo(|_| {});
    let der = CertificateDer::from_pem_file(&server.ca_pem).unwrap();
    let fingerprint = hearth::certs::fingerprint(der.as_ref());
    let r = server.client().get("/trust");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().starts_with("<!doctype html>"));
    assert!(r.text().contains(&fingerprint), "fingerprint not on the page");
}

#[test]
fn plain_http_works_without_tls() {
    let server = TestServer::echo(|c| c.tls = false);
    let mut c = Client::new(server.tcp());
    let r = c.get("/healthz");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(c.request("POST", "/echo", &[], b"plain").body, b"plain");
    // No local CA in this mode.
    assert_eq!(c.get("/ca.pem").status, 404);
}

#[test]
fn shutdown_closes_idle_connections_and_stops_accepting() {
    let mut server = TestServer::echo(|_| {});
    let mut c = server.client();
    assert_eq!(c.get("/healthz").status, 200);
    server.handle.shutdown();
    let (_, waited) = c.expect_closed(WAIT);
    assert!(waited < SECOND, "idle connection kept for {waited:?}");
    drop(c);
    let took = server.shutdown(WAIT).expect("the loop ends");
    assert!(took < SECOND, "loop took {took:?} to end");
    assert!(
        std::net::TcpStream::connect_timeout(&server.addr, SECOND).is_err(),
        "still accepting after shutdown"
    );
}
