//! The WebSocket side of the core over wss on loopback: echo, the message
//! bound, close codes, keep-alive pings, the silence limit, slow consumers,
//! refused upgrades and graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{client_frame, close_code, ws_read, ws_read_close, ws_wait_end, TestServer, WAIT};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Bytes, Message};

const SECOND: Duration = Duration::from_secs(1);
const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn text_and_binary_messages_are_echoed() {
    let server = TestServer::echo(|_| {});
    let mut ws = server.ws();
    ws.send(Message::text("hello, hearth")).unwrap();
    assert_eq!(ws_read(&mut ws, WAIT).unwrap(), Message::text("hello, hearth"));
    let bytes = Bytes::from_static(&[0, 1, 2, 255]);
    ws.send(Message::Binary(bytes.clone())).unwrap();
    assert_eq!(ws_read(&mut ws, WAIT).unwrap(), Message::Binary(bytes));
}

#[test]
fn websocket_works_without_tls() {
    let server = TestServer::echo(|c| c.tls = false);
    let mut ws = server.ws();
    ws.send(Message::text("plain")).unwrap();
    assert_eq!(ws_read(&mut ws, WAIT).unwrap(), Message::text("plain"));
}

#[test]
fn message_of_exactly_64_kib_is_echoed() {
    let server = TestServer::echo(|_| {});
    let mut ws = server.ws();
    let data: Vec<u8> = (0..65_536).map(|i| (i % 253) as u8).collect();
    ws.send(Message::Binary(data.clone().into())).unwrap();
    match ws_read(&mut ws, WAIT).unwrap() {
        Message::Binary(b) => assert!(b == data, "echo differs"),
        other => panic!("expected the binary echo, got {other:?}"),
    }
}

#[test]
fn message_over_64_kib_closes_with_1009() {
    let server = TestServer::echo(|_| {});
    let mut ws = server.ws();
    // The server may stop reading mid-frame; a failed write is fine here.
    let _ = ws.send(Message::Binary(vec![7u8; 65_537].into()));
    assert_eq!(ws_read_close(&mut ws, WAIT), 1009);
    // The connection is failed: the server closes TCP without more ado.
    assert!(ws_wait_end(&mut ws, WAIT), "server kept the TCP connection");
}

#[test]
fn fragmented_message_over_64_kib_closes_with_1009() {
    let server = TestServer::echo(|_| {});
    let mut ws = server.ws();
    let part = vec![b'x'; 40_000];
    let first = Frame::message(part.clone(), OpCode::Data(Data::Binary), false);
    let last = Frame::message(part, OpCode::Data(Data::Continue), true);
    let _ = ws.send(Message::Frame(first));
    let _ = ws.send(Message::Frame(last));
    assert_eq!(ws_read_close(&mut ws, WAIT), 1009);
    // The connection is failed: the server closes TCP without more ado.
    assert!(ws_wait_end(&mut ws, WAIT), "server kept the TCP connection");
}

#[test]
fn invalid_utf8_text_closes_with_1007() {
    let server = TestServer::echo(|_| {});
    let mut ws = server.ws();
    let bad = Frame::message(vec![b'o', b'k', 0xff, 0xfe], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(bad)).unwrap();
    assert_eq!(ws_read_close(&mut ws, WAIT), 1007);
    // The connection is failed: the server closes TCP without more ado.
    assert!(ws_wait_end(&mut ws, WAIT), "server kept the TCP connection");
}

#[test]
fn protocol_violation_closes_with_1002_and_ends_the_connection() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    c.upgrade(b"");
    // Opcode 3 is reserved: the connection must be failed.
    c.send(&client_frame(0x3, b"?"));
    let (op, payload) = c.read_frame(WAIT).unwrap();
    assert_eq!(op, OP_CLOSE);
    assert_eq!(close_code(&payload), 1002);
    let (_, waited) = c.expect_closed(WAIT);
    assert!(waited < SECOND, "the TCP connection lingered {waited:?}");
}

#[test]
fn burst_of_messages_is_echoed_in_order() {
    // More than one turn's worth (64) of messages arrive at once.
    let server = TestServer::echo(|_| {});
    let mut ws = server.ws();
    for i in 0..300 {
        ws.write(Message::text(format!("m{i}"))).unwrap();
    }
    ws.flush().unwrap();
    for i in 0..300 {
        assert_eq!(ws_read(&mut ws, WAIT).unwrap(), Message::text(format!("m{i}")));
    }
}

#[test]
fn frames_sent_with_the_upgrade_request_are_not_lost() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    c.upgrade(&client_frame(OP_TEXT, b"early"));
    let (op, payload) = c.read_frame(WAIT).unwrap();
    assert_eq!((op, payload.as_slice()), (OP_TEXT, &b"early"[..]));
}

#[test]
fn server_pings_a_quiet_peer_after_ws_ping_after() {
    let server = TestServer::echo(|c| c.net.ws_ping_after = SECOND);
    let mut ws = server.ws();
    let start = Instant::now();
    match ws_read(&mut ws, 3 * SECOND).unwrap() {
        Message::Ping(_) => {}
        other => panic!("expected a ping, got {other:?}"),
    }
    let waited = start.elapsed();
    assert!(waited >= ms(900), "ping came too early: {waited:?}");
    assert!(waited < 2 * SECOND, "ping came too late: {waited:?}");
}

#[test]
fn peer_that_answers_pings_stays_open_past_the_silence_limit() {
    let server = TestServer::echo(|c| {
        c.net.ws_ping_after = ms(400);
        c.net.ws_silence_limit = ms(800);
    });
    let mut ws = server.ws();
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < ms(2500) {
        // tungstenite answers each ping with a pong on the next read.
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e)) if common::is_timeout(&e) => {}
            Err(e) => panic!("closed although pongs were sent: {e}"),
        }
    }
    assert!(pings >= 2, "only {pings} pings in 2.5 s");
    ws.send(Message::text("still here")).unwrap();
    loop {
        match ws_read(&mut ws, WAIT).unwrap() {
            Message::Ping(_) => {}
            m => break assert_eq!(m, Message::text("still here")),
        }
    }
}

#[test]
fn silent_peer_is_pinged_then_closed_after_the_silence_limit() {
    let server = TestServer::echo(|c| {
        c.net.ws_ping_after = SECOND;
        c.net.ws_silence_limit = 2 * SECOND;
    });
    // A raw client: it reads frames but never answers anything.
    let mut c = server.client();
    c.upgrade(b"");
    let start = Instant::now();

    let (op, payload) = c.read_frame(3 * SECOND).unwrap();
    assert_eq!(op, OP_PING);
    assert_eq!(payload, b"hearth");
    let pinged = start.elapsed();
    assert!(pinged >= ms(900), "ping came too early: {pinged:?}");

    let (op, payload) = c.read_frame(3 * SECOND).unwrap();
    assert_eq!(op, OP_CLOSE);
    assert_eq!(close_code(&payload), 1001);
    let closed = start.elapsed();
    assert!(closed >= ms(1900), "closed too early: {closed:?}");
    assert!(closed < 3 * SECOND, "closed too late: {closed:?}");

    // No close reply from us: the server gives up on the handshake.
    c.expect_closed(WAIT);
}

#[test]
fn client_close_handshake_gets_a_reply_and_frees_the_place() {
    let server = TestServer::echo(|c| c.net.max_connections = 1);
    let mut ws = server.ws();
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(ws_read(&mut ws, WAIT).unwrap(), Message::text("hi"));

    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).unwrap();
    match ws_read(&mut ws, WAIT) {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert!(ws_wait_end(&mut ws, WAIT), "server kept the TCP connection");
    drop(ws);

    // The only place is free again once the server has dropped the connection.
    let deadline = Instant::now() + WAIT;
    let mut ws = loop {
        match server.try_ws() {
            Ok(ws) => break ws,
            Err(e) if Instant::now() >= deadline => panic!("place not freed: {e}"),
            Err(_) => std::thread::sleep(ms(20)),
        }
    };
    ws.send(Message::text("again")).unwrap();
    assert_eq!(ws_read(&mut ws, WAIT).unwrap(), Message::text("again"));
}

#[test]
fn slow_consumer_is_closed_with_1008() {
    let server = TestServer::echo(|c| c.net.ws_max_output = 64 * 1024);
    let mut ws = server.ws();
    // Small messages pack the server's write buffer to within a few bytes
    // of full, so the close frame must not need room there to be sent.
    let count = 20_000;
    let message = |i: usize| Message::text(format!("{i:08}{}", "x".repeat(26)));
    let mut sent = 0;
    for i in 0..count {
        if ws.write(message(i)).is_err() {
            break;
        }
        sent += 1;
    }
    let _ = ws.flush();
    assert!(sent > count / 2, "only {sent} messages could be sent");

    // Now read: some echoes, in order, then the close frame.
    let mut echoed = 0;
    let code = loop {
        match ws_read(&mut ws, WAIT) {
            Ok(Message::Close(Some(frame))) => break u16::from(frame.code),
            Ok(m) => {
                assert_eq!(m, message(echoed), "echo {echoed}");
                echoed += 1;
            }
            Err(e) => panic!("ended without a close frame after {echoed} echoes: {e}"),
        }
    };
    assert_eq!(code, 1008);
    assert!(echoed > 0, "nothing was echoed before the close");
    assert!(echoed < sent, "all {sent} messages were echoed");
}

#[test]
fn upgrade_without_key_is_400() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    let r = c.request(
        "GET",
        "/ws",
        &[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")],
        b"",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "bad_request");
}

#[test]
fn upgrade_with_wrong_version_is_426() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    let r = c.request(
        "GET",
        "/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "8"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    );
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
}

#[test]
fn plain_get_on_ws_route_is_426() {
    let server = TestServer::echo(|_| {});
    let mut c = server.client();
    let r = c.get("/ws");
    assert_eq!(r.status, 426);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    // The refusal keeps the connection usable.
    assert_eq!(c.get("/healthz").body, b"ok");
}

#[test]
fn graceful_shutdown_sends_1001_and_the_loop_ends() {
    let mut server = TestServer::echo(|_| {});
    let mut ws = server.ws();
    ws.send(Message::text("before")).unwrap();
    assert_eq!(ws_read(&mut ws, WAIT).unwrap(), Message::text("before"));

    let start = Instant::now();
    server.handle.shutdown();
    assert_eq!(ws_read_close(&mut ws, WAIT), 1001);
    // Reading on sends our close reply; then the server ends the connection.
    assert!(ws_wait_end(&mut ws, WAIT), "server kept the TCP connection");
    let took = server.shutdown(WAIT).expect("the server thread ends");
    assert!(start.elapsed() < 5 * SECOND, "shutdown took {:?} ({took:?} after the close)", start.elapsed());
}
