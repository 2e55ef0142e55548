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

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub subject: String,
    pub preheader: Option<String>,
    pub html: String,
    pub text: Option<String>,
}

impl Store {
    pub async fn upsert_template(&self, template: &NewTemplate) -> Result<i64, StoreError> {
        let sql =
            "INSERT INTO templates (name, subject, preheader, html, text, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $6)
                   ON CONFLICT (name) DO UPDATE SET subject = excluded.subject,
                       preheader = excluded.preheader, html = excluded.html,
                       text = excluded.text, updated_at = excluded.updated_at
                   RETURNING id";
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(&template.name)
            .bind(&template.subject)
            .bind(&template.preheader)
            .bind(&template.html)
            .bind(&template.text)
            .bind(crate::time::now())
            .fetch_one(pool)
            .await)?;
        Ok(id)
    }

    pub async fn template(&self, id: i64) -> Result<Template, StoreError> {
        let sql = "SELECT id, name, subject, preheader, html, text FROM templates WHERE id = $1";
        let row = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::not_found("template", id.to_string()))
    }
}

impl Store {
    pub async fn template_by_name(&self, name: &str) -> Result<Option<Template>, StoreError> {
        let sql = "SELECT id, name, subject, preheader, html, text FROM templates WHERE name = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?)
    }
}
