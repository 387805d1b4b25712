//! Classification: method + target + query + headers → one [`Operation`],
//! the IAM checks it needs (action on resource ARN) and its S3 condition keys.
//!
//! Unknown query parameters, unknown `x-amz-*` headers and combinations S3
//! does not define are refused: what cannot be classified is never forwarded.

use crate::auth::canonical::QueryPair;
use crate::s3::headers::header_str;
use http::{HeaderMap, Method};

use super::ClassifyError;
use super::address::{Target, validate_bucket, validate_key};
use super::headers::{HeaderRole, role};
use super::operation::{BucketSub, ObjectSub, Operation, Verb};
use crate::policy::Context;

/// One authorization question: may the principal do `action` on `resource`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub action: &'static str,
    pub resource: String,
}

/// The source object of CopyObject / UploadPartCopy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// A classified request: what it is, what must be allowed, what to forward.
#[derive(Debug, Clone)]
pub struct Classified {
    pub operation: Operation,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub copy_source: Option<CopySource>,
    /// Every check must be allowed (DeleteObjects adds per-key checks later).
    pub checks: Vec<Check>,
    /// The query parameters forwarded upstream (auth and SDK-only ones removed).
    pub forward_query: Vec<(String, String)>,
}

/// The parts of a request classification looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub target: &'a Target,
    /// Decoded query pairs, in order.
    pub query: &'a [QueryPair<'a>],
    pub headers: &'a HeaderMap,
}

/// The resource string for actions that have no resource type
/// (ListAllMyBuckets): `*` and `arn:aws:s3:::*` match it, a bucket ARN does not.
pub const NO_RESOURCE: &str = "arn:aws:s3:::";

pub fn bucket_arn(bucket: &str) -> String {
    let mut arn = String::with_capacity(ARN_PREFIX.len() + bucket.len());
    arn.push_str(ARN_PREFIX);
    arn.push_str(bucket);
    arn
}

pub fn object_arn(bucket: &str, key: &str) -> String {
    // Sized once: `format!` would grow the string on the way.
    let mut arn = String::with_capacity(ARN_PREFIX.len() + bucket.len() + 1 + key.len());
    arn.push_str(ARN_PREFIX);
    arn.push_str(bucket);
    arn.push('/');
    arn.push_str(key);
    arn
}

const ARN_PREFIX: &str = "arn:aws:s3:::";

/// Query parameters that authenticate a presigned request or only tell the
/// SDK's own routing what it called; consumed here, never forwarded.
const CONSUMED_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
    "AWSAccessKeyId",
    "Expires",
    "Signature",
    "x-amz-security-token",
    "x-id",
];

/// Header-named query parameters that SDK presigners put into URLs and that
/// S3 ignores there, so they are verified as part of the signature and then
/// dropped:
///
/// - `x-amz-checksum-<alg>`, `x-amz-sdk-checksum-algorithm`: the AWS SDK for
///   JavaScript v3 signs the checksum of the *empty* body into presigned
///   PutObject/UploadPart URLs (`x-amz-checksum-crc32=AAAAAA==`). S3 documents
///   that presigned URLs do not support these checksums ("Currently, Amazon S3
///   presigned URLs don't support using the following data-integrity checksum
///   algorithms (CRC32, CRC32C, SHA-1, SHA-256) when you upload objects"), and
///   uploads through such URLs succeed at S3 with "Additional checksums: Off"
///   even when the value is wrong (aws/aws-sdk-go-v2#2610, aws/aws-sdk#480;
///   LocalStack and MinIO ignore them for that reason). Applying them would
///   break every upload through such a URL.
/// - `x-amz-checksum-mode`: added by the same presigner to GetObject URLs; it
///   only asks for checksum response headers.
const IGNORED_QUERY_HEADERS: &[&str] = &[
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-checksum-mode",
];

/// True for a query parameter S3 ignores in (presigned) URLs; see
/// [`IGNORED_QUERY_HEADERS`].
pub fn is_ignored_query_header(name: &str) -> bool {
    IGNORED_QUERY_HEADERS.contains(&name)
}

/// Parameters that select an operation (a sub-resource or a multipart step).
const SELECTOR_PARAMS: &[&str] = &[
    "uploads",
    "uploadId",
    "delete",
    "versions",
    "restore",
    "select",
    "list-type",
];

/// Parameters that modify an operation without changing what it is.
const MODIFIER_PARAMS: &[&str] = &[
    "bucket-region",
    "continuation-token",
    "delimiter",
    "encoding-type",
    "fetch-owner",
    "id",
    "key-marker",
    "marker",
    "max-buckets",
    "max-keys",
    "max-parts",
    "max-uploads",
    "part-number-marker",
    "partNumber",
    "prefix",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "select-type",
    "start-after",
    "upload-id-marker",
    "version-id-marker",
    "versionId",
];

fn param<'a>(query: &'a [QueryPair<'a>], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_ref())
}

fn sub_resource_param(name: &str) -> bool {
    BucketSub::from_param(name).is_some() || ObjectSub::from_param(name).is_some()
}

/// Refuses unknown parameters and headers, and parameters given twice.
fn check_vocabulary(view: &RequestView<'_>) -> Result<(), ClassifyError> {
    for (i, (name, _)) in view.query.iter().enumerate() {
        let known = CONSUMED_PARAMS.contains(&name.as_ref())
            || IGNORED_QUERY_HEADERS.contains(&name.as_ref())
            || SELECTOR_PARAMS.contains(&name.as_ref())
            || MODIFIER_PARAMS.contains(&name.as_ref())
            || sub_resource_param(name);
        if !known {
            return Err(ClassifyError::UnknownParameter(name.to_string()));
        }
        if view.query[..i].iter().any(|(n, _)| n == name) {
            return Err(ClassifyError::RepeatedParameter(name.to_string()));
        }
    }
    for name in view.headers.keys() {
        if role(name.as_str()).is_none() {
            return Err(ClassifyError::UnsupportedHeader(name.as_str().to_string()));
        }
        if role(name.as_str()) == Some(HeaderRole::Forward)
            && view.headers.get_all(name).iter().count() > 1
        {
            return Err(ClassifyError::RepeatedHeader(name.as_str().to_string()));
        }
    }
    Ok(())
}

fn verb_of(method: &Method) -> Option<Verb> {
    match *method {
        Method::GET => Some(Verb::Get),
        Method::PUT => Some(Verb::Put),
        Method::DELETE => Some(Verb::Delete),
        _ => None,
    }
}

/// The one sub-resource or selector in the query; two are ambiguous.
fn selector<'a>(query: &'a [QueryPair<'_>]) -> Result<Option<&'a str>, ClassifyError> {
    let mut found: Option<&str> = None;
    for (name, _) in query {
        let n = name.as_ref();
        if SELECTOR_PARAMS.contains(&n) || sub_resource_param(n) {
            if let Some(prev) = found {
                return Err(ClassifyError::Ambiguous(format!("both {prev:?} and {n:?}")));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn bucket_operation(view: &RequestView<'_>, sel: Option<&str>) -> Result<Operation, ClassifyError> {
    let m = view.method;
    let op = match (sel, m) {
        (None, &Method::GET) => Operation::ListObjects,
        (None, &Method::PUT) => Operation::CreateBucket,
        (None, &Method::DELETE) => Operation::DeleteBucket,
        (None, &Method::HEAD) => Operation::HeadBucket,
        (Some("list-type"), &Method::GET) => match param(view.query, "list-type") {
            Some("2") => Operation::ListObjectsV2,
            other => {
                return Err(ClassifyError::InvalidParameter(
                    "list-type".into(),
                    other.unwrap_or("").into(),
                ));
            }
        },
        (Some("versions"), &Method::GET) => Operation::ListObjectVersions,
        (Some("uploads"), &Method::GET) => Operation::ListMultipartUploads,
        (Some("delete"), &Method::POST) => Operation::DeleteObjects,
        (Some(s), _) => {
            let sub = BucketSub::from_param(s)
                .ok_or_else(|| ClassifyError::NotABucketOperation(s.to_string()))?;
            let verb = verb_of(m).ok_or(ClassifyError::MethodNotAllowed)?;
            sub.operation(verb).ok_or(ClassifyError::MethodNotAllowed)?;
            Operation::Bucket(sub, verb)
        }
        (None, _) => return Err(ClassifyError::MethodNotAllowed),
    };
    Ok(op)
}

/// Made once: every object request is checked for it, and a name given as
/// `&str` is parsed on each lookup.
static X_AMZ_COPY_SOURCE: http::HeaderName = http::HeaderName::from_static("x-amz-copy-source");

fn object_operation(view: &RequestView<'_>, sel: Option<&str>) -> Result<Operation, ClassifyError> {
    let m = view.method;
    let copy = view.headers.contains_key(&X_AMZ_COPY_SOURCE);
    let part = param(view.query, "partNumber").is_some();
    let op = match (sel, m) {
        (None, &Method::GET) => Operation::GetObject,
        (None, &Method::HEAD) => Operation::HeadObject,
        (None, &Method::PUT) if copy => Operation::CopyObject,
        (None, &Method::PUT) => Operation::PutObject,
        (None, &Method::DELETE) => Operation::DeleteObject,
        (Some("uploads"), &Method::POST) => Operation::CreateMultipartUpload,
        (Some("uploadId"), &Method::PUT) if part && copy => Operation::UploadPartCopy,
        (Some("uploadId"), &Method::PUT) if part => Operation::UploadPart,
        (Some("uploadId"), &Method::POST) => Operation::CompleteMultipartUpload,
        (Some("uploadId"), &Method::DELETE) => Operation::AbortMultipartUpload,
        (Some("uploadId"), &Method::GET) => Operation::ListParts,
        (Some("restore"), &Method::POST) => Operation::RestoreObject,
        (Some("select"), &Method::POST) => match param(view.query, "select-type") {
            Some("2") => Operation::SelectObjectContent,
            other => {
                return Err(ClassifyError::InvalidParameter(
                    "select-type".into(),
                    other.unwrap_or("").into(),
                ));
            }
        },
        (Some(s), _) => {
            let sub = ObjectSub::from_param(s)
                .ok_or_else(|| ClassifyError::NotAnObjectOperation(s.to_string()))?;
            let verb = verb_of(m).ok_or(ClassifyError::MethodNotAllowed)?;
            sub.operation(verb, false)
                .ok_or(ClassifyError::MethodNotAllowed)?;
            Operation::Object(sub, verb)
        }
        (None, _) => return Err(ClassifyError::MethodNotAllowed),
    };
    // A copy header on anything but a copy would be silently ignored by us
    // and maybe not by upstream: refuse rather than guess.
    if copy && !matches!(op, Operation::CopyObject | Operation::UploadPartCopy) {
        return Err(ClassifyError::Ambiguous(
            "x-amz-copy-source on a non-copy operation".into(),
        ));
    }
    if part
        && !matches!(
            op,
            Operation::UploadPart
                | Operation::UploadPartCopy
                | Operation::GetObject
                | Operation::HeadObject
        )
    {
        return Err(ClassifyError::Ambiguous(
            "partNumber on an operation that takes none".into(),
        ));
    }
    Ok(op)
}

/// Parses `x-amz-copy-source`: URL-encoded `bucket/key`, optional leading
/// `/`, optional `?versionId=`. Access-point ARNs are refused.
pub fn parse_copy_source(value: &str) -> Result<CopySource, ClassifyError> {
    let bad = |why: &str| ClassifyError::BadCopySource(format!("{value:?}: {why}"));
    let v = value.strip_prefix('/').unwrap_or(value);
    if v.starts_with("arn:") {
        return Err(bad("access point ARNs are not supported"));
    }
    let (path, version_id) = match v.split_once('?') {
        None => (v, None),
        Some((p, q)) => match q.strip_prefix("versionId=") {
            Some(id) if !id.is_empty() && !id.contains('&') => (p, Some(id.to_string())),
            _ => return Err(bad("only ?versionId= may follow the key")),
        },
    };
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(path).collect();
    let decoded = String::from_utf8(decoded).map_err(|_| bad("not valid UTF-8"))?;
    let (bucket, key) = decoded
        .split_once('/')
        .ok_or_else(|| bad("expected bucket/key"))?;
    if key.is_empty() {
        return Err(bad("empty key"));
    }
    validate_bucket(bucket)?;
    validate_key(key)?;
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}

/// Classifies a request and fills the S3 condition keys into `ctx`.
pub fn classify(view: &RequestView<'_>, ctx: &mut Context) -> Result<Classified, ClassifyError> {
    check_vocabulary(view)?;
    let sel = selector(view.query)?;
    let target = view.target;
    let operation = match (&target.bucket, &target.key) {
        (None, _) => {
            if view.method != Method::GET || sel.is_some() {
                return Err(ClassifyError::MethodNotAllowed);
            }
            Operation::ListBuckets
        }
        (Some(_), None) => bucket_operation(view, sel)?,
        (Some(_), Some(_)) => object_operation(view, sel)?,
    };
    if let Some(x_id) = param(view.query, "x-id")
        && x_id != operation.name()
        && !(operation == Operation::ListObjects && x_id == "ListObjects")
    {
        return Err(ClassifyError::Ambiguous(format!(
            "x-id={x_id:?} names another operation than {}",
            operation.name()
        )));
    }
    let version_id = param(view.query, "versionId").map(str::to_string);
    let mut c = Classified {
        operation,
        bucket: target.bucket.clone(),
        key: target.key.clone(),
        version_id,
        copy_source: None,
        checks: Vec::with_capacity(2),
        forward_query: view
            .query
            .iter()
            .filter(|(n, _)| {
                !CONSUMED_PARAMS.contains(&n.as_ref())
                    && !IGNORED_QUERY_HEADERS.contains(&n.as_ref())
            })
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    };
    add_checks(&mut c, view.headers, view.query, ctx)?;
    if c.operation.creates_object() {
        ctx.set_static("s3:objectcreationoperation", "true");
    }
    Ok(c)
}

fn truthy(headers: &HeaderMap, name: &str) -> bool {
    header_str(headers, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A request's headers, with a bit for each header that adds checks or
/// condition keys, noted in one pass over its names: looking the names up
/// by text parses and hashes each one (about 450 instructions a lookup,
/// 10 k for the twenty-two a PutObject asks about, which it rarely carries).
struct Seen<'h> {
    headers: &'h HeaderMap,
    /// Bit `slot(name)` for each name in the table present; [`ANY_GRANT`]
    /// for any `x-amz-grant-*`.
    bits: u32,
}

/// The bit of [`Seen::bits`] for any `x-amz-grant-*` header.
const ANY_GRANT: u32 = 1 << 31;

/// The bit of each header name [`Seen`] notes (the names of [`ACL_HEADERS`],
/// [`PUT_OBJECT_HEADERS`], object lock, tagging and the conditional PUT);
/// other names are looked up.
fn slot(name: &str) -> Option<u32> {
    Some(match name {
        "x-amz-acl" => 0,
        "x-amz-grant-full-control" => 1,
        "x-amz-grant-read" => 2,
        "x-amz-grant-read-acp" => 3,
        "x-amz-grant-write" => 4,
        "x-amz-grant-write-acp" => 5,
        "x-amz-server-side-encryption" => 6,
        "x-amz-server-side-encryption-aws-kms-key-id" => 7,
        "x-amz-server-side-encryption-customer-algorithm" => 8,
        "x-amz-storage-class" => 9,
        "x-amz-website-redirect-location" => 10,
        "x-amz-object-lock-mode" => 11,
        "x-amz-object-lock-legal-hold" => 12,
        "x-amz-object-lock-retain-until-date" => 13,
        "x-amz-tagging" => 14,
        "if-match" => 15,
        "if-none-match" => 16,
        _ => return None,
    })
}

impl<'h> Seen<'h> {
    fn of(headers: &'h HeaderMap) -> Seen<'h> {
        let mut bits = 0;
        for name in headers.keys() {
            let name = name.as_str();
            if let Some(bit) = slot(name) {
                bits |= 1 << bit;
            }
            if name.starts_with("x-amz-grant-") {
                bits |= ANY_GRANT;
            }
        }
        Seen { headers, bits }
    }

    /// As `HeaderMap::contains_key`.
    fn has(&self, name: &str) -> bool {
        match slot(name) {
            Some(bit) => self.bits & (1 << bit) != 0,
            None => self.headers.contains_key(name),
        }
    }

    /// As [`header_str`].
    fn get(&self, name: &str) -> Option<&'h str> {
        if self.has(name) {
            header_str(self.headers, name)
        } else {
            None
        }
    }

    fn any_grant(&self) -> bool {
        self.bits & ANY_GRANT != 0
    }
}

/// Copies the listed headers into the context as `s3:<header>` keys.
fn header_keys(ctx: &mut Context, seen: &Seen<'_>, names: &[&str]) {
    for name in names {
        if let Some(v) = seen.get(name) {
            ctx.set(&format!("s3:{name}"), v.trim());
        }
    }
}

const ACL_HEADERS: &[&str] = &[
    "x-amz-acl",
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
];

const PUT_OBJECT_HEADERS: &[&str] = &[
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-storage-class",
    "x-amz-website-redirect-location",
];

fn object_lock_keys(ctx: &mut Context, seen: &Seen<'_>) {
    if let Some(v) = seen.get("x-amz-object-lock-mode") {
        ctx.set_static("s3:object-lock-mode", v);
    }
    if let Some(v) = seen.get("x-amz-object-lock-legal-hold") {
        ctx.set_static("s3:object-lock-legal-hold", v);
    }
    if let Some(v) = seen.get("x-amz-object-lock-retain-until-date") {
        ctx.set_static("s3:object-lock-retain-until-date", v);
        if let Ok(until) = chrono::DateTime::parse_from_rfc3339(v) {
            let days = (until.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .num_days()
                .max(0);
            ctx.set_static("s3:object-lock-remaining-retention-days", days.to_string());
        }
    }
}

/// `x-amz-tagging` is a URL-encoded query string of tags.
fn request_tag_keys(ctx: &mut Context, seen: &Seen<'_>) -> Result<(), ClassifyError> {
    let Some(tagging) = seen.get("x-amz-tagging") else {
        return Ok(());
    };
    let tags = crate::auth::canonical::parse_query(tagging)
        .ok_or_else(|| ClassifyError::InvalidParameter("x-amz-tagging".into(), tagging.into()))?;
    let mut keys = Vec::with_capacity(tags.len());
    for (k, v) in tags {
        ctx.set(&format!("s3:RequestObjectTag/{k}"), v);
        keys.push(k.into_owned());
    }
    ctx.set_multi("s3:RequestObjectTagKeys", keys);
    Ok(())
}

/// The extra checks PutObject-like operations need for ACL, tagging and
/// object-lock headers, and their condition keys.
fn put_object_extras(
    c: &mut Classified,
    seen: &Seen<'_>,
    ctx: &mut Context,
    arn: &str,
) -> Result<(), ClassifyError> {
    header_keys(ctx, seen, ACL_HEADERS);
    header_keys(ctx, seen, PUT_OBJECT_HEADERS);
    object_lock_keys(ctx, seen);
    request_tag_keys(ctx, seen)?;
    let mut extra = |action| {
        c.checks.push(Check {
            action,
            resource: arn.to_string(),
        })
    };
    if seen.has("x-amz-acl") || seen.any_grant() {
        extra("s3:PutObjectAcl");
    }
    if seen.has("x-amz-tagging") {
        extra("s3:PutObjectTagging");
    }
    if seen.has("x-amz-object-lock-mode") || seen.has("x-amz-object-lock-retain-until-date") {
        extra("s3:PutObjectRetention");
    }
    if seen.has("x-amz-object-lock-legal-hold") {
        extra("s3:PutObjectLegalHold");
    }
    for name in ["if-match", "if-none-match"] {
        if let Some(v) = seen.get(name) {
            ctx.set(&format!("s3:{name}"), v);
        }
    }
    Ok(())
}

fn add_checks(
    c: &mut Classified,
    headers: &HeaderMap,
    query: &[QueryPair<'_>],
    ctx: &mut Context,
) -> Result<(), ClassifyError> {
    let bucket = c.bucket.as_deref().unwrap_or_default();
    let barn = bucket_arn(bucket);
    let oarn = object_arn(bucket, c.key.as_deref().unwrap_or_default());
    let versioned = c.version_id.is_some();
    if let Some(v) = &c.version_id {
        ctx.set_static("s3:versionid", v.as_str());
    }
    let push = |c: &mut Classified, action: &'static str, resource: &str| {
        c.checks.push(Check {
            action,
            resource: resource.to_string(),
        })
    };
    match c.operation {
        Operation::ListBuckets => push(c, "s3:ListAllMyBuckets", NO_RESOURCE),
        Operation::CreateBucket => {
            push(c, "s3:CreateBucket", &barn);
            let seen = &Seen::of(headers);
            header_keys(ctx, seen, ACL_HEADERS);
            header_keys(ctx, seen, &["x-amz-object-ownership"]);
            let acl = seen.get("x-amz-acl").is_some_and(|a| a != "private");
            if acl || seen.any_grant() {
                push(c, "s3:PutBucketAcl", &barn);
            }
            if truthy(headers, "x-amz-bucket-object-lock-enabled") {
                push(c, "s3:PutBucketObjectLockConfiguration", &barn);
                push(c, "s3:PutBucketVersioning", &barn);
            }
            if headers.contains_key("x-amz-object-ownership") {
                push(c, "s3:PutBucketOwnershipControls", &barn);
            }
        }
        Operation::DeleteBucket => push(c, "s3:DeleteBucket", &barn),
        Operation::HeadBucket => push(c, "s3:ListBucket", &barn),
        Operation::ListObjects | Operation::ListObjectsV2 | Operation::ListObjectVersions => {
            let action = if c.operation == Operation::ListObjectVersions {
                "s3:ListBucketVersions"
            } else {
                "s3:ListBucket"
            };
            push(c, action, &barn);
            // AWS's home-folder policies rely on an omitted prefix reading as "".
            ctx.set_static("s3:prefix", param(query, "prefix").unwrap_or(""));
            if let Some(d) = param(query, "delimiter") {
                ctx.set_static("s3:delimiter", d);
            }
            ctx.set_static("s3:max-keys", param(query, "max-keys").unwrap_or("1000"));
        }
        Operation::ListMultipartUploads => push(c, "s3:ListBucketMultipartUploads", &barn),
        // Per-key checks come from the body (see `delete_objects`).
        Operation::DeleteObjects => {}
        Operation::Bucket(sub, verb) => {
            let (_, action) = sub.operation(verb).ok_or(ClassifyError::MethodNotAllowed)?;
            push(c, action, &barn);
            if sub == BucketSub::Acl && verb == Verb::Put {
                header_keys(ctx, &Seen::of(headers), ACL_HEADERS);
            }
        }
        Operation::GetObject | Operation::HeadObject | Operation::SelectObjectContent => {
            let action = if versioned && c.operation != Operation::SelectObjectContent {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            };
            push(c, action, &oarn);
        }
        Operation::PutObject | Operation::CreateMultipartUpload => {
            push(c, "s3:PutObject", &oarn);
            put_object_extras(c, &Seen::of(headers), ctx, &oarn)?;
        }
        Operation::CopyObject | Operation::UploadPartCopy => {
            let raw = header_str(headers, &X_AMZ_COPY_SOURCE)
                .ok_or_else(|| ClassifyError::BadCopySource("not valid UTF-8".into()))?;
            let src = parse_copy_source(raw)?;
            push(c, "s3:PutObject", &oarn);
            if c.operation == Operation::CopyObject {
                let seen = &Seen::of(headers);
                put_object_extras(c, seen, ctx, &oarn)?;
                header_keys(ctx, seen, &["x-amz-metadata-directive"]);
            }
            ctx.set(
                "s3:x-amz-copy-source",
                format!("{}/{}", src.bucket, src.key),
            );
            let src_action = if src.version_id.is_some() {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            };
            push(c, src_action, &object_arn(&src.bucket, &src.key));
            c.copy_source = Some(src);
        }
        Operation::DeleteObject => {
            push(
                c,
                if versioned {
                    "s3:DeleteObjectVersion"
                } else {
                    "s3:DeleteObject"
                },
                &oarn,
            );
            if truthy(headers, "x-amz-bypass-governance-retention") {
                push(c, "s3:BypassGovernanceRetention", &oarn);
            }
        }
        Operation::UploadPart | Operation::CompleteMultipartUpload => {
            push(c, "s3:PutObject", &oarn)
        }
        Operation::AbortMultipartUpload => push(c, "s3:AbortMultipartUpload", &oarn),
        Operation::ListParts => push(c, "s3:ListMultipartUploadParts", &oarn),
        Operation::Object(sub, verb) => {
            let (_, actions) = sub
                .operation(verb, versioned)
                .ok_or(ClassifyError::MethodNotAllowed)?;
            for action in actions {
                push(c, action, &oarn);
            }
            match (sub, verb) {
                (ObjectSub::Acl, Verb::Put) => header_keys(ctx, &Seen::of(headers), ACL_HEADERS),
                (ObjectSub::Retention, Verb::Put)
                    if truthy(headers, "x-amz-bypass-governance-retention") =>
                {
                    push(c, "s3:BypassGovernanceRetention", &oarn);
                }
                _ => {}
            }
        }
        Operation::RestoreObject => push(c, "s3:RestoreObject", &oarn),
        Operation::PostObject => push(c, "s3:PutObject", &oarn),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
