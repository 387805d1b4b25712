//! HTTP/1 keep-alive between requests: pipelined requests are answered in
//! order, uploads and reads alternate on one connection whose answers never
//! announce a close, HTTP/1.0 and `Connection: close` are honoured, and a body
//! the proxy never read — or framed two ways — is never taken for a request.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request of alice's, signed over `body`, as raw bytes.
fn request(h: &Harness, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let headers: &[(&str, &str)] = if method == "PUT" {
        &[("content-length", &len)]
    } else {
        &[]
    };
    let signed = sign_request(
        method,
        &format!("{}{path}", h.endpoint()),
        headers,
        body,
        ALICE_KEY,
        ALICE_SECRET,
        SystemTime::now(),
    );
    let mut bytes = raw_head(&signed, path);
    bytes.extend_from_slice(body);
    bytes
}

/// `request` with a header added after the signed ones (not signed).
fn with_header(mut raw: Vec<u8>, line: &str) -> Vec<u8> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    raw.splice(end..end, format!("{line}\r\n").into_bytes());
    raw
}

fn as_http10(mut raw: Vec<u8>) -> Vec<u8> {
    let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
    raw[line_end - 1] = b'0';
    raw
}

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Appends what the server sends next; false when it closed.
async fn read_more<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => false,
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        Err(_) => panic!("no answer within 10 s"),
    }
}

/// Reads one answer (sized or chunked body) from `s`, keeping what follows it.
async fn answer<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<Answer> {
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if !read_more(s, buf).await {
            assert!(buf.is_empty(), "cut inside a head: {buf:?}");
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head[9..12].parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|n| n.trim().parse::<usize>().unwrap());
    let body_end = loop {
        let body = &buf[head_end..];
        let end = match length {
            Some(n) => (body.len() >= n).then_some(head_end + n),
            None if lower.contains("transfer-encoding: chunked") => body
                .windows(5)
                .position(|w| w == b"0\r\n\r\n")
                .map(|p| head_end + p + 5),
            None => Some(head_end),
        };
        if let Some(end) = end {
            break end;
        }
        assert!(read_more(s, buf).await, "cut inside a body");
    };
    let body = buf[head_end..body_end].to_vec();
    buf.drain(..body_end);
    Some(Answer { status, head, body })
}

/// True when the server closed the connection (nothing more to read).
async fn closed<S: AsyncRead + Unpin>(s: &mut S, buf: &[u8]) -> bool {
    assert!(
        buf.is_empty(),
        "more than expected: {:?}",
        String::from_utf8_lossy(buf)
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    matches!(read, Ok(Ok(_))) && rest.is_empty()
}

async fn harness_with_objects() -> Harness {
    let h = Harness::embedded().await;
    seed(&h.root()).await;
    h
}

/// The bucket `shared` with alice's two objects, `a` and `b`.
async fn seed(root: &aws_sdk_s3::Client) {
    root.create_bucket().bucket("shared").send().await.unwrap();
    for (key, text) in [("alice/a", "first"), ("alice/b", "second")] {
        root.put_object()
            .bucket("shared")
            .key(key)
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
}

/// The answer leaves the connection open: a client that honours
/// `Connection: close` (the SDKs, browsers) would not reuse it otherwise.
fn kept_open(a: &Answer) -> bool {
    !a.head.to_ascii_lowercase().contains("connection: close")
}

/// Pipelined reads, then after a pause an upload and a read of it in one
/// write, then one more read, then after idling another upload and read:
/// all answered, in order, on connection `s`.
async fn serve_in_order<S: AsyncRead + AsyncWrite + Unpin>(h: &Harness, s: &mut S) {
    let mut buf = Vec::new();
    // Two reads in one write: the second waits in the buffer of the first.
    let mut both = request(h, "GET", "/shared/alice/a", b"");
    both.extend(request(h, "GET", "/shared/alice/b", b""));
    s.write_all(&both).await.unwrap();
    for expected in ["first", "second"] {
        let a = answer(s, &mut buf).await.expect("an answer");
        assert_eq!(a.status, 200, "{}", a.head);
        assert_eq!(a.body, expected.as_bytes());
        assert!(kept_open(&a), "{}", a.head);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut both = request(h, "PUT", "/shared/alice/c", &vec![b'z'; 300 * 1024]);
    both.extend(request(h, "GET", "/shared/alice/c", b""));
    s.write_all(&both).await.unwrap();
    let put = answer(s, &mut buf).await.expect("the upload's answer");
    assert_eq!(put.status, 200, "{}", put.head);
    let got = answer(s, &mut buf).await.expect("the read's answer");
    assert_eq!((got.status, got.body.len()), (200, 300 * 1024));
    assert!(
        kept_open(&put) && kept_open(&got),
        "{}{}",
        put.head,
        got.head
    );
    s.write_all(&request(h, "GET", "/shared/alice/a", b""))
        .await
        .unwrap();
    let again = answer(s, &mut buf).await.expect("a third answer");
    assert_eq!(again.body, b"first");

    // Idle past the point where the connection gives back its read buffer's
    // pages (grown by the upload): the next upload and read on it are whole.
    tokio::time::sleep(s3warden::server::TRIM_AFTER + Duration::from_millis(700)).await;
    let varied: Vec<u8> = (0..600 * 1024).map(|i| (i % 251) as u8).collect();
    let mut both = request(h, "PUT", "/shared/alice/d", &varied);
    both.extend(request(h, "GET", "/shared/alice/d", b""));
    s.write_all(&both).await.unwrap();
    let put = answer(s, &mut buf)
        .await
        .expect("the upload's answer after idling");
    assert_eq!(put.status, 200, "{}", put.head);
    let got = answer(s, &mut buf)
        .await
        .expect("the read's answer after idling");
    assert_eq!(got.status, 200, "{}", got.head);
    assert!(got.body == varied, "the object read back differs");
}

/// A PUT alice may not make, whose body is a whole request she may: the PUT
/// is refused before its body is read, the body is never answered as a
/// request of its own, and the connection closes.
async fn refuse_and_close<S: AsyncRead + AsyncWrite + Unpin>(h: &Harness, s: &mut S) {
    let mut buf = Vec::new();
    let inner = request(h, "GET", "/shared/alice/a", b"");
    s.write_all(&request(h, "PUT", "/shared/bob/x", &inner))
        .await
        .unwrap();
    let refused = answer(s, &mut buf).await.expect("an answer");
    assert_eq!(refused.status, 403, "{}", refused.head);
    assert!(closed(s, &buf).await, "the connection stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_the_connection_goes_on() {
    let h = harness_with_objects().await;
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    serve_in_order(&h, &mut s).await;
    // The bucket and two objects made by root, then alice's seven requests.
    let records = h.audit(10).await;
    assert_eq!(records.len(), 10, "{records:#?}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_proxy_never_read_is_not_taken_for_a_request() {
    let h = harness_with_objects().await;
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    refuse_and_close(&h, &mut s).await;
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_and_connection_close_are_honoured() {
    let h = harness_with_objects().await;
    let addr = h.server.local_addr();
    let get = || request(&h, "GET", "/shared/alice/a", b"");

    // HTTP/1.0 without keep-alive: answered, then closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(&as_http10(get())).await.unwrap();
    let a = answer(&mut s, &mut buf).await.expect("an answer");
    assert_eq!((a.status, &a.body[..]), (200, &b"first"[..]));
    assert!(closed(&mut s, &buf).await);

    // HTTP/1.0 asking for keep-alive is told yes and served again.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        s.write_all(&with_header(as_http10(get()), "Connection: keep-alive"))
            .await
            .unwrap();
        let a = answer(&mut s, &mut buf).await.expect("an answer");
        assert_eq!(a.status, 200);
        assert!(
            a.head
                .to_ascii_lowercase()
                .contains("connection: keep-alive"),
            "{}",
            a.head
        );
    }

    // HTTP/1.1 with `Connection: close`: answered, then closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(&with_header(get(), "Connection: close"))
        .await
        .unwrap();
    let a = answer(&mut s, &mut buf).await.expect("an answer");
    assert_eq!(a.body, b"first");
    assert!(closed(&mut s, &buf).await);
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_left_unread_under_a_success_is_not_taken_for_a_request() {
    // A CORS preflight is answered from the configuration, 200 and without
    // reading its body: the body, here a whole request alice may make, must
    // not be answered as the next request. (hyper reads it away, or closes.)
    let cors =
        "[cors]\nallowed_origins = [\"http://app.localtest:8000\"]\nallowed_methods = [\"GET\"]\n";
    let h = Harness::embedded_configured("", "", cors).await;
    seed(&h.root()).await;
    let inner = request(&h, "GET", "/shared/alice/a", b"");
    let preflight = format!(
        "OPTIONS /shared/alice/a HTTP/1.1\r\nHost: {}\r\nOrigin: http://app.localtest:8000\r\nAccess-Control-Request-Method: GET\r\nContent-Length: {}\r\n\r\n",
        addr_of(&h.endpoint()),
        inner.len()
    );
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    let mut bytes = preflight.into_bytes();
    bytes.extend_from_slice(&inner);
    s.write_all(&bytes).await.unwrap();
    let mut buf = Vec::new();
    let a = answer(&mut s, &mut buf).await.expect("an answer");
    assert_eq!(a.status, 200, "{}", a.head);
    // The next answer, if the connection goes on, is the next request's.
    if s.write_all(&request(&h, "GET", "/shared/alice/b", b""))
        .await
        .is_ok()
        && let Some(next) = answer(&mut s, &mut buf).await
    {
        assert_eq!(next.body, b"second", "the body was answered: {}", next.head);
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_framed_two_ways_does_not_smuggle_another() {
    // Transfer-Encoding and Content-Length together (CL.TE): chunked, the
    // body ends at once and a GET would follow it; by length, the GET is
    // body. Either way the GET must never be answered.
    let h = harness_with_objects().await;
    let inner = request(&h, "GET", "/shared/alice/a", b"");
    let mut body = b"0\r\n\r\n".to_vec();
    body.extend_from_slice(&inner);
    let raw = with_header(
        request(&h, "PUT", "/shared/alice/x", &body),
        "Transfer-Encoding: chunked",
    );
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    s.write_all(&raw).await.unwrap();
    let mut buf = Vec::new();
    while let Some(a) = answer(&mut s, &mut buf).await {
        assert_ne!(
            a.body, b"first",
            "a smuggled request was answered: {}",
            a.head
        );
    }
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_same_holds() {
    let (h, ca) = Harness::embedded_maybe_tls(true, "").await;
    seed(&h.client_trusting(ROOT_KEY, ROOT_SECRET, ca.as_deref())).await;
    let config = tls_client_config(&std::fs::read(ca.unwrap()).unwrap());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let connect = async || {
        let tcp = TcpStream::connect(h.server.local_addr()).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await.unwrap()
    };

    serve_in_order(&h, &mut connect().await).await;
    refuse_and_close(&h, &mut connect().await).await;
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_request_gets_s3s_error_an_audit_record_and_a_close() {
    let h = Harness::embedded().await;
    let mut many = b"GET /shared/a HTTP/1.1\r\nhost: x\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("x-h{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    // What the record names of the refused request: nothing of a head whose
    // request line could not be read (the method is always written, empty
    // when unknown); its method, bucket and key, and the host and claimed
    // key of the lines before the one that could not be read, when a header
    // line could not; its method, host, bucket and key when only its
    // framing was refused.
    let line = [Some("GET"), Some("x"), Some("shared"), Some("a")];
    for (raw, status, code, named) in [
        (&many[..], "400", "RequestHeaderSectionTooLarge", line),
        (
            &b"GET /shared/a HTTP/1.1\r\nbad header\r\nhost: x\r\n\r\n"[..],
            "400",
            "InvalidRequest",
            [Some("GET"), None, Some("shared"), Some("a")],
        ),
        // Signed: the key its lines claim before the malformed one.
        (
            b"PUT /shared/a HTTP/1.1\r\nhost: x\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIACLAIMEDV4/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000\r\nbad header\r\n\r\n",
            "400",
            "InvalidRequest",
            [Some("PUT"), Some("x"), Some("shared"), Some("a")],
        ),
        (
            &b"GET /shared/a HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\nGET /shared/b HTTP/1.1\r\n\r\n"[..],
            "400",
            "InvalidRequest",
            line,
        ),
        (
            b"GET /shared/a HTTP/1.1\r\nhost: x\r\nx-bad: a\x01b\r\n\r\n",
            "400",
            "InvalidRequest",
            line,
        ),
        (
            b"GET\x01/shared/a HTTP/1.1\r\nhost: x\r\n\r\n",
            "400",
            "InvalidRequest",
            [Some(""), None, None, None],
        ),
        // A presigned URL's claimed key, from the request line alone.
        (
            b"GET /shared/a?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIACLAIMEDQV4%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=0000000000000000000000000000000000000000000000000000000000000000 HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n",
            "400",
            "InvalidRequest",
            line,
        ),
        (
            b"PUT /shared/a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "501",
            "NotImplemented",
            [Some("PUT"), Some("x"), Some("shared"), Some("a")],
        ),
        (
            b"PUT /shared/a HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n",
            "400",
            "InvalidRequest",
            [Some("PUT"), None, Some("shared"), Some("a")],
        ),
        (
            b"DELETE /shared/b%20c HTTP/1.1\r\nhost: x\r\ncontent-length: 1, 2\r\n\r\n",
            "400",
            "InvalidRequest",
            [Some("DELETE"), Some("x"), Some("shared"), Some("b c")],
        ),
        // Signed: the key it claims is recorded, unverified.
        (
            b"PUT /shared/a HTTP/1.1\r\nhost: x\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIACLAIMEDV4/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
            "400",
            "InvalidRequest",
            [Some("PUT"), Some("x"), Some("shared"), Some("a")],
        ),
        (
            b"GET /shared/a?AWSAccessKeyId=AKIACLAIMEDV2&Expires=1&Signature=AAAAAAAAAAAAAAAAAAAAAAAAAAA%3D HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n",
            "501",
            "NotImplemented",
            [Some("GET"), Some("x"), Some("shared"), Some("a")],
        ),
    ] {
        let (text, record) = refused(&h, raw).await;
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        assert!(text.contains(&format!("<Code>{code}</Code>")), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
        assert_eq!(record["status"], status.parse::<u64>().unwrap(), "{record}");
        assert_eq!(record["error_code"], code, "{record}");
        assert_eq!(record["error_source"], "client", "{record}");
        for (field, want) in ["method", "host", "bucket", "key"].into_iter().zip(named) {
            assert_eq!(record[field].as_str(), want, "{field}: {record}");
        }
        let text = String::from_utf8_lossy(raw);
        let (kind, key, version) = if text.contains("AKIACLAIMEDQV4") {
            ("presigned", Some("AKIACLAIMEDQV4"), Some("AWS4-HMAC-SHA256"))
        } else if text.contains("AKIACLAIMEDV4") {
            ("header", Some("AKIACLAIMEDV4"), Some("AWS4-HMAC-SHA256"))
        } else if text.contains("AKIACLAIMEDV2") {
            ("presigned", Some("AKIACLAIMEDV2"), Some("AWS"))
        } else {
            ("anonymous", None, None)
        };
        assert_eq!(record["auth"]["kind"], kind, "{record}");
        assert_eq!(record["auth"]["access_key_id"].as_str(), key, "{record}");
        assert_eq!(record["auth"]["signature_version"].as_str(), version, "{record}");
        if key.is_some() {
            assert!(
                record["auth"]["failure"].as_str().unwrap().contains("not verified"),
                "{record}"
            );
            assert!(record.get("principal").is_none(), "{record}");
        }
    }
    h.server.shutdown().await;
}

/// Sends `raw` on a new connection and reads until the server closes it:
/// the answer, and the audit record of its request id.
async fn refused(h: &Harness, raw: &[u8]) -> (String, serde_json::Value) {
    let mut s = TcpStream::connect(h.server.local_addr()).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the connection closes after the refusal")
        .unwrap();
    let text = String::from_utf8_lossy(&got).into_owned();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-request-id: "))
        .expect("a request id")
        .trim()
        .to_string();
    (text, h.audit_for(&id).await)
}

/// Where buckets may be addressed by host name, a head refused at a header
/// line before its host names its method and claimed key but not a bucket
/// and key read from its path, which may be wrong; one with its host (read
/// before the fault, or whole) names them.
#[tokio::test]
async fn a_refused_head_without_its_host_names_no_guessed_bucket() {
    let h = Harness::embedded_configured("domains = [\"s3.local\"]", "", "").await;
    for (raw, bucket, key) in [
        (
            &b"GET /photos/2024/a.jpg?AWSAccessKeyId=AKIACLAIMEDV2&Expires=1&Signature=AAAAAAAAAAAAAAAAAAAAAAAAAAA%3D HTTP/1.1\r\nbad header\r\nhost: mybucket.s3.local\r\n\r\n"[..],
            None,
            None,
        ),
        (
            b"GET /photos/2024/a.jpg HTTP/1.1\r\nhost: mybucket.s3.local\r\nbad header\r\n\r\n",
            Some("mybucket"),
            Some("photos/2024/a.jpg"),
        ),
        (
            b"GET /photos/2024/a.jpg HTTP/1.1\r\nhost: mybucket.s3.local\r\ntransfer-encoding: gzip\r\n\r\n",
            Some("mybucket"),
            Some("photos/2024/a.jpg"),
        ),
    ] {
        let (_, record) = refused(&h, raw).await;
        assert_eq!(record["method"], "GET", "{record}");
        assert_eq!(record["bucket"].as_str(), bucket, "{record}");
        assert_eq!(record["key"].as_str(), key, "{record}");
        if bucket.is_none() {
            assert_eq!(record["auth"]["access_key_id"], "AKIACLAIMEDV2", "{record}");
        }
    }
    h.server.shutdown().await;
}

/// `s3warden_worker_connections`, by worker, from the metrics endpoint.
async fn worker_connections(h: &Harness) -> Vec<i64> {
    let metrics = format!("http://{}/metrics", h.server.metrics_addr().unwrap());
    let text = reqwest::get(metrics).await.unwrap().text().await.unwrap();
    let mut counts: Vec<(String, i64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("s3warden_worker_connections{worker=\""))
        .filter_map(|l| {
            let (worker, value) = l.split_once("\"} ")?;
            Some((worker.to_string(), value.trim().parse().ok()?))
        })
        .collect();
    counts.sort();
    counts.into_iter().map(|(_, n)| n).collect()
}

/// The workers share one listening socket and whichever polls first takes
/// a connection; connections opened together still end up spread evenly
/// (a worker that accepts more than its share hands them to another), a
/// handed-over connection is served like any other, and a closed one is
/// counted out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_opened_together_are_spread_over_the_workers() {
    let h =
        Harness::embedded_configured("workers = 2\nmetrics_listen = \"127.0.0.1:0\"", "", "").await;
    assert_eq!(worker_connections(&h).await, [0, 0]);
    let addr = h.server.local_addr();
    let mut conns: Vec<TcpStream> =
        futures_util::future::join_all((0..64).map(|_| TcpStream::connect(addr)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    for round in 0..2 {
        let answers = futures_util::future::join_all(conns.iter_mut().map(|s| async {
            s.write_all(&request(&h, "GET", "/shared/alice/none", b""))
                .await
                .unwrap();
            let mut buf = Vec::new();
            let a = answer(s, &mut buf).await.expect("an answer");
            (a.status, kept_open(&a))
        }))
        .await;
        for (status, open) in answers {
            assert_eq!((status, open), (403, true), "round {round}");
        }
    }
    let counts = worker_connections(&h).await;
    assert_eq!(counts.iter().sum::<i64>(), 64, "{counts:?}");
    assert!(counts[0].abs_diff(counts[1]) <= 1, "{counts:?}");
    drop(conns);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while worker_connections(&h).await != [0, 0] {
        assert!(
            std::time::Instant::now() < deadline,
            "closed connections still counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.server.shutdown().await;
}
