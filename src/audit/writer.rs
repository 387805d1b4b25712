//! The audit writer: a dedicated thread draining a bounded queue into the
//! JSON-lines log, sealing each line into the hash chain, syncing per the
//! configured policy, and rotating by size and age. A rotated file ends with
//! a digest record; the next file's first record links to that digest, so the
//! chain runs across files. Rotated files are compressed in the background,
//! one at a time, by a thread of lower priority.
//!
//! On start the writer takes an exclusive lock beside the log, so a second
//! s3warden on the same path refuses to start instead of interleaving a
//! second chain into the file. It then recovers: a line cut off by a crash
//! is truncated away (its request had not finished being recorded), and the
//! chain continues from the last complete record. Signed checkpoints (see
//! [`super::checkpoint`]) are written at an interval, at every rotation and
//! at shutdown, each after the records it covers are on disk.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::AuditRecord;
use super::chain::{ChainHead, link, seal, seal_in_place};
use super::checkpoint::{
    self, Checkpoint, CheckpointError, CheckpointHead, FileSpan, SigningKey, checkpoints_path,
};
use super::files::{list_log_files, open_lines, rotated_name};
use crate::config::{AuditConfig, FsyncPolicy};

#[derive(Debug, thiserror::Error)]
pub enum AuditWriterError {
    #[error("cannot open audit log {path:?}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot recover audit log {path:?}: {source}")]
    Recover {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "audit log {path:?} is already being written by another s3warden (lock {lock:?} is held); give each instance its own [audit] path"
    )]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("audit checkpoints {path:?}: {message}")]
    Checkpoints { path: PathBuf, message: String },
    #[error(transparent)]
    SigningKey(#[from] CheckpointError),
    #[error("the audit writer has stopped")]
    Closed,
}

/// The name records and checkpoints give their writer: the configured one,
/// else the host name.
pub fn instance_name(cfg: &AuditConfig) -> String {
    if let Some(name) = cfg.instance.as_deref().filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    // No dependency just for gethostname(2): Linux exposes it here, and the
    // other Unixes put it in the environment of most shells and services.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// The sending side of the audit queue.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Box<AuditRecord>>,
}

impl AuditLog {
    /// Opens the log (recovering it if needed) and starts the writer thread.
    /// The thread ends, after a final sync, when every `AuditLog` is dropped.
    pub fn open(
        cfg: &AuditConfig,
    ) -> Result<(AuditLog, std::thread::JoinHandle<()>), AuditWriterError> {
        let (tx, rx) = mpsc::channel(cfg.queue);
        let instance = instance_name(cfg);
        let sink = if cfg.path == "-" {
            Sink::Stdout(std::io::stdout())
        } else {
            Sink::File(Box::new(LogFile::open(cfg, &instance)?))
        };
        let fsync = cfg.fsync;
        let interval = Duration::from_millis(cfg.fsync_interval_ms);
        let handle = std::thread::Builder::new()
            .name("s3warden-audit".into())
            .spawn(move || run(rx, sink, fsync, interval, instance))
            .map_err(|source| AuditWriterError::Open {
                path: PathBuf::from("audit writer thread"),
                source,
            })?;
        Ok((AuditLog { tx }, handle))
    }

    /// Waits for room in the queue and reserves it for one record.
    pub async fn reserve(&self) -> Result<mpsc::OwnedPermit<Box<AuditRecord>>, AuditWriterError> {
        self.tx
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| AuditWriterError::Closed)
    }

    /// Reserves room only if there is some now.
    pub fn try_reserve(
        &self,
    ) -> Result<Option<mpsc::OwnedPermit<Box<AuditRecord>>>, AuditWriterError> {
        match self.tx.clone().try_reserve_owned() {
            Ok(p) => Ok(Some(p)),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(None),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AuditWriterError::Closed),
        }
    }

    /// Records waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// After writing a batch smaller than the largest, the writer waits this long
/// before it looks at the queue again, so that records gather: under load,
/// one wake-up of the writer thread per batch instead of one per request
/// (requests only push to the queue while the writer is not waiting on it).
/// Records reach the file at most this much later; shutdown still drains all.
const LINGER: Duration = Duration::from_millis(2);

/// The most records written in one batch.
const MAX_BATCH: usize = 1024;

/// The batch buffer is kept between batches up to this size (a full batch of
/// large records may grow it far beyond what the next one needs).
const MAX_KEPT_BUFFER: usize = 1024 * 1024;

enum Sink {
    Stdout(std::io::Stdout),
    File(Box<LogFile>),
}

fn run(
    mut rx: mpsc::Receiver<Box<AuditRecord>>,
    mut sink: Sink,
    fsync: FsyncPolicy,
    interval: Duration,
    mut instance: String,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "audit writer cannot start its timer");
            return;
        }
    };
    let mut head = match &sink {
        Sink::File(f) => f.head.clone(),
        Sink::Stdout(_) => ChainHead::genesis(),
    };
    let mut batch = Vec::with_capacity(256);
    let mut text: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut last_sync = Instant::now();
    let mut dirty = false;
    loop {
        let wait = if dirty {
            interval.saturating_sub(last_sync.elapsed())
        } else {
            Duration::from_secs(1)
        };
        let first = match rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
            Ok(Some(r)) => Some(r),
            Ok(None) => break,
            Err(_) => None,
        };
        batch.extend(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let lingering = !batch.is_empty() && batch.len() < MAX_BATCH;
        // One buffer for the batch, kept across batches: each record is
        // serialised into it (as serde_json would write it, faster: see
        // `json`) and sealed where it lies, so a record costs no allocation
        // or copy of its own here.
        text.clear();
        if text.capacity() > MAX_KEPT_BUFFER {
            text.shrink_to(MAX_KEPT_BUFFER);
        }
        let first_seq = head.seq + 1;
        for mut record in batch.drain(..) {
            // Lent to the record for serialising, not cloned into it.
            std::mem::swap(&mut record.instance, &mut instance);
            let start = text.len();
            let written = super::json::write(&mut text, &record);
            std::mem::swap(&mut record.instance, &mut instance);
            match written {
                Ok(()) => {
                    seal_in_place(&mut text, start, &mut head);
                    text.push(b'\n');
                }
                Err(e) => {
                    text.truncate(start);
                    tracing::error!(request_id = %record.request_id, error = %e, "audit record not serialisable")
                }
            }
        }
        let result = match &mut sink {
            Sink::Stdout(out) => out.write_all(&text).and_then(|_| out.flush()),
            Sink::File(f) => f.append(&text, first_seq),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "audit log write failed");
        }
        dirty |= !text.is_empty();
        if let Sink::File(f) = &mut sink {
            let due = match fsync {
                FsyncPolicy::Always => dirty,
                FsyncPolicy::Interval => dirty && last_sync.elapsed() >= interval,
                FsyncPolicy::Never => false,
            };
            if due {
                if let Err(e) = f.sync() {
                    tracing::error!(error = %e, "audit log fsync failed");
                }
                last_sync = Instant::now();
                dirty = false;
            }
            if let Err(e) = f.rotate_if_due(&mut head) {
                tracing::error!(error = %e, "audit log rotation failed");
            }
            if f.checkpoint_due()
                && let Err(e) = f.checkpoint("interval", &head)
            {
                tracing::error!(error = %e, "audit checkpoint failed");
            }
        }
        if lingering {
            std::thread::sleep(LINGER);
        }
    }
    if let Sink::File(f) = &mut sink {
        // The shutdown checkpoint syncs the log first, whatever the policy:
        // a checkpoint must never vouch for records not yet on disk.
        if let Err(e) = f.checkpoint("shutdown", &head) {
            tracing::error!(error = %e, "audit shutdown checkpoint failed");
        }
    }
}

/// The live log file with what rotation needs to know about it.
struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    records: u64,
    /// SHA-256 of the file's lines so far, for the digest record.
    digest: Sha256,
    opened: Instant,
    head: ChainHead,
    rotate_bytes: u64,
    rotate_after: Option<Duration>,
    /// Where rotated files go to be compressed (None: they are not).
    compress: Option<Compressor>,
    /// The first sequence number written to the live file (None: empty).
    live_first: Option<u64>,
    checkpoints: Checkpointer,
    /// Held for the writer's lifetime; the OS releases it even on kill -9.
    _lock: File,
}

impl LogFile {
    fn open(cfg: &AuditConfig, instance: &str) -> Result<LogFile, AuditWriterError> {
        let path = PathBuf::from(&cfg.path);
        let open_err = |source| AuditWriterError::Open {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        let lock = lock(&path)?;
        let key_path = cfg
            .signing_key_file
            .clone()
            .unwrap_or_else(|| checkpoint::default_key_path(&path));
        let key = SigningKey::load_or_create(&key_path)?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(open_err)?;
        let mut log = LogFile {
            path: path.clone(),
            file,
            size: 0,
            records: 0,
            digest: Sha256::new(),
            opened: Instant::now(),
            head: ChainHead::genesis(),
            rotate_bytes: cfg.rotate_bytes,
            rotate_after: (cfg.rotate_secs > 0).then(|| Duration::from_secs(cfg.rotate_secs)),
            compress: cfg
                .compress
                .then(|| Compressor::start(cfg.compress_level))
                .transpose()
                .map_err(open_err)?,
            live_first: None,
            checkpoints: Checkpointer::open(
                &path,
                key,
                instance,
                (cfg.checkpoint_secs > 0).then(|| Duration::from_secs(cfg.checkpoint_secs)),
            )?,
            _lock: lock,
        };
        log.recover().map_err(|source| AuditWriterError::Recover {
            path: path.clone(),
            source,
        })?;
        log.checkpoints.resume(&log.head, log.live_first, &path)?;
        if let Some(compressor) = &log.compress {
            compress_leftovers(&log.path, compressor);
        }
        Ok(log)
    }

    /// Reads the live file: hashes its complete lines, cuts off a torn last
    /// line, and finds the chain head (or takes it from the last rotated file).
    fn recover(&mut self) -> std::io::Result<()> {
        let mut reader = BufReader::new(self.file.try_clone()?);
        reader.seek(SeekFrom::Start(0))?;
        let mut good: u64 = 0;
        let mut last_line = None;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            good += n as u64;
            self.digest.update(&line);
            self.records += 1;
            let text = String::from_utf8_lossy(&line[..n - 1]).into_owned();
            if self.live_first.is_none() {
                self.live_first = link(&text).map(|k| k.seq);
            }
            last_line = Some(text);
        }
        let len = self.file.metadata()?.len();
        if len > good {
            tracing::warn!(path = ?self.path, bytes = len - good, "truncating an audit record cut off by a crash");
            self.file.set_len(good)?;
            self.file.sync_data()?;
        }
        self.size = good;
        let last = match last_line {
            Some(l) => Some(l),
            None => last_rotated_line(&self.path),
        };
        if let Some(k) = last.as_deref().and_then(link) {
            self.head = ChainHead {
                seq: k.seq,
                hash: k.hash,
            };
        }
        Ok(())
    }

    /// Appends sealed lines, the first of which has sequence `first_seq`.
    fn append(&mut self, text: &[u8], first_seq: u64) -> std::io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.live_first.get_or_insert(first_seq);
        self.file.write_all(text)?;
        self.size += text.len() as u64;
        self.digest.update(text);
        self.records += text.iter().filter(|b| **b == b'\n').count() as u64;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn rotate_if_due(&mut self, head: &mut ChainHead) -> std::io::Result<()> {
        if self.records == 0 {
            return Ok(());
        }
        let by_size = self.rotate_bytes > 0 && self.size >= self.rotate_bytes;
        let by_age = self
            .rotate_after
            .is_some_and(|d| self.opened.elapsed() >= d);
        if by_size || by_age {
            self.rotate(head)?;
        }
        Ok(())
    }

    /// Closes the live file with a digest record, renames it aside, and
    /// starts a new one whose first record links to the digest.
    fn rotate(&mut self, head: &mut ChainHead) -> std::io::Result<()> {
        let rotated = rotated_name(&self.path, Utc::now());
        let file_name = rotated
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digest = serde_json::json!({
            "type": "digest",
            "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "file": file_name,
            "records": self.records,
            "file_sha256": hex::encode(self.digest.clone().finalize()),
        });
        let mut line = seal(&digest.to_string(), head);
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_all()?;
        std::fs::rename(&self.path, &rotated)?;
        let first = self.live_first.take().unwrap_or(head.seq);
        self.checkpoints.closed.push(FileSpan {
            name: file_name,
            first_seq: first,
            last_seq: head.seq,
        });
        self.file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        sync_dir(&self.path)?;
        self.size = 0;
        self.records = 0;
        self.digest = Sha256::new();
        self.opened = Instant::now();
        // Queued first: a failed checkpoint must not leave it uncompressed.
        if let Some(compressor) = &self.compress {
            compressor.queue(rotated);
        }
        self.checkpoint("rotation", head)?;
        Ok(())
    }
}

impl LogFile {
    fn checkpoint_due(&self) -> bool {
        self.checkpoints
            .every
            .is_some_and(|d| self.checkpoints.last.elapsed() >= d)
    }

    /// Syncs the log, then signs and appends a checkpoint for every record
    /// since the previous one (none if nothing was written since).
    fn checkpoint(&mut self, reason: &str, head: &ChainHead) -> std::io::Result<()> {
        self.checkpoints.last = Instant::now();
        if head.seq <= self.checkpoints.head.last_seq {
            return Ok(());
        }
        self.file.sync_data()?;
        let mut files = std::mem::take(&mut self.checkpoints.closed);
        if let Some(first) = self.live_first {
            files.push(FileSpan {
                name: self.checkpoints.log_name.clone(),
                first_seq: first,
                last_seq: head.seq,
            });
        }
        self.checkpoints.write(reason, head, files)
    }
}

/// The checkpoints file, its signing key, and what the next checkpoint covers.
struct Checkpointer {
    path: PathBuf,
    file: File,
    key: SigningKey,
    head: CheckpointHead,
    instance: String,
    log_name: String,
    every: Option<Duration>,
    last: Instant,
    /// Rotated files holding records since the last checkpoint.
    closed: Vec<FileSpan>,
}

impl Checkpointer {
    /// Opens the checkpoints file, cutting off a line torn by a crash, and
    /// takes up its chain from the last checkpoint.
    fn open(
        live: &Path,
        key: SigningKey,
        instance: &str,
        every: Option<Duration>,
    ) -> Result<Checkpointer, AuditWriterError> {
        let path = checkpoints_path(live);
        let err = |message: String| AuditWriterError::Checkpoints {
            path: path.clone(),
            message,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| err(e.to_string()))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| err(e.to_string()))?;
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            tracing::warn!(path = ?path, "truncating a checkpoint cut off by a crash");
            file.set_len(complete as u64)
                .and_then(|_| file.sync_data())
                .map_err(|e| err(e.to_string()))?;
        }
        let head = match text[..complete].lines().last() {
            None => CheckpointHead::genesis(),
            Some(line) => {
                let opened = checkpoint::open(line).ok_or_else(|| {
                    err("the last line is not a checkpoint; move the file aside to start a new one only after `s3warden audit verify` has examined it".into())
                })?;
                CheckpointHead {
                    last_seq: opened.checkpoint.last_seq,
                    hash: checkpoint::line_hash(line),
                    head_hash: opened.checkpoint.head_hash,
                }
            }
        };
        Ok(Checkpointer {
            path,
            file,
            key,
            head,
            instance: instance.to_string(),
            log_name: live
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            every,
            last: Instant::now(),
            closed: Vec::new(),
        })
    }

    /// Checks the recovered log against the last checkpoint and notes which
    /// rotated file holds records a crash left uncovered.
    fn resume(
        &mut self,
        log: &ChainHead,
        live_first: Option<u64>,
        live: &Path,
    ) -> Result<(), AuditWriterError> {
        if self.head.last_seq == 0
            && let Some(oldest) = oldest_record(live)
            && oldest.seq > 1
        {
            // No checkpoint yet over a log whose older files were pruned
            // (one written before checkpoints existed): the first checkpoint
            // vouches from the oldest record there is, anchored on its `prev`,
            // rather than for records that are gone.
            self.head = CheckpointHead {
                last_seq: oldest.seq - 1,
                hash: oldest.prev.clone(),
                head_hash: oldest.prev,
            };
        }
        let covered = self.head.last_seq;
        let refuse = |message: String| AuditWriterError::Checkpoints {
            path: self.path.clone(),
            message,
        };
        if log.seq < covered
            || (log.seq == covered && covered > 0 && log.hash != self.head.head_hash)
        {
            // Continuing would write a second record with a sequence number
            // a signed checkpoint already vouches for.
            return Err(refuse(format!(
                "the log ends at record {} but the last checkpoint vouches for records up to {covered} with another history: records were removed or rewritten. Run `s3warden audit verify`, then move the log and its checkpoints aside to start a new chain",
                log.seq
            )));
        }
        let live_first = live_first.unwrap_or(log.seq + 1);
        if covered + 1 < live_first
            && let Some(newest) = list_log_files(live)
                .ok()
                .and_then(|f| f.into_iter().rev().find(|p| p.as_path() != live))
        {
            let name = newest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.closed.push(FileSpan {
                name: name.strip_suffix(".gz").unwrap_or(&name).to_string(),
                first_seq: covered + 1,
                last_seq: live_first - 1,
            });
        }
        Ok(())
    }

    fn write(
        &mut self,
        reason: &str,
        head: &ChainHead,
        mut files: Vec<FileSpan>,
    ) -> std::io::Result<()> {
        let first_seq = self.head.last_seq + 1;
        // A file begun before the previous checkpoint is covered from there.
        for f in &mut files {
            f.first_seq = f.first_seq.max(first_seq);
        }
        let cp = Checkpoint {
            kind: "checkpoint".to_string(),
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            instance: self.instance.clone(),
            log: self.log_name.clone(),
            reason: reason.to_string(),
            first_seq,
            last_seq: head.seq,
            head_hash: head.hash.clone(),
            previous: self.head.hash.clone(),
            files,
            public_key: self.key.public_key().to_base64(),
        };
        let line = checkpoint::seal(&cp, &self.key).map_err(std::io::Error::other)?;
        self.file.write_all(format!("{line}\n").as_bytes())?;
        self.file.sync_data()?;
        self.head = CheckpointHead {
            last_seq: head.seq,
            hash: checkpoint::line_hash(&line),
            head_hash: head.hash.clone(),
        };
        Ok(())
    }
}

/// Takes the exclusive lock beside the log (`NAME.lock`).
fn lock(path: &Path) -> Result<File, AuditWriterError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = path.with_file_name(format!("{name}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| AuditWriterError::Open {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AuditWriterError::Locked {
            path: path.to_path_buf(),
            lock: lock_path,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(AuditWriterError::Open {
            path: lock_path,
            source,
        }),
    }
}

pub(super) fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// The chain fields of the oldest record of the log (rotated files first).
fn oldest_record(live: &Path) -> Option<super::chain::Link> {
    let oldest = list_log_files(live).ok()?.into_iter().next()?;
    open_lines(&oldest)
        .ok()?
        .next()?
        .ok()
        .as_deref()
        .and_then(link)
}

/// The last line of the newest rotated file, to continue the chain from.
fn last_rotated_line(live: &Path) -> Option<String> {
    let files = list_log_files(live).ok()?;
    let newest = files.iter().rev().find(|p| p.as_path() != live)?;
    open_lines(newest).ok()?.filter_map(Result::ok).last()
}

/// Gzips a rotated file next to itself at `level`, then removes the original.
fn compress(path: &Path, level: u32) -> std::io::Result<()> {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", path.display()));
    let mut input = File::open(path)?;
    let out = File::create(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n])?;
    }
    enc.finish()?.sync_all()?;
    std::fs::rename(&tmp, &gz)?;
    sync_dir(&gz)?;
    std::fs::remove_file(path)
}

/// The one thread that compresses rotated files, one after another, at a
/// lower scheduling priority than the workers: under a sustained load the
/// log rotates every few seconds (100 MiB of records at 25,000 requests a
/// second), and compressing each file at once on a thread of its own took a
/// sixth of the proxy's CPU from the request path and could pile threads
/// up when files rotated faster than they compressed. Files queue instead;
/// the writer never waits for one, and a queue that grows is reported.
/// Dropped with the log: the thread ends after the file it is compressing
/// (files still queued are compressed at the next start, as those a crash
/// leaves are), so no thread outlives the log's lock.
struct Compressor {
    queue: Option<std::sync::mpsc::Sender<PathBuf>>,
    /// Files queued and not yet compressed.
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Added to the compressing thread's nice value: it yields to the workers
/// when they want the CPU, yet its share against a busy worker (about a
/// quarter of a core at +5) is several times what compressing the log of
/// a saturated proxy takes at `[audit] compress_level`'s default.
const COMPRESS_NICENESS: libc::c_int = 5;

/// Rotated files waiting to be compressed at which the lag is reported.
const BACKLOG_WARN: usize = 3;

impl Compressor {
    fn start(level: u32) -> std::io::Result<Compressor> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let (queue, files) = std::sync::mpsc::channel::<PathBuf>();
        let pending = std::sync::Arc::new(AtomicUsize::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("s3warden-gzip".into())
            .spawn({
                let (pending, stop) = (pending.clone(), stop.clone());
                move || {
                    lower_priority(COMPRESS_NICENESS);
                    for path in files {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Err(e) = compress(&path, level) {
                            tracing::error!(path = ?path, error = %e, "compressing a rotated audit file failed");
                        }
                        pending.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            })?;
        Ok(Compressor {
            queue: Some(queue),
            pending,
            stop,
            thread: Some(thread),
        })
    }

    fn queue(&self, path: PathBuf) {
        use std::sync::atomic::Ordering;
        let waiting = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
        if waiting == BACKLOG_WARN {
            tracing::warn!(
                waiting,
                "audit log compression is falling behind: rotated files wait uncompressed"
            );
        }
        if let Some(queue) = &self.queue {
            let _ = queue.send(path);
        }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Raises the calling thread's nice value by `by` (on Linux the nice value
/// is a thread's own; elsewhere it would be the whole process's, so it is
/// left alone). Best effort: the work is the same at any priority.
fn lower_priority(by: libc::c_int) {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority/setpriority with PRIO_PROCESS and who = 0 act on
    // the calling thread and take no pointers.
    unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        if libc::setpriority(libc::PRIO_PROCESS, 0, now + by) != 0 {
            tracing::debug!("could not lower the audit compressor's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

/// Queues rotated files a crash or a stop left uncompressed.
fn compress_leftovers(live: &Path, compressor: &Compressor) {
    let Ok(files) = list_log_files(live) else {
        return;
    };
    for f in files {
        let name = f.to_string_lossy();
        if f != live && name.ends_with(".jsonl") {
            let _ = std::fs::remove_file(format!("{name}.gz.tmp"));
            compressor.queue(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of this process's thread named `name`, from
    /// /proc (field 19 of a task's stat).
    fn nice_of(name: &str) -> Option<i64> {
        std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
            let dir = task.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            (comm.trim_end() == name).then_some(())?;
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            fields.get(16)?.parse().ok()
        })
    }

    #[test]
    fn rotated_files_are_compressed_in_order_on_a_lower_priority_thread() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..3)
            .map(|i| {
                let path = dir.path().join(format!("audit-{i}.jsonl"));
                let line = format!("{{\"seq\":{i}}}\n");
                std::fs::write(&path, line.repeat(10_000)).unwrap();
                path
            })
            .collect();
        let compressor = Compressor::start(3).unwrap();
        for f in &files {
            compressor.queue(f.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while files.iter().any(|f| f.exists()) {
            assert!(Instant::now() < deadline, "not compressed in time");
            std::thread::sleep(Duration::from_millis(10));
        }
        // The thread waits for more while the compressor lives.
        // SAFETY: as in `lower_priority`.
        let own = i64::from(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
        let expected = (own + i64::from(COMPRESS_NICENESS)).min(19);
        assert_eq!(nice_of("s3warden-gzip"), Some(expected));
        for (i, f) in files.iter().enumerate() {
            let gz = PathBuf::from(format!("{}.gz", f.display()));
            let mut text = String::new();
            flate2::read::GzDecoder::new(File::open(&gz).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, format!("{{\"seq\":{i}}}\n").repeat(10_000));
            assert!(!PathBuf::from(format!("{}.gz.tmp", f.display())).exists());
        }
        drop(compressor);
    }

    /// The configured level reaches the encoder: records-like text gzips
    /// smaller at 9 than at 1, and both give the text back.
    #[test]
    fn rotated_files_are_compressed_at_the_configured_level() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        let mut x: u64 = 1;
        for i in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(&format!(
                "{{\"seq\":{i},\"key\":\"photos/{:x}\",\"status\":{}}}\n",
                x >> 40,
                200 + (x >> 60)
            ));
        }
        let size_at = |level| {
            let path = dir.path().join(format!("audit-{level}.jsonl"));
            std::fs::write(&path, &text).unwrap();
            compress(&path, level).unwrap();
            let gz = PathBuf::from(format!("{}.gz", path.display()));
            let mut back = String::new();
            flate2::read::GzDecoder::new(File::open(&gz).unwrap())
                .read_to_string(&mut back)
                .unwrap();
            assert!(back == text, "level {level} gives the text back");
            std::fs::metadata(&gz).unwrap().len()
        };
        let (fast, small) = (size_at(1), size_at(9));
        assert!(small < fast, "level 9 {small} bytes, level 1 {fast}");
    }
}
