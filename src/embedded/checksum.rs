//! Payload integrity for the embedded store: `Content-MD5` and the `x-amz-checksum-*` family
//! (CRC32, CRC32C, CRC64NVME, SHA1, SHA256), computed while a body streams to disk and checked
//! the way S3 checks them.
//!
//! S3 behaviour followed: a malformed `Content-MD5` is `InvalidDigest`; a wrong one `BadDigest`;
//! a checksum header that does not decode to the digest size, more than one checksum header, or
//! an algorithm announced without a value (header or aws-chunked trailer) is `InvalidRequest`; a
//! wrong checksum is `BadDigest`. Objects without a client checksum get S3's default CRC64NVME.
//! A multipart object's COMPOSITE checksum is the digest over the parts' raw digests, `-N`.

use super::records::StoredChecksum;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(super) enum Algorithm {
    Crc32,
    Crc32c,
    Crc64nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// CRC64NVME exists only as a FULL_OBJECT checksum in S3.
    pub fn supports_composite(self) -> bool {
        self != Self::Crc64nvme
    }

    /// SHA checksums cannot be combined from parts, so they exist only as COMPOSITE.
    pub fn supports_full_object(self) -> bool {
        !matches!(self, Self::Sha1 | Self::Sha256)
    }
}

/// One running digest of a chosen algorithm.
pub(super) enum Hasher {
    Crc32(Crc32),
    Crc32c(Crc32c),
    Crc64nvme(Crc64Nvme),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Crc32 => Self::Crc32(Crc32::new()),
            Algorithm::Crc32c => Self::Crc32c(Crc32c::new()),
            Algorithm::Crc64nvme => Self::Crc64nvme(Crc64Nvme::new()),
            Algorithm::Sha1 => Self::Sha1(Sha1::new()),
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(h) => h.update(data),
            Self::Crc32c(h) => h.update(data),
            Self::Crc64nvme(h) => h.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self {
            Self::Crc32(h) => h.finalize().to_vec(),
            Self::Crc32c(h) => h.finalize().to_vec(),
            Self::Crc64nvme(h) => h.finalize().to_vec(),
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The MD5 (for the ETag and `Content-MD5`) and at most one checksum over a streamed body.
pub(super) struct BodyHashes {
    md5: Md5,
    checksum: Option<(Algorithm, Hasher)>,
}

/// What [`BodyHashes`] computed.
pub(super) struct Digests {
    pub md5: [u8; 16],
    pub checksum: Option<(Algorithm, Vec<u8>)>,
}

impl Digests {
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

impl BodyHashes {
    pub fn new(algorithm: Option<Algorithm>) -> Self {
        Self {
            md5: Md5::new(),
            checksum: algorithm.map(|a| (a, Hasher::new(a))),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some((_, h)) = &mut self.checksum {
            h.update(data);
        }
    }

    pub fn finish(self) -> Digests {
        Digests {
            md5: self.md5.finalize(),
            checksum: self.checksum.map(|(a, h)| (a, h.finalize())),
        }
    }
}

/// The `x-amz-checksum-*` header values of a request, in [`Algorithm::ALL`] order.
pub(super) type ChecksumHeaders<'a> = [Option<&'a str>; 5];

/// What the client claims about a body before sending it.
#[derive(Debug, Default)]
pub(super) struct Claims {
    md5: Option<[u8; 16]>,
    /// The algorithm to compute: named by a value header, by `x-amz-sdk-checksum-algorithm`, or
    /// by the aws-chunked trailer.
    pub algorithm: Option<Algorithm>,
    /// The value from a header; `None` when it comes in the trailer (or not at all).
    value: Option<Vec<u8>>,
    /// The value is announced for the aws-chunked trailer.
    trailer: bool,
}

impl Claims {
    /// Reads the claims from the request's headers.
    ///
    /// `sdk_algorithm` is what s3s parsed from `x-amz-sdk-checksum-algorithm` or `x-amz-trailer`;
    /// `trailer` names the header the trailer will carry, if any.
    pub fn parse(
        content_md5: Option<&str>,
        headers: ChecksumHeaders<'_>,
        sdk_algorithm: Option<&str>,
        trailer: Option<&str>,
    ) -> S3Result<Self> {
        let md5 = match content_md5 {
            None => None,
            Some(v) => Some(
                BASE64
                    .decode(v.trim())
                    .ok()
                    .and_then(|d| <[u8; 16]>::try_from(d).ok())
                    .ok_or_else(|| {
                        s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid.")
                    })?,
            ),
        };

        let mut given = Algorithm::ALL
            .into_iter()
            .zip(headers)
            .filter_map(|(a, v)| v.map(|v| (a, v)));
        let first = given.next();
        if given.next().is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            ));
        }

        let sdk_algorithm = match sdk_algorithm {
            None => None,
            Some(name) => Some(Algorithm::parse(name).ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "Checksum algorithm provided is unsupported."
                )
            })?),
        };
        let trailer_algorithm = match trailer {
            None => None,
            Some(name) => Some(
                Algorithm::ALL
                    .into_iter()
                    .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidRequest,
                            "The value specified in the x-amz-trailer header is not supported"
                        )
                    })?,
            ),
        };

        let mut claims = Self {
            md5,
            ..Self::default()
        };
        if let Some((algorithm, value)) = first {
            let value = decode_checksum(algorithm, value)?;
            // S3 answers a value for one algorithm announced as another with BadDigest.
            if sdk_algorithm.is_some_and(|a| a != algorithm) {
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                ));
            }
            claims.algorithm = Some(algorithm);
            claims.value = Some(value);
        } else if let Some(algorithm) = trailer_algorithm {
            if sdk_algorithm.is_some_and(|a| a != algorithm) {
                return Err(s3_error!(
                    InvalidRequest,
                    "The value specified in the x-amz-trailer header does not match x-amz-sdk-checksum-algorithm"
                ));
            }
            claims.algorithm = Some(algorithm);
            claims.trailer = true;
        } else if sdk_algorithm.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found."
            ));
        }
        Ok(claims)
    }

    /// Checks the computed digests against the claims; returns the checksum to store.
    ///
    /// `trailer_value` is the trailer header's value once the body has been read.
    pub fn verify(
        &self,
        digests: &Digests,
        trailer_value: Option<&str>,
    ) -> S3Result<Option<(Algorithm, Vec<u8>)>> {
        if let Some(md5) = self.md5
            && md5 != digests.md5
        {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
        let Some(algorithm) = self.algorithm else {
            return Ok(digests.checksum.clone());
        };
        let claimed = if self.trailer {
            let value = trailer_value.ok_or_else(|| {
                s3_error!(
                    IncompleteBody,
                    "The request body ended before the trailing {} was sent.",
                    algorithm.header()
                )
            })?;
            decode_checksum(algorithm, value)?
        } else {
            self.value.clone().unwrap_or_default()
        };
        match &digests.checksum {
            Some((a, computed)) if *a == algorithm && *computed == claimed => {
                Ok(Some((algorithm, claimed)))
            }
            _ => Err(s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                algorithm.name()
            )),
        }
    }
}

fn decode_checksum(algorithm: Algorithm, value: &str) -> S3Result<Vec<u8>> {
    BASE64
        .decode(value.trim())
        .ok()
        .filter(|d| d.len() == algorithm.digest_len())
        .ok_or_else(|| {
            s3_error!(
                InvalidRequest,
                "Value for {} header is invalid.",
                algorithm.header()
            )
        })
}

pub(super) fn encode(digest: &[u8]) -> String {
    BASE64.encode(digest)
}

/// A full-object checksum to store.
pub(super) fn full_object(algorithm: Algorithm, digest: &[u8]) -> StoredChecksum {
    StoredChecksum {
        algorithm,
        value: encode(digest),
        composite: false,
    }
}

/// S3's COMPOSITE checksum: the algorithm over the concatenated raw part digests, then `-N`.
pub(super) fn composite<'a>(
    algorithm: Algorithm,
    part_values: impl IntoIterator<Item = &'a str>,
) -> S3Result<StoredChecksum> {
    let mut hasher = Hasher::new(algorithm);
    let mut count = 0usize;
    for value in part_values {
        hasher.update(&decode_checksum(algorithm, value)?);
        count += 1;
    }
    Ok(StoredChecksum {
        algorithm,
        value: format!("{}-{count}", encode(&hasher.finalize())),
        composite: true,
    })
}

/// The value a client may send for a whole object: without the `-N` suffix of a composite.
pub(super) fn value_without_part_count(value: &str) -> &str {
    value.split_once('-').map_or(value, |(v, _)| v)
}

/// Builds an error with a code s3s has no variant for (e.g. `XAmzContentSHA256Mismatch`).
pub(super) fn custom_error(
    code: &'static str,
    status: http::StatusCode,
    message: &'static str,
) -> S3Error {
    let mut err = S3Error::with_message(S3ErrorCode::Custom(code.into()), message);
    err.set_status_code(status);
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests_of(algorithm: Option<Algorithm>, data: &[u8]) -> Digests {
        let mut h = BodyHashes::new(algorithm);
        h.update(data);
        h.finish()
    }

    #[test]
    fn known_vectors() {
        // "123456789" is the CRC check input; expected values from the CRC catalogue / AWS docs.
        let crc32 = digests_of(Some(Algorithm::Crc32), b"123456789")
            .checksum
            .expect("crc32")
            .1;
        assert_eq!(hex::encode(crc32), "cbf43926");
        let crc32c = digests_of(Some(Algorithm::Crc32c), b"123456789")
            .checksum
            .expect("crc32c")
            .1;
        assert_eq!(hex::encode(crc32c), "e3069283");
        let crc64 = digests_of(Some(Algorithm::Crc64nvme), b"123456789")
            .checksum
            .expect("crc64")
            .1;
        assert_eq!(hex::encode(crc64), "ae8b14860a799888");
        let d = digests_of(None, b"");
        assert_eq!(d.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn content_md5_checked() {
        let d = digests_of(None, b"hello");
        let good = encode(&d.md5);
        let claims = Claims::parse(Some(&good), [None; 5], None, None).expect("parse");
        assert!(claims.verify(&d, None).is_ok());
        let other = encode(&digests_of(None, b"hellO").md5);
        let claims = Claims::parse(Some(&other), [None; 5], None, None).expect("parse");
        assert_eq!(
            claims.verify(&d, None).map(|_| ()).unwrap_err().code(),
            &S3ErrorCode::BadDigest
        );
        let err = Claims::parse(Some("not base64!"), [None; 5], None, None).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidDigest);
    }

    #[test]
    fn header_checksum_checked_and_returned() {
        let d = digests_of(Some(Algorithm::Sha256), b"abc");
        let value = encode(&d.checksum.clone().expect("sha").1);
        let claims =
            Claims::parse(None, [None, None, None, None, Some(&value)], None, None).expect("parse");
        assert_eq!(claims.algorithm, Some(Algorithm::Sha256));
        let stored = claims.verify(&d, None).expect("verify").expect("checksum");
        assert_eq!(stored.0, Algorithm::Sha256);

        let wrong = encode(&[0u8; 32]);
        let claims =
            Claims::parse(None, [None, None, None, None, Some(&wrong)], None, None).expect("parse");
        assert_eq!(
            claims.verify(&d, None).unwrap_err().code(),
            &S3ErrorCode::BadDigest
        );
    }

    #[test]
    fn malformed_or_multiple_checksum_headers_are_invalid_request() {
        let short = encode(&[0u8; 3]);
        let err =
            Claims::parse(None, [Some(&short), None, None, None, None], None, None).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
        let four = encode(&[0u8; 4]);
        let err = Claims::parse(
            None,
            [Some(&four), Some(&four), None, None, None],
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
        let err = Claims::parse(None, [None; 5], Some("CRC32"), None).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
        let err = Claims::parse(None, [None; 5], Some("MD4"), None).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
    }

    #[test]
    fn trailer_checksum_needs_its_value() {
        let d = digests_of(Some(Algorithm::Crc32), b"data");
        let value = encode(&d.checksum.clone().expect("crc").1);
        let claims = Claims::parse(None, [None; 5], Some("CRC32"), Some("x-amz-checksum-crc32"))
            .expect("parse");
        assert_eq!(claims.algorithm, Some(Algorithm::Crc32));
        assert!(claims.verify(&d, Some(&value)).is_ok());
        assert_eq!(
            claims.verify(&d, None).unwrap_err().code(),
            &S3ErrorCode::IncompleteBody
        );
        assert_eq!(
            claims.verify(&d, Some("AAAAAA==")).unwrap_err().code(),
            &S3ErrorCode::BadDigest
        );
    }

    #[test]
    fn composite_is_hash_of_part_digests() {
        let p1 = digests_of(Some(Algorithm::Sha256), b"part one")
            .checksum
            .expect("p1")
            .1;
        let p2 = digests_of(Some(Algorithm::Sha256), b"part two")
            .checksum
            .expect("p2")
            .1;
        let (v1, v2) = (encode(&p1), encode(&p2));
        let c = composite(Algorithm::Sha256, [v1.as_str(), v2.as_str()]).expect("composite");
        let mut concat = p1.clone();
        concat.extend_from_slice(&p2);
        let expected = digests_of(Some(Algorithm::Sha256), &concat)
            .checksum
            .expect("c")
            .1;
        assert_eq!(c.value, format!("{}-2", encode(&expected)));
        assert!(c.composite);
        assert_eq!(value_without_part_count(&c.value), encode(&expected));
    }
}
