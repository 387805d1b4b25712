//! A fleet on one PostgreSQL identity store: three s3warden instances on
//! loopback in front of one embedded S3 store, each test with a database of
//! its own (created and dropped here) on the PostgreSQL server at
//! 127.0.0.1:5432 (`.ci/run` starts it when it is not running).
//!
//! Changes made through any instance reach the others within a second; IAM
//! writes are fleet-wide transactions; sessions cross instances; a lost
//! database leaves S3 traffic untouched and refuses IAM writes with 503
//! until it returns; an unreachable database at start is a clear error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use s3warden::config::Config;
use s3warden::embedded::{EmbeddedConfig, EmbeddedStore};
use s3warden::server::Server;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const SHARED_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::shared/*"}]}"#;
const FEDERATE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetFederationToken","Resource":"*"}]}"#;
/// What "visible on every instance" must take at most.
const PROPAGATION: Duration = Duration::from_secs(1);

/// A database of the test's own, dropped with it.
pub struct TestDb {
    pub name: String,
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(ADMIN_URL, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (scripts/test and .ci/run start it)");
    tokio::spawn(conn);
    client
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("s3warden_test_{}", uuid::Uuid::new_v4().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDb { name }
    }

    /// The URL through a given port (a relay, or the server's own). Plain
    /// TCP on loopback: with TLS, s3warden verifies the server's certificate,
    /// and a local server's is typically issued for another name.
    pub fn url_via(&self, port: u16) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{port}/{}?sslmode=disable",
            self.name
        )
    }

    pub fn url(&self) -> String {
        self.url_via(5432)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; the database goes in a thread
        // with a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    let _ = admin()
                        .await
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                })
        })
        .join();
    }
}

/// A config for one fleet instance.
pub fn fleet_config(shared: &Path, own: &Path, upstream: &str, db_url: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"

[root]
access_key_id = "{ROOT_KEY}"
secret_access_key = "{ROOT_SECRET}"

[upstream]
endpoint = "{upstream}"
access_key_id = "{UPSTREAM_KEY}"
secret_access_key = "{UPSTREAM_SECRET}"

[audit]
path = "{audit}"

[store]
url = "{db_url}"
poll_interval_ms = 200
reconcile_secs = 2

[sessions]
key_file = "{key_file}"
"#,
        audit = own.join("audit.jsonl").display(),
        key_file = shared.join("session.key").display(),
    )
}

/// Three instances, one database, one S3 store.
pub struct Fleet {
    pub instances: Vec<Server>,
    pub s3: EmbeddedStore,
    pub db: TestDb,
    pub dir: TempDir,
}

impl Fleet {
    pub async fn start(n: usize) -> Fleet {
        Fleet::start_via(n, None).await
    }

    /// With the instances reaching PostgreSQL through `port` (a relay).
    pub async fn start_via(n: usize, port: Option<u16>) -> Fleet {
        Fleet::start_configured(n, port, "").await
    }

    /// With `extra` appended to every instance's config.
    pub async fn start_with(n: usize, extra: &str) -> Fleet {
        Fleet::start_configured(n, None, extra).await
    }

    async fn start_configured(n: usize, port: Option<u16>, extra: &str) -> Fleet {
        let dir = TempDir::new().unwrap();
        let db = TestDb::create().await;
        let s3 = EmbeddedStore::start(EmbeddedConfig {
            data_dir: dir.path().join("objects"),
            region: "us-east-1".into(),
            access_key_id: UPSTREAM_KEY.into(),
            secret_access_key: UPSTREAM_SECRET.into(),
        })
        .await
        .unwrap();
        let url = port.map(|p| db.url_via(p)).unwrap_or_else(|| db.url());
        let mut instances = Vec::new();
        for i in 0..n {
            let own = dir.path().join(format!("instance{i}"));
            std::fs::create_dir_all(&own).unwrap();
            let text = fleet_config(dir.path(), &own, &s3.endpoint(), &url) + extra;
            let config = Config::from_toml(&text, Path::new("fleet.toml"), &own).unwrap();
            instances.push(Server::start(config).await.unwrap());
        }
        Fleet {
            instances,
            s3,
            db,
            dir,
        }
    }

    pub fn endpoint(&self, i: usize) -> String {
        self.instances[i].endpoint()
    }
}

async fn iam(e: &str, params: &[(&str, &str)]) -> (u16, String) {
    api_call(e, "iam", params).await
}

async fn iam_ok(e: &str, params: &[(&str, &str)]) -> String {
    let (s, b) = iam(e, params).await;
    assert_eq!(s, 200, "{params:?}: {b}");
    b
}

/// Polls `check` until it holds; returns how long that took, failing the
/// test once `limit` has passed.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Makes `name` with a key, in group `writers` (which may write `shared/*`).
async fn writer(e: &str, name: &str) -> (String, String) {
    iam_ok(e, &[("Action", "CreateUser"), ("UserName", name)]).await;
    iam_ok(
        e,
        &[
            ("Action", "AddUserToGroup"),
            ("GroupName", "writers"),
            ("UserName", name),
        ],
    )
    .await;
    let k = iam_ok(e, &[("Action", "CreateAccessKey"), ("UserName", name)]).await;
    (xml_text(&k, "AccessKeyId"), xml_text(&k, "SecretAccessKey"))
}

async fn writers_group(e: &str) {
    iam_ok(e, &[("Action", "CreateGroup"), ("GroupName", "writers")]).await;
    iam_ok(
        e,
        &[
            ("Action", "PutGroupPolicy"),
            ("GroupName", "writers"),
            ("PolicyName", "shared"),
            ("PolicyDocument", SHARED_POLICY),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_made_on_one_instance_works_on_the_others_and_a_group_removal_denies_everywhere() {
    let f = Fleet::start(3).await;
    let (a, b, c) = (f.endpoint(0), f.endpoint(1), f.endpoint(2));
    shared_bucket(&a).await;
    writers_group(&a).await;
    let (k, s) = writer(&a, "dave").await;
    for e in [&b, &c] {
        let client = s3_client(e, &k, &s);
        within(PROPAGATION, "a new user's key on another instance", || {
            let client = client.clone();
            async move { put_shared(&client, "dave/one").await.is_ok() }
        })
        .await;
    }
    // Removal from the group through one instance denies on every other.
    iam_ok(
        &b,
        &[
            ("Action", "RemoveUserFromGroup"),
            ("GroupName", "writers"),
            ("UserName", "dave"),
        ],
    )
    .await;
    for e in [&a, &c] {
        let client = s3_client(e, &k, &s);
        within(PROPAGATION, "a group removal on another instance", || {
            let client = client.clone();
            async move { put_shared(&client, "dave/two").await == Err("AccessDenied".into()) }
        })
        .await;
    }
    // Reads through any instance show the same directory.
    for e in [&a, &b, &c] {
        let g = iam_ok(e, &[("Action", "GetGroup"), ("GroupName", "writers")]).await;
        assert!(!g.contains("<UserName>dave</UserName>"), "{e}: {g}");
        let u = iam_ok(e, &[("Action", "GetUser"), ("UserName", "dave")]).await;
        assert!(u.contains("<UserName>dave</UserName>"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_writes_are_fleet_wide_transactions_one_already_exists_and_quotas_hold() {
    let f = Fleet::start(3).await;
    let e: Vec<String> = (0..3).map(|i| f.endpoint(i)).collect();
    for round in 0..5 {
        let name = format!("twin{round}");
        let params = [("Action", "CreateUser"), ("UserName", name.as_str())];
        let (x, y) = tokio::join!(iam(&e[0], &params), iam(&e[1], &params));
        let mut statuses = [x.0, y.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{x:?} {y:?}");
        let loser = if x.0 == 409 { &x.1 } else { &y.1 };
        assert_eq!(xml_code(loser), "EntityAlreadyExists");
    }
    // Two access keys per user, asked for through three instances at once.
    iam_ok(&e[0], &[("Action", "CreateUser"), ("UserName", "keyed")]).await;
    let params = [("Action", "CreateAccessKey"), ("UserName", "keyed")];
    let (x, y, z) = tokio::join!(
        iam(&e[0], &params),
        iam(&e[1], &params),
        iam(&e[2], &params)
    );
    let ok = [&x, &y, &z].iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = [&x, &y, &z]
        .iter()
        .filter(|r| r.0 != 200)
        .map(|r| xml_code(&r.1))
        .collect();
    assert_eq!(ok, 2, "{x:?} {y:?} {z:?}");
    assert_eq!(refused, ["LimitExceeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_issued_by_one_instance_works_on_another_and_a_revocation_through_a_third_ends_it()
 {
    let f = Fleet::start(3).await;
    let (a, b, c) = (f.endpoint(0), f.endpoint(1), f.endpoint(2));
    shared_bucket(&a).await;
    writers_group(&a).await;
    let (k, s) = writer(&a, "issuer").await;
    iam_ok(
        &a,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "issuer"),
            ("PolicyName", "federate"),
            ("PolicyDocument", FEDERATE_POLICY),
        ],
    )
    .await;
    let (status, body) = api_call_as(
        &a,
        "sts",
        &[
            ("Action", "GetFederationToken"),
            ("Name", "visitor"),
            ("Policy", SHARED_POLICY),
        ],
        &k,
        &s,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (sk, ss, st) = (
        xml_text(&body, "AccessKeyId"),
        xml_text(&body, "SecretAccessKey"),
        xml_text(&body, "SessionToken"),
    );
    let on_b = s3_session_client(&b, &sk, &ss, Some(&st));
    within(PROPAGATION, "a session on another instance", || {
        let on_b = on_b.clone();
        async move { put_shared(&on_b, "visitor/one").await.is_ok() }
    })
    .await;
    iam_ok(&c, &[("Action", "RevokeSessions"), ("UserName", "issuer")]).await;
    for e in [&a, &b] {
        let client = s3_session_client(e, &sk, &ss, Some(&st));
        within(PROPAGATION, "a revocation on another instance", || {
            let client = client.clone();
            async move { put_shared(&client, "visitor/two").await.is_err() }
        })
        .await;
    }
    // The issuer's own key is untouched.
    put_shared(&s3_client(&b, &k, &s), "issuer/own")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_identity_session_crosses_instances_and_revocation_or_provider_deletion_reaches_all()
{
    use crate::web_identity::{Issuer, Key, assume, caller_identity, creds, provider_and_role};
    let key = Key::ed();
    let issuer = Issuer::start(vec![key.jwk("k1")]).await;
    let f = Fleet::start_with(3, &issuer.config(60)).await;
    let (a, b, c) = (f.endpoint(0), f.endpoint(1), f.endpoint(2));
    shared_bucket(&a).await;
    // Provider and role made through instance 1 ...
    provider_and_role(&a, &issuer).await;
    // ... a session assumed through instance 2 ...
    let token = key.sign("k1", &issuer.claims("alice"));
    let answer = Arc::new(std::sync::Mutex::new(String::new()));
    let took = within(PROPAGATION, "provider and role on instance 2", || {
        let (b, token, answer) = (b.clone(), token.clone(), answer.clone());
        async move {
            let (s, got) = assume(&b, &token).await;
            *answer.lock().unwrap() = got;
            s == 200
        }
    })
    .await;
    eprintln!("provider and role usable on instance 2 after {took:?}");
    let body = answer.lock().unwrap().clone();
    let (k, sk, t) = creds(&body);
    // ... works on instance 3, within the role's policy.
    let on_c = s3_session_client(&c, &k, &sk, Some(&t));
    let took = within(PROPAGATION, "the session on instance 3", || {
        let on_c = on_c.clone();
        async move { put_shared(&on_c, "web/from-c.jpg").await.is_ok() }
    })
    .await;
    eprintln!("the session works on instance 3 after {took:?}");
    assert_eq!(
        put_shared(&on_c, "private/from-c.jpg").await.unwrap_err(),
        "AccessDenied"
    );
    assert_eq!(
        xml_text(&caller_identity(&c, &k, &sk, &t).await, "Arn"),
        "arn:aws:sts::000000000000:assumed-role/web-uploader/alice-laptop"
    );

    // Revoking the role's sessions through instance 1 ends it everywhere.
    iam_ok(
        &a,
        &[("Action", "RevokeSessions"), ("RoleName", "web-uploader")],
    )
    .await;
    for e in [&b, &c] {
        let client = s3_session_client(e, &k, &sk, Some(&t));
        let took = within(
            PROPAGATION,
            "a role's revocation on another instance",
            || {
                let client = client.clone();
                async move { put_shared(&client, "web/after-revoke.jpg").await.is_err() }
            },
        )
        .await;
        eprintln!("role sessions revoked on {e} after {took:?}");
    }
    // A new session is issued after the revocation and works.
    let (s, fresh) = assume(&b, &token).await;
    assert_eq!(s, 200, "{fresh}");
    let (fk, fsk, ft) = creds(&fresh);
    let fresh = s3_session_client(&c, &fk, &fsk, Some(&ft));
    put_shared(&fresh, "web/fresh.jpg").await.unwrap();

    // Deleting the provider through instance 3: no instance accepts its tokens.
    iam_ok(
        &c,
        &[
            ("Action", "DeleteOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", &issuer.provider_arn()),
        ],
    )
    .await;
    for e in [&a, &b] {
        let took = within(
            PROPAGATION,
            "a provider's deletion on another instance",
            || {
                let (e, token) = (e.to_string(), token.clone());
                async move {
                    let (s, got) = assume(&e, &token).await;
                    s == 400 && xml_code(&got) == "InvalidIdentityToken"
                }
            },
        )
        .await;
        eprintln!("provider deletion seen on {e} after {took:?}");
    }
}

/// A TCP relay to PostgreSQL that a test can cut (every connection dropped,
/// new ones refused) and restore.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let mut cuts = cuts.clone();
                // Only cuts from now on end this connection.
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Relay { port, up, cut }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn readyz(server: &Server) -> (u16, String) {
    let url = format!("http://{}/readyz", server.metrics_addr().unwrap());
    let r = reqwest::get(&url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_postgres_keeps_s3_going_refuses_iam_writes_and_the_fleet_converges_when_it_returns()
{
    let relay = Relay::start().await;
    let f = Fleet::start_via(2, Some(relay.port)).await;
    let (a, b) = (f.endpoint(0), f.endpoint(1));
    shared_bucket(&a).await;
    writers_group(&a).await;
    let (k, s) = writer(&a, "steady").await;
    let on_b = s3_client(&b, &k, &s);
    within(PROPAGATION, "the user on B", || {
        let on_b = on_b.clone();
        async move { put_shared(&on_b, "steady/0").await.is_ok() }
    })
    .await;

    relay.cut();
    // S3 requests never fail while the database is gone.
    for i in 0..20 {
        put_shared(&s3_client(&a, &k, &s), &format!("steady/a{i}"))
            .await
            .unwrap();
        put_shared(&on_b, &format!("steady/b{i}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // IAM writes are refused, with nothing half-applied.
    let (status, body) = iam(&a, &[("Action", "CreateUser"), ("UserName", "during")]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(xml_code(&body), "ServiceUnavailable");
    let (status, _) = iam(&a, &[("Action", "GetUser"), ("UserName", "during")]).await;
    assert_eq!(status, 404, "a refused change is not applied locally");
    // Both instances say so (the follower of B notices its lost connection).
    for server in &f.instances {
        within(
            Duration::from_secs(5),
            "readyz naming the lost store",
            || async {
                let (code, text) = readyz(server).await;
                code == 200 && text.contains("UNREACHABLE")
            },
        )
        .await;
    }
    // The gauge is refreshed every second (housekeeping), readyz at once.
    let metrics_url = format!("http://{}/metrics", f.instances[1].metrics_addr().unwrap());
    within(
        Duration::from_secs(3),
        "the metrics naming the lost store",
        || async {
            let metrics = reqwest::get(&metrics_url)
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            metrics.contains("s3warden_identity_store_up 0")
        },
    )
    .await;

    relay.restore();
    // Writes work again without a restart, and the other instance catches up.
    within(
        Duration::from_secs(15),
        "IAM writes after the database returns",
        || async {
            iam(&a, &[("Action", "CreateUser"), ("UserName", "after")])
                .await
                .0
                == 200
        },
    )
    .await;
    within(Duration::from_secs(15), "B catching up", || async {
        iam(&b, &[("Action", "GetUser"), ("UserName", "after")])
            .await
            .0
            == 200
    })
    .await;
    within(
        Duration::from_secs(15),
        "readyz reachable again",
        || async { !readyz(&f.instances[1]).await.1.contains("UNREACHABLE") },
    )
    .await;
    // A deletion made while B was cut off is never resurrected there.
    iam_ok(&a, &[("Action", "DeleteUser"), ("UserName", "after")]).await;
    within(PROPAGATION, "a deletion on B", || async {
        iam(&b, &[("Action", "GetUser"), ("UserName", "after")])
            .await
            .0
            == 404
    })
    .await;
}

#[test]
fn an_unreachable_database_at_start_is_a_clear_error_without_the_password() {
    let dir = TempDir::new().unwrap();
    let own = dir.path().join("own");
    std::fs::create_dir_all(&own).unwrap();
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://warden:hunter2secret@127.0.0.1:1/iam";
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        fleet_config(dir.path(), &own, "http://127.0.0.1:9", url),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3warden"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("postgres://warden:***@127.0.0.1:1/iam"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_s3warden"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_file_store_into_postgres_and_a_second_run_changes_nothing() {
    // A file store with a user, its key, a group, a managed policy and a role.
    let h = Harness::embedded().await;
    let e = h.endpoint();
    writers_group(&e).await;
    let (k, s) = writer(&e, "mover").await;
    iam_ok(
        &e,
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "reader"),
            ("PolicyDocument", SHARED_POLICY),
        ],
    )
    .await;
    let store_dir: PathBuf = h.dir.path().join("identity");
    let db = TestDb::create().await;
    let copy = |db_url: String, store_dir: PathBuf| {
        let out = binary()
            .args(["store", "copy", "--from"])
            .arg(&store_dir)
            .args(["--to", &db_url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = copy(db.url(), store_dir.clone());
    assert!(first.contains(": 3 entities written"), "{first}");
    let second = copy(db.url(), store_dir.clone());
    assert!(second.contains(": 0 entities written"), "{second}");
    h.server.shutdown().await;

    // An instance on the database serves the copied key, secret included.
    let own = TempDir::new().unwrap();
    let s3 = EmbeddedStore::start(EmbeddedConfig {
        data_dir: own.path().join("objects"),
        region: "us-east-1".into(),
        access_key_id: UPSTREAM_KEY.into(),
        secret_access_key: UPSTREAM_SECRET.into(),
    })
    .await
    .unwrap();
    let text = fleet_config(own.path(), own.path(), &s3.endpoint(), &db.url());
    let server = Server::start(Config::from_toml(&text, Path::new("f.toml"), own.path()).unwrap())
        .await
        .unwrap();
    let ep = server.endpoint();
    shared_bucket(&ep).await;
    put_shared(&s3_client(&ep, &k, &s), "mover/x")
        .await
        .unwrap();
    let p = iam_ok(
        &ep,
        &[
            ("Action", "GetPolicy"),
            ("PolicyArn", "arn:aws:iam::000000000000:policy/reader"),
        ],
    )
    .await;
    assert!(p.contains("<PolicyName>reader</PolicyName>"), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_loop_of_iam_writes_loses_no_acknowledged_change() {
    let f = Fleet::start(1).await;
    let own = f.dir.path().join("killed");
    std::fs::create_dir_all(&own).unwrap();
    let config = own.join("fleet.toml");
    std::fs::write(
        &config,
        fleet_config(f.dir.path(), &own, &f.s3.endpoint(), &f.db.url()),
    )
    .unwrap();
    let (mut child, endpoint) = spawn_binary(&config, &[]);
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(700);
    let mut n = 0;
    let killer = {
        let pid = child.id();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
        })
    };
    while Instant::now() < deadline {
        let name = format!("k{n}");
        n += 1;
        // The request in flight at the kill fails: that one was never acknowledged.
        let sent = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(iam(
            &endpoint,
            &[("Action", "CreateUser"), ("UserName", &name)],
        )))
        .await;
        match sent {
            Ok((200, _)) => acknowledged.push(name),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    killer.await.unwrap();
    let _ = child.wait();
    assert!(acknowledged.len() > 3, "only {} writes", acknowledged.len());
    let survivor = f.endpoint(0);
    for name in &acknowledged {
        within(
            PROPAGATION,
            "an acknowledged user on the survivor",
            || async {
                iam(&survivor, &[("Action", "GetUser"), ("UserName", name)])
                    .await
                    .0
                    == 200
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_changed_behind_the_fleets_back_is_repaired_by_the_periodic_reconcile() {
    let f = Fleet::start(2).await;
    let (a, b) = (f.endpoint(0), f.endpoint(1));
    shared_bucket(&a).await;
    writers_group(&a).await;
    let (k, s) = writer(&a, "ghost").await;
    let on_b = s3_client(&b, &k, &s);
    within(PROPAGATION, "the user on B", || {
        let on_b = on_b.clone();
        async move { put_shared(&on_b, "ghost/1").await.is_ok() }
    })
    .await;
    // A key deleted straight in the database: no change logged, nothing announced.
    let (db, conn) = tokio_postgres::connect(&f.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let n = db
        .execute(
            "DELETE FROM s3warden.access_keys WHERE access_key_id = $1",
            &[&k],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    for e in [&a, &b] {
        let client = s3_client(e, &k, &s);
        within(Duration::from_secs(6), "the reconcile dropping the key", || {
            let client = client.clone();
            async move { put_shared(&client, "ghost/2").await == Err("InvalidAccessKeyId".into()) }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_postgres_verifies_the_servers_certificate_against_ca_file() {
    // Debian's PostgreSQL serves TLS with the machine's self-signed
    // certificate for `localhost`; trusted as ca_file, verify-full works,
    // and a connection to a name the certificate does not carry is refused.
    let db = TestDb::create().await;
    let dir = TempDir::new().unwrap();
    let s3 = EmbeddedStore::start(EmbeddedConfig {
        data_dir: dir.path().join("objects"),
        region: "us-east-1".into(),
        access_key_id: UPSTREAM_KEY.into(),
        secret_access_key: UPSTREAM_SECRET.into(),
    })
    .await
    .unwrap();
    let cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    assert!(
        Path::new(cert).exists(),
        "Debian's ssl-cert package provides the server certificate"
    );
    let url = format!("postgres://postgres@localhost:5432/{}", db.name);
    let config = |extra: &str| {
        let text = fleet_config(dir.path(), dir.path(), &s3.endpoint(), &url).replace(
            "poll_interval_ms = 200",
            &format!("poll_interval_ms = 200\n{extra}"),
        );
        Config::from_toml(&text, Path::new("tls.toml"), dir.path()).unwrap()
    };
    let verified = Server::start(config(&format!(
        "sslmode = \"verify-full\"\nca_file = \"{cert}\""
    )))
    .await
    .expect("TLS with the server's certificate trusted");
    let e = verified.endpoint();
    iam_ok(&e, &[("Action", "CreateUser"), ("UserName", "over-tls")]).await;
    verified.shutdown().await;
    // The same certificate does not name 127.0.0.1: refused.
    let by_address = format!("postgres://postgres@127.0.0.1:5432/{}", db.name);
    let text = fleet_config(dir.path(), dir.path(), &s3.endpoint(), &by_address).replace(
        "poll_interval_ms = 200",
        &format!("poll_interval_ms = 200\nsslmode = \"verify-full\"\nca_file = \"{cert}\""),
    );
    let refused =
        Server::start(Config::from_toml(&text, Path::new("tls.toml"), dir.path()).unwrap()).await;
    let err = refused
        .err()
        .expect("a certificate for another name is refused")
        .to_string();
    assert!(err.contains("certificate"), "{err}");
}
