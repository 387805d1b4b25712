//! The browser-upload example end to end: s3warden on the example's own
//! config, the example backend (examples/browser-upload/app.py, Flask), and
//! headless Chromium (Debian's, installed by scripts/test) driving the page
//! as a person would, through either way of signing in: by name (the backend
//! issues federated credentials with its issuer key) or with OpenID at a real
//! provider (oidc-provider, see real_idp.rs; the backend trades the ID token
//! for a role session and holds no key at all). The file must land upstream
//! under the person's prefix, and the audit log must name who uploaded it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::real_idp::OpenIdProvider;
use crate::web_identity::{assert_web_identity_audit, assume_role};

const ROOT: (&str, &str) = (
    "S3WARDENUPLOADSROOT1",
    "uploads-root-secret-change-me-000000000000",
);
const ISSUER: (&str, &str) = (
    "S3WARDENUPLOADISSUE1",
    "uploads-issuer-secret-change-me-00000000",
);
/// What the example's files name: the provider, its client, the role.
const EXAMPLE_IDP: &str = "localhost:8443";
const CLIENT_ID: &str = "browser-upload";
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/browser-uploader";

/// Kills the backend when the test ends, however it ends.
struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(url: &str) {
    for _ in 0..200 {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered");
}

fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/browser-upload")
}

/// The example running: s3warden and the backend.
struct Example {
    h: Harness,
    endpoint: String,
    origin: String,
    _backend: Backend,
}

impl Example {
    /// s3warden on the example's config as shipped — its data in a temporary
    /// directory, any free port, the backend's origin allowed by `[cors]`,
    /// and `idp` as its OpenID provider (without one, only the provider
    /// certificate the config names is made) — with the bucket created; then
    /// the backend on `app_port` with `env`.
    async fn start(app_port: u16, idp: Option<&OpenIdProvider>, env: &[(&str, &str)]) -> Example {
        let dir = tempfile::TempDir::new().unwrap();
        let origin = format!("http://127.0.0.1:{app_port}");
        let mut text = std::fs::read_to_string(example_dir().join("s3warden.toml")).unwrap();
        match idp {
            Some(idp) => {
                text = text
                    .replace(
                        "./data/browser-upload/idp-cert.pem",
                        &idp.ca_file.display().to_string(),
                    )
                    .replace(EXAMPLE_IDP, &idp.host_path);
            }
            None => {
                let (cert, _, _) = self_signed_cert(dir.path());
                std::fs::rename(cert, dir.path().join("idp-cert.pem")).unwrap();
            }
        }
        let text = text
            .replace(
                "./data/browser-upload/",
                &format!("{}/", dir.path().display()),
            )
            .replace("127.0.0.1:9000", "127.0.0.1:0")
            .replace("http://127.0.0.1:8000", &origin);
        let h = Harness::start(dir, &text).await;
        let endpoint = h.endpoint();
        s3_client(&endpoint, ROOT.0, ROOT.1)
            .create_bucket()
            .bucket("uploads")
            .send()
            .await
            .unwrap();
        let backend = Backend(
            Command::new("python3")
                .arg(example_dir().join("app.py"))
                .args(["--endpoint", &endpoint, "--port", &app_port.to_string()])
                .envs(env.iter().copied())
                .env("AWS_CONFIG_FILE", "/nonexistent")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 runs the example backend (scripts/test installs Flask)"),
        );
        wait_for(&format!("{origin}/")).await;
        Example {
            h,
            endpoint,
            origin,
            _backend: backend,
        }
    }

    /// Signs `user` in on the page (with OpenID when `idp` is given), uploads
    /// a file of `size` bytes, and checks what the person saw: success, the
    /// progress bar run to the end, one POST to s3warden answered 204 with
    /// CORS headers for the page; and the bytes upstream under `user/`.
    /// Returns what the browser saw.
    async fn upload_in_browser(
        &self,
        user: &str,
        size: usize,
        idp: Option<&OpenIdProvider>,
    ) -> Value {
        let data = pattern(size);
        let file = self.h.dir.path().join("holiday photo.jpg");
        std::fs::write(&file, &data).unwrap();
        let mut cmd = Command::new("node");
        cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients"))
            .arg("browser_upload.mjs")
            .arg(&self.origin)
            .arg(user)
            .arg(&file);
        if let Some(idp) = idp {
            cmd.arg("openid").env("IDP_CERT", &idp.ca_file);
        }
        let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
            .await
            .unwrap();
        let seen: Value = serde_json::from_str(out.trim()).unwrap();

        assert_eq!(seen["status"], "Uploaded holiday photo.jpg.", "{seen}");
        assert_eq!(seen["where"], format!("uploads/{user}/"));
        let progress: Vec<u64> = seen["progress"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert_eq!(progress.last(), Some(&100), "{seen}");
        let uploads = seen["uploads"].as_array().unwrap();
        assert_eq!(uploads.len(), 1, "{seen}");
        assert_eq!(uploads[0]["url"], format!("{}/uploads", self.endpoint));
        assert_eq!(uploads[0]["status"], 204);
        assert_eq!(
            uploads[0]["headers"]["access-control-allow-origin"],
            self.origin.as_str()
        );
        let got = s3_client(&self.endpoint, ROOT.0, ROOT.1)
            .get_object()
            .bucket("uploads")
            .key(format!("{user}/holiday photo.jpg"))
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert!(got == data, "the stored object differs from the file");
        seen
    }

    /// The audit record of the upload, checked for what every upload's
    /// record says; the caller checks who it names.
    async fn upload_record(&self, user: &str, size: usize) -> Value {
        let key = format!("{user}/holiday photo.jpg");
        let mut found = None;
        for _ in 0..100 {
            found = self
                .h
                .audit(0)
                .await
                .into_iter()
                .find(|r| r["operation"] == "PostObject" && r["key"] == key.as_str());
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let record = found.expect("an audit record for the upload");
        assert_eq!(record["status"], 204);
        assert_eq!(record["bucket"], "uploads");
        assert_eq!(record["auth"]["kind"], "post-form");
        assert_eq!(record["auth"]["signature_version"], "AWS");
        assert_eq!(record["decision"]["allowed"], true);
        assert!(record["bytes_in"].as_u64().unwrap() > size as u64);
        record
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uploads_a_file_from_the_example_page() {
    let size = 3 * 1024 * 1024 + 17;
    let env = [
        ("ISSUER_ACCESS_KEY_ID", ISSUER.0),
        ("ISSUER_SECRET_ACCESS_KEY", ISSUER.1),
    ];
    let app = Example::start(free_port(), None, &env).await;
    let seen = app.upload_in_browser("carol", size, None).await;
    assert_eq!(seen["signedInAt"], app.origin.as_str());

    // Its audit record names the federated user.
    let record = app.upload_record("carol", size).await;
    assert!(
        record["principal"]["arn"]
            .as_str()
            .unwrap()
            .ends_with(":federated-user/carol"),
        "{record}"
    );
    app.h.server.shutdown().await;
}

/// Creates the example's role from its files, for the provider `idp`.
async fn example_role(e: &str, idp: &OpenIdProvider) {
    let file = |name: &str| {
        std::fs::read_to_string(example_dir().join(name))
            .unwrap()
            .replace(EXAMPLE_IDP, &idp.host_path)
    };
    let (trust, policy) = (file("oidc-role-trust.json"), file("oidc-role-policy.json"));
    for params in [
        vec![
            ("Action", "CreateRole"),
            ("RoleName", "browser-uploader"),
            ("AssumeRolePolicyDocument", &trust),
        ],
        vec![
            ("Action", "PutRolePolicy"),
            ("RoleName", "browser-uploader"),
            ("PolicyName", "own-prefix"),
            ("PolicyDocument", &policy),
        ],
    ] {
        let (s, b) = api_call_as(e, "iam", &params, ROOT.0, ROOT.1, None).await;
        assert_eq!(s, 200, "{params:?}: {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_openid_and_uploads_with_no_long_term_key() {
    let app_port = free_port();
    let redirect = format!("http://127.0.0.1:{app_port}/oidc/callback");
    let idp = OpenIdProvider::start(&[(CLIENT_ID, &redirect, "RS256")]).await;
    let ca = idp.ca_file.display().to_string();
    // No issuer key: signing in by name is off.
    let env = [("OIDC_ISSUER", idp.issuer.as_str()), ("OIDC_CA_FILE", &ca)];
    let app = Example::start(app_port, Some(&idp), &env).await;
    example_role(&app.endpoint, &idp).await;
    let by_name = reqwest::Client::new()
        .post(format!("{}/signin", app.origin))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=dave")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 404);

    let size = 256 * 1024 + 3;
    let seen = app.upload_in_browser("dave", size, Some(&idp)).await;
    assert_eq!(
        seen["signedInAt"],
        idp.issuer.as_str(),
        "the provider's page"
    );

    // The upload's record names the web-identity session, and the trade of
    // the token is recorded as an unsigned call that the trust allowed.
    let record = app.upload_record("dave", size).await;
    let session = "arn:aws:sts::000000000000:assumed-role/browser-uploader/dave";
    assert_web_identity_audit(&record, session, &app.h.audit(0).await);

    // A second person, signed in at the same provider for the same app and
    // role, writes under their own prefix and not under dave's.
    let erin = idp.sign_in(CLIENT_ID, &redirect, "erin").await;
    let (s, body) = assume_role(&app.endpoint, ROLE_ARN, "erin", &erin).await;
    assert_eq!(s, 200, "{body}");
    let as_erin = sts_session_client(&app.endpoint, &body);
    let put = |key: &'static str| {
        as_erin
            .put_object()
            .bucket("uploads")
            .key(key)
            .body(b"from erin".to_vec().into())
            .send()
    };
    put("erin/note.txt").await.unwrap();
    let refused = put("dave/note.txt").await.unwrap_err();
    assert_eq!(error_code(&refused), "AccessDenied");
    app.h.server.shutdown().await;
}
