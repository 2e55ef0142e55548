//! A recommended product and why it was chosen, in a form that can be stored (product
//! ids) and told again in the same words.

use crate::store::Product;

#[derive(Debug, Clone)]
pub struct Recommendation {
    pub product: Product,
    /// Why this product was chosen, for a marketer to audit (see [`Because::text`]).
    pub reason: String,
    pub because: Because,
}

/// Why a product was recommended. Products are named by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Because {
    /// Someone bought it together with this product, which the recipient engaged with.
    BoughtWith(i64),
    /// Often viewed together with this product, which the recipient engaged with.
    ViewedWith(i64),
    /// The recipient put it in their cart.
    InCart,
    /// The recipient looked at it.
    Viewed,
    /// Popular in its own category.
    PopularInCategory,
    /// Popular overall.
    Trending,
}

impl Because {
    /// The reason as templates show it; `with` is the product named by
    /// `BoughtWith`/`ViewedWith` (its id when it is no longer in the catalogue).
    pub fn text(&self, product: &Product, with: Option<&Product>) -> String {
        let with_name = |id: i64| with.map_or_else(|| format!("product {id}"), |p| p.name.clone());
        match *self {
            Because::BoughtWith(id) => format!("bought together with {}", with_name(id)),
            Because::ViewedWith(id) => format!("often viewed with {}", with_name(id)),
            Because::InCart => "you added it to your cart".to_string(),
            Because::Viewed => "you looked at it".to_string(),
            Because::PopularInCategory => format!("popular in {}", product.category),
            Because::Trending => "popular right now".to_string(),
        }
    }

    /// The other product this reason names, if any.
    pub fn names(&self) -> Option<i64> {
        match *self {
            Because::BoughtWith(id) | Because::ViewedWith(id) => Some(id),
            _ => None,
        }
    }

    /// The reason's name, without the product it names.
    pub fn kind(&self) -> &'static str {
        match self {
            Because::BoughtWith(_) => "bought_with",
            Because::ViewedWith(_) => "viewed_with",
            Because::InCart => "in_cart",
            Because::Viewed => "viewed",
            Because::PopularInCategory => "popular_in_category",
            Because::Trending => "trending",
        }
    }

    /// `b<id>`, `w<id>`, `c`, `v`, `p` or `t`.
    pub(crate) fn code(&self) -> String {
        match *self {
            Because::BoughtWith(id) => format!("b{id}"),
            Because::ViewedWith(id) => format!("w{id}"),
            Because::InCart => "c".into(),
            Because::Viewed => "v".into(),
            Because::PopularInCategory => "p".into(),
            Because::Trending => "t".into(),
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Because> {
        let id = || code.get(1..)?.parse().ok();
        Some(match code.as_bytes().first()? {
            b'b' => Because::BoughtWith(id()?),
            b'w' => Because::ViewedWith(id()?),
            b'c' if code.len() == 1 => Because::InCart,
            b'v' if code.len() == 1 => Because::Viewed,
            b'p' if code.len() == 1 => Because::PopularInCategory,
            b't' if code.len() == 1 => Because::Trending,
            _ => return None,
        })
    }
}

/// One line of a recommendation list, as `recommend show`, `preview` and `campaign
/// sent` print it.
pub fn recommendation_line(rank: usize, item: &Recommendation) -> String {
    let p = &item.product;
    format!(
        "  {rank}. {} {} ({}): {}",
        p.sku, p.name, p.category, item.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back() {
        for because in [
            Because::BoughtWith(12),
            Because::ViewedWith(3),
            Because::InCart,
            Because::Viewed,
            Because::PopularInCategory,
            Because::Trending,
        ] {
            assert_eq!(Because::from_code(&because.code()), Some(because));
        }
        for bad in ["", "b", "bx", "c1", "x", "t "] {
            assert_eq!(Because::from_code(bad), None, "{bad:?}");
        }
    }
}
