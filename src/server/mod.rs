//! The listener: TCP or TLS, HTTP/1.1 and HTTP/2, header-read timeouts,
//! routing every request into the pipeline, and graceful shutdown.

mod authenticate;
mod body;
mod integrity;
pub mod pipeline;
mod response;
mod streaming;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rand::RngExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::{AuditLog, AuditWriterError};
use crate::auth::SigningKeyCache;
use crate::config::Config;
use crate::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStore};
use crate::identity::{Directory, Identities, IdentityError};
use crate::upstream::{Endpoint, Upstream, UpstreamCredentials, UpstreamError};
pub use pipeline::ConnInfo;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("embedded store: {0}")]
    Embedded(#[from] EmbeddedError),
    #[error("audit log: {0}")]
    Audit(#[from] AuditWriterError),
    #[error("identities: {0}")]
    Identity(#[from] IdentityError),
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamError),
}

/// Everything a request needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub identities: Arc<Identities>,
    pub keys: SigningKeyCache,
    pub upstream: Upstream,
    pub audit: AuditLog,
}

/// A running s3warden.
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
    audit_task: JoinHandle<()>,
    embedded: Option<EmbeddedStore>,
}

fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Server {
    /// Starts everything the config describes and begins accepting requests.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        let tls = match &config.tls {
            Some(t) => Some(tls::acceptor(&t.cert, &t.key).map_err(ServerError::Tls)?),
            None => None,
        };
        let directory = Directory::from_config(&config)?;
        let (embedded, upstream) = if config.is_embedded() {
            // The embedded store gets a fresh key per run: it is reachable
            // only through the proxy, which re-signs for it.
            let access_key_id = format!("EMBEDDED{}", random_token(12).to_ascii_uppercase());
            let secret = random_token(40);
            let store = EmbeddedStore::start(EmbeddedConfig {
                data_dir: config.embedded_data_dir(),
                region: config.upstream.region.clone(),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret.clone(),
            })
            .await?;
            let endpoint = Endpoint::parse(&store.endpoint(), &config.upstream.region, true)?;
            let creds = UpstreamCredentials::fixed(&access_key_id, &secret);
            let upstream = Upstream::new(endpoint, creds, &config.upstream)?;
            (Some(store), upstream)
        } else {
            let endpoint = Endpoint::parse(
                &config.upstream.endpoint,
                &config.upstream.region,
                config.upstream.path_style,
            )?;
            let creds = UpstreamCredentials::from_config(&config.upstream).await;
            (None, Upstream::new(endpoint, creds, &config.upstream)?)
        };
        let (audit, audit_task) = AuditLog::open(&config.audit.path, config.audit.queue).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let header_timeout = Duration::from_secs(config.limits.header_read_timeout_secs);
        let state = Arc::new(State {
            identities: Arc::new(Identities::new(directory)),
            keys: SigningKeyCache::default(),
            upstream,
            audit,
            config,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(
            listener,
            state.clone(),
            tls.clone(),
            header_timeout,
            shutdown_rx,
        ));
        Ok(Server {
            addr,
            tls: tls.is_some(),
            state,
            shutdown,
            accept_task,
            audit_task,
            embedded,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn endpoint(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), flushes
    /// the audit log, and stops the embedded store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_task.await;
        drop(self.state);
        let _ = self.audit_task.await;
        if let Some(store) = self.embedded {
            store.shutdown().await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn = ConnInfo {
                remote,
                tls: tls.is_some(),
            };
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(pipeline::handle(state, conn, req).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            builder.http2().timer(TokioTimer::new());
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            watcher
                                .watch(
                                    builder
                                        .serve_connection(TokioIo::new(s), service)
                                        .into_owned(),
                                )
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => {
                    watcher
                        .watch(
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .into_owned(),
                        )
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
}
