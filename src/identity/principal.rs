//! The authenticated principal of a request, and the principal-derived
//! condition keys AWS fills for it (`aws:username`, `aws:userid`,
//! `aws:PrincipalType`, `aws:PrincipalArn`, `aws:PrincipalAccount`).

use serde::Serialize;

use super::directory::{Directory, KeyOwner};
use crate::policy::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PrincipalKind {
    /// The configured administrator (AWS's account root user).
    Root,
    User,
    Anonymous,
}

impl PrincipalKind {
    /// The `aws:PrincipalType` value.
    pub fn aws_type(self) -> &'static str {
        match self {
            PrincipalKind::Root => "Account",
            PrincipalKind::User => "User",
            PrincipalKind::Anonymous => "Anonymous",
        }
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
                }
            }
        })
    }

    /// Adds the principal's global condition keys to a request context.
    pub fn fill_context(&self, ctx: &mut Context) {
        ctx.set("aws:PrincipalType", self.kind.aws_type());
        ctx.set("aws:userid", self.user_id.as_str());
        if self.kind != PrincipalKind::Anonymous {
            ctx.set("aws:PrincipalArn", self.arn.as_str());
            ctx.set("aws:PrincipalAccount", self.account.as_str());
        }
        if let Some(name) = &self.user_name {
            ctx.set("aws:username", name.as_str());
        }
    }
}
