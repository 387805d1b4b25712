//! A record's request parameters and response elements, CloudTrail-style:
//! what a reviewer needs to know which objects, prefixes and identities a
//! request touched — list prefixes, copy sources, each key of a multi-object
//! delete with its outcome, multipart upload ids, ranges, the targets of IAM
//! and STS calls and the access key ids they issued. Never a secret, session
//! token or signature: values are picked by name, never copied wholesale,
//! and a session policy is recorded by its hash.

use crate::auth::canonical::QueryPair;
use http::HeaderMap;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The source of a copy (`x-amz-copy-source`), as authorized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopySourceInfo {
    pub bucket: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// What happened to one key of a multi-object delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectOutcome {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `denied` (by the proxy, never sent upstream), `deleted`, or `error`
    /// (upstream refused it; see `error_code`).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// A tag sent with an IAM or STS call, as CloudTrail lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagParam {
    pub key: String,
    pub value: String,
}

/// The request's parameters; only those present are written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parameters {
    // Listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_after: Option<String>,
    /// ListObjects (v1) and ListObjectVersions / ListMultipartUploads markers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_keys: Option<u64>,
    // Copies, multipart uploads, ranges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_source: Option<CopySourceInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_number: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// How many stored tags were read from upstream to fill
    /// `s3:ExistingObjectTag/*` for this decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_object_tags: Option<u64>,
    /// DeleteObjects: every key asked for, with its outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectOutcome>,
    // IAM and STS targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_arn: Option<String>,
    /// The access key an IAM call acts on (UpdateAccessKey, DeleteAccessKey).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// GetFederationToken's `Name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    /// SHA-256 of a session policy or policy document sent with the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<String>,
    /// Its text, when `[audit] session_policy = "text"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `Tags` sent with the call: session tags (AssumeRole,
    /// GetFederationToken) or tags put on an entity (TagUser, CreateRole, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagParam>,
    /// AssumeRole's `TransitiveTagKeys`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// The `TagKeys` an Untag call removes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_keys: Vec<String>,
}

/// The values of a query-protocol list `NAME.member.1`, `NAME.member.2`, …
/// up to the first gap (IAM and STS take at most 50 of any).
fn members<'a>(get: &impl Fn(&str) -> Option<&'a str>, name: &str) -> Vec<String> {
    (1..=50)
        .map_while(|i| get(&format!("{name}.member.{i}")).map(str::to_string))
        .collect()
}

impl Parameters {
    pub fn is_empty(&self) -> bool {
        *self == Parameters::default()
    }

    /// The parameters of an S3 request: its decoded query, headers, and the
    /// copy source classification authorized.
    pub fn from_s3(
        query: &[QueryPair<'_>],
        headers: &HeaderMap,
        copy_source: Option<CopySourceInfo>,
    ) -> Parameters {
        // One pass over the query (every request has one, a presigned one
        // six parameters or more), keeping each name's first value.
        let mut first: [Option<&str>; 9] = [None; 9];
        for (n, v) in query {
            let slot = match n.as_ref() {
                "prefix" => 0,
                "delimiter" => 1,
                "start-after" => 2,
                "marker" => 3,
                "key-marker" => 4,
                "max-keys" => 5,
                "max-uploads" => 6,
                "uploadId" => 7,
                "partNumber" => 8,
                _ => continue,
            };
            first[slot].get_or_insert(v);
        }
        let [
            prefix,
            delimiter,
            start_after,
            marker,
            key_marker,
            max_keys,
            max_uploads,
            upload_id,
            part_number,
        ] = first;
        let owned = |v: Option<&str>| v.map(str::to_string);
        Parameters {
            prefix: owned(prefix),
            delimiter: owned(delimiter),
            start_after: owned(start_after),
            marker: owned(marker.or(key_marker)),
            max_keys: max_keys.or(max_uploads).and_then(|v| v.parse().ok()),
            copy_source,
            upload_id: owned(upload_id),
            part_number: part_number.and_then(|v| v.parse().ok()),
            range: headers
                .get(http::header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            ..Parameters::default()
        }
    }

    /// The targets of an IAM or STS call, from its form parameters; a policy
    /// sent with it by its hash, and by its text too when `policy_text`.
    pub fn from_api<'a>(get: impl Fn(&str) -> Option<&'a str>, policy_text: bool) -> Parameters {
        let s = |name: &str| get(name).map(str::to_string);
        let policy = get("Policy").or_else(|| get("PolicyDocument"));
        Parameters {
            user_name: s("UserName"),
            new_user_name: s("NewUserName"),
            group_name: s("GroupName"),
            role_name: s("RoleName"),
            role_arn: s("RoleArn"),
            role_session_name: s("RoleSessionName"),
            policy_name: s("PolicyName"),
            policy_arn: s("PolicyArn"),
            access_key_id: s("AccessKeyId"),
            federated_name: s("Name"),
            duration_seconds: get("DurationSeconds").and_then(|v| v.parse().ok()),
            policy_sha256: policy.map(|p| hex::encode(Sha256::digest(p.as_bytes()))),
            policy: policy.filter(|_| policy_text).map(str::to_string),
            tags: (1..=50)
                .map_while(|i| {
                    Some(TagParam {
                        key: get(&format!("Tags.member.{i}.Key"))?.to_string(),
                        value: get(&format!("Tags.member.{i}.Value"))
                            .unwrap_or("")
                            .to_string(),
                    })
                })
                .collect(),
            transitive_tag_keys: members(&get, "TransitiveTagKeys"),
            tag_keys: members(&get, "TagKeys"),
            ..Parameters::default()
        }
    }
}

/// What the response handed out, CloudTrail's `responseElements`: only the
/// access key id of issued credentials, never their secret or token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResponseElements {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_access_key_id: Option<String>,
}

impl ResponseElements {
    pub fn is_empty(&self) -> bool {
        *self == ResponseElements::default()
    }

    /// From an IAM or STS response body: the `AccessKeyId` of the
    /// credentials or access key it issued.
    pub fn from_api_response(xml: &str) -> ResponseElements {
        let issued = xml
            .split_once("<AccessKeyId>")
            .and_then(|(_, rest)| rest.split_once("</AccessKeyId>"))
            .map(|(id, _)| id.trim().to_string())
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        ResponseElements {
            issued_access_key_id: issued,
        }
    }
}

/// The per-key outcomes of a `DeleteResult` from upstream: keys it names as
/// `<Deleted>` or `<Error>` (with the error's code). A quiet delete names
/// only errors; the caller counts the rest as deleted.
pub fn delete_result_outcomes(xml: &str) -> Vec<ObjectOutcome> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut entry: Option<ObjectOutcome> = None;
    let mut field: Option<Vec<u8>> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().as_bytes().to_vec();
                match name.as_slice() {
                    b"Deleted" | b"Error" => {
                        entry = Some(ObjectOutcome {
                            key: String::new(),
                            version_id: None,
                            outcome: if name == b"Deleted" {
                                "deleted"
                            } else {
                                "error"
                            },
                            error_code: None,
                        })
                    }
                    _ => field = Some(name),
                }
            }
            Ok(Event::Text(t)) => {
                if let (Some(e), Some(f)) = (entry.as_mut(), field.as_deref()) {
                    let raw = t.into_inner();
                    let text = quick_xml::escape::unescape(&raw)
                        .map(|u| u.into_owned())
                        .unwrap_or_else(|_| raw.to_string());
                    match f {
                        b"Key" => e.key.push_str(&text),
                        b"VersionId" => e.version_id = Some(text),
                        b"Code" if e.outcome == "error" => e.error_code = Some(text),
                        _ => {}
                    }
                }
            }
            Ok(Event::GeneralRef(r)) => {
                // Entities inside a key (`&amp;`) arrive as references.
                if let (Some(e), Some(b"Key")) = (entry.as_mut(), field.as_deref()) {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        e.key.push(c);
                    } else if let Some(c) = quick_xml::escape::resolve_xml_entity(&r.into_inner()) {
                        e.key.push_str(c);
                    }
                }
            }
            Ok(Event::End(e)) => {
                let name = e.local_name().as_ref().as_bytes().to_vec();
                if name == b"Deleted" || name == b"Error" {
                    out.extend(entry.take());
                }
                field = None;
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_parameters_are_picked_by_name() {
        let query: Vec<QueryPair<'_>> = [
            ("list-type", "2"),
            ("prefix", "bob/"),
            ("delimiter", "/"),
            ("start-after", "bob/a"),
            ("max-keys", "50"),
            ("X-Amz-Signature", "secret-ish"),
        ]
        .iter()
        .map(|&(a, b)| (a.into(), b.into()))
        .collect();
        let mut headers = HeaderMap::new();
        headers.insert("range", "bytes=0-99".parse().unwrap());
        let p = Parameters::from_s3(&query, &headers, None);
        assert_eq!(p.prefix.as_deref(), Some("bob/"));
        assert_eq!(p.delimiter.as_deref(), Some("/"));
        assert_eq!(p.start_after.as_deref(), Some("bob/a"));
        assert_eq!(p.max_keys, Some(50));
        assert_eq!(p.range.as_deref(), Some("bytes=0-99"));
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("secret-ish"), "{json}");
        assert!(Parameters::from_s3(&[], &HeaderMap::new(), None).is_empty());
    }

    #[test]
    fn s3_parameters_take_the_first_value_and_the_preferred_name() {
        let pairs = |list: &[(&'static str, &'static str)]| -> Vec<QueryPair<'static>> {
            list.iter().map(|&(a, b)| (a.into(), b.into())).collect()
        };
        let none = HeaderMap::new();
        // A repeated name: the first value, as before for each name alone.
        let p = Parameters::from_s3(
            &pairs(&[
                ("uploadId", "u1"),
                ("partNumber", "3"),
                ("uploadId", "u2"),
                ("partNumber", "4"),
                ("prefix", "a"),
                ("prefix", "b"),
            ]),
            &none,
            None,
        );
        assert_eq!(p.upload_id.as_deref(), Some("u1"));
        assert_eq!(p.part_number, Some(3));
        assert_eq!(p.prefix.as_deref(), Some("a"));
        // `marker` wins over `key-marker` and `max-keys` over `max-uploads`
        // wherever each stands; alone, the other is taken.
        let p = Parameters::from_s3(
            &pairs(&[
                ("key-marker", "k"),
                ("max-uploads", "7"),
                ("marker", "m"),
                ("max-keys", "9"),
            ]),
            &none,
            None,
        );
        assert_eq!((p.marker.as_deref(), p.max_keys), (Some("m"), Some(9)));
        let p = Parameters::from_s3(
            &pairs(&[("key-marker", "k"), ("max-uploads", "7")]),
            &none,
            None,
        );
        assert_eq!((p.marker.as_deref(), p.max_keys), (Some("k"), Some(7)));
        // Names are matched exactly: case and near-misses pick nothing, and
        // a number that does not parse is left out.
        let p = Parameters::from_s3(
            &pairs(&[
                ("Prefix", "x"),
                ("uploadid", "x"),
                ("partnumber", "1"),
                ("max-keys", "many"),
            ]),
            &none,
            None,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn api_targets_hash_the_policy_and_skip_secrets() {
        let form = [
            ("Action", "GetFederationToken"),
            ("Name", "upload"),
            ("DurationSeconds", "900"),
            ("Policy", "{\"Version\":\"2012-10-17\"}"),
            ("SecretAccessKey", "never"),
        ];
        let get = |n: &str| form.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!(
            Parameters::from_api(get, true).policy.as_deref(),
            Some(form[3].1)
        );
        let p = Parameters::from_api(get, false);
        assert_eq!(p.federated_name.as_deref(), Some("upload"));
        assert_eq!(p.duration_seconds, Some(900));
        assert_eq!(
            p.policy_sha256.as_deref(),
            Some(hex::encode(Sha256::digest(form[3].1.as_bytes())).as_str())
        );
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            !json.contains("never") && !json.contains("Version"),
            "{json}"
        );
    }

    #[test]
    fn api_tags_transitive_keys_and_untagged_keys_are_listed_in_order() {
        let form = [
            ("Action", "AssumeRole"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "photos"),
            ("Tags.member.2.Key", "cost"),
            ("Tags.member.2.Value", ""),
            // After a gap: not part of the list, as for the API itself.
            ("Tags.member.4.Key", "stray"),
            ("Tags.member.4.Value", "x"),
            ("TransitiveTagKeys.member.1", "team"),
            ("TagKeys.member.1", "old"),
            ("TagKeys.member.2", "older"),
        ];
        let get = |n: &str| form.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        let p = Parameters::from_api(get, false);
        assert_eq!(
            serde_json::to_value(&p.tags).unwrap(),
            serde_json::json!([{"key": "team", "value": "photos"}, {"key": "cost", "value": ""}])
        );
        assert_eq!(p.transitive_tag_keys, ["team"]);
        assert_eq!(p.tag_keys, ["old", "older"]);
        let none = Parameters::from_api(|_: &str| None, false);
        assert!(none.is_empty());
    }

    #[test]
    fn issued_key_id_is_read_and_nothing_else() {
        let xml = "<Credentials><AccessKeyId>ASIAXYZ123</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken></Credentials>";
        assert_eq!(
            ResponseElements::from_api_response(xml).issued_access_key_id,
            Some("ASIAXYZ123".into())
        );
        assert!(ResponseElements::from_api_response("<User/>").is_empty());
    }

    #[test]
    fn delete_results_give_each_key_its_outcome() {
        let xml = r#"<?xml version="1.0"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>a &amp; b</Key></Deleted><Error><Key>c</Key><VersionId>v1</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error><Deleted><Key>d</Key></Deleted></DeleteResult>"#;
        let o = delete_result_outcomes(xml);
        assert_eq!(
            o,
            [
                ObjectOutcome {
                    key: "a & b".into(),
                    version_id: None,
                    outcome: "deleted",
                    error_code: None
                },
                ObjectOutcome {
                    key: "c".into(),
                    version_id: Some("v1".into()),
                    outcome: "error",
                    error_code: Some("AccessDenied".into())
                },
                ObjectOutcome {
                    key: "d".into(),
                    version_id: None,
                    outcome: "deleted",
                    error_code: None
                },
            ]
        );
    }
}
