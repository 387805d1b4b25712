//! aws-chunked requests in the pipeline: read what the headers promise
//! (`x-amz-decoded-content-length`, `x-amz-trailer`, `Content-Encoding`),
//! build the decoder, and rewrite the headers that go upstream so they
//! describe the re-framed body: `Content-Length`, `Content-Encoding` without
//! `aws-chunked` unless the upstream framing needs it, and the decoded length
//! and trailer name when the trailer is carried upstream.

use crate::s3::headers::header_str;
use http::{HeaderMap, HeaderValue};

use crate::auth::AuthError;
use crate::auth::checksum::Algorithm;
use crate::auth::chunked::body::Framing;
use crate::auth::chunked::{ChunkSigner, DecoderConfig, StreamingMode};
use crate::auth::payload::UNSIGNED_PAYLOAD;
use crate::s3::S3Error;

/// How one aws-chunked body is decoded and forwarded.
#[derive(Debug, Clone)]
pub struct ChunkedPlan {
    pub decoder: DecoderConfig,
    pub framing: Framing,
    pub decoded_length: u64,
}

impl ChunkedPlan {
    /// `x-amz-content-sha256` for the upstream request.
    pub fn upstream_payload_hash(&self) -> &'static str {
        match self.framing {
            Framing::Plain => UNSIGNED_PAYLOAD,
            Framing::AwsChunked(_) => StreamingMode::UnsignedPayloadTrailer.as_str(),
        }
    }
}

/// The content codings other than `aws-chunked`, in order.
fn other_encodings(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
        .map(str::to_string)
        .collect()
}

/// True when `Content-Encoding` lists `aws-chunked`.
pub fn declares_aws_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("aws-chunked"))
}

/// Reads an aws-chunked request's headers into a plan.
pub fn plan(
    headers: &HeaderMap,
    mode: StreamingMode,
    signer: Option<ChunkSigner>,
) -> Result<ChunkedPlan, AuthError> {
    let decoded = header_str(headers, "x-amz-decoded-content-length")
        .ok_or(AuthError::MissingDecodedLength)?;
    let decoded_length: u64 = decoded
        .trim()
        .parse()
        .ok()
        .filter(|_| decoded.trim().bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| AuthError::InvalidHeader {
            header: "x-amz-decoded-content-length",
            value: decoded.to_string(),
        })?;
    let trailer = match header_str(headers, "x-amz-trailer") {
        None => None,
        Some(v) => {
            let alg = Algorithm::from_header(&v.trim().to_ascii_lowercase())
                .filter(|_| mode.has_trailer())
                .ok_or_else(|| AuthError::InvalidHeader {
                    header: "x-amz-trailer",
                    value: v.to_string(),
                })?;
            Some(alg)
        }
    };
    if mode.signed_chunks() != signer.is_some() {
        // Cannot happen for a verified request; refuse rather than guess.
        return Err(AuthError::InvalidContentSha256(mode.as_str().to_string()));
    }
    Ok(ChunkedPlan {
        decoder: DecoderConfig {
            signer,
            trailer,
            signed_trailer: mode == StreamingMode::SignedPayloadTrailer,
            decoded_length,
        },
        framing: trailer.map_or(Framing::Plain, Framing::AwsChunked),
        decoded_length,
    })
}

/// Rewrites the forwarded headers to describe the re-framed body.
pub fn rewrite_headers(out: &mut HeaderMap, plan: &ChunkedPlan) -> Result<(), S3Error> {
    let others = other_encodings(out);
    out.remove(http::header::CONTENT_ENCODING);
    out.remove(http::header::CONTENT_LENGTH);
    out.remove("x-amz-decoded-content-length");
    out.remove("x-amz-trailer");
    let value = |s: &str| HeaderValue::from_str(s).map_err(|_| S3Error::internal_error());
    let mut encodings = Vec::with_capacity(others.len() + 1);
    if let Framing::AwsChunked(alg) = plan.framing {
        encodings.push("aws-chunked".to_string());
        out.insert(
            "x-amz-decoded-content-length",
            HeaderValue::from(plan.decoded_length),
        );
        out.insert("x-amz-trailer", HeaderValue::from_static(alg.header_name()));
    }
    encodings.extend(others);
    if !encodings.is_empty() {
        out.insert(http::header::CONTENT_ENCODING, value(&encodings.join(","))?);
    }
    out.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(plan.framing.encoded_length(plan.decoded_length)),
    );
    Ok(())
}

/// Refuses `Content-Encoding: aws-chunked` on a body that is not declared
/// as aws-chunked by `x-amz-content-sha256`: its framing would be ambiguous.
pub fn refuse_stray_aws_chunked(headers: &HeaderMap) -> Result<(), S3Error> {
    if declares_aws_chunked(headers) {
        return Err(S3Error::invalid_argument(
            "Content-Encoding aws-chunked needs a STREAMING-* x-amz-content-sha256.",
            "Content-Encoding",
            "aws-chunked",
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
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn trailer_goes_upstream_as_unsigned_trailer_framing() {
        let h = headers(&[
            ("x-amz-decoded-content-length", "100000"),
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
            ("content-encoding", "aws-chunked,gzip"),
            ("content-length", "100300"),
        ]);
        let p = plan(&h, StreamingMode::UnsignedPayloadTrailer, None).unwrap();
        assert_eq!(p.framing, Framing::AwsChunked(Algorithm::Crc32c));
        let mut out = h.clone();
        rewrite_headers(&mut out, &p).unwrap();
        assert_eq!(out["content-encoding"], "aws-chunked,gzip");
        assert_eq!(out["x-amz-trailer"], "x-amz-checksum-crc32c");
        assert_eq!(out["x-amz-decoded-content-length"], "100000");
        // "10000\r\n" 65536 bytes "\r\n", "86a0\r\n" 34464 bytes "\r\n", then
        // "0\r\n" "x-amz-checksum-crc32c" ":" 8 base64 "\r\n" "\r\n".
        let expected = (5 + 2 + 65536 + 2) + (4 + 2 + 34464 + 2) + 3 + 21 + 1 + 8 + 2 + 2;
        assert_eq!(out["content-length"], expected.to_string().as_str());
        assert_eq!(
            p.upstream_payload_hash(),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        );
    }

    #[test]
    fn without_trailer_the_body_goes_plain() {
        let h = headers(&[
            ("x-amz-decoded-content-length", "5"),
            ("content-encoding", "aws-chunked"),
        ]);
        let p = plan(&h, StreamingMode::UnsignedPayloadTrailer, None).unwrap();
        let mut out = h.clone();
        rewrite_headers(&mut out, &p).unwrap();
        assert!(!out.contains_key("content-encoding"));
        assert!(!out.contains_key("x-amz-decoded-content-length"));
        assert_eq!(out["content-length"], "5");
        assert_eq!(p.upstream_payload_hash(), "UNSIGNED-PAYLOAD");
    }

    #[test]
    fn header_problems() {
        let missing = plan(
            &HeaderMap::new(),
            StreamingMode::UnsignedPayloadTrailer,
            None,
        );
        assert_eq!(missing.unwrap_err(), AuthError::MissingDecodedLength);
        for (n, v) in [
            ("x-amz-decoded-content-length", "-1"),
            ("x-amz-decoded-content-length", "1e3"),
        ] {
            let h = headers(&[(n, v)]);
            assert!(plan(&h, StreamingMode::UnsignedPayloadTrailer, None).is_err());
        }
        let h = headers(&[
            ("x-amz-decoded-content-length", "1"),
            ("x-amz-trailer", "x-amz-checksum-md5"),
        ]);
        assert!(plan(&h, StreamingMode::UnsignedPayloadTrailer, None).is_err());
        assert!(
            refuse_stray_aws_chunked(&headers(&[("content-encoding", "gzip, aws-chunked")]))
                .is_err()
        );
        assert!(refuse_stray_aws_chunked(&headers(&[("content-encoding", "gzip")])).is_ok());
    }
}
