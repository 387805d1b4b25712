//! Whether a request body is moving towards upstream, for the idle timeout
//! while the request is sent: an upstream that stops reading a body (its
//! socket buffer full, nothing read for minutes) is told apart from a
//! client that is slow to send it, which `[limits] body_idle_timeout_secs`
//! handles on the client's side.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::auth::payload::BoxError;

/// When the body last moved, and whether it is now waiting for the client.
#[derive(Debug)]
struct Moved {
    at: Instant,
    waiting_on_client: bool,
    ended: bool,
}

/// Shared between the body (which upstream's connection polls) and the
/// watchdog in [`super::Upstream::send`].
#[derive(Clone, Debug)]
pub struct Progress(Arc<Mutex<Moved>>);

impl Progress {
    pub fn new() -> Progress {
        Progress(Arc::new(Mutex::new(Moved {
            at: Instant::now(),
            waiting_on_client: false,
            ended: false,
        })))
    }

    fn update(&self, f: impl FnOnce(&mut Moved)) {
        if let Ok(mut m) = self.0.lock() {
            f(&mut m);
        }
    }

    /// When the body last moved, whether the client is the one not sending
    /// now, and whether it has ended; `None` if the lock was poisoned.
    fn snapshot(&self) -> Option<(Instant, bool, bool)> {
        let m = self.0.lock().ok()?;
        Some((m.at, m.waiting_on_client, m.ended))
    }

    /// Resolves once the body has been ready to go for `idle` while
    /// upstream took none of it. Never resolves once the body has ended
    /// (the response timeout applies then) or while the client is the one
    /// not sending.
    pub async fn stalled(&self, idle: Duration) {
        loop {
            // An ended body cannot stall again: no timer is kept for it (GET,
            // HEAD and DELETE bodies end before they are sent).
            let Some((at, waiting_on_client, false)) = self.snapshot() else {
                return std::future::pending().await;
            };
            let deadline = at + idle;
            if !waiting_on_client && Instant::now() >= deadline {
                return;
            }
            // Checked again at the deadline, or a quarter of the timeout
            // later when the body was not upstream's to read meanwhile.
            let next = if waiting_on_client {
                idle / 4
            } else {
                deadline - Instant::now()
            };
            tokio::time::sleep(next.max(Duration::from_millis(10))).await;
        }
    }
}

/// A request body that records its progress in a [`Progress`].
pub struct ProgressBody<B> {
    inner: B,
    progress: Progress,
}

impl<B> ProgressBody<B> {
    /// A body with nothing to send (`is_end_stream`) is ended from the start:
    /// hyper never polls it.
    pub fn new(inner: B, progress: Progress) -> Self
    where
        B: Body,
    {
        if inner.is_end_stream() {
            progress.update(|m| m.ended = true);
        }
        ProgressBody { inner, progress }
    }
}

impl<B> Body for ProgressBody<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let now = Instant::now();
        match &polled {
            Poll::Pending => self.progress.update(|m| m.waiting_on_client = true),
            Poll::Ready(Some(Ok(_))) => self.progress.update(|m| {
                m.at = now;
                m.waiting_on_client = false;
            }),
            Poll::Ready(_) => self.progress.update(|m| m.ended = true),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_nobody_reads_stalls_and_an_ended_one_does_not() {
        let p = Progress::new();
        let idle = Duration::from_millis(100);
        let started = Instant::now();
        p.stalled(idle).await;
        assert!(started.elapsed() >= idle);

        p.update(|m| m.ended = true);
        let waited = tokio::time::timeout(idle * 3, p.stalled(idle)).await;
        assert!(waited.is_err(), "an ended body stalled");
    }

    #[tokio::test]
    async fn a_body_with_nothing_to_send_never_stalls() {
        let p = Progress::new();
        let _body = ProgressBody::new(http_body_util::Empty::<Bytes>::new(), p.clone());
        let idle = Duration::from_millis(50);
        let waited = tokio::time::timeout(idle * 4, p.stalled(idle)).await;
        assert!(waited.is_err(), "an empty body stalled");
    }

    #[tokio::test]
    async fn waiting_for_the_client_is_not_upstream_stalling() {
        let p = Progress::new();
        p.update(|m| m.waiting_on_client = true);
        let idle = Duration::from_millis(50);
        let waited = tokio::time::timeout(idle * 4, p.stalled(idle)).await;
        assert!(waited.is_err());
    }
}
