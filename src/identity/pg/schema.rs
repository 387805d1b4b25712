//! The identity store's schema: versioned migrations that s3warden applies
//! itself, under an advisory lock so that instances starting together
//! migrate once, each version in its own transaction.

use tokio_postgres::Client;

use super::super::IdentityError;
use super::classify;

/// `pg_advisory_lock` key for schema migrations.
const MIGRATION_LOCK: i64 = 0x5333_5761_7264_0001;

/// Versioned schema migrations, applied in order, each in its own transaction.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE s3warden.meta (
    id integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);
INSERT INTO s3warden.meta VALUES (1, 0);
CREATE TABLE s3warden.changes (
    seq bigint NOT NULL,
    kind text NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (seq, kind, key)
);
CREATE TABLE s3warden.users (
    key text PRIMARY KEY,
    name text NOT NULL,
    path text NOT NULL,
    user_id text NOT NULL UNIQUE,
    created timestamptz NOT NULL
);
CREATE TABLE s3warden.access_keys (
    access_key_id text PRIMARY KEY,
    user_key text NOT NULL REFERENCES s3warden.users (key) ON DELETE CASCADE,
    position integer NOT NULL,
    secret_access_key text NOT NULL,
    active boolean NOT NULL,
    created timestamptz NOT NULL
);
CREATE INDEX access_keys_user ON s3warden.access_keys (user_key);
CREATE TABLE s3warden.group_members (
    user_key text NOT NULL REFERENCES s3warden.users (key) ON DELETE CASCADE,
    position integer NOT NULL,
    group_name text NOT NULL,
    PRIMARY KEY (user_key, position)
);
CREATE INDEX group_members_group ON s3warden.group_members (lower(group_name));
CREATE TABLE s3warden.groups (
    key text PRIMARY KEY,
    name text NOT NULL,
    path text NOT NULL,
    group_id text NOT NULL UNIQUE,
    created timestamptz NOT NULL
);
CREATE TABLE s3warden.managed_policies (
    arn text PRIMARY KEY,
    name text NOT NULL,
    path text NOT NULL,
    policy_id text NOT NULL UNIQUE,
    description text,
    document text NOT NULL,
    created timestamptz NOT NULL
);
CREATE TABLE s3warden.roles (
    key text PRIMARY KEY,
    name text NOT NULL,
    path text NOT NULL,
    role_id text NOT NULL UNIQUE,
    created timestamptz NOT NULL,
    description text,
    max_session_duration integer NOT NULL,
    trust_policy text NOT NULL
);
CREATE TABLE s3warden.inline_policies (
    owner_kind text NOT NULL,
    owner_key text NOT NULL,
    name text NOT NULL,
    document text NOT NULL,
    PRIMARY KEY (owner_kind, owner_key, name)
);
CREATE TABLE s3warden.attached_policies (
    owner_kind text NOT NULL,
    owner_key text NOT NULL,
    position integer NOT NULL,
    arn text NOT NULL,
    PRIMARY KEY (owner_kind, owner_key, position)
);
CREATE INDEX attached_policies_arn ON s3warden.attached_policies (arn);
CREATE TABLE s3warden.session_revocations (
    unique_id text PRIMARY KEY,
    revoked_before bigint NOT NULL
);
"#,
    ),
    (
        2,
        r#"
ALTER TABLE s3warden.managed_policies
    ADD COLUMN default_version integer NOT NULL DEFAULT 1,
    ADD COLUMN last_version integer NOT NULL DEFAULT 1,
    ADD COLUMN updated timestamptz;
CREATE TABLE s3warden.policy_versions (
    arn text NOT NULL REFERENCES s3warden.managed_policies (arn) ON DELETE CASCADE,
    version integer NOT NULL,
    document text NOT NULL,
    created timestamptz NOT NULL,
    PRIMARY KEY (arn, version)
);
INSERT INTO s3warden.policy_versions SELECT arn, 1, document, created FROM s3warden.managed_policies;
"#,
    ),
    (
        3,
        r#"
ALTER TABLE s3warden.users ADD COLUMN permissions_boundary text;
ALTER TABLE s3warden.roles ADD COLUMN permissions_boundary text;
"#,
    ),
    (
        4,
        r#"
CREATE TABLE s3warden.tags (
    owner_kind text NOT NULL,
    owner_key text NOT NULL,
    position integer NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (owner_kind, owner_key, position)
);
"#,
    ),
    (
        5,
        r#"
CREATE TABLE s3warden.oidc_providers (
    arn text PRIMARY KEY,
    url text NOT NULL,
    client_ids text[] NOT NULL,
    thumbprints text[] NOT NULL,
    created timestamptz NOT NULL
);
"#,
    ),
];

pub(super) async fn migrate(client: &Client, redacted: &str) -> Result<(), IdentityError> {
    let fail = |e| classify(redacted, e);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(fail)?;
    let result = async {
        client
            .batch_execute(
                "CREATE SCHEMA IF NOT EXISTS s3warden;
                 CREATE TABLE IF NOT EXISTS s3warden.schema_migrations (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 );",
            )
            .await
            .map_err(fail)?;
        let row = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM s3warden.schema_migrations",
                &[],
            )
            .await
            .map_err(fail)?;
        let have: i32 = row.get(0);
        let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if have > newest {
            return Err(IdentityError::Database {
                url: redacted.to_string(),
                message: format!(
                    "its schema is at version {have}, newer than this s3warden knows ({newest}); upgrade s3warden"
                ),
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
            let script = format!(
                "BEGIN; {sql} INSERT INTO s3warden.schema_migrations (version) VALUES ({version}); COMMIT;"
            );
            if let Err(e) = client.batch_execute(&script).await {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(fail(e));
            }
            tracing::info!(version, "identity store schema migrated");
        }
        Ok(())
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}
