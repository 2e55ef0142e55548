//! A compiled recipient filter: a SQL boolean expression over `recipients r` whose
//! every value is a bound parameter. The segment compiler is the only producer.

#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    /// Placeholders are `$1 … $n`, numbered from 1 within this fragment. The text
    /// holds no literal taken from user input, so `$` followed by a digit is always a
    /// placeholder.
    pub sql: String,
    pub params: Vec<SqlParam>,
}

impl SqlFilter {
    /// Matches every recipient.
    pub fn all() -> SqlFilter {
        SqlFilter {
            sql: "1 = 1".into(),
            params: Vec::new(),
        }
    }

    /// The same fragment with placeholders renumbered to start after `offset`
    /// parameters the enclosing statement binds first.
    pub fn shifted(&self, offset: usize) -> String {
        let mut out = String::with_capacity(self.sql.len() + 8);
        let mut chars = self.sql.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c != '$' || !chars.peek().is_some_and(char::is_ascii_digit) {
                continue;
            }
            let mut digits = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                digits.push(d);
            }
            let n: usize = digits.parse().expect("digits");
            out.push_str(&(n + offset).to_string());
        }
        out
    }
}

/// Binds a filter's parameters, in order, onto a query of either engine.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {{
        let mut query = $query;
        for param in &$filter.params {
            query = match param {
                $crate::store::SqlParam::Int(v) => query.bind(*v),
                $crate::store::SqlParam::Float(v) => query.bind(*v),
                $crate::store::SqlParam::Text(v) => query.bind(v.clone()),
                $crate::store::SqlParam::Bool(v) => query.bind(*v),
            };
        }
        query
    }};
}
pub(crate) use bind_filter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_renumbers_every_placeholder() {
        let filter = SqlFilter {
            sql: "r.country = $1 AND json_extract(r.attributes, $2) >= $10".into(),
            params: vec![],
        };
        assert_eq!(
            filter.shifted(3),
            "r.country = $4 AND json_extract(r.attributes, $5) >= $13"
        );
    }
}
