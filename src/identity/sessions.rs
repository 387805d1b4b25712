//! Temporary credentials: the session key file, sealed session tokens, and the
//! cache of opened sessions.
//!
//! A session token is `base64url(1 | len(kid) | kid | nonce | ChaCha20-Poly1305(claims))`
//! with the version byte and key id as associated data. The claims carry
//! everything needed to use the session — its kind, parent, federated or role
//! session name, session policy, issue and expiry time, access key id and
//! secret — so any instance holding the key file opens it with no shared
//! session store. The key file holds several keys for rotation: the last one
//! seals, all of them open. A token that fails to open (unknown key id, any
//! flipped bit) is invalid; one past its expiry, to the second, is expired.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use dashmap::DashMap;
use rand::RngExt;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::IdentityError;
use super::directory::Secret;
use super::store::{create_owner_only, sync_dir};
use crate::policy::{Policy, PolicyKind};

const TOKEN_VERSION: u8 = 1;
const KEY_LEN: usize = 32;

/// How a session was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionKind {
    /// GetFederationToken: a federated user of an IAM user (or of root).
    #[serde(rename = "F")]
    Federated,
    /// AssumeRole: a role session.
    #[serde(rename = "R")]
    Role,
    /// GetSessionToken: the IAM user (or root) itself, temporarily.
    #[serde(rename = "U")]
    User,
}

/// What a sealed token carries. Field names are short: they travel in every request.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(rename = "k")]
    pub kind: SessionKind,
    #[serde(rename = "a")]
    pub access_key_id: String,
    #[serde(rename = "s")]
    pub secret_access_key: String,
    /// The parent is the account root (federated or GetSessionToken sessions only).
    #[serde(rename = "r", default)]
    pub parent_is_root: bool,
    /// The parent user's or role's name (empty for root).
    #[serde(rename = "pn")]
    pub parent_name: String,
    /// The parent's unique id (`AIDA…`, `AROA…`), so a deleted and re-created
    /// namesake never inherits the session.
    #[serde(rename = "pi")]
    pub parent_id: String,
    /// The long-term access key that created the session; deactivating it ends the session.
    #[serde(rename = "pk", default)]
    pub parent_key: Option<String>,
    /// The federated user name or role session name (empty for GetSessionToken).
    #[serde(rename = "n")]
    pub name: String,
    /// Issue time, Unix milliseconds (revocation compares at this precision).
    #[serde(rename = "i")]
    pub issued_ms: i64,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
    /// The inline session policy, as given.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Managed policies passed as session policies (`PolicyArns`).
    #[serde(rename = "pa", default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    /// Session tags (`Tags` on AssumeRole and GetFederationToken, and those
    /// inherited as transitive): principal tags that override the parent's.
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The keys of `tags` that a role session passes on when it assumes a role.
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive: Vec<String>,
    /// For a role session from `AssumeRoleWithWebIdentity`: who signed in.
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<WebIdentity>,
}

/// The web identity behind a role session: the OpenID Connect provider and
/// the token's subject and audience, for `aws:FederatedProvider`, the
/// `HOST/PATH:sub`-style keys and the audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebIdentity {
    /// The provider's ARN.
    #[serde(rename = "p")]
    pub provider: String,
    #[serde(rename = "s")]
    pub sub: String,
    #[serde(rename = "a")]
    pub aud: String,
}

impl WebIdentity {
    /// The provider's `HOST/PATH` (its ARN after `oidc-provider/`).
    pub fn host_path(&self) -> &str {
        self.provider
            .split_once(":oidc-provider/")
            .map_or("", |(_, hp)| hp)
    }
}

impl fmt::Debug for SessionClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionClaims")
            .field("kind", &self.kind)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("parent_name", &self.parent_name)
            .field("name", &self.name)
            .field("issued_ms", &self.issued_ms)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl SessionClaims {
    pub fn issued_at(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.issued_ms)
            .single()
            .unwrap_or_default()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.expires, 0)
            .single()
            .unwrap_or_default()
    }

    /// Whether a session policy was passed (inline or managed).
    pub fn has_session_policy(&self) -> bool {
        self.policy.is_some() || !self.policy_arns.is_empty()
    }
}

/// A session whose token has been opened and checked, as cached.
pub struct OpenedSession {
    token_digest: [u8; 32],
    pub claims: SessionClaims,
    pub secret: Secret,
    /// The inline session policy, parsed once.
    pub policy: Option<Arc<Policy>>,
}

impl fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedSession")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

struct SealingKey {
    id: String,
    key: LessSafeKey,
}

/// Why a token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

/// The session keys and the opened-session cache.
pub struct SessionKeys {
    /// Oldest first; the last one seals. Swapped whole on reload.
    keys: ArcSwap<Vec<SealingKey>>,
    /// The key file's modification time and length when last read, to
    /// notice a changed file.
    stamp: Mutex<Option<(SystemTime, u64)>>,
    cache: DashMap<String, Arc<OpenedSession>>,
    capacity: usize,
    rng: SystemRandom,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field(
                "key_ids",
                &self
                    .keys
                    .load()
                    .iter()
                    .map(|k| k.id.clone())
                    .collect::<Vec<_>>(),
            )
            .field("cached", &self.cache.len())
            .finish()
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn key_error(path: &Path, message: impl Into<String>) -> IdentityError {
    IdentityError::KeyFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// One key-file line for a fresh random key, with an id from the current time.
pub fn new_key_line() -> Result<String, IdentityError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new()
        .fill(key.as_mut())
        .map_err(|_| key_error(Path::new("-"), "no system randomness"))?;
    // The time orders keys for people; the suffix keeps two rotations in
    // the same second apart.
    let suffix: String = (0..6)
        .map(|_| {
            const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            CHARS[rand::rng().random_range(0..CHARS.len())] as char
        })
        .collect();
    let id = format!("k{}-{suffix}", Utc::now().format("%Y%m%d%H%M%S"));
    Ok(format!("{id} {}\n", STANDARD.encode(key.as_ref())))
}

const KEY_FILE_HEADER: &str = "# s3warden session keys: one per line, \"KEY_ID BASE64(32 bytes)\".\n\
# The last line seals new session tokens; every line opens the tokens it sealed.\n\
# Share this file across a fleet; keep old lines until their sessions have expired (36 h at most).\n";

/// Creates the key file with one key, readable by its owner only.
fn create_key_file(path: &Path) -> Result<(), IdentityError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| key_error(path, e.to_string()))?;
    }
    let line = new_key_line()?;
    let mut file = create_owner_only(path, true).map_err(|e| key_error(path, e.to_string()))?;
    file.write_all(KEY_FILE_HEADER.as_bytes())
        .and_then(|_| file.write_all(line.as_bytes()))
        .and_then(|_| file.sync_all())
        .map_err(|e| key_error(path, e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        sync_dir(dir).map_err(|e| key_error(path, e.to_string()))?;
    }
    Ok(())
}

/// Appends a fresh key, which then seals all new tokens (after a restart).
pub fn rotate_key_file(path: &Path) -> Result<String, IdentityError> {
    if !path.exists() {
        create_key_file(path)?;
    } else {
        check_permissions(path)?;
        let line = new_key_line()?;
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| key_error(path, e.to_string()))?;
        file.write_all(line.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| key_error(path, e.to_string()))?;
    }
    let keys = SessionKeys::load(path, 1)?;
    Ok(keys.sealing_key_id())
}

fn check_permissions(path: &Path) -> Result<(), IdentityError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| key_error(path, e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(key_error(
                path,
                format!(
                    "is readable or writable by others (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The file's modification time and length, when it can be read.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Parses a key file: one `KEY_ID BASE64(32 bytes)` a line, oldest first.
fn read_keys(path: &Path) -> Result<Vec<SealingKey>, IdentityError> {
    check_permissions(path)?;
    let text =
        Zeroizing::new(fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?);
    let mut keys: Vec<SealingKey> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, b64) = line.split_once(char::is_whitespace).ok_or_else(|| {
            key_error(path, format!("line {}: expected \"KEY_ID BASE64\"", n + 1))
        })?;
        if !valid_key_id(id) {
            return Err(key_error(
                path,
                format!(
                    "line {}: key id {id:?} must be 1 to 32 of [A-Za-z0-9._-]",
                    n + 1
                ),
            ));
        }
        if keys.iter().any(|k| k.id == id) {
            return Err(key_error(
                path,
                format!("line {}: key id {id:?} appears twice", n + 1),
            ));
        }
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64.trim())
                .map_err(|_| key_error(path, format!("line {}: key is not base64", n + 1)))?,
        );
        if bytes.len() != KEY_LEN {
            return Err(key_error(
                path,
                format!(
                    "line {}: key must be {KEY_LEN} bytes, not {}",
                    n + 1,
                    bytes.len()
                ),
            ));
        }
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| key_error(path, format!("line {}: unusable key", n + 1)))?;
        keys.push(SealingKey {
            id: id.to_string(),
            key: LessSafeKey::new(unbound),
        });
    }
    if keys.is_empty() {
        return Err(key_error(path, "holds no key"));
    }
    Ok(keys)
}

impl SessionKeys {
    /// Loads the key file, creating it (owner-only, one fresh key) if missing.
    pub fn load(path: &Path, capacity: usize) -> Result<SessionKeys, IdentityError> {
        if !path.exists() {
            create_key_file(path)?;
        }
        let stamp = file_stamp(path);
        let keys = read_keys(path)?;
        Ok(SessionKeys {
            keys: ArcSwap::from_pointee(keys),
            stamp: Mutex::new(stamp),
            cache: DashMap::new(),
            capacity: capacity.max(1),
            rng: SystemRandom::new(),
        })
    }

    /// Reads the key file again and, when it holds valid keys, uses them from
    /// now on: the last seals, every one opens. A file that does not hold
    /// valid keys is refused and the keys in use stay. Returns the sealing
    /// key's id.
    pub fn reload(&self, path: &Path) -> Result<String, IdentityError> {
        let stamp = file_stamp(path);
        let keys = read_keys(path)?;
        self.keys.store(Arc::new(keys));
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp;
        // Sessions opened with a key that is gone must be opened again.
        self.cache.clear();
        Ok(self.sealing_key_id())
    }

    /// Reloads when the file's modification time or length changed since it
    /// was last read; `Ok(None)` when it did not.
    pub fn reload_if_changed(&self, path: &Path) -> Result<Option<String>, IdentityError> {
        let now = file_stamp(path);
        let last = *self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if now.is_none() || now == last {
            return Ok(None);
        }
        self.reload(path).map(Some)
    }

    /// Keys from raw bytes, for tests: `(id, key)`, oldest first.
    pub fn from_keys(keys: &[(&str, [u8; KEY_LEN])], capacity: usize) -> SessionKeys {
        SessionKeys {
            keys: ArcSwap::from_pointee(
                keys.iter()
                    .filter_map(|(id, k)| {
                        UnboundKey::new(&CHACHA20_POLY1305, k)
                            .ok()
                            .map(|u| SealingKey {
                                id: id.to_string(),
                                key: LessSafeKey::new(u),
                            })
                    })
                    .collect(),
            ),
            stamp: Mutex::new(None),
            cache: DashMap::new(),
            capacity: capacity.max(1),
            rng: SystemRandom::new(),
        }
    }

    /// The id of the key that seals new tokens.
    pub fn sealing_key_id(&self) -> String {
        self.keys
            .load()
            .last()
            .map(|k| k.id.clone())
            .unwrap_or_default()
    }

    /// Seals claims into a session token with the newest key.
    pub fn seal(&self, claims: &SessionClaims) -> Result<String, IdentityError> {
        let keys = self.keys.load();
        let key = keys
            .last()
            .ok_or_else(|| IdentityError::Seal("no session key".into()))?;
        let plain = Zeroizing::new(
            serde_json::to_vec(claims).map_err(|e| IdentityError::Seal(e.to_string()))?,
        );
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| IdentityError::Seal("no system randomness".into()))?;
        let header = header(&key.id);
        let mut sealed: Vec<u8> = plain.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header),
                &mut sealed,
            )
            .map_err(|_| IdentityError::Seal("sealing failed".into()))?;
        let mut out = header;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a token presented with `access_key_id`, from the cache when the
    /// same token was opened before. Expiry is checked on every call.
    pub fn open(
        &self,
        access_key_id: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<OpenedSession>, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // The map guard must be gone before `remember` writes to the same
        // shard, or a second token for a cached key id would deadlock it.
        let cached = self
            .cache
            .get(access_key_id)
            .filter(|hit| bool::from(hit.token_digest.ct_eq(&digest)))
            .map(|hit| hit.clone());
        let session = match cached {
            Some(hit) => hit,
            None => {
                let opened = Arc::new(self.open_uncached(token, digest)?);
                if opened.claims.access_key_id != access_key_id {
                    return Err(TokenError::Invalid);
                }
                self.remember(access_key_id, opened.clone(), now);
                opened
            }
        };
        if now.timestamp() >= session.claims.expires {
            self.cache.remove(access_key_id);
            return Err(TokenError::Expired);
        }
        Ok(session)
    }

    fn open_uncached(&self, token: &str, digest: [u8; 32]) -> Result<OpenedSession, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Invalid)?;
        let (&version, rest) = bytes.split_first().ok_or(TokenError::Invalid)?;
        if version != TOKEN_VERSION {
            return Err(TokenError::Invalid);
        }
        let (&id_len, rest) = rest.split_first().ok_or(TokenError::Invalid)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN {
            return Err(TokenError::Invalid);
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let id = std::str::from_utf8(id).map_err(|_| TokenError::Invalid)?;
        let keys = self.keys.load();
        let key = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(TokenError::Invalid)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| TokenError::Invalid)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&header(id)), &mut buf)
            .map_err(|_| TokenError::Invalid)?;
        let claims: SessionClaims =
            serde_json::from_slice(plain).map_err(|_| TokenError::Invalid)?;
        // Sealed policies were validated at issue; one that no longer parses
        // (a stricter policy engine) must not silently widen the session.
        let policy = match &claims.policy {
            Some(doc) => Some(Arc::new(
                Policy::parse(doc, PolicyKind::Session)
                    .and_then(|p| p.check_enforceable().map(|()| p))
                    .map_err(|_| TokenError::Invalid)?,
            )),
            None => None,
        };
        Ok(OpenedSession {
            token_digest: digest,
            secret: Secret::new(claims.secret_access_key.clone()),
            claims,
            policy,
        })
    }

    /// Caches an opened session; when full, expired entries go first, then everything.
    fn remember(&self, access_key_id: &str, session: Arc<OpenedSession>, now: DateTime<Utc>) {
        if self.cache.len() >= self.capacity {
            let t = now.timestamp();
            self.cache.retain(|_, s| s.claims.expires > t);
            if self.cache.len() >= self.capacity {
                self.cache.clear();
            }
        }
        self.cache.insert(access_key_id.to_string(), session);
    }

    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

fn header(id: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(2 + id.len());
    h.push(TOKEN_VERSION);
    // Key ids are at most 32 bytes (checked at load), so this fits.
    h.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    h.extend_from_slice(id.as_bytes());
    h
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh access key id with AWS's prefix (`AKIA` long-term, `ASIA` temporary).
pub fn new_access_key_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| KEY_ALPHABET[rng.random_range(0..KEY_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A fresh 40-character secret access key.
pub fn new_secret() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A fresh unique id (`AIDA…`, `AGPA…`, `ANPA…`, `AROA…`).
pub fn new_unique_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| KEY_ALPHABET[rng.random_range(0..KEY_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests;
