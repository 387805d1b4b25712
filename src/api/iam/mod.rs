//! The IAM query API (version 2010-05-08): users, access keys, groups, inline
//! and managed policies, roles, OpenID Connect providers. Each call is authorized as `iam:<Action>` on
//! the ARN of the entity it touches (root may do anything); temporary
//! credentials may not call IAM at all.
//!
//! Entities declared in the config file are read-only here
//! (`UnmodifiableEntity`); reads show config and store entities alike.

mod boundaries;
mod groups;
pub(crate) mod oidc;
mod policies;
mod roles;
pub(crate) mod tags;
mod users;

use super::xml::{Xml, encode_policy};
use super::{ApiError, Call, Params};
use crate::identity::model::{StoredGroup, StoredRole, StoredUser};
use crate::identity::tx::Tx;
use crate::identity::{Directory, Group, ManagedPolicy, Role, User, iam_arn};
use tags::Tagged;

/// Runs one IAM action; `Ok(None)` for actions without a result element.
pub async fn run(
    action: &str,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    if call.is_session() {
        // As AWS answers calls made with credentials IAM does not accept.
        return Err(ApiError::InvalidClientTokenId(
            "The security token included in the request is invalid: temporary credentials cannot call the IAM API.".into(),
        ));
    }
    match action {
        "CreateUser" => users::create_user(p, call).await,
        "GetUser" => users::get_user(p, call),
        "ListUsers" => users::list_users(p, call),
        "DeleteUser" => users::delete_user(p, call).await,
        "CreateAccessKey" => users::create_access_key(p, call).await,
        "ListAccessKeys" => users::list_access_keys(p, call),
        "UpdateAccessKey" => users::update_access_key(p, call).await,
        "DeleteAccessKey" => users::delete_access_key(p, call).await,
        "RevokeSessions" => users::revoke_sessions(p, call).await,
        "CreateGroup" => groups::create_group(p, call).await,
        "GetGroup" => groups::get_group(p, call),
        "ListGroups" => groups::list_groups(p, call),
        "DeleteGroup" => groups::delete_group(p, call).await,
        "AddUserToGroup" => groups::add_user_to_group(p, call).await,
        "RemoveUserFromGroup" => groups::remove_user_from_group(p, call).await,
        "ListGroupsForUser" => groups::list_groups_for_user(p, call),
        "PutUserPolicy" => policies::put_inline(Owner::User, p, call).await,
        "GetUserPolicy" => policies::get_inline(Owner::User, p, call),
        "ListUserPolicies" => policies::list_inline(Owner::User, p, call),
        "DeleteUserPolicy" => policies::delete_inline(Owner::User, p, call).await,
        "PutGroupPolicy" => policies::put_inline(Owner::Group, p, call).await,
        "GetGroupPolicy" => policies::get_inline(Owner::Group, p, call),
        "ListGroupPolicies" => policies::list_inline(Owner::Group, p, call),
        "DeleteGroupPolicy" => policies::delete_inline(Owner::Group, p, call).await,
        "PutRolePolicy" => policies::put_inline(Owner::Role, p, call).await,
        "GetRolePolicy" => policies::get_inline(Owner::Role, p, call),
        "ListRolePolicies" => policies::list_inline(Owner::Role, p, call),
        "DeleteRolePolicy" => policies::delete_inline(Owner::Role, p, call).await,
        "CreatePolicy" => policies::create_policy(p, call).await,
        "GetPolicy" => policies::get_policy(p, call),
        "GetPolicyVersion" => policies::get_policy_version(p, call),
        "ListPolicyVersions" => policies::list_policy_versions(p, call),
        "CreatePolicyVersion" => policies::create_policy_version(p, call).await,
        "SetDefaultPolicyVersion" => policies::set_default_policy_version(p, call).await,
        "DeletePolicyVersion" => policies::delete_policy_version(p, call).await,
        "ListPolicies" => policies::list_policies(p, call),
        "DeletePolicy" => policies::delete_policy(p, call).await,
        "AttachUserPolicy" => policies::attach(Owner::User, p, call).await,
        "DetachUserPolicy" => policies::detach(Owner::User, p, call).await,
        "ListAttachedUserPolicies" => policies::list_attached(Owner::User, p, call),
        "AttachGroupPolicy" => policies::attach(Owner::Group, p, call).await,
        "DetachGroupPolicy" => policies::detach(Owner::Group, p, call).await,
        "ListAttachedGroupPolicies" => policies::list_attached(Owner::Group, p, call),
        "AttachRolePolicy" => policies::attach(Owner::Role, p, call).await,
        "DetachRolePolicy" => policies::detach(Owner::Role, p, call).await,
        "ListAttachedRolePolicies" => policies::list_attached(Owner::Role, p, call),
        "TagUser" => tags::tag(Tagged::User, p, call).await,
        "UntagUser" => tags::untag(Tagged::User, p, call).await,
        "ListUserTags" => tags::list(Tagged::User, p, call),
        "TagRole" => tags::tag(Tagged::Role, p, call).await,
        "UntagRole" => tags::untag(Tagged::Role, p, call).await,
        "ListRoleTags" => tags::list(Tagged::Role, p, call),
        "TagOpenIDConnectProvider" => tags::tag(Tagged::OidcProvider, p, call).await,
        "UntagOpenIDConnectProvider" => tags::untag(Tagged::OidcProvider, p, call).await,
        "ListOpenIDConnectProviderTags" => tags::list(Tagged::OidcProvider, p, call),
        "PutUserPermissionsBoundary" => boundaries::put(Owner::User, p, call).await,
        "DeleteUserPermissionsBoundary" => boundaries::delete(Owner::User, p, call).await,
        "PutRolePermissionsBoundary" => boundaries::put(Owner::Role, p, call).await,
        "DeleteRolePermissionsBoundary" => boundaries::delete(Owner::Role, p, call).await,
        "CreateOpenIDConnectProvider" => oidc::create(p, call).await,
        "GetOpenIDConnectProvider" => oidc::get(p, call),
        "ListOpenIDConnectProviders" => oidc::list(p, call),
        "DeleteOpenIDConnectProvider" => oidc::delete(p, call).await,
        "AddClientIDToOpenIDConnectProvider" => oidc::add_client_id(p, call).await,
        "CreateRole" => roles::create_role(p, call).await,
        "GetRole" => roles::get_role(p, call),
        "ListRoles" => roles::list_roles(p, call),
        "DeleteRole" => roles::delete_role(p, call).await,
        other => Err(ApiError::InvalidAction(format!(
            "The action {other} is not valid for this web service."
        ))),
    }
}

/// Who holds inline and attached policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    User,
    Group,
    Role,
}

impl Owner {
    /// The request parameter naming the owner, and its lowerCamel field name.
    fn param(self) -> (&'static str, &'static str) {
        match self {
            Owner::User => ("UserName", "userName"),
            Owner::Group => ("GroupName", "groupName"),
            Owner::Role => ("RoleName", "roleName"),
        }
    }

    /// The owner's name parameter (`UserName`, `GroupName`, `RoleName`), validated.
    fn name_param(self, p: &Params) -> Result<String, ApiError> {
        let (param, field) = self.param();
        Ok(
            super::validate::name(p.required(param, field)?, field, 1, self.max_name())?
                .to_string(),
        )
    }

    fn noun(self) -> &'static str {
        match self {
            Owner::User => "user",
            Owner::Group => "group",
            Owner::Role => "role",
        }
    }

    fn max_name(self) -> usize {
        match self {
            Owner::Group => 128,
            Owner::User | Owner::Role => 64,
        }
    }

    /// IAM's aggregate inline-policy quota (characters, whitespace excluded).
    fn inline_quota(self) -> usize {
        match self {
            Owner::User => 2048,
            Owner::Group => 5120,
            Owner::Role => 10240,
        }
    }

    fn capitalized(self) -> &'static str {
        match self {
            Owner::User => "User",
            Owner::Group => "Group",
            Owner::Role => "Role",
        }
    }
}

/// One page of a listing as `<tag><member>…</member></tag>` with `IsTruncated`/`Marker`.
pub(crate) fn listing<T>(
    p: &Params,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    tag: &str,
    each: impl FnMut(&mut Xml, T),
) -> Result<Option<String>, ApiError> {
    let (page, next) = super::validate::page(p, items, key)?;
    let mut x = Xml::new();
    x.members(tag, page, each).page(next.as_deref());
    Ok(Some(x.finish()))
}

pub(crate) fn no_such(noun: &str, name: &str) -> ApiError {
    ApiError::NoSuchEntity(format!("The {noun} with name {name} cannot be found."))
}

pub(crate) fn unmodifiable(noun: &str, name: &str) -> ApiError {
    ApiError::Unmodifiable(format!(
        "The {noun} {name} is declared in the s3warden config file, which owns it; change it there."
    ))
}

pub(crate) fn find_user<'a>(dir: &'a Directory, name: &str) -> Result<&'a User, ApiError> {
    dir.user(name).ok_or_else(|| no_such("user", name))
}

pub(crate) fn find_group<'a>(dir: &'a Directory, name: &str) -> Result<&'a Group, ApiError> {
    dir.group(name).ok_or_else(|| no_such("group", name))
}

pub(crate) fn find_role<'a>(dir: &'a Directory, name: &str) -> Result<&'a Role, ApiError> {
    dir.role(name).ok_or_else(|| no_such("role", name))
}

/// The ARN to authorize against: the entity's own when it exists, else the
/// one it would have at the root path.
pub(crate) fn owner_arn(dir: &Directory, owner: Owner, name: &str) -> String {
    let existing = match owner {
        Owner::User => dir.user(name).map(|u| u.arn.clone()),
        Owner::Group => dir.group(name).map(|g| g.arn.clone()),
        Owner::Role => dir.role(name).map(|r| r.arn.clone()),
    };
    existing.unwrap_or_else(|| iam_arn(&dir.account_id, owner.noun(), "/", name))
}

/// The stored user an API change may edit (config users are refused).
pub(crate) fn store_user<'a>(
    dir: &Directory,
    state: &'a mut Tx<'_>,
    name: &str,
) -> Result<&'a mut StoredUser, ApiError> {
    let user = find_user(dir, name)?;
    if user.from_config {
        return Err(unmodifiable("user", &user.name));
    }
    state
        .users
        .get_mut(&name.to_ascii_lowercase())
        .ok_or_else(|| no_such("user", name))
}

pub(crate) fn store_group<'a>(
    dir: &Directory,
    state: &'a mut Tx<'_>,
    name: &str,
) -> Result<&'a mut StoredGroup, ApiError> {
    let group = find_group(dir, name)?;
    if group.from_config {
        return Err(unmodifiable("group", &group.name));
    }
    state
        .groups
        .get_mut(&name.to_ascii_lowercase())
        .ok_or_else(|| no_such("group", name))
}

pub(crate) fn store_role<'a>(
    state: &'a mut Tx<'_>,
    name: &str,
) -> Result<&'a mut StoredRole, ApiError> {
    state
        .roles
        .get_mut(&name.to_ascii_lowercase())
        .ok_or_else(|| no_such("role", name))
}

pub(crate) fn user_xml(x: &mut Xml, u: &User) {
    x.text("Path", &u.path)
        .text("UserName", &u.name)
        .text("UserId", &u.user_id)
        .text("Arn", &u.arn)
        .date("CreateDate", u.created);
    boundary_xml(x, u.boundary.as_deref());
}

/// `<PermissionsBoundary>` of a user or role that has one.
pub(crate) fn boundary_xml(x: &mut Xml, boundary: Option<&str>) {
    if let Some(arn) = boundary {
        x.open("PermissionsBoundary")
            .text("PermissionsBoundaryType", "PermissionsBoundaryPolicy")
            .text("PermissionsBoundaryArn", arn)
            .close("PermissionsBoundary");
    }
}

pub(crate) fn group_xml(x: &mut Xml, g: &Group) {
    x.text("Path", &g.path)
        .text("GroupName", &g.name)
        .text("GroupId", &g.group_id)
        .text("Arn", &g.arn)
        .date("CreateDate", g.created);
}

pub(crate) fn role_xml(x: &mut Xml, r: &Role) {
    x.text("Path", &r.path)
        .text("RoleName", &r.name)
        .text("RoleId", &r.role_id)
        .text("Arn", &r.arn)
        .date("CreateDate", r.created)
        .text(
            "AssumeRolePolicyDocument",
            &encode_policy(&r.trust_document),
        )
        .opt("Description", r.description.as_deref())
        .text("MaxSessionDuration", &r.max_session_duration.to_string());
    boundary_xml(x, r.boundary.as_deref());
}

pub(crate) fn policy_xml(x: &mut Xml, p: &ManagedPolicy, attachments: usize, bounds: usize) {
    x.text("PolicyName", &p.name)
        .text("PolicyId", &p.policy_id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", &format!("v{}", p.default_version))
        .text("AttachmentCount", &attachments.to_string())
        .text("PermissionsBoundaryUsageCount", &bounds.to_string())
        .bool("IsAttachable", true)
        .opt("Description", p.description.as_deref())
        .date("CreateDate", p.created)
        .date("UpdateDate", p.updated);
}
