//! The portal's endpoint pages: "Add webhook", and one endpoint with its test events, its switch, its secret and
//! its deliveries. Each form calls the same use case as the JSON API; a refusal comes back next to its field.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookline_core::health::{Health, State as HealthState};
use hookline_core::id::EndpointId;
use hookline_core::portal::Capability;
use hookline_core::time::Timestamp;
use hookline_store::{DeliveryFilter, Endpoint, PageRequest, PortalSession};

use super::charts::{self, Rate};
use super::deliveries::DeliveryRow;
use super::{Fields, Frame, Posted, Signed, failed, may, message, not_allowed, page, pretty, when};
use crate::api::AppState;
use crate::api::types::{CreateEndpointRequest, EndpointSecretResponse, UpdateEndpointRequest};
use crate::error::ApiError;
use crate::service::ServiceError;

/// One topic of the catalogue as the form offers it.
struct TopicChoice {
    name: String,
    description: String,
    deprecated: bool,
    checked: bool,
}

struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The "Add webhook" form, or an endpoint's settings: what was typed, and what was wrong with it, field by field.
#[derive(Default)]
struct WebhookForm {
    /// Where it posts: `/portal/webhooks/new`, or an endpoint's settings.
    action: String,
    /// The endpoint being edited, if it is not a new one.
    editing: Option<String>,
    url: String,
    description: String,
    topics: Vec<TopicChoice>,
    formats: Vec<Choice>,
    schemes: Vec<Choice>,
    /// `Name: value`, one a line.
    headers: String,
    /// An endpoint's headers may hold a receiver's credentials: only a session that may see secrets sees and
    /// changes them.
    headers_hidden: bool,
    /// Delays, separated by spaces or commas; empty for the server's schedule.
    retry_schedule: String,
    url_error: Option<String>,
    topics_error: Option<String>,
    description_error: Option<String>,
    format_error: Option<String>,
    signing_error: Option<String>,
    headers_error: Option<String>,
    retry_error: Option<String>,
    general_error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/new_webhook.html")]
struct NewWebhookPage {
    frame: Frame,
    form: WebhookForm,
}

/// What a form's headers field gives: `Name: value` lines (blank lines skipped), or what is wrong with one.
fn parse_headers(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut headers = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("{line:?} is not a header; write one a line as Name: value"));
        };
        headers.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(headers)
}

/// A form's retry schedule: delays separated by spaces or commas, or `None` for the server's own.
fn parse_schedule(text: &str) -> Option<Vec<String>> {
    let delays: Vec<String> =
        text.split([',', ' ']).map(str::trim).filter(|delay| !delay.is_empty()).map(str::to_owned).collect();
    (!delays.is_empty()).then_some(delays)
}

/// The topics a form chose: every topic not deprecated when "all topics" is ticked.
async fn chosen_topics(state: &AppState, fields: &Fields) -> Result<Vec<String>, ServiceError> {
    if fields.get("all_topics") != "yes" {
        return Ok(fields.all("topics"));
    }
    // Every live topic, and the deprecated ones it already has (which stay ticked).
    let ticked = fields.all("topics");
    let catalogue = state.service.list_topics().await?;
    Ok(catalogue
        .into_iter()
        .filter(|topic| !topic.deprecated || ticked.iter().any(|name| name == topic.name.as_str()))
        .map(|topic| topic.name.to_string())
        .collect())
}

const FORMATS: [(&str, &str); 6] = [
    ("", "Chosen from the URL (the event's envelope unless it is Slack, Discord or Teams)"),
    ("envelope", "Envelope: topic, time, data and meta"),
    ("data", "The event's data alone"),
    ("slack", "Slack message"),
    ("discord", "Discord message"),
    ("teams", "Microsoft Teams message"),
];
const SCHEMES: [(&str, &str); 3] =
    [("standard", "Standard Webhooks"), ("heron", "heron-signature"), ("herald", "x-herald-signature")];

impl WebhookForm {
    /// The form as `fields` filled it in, over the catalogue's topics.
    async fn new(state: &AppState, fields: Option<&Fields>) -> Result<WebhookForm, ServiceError> {
        let mut form = WebhookForm::filled(state, fields).await?;
        form.action = "/portal/webhooks/new".to_owned();
        Ok(form)
    }

    /// An endpoint's settings as they are, or as `fields` changed them.
    async fn editing(
        state: &AppState,
        session: &PortalSession,
        endpoint: &Endpoint,
        fields: Option<&Fields>,
    ) -> Result<WebhookForm, ServiceError> {
        let headers_hidden = !may(session, Capability::SeeSecrets);
        let mut form = match fields {
            Some(fields) => WebhookForm::filled(state, Some(fields)).await?,
            None => {
                let topics: Vec<(String, String)> =
                    endpoint.topics.iter().map(|topic| ("topics".to_owned(), topic.to_string())).collect();
                let signing = endpoint.signing.iter().map(|scheme| ("signing".to_owned(), scheme.as_str().to_owned()));
                let mut current = vec![
                    ("url".to_owned(), endpoint.url.clone()),
                    ("description".to_owned(), endpoint.description.clone()),
                    ("format".to_owned(), endpoint.format.as_str().to_owned()),
                    (
                        "headers".to_owned(),
                        endpoint.headers.iter().map(|(name, value)| format!("{name}: {value}\n")).collect(),
                    ),
                    (
                        "retry_schedule".to_owned(),
                        endpoint
                            .retry_schedule
                            .as_ref()
                            .map(|schedule| {
                                let delays = schedule.delays().iter().copied();
                                delays.map(hookline_core::duration::format_duration).collect::<Vec<_>>().join(" ")
                            })
                            .unwrap_or_default(),
                    ),
                ];
                current.extend(topics);
                current.extend(signing);
                WebhookForm::filled(state, Some(&Fields(current))).await?
            }
        };
        form.action = format!("/portal/webhooks/{}/settings", endpoint.id);
        form.editing = Some(endpoint.id.to_string());
        // Its format is set: the URL's choice is for a new one.
        form.formats.retain(|choice| !choice.value.is_empty());
        form.headers_hidden = headers_hidden;
        if headers_hidden {
            form.headers.clear();
        }
        Ok(form)
    }

    async fn filled(state: &AppState, fields: Option<&Fields>) -> Result<WebhookForm, ServiceError> {
        let chosen = fields.map(|fields| fields.all("topics")).unwrap_or_default();
        let format = fields.map_or("", |fields| fields.get("format"));
        let signing = fields.map(|fields| fields.all("signing")).unwrap_or_default();
        let topics = state
            .service
            .list_topics()
            .await?
            .into_iter()
            .map(|topic| TopicChoice {
                checked: chosen.iter().any(|name| name == topic.name.as_str()),
                name: topic.name.to_string(),
                description: topic.description,
                deprecated: topic.deprecated,
            })
            .collect();
        Ok(WebhookForm {
            url: fields.map(|fields| fields.get("url").to_owned()).unwrap_or_default(),
            description: fields.map(|fields| fields.get("description").to_owned()).unwrap_or_default(),
            headers: fields.map(|fields| fields.get("headers").to_owned()).unwrap_or_default(),
            retry_schedule: fields.map(|fields| fields.get("retry_schedule").to_owned()).unwrap_or_default(),
            topics,
            formats: FORMATS.iter().map(|(value, label)| Choice { value, label, selected: *value == format }).collect(),
            schemes: SCHEMES
                .iter()
                .map(|(value, label)| Choice { value, label, selected: signing.iter().any(|name| name == value) })
                .collect(),
            ..WebhookForm::default()
        })
    }

    /// Puts a refusal next to the field it concerns.
    fn refused(&mut self, error: &ApiError) {
        let detail = Some(error.detail.clone());
        match error.code {
            "invalid_url" | "blocked_url" => self.url_error = detail,
            "no_topics" | "invalid_topic" | "unknown_topic" | "deprecated_topic" => self.topics_error = detail,
            "invalid_description" => self.description_error = detail,
            "invalid_format" => self.format_error = detail,
            "invalid_signing" | "invalid_secret" => self.signing_error = detail,
            "invalid_header" => self.headers_error = detail,
            "invalid_retry_schedule" => self.retry_error = detail,
            _ => self.general_error = detail,
        }
    }
}

fn form_page(state: &AppState, session: &PortalSession, form: WebhookForm) -> NewWebhookPage {
    let frame = Frame::of(state, session, "webhooks");
    NewWebhookPage { frame, form }
}

/// `GET /portal/webhooks/new`.
pub(super) async fn new_form(State(state): State<AppState>, Signed(session): Signed) -> Response {
    if !may(&session, Capability::ManageEndpoints) {
        return not_allowed();
    }
    match WebhookForm::new(&state, None).await {
        Ok(form) => page(&form_page(&state, &session, form)),
        Err(error) => failed(&error),
    }
}

/// What a webhook's form sent, read once for a new endpoint and for a change.
struct Submitted {
    url: String,
    topics: Vec<String>,
    description: String,
    format: Option<String>,
    signing: Option<Vec<String>>,
    retry_schedule: Option<Vec<String>>,
    headers: BTreeMap<String, String>,
}

impl Submitted {
    async fn read(state: &AppState, fields: &Fields) -> Result<Submitted, ApiError> {
        let headers =
            parse_headers(fields.get("headers")).map_err(|detail| ApiError::unprocessable("invalid_header", detail))?;
        let signing = fields.all("signing");
        Ok(Submitted {
            url: fields.get("url").trim().to_owned(),
            topics: chosen_topics(state, fields).await.map_err(ApiError::from)?,
            description: fields.get("description").trim().to_owned(),
            format: Some(fields.get("format").to_owned()).filter(|format| !format.is_empty()),
            signing: (!signing.is_empty()).then_some(signing),
            retry_schedule: parse_schedule(fields.get("retry_schedule")),
            headers,
        })
    }
}

/// The form again, with the refusal next to its field (or the server's failure said plainly).
fn shown_again(
    state: &AppState,
    session: &PortalSession,
    form: Result<WebhookForm, ServiceError>,
    error: &ApiError,
) -> Response {
    if error.status.is_server_error() {
        return message(error.status, "error", "Something went wrong", &error.detail);
    }
    match form {
        Ok(mut form) => {
            form.refused(error);
            (StatusCode::UNPROCESSABLE_ENTITY, page(&form_page(state, session, form))).into_response()
        }
        Err(error) => failed(&error),
    }
}

/// `POST /portal/webhooks/new`: creates the endpoint, or shows the form again with what to fix.
pub(super) async fn create(State(state): State<AppState>, Posted { session, fields }: Posted) -> Response {
    if !may(&session, Capability::ManageEndpoints) {
        return not_allowed();
    }
    let created = match Submitted::read(&state, &fields).await {
        Ok(sent) => {
            let request = CreateEndpointRequest {
                url: sent.url,
                topics: sent.topics,
                description: sent.description,
                enabled: None,
                format: sent.format,
                signing: sent.signing,
                retry_schedule: sent.retry_schedule,
                secret: None,
                headers: (!sent.headers.is_empty()).then_some(sent.headers),
            };
            state.service.create_endpoint(session.tenant.clone(), request).await.map_err(ApiError::from)
        }
        Err(error) => Err(error),
    };
    match created {
        Ok(endpoint) => {
            let secret = endpoint.secret.clone();
            endpoint_page(&state, &session, endpoint, Shown { created_secret: Some(secret), ..Shown::default() }).await
        }
        Err(error) => shown_again(&state, &session, WebhookForm::new(&state, Some(&fields)).await, &error),
    }
}

/// `GET /portal/webhooks/{endpoint}/settings`: its settings, to change.
pub(super) async fn settings(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::ManageEndpoints, &id).await?;
    let form = WebhookForm::editing(&state, &session, &endpoint, None).await.map_err(|error| failed(&error))?;
    Ok(page(&form_page(&state, &session, form)))
}

/// `POST /portal/webhooks/{endpoint}/settings`: changes them, or shows the form again with what to fix.
pub(super) async fn save_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, fields }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::ManageEndpoints, &id).await?;
    let saved = match Submitted::read(&state, &fields).await {
        // Its headers would go to the new address: moving it is for a session that may see them.
        Ok(sent)
            if sent.url != endpoint.url && !endpoint.headers.is_empty() && !may(&session, Capability::SeeSecrets) =>
        {
            Err(ApiError::unprocessable(
                "invalid_url",
                "This webhook sends custom headers, which can hold your receiver's credentials: changing its URL \
                 needs access to its secrets. Ask your platform for it, or remove the headers first.",
            ))
        }
        Ok(sent) => {
            let change = UpdateEndpointRequest {
                url: Some(sent.url),
                topics: Some(sent.topics),
                description: Some(sent.description),
                enabled: None,
                format: sent.format,
                // None ticked is unsigned here (which only a chat format may be), not "unchanged".
                signing: Some(sent.signing.unwrap_or_default()),
                retry_schedule: Some(sent.retry_schedule),
                secret: None,
                // Left as they are by a session that may not see them.
                headers: may(&session, Capability::SeeSecrets).then_some(sent.headers),
            };
            state
                .service
                .update_endpoint(session.tenant.clone(), endpoint.id.clone(), change)
                .await
                .map_err(ApiError::from)
        }
        Err(error) => Err(error),
    };
    match saved {
        Ok(_) => Ok(after(&state, &session, &endpoint.id, "Saved.".to_owned()).await),
        Err(error) => {
            let form = WebhookForm::editing(&state, &session, &endpoint, Some(&fields)).await;
            Err(shown_again(&state, &session, form, &error))
        }
    }
}

/// An endpoint as its page shows it.
struct EndpointView {
    id: String,
    url: String,
    description: String,
    topics: String,
    format: &'static str,
    signing: String,
    enabled: bool,
    health: &'static str,
    since: Option<String>,
    reason: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/endpoint.html")]
struct EndpointPage {
    frame: Frame,
    endpoint: EndpointView,
    overview: Overview,
    /// The endpoint's topics with their examples (pretty JSON, or "" when a topic has none), for the test form.
    test_topics: Vec<(String, String)>,
    snippets: Vec<Snippet>,
    deliveries: Vec<DeliveryRow>,
    can_manage: bool,
    can_see_secrets: bool,
    can_retry: bool,
    created_secret: Option<String>,
    revealed_secret: Option<String>,
    previous_secret: Option<String>,
    notice: Option<String>,
}

/// Code that verifies one scheme's signature in one language, as the portal shows it.
struct Snippet {
    scheme: &'static str,
    language: &'static str,
    code: &'static str,
}

/// The receivers' guide's examples (`examples/receivers/`), which `tests/receive.rs` runs on real deliveries.
const EXAMPLES: [(&str, &str, &str); 10] = [
    ("standard", "Python", include_str!("../../../../examples/receivers/verify_standard.py")),
    ("standard", "Node", include_str!("../../../../examples/receivers/verify_standard.js")),
    ("standard", "Go", include_str!("../../../../examples/receivers/verify_standard.go")),
    ("heron", "Python", include_str!("../../../../examples/receivers/verify_heron.py")),
    ("heron", "Node", include_str!("../../../../examples/receivers/verify_heron.js")),
    ("heron", "Go", include_str!("../../../../examples/receivers/verify_heron.go")),
    ("herald", "Python", include_str!("../../../../examples/receivers/verify_herald.py")),
    ("herald", "Node", include_str!("../../../../examples/receivers/verify_herald.js")),
    ("herald", "Go", include_str!("../../../../examples/receivers/verify_herald.go")),
    // One Rust example serves every scheme: the crate's `Verifier` is built with the scheme.
    ("", "Rust", include_str!("../../../../examples/receivers/verify.rs")),
];

/// The part of an example file between its `[verify]` markers: the function, without the lines that run it from
/// a command line.
fn excerpt(file: &'static str) -> &'static str {
    let Some(start) = file.find("[verify]\n").map(|at| at + "[verify]\n".len()) else { return file };
    let end = file[start..].find("[/verify]").map_or(file.len(), |at| start + at);
    // The end marker's comment leader starts its line.
    let end = file[..end].rfind('\n').map_or(end, |at| at + 1);
    file[start..end].trim_end_matches('\n')
}

/// The snippets for the schemes an endpoint signs with: Python, Node, Go and Rust for each.
fn snippets(schemes: &[hookline_core::Scheme]) -> Vec<Snippet> {
    let mut shown = Vec::new();
    for scheme in schemes {
        let name = scheme.as_str();
        for (of, language, file) in EXAMPLES {
            if of == name || of.is_empty() {
                shown.push(Snippet { scheme: name, language, code: excerpt(file) });
            }
        }
    }
    shown
}

/// How an endpoint has done: the share of attempts that succeeded and a chart per hour, over a day and a week.
struct Overview {
    day: String,
    week: String,
    day_chart: String,
    week_chart: String,
}

/// What a page shows beyond the endpoint itself.
#[derive(Default)]
struct Shown {
    created_secret: Option<String>,
    revealed: Option<EndpointSecretResponse>,
    notice: Option<String>,
}

async fn endpoint_page(state: &AppState, session: &PortalSession, endpoint: Endpoint, shown: Shown) -> Response {
    let hours = match state.service.hours_of(std::slice::from_ref(&endpoint), 7 * 24).await {
        Ok(mut hours) => hours.pop().unwrap_or_default(),
        Err(error) => return failed(&error),
    };
    let now = state.service.now();
    let overview = Overview {
        day: Rate::over(&hours, now, 24).share(),
        week: Rate::over(&hours, now, 7 * 24).share(),
        day_chart: charts::hourly(&hours, now, 24, "Last 24 hours"),
        week_chart: charts::hourly(&hours, now, 7 * 24, "Last 7 days"),
    };
    let with = match state.service.with_health(vec![endpoint]).await {
        Ok(with) => with,
        Err(error) => return failed(&error),
    };
    let Some((endpoint, health_state, health)) = with.into_iter().next() else {
        return failed(&std::io::Error::other("an endpoint went missing"));
    };
    let filter = DeliveryFilter { endpoint: Some(endpoint.id.clone()), ..DeliveryFilter::default() };
    let deliveries = match state
        .service
        .list_deliveries(session.tenant.clone(), filter, PageRequest { cursor: None, limit: 20 })
        .await
    {
        Ok(page) => page.data,
        Err(error) => return failed(&error),
    };
    let deliveries = deliveries.iter().map(|delivery| DeliveryRow::new(delivery, endpoint.url.clone())).collect();
    let examples = match state.service.list_topics().await {
        Ok(topics) => topics,
        Err(error) => return failed(&error),
    };
    let test_topics = endpoint
        .topics
        .iter()
        .map(|topic| {
            let example = examples.iter().find(|known| known.name == *topic).and_then(|known| known.example.clone());
            (topic.to_string(), example.map(|example| pretty(&example)).unwrap_or_default())
        })
        .collect();
    let frame = Frame::of(state, session, "webhooks");
    let previous_secret =
        shown.revealed.as_ref().and_then(|secrets| secrets.previous.as_ref()).map(|previous| when(previous.expires_at));
    page(&EndpointPage {
        frame,
        endpoint: view(&endpoint, health_state, &health),
        overview,
        test_topics,
        snippets: snippets(&endpoint.signing),
        deliveries,
        can_manage: may(session, Capability::ManageEndpoints),
        can_see_secrets: may(session, Capability::SeeSecrets),
        can_retry: may(session, Capability::Retry),
        created_secret: shown.created_secret,
        revealed_secret: shown.revealed.map(|secrets| secrets.secret),
        previous_secret,
        notice: shown.notice,
    })
}

fn view(endpoint: &Endpoint, shown: HealthState, health: &Health) -> EndpointView {
    let topics: Vec<String> = endpoint.topics.iter().map(ToString::to_string).collect();
    EndpointView {
        id: endpoint.id.to_string(),
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        topics: topics.join(", "),
        format: endpoint.format.as_str(),
        signing: if endpoint.signing.is_empty() {
            "unsigned".to_owned()
        } else {
            endpoint.signing.iter().map(|scheme| scheme.as_str()).collect::<Vec<_>>().join(", ")
        },
        enabled: endpoint.enabled,
        health: shown.as_str(),
        since: match shown {
            HealthState::Failing => health.failing_since.map(when),
            HealthState::Disabled => endpoint.disabled.as_ref().map(|disabled| when(disabled.at)),
            HealthState::Healthy => None,
        },
        reason: endpoint.disabled.as_ref().map(|disabled| disabled.reason.clone()),
    }
}

/// The endpoint a path names, of the session's tenant (another tenant's is simply not found).
async fn owned(state: &AppState, session: &PortalSession, id: &str) -> Result<Endpoint, Response> {
    let not_found = || {
        message(StatusCode::NOT_FOUND, "error", "Not found", "There is no such webhook here; go back to your webhooks.")
    };
    let id: EndpointId = id.parse().map_err(|_| not_found())?;
    match state.service.endpoint(session.tenant.clone(), id).await {
        Ok(endpoint) => Ok(endpoint),
        Err(ServiceError::NotFound { .. }) => Err(not_found()),
        Err(error) => Err(failed(&error)),
    }
}

/// `GET /portal/webhooks/{endpoint}`.
pub(super) async fn show(State(state): State<AppState>, Signed(session): Signed, Path(id): Path<String>) -> Response {
    match owned(&state, &session, &id).await {
        Ok(endpoint) => endpoint_page(&state, &session, endpoint, Shown::default()).await,
        Err(response) => response,
    }
}

/// The endpoint a checked form acts on: the session must have `capability`, and the endpoint be its tenant's.
async fn target(
    state: &AppState,
    session: &PortalSession,
    capability: Capability,
    id: &str,
) -> Result<Endpoint, Response> {
    if !may(session, capability) {
        return Err(not_allowed());
    }
    owned(state, session, id).await
}

/// The endpoint's page again after a form, with what happened.
async fn after(state: &AppState, session: &PortalSession, id: &EndpointId, notice: String) -> Response {
    match state.service.endpoint(session.tenant.clone(), id.clone()).await {
        Ok(endpoint) => {
            endpoint_page(state, session, endpoint, Shown { notice: Some(notice), ..Shown::default() }).await
        }
        Err(error) => failed(&error),
    }
}

fn refusal(error: ServiceError) -> Response {
    let error = ApiError::from(error);
    let status = if error.status.is_server_error() { error.status } else { StatusCode::UNPROCESSABLE_ENTITY };
    message(status, "error", "That did not work", &error.detail)
}

/// `POST /portal/webhooks/{endpoint}/test`: one event of a topic to this endpoint alone.
pub(super) async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, fields }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::ManageEndpoints, &id).await?;
    let data = match fields.get("data").trim() {
        "" => None,
        text => Some(serde_json::value::RawValue::from_string(text.to_owned()).map_err(|error| {
            message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "error",
                "That did not work",
                &format!("The test event's data is not JSON: {error}. Leave it empty to send the topic's example."),
            )
        })?),
    };
    let sent = state
        .service
        .send_test_event(session.tenant.clone(), endpoint.id.clone(), fields.get("topic"), data.as_deref())
        .await
        .map_err(refusal)?;
    Ok(Redirect::to(&format!("/portal/deliveries/{}", sent.delivery.id)).into_response())
}

/// `POST /portal/webhooks/{endpoint}/enabled`: disables or enables it.
pub(super) async fn set_enabled(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, fields }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::ManageEndpoints, &id).await?;
    let enabled = fields.get("enabled") == "true";
    let change = UpdateEndpointRequest { enabled: Some(enabled), ..UpdateEndpointRequest::default() };
    state.service.update_endpoint(session.tenant.clone(), endpoint.id.clone(), change).await.map_err(refusal)?;
    let notice = if enabled {
        "Enabled: its waiting deliveries go out now."
    } else {
        "Disabled: its deliveries wait until you enable it again."
    };
    Ok(after(&state, &session, &endpoint.id, notice.to_owned()).await)
}

/// `POST /portal/webhooks/{endpoint}/secret`: shows the secret (a form, so that it never sits in a page's GET).
pub(super) async fn reveal_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, .. }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::SeeSecrets, &id).await?;
    let revealed = EndpointSecretResponse::at(&endpoint, state.service.now());
    Ok(endpoint_page(&state, &session, endpoint, Shown { revealed: Some(revealed), ..Shown::default() }).await)
}

/// `POST /portal/webhooks/{endpoint}/secret/rotate`: a new secret, the old one signing for the grace chosen.
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, fields }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::SeeSecrets, &id).await?;
    let grace = Some(fields.get("grace")).filter(|grace| !grace.is_empty());
    let rotated =
        state.service.rotate_secret(session.tenant.clone(), endpoint.id.clone(), grace, None).await.map_err(refusal)?;
    let revealed = EndpointSecretResponse::at(&rotated, state.service.now());
    let notice = Some("The secret was rotated. Give the new one to your receiver.".to_owned());
    Ok(endpoint_page(&state, &session, rotated, Shown { revealed: Some(revealed), notice, ..Shown::default() }).await)
}

/// `POST /portal/webhooks/{endpoint}/recover`: queues again what failed in the window chosen, in the background.
pub(super) async fn recover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, fields }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::Retry, &id).await?;
    let window = match hookline_core::duration::parse_duration(fields.get("since")) {
        Ok(window) if !window.is_zero() => window,
        _ => {
            return Ok(message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "error",
                "That did not work",
                "Choose how far back to recover.",
            ));
        }
    };
    let since = state.service.now().saturating_sub(window).to_rfc3339();
    let recovery = state
        .service
        .recover_endpoint(session.tenant.clone(), endpoint.id.clone(), &since, None)
        .await
        .map_err(refusal)?;
    let notice = match recovery.total {
        0 => "Nothing failed in that time: there is nothing to recover.".to_owned(),
        1 => "1 failed delivery is being sent again.".to_owned(),
        count => format!("{count} failed deliveries are being sent again."),
    };
    Ok(after(&state, &session, &endpoint.id, notice).await)
}

/// Where the recovery of a revived endpoint starts: when its failures began (or, not known, when it was disabled),
/// reaching back by as long as its retries last, since a delivery made before the failures began may have failed
/// for good during them.
fn revived_since(
    failing_since: Option<Timestamp>,
    disabled_at: Option<Timestamp>,
    schedule: &hookline_core::retry::RetrySchedule,
) -> Option<Timestamp> {
    let span: std::time::Duration = schedule.delays().iter().sum();
    failing_since.or(disabled_at).map(|since| since.saturating_sub(span))
}

/// `POST /portal/webhooks/{endpoint}/revive`: the one action of the Webhooks page's banner for an endpoint Hookline
/// disabled: enables it, and sends again what failed since its failures began (with `retry`, the recovery needs it).
pub(super) async fn revive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, .. }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::ManageEndpoints, &id).await?;
    let health = state.service.with_health(vec![endpoint.clone()]).await.map_err(|error| failed(&error))?;
    let schedule = endpoint.retry_schedule.clone().unwrap_or_else(|| state.service.default_schedule());
    let failing_since = health.first().and_then(|(_, _, health)| health.failing_since);
    let since = revived_since(failing_since, endpoint.disabled.as_ref().map(|disabled| disabled.at), &schedule);
    let change = UpdateEndpointRequest { enabled: Some(true), ..UpdateEndpointRequest::default() };
    state.service.update_endpoint(session.tenant.clone(), endpoint.id.clone(), change).await.map_err(refusal)?;
    let notice = match since {
        Some(since) if may(&session, Capability::Retry) => {
            let recovery = state
                .service
                .recover_endpoint(session.tenant.clone(), endpoint.id.clone(), &since.to_rfc3339(), None)
                .await
                .map_err(refusal)?;
            format!(
                "Enabled: its waiting deliveries go out now, and {} that failed are being sent again.",
                recovery.total
            )
        }
        _ => "Enabled: its waiting deliveries go out now.".to_owned(),
    };
    Ok(after(&state, &session, &endpoint.id, notice).await)
}

/// `POST /portal/webhooks/{endpoint}/delete` (ticked to confirm): deletes it; its delivery log stays readable.
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, fields }: Posted,
) -> Result<Response, Response> {
    let endpoint = target(&state, &session, Capability::ManageEndpoints, &id).await?;
    if fields.get("confirm") != "yes" {
        return Ok(message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "error",
            "Not deleted",
            "Tick the box to confirm that this webhook should be deleted.",
        ));
    }
    state.service.delete_endpoint(session.tenant.clone(), endpoint.id.clone()).await.map_err(refusal)?;
    Ok(Redirect::to("/portal/webhooks").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revived_endpoint_recovers_from_before_its_failures_by_its_retries_span() {
        use hookline_core::retry::RetrySchedule;
        let at = |millis: i64| Timestamp::from_unix_millis(millis);
        let hour = std::time::Duration::from_secs(3600);
        let schedule = RetrySchedule::exact(vec![hour, 2 * hour]).unwrap();
        assert_eq!(revived_since(Some(at(100_000_000)), Some(at(900_000_000)), &schedule), Some(at(89_200_000)));
        assert_eq!(revived_since(None, Some(at(900_000_000)), &schedule), Some(at(889_200_000)));
        let none = RetrySchedule::exact(Vec::new()).unwrap();
        assert_eq!(revived_since(Some(at(5)), None, &none), Some(at(5)));
        assert_eq!(revived_since(None, None, &schedule), None);
    }

    #[test]
    fn snippets_are_the_examples_functions_alone() {
        for (scheme, language, file) in EXAMPLES {
            let code = excerpt(file);
            assert!(!code.is_empty() && file.contains(code), "{scheme} {language}");
            for outside in ["[verify]", "[/verify]", "__main__", "process.argv", "os.Args", "Usage:"] {
                assert!(!code.contains(outside), "{scheme} {language} shows {outside:?}:\n{code}");
            }
        }
        let heron = snippets(&[hookline_core::Scheme::Heron]);
        let shown: Vec<(&str, &str)> = heron.iter().map(|snippet| (snippet.scheme, snippet.language)).collect();
        assert_eq!(shown, [("heron", "Python"), ("heron", "Node"), ("heron", "Go"), ("heron", "Rust")]);
        assert!(heron[2].code.contains("func verifyHeron"));
        assert!(snippets(&[]).is_empty(), "an unsigned endpoint has nothing to verify");
    }
}
