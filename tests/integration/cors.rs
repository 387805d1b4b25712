//! CORS: preflights answered from `[cors]` without authentication (and
//! audited), actual responses decorated only for allowed origins.

use std::time::SystemTime;

use crate::common::*;

const CORS: &str = r#"
[cors]
allowed_origins = ["http://app.localtest:8000"]
allowed_methods = ["GET", "POST", "PUT"]
allowed_headers = ["content-type", "x-amz-*"]
expose_headers = ["ETag", "x-amz-request-id"]
max_age_secs = 600
"#;

async fn options(endpoint: &str, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{endpoint}/shared/alice/x"),
        )
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn preflights_and_actual_requests() {
    let h = Harness::embedded_configured("", "", CORS).await;
    let e = h.endpoint();
    let ok = options(&e, "http://app.localtest:8000", "POST", "content-type").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://app.localtest:8000"
    );
    assert_eq!(ok.headers()["access-control-max-age"], "600");
    assert!(
        ok.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    for (origin, method, headers) in [
        ("http://evil.localtest", "POST", "content-type"),
        ("http://app.localtest:8000", "DELETE", "content-type"),
        ("http://app.localtest:8000", "POST", "authorization"),
    ] {
        let r = options(&e, origin, method, headers).await;
        assert_eq!(r.status(), 403, "{origin} {method} {headers}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("<Code>AccessForbidden</Code>")
        );
    }

    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let url = format!("{e}/shared?list-type=2&prefix=alice%2F");
    for (origin, expect) in [
        ("http://app.localtest:8000", true),
        ("http://evil.localtest", false),
    ] {
        let s = sign_request(
            "GET",
            &url,
            &[("origin", origin)],
            b"",
            ALICE_KEY,
            ALICE_SECRET,
            SystemTime::now(),
        );
        let (status, headers, _) = send(&s, vec![]).await;
        assert_eq!(status, 200);
        assert_eq!(
            headers.contains_key("access-control-allow-origin"),
            expect,
            "{origin}"
        );
    }
    let records = h.audit(7).await;
    assert_eq!(
        records
            .iter()
            .filter(|r| r["operation"] == "PreflightCORS")
            .count(),
        4
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn without_cors_every_preflight_is_refused() {
    let h = Harness::embedded().await;
    let r = options(&h.endpoint(), "http://app.localtest:8000", "GET", "").await;
    assert_eq!(r.status(), 403);
    h.server.shutdown().await;
}
