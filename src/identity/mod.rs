//! Who is asking: users, groups, access keys, managed policies, roles and
//! their policies, held as an immutable in-memory [`Directory`] snapshot that
//! the request path reads without locks and that is swapped atomically when
//! identities change; the embedded store that persists API-made changes; and
//! sealed session tokens for temporary credentials.
//!
//! Follows IAM: a user's permissions are its inline and attached policies plus
//! those of every group it belongs to; a session's are its parent's *current*
//! policies intersected with its session policy; the configured root principal
//! may do anything.

mod admin;
mod directory;
pub mod model;
pub mod oidc;
mod pg;
mod principal;
pub mod sessions;
mod store;
pub mod tx;

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

pub use admin::{IdentityStore, StoreStatus};
pub use directory::{
    AccessKey, Directory, Group, InlinePolicy, KeyOwner, ManagedPolicy, Role, Secret, User,
    derived_id, iam_arn,
};
pub use pg::{PgConfig, copy_to_postgres, redact_url as pg_redact_url};
pub use principal::{Principal, PrincipalKind, SessionInfo, SessionRefusal};
pub use sessions::{OpenedSession, SessionClaims, SessionKeys, SessionKind, TokenError};

use crate::policy::{self, Decision, NamedPolicy, Policy, PolicyKind, Reason, StatementRef};

/// Why identities could not be loaded or stored.
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
    #[error("identity store {path:?}: {source}")]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("identity store {path:?} is in use by another s3warden (its lock is held)")]
    StoreLocked { path: PathBuf },
    #[error("identity store {path:?} cannot be read: {message}")]
    StoreCorrupt { path: PathBuf, message: String },
    #[error(
        "{0} is declared in the config file and also exists in the identity store; \
         remove it from one of them (entities declared in the config are owned by it)"
    )]
    Conflict(String),
    #[error("session key file {path:?} (config key `sessions.key_file`): {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("cannot seal a session token: {0}")]
    Seal(String),
    /// The shared store cannot be reached now (PostgreSQL down, a lost
    /// connection): nothing was changed, and trying again later may work.
    #[error("identity store unavailable: {0}")]
    Unavailable(String),
    /// The shared store refused or could not be set up.
    #[error("identity store {url}: {message}")]
    Database { url: String, message: String },
    #[error("{0}")]
    Internal(String),
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

    pub fn replace_arc(&self, dir: Arc<Directory>) {
        self.current.store(dir);
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
            boundary: None,
        },
    }
}

fn denied(reason: Reason) -> Decision {
    Decision {
        allowed: false,
        reason,
    }
}

/// What decides for a principal: root, or its identity policies with the
/// boundary and session policies that narrow them.
enum Sets<'a> {
    Root,
    Policies {
        identity: Vec<NamedPolicy<'a>>,
        boundary: Option<Vec<NamedPolicy<'a>>>,
        session: Option<Vec<NamedPolicy<'a>>>,
    },
}

impl<'a> Sets<'a> {
    /// Every policy that takes part in the decision (none for root's).
    fn policies(&self) -> impl Iterator<Item = &'a Policy> + '_ {
        let (identity, boundary, session) = match self {
            Sets::Root => (&[][..], None, None),
            Sets::Policies {
                identity,
                boundary,
                session,
            } => (&identity[..], boundary.as_deref(), session.as_deref()),
        };
        identity
            .iter()
            .chain(boundary.into_iter().flatten())
            .chain(session.into_iter().flatten())
            .map(|p| p.policy)
    }
}

/// Root's identity policy when root is the parent of a session: everything,
/// so that the session policy alone narrows it.
static ROOT_POLICY: LazyLock<Option<Policy>> = LazyLock::new(|| {
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .ok()
});

/// The policies that decide for one principal, collected once for all of a
/// request's decisions (its context's keys, each check, each key of a
/// multi-object delete) rather than once per decision.
pub struct Decider<'a> {
    sets: Option<Sets<'a>>,
    dir: &'a Directory,
    principal: &'a Principal,
}

impl Decider<'_> {
    /// Evaluates one request against the principal's policies.
    pub fn authorize(&self, req: &policy::Request<'_>) -> Decision {
        match &self.sets {
            Some(Sets::Root) => root_decision(),
            Some(Sets::Policies {
                identity,
                boundary,
                session,
            }) => policy::evaluate_bounded(identity, boundary.as_deref(), session.as_deref(), req),
            None => denied(Reason::NoIdentityAllow),
        }
    }

    /// The optional condition keys these policies read: the rest need not
    /// be in the request's context. Root's decision and a principal nothing
    /// can allow read none.
    pub fn context_reads(&self) -> policy::Reads {
        self.sets.as_ref().map_or(policy::Reads::NONE, |sets| {
            sets.policies()
                .fold(policy::Reads::NONE, |r, p| r.union(p.reads()))
        })
    }

    /// Whether any of these policies reads `s3:ExistingObjectTag/*`, so
    /// that the object's tags must be fetched.
    pub fn needs_object_tags(&self) -> bool {
        // The common case, answered without looking at the policies: no
        // stored or declared policy reads object tags, nor the session's own.
        let session_reads = self
            .principal
            .session
            .as_ref()
            .and_then(|s| s.opened.policy.as_ref())
            .is_some_and(|p| p.uses_existing_object_tags());
        if self.dir.counts().object_tag_policies == 0 && !session_reads {
            return false;
        }
        self.sets
            .as_ref()
            .is_some_and(|sets| sets.policies().any(|p| p.uses_existing_object_tags()))
    }
}

impl Directory {
    /// Evaluates one request for a principal against its current policies.
    pub fn authorize(&self, principal: &Principal, req: &policy::Request<'_>) -> Decision {
        self.decider(principal).authorize(req)
    }

    /// The policies that decide for `principal`, as they are now, for the
    /// decisions of one request.
    pub fn decider<'a>(&'a self, principal: &'a Principal) -> Decider<'a> {
        Decider {
            sets: self.policy_sets(principal),
            dir: self,
            principal,
        }
    }

    /// The policies that decide for a principal, as they are now; `None` when
    /// nothing can allow (anonymous, a parent that is gone).
    fn policy_sets<'a>(&'a self, principal: &'a Principal) -> Option<Sets<'a>> {
        let session = principal.session.as_ref();
        match (principal.kind, session) {
            (PrincipalKind::Anonymous, _) => None,
            // Root, and root's own GetSessionToken session.
            (PrincipalKind::Root, _) => Some(Sets::Root),
            (PrincipalKind::User, _) => {
                let user = principal.user_name.as_deref().and_then(|n| self.user(n))?;
                Some(Sets::Policies {
                    identity: self.user_policies(user),
                    boundary: self.boundary_policies(user.boundary.as_deref()),
                    session: None,
                })
            }
            (PrincipalKind::FederatedUser, Some(s)) => {
                let c = &s.opened.claims;
                let (identity, boundary): (Vec<NamedPolicy<'_>>, _) = if c.parent_is_root {
                    match ROOT_POLICY.as_ref() {
                        Some(p) => (
                            vec![NamedPolicy {
                                name: "root",
                                policy: p,
                            }],
                            None,
                        ),
                        None => (Vec::new(), None),
                    }
                } else {
                    let user = self.user(&c.parent_name)?;
                    (
                        self.user_policies(user),
                        self.boundary_policies(user.boundary.as_deref()),
                    )
                };
                // A federated session without a session policy has no permissions.
                Some(Sets::Policies {
                    identity,
                    boundary,
                    session: Some(self.session_policies(&s.opened)),
                })
            }
            (PrincipalKind::AssumedRole, Some(s)) => {
                let c = &s.opened.claims;
                let role = self.role(&c.parent_name)?;
                Some(Sets::Policies {
                    identity: self.role_policies(role),
                    boundary: self.boundary_policies(role.boundary.as_deref()),
                    session: c
                        .has_session_policy()
                        .then(|| self.session_policies(&s.opened)),
                })
            }
            (PrincipalKind::FederatedUser | PrincipalKind::AssumedRole, None) => None,
        }
    }

    /// A user's inline and attached policies, then those of each of its groups.
    pub fn user_policies<'a>(&'a self, user: &'a User) -> Vec<NamedPolicy<'a>> {
        let mut out: Vec<NamedPolicy<'a>> = Vec::new();
        self.push_policies(&mut out, &user.policies, &user.attached);
        for g in &user.groups {
            if let Some(group) = self.group(g) {
                self.push_policies(&mut out, &group.policies, &group.attached);
            }
        }
        out
    }

    /// The permissions boundary of a user or role: `None` without one; an
    /// empty list (nothing allowed) when its policy no longer exists.
    pub fn boundary_policies<'a>(&'a self, arn: Option<&str>) -> Option<Vec<NamedPolicy<'a>>> {
        let arn = arn?;
        Some(
            self.managed_policy(arn)
                .map(|p| {
                    vec![NamedPolicy {
                        name: &p.arn,
                        policy: &p.policy,
                    }]
                })
                .unwrap_or_default(),
        )
    }

    /// A role's inline and attached policies.
    pub fn role_policies<'a>(&'a self, role: &'a Role) -> Vec<NamedPolicy<'a>> {
        let mut out = Vec::new();
        self.push_policies(&mut out, &role.policies, &role.attached);
        out
    }

    fn push_policies<'a>(
        &'a self,
        out: &mut Vec<NamedPolicy<'a>>,
        inline: &'a [InlinePolicy],
        attached: &'a [String],
    ) {
        out.extend(inline.iter().map(|p| NamedPolicy {
            name: &p.label,
            policy: &p.policy,
        }));
        out.extend(
            attached
                .iter()
                .filter_map(|arn| self.managed_policy(arn))
                .map(|p| NamedPolicy {
                    name: &p.arn,
                    policy: &p.policy,
                }),
        );
    }

    /// A session's policies: the sealed inline one and the *current* documents
    /// of the managed policies passed as `PolicyArns` (one deleted since
    /// simply no longer allows anything).
    pub fn session_policies<'a>(&'a self, opened: &'a OpenedSession) -> Vec<NamedPolicy<'a>> {
        let mut out = Vec::new();
        if let Some(p) = &opened.policy {
            out.push(NamedPolicy {
                name: "session",
                policy: p,
            });
        }
        out.extend(
            opened
                .claims
                .policy_arns
                .iter()
                .filter_map(|arn| self.managed_policy(arn))
                .map(|p| NamedPolicy {
                    name: &p.arn,
                    policy: &p.policy,
                }),
        );
        out
    }
}

#[cfg(test)]
mod tests;
