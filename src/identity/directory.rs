//! The directory snapshot: users, groups and access keys by name and id, with
//! policies already parsed so the request path never parses anything.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::IdentityError;
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
    pub arn: String,
    pub user_id: String,
    pub groups: Vec<String>,
    pub policies: Vec<InlinePolicy>,
    /// Declared in the config file, and therefore not changeable through the API.
    pub from_config: bool,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub arn: String,
    pub group_id: String,
    pub policies: Vec<InlinePolicy>,
    pub from_config: bool,
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
}

/// One immutable view of every identity.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub account_id: String,
    /// Keyed by lowercase name: IAM names are unique case-insensitively.
    users: HashMap<String, Arc<User>>,
    groups: HashMap<String, Arc<Group>>,
    keys: HashMap<String, AccessKey>,
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
            let policy = Policy::parse(&document, PolicyKind::Identity)
                .and_then(|p| p.check_enforceable().map(|()| p))
                .map_err(|source| IdentityError::Policy {
                    name: label.clone(),
                    source: Box::new(source),
                })?;
            Ok(InlinePolicy {
                name: d.name.clone(),
                label,
                document,
                policy: Arc::new(policy),
            })
        })
        .collect()
}

impl Directory {
    /// The directory declared by a (validated) config file.
    pub fn from_config(config: &Config) -> Result<Directory, IdentityError> {
        let account = &config.account_id;
        let mut dir = Directory {
            account_id: account.clone(),
            ..Directory::default()
        };
        dir.keys.insert(
            config.root.access_key_id.clone(),
            AccessKey {
                access_key_id: config.root.access_key_id.clone(),
                secret: Secret::new(config.root.secret_access_key.clone()),
                owner: KeyOwner::Root,
                active: true,
            },
        );
        for g in &config.groups {
            let group = Group {
                name: g.name.clone(),
                arn: format!("arn:aws:iam::{account}:group/{}", g.name),
                group_id: derived_id("AGPA", account, &g.name),
                policies: load_policies(config, &format!("group/{}", g.name), &g.policies)?,
                from_config: true,
            };
            dir.groups
                .insert(g.name.to_ascii_lowercase(), Arc::new(group));
        }
        for u in &config.users {
            // Group references keep the group's declared spelling.
            let groups = u
                .groups
                .iter()
                .map(|g| {
                    dir.group(g)
                        .map(|x| x.name.clone())
                        .unwrap_or_else(|| g.clone())
                })
                .collect();
            let user = User {
                name: u.name.clone(),
                arn: format!("arn:aws:iam::{account}:user/{}", u.name),
                user_id: derived_id("AIDA", account, &u.name),
                groups,
                policies: load_policies(config, &format!("user/{}", u.name), &u.policies)?,
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
                    },
                );
            }
            dir.users
                .insert(u.name.to_ascii_lowercase(), Arc::new(user));
        }
        Ok(dir)
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(&name.to_ascii_lowercase()).map(Arc::as_ref)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(&name.to_ascii_lowercase()).map(Arc::as_ref)
    }

    /// An active access key by id.
    pub fn access_key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.get(id).filter(|k| k.active)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values().map(Arc::as_ref)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values().map(Arc::as_ref)
    }
}
