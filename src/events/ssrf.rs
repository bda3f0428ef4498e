//! The SSRF guard for webhook endpoint and run callback URLs: `https` only (`http`
//! with `WEBHOOK_ALLOW_HTTP=true`), and no address the host resolves to may be
//! loopback, private, link-local (cloud metadata at 169.254.169.254 included),
//! CGNAT, unspecified, multicast, broadcast, reserved or special-purpose (IANA's
//! registries), nor an IPv6 form that tunnels to IPv4 (NAT64, 6to4, Teredo), unless
//! `WEBHOOK_ALLOW_PRIVATE=true`. Errors never say which address a name resolved to:
//! that would let a caller map the internal network through the guard.
//!
//! Checked when an endpoint is created or changed, again before every delivery
//! (DNS can change), and, through [`GuardedResolver`], on the connection itself,
//! so a name that resolves to a public address at check time and a private one a
//! moment later still cannot reach inside. Redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::Url;

/// What may be called.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub allow_http: bool,
    pub allow_private: bool,
}

impl Policy {
    /// `WEBHOOK_ALLOW_HTTP`, `WEBHOOK_ALLOW_PRIVATE`: for webhook endpoints and run callbacks alike.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self { allow_http: config.webhook_allow_http, allow_private: config.webhook_allow_private }
    }
}

/// Why an address may not be called, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible forms reach IPv4 hosts.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local fc00::/7)")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local (fec0::/10)")
            } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
                forbidden_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
                    .or(Some("IPv4-compatible"))
            } else if s[0] == 0x64 && s[1] == 0xff9b {
                // 64:ff9b::/96 (well-known) and 64:ff9b:1::/48 (local-use): a NAT64 gateway
                // reaches the IPv4 address inside, internal ones included.
                Some("NAT64 (64:ff9b::/96)")
            } else if s[0] == 0x2002 {
                Some("6to4 (2002::/16)")
            } else if s[0] == 0x2001 && s[1] == 0 {
                Some("Teredo (2001::/32)")
            } else if s[0..4] == [0x100, 0, 0, 0] {
                Some("discard-only (100::/64)")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some(if ip == Ipv4Addr::new(169, 254, 169, 254) { "link-local (cloud metadata)" } else { "link-local" })
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT (100.64.0.0/10)")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking (198.18.0.0/15)")
    } else if a >= 240 {
        Some("reserved (240.0.0.0/4)")
    } else {
        None
    }
}

/// What the guard says of a refused address: not which address, nor its kind.
const NOT_ALLOWED: &str =
    "must not point at an internal, private or reserved address; set WEBHOOK_ALLOW_PRIVATE=true for local use";

/// Checks a URL's form (scheme, host) without resolving it.
pub fn parse(raw: &str, policy: Policy) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err("must use https (http is allowed only with WEBHOOK_ALLOW_HTTP=true, for local use)".into());
        }
        _ => return Err("must be an https URL".into()),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must have a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (user:password@)".into());
    }
    Ok(url)
}

/// Checks a URL fully: its form, then every address its host resolves to.
pub async fn check(raw: &str, policy: Policy) -> Result<Url, String> {
    let url = parse(raw, policy)?;
    if policy.allow_private {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| format!("host `{host}` does not resolve"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("host `{host}` does not resolve"));
    }
    if addrs.iter().any(|a| forbidden(a.ip()).is_some()) {
        return Err(NOT_ALLOWED.into());
    }
    Ok(url)
}

/// A DNS resolver for the delivery client that refuses names resolving to a forbidden address.
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.iter().any(|a| forbidden(a.ip()).is_some()) {
                return Err(format!("`{host}` resolves to an address webhooks may not call").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(ip: &str) -> bool {
        forbidden(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "100::1",
            "192.0.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "250.1.2.3",
        ] {
            assert!(bad(ip), "{ip} should be forbidden");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "100.63.255.255",
            "192.0.1.1",
            "198.17.0.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(!bad(ip), "{ip} should be allowed");
        }
        assert_eq!(forbidden("169.254.169.254".parse().unwrap()), Some("link-local (cloud metadata)"));
    }

    #[test]
    fn scheme_and_form() {
        let strict = Policy::default();
        assert!(parse("https://hook.eu1.make.com/abc", strict).is_ok());
        assert!(parse("http://hook.eu1.make.com/abc", strict).unwrap_err().contains("https"));
        assert!(parse("http://hook.eu1.make.com/abc", Policy { allow_http: true, ..strict }).is_ok());
        assert!(parse("ftp://example.com", strict).is_err());
        assert!(parse("not a url", strict).is_err());
        assert!(parse("https://user:pw@example.com/", strict).unwrap_err().contains("credentials"));
    }

    #[tokio::test]
    async fn literal_addresses_are_checked_without_dns() {
        let local = Policy { allow_http: true, allow_private: false };
        for (url, ip) in [
            ("http://127.0.0.1/x", "127.0.0.1"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("http://10.0.0.1", "10.0.0.1"),
            ("https://[::1]:8443/", "::1"),
            ("http://[::ffff:7f00:1]/", "7f00"),
            ("http://[64:ff9b::a9fe:a9fe]/", "a9fe"),
        ] {
            let err = check(url, local).await.unwrap_err();
            assert!(err.contains("must not point at"), "{url}: {err}");
            // The refusal names neither the address nor its kind.
            assert!(!err.contains(ip) && !err.contains("loopback") && !err.contains("link-local"), "{url}: {err}");
        }
        assert!(check("http://127.0.0.1/x", Policy { allow_http: true, allow_private: true }).await.is_ok());
    }
}
