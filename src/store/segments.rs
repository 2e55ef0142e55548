use serde::Serialize;

use super::{Store, StoreError, on_pool};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    pub expression: String,
    pub description: String,
}

impl Store {
    pub async fn upsert_segment(
        &self,
        name: &str,
        expression: &str,
        description: &str,
    ) -> Result<i64, StoreError> {
        let sql = "INSERT INTO segments (name, expression, description, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $4)
                   ON CONFLICT (name) DO UPDATE SET expression = excluded.expression,
                       description = excluded.description, updated_at = excluded.updated_at
                   RETURNING id";
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(name)
            .bind(expression)
            .bind(description)
            .bind(crate::time::now())
            .fetch_one(pool)
            .await)?;
        Ok(id)
    }

    pub async fn segment_by_name(&self, name: &str) -> Result<Option<Segment>, StoreError> {
        let sql = "SELECT id, name, expression, description FROM segments WHERE name = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await)?)
    }

    pub async fn segment(&self, id: i64) -> Result<Segment, StoreError> {
        let sql = "SELECT id, name, expression, description FROM segments WHERE id = $1";
        let row = on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::not_found("segment", id.to_string()))
    }

    pub async fn segments(&self) -> Result<Vec<Segment>, StoreError> {
        let sql = "SELECT id, name, expression, description FROM segments ORDER BY name";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }
}
