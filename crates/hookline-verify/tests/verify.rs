//! Verification: every error variant, rotation, multiple entries, tampering.

use hookline_verify::{
    HERALD_HEADER, HERON_HEADER, STANDARD_ID_HEADER, STANDARD_SIGNATURE_HEADER, STANDARD_TIMESTAMP_HEADER, Scheme,
    Signer, Verified, Verifier, VerifyError,
};

const NOW: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"event":"ping"}"#;
const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STD_OTHER: &str = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24=";

fn secrets(scheme: Scheme) -> (&'static str, &'static str) {
    match scheme {
        Scheme::Standard => (STD_SECRET, STD_OTHER),
        _ => ("first-secret", "second-secret"),
    }
}

/// The headers `secret` produces for `BODY` at `ts`.
fn signed(scheme: Scheme, secret: &str, ts: i64) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    Signer::new(scheme, secret).unwrap().sign("msg_1", ts, BODY, &mut headers);
    headers
}

fn verify(verifier: &Verifier, headers: &[(&str, &str)], body: &[u8]) -> Result<Verified, VerifyError> {
    verifier.verify(headers.iter().copied(), body, NOW)
}

fn as_refs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

fn standard(signature: &str) -> [(&'static str, String); 3] {
    [
        (STANDARD_ID_HEADER, "msg_1".to_owned()),
        (STANDARD_TIMESTAMP_HEADER, NOW.to_string()),
        (STANDARD_SIGNATURE_HEADER, signature.to_owned()),
    ]
}

#[test]
fn round_trip_every_scheme() {
    for scheme in Scheme::ALL {
        let (secret, _) = secrets(scheme);
        let headers = signed(scheme, secret, NOW);
        let verified = verify(&Verifier::new(scheme, secret).unwrap(), &as_refs(&headers), BODY).unwrap();
        assert_eq!((verified.scheme, verified.secret_index), (scheme, 0));
        assert_eq!(verified.signature, headers.last().unwrap().1);
    }
}

#[test]
fn header_names_are_case_insensitive() {
    for scheme in Scheme::ALL {
        let (secret, _) = secrets(scheme);
        let headers = signed(scheme, secret, NOW);
        let upper: Vec<(String, &str)> = headers.iter().map(|(n, v)| (n.to_uppercase(), v.as_str())).collect();
        let verifier = Verifier::new(scheme, secret).unwrap();
        assert!(verifier.verify(upper.iter().map(|(n, v)| (n.as_str(), *v)), BODY, NOW).is_ok());
    }
}

#[test]
fn rotation_second_secret_matches() {
    for scheme in Scheme::ALL {
        let (first, second) = secrets(scheme);
        let verifier = Verifier::new(scheme, first).unwrap().with_secret(second).unwrap();
        let verified = verify(&verifier, &as_refs(&signed(scheme, second, NOW)), BODY).unwrap();
        assert_eq!(verified.secret_index, 1, "{scheme}");
    }
}

#[test]
fn tampered_body_fails() {
    for scheme in Scheme::ALL {
        let (secret, _) = secrets(scheme);
        let verifier = Verifier::new(scheme, secret).unwrap();
        let err = verify(&verifier, &as_refs(&signed(scheme, secret, NOW)), br#"{"event":"pong"}"#);
        assert_eq!(err, Err(VerifyError::NoMatch { scheme }));
    }
}

#[test]
fn wrong_secret_fails() {
    for scheme in Scheme::ALL {
        let (first, second) = secrets(scheme);
        let verifier = Verifier::new(scheme, first).unwrap();
        let err = verify(&verifier, &as_refs(&signed(scheme, second, NOW)), BODY);
        assert_eq!(err, Err(VerifyError::NoMatch { scheme }));
    }
}

#[test]
fn standard_multiple_entries_any_match_wins() {
    let good = signed(Scheme::Standard, STD_SECRET, NOW)[2].1.clone();
    let other = signed(Scheme::Standard, STD_OTHER, NOW)[2].1.clone();
    let value = format!("v1a,ignored v2,AAAA {other}  {good}");
    let verifier = Verifier::new(Scheme::Standard, STD_SECRET).unwrap();
    let verified = verify(&verifier, &as_refs(&standard(&value)), BODY).unwrap();
    assert_eq!(verified.signature, good);
    assert_eq!(verified.secret_index, 0);
}

#[test]
fn missing_header() {
    for (scheme, name) in [(Scheme::Heron, HERON_HEADER), (Scheme::Herald, HERALD_HEADER)] {
        let verifier = Verifier::new(scheme, "first-secret").unwrap();
        assert_eq!(
            verify(&verifier, &[("content-type", "application/json")], BODY),
            Err(VerifyError::MissingHeader { name })
        );
    }
    let verifier = Verifier::new(Scheme::Standard, STD_SECRET).unwrap();
    let full = signed(Scheme::Standard, STD_SECRET, NOW);
    for name in [STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER] {
        let without: Vec<_> = as_refs(&full).into_iter().filter(|(n, _)| *n != name).collect();
        assert_eq!(verify(&verifier, &without, BODY), Err(VerifyError::MissingHeader { name }));
    }
}

#[test]
fn bad_encoding() {
    let verifier = Verifier::new(Scheme::Heron, "first-secret").unwrap();
    for value in ["not base64!", "AAAA"] {
        let err = verify(&verifier, &[(HERON_HEADER, value)], BODY);
        assert_eq!(err, Err(VerifyError::BadEncoding { header: HERON_HEADER, value: value.into() }));
    }
    let verifier = Verifier::new(Scheme::Herald, "first-secret").unwrap();
    let err = verify(&verifier, &[(HERALD_HEADER, "%%%")], BODY);
    assert_eq!(err, Err(VerifyError::BadEncoding { header: HERALD_HEADER, value: "%%%".into() }));

    let verifier = Verifier::new(Scheme::Standard, STD_SECRET).unwrap();
    let err = verify(&verifier, &as_refs(&standard("v1,***")), BODY);
    assert_eq!(err, Err(VerifyError::BadEncoding { header: STANDARD_SIGNATURE_HEADER, value: "***".into() }));
}

#[test]
fn bad_timestamp() {
    let verifier = Verifier::new(Scheme::Standard, STD_SECRET).unwrap();
    let mut headers = signed(Scheme::Standard, STD_SECRET, NOW);
    headers[1].1 = "yesterday".into();
    let err = verify(&verifier, &as_refs(&headers), BODY);
    assert_eq!(err, Err(VerifyError::BadTimestamp { value: "yesterday".into() }));
}

#[test]
fn timestamp_tolerance_bounds() {
    let verifier = Verifier::new(Scheme::Standard, STD_SECRET).unwrap();
    let at = |ts: i64| verify(&verifier, &as_refs(&signed(Scheme::Standard, STD_SECRET, ts)), BODY);
    assert!(at(NOW - 300).is_ok());
    assert!(at(NOW + 300).is_ok());
    assert_eq!(at(NOW - 301), Err(VerifyError::TimestampTooOld { timestamp: NOW - 301, now: NOW, tolerance: 300 }));
    assert_eq!(at(NOW + 301), Err(VerifyError::TimestampTooNew { timestamp: NOW + 301, now: NOW, tolerance: 300 }));
    assert_eq!(at(i64::MIN), Err(VerifyError::TimestampTooOld { timestamp: i64::MIN, now: NOW, tolerance: 300 }));

    let strict = verifier.tolerance(0);
    let headers = signed(Scheme::Standard, STD_SECRET, NOW - 1);
    let err = verify(&strict, &as_refs(&headers), BODY);
    assert_eq!(err, Err(VerifyError::TimestampTooOld { timestamp: NOW - 1, now: NOW, tolerance: 0 }));
}

#[test]
fn timestamp_checked_before_signatures() {
    let verifier = Verifier::new(Scheme::Standard, STD_SECRET).unwrap();
    let mut headers = standard("v1,***");
    headers[1].1 = (NOW - 3600).to_string();
    let err = verify(&verifier, &as_refs(&headers), BODY);
    assert_eq!(err, Err(VerifyError::TimestampTooOld { timestamp: NOW - 3600, now: NOW, tolerance: 300 }));
}

#[test]
fn no_supported_signature() {
    let verifier = Verifier::new(Scheme::Standard, STD_SECRET).unwrap();
    let err = verify(&verifier, &as_refs(&standard("v2,AAAA v1a,BBBB")), BODY);
    assert_eq!(err, Err(VerifyError::NoSupportedSignature { value: "v2,AAAA v1a,BBBB".into() }));
}

#[test]
fn error_messages() {
    let cases = [
        (
            VerifyError::MissingHeader { name: HERON_HEADER },
            r#"missing header "heron-signature"; check that the sender signs with this scheme"#,
        ),
        (
            VerifyError::BadEncoding { header: HERALD_HEADER, value: "AAAA".into() },
            r#"invalid x-herald-signature signature "AAAA"; expected base64 of a 32-byte sha-256 digest"#,
        ),
        (VerifyError::BadTimestamp { value: "x".into() }, r#"invalid webhook-timestamp "x"; expected unix seconds"#),
        (
            VerifyError::TimestampTooOld { timestamp: 1, now: 400, tolerance: 300 },
            "webhook-timestamp 1 is too old at 400; expected within 300s, check for replays or clock skew",
        ),
        (
            VerifyError::TimestampTooNew { timestamp: 800, now: 400, tolerance: 300 },
            "webhook-timestamp 800 is in the future at 400; expected within 300s, check the sender's clock",
        ),
        (
            VerifyError::NoSupportedSignature { value: "v2,x".into() },
            r#"no v1 entry in webhook-signature "v2,x"; expected space-separated v1,<base64> entries"#,
        ),
        (
            VerifyError::NoMatch { scheme: Scheme::Standard },
            "no standard signature matched; check the secret and that the body is the raw request bytes",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn with_secret_rejects_bad_secret() {
    let err = Verifier::new(Scheme::Standard, STD_SECRET).unwrap().with_secret("nope!").unwrap_err();
    assert_eq!(err.to_string(), r#"invalid standard webhooks secret "nope!"; expected whsec_ followed by base64"#);
}

#[test]
fn debug_hides_secrets() {
    let verifier = Verifier::new(Scheme::Herald, "hunter2").unwrap().with_secret("hunter3").unwrap();
    assert_eq!(format!("{verifier:?}"), "Verifier { scheme: Herald, secrets: 2, tolerance: 300 }");
}
