//! Signed checkpoints, in the manner of CloudTrail's digest files.
//!
//! The hash chain alone proves only that the lines agree with each other:
//! whoever can write the log can rewrite a record and recompute every hash
//! after it, or cut records off the end. So at an interval, at every rotation
//! and at shutdown the writer appends a checkpoint to `STEM.checkpoints.jsonl`
//! beside the log: the range of sequence numbers it covers, the chain's head
//! hash, the files holding those records and the hash of the checkpoint
//! before it, signed with an Ed25519 key the log's writer need not be able to
//! read back. `audit verify` checks the signatures and that the log still
//! holds exactly what the checkpoints vouch for.
//!
//! A line is `{…fields…,"signature":"<base64>"}`; the signature covers a
//! domain label and the line's exact text up to `,"signature":"`.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::GENESIS;

/// Kept apart from every other signature the key could ever make.
const DOMAIN: &[u8] = b"s3warden audit checkpoint v1\n";
const SIGNATURE_FIELD: &str = ",\"signature\":\"";
/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key
/// bytes follow it. Lets `openssl pkey -pubin` read what `public-key` prints.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("signing key {path:?}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("public key {0:?}: not an Ed25519 public key (PEM, or base64 of 32 bytes)")]
    PublicKey(String),
    #[error("no system randomness to create a signing key")]
    Random,
}

fn key_error(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Key {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The checkpoints file of the log whose live file is `live`.
pub fn checkpoints_path(live: &Path) -> PathBuf {
    live.with_file_name(format!("{}.checkpoints.jsonl", super::files::stem_of(live)))
}

/// Where the signing key lives when `[audit] signing_key_file` is not set.
pub fn default_key_path(live: &Path) -> PathBuf {
    live.with_file_name(format!("{}.signing.key", super::files::stem_of(live)))
}

/// The key that signs checkpoints.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// Loads the key at `path`, creating it (owner-only) when it is missing.
    pub fn load_or_create(path: &Path) -> Result<SigningKey, CheckpointError> {
        if !path.exists() {
            create_key_file(path)?;
        }
        SigningKey::load(path)
    }

    /// Loads the PKCS#8 key at `path` (PEM `PRIVATE KEY`, as written here or
    /// by `openssl genpkey -algorithm ed25519`), refusing one others can read.
    pub fn load(path: &Path) -> Result<SigningKey, CheckpointError> {
        check_permissions(path)?;
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?,
        );
        let der = zeroize::Zeroizing::new(
            pem_body(&text, "PRIVATE KEY")
                .ok_or_else(|| key_error(path, "expected a PEM \"PRIVATE KEY\" block"))?,
        );
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| key_error(path, format!("not an Ed25519 PKCS#8 key ({e})")))?;
        Ok(SigningKey { pair })
    }

    pub fn public_key(&self) -> PublicKey {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(k)
    }

    fn sign(&self, message: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(message).as_ref())
    }
}

fn create_key_file(path: &Path) -> Result<(), CheckpointError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| key_error(path, e.to_string()))?;
    }
    let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| CheckpointError::Random)?;
    let pem = zeroize::Zeroizing::new(pem("PRIVATE KEY", der.as_ref()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| key_error(path, e.to_string()))?;
    file.write_all(pem.as_bytes())
        .and_then(|_| file.sync_all())
        .and_then(|_| super::writer::sync_dir(path))
        .map_err(|e| key_error(path, e.to_string()))
}

fn check_permissions(path: &Path) -> Result<(), CheckpointError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
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

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The decoded body of the first PEM block labelled `label`.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

/// An Ed25519 public key that checkpoints are verified against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as OpenSSL writes it.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem("PUBLIC KEY", &der)
    }

    /// The raw key in base64, as checkpoints carry it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A short name for the key: `SHA256:` and the base64 of its hash.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(self.0))
        )
    }

    /// Reads a PEM `PUBLIC KEY`, or the base64 of the 32 raw key bytes.
    pub fn parse(text: &str) -> Result<PublicKey, CheckpointError> {
        let bad = || CheckpointError::PublicKey(text.trim().chars().take(80).collect());
        let der = match pem_body(text, "PUBLIC KEY") {
            Some(der) => der,
            None => STANDARD.decode(text.trim()).map_err(|_| bad())?,
        };
        let raw = match der.len() {
            32 => &der[..],
            44 if der[..12] == SPKI_PREFIX => &der[12..],
            _ => return Err(bad()),
        };
        let mut k = [0u8; 32];
        k.copy_from_slice(raw);
        Ok(PublicKey(k))
    }

    fn verifies(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(sig) = STANDARD.decode(signature_b64) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(message, &sig)
            .is_ok()
    }
}

/// The records of one file that a checkpoint covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpan {
    /// The file's name when the checkpoint was written (a rotated file is
    /// later compressed to `NAME.gz`; the live file is later rotated).
    pub name: String,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// One checkpoint: what it vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(rename = "type")]
    pub kind: String,
    pub time: String,
    pub instance: String,
    /// The live file's name.
    pub log: String,
    /// `interval`, `rotation` or `shutdown`.
    pub reason: String,
    /// The records since the previous checkpoint: `first_seq..=last_seq`.
    pub first_seq: u64,
    pub last_seq: u64,
    /// The chain hash of record `last_seq`.
    pub head_hash: String,
    /// SHA-256 of the previous checkpoint's line; zeros for the first.
    pub previous: String,
    pub files: Vec<FileSpan>,
    /// The signer's public key (base64); trusted only when it equals the
    /// key the verifier was given.
    pub public_key: String,
}

/// The hash a checkpoint line is chained by.
pub fn line_hash(line: &str) -> String {
    hex::encode(Sha256::digest(line.as_bytes()))
}

/// Signs a checkpoint into one line (without `\n`).
pub fn seal(cp: &Checkpoint, key: &SigningKey) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(cp)?;
    let body = json.strip_suffix('}').unwrap_or(&json);
    let mut message = DOMAIN.to_vec();
    message.extend_from_slice(body.as_bytes());
    let signature = key.sign(&message);
    Ok(format!("{body}{SIGNATURE_FIELD}{signature}\"}}"))
}

/// A checkpoint read back, and whether its signature holds.
#[derive(Debug, Clone)]
pub struct Opened {
    pub checkpoint: Checkpoint,
    /// The signer's key as the line names it.
    pub signer: PublicKey,
    /// The signature verifies under `signer`.
    pub signature_valid: bool,
}

/// Parses a checkpoint line and checks its signature against the key it
/// names; `None` when the line is not a checkpoint at all.
pub fn open(line: &str) -> Option<Opened> {
    let at = line.rfind(SIGNATURE_FIELD)?;
    let body = &line[..at];
    let signature = line[at + SIGNATURE_FIELD.len()..].strip_suffix("\"}")?;
    let checkpoint: Checkpoint = serde_json::from_str(&format!("{body}}}")).ok()?;
    if checkpoint.kind != "checkpoint" {
        return None;
    }
    let signer = PublicKey::parse(&checkpoint.public_key).ok()?;
    let mut message = DOMAIN.to_vec();
    message.extend_from_slice(body.as_bytes());
    let signature_valid = signer.verifies(&message, signature);
    Some(Opened {
        checkpoint,
        signer,
        signature_valid,
    })
}

/// Where the checkpoint chain stands: what the next checkpoint continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointHead {
    /// The last record covered.
    pub last_seq: u64,
    /// The hash of the last checkpoint line.
    pub hash: String,
    /// The chain hash of the last record covered.
    pub head_hash: String,
}

impl CheckpointHead {
    pub fn genesis() -> CheckpointHead {
        CheckpointHead {
            last_seq: 0,
            hash: GENESIS.to_string(),
            head_hash: GENESIS.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path) -> SigningKey {
        SigningKey::load_or_create(&dir.join("k")).unwrap()
    }

    fn sample(key: &SigningKey) -> Checkpoint {
        Checkpoint {
            kind: "checkpoint".into(),
            time: "2026-01-01T00:00:00.000Z".into(),
            instance: "a".into(),
            log: "audit.jsonl".into(),
            reason: "interval".into(),
            first_seq: 1,
            last_seq: 9,
            head_hash: "ab".repeat(32),
            previous: GENESIS.into(),
            files: vec![FileSpan {
                name: "audit.jsonl".into(),
                first_seq: 1,
                last_seq: 9,
            }],
            public_key: key.public_key().to_base64(),
        }
    }

    #[test]
    fn key_is_created_owner_only_and_reloads_the_same() {
        let dir = tempfile::TempDir::new().unwrap();
        let a = key(dir.path()).public_key();
        let b = key(dir.path()).public_key();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join("k");
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = SigningKey::load(&path).err().unwrap().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn public_key_round_trips_through_pem_and_base64() {
        let dir = tempfile::TempDir::new().unwrap();
        let k = key(dir.path()).public_key();
        assert_eq!(PublicKey::parse(&k.to_pem()).unwrap(), k);
        assert_eq!(PublicKey::parse(&k.to_base64()).unwrap(), k);
        assert!(PublicKey::parse("not a key").is_err());
        assert!(
            k.to_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA")
        );
    }

    #[test]
    fn signed_checkpoint_opens_and_any_edit_breaks_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let k = key(dir.path());
        let line = seal(&sample(&k), &k).unwrap();
        let o = open(&line).unwrap();
        assert!(o.signature_valid);
        assert_eq!(o.checkpoint, sample(&k));
        assert_eq!(o.signer, k.public_key());
        let edited = line.replace("\"last_seq\":9", "\"last_seq\":8");
        assert!(!open(&edited).unwrap().signature_valid);
        // Re-signing with another key verifies only under that other key.
        let other_dir = tempfile::TempDir::new().unwrap();
        let other = key(other_dir.path());
        let mut forged = sample(&k);
        forged.public_key = other.public_key().to_base64();
        let o = open(&seal(&forged, &other).unwrap()).unwrap();
        assert!(o.signature_valid);
        assert_ne!(o.signer, k.public_key());
        assert!(open("{\"type\":\"digest\"}").is_none());
    }
}
