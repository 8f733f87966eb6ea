//! The portal's way in: links the platform mints for a tenant's user, and the sessions they start.

use std::time::Duration;

use hookline_core::duration::parse_duration_at_most;
use hookline_core::id::{PortalSessionId, TenantId};
use hookline_core::portal::{Capability, Theme, new_token, normalise};
use hookline_core::secret::hash_api_key;
use hookline_core::time::Timestamp;
use hookline_store::{NewPortalLink, NewPortalSession, PortalSession};

use super::{Service, ServiceError};

/// How long a link can be redeemed unless its request says otherwise, and at most.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(5 * 60);
pub const MAX_LINK_TTL: Duration = Duration::from_secs(60 * 60);
/// The longest user label a link may carry.
const MAX_USER: usize = 256;

/// A link made: its token (shown once, in the URL's fragment) and when it stops working.
#[derive(Debug)]
pub struct PortalLinkMade {
    pub token: String,
    pub expires: Timestamp,
}

impl Service {
    /// A single-use link for `tenant`'s portal, with what its session may do (everything unless narrowed).
    pub async fn create_portal_link(
        &self,
        tenant: TenantId,
        capabilities: Option<&[String]>,
        ttl: Option<&str>,
        user: Option<String>,
        theme: Option<Theme>,
    ) -> Result<PortalLinkMade, ServiceError> {
        let theme = match theme {
            Some(theme) => {
                theme.check().map_err(|error| ServiceError::invalid("invalid_theme", error.to_string()))?;
                // A `Theme` always serialises.
                Some(serde_json::to_string(&theme).unwrap_or_default())
            }
            None => None,
        };
        let capabilities = match capabilities {
            Some(names) => names
                .iter()
                .map(|name| {
                    name.parse::<Capability>()
                        .map_err(|error| ServiceError::invalid("invalid_capability", error.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Capability::ALL.to_vec(),
        };
        let ttl = match ttl {
            Some(text) => parse_duration_at_most(text, MAX_LINK_TTL).map_err(|error| {
                ServiceError::invalid("invalid_ttl", format!("\"ttl\": {error}; a link lasts at most 1h"))
            })?,
            None => DEFAULT_LINK_TTL,
        };
        if ttl.is_zero() {
            return Err(ServiceError::invalid("invalid_ttl", "\"ttl\" is 0s; give the user time to open the link"));
        }
        if let Some(user) = &user
            && (user.chars().count() > MAX_USER || user.chars().any(char::is_control))
        {
            return Err(ServiceError::invalid(
                "invalid_user",
                format!("\"user\" must be at most {MAX_USER} characters, without control characters"),
            ));
        }
        let token = new_token("hpl_");
        let expires = self.now().saturating_add(ttl);
        let link = NewPortalLink {
            token_hash: hash_api_key(&token),
            tenant: tenant.clone(),
            capabilities: normalise(&capabilities),
            user,
            expires,
            theme,
        };
        if !self.store.create_portal_link(link).await? {
            return Err(ServiceError::TenantNotFound { tenant: tenant.to_string() });
        }
        Ok(PortalLinkMade { token, expires })
    }

    /// Redeems a link: the new session and its token, or `None` when the link is unknown, used or expired.
    pub async fn start_portal_session(&self, link: &str) -> Result<Option<(String, PortalSession)>, ServiceError> {
        let token = new_token("hps_");
        let session = NewPortalSession {
            token_hash: hash_api_key(&token),
            csrf: new_token(""),
            lifetime: self.settings.portal_session_lifetime,
        };
        let started = self.store.redeem_portal_link(hash_api_key(link), session).await?;
        Ok(started.map(|session| (token, session)))
    }

    /// Signs a tenant key in to its tenant's portal, with every capability: the new session and its token, or
    /// `None` when the key is not a tenant's (the admin key included: the operator has a console of its own).
    pub async fn sign_in_with_key(&self, key: &str) -> Result<Option<(String, PortalSession)>, ServiceError> {
        let Some(tenant) = self.store.tenant_for_key_hash(hash_api_key(key)).await? else {
            return Ok(None);
        };
        self.open_portal(tenant, Capability::ALL.to_vec(), None).await
    }

    /// The live session of a token, if any.
    pub async fn portal_session(&self, token: &str) -> Result<Option<PortalSession>, ServiceError> {
        Ok(self.store.portal_session(hash_api_key(token), self.settings.portal_session_idle).await?)
    }

    pub async fn list_portal_sessions(&self, tenant: TenantId) -> Result<Vec<PortalSession>, ServiceError> {
        Ok(self.store.list_portal_sessions(tenant).await?)
    }

    pub async fn revoke_portal_session(&self, tenant: TenantId, id: PortalSessionId) -> Result<(), ServiceError> {
        if self.store.revoke_portal_session(tenant, id.clone()).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found("portal session", &id))
        }
    }
}
