//! The web UI, embedded at build time by `build.rs` (raw and gzip), served
//! with `ETag` revalidation and gzip when the client accepts it.

use super::{Request, Response};
use std::borrow::Cow;

/// One embedded file of `static/`.
pub struct Asset {
    /// URL path, e.g. `/app.js`.
    pub path: &'static str,
    pub mime: &'static str,
    /// Quoted content hash.
    pub etag: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Every embedded asset (for tests and the size report).
pub fn all() -> &'static [Asset] {
    ASSETS
}

/// The asset for a request path; `/` is `index.html`.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// Answers a GET or HEAD for an asset: 304 when the `ETag` matches, else the
/// gzip body when accepted (and smaller), else the raw body.
pub fn respond(asset: &'static Asset, req: &Request) -> Response {
    // Always revalidate (a cheap 304): after an upgrade a browser must never
    // mix the new page with old modules.
    let cache = "no-cache";
    if req.header("if-none-match").is_some_and(|v| etag_matches(v, asset.etag)) {
        return Response::empty(304)
            .with_header("ETag", asset.etag)
            .with_header("Cache-Control", cache)
            .with_header("Vary", "Accept-Encoding");
    }
    let gzip_ok = req.header_has_token("accept-encoding", "gzip")
        || req
            .header("accept-encoding")
            .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("gzip;") && !t.contains("q=0")));
    let mut resp = if gzip_ok && asset.gzip.len() < asset.raw.len() {
        Response::new(200, asset.mime, Cow::Borrowed(asset.gzip)).with_header("Content-Encoding", "gzip")
    } else {
        Response::new(200, asset.mime, Cow::Borrowed(asset.raw))
    };
    resp = resp
        .with_header("ETag", asset.etag)
        .with_header("Cache-Control", cache)
        .with_header("Vary", "Accept-Encoding");
    resp
}

/// Development only (`HEARTH_DEV_STATIC=DIR`): serves `static/` from disk
/// so the UI can be edited without rebuilding. No caching, no gzip.
pub fn respond_from_dir(dir: &std::path::Path, path: &str) -> Option<Response> {
    let rel = if path == "/" { "index.html" } else { path.trim_start_matches('/') };
    if rel.split('/').any(|seg| seg == ".." || seg.is_empty() || seg.starts_with('.')) {
        return None;
    }
    let bytes = std::fs::read(dir.join(rel)).ok()?;
    let mime = find(path).map(|a| a.mime).unwrap_or(match rel.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    });
    Some(Response::new(200, mime, bytes).with_header("Cache-Control", "no-store"))
}

fn etag_matches(header: &str, etag: &str) -> bool {
    header.trim() == "*"
        || header.split(',').any(|t| {
            let t = t.trim();
            t.strip_prefix("W/").unwrap_or(t) == etag
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            minor_version: 1,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: vec![],
        }
    }

    #[test]
    fn index_is_embedded_and_root_maps_to_it() {
        let a = find("/").expect("index.html embedded");
        assert_eq!(a.path, "/index.html");
        assert!(a.mime.starts_with("text/html"));
        assert!(find("/nope.js").is_none());
    }

    #[test]
    fn gzip_only_when_accepted_and_304_on_matching_etag() {
        let a = find("/index.html").unwrap();
        let plain = respond(a, &get("/", &[]));
        assert_eq!(plain.header("Content-Encoding"), None);
        assert_eq!(&plain.body[..], a.raw);
        let gz = respond(a, &get("/", &[("accept-encoding", "br, gzip")]));
        assert_eq!(gz.header("Content-Encoding"), Some("gzip"));
        let not_modified = respond(a, &get("/", &[("if-none-match", a.etag)]));
        assert_eq!(not_modified.status, 304);
        let other = respond(a, &get("/", &[("if-none-match", "\"nope\"")]));
        assert_eq!(other.status, 200);
    }
}
