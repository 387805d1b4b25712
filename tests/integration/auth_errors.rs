//! Every authentication failure gets the error S3 gives for it, as S3 XML
//! with a request id, leaves one audit record, and forwards nothing.

use std::time::{Duration, SystemTime};

use crate::common::*;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Case {
    name: &'static str,
    expect_status: u16,
    expect_code: &'static str,
}

async fn setup() -> (MockServer, Harness) {
    let mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    let h = Harness::upstream(&mock.uri()).await;
    (mock, h)
}

async fn check(h: &Harness, case: &Case, signed: &Signed) {
    let (status, headers, body) = send(signed, vec![]).await;
    assert_eq!(status, case.expect_status, "{}: {body}", case.name);
    assert_eq!(xml_code(&body), case.expect_code, "{}", case.name);
    let id = headers
        .get("x-amz-request-id")
        .expect("request id header")
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 16);
    assert!(
        body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{}: {body}",
        case.name
    );
    let record = h.audit_for(&id).await;
    assert_eq!(record["status"], case.expect_status, "{}", case.name);
    assert_eq!(record["error_code"], case.expect_code, "{}", case.name);
    let line = serde_json::to_string(&record).unwrap();
    for secret in [ALICE_SECRET, ROOT_SECRET, "Signature="] {
        assert!(
            !line.contains(secret),
            "{}: audit leaked {secret}",
            case.name
        );
    }
}

/// A signed request with one header changed after signing.
fn edit_header(mut signed: Signed, name: &str, f: impl Fn(&str) -> String) -> Signed {
    for (n, v) in signed.headers.iter_mut() {
        if n == name {
            *v = f(v);
        }
    }
    signed
}

fn url(h: &Harness) -> String {
    format!("{}/shared/alice/file.txt", h.endpoint())
}

#[tokio::test]
async fn each_authentication_failure_gets_s3s_error() {
    let (mock, h) = setup().await;
    let now = SystemTime::now();

    let wrong_secret = sign_request(
        "GET",
        &url(&h),
        &[],
        b"",
        ALICE_KEY,
        "not-alice-secret-000000000000000000",
        now,
    );
    check(
        &h,
        &Case {
            name: "wrong secret",
            expect_status: 403,
            expect_code: "SignatureDoesNotMatch",
        },
        &wrong_secret,
    )
    .await;

    let unknown = sign_request(
        "GET",
        &url(&h),
        &[],
        b"",
        "UNKNOWNKEY0000000001",
        ALICE_SECRET,
        now,
    );
    check(
        &h,
        &Case {
            name: "unknown key",
            expect_status: 403,
            expect_code: "InvalidAccessKeyId",
        },
        &unknown,
    )
    .await;

    let skewed = sign_request(
        "GET",
        &url(&h),
        &[],
        b"",
        ALICE_KEY,
        ALICE_SECRET,
        now - Duration::from_secs(16 * 60),
    );
    check(
        &h,
        &Case {
            name: "skew",
            expect_status: 403,
            expect_code: "RequestTimeTooSkewed",
        },
        &skewed,
    )
    .await;

    let future = sign_request(
        "GET",
        &url(&h),
        &[],
        b"",
        ALICE_KEY,
        ALICE_SECRET,
        now + Duration::from_secs(16 * 60),
    );
    check(
        &h,
        &Case {
            name: "future skew",
            expect_status: 403,
            expect_code: "RequestTimeTooSkewed",
        },
        &future,
    )
    .await;

    let malformed = edit_header(
        sign_request("GET", &url(&h), &[], b"", ALICE_KEY, ALICE_SECRET, now),
        "authorization",
        |v| v.replace("SignedHeaders=", "SignedHeadrs="),
    );
    check(
        &h,
        &Case {
            name: "malformed",
            expect_status: 400,
            expect_code: "AuthorizationHeaderMalformed",
        },
        &malformed,
    )
    .await;

    let wrong_region = edit_header(
        sign_request("GET", &url(&h), &[], b"", ALICE_KEY, ALICE_SECRET, now),
        "authorization",
        |v| v.replace("/us-east-1/", "/eu-west-1/"),
    );
    check(
        &h,
        &Case {
            name: "region",
            expect_status: 400,
            expect_code: "AuthorizationHeaderMalformed",
        },
        &wrong_region,
    )
    .await;

    let anonymous = Signed {
        method: "GET".into(),
        url: url(&h),
        headers: vec![],
    };
    check(
        &h,
        &Case {
            name: "anonymous",
            expect_status: 403,
            expect_code: "AccessDenied",
        },
        &anonymous,
    )
    .await;

    let mut no_sha = sign_request("GET", &url(&h), &[], b"", ALICE_KEY, ALICE_SECRET, now);
    no_sha.headers.retain(|(n, _)| n != "x-amz-content-sha256");
    check(
        &h,
        &Case {
            name: "no content sha",
            expect_status: 400,
            expect_code: "InvalidRequest",
        },
        &no_sha,
    )
    .await;

    let mut unsigned_header = sign_request("GET", &url(&h), &[], b"", ALICE_KEY, ALICE_SECRET, now);
    unsigned_header
        .headers
        .push(("x-amz-acl".into(), "public-read".into()));
    check(
        &h,
        &Case {
            name: "unsigned x-amz header",
            expect_status: 403,
            expect_code: "AccessDenied",
        },
        &unsigned_header,
    )
    .await;

    let tampered_header = edit_header(
        sign_request(
            "GET",
            &url(&h),
            &[("range", "bytes=0-1")],
            b"",
            ALICE_KEY,
            ALICE_SECRET,
            now,
        ),
        "range",
        |_| "bytes=0-1000".into(),
    );
    check(
        &h,
        &Case {
            name: "tampered header",
            expect_status: 403,
            expect_code: "SignatureDoesNotMatch",
        },
        &tampered_header,
    )
    .await;

    let sigv2ish = Signed {
        method: "GET".into(),
        url: url(&h),
        headers: vec![(
            "authorization".into(),
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l".into(),
        )],
    };
    check(
        &h,
        &Case {
            name: "other scheme",
            expect_status: 400,
            expect_code: "InvalidRequest",
        },
        &sigv2ish,
    )
    .await;

    assert!(
        mock.received_requests().await.unwrap().is_empty(),
        "a refused request was forwarded"
    );
    // One record per request, no more.
    let records = h.audit(11).await;
    assert_eq!(records.len(), 11);
    h.server.shutdown().await;
}

#[tokio::test]
async fn denied_request_records_the_deciding_reason() {
    let (mock, h) = setup().await;
    let err = h
        .alice()
        .get_object()
        .bucket("shared")
        .key("bob/x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "AccessDenied");
    let records = h.audit(1).await;
    let r = &records[0];
    assert_eq!(r["decision"]["allowed"], false);
    assert_eq!(r["decision"]["reason"], "no statement allows");
    assert_eq!(r["principal"]["user_name"], "alice");
    assert_eq!(r["operation"], "GetObject");
    assert_eq!(r["key"], "bob/x");

    h.alice()
        .get_object()
        .bucket("shared")
        .key("alice/x")
        .send()
        .await
        .ok();
    let records = h.audit(2).await;
    let r = &records[1];
    assert_eq!(r["decision"]["allowed"], true);
    assert_eq!(r["decision"]["policy"], "group/prefix-users/own-prefix");
    assert_eq!(r["decision"]["statement"], "OwnObjects");
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_session_token_for_a_long_term_key_is_refused() {
    let (mock, h) = setup().await;
    let s = sign_request(
        "GET",
        &url(&h),
        &[("x-amz-security-token", "not-a-token")],
        b"",
        ALICE_KEY,
        ALICE_SECRET,
        SystemTime::now(),
    );
    check(
        &h,
        &Case {
            name: "token",
            expect_status: 400,
            expect_code: "InvalidToken",
        },
        &s,
    )
    .await;
    assert!(mock.received_requests().await.unwrap().is_empty());
    h.server.shutdown().await;
}
