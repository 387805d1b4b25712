use http::{HeaderMap, Method};

use super::*;
use crate::auth::canonical::parse_query;
use crate::policy::ContextValue;
use crate::s3::address::resolve;

fn run(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> Result<(Classified, Context), ClassifyError> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let target = resolve(None, path, &[])?;
    let query = parse_query(query).unwrap();
    let mut h = HeaderMap::new();
    for (n, v) in headers {
        h.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut ctx = Context::new();
    let view = RequestView {
        method: &method,
        target: &target,
        query: &query,
        headers: &h,
    };
    classify(&view, &mut ctx).map(|c| (c, ctx))
}

fn actions(c: &Classified) -> Vec<(&str, &str)> {
    c.checks
        .iter()
        .map(|k| (k.action, k.resource.as_str()))
        .collect()
}

fn single(v: &str) -> Option<&'static ContextValue> {
    Some(Box::leak(Box::new(ContextValue::Single(
        v.to_string().into(),
    ))))
}

#[test]
fn list_objects_sets_prefix_keys() {
    let (c, ctx) = run(
        "GET",
        "/b1b/?list-type=2&prefix=alice%2F&delimiter=%2F",
        &[],
    )
    .unwrap();
    assert_eq!(c.operation, Operation::ListObjectsV2);
    assert_eq!(actions(&c), [("s3:ListBucket", "arn:aws:s3:::b1b")]);
    assert_eq!(ctx.get("s3:prefix"), single("alice/"));
    assert_eq!(ctx.get("s3:max-keys"), single("1000"));
}

#[test]
fn copy_needs_get_on_source_and_put_on_destination() {
    let (c, ctx) = run(
        "PUT",
        "/dst/new",
        &[("x-amz-copy-source", "/src/a%20b?versionId=v1")],
    )
    .unwrap();
    assert_eq!(c.operation, Operation::CopyObject);
    assert_eq!(
        actions(&c),
        [
            ("s3:PutObject", "arn:aws:s3:::dst/new"),
            ("s3:GetObjectVersion", "arn:aws:s3:::src/a b")
        ]
    );
    assert_eq!(ctx.get("s3:x-amz-copy-source"), single("src/a b"));
}

#[test]
fn put_with_acl_and_tags_needs_extra_actions() {
    let (c, ctx) = run(
        "PUT",
        "/b1b/k",
        &[
            ("x-amz-acl", "public-read"),
            ("x-amz-tagging", "team=red&x=1"),
        ],
    )
    .unwrap();
    assert_eq!(
        actions(&c),
        [
            ("s3:PutObject", "arn:aws:s3:::b1b/k"),
            ("s3:PutObjectAcl", "arn:aws:s3:::b1b/k"),
            ("s3:PutObjectTagging", "arn:aws:s3:::b1b/k")
        ]
    );
    assert_eq!(ctx.get("s3:RequestObjectTag/team"), single("red"));
}

#[test]
fn unknown_or_ambiguous_requests_are_refused() {
    assert_eq!(
        run("GET", "/b1b/k?frobnicate", &[]).unwrap_err(),
        ClassifyError::UnknownParameter("frobnicate".into())
    );
    assert!(matches!(
        run("GET", "/b1b/k?acl&tagging", &[]),
        Err(ClassifyError::Ambiguous(_))
    ));
    assert!(matches!(
        run("DELETE", "/b1b/k?acl", &[]),
        Err(ClassifyError::MethodNotAllowed)
    ));
    assert!(matches!(
        run("GET", "/b1b/k", &[("x-amz-copy-source", "a/b")]),
        Err(ClassifyError::Ambiguous(_))
    ));
    assert!(matches!(
        run("GET", "/b1b/k?x-id=PutObject", &[]),
        Err(ClassifyError::Ambiguous(_))
    ));
    assert!(matches!(
        run("PUT", "/b1b/k", &[("x-amz-fwd-status", "200")]),
        Err(ClassifyError::UnsupportedHeader(_))
    ));
    assert!(matches!(
        run(
            "PUT",
            "/b1b/k",
            &[(
                "x-amz-copy-source",
                "arn:aws:s3:us-east-1:1:accesspoint/x/object/k"
            )]
        ),
        Err(ClassifyError::BadCopySource(_))
    ));
    assert!(matches!(
        run("GET", "/b1b/k?versionId=1&versionId=2", &[]),
        Err(ClassifyError::RepeatedParameter(_))
    ));
}

#[test]
fn presign_and_sdk_parameters_are_not_forwarded() {
    let (c, _) = run(
        "GET",
        "/b1b/k?x-id=GetObject&X-Amz-Signature=abc&response-content-type=text%2Fplain",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.forward_query,
        vec![(
            "response-content-type".to_string(),
            "text/plain".to_string()
        )]
    );
}

#[test]
fn versioned_requests_use_version_actions() {
    let (c, _) = run("DELETE", "/b1b/k?versionId=3", &[]).unwrap();
    assert_eq!(
        actions(&c),
        [("s3:DeleteObjectVersion", "arn:aws:s3:::b1b/k")]
    );
    let (c, _) = run("GET", "/b1b/k?tagging&versionId=3", &[]).unwrap();
    assert_eq!(
        actions(&c),
        [("s3:GetObjectVersionTagging", "arn:aws:s3:::b1b/k")]
    );
}

/// Header names [`Seen`] notes besides [`ACL_HEADERS`] and
/// [`PUT_OBJECT_HEADERS`], names it does not, and near misses.
const SEEN_OTHERS: &[&str] = &[
    "x-amz-object-lock-mode",
    "x-amz-object-lock-legal-hold",
    "x-amz-object-lock-retain-until-date",
    "x-amz-tagging",
    "if-match",
    "if-none-match",
    "x-amz-object-ownership",
    "x-amz-metadata-directive",
    "x-amz-grant-other",
    "x-amz-grant-",
    "x-amz-grant",
    "x-amz-acl-x",
    "if-matc",
    "if-none-match-x",
    "x-amz-tagging-directive",
    "host",
];

fn seen_candidates() -> Vec<&'static str> {
    ACL_HEADERS
        .iter()
        .chain(PUT_OBJECT_HEADERS)
        .chain(SEEN_OTHERS)
        .copied()
        .collect()
}

proptest::proptest! {
    /// Whatever subset of names a request carries, once or twice, with a
    /// value that is text or not, `Seen` answers as looking each name up
    /// in the map does.
    #[test]
    fn seen_answers_as_the_map_does(
        picks in proptest::collection::vec((0..27usize, 0..3u8), 0..12)
    ) {
        let candidates = seen_candidates();
        let mut h = HeaderMap::new();
        for (i, kind) in picks {
            let name = http::HeaderName::from_static(candidates[i]);
            let value = match kind {
                0 => http::HeaderValue::from_static("v"),
                1 => http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
                _ => http::HeaderValue::from_static("second"),
            };
            h.append(name, value);
        }
        let seen = Seen::of(&h);
        for name in candidates {
            proptest::prop_assert_eq!(seen.has(name), h.contains_key(name), "{}", name);
            proptest::prop_assert_eq!(seen.get(name), header_str(&h, name), "{}", name);
        }
        let grant = h.keys().any(|k| k.as_str().starts_with("x-amz-grant-"));
        proptest::prop_assert_eq!(seen.any_grant(), grant);
    }
}

#[test]
fn every_header_a_put_reads_is_noted_in_its_one_pass() {
    let candidates = seen_candidates();
    assert_eq!(candidates.len(), 27, "the proptest picks among all of them");
    for name in ACL_HEADERS.iter().chain(PUT_OBJECT_HEADERS) {
        assert!(slot(name).is_some(), "{name}");
    }
    let mut bits: Vec<u32> = candidates.iter().filter_map(|n| slot(n)).collect();
    assert_eq!(bits.len(), 17);
    bits.sort_unstable();
    bits.dedup();
    assert_eq!(bits, (0..17).collect::<Vec<_>>(), "one bit per name");
}
