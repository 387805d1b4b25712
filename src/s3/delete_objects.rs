//! Multi-object delete (`POST /bucket?delete`): the request body names every
//! key, so every key is authorized on its own. Denied keys are removed from
//! what is forwarded and reported back as per-key `AccessDenied` errors inside
//! a 200 `DeleteResult`, as S3 reports keys a bucket policy denies.

use serde::Deserialize;

use super::address::validate_key;
use super::error::xml_escape;

/// S3 accepts at most this many keys in one request.
pub const MAX_KEYS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectIdentifier {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
    #[serde(rename = "ETag", default)]
    pub etag: Option<String>,
    #[serde(rename = "LastModifiedTime", default)]
    pub last_modified_time: Option<String>,
    #[serde(rename = "Size", default)]
    pub size: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename = "Delete")]
pub struct DeleteRequest {
    #[serde(rename = "@xmlns", default)]
    xmlns: Option<String>,
    #[serde(rename = "Object", default)]
    pub objects: Vec<ObjectIdentifier>,
    #[serde(rename = "Quiet", default)]
    pub quiet: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteObjectsError {
    #[error("delete request is not valid XML: {0}")]
    Malformed(String),
    #[error("delete request names {0} keys; at most 1000 are allowed")]
    TooManyKeys(usize),
    #[error("delete request names no keys")]
    NoKeys,
    #[error("delete request has an invalid key")]
    InvalidKey,
}

impl DeleteRequest {
    pub fn parse(body: &[u8]) -> Result<DeleteRequest, DeleteObjectsError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| DeleteObjectsError::Malformed("not UTF-8".into()))?;
        let req: DeleteRequest = quick_xml::de::from_str(text)
            .map_err(|e| DeleteObjectsError::Malformed(e.to_string()))?;
        if req.objects.is_empty() {
            return Err(DeleteObjectsError::NoKeys);
        }
        if req.objects.len() > MAX_KEYS {
            return Err(DeleteObjectsError::TooManyKeys(req.objects.len()));
        }
        if req
            .objects
            .iter()
            .any(|o| o.key.is_empty() || validate_key(&o.key).is_err())
        {
            return Err(DeleteObjectsError::InvalidKey);
        }
        Ok(req)
    }

    /// The XML for the given subset of objects, with the same Quiet setting.
    pub fn to_xml(&self, objects: &[&ObjectIdentifier]) -> String {
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        if let Some(q) = self.quiet {
            out.push_str(if q {
                "<Quiet>true</Quiet>"
            } else {
                "<Quiet>false</Quiet>"
            });
        }
        for o in objects {
            out.push_str("<Object>");
            element(&mut out, "Key", Some(&o.key));
            element(&mut out, "VersionId", o.version_id.as_deref());
            element(&mut out, "ETag", o.etag.as_deref());
            element(
                &mut out,
                "LastModifiedTime",
                o.last_modified_time.as_deref(),
            );
            element(&mut out, "Size", o.size.as_deref());
            out.push_str("</Object>");
        }
        out.push_str("</Delete>");
        out
    }
}

fn element(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        out.push('<');
        out.push_str(name);
        out.push('>');
        out.push_str(&xml_escape(v));
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

/// `<Error>` entries for keys the principal may not delete.
pub fn denied_errors(denied: &[&ObjectIdentifier]) -> String {
    let mut out = String::new();
    for o in denied {
        out.push_str("<Error>");
        element(&mut out, "Key", Some(&o.key));
        element(&mut out, "VersionId", o.version_id.as_deref());
        out.push_str("<Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
    }
    out
}

/// A `DeleteResult` holding only the given error entries.
pub fn result_with(errors: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{errors}</DeleteResult>"
    )
}

/// Adds error entries to upstream's `DeleteResult` document. `None` if the
/// document is not a DeleteResult (then the caller reports an upstream fault).
pub fn merge_into_result(upstream: &str, errors: &str) -> Option<String> {
    if let Some(pos) = upstream.rfind("</DeleteResult>") {
        let mut out = String::with_capacity(upstream.len() + errors.len());
        out.push_str(&upstream[..pos]);
        out.push_str(errors);
        out.push_str(&upstream[pos..]);
        return Some(out);
    }
    // A quiet delete with no failures may come back as `<DeleteResult .../>`.
    let start = upstream.find("<DeleteResult")?;
    let end = start + upstream[start..].find("/>")?;
    let mut out = String::with_capacity(upstream.len() + errors.len() + 16);
    out.push_str(&upstream[..end]);
    out.push('>');
    out.push_str(errors);
    out.push_str("</DeleteResult>");
    out.push_str(&upstream[end + 2..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a/1 &amp; 2</Key></Object><Object><Key>b</Key><VersionId>v1</VersionId></Object><Quiet>true</Quiet></Delete>"#;

    #[test]
    fn parses_keys_versions_and_quiet() {
        let r = DeleteRequest::parse(BODY.as_bytes()).unwrap();
        assert_eq!(r.objects.len(), 2);
        assert_eq!(r.objects[0].key, "a/1 & 2");
        assert_eq!(r.objects[1].version_id.as_deref(), Some("v1"));
        assert_eq!(r.quiet, Some(true));
    }

    #[test]
    fn rebuilt_subset_round_trips() {
        let r = DeleteRequest::parse(BODY.as_bytes()).unwrap();
        let xml = r.to_xml(&[&r.objects[0]]);
        let again = DeleteRequest::parse(xml.as_bytes()).unwrap();
        assert_eq!(again.objects, vec![r.objects[0].clone()]);
        assert_eq!(again.quiet, Some(true));
    }

    #[test]
    fn refuses_unknown_elements_and_empty_or_huge_requests() {
        assert!(
            DeleteRequest::parse(b"<Delete><Object><Key>a</Key><Evil>x</Evil></Object></Delete>")
                .is_err()
        );
        assert_eq!(
            DeleteRequest::parse(b"<Delete></Delete>"),
            Err(DeleteObjectsError::NoKeys)
        );
        let many: String = (0..1001)
            .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
            .collect();
        assert_eq!(
            DeleteRequest::parse(format!("<Delete>{many}</Delete>").as_bytes()),
            Err(DeleteObjectsError::TooManyKeys(1001))
        );
        assert!(DeleteRequest::parse(b"not xml").is_err());
    }

    #[test]
    fn merges_errors_into_either_result_form() {
        let errs = "<Error><Key>x</Key></Error>";
        let merged = merge_into_result(
            "<DeleteResult><Deleted><Key>a</Key></Deleted></DeleteResult>",
            errs,
        )
        .unwrap();
        assert!(merged.ends_with("<Error><Key>x</Key></Error></DeleteResult>"));
        let merged =
            merge_into_result("<?xml version=\"1.0\"?><DeleteResult xmlns=\"n\"/>", errs).unwrap();
        assert_eq!(
            merged,
            "<?xml version=\"1.0\"?><DeleteResult xmlns=\"n\"><Error><Key>x</Key></Error></DeleteResult>"
        );
        assert!(merge_into_result("<Other/>", errs).is_none());
    }
}
