//! Per-connection deadlines and accept back-off.
//!
//! Neither HTTP/1 (`http1`) nor hyper's HTTP/2 has a timer of its own for
//! a connection waiting for its next request: the HTTP/1-or-HTTP/2 detection
//! waits for the first bytes for ever, and HTTP/2 connections have no idle
//! limit at all. So every
//! connection here counts its requests in progress, and a connection with
//! none — from the moment it is accepted or since its last answer ended — is
//! closed after `[limits] header_read_timeout_secs`. Silent, slow-header and
//! preface-only connections then cost a descriptor for a bounded time, as
//! S3 (which closes idle connections after about 20 s) lets them.
//!
//! A connection idle for [`TRIM_AFTER`] also gives back the memory pages of
//! its protocol's read buffer (see [`Replay`]; an HTTP/1 connection holds
//! none between requests, hyper's HTTP/2 keeps one), as nginx frees its
//! buffers when a keep-alive connection goes idle.
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
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant as Clock;

/// Requests in progress on one connection; `Busy` guards count them.
///
/// Counted in atomics rather than a channel: a request beginning or ending
/// wakes nothing. The idle check instead looks at the clock when its timer
/// fires — once per timeout, not once per request.
#[derive(Clone)]
pub struct Activity(Arc<Counts>);

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

struct Counts {
    busy: AtomicUsize,
    /// When the last request ended, in nanoseconds since [`epoch`].
    last_end: AtomicU64,
    /// Where the current idle period is with its trim: [`TRIM_NONE`],
    /// [`TRIM_WANTED`] or [`TRIM_DONE`].
    trim: AtomicU8,
    /// Told when a request begins after a trim was asked for, so that the
    /// idle timer counts the next idle period from its start.
    woken: Notify,
}

/// No trim asked for in this idle period (or a request is in progress).
const TRIM_NONE: u8 = 0;
/// The connection idled [`TRIM_AFTER`]: its reader's next empty read trims.
const TRIM_WANTED: u8 = 1;
/// The reader trimmed; nothing more until the next idle period.
const TRIM_DONE: u8 = 2;

/// How long a connection idles before its read buffer's pages are given
/// back. Long enough that connections in steady use are not trimmed
/// between requests (each trim costs a syscall and the next read a page
/// fault), short beside the header timeout that closes idle connections.
pub const TRIM_AFTER: Duration = Duration::from_secs(2);

/// The instant connection clocks count from.
///
/// tokio's clock rather than std's: the same outside tests, and one that
/// tests can pause and advance.
fn epoch() -> Clock {
    static EPOCH: OnceLock<Clock> = OnceLock::new();
    *EPOCH.get_or_init(Clock::now)
}

fn since_epoch(t: Clock) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}

/// One request in progress, from its head to the end of its answer's body.
pub struct Busy(Arc<Counts>);

impl Drop for Busy {
    fn drop(&mut self) {
        // The end time first: the idle check reads the count, then the time.
        self.0
            .last_end
            .store(since_epoch(Clock::now()), Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    /// An activity whose idle time starts now (the connection's accept).
    pub fn new() -> Self {
        Activity(Arc::new(Counts {
            busy: AtomicUsize::new(0),
            last_end: AtomicU64::new(since_epoch(Clock::now())),
            trim: AtomicU8::new(TRIM_NONE),
            woken: Notify::new(),
        }))
    }

    /// True when no request is in progress.
    fn is_idle(&self) -> bool {
        self.0.busy.load(Ordering::Acquire) == 0
    }

    /// Counts a request as in progress until the guard is dropped.
    pub fn begin(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::AcqRel);
        // A trim asked for before this request is no longer due, and the
        // idle timer, waiting for the close, is to count from its end.
        if self.0.trim.load(Ordering::Relaxed) != TRIM_NONE {
            self.0.trim.store(TRIM_NONE, Ordering::Relaxed);
            self.0.woken.notify_one();
        }
        Busy(self.0.clone())
    }

    /// Resolves once the connection has had no request in progress for
    /// `timeout` without a break. On the way, each idle period that lasts
    /// [`TRIM_AFTER`] asks the connection's reader (a [`Replay`] sharing
    /// this activity, polled in the same task) to give back its buffer's
    /// pages.
    pub async fn idle_for(&self, timeout: Duration) {
        let trims = timeout > TRIM_AFTER;
        let first = if trims { TRIM_AFTER } else { timeout };
        let mut deadline = self.idle_since() + first;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                // A request began after this idle period's trim was asked
                // for: the next idle period is counted from its end.
                _ = self.0.woken.notified() => {
                    deadline = Clock::now() + first;
                    continue;
                }
            }
            let now = Clock::now();
            if !self.is_idle() {
                // A request in progress: look again a while after now.
                deadline = now + first;
                continue;
            }
            let idle_since = self.idle_since();
            let idle = now.saturating_duration_since(idle_since);
            if idle >= timeout {
                return;
            }
            let asked = self.0.trim.load(Ordering::Relaxed) != TRIM_NONE;
            let due = asked || (trims && idle >= TRIM_AFTER);
            if !due {
                deadline = idle_since + first;
                continue;
            }
            deadline = idle_since + timeout;
            if !asked {
                self.0.trim.store(TRIM_WANTED, Ordering::Release);
                // Polled again at once, so that the connection's reader is
                // polled after the flag is up, whatever order the caller's
                // `select!` polls its branches in.
                tokio::task::yield_now().await;
            }
        }
    }

    fn idle_since(&self) -> Clock {
        epoch() + Duration::from_nanos(self.0.last_end.load(Ordering::Acquire))
    }

    /// Takes a trim request: true when one was asked for and no request
    /// has begun since.
    fn take_trim(&self) -> bool {
        self.0
            .trim
            .compare_exchange(TRIM_WANTED, TRIM_DONE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

/// Gives the whole memory pages of `buf`'s unfilled part back to the
/// kernel; they read as zeros when next touched. That part holds no data
/// (its bytes are not yet filled), and the caller's buffer stays as large
/// as it was, so nothing it holds or expects changes.
fn release_unfilled(buf: &mut ReadBuf<'_>) {
    // SAFETY: the unfilled part is only passed to madvise below, never read
    // or de-initialised through this reference.
    let unfilled = unsafe { buf.unfilled_mut() };
    if unfilled.len() < MIN_TRIM {
        return;
    }
    let start = unfilled.as_mut_ptr() as usize;
    let end = start + unfilled.len();
    let page = page_size();
    let first = start.next_multiple_of(page);
    let last = end - end % page;
    if last > first {
        // SAFETY: [first, last) lies inside the unfilled part of `buf`,
        // which this call borrows exclusively: memory of a single
        // allocation (a slice never spans two) whose contents mean nothing
        // until filled, so no other owner's data, nor an allocator's
        // bookkeeping (kept outside the allocation), is in those pages.
        // MADV_DONTNEED makes heap pages (private anonymous memory) read as
        // zeros when next touched, as a write of zeros through the borrow
        // would; other memory keeps or reverts to its contents. Either way
        // the bytes stay initialised.
        unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_DONTNEED,
            );
        }
    }
}

/// Less spare room than this is left alone: a syscall, and a page fault
/// on the next request, to give back a page or two. After small requests
/// hyper's buffer is 8 KiB, and barely resident.
const MIN_TRIM: usize = 32 * 1024;

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|&s| s > 0)
            .unwrap_or(4096)
    })
}

/// A connection socket that closes the way a proxy answering early must
/// ("lingering close", as nginx does it): when a connection is closed,
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

/// HTTP/2's connection preface (RFC 9113 §3.4), which prior-knowledge
/// HTTP/2 (and HTTP/2 over TLS) begins with; no HTTP/1 request does.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads a connection's first bytes until they either are HTTP/2's preface
/// or are not; returns which, and the bytes read (to be replayed). An
/// HTTP/1 request differs at its first byte or so, so this is one read.
pub async fn sniff_http2<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<(bool, Vec<u8>)> {
    let mut seen = Vec::with_capacity(H2_PREFACE.len());
    let mut chunk = [0u8; H2_PREFACE.len()];
    loop {
        let want = H2_PREFACE.len() - seen.len();
        let n = io.read(&mut chunk[..want]).await?;
        seen.extend_from_slice(&chunk[..n]);
        if n == 0 || !H2_PREFACE.starts_with(&seen) {
            return Ok((false, seen));
        }
        if seen.len() == H2_PREFACE.len() {
            return Ok((true, seen));
        }
    }
}

/// A connection whose first bytes were already read: they are read again
/// before the rest. When its [`Activity`] asks for a trim (the connection
/// has idled for [`TRIM_AFTER`]), the next read that finds nothing gives
/// back the pages of the reader's buffer beyond what it holds: hyper's
/// HTTP/2 connection reads into the spare room of a buffer it keeps while
/// the connection lives.
pub struct Replay<S> {
    seen: Vec<u8>,
    at: usize,
    /// What the read behind the replayed bytes failed with, for the next read.
    failed: Option<io::Error>,
    activity: Activity,
    inner: S,
}

impl<S> Replay<S> {
    pub fn new(seen: Vec<u8>, activity: Activity, inner: S) -> Self {
        Replay {
            seen,
            at: 0,
            failed: None,
            activity,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        if this.at < this.seen.len() {
            let n = (this.seen.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.seen[this.at..this.at + n]);
            this.at += n;
            if this.at == this.seen.len() {
                this.seen = Vec::new();
                this.at = 0;
                // What already waits behind the replayed bytes comes in the
                // same read. Returned alone, the few replayed bytes would
                // make hyper read again into a buffer it first grows for
                // the read, keeping 16 KiB per connection for its life
                // instead of 8. Nothing waiting, or an error, is left to
                // the next read; the replayed bytes are delivered now.
                if buf.remaining() > 0
                    && let Poll::Ready(Err(e)) = Pin::new(&mut this.inner).poll_read(cx, buf)
                {
                    this.failed = Some(e);
                }
            }
            return Poll::Ready(Ok(()));
        }
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_pending() && this.activity.take_trim() {
            release_unfilled(buf);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
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
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
    async fn the_http2_preface_is_told_from_http1_and_replayed_whole() {
        use tokio::io::AsyncWriteExt;
        for (sent, http2) in [
            (&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"[..], true),
            (&b"PUT /b/k HTTP/1.1\r\nHost: x\r\n\r\n"[..], false),
            // A prefix of the preface that turns into something else.
            (&b"PRI * HTTP/1.1\r\n\r\n"[..], false),
            (&b"PR"[..], false),
        ] {
            let (mut client, server) = tokio::io::duplex(64);
            // Sent in pieces: the sniffer waits for as much as it needs.
            let writer = tokio::spawn(async move {
                for piece in sent.chunks(3) {
                    client.write_all(piece).await.unwrap();
                    tokio::task::yield_now().await;
                }
                client.shutdown().await.unwrap();
            });
            let mut server = server;
            let (is_h2, seen) = sniff_http2(&mut server).await.unwrap();
            assert_eq!(is_h2, http2, "{sent:?}");
            let mut all = Vec::new();
            Replay::new(seen, Activity::new(), server)
                .read_to_end(&mut all)
                .await
                .unwrap();
            assert_eq!(all, sent);
            writer.await.unwrap();
        }
    }

    #[tokio::test]
    async fn the_replayed_bytes_come_with_what_already_waits() {
        use tokio::io::AsyncWriteExt;
        let head = b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n";
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(head).await.unwrap();
        let (is_h2, seen) = sniff_http2(&mut server).await.unwrap();
        assert!(!is_h2);
        assert!(seen.len() < head.len());
        let mut replay = Replay::new(seen, Activity::new(), server);
        let mut buf = [0u8; 128];
        let n = replay.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], head, "one read, not the sniffed bytes alone");

        // Nothing waiting behind them: the replayed bytes alone, at once.
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(b"GET").await.unwrap();
        let (_, seen) = sniff_http2(&mut server).await.unwrap();
        let mut replay = Replay::new(seen, Activity::new(), server);
        let n = replay.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"GET");
        client.write_all(b" / HTTP/1.1").await.unwrap();
        let n = replay.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b" / HTTP/1.1");
    }

    #[tokio::test]
    async fn an_error_behind_the_replayed_bytes_reaches_the_next_read() {
        struct Reset;
        impl AsyncRead for Reset {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
            }
        }
        let mut replay = Replay::new(b"GET".to_vec(), Activity::new(), Reset);
        let mut buf = [0u8; 16];
        assert_eq!(replay.read(&mut buf).await.unwrap(), 3);
        let e = replay.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }

    /// One read of `replay` into `buf`, as hyper makes it: what it returned.
    async fn poll_once<S: AsyncRead + Unpin>(
        replay: &mut Replay<S>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        let polled =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *replay).poll_read(cx, &mut read)))
                .await;
        polled.map_ok(|()| read.filled().len())
    }

    /// Runs the connection's idle timer for `d`, which must not end it.
    async fn idle_while(activity: &Activity, d: Duration) {
        let ended = tokio::time::timeout(d, activity.idle_for(Duration::from_secs(30))).await;
        assert!(
            ended.is_err(),
            "the idle timeout ended the connection early"
        );
    }

    /// A read that finds nothing, after which `buf` holds what it held.
    async fn empty_read_keeps<S: AsyncRead + Unpin>(replay: &mut Replay<S>, buf: &mut [u8]) {
        let before = buf.to_vec();
        assert!(matches!(poll_once(replay, buf).await, Poll::Pending));
        assert!(buf == &before[..], "the reader's buffer was trimmed");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_gives_back_its_read_buffers_pages_once() {
        use tokio::io::AsyncWriteExt;
        let page = page_size();
        let activity = Activity::new();
        let (mut client, server) = tokio::io::duplex(1024);
        let mut replay = Replay::new(Vec::new(), activity.clone(), server);
        let mut buf = vec![0xAAu8; 16 * page];
        // The reader's buffer holds 100 bytes already; the rest is its spare room.
        let (held, spare) = buf.split_at_mut(100);

        // A request came and went; the connection idles, not yet long.
        drop(activity.begin());
        let early = TRIM_AFTER - Duration::from_millis(100);
        idle_while(&activity, early).await;
        empty_read_keeps(&mut replay, spare).await;

        // Idle for TRIM_AFTER: the next read that finds nothing trims.
        idle_while(&activity, TRIM_AFTER * 2).await;
        assert!(matches!(poll_once(&mut replay, spare).await, Poll::Pending));
        assert!(
            held.iter().all(|&b| b == 0xAA),
            "what the buffer holds is kept"
        );
        let first_page = (page - spare.as_ptr() as usize % page) % page;
        let whole_pages = &spare[first_page..first_page + 14 * page];
        assert!(
            spare[..first_page].iter().all(|&b| b == 0xAA),
            "a part page is kept"
        );
        assert!(
            whole_pages.iter().all(|&b| b == 0),
            "whole spare pages given back"
        );

        // Once per idle period: the next empty read trims nothing.
        spare.fill(0xBB);
        empty_read_keeps(&mut replay, spare).await;

        // What arrives next is read whole into the trimmed room.
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        match poll_once(&mut replay, spare).await {
            Poll::Ready(Ok(n)) => assert_eq!(&spare[..n], b"GET / HTTP/1.1\r\n"),
            other => panic!("read after a trim: {other:?}"),
        }
    }

    /// True when every whole page inside `buf` reads as zeros.
    fn whole_pages_zeroed(buf: &[u8]) -> bool {
        let page = page_size();
        let first = (page - buf.as_ptr() as usize % page) % page;
        let pages = (buf.len() - first) / page;
        pages > 0 && buf[first..first + pages * page].iter().all(|&b| b == 0)
    }

    #[tokio::test(start_paused = true)]
    async fn every_idle_period_is_trimmed_not_only_the_first() {
        use tokio::io::AsyncWriteExt;
        let activity = Activity::new();
        let (mut client, server) = tokio::io::duplex(1024);
        let mut replay = Replay::new(Vec::new(), activity.clone(), server);
        let buf = Arc::new(Mutex::new(vec![0xAAu8; 16 * page_size()]));
        let reader_buf = buf.clone();
        let requests = activity.clone();
        // The connection's task as the server runs it: its reader beside its
        // idle timer in one `select!`.
        let conn = tokio::spawn(async move {
            let reader = async {
                loop {
                    let n = std::future::poll_fn(|cx| {
                        let mut b = reader_buf.lock().unwrap();
                        let mut read = ReadBuf::new(&mut b[..]);
                        Pin::new(&mut replay)
                            .poll_read(cx, &mut read)
                            .map_ok(|()| read.filled().len())
                    })
                    .await
                    .unwrap();
                    if n == 0 {
                        return;
                    }
                    // A request, answered at once.
                    drop(requests.begin());
                }
            };
            tokio::select! {
                _ = reader => {}
                _ = activity.idle_for(Duration::from_secs(30)) => {}
            }
        });
        tokio::time::sleep(TRIM_AFTER + Duration::from_millis(100)).await;
        assert!(
            whole_pages_zeroed(&buf.lock().unwrap()),
            "first idle period"
        );
        buf.lock().unwrap().fill(0xAA);

        // A request at 3 s starts a new idle period, trimmed 2 s later.
        tokio::time::sleep(Duration::from_millis(900)).await;
        client.write_all(b"GET").await.unwrap();
        tokio::time::sleep(TRIM_AFTER - Duration::from_millis(200)).await;
        assert!(!whole_pages_zeroed(&buf.lock().unwrap()), "trimmed early");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            whole_pages_zeroed(&buf.lock().unwrap()),
            "second idle period"
        );
        drop(client);
        conn.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_spare_room_is_left_alone() {
        let activity = Activity::new();
        let (_client, server) = tokio::io::duplex(1024);
        let mut replay = Replay::new(Vec::new(), activity.clone(), server);
        // hyper's buffer after small requests: 8 KiB.
        let mut buf = vec![0xAAu8; 8 * 1024];
        idle_while(&activity, TRIM_AFTER * 2).await;
        empty_read_keeps(&mut replay, &mut buf).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_a_request_in_progress_is_never_trimmed() {
        let activity = Activity::new();
        let (_client, server) = tokio::io::duplex(1024);
        let mut replay = Replay::new(Vec::new(), activity.clone(), server);
        let mut buf = vec![0xAAu8; 16 * page_size()];
        // A long request (an upload read slowly): the timer finds it busy.
        let busy = activity.begin();
        idle_while(&activity, TRIM_AFTER * 3).await;
        empty_read_keeps(&mut replay, &mut buf).await;
        drop(busy);

        // Asked while idle, but a request began before the reader looked.
        idle_while(&activity, TRIM_AFTER * 2).await;
        let _busy = activity.begin();
        empty_read_keeps(&mut replay, &mut buf).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_timeout_still_ends_an_idle_connection() {
        let activity = Activity::new();
        drop(activity.begin());
        let started = tokio::time::Instant::now();
        activity.idle_for(Duration::from_secs(30)).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(30) && took < Duration::from_secs(31),
            "{took:?}"
        );
        // A timeout shorter than TRIM_AFTER never trims, and still ends on time.
        let short = Activity::new();
        let started = tokio::time::Instant::now();
        short.idle_for(Duration::from_secs(1)).await;
        assert!(started.elapsed() < Duration::from_millis(1100));
        assert_eq!(short.0.trim.load(Ordering::Relaxed), TRIM_NONE);
    }

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
