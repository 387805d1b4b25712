//! The directory snapshot: users, groups, access keys, managed policies and
//! roles by name and id, with policies already parsed so the request path
//! never parses anything. Built from the config file (whose entities it marks
//! as config-owned) plus the identity store's state.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use imbl::shared_ptr::DefaultSharedPtr;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::IdentityError;
use super::model::{
    Change, Entity, EntityKey, StoreState, StoredGroup, StoredKey, StoredOidcProvider,
    StoredPolicy, StoredRole, StoredUser, StoredVersion, Tag,
};
use super::principal::Principal;
use super::sessions::SessionKeys;
use crate::config::{Config, PolicyDecl};
use crate::policy::{Policy, PolicyKind};

/// A secret access key: redacted in `Debug`, wiped on drop.
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Arc::new(Zeroizing::new(s.into())))
    }

    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An inline policy with the label used in explanations (`group/devs/S3Access`).
#[derive(Debug, Clone)]
pub struct InlinePolicy {
    pub name: String,
    pub label: String,
    pub document: String,
    pub policy: Arc<Policy>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub user_id: String,
    pub created: DateTime<Utc>,
    pub groups: Vec<String>,
    pub policies: Vec<InlinePolicy>,
    /// Attached managed policy ARNs.
    pub attached: Vec<String>,
    /// Access key ids, active or not.
    pub keys: Vec<String>,
    /// The managed policy ARN bounding the user's permissions.
    pub boundary: Option<String>,
    /// Its tags: `aws:PrincipalTag/*` for its requests and sessions.
    pub tags: Arc<Vec<Tag>>,
    /// Declared in the config file, and therefore not changeable through the API.
    pub from_config: bool,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub group_id: String,
    pub created: DateTime<Utc>,
    pub policies: Vec<InlinePolicy>,
    pub attached: Vec<String>,
    pub from_config: bool,
}

/// A customer managed policy; `document` and `policy` are its default version's.
#[derive(Debug, Clone)]
pub struct ManagedPolicy {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub policy_id: String,
    pub description: Option<String>,
    pub document: String,
    pub policy: Arc<Policy>,
    pub created: DateTime<Utc>,
    /// Every version, oldest first.
    pub versions: Vec<StoredVersion>,
    pub default_version: u32,
    pub last_version: u32,
    /// When the default version last changed (`created` until then).
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub role_id: String,
    pub created: DateTime<Utc>,
    pub description: Option<String>,
    pub max_session_duration: u32,
    pub trust_document: String,
    pub trust: Arc<Policy>,
    pub policies: Vec<InlinePolicy>,
    pub attached: Vec<String>,
    /// The managed policy ARN bounding the role's permissions.
    pub boundary: Option<String>,
    pub tags: Arc<Vec<Tag>>,
}

/// Whose key an access key id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Root,
    User(String),
}

#[derive(Debug, Clone)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret: Secret,
    pub owner: KeyOwner,
    pub active: bool,
    pub created: DateTime<Utc>,
}

/// How many entities of each kind the directory holds; kept as entities
/// come and go, so that quotas never count by scanning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub store_users: usize,
    pub store_groups: usize,
    pub policies: usize,
    pub roles: usize,
    pub revocations: usize,
    pub oidc_providers: usize,
    /// Policies (inline or managed) that read `s3:ExistingObjectTag/*`:
    /// while there are none, no request needs an object's tags.
    pub object_tag_policies: usize,
}

/// How many of these inline policies read `s3:ExistingObjectTag/*`.
fn object_tag_uses(policies: &[InlinePolicy]) -> usize {
    policies
        .iter()
        .filter(|p| p.policy.uses_existing_object_tags())
        .count()
}

/// The directory's maps hash with foldhash, seeded per process: about a
/// quarter of SipHash's instructions for an access key's lookup on every
/// request. Only administrators (IAM calls, the config file, the shared
/// store) choose the keys inserted, so SipHash's guarantee against chosen
/// colliding keys buys nothing here.
type Map<K, V> = imbl::GenericHashMap<K, V, foldhash::fast::RandomState, DefaultSharedPtr>;
type Set<K> = imbl::GenericHashSet<K, foldhash::fast::RandomState, DefaultSharedPtr>;

/// One immutable view of every identity. The maps are persistent (shared
/// structure), so a snapshot with one entity changed costs what that entity
/// costs, however many there are.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub account_id: String,
    /// Keyed by lowercase name: IAM names are unique case-insensitively.
    users: Map<String, Arc<User>>,
    groups: Map<String, Arc<Group>>,
    roles: Map<String, Arc<Role>>,
    /// Keyed by ARN.
    policies: Map<String, Arc<ManagedPolicy>>,
    keys: Map<String, Arc<AccessKey>>,
    /// Unique id → sessions issued before this (Unix ms) are revoked.
    revoked_before: Map<String, i64>,
    /// OpenID Connect providers by ARN.
    oidc_providers: Map<String, Arc<StoredOidcProvider>>,
    /// The providers the config file declares (and owns), by ARN, with the
    /// token claims they turn into session tags (tag key, claim name).
    config_oidc: Map<String, Arc<Vec<(String, String)>>>,
    /// Lowercase group name → lowercase names of its member users.
    members: Map<String, Set<String>>,
    /// Managed policy ARN → how many users, groups and roles attach it.
    attachments: Map<String, usize>,
    /// Managed policy ARN → how many users and roles it bounds.
    boundaries: Map<String, usize>,
    counts: Counts,
    sessions: Option<Arc<SessionKeys>>,
    /// Creation time shown for config-declared entities: when the config was loaded.
    loaded: DateTime<Utc>,
    principals: PrincipalCache,
}

/// The principal of each access key used with this snapshot, built on first
/// use: a request shares it instead of building its own (five strings).
/// Published snapshots never change; a copy (`Clone`, the start of `apply`)
/// and any change applied in place start from an empty cache, so a cached
/// principal always reads what a fresh [`Principal::for_key`] would.
#[derive(Default)]
struct PrincipalCache(
    RwLock<std::collections::HashMap<String, Arc<Principal>, foldhash::fast::RandomState>>,
);

impl Clone for PrincipalCache {
    fn clone(&self) -> Self {
        PrincipalCache::default()
    }
}

impl fmt::Debug for PrincipalCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrincipalCache")
    }
}

impl PrincipalCache {
    fn clear(&mut self) {
        if let Ok(map) = self.0.get_mut() {
            map.clear();
        } else {
            *self = PrincipalCache::default();
        }
    }
}

/// A stable IAM-style unique id (`AIDA…`, `AGPA…`) derived from a name, so a
/// config-declared entity keeps its id across restarts.
pub fn derived_id(prefix: &str, account: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{account}/{prefix}/{name}").as_bytes());
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| ALPHABET[(b % 32) as usize] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn load_policies(
    config: &Config,
    owner: &str,
    decls: &[PolicyDecl],
) -> Result<Vec<InlinePolicy>, IdentityError> {
    decls
        .iter()
        .map(|d| {
            let label = format!("{owner}/{}", d.name);
            let document = config
                .policy_text(d)
                .map_err(|source| IdentityError::Read {
                    name: label.clone(),
                    source,
                })?;
            inline(&label, &d.name, &document, Strictness::Strict)
        })
        .collect()
}

/// What to do with a stored policy s3warden cannot enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strictness {
    /// Refuse it: loading at start-up, where the operator can act.
    Strict,
    /// Enforce "deny everything" in its place and log it: a change written by
    /// another instance (perhaps a newer release) must never widen access
    /// here, and must not stop the rest of the directory from updating.
    FailClosed,
}

const DENY_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Unenforceable","Effect":"Deny","Action":"*","Resource":"*"}]}"#;

/// Parses a policy the proxy will enforce: valid for AWS, and enforceable
/// by s3warden without widening access.
fn enforceable(document: &str, kind: PolicyKind, label: &str) -> Result<Policy, IdentityError> {
    Policy::parse(document, kind)
        .and_then(|p| p.check_enforceable().map(|()| p))
        .map_err(|source| IdentityError::Policy {
            name: label.to_string(),
            source: Box::new(source),
        })
}

/// An identity policy, or under [`Strictness::FailClosed`] one that denies
/// everything in place of one that cannot be enforced.
fn identity_policy(
    document: &str,
    label: &str,
    strictness: Strictness,
) -> Result<Policy, IdentityError> {
    match enforceable(document, PolicyKind::Identity, label) {
        Ok(p) => Ok(p),
        Err(e) if strictness == Strictness::FailClosed => {
            tracing::error!(error = %e, "a stored policy cannot be enforced; it denies everything until fixed");
            enforceable(DENY_ALL, PolicyKind::Identity, label)
        }
        Err(e) => Err(e),
    }
}

fn inline(
    label: &str,
    name: &str,
    document: &str,
    strictness: Strictness,
) -> Result<InlinePolicy, IdentityError> {
    let policy = identity_policy(document, label, strictness)?;
    Ok(InlinePolicy {
        name: name.to_string(),
        label: label.to_string(),
        document: document.to_string(),
        policy: Arc::new(policy),
    })
}

fn stored_inline(
    owner: &str,
    docs: &BTreeMap<String, String>,
    strictness: Strictness,
) -> Result<Vec<InlinePolicy>, IdentityError> {
    docs.iter()
        .map(|(name, doc)| inline(&format!("{owner}/{name}"), name, doc, strictness))
        .collect()
}

fn inline_documents(policies: &[InlinePolicy]) -> BTreeMap<String, String> {
    policies
        .iter()
        .map(|p| (p.name.clone(), p.document.clone()))
        .collect()
}

/// Adds `delta` to a per-ARN count, dropping it at zero.
fn count(counts: &mut Map<String, usize>, arn: &str, delta: isize) {
    let n = counts.get(arn).copied().unwrap_or(0) as isize + delta;
    if n > 0 {
        counts.insert(arn.to_string(), n as usize);
    } else {
        counts.remove(arn);
    }
}

/// The ARN of an IAM entity: `arn:aws:iam::ACCOUNT:KIND{PATH}NAME`.
pub fn iam_arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

impl Directory {
    /// The directory declared by a (validated) config file.
    pub fn from_config(config: &Config) -> Result<Directory, IdentityError> {
        let account = &config.account_id;
        let now = Utc::now();
        let mut dir = Directory {
            account_id: account.clone(),
            loaded: now,
            ..Directory::default()
        };
        dir.keys.insert(
            config.root.access_key_id.clone(),
            Arc::new(AccessKey {
                access_key_id: config.root.access_key_id.clone(),
                secret: Secret::new(config.root.secret_access_key.clone()),
                owner: KeyOwner::Root,
                active: true,
                created: now,
            }),
        );
        for g in &config.groups {
            let group = Group {
                name: g.name.clone(),
                path: "/".into(),
                arn: iam_arn(account, "group", "/", &g.name),
                group_id: derived_id("AGPA", account, &g.name),
                created: now,
                policies: load_policies(config, &format!("group/{}", g.name), &g.policies)?,
                attached: Vec::new(),
                from_config: true,
            };
            dir.put_group(&g.name.to_ascii_lowercase(), Some(group));
        }
        for u in &config.users {
            let groups = dir.group_spellings(&u.groups);
            let user = User {
                name: u.name.clone(),
                path: "/".into(),
                arn: iam_arn(account, "user", "/", &u.name),
                user_id: derived_id("AIDA", account, &u.name),
                created: now,
                groups,
                policies: load_policies(config, &format!("user/{}", u.name), &u.policies)?,
                attached: Vec::new(),
                keys: u
                    .access_keys
                    .iter()
                    .map(|k| k.access_key_id.clone())
                    .collect(),
                boundary: None,
                tags: Arc::default(),
                from_config: true,
            };
            let keys = u
                .access_keys
                .iter()
                .map(|k| AccessKey {
                    access_key_id: k.access_key_id.clone(),
                    secret: Secret::new(k.secret_access_key.clone()),
                    owner: KeyOwner::User(u.name.clone()),
                    active: true,
                    created: now,
                })
                .collect();
            dir.put_user(&u.name.to_ascii_lowercase(), Some((user, keys)));
        }
        for p in &config.oidc_providers {
            // Validated with the config.
            let Ok(host_path) = super::oidc::provider_host_path(&p.url) else {
                continue;
            };
            let arn = super::oidc::provider_arn(account, &host_path);
            let tag_claims = p
                .tag_claims
                .iter()
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect();
            dir.config_oidc.insert(arn.clone(), Arc::new(tag_claims));
            dir.oidc_providers.insert(
                arn,
                Arc::new(StoredOidcProvider {
                    url: host_path,
                    client_ids: p.client_ids.clone(),
                    thumbprints: Vec::new(),
                    created: now,
                    tags: p
                        .tags
                        .iter()
                        .map(|(key, value)| Tag {
                            key: key.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                }),
            );
        }
        Ok(dir)
    }

    /// Drops what in a store state refers to config entities that no longer
    /// exist (a membership in a group removed from the config, a revocation
    /// mark of a removed user) and returns what was dropped, for the log.
    /// A store entity with the name or key id of a config entity is an error:
    /// the operator must decide which one to keep.
    pub fn reconcile(&self, state: &mut StoreState) -> Result<Vec<String>, IdentityError> {
        let conflict = |what: String| Err(IdentityError::Conflict(what));
        for (key, u) in &state.users {
            if self.users.contains_key(key) {
                return conflict(format!("user {:?}", u.name));
            }
            for k in &u.access_keys {
                if self.keys.contains_key(&k.access_key_id) {
                    return conflict(format!(
                        "access key {:?} of user {:?}",
                        k.access_key_id, u.name
                    ));
                }
            }
        }
        for (key, g) in &state.groups {
            if self.groups.contains_key(key) {
                return conflict(format!("group {:?}", g.name));
            }
        }
        for arn in state.oidc_providers.keys() {
            if self.config_oidc.contains_key(arn) {
                return conflict(format!("OpenID Connect provider {arn:?}"));
            }
        }
        let mut dropped = Vec::new();
        let groups: HashSet<String> = state.groups.keys().cloned().collect();
        let policies: HashSet<String> = state.policies.keys().cloned().collect();
        for u in state.users.values_mut() {
            u.groups.retain(|g| {
                let keep = groups.contains(&g.to_ascii_lowercase()) || self.group(g).is_some();
                if !keep {
                    dropped.push(format!("membership of user {:?} in group {g:?}", u.name));
                }
                keep
            });
            u.attached.retain(|a| policies.contains(a));
        }
        for g in state.groups.values_mut() {
            g.attached.retain(|a| policies.contains(a));
        }
        for r in state.roles.values_mut() {
            r.attached.retain(|a| policies.contains(a));
        }
        let mut ids: HashSet<String> = self.users.values().map(|u| u.user_id.clone()).collect();
        ids.extend(state.users.values().map(|u| u.user_id.clone()));
        ids.extend(state.roles.values().map(|r| r.role_id.clone()));
        ids.insert(self.account_id.clone());
        state.revoked_before.retain(|id, _| {
            let keep = ids.contains(id);
            if !keep {
                dropped.push(format!("session revocation of {id}"));
            }
            keep
        });
        Ok(dropped)
    }

    /// Every identity s3warden serves from a file store: the config's and
    /// the store's, read without disturbing a server that may be running on
    /// the same store.
    pub fn load(config: &Config) -> Result<Directory, IdentityError> {
        let state = super::store::Store::read_only(&config.store.path)?;
        Directory::from_config(config)?.with_store(&state)
    }

    /// This (config) directory plus the entities of a store state; a stored
    /// policy that cannot be enforced is an error.
    pub fn with_store(&self, state: &StoreState) -> Result<Directory, IdentityError> {
        let mut dir = self.clone();
        for c in state.changes() {
            dir.apply_one(&c, Strictness::Strict)?;
        }
        Ok(dir)
    }

    /// This directory with some entities changed; touches only those. A
    /// stored policy that cannot be enforced denies everything instead.
    pub fn apply(&self, changes: &[Change]) -> Directory {
        let mut dir = self.clone();
        for c in changes {
            if let Err(e) = dir.apply_one(c, Strictness::FailClosed) {
                // Only a role's trust policy gets here: without it the role
                // cannot be assumed and its sessions have no identity.
                tracing::error!(error = %e, entity = ?c.entity, "a stored entity cannot be enforced; it is left out");
                let _ = dir.apply_one(
                    &Change {
                        entity: c.entity.clone(),
                        value: None,
                    },
                    Strictness::FailClosed,
                );
            }
        }
        dir
    }

    /// Applies a change made here, refusing anything that cannot be enforced.
    pub fn apply_strict(&mut self, changes: &[Change]) -> Result<(), IdentityError> {
        for c in changes {
            self.apply_one(c, Strictness::Strict)?;
        }
        Ok(())
    }

    /// This directory's config entities with another directory's store
    /// entities: what a config reload keeps of the store.
    pub fn rebase(&self, store: &Directory) -> Result<Directory, IdentityError> {
        let mut state = store.store_state();
        let dropped = self.reconcile(&mut state)?;
        for what in dropped {
            tracing::warn!(dropped = %what, "the identity store refers to an entity the config no longer declares");
        }
        self.with_store(&state)
    }

    fn apply_one(&mut self, c: &Change, strictness: Strictness) -> Result<(), IdentityError> {
        self.principals.clear();
        match (&c.entity, &c.value) {
            (EntityKey::User(k), Some(Entity::User(u))) => {
                let built = self.build_user(u, strictness)?;
                self.put_user(k, Some(built));
            }
            (EntityKey::User(k), None) => self.put_user(k, None),
            (EntityKey::Group(k), Some(Entity::Group(g))) => {
                let built = self.build_group(g, strictness)?;
                self.put_group(k, Some(built));
            }
            (EntityKey::Group(k), None) => self.put_group(k, None),
            (EntityKey::Policy(k), Some(Entity::Policy(p))) => {
                let built = self.build_policy(p, strictness)?;
                self.put_policy(k, Some(built));
            }
            (EntityKey::Policy(k), None) => self.put_policy(k, None),
            (EntityKey::Role(k), Some(Entity::Role(r))) => {
                let built = self.build_role(r, strictness)?;
                self.put_role(k, Some(built));
            }
            (EntityKey::Role(k), None) => self.put_role(k, None),
            (EntityKey::Revocation(k), Some(Entity::Revocation(t))) => {
                if self.revoked_before.insert(k.clone(), *t).is_none() {
                    self.counts.revocations += 1;
                }
            }
            (EntityKey::Revocation(k), None) => {
                if self.revoked_before.remove(k).is_some() {
                    self.counts.revocations -= 1;
                }
            }
            (EntityKey::OidcProvider(k), _) if self.config_oidc.contains_key(k) => {
                tracing::warn!(provider = %k, "a stored change of a provider the config declares is ignored");
            }
            (EntityKey::OidcProvider(k), Some(Entity::OidcProvider(p))) => {
                if self
                    .oidc_providers
                    .insert(k.clone(), Arc::new(p.clone()))
                    .is_none()
                {
                    self.counts.oidc_providers += 1;
                }
            }
            (EntityKey::OidcProvider(k), None) => {
                if self.oidc_providers.remove(k).is_some() {
                    self.counts.oidc_providers -= 1;
                }
            }
            (key, Some(_)) => {
                return Err(IdentityError::Internal(format!(
                    "a change of {key:?} carries another kind of entity"
                )));
            }
        }
        Ok(())
    }

    fn build_policy(
        &self,
        p: &StoredPolicy,
        strictness: Strictness,
    ) -> Result<ManagedPolicy, IdentityError> {
        let policy = identity_policy(&p.document, &p.arn, strictness)?;
        Ok(ManagedPolicy {
            name: p.name.clone(),
            path: p.path.clone(),
            arn: p.arn.clone(),
            policy_id: p.policy_id.clone(),
            description: p.description.clone(),
            document: p.document.clone(),
            policy: Arc::new(policy),
            created: p.created,
            versions: p.all_versions(),
            default_version: p.default_version,
            last_version: p.last_version,
            updated: p.updated.unwrap_or(p.created),
        })
    }

    fn build_group(&self, g: &StoredGroup, strictness: Strictness) -> Result<Group, IdentityError> {
        Ok(Group {
            name: g.name.clone(),
            path: g.path.clone(),
            arn: iam_arn(&self.account_id, "group", &g.path, &g.name),
            group_id: g.group_id.clone(),
            created: g.created,
            policies: stored_inline(&format!("group/{}", g.name), &g.policies, strictness)?,
            attached: g.attached.clone(),
            from_config: false,
        })
    }

    fn build_user(
        &self,
        u: &StoredUser,
        strictness: Strictness,
    ) -> Result<(User, Vec<AccessKey>), IdentityError> {
        let keys = u
            .access_keys
            .iter()
            .map(|k| AccessKey {
                access_key_id: k.access_key_id.clone(),
                secret: Secret::new(k.secret_access_key.clone()),
                owner: KeyOwner::User(u.name.clone()),
                active: k.active,
                created: k.created,
            })
            .collect();
        let user = User {
            name: u.name.clone(),
            path: u.path.clone(),
            arn: iam_arn(&self.account_id, "user", &u.path, &u.name),
            user_id: u.user_id.clone(),
            created: u.created,
            groups: self.group_spellings(&u.groups),
            policies: stored_inline(&format!("user/{}", u.name), &u.policies, strictness)?,
            attached: u.attached.clone(),
            keys: u
                .access_keys
                .iter()
                .map(|k| k.access_key_id.clone())
                .collect(),
            boundary: u.permissions_boundary.clone(),
            tags: Arc::new(u.tags.clone()),
            from_config: false,
        };
        Ok((user, keys))
    }

    fn build_role(&self, r: &StoredRole, strictness: Strictness) -> Result<Role, IdentityError> {
        let trust = enforceable(
            &r.trust_policy,
            PolicyKind::Resource,
            &format!("role/{}/trust", r.name),
        )?;
        Ok(Role {
            name: r.name.clone(),
            path: r.path.clone(),
            arn: iam_arn(&self.account_id, "role", &r.path, &r.name),
            role_id: r.role_id.clone(),
            created: r.created,
            description: r.description.clone(),
            max_session_duration: r.max_session_duration,
            trust_document: r.trust_policy.clone(),
            trust: Arc::new(trust),
            policies: stored_inline(&format!("role/{}", r.name), &r.policies, strictness)?,
            attached: r.attached.clone(),
            boundary: r.permissions_boundary.clone(),
            tags: Arc::new(r.tags.clone()),
        })
    }

    fn attach(&mut self, arns: &[String], delta: isize) {
        for a in arns {
            count(&mut self.attachments, a, delta);
        }
    }

    fn bound(&mut self, arn: Option<&String>, delta: isize) {
        if let Some(a) = arn {
            count(&mut self.boundaries, a, delta);
        }
    }

    /// Replaces (or removes) one user with its keys, keeping the key map,
    /// the membership index, the attachment counts and the counts in step.
    fn put_user(&mut self, key: &str, user: Option<(User, Vec<AccessKey>)>) {
        if let Some(old) = self.users.remove(key) {
            for k in &old.keys {
                self.keys.remove(k);
            }
            for g in &old.groups {
                let g = g.to_ascii_lowercase();
                if let Some(set) = self.members.get_mut(&g) {
                    set.remove(key);
                    if set.is_empty() {
                        self.members.remove(&g);
                    }
                }
            }
            self.attach(&old.attached, -1);
            self.bound(old.boundary.as_ref(), -1);
            self.counts.object_tag_policies -= object_tag_uses(&old.policies);
            if !old.from_config {
                self.counts.store_users -= 1;
            }
        }
        let Some((user, keys)) = user else { return };
        for k in keys {
            self.keys.insert(k.access_key_id.clone(), Arc::new(k));
        }
        for g in &user.groups {
            self.members
                .entry(g.to_ascii_lowercase())
                .or_default()
                .insert(key.to_string());
        }
        self.attach(&user.attached, 1);
        self.bound(user.boundary.as_ref(), 1);
        self.counts.object_tag_policies += object_tag_uses(&user.policies);
        if !user.from_config {
            self.counts.store_users += 1;
        }
        self.users.insert(key.to_string(), Arc::new(user));
    }

    fn put_group(&mut self, key: &str, group: Option<Group>) {
        if let Some(old) = self.groups.remove(key) {
            self.attach(&old.attached, -1);
            self.counts.object_tag_policies -= object_tag_uses(&old.policies);
            if !old.from_config {
                self.counts.store_groups -= 1;
            }
        }
        let Some(group) = group else { return };
        self.attach(&group.attached, 1);
        self.counts.object_tag_policies += object_tag_uses(&group.policies);
        if !group.from_config {
            self.counts.store_groups += 1;
        }
        self.groups.insert(key.to_string(), Arc::new(group));
    }

    fn put_role(&mut self, key: &str, role: Option<Role>) {
        if let Some(old) = self.roles.remove(key) {
            self.attach(&old.attached, -1);
            self.bound(old.boundary.as_ref(), -1);
            self.counts.object_tag_policies -= object_tag_uses(&old.policies);
            self.counts.roles -= 1;
        }
        let Some(role) = role else { return };
        self.attach(&role.attached, 1);
        self.bound(role.boundary.as_ref(), 1);
        self.counts.object_tag_policies += object_tag_uses(&role.policies);
        self.counts.roles += 1;
        self.roles.insert(key.to_string(), Arc::new(role));
    }

    fn put_policy(&mut self, arn: &str, policy: Option<ManagedPolicy>) {
        if let Some(old) = self.policies.remove(arn) {
            self.counts.policies -= 1;
            self.counts.object_tag_policies -= usize::from(old.policy.uses_existing_object_tags());
        }
        if let Some(p) = policy {
            self.counts.policies += 1;
            self.counts.object_tag_policies += usize::from(p.policy.uses_existing_object_tags());
            self.policies.insert(arn.to_string(), Arc::new(p));
        }
    }

    /// Group references in the spelling the groups were declared with.
    fn group_spellings(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .map(|g| {
                self.group(g)
                    .map(|x| x.name.clone())
                    .unwrap_or_else(|| g.clone())
            })
            .collect()
    }

    /// A store user as stored (secrets included); `None` for a config user.
    pub fn stored_user(&self, key: &str) -> Option<StoredUser> {
        let u = self.users.get(key).filter(|u| !u.from_config)?;
        Some(StoredUser {
            name: u.name.clone(),
            path: u.path.clone(),
            user_id: u.user_id.clone(),
            created: u.created,
            groups: u.groups.clone(),
            policies: inline_documents(&u.policies),
            attached: u.attached.clone(),
            access_keys: u
                .keys
                .iter()
                .filter_map(|id| self.keys.get(id))
                .map(|k| StoredKey {
                    access_key_id: k.access_key_id.clone(),
                    secret_access_key: k.secret.expose().to_string(),
                    active: k.active,
                    created: k.created,
                })
                .collect(),
            permissions_boundary: u.boundary.clone(),
            tags: u.tags.to_vec(),
        })
    }

    pub fn stored_group(&self, key: &str) -> Option<StoredGroup> {
        let g = self.groups.get(key).filter(|g| !g.from_config)?;
        Some(StoredGroup {
            name: g.name.clone(),
            path: g.path.clone(),
            group_id: g.group_id.clone(),
            created: g.created,
            policies: inline_documents(&g.policies),
            attached: g.attached.clone(),
        })
    }

    pub fn stored_policy(&self, arn: &str) -> Option<StoredPolicy> {
        let p = self.policies.get(arn)?;
        Some(StoredPolicy {
            name: p.name.clone(),
            path: p.path.clone(),
            policy_id: p.policy_id.clone(),
            arn: p.arn.clone(),
            description: p.description.clone(),
            document: p.document.clone(),
            created: p.created,
            versions: p.versions.clone(),
            default_version: p.default_version,
            last_version: p.last_version,
            updated: (p.updated != p.created).then_some(p.updated),
        })
    }

    pub fn stored_role(&self, key: &str) -> Option<StoredRole> {
        let r = self.roles.get(key)?;
        Some(StoredRole {
            name: r.name.clone(),
            path: r.path.clone(),
            role_id: r.role_id.clone(),
            created: r.created,
            description: r.description.clone(),
            max_session_duration: r.max_session_duration,
            trust_policy: r.trust_document.clone(),
            policies: inline_documents(&r.policies),
            attached: r.attached.clone(),
            permissions_boundary: r.boundary.clone(),
            tags: r.tags.to_vec(),
        })
    }

    /// Everything the identity store holds, as stored.
    pub fn store_state(&self) -> StoreState {
        let mut state = StoreState::empty();
        for k in self.users.keys() {
            if let Some(u) = self.stored_user(k) {
                state.users.insert(k.clone(), u);
            }
        }
        for k in self.groups.keys() {
            if let Some(g) = self.stored_group(k) {
                state.groups.insert(k.clone(), g);
            }
        }
        for k in self.policies.keys() {
            if let Some(p) = self.stored_policy(k) {
                state.policies.insert(k.clone(), p);
            }
        }
        for k in self.roles.keys() {
            if let Some(r) = self.stored_role(k) {
                state.roles.insert(k.clone(), r);
            }
        }
        state.revoked_before = self
            .revoked_before
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        state.oidc_providers = self
            .oidc_providers
            .iter()
            .filter(|(k, _)| !self.config_oidc.contains_key(*k))
            .map(|(k, v)| (k.clone(), StoredOidcProvider::clone(v)))
            .collect();
        state
    }

    /// Gives the directory the session keys, so that it can open tokens.
    pub fn with_sessions(mut self, sessions: Arc<SessionKeys>) -> Directory {
        self.sessions = Some(sessions);
        self
    }

    pub fn sessions(&self) -> Option<&Arc<SessionKeys>> {
        self.sessions.as_ref()
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        // Names are mostly looked up in the lowercase they are keyed by.
        if !name.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.users.get(name).map(Arc::as_ref);
        }
        self.users.get(&name.to_ascii_lowercase()).map(Arc::as_ref)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(&name.to_ascii_lowercase()).map(Arc::as_ref)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(&name.to_ascii_lowercase()).map(Arc::as_ref)
    }

    pub fn managed_policy(&self, arn: &str) -> Option<&ManagedPolicy> {
        self.policies.get(arn).map(Arc::as_ref)
    }

    /// The principal owning an active access key, shared by every request
    /// that uses the key with this snapshot (see [`PrincipalCache`]).
    pub fn principal_for_key(&self, id: &str) -> Option<Arc<Principal>> {
        if let Some(p) = self
            .principals
            .0
            .read()
            .ok()
            .and_then(|m| m.get(id).cloned())
        {
            return Some(p);
        }
        let p = Arc::new(Principal::for_key(self, id)?);
        if let Ok(mut m) = self.principals.0.write() {
            m.entry(id.to_string()).or_insert_with(|| p.clone());
        }
        Some(p)
    }

    /// An active access key by id.
    pub fn access_key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.get(id).filter(|k| k.active).map(Arc::as_ref)
    }

    /// An access key by id, active or not.
    pub fn any_access_key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.get(id).map(Arc::as_ref)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values().map(Arc::as_ref)
    }

    /// How many users there are, config and store alike.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// How many groups there are, config and store alike.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values().map(Arc::as_ref)
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values().map(Arc::as_ref)
    }

    pub fn managed_policies(&self) -> impl Iterator<Item = &ManagedPolicy> {
        self.policies.values().map(Arc::as_ref)
    }

    /// The users that are members of a group.
    pub fn members(&self, group: &str) -> Vec<&User> {
        self.members
            .get(&group.to_ascii_lowercase())
            .map(|set| {
                set.iter()
                    .filter_map(|u| self.users.get(u))
                    .map(Arc::as_ref)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many users, groups and roles a managed policy is attached to.
    pub fn attachment_count(&self, arn: &str) -> usize {
        self.attachments.get(arn).copied().unwrap_or(0)
    }

    /// How many users and roles a managed policy bounds.
    pub fn boundary_count(&self, arn: &str) -> usize {
        self.boundaries.get(arn).copied().unwrap_or(0)
    }

    /// When sessions of the principal with this unique id were last revoked (Unix ms).
    pub fn revoked_before(&self, unique_id: &str) -> Option<i64> {
        self.revoked_before.get(unique_id).copied()
    }

    /// An OpenID Connect provider by ARN.
    pub fn oidc_provider(&self, arn: &str) -> Option<&StoredOidcProvider> {
        self.oidc_providers.get(arn).map(Arc::as_ref)
    }

    /// A store-owned OpenID Connect provider (`None` for a config one).
    pub fn stored_oidc_provider(&self, arn: &str) -> Option<StoredOidcProvider> {
        if self.config_oidc.contains_key(arn) {
            return None;
        }
        self.oidc_providers
            .get(arn)
            .map(|p| StoredOidcProvider::clone(p))
    }

    /// Whether the config file declares (and owns) this provider.
    pub fn oidc_provider_from_config(&self, arn: &str) -> bool {
        self.config_oidc.contains_key(arn)
    }

    /// The token claims a config-declared provider turns into session tags,
    /// as (tag key, claim name); none for others.
    pub fn oidc_tag_claims(&self, arn: &str) -> &[(String, String)] {
        self.config_oidc.get(arn).map_or(&[], |c| c.as_slice())
    }

    /// Every OpenID Connect provider with its ARN.
    pub fn oidc_providers(&self) -> impl Iterator<Item = (&String, &StoredOidcProvider)> {
        self.oidc_providers.iter().map(|(k, v)| (k, v.as_ref()))
    }

    /// When the config was loaded: the creation time of config-declared entities.
    pub fn loaded(&self) -> DateTime<Utc> {
        self.loaded
    }
}
