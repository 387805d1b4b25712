use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde_json::json;

use super::*;

const RSA_PEM: &str = include_str!("../../../../tests/oidc/rsa-test-key.pem");
const HOST: &str = "idp.example.com/realms/a";
const NOW: i64 = 1_800_000_000;

fn enc(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A signer and its public JWK.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Signer {
    fn rsa() -> Signer {
        let der = rustls_pemfile::private_key(&mut RSA_PEM.as_bytes())
            .unwrap()
            .unwrap();
        Signer::Rsa(RsaKeyPair::from_pkcs8(der.secret_der()).unwrap())
    }
    fn ec() -> Signer {
        let rng = SystemRandom::new();
        let pk8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pk8.as_ref(), &rng).unwrap(),
        )
    }
    fn ed() -> Signer {
        let pk8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Signer::Ed(Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap())
    }
    fn alg(&self) -> &'static str {
        match self {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
            Signer::Ed(_) => "EdDSA",
        }
    }
    fn jwk(&self, kid: &str) -> Jwk {
        let v = match self {
            Signer::Rsa(k) => {
                let c = k.public().modulus_len();
                let _ = c;
                let der = k.public().as_ref();
                // RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }
                let (n, e) = rsa_components(der);
                json!({"kty": "RSA", "kid": kid, "n": enc(&n), "e": enc(&e)})
            }
            Signer::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": enc(&p[1..33]), "y": enc(&p[33..65])})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": enc(k.public_key().as_ref())})
            }
        };
        serde_json::from_value(v).unwrap()
    }
    fn sign(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            enc(header.to_string().as_bytes()),
            enc(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", enc(&sig))
    }
}

/// Minimal DER reading of `SEQUENCE { INTEGER n, INTEGER e }`.
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(d: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = d[0];
        let (len, hdr) = if d[1] & 0x80 == 0 {
            (d[1] as usize, 2)
        } else {
            let n = (d[1] & 0x7f) as usize;
            (
                d[2..2 + n].iter().fold(0usize, |a, b| a << 8 | *b as usize),
                2 + n,
            )
        };
        (tag, &d[hdr..hdr + len], &d[hdr + len..])
    }
    let (_, seq, _) = read(der);
    let (_, n, rest) = read(seq);
    let (_, e, _) = read(rest);
    let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect();
    (strip(n), strip(e))
}

fn claims() -> serde_json::Value {
    json!({"iss": format!("https://{HOST}"), "aud": "app", "sub": "user-1", "exp": NOW + 300, "iat": NOW, "amr": ["pwd"]})
}

fn check(token: &str, keys: &[Jwk]) -> Result<Verified, JwtError> {
    let t = Token::parse(token)?;
    let k = t.select_key(keys)?;
    t.verify_signature(k)?;
    t.check_claims(HOST, &["app".to_string()], NOW)
}

#[test]
fn each_accepted_algorithm_verifies_and_a_changed_byte_does_not() {
    for s in [Signer::rsa(), Signer::ec(), Signer::ed()] {
        let token = s.sign(&json!({"alg": s.alg(), "kid": "k1"}), &claims());
        let keys = vec![s.jwk("k1")];
        let v = check(&token, &keys).unwrap();
        assert_eq!((v.sub.as_str(), v.aud.as_str()), ("user-1", "app"));
        assert_eq!(v.amr(), vec!["pwd".to_string()]);
        // Flip one character of the signature.
        let mut bad = token.clone().into_bytes();
        let i = bad.len() - 5;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            check(&bad, &keys).unwrap_err(),
            JwtError::Signature,
            "{}",
            s.alg()
        );
        // Claims swapped under the same signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut other = claims();
        other["sub"] = json!("admin");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            enc(other.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(check(&forged, &keys).unwrap_err(), JwtError::Signature);
    }
}

#[test]
fn none_hmac_and_mismatched_key_types_are_refused() {
    let s = Signer::ec();
    let keys = vec![s.jwk("k1")];
    let none = format!(
        "{}.{}.",
        enc(br#"{"alg":"none"}"#),
        enc(claims().to_string().as_bytes())
    );
    assert_eq!(
        Token::parse(&none).unwrap_err(),
        JwtError::Algorithm("none".into())
    );
    let hs = format!(
        "{}.{}.c2ln",
        enc(br#"{"alg":"HS256","kid":"k1"}"#),
        enc(claims().to_string().as_bytes())
    );
    assert_eq!(
        Token::parse(&hs).unwrap_err(),
        JwtError::Algorithm("HS256".into())
    );
    // An ES256 key named by an RS256 token is no key for it.
    let rsa = Signer::rsa();
    let token = rsa.sign(&json!({"alg": "RS256", "kid": "k1"}), &claims());
    assert_eq!(check(&token, &keys).unwrap_err(), JwtError::UnknownKey);
    // A key whose own alg differs is not used.
    let mut pinned = rsa.jwk("k1");
    pinned.alg = Some("RS512".into());
    assert_eq!(check(&token, &[pinned]).unwrap_err(), JwtError::UnknownKey);
    // An unknown kid.
    let token = s.sign(&json!({"alg": "ES256", "kid": "k2"}), &claims());
    assert_eq!(check(&token, &keys).unwrap_err(), JwtError::UnknownKey);
    // Critical extensions are refused.
    let token = s.sign(
        &json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}),
        &claims(),
    );
    assert!(matches!(
        Token::parse(&token).unwrap_err(),
        JwtError::Malformed(_)
    ));
    for junk in ["", "a.b", "a.b.c.d", "!!.e30.AA"] {
        assert!(Token::parse(junk).is_err(), "{junk}");
    }
}

#[test]
fn issuer_audience_and_times_are_checked_with_bounded_skew() {
    let s = Signer::ed();
    let keys = vec![s.jwk("k")];
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims();
        f(&mut c);
        check(&s.sign(&json!({"alg": "EdDSA", "kid": "k"}), &c), &keys)
    };
    assert!(with(&|c| c["iss"] = json!(format!("https://{HOST}/"))).is_ok());
    assert!(matches!(
        with(&|c| c["iss"] = json!("https://evil.example.com/realms/a")),
        Err(JwtError::Issuer(_))
    ));
    assert!(matches!(
        with(&|c| c["iss"] = json!(format!("http://{HOST}"))),
        Err(JwtError::Issuer(_))
    ));
    assert_eq!(
        with(&|c| c["aud"] = json!("other")).unwrap_err(),
        JwtError::Audience
    );
    assert_eq!(
        with(&|c| c["aud"] = json!(["x", "app"])).unwrap().aud,
        "app"
    );
    assert_eq!(
        with(&|c| c["exp"] = json!(NOW - MAX_SKEW_SECS)).unwrap_err(),
        JwtError::Expired
    );
    assert!(with(&|c| c["exp"] = json!(NOW - MAX_SKEW_SECS + 1)).is_ok());
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        })
        .unwrap_err(),
        JwtError::MissingClaim("exp")
    );
    assert_eq!(
        with(&|c| c["nbf"] = json!(NOW + MAX_SKEW_SECS + 1)).unwrap_err(),
        JwtError::NotYetValid
    );
    assert_eq!(
        with(&|c| c["iat"] = json!(NOW + MAX_SKEW_SECS + 1)).unwrap_err(),
        JwtError::NotYetValid
    );
    assert!(with(&|c| c["nbf"] = json!(NOW + MAX_SKEW_SECS)).is_ok());
    assert_eq!(
        with(&|c| c["sub"] = json!("")).unwrap_err(),
        JwtError::MissingClaim("sub")
    );
}
