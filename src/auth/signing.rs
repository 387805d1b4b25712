//! SigV4 keys and signatures: `kSigning` derivation (cached per access key,
//! day, region and service), the string to sign, and constant-time checks.

use dashmap::DashMap;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type HmacSha256 = hmac::Hmac<Sha256>;

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k = Zeroizing::new(Vec::with_capacity(secret.len() + 4));
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    let k_date = hmac_sha256(&k, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The string to sign for a request: algorithm, timestamp, scope, hash of the
/// canonical request.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &[u8]) -> String {
    let mut s = String::with_capacity(140);
    s.push_str("AWS4-HMAC-SHA256\n");
    s.push_str(timestamp);
    s.push('\n');
    s.push_str(scope);
    s.push('\n');
    s.push_str(&sha256_hex(canonical_request));
    s
}

/// True when `provided` (hex from the client) equals `expected`, compared in
/// constant time. A malformed hex string never matches.
pub fn signature_matches(expected: &[u8; 32], provided_hex: &str) -> bool {
    let mut provided = [0u8; 32];
    if hex::decode_to_slice(provided_hex, &mut provided).is_err() {
        return false;
    }
    expected.ct_eq(&provided).into()
}

struct CachedKey {
    secret: Zeroizing<String>,
    key: Zeroizing<[u8; 32]>,
}

/// Derived signing keys by credential scope (`AKID/DATE/REGION/SERVICE`).
/// An entry is used only if the secret it was derived from is still the
/// secret of that access key, so a rotated secret never reuses a stale key.
pub struct SigningKeyCache {
    map: DashMap<Box<str>, CachedKey>,
    capacity: usize,
}

impl Default for SigningKeyCache {
    fn default() -> Self {
        SigningKeyCache::new(65_536)
    }
}

impl SigningKeyCache {
    pub fn new(capacity: usize) -> Self {
        SigningKeyCache {
            map: DashMap::new(),
            capacity,
        }
    }

    /// The signing key for `scope` (whose parts are `date`, `region`,
    /// `service`), derived from `secret` on a miss.
    pub fn get(
        &self,
        scope_key: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        if let Some(hit) = self.map.get(scope_key)
            && bool::from(hit.secret.as_bytes().ct_eq(secret.as_bytes()))
        {
            return *hit.key;
        }
        let key = derive_signing_key(secret, date, region, service);
        if self.map.len() >= self.capacity {
            // Entries are cheap to rebuild; dropping them all bounds memory simply.
            self.map.clear();
        }
        self.map.insert(
            scope_key.into(),
            CachedKey {
                secret: Zeroizing::new(secret.to_string()),
                key: Zeroizing::new(key),
            },
        );
        key
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From AWS's published SigV4 example (GET object, "examplebucket").
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn derived_key_matches_aws_example() {
        let key = derive_signing_key(SECRET, "20130524", "us-east-1", "s3");
        let sts = "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972";
        assert_eq!(
            hex::encode(hmac_sha256(&key, sts.as_bytes())),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn cache_rederives_when_secret_changes() {
        let cache = SigningKeyCache::new(10);
        let a = cache.get(
            "AK/20130524/us-east-1/s3",
            SECRET,
            "20130524",
            "us-east-1",
            "s3",
        );
        let b = cache.get(
            "AK/20130524/us-east-1/s3",
            "othersecret",
            "20130524",
            "us-east-1",
            "s3",
        );
        assert_ne!(a, b);
        assert_eq!(
            b,
            derive_signing_key("othersecret", "20130524", "us-east-1", "s3")
        );
    }

    #[test]
    fn cache_is_bounded() {
        let cache = SigningKeyCache::new(2);
        for i in 0..5 {
            cache.get(&format!("AK{i}/d/r/s"), SECRET, "d", "r", "s");
        }
        assert!(cache.len() <= 2);
    }

    #[test]
    fn malformed_signature_never_matches() {
        assert!(!signature_matches(&[0; 32], "zz"));
        assert!(signature_matches(&[0; 32], &"0".repeat(64)));
    }
}
