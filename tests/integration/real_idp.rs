//! AssumeRoleWithWebIdentity against a real OpenID provider: panva's
//! oidc-provider (`tests/clients/oidc-provider.mjs`, from npm) on loopback
//! over HTTPS, its certificate trusted through `[federation] ca_file`. ID
//! tokens come out of the provider's own authorization code flow with PKCE,
//! its login form filled over HTTP as a browser would fill it; boto3 and the
//! aws CLI trade them through their own web-identity credential providers
//! and stay within the subject's prefix. A restart of the provider rotates
//! its keys: s3warden fetches the new ones for a token naming a new key id,
//! and tokens signed by the retired key are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::*;
use crate::web_identity::{assume_role, aws_cli_workload, boto3_workload};

/// The provider of `tests/clients/oidc-provider.mjs` on
/// `https://localhost:PORT`; stopped when dropped.
pub struct OpenIdProvider {
    child: tokio::process::Child,
    pub issuer: String,
    /// `HOST/PATH`: the provider's ARN suffix and condition key prefix.
    pub host_path: String,
    /// Its certificate (self-signed for `localhost`): the CA to trust.
    pub ca_file: PathBuf,
    key_file: PathBuf,
    port: u16,
    clients: Vec<String>,
    dir: TempDir,
}

impl OpenIdProvider {
    /// Starts the provider with these clients, each
    /// `(client_id, redirect_uri, id token alg)`.
    pub async fn start(clients: &[(&str, &str, &str)]) -> OpenIdProvider {
        let dir = TempDir::new().unwrap();
        let (ca_file, key_file, _) = self_signed_cert(dir.path());
        let clients: Vec<String> = clients
            .iter()
            .map(|(id, redirect, alg)| format!("{id},{redirect},{alg}"))
            .collect();
        // Port 0: the provider binds a free port and names it in its issuer.
        let (child, issuer) = spawn(0, &ca_file, &key_file, &clients, dir.path()).await;
        let host_path = issuer.trim_start_matches("https://").to_string();
        let port = host_path.trim_start_matches("localhost:").parse().unwrap();
        OpenIdProvider {
            child,
            issuer,
            host_path,
            ca_file,
            key_file,
            port,
            clients,
            dir,
        }
    }

    /// Stops the provider and starts it again on the same port, with signing
    /// keys of its own making: a key rotation.
    pub async fn restart(&mut self) {
        self.child.kill().await.unwrap();
        (self.child, _) = spawn(
            self.port,
            &self.ca_file,
            &self.key_file,
            &self.clients,
            self.dir.path(),
        )
        .await;
    }

    pub fn provider_arn(&self) -> String {
        format!("arn:aws:iam::000000000000:oidc-provider/{}", self.host_path)
    }

    /// The `[federation]` section trusting this provider's certificate.
    pub fn federation_config(&self, refetch_secs: u64) -> String {
        format!(
            "\n[federation]\nca_file = \"{}\"\njwks_refetch_secs = {refetch_secs}\n",
            self.ca_file.display()
        )
    }

    /// Signs `login` in through the provider's authorization code flow with
    /// PKCE, as `client_id` redirecting to `redirect_uri`, and returns the ID
    /// token the provider's token endpoint gives for the code. Over HTTP: the
    /// provider's redirects are followed and its login form posted, with its
    /// cookies kept, as a browser would.
    pub async fn sign_in(&self, client_id: &str, redirect_uri: &str, login: &str) -> String {
        let pem = std::fs::read(&self.ca_file).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let discovery = json_of(
            http.get(format!("{}/.well-known/openid-configuration", self.issuer))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let endpoint = |name: &str| discovery[name].as_str().unwrap().to_string();
        let (verifier, state, nonce) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            verifier.as_bytes(),
        ));
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let mut url = format!("{}?{query}", endpoint("authorization_endpoint"));
        let mut jar = Jar::default();
        let mut logged_in = false;
        let back = loop {
            let resp = jar.send(http.get(&url)).await;
            match resp.status().as_u16() {
                302 | 303 => {
                    let to = location(&resp, &self.issuer);
                    if to.starts_with(redirect_uri) {
                        break to;
                    }
                    url = to;
                }
                200 if !logged_in => {
                    // The provider's login page: any login name, any password.
                    let page = resp.text().await.unwrap();
                    assert!(page.contains(r#"name="login""#), "not a login page: {page}");
                    let action = page
                        .split(r#"action=""#)
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .expect("the login form's action")
                        .to_string();
                    let form = [("prompt", "login"), ("login", login), ("password", "any")];
                    let resp = jar.send(post_form(&http, &action, &form)).await;
                    assert_eq!(resp.status(), 303, "the login form was not accepted");
                    url = location(&resp, &self.issuer);
                    logged_in = true;
                }
                s => panic!("{url}: unexpected {s}: {}", resp.text().await.unwrap()),
            }
        };
        let query = back.split_once('?').map_or("", |(_, q)| q);
        let answer: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(answer.get("state"), Some(&state), "{back}");
        assert_eq!(answer.get("iss"), Some(&self.issuer), "{back}");
        let code = answer.get("code").expect("an authorization code");
        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &verifier),
        ];
        let token = json_of(
            post_form(&http, &endpoint("token_endpoint"), &exchange)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let id_token = token["id_token"].as_str().expect("an id_token").to_string();
        assert_eq!(jwt_part(&id_token, 1)["nonce"], nonce.as_str());
        id_token
    }
}

/// Starts the provider's process and waits for its ready line; returns it
/// and its issuer. A start that prints nothing within the bound is killed
/// and made once more: under the full suite one start (a restart on the same
/// port) stayed silent for the whole 90 s where it takes under a second.
async fn spawn(
    port: u16,
    cert: &Path,
    key: &Path,
    clients: &[String],
    dir: &Path,
) -> (tokio::process::Child, String) {
    let mut silent = String::new();
    for attempt in 1..=2 {
        match spawn_once(port, cert, key, clients, dir).await {
            Ok(started) => return started,
            Err(why) => silent.push_str(&format!("attempt {attempt}: {why}\n")),
        }
    }
    panic!("the OpenID provider did not start:\n{silent}");
}

async fn spawn_once(
    port: u16,
    cert: &Path,
    key: &Path,
    clients: &[String],
    dir: &Path,
) -> Result<(tokio::process::Child, String), String> {
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients"))
        .arg("oidc-provider.mjs")
        .arg("--port")
        .arg(port.to_string())
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key);
    for c in clients {
        cmd.arg("--client").arg(c);
    }
    let log = dir.join("provider.log");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs tests/clients/oidc-provider.mjs (scripts/test runs npm ci)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Node's start on a machine busy with the rest of the suite has taken
    // most of 30 s; the bound is there to fail a provider that never starts.
    let ready = tokio::time::timeout(Duration::from_secs(90), lines.next_line()).await;
    let issuer = match ready {
        Ok(Ok(Some(line))) if line.starts_with("ready https://localhost:") => line[6..].to_string(),
        other => {
            let _ = child.kill().await;
            return Err(format!(
                "{other:?}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
    };
    // Whatever else it prints is read, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, issuer))
}

fn post_form(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

async fn json_of(resp: reqwest::Response) -> Value {
    let (status, text) = (resp.status(), resp.text().await.unwrap());
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn random() -> String {
    let mut b = [0u8; 32];
    SystemRandom::new().fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

/// Part `i` of a compact JWS (0: header, 1: claims), as JSON.
pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Where a redirect goes, made absolute against `origin`.
fn location(resp: &reqwest::Response, origin: &str) -> String {
    let to = resp.headers()["location"].to_str().unwrap();
    if to.starts_with('/') {
        format!("{origin}{to}")
    } else {
        to.to_string()
    }
}

/// The provider's cookies, by name. It scopes some to one interaction's
/// path; one sign-in at a time never holds two of a name.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self
            .0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let resp = req.header("cookie", cookie).send().await.unwrap();
        for set in resp.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                self.0.insert(k.trim().to_string(), v.to_string());
            }
        }
        resp
    }
}

const WEB_APP: &str = "photo-app";
const CLI_APP: &str = "ci-jobs";
/// Never visited: the flow stops at the redirect and takes the code.
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/own-prefix";

/// Trusts the provider for both clients, and a role any of its subjects may
/// assume that writes and reads `shared/users/${HOST/PATH:sub}/*`.
async fn provider_and_role(e: &str, idp: &OpenIdProvider) {
    let hp = &idp.host_path;
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": idp.provider_arn()},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{hp}:aud"): [WEB_APP, CLI_APP]}}
    }]});
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
        "Resource": format!("arn:aws:s3:::shared/users/${{{hp}:sub}}/*")
    }]});
    let (trust, policy) = (trust.to_string(), policy.to_string());
    for params in [
        vec![
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", idp.issuer.as_str()),
            ("ClientIDList.member.1", WEB_APP),
            ("ClientIDList.member.2", CLI_APP),
        ],
        vec![
            ("Action", "CreateRole"),
            ("RoleName", "own-prefix"),
            ("AssumeRolePolicyDocument", &trust),
        ],
        vec![
            ("Action", "PutRolePolicy"),
            ("RoleName", "own-prefix"),
            ("PolicyName", "own-prefix"),
            ("PolicyDocument", &policy),
        ],
    ] {
        let (s, b) = api_call(e, "iam", &params).await;
        assert_eq!(s, 200, "{params:?}: {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_providers_tokens_sign_boto3_and_the_aws_cli_in_within_the_subjects_prefix() {
    let mut idp =
        OpenIdProvider::start(&[(WEB_APP, REDIRECT, "RS256"), (CLI_APP, REDIRECT, "ES256")]).await;
    let h = Harness::embedded_with(&idp.federation_config(0)).await;
    let e = h.endpoint();
    shared_bucket(&e).await;
    provider_and_role(&e, &idp).await;

    let alice = idp.sign_in(WEB_APP, REDIRECT, "alice").await;
    let bob = idp.sign_in(CLI_APP, REDIRECT, "bob").await;
    assert_eq!(jwt_part(&alice, 0)["alg"], "RS256");
    assert_eq!(jwt_part(&bob, 0)["alg"], "ES256");
    let session_arn = "arn:aws:sts::000000000000:assumed-role/own-prefix/ci-job";

    // boto3 as alice: her prefix, not bob's.
    let alice_file = h.dir.path().join("alice/token");
    std::fs::create_dir_all(alice_file.parent().unwrap()).unwrap();
    std::fs::write(&alice_file, &alice).unwrap();
    let me = boto3_workload(&e, &alice_file, ROLE_ARN, "users/alice/", "users/bob/").await;
    assert_eq!(me, session_arn);

    // The aws CLI as bob: his prefix, not alice's.
    let bob_file = h.dir.path().join("bob/token");
    std::fs::create_dir_all(bob_file.parent().unwrap()).unwrap();
    std::fs::write(&bob_file, &bob).unwrap();
    let me = aws_cli_workload(
        &h,
        &bob_file,
        ROLE_ARN,
        "users/bob/cli.txt",
        "users/alice/cli.txt",
    )
    .await;
    assert_eq!(me, session_arn);

    // The provider restarts with new keys: a token naming the new key id
    // makes s3warden fetch them; the retired key's tokens no longer verify.
    idp.restart().await;
    let carol = idp.sign_in(WEB_APP, REDIRECT, "carol").await;
    assert_ne!(jwt_part(&carol, 0)["kid"], jwt_part(&alice, 0)["kid"]);
    let (s, body) = assume_role(&e, ROLE_ARN, "carol", &carol).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(xml_text(&body, "SubjectFromWebIdentityToken"), "carol");
    assert_eq!(xml_text(&body, "Provider"), idp.host_path);
    assert_eq!(xml_text(&body, "Audience"), WEB_APP);
    let (s, body) = assume_role(&e, ROLE_ARN, "alice", &alice).await;
    assert_eq!(
        (s, xml_code(&body)),
        (400, "InvalidIdentityToken".into()),
        "{body}"
    );
}
