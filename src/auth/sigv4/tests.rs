//! Header authentication against AWS's documented example and against
//! requests signed by aws-sigv4, and every way S3 refuses one.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
use aws_sigv4::sign::v4;
use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::*;
use crate::auth::canonical::parse_query;
use crate::auth::time::parse_amz_date;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn expectations(now: DateTime<Utc>) -> Expectations<'static> {
    Expectations {
        region: "us-east-1",
        service: "s3",
        now,
        max_skew_secs: 900,
    }
}

/// AWS's documented example: GET /test.txt with a Range header.
fn aws_example() -> (HeaderMap, String) {
    let mut h = HeaderMap::new();
    h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
    h.insert("range", "bytes=0-9".parse().unwrap());
    h.insert("x-amz-content-sha256", EMPTY_SHA.parse().unwrap());
    h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request,\
SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    (h, auth)
}

fn verify(
    method: &str,
    path: &str,
    query: &str,
    h: &HeaderMap,
    auth: &str,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(String, String), AuthError> {
    let parts = RequestParts {
        method,
        path,
        query,
        headers: h,
        authority: None,
    };
    let parsed = AuthorizationV4::parse(auth)?;
    let payload = h
        .get("x-amz-content-sha256")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("");
    verify_header(
        &parts,
        &parse_query(query).unwrap(),
        &parsed,
        payload,
        secret,
        &expectations(now),
        &SigningKeyCache::default(),
    )
    .map(|v| (v.access_key_id.to_string(), v.scope.to_string()))
}

#[test]
fn aws_documented_example_verifies() {
    let (h, auth) = aws_example();
    let now = parse_amz_date("20130524T000500Z").unwrap();
    let v = verify("GET", "/test.txt", "", &h, &auth, SECRET, now).unwrap();
    assert_eq!(v.0, AKID);
    assert_eq!(v.1, "20130524/us-east-1/s3/aws4_request");
}

#[test]
fn wrong_secret_or_tampered_header_fails() {
    let (mut h, auth) = aws_example();
    let now = parse_amz_date("20130524T000000Z").unwrap();
    assert!(matches!(
        verify("GET", "/test.txt", "", &h, &auth, "wrong-secret", now),
        Err(AuthError::SignatureMismatch { .. })
    ));
    h.insert("range", "bytes=0-10".parse().unwrap());
    assert!(matches!(
        verify("GET", "/test.txt", "", &h, &auth, SECRET, now),
        Err(AuthError::SignatureMismatch { .. })
    ));
}

#[test]
fn path_and_query_are_covered() {
    let (h, auth) = aws_example();
    let now = parse_amz_date("20130524T000000Z").unwrap();
    assert!(verify("GET", "/test.txt2", "", &h, &auth, SECRET, now).is_err());
    assert!(verify("GET", "/test.txt", "acl", &h, &auth, SECRET, now).is_err());
    assert!(verify("PUT", "/test.txt", "", &h, &auth, SECRET, now).is_err());
}

#[test]
fn unsigned_amz_header_is_refused() {
    let (mut h, auth) = aws_example();
    h.insert("x-amz-acl", "public-read".parse().unwrap());
    let now = parse_amz_date("20130524T000000Z").unwrap();
    assert_eq!(
        verify("GET", "/test.txt", "", &h, &auth, SECRET, now).unwrap_err(),
        AuthError::UnsignedHeaders(vec!["x-amz-acl".into()])
    );
}

#[test]
fn scope_rules() {
    let (h, auth) = aws_example();
    let now = parse_amz_date("20130524T000000Z").unwrap();
    let other_region = auth.replace("us-east-1", "eu-west-1");
    assert!(matches!(
        verify("GET", "/test.txt", "", &h, &other_region, SECRET, now),
        Err(AuthError::WrongRegion { .. })
    ));
    let other_service = auth.replace("/s3/", "/iam/");
    assert!(matches!(
        verify("GET", "/test.txt", "", &h, &other_service, SECRET, now),
        Err(AuthError::WrongService { .. })
    ));
    let other_date = auth.replace("20130524/", "20130525/");
    assert_eq!(
        verify("GET", "/test.txt", "", &h, &other_date, SECRET, now).unwrap_err(),
        AuthError::ScopeDateMismatch
    );
    let late = parse_amz_date("20130524T001600Z").unwrap();
    assert!(matches!(
        verify("GET", "/test.txt", "", &h, &auth, SECRET, late),
        Err(AuthError::TimeTooSkewed { .. })
    ));
}

#[test]
fn header_parse_errors() {
    assert!(
        matches!(AuthorizationV4::parse("AWS AKID:sig"), Err(AuthError::UnsupportedMechanism(m)) if m == "AWS")
    );
    assert!(matches!(
        AuthorizationV4::parse("AWS4-HMAC-SHA256 Credential=a/b"),
        Err(AuthError::Malformed(_))
    ));
    let missing_sig = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request, SignedHeaders=host"
    );
    assert!(matches!(
        AuthorizationV4::parse(&missing_sig),
        Err(AuthError::Malformed(_))
    ));
    let bad_terminal = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws5, SignedHeaders=host, Signature={}",
        "0".repeat(64)
    );
    assert!(matches!(
        AuthorizationV4::parse(&bad_terminal),
        Err(AuthError::Malformed(_))
    ));
}

/// Signs with the aws-sigv4 crate (what the AWS SDKs use) and returns headers.
fn sign_with_sdk(
    method: &str,
    uri: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    at: SystemTime,
) -> HeaderMap {
    let identity = Credentials::new(AKID, SECRET, None, None, "test").into();
    let settings = crate::upstream::s3_signing_settings();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut headers: Vec<(&str, &str)> = vec![("host", "127.0.0.1:9000")];
    headers.extend_from_slice(extra);
    let signable = SignableRequest::new(
        method,
        uri,
        headers.clone().into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().method(method).uri(uri);
    for (n, v) in &headers {
        req = req.header(*n, *v);
    }
    let mut req = req.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req.headers().clone()
}

#[test]
fn requests_signed_by_aws_sigv4_verify() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let now: DateTime<Utc> = at.into();
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);
    let cases: &[Case] = &[
        (
            "GET",
            "http://127.0.0.1:9000/bucket/a%20b/c%2Bd~e",
            &[],
            b"",
        ),
        (
            "GET",
            "http://127.0.0.1:9000/bucket?list-type=2&prefix=a%2Fb&delimiter=%2F",
            &[],
            b"",
        ),
        (
            "PUT",
            "http://127.0.0.1:9000/bucket/k",
            &[("content-type", "text/plain"), ("x-amz-meta-a", "x   y")],
            b"hello",
        ),
        ("POST", "http://127.0.0.1:9000/bucket/k?uploads", &[], b""),
        (
            "GET",
            "http://127.0.0.1:9000/bucket/%E2%9C%93/../x//y",
            &[],
            b"",
        ),
    ];
    for (method, uri, extra, body) in cases {
        let h = sign_with_sdk(method, uri, extra, body, at);
        let u: http::Uri = uri.parse().unwrap();
        let auth = h
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let res = verify(
            method,
            u.path(),
            u.query().unwrap_or(""),
            &h,
            &auth,
            SECRET,
            now,
        );
        assert!(res.is_ok(), "{method} {uri}: {res:?}");
    }
}

#[test]
fn signed_header_lists() {
    assert_eq!(
        parse_signed_headers("Host;X-Amz-Date").unwrap(),
        "host;x-amz-date"
    );
    for bad in ["", ";", "a;", ";a", "a;;b", "a b", "a:b", "a,b"] {
        assert!(parse_signed_headers(bad).is_err(), "{bad:?}");
    }
    let many: Vec<String> = (0..20).map(|i| format!("x-amz-meta-{i}")).collect();
    let list = many.join(";");
    let names = SignedNames::split(&list);
    assert_eq!(names.as_slice().len(), 20);
    assert_eq!(names.as_slice()[19], "x-amz-meta-19");
    assert_eq!(SignedNames::split("host").as_slice(), ["host"]);
}

#[test]
fn signed_headers_in_any_case_verify() {
    // A signer that lists header names as it sends them (capitalised).
    let (h, auth) = aws_example();
    let upper = auth.replace(
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date",
        "SignedHeaders=Host;Range;X-Amz-Content-Sha256;X-Amz-Date",
    );
    let now = parse_amz_date("20130524T000000Z").unwrap();
    assert!(verify("GET", "/test.txt", "", &h, &upper, SECRET, now).is_ok());
}
