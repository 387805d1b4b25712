//! The write path: every change made through the IAM or STS API goes through
//! [`IdentityStore::update`], which serializes changes, lets the change edit
//! the entities it touches ([`Tx`]), persists exactly those (a journal line in
//! the file store, rows in one PostgreSQL transaction) and only then swaps in a
//! directory with them applied. A change that fails validation or cannot be
//! persisted leaves both the store and the directory as they were.
//!
//! Requests never wait here: they read the directory snapshot, which is
//! replaced in one atomic pointer swap after the store has the change. With
//! PostgreSQL, changes made by other instances arrive through
//! [`IdentityStore::follow`] and are applied the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Mutex;

use super::model::Change;
use super::pg::{CatchUp, Listener, PgConfig, PgStore, Remote, to_micros};
use super::sessions::SessionKeys;
use super::store::Store;
use super::tx::Tx;
use super::{Directory, Identities, IdentityError};
use crate::config::{Config, QuotasConfig};

/// Gives the memory freed after loading a large store back to the system:
/// the stored form and the directory briefly coexist at start-up, and glibc
/// would otherwise keep that peak resident for the life of the process.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Where identity changes are kept.
enum Backend {
    /// One machine: a snapshot and a journal in a local directory.
    File(Arc<Store>),
    /// A fleet: one PostgreSQL database shared by every instance.
    Postgres(Arc<PgStore>),
}

/// What `/readyz` and the metrics say about the identity store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStatus {
    /// `file` or `postgres`.
    pub kind: &'static str,
    /// False while the shared store cannot be reached (requests go on with
    /// the last directory; changes are refused).
    pub reachable: bool,
    /// The last change sequence applied here (PostgreSQL only).
    pub applied_seq: i64,
    /// Where: the store directory, or the database URL without its password.
    pub location: String,
}

/// The identity store with its live directory.
pub struct IdentityStore {
    /// The config-declared directory, the base every snapshot is built on;
    /// replaced when the config is reloaded.
    base: ArcSwap<Directory>,
    backend: Backend,
    /// Held while a change is made or changes are applied, so the directory
    /// and the store move together.
    write: Mutex<()>,
    /// The change sequence the directory reflects (PostgreSQL).
    applied_seq: AtomicI64,
    identities: Arc<Identities>,
    quotas: QuotasConfig,
    /// Verifies OpenID Connect tokens, with its providers' key cache.
    federation: Arc<super::oidc::Federation>,
}

impl IdentityStore {
    /// Loads the config's identities and the store, checks that they agree,
    /// and builds the first directory. Returns what was dropped from the store
    /// because the config no longer declares it.
    pub async fn open(
        config: &Config,
        sessions: Arc<SessionKeys>,
    ) -> Result<(IdentityStore, Vec<String>), IdentityError> {
        let federation =
            super::oidc::Federation::new(&config.federation).map_err(IdentityError::Internal)?;
        let base = Directory::from_config(config)?.with_sessions(sessions);
        let (backend, mut state, seq) = match &config.store.url {
            Some(url) => {
                let pg = PgStore::connect(PgConfig::from_store_config(&config.store, url)?).await?;
                let (state, seq) = pg.load_all().await?;
                (Backend::Postgres(Arc::new(pg)), state, seq)
            }
            None => {
                let path = config.store.path.clone();
                let (store, state) = tokio::task::spawn_blocking(move || Store::open(&path))
                    .await
                    .map_err(|e| IdentityError::Internal(e.to_string()))??;
                (Backend::File(Arc::new(store)), state, 0)
            }
        };
        let before = state.clone();
        let dropped = base.reconcile(&mut state)?;
        if !dropped.is_empty() {
            if let Backend::File(store) = &backend {
                // Only the file store is this instance's own to tidy; in a
                // shared store another instance's config may declare them.
                store.save(&state)?;
            } else {
                state = before;
            }
        }
        let dir = base.with_store(&state)?;
        drop(state);
        release_freed_memory();
        Ok((
            IdentityStore {
                base: ArcSwap::from_pointee(base),
                backend,
                write: Mutex::new(()),
                applied_seq: AtomicI64::new(seq),
                identities: Arc::new(Identities::new(dir)),
                quotas: config.quotas.clone(),
                federation: Arc::new(federation),
            },
            dropped,
        ))
    }

    /// The OpenID Connect token verifier.
    pub fn federation(&self) -> &Arc<super::oidc::Federation> {
        &self.federation
    }

    /// Every identity of a config whose store is PostgreSQL, read once (for
    /// tools that run beside a live fleet, like `policy check`).
    pub async fn load_shared(config: &Config) -> Result<Directory, IdentityError> {
        let url = config
            .store
            .url
            .as_deref()
            .ok_or_else(|| IdentityError::Internal("no store.url in the config".into()))?;
        let pg = PgStore::connect(PgConfig::from_store_config(&config.store, url)?).await?;
        let (mut state, _) = pg.load_all().await?;
        let base = Directory::from_config(config)?;
        base.reconcile(&mut state)?;
        base.with_store(&state)
    }

    /// The account's entity quotas.
    pub fn quotas(&self) -> &QuotasConfig {
        &self.quotas
    }

    pub fn identities(&self) -> &Arc<Identities> {
        &self.identities
    }

    pub fn status(&self) -> StoreStatus {
        match &self.backend {
            Backend::File(store) => StoreStatus {
                kind: "file",
                reachable: true,
                applied_seq: 0,
                location: store.path().display().to_string(),
            },
            Backend::Postgres(pg) => StoreStatus {
                kind: "postgres",
                reachable: pg.reachable(),
                applied_seq: self.applied_seq.load(Ordering::Relaxed),
                location: pg.redacted_url().to_string(),
            },
        }
    }

    /// Applies one change. `change` sees the current directory and edits the
    /// entities it touches; its result is returned once the change is durable
    /// and live. With PostgreSQL the change is made under a fleet-wide lock
    /// after catching up with every other instance's changes, so checks such
    /// as "already exists" and quotas hold across the fleet.
    ///
    /// The work runs in its own task, so a client that disconnects midway
    /// cannot leave a change persisted but not applied.
    pub async fn update<T, E, F>(self: &Arc<Self>, change: F) -> Result<T, E>
    where
        F: FnOnce(&Directory, &mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<IdentityError> + Send + 'static,
    {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let _write = this.write.lock().await;
            match &this.backend {
                Backend::File(store) => {
                    let current = this.identities.snapshot();
                    let mut tx = Tx::new(&current);
                    let out = change(&current, &mut tx)?;
                    let changes = tx.finish();
                    if changes.is_empty() {
                        return Ok(out);
                    }
                    let next = Arc::new(this.checked(&current, &changes).map_err(E::from)?);
                    let store = store.clone();
                    let snapshot = next.clone();
                    tokio::task::spawn_blocking(move || {
                        if store.append(&changes)? {
                            store.save(&snapshot.store_state())?;
                        }
                        Ok::<(), IdentityError>(())
                    })
                    .await
                    .map_err(|e| {
                        E::from(IdentityError::Internal(format!("store writer failed: {e}")))
                    })??;
                    this.identities.replace_arc(next);
                    Ok::<T, E>(out)
                }
                Backend::Postgres(pg) => {
                    let applied = this.applied_seq.load(Ordering::Relaxed);
                    let ((out, next), seq) = pg
                        .transact(applied, |remote: Remote| {
                            // Other instances' changes first, so that the
                            // change sees the fleet's current state.
                            match remote {
                                Remote::Changes(c) if c.is_empty() => {}
                                Remote::Changes(c) => {
                                    let caught_up = this.identities.snapshot().apply(&c);
                                    this.identities.replace(caught_up);
                                }
                                Remote::Reload(mut state) => {
                                    let base = this.base.load_full();
                                    base.reconcile(&mut state).map_err(E::from)?;
                                    this.identities
                                        .replace(base.with_store(&state).map_err(E::from)?);
                                }
                            }
                            let current = this.identities.snapshot();
                            let mut tx = Tx::new(&current);
                            let out = change(&current, &mut tx)?;
                            // As PostgreSQL will hold them, so that this
                            // directory and the store agree to the bit.
                            let changes: Vec<Change> =
                                tx.finish().into_iter().map(to_micros).collect();
                            let next = if changes.is_empty() {
                                None
                            } else {
                                Some(this.checked(&current, &changes).map_err(E::from)?)
                            };
                            Ok::<_, E>(((out, next), changes))
                        })
                        .await?;
                    if let Some(next) = next {
                        this.identities.replace(next);
                    }
                    this.applied_seq.fetch_max(seq, Ordering::Relaxed);
                    Ok(out)
                }
            }
        });
        match task.await {
            Ok(r) => r,
            Err(e) => Err(E::from(IdentityError::Internal(format!(
                "identity update failed: {e}"
            )))),
        }
    }

    /// The directory with a local change applied, refusing (rather than
    /// fail-closed replacing) anything that cannot be enforced: the caller
    /// gets the error and nothing is stored.
    fn checked(&self, current: &Directory, changes: &[Change]) -> Result<Directory, IdentityError> {
        let mut next = current.clone();
        next.apply_strict(changes)?;
        Ok(next)
    }

    /// Follows the shared store for as long as `self` lives: applies other
    /// instances' changes as they are announced, catches up after a lost
    /// connection, and checks every `poll` that nothing was missed (a lost
    /// notification). Returns at once for the file store.
    pub async fn follow(self: Arc<Self>, poll: Duration, reconcile: Duration) {
        let Backend::Postgres(pg) = &self.backend else {
            return;
        };
        let pg = pg.clone();
        let weak = Arc::downgrade(&self);
        drop(self);
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match pg.listen().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "identity store unreachable; serving the last directory");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if weak.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let mut last_reconcile = Instant::now();
            loop {
                let Some(this) = weak.upgrade() else { return };
                let due = last_reconcile.elapsed() >= reconcile;
                let step = if due {
                    last_reconcile = Instant::now();
                    this.reconcile(&mut listener).await
                } else {
                    this.catch_up(&mut listener).await
                };
                if let Err(e) = step {
                    tracing::warn!(error = %e, "identity store connection lost; serving the last directory");
                    pg.lost();
                    break;
                }
                drop(this);
                tokio::select! {
                    n = listener.notified() => if n.is_none() {
                        pg.lost();
                        break;
                    },
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    /// Compares the whole directory with the whole store and repairs any
    /// difference (which only a fault could have made: the change log and
    /// its announcements carry every change).
    async fn reconcile(&self, listener: &mut Listener) -> Result<(), IdentityError> {
        let (mut state, seq) = listener.everything().await?;
        let _write = self.write.lock().await;
        let base = self.base.load_full();
        base.reconcile(&mut state)?;
        let current = self.identities.snapshot();
        let repairs = current.store_state().diff(&state);
        if !repairs.is_empty() {
            tracing::warn!(
                entities = repairs.len(),
                "the directory differed from the identity store; repaired"
            );
            self.identities.replace(current.apply(&repairs));
        }
        self.applied_seq.store(seq, Ordering::Relaxed);
        Ok(())
    }

    /// Applies what the shared store has beyond what this instance applied.
    async fn catch_up(&self, listener: &mut Listener) -> Result<(), IdentityError> {
        let applied = self.applied_seq.load(Ordering::Relaxed);
        match listener.since(applied).await? {
            CatchUp::UpToDate => {}
            CatchUp::Changes { changes, seq } => {
                let _write = self.write.lock().await;
                // A local write may have moved past it meanwhile; applying
                // whole entities again is harmless, but older ones are not.
                if self.applied_seq.load(Ordering::Relaxed) == applied {
                    let next = self.identities.snapshot().apply(&changes);
                    self.identities.replace(next);
                    self.applied_seq.store(seq, Ordering::Relaxed);
                }
            }
            CatchUp::Reload { mut state, seq } => {
                let _write = self.write.lock().await;
                let base = self.base.load_full();
                base.reconcile(&mut state)?;
                let dir = base.with_store(&state)?;
                self.identities.replace(dir);
                self.applied_seq.store(seq, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Replaces the config-declared identities (a reloaded config), keeping
    /// every store entity. Fails, changing nothing, when the new config and
    /// the store disagree.
    pub async fn reload_config(
        &self,
        config: &Config,
        sessions: Arc<SessionKeys>,
    ) -> Result<(), IdentityError> {
        let base = Directory::from_config(config)?.with_sessions(sessions);
        let _write = self.write.lock().await;
        let next = base.rebase(&self.identities.snapshot())?;
        self.base.store(Arc::new(base));
        self.identities.replace(next);
        Ok(())
    }
}
