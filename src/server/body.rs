//! Body plumbing for the pipeline: counting the bytes each way, telling the
//! upstream client when the request body is done, finishing the audit record
//! when the response body is done, and reading small control bodies whole
//! under a limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::audit::SharedGuard;
use crate::auth::payload::{BodyError, BoxError};
use crate::metrics::Metrics;
use crate::server::pipeline::CLIENT_DISCONNECTED;
use crate::server::shutdown::{CUT_BY_SHUTDOWN, Cutoff};

/// The client's request body on its way upstream: counts bytes, fails with
/// [`BodyError::TooLarge`] past its limit, and notifies `done` once it has
/// ended, failed or been dropped.
pub struct InboundBody<B> {
    inner: B,
    counter: Arc<AtomicU64>,
    limit: u64,
    done: Arc<Notify>,
    notified: bool,
}

impl<B> InboundBody<B> {
    pub fn new(inner: B, counter: Arc<AtomicU64>, done: Arc<Notify>) -> Self {
        InboundBody {
            inner,
            counter,
            limit: u64::MAX,
            done,
            notified: false,
        }
    }

    /// Fails the body once more than `limit` bytes have arrived.
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    fn notify(&mut self) {
        if !self.notified {
            self.notified = true;
            self.done.notify_one();
        }
    }
}

impl<B> Drop for InboundBody<B> {
    fn drop(&mut self) {
        self.notify();
    }
}

impl<B> Body for InboundBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    let len = d.len() as u64;
                    let total = this.counter.fetch_add(len, Ordering::Relaxed) + len;
                    if total > this.limit {
                        this.notify();
                        let limit = this.limit;
                        return Poll::Ready(Some(Err(Box::new(BodyError::TooLarge { limit }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.notify();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.notify();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body on its way to the client: counts bytes and finishes the
/// audit record when the body ends, fails, or is dropped (client gone, or
/// cut at the shutdown deadline — which the record then says).
pub struct OutboundBody<B: Body> {
    inner: B,
    sent: u64,
    /// The whole answer's length, per the body's exact size when it was
    /// created (an announced `Content-Length`); `None` when unknown.
    expected: Option<u64>,
    /// The body reported its end: everything was handed to the connection.
    ended: bool,
    audit: SharedGuard,
    metrics: Arc<Metrics>,
    cutoff: Arc<Cutoff>,
}

impl<B: Body> OutboundBody<B> {
    pub fn new(inner: B, audit: SharedGuard, metrics: Arc<Metrics>, cutoff: Arc<Cutoff>) -> Self {
        OutboundBody {
            expected: inner.size_hint().exact(),
            inner,
            sent: 0,
            ended: false,
            audit,
            metrics,
            cutoff,
        }
    }
}

impl<B: Body> Drop for OutboundBody<B> {
    fn drop(&mut self) {
        let sent = self.sent;
        // The connection stops polling a body that says it has ended, or
        // (HTTP/1) that has sent its whole declared length: each counts.
        let complete = self.ended || self.inner.is_end_stream() || self.expected == Some(self.sent);
        let cut = !complete && self.cutoff.is_cut();
        let expected = self.expected;
        self.audit.update(|r| {
            r.bytes_out = sent;
            if complete {
                return;
            }
            // An answer cut short must never read as a whole one: say why,
            // and how much of how much was sent.
            r.bytes_expected = expected;
            let (code, source) = if cut {
                (CUT_BY_SHUTDOWN, crate::s3::ErrorSource::Internal)
            } else {
                (CLIENT_DISCONNECTED, crate::s3::ErrorSource::Client)
            };
            if cut {
                r.error_code = Some(code.to_string());
                r.error_source = Some(source);
            } else {
                r.error_code.get_or_insert_with(|| code.to_string());
                r.error_source.get_or_insert(source);
            }
        });
        self.audit.finish(|r| self.metrics.observe(r));
    }
}

impl<B> Body for OutboundBody<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.sent += d.len() as u64;
                }
            }
            Poll::Ready(None) => this.ended = true,
            Poll::Ready(Some(Err(e))) => {
                let msg = e.to_string();
                let code = match e.downcast_ref::<BodyError>() {
                    Some(BodyError::IdleTimeout { .. }) => "UpstreamIdleTimeout",
                    _ => "ResponseStreamFailed",
                };
                this.audit.update(|r| {
                    r.error_code.get_or_insert_with(|| code.to_string());
                    r.error_source.get_or_insert(crate::s3::ErrorSource::Upstream);
                    tracing::warn!(request_id = %r.request_id, error = %msg, "response body failed mid-stream");
                });
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body that fails with [`BodyError::IdleTimeout`] when its source has
/// nothing for `timeout` while it is being waited on. Time spent while
/// nobody polls it (the reader is slow) does not count: only a silent
/// source does. Used for clients that stop sending a body they announced
/// (S3 answers `400 RequestTimeout` after about 20 s) and for an upstream
/// that stops sending the object it started.
///
/// One timer serves the whole body and is only moved when it fires early:
/// a streamed body waits between almost every pair of frames, and a timer
/// allocated, registered and cancelled per wait cost more than the frame's
/// own relay (see docs/benchmarks.md, the upload path).
pub struct IdleBody<B> {
    inner: B,
    timeout: Duration,
    /// When the current wait began; `None` while the source is delivering.
    waiting_since: Option<Instant>,
    /// Never later than the current wait's deadline; may be earlier (set
    /// for an earlier wait), in which case it is moved when it fires.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        IdleBody {
            inner,
            timeout,
            waiting_since: None,
            timer: None,
        }
    }

    /// Ready with the error once the current wait has lasted `timeout`.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<BodyError> {
        let deadline = *self.waiting_since.get_or_insert_with(Instant::now) + self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(BodyError::IdleTimeout {
                    secs: self.timeout.as_secs(),
                });
            }
            // Set for an earlier wait: move it to this one's deadline.
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => match this.poll_deadline(cx) {
                Poll::Ready(e) => Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Pending => Poll::Pending,
            },
            Poll::Ready(frame) => {
                this.waiting_since = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client's request body, from either protocol's connection.
pub enum ClientBody {
    /// HTTP/1.1 (see `super::http1`).
    H1(super::http1::RequestBody),
    /// HTTP/2, served by hyper.
    H2(hyper::body::Incoming),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientBody::H1(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            ClientBody::H2(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::H1(b) => b.is_end_stream(),
            ClientBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::H1(b) => b.size_hint(),
            ClientBody::H2(b) => b.size_hint(),
        }
    }
}

/// A client's request body, failing with `RequestTimeout` when the client
/// stops sending it for `[limits] body_idle_timeout_secs`.
pub fn from_client(body: ClientBody, limits: &crate::config::LimitsConfig) -> IdleBody<ClientBody> {
    IdleBody::new(body, Duration::from_secs(limits.body_idle_timeout_secs))
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_limited<B>(mut body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::transport(&e.into()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge {
                    limit: limit as u64,
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::convert::Infallible;

    #[tokio::test]
    async fn read_limited_enforces_the_limit() {
        let ok = read_limited(Full::new(Bytes::from_static(b"12345")), 5)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"12345");
        let err = read_limited(Full::new(Bytes::from_static(b"123456")), 5)
            .await
            .unwrap_err();
        assert_eq!(err, BodyError::TooLarge { limit: 5 });
    }

    /// Frames from a channel, sent by the test at the pace it chooses.
    fn paced() -> (
        tokio::sync::mpsc::Sender<&'static [u8]>,
        impl Body<Data = Bytes, Error = Infallible> + Unpin,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            let data = rx.recv().await?;
            Some((Ok(Frame::data(Bytes::from_static(data))), rx))
        });
        (tx, http_body_util::StreamBody::new(Box::pin(frames)))
    }

    #[tokio::test]
    async fn idle_body_times_out_on_a_silent_source() {
        let (tx, inner) = paced();
        let mut body = IdleBody::new(inner, Duration::from_millis(150));
        tx.send(b"first").await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let started = std::time::Instant::now();
        let e = body.frame().await.unwrap().unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(
            e.downcast_ref::<BodyError>(),
            Some(&BodyError::IdleTimeout { secs: 0 })
        );
        drop(tx);
    }

    /// Each wait is timed on its own: a source that pauses, but never for
    /// the whole timeout, is never cut however long the body takes (the
    /// one timer, set for the first wait, is moved rather than obeyed).
    #[tokio::test]
    async fn idle_body_times_each_wait_not_the_whole_body() {
        let (tx, inner) = paced();
        let mut body = IdleBody::new(inner, Duration::from_millis(400));
        let sender = tokio::spawn(async move {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                tx.send(b"slow").await.unwrap();
            }
        });
        let started = std::time::Instant::now();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            frame.unwrap();
            frames += 1;
        }
        assert_eq!(frames, 6);
        assert!(started.elapsed() >= Duration::from_millis(900));
        sender.await.unwrap();
    }

    /// Time while nobody polls does not count against the source.
    #[tokio::test]
    async fn idle_body_does_not_count_a_slow_reader() {
        let (tx, inner) = paced();
        let mut body = IdleBody::new(inner, Duration::from_millis(300));
        tx.send(b"a").await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            tx.send(b"b").await.unwrap();
        });
        // 600 ms without a poll, then a wait of about 100 ms.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(body.frame().await.unwrap().is_ok());
        sender.await.unwrap();
    }

    #[tokio::test]
    async fn inbound_counts_and_notifies() {
        let counter = Arc::new(AtomicU64::new(0));
        let done = Arc::new(Notify::new());
        let body = InboundBody::new(
            Full::new(Bytes::from_static(b"abc")),
            counter.clone(),
            done.clone(),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abc");
        assert_eq!(counter.load(Ordering::Relaxed), 3);
        tokio::time::timeout(std::time::Duration::from_secs(1), done.notified())
            .await
            .unwrap();
    }
}
