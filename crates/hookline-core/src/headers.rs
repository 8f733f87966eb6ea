//! An endpoint's own request headers (an `Authorization` its receiver wants, a routing tag): which names an
//! endpoint may set, how many and how large, and how their values are shown once stored (masked: the first and
//! last characters only), so that a key put in a header is never read back whole.

/// At most this many headers per endpoint.
pub const MAX_HEADERS: usize = 20;
/// At most this many bytes in one value.
pub const MAX_VALUE_BYTES: usize = 1024;
/// At most this many bytes of names and values in all.
pub const MAX_TOTAL_BYTES: usize = 8 * 1024;

/// Names the delivery sets itself: the framing, the body's type, and the signatures.
const OWNED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "user-agent",
    "heron-signature",
    "x-herald-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Why a header cannot be an endpoint's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header {name:?} is set by every delivery itself (framing, content type or signatures); remove it")]
    Owned { name: String },
    #[error("header {name:?} is not a valid header name; use letters, digits and - only")]
    InvalidName { name: String },
    #[error("the value of header {name:?} is not a valid header value; use printable ASCII without line breaks")]
    InvalidValue { name: String },
    #[error("the value of header {name:?} is {bytes} bytes; keep each value within {MAX_VALUE_BYTES}")]
    ValueTooLong { name: String, bytes: usize },
    #[error("{count} headers; an endpoint may carry at most {MAX_HEADERS}")]
    TooMany { count: usize },
    #[error("the headers come to {bytes} bytes; keep them within {MAX_TOTAL_BYTES} in all")]
    TooLarge { bytes: usize },
}

/// Checks an endpoint's headers and returns them with lowercase names, in the order given. Names are compared
/// without regard to case, so two spellings of one name are one header: the last one given wins.
pub fn check_headers(headers: &[(String, String)]) -> Result<Vec<(String, String)>, HeaderError> {
    if headers.len() > MAX_HEADERS {
        return Err(HeaderError::TooMany { count: headers.len() });
    }
    let mut checked: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let valid_name = !lower.is_empty()
            && lower.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
        if !valid_name {
            return Err(HeaderError::InvalidName { name: name.clone() });
        }
        if OWNED.contains(&lower.as_str()) || lower.starts_with("hookline-") {
            return Err(HeaderError::Owned { name: name.clone() });
        }
        if !value.bytes().all(|byte| byte == b'\t' || (0x20..0x7f).contains(&byte)) {
            return Err(HeaderError::InvalidValue { name: name.clone() });
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(HeaderError::ValueTooLong { name: name.clone(), bytes: value.len() });
        }
        checked.retain(|(kept, _)| *kept != lower);
        checked.push((lower, value.trim().to_owned()));
    }
    let bytes: usize = checked.iter().map(|(name, value)| name.len() + value.len()).sum();
    if bytes > MAX_TOTAL_BYTES {
        return Err(HeaderError::TooLarge { bytes });
    }
    Ok(checked)
}

/// A stored value as answers, logs and the delivery log show it: its first and last characters.
pub fn mask(value: &str) -> String {
    let mut characters = value.chars();
    match (characters.next(), characters.next_back()) {
        (Some(first), Some(last)) if value.chars().count() >= 6 => format!("{first}…{last}"),
        _ => "…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    fn check(pairs: &[(&str, &str)], expected: Result<&[(&str, &str)], &str>) {
        let got = check_headers(&headers(pairs)).map_err(|error| error.to_string());
        assert_eq!(got, expected.map(headers).map_err(str::to_owned), "{pairs:?}");
    }

    #[test]
    fn an_endpoints_headers_are_checked() {
        check(
            &[("Authorization", "Bearer abc123"), ("X-Team", "risk")],
            Ok(&[("authorization", "Bearer abc123"), ("x-team", "risk")]),
        );
        check(&[("X-Team", "a"), ("x-team", "b")], Ok(&[("x-team", "b")]));
        check(&[], Ok(&[]));
        for owned in [
            "Host",
            "content-length",
            "Content-Type",
            "Transfer-Encoding",
            "Heron-Signature",
            "webhook-signature",
            "Hookline-Topic",
            "User-Agent",
        ] {
            let expected = format!(
                "header {owned:?} is set by every delivery itself (framing, content type or signatures); remove it"
            );
            check(&[(owned, "x")], Err(&expected));
        }
        check(&[("X Team", "a")], Err(r#"header "X Team" is not a valid header name; use letters, digits and - only"#));
        check(&[("", "a")], Err(r#"header "" is not a valid header name; use letters, digits and - only"#));
        check(
            &[("X-Team", "a\r\nInjected: yes")],
            Err(r#"the value of header "X-Team" is not a valid header value; use printable ASCII without line breaks"#),
        );
        check(
            &[("X-Team", "é")],
            Err(r#"the value of header "X-Team" is not a valid header value; use printable ASCII without line breaks"#),
        );
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        check(&[("X-Long", &long)], Err(r#"the value of header "X-Long" is 1025 bytes; keep each value within 1024"#));
        let many: Vec<(String, String)> = (0..21).map(|index| (format!("x-{index}"), "v".to_owned())).collect();
        assert_eq!(check_headers(&many).unwrap_err(), HeaderError::TooMany { count: 21 });
        let large: Vec<(String, String)> = (0..9).map(|index| (format!("x-{index}"), "v".repeat(1000))).collect();
        assert!(matches!(check_headers(&large).unwrap_err(), HeaderError::TooLarge { .. }));
    }

    #[test]
    fn values_are_masked_to_their_first_and_last_characters() {
        assert_eq!(mask("Bearer abc123"), "B…3");
        assert_eq!(mask("risk"), "…");
        assert_eq!(mask(""), "…");
    }
}
