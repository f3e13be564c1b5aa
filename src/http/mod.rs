//! HTTP/1.1 as plain values: a sans-IO request parser, owned request and
//! response types, and the embedded static assets.
//!
//! In scope: parsing request heads and bodies from bytes, serializing
//! responses to bytes. Out of scope: sockets, TLS, routing of the app.

pub mod assets;
mod parse;
mod response;

pub use parse::{parse_request, HttpError, Limits, Parsed};
pub use response::{Body, Response};

/// One parsed HTTP request with its body. Header names are lower-cased.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query string, still percent-encoded.
    pub path: String,
    /// The raw query string (after `?`), empty when absent.
    pub query: String,
    /// HTTP minor version: 0 or 1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header (like `Connection`) holds `token`.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after this request (HTTP/1.1 default).
    pub fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.header_has_token("connection", "keep-alive")
        } else {
            !self.header_has_token("connection", "close")
        }
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }

    /// A cookie value from the `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers.iter().filter(|(k, _)| k == "cookie").flat_map(|(_, v)| v.split(';')).find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// Percent-decodes a URL component (`+` stays as is). Invalid escapes are kept literally;
/// invalid UTF-8 is replaced, so the result is always a valid string.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], minor: u8) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: "a=1&b=x%20y&c".into(),
            minor_version: minor,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: vec![],
        }
    }

    #[test]
    fn keep_alive_defaults_follow_http_version() {
        assert!(req(&[], 1).keep_alive());
        assert!(!req(&[("connection", "close")], 1).keep_alive());
        assert!(!req(&[], 0).keep_alive());
        assert!(req(&[("connection", "Keep-Alive")], 0).keep_alive());
    }

    #[test]
    fn query_and_cookie_lookup() {
        let r = req(&[("cookie", "x=1; hearth_session=abc; y=2")], 1);
        assert_eq!(r.query_param("b").as_deref(), Some("x y"));
        assert_eq!(r.query_param("c").as_deref(), Some(""));
        assert_eq!(r.query_param("z"), None);
        assert_eq!(r.cookie("hearth_session"), Some("abc"));
    }

    #[test]
    fn percent_decode_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
