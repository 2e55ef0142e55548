//! Templates by version: every `template load` of changed content adds a row (name,
//! version); a campaign names one row, so what it was checked with is what it sends.

use serde::Serialize;

use super::{Store, StoreError, on_pool};

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub name: String,
    pub subject: String,
    pub preheader: Option<String>,
    pub html: String,
    pub text: Option<String>,
}

/// One stored version of a template; `id` names the version.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub subject: String,
    pub preheader: Option<String>,
    pub html: String,
    pub text: Option<String>,
}

impl Template {
    fn same_content(&self, new: &NewTemplate) -> bool {
        self.subject == new.subject
            && self.preheader == new.preheader
            && self.html == new.html
            && self.text == new.text
    }
}

/// Which version of which template a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TemplateVersion {
    pub id: i64,
    pub version: i64,
}

/// What storing a template did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTemplate {
    pub id: i64,
    pub version: i64,
    /// False when the content equals the newest version, which is kept as it is.
    pub is_new: bool,
}

const COLUMNS: &str = "id, name, subject, preheader, html, text";

impl Store {
    /// Stores `template` as the newest version of its name and returns that version's
    /// id (see [`Store::store_template`]).
    pub async fn upsert_template(&self, template: &NewTemplate) -> Result<i64, StoreError> {
        Ok(self.store_template(template).await?.id)
    }

    /// Adds `template` as a new version of its name, unless the newest version holds
    /// the same content already. Older versions stay as they are.
    pub async fn store_template(
        &self,
        template: &NewTemplate,
    ) -> Result<StoredTemplate, StoreError> {
        if let Some(newest) = self.template_by_name(&template.name).await?
            && newest.same_content(template)
        {
            let version = self.template_version(newest.id).await?.version;
            return Ok(StoredTemplate {
                id: newest.id,
                version,
                is_new: false,
            });
        }
        let sql = "INSERT INTO templates (name, version, subject, preheader, html, text,
                                          created_at, updated_at)
                   SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $6
                   FROM templates WHERE name = $1
                   RETURNING id, version";
        let row: TemplateVersion = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(&template.name)
            .bind(&template.subject)
            .bind(&template.preheader)
            .bind(&template.html)
            .bind(&template.text)
            .bind(crate::time::now())
            .fetch_one(pool)
            .await)?;
        Ok(StoredTemplate {
            id: row.id,
            version: row.version,
            is_new: true,
        })
    }

    /// One version, by its id.
    pub async fn template(&self, id: i64) -> Result<Template, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM templates WHERE id = $1");
        let row = on_pool!(self, pool =>
            sqlx::query_as(super::built(&sql)).bind(id).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::not_found("template", id.to_string()))
    }

    /// The version number of the version with this id.
    pub async fn template_version(&self, id: i64) -> Result<TemplateVersion, StoreError> {
        let sql = "SELECT id, version FROM templates WHERE id = $1";
        let row = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::not_found("template", id.to_string()))
    }
}

impl Store {
    /// The newest version of the template called `name`.
    pub async fn template_by_name(&self, name: &str) -> Result<Option<Template>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM templates WHERE name = $1 ORDER BY version DESC LIMIT 1"
        );
        Ok(on_pool!(self, pool =>
            sqlx::query_as(super::built(&sql)).bind(name).fetch_optional(pool).await)?)
    }

    /// The newest version of the template whose version `id` is.
    pub async fn newest_template_version(&self, id: i64) -> Result<TemplateVersion, StoreError> {
        let sql = "SELECT id, version FROM templates
                   WHERE name = (SELECT name FROM templates WHERE id = $1)
                   ORDER BY version DESC LIMIT 1";
        let row = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::not_found("template", id.to_string()))
    }
}
