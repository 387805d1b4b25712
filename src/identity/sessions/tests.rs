use super::*;

fn claims(expires_in: i64) -> SessionClaims {
    let now = Utc::now();
    SessionClaims {
        kind: SessionKind::Federated,
        access_key_id: "ASIAEXAMPLE00000001".into(),
        secret_access_key: "session-secret".into(),
        parent_is_root: false,
        parent_name: "issuer".into(),
        parent_id: "AIDAEXAMPLE".into(),
        parent_key: Some("AKIAEXAMPLE".into()),
        name: "alice".into(),
        issued_ms: now.timestamp_millis(),
        expires: now.timestamp() + expires_in,
        policy: Some(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#.into(),
        ),
        policy_arns: vec![],
        tags: vec![],
        transitive: vec![],
        web_identity: None,
    }
}

fn keys() -> SessionKeys {
    SessionKeys::from_keys(&[("old", [1; 32]), ("new", [2; 32])], 4)
}

#[test]
fn a_sealed_token_opens_with_its_claims() {
    let k = keys();
    let token = k.seal(&claims(900)).unwrap();
    let s = k.open("ASIAEXAMPLE00000001", &token, Utc::now()).unwrap();
    assert_eq!(s.claims.name, "alice");
    assert_eq!(s.secret.expose(), "session-secret");
    assert!(s.policy.is_some());
    // The secret is inside the sealed blob, not readable from the token.
    assert!(!token.contains("session"));
    assert_eq!(k.cached(), 1);
}

#[test]
fn every_flipped_bit_is_invalid() {
    let k = keys();
    let token = k.seal(&claims(900)).unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            let t = URL_SAFE_NO_PAD.encode(&b);
            let fresh = keys();
            assert_eq!(
                fresh
                    .open("ASIAEXAMPLE00000001", &t, Utc::now())
                    .unwrap_err(),
                TokenError::Invalid,
                "byte {i}"
            );
        }
    }
}

#[test]
fn unknown_key_id_and_wrong_access_key_are_invalid() {
    let k = keys();
    let token = k.seal(&claims(900)).unwrap();
    let other = SessionKeys::from_keys(&[("other", [2; 32])], 4);
    assert_eq!(
        other
            .open("ASIAEXAMPLE00000001", &token, Utc::now())
            .unwrap_err(),
        TokenError::Invalid
    );
    assert_eq!(
        k.open("ASIAOTHER0000000001", &token, Utc::now())
            .unwrap_err(),
        TokenError::Invalid
    );
    assert_eq!(
        k.open("ASIAEXAMPLE00000001", "garbage!", Utc::now())
            .unwrap_err(),
        TokenError::Invalid
    );
}

#[test]
fn rotation_old_keys_still_open_and_the_newest_seals() {
    let old_only = SessionKeys::from_keys(&[("old", [1; 32])], 4);
    let token = old_only.seal(&claims(900)).unwrap();
    let rotated = keys();
    assert_eq!(rotated.sealing_key_id(), "new");
    assert!(
        rotated
            .open("ASIAEXAMPLE00000001", &token, Utc::now())
            .is_ok()
    );
    let new_token = rotated.seal(&claims(900)).unwrap();
    assert_eq!(
        old_only
            .open("ASIAEXAMPLE00000001", &new_token, Utc::now())
            .unwrap_err(),
        TokenError::Invalid
    );
}

#[test]
fn expiry_is_to_the_second_even_from_the_cache() {
    let k = keys();
    let c = claims(900);
    let token = k.seal(&c).unwrap();
    let at = |secs: i64| Utc.timestamp_opt(secs, 0).unwrap();
    assert!(k.open(&c.access_key_id, &token, at(c.expires - 1)).is_ok());
    assert_eq!(
        k.open(&c.access_key_id, &token, at(c.expires)).unwrap_err(),
        TokenError::Expired
    );
}

#[test]
fn a_cached_access_key_id_with_another_token_is_not_taken_from_the_cache() {
    let k = keys();
    let c = claims(900);
    let token = k.seal(&c).unwrap();
    assert!(k.open(&c.access_key_id, &token, Utc::now()).is_ok());
    let forged = format!("{token}A");
    assert_eq!(
        k.open(&c.access_key_id, &forged, Utc::now()).unwrap_err(),
        TokenError::Invalid
    );
    // Another valid token for the same key id replaces the cached one
    // (and must not deadlock on the cache's shard).
    let mut again = c.clone();
    again.name = "again".into();
    let second = k.seal(&again).unwrap();
    assert_eq!(
        k.open(&c.access_key_id, &second, Utc::now())
            .unwrap()
            .claims
            .name,
        "again"
    );
    assert_eq!(
        k.open(&c.access_key_id, &token, Utc::now())
            .unwrap()
            .claims
            .name,
        "alice"
    );
}

#[test]
fn the_cache_stays_bounded() {
    let k = keys();
    for i in 0..10 {
        let mut c = claims(900);
        c.access_key_id = format!("ASIAEXAMPLE{i:08}");
        let token = k.seal(&c).unwrap();
        k.open(&c.access_key_id, &token, Utc::now()).unwrap();
        assert!(k.cached() <= 4);
    }
}

#[test]
fn the_key_file_is_created_owner_only_and_rotates() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("keys/session.key");
    let k = SessionKeys::load(&path, 8).unwrap();
    let first = k.sealing_key_id().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let token = k.seal(&claims(900)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = rotate_key_file(&path).unwrap();
    assert_ne!(first, second);
    let reloaded = SessionKeys::load(&path, 8).unwrap();
    assert_eq!(reloaded.sealing_key_id(), second);
    assert!(
        reloaded
            .open("ASIAEXAMPLE00000001", &token, Utc::now())
            .is_ok()
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("session.key");
    SessionKeys::load(&path, 8).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = SessionKeys::load(&path, 8).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
}
