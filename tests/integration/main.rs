//! s3warden's integration tests, compiled into one test binary: each module
//! starts the real server (or the real binary) on a loopback port and drives
//! it with real clients. One binary instead of one per file keeps a CI build
//! to one link of the S3/IAM/STS SDKs instead of twenty.

mod common;

mod api_errors;
mod audit;
mod audit_delivery;
mod auth_errors;
mod boundaries;
mod browser_upload;
mod classification;
mod cli;
mod client_matrix;
mod clients;
mod control_bodies;
mod cors;
mod deadlines;
mod e2e_sdk;
mod early_answers;
mod embedded_store;
mod fleet;
mod fleet_nginx;
mod forwarding;
mod identities;
mod idle_timeouts;
mod keep_alive;
mod listener;
mod object_tags;
mod oidc_providers;
mod persistence;
mod policy_check;
mod policy_decisions;
mod policy_versions;
mod post_upload;
mod real_idp;
mod reload;
mod sdk_identities;
mod sessions;
mod shutdown;
mod signature_errors;
mod sigv4_properties;
mod tags;
mod upstream_answers;
mod upstream_tls;
mod web_identity;
