//! Response helpers: request ids, the headers every S3 response carries, and
//! S3 XML error responses.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::Full;
use rand::RngExt;

// Names made once: a name given as `&str` is parsed on every insert.
use crate::http1::{X_AMZ_ID_2, X_AMZ_REQUEST_ID};
use crate::s3::S3Error;

const ID_CHARS: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A request id like S3's: 16 upper-case letters and digits.
pub fn new_request_id() -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(16);
    // Eight characters from each random word, read as a fraction of 2^64
    // in base 36 (41 of its 64 bits): two draws instead of sixteen ranged
    // ones, each of which samples, rejects and maps on its own.
    for _ in 0..2 {
        let mut fraction = rng.random::<u64>();
        for _ in 0..8 {
            let scaled = u128::from(fraction) * 36;
            id.push(char::from(ID_CHARS[(scaled >> 64) as usize]));
            fraction = scaled as u64;
        }
    }
    id
}

/// Adds `x-amz-request-id`, `x-amz-id-2` and `Server` to a response.
pub fn stamp(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(&X_AMZ_REQUEST_ID, v.clone());
        headers.insert(&X_AMZ_ID_2, v);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sixteen_letters_and_digits_spread_evenly() {
        let mut seen = std::collections::HashSet::new();
        let mut counts = [0usize; 36];
        for _ in 0..10_000 {
            let id = new_request_id();
            assert_eq!(id.len(), 16, "{id}");
            for b in id.bytes() {
                let at = ID_CHARS.iter().position(|c| *c == b);
                counts[at.unwrap_or_else(|| panic!("{id}: {b}"))] += 1;
            }
            assert!(seen.insert(id));
        }
        // 160,000 characters, about 4,444 of each: far outside ±900 (14
        // standard deviations) only if characters are drawn unevenly.
        for (c, n) in ID_CHARS.iter().zip(counts) {
            assert!((3_544..=5_344).contains(&n), "{}: {n}", char::from(*c));
        }
    }

    #[test]
    fn every_answer_is_stamped_with_its_request_id() {
        let mut h = HeaderMap::new();
        stamp(&mut h, "ABCDEF0123456789");
        assert_eq!(h["x-amz-request-id"], "ABCDEF0123456789");
        assert_eq!(h["x-amz-id-2"], "ABCDEF0123456789");
        assert_eq!(h["server"], "s3warden");
    }
}
