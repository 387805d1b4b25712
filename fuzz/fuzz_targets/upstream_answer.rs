//! The reader of upstream's HTTP/1 answers (s3warden's own client for GET
//! and HEAD) on arbitrary answers arriving in arbitrary pieces: it must
//! never panic, never yield more of a body than its framing announced or
//! than arrived, and give its connection back for reuse only after a whole
//! answer.
#![no_main]

use std::future::poll_fn;
use std::pin::Pin;

use http_body::Body;
use libfuzzer_sys::fuzz_target;
use s3warden::upstream::h1::{Conn, request_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    let [mode, split, answer @ ..] = data else {
        return;
    };
    let mode = *mode;
    let head_request = mode & 1 == 1;
    let piece = usize::from(*split).max(1);
    let answer = answer.to_vec();
    // A paused clock: a wait on a peer that keeps quiet ends at once.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // Room for any answer: upstream's writes never wait on the reader.
        let (ours, mut theirs) = tokio::io::duplex(answer.len() + 4096);
        let arrived = answer.len() as u64;
        tokio::spawn(async move {
            let mut request = [0u8; 256];
            let _ = theirs.read(&mut request).await;
            for p in answer.chunks(piece) {
                if theirs.write_all(p).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            if mode & 2 == 0 {
                // Closed after the answer; else kept open (a body that
                // wants more then waits, which the runtime's end cuts).
                drop(theirs);
            } else {
                std::future::pending::<()>().await;
            }
        });
        let method = if head_request {
            http::Method::HEAD
        } else {
            http::Method::GET
        };
        let head = request_head(&method, "/b/k", &http::HeaderMap::new());
        let wait = std::time::Duration::from_millis(50);
        let exchange = tokio::time::timeout(wait, Conn::new(ours).exchange(&head, head_request));
        let Ok(Ok((_parts, mut body))) = exchange.await else {
            return;
        };
        let announced = body.size_hint().exact();
        let mut got = 0u64;
        let mut whole = false;
        loop {
            let next = tokio::time::timeout(wait, poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)));
            match next.await {
                Ok(Some(Ok(frame))) => {
                    got += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                Ok(Some(Err(_))) => break,
                Ok(None) => {
                    whole = true;
                    break;
                }
                // Waiting on a peer that keeps the connection open.
                Err(_) => break,
            }
        }
        assert!(got <= arrived, "{got} bytes from {arrived}");
        if let Some(n) = announced {
            assert!(got <= n, "{got} bytes past the announced {n}");
            if whole {
                assert_eq!(got, n);
            }
        }
        // A connection goes back for reuse only after a whole answer.
        if !whole {
            assert!(body.reusable().is_none());
        }
    });
});
