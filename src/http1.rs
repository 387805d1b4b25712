//! HTTP/1.1 framing that both of the proxy's HTTP/1 connections read the
//! same way: the client's (`server::http1`) and upstream's (`upstream::h1`).
//! Chunked bodies, `Content-Length` values, transfer codings and connection
//! tokens, each parsed strictly (RFC 9112), since a proxy that reads a
//! message's end differently from its peer can be made to smuggle one.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};

/// A chunk-size line, or one trailer line, at most.
pub const MAX_LINE: usize = 4 * 1024;
/// All trailer lines of a chunked body at most.
pub const MAX_TRAILERS: usize = 16 * 1024;
/// What to read when a chunked body needs its next line.
const LINE_READ: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("malformed chunked body")]
    Chunk,
    #[error("invalid Content-Length")]
    Length,
    #[error("message framed by both Transfer-Encoding and Content-Length")]
    TwoFramings,
    #[error("a transfer coding other than chunked alone")]
    Coding,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// In a chunk's data, this much left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines; this many bytes of them so far.
    Trailers(usize),
    /// Past the last trailer line.
    End,
}

/// What one step through a chunked body gave.
#[derive(Debug)]
pub enum Step {
    Data(Bytes),
    /// Parsed a size line, a data end or a trailer line.
    Moved,
    /// The buffer does not hold the next piece yet.
    NeedMore,
    /// The body ended (with this step or before).
    End,
}

impl Chunk {
    /// Takes the next step through the body from what `buf` holds, taking
    /// what it used from the buffer. Trailers are read and dropped: S3 sends
    /// none, and neither side could tell relayed ones from made-up ones.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, FramingError> {
        if *self == Chunk::End {
            return Ok(Step::End);
        }
        if buf.is_empty() {
            return Ok(Step::NeedMore);
        }
        match *self {
            Chunk::Size => {
                let Some(end) = line_end(buf)? else {
                    return Ok(Step::NeedMore);
                };
                let size = chunk_size(&buf[..end])?;
                buf.advance(end + 2);
                *self = if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                };
                Ok(Step::Moved)
            }
            Chunk::Trailers(seen) => {
                let Some(end) = line_end(buf)? else {
                    return Ok(Step::NeedMore);
                };
                let seen = seen + end + 2;
                if seen > MAX_TRAILERS || (end > 0 && !is_field_line(&buf[..end])) {
                    return Err(FramingError::Chunk);
                }
                buf.advance(end + 2);
                if end == 0 {
                    *self = Chunk::End;
                    return Ok(Step::End);
                }
                *self = Chunk::Trailers(seen);
                Ok(Step::Moved)
            }
            Chunk::Data(left) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let data = buf.split_to(n).freeze();
                let left = left - n as u64;
                *self = if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                };
                Ok(Step::Data(data))
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Step::NeedMore);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(FramingError::Chunk);
                }
                buf.advance(2);
                *self = Chunk::Size;
                Ok(Step::Moved)
            }
            Chunk::End => Ok(Step::End),
        }
    }

    /// How much to read when [`Chunk::step`] needs more: the rest of a
    /// chunk's data, else a line's worth.
    pub fn want(&self) -> usize {
        match *self {
            Chunk::Data(left) => usize::try_from(left).unwrap_or(usize::MAX),
            _ => LINE_READ,
        }
    }
}

/// Where the line at the buffer's start ends (the index of its CR), if
/// the buffer holds all of it; a line longer than [`MAX_LINE`] is refused.
fn line_end(buf: &[u8]) -> Result<Option<usize>, FramingError> {
    match buf.windows(2).take(MAX_LINE + 1).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some(end)),
        None if buf.len() > MAX_LINE => Err(FramingError::Chunk),
        None => Ok(None),
    }
}

/// A chunk-size line: hex digits, then optional extensions (ignored).
fn chunk_size(line: &[u8]) -> Result<u64, FramingError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(FramingError::Chunk);
    }
    // Only spaces and tabs may come between the size and an extension.
    let rest = &line[digits..];
    let blank = rest
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    let rest = &rest[blank..];
    if !rest.is_empty() && rest[0] != b';' {
        return Err(FramingError::Chunk);
    }
    // An extension is not read, but it may hold no control byte: a bare LF
    // or CR in it would end the line for a peer that reads lines by LF,
    // which would then see a different chunk than this side does.
    if rest.iter().any(|b| is_control(*b)) {
        return Err(FramingError::Chunk);
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| FramingError::Chunk)?;
    u64::from_str_radix(hex, 16).map_err(|_| FramingError::Chunk)
}

/// Headers in one message head at most (as hyper).
pub const MAX_HEADERS: usize = 100;

/// Where a parsed header's name and value lie in the buffer parsed:
/// name start and end, value start and end.
pub type Span = (u32, u32, u32, u32);

/// Notes where each of `headers` (parsed by httparse from `buf`) lies in
/// `buf`, so that the head can be taken from the buffer and its header
/// values share its bytes (see [`header_map`]).
pub fn header_spans(buf: &[u8], headers: &[httparse::Header<'_>], at: &mut [Span]) {
    for (slot, h) in at.iter_mut().zip(headers) {
        let (name, value) = (range_in(buf, h.name.as_bytes()), range_in(buf, h.value));
        *slot = (name.0, name.1, value.0, value.1);
    }
}

/// Where `part`, a slice httparse took of `buf`, lies in it: start and end.
pub fn range_in(buf: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize - buf.as_ptr() as usize) as u32;
    (start, start + part.len() as u32)
}

/// A header httparse took that `http` refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHeader {
    Name,
    Value,
}

/// The headers of `head` at `spans` (see [`header_spans`]), their values
/// slices of `head` rather than copies.
pub fn header_map(head: &Bytes, spans: &[Span]) -> Result<HeaderMap, BadHeader> {
    let mut map = HeaderMap::with_capacity(spans.len());
    for &(n0, n1, v0, v1) in spans {
        let bytes = &head[n0 as usize..n1 as usize];
        let name = match common_name(bytes) {
            Some(name) => {
                debug_assert_eq!(
                    Some(&name),
                    http::HeaderName::from_bytes(bytes).ok().as_ref()
                );
                name
            }
            None => http::HeaderName::from_bytes(bytes).map_err(|_| BadHeader::Name)?,
        };
        let value = http::HeaderValue::from_maybe_shared(head.slice(v0 as usize..v1 as usize))
            .map_err(|_| BadHeader::Value)?;
        map.append(name, value);
    }
    Ok(map)
}

/// Names S3's clients and S3 send on every request and answer, in the
/// spellings they send them, made once: `HeaderName::from_bytes` lowercases
/// each name through a table, checks it is UTF-8 and copies a name that is
/// not one of its own constants, about 200 instructions a name.
static X_AMZ_USER_AGENT: http::HeaderName = http::HeaderName::from_static("x-amz-user-agent");
pub(crate) static X_AMZ_REQUEST_ID: http::HeaderName =
    http::HeaderName::from_static("x-amz-request-id");
pub(crate) static X_AMZ_ID_2: http::HeaderName = http::HeaderName::from_static("x-amz-id-2");
static AMZ_SDK_INVOCATION_ID: http::HeaderName =
    http::HeaderName::from_static("amz-sdk-invocation-id");
static AMZ_SDK_REQUEST: http::HeaderName = http::HeaderName::from_static("amz-sdk-request");
static KEEP_ALIVE: http::HeaderName = http::HeaderName::from_static("keep-alive");
static CONTENT_MD5: http::HeaderName = http::HeaderName::from_static("content-md5");

/// The name `bytes` spell when it is one of the usual ones, spelled as
/// usual; `None` leaves it to `HeaderName::from_bytes`.
fn common_name(bytes: &[u8]) -> Option<http::HeaderName> {
    use crate::auth::{X_AMZ_CONTENT_SHA256, X_AMZ_DATE, X_AMZ_SECURITY_TOKEN};
    use http::header as h;
    Some(match bytes {
        b"Host" | b"host" => h::HOST,
        b"Date" | b"date" => h::DATE,
        b"ETag" | b"etag" | b"Etag" => h::ETAG,
        b"Range" | b"range" => h::RANGE,
        b"Accept" | b"accept" => h::ACCEPT,
        b"Expect" | b"expect" => h::EXPECT,
        b"Server" | b"server" => h::SERVER,
        b"Connection" | b"connection" => h::CONNECTION,
        b"User-Agent" | b"user-agent" => h::USER_AGENT,
        b"Keep-Alive" | b"keep-alive" => KEEP_ALIVE.clone(),
        b"Content-MD5" | b"content-md5" | b"Content-Md5" => CONTENT_MD5.clone(),
        b"Content-Type" | b"content-type" => h::CONTENT_TYPE,
        b"Accept-Ranges" | b"accept-ranges" => h::ACCEPT_RANGES,
        b"Authorization" | b"authorization" => h::AUTHORIZATION,
        b"Last-Modified" | b"last-modified" => h::LAST_MODIFIED,
        b"Content-Length" | b"content-length" => h::CONTENT_LENGTH,
        b"Accept-Encoding" | b"accept-encoding" => h::ACCEPT_ENCODING,
        b"Transfer-Encoding" | b"transfer-encoding" => h::TRANSFER_ENCODING,
        b"X-Amz-Date" | b"x-amz-date" => X_AMZ_DATE.clone(),
        b"x-amz-id-2" => X_AMZ_ID_2.clone(),
        b"amz-sdk-request" => AMZ_SDK_REQUEST.clone(),
        b"x-amz-request-id" => X_AMZ_REQUEST_ID.clone(),
        b"x-amz-user-agent" | b"X-Amz-User-Agent" => X_AMZ_USER_AGENT.clone(),
        b"amz-sdk-invocation-id" => AMZ_SDK_INVOCATION_ID.clone(),
        b"X-Amz-Content-SHA256" | b"x-amz-content-sha256" => X_AMZ_CONTENT_SHA256.clone(),
        b"X-Amz-Security-Token" | b"x-amz-security-token" => X_AMZ_SECURITY_TOKEN.clone(),
        _ => return None,
    })
}

/// A control byte other than HTAB (RFC 9110 §5.5: not allowed in a field).
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// A trailer line: a token, a colon, a value without control bytes. Not
/// relayed, but read strictly: a line a peer would read otherwise (a bare
/// LF ending it early) is refused.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    !name.is_empty() && name.iter().all(|b| is_tchar(*b)) && !value.iter().any(|b| is_control(*b))
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Digits only: `u64::from_str` would also take a leading `+`, which a
/// Content-Length may not have. Parsed by hand for that, and to refuse
/// more than 19 digits (always below `u64::MAX`) without overflow checks.
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// How a message's body is delimited by its headers alone (RFC 9112 §6.3),
/// refusing what two parsers could read two ways: both headers, differing
/// lengths, a coding other than `chunked` alone, or a transfer coding in
/// an HTTP/1.0 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    Chunked,
    Length(u64),
    /// Neither header.
    None,
}

pub fn declared_framing(headers: &HeaderMap, http11: bool) -> Result<Declared, FramingError> {
    if headers.contains_key(TRANSFER_ENCODING) {
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(FramingError::TwoFramings);
        }
        let mut codings = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(|c| c.trim_ascii());
        let only_chunked = matches!(codings.next(), Some(c) if c.eq_ignore_ascii_case(b"chunked"))
            && codings.next().is_none();
        if !only_chunked || !http11 {
            return Err(FramingError::Coding);
        }
        return Ok(Declared::Chunked);
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = parse_decimal(part.trim_ascii()).ok_or(FramingError::Length)?;
            if length.is_some_and(|l| l != n) {
                return Err(FramingError::Length);
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Declared::None, Declared::Length))
}

/// Whether the `Connection` header lists `token` (case-insensitively).
pub fn has_connection_token(headers: &HeaderMap, token: &[u8]) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Every usual spelling is made once and is the name `from_bytes` makes
    /// of it; any other spelling of those names, in any case, is left to
    /// `from_bytes`, never named wrongly.
    #[test]
    fn usual_header_names_are_the_names_from_bytes_makes() {
        let usual = [
            "Host",
            "Date",
            "ETag",
            "Etag",
            "Range",
            "Accept",
            "Expect",
            "Server",
            "Connection",
            "User-Agent",
            "Keep-Alive",
            "Content-MD5",
            "Content-Md5",
            "Content-Type",
            "Accept-Ranges",
            "Authorization",
            "Last-Modified",
            "Content-Length",
            "Accept-Encoding",
            "Transfer-Encoding",
            "X-Amz-Date",
            "x-amz-id-2",
            "amz-sdk-request",
            "x-amz-request-id",
            "X-Amz-User-Agent",
            "amz-sdk-invocation-id",
            "X-Amz-Content-SHA256",
            "X-Amz-Security-Token",
        ];
        let title = |s: &str| {
            let mut up = true;
            s.chars()
                .map(|c| {
                    let out = if up {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                    up = c == '-';
                    out
                })
                .collect::<String>()
        };
        for name in usual {
            for spelling in [name.to_string(), name.to_ascii_lowercase()] {
                let made = common_name(spelling.as_bytes())
                    .unwrap_or_else(|| panic!("{spelling} is not made once"));
                let parsed = http::HeaderName::from_bytes(spelling.as_bytes()).unwrap();
                assert_eq!(made, parsed, "{spelling}");
                assert_eq!(made.as_str(), name.to_ascii_lowercase());
            }
            let upper = name.to_ascii_uppercase();
            let mut near = vec![upper, title(name), format!("{name} "), format!("{name}x")];
            near.push(name[..name.len() - 1].to_string());
            for spelling in near {
                if let Some(made) = common_name(spelling.as_bytes()) {
                    assert_eq!(
                        made,
                        http::HeaderName::from_bytes(spelling.as_bytes()).unwrap()
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// Any bytes: a name made once is the one `from_bytes` makes.
        #[test]
        fn a_name_made_once_is_never_another(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        ) {
            if let Some(made) = common_name(&bytes) {
                proptest::prop_assert_eq!(Some(made), http::HeaderName::from_bytes(&bytes).ok());
            }
        }
    }

    fn decode(body: &[u8]) -> Result<(Vec<u8>, usize), FramingError> {
        let mut buf = BytesMut::from(body);
        let mut chunk = Chunk::Size;
        let mut out = Vec::new();
        loop {
            match chunk.step(&mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::Moved => {}
                Step::NeedMore => return Err(FramingError::Chunk),
                Step::End => return Ok((out, buf.len())),
            }
        }
    }

    #[test]
    fn chunked_bodies_end_at_their_last_chunk_and_leave_what_follows() {
        let (data, rest) = decode(b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nx-t: 1\r\n\r\nGET").unwrap();
        assert_eq!(data, b"abcde");
        assert_eq!(rest, 3);
        assert!(decode(b"3\r\nabcX\r\n0\r\n\r\n").is_err());
        assert!(decode(b"+3\r\nabc\r\n0\r\n\r\n").is_err());
        assert!(decode(b"3 x\r\nabc\r\n0\r\n\r\n").is_err());
        assert!(decode(b"11111111111111111\r\n").is_err());
    }

    #[test]
    fn chunk_sizes_allow_blanks_only_before_an_extension() {
        assert_eq!(chunk_size(b"1f").unwrap(), 31);
        assert_eq!(chunk_size(b"5 \t;name=value").unwrap(), 5);
        assert_eq!(chunk_size(b"5;").unwrap(), 5);
        for bad in [
            &b""[..],
            b";x",
            b"5\x0c",
            b"5\n",
            b"5 6",
            b"0x5",
            b"-5",
            b"11111111111111111",
        ] {
            assert!(chunk_size(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn bare_line_ends_and_control_bytes_are_refused_in_chunk_lines_and_trailers() {
        // A front proxy ending lines at LF would see other chunks than this
        // side: refused, as hyper refuses them.
        for body in [
            &b"5;a\nBBBBB\r\n3C\r\nX\r\n0\r\n\r\n"[..],
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            b"5;a\x00\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nx-t: 1\nGET / HTTP/1.1\r\n\r\n",
            b"5\r\nhello\r\n0\r\nnot a field\r\n\r\n",
            b"5\r\nhello\r\n0\r\n: empty name\r\n\r\n",
        ] {
            assert_eq!(
                decode(body),
                Err(FramingError::Chunk),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            decode(b"5;a=\"b c\"\t;d\r\nhello\r\n0\r\nx-t: 1\t2\r\n\r\n")
                .unwrap()
                .0,
            b"hello"
        );
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn framing_is_refused_where_two_readings_are_possible() {
        use Declared::*;
        let ok = |h: &[(&'static str, &'static str)]| declared_framing(&headers(h), true);
        assert_eq!(ok(&[]), Ok(None));
        assert_eq!(ok(&[("content-length", "5")]), Ok(Length(5)));
        assert_eq!(ok(&[("content-length", "5, 5")]), Ok(Length(5)));
        assert_eq!(
            ok(&[("content-length", "5"), ("content-length", "5")]),
            Ok(Length(5))
        );
        assert_eq!(ok(&[("transfer-encoding", "Chunked")]), Ok(Chunked));
        for bad in [
            &[("content-length", "5"), ("content-length", "6")][..],
            &[("content-length", "+5")],
            &[("content-length", "")],
            &[("content-length", "5 5")],
            &[("transfer-encoding", "gzip, chunked")],
            &[("transfer-encoding", "chunked, chunked")],
            &[("transfer-encoding", "identity")],
            &[("transfer-encoding", "chunked"), ("content-length", "5")],
        ] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            declared_framing(&headers(&[("transfer-encoding", "chunked")]), false),
            Err(FramingError::Coding)
        );
    }
}
