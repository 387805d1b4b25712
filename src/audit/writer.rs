//! The audit writer: a task that drains a bounded queue of records into a
//! JSON-lines file (or standard output), flushing whenever the queue is empty.

use std::path::PathBuf;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::AuditRecord;

#[derive(Debug, thiserror::Error)]
pub enum AuditWriterError {
    #[error("cannot open audit log {path:?}: {source}")]
    Open {
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
    /// Opens `path` for appending (`"-"` = standard output) and starts the
    /// writer task. The task ends when every `AuditLog` clone is dropped.
    pub async fn open(
        path: &str,
        queue: usize,
    ) -> Result<(AuditLog, tokio::task::JoinHandle<()>), AuditWriterError> {
        let (tx, rx) = mpsc::channel(queue);
        let out: Box<dyn AsyncWrite + Send + Unpin> = if path == "-" {
            Box::new(tokio::io::stdout())
        } else {
            let p = PathBuf::from(path);
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|source| AuditWriterError::Open {
                        path: p.clone(),
                        source,
                    })?;
            }
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .await
                .map_err(|source| AuditWriterError::Open {
                    path: p.clone(),
                    source,
                })?;
            Box::new(f)
        };
        let handle = tokio::spawn(run(rx, out));
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
}

async fn run(mut rx: mpsc::Receiver<AuditRecord>, out: Box<dyn AsyncWrite + Send + Unpin>) {
    let mut out = BufWriter::new(out);
    let mut line = Vec::with_capacity(1024);
    while let Some(record) = rx.recv().await {
        line.clear();
        if serde_json::to_writer(&mut line, &record).is_err() {
            tracing::error!(request_id = %record.request_id, "audit record could not be serialised");
            continue;
        }
        line.push(b'\n');
        if let Err(e) = out.write_all(&line).await {
            tracing::error!(error = %e, "audit log write failed");
        }
        if rx.is_empty()
            && let Err(e) = out.flush().await
        {
            tracing::error!(error = %e, "audit log flush failed");
        }
    }
    let _ = out.flush().await;
}
