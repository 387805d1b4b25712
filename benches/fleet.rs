//! Fleet benchmark: the identity layer at scale, on PostgreSQL and on the file store.
//!
//! With `FLEET_USERS` users (default 100,000), twice as many access keys, 1,000 groups and
//! 10,000 managed policies generated directly in a PostgreSQL database of its own, it measures:
//! start-up of an instance from the database; the directory's memory per identity (resident
//! memory before and after start-up); an IAM change (CreateUser, AddUserToGroup,
//! CreateAccessKey) through one instance and the time until a second instance serves it;
//! S3 request throughput with that directory against the same with 10 users. On the file
//! store it measures the cost of a change as the store grows (`FLEET_FILE_USERS`, default
//! 5,000 users): the last changes must cost about what the first did.
//!
//! `cargo bench --bench fleet`; PostgreSQL at `FLEET_PG` (default
//! postgres://postgres@127.0.0.1:5432/postgres). Results: docs/benchmarks.md.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_iam::config::{BehaviorVersion, Region};
use s3warden::config::Config;
use s3warden::embedded::{EmbeddedConfig, EmbeddedStore};
use s3warden::server::Server;

/// Counts live heap bytes, so the directory's own size is measured exactly
/// (resident memory also keeps what the allocator has not returned).
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, std::sync::atomic::Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

const ROOT_KEY: &str = "FLEETROOTKEY00000001";
const ROOT_SECRET: &str = "fleet-root-secret-0000000000000000000000";
const STORE_KEY: &str = "FLEETSTOREKEY0000001";
const STORE_SECRET: &str = "fleet-store-secret-000000000000000000000";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL (FLEET_PG)");
    tokio::spawn(conn);
    client
}

struct Db {
    admin: String,
    name: String,
}

impl Db {
    async fn create(admin: &str) -> Db {
        let name = format!("s3warden_bench_{}", uuid::Uuid::new_v4().simple());
        pg(admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Db {
            admin: admin.to_string(),
            name,
        }
    }

    fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map(|x| x.0)
            .unwrap_or(&self.admin);
        format!("{base}/{}?sslmode=disable", self.name)
    }

    async fn drop_it(self) {
        let _ = pg(&self.admin)
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

fn config(dir: &Path, upstream: &str, store: &str) -> Config {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
[root]
access_key_id = "{ROOT_KEY}"
secret_access_key = "{ROOT_SECRET}"
[upstream]
endpoint = "{upstream}"
access_key_id = "{STORE_KEY}"
secret_access_key = "{STORE_SECRET}"
[audit]
path = "{audit}"
[sessions]
key_file = "{key}"
[quotas]
users = 1000000
groups = 10000
managed_policies = 100000
[store]
{store}
"#,
        audit = dir
            .join(format!("audit-{}.jsonl", uuid::Uuid::new_v4()))
            .display(),
        key = dir.join("session.key").display(),
    );
    Config::from_toml(&text, Path::new("fleet.toml"), dir).expect("config")
}

/// Users, two keys each, groups (each with an inline policy and an attached
/// managed policy) and managed policies, straight into the tables.
async fn generate(url: &str, users: usize, groups: usize, policies: usize) {
    let c = pg(url).await;
    let sql = format!(
        r#"
INSERT INTO s3warden.managed_policies
SELECT 'arn:aws:iam::000000000000:policy/p' || i, 'p' || i, '/', 'ANPA' || lpad(i::text, 17, '0'), NULL,
  '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b' || i || '/*"}}]}}', now()
FROM generate_series(1, {policies}) i;
INSERT INTO s3warden.groups
SELECT 'g' || i, 'g' || i, '/', 'AGPA' || lpad(i::text, 17, '0'), now() FROM generate_series(1, {groups}) i;
INSERT INTO s3warden.inline_policies
SELECT 'group', 'g' || i, 'own-prefix',
  '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::data/${{aws:username}}/*"}}]}}'
FROM generate_series(1, {groups}) i;
INSERT INTO s3warden.attached_policies
SELECT 'group', 'g' || i, 0, 'arn:aws:iam::000000000000:policy/p' || (1 + i % {policies}) FROM generate_series(1, {groups}) i;
INSERT INTO s3warden.users
SELECT 'u' || i, 'u' || i, '/', 'AIDA' || lpad(i::text, 17, '0'), now() FROM generate_series(1, {users}) i;
INSERT INTO s3warden.access_keys
SELECT 'AKIA' || k || lpad(i::text, 15, '0'), 'u' || i, p, 'secret-of-u' || i || '-' || k, true, now()
FROM generate_series(1, {users}) i, (VALUES ('A', 0), ('B', 1)) AS keys(k, p);
INSERT INTO s3warden.group_members
SELECT 'u' || i, 0, 'g' || (1 + i % {groups}) FROM generate_series(1, {users}) i;
UPDATE s3warden.meta SET seq = 1;
INSERT INTO s3warden.changes VALUES (1, 'user', 'u1');
"#
    );
    c.batch_execute(&sql).await.expect("generate identities");
}

fn iam(endpoint: &str) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ROOT_KEY, ROOT_SECRET, None, None, "bench"))
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

fn s3(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            key, secret, None, None, "bench",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// One new user as an administrator makes one: the user, a group, a key.
async fn onboard(client: &aws_sdk_iam::Client, name: &str, group: &str) -> (String, String) {
    client.create_user().user_name(name).send().await.unwrap();
    client
        .add_user_to_group()
        .user_name(name)
        .group_name(group)
        .send()
        .await
        .unwrap();
    let k = client
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap();
    let k = k.access_key().unwrap();
    (
        k.access_key_id().to_string(),
        k.secret_access_key().to_string(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// HEADs of one object by one user, `n` requests, 16 at a time; requests/s.
async fn head_rate(endpoint: &str, key: &str, secret: &str, object: &str, n: usize) -> f64 {
    let client = s3(endpoint, key, secret);
    let start = Instant::now();
    let per = n / 16;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = client.clone();
        let object = object.to_string();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                client
                    .head_object()
                    .bucket("data")
                    .key(&object)
                    .send()
                    .await
                    .expect("HEAD through s3warden");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * 16) as f64 / start.elapsed().as_secs_f64()
}

/// A fleet of two on a database holding `users` generated users.
async fn postgres_scale(admin: &str, dir: &Path, upstream: &str, users: usize) -> f64 {
    let groups = 1000.min(users.max(1));
    let policies = 10_000.min(users.max(1));
    let db = Db::create(admin).await;
    let url = db.url();
    let store = format!("url = \"{url}\"\npoll_interval_ms = 1000");
    // The first start creates the schema; then the identities are generated.
    Server::start(config(dir, upstream, &store))
        .await
        .expect("schema")
        .shutdown()
        .await;
    let t = Instant::now();
    generate(&url, users, groups, policies).await;
    println!(
        "generated {users} users, {} keys, {groups} groups, {policies} managed policies in {:.1} s",
        users * 2,
        t.elapsed().as_secs_f64()
    );

    let (before, live_before) = (rss(), live());
    let t = Instant::now();
    let a = Server::start(config(dir, upstream, &store))
        .await
        .expect("instance A");
    let startup = t.elapsed();
    let grown = rss().saturating_sub(before);
    let held = live().saturating_sub(live_before);
    let dir_a = a.state().identities.snapshot();
    let policy_bytes: usize = dir_a.managed_policies().map(|p| p.document.len()).sum();
    println!(
        "start-up from PostgreSQL: {:.2} s; the instance holds {:.1} MiB of heap ({:.0} bytes per user with its 2 keys and membership, all else included; policy documents alone {:.1} MiB); resident memory grew {:.1} MiB",
        startup.as_secs_f64(),
        held as f64 / 1048576.0,
        held as f64 / users.max(1) as f64,
        policy_bytes as f64 / 1048576.0,
        grown as f64 / 1048576.0,
    );
    drop(dir_a);
    let b = Server::start(config(dir, upstream, &store))
        .await
        .expect("instance B");

    // Changes through A, served by B.
    let admin_a = iam(&a.endpoint());
    let mut change = Vec::new();
    let mut visible = Vec::new();
    let mut creds = None;
    for i in 0..50 {
        let name = format!("new{i}");
        let t = Instant::now();
        let c = onboard(&admin_a, &name, "g1").await;
        change.push(t.elapsed() / 3);
        let made = Instant::now();
        loop {
            let dir = b.state().identities.snapshot();
            if dir.access_key(&c.0).is_some() {
                break;
            }
            assert!(
                made.elapsed() < Duration::from_secs(5),
                "{name} never reached B"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        visible.push(made.elapsed());
        creds = Some(c);
    }
    change.sort();
    visible.sort();
    println!(
        "IAM change through A at {users} users: p50 {:.2} ms, p99 {:.2} ms; visible on B after: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&change, 0.5).as_secs_f64() * 1e3,
        percentile(&change, 0.99).as_secs_f64() * 1e3,
        percentile(&visible, 0.5).as_secs_f64() * 1e3,
        percentile(&visible, 0.99).as_secs_f64() * 1e3,
        visible.last().unwrap().as_secs_f64() * 1e3,
    );
    // S3 throughput for one of the new users, through B.
    let (k, s) = creds.unwrap();
    s3(&b.endpoint(), &k, &s)
        .put_object()
        .bucket("data")
        .key("new49/obj")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("PUT through s3warden");
    let n = env_usize("FLEET_HEADS", 4000);
    let rate = head_rate(&b.endpoint(), &k, &s, "new49/obj", n).await;
    a.shutdown().await;
    b.shutdown().await;
    db.drop_it().await;
    rate
}

/// Changes as the file store grows: the cost of the last ones against the first.
async fn file_growth(dir: &Path, upstream: &str, users: usize) {
    let store_dir = dir.join(format!("identity-{}", uuid::Uuid::new_v4()));
    let store = format!("path = \"{}\"", store_dir.display());
    let server = Server::start(config(dir, upstream, &store))
        .await
        .expect("file store instance");
    let admin = iam(&server.endpoint());
    admin.create_group().group_name("g1").send().await.unwrap();
    let window = (users / 10).max(1);
    let mut windows = Vec::new();
    let mut t = Instant::now();
    for i in 0..users {
        onboard(&admin, &format!("f{i}"), "g1").await;
        if (i + 1) % window == 0 {
            windows.push(t.elapsed() / (window as u32 * 3));
            t = Instant::now();
        }
    }
    let first = windows.first().copied().unwrap_or_default();
    let last = windows.last().copied().unwrap_or_default();
    println!(
        "file store, {users} users onboarded (3 changes each): {:.2} ms per change for the first {window} users, {:.2} ms for the last {window} (ratio {:.2}); every window: {}",
        first.as_secs_f64() * 1e3,
        last.as_secs_f64() * 1e3,
        last.as_secs_f64() / first.as_secs_f64().max(1e-9),
        windows
            .iter()
            .map(|w| format!("{:.2}", w.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    );
    server.shutdown().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let admin = std::env::var("FLEET_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let users = env_usize("FLEET_USERS", 100_000);
        let file_users = env_usize("FLEET_FILE_USERS", 5000);
        let dir = tempfile::TempDir::new().expect("temp dir");
        let upstream = EmbeddedStore::start(EmbeddedConfig {
            data_dir: dir.path().join("objects"),
            region: "us-east-1".into(),
            access_key_id: STORE_KEY.into(),
            secret_access_key: STORE_SECRET.into(),
        })
        .await
        .expect("embedded store");
        s3(&upstream.endpoint(), STORE_KEY, STORE_SECRET)
            .create_bucket()
            .bucket("data")
            .send()
            .await
            .expect("bucket");
        let big = postgres_scale(&admin, dir.path(), &upstream.endpoint(), users).await;
        let small = postgres_scale(&admin, dir.path(), &upstream.endpoint(), 10).await;
        println!(
            "S3 HEAD through s3warden: {big:.0} req/s with {users} users, {small:.0} req/s with 10 (ratio {:.2})",
            big / small
        );
        file_growth(dir.path(), &upstream.endpoint(), file_users).await;
        upstream.shutdown().await;
    });
}
