//! What this machine is called on the LAN: its hostname and addresses, for
//! the start-up banner and the certificate's names.

use std::net::{IpAddr, SocketAddr};

/// The kernel's hostname, or `hearth` when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or_else(|| "hearth".to_string())
}

/// Non-loopback addresses of the machine's interfaces: IPv4, and IPv6 that
/// is not link-local (those need a zone and no browser takes them).
pub fn lan_addrs() -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    addrs.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    addrs.dedup();
    addrs
}

/// The names a server certificate should cover now: localhost, loopback
/// addresses, the hostname, `<hostname>.local` and every LAN address.
pub fn certificate_names() -> Vec<String> {
    let host = hostname();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    names.push(host.clone());
    if !host.ends_with(".local") {
        names.push(format!("{host}.local"));
    }
    names.extend(lan_addrs().into_iter().map(|ip| ip.to_string()));
    names.dedup();
    names
}

/// The URLs a person can open to reach a server listening on `listen`.
pub fn urls(listen: SocketAddr, tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let port = listen.port();
    let default_port = if tls { 443 } else { 80 };
    let fmt = |host: &str| {
        if port == default_port {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{port}")
        }
    };
    let ip_host = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    if !listen.ip().is_unspecified() {
        return vec![fmt(&ip_host(listen.ip()))];
    }
    let host = hostname();
    let mut out = vec![fmt(&format!("{}.local", host.trim_end_matches(".local")))];
    out.extend(
        lan_addrs().into_iter().filter(|ip| ip.is_ipv4() || listen.is_ipv6()).map(|ip| fmt(&ip_host(ip))),
    );
    out.push(fmt("localhost"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_a_specific_address_name_only_it() {
        let u = urls("127.0.0.1:9000".parse().unwrap(), true);
        assert_eq!(u, vec!["https://127.0.0.1:9000".to_string()]);
        let u = urls("127.0.0.1:80".parse().unwrap(), false);
        assert_eq!(u, vec!["http://127.0.0.1".to_string()]);
    }

    #[test]
    fn urls_for_all_interfaces_include_mdns_name_and_localhost() {
        let u = urls("0.0.0.0:8443".parse().unwrap(), true);
        assert!(u[0].ends_with(".local:8443"), "{u:?}");
        assert_eq!(u.last().unwrap(), "https://localhost:8443");
    }

    #[test]
    fn certificate_names_cover_localhost_and_hostname() {
        let n = certificate_names();
        assert!(n.contains(&"localhost".to_string()));
        assert!(n.contains(&hostname()));
    }
}
