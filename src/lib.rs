//! s3warden: an S3-compatible reverse proxy that enforces access.
//!
//! # Architecture
//!
//! Every request takes one fixed path (see `server::pipeline`):
//! accept → route → authenticate (`auth`, `identity`) → classify (`s3`) →
//! authorize (`policy`) → forward (`upstream`) → audit (`audit`).
//! The two hearts, `auth` and `policy`, do no I/O: they take plain values and
//! return verdicts, so they are tested, fuzzed and benchmarked in isolation.
//! Requests to the IAM and STS query APIs (`POST /` with `Action=…`) are routed
//! before S3 handling to `api`, whose changes go through `identity`'s store:
//! persisted durably, then published as a new directory snapshot that the
//! request path reads without waiting.
//!
//! # Security
//!
//! - Fail closed: a request the proxy does not fully understand is refused.
//! - What is forwarded is rebuilt from what was authorized, then re-signed with
//!   the proxy's own upstream credentials; client credentials never go upstream.
//! - Signed payloads are verified in flight and the last bytes are held back
//!   until they verify, so a tampered body is never committed upstream.
//! - Secrets are redacted from `Debug` output and compared in constant time.
//! - Temporary credentials are sealed (ChaCha20-Poly1305) into their session
//!   token; the session key file and the identity store, which holds access
//!   key secrets, are readable by their owner only. A session is evaluated
//!   against its parent's current policies on every request.
//! - Web identity tokens (`AssumeRoleWithWebIdentity`) are verified against
//!   keys fetched over HTTPS only from providers an administrator registered,
//!   with RS256, ES256 or EdDSA and a key of the matching type (never `none`
//!   or HMAC); a made-up key id cannot make the proxy refetch keys faster
//!   than `[federation] jwks_refetch_secs`.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod embedded;
pub mod http1;
pub mod identity;
pub mod metrics;
pub mod policy;
pub mod s3;
pub mod server;
pub mod simulator;
pub mod upstream;
