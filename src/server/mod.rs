//! The listener: TCP or TLS, HTTP/1.1 and HTTP/2, header-read timeouts,
//! routing every request into the pipeline, and graceful shutdown.

mod api;
mod authenticate;
mod balance;
mod body;
mod conn;
mod cors;
pub mod deliver;
mod http1;
mod integrity;
mod object_tags;
pub mod pipeline;
mod post_upload;
mod response;
pub mod shutdown;
mod streaming;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rand::RngExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::{AuditLog, AuditWriterError};
use crate::auth::SigningKeyCache;
use crate::auth::payload::BoxError;
use crate::config::Config;
use crate::embedded::{EmbeddedConfig, EmbeddedError, EmbeddedStore};
use crate::identity::{Identities, IdentityError, IdentityStore, SessionKeys};
use crate::metrics::{self, Metrics, MetricsServer};
use crate::upstream::{Endpoint, Upstream, UpstreamCredentials, UpstreamError};
pub use conn::TRIM_AFTER;
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
    #[error("cannot start a worker thread: {0}")]
    Runtime(std::io::Error),
}

/// Everything a request needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub identities: Arc<Identities>,
    /// The write path for identity changes (IAM and STS API).
    pub store: Arc<IdentityStore>,
    pub keys: SigningKeyCache,
    pub upstream: Upstream,
    pub audit: AuditLog,
    pub metrics: Arc<Metrics>,
    /// Browser POST uploads that may buffer a part at once.
    pub post_uploads: Arc<tokio::sync::Semaphore>,
    /// The keys that seal and open session tokens (reloadable).
    pub sessions: Arc<SessionKeys>,
    /// Object tags read for `s3:ExistingObjectTag/*`, briefly cached.
    pub object_tags: object_tags::ObjectTagCache,
    /// Tracks connection and stream tasks, and cuts them at the shutdown deadline.
    pub cutoff: Arc<shutdown::Cutoff>,
}

/// A running s3warden.
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    /// Dropped (with the server) or sent `true`: every worker stops accepting.
    shutdown: watch::Sender<bool>,
    /// The data-plane threads, one event loop each; they end once drained.
    workers: Vec<std::thread::JoinHandle<()>>,
    audit_thread: std::thread::JoinHandle<()>,
    metrics_server: Option<MetricsServer>,
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
        let sessions = Arc::new(SessionKeys::load(
            &config.sessions.key_file,
            config.sessions.cache_capacity,
        )?);
        let workers = config.worker_count();
        let (store, dropped) = IdentityStore::open(&config, sessions.clone()).await?;
        for what in dropped {
            tracing::warn!(
                dropped = %what,
                "the identity store referred to an entity the config no longer declares"
            );
        }
        let store = Arc::new(store);
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
            let upstream = Upstream::new(endpoint, creds, &config.upstream, workers)?;
            (Some(store), upstream)
        } else {
            let endpoint = Endpoint::parse(
                &config.upstream.endpoint,
                &config.upstream.region,
                config.upstream.path_style,
            )?;
            let creds = UpstreamCredentials::from_config(&config.upstream).await;
            (
                None,
                Upstream::new(endpoint, creds, &config.upstream, workers)?,
            )
        };
        let (audit, audit_thread) = AuditLog::open(&config.audit)?;
        let listener = bind(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let header_timeout = Duration::from_secs(config.limits.header_read_timeout_secs);
        let state = Arc::new(State {
            identities: store.identities().clone(),
            store,
            keys: SigningKeyCache::default(),
            upstream,
            audit,
            metrics: Arc::new(Metrics::new()),
            post_uploads: Arc::new(tokio::sync::Semaphore::new(config.limits.max_post_uploads)),
            sessions,
            object_tags: object_tags::ObjectTagCache::default(),
            cutoff: Arc::new(shutdown::Cutoff::default()),
            config,
        });
        tokio::spawn(state.store.clone().follow(
            Duration::from_millis(state.config.store.poll_interval_ms),
            Duration::from_secs(state.config.store.reconcile_secs),
        ));
        tokio::spawn(housekeeping(Arc::downgrade(&state)));
        // Validated with the config: a destination that does not parse never gets here.
        if let Some(dest) = state
            .config
            .audit
            .deliver_to
            .as_deref()
            .and_then(|to| deliver::Destination::parse(to).ok())
        {
            tokio::spawn(deliver::run(
                Arc::downgrade(&state),
                dest,
                Duration::from_secs(state.config.audit.deliver_interval_secs),
            ));
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metrics_server = match state.config.metrics_listen {
            Some(addr) => Some(
                metrics::serve(
                    addr,
                    state.metrics.clone(),
                    state.audit.clone(),
                    readiness(&state),
                    shutdown_rx.clone(),
                )
                .await
                .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let mut worker_threads = Vec::with_capacity(workers);
        let (balance, inboxes) = balance::Balance::new(
            (0..workers)
                .map(|i| state.metrics.worker_connections(i))
                .collect(),
        );
        for (index, inbox) in inboxes.into_iter().enumerate() {
            let listener = listener
                .try_clone()
                .map_err(|source| ServerError::Bind { addr, source })?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ServerError::Runtime)?;
            let state = state.clone();
            let tls = tls.clone();
            let shutdown_rx = shutdown_rx.clone();
            let worker = Worker {
                index,
                balance: balance.clone(),
                inbox,
            };
            let thread = std::thread::Builder::new()
                .name(format!("s3warden-worker-{index}"))
                .spawn(move || {
                    crate::upstream::enter_worker(index);
                    runtime.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(listener) => {
                                accept_loop(
                                    listener,
                                    worker,
                                    state,
                                    tls,
                                    header_timeout,
                                    shutdown_rx,
                                )
                                .await
                            }
                            Err(e) => {
                                tracing::error!(error = %e, worker = index, "worker cannot listen")
                            }
                        }
                    });
                    // Drained (or cut and unwound): what is left on this
                    // worker's runtime is dropped with it, each dropped
                    // request still sending its audit record.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })
                .map_err(ServerError::Runtime)?;
            worker_threads.push(thread);
        }
        Ok(Server {
            addr,
            tls: tls.is_some(),
            state,
            shutdown,
            workers: worker_threads,
            audit_thread,
            metrics_server,
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

    /// Takes a reloaded config's identities, policies and session keys, all
    /// or nothing: a config whose identities or keys cannot be used is
    /// refused and the running ones stay. Other settings (listen address,
    /// upstream, limits) need a restart.
    pub async fn reload(&self, config: &Config) -> Result<(), ServerError> {
        let state = &self.state;
        // Validate the key file first: nothing changes if it is unusable.
        let probe = SessionKeys::load(&config.sessions.key_file, 1)?;
        drop(probe);
        state
            .store
            .reload_config(config, state.sessions.clone())
            .await?;
        let sealing = state.sessions.reload(&config.sessions.key_file)?;
        tracing::info!(sealing_key = %sealing, "config reloaded: identities, policies and session keys");
        Ok(())
    }

    /// Where the metrics endpoints listen, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|m| m.addr)
    }

    /// Stops accepting, lets in-flight requests finish for up to `[limits]
    /// shutdown_grace_secs`, cuts what remains (each cut request leaves its
    /// audit record), flushes the audit log, and stops the embedded store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let workers = self.workers;
        let _ = tokio::task::spawn_blocking(move || {
            for w in workers {
                let _ = w.join();
            }
        })
        .await;
        if let Some(m) = self.metrics_server {
            m.shutdown().await;
        }
        drop(self.state);
        // The writer ends once the last queue sender is gone, after a final sync.
        let audit_thread = self.audit_thread;
        let _ = tokio::task::spawn_blocking(move || audit_thread.join()).await;
        if let Some(store) = self.embedded {
            store.shutdown().await;
        }
    }
}

/// The listening socket every worker accepts from (each through a
/// duplicate of it registered with its own event loop): whichever worker is
/// free takes the next connection.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// Connections the kernel queues before a worker accepts them.
const LISTEN_BACKLOG: u32 = 1024;

/// `s3:TlsVersion` as S3 writes it (`1.2`, `1.3`).
fn tls_version(v: Option<rustls::ProtocolVersion>) -> Option<&'static str> {
    match v? {
        rustls::ProtocolVersion::TLSv1_2 => Some("1.2"),
        rustls::ProtocolVersion::TLSv1_3 => Some("1.3"),
        _ => None,
    }
}

/// hyper's smallest HTTP/1 read buffer; `max_header_bytes` below it still
/// gets the proxy's own check (see `pipeline`).
const MIN_HTTP1_BUFFER: usize = 8192;
/// The most an HTTP/1 connection reads at once: request bodies arrive in
/// pieces this large. At 16 KiB a 64 MiB upload took 4,239 reads and 4,184
/// upstream writes; at 256 KiB 271 and 266, and s3warden's CPU per MiB
/// fell from 937 to 508 µs (UNSIGNED-PAYLOAD, docs/benchmarks.md).
const HTTP1_READ_BUFFER: usize = 256 * 1024;
/// HTTP/2 pings find peers that vanished without closing (a laptop
/// closed, a NAT entry dropped), which no request would ever reveal.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent requests one HTTP/2 connection may have: each holds a
/// request's buffers and an upstream exchange.
const H2_MAX_STREAMS: u32 = 100;

/// Idle connections closed per failed accept when descriptors run out:
/// enough to let a burst of new clients in, few enough that a short
/// shortage does not empty the server.
const SHED_PER_FAILURE: usize = 8;

/// How HTTP/1 and HTTP/2 connections are served, set once per worker.
struct Protocols {
    http1: http1::Settings,
    http2: hyper::server::conn::http2::Builder<shutdown::CutExecutor>,
    /// A TLS handshake not done within the header timeout ends its connection.
    handshake_timeout: Duration,
}

/// What a connection needs besides its socket, for as long as it lives.
struct Connection {
    state: Arc<State>,
    activity: conn::Activity,
    /// Held while the connection lives: the graceful shutdown waits for it.
    watcher: hyper_util::server::graceful::Watcher,
    /// Turns `true` when the server shuts down: HTTP/1 connections end
    /// between requests.
    shutdown: watch::Receiver<bool>,
}

impl Protocols {
    fn new(state: &Arc<State>, header_timeout: Duration) -> Protocols {
        let max_header = state.config.limits.max_header_bytes.max(MIN_HTTP1_BUFFER);
        let http1 = http1::Settings {
            max_head: max_header,
            max_read: HTTP1_READ_BUFFER,
        };
        let mut http2 =
            hyper::server::conn::http2::Builder::new(shutdown::CutExecutor(state.cutoff.clone()));
        http2
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(H2_PING_INTERVAL))
            .keep_alive_timeout(H2_PING_TIMEOUT)
            .max_concurrent_streams(H2_MAX_STREAMS)
            .max_header_list_size(max_header as u32);
        Protocols {
            http1,
            http2,
            handshake_timeout: header_timeout,
        }
    }

    /// Completes a TLS handshake within the header timeout, then serves the
    /// connection; a failed or late handshake ends it quietly.
    async fn serve_tls(
        &self,
        acceptor: &tokio_rustls::TlsAcceptor,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        connection: Connection,
    ) -> Result<(), BoxError> {
        // The handshake's state (1.3 KiB) is boxed for as long as it lasts,
        // and the TLS stream (1.2 KiB) boxed as it comes out of it: inline,
        // both would size this future, which lives as long as the connection
        // (4 KiB for an idle TLS connection instead of under 1). A pointer
        // costs 8 bytes in each future the stream is handed through.
        let accept = acceptor.accept(conn::Lingering::new(stream));
        let handshake = Box::pin(tokio::time::timeout(self.handshake_timeout, accept));
        let tls = match handshake.await {
            Ok(Ok(s)) => Box::new(s),
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "tls handshake failed");
                return Ok(());
            }
            Err(_) => return Ok(()),
        };
        let info = ConnInfo {
            remote,
            tls: true,
            tls_version: tls_version(tls.get_ref().1.protocol_version()),
        };
        self.serve(tls, info, connection).await
    }

    /// Serves one connection in the protocol its first bytes announce.
    ///
    /// An async block rather than an async fn: an async fn moves its
    /// arguments into locals of its own and keeps room for both, in a future
    /// that lives as long as the connection.
    #[allow(clippy::manual_async_fn)]
    fn serve<I>(
        &self,
        mut io: I,
        info: ConnInfo,
        connection: Connection,
    ) -> impl Future<Output = Result<(), BoxError>>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        async move {
            let (http2, seen) = match conn::sniff_http2(&mut io).await {
                Ok(sniffed) => sniffed,
                // Gone before saying anything.
                Err(_) => return Ok(()),
            };
            let io = conn::Replay::new(seen, connection.activity.clone(), io);
            if http2 {
                let service = http2_service(connection.state, info, connection.activity);
                // Boxed: an HTTP/2 connection's state is large, and inline it
                // would size every HTTP/1 connection's task too.
                let serving = self.http2.serve_connection(TokioIo::new(io), service);
                Box::pin(connection.watcher.watch(serving))
                    .await
                    .map_err(Into::into)
            } else {
                let state = &connection.state;
                let activity = &connection.activity;
                let served = http1::serve(io, &self.http1, activity, connection.shutdown, |req| {
                    // Boxed per request: inline, a request's future would size
                    // every idle keep-alive connection's task by its largest path.
                    let answer: Pin<Box<dyn Future<Output = _> + Send>> = match req {
                        Ok(req) => Box::pin(pipeline::handle(
                            state.clone(),
                            info,
                            req.map(body::ClientBody::H1),
                        )),
                        Err(refused) => {
                            Box::pin(pipeline::refuse_unreadable(state.clone(), info, refused))
                        }
                    };
                    answer
                })
                .await;
                drop(connection.watcher);
                served.map_err(Into::into)
            }
        }
    }
}

/// HTTP/2 streams into the pipeline, each counted as a request in progress
/// until its answer's body is gone.
fn http2_service(
    state: Arc<State>,
    info: ConnInfo,
    activity: conn::Activity,
) -> impl hyper::service::HttpService<
    hyper::body::Incoming,
    ResBody = pipeline::ResponseBody,
    Error = Infallible,
    Future: Send,
> + Send
+ 'static {
    service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let busy = activity.begin();
        let handled = Box::pin(pipeline::handle(
            state.clone(),
            info,
            req.map(body::ClientBody::H2),
        ));
        async move {
            let resp = handled.await;
            // The request is in progress until its answer's body is gone:
            // the closure owns `busy` and drops with the body.
            Ok::<_, Infallible>(resp.map(|body| {
                body.map_frame(move |frame| {
                    let _in_progress = &busy;
                    frame
                })
                .boxed()
            }))
        }
    })
}

/// Counts a connection as open for as long as it lives.
struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// Every second: the identity store's state into the metrics, the session
/// key file read again when it changed (a rotation reaches every instance
/// that shares the file without a restart or a signal), and upstream
/// connections that closed while pooled let go.
async fn housekeeping(state: std::sync::Weak<State>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        state.upstream.sweep_idle();
        let status = state.store.status();
        state
            .metrics
            .set_identity_store(status.reachable, status.applied_seq);
        match state
            .sessions
            .reload_if_changed(&state.config.sessions.key_file)
        {
            Ok(Some(id)) => {
                tracing::info!(sealing_key = %id, "session key file changed; keys reloaded")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "session key file changed but cannot be used; keeping the keys in use")
            }
        }
    }
}

/// Ready when identities are loaded (they are, once started) and upstream
/// answers a probe. An unreachable shared identity store does not make an
/// instance unready (it serves from its last directory, and taking every
/// instance out of rotation would stop all S3 traffic); the detail says so.
fn readiness(state: &Arc<State>) -> metrics::endpoint::ReadyCheck {
    let weak = Arc::downgrade(state);
    Arc::new(move || {
        let weak = weak.clone();
        Box::pin(async move {
            let state = weak.upgrade().ok_or_else(|| "shutting down".to_string())?;
            if state.identities.snapshot().account_id.is_empty() {
                return Err("identities not loaded".to_string());
            }
            state
                .upstream
                .probe(Duration::from_secs(3))
                .await
                .map_err(|e| format!("upstream: {e}"))?;
            let s = state.store.status();
            Ok(if s.reachable {
                format!(
                    "identity store: {} {} reachable, change {}",
                    s.kind, s.location, s.applied_seq
                )
            } else {
                format!(
                    "identity store: {} {} UNREACHABLE: serving the last directory (change {}), refusing IAM changes",
                    s.kind, s.location, s.applied_seq
                )
            })
        })
    })
}

/// A worker's place among the others: its index, the connection counts
/// of all, and where connections handed to it arrive.
struct Worker {
    index: usize,
    balance: Arc<balance::Balance>,
    inbox: tokio::sync::mpsc::UnboundedReceiver<balance::Handoff>,
}

impl Worker {
    /// A connection this worker accepted: kept (with its count), or handed
    /// to a less loaded worker (None). One that cannot be handed over (that
    /// worker stopped accepting) is served here.
    fn take(
        &self,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
    ) -> Option<(tokio::net::TcpStream, SocketAddr, balance::Counted)> {
        let counted = self.balance.place(self.index);
        if counted.worker() == self.index {
            return Some((stream, remote, counted));
        }
        // Deregistered from this worker's event loop, to be registered
        // with the other's.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "accepted connection lost");
                return None;
            }
        };
        let back = self
            .balance
            .hand(balance::Handoff {
                stream,
                remote,
                counted,
            })
            .err()?;
        let counted = self.balance.keep(self.index);
        Some((register(back.stream, remote)?, remote, counted))
    }
}

/// An accepted socket registered with this worker's event loop (None, and
/// the socket closed, when it cannot be).
fn register(stream: std::net::TcpStream, remote: SocketAddr) -> Option<tokio::net::TcpStream> {
    tokio::net::TcpStream::from_std(stream)
        .inspect_err(|e| tracing::debug!(%remote, error = %e, "accepted connection lost"))
        .ok()
}

async fn accept_loop(
    listener: TcpListener,
    mut worker: Worker,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut backoff = conn::AcceptBackoff::default();
    let connections = Arc::new(conn::Connections::default());
    // Shared, not copied into every connection's task (hyper's builders
    // are a few hundred bytes).
    let protocols = Arc::new(Protocols::new(&state, header_timeout));
    // While accept backs off (out of descriptors), connections handed
    // over by other workers and the shutdown signal are still taken.
    let mut paused_until: Option<tokio::time::Instant> = None;
    loop {
        let until = paused_until;
        let resume = async move {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let (stream, remote, counted) = tokio::select! {
            accepted = listener.accept(), if paused_until.is_none() => match accepted {
                Ok((stream, remote)) => {
                    backoff.succeeded();
                    match worker.take(stream, remote) {
                        Some(kept) => kept,
                        None => continue,
                    }
                }
                Err(e) if conn::out_of_descriptors(&e) => {
                    let (pause, log) = backoff.failed(std::time::Instant::now());
                    let shed = connections.shed_idle(SHED_PER_FAILURE);
                    if let Some(failures) = log {
                        tracing::warn!(error = %e, failures, shed, "out of file descriptors; accept backs off and sheds the oldest idle connections");
                    }
                    paused_until = Some(tokio::time::Instant::now() + pause);
                    continue;
                }
                // A connection reset before it was accepted concerns that
                // connection only.
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            },
            () = resume => {
                paused_until = None;
                continue;
            }
            Some(handed) = worker.inbox.recv() => match register(handed.stream, handed.remote) {
                Some(stream) => (stream, handed.remote, handed.counted),
                None => continue,
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        state.metrics.connection_opened();
        // Made here, not in the task: a task dropped before its first poll
        // (a runtime shutting down) still counts its connection out.
        let open = (ConnectionGuard(state.metrics.clone()), counted);
        let cutoff = state.cutoff.clone();
        let activity = conn::Activity::default();
        let registered = connections.register(&activity);
        let protocols = protocols.clone();
        let shutdown_rx = shutdown.clone();
        cutoff.spawn(async move {
            let _open = open;
            let connection = Connection {
                state,
                activity: activity.clone(),
                watcher,
                shutdown: shutdown_rx,
            };
            let serve = async {
                match tls {
                    // Boxed: a TLS connection's state (handshake, TLS stream)
                    // is several KiB; inline, it would size every plain
                    // connection's task too, for as long as it lives.
                    Some(acceptor) => {
                        Box::pin(protocols.serve_tls(&acceptor, stream, remote, connection)).await
                    }
                    None => {
                        let info = ConnInfo {
                            remote,
                            tls: false,
                            tls_version: None,
                        };
                        protocols
                            .serve(conn::Lingering::new(stream), info, connection)
                            .await
                    }
                }
            };
            // No request in progress for the header timeout, from accept on:
            // the connection is dropped, which closes it.
            let result = tokio::select! {
                r = serve => r,
                _ = registered.shed.notified() => {
                    tracing::debug!(%remote, "idle connection shed: out of file descriptors");
                    Ok(())
                }
                _ = activity.idle_for(header_timeout) => {
                    tracing::debug!(%remote, "connection idle past the header timeout; closing it");
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // No more hand-offs: other workers serve what they accept from now on.
    // Those already queued are closed unread, as connections still in the
    // listen queue are.
    worker.inbox.close();
    while worker.inbox.try_recv().is_ok() {}
    let grace = Duration::from_secs(state.config.limits.shutdown_grace_secs);
    shutdown::drain_then_cut(&state.cutoff, graceful.shutdown(), grace).await;
}
