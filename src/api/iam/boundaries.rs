//! Permissions boundaries of users and roles: a customer managed policy that
//! caps what the entity's own policies can allow (the effective permissions
//! are their intersection; a Deny in either wins; session policies narrow
//! further). Set on creation (`PermissionsBoundary`) or with
//! `Put{User,Role}PermissionsBoundary`, removed with `Delete…`. Each call is
//! authorized with `iam:PermissionsBoundary` in its context, so that an
//! administrator can be limited to handing out a given boundary.

use super::super::validate;
use super::super::{ApiError, Call, Params};
use super::{Owner, find_role, owner_arn, store_role, store_user};
use crate::identity::Directory;

/// The `PermissionsBoundary` parameter, when given: a valid ARN.
pub(crate) fn boundary_param(p: &Params) -> Result<Option<String>, ApiError> {
    p.get("PermissionsBoundary")
        .map(|v| validate::arn(v, "permissionsBoundary").map(str::to_string))
        .transpose()
}

/// Authorizes `action` on `resource` with `iam:PermissionsBoundary` added
/// to `ctx` (the call's context, perhaps with request tags).
pub(crate) fn authorize(
    call: &mut Call<'_>,
    action: &str,
    resource: &str,
    boundary: Option<&str>,
    mut ctx: crate::policy::Context,
) -> Result<(), ApiError> {
    if let Some(b) = boundary {
        ctx.set("iam:PermissionsBoundary", b);
    }
    call.authorize_with(action, resource, ctx)
}

/// A boundary must be an existing customer managed policy.
pub(crate) fn check_exists(dir: &Directory, arn: &str) -> Result<(), ApiError> {
    if dir.managed_policy(arn).is_none() {
        return Err(ApiError::NoSuchEntity(format!(
            "Scope ARN: {arn} does not exist or is not attachable."
        )));
    }
    Ok(())
}

/// `PutUserPermissionsBoundary` and `PutRolePermissionsBoundary`.
pub async fn put(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let arn = validate::arn(
        p.required("PermissionsBoundary", "permissionsBoundary")?,
        "permissionsBoundary",
    )?
    .to_string();
    let resource = owner_arn(&call.dir, owner, &name);
    authorize(
        call,
        &format!("iam:Put{}PermissionsBoundary", owner.capitalized()),
        &resource,
        Some(&arn),
        call.context.clone(),
    )?;
    call.store
        .update(move |dir, state| {
            check_exists(dir, &arn)?;
            set(owner, dir, state, &name, Some(arn))
        })
        .await
}

/// `DeleteUserPermissionsBoundary` and `DeleteRolePermissionsBoundary`.
pub async fn delete(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let resource = owner_arn(&call.dir, owner, &name);
    let current = match owner {
        Owner::User => call.dir.user(&name).and_then(|u| u.boundary.clone()),
        _ => call.dir.role(&name).and_then(|r| r.boundary.clone()),
    };
    authorize(
        call,
        &format!("iam:Delete{}PermissionsBoundary", owner.capitalized()),
        &resource,
        current.as_deref(),
        call.context.clone(),
    )?;
    call.store
        .update(move |dir, state| set(owner, dir, state, &name, None))
        .await
}

fn set(
    owner: Owner,
    dir: &Directory,
    state: &mut crate::identity::tx::Tx<'_>,
    name: &str,
    boundary: Option<String>,
) -> Result<Option<String>, ApiError> {
    match owner {
        Owner::User => store_user(dir, state, name)?.permissions_boundary = boundary,
        _ => {
            find_role(dir, name)?;
            store_role(state, name)?.permissions_boundary = boundary;
        }
    }
    Ok(None)
}
