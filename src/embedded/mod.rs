//! The embedded store: a real, local S3-compatible object store running in-process, used when
//! the config says `[upstream] endpoint = "embedded"` (trying s3warden out, and the tests).
//!
//! The proxy talks to it exactly as to S3: over HTTP on a loopback port, path-style, with SigV4
//! signed by the upstream credentials (verified by s3s). It follows S3's semantics for the
//! operations real clients use — buckets, listing (v1 and v2), objects with ranges, conditional
//! requests, checksums and tags, copies, multipart uploads — with S3's status codes and error
//! codes. Keys are stored verbatim: any key S3 accepts is its own object.
//!
//! Writes are atomic and durable (temporary file, fsync, rename, then the JSON sidecar that
//! commits it, atomically). A body that fails or ends short commits nothing. A restart rebuilds
//! the index from the sidecars.
//!
//! Layout: `server` (HTTP, auth, access), `service` (the s3s `S3` trait), `buckets`,
//! `objects`, `reads`, `multipart` (the operations), `store` (shared state and streaming),
//! `disk` (files and their atomicity), `index` (in-memory index), `listing` (pagination),
//! `checksum`, `conditions`, `attrs` and `records` (what is stored).
//!
//! Where it differs from S3, because s3s 0.14.1 answers before the store is asked: a `Range`
//! it cannot parse (several ranges, garbage) and an `If-None-Match` list are `400
//! InvalidArgument` (S3 ignores the one and accepts the other); HEAD with `Range` is `200`, not
//! `206`; a wrong payload hash on an XML body (DeleteObjects, CompleteMultipartUpload, tagging)
//! is `500 InternalError` rather than `XAmzContentSHA256Mismatch` (the operation does not run);
//! error bodies carry no `Resource`/`Key`/`BucketName`; POST form uploads are not offered.

mod attrs;
mod buckets;
mod checksum;
mod conditions;
mod disk;
mod index;
mod listing;
mod multipart;
mod objects;
mod reads;
mod records;
mod server;
mod service;
mod store;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the embedded store keeps its data and which key and region requests must be signed with.
#[derive(Clone)]
pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for EmbeddedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedConfig")
            .field("data_dir", &self.data_dir)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("invalid embedded store config: {field} {problem}")]
    InvalidConfig {
        field: &'static str,
        problem: &'static str,
    },
    #[error("cannot create the embedded store data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the embedded store data directory is in use by another store (lock {path} is held)")]
    Locked { path: PathBuf },
    #[error("cannot load the embedded store from {path}: {source}")]
    Load {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on 127.0.0.1: {source}")]
    Bind { source: std::io::Error },
}

/// A running embedded store. Dropping it stops accepting connections; [`shutdown`] also waits
/// for open ones to finish.
///
/// [`shutdown`]: EmbeddedStore::shutdown
pub struct EmbeddedStore {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Creates `data_dir` if missing, loads the index, binds 127.0.0.1:0 and serves S3
    /// (path-style) in a spawned task.
    pub async fn start(cfg: EmbeddedConfig) -> Result<EmbeddedStore, EmbeddedError> {
        for (field, value) in [
            ("region", &cfg.region),
            ("access_key_id", &cfg.access_key_id),
            ("secret_access_key", &cfg.secret_access_key),
        ] {
            if value.is_empty() {
                return Err(EmbeddedError::InvalidConfig {
                    field,
                    problem: "must not be empty",
                });
            }
        }
        let dir = cfg.data_dir.clone();
        let (lock, index, disk) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|source| EmbeddedError::CreateDir {
                path: dir.clone(),
                source,
            })?;
            let lock_path = dir.join(".lock");
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|source| EmbeddedError::Lock {
                    path: lock_path.clone(),
                    source,
                })?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(EmbeddedError::Locked { path: lock_path });
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(EmbeddedError::Lock {
                        path: lock_path,
                        source,
                    });
                }
            }
            let disk = disk::Disk::new(dir);
            let index = disk.load()?;
            Ok((lock, index, disk))
        })
        .await
        .map_err(|e| EmbeddedError::Load {
            path: cfg.data_dir.clone(),
            source: std::io::Error::other(e),
        })??;

        let store = store::Store::new(disk, index, cfg.region.clone(), &cfg.access_key_id);
        let mut builder = S3ServiceBuilder::new(store);
        builder.set_auth(server::KeyAuth(SimpleAuth::from_single(
            cfg.access_key_id,
            cfg.secret_access_key,
        )));
        builder.set_access(server::SigV4Only { region: cfg.region });
        let service = builder.build();

        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| EmbeddedError::Bind { source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmbeddedError::Bind { source })?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, service, stopped, lock));
        tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "embedded S3 store listening");
        Ok(EmbeddedStore {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets open ones finish (up to 10 s), and releases the data
    /// directory, so a new store can start on it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
