//! The topic catalogue: seeded with the Heron topics on first start, extended by operators; a deprecated topic
//! keeps its subscribers and takes no new ones.

use hookline_core::time::Timestamp;
use hookline_core::topic::{OPERATIONAL_TOPICS, SEED_TOPICS, TopicName, seed_example};

use crate::sql::{Columns, Sql, Value, millis, parse_field};
use crate::{Store, StoreError};

#[derive(Clone, Debug)]
pub struct Topic {
    pub name: TopicName,
    pub description: String,
    pub deprecated: bool,
    pub created: Timestamp,
    /// The `data` test events of this topic send, as compact JSON: its own, or a seeded topic's built-in one.
    pub example: Option<String>,
    /// The one-line text chat messages of this topic show, naming fields of `data` (`{data.end_user_id}`).
    pub template: Option<String>,
}

const SELECT_TOPIC: &str = "SELECT name, description, deprecated, created_at, example, template FROM topics";

/// A change to a topic; a field left `None` stays as it is.
#[derive(Clone, Debug, Default)]
pub struct TopicPatch {
    pub description: Option<String>,
    pub deprecated: Option<bool>,
    /// `Some(None)` removes the topic's own example (a seeded topic falls back to its built-in one).
    pub example: Option<Option<String>>,
    /// `Some(None)` removes its template.
    pub template: Option<Option<String>>,
}

fn topic_row(row: &dyn Columns) -> Result<Topic, StoreError> {
    let name: TopicName = parse_field(&row.text(0)?)?;
    let example = row.optional_text(4)?.or_else(|| seed_example(name.as_str()).map(str::to_owned));
    Ok(Topic {
        name,
        description: row.text(1)?,
        deprecated: row.flag(2)?,
        created: millis(row, 3)?,
        example,
        template: row.optional_text(5)?,
    })
}

fn name_and_deprecation(row: &dyn Columns) -> Result<(String, bool), StoreError> {
    Ok((row.text(0)?, row.flag(1)?))
}

/// Every topic must exist; a topic not already subscribed (`current`) must not be deprecated.
pub(crate) async fn check_subscribable(
    sql: &mut impl Sql,
    topics: &[TopicName],
    current: &[TopicName],
) -> Result<(), StoreError> {
    for topic in topics {
        let found = sql
            .first("SELECT name, deprecated FROM topics WHERE name = $1", &[&topic.as_str()], name_and_deprecation)
            .await?;
        match found {
            None => return Err(StoreError::UnknownTopic { name: topic.to_string() }),
            Some((_, true)) if !current.contains(topic) => {
                return Err(StoreError::DeprecatedTopic { name: topic.to_string() });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl Store {
    /// Seeds the catalogue once in the database's life (on PostgreSQL, once whichever node starts first).
    pub(crate) async fn seed_topics(&self) -> Result<(), StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            let first_start = sql
                .execute(
                    "INSERT INTO settings (key, value) VALUES ('topics_seeded', '1') ON CONFLICT (key) DO NOTHING",
                    &[],
                )
                .await?
                > 0;
            // Heron's topics once, on the first start; the operational topics in every catalogue, older ones too.
            let seeded = if first_start { SEED_TOPICS } else { &[] };
            for topic in seeded.iter().chain(OPERATIONAL_TOPICS) {
                let values: [&dyn Value; 4] = [&topic.name, &topic.description, &topic.deprecated, &now];
                sql.execute(
                    "INSERT INTO topics (name, description, deprecated, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO NOTHING",
                    &values,
                )
                .await?;
            }
            Ok(())
        })
    }

    pub async fn list_topics(&self) -> Result<Vec<Topic>, StoreError> {
        reading!(self, |sql| sql.query(&format!("{SELECT_TOPIC} ORDER BY name"), &[], topic_row).await)
    }

    /// Adds a topic; `example` is its example `data` as compact JSON, `template` its chat text (checked by the
    /// caller).
    pub async fn create_topic(
        &self,
        name: TopicName,
        description: String,
        example: Option<String>,
        template: Option<String>,
    ) -> Result<Topic, StoreError> {
        let created = self.clock.now();
        writing!(self, |sql| {
            let inserted = sql
                .execute(
                    "INSERT INTO topics (name, description, deprecated, created_at, example, template)
                     VALUES ($1, $2, FALSE, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
                    &[&name.as_str(), &description, &created.unix_millis(), &example, &template],
                )
                .await?;
            if inserted == 0 {
                return Err(StoreError::Conflict { what: "topic", id: name.to_string() });
            }
            sql.first(&format!("{SELECT_TOPIC} WHERE name = $1"), &[&name.as_str()], topic_row)
                .await?
                .ok_or_else(|| StoreError::Corrupt { detail: format!("topic {name} vanished as it was made") })
        })
    }

    /// One topic of the catalogue.
    pub async fn get_topic(&self, name: TopicName) -> Result<Option<Topic>, StoreError> {
        reading!(self, |sql| sql.first(&format!("{SELECT_TOPIC} WHERE name = $1"), &[&name.as_str()], topic_row).await)
    }

    /// Changes a topic's description, deprecation or example; `None` when there is no such topic.
    pub async fn update_topic(&self, name: TopicName, patch: TopicPatch) -> Result<Option<Topic>, StoreError> {
        let TopicPatch { description, deprecated, example, template } = patch;
        let (set_example, example) = (example.is_some(), example.flatten());
        let (set_template, template) = (template.is_some(), template.flatten());
        writing!(self, |sql| {
            let values: [&dyn Value; 7] =
                [&description, &deprecated, &set_example, &example, &set_template, &template, &name.as_str()];
            sql.execute(
                "UPDATE topics SET description = COALESCE($1, description), deprecated = COALESCE($2, deprecated),
                    example = CASE WHEN $3 THEN $4 ELSE example END, template = CASE WHEN $5 THEN $6 ELSE template END
                 WHERE name = $7",
                &values,
            )
            .await?;
            sql.first(&format!("{SELECT_TOPIC} WHERE name = $1"), &[&name.as_str()], topic_row).await
        })
    }
}
