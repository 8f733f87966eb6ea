//! The operators' console, at `/console/`: signed in with the admin key, never framed. The queue and the endpoints
//! in trouble, every tenant with its health, a tenant's failed deliveries with one "send again" for all, its portal
//! opened (read-only unless asked) and its sessions revoked, any event, delivery or endpoint id found across
//! tenants, and the topic catalogue edited. Like the portal's, its pages call the service's use cases and every
//! form carries the session's CSRF token from the console's own origin.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hookline_core::health::State as HealthState;
use hookline_core::id::{DeliveryId, EventId, PortalSessionId, TenantId};
use hookline_core::portal::Capability;
use hookline_core::secret::hash_api_key;
use hookline_store::{ConsoleSession, DeliveryFilter, DeliveryStatus, PageRequest};
use serde::Deserialize;

use super::charts;
use super::{Fields, cookie_named, failed, page, same_origin, signed_in, when};
use crate::api::AppState;
use crate::api::types::{CreateTopicRequest, UpdateTopicRequest};
use crate::error::ApiError;
use crate::service::{QUEUE_COUNT_CAP, ServiceError};

/// The cookie that carries an operator's session.
const COOKIE_NAME: &str = "hookline_console";

pub(crate) fn routes() -> Router<AppState> {
    // Never framed, whatever the portal allows: the console acts on every tenant.
    let policy = HeaderValue::from_static(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(sign_in_page))
        .route("/console/sign-in", post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/queue", get(queue))
        .route("/console/tenants", get(tenants))
        .route("/console/tenants/{tenant}", get(tenant))
        .route("/console/tenants/{tenant}/portal", post(open_portal))
        .route("/console/tenants/{tenant}/recover", post(recover))
        .route("/console/tenants/{tenant}/sessions/{session}/revoke", post(revoke))
        .route("/console/search", get(search))
        .route("/console/topics", get(topics).post(create_topic))
        .route("/console/topics/{name}", post(update_topic))
        .layer(axum::middleware::map_response(move |response| {
            let policy = policy.clone();
            async move {
                let mut response = super::secure_headers(response, policy).await;
                response.headers_mut().insert("x-frame-options", HeaderValue::from_static("DENY"));
                response
            }
        }))
}

/// What the header of every console page shows.
struct Nav {
    csrf: String,
    section: &'static str,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    nav: Option<Nav>,
    heading: String,
    text: String,
    state: &'static str,
}

fn message(status: StatusCode, state: &'static str, heading: &str, text: &str) -> Response {
    let template = MessagePage { nav: None, heading: heading.to_owned(), text: text.to_owned(), state };
    (status, page(&template)).into_response()
}

fn refused() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "error",
        "Refused",
        "This form is out of date or was not sent from the console; reload the page and try again.",
    )
}

fn refusal(error: ServiceError) -> Response {
    let error = ApiError::from(error);
    let status = if error.status.is_server_error() { error.status } else { StatusCode::UNPROCESSABLE_ENTITY };
    message(status, "error", "That did not work", &error.detail)
}

/// A signed-in operator: the session its cookie names.
struct Operator(ConsoleSession);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Operator, Response> {
        let Some(token) = cookie_named(&parts.headers, COOKIE_NAME) else {
            return Err(Redirect::to("/console/").into_response());
        };
        match state.service.console_session(token, &state.admin_key_hash).await {
            Ok(Some(session)) => Ok(Operator(session)),
            Ok(None) => Err(Redirect::to("/console/").into_response()),
            Err(error) => Err(failed(&error)),
        }
    }
}

/// A state-changing console form, checked: a live session, from the console's origin, with its CSRF token.
struct Acted {
    session: ConsoleSession,
    fields: Fields,
}

impl axum::extract::FromRequest<AppState> for Acted {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Acted, Response> {
        let (mut parts, body) = request.into_parts();
        let Operator(session) = Operator::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, state.settings.max_payload_bytes).await.map_err(|_| refused())?;
        let fields = Fields::parse(&bytes);
        let csrf = fields.get("csrf");
        if !same_origin(&parts.headers, state) || csrf.is_empty() || csrf != session.csrf {
            return Err(refused());
        }
        Ok(Acted { session, fields })
    }
}

fn nav(session: &ConsoleSession, section: &'static str) -> Option<Nav> {
    Some(Nav { csrf: session.csrf.clone(), section })
}

fn cookie_attributes(state: &AppState) -> &'static str {
    if state.settings.public_url.starts_with("https://") { "; SameSite=Strict; Secure" } else { "; SameSite=Strict" }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    nav: Option<Nav>,
    error: Option<String>,
}

/// `GET /console/`: the admin key's sign-in, or on to the queue when signed in.
async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie_named(&headers, COOKIE_NAME)
        && matches!(state.service.console_session(token, &state.admin_key_hash).await, Ok(Some(_)))
    {
        return Redirect::to("/console/queue").into_response();
    }
    page(&SignInPage { nav: None, error: None })
}

#[derive(Deserialize)]
struct KeyForm {
    key: String,
}

/// `POST /console/sign-in` (the admin key).
async fn sign_in(State(state): State<AppState>, headers: HeaderMap, axum::Form(form): axum::Form<KeyForm>) -> Response {
    if !same_origin(&headers, &state) {
        return refused();
    }
    if hash_api_key(form.key.trim()) != *state.admin_key_hash {
        let error = Some("That is not the admin key. The console opens with the admin key alone.".to_owned());
        return (StatusCode::UNAUTHORIZED, page(&SignInPage { nav: None, error })).into_response();
    }
    let token = match state.service.start_console_session(&state.admin_key_hash).await {
        Ok((token, _)) => token,
        Err(error) => return failed(&error),
    };
    let cookie = format!("{COOKIE_NAME}={token}; Path=/console; HttpOnly{}", cookie_attributes(&state));
    let mut response = Redirect::to("/console/queue").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// `POST /console/sign-out`.
async fn sign_out(State(state): State<AppState>, Acted { session, .. }: Acted) -> Response {
    if let Err(error) = state.service.end_console_session(session.id).await {
        return failed(&error);
    }
    let cleared = format!("{COOKIE_NAME}=; Path=/console; Max-Age=0{}", cookie_attributes(&state));
    let mut response = Redirect::to("/console/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// An endpoint in trouble, as the queue page lists it.
struct TroubleRow {
    tenant: String,
    endpoint: String,
    url: String,
    state: &'static str,
    failures: u32,
    since: Option<String>,
}

#[derive(Template)]
#[template(path = "console/queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    pending: String,
    due: String,
    oldest_due: Option<String>,
    last_hour: String,
    chart: String,
    leased: Vec<(String, u64)>,
    jobs: Vec<(String, String, String)>,
    trouble: Vec<TroubleRow>,
}

/// A count read up to the cap, said as such when it reached it.
fn capped(count: u64) -> String {
    if count >= u64::from(QUEUE_COUNT_CAP) { format!("more than {QUEUE_COUNT_CAP}") } else { count.to_string() }
}

/// `GET /console/queue`: what waits, since when, the last day's attempts and the endpoints in trouble.
async fn queue(State(state): State<AppState>, Operator(session): Operator) -> Response {
    let overview = match state.service.console_overview().await {
        Ok(overview) => overview,
        Err(error) => return failed(&error),
    };
    let now = state.service.now();
    let hour = charts::Rate::over(&overview.hours, now, 2);
    let trouble = overview
        .failing
        .iter()
        .map(|(failing, shown)| TroubleRow {
            tenant: failing.tenant.to_string(),
            endpoint: failing.endpoint.to_string(),
            url: failing.url.clone(),
            state: shown.as_str(),
            failures: failing.health.consecutive_failures,
            since: failing.health.failing_since.map(when),
        })
        .collect();
    page(&QueuePage {
        nav: nav(&session, "queue"),
        pending: capped(overview.queue.pending),
        due: capped(overview.queue.due),
        oldest_due: overview.queue.oldest_due.map(when),
        last_hour: format!("{} succeeded, {} failed", hour.successes, hour.failures),
        chart: charts::hourly(&overview.hours, now, 24, "Attempts per hour, every endpoint"),
        leased: overview.queue.leased_by_node,
        jobs: overview.queue.jobs.into_iter().map(|(name, holder, until)| (name, holder, when(until))).collect(),
        trouble,
    })
}

struct TenantRow {
    id: String,
    name: String,
    failing: usize,
    disabled: usize,
}

#[derive(Template)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    nav: Option<Nav>,
    tenants: Vec<TenantRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct After {
    after: Option<String>,
}

/// `GET /console/tenants`: every tenant with its endpoints in trouble, a hundred a page.
async fn tenants(State(state): State<AppState>, Operator(session): Operator, Query(after): Query<After>) -> Response {
    let listed = state.service.store().list_tenants(PageRequest { cursor: after.after, limit: 100 }).await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => return failed(&error),
    };
    let trouble = match state.service.endpoints_in_trouble().await {
        Ok(trouble) => trouble,
        Err(error) => return failed(&error),
    };
    let count = |tenant: &TenantId, wanted: HealthState| {
        trouble.iter().filter(|(failing, shown)| failing.tenant == *tenant && *shown == wanted).count()
    };
    let tenants = listed
        .data
        .iter()
        .map(|tenant| TenantRow {
            id: tenant.id.to_string(),
            name: tenant.name.clone(),
            failing: count(&tenant.id, HealthState::Failing),
            disabled: count(&tenant.id, HealthState::Disabled),
        })
        .collect();
    page(&TenantsPage { nav: nav(&session, "tenants"), tenants, next: listed.next_cursor })
}

struct EndpointRow {
    id: String,
    url: String,
    health: &'static str,
}

struct FailedRow {
    id: String,
    endpoint: String,
    topic: String,
    attempts: u32,
    updated: String,
}

struct SessionRow {
    id: String,
    user: String,
    capabilities: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "console/tenant.html")]
struct TenantPage {
    nav: Option<Nav>,
    id: String,
    name: String,
    endpoints: Vec<EndpointRow>,
    failed: Vec<FailedRow>,
    sessions: Vec<SessionRow>,
    notice: Option<String>,
}

fn unknown_tenant() -> Response {
    message(StatusCode::NOT_FOUND, "error", "Not found", "There is no such tenant; go back to the tenants.")
}

/// The tenant a path names, if it exists.
async fn existing(state: &AppState, id: &str) -> Result<hookline_store::Tenant, Response> {
    let Ok(id) = id.parse::<TenantId>() else { return Err(unknown_tenant()) };
    match state.service.store().get_tenant(id).await {
        Ok(Some(tenant)) => Ok(tenant),
        Ok(None) => Err(unknown_tenant()),
        Err(error) => Err(failed(&error)),
    }
}

async fn tenant_page(state: &AppState, session: &ConsoleSession, id: &str, notice: Option<String>) -> Response {
    let tenant = match existing(state, id).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let service = &state.service;
    let everything = async {
        let endpoints = service.list_endpoints(tenant.id.clone(), PageRequest { cursor: None, limit: 1000 }).await?;
        let endpoints = service.with_health(endpoints.data).await?;
        let filter = DeliveryFilter { status: Some(DeliveryStatus::Failed), ..DeliveryFilter::default() };
        let failed =
            service.list_deliveries(tenant.id.clone(), filter, PageRequest { cursor: None, limit: 50 }).await?;
        let sessions = service.list_portal_sessions(tenant.id.clone()).await?;
        Ok::<_, ServiceError>((endpoints, failed.data, sessions))
    };
    let (endpoints, failed_deliveries, sessions) = match everything.await {
        Ok(read) => read,
        Err(error) => return failed(&error),
    };
    page(&TenantPage {
        nav: nav(session, "tenants"),
        id: tenant.id.to_string(),
        name: tenant.name,
        endpoints: endpoints
            .iter()
            .map(|(endpoint, shown, _)| EndpointRow {
                id: endpoint.id.to_string(),
                url: endpoint.url.clone(),
                health: shown.as_str(),
            })
            .collect(),
        failed: failed_deliveries
            .iter()
            .map(|delivery| FailedRow {
                id: delivery.id.to_string(),
                endpoint: delivery.endpoint.to_string(),
                topic: delivery.topic.to_string(),
                attempts: delivery.attempts,
                updated: when(delivery.updated),
            })
            .collect(),
        sessions: sessions
            .iter()
            .map(|portal| SessionRow {
                id: portal.id.to_string(),
                user: portal.user.clone().unwrap_or_default(),
                capabilities: portal.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                last_seen: when(portal.last_seen),
            })
            .collect(),
        notice,
    })
}

/// `GET /console/tenants/{tenant}`.
async fn tenant(State(state): State<AppState>, Operator(session): Operator, Path(id): Path<String>) -> Response {
    tenant_page(&state, &session, &id, None).await
}

/// `POST /console/tenants/{tenant}/portal`: opens the tenant's portal in this browser, read-only unless `access`
/// is `full`, at a delivery's page when one is named.
async fn open_portal(State(state): State<AppState>, Path(id): Path<String>, Acted { fields, .. }: Acted) -> Response {
    let tenant = match existing(&state, &id).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let capabilities = if fields.get("access") == "full" { Capability::ALL.to_vec() } else { vec![Capability::Read] };
    let user = Some("operator".to_owned());
    let token = match state.service.open_portal(tenant.id, capabilities, user).await {
        Ok(Some((token, _))) => token,
        Ok(None) => return unknown_tenant(),
        Err(error) => return failed(&error),
    };
    let mut response = signed_in(&state, &token);
    // Only a delivery id goes into the address, never what the form says beyond it.
    if let Ok(delivery) = fields.get("delivery").parse::<DeliveryId>()
        && let Ok(location) = HeaderValue::from_str(&format!("/portal/deliveries/{delivery}"))
    {
        response.headers_mut().insert(axum::http::header::LOCATION, location);
    }
    response
}

/// `POST /console/tenants/{tenant}/recover`: every endpoint of the tenant sends again what failed in the window.
async fn recover(State(state): State<AppState>, Path(id): Path<String>, Acted { session, fields }: Acted) -> Response {
    let tenant = match existing(&state, &id).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let window = match hookline_core::duration::parse_duration(fields.get("since")) {
        Ok(window) if !window.is_zero() => window,
        _ => return message(StatusCode::UNPROCESSABLE_ENTITY, "error", "Not recovered", "Choose how far back."),
    };
    let since = state.service.now().saturating_sub(window).to_rfc3339();
    let (total, stopped) = state.service.recover_endpoints(tenant.id.clone(), None, &since, None).await;
    if let Some(error) = stopped {
        return refusal(error);
    }
    let notice = format!("{total} failed deliveries of {} are being sent again.", tenant.id);
    tenant_page(&state, &session, &id, Some(notice)).await
}

/// `POST /console/tenants/{tenant}/sessions/{session}/revoke`: signs a portal session out.
async fn revoke(
    State(state): State<AppState>,
    Path((id, portal)): Path<(String, String)>,
    Acted { session, .. }: Acted,
) -> Response {
    let tenant = match existing(&state, &id).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let Ok(portal) = portal.parse::<PortalSessionId>() else { return unknown_tenant() };
    match state.service.revoke_portal_session(tenant.id, portal).await {
        Ok(()) => tenant_page(&state, &session, &id, Some("The session is signed out.".to_owned())).await,
        Err(error) => refusal(error),
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    id: String,
}

#[derive(Template)]
#[template(path = "console/found.html")]
struct FoundPage {
    nav: Option<Nav>,
    id: String,
    tenant: Option<String>,
    kind: &'static str,
    /// A delivery's status and attempts, or an event's deliveries: one line each.
    lines: Vec<String>,
    /// The delivery to open in the tenant's portal.
    delivery: Option<String>,
}

/// `GET /console/search?id=`: which tenant an event, delivery or endpoint id belongs to, and what it is.
async fn search(
    State(state): State<AppState>,
    Operator(session): Operator,
    Query(query): Query<SearchQuery>,
) -> Response {
    let id = query.id.trim().to_owned();
    let kind = if id.starts_with(EventId::PREFIX) {
        "event"
    } else if id.starts_with(DeliveryId::PREFIX) {
        "delivery"
    } else if id.starts_with(hookline_core::id::EndpointId::PREFIX) {
        "endpoint"
    } else {
        ""
    };
    let tenant = if kind.is_empty() || id.len() > 64 {
        None
    } else {
        match state.service.tenant_of(&id).await {
            Ok(tenant) => tenant,
            Err(error) => return failed(&error),
        }
    };
    let mut lines = Vec::new();
    let mut delivery = None;
    if let Some(tenant) = &tenant {
        let read = async {
            if let Ok(found) = id.parse::<DeliveryId>() {
                let detail = state.service.delivery(tenant.clone(), found.clone()).await?;
                lines.push(format!(
                    "{} to {}: {}, {} attempt(s)",
                    detail.delivery.topic,
                    detail.delivery.endpoint,
                    detail.delivery.status.as_str(),
                    detail.attempts.len()
                ));
                for attempt in &detail.attempts {
                    let answer = match (attempt.response_status, attempt.error, &attempt.error_detail) {
                        (Some(status), _, _) => format!("answered {status}"),
                        (None, _, Some(detail)) => detail.clone(),
                        (None, Some(error), None) => error.as_str().to_owned(),
                        (None, None, None) => "no answer".to_owned(),
                    };
                    lines.push(format!("attempt {} at {}: {answer}", attempt.number, when(attempt.started)));
                }
                delivery = Some(found.to_string());
            } else if let Ok(event) = id.parse::<EventId>() {
                let filter = DeliveryFilter { event: Some(event), ..DeliveryFilter::default() };
                let page = PageRequest { cursor: None, limit: 100 };
                for made in state.service.list_deliveries(tenant.clone(), filter, page).await?.data {
                    lines.push(format!("{} to {}: {}", made.id, made.endpoint, made.status.as_str()));
                }
            }
            Ok::<_, ServiceError>(())
        };
        match read.await {
            Ok(()) | Err(ServiceError::Purged { .. }) => {}
            Err(error) => return failed(&error),
        }
    }
    page(&FoundPage {
        nav: nav(&session, "search"),
        id,
        tenant: tenant.map(|tenant| tenant.to_string()),
        kind,
        lines,
        delivery,
    })
}

struct TopicRow {
    name: String,
    description: String,
    deprecated: bool,
    example: String,
}

#[derive(Template)]
#[template(path = "console/topics.html")]
struct TopicsPage {
    nav: Option<Nav>,
    topics: Vec<TopicRow>,
    notice: Option<String>,
    error: Option<String>,
}

async fn topics_page(
    state: &AppState,
    session: &ConsoleSession,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let topics = match state.service.list_topics().await {
        Ok(topics) => topics,
        Err(error) => return failed(&error),
    };
    let topics = topics
        .into_iter()
        .map(|topic| TopicRow {
            name: topic.name.to_string(),
            description: topic.description,
            deprecated: topic.deprecated,
            example: topic.example.unwrap_or_default(),
        })
        .collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    (status, page(&TopicsPage { nav: nav(session, "topics"), topics, notice, error })).into_response()
}

/// `GET /console/topics`: the catalogue, each topic editable.
async fn topics(State(state): State<AppState>, Operator(session): Operator) -> Response {
    topics_page(&state, &session, None, None).await
}

/// The example a form gives: none when empty, else JSON.
fn example_of(fields: &Fields) -> Result<Option<serde_json::Value>, String> {
    let text = fields.get("example").trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|error| format!("The example is not JSON: {error}."))
}

/// `POST /console/topics`: a new topic.
async fn create_topic(State(state): State<AppState>, Acted { session, fields }: Acted) -> Response {
    let example = match example_of(&fields) {
        Ok(example) => example,
        Err(error) => return topics_page(&state, &session, None, Some(error)).await,
    };
    let request = CreateTopicRequest {
        name: fields.get("name").trim().to_owned(),
        description: fields.get("description").trim().to_owned(),
        example,
        template: None,
    };
    match state.service.create_topic(request).await {
        Ok(topic) => topics_page(&state, &session, Some(format!("{} was added.", topic.name)), None).await,
        Err(error) => topics_page(&state, &session, None, Some(ApiError::from(error).detail)).await,
    }
}

/// `POST /console/topics/{name}`: its description, example and whether it is deprecated.
async fn update_topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Acted { session, fields }: Acted,
) -> Response {
    let example = match example_of(&fields) {
        Ok(example) => example,
        Err(error) => return topics_page(&state, &session, None, Some(error)).await,
    };
    let change = UpdateTopicRequest {
        description: Some(fields.get("description").trim().to_owned()),
        deprecated: Some(fields.get("deprecated") == "true"),
        example: Some(example),
        template: None,
    };
    match state.service.update_topic(&name, change).await {
        Ok(topic) => topics_page(&state, &session, Some(format!("{} was saved.", topic.name)), None).await,
        Err(error) => topics_page(&state, &session, None, Some(ApiError::from(error).detail)).await,
    }
}
