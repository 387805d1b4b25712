//! The tamper-evident chain: every audit line ends with its sequence number,
//! the hash of the previous line and its own hash, computed over the line's
//! exact text up to its own hash. Editing, deleting, inserting or reordering
//! a line breaks the chain at a place `audit verify` can name.
//!
//! A line looks like `{…record…,"seq":7,"prev":"<64 hex>","hash":"<64 hex>"}`.

use sha2::{Digest, Sha256};

/// The `prev` of the very first line of a log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_FIELD: &str = ",\"hash\":\"";

/// Where the chain stands: the last sequence number and hash written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> ChainHead {
        ChainHead {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// Appends `seq`, `prev` and `hash` to a serialised JSON object (which must
/// end with `}`) and advances the head. Returns the sealed line without `\n`.
pub fn seal(object_json: &str, head: &mut ChainHead) -> String {
    let body = object_json.strip_suffix('}').unwrap_or(object_json);
    let seq = head.seq + 1;
    let sep = if body.ends_with('{') { "" } else { "," };
    let mut line = String::with_capacity(body.len() + 180);
    line.push_str(body);
    line.push_str(sep);
    line.push_str("\"seq\":");
    line.push_str(&seq.to_string());
    line.push_str(",\"prev\":\"");
    line.push_str(&head.hash);
    line.push('"');
    let hash = hex::encode(Sha256::digest(line.as_bytes()));
    line.push_str(HASH_FIELD);
    line.push_str(&hash);
    line.push_str("\"}");
    head.seq = seq;
    head.hash = hash;
    line
}

/// The chain fields of one line, and whether its hash matches its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    /// The recomputed hash equals the stored one.
    pub intact: bool,
}

/// Reads the chain fields of a line; `None` if the line carries none.
pub fn link(line: &str) -> Option<Link> {
    let at = line.rfind(HASH_FIELD)?;
    let sealed = &line[..at];
    let hash = line[at + HASH_FIELD.len()..].strip_suffix("\"}")?;
    if hash.len() != 64 {
        return None;
    }
    let prev_at = sealed.rfind(",\"prev\":\"")?;
    let prev = sealed[prev_at + 9..].strip_suffix('"')?;
    let seq_at = sealed[..prev_at].rfind("\"seq\":")?;
    let seq = sealed[seq_at + 6..prev_at].parse().ok()?;
    let intact = hex::encode(Sha256::digest(sealed.as_bytes())) == hash;
    Some(Link {
        seq,
        prev: prev.to_string(),
        hash: hash.to_string(),
        intact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_lines_link_and_verify() {
        let mut head = ChainHead::genesis();
        let a = seal("{\"x\":1}", &mut head);
        let b = seal("{\"x\":2}", &mut head);
        let la = link(&a).unwrap();
        let lb = link(&b).unwrap();
        assert!(la.intact && lb.intact);
        assert_eq!((la.seq, lb.seq), (1, 2));
        assert_eq!(la.prev, GENESIS);
        assert_eq!(lb.prev, la.hash);
        assert_eq!(head.hash, lb.hash);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["x"], 2);
        assert_eq!(v["seq"], 2);
    }

    #[test]
    fn any_edit_is_detected() {
        let mut head = ChainHead::genesis();
        let line = seal("{\"key\":\"a/b\",\"status\":200}", &mut head);
        let edited = line.replace("200", "403");
        assert!(!link(&edited).unwrap().intact);
        let edited = line.replace("\"seq\":1", "\"seq\":2");
        assert!(!link(&edited).unwrap().intact);
        assert!(link("{\"no\":\"chain\"}").is_none());
    }

    #[test]
    fn empty_object_seals() {
        let mut head = ChainHead::genesis();
        let line = seal("{}", &mut head);
        assert!(line.starts_with("{\"seq\":1,"));
        assert!(link(&line).unwrap().intact);
    }
}
