//! Endpoint URLs: validation with errors that name the problem, and the address classes the SSRF guard refuses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest URL an endpoint may have.
pub const MAX_URL_LEN: usize = 2048;

/// A validated `http(s)://host[:port]/path` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl {
    url: String,
    host: Host,
    https: bool,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Domain(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint url {url:?}; {problem}")]
pub struct UrlError {
    pub url: String,
    pub problem: &'static str,
}

impl EndpointUrl {
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let fail = |problem| Err(UrlError { url: input.to_owned(), problem });
        if input.is_empty() {
            return fail("the url is empty");
        }
        if input.len() > MAX_URL_LEN {
            return fail("the url is longer than 2048 characters");
        }
        if input.chars().any(|character| character.is_whitespace() || character.is_control()) {
            return fail("the url contains spaces or control characters; percent-encode them");
        }
        if !input.is_ascii() {
            return fail("the url contains non-ASCII characters; percent-encode them or use the punycode host name");
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return fail("expected http://host/path or https://host/path");
        };
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return fail("the scheme must be http or https"),
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if rest[authority_end..].contains('#') {
            return fail("the url must not contain a fragment (#)");
        }
        if authority.contains('@') {
            return fail("the url must not contain credentials (user:password@); use a secret path or the signature");
        }
        let (host_text, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
            let Some((inside, after)) = bracketed.split_once(']') else {
                return fail("the IPv6 address is missing its closing ']'");
            };
            match after {
                "" => (inside, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (inside, Some(port)),
                    None => return fail("unexpected text after the IPv6 address"),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host_text.is_empty() {
            return fail("the url has no host");
        }
        let port = match port_text {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 && text.bytes().all(|byte| byte.is_ascii_digit()) => port,
                _ => return fail("the port must be a number from 1 to 65535"),
            },
        };
        let host = if authority.starts_with('[') {
            match host_text.parse::<Ipv6Addr>() {
                Ok(address) => Host::Ip(IpAddr::V6(address)),
                Err(_) => return fail("the host is not a valid IPv6 address"),
            }
        } else if let Ok(address) = host_text.parse::<Ipv4Addr>() {
            Host::Ip(IpAddr::V4(address))
        } else if valid_domain(host_text) {
            Host::Domain(host_text.to_ascii_lowercase())
        } else {
            return fail("the host is not a valid domain name");
        };
        Ok(Self { url: input.to_owned(), host, https, port })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// True for Slack incoming-webhook URLs (`https://hooks.slack.com/services/…`).
    pub fn is_slack(&self) -> bool {
        self.https
            && self.host == Host::Domain("hooks.slack.com".to_owned())
            && self.url.split_once("hooks.slack.com").is_some_and(|(_, path)| path.starts_with("/services/"))
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.url)
    }
}

fn valid_domain(host: &str) -> bool {
    host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
        // A host of digits and dots only that did not parse as IPv4 is a malformed address, not a name.
        && !host.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.')
}

/// Why the SSRF guard refuses an address, or `None` when it is a public address.
pub fn forbidden_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xff00 == 0xff00 {
                Some("multicast")
            } else if first == 0x64 && v6.segments()[1] == 0xff9b {
                // NAT64 embeds an IPv4 address in its last 32 bits.
                let [.., high, low] = v6.segments();
                forbidden_v4(Ipv4Addr::from(((high as u32) << 16) | low as u32))
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [first, second, ..] = address.octets();
    if address.is_loopback() {
        Some("loopback")
    } else if address == Ipv4Addr::new(169, 254, 169, 254) || address == Ipv4Addr::new(100, 100, 100, 200) {
        Some("cloud metadata")
    } else if address.is_private() {
        Some("private")
    } else if address.is_link_local() {
        Some("link-local")
    } else if first == 100 && (64..128).contains(&second) {
        Some("carrier-grade NAT")
    } else if first == 0 {
        Some("unspecified")
    } else if address.is_broadcast() || address.is_multicast() || first >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, u16), &str>) {
        let parsed = EndpointUrl::parse(input);
        match (parsed, expected) {
            (Ok(url), Ok((host, port))) => {
                let shown = match url.host() {
                    Host::Domain(name) => name.clone(),
                    Host::Ip(address) => address.to_string(),
                };
                assert_eq!((shown.as_str(), url.port()), (host, port), "{input}");
            }
            (Err(error), Err(problem)) => assert_eq!(error.problem, problem, "{input}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn urls_are_validated_with_a_named_problem() {
        check("https://example.com/webhooks", Ok(("example.com", 443)));
        check("http://www.Example.com/resource", Ok(("www.example.com", 80)));
        check("https://example.com:8443", Ok(("example.com", 8443)));
        check("http://127.0.0.1:9000/hook?x=1", Ok(("127.0.0.1", 9000)));
        check("http://[::1]:9000/hook", Ok(("::1", 9000)));
        check("ftp://example.com/x", Err("the scheme must be http or https"));
        check("example.com/x", Err("expected http://host/path or https://host/path"));
        check("https:///path", Err("the url has no host"));
        check("https://exa mple.com/", Err("the url contains spaces or control characters; percent-encode them"));
        check("https://example.com:0/", Err("the port must be a number from 1 to 65535"));
        check("https://example.com:99999/", Err("the port must be a number from 1 to 65535"));
        check(
            "https://user:pw@example.com/",
            Err("the url must not contain credentials (user:password@); use a secret path or the signature"),
        );
        check("https://exa_mple..com/", Err("the host is not a valid domain name"));
        check("https://300.1.1.1/", Err("the host is not a valid domain name"));
        check("https://example.com/#frag", Err("the url must not contain a fragment (#)"));
        check("", Err("the url is empty"));
    }

    #[test]
    fn url_errors_read_well() {
        let error = EndpointUrl::parse("ftp://x").unwrap_err();
        assert_eq!(error.to_string(), "invalid endpoint url \"ftp://x\"; the scheme must be http or https");
    }

    #[test]
    fn slack_urls_are_recognised() {
        assert!(EndpointUrl::parse("https://hooks.slack.com/services/T000/B000/XXXX").unwrap().is_slack());
        assert!(!EndpointUrl::parse("https://hooks.slack.com/other").unwrap().is_slack());
        assert!(!EndpointUrl::parse("http://hooks.slack.com/services/T/B/X").unwrap().is_slack());
    }

    fn guard(address: &str, expected: Option<&str>) {
        assert_eq!(forbidden_reason(address.parse().unwrap()), expected, "{address}");
    }

    #[test]
    fn the_ssrf_guard_refuses_internal_addresses() {
        guard("127.0.0.1", Some("loopback"));
        guard("10.1.2.3", Some("private"));
        guard("172.16.0.1", Some("private"));
        guard("192.168.1.1", Some("private"));
        guard("169.254.169.254", Some("cloud metadata"));
        guard("169.254.1.1", Some("link-local"));
        guard("100.64.0.1", Some("carrier-grade NAT"));
        guard("0.0.0.0", Some("unspecified"));
        guard("::1", Some("loopback"));
        guard("::ffff:10.0.0.1", Some("private"));
        guard("fd12::1", Some("private (unique local)"));
        guard("fe80::1", Some("link-local"));
        guard("64:ff9b::a00:1", Some("private"));
        guard("93.184.216.34", None);
        guard("2606:4700::1111", None);
        guard("100.128.0.1", None);
    }
}
