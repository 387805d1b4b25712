//! Properties of header-auth verification: any request aws-sigv4 signs (random
//! keys, awkward paths and queries, headers with inner spaces) verifies, and
//! changing any one signed byte (method, path, query, header value,
//! signature) makes it fail.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
use proptest::prelude::*;
use s3warden::auth::canonical::{parse_query, uri_encode};
use s3warden::auth::sigv4::{AuthorizationV4, Expectations, verify_header};
use s3warden::auth::{AuthError, RequestParts, SigningKeyCache};

#[derive(Debug, Clone)]
struct Req {
    akid: String,
    secret: String,
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

fn segment() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 +%~=&._-]{1,8}|é|✓|ü[a-z]{0,3}").unwrap()
}

fn request() -> impl Strategy<Value = Req> {
    (
        "[A-Z0-9]{16,24}",
        "[A-Za-z0-9/+]{20,40}",
        prop_oneof![
            Just("GET"),
            Just("PUT"),
            Just("DELETE"),
            Just("HEAD"),
            Just("POST")
        ],
        prop::collection::vec(segment(), 1..5),
        any::<bool>(),
        prop::collection::vec((segment(), proptest::option::of(segment())), 0..4),
        prop::collection::vec(
            (
                "[a-z0-9]{1,8}",
                "[a-zA-Z0-9]{1,6}( {1,3}[a-zA-Z0-9]{1,6}){0,2}",
            ),
            0..4,
        ),
    )
        .prop_map(|(akid, secret, method, segs, trailing, q, h)| {
            let mut path = String::from("/bucket");
            for s in &segs {
                path.push('/');
                path.push_str(&uri_encode(s, false));
            }
            if trailing {
                path.push('/');
            }
            let query = q
                .iter()
                .map(|(n, v)| match v {
                    Some(v) => format!("{}={}", uri_encode(n, false), uri_encode(v, false)),
                    None => format!("{}=", uri_encode(n, false)),
                })
                .collect::<Vec<_>>()
                .join("&");
            let mut names = std::collections::BTreeSet::new();
            let headers = h
                .into_iter()
                .filter(|(n, _)| names.insert(n.clone()))
                .map(|(n, v)| (format!("x-amz-meta-{n}"), v))
                .collect();
            Req {
                akid,
                secret,
                method,
                path,
                query,
                headers,
            }
        })
}

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Signs with aws-sigv4 and returns the received headers.
fn signed(r: &Req) -> http::HeaderMap {
    let identity =
        aws_credential_types::Credentials::new(&r.akid, &r.secret, None, None, "p").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(at())
        .settings(s3warden::upstream::s3_signing_settings())
        .build()
        .unwrap()
        .into();
    let uri = format!(
        "http://127.0.0.1:9000{}{}{}",
        r.path,
        if r.query.is_empty() { "" } else { "?" },
        r.query
    );
    let mut all: Vec<(String, String)> = vec![("host".into(), "127.0.0.1:9000".into())];
    all.extend(r.headers.iter().cloned());
    let signable = SignableRequest::new(
        r.method,
        &uri,
        all.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut h = http::HeaderMap::new();
    for (n, v) in &all {
        h.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let (new, _) = instructions.into_parts();
    for x in new {
        h.insert(
            http::HeaderName::from_bytes(x.name().as_bytes()).unwrap(),
            x.value().parse().unwrap(),
        );
    }
    h
}

fn verify(r: &Req, h: &http::HeaderMap) -> Result<(), AuthError> {
    let parts = RequestParts {
        method: r.method,
        path: &r.path,
        query: &r.query,
        headers: h,
        authority: None,
    };
    let auth = AuthorizationV4::parse(h["authorization"].to_str().unwrap())?;
    let expect = Expectations {
        region: "us-east-1",
        service: "s3",
        now: at().into(),
        max_skew_secs: 900,
    };
    // A query that does not decode to UTF-8 is refused (InvalidURI) before
    // any signature is checked.
    let query = parse_query(&r.query).ok_or_else(|| AuthError::Malformed("query".into()))?;
    verify_header(
        &parts,
        &query,
        &auth,
        h["x-amz-content-sha256"].to_str().unwrap(),
        &r.secret,
        &expect,
        &SigningKeyCache::default(),
    )
    .map(|_| ())
}

/// Replaces the `n`-th ASCII letter or digit of `s` with another one, so the
/// text stays valid and its canonical form surely changes.
fn change_alnum(s: &str, n: usize) -> Option<String> {
    let positions: Vec<usize> = s
        .char_indices()
        .filter(|(_, c)| c.is_ascii_alphanumeric())
        .map(|(i, _)| i)
        .collect();
    let at = *positions.get(n % positions.len().max(1))?;
    let old = s.as_bytes()[at];
    let new = if old == b'z' {
        'y'
    } else if old == b'9' {
        '8'
    } else {
        'z'
    };
    let mut out = s.to_string();
    out.replace_range(at..at + 1, &new.to_string());
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn what_aws_sigv4_signs_verifies(r in request()) {
        let h = signed(&r);
        prop_assert_eq!(verify(&r, &h), Ok(()));
    }

    #[test]
    fn any_one_change_to_a_signed_part_fails(r in request(), which in 0usize..5, n in any::<usize>()) {
        let h = signed(&r);
        let mut r2 = r.clone();
        let mut h2 = h.clone();
        match which {
            0 => r2.method = if r.method == "GET" { "PUT" } else { "GET" },
            1 => r2.path = change_alnum(&r.path, n).unwrap(),
            2 => match change_alnum(&r.query, n) {
                Some(q) => r2.query = q,
                None => r2.query = "x=1".into(),
            },
            3 => match r.headers.first() {
                Some((name, v)) => {
                    let changed = change_alnum(v, n).unwrap();
                    h2.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), changed.parse().unwrap());
                }
                None => {
                    h2.insert("host", "127.0.0.1:9001".parse().unwrap());
                }
            },
            _ => {
                let auth = h["authorization"].to_str().unwrap();
                let (head, sig) = auth.rsplit_once("Signature=").unwrap();
                let changed = change_alnum(sig, n).unwrap();
                h2.insert("authorization", format!("{head}Signature={changed}").parse().unwrap());
            }
        }
        prop_assert!(verify(&r2, &h2).is_err(), "change {} still verified", which);
    }
}
