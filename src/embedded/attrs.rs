//! Object attributes the embedded store accepts at upload and returns later: content headers,
//! `x-amz-meta-*` user metadata, tags (`x-amz-tagging` and the tagging subresource) and storage
//! class, with S3's limits: user metadata at most 2 KB (`MetadataTooLarge`); at most 10 tags,
//! keys 1..=128 and values 0..=256 characters, unique keys (`InvalidTag`); known storage classes
//! only (`InvalidStorageClass`).

use super::records::{ContentHeaders, unix_secs};

use s3s::dto::{Metadata, StorageClass, Tag, Timestamp};
use s3s::{S3Result, s3_error};
use std::collections::BTreeMap;

const MAX_USER_METADATA: usize = 2 * 1024;
const MAX_TAGS: usize = 10;

/// The content headers of an upload request, as they will be stored.
pub(super) struct HeaderInput {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    pub website_redirect_location: Option<String>,
}

/// The content codings S3 stores: `aws-chunked` only describes how the
/// request body was framed, so S3 drops it (and the header when nothing else
/// is left).
fn without_aws_chunked(value: Option<String>) -> Option<String> {
    let value = value?;
    let rest: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!rest.is_empty()).then(|| rest.join(","))
}

impl HeaderInput {
    pub fn into_stored(self) -> ContentHeaders {
        ContentHeaders {
            content_type: self.content_type,
            content_encoding: without_aws_chunked(self.content_encoding),
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires.as_ref().map(unix_secs),
            website_redirect_location: self.website_redirect_location,
        }
    }
}

/// The content headers of an upload input (PutObject, CopyObject, CreateMultipartUpload).
macro_rules! header_input {
    ($input:expr) => {
        $crate::embedded::attrs::HeaderInput {
            content_type: $input.content_type,
            content_encoding: $input.content_encoding,
            content_disposition: $input.content_disposition,
            content_language: $input.content_language,
            cache_control: $input.cache_control,
            expires: $input.expires,
            website_redirect_location: $input.website_redirect_location,
        }
    };
}
pub(super) use header_input;

/// Checks user metadata against S3's 2 KB limit (keys and values, UTF-8 bytes).
pub(super) fn user_metadata(metadata: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = metadata.unwrap_or_default().into_iter().collect();
    let size: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size."
        ));
    }
    Ok(map)
}

pub(super) fn metadata_out(map: &BTreeMap<String, String>) -> Option<Metadata> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Checks a tag set against S3's rules.
pub(super) fn validate_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(s3_error!(
            InvalidTag,
            "Object tags cannot be greater than 10"
        ));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(s3_error!(
                InvalidTag,
                "The TagKey you have provided is invalid"
            ));
        }
        if v.chars().count() > 256 {
            return Err(s3_error!(
                InvalidTag,
                "The TagValue you have provided is invalid"
            ));
        }
        if tags.iter().take(i).any(|(other, _)| other == k) {
            return Err(s3_error!(
                InvalidTag,
                "Cannot provide multiple Tags with the same key"
            ));
        }
    }
    Ok(())
}

/// Parses `x-amz-tagging` (`k1=v1&k2=v2`, URL-encoded) into a validated tag set.
pub(super) fn tagging_header(header: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(header) = header else {
        return Ok(Vec::new());
    };
    let tags: Vec<(String, String)> = form_urlencoded::parse(header.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    validate_tags(&tags)?;
    Ok(tags)
}

/// A tag set from a PutObjectTagging body, validated.
pub(super) fn tags_from_dto(tag_set: Vec<Tag>) -> S3Result<Vec<(String, String)>> {
    let tags: Vec<(String, String)> = tag_set
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    validate_tags(&tags)?;
    Ok(tags)
}

pub(super) fn tags_to_dto(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// The storage class to record (STANDARD when none was asked for).
pub(super) fn storage_class(requested: Option<&StorageClass>) -> S3Result<String> {
    const KNOWN: [&str; 10] = [
        StorageClass::STANDARD,
        StorageClass::REDUCED_REDUNDANCY,
        StorageClass::STANDARD_IA,
        StorageClass::ONEZONE_IA,
        StorageClass::INTELLIGENT_TIERING,
        StorageClass::GLACIER,
        StorageClass::DEEP_ARCHIVE,
        StorageClass::GLACIER_IR,
        StorageClass::OUTPOSTS,
        StorageClass::EXPRESS_ONEZONE,
    ];
    match requested {
        None => Ok(StorageClass::STANDARD.to_owned()),
        Some(c) if KNOWN.contains(&c.as_str()) => Ok(c.as_str().to_owned()),
        Some(_) => Err(s3_error!(
            InvalidStorageClass,
            "The storage class you specified is not valid"
        )),
    }
}

/// S3 sends `x-amz-storage-class` only for classes other than STANDARD.
pub(super) fn storage_class_out(stored: &str) -> Option<StorageClass> {
    (stored != StorageClass::STANDARD).then(|| StorageClass::from(stored.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn aws_chunked_is_not_stored() {
        let f = |v: &str| super::without_aws_chunked(Some(v.to_string()));
        assert_eq!(f("aws-chunked"), None);
        assert_eq!(f("aws-chunked,gzip"), Some("gzip".to_string()));
        assert_eq!(f("gzip, AWS-CHUNKED, br"), Some("gzip,br".to_string()));
        assert_eq!(f("gzip"), Some("gzip".to_string()));
        assert_eq!(super::without_aws_chunked(None), None);
    }

    use super::*;
    use s3s::S3ErrorCode;

    #[test]
    fn metadata_limit() {
        let ok: Metadata = [("k".to_owned(), "v".repeat(2000))].into_iter().collect();
        assert!(user_metadata(Some(ok)).is_ok());
        let big: Metadata = [("k".to_owned(), "v".repeat(2048))].into_iter().collect();
        assert_eq!(
            user_metadata(Some(big)).unwrap_err().code(),
            &S3ErrorCode::MetadataTooLarge
        );
    }

    #[test]
    fn tagging_header_is_url_decoded_and_validated() {
        let tags = tagging_header(Some("a=1&b%20c=d%2Be")).expect("tags");
        assert_eq!(
            tags,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b c".to_owned(), "d+e".to_owned())
            ]
        );
        assert_eq!(
            tagging_header(Some("a=1&a=2")).unwrap_err().code(),
            &S3ErrorCode::InvalidTag
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            tagging_header(Some(&eleven.join("&"))).unwrap_err().code(),
            &S3ErrorCode::InvalidTag
        );
        assert_eq!(
            tagging_header(Some("=v")).unwrap_err().code(),
            &S3ErrorCode::InvalidTag
        );
        assert!(tagging_header(None).map(|t| t.is_empty()).unwrap_or(false));
    }

    #[test]
    fn storage_classes() {
        assert_eq!(storage_class(None).ok().as_deref(), Some("STANDARD"));
        let ia = StorageClass::from("STANDARD_IA".to_owned());
        assert_eq!(
            storage_class(Some(&ia)).ok().as_deref(),
            Some("STANDARD_IA")
        );
        let bad = StorageClass::from("CHEAP".to_owned());
        assert_eq!(
            storage_class(Some(&bad)).unwrap_err().code(),
            &S3ErrorCode::InvalidStorageClass
        );
        assert!(storage_class_out("STANDARD").is_none());
    }
}
