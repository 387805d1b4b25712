//! Where a request points: bucket and key from a path-style URL
//! (`/bucket/key`) or a virtual-hosted-style one (`bucket.DOMAIN/key`).
//!
//! The key is the path percent-decoded once, kept verbatim: `//`, `.` and `..`
//! are ordinary characters of an S3 key, never normalised away.

use super::ClassifyError;

/// The bucket and key a request addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// True when the bucket came from the Host header.
    pub virtual_host: bool,
}

/// S3 object keys are at most 1024 bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

/// Resolves a request's target from its Host and raw (still encoded) path.
pub fn resolve(
    host: Option<&str>,
    raw_path: &str,
    domains: &[String],
) -> Result<Target, ClassifyError> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = host.and_then(|h| virtual_bucket(h, domains)) {
        validate_bucket(&bucket)?;
        return Ok(Target {
            bucket: Some(bucket),
            key: decode_key(path)?,
            virtual_host: true,
        });
    }
    let (raw_bucket, raw_key) = match path.split_once('/') {
        Some((b, k)) => (b, k),
        None => (path, ""),
    };
    if raw_bucket.is_empty() {
        if !raw_key.is_empty() {
            return Err(ClassifyError::InvalidUri(
                "path starts with an empty bucket name".into(),
            ));
        }
        return Ok(Target::default());
    }
    // An encoded character in the bucket segment would let one name mean two
    // buckets (`a%2Fb`); bucket names never need encoding, so refuse it.
    if raw_bucket.contains('%') {
        return Err(ClassifyError::InvalidBucketName(raw_bucket.to_string()));
    }
    validate_bucket(raw_bucket)?;
    Ok(Target {
        bucket: Some(raw_bucket.to_string()),
        key: decode_key(raw_key)?,
        virtual_host: false,
    })
}

/// The bucket named by `host` when it is `BUCKET.DOMAIN` for a configured domain.
fn virtual_bucket(host: &str, domains: &[String]) -> Option<String> {
    let host = strip_port(host).to_ascii_lowercase();
    domains.iter().find_map(|d| {
        let d = d.to_ascii_lowercase();
        host.strip_suffix(&d)
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    })
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map(|(h, _)| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host)
}

fn decode_key(raw: &str) -> Result<Option<String>, ClassifyError> {
    if raw.is_empty() {
        return Ok(None);
    }
    // Copied once, as it is when nothing is escaped (most keys): collecting
    // the decoder's bytes grows the buffer step by step.
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ClassifyError::InvalidUri("key is not valid UTF-8".into()))?
        .into_owned();
    validate_key(&key)?;
    Ok(Some(key))
}

/// Refuses keys S3 would refuse and characters the proxy cannot round-trip.
pub fn validate_key(key: &str) -> Result<(), ClassifyError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(ClassifyError::KeyTooLong(key.len()));
    }
    if key.contains('\0') {
        return Err(ClassifyError::InvalidUri(
            "key contains a NUL character".into(),
        ));
    }
    Ok(())
}

/// S3's bucket naming rules: 3–63 characters of `a-z 0-9 . -`, starting and
/// ending with a letter or digit, no `..`, not an IP address.
pub fn validate_bucket(name: &str) -> Result<(), ClassifyError> {
    let bad = || ClassifyError::InvalidBucketName(name.to_string());
    if !(3..=63).contains(&name.len()) {
        return Err(bad());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(bad());
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() || name.contains("..") {
        return Err(bad());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(path: &str) -> Option<String> {
        resolve(None, path, &[]).unwrap().key
    }

    #[test]
    fn path_style() {
        let t = resolve(Some("localhost:9000"), "/bucket/a/b.txt", &[]).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("bucket"));
        assert_eq!(t.key.as_deref(), Some("a/b.txt"));
        assert_eq!(resolve(None, "/", &[]).unwrap(), Target::default());
        assert_eq!(resolve(None, "/bucket/", &[]).unwrap().key, None);
    }

    #[test]
    fn keys_are_decoded_once_and_never_normalised() {
        assert_eq!(key_of("/b0b/a/../x").as_deref(), Some("a/../x"));
        assert_eq!(key_of("/b0b/a//x/./").as_deref(), Some("a//x/./"));
        assert_eq!(key_of("/b0b/a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(
            key_of("/b0b/sp%20ace+plus%25").as_deref(),
            Some("sp ace+plus%")
        );
        assert_eq!(key_of("/b0b/%E2%9C%93").as_deref(), Some("✓"));
        assert_eq!(key_of("/b0b/%252F").as_deref(), Some("%2F"));
    }

    #[test]
    fn virtual_hosted_style() {
        let domains = vec!["s3.example.com".to_string()];
        let t = resolve(Some("my.bucket.s3.example.com:9000"), "/k/ey", &domains).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("my.bucket"));
        assert_eq!(t.key.as_deref(), Some("k/ey"));
        assert!(t.virtual_host);
        let t = resolve(Some("s3.example.com"), "/bucket/key", &domains).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("bucket"));
        assert!(!t.virtual_host);
    }

    #[test]
    fn bad_names_and_keys() {
        assert!(resolve(None, "/UPPER/k", &[]).is_err());
        assert!(resolve(None, "/a%2Fb/k", &[]).is_err());
        assert!(resolve(None, "/ab/k", &[]).is_err());
        assert!(resolve(None, "/192.168.1.1/k", &[]).is_err());
        assert!(resolve(None, "/bucket/%FF", &[]).is_err());
        assert!(resolve(None, &format!("/bucket/{}", "k".repeat(1025)), &[]).is_err());
        assert!(resolve(None, "//key", &[]).is_err());
    }
}
