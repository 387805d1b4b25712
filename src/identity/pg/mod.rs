//! The PostgreSQL identity store, shared by every instance of a fleet.
//!
//! One row per entity (users, access keys, groups, memberships, inline and
//! managed policies, attachments, roles, session revocation marks) in the
//! schema `s3warden`, which s3warden creates and migrates itself under an
//! advisory lock, so instances starting together migrate once.
//!
//! Every change is one transaction under a fleet-wide advisory lock: it first
//! reads what other instances changed since this one last looked, so the
//! change is checked against the fleet's current state (one
//! `EntityAlreadyExists` for two simultaneous CreateUser calls, quotas that
//! hold across the fleet), then writes the rows of the entities it touched,
//! bumps the change sequence, logs which entities that sequence touched and
//! announces it with `NOTIFY`. Followers `LISTEN`, and on each announcement
//! (or a periodic check, in case one was missed, or a reconnect) read the
//! entities touched since the sequence they have, in one consistent
//! snapshot; an instance too far behind for the change log reloads whole.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::{Mutex, mpsc};
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, GenericClient};
use tokio_postgres_rustls::MakeRustlsConnect;

mod rows;
mod schema;

use rows::{load_changes, load_state, write_changes};
use schema::migrate;

use super::IdentityError;
use super::model::{Change, Entity, EntityKey, StoreState};
use crate::config::StoreConfig;

/// The channel changes are announced on; the payload is the sequence.
const CHANNEL: &str = "s3warden_identity";
/// `pg_advisory_xact_lock` key that serializes changes across the fleet.
const CHANGE_LOCK: i64 = 0x5333_5761_7264_0002;
/// How many distinct entities a follower reads one by one before it reloads
/// everything instead.
const MAX_CATCH_UP: usize = 20_000;
/// Change-log rows kept; an instance further behind reloads whole.
const CHANGE_LOG_KEEP: i64 = 200_000;
/// How long one change may take before it is abandoned as unavailable.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the database.
#[derive(Clone)]
pub struct PgConfig {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    redacted: String,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &self.redacted)
            .finish_non_exhaustive()
    }
}

/// A URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}{}{tail}", &authority[at..])
        }
        None => url.to_string(),
    }
}

impl PgConfig {
    /// From `[store] url` (and `password_file`, `sslmode`, `ca_file`).
    pub fn from_store_config(store: &StoreConfig, url: &str) -> Result<PgConfig, IdentityError> {
        let redacted = redact_url(url);
        let bad = |message: String| IdentityError::Database {
            url: redacted.clone(),
            message,
        };
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            bad(format!(
                "not a PostgreSQL URL (config key `store.url`): {e}"
            ))
        })?;
        if let Some(path) = &store.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad(format!(
                    "cannot read `store.password_file` {}: {e}",
                    path.display()
                ))
            })?;
            config.password(text.trim_end_matches(['\r', '\n']));
        }
        match store.sslmode.as_deref() {
            None => {}
            Some("disable") => {
                config.ssl_mode(SslMode::Disable);
            }
            Some("prefer") => {
                config.ssl_mode(SslMode::Prefer);
            }
            // The server's certificate is always verified when TLS is used:
            // `require` and `verify-ca` are held to `verify-full`.
            Some("require" | "verify-ca" | "verify-full") => {
                config.ssl_mode(SslMode::Require);
            }
            Some(other) => {
                return Err(bad(format!(
                    "`store.sslmode` {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .application_name("s3warden");
        let tls = crate::upstream::tls_config(store.ca_file.as_deref())
            .map_err(|e| bad(format!("`store.ca_file`: {e}")))?;
        Ok(PgConfig {
            config,
            tls: MakeRustlsConnect::new(tls),
            redacted,
        })
    }

    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// A connection, with its notifications (change sequences) on a channel.
    async fn connect(&self) -> Result<(Client, mpsc::UnboundedReceiver<i64>), IdentityError> {
        let (client, mut connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.unavailable(&e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                        if let Ok(seq) = n.payload().parse::<i64>() {
                            let _ = tx.send(seq);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "identity store connection ended");
                        break;
                    }
                }
            }
        });
        Ok((client, rx))
    }

    fn unavailable(&self, e: &tokio_postgres::Error) -> IdentityError {
        IdentityError::Unavailable(format!("{}: {}", self.redacted, error_text(e)))
    }
}

/// The whole error text: tokio-postgres keeps the cause (refused, timed out)
/// in the source chain.
fn error_text(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What a follower must apply to be current.
pub enum CatchUp {
    UpToDate,
    /// The current value (or deletion) of every entity changed since.
    Changes {
        changes: Vec<Change>,
        seq: i64,
    },
    /// Too far behind for the change log: everything.
    Reload {
        state: StoreState,
        seq: i64,
    },
}

/// What other instances changed, as a change under the lock first sees it.
pub enum Remote {
    /// The current value (or deletion) of every entity changed since.
    Changes(Vec<Change>),
    /// Too far behind for the change log: everything, to rebuild from.
    Reload(StoreState),
}

/// A connection that listens for announced changes.
pub struct Listener {
    client: Client,
    notifications: mpsc::UnboundedReceiver<i64>,
    redacted: String,
}

impl Listener {
    /// The next announced sequence; `None` once the connection is lost.
    pub async fn notified(&mut self) -> Option<i64> {
        let first = self.notifications.recv().await?;
        // Several announcements in a row need one catch-up.
        let mut last = first;
        while let Ok(n) = self.notifications.try_recv() {
            last = last.max(n);
        }
        Some(last)
    }

    /// Everything stored, with the sequence it reflects.
    pub async fn everything(&mut self) -> Result<(StoreState, i64), IdentityError> {
        let redacted = self.redacted.clone();
        let fail = move |e: tokio_postgres::Error| classify(&redacted, e);
        let tx = self
            .client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(&fail)?;
        let seq = current_seq(&tx).await.map_err(&fail)?;
        let state = load_state(&tx, None).await.map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok((state, seq))
    }

    /// What changed after `applied`, read in one consistent snapshot.
    pub async fn since(&mut self, applied: i64) -> Result<CatchUp, IdentityError> {
        let redacted = self.redacted.clone();
        let fail = move |e: tokio_postgres::Error| classify(&redacted, e);
        let tx = self
            .client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(&fail)?;
        let seq = current_seq(&tx).await.map_err(&fail)?;
        if seq == applied {
            return Ok(CatchUp::UpToDate);
        }
        let out = match changed_since(&tx, applied, seq).await.map_err(&fail)? {
            Some(keys) => CatchUp::Changes {
                changes: load_changes(&tx, &keys).await.map_err(&fail)?,
                seq,
            },
            None => CatchUp::Reload {
                state: load_state(&tx, None).await.map_err(&fail)?,
                seq,
            },
        };
        tx.commit().await.map_err(&fail)?;
        Ok(out)
    }
}

/// A database error (a constraint, a bug) is internal; anything else means
/// the database could not be reached or the connection was lost.
fn classify(redacted: &str, e: tokio_postgres::Error) -> IdentityError {
    match e.as_db_error() {
        Some(db) => IdentityError::Database {
            url: redacted.to_string(),
            message: db.to_string(),
        },
        None => IdentityError::Unavailable(format!("{redacted}: {}", error_text(&e))),
    }
}

/// The shared store: a connection for changes, and listeners on demand.
pub struct PgStore {
    config: PgConfig,
    writer: Mutex<Option<Client>>,
    reachable: AtomicBool,
}

impl PgStore {
    /// Connects and brings the schema up to date. An unreachable database
    /// is an error here: an instance does not start without its identities.
    pub async fn connect(config: PgConfig) -> Result<PgStore, IdentityError> {
        let (client, _) = config.connect().await?;
        migrate(&client, &config.redacted).await?;
        Ok(PgStore {
            config,
            writer: Mutex::new(Some(client)),
            reachable: AtomicBool::new(true),
        })
    }

    pub fn redacted_url(&self) -> &str {
        &self.config.redacted
    }

    /// False since a change or a follower last failed to reach the database.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    fn set_reachable(&self, up: bool) {
        if self.reachable.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!(url = %self.config.redacted, "identity store reachable again");
            } else {
                tracing::warn!(url = %self.config.redacted, "identity store unreachable: serving the last directory, refusing changes");
            }
        }
    }

    /// Everything stored, with the sequence it reflects.
    pub async fn load_all(&self) -> Result<(StoreState, i64), IdentityError> {
        let mut guard = self.writer.lock().await;
        let client = self.client(&mut guard).await?;
        let redacted = self.config.redacted.clone();
        let fail = |e| classify(&redacted, e);
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(fail)?;
        let seq = current_seq(&tx).await.map_err(fail)?;
        let state = load_state(&tx, None).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok((state, seq))
    }

    async fn client<'g>(
        &self,
        guard: &'g mut Option<Client>,
    ) -> Result<&'g mut Client, IdentityError> {
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            let (client, _) = self.config.connect().await.inspect_err(|_| {
                self.set_reachable(false);
            })?;
            *guard = Some(client);
        }
        Ok(guard.as_mut().expect("connected above"))
    }

    /// A listening connection for a follower.
    pub async fn listen(&self) -> Result<Listener, IdentityError> {
        let connected = async {
            let (client, notifications) = self.config.connect().await?;
            client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .map_err(|e| classify(&self.config.redacted, e))?;
            Ok::<_, IdentityError>(Listener {
                client,
                notifications,
                redacted: self.config.redacted.clone(),
            })
        }
        .await;
        self.set_reachable(connected.is_ok());
        connected
    }

    /// Records that a follower lost its connection.
    pub fn lost(&self) {
        self.set_reachable(false);
    }

    /// Runs one change under the fleet-wide lock. `change` is given what
    /// other instances changed since `applied` (to apply before deciding) and
    /// returns its result and the entities it changed, which are written in
    /// the same transaction. Returns the result and the sequence the store is
    /// at afterwards. Nothing is written when `change` fails.
    pub async fn transact<R, E, F>(&self, applied: i64, change: F) -> Result<(R, i64), E>
    where
        F: FnOnce(Remote) -> Result<(R, Vec<Change>), E>,
        E: From<IdentityError>,
    {
        let mut guard = self.writer.lock().await;
        let attempt = tokio::time::timeout(
            WRITE_TIMEOUT,
            self.transact_once(&mut guard, applied, change),
        )
        .await;
        let result = match attempt {
            Ok(r) => r,
            Err(_) => Err(Failure::Store(IdentityError::Unavailable(format!(
                "{}: no answer within {WRITE_TIMEOUT:?}",
                self.config.redacted
            )))),
        };
        match result {
            Ok(out) => {
                self.set_reachable(true);
                Ok(out)
            }
            Err(Failure::Change(e)) => Err(e),
            Err(Failure::Store(e)) => {
                if matches!(e, IdentityError::Unavailable(_)) {
                    // The connection may be half-dead; start afresh next time.
                    *guard = None;
                    self.set_reachable(false);
                }
                Err(E::from(e))
            }
        }
    }

    async fn transact_once<R, E, F>(
        &self,
        guard: &mut Option<Client>,
        applied: i64,
        change: F,
    ) -> Result<(R, i64), Failure<E>>
    where
        F: FnOnce(Remote) -> Result<(R, Vec<Change>), E>,
    {
        let redacted = self.config.redacted.clone();
        let fail = |e| Failure::Store(classify(&redacted, e));
        let client = self.client(guard).await.map_err(Failure::Store)?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHANGE_LOCK])
            .await
            .map_err(fail)?;
        // Read committed: each statement from here sees every change
        // committed before this one took the lock.
        let seq = current_seq(&tx).await.map_err(fail)?;
        let remote = if seq == applied {
            Remote::Changes(Vec::new())
        } else {
            match changed_since(&tx, applied, seq).await.map_err(fail)? {
                Some(keys) => Remote::Changes(load_changes(&tx, &keys).await.map_err(fail)?),
                None => Remote::Reload(load_state(&tx, None).await.map_err(fail)?),
            }
        };
        let (out, changes) = change(remote).map_err(Failure::Change)?;
        if changes.is_empty() {
            tx.commit().await.map_err(fail)?;
            return Ok((out, seq));
        }
        write_changes(&tx, &changes).await.map_err(fail)?;
        let next = announce(&tx, &changes).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok((out, next))
    }

    /// Copies entities into the store (the `store copy` command): each one
    /// that is absent or differs is written, nothing else. Returns how many
    /// were written and how many were there already.
    pub async fn import(&self, state: &StoreState) -> Result<(usize, usize), IdentityError> {
        // PostgreSQL keeps microseconds; compare what it would hold.
        let wanted: Vec<Change> = state.changes().into_iter().map(to_micros).collect();
        let total = wanted.len();
        let mut guard = self.writer.lock().await;
        let client = self.client(&mut guard).await?;
        let redacted = self.config.redacted.clone();
        let fail = |e| classify(&redacted, e);
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHANGE_LOCK])
            .await
            .map_err(fail)?;
        let current = load_state(&tx, None).await.map_err(fail)?;
        let changes: Vec<Change> = wanted
            .into_iter()
            .filter(|c| current.get(&c.entity) != c.value)
            .collect();
        if !changes.is_empty() {
            write_changes(&tx, &changes).await.map_err(fail)?;
            announce(&tx, &changes).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok((changes.len(), total - changes.len()))
    }
}

/// A change with its times at PostgreSQL's precision (microseconds).
pub fn to_micros(mut c: Change) -> Change {
    fn t(d: &mut DateTime<Utc>) {
        let micros = d.timestamp_micros();
        if let Some(x) = DateTime::from_timestamp_micros(micros) {
            *d = x;
        }
    }
    match &mut c.value {
        Some(Entity::User(u)) => {
            t(&mut u.created);
            u.access_keys.iter_mut().for_each(|k| t(&mut k.created));
        }
        Some(Entity::Group(g)) => t(&mut g.created),
        Some(Entity::Policy(p)) => {
            t(&mut p.created);
            p.versions.iter_mut().for_each(|v| t(&mut v.created));
            if let Some(u) = &mut p.updated {
                t(u);
            }
        }
        Some(Entity::Role(r)) => t(&mut r.created),
        Some(Entity::OidcProvider(p)) => t(&mut p.created),
        Some(Entity::Revocation(_)) | None => {}
    }
    c
}

/// A failed change: the change's own refusal, or the store's.
enum Failure<E> {
    Change(E),
    Store(IdentityError),
}

async fn current_seq(c: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    Ok(
        c.query_one("SELECT seq FROM s3warden.meta WHERE id = 1", &[])
            .await?
            .get(0),
    )
}

/// The entities changed after `applied` up to `seq`, or `None` when the log
/// no longer reaches back that far or they are too many to read one by one.
async fn changed_since(
    c: &impl GenericClient,
    applied: i64,
    seq: i64,
) -> Result<Option<Vec<EntityKey>>, tokio_postgres::Error> {
    let oldest: Option<i64> = c
        .query_one("SELECT min(seq) FROM s3warden.changes", &[])
        .await?
        .get(0);
    // The log must hold every sequence after `applied` (sequences without a
    // row do not exist: each change logs at least one entity).
    if applied < 0 || oldest.is_none_or(|o| o > applied + 1) {
        return Ok(None);
    }
    let rows = c
        .query(
            "SELECT DISTINCT kind, key FROM s3warden.changes WHERE seq > $1 AND seq <= $2",
            &[&applied, &seq],
        )
        .await?;
    if rows.len() > MAX_CATCH_UP {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .filter_map(|r| EntityKey::from_parts(r.get(0), r.get(1)))
            .collect(),
    ))
}

/// Takes the next sequence, logs which entities it touched, prunes the log
/// and announces the sequence (delivered when the transaction commits).
async fn announce(
    c: &impl GenericClient,
    changes: &[Change],
) -> Result<i64, tokio_postgres::Error> {
    let seq: i64 = c
        .query_one(
            "UPDATE s3warden.meta SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            &[],
        )
        .await?
        .get(0);
    let touched: BTreeSet<(&str, &str)> = changes
        .iter()
        .map(|ch| (ch.entity.kind(), ch.entity.key()))
        .collect();
    let kinds: Vec<&str> = touched.iter().map(|t| t.0).collect();
    let keys: Vec<&str> = touched.iter().map(|t| t.1).collect();
    c.execute(
        "INSERT INTO s3warden.changes (seq, kind, key) SELECT $1::bigint, * FROM unnest($2::text[], $3::text[])",
        &[&seq, &kinds, &keys],
    )
    .await?;
    if seq % 1000 == 0 {
        c.execute(
            "DELETE FROM s3warden.changes WHERE seq <= $1",
            &[&(seq - CHANGE_LOG_KEEP)],
        )
        .await?;
    }
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &seq.to_string()])
        .await?;
    Ok(seq)
}

/// `s3warden store copy`: every entity of a file store into PostgreSQL.
/// Returns how many entities were written and how many were there already.
pub async fn copy_to_postgres(
    from: &std::path::Path,
    to: PgConfig,
) -> Result<(usize, usize), IdentityError> {
    let from: PathBuf = from.to_path_buf();
    let state = tokio::task::spawn_blocking(move || super::store::Store::read_only(&from))
        .await
        .map_err(|e| IdentityError::Internal(e.to_string()))??;
    let pg = Arc::new(PgStore::connect(to).await?);
    pg.import(&state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://warden:s3cret@db.example:5432/iam?sslmode=require"),
            "postgres://warden:***@db.example:5432/iam?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://warden@127.0.0.1/iam"),
            "postgres://warden@127.0.0.1/iam"
        );
        assert_eq!(
            redact_url("postgres://127.0.0.1/iam"),
            "postgres://127.0.0.1/iam"
        );
        assert_eq!(redact_url("p@ss:word"), "<not a URL>");
        assert_eq!(
            redact_url("postgresql://a:b:c@h/d"),
            "postgresql://a:***@h/d"
        );
    }
}
