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
    /// OpenID Connect providers, keyed by ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub oidc_providers: BTreeMap<String, StoredOidcProvider>,
}

/// An IAM OpenID Connect provider: the issuer whose tokens
/// `AssumeRoleWithWebIdentity` accepts, and the audiences (client ids) it
/// accepts them for. `url` is the issuer without `https://` (`HOST/PATH`),
/// as IAM shows it and as trust policy condition keys begin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredOidcProvider {
    pub url: String,
    /// In the order added; unique.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Lowercase hex SHA-1 thumbprints, as given (informational: certificates
    /// are checked against the system's roots and `[federation] ca_file`).
    #[serde(default)]
    pub thumbprints: Vec<String>,
    pub created: DateTime<Utc>,
    /// Tags, in the order given; keys unique, compared with their case (as
    /// IAM compares them on providers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
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
    /// The ARN of the managed policy bounding the user's permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    /// Tags, in the order given; keys unique regardless of case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// An IAM tag. On users and roles keys compare case-insensitively and keep
/// the case they were last given in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// At most this many tags on an entity or a session, as IAM and STS allow.
pub const MAX_TAGS: usize = 50;

/// IAM's tag charset: letters, digits, spaces and `_ . : / = + - @`.
pub fn tag_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// Why a tag key is not one IAM accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKeyProblem {
    /// Not 1–128 characters of the tag charset.
    Shape,
    /// Starts with `aws:`, which is AWS's own.
    Reserved,
}

impl fmt::Display for TagKeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TagKeyProblem::Shape => "must have 1 to 128 letters, digits, spaces or _ . : / = + - @",
            TagKeyProblem::Reserved => "must not start with 'aws:'",
        })
    }
}

/// Checks a tag key against IAM's rules.
pub fn tag_key_problem(key: &str) -> Option<TagKeyProblem> {
    if key.is_empty() || key.chars().count() > 128 || !tag_chars(key) {
        return Some(TagKeyProblem::Shape);
    }
    if key.len() >= 4 && key[..4].eq_ignore_ascii_case("aws:") {
        return Some(TagKeyProblem::Reserved);
    }
    None
}

/// Why a tag value is not one IAM accepts (0–256 characters of the charset).
pub fn tag_value_problem(value: &str) -> Option<&'static str> {
    if value.chars().count() > 256 || !tag_chars(value) {
        return Some("must have at most 256 letters, digits, spaces or _ . : / = + - @");
    }
    None
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

/// A customer managed policy with its versions (at most five; `v1`, `v2`, …,
/// ids never reused). The default version is the one enforced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredPolicy {
    pub name: String,
    pub path: String,
    pub policy_id: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The default version's document.
    pub document: String,
    pub created: DateTime<Utc>,
    /// Every version, oldest first. Stores written before versions existed
    /// hold none: their only version is `v1`, `document`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<StoredVersion>,
    /// The default version's number.
    #[serde(default = "first_version")]
    pub default_version: u32,
    /// The highest version number ever given.
    #[serde(default = "first_version")]
    pub last_version: u32,
    /// When the default version last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
}

fn first_version() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredVersion {
    pub id: u32,
    pub document: String,
    pub created: DateTime<Utc>,
}

impl StoredPolicy {
    /// A new policy: one version, `v1`, the default.
    pub fn new(
        name: String,
        path: String,
        policy_id: String,
        arn: String,
        description: Option<String>,
        document: String,
        created: DateTime<Utc>,
    ) -> StoredPolicy {
        StoredPolicy {
            versions: vec![StoredVersion {
                id: 1,
                document: document.clone(),
                created,
            }],
            name,
            path,
            policy_id,
            arn,
            description,
            document,
            created,
            default_version: 1,
            last_version: 1,
            updated: None,
        }
    }

    /// Every version, oldest first (`v1` alone for a store written before versions).
    pub fn all_versions(&self) -> Vec<StoredVersion> {
        if self.versions.is_empty() {
            vec![StoredVersion {
                id: 1,
                document: self.document.clone(),
                created: self.created,
            }]
        } else {
            self.versions.clone()
        }
    }
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
    /// The ARN of the managed policy bounding the role's permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl StoreState {
    /// Gives every policy written before versions existed its `v1`, so
    /// that equal states compare equal however old their source.
    pub fn normalize(&mut self) {
        for p in self.policies.values_mut() {
            if p.versions.is_empty() {
                p.versions = p.all_versions();
            }
        }
    }

    pub fn empty() -> StoreState {
        StoreState {
            format: FORMAT,
            ..StoreState::default()
        }
    }
}

/// Which stored entity a change is about. Users, groups and roles are keyed
/// by lowercase name, managed policies by ARN, revocation marks by the unique
/// id of the principal whose sessions they end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
pub enum EntityKey {
    User(String),
    Group(String),
    Policy(String),
    Role(String),
    Revocation(String),
    OidcProvider(String),
}

impl EntityKey {
    /// The kind as the change log and the PostgreSQL schema name it.
    pub fn kind(&self) -> &'static str {
        match self {
            EntityKey::User(_) => "user",
            EntityKey::Group(_) => "group",
            EntityKey::Policy(_) => "policy",
            EntityKey::Role(_) => "role",
            EntityKey::Revocation(_) => "revocation",
            EntityKey::OidcProvider(_) => "oidc_provider",
        }
    }

    pub fn key(&self) -> &str {
        match self {
            EntityKey::User(k)
            | EntityKey::Group(k)
            | EntityKey::Policy(k)
            | EntityKey::Role(k)
            | EntityKey::Revocation(k)
            | EntityKey::OidcProvider(k) => k,
        }
    }

    /// The inverse of [`EntityKey::kind`] and [`EntityKey::key`].
    pub fn from_parts(kind: &str, key: String) -> Option<EntityKey> {
        Some(match kind {
            "user" => EntityKey::User(key),
            "group" => EntityKey::Group(key),
            "policy" => EntityKey::Policy(key),
            "role" => EntityKey::Role(key),
            "revocation" => EntityKey::Revocation(key),
            "oidc_provider" => EntityKey::OidcProvider(key),
            _ => return None,
        })
    }
}

/// One stored entity, whole: a user comes with its keys, memberships and
/// policies, so that applying it never needs anything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    User(StoredUser),
    Group(StoredGroup),
    Policy(StoredPolicy),
    Role(StoredRole),
    Revocation(i64),
    OidcProvider(StoredOidcProvider),
}

/// What one change did to one entity: its new value, or `None` when deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub entity: EntityKey,
    pub value: Option<Entity>,
}

impl StoreState {
    /// The current value of one entity.
    pub fn get(&self, key: &EntityKey) -> Option<Entity> {
        match key {
            EntityKey::User(k) => self.users.get(k).cloned().map(Entity::User),
            EntityKey::Group(k) => self.groups.get(k).cloned().map(Entity::Group),
            EntityKey::Policy(k) => self.policies.get(k).cloned().map(Entity::Policy),
            EntityKey::Role(k) => self.roles.get(k).cloned().map(Entity::Role),
            EntityKey::Revocation(k) => self.revoked_before.get(k).copied().map(Entity::Revocation),
            EntityKey::OidcProvider(k) => self
                .oidc_providers
                .get(k)
                .cloned()
                .map(Entity::OidcProvider),
        }
    }

    /// Applies one change in place. A value of another kind than its key is
    /// a corrupt change and is refused.
    pub fn apply(&mut self, change: &Change) -> Result<(), String> {
        fn put<V: Clone>(map: &mut BTreeMap<String, V>, key: &str, value: Option<&V>) {
            match value {
                Some(v) => {
                    map.insert(key.to_string(), v.clone());
                }
                None => {
                    map.remove(key);
                }
            }
        }
        let v = change.value.as_ref();
        match (&change.entity, v) {
            (EntityKey::User(k), None | Some(Entity::User(_))) => {
                put(&mut self.users, k, v.and_then(|e| e.as_user()))
            }
            (EntityKey::Group(k), None | Some(Entity::Group(_))) => {
                put(&mut self.groups, k, v.and_then(|e| e.as_group()))
            }
            (EntityKey::Policy(k), None | Some(Entity::Policy(_))) => {
                put(&mut self.policies, k, v.and_then(|e| e.as_policy()))
            }
            (EntityKey::Role(k), None | Some(Entity::Role(_))) => {
                put(&mut self.roles, k, v.and_then(|e| e.as_role()))
            }
            (EntityKey::Revocation(k), None | Some(Entity::Revocation(_))) => put(
                &mut self.revoked_before,
                k,
                match v {
                    Some(Entity::Revocation(t)) => Some(t),
                    _ => None,
                },
            ),
            (EntityKey::OidcProvider(k), None | Some(Entity::OidcProvider(_))) => put(
                &mut self.oidc_providers,
                k,
                match v {
                    Some(Entity::OidcProvider(p)) => Some(p),
                    _ => None,
                },
            ),
            (key, Some(_)) => return Err(format!("a change of {key:?} carries another kind")),
        }
        Ok(())
    }

    /// Every entity as a change that creates it, in a stable order.
    pub fn changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        let mut push = |entity: EntityKey, value: Entity| {
            out.push(Change {
                entity,
                value: Some(value),
            })
        };
        for (k, v) in &self.policies {
            push(EntityKey::Policy(k.clone()), Entity::Policy(v.clone()));
        }
        for (k, v) in &self.groups {
            push(EntityKey::Group(k.clone()), Entity::Group(v.clone()));
        }
        for (k, v) in &self.users {
            push(EntityKey::User(k.clone()), Entity::User(v.clone()));
        }
        for (k, v) in &self.roles {
            push(EntityKey::Role(k.clone()), Entity::Role(v.clone()));
        }
        for (k, v) in &self.revoked_before {
            push(EntityKey::Revocation(k.clone()), Entity::Revocation(*v));
        }
        for (k, v) in &self.oidc_providers {
            push(
                EntityKey::OidcProvider(k.clone()),
                Entity::OidcProvider(v.clone()),
            );
        }
        out
    }

    /// The changes that turn `self` into `target`: only what differs.
    pub fn diff(&self, target: &StoreState) -> Vec<Change> {
        let mut out: Vec<Change> = target
            .changes()
            .into_iter()
            .filter(|c| self.get(&c.entity) != c.value)
            .collect();
        for c in self.changes() {
            if target.get(&c.entity).is_none() {
                out.push(Change {
                    entity: c.entity,
                    value: None,
                });
            }
        }
        out
    }
}

impl Entity {
    fn as_user(&self) -> Option<&StoredUser> {
        match self {
            Entity::User(u) => Some(u),
            _ => None,
        }
    }
    fn as_group(&self) -> Option<&StoredGroup> {
        match self {
            Entity::Group(g) => Some(g),
            _ => None,
        }
    }
    fn as_policy(&self) -> Option<&StoredPolicy> {
        match self {
            Entity::Policy(p) => Some(p),
            _ => None,
        }
    }
    fn as_role(&self) -> Option<&StoredRole> {
        match self {
            Entity::Role(r) => Some(r),
            _ => None,
        }
    }
}
