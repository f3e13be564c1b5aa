//! Incremental HTTP/1.1 request parsing over a byte buffer (sans-IO).
//!
//! `parse_request` is called with everything received so far; it answers
//! `Incomplete` until one whole request (head and body) is there, then the
//! request and how many bytes it used, so pipelined requests are parsed in turn.

use super::Request;

/// Most headers a request may carry; more is a 431.
const MAX_HEADERS: usize = 64;

/// Size bounds for one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of request line plus headers (431 above).
    pub max_head: usize,
    /// Bytes of body by `Content-Length` (413 above).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 16 * 1024, max_body: 64 * 1024 }
    }
}

/// What one parse step found.
#[derive(Debug)]
pub enum Parsed {
    /// Not yet a whole request; read more.
    Incomplete,
    /// One request, and the number of bytes of the buffer it took.
    Complete(Box<Request>, usize),
}

/// A request the server refuses; each is answered with its status, then the
/// connection closes (the byte stream can no longer be trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x, or a malformed line or header.
    Malformed(&'static str),
    /// Head longer than `max_head`, or too many headers.
    HeadTooLarge,
    /// `Content-Length` above `max_body`.
    BodyTooLarge,
    /// `Transfer-Encoding` (chunked) bodies are not supported.
    LengthRequired,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::LengthRequired => 411,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            HttpError::Malformed(_) => "bad_request",
            HttpError::HeadTooLarge => "headers_too_large",
            HttpError::BodyTooLarge => "too_large",
            HttpError::LengthRequired => "length_required",
        }
    }

    pub fn message(&self) -> String {
        match self {
            HttpError::Malformed(why) => format!("malformed request: {why}"),
            HttpError::HeadTooLarge => "request headers are too large".into(),
            HttpError::BodyTooLarge => "request body is too large".into(),
            HttpError::LengthRequired => {
                "chunked request bodies are not supported; send Content-Length".into()
            }
        }
    }
}

/// Parses one request from the front of `buf`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head {
                return Err(HttpError::HeadTooLarge);
            }
            return Ok(Parsed::Incomplete);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(HttpError::Malformed("not HTTP/1.x")),
        Err(_) => return Err(HttpError::Malformed("bad request line or header")),
    };
    if head_len > limits.max_head {
        return Err(HttpError::HeadTooLarge);
    }
    // unwrap-free: httparse fills method, path and version on Complete.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("request target must be a path"));
    }

    let mut content_length: Option<usize> = None;
    let mut owned = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(HttpError::Malformed("header value is not UTF-8"));
        };
        match name.as_str() {
            "transfer-encoding" => return Err(HttpError::LengthRequired),
            "content-length" => {
                let n: usize =
                    value.trim().parse().map_err(|_| HttpError::Malformed("bad Content-Length"))?;
                if content_length.is_some_and(|old| old != n) {
                    return Err(HttpError::Malformed("conflicting Content-Length"));
                }
                content_length = Some(n);
            }
            _ => {}
        }
        owned.push((name, value.trim().to_string()));
    }

    let body_len = content_length.unwrap_or(0);
    if body_len > limits.max_body {
        return Err(HttpError::BodyTooLarge);
    }
    let total = head_len + body_len;
    if buf.len() < total {
        return Ok(Parsed::Incomplete);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        minor_version: minor,
        headers: owned,
        body: buf[head_len..total].to_vec(),
    };
    Ok(Parsed::Complete(Box::new(request), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Parsed, HttpError> {
        parse_request(s, &Limits::default())
    }

    #[test]
    fn parses_a_complete_request_and_reports_its_length() {
        let raw = b"POST /api/x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        match parse(raw).unwrap() {
            Parsed::Complete(r, n) => {
                assert_eq!(r.method, "POST");
                assert_eq!(r.path, "/api/x");
                assert_eq!(r.query, "y=1");
                assert_eq!(r.body, b"abc");
                assert_eq!(r.header("host"), Some("a"));
                assert_eq!(n, raw.len() - 3);
            }
            Parsed::Incomplete => panic!("expected a request"),
        }
    }

    #[test]
    fn incomplete_head_and_incomplete_body_wait_for_more() {
        assert!(matches!(parse(b"GET / HT"), Ok(Parsed::Incomplete)));
        assert!(matches!(parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"), Ok(Parsed::Incomplete)));
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete() {
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
        for cut in 0..raw.len() {
            assert!(matches!(parse(&raw[..cut]), Ok(Parsed::Incomplete)), "cut at {cut}");
        }
    }

    #[test]
    fn malformed_request_is_400() {
        assert_eq!(parse(b"GET\x01 / HTTP/1.1\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(parse(b"GET http://x/ HTTP/1.1\r\n\r\n").unwrap_err().status(), 400);
        let bad_len = b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        assert_eq!(parse(bad_len).unwrap_err().status(), 400);
        let two = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(parse(two).unwrap_err().status(), 400);
    }

    #[test]
    fn oversized_head_is_431_even_before_it_ends() {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 17 * 1024));
        assert_eq!(parse(&raw).unwrap_err(), HttpError::HeadTooLarge);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            many.extend(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(parse(&many).unwrap_err(), HttpError::HeadTooLarge);
    }

    #[test]
    fn body_over_limit_is_413_and_chunked_is_411() {
        let big = b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n";
        assert_eq!(parse(big).unwrap_err(), HttpError::BodyTooLarge);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(chunked).unwrap_err(), HttpError::LengthRequired);
    }
}
