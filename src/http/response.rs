//! HTTP responses as plain values, and their serialization.

use std::borrow::Cow;

/// A response body: static bytes (embedded assets) or owned bytes.
pub type Body = Cow<'static, [u8]>;

/// Headers every response carries: no sniffing, no referrer, no framing, and a
/// content policy that allows only this server's own origin.
const SECURITY_HEADERS: &str = "X-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\n\
X-Frame-Options: DENY\r\n\
Content-Security-Policy: default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n";

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
        Response { status, headers: vec![("Content-Type", content_type.to_string())], body: body.into() }
    }

    /// A response with no body (204, 304, 101).
    pub fn empty(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Cow::Borrowed(&[]) }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string().into_bytes())
    }

    /// The contract's error body: `{"error":{"code","message"}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        Response::json(status, &body)
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", text.as_bytes().to_vec())
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Appends the serialized response to `out`. `head_only` answers a HEAD
    /// request (same headers, no body); `close` adds `Connection: close`.
    pub fn write_to(&self, out: &mut Vec<u8>, head_only: bool, close: bool) {
        out.reserve(256 + self.body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if self.status != 101 {
            out.extend_from_slice(SECURITY_HEADERS.as_bytes());
            if self.status != 304 && self.status != 204 {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(self.body.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            if close {
                out.extend_from_slice(b"Connection: close\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        if !head_only && self.status != 304 && self.status != 204 {
            out.extend_from_slice(&self.body);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(r: &Response, head: bool, close: bool) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out, head, close);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn serializes_status_headers_length_and_body() {
        let s = text_of(&Response::text(200, "hi"), false, false);
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Length: 2\r\n"));
        assert!(s.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(s.contains("frame-ancestors 'none'"));
        assert!(s.ends_with("\r\n\r\nhi"));
        assert!(!s.contains("Connection: close"));
    }

    #[test]
    fn head_keeps_length_but_drops_body() {
        let s = text_of(&Response::text(200, "hello"), true, true);
        assert!(s.contains("Content-Length: 5\r\n"));
        assert!(s.contains("Connection: close\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn error_body_follows_the_contract() {
        let r = Response::error(404, "not_found", "no such room");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "no such room");
    }
}
