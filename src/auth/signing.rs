//! SigV4 keys and signatures: `kSigning` derivation (cached per access key,
//! day, region and service), the string to sign, and constant-time checks.
//!
//! A [`SigningKey`] keeps the HMAC state already keyed with `kSigning`, so
//! each request, chunk or trailer signature costs only the hashing of its own
//! string to sign.

use std::fmt;

use dashmap::DashMap;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub type HmacSha256 = hmac::Hmac<Sha256>;

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lowercase hex of 32 bytes, without allocating.
pub fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = LOWER[(b >> 4) as usize];
        out[2 * i + 1] = LOWER[(b & 15) as usize];
    }
    out
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k = Zeroizing::new(Vec::with_capacity(secret.len() + 4));
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    let k_date = Zeroizing::new(hmac_sha256(&k, date.as_bytes()));
    let k_region = Zeroizing::new(hmac_sha256(&*k_date, region.as_bytes()));
    let k_service = Zeroizing::new(hmac_sha256(&*k_region, service.as_bytes()));
    hmac_sha256(&*k_service, b"aws4_request")
}

/// A derived `kSigning`, with its keyed HMAC state ready to sign with.
#[derive(Clone)]
pub struct SigningKey {
    key: Zeroizing<[u8; 32]>,
    mac: HmacSha256,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    pub fn new(key: [u8; 32]) -> SigningKey {
        let mac = keyed(&key);
        SigningKey {
            key: Zeroizing::new(key),
            mac,
        }
    }

    pub fn derive(secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
        SigningKey::new(derive_signing_key(secret, date, region, service))
    }

    /// The raw key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// HMAC of the concatenation of `parts`.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The SigV4 signature of a string to sign built from its four lines:
    /// `algorithm`, `timestamp`, `scope`, and the final line.
    pub fn sign_lines(
        &self,
        algorithm: &[u8],
        timestamp: &[u8],
        scope: &[u8],
        rest: &[&[u8]],
    ) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(algorithm);
        mac.update(b"\n");
        mac.update(timestamp);
        mac.update(b"\n");
        mac.update(scope);
        mac.update(b"\n");
        for p in rest {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The string to sign for a request: algorithm, timestamp, scope, hash of the
/// canonical request. Used for logs; verification feeds the HMAC directly.
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
    let Some(provided) = decode_hex32(provided_hex.as_bytes()) else {
        return false;
    };
    expected.ct_eq(&provided).into()
}

/// The 32 bytes that 64 hex digits (of either case) spell, as
/// `hex::decode_to_slice` reads them; `None` for any other length or byte.
/// A table lookup per digit without a branch: the hex crate's decoder
/// branches on each digit's range, and every signed request has a signature
/// (and an upload a payload hash) decoded.
pub fn decode_hex32(hex: &[u8]) -> Option<[u8; 32]> {
    /// A digit's value; 0xff (high bits set) for a byte that is none.
    static VALUE: [u8; 256] = {
        let mut table = [0xffu8; 256];
        let mut i = 0;
        while i < 16 {
            table[b"0123456789abcdef"[i] as usize] = i as u8;
            table[b"0123456789ABCDEF"[i] as usize] = i as u8;
            i += 1;
        }
        table
    };
    let hex: &[u8; 64] = hex.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut seen = 0u8;
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (VALUE[usize::from(pair[0])], VALUE[usize::from(pair[1])]);
        seen |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    (seen < 16).then_some(out)
}

struct CachedKey {
    secret: Zeroizing<String>,
    key: SigningKey,
}

/// Derived signing keys by credential scope (`AKID/DATE/REGION/SERVICE`).
/// An entry is used only if the secret it was derived from is still the
/// secret of that access key, so a rotated secret never reuses a stale key.
pub struct SigningKeyCache {
    map: DashMap<Box<str>, CachedKey, foldhash::fast::RandomState>,
    capacity: usize,
}

impl Default for SigningKeyCache {
    fn default() -> Self {
        SigningKeyCache::new(65_536)
    }
}

/// Builds `AKID/DATE/REGION/SERVICE` in a stack buffer when it fits, so a
/// cache hit allocates nothing.
fn with_scope_key<R>(parts: [&str; 4], f: impl FnOnce(&str) -> R) -> R {
    let len = parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut buf = [0u8; 192];
    if len > buf.len() {
        return f(&parts.join("/"));
    }
    let mut at = 0;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            buf[at] = b'/';
            at += 1;
        }
        buf[at..at + p.len()].copy_from_slice(p.as_bytes());
        at += p.len();
    }
    // Joined from `&str` parts and ASCII slashes: always UTF-8.
    match std::str::from_utf8(&buf[..at]) {
        Ok(s) => f(s),
        Err(_) => f(&parts.join("/")),
    }
}

impl SigningKeyCache {
    pub fn new(capacity: usize) -> Self {
        SigningKeyCache {
            map: DashMap::default(),
            capacity,
        }
    }

    /// The signing key for `access_key_id`'s scope on `date` in
    /// `region`/`service`, derived from `secret` on a miss and cached: for
    /// scopes of the server's own choosing (its upstream credentials).
    pub fn key(
        &self,
        access_key_id: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        let scope = [access_key_id, date, region, service];
        let (key, cached) = self.lookup(scope, secret);
        if !cached {
            self.keep(scope, secret, &key);
        }
        key
    }

    /// The signing key for a scope a client claims (`[access key id, date,
    /// region, service]`), and whether it came from the cache. A derived key
    /// is not cached here: the verifier [`keep`](Self::keep)s it once the
    /// client's signature matched. Otherwise anyone who knows an access key
    /// id, but not its secret, could fill the cache with scopes of their
    /// choosing (a POST form's date is not bound to the present) and flush
    /// it for everyone.
    pub fn lookup(&self, scope: [&str; 4], secret: &str) -> (SigningKey, bool) {
        with_scope_key(scope, |scope_key| {
            // Both secrets are the server's own (cached and current), never
            // client input, so an ordinary comparison leaks nothing.
            if let Some(hit) = self.map.get(scope_key)
                && hit.secret.as_str() == secret
            {
                return (hit.key.clone(), true);
            }
            let [_, date, region, service] = scope;
            (SigningKey::derive(secret, date, region, service), false)
        })
    }

    /// Caches `key`, derived from `secret` for `scope`.
    pub fn keep(&self, scope: [&str; 4], secret: &str, key: &SigningKey) {
        with_scope_key(scope, |scope_key| {
            if self.map.len() >= self.capacity {
                // Entries are cheap to rebuild; dropping them all bounds memory simply.
                self.map.clear();
            }
            self.map.insert(
                scope_key.into(),
                CachedKey {
                    secret: Zeroizing::new(secret.to_string()),
                    key: key.clone(),
                },
            );
        })
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

    /// The decoder reads what the hex crate reads: every byte at every
    /// position of an otherwise good signature, both cases, any length.
    #[test]
    fn hex32_decodes_as_the_hex_crate_does() {
        let good: Vec<u8> = (0u8..64)
            .map(|i| b"0123456789abcdefABCDEF"[usize::from(i) % 22])
            .collect();
        let reference = |s: &[u8]| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(s, &mut out).ok().map(|()| out)
        };
        assert!(decode_hex32(&good).is_some());
        for at in 0..64 {
            for b in 0..=255u8 {
                let mut s = good.clone();
                s[at] = b;
                assert_eq!(decode_hex32(&s), reference(&s), "{b:#x} at {at}");
            }
        }
        for len in [0, 1, 2, 62, 63, 65, 66, 128] {
            let s: Vec<u8> = good.iter().cycle().take(len).copied().collect();
            assert_eq!(decode_hex32(&s), None, "length {len}");
        }
    }

    proptest::proptest! {
        #[test]
        fn hex32_of_any_64_bytes_is_the_hex_crates(
            s in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
                    proptest::prelude::any::<u8>(),
                ],
                64,
            ),
        ) {
            let mut out = [0u8; 32];
            let reference = hex::decode_to_slice(&s, &mut out).ok().map(|()| out);
            proptest::prop_assert_eq!(decode_hex32(&s), reference);
        }
    }

    // From AWS's published SigV4 example (GET object, "examplebucket").
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const STS: &str = "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972";
    const SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    #[test]
    fn derived_key_matches_aws_example() {
        let key = derive_signing_key(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(hex::encode(hmac_sha256(&key, STS.as_bytes())), SIG);
        let k = SigningKey::new(key);
        assert_eq!(hex::encode(k.sign(&[STS.as_bytes()])), SIG);
        let (alg, rest) = STS.split_once('\n').unwrap();
        let (ts, rest) = rest.split_once('\n').unwrap();
        let (scope, hash) = rest.split_once('\n').unwrap();
        let lines = k.sign_lines(
            alg.as_bytes(),
            ts.as_bytes(),
            scope.as_bytes(),
            &[hash.as_bytes()],
        );
        assert_eq!(hex::encode(lines), SIG);
        assert_eq!(&hex32(&lines)[..], SIG.as_bytes());
    }

    #[test]
    fn a_looked_up_key_is_cached_only_when_kept() {
        let cache = SigningKeyCache::new(10);
        let scope = ["AK", "20130524", "us-east-1", "s3"];
        let (derived, cached) = cache.lookup(scope, SECRET);
        assert!(!cached);
        assert!(cache.is_empty());
        let want = derive_signing_key(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(*derived.bytes(), want);
        cache.keep(scope, SECRET, &derived);
        let (again, cached) = cache.lookup(scope, SECRET);
        assert!(cached);
        assert_eq!(*again.bytes(), want);
        // Kept for another secret: not this one's key.
        assert!(!cache.lookup(scope, "othersecret").1);
    }

    #[test]
    fn cache_rederives_when_secret_changes() {
        let cache = SigningKeyCache::new(10);
        let a = cache.key("AK", SECRET, "20130524", "us-east-1", "s3");
        let b = cache.key("AK", "othersecret", "20130524", "us-east-1", "s3");
        assert_ne!(a.bytes(), b.bytes());
        assert_eq!(
            *b.bytes(),
            derive_signing_key("othersecret", "20130524", "us-east-1", "s3")
        );
        let again = cache.key("AK", "othersecret", "20130524", "us-east-1", "s3");
        assert_eq!(again.bytes(), b.bytes());
    }

    #[test]
    fn cache_is_bounded_and_long_ids_work() {
        let cache = SigningKeyCache::new(2);
        for i in 0..5 {
            cache.key(&format!("AK{i}"), SECRET, "d", "r", "s");
        }
        assert!(cache.len() <= 2);
        let long = "A".repeat(300);
        let k = cache.key(&long, SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(
            *k.bytes(),
            derive_signing_key(SECRET, "20130524", "us-east-1", "s3")
        );
    }

    #[test]
    fn malformed_signature_never_matches() {
        assert!(!signature_matches(&[0; 32], "zz"));
        assert!(signature_matches(&[0; 32], &"0".repeat(64)));
    }

    #[test]
    fn debug_hides_the_key() {
        let k = SigningKey::new([7; 32]);
        assert_eq!(format!("{k:?}"), "SigningKey(<redacted>)");
    }
}
