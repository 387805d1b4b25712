//! The STS and IAM query APIs on the proxy endpoint: form parsing, dispatch to
//! the actions, authorization of each call as `iam:<Action>` / `sts:<Action>`,
//! and XML responses in the shapes botocore and the AWS SDKs parse.
//!
//! Follows the AWS Query protocol (S3-SEMANTICS §3.1): `POST /` with a
//! form-encoded body (or `GET` with the parameters in the query), `Action` and
//! `Version` parameters, results in `<{Action}Response><{Action}Result>`,
//! errors in `<ErrorResponse><Error>`. Policy documents in responses are
//! URL-encoded, as IAM sends them. Authentication and routing live in
//! `server::api`; this module gets an authenticated principal and parameters.

pub mod client;
mod errors;
pub mod iam;
pub mod query;
pub mod sts;
mod validate;
pub mod web_identity;
pub mod xml;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use errors::ApiError;
pub use query::Params;

use crate::identity::{Directory, IdentityStore, Principal, PrincipalKind};
use crate::policy::{Context, Decision};

/// Which API a request is for, from the service its signature is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
}

impl Service {
    pub fn version(self) -> &'static str {
        match self {
            Service::Iam => "2010-05-08",
            Service::Sts => "2011-06-15",
        }
    }

    pub fn namespace(self) -> &'static str {
        match self {
            Service::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
            Service::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
        }
    }

    /// The SigV4 service name.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Iam => "iam",
            Service::Sts => "sts",
        }
    }
}

/// What an action needs besides its parameters.
pub struct Call<'a> {
    pub principal: &'a Principal,
    pub dir: Arc<Directory>,
    pub store: &'a Arc<IdentityStore>,
    /// Request-wide condition keys (source IP, time, principal keys…).
    pub context: &'a Context,
    pub now: DateTime<Utc>,
    /// What was authorized, for the audit record.
    pub audit: &'a mut AuditNote,
}

/// The authorization outcome of an API call, for the audit record.
#[derive(Debug, Default)]
pub struct AuditNote {
    pub actions: Vec<String>,
    pub decision: Option<Decision>,
    /// The condition keys the noted decision consulted, with their values.
    pub conditions: crate::audit::Conditions,
}

impl Call<'_> {
    pub fn account(&self) -> &str {
        &self.dir.account_id
    }

    /// Authorizes `action` on `resource` for the caller; root may do anything.
    /// The decision is noted for the audit record; a denial is `AccessDenied`
    /// with AWS's message.
    pub fn authorize(&mut self, action: &str, resource: &str) -> Result<(), ApiError> {
        self.authorize_with(action, resource, self.context.clone())
    }

    /// The tags of the user, role or OpenID Connect provider an IAM ARN
    /// names, when it exists.
    fn resource_tags(&self, arn: &str) -> Option<std::sync::Arc<Vec<crate::identity::model::Tag>>> {
        let rest = arn.strip_prefix(&format!("arn:aws:iam::{}:", self.dir.account_id))?;
        let name = rest.rsplit('/').next()?;
        if rest.starts_with("oidc-provider/") {
            self.dir
                .oidc_provider(arn)
                .map(|p| std::sync::Arc::new(p.tags.clone()))
        } else if rest.starts_with("user/") {
            self.dir
                .user(name)
                .filter(|u| u.arn == arn)
                .map(|u| u.tags.clone())
        } else if rest.starts_with("role/") {
            self.dir
                .role(name)
                .filter(|r| r.arn == arn)
                .map(|r| r.tags.clone())
        } else {
            None
        }
    }

    /// As [`Call::authorize`], with extra condition keys for this action.
    pub fn authorize_with(
        &mut self,
        action: &str,
        resource: &str,
        mut context: Context,
    ) -> Result<(), ApiError> {
        // An IAM call on a tagged user, role or provider sees its tags.
        if let Some(tags) = self.resource_tags(resource) {
            for t in tags.iter() {
                context.set(&format!("iam:ResourceTag/{}", t.key), t.value.as_str());
            }
        }
        let req = crate::policy::Request {
            action,
            resource,
            context: &context,
        };
        let (decision, consulted) =
            crate::policy::trace::traced(|| self.dir.authorize(self.principal, &req));
        let allowed = decision.allowed;
        self.audit.actions.push(action.to_string());
        // The first denial explains the outcome; otherwise the first allow.
        if self
            .audit
            .decision
            .as_ref()
            .is_none_or(|d| d.allowed && !allowed)
        {
            self.audit.conditions = crate::audit::DecisionInfo::default()
                .with_conditions(consulted, &context)
                .conditions;
            self.audit.decision = Some(decision);
        }
        if allowed {
            Ok(())
        } else {
            Err(ApiError::AccessDenied(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource}",
                self.principal.arn
            )))
        }
    }

    pub fn is_session(&self) -> bool {
        self.principal.session.is_some()
    }

    pub fn is_root(&self) -> bool {
        self.principal.kind == PrincipalKind::Root
    }
}

/// Runs one action and returns the XML response body.
pub async fn dispatch(
    service: Service,
    params: &Params,
    call: &mut Call<'_>,
    request_id: &str,
) -> Result<String, ApiError> {
    let action = params.action()?;
    params.check_version(service.version())?;
    let result = match service {
        Service::Iam => iam::run(action, params, call).await?,
        Service::Sts => sts::run(action, params, call).await?,
    };
    Ok(xml::envelope(
        service,
        action,
        result.as_deref(),
        request_id,
    ))
}
