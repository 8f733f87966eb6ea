//! The portal: pages for a platform's customers, served by the same binary from templates compiled into it. A
//! tenant's user comes in through a single-use link the platform mints (`POST …/portal-links`); its token is in
//! the URL's fragment, which the portal's script posts once to start a session held in an HTTP-only cookie. Pages
//! call the same use cases as the JSON API (`crate::service`), the tenant comes only from the session, and every
//! state-changing form carries the session's CSRF token and must come from the portal's own origin.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hookline_core::health::State as HealthState;
use hookline_core::portal::{Capability, Theme, css_colour, readable_on, rgb, text_on};
use hookline_store::{DISABLED_BY_HAND, PageRequest, PortalSession};
use serde::Deserialize;

use crate::api::AppState;

mod charts;
pub(crate) mod console;
mod deliveries;
mod endpoints;

/// The cookie that carries a portal session's token.
const COOKIE_NAME: &str = "hookline_portal";

pub(crate) fn routes(settings: &crate::api::ApiSettings) -> Router<AppState> {
    let frame_ancestors = if settings.portal_frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        settings.portal_frame_ancestors.join(" ")
    };
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; \
         connect-src 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    );
    // The origins were checked as the configuration was read; should one still not fit a header, nothing frames it.
    let policy = HeaderValue::from_str(&policy)
        .unwrap_or(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    Router::new()
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(landing))
        .route("/portal/session", post(redeem))
        .route("/portal/sign-in", post(sign_in))
        .route("/portal/webhooks", get(webhooks))
        .route("/portal/webhooks/new", get(endpoints::new_form).post(endpoints::create))
        .route("/portal/webhooks/{endpoint}", get(endpoints::show))
        .route("/portal/webhooks/{endpoint}/settings", get(endpoints::settings).post(endpoints::save_settings))
        .route("/portal/webhooks/{endpoint}/test", post(endpoints::test))
        .route("/portal/webhooks/{endpoint}/enabled", post(endpoints::set_enabled))
        .route("/portal/webhooks/{endpoint}/secret", post(endpoints::reveal_secret))
        .route("/portal/webhooks/{endpoint}/secret/rotate", post(endpoints::rotate_secret))
        .route("/portal/webhooks/{endpoint}/recover", post(endpoints::recover))
        .route("/portal/webhooks/{endpoint}/revive", post(endpoints::revive))
        .route("/portal/webhooks/{endpoint}/delete", post(endpoints::delete))
        .route("/portal/catalogue", get(catalogue))
        .route("/portal/deliveries", get(deliveries::list))
        .route("/portal/deliveries/recover", post(deliveries::recover))
        .route("/portal/deliveries/{delivery}", get(deliveries::show))
        .route("/portal/deliveries/{delivery}/retry", post(deliveries::retry))
        .route("/portal/sign-out", post(sign_out))
        .route("/portal/signed-out", get(signed_out))
        .route("/portal/theme.css", get(theme_css))
        .route(
            "/portal/static/portal.css",
            get(|| async { asset("text/css", include_str!("../../static/portal.css")) }),
        )
        .route(
            "/portal/static/portal.js",
            get(|| async { asset("text/javascript", include_str!("../../static/portal.js")) }),
        )
        .layer(axum::middleware::map_response(move |response| secure_headers(response, policy.clone())))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Every portal answer: a strict policy with no inline script or style, framed only by the origins the operator
/// names (none by default), nothing cached, and no portal address in another site's Referer.
pub(super) async fn secure_headers(mut response: Response, policy: HeaderValue) -> Response {
    let headers = response.headers_mut();
    headers.insert("content-security-policy", policy);
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // `same-origin`: the portal's own forms still carry their `Origin` (under `no-referrer` a browser sends
    // `Origin: null`), and no other site ever sees a portal address.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A page, rendered; a template that fails to render is the server's fault, said plainly.
pub(super) fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "a portal page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be shown; try again").into_response()
        }
    }
}

/// What the header of every page shows: the tenant and the user when signed in.
pub(super) struct Frame {
    pub(super) tenant: Option<String>,
    pub(super) user: Option<String>,
    pub(super) csrf: String,
    pub(super) section: &'static str,
    /// The name at the top: the session's theme's, or the operator's.
    pub(super) brand: String,
    /// The theme's logo, an `https://` address checked when the theme was given.
    pub(super) logo: Option<String>,
}

impl Frame {
    fn signed_out() -> Frame {
        Frame { tenant: None, user: None, csrf: String::new(), section: "", brand: "Webhooks".to_owned(), logo: None }
    }

    /// Signed out, in the operator's theme: the pages a framed portal shows before and after a session.
    fn operators(state: &AppState) -> Frame {
        let theme = theme_of(state, None);
        Frame { brand: theme.name.unwrap_or_else(|| "Webhooks".to_owned()), logo: theme.logo, ..Frame::signed_out() }
    }

    pub(super) fn of(state: &AppState, session: &PortalSession, section: &'static str) -> Frame {
        let theme = theme_of(state, Some(session));
        Frame {
            tenant: Some(session.tenant.to_string()),
            user: session.user.clone(),
            csrf: session.csrf.clone(),
            section,
            brand: theme.name.unwrap_or_else(|| "Webhooks".to_owned()),
            logo: theme.logo,
        }
    }
}

#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage {
    frame: Frame,
    heading: String,
    text: String,
    /// What the portal's script and tests read of the page: `signed-out`, `link-refused`, `error`.
    state: &'static str,
}

pub(super) fn message(status: StatusCode, state: &'static str, heading: &str, text: &str) -> Response {
    framed_message(Frame::signed_out(), status, state, heading, text)
}

fn framed_message(frame: Frame, status: StatusCode, state: &'static str, heading: &str, text: &str) -> Response {
    let template = MessagePage { frame, heading: heading.to_owned(), text: text.to_owned(), state };
    (status, page(&template)).into_response()
}

#[derive(Template)]
#[template(path = "portal/landing.html")]
struct LandingPage {
    frame: Frame,
    key_error: Option<String>,
}

/// `GET /portal/`: where a link lands. A browser already signed in goes on to its webhooks; otherwise the script
/// posts the fragment's token.
async fn landing(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_cookie(&headers)
        && matches!(state.service.portal_session(token).await, Ok(Some(_)))
    {
        return Redirect::to("/portal/webhooks").into_response();
    }
    let frame = Frame::operators(&state);
    page(&LandingPage { frame, key_error: None })
}

#[derive(Deserialize)]
struct SignInForm {
    key: String,
}

/// `POST /portal/sign-in` (a tenant key): a session of the key's tenant, for teams without a dashboard of their own.
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    if !same_origin(&headers, &state) {
        return message(StatusCode::FORBIDDEN, "error", "Refused", "This form must be sent from the portal itself.");
    }
    match state.service.sign_in_with_key(form.key.trim()).await {
        Ok(Some((token, _))) => signed_in(&state, &token),
        Ok(None) => {
            let frame = Frame::operators(&state);
            let key_error =
                Some("That key does not open a portal. Check it, or ask your platform for a new one.".to_owned());
            (StatusCode::UNAUTHORIZED, page(&LandingPage { frame, key_error })).into_response()
        }
        Err(error) => failed(&error),
    }
}

/// The answer that starts a session: its cookie, and on to the webhooks.
pub(super) fn signed_in(state: &AppState, token: &str) -> Response {
    let cookie = format!("{COOKIE_NAME}={token}; Path=/portal; HttpOnly{}", cookie_attributes(state));
    let mut response = Redirect::to("/portal/webhooks").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct RedeemForm {
    token: String,
}

/// `POST /portal/session` (the link's token): starts a session and sets its cookie.
async fn redeem(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<RedeemForm>,
) -> Response {
    if !same_origin(&headers, &state) {
        return message(StatusCode::FORBIDDEN, "error", "Refused", "This form must be sent from the portal itself.");
    }
    match state.service.start_portal_session(form.token.trim()).await {
        Ok(Some((token, _))) => signed_in(&state, &token),
        Ok(None) => framed_message(
            Frame::operators(&state),
            StatusCode::UNAUTHORIZED,
            "link-refused",
            "This link no longer works",
            "A portal link works once, for a few minutes. Go back to your platform's page and open the portal again.",
        ),
        Err(error) => failed(&error),
    }
}

pub(super) fn failed(error: &dyn std::error::Error) -> Response {
    tracing::error!(error = %hookline_dispatch::error_chain(error), "a portal request failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "error", "Something went wrong", "The request failed; try again.")
}

/// How the session cookie is scoped. Framed by another site, the portal's cookie is third-party there: it must be
/// `SameSite=None` (and so `Secure`), and `Partitioned` so that browsers blocking third-party cookies keep it, in
/// a jar of that site's own. Otherwise `Lax`, `Secure` when served over HTTPS.
fn cookie_attributes(state: &AppState) -> &'static str {
    if !state.settings.portal_frame_ancestors.is_empty() {
        "; SameSite=None; Secure; Partitioned"
    } else if state.settings.public_url.starts_with("https://") {
        "; SameSite=Lax; Secure"
    } else {
        "; SameSite=Lax"
    }
}

/// The session's token from the request's cookie, if it has one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie_named(headers, COOKIE_NAME)
}

/// The value of the request's cookie `name`, if it has one.
pub(super) fn cookie_named<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Whether a form comes from the portal's own pages: its `Origin` (browsers send it with every form post) names
/// this server, as the request's `Host` or the configured public URL does.
pub(super) fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let host = headers.get(HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    origin == state.settings.public_url
        || origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

/// A signed-in portal user: the session its cookie names. The tenant comes from here alone.
pub(super) struct Signed(pub(super) PortalSession);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Signed, Response> {
        let Some(token) = session_cookie(&parts.headers) else {
            return Err(Redirect::to("/portal/signed-out").into_response());
        };
        match state.service.portal_session(token).await {
            Ok(Some(session)) => Ok(Signed(session)),
            Ok(None) => Err(Redirect::to("/portal/signed-out").into_response()),
            Err(error) => Err(failed(&error)),
        }
    }
}

/// `GET /portal/signed-out`: where a request without a live session ends up; inside a frame, the script tells
/// the platform's page.
async fn signed_out(State(state): State<AppState>) -> Response {
    let mut response = framed_message(
        Frame::operators(&state),
        StatusCode::UNAUTHORIZED,
        "signed-out",
        "You are signed out",
        "Your session is over. Open the portal again from your platform's page.",
    );
    let cleared = format!("{COOKIE_NAME}=; Path=/portal; Max-Age=0{}", cookie_attributes(&state));
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// Whether a state-changing form may act: from the portal's origin, with the session's CSRF token.
fn form_allowed(headers: &HeaderMap, state: &AppState, session: &PortalSession, csrf: &str) -> bool {
    same_origin(headers, state) && !csrf.is_empty() && csrf == session.csrf
}

fn form_refused() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "error",
        "Refused",
        "This form is out of date or was not sent from the portal; reload the page and try again.",
    )
}

/// `POST /portal/sign-out`: ends the session.
async fn sign_out(State(state): State<AppState>, Posted { session, .. }: Posted) -> Response {
    if let Err(error) = state.service.revoke_portal_session(session.tenant.clone(), session.id.clone()).await {
        return failed(&error);
    }
    Redirect::to("/portal/signed-out").into_response()
}

/// One endpoint as the Webhooks page lists it.
struct EndpointRow {
    id: String,
    url: String,
    description: String,
    topics: String,
    health: &'static str,
    since: Option<String>,
    format: &'static str,
    /// The last 24 hours, as an inline SVG the server drew.
    spark: String,
    /// When it was last attempted, if ever.
    last: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/webhooks.html")]
struct WebhooksPage {
    frame: Frame,
    tenant_name: String,
    endpoints: Vec<EndpointRow>,
    can_manage: bool,
    /// The endpoints Hookline disabled, each with one action to enable it and send again what failed meanwhile.
    banners: Vec<Banner>,
}

/// An endpoint Hookline disabled after days of failures, as the Webhooks page warns of it.
struct Banner {
    id: String,
    url: String,
    /// Since when its deliveries failed (its run of failures, or when it was disabled).
    since: String,
}

/// `GET /portal/webhooks`: the tenant's endpoints with their health (Heron's Settings → Webhooks).
async fn webhooks(State(state): State<AppState>, Signed(session): Signed) -> Response {
    let listed = state.service.list_endpoints(session.tenant.clone(), PageRequest { cursor: None, limit: 1000 }).await;
    let endpoints = match listed {
        Ok(page) => page.data,
        Err(error) => return failed(&error),
    };
    let hours = match state.service.hours_of(&endpoints, 24).await {
        Ok(hours) => hours,
        Err(error) => return failed(&error),
    };
    let endpoints = match state.service.with_health(endpoints).await {
        Ok(endpoints) => endpoints,
        Err(error) => return failed(&error),
    };
    let now = state.service.now();
    let rows = endpoints
        .iter()
        .zip(&hours)
        .map(|((endpoint, shown, health), hours)| EndpointRow {
            id: endpoint.id.to_string(),
            url: endpoint.url.clone(),
            description: endpoint.description.clone(),
            topics: endpoint.topics.iter().map(|topic| topic.as_str()).collect::<Vec<_>>().join(", "),
            health: shown.as_str(),
            since: match shown {
                HealthState::Failing => health.failing_since.map(|since| since.to_rfc3339()),
                HealthState::Disabled => endpoint.disabled.as_ref().map(|disabled| disabled.at.to_rfc3339()),
                HealthState::Healthy => None,
            },
            format: endpoint.format.as_str(),
            spark: charts::sparkline(hours, now),
            last: health.last_success.max(health.last_failure).map(when),
        })
        .collect();
    let banners = endpoints
        .iter()
        .filter_map(|(endpoint, _, health)| {
            let disabled = endpoint.disabled.as_ref().filter(|disabled| disabled.reason != DISABLED_BY_HAND)?;
            let since = health.failing_since.unwrap_or(disabled.at);
            Some(Banner { id: endpoint.id.to_string(), url: endpoint.url.clone(), since: when(since) })
        })
        .collect();
    let can_manage = may(&session, Capability::ManageEndpoints);
    let frame = Frame::of(&state, &session, "webhooks");
    page(&WebhooksPage { frame, tenant_name: session.tenant.to_string(), endpoints: rows, can_manage, banners })
}

/// Whether the session may do what `capability` allows.
pub(super) fn may(session: &PortalSession, capability: Capability) -> bool {
    session.capabilities.contains(&capability)
}

/// A page saying the session may not do that.
pub(super) fn not_allowed() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "error",
        "Not allowed",
        "Your access to this portal does not include this; ask your platform for it.",
    )
}

/// A form's fields, as a browser sends them (`application/x-www-form-urlencoded`), repeated names kept.
pub(super) struct Fields(pub(super) Vec<(String, String)>);

impl Fields {
    pub(super) fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).map(|(name, value)| (name.into_owned(), value.into_owned())).collect())
    }

    /// The first value of `name`, or "".
    pub(super) fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(field, _)| field == name).map_or("", |(_, value)| value.as_str())
    }

    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(field, _)| field == name).map(|(_, value)| value.clone()).collect()
    }
}

/// A time as pages show it.
pub(super) fn when(time: hookline_core::time::Timestamp) -> String {
    time.to_rfc3339()
}

/// JSON laid out for reading (the examples are JSON the API wrote; anything else is shown as it is).
pub(super) fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| json.to_owned())
}

struct TopicView {
    name: String,
    description: String,
    deprecated: bool,
    example: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/catalogue.html")]
struct CataloguePage {
    frame: Frame,
    topics: Vec<TopicView>,
}

/// `GET /portal/catalogue`: each topic's description and example.
async fn catalogue(State(state): State<AppState>, Signed(session): Signed) -> Response {
    let topics = match state.service.list_topics().await {
        Ok(topics) => topics,
        Err(error) => return failed(&error),
    };
    let topics = topics
        .into_iter()
        .map(|topic| TopicView {
            name: topic.name.to_string(),
            description: topic.description,
            deprecated: topic.deprecated,
            example: topic.example.map(|example| pretty(&example)),
        })
        .collect();
    let frame = Frame::of(&state, &session, "catalogue");
    page(&CataloguePage { frame, topics })
}

/// A state-changing form of a signed-in session, read and checked: from the portal's own origin, with the
/// session's CSRF token. Handlers that take it act only on what passed.
pub(super) struct Posted {
    pub(super) session: PortalSession,
    pub(super) fields: Fields,
}

impl axum::extract::FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Posted, Response> {
        let (mut parts, body) = request.into_parts();
        let Signed(session) = Signed::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, state.settings.max_payload_bytes).await.map_err(|_| form_refused())?;
        let fields = Fields::parse(&bytes);
        if !form_allowed(&parts.headers, state, &session, fields.get("csrf")) {
            return Err(form_refused());
        }
        Ok(Posted { session, fields })
    }
}

/// The theme a page is shown in: the session's link's, over the operator's.
fn theme_of(state: &AppState, session: Option<&PortalSession>) -> Theme {
    let own = session
        .and_then(|session| session.theme.as_deref())
        .and_then(|theme| serde_json::from_str::<Theme>(theme).ok())
        .unwrap_or_default();
    own.over(&state.settings.portal_theme)
}

/// `GET /portal/theme.css`: the accent colour and the light or dark palette of the session's theme (or the
/// operator's when signed out), as a stylesheet: the pages carry no inline style.
async fn theme_css(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_cookie(&headers) {
        Some(token) => state.service.portal_session(token).await.ok().flatten(),
        None => None,
    };
    let theme = theme_of(&state, session.as_ref());
    let accent = theme.accent.as_deref().and_then(rgb).unwrap_or([0x24, 0x56, 0xc8]);
    let dark = theme.mode.as_deref() == Some("dark");
    let page = if dark { [0x18, 0x18, 0x1b] } else { [0xff, 0xff, 0xff] };
    // Links in the accent, moved towards black or white until they read on the page; text on an accent-coloured
    // button in black or white, whichever reads better.
    let mut css = format!(
        ":root {{ --accent: {}; --link: {}; --on-accent: {}; }}\n",
        css_colour(accent),
        css_colour(readable_on(accent, page, 4.5)),
        css_colour(text_on(accent)),
    );
    if dark {
        css.push_str(
            ":root { --text: #ececec; --muted: #a3a3a3; --line: #3f3f46; --bg: #18181b; --ok: #4ade80; \
             --warn: #fdba74; --off: #a1a1aa; --bad: #f87171; --notice: #14532d; --notice-line: #166534; \
             --caution: #431407; --caution-line: #9a3412; --code: #27272a; color-scheme: dark; }\n",
        );
    }
    ([(CONTENT_TYPE, "text/css")], css).into_response()
}
