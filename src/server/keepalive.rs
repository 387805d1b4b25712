//! HTTP/1 keep-alive that holds no buffers between requests.
//!
//! hyper's HTTP/1 connection keeps an 8 KiB write buffer and a read buffer
//! of at least 8 KiB — after an upload, as large as the 256 KiB pieces bodies
//! are read in — for as long as the connection lives, idle or not: about
//! 15 KiB per idle keep-alive connection after small requests, 115 KiB after
//! 1 MiB uploads (docs/benchmarks.md). So an HTTP/1 connection is served
//! one request per hyper connection with hyper's keep-alive off: once the
//! answer is written, hyper hands the socket back with whatever it read
//! beyond the request, and the socket waits for the next request holding no
//! buffer at all.
//!
//! Reuse is decided here, and only when the next bytes are certain to start
//! a new request: the client did not ask to close (HTTP/1.1 without
//! `Connection: close`, HTTP/1.0 only with `keep-alive`, never an upgrade),
//! the answer did not say close, the request's body was read to its end (a
//! body left unread would be parsed as the next request), hyper served
//! exactly one request and ended without error, and the server is not
//! shutting down. Anything else closes the connection, as hyper would.
//! Over TLS the wait also asks rustls, which may hold decrypted bytes the
//! socket no longer shows (see `conn::Parkable`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Version};

/// What one request on a parked connection said about reusing it.
#[derive(Debug, Default)]
pub struct Reuse {
    /// Requests hyper handed to the service on this hyper connection.
    served: AtomicU32,
    /// The client and the answer both leave the connection open.
    keep: AtomicBool,
    /// The request body was read to its end (or there was none).
    body_ended: AtomicBool,
    /// HTTP/1.0 keep-alive: the answer must say so.
    http10: AtomicBool,
}

impl Reuse {
    /// Notes a request as hyper hands it over.
    pub fn request<B>(&self, req: &Request<B>) {
        self.served.fetch_add(1, Ordering::AcqRel);
        let headers = req.headers();
        let keep = match req.version() {
            Version::HTTP_11 => !has_token(headers, "close"),
            Version::HTTP_10 => {
                self.http10.store(true, Ordering::Release);
                has_token(headers, "keep-alive") && !has_token(headers, "close")
            }
            _ => false,
        } && req.method() != Method::CONNECT
            && !headers.contains_key(UPGRADE);
        self.keep.store(keep, Ordering::Release);
    }

    /// Notes the answer: one that says close ends the connection, and an
    /// HTTP/1.0 client that may keep the connection is told it may.
    pub fn answer<B>(&self, resp: &mut Response<B>) {
        if has_token(resp.headers(), "close") {
            self.keep.store(false, Ordering::Release);
        } else if self.http10.load(Ordering::Acquire) && self.keep.load(Ordering::Acquire) {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        }
    }

    /// The request's body has been read to its end.
    pub fn body_ended(&self) {
        self.body_ended.store(true, Ordering::Release);
    }

    /// Whether the connection may carry another request.
    pub fn reusable(&self) -> bool {
        self.served.load(Ordering::Acquire) == 1
            && self.keep.load(Ordering::Acquire)
            && self.body_ended.load(Ordering::Acquire)
    }
}

/// Whether a `Connection` header lists `token` (case-insensitive).
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, connection: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri("/b/k").version(version);
        if let Some(c) = connection {
            b = b.header(CONNECTION, c);
        }
        b.body(()).unwrap()
    }

    fn decide(req: &Request<()>, answer_connection: Option<&str>, body_ended: bool) -> bool {
        let reuse = Reuse::default();
        reuse.request(req);
        let mut resp = Response::new(());
        if let Some(c) = answer_connection {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_str(c).unwrap());
        }
        reuse.answer(&mut resp);
        if body_ended {
            reuse.body_ended();
        }
        reuse.reusable()
    }

    #[test]
    fn reuse_needs_the_client_the_answer_and_the_body_to_agree() {
        let h11 = request(Version::HTTP_11, None);
        assert!(decide(&h11, None, true));
        assert!(!decide(&h11, None, false), "a body left unread");
        assert!(!decide(&h11, Some("close"), true), "the answer closes");
        let closing = request(Version::HTTP_11, Some("Keep-Alive, CLOSE"));
        assert!(!decide(&closing, None, true));
        assert!(!decide(&request(Version::HTTP_10, None), None, true));
        assert!(decide(
            &request(Version::HTTP_10, Some("Keep-Alive")),
            None,
            true
        ));
        let mut upgrade = request(Version::HTTP_11, None);
        upgrade
            .headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!decide(&upgrade, None, true));
    }

    #[test]
    fn a_second_request_or_none_closes() {
        let reuse = Reuse::default();
        reuse.body_ended();
        assert!(!reuse.reusable(), "nothing served");
        let req = request(Version::HTTP_11, None);
        reuse.request(&req);
        reuse.request(&req);
        assert!(!reuse.reusable());
    }

    #[test]
    fn an_http10_client_is_told_the_connection_stays() {
        let reuse = Reuse::default();
        reuse.request(&request(Version::HTTP_10, Some("keep-alive")));
        let mut resp = Response::new(());
        reuse.answer(&mut resp);
        assert_eq!(resp.headers()[CONNECTION], "keep-alive");
        let reuse = Reuse::default();
        reuse.request(&request(Version::HTTP_11, None));
        let mut resp = Response::new(());
        reuse.answer(&mut resp);
        assert!(!resp.headers().contains_key(CONNECTION));
    }
}
