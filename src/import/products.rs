//! `products` rows → [`NewProduct`] (columns: FORMATS.md).

use super::error::FieldError;
use super::fields::{self, FieldResult, required};
use super::reader::Record;
use crate::store::NewProduct;

pub(crate) const REQUIRED: &[&str] = &["sku", "name", "url", "price", "currency", "category"];

/// ISO 4217 currencies without minor units: their prices are whole numbers.
const ZERO_DECIMAL_CURRENCIES: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

pub(crate) fn parse(record: &Record<'_>) -> FieldResult<NewProduct> {
    let currency = currency(record)?;
    let decimals = if ZERO_DECIMAL_CURRENCIES.contains(&currency.as_str()) {
        0
    } else {
        2
    };
    Ok(NewProduct {
        sku: fields::required_text(record, "sku")?,
        name: fields::required_text(record, "name")?,
        url: required("url", fields::http_url(record, "url")?)?,
        image_url: fields::http_url(record, "image_url")?,
        price_cents: required("price", fields::cents(record, "price", decimals)?)?,
        currency,
        category: fields::required_text(record, "category")?.to_lowercase(),
        in_stock: fields::boolean(record, "in_stock")?.unwrap_or(true),
    })
}

/// Three letters, upper-cased.
fn currency(record: &Record<'_>) -> FieldResult<String> {
    let text = fields::required_text(record, "currency")?;
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(FieldError::new(
            "currency",
            format!("'{text}' is not an ISO 4217 currency code (like USD)"),
        ))
    }
}
