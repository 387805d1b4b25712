//! Multipart uploads in the embedded store: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListMultipartUploads and ListParts.
//!
//! S3 behaviour followed: part numbers 1..=10000; an unknown (or completed, or aborted) upload id
//! is `404 NoSuchUpload`; Complete checks the listed parts before anything is written — ascending
//! numbers (`InvalidPartOrder`), each uploaded with the given ETag and checksum (`InvalidPart`),
//! every part but the last at least 5 MiB (`EntityTooSmall`) — then assembles the object while
//! S3-style whitespace keeps the connection alive, so a failure after that point is a `200` with
//! an `<Error>` body, as in S3. The ETag is `"<md5 of the concatenated part MD5s>-N"`; the
//! checksum is COMPOSITE (digest of part digests, `-N`) or FULL_OBJECT as the upload asked, and a
//! FULL_OBJECT CRC64NVME when it asked for none.

use super::attrs::{self, header_input};
use super::buckets::checksum_type_name;
use super::checksum::{self, Algorithm, BodyHashes, Hasher};
use super::conditions::copy_source_preconditions;
use super::index::{Upload, no_such_upload};
use super::listing::{self, Entry, Query};
use super::objects::{ChecksumFields, WriteConditions};
use super::records::{
    ObjectRecord, PartRecord, StoredChecksum, UploadRecord, now_ms, timestamp_ms,
};
use super::store::{IncomingBody, MAX_SINGLE_OBJECT, Store, checksum_headers, internal};

use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};
use std::ops::Bound;

const MIN_PART: u64 = 5 * 1024 * 1024;
const MAX_PARTS: i32 = 10_000;

/// Upload ids are ours (32 lowercase hex); anything else cannot name an upload — or a path.
fn check_upload_id(id: &str) -> S3Result<()> {
    let ok = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(no_such_upload()) }
}

fn invalid_part() -> S3Error {
    s3_error!(
        InvalidPart,
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
    )
}

fn malformed_xml() -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

/// The checksum the client listed for a part in CompleteMultipartUpload, if any.
fn listed_checksum(part: &CompletedPart, algorithm: Algorithm) -> Option<&str> {
    match algorithm {
        Algorithm::Crc32 => part.checksum_crc32.as_deref(),
        Algorithm::Crc32c => part.checksum_crc32c.as_deref(),
        Algorithm::Crc64nvme => part.checksum_crc64nvme.as_deref(),
        Algorithm::Sha1 => part.checksum_sha1.as_deref(),
        Algorithm::Sha256 => part.checksum_sha256.as_deref(),
    }
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against the source size.
fn copy_range(range: Option<&str>, size: u64) -> S3Result<(u64, u64)> {
    let Some(range) = range else {
        return Ok((0, size));
    };
    let malformed = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = range
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(malformed)?;
    let first: u64 = first.parse().map_err(|_| malformed())?;
    let last: u64 = last.parse().map_err(|_| malformed())?;
    if first > last {
        return Err(malformed());
    }
    if last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok((first, last - first + 1))
}

/// Parts validated for completion, and what the object will be.
struct Plan {
    upload: UploadRecord,
    parts: Vec<PartRecord>,
    etag: String,
    composite: Option<StoredChecksum>,
    full_object: Option<Algorithm>,
}

impl Store {
    pub async fn create_multipart_upload_op(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        let algorithm = match input.checksum_algorithm.as_ref() {
            None => None,
            Some(a) => Some(Algorithm::parse(a.as_str()).ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "Checksum algorithm provided is unsupported."
                )
            })?),
        };
        let full_object = match (
            input.checksum_type.as_ref().map(ChecksumType::as_str),
            algorithm,
        ) {
            (None, Some(a)) => !a.supports_composite(),
            (None, None) => false,
            (Some(ChecksumType::FULL_OBJECT), Some(a)) if a.supports_full_object() => true,
            (Some(ChecksumType::COMPOSITE), Some(a)) if a.supports_composite() => false,
            (Some(_), _) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "The checksum type and algorithm given are not a valid combination."
                ));
            }
        };
        let record = UploadRecord {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            bucket: input.bucket,
            key: input.key,
            initiated_ms: now_ms(),
            headers: header_input!(input).into_stored(),
            metadata: attrs::user_metadata(input.metadata)?,
            tags: attrs::tagging_header(input.tagging.as_deref())?,
            checksum_algorithm: algorithm,
            checksum_full_object: full_object,
            storage_class: attrs::storage_class(input.storage_class.as_ref())?,
        };
        let mut index = self.index.write().await;
        index.bucket(&record.bucket)?;
        self.disk.create_upload(&record).await.map_err(internal)?;
        let output = CreateMultipartUploadOutput {
            bucket: Some(record.bucket.clone()),
            key: Some(record.key.clone()),
            upload_id: Some(record.upload_id.clone()),
            checksum_algorithm: algorithm.map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
            checksum_type: algorithm
                .map(|_| ChecksumType::from(checksum_type_name(!full_object).to_owned())),
            ..Default::default()
        };
        index.insert_upload(record);
        Ok(S3Response::new(output))
    }

    /// Checks a part's upload and number; returns the algorithm its parts are checked with.
    async fn part_target(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
    ) -> S3Result<Option<Algorithm>> {
        check_upload_id(upload_id)?;
        if !(1..=MAX_PARTS).contains(&part_number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let index = self.index.read().await;
        index.bucket(bucket)?;
        Ok(index
            .upload(bucket, key, upload_id)?
            .record
            .checksum_algorithm)
    }

    /// Commits a part under the index lock; removes the data of the part it replaces.
    async fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        rec: PartRecord,
        data: super::disk::TempFile,
    ) -> S3Result<()> {
        let mut index = self.index.write().await;
        let upload = index.upload_mut(bucket, key, upload_id)?;
        self.disk
            .commit_part(upload_id, &rec, data)
            .await
            .map_err(internal)?;
        let new_data = rec.data.clone();
        let replaced = upload.parts.insert(rec.part_number, rec);
        drop(index);
        if let Some(old) = replaced.filter(|old| old.data != new_data) {
            self.disk.remove_part_data(upload_id, &old).await;
        }
        Ok(())
    }

    pub async fn upload_part_op(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        let required = self
            .part_target(
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
            )
            .await?;
        let upload = IncomingBody {
            headers: &req.headers,
            trailers: req.trailing_headers.as_ref(),
            content_length: input.content_length,
            content_md5: input.content_md5.as_deref(),
            checksums: checksum_headers!(input),
            algorithm: input.checksum_algorithm.as_ref(),
            required,
        };
        let received = self.receive(upload, input.body, required).await?;
        let fields = ChecksumFields::of(received.checksum.as_ref());
        let rec = PartRecord {
            part_number: input.part_number,
            data: received.data,
            size: received.size,
            etag: received.etag,
            last_modified_ms: now_ms(),
            checksum: received.checksum,
        };
        let etag = rec.etag.clone();
        self.commit_part(
            &input.bucket,
            &input.key,
            &input.upload_id,
            rec,
            received.tmp,
        )
        .await?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: fields.crc32,
            checksum_crc32c: fields.crc32c,
            checksum_crc64nvme: fields.crc64nvme,
            checksum_sha1: fields.sha1,
            checksum_sha256: fields.sha256,
            ..Default::default()
        }))
    }

    pub async fn upload_part_copy_op(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let upload_algorithm = self
            .part_target(
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
            )
            .await?;
        let pre = copy_source_preconditions!(input);
        let (_, src, file) = self.open_copy_source(&input.copy_source, pre).await?;
        let (start, len) = copy_range(input.copy_source_range.as_deref(), src.size)?;
        if len > MAX_SINGLE_OBJECT {
            return Err(s3_error!(
                InvalidRequest,
                "The specified copy range is larger than the maximum part size: 5368709120"
            ));
        }
        let mut hashes = BodyHashes::new(upload_algorithm);
        let (mut tmp, data) = self.disk.temp_file().await.map_err(internal)?;
        self.copy_into(&mut tmp, file, start, len, &mut |c: &[u8]| hashes.update(c))
            .await?;
        tmp.finish().await.map_err(internal)?;
        let digests = hashes.finish();
        let checksum = digests
            .checksum
            .as_ref()
            .map(|(a, d)| checksum::full_object(*a, d));
        let fields = ChecksumFields::of(checksum.as_ref());
        let rec = PartRecord {
            part_number: input.part_number,
            data,
            size: len,
            etag: digests.md5_hex(),
            last_modified_ms: now_ms(),
            checksum,
        };
        let (etag, last_modified_ms) = (rec.etag.clone(), rec.last_modified_ms);
        self.commit_part(&input.bucket, &input.key, &input.upload_id, rec, tmp)
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(etag)),
                last_modified: Some(timestamp_ms(last_modified_ms)),
                checksum_crc32: fields.crc32,
                checksum_crc32c: fields.crc32c,
                checksum_crc64nvme: fields.crc64nvme,
                checksum_sha1: fields.sha1,
                checksum_sha256: fields.sha256,
            }),
            ..Default::default()
        }))
    }

    /// Checks the listed parts against the upload and marks it as completing.
    fn plan_completion(
        upload: &mut Upload,
        listed: &[CompletedPart],
        mpu_size: Option<i64>,
    ) -> S3Result<Plan> {
        if listed.is_empty() {
            return Err(malformed_xml());
        }
        let algorithm = upload.record.checksum_algorithm;
        let mut parts = Vec::with_capacity(listed.len());
        let mut previous = 0;
        for (i, part) in listed.iter().enumerate() {
            let number = part.part_number.ok_or_else(malformed_xml)?;
            if number <= previous {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. Parts must be ordered by part number."
                ));
            }
            previous = number;
            let stored = upload.parts.get(&number).ok_or_else(invalid_part)?;
            if part.e_tag.as_ref().is_none_or(|t| t.value() != stored.etag) {
                return Err(invalid_part());
            }
            if let Some(a) = algorithm
                && let Some(given) = listed_checksum(part, a)
                && stored
                    .checksum
                    .as_ref()
                    .is_none_or(|c| c.algorithm != a || c.value != given)
            {
                return Err(invalid_part());
            }
            if i + 1 < listed.len() && stored.size < MIN_PART {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed object size."
                ));
            }
            parts.push(stored.clone());
        }
        let total: u64 = parts.iter().map(|p| p.size).sum();
        if mpu_size.is_some_and(|n| u64::try_from(n).ok() != Some(total)) {
            return Err(s3_error!(
                InvalidRequest,
                "The provided 'x-amz-mp-object-size' header does not match the object size"
            ));
        }

        let mut md5 = Md5::new();
        for p in &parts {
            md5.update(&hex::decode(&p.etag).map_err(|_| invalid_part())?);
        }
        let etag = format!("{}-{}", hex::encode(md5.finalize()), parts.len());
        let (composite, full_object) = match algorithm {
            Some(a) if !upload.record.checksum_full_object => {
                let values: Option<Vec<&str>> = parts
                    .iter()
                    .map(|p| {
                        p.checksum
                            .as_ref()
                            .filter(|c| c.algorithm == a)
                            .map(|c| c.value.as_str())
                    })
                    .collect();
                (
                    Some(checksum::composite(a, values.ok_or_else(invalid_part)?)?),
                    None,
                )
            }
            Some(a) => (None, Some(a)),
            None => (None, Some(Algorithm::Crc64nvme)),
        };
        upload.completing = true;
        Ok(Plan {
            upload: upload.record.clone(),
            parts,
            etag,
            composite,
            full_object,
        })
    }

    pub async fn complete_multipart_upload_op(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        check_upload_id(&input.upload_id)?;
        let listed = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        let claimed = Algorithm::ALL.into_iter().zip([
            input.checksum_crc32,
            input.checksum_crc32c,
            input.checksum_crc64nvme,
            input.checksum_sha1,
            input.checksum_sha256,
        ]);
        let claimed: Option<(Algorithm, String)> =
            claimed.filter_map(|(a, v)| v.map(|v| (a, v))).next();
        let plan = {
            let mut index = self.index.write().await;
            index.bucket(&input.bucket)?;
            index.upload(&input.bucket, &input.key, &input.upload_id)?;
            // Checked here for a plain 412/404, and again when the object is committed.
            let cond = WriteConditions {
                if_match: input.if_match.as_ref(),
                if_none_match: input.if_none_match.as_ref(),
            };
            cond.check(&index, &input.bucket, &input.key)?;
            let upload = index.upload_mut(&input.bucket, &input.key, &input.upload_id)?;
            let plan = Self::plan_completion(upload, &listed, input.mpu_object_size)?;
            if let (Some(c), Some((a, v))) = (&plan.composite, &claimed)
                && (c.algorithm != *a
                    || checksum::value_without_part_count(&c.value)
                        != checksum::value_without_part_count(v))
            {
                index.reopen_upload(&input.upload_id);
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified did not match the calculated checksum.",
                    a.name()
                ));
            }
            plan
        };
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let store = self.clone();
        let (if_match, if_none_match) = (input.if_match, input.if_none_match);
        // Assembled in its own task: like S3, a completion that started finishes even if the
        // client goes away, and the response keeps the connection alive meanwhile.
        let task = tokio::spawn(async move {
            let upload_id = plan.upload.upload_id.clone();
            let cond = WriteConditions {
                if_match: if_match.as_ref(),
                if_none_match: if_none_match.as_ref(),
            };
            let result = store.assemble(plan, claimed, cond).await;
            if result.is_err() {
                store.index.write().await.reopen_upload(&upload_id);
            }
            result
        });
        let future = async move {
            let (etag, fields) = task
                .await
                .map_err(|e| internal(std::io::Error::other(e)))??;
            Ok(CompleteMultipartUploadOutput {
                bucket: Some(bucket.clone()),
                key: Some(key.clone()),
                location: Some(format!("/{bucket}/{key}")),
                e_tag: Some(ETag::Strong(etag)),
                checksum_crc32: fields.crc32,
                checksum_crc32c: fields.crc32c,
                checksum_crc64nvme: fields.crc64nvme,
                checksum_sha1: fields.sha1,
                checksum_sha256: fields.sha256,
                checksum_type: fields.kind,
                ..Default::default()
            })
        };
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            future: Some(Box::pin(future)),
            ..Default::default()
        }))
    }

    /// Concatenates the parts into the object, commits it and removes the upload.
    async fn assemble(
        &self,
        plan: Plan,
        claimed: Option<(Algorithm, String)>,
        cond: WriteConditions<'_>,
    ) -> S3Result<(String, ChecksumFields)> {
        let upload_id = plan.upload.upload_id.clone();
        let (mut tmp, data) = self.disk.temp_file().await.map_err(internal)?;
        let mut hasher = plan.full_object.map(Hasher::new);
        for part in &plan.parts {
            let file = self
                .disk
                .open_part(&upload_id, part)
                .await
                .map_err(internal)?;
            let mut feed = |c: &[u8]| {
                if let Some(h) = &mut hasher {
                    h.update(c);
                }
            };
            self.copy_into(&mut tmp, file, 0, part.size, &mut feed)
                .await?;
        }
        tmp.finish().await.map_err(internal)?;
        let checksum = match (plan.composite, plan.full_object, hasher) {
            (Some(c), _, _) => Some(c),
            (None, Some(a), Some(h)) => Some(checksum::full_object(a, &h.finalize())),
            _ => None,
        };
        if let (Some(c), Some((a, v))) = (&checksum, &claimed)
            && !c.composite
            && (c.algorithm != *a || c.value != *v)
        {
            return Err(s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                a.name()
            ));
        }
        let fields = ChecksumFields::of(checksum.as_ref());
        let u = plan.upload;
        let rec = ObjectRecord {
            key: u.key,
            data,
            size: plan.parts.iter().map(|p| p.size).sum(),
            etag: plan.etag,
            last_modified_ms: now_ms(),
            headers: u.headers,
            metadata: u.metadata,
            checksum,
            part_sizes: plan.parts.iter().map(|p| p.size).collect(),
            tags: u.tags,
            storage_class: u.storage_class,
        };
        let etag = rec.etag.clone();
        self.commit_object(&u.bucket, rec, Some(tmp), cond).await?;
        self.index.write().await.remove_upload(&upload_id);
        if let Err(e) = self.disk.delete_upload(&upload_id).await {
            // The object is committed; a leftover upload directory is only listed, not used.
            tracing::warn!(upload_id, error = %e, "could not remove a completed upload");
        }
        Ok((etag, fields))
    }

    pub async fn abort_multipart_upload_op(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        check_upload_id(&input.upload_id)?;
        let mut index = self.index.write().await;
        index.bucket(&input.bucket)?;
        index.upload(&input.bucket, &input.key, &input.upload_id)?;
        self.disk
            .delete_upload(&input.upload_id)
            .await
            .map_err(internal)?;
        index.remove_upload(&input.upload_id);
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub async fn list_multipart_uploads_op(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let encode = listing::url_encoding(input.encoding_type.as_ref().map(EncodingType::as_str))?;
        let name = |s: &str| {
            if encode {
                listing::url_encode(s)
            } else {
                s.to_owned()
            }
        };
        let max = listing::page_size(input.max_uploads, "max-uploads")?;
        let index = self.index.read().await;
        index.bucket(&input.bucket)?;
        let sorted = index.uploads_in(&input.bucket);
        let (key_marker, id_marker) = (
            input.key_marker.as_deref(),
            input.upload_id_marker.as_deref(),
        );
        // Resume after the marker upload itself, or after every upload of the marker key.
        let begin = match (key_marker, id_marker) {
            (Some(k), Some(id)) => sorted
                .iter()
                .position(|u| u.record.key == k && u.record.upload_id == id)
                .map_or_else(
                    || sorted.partition_point(|u| u.record.key.as_str() <= k),
                    |p| p + 1,
                ),
            (Some(k), None) => sorted.partition_point(|u| u.record.key.as_str() <= k),
            _ => 0,
        };
        let rest = sorted.get(begin..).unwrap_or_default();
        let q = Query {
            prefix: input.prefix.as_deref().unwrap_or(""),
            delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
            after: key_marker,
            max,
        };
        let page = listing::paginate(&q, |bound| {
            let from = match bound {
                Bound::Included(b) => rest.partition_point(|u| u.record.key.as_str() < b),
                Bound::Excluded(_) | Bound::Unbounded => 0,
            };
            rest.get(from..)
                .unwrap_or_default()
                .iter()
                .map(|u| (u.record.key.as_str(), *u))
        });
        let (mut next_key_marker, mut next_upload_id_marker) = (None, None);
        if page.truncated {
            match page.entries.last() {
                Some(Entry::Item(key, u)) => {
                    next_key_marker = Some(name(key));
                    next_upload_id_marker = Some(u.record.upload_id.clone());
                }
                Some(Entry::Prefix(p)) => next_key_marker = Some(name(p)),
                None => {}
            }
        }
        let (mut uploads, mut common_prefixes) = (Vec::new(), Vec::new());
        for entry in page.entries {
            match entry {
                Entry::Item(_, u) => uploads.push(self.upload_entry(u, encode)),
                Entry::Prefix(p) => common_prefixes.push(CommonPrefix {
                    prefix: Some(name(&p)),
                }),
            }
        }
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            key_marker: Some(key_marker.map(name).unwrap_or_default()),
            upload_id_marker: Some(id_marker.unwrap_or_default().to_owned()),
            next_key_marker,
            next_upload_id_marker,
            max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.truncated),
            uploads: Some(uploads),
            common_prefixes: Some(common_prefixes),
            prefix: Some(name(q.prefix)),
            delimiter: input.delimiter.as_deref().map(name),
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }

    fn upload_entry(&self, u: &Upload, encode: bool) -> MultipartUpload {
        let r = &u.record;
        MultipartUpload {
            checksum_algorithm: r
                .checksum_algorithm
                .map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
            checksum_type: r.checksum_algorithm.map(|_| {
                ChecksumType::from(checksum_type_name(!r.checksum_full_object).to_owned())
            }),
            initiated: Some(timestamp_ms(r.initiated_ms)),
            initiator: Some(Initiator {
                display_name: self.owner().display_name,
                id: self.owner().id,
            }),
            key: Some(if encode {
                listing::url_encode(&r.key)
            } else {
                r.key.clone()
            }),
            owner: Some(self.owner()),
            storage_class: Some(StorageClass::from(r.storage_class.clone())),
            upload_id: Some(r.upload_id.clone()),
        }
    }

    pub async fn list_parts_op(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        check_upload_id(&input.upload_id)?;
        let max = listing::page_size(input.max_parts, "max-parts")?;
        let marker = input.part_number_marker.unwrap_or(0);
        let index = self.index.read().await;
        index.bucket(&input.bucket)?;
        let upload = index.upload(&input.bucket, &input.key, &input.upload_id)?;
        let mut after = upload
            .parts
            .range(marker.saturating_add(1)..)
            .map(|(_, p)| p);
        let parts: Vec<Part> = after
            .by_ref()
            .take(max)
            .map(|p| {
                let c = ChecksumFields::of(p.checksum.as_ref());
                Part {
                    checksum_crc32: c.crc32,
                    checksum_crc32c: c.crc32c,
                    checksum_crc64nvme: c.crc64nvme,
                    checksum_sha1: c.sha1,
                    checksum_sha256: c.sha256,
                    e_tag: Some(ETag::Strong(p.etag.clone())),
                    last_modified: Some(timestamp_ms(p.last_modified_ms)),
                    part_number: Some(p.part_number),
                    size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                }
            })
            .collect();
        let truncated = after.next().is_some();
        let r = &upload.record;
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: Some(marker),
            next_part_number_marker: parts
                .last()
                .and_then(|p| p.part_number)
                .filter(|_| truncated),
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(truncated),
            parts: Some(parts),
            initiator: Some(Initiator {
                display_name: self.owner().display_name,
                id: self.owner().id,
            }),
            owner: Some(self.owner()),
            storage_class: Some(StorageClass::from(r.storage_class.clone())),
            checksum_algorithm: r
                .checksum_algorithm
                .map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
            checksum_type: r.checksum_algorithm.map(|_| {
                ChecksumType::from(checksum_type_name(!r.checksum_full_object).to_owned())
            }),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;

    #[test]
    fn upload_ids_must_be_ours() {
        assert!(check_upload_id("0123456789abcdef0123456789abcdef").is_ok());
        for bad in [
            "",
            "../../etc",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(
                check_upload_id(bad).unwrap_err().code(),
                &S3ErrorCode::NoSuchUpload,
                "{bad}"
            );
        }
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_range(None, 10).ok(), Some((0, 10)));
        assert_eq!(copy_range(Some("bytes=2-5"), 10).ok(), Some((2, 4)));
        assert_eq!(copy_range(Some("bytes=0-9"), 10).ok(), Some((0, 10)));
        assert_eq!(
            copy_range(Some("bytes=0-10"), 10).unwrap_err().code(),
            &S3ErrorCode::InvalidRange
        );
        for bad in ["2-5", "bytes=5-2", "bytes=-5", "bytes=1-", "bytes=a-b"] {
            assert_eq!(
                copy_range(Some(bad), 10).unwrap_err().code(),
                &S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }
}
