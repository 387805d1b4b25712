//! `s3:ExistingObjectTag/<key>`: the tags stored on an object, read from the
//! upstream (`GET ?tagging`) before an object-level request on an existing
//! object is decided — only when a policy that decides for the caller reads
//! the key, so everyone else pays nothing.
//!
//! Read tags are cached briefly (a few seconds, a bounded number of objects);
//! the proxy's own writes to an object's tags or content drop its entry
//! before they are forwarded. A lookup that fails (other than "no such
//! object") refuses the request rather than deciding without the tags: a
//! Deny on a tag must never be skipped. The lookup is part of the request's
//! audit record (`parameters.existing_object_tags`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use http::{HeaderMap, Method};
use http_body_util::BodyExt;

use super::State;
use crate::audit::SharedGuard;
use crate::identity::Decider;
use crate::policy::Context;
use crate::s3::S3Error;
use crate::s3::classify::Classified;
use crate::upstream::Outgoing;

/// How long read tags are used without asking again.
const TTL: Duration = Duration::from_secs(5);
/// Objects whose tags are kept at once; past it the cache starts over.
const CAPACITY: usize = 10_000;
/// Largest tagging document read (S3 allows 10 tags of 128 + 256 characters).
const MAX_TAGGING: usize = 64 * 1024;

/// The actions for which S3 fills `s3:ExistingObjectTag/*`.
const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAcl",
    "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:GetObjectAttributes",
    "s3:GetObjectVersionAttributes",
];

/// Actions that may change an object's tags (a new object has new tags).
const WRITES: &[&str] = &[
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
];

type Tags = Arc<Vec<(String, String)>>;
/// Tags read at a moment, for one version of an object (`None`: the current one).
type Read = (Option<String>, Instant, Tags);

/// Recently read object tags, by bucket and key (so that a write drops every
/// version's entry in one step).
#[derive(Default)]
pub struct ObjectTagCache {
    entries: DashMap<(String, String), Vec<Read>>,
}

impl ObjectTagCache {
    fn get(&self, bucket: &str, key: &str, version: Option<&str>) -> Option<Tags> {
        let reads = self.entries.get(&(bucket.to_string(), key.to_string()))?;
        reads
            .iter()
            .find(|(v, at, _)| v.as_deref() == version && at.elapsed() < TTL)
            .map(|(_, _, t)| t.clone())
    }

    fn put(&self, bucket: &str, key: &str, version: Option<&str>, tags: Tags) {
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        let mut reads = self
            .entries
            .entry((bucket.to_string(), key.to_string()))
            .or_default();
        reads.retain(|(v, at, _)| v.as_deref() != version && at.elapsed() < TTL);
        reads.push((version.map(str::to_string), Instant::now(), tags));
    }

    /// Drops every cached version of an object.
    fn forget(&self, bucket: &str, key: &str) {
        if !self.entries.is_empty() {
            self.entries.remove(&(bucket.to_string(), key.to_string()));
        }
    }
}

/// Fills `s3:ExistingObjectTag/*` when the request and the caller's
/// policies need it, and drops cached tags that the request may change.
pub(super) async fn fill(
    state: &State,
    decider: &Decider<'_>,
    c: &Classified,
    context: &mut Context,
    audit: &SharedGuard,
) -> Result<(), S3Error> {
    let (Some(bucket), Some(key)) = (&c.bucket, &c.key) else {
        return Ok(());
    };
    if c.checks.iter().any(|ch| WRITES.contains(&ch.action)) {
        state.object_tags.forget(bucket, key);
    }
    if !c.checks.iter().any(|ch| ACTIONS.contains(&ch.action)) || !decider.needs_object_tags() {
        return Ok(());
    }
    let version = c.version_id.as_deref();
    let tags = match state.object_tags.get(bucket, key, version) {
        Some(t) => t,
        None => {
            // Boxed: a cache miss is rare; inline, this upstream exchange's
            // state would sit in every request's future.
            let t = Arc::new(Box::pin(read(state, bucket, key, version)).await?);
            state.object_tags.put(bucket, key, version, t.clone());
            t
        }
    };
    for (k, v) in tags.iter() {
        context.set(&format!("s3:ExistingObjectTag/{k}"), v.as_str());
    }
    let n = tags.len();
    audit.update(|r| r.parameters.existing_object_tags = Some(n as u64));
    Ok(())
}

/// The object's tags from upstream; none when the object does not exist
/// (the request itself then gets upstream's answer).
async fn read(
    state: &State,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Vec<(String, String)>, S3Error> {
    let mut query = vec![("tagging".to_string(), String::new())];
    if let Some(v) = version {
        query.push(("versionId".to_string(), v.to_string()));
    }
    let out = Outgoing::whole(
        Method::GET,
        Some(bucket.to_string()),
        Some(key.to_string()),
        query,
        HeaderMap::new(),
        bytes::Bytes::new(),
    );
    let unavailable = |detail: String| {
        S3Error::service_unavailable()
            .with_message("The object's tags could not be read to decide this request.")
            .with_internal_detail(detail)
    };
    let resp = state
        .upstream
        .send(out)
        .await
        .map_err(|e| unavailable(format!("reading object tags: {e}")))?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_TAGGING)
        .collect()
        .await
        .map_err(|e| unavailable(format!("reading object tags: {e}")))?
        .to_bytes();
    if status == http::StatusCode::NOT_FOUND {
        return Ok(Vec::new());
    }
    if !status.is_success() {
        return Err(unavailable(format!(
            "reading object tags: upstream answered {status}"
        )));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| unavailable("object tags are not UTF-8".into()))?;
    super::post_upload::parse_tagging(text)
        .map_err(|_| unavailable("object tags are not a Tagging document".into()))
}
