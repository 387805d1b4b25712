//! Integrity checks on control bodies the proxy reads whole and rewrites
//! (multi-object delete): the signed payload hash, Content-MD5 and any
//! `x-amz-checksum-*` header must all match before anything is forwarded.

use http::HeaderMap;

use crate::auth::checksum::{Algorithm, checksum_base64, well_formed};
use crate::auth::payload::{BodyError, PayloadHash};
use crate::s3::S3Error;

/// Checks `body` against everything the client said about it. S3 requires an
/// integrity header (Content-MD5 or a checksum) on these operations; a
/// trailing checksum of an aws-chunked body, already verified while decoding
/// (`trailer_verified`), counts as one.
pub fn check_control_body(
    headers: &HeaderMap,
    payload: &PayloadHash,
    body: &[u8],
    trailer_verified: bool,
) -> Result<(), S3Error> {
    if let PayloadHash::Sha256(claimed) = payload {
        let computed = crate::auth::signing::sha256_hex(body);
        if computed != hex::encode(claimed) {
            return Err(S3Error::from(&BodyError::Sha256Mismatch {
                claimed: hex::encode(claimed),
                computed,
            }));
        }
    }
    let mut integrity = trailer_verified;
    for (name, value) in headers {
        let alg = if name == "content-md5" {
            Some(Algorithm::Md5)
        } else {
            Algorithm::from_header(name.as_str())
        };
        let Some(alg) = alg else { continue };
        let value = value
            .to_str()
            .map_err(|_| S3Error::invalid_digest())?
            .trim();
        if !well_formed(alg, value) {
            return Err(S3Error::invalid_digest());
        }
        if checksum_base64(alg, body) != value {
            return Err(S3Error::bad_digest());
        }
        integrity = true;
    }
    if !integrity {
        return Err(S3Error::invalid_request(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn requires_and_checks_integrity_headers() {
        let body = b"hello world";
        assert!(
            check_control_body(
                &headers(&[("x-amz-checksum-crc32", "DUoRhQ==")]),
                &PayloadHash::Unsigned,
                body,
                false
            )
            .is_ok()
        );
        assert!(
            check_control_body(
                &headers(&[("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")]),
                &PayloadHash::Unsigned,
                body,
                false
            )
            .is_ok()
        );
        let e = check_control_body(
            &headers(&[("x-amz-checksum-crc32", "AAAAAA==")]),
            &PayloadHash::Unsigned,
            body,
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, "BadDigest");
        let e = check_control_body(
            &headers(&[("content-md5", "zz")]),
            &PayloadHash::Unsigned,
            body,
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidDigest");
        let e = check_control_body(&headers(&[]), &PayloadHash::Unsigned, body, false).unwrap_err();
        assert!(check_control_body(&headers(&[]), &PayloadHash::Unsigned, body, true).is_ok());
        assert_eq!(e.code, "InvalidRequest");
        let e = check_control_body(
            &headers(&[("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")]),
            &PayloadHash::Sha256([0; 32]),
            body,
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, "XAmzContentSHA256Mismatch");
    }
}
