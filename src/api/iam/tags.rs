//! Tags on users, roles and OpenID Connect providers: `Tag`/`Untag`/`List…Tags`
//! and `Tags` on `CreateUser`/`CreateRole`/`CreateOpenIDConnectProvider`. A
//! user's or role's tags are its requests' `aws:PrincipalTag/*` (and its
//! sessions'); an IAM call on a user, role or provider sees its tags as
//! `iam:ResourceTag/*`; calls that set tags are authorized with
//! `aws:RequestTag/*` and `aws:TagKeys`.
//!
//! As IAM: at most 50 tags, keys 1–128 and values 0–256 characters of
//! letters, digits, spaces and `_ . : / = + - @`, no key starting with
//! `aws:`; a tag with an existing key replaces it. On users and roles keys
//! compare regardless of case (the new key's case is kept); on providers
//! they compare exactly.

use super::super::query::invalid;
use super::super::xml::Xml;
use super::super::{ApiError, Call, Params};
use super::oidc::{arn_param, config_owned, not_found};
use super::{Owner, find_role, find_user, listing, owner_arn, store_role, store_user};
use crate::identity::Directory;
use crate::identity::model::{MAX_TAGS, Tag, TagKeyProblem, tag_key_problem, tag_value_problem};
use crate::identity::tx::Tx;
use crate::policy::Context;

/// How tag keys compare: regardless of case on users, roles and sessions,
/// exactly on OpenID Connect providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCase {
    Folded,
    Exact,
}

impl KeyCase {
    fn same(self, a: &str, b: &str) -> bool {
        match self {
            KeyCase::Folded => a.eq_ignore_ascii_case(b),
            KeyCase::Exact => a == b,
        }
    }
}

/// The `Tags` parameter: `Tags.member.N.Key` / `.Value`, validated, keys
/// compared regardless of case.
pub(crate) fn tags_param(p: &Params) -> Result<Vec<Tag>, ApiError> {
    tags_param_as(p, KeyCase::Folded)
}

/// The `Tags` parameter, duplicate keys found as `case` compares them.
pub(crate) fn tags_param_as(p: &Params, case: KeyCase) -> Result<Vec<Tag>, ApiError> {
    let keys = p.members("Tags", Some("Key"))?;
    let values = p.members("Tags", Some("Value"))?;
    if keys.len() != values.len() {
        return Err(invalid(None, "tags", "Every tag needs a Key and a Value"));
    }
    if keys.len() > MAX_TAGS {
        return Err(invalid(
            None,
            "tags",
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    let mut out: Vec<Tag> = Vec::new();
    for (key, value) in keys.into_iter().zip(values) {
        check_key(&key)?;
        if tag_value_problem(&value).is_some() {
            return Err(invalid(
                Some(&value),
                "tags.member.value",
                "Member must have length less than or equal to 256 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
        if out.iter().any(|t| case.same(&t.key, &key)) {
            return Err(ApiError::InvalidInput(match case {
                KeyCase::Folded => format!(
                    "Duplicate tag keys found. Please note that Tag keys are case insensitive: {key}"
                ),
                KeyCase::Exact => format!("Duplicate tag keys found: {key}"),
            }));
        }
        out.push(Tag { key, value });
    }
    Ok(out)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    match tag_key_problem(key) {
        None => Ok(()),
        Some(TagKeyProblem::Shape) => Err(invalid(
            Some(key),
            "tags.member.key",
            "Member must have length between 1 and 128 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
        )),
        Some(TagKeyProblem::Reserved) => Err(ApiError::InvalidInput(
            "User-defined tag keys can't start with 'aws:'.".into(),
        )),
    }
}

/// The context of a call that sets these tags (none: the base unchanged).
pub(crate) fn request_context(base: &Context, tags: &[Tag]) -> Context {
    let mut ctx = base.clone();
    if tags.is_empty() {
        return ctx;
    }
    for t in tags {
        ctx.set(&format!("aws:RequestTag/{}", t.key), t.value.as_str());
    }
    ctx.set_multi("aws:TagKeys", tags.iter().map(|t| t.key.clone()).collect());
    ctx
}

/// Adds or replaces tags (keys compared as `case` says).
pub(crate) fn merge(existing: &mut Vec<Tag>, new: &[Tag], case: KeyCase) -> Result<(), ApiError> {
    for t in new {
        match existing.iter_mut().find(|e| case.same(&e.key, &t.key)) {
            Some(e) => *e = t.clone(),
            None => existing.push(t.clone()),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(ApiError::LimitExceeded(format!(
            "The number of tags has reached the maximum limit of {MAX_TAGS}."
        )));
    }
    Ok(())
}

/// `<Tags>` of an entity that has any.
pub(crate) fn tags_xml(x: &mut Xml, tags: &[Tag]) {
    if !tags.is_empty() {
        x.members("Tags", tags.iter(), member_xml);
    }
}

fn member_xml(x: &mut Xml, t: &Tag) {
    x.text("Key", &t.key).text("Value", &t.value);
}

/// What the tagging calls address: a user or role by name, a provider by ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    User,
    Role,
    OidcProvider,
}

impl Tagged {
    /// The entity's name (`UserName`, `RoleName`) or ARN
    /// (`OpenIDConnectProviderArn`), validated.
    fn target(self, p: &Params) -> Result<String, ApiError> {
        match self {
            Tagged::User => Owner::User.name_param(p),
            Tagged::Role => Owner::Role.name_param(p),
            Tagged::OidcProvider => arn_param(p),
        }
    }

    /// The ARN the call is authorized on.
    fn resource(self, dir: &Directory, target: &str) -> String {
        match self {
            Tagged::User => owner_arn(dir, Owner::User, target),
            Tagged::Role => owner_arn(dir, Owner::Role, target),
            Tagged::OidcProvider => target.to_string(),
        }
    }

    /// The entity part of the action names (`iam:Tag<it>`, `iam:List<it>Tags`).
    fn action_noun(self) -> &'static str {
        match self {
            Tagged::User => "User",
            Tagged::Role => "Role",
            Tagged::OidcProvider => "OpenIDConnectProvider",
        }
    }

    fn key_case(self) -> KeyCase {
        match self {
            Tagged::User | Tagged::Role => KeyCase::Folded,
            Tagged::OidcProvider => KeyCase::Exact,
        }
    }

    /// The entity's tags as they are now.
    fn current(self, dir: &Directory, target: &str) -> Result<Vec<Tag>, ApiError> {
        Ok(match self {
            Tagged::User => find_user(dir, target)?.tags.to_vec(),
            Tagged::Role => find_role(dir, target)?.tags.to_vec(),
            Tagged::OidcProvider => dir
                .oidc_provider(target)
                .ok_or_else(|| not_found(target))?
                .tags
                .clone(),
        })
    }

    /// The stored tags the API may change (config entities are refused).
    fn stored<'a>(
        self,
        dir: &Directory,
        state: &'a mut Tx<'_>,
        target: &str,
    ) -> Result<&'a mut Vec<Tag>, ApiError> {
        Ok(match self {
            Tagged::User => &mut store_user(dir, state, target)?.tags,
            Tagged::Role => {
                find_role(dir, target)?;
                &mut store_role(state, target)?.tags
            }
            Tagged::OidcProvider => {
                config_owned(dir, target)?;
                &mut state
                    .oidc_providers
                    .get_mut(target)
                    .ok_or_else(|| not_found(target))?
                    .tags
            }
        })
    }
}

/// `TagUser`, `TagRole` and `TagOpenIDConnectProvider`.
pub async fn tag(
    what: Tagged,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let target = what.target(p)?;
    let case = what.key_case();
    let tags = tags_param_as(p, case)?;
    if tags.is_empty() {
        return Err(invalid(None, "tags", "Member must not be null"));
    }
    let resource = what.resource(&call.dir, &target);
    let ctx = request_context(call.context, &tags);
    call.authorize_with(&format!("iam:Tag{}", what.action_noun()), &resource, ctx)?;
    call.store
        .update(move |dir, state| {
            merge(what.stored(dir, state, &target)?, &tags, case)?;
            Ok(None)
        })
        .await
}

/// `UntagUser`, `UntagRole` and `UntagOpenIDConnectProvider`.
pub async fn untag(
    what: Tagged,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let target = what.target(p)?;
    let keys = p.members("TagKeys", None)?;
    if keys.is_empty() || keys.len() > MAX_TAGS {
        return Err(invalid(
            None,
            "tagKeys",
            "Member must have length between 1 and 50",
        ));
    }
    for k in &keys {
        check_key(k)?;
    }
    let resource = what.resource(&call.dir, &target);
    let mut ctx = call.context.clone();
    ctx.set_multi("aws:TagKeys", keys.clone());
    call.authorize_with(&format!("iam:Untag{}", what.action_noun()), &resource, ctx)?;
    let case = what.key_case();
    call.store
        .update(move |dir, state| {
            what.stored(dir, state, &target)?
                .retain(|t| !keys.iter().any(|k| case.same(k, &t.key)));
            Ok(None)
        })
        .await
}

/// `ListUserTags`, `ListRoleTags` and `ListOpenIDConnectProviderTags`.
pub fn list(what: Tagged, p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let target = what.target(p)?;
    let dir = call.dir.clone();
    call.authorize(
        &format!("iam:List{}Tags", what.action_noun()),
        &what.resource(&dir, &target),
    )?;
    let tags = what.current(&dir, &target)?;
    // In the order given: the marker is the position.
    let items: Vec<(usize, &Tag)> = tags.iter().enumerate().collect();
    listing(
        p,
        items,
        |(i, _)| format!("{i:04}"),
        "Tags",
        |x, (_, t)| member_xml(x, t),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn a_tag_replaces_its_namesake_as_the_entitys_keys_compare() {
        let mut folded = vec![tag("Team", "a")];
        merge(&mut folded, &[tag("team", "b")], KeyCase::Folded).unwrap();
        assert_eq!(folded, [tag("team", "b")]);
        let mut exact = vec![tag("Team", "a")];
        merge(
            &mut exact,
            &[tag("team", "b"), tag("Team", "c")],
            KeyCase::Exact,
        )
        .unwrap();
        assert_eq!(exact, [tag("Team", "c"), tag("team", "b")]);
    }

    #[test]
    fn more_than_fifty_tags_is_a_limit_not_a_truncation() {
        let mut tags: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        // Replacing one keeps the count.
        merge(&mut tags, &[tag("k0", "w")], KeyCase::Exact).unwrap();
        assert!(matches!(
            merge(&mut tags, &[tag("k50", "v")], KeyCase::Exact),
            Err(ApiError::LimitExceeded(_))
        ));
    }
}
