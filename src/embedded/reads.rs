//! Reading objects from the embedded store: GetObject and HeadObject.
//!
//! S3 behaviour followed: `Range` gives 206 with `Content-Range` (416 InvalidRange when it
//! starts past the end); `partNumber` reads one part of a multipart object (206, with
//! `x-amz-mp-parts-count`; part 1 of a single-part object is the whole object; any other is 416
//! InvalidPartNumber), and not together with `Range`; the conditional headers give 304 (with
//! ETag and Last-Modified, no body) or 412; checksums are returned only for
//! `x-amz-checksum-mode: ENABLED` and only when the whole object is read.

use super::attrs;
use super::checksum;
use super::conditions::{Outcome, Preconditions};
use super::objects::{ChecksumFields, precondition_failed};
use super::records::{ObjectRecord, timestamp_ms, timestamp_secs};
use super::store::{Store, file_body, internal};

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

/// S3's 304: no body, with the validators of the object.
fn not_modified(rec: &ObjectRecord) -> S3Error {
    let mut err = S3Error::new(S3ErrorCode::NotModified);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", rec.etag)) {
        headers.insert(http::header::ETAG, v);
    }
    let mut date = Vec::new();
    if timestamp_ms(rec.last_modified_ms)
        .format(TimestampFormat::HttpDate, &mut date)
        .is_ok()
        && let Ok(v) = http::HeaderValue::from_bytes(&date)
    {
        headers.insert(http::header::LAST_MODIFIED, v);
    }
    err.set_headers(headers);
    err
}

fn invalid_part_number() -> S3Error {
    checksum::custom_error(
        "InvalidPartNumber",
        http::StatusCode::RANGE_NOT_SATISFIABLE,
        "The requested partnumber is not satisfiable",
    )
}

/// The byte range a GET or HEAD reads, and how the response describes it.
struct Selection {
    start: u64,
    len: u64,
    content_range: Option<String>,
    parts_count: Option<i32>,
    whole: bool,
}

fn select(
    rec: &ObjectRecord,
    range: Option<&Range>,
    part_number: Option<i32>,
) -> S3Result<Selection> {
    let whole = Selection {
        start: 0,
        len: rec.size,
        content_range: None,
        parts_count: None,
        whole: true,
    };
    let partial = |start: u64, len: u64, parts_count: Option<i32>| Selection {
        start,
        len,
        content_range: Some(format!(
            "bytes {start}-{}/{}",
            (start + len).saturating_sub(1),
            rec.size
        )),
        parts_count,
        whole: len == rec.size,
    };
    match (range, part_number) {
        (Some(_), Some(_)) => Err(s3_error!(
            InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter"
        )),
        (Some(range), None) => {
            let r = range
                .check(rec.size)
                .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
            Ok(partial(r.start, r.end - r.start, None))
        }
        (None, Some(1)) if rec.part_sizes.is_empty() => Ok(whole),
        (None, Some(n)) => {
            let idx = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .filter(|i| *i < rec.part_sizes.len());
            let idx = idx.ok_or_else(invalid_part_number)?;
            let start: u64 = rec.part_sizes.iter().take(idx).sum();
            let len = rec.part_sizes.get(idx).copied().unwrap_or(0);
            let mut sel = partial(start, len, i32::try_from(rec.part_sizes.len()).ok());
            sel.whole = false;
            Ok(sel)
        }
        (None, None) => Ok(whole),
    }
}

/// The fields GetObjectOutput and HeadObjectOutput share, filled from a record and a selection.
macro_rules! object_output {
    ($ty:ident, $rec:expr, $sel:expr, $checksum:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let (rec, sel, c): (ObjectRecord, Selection, ChecksumFields) = ($rec, $sel, $checksum);
        let h = rec.headers;
        $ty {
            accept_ranges: Some("bytes".to_owned()),
            content_length: Some(i64::try_from(sel.len).unwrap_or(i64::MAX)),
            content_range: sel.content_range,
            parts_count: sel.parts_count,
            e_tag: Some(ETag::Strong(rec.etag)),
            last_modified: Some(timestamp_ms(rec.last_modified_ms)),
            content_type: h.content_type,
            content_encoding: h.content_encoding,
            content_disposition: h.content_disposition,
            content_language: h.content_language,
            cache_control: h.cache_control,
            expires: h.expires.map(timestamp_secs),
            website_redirect_location: h.website_redirect_location,
            metadata: attrs::metadata_out(&rec.metadata),
            storage_class: attrs::storage_class_out(&rec.storage_class),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            checksum_type: c.kind,
            $($field: $value,)*
            ..Default::default()
        }
    }};
}

/// What GET and HEAD ask about an object.
struct ReadRequest<'a> {
    bucket: &'a str,
    key: &'a str,
    pre: Preconditions<'a>,
    range: Option<&'a Range>,
    part_number: Option<i32>,
    checksum_mode: Option<&'a ChecksumMode>,
}

macro_rules! read_request {
    ($input:expr) => {
        ReadRequest {
            bucket: &$input.bucket,
            key: &$input.key,
            pre: Preconditions {
                if_match: $input.if_match.as_ref(),
                if_none_match: $input.if_none_match.as_ref(),
                if_modified_since: $input.if_modified_since.as_ref(),
                if_unmodified_since: $input.if_unmodified_since.as_ref(),
            },
            range: $input.range.as_ref(),
            part_number: $input.part_number,
            checksum_mode: $input.checksum_mode.as_ref(),
        }
    };
}

impl Store {
    /// Looks up an object and opens its data under the read lock, then applies the read
    /// preconditions.
    pub(super) async fn open_for_read(
        &self,
        bucket: &str,
        key: &str,
        pre: Preconditions<'_>,
    ) -> S3Result<(ObjectRecord, tokio::fs::File)> {
        let (rec, file) = {
            let index = self.index.read().await;
            let rec = index.object(bucket, key)?.clone();
            let file = self
                .disk
                .open_object(bucket, &rec)
                .await
                .map_err(internal)?;
            (rec, file)
        };
        match pre.evaluate(&rec.etag, rec.last_modified_ms) {
            Outcome::Proceed => Ok((rec, file)),
            Outcome::NotModified => Err(not_modified(&rec)),
            Outcome::PreconditionFailed => Err(precondition_failed()),
        }
    }

    async fn read(
        &self,
        r: ReadRequest<'_>,
    ) -> S3Result<(ObjectRecord, tokio::fs::File, Selection, ChecksumFields)> {
        let (rec, file) = self.open_for_read(r.bucket, r.key, r.pre).await?;
        let sel = select(&rec, r.range, r.part_number)?;
        let enabled = r
            .checksum_mode
            .is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED));
        let c = if sel.whole && enabled {
            ChecksumFields::of(rec.checksum.as_ref())
        } else {
            ChecksumFields::default()
        };
        Ok((rec, file, sel, c))
    }

    pub async fn get_object_op(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (rec, file, sel, c) = self.read(read_request!(input)).await?;
        let body = file_body(file, sel.start, sel.len).await?;
        let tag_count = i32::try_from(rec.tags.len()).ok().filter(|n| *n > 0);
        Ok(S3Response::new(
            object_output!(GetObjectOutput, rec, sel, c, { body: Some(body), tag_count: tag_count }),
        ))
    }

    pub async fn head_object_op(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let (rec, _, sel, c) = self.read(read_request!(input)).await?;
        Ok(S3Response::new(object_output!(
            HeadObjectOutput,
            rec,
            sel,
            c,
            {}
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::sample_object;
    use super::*;

    #[test]
    fn selections() {
        let mut rec = sample_object("k");
        rec.size = 100;
        let sel = select(&rec, None, None).expect("whole");
        assert!(sel.whole && sel.content_range.is_none() && sel.len == 100);
        let sel = select(
            &rec,
            Some(&Range::Int {
                first: 10,
                last: Some(19),
            }),
            None,
        )
        .expect("range");
        assert_eq!(
            (sel.start, sel.len, sel.content_range.as_deref()),
            (10, 10, Some("bytes 10-19/100"))
        );
        let sel = select(&rec, Some(&Range::Suffix { length: 500 }), None).expect("suffix");
        assert_eq!((sel.start, sel.len, sel.whole), (0, 100, true));
        let err = select(
            &rec,
            Some(&Range::Int {
                first: 100,
                last: None,
            }),
            None,
        )
        .err()
        .map(|e| e.code().clone());
        assert_eq!(err, Some(S3ErrorCode::InvalidRange));
        assert!(select(&rec, None, Some(1)).is_ok_and(|s| s.whole));
        assert!(select(&rec, None, Some(2)).is_err());

        rec.part_sizes = vec![60, 40];
        let sel = select(&rec, None, Some(2)).expect("part 2");
        assert_eq!((sel.start, sel.len, sel.parts_count), (60, 40, Some(2)));
        assert_eq!(sel.content_range.as_deref(), Some("bytes 60-99/100"));
        assert!(!sel.whole);
        assert!(select(&rec, None, Some(3)).is_err());
        assert!(select(&rec, None, Some(0)).is_err());
        assert!(
            select(
                &rec,
                Some(&Range::Int {
                    first: 0,
                    last: None
                }),
                Some(1)
            )
            .is_err()
        );
    }
}
