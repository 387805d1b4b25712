//! The identity store's persisted state: every entity created through the IAM
//! API (users, access keys, groups, inline and managed policies, roles) and the
//! session revocation marks, as plain serde values.
//!
//! Config-declared entities are not stored here: the config file owns them.
//! References between entities (group memberships, attached policies) are by
//! name or ARN, as the IAM API addresses them; names are kept in the spelling
//! they were created with and compared case-insensitively, as IAM does.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The on-disk format version; a store written by a newer format is refused.
pub const FORMAT: u32 = 1;

/// Everything the store holds. Maps are keyed by lowercase name (users,
/// groups, roles) or by ARN (managed policies), so iteration is deterministic.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreState {
    pub format: u32,
    #[serde(default)]
    pub users: BTreeMap<String, StoredUser>,
    #[serde(default)]
    pub groups: BTreeMap<String, StoredGroup>,
    #[serde(default)]
    pub policies: BTreeMap<String, StoredPolicy>,
    #[serde(default)]
    pub roles: BTreeMap<String, StoredRole>,
    /// Sessions whose parent (by unique id: `AIDA…` user or `AROA…` role) was
    /// issued before this time (Unix milliseconds) are refused.
    #[serde(default)]
    pub revoked_before: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredUser {
    pub name: String,
    pub path: String,
    pub user_id: String,
    pub created: DateTime<Utc>,
    /// Group names (store or config groups), in the order they were added.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Inline policies by name, documents as given.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Attached managed policy ARNs, in the order they were attached.
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub access_keys: Vec<StoredKey>,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub active: bool,
    pub created: DateTime<Utc>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("active", &self.active)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredGroup {
    pub name: String,
    pub path: String,
    pub group_id: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

/// A customer managed policy (one version, `v1`: CreatePolicyVersion is not offered).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredPolicy {
    pub name: String,
    pub path: String,
    pub policy_id: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    pub document: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredRole {
    pub name: String,
    pub path: String,
    pub role_id: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub description: Option<String>,
    /// Seconds, 3600–43200.
    pub max_session_duration: u32,
    pub trust_policy: String,
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

impl StoreState {
    pub fn empty() -> StoreState {
        StoreState {
            format: FORMAT,
            ..StoreState::default()
        }
    }
}
