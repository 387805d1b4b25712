//! Delivery of the audit trail to where auditors keep it: every closed
//! (rotated) log file, and the checkpoints that vouch for it, copied to
//! `[audit] deliver_to = "s3://BUCKET/PREFIX/"` through the configured
//! upstream with s3warden's own credentials, one object per file, keyed
//! `PREFIX/INSTANCE/YYYY-MM-DD/FILE` (the checkpoints as
//! `PREFIX/INSTANCE/STEM.checkpoints.jsonl`, replaced as it grows).
//!
//! A file counts as delivered once upstream acknowledged it; its name is then
//! appended (and synced) to `STEM.delivered` beside the log, so a restart
//! never sends it twice. A failed delivery is retried every interval until
//! it is stored; the local file is never removed here. Each attempt leaves an
//! audit record of its own (`operation: DeliverAuditLog`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

use super::State;
use crate::audit::{AuditRecord, AuthInfo, checkpoint::checkpoints_path, files::list_log_files};
use crate::upstream::Outgoing;

/// `s3://BUCKET/PREFIX/`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub bucket: String,
    /// Empty, or ending with `/`.
    pub prefix: String,
}

impl Destination {
    pub fn parse(url: &str) -> Result<Destination, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or("must start with s3://, as s3://bucket/prefix/")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!("{bucket:?} is not a bucket name"));
        }
        let mut prefix = prefix.to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Destination {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

/// What has been delivered, as remembered across restarts.
struct Ledger {
    path: PathBuf,
    delivered: BTreeSet<String>,
}

impl Ledger {
    fn open(live: &Path) -> Ledger {
        let path = live.with_extension("delivered");
        let delivered = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        Ledger { path, delivered }
    }

    fn record(&mut self, name: &str) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(format!("{name}\n").as_bytes())?;
        f.sync_data()?;
        self.delivered.insert(name.to_string());
        Ok(())
    }
}

/// Runs until the server is gone: a pass at start, then one per interval.
pub async fn run(state: Weak<State>, dest: Destination, interval: Duration) {
    let Some(live) = state.upgrade().map(|s| PathBuf::from(&s.config.audit.path)) else {
        return;
    };
    let mut ledger = Ledger::open(&live);
    // The checkpoints file as last delivered (length): sent again when it grows.
    let mut checkpoints_sent: Option<u64> = None;
    loop {
        {
            let Some(state) = state.upgrade() else { return };
            pass(&state, &dest, &live, &mut ledger, &mut checkpoints_sent).await;
        }
        tokio::time::sleep(interval).await;
    }
}

/// The closed files not yet delivered. A rotated file still being
/// compressed (its `.jsonl` beside no `.gz` yet, with compression on) waits.
fn pending(state: &State, live: &Path, ledger: &Ledger) -> Vec<PathBuf> {
    let files = list_log_files(live).unwrap_or_default();
    files
        .into_iter()
        .filter(|f| f != live)
        .filter(|f| !state.config.audit.compress || f.extension().is_some_and(|e| e == "gz"))
        .filter(|f| !ledger.delivered.contains(&file_name(f)))
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn pass(
    state: &Arc<State>,
    dest: &Destination,
    live: &Path,
    ledger: &mut Ledger,
    checkpoints_sent: &mut Option<u64>,
) {
    let instance = crate::audit::instance_name(&state.config.audit);
    for file in pending(state, live, ledger) {
        let modified: DateTime<Utc> = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .map(DateTime::from)
            .unwrap_or_else(|_| Utc::now());
        let key = format!(
            "{}{instance}/{}/{}",
            dest.prefix,
            modified.format("%Y-%m-%d"),
            file_name(&file)
        );
        if deliver(state, dest, &file, &key).await {
            if let Err(e) = ledger.record(&file_name(&file)) {
                tracing::error!(error = %e, file = %file.display(), "cannot note a delivered audit file; it will be sent again");
            }
        } else {
            // Later files wait: the archive keeps the log's order.
            return;
        }
    }
    let checkpoints = checkpoints_path(live);
    let len = std::fs::metadata(&checkpoints).map(|m| m.len()).ok();
    if len.is_some() && len != *checkpoints_sent {
        let key = format!("{}{instance}/{}", dest.prefix, file_name(&checkpoints));
        if deliver(state, dest, &checkpoints, &key).await {
            *checkpoints_sent = len;
        }
    }
}

/// One PUT, streamed from the file with its SHA-256 signed; true once stored.
/// Leaves one audit record either way.
async fn deliver(state: &Arc<State>, dest: &Destination, file: &Path, key: &str) -> bool {
    let started = Instant::now();
    let mut record = AuditRecord {
        time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        request_id: format!("deliver-{}", uuid::Uuid::new_v4().simple()),
        remote: "s3warden".to_string(),
        method: "PUT".into(),
        bucket: Some(dest.bucket.clone()),
        key: Some(key.to_string()),
        operation: Some("DeliverAuditLog".into()),
        auth: AuthInfo {
            kind: "internal",
            ..AuthInfo::default()
        },
        ..AuditRecord::default()
    };
    let outcome = put_file(state, dest, file, key).await;
    record.duration_ms = crate::audit::millis(started.elapsed());
    let stored = match outcome {
        Ok((status, bytes)) => {
            record.status = status;
            record.bytes_out = bytes;
            if (200..300).contains(&status) {
                true
            } else {
                record.error_code = Some("DeliveryRefused".into());
                record.error_detail = Some(format!("upstream answered {status}"));
                false
            }
        }
        Err(e) => {
            record.status = 502;
            record.error_code = Some("DeliveryFailed".into());
            record.error_detail = Some(e);
            false
        }
    };
    if !stored {
        tracing::warn!(file = %file.display(), error = ?record.error_detail, "audit file not delivered; retrying later");
    }
    match state.audit.reserve().await {
        Ok(permit) => {
            permit.send(Box::new(record));
        }
        Err(e) => tracing::error!(error = %e, "cannot record an audit delivery"),
    }
    stored
}

async fn put_file(
    state: &Arc<State>,
    dest: &Destination,
    file: &Path,
    key: &str,
) -> Result<(u16, u64), String> {
    let (hash, len) = digest(file).await.map_err(|e| e.to_string())?;
    let opened = tokio::fs::File::open(file)
        .await
        .map_err(|e| e.to_string())?;
    // Exactly the length hashed: a file that grew since is cut there. The
    // response timeout starts once the last byte has been read.
    let body_done = Arc::new(Notify::new());
    let done = body_done.clone();
    let end = futures_util::stream::once(async move {
        done.notify_one();
        None
    })
    .filter_map(std::future::ready);
    let stream = tokio_util::io::ReaderStream::new(opened.take(len))
        .map_ok(http_body::Frame::data)
        .map_err(|e| -> crate::auth::payload::BoxError { Box::new(e) })
        .chain(end);
    let body = BodyExt::boxed(http_body_util::StreamBody::new(stream));
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(if file_name(file).ends_with(".gz") {
            "application/gzip"
        } else {
            "application/x-ndjson"
        }),
    );
    let out = Outgoing {
        method: Method::PUT,
        bucket: Some(dest.bucket.clone()),
        key: Some(key.to_string()),
        query: Vec::new(),
        headers,
        payload_hash: hash,
        body,
        body_done,
    };
    let resp = state.upstream.send(out).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    // Drain the answer so the connection can be reused.
    let _ = resp.into_body().collect().await.map(|b| b.to_bytes());
    Ok((status, len))
}

/// SHA-256 (hex) and length of a file, read in bounded pieces.
async fn digest(file: &Path) -> std::io::Result<(String, u64)> {
    let mut f = tokio::fs::File::open(file).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_as_bucket_and_prefix() {
        assert_eq!(
            Destination::parse("s3://audit-archive/logs").unwrap(),
            Destination {
                bucket: "audit-archive".into(),
                prefix: "logs/".into()
            }
        );
        assert_eq!(Destination::parse("s3://audit-archive").unwrap().prefix, "");
        for bad in ["audit-archive/logs", "s3://", "s3://A_B/x", "https://x/y"] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }
}
