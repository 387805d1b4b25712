//! Bounded shutdown: on SIGTERM the listener stops accepting, requests in
//! flight get `[limits] shutdown_grace_secs` to finish, and then whatever
//! remains is cut — HTTP/1 and HTTP/2 connections, idle or waiting on a
//! stalled upstream, and the HTTP/2 stream tasks hyper spawns apart from
//! their connection. Each cut request still leaves its audit record, marked
//! `error_code = "CutByShutdown"`.
//!
//! Orchestrators (Kubernetes, systemd) follow SIGTERM with SIGKILL after
//! their own grace period; a proxy that overstays it loses its in-flight
//! audit records, so the deadline here must be a real one.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::sync::watch;

/// The audit error code of a request cut at the shutdown deadline.
pub const CUT_BY_SHUTDOWN: &str = "CutByShutdown";

/// How long, after the cut, tasks get to unwind (drop their bodies and send
/// their audit records). Dropping is immediate; this only bounds a task
/// stuck in a poll that never yields, which would be a bug.
const UNWIND: Duration = Duration::from_secs(2);

/// The cut signal shared by every connection and stream task, and the count
/// of those tasks still alive.
pub struct Cutoff {
    cut: AtomicBool,
    signal: watch::Sender<bool>,
    live: watch::Sender<usize>,
}

impl Default for Cutoff {
    fn default() -> Self {
        Cutoff {
            cut: AtomicBool::new(false),
            signal: watch::Sender::new(false),
            live: watch::Sender::new(0),
        }
    }
}

impl Cutoff {
    /// True once the deadline has passed and remaining work is being cut:
    /// a request unwound after this was cut by shutdown, not by its client.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }

    /// Ends every tracked task at its next poll.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        self.signal.send_replace(true);
    }

    /// Resolves once [`Cutoff::cut`] has been called.
    pub async fn cut_happened(&self) {
        let mut rx = self.signal.subscribe();
        let _ = rx.wait_for(|cut| *cut).await;
    }

    /// How many tracked tasks are alive.
    pub fn live(&self) -> usize {
        *self.live.borrow()
    }

    /// Runs `fut` as a tracked task that ends when it completes or at the cut.
    pub fn spawn<F>(self: &Arc<Self>, fut: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(self.track(fut));
    }

    /// `fut`, counted as live, ending at the cut.
    fn track<F>(self: &Arc<Self>, fut: F) -> impl Future<Output = ()> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let cutoff = self.clone();
        cutoff.live.send_modify(|n| *n += 1);
        // Counted out when dropped, polled or not: a task dropped before its
        // first poll (the runtime shutting down) is not left counted.
        let live = Live(cutoff.clone());
        // Boxed: an async block holds a future it captured and then awaits
        // twice over (once captured, once where it is polled), so inline a
        // connection's task would be twice its future's size for as long as
        // the connection lives (6 KiB instead of 3 for an idle HTTP/1 one).
        let fut = Box::pin(fut);
        async move {
            let _live = live;
            // A local declared after `_live`: dropped first, so the task is
            // counted out only once its future is gone (cut or not).
            let mut fut = fut;
            // Unconstrained: a task that spent its cooperative budget would
            // otherwise get `Pending` from the channel without being
            // registered with it, and, skipping it from then on (below),
            // never hear the cut.
            let mut cut = std::pin::pin!(tokio::task::unconstrained(cutoff.cut_happened()));
            // The task wakes several times per request: the cut is read from
            // its flag, and the channel polled only to register a waker the
            // one registered would not wake (the signal wakes it after
            // setting the flag).
            let mut registered: Option<Waker> = None;
            std::future::poll_fn(|cx| {
                if cutoff.is_cut() || fut.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    return Poll::Pending;
                }
                if cut.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                registered = Some(cx.waker().clone());
                Poll::Pending
            })
            .await
        }
    }

    /// Waits up to [`UNWIND`] for every tracked task to end; returns how many
    /// did not.
    async fn unwound(&self) -> usize {
        let mut rx = self.live.subscribe();
        let _ = tokio::time::timeout(UNWIND, rx.wait_for(|n| *n == 0)).await;
        self.live()
    }
}

/// Counts a tracked task as alive until it is dropped (completed or cut).
struct Live(Arc<Cutoff>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// hyper's executor for HTTP/2: the stream tasks it spawns (each one runs a
/// request's service future and response body) are tracked and cut like
/// connections. With plain `tokio::spawn` they would outlive their
/// connection, waiting on a stalled upstream for ever.
#[derive(Clone)]
pub struct CutExecutor(pub Arc<Cutoff>);

impl<F> hyper::rt::Executor<F> for CutExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

/// After the listener has stopped: waits for `drained` (every connection
/// finished gracefully) for at most `grace`, then cuts what remains and
/// waits for it to unwind.
pub async fn drain_then_cut(cutoff: &Cutoff, drained: impl Future<Output = ()>, grace: Duration) {
    if tokio::time::timeout(grace, drained).await.is_ok() {
        return;
    }
    let open = cutoff.live();
    tracing::warn!(
        tasks = open,
        grace_secs = grace.as_secs(),
        "shutdown grace period over; cutting the connections and requests still open"
    );
    cutoff.cut();
    let stuck = cutoff.unwound().await;
    if stuck > 0 {
        tracing::error!(tasks = stuck, "tasks still running after the cut");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's task holds its future once: tracking it adds a
    /// pointer and the cut's signal, not a second copy of the future.
    #[test]
    fn a_tracked_future_is_held_once() {
        let cutoff = Arc::new(Cutoff::default());
        let large = async {
            let state = [7u8; 4096];
            tokio::task::yield_now().await;
            std::hint::black_box(&state);
        };
        assert!(std::mem::size_of_val(&large) >= 4096);
        let tracked = cutoff.track(large);
        let size = std::mem::size_of_val(&tracked);
        assert!(size <= 1024, "tracking a 4 KiB future takes {size} bytes");
    }

    /// A tracked task dropped before it ran (tokio drops queued tasks when
    /// its runtime shuts down) is counted out, or the shutdown would wait
    /// for it until the unwind deadline.
    #[test]
    fn a_tracked_task_dropped_unpolled_is_counted_out() {
        let cutoff = Arc::new(Cutoff::default());
        let tracked = cutoff.track(async {});
        assert_eq!(cutoff.live(), 1);
        drop(tracked);
        assert_eq!(cutoff.live(), 0);
    }

    #[tokio::test]
    async fn the_cut_ends_tracked_tasks_and_counts_them_out() {
        let cutoff = Arc::new(Cutoff::default());
        let (dropped_tx, mut dropped_rx) = tokio::sync::mpsc::channel::<()>(1);
        struct SendOnDrop(tokio::sync::mpsc::Sender<()>);
        impl Drop for SendOnDrop {
            fn drop(&mut self) {
                let _ = self.0.try_send(());
            }
        }
        let guard = SendOnDrop(dropped_tx);
        cutoff.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        assert_eq!(cutoff.live(), 1);
        assert!(!cutoff.is_cut());
        let started = std::time::Instant::now();
        drain_then_cut(
            &cutoff,
            std::future::pending::<()>(),
            Duration::from_millis(50),
        )
        .await;
        assert!(cutoff.is_cut());
        assert_eq!(cutoff.live(), 0);
        assert!(
            dropped_rx.recv().await.is_some(),
            "the task was not dropped"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A tracked task polled again and again registers for the cut once per
    /// waker: the cut wakes the waker it was last polled with, and ends it.
    #[test]
    fn the_cut_wakes_the_waker_a_task_was_last_polled_with() {
        use std::task::Context;
        let cutoff = Arc::new(Cutoff::default());
        let mut tracked = Box::pin(cutoff.track(std::future::pending::<()>()));
        let (first, second) = (Arc::new(Wakes::default()), Arc::new(Wakes::default()));
        let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
        for _ in 0..3 {
            let polled = tracked.as_mut().poll(&mut Context::from_waker(&w1));
            assert!(polled.is_pending());
        }
        let polled = tracked.as_mut().poll(&mut Context::from_waker(&w2));
        assert!(polled.is_pending());
        assert_eq!(cutoff.live(), 1);
        cutoff.cut();
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the last waker is woken"
        );
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        let polled = tracked.as_mut().poll(&mut Context::from_waker(&w2));
        assert!(polled.is_ready());
        assert_eq!(cutoff.live(), 0);
    }

    /// A task that spent its cooperative budget before it went idle (a
    /// busy connection, then a quiet one) still hears the cut.
    #[tokio::test]
    async fn a_task_that_spent_its_budget_is_still_cut() {
        let cutoff = Arc::new(Cutoff::default());
        let (spent_tx, spent_rx) = tokio::sync::oneshot::channel();
        cutoff.spawn(async move {
            while tokio::task::coop::has_budget_remaining() {
                tokio::task::coop::consume_budget().await;
            }
            let _ = spent_tx.send(());
            std::future::pending::<()>().await;
        });
        spent_rx.await.unwrap();
        // Let the task be polled again with its budget spent.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        cutoff.cut();
        let waited = tokio::time::timeout(Duration::from_secs(1), async {
            while cutoff.live() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the task ran on after the cut");
    }

    /// A cut task's future is dropped before the task is counted out: what
    /// it holds (an audit record's guard) is gone once `live` says so.
    #[test]
    fn a_cut_task_is_counted_out_after_its_future_is_dropped() {
        use std::task::Context;
        struct Seen(Arc<Cutoff>, Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Seen {
            fn drop(&mut self) {
                self.1.store(self.0.live() + 1, Ordering::SeqCst);
            }
        }
        let cutoff = Arc::new(Cutoff::default());
        let live_at_drop = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Seen(cutoff.clone(), live_at_drop.clone());
        let mut tracked = Box::pin(cutoff.track(async move {
            let _seen = seen;
            std::future::pending::<()>().await;
        }));
        let waker = Waker::from(Arc::new(Wakes::default()));
        assert!(
            tracked
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        cutoff.cut();
        assert!(
            tracked
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
        assert_eq!(
            live_at_drop.load(Ordering::SeqCst),
            2,
            "counted out before its future was dropped"
        );
        assert_eq!(cutoff.live(), 0);
    }

    #[tokio::test]
    async fn a_drained_server_is_not_cut() {
        let cutoff = Arc::new(Cutoff::default());
        cutoff.spawn(async {});
        drain_then_cut(&cutoff, async {}, Duration::from_secs(5)).await;
        assert!(!cutoff.is_cut());
    }
}
