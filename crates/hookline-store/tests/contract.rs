//! The store's contract: what every public method of `Store` promises, driven directly (no HTTP, no binary), on
//! the embedded SQLite store always and on PostgreSQL whenever the suite has one (`HOOKLINE_TEST_POSTGRES_URL`).
//! Each test runs on a fresh database of each backend, so a behaviour that differs between them fails here first.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::attempt::{Cause, Origin};
use hookline_core::body::Format;
use hookline_core::clock::{Clock, ManualClock};
use hookline_core::id::{DeliveryId, EndpointId, TenantId};
use hookline_core::retry::RetrySchedule;
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use hookline_store::{
    Attempt, AttemptError, AttemptOutcome, Busy, Claim, ClaimedDelivery, Database, DeliveryFilter, DeliveryStatus,
    EndpointPatch, EventFilter, HandoffSink, NewEndpoint, NewEvent, NextStep, PageRequest, PreviousSecret, Purged,
    Retried, Rotation, Route, Store, StoreError, StoreOptions, TopicPatch,
};

// ----- fixtures -----

/// A dispatcher that takes nothing handed over and records when it is told of due work.
#[derive(Default)]
struct WorkRecorder {
    work: tokio::sync::Notify,
}

impl HandoffSink for WorkRecorder {
    fn lease_length(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn reserve(&self, endpoints: &mut dyn Iterator<Item = &EndpointId>) -> Vec<bool> {
        endpoints.map(|_| false).collect()
    }
    fn unreserve(&self, _: &mut dyn Iterator<Item = &EndpointId>) {}
    fn hand(&self, _: Vec<ClaimedDelivery>) {}
    fn work_due(&self) {
        self.work.notify_one();
    }
}

/// One backend's store on a fresh database, and what to clean up after it.
struct Fixture {
    backend: &'static str,
    store: Store,
    _dir: TempDir,
    _database: Option<hookline_store::scratch::ScratchDatabase>,
}

/// A store per backend this run has, each on a fresh database.
async fn fixtures(label: &str) -> Vec<Fixture> {
    fixtures_with(label, &StoreOptions::default()).await
}

/// A store per backend this run has, each on a fresh database, opened with `options`.
/// The fixture of `backend` (if that backend is at hand) on a manual clock set at `start`, opened with `options`
/// otherwise, and the clock.
async fn on_clock(
    label: &str,
    backend: &str,
    start: Timestamp,
    options: StoreOptions,
) -> Option<(Arc<ManualClock>, Fixture)> {
    let clock = Arc::new(ManualClock::new(start));
    let options = StoreOptions { clock: Arc::clone(&clock) as Arc<dyn Clock>, ..options };
    let fixture =
        fixtures_with(&format!("{label}-{backend}"), &options).await.into_iter().find(|f| f.backend == backend)?;
    eprintln!("backend: {backend}");
    Some((clock, fixture))
}

async fn fixtures_with(label: &str, options: &StoreOptions) -> Vec<Fixture> {
    let mut fixtures = Vec::new();
    let dir = TempDir::new(&format!("{label}-sqlite"));
    let store = Store::open(&Database::Sqlite { data_dir: dir.0.clone() }, &dir.0, options)
        .await
        .expect("the embedded store opens");
    fixtures.push(Fixture { backend: "sqlite", store, _dir: dir, _database: None });
    if let Some(admin_url) = postgres_admin_url() {
        let database = hookline_store::scratch::ScratchDatabase::create(&admin_url, "contract")
            .await
            .unwrap_or_else(|error| panic!("cannot make a database on PostgreSQL at {admin_url}: {error}"));
        let dir = TempDir::new(&format!("{label}-postgres"));
        let store = Store::open(&Database::Postgres { url: database.url.clone() }, &dir.0, options)
            .await
            .expect("the PostgreSQL store opens");
        fixtures.push(Fixture { backend: "postgres", store, _dir: dir, _database: Some(database) });
    }
    fixtures
}

/// The PostgreSQL server of this run, if it has one. `HOOKLINE_TEST_REQUIRE_POSTGRES=1` (as in CI) makes its
/// absence an error rather than a skip.
fn postgres_admin_url() -> Option<String> {
    match std::env::var("HOOKLINE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("HOOKLINE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("HOOKLINE_TEST_REQUIRE_POSTGRES=1 but HOOKLINE_TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!("note: the contract runs on SQLite only; set HOOKLINE_TEST_POSTGRES_URL to run it on PostgreSQL");
            None
        }
    }
}

/// Runs a test body once per backend, saying which one is running (nextest shows it when the test fails).
macro_rules! contract {
    ($(#[$attribute:meta])* async fn $name:ident($store:ident) $body:block) => {
        $(#[$attribute])*
        #[tokio::test]
        async fn $name() {
            for fixture in fixtures(stringify!($name)).await {
                eprintln!("backend: {}", fixture.backend);
                let $store: &Store = &fixture.store;
                $body
            }
        }
    };
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("hookline-contract-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- helpers -----

fn tenant(id: &str) -> TenantId {
    id.parse().unwrap()
}

fn topic(name: &str) -> TopicName {
    name.parse().unwrap()
}

fn page(limit: u32) -> PageRequest {
    PageRequest { cursor: None, limit }
}

fn new_endpoint(tenant_id: &str, url: &str, topics: &[&str]) -> NewEndpoint {
    NewEndpoint {
        tenant: tenant(tenant_id),
        url: url.to_owned(),
        topics: topics.iter().map(|name| topic(name)).collect(),
        description: String::new(),
        enabled: true,
        format: Format::Envelope,
        signing: vec![Scheme::Standard],
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        retry_schedule: None,
        headers: Vec::new(),
    }
}

async fn make_tenant(store: &Store, id: &str) {
    store.create_tenant(tenant(id), format!("{id} Inc")).await.unwrap();
}

async fn make_endpoint(store: &Store, tenant_id: &str, topics: &[&str]) -> EndpointId {
    let url = format!("https://{tenant_id}.example.com/hooks");
    store.create_endpoint(new_endpoint(tenant_id, &url, topics)).await.unwrap().expect("the tenant exists").id
}

fn event(tenant_id: &str, topic_name: &str, data: &str) -> NewEvent {
    NewEvent {
        tenant: tenant(tenant_id),
        topic: topic(topic_name),
        data: data.to_owned(),
        meta: None,
        idempotency_key: None,
        route: Route::default(),
    }
}

/// A claim at `now` with a 30 s lease, taking up to 100 deliveries, 10 per endpoint.
fn claim_at(now: Timestamp) -> Claim {
    Claim {
        now,
        lease_until: now.saturating_add(Duration::from_secs(30)),
        limit: 100,
        per_endpoint: 10,
        busy: Busy::default(),
    }
}

/// Busy endpoints, for a claim or `next_due` to skip.
fn busy_endpoints(endpoints: &[&EndpointId]) -> Busy {
    Busy { endpoints: endpoints.iter().map(|&endpoint| endpoint.clone()).collect(), tenants: Vec::new() }
}

fn later(seconds: u64) -> Timestamp {
    Timestamp::now().saturating_add(Duration::from_secs(seconds))
}

fn outcome(delivery: &ClaimedDelivery, status: Option<u16>, next: NextStep) -> AttemptOutcome {
    let failed = !status.is_some_and(|status| (200..300).contains(&status));
    AttemptOutcome {
        delivery: delivery.id.clone(),
        endpoint: Arc::clone(&delivery.endpoint),
        event: delivery.event_id.clone(),
        topic: delivery.topic.clone(),
        lease: delivery.lease,
        attempt: Attempt {
            number: delivery.attempts + 1,
            started: Timestamp::now(),
            duration_ms: 12,
            url: delivery.endpoint.url.clone(),
            request_headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            response_status: status,
            response_headers: vec![("x-answer".to_owned(), "yes".to_owned())],
            response_headers_omitted: 3,
            response_body: status.map(|_| "thanks".to_owned()),
            error: failed.then_some(if status.is_some() { AttemptError::Status } else { AttemptError::Connect }),
            error_detail: failed.then(|| "the endpoint answered 500".to_owned()),
            cause: delivery.cause,
        },
        next,
    }
}

async fn status_of(store: &Store, tenant_id: &str, delivery: &DeliveryId) -> DeliveryStatus {
    store.get_delivery(tenant(tenant_id), delivery.clone()).await.unwrap().expect("the delivery exists").0.status
}

// ----- tenants, keys, topics -----

contract! {
    async fn tenants_are_created_listed_by_page_and_deleted(store) {
        for id in ["acme", "globex", "initech"] {
            make_tenant(store, id).await;
        }
        let duplicate = store.create_tenant(tenant("acme"), "again".into()).await.unwrap_err();
        assert!(matches!(duplicate, StoreError::Conflict { what: "tenant", .. }), "{duplicate:?}");
        let first = store.list_tenants(page(2)).await.unwrap();
        assert_eq!(first.data.len(), 2);
        let cursor = first.next_cursor.clone().expect("a second page");
        let second = store.list_tenants(PageRequest { cursor: Some(cursor), limit: 2 }).await.unwrap();
        assert_eq!(second.data.len(), 1);
        assert_eq!(second.next_cursor, None);
        let mut ids: Vec<String> = first.data.iter().chain(&second.data).map(|tenant| tenant.id.to_string()).collect();
        ids.sort();
        assert_eq!(ids, ["acme", "globex", "initech"]);
        assert_eq!(store.get_tenant(tenant("globex")).await.unwrap().unwrap().name, "globex Inc");
        assert!(store.delete_tenant(tenant("globex")).await.unwrap());
        assert!(!store.delete_tenant(tenant("globex")).await.unwrap());
        assert!(store.get_tenant(tenant("globex")).await.unwrap().is_none());
    }
}

contract! {
    async fn the_first_admin_key_hash_stays_and_tenant_keys_find_their_tenant(store) {
        assert_eq!(store.settle_admin_key_hash("first".into()).await.unwrap(), "first");
        assert_eq!(store.settle_admin_key_hash("second".into()).await.unwrap(), "first");
        make_tenant(store, "acme").await;
        let key = store.insert_api_key(tenant("acme"), "hash-a".into(), "ci".into()).await.unwrap().unwrap();
        assert_eq!((key.tenant.as_str(), key.name.as_str()), ("acme", "ci"));
        assert!(store.insert_api_key(tenant("nobody"), "hash-b".into(), "x".into()).await.unwrap().is_none());
        assert_eq!(store.tenant_for_key_hash("hash-a".into()).await.unwrap(), Some(tenant("acme")));
        assert_eq!(store.tenant_for_key_hash("hash-b".into()).await.unwrap(), None);
        // A deleted tenant's keys go with it.
        store.delete_tenant(tenant("acme")).await.unwrap();
        assert_eq!(store.tenant_for_key_hash("hash-a".into()).await.unwrap(), None);
    }
}

contract! {
    async fn the_catalogue_is_seeded_and_topics_are_added_and_deprecated(store) {
        let topics = store.list_topics().await.unwrap();
        assert_eq!(topics.len(), 15, "Heron's eleven and the four operational topics: {topics:?}");
        assert!(topics.iter().any(|topic| topic.name.as_str() == "end_user.transactions_updated" && topic.deprecated));
        let created = store.create_topic(topic("pdf.archived"), "a PDF was archived".into(), None, None).await.unwrap();
        assert!(!created.deprecated && created.example.is_none());
        let duplicate = store.create_topic(topic("pdf.archived"), String::new(), None, None).await.unwrap_err();
        assert!(matches!(duplicate, StoreError::Conflict { .. }), "{duplicate:?}");
        let change = TopicPatch { description: Some("archived".into()), deprecated: Some(true), ..TopicPatch::default() };
        let updated = store.update_topic(topic("pdf.archived"), change).await.unwrap().unwrap();
        assert_eq!((updated.description.as_str(), updated.deprecated), ("archived", true));
        let kept = store.update_topic(topic("pdf.archived"), TopicPatch::default()).await.unwrap().unwrap();
        assert_eq!((kept.description.as_str(), kept.deprecated), ("archived", true));
        let deprecate = TopicPatch { deprecated: Some(true), ..TopicPatch::default() };
        assert!(store.update_topic(topic("pdf.unknown"), deprecate).await.unwrap().is_none());
        // Examples: a topic's own, set and removed; a seeded topic falls back to its built-in one.
        let example = |json: &str| TopicPatch { example: Some(Some(json.to_owned())), ..TopicPatch::default() };
        let set = store.update_topic(topic("pdf.archived"), example(r#"{"pdf_id":"p_1"}"#)).await.unwrap().unwrap();
        assert_eq!(set.example.as_deref(), Some(r#"{"pdf_id":"p_1"}"#));
        assert_eq!(store.get_topic(topic("pdf.archived")).await.unwrap().unwrap().example, set.example);
        let seeded = store.get_topic(topic("pdf.processed")).await.unwrap().unwrap();
        assert_eq!(seeded.example.as_deref(), hookline_core::topic::seed_example("pdf.processed"));
        let own = store.update_topic(topic("pdf.processed"), example(r#"{"mine":true}"#)).await.unwrap().unwrap();
        assert_eq!(own.example.as_deref(), Some(r#"{"mine":true}"#));
        let removed = TopicPatch { example: Some(None), ..TopicPatch::default() };
        let back = store.update_topic(topic("pdf.processed"), removed.clone()).await.unwrap().unwrap();
        assert_eq!(back.example.as_deref(), hookline_core::topic::seed_example("pdf.processed"));
        assert!(store.update_topic(topic("pdf.archived"), removed).await.unwrap().unwrap().example.is_none());
        let made = store
            .create_topic(topic("quote.ready"), String::new(), Some("[1,2]".into()), Some("a quote".into()))
            .await
            .unwrap();
        assert_eq!((made.example.as_deref(), made.template.as_deref()), (Some("[1,2]"), Some("a quote")));
        // A template is kept, changed and removed like the example.
        let template = |text: Option<&str>| TopicPatch { template: Some(text.map(str::to_owned)), ..TopicPatch::default() };
        let changed = store.update_topic(topic("quote.ready"), template(Some("quote ready"))).await.unwrap().unwrap();
        assert_eq!((changed.template.as_deref(), changed.example.as_deref()), (Some("quote ready"), Some("[1,2]")));
        let cleared = store.update_topic(topic("quote.ready"), template(None)).await.unwrap().unwrap();
        assert_eq!(cleared.template, None);
        assert!(store.get_topic(topic("quote.unknown")).await.unwrap().is_none());
        assert_eq!(store.list_topics().await.unwrap().len(), 17);
    }
}

// ----- endpoints -----

contract! {
    async fn endpoints_keep_what_they_are_given_and_belong_to_one_tenant(store) {
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        assert!(store.create_endpoint(new_endpoint("nobody", "https://x.example/", &["pdf.processed"])).await.unwrap().is_none());
        let mut wanted = new_endpoint("acme", "https://acme.example.com/a", &["pdf.processed", "end_user.processed"]);
        wanted.description = "main".into();
        wanted.format = Format::Data;
        wanted.signing = vec![Scheme::Heron, Scheme::Standard];
        wanted.retry_schedule = Some(RetrySchedule::exact(vec![Duration::from_secs(180), Duration::from_secs(180)]).unwrap());
        let created = store.create_endpoint(wanted.clone()).await.unwrap().unwrap();
        let read = store.get_endpoint(tenant("acme"), created.id.clone()).await.unwrap().unwrap();
        assert_eq!(read.url, wanted.url);
        assert_eq!(read.topics, wanted.topics);
        assert_eq!((read.description.as_str(), read.enabled, read.format), ("main", true, Format::Data));
        assert_eq!(read.signing, wanted.signing);
        assert_eq!(read.secret, wanted.secret);
        assert_eq!(read.retry_schedule, wanted.retry_schedule);
        // Another tenant sees nothing of it, by any route.
        assert!(store.get_endpoint(tenant("globex"), created.id.clone()).await.unwrap().is_none());
        assert!(store.list_endpoints(tenant("globex"), page(10)).await.unwrap().data.is_empty());
        let patch = EndpointPatch { enabled: Some(false), ..EndpointPatch::default() };
        assert!(store.update_endpoint(tenant("globex"), created.id.clone(), patch).await.unwrap().is_none());
        assert!(!store.delete_endpoint(tenant("globex"), created.id.clone()).await.unwrap());
        assert!(store.get_endpoint(tenant("acme"), created.id.clone()).await.unwrap().unwrap().enabled);
    }
}

contract! {
    async fn a_rotation_keeps_the_replaced_secret_until_its_grace_ends(store) {
        make_tenant(store, "acme").await;
        let id = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let first = store.get_endpoint(tenant("acme"), id.clone()).await.unwrap().unwrap().secret;
        let until = Timestamp::from_unix_millis(4_000_000_000_000);
        let rotate = |secret: &str, grace_until: Option<Timestamp>| EndpointPatch {
            rotation: Some(Rotation { secret: secret.to_owned(), grace_until }),
            ..EndpointPatch::default()
        };
        let second = "whsec_c2Vjb25kIHNlY3JldCBzZWNvbmQ=";
        store.update_endpoint(tenant("acme"), id.clone(), rotate(second, Some(until))).await.unwrap().unwrap();
        let read = store.get_endpoint(tenant("acme"), id.clone()).await.unwrap().unwrap();
        assert_eq!(read.secret, second);
        assert_eq!(read.previous_secret, Some(PreviousSecret { secret: first.clone(), until }));
        assert!(read.previous_secret_at(until).is_none() && read.previous_secret_at(Timestamp::from_unix_millis(0)).is_some());
        // Another rotation forgets the first secret; another tenant rotates nothing.
        let third = "whsec_dGhpcmQgc2VjcmV0IHRoaXJk";
        assert!(store.update_endpoint(tenant("globex"), id.clone(), rotate("whsec_AAAA", None)).await.unwrap().is_none());
        store.update_endpoint(tenant("acme"), id.clone(), rotate(third, Some(until))).await.unwrap().unwrap();
        let read = store.get_endpoint(tenant("acme"), id.clone()).await.unwrap().unwrap();
        assert_eq!((read.secret.as_str(), read.previous_secret.map(|previous| previous.secret)), (third, Some(second.to_owned())));
        // A secret set by a patch, or a rotation without grace, leaves no previous one.
        let patch = EndpointPatch { secret: Some(first.clone()), ..EndpointPatch::default() };
        let patched = store.update_endpoint(tenant("acme"), id.clone(), patch).await.unwrap().unwrap();
        assert_eq!((patched.secret.as_str(), &patched.previous_secret), (first.as_str(), &None));
        store.update_endpoint(tenant("acme"), id.clone(), rotate(second, Some(until))).await.unwrap().unwrap();
        store.update_endpoint(tenant("acme"), id.clone(), rotate(third, None)).await.unwrap().unwrap();
        let read = store.get_endpoint(tenant("acme"), id.clone()).await.unwrap().unwrap();
        assert_eq!((read.secret.as_str(), read.previous_secret), (third, None));
        // A previous secret whose grace is over is forgotten; one still signing is kept.
        let over = make_endpoint(store, "acme", &["pdf.processed"]).await;
        store.update_endpoint(tenant("acme"), over.clone(), rotate(second, Some(Timestamp::from_unix_millis(1_000)))).await.unwrap().unwrap();
        store.update_endpoint(tenant("acme"), id.clone(), rotate(second, Some(until))).await.unwrap().unwrap();
        assert_eq!(store.forget_expired_secrets(100).await.unwrap(), 1);
        assert_eq!(store.forget_expired_secrets(100).await.unwrap(), 0);
        assert_eq!(store.get_endpoint(tenant("acme"), over).await.unwrap().unwrap().previous_secret, None);
        let kept = store.get_endpoint(tenant("acme"), id.clone()).await.unwrap().unwrap().previous_secret;
        assert_eq!(kept.map(|previous| previous.until), Some(until));
    }
}

contract! {
    async fn subscriptions_to_unknown_or_deprecated_topics_are_refused(store) {
        make_tenant(store, "acme").await;
        let unknown = store.create_endpoint(new_endpoint("acme", "https://a.example/", &["pdf.nope"])).await.unwrap_err();
        assert!(matches!(&unknown, StoreError::UnknownTopic { name } if name == "pdf.nope"), "{unknown:?}");
        let deprecated = store
            .create_endpoint(new_endpoint("acme", "https://a.example/", &["end_user.transactions_updated"]))
            .await
            .unwrap_err();
        assert!(matches!(deprecated, StoreError::DeprecatedTopic { .. }), "{deprecated:?}");
        // A subscription made before the deprecation stays, and may be kept through a patch.
        let id = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let deprecate = TopicPatch { deprecated: Some(true), ..TopicPatch::default() };
        store.update_topic(topic("pdf.processed"), deprecate).await.unwrap();
        let keep = EndpointPatch { topics: Some(vec![topic("pdf.processed")]), ..EndpointPatch::default() };
        assert!(store.update_endpoint(tenant("acme"), id.clone(), keep).await.unwrap().is_some());
        let add = EndpointPatch {
            topics: Some(vec![topic("pdf.processed"), topic("end_user.transactions_updated")]),
            ..EndpointPatch::default()
        };
        let refused = store.update_endpoint(tenant("acme"), id, add).await.unwrap_err();
        assert!(matches!(refused, StoreError::DeprecatedTopic { .. }), "{refused:?}");
    }
}

contract! {
    async fn a_patch_changes_only_what_it_names(store) {
        make_tenant(store, "acme").await;
        let mut wanted = new_endpoint("acme", "https://acme.example.com/a", &["pdf.processed"]);
        wanted.retry_schedule = Some(RetrySchedule::exact(vec![Duration::from_secs(60)]).unwrap());
        let created = store.create_endpoint(wanted).await.unwrap().unwrap();
        let patch = EndpointPatch {
            url: Some("https://acme.example.com/b".into()),
            description: Some("moved".into()),
            retry_schedule: Some(None),
            ..EndpointPatch::default()
        };
        let patched = store.update_endpoint(tenant("acme"), created.id.clone(), patch).await.unwrap().unwrap();
        assert_eq!((patched.url.as_str(), patched.description.as_str()), ("https://acme.example.com/b", "moved"));
        assert_eq!(patched.retry_schedule, None);
        assert_eq!((patched.topics, patched.signing, patched.secret), (created.topics, created.signing, created.secret));
        assert!(patched.updated >= created.updated);
        let read = store.get_endpoint(tenant("acme"), created.id).await.unwrap().unwrap();
        assert_eq!(read.url, "https://acme.example.com/b");
    }
}

contract! {
    async fn endpoints_are_listed_by_page(store) {
        make_tenant(store, "acme").await;
        let mut made = Vec::new();
        for _ in 0..5 {
            made.push(make_endpoint(store, "acme", &["pdf.processed"]).await);
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let listed = store.list_endpoints(tenant("acme"), PageRequest { cursor, limit: 2 }).await.unwrap();
            assert!(listed.data.len() <= 2);
            seen.extend(listed.data.into_iter().map(|endpoint| endpoint.id));
            match listed.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        seen.sort_by(|left, right| left.as_str().cmp(right.as_str()));
        made.sort_by(|left, right| left.as_str().cmp(right.as_str()));
        assert_eq!(seen, made);
    }
}

// ----- publish and fan-out -----

contract! {
    async fn a_publish_fans_out_to_the_enabled_endpoints_subscribed_to_its_topic(store) {
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        let subscribed = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let both = make_endpoint(store, "acme", &["end_user.processed", "pdf.processed"]).await;
        make_endpoint(store, "acme", &["end_user.processed"]).await;
        let disabled = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let off = EndpointPatch { enabled: Some(false), ..EndpointPatch::default() };
        store.update_endpoint(tenant("acme"), disabled, off).await.unwrap();
        make_endpoint(store, "globex", &["pdf.processed"]).await;

        let published = store.publish(event("acme", "pdf.processed", r#"{"pdf_id":"pdf_1"}"#)).await.unwrap().unwrap();
        assert_eq!((published.deliveries, published.replayed), (2, false));
        let filter = DeliveryFilter { event: Some(published.event.id.clone()), ..DeliveryFilter::default() };
        let deliveries = store.list_deliveries(tenant("acme"), filter, page(10)).await.unwrap().data;
        let mut endpoints: Vec<&str> = deliveries.iter().map(|delivery| delivery.endpoint.as_str()).collect();
        endpoints.sort();
        let mut wanted = vec![subscribed.as_str(), both.as_str()];
        wanted.sort();
        assert_eq!(endpoints, wanted);
        assert!(deliveries.iter().all(|delivery| delivery.status == DeliveryStatus::Pending && delivery.attempts == 0));
        assert!(store.list_deliveries(tenant("globex"), DeliveryFilter::default(), page(10)).await.unwrap().data.is_empty());

        let stored = store.get_event(tenant("acme"), published.event.id.clone()).await.unwrap().unwrap();
        assert_eq!((stored.data.as_str(), stored.meta.as_deref()), (r#"{"pdf_id":"pdf_1"}"#, None));
        assert!(store.get_event(tenant("globex"), published.event.id).await.unwrap().is_none());
        assert!(store.publish(event("nobody", "pdf.processed", "{}")).await.unwrap().is_none());
        // An event nobody subscribed to is stored all the same.
        let lonely = store.publish(event("globex", "end_user.processed", "{}")).await.unwrap().unwrap();
        assert_eq!(lonely.deliveries, 0);
    }
}

contract! {
    async fn an_idempotency_key_makes_one_event_per_tenant(store) {
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        make_endpoint(store, "acme", &["pdf.processed"]).await;
        let keyed = |tenant_id: &str, data: &str| NewEvent { idempotency_key: Some("job-42".into()), ..event(tenant_id, "pdf.processed", data) };
        let first = store.publish(keyed("acme", r#"{"n":1}"#)).await.unwrap().unwrap();
        let again = store.publish(keyed("acme", r#"{"n":2}"#)).await.unwrap().unwrap();
        assert!(again.replayed);
        assert_eq!(again.event.id, first.event.id);
        assert_eq!(again.event.data, r#"{"n":1}"#);
        let deliveries = store.list_deliveries(tenant("acme"), DeliveryFilter::default(), page(10)).await.unwrap().data;
        assert_eq!(deliveries.len(), 1, "the replay made no delivery");
        let other = store.publish(keyed("globex", r#"{"n":3}"#)).await.unwrap().unwrap();
        assert!(!other.replayed);
        assert_ne!(other.event.id, first.event.id);
    }
}

contract! {
    async fn events_are_listed_newest_first_and_filtered_by_topic(store) {
        make_tenant(store, "acme").await;
        let mut ids = Vec::new();
        for (number, topic_name) in ["pdf.processed", "end_user.processed", "pdf.processed"].iter().enumerate() {
            let published = store.publish(event("acme", topic_name, &format!(r#"{{"n":{number}}}"#))).await.unwrap().unwrap();
            ids.push(published.event.id);
        }
        // Ids are ordered by time (to the millisecond, events of one millisecond in any order): newest first is
        // the ids in descending order.
        let listed = store.list_events(tenant("acme"), EventFilter::default(), page(10)).await.unwrap().data;
        let listed: Vec<_> = listed.into_iter().map(|event| event.id).collect();
        let mut newest_first = ids.clone();
        newest_first.sort_by(|left, right| right.as_str().cmp(left.as_str()));
        assert_eq!(listed, newest_first);
        let mut pdf_ids = [ids[0].clone(), ids[2].clone()];
        pdf_ids.sort_by(|left, right| right.as_str().cmp(left.as_str()));
        let filter = EventFilter { topic: Some(topic("pdf.processed")), ..EventFilter::default() };
        let pdfs = store.list_events(tenant("acme"), filter, page(1)).await.unwrap();
        assert_eq!(pdfs.data.iter().map(|event| event.id.clone()).collect::<Vec<_>>(), [pdf_ids[0].clone()]);
        let next = PageRequest { cursor: pdfs.next_cursor, limit: 10 };
        let filter = EventFilter { topic: Some(topic("pdf.processed")), ..EventFilter::default() };
        let rest = store.list_events(tenant("acme"), filter, next).await.unwrap();
        assert_eq!(rest.data.iter().map(|event| event.id.clone()).collect::<Vec<_>>(), [pdf_ids[1].clone()]);
        assert!(store.list_events(tenant("globex"), EventFilter::default(), page(10)).await.unwrap().data.is_empty());
    }
}

// ----- the queue -----

contract! {
    async fn a_claim_leases_due_deliveries_until_the_lease_runs_out(store) {
        make_tenant(store, "acme").await;
        let endpoint = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let published = store.publish(event("acme", "pdf.processed", r#"{"n":1}"#)).await.unwrap().unwrap();
        let claimed = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let delivery = &claimed[0];
        assert_eq!((&delivery.event_id, &delivery.endpoint.id, delivery.attempts), (&published.event.id, &endpoint, 0));
        assert_eq!(&*delivery.data, r#"{"n":1}"#);
        // Leased: nothing to claim until the lease ends, then the same delivery under a new lease.
        assert!(store.claim_due(claim_at(later(2))).await.unwrap().is_empty());
        let expired = store.claim_due(claim_at(later(40))).await.unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, delivery.id);
        assert_ne!(expired[0].lease, delivery.lease);
        // The first lease is lost: its outcome is not recorded; the current lease's is.
        let stale = outcome(delivery, Some(200), NextStep::Done(DeliveryStatus::Succeeded));
        assert_eq!(store.record_outcomes(Arc::from([stale])).await.unwrap(), 0);
        assert_eq!(status_of(store, "acme", &delivery.id).await, DeliveryStatus::Pending);
        let current = outcome(&expired[0], Some(200), NextStep::Done(DeliveryStatus::Succeeded));
        assert_eq!(store.record_outcomes(Arc::from([current.clone()])).await.unwrap(), 1);
        // Recording the same outcome twice records it once.
        assert_eq!(store.record_outcomes(Arc::from([current])).await.unwrap(), 0);
        let (stored, attempts) = store.get_delivery(tenant("acme"), delivery.id.clone()).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts, stored.last_status), (DeliveryStatus::Succeeded, 1, Some(200)));
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].response_headers, [("x-answer".to_owned(), "yes".to_owned())]);
        assert_eq!((attempts[0].response_headers_omitted, attempts[0].response_body.as_deref()), (3, Some("thanks")));
        assert!(store.claim_due(claim_at(later(100))).await.unwrap().is_empty(), "a settled delivery is never claimed");
    }
}

contract! {
    async fn a_retry_waits_for_its_time_and_a_release_makes_it_due_again(store) {
        make_tenant(store, "acme").await;
        make_endpoint(store, "acme", &["pdf.processed"]).await;
        store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        let claimed = store.claim_due(claim_at(Timestamp::now())).await.unwrap();
        let retry_at = later(600);
        let failed = outcome(&claimed[0], Some(500), NextStep::RetryAt(retry_at));
        assert_eq!(store.record_outcomes(Arc::from([failed])).await.unwrap(), 1);
        let (stored, attempts) = store.get_delivery(tenant("acme"), claimed[0].id.clone()).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.next_attempt, stored.last_status), (DeliveryStatus::Pending, Some(retry_at), Some(500)));
        assert_eq!(attempts[0].error, Some(AttemptError::Status));
        // A publish's delivery; its attempts are the schedule's until someone sends it again by hand.
        assert_eq!((stored.origin, claimed[0].cause, attempts[0].cause), (Origin::Publish, Cause::Schedule, Cause::Schedule));
        assert_eq!(store.next_due(Busy::default()).await.unwrap(), Some(retry_at));
        assert!(store.claim_due(claim_at(later(300))).await.unwrap().is_empty());
        let again = store.claim_due(claim_at(later(601))).await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 1));
        // A retry by hand while an attempt holds the lease leaves it to that attempt.
        let retried = store.retry_delivery(tenant("acme"), again[0].id.clone()).await.unwrap().unwrap();
        let Retried::InFlight(retried) = retried else { panic!("retried: {retried:?}") };
        assert_eq!((retried.status, retried.attempts), (DeliveryStatus::Pending, 1));
        // Given back untouched, it is due at once, with its attempts as they were.
        store.release(vec![(again[0].id.clone(), again[0].lease)]).await.unwrap();
        let released = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!((released.len(), released[0].attempts), (1, 1));
        let done = outcome(&released[0], None, NextStep::Done(DeliveryStatus::Failed));
        store.record_outcomes(Arc::from([done])).await.unwrap();
        assert_eq!(status_of(store, "acme", &released[0].id).await, DeliveryStatus::Failed);
        assert_eq!(store.next_due(Busy::default()).await.unwrap(), None);
        // A manual retry makes a failed delivery due now.
        let retried = store.retry_delivery(tenant("acme"), released[0].id.clone()).await.unwrap().unwrap();
        let Retried::Queued(retried) = retried else { panic!("retried: {retried:?}") };
        assert_eq!(retried.status, DeliveryStatus::Pending);
        let by_hand = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!((by_hand.len(), by_hand[0].cause), (1, Cause::Retry));
        assert!(store.retry_delivery(tenant("globex"), released[0].id.clone()).await.unwrap().is_none());
        // The retry's attempt says so; the schedule makes the ones after it.
        let failed_again = outcome(&by_hand[0], Some(500), NextStep::RetryAt(later(700)));
        store.record_outcomes(Arc::from([failed_again])).await.unwrap();
        let (_, attempts) = store.get_delivery(tenant("acme"), by_hand[0].id.clone()).await.unwrap().unwrap();
        let causes: Vec<Cause> = attempts.iter().map(|attempt| attempt.cause).collect();
        assert_eq!(causes, [Cause::Schedule, Cause::Schedule, Cause::Retry]);
        let next = store.claim_due(claim_at(later(701))).await.unwrap();
        assert_eq!((next.len(), next[0].cause), (1, Cause::Schedule));
    }
}

contract! {
    async fn an_event_routed_to_one_endpoint_makes_one_delivery_marked_with_its_origin(store) {
        make_tenant(store, "acme").await;
        // Subscribed too, and passed over.
        let _first = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let second = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let unsubscribed = make_endpoint(store, "acme", &["pdf.failed"]).await;
        let test = |only: &EndpointId| NewEvent {
            route: Route { only: Some(only.clone()), origin: Origin::Test },
            ..event("acme", "pdf.processed", r#"{"pdf_id":"p_1"}"#)
        };
        let published = store.publish(test(&second)).await.unwrap().unwrap();
        assert_eq!(published.deliveries, 1);
        let claimed = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!((&claimed[0].endpoint.id, claimed[0].cause), (&second, Cause::Test));
        let (delivery, _) = store.get_delivery(tenant("acme"), claimed[0].id.clone()).await.unwrap().unwrap();
        assert_eq!(delivery.origin, Origin::Test);
        store.record_outcomes(Arc::from([outcome(&claimed[0], Some(200), NextStep::Done(DeliveryStatus::Succeeded))])).await.unwrap();
        let (_, attempts) = store.get_delivery(tenant("acme"), claimed[0].id.clone()).await.unwrap().unwrap();
        assert_eq!(attempts[0].cause, Cause::Test);
        // An endpoint not subscribed to the topic gets nothing, nor does any other.
        assert_eq!(store.publish(test(&unsubscribed)).await.unwrap().unwrap().deliveries, 0);
        // A publish goes to every subscribed endpoint, as before.
        assert_eq!(store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap().deliveries, 2);
    }
}

contract! {
    async fn an_event_sent_again_makes_new_deliveries_for_its_current_subscribers(store) {
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        let first = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let second = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let elsewhere = make_endpoint(store, "acme", &["pdf.failed"]).await;
        let published = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        let event_id = published.event.id.clone();
        let firsts = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!(firsts.len(), 2);
        let done = |claimed: &ClaimedDelivery| outcome(claimed, Some(200), NextStep::Done(DeliveryStatus::Succeeded));
        store.record_outcomes(firsts.iter().map(done).collect()).await.unwrap();

        let again = store.resend_event(tenant("acme"), event_id.clone(), None).await.unwrap().unwrap();
        let mut endpoints: Vec<&EndpointId> = again.iter().map(|delivery| &delivery.endpoint).collect();
        endpoints.sort();
        let mut expected = vec![&first, &second];
        expected.sort();
        assert_eq!(endpoints, expected);
        assert!(again.iter().all(|delivery| delivery.origin == Origin::Resend && delivery.status == DeliveryStatus::Pending));
        assert!(again.iter().all(|delivery| firsts.iter().all(|claimed| claimed.id != delivery.id)), "new deliveries");
        let claimed = store.claim_due(claim_at(later(2))).await.unwrap();
        assert_eq!(claimed.len(), 2);
        assert!(claimed.iter().all(|delivery| delivery.cause == Cause::Resend && delivery.event_id == event_id));

        let one = store.resend_event(tenant("acme"), event_id.clone(), Some(vec![second.clone()])).await.unwrap().unwrap();
        assert_eq!((one.len(), &one[0].endpoint), (1, &second));
        let none = store.resend_event(tenant("acme"), event_id.clone(), Some(vec![elsewhere])).await.unwrap().unwrap();
        assert!(none.is_empty(), "an endpoint not subscribed to the topic gets nothing");
        assert!(store.resend_event(tenant("globex"), event_id.clone(), None).await.unwrap().is_none());
        assert!(store.resend_event(tenant("acme"), hookline_core::id::EventId::generate(), None).await.unwrap().is_none());
        let all = DeliveryFilter { event: Some(event_id), ..DeliveryFilter::default() };
        let listed = store.list_deliveries(tenant("acme"), all, PageRequest { cursor: None, limit: 100 }).await.unwrap();
        assert_eq!(listed.data.len(), 5);
    }
}

contract! {
    async fn a_recovery_queues_an_endpoints_failed_deliveries_of_a_window_in_batches(store) {
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        let endpoint = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let before = Timestamp::now().saturating_sub(Duration::from_secs(60));
        for number in 0..5 {
            store.publish(event("acme", "pdf.processed", &format!(r#"{{"n":{number}}}"#))).await.unwrap().unwrap();
        }
        let claimed = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!(claimed.len(), 5);
        let mut outcomes: Vec<AttemptOutcome> = claimed[..4]
            .iter()
            .map(|delivery| outcome(delivery, Some(500), NextStep::Done(DeliveryStatus::Failed)))
            .collect();
        outcomes.push(outcome(&claimed[4], Some(500), NextStep::RetryAt(later(3600))));
        store.record_outcomes(outcomes.into()).await.unwrap();

        let until = later(1);
        let recovery = store.start_recovery(tenant("acme"), endpoint.clone(), before, until).await.unwrap().unwrap();
        assert_eq!((recovery.total, recovery.queued, recovery.finished), (4, 0, None), "only the failed ones");
        assert_eq!(store.recover_batch(3).await.unwrap(), 3);
        let halfway = store.get_recovery(tenant("acme"), recovery.id.clone()).await.unwrap().unwrap();
        assert_eq!((halfway.queued, halfway.finished.is_none()), (3, true));
        assert_eq!(store.recover_batch(3).await.unwrap(), 1);
        let done = store.get_recovery(tenant("acme"), recovery.id.clone()).await.unwrap().unwrap();
        assert_eq!((done.total, done.queued, done.finished.is_some()), (4, 4, true));
        assert_eq!(store.recover_batch(3).await.unwrap(), 0, "nothing left to recover");
        // Due now, marked as recovered; the one still pending keeps its own time and is not sent twice.
        let again = store.claim_due(claim_at(later(2))).await.unwrap();
        assert_eq!(again.len(), 4);
        assert!(again.iter().all(|delivery| delivery.cause == Cause::Recover && delivery.id != claimed[4].id));

        // A window with nothing in it finishes at once; other tenants and unknown endpoints are not found.
        let empty = store.start_recovery(tenant("acme"), endpoint.clone(), before, before).await.unwrap().unwrap();
        assert_eq!((empty.total, empty.finished.is_some()), (0, true));
        assert!(store.start_recovery(tenant("globex"), endpoint.clone(), before, until).await.unwrap().is_none());
        assert!(store.start_recovery(tenant("acme"), EndpointId::generate(), before, until).await.unwrap().is_none());
        assert!(store.get_recovery(tenant("globex"), recovery.id.clone()).await.unwrap().is_none());
    }
}

contract! {
    async fn a_claim_takes_at_most_the_cap_of_an_endpoint_and_skips_busy_and_disabled_ones(store) {
        make_tenant(store, "acme").await;
        let first = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let second = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let third = make_endpoint(store, "acme", &["pdf.processed"]).await;
        for number in 0..5 {
            store.publish(event("acme", "pdf.processed", &format!(r#"{{"n":{number}}}"#))).await.unwrap().unwrap();
        }
        // Deliveries made before an endpoint was disabled wait for it to be enabled again.
        let off = EndpointPatch { enabled: Some(false), ..EndpointPatch::default() };
        store.update_endpoint(tenant("acme"), third.clone(), off).await.unwrap();
        let now = later(1);
        let claim = Claim { per_endpoint: 2, busy: busy_endpoints(&[&second]), ..claim_at(now) };
        let claimed = store.claim_due(claim).await.unwrap();
        assert_eq!(claimed.len(), 2, "two of the first endpoint's, none of the busy one's");
        assert!(claimed.iter().all(|delivery| delivery.endpoint.id == first));
        let next = Claim { limit: 3, ..claim_at(now) };
        let claimed = store.claim_due(next).await.unwrap();
        assert_eq!(claimed.len(), 3);
        assert!(claimed.iter().all(|delivery| delivery.endpoint.id != third), "a disabled endpoint's are held");
        let nothing_else = store.next_due(busy_endpoints(&[&first, &second])).await.unwrap();
        assert!(nothing_else.is_none(), "nothing due outside the busy ones: {nothing_else:?}");
        // Re-enabling the third endpoint makes its deliveries claimable.
        let on = EndpointPatch { enabled: Some(true), ..EndpointPatch::default() };
        store.update_endpoint(tenant("acme"), third.clone(), on).await.unwrap();
        let claim = Claim { busy: busy_endpoints(&[&first, &second]), ..claim_at(later(2)) };
        let claimed = store.claim_due(claim).await.unwrap();
        assert_eq!(claimed.len(), 5);
        assert!(claimed.iter().all(|delivery| delivery.endpoint.id == third));
    }
}

contract! {
    async fn a_claim_skips_every_endpoint_of_a_busy_tenant(store) {
        make_tenant(store, "slow").await;
        make_tenant(store, "quick").await;
        let slow = [make_endpoint(store, "slow", &["pdf.processed"]).await, make_endpoint(store, "slow", &["pdf.processed"]).await];
        let quick = make_endpoint(store, "quick", &["pdf.processed"]).await;
        for _ in 0..3 {
            store.publish(event("slow", "pdf.processed", "{}")).await.unwrap().unwrap();
        }
        store.publish(event("quick", "pdf.processed", "{}")).await.unwrap().unwrap();
        let busy = Busy { endpoints: Vec::new(), tenants: vec![tenant("slow")] };
        let claim = Claim { busy: busy.clone(), ..claim_at(later(1)) };
        let lease_until = claim.lease_until;
        let claimed = store.claim_due(claim).await.unwrap();
        assert_eq!(claimed.len(), 1, "only the quick tenant's delivery");
        assert_eq!(claimed[0].endpoint.id, quick);
        // The busy tenant's are due now; the next due time is that of the quick tenant's lease.
        assert_eq!(store.next_due(busy).await.unwrap(), Some(lease_until));
        let claimed = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!(claimed.len(), 6, "once the tenant has room, both its endpoints are claimed from");
        assert!(claimed.iter().all(|delivery| slow.contains(&delivery.endpoint.id)));
    }
}

contract! {
    async fn deleting_an_endpoint_stops_it_at_once_then_cancels_its_pending_deliveries_and_keeps_the_log(store) {
        make_tenant(store, "acme").await;
        let endpoint = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let other = make_endpoint(store, "acme", &["pdf.processed"]).await;
        for _ in 0..3 {
            store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        }
        assert!(store.delete_endpoint(tenant("acme"), endpoint.clone()).await.unwrap());
        assert!(!store.delete_endpoint(tenant("acme"), endpoint.clone()).await.unwrap(), "deleted once");
        assert!(store.get_endpoint(tenant("acme"), endpoint.clone()).await.unwrap().is_none());
        assert_eq!(store.list_endpoints(tenant("acme"), page(10)).await.unwrap().data.len(), 1);
        let patch = EndpointPatch { enabled: Some(true), ..EndpointPatch::default() };
        assert!(store.update_endpoint(tenant("acme"), endpoint.clone(), patch).await.unwrap().is_none());
        // Nothing more is sent to it, nor made for it.
        let claimed = store.claim_due(claim_at(later(1))).await.unwrap();
        assert!(claimed.iter().all(|delivery| delivery.endpoint.id == other), "{claimed:?}");
        assert_eq!(store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap().deliveries, 1);
        // Its pending deliveries are cancelled in batches, then its row goes.
        let mut steps = Vec::new();
        loop {
            let removed = store.remove_deleted(2).await.unwrap();
            if removed.is_nothing() {
                break;
            }
            steps.push((removed.cancelled, removed.endpoints));
        }
        assert_eq!(steps, [(2, 0), (1, 0), (0, 1)]);
        let filter = DeliveryFilter { endpoint: Some(endpoint.clone()), ..DeliveryFilter::default() };
        let log = store.list_deliveries(tenant("acme"), filter, page(10)).await.unwrap().data;
        assert_eq!(log.len(), 3, "the delivery log stays");
        assert!(log.iter().all(|delivery| delivery.status == DeliveryStatus::Cancelled));
        // A cancelled delivery of a deleted endpoint is not sent again by hand.
        let retried = store.retry_delivery(tenant("acme"), log[0].id.clone()).await.unwrap().unwrap();
        let Retried::EndpointDeleted(retried) = retried else { panic!("retried: {retried:?}") };
        assert_eq!(retried.status, DeliveryStatus::Cancelled);
    }
}

contract! {
    async fn deliveries_are_filtered_by_endpoint_event_and_status_within_their_tenant(store) {
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        let first = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let second = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let one = store.publish(event("acme", "pdf.processed", r#"{"n":1}"#)).await.unwrap().unwrap();
        store.publish(event("acme", "pdf.processed", r#"{"n":2}"#)).await.unwrap().unwrap();
        let claim = Claim { busy: busy_endpoints(&[&second]), ..claim_at(later(1)) };
        for delivery in store.claim_due(claim).await.unwrap() {
            let done = outcome(&delivery, Some(200), NextStep::Done(DeliveryStatus::Succeeded));
            store.record_outcomes(Arc::from([done])).await.unwrap();
        }
        let list = |filter: DeliveryFilter| store.list_deliveries(tenant("acme"), filter, page(10));
        assert_eq!(list(DeliveryFilter::default()).await.unwrap().data.len(), 4);
        let by_endpoint = list(DeliveryFilter { endpoint: Some(first.clone()), ..DeliveryFilter::default() }).await.unwrap();
        assert!(by_endpoint.data.len() == 2 && by_endpoint.data.iter().all(|delivery| delivery.endpoint == first));
        let by_event = list(DeliveryFilter { event: Some(one.event.id.clone()), ..DeliveryFilter::default() }).await.unwrap();
        assert!(by_event.data.len() == 2 && by_event.data.iter().all(|delivery| delivery.event == one.event.id));
        let succeeded = list(DeliveryFilter { status: Some(DeliveryStatus::Succeeded), ..DeliveryFilter::default() }).await.unwrap();
        assert!(succeeded.data.len() == 2 && succeeded.data.iter().all(|delivery| delivery.endpoint == first));
        let pending_second = list(DeliveryFilter {
            endpoint: Some(second.clone()),
            status: Some(DeliveryStatus::Pending),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
        assert_eq!(pending_second.data.len(), 2);
        // Paged, every delivery comes once.
        let first_page = list_page(store, 3, None).await;
        let second_page = list_page(store, 3, first_page.1.clone()).await;
        assert_eq!((first_page.0.len(), second_page.0.len(), second_page.1), (3, 1, None));
        // Another tenant's filters find nothing of acme's.
        let foreign = DeliveryFilter { endpoint: Some(first), ..DeliveryFilter::default() };
        assert!(store.list_deliveries(tenant("globex"), foreign, page(10)).await.unwrap().data.is_empty());
        let delivery = by_event.data[0].id.clone();
        assert!(store.get_delivery(tenant("globex"), delivery).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn tables_churned_by_deliveries_are_vacuumed_once_their_dead_rows_pass_a_share() {
    for fixture in fixtures("vacuum").await {
        eprintln!("backend: {}", fixture.backend);
        let store = &fixture.store;
        if !store.keeps_dead_rows() {
            assert!(store.vacuum_churned().await.unwrap().is_empty(), "SQLite reuses freed pages itself");
            continue;
        }
        make_tenant(store, "acme").await;
        make_endpoint(store, "acme", &["pdf.processed"]).await;
        // Each delivery claimed and then finished: two updates, two dead rows.
        for _ in 0..700 {
            store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        }
        // Inserts leave nothing dead: below the share.
        store.flush_statistics().await.unwrap();
        // On PostgreSQL each partition of the tables is looked at on its own.
        let is_deliveries = |table: &str| table.starts_with("deliveries_p");
        let untouched = store.vacuum_churned().await.unwrap();
        assert!(!untouched.iter().any(|done| is_deliveries(&done.table)), "{untouched:?}");
        let claimed = store.claim_due(Claim { limit: 1_000, per_endpoint: 1_000, ..claim_at(later(1)) }).await.unwrap();
        assert_eq!(claimed.len(), 700);
        let done: Vec<_> = claimed
            .iter()
            .map(|delivery| outcome(delivery, Some(200), NextStep::Done(DeliveryStatus::Succeeded)))
            .collect();
        store.record_outcomes(Arc::from(done)).await.unwrap();
        // Past the share now: 1,400 dead rows against 700 live.
        store.flush_statistics().await.unwrap();
        let vacuumed = store.vacuum_churned().await.unwrap();
        let Some(done) = vacuumed.iter().find(|done| is_deliveries(&done.table)) else {
            panic!("deliveries were not vacuumed: {vacuumed:?}");
        };
        assert!(done.dead.is_some_and(|dead| dead >= 1_000), "{done:?}");
        // 2,100 rows changed (700 inserted, each updated twice) against 700 live: past half of them.
        assert!(done.analyzed, "{done:?}");
        // Clean and analyzed now: the next look leaves the table alone, and its rows are all there.
        let again = store.vacuum_churned().await.unwrap();
        assert!(!again.iter().any(|done| is_deliveries(&done.table)), "{again:?}");
        let succeeded = DeliveryFilter { status: Some(DeliveryStatus::Succeeded), ..DeliveryFilter::default() };
        assert_eq!(list_all(store, "acme", &succeeded, 1_000).await.0.len(), 700);
    }
}

/// Publishes `count` events of acme's, then claims their deliveries with the claim `claim` makes then (it must take
/// all of them) and records each attempt as answered `answer`, followed by `next`.
async fn settle(store: &Store, count: usize, claim: impl Fn() -> Claim, answer: u16, next: NextStep) {
    for _ in 0..count {
        store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
    }
    let claimed = store.claim_due(claim()).await.unwrap();
    assert_eq!(claimed.len(), count);
    let outcomes: Vec<_> = claimed.iter().map(|delivery| outcome(delivery, Some(answer), next.clone())).collect();
    store.record_outcomes(Arc::from(outcomes)).await.unwrap();
}

/// The filter of one status, of a tenant's deliveries or of one endpoint's.
fn of(status: DeliveryStatus, endpoint: Option<&EndpointId>) -> DeliveryFilter {
    DeliveryFilter { status: Some(status), endpoint: endpoint.cloned(), ..DeliveryFilter::default() }
}

/// Every delivery of a list, page after page: the ids and how many pages it took.
async fn list_all(store: &Store, tenant_id: &str, filter: &DeliveryFilter, limit: u32) -> (Vec<DeliveryId>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None);
    loop {
        let page =
            store.list_deliveries(tenant(tenant_id), filter.clone(), PageRequest { cursor, limit }).await.unwrap();
        pages += 1;
        assert!(page.data.len() <= limit as usize);
        ids.extend(page.data.into_iter().map(|delivery| delivery.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (ids, pages),
        }
        assert!(pages < 100, "the list never ends");
    }
}

#[tokio::test]
async fn lists_of_the_pending_and_the_succeeded_read_a_bounded_number_of_deliveries_for_a_page() {
    // Four deliveries a page at most, so that a few make a backlog.
    let options = StoreOptions { list_scan: 4, ..StoreOptions::default() };
    for fixture in fixtures_with("scan", &options).await {
        eprintln!("backend: {}", fixture.backend);
        let store = &fixture.store;
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        let acme = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let globex = make_endpoint(store, "globex", &["pdf.processed"]).await;
        // Another tenant's backlog: more pending than a page reads.
        for _ in 0..6 {
            store.publish(event("globex", "pdf.processed", "{}")).await.unwrap().unwrap();
        }
        let claim = || Claim { busy: busy_endpoints(&[&globex]), ..claim_at(later(1)) };
        // acme: two deliveries waiting for a retry, and eight newer ones that succeeded.
        settle(store, 2, &claim, 500, NextStep::RetryAt(later(3600))).await;
        settle(store, 8, claim, 200, NextStep::Done(DeliveryStatus::Succeeded)).await;
        // What each list must hold: the whole log, newest first, filtered here.
        let expected = |status: DeliveryStatus| async move {
            let log = store.list_deliveries(tenant("acme"), DeliveryFilter::default(), page(100)).await.unwrap();
            log.data.into_iter().filter(|delivery| delivery.status == status).map(|delivery| delivery.id).collect()
        };
        let retrying: Vec<DeliveryId> = expected(DeliveryStatus::Pending).await;
        assert_eq!(retrying.len(), 2);
        // Few of acme's wait, older than all the rest: one full page, though the store holds more pending than a
        // page reads (globex's are not read).
        for endpoint in [None, Some(&acme)] {
            let pending = store.list_deliveries(tenant("acme"), of(DeliveryStatus::Pending, endpoint), page(10));
            let pending = pending.await.unwrap();
            let ids: Vec<DeliveryId> = pending.data.into_iter().map(|delivery| delivery.id).collect();
            assert_eq!((ids, pending.next_cursor), (retrying.clone(), None), "{endpoint:?}");
        }
        // A backlog of acme's own: seven pending, walked four at a time.
        for _ in 0..5 {
            store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        }
        let pending: Vec<DeliveryId> = expected(DeliveryStatus::Pending).await;
        let succeeded: Vec<DeliveryId> = expected(DeliveryStatus::Succeeded).await;
        assert_eq!((pending.len(), succeeded.len()), (7, 8));
        for endpoint in [None, Some(&acme)] {
            let first = store.list_deliveries(tenant("acme"), of(DeliveryStatus::Pending, endpoint), page(10));
            let first = first.await.unwrap();
            assert_eq!(first.data.len(), 4, "the four newest deliveries walked are all pending");
            assert_eq!(first.next_cursor.as_deref(), Some(pending[3].as_str()));
            // Every pending delivery once, newest first, whatever the page's limit.
            for limit in [1, 3, 10] {
                let (listed, _) = list_all(store, "acme", &of(DeliveryStatus::Pending, endpoint), limit).await;
                assert_eq!(listed, pending, "limit {limit}, {endpoint:?}");
                let (listed, pages) = list_all(store, "acme", &of(DeliveryStatus::Succeeded, endpoint), limit).await;
                assert_eq!(listed, succeeded, "limit {limit}, {endpoint:?}");
                assert!(pages >= succeeded.len().div_ceil(limit as usize), "{pages}");
            }
            // The newest four are pending: the first page of the succeeded is empty, with a cursor to go on.
            let none_yet = store.list_deliveries(tenant("acme"), of(DeliveryStatus::Succeeded, endpoint), page(10));
            let none_yet = none_yet.await.unwrap();
            assert!(none_yet.data.is_empty() && none_yet.next_cursor.is_some(), "{none_yet:?}");
        }
        // globex's backlog is globex's alone.
        let (globex_pending, _) = list_all(store, "globex", &of(DeliveryStatus::Pending, None), 10).await;
        assert_eq!(globex_pending.len(), 6);
        let foreign = list_all(store, "globex", &of(DeliveryStatus::Pending, Some(&acme)), 10).await.0;
        assert!(foreign.is_empty(), "{foreign:?}");
    }
}

async fn list_page(store: &Store, limit: u32, cursor: Option<String>) -> (Vec<DeliveryId>, Option<String>) {
    let listed =
        store.list_deliveries(tenant("acme"), DeliveryFilter::default(), PageRequest { cursor, limit }).await.unwrap();
    (listed.data.into_iter().map(|delivery| delivery.id).collect(), listed.next_cursor)
}

contract! {
    async fn deleting_a_tenant_hides_it_at_once_and_removes_what_it_owns_in_batches(store) {
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        make_endpoint(store, "acme", &["pdf.processed"]).await;
        make_endpoint(store, "globex", &["pdf.processed"]).await;
        for _ in 0..5 {
            store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        }
        let key = store.insert_api_key(tenant("acme"), "hash-of-acme".into(), "ci".into()).await.unwrap();
        assert!(key.is_some());
        let kept = store.publish(event("globex", "pdf.processed", "{}")).await.unwrap().unwrap();
        assert!(store.delete_tenant(tenant("acme")).await.unwrap());
        assert!(!store.delete_tenant(tenant("acme")).await.unwrap(), "deleted once");
        // Gone at once: from reads, from its keys, from publishing, and from the dispatcher's queue.
        assert!(store.get_tenant(tenant("acme")).await.unwrap().is_none());
        assert_eq!(store.list_tenants(page(10)).await.unwrap().data.len(), 1);
        assert_eq!(store.tenant_for_key_hash("hash-of-acme".into()).await.unwrap(), None);
        assert!(store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().is_none());
        let claimed = store.claim_due(claim_at(later(1))).await.unwrap();
        assert_eq!(claimed.len(), 1, "only globex's delivery is left to send");
        assert_eq!(claimed[0].event_id, kept.event.id);
        let again = store.create_tenant(tenant("acme"), "Acme again".into()).await.unwrap_err();
        assert!(matches!(again, StoreError::BeingDeleted { what: "tenant", .. }), "{again:?}");
        // Removed in the background, two events a step, then the rest in one.
        let mut steps = Vec::new();
        loop {
            let removed = store.remove_deleted(2).await.unwrap();
            if removed.is_nothing() {
                break;
            }
            steps.push(removed);
        }
        let events: Vec<u64> = steps.iter().map(|removed| removed.events).collect();
        assert_eq!(events, [2, 2, 1, 0]);
        assert_eq!(steps.iter().map(|removed| removed.deliveries).sum::<u64>(), 5);
        assert_eq!(steps.last().map(|removed| (removed.endpoints, removed.tenants)), Some((1, 1)));
        // The id is free again, and nothing of the old tenant comes back with it.
        make_tenant(store, "acme").await;
        assert!(store.list_events(tenant("acme"), EventFilter::default(), page(10)).await.unwrap().data.is_empty());
        assert!(store.list_endpoints(tenant("acme"), page(10)).await.unwrap().data.is_empty());
        assert_eq!(store.list_endpoints(tenant("globex"), page(10)).await.unwrap().data.len(), 1);
        assert_eq!(store.list_events(tenant("globex"), EventFilter::default(), page(10)).await.unwrap().data.len(), 1);
    }
}

#[tokio::test]
async fn the_store_answers_pings_on_every_backend() {
    for fixture in fixtures("ping").await {
        fixture.store.ping().await.unwrap_or_else(|error| panic!("{}: {error}", fixture.backend));
    }
}

#[tokio::test]
async fn a_stored_retry_schedule_that_is_no_longer_valid_is_an_error_not_the_default() {
    let fixture = fixtures("corrupt-schedule").await.into_iter().next().expect("the SQLite fixture comes first");
    let store = &fixture.store;
    make_tenant(store, "acme").await;
    let id = make_endpoint(store, "acme", &["pdf.processed"]).await;
    // 31 delays: more than a schedule may hold (as a hand edit, or an older release with other limits, could leave).
    let too_long = vec!["1000"; 31].join(",");
    let database = rusqlite::Connection::open(fixture._dir.0.join("hookline.db")).unwrap();
    database.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = database
        .execute("UPDATE endpoints SET retry_schedule = ?1 WHERE id = ?2", rusqlite::params![too_long, id.as_str()])
        .unwrap();
    assert_eq!(changed, 1);
    let error = store.get_endpoint(tenant("acme"), id).await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { detail } if detail.contains("retry schedule")), "{error:?}");
}

#[tokio::test]
async fn a_dropped_postgres_store_closes_its_connections_and_its_listener_at_once() {
    let Some(fixture) = fixtures("dropped").await.into_iter().find(|fixture| fixture.backend == "postgres") else {
        eprintln!("note: this test needs PostgreSQL (HOOKLINE_TEST_POSTGRES_URL)");
        return;
    };
    let database = fixture._database.as_ref().expect("a PostgreSQL fixture has its database");
    let (admin_url, name) =
        (postgres_admin_url().expect("a PostgreSQL fixture has its server"), database.name().to_owned());
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let count = async |sql: &str| -> i64 { client.query_one(sql, &[&name]).await.unwrap().get(0) };
    let listening = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'";
    let connected = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1";
    // A dispatcher attached to the store hears of work that any node makes due, through the listener.
    let dispatcher = Arc::new(WorkRecorder::default());
    fixture.store.attach_dispatcher(Arc::clone(&dispatcher) as Arc<dyn HandoffSink>);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(listening).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the store never listened for work");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(listening).await, 1);
    let (notifier, notifier_connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(notifier_connection);
    notifier.batch_execute("NOTIFY hookline_work").await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), dispatcher.work.notified()).await;
    assert!(heard.is_ok(), "the attached dispatcher never heard of the work another connection announced");
    drop(notifier);
    let Fixture { store, _dir: _kept_dir, .. } = fixture;
    drop(store);
    // The listener used to look every 5 s whether its store was gone; now the drop itself ends it. The server
    // tells of closed sessions only when asked, so this asks until none is left (a wait for that state, with a
    // deadline below the old 5 s, not a sleep to prove an absence).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let left = count(connected).await;
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} connections still open 2 s after the store was dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_time_the_store_writes_comes_from_its_clock() {
    // 2030-01-01T00:00:00Z: far from the machine's own time, so a "now" read elsewhere would show.
    let start = Timestamp::from_unix_millis(1_893_456_000_000);
    for backend in ["sqlite", "postgres"] {
        let Some((clock, fixture)) = on_clock("clock", backend, start, StoreOptions::default()).await else {
            continue;
        };
        let store = &fixture.store;
        let created = store.create_tenant(tenant("acme"), "Acme".into()).await.unwrap();
        assert_eq!(created.created, start);
        let endpoint = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let published = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        assert_eq!(published.event.created, start);
        // Ids are ordered by the same clock (in 2030): an id made by the system's clock sorts before it.
        let system_now = hookline_core::id::EventId::generate();
        assert!(published.event.id.as_str() > system_now.as_str(), "{} {}", published.event.id, system_now);
        let at = |seconds: u64| start.saturating_add(Duration::from_secs(seconds));
        // Due at the clock's time of the publish, not the machine's.
        let claim =
            |now: Timestamp| Claim { now, lease_until: now.saturating_add(Duration::from_secs(30)), ..claim_at(now) };
        let claimed = store.claim_due(claim(at(0))).await.unwrap();
        assert_eq!(claimed.len(), 1);
        // A release makes the delivery due at the clock's now.
        clock.advance(Duration::from_secs(60));
        store.release(vec![(claimed[0].id.clone(), claimed[0].lease)]).await.unwrap();
        assert_eq!(store.next_due(Busy::default()).await.unwrap(), Some(at(60)));
        assert!(store.claim_due(claim(at(59))).await.unwrap().is_empty());
        let again = store.claim_due(claim(at(60))).await.unwrap();
        assert_eq!(again.len(), 1);
        clock.advance(Duration::from_secs(60));
        let done = outcome(&again[0], Some(200), NextStep::Done(DeliveryStatus::Succeeded));
        store.record_outcomes(Arc::from([done])).await.unwrap();
        let (delivery, _) = store.get_delivery(tenant("acme"), again[0].id.clone()).await.unwrap().unwrap();
        assert_eq!(delivery.updated, at(120));
        clock.advance(Duration::from_secs(60));
        let retried = store.retry_delivery(tenant("acme"), again[0].id.clone()).await.unwrap().unwrap();
        assert_eq!(retried.delivery().next_attempt, Some(at(180)));
        let patch = EndpointPatch { description: Some("later".into()), ..EndpointPatch::default() };
        let patched = store.update_endpoint(tenant("acme"), endpoint, patch).await.unwrap().unwrap();
        assert_eq!(patched.updated, at(180));
    }
}

contract! {
    async fn a_job_lease_has_one_holder_until_it_runs_out_or_is_given_back(store) {
        let start = Timestamp::from_unix_millis(1_900_000_000_000);
        let at = |seconds: u64| start.saturating_add(Duration::from_secs(seconds));
        let lead = |holder: &str, now: Timestamp, until: Timestamp| store.lead_job("retention", holder.to_owned(), now, until);
        assert!(lead("node_a", at(0), at(60)).await.unwrap(), "a free job is taken");
        assert!(!lead("node_b", at(30), at(90)).await.unwrap(), "another node waits while the lease holds");
        assert!(lead("node_a", at(30), at(90)).await.unwrap(), "the holder renews it");
        assert!(!lead("node_b", at(89), at(150)).await.unwrap(), "the renewal counts");
        assert!(lead("node_b", at(90), at(150)).await.unwrap(), "a lease that ran out is taken over");
        assert!(!lead("node_a", at(100), at(160)).await.unwrap(), "and the old holder has lost it");
        store.release_job("retention", "node_a".to_owned()).await.unwrap();
        assert!(!lead("node_a", at(101), at(160)).await.unwrap(), "only the holder gives a lease back");
        store.release_job("retention", "node_b".to_owned()).await.unwrap();
        assert!(lead("node_a", at(101), at(160)).await.unwrap(), "a lease given back is free at once");
        assert!(lead("node_b", at(101), at(160)).await.is_ok_and(|led| !led), "leases are per job…");
        assert!(store.lead_job("health", "node_b".to_owned(), at(101), at(160)).await.unwrap(), "…not per node");
    }
}

contract! {
    async fn writes_that_make_deliveries_due_tell_the_attached_dispatcher(store) {
        let dispatcher = Arc::new(WorkRecorder::default());
        store.attach_dispatcher(Arc::clone(&dispatcher) as Arc<dyn HandoffSink>);
        make_tenant(store, "acme").await;
        let endpoint = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let told = async || tokio::time::timeout(Duration::from_secs(10), dispatcher.work.notified()).await.is_ok();
        // This dispatcher takes nothing handed over, so the delivery is written due.
        let published = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        assert_eq!(published.due, 1);
        assert!(told().await, "a publish that wrote due deliveries");
        let delivery = store.list_deliveries(tenant("acme"), DeliveryFilter::default(), page(10)).await.unwrap();
        store.retry_delivery(tenant("acme"), delivery.data[0].id.clone()).await.unwrap().unwrap();
        assert!(told().await, "a retry by hand");
        let disable = EndpointPatch { enabled: Some(false), ..EndpointPatch::default() };
        store.update_endpoint(tenant("acme"), endpoint.clone(), disable).await.unwrap().unwrap();
        let enable = EndpointPatch { enabled: Some(true), ..EndpointPatch::default() };
        store.update_endpoint(tenant("acme"), endpoint, enable).await.unwrap().unwrap();
        assert!(told().await, "an endpoint enabled again");
    }
}

#[tokio::test]
async fn retention_purges_finished_events_oldest_first_in_batches_and_keeps_pending_ones() {
    let start = Timestamp::from_unix_millis(1_893_456_000_000);
    for backend in ["sqlite", "postgres"] {
        // On PostgreSQL the old events share a partition of ten seconds, which their pending delivery keeps: what
        // it holds is purged row by row.
        let options = StoreOptions { partition_width: Duration::from_secs(10), ..StoreOptions::default() };
        let Some((clock, fixture)) = on_clock("retention", backend, start, options).await else {
            continue;
        };
        let store = &fixture.store;
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        make_endpoint(store, "acme", &["pdf.processed"]).await;
        // An old event whose delivery succeeded, and an old one whose delivery is still pending.
        let done = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        let claimed = store.claim_due(claim_at(clock.now())).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let recorded: Arc<[AttemptOutcome]> =
            vec![outcome(&claimed[0], Some(200), NextStep::Done(DeliveryStatus::Succeeded))].into();
        assert_eq!(store.record_outcomes(recorded).await.unwrap(), 1);
        clock.advance(Duration::from_secs(1));
        let pending = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        // Three old events of another tenant, without deliveries, a second apart.
        let mut unsent = Vec::new();
        for _ in 0..3 {
            clock.advance(Duration::from_secs(1));
            unsent.push(store.publish(event("globex", "pdf.processed", "{}")).await.unwrap().unwrap().event.id);
        }
        // And one newer than the horizon.
        clock.advance(Duration::from_secs(60));
        let recent = store.publish(event("globex", "pdf.processed", "{}")).await.unwrap().unwrap();
        let horizon = start.saturating_add(Duration::from_secs(30));
        assert_eq!(store.purged_before().await.unwrap(), None, "nothing purged yet");

        let first = store.purge_before(horizon, 2).await.unwrap();
        assert_eq!(first, Purged { events: 2, deliveries: 1, attempts: 1 }, "the oldest two, with what they had");
        assert!(store.get_event(tenant("acme"), done.event.id.clone()).await.unwrap().is_none());
        assert!(store.get_event(tenant("globex"), unsent[0].clone()).await.unwrap().is_none());
        assert!(store.get_event(tenant("globex"), unsent[1].clone()).await.unwrap().is_some(), "oldest first");
        let deliveries = store.list_deliveries(tenant("acme"), DeliveryFilter::default(), page(10)).await.unwrap();
        assert_eq!(deliveries.data.len(), 1, "the succeeded delivery went with its event");
        assert_eq!(deliveries.data[0].event, pending.event.id);
        let purged_before = store.purged_before().await.unwrap().expect("a purge leaves its mark");
        assert!(unsent[0].time() < purged_before && purged_before <= unsent[1].time());

        let second = store.purge_before(horizon, 2).await.unwrap();
        assert_eq!(second, Purged { events: 2, deliveries: 0, attempts: 0 });
        let third = store.purge_before(horizon, 2).await.unwrap();
        assert_eq!(third, Purged::default(), "the pending event is kept, and the recent one is too new");
        let kept = store.get_event(tenant("acme"), pending.event.id.clone()).await.unwrap();
        assert!(kept.is_some(), "an event with a pending delivery is never purged");
        assert!(store.get_event(tenant("globex"), recent.event.id.clone()).await.unwrap().is_some());
        assert!(store.purged_before().await.unwrap().unwrap() > unsent[2].time());
        assert!(store.purged_before().await.unwrap().unwrap() <= recent.event.id.time());
    }
}

/// Whether the fixture's PostgreSQL database has this table; `None` on SQLite.
async fn has_table(fixture: &Fixture, table: &str) -> Option<bool> {
    let database = fixture._database.as_ref()?;
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await.unwrap();
    Some(row.get(0))
}

/// Detaches a partition of deliveries as a purge does, marking it first, and stops there, as a crash would.
async fn detach_as_a_purge_does(client: &tokio_postgres::Client, partition: &str) {
    const DETACHED_MARK: &str = "hookline: detached by retention, to be dropped";
    client.batch_execute(&format!("COMMENT ON TABLE {partition} IS '{DETACHED_MARK}'")).await.unwrap();
    client.batch_execute(&format!("ALTER TABLE deliveries DETACH PARTITION {partition}")).await.unwrap();
}

/// The name of the PostgreSQL partition of `table` whose span ends at `upper`.
fn partition_ending(table: &str, upper: Timestamp) -> String {
    format!("{table}_p{}", &DeliveryId::first_at(upper).as_str()[4..14])
}

#[tokio::test]
async fn retention_drops_whole_spans_once_past_the_horizon_and_keeps_one_with_a_pending_delivery() {
    let start = Timestamp::from_unix_millis(1_893_456_000_000);
    let at = |seconds: u64| start.saturating_add(Duration::from_secs(seconds));
    for backend in ["sqlite", "postgres"] {
        let options = StoreOptions { partition_width: Duration::from_secs(10), ..StoreOptions::default() };
        let Some((clock, fixture)) = on_clock("spans", backend, start, options).await else {
            continue;
        };
        let store = &fixture.store;
        make_tenant(store, "acme").await;
        make_endpoint(store, "acme", &["pdf.processed"]).await;
        let deliver = |answer: NextStep| {
            let (store, clock) = (store, Arc::clone(&clock));
            async move {
                let claimed = store.claim_due(claim_at(clock.now())).await.unwrap();
                assert_eq!(claimed.len(), 1);
                let outcomes: Arc<[AttemptOutcome]> = vec![outcome(&claimed[0], Some(200), answer)].into();
                assert_eq!(store.record_outcomes(outcomes).await.unwrap(), 1);
            }
        };
        let keyed = NewEvent { idempotency_key: Some("job-7".into()), ..event("acme", "pdf.processed", "{}") };
        // The first ten seconds: an event delivered, with an idempotency key.
        let first = store.publish(keyed.clone()).await.unwrap().unwrap();
        deliver(NextStep::Done(DeliveryStatus::Succeeded)).await;
        // The next ten: one whose delivery is still pending (its retry is a day away).
        clock.set(at(12));
        let pending = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        deliver(NextStep::RetryAt(at(86_400))).await;
        // The next: one delivered.
        clock.set(at(25));
        let third = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        deliver(NextStep::Done(DeliveryStatus::Succeeded)).await;
        // The key is one across spans: publishing it again later replays the first event.
        let again = store.publish(keyed.clone()).await.unwrap().unwrap();
        assert!(again.replayed && again.event.id == first.event.id, "{again:?}");
        // Two days on, past every span made ahead: a publish makes its own.
        clock.set(at(2 * 86_400));
        let recent = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();

        let horizon = at(35);
        let purged = store.purge_before(horizon, 256).await.unwrap();
        assert_eq!(purged, Purged { events: 2, deliveries: 2, attempts: 2 }, "the first and the third, whole");
        assert!(store.get_event(tenant("acme"), first.event.id.clone()).await.unwrap().is_none());
        assert!(store.get_event(tenant("acme"), third.event.id.clone()).await.unwrap().is_none());
        assert!(store.get_event(tenant("acme"), pending.event.id.clone()).await.unwrap().is_some(), "pending kept");
        assert!(store.get_event(tenant("acme"), recent.event.id.clone()).await.unwrap().is_some());
        let purged_before = store.purged_before().await.unwrap().expect("a purge leaves its mark");
        assert!(third.event.id.time() < purged_before && purged_before <= recent.event.id.time());
        if let Some(kept) = has_table(&fixture, &partition_ending("deliveries", at(20))).await {
            assert!(kept, "the span with a pending delivery is kept");
            for table in ["events", "deliveries", "attempts"] {
                for upper in [at(10), at(30)] {
                    let partition = partition_ending(table, upper);
                    assert_eq!(has_table(&fixture, &partition).await, Some(false), "{partition} was dropped");
                }
            }
        }
        // A key whose event was purged is free again.
        let fresh = store.publish(keyed.clone()).await.unwrap().unwrap();
        assert!(!fresh.replayed && fresh.event.id != first.event.id);

        // Its delivery done at last, the kept span goes too.
        clock.set(at(86_400));
        deliver(NextStep::Done(DeliveryStatus::Succeeded)).await;
        clock.set(at(2 * 86_400));
        let purged = store.purge_before(horizon, 256).await.unwrap();
        assert_eq!(purged, Purged { events: 1, deliveries: 1, attempts: 2 });
        assert!(store.get_event(tenant("acme"), pending.event.id.clone()).await.unwrap().is_none());
        assert!(!has_table(&fixture, &partition_ending("deliveries", at(20))).await.unwrap_or(false));
        assert_eq!(store.purge_before(horizon, 256).await.unwrap(), Purged::default(), "nothing else is old");
    }
}

/// `seconds` after the time the tests of spans begin at, `at(0)`.
fn at(seconds: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_893_456_000_000).saturating_add(Duration::from_secs(seconds))
}

/// A PostgreSQL store with spans of ten seconds from `at(0)` and one event published in the first, whose delivery
/// was tried once and went on as `next`, the two ids, and a connection of its own to the database; `None` without
/// PostgreSQL.
async fn one_span(
    name: &str,
    next: NextStep,
) -> Option<(Fixture, Arc<ManualClock>, hookline_core::id::EventId, DeliveryId, tokio_postgres::Client)> {
    let clock = Arc::new(ManualClock::new(at(0)));
    let options = StoreOptions {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        partition_width: Duration::from_secs(10),
        ..StoreOptions::default()
    };
    let fixture = fixtures_with(name, &options).await.into_iter().find(|f| f.backend == "postgres")?;
    let store = &fixture.store;
    make_tenant(store, "acme").await;
    make_endpoint(store, "acme", &["pdf.processed"]).await;
    let published = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
    let claimed = store.claim_due(claim_at(clock.now())).await.unwrap();
    let outcomes: Arc<[AttemptOutcome]> = vec![outcome(&claimed[0], Some(500), next)].into();
    store.record_outcomes(outcomes).await.unwrap();
    let database = fixture._database.as_ref().expect("a PostgreSQL fixture has its database");
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    Some((fixture, clock, published.event.id, claimed[0].id.clone(), client))
}

#[tokio::test]
async fn a_purge_finishes_dropping_a_span_that_a_crash_left_halfway() {
    let finished = NextStep::Done(DeliveryStatus::Failed);
    let Some((fixture, clock, old, _, client)) = one_span("spans-crash", finished).await else { return };
    let store = &fixture.store;
    // A purge stopped after detaching the span's deliveries, before dropping them: they are a table of their own.
    let deliveries = partition_ending("deliveries", at(10));
    detach_as_a_purge_does(&client, &deliveries).await;
    assert_eq!(has_table(&fixture, &deliveries).await, Some(true));

    clock.set(at(60));
    let purged = store.purge_before(at(35), 256).await.unwrap();
    assert_eq!((purged.events, purged.attempts), (1, 1), "{purged:?}");
    for table in ["events", "deliveries", "attempts"] {
        let partition = partition_ending(table, at(10));
        assert_eq!(has_table(&fixture, &partition).await, Some(false), "{partition} is gone");
    }
    assert!(store.get_event(tenant("acme"), old).await.unwrap().is_none());
}

#[tokio::test]
async fn a_purge_attaches_again_deliveries_that_a_crash_left_detached_with_one_pending() {
    let retry = NextStep::RetryAt(at(86_400));
    let Some((fixture, clock, old, delivery, client)) = one_span("spans-crash-pending", retry).await else {
        return;
    };
    let store = &fixture.store;
    // Detached, and the process gone before it saw the pending delivery that its re-check would have kept.
    let deliveries = partition_ending("deliveries", at(10));
    detach_as_a_purge_does(&client, &deliveries).await;

    clock.set(at(60));
    assert_eq!(store.purge_before(at(35), 256).await.unwrap(), Purged::default(), "the span is kept whole");
    let row = client
        .query_one(
            "SELECT relispartition, obj_description(oid, 'pg_class') FROM pg_class WHERE relname = $1",
            &[&deliveries],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "{deliveries} is a partition again");
    assert_eq!(row.get::<_, Option<String>>(1), None, "and unmarked");
    assert!(store.get_event(tenant("acme"), old).await.unwrap().is_some());
    let (kept, attempts) = store.get_delivery(tenant("acme"), delivery.clone()).await.unwrap().unwrap();
    assert_eq!((kept.status, attempts.len()), (DeliveryStatus::Pending, 1));
    // And its retry is found when it is due.
    clock.set(at(86_400));
    let claimed = store.claim_due(claim_at(clock.now())).await.unwrap();
    assert_eq!(claimed.iter().map(|claimed| &claimed.id).collect::<Vec<_>>(), [&delivery]);
}

#[tokio::test]
async fn a_purge_leaves_alone_a_partition_that_an_operator_detached() {
    let finished = NextStep::Done(DeliveryStatus::Failed);
    let Some((fixture, clock, old, _, client)) = one_span("spans-operator", finished).await else { return };
    let store = &fixture.store;
    // Kept apart on purpose (to archive it, say): not marked by a purge.
    let deliveries = partition_ending("deliveries", at(10));
    client.batch_execute(&format!("ALTER TABLE deliveries DETACH PARTITION {deliveries}")).await.unwrap();
    clock.set(at(60));
    assert_eq!(store.purge_before(at(35), 256).await.unwrap(), Purged::default());
    let kept: i64 = client.query_one(&format!("SELECT COUNT(*) FROM {deliveries}"), &[]).await.unwrap().get(0);
    assert_eq!(kept, 1, "the detached table and its rows are still there");
    // Nor are the span's events and attempts dropped while its deliveries are a table apart.
    assert!(store.get_event(tenant("acme"), old).await.unwrap().is_some());
    assert_eq!(has_table(&fixture, &partition_ending("attempts", at(10))).await, Some(true));
}

/// The bounds of the partition of events that holds `event`, as the times they begin and end at.
async fn partition_of(client: &tokio_postgres::Client, event: &hookline_core::id::EventId) -> (Timestamp, Timestamp) {
    let row = client
        .query_one(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM events e JOIN pg_class c ON c.oid = e.tableoid
             WHERE e.id = $1",
            &[&event.as_str()],
        )
        .await
        .unwrap();
    let bound: String = row.get(0);
    let ids: Vec<hookline_core::id::EventId> = bound.split('\'').filter_map(|part| part.parse().ok()).collect();
    assert_eq!(ids.len(), 2, "{bound}");
    (ids[0].time(), ids[1].time())
}

#[tokio::test]
async fn a_clock_that_jumps_ahead_and_back_gets_spans_of_one_width_that_retention_drops_on_time() {
    let succeeded = || NextStep::Done(DeliveryStatus::Succeeded);
    let Some((fixture, clock, _, _, client)) = one_span("spans-clock", succeeded()).await else { return };
    let store = &fixture.store;
    // A month ahead, then back: the month between gets no span.
    clock.set(at(30 * 86_400));
    let ahead = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
    assert_eq!(partition_of(&client, &ahead.event.id).await, (at(30 * 86_400), at(30 * 86_400 + 10)));
    clock.set(at(600));
    let back = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
    assert_eq!(partition_of(&client, &back.event.id).await, (at(600), at(610)), "a span of its own");
    let wide: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass AND pg_get_expr(c.relpartbound, c.oid) NOT LIKE '%MINVALUE%'
                AND c.relname > $1 AND c.relname < $2",
            &[&partition_ending("events", at(700)), &partition_ending("events", at(30 * 86_400))],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(wide, 0, "nothing between the clock's two times");
    // Delivered, it goes with its span once that is past the horizon, a month before the one made ahead.
    let claimed = store.claim_due(claim_at(clock.now())).await.unwrap();
    let outcomes: Arc<[AttemptOutcome]> = claimed.iter().map(|due| outcome(due, Some(200), succeeded())).collect();
    store.record_outcomes(outcomes).await.unwrap();
    clock.set(at(700));
    let purged = store.purge_before(at(650), 256).await.unwrap();
    assert_eq!(purged.events, 2, "the first and the one after the clock came back: {purged:?}");
    assert!(store.get_event(tenant("acme"), back.event.id.clone()).await.unwrap().is_none());
    assert!(store.get_event(tenant("acme"), ahead.event.id.clone()).await.unwrap().is_some());
    // A clock set back into spans dropped meanwhile gets a span there again.
    clock.set(at(5));
    let skewed = store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
    assert_eq!(partition_of(&client, &skewed.event.id).await, (at(0), at(10)));
}

#[tokio::test]
async fn a_purge_drops_nothing_while_another_purge_is_dropping() {
    let finished = NextStep::Done(DeliveryStatus::Failed);
    let Some((fixture, clock, old, _, client)) = one_span("spans-one-purge", finished).await else { return };
    let store = &fixture.store;
    // Another node's purge, in the middle of its drops: it holds the store's purge lock ("purgeset" in ASCII).
    const PURGE_LOCK: i64 = 0x7075_7267_6573_6574;
    client.execute("SELECT pg_advisory_lock($1)", &[&PURGE_LOCK]).await.unwrap();
    clock.set(at(60));
    assert_eq!(store.purge_before(at(35), 256).await.unwrap(), Purged::default());
    assert_eq!(has_table(&fixture, &partition_ending("deliveries", at(10))).await, Some(true));
    assert!(store.get_event(tenant("acme"), old.clone()).await.unwrap().is_some());
    // Once it is done, the next purge drops the span, and leaves the lock free for the next.
    client.execute("SELECT pg_advisory_unlock($1)", &[&PURGE_LOCK]).await.unwrap();
    assert_eq!(store.purge_before(at(35), 256).await.unwrap(), Purged { events: 1, deliveries: 1, attempts: 1 });
    assert!(store.get_event(tenant("acme"), old).await.unwrap().is_none());
    let free = client.query_one("SELECT pg_try_advisory_lock($1)", &[&PURGE_LOCK]).await.unwrap();
    assert!(free.get::<_, bool>(0), "the purge let its lock go");
}

#[tokio::test]
async fn a_removal_cut_short_by_a_restart_goes_on_from_where_it_was() {
    for fixture in fixtures("removal-restart").await {
        eprintln!("backend: {}", fixture.backend);
        let Fixture { backend, store, _dir: dir, _database: database } = fixture;
        make_tenant(&store, "acme").await;
        make_endpoint(&store, "acme", &["pdf.processed"]).await;
        for _ in 0..4 {
            store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
        }
        assert!(store.delete_tenant(tenant("acme")).await.unwrap());
        assert_eq!(store.remove_deleted(1).await.unwrap().events, 1, "one step, then the process stops");
        store.close().await;
        let reopened = match &database {
            Some(database) => Database::Postgres { url: database.url.clone() },
            None => Database::Sqlite { data_dir: dir.0.clone() },
        };
        let store = Store::open(&reopened, &dir.0, &StoreOptions::default()).await.expect("the store opens again");
        assert!(store.get_tenant(tenant("acme")).await.unwrap().is_none(), "{backend}: still gone after the restart");
        assert!(store.tenant_being_deleted(tenant("acme")).await.unwrap());
        let mut events = 0;
        loop {
            let removed = store.remove_deleted(1).await.unwrap();
            if removed.is_nothing() {
                break;
            }
            events += removed.events;
        }
        assert_eq!(events, 3, "{backend}: the rest, and nothing twice");
        assert!(!store.tenant_being_deleted(tenant("acme")).await.unwrap());
        make_tenant(&store, "acme").await;
    }
}

#[tokio::test]
async fn a_store_a_later_release_migrated_is_refused_and_left_as_it_was() {
    for fixture in fixtures("later-schema").await {
        eprintln!("backend: {}", fixture.backend);
        let Fixture { backend, store, _dir: dir, _database: database } = fixture;
        make_tenant(&store, "acme").await;
        store.close().await;
        // A later release's migration: one more version than this one knows.
        let (reopened, version) = match &database {
            Some(database) => {
                let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let row = client.query_one("UPDATE schema_version SET version = version + 1 RETURNING version", &[]);
                (Database::Postgres { url: database.url.clone() }, row.await.unwrap().get::<_, i64>(0))
            }
            None => {
                let connection = rusqlite::Connection::open(dir.0.join("hookline.db")).unwrap();
                let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
                connection.execute_batch(&format!("PRAGMA user_version = {}", version + 1)).unwrap();
                (Database::Sqlite { data_dir: dir.0.clone() }, version + 1)
            }
        };
        let refused = Store::open(&reopened, &dir.0, &StoreOptions::default()).await;
        match refused {
            Err(error @ hookline_store::OpenError::LaterSchema { found, known }) => {
                assert_eq!((found, known as i64 + 1), (version, version), "{backend}");
                assert!(error.to_string().contains("later release"), "{error}");
            }
            Err(other) => panic!("{backend}: {other:?}"),
            Ok(_) => panic!("{backend}: a store of a later schema was opened"),
        }
        // Its rows are untouched: set back to this release's version, it opens with them.
        match &database {
            Some(database) => {
                let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                client.batch_execute("UPDATE schema_version SET version = version - 1").await.unwrap();
            }
            None => {
                let connection = rusqlite::Connection::open(dir.0.join("hookline.db")).unwrap();
                connection.execute_batch(&format!("PRAGMA user_version = {}", version - 1)).unwrap();
            }
        }
        let store = Store::open(&reopened, &dir.0, &StoreOptions::default()).await.expect("it opens again");
        assert!(store.get_tenant(tenant("acme")).await.unwrap().is_some(), "{backend}");
        store.close().await;
    }
}

#[tokio::test]
async fn a_walk_for_a_rare_status_goes_on_in_growing_steps_up_to_its_bound() {
    // The walk's steps (128, then four times as many) within a bound of 300 deliveries a page.
    let options = StoreOptions { list_scan: 300, ..StoreOptions::default() };
    for fixture in fixtures_with("steps", &options).await {
        eprintln!("backend: {}", fixture.backend);
        let store = &fixture.store;
        make_tenant(store, "acme").await;
        let acme = make_endpoint(store, "acme", &["pdf.processed"]).await;
        // Five that succeeded, then 395 newer that failed.
        let claim = || Claim { limit: 1_000, per_endpoint: 1_000, ..claim_at(later(1)) };
        settle(store, 5, &claim, 200, NextStep::Done(DeliveryStatus::Succeeded)).await;
        settle(store, 395, claim, 410, NextStep::Done(DeliveryStatus::Failed)).await;
        for endpoint in [None, Some(&acme)] {
            // The first page walks 300 of the failed and stops there, empty, with a cursor; the next finds the five.
            let first = store.list_deliveries(tenant("acme"), of(DeliveryStatus::Succeeded, endpoint), page(10));
            let first = first.await.unwrap();
            assert!(first.data.is_empty() && first.next_cursor.is_some(), "{endpoint:?}: {first:?}");
            let rest = PageRequest { cursor: first.next_cursor, limit: 10 };
            let second = store.list_deliveries(tenant("acme"), of(DeliveryStatus::Succeeded, endpoint), rest);
            let second = second.await.unwrap();
            assert_eq!((second.data.len(), second.next_cursor), (5, None), "{endpoint:?}");
            // A common status fills its page from the first step.
            let failed = store.list_deliveries(tenant("acme"), of(DeliveryStatus::Failed, endpoint), page(200));
            assert_eq!(failed.await.unwrap().data.len(), 200);
            let (listed, _) = list_all(store, "acme", &of(DeliveryStatus::Succeeded, endpoint), 2).await;
            assert_eq!(listed.len(), 5);
        }
    }
}

#[tokio::test]
async fn a_restart_releases_the_leases_a_run_left_on_deliveries_due_soon() {
    for fixture in fixtures("lease-restart").await {
        eprintln!("backend: {}", fixture.backend);
        let Fixture { backend, store, _dir: dir, _database: database } = fixture;
        make_tenant(&store, "acme").await;
        make_endpoint(&store, "acme", &["pdf.processed"]).await;
        // One delivery in flight under an ordinary lease, one under a lease that ends a day from now (as a clock
        // that ran ahead would have left it).
        let mut claimed = Vec::new();
        for lease in [Duration::from_secs(30), Duration::from_secs(86_400)] {
            store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
            let now = later(0);
            let claim = Claim { lease_until: now.saturating_add(lease), ..claim_at(now) };
            let taken = store.claim_due(claim).await.unwrap();
            assert_eq!(taken.len(), 1);
            claimed.push(taken[0].id.clone());
        }
        store.close().await;
        let reopened = match &database {
            Some(database) => Database::Postgres { url: database.url.clone() },
            None => Database::Sqlite { data_dir: dir.0.clone() },
        };
        let store = Store::open(&reopened, &dir.0, &StoreOptions::default()).await.expect("the store opens again");
        // The first is due at once; the second waits for its lease to end, as after a node's death.
        let due = store.claim_due(claim_at(later(1))).await.unwrap();
        let due: Vec<DeliveryId> = due.into_iter().map(|delivery| delivery.id).collect();
        assert_eq!(due, claimed[..1], "{backend}");
        // A day on, it is due too (with the first, whose new lease has run out by then).
        let after_a_day = store.claim_due(claim_at(later(86_401))).await.unwrap();
        let mut after_a_day: Vec<DeliveryId> = after_a_day.into_iter().map(|delivery| delivery.id).collect();
        after_a_day.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(after_a_day, claimed, "{backend}");
    }
}

#[tokio::test]
async fn recorded_attempts_keep_the_endpoints_health_and_note_what_to_tell() {
    let start = Timestamp::from_unix_millis(1_893_456_000_000);
    for backend in ["sqlite", "postgres"] {
        let policy =
            hookline_core::health::Policy { failing_after: 2, disable_after: Some(Duration::from_secs(86_400)) };
        let options = StoreOptions { health: policy, ..StoreOptions::default() };
        let Some((clock, fixture)) = on_clock("health", backend, start, options).await else {
            continue;
        };
        let store = &fixture.store;
        make_tenant(store, "acme").await;
        let endpoint = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let claim =
            |now: Timestamp| Claim { now, lease_until: now.saturating_add(Duration::from_secs(30)), ..claim_at(now) };
        // Fails an attempt of a new event at `at`, its last when `last`.
        let fail = |at: Timestamp, last: bool| {
            let clock = Arc::clone(&clock);
            async move {
                clock.set(at);
                store.publish(event("acme", "pdf.processed", "{}")).await.unwrap().unwrap();
                let claimed = store.claim_due(claim(at)).await.unwrap();
                assert_eq!(claimed.len(), 1);
                let next = if last {
                    NextStep::Done(DeliveryStatus::Failed)
                } else {
                    NextStep::RetryAt(at.saturating_add(Duration::from_secs(86_400 * 30)))
                };
                let mut failed = outcome(&claimed[0], Some(503), next);
                failed.attempt.started = at;
                assert_eq!(store.record_outcomes(Arc::from([failed])).await.unwrap(), 1);
            }
        };
        let hour = Duration::from_secs(3600);
        fail(start, false).await;
        assert!(store.pending_notices(10).await.unwrap().is_empty(), "one failure tells nothing");
        fail(start.saturating_add(hour), true).await;
        let mut notices = store.pending_notices(10).await.unwrap();
        notices.sort_by(|a, b| a.topic.cmp(&b.topic));
        let told: Vec<&str> = notices.iter().map(|notice| notice.topic.as_str()).collect();
        assert_eq!(told, ["delivery.exhausted", "endpoint.failing"]);
        assert!(
            notices
                .iter()
                .all(|notice| notice.tenant.as_str() == "acme" && notice.created == start.saturating_add(hour))
        );
        let failing: serde_json::Value = serde_json::from_str(&notices[1].data).unwrap();
        assert_eq!(failing["consecutive_failures"], 2);
        let (_, stats) = store.endpoint_stats(tenant("acme"), endpoint.clone(), start).await.unwrap().unwrap();
        assert_eq!((stats.health.consecutive_failures, stats.health.failing_since), (2, Some(start)));
        let counts: Vec<(u64, u64)> = stats.hours.iter().map(|hour| (hour.successes, hour.failures)).collect();
        assert_eq!(counts, [(0, 1), (0, 1)]);
        assert!(store.endpoint_stats(tenant("globex"), endpoint.clone(), start).await.unwrap().is_none());
        for notice in notices {
            store.remove_notice(notice.id).await.unwrap();
        }

        // A day of failures with a delivery that used its last retry: disabled, and told.
        fail(start.saturating_add(Duration::from_secs(86_400)), false).await;
        let read = store.get_endpoint(tenant("acme"), endpoint.clone()).await.unwrap().unwrap();
        assert!(!read.enabled);
        let disabled = read.disabled.expect("why and when it was disabled");
        assert_eq!(disabled.at, start.saturating_add(Duration::from_secs(86_400)));
        assert!(disabled.reason.contains("1d"), "{}", disabled.reason);
        let told: Vec<String> =
            store.pending_notices(10).await.unwrap().into_iter().map(|notice| notice.topic).collect();
        assert_eq!(told, ["endpoint.disabled"]);
        assert_eq!(store.endpoint_health(vec![endpoint.clone()]).await.unwrap()[0].consecutive_failures, 3);

        // Hourly counts older than the horizon go.
        assert_eq!(store.remove_old_hours(start.saturating_add(hour), 10).await.unwrap(), 1);
        let (_, stats) = store.endpoint_stats(tenant("acme"), endpoint.clone(), start).await.unwrap().unwrap();
        assert_eq!(stats.hours.len(), 2);

        // A list's hours, one read for all its endpoints.
        let quiet = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let hours = store.endpoint_hours(vec![quiet.clone(), endpoint.clone()], start).await.unwrap();
        assert_eq!(hours[0], []);
        assert_eq!(hours[1], stats.hours, "a list's hours are the endpoint's own");
        let later = store
            .endpoint_hours(vec![endpoint.clone()], start.saturating_add(Duration::from_secs(86_400)))
            .await
            .unwrap();
        assert_eq!(later[0].len(), 1, "hours before `since` are left out");
        assert!(store.endpoint_hours(Vec::new(), start).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_portal_link_starts_one_session_which_ends_when_idle_revoked_or_over() {
    use hookline_core::portal::Capability;
    use hookline_store::{NewPortalLink, NewPortalSession};
    let start = Timestamp::from_unix_millis(1_893_456_000_000);
    for backend in ["sqlite", "postgres"] {
        let Some((clock, fixture)) = on_clock("portal", backend, start, StoreOptions::default()).await else {
            continue;
        };
        let store = &fixture.store;
        make_tenant(store, "acme").await;
        let minutes = |count: u64| Duration::from_secs(60 * count);
        let link = |hash: &str, tenant: &str| NewPortalLink {
            token_hash: hash.to_owned(),
            tenant: tenant.parse().unwrap(),
            capabilities: vec![Capability::Read, Capability::Retry],
            user: Some("ada@acme.example".to_owned()),
            expires: start.saturating_add(minutes(5)),
            theme: Some(r#"{"name":"Heron"}"#.to_owned()),
        };
        let session =
            |hash: &str| NewPortalSession { token_hash: hash.to_owned(), csrf: "csrf".into(), lifetime: minutes(60) };
        assert!(!store.create_portal_link(link("l0", "nobody")).await.unwrap(), "an unknown tenant gets no link");
        assert!(store.create_portal_link(link("l1", "acme")).await.unwrap());
        let started = store.redeem_portal_link("l1".into(), session("s1")).await.unwrap().expect("a session");
        assert_eq!((started.tenant.as_str(), started.user.as_deref()), ("acme", Some("ada@acme.example")));
        assert_eq!(started.capabilities, [Capability::Read, Capability::Retry]);
        assert_eq!(started.expires, start.saturating_add(minutes(60)));
        assert_eq!(started.theme.as_deref(), Some(r#"{"name":"Heron"}"#), "the session keeps its link's theme");
        assert!(store.redeem_portal_link("l1".into(), session("s2")).await.unwrap().is_none(), "a link works once");
        assert!(store.redeem_portal_link("nope".into(), session("s3")).await.unwrap().is_none());
        // A link past its five minutes starts nothing.
        store.create_portal_link(link("l2", "acme")).await.unwrap();
        clock.advance(minutes(5));
        assert!(store.redeem_portal_link("l2".into(), session("s4")).await.unwrap().is_none(), "expired");

        // Used within its idle limit, the session lives; idle longer, it is over.
        let idle = minutes(30);
        clock.advance(minutes(20));
        let seen = store.portal_session("s1".into(), idle).await.unwrap().expect("live");
        assert_eq!(seen.last_seen, start.saturating_add(minutes(25)), "its use was written");
        clock.advance(minutes(29));
        assert!(store.portal_session("s1".into(), idle).await.unwrap().is_some());
        clock.advance(minutes(31));
        assert!(store.portal_session("s1".into(), idle).await.unwrap().is_none(), "idle too long");
        assert!(store.portal_session("unknown".into(), idle).await.unwrap().is_none());

        // Revoked by its own tenant only; listed until then.
        clock.set(start);
        store.create_portal_link(link("l3", "acme")).await.unwrap();
        let other = store.redeem_portal_link("l3".into(), session("s5")).await.unwrap().unwrap();
        assert_eq!(store.list_portal_sessions(tenant("acme")).await.unwrap().len(), 2);
        make_tenant(store, "globex").await;
        assert!(!store.revoke_portal_session(tenant("globex"), other.id.clone()).await.unwrap());
        assert!(store.portal_session("s5".into(), idle).await.unwrap().is_some());
        assert!(store.revoke_portal_session(tenant("acme"), other.id.clone()).await.unwrap());
        assert!(store.portal_session("s5".into(), idle).await.unwrap().is_none(), "revoked");
        let listed: Vec<_> =
            store.list_portal_sessions(tenant("acme")).await.unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, std::slice::from_ref(&started.id));

        // Past its absolute end a session is over however active, and the purge takes what is over.
        clock.set(start.saturating_add(minutes(61)));
        assert!(store.portal_session("s1".into(), Duration::from_secs(86_400)).await.unwrap().is_none());
        clock.advance(Duration::from_secs(2 * 86_400));
        assert_eq!(store.purge_portal(100).await.unwrap(), 3 + 2, "three links and two sessions");
        assert_eq!(store.purge_portal(100).await.unwrap(), 0);

        // A deleted tenant's sessions end at once, and its links open nothing.
        clock.set(start);
        store.create_portal_link(link("l4", "acme")).await.unwrap();
        store.create_portal_link(link("l5", "acme")).await.unwrap();
        store.redeem_portal_link("l4".into(), session("s6")).await.unwrap().unwrap();
        assert!(store.delete_tenant(tenant("acme")).await.unwrap());
        assert!(store.portal_session("s6".into(), idle).await.unwrap().is_none());
        assert!(store.redeem_portal_link("l5".into(), session("s7")).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn the_console_keeps_operator_sessions_and_reads_across_tenants() {
    use hookline_store::NewPortalSession;
    let start = Timestamp::from_unix_millis(1_893_456_000_000);
    for backend in ["sqlite", "postgres"] {
        let Some((clock, fixture)) = on_clock("console", backend, start, StoreOptions::default()).await else {
            continue;
        };
        let store = &fixture.store;
        let minutes = |count: u64| Duration::from_secs(60 * count);
        let session =
            |hash: &str| NewPortalSession { token_hash: hash.to_owned(), csrf: "csrf".into(), lifetime: minutes(60) };

        // Sessions: live while used, over when idle, signed out or past their end, and purged then.
        let first = store.create_console_session(session("c1"), "key-hash".into()).await.unwrap();
        let second = store.create_console_session(session("c2"), "key-hash".into()).await.unwrap();
        assert_eq!((first.expires, first.key_hash.as_str()), (start.saturating_add(minutes(60)), "key-hash"));
        let idle = minutes(30);
        clock.advance(minutes(20));
        let seen = store.console_session("c1".into(), idle).await.unwrap().expect("live");
        assert_eq!((seen.id.clone(), seen.last_seen), (first.id.clone(), start.saturating_add(minutes(20))));
        assert!(store.console_session("c2".into(), minutes(10)).await.unwrap().is_none(), "idle too long");
        assert!(store.console_session("nope".into(), idle).await.unwrap().is_none());
        store.end_console_session(second.id.clone()).await.unwrap();
        assert!(store.console_session("c2".into(), idle).await.unwrap().is_none(), "signed out");
        clock.advance(minutes(41));
        assert!(store.console_session("c1".into(), Duration::from_secs(86_400)).await.unwrap().is_none(), "over");
        assert_eq!(store.purge_portal(100).await.unwrap(), 1, "the one over is purged");

        // The queue: what waits, what is due, since when; hours of every endpoint; who fails.
        clock.set(start);
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        let acme = make_endpoint(store, "acme", &["pdf.processed"]).await;
        let globex = make_endpoint(store, "globex", &["pdf.processed"]).await;
        let mut events = Vec::new();
        for tenant_id in ["acme", "acme", "globex"] {
            events.push(store.publish(event(tenant_id, "pdf.processed", "{}")).await.unwrap().unwrap());
        }
        clock.advance(minutes(1));
        let queue = store.queue_summary(1000).await.unwrap();
        assert_eq!((queue.pending, queue.due, queue.oldest_due), (3, 3, Some(start)));
        assert_eq!(store.queue_summary(2).await.unwrap().pending, 2, "counted up to the cap");
        let claimed = store.claim_due(claim_at(clock.now())).await.unwrap();
        let failed = claimed.iter().find(|claimed| claimed.endpoint.id == globex).unwrap();
        let mut outcome = outcome(failed, Some(500), NextStep::RetryAt(clock.now().saturating_add(minutes(10))));
        outcome.attempt.started = clock.now();
        store.record_outcomes(Arc::from([outcome])).await.unwrap();
        let failing = store.failing_endpoints(10).await.unwrap();
        assert_eq!(failing.len(), 1);
        assert_eq!((failing[0].tenant.as_str(), &failing[0].endpoint), ("globex", &globex));
        assert_eq!(failing[0].health.consecutive_failures, 1);
        let hours = store.installation_hours(start).await.unwrap();
        assert_eq!(hours.iter().map(|hour| (hour.successes, hour.failures)).collect::<Vec<_>>(), [(0, 1)]);
        let queue = store.queue_summary(1000).await.unwrap();
        assert_eq!(queue.pending, 3, "leased and retried deliveries still wait");
        if backend == "postgres" {
            let leased: u64 = queue.leased_by_node.iter().map(|(_, count)| count).sum();
            assert_eq!(leased, 2, "{:?}", queue.leased_by_node);
        }

        // Where an id belongs.
        let event_id = events[2].event.id.to_string();
        assert_eq!(store.tenant_of(event_id).await.unwrap(), Some(tenant("globex")));
        assert_eq!(store.tenant_of(failed.id.to_string()).await.unwrap(), Some(tenant("globex")));
        assert_eq!(store.tenant_of(acme.to_string()).await.unwrap(), Some(tenant("acme")));
        assert_eq!(store.tenant_of("del_00000000000000000000000000".into()).await.unwrap(), None);
        assert_eq!(store.tenant_of("acme".into()).await.unwrap(), None, "not an id of a kind it finds");
    }
}

#[tokio::test]
async fn deliveries_are_filtered_by_topic_answer_and_time_window() {
    use hookline_store::Answer;
    let start = Timestamp::from_unix_millis(1_893_456_000_000);
    // Three deliveries read a page at most, so that the walk of a filter without an index goes page by page.
    for backend in ["sqlite", "postgres"] {
        let options = StoreOptions { list_scan: 3, ..StoreOptions::default() };
        let Some((clock, fixture)) = on_clock("filters", backend, start, options).await else {
            continue;
        };
        let store = &fixture.store;
        make_tenant(store, "acme").await;
        make_tenant(store, "globex").await;
        let endpoint = make_endpoint(store, "acme", &["pdf.processed", "end_user.processed"]).await;
        make_endpoint(store, "globex", &["pdf.processed"]).await;
        // One delivery a minute: topics alternating, answered 200, 404, 503, none, 200, 404.
        let answers = [Some(200), Some(404), Some(503), None, Some(200), Some(404)];
        let mut made = Vec::new();
        for (minute, answer) in answers.iter().enumerate() {
            clock.set(start.saturating_add(Duration::from_secs(60 * minute as u64)));
            let topic_name = if minute % 2 == 0 { "pdf.processed" } else { "end_user.processed" };
            store.publish(event("acme", topic_name, "{}")).await.unwrap().unwrap();
            store.publish(event("globex", "pdf.processed", "{}")).await.unwrap().unwrap();
            let claimed = store.claim_due(claim_at(clock.now())).await.unwrap();
            let ours = claimed.iter().find(|claimed| claimed.endpoint.id == endpoint).unwrap();
            let next =
                NextStep::Done(if *answer == Some(200) { DeliveryStatus::Succeeded } else { DeliveryStatus::Failed });
            let done = outcome(ours, *answer, next);
            store.record_outcomes(Arc::from([done])).await.unwrap();
            made.push(ours.id.clone());
        }
        let newest_first =
            |minutes: &[usize]| minutes.iter().rev().map(|&minute| made[minute].clone()).collect::<Vec<_>>();
        let at = |minute: u64| Some(start.saturating_add(Duration::from_secs(60 * minute)));
        let cases = [
            (DeliveryFilter { topic: Some(topic("pdf.processed")), ..Default::default() }, vec![0, 2, 4]),
            (DeliveryFilter { answer: Some(Answer::Class(4)), ..Default::default() }, vec![1, 5]),
            (DeliveryFilter { answer: Some(Answer::Class(5)), ..Default::default() }, vec![2]),
            (DeliveryFilter { answer: Some(Answer::Class(2)), ..Default::default() }, vec![0, 4]),
            (DeliveryFilter { answer: Some(Answer::None), ..Default::default() }, vec![3]),
            (
                DeliveryFilter {
                    topic: Some(topic("end_user.processed")),
                    status: Some(DeliveryStatus::Failed),
                    ..Default::default()
                },
                vec![1, 3, 5],
            ),
            (DeliveryFilter { since: at(2), until: at(4), ..Default::default() }, vec![2, 3]),
            (DeliveryFilter { since: at(4), ..Default::default() }, vec![4, 5]),
            (DeliveryFilter { until: at(1), ..Default::default() }, vec![0]),
            (
                DeliveryFilter { since: at(1), status: Some(DeliveryStatus::Failed), ..Default::default() },
                vec![1, 2, 3, 5],
            ),
            (
                DeliveryFilter {
                    since: at(1),
                    until: at(5),
                    answer: Some(Answer::Class(4)),
                    endpoint: Some(endpoint.clone()),
                    ..Default::default()
                },
                vec![1],
            ),
            (DeliveryFilter { since: at(1), status: Some(DeliveryStatus::Succeeded), ..Default::default() }, vec![4]),
            (DeliveryFilter { since: at(7), ..Default::default() }, vec![]),
        ];
        for (filter, minutes) in cases {
            for limit in [1, 2, 10] {
                let (listed, _) = list_all(store, "acme", &filter, limit).await;
                assert_eq!(listed, newest_first(&minutes), "{filter:?}, limit {limit}");
            }
        }
        // An event's deliveries are filtered as they are read.
        let of_event = |minute: usize, answer: Answer| {
            let event = store.get_delivery(tenant("acme"), made[minute].clone());
            async move {
                let event = event.await.unwrap().unwrap().0.event;
                let filter = DeliveryFilter { event: Some(event), answer: Some(answer), ..Default::default() };
                list_all(store, "acme", &filter, 10).await.0
            }
        };
        assert_eq!(of_event(2, Answer::Class(5)).await, newest_first(&[2]));
        assert!(of_event(2, Answer::Class(2)).await.is_empty());
        // globex's deliveries are never acme's, however filtered.
        let (globex, _) = list_all(store, "globex", &DeliveryFilter { since: at(0), ..Default::default() }, 10).await;
        assert_eq!(globex.len(), 6);
        assert!(globex.iter().all(|id| !made.contains(id)));
    }
}
