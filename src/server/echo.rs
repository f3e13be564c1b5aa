//! An app that echoes every WebSocket message back: the target of the
//! Autobahn conformance suite (`examples/echo.rs`) and of the core's tests.
//! It runs on the very same loop, TLS and connection code as the chat app.

use std::net::SocketAddr;

use super::{App, ConnId, Ctx};
use crate::http::{Request, Response};
use tungstenite::Message;

#[derive(Default)]
pub struct EchoApp {
    /// WebSockets open now (tests read it to see closes reach the app).
    pub open: usize,
}

impl App for EchoApp {
    fn http(&mut self, _ctx: &mut Ctx, _conn: ConnId, _peer: SocketAddr, req: Request) -> Option<Response> {
        // `POST /echo` answers its body, so tests can exercise request bodies.
        if req.method == "POST" && req.path == "/echo" {
            return Some(Response::new(200, "application/octet-stream", req.body));
        }
        Some(Response::error(404, "not_found", "no such route"))
    }

    fn ws_accept(&mut self, _ctx: &mut Ctx, _conn: ConnId, _req: &Request) -> Result<(), Response> {
        Ok(())
    }

    fn ws_open(&mut self, _ctx: &mut Ctx, _conn: ConnId) {
        self.open += 1;
    }

    fn ws_text(&mut self, ctx: &mut Ctx, conn: ConnId, text: tungstenite::Utf8Bytes) {
        ctx.send(conn, Message::Text(text));
    }

    fn ws_binary(&mut self, ctx: &mut Ctx, conn: ConnId, data: tungstenite::Bytes) {
        ctx.send(conn, Message::Binary(data));
    }

    fn ws_closed(&mut self, _ctx: &mut Ctx, _conn: ConnId) {
        self.open -= 1;
    }
}
