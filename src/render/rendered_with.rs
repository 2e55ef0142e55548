//! What a delivery's message was personalised with, stored with the mark that hands it
//! to SMTP: the template version, which version of the recipient's data (a digest), the
//! declared segments matched, the recommendations with their reasons and the cart, all
//! by id. "View in browser" renders the message again from it.
//!
//! Stored as one short line: `1;<template id>;<digest>;<segments>;<recommendations>;<cart>`
//! where segments are positions in the campaign's declared segments, recommendations
//! `<product id><reason code>` (see [`Because`]) and the cart product ids, each list
//! comma-separated, in the order the template saw them.

use std::collections::HashMap;

use super::{Because, RecipientContext, Recommendation};
use crate::store::{Product, Recipient};

const FORMAT: &str = "1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedWith {
    /// The template version (its row id).
    pub template_id: i64,
    /// Digest of the recipient's data as the template saw it (see
    /// [`super::recipient_digest`]).
    pub recipient_digest: String,
    /// Positions in the campaign's declared segments.
    pub segments: Vec<usize>,
    pub recommendations: Vec<(i64, Because)>,
    pub cart: Vec<i64>,
}

impl RenderedWith {
    /// The record of rendering `ctx` with template version `template_id`, for a
    /// campaign declaring `declared` segments.
    pub fn of(ctx: &RecipientContext, template_id: i64, declared: &[String]) -> Self {
        Self {
            template_id,
            recipient_digest: super::recipient_digest(&ctx.recipient),
            segments: ctx
                .segments
                .iter()
                .filter_map(|name| declared.iter().position(|d| d == name))
                .collect(),
            recommendations: ctx
                .recommendations
                .iter()
                .map(|r| (r.product.id, r.because))
                .collect(),
            cart: ctx.cart.iter().map(|p| p.id).collect(),
        }
    }

    pub fn encode(&self) -> String {
        let recommendations: Vec<String> = self
            .recommendations
            .iter()
            .map(|(id, because)| format!("{id}{}", because.code()))
            .collect();
        [
            FORMAT.to_string(),
            self.template_id.to_string(),
            self.recipient_digest.clone(),
            join(&self.segments),
            recommendations.join(","),
            join(&self.cart),
        ]
        .join(";")
    }

    /// Reads a stored record; the error names the field that is wrong.
    pub fn decode(text: &str) -> Result<Self, String> {
        let fields: Vec<&str> = text.split(';').collect();
        let [format, template, digest, segments, recommendations, cart] = fields[..] else {
            return Err(format!("{} fields where 6 were expected", fields.len()));
        };
        if format != FORMAT {
            return Err(format!("format {format:?} is not {FORMAT:?}"));
        }
        Ok(Self {
            template_id: template
                .parse()
                .map_err(|_| format!("template id {template:?}"))?,
            recipient_digest: digest.to_string(),
            segments: numbers(segments, "segments")?,
            recommendations: split(recommendations)
                .map(recommendation)
                .collect::<Result<_, _>>()?,
            cart: numbers(cart, "cart")?,
        })
    }

    /// Every product the record names: recommended, in the cart, or in a reason.
    pub fn product_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .recommendations
            .iter()
            .flat_map(|(id, because)| [Some(*id), because.names()])
            .flatten()
            .chain(self.cart.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The render context this record describes, for `recipient` as they were then.
    /// A product no longer in `products` is left out.
    pub fn context(
        &self,
        recipient: Recipient,
        declared: &[String],
        products: &HashMap<i64, Product>,
    ) -> RecipientContext {
        let recommendations = self
            .recommendations
            .iter()
            .filter_map(|(id, because)| {
                let product = products.get(id)?.clone();
                let with = because.names().and_then(|w| products.get(&w));
                Some(Recommendation {
                    reason: because.text(&product, with),
                    product,
                    because: *because,
                })
            })
            .collect();
        RecipientContext {
            recipient,
            segments: self
                .segments
                .iter()
                .filter_map(|&i| declared.get(i).cloned())
                .collect(),
            recommendations,
            cart: self
                .cart
                .iter()
                .filter_map(|id| products.get(id).cloned())
                .collect(),
            trigger: None,
        }
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(T::to_string).collect();
    items.join(",")
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|s| !s.is_empty())
}

fn numbers<T: std::str::FromStr>(list: &str, field: &str) -> Result<Vec<T>, String> {
    split(list)
        .map(|n| {
            n.parse()
                .map_err(|_| format!("{field}: {n:?} is not a number"))
        })
        .collect()
}

/// `<product id><reason code>`, e.g. `101b205` or `33t`.
fn recommendation(item: &str) -> Result<(i64, Because), String> {
    let digits = item
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(item.len());
    let (id, code) = item.split_at(digits);
    let id = id
        .parse()
        .map_err(|_| format!("recommendations: {item:?} has no product id"))?;
    let because = Because::from_code(code)
        .ok_or_else(|| format!("recommendations: {item:?} has no known reason"))?;
    Ok((id, because))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RenderedWith {
        RenderedWith {
            template_id: 12,
            recipient_digest: "AbC-_9xyz01".into(),
            segments: vec![2, 0],
            recommendations: vec![
                (101, Because::BoughtWith(205)),
                (33, Because::Trending),
                (48, Because::Viewed),
            ],
            cart: vec![9, 10],
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let text = record().encode();
        assert_eq!(text, "1;12;AbC-_9xyz01;2,0;101b205,33t,48v;9,10");
        assert_eq!(RenderedWith::decode(&text), Ok(record()));
    }

    #[test]
    fn an_empty_record_reads_back() {
        let empty = RenderedWith {
            segments: vec![],
            recommendations: vec![],
            cart: vec![],
            ..record()
        };
        assert_eq!(empty.encode(), "1;12;AbC-_9xyz01;;;");
        assert_eq!(RenderedWith::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn bad_records_name_the_field() {
        let cases = [
            ("1;12;d;;", "5 fields"),
            ("2;12;d;;;", "format"),
            ("1;x;d;;;", "template id"),
            ("1;1;d;a;;", "segments"),
            ("1;1;d;;101q;", "no known reason"),
            ("1;1;d;;b5;", "no product id"),
            ("1;1;d;;;9,x", "cart"),
        ];
        for (text, expected) in cases {
            let error = RenderedWith::decode(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn products_named_anywhere_are_listed_once() {
        assert_eq!(record().product_ids(), vec![9, 10, 33, 48, 101, 205]);
    }
}
