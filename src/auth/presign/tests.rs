//! Presigned SigV4 URLs made by aws-sigv4 (what aws-sdk-rust's presigner
//! uses): verified within their window, refused outside it and when any
//! signed part or parameter changes.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, sign};
use aws_sigv4::sign::v4;
use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::*;
use crate::auth::SigningKeyCache;
use crate::auth::canonical::parse_query;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Presigns with aws-sigv4 (what aws-sdk-rust's presigner uses); returns the
/// full URL.
fn presign(
    method: &str,
    uri: &str,
    at: SystemTime,
    expires: Duration,
    token: Option<&str>,
) -> String {
    let identity = Credentials::new(AKID, SECRET, token.map(str::to_string), None, "t").into();
    let mut settings = crate::upstream::s3_signing_settings();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        method,
        uri,
        [("host", "127.0.0.1:9000")].into_iter(),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req.uri().to_string()
}

fn check(method: &str, url: &str, now: DateTime<Utc>) -> Result<String, AuthError> {
    check_with(method, url, now, &SigningKeyCache::default())
}

fn check_with(
    method: &str,
    url: &str,
    now: DateTime<Utc>,
    cache: &SigningKeyCache,
) -> Result<String, AuthError> {
    let uri: http::Uri = url.parse().unwrap();
    let mut h = HeaderMap::new();
    h.insert("host", "127.0.0.1:9000".parse().unwrap());
    let query = parse_query(uri.query().unwrap_or("")).unwrap();
    let parts = RequestParts {
        method,
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &h,
        authority: None,
    };
    let p = PresignedV4::parse(&query)?;
    let expect = Expectations {
        region: "us-east-1",
        service: "s3",
        now,
        max_skew_secs: 900,
    };
    verify_presigned(&parts, &query, &p, SECRET, &expect, cache)
        .map(|v| v.access_key_id.to_string())
}

#[test]
fn only_a_matched_signature_leaves_its_signing_key_cached() {
    let url = presign(
        "GET",
        "http://127.0.0.1:9000/bucket/key",
        at(),
        Duration::from_secs(600),
        None,
    );
    let cache = SigningKeyCache::default();
    let mut forged = url.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert!(matches!(
        check_with("GET", &forged, at().into(), &cache),
        Err(AuthError::SignatureMismatch { .. })
    ));
    assert!(cache.is_empty(), "a forged signature cached a signing key");
    assert_eq!(check_with("GET", &url, at().into(), &cache).unwrap(), AKID);
    assert_eq!(cache.len(), 1);
    assert_eq!(check_with("GET", &url, at().into(), &cache).unwrap(), AKID);
    assert_eq!(cache.len(), 1);
}

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

#[test]
fn sdk_presigned_urls_verify_within_their_window() {
    let url = presign(
        "GET",
        "http://127.0.0.1:9000/bucket/a%20b/%E2%9C%93+x?versionId=v%201",
        at(),
        Duration::from_secs(600),
        None,
    );
    let signed: DateTime<Utc> = at().into();
    let v = check("GET", &url, signed + Duration::from_secs(599)).unwrap();
    assert_eq!(v, AKID);
    assert!(matches!(
        check("GET", &url, signed + Duration::from_secs(601)),
        Err(AuthError::Expired { .. })
    ));
    // Clocks differ: a URL signed a little in the future still works...
    assert!(check("GET", &url, signed - Duration::from_secs(300)).is_ok());
    // ...but not one signed beyond the skew allowance.
    assert!(matches!(
        check("GET", &url, signed - Duration::from_secs(901)),
        Err(AuthError::NotYetValid { .. })
    ));
    // Method and path are covered.
    assert!(matches!(
        check("PUT", &url, signed),
        Err(AuthError::SignatureMismatch { .. })
    ));
    let other = url.replace("/bucket/a%20b", "/bucket/a%20c");
    assert!(matches!(
        check("GET", &other, signed),
        Err(AuthError::SignatureMismatch { .. })
    ));
}

#[test]
fn token_is_signed_and_reported() {
    let url = presign(
        "PUT",
        "http://127.0.0.1:9000/bucket/k?partNumber=1&uploadId=u",
        at(),
        Duration::from_secs(60),
        Some("tok/en+="),
    );
    let q = parse_query(url.split_once('?').unwrap().1).unwrap();
    let p = PresignedV4::parse(&q).unwrap();
    assert_eq!(p.security_token.as_deref(), Some("tok/en+="));
    assert!(check("PUT", &url, at().into()).is_ok());
    let swapped = url.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x");
    assert!(check("PUT", &swapped, at().into()).is_err());
}

#[test]
fn parameter_problems_are_query_parameter_errors() {
    let url = presign(
        "GET",
        "http://127.0.0.1:9000/b/k",
        at(),
        Duration::from_secs(60),
        None,
    );
    let now: DateTime<Utc> = at().into();
    let q = |u: &str| check("GET", u, now);
    let cases = [
        url.replace("X-Amz-Expires=60", "X-Amz-Expires=604801"),
        url.replace("X-Amz-Expires=60", "X-Amz-Expires=0"),
        url.replace("X-Amz-Expires=60", "X-Amz-Expires=-5"),
        url.replace("X-Amz-Expires=60", "X-Amz-Expires=soon"),
        url.replace(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA512",
        ),
        url.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", ""),
        url.replace("X-Amz-Date=", "X-Amz-Date=x"),
        url.replace("%2Fus-east-1%2F", "%2Feu-west-1%2F"),
        format!("{url}&X-Amz-Expires=60"),
    ];
    for c in &cases {
        assert!(
            matches!(q(c), Err(AuthError::QueryParameters(_))),
            "{c}: {:?}",
            q(c)
        );
    }
    // The longest allowed lifetime is accepted.
    let week = presign(
        "GET",
        "http://127.0.0.1:9000/b/k",
        at(),
        Duration::from_secs(MAX_EXPIRES_SECS),
        None,
    );
    assert!(q(&week).is_ok());
}

#[test]
fn unsigned_amz_headers_are_refused() {
    let url = presign(
        "GET",
        "http://127.0.0.1:9000/b/k",
        at(),
        Duration::from_secs(60),
        None,
    );
    let uri: http::Uri = url.parse().unwrap();
    let mut h = HeaderMap::new();
    h.insert("host", "127.0.0.1:9000".parse().unwrap());
    h.insert("x-amz-acl", "public-read".parse().unwrap());
    let query = parse_query(uri.query().unwrap()).unwrap();
    let parts = RequestParts {
        method: "GET",
        path: uri.path(),
        query: uri.query().unwrap(),
        headers: &h,
        authority: None,
    };
    let p = PresignedV4::parse(&query).unwrap();
    let expect = Expectations {
        region: "us-east-1",
        service: "s3",
        now: at().into(),
        max_skew_secs: 900,
    };
    assert_eq!(
        verify_presigned(
            &parts,
            &query,
            &p,
            SECRET,
            &expect,
            &SigningKeyCache::default()
        )
        .unwrap_err(),
        AuthError::UnsignedHeaders(vec!["x-amz-acl".into()])
    );
}
