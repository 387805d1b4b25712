//! The embedded store's shared state and the plumbing every operation uses: streaming a body
//! into a temporary file while hashing it, copying stored bytes, streaming them back out, and
//! turning I/O and body failures into the S3 errors S3 gives for them.
//!
//! Concurrency: bodies are written without any lock; a commit (precondition checks, the sidecar
//! rename, the index update) runs under the index's write lock, and a reader looks up and opens
//! an object under the read lock, so it never sees an index entry whose file is gone. A file
//! superseded by a commit is removed after the lock is released; readers that opened it keep it.

use super::checksum::{self, Algorithm, BodyHashes, ChecksumHeaders, Claims};
use super::disk::{Disk, TempFile};
use super::index::Index;
use super::records::StoredChecksum;
use crate::s3::headers::header_str;

use bytes::Bytes;
use futures_util::StreamExt as _;
use s3s::dto::{ChecksumAlgorithm, Owner, StreamingBlob};
use s3s::{S3Error, S3ErrorCode, S3Result, StdError, s3_error};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::RwLock;
use tokio_util::io::ReaderStream;
use tracing::error;

/// S3's limit for a single PUT, an upload part and a copy source.
pub(super) const MAX_SINGLE_OBJECT: u64 = 5 * 1024 * 1024 * 1024;

/// Read and copy in chunks of this size: memory per request stays bounded by it.
const CHUNK: usize = 256 * 1024;

/// What an upload request says about its body.
pub(super) struct IncomingBody<'a> {
    pub headers: &'a http::HeaderMap,
    pub trailers: Option<&'a s3s::TrailingHeaders>,
    pub content_length: Option<i64>,
    pub content_md5: Option<&'a str>,
    pub checksums: ChecksumHeaders<'a>,
    /// `x-amz-sdk-checksum-algorithm` (or the one the trailer names), as s3s parsed it.
    pub algorithm: Option<&'a ChecksumAlgorithm>,
    /// The algorithm a multipart upload fixed for its parts.
    pub required: Option<Algorithm>,
}

/// The `x-amz-checksum-*` values of an upload input, in [`Algorithm::ALL`] order.
macro_rules! checksum_headers {
    ($input:expr) => {
        [
            $input.checksum_crc32.as_deref(),
            $input.checksum_crc32c.as_deref(),
            $input.checksum_crc64nvme.as_deref(),
            $input.checksum_sha1.as_deref(),
            $input.checksum_sha256.as_deref(),
        ]
    };
}
pub(super) use checksum_headers;

/// A body received whole and verified, ready to commit.
pub(super) struct Received {
    pub tmp: TempFile,
    pub data: String,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
}

/// A handle to the store; clones share it (multipart completion runs in its own task).
#[derive(Clone)]
pub(super) struct Store {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub disk: Disk,
    pub index: RwLock<Index>,
    pub region: String,
    pub owner_id: String,
}

impl std::ops::Deref for Store {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl Store {
    pub fn new(disk: Disk, index: Index, region: String, access_key_id: &str) -> Self {
        use s3s::crypto::Checksum as _;
        // A stable 64-hex canonical user id, shaped like S3's.
        let owner_id = hex::encode(s3s::crypto::Sha256::checksum(access_key_id.as_bytes()));
        Self {
            inner: Arc::new(Inner {
                disk,
                index: RwLock::new(index),
                region,
                owner_id,
            }),
        }
    }

    pub fn owner(&self) -> Owner {
        Owner {
            display_name: Some("s3warden-embedded".to_owned()),
            id: Some(self.owner_id.clone()),
        }
    }

    /// Receives an upload body: checks the digests the request claims, streams the body into
    /// a new temporary file while hashing it (`compute`, or the claimed algorithm), and checks
    /// the result.
    ///
    /// Fails (and the file is removed) if the body stream fails, its length differs from
    /// `Content-Length`, or a digest does not match, so a broken upload is never committed.
    pub async fn receive(
        &self,
        upload: IncomingBody<'_>,
        body: Option<StreamingBlob>,
        compute: Option<Algorithm>,
    ) -> S3Result<Received> {
        if upload
            .content_length
            .and_then(|n| u64::try_from(n).ok())
            .is_some_and(|n| n > MAX_SINGLE_OBJECT)
        {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size."
            ));
        }
        let claims = Claims::parse(
            upload.content_md5,
            upload.checksums,
            upload.algorithm.map(ChecksumAlgorithm::as_str),
            header_str(upload.headers, "x-amz-trailer"),
        )?;
        if let (Some(expected), Some(actual)) = (upload.required, claims.algorithm)
            && expected != actual
        {
            return Err(s3_error!(
                InvalidRequest,
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                expected.name().to_ascii_lowercase(),
                actual.name().to_ascii_lowercase()
            ));
        }
        let mut hashes = BodyHashes::new(claims.algorithm.or(compute));
        let (mut tmp, data) = self.disk.temp_file().await.map_err(internal)?;
        let mut size = 0u64;
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk: Bytes = chunk.map_err(body_error)?;
                hashes.update(&chunk);
                tmp.write(&chunk).await.map_err(internal)?;
                size += chunk.len() as u64;
            }
        }
        if upload
            .content_length
            .is_some_and(|n| u64::try_from(n).ok() != Some(size))
        {
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ));
        }
        tmp.finish().await.map_err(internal)?;
        let digests = hashes.finish();
        // The trailer of an aws-chunked body is readable once the body has been consumed.
        let trailer = claims.algorithm.and_then(|a| {
            upload
                .trailers?
                .read(|h| header_str(h, a.header()).map(str::to_owned))
                .flatten()
        });
        let checksum = claims
            .verify(&digests, trailer.as_deref())?
            .map(|(a, d)| checksum::full_object(a, &d));
        Ok(Received {
            tmp,
            data,
            size,
            etag: digests.md5_hex(),
            checksum,
        })
    }

    /// Copies `len` bytes of `src` from `start` onto the end of `tmp`, feeding each chunk to
    /// `on_chunk`; fails if the stored file is shorter than its record says.
    pub async fn copy_into(
        &self,
        tmp: &mut TempFile,
        mut src: tokio::fs::File,
        start: u64,
        len: u64,
        on_chunk: &mut (dyn FnMut(&[u8]) + Send),
    ) -> S3Result<()> {
        src.seek(io::SeekFrom::Start(start))
            .await
            .map_err(internal)?;
        let mut reader = src.take(len);
        let mut buf = vec![0u8; CHUNK];
        let mut copied = 0u64;
        loop {
            let n = reader.read(&mut buf).await.map_err(internal)?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            on_chunk(chunk);
            tmp.write(chunk).await.map_err(internal)?;
            copied += n as u64;
        }
        if copied != len {
            return Err(internal(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stored data is shorter than its record",
            )));
        }
        Ok(())
    }
}

/// A response body reading `len` bytes of a file from `start`, in bounded chunks.
pub(super) async fn file_body(
    mut file: tokio::fs::File,
    start: u64,
    len: u64,
) -> S3Result<StreamingBlob> {
    file.seek(io::SeekFrom::Start(start))
        .await
        .map_err(internal)?;
    Ok(stream_body(file.take(len)))
}

fn stream_body<R: AsyncRead + Send + Sync + 'static>(reader: R) -> StreamingBlob {
    StreamingBlob::wrap(ReaderStream::with_capacity(reader, CHUNK))
}

/// A storage failure: logged here in full, reported to the client as S3's InternalError.
pub(super) fn internal(e: io::Error) -> S3Error {
    error!(error = %e, "embedded store i/o failure");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

/// What S3 answers when a request body cannot be read to its end.
///
/// s3s keeps its body verifiers' error types private, so they are recognised by their
/// messages: a wrong `x-amz-content-sha256` (`UploadStreamError: Sha256Mismatch`) and a bad
/// aws-chunked signature (`AwsChunkedStreamError: SignatureMismatch`). Anything else (the client
/// went away, the stream ended early, malformed chunks) is an incomplete body.
pub(super) fn body_error(e: StdError) -> S3Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(" / ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.contains("Sha256Mismatch") {
        checksum::custom_error(
            "XAmzContentSHA256Mismatch",
            http::StatusCode::BAD_REQUEST,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    } else if text.contains("SignatureMismatch") {
        s3_error!(
            SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        )
    } else {
        s3_error!(IncompleteBody, "The request body terminated unexpectedly")
    }
}
