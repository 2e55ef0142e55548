//! Reads the dashboard's template pages need: the library (the newest version of each
//! name, by keyset on the name), the recipient a preview shows when none is chosen,
//! and the sender a template was last sent with.

use serde::Serialize;

use super::{Recipient, Store, StoreError, on_pool};
use crate::domain::CampaignKind;

/// The newest version of one template, as the library lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TemplateSummary {
    pub id: i64,
    pub name: String,
    pub version: i64,
    pub subject: String,
    pub updated_at: i64,
}

/// Who the newest campaign with a template was sent from, and as what kind.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TemplateSender {
    pub from_name: String,
    pub from_email: String,
    pub reply_to: Option<String>,
    #[sqlx(try_from = "String")]
    pub kind: CampaignKind,
}

/// The newest version of every name; `(name, version)` is unique, so both the order
/// and the `MAX` walk its index.
const NEWEST: &str = "SELECT t.id, t.name, t.version, t.subject, t.updated_at FROM templates t
                      WHERE t.version = (SELECT MAX(v.version) FROM templates v
                                         WHERE v.name = t.name)";

impl Store {
    /// Up to `limit` templates (newest version of each), by name, after `after` when
    /// given.
    pub async fn template_page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TemplateSummary>, StoreError> {
        let sql = format!("{NEWEST} AND t.name > $1 ORDER BY t.name LIMIT $2");
        let after = after.unwrap_or("");
        Ok(on_pool!(self, pool => sqlx::query_as(super::built(&sql))
            .bind(after).bind(limit).fetch_all(pool).await)?)
    }

    /// The newest version of the template called `name`, as the library lists it.
    pub async fn template_summary(
        &self,
        name: &str,
    ) -> Result<Option<TemplateSummary>, StoreError> {
        let sql = format!("{NEWEST} AND t.name = $1");
        Ok(on_pool!(self, pool => sqlx::query_as(super::built(&sql))
            .bind(name).fetch_optional(pool).await)?)
    }

    /// How many templates (names, not versions) there are.
    pub async fn count_templates(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, pool =>
            sqlx::query_as("SELECT COUNT(DISTINCT name) FROM templates").fetch_one(pool).await)?;
        Ok(count)
    }

    /// The recipient with the lowest id, if there is any.
    pub async fn first_recipient(&self) -> Result<Option<Recipient>, StoreError> {
        let sql = "SELECT id, email, first_name, last_name, country, city, attributes, locale,
                          timezone, status, created_at
                   FROM recipients ORDER BY id LIMIT 1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await)?)
    }

    /// The sender and kind of the newest campaign that used any version of `name`.
    pub async fn template_sender(&self, name: &str) -> Result<Option<TemplateSender>, StoreError> {
        let sql = "SELECT from_name, from_email, reply_to, kind FROM campaigns
                   WHERE template_id IN (SELECT id FROM templates WHERE name = $1)
                   ORDER BY id DESC LIMIT 1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewTemplate;

    fn template(name: &str, subject: &str) -> NewTemplate {
        NewTemplate {
            name: name.into(),
            subject: subject.into(),
            preheader: None,
            html: "<p>hi</p>".into(),
            text: None,
        }
    }

    #[tokio::test]
    async fn the_library_lists_each_name_once_at_its_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailcast.db").display().to_string();
        let store = Store::open(&path).await.unwrap();
        for (name, subject) in [("b", "B1"), ("a", "A1"), ("b", "B2"), ("c", "C1")] {
            store
                .store_template(&template(name, subject))
                .await
                .unwrap();
        }

        let first = store.template_page(None, 2).await.unwrap();
        let names: Vec<(&str, i64, &str)> = first
            .iter()
            .map(|t| (t.name.as_str(), t.version, t.subject.as_str()))
            .collect();
        assert_eq!(names, [("a", 1, "A1"), ("b", 2, "B2")]);
        let rest = store.template_page(Some("b"), 2).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].name, "c");

        assert_eq!(store.count_templates().await.unwrap(), 3);
        let b = store.template_summary("b").await.unwrap().unwrap();
        assert_eq!((b.version, b.subject.as_str()), (2, "B2"));
        assert_eq!(store.template_summary("missing").await.unwrap(), None);
        assert_eq!(store.template_sender("b").await.unwrap(), None);
        assert!(store.first_recipient().await.unwrap().is_none());
    }
}
