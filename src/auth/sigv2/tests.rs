//! Vectors produced by botocore's `HmacV1Auth` / `HmacV1QueryAuth` (the
//! signers boto3 and the aws CLI use for SigV2).

use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::*;
use crate::auth::canonical::parse_query;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

fn put_example() -> HeaderMap {
    headers(&[
        ("host", "127.0.0.1:9000"),
        ("content-type", "text/plain"),
        ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww=="),
        ("x-amz-meta-b", "  two "),
        ("x-amz-meta-a", "one"),
        ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
    ])
}

const PUT_PATH: &str = "/bucket/a%20b%2Bc";
const PUT_QUERY: &str = "uploadId=u%2F1&partNumber=2&x-id=UploadPart";

fn verify_put(
    h: &HeaderMap,
    path: &str,
    method: &str,
    auth: &str,
) -> Result<DateTime<Utc>, AuthError> {
    let parts = RequestParts {
        method,
        path,
        query: PUT_QUERY,
        headers: h,
        authority: None,
    };
    let query = parse_query(PUT_QUERY).unwrap();
    let now = parse_http_date("Tue, 27 Mar 2007 19:40:00 GMT").unwrap();
    verify_header_v2(
        &parts,
        &query,
        &AuthorizationV2::parse(auth)?,
        SECRET,
        None,
        now,
        900,
    )
}

#[test]
fn string_to_sign_matches_botocore() {
    let h = put_example();
    let parts = RequestParts {
        method: "PUT",
        path: PUT_PATH,
        query: PUT_QUERY,
        headers: &h,
        authority: None,
    };
    let sts = string_to_sign(
        &parts,
        &parse_query(PUT_QUERY).unwrap(),
        "Tue, 27 Mar 2007 19:36:42 +0000",
        None,
        false,
    )
    .unwrap();
    assert_eq!(
        sts,
        "PUT\nXrY7u+Ae7tCTyyK7j1rNww==\ntext/plain\nTue, 27 Mar 2007 19:36:42 +0000\n\
x-amz-meta-a:one\nx-amz-meta-b:two\n/bucket/a%20b%2Bc?partNumber=2&uploadId=u/1"
    );
}

#[test]
fn header_signature_verifies_and_covers_what_it_signs() {
    let auth = format!("AWS {AKID}:ZrhyKrIo0pzijF0NaP/GlhEYydg=");
    let h = put_example();
    assert!(verify_put(&h, PUT_PATH, "PUT", &auth).is_ok());
    assert!(matches!(
        verify_put(&h, "/bucket/a%20b%2Bd", "PUT", &auth),
        Err(AuthError::SignatureMismatch { .. })
    ));
    assert!(verify_put(&h, PUT_PATH, "POST", &auth).is_err());
    let mut extra = put_example();
    extra.insert("x-amz-acl", "public-read".parse().unwrap());
    assert!(verify_put(&extra, PUT_PATH, "PUT", &auth).is_err());
    let mut typed = put_example();
    typed.insert("content-type", "text/html".parse().unwrap());
    assert!(verify_put(&typed, PUT_PATH, "PUT", &auth).is_err());
    // Too old for header authentication.
    let parts = RequestParts {
        method: "PUT",
        path: PUT_PATH,
        query: PUT_QUERY,
        headers: &h,
        authority: None,
    };
    let late = parse_http_date("Tue, 27 Mar 2007 20:00:00 GMT").unwrap();
    assert!(matches!(
        verify_header_v2(
            &parts,
            &parse_query(PUT_QUERY).unwrap(),
            &AuthorizationV2::parse(&auth).unwrap(),
            SECRET,
            None,
            late,
            900
        ),
        Err(AuthError::TimeTooSkewed { .. })
    ));
}

#[test]
fn presigned_url_verifies_until_it_expires() {
    let query_text = "versionId=v1&response-content-type=text%2Fplain&AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE\
&Signature=xUwrxJF4MMsKelzuPORMkDz8hJc%3D&x-amz-security-token=tok&Expires=1700000600";
    let query = parse_query(query_text).unwrap();
    let h = headers(&[("host", "127.0.0.1:9000")]);
    let parts = RequestParts {
        method: "GET",
        path: "/bucket/k",
        query: query_text,
        headers: &h,
        authority: None,
    };
    let p = PresignedV2::parse(&query).unwrap();
    assert_eq!(p.security_token.as_deref(), Some("tok"));
    let before = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    assert!(verify_presigned_v2(&parts, &query, &p, SECRET, None, before).is_ok());
    let after = Utc.timestamp_opt(1_700_000_601, 0).unwrap();
    assert!(matches!(
        verify_presigned_v2(&parts, &query, &p, SECRET, None, after),
        Err(AuthError::Expired { .. })
    ));
    // Virtual-hosted style signs the bucket into the resource.
    let vh = RequestParts {
        path: "/k",
        ..parts
    };
    assert!(verify_presigned_v2(&vh, &query, &p, SECRET, Some("bucket"), before).is_ok());
    assert!(verify_presigned_v2(&vh, &query, &p, SECRET, None, before).is_err());
}

#[test]
fn parse_errors() {
    assert!(AuthorizationV2::parse("AWS AKID").is_err());
    assert!(AuthorizationV2::parse("AWS AKID:notbase64!").is_err());
    assert!(AuthorizationV2::parse("AWS :ZrhyKrIo0pzijF0NaP/GlhEYydg=").is_err());
    let q = parse_query("AWSAccessKeyId=A&Signature=ZrhyKrIo0pzijF0NaP%2FGlhEYydg%3D&Expires=soon")
        .unwrap();
    assert!(matches!(
        PresignedV2::parse(&q),
        Err(AuthError::QueryParameters(_))
    ));
    let q = parse_query("AWSAccessKeyId=A&Expires=1").unwrap();
    assert!(matches!(
        PresignedV2::parse(&q),
        Err(AuthError::QueryParameters(_))
    ));
}
