use serde::Serialize;

use super::{Store, StoreError, UpsertCounts, built, on_pool};

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

const UPSERT: &str = "
    INSERT INTO products (sku, name, url, image_url, price_cents, currency, category,
                          in_stock, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
    ON CONFLICT (sku) DO UPDATE SET
        name = excluded.name, url = excluded.url, image_url = excluded.image_url,
        price_cents = excluded.price_cents, currency = excluded.currency,
        category = excluded.category, in_stock = excluded.in_stock,
        updated_at = excluded.updated_at";

impl Store {
    pub async fn upsert_products(&self, batch: &[NewProduct]) -> Result<UpsertCounts, StoreError> {
        let now = crate::time::now();
        let mut counts = UpsertCounts::default();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for product in batch {
                let existed: Option<(i64,)> =
                    sqlx::query_as("SELECT id FROM products WHERE sku = $1")
                        .bind(&product.sku)
                        .fetch_optional(&mut *tx)
                        .await?;
                sqlx::query(UPSERT)
                    .bind(&product.sku)
                    .bind(&product.name)
                    .bind(&product.url)
                    .bind(&product.image_url)
                    .bind(product.price_cents)
                    .bind(&product.currency)
                    .bind(&product.category)
                    .bind(product.in_stock)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                match existed {
                    Some(_) => counts.updated += 1,
                    None => counts.inserted += 1,
                }
            }
            tx.commit().await?;
        });
        Ok(counts)
    }

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
