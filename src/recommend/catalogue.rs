//! The product catalogue under dense indices (`0..len`), so the model can use
//! vectors instead of maps.

use std::collections::BTreeSet;

use super::index_hash::IndexMap;
use crate::store::Product;

#[derive(Debug, Clone)]
pub(crate) struct Catalogue {
    products: Vec<Product>,
    by_id: IndexMap<i64, usize>,
    /// Distinct category names, sorted.
    categories: Vec<String>,
    /// Category index of each product.
    category_of: Vec<usize>,
}

impl Catalogue {
    pub fn new(products: Vec<Product>) -> Catalogue {
        let names: BTreeSet<&str> = products.iter().map(|p| p.category.as_str()).collect();
        let categories: Vec<String> = names.into_iter().map(str::to_string).collect();
        let category_of = products
            .iter()
            .map(|p| categories.partition_point(|c| c.as_str() < p.category.as_str()))
            .collect();
        let by_id = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        Catalogue {
            products,
            by_id,
            categories,
            category_of,
        }
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn index_of(&self, product_id: i64) -> Option<usize> {
        self.by_id.get(&product_id).copied()
    }

    pub fn product(&self, index: usize) -> &Product {
        &self.products[index]
    }

    pub fn in_stock(&self, index: usize) -> bool {
        self.products[index].in_stock
    }

    pub fn category_count(&self) -> usize {
        self.categories.len()
    }

    pub fn category_of(&self, index: usize) -> usize {
        self.category_of[index]
    }
}
