//! The embedded identity store: a JSON snapshot and an append-only journal of
//! changes in a directory of its own.
//!
//! A change is one journal line (the whole new value of each entity it
//! touched), acknowledged only once it has been flushed to disk (`fsync`), so
//! an acknowledged change survives `kill -9` and power loss, and a change costs
//! what it touched, not the size of the store. Once the journal has grown to
//! the size of the snapshot, the snapshot is rewritten (temporary file,
//! `fsync`, rename, directory `fsync`) and the journal emptied: amortized, a
//! change still costs what it touched. Replaying a journal line is idempotent
//! (it sets whole entities), so a crash between the snapshot's rename and the
//! journal's truncation loses nothing; a torn last line was never
//! acknowledged and is dropped. The directory is `0700` and the files `0600`;
//! an exclusive lock file keeps a second s3warden from writing the same store.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::IdentityError;
use super::model::{Change, FORMAT, StoreState};

const DOCUMENT: &str = "identities.json";
const TEMPORARY: &str = "identities.json.tmp";
const JOURNAL: &str = "changes.jsonl";
const LOCK: &str = "lock";
/// The journal is folded into the snapshot once it is this large, or as
/// large as the snapshot, whichever is more.
const MIN_JOURNAL_BYTES: u64 = 1024 * 1024;

/// An open store; holds the directory lock for as long as it lives.
pub struct Store {
    dir: PathBuf,
    journal: Mutex<Journal>,
    _lock: File,
}

struct Journal {
    file: File,
    bytes: u64,
    snapshot_bytes: u64,
}

/// One journal line: the entities one acknowledged change set.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalLine {
    changes: Vec<Change>,
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

/// Reads the snapshot and replays the journal over it. Returns the state and
/// the length of the journal's acknowledged part (a torn last line, never
/// acknowledged, is not part of it).
fn read_state(dir: &Path, restrict_mode: bool) -> Result<(StoreState, u64), IdentityError> {
    let mut state = read_snapshot(dir, restrict_mode)?;
    let path = dir.join(JOURNAL);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            state.normalize();
            return Ok((state, 0));
        }
        Err(e) => return Err(io_error(&path, e)),
    };
    let mut good = 0u64;
    let mut rest = &bytes[..];
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            // No newline: the write of this line never completed.
            break;
        };
        let line: JournalLine = match serde_json::from_slice(&rest[..end]) {
            Ok(l) => l,
            Err(_) if end + 1 == rest.len() => break,
            Err(e) => {
                return Err(IdentityError::StoreCorrupt {
                    path,
                    message: format!("line {line_no}: {e}"),
                });
            }
        };
        for c in &line.changes {
            state
                .apply(c)
                .map_err(|message| IdentityError::StoreCorrupt {
                    path: path.clone(),
                    message: format!("line {line_no}: {message}"),
                })?;
        }
        good += end as u64 + 1;
        rest = &rest[end + 1..];
    }
    state.normalize();
    Ok((state, good))
}

/// Reads the snapshot; `restrict_mode` also tightens the file's mode.
/// Replacements are atomic renames, so a reader never sees half a write.
fn read_snapshot(dir: &Path, restrict_mode: bool) -> Result<StoreState, IdentityError> {
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
    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The stored state, read without taking the lock (for tools that run
    /// beside a live server, like `policy check`).
    pub fn read_only(dir: &Path) -> Result<StoreState, IdentityError> {
        read_state(dir, false).map(|(state, _)| state)
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
        let (state, journal_bytes) = read_state(dir, true)?;
        let journal_path = dir.join(JOURNAL);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(|e| io_error(&journal_path, e))?;
        restrict(&journal_path)?;
        // Cut a torn last line so the next append starts on a line of its own.
        file.set_len(journal_bytes)
            .map_err(|e| io_error(&journal_path, e))?;
        let snapshot_bytes = fs::metadata(dir.join(DOCUMENT))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok((
            Store {
                dir: dir.to_path_buf(),
                journal: Mutex::new(Journal {
                    file,
                    bytes: journal_bytes,
                    snapshot_bytes,
                }),
                _lock: lock,
            },
            state,
        ))
    }

    /// Durably records one change. Returns true when the journal has grown
    /// enough that the caller should fold it into a new snapshot
    /// ([`Store::save`]). Blocking: call it off the async runtime's workers.
    pub fn append(&self, changes: &[Change]) -> Result<bool, IdentityError> {
        let path = self.dir.join(JOURNAL);
        let mut line = serde_json::to_vec(&JournalLine {
            changes: changes.to_vec(),
        })
        .map_err(|e| IdentityError::Internal(format!("encoding a change: {e}")))?;
        line.push(b'\n');
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let written = j.file.write_all(&line).and_then(|_| j.file.sync_data());
        if let Err(e) = written {
            // Leave no partial line behind for the next append to follow.
            let len = j.bytes;
            let _ = j.file.set_len(len);
            return Err(io_error(&path, e));
        }
        j.bytes += line.len() as u64;
        Ok(j.bytes > MIN_JOURNAL_BYTES.max(j.snapshot_bytes))
    }

    /// Durably replaces the stored state. Blocking: call it off the async
    /// runtime's worker threads.
    pub fn save(&self, state: &StoreState) -> Result<(), IdentityError> {
        let bytes = serde_json::to_vec(state).map_err(|e| IdentityError::StoreCorrupt {
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
        sync_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        // The snapshot now holds every journalled change.
        let journal = self.dir.join(JOURNAL);
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        j.file
            .set_len(0)
            .and_then(|_| j.file.sync_all())
            .map_err(|e| io_error(&journal, e))?;
        j.bytes = 0;
        j.snapshot_bytes = bytes.len() as u64;
        Ok(())
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

#[cfg(test)]
mod journal_tests {
    use super::*;
    use crate::identity::model::{Entity, EntityKey};

    fn revoke(id: &str, at: i64) -> Change {
        Change {
            entity: EntityKey::Revocation(id.into()),
            value: Some(Entity::Revocation(at)),
        }
    }

    #[test]
    fn changes_are_journalled_and_replayed_on_open() {
        let dir = tempfile::TempDir::new().unwrap();
        let (store, _) = Store::open(dir.path()).unwrap();
        assert!(!store.append(&[revoke("AIDAONE", 1)]).unwrap());
        store.append(&[revoke("AIDATWO", 2)]).unwrap();
        store
            .append(&[Change {
                entity: EntityKey::Revocation("AIDAONE".into()),
                value: None,
            }])
            .unwrap();
        drop(store);
        // No snapshot was written: three journal lines are the whole store.
        assert!(!dir.path().join(DOCUMENT).exists());
        let (_, state) = Store::open(dir.path()).unwrap();
        assert_eq!(
            state.revoked_before.into_iter().collect::<Vec<_>>(),
            vec![("AIDATWO".to_string(), 2)]
        );
    }

    #[test]
    fn a_torn_last_line_was_never_acknowledged_and_is_dropped() {
        let dir = tempfile::TempDir::new().unwrap();
        let (store, _) = Store::open(dir.path()).unwrap();
        store.append(&[revoke("AIDAONE", 1)]).unwrap();
        drop(store);
        let journal = dir.path().join(JOURNAL);
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(b"{\"changes\":[{\"entity\":{\"kind\":\"revoc")
            .unwrap();
        drop(f);
        let (store, state) = Store::open(dir.path()).unwrap();
        assert_eq!(state.revoked_before.len(), 1);
        // The next change starts on a line of its own and survives.
        store.append(&[revoke("AIDATWO", 2)]).unwrap();
        drop(store);
        let (_, state) = Store::open(dir.path()).unwrap();
        assert_eq!(state.revoked_before.len(), 2);
    }

    #[test]
    fn a_corrupt_line_before_the_last_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        fs::write(
            dir.path().join(JOURNAL),
            "{\"changes\":[]}\nnot json\n{\"changes\":[]}\n",
        )
        .unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(IdentityError::StoreCorrupt { .. })
        ));
    }

    #[test]
    fn folding_the_journal_into_a_snapshot_keeps_everything() {
        let dir = tempfile::TempDir::new().unwrap();
        let (store, mut state) = Store::open(dir.path()).unwrap();
        // Enough lines to pass the fold threshold.
        let mut fold = false;
        let mut n = 0;
        while !fold {
            let c = revoke(&format!("AIDA{n:06}"), n);
            state.apply(&c).unwrap();
            fold = store.append(&[c]).unwrap();
            n += 1;
        }
        assert!(n > 1000, "folded after {n} changes");
        store.save(&state).unwrap();
        assert_eq!(fs::metadata(dir.path().join(JOURNAL)).unwrap().len(), 0);
        store.append(&[revoke("AIDALAST", 7)]).unwrap();
        drop(store);
        let (_, reread) = Store::open(dir.path()).unwrap();
        assert_eq!(reread.revoked_before.len() as i64, n + 1);
        // Replaying a journal over a snapshot that already holds it (a crash
        // between the snapshot's rename and the journal's truncation) changes nothing.
        let again = reread.clone();
        let mut replayed = reread;
        for c in again.changes() {
            replayed.apply(&c).unwrap();
        }
        assert_eq!(replayed, again);
    }
}
