//! The SigV4 canonical request, with S3's rules: the path is used exactly as
//! received (never re-encoded or normalised), the query is decoded and
//! re-encoded in sorted order (or taken as sent when that would give it back,
//! see [`canonical_query_of`]), header values are trimmed with inner runs of
//! spaces collapsed, and repeated headers are joined with commas.
//!
//! The canonical request is written into a [`Sink`]: straight into the
//! SHA-256 state on the hot path (no buffer at all), or into a `Vec` when a
//! mismatch is logged or a test wants to look at it.

use std::borrow::Cow;

use sha2::Digest;

use super::RequestParts;

/// Characters left as they are by the SigV4 URI encoder: `A-Z a-z 0-9 - _ . ~`.
fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// [`is_unreserved`] by table: one load per byte where the comparisons
/// took several, on every name, value and key the proxy encodes or checks.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    table
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `s` percent-encoded with the SigV4 rules (uppercase hex); `/` is
/// kept when `keep_slash` (object key paths), encoded otherwise (query).
pub fn uri_encode_into(out: &mut String, s: &str, keep_slash: bool) {
    out.reserve(s.len());
    // Runs of bytes kept as they are (ASCII, so whole characters) are copied
    // at once: a key or a value is mostly such a run.
    let mut kept = s;
    while let Some(at) = kept
        .bytes()
        .position(|b| !(is_unreserved(b) || (keep_slash && b == b'/')))
    {
        out.push_str(&kept[..at]);
        // The byte to escape may begin a multibyte character: every byte of
        // it is escaped, then the run goes on after the character.
        let len = kept[at..].chars().next().map_or(1, char::len_utf8);
        for &b in &kept.as_bytes()[at..at + len] {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        kept = &kept[at + len..];
    }
    out.push_str(kept);
}

/// `s` percent-encoded with the SigV4 rules.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    uri_encode_into(&mut out, s, keep_slash);
    out
}

/// `s` percent-encoded, borrowed when nothing needed encoding (the common case
/// for query names and values such as `list-type=2`).
fn uri_encode_cow(s: &str) -> Cow<'_, str> {
    if s.bytes().all(is_unreserved) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(uri_encode(s, false))
    }
}

/// Percent-decodes a query component; `+` means a space, as S3 reads it.
/// Returns `None` when the result is not UTF-8.
pub fn query_decode(s: &str) -> Option<Cow<'_, str>> {
    let b = s.as_bytes();
    if memchr::memchr2(b'%', b'+', b).is_none() {
        return Some(Cow::Borrowed(s));
    }
    // One pass into one buffer of the right size, the runs between escapes
    // copied whole: presigned URLs carry encoded credentials and policies
    // on every request.
    let mut decoded = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(run) = memchr::memchr2(b'%', b'+', &b[i..]) {
        decoded.extend_from_slice(&b[i..i + run]);
        i += run;
        if b[i] == b'+' {
            decoded.push(b' ');
            i += 1;
            continue;
        }
        let hex = |at: usize| b.get(at).copied().and_then(hex_value);
        match (hex(i + 1), hex(i + 2)) {
            (Some(h), Some(l)) => {
                decoded.push(h << 4 | l);
                i += 3;
            }
            // Not an escape: the `%` stands for itself.
            _ => {
                decoded.push(b'%');
                i += 1;
            }
        }
    }
    decoded.extend_from_slice(&b[i..]);
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// One decoded query parameter: borrowed from the raw query unless decoding
/// changed it (a `%` escape or a `+`).
pub type QueryPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The `&`-separated parts of a raw query with the offset of each, empty
/// ones included.
fn query_parts(query: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at > query.len() {
            return None;
        }
        let rest = &query[at..];
        let len = memchr::memchr(b'&', rest.as_bytes()).unwrap_or(rest.len());
        let part = (at, &rest[..len]);
        at += len + 1;
        Some(part)
    })
}

/// A query part's name and value (empty when it has no `=`).
fn name_value(part: &str) -> (&str, &str) {
    match memchr::memchr(b'=', part.as_bytes()) {
        Some(i) => (&part[..i], &part[i + 1..]),
        None => (part, ""),
    }
}

/// Splits a raw query into decoded `(name, value)` pairs, in order.
/// A parameter without `=` has an empty value. `None` if any part is not UTF-8.
/// Nothing is copied for parameters that need no decoding (most names and
/// many values); a presigned URL's credential and signed headers are.
pub fn parse_query(query: &str) -> Option<Vec<QueryPair<'_>>> {
    if query.is_empty() {
        return Some(Vec::new());
    }
    // Sized once: a presigned URL carries eight or more parameters.
    let mut out = Vec::with_capacity(memchr::memchr_iter(b'&', query.as_bytes()).count() + 1);
    for (_, part) in query_parts(query) {
        if part.is_empty() {
            continue;
        }
        let (name, value) = name_value(part);
        out.push((query_decode(name)?, query_decode(value)?));
    }
    Some(out)
}

/// The canonical query string from decoded pairs, skipping `skip` (the
/// presigned `X-Amz-Signature`). Repeated names are kept and ordered by value.
pub fn canonical_query<N: AsRef<str>, V: AsRef<str>>(
    pairs: &[(N, V)],
    skip: Option<&str>,
) -> String {
    // One parameter (`x-id=GetObject`, `uploads`) needs no sorting.
    if let [(n, v)] = pairs
        && Some(n.as_ref()) != skip
    {
        let (n, v) = (uri_encode_cow(n.as_ref()), uri_encode_cow(v.as_ref()));
        let mut out = String::with_capacity(n.len() + v.len() + 1);
        out.push_str(&n);
        out.push('=');
        out.push_str(&v);
        return out;
    }
    let mut encoded: Vec<(Cow<'_, str>, Cow<'_, str>)> = pairs
        .iter()
        .filter(|(n, _)| Some(n.as_ref()) != skip)
        .map(|(n, v)| (uri_encode_cow(n.as_ref()), uri_encode_cow(v.as_ref())))
        .collect();
    encoded.sort_unstable();
    joined(&encoded)
}

/// Sorted encoded pairs as `n=v&n=v`.
fn joined<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> String {
    let len: usize = pairs
        .iter()
        .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = String::with_capacity(len);
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n.as_ref());
        out.push('=');
        out.push_str(v.as_ref());
    }
    out
}

/// The canonical query of the raw query `raw`, whose decoded pairs are
/// `pairs` (`parse_query(raw)`), skipping `skip`, a name of unreserved
/// characters (`X-Amz-Signature`).
///
/// SDKs send every name and value in canonical form already (unreserved
/// bytes as they are, the others as uppercase escapes); then the raw text is
/// the canonical text, and decoding and encoding it again would give it back.
/// It is used as it is when its parameters are in order (borrowed, with the
/// skipped one cut off the end, as SDK-made presigned URLs put it), and
/// sorted otherwise. Anything else takes [`canonical_query`]'s way.
pub fn canonical_query_of<'a>(
    raw: &'a str,
    pairs: &[QueryPair<'_>],
    skip: Option<&str>,
) -> Cow<'a, str> {
    debug_assert!(skip.is_none_or(|s| s.bytes().all(is_unreserved)));
    let as_sent = canonical_as_sent(raw, skip);
    debug_assert!(
        as_sent
            .as_deref()
            .is_none_or(|q| q == canonical_query(pairs, skip)),
        "{raw:?} read as sent gives {as_sent:?}"
    );
    as_sent.unwrap_or_else(|| Cow::Owned(canonical_query(pairs, skip)))
}

/// [`canonical_query_of`]'s text when every part of `raw` is a name, `=` and
/// a value, each in canonical form; `None` otherwise.
fn canonical_as_sent<'a>(raw: &'a str, skip: Option<&str>) -> Option<Cow<'a, str>> {
    if raw.is_empty() {
        return Some(Cow::Borrowed(raw));
    }
    let canonical_pairs = || {
        query_parts(raw).map(|(at, part)| {
            let eq = memchr::memchr(b'=', part.as_bytes())?;
            let (n, v) = (&part[..eq], &part[eq + 1..]);
            // The skipped value is not part of the text: never looked at.
            (is_canonical(n) && (Some(n) == skip || is_canonical(v))).then_some((at, n, v))
        })
    };
    let mut in_order = true;
    let mut cut = None;
    let mut last: Option<(&str, &str)> = None;
    for pair in canonical_pairs() {
        let (at, n, v) = pair?;
        if Some(n) == skip {
            if cut.is_some() {
                return None;
            }
            cut = Some(at);
        } else {
            in_order &= cut.is_none() && last.is_none_or(|l| l <= (n, v));
            last = Some((n, v));
        }
    }
    if in_order {
        // The skipped parameter, if any, came last: cut it and its `&` off.
        return Some(Cow::Borrowed(match cut {
            Some(at) => &raw[..at.saturating_sub(1)],
            None => raw,
        }));
    }
    let mut kept: Vec<(&str, &str)> = canonical_pairs()
        .flatten()
        .filter(|(_, n, _)| Some(*n) != skip)
        .map(|(_, n, v)| (n, v))
        .collect();
    kept.sort_unstable();
    Some(Cow::Owned(joined(&kept)))
}

/// True when decoding `s` and encoding it again gives `s`: unreserved bytes,
/// and uppercase escapes of the others.
fn is_canonical(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Eight at a time while all are unreserved, most of a query: the
        // table's answers and-ed together, not a branch per byte.
        if let Some(word) = b.get(i..i + 8)
            && word.iter().fold(true, |all, &c| all & is_unreserved(c))
        {
            i += 8;
            continue;
        }
        if is_unreserved(b[i]) {
            i += 1;
            continue;
        }
        match (
            b[i],
            b.get(i + 1).and_then(upper_hex),
            b.get(i + 2).and_then(upper_hex),
        ) {
            (b'%', Some(h), Some(l)) if !is_unreserved(h << 4 | l) => i += 3,
            _ => return false,
        }
    }
    true
}

fn upper_hex(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Where canonical request bytes go: a hash state or a buffer.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for sha2::Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Writes a header value trimmed, with inner runs of spaces collapsed to one.
/// Only the space character counts: S3 (and aws-sigv4's `trim_all`) leave a
/// tab inside a value as it is, so collapsing tabs would break signatures.
pub fn put_trimmed<S: Sink + ?Sized>(out: &mut S, value: &[u8]) {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    let mut rest = &value[start..end];
    // Emit maximal runs without a double space in one call each.
    while let Some(i) = rest.windows(2).position(|w| w == b"  ") {
        out.put(&rest[..=i]);
        let skip = rest[i..].iter().take_while(|&&b| b == b' ').count();
        rest = &rest[i + skip..];
    }
    out.put(rest);
}

/// Signed-header lists up to this long are collected in one pass.
const MAX_FAST_HEADERS: usize = 16;

/// Writes the canonical request for the given signed headers (lowercase
/// names, in the order listed) and payload hash string.
pub fn write_canonical_request<S: Sink + ?Sized>(
    out: &mut S,
    req: &RequestParts<'_>,
    canonical_query: &str,
    signed_headers: &[&str],
    signed_headers_raw: &str,
    payload_hash: &str,
) {
    out.put(req.method.as_bytes());
    out.put(b"\n");
    out.put(if req.path.is_empty() {
        b"/"
    } else {
        req.path.as_bytes()
    });
    out.put(b"\n");
    out.put(canonical_query.as_bytes());
    out.put(b"\n");
    // The values of the signed headers, found in one pass over the map: a
    // lookup by `&str` parses and hashes the name again for every header.
    // Names sent more than once (joined with commas) take the general path.
    let mut values: [Option<&http::HeaderValue>; MAX_FAST_HEADERS] = [None; MAX_FAST_HEADERS];
    let mut repeated: u32 = 0;
    let fast = signed_headers.len() <= MAX_FAST_HEADERS
        && !signed_headers
            .iter()
            .enumerate()
            .any(|(i, n)| signed_headers[..i].contains(n));
    if fast {
        for (name, value) in req.headers {
            if let Some(i) = signed_headers.iter().position(|s| *s == name.as_str()) {
                if values[i].is_some() {
                    repeated |= 1 << i;
                } else {
                    values[i] = Some(value);
                }
            }
        }
    }
    for (i, name) in signed_headers.iter().enumerate() {
        out.put(name.as_bytes());
        out.put(b":");
        let mut first = true;
        if fast && repeated & (1 << i) == 0 {
            if let Some(v) = values[i] {
                put_trimmed(out, v.as_bytes());
                first = false;
            }
        } else {
            for value in req.headers.get_all(*name) {
                if !first {
                    out.put(b",");
                }
                first = false;
                put_trimmed(out, value.as_bytes());
            }
        }
        if first
            && *name == "host"
            && let Some(authority) = req.authority
        {
            // HTTP/2 carries the host as the :authority pseudo-header.
            put_trimmed(out, authority.as_bytes());
        }
        out.put(b"\n");
    }
    out.put(b"\n");
    out.put(signed_headers_raw.as_bytes());
    out.put(b"\n");
    out.put(payload_hash.as_bytes());
}

/// The canonical request bytes (for logs and tests; verification hashes the
/// same bytes without collecting them).
pub fn canonical_request(
    req: &RequestParts<'_>,
    canonical_query: &str,
    signed_headers: &[&str],
    signed_headers_raw: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_canonical_request(
        &mut out,
        req,
        canonical_query,
        signed_headers,
        signed_headers_raw,
        payload_hash,
    );
    out
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    /// `+` to space, then percent-decoding as the percent-encoding crate
    /// does it.
    fn reference_decode(s: &str) -> Option<String> {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(&s.replace('+', " ")).collect();
        String::from_utf8(decoded).ok()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Escapes whole, cut short, in lowercase, of multibyte characters
        /// and of nothing valid, next to each other and at either end.
        #[test]
        fn query_decode_is_the_reference(s in "(%[0-9a-fA-F]{0,2}|%[g-z+%]|\\+|[a-z0-9/._~-]{0,6}|é|%C3%A9|%E2%82|\\PC){0,12}") {
            proptest::prop_assert_eq!(query_decode(&s).map(Cow::into_owned), reference_decode(&s));
        }
    }

    #[test]
    fn query_decode_reads_as_percent_encoding_with_plus_for_space() {
        let reference = reference_decode;
        for s in [
            "plain",
            "a+b%2Bc",
            "AKID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request",
            "%e2%82%AC",
            "%",
            "%4",
            "x%4",
            "%%41",
            "%+1",
            "%4+",
            "%zz%41",
            "%FF",
            "%C3",
            "%C3%A9+",
            "++",
            "100%",
        ] {
            assert_eq!(query_decode(s).map(Cow::into_owned), reference(s), "{s:?}");
        }
        assert!(matches!(query_decode("plain"), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn encoder_keeps_unreserved_and_uppercases_hex() {
        assert_eq!(uri_encode("a b/c~d*é", false), "a%20b%2Fc~d%2A%C3%A9");
        assert_eq!(uri_encode("a b/c", true), "a%20b/c");
    }

    proptest::proptest! {
        /// Copying runs of kept bytes at once writes what escaping byte by
        /// byte writes (SigV4's rule), multibyte characters included.
        #[test]
        fn encoding_by_runs_is_encoding_by_bytes(s in "([a-zA-Z0-9/ ._~%+=é😀-]|\\PC|[\\x00-\\x1f]){0,40}", keep_slash: bool) {
            let mut want = String::new();
            for &b in s.as_bytes() {
                if is_unreserved(b) || (keep_slash && b == b'/') {
                    want.push(b as char);
                } else {
                    want.push_str(&format!("%{b:02X}"));
                }
            }
            let mut got = String::from("x");
            uri_encode_into(&mut got, &s, keep_slash);
            proptest::prop_assert_eq!(&got[1..], want.as_str());
        }
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
    fn empty_and_odd_query_parameters() {
        let pairs = parse_query("&&a=&b&=v&c=%3D%26%7E&c=").unwrap();
        assert_eq!(canonical_query(&pairs, None), "=v&a=&b=&c=&c=%3D%26~");
        assert_eq!(canonical_query(&pairs, Some("c")), "=v&a=&b=");
        assert_eq!(canonical_query::<&str, &str>(&[], None), "");
    }

    /// A query as boto3 presigns it, and as the Rust SDK does (`x-id` first).
    const BOTO3: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd";
    const RUST_SDK: &str = "x-id=GetObject&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd";

    #[test]
    fn a_query_sent_in_canonical_form_is_its_own_canonical_text() {
        let skip = Some("X-Amz-Signature");
        let of = |raw| canonical_query_of(raw, &parse_query(raw).unwrap(), skip).into_owned();
        // In order, the signature last: the text as sent, less the signature.
        assert!(matches!(
            canonical_as_sent(BOTO3, skip),
            Some(Cow::Borrowed(_))
        ));
        let got = of(BOTO3);
        assert_eq!(got, BOTO3.strip_suffix("&X-Amz-Signature=abcd").unwrap());
        // Out of order: sorted, nothing decoded or encoded again.
        let got = of(RUST_SDK);
        assert_eq!(
            got,
            format!(
                "{}&x-id=GetObject",
                BOTO3.strip_suffix("&X-Amz-Signature=abcd").unwrap()
            )
        );
        assert_eq!(canonical_as_sent(RUST_SDK, skip), Some(Cow::Owned(got)));
        for (raw, want) in [
            ("", ""),
            ("X-Amz-Signature=abcd", ""),
            ("a=1&b=2", "a=1&b=2"),
            ("b=2&a=1", "a=1&b=2"),
            ("X-Amz-Signature=x&b=2&a=1", "a=1&b=2"),
            ("a=1&X-Amz-Signature=x&b=2", "a=1&b=2"),
            ("=v&a=%3D%26", "=v&a=%3D%26"),
        ] {
            assert_eq!(
                canonical_as_sent(raw, skip).as_deref(),
                Some(want),
                "{raw:?}"
            );
        }
        // Not canonical as sent: decoded and encoded again.
        for raw in [
            "a=%2f",
            "a=%7E",
            "a=b+c",
            "a=%",
            "a=%4",
            "a=é",
            "acl",
            "a=1&&b=2",
            "a=1&",
            "a=1&X-Amz-Signature=x&X-Amz-Signature=y",
        ] {
            assert_eq!(canonical_as_sent(raw, skip), None, "{raw:?}");
        }
        assert_eq!(of("b=%2f&a=%7E+"), "a=~%20&b=%2F");
    }

    /// Queries of up to six parts, most of their names and values in
    /// canonical form (so that whole queries often are), the others anything.
    fn queries() -> impl Strategy<Value = String> {
        const ANY: &str = "(%7E|%2f|%41|%[0-9A-Fa-f]{2}|%|[a-zA-Z0-9~._/+=é-]){0,5}";
        let name = proptest::prop_oneof![6 => "X-Amz-Signature|X-Amz-Date|a|b|x-id", 1 => ANY];
        let value = proptest::prop_oneof![
            6 => "=([a-zA-Z0-9~._-]|%2F|%20|%C3%A9){0,4}",
            // One flaw at most: an escape in lowercase or of an unreserved
            // byte, a `+`, a bare `%`.
            2 => "=[a-z0-9]{0,2}(%7E|%2f|%41|\\+|%)?[a-z0-9]{0,2}",
            1 => ANY.prop_map(|v| format!("={v}")),
            1 => "",
        ];
        proptest::collection::vec((name, value), 0..6).prop_map(|parts| {
            let parts: Vec<String> = parts.into_iter().map(|(n, v)| n + &v).collect();
            parts.join("&")
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Read as sent or decoded and encoded again, a query gives one
        /// canonical text.
        #[test]
        fn the_query_as_sent_gives_the_canonical_text_decoding_gives(
            raw in queries(),
            skip: bool,
        ) {
            let skip = skip.then_some("X-Amz-Signature");
            if let Some(pairs) = parse_query(&raw) {
                let want = canonical_query(&pairs, skip);
                if let Some(got) = canonical_as_sent(&raw, skip) {
                    proptest::prop_assert_eq!(got.as_ref(), want.as_str());
                }
                let got = canonical_query_of(&raw, &pairs, skip);
                proptest::prop_assert_eq!(got.as_ref(), want.as_str());
            }
        }
    }

    /// What [`is_canonical`] answers, a byte at a time.
    fn is_canonical_bytewise(s: &str) -> bool {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if is_unreserved(b[i]) {
                i += 1;
            } else if b[i] == b'%'
                && let (Some(h), Some(l)) = (
                    b.get(i + 1).and_then(upper_hex),
                    b.get(i + 2).and_then(upper_hex),
                )
                && !is_unreserved(h << 4 | l)
            {
                i += 3;
            } else {
                return false;
            }
        }
        true
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Long runs of unreserved bytes (checked eight at a time) with a
        /// flaw or an escape anywhere in them, cut short at any length.
        #[test]
        fn is_canonical_is_the_bytewise_check(
            run in "[a-zA-Z0-9~._-]{0,40}",
            at in 0usize..41,
            insert in "%2F|%7E|%2f|%41|%|%4|%G0|\\+|/| |=|&|é|%C3%A9|",
            tail in "([a-zA-Z0-9~._-]|%2F|%2f|%7E|\\+|%){0,12}",
            cut in 0usize..64,
        ) {
            let at = at.min(run.len());
            let whole = format!("{}{}{}{}", &run[..at], insert, &run[at..], tail);
            let mut end = cut.min(whole.len());
            while !whole.is_char_boundary(end) {
                end -= 1;
            }
            for text in [whole.as_str(), &whole[..end]] {
                proptest::prop_assert_eq!(is_canonical(text), is_canonical_bytewise(text), "{:?}", text);
            }
        }
    }

    #[test]
    fn is_canonical_finds_a_flaw_at_every_offset_of_a_word() {
        for len in 0..24 {
            let clean = "a".repeat(len);
            assert!(is_canonical(&clean));
            for at in 0..len {
                for flaw in ["+", "/", " ", "%", "%7E", "%2f", "~%"] {
                    let text = format!("{}{flaw}{}", &clean[..at], &clean[at..]);
                    assert_eq!(
                        is_canonical(&text),
                        is_canonical_bytewise(&text),
                        "{text:?}"
                    );
                    assert!(!is_canonical(&text), "{text:?}");
                }
                let escaped = format!("{}%2F{}", &clean[..at], &clean[at..]);
                assert!(is_canonical(&escaped), "{escaped:?}");
            }
        }
    }

    #[test]
    fn invalid_utf8_in_query_is_refused() {
        assert!(parse_query("prefix=%FF").is_none());
    }

    #[test]
    fn repeated_and_missing_headers() {
        let mut h = http::HeaderMap::new();
        h.append("x-amz-meta-a", "1".parse().unwrap());
        h.append("host", "h".parse().unwrap());
        h.append("x-amz-meta-a", " 2  3 ".parse().unwrap());
        let req = RequestParts {
            method: "GET",
            path: "",
            query: "",
            headers: &h,
            authority: None,
        };
        let names = ["host", "x-amz-meta-a", "x-amz-meta-b"];
        let text = canonical_request(
            &req,
            "",
            &names,
            "host;x-amz-meta-a;x-amz-meta-b",
            "UNSIGNED-PAYLOAD",
        );
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "GET\n/\n\nhost:h\nx-amz-meta-a:1,2 3\nx-amz-meta-b:\n\nhost;x-amz-meta-a;x-amz-meta-b\nUNSIGNED-PAYLOAD"
        );
        let h2 = http::HeaderMap::new();
        let req = RequestParts {
            headers: &h2,
            authority: Some("a:1"),
            ..req
        };
        let text = canonical_request(&req, "", &["host"], "host", "x");
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "GET\n/\n\nhost:a:1\n\nhost\nx"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"  a   b \t c  ", b"a b \t c"),
            (b"plain", b"plain"),
            (b"   ", b""),
            (b"a  b  c", b"a b c"),
            (b"a \t  b", b"a \t b"),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            put_trimmed(&mut out, input);
            assert_eq!(&out[..], *want, "{:?}", String::from_utf8_lossy(input));
        }
    }
}
