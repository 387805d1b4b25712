//! Per-connection deadlines and accept back-off.
//!
//! hyper's own HTTP/1 header-read timeout starts only once a request begins,
//! and the HTTP/1-or-HTTP/2 detection in front of it waits for the first
//! bytes for ever; HTTP/2 connections have no idle limit at all. So every
//! connection here counts its requests in progress, and a connection with
//! none — from the moment it is accepted or since its last answer ended — is
//! closed after `[limits] header_read_timeout_secs`. Silent, slow-header and
//! preface-only connections then cost a descriptor for a bounded time, as
//! S3 (which closes idle connections after about 20 s) lets them.
//!
//! When descriptors run out, `accept` fails at once and would be retried
//! in a hot loop; it backs off instead, says so once per interval with a
//! count rather than on every failure, and sheds the oldest idle
//! connections (no request in progress) so that new clients get in before
//! the idle timeout would have freed anything.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};

/// Requests in progress on one connection; `Busy` guards count them.
#[derive(Clone)]
pub struct Activity(watch::Sender<usize>);

impl Default for Activity {
    fn default() -> Self {
        Activity(watch::Sender::new(0))
    }
}

/// One request in progress, from its head to the end of its answer's body.
pub struct Busy(watch::Sender<usize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Activity {
    /// True when no request is in progress.
    fn is_idle(&self) -> bool {
        *self.0.borrow() == 0
    }

    /// Counts a request as in progress until the guard is dropped.
    pub fn begin(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(self.0.clone())
    }

    /// Resolves once the connection has had no request in progress for
    /// `timeout` without a break.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut rx = self.0.subscribe();
        loop {
            if rx.wait_for(|n| *n == 0).await.is_err() {
                return;
            }
            match tokio::time::timeout(timeout, rx.wait_for(|n| *n > 0)).await {
                Err(_) => return,
                Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// A connection socket that closes the way a proxy answering early must
/// ("lingering close", as nginx does it): when hyper closes a connection,
/// its write side is shut first (the client gets the whole answer and an
/// end of stream), then whatever the client is still sending — the rest of
/// an upload refused before it was read — is read and discarded until the
/// client closes too or [`LINGER`] has passed. Closing at once with unread
/// data would send a reset, which can destroy the answer in the client's
/// receive buffer before it reads it.
pub struct Lingering<S> {
    inner: S,
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a closing connection keeps reading and discarding.
pub const LINGER: Duration = Duration::from_secs(2);

impl<S> Lingering<S> {
    pub fn new(inner: S) -> Self {
        Lingering {
            inner,
            linger: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.linger.is_none() {
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        let mut scratch = [0u8; 8192];
        loop {
            if let Some(deadline) = this.linger.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {}
                // The peer reset or the transport failed: nothing left to protect.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Every open connection by age, so the oldest idle ones can be shed.
#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, (Activity, Arc<Notify>)>>,
}

/// A connection's place in [`Connections`]; removes it when dropped.
pub struct Registered {
    id: u64,
    connections: Arc<Connections>,
    /// Notified when the connection is to be shed.
    pub shed: Arc<Notify>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut open) = self.connections.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Connections {
    pub fn register(self: &Arc<Self>, activity: &Activity) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let shed = Arc::new(Notify::new());
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, (activity.clone(), shed.clone()));
        }
        Registered {
            id,
            connections: self.clone(),
            shed,
        }
    }

    /// Asks up to `count` of the oldest idle connections to close; returns
    /// how many were asked. Connections with a request in progress are
    /// never shed: their descriptors come back when the request ends.
    pub fn shed_idle(&self, count: usize) -> usize {
        let Ok(open) = self.open.lock() else {
            return 0;
        };
        let mut shed = 0;
        for (activity, notify) in open.values() {
            if shed == count {
                break;
            }
            if activity.is_idle() {
                notify.notify_one();
                shed += 1;
            }
        }
        shed
    }
}

/// What to do after a failed `accept`.
pub struct AcceptBackoff {
    delay: Duration,
    /// Failures since the last log line.
    failures: u64,
    last_log: Option<Instant>,
}

/// First and longest pause after a failed accept. Descriptors come back as
/// connections close, which takes milliseconds to seconds.
const MIN_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);
/// At most one log line per this interval while accepts keep failing.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            delay: MIN_DELAY,
            failures: 0,
            last_log: None,
        }
    }
}

impl AcceptBackoff {
    /// Records a failure; returns how long to pause, and the count to log
    /// when a log line is due.
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        self.failures += 1;
        let delay = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        let due = self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= LOG_INTERVAL);
        if due {
            self.last_log = Some(now);
            let n = self.failures;
            self.failures = 0;
            return (delay, Some(n));
        }
        (delay, None)
    }

    /// A connection was accepted: the next failure starts from the shortest pause.
    pub fn succeeded(&mut self) {
        self.delay = MIN_DELAY;
    }
}

/// Descriptor exhaustion (per process or system-wide), which backs off;
/// other accept errors concern one connection only.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == EMFILE || code == ENFILE)
}

/// Linux's values; the standard library does not name them.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_means_no_request_for_the_whole_timeout() {
        let activity = Activity::default();
        let t = Duration::from_millis(100);
        let started = Instant::now();
        activity.idle_for(t).await;
        assert!(started.elapsed() >= t);

        // A request in progress holds the connection open however long it
        // takes; the idle time counts from its end.
        let busy = activity.begin();
        let a = activity.clone();
        let idle = tokio::spawn(async move {
            a.idle_for(t).await;
            Instant::now()
        });
        tokio::time::sleep(t * 4).await;
        assert!(!idle.is_finished(), "closed with a request in progress");
        let ended = Instant::now();
        drop(busy);
        let closed = idle.await.unwrap();
        assert!(closed - ended >= t, "{:?}", closed - ended);
        assert!(closed - ended < t * 4, "{:?}", closed - ended);
    }

    #[test]
    fn backoff_doubles_and_logs_once_per_interval_with_a_count() {
        let mut b = AcceptBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.failed(t0), (MIN_DELAY, Some(1)));
        let mut logged = 0;
        let mut last = MIN_DELAY;
        for i in 1..100u32 {
            let (d, log) = b.failed(t0 + Duration::from_millis(i.into()));
            assert!(d >= last && d <= MAX_DELAY);
            last = d;
            logged += log.map_or(0, |_| 1);
        }
        assert_eq!(logged, 0, "logged more than once in an interval");
        assert_eq!(b.failed(t0 + LOG_INTERVAL), (MAX_DELAY, Some(100)));
        b.succeeded();
        assert_eq!(b.failed(t0 + LOG_INTERVAL).0, MIN_DELAY);
    }

    #[test]
    fn the_oldest_idle_connections_are_shed_first() {
        let connections = Arc::new(Connections::default());
        let activities: Vec<Activity> = (0..4).map(|_| Activity::default()).collect();
        let registered: Vec<Registered> =
            activities.iter().map(|a| connections.register(a)).collect();
        // The oldest is busy: it is skipped, not shed.
        let _busy = activities[0].begin();
        assert_eq!(connections.shed_idle(2), 2);
        let notified = |r: &Registered| {
            let n = r.shed.notified();
            tokio::pin!(n);
            n.as_mut().enable()
        };
        let shed: Vec<bool> = registered.iter().map(notified).collect();
        assert_eq!(shed, [false, true, true, false]);
        drop(registered);
        assert_eq!(
            connections.shed_idle(10),
            0,
            "closed connections stay listed"
        );
    }

    #[test]
    fn emfile_and_enfile_are_descriptor_exhaustion() {
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(24)));
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(23)));
        assert!(!out_of_descriptors(&io::Error::from_raw_os_error(104)));
    }
}
