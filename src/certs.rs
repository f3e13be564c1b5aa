//! TLS material: the user's certificate, or a local certificate authority
//! (kept in the certs directory) and a server certificate it signs for every
//! name this machine answers to on the LAN.
//!
//! Files in the certs directory:
//! - `ca.pem`, `ca-key.pem` (0600): the local CA, made once, valid 20 years;
//!   users trust `ca.pem` once on each device.
//! - `server.pem`, `server-key.pem` (0600): the server certificate, renewed
//!   when the machine's names change or 30 days before it expires.
//! - `server.json`: the names and expiry of `server.pem`, and the CA's name,
//!   so renewal needs no X.509 parser.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::error::StartupError;

const DAY: i64 = 86_400;
/// Below the 825 days Apple accepts for user-trusted roots, and under the 398
/// that browsers take for public ones.
const SERVER_CERT_DAYS: i64 = 397;
const RENEW_BEFORE_DAYS: i64 = 30;
const CA_DAYS: i64 = 20 * 365;

/// What the server needs for TLS, and what it shows about it.
pub struct TlsMaterial {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the server certificate, colon-separated hex.
    pub fingerprint: String,
    /// The local CA, served at `/ca.pem`; `None` with a user certificate.
    pub ca_pem: Option<String>,
    pub ca_fingerprint: Option<String>,
    /// Whether this start made a new CA or server certificate (for the log).
    pub created: Vec<&'static str>,
}

#[derive(Serialize, Deserialize)]
struct ServerMeta {
    names: Vec<String>,
    not_after: i64,
    ca_name: String,
}

/// Loads `cert`/`key` given by the user, or the local CA's server certificate
/// from `dir`, creating or renewing what is missing or stale.
pub fn load(
    dir: &Path,
    user_pair: Option<(&Path, &Path)>,
    names: &[String],
    now_secs: i64,
) -> Result<TlsMaterial, StartupError> {
    if let Some((cert, key)) = user_pair {
        let (chain, key) = read_pair(cert, key)?;
        let fingerprint = fingerprint(&chain[0]);
        return Ok(TlsMaterial {
            config: server_config(chain, key)?,
            fingerprint,
            ca_pem: None,
            ca_fingerprint: None,
            created: Vec::new(),
        });
    }
    fs::create_dir_all(dir).map_err(|e| {
        StartupError::env(format!(
            "cannot create the certificate directory {}: {}; choose another with --certs",
            dir.display(),
            plain_io(&e)
        ))
    })?;
    let mut created = Vec::new();
    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca-key.pem");
    let meta_path = dir.join("server.json");
    let server_cert = dir.join("server.pem");
    let server_key = dir.join("server-key.pem");

    // Signing needs the CA's name: kept in server.json, and recovered from
    // ca.pem if that file was lost, so devices that trust the CA keep
    // trusting it. Only without the CA files is a new CA made.
    let known_ca = read_meta(&meta_path).map(|m| m.ca_name).or_else(|| ca_name_in(&ca_cert));
    let ca_name = if let (true, true, Some(name)) = (ca_cert.exists(), ca_key.exists(), known_ca) {
        name
    } else {
        let name = format!("hearth local CA {}", random_suffix());
        make_ca(&name, &ca_cert, &ca_key, now_secs)?;
        // A new CA invalidates any server certificate made by an old one.
        let _ = fs::remove_file(&meta_path);
        created.push("certificate authority");
        name
    };

    let fresh = read_meta(&meta_path).filter(|m| {
        m.ca_name == ca_name
            && names.iter().all(|n| m.names.contains(n))
            && m.not_after - now_secs > RENEW_BEFORE_DAYS * DAY
            && server_cert.exists()
            && server_key.exists()
    });
    if fresh.is_none() {
        make_server_cert(&ca_name, &ca_key, names, &server_cert, &server_key, now_secs)?;
        let meta = ServerMeta {
            names: names.to_vec(),
            not_after: now_secs + SERVER_CERT_DAYS * DAY,
            ca_name: ca_name.clone(),
        };
        let json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        write_file(&meta_path, &json, 0o644)?;
        created.push("server certificate");
    }

    let (chain, key) = read_pair(&server_cert, &server_key)?;
    let ca_pem = fs::read_to_string(&ca_cert)
        .map_err(|e| StartupError::env(format!("cannot read {}: {}", ca_cert.display(), plain_io(&e))))?;
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|_| StartupError::env(format!("{} is not a PEM certificate", ca_cert.display())))?;
    Ok(TlsMaterial {
        fingerprint: fingerprint(&chain[0]),
        config: server_config(chain, key)?,
        ca_fingerprint: Some(fingerprint(&ca_der)),
        ca_pem: Some(ca_pem),
        created,
    })
}

/// SHA-256 of a DER certificate as `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, StartupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartupError::env(format!("TLS set-up failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| StartupError::env(format!("the certificate and key do not work together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), StartupError> {
    let cert_bytes = fs::read(cert).map_err(|e| {
        StartupError::env(format!("cannot read the certificate {}: {}", cert.display(), plain_io(&e)))
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| StartupError::env(format!("{} is not a PEM certificate file", cert.display())))?;
    if chain.is_empty() {
        return Err(StartupError::env(format!("{} holds no certificate", cert.display())));
    }
    let key_bytes = fs::read(key).map_err(|e| {
        StartupError::env(format!("cannot read the private key {}: {}", key.display(), plain_io(&e)))
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|_| StartupError::env(format!("{} is not a PEM private key", key.display())))?;
    Ok((chain, key))
}

fn ca_params(name: &str, now_secs: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "hearth");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, now_secs - DAY, now_secs + CA_DAYS * DAY);
    params
}

fn make_ca(name: &str, cert_path: &Path, key_path: &Path, now_secs: i64) -> Result<(), StartupError> {
    let key = KeyPair::generate().map_err(gen_err)?;
    let cert = ca_params(name, now_secs).self_signed(&key).map_err(gen_err)?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)
}

fn make_server_cert(
    ca_name: &str,
    ca_key_path: &Path,
    names: &[String],
    cert_path: &Path,
    key_path: &Path,
    now_secs: i64,
) -> Result<(), StartupError> {
    let ca_key_pem = fs::read_to_string(ca_key_path)
        .map_err(|e| StartupError::env(format!("cannot read {}: {}", ca_key_path.display(), plain_io(&e))))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)
        .map_err(|_| StartupError::env(format!("{} is not a usable key", ca_key_path.display())))?;
    // The issuer is rebuilt from the CA's name and key: that is all a
    // signature needs, and the CA certificate on users' devices stays valid.
    let issuer = Issuer::new(ca_params(ca_name, now_secs), ca_key);

    let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.get(3).cloned().unwrap_or_else(|| "hearth".into()));
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now_secs - DAY, now_secs + SERVER_CERT_DAYS * DAY);
    let key = KeyPair::generate().map_err(gen_err)?;
    let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)
}

/// The `hearth local CA xxxxxxxx` common name inside a CA certificate we made
/// (DER keeps the name's bytes as they are).
fn ca_name_in(ca_cert: &Path) -> Option<String> {
    let pem = fs::read(ca_cert).ok()?;
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    let prefix = b"hearth local CA ";
    let at = der.windows(prefix.len()).position(|w| w == prefix)?;
    let name = der.get(at..at + prefix.len() + 8)?;
    let name = std::str::from_utf8(name).ok()?;
    name[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit()).then(|| name.to_string())
}

fn read_meta(path: &Path) -> Option<ServerMeta> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn set_validity(params: &mut CertificateParams, from_secs: i64, to_secs: i64) {
    let ymd = |secs: i64| crate::clock::civil_from_days(secs.div_euclid(DAY));
    let (y, m, d) = ymd(from_secs);
    params.not_before = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    let (y, m, d) = ymd(to_secs);
    params.not_after = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
}

/// Writes a file atomically (temp file, then rename) with the given mode.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StartupError> {
    let tmp: PathBuf = path.with_extension("tmp");
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StartupError::env(format!("cannot write {}: {}", path.display(), plain_io(&e)))
    })
}

fn gen_err(e: rcgen::Error) -> StartupError {
    StartupError::env(format!("could not make a certificate: {e}"))
}

/// An I/O error as a short phrase, without Rust's "(os error N)".
pub fn plain_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::{ServerName, UnixTime};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!("hearth-certs-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn local() -> Vec<String> {
        names(&["localhost", "127.0.0.1", "::1", "pi"])
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn first_load_creates_the_ca_and_a_server_certificate() {
        let dir = TempDir::new();
        let m = load(&dir.0, None, &local(), crate::clock::now_secs()).unwrap();
        assert_eq!(m.created, ["certificate authority", "server certificate"]);
        for f in ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "server.json"] {
            assert!(dir.0.join(f).is_file(), "{f} missing");
        }
        assert_eq!(mode(&dir.0.join("ca-key.pem")), 0o600);
        assert_eq!(mode(&dir.0.join("server-key.pem")), 0o600);
        assert_eq!(m.ca_pem.as_deref(), Some(fs::read_to_string(dir.0.join("ca.pem")).unwrap().as_str()));
        assert_eq!(m.fingerprint.len(), 32 * 3 - 1, "AB:CD:... of 32 bytes");
        assert_ne!(Some(&m.fingerprint), m.ca_fingerprint.as_ref());
    }

    #[test]
    fn second_load_with_the_same_names_keeps_both_certificates() {
        let dir = TempDir::new();
        let now = crate::clock::now_secs();
        let first = load(&dir.0, None, &local(), now).unwrap();
        let second = load(&dir.0, None, &local(), now + DAY).unwrap();
        assert!(second.created.is_empty(), "{:?}", second.created);
        assert_eq!(second.fingerprint, first.fingerprint);
        assert_eq!(second.ca_fingerprint, first.ca_fingerprint);
        // A subset of the names needs nothing new either.
        let third = load(&dir.0, None, &names(&["localhost"]), now).unwrap();
        assert_eq!(third.fingerprint, first.fingerprint);
    }

    #[test]
    fn new_names_give_a_new_server_certificate_from_the_same_ca() {
        let dir = TempDir::new();
        let now = crate::clock::now_secs();
        let first = load(&dir.0, None, &local(), now).unwrap();
        let mut moved = local();
        moved.push("192.168.1.20".into());
        let second = load(&dir.0, None, &moved, now).unwrap();
        assert_eq!(second.created, ["server certificate"]);
        assert_ne!(second.fingerprint, first.fingerprint);
        assert_eq!(second.ca_fingerprint, first.ca_fingerprint);
        verify(&dir.0, "192.168.1.20", now).expect("the new name is covered");
    }

    #[test]
    fn losing_server_json_keeps_the_ca_that_devices_trust() {
        let dir = TempDir::new();
        let now = crate::clock::now_secs();
        let first = load(&dir.0, None, &local(), now).unwrap();
        std::fs::remove_file(dir.0.join("server.json")).unwrap();
        let second = load(&dir.0, None, &local(), now).unwrap();
        assert_eq!(second.created, ["server certificate"]);
        assert_eq!(second.ca_fingerprint, first.ca_fingerprint);
        verify(&dir.0, "localhost", now).expect("the new certificate chains to the old CA");
    }

    #[test]
    fn server_certificate_is_renewed_30_days_before_it_expires() {
        let dir = TempDir::new();
        let now = crate::clock::now_secs();
        let first = load(&dir.0, None, &local(), now).unwrap();
        // 397-day certificate: still 97 days left after 300.
        let kept = load(&dir.0, None, &local(), now + 300 * DAY).unwrap();
        assert_eq!(kept.fingerprint, first.fingerprint);
        // 17 days left after 380: renewed, by the same CA.
        let renewed = load(&dir.0, None, &local(), now + 380 * DAY).unwrap();
        assert_eq!(renewed.created, ["server certificate"]);
        assert_ne!(renewed.fingerprint, first.fingerprint);
        assert_eq!(renewed.ca_fingerprint, first.ca_fingerprint);
        verify(&dir.0, "localhost", now + 380 * DAY).expect("the renewed certificate verifies");
    }

    #[test]
    fn server_certificate_verifies_for_localhost_and_loopback_against_the_ca() {
        let dir = TempDir::new();
        let now = crate::clock::now_secs();
        load(&dir.0, None, &local(), now).unwrap();
        for name in ["localhost", "127.0.0.1", "::1", "pi"] {
            verify(&dir.0, name, now).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(verify(&dir.0, "example.com", now).is_err(), "a name not in the certificate");
    }

    #[test]
    fn a_user_certificate_pair_is_served_as_given() {
        let dir = TempDir::new();
        load(&dir.0, None, &local(), crate::clock::now_secs()).unwrap();
        let (cert, key) = (dir.0.join("server.pem"), dir.0.join("server-key.pem"));
        let m = load(&dir.0.join("unused"), Some((&cert, &key)), &local(), 0).unwrap();
        let der = CertificateDer::from_pem_file(&cert).unwrap();
        assert_eq!(m.fingerprint, fingerprint(&der));
        assert!(m.ca_pem.is_none() && m.ca_fingerprint.is_none());
        assert!(!dir.0.join("unused").exists(), "no local CA is made");
    }

    #[test]
    fn a_garbage_or_missing_key_is_a_clear_startup_error() {
        let dir = TempDir::new();
        load(&dir.0, None, &local(), crate::clock::now_secs()).unwrap();
        let cert = dir.0.join("server.pem");
        let garbage = dir.0.join("garbage.pem");
        fs::write(&garbage, "not a key").unwrap();
        let err = load(&dir.0, Some((&cert, &garbage)), &local(), 0).err().unwrap();
        assert!(err.to_string().contains("is not a PEM private key"), "{err}");
        let missing = dir.0.join("missing.pem");
        let err = load(&dir.0, Some((&cert, &missing)), &local(), 0).err().unwrap();
        assert!(err.to_string().starts_with("cannot read the private key"), "{err}");
        assert!(!err.to_string().contains("os error"), "{err}");
    }

    /// Verifies `dir`'s server certificate for `name` against `dir`'s CA, as
    /// a browser that trusts the CA would, at `now_secs`.
    fn verify(dir: &Path, name: &str, now_secs: i64) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let chain: Vec<CertificateDer> =
            CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().collect::<Result<_, _>>().unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now_secs as u64));
        verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], now).map(|_| ())
    }
}
