//! Writing objects in the embedded store: PutObject, DeleteObject, DeleteObjects, CopyObject
//! and the object tagging subresource (reads are in `reads`).
//!
//! S3 behaviour followed: the bucket is checked before a body is read; a body is committed only
//! when it arrived whole and every digest the client sent (`Content-MD5`, `x-amz-checksum-*`,
//! trailer) matches; conditional writes (`If-None-Match: *`, `If-Match`) decide at commit time;
//! DELETE of a missing key is 204; CopyObject copies or replaces metadata, refuses a same-object
//! copy that changes nothing, and yields a single-part ETag.

use super::attrs::{self, header_input};
use super::buckets::checksum_type_name;
use super::checksum::{self, Algorithm, BodyHashes};
use super::conditions::{Preconditions, copy_source_preconditions};
use super::disk::TempFile;
use super::index::Index;
use super::records::{ObjectRecord, StoredChecksum, now_ms, timestamp_ms};
use super::store::{IncomingBody, MAX_SINGLE_OBJECT, Store, checksum_headers, internal};

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

/// Conditions on the object a write replaces.
#[derive(Default, Clone, Copy)]
pub(super) struct WriteConditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
}

/// The checksum fields S3 puts on object responses, by algorithm.
#[derive(Default)]
pub(super) struct ChecksumFields {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub kind: Option<ChecksumType>,
}

impl ChecksumFields {
    pub fn of(checksum: Option<&StoredChecksum>) -> Self {
        let mut f = Self::default();
        if let Some(c) = checksum {
            let v = Some(c.value.clone());
            match c.algorithm {
                Algorithm::Crc32 => f.crc32 = v,
                Algorithm::Crc32c => f.crc32c = v,
                Algorithm::Crc64nvme => f.crc64nvme = v,
                Algorithm::Sha1 => f.sha1 = v,
                Algorithm::Sha256 => f.sha256 = v,
            }
            f.kind = Some(ChecksumType::from(
                checksum_type_name(c.composite).to_owned(),
            ));
        }
        f
    }
}

pub(super) fn precondition_failed() -> S3Error {
    s3_error!(
        PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold"
    )
}

impl WriteConditions<'_> {
    /// Checks the conditions against the object a write to `key` would replace (S3: a failed
    /// condition is 412, `If-Match` on a missing key 404, and `If-None-Match` takes only `*`).
    pub fn check(&self, index: &Index, bucket: &str, key: &str) -> S3Result<()> {
        let existing = match index.object(bucket, key) {
            Ok(existing) => Some(existing),
            Err(e) if e.code() == &S3ErrorCode::NoSuchKey => None,
            Err(e) => return Err(e),
        };
        match (self.if_none_match, existing) {
            (Some(ETagCondition::Any), Some(_)) => return Err(precondition_failed()),
            (Some(ETagCondition::ETag(_)), _) => {
                return Err(s3_error!(
                    NotImplemented,
                    "If-None-Match on a write only supports '*'"
                ));
            }
            _ => {}
        }
        match (self.if_match, existing) {
            (Some(_), None) => Err(super::index::no_such_key()),
            (Some(ETagCondition::ETag(tag)), Some(e)) if tag.value() != e.etag => {
                Err(precondition_failed())
            }
            _ => Ok(()),
        }
    }
}

impl Store {
    /// Commits an object under the index lock, checking the write conditions against the
    /// object it replaces; removes the replaced data afterwards.
    pub(super) async fn commit_object(
        &self,
        bucket: &str,
        rec: ObjectRecord,
        data: Option<TempFile>,
        cond: WriteConditions<'_>,
    ) -> S3Result<()> {
        let mut index = self.index.write().await;
        cond.check(&index, bucket, &rec.key)?;
        let new_data = rec.data.clone();
        self.disk
            .commit_object(bucket, &rec, data)
            .await
            .map_err(internal)?;
        let replaced = index.put_object(bucket, rec)?;
        drop(index);
        if let Some(old) = replaced.filter(|old| old.data != new_data) {
            self.disk.remove_object_data(bucket, &old).await;
        }
        Ok(())
    }

    pub async fn put_object_op(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        self.index.read().await.bucket(&input.bucket)?;
        let headers = header_input!(input).into_stored();
        let metadata = attrs::user_metadata(input.metadata)?;
        let tags = attrs::tagging_header(input.tagging.as_deref())?;
        let storage_class = attrs::storage_class(input.storage_class.as_ref())?;
        let upload = IncomingBody {
            headers: &req.headers,
            trailers: req.trailing_headers.as_ref(),
            content_length: input.content_length,
            content_md5: input.content_md5.as_deref(),
            checksums: checksum_headers!(input),
            algorithm: input.checksum_algorithm.as_ref(),
            required: None,
        };
        // Without a client checksum S3 stores its default, CRC64NVME.
        let received = self
            .receive(upload, input.body, Some(Algorithm::Crc64nvme))
            .await?;
        let fields = ChecksumFields::of(received.checksum.as_ref());
        let rec = ObjectRecord {
            key: input.key,
            data: received.data,
            size: received.size,
            etag: received.etag,
            last_modified_ms: now_ms(),
            headers,
            metadata,
            checksum: received.checksum,
            part_sizes: Vec::new(),
            tags,
            storage_class,
        };
        let etag = rec.etag.clone();
        let cond = WriteConditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
        };
        self.commit_object(&input.bucket, rec, Some(received.tmp), cond)
            .await?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: fields.crc32,
            checksum_crc32c: fields.crc32c,
            checksum_crc64nvme: fields.crc64nvme,
            checksum_sha1: fields.sha1,
            checksum_sha256: fields.sha256,
            checksum_type: fields.kind,
            ..Default::default()
        }))
    }

    /// Deletes one key: the sidecar removal under the lock is the commit; a missing key is fine.
    async fn delete_key(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&ETagCondition>,
    ) -> S3Result<()> {
        let mut index = self.index.write().await;
        let existing = match index.object(bucket, key) {
            Ok(rec) => rec,
            Err(e) if e.code() == &S3ErrorCode::NoSuchKey => {
                return if if_match.is_some() { Err(e) } else { Ok(()) };
            }
            Err(e) => return Err(e),
        };
        if let Some(ETagCondition::ETag(tag)) = if_match
            && tag.value() != existing.etag
        {
            return Err(precondition_failed());
        }
        self.disk
            .remove_object(bucket, key)
            .await
            .map_err(internal)?;
        let removed = index.remove_object(bucket, key);
        drop(index);
        if let Some(rec) = removed {
            self.disk.remove_object_data(bucket, &rec).await;
        }
        Ok(())
    }

    pub async fn delete_object_op(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        self.delete_key(&input.bucket, &input.key, input.if_match.as_ref())
            .await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    pub async fn delete_objects_op(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        self.index.read().await.bucket(&input.bucket)?;
        let objects = input.delete.objects;
        if objects.is_empty() || objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for object in objects {
            match self.delete_key(&input.bucket, &object.key, None).await {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(object.key),
                    version_id: object.version_id,
                    ..Default::default()
                }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: e.message().map(str::to_owned),
                    version_id: object.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            request_charged: None,
        }))
    }

    /// Opens a copy source (bucket and key from `x-amz-copy-source`) and applies the
    /// `x-amz-copy-source-if-*` conditions, all of which fail with 412.
    pub(super) async fn open_copy_source(
        &self,
        source: &CopySource,
        pre: Preconditions<'_>,
    ) -> S3Result<(String, ObjectRecord, tokio::fs::File)> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(s3_error!(
                NotImplemented,
                "Copying from access points and outposts is not supported"
            ));
        };
        if version_id.as_deref().is_some_and(|v| v != "null") {
            return Err(s3_error!(InvalidArgument, "Invalid version id specified"));
        }
        match self.open_for_read(bucket, key, pre).await {
            Ok((rec, file)) => Ok((bucket.to_string(), rec, file)),
            Err(e) if e.code() == &S3ErrorCode::NotModified => Err(precondition_failed()),
            Err(e) => Err(e),
        }
    }

    pub async fn copy_object_op(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        self.index.read().await.bucket(&input.bucket)?;
        let replace_metadata = directive(
            input
                .metadata_directive
                .as_ref()
                .map(MetadataDirective::as_str),
            "metadata",
        )?;
        let replace_tags = directive(
            input
                .tagging_directive
                .as_ref()
                .map(TaggingDirective::as_str),
            "tagging",
        )?;
        let pre = copy_source_preconditions!(input);
        let (src_bucket, src, file) = self.open_copy_source(&input.copy_source, pre).await?;
        if src.size > MAX_SINGLE_OBJECT {
            return Err(s3_error!(
                InvalidRequest,
                "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
            ));
        }
        let storage_class = match input.storage_class.as_ref() {
            Some(c) => attrs::storage_class(Some(c))?,
            None => src.storage_class.clone(),
        };
        let same_object = src_bucket == input.bucket && src.key == input.key;
        if same_object
            && !replace_metadata
            && storage_class == src.storage_class
            && input.website_redirect_location.is_none()
        {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let (headers, metadata) = if replace_metadata {
            let headers = header_input!(input);
            (headers.into_stored(), attrs::user_metadata(input.metadata)?)
        } else {
            (src.headers.clone(), src.metadata.clone())
        };
        let tags = if replace_tags {
            attrs::tagging_header(input.tagging.as_deref())?
        } else {
            src.tags.clone()
        };
        let algorithm = match input.checksum_algorithm.as_ref() {
            Some(a) => Algorithm::parse(a.as_str()).ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "Checksum algorithm provided is unsupported."
                )
            })?,
            None => src
                .checksum
                .as_ref()
                .map_or(Algorithm::Crc64nvme, |c| c.algorithm),
        };
        // The copy is a new single-part object: fresh MD5 ETag and a full-object checksum.
        let mut hashes = BodyHashes::new(Some(algorithm));
        let (mut tmp, data) = self.disk.temp_file().await.map_err(internal)?;
        self.copy_into(&mut tmp, file, 0, src.size, &mut |c: &[u8]| {
            hashes.update(c)
        })
        .await?;
        tmp.finish().await.map_err(internal)?;
        let digests = hashes.finish();
        let checksum = digests
            .checksum
            .as_ref()
            .map(|(a, d)| checksum::full_object(*a, d));
        let fields = ChecksumFields::of(checksum.as_ref());
        let rec = ObjectRecord {
            key: input.key,
            data,
            size: src.size,
            etag: digests.md5_hex(),
            last_modified_ms: now_ms(),
            headers,
            metadata,
            checksum,
            part_sizes: Vec::new(),
            tags,
            storage_class,
        };
        let (etag, last_modified_ms) = (rec.etag.clone(), rec.last_modified_ms);
        self.commit_object(&input.bucket, rec, Some(tmp), WriteConditions::default())
            .await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(etag)),
                last_modified: Some(timestamp_ms(last_modified_ms)),
                checksum_crc32: fields.crc32,
                checksum_crc32c: fields.crc32c,
                checksum_crc64nvme: fields.crc64nvme,
                checksum_sha1: fields.sha1,
                checksum_sha256: fields.sha256,
                checksum_type: fields.kind,
            }),
            ..Default::default()
        }))
    }

    pub async fn get_object_tagging_op(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        let index = self.index.read().await;
        let rec = index.object(&input.bucket, &input.key)?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: attrs::tags_to_dto(&rec.tags),
            version_id: None,
        }))
    }

    /// Replaces an object's tag set by rewriting its sidecar; the data stays as it is. Read and
    /// commit happen under one lock, so a concurrent write is never undone.
    async fn set_tags(&self, bucket: &str, key: &str, tags: Vec<(String, String)>) -> S3Result<()> {
        let mut index = self.index.write().await;
        let mut rec = index.object(bucket, key)?.clone();
        rec.tags = tags;
        self.disk
            .commit_object(bucket, &rec, None)
            .await
            .map_err(internal)?;
        index.put_object(bucket, rec)?;
        Ok(())
    }

    pub async fn put_object_tagging_op(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        let tags = attrs::tags_from_dto(input.tagging.tag_set)?;
        self.set_tags(&input.bucket, &input.key, tags).await?;
        Ok(S3Response::new(PutObjectTaggingOutput { version_id: None }))
    }

    pub async fn delete_object_tagging_op(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        self.set_tags(&input.bucket, &input.key, Vec::new()).await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: None,
        }))
    }
}

/// Parses a COPY/REPLACE directive; true for REPLACE.
fn directive(value: Option<&str>, what: &str) -> S3Result<bool> {
    match value {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("COPY") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("REPLACE") => Ok(true),
        Some(_) => Err(s3_error!(InvalidArgument, "Unknown {what} directive.")),
    }
}
