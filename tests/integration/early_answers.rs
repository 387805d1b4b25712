//! Answers given before the request body was read: the client gets the
//! whole answer with `Connection: close`, the rest of its body is absorbed
//! instead of resetting the connection under the answer, and a client that
//! reuses connections (the AWS SDK) goes on with its next request.

use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The head of a PUT of `body` signed by `key`.
fn put_head(endpoint: &str, path: &str, body: &[u8], key: &str, secret: &str) -> Vec<u8> {
    let len_text = body.len().to_string();
    let signed = sign_request(
        "PUT",
        &format!("{endpoint}{path}"),
        &[("content-length", &len_text)],
        body,
        key,
        secret,
        std::time::SystemTime::now(),
    );
    raw_head(&signed, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_upload_is_answered_whole_with_connection_close() {
    let h = Harness::embedded().await;
    h.root()
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    // alice may not write under bob/: denied before a byte of the 2 MiB is read.
    let len = 2 * 1024 * 1024;
    let chunk = vec![b'x'; 64 * 1024];
    s.write_all(&put_head(
        &h.endpoint(),
        "/shared/bob/x",
        &chunk.repeat(len / chunk.len()),
        ALICE_KEY,
        ALICE_SECRET,
    ))
    .await
    .unwrap();
    let (mut rd, mut wr) = s.into_split();
    // The client keeps sending its body, as a client without
    // `Expect: 100-continue` does, while it reads the answer.
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        while sent < len {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    read.expect("connection not closed")
        .unwrap_or_else(|e| panic!("answer cut by a reset ({e}) after: {text}"));
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    // The whole answer: the XML, and as many bytes as its head announced
    // (or the chunked encoding's last chunk).
    assert!(text.contains("</Error>"), "answer incomplete: {text}");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    match head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        Some(n) => assert_eq!(n.parse::<usize>().unwrap(), body.len(), "{text}"),
        None => {
            assert!(head.contains("transfer-encoding: chunked"), "{text}");
            assert!(body.ends_with("0\r\n\r\n"), "answer incomplete: {text}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    writer.await.unwrap();
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_client_goes_on_after_a_refused_upload() {
    let h = Harness::embedded().await;
    let root = h.root();
    root.create_bucket().bucket("shared").send().await.unwrap();
    root.put_object()
        .bucket("shared")
        .key("alice/ok")
        .body(b"fine".to_vec().into())
        .send()
        .await
        .unwrap();
    let alice = h.alice();
    for _ in 0..5 {
        let refused = alice
            .put_object()
            .bucket("shared")
            .key("bob/x")
            .body(vec![b'x'; 200 * 1024].into())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&refused), "AccessDenied");
        let got = alice
            .get_object()
            .bucket("shared")
            .key("alice/ok")
            .send()
            .await
            .unwrap();
        assert_eq!(&got.body.collect().await.unwrap().into_bytes()[..], b"fine");
    }
    // One record per request, each with its own status: none lost to a
    // connection closed under it.
    let records = h.audit(12).await;
    let denied = records.iter().filter(|r| r["status"] == 403).count();
    let read = records
        .iter()
        .filter(|r| r["status"] == 200 && r["operation"] == "GetObject")
        .count();
    assert_eq!((denied, read), (5, 5), "{records:#?}");
    h.server.shutdown().await;
}
