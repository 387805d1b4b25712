//! Who is asking: users, groups, access keys and their policies, held as an
//! immutable in-memory [`Directory`] snapshot that the request path reads
//! without locks and that is swapped atomically when identities change.
//!
//! Follows IAM: a user's permissions are its inline policies plus those of
//! every group it belongs to; the configured root principal may do anything.

mod directory;
mod principal;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use directory::{AccessKey, Directory, Group, InlinePolicy, KeyOwner, Secret, User};
pub use principal::{Principal, PrincipalKind};

use crate::policy::{self, Decision, NamedPolicy, Reason, StatementRef};

/// Why identities could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("policy {name:?}: {source}")]
    Policy {
        name: String,
        source: Box<policy::PolicyError>,
    },
    #[error("reading policy {name:?}: {source}")]
    Read {
        name: String,
        source: std::io::Error,
    },
}

/// The live directory: readers take a snapshot, writers swap in a new one.
pub struct Identities {
    current: ArcSwap<Directory>,
}

impl Identities {
    pub fn new(dir: Directory) -> Self {
        Identities {
            current: ArcSwap::from_pointee(dir),
        }
    }

    /// The current snapshot; cheap, lock-free.
    pub fn snapshot(&self) -> Arc<Directory> {
        self.current.load_full()
    }

    /// Replaces the snapshot; requests already running keep the old one.
    pub fn replace(&self, dir: Directory) {
        self.current.store(Arc::new(dir));
    }
}

/// The decision for the root principal: everything is allowed.
pub fn root_decision() -> Decision {
    Decision {
        allowed: true,
        reason: Reason::Allowed {
            by: StatementRef {
                policy: "root".to_string(),
                statement: "*".to_string(),
            },
            session: None,
        },
    }
}

impl Directory {
    /// Evaluates one request for a principal against its current policies.
    pub fn authorize(&self, principal: &Principal, req: &policy::Request<'_>) -> Decision {
        match principal.kind {
            PrincipalKind::Root => root_decision(),
            PrincipalKind::Anonymous => Decision {
                allowed: false,
                reason: Reason::NoIdentityAllow,
            },
            PrincipalKind::User => {
                let Some(user) = principal.user_name.as_deref().and_then(|n| self.user(n)) else {
                    return Decision {
                        allowed: false,
                        reason: Reason::NoIdentityAllow,
                    };
                };
                let policies = self.policies_of(user);
                let named: Vec<NamedPolicy<'_>> = policies
                    .iter()
                    .map(|p| NamedPolicy {
                        name: &p.label,
                        policy: &p.policy,
                    })
                    .collect();
                policy::evaluate(&named, None, req)
            }
        }
    }

    /// A user's inline policies followed by those of each of its groups.
    pub fn policies_of<'a>(&'a self, user: &'a User) -> Vec<&'a InlinePolicy> {
        let mut out: Vec<&InlinePolicy> = user.policies.iter().collect();
        for g in &user.groups {
            if let Some(group) = self.group(g) {
                out.extend(group.policies.iter());
            }
        }
        out
    }
}
