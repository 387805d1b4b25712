//! Spreading client connections evenly over the workers.
//!
//! Every worker accepts from the same listening socket, and the kernel
//! wakes all of them for a new connection: whichever is polling first takes
//! it. When a client opens many keep-alive connections at once (a load
//! generator, a connection pool warming up), the one worker that is awake
//! takes most of them, and keeps them for their whole life: one core does
//! the proxy's work while the other's event loop sits idle. Measured on two
//! cores with 64 keep-alive connections, splits from 45/55 to 100/0 came
//! out run to run.
//!
//! So each worker counts the connections it serves, and a worker that
//! accepts a connection while it holds more than another worker hands the
//! socket to that worker instead (the least loaded one), which registers it
//! with its own event loop. Balanced workers keep what they accept, so a
//! hand-over costs only as much as it evens out; a connection is never
//! moved once it is being served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;

/// A worker keeps a connection it accepted when, with it, it serves at
/// most this many more than the least loaded worker.
const SLACK: i64 = 1;

/// An accepted socket on its way to the worker that is to serve it,
/// already counted to that worker.
pub struct Handoff {
    pub stream: std::net::TcpStream,
    pub remote: SocketAddr,
    pub counted: Counted,
}

/// The open connection counts of all workers (the gauges exported as
/// `s3warden_worker_connections`), and a way to reach each worker.
pub struct Balance {
    open: Vec<Gauge<i64, AtomicI64>>,
    inboxes: Vec<mpsc::UnboundedSender<Handoff>>,
}

/// One connection counted to a worker until dropped. It holds the gauge,
/// not the balance: a hand-off stranded in a channel must not keep the
/// channel alive.
pub struct Counted {
    open: Gauge<i64, AtomicI64>,
    worker: usize,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Balance {
    /// The balance of workers counting on `open` (one gauge each), and
    /// each worker's inbox of connections handed to it (in worker order).
    pub fn new(
        open: Vec<Gauge<i64, AtomicI64>>,
    ) -> (Arc<Balance>, Vec<mpsc::UnboundedReceiver<Handoff>>) {
        let (inboxes, receivers) = open.iter().map(|_| mpsc::unbounded_channel()).unzip();
        let balance = Balance { open, inboxes };
        (Arc::new(balance), receivers)
    }

    /// Which worker is to serve a connection worker `me` accepted: `me`,
    /// or the least loaded worker still accepting when keeping it would
    /// put `me` more than [`SLACK`] above that one. The connection is
    /// counted to that worker at once, so a burst of accepts spreads out
    /// before any of them is served.
    pub fn place(&self, me: usize) -> Counted {
        let mine = self.open[me].get();
        let (least, fewest) = self
            .open
            .iter()
            .map(Gauge::get)
            .enumerate()
            // A worker that stopped (or never started) accepting counts
            // none and would otherwise draw every connection.
            .filter(|&(i, _)| !self.inboxes[i].is_closed())
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, mine));
        let worker = if mine + 1 > fewest + SLACK { least } else { me };
        self.keep(worker)
    }

    /// Counts a connection to `worker`, whatever the others serve.
    pub fn keep(&self, worker: usize) -> Counted {
        self.open[worker].inc();
        Counted {
            open: self.open[worker].clone(),
            worker,
        }
    }

    /// Hands an accepted socket to the worker it was counted to. Fails,
    /// giving it back, when that worker no longer accepts (its inbox is
    /// closed when it stops).
    pub fn hand(&self, handoff: Handoff) -> Result<(), Handoff> {
        self.inboxes[handoff.counted.worker]
            .send(handoff)
            .map_err(|e| e.0)
    }

    /// The connections each worker serves now.
    #[cfg(test)]
    fn counts(&self) -> Vec<i64> {
        self.open.iter().map(Gauge::get).collect()
    }
}

impl Counted {
    pub fn worker(&self) -> usize {
        self.worker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balance(workers: usize) -> (Arc<Balance>, Vec<mpsc::UnboundedReceiver<Handoff>>) {
        Balance::new((0..workers).map(|_| Gauge::default()).collect())
    }

    #[test]
    fn a_burst_accepted_by_one_worker_is_spread_evenly() {
        let (balance, _inboxes) = balance(2);
        let held: Vec<Counted> = (0..64).map(|_| balance.place(0)).collect();
        assert_eq!(balance.counts(), [32, 32]);
        let moved = held.iter().filter(|c| c.worker() == 1).count();
        assert_eq!(moved, 32);
    }

    #[test]
    fn balanced_workers_keep_what_they_accept() {
        let (balance, _inboxes) = balance(3);
        let a = balance.place(0);
        assert_eq!(a.worker(), 0);
        // One above the least loaded (worker 2) is within the slack.
        let b = balance.place(1);
        assert_eq!(b.worker(), 1);
        // A second one would put worker 0 two above worker 2.
        let c = balance.place(0);
        assert_eq!(c.worker(), 2);
        assert_eq!(balance.counts(), [1, 1, 1]);
    }

    #[test]
    fn a_closed_connection_is_counted_out() {
        let (balance, _inboxes) = balance(2);
        let a = balance.place(0);
        let b = balance.place(0);
        assert_eq!((a.worker(), b.worker()), (0, 1));
        drop(b);
        assert_eq!(balance.counts(), [1, 0]);
        // Worker 1 serves none again: worker 0 hands the next one over.
        let c = balance.place(0);
        assert_eq!(c.worker(), 1);
        drop((a, c));
        assert_eq!(balance.counts(), [0, 0]);
    }

    #[test]
    fn a_worker_that_stopped_accepting_is_given_none() {
        let (balance, mut inboxes) = balance(3);
        // Worker 2 ended (its inbox closed): it counts none, but takes none.
        inboxes.pop().unwrap().close();
        let held: Vec<Counted> = (0..4).map(|_| balance.place(0)).collect();
        assert_eq!(balance.counts(), [2, 2, 0]);
        drop(held);
    }

    #[test]
    fn a_socket_for_a_worker_that_stopped_comes_back() {
        let (balance, inboxes) = balance(2);
        drop(inboxes);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = std::net::TcpStream::connect(addr).unwrap();
        let counted = balance.place(1);
        let handoff = Handoff {
            stream,
            remote: addr,
            counted,
        };
        let back = balance.hand(handoff).expect_err("no worker to take it");
        drop(back);
        assert_eq!(balance.counts(), [0, 0], "counted out with the socket");
    }
}
