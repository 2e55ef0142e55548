//! Automations as stored: a name, whether it runs, and its versions (the checked
//! definition as JSON beside the file it was loaded from).

use serde::Serialize;

use super::{Store, StoreError, on_pool};

/// An automation and the version new runs start on.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredAutomation {
    pub id: i64,
    pub name: String,
    /// `active` or `paused`.
    pub status: String,
    pub version_id: i64,
    pub version: i64,
    /// The checked definition as JSON.
    pub definition: String,
    pub source: String,
    /// Events with a larger id may trigger it; earlier ones came before it existed.
    pub events_from: i64,
    /// Recipients with a larger id are new to it.
    pub recipients_from: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What saving a definition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SavedAutomation {
    pub automation_id: i64,
    pub version_id: i64,
    pub version: i64,
    /// False when the source was the same as the current version's.
    pub changed: bool,
}

const SELECT: &str = "
    SELECT a.id, a.name, a.status, v.id AS version_id, v.version, v.definition, v.source,
           a.events_from, a.recipients_from, a.created_at, a.updated_at
    FROM automations a JOIN automation_versions v ON v.id = a.version_id";

impl Store {
    /// Stores `definition` as the automation `name`'s newest version (creating the
    /// automation), unless `source` is the current version's already.
    pub async fn save_automation(
        &self,
        name: &str,
        definition: &str,
        source: &str,
    ) -> Result<SavedAutomation, StoreError> {
        if let Some(current) = self.automation_by_name(name).await?
            && current.source == source
        {
            return Ok(SavedAutomation {
                automation_id: current.id,
                version_id: current.version_id,
                version: current.version,
                changed: false,
            });
        }
        let now = crate::time::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO automations (name, status, events_from, recipients_from,
                                          created_at, updated_at)
                 SELECT $1, 'active', (SELECT COALESCE(MAX(id), 0) FROM events),
                        (SELECT COALESCE(MAX(id), 0) FROM recipients), $2, $2
                 WHERE true
                 ON CONFLICT (name) DO NOTHING")
                .bind(name).bind(now).execute(&mut *tx).await?;
            let (automation_id, version): (i64, i64) = sqlx::query_as(
                "SELECT a.id, COALESCE(MAX(v.version), 0) + 1 FROM automations a
                 LEFT JOIN automation_versions v ON v.automation_id = a.id
                 WHERE a.name = $1 GROUP BY a.id")
                .bind(name).fetch_one(&mut *tx).await?;
            let (version_id,): (i64,) = sqlx::query_as(
                "INSERT INTO automation_versions (automation_id, version, definition, source,
                                                  created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id")
                .bind(automation_id).bind(version).bind(definition).bind(source).bind(now)
                .fetch_one(&mut *tx).await?;
            sqlx::query("UPDATE automations SET version_id = $2, updated_at = $3 WHERE id = $1")
                .bind(automation_id).bind(version_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(SavedAutomation { automation_id, version_id, version, changed: true })
        })
    }

    pub async fn automations(&self) -> Result<Vec<StoredAutomation>, StoreError> {
        let sql = format!("{SELECT} ORDER BY a.name");
        Ok(on_pool!(self, pool =>
            sqlx::query_as(super::built(&sql)).fetch_all(pool).await)?)
    }

    pub async fn automation_by_name(
        &self,
        name: &str,
    ) -> Result<Option<StoredAutomation>, StoreError> {
        let sql = format!("{SELECT} WHERE a.name = $1");
        Ok(on_pool!(self, pool =>
            sqlx::query_as(super::built(&sql)).bind(name).fetch_optional(pool).await)?)
    }

    /// The definition JSON of one version.
    pub async fn automation_definition(&self, version_id: i64) -> Result<String, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT definition FROM automation_versions WHERE id = $1")
            .bind(version_id).fetch_optional(pool).await)?;
        row.map(|(definition,)| definition)
            .ok_or_else(|| StoreError::not_found("automation version", version_id.to_string()))
    }

    /// Sets `active` or `paused`; false when no automation has that name.
    pub async fn set_automation_status(
        &self,
        name: &str,
        status: &str,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE automations SET status = $2, updated_at = $3 WHERE name = $1")
            .bind(name).bind(status).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }
}

impl Store {
    /// The kinds of event stored, each once (an index skip over `events`).
    pub async fn event_kinds(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(Option<String>,)> = on_pool!(self, pool => sqlx::query_as(
            "WITH RECURSIVE k (kind) AS (
                 SELECT MIN(kind) FROM events
                 UNION ALL
                 SELECT (SELECT MIN(e.kind) FROM events e WHERE e.kind > k.kind)
                 FROM k WHERE k.kind IS NOT NULL)
             SELECT kind FROM k")
            .fetch_all(pool).await)?;
        Ok(rows.into_iter().filter_map(|(kind,)| kind).collect())
    }

    pub async fn template_names(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool =>
            sqlx::query_as("SELECT DISTINCT name FROM templates ORDER BY name").fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    pub async fn topic_names(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self, pool =>
            sqlx::query_as("SELECT name FROM topics ORDER BY name").fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }
}
