//! The SigV4 canonical request, with S3's rules: the path is used exactly as
//! received (never re-encoded or normalised), the query is decoded and
//! re-encoded in sorted order, header values are trimmed with inner runs of
//! spaces collapsed, and repeated headers are joined with commas.

use std::borrow::Cow;

use super::RequestParts;

/// Characters left as they are by the SigV4 URI encoder: `A-Z a-z 0-9 - _ . ~`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `s` percent-encoded with the SigV4 rules (uppercase hex); `/` is
/// kept when `keep_slash` (object key paths), encoded otherwise (query).
pub fn uri_encode_into(out: &mut String, s: &str, keep_slash: bool) {
    for &b in s.as_bytes() {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// `s` percent-encoded with the SigV4 rules.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    uri_encode_into(&mut out, s, keep_slash);
    out
}

/// Percent-decodes a query component; `+` means a space, as S3 reads it.
/// Returns `None` when the result is not UTF-8.
pub fn query_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(s));
    }
    let replaced = s.replace('+', " ");
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(&replaced).collect();
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

/// Splits a raw query into decoded `(name, value)` pairs, in order.
/// A parameter without `=` has an empty value. `None` if any part is not UTF-8.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in query.split('&') {
        if part.is_empty() {
            continue;
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        out.push((
            query_decode(name)?.into_owned(),
            query_decode(value)?.into_owned(),
        ));
    }
    Some(out)
}

/// The canonical query string from decoded pairs, skipping `skip` (the
/// presigned `X-Amz-Signature`).
pub fn canonical_query(pairs: &[(String, String)], skip: Option<&str>) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|(n, _)| Some(n.as_str()) != skip)
        .map(|(n, v)| (uri_encode(n, false), uri_encode(v, false)))
        .collect();
    encoded.sort_unstable();
    let mut out = String::new();
    for (i, (n, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Appends a header value trimmed, with inner runs of spaces collapsed to one.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let trimmed = value.trim_ascii();
    let mut last_space = false;
    for &b in trimmed {
        if b == b' ' || b == b'\t' {
            if !last_space {
                out.push(b' ');
            }
            last_space = true;
        } else {
            out.push(b);
            last_space = false;
        }
    }
}

/// Builds the canonical request bytes for the given signed headers (lowercase
/// names, as listed in the signature) and payload hash string.
pub fn canonical_request(
    req: &RequestParts<'_>,
    canonical_query: &str,
    signed_headers: &[&str],
    signed_headers_raw: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(if req.path.is_empty() {
        b"/"
    } else {
        req.path.as_bytes()
    });
    out.push(b'\n');
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for value in req.headers.get_all(*name) {
            if !first {
                out.push(b',');
            }
            first = false;
            push_trimmed(&mut out, value.as_bytes());
        }
        if first && *name == "host" {
            // HTTP/2 carries the host as the :authority pseudo-header.
            if let Some(authority) = req.authority {
                push_trimmed(&mut out, authority.as_bytes());
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers_raw.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_keeps_unreserved_and_uppercases_hex() {
        assert_eq!(uri_encode("a b/c~d*é", false), "a%20b%2Fc~d%2A%C3%A9");
        assert_eq!(uri_encode("a b/c", true), "a%20b/c");
    }

    #[test]
    fn query_is_decoded_sorted_and_reencoded() {
        let pairs = parse_query("prefix=a%2Fb+c&acl&list-type=2&b=2&b=1").unwrap();
        assert_eq!(
            canonical_query(&pairs, None),
            "acl=&b=1&b=2&list-type=2&prefix=a%2Fb%20c"
        );
    }

    #[test]
    fn invalid_utf8_in_query_is_refused() {
        assert!(parse_query("prefix=%FF").is_none());
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b c");
    }
}
