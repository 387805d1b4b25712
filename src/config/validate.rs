//! Validation of a parsed config: every check names the key it rejects, and
//! runs before anything listens.

use std::collections::HashSet;

use super::{Config, ConfigError, PolicyDecl};
use crate::identity::model::{MAX_TAGS, tag_key_problem, tag_value_problem};
use crate::policy::{Policy, PolicyKind};

/// More event loops than this only add threads contending for the same cores.
const MAX_WORKERS: usize = 256;

/// IAM's name charset for users, groups and policies: `[\w+=,.@-]`.
pub fn is_iam_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn is_access_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

fn check_key_pair(key: &str, id: &str, secret: &str) -> Result<(), ConfigError> {
    if !is_access_key_id(id) {
        return Err(ConfigError::invalid(
            format!("{key}.access_key_id"),
            format!("{id:?} is not an access key id (16 to 128 letters and digits)"),
        ));
    }
    if secret.len() < 16 || secret.len() > 128 || secret.chars().any(|c| c.is_whitespace()) {
        return Err(ConfigError::invalid(
            format!("{key}.secret_access_key"),
            "must be 16 to 128 characters without whitespace",
        ));
    }
    Ok(())
}

/// Checks everything that can be checked without touching the network.
pub fn validate(c: &Config) -> Result<(), ConfigError> {
    if c.region.is_empty()
        || !c
            .region
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        return Err(ConfigError::invalid(
            "region",
            format!("{:?} is not a region name", c.region),
        ));
    }
    if c.account_id.len() != 12 || !c.account_id.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(ConfigError::invalid(
            "account_id",
            format!("{:?} must be 12 digits", c.account_id),
        ));
    }
    for (i, d) in c.domains.iter().enumerate() {
        if d.is_empty() || d.contains(['/', ':', ' ']) {
            return Err(ConfigError::invalid(
                format!("domains[{i}]"),
                format!("expected a domain name like \"s3.example.com\", found {d:?}"),
            ));
        }
    }
    if let Some(tls) = &c.tls {
        for (key, path) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
            if !path.exists() {
                return Err(ConfigError::invalid(
                    key,
                    format!("file {path:?} does not exist"),
                ));
            }
        }
    }
    check_key_pair("root", &c.root.access_key_id, &c.root.secret_access_key)?;
    validate_upstream(c)?;
    if c.audit.path.is_empty() {
        return Err(ConfigError::invalid(
            "audit.path",
            "must be a file path or \"-\"",
        ));
    }
    if c.audit.fsync == super::FsyncPolicy::Interval && c.audit.fsync_interval_ms == 0 {
        return Err(ConfigError::invalid(
            "audit.fsync_interval_ms",
            "must be at least 1 with fsync = \"interval\"",
        ));
    }
    if let Some(w) = c.workers
        && !(1..=MAX_WORKERS).contains(&w)
    {
        return Err(ConfigError::invalid(
            "workers",
            format!("must be between 1 and {MAX_WORKERS}"),
        ));
    }
    if let Some(m) = c.metrics_listen
        && m == c.listen
        && m.port() != 0
    {
        return Err(ConfigError::invalid(
            "metrics_listen",
            "must differ from `listen`",
        ));
    }
    if let Some(cors) = &c.cors {
        if cors.allowed_origins.is_empty() {
            return Err(ConfigError::invalid(
                "cors.allowed_origins",
                "must name at least one origin",
            ));
        }
        if cors
            .allowed_origins
            .iter()
            .any(|o| o.matches('*').count() > 1)
        {
            return Err(ConfigError::invalid(
                "cors.allowed_origins",
                "an origin may contain at most one '*'",
            ));
        }
        for m in &cors.allowed_methods {
            if !matches!(m.as_str(), "GET" | "PUT" | "POST" | "DELETE" | "HEAD") {
                return Err(ConfigError::invalid(
                    "cors.allowed_methods",
                    format!("{m:?} is not one of GET, PUT, POST, DELETE, HEAD"),
                ));
            }
        }
        if cors
            .allowed_headers
            .iter()
            .any(|h| h.matches('*').count() > 1)
        {
            return Err(ConfigError::invalid(
                "cors.allowed_headers",
                "a header may contain at most one '*'",
            ));
        }
    }
    if let Some(to) = &c.audit.deliver_to {
        if c.audit.path == "-" {
            return Err(ConfigError::invalid(
                "audit.deliver_to",
                "needs a log file (audit.path is standard output)",
            ));
        }
        crate::server::deliver::Destination::parse(to)
            .map_err(|problem| ConfigError::invalid("audit.deliver_to", problem))?;
        if c.audit.deliver_interval_secs == 0 {
            return Err(ConfigError::invalid(
                "audit.deliver_interval_secs",
                "must be at least 1",
            ));
        }
    }
    if !(1..=9).contains(&c.audit.compress_level) {
        return Err(ConfigError::invalid(
            "audit.compress_level",
            "must be 1 (fastest) to 9 (smallest)",
        ));
    }
    if c.audit.queue == 0 {
        return Err(ConfigError::invalid("audit.queue", "must be at least 1"));
    }
    if c.limits.max_control_body_bytes < 1024 {
        return Err(ConfigError::invalid(
            "limits.max_control_body_bytes",
            "must be at least 1024",
        ));
    }
    // A SigV4 request with a session token and a few x-amz headers is
    // about 2 KiB; S3 itself allows 8 KiB. Above 1 MiB a limit no longer
    // bounds memory per connection in any useful way.
    if !(4096..=1024 * 1024).contains(&c.limits.max_header_bytes) {
        return Err(ConfigError::invalid(
            "limits.max_header_bytes",
            "must be between 4096 and 1048576",
        ));
    }
    // A zero timeout would end every connection, body or exchange at its
    // first pause: no setting means "never" here, since unbounded waits are
    // what these keys exist to prevent.
    for (key, secs) in [
        (
            "limits.header_read_timeout_secs",
            c.limits.header_read_timeout_secs,
        ),
        (
            "limits.body_idle_timeout_secs",
            c.limits.body_idle_timeout_secs,
        ),
        ("upstream.idle_timeout_secs", c.upstream.idle_timeout_secs),
        (
            "upstream.response_timeout_secs",
            c.upstream.response_timeout_secs,
        ),
    ] {
        if secs == 0 {
            return Err(ConfigError::invalid(key, "must be at least 1"));
        }
    }
    if c.limits.max_post_uploads == 0 {
        return Err(ConfigError::invalid(
            "limits.max_post_uploads",
            "must be at least 1",
        ));
    }
    if c.store.path.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            "store.path",
            "must be a directory path",
        ));
    }
    if let Some(url) = &c.store.url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(ConfigError::invalid(
            "store.url",
            "must be a PostgreSQL URL: postgres://USER[:PASSWORD]@HOST:PORT/DB",
        ));
    }
    if c.store.url.is_none()
        && (c.store.password_file.is_some()
            || c.store.sslmode.is_some()
            || c.store.ca_file.is_some())
    {
        return Err(ConfigError::invalid(
            "store.url",
            "password_file, sslmode and ca_file apply to a PostgreSQL store; set store.url too",
        ));
    }
    if let Some(mode) = &c.store.sslmode
        && !["disable", "prefer", "require", "verify-ca", "verify-full"].contains(&mode.as_str())
    {
        return Err(ConfigError::invalid(
            "store.sslmode",
            "must be one of disable, prefer, require, verify-ca, verify-full",
        ));
    }
    if c.store.reconcile_secs == 0 {
        return Err(ConfigError::invalid(
            "store.reconcile_secs",
            "must be at least 1",
        ));
    }
    if c.store.poll_interval_ms < 50 {
        return Err(ConfigError::invalid(
            "store.poll_interval_ms",
            "must be at least 50",
        ));
    }
    if c.sessions.key_file.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            "sessions.key_file",
            "must be a file path",
        ));
    }
    if c.sessions.cache_capacity == 0 {
        return Err(ConfigError::invalid(
            "sessions.cache_capacity",
            "must be at least 1",
        ));
    }
    validate_identities(c)
}

fn validate_upstream(c: &Config) -> Result<(), ConfigError> {
    let u = &c.upstream;
    if u.region.is_empty() {
        return Err(ConfigError::invalid("upstream.region", "must not be empty"));
    }
    if u.access_key_id.is_some() != u.secret_access_key.is_some() {
        return Err(ConfigError::invalid(
            "upstream.secret_access_key",
            "access_key_id and secret_access_key must be given together",
        ));
    }
    if c.is_embedded() {
        if u.assume_role_arn.is_some() {
            return Err(ConfigError::invalid(
                "upstream.assume_role_arn",
                "cannot be used with endpoint = \"embedded\"",
            ));
        }
        return Ok(());
    }
    if c.embedded.is_some() {
        return Err(ConfigError::invalid(
            "embedded",
            "only used with upstream.endpoint = \"embedded\"",
        ));
    }
    let uri: http::Uri = u.endpoint.parse().map_err(|_| {
        ConfigError::invalid(
            "upstream.endpoint",
            format!("{:?} is neither \"embedded\" nor a URL", u.endpoint),
        )
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(ConfigError::invalid(
                "upstream.endpoint",
                format!("{:?} must start with http:// or https://", u.endpoint),
            ));
        }
    }
    if uri.host().is_none() {
        return Err(ConfigError::invalid("upstream.endpoint", "has no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(ConfigError::invalid(
            "upstream.endpoint",
            "must be a base URL without a path or query",
        ));
    }
    if let Some(arn) = &u.assume_role_arn
        && !arn.starts_with("arn:")
    {
        return Err(ConfigError::invalid(
            "upstream.assume_role_arn",
            format!("{arn:?} is not a role ARN"),
        ));
    }
    Ok(())
}

fn validate_policies(c: &Config, key: &str, decls: &[PolicyDecl]) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for d in decls {
        let pkey = format!("{key}.policies.{}", d.name);
        if !is_iam_name(&d.name, 128) {
            return Err(ConfigError::invalid(
                &pkey,
                "policy name must be 1 to 128 of [A-Za-z0-9_+=,.@-]",
            ));
        }
        if !names.insert(d.name.to_ascii_lowercase()) {
            return Err(ConfigError::invalid(&pkey, "declared twice"));
        }
        if d.document.is_some() == d.file.is_some() {
            return Err(ConfigError::invalid(
                &pkey,
                "give exactly one of `document` or `file`",
            ));
        }
        let text = c.policy_text(d).map_err(|e| {
            let tried = c.policy_path(d).unwrap_or_default();
            ConfigError::invalid(
                format!("{pkey}.file"),
                format!("cannot read {}: {e}", tried.display()),
            )
        })?;
        Policy::parse(&text, PolicyKind::Identity)
            .and_then(|p| p.check_enforceable())
            .map_err(|e| ConfigError::invalid(&pkey, format!("malformed policy document: {e}")))?;
    }
    Ok(())
}

fn validate_oidc_providers(c: &Config) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, p) in c.oidc_providers.iter().enumerate() {
        let key = format!("oidc_providers[{i}]");
        let host_path = crate::identity::oidc::provider_host_path(&p.url)
            .map_err(|why| ConfigError::invalid(format!("{key}.url"), why))?;
        if !seen.insert(host_path) {
            return Err(ConfigError::invalid(
                format!("{key}.url"),
                format!("provider {:?} is declared twice", p.url),
            ));
        }
        if p.client_ids.len() > 100
            || p.client_ids
                .iter()
                .any(|c| c.is_empty() || c.chars().count() > 255)
        {
            return Err(ConfigError::invalid(
                format!("{key}.client_ids"),
                "at most 100 client ids of 1 to 255 characters",
            ));
        }
        // Provider tag keys compare exactly, session tag keys regardless of case.
        validate_tag_keys(&format!("{key}.tags"), p.tags.keys(), false)?;
        for (k, v) in &p.tags {
            if let Some(why) = tag_value_problem(v) {
                return Err(ConfigError::invalid(
                    format!("{key}.tags"),
                    format!("the value of tag {k:?} {why}"),
                ));
            }
        }
        validate_tag_keys(&format!("{key}.tag_claims"), p.tag_claims.keys(), true)?;
        if let Some((k, _)) = p.tag_claims.iter().find(|(_, claim)| claim.is_empty()) {
            return Err(ConfigError::invalid(
                format!("{key}.tag_claims"),
                format!("tag {k:?} names no claim"),
            ));
        }
    }
    Ok(())
}

/// At most 50 keys, each one IAM accepts, none twice (regardless of case
/// when `folded`, as session tag keys compare).
fn validate_tag_keys<'a>(
    key: &str,
    keys: impl ExactSizeIterator<Item = &'a String>,
    folded: bool,
) -> Result<(), ConfigError> {
    if keys.len() > MAX_TAGS {
        return Err(ConfigError::invalid(
            key,
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut seen = HashSet::new();
    for k in keys {
        if let Some(why) = tag_key_problem(k) {
            return Err(ConfigError::invalid(key, format!("tag key {k:?} {why}")));
        }
        if folded && !seen.insert(k.to_lowercase()) {
            return Err(ConfigError::invalid(
                key,
                format!("tag key {k:?} is given twice (keys compare regardless of case)"),
            ));
        }
    }
    Ok(())
}

fn validate_identities(c: &Config) -> Result<(), ConfigError> {
    validate_oidc_providers(c)?;
    let mut group_names = HashSet::new();
    for g in &c.groups {
        let key = format!("groups.{}", g.name);
        if !is_iam_name(&g.name, 128) {
            return Err(ConfigError::invalid(
                &key,
                "group name must be 1 to 128 of [A-Za-z0-9_+=,.@-]",
            ));
        }
        if !group_names.insert(g.name.to_ascii_lowercase()) {
            return Err(ConfigError::invalid(
                &key,
                "declared twice (names are case-insensitive)",
            ));
        }
        validate_policies(c, &key, &g.policies)?;
    }
    let mut user_names = HashSet::new();
    let mut key_ids = HashSet::from([c.root.access_key_id.clone()]);
    for u in &c.users {
        let key = format!("users.{}", u.name);
        if !is_iam_name(&u.name, 64) {
            return Err(ConfigError::invalid(
                &key,
                "user name must be 1 to 64 of [A-Za-z0-9_+=,.@-]",
            ));
        }
        if !user_names.insert(u.name.to_ascii_lowercase()) {
            return Err(ConfigError::invalid(
                &key,
                "declared twice (names are case-insensitive)",
            ));
        }
        for g in &u.groups {
            if !group_names.contains(&g.to_ascii_lowercase()) {
                return Err(ConfigError::invalid(
                    format!("{key}.groups"),
                    format!("group {g:?} is not declared in [[groups]]"),
                ));
            }
        }
        if u.access_keys.len() > 2 {
            return Err(ConfigError::invalid(
                format!("{key}.access_keys"),
                "at most 2 access keys per user",
            ));
        }
        for k in &u.access_keys {
            check_key_pair(
                &format!("{key}.access_keys"),
                &k.access_key_id,
                &k.secret_access_key,
            )?;
            if !key_ids.insert(k.access_key_id.clone()) {
                return Err(ConfigError::invalid(
                    format!("{key}.access_keys"),
                    format!("access key id {:?} is used twice", k.access_key_id),
                ));
            }
        }
        validate_policies(c, &key, &u.policies)?;
    }
    Ok(())
}
