//! The Authorization-header parsers (SigV4 and SigV2) and the presigned
//! parameter parsers on arbitrary input: they must never panic, what SigV4
//! accepts must be well formed, and a query's canonical text read as sent
//! must be the one decoding and encoding it again gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3warden::auth::canonical::{canonical_query, canonical_query_of, parse_query};
use s3warden::auth::presign::PresignedV4;
use s3warden::auth::sigv2::{AuthorizationV2, PresignedV2};
use s3warden::auth::sigv4::AuthorizationV4;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = AuthorizationV4::parse(text) {
        assert!(a.signed_header_names().all(|n| !n.is_empty()));
        assert_eq!(a.scope.date().len(), 8);
        assert!(a.scope.scope_str().ends_with("/aws4_request"));
    }
    let _ = AuthorizationV2::parse(text);
    if let Some(q) = parse_query(text) {
        for skip in [None, Some("X-Amz-Signature")] {
            assert_eq!(
                canonical_query_of(text, &q, skip),
                canonical_query(&q, skip),
                "{text:?}"
            );
        }
        if let Ok(p) = PresignedV4::parse(&q) {
            assert!((1..=604_800).contains(&p.expires_secs));
        }
        let _ = PresignedV2::parse(&q);
    }
});
