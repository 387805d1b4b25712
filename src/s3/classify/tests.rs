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
