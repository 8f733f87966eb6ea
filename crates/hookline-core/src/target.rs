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
        } else if ends_in_a_number(host_text) {
            // Resolvers read `0x7f000001`, `0177.0.0.1`, `127.1` and `2130706433` as addresses: say so rather
            // than let one pass as a name.
            return fail(
                "the host looks like an IPv4 address but is not four decimal numbers (a.b.c.d); \
                 hexadecimal, octal and shortened forms are refused",
            );
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
}

/// Whether a host's last label is a number (decimal, or hexadecimal with `0x`), which makes resolvers and URL
/// parsers read the whole host as an IPv4 address in one of its legacy forms.
fn ends_in_a_number(host: &str) -> bool {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let last = trimmed.rsplit('.').next().unwrap_or(trimmed);
    let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
    match hex {
        Some(digits) => digits.bytes().all(|byte| byte.is_ascii_hexdigit()),
        None => !last.is_empty() && last.bytes().all(|byte| byte.is_ascii_digit()),
    }
}

/// Why the SSRF guard refuses an address, or `None` when it is a public address.
///
/// Refused: every range of IANA's IPv4 and IPv6 special-purpose address registries that is not globally
/// reachable, multicast, the cloud metadata addresses, and every IPv6 form that carries an IPv4 address the
/// guard refuses (mapped, compatible, translated, 6to4, NAT64). The addresses of the host's own interfaces are
/// refused too, but finding them is I/O: the dispatcher's guard does that.
pub fn forbidden_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// The IPv4 ranges the guard refuses, with what each is. Cloud metadata addresses come first so that they are
/// named as such.
const FORBIDDEN_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(169, 254, 169, 254), 32, "cloud metadata"),
    (Ipv4Addr::new(100, 100, 100, 200), 32, "cloud metadata"),
    (Ipv4Addr::new(0, 0, 0, 0), 8, "unspecified (\"this network\")"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignment"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "deprecated 6to4 relay"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// The IPv6 ranges the guard refuses outright. The forms that embed an IPv4 address are judged by that address
/// (`embedded_v4`), after these.
const FORBIDDEN_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), 128, "cloud metadata"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback"),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use IPv4/IPv6 translation"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, "dummy prefix"),
    // Teredo (2001::/32) is inside: it tunnels to an IPv4 address that cannot be checked here.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF protocol assignment"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation"),
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, "segment routing (SRv6)"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "private (unique local)"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "deprecated site-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

fn forbidden_v4(address: Ipv4Addr) -> Option<&'static str> {
    let bits = u128::from(address.to_bits());
    FORBIDDEN_V4
        .iter()
        .find(|(network, length, _)| same_prefix(bits, u128::from(network.to_bits()), 32 - u32::from(*length)))
        .map(|entry| entry.2)
}

fn forbidden_v6(address: Ipv6Addr) -> Option<&'static str> {
    let bits = address.to_bits();
    if let Some((_, _, reason)) =
        FORBIDDEN_V6.iter().find(|(network, length, _)| same_prefix(bits, network.to_bits(), 128 - u32::from(*length)))
    {
        return Some(reason);
    }
    let (form, embedded) = embedded_v4(address)?;
    match forbidden_v4(embedded) {
        Some(reason) => Some(reason),
        // Compatible addresses are deprecated: none is a real destination, whatever it carries.
        None if form == EmbeddedForm::Compatible => Some("deprecated IPv4-compatible"),
        None => None,
    }
}

/// Whether two addresses agree in every bit above the lowest `host_bits`.
fn same_prefix(address: u128, network: u128, host_bits: u32) -> bool {
    address.checked_shr(host_bits) == network.checked_shr(host_bits)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EmbeddedForm {
    /// `::ffff:a.b.c.d`
    Mapped,
    /// `::a.b.c.d` (deprecated)
    Compatible,
    /// `::ffff:0:a.b.c.d` (SIIT)
    Translated,
    /// `64:ff9b::a.b.c.d`
    Nat64,
    /// `2002:aabb:ccdd::/48`
    SixToFour,
}

/// The IPv4 address an IPv6 address carries, and in which form, if it has one.
fn embedded_v4(address: Ipv6Addr) -> Option<(EmbeddedForm, Ipv4Addr)> {
    let segments = address.segments();
    let low = Ipv4Addr::from(address.to_bits() as u32);
    match segments {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((EmbeddedForm::Mapped, low)),
        [0, 0, 0, 0, 0, 0, _, _] => Some((EmbeddedForm::Compatible, low)),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some((EmbeddedForm::Translated, low)),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((EmbeddedForm::Nat64, low)),
        [0x2002, high, low_half, ..] => {
            Some((EmbeddedForm::SixToFour, Ipv4Addr::from((u32::from(high) << 16) | u32::from(low_half))))
        }
        _ => None,
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
        check("https://example.com./x", Ok(("example.com.", 443)));
        check("http://[::127.0.0.1]/a", Ok(("::7f00:1", 80)));
        check("http://[::ffff:0:127.0.0.1]/a", Ok(("::ffff:0:7f00:1", 80)));
        check("http://1password.com/", Ok(("1password.com", 80)));
        check("http://0xdeadbeef.example/", Ok(("0xdeadbeef.example", 80)));
        for numeric in [
            "300.1.1.1",
            "2130706433",
            "0x7f000001",
            "0X7F000001",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "127.0.0.01",
            "127.1",
            "127.0.1",
            "127.0.0.1.",
            "1.2.3.4.5",
            "example.0x10",
            "example.123",
        ] {
            check(
                &format!("http://{numeric}/a"),
                Err("the host looks like an IPv4 address but is not four decimal numbers (a.b.c.d); \
                     hexadecimal, octal and shortened forms are refused"),
            );
        }
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
    fn the_ssrf_guard_refuses_every_range_that_is_not_globally_reachable() {
        // IPv4: each range at its edges, and the first public address beside it.
        guard("0.0.0.0", Some("unspecified (\"this network\")"));
        guard("0.255.255.255", Some("unspecified (\"this network\")"));
        guard("1.0.0.0", None);
        guard("9.255.255.255", None);
        guard("10.0.0.0", Some("private"));
        guard("10.255.255.255", Some("private"));
        guard("11.0.0.0", None);
        guard("100.63.255.255", None);
        guard("100.64.0.0", Some("carrier-grade NAT"));
        guard("100.127.255.255", Some("carrier-grade NAT"));
        guard("100.128.0.0", None);
        guard("100.100.100.200", Some("cloud metadata"));
        guard("126.255.255.255", None);
        guard("127.0.0.0", Some("loopback"));
        guard("127.0.0.1", Some("loopback"));
        guard("127.255.255.255", Some("loopback"));
        guard("128.0.0.0", None);
        guard("169.253.255.255", None);
        guard("169.254.0.0", Some("link-local"));
        guard("169.254.169.254", Some("cloud metadata"));
        guard("169.254.255.255", Some("link-local"));
        guard("169.255.0.0", None);
        guard("172.15.255.255", None);
        guard("172.16.0.0", Some("private"));
        guard("172.31.255.255", Some("private"));
        guard("172.32.0.0", None);
        guard("191.255.255.255", None);
        guard("192.0.0.0", Some("IETF protocol assignment"));
        guard("192.0.0.255", Some("IETF protocol assignment"));
        guard("192.0.1.255", None);
        guard("192.0.2.0", Some("documentation"));
        guard("192.0.2.2", Some("documentation"));
        guard("192.0.2.255", Some("documentation"));
        guard("192.0.3.0", None);
        guard("192.88.98.255", None);
        guard("192.88.99.1", Some("deprecated 6to4 relay"));
        guard("192.88.100.0", None);
        guard("192.167.255.255", None);
        guard("192.168.0.0", Some("private"));
        guard("192.168.255.255", Some("private"));
        guard("192.169.0.0", None);
        guard("198.17.255.255", None);
        guard("198.18.0.0", Some("benchmarking"));
        guard("198.19.255.255", Some("benchmarking"));
        guard("198.20.0.0", None);
        guard("198.51.99.255", None);
        guard("198.51.100.0", Some("documentation"));
        guard("198.51.100.255", Some("documentation"));
        guard("198.51.101.0", None);
        guard("203.0.112.255", None);
        guard("203.0.113.0", Some("documentation"));
        guard("203.0.113.255", Some("documentation"));
        guard("203.0.114.0", None);
        guard("223.255.255.255", None);
        guard("224.0.0.0", Some("multicast"));
        guard("239.255.255.255", Some("multicast"));
        guard("240.0.0.0", Some("reserved"));
        guard("255.255.255.254", Some("reserved"));
        guard("255.255.255.255", Some("broadcast"));
        guard("93.184.216.34", None);

        // IPv6 ranges.
        guard("::", Some("unspecified"));
        guard("::1", Some("loopback"));
        guard("fd00:ec2::254", Some("cloud metadata"));
        guard("64:ff9b:1::1", Some("local-use IPv4/IPv6 translation"));
        guard("64:ff9b:1:ffff::1", Some("local-use IPv4/IPv6 translation"));
        guard("100::", Some("discard-only"));
        guard("100::ffff:ffff:ffff:ffff", Some("discard-only"));
        guard("100:0:0:1::1", Some("dummy prefix"));
        guard("2001::1", Some("IETF protocol assignment"));
        guard("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("IETF protocol assignment"));
        guard("2001:1ff:ffff::1", Some("IETF protocol assignment"));
        guard("2001:200::1", None);
        guard("2001:db7:ffff::1", None);
        guard("2001:db8::", Some("documentation"));
        guard("2001:db8:ffff:ffff::1", Some("documentation"));
        guard("2001:db9::1", None);
        guard("3fff::1", Some("documentation"));
        guard("3fff:fff::1", Some("documentation"));
        guard("3fff:1000::1", None);
        guard("5f00::1", Some("segment routing (SRv6)"));
        guard("fbff:ffff::1", None);
        guard("fc00::1", Some("private (unique local)"));
        guard("fd00::2", Some("private (unique local)"));
        guard("fdff:ffff::1", Some("private (unique local)"));
        guard("fe00::1", None);
        guard("fe80::1", Some("link-local"));
        guard("febf:ffff::1", Some("link-local"));
        guard("fec0::1", Some("deprecated site-local"));
        guard("ff02::1", Some("multicast"));
        guard("2606:4700::1111", None);

        // IPv6 forms that carry an IPv4 address are judged by it.
        guard("::ffff:127.0.0.1", Some("loopback"));
        guard("::ffff:10.0.0.1", Some("private"));
        guard("::ffff:192.0.2.2", Some("documentation"));
        guard("::ffff:93.184.216.34", None);
        guard("::127.0.0.1", Some("loopback"));
        guard("::169.254.169.254", Some("cloud metadata"));
        guard("::93.184.216.34", Some("deprecated IPv4-compatible"));
        guard("::ffff:0:127.0.0.1", Some("loopback"));
        guard("::ffff:0:10.1.2.3", Some("private"));
        guard("::ffff:0:93.184.216.34", None);
        guard("2002:7f00:1::1", Some("loopback"));
        guard("2002:a9fe:a9fe::", Some("cloud metadata"));
        guard("2002:c000:0202::1", Some("documentation"));
        guard("2002:5db8:d822::1", None);
        guard("64:ff9b::127.0.0.1", Some("loopback"));
        guard("64:ff9b::a00:1", Some("private"));
        guard("64:ff9b::5db8:d822", None);
    }
}
