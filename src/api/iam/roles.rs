//! IAM roles: a trust policy (who may assume the role), a maximum session
//! duration, and inline and attached policies (in `policies`).

use super::super::validate;
use super::super::xml::{Xml, encode_policy};
use super::super::{ApiError, Call, Params};
use super::{Owner, find_role, listing, owner_arn, role_xml};
use crate::identity::iam_arn;
use crate::identity::model::StoredRole;
use crate::identity::sessions::new_unique_id;
use crate::policy::PolicyKind;

const TRUST_POLICY_SIZE: usize = 2048;

fn role_name(p: &Params) -> Result<String, ApiError> {
    Ok(validate::name(p.required("RoleName", "roleName")?, "roleName", 1, 64)?.to_string())
}

pub async fn create_role(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = role_name(p)?;
    let path = validate::path(p.get("Path"), "path")?;
    let description =
        validate::description(p.get("Description"), "description")?.map(str::to_string);
    let boundary = super::boundaries::boundary_param(p)?;
    let tags = super::tags::tags_param(p)?;
    let max = validate::int(
        p,
        "MaxSessionDuration",
        "maxSessionDuration",
        3600,
        43200,
        3600,
    )? as u32;
    let trust = p
        .required("AssumeRolePolicyDocument", "assumeRolePolicyDocument")?
        .to_string();
    validate::policy_document(&trust, "assumeRolePolicyDocument", PolicyKind::Resource)?;
    if validate::policy_size(&trust) > TRUST_POLICY_SIZE {
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}"
        )));
    }
    let arn = iam_arn(call.account(), "role", &path, &name);
    let ctx = super::tags::request_context(call.context, &tags);
    super::boundaries::authorize(call, "iam:CreateRole", &arn, boundary.as_deref(), ctx)?;
    if !tags.is_empty() {
        // As in IAM: creating with tags also takes the right to tag.
        let ctx = super::tags::request_context(call.context, &tags);
        call.authorize_with("iam:TagRole", &arn, ctx)?;
    }
    let now = call.now;
    let max_roles = call.store.quotas().roles;
    call.store
        .update(move |dir, state| {
            if let Some(r) = dir.role(&name) {
                return Err(ApiError::EntityAlreadyExists(format!(
                    "Role with name {} already exists.",
                    r.name
                )));
            }
            if state.roles.len() >= max_roles {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for RolesPerAccount: {max_roles}"
                )));
            }
            if let Some(b) = &boundary {
                super::boundaries::check_exists(dir, b)?;
            }
            let role = StoredRole {
                name: name.clone(),
                path: path.clone(),
                role_id: new_unique_id("AROA"),
                created: now,
                description: description.clone(),
                max_session_duration: max,
                trust_policy: trust.clone(),
                policies: Default::default(),
                attached: Vec::new(),
                permissions_boundary: boundary.clone(),
                tags: tags.clone(),
            };
            let mut x = Xml::new();
            x.open("Role")
                .text("Path", &role.path)
                .text("RoleName", &role.name)
                .text("RoleId", &role.role_id)
                .text("Arn", &arn)
                .date("CreateDate", now)
                .text(
                    "AssumeRolePolicyDocument",
                    &encode_policy(&role.trust_policy),
                )
                .opt("Description", role.description.as_deref())
                .text("MaxSessionDuration", &max.to_string());
            super::boundary_xml(&mut x, role.permissions_boundary.as_deref());
            super::tags::tags_xml(&mut x, &role.tags);
            x.close("Role");
            state.roles.insert(name.to_ascii_lowercase(), role);
            Ok(Some(x.finish()))
        })
        .await
}

pub fn get_role(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = role_name(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:GetRole", &owner_arn(&dir, Owner::Role, &name))?;
    let r = find_role(&dir, &name)?;
    let mut x = Xml::new();
    x.open("Role");
    role_xml(&mut x, r);
    super::tags::tags_xml(&mut x, &r.tags);
    x.close("Role");
    Ok(Some(x.finish()))
}

pub fn list_roles(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let prefix = validate::path_prefix(p.get("PathPrefix"))?;
    let dir = call.dir.clone();
    call.authorize(
        "iam:ListRoles",
        &format!("arn:aws:iam::{}:role/", dir.account_id),
    )?;
    let roles: Vec<_> = dir
        .roles()
        .filter(|r| r.path.starts_with(&prefix))
        .collect();
    listing(p, roles, |r| r.name.to_ascii_lowercase(), "Roles", role_xml)
}

pub async fn delete_role(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = role_name(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:DeleteRole", &owner_arn(&dir, Owner::Role, &name))?;
    call.store
        .update(move |dir, state| {
            find_role(dir, &name)?;
            let key = name.to_ascii_lowercase();
            let r = state
                .roles
                .get(&key)
                .ok_or_else(|| super::no_such("role", &name))?;
            if !r.policies.is_empty() {
                return Err(ApiError::DeleteConflict(
                    "Cannot delete entity, must delete policies first.".into(),
                ));
            }
            if !r.attached.is_empty() {
                return Err(ApiError::DeleteConflict(
                    "Cannot delete entity, must detach all policies first.".into(),
                ));
            }
            let id = r.role_id.clone();
            state.roles.remove(&key);
            state.revoked_before.remove(&id);
            Ok(None)
        })
        .await
}
