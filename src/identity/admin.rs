//! The write path: every change made through the IAM or STS API goes through
//! [`IdentityStore::update`], which serializes changes, applies one to a copy
//! of the stored state, builds the new directory from it, persists it durably
//! and only then swaps the directory in. A change that fails validation or
//! cannot be persisted leaves both the store and the directory as they were.
//!
//! Requests never wait here: they read the directory snapshot, which is
//! replaced in one atomic pointer swap after the store has the change.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::model::StoreState;
use super::sessions::SessionKeys;
use super::store::Store;
use super::{Directory, Identities, IdentityError};
use crate::config::Config;

/// The identity store with its live directory.
pub struct IdentityStore {
    /// The config-declared directory, the base every snapshot is built on.
    base: Directory,
    store: Arc<Store>,
    state: Mutex<StoreState>,
    identities: Arc<Identities>,
}

impl IdentityStore {
    /// Loads the config's identities and the store (at `[store].path`), checks
    /// that they agree, and builds the first directory. Returns what was
    /// dropped from the store because the config no longer declares it.
    pub fn open(
        config: &Config,
        sessions: Arc<SessionKeys>,
    ) -> Result<(IdentityStore, Vec<String>), IdentityError> {
        let base = Directory::from_config(config)?.with_sessions(sessions);
        let (store, mut state) = Store::open(&config.store.path)?;
        let dropped = base.reconcile(&mut state)?;
        if !dropped.is_empty() {
            store.save(&state)?;
        }
        let dir = base.with_store(&state)?;
        Ok((
            IdentityStore {
                base,
                store: Arc::new(store),
                state: Mutex::new(state),
                identities: Arc::new(Identities::new(dir)),
            },
            dropped,
        ))
    }

    pub fn identities(&self) -> &Arc<Identities> {
        &self.identities
    }

    /// Applies one change. `change` sees the current directory (consistent
    /// with the state: both only change under this lock) and edits a copy of
    /// the state; its result is returned once the change is durable and live.
    ///
    /// The work runs in its own task, so a client that disconnects midway
    /// cannot leave a change persisted but not applied.
    pub async fn update<T, E, F>(self: &Arc<Self>, change: F) -> Result<T, E>
    where
        F: FnOnce(&Directory, &mut StoreState) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<IdentityError> + Send + 'static,
    {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut state = this.state.lock().await;
            let current = this.identities.snapshot();
            let mut next = state.clone();
            let out = change(&current, &mut next)?;
            if next == *state {
                return Ok(out);
            }
            let dir = this.base.with_store(&next)?;
            let store = this.store.clone();
            let to_save = next.clone();
            tokio::task::spawn_blocking(move || store.save(&to_save))
                .await
                .map_err(|e| {
                    E::from(IdentityError::Internal(format!("store writer failed: {e}")))
                })??;
            *state = next;
            this.identities.replace(dir);
            Ok(out)
        });
        match task.await {
            Ok(r) => r,
            Err(e) => Err(E::from(IdentityError::Internal(format!(
                "identity update failed: {e}"
            )))),
        }
    }
}
