//! The authenticated principal of a request, and the principal-derived
//! condition keys AWS fills for it (`aws:username`, `aws:userid`,
//! `aws:PrincipalType`, `aws:PrincipalArn`, `aws:PrincipalAccount`, and for
//! temporary credentials `aws:TokenIssueTime` and `aws:MultiFactorAuthPresent`).
//!
//! Values follow the principal table of S3-SEMANTICS §2.5: a federated user's
//! `aws:userid` is `ACCOUNT:NAME` and it has no `aws:username`; a role
//! session's is `ROLEID:SESSION` and its `aws:PrincipalArn` is the role's ARN.

use std::sync::Arc;

use chrono::SecondsFormat;
use serde::Serialize;

use super::directory::{Directory, KeyOwner};
use super::model::Tag;
use super::sessions::{OpenedSession, SessionKind};
use crate::policy::{Context, Optional, Reads};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PrincipalKind {
    /// The configured administrator (AWS's account root user).
    Root,
    User,
    /// A GetFederationToken session.
    FederatedUser,
    /// An AssumeRole session.
    AssumedRole,
    Anonymous,
}

impl PrincipalKind {
    /// The `aws:PrincipalType` value.
    pub fn aws_type(self) -> &'static str {
        match self {
            PrincipalKind::Root => "Account",
            PrincipalKind::User => "User",
            PrincipalKind::FederatedUser => "FederatedUser",
            PrincipalKind::AssumedRole => "AssumedRole",
            PrincipalKind::Anonymous => "Anonymous",
        }
    }
}

/// The temporary-credential side of a principal.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// `GetFederationToken`, `AssumeRole`, `AssumeRoleWithWebIdentity` or `GetSessionToken`.
    pub issued_by: &'static str,
    pub issued_at: String,
    pub expires_at: String,
    /// The user, role or root whose permissions the session narrows.
    pub parent_arn: String,
    /// The opened token. Only its session tags, transitive keys and web
    /// identity are serialized, never the secret it holds.
    pub opened: Arc<OpenedSession>,
}

/// Serialized by hand so that the audit record reads the session's tags
/// straight from its opened token (no copy per request) and nothing else of
/// the token can slip into a record. Tags appear as CloudTrail records a
/// session's `principalTags`: key to value, as they were passed (given at
/// issue, taken from a web identity token, or inherited as transitive).
impl Serialize for SessionInfo {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeStruct};

        struct Tags<'a>(&'a [(String, String)]);
        impl Serialize for Tags<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (key, value) in self.0 {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }

        #[derive(Serialize)]
        struct Web<'a> {
            provider: &'a str,
            sub: &'a str,
            aud: &'a str,
        }

        let c = &self.opened.claims;
        let mut st = serializer.serialize_struct("SessionInfo", 7)?;
        st.serialize_field("issued_by", self.issued_by)?;
        st.serialize_field("issued_at", &self.issued_at)?;
        st.serialize_field("expires_at", &self.expires_at)?;
        st.serialize_field("parent_arn", &self.parent_arn)?;
        if c.tags.is_empty() {
            st.skip_field("tags")?;
        } else {
            st.serialize_field("tags", &Tags(&c.tags))?;
        }
        if c.transitive.is_empty() {
            st.skip_field("transitive_tag_keys")?;
        } else {
            st.serialize_field("transitive_tag_keys", &c.transitive)?;
        }
        match &c.web_identity {
            Some(w) => st.serialize_field(
                "web_identity",
                &Web {
                    provider: &w.provider,
                    sub: &w.sub,
                    aud: &w.aud,
                },
            )?,
            None => st.skip_field("web_identity")?,
        }
        st.end()
    }
}

/// Who made a request.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    #[serde(rename = "type")]
    pub kind: PrincipalKind,
    pub arn: String,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
    /// `aws:PrincipalTag/*`: the user's or role's tags.
    #[serde(skip)]
    pub tags: Arc<Vec<Tag>>,
}

/// Why an opened session cannot be used any more, although its token is sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// The parent user or role is gone, or is a re-created namesake.
    ParentGone,
    /// The long-term key that created the session is inactive or deleted.
    ParentKeyInactive,
    /// The parent's sessions issued before a later time were revoked.
    Revoked,
}

impl std::fmt::Display for SessionRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionRefusal::ParentGone => "the session's parent no longer exists",
            SessionRefusal::ParentKeyInactive => "the key that created the session is inactive",
            SessionRefusal::Revoked => "the session was revoked",
        })
    }
}

/// A session's principal tags: the parent's, with session tags overriding
/// those of the same key regardless of case (as STS does).
fn with_session_tags(parent: &Arc<Vec<Tag>>, session: &[(String, String)]) -> Arc<Vec<Tag>> {
    if session.is_empty() {
        return parent.clone();
    }
    let mut tags: Vec<Tag> = parent
        .iter()
        .filter(|t| !session.iter().any(|(k, _)| k.eq_ignore_ascii_case(&t.key)))
        .cloned()
        .collect();
    tags.extend(session.iter().map(|(key, value)| Tag {
        key: key.clone(),
        value: value.clone(),
    }));
    Arc::new(tags)
}

impl Principal {
    pub fn anonymous(account: &str) -> Principal {
        Principal {
            kind: PrincipalKind::Anonymous,
            arn: "*".to_string(),
            account: account.to_string(),
            user_name: None,
            user_id: "anonymous".to_string(),
            access_key_id: None,
            session: None,
            tags: Arc::default(),
        }
    }

    /// The principal owning a (verified) access key, if it still exists.
    pub fn for_key(dir: &Directory, access_key_id: &str) -> Option<Principal> {
        let key = dir.access_key(access_key_id)?;
        let account = dir.account_id.clone();
        Some(match &key.owner {
            KeyOwner::Root => Principal {
                kind: PrincipalKind::Root,
                arn: format!("arn:aws:iam::{account}:root"),
                user_id: account.clone(),
                account,
                user_name: None,
                access_key_id: Some(access_key_id.to_string()),
                session: None,
                tags: Arc::default(),
            },
            KeyOwner::User(name) => {
                let user = dir.user(name)?;
                Principal {
                    kind: PrincipalKind::User,
                    arn: user.arn.clone(),
                    account,
                    user_name: Some(user.name.clone()),
                    user_id: user.user_id.clone(),
                    access_key_id: Some(access_key_id.to_string()),
                    session: None,
                    tags: user.tags.clone(),
                }
            }
        })
    }

    /// The principal of an opened session, checked against the directory as
    /// it is now: the parent must still exist (same unique id), the key that
    /// created a user session must still be active, and the parent's sessions
    /// must not have been revoked since this one was issued.
    pub fn for_session(
        dir: &Directory,
        opened: Arc<OpenedSession>,
    ) -> Result<Principal, SessionRefusal> {
        let c = &opened.claims;
        let account = dir.account_id.clone();
        if dir
            .revoked_before(&c.parent_id)
            .is_some_and(|t| c.issued_ms < t)
        {
            return Err(SessionRefusal::Revoked);
        }
        let root_arn = format!("arn:aws:iam::{account}:root");
        // The parent: (arn, user name) for users and root.
        type Parent = (String, Option<String>, String, Arc<Vec<Tag>>);
        let parent = |dir: &Directory| -> Result<Parent, SessionRefusal> {
            if c.parent_is_root {
                if c.parent_id != account {
                    return Err(SessionRefusal::ParentGone);
                }
                return Ok((root_arn.clone(), None, account.clone(), Arc::default()));
            }
            let user = dir
                .user(&c.parent_name)
                .filter(|u| u.user_id == c.parent_id)
                .ok_or(SessionRefusal::ParentGone)?;
            Ok((
                user.arn.clone(),
                Some(user.name.clone()),
                user.user_id.clone(),
                user.tags.clone(),
            ))
        };
        let check_key = |dir: &Directory, user: Option<&str>| -> Result<(), SessionRefusal> {
            let Some(id) = &c.parent_key else {
                return Ok(());
            };
            let key = dir
                .access_key(id)
                .ok_or(SessionRefusal::ParentKeyInactive)?;
            let owned = match (&key.owner, user) {
                (KeyOwner::Root, None) => true,
                (KeyOwner::User(n), Some(u)) => n.eq_ignore_ascii_case(u),
                _ => false,
            };
            if owned {
                Ok(())
            } else {
                Err(SessionRefusal::ParentKeyInactive)
            }
        };
        let info = |issued_by: &'static str, parent_arn: String| SessionInfo {
            issued_by,
            issued_at: c.issued_at().to_rfc3339_opts(SecondsFormat::Secs, true),
            expires_at: c.expires_at().to_rfc3339_opts(SecondsFormat::Secs, true),
            parent_arn,
            opened: opened.clone(),
        };
        let principal = match c.kind {
            SessionKind::Federated => {
                let (parent_arn, user, _, tags) = parent(dir)?;
                check_key(dir, user.as_deref())?;
                Principal {
                    kind: PrincipalKind::FederatedUser,
                    arn: format!("arn:aws:sts::{account}:federated-user/{}", c.name),
                    user_id: format!("{account}:{}", c.name),
                    account,
                    user_name: None,
                    access_key_id: Some(c.access_key_id.clone()),
                    session: Some(info("GetFederationToken", parent_arn)),
                    tags: with_session_tags(&tags, &c.tags),
                }
            }
            SessionKind::User => {
                let (parent_arn, user, user_id, tags) = parent(dir)?;
                check_key(dir, user.as_deref())?;
                Principal {
                    kind: if user.is_some() {
                        PrincipalKind::User
                    } else {
                        PrincipalKind::Root
                    },
                    arn: parent_arn.clone(),
                    account,
                    user_name: user,
                    user_id,
                    access_key_id: Some(c.access_key_id.clone()),
                    session: Some(info("GetSessionToken", parent_arn)),
                    tags,
                }
            }
            SessionKind::Role => {
                let role = dir
                    .role(&c.parent_name)
                    .filter(|r| r.role_id == c.parent_id)
                    .ok_or(SessionRefusal::ParentGone)?;
                Principal {
                    kind: PrincipalKind::AssumedRole,
                    arn: format!(
                        "arn:aws:sts::{account}:assumed-role/{}/{}",
                        role.name, c.name
                    ),
                    user_id: format!("{}:{}", role.role_id, c.name),
                    account,
                    user_name: None,
                    access_key_id: Some(c.access_key_id.clone()),
                    session: Some(info(
                        if c.web_identity.is_some() {
                            "AssumeRoleWithWebIdentity"
                        } else {
                            "AssumeRole"
                        },
                        role.arn.clone(),
                    )),
                    tags: with_session_tags(&role.tags, &c.tags),
                }
            }
        };
        Ok(principal)
    }

    /// The ARN that `aws:PrincipalArn` and trust policies see: the role's ARN
    /// for a role session, the principal's own otherwise.
    pub fn principal_arn(&self) -> &str {
        match (&self.session, self.kind) {
            (Some(s), PrincipalKind::AssumedRole) => &s.parent_arn,
            _ => &self.arn,
        }
    }

    /// Adds the principal's global condition keys to a request context.
    pub fn fill_context(&self, ctx: &mut Context) {
        self.fill_context_reading(ctx, Reads::ALL);
    }

    /// [`Principal::fill_context`] with only those of the optional keys that
    /// `reads` names (tags and web-identity claims are always set).
    pub fn fill_context_reading(&self, ctx: &mut Context, reads: Reads) {
        if reads.has(Optional::PrincipalType) {
            ctx.set_static_word(Optional::PrincipalType.key(), self.kind.aws_type());
        }
        if reads.has(Optional::UserId) {
            ctx.set_static(Optional::UserId.key(), self.user_id.as_str());
        }
        if self.kind != PrincipalKind::Anonymous {
            if reads.has(Optional::PrincipalArn) {
                ctx.set_static(Optional::PrincipalArn.key(), self.principal_arn());
            }
            if reads.has(Optional::PrincipalAccount) {
                ctx.set_static(Optional::PrincipalAccount.key(), self.account.as_str());
            }
        }
        if let Some(name) = &self.user_name
            && reads.has(Optional::Username)
        {
            ctx.set_static(Optional::Username.key(), name.as_str());
        }
        for t in self.tags.iter() {
            ctx.set(&format!("aws:PrincipalTag/{}", t.key), t.value.as_str());
        }
        if let Some(s) = &self.session {
            if reads.has(Optional::TokenIssueTime) {
                ctx.set_static(Optional::TokenIssueTime.key(), s.issued_at.as_str());
            }
            if reads.has(Optional::MultiFactorAuthPresent) {
                ctx.set_static_word(Optional::MultiFactorAuthPresent.key(), "false");
            }
            if let Some(w) = &s.opened.claims.web_identity {
                if reads.has(Optional::FederatedProvider) {
                    ctx.set_static(Optional::FederatedProvider.key(), w.provider.as_str());
                }
                let hp = w.host_path();
                ctx.set(&format!("{hp}:sub"), w.sub.as_str());
                ctx.set(&format!("{hp}:aud"), w.aud.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::sessions::{SessionClaims, SessionKeys, WebIdentity};

    fn info(tags: Vec<(String, String)>, web: Option<WebIdentity>) -> serde_json::Value {
        let now = chrono::Utc::now();
        let keys = SessionKeys::from_keys(&[("k", [7; 32])], 4);
        let claims = SessionClaims {
            kind: SessionKind::Role,
            access_key_id: "ASIAEXAMPLE00000001".into(),
            secret_access_key: "session-secret-value".into(),
            parent_is_root: false,
            parent_name: "web".into(),
            parent_id: "AROAEXAMPLE".into(),
            parent_key: None,
            name: "alice".into(),
            issued_ms: now.timestamp_millis(),
            expires: now.timestamp() + 900,
            policy: Some(r#"{"Statement":[]}"#.into()),
            policy_arns: vec![],
            transitive: tags.first().map(|(k, _)| k.clone()).into_iter().collect(),
            tags,
            web_identity: web,
        };
        let token = keys.seal(&claims).unwrap();
        let opened = keys.open("ASIAEXAMPLE00000001", &token, now).unwrap();
        let info = SessionInfo {
            issued_by: "AssumeRole",
            issued_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-01T00:15:00Z".into(),
            parent_arn: "arn:aws:iam::000000000000:role/web".into(),
            opened,
        };
        let json = serde_json::to_value(&info).unwrap();
        let text = json.to_string();
        assert!(!text.contains("session-secret-value"), "{text}");
        assert!(!text.contains(&token), "{text}");
        json
    }

    #[test]
    fn a_session_serializes_its_tags_and_web_identity_but_nothing_secret() {
        let json = info(
            vec![
                ("Team".into(), "photos".into()),
                ("cost".into(), "42".into()),
            ],
            Some(WebIdentity {
                provider: "arn:aws:iam::000000000000:oidc-provider/idp.example/realm".into(),
                sub: "alice-sub".into(),
                aud: "uploader".into(),
            }),
        );
        assert_eq!(
            json["tags"],
            serde_json::json!({"Team": "photos", "cost": "42"})
        );
        assert_eq!(json["transitive_tag_keys"], serde_json::json!(["Team"]));
        assert_eq!(
            json["web_identity"],
            serde_json::json!({
                "provider": "arn:aws:iam::000000000000:oidc-provider/idp.example/realm",
                "sub": "alice-sub",
                "aud": "uploader",
            })
        );
        assert_eq!(json["parent_arn"], "arn:aws:iam::000000000000:role/web");
    }

    #[test]
    fn a_session_without_tags_has_only_its_four_fields() {
        let json = info(vec![], None);
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["expires_at", "issued_at", "issued_by", "parent_arn"],
            "{json}"
        );
    }
}
