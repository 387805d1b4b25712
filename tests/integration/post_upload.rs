//! Browser POST uploads end to end: forms made by boto3's
//! `generate_presigned_post` (SigV2 at its defaults, SigV4 when asked, with
//! long-term and temporary credentials), posted by a real HTTP client
//! (reqwest), checked against the signer's policies, the bytes checked in the
//! real store behind s3warden; and every refusal S3 gives, with nothing stored.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
const WEB_SECRET: &str = "web-secret-for-tests-0000000000000000000";

/// A presigned POST from boto3: (url, fields in boto3's order).
fn presigned_post(
    endpoint: &str,
    creds: (&str, &str, Option<&str>),
    version: Option<&str>,
    key: &str,
    expires: u64,
    extra: Value,
) -> (String, Vec<(String, String)>) {
    let (access, secret, token) = creds;
    let out = run_python(
        "presigned_post.py",
        &[
            endpoint,
            access,
            secret,
            token.unwrap_or("-"),
            version.unwrap_or("-"),
            "shared",
            key,
            &expires.to_string(),
            &extra.to_string(),
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let fields = v["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    (v["url"].as_str().unwrap().to_string(), fields)
}

fn alice() -> (&'static str, &'static str, Option<&'static str>) {
    (ALICE_KEY, ALICE_SECRET, None)
}

/// Posts `fields` then the file (unless `file` is None); `file_first` puts
/// the file before the fields instead.
async fn post(
    url: &str,
    fields: &[(String, String)],
    file: Option<(&str, Vec<u8>)>,
    file_first: bool,
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    let file_part = file.map(|(name, data)| {
        reqwest::multipart::Part::bytes(data)
            .file_name(name.to_string())
            .mime_str("application/octet-stream")
            .unwrap()
    });
    let mut file_part = file_part;
    if file_first && let Some(p) = file_part.take() {
        form = form.part("file", p);
    }
    for (k, v) in fields {
        form = form.text(k.clone(), v.clone());
    }
    if let Some(p) = file_part {
        form = form.part("file", p);
    }
    reqwest::Client::new()
        .post(url)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn code_of(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (status, xml_text(&body, "Code"), body)
}

async fn object(h: &Harness, key: &str) -> Option<Vec<u8>> {
    match h.root().get_object().bucket("shared").key(key).send().await {
        Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(e) if error_code(&e) == "NoSuchKey" => None,
        Err(e) => panic!("{e:?}"),
    }
}

async fn setup(extra: &str) -> Harness {
    let h = Harness::embedded_with(extra).await;
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    h
}

async fn open_uploads(h: &Harness) -> usize {
    h.root()
        .list_multipart_uploads()
        .bucket("shared")
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_land_in_the_signers_prefix_and_are_audited() {
    let h = setup("").await;
    let e = h.endpoint();
    for (version, sigver, name) in [
        (None, "AWS", "v2.jpg"),
        (Some("s3v4"), "AWS4-HMAC-SHA256", "v4.jpg"),
    ] {
        let (url, fields) = presigned_post(
            &e,
            alice(),
            version,
            "alice/${filename}",
            600,
            json!({"conditions": [["content-length-range", 1, 10 * MIB]]}),
        );
        let data = pattern(300_000);
        let resp = post(&url, &fields, Some((name, data.clone())), false).await;
        assert_eq!(resp.status().as_u16(), 204, "{version:?}");
        let etag = resp.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"'), "{etag}");
        assert_eq!(
            resp.headers()["location"].to_str().unwrap(),
            format!("{e}/shared/alice/{name}")
        );
        let rid = resp.headers()["x-amz-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            object(&h, &format!("alice/{name}")).await.as_deref(),
            Some(&data[..])
        );
        let r = h.audit_for(&rid).await;
        assert_eq!(r["operation"], "PostObject");
        assert_eq!(r["auth"]["kind"], "post-form");
        assert_eq!(r["auth"]["signature_version"], sigver);
        assert_eq!(r["principal"]["user_name"], "alice");
        assert_eq!(r["decision"]["allowed"], true);
        assert_eq!(r["actions"], json!(["s3:PutObject"]));
        assert_eq!(r["bucket"], "shared");
        assert_eq!(r["key"], format!("alice/{name}"));
        assert_eq!(r["status"], 204);
        assert!(r["bytes_in"].as_u64().unwrap() > 300_000);
    }
    // Secrets and signatures never reach the log.
    let log = std::fs::read_to_string(h.audit_path()).unwrap();
    assert!(!log.contains(ALICE_SECRET));
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_status_201_200_and_redirect() {
    let h = setup("").await;
    let e = h.endpoint();
    let form = |status: Option<&str>, redirect: Option<&str>| {
        let mut fields = serde_json::Map::new();
        let mut conditions = vec![];
        if let Some(s) = status {
            fields.insert("success_action_status".into(), json!(s));
            conditions.push(json!({"success_action_status": s}));
        }
        if let Some(r) = redirect {
            fields.insert("success_action_redirect".into(), json!(r));
            conditions.push(json!({"success_action_redirect": r}));
        }
        presigned_post(
            &e,
            alice(),
            Some("s3v4"),
            "alice/status.txt",
            600,
            json!({"fields": fields, "conditions": conditions}),
        )
    };
    let (url, fields) = form(Some("201"), None);
    let resp = post(&url, &fields, Some(("s.txt", b"created".to_vec())), false).await;
    assert_eq!(resp.status().as_u16(), 201);
    let body = resp.text().await.unwrap();
    assert_eq!(xml_text(&body, "Bucket"), "shared");
    assert_eq!(xml_text(&body, "Key"), "alice/status.txt");
    assert_eq!(
        xml_text(&body, "Location"),
        format!("{e}/shared/alice/status.txt")
    );
    assert!(xml_text(&body, "ETag").starts_with("&quot;"), "{body}");

    let (url, fields) = form(Some("200"), None);
    let resp = post(&url, &fields, Some(("s.txt", b"ok".to_vec())), false).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "");

    let (url, fields) = form(None, Some("https://app.example/done?from=upload"));
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(&url)
        .multipart(
            fields
                .iter()
                .fold(reqwest::multipart::Form::new(), |f, (k, v)| {
                    f.text(k.clone(), v.clone())
                })
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(b"redirected".to_vec()).file_name("r.txt"),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(
            "https://app.example/done?from=upload&bucket=shared&key=alice%2Fstatus.txt&etag=%22"
        ),
        "{location}"
    );
    assert_eq!(
        object(&h, "alice/status.txt").await.as_deref(),
        Some(&b"redirected"[..])
    );
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_another_users_prefix_is_denied() {
    let h = setup("").await;
    let e = h.endpoint();
    // The form is signed correctly, but alice's policies do not reach bob's prefix.
    let (url, fields) = presigned_post(&e, alice(), None, "bob/${filename}", 600, json!({}));
    let (status, code, _) =
        code_of(post(&url, &fields, Some(("x", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert_eq!(object(&h, "bob/x").await, None);
    let records = h.audit(3).await;
    let denied = records
        .iter()
        .find(|r| r["operation"] == "PostObject")
        .unwrap();
    assert_eq!(denied["operation"], "PostObject");
    assert_eq!(denied["decision"]["allowed"], false);
    assert_eq!(denied["key"], "bob/x");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_range_is_enforced_while_streaming() {
    let h = setup("").await;
    let e = h.endpoint();
    let form = |min: usize, max: usize| {
        presigned_post(
            &e,
            alice(),
            Some("s3v4"),
            "alice/${filename}",
            600,
            json!({"conditions": [["content-length-range", min, max]]}),
        )
    };
    // Small file over the limit: refused before anything goes upstream.
    let (url, fields) = form(0, MIB);
    let (status, code, body) =
        code_of(post(&url, &fields, Some(("small", pattern(MIB + 1))), false).await).await;
    assert_eq!((status, code.as_str()), (400, "EntityTooLarge"), "{body}");
    assert_eq!(xml_text(&body, "MaxSizeAllowed"), MIB.to_string());
    assert_eq!(object(&h, "alice/small").await, None);

    // Large file over the limit: parts went upstream, then the upload was
    // aborted, leaving neither an object nor an open multipart upload.
    let (url, fields) = form(0, 12 * MIB);
    let (status, code, _) =
        code_of(post(&url, &fields, Some(("large", pattern(20 * MIB))), false).await).await;
    assert_eq!((status, code.as_str()), (400, "EntityTooLarge"));
    assert_eq!(object(&h, "alice/large").await, None);
    assert_eq!(open_uploads(&h).await, 0);

    // Too small.
    let (url, fields) = form(10, MIB);
    let (status, code, body) =
        code_of(post(&url, &fields, Some(("tiny", b"12345".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (400, "EntityTooSmall"));
    assert_eq!(xml_text(&body, "MinSizeAllowed"), "10");
    assert_eq!(object(&h, "alice/tiny").await, None);

    // A large file within the limit goes up in parts and arrives whole.
    let (url, fields) = form(0, 30 * MIB);
    let data = pattern(20 * MIB + 12345);
    let resp = post(&url, &fields, Some(("big", data.clone())), false).await;
    assert_eq!(resp.status().as_u16(), 204);
    let got = object(&h, "alice/big").await.unwrap();
    assert!(got == data, "20 MiB object differs");
    assert_eq!(open_uploads(&h).await, 0);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tampered_and_uncovered_forms_are_refused() {
    let h = setup("").await;
    let e = h.endpoint();
    // Expired policy.
    let (url, fields) = presigned_post(&e, alice(), Some("s3v4"), "alice/late", 1, json!({}));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, code, body) =
        code_of(post(&url, &fields, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(body.contains("Policy expired"), "{body}");
    assert_eq!(object(&h, "alice/late").await, None);

    // Tampered policy: the prefix widened after signing.
    for version in [None, Some("s3v4")] {
        let (url, mut fields) =
            presigned_post(&e, alice(), version, "alice/${filename}", 600, json!({}));
        let policy = fields.iter_mut().find(|(k, _)| k == "policy").unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        let doc = String::from_utf8(base64::Engine::decode(&engine, &policy.1).unwrap()).unwrap();
        assert!(doc.contains("alice/"));
        policy.1 = base64::Engine::encode(&engine, doc.replace("\"alice/\"", "\"\""));
        let (status, code, _) =
            code_of(post(&url, &fields, Some(("t", b"x".to_vec())), false).await).await;
        assert_eq!((status, code.as_str()), (403, "SignatureDoesNotMatch"));
    }
    assert_eq!(object(&h, "alice/t").await, None);

    // A field no condition covers.
    let (url, mut fields) =
        presigned_post(&e, alice(), Some("s3v4"), "alice/extra", 600, json!({}));
    fields.push(("x-amz-meta-sneaky".into(), "1".into()));
    let (status, code, body) =
        code_of(post(&url, &fields, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(
        body.contains("Extra input fields: x-amz-meta-sneaky"),
        "{body}"
    );
    assert_eq!(object(&h, "alice/extra").await, None);

    // A key outside the policy's starts-with.
    let (url, mut fields) = presigned_post(&e, alice(), None, "alice/${filename}", 600, json!({}));
    fields.iter_mut().find(|(k, _)| k == "key").unwrap().1 = "alice2/x".into();
    let (status, code, body) =
        code_of(post(&url, &fields, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert!(body.contains("Policy Condition failed"), "{body}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_forms_are_refused() {
    let h = setup("").await;
    let e = h.endpoint();
    let (url, fields) = presigned_post(&e, alice(), Some("s3v4"), "alice/order", 600, json!({}));
    // The file before the policy: everything after the file is ignored, so
    // the form has no key (S3's message says to check the field order).
    let (status, code, body) =
        code_of(post(&url, &fields, Some(("f", b"x".to_vec())), true).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"), "{body}");
    assert!(body.contains("order of the fields"), "{body}");
    // No file at all.
    let (status, code, body) = code_of(post(&url, &fields, None, false).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"), "{body}");
    assert!(body.contains("exactly one file"), "{body}");
    assert_eq!(object(&h, "alice/order").await, None);
    // Fields before the file are bounded (20 KB).
    let mut big = fields.clone();
    big.push(("x-ignore-padding".into(), "p".repeat(21 * 1024)));
    let (status, code, _) =
        code_of(post(&url, &big, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "MaxPostPreDataLengthExceededError")
    );
    // Not multipart at all, or cut short.
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=zzz")
        .body("--zzz\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nalice/x")
        .send()
        .await
        .unwrap();
    let (status, code, _) = code_of(resp).await;
    assert_eq!((status, code.as_str()), (400, "MalformedPOSTRequest"));
    // No signature: anonymous uploads are never allowed.
    let anonymous: Vec<_> = fields.iter().filter(|(k, _)| k == "key").cloned().collect();
    let (status, code, _) =
        code_of(post(&url, &anonymous, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    assert_eq!(object(&h, "alice/x").await, None);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_sign_forms_and_sigv2_can_be_switched_off() {
    // An issuing backend's user: may federate, and upload under web/.
    let h = setup(&format!(
        r#"
[auth]
sigv2 = false

[[users]]
name = "web"
access_keys = [{{ access_key_id = "WEBKEYFORTESTS000001", secret_access_key = "{WEB_SECRET}" }}]
policies = [{{ name = "issue", document = '''{{"Version":"2012-10-17","Statement":[
  {{"Effect":"Allow","Action":"sts:GetFederationToken","Resource":"*"}},
  {{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/web/*"}}]}}''' }}]
"#
    ))
    .await;
    let e = h.endpoint();
    let (s, b) = api_call_as(
        &e,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", "browser-1"),
            (
                "Policy",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/web/browser-1/*"}]}"#,
            ),
        ],
        "WEBKEYFORTESTS000001",
        WEB_SECRET,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (key, secret, token) = (
        xml_text(&b, "AccessKeyId"),
        xml_text(&b, "SecretAccessKey"),
        xml_text(&b, "SessionToken"),
    );
    let creds = (key.as_str(), secret.as_str(), Some(token.as_str()));
    let (url, fields) = presigned_post(
        &e,
        creds,
        Some("s3v4"),
        "web/browser-1/${filename}",
        600,
        json!({}),
    );
    assert!(fields.iter().any(|(k, _)| k == "x-amz-security-token"));
    let resp = post(&url, &fields, Some(("s.bin", b"session".to_vec())), false).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        object(&h, "web/browser-1/s.bin").await.as_deref(),
        Some(&b"session"[..])
    );
    // The session policy narrows: the issuer's prefix outside browser-1/ is not granted.
    let (url, fields) = presigned_post(&e, creds, Some("s3v4"), "web/other", 600, json!({}));
    let (status, code, _) =
        code_of(post(&url, &fields, Some(("o", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    // SigV2 is switched off here: boto3's default form is refused as S3 refuses it.
    let (url, fields) = presigned_post(&e, alice(), None, "alice/v2", 600, json!({}));
    let (status, code, _) =
        code_of(post(&url, &fields, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidRequest"));
    assert_eq!(object(&h, "alice/v2").await, None);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_fields_become_object_headers_and_are_authorized_as_such() {
    let h = setup("").await;
    let e = h.endpoint();
    let data = b"{\"hello\": true}".to_vec();
    let sha256 = {
        use sha2::Digest;
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            sha2::Sha256::digest(&data),
        )
    };
    let form = |checksum: &str| {
        presigned_post(
            &e,
            alice(),
            Some("s3v4"),
            "alice/doc.json",
            600,
            json!({
                "fields": {
                    "Content-Type": "application/json",
                    "Cache-Control": "max-age=60",
                    "Content-Disposition": "attachment; filename=\"doc.json\"",
                    "x-amz-meta-color": "blue",
                    "x-amz-checksum-sha256": checksum,
                },
                "conditions": [
                    {"Content-Type": "application/json"},
                    ["starts-with", "$Cache-Control", "max-age="],
                    {"Content-Disposition": "attachment; filename=\"doc.json\""},
                    {"x-amz-meta-color": "blue"},
                    {"x-amz-checksum-sha256": checksum},
                ],
            }),
        )
    };
    // A checksum field that does not match the file: nothing stored.
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0u8; 32]);
    let (url, fields) = form(&wrong);
    let (status, code, _) =
        code_of(post(&url, &fields, Some(("doc.json", data.clone())), false).await).await;
    assert_eq!((status, code.as_str()), (400, "BadDigest"));
    assert_eq!(object(&h, "alice/doc.json").await, None);

    let (url, fields) = form(&sha256);
    let resp = post(&url, &fields, Some(("doc.json", data.clone())), false).await;
    assert_eq!(resp.status().as_u16(), 204);
    let head = h
        .root()
        .head_object()
        .bucket("shared")
        .key("alice/doc.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"doc.json\"")
    );
    assert_eq!(
        head.metadata().unwrap().get("color").map(String::as_str),
        Some("blue")
    );
    assert_eq!(object(&h, "alice/doc.json").await, Some(data));

    // Tagging and an ACL need their own permissions, as on PutObject: alice
    // has s3:PutObject only.
    for (field, value) in [
        (
            "tagging",
            "<Tagging><TagSet><Tag><Key>team</Key><Value>red</Value></Tag></TagSet></Tagging>",
        ),
        ("acl", "private"),
    ] {
        let (url, fields) = presigned_post(
            &e,
            alice(),
            Some("s3v4"),
            "alice/tagged",
            600,
            json!({"fields": {field: value}, "conditions": [{field: value}]}),
        );
        let (status, code, body) =
            code_of(post(&url, &fields, Some(("t", b"x".to_vec())), false).await).await;
        assert_eq!((status, code.as_str()), (403, "AccessDenied"), "{field}");
        // The record is written once the response has finished: wait for
        // this request's own record, not whatever is last in the log.
        let denied = h.audit_for(&xml_text(&body, "RequestId")).await;
        let extra = if field == "acl" {
            "s3:PutObjectAcl"
        } else {
            "s3:PutObjectTagging"
        };
        assert_eq!(
            denied["actions"],
            json!(["s3:PutObject", extra]),
            "{denied}"
        );
    }
    assert_eq!(object(&h, "alice/tagged").await, None);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style_forms_upload() {
    let h = Harness::embedded_configured("domains = [\"s3.local\"]", "", "").await;
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let e = h.endpoint();
    let port = h.server.local_addr().port();
    let (_, fields) = presigned_post(&e, alice(), None, "alice/${filename}", 600, json!({}));
    let form = fields
        .iter()
        .fold(reqwest::multipart::Form::new(), |f, (k, v)| {
            f.text(k.clone(), v.clone())
        })
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"virtual".to_vec()).file_name("vh.txt"),
        );
    let resp = reqwest::Client::new()
        .post(format!("{e}/"))
        .header("host", format!("shared.s3.local:{port}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("http://shared.s3.local:{port}/alice/vh.txt")
    );
    assert_eq!(
        object(&h, "alice/vh.txt").await.as_deref(),
        Some(&b"virtual"[..])
    );
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_forms_are_refused_and_harm_nothing() {
    let h = setup("").await;
    h.root()
        .create_bucket()
        .bucket("other")
        .send()
        .await
        .unwrap();
    let e = h.endpoint();
    let (url, fields) = presigned_post(&e, alice(), Some("s3v4"), "alice/h", 600, json!({}));
    // The same field twice: the policy would check one value and S3 use another.
    let mut twice = fields.clone();
    twice.insert(0, ("Key".into(), "alice/other".into()));
    let (status, code, body) =
        code_of(post(&url, &twice, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"), "{body}");
    assert_eq!(xml_text(&body, "ArgumentName"), "key");
    // An x-amz-date that is not exactly YYYYMMDDTHHMMSSZ (chrono alone would
    // take whitespace between the numbers), from anyone.
    let mut odd = fields.clone();
    odd.iter_mut().find(|(k, _)| k == "x-amz-date").unwrap().1 =
        "2024\u{85}1\u{85}1T000000Z".into();
    let (status, code, _) =
        code_of(post(&url, &odd, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"));
    // The form is for "shared"; posted to another bucket it fails its policy.
    let (status, code, body) = code_of(
        post(
            &format!("{e}/other"),
            &fields,
            Some(("f", b"x".to_vec())),
            false,
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"), "{body}");
    // aws-chunked as the object's Content-Encoding would make upstream decode
    // bytes the proxy checked as they are.
    let (url2, chunked) = presigned_post(
        &e,
        alice(),
        Some("s3v4"),
        "alice/h",
        600,
        json!({"fields": {"Content-Encoding": "aws-chunked"}, "conditions": [{"Content-Encoding": "aws-chunked"}]}),
    );
    let (status, code, _) =
        code_of(post(&url2, &chunked, Some(("f", b"x".to_vec())), false).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidArgument"));
    // A part header that never ends is not buffered: refused once the bound
    // before the file is passed, without reading the rest.
    let mut endless = b"--zzz\r\nContent-Disposition: form-data; name=\"key\"\r\nX-Pad: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 16 * MIB));
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=zzz")
        .body(endless)
        .send()
        .await;
    // The proxy may answer and close before the client has sent everything.
    if let Ok(resp) = resp {
        let (status, code, _) = code_of(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "MaxPostPreDataLengthExceededError")
        );
    }
    // A file cut short: IncompleteBody, nothing stored.
    let mut cut = Vec::new();
    for (k, v) in &fields {
        cut.extend_from_slice(
            format!("--zzz\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    cut.extend_from_slice(
        b"--zzz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\npartial data",
    );
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=zzz")
        .body(cut)
        .send()
        .await
        .unwrap();
    let (status, code, _) = code_of(resp).await;
    assert_eq!((status, code.as_str()), (400, "IncompleteBody"));
    assert_eq!(object(&h, "alice/h").await, None);
    assert_eq!(object(&h, "alice/other").await, None);
    // The server is unharmed: the genuine form still works.
    let resp = post(&url, &fields, Some(("f", b"fine".to_vec())), false).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(object(&h, "alice/h").await.as_deref(), Some(&b"fine"[..]));
    h.server.shutdown().await;
}
