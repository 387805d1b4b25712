//! Response helpers: request ids, the headers every S3 response carries, and
//! S3 XML error responses.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::Full;
use rand::RngExt;

use crate::s3::S3Error;

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A request id like S3's: 16 upper-case letters and digits.
pub fn new_request_id() -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(16);
    for _ in 0..16 {
        id.push(char::from(ID_CHARS[rng.random_range(0..ID_CHARS.len())]));
    }
    id
}

/// Adds `x-amz-request-id`, `x-amz-id-2` and `Server` to a response.
pub fn stamp(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amz-request-id", v.clone());
        headers.insert("x-amz-id-2", v);
    }
    headers.insert(http::header::SERVER, HeaderValue::from_static("s3warden"));
}

/// An S3 error response; HEAD responses carry no body, as S3's don't.
pub fn error(e: &S3Error, request_id: &str, head: bool) -> Response<Full<Bytes>> {
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(e.to_xml(request_id))
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = e.status;
    if !head {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
    }
    resp
}
