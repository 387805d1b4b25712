//! The directory snapshot: users, groups, access keys, managed policies and
//! roles by name and id, with policies already parsed so the request path
//! never parses anything. Built from the config file (whose entities it marks
//! as config-owned) plus the identity store's state.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::IdentityError;
use super::model::StoreState;
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

/// A customer managed policy.
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

/// One immutable view of every identity.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub account_id: String,
    /// Keyed by lowercase name: IAM names are unique case-insensitively.
    users: HashMap<String, Arc<User>>,
    groups: HashMap<String, Arc<Group>>,
    roles: HashMap<String, Arc<Role>>,
    /// Keyed by ARN.
    policies: HashMap<String, Arc<ManagedPolicy>>,
    keys: HashMap<String, AccessKey>,
    /// Unique id → sessions issued before this (Unix ms) are revoked.
    revoked_before: HashMap<String, i64>,
    sessions: Option<Arc<SessionKeys>>,
    /// Creation time shown for config-declared entities: when the config was loaded.
    loaded: DateTime<Utc>,
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
            inline(&label, &d.name, &document)
        })
        .collect()
}

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

fn inline(label: &str, name: &str, document: &str) -> Result<InlinePolicy, IdentityError> {
    let policy = enforceable(document, PolicyKind::Identity, label)?;
    Ok(InlinePolicy {
        name: name.to_string(),
        label: label.to_string(),
        document: document.to_string(),
        policy: Arc::new(policy),
    })
}

fn stored_inline(
    owner: &str,
    docs: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<InlinePolicy>, IdentityError> {
    docs.iter()
        .map(|(name, doc)| inline(&format!("{owner}/{name}"), name, doc))
        .collect()
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
            AccessKey {
                access_key_id: config.root.access_key_id.clone(),
                secret: Secret::new(config.root.secret_access_key.clone()),
                owner: KeyOwner::Root,
                active: true,
                created: now,
            },
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
            dir.groups
                .insert(g.name.to_ascii_lowercase(), Arc::new(group));
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
                from_config: true,
            };
            for k in &u.access_keys {
                dir.keys.insert(
                    k.access_key_id.clone(),
                    AccessKey {
                        access_key_id: k.access_key_id.clone(),
                        secret: Secret::new(k.secret_access_key.clone()),
                        owner: KeyOwner::User(u.name.clone()),
                        active: true,
                        created: now,
                    },
                );
            }
            dir.users
                .insert(u.name.to_ascii_lowercase(), Arc::new(user));
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
        let mut dropped = Vec::new();
        let groups: Vec<String> = state.groups.keys().cloned().collect();
        let policies: Vec<String> = state.policies.keys().cloned().collect();
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
        let mut ids: Vec<String> = self.users.values().map(|u| u.user_id.clone()).collect();
        ids.extend(state.users.values().map(|u| u.user_id.clone()));
        ids.extend(state.roles.values().map(|r| r.role_id.clone()));
        ids.push(self.account_id.clone());
        state.revoked_before.retain(|id, _| {
            let keep = ids.contains(id);
            if !keep {
                dropped.push(format!("session revocation of {id}"));
            }
            keep
        });
        Ok(dropped)
    }

    /// Every identity s3warden serves: the config's and the store's, read
    /// without disturbing a server that may be running on the same store.
    pub fn load(config: &Config) -> Result<Directory, IdentityError> {
        let state = super::store::Store::read_only(&config.store.path)?;
        Directory::from_config(config)?.with_store(&state)
    }

    /// This (config) directory plus the entities of a store state.
    pub fn with_store(&self, state: &StoreState) -> Result<Directory, IdentityError> {
        let mut dir = self.clone();
        let account = self.account_id.clone();
        for p in state.policies.values() {
            let policy = enforceable(&p.document, PolicyKind::Identity, &p.arn)?;
            dir.policies.insert(
                p.arn.clone(),
                Arc::new(ManagedPolicy {
                    name: p.name.clone(),
                    path: p.path.clone(),
                    arn: p.arn.clone(),
                    policy_id: p.policy_id.clone(),
                    description: p.description.clone(),
                    document: p.document.clone(),
                    policy: Arc::new(policy),
                    created: p.created,
                }),
            );
        }
        for (key, g) in &state.groups {
            dir.groups.insert(
                key.clone(),
                Arc::new(Group {
                    name: g.name.clone(),
                    path: g.path.clone(),
                    arn: iam_arn(&account, "group", &g.path, &g.name),
                    group_id: g.group_id.clone(),
                    created: g.created,
                    policies: stored_inline(&format!("group/{}", g.name), &g.policies)?,
                    attached: g.attached.clone(),
                    from_config: false,
                }),
            );
        }
        for (key, u) in &state.users {
            for k in &u.access_keys {
                dir.keys.insert(
                    k.access_key_id.clone(),
                    AccessKey {
                        access_key_id: k.access_key_id.clone(),
                        secret: Secret::new(k.secret_access_key.clone()),
                        owner: KeyOwner::User(u.name.clone()),
                        active: k.active,
                        created: k.created,
                    },
                );
            }
            let groups = dir.group_spellings(&u.groups);
            dir.users.insert(
                key.clone(),
                Arc::new(User {
                    name: u.name.clone(),
                    path: u.path.clone(),
                    arn: iam_arn(&account, "user", &u.path, &u.name),
                    user_id: u.user_id.clone(),
                    created: u.created,
                    groups,
                    policies: stored_inline(&format!("user/{}", u.name), &u.policies)?,
                    attached: u.attached.clone(),
                    keys: u
                        .access_keys
                        .iter()
                        .map(|k| k.access_key_id.clone())
                        .collect(),
                    from_config: false,
                }),
            );
        }
        for (key, r) in &state.roles {
            let trust = enforceable(
                &r.trust_policy,
                PolicyKind::Resource,
                &format!("role/{}/trust", r.name),
            )?;
            dir.roles.insert(
                key.clone(),
                Arc::new(Role {
                    name: r.name.clone(),
                    path: r.path.clone(),
                    arn: iam_arn(&account, "role", &r.path, &r.name),
                    role_id: r.role_id.clone(),
                    created: r.created,
                    description: r.description.clone(),
                    max_session_duration: r.max_session_duration,
                    trust_document: r.trust_policy.clone(),
                    trust: Arc::new(trust),
                    policies: stored_inline(&format!("role/{}", r.name), &r.policies)?,
                    attached: r.attached.clone(),
                }),
            );
        }
        dir.revoked_before = state
            .revoked_before
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        Ok(dir)
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

    /// Gives the directory the session keys, so that it can open tokens.
    pub fn with_sessions(mut self, sessions: Arc<SessionKeys>) -> Directory {
        self.sessions = Some(sessions);
        self
    }

    pub fn sessions(&self) -> Option<&Arc<SessionKeys>> {
        self.sessions.as_ref()
    }

    pub fn user(&self, name: &str) -> Option<&User> {
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

    /// An active access key by id.
    pub fn access_key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.get(id).filter(|k| k.active)
    }

    /// An access key by id, active or not.
    pub fn any_access_key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.get(id)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values().map(Arc::as_ref)
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
        self.users()
            .filter(|u| u.groups.iter().any(|g| g.eq_ignore_ascii_case(group)))
            .collect()
    }

    /// How many users, groups and roles a managed policy is attached to.
    pub fn attachment_count(&self, arn: &str) -> usize {
        self.users()
            .filter(|u| u.attached.iter().any(|a| a == arn))
            .count()
            + self
                .groups()
                .filter(|g| g.attached.iter().any(|a| a == arn))
                .count()
            + self
                .roles()
                .filter(|r| r.attached.iter().any(|a| a == arn))
                .count()
    }

    /// When sessions of the principal with this unique id were last revoked (Unix ms).
    pub fn revoked_before(&self, unique_id: &str) -> Option<i64> {
        self.revoked_before.get(unique_id).copied()
    }

    /// When the config was loaded: the creation time of config-declared entities.
    pub fn loaded(&self) -> DateTime<Utc> {
        self.loaded
    }
}
