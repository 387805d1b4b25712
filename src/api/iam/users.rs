//! IAM users and their access keys, and the s3warden `RevokeSessions` call.

use chrono::Utc;

use super::super::query::invalid;
use super::super::validate;
use super::super::xml::Xml;
use super::super::{ApiError, Call, Params};
use super::{Owner, find_role, find_user, listing, owner_arn, store_user, user_xml};
use crate::identity::model::{StoredKey, StoredUser};
use crate::identity::sessions::{new_access_key_id, new_secret, new_unique_id};
use crate::identity::{KeyOwner, PrincipalKind, iam_arn};

const MAX_KEYS_PER_USER: usize = 2;

/// The user a call is about: `UserName`, or the caller when it is omitted.
/// Root without `UserName` is answered as root (`None`).
fn target_user(p: &Params, call: &Call<'_>) -> Result<Option<String>, ApiError> {
    if let Some(n) = p.get("UserName") {
        return Ok(Some(validate::name(n, "userName", 1, 128)?.to_string()));
    }
    match call.principal.kind {
        PrincipalKind::User => Ok(call.principal.user_name.clone()),
        _ => Ok(None),
    }
}

pub async fn create_user(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = validate::name(p.required("UserName", "userName")?, "userName", 1, 64)?.to_string();
    let path = validate::path(p.get("Path"), "path")?;
    let boundary = super::boundaries::boundary_param(p)?;
    let tags = super::tags::tags_param(p)?;
    let arn = iam_arn(call.account(), "user", &path, &name);
    let ctx = super::tags::request_context(call.context, &tags);
    super::boundaries::authorize(call, "iam:CreateUser", &arn, boundary.as_deref(), ctx)?;
    if !tags.is_empty() {
        // As in IAM: creating with tags also takes the right to tag.
        let ctx = super::tags::request_context(call.context, &tags);
        call.authorize_with("iam:TagUser", &arn, ctx)?;
    }
    let account = call.account().to_string();
    let now = call.now;
    let max_users = call.store.quotas().users;
    call.store
        .update(move |dir, state| {
            if let Some(existing) = dir.user(&name) {
                return Err(ApiError::EntityAlreadyExists(format!(
                    "User with name {} already exists.",
                    existing.name
                )));
            }
            if dir.user_count() >= max_users {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for UsersPerAccount: {max_users}"
                )));
            }
            if let Some(b) = &boundary {
                super::boundaries::check_exists(dir, b)?;
            }
            let user = StoredUser {
                name: name.clone(),
                path: path.clone(),
                user_id: new_unique_id("AIDA"),
                created: now,
                groups: Vec::new(),
                policies: Default::default(),
                attached: Vec::new(),
                access_keys: Vec::new(),
                permissions_boundary: boundary.clone(),
                tags: tags.clone(),
            };
            let mut x = Xml::new();
            x.open("User")
                .text("Path", &user.path)
                .text("UserName", &user.name)
                .text("UserId", &user.user_id)
                .text("Arn", &iam_arn(&account, "user", &user.path, &user.name))
                .date("CreateDate", user.created);
            super::boundary_xml(&mut x, user.permissions_boundary.as_deref());
            super::tags::tags_xml(&mut x, &user.tags);
            x.close("User");
            state.users.insert(name.to_ascii_lowercase(), user);
            Ok(Some(x.finish()))
        })
        .await
}

pub fn get_user(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let dir = call.dir.clone();
    let mut x = Xml::new();
    match target_user(p, call)? {
        Some(name) => {
            call.authorize("iam:GetUser", &owner_arn(&dir, Owner::User, &name))?;
            let u = find_user(&dir, &name)?;
            x.open("User");
            user_xml(&mut x, u);
            super::tags::tags_xml(&mut x, &u.tags);
            x.close("User");
        }
        None => {
            let arn = format!("arn:aws:iam::{}:root", dir.account_id);
            call.authorize("iam:GetUser", &arn)?;
            x.open("User")
                .text("UserId", &dir.account_id)
                .text("Arn", &arn)
                .date("CreateDate", dir.loaded())
                .close("User");
        }
    }
    Ok(Some(x.finish()))
}

pub fn list_users(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let prefix = validate::path_prefix(p.get("PathPrefix"))?;
    let dir = call.dir.clone();
    call.authorize(
        "iam:ListUsers",
        &format!("arn:aws:iam::{}:user/", dir.account_id),
    )?;
    let users: Vec<_> = dir
        .users()
        .filter(|u| u.path.starts_with(&prefix))
        .collect();
    listing(p, users, |u| u.name.to_ascii_lowercase(), "Users", user_xml)
}

pub async fn delete_user(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = validate::name(p.required("UserName", "userName")?, "userName", 1, 128)?.to_string();
    let dir = call.dir.clone();
    call.authorize("iam:DeleteUser", &owner_arn(&dir, Owner::User, &name))?;
    call.store
        .update(move |dir, state| {
            let u = store_user(dir, state, &name)?;
            let conflict = if !u.access_keys.is_empty() {
                Some("must delete access keys first")
            } else if !u.policies.is_empty() {
                Some("must delete policies first")
            } else if !u.attached.is_empty() {
                Some("must detach all policies first")
            } else if !u.groups.is_empty() {
                Some("must remove users from group first")
            } else {
                None
            };
            if let Some(why) = conflict {
                return Err(ApiError::DeleteConflict(format!(
                    "Cannot delete entity, {why}."
                )));
            }
            let id = u.user_id.clone();
            state.users.remove(&name.to_ascii_lowercase());
            state.revoked_before.remove(&id);
            Ok(None)
        })
        .await
}

pub async fn create_access_key(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let dir = call.dir.clone();
    let Some(name) = target_user(p, call)? else {
        return Err(ApiError::Unmodifiable(
            "The root principal's access key is declared in the s3warden config file.".into(),
        ));
    };
    call.authorize("iam:CreateAccessKey", &owner_arn(&dir, Owner::User, &name))?;
    let now = call.now;
    call.store
        .update(move |dir, state| {
            let u = store_user(dir, state, &name)?;
            if u.access_keys.len() >= MAX_KEYS_PER_USER {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}"
                )));
            }
            let mut id = new_access_key_id("AKIA");
            while dir.any_access_key(&id).is_some() {
                id = new_access_key_id("AKIA");
            }
            let key = StoredKey {
                access_key_id: id,
                secret_access_key: new_secret(),
                active: true,
                created: now,
            };
            let mut x = Xml::new();
            x.open("AccessKey")
                .text("UserName", &u.name)
                .text("AccessKeyId", &key.access_key_id)
                .text("Status", "Active")
                .text("SecretAccessKey", &key.secret_access_key)
                .date("CreateDate", key.created)
                .close("AccessKey");
            u.access_keys.push(key);
            Ok(Some(x.finish()))
        })
        .await
}

pub fn list_access_keys(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let dir = call.dir.clone();
    let target = target_user(p, call)?;
    let (owner_name, keys): (Option<String>, Vec<&crate::identity::AccessKey>) = match &target {
        Some(name) => {
            call.authorize("iam:ListAccessKeys", &owner_arn(&dir, Owner::User, name))?;
            let u = find_user(&dir, name)?;
            (
                Some(u.name.clone()),
                u.keys
                    .iter()
                    .filter_map(|k| dir.any_access_key(k))
                    .collect(),
            )
        }
        None => {
            call.authorize(
                "iam:ListAccessKeys",
                &format!("arn:aws:iam::{}:root", dir.account_id),
            )?;
            let keys = call
                .principal
                .access_key_id
                .as_deref()
                .and_then(|k| dir.any_access_key(k))
                .filter(|k| k.owner == KeyOwner::Root)
                .into_iter()
                .collect();
            (None, keys)
        }
    };
    listing(
        p,
        keys,
        |k| k.access_key_id.clone(),
        "AccessKeyMetadata",
        |x, k| {
            x.opt("UserName", owner_name.as_deref())
                .text("AccessKeyId", &k.access_key_id)
                .text("Status", if k.active { "Active" } else { "Inactive" })
                .date("CreateDate", k.created);
        },
    )
}

fn key_id(p: &Params) -> Result<String, ApiError> {
    let id = p.required("AccessKeyId", "accessKeyId")?;
    if !(16..=128).contains(&id.len()) || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(
            Some(id),
            "accessKeyId",
            "Member must satisfy regular expression pattern: [\\w]+ (16 to 128 characters)",
        ));
    }
    Ok(id.to_string())
}

/// The ARN an access-key change is authorized on: the named user's, or the caller's.
fn key_resource(p: &Params, call: &Call<'_>) -> String {
    let name = p
        .get("UserName")
        .map(str::to_string)
        .or_else(|| call.principal.user_name.clone());
    match name {
        Some(n) => owner_arn(&call.dir, Owner::User, &n),
        None => format!("arn:aws:iam::{}:root", call.dir.account_id),
    }
}

/// The user owning `id` (as named, or the caller), for update and delete.
fn key_owner(p: &Params, call: &Call<'_>, id: &str) -> Result<String, ApiError> {
    let dir = &call.dir;
    let not_found =
        || ApiError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."));
    let key = dir.any_access_key(id).ok_or_else(not_found)?;
    let owner = match &key.owner {
        KeyOwner::Root => {
            return Err(ApiError::Unmodifiable(
                "The root principal's access key is declared in the s3warden config file.".into(),
            ));
        }
        KeyOwner::User(n) => n.clone(),
    };
    match target_user(p, call)? {
        Some(named) if named.eq_ignore_ascii_case(&owner) => Ok(owner),
        Some(_) | None => Err(not_found()),
    }
}

pub async fn update_access_key(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let id = key_id(p)?;
    let status = p.required("Status", "status")?;
    let active = match status {
        "Active" => true,
        "Inactive" => false,
        "Expired" => {
            return Err(ApiError::InvalidInput(
                "The status Expired cannot be set; use Active or Inactive.".into(),
            ));
        }
        other => {
            return Err(invalid(
                Some(other),
                "status",
                "Member must satisfy enum value set: [Active, Inactive, Expired]",
            ));
        }
    };
    call.authorize("iam:UpdateAccessKey", &key_resource(p, call))?;
    let owner = key_owner(p, call, &id)?;
    call.store
        .update(move |dir, state| {
            let u = store_user(dir, state, &owner)?;
            let k = u
                .access_keys
                .iter_mut()
                .find(|k| k.access_key_id == id)
                .ok_or_else(|| {
                    ApiError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
                })?;
            k.active = active;
            Ok(None)
        })
        .await
}

pub async fn delete_access_key(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let id = key_id(p)?;
    call.authorize("iam:DeleteAccessKey", &key_resource(p, call))?;
    let owner = key_owner(p, call, &id)?;
    call.store
        .update(move |dir, state| {
            let u = store_user(dir, state, &owner)?;
            let before = u.access_keys.len();
            u.access_keys.retain(|k| k.access_key_id != id);
            if u.access_keys.len() == before {
                return Err(ApiError::NoSuchEntity(format!(
                    "The Access Key with id {id} cannot be found."
                )));
            }
            Ok(None)
        })
        .await
}

/// s3warden's own call (not in AWS's API): every session of a user or role
/// issued before now stops working on its next request. Authorized as
/// `iam:RevokeSessions`; config-declared users may be revoked too, since the
/// mark lives in the store, not in the user's definition. AWS's equivalent
/// is an inline Deny on `aws:TokenIssueTime`, which works here as well.
pub async fn revoke_sessions(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let dir = call.dir.clone();
    let (arn, id) = match (p.get("UserName"), p.get("RoleName")) {
        (Some(u), None) => {
            let name = validate::name(u, "userName", 1, 64)?;
            call.authorize("iam:RevokeSessions", &owner_arn(&dir, Owner::User, name))?;
            let user = find_user(&dir, name)?;
            (user.arn.clone(), user.user_id.clone())
        }
        (None, Some(r)) => {
            let name = validate::name(r, "roleName", 1, 64)?;
            call.authorize("iam:RevokeSessions", &owner_arn(&dir, Owner::Role, name))?;
            let role = find_role(&dir, name)?;
            (role.arn.clone(), role.role_id.clone())
        }
        _ => {
            return Err(ApiError::InvalidInput(
                "Give exactly one of UserName or RoleName.".into(),
            ));
        }
    };
    let now = Utc::now();
    call.store
        .update(move |_, state| {
            // Sessions issued in this very millisecond count as before: fail closed.
            state.revoked_before.insert(id, now.timestamp_millis() + 1);
            Ok::<(), ApiError>(())
        })
        .await?;
    let mut x = Xml::new();
    x.text("Arn", &arn).date("RevokedBefore", now);
    Ok(Some(x.finish()))
}
