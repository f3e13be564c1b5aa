//! Embeds every file under `static/` into the binary: gzip-compressed at build
//! time, with its MIME type and a content hash for `ETag`. Output:
//! `$OUT_DIR/assets.rs`, a `&[Asset]` table included by `src/http/assets.rs`.

use std::collections::hash_map::DefaultHasher;
use std::env;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=static");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut files = Vec::new();
    collect(Path::new("static"), &mut files);
    files.sort();

    let mut table = String::from("&[\n");
    for path in &files {
        let rel =
            path.strip_prefix("static").expect("walked below static/").to_string_lossy().replace('\\', "/");
        let raw = fs::read(path).expect("read static file");
        let gz = gzip(&raw);
        let gz_name = format!("asset-{}.gz", table_key(&rel));
        fs::write(out_dir.join(&gz_name), &gz).expect("write gz asset");
        let abs = fs::canonicalize(path).expect("canonical static path");
        let mut hasher = DefaultHasher::new();
        raw.hash(&mut hasher);
        table.push_str(&format!(
            "    Asset {{ path: {:?}, mime: {:?}, etag: \"\\\"{:016x}\\\"\", raw: include_bytes!({:?}), gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{}\")) }},\n",
            format!("/{rel}"),
            mime(&rel),
            hasher.finish(),
            abs.to_string_lossy(),
            gz_name,
        ));
    }
    table.push_str("]\n");
    fs::write(out_dir.join("assets.rs"), table).expect("write assets.rs");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            out.push(path);
        }
    }
}

fn table_key(rel: &str) -> String {
    rel.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(raw).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

fn mime(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
