//! The pages about the server itself: the local CA certificate (`/ca.pem`,
//! and `/ca.crt` in DER, which phones install more readily) and `/trust`,
//! which tells a person how to trust it once on each device.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::SiteInfo;
use crate::http::{Request, Response};

pub fn respond(site: &SiteInfo, req: &Request) -> Response {
    let Some(pem) = &site.ca_pem else {
        return Response::error(
            404,
            "not_found",
            "this server uses its own certificate, not hearth's local certificate authority",
        );
    };
    match req.path.as_str() {
        "/ca.pem" => Response::new(200, "application/x-pem-file", pem.clone().into_bytes())
            .with_header("Content-Disposition", "attachment; filename=\"hearth-ca.pem\"")
            .with_header("Cache-Control", "no-cache"),
        "/ca.crt" => match CertificateDer::from_pem_slice(pem.as_bytes()) {
            Ok(der) => Response::new(200, "application/x-x509-ca-cert", der.as_ref().to_vec())
                .with_header("Content-Disposition", "attachment; filename=\"hearth-ca.crt\"")
                .with_header("Cache-Control", "no-cache"),
            Err(_) => Response::error(500, "internal", "the CA certificate cannot be read"),
        },
        _ => Response::new(200, "text/html; charset=utf-8", trust_page(site).into_bytes())
            .with_header("Cache-Control", "no-cache"),
    }
}

fn trust_page(site: &SiteInfo) -> String {
    let fp = site.ca_fingerprint.as_deref().unwrap_or("");
    let urls: String = site.urls.iter().map(|u| format!("<li><code>{}</code></li>", escape(u))).collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trust this hearth server</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<main>
<h1>Trust this hearth server</h1>
<p>hearth encrypts every connection with a certificate from its own small
certificate authority (CA), made on this machine the first time it ran. Trust
that CA once on each device and the browser warning goes away for good, even
when the server's address changes.</p>
<p><a href="/ca.crt" download>Download the CA certificate</a> (or as
<a href="/ca.pem" download>PEM</a>). Before trusting it, check that its SHA-256
fingerprint is the one the server printed when it started:</p>
<p><code>{fp}</code></p>
<h2>iPhone and iPad</h2>
<ol>
<li>Open this page in Safari and tap the download link; allow the profile download.</li>
<li>Settings &rarr; General &rarr; VPN &amp; Device Management: tap the hearth profile and Install.</li>
<li>Settings &rarr; General &rarr; About &rarr; Certificate Trust Settings: turn on full trust for the hearth CA.</li>
</ol>
<h2>Android</h2>
<ol>
<li>Tap the download link.</li>
<li>Settings &rarr; Security (or Security &amp; privacy) &rarr; More settings &rarr; Encryption &amp; credentials &rarr; Install a certificate &rarr; CA certificate, and pick the downloaded file.</li>
</ol>
<h2>Windows</h2>
<ol>
<li>Download the certificate and open it; choose Install Certificate.</li>
<li>Pick Local Machine (or Current User), then "Place all certificates in the following store": Trusted Root Certification Authorities.</li>
</ol>
<h2>macOS</h2>
<ol>
<li>Download the certificate and open it: Keychain Access adds it.</li>
<li>Double-click the hearth CA, open Trust, and set "When using this certificate" to Always Trust.</li>
</ol>
<h2>Linux, Chrome and Firefox</h2>
<ul>
<li>Chrome/Chromium: Settings &rarr; Privacy and security &rarr; Security &rarr; Manage certificates &rarr; Authorities &rarr; Import; tick "Trust this certificate for identifying websites".</li>
<li>Firefox: Settings &rarr; Privacy &amp; Security &rarr; Certificates &rarr; View Certificates &rarr; Authorities &rarr; Import.</li>
<li>System-wide on Debian or Raspberry Pi OS: copy it to <code>/usr/local/share/ca-certificates/hearth-ca.crt</code> and run <code>sudo update-ca-certificates</code>.</li>
</ul>
<h2>Addresses of this server</h2>
<ul>{urls}</ul>
<p><a href="/">Back to hearth</a></p>
</main>
</body>
</html>
"#
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
