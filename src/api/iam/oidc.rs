//! OpenID Connect providers: `CreateOpenIDConnectProvider`, `Get…`, `List…`,
//! `Delete…` and `AddClientIDToOpenIDConnectProvider` (its tags are in
//! `iam::tags`). A provider names an
//! issuer (`https://HOST/PATH`) and the audiences (client ids) whose tokens
//! `AssumeRoleWithWebIdentity` accepts; roles trust it as
//! `"Federated": "arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH"`.
//!
//! As IAM: the URL must use `https://` and is stored without it; at most 100
//! client ids of 1–255 characters and 5 thumbprints of 40 hex digits (the
//! thumbprints are optional and kept for the API only: s3warden checks the
//! provider's certificate against the system's roots and `[federation]
//! ca_file`); deleting a provider that does not exist is not an error.
//! Providers declared in the config file (`[[oidc_providers]]`) are read-only
//! here (`UnmodifiableEntity`).

use super::super::query::invalid;
use super::super::validate;
use super::super::xml::Xml;
use super::super::{ApiError, Call, Params};
use super::tags;
use crate::identity::model::StoredOidcProvider;
pub(crate) use crate::identity::oidc::provider_arn;
use crate::identity::oidc::provider_host_path;

const MAX_PROVIDERS: usize = 100;
const MAX_CLIENT_IDS: usize = 100;
const MAX_THUMBPRINTS: usize = 5;

/// The provider's `HOST/PATH` from an issuer URL (see `identity::oidc`).
pub(crate) fn provider_url(url: &str) -> Result<String, ApiError> {
    if url.is_empty() || url.len() > 255 {
        return Err(invalid(
            Some(url),
            "url",
            "Member must have length between 1 and 255",
        ));
    }
    provider_host_path(url).map_err(|why| ApiError::InvalidInput(why.to_string()))
}

fn client_id(id: &str, field: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > 255 {
        return Err(invalid(
            Some(id),
            field,
            "Member must have length between 1 and 255",
        ));
    }
    Ok(())
}

pub(super) fn arn_param(p: &Params) -> Result<String, ApiError> {
    let arn = p.required("OpenIDConnectProviderArn", "openIDConnectProviderArn")?;
    Ok(validate::arn(arn, "openIDConnectProviderArn")?.to_string())
}

/// A provider the config file declares cannot be changed here.
pub(super) fn config_owned(dir: &crate::identity::Directory, arn: &str) -> Result<(), ApiError> {
    if dir.oidc_provider_from_config(arn) {
        return Err(super::unmodifiable("OpenID Connect provider", arn));
    }
    Ok(())
}

pub(super) fn not_found(arn: &str) -> ApiError {
    ApiError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"))
}

pub async fn create(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let tags = tags::tags_param_as(p, tags::KeyCase::Exact)?;
    let url = provider_url(p.required("Url", "url")?)?;
    let mut client_ids: Vec<String> = Vec::new();
    for id in p.members("ClientIDList", None)? {
        client_id(&id, "clientIDList.member")?;
        if !client_ids.contains(&id) {
            client_ids.push(id);
        }
    }
    if client_ids.len() > MAX_CLIENT_IDS {
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
        )));
    }
    let thumbprints = p.members("ThumbprintList", None)?;
    if thumbprints.len() > MAX_THUMBPRINTS {
        return Err(invalid(
            None,
            "thumbprintList",
            &format!("Member must have length less than or equal to {MAX_THUMBPRINTS}"),
        ));
    }
    for t in &thumbprints {
        if t.len() != 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                Some(t),
                "thumbprintList.member",
                "Member must have length 40 and consist of hexadecimal digits",
            ));
        }
    }
    let thumbprints: Vec<String> = thumbprints.iter().map(|t| t.to_lowercase()).collect();
    let arn = provider_arn(call.account(), &url);
    let ctx = tags::request_context(call.context, &tags);
    call.authorize_with("iam:CreateOpenIDConnectProvider", &arn, ctx.clone())?;
    if !tags.is_empty() {
        // As IAM: creating with tags also takes the permission to tag.
        call.authorize_with("iam:TagOpenIDConnectProvider", &arn, ctx)?;
    }
    let now = call.now;
    call.store
        .update(move |dir, state| {
            if state.oidc_providers.contains_key(&arn) || dir.oidc_provider(&arn).is_some() {
                return Err(ApiError::EntityAlreadyExists(format!(
                    "Provider with url https://{url} already exists."
                )));
            }
            if state.oidc_providers.len() >= MAX_PROVIDERS {
                return Err(ApiError::LimitExceeded(format!(
                    "Cannot exceed quota for OpenIdConnectProvidersPerAccount: {MAX_PROVIDERS}"
                )));
            }
            state.oidc_providers.insert(
                arn.clone(),
                StoredOidcProvider {
                    url,
                    client_ids,
                    thumbprints,
                    created: now,
                    tags,
                },
            );
            let mut x = Xml::new();
            x.text("OpenIDConnectProviderArn", &arn);
            Ok(Some(x.finish()))
        })
        .await
}

pub fn get(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let arn = arn_param(p)?;
    call.authorize("iam:GetOpenIDConnectProvider", &arn)?;
    let dir = call.dir.clone();
    let provider = dir.oidc_provider(&arn).ok_or_else(|| not_found(&arn))?;
    let mut x = Xml::new();
    x.text("Url", &provider.url)
        .members("ClientIDList", provider.client_ids.iter(), |x, id| {
            x.escaped(id);
        })
        .members("ThumbprintList", provider.thumbprints.iter(), |x, t| {
            x.escaped(t);
        })
        .date("CreateDate", provider.created);
    tags::tags_xml(&mut x, &provider.tags);
    Ok(Some(x.finish()))
}

pub fn list(_p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let dir = call.dir.clone();
    call.authorize(
        "iam:ListOpenIDConnectProviders",
        &format!("arn:aws:iam::{}:oidc-provider/", dir.account_id),
    )?;
    let mut arns: Vec<&String> = dir.oidc_providers().map(|(arn, _)| arn).collect();
    arns.sort();
    let mut x = Xml::new();
    x.members("OpenIDConnectProviderList", arns, |x, arn| {
        x.text("Arn", arn);
    });
    Ok(Some(x.finish()))
}

pub async fn delete(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let arn = arn_param(p)?;
    call.authorize("iam:DeleteOpenIDConnectProvider", &arn)?;
    call.store
        .update(move |dir, state| {
            config_owned(dir, &arn)?;
            state.oidc_providers.remove(&arn);
            Ok(None)
        })
        .await
}

pub async fn add_client_id(p: &Params, call: &mut Call<'_>) -> Result<Option<String>, ApiError> {
    let arn = arn_param(p)?;
    let id = p.required("ClientID", "clientID")?.to_string();
    client_id(&id, "clientID")?;
    call.authorize("iam:AddClientIDToOpenIDConnectProvider", &arn)?;
    call.store
        .update(move |dir, state| {
            config_owned(dir, &arn)?;
            let provider = state
                .oidc_providers
                .get_mut(&arn)
                .ok_or_else(|| not_found(&arn))?;
            if !provider.client_ids.contains(&id) {
                if provider.client_ids.len() >= MAX_CLIENT_IDS {
                    return Err(ApiError::LimitExceeded(format!(
                        "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
                    )));
                }
                provider.client_ids.push(id);
            }
            Ok(None)
        })
        .await
}
