//! Bucket operations of the embedded store and object listing: ListBuckets, CreateBucket,
//! DeleteBucket, HeadBucket, GetBucketLocation, GetBucketVersioning, ListObjects (v1) and
//! ListObjectsV2.
//!
//! S3 behaviour followed: creating a bucket you already own is `409 BucketAlreadyOwnedByYou`; a
//! `LocationConstraint` other than the store's region is `IllegalLocationConstraintException`;
//! deleting a bucket with objects is `409 BucketNotEmpty` (multipart uploads in progress are
//! aborted with it); us-east-1 reports its location as an empty `LocationConstraint`; versioning
//! is never enabled. Listings follow `listing` (pagination) and S3's v1/v2 differences: v1 sends
//! `NextMarker` only with a delimiter and always sends owners; v2 sends owners on `fetch-owner`.

use super::index::Index;
use super::listing::{self, Entry, Query};
use super::records::{BucketRecord, ObjectRecord, now_ms, timestamp_ms};
use super::store::{Store, internal};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use std::ops::Bound;

/// One listing page of a bucket's objects, before it is shaped as v1 or v2.
struct Listed {
    contents: Vec<Object>,
    common_prefixes: Vec<CommonPrefix>,
    truncated: bool,
    next_after: Option<String>,
    encode: bool,
}

impl Listed {
    fn name(&self, s: &str) -> String {
        if self.encode {
            listing::url_encode(s)
        } else {
            s.to_owned()
        }
    }

    fn opt_name(&self, s: Option<&str>) -> Option<String> {
        s.map(|s| self.name(s))
    }

    fn key_count(&self) -> i32 {
        i32::try_from(self.contents.len() + self.common_prefixes.len()).unwrap_or(i32::MAX)
    }
}

impl Store {
    pub async fn list_buckets_op(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let input = req.input;
        let prefix = input.prefix.as_deref().unwrap_or("");
        let max = match input.max_buckets {
            None => usize::MAX,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    s3_error!(InvalidArgument, "max-buckets must be between 1 and 10000")
                })?,
        };
        let index = self.index.read().await;
        let mut selected = index
            .buckets()
            .filter(|b| b.record.name.starts_with(prefix))
            .filter(|b| {
                input
                    .continuation_token
                    .as_deref()
                    .is_none_or(|t| b.record.name.as_str() > t)
            });
        let buckets: Vec<Bucket> = selected
            .by_ref()
            .take(max)
            .map(|b| Bucket {
                bucket_region: Some(self.region.clone()),
                creation_date: Some(timestamp_ms(b.record.created_ms)),
                name: Some(b.record.name.clone()),
            })
            .collect();
        let more = selected.next().is_some();
        let continuation_token = if more {
            buckets.last().and_then(|b| b.name.clone())
        } else {
            None
        };
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            continuation_token,
            owner: Some(self.owner()),
            prefix: input.prefix,
        }))
    }

    pub async fn create_bucket_op(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let input = req.input;
        if let Some(constraint) = input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            && !constraint.as_str().is_empty()
            && constraint.as_str() != self.region
        {
            return Err(s3_error!(
                IllegalLocationConstraintException,
                "The {} location constraint is incompatible for the region specific endpoint this request was sent to.",
                constraint.as_str()
            ));
        }
        let mut index = self.index.write().await;
        if index.has_bucket(&input.bucket) {
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        let record = BucketRecord {
            name: input.bucket.clone(),
            created_ms: now_ms(),
        };
        self.disk.create_bucket(&record).await.map_err(internal)?;
        index.insert_bucket(record);
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", input.bucket)),
        }))
    }

    pub async fn delete_bucket_op(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        let mut index = self.index.write().await;
        if !index.bucket(&bucket)?.objects.is_empty() {
            return Err(s3_error!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty"
            ));
        }
        let uploads: Vec<String> = index
            .uploads_in(&bucket)
            .iter()
            .map(|u| u.record.upload_id.clone())
            .collect();
        for id in &uploads {
            self.disk.delete_upload(id).await.map_err(internal)?;
            index.remove_upload(id);
        }
        self.disk.delete_bucket(&bucket).await.map_err(internal)?;
        index.remove_bucket(&bucket);
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub async fn head_bucket_op(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.index.read().await.bucket(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        }))
    }

    pub async fn get_bucket_location_op(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.index.read().await.bucket(&req.input.bucket)?;
        // us-east-1 is the one region S3 reports as an empty LocationConstraint.
        let location_constraint = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint,
        }))
    }

    pub async fn get_bucket_versioning_op(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.index.read().await.bucket(&req.input.bucket)?;
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    fn list_page(
        &self,
        index: &Index,
        bucket: &str,
        q: &Query<'_>,
        encode: bool,
        with_owner: bool,
    ) -> S3Result<Listed> {
        let objects = &index.bucket(bucket)?.objects;
        let page = listing::paginate(q, |b| {
            objects
                .range::<str, _>((b, Bound::Unbounded))
                .map(|(k, v)| (k.as_str(), v))
        });
        let mut listed = Listed {
            contents: Vec::new(),
            common_prefixes: Vec::new(),
            truncated: page.truncated,
            next_after: page.next_after().map(str::to_owned),
            encode,
        };
        for entry in page.entries {
            match entry {
                Entry::Item(_, rec) => listed
                    .contents
                    .push(self.object_entry(rec, encode, with_owner)),
                Entry::Prefix(p) => listed.common_prefixes.push(CommonPrefix {
                    prefix: Some(listed.name(&p)),
                }),
            }
        }
        Ok(listed)
    }

    fn object_entry(&self, rec: &ObjectRecord, encode: bool, with_owner: bool) -> Object {
        Object {
            checksum_algorithm: rec
                .checksum
                .as_ref()
                .map(|c| vec![ChecksumAlgorithm::from(c.algorithm.name().to_owned())]),
            checksum_type: rec
                .checksum
                .as_ref()
                .map(|c| ChecksumType::from(checksum_type_name(c.composite).to_owned())),
            e_tag: Some(ETag::Strong(rec.etag.clone())),
            key: Some(if encode {
                listing::url_encode(&rec.key)
            } else {
                rec.key.clone()
            }),
            last_modified: Some(timestamp_ms(rec.last_modified_ms)),
            owner: with_owner.then(|| self.owner()),
            restore_status: None,
            size: Some(i64::try_from(rec.size).unwrap_or(i64::MAX)),
            storage_class: Some(ObjectStorageClass::from(rec.storage_class.clone())),
        }
    }

    pub async fn list_objects_op(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let encode = listing::url_encoding(input.encoding_type.as_ref().map(EncodingType::as_str))?;
        let max = listing::page_size(input.max_keys, "max-keys")?;
        let delimiter = input.delimiter.as_deref().filter(|d| !d.is_empty());
        let q = Query {
            prefix: input.prefix.as_deref().unwrap_or(""),
            delimiter,
            after: input.marker.as_deref(),
            max,
        };
        let listed = self.list_page(&*self.index.read().await, &input.bucket, &q, encode, true)?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(listed.name(q.prefix)),
            marker: Some(listed.name(q.after.unwrap_or(""))),
            max_keys: input.max_keys.or(Some(1000)),
            is_truncated: Some(listed.truncated),
            // S3 sends NextMarker only with a delimiter; without one clients resume after the last key.
            next_marker: listed
                .opt_name(listed.next_after.as_deref().filter(|_| delimiter.is_some())),
            delimiter: listed.opt_name(input.delimiter.as_deref()),
            encoding_type: input.encoding_type,
            contents: Some(listed.contents),
            common_prefixes: Some(listed.common_prefixes),
            request_charged: None,
        }))
    }

    pub async fn list_objects_v2_op(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let encode = listing::url_encoding(input.encoding_type.as_ref().map(EncodingType::as_str))?;
        let max = listing::page_size(input.max_keys, "max-keys")?;
        let token = input
            .continuation_token
            .as_deref()
            .map(listing::decode_token)
            .transpose()?;
        let delimiter = input.delimiter.as_deref().filter(|d| !d.is_empty());
        // A continuation token wins over start-after, which only applies to the first page.
        let after = token.as_deref().or(input.start_after.as_deref());
        let q = Query {
            prefix: input.prefix.as_deref().unwrap_or(""),
            delimiter,
            after,
            max,
        };
        let with_owner = input.fetch_owner.unwrap_or(false);
        let listed = self.list_page(
            &*self.index.read().await,
            &input.bucket,
            &q,
            encode,
            with_owner,
        )?;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(listed.name(q.prefix)),
            max_keys: input.max_keys.or(Some(1000)),
            key_count: Some(listed.key_count()),
            continuation_token: input.continuation_token,
            is_truncated: Some(listed.truncated),
            next_continuation_token: listed.next_after.as_deref().map(listing::encode_token),
            delimiter: listed.opt_name(input.delimiter.as_deref()),
            encoding_type: input.encoding_type,
            start_after: listed.opt_name(input.start_after.as_deref()),
            contents: Some(listed.contents),
            common_prefixes: Some(listed.common_prefixes),
            request_charged: None,
        }))
    }
}

pub(super) fn checksum_type_name(composite: bool) -> &'static str {
    if composite {
        ChecksumType::COMPOSITE
    } else {
        ChecksumType::FULL_OBJECT
    }
}
