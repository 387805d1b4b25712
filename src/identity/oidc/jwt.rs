//! OpenID Connect ID tokens (compact JWS): parsing, signature verification
//! against a JWKS, and the claim checks of `AssumeRoleWithWebIdentity`. No
//! I/O: the caller brings the keys and the clock.
//!
//! Only RS256, ES256 and EdDSA (Ed25519) are accepted; the key must be of the
//! matching type (an RSA key never verifies an `ES256` token, no key ever
//! verifies `none` or an HMAC), and a key's own `alg`, when it names one,
//! must be the token's. `iss` must be the provider's issuer, one `aud` one of
//! its client ids, `exp` in the future and `nbf`/`iat` not in it, each with
//! at most [`MAX_SKEW_SECS`] of clock skew.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use serde::Deserialize;
use serde_json::Value;

/// The clock skew tolerated on `exp`, `nbf` and `iat`.
pub const MAX_SKEW_SECS: i64 = 60;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm {0:?} is not accepted (RS256, ES256, EdDSA)")]
    Algorithm(String),
    #[error("no key of the provider matches the token's key id")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token's issuer {0:?} is not the provider's")]
    Issuer(String),
    #[error("incorrect token audience")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
}

/// One key of a JSON Web Key Set.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    fn parse(s: &str) -> Result<Alg, JwtError> {
        match s {
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            "EdDSA" => Ok(Alg::EdDsa),
            other => Err(JwtError::Algorithm(other.to_string())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A token split and decoded, its signature not yet checked.
#[derive(Debug, Clone)]
pub struct Token {
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: BTreeMap<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("a part is not base64url"))
}

impl Token {
    pub fn parse(token: &str) -> Result<Token, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("expected three dot-separated parts"));
        };
        let header: Header = serde_json::from_slice(&b64(h)?)
            .map_err(|_| JwtError::Malformed("the header is not a JSON object with alg"))?;
        if header.crit.is_some() {
            return Err(JwtError::Malformed("critical header extensions"));
        }
        let alg = Alg::parse(&header.alg)?;
        let claims: BTreeMap<String, Value> = serde_json::from_slice(&b64(p)?)
            .map_err(|_| JwtError::Malformed("the payload is not a JSON object"))?;
        let signature = b64(s)?;
        if signature.is_empty() {
            return Err(JwtError::Signature);
        }
        Ok(Token {
            alg,
            kid: header.kid,
            claims,
            signing_input: format!("{h}.{p}"),
            signature,
        })
    }

    /// The key that must verify this token: the one with its `kid` (or the
    /// only key of its type when it names none), of the matching type.
    pub fn select_key<'a>(&self, keys: &'a [Jwk]) -> Result<&'a Jwk, JwtError> {
        let fits = |k: &&Jwk| key_fits(k, self.alg) && k.use_.as_deref().is_none_or(|u| u == "sig");
        let mut candidates = keys.iter().filter(|k| match &self.kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => true,
        });
        match &self.kid {
            Some(_) => candidates.find(fits).ok_or(JwtError::UnknownKey),
            None => {
                let fitting: Vec<&Jwk> = candidates.filter(fits).collect();
                match fitting.as_slice() {
                    [one] => Ok(one),
                    _ => Err(JwtError::UnknownKey),
                }
            }
        }
    }

    /// Whether some key could verify the token (its `kid` is known).
    pub fn has_key(&self, keys: &[Jwk]) -> bool {
        self.select_key(keys).is_ok()
    }

    pub fn verify_signature(&self, key: &Jwk) -> Result<(), JwtError> {
        if !key_fits(key, self.alg) {
            return Err(JwtError::UnknownKey);
        }
        let msg = self.signing_input.as_bytes();
        let field = |v: &Option<String>| -> Result<Vec<u8>, JwtError> {
            v.as_deref()
                .ok_or(JwtError::UnknownKey)
                .and_then(|s| b64(s).map_err(|_| JwtError::UnknownKey))
        };
        let ok = match self.alg {
            Alg::Rs256 => {
                let (n, e) = (field(&key.n)?, field(&key.e)?);
                RsaPublicKeyComponents { n, e }
                    .verify(&RSA_PKCS1_2048_8192_SHA256, msg, &self.signature)
                    .is_ok()
            }
            Alg::Es256 => {
                let (x, y) = (field(&key.x)?, field(&key.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwtError::UnknownKey);
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, &self.signature)
                    .is_ok()
            }
            Alg::EdDsa => UnparsedPublicKey::new(&ED25519, field(&key.x)?)
                .verify(msg, &self.signature)
                .is_ok(),
        };
        if ok { Ok(()) } else { Err(JwtError::Signature) }
    }

    fn str_claim(&self, name: &'static str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    fn time_claim(&self, name: &'static str) -> Result<Option<i64>, JwtError> {
        match self.claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Some(f.floor() as i64))
                .ok_or(JwtError::Malformed("a time claim is not a number")),
        }
    }

    /// The token's audiences (`aud` as a string or an array of strings).
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Checks the claims for a provider whose issuer is `https://{host_path}`
    /// and whose client ids are `client_ids`, at `now` (Unix seconds).
    /// Returns the verified identity.
    pub fn check_claims(
        &self,
        host_path: &str,
        client_ids: &[String],
        now: i64,
    ) -> Result<Verified, JwtError> {
        let iss = self.str_claim("iss").ok_or(JwtError::MissingClaim("iss"))?;
        if !issuer_matches(iss, host_path) {
            return Err(JwtError::Issuer(iss.to_string()));
        }
        let aud = self
            .audiences()
            .into_iter()
            .find(|a| client_ids.iter().any(|c| c == a))
            .ok_or(JwtError::Audience)?
            .to_string();
        let exp = self
            .time_claim("exp")?
            .ok_or(JwtError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(MAX_SKEW_SECS) {
            return Err(JwtError::Expired);
        }
        for name in ["nbf", "iat"] {
            if let Some(t) = self.time_claim(name)?
                && t > now.saturating_add(MAX_SKEW_SECS)
            {
                return Err(JwtError::NotYetValid);
            }
        }
        let sub = self
            .str_claim("sub")
            .filter(|s| !s.is_empty())
            .ok_or(JwtError::MissingClaim("sub"))?
            .to_string();
        Ok(Verified {
            sub,
            aud,
            claims: self.claims.clone(),
        })
    }
}

/// `iss` names the provider: `https://HOST/PATH`, with or without a final `/`.
pub fn issuer_matches(iss: &str, host_path: &str) -> bool {
    iss.strip_prefix("https://")
        .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
        .is_some_and(|rest| rest == host_path)
}

fn key_fits(k: &Jwk, alg: Alg) -> bool {
    if k.alg.as_deref().is_some_and(|a| a != alg.name()) {
        return false;
    }
    match alg {
        Alg::Rs256 => k.kty == "RSA",
        Alg::Es256 => k.kty == "EC" && k.crv.as_deref() == Some("P-256"),
        Alg::EdDsa => k.kty == "OKP" && k.crv.as_deref() == Some("Ed25519"),
    }
}

/// A token whose signature and claims checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    pub sub: String,
    /// The audience that matched one of the provider's client ids.
    pub aud: String,
    pub claims: BTreeMap<String, Value>,
}

impl Verified {
    /// The `amr` claim's values (a string or an array of strings).
    pub fn amr(&self) -> Vec<String> {
        match self.claims.get("amr") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
