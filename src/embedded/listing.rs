//! Listing and pagination for the embedded store, as S3 does it for ListObjects,
//! ListObjectsV2 and ListMultipartUploads: keys in UTF-8 byte order, filtered by `prefix`, keys
//! sharing `prefix + ... + delimiter` rolled up into one CommonPrefix, a page of at most
//! `max-keys` entries (objects and common prefixes together, capped at 1000), and a resume point
//! after which the next page starts.
//!
//! A page resumes strictly after a key or common prefix. When a common prefix was the last
//! entry of a page, every key under it is skipped on the next one, so a group is never reported
//! twice — S3's rule, and what makes `NextMarker` / `NextContinuationToken` work.

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use s3s::{S3Result, s3_error};

/// S3 never returns more than 1000 entries per page, whatever `max-keys` asks for.
pub(super) const MAX_PAGE: usize = 1000;

#[derive(Debug, Clone, Copy)]
pub(super) struct Query<'a> {
    pub prefix: &'a str,
    /// `None` when absent or empty (S3 treats an empty delimiter as none).
    pub delimiter: Option<&'a str>,
    /// Resume strictly after this (marker, start-after, or decoded continuation token).
    pub after: Option<&'a str>,
    pub max: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry<'a, T> {
    Item(&'a str, T),
    Prefix(String),
}

impl<T> Entry<'_, T> {
    pub fn name(&self) -> &str {
        match self {
            Entry::Item(key, _) => key,
            Entry::Prefix(p) => p,
        }
    }
}

#[derive(Debug)]
pub(super) struct Page<'a, T> {
    pub entries: Vec<Entry<'a, T>>,
    pub truncated: bool,
}

impl<T> Page<'_, T> {
    /// Where the next page resumes: the last key or common prefix of this one, if truncated.
    pub fn next_after(&self) -> Option<&str> {
        if self.truncated {
            self.entries.last().map(Entry::name)
        } else {
            None
        }
    }
}

/// Lists one page.
///
/// `seek(bound)` must yield `(key, item)` in ascending key order, starting at `bound`. It is
/// called again with a later bound to jump over the keys of a common prefix.
pub(super) fn paginate<'a, T, I, F>(q: &Query<'_>, mut seek: F) -> Page<'a, T>
where
    I: Iterator<Item = (&'a str, T)>,
    F: FnMut(Bound<&str>) -> I,
{
    let mut page = Page {
        entries: Vec::new(),
        truncated: false,
    };
    if q.max == 0 {
        return page;
    }
    let mut start: Bound<String> = match q.after {
        Some(after) if after >= q.prefix => Bound::Excluded(after.to_owned()),
        _ => Bound::Included(q.prefix.to_owned()),
    };
    'seek: loop {
        for (key, item) in seek(start.as_ref().map(String::as_str)) {
            // Keys at or after the prefix that do not start with it sort after all that do.
            if !key.starts_with(q.prefix) {
                break 'seek;
            }
            if let Some(cp) = q.delimiter.and_then(|d| common_prefix(key, q.prefix, d)) {
                // A group that sorts at or before the resume point was reported already.
                if q.after.is_none_or(|after| cp > after) {
                    if page.entries.len() == q.max {
                        page.truncated = true;
                        break 'seek;
                    }
                    page.entries.push(Entry::Prefix(cp.to_owned()));
                }
                match successor(cp) {
                    Some(next) => {
                        start = Bound::Included(next);
                        continue 'seek;
                    }
                    None => break 'seek,
                }
            }
            if page.entries.len() == q.max {
                page.truncated = true;
                break 'seek;
            }
            page.entries.push(Entry::Item(key, item));
        }
        break;
    }
    page
}

/// `prefix + (the rest of key up to and including the first delimiter)`, if there is one.
pub(super) fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    let rest = key.get(prefix.len()..)?;
    rest.find(delimiter)
        .map(|i| &key[..prefix.len() + i + delimiter.len()])
}

/// The smallest string greater than every string that starts with `s` (None if there is none).
fn successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(c) = chars.pop() {
        let next = match c as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The page size for `max-keys` / `max-uploads` / `max-parts`.
pub(super) fn page_size(requested: Option<i32>, name: &str) -> S3Result<usize> {
    match requested {
        None => Ok(MAX_PAGE),
        Some(n) => usize::try_from(n).map(|n| n.min(MAX_PAGE)).map_err(|_| {
            s3_error!(
                InvalidArgument,
                "Argument {name} must be an integer between 0 and 2147483647"
            )
        }),
    }
}

/// ListObjectsV2 continuation tokens: opaque to clients, the resume key inside.
pub(super) fn encode_token(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(after.as_bytes())
}

pub(super) fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

/// Checks `encoding-type`; true when names in the response must be URL-encoded.
pub(super) fn url_encoding(encoding_type: Option<&str>) -> S3Result<bool> {
    match encoding_type {
        None => Ok(false),
        Some(t) if t.eq_ignore_ascii_case("url") => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

/// URL-encodes a name for `encoding-type=url` the way S3 does: form-style (space as `+`),
/// leaving unreserved characters, `/` and `*` as they are.
pub(super) fn url_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn map(keys: &[&str]) -> BTreeMap<String, ()> {
        keys.iter().map(|k| ((*k).to_owned(), ())).collect()
    }

    fn list(m: &BTreeMap<String, ()>, q: Query<'_>) -> (Vec<String>, bool, Option<String>) {
        let page = paginate(&q, |b| {
            m.range::<str, _>((b, Bound::Unbounded))
                .map(|(k, v)| (k.as_str(), v))
        });
        let names = page
            .entries
            .iter()
            .map(|e| match e {
                Entry::Item(k, _) => (*k).to_owned(),
                Entry::Prefix(p) => format!("CP:{p}"),
            })
            .collect();
        (names, page.truncated, page.next_after().map(str::to_owned))
    }

    fn q<'a>(
        prefix: &'a str,
        delimiter: Option<&'a str>,
        after: Option<&'a str>,
        max: usize,
    ) -> Query<'a> {
        Query {
            prefix,
            delimiter,
            after,
            max,
        }
    }

    #[test]
    fn flat_listing_with_prefix() {
        let m = map(&["a", "b/1", "b/2", "c"]);
        let (names, truncated, _) = list(&m, q("b/", None, None, 1000));
        assert_eq!(names, ["b/1", "b/2"]);
        assert!(!truncated);
    }

    #[test]
    fn delimiter_rolls_up_common_prefixes() {
        let m = map(&[
            "a.txt",
            "photos/2006/jan.jpg",
            "photos/2006/feb.jpg",
            "photos/x.jpg",
            "z",
        ]);
        let (names, _, _) = list(&m, q("", Some("/"), None, 1000));
        assert_eq!(names, ["a.txt", "CP:photos/", "z"]);
        let (names, _, _) = list(&m, q("photos/", Some("/"), None, 1000));
        assert_eq!(names, ["CP:photos/2006/", "photos/x.jpg"]);
    }

    #[test]
    fn odd_keys_are_distinct_and_in_byte_order() {
        let m = map(&[
            "a/../b",
            "a//b",
            "a/b",
            "x/",
            "sp ace+plus%pct",
            "\u{e9}t\u{e9}",
            "\u{1F600}",
        ]);
        let (names, _, _) = list(&m, q("", None, None, 1000));
        assert_eq!(
            names,
            [
                "a/../b",
                "a//b",
                "a/b",
                "sp ace+plus%pct",
                "x/",
                "\u{e9}t\u{e9}",
                "\u{1F600}"
            ]
        );
        let (names, _, _) = list(&m, q("a/", Some("/"), None, 1000));
        assert_eq!(names, ["CP:a/../", "CP:a//", "a/b"]);
    }

    #[test]
    fn pages_count_prefixes_and_resume_after_them() {
        let m = map(&["a", "b/1", "b/2", "b/3", "c", "d/1"]);
        let (names, truncated, next) = list(&m, q("", Some("/"), None, 2));
        assert_eq!(names, ["a", "CP:b/"]);
        assert!(truncated);
        assert_eq!(next.as_deref(), Some("b/"));
        // Resuming after a common prefix skips every key under it.
        let (names, truncated, next) = list(&m, q("", Some("/"), Some("b/"), 2));
        assert_eq!(names, ["c", "CP:d/"]);
        assert!(!truncated);
        assert_eq!(next, None);
    }

    #[test]
    fn exact_fit_is_not_truncated() {
        let m = map(&["a", "b"]);
        let (names, truncated, _) = list(&m, q("", None, None, 2));
        assert_eq!(names, ["a", "b"]);
        assert!(!truncated);
        let (names, truncated, next) = list(&m, q("", None, None, 1));
        assert_eq!(names, ["a"]);
        assert!(truncated);
        assert_eq!(next.as_deref(), Some("a"));
    }

    #[test]
    fn zero_max_keys_is_an_empty_untruncated_page() {
        let m = map(&["a"]);
        let (names, truncated, _) = list(&m, q("", None, None, 0));
        assert!(names.is_empty());
        assert!(!truncated);
    }

    #[test]
    fn start_after_inside_a_group_skips_the_group() {
        // start-after "b/1" lies inside group "b/": the group began before the resume point.
        let m = map(&["a", "b/1", "b/2", "c"]);
        let (names, _, _) = list(&m, q("", Some("/"), Some("b/1"), 10));
        assert_eq!(names, ["c"]);
        // Without a delimiter the keys after it are listed.
        let (names, _, _) = list(&m, q("", None, Some("b/1"), 10));
        assert_eq!(names, ["b/2", "c"]);
    }

    #[test]
    fn marker_before_prefix_starts_at_prefix() {
        let m = map(&["a", "m/1", "m/2", "z"]);
        let (names, _, _) = list(&m, q("m/", None, Some("b"), 10));
        assert_eq!(names, ["m/1", "m/2"]);
        let (names, _, _) = list(&m, q("m/", None, Some("zz"), 10));
        assert!(names.is_empty());
    }

    #[test]
    fn multi_character_delimiter() {
        let m = map(&["a--b--c", "a--d", "ab"]);
        let (names, _, _) = list(&m, q("", Some("--"), None, 10));
        assert_eq!(names, ["CP:a--", "ab"]);
    }

    #[test]
    fn groups_of_keys_with_maximal_characters_are_skipped_once() {
        let m = map(&["p/\u{10FFFF}", "p/\u{10FFFF}\u{10FFFF}x", "q"]);
        let (names, _, _) = list(&m, q("", Some("/"), None, 10));
        assert_eq!(names, ["CP:p/", "q"]);
        assert_eq!(successor("\u{10FFFF}"), None);
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("ab/").as_deref(), Some("ab0"));
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None, "max-keys").ok(), Some(1000));
        assert_eq!(page_size(Some(5000), "max-keys").ok(), Some(1000));
        assert_eq!(page_size(Some(0), "max-keys").ok(), Some(0));
        assert!(page_size(Some(-1), "max-keys").is_err());
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let key = "sp ace/\u{1F600}/..//";
        assert_eq!(decode_token(&encode_token(key)).ok().as_deref(), Some(key));
        assert!(decode_token("%%%").is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode([0xff, 0xfe])).is_err());
    }

    #[test]
    fn url_encoding_like_s3() {
        assert_eq!(url_encode("a b+c/d*e~f%\u{e9}"), "a+b%2Bc/d*e%7Ef%25%C3%A9");
        assert!(url_encoding(Some("url")).unwrap_or(false));
        assert!(!url_encoding(None).unwrap_or(true));
        assert!(url_encoding(Some("base64")).is_err());
    }
}
