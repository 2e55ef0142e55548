//! Changes an automation's `update` step makes to one recipient.

use super::{Engine, Store, StoreError, built, on_pool};

impl Store {
    /// Sets the attribute at `path` (names joined by dots; checked when the
    /// automation was loaded) to `value`, creating objects on the way.
    pub async fn set_attribute(
        &self,
        recipient_id: i64,
        path: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let names: Vec<&str> = path.split('.').collect();
        let sql = match self.engine() {
            Engine::Sqlite => {
                let json_path = format!("$.{}", names.join("."));
                format!(
                    "UPDATE recipients SET attributes = json_set(attributes, '{json_path}', json($2)),
                         updated_at = $3 WHERE id = $1"
                )
            }
            Engine::Postgres => {
                let mut expression = "attributes".to_string();
                for depth in 1..names.len() {
                    let prefix = names[..depth].join(",");
                    expression = format!(
                        "jsonb_set({expression}, '{{{prefix}}}',
                                   COALESCE(attributes #> '{{{prefix}}}', '{{}}'::jsonb), true)"
                    );
                }
                let whole = names.join(",");
                format!(
                    "UPDATE recipients
                     SET attributes = jsonb_set({expression}, '{{{whole}}}', CAST($2 AS JSONB), true),
                         updated_at = $3 WHERE id = $1"
                )
            }
        };
        let value = serde_json::to_string(value).expect("a JSON value serialises");
        on_pool!(self, pool => sqlx::query(built(&sql))
            .bind(recipient_id).bind(value).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Subscribes the recipient to `topic`, unless they opted out of it before.
    pub async fn subscribe_topic(
        &self,
        recipient_id: i64,
        topic: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        self.ensure_topics(&[topic]).await?;
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO consents (recipient_id, topic_id, status, source, updated_at)
             SELECT $1, t.id, 'subscribed', $3, $4 FROM topics t WHERE t.name = $2
             ON CONFLICT (recipient_id, topic_id) DO NOTHING")
            .bind(recipient_id).bind(topic).bind(source).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
