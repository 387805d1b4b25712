//! The TOML configuration: types, defaults, and validation whose errors name
//! the offending key.
//!
//! Key names are a user-facing contract (see DESIGN.md): add, never rename.
//! Unknown keys are rejected so a typo never silently falls back to a default.

mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use validate::validate;

/// Why a configuration could not be used. Every message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path:?}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path:?}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Threads serving client connections, each an event loop of its own
    /// with its own upstream connections; absent: one per core.
    pub workers: Option<usize>,
    /// The region clients sign for.
    #[serde(default = "default_region")]
    pub region: String,
    /// Domains under which `bucket.DOMAIN` is a virtual-hosted-style request.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The account id used in ARNs (`arn:aws:iam::ACCOUNT:user/NAME`).
    #[serde(default = "default_account_id")]
    pub account_id: String,
    pub tls: Option<TlsConfig>,
    /// Where Prometheus metrics and health endpoints are served (separate
    /// from `listen`); absent: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// CORS for browsers (presigned POST forms and the like); absent: no
    /// cross-origin request is allowed.
    pub cors: Option<CorsConfig>,
    pub root: RootConfig,
    pub upstream: UpstreamConfig,
    pub embedded: Option<EmbeddedSection>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub sessions: SessionsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub quotas: QuotasConfig,
    #[serde(default)]
    pub federation: FederationConfig,
    /// OpenID Connect providers owned by the config file.
    #[serde(default)]
    pub oidc_providers: Vec<OidcProviderDecl>,
    #[serde(default)]
    pub users: Vec<UserDecl>,
    #[serde(default)]
    pub groups: Vec<GroupDecl>,
    /// Directory of the config file; relative policy files resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_account_id() -> String {
    "000000000000".to_string()
}

/// Which browser origins may call s3warden, as an S3 bucket CORS rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins like `https://app.example.com`; `*` matches any run of characters.
    pub allowed_origins: Vec<String>,
    /// `GET`, `PUT`, `POST`, `DELETE`, `HEAD`.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for; `*` wildcards allowed.
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers scripts may read (e.g. `ETag`).
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long browsers may cache a preflight answer.
    pub max_age_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The administrator principal: every action allowed.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for RootConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `"embedded"`, or the base URL of an S3 endpoint.
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_true")]
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub assume_role_arn: Option<String>,
    /// Extra CA certificates (PEM) trusted for an HTTPS upstream.
    pub ca_file: Option<PathBuf>,
    /// How long to wait for a TCP (and TLS) connection to upstream.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// How long to wait for upstream response headers once the request is sent.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// How long an exchange with upstream may move no byte either way (a
    /// request body upstream stopped reading, a response body it stopped
    /// sending) before it is ended.
    #[serde(default = "default_upstream_idle")]
    pub idle_timeout_secs: u64,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("assume_role_arn", &self.assume_role_arn)
            .finish()
    }
}

fn default_true() -> bool {
    true
}

fn default_connect_timeout() -> u64 {
    3000
}

/// S3 sends response headers within seconds; operations that take long
/// (CopyObject, CompleteMultipartUpload) send them early and keep the
/// connection alive with whitespace, which the idle timeout covers.
fn default_response_timeout() -> u64 {
    60
}

fn default_upstream_idle() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedSection {
    #[serde(default = "default_embedded_dir")]
    pub data_dir: PathBuf,
}

fn default_embedded_dir() -> PathBuf {
    PathBuf::from("./data/objects")
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The embedded (file) identity store, for one machine.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// A PostgreSQL identity store shared by a fleet:
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DB`. When set, `path` is unused.
    pub url: Option<String>,
    /// A file holding the database password (instead of one in `url`).
    pub password_file: Option<PathBuf>,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`; with TLS
    /// the server's certificate is always verified.
    pub sslmode: Option<String>,
    /// A private CA (PEM) trusted for the database's certificate.
    pub ca_file: Option<PathBuf>,
    /// How often each instance checks that it has every change, in case an
    /// announcement was missed (milliseconds).
    #[serde(default = "default_store_poll")]
    pub poll_interval_ms: u64,
    /// How often each instance compares its whole directory with the whole
    /// store and repairs any difference (seconds).
    #[serde(default = "default_store_reconcile")]
    pub reconcile_secs: u64,
}

fn default_store_poll() -> u64 {
    1000
}

fn default_store_reconcile() -> u64 {
    300
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("path", &self.path)
            .field(
                "url",
                &self.url.as_deref().map(crate::identity::pg_redact_url),
            )
            .field("password_file", &self.password_file)
            .field("sslmode", &self.sslmode)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            url: None,
            password_file: None,
            sslmode: None,
            ca_file: None,
            poll_interval_ms: default_store_poll(),
            reconcile_secs: default_store_reconcile(),
        }
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from("./data/identity")
}

/// OpenID Connect federation (`AssumeRoleWithWebIdentity`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// A private CA (PEM) trusted, besides the system's roots, for the
    /// providers' discovery documents and keys.
    pub ca_file: Option<PathBuf>,
    /// How long a provider's key set is used before it is fetched again.
    #[serde(default = "default_jwks_cache")]
    pub jwks_cache_secs: u64,
    /// The least time between two fetches of one provider's keys (a token
    /// naming an unknown key id asks for one).
    #[serde(default = "default_jwks_refetch")]
    pub jwks_refetch_secs: u64,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            ca_file: None,
            jwks_cache_secs: default_jwks_cache(),
            jwks_refetch_secs: default_jwks_refetch(),
        }
    }
}

fn default_jwks_cache() -> u64 {
    3600
}

fn default_jwks_refetch() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// Seals session tokens; created (owner-only) if missing.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// How many opened sessions are kept in memory.
    #[serde(default = "default_session_cache")]
    pub cache_capacity: usize,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            key_file: default_key_file(),
            cache_capacity: default_session_cache(),
        }
    }
}

fn default_session_cache() -> usize {
    100_000
}

fn default_key_file() -> PathBuf {
    PathBuf::from("./data/session.key")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// File to append JSON lines to, or `"-"` for standard output.
    #[serde(default = "default_audit_path")]
    pub path: String,
    /// Records that may wait for the writer before requests wait for it.
    #[serde(default = "default_audit_queue")]
    pub queue: usize,
    /// When records reach the disk: after every write, at most every
    /// `fsync_interval_ms`, or when the operating system decides.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    #[serde(default = "default_fsync_interval")]
    pub fsync_interval_ms: u64,
    /// Rotate the live file once it holds this many bytes (0: never).
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: u64,
    /// Rotate the live file once it is this old (0: never).
    #[serde(default = "default_rotate_secs")]
    pub rotate_secs: u64,
    /// Gzip rotated files.
    #[serde(default = "default_true")]
    pub compress: bool,
    /// Their gzip level, 1 (fastest) to 9 (smallest).
    #[serde(default = "default_compress_level")]
    pub compress_level: u32,
    /// What a request does when the queue is full: wait for room, or be
    /// refused with 503 SlowDown.
    #[serde(default)]
    pub when_full: WhenFull,
    /// The Ed25519 key that signs checkpoints (created owner-only when
    /// missing). Default: `STEM.signing.key` beside the log. Keep it where
    /// whoever can rewrite the log cannot read it.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Seconds between signed checkpoints (0: only at rotation and shutdown).
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_secs: u64,
    /// The name each record and checkpoint gives its writer; default the
    /// host name, so the logs of a fleet can be told apart.
    #[serde(default)]
    pub instance: Option<String>,
    /// How a session policy (and an IAM policy document) sent with a call
    /// is recorded: its SHA-256 only, or its text too.
    #[serde(default)]
    pub session_policy: PolicyRecording,
    /// Where closed log files and their checkpoints are copied, through the
    /// upstream: `s3://BUCKET/PREFIX/`. Absent: kept locally only.
    #[serde(default)]
    pub deliver_to: Option<String>,
    /// Seconds between delivery passes (failed deliveries are retried then).
    #[serde(default = "default_deliver_interval")]
    pub deliver_interval_secs: u64,
}

/// Measured on 108 MB of audit records (zlib-rs with its AVX2 and PCLMULQDQ
/// paths, one core of an Intel Xeon): level 1 at 850 MB/s to 12.4 % of the
/// size, level 2 at 550 MB/s to 9.3 %, level 3 at 470 MB/s to 8.8 %, level 6
/// at 320 MB/s to 8.6 %. A saturated proxy's log (about 1,000 bytes a
/// record) costs about 2 µs of compression per request at 3.
fn default_compress_level() -> u32 {
    3
}

fn default_deliver_interval() -> u64 {
    60
}

/// `[audit] session_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyRecording {
    #[default]
    Hash,
    Text,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    Always,
    #[default]
    Interval,
    Never,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    #[default]
    Wait,
    Refuse,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            path: default_audit_path(),
            queue: default_audit_queue(),
            fsync: FsyncPolicy::default(),
            fsync_interval_ms: default_fsync_interval(),
            rotate_bytes: default_rotate_bytes(),
            rotate_secs: default_rotate_secs(),
            compress: true,
            compress_level: default_compress_level(),
            when_full: WhenFull::default(),
            signing_key_file: None,
            checkpoint_secs: default_checkpoint_secs(),
            instance: None,
            session_policy: PolicyRecording::default(),
            deliver_to: None,
            deliver_interval_secs: default_deliver_interval(),
        }
    }
}

fn default_fsync_interval() -> u64 {
    1000
}

fn default_rotate_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_rotate_secs() -> u64 {
    86_400
}

fn default_checkpoint_secs() -> u64 {
    300
}

fn default_audit_path() -> String {
    "./data/audit.jsonl".to_string()
}

fn default_audit_queue() -> usize {
    4096
}

/// Bounds on what one client may make the proxy hold or wait for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest control body read whole (multi-object delete XML and the like).
    #[serde(default = "default_control_body")]
    pub max_control_body_bytes: usize,
    /// Time a client has to send the request headers.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_secs: u64,
    /// Time allowed between signing and arrival for header-signed requests.
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: u64,
    /// Browser POST uploads in progress at once, each buffering up to one
    /// 8 MiB part; more are refused with 503 SlowDown.
    #[serde(default = "default_post_uploads")]
    pub max_post_uploads: usize,
    /// After SIGTERM: how long requests in flight may take to finish before
    /// they are cut (each still leaves its audit record).
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Largest request header section (request line and headers); larger
    /// ones are refused before more is buffered.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// How long a client may send nothing of a body it announced before it
    /// is answered `400 RequestTimeout` (S3 waits about 20 s).
    #[serde(default = "default_body_idle")]
    pub body_idle_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_control_body_bytes: default_control_body(),
            header_read_timeout_secs: default_header_timeout(),
            max_clock_skew_secs: default_skew(),
            max_post_uploads: default_post_uploads(),
            shutdown_grace_secs: default_shutdown_grace(),
            max_header_bytes: default_max_header_bytes(),
            body_idle_timeout_secs: default_body_idle(),
        }
    }
}

fn default_body_idle() -> u64 {
    20
}

fn default_max_header_bytes() -> usize {
    16 * 1024
}

fn default_shutdown_grace() -> u64 {
    10
}

fn default_post_uploads() -> usize {
    64
}

fn default_control_body() -> usize {
    2 * 1024 * 1024
}

fn default_header_timeout() -> u64 {
    30
}

fn default_skew() -> u64 {
    900
}

/// IAM entity quotas for the whole account (the fleet, with a shared store).
/// The defaults are AWS's; unlike AWS's, they can be raised at will (one IAM
/// user per customer or device needs far more than 5000 users).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    #[serde(default = "default_quota_users")]
    pub users: usize,
    #[serde(default = "default_quota_groups")]
    pub groups: usize,
    #[serde(default = "default_quota_roles")]
    pub roles: usize,
    #[serde(default = "default_quota_policies")]
    pub managed_policies: usize,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        QuotasConfig {
            users: default_quota_users(),
            groups: default_quota_groups(),
            roles: default_quota_roles(),
            managed_policies: default_quota_policies(),
        }
    }
}

fn default_quota_users() -> usize {
    5000
}

fn default_quota_groups() -> usize {
    300
}

fn default_quota_roles() -> usize {
    1000
}

fn default_quota_policies() -> usize {
    1500
}

/// Which signature forms clients may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accept AWS Signature Version 2 (header and presigned). On by default:
    /// boto3 and the aws CLI still presign URLs with it unless told otherwise.
    /// When off, SigV2 is refused as S3 refuses it where it is retired.
    #[serde(default = "default_true")]
    pub sigv2: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { sigv2: true }
    }
}

/// An OpenID Connect provider declared in the config file (and owned by it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderDecl {
    /// The issuer: `https://HOST/PATH`.
    pub url: String,
    /// The audiences its tokens may be for.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// The provider's own IAM tags (`ListOpenIDConnectProviderTags`,
    /// `iam:ResourceTag/*` on IAM calls naming it).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// s3warden's addition: session tags taken from plain token claims, tag
    /// key -> claim name (string claims only), besides AWS's
    /// `https://aws.amazon.com/tags` claim.
    #[serde(default)]
    pub tag_claims: BTreeMap<String, String>,
}

/// An IAM user declared in the config file (and therefore owned by it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDecl {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyDecl>,
    #[serde(default)]
    pub policies: Vec<PolicyDecl>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyDecl {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKeyDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyDecl")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDecl {
    pub name: String,
    #[serde(default)]
    pub policies: Vec<PolicyDecl>,
}

/// An inline policy: its JSON either inline (`document`) or in a file next to
/// the config (`file`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecl {
    pub name: String,
    pub document: Option<String>,
    pub file: Option<PathBuf>,
}

impl Config {
    /// How many data-plane workers to run: `workers`, or one per core.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::from_toml(&text, path, &base_dir)
    }

    /// Parses and validates config text; `base_dir` anchors relative policy files.
    pub fn from_toml(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.base_dir = base_dir.to_path_buf();
        validate(&config)?;
        Ok(config)
    }

    /// True when upstream is the in-process store.
    pub fn is_embedded(&self) -> bool {
        self.upstream.endpoint == "embedded"
    }

    /// The data directory of the embedded store.
    pub fn embedded_data_dir(&self) -> PathBuf {
        self.embedded
            .as_ref()
            .map(|e| e.data_dir.clone())
            .unwrap_or_else(default_embedded_dir)
    }

    /// Reads the text of an inline policy declaration.
    pub fn policy_text(&self, decl: &PolicyDecl) -> std::io::Result<String> {
        match (&decl.document, self.policy_path(decl)) {
            (Some(doc), _) => Ok(doc.clone()),
            (None, Some(path)) => std::fs::read_to_string(path),
            (None, None) => Ok(String::new()),
        }
    }

    /// Where a policy declared with `file` is read from: relative to the
    /// config file's directory, made absolute so that an error names the
    /// file actually tried, whatever the working directory.
    pub fn policy_path(&self, decl: &PolicyDecl) -> Option<PathBuf> {
        let joined = self.base_dir.join(decl.file.as_ref()?);
        Some(std::path::absolute(&joined).unwrap_or(joined))
    }
}

#[cfg(test)]
mod tests;
