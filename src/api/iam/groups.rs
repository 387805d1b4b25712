//! IAM groups and group membership.

use super::super::validate;
use super::super::xml::Xml;
use super::super::{ApiError, Call, Params};
use super::{
    Owner, find_group, find_user, group_xml, listing, owner_arn, store_group, store_user, user_xml,
};
use crate::identity::iam_arn;
use crate::identity::model::StoredGroup;
use crate::identity::sessions::new_unique_id;

const MAX_GROUPS_PER_USER: usize = 10;

fn group_name(p: &Params) -> Result<String, ApiError> {
    Ok(validate::name(p.required("GroupName", "groupName")?, "groupName", 1, 128)?.to_string())
}

fn user_name(p: &Params) -> Result<String, ApiError> {
    Ok(validate::name(p.required("UserName", "userName")?, "userName", 1, 128)?.to_string())
}

pub async fn create_group(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = group_name(p)?;
    let path = validate::path(p.get("Path"), "path")?;
    let arn = iam_arn(call.account(), "group", &path, &name);
    call.authorize("iam:CreateGroup", &arn)?;
    let now = call.now;
    let max_groups = call.store.quotas().groups;
    call.store
        .update(move |dir, state| {
            if let Some(g) = dir.group(&name) {
                return Err(ApiError::EntityAlreadyExists(format!(
                    "Group with name {} already exists.",
                    g.name
                )));
            }
            if dir.group_count() >= max_groups {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for GroupsPerAccount: {max_groups}"
                )));
            }
            let g = StoredGroup {
                name: name.clone(),
                path: path.clone(),
                group_id: new_unique_id("AGPA"),
                created: now,
                policies: Default::default(),
                attached: Vec::new(),
            };
            let mut x = Xml::new();
            x.open("Group")
                .text("Path", &g.path)
                .text("GroupName", &g.name)
                .text("GroupId", &g.group_id)
                .text("Arn", &arn)
                .date("CreateDate", g.created)
                .close("Group");
            state.groups.insert(name.to_ascii_lowercase(), g);
            Ok(Some(x.finish()))
        })
        .await
}

pub fn get_group(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = group_name(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:GetGroup", &owner_arn(&dir, Owner::Group, &name))?;
    let g = find_group(&dir, &name)?;
    let (page, next) = validate::page(p, dir.members(&g.name), |u| u.name.to_ascii_lowercase())?;
    let mut x = Xml::new();
    x.open("Group");
    group_xml(&mut x, g);
    x.close("Group")
        .members("Users", page, user_xml)
        .page(next.as_deref());
    Ok(Some(x.finish()))
}

pub fn list_groups(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let prefix = validate::path_prefix(p.get("PathPrefix"))?;
    let dir = call.dir.clone();
    call.authorize(
        "iam:ListGroups",
        &format!("arn:aws:iam::{}:group/", dir.account_id),
    )?;
    let groups: Vec<_> = dir
        .groups()
        .filter(|g| g.path.starts_with(&prefix))
        .collect();
    listing(
        p,
        groups,
        |g| g.name.to_ascii_lowercase(),
        "Groups",
        group_xml,
    )
}

pub async fn delete_group(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = group_name(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:DeleteGroup", &owner_arn(&dir, Owner::Group, &name))?;
    call.store
        .update(move |dir, state| {
            let g = store_group(dir, state, &name)?;
            let why = if !g.policies.is_empty() {
                Some("must delete policies first")
            } else if !g.attached.is_empty() {
                Some("must detach all policies first")
            } else if !dir.members(&name).is_empty() {
                Some("must remove users from group first")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ApiError::DeleteConflict(format!(
                    "Cannot delete entity, {why}."
                )));
            }
            state.groups.remove(&name.to_ascii_lowercase());
            Ok(None)
        })
        .await
}

pub async fn add_user_to_group(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let group = group_name(p)?;
    let user = user_name(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:AddUserToGroup", &owner_arn(&dir, Owner::Group, &group))?;
    call.store
        .update(move |dir, state| {
            // A store user may join a config group: membership is the user's.
            let g = find_group(dir, &group)?.name.clone();
            let u = store_user(dir, state, &user)?;
            if u.groups.iter().any(|x| x.eq_ignore_ascii_case(&g)) {
                return Ok(None);
            }
            if u.groups.len() >= MAX_GROUPS_PER_USER {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
                )));
            }
            u.groups.push(g);
            Ok(None)
        })
        .await
}

pub async fn remove_user_from_group(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let group = group_name(p)?;
    let user = user_name(p)?;
    let dir = call.dir.clone();
    call.authorize(
        "iam:RemoveUserFromGroup",
        &owner_arn(&dir, Owner::Group, &group),
    )?;
    call.store
        .update(move |dir, state| {
            find_group(dir, &group)?;
            let u = store_user(dir, state, &user)?;
            let before = u.groups.len();
            u.groups.retain(|x| !x.eq_ignore_ascii_case(&group));
            if u.groups.len() == before {
                return Err(ApiError::NoSuchEntity(format!(
                    "The user with name {user} is not a member of group {group}."
                )));
            }
            Ok(None)
        })
        .await
}

pub fn list_groups_for_user(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = user_name(p)?;
    let dir = call.dir.clone();
    call.authorize(
        "iam:ListGroupsForUser",
        &owner_arn(&dir, Owner::User, &name),
    )?;
    let u = find_user(&dir, &name)?;
    let groups: Vec<_> = u.groups.iter().filter_map(|g| dir.group(g)).collect();
    listing(
        p,
        groups,
        |g| g.name.to_ascii_lowercase(),
        "Groups",
        group_xml,
    )
}
