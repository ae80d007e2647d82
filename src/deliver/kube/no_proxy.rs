//! `NO_PROXY` for Kubernetes API servers. kube-rs takes `HTTPS_PROXY` from the environment but
//! not `NO_PROXY`, so a cluster the proxy cannot reach (a private endpoint, a cluster on the
//! same network as the runner) would fail through a proxy that kubectl bypasses. The rules are
//! those of the Dynatrace client's (reqwest's), so one `NO_PROXY` means the same for both:
//! comma-separated entries, whitespace ignored; `*` matches every host; an IP address, or a
//! network with a prefix length (`10.0.0.0/8`), matches addresses in it; any other entry is a
//! domain that matches itself and its subdomains, with or without a leading dot. Ports are not
//! compared. (`reqwest::NoProxy` parses the same list but keeps its matching private, so it
//! cannot answer for a kube-rs client.)

use std::net::IpAddr;

/// Whether `no_proxy` names `host` (a name or an address as a URL carries it; IPv6 in brackets
/// or not).
pub fn bypasses_proxy(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip: Option<IpAddr> = host.parse().ok();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| match ip {
            _ if entry == "*" => true,
            Some(ip) => in_network(entry, ip),
            None => {
                let domain = entry.trim_start_matches('.').trim_end_matches('.');
                let domain = domain.to_ascii_lowercase();
                !domain.is_empty()
                    && (host == domain
                        || host
                            .strip_suffix(&domain)
                            .is_some_and(|rest| rest.ends_with('.')))
            }
        })
}

/// `entry` is `ip` or a network (`addr/len`) that holds it.
fn in_network(entry: &str, ip: IpAddr) -> bool {
    let (addr, len) = match entry.split_once('/') {
        Some((a, l)) => match l.parse::<u32>() {
            Ok(l) => (a, Some(l)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(net) = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return false;
    };
    let (net, ip, bits) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let len = len.unwrap_or(bits);
    if len > bits {
        return false;
    }
    let shift = bits - len;
    shift >= 128 || (net >> shift) == (ip >> shift)
}

#[cfg(test)]
mod tests {
    use super::bypasses_proxy;

    #[test]
    fn domains_match_themselves_and_their_subdomains() {
        let list = "example.com, .corp.internal ,eks.amazonaws.com.";
        for host in [
            "example.com",
            "api.example.com",
            "EXAMPLE.com",
            "a.b.corp.internal",
            "corp.internal",
            "x.eks.amazonaws.com",
        ] {
            assert!(bypasses_proxy(list, host), "{host}");
        }
        for host in [
            "badexample.com",
            "example.com.evil",
            "internal",
            "amazonaws.com",
        ] {
            assert!(!bypasses_proxy(list, host), "{host}");
        }
    }

    #[test]
    fn addresses_and_networks_match_addresses_only() {
        let list = "10.0.0.0/8,192.168.1.7,fd00::/8,::1";
        for host in ["10.1.2.3", "192.168.1.7", "[fd12::1]", "::1"] {
            assert!(bypasses_proxy(list, host), "{host}");
        }
        for host in ["11.0.0.1", "192.168.1.8", "fe80::1", "10.example"] {
            assert!(!bypasses_proxy(list, host), "{host}");
        }
        assert!(bypasses_proxy("0.0.0.0/0", "8.8.8.8"));
        assert!(!bypasses_proxy("10.0.0.0/33,10.0.0.0/x", "10.0.0.1"));
        assert!(!bypasses_proxy("10.0.0.0/8", "::ffff:10.0.0.1"));
    }

    #[test]
    fn a_star_matches_everything_and_an_empty_list_nothing() {
        assert!(bypasses_proxy("localhost, *", "anything.example"));
        assert!(!bypasses_proxy("", "example.com"));
        assert!(!bypasses_proxy(" , ,", "example.com"));
        assert!(!bypasses_proxy(".", "example.com"));
    }
}
