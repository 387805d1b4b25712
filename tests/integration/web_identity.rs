//! AssumeRoleWithWebIdentity end to end against an OpenID provider served
//! here on loopback over HTTPS (its own CA, trusted through `[federation]
//! ca_file`), with a real discovery document and JWKS: a token it signs
//! gives a role session that does S3 within the role's policy and knows who
//! it is; every kind of bad token, an untrusting role and an unreachable
//! provider are refused with STS's own errors; keys are cached, refetched on
//! an unknown key id, and not refetched faster than configured.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::*;

pub const CLIENT_ID: &str = "photo-app";
const ROLE: &str = "web-uploader";
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/web-uploader";

fn enc(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A signing key of the provider.
pub enum Key {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
}

impl Key {
    pub fn ed() -> Key {
        let pk8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Key::Ed(Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap())
    }

    pub fn ec() -> Key {
        let rng = SystemRandom::new();
        let pk8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Key::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pk8.as_ref(), &rng).unwrap(),
        )
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Ed(_) => "EdDSA",
            Key::Ec(_) => "ES256",
        }
    }

    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            Key::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "x": enc(k.public_key().as_ref())})
            }
            Key::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": enc(&p[1..33]), "y": enc(&p[33..65])})
            }
        }
    }

    /// A compact JWS of `claims` under `header` (which names the alg and kid).
    pub fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            enc(header.to_string().as_bytes()),
            enc(claims.to_string().as_bytes())
        );
        let sig = match self {
            Key::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Key::Ec(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", enc(&sig))
    }

    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        self.sign_with(
            &json!({"alg": self.alg(), "kid": kid, "typ": "JWT"}),
            claims,
        )
    }
}

/// An OpenID provider on `https://localhost:PORT/realms/test`.
pub struct Issuer {
    pub url: String,
    /// `HOST/PATH`: the provider's ARN suffix and condition key prefix.
    pub host_path: String,
    pub ca_file: PathBuf,
    pub jwks: Arc<Mutex<Vec<Value>>>,
    pub jwks_hits: Arc<AtomicUsize>,
    _dir: TempDir,
}

impl Issuer {
    pub async fn start(keys: Vec<Value>) -> Issuer {
        let dir = TempDir::new().unwrap();
        let (cert, key, _) = self_signed_cert(dir.path());
        let certs: Vec<_> = rustls_pemfile::certs(&mut std::fs::read(&cert).unwrap().as_slice())
            .map(Result::unwrap)
            .collect();
        let private = rustls_pemfile::private_key(&mut std::fs::read(&key).unwrap().as_slice())
            .unwrap()
            .unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let host_path = format!("localhost:{port}/realms/test");
        let url = format!("https://{host_path}");
        let jwks = Arc::new(Mutex::new(keys));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let (j, h, u) = (jwks.clone(), jwks_hits.clone(), url.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, j, h, u) = (acceptor.clone(), j.clone(), h.clone(), u.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let body = match req.uri().path() {
                            "/realms/test/.well-known/openid-configuration" => {
                                Some(json!({"issuer": u, "jwks_uri": format!("{u}/jwks"),
                                       "id_token_signing_alg_values_supported": ["EdDSA", "ES256"]}))
                            }
                            "/realms/test/jwks" => {
                                h.fetch_add(1, Ordering::SeqCst);
                                Some(json!({"keys": j.lock().unwrap().clone()}))
                            }
                            _ => None,
                        };
                        let resp = match body {
                            Some(b) => http::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(b.to_string()))),
                            None => http::Response::builder()
                                .status(404)
                                .body(Full::new(Bytes::new())),
                        };
                        async move { resp }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Issuer {
            url,
            host_path,
            ca_file: cert,
            jwks,
            jwks_hits,
            _dir: dir,
        }
    }

    pub fn provider_arn(&self) -> String {
        format!("arn:aws:iam::000000000000:oidc-provider/{}", self.host_path)
    }

    /// Claims for `sub`, valid for ten minutes.
    pub fn claims(&self, sub: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": self.url, "aud": CLIENT_ID, "sub": sub, "iat": now, "nbf": now - 5,
               "exp": now + 600, "amr": ["pwd", "otp"], "team": "photos"})
    }

    /// [`Issuer::config`] with the provider declared in the config file
    /// (for [`CLIENT_ID`]), with `extra` lines in its declaration.
    pub fn declared(&self, extra: &str) -> String {
        format!(
            "{}\n[[oidc_providers]]\nurl = \"{}\"\nclient_ids = [\"{CLIENT_ID}\"]\n{extra}\n",
            self.config(60),
            self.url
        )
    }

    /// The `[federation]` section trusting this provider's CA.
    pub fn config(&self, refetch_secs: u64) -> String {
        format!(
            "\n[federation]\nca_file = \"{}\"\njwks_refetch_secs = {refetch_secs}\n",
            self.ca_file.display()
        )
    }
}

/// Registers the provider and a role it may assume when `sub` is `alice`,
/// `amr` includes `otp` and the custom claim `team` is `photos`; the role may
/// write under `shared/web/` and under `shared/users/${HOST/PATH:sub}/`.
pub async fn provider_and_role(e: &str, issuer: &Issuer) {
    let (s, b) = api_call(
        e,
        "iam",
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", &issuer.url),
            ("ClientIDList.member.1", CLIENT_ID),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    role_for(e, issuer).await;
}

/// The role of [`provider_and_role`], for a provider that exists already.
pub async fn role_for(e: &str, issuer: &Issuer) {
    let ok = |params: Vec<(&'static str, String)>| {
        let e = e.to_string();
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (s, b) = api_call(&e, "iam", &p).await;
            assert_eq!(s, 200, "{p:?}: {b}");
        }
    };
    let hp = &issuer.host_path;
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn()},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {format!("{hp}:aud"): CLIENT_ID, format!("{hp}:sub"): "alice", format!("{hp}:team"): "photos"},
            "ForAnyValue:StringEquals": {format!("{hp}:amr"): "otp"}
        }
    }]});
    ok(vec![
        ("Action", "CreateRole".into()),
        ("RoleName", ROLE.into()),
        ("AssumeRolePolicyDocument", trust.to_string()),
    ])
    .await;
    let own = format!("arn:aws:s3:::shared/users/${{{hp}:sub}}/*");
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
        "Resource": ["arn:aws:s3:::shared/web/*", own]
    }]});
    ok(vec![
        ("Action", "PutRolePolicy".into()),
        ("RoleName", ROLE.into()),
        ("PolicyName", "web".into()),
        ("PolicyDocument", policy.to_string()),
    ])
    .await;
}

/// An unsigned AssumeRoleWithWebIdentity of this file's role, as the SDKs send it.
pub async fn assume(e: &str, token: &str) -> (u16, String) {
    assume_with(e, ROLE_ARN, token, &[]).await
}

/// An unsigned AssumeRoleWithWebIdentity of `role_arn`.
pub async fn assume_role(e: &str, role_arn: &str, session: &str, token: &str) -> (u16, String) {
    assume_as(e, role_arn, session, token, &[]).await
}

/// An unsigned AssumeRoleWithWebIdentity of `role_arn`, with extra parameters.
pub async fn assume_with(
    e: &str,
    role_arn: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    assume_as(e, role_arn, "alice-laptop", token, extra).await
}

async fn assume_as(
    e: &str,
    role_arn: &str,
    session: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role_arn)
        .append_pair("RoleSessionName", session)
        .append_pair("WebIdentityToken", token);
    for (k, v) in extra {
        form.append_pair(k, v);
    }
    let body = form.finish();
    let resp = reqwest::Client::new()
        .post(format!("{e}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Checks that the audit record of the upload of `key` names the web
/// identity session `arn`; returns the record of the call that made it.
fn audited_session(records: &[Value], key: &str, arn: &str) -> Value {
    let put = records
        .iter()
        .find(|r| r["key"] == key)
        .expect("a record of the upload");
    assert_web_identity_audit(put, arn, records).clone()
}

/// Checks the audit of a web-identity session: `request` (a record of one
/// of its requests) names the session `arn` and how it was made, and the
/// call that made it is among `records`, unsigned and allowed. Returns the
/// call's record.
pub fn assert_web_identity_audit<'a>(
    request: &Value,
    arn: &str,
    records: &'a [Value],
) -> &'a Value {
    assert_eq!(request["principal"]["arn"], arn, "{request}");
    assert_eq!(
        request["principal"]["session"]["issued_by"],
        "AssumeRoleWithWebIdentity"
    );
    let call = records
        .iter()
        .find(|r| r["operation"] == "sts:AssumeRoleWithWebIdentity")
        .expect("a record of the call");
    assert_eq!(call["auth"]["kind"], "anonymous", "{call}");
    assert_eq!(call["decision"]["allowed"], true, "{call}");
    call
}

async fn harness(issuer: &Issuer, refetch_secs: u64) -> Harness {
    Harness::embedded_with(&issuer.config(refetch_secs)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_token_gives_a_role_session_that_does_s3_within_the_role_and_knows_who_it_is() {
    let key = Key::ed();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let h = harness(&issuer, 60).await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    provider_and_role(&e, &issuer).await;

    let (s, body) = assume(&e, &key.sign("k1", &issuer.claims("alice"))).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(xml_text(&body, "SubjectFromWebIdentityToken"), "alice");
    assert_eq!(xml_text(&body, "Audience"), CLIENT_ID);
    assert_eq!(xml_text(&body, "Provider"), issuer.host_path);
    assert_eq!(
        xml_text(&body, "Arn"),
        "arn:aws:sts::000000000000:assumed-role/web-uploader/alice-laptop"
    );
    let (k, sk, t) = (
        xml_text(&body, "AccessKeyId"),
        xml_text(&body, "SecretAccessKey"),
        xml_text(&body, "SessionToken"),
    );
    assert!(k.starts_with("ASIA"), "{k}");
    let session = s3_session_client(&e, &k, &sk, Some(&t));
    put_shared(&session, "web/photo.jpg").await.unwrap();
    assert_eq!(
        put_shared(&session, "private/photo.jpg").await.unwrap_err(),
        "AccessDenied"
    );
    // The subject fills its policy variable: alice's own prefix, no one else's.
    put_shared(&session, "users/alice/a.jpg").await.unwrap();
    assert_eq!(
        put_shared(&session, "users/bob/a.jpg").await.unwrap_err(),
        "AccessDenied"
    );
    let me = caller_identity(&e, &k, &sk, &t).await;
    assert_eq!(
        xml_text(&me, "Arn"),
        "arn:aws:sts::000000000000:assumed-role/web-uploader/alice-laptop"
    );
    assert!(xml_text(&me, "UserId").ends_with(":alice-laptop"), "{me}");

    // The audit names the session and how it was made, and the call that
    // made it records the trust statement that allowed it.
    let call = audited_session(
        &h.audit(4).await,
        "web/photo.jpg",
        "arn:aws:sts::000000000000:assumed-role/web-uploader/alice-laptop",
    );
    assert_eq!(call["response"]["issued_access_key_id"], json!(k), "{call}");
    assert!(!call.to_string().contains(&t), "the token is not recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_untrusting_roles_and_unreachable_providers_get_stss_errors() {
    let key = Key::ec();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let h = harness(&issuer, 60).await;
    let e = h.endpoint();
    provider_and_role(&e, &issuer).await;
    let good = issuer.claims("alice");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let now = chrono::Utc::now().timestamp();
    let impostor = Key::ec();
    let none = format!(
        "{}.{}.",
        enc(br#"{"alg":"none","kid":"k1"}"#),
        enc(good.to_string().as_bytes())
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong aud",
            key.sign("k1", &with(&|c| c["aud"] = json!("other-app"))),
            "InvalidIdentityToken",
        ),
        (
            "wrong iss",
            key.sign(
                "k1",
                &with(&|c| c["iss"] = json!("https://localhost:1/realms/other")),
            ),
            "InvalidIdentityToken",
        ),
        (
            "expired",
            key.sign(
                "k1",
                &with(&|c| {
                    c["exp"] = json!(now - 600);
                    c["iat"] = json!(now - 1200);
                }),
            ),
            "ExpiredTokenException",
        ),
        (
            "not yet valid",
            key.sign("k1", &with(&|c| c["nbf"] = json!(now + 3600))),
            "InvalidIdentityToken",
        ),
        (
            "bad signature",
            impostor.sign("k1", &good),
            "InvalidIdentityToken",
        ),
        (
            "unknown kid",
            impostor.sign("k2", &good),
            "InvalidIdentityToken",
        ),
        ("none alg", none, "InvalidIdentityToken"),
        (
            "HS256 with the public key",
            format!(
                "{}.{}.c2ln",
                enc(br#"{"alg":"HS256","kid":"k1"}"#),
                enc(good.to_string().as_bytes())
            ),
            "InvalidIdentityToken",
        ),
        ("garbage", "not.a.jwt".into(), "InvalidIdentityToken"),
        (
            "trust condition on sub not met",
            key.sign("k1", &issuer.claims("mallory")),
            "AccessDenied",
        ),
        (
            "trust condition on amr not met",
            key.sign("k1", &with(&|c| c["amr"] = json!(["pwd"]))),
            "AccessDenied",
        ),
        (
            "trust condition on a custom claim not met",
            key.sign("k1", &with(&|c| c["team"] = json!("finance"))),
            "AccessDenied",
        ),
    ];
    for (what, token, code) in cases {
        let (s, body) = assume(&e, &token).await;
        assert_eq!(xml_code(&body), code, "{what}: {body}");
        assert_eq!(s, if code == "AccessDenied" { 403 } else { 400 }, "{what}");
    }
    // The same good token is accepted: the refusals above were the token's.
    let (s, body) = assume(&e, &key.sign("k1", &good)).await;
    assert_eq!(s, 200, "{body}");

    // A provider that does not answer.
    let dead = Issuer::start(vec![]).await;
    let gone = dead.host_path.clone();
    drop(dead);
    let dead_url = format!("https://{gone}");
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", &dead_url),
            ("ClientIDList.member.1", CLIENT_ID),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let token = key.sign("k1", &with(&|c| c["iss"] = json!(dead_url)));
    let (s, body) = assume(&e, &token).await;
    assert_eq!(
        (s, xml_code(&body)),
        (400, "IDPCommunicationError".into()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_cached_refetched_for_a_new_kid_and_not_faster_than_configured() {
    let old = Key::ed();
    let issuer = Issuer::start(vec![old.jwk("old")]).await;
    // Refetching allowed at once.
    let h = harness(&issuer, 0).await;
    let e = h.endpoint();
    provider_and_role(&e, &issuer).await;
    for _ in 0..3 {
        let (s, b) = assume(&e, &old.sign("old", &issuer.claims("alice"))).await;
        assert_eq!(s, 200, "{b}");
    }
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 1, "cached");
    // The provider rotates its key: a token naming the new kid refetches.
    let new = Key::ec();
    issuer.jwks.lock().unwrap().push(new.jwk("new"));
    let (s, b) = assume(&e, &new.sign("new", &issuer.claims("alice"))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 2);

    // With a refetch interval, made-up kids do not reach the provider.
    let issuer2 = Issuer::start(vec![old.jwk("old")]).await;
    let h2 = harness(&issuer2, 3600).await;
    let e2 = h2.endpoint();
    provider_and_role(&e2, &issuer2).await;
    let (s, b) = assume(&e2, &old.sign("old", &issuer2.claims("alice"))).await;
    assert_eq!(s, 200, "{b}");
    for i in 0..5 {
        let (_, b) = assume(
            &e2,
            &old.sign(&format!("made-up-{i}"), &issuer2.claims("alice")),
        )
        .await;
        assert_eq!(xml_code(&b), "InvalidIdentityToken", "{b}");
    }
    assert_eq!(issuer2.jwks_hits.load(Ordering::SeqCst), 1);
}

/// The environment of a workload signed in to `role_arn` through a token
/// file. `HOME` is the token's directory: the aws CLI caches web-identity
/// credentials under `~/.aws/cli/cache`, which must not outlive the test's server.
fn web_identity_env(
    cmd: &mut std::process::Command,
    e: &str,
    token_file: &std::path::Path,
    role_arn: &str,
) {
    let home = token_file
        .parent()
        .unwrap_or(std::path::Path::new("/nonexistent"));
    cmd.env("HOME", home)
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
        .env("AWS_ROLE_ARN", role_arn)
        .env("AWS_ROLE_SESSION_NAME", "ci-job")
        .env("AWS_ENDPOINT_URL_STS", e)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
}

/// Runs `program` as a workload signed in to `role_arn` (session `ci-job`)
/// with the token in `token_file`.
async fn as_workload(
    program: &str,
    args: Vec<String>,
    e: &str,
    token_file: &std::path::Path,
    role_arn: &str,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    web_identity_env(&mut cmd, e, token_file, role_arn);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// boto3's own web-identity provider (tests/clients/boto3_web_identity.py)
/// writes and reads under `allowed` of bucket `shared` and is refused under
/// `denied`; returns the caller ARN it printed.
pub async fn boto3_workload(
    e: &str,
    token_file: &std::path::Path,
    role_arn: &str,
    allowed: &str,
    denied: &str,
) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/boto3_web_identity.py");
    let args = [script.to_str().unwrap(), e, allowed, denied].map(String::from);
    let out = as_workload("python3", args.to_vec(), e, token_file, role_arn).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.get(1), Some(&"ok"), "{stdout}");
    lines[0].to_string()
}

/// The aws CLI, signed in to `role_arn` with the token in `token_file`,
/// copies a file to `shared/ALLOWED` and is refused `shared/DENIED`; the
/// object is there for root to read. Returns the caller ARN the CLI prints.
pub async fn aws_cli_workload(
    h: &Harness,
    token_file: &std::path::Path,
    role_arn: &str,
    allowed: &str,
    denied: &str,
) -> String {
    let e = h.endpoint();
    let cli = |args: Vec<String>| {
        let mut all = vec!["--endpoint-url".to_string(), e.clone()];
        all.extend(args);
        as_workload("aws", all, &e, token_file, role_arn)
    };
    let upload = h.dir.path().join("upload.txt");
    std::fs::write(&upload, b"from the aws CLI").unwrap();
    let cp = |key: &str| {
        let args = [
            "s3",
            "cp",
            upload.to_str().unwrap(),
            &format!("s3://shared/{key}"),
        ];
        cli(args.map(String::from).to_vec())
    };
    let own = cp(allowed).await;
    assert!(own.status.success(), "{own:?}");
    let other = cp(denied).await;
    assert!(!other.status.success(), "{other:?}");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("AccessDenied"),
        "{other:?}"
    );
    let got = h
        .root()
        .get_object()
        .bucket("shared")
        .key(allowed)
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"from the aws CLI");
    let me = [
        "sts",
        "get-caller-identity",
        "--output",
        "text",
        "--query",
        "Arn",
    ];
    let me = cli(me.map(String::from).to_vec()).await;
    assert!(me.status.success(), "{me:?}");
    String::from_utf8_lossy(&me.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_aws_cli_sign_in_with_their_own_web_identity_providers() {
    let key = Key::ec();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let h = harness(&issuer, 60).await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    provider_and_role(&e, &issuer).await;
    let token_file = h.dir.path().join("web-identity-token");
    std::fs::write(&token_file, key.sign("k1", &issuer.claims("alice"))).unwrap();
    let session_arn = "arn:aws:sts::000000000000:assumed-role/web-uploader/ci-job";

    let me = boto3_workload(&e, &token_file, ROLE_ARN, "web/", "private/").await;
    assert_eq!(me, session_arn);

    let me = aws_cli_workload(
        &h,
        &token_file,
        ROLE_ARN,
        "web/from-cli.txt",
        "private/from-cli.txt",
    )
    .await;
    assert_eq!(me, session_arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_declared_in_the_config_is_trusted_and_read_only_through_iam() {
    let key = Key::ed();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let h = Harness::embedded_with(&issuer.declared("")).await;
    let e = h.endpoint();
    role_for(&e, &issuer).await;
    let arn = issuer.provider_arn();
    let (s, got) = api_call(
        &e,
        "iam",
        &[
            ("Action", "GetOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", &arn),
        ],
    )
    .await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(xml_text(&got, "Url"), issuer.host_path);
    for params in [
        vec![
            ("Action", "DeleteOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", arn.as_str()),
        ],
        vec![
            ("Action", "AddClientIDToOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", arn.as_str()),
            ("ClientID", "other"),
        ],
    ] {
        let (s, b) = api_call(&e, "iam", &params).await;
        assert_eq!((s, xml_code(&b)), (400, "UnmodifiableEntity".into()), "{b}");
    }
    let (s, b) = api_call(
        &e,
        "iam",
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", &issuer.url),
        ],
    )
    .await;
    assert_eq!(
        (s, xml_code(&b)),
        (409, "EntityAlreadyExists".into()),
        "{b}"
    );
    let (s, body) = assume(&e, &key.sign("k1", &issuer.claims("alice"))).await;
    assert_eq!(s, 200, "{body}");
    // A token for an audience the config does not list is refused.
    let mut other = issuer.claims("alice");
    other["aud"] = json!("other");
    let (_, body) = assume(&e, &key.sign("k1", &other)).await;
    assert_eq!(xml_code(&body), "InvalidIdentityToken", "{body}");
}

const TAGGED_ROLE: &str = "tagged-web";
const TAGGED_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/tagged-web";
const NEXT_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/next";

/// A role the provider's tokens for [`CLIENT_ID`] may assume with session
/// tags (its trust allows `sts:TagSession`), whose one policy serves every
/// team: `shared/${aws:PrincipalTag/team}/*`, and `shared/cost-${cost}/*`
/// for a `cost` tag. A second role, `next`, trusts it (role chaining) with
/// the same policy.
async fn tagged_roles(e: &str, issuer: &Issuer) {
    let hp = &issuer.host_path;
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn()},
        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
        "Condition": {"StringEquals": {format!("{hp}:aud"): CLIENT_ID}}
    }]});
    let next_trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": TAGGED_ROLE_ARN},
        "Action": ["sts:AssumeRole", "sts:TagSession"]
    }]});
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:PutObject",
        "Resource": ["arn:aws:s3:::shared/${aws:PrincipalTag/team}/*",
                     "arn:aws:s3:::shared/cost-${aws:PrincipalTag/cost}/*"]
    }]});
    for (role, trust) in [(TAGGED_ROLE, trust), ("next", next_trust)] {
        for params in [
            vec![
                ("Action", "CreateRole".to_string()),
                ("RoleName", role.to_string()),
                ("AssumeRolePolicyDocument", trust.to_string()),
            ],
            vec![
                ("Action", "PutRolePolicy".to_string()),
                ("RoleName", role.to_string()),
                ("PolicyName", "team".to_string()),
                ("PolicyDocument", policy.to_string()),
            ],
        ] {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (s, b) = api_call(e, "iam", &p).await;
            assert_eq!(s, 200, "{p:?}: {b}");
        }
    }
}

/// `issuer.claims(sub)` with AWS's session-tags claim set to `tags`.
fn tagged_claims(issuer: &Issuer, sub: &str, tags: Value) -> Value {
    let mut c = issuer.claims(sub);
    c["https://aws.amazon.com/tags"] = tags;
    c
}

/// `GetCallerIdentity`'s answer for a session's credentials.
pub async fn caller_identity(e: &str, key: &str, secret: &str, token: &str) -> String {
    let (s, me) = api_call_as(
        e,
        "sts",
        &[("Action", "GetCallerIdentity")],
        key,
        secret,
        Some(token),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    me
}

/// The credentials of an STS answer.
pub fn creds(body: &str) -> (String, String, String) {
    (
        xml_text(body, "AccessKeyId"),
        xml_text(body, "SecretAccessKey"),
        xml_text(body, "SessionToken"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_session_tags_become_principal_tags_and_transitive_ones_survive_a_role_chain() {
    let key = Key::ed();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let h = harness(&issuer, 60).await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    provider_and_role(&e, &issuer).await;
    tagged_roles(&e, &issuer).await;
    let tags = json!({"principal_tags": {"team": ["photos"], "cost": ["42"]},
                      "transitive_tag_keys": ["team"]});
    let token = key.sign("k1", &tagged_claims(&issuer, "alice", tags));
    let (s, body) = assume_with(&e, TAGGED_ROLE_ARN, &token, &[]).await;
    assert_eq!(s, 200, "{body}");
    let (k, sk, t) = creds(&body);
    let session = s3_session_client(&e, &k, &sk, Some(&t));
    // One policy, the team's prefix from the token's tag.
    put_shared(&session, "photos/a.jpg").await.unwrap();
    put_shared(&session, "cost-42/a.jpg").await.unwrap();
    assert_eq!(
        put_shared(&session, "finance/a.jpg").await.unwrap_err(),
        "AccessDenied"
    );
    assert_eq!(
        xml_text(&caller_identity(&e, &k, &sk, &t).await, "Arn"),
        "arn:aws:sts::000000000000:assumed-role/tagged-web/alice-laptop"
    );

    // The session assumes the next role: `team` is transitive and carries
    // on; `cost` is not and stays behind.
    let (s, chained) = api_call_as(
        &e,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", NEXT_ROLE_ARN),
            ("RoleSessionName", "chained"),
        ],
        &k,
        &sk,
        Some(&t),
    )
    .await;
    assert_eq!(s, 200, "{chained}");
    let (k2, sk2, t2) = creds(&chained);
    let next = s3_session_client(&e, &k2, &sk2, Some(&t2));
    put_shared(&next, "photos/b.jpg").await.unwrap();
    assert_eq!(
        put_shared(&next, "cost-42/b.jpg").await.unwrap_err(),
        "AccessDenied"
    );
    // A transitive tag cannot be set again down the chain.
    let (s, b) = api_call_as(
        &e,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", NEXT_ROLE_ARN),
            ("RoleSessionName", "chained"),
            ("Tags.member.1.Key", "Team"),
            ("Tags.member.1.Value", "finance"),
        ],
        &k,
        &sk,
        Some(&t),
    )
    .await;
    assert_eq!((s, xml_code(&b)), (400, "InvalidInput".into()), "{b}");

    // The audit names the session and records that passing tags was checked.
    let log = h.audit_path();
    h.server.shutdown().await;
    let records = audit_log_records(&log);
    let call = audited_session(
        &records,
        "photos/a.jpg",
        "arn:aws:sts::000000000000:assumed-role/tagged-web/alice-laptop",
    );
    assert_eq!(call["decision"]["allowed"], true, "{call}");
    assert!(call.to_string().contains("sts:TagSession"), "{call}");
    // The session's requests carry its tags from the token, which of them
    // are transitive, and who signed in; the chained session's, only the
    // transitive tag it inherited.
    let first = session_of_request_on(&records, "photos/a.jpg");
    assert_eq!(
        first["tags"],
        json!({"team": "photos", "cost": "42"}),
        "{first}"
    );
    assert_eq!(first["transitive_tag_keys"], json!(["team"]), "{first}");
    assert_eq!(
        first["web_identity"],
        json!({"provider": issuer.provider_arn(), "sub": "alice", "aud": CLIENT_ID}),
        "{first}"
    );
    let chained = session_of_request_on(&records, "photos/b.jpg");
    assert_eq!(chained["issued_by"], "AssumeRole", "{chained}");
    assert_eq!(chained["tags"], json!({"team": "photos"}), "{chained}");
    assert_eq!(chained["transitive_tag_keys"], json!(["team"]), "{chained}");
    assert!(chained.get("web_identity").is_none(), "{chained}");
    validate_audit_log(&[&log]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_tags_need_tag_session_in_the_trust_policy_and_bad_shapes_are_refused() {
    let key = Key::ec();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let h = harness(&issuer, 60).await;
    let e = h.endpoint();
    provider_and_role(&e, &issuer).await;
    tagged_roles(&e, &issuer).await;
    let team = json!({"principal_tags": {"team": ["photos"]}});

    // `web-uploader` trusts the provider for sts:AssumeRoleWithWebIdentity only.
    let token = key.sign("k1", &tagged_claims(&issuer, "alice", team.clone()));
    let (s, b) = assume(&e, &token).await;
    assert_eq!((s, xml_code(&b)), (403, "AccessDenied".into()), "{b}");
    assert!(b.contains("sts:TagSession"), "{b}");
    // The same token without tags is fine there.
    let (s, b) = assume(&e, &key.sign("k1", &issuer.claims("alice"))).await;
    assert_eq!(s, 200, "{b}");

    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!(["v"]))).collect();
    // Ten tags of 220 characters: within every per-tag limit, 2200
    // characters together, beyond the 2048 that pack.
    let big: serde_json::Map<String, Value> = (0..10)
        .map(|i| (format!("{i:0>20}"), json!(["v".repeat(200)])))
        .collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "not an object",
            json!("team=photos"),
            "InvalidIdentityToken",
        ),
        (
            "a value that is not an array",
            json!({"principal_tags": {"team": "photos"}}),
            "InvalidIdentityToken",
        ),
        (
            "two values",
            json!({"principal_tags": {"team": ["photos", "video"]}}),
            "InvalidIdentityToken",
        ),
        (
            "no value",
            json!({"principal_tags": {"team": []}}),
            "InvalidIdentityToken",
        ),
        (
            "a number",
            json!({"principal_tags": {"team": [7]}}),
            "InvalidIdentityToken",
        ),
        (
            "keys differing only in case",
            json!({"principal_tags": {"team": ["a"], "Team": ["b"]}}),
            "InvalidIdentityToken",
        ),
        (
            "a reserved key",
            json!({"principal_tags": {"aws:team": ["a"]}}),
            "InvalidIdentityToken",
        ),
        (
            "a key of 129 characters",
            json!({"principal_tags": {"k".repeat(129): ["a"]}}),
            "InvalidIdentityToken",
        ),
        (
            "a value of 257 characters",
            json!({"principal_tags": {"team": ["v".repeat(257)]}}),
            "InvalidIdentityToken",
        ),
        (
            "a value with a character outside the charset",
            json!({"principal_tags": {"team": ["photos;rm"]}}),
            "InvalidIdentityToken",
        ),
        (
            "51 tags",
            json!({ "principal_tags": many }),
            "InvalidIdentityToken",
        ),
        (
            "a transitive key without a tag",
            json!({"principal_tags": {"team": ["a"]}, "transitive_tag_keys": ["cost"]}),
            "InvalidIdentityToken",
        ),
        (
            "transitive keys not an array",
            json!({"principal_tags": {"team": ["a"]}, "transitive_tag_keys": "team"}),
            "InvalidIdentityToken",
        ),
        (
            "an unknown member",
            json!({"principal_tags": {"team": ["a"]}, "session_tags": {}}),
            "InvalidIdentityToken",
        ),
        (
            "tags too large to pack",
            json!({ "principal_tags": big }),
            "PackedPolicyTooLarge",
        ),
    ];
    for (what, tags, code) in cases {
        let token = key.sign("k1", &tagged_claims(&issuer, "alice", tags));
        let (s, b) = assume_with(&e, TAGGED_ROLE_ARN, &token, &[]).await;
        assert_eq!((s, xml_code(&b).as_str()), (400, code), "{what}: {b}");
    }
    // The role accepts well-formed tags: the refusals above were the shapes'.
    let token = key.sign("k1", &tagged_claims(&issuer, "alice", team));
    let (s, b) = assume_with(&e, TAGGED_ROLE_ARN, &token, &[]).await;
    assert_eq!(s, 200, "{b}");
    // AWS's API has no Tags parameter here: the token carries the tags.
    for extra in [
        [("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "x")].as_slice(),
        [("TransitiveTagKeys.member.1", "team")].as_slice(),
    ] {
        let (s, b) = assume_with(&e, TAGGED_ROLE_ARN, &token, extra).await;
        assert_eq!((s, xml_code(&b)), (400, "ValidationError".into()), "{b}");
        assert!(b.contains("https://aws.amazon.com/tags"), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_provider_maps_plain_claims_to_session_tags() {
    let key = Key::ed();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let declared = issuer.declared("tag_claims = { team = \"team\", cost = \"cost_center\" }");
    let h = Harness::embedded_with(&declared).await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    tagged_roles(&e, &issuer).await;
    // `team` comes from the plain claim (issuer.claims sets it to "photos");
    // `cost_center` is absent, so there is no `cost` tag.
    let (s, body) = assume_with(
        &e,
        TAGGED_ROLE_ARN,
        &key.sign("k1", &issuer.claims("alice")),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (k, sk, t) = creds(&body);
    let session = s3_session_client(&e, &k, &sk, Some(&t));
    put_shared(&session, "photos/a.jpg").await.unwrap();
    assert_eq!(
        put_shared(&session, "cost-/a.jpg").await.unwrap_err(),
        "AccessDenied"
    );
    // A mapped claim that is not a string refuses the token.
    let mut claims = issuer.claims("alice");
    claims["cost_center"] = json!(42);
    let (s, b) = assume_with(&e, TAGGED_ROLE_ARN, &key.sign("k1", &claims), &[]).await;
    assert_eq!(
        (s, xml_code(&b)),
        (400, "InvalidIdentityToken".into()),
        "{b}"
    );
    // A mapped claim and AWS's claim naming the same tag key collide.
    let claims = tagged_claims(
        &issuer,
        "alice",
        json!({"principal_tags": {"TEAM": ["video"]}}),
    );
    let (s, b) = assume_with(&e, TAGGED_ROLE_ARN, &key.sign("k1", &claims), &[]).await;
    assert_eq!(
        (s, xml_code(&b)),
        (400, "InvalidIdentityToken".into()),
        "{b}"
    );
}
