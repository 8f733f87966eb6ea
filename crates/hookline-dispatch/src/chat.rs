//! The topics' chat templates as the dispatcher last read them: messages for Slack, Discord and Teams endpoints
//! show the template of their event's topic, read from the catalogue at most every `FRESH` per topic, so a change
//! of a template reaches messages within that time, and endpoints of the event's own formats never read it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_core::topic::TopicName;
use hookline_store::{ClaimedDelivery, Store};
use tokio::time::Instant;

/// How long a template read from the catalogue is used.
const FRESH: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Templates(Mutex<HashMap<TopicName, Read>>);

/// A topic's template (`None`: it has none) and when it was read.
type Read = (Option<Arc<str>>, Instant);

impl Templates {
    /// Reads the templates of the chat deliveries' topics that are not held, or held for longer than `FRESH`.
    pub(crate) async fn prepare(&self, store: &Store, deliveries: &[ClaimedDelivery]) {
        let now = Instant::now();
        let mut stale: Vec<TopicName> = {
            let held = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
            deliveries
                .iter()
                .filter(|delivery| delivery.format.is_chat())
                .map(|delivery| &delivery.topic)
                .filter(|topic| held.get(*topic).is_none_or(|(_, read)| now.duration_since(*read) >= FRESH))
                .cloned()
                .collect()
        };
        stale.sort();
        stale.dedup();
        for topic in stale {
            // A failed read shows the default summary; the next batch reads again.
            let template = match store.get_topic(topic.clone()).await {
                Ok(found) => found.and_then(|topic| topic.template).map(Arc::from),
                Err(error) => {
                    tracing::debug!(%topic, error = %error, "could not read a topic's template");
                    continue;
                }
            };
            self.0.lock().unwrap_or_else(|poison| poison.into_inner()).insert(topic, (template, now));
        }
    }

    /// The template of `topic` as last read.
    pub(crate) fn of(&self, topic: &TopicName) -> Option<Arc<str>> {
        let held = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        held.get(topic).and_then(|(template, _)| template.clone())
    }
}
