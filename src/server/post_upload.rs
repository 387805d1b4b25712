//! Browser POST uploads (S3-SEMANTICS §6) in the pipeline: read the form up
//! to its file, verify the signature over the policy (SigV4 or SigV2, long-term
//! or temporary credentials), check the policy's expiry and conditions against
//! the form, authorize the upload as the PutObject it amounts to, then stream
//! the file upstream while enforcing `content-length-range` and any checksum
//! field, and answer as S3 answers a POST.
//!
//! The file's size is not known until it has been read, and S3 needs a length
//! for every body, so the file goes upstream in parts of [`PART_SIZE`]: a file
//! that fits in one part is one PutObject; a larger one is a multipart upload,
//! aborted on any failure (too large, too small, a bad checksum, the client
//! going away), so nothing is stored unless everything checked out. Memory per
//! upload is bounded by one part.

use crate::auth::canonical::QueryPair;
use crate::s3::headers::header_str;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, NaiveDateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyDataStream, BodyExt, Empty, Full};
use tokio::sync::Notify;

use super::State;
use super::authenticate::{Authenticated, common_context, record_failure, resolve_key};
use super::body::{ClientBody, InboundBody, from_client, read_limited};
use super::pipeline::{
    ConnInfo, RequestCtx, ResponseBody, authorize_recorded, forward_headers, relay,
    strip_upstream_headers,
};
use crate::audit::AuthInfo;
use crate::auth::AuthError;
use crate::auth::checksum::{Algorithm, Hasher, well_formed};
use crate::auth::payload::PayloadHash;
use crate::auth::post_policy::{FormField, PostPolicy, PostPolicyError, expand_filename};
use crate::auth::sigv4::{ALGORITHM, Scope};
use crate::auth::{post_policy, sigv2};
use crate::policy::Context;
use crate::s3::address::{MAX_KEY_BYTES, Target};
use crate::s3::classify::{RequestView, classify};
use crate::s3::error::xml_escape;
use crate::s3::post_form::{PostForm, PostFormError, boundary, read_form};
use crate::s3::{Operation, S3Error};
use crate::upstream::{Outgoing, ReplyBody, UpstreamError};

/// The size of each upstream part, and the largest file sent as one PutObject.
/// At least S3's 5 MiB minimum part size.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// S3's largest object from one POST (or PUT): 5 GB.
pub const MAX_POST_OBJECT: u64 = 5 * 1024 * 1024 * 1024;

/// Upstream answers read whole (errors, CreateMultipartUpload and
/// CompleteMultipartUpload results) are far below this.
const MAX_UPSTREAM_XML: usize = 1024 * 1024;

/// Whether a request is a browser POST upload: POST to a bucket itself, no
/// sub-resource, with a form body.
pub fn is_post_upload(
    method: &Method,
    target: &Target,
    query: &[QueryPair<'_>],
    headers: &HeaderMap,
) -> bool {
    *method == Method::POST
        && target.bucket.is_some()
        && target.key.is_none()
        && query.is_empty()
        && header_str(headers, "content-type").is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// Form fields that steer the upload rather than become object headers.
fn is_control_field(name: &str) -> bool {
    matches!(
        name,
        "key"
            | "policy"
            | "signature"
            | "awsaccesskeyid"
            | "x-amz-algorithm"
            | "x-amz-credential"
            | "x-amz-date"
            | "x-amz-signature"
            | "x-amz-security-token"
            | "success_action_status"
            | "success_action_redirect"
            | "redirect"
            | "bucket"
            | "file"
    ) || name.starts_with("x-ignore-")
}

/// Form fields stored as the object's headers under their own name.
const PLAIN_HEADER_FIELDS: [&str; 5] = [
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "expires",
];

fn missing_field(name: &str) -> S3Error {
    S3Error::invalid_argument(
        format!(
            "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
        ),
        name,
        "",
    )
}

/// Serves a POST upload. `target` names the bucket (path or Host).
pub async fn handle(
    state: &Arc<State>,
    conn: &ConnInfo,
    parts: http::request::Parts,
    body: ClientBody,
    target: &Target,
    ctx: &RequestCtx,
) -> Result<Response<ResponseBody>, S3Error> {
    let bucket = target.bucket.clone().unwrap_or_default();
    ctx.audit.update(|r| {
        r.bucket = Some(bucket.clone());
        r.operation = Some(Operation::PostObject.name().into());
        r.auth = AuthInfo {
            kind: "post-form",
            ..AuthInfo::default()
        };
    });
    let content_type = header_str(&parts.headers, "content-type").unwrap_or("");
    let boundary = boundary(content_type).map_err(|e| S3Error::from(&e))?;
    let received = Arc::new(AtomicU64::new(0));
    let inbound = InboundBody::new(
        from_client(body, &state.config.limits),
        received.clone(),
        Arc::new(Notify::new()),
    );
    let form = read_form(BodyDataStream::new(inbound), boundary)
        .await
        .map_err(|e| S3Error::from(&e))?;
    let record_bytes = || {
        let n = received.load(Ordering::Relaxed);
        ctx.audit.update(|r| r.bytes_in = n);
    };

    // As S3 does, a missing key is named first: it is how a form with its
    // file before its other fields shows (fields after the file are ignored).
    if form.get("key").is_none() {
        record_bytes();
        return Err(missing_field("key"));
    }

    // Authenticate: the signature over the policy, with the signer's key.
    let dir = state.identities.snapshot();
    let auth = verify_signature(state, &dir, &form, ctx).inspect_err(|_| record_bytes())?;
    ctx.audit
        .update(|r| r.principal = Some(auth.principal.clone()));

    // The policy's conditions, over the fields with `${filename}` expanded.
    let fields: Vec<FormField> = form
        .fields
        .iter()
        .map(|f| FormField {
            name: f.name.clone(),
            value: expand_filename(&f.value, form.file_name.as_deref()),
        })
        .collect();
    let value = |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    };
    let key = value("key")
        .ok_or_else(|| missing_field("key"))?
        .to_string();
    ctx.audit.update(|r| r.key = Some(key.clone()));
    if key.is_empty() {
        return Err(S3Error::invalid_argument(
            "User key must have a length greater than 0.",
            "key",
            "",
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::key_too_long());
    }
    let policy =
        PostPolicy::parse(value("policy").unwrap_or_default()).map_err(|e| S3Error::from(&e))?;
    policy
        .check(&fields, &bucket, Utc::now())
        .map_err(|e| S3Error::from(&e))?;

    // Authorize exactly the PutObject this upload is, with the form's
    // headers as its request headers.
    let headers = object_headers(&fields)?;
    let object = Target {
        bucket: Some(bucket.clone()),
        key: Some(key.clone()),
        virtual_host: target.virtual_host,
    };
    let mut context = Context::new();
    let view = RequestView {
        method: &Method::PUT,
        target: &object,
        query: &[],
        headers: &headers,
    };
    let classified = classify(&view, &mut context).map_err(|e| S3Error::from(&e))?;
    if classified.operation != Operation::PutObject {
        // A field turned the upload into something else (a copy, say).
        return Err(S3Error::invalid_request(
            "A form field is not valid for a POST upload.",
        ));
    }
    let decider = dir.decider(&auth.principal);
    let reads = decider.context_reads();
    common_context(state, conn, &parts.headers, &auth, reads, &mut context);
    ctx.audit.update(|r| {
        r.actions = classified.checks.iter().map(|c| c.action.into()).collect();
    });
    let allowed = authorize_recorded(&decider, &classified, &context, &ctx.audit);
    if !allowed {
        record_bytes();
        return Err(S3Error::access_denied());
    }

    // The form's Content-Encoding is stored as the object's; aws-chunked would
    // make upstream decode bytes the proxy checked as they are.
    super::streaming::refuse_stray_aws_chunked(&headers)?;
    let Ok(_slot) = state.post_uploads.clone().try_acquire_owned() else {
        record_bytes();
        return Err(S3Error::new(
            "SlowDown",
            StatusCode::SERVICE_UNAVAILABLE,
            "Please reduce your request rate.",
        ));
    };
    let mut upload = Upload {
        state,
        bucket: &bucket,
        key: &key,
        headers: forward_headers(state, &headers, &classified)?,
        checksums: checksums(&headers)?,
        limits: policy.content_length_range(),
        form,
        carry: None,
        ctx,
        upstream: Duration::ZERO,
    };
    let result = upload.run().await;
    let upstream_ms = crate::audit::millis(upload.upstream);
    record_bytes();
    ctx.audit.update(|r| r.upstream_ms = Some(upstream_ms));
    match result? {
        Stored::Etag(etag) => Ok(success(
            conn,
            &parts.headers,
            target,
            &bucket,
            &key,
            &etag,
            &fields,
        )),
        Stored::Refused(resp) => Ok(resp),
    }
}

/// Verifies the form's signature and resolves its signer.
fn verify_signature(
    state: &State,
    dir: &crate::identity::Directory,
    form: &PostForm,
    ctx: &RequestCtx,
) -> Result<Authenticated, S3Error> {
    let v4 = form.get("x-amz-signature").is_some() || form.get("x-amz-algorithm").is_some();
    let v2 = form.get("signature").is_some() || form.get("awsaccesskeyid").is_some();
    if !v4 && !v2 {
        // Anonymous uploads need a bucket policy granting them; s3warden
        // grants nothing to anonymous callers.
        return Err(S3Error::access_denied());
    }
    if v4 && v2 {
        return Err(S3Error::invalid_argument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm or the AWSAccessKeyId field should be present.",
            "AWSAccessKeyId",
            "",
        ));
    }
    let policy = form.get("policy").ok_or_else(|| missing_field("policy"))?;
    let token = form.get("x-amz-security-token");
    if v4 {
        ctx.audit
            .update(|r| r.auth.signature_version = Some(ALGORITHM));
        let algorithm = form
            .get("x-amz-algorithm")
            .ok_or_else(|| missing_field("x-amz-algorithm"))?;
        if algorithm != ALGORITHM {
            return Err(S3Error::invalid_argument(
                "Only AWS4-HMAC-SHA256 is supported as x-amz-algorithm.",
                "x-amz-algorithm",
                algorithm,
            ));
        }
        let credential = form
            .get("x-amz-credential")
            .ok_or_else(|| missing_field("x-amz-credential"))?;
        let date = form
            .get("x-amz-date")
            .ok_or_else(|| missing_field("x-amz-date"))?;
        let signature = form
            .get("x-amz-signature")
            .ok_or_else(|| missing_field("x-amz-signature"))?;
        let scope = Scope::parse(credential).map_err(|_| {
            S3Error::invalid_argument(
                "The x-amz-credential is not in the form AKID/YYYYMMDD/REGION/s3/aws4_request.",
                "x-amz-credential",
                credential,
            )
        })?;
        let signing_time = parse_amz_date(date).ok_or_else(|| {
            S3Error::invalid_argument("X-Amz-Date is not a valid date.", "x-amz-date", date)
        })?;
        if scope.region() != state.config.region || scope.service() != "s3" {
            return Err(S3Error::invalid_argument(
                format!(
                    "Credential should be scoped to a valid region and the s3 service, not '{}/{}'; expecting '{}/s3'.",
                    scope.region(),
                    scope.service(),
                    state.config.region
                ),
                "x-amz-credential",
                credential,
            ));
        }
        if !date.starts_with(scope.date()) {
            return Err(S3Error::invalid_argument(
                "Invalid credential date. Date is not the same as X-Amz-Date.",
                "x-amz-credential",
                credential,
            ));
        }
        let resolved = resolve_key(dir, scope.access_key_id(), token, &ctx.audit)
            .map_err(|e| refused(ctx, e))?;
        let scope_parts = scope.key_parts();
        let secret = resolved.secret.expose();
        let (key, cached) = state.keys.lookup(scope_parts, secret);
        if !post_policy::verify_v4(policy, key.bytes(), signature) {
            return Err(refused(
                ctx,
                AuthError::SignatureMismatch {
                    access_key_id: scope.access_key_id().to_string(),
                },
            ));
        }
        // A form's date is not bound to the present (its policy's expiration
        // is), so a signer could name a new scope per form: only keys for
        // dates within a week, a presigned URL's longest life, are kept.
        if !cached && key_kept_for(signing_time, Utc::now()) {
            state.keys.keep(scope_parts, secret, &key);
        }
        return Ok(authenticated(
            resolved.principal,
            Some(signing_time),
            ALGORITHM,
        ));
    }
    ctx.audit
        .update(|r| r.auth.signature_version = Some(sigv2::SIGNATURE_VERSION));
    if !state.config.auth.sigv2 {
        return Err(S3Error::from(&AuthError::SigV2Disabled));
    }
    let access_key_id = form
        .get("awsaccesskeyid")
        .ok_or_else(|| missing_field("AWSAccessKeyId"))?;
    let signature = form
        .get("signature")
        .ok_or_else(|| missing_field("Signature"))?;
    let resolved =
        resolve_key(dir, access_key_id, token, &ctx.audit).map_err(|e| refused(ctx, e))?;
    if !post_policy::verify_v2(policy, resolved.secret.expose(), signature) {
        return Err(refused(
            ctx,
            AuthError::SignatureMismatch {
                access_key_id: access_key_id.to_string(),
            },
        ));
    }
    Ok(authenticated(
        resolved.principal,
        None,
        sigv2::SIGNATURE_VERSION,
    ))
}

/// A failed authentication: noted in the audit record, answered as S3 would.
fn refused(ctx: &RequestCtx, e: AuthError) -> S3Error {
    record_failure(&ctx.audit, &e);
    S3Error::from(&e)
}

/// Whether a form signed at `signing_time` has its signing key cached: its
/// date must lie within a week of `now` (either way); other forms derive
/// theirs each time.
fn key_kept_for(signing_time: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (now - signing_time).num_seconds().abs() <= 7 * 86_400
}

/// `YYYYMMDDTHHMMSSZ`, exactly: 16 ASCII characters (chrono alone would
/// also take whitespace between the numbers).
fn parse_amz_date(date: &str) -> Option<DateTime<Utc>> {
    let b = date.as_bytes();
    let shape = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

fn authenticated(
    principal: std::sync::Arc<crate::identity::Principal>,
    signing_time: Option<DateTime<Utc>>,
    signature_version: &'static str,
) -> Authenticated {
    Authenticated {
        principal,
        // The file is checked against the policy and any checksum field,
        // never against a payload hash (a form signs none).
        payload: PayloadHash::Unsigned,
        signing_time,
        auth_type: "POST",
        signature_version,
        chunk_signer: None,
        hoisted: Vec::new(),
    }
}

/// The object headers a form sets, named as PutObject names them: `acl` is
/// `x-amz-acl`, `tagging` (an XML `Tagging` document) becomes `x-amz-tagging`.
/// Unknown `x-amz-*` fields stay, so classification refuses them as it
/// refuses such headers.
fn object_headers(fields: &[FormField]) -> Result<HeaderMap, S3Error> {
    let mut out = HeaderMap::new();
    for f in fields {
        let name = f.name.as_str();
        if is_control_field(name) {
            continue;
        }
        let (header, value) = match name {
            "acl" => ("x-amz-acl".to_string(), f.value.clone()),
            "tagging" => ("x-amz-tagging".to_string(), tagging_header(&f.value)?),
            n if n.starts_with("x-amz-") || PLAIN_HEADER_FIELDS.contains(&n) => {
                (n.to_string(), f.value.clone())
            }
            // Covered by the policy, so the signer allowed it; S3 stores
            // nothing for it.
            _ => continue,
        };
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| S3Error::invalid_argument("Invalid form field name.", name, ""))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| S3Error::invalid_argument("Invalid form field value.", name, &value))?;
        out.append(header, value);
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct Tagging {
    #[serde(rename = "TagSet")]
    tag_set: TagSet,
}

#[derive(serde::Deserialize)]
struct TagSet {
    #[serde(rename = "Tag", default)]
    tags: Vec<Tag>,
}

#[derive(serde::Deserialize)]
struct Tag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

/// The tags of an S3 `Tagging` document, in order.
pub(super) fn parse_tagging(xml: &str) -> Result<Vec<(String, String)>, S3Error> {
    let t: Tagging = quick_xml::de::from_str(xml).map_err(|_| S3Error::malformed_xml())?;
    Ok(t.tag_set
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect())
}

/// A POST form's `tagging` XML as the `x-amz-tagging` query string.
fn tagging_header(xml: &str) -> Result<String, S3Error> {
    let tags = parse_tagging(xml)?;
    let mut out = String::new();
    for (i, (key, value)) in tags.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        crate::auth::canonical::uri_encode_into(&mut out, key, false);
        out.push('=');
        crate::auth::canonical::uri_encode_into(&mut out, value, false);
    }
    Ok(out)
}

/// The `x-amz-checksum-*` fields, checked by the proxy over the whole file.
fn checksums(headers: &HeaderMap) -> Result<Vec<(Algorithm, String)>, S3Error> {
    let mut out = Vec::new();
    for (name, value) in headers {
        if let Some(alg) = Algorithm::from_header(name.as_str()) {
            let v = value.to_str().unwrap_or("");
            if !well_formed(alg, v) {
                return Err(S3Error::invalid_request(format!(
                    "Value for {} header is invalid.",
                    name.as_str()
                )));
            }
            out.push((alg, v.to_string()));
        }
    }
    Ok(out)
}

enum Stored {
    /// Stored, with this ETag (quotes included).
    Etag(String),
    /// Upstream refused; its answer goes back as is.
    Refused(Response<ResponseBody>),
}

/// One upload in progress.
struct Upload<'a> {
    state: &'a Arc<State>,
    bucket: &'a str,
    key: &'a str,
    /// Headers for PutObject / CreateMultipartUpload.
    headers: HeaderMap,
    checksums: Vec<(Algorithm, String)>,
    limits: Option<(u64, u64)>,
    form: PostForm,
    /// File bytes read past the end of the previous part.
    carry: Option<Bytes>,
    ctx: &'a RequestCtx,
    /// Time spent waiting on the upstream, over every request sent to it
    /// (not the best-effort abort).
    upstream: Duration,
}

/// Aborts a multipart upload if the request ends before it completed or
/// was aborted: the client resetting the stream, the connection failing
/// or the server shutting down all drop the handler mid-upload.
struct AbortOnDrop {
    state: Arc<State>,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.upload_id.take() {
            let (state, bucket, key) = (self.state.clone(), self.bucket.clone(), self.key.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { abort_upload(&state, &bucket, &key, &id).await });
            }
        }
    }
}

/// AbortMultipartUpload, best effort: a failed abort leaves parts that S3's
/// lifecycle rules clean up, never an object.
async fn abort_upload(state: &State, bucket: &str, key: &str, upload_id: &str) {
    let out = Outgoing::whole(
        Method::DELETE,
        Some(bucket.to_string()),
        Some(key.to_string()),
        vec![("uploadId".to_string(), upload_id.to_string())],
        HeaderMap::new(),
        Bytes::new(),
    );
    match state.upstream.send(out).await {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => tracing::warn!(
            status = resp.status().as_u16(),
            "aborting a POST upload's multipart upload failed"
        ),
        Err(e) => tracing::warn!(error = %e, "aborting a POST upload's multipart upload failed"),
    }
}

/// How a multipart upload ended when it did not complete.
enum PartsOutcome {
    Done(Vec<(u32, String)>),
    Refused(Response<ResponseBody>),
}

impl Upload<'_> {
    async fn run(&mut self) -> Result<Stored, S3Error> {
        let mut hashers: Vec<Hasher> = self.checksums.iter().map(|(a, _)| a.hasher()).collect();
        let mut total = 0u64;
        let first = self.fill(&mut hashers, &mut total).await?;
        if first.len() < PART_SIZE {
            self.finish_checks(hashers, total)?;
            return self.put_single(first.freeze()).await;
        }
        let upload_id = match self.create().await? {
            Ok(id) => id,
            Err(resp) => return Ok(Stored::Refused(resp)),
        };
        let mut guard = AbortOnDrop {
            state: self.state.clone(),
            bucket: self.bucket.to_string(),
            key: self.key.to_string(),
            upload_id: Some(upload_id.clone()),
        };
        let result = self
            .multipart(&upload_id, first, &mut hashers, &mut total)
            .await;
        if !matches!(result, Ok(Stored::Etag(_))) {
            // Aborted before the client hears of the failure, so a retry
            // finds nothing half-stored.
            abort_upload(self.state, self.bucket, self.key, &upload_id).await;
        }
        guard.upload_id = None;
        result
    }

    /// The parts after CreateMultipartUpload, the final checks, and
    /// CompleteMultipartUpload.
    async fn multipart(
        &mut self,
        upload_id: &str,
        first: BytesMut,
        hashers: &mut Vec<Hasher>,
        total: &mut u64,
    ) -> Result<Stored, S3Error> {
        let parts = match self.send_parts(upload_id, first, hashers, total).await? {
            PartsOutcome::Done(parts) => parts,
            PartsOutcome::Refused(resp) => return Ok(Stored::Refused(resp)),
        };
        self.finish_checks(std::mem::take(hashers), *total)?;
        self.complete(upload_id, &parts).await
    }

    /// Reads exactly one part of the file (less only at its end), enforcing
    /// the size limits as bytes arrive.
    async fn fill(&mut self, hashers: &mut [Hasher], total: &mut u64) -> Result<BytesMut, S3Error> {
        let mut buf = BytesMut::with_capacity(PART_SIZE);
        while buf.len() < PART_SIZE {
            let mut chunk = match self.carry.take() {
                Some(c) => c,
                None => match self.form.file.chunk().await {
                    Ok(Some(c)) => {
                        *total += c.len() as u64;
                        let max = self
                            .limits
                            .map_or(MAX_POST_OBJECT, |(_, m)| m.min(MAX_POST_OBJECT));
                        if *total > max {
                            return Err(S3Error::from(&PostPolicyError::TooLarge { max }));
                        }
                        for h in hashers.iter_mut() {
                            h.update(&c);
                        }
                        c
                    }
                    Ok(None) => break,
                    Err(
                        multer::Error::StreamReadFailed(_)
                        | multer::Error::IncompleteFieldData { .. }
                        | multer::Error::IncompleteStream,
                    ) => return Err(S3Error::incomplete_body()),
                    Err(_) => {
                        return Err(S3Error::from(&PostFormError::Malformed(String::new())));
                    }
                },
            };
            let room = PART_SIZE - buf.len();
            if chunk.len() > room {
                self.carry = Some(chunk.split_off(room));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    /// Size bounds and checksums, once the whole file has been read.
    fn finish_checks(&self, hashers: Vec<Hasher>, total: u64) -> Result<(), S3Error> {
        if let Some((min, _)) = self.limits
            && total < min
        {
            return Err(S3Error::from(&PostPolicyError::TooSmall { min }));
        }
        for ((alg, expected), h) in self.checksums.iter().zip(hashers) {
            if h.finish_base64() != *expected {
                return Err(S3Error::bad_digest().with_message(format!(
                    "The {} you specified did not match the calculated checksum.",
                    alg.display_name()
                )));
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        method: Method,
        query: Vec<(String, String)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<ReplyBody>, S3Error> {
        let out = Outgoing::whole(
            method,
            Some(self.bucket.to_string()),
            Some(self.key.to_string()),
            query,
            headers,
            body,
        );
        let started = Instant::now();
        let result = self.state.upstream.send(out).await;
        self.upstream += started.elapsed();
        let resp = result.map_err(|e| upstream_failure(self.state, e, self.ctx))?;
        let id = header_str(resp.headers(), "x-amz-request-id").map(str::to_string);
        self.ctx.audit.update(|r| r.upstream_request_id = id);
        Ok(resp)
    }

    async fn put_single(&mut self, body: Bytes) -> Result<Stored, S3Error> {
        let headers = self.headers.clone();
        let resp = self.send(Method::PUT, Vec::new(), headers, body).await?;
        if !resp.status().is_success() {
            return Ok(Stored::Refused(relay(self.state, resp)));
        }
        Ok(Stored::Etag(etag_of(resp.headers())))
    }

    /// CreateMultipartUpload: the upload id, or upstream's refusal.
    async fn create(&mut self) -> Result<Result<String, Response<ResponseBody>>, S3Error> {
        // The proxy checks checksum fields over the whole file itself; S3
        // takes none on CreateMultipartUpload as a whole-object value.
        let mut headers = self.headers.clone();
        for (alg, _) in &self.checksums {
            headers.remove(alg.header_name());
        }
        let resp = self
            .send(
                Method::POST,
                vec![("uploads".into(), String::new())],
                headers,
                Bytes::new(),
            )
            .await?;
        if !resp.status().is_success() {
            return Ok(Err(relay(self.state, resp)));
        }
        let text = read_xml(resp).await?;
        upload_id_of(&text).map(Ok).ok_or_else(|| {
            crate::s3::errors::upstream_bad_gateway("no UploadId in CreateMultipartUpload result")
        })
    }

    /// Sends `first` and every following part of the file.
    async fn send_parts(
        &mut self,
        upload_id: &str,
        first: BytesMut,
        hashers: &mut [Hasher],
        total: &mut u64,
    ) -> Result<PartsOutcome, S3Error> {
        let mut parts = Vec::new();
        let mut buf = first;
        loop {
            let number = parts.len() as u32 + 1;
            let query = vec![
                ("partNumber".to_string(), number.to_string()),
                ("uploadId".to_string(), upload_id.to_string()),
            ];
            let resp = self
                .send(Method::PUT, query, HeaderMap::new(), buf.freeze())
                .await?;
            if !resp.status().is_success() {
                return Ok(PartsOutcome::Refused(relay_whole(resp).await));
            }
            parts.push((number, etag_of(resp.headers())));
            buf = self.fill(hashers, total).await?;
            if buf.is_empty() {
                return Ok(PartsOutcome::Done(parts));
            }
        }
    }

    async fn complete(
        &mut self,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<Stored, S3Error> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
                xml_escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        let resp = self
            .send(
                Method::POST,
                vec![("uploadId".into(), upload_id.to_string())],
                headers,
                Bytes::from(xml),
            )
            .await?;
        if !resp.status().is_success() {
            return Ok(Stored::Refused(relay_whole(resp).await));
        }
        let text = read_xml(resp).await?;
        // S3 may answer 200 and still fail the completion in the body.
        let etag = completed_etag(&text).ok_or_else(|| {
            crate::s3::errors::upstream_bad_gateway("CompleteMultipartUpload failed upstream")
        })?;
        Ok(Stored::Etag(etag))
    }
}

fn upstream_failure(state: &State, e: UpstreamError, ctx: &RequestCtx) -> S3Error {
    super::pipeline::body_failure_or(state, &Default::default(), e, ctx)
}

fn etag_of(headers: &HeaderMap) -> String {
    header_str(headers, "etag").unwrap_or("").to_string()
}

async fn read_xml(resp: Response<ReplyBody>) -> Result<String, S3Error> {
    let raw = read_limited(resp.into_body(), MAX_UPSTREAM_XML)
        .await
        .map_err(|_| crate::s3::errors::upstream_bad_gateway("response too large or cut off"))?;
    String::from_utf8(raw.to_vec())
        .map_err(|_| crate::s3::errors::upstream_bad_gateway("response is not UTF-8"))
}

/// Upstream's refusal read whole, so the upload can be aborted before the
/// client gets it.
async fn relay_whole(resp: Response<ReplyBody>) -> Response<ResponseBody> {
    let (mut parts, body) = resp.into_parts();
    let raw = read_limited(body, MAX_UPSTREAM_XML)
        .await
        .unwrap_or_default();
    strip_upstream_headers(&mut parts.headers);
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Full::new(raw).map_err(|e| match e {}).boxed())
}

#[derive(serde::Deserialize)]
#[serde(rename = "InitiateMultipartUploadResult")]
struct Initiated {
    #[serde(rename = "UploadId")]
    upload_id: String,
}

#[derive(serde::Deserialize)]
#[serde(rename = "CompleteMultipartUploadResult")]
struct Completed {
    #[serde(rename = "ETag")]
    etag: String,
}

/// The upload id of a CreateMultipartUpload result.
fn upload_id_of(xml: &str) -> Option<String> {
    quick_xml::de::from_str::<Initiated>(xml)
        .ok()
        .map(|r| r.upload_id)
}

/// The ETag of a CompleteMultipartUpload result; `None` for anything else,
/// such as the `<Error>` S3 may send with a 200 status.
fn completed_etag(xml: &str) -> Option<String> {
    if xml.contains("<Error>") {
        return None;
    }
    quick_xml::de::from_str::<Completed>(xml)
        .ok()
        .map(|r| r.etag)
}

/// The success response per `success_action_redirect` / `success_action_status`.
fn success(
    conn: &ConnInfo,
    request_headers: &HeaderMap,
    target: &Target,
    bucket: &str,
    key: &str,
    etag: &str,
    fields: &[FormField],
) -> Response<ResponseBody> {
    let value = |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    };
    let location = object_url(conn, request_headers, target, bucket, key);
    let empty = || Empty::new().map_err(|e| match e {}).boxed();
    let redirect = value("success_action_redirect")
        .or_else(|| value("redirect"))
        .filter(|r| {
            r.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            })
        });
    let mut resp = if let Some(r) = redirect {
        let mut to = r.to_string();
        to.push(if r.contains('?') { '&' } else { '?' });
        to.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair("bucket", bucket)
                .append_pair("key", key)
                .append_pair("etag", etag)
                .finish(),
        );
        let mut resp = Response::new(empty());
        *resp.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&to) {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
        return with_etag(resp, etag);
    } else {
        match value("success_action_status") {
            Some("200") => Response::new(empty()),
            Some("201") => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                    xml_escape(&location),
                    xml_escape(bucket),
                    xml_escape(key),
                    xml_escape(etag)
                );
                let mut resp =
                    Response::new(Full::new(Bytes::from(xml)).map_err(|e| match e {}).boxed());
                *resp.status_mut() = StatusCode::CREATED;
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/xml"),
                );
                resp
            }
            _ => {
                let mut resp = Response::new(empty());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    with_etag(resp, etag)
}

fn with_etag(mut resp: Response<ResponseBody>, etag: &str) -> Response<ResponseBody> {
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(http::header::ETAG, v);
    }
    resp
}

/// The stored object's URL at the proxy, addressed as the form was.
fn object_url(
    conn: &ConnInfo,
    headers: &HeaderMap,
    target: &Target,
    bucket: &str,
    key: &str,
) -> String {
    let scheme = if conn.tls { "https" } else { "http" };
    let host = header_str(headers, "host").unwrap_or("localhost");
    let mut url = format!("{scheme}://{host}/");
    if !target.virtual_host {
        url.push_str(bucket);
        url.push('/');
    }
    crate::auth::canonical::uri_encode_into(&mut url, key, true);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_of_forms_signed_within_a_week_are_kept() {
        let now = parse_amz_date("20261205T120000Z").unwrap();
        for (date, kept) in [
            ("20261205T115959Z", true),
            ("20261128T120000Z", true),
            ("20261127T115959Z", false),
            ("20261212T120000Z", true),
            ("20261213T000000Z", false),
            ("19700101T000000Z", false),
        ] {
            assert_eq!(
                key_kept_for(parse_amz_date(date).unwrap(), now),
                kept,
                "{date}"
            );
        }
    }

    fn field(name: &str, value: &str) -> FormField {
        FormField {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn form_fields_become_putobject_headers() {
        let h = object_headers(&[
            field("key", "k"),
            field("acl", "private"),
            field("content-type", "text/plain"),
            field("x-amz-meta-color", "blue"),
            field("success_action_status", "201"),
            field("x-ignore-me", "1"),
            field("tagging", "<Tagging><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag><Tag><Key>c</Key><Value>d</Value></Tag></TagSet></Tagging>"),
            field("unknown", "x"),
        ])
        .unwrap();
        assert_eq!(h["x-amz-acl"], "private");
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h["x-amz-meta-color"], "blue");
        assert_eq!(h["x-amz-tagging"], "a%20b=1%262&c=d");
        assert_eq!(h.len(), 4);
        assert!(object_headers(&[field("tagging", "<Tagging>")]).is_err());
    }

    #[test]
    fn post_upload_detection() {
        let t = |bucket: Option<&str>, key: Option<&str>| Target {
            bucket: bucket.map(str::to_string),
            key: key.map(str::to_string),
            virtual_host: false,
        };
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        assert!(is_post_upload(&Method::POST, &t(Some("b"), None), &[], &h));
        assert!(!is_post_upload(
            &Method::POST,
            &t(Some("b"), Some("k")),
            &[],
            &h
        ));
        assert!(!is_post_upload(&Method::POST, &t(None, None), &[], &h));
        assert!(!is_post_upload(&Method::PUT, &t(Some("b"), None), &[], &h));
        let delete = [("delete".into(), "".into())];
        assert!(!is_post_upload(
            &Method::POST,
            &t(Some("b"), None),
            &delete,
            &h
        ));
        h.insert("content-type", HeaderValue::from_static("application/xml"));
        assert!(!is_post_upload(&Method::POST, &t(Some("b"), None), &[], &h));
    }

    #[test]
    fn upstream_results_are_read() {
        let created = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>abc</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(upload_id_of(created).as_deref(), Some("abc"));
        assert_eq!(upload_id_of("<Other><Key>k</Key></Other>"), None);
        let done = r#"<CompleteMultipartUploadResult><Location>l</Location><Bucket>b</Bucket><Key>k</Key><ETag>&quot;e-2&quot;</ETag></CompleteMultipartUploadResult>"#;
        assert_eq!(completed_etag(done).as_deref(), Some("\"e-2\""));
        let failed = "<Error><Code>InternalError</Code><Message>m</Message></Error>";
        assert_eq!(completed_etag(failed), None);
        assert_eq!(
            completed_etag("<CompleteMultipartUploadResult></CompleteMultipartUploadResult>"),
            None
        );
    }
}
