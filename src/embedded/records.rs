//! The records the embedded store keeps about buckets, objects, multipart uploads and parts.
//!
//! Each record is written as a JSON sidecar (see `disk`) and held in memory by the index. They
//! keep exactly what S3 returns about an object later: its key verbatim, size, ETag, the content
//! headers and `x-amz-meta-*` given at upload, the checksum S3 would report, tags, the sizes of
//! its parts (for `partNumber` reads) and the last-modified time in milliseconds.

use super::checksum::Algorithm;

use s3s::dto::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The representation headers S3 stores with an object and returns on GET and HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ContentHeaders {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Expires`, as Unix seconds (HTTP dates have second precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_redirect_location: Option<String>,
}

/// A checksum as S3 reports it: base64 of the digest, with `-N` for a composite over N parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StoredChecksum {
    pub algorithm: Algorithm,
    pub value: String,
    /// COMPOSITE (a checksum of the part checksums) rather than FULL_OBJECT.
    #[serde(default)]
    pub composite: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BucketRecord {
    pub name: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ObjectRecord {
    /// The key exactly as the client sent it (after URI decoding), never normalised.
    pub key: String,
    /// Names this version's data file; a new write gets a new one, so the sidecar rename alone
    /// decides which data is current.
    pub data: String,
    pub size: u64,
    /// Without quotes: hex MD5, or `<hex>-N` for a multipart object.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub headers: ContentHeaders,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
    /// Part sizes of a multipart object, in order; empty for a single PUT or a copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_sizes: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    #[serde(default = "standard")]
    pub storage_class: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    #[serde(default)]
    pub headers: ContentHeaders,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The algorithm named at CreateMultipartUpload; parts are checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<Algorithm>,
    /// FULL_OBJECT rather than COMPOSITE for the completed object's checksum.
    #[serde(default)]
    pub checksum_full_object: bool,
    #[serde(default = "standard")]
    pub storage_class: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PartRecord {
    pub part_number: i32,
    pub data: String,
    pub size: u64,
    /// Hex MD5 of the part, without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
}

fn standard() -> String {
    "STANDARD".to_owned()
}

/// Milliseconds since the Unix epoch, now.
pub(super) fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The latest instant S3 dates can express (9999-12-31T23:59:59.999Z).
const MAX_MS: i64 = 253_402_300_799_999;

/// A timestamp from Unix milliseconds, clamped to what dates can express (a damaged sidecar
/// must not be able to make a response panic).
pub(super) fn timestamp_ms(ms: i64) -> Timestamp {
    let ms = u64::try_from(ms.clamp(0, MAX_MS)).unwrap_or(0);
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

pub(super) fn timestamp_secs(secs: i64) -> Timestamp {
    timestamp_ms(secs.saturating_mul(1000))
}

/// Whole Unix seconds of a timestamp; HTTP dates in conditional headers carry no more.
pub(super) fn unix_secs(ts: &Timestamp) -> i64 {
    time::OffsetDateTime::from(ts.clone()).unix_timestamp()
}

/// An object record with the given key and neutral values, for tests.
#[cfg(test)]
pub(super) fn sample_object(key: &str) -> ObjectRecord {
    ObjectRecord {
        key: key.to_owned(),
        data: "d".to_owned(),
        size: 0,
        etag: "e".to_owned(),
        last_modified_ms: 0,
        headers: ContentHeaders::default(),
        metadata: BTreeMap::new(),
        checksum: None,
        part_sizes: vec![],
        tags: vec![],
        storage_class: standard(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_milliseconds() {
        let ts = timestamp_ms(1_700_000_000_123);
        assert_eq!(unix_secs(&ts), 1_700_000_000);
        assert_eq!(unix_secs(&timestamp_secs(42)), 42);
        assert!(now_ms() > 1_700_000_000_000);
        // Out-of-range values clamp instead of panicking.
        assert_eq!(unix_secs(&timestamp_ms(i64::MAX)), MAX_MS / 1000);
        assert_eq!(unix_secs(&timestamp_ms(-5)), 0);
        assert_eq!(unix_secs(&timestamp_secs(i64::MIN)), 0);
    }

    #[test]
    fn object_record_keeps_odd_keys_verbatim_in_json() {
        let rec = ObjectRecord {
            key: "a/../b//c\u{0}\u{1F600} +%2F".to_owned(),
            checksum: Some(StoredChecksum {
                algorithm: Algorithm::Crc64nvme,
                value: "AAAAAAAAAAA=".to_owned(),
                composite: false,
            }),
            ..sample_object("")
        };
        let json = serde_json::to_string(&rec).expect("serialize");
        assert!(json.contains("\"CRC64NVME\""));
        let back: ObjectRecord = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, rec);
    }
}
