//! s3warden: an S3-compatible reverse proxy that enforces access.
//!
//! # Architecture
//!
//! Every request takes one fixed path (see `server::pipeline`):
//! accept → route → authenticate (`auth`, `identity`) → classify (`s3`) →
//! authorize (`policy`) → forward (`upstream`) → audit (`audit`).
//! The two hearts, `auth` and `policy`, do no I/O: they take plain values and
//! return verdicts, so they are tested, fuzzed and benchmarked in isolation.
//!
//! # Security
//!
//! - Fail closed: a request the proxy does not fully understand is refused.
//! - What is forwarded is rebuilt from what was authorized, then re-signed with
//!   the proxy's own upstream credentials; client credentials never go upstream.
//! - Signed payloads are verified in flight and the last bytes are held back
//!   until they verify, so a tampered body is never committed upstream.
//! - Secrets are redacted from `Debug` output and compared in constant time.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod embedded;
pub mod identity;
pub mod metrics;
pub mod policy;
pub mod s3;
pub mod server;
pub mod simulator;
pub mod upstream;
