//! Reading a browser POST upload (`multipart/form-data`): the fields before
//! the file, bounded as S3 bounds them (20 KB), and the file part itself,
//! handed over as a stream that is never buffered. Fields after the file
//! are ignored, as S3 ignores them. A field given twice is refused: the
//! policy would see one value and the upload use another.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::auth::post_policy::FormField;

/// S3's limit on everything before the file (fields and boundaries).
pub const MAX_PRE_FILE_BYTES: usize = 20 * 1024;

/// What the multipart parser may have read before the file part starts:
/// the fields' limit and room for part headers. The parser buffers all of
/// it, so this is what bounds memory (and its rescanning) before anything
/// is authenticated.
const MAX_PRE_FILE_READ: usize = MAX_PRE_FILE_BYTES + 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostFormError {
    #[error("the request is not multipart/form-data")]
    NotMultipart,
    #[error("the multipart body is malformed: {0}")]
    Malformed(String),
    #[error("the fields before the file exceed {0} bytes")]
    PreDataTooLarge(usize),
    #[error("the form has no file field")]
    NoFile,
    #[error("form field {0:?} is not UTF-8 text")]
    NotText(String),
    #[error("form field {0:?} is given more than once")]
    Repeated(String),
}

/// The request body as the parser sees it, bounded until the file part is
/// reached. The parser drains whatever is ready before it parses, so past
/// [`MAX_PRE_FILE_READ`] bytes the stream reads no more: it answers "not yet"
/// (waking the task at once) so the parser works through what it holds, and
/// fails only when the parser asks again without having produced a field
/// since. A chunk crossing the bound is passed whole, so memory is bounded
/// by the bound plus one chunk.
struct Bounded<S> {
    inner: S,
    read: usize,
    /// The `progress` value when the stream last paused.
    paused_at: Option<usize>,
    /// Fields produced so far, or [`FILE_REACHED`].
    progress: Arc<AtomicUsize>,
}

const FILE_REACHED: usize = usize::MAX;

/// The error a [`Bounded`] stream fails with.
#[derive(Debug, thiserror::Error)]
#[error("the fields before the file are too large")]
struct PreDataLimit;

impl<S, E> Stream for Bounded<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let progress = self.progress.load(Ordering::Relaxed);
        if self.read > MAX_PRE_FILE_READ && progress != FILE_REACHED {
            if self.paused_at == Some(progress) {
                return Poll::Ready(Some(Err(Box::new(PreDataLimit))));
            }
            self.paused_at = Some(progress);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.read = self.read.saturating_add(b.len());
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }
}

/// A parser error: the pre-data limit when that is what failed.
fn parse_error(e: multer::Error) -> PostFormError {
    if let multer::Error::StreamReadFailed(inner) = &e
        && inner.is::<PreDataLimit>()
    {
        return PostFormError::PreDataTooLarge(MAX_PRE_FILE_BYTES);
    }
    PostFormError::Malformed(e.to_string())
}

/// The form up to and including the start of its file part.
pub struct PostForm {
    /// Fields before the file, names lowercased, values as sent.
    pub fields: Vec<FormField>,
    /// The file part's own file name, for `${filename}`.
    pub file_name: Option<String>,
    /// The file part; polling it yields the file's bytes.
    pub file: multer::Field<'static>,
}

impl PostForm {
    /// The value of a field (first occurrence).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }
}

/// The multipart boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, PostFormError> {
    let mime: mime::Mime = content_type
        .parse()
        .map_err(|_| PostFormError::NotMultipart)?;
    if mime.type_() != mime::MULTIPART || mime.subtype() != mime::FORM_DATA {
        return Err(PostFormError::NotMultipart);
    }
    multer::parse_boundary(content_type).map_err(|_| PostFormError::NotMultipart)
}

/// Reads fields until the file part, which is returned unread.
pub async fn read_form<S, E>(body: S, boundary: String) -> Result<PostForm, PostFormError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let progress = Arc::new(AtomicUsize::new(0));
    let body = Bounded {
        inner: body,
        read: 0,
        paused_at: None,
        progress: progress.clone(),
    };
    let mut multipart = multer::Multipart::new(body, boundary.clone());
    let mut fields = Vec::new();
    // Each part costs its boundary line and headers as well as its data.
    let overhead = boundary.len() + 64;
    let mut used = 0usize;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(parse_error)?
            .ok_or(PostFormError::NoFile)?;
        progress.fetch_add(1, Ordering::Relaxed);
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        if name == "file" {
            progress.store(FILE_REACHED, Ordering::Relaxed);
            let file_name = field.file_name().map(str::to_string);
            return Ok(PostForm {
                fields,
                file_name,
                file: field,
            });
        }
        used += overhead + name.len();
        let mut value = Vec::new();
        let mut field = field;
        loop {
            let chunk = field.chunk().await.map_err(parse_error)?;
            // The parser moved on: see `Bounded`.
            progress.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = chunk else { break };
            used += chunk.len();
            if used > MAX_PRE_FILE_BYTES {
                return Err(PostFormError::PreDataTooLarge(MAX_PRE_FILE_BYTES));
            }
            value.extend_from_slice(&chunk);
        }
        if used > MAX_PRE_FILE_BYTES {
            return Err(PostFormError::PreDataTooLarge(MAX_PRE_FILE_BYTES));
        }
        let value = String::from_utf8(value).map_err(|_| PostFormError::NotText(name.clone()))?;
        if fields.iter().any(|f: &FormField| f.name == name) {
            return Err(PostFormError::Repeated(name));
        }
        fields.push(FormField { name, value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn body(parts: &[(&str, &str)], file: Option<(&str, &[u8])>, after: &str) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in parts {
            b.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((fname, data)) = file {
            b.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{fname}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .as_bytes(),
            );
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(after.as_bytes());
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    fn stream(data: Vec<u8>) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        // Small chunks exercise the parser across boundaries.
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures_util::stream::iter(chunks)
    }

    #[tokio::test]
    async fn reads_fields_then_streams_the_file() {
        let data = body(
            &[("Key", "u/${filename}"), ("Policy", "cG9s")],
            Some(("a.txt", b"hello file")),
            "",
        );
        let mut form = read_form(stream(data), "XyZ".into()).await.unwrap();
        assert_eq!(form.get("key"), Some("u/${filename}"));
        assert_eq!(form.get("policy"), Some("cG9s"));
        assert_eq!(form.file_name.as_deref(), Some("a.txt"));
        let mut got = Vec::new();
        while let Some(c) = form.file.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, b"hello file");
    }

    #[tokio::test]
    async fn refuses_forms_without_file_and_oversized_fields() {
        let data = body(&[("key", "k")], None, "");
        assert!(matches!(
            read_form(stream(data), "XyZ".into()).await,
            Err(PostFormError::NoFile)
        ));
        let big = "x".repeat(MAX_PRE_FILE_BYTES);
        let data = body(&[("key", &big)], Some(("a", b"1")), "");
        assert!(matches!(
            read_form(stream(data), "XyZ".into()).await,
            Err(PostFormError::PreDataTooLarge(_))
        ));
        assert!(matches!(
            read_form(stream(b"garbage".to_vec()), "XyZ".into()).await,
            Err(PostFormError::Malformed(_) | PostFormError::NoFile)
        ));
        let data = body(&[("key", "a"), ("Key", "b")], Some(("a", b"1")), "");
        assert_eq!(
            read_form(stream(data), "XyZ".into()).await.err(),
            Some(PostFormError::Repeated("key".into()))
        );
    }

    #[tokio::test]
    async fn reading_stops_at_the_bound_whatever_the_parts_look_like() {
        // A part header that never ends: the parser would buffer it all.
        let mut data = b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\nX-Pad: ".to_vec();
        data.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024));
        let chunks = data.len() / 7;
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = pulled.clone();
        let s = stream(data).inspect(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        assert!(matches!(
            read_form(Box::pin(s), "XyZ".into()).await,
            Err(PostFormError::PreDataTooLarge(_))
        ));
        let pulled = pulled.load(Ordering::Relaxed);
        assert!(
            pulled * 7 < MAX_PRE_FILE_READ + 64,
            "read {} bytes",
            pulled * 7
        );
        assert!(pulled < chunks);
        // The file itself is not bounded: a large file after small fields.
        let big = vec![1u8; 1024 * 1024];
        let data = body(&[("key", "k")], Some(("a", &big)), "");
        let mut form = read_form(stream(data), "XyZ".into()).await.unwrap();
        let mut n = 0;
        while let Some(c) = form.file.next().await {
            n += c.unwrap().len();
        }
        assert_eq!(n, big.len());
    }

    #[test]
    fn boundary_requires_form_data() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("application/json"),
            Err(PostFormError::NotMultipart)
        );
        assert_eq!(
            boundary("multipart/mixed; boundary=abc"),
            Err(PostFormError::NotMultipart)
        );
    }
}
