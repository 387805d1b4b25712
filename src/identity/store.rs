//! The embedded identity store: one JSON document in a directory of its own,
//! replaced atomically on every change.
//!
//! A change is acknowledged only after the new document has been written to a
//! temporary file, flushed to disk (`fsync`), renamed over the old one and the
//! directory itself flushed, so an acknowledged change survives `kill -9` and
//! power loss, and a crash at any point leaves either the old or the new
//! document, never a mix. The directory is `0700` and the files `0600`; an
//! exclusive lock file keeps a second s3warden from writing the same store.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::IdentityError;
use super::model::{FORMAT, StoreState};

const DOCUMENT: &str = "identities.json";
const TEMPORARY: &str = "identities.json.tmp";
const LOCK: &str = "lock";

/// An open store; holds the directory lock for as long as it lives.
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

fn io_error(path: &Path, source: std::io::Error) -> IdentityError {
    IdentityError::Store {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn owner_only_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !path.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn owner_only_dir(path: &Path) -> std::io::Result<()> {
    fs::create_dir_all(path)
}

/// Opens a file for writing that only its owner can read.
pub(crate) fn create_owner_only(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Flushes a directory entry change (create, rename) to disk.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Reads the stored state; `restrict_mode` also tightens the file's mode.
/// Replacements are atomic renames, so a reader never sees half a write.
fn read_state(dir: &Path, restrict_mode: bool) -> Result<StoreState, IdentityError> {
    let doc = dir.join(DOCUMENT);
    match fs::read(&doc) {
        Ok(bytes) => {
            if restrict_mode {
                restrict(&doc)?;
            }
            let state: StoreState =
                serde_json::from_slice(&bytes).map_err(|e| IdentityError::StoreCorrupt {
                    path: doc.clone(),
                    message: e.to_string(),
                })?;
            if state.format != FORMAT {
                return Err(IdentityError::StoreCorrupt {
                    path: doc,
                    message: format!(
                        "format {} is not supported (expected {FORMAT})",
                        state.format
                    ),
                });
            }
            Ok(state)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreState::empty()),
        Err(e) => Err(io_error(&doc, e)),
    }
}

impl Store {
    /// The stored state, read without taking the lock (for tools that run
    /// beside a live server, like `policy check`).
    pub fn read_only(dir: &Path) -> Result<StoreState, IdentityError> {
        read_state(dir, false)
    }

    /// Opens (creating if needed) the store directory, takes its lock and
    /// reads the current state.
    pub fn open(dir: &Path) -> Result<(Store, StoreState), IdentityError> {
        owner_only_dir(dir).map_err(|e| io_error(dir, e))?;
        let lock_path = dir.join(LOCK);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let lock = options
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, e))?;
        lock.try_lock().map_err(|_| IdentityError::StoreLocked {
            path: dir.to_path_buf(),
        })?;
        // A temporary file is a write that never completed: it was not
        // acknowledged, so it is discarded.
        let tmp = dir.join(TEMPORARY);
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(|e| io_error(&tmp, e))?;
        }
        let state = read_state(dir, true)?;
        Ok((
            Store {
                dir: dir.to_path_buf(),
                _lock: lock,
            },
            state,
        ))
    }

    /// Durably replaces the stored state. Blocking: call it off the async
    /// runtime's worker threads.
    pub fn save(&self, state: &StoreState) -> Result<(), IdentityError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| IdentityError::StoreCorrupt {
            path: self.dir.join(DOCUMENT),
            message: e.to_string(),
        })?;
        let tmp = self.dir.join(TEMPORARY);
        let doc = self.dir.join(DOCUMENT);
        let mut file = create_owner_only(&tmp, false).map_err(|e| io_error(&tmp, e))?;
        file.write_all(&bytes).map_err(|e| io_error(&tmp, e))?;
        file.sync_all().map_err(|e| io_error(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &doc).map_err(|e| io_error(&doc, e))?;
        sync_dir(&self.dir).map_err(|e| io_error(&self.dir, e))
    }
}

/// Makes an existing store document owner-only (it holds secret keys).
fn restrict(path: &Path) -> Result<(), IdentityError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_reopens_with_owner_only_permissions() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("identity");
        let (store, state) = Store::open(&path).unwrap();
        assert_eq!(state, StoreState::empty());
        let mut next = state.clone();
        next.revoked_before.insert("AIDAEXAMPLE".into(), 42);
        store.save(&next).unwrap();
        drop(store);
        let (_store, reread) = Store::open(&path).unwrap();
        assert_eq!(reread, next);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o700);
            assert_eq!(mode(&path.join(DOCUMENT)), 0o600);
        }
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::TempDir::new().unwrap();
        let (_store, _) = Store::open(dir.path()).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(IdentityError::StoreLocked { .. })
        ));
    }

    #[test]
    fn an_unfinished_write_is_discarded_and_a_corrupt_document_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        fs::write(dir.path().join(TEMPORARY), b"{half").unwrap();
        let (store, state) = Store::open(dir.path()).unwrap();
        assert_eq!(state, StoreState::empty());
        assert!(!dir.path().join(TEMPORARY).exists());
        drop(store);
        fs::write(dir.path().join(DOCUMENT), b"{\"format\": 1, \"users\": 7}").unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(IdentityError::StoreCorrupt { .. })
        ));
    }
}
