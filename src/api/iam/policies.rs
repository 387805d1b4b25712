//! Inline policies of users, groups and roles; customer managed policies and
//! their attachments. Documents are validated by the policy language before
//! anything is stored, and returned URL-encoded as IAM returns them.

use super::super::query::invalid;
use super::super::validate;
use super::super::xml::{Xml, encode_policy};
use super::super::{ApiError, Call, Params};
use super::{
    Owner, find_group, find_role, find_user, listing, owner_arn, policy_xml, store_group,
    store_role, store_user,
};
use crate::identity::model::{StoredPolicy, StoredVersion};
use crate::identity::sessions::new_unique_id;
use crate::identity::tx::Tx;
use crate::identity::{Directory, InlinePolicy, iam_arn};
use crate::policy::PolicyKind;

const MANAGED_POLICY_SIZE: usize = 6144;
const MAX_ATTACHED: usize = 10;
const MAX_POLICY_VERSIONS: usize = 5;

fn policy_name(p: &Params) -> Result<String, ApiError> {
    Ok(validate::name(
        p.required("PolicyName", "policyName")?,
        "policyName",
        1,
        128,
    )?
    .to_string())
}

/// The inline policies an owner has now (config or store).
fn inline_of<'a>(
    dir: &'a Directory,
    owner: Owner,
    name: &str,
) -> Result<(&'a str, &'a [InlinePolicy]), ApiError> {
    Ok(match owner {
        Owner::User => {
            let u = find_user(dir, name)?;
            (u.name.as_str(), u.policies.as_slice())
        }
        Owner::Group => {
            let g = find_group(dir, name)?;
            (g.name.as_str(), g.policies.as_slice())
        }
        Owner::Role => {
            let r = find_role(dir, name)?;
            (r.name.as_str(), r.policies.as_slice())
        }
    })
}

/// The stored inline-policy map of an owner the API may change.
fn stored_inline<'a>(
    dir: &Directory,
    state: &'a mut Tx<'_>,
    owner: Owner,
    name: &str,
) -> Result<&'a mut std::collections::BTreeMap<String, String>, ApiError> {
    Ok(match owner {
        Owner::User => &mut store_user(dir, state, name)?.policies,
        Owner::Group => &mut store_group(dir, state, name)?.policies,
        Owner::Role => &mut store_role(state, name)?.policies,
    })
}

fn stored_attached<'a>(
    dir: &Directory,
    state: &'a mut Tx<'_>,
    owner: Owner,
    name: &str,
) -> Result<&'a mut Vec<String>, ApiError> {
    Ok(match owner {
        Owner::User => &mut store_user(dir, state, name)?.attached,
        Owner::Group => &mut store_group(dir, state, name)?.attached,
        Owner::Role => &mut store_role(state, name)?.attached,
    })
}

pub async fn put_inline(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let policy = policy_name(p)?;
    let doc = p.required("PolicyDocument", "policyDocument")?.to_string();
    validate::policy_document(&doc, "policyDocument", PolicyKind::Identity)?;
    let dir = call.dir.clone();
    call.authorize(
        &format!("iam:Put{}Policy", owner.capitalized()),
        &owner_arn(&dir, owner, &name),
    )?;
    call.store
        .update(move |dir, state| {
            let (display, _) = inline_of(dir, owner, &name)?;
            let display = display.to_string();
            let map = stored_inline(dir, state, owner, &name)?;
            let others: usize = map
                .iter()
                .filter(|(n, _)| **n != policy)
                .map(|(_, d)| validate::policy_size(d))
                .sum();
            let quota = owner.inline_quota();
            if others + validate::policy_size(&doc) > quota {
                return Err(ApiError::LimitExceeded(format!(
                    "Maximum policy size of {quota} bytes exceeded for {} {display}",
                    owner.noun()
                )));
            }
            map.insert(policy, doc);
            Ok(None)
        })
        .await
}

pub fn get_inline(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let policy = policy_name(p)?;
    let dir = call.dir.clone();
    call.authorize(
        &format!("iam:Get{}Policy", owner.capitalized()),
        &owner_arn(&dir, owner, &name),
    )?;
    let (display, policies) = inline_of(&dir, owner, &name)?;
    let found = policies.iter().find(|x| x.name == policy).ok_or_else(|| {
        ApiError::NoSuchEntity(format!(
            "The {} policy with name {policy} cannot be found.",
            owner.noun()
        ))
    })?;
    let mut x = Xml::new();
    x.text(owner.param().0, display)
        .text("PolicyName", &found.name)
        .text("PolicyDocument", &encode_policy(&found.document));
    Ok(Some(x.finish()))
}

pub fn list_inline(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let dir = call.dir.clone();
    call.authorize(
        &format!("iam:List{}Policies", owner.capitalized()),
        &owner_arn(&dir, owner, &name),
    )?;
    let (_, policies) = inline_of(&dir, owner, &name)?;
    let names: Vec<&str> = policies.iter().map(|x| x.name.as_str()).collect();
    listing(
        p,
        names,
        |n| n.to_string(),
        "PolicyNames",
        |x, n| {
            x.escaped(n);
        },
    )
}

pub async fn delete_inline(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let policy = policy_name(p)?;
    let dir = call.dir.clone();
    call.authorize(
        &format!("iam:Delete{}Policy", owner.capitalized()),
        &owner_arn(&dir, owner, &name),
    )?;
    call.store
        .update(move |dir, state| {
            inline_of(dir, owner, &name)?;
            let map = stored_inline(dir, state, owner, &name)?;
            if map.remove(&policy).is_none() {
                return Err(ApiError::NoSuchEntity(format!(
                    "The {} policy with name {policy} cannot be found.",
                    owner.noun()
                )));
            }
            Ok(None)
        })
        .await
}

fn policy_arn(p: &Params) -> Result<String, ApiError> {
    Ok(validate::arn(p.required("PolicyArn", "policyArn")?, "policyArn")?.to_string())
}

fn no_such_policy(arn: &str) -> ApiError {
    ApiError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

pub async fn create_policy(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = policy_name(p)?;
    let path = validate::path(p.get("Path"), "path")?;
    let description =
        validate::description(p.get("Description"), "description")?.map(str::to_string);
    validate::refuse_unsupported(p, &["Tags"])?;
    let doc = p.required("PolicyDocument", "policyDocument")?.to_string();
    validate::policy_document(&doc, "policyDocument", PolicyKind::Identity)?;
    if validate::policy_size(&doc) > MANAGED_POLICY_SIZE {
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}"
        )));
    }
    let arn = iam_arn(call.account(), "policy", &path, &name);
    call.authorize("iam:CreatePolicy", &arn)?;
    let now = call.now;
    let max_policies = call.store.quotas().managed_policies;
    call.store
        .update(move |dir, state| {
            if dir
                .managed_policies()
                .any(|m| m.name.eq_ignore_ascii_case(&name))
            {
                return Err(ApiError::EntityAlreadyExists(format!(
                    "A policy called {name} already exists. Duplicate names are not allowed."
                )));
            }
            if state.policies.len() >= max_policies {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for PoliciesPerAccount: {max_policies}"
                )));
            }
            let stored = StoredPolicy::new(
                name.clone(),
                path.clone(),
                new_unique_id("ANPA"),
                arn.clone(),
                description.clone(),
                doc.clone(),
                now,
            );
            let mut x = Xml::new();
            x.open("Policy")
                .text("PolicyName", &stored.name)
                .text("PolicyId", &stored.policy_id)
                .text("Arn", &stored.arn)
                .text("Path", &stored.path)
                .text("DefaultVersionId", "v1")
                .text("AttachmentCount", "0")
                .text("PermissionsBoundaryUsageCount", "0")
                .bool("IsAttachable", true)
                .opt("Description", stored.description.as_deref())
                .date("CreateDate", now)
                .date("UpdateDate", now)
                .close("Policy");
            state.policies.insert(arn, stored);
            Ok(Some(x.finish()))
        })
        .await
}

pub fn get_policy(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let arn = policy_arn(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:GetPolicy", &arn)?;
    let m = dir
        .managed_policy(&arn)
        .ok_or_else(|| no_such_policy(&arn))?;
    let mut x = Xml::new();
    x.open("Policy");
    policy_xml(
        &mut x,
        m,
        dir.attachment_count(&arn),
        dir.boundary_count(&arn),
    );
    x.close("Policy");
    Ok(Some(x.finish()))
}

/// `VersionId` as IAM writes it (`v3`), as its number.
fn version_id(p: &Params) -> Result<u32, ApiError> {
    let version = p.required("VersionId", "versionId")?;
    let number = version
        .strip_prefix('v')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
        .and_then(|n| n.parse::<u32>().ok());
    number.ok_or_else(|| {
        invalid(
            Some(version),
            "versionId",
            "Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?",
        )
    })
}

/// A stored managed policy to change the versions of, every version listed.
fn versioned<'a>(state: &'a mut Tx<'_>, arn: &str) -> Result<&'a mut StoredPolicy, ApiError> {
    let m = state
        .policies
        .get_mut(arn)
        .ok_or_else(|| no_such_policy(arn))?;
    m.versions = m.all_versions();
    Ok(m)
}

fn no_such_version(arn: &str, version: u32) -> ApiError {
    ApiError::NoSuchEntity(format!(
        "Policy {arn} version v{version} does not exist or is not attachable."
    ))
}

fn version_xml(x: &mut Xml, v: &StoredVersion, default: u32, with_document: bool) {
    if with_document {
        x.text("Document", &encode_policy(&v.document));
    }
    x.text("VersionId", &format!("v{}", v.id))
        .bool("IsDefaultVersion", v.id == default)
        .date("CreateDate", v.created);
}

pub fn get_policy_version(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let arn = policy_arn(p)?;
    let version = version_id(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:GetPolicyVersion", &arn)?;
    let m = dir
        .managed_policy(&arn)
        .ok_or_else(|| no_such_policy(&arn))?;
    let v = m
        .versions
        .iter()
        .find(|v| v.id == version)
        .ok_or_else(|| no_such_version(&arn, version))?;
    let mut x = Xml::new();
    x.open("PolicyVersion");
    version_xml(&mut x, v, m.default_version, true);
    x.close("PolicyVersion");
    Ok(Some(x.finish()))
}

pub fn list_policy_versions(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let arn = policy_arn(p)?;
    let dir = call.dir.clone();
    call.authorize("iam:ListPolicyVersions", &arn)?;
    let m = dir
        .managed_policy(&arn)
        .ok_or_else(|| no_such_policy(&arn))?;
    // Newest first, as IAM lists them.
    let versions: Vec<&StoredVersion> = m.versions.iter().rev().collect();
    listing(
        p,
        versions,
        |v| format!("{:010}", u32::MAX - v.id),
        "Versions",
        |x, v| version_xml(x, v, m.default_version, false),
    )
}

/// A new version of a managed policy, made the default when asked; IAM
/// keeps five at most.
pub async fn create_policy_version(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let arn = policy_arn(p)?;
    let doc = p.required("PolicyDocument", "policyDocument")?.to_string();
    validate::policy_document(&doc, "policyDocument", PolicyKind::Identity)?;
    if validate::policy_size(&doc) > MANAGED_POLICY_SIZE {
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}"
        )));
    }
    let set_default = validate::boolean(p, "SetAsDefault", "setAsDefault")?;
    call.authorize("iam:CreatePolicyVersion", &arn)?;
    let now = call.now;
    call.store
        .update(move |_, state| {
            let m = versioned(state, &arn)?;
            if m.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(ApiError::LimitExceeded(format!(
                    "A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version."
                )));
            }
            m.last_version += 1;
            let v = StoredVersion {
                id: m.last_version,
                document: doc,
                created: now,
            };
            if set_default {
                m.default_version = v.id;
                m.document = v.document.clone();
                m.updated = Some(now);
            }
            let mut x = Xml::new();
            x.open("PolicyVersion");
            version_xml(&mut x, &v, m.default_version, false);
            x.close("PolicyVersion");
            m.versions.push(v);
            Ok(Some(x.finish()))
        })
        .await
}

pub async fn set_default_policy_version(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let arn = policy_arn(p)?;
    let version = version_id(p)?;
    call.authorize("iam:SetDefaultPolicyVersion", &arn)?;
    let now = call.now;
    call.store
        .update(move |_, state| {
            let m = versioned(state, &arn)?;
            let document = m
                .versions
                .iter()
                .find(|v| v.id == version)
                .map(|v| v.document.clone())
                .ok_or_else(|| no_such_version(&arn, version))?;
            if m.default_version != version {
                m.default_version = version;
                m.document = document;
                m.updated = Some(now);
            }
            Ok(None)
        })
        .await
}

pub async fn delete_policy_version(
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let arn = policy_arn(p)?;
    let version = version_id(p)?;
    call.authorize("iam:DeletePolicyVersion", &arn)?;
    call.store
        .update(move |_, state| {
            let m = versioned(state, &arn)?;
            if !m.versions.iter().any(|v| v.id == version) {
                return Err(no_such_version(&arn, version));
            }
            if m.default_version == version {
                return Err(ApiError::DeleteConflict(
                    "Cannot delete the default version of a policy.".into(),
                ));
            }
            m.versions.retain(|v| v.id != version);
            Ok(None)
        })
        .await
}

pub fn list_policies(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let scope = p.get("Scope").unwrap_or("All");
    if !matches!(scope, "All" | "AWS" | "Local") {
        return Err(invalid(
            Some(scope),
            "scope",
            "Member must satisfy enum value set: [All, AWS, Local]",
        ));
    }
    let only_attached = validate::boolean(p, "OnlyAttached", "onlyAttached")?;
    let prefix = validate::path_prefix(p.get("PathPrefix"))?;
    let usage = p.get("PolicyUsageFilter");
    if let Some(u) = usage
        && !matches!(u, "PermissionsPolicy" | "PermissionsBoundary")
    {
        return Err(invalid(
            Some(u),
            "policyUsageFilter",
            "Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]",
        ));
    }
    let dir = call.dir.clone();
    call.authorize(
        "iam:ListPolicies",
        &format!("arn:aws:iam::{}:policy/", dir.account_id),
    )?;
    // Only customer managed policies exist here: the AWS scope is empty.
    let policies: Vec<_> = dir
        .managed_policies()
        .filter(|_| scope != "AWS")
        .filter(|m| m.path.starts_with(&prefix))
        .filter(|m| {
            let (attached, bounds) = (dir.attachment_count(&m.arn), dir.boundary_count(&m.arn));
            match usage {
                Some("PermissionsPolicy") => !only_attached || attached > 0,
                Some(_) => bounds > 0,
                None => !only_attached || attached + bounds > 0,
            }
        })
        .collect();
    listing(
        p,
        policies,
        |m| m.name.to_ascii_lowercase(),
        "Policies",
        |x, m| {
            policy_xml(
                x,
                m,
                dir.attachment_count(&m.arn),
                dir.boundary_count(&m.arn),
            );
        },
    )
}

pub async fn delete_policy(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let arn = policy_arn(p)?;
    call.authorize("iam:DeletePolicy", &arn)?;
    call.store
        .update(move |dir, state| {
            dir.managed_policy(&arn)
                .ok_or_else(|| no_such_policy(&arn))?;
            if dir.attachment_count(&arn) > 0 || dir.boundary_count(&arn) > 0 {
                return Err(ApiError::DeleteConflict(
                    "Cannot delete a policy attached to entities.".into(),
                ));
            }
            if dir.managed_policy(&arn).is_some_and(|m| m.versions.len() > 1) {
                return Err(ApiError::DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
                ));
            }
            state.policies.remove(&arn);
            Ok(None)
        })
        .await
}

/// `iam:AttachUserPolicy` and the like, with `iam:PolicyARN` in the context.
fn authorize_attachment(
    call: &mut Call<'_>,
    verb: &str,
    owner: Owner,
    name: &str,
    arn: &str,
) -> Result<(), ApiError> {
    let mut ctx = call.context.clone();
    ctx.set("iam:PolicyARN", arn);
    let resource = owner_arn(&call.dir, owner, name);
    call.authorize_with(
        &format!("iam:{verb}{}Policy", owner.capitalized()),
        &resource,
        ctx,
    )
}

pub async fn attach(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let arn = policy_arn(p)?;
    authorize_attachment(call, "Attach", owner, &name, &arn)?;
    call.store
        .update(move |dir, state| {
            inline_of(dir, owner, &name)?;
            dir.managed_policy(&arn)
                .ok_or_else(|| no_such_policy(&arn))?;
            let attached = stored_attached(dir, state, owner, &name)?;
            if attached.contains(&arn) {
                return Ok(None);
            }
            if attached.len() >= MAX_ATTACHED {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for PoliciesPer{}: {MAX_ATTACHED}",
                    owner.capitalized()
                )));
            }
            attached.push(arn);
            Ok(None)
        })
        .await
}

pub async fn detach(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let arn = policy_arn(p)?;
    authorize_attachment(call, "Detach", owner, &name, &arn)?;
    call.store
        .update(move |dir, state| {
            inline_of(dir, owner, &name)?;
            let attached = stored_attached(dir, state, owner, &name)?;
            let before = attached.len();
            attached.retain(|a| *a != arn);
            if attached.len() == before {
                return Err(ApiError::NoSuchEntity(format!(
                    "Policy {arn} was not found."
                )));
            }
            Ok(None)
        })
        .await
}

pub fn list_attached(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let prefix = validate::path_prefix(p.get("PathPrefix"))?;
    let dir = call.dir.clone();
    call.authorize(
        &format!("iam:ListAttached{}Policies", owner.capitalized()),
        &owner_arn(&dir, owner, &name),
    )?;
    let arns: &[String] = match owner {
        Owner::User => &find_user(&dir, &name)?.attached,
        Owner::Group => &find_group(&dir, &name)?.attached,
        Owner::Role => &find_role(&dir, &name)?.attached,
    };
    let policies: Vec<_> = arns
        .iter()
        .filter_map(|a| dir.managed_policy(a))
        .filter(|m| m.path.starts_with(&prefix))
        .collect();
    listing(
        p,
        policies,
        |m| m.name.to_ascii_lowercase(),
        "AttachedPolicies",
        |x, m| {
            x.text("PolicyName", &m.name).text("PolicyArn", &m.arn);
        },
    )
}
