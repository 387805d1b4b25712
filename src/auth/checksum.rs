//! The checksums S3 clients attach to bodies: `Content-MD5` and the
//! `x-amz-checksum-*` family (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256), each
//! the base64 of the big-endian digest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest;

/// A checksum algorithm S3 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
    Md5,
}

impl Algorithm {
    /// The algorithm named by an `x-amz-checksum-*` header (lowercase).
    pub fn from_header(name: &str) -> Option<Algorithm> {
        Some(match name.strip_prefix("x-amz-checksum-")? {
            "crc32" => Algorithm::Crc32,
            "crc32c" => Algorithm::Crc32c,
            "crc64nvme" => Algorithm::Crc64Nvme,
            "sha1" => Algorithm::Sha1,
            "sha256" => Algorithm::Sha256,
            _ => return None,
        })
    }

    pub fn header_name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
            Algorithm::Md5 => "content-md5",
        }
    }

    /// The name S3 uses in messages: `CRC32`, `SHA256`, ...
    pub fn display_name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Md5 => "Content-MD5",
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            Algorithm::Crc32c => Hasher::Crc32c(0),
            Algorithm::Crc64Nvme => Hasher::Crc64(crc64fast_nvme::Digest::new()),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
        }
    }
}

/// An incremental checksum.
pub enum Hasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Md5(md5::Md5),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Hasher::Crc64(h) => h.write(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
        }
    }

    /// The digest, base64-encoded as S3 expects it in headers.
    pub fn finish_base64(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Crc32c(c) => c.to_be_bytes().to_vec(),
            Hasher::Crc64(h) => h.sum64().to_be_bytes().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        };
        STANDARD.encode(bytes)
    }
}

/// The base64 checksum of a whole buffer.
pub fn checksum_base64(alg: Algorithm, data: &[u8]) -> String {
    let mut h = alg.hasher();
    h.update(data);
    h.finish_base64()
}

/// True when `value` is valid base64 of the right length for `alg`.
pub fn well_formed(alg: Algorithm, value: &str) -> bool {
    let len = match alg {
        Algorithm::Crc32 | Algorithm::Crc32c => 4,
        Algorithm::Crc64Nvme => 8,
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
        Algorithm::Md5 => 16,
    };
    STANDARD.decode(value.trim()).is_ok_and(|b| b.len() == len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Values as computed by botocore for b"hello world".
        assert_eq!(
            checksum_base64(Algorithm::Crc32, b"hello world"),
            "DUoRhQ=="
        );
        assert_eq!(
            checksum_base64(Algorithm::Crc32c, b"hello world"),
            "yZRlqg=="
        );
        assert_eq!(
            checksum_base64(Algorithm::Md5, b"hello world"),
            "XrY7u+Ae7tCTyyK7j1rNww=="
        );
        assert_eq!(
            checksum_base64(Algorithm::Sha256, b"hello world"),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
        assert!(well_formed(Algorithm::Crc32, "DUoRhQ=="));
        assert!(!well_formed(Algorithm::Crc32, "DUoRhQ"));
    }
}
