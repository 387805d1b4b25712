//! The `s3warden` command line: parses arguments and calls into the library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use s3warden::audit::checkpoint;
use s3warden::audit::query::{Filter, parse_columns, parse_decision, parse_status, parse_time};
use s3warden::audit::review::{self, Format};
use s3warden::config::Config;
use s3warden::server::Server;

/// jemalloc rather than glibc's malloc: a proxied request makes about 120
/// allocations, which cost a sixth of the instructions outside SHA-256 with
/// glibc (`malloc_consolidate` among them); peak RSS with large objects stays
/// where glibc's was (docs/benchmarks.md, where mimalloc's did not).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation (`_RJEM_MALLOC_CONF` in
/// the environment still overrides them). A thread's cache is swept for
/// unused objects after every 64 KiB it allocates by default, every few
/// proxied requests: 1.2 % of a small GET's instructions. After every 1 MiB
/// it costs a sixteenth as much; what a cache may hold is bounded by its
/// slots either way (docs/benchmarks.md).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(c"tcache_gc_incr_bytes:1048576".as_ptr());

/// jemalloc reads `malloc_conf` as a `const char *`.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a static C string that nothing writes.
unsafe impl Sync for MallocConf {}

#[derive(Parser)]
#[command(
    name = "s3warden",
    version,
    about = "An S3-compatible reverse proxy that enforces access"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Read, filter, summarise and verify audit logs.
    Audit(Box<AuditArgs>),
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Temporary credentials: revoke sessions, rotate the session key.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// The identity store: move a file store into PostgreSQL.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every entity of a file store (users, access keys with their
    /// secrets, groups, policies, roles, revocations) into a PostgreSQL store.
    /// Entities already there and equal are left alone, so running it again
    /// changes nothing; the file store is only read.
    Copy {
        /// The file store directory (`[store] path`).
        #[arg(long)]
        from: PathBuf,
        /// postgres://USER[:PASSWORD]@HOST:PORT/DB
        #[arg(long)]
        to: String,
        /// A file holding the database password.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// disable, prefer, require, verify-ca or verify-full.
        #[arg(long)]
        sslmode: Option<String>,
        /// A private CA (PEM) for the database's certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Revoke every session of a user or role issued before now, through the
    /// running s3warden (signed with the config's root key).
    Revoke {
        #[arg(long, short)]
        config: PathBuf,
        /// The IAM user whose sessions end (GetFederationToken, GetSessionToken).
        #[arg(long, conflicts_with = "role", required_unless_present = "role")]
        user: Option<String>,
        /// The role whose sessions end (AssumeRole).
        #[arg(long)]
        role: Option<String>,
    },
    /// Append a fresh key to the session key file: running instances that
    /// read the file pick it up within a second (or on SIGHUP) and seal new
    /// tokens with it, while older keys still open the tokens they sealed.
    RotateKey {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyAction {
    /// Would this request be allowed, and why? Exit 0 allow, 1 deny, 2 error.
    Check(Box<CheckArgs>),
}

#[derive(Args)]
struct CheckArgs {
    /// The TOML configuration file declaring the identities.
    #[arg(long, short)]
    config: PathBuf,
    /// The user whose permissions are evaluated (with --lint alone: omit it
    /// to lint every identity's policies).
    #[arg(long)]
    user: Option<String>,
    /// Evaluate as a session of the user limited by this session policy (JSON file).
    #[arg(long)]
    session_policy: Option<PathBuf>,
    /// The IAM action, e.g. s3:GetObject.
    #[arg(long, requires = "resource", conflicts_with = "request")]
    action: Option<String>,
    /// The resource ARN, e.g. arn:aws:s3:::bucket/key.
    #[arg(long, requires = "action")]
    resource: Option<String>,
    /// A raw S3 request line to classify first, e.g. "GET /bucket/key?acl".
    #[arg(long)]
    request: Option<String>,
    /// A request header for --request, as "name: value" (repeatable).
    #[arg(long = "header", requires = "request")]
    headers: Vec<String>,
    /// A condition key, KEY=VALUE (repeatable; a key given twice is multivalued).
    #[arg(long = "context")]
    context: Vec<String>,
    /// Report unknown condition keys and statements that can never match
    /// (alone: exit 0 when clean, 1 when there are findings).
    #[arg(long)]
    lint: bool,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AuditArgs {
    #[command(subcommand)]
    action: Option<AuditAction>,
    #[command(flatten)]
    query: QueryArgs,
}

#[derive(Subcommand)]
enum AuditAction {
    /// Verify each log's hash chain against its signed checkpoints; exit 0
    /// when intact, 1 when tampered, 2 on error.
    Verify {
        /// Log files or directories (a live log also brings its rotated
        /// files; a directory holds one log per instance).
        paths: Vec<PathBuf>,
        /// Take the log path (and the signing key) from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The public key checkpoints must be signed with (as printed by
        /// `audit public-key`). Without it, or --config, the key each
        /// checkpoint names is used: that proves integrity, not who signed.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Write a self-contained HTML report: requests and denials over time,
    /// denials per principal and prefix, top statements, each log's
    /// verification, and a searchable table of the records.
    Report {
        /// Log files or directories (as for the query).
        paths: Vec<PathBuf>,
        /// Take the log path (and the signing key) from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Where to write the page.
        #[arg(long)]
        out: PathBuf,
        /// Records at or after this time (as for the query).
        #[arg(long)]
        since: Option<String>,
        /// Records at or before this time.
        #[arg(long)]
        until: Option<String>,
        /// The public key checkpoints must be signed with.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Print the public key that verifies the checkpoints (PEM).
    PublicKey {
        /// Take the signing key file from this config file.
        #[arg(long, short, required_unless_present = "key")]
        config: Option<PathBuf>,
        /// The signing key file itself.
        #[arg(long, conflicts_with = "config")]
        key: Option<PathBuf>,
    },
}

#[derive(Args)]
struct QueryArgs {
    /// Log files or directories (a live log also brings its rotated files;
    /// several logs, of several instances, are merged by time).
    paths: Vec<PathBuf>,
    /// Take the log path from this config file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Records at or after this time: RFC 3339, a date (2026-12-02), a local
    /// time (20:38), "2026-12-02 20:38", today, yesterday, or a duration back
    /// (15m, 2h, 7d). Dates and times without an offset are local.
    #[arg(long)]
    since: Option<String>,
    /// Records at or before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// The request id a client got (x-amz-request-id, or in an S3 error).
    #[arg(long)]
    request_id: Option<String>,
    /// Exactly this user name, ARN or access key id (also the key a failed
    /// sign-in claimed).
    #[arg(long)]
    principal: Option<String>,
    /// With --principal: also the temporary sessions that principal issued.
    #[arg(long, requires = "principal")]
    include_sessions: bool,
    #[arg(long)]
    bucket: Option<String>,
    /// Key prefix (also matches the prefix a listing asked for).
    #[arg(long)]
    prefix: Option<String>,
    /// An S3 operation or IAM action name (GetObject, s3:GetObject,
    /// iam:CreateUser); repeat for any of several.
    #[arg(long = "operation")]
    operations: Vec<String>,
    /// allow or deny.
    #[arg(long)]
    decision: Option<String>,
    /// Words of the decision's reason ("explicit deny", "no statement
    /// allows") or of why authentication failed ("bad signature").
    #[arg(long)]
    reason: Option<String>,
    /// The deciding statement: its Sid, or POLICY/SID.
    #[arg(long)]
    statement: Option<String>,
    /// A status code (403) or class (4xx).
    #[arg(long)]
    status: Option<String>,
    /// An S3, IAM or STS error code (AccessDenied, SignatureDoesNotMatch, …).
    #[arg(long)]
    error_code: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Columns of the table or CSV, comma-separated (time, instance,
    /// request_id, principal, principal_arn, access_key_id, operation, bucket,
    /// key, target, decision, reason, statement, status, error_code,
    /// error_message, bytes_in, bytes_out, duration_ms, remote, user_agent, seq).
    #[arg(long)]
    columns: Option<String>,
    /// JSON lines (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Requests and bytes per principal and decision; counts by reason,
    /// statement and error code; top denied principals and keys.
    #[arg(long, conflicts_with = "follow")]
    summary: bool,
    /// How many entries the summary's top lists hold.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Keep printing matching records as they are written.
    #[arg(long, short)]
    follow: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Json,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "s3warden=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(log_colours(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stderr().is_terminal(),
        ))
        .init();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Audit(args) => audit(*args),
        Command::Policy {
            action: PolicyAction::Check(args),
        } => policy_check(*args),
        Command::Sessions { command } => sessions(command),
        Command::Store { command } => store(command),
    }
}

/// Colours only for a person at a terminal: log files and collectors get
/// plain text, and `NO_COLOR` (any non-empty value, per no-color.org) turns
/// them off everywhere.
fn log_colours(no_color: Option<&std::ffi::OsStr>, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("s3warden: {message}");
    ExitCode::from(2)
}

/// The logs to read: the paths given, else the config's audit path.
fn log_paths(paths: Vec<PathBuf>, config: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    if !paths.is_empty() {
        return Ok(paths);
    }
    let Some(config) = config else {
        return Err("give audit log paths or --config FILE".into());
    };
    let c = Config::load(config).map_err(|e| e.to_string())?;
    if c.audit.path == "-" {
        return Err("the config writes the audit log to standard output".into());
    }
    Ok(vec![PathBuf::from(c.audit.path)])
}

/// The signing key file a config names (or its default beside the log).
fn signing_key_path(config: &Path) -> Result<PathBuf, String> {
    let c = Config::load(config).map_err(|e| e.to_string())?;
    Ok(c.audit
        .signing_key_file
        .clone()
        .unwrap_or_else(|| checkpoint::default_key_path(Path::new(&c.audit.path))))
}

fn public_key(config: Option<&Path>, key: Option<&Path>) -> ExitCode {
    let path = match (key, config) {
        (Some(k), _) => k.to_path_buf(),
        (None, Some(c)) => match signing_key_path(c) {
            Ok(p) => p,
            Err(e) => return fail(e),
        },
        (None, None) => return fail("give --config FILE or --key FILE"),
    };
    match checkpoint::SigningKey::load(&path) {
        Ok(k) => {
            let public = k.public_key();
            print!("{}", public.to_pem());
            eprintln!("{}", public.fingerprint());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The key checkpoints must be signed with: the file given, else the
/// public half of the config's signing key, else none.
fn trusted_key(
    public_key: Option<&Path>,
    config: Option<&Path>,
) -> Result<Option<checkpoint::PublicKey>, String> {
    if let Some(path) = public_key {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path:?}: {e}"))?;
        return checkpoint::PublicKey::parse(&text)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    match config {
        Some(c) => checkpoint::SigningKey::load(&signing_key_path(c)?)
            .map(|k| Some(k.public_key()))
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

fn verify(paths: Vec<PathBuf>, config: Option<&Path>, public_key: Option<&Path>) -> ExitCode {
    let paths = match log_paths(paths, config) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let trusted = match trusted_key(public_key, config) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let reports = match review::verify_paths(&paths, trusted.as_ref()) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut clean = true;
    for (live, report) in &reports {
        clean &= report.is_clean();
        for f in &report.findings {
            println!("{f}");
        }
        print!(
            "{}",
            review::verify_summary(live, report, trusted.is_some())
        );
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn report(
    paths: Vec<PathBuf>,
    config: Option<&Path>,
    out: &Path,
    [since, until]: [Option<String>; 2],
    public_key: Option<PathBuf>,
) -> ExitCode {
    let now = chrono::Local::now();
    let time = |s: Option<String>| s.map(|s| parse_time(&s, now)).transpose();
    let filter = match (time(since), time(until)) {
        (Ok(since), Ok(until)) => Filter {
            since,
            until,
            ..Filter::default()
        },
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let paths = match log_paths(paths, config) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let trusted = match trusted_key(public_key.as_deref(), config) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let page = match review::report(&paths, &filter, trusted.as_ref(), &mut std::io::stderr()) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match std::fs::write(out, page) {
        Ok(()) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot write {}: {e}", out.display())),
    }
}

fn audit(args: AuditArgs) -> ExitCode {
    match args.action {
        Some(AuditAction::Verify {
            paths,
            config,
            public_key,
        }) => return verify(paths, config.as_deref(), public_key.as_deref()),
        Some(AuditAction::PublicKey { config, key }) => {
            return public_key(config.as_deref(), key.as_deref());
        }
        Some(AuditAction::Report {
            paths,
            config,
            out,
            since,
            until,
            public_key,
        }) => return report(paths, config.as_deref(), &out, [since, until], public_key),
        None => {}
    }
    let q = args.query;
    let filter = match build_filter(&q, chrono::Local::now()) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let columns = match q.columns.as_deref().map(parse_columns).transpose() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let paths = match log_paths(q.paths, q.config.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let format = match (q.json, q.format) {
        (true, _) | (_, OutputFormat::Json) => Format::Json,
        (_, OutputFormat::Table) => Format::Table,
        (_, OutputFormat::Csv) => Format::Csv,
    };
    let output = review::Output::new(format, columns);
    let mut out = std::io::stdout().lock();
    let mut warn = std::io::stderr();
    let result = if q.summary {
        review::summarize(&paths, &filter, q.top, &mut warn).and_then(|s| {
            if format == Format::Json {
                serde_json::to_writer_pretty(&mut out, &s).map_err(std::io::Error::other)?;
                println!();
                Ok(())
            } else {
                s.write_text(&mut out).map_err(Into::into)
            }
        })
    } else if q.follow {
        match paths.as_slice() {
            [one] => review::follow(one, &filter, &output, &mut out),
            _ => return fail("--follow takes exactly one live log"),
        }
    } else {
        review::list(&paths, &filter, &output, &mut out, &mut warn).map(|_| ())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(review::ReviewError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn sessions(command: SessionsCommand) -> ExitCode {
    match command {
        SessionsCommand::Revoke { config, user, role } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => return fail(format!("cannot start the runtime: {e}")),
            };
            match runtime.block_on(s3warden::api::client::revoke_sessions(
                &config,
                user.as_deref(),
                role.as_deref(),
            )) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("s3warden: {e}");
                    ExitCode::from(1)
                }
            }
        }
        SessionsCommand::RotateKey { config } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            match s3warden::identity::sessions::rotate_key_file(&config.sessions.key_file) {
                Ok(id) => {
                    println!(
                        "key {id} appended to {}; it seals new session tokens once s3warden restarts",
                        config.sessions.key_file.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("s3warden: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn store(command: StoreCommand) -> ExitCode {
    match command {
        StoreCommand::Copy {
            from,
            to,
            password_file,
            sslmode,
            ca_file,
        } => {
            let store = s3warden::config::StoreConfig {
                url: Some(to.clone()),
                password_file,
                sslmode,
                ca_file,
                ..Default::default()
            };
            let pg = match s3warden::identity::PgConfig::from_store_config(&store, &to) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => return fail(format!("cannot start the runtime: {e}")),
            };
            let url = pg.redacted_url().to_string();
            match runtime.block_on(s3warden::identity::copy_to_postgres(&from, pg)) {
                Ok((written, kept)) => {
                    println!(
                        "copied {} into {url}: {written} entities written, {kept} already there",
                        from.display(),
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("s3warden: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn policy_check(args: CheckArgs) -> ExitCode {
    use s3warden::simulator::{self, Question};
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let loaded = match &config.store.url {
        None => s3warden::identity::Directory::load(&config),
        Some(_) => tokio::runtime::Runtime::new()
            .map_err(|e| s3warden::identity::IdentityError::Internal(e.to_string()))
            .and_then(|r| r.block_on(s3warden::identity::IdentityStore::load_shared(&config))),
    };
    let dir = match loaded {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let session = match args
        .session_policy
        .as_deref()
        .map(std::fs::read_to_string)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot read the session policy: {e}")),
    };
    let mut out = std::io::stdout().lock();
    let mut findings = 0;
    if args.lint {
        match simulator::lint(&dir, args.user.as_deref(), session.as_deref()) {
            Ok(lints) => {
                findings = lints.len();
                for (policy, l) in lints {
                    let _ = writeln!(out, "lint {policy}: {l}");
                }
            }
            Err(e) => return fail(e),
        }
    }
    let question = match (args.request, args.action, args.resource) {
        (Some(line), _, _) => {
            let mut headers = Vec::new();
            for h in &args.headers {
                match h.split_once(':') {
                    Some((n, v)) => headers.push((n.trim().to_string(), v.trim().to_string())),
                    None => return fail(format!("header {h:?} must be \"name: value\"")),
                }
            }
            Question::Request { line, headers }
        }
        (None, Some(action), Some(resource)) => Question::Action { action, resource },
        _ if args.lint => {
            return if findings == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
        _ => return fail("give --action and --resource, or --request"),
    };
    let context = match simulator::parse_context(&args.context) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let Some(user) = args.user.as_deref() else {
        return fail("give --user (or --lint alone to lint every identity)");
    };
    match simulator::simulate(&dir, user, session.as_deref(), &question, &context) {
        Ok(sim) => {
            let _ = write!(out, "{sim}");
            if sim.decision.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(e),
    }
}

fn build_filter(q: &QueryArgs, now: chrono::DateTime<chrono::Local>) -> Result<Filter, String> {
    let time = |s: &Option<String>| {
        s.as_deref()
            .map(|s| parse_time(s, now))
            .transpose()
            .map_err(|e| e.to_string())
    };
    Ok(Filter {
        since: time(&q.since)?,
        until: time(&q.until)?,
        request_id: q.request_id.clone(),
        principal: q.principal.clone(),
        include_sessions: q.include_sessions,
        principal_arns: Vec::new(),
        bucket: q.bucket.clone(),
        key_prefix: q.prefix.clone(),
        operations: q.operations.clone(),
        allowed: q
            .decision
            .as_deref()
            .map(parse_decision)
            .transpose()
            .map_err(|e| e.to_string())?,
        reason: q.reason.clone(),
        statement: q.statement.clone(),
        status: q
            .status
            .as_deref()
            .map(parse_status)
            .transpose()
            .map_err(|e| e.to_string())?,
        error_code: q.error_code.clone(),
    })
}

fn serve(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("s3warden: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        let embedded = config.is_embedded();
        let root = config.root.clone();
        let region = config.region.clone();
        let signals = Signals::install();
        let server = match Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("s3warden: {e}");
                return ExitCode::from(1);
            }
        };
        // Writes may fail once stdout is closed (a supervisor that only reads
        // the first line); the server must keep running regardless.
        let mut banner = format!("s3warden listening on {} (region {region})\n", server.endpoint());
        if let Some(m) = server.metrics_addr() {
            banner.push_str(&format!("metrics on http://{m}/metrics\n"));
        }
        if embedded {
            // Development mode: the credentials are in the config file anyway;
            // printing them lets a newcomer copy them straight into aws-cli.
            banner.push_str(&format!(
                "upstream: embedded store (development)\n  export AWS_ACCESS_KEY_ID={}\n  export AWS_SECRET_ACCESS_KEY={}\n  export AWS_DEFAULT_REGION={region}\n  aws --endpoint-url {} s3 ls\n",
                root.access_key_id,
                root.secret_access_key,
                server.endpoint()
            ));
        }
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(banner.as_bytes()).and_then(|_| stdout.flush());
        let check = tokio::spawn(check_upstream(server.state().clone()));
        let mut signals = signals;
        while let Signal::Reload = signals.wait().await {
            // A config that does not load or validate is refused; the
            // running one stays.
            match Config::load(path) {
                Ok(config) => {
                    if let Err(e) = server.reload(&config).await {
                        tracing::error!(error = %e, "config reload refused; the running config stays");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "config reload refused; the running config stays")
                }
            }
        }
        // The check holds the server's state; it must not delay the exit.
        check.abort();
        tracing::info!("shutting down");
        // A second SIGTERM or SIGINT means "now": an operator or supervisor
        // that will not wait for the grace period.
        tokio::spawn(async move {
            while let Signal::Reload = signals.wait().await {}
            eprintln!("s3warden: second signal; exiting at once");
            std::process::exit(1);
        });
        server.shutdown().await;
        ExitCode::SUCCESS
    });
    // Blocking work still running (a file read of the embedded store for a
    // cut request) must not hold the exit: the server has shut down.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Says at start when upstream cannot be reached or has no credentials —
/// a newcomer's most common first failure, otherwise first seen as 503s —
/// without holding the start up.
async fn check_upstream(state: std::sync::Arc<s3warden::server::State>) {
    let endpoint = state.upstream.endpoint();
    let url = format!("{}://{}", endpoint.scheme, endpoint.authority);
    match state
        .upstream
        .probe(std::time::Duration::from_secs(5))
        .await
    {
        Ok(()) => tracing::debug!(upstream = %url, "upstream answers"),
        Err(e) => tracing::warn!(
            upstream = %url,
            error = %e,
            "upstream check at start failed; requests will fail until it answers"
        ),
    }
}

/// SIGINT, SIGTERM and SIGHUP, installed before the server announces itself
/// so a supervisor that signals as soon as it reads the banner is always heard.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

enum Signal {
    Stop,
    Reload,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            #[cfg(unix)]
            term: signal(SignalKind::terminate()).ok(),
            #[cfg(unix)]
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    async fn wait(&mut self) -> Signal {
        #[cfg(unix)]
        if let (Some(term), Some(hup)) = (self.term.as_mut(), self.hup.as_mut()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                _ = term.recv() => Signal::Stop,
                _ = hup.recv() => Signal::Reload,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::log_colours;
    use std::ffi::OsStr;

    #[test]
    fn jemalloc_reads_the_options_this_binary_gives_it() {
        let mut value: usize = 0;
        let mut len = std::mem::size_of::<usize>();
        // SAFETY: `value` and `len` are valid for writes of a size_t, which
        // is what this option reads back as; nothing is written to jemalloc.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.tcache_gc_incr_bytes".as_ptr(),
                (&raw mut value).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(value, 1 << 20);
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(log_colours(None, true));
        assert!(!log_colours(None, false));
        assert!(!log_colours(Some(OsStr::new("1")), true));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(log_colours(Some(OsStr::new("")), true));
    }
}
