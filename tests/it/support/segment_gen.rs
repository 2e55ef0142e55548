//! proptest strategies: random, well-typed segment expressions over a vocabulary that
//! hits the test data (and misses it), and token soup for the parser.

use mailcast::segment::ast::{
    Duration, EventFilter, Expr, Field, Metric, Order, Test, TextField, TimeValue, Unit, Value,
};
use proptest::prelude::*;
use proptest::sample::select;

/// A literal in a vocabulary (`Value` cannot be built in a constant).
#[derive(Clone, Copy, Debug)]
pub enum Lit {
    N(f64),
    S(&'static str),
    B(bool),
}

impl Lit {
    fn value(self) -> Value {
        match self {
            Lit::N(n) => Value::Number(n),
            Lit::S(s) => Value::Text(s.to_string()),
            Lit::B(b) => Value::Bool(b),
        }
    }
}

/// Words the generated expressions draw from: values likely to match for each field,
/// and noise.
#[derive(Clone, Copy)]
pub struct Vocab {
    pub texts: &'static [&'static str],
    pub columns: &'static [(TextField, &'static [&'static str])],
    pub attrs: &'static [(&'static str, &'static [Lit])],
    pub kinds: &'static [&'static str],
    pub skus: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub segments: &'static [&'static str],
}

const NUMBERS: &[f64] = &[
    -1.0, 0.0, 18.0, 25.0, 30.0, 30.5, 45.0, 65.0, 50_000.0, 75_000.5,
];
const COUNTS: &[f64] = &[0.0, 1.0, 2.0, 3.0, 5.0, 0.5, 10.0];
const MONEY: &[f64] = &[0.0, 1.0, 49.99, 50.0, 100.0, 250.5, 1_000.0];

fn durations() -> impl Strategy<Value = Duration> {
    select(vec![
        Duration::new(12, Unit::Hour),
        Duration::new(90, Unit::Minute),
        Duration::new(1, Unit::Day),
        Duration::new(2, Unit::Day),
        Duration::new(1, Unit::Week),
        Duration::new(30, Unit::Day),
        Duration::new(60, Unit::Day),
        Duration::new(90, Unit::Day),
        Duration::new(6, Unit::Month),
        Duration::new(180, Unit::Day),
        Duration::new(1, Unit::Year),
    ])
}

fn order() -> impl Strategy<Value = Order> {
    select(Order::ALL.to_vec())
}

fn text(v: Vocab) -> impl Strategy<Value = String> {
    select(v.texts).prop_map(str::to_string)
}

fn number() -> impl Strategy<Value = f64> {
    select(NUMBERS)
}

pub fn expr(v: Vocab) -> impl Strategy<Value = Expr> {
    leaf(v).prop_recursive(3, 10, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

fn leaf(v: Vocab) -> impl Strategy<Value = Expr> {
    prop_oneof![
        1 => any::<bool>().prop_map(Expr::Const),
        4 => text_field(v),
        2 => created_at(),
        8 => attr(v),
        5 => metric(v),
        2 => (filter(v, true), order(), durations()).prop_map(|(f, op, d)| {
            Expr::Recency(EventFilter { within: None, ..f }, op, d)
        }),
        3 => filter(v, true).prop_map(Expr::Did),
        1 => select(v.segments).prop_map(|s| Expr::Segment(s.to_string())),
    ]
}

/// Mostly a value likely to match, sometimes noise.
fn likely_text(v: Vocab, likely: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![3 => select(likely), 1 => select(v.texts)]
        .prop_map(str::to_string)
        .boxed()
}

/// A piece of a text: a prefix, a suffix or a middle part (possibly empty).
fn fragment(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (text, any::<u8>(), any::<u8>()).prop_map(|(s, skip, take)| {
        let chars: Vec<char> = s.chars().collect();
        let skip = usize::from(skip) % (chars.len() + 1);
        let take = usize::from(take) % (chars.len() - skip + 1);
        chars[skip..skip + take].iter().collect()
    })
}

fn text_field(v: Vocab) -> impl Strategy<Value = Expr> {
    select(v.columns).prop_flat_map(move |(field, likely)| {
        let text = move || likely_text(v, likely);
        let test = prop_oneof![
            3 => (order(), text()).prop_map(|(op, s)| Test::Compare(op, Value::Text(s))),
            2 => prop::collection::vec(text().prop_map(Value::Text), 1..4).prop_map(Test::In),
            1 => fragment(text()).prop_map(|s| Test::Contains(Value::Text(s))),
            1 => fragment(text()).prop_map(Test::StartsWith),
            1 => fragment(text()).prop_map(Test::EndsWith),
            1 => Just(Test::Exists),
        ];
        test.prop_map(move |t| Expr::Field(Field::Text(field), t))
    })
}

fn created_at() -> impl Strategy<Value = Expr> {
    let at = prop_oneof![
        durations().prop_map(TimeValue::Ago),
        select(vec![1_700_000_000_i64, 1_767_225_600, 1_780_000_000]).prop_map(TimeValue::At),
    ];
    (order(), at)
        .prop_map(|(op, t)| Expr::Field(Field::CreatedAt, Test::Compare(op, Value::Time(t))))
}

fn scalar(v: Vocab) -> impl Strategy<Value = Value> {
    prop_oneof![
        number().prop_map(Value::Number),
        text(v).prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn attr_value(v: Vocab, likely: &'static [Lit]) -> BoxedStrategy<Value> {
    prop_oneof![3 => select(likely).prop_map(Lit::value), 1 => scalar(v)].boxed()
}

/// Values of the first value's type only.
fn one_type(values: Vec<Value>) -> Vec<Value> {
    let first = std::mem::discriminant(&values[0]);
    values
        .into_iter()
        .filter(|v| std::mem::discriminant(v) == first)
        .collect()
}

fn attr_test(v: Vocab, likely: &'static [Lit]) -> impl Strategy<Value = Test> {
    let value = move || attr_value(v, likely);
    let text = move || {
        value().prop_map(|v| match v {
            Value::Text(s) => s,
            other => other.to_string(),
        })
    };
    prop_oneof![
        6 => (order(), value()).prop_map(|(op, value)| match value {
            Value::Bool(_) if !matches!(op, Order::Eq | Order::Ne) => Test::Compare(Order::Eq, value),
            _ => Test::Compare(op, value),
        }),
        2 => prop::collection::vec(value(), 1..4).prop_map(|vs| Test::In(one_type(vs))),
        2 => value().prop_map(Test::Contains),
        1 => fragment(text()).prop_map(|s| Test::Contains(Value::Text(s))),
        1 => fragment(text()).prop_map(Test::StartsWith),
        1 => fragment(text()).prop_map(Test::EndsWith),
        1 => Just(Test::Exists),
    ]
}

fn attr(v: Vocab) -> impl Strategy<Value = Expr> {
    select(v.attrs).prop_flat_map(move |(name, likely)| {
        let path: Vec<String> = name.split('.').map(str::to_string).collect();
        attr_test(v, likely).prop_map(move |t| Expr::Field(Field::Attr(path.clone()), t))
    })
}

fn filter(v: Vocab, needs_kind: bool) -> impl Strategy<Value = EventFilter> {
    let kind = select(v.kinds).prop_map(str::to_string);
    let kind = if needs_kind {
        kind.prop_map(Some).boxed()
    } else {
        prop::option::weighted(0.8, kind).boxed()
    };
    let sku = prop::option::weighted(0.15, select(v.skus).prop_map(str::to_string));
    let category = prop::option::weighted(0.25, select(v.categories).prop_map(str::to_string));
    let within = prop::option::weighted(0.7, durations());
    (kind, within, sku, category).prop_map(|(kind, within, sku, category)| EventFilter {
        kind,
        within,
        sku,
        category,
    })
}

fn metric(v: Vocab) -> impl Strategy<Value = Expr> {
    let spent = filter(v, false).prop_map(|f| Metric::Spent(EventFilter { kind: None, ..f }));
    let engagement = (any::<bool>(), prop::option::of(durations())).prop_map(|(open, within)| {
        if open {
            Metric::Opened(within)
        } else {
            Metric::Clicked(within)
        }
    });
    prop_oneof![
        (
            filter(v, false).prop_map(Metric::Events),
            order(),
            select(COUNTS)
        ),
        (spent, order(), select(MONEY)),
        (engagement, order(), select(COUNTS)),
    ]
    .prop_map(|(m, op, n)| Expr::Metric(m, op, n))
}

/// Fragments of the language and of things that are not, glued at random.
pub fn token_soup() -> impl Strategy<Value = String> {
    const PARTS: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        ".",
        " and ",
        " or ",
        "not ",
        " in ",
        "attr",
        ".age",
        "country",
        "created_at",
        "==",
        "!=",
        "<",
        ">=",
        "=",
        "!",
        "\"x\"",
        "\"",
        "'",
        "30d",
        "30",
        "-",
        "1.5",
        "ago",
        "did",
        "purchases",
        "last",
        "(within:",
        "segment",
        "exists",
        "contains",
        "starts_with",
        "#",
        "\\",
        "\n",
        "é",
        "1=1; DROP TABLE recipients",
        "90m",
        "\"\\u{",
        "99999999999999999999999",
        "true",
        "false",
        "kind:",
        "sku:",
        " ",
        "𝔘",
    ];
    prop::collection::vec(select(PARTS), 0..24).prop_map(|parts| parts.concat())
}
