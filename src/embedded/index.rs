//! The in-memory index of the embedded store: every bucket with its objects in a `BTreeMap`
//! keyed by the exact key string (so listing is a range scan in S3's UTF-8 byte order), and every
//! multipart upload in progress with its parts.
//!
//! The index mirrors the committed sidecars on disk; it is rebuilt from them at start
//! (`disk::load`) and changed only after the matching sidecar change is durable. It does no I/O.

use super::records::{BucketRecord, ObjectRecord, PartRecord, UploadRecord};

use s3s::{S3Error, s3_error};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(super) struct Index {
    buckets: BTreeMap<String, Bucket>,
    uploads: BTreeMap<String, Upload>,
}

#[derive(Debug)]
pub(super) struct Bucket {
    pub record: BucketRecord,
    pub objects: BTreeMap<String, ObjectRecord>,
}

#[derive(Debug)]
pub(super) struct Upload {
    pub record: UploadRecord,
    pub parts: BTreeMap<i32, PartRecord>,
    /// CompleteMultipartUpload is assembling the object; the upload takes no more changes.
    pub completing: bool,
}

pub(super) fn no_such_bucket(bucket: &str) -> S3Error {
    s3_error!(
        NoSuchBucket,
        "The specified bucket does not exist: {bucket}"
    )
}

pub(super) fn no_such_key() -> S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

pub(super) fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

impl Index {
    pub fn buckets(&self) -> impl Iterator<Item = &Bucket> {
        self.buckets.values()
    }

    pub fn bucket(&self, name: &str) -> Result<&Bucket, S3Error> {
        self.buckets.get(name).ok_or_else(|| no_such_bucket(name))
    }

    pub fn bucket_mut(&mut self, name: &str) -> Result<&mut Bucket, S3Error> {
        self.buckets
            .get_mut(name)
            .ok_or_else(|| no_such_bucket(name))
    }

    pub fn has_bucket(&self, name: &str) -> bool {
        self.buckets.contains_key(name)
    }

    pub fn insert_bucket(&mut self, record: BucketRecord) {
        let name = record.name.clone();
        self.buckets.insert(
            name,
            Bucket {
                record,
                objects: BTreeMap::new(),
            },
        );
    }

    pub fn remove_bucket(&mut self, name: &str) -> Option<Bucket> {
        self.buckets.remove(name)
    }

    /// The object, or NoSuchBucket / NoSuchKey as S3 distinguishes them.
    pub fn object(&self, bucket: &str, key: &str) -> Result<&ObjectRecord, S3Error> {
        self.bucket(bucket)?
            .objects
            .get(key)
            .ok_or_else(no_such_key)
    }

    /// Inserts or replaces an object; returns the one it replaced.
    pub fn put_object(
        &mut self,
        bucket: &str,
        record: ObjectRecord,
    ) -> Result<Option<ObjectRecord>, S3Error> {
        let b = self.bucket_mut(bucket)?;
        Ok(b.objects.insert(record.key.clone(), record))
    }

    pub fn remove_object(&mut self, bucket: &str, key: &str) -> Option<ObjectRecord> {
        self.buckets.get_mut(bucket)?.objects.remove(key)
    }

    pub fn insert_upload(&mut self, record: UploadRecord) {
        self.insert_upload_with_parts(record, BTreeMap::new());
    }

    pub fn insert_upload_with_parts(
        &mut self,
        record: UploadRecord,
        parts: BTreeMap<i32, PartRecord>,
    ) {
        let id = record.upload_id.clone();
        self.uploads.insert(
            id,
            Upload {
                record,
                parts,
                completing: false,
            },
        );
    }

    /// The upload with this id for this bucket and key; anything else is NoSuchUpload.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<&Upload, S3Error> {
        self.uploads
            .get(upload_id)
            .filter(|u| u.record.bucket == bucket && u.record.key == key && !u.completing)
            .ok_or_else(no_such_upload)
    }

    pub fn upload_mut(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<&mut Upload, S3Error> {
        self.uploads
            .get_mut(upload_id)
            .filter(|u| u.record.bucket == bucket && u.record.key == key && !u.completing)
            .ok_or_else(no_such_upload)
    }

    /// Ends a completion that failed, so the upload can be completed or aborted again.
    pub fn reopen_upload(&mut self, upload_id: &str) {
        if let Some(u) = self.uploads.get_mut(upload_id) {
            u.completing = false;
        }
    }

    pub fn remove_upload(&mut self, upload_id: &str) -> Option<Upload> {
        self.uploads.remove(upload_id)
    }

    /// The bucket's uploads in ListMultipartUploads order: by key, then initiation, then id.
    pub fn uploads_in(&self, bucket: &str) -> Vec<&Upload> {
        let mut list: Vec<&Upload> = self
            .uploads
            .values()
            .filter(|u| u.record.bucket == bucket)
            .collect();
        list.sort_by(|a, b| {
            (&a.record.key, a.record.initiated_ms, &a.record.upload_id).cmp(&(
                &b.record.key,
                b.record.initiated_ms,
                &b.record.upload_id,
            ))
        });
        list
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::{ContentHeaders, sample_object};
    use super::*;
    use s3s::S3ErrorCode;

    fn upload(id: &str, key: &str, initiated_ms: i64) -> UploadRecord {
        UploadRecord {
            upload_id: id.to_owned(),
            bucket: "b".to_owned(),
            key: key.to_owned(),
            initiated_ms,
            headers: ContentHeaders::default(),
            metadata: BTreeMap::new(),
            tags: vec![],
            checksum_algorithm: None,
            checksum_full_object: false,
            storage_class: "STANDARD".to_owned(),
        }
    }

    fn index_with_bucket() -> Index {
        let mut index = Index::default();
        index.insert_bucket(BucketRecord {
            name: "b".to_owned(),
            created_ms: 0,
        });
        index
    }

    #[test]
    fn missing_bucket_and_missing_key_are_told_apart() {
        let index = index_with_bucket();
        assert_eq!(
            index.object("nope", "k").unwrap_err().code(),
            &S3ErrorCode::NoSuchBucket
        );
        assert_eq!(
            index.object("b", "k").unwrap_err().code(),
            &S3ErrorCode::NoSuchKey
        );
    }

    #[test]
    fn keys_that_paths_would_merge_stay_distinct() {
        let mut index = index_with_bucket();
        for key in ["a/../b", "b", "a//b", "a/b", "x/", "x", "./x"] {
            assert!(
                index
                    .put_object("b", sample_object(key))
                    .ok()
                    .flatten()
                    .is_none(),
                "{key} collided"
            );
        }
        assert_eq!(index.bucket("b").map(|b| b.objects.len()).ok(), Some(7));
        let replaced = index.put_object("b", sample_object("a//b")).ok().flatten();
        assert_eq!(replaced.map(|r| r.key).as_deref(), Some("a//b"));
        assert!(index.remove_object("b", "a/../b").is_some());
        assert!(index.object("b", "b").is_ok());
    }

    #[test]
    fn uploads_are_scoped_to_bucket_and_key_and_sorted() {
        let mut index = index_with_bucket();
        index.insert_upload(upload("u2", "k", 20));
        index.insert_upload(upload("u1", "k", 10));
        index.insert_upload(upload("u0", "a", 30));
        let order: Vec<&str> = index
            .uploads_in("b")
            .iter()
            .map(|u| u.record.upload_id.as_str())
            .collect();
        assert_eq!(order, ["u0", "u1", "u2"]);
        assert!(index.upload("b", "k", "u1").is_ok());
        assert_eq!(
            index.upload("b", "other", "u1").unwrap_err().code(),
            &S3ErrorCode::NoSuchUpload
        );
        assert_eq!(
            index.upload("c", "k", "u1").unwrap_err().code(),
            &S3ErrorCode::NoSuchUpload
        );
        if let Ok(u) = index.upload_mut("b", "k", "u1") {
            u.completing = true;
        }
        assert!(
            index.upload("b", "k", "u1").is_err(),
            "a completing upload takes no requests"
        );
        index.reopen_upload("u1");
        assert!(index.upload("b", "k", "u1").is_ok());
    }
}
