//! Endpoints: where a tenant's webhooks go, which topics they carry, and how they are signed and retried. The
//! rules of a new endpoint and of a change to one are here, whoever asks.

use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::body::Format;
use hookline_core::duration::{parse_duration, parse_duration_at_most};
use hookline_core::health::{HOURS_KEPT, Health, State, hour_of};
use hookline_core::id::{EndpointId, TenantId};
use hookline_core::retry::RetrySchedule;
use hookline_core::secret::{generate_secret, validate_secret};
use hookline_core::target::{EndpointUrl, Host};
use hookline_core::topic::TopicName;
use hookline_store::{Endpoint, EndpointPatch, EndpointStats, HourCount, NewEndpoint, Page, PageRequest, Rotation};

use super::{Service, ServiceError};
use crate::api::types::{CreateEndpointRequest, UpdateEndpointRequest};

/// The longest description an endpoint may have.
const MAX_DESCRIPTION: usize = 1024;

/// How long the secret a rotation replaces still signs, unless the rotation says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The longest grace period a rotation may give.
pub const MAX_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

impl Service {
    /// A new endpoint: every field checked, the server's default schemes when it names none, and a secret
    /// generated for its schemes unless it brings one.
    pub async fn create_endpoint(
        &self,
        tenant: TenantId,
        request: CreateEndpointRequest,
    ) -> Result<Endpoint, ServiceError> {
        let url = self.check_url(&request.url)?;
        let topics = check_topics(&request.topics)?;
        check_description(&request.description)?;
        // A Slack, Discord or Teams URL gets their message unless the request names a format.
        let format = match request.format.as_deref() {
            Some(format) => check_format(format)?,
            None => hookline_core::chat::detect(&url).unwrap_or(Format::Envelope),
        };
        // Chat endpoints are not signed unless asked.
        let signing = match &request.signing {
            Some(names) => check_signing(names, format)?,
            None if format.is_chat() => Vec::new(),
            None => self.settings.default_signing.clone(),
        };
        let retry_schedule = request.retry_schedule.as_deref().map(check_schedule).transpose()?;
        let headers = request.headers.as_ref().map(check_headers).transpose()?.unwrap_or_default();
        let secret = match request.secret {
            Some(secret) => {
                check_secret(&secret, &signing)?;
                secret
            }
            // An unsigned (chat) endpoint gets a secret any scheme can use, for when it is asked to sign.
            None if signing.is_empty() => generate_secret(&[Scheme::Standard]),
            None => generate_secret(&signing),
        };
        let new = NewEndpoint {
            tenant: tenant.clone(),
            url,
            topics,
            description: request.description,
            enabled: request.enabled.unwrap_or(true),
            format,
            signing,
            secret,
            retry_schedule,
            headers,
        };
        self.store
            .create_endpoint(new)
            .await?
            .ok_or_else(|| ServiceError::TenantNotFound { tenant: tenant.to_string() })
    }

    pub async fn list_endpoints(&self, tenant: TenantId, page: PageRequest) -> Result<Page<Endpoint>, ServiceError> {
        Ok(self.store.list_endpoints(tenant, page).await?)
    }

    /// Every endpoint of the tenant, page after page (for what acts on all of them).
    pub async fn all_endpoints(&self, tenant: TenantId) -> Result<Vec<Endpoint>, ServiceError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_endpoints(tenant.clone(), PageRequest { cursor, limit: 1000 }).await?;
            all.extend(page.data);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    pub async fn endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<Endpoint, ServiceError> {
        self.store.get_endpoint(tenant, id.clone()).await?.ok_or_else(|| ServiceError::not_found("endpoint", &id))
    }

    /// Changes the fields `change` names, each checked as on creation. A change of schemes must leave the
    /// endpoint a secret that can sign with them.
    pub async fn update_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        change: UpdateEndpointRequest,
    ) -> Result<Endpoint, ServiceError> {
        let current = self.endpoint(tenant.clone(), id.clone()).await?;
        let format = change.format.as_deref().map(check_format).transpose()?;
        let effective_format = format.unwrap_or(current.format);
        let signing = change.signing.as_deref().map(|names| check_signing(names, effective_format)).transpose()?;
        let effective_signing = signing.as_ref().unwrap_or(&current.signing);
        if effective_signing.is_empty() && !effective_format.is_chat() {
            return Err(unsigned(effective_format));
        }
        match &change.secret {
            Some(secret) => check_secret(secret, effective_signing)?,
            None if signing.is_some() => check_secret(&current.secret, effective_signing).map_err(|_| {
                ServiceError::invalid(
                    "invalid_secret",
                    "the endpoint's secret cannot sign with the new schemes (standard needs a whsec_ secret); \
                     send a new \"secret\" with the change",
                )
            })?,
            None => {}
        }
        if let Some(description) = &change.description {
            check_description(description)?;
        }
        let patch = EndpointPatch {
            url: change.url.as_deref().map(|url| self.check_url(url)).transpose()?,
            topics: change.topics.as_deref().map(check_topics).transpose()?,
            description: change.description,
            enabled: change.enabled,
            format,
            signing,
            secret: change.secret,
            retry_schedule: match change.retry_schedule {
                Some(Some(delays)) => Some(Some(check_schedule(&delays)?)),
                Some(None) => Some(None),
                None => None,
            },
            headers: change.headers.as_ref().map(check_headers).transpose()?,
            rotation: None,
        };
        self.store
            .update_endpoint(tenant, id.clone(), patch)
            .await?
            .ok_or_else(|| ServiceError::not_found("endpoint", &id))
    }

    /// Gives the endpoint a new secret: `secret` (checked against its schemes) or a generated one. The current
    /// secret keeps signing for `grace` (default 24 hours, at most 7 days, `0s` for none); a rotation during a
    /// grace period ends it.
    pub async fn rotate_secret(
        &self,
        tenant: TenantId,
        id: EndpointId,
        grace: Option<&str>,
        secret: Option<String>,
    ) -> Result<Endpoint, ServiceError> {
        let grace = match grace {
            Some(text) => parse_duration_at_most(text, MAX_GRACE).map_err(|error| {
                ServiceError::invalid("invalid_grace", format!("\"grace\": {error} (0s for no grace period)"))
            })?,
            None => DEFAULT_GRACE,
        };
        let current = self.endpoint(tenant.clone(), id.clone()).await?;
        let secret = match secret {
            Some(secret) => {
                check_secret(&secret, &current.signing)?;
                if secret == current.secret {
                    return Err(ServiceError::invalid(
                        "invalid_secret",
                        "the new secret is the endpoint's current one; give another or leave \"secret\" out",
                    ));
                }
                secret
            }
            None => generate_secret(&current.signing),
        };
        let now = self.store.clock().now();
        let grace_until = (!grace.is_zero()).then(|| now.saturating_add(grace));
        let patch = EndpointPatch { rotation: Some(Rotation { secret, grace_until }), ..EndpointPatch::default() };
        self.store
            .update_endpoint(tenant, id.clone(), patch)
            .await?
            .ok_or_else(|| ServiceError::not_found("endpoint", &id))
    }

    /// Each endpoint with its health and the state it shows.
    pub async fn with_health(&self, endpoints: Vec<Endpoint>) -> Result<Vec<(Endpoint, State, Health)>, ServiceError> {
        let ids = endpoints.iter().map(|endpoint| endpoint.id.clone()).collect();
        let healths = self.store.endpoint_health(ids).await?;
        Ok(endpoints
            .into_iter()
            .zip(healths)
            .map(|(endpoint, health)| {
                let state = health.state(endpoint.enabled, &self.settings.health);
                (endpoint, state, health)
            })
            .collect())
    }

    /// An endpoint's health and its attempts per hour over the last seven days.
    pub async fn endpoint_stats(
        &self,
        tenant: TenantId,
        id: EndpointId,
    ) -> Result<(Endpoint, State, EndpointStats), ServiceError> {
        let since = hour_of(self.now()).saturating_sub(HOURS_KEPT);
        let (endpoint, stats) = self
            .store
            .endpoint_stats(tenant, id.clone(), since)
            .await?
            .ok_or_else(|| ServiceError::not_found("endpoint", &id))?;
        let state = stats.health.state(endpoint.enabled, &self.settings.health);
        Ok((endpoint, state, stats))
    }

    /// Each endpoint's attempts per hour over the `hours` hours up to now (the current one included), in their
    /// order: a list's sparklines, one read.
    pub async fn hours_of(&self, endpoints: &[Endpoint], hours: u32) -> Result<Vec<Vec<HourCount>>, ServiceError> {
        let since = hour_of(self.now()).saturating_sub(Duration::from_secs(3600 * u64::from(hours.saturating_sub(1))));
        let ids = endpoints.iter().map(|endpoint| endpoint.id.clone()).collect();
        Ok(self.store.endpoint_hours(ids, since).await?)
    }

    /// Stops the endpoint at once; its rows go in the background.
    pub async fn delete_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<(), ServiceError> {
        if self.store.delete_endpoint(tenant, id.clone()).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found("endpoint", &id))
        }
    }

    fn check_url(&self, url: &str) -> Result<String, ServiceError> {
        let parsed =
            EndpointUrl::parse(url).map_err(|error| ServiceError::invalid("invalid_url", error.to_string()))?;
        if let Host::Ip(address) = parsed.host()
            && let Err(refusal) = self.settings.target_guard.check(*address)
        {
            return Err(ServiceError::invalid(
                "blocked_url",
                format!(
                    "endpoint url {url:?} points at {reason}; webhooks go to public addresses \
                     (operators can set HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS=true for local testing)",
                    reason = refusal.reason
                ),
            ));
        }
        Ok(parsed.to_string())
    }
}

fn check_topics(topics: &[String]) -> Result<Vec<TopicName>, ServiceError> {
    if topics.is_empty() {
        return Err(ServiceError::invalid("no_topics", "an endpoint needs at least one topic; add one to \"topics\""));
    }
    let mut names: Vec<TopicName> = Vec::with_capacity(topics.len());
    for topic in topics {
        let name: TopicName = topic.parse().map_err(|error: hookline_core::topic::TopicNameError| {
            ServiceError::invalid("invalid_topic", error.to_string())
        })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

fn check_format(format: &str) -> Result<Format, ServiceError> {
    format
        .parse()
        .map_err(|error: hookline_core::body::FormatError| ServiceError::invalid("invalid_format", error.to_string()))
}

/// The schemes named; none only for a chat endpoint, which services read without a signature.
fn check_signing(names: &[String], format: Format) -> Result<Vec<Scheme>, ServiceError> {
    if names.is_empty() && !format.is_chat() {
        return Err(unsigned(format));
    }
    let mut schemes = Vec::with_capacity(names.len());
    for name in names {
        let scheme: Scheme = name.parse().map_err(|error: hookline_verify::ParseSchemeError| {
            ServiceError::invalid("invalid_signing", error.to_string())
        })?;
        if !schemes.contains(&scheme) {
            schemes.push(scheme);
        }
    }
    Ok(schemes)
}

fn unsigned(format: Format) -> ServiceError {
    ServiceError::invalid(
        "invalid_signing",
        format!(
            "\"signing\" needs at least one of heron, herald, standard for a {format} endpoint (only slack, discord \
             and teams endpoints go unsigned)"
        ),
    )
}

fn check_schedule(delays: &[String]) -> Result<RetrySchedule, ServiceError> {
    let invalid = |detail: String| ServiceError::invalid("invalid_retry_schedule", detail);
    let parsed = delays
        .iter()
        .map(|delay| parse_duration(delay).map_err(|error| invalid(error.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    RetrySchedule::exact(parsed).map_err(|error| invalid(error.to_string()))
}

fn check_description(description: &str) -> Result<(), ServiceError> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ServiceError::invalid("invalid_description", "the description is longer than 1024 characters"));
    }
    Ok(())
}

fn check_headers(headers: &std::collections::BTreeMap<String, String>) -> Result<Vec<(String, String)>, ServiceError> {
    let pairs: Vec<(String, String)> = headers.iter().map(|(name, value)| (name.clone(), value.clone())).collect();
    hookline_core::headers::check_headers(&pairs)
        .map_err(|error| ServiceError::invalid("invalid_header", error.to_string()))
}

fn check_secret(secret: &str, signing: &[Scheme]) -> Result<(), ServiceError> {
    validate_secret(secret, signing).map_err(|error| ServiceError::invalid("invalid_secret", error.to_string()))
}
