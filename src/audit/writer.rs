//! The audit writer: a dedicated thread draining a bounded queue into the
//! JSON-lines log, sealing each line into the hash chain, syncing per the
//! configured policy, and rotating by size and age. A rotated file ends with
//! a digest record; the next file's first record links to that digest, so the
//! chain runs across files. Rotated files are compressed in the background.
//!
//! On start the writer recovers: a line cut off by a crash is truncated away
//! (its request had not finished being recorded), and the chain continues
//! from the last complete record.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::AuditRecord;
use super::chain::{ChainHead, link, seal};
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
    #[error("the audit writer has stopped")]
    Closed,
}

/// The sending side of the audit queue.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditRecord>,
}

impl AuditLog {
    /// Opens the log (recovering it if needed) and starts the writer thread.
    /// The thread ends, after a final sync, when every `AuditLog` is dropped.
    pub fn open(
        cfg: &AuditConfig,
    ) -> Result<(AuditLog, std::thread::JoinHandle<()>), AuditWriterError> {
        let (tx, rx) = mpsc::channel(cfg.queue);
        let sink = if cfg.path == "-" {
            Sink::Stdout(std::io::stdout())
        } else {
            Sink::File(Box::new(LogFile::open(cfg)?))
        };
        let fsync = cfg.fsync;
        let interval = Duration::from_millis(cfg.fsync_interval_ms);
        let handle = std::thread::Builder::new()
            .name("s3warden-audit".into())
            .spawn(move || run(rx, sink, fsync, interval))
            .map_err(|source| AuditWriterError::Open {
                path: PathBuf::from("audit writer thread"),
                source,
            })?;
        Ok((AuditLog { tx }, handle))
    }

    /// Waits for room in the queue and reserves it for one record.
    pub async fn reserve(&self) -> Result<mpsc::OwnedPermit<AuditRecord>, AuditWriterError> {
        self.tx
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| AuditWriterError::Closed)
    }

    /// Reserves room only if there is some now.
    pub fn try_reserve(&self) -> Result<Option<mpsc::OwnedPermit<AuditRecord>>, AuditWriterError> {
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

enum Sink {
    Stdout(std::io::Stdout),
    File(Box<LogFile>),
}

fn run(
    mut rx: mpsc::Receiver<AuditRecord>,
    mut sink: Sink,
    fsync: FsyncPolicy,
    interval: Duration,
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
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut text = String::with_capacity(batch.len() * 600);
        for record in batch.drain(..) {
            match serde_json::to_string(&record) {
                Ok(json) => {
                    text.push_str(&seal(&json, &mut head));
                    text.push('\n');
                }
                Err(e) => {
                    tracing::error!(request_id = %record.request_id, error = %e, "audit record not serialisable")
                }
            }
        }
        let result = match &mut sink {
            Sink::Stdout(out) => out.write_all(text.as_bytes()).and_then(|_| out.flush()),
            Sink::File(f) => f.append(&text),
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
        }
    }
    if let Sink::File(f) = &mut sink
        && fsync != FsyncPolicy::Never
        && let Err(e) = f.sync()
    {
        tracing::error!(error = %e, "audit log final fsync failed");
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
    compress: bool,
}

impl LogFile {
    fn open(cfg: &AuditConfig) -> Result<LogFile, AuditWriterError> {
        let path = PathBuf::from(&cfg.path);
        let open_err = |source| AuditWriterError::Open {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
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
            compress: cfg.compress,
        };
        log.recover()
            .map_err(|source| AuditWriterError::Recover { path, source })?;
        if log.compress {
            compress_leftovers(&log.path);
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
            last_line = Some(String::from_utf8_lossy(&line[..n - 1]).into_owned());
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

    fn append(&mut self, text: &str) -> std::io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.file.write_all(text.as_bytes())?;
        self.size += text.len() as u64;
        self.digest.update(text.as_bytes());
        self.records += text.bytes().filter(|b| *b == b'\n').count() as u64;
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
        if self.compress {
            std::thread::spawn(move || {
                if let Err(e) = compress(&rotated) {
                    tracing::error!(path = ?rotated, error = %e, "compressing a rotated audit file failed");
                }
            });
        }
        Ok(())
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// The last line of the newest rotated file, to continue the chain from.
fn last_rotated_line(live: &Path) -> Option<String> {
    let files = list_log_files(live).ok()?;
    let newest = files.iter().rev().find(|p| p.as_path() != live)?;
    open_lines(newest).ok()?.filter_map(Result::ok).last()
}

/// Gzips a rotated file next to itself, then removes the original.
fn compress(path: &Path) -> std::io::Result<()> {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", path.display()));
    let mut input = File::open(path)?;
    let out = File::create(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
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

/// Compresses rotated files a crash left uncompressed.
fn compress_leftovers(live: &Path) {
    let Ok(files) = list_log_files(live) else {
        return;
    };
    for f in files {
        let name = f.to_string_lossy();
        if f != live && name.ends_with(".jsonl") {
            let _ = std::fs::remove_file(format!("{name}.gz.tmp"));
            if let Err(e) = compress(&f) {
                tracing::error!(path = ?f, error = %e, "compressing a rotated audit file failed");
            }
        }
    }
}
