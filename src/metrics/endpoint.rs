//! The operators' listener: `/metrics` in the Prometheus text format,
//! `/healthz` (the process serves), `/readyz` (ready to take traffic: the
//! caller-supplied check, cached briefly so probes never hammer upstream).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Metrics;
use crate::audit::AuditLog;

/// A readiness check: `Ok(detail)` when ready, `Err(why)` otherwise.
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// How long a readiness answer is reused.
const READY_CACHE: Duration = Duration::from_secs(2);

struct Shared {
    metrics: Arc<Metrics>,
    audit: AuditLog,
    ready: ReadyCheck,
    cached: Mutex<Option<(Instant, Result<String, String>)>>,
}

/// The running metrics listener.
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves the metrics endpoints until `shutdown` flips.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    audit: AuditLog,
    ready: ReadyCheck,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        metrics,
        audit,
        ready,
        cached: Mutex::new(None),
    });
    let task = tokio::spawn(async move {
        // Connections are tasks of this set, so stopping the listener ends
        // them too and nothing keeps the audit queue open after shutdown.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let stream = tokio::select! {
                a = listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                _ = shutdown.changed() => break,
            };
            let shared = shared.clone();
            connections.spawn(async move {
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, std::convert::Infallible>(route(&shared, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(MetricsServer { addr, task })
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != http::Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET only\n".into(),
            "text/plain",
        );
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            shared.metrics.encode(shared.audit.queue_depth()),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        "/readyz" => {
            let fresh = shared
                .cached
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .filter(|(at, _)| at.elapsed() < READY_CACHE);
            let result = match fresh {
                Some((_, r)) => r,
                None => {
                    let r = (shared.ready)().await;
                    if let Ok(mut c) = shared.cached.lock() {
                        *c = Some((Instant::now(), r.clone()));
                    }
                    r
                }
            };
            match result {
                Ok(detail) => text(StatusCode::OK, format!("ready\n{detail}\n"), "text/plain"),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                    "text/plain",
                ),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into(), "text/plain"),
    }
}
