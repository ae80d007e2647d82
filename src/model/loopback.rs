//! Where a secret may travel in clear text: only to this machine. Every HTTP client of
//! tokensmith (the Dynatrace client, the Kubernetes client) and the spec's validation ask the
//! same question here.

/// Whether `url` may be used with plain `http`: only when its host is a loopback address
/// ([`loopback_ip`]) or exactly `localhost`, which the live client's transport resolves to those
/// addresses itself. A name that merely starts with `127.` (`127.0.0.1.nip.io`) resolves
/// wherever its owner wants and is not loopback.
pub fn plain_http_allowed(url: &url::Url) -> bool {
    loopback_ip(url) || matches!(url.host(), Some(url::Host::Domain("localhost")))
}

/// Whether `url`'s host is a loopback IP address (in 127.0.0.0/8, or `::1`): loopback
/// whatever any resolver says. For clients that resolve names through the system (kube-rs),
/// where `localhost` could be pointed elsewhere by a hosts file.
pub fn loopback_ip(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_and_localhost_may_use_plain_http() {
        let allowed = |u: &str| plain_http_allowed(&url::Url::parse(u).unwrap());
        let ip = |u: &str| loopback_ip(&url::Url::parse(u).unwrap());
        for u in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:1",
            // The URL standard reads these as 127.0.0.1.
            "http://0x7f000001",
            "http://2130706433",
            "http://127.1",
        ] {
            assert!(allowed(u) && ip(u), "{u}");
        }
        assert!(allowed("http://localhost:8001") && !ip("http://localhost:8001"));
        for u in [
            "http://127.0.0.1.nip.io",
            "http://127.evil.example",
            "http://localhost.",
            "http://localhost.evil.example",
            "http://[::ffff:127.0.0.1]",
            "http://0.0.0.0",
            "http://[::]",
            "http://10.0.0.1",
        ] {
            assert!(!allowed(u) && !ip(u), "{u}");
        }
    }
}
