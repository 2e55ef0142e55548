use serde::Serialize;

use super::{Store, StoreError, built, on_pool};

#[derive(Debug, Clone)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub url: String,
    pub image_url: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    pub category: String,
    pub in_stock: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Product {
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub url: String,
    pub image_url: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    pub category: String,
    pub in_stock: bool,
}

impl Store {
    pub async fn products(&self) -> Result<Vec<Product>, StoreError> {
        let sql = "SELECT id, sku, name, url, image_url, price_cents, currency, category, in_stock
                   FROM products ORDER BY id";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// sku → product id for the given skus that exist, in one query.
    pub async fn product_ids(
        &self,
        skus: &[&str],
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        if skus.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let json = serde_json::to_string(skus).expect("strings serialise");
        let sql = format!(
            "SELECT sku, id FROM products WHERE sku IN ({})",
            self.json_strings(1)
        );
        let rows: Vec<(String, i64)> = on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(&json).fetch_all(pool).await)?;
        Ok(rows.into_iter().collect())
    }
}
