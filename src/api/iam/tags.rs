//! Tags on users and roles: `Tag`/`Untag`/`List{User,Role}Tags` and `Tags` on
//! `CreateUser`/`CreateRole`. A user's or role's tags are its requests'
//! `aws:PrincipalTag/*` (and its sessions'), and an IAM call on it sees them
//! as `iam:ResourceTag/*`; calls that set tags are authorized with
//! `aws:RequestTag/*` and `aws:TagKeys`.
//!
//! As IAM: at most 50 tags, keys 1–128 and values 0–256 characters of
//! letters, digits, spaces and `_ . : / = + - @`, no key starting with
//! `aws:`; on users and roles keys compare regardless of case, and a tag
//! with an existing key replaces it (taking the new key's case).

use super::super::query::invalid;
use super::super::xml::Xml;
use super::super::{ApiError, Call, Params};
use super::{Owner, find_role, find_user, listing, owner_arn, store_role, store_user};
use crate::identity::Directory;
use crate::identity::model::Tag;
use crate::identity::tx::Tx;
use crate::policy::Context;

const MAX_TAGS: usize = 50;

fn tag_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// The `Tags` parameter: `Tags.member.N.Key` / `.Value`, validated.
pub(crate) fn tags_param(p: &Params) -> Result<Vec<Tag>, ApiError> {
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
        if value.chars().count() > 256 || !tag_chars(&value) {
            return Err(invalid(
                Some(&value),
                "tags.member.value",
                "Member must have length less than or equal to 256 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
        if out.iter().any(|t| t.key.eq_ignore_ascii_case(&key)) {
            return Err(ApiError::InvalidInput(format!(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive: {key}"
            )));
        }
        out.push(Tag { key, value });
    }
    Ok(out)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > 128 || !tag_chars(key) {
        return Err(invalid(
            Some(key),
            "tags.member.key",
            "Member must have length between 1 and 128 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
        ));
    }
    if key.len() >= 4 && key[..4].eq_ignore_ascii_case("aws:") {
        return Err(ApiError::InvalidInput(
            "User-defined tag keys can't start with 'aws:'.".into(),
        ));
    }
    Ok(())
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

/// Adds or replaces tags (keys compared regardless of case).
pub(crate) fn merge(existing: &mut Vec<Tag>, new: &[Tag]) -> Result<(), ApiError> {
    for t in new {
        match existing
            .iter_mut()
            .find(|e| e.key.eq_ignore_ascii_case(&t.key))
        {
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

/// The stored tags of a user or role the API may change.
fn stored_tags<'a>(
    owner: Owner,
    dir: &Directory,
    state: &'a mut Tx<'_>,
    name: &str,
) -> Result<&'a mut Vec<Tag>, ApiError> {
    Ok(match owner {
        Owner::User => &mut store_user(dir, state, name)?.tags,
        _ => {
            find_role(dir, name)?;
            &mut store_role(state, name)?.tags
        }
    })
}

/// `TagUser` and `TagRole`.
pub async fn tag(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let tags = tags_param(p)?;
    if tags.is_empty() {
        return Err(invalid(None, "tags", "Member must not be null"));
    }
    let resource = owner_arn(&call.dir, owner, &name);
    let ctx = request_context(call.context, &tags);
    call.authorize_with(&format!("iam:Tag{}", owner.capitalized()), &resource, ctx)?;
    call.store
        .update(move |dir, state| {
            merge(stored_tags(owner, dir, state, &name)?, &tags)?;
            Ok(None)
        })
        .await
}

/// `UntagUser` and `UntagRole`.
pub async fn untag(
    owner: Owner,
    p: &Params,
    call: &mut Call<'_>,
) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
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
    let resource = owner_arn(&call.dir, owner, &name);
    let mut ctx = call.context.clone();
    ctx.set_multi("aws:TagKeys", keys.clone());
    call.authorize_with(&format!("iam:Untag{}", owner.capitalized()), &resource, ctx)?;
    call.store
        .update(move |dir, state| {
            stored_tags(owner, dir, state, &name)?
                .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            Ok(None)
        })
        .await
}

/// `ListUserTags` and `ListRoleTags`.
pub fn list(owner: Owner, p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let name = owner.name_param(p)?;
    let dir = call.dir.clone();
    call.authorize(
        &format!("iam:List{}Tags", owner.capitalized()),
        &owner_arn(&dir, owner, &name),
    )?;
    let tags = match owner {
        Owner::User => find_user(&dir, &name)?.tags.clone(),
        _ => find_role(&dir, &name)?.tags.clone(),
    };
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
