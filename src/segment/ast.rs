//! The parsed form of a segment expression.
//!
//! The parser only builds well-typed trees; [`super::typing`] holds the rules, and the
//! compiler and the evaluator check them again, because a tree may also be built by
//! hand. `Display` prints the canonical text, which parses back to the same tree.

/// A predicate over one recipient.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `true` or `false`.
    Const(bool),
    Not(Box<Expr>),
    /// Two or more operands, all of which hold. The parser never flattens: `a and (b
    /// and c)` keeps its inner group, so printing gives back the same tree.
    And(Vec<Expr>),
    /// Two or more operands, one of which holds.
    Or(Vec<Expr>),
    /// A test on a recipient column or attribute: `country in ["US"]`, `attr.age >= 30`.
    Field(Field, Test),
    /// A numeric measure of behaviour compared with a number: `purchases(within: 90d) >= 3`.
    Metric(Metric, Order, f64),
    /// Time since the latest matching event compared with a duration:
    /// `last(purchase) > 180d ago`. Recipients without such an event never match.
    Recency(EventFilter, Order, Duration),
    /// At least one matching event: `did(cart_add, within: 2d)`, `viewed(...)`.
    Did(EventFilter),
    /// Another stored segment, inlined before compiling: `segment("vip")`.
    Segment(String),
}

/// A recipient column or a JSON attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Text(TextField),
    /// `created_at`, a point in time.
    CreatedAt,
    /// `attr.a.b`: the path of keys into the attributes object.
    Attr(Vec<String>),
}

/// Text columns of `recipients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    Email,
    FirstName,
    LastName,
    Country,
    City,
    Locale,
    Timezone,
}

impl TextField {
    pub const ALL: [TextField; 7] = [
        TextField::Email,
        TextField::FirstName,
        TextField::LastName,
        TextField::Country,
        TextField::City,
        TextField::Locale,
        TextField::Timezone,
    ];

    /// The name in the language, which is also the column name.
    pub fn name(self) -> &'static str {
        match self {
            TextField::Email => "email",
            TextField::FirstName => "first_name",
            TextField::LastName => "last_name",
            TextField::Country => "country",
            TextField::City => "city",
            TextField::Locale => "locale",
            TextField::Timezone => "timezone",
        }
    }
}

/// What a [`Field`] is tested for.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Compare(Order, Value),
    /// Equal to one of the values (all of one type).
    In(Vec<Value>),
    /// A list holding the value, or a text holding the value as a substring.
    Contains(Value),
    StartsWith(String),
    EndsWith(String),
    /// Present and not JSON `null` (for columns: not NULL).
    Exists,
}

/// A literal on the right-hand side of a test.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Bool(bool),
    Time(TimeValue),
}

/// A point in time, relative to the `now` a segment is compiled against or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeValue {
    /// `30d ago`
    Ago(Duration),
    /// `"2026-01-31"` or an RFC 3339 time, as unix seconds.
    At(i64),
}

impl TimeValue {
    pub fn resolve(self, now: i64) -> i64 {
        match self {
            TimeValue::Ago(d) => now - d.seconds(),
            TimeValue::At(t) => t,
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Order {
    pub const ALL: [Order; 6] = [
        Order::Eq,
        Order::Ne,
        Order::Lt,
        Order::Le,
        Order::Gt,
        Order::Ge,
    ];

    /// The operator as both the language and SQL spell it (`!=` is `<>` in SQL).
    pub fn symbol(self) -> &'static str {
        match self {
            Order::Eq => "==",
            Order::Ne => "!=",
            Order::Lt => "<",
            Order::Le => "<=",
            Order::Gt => ">",
            Order::Ge => ">=",
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            Order::Eq => "=",
            Order::Ne => "<>",
            other => other.symbol(),
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> Order {
        match self {
            Order::Lt => Order::Gt,
            Order::Le => Order::Ge,
            Order::Gt => Order::Lt,
            Order::Ge => Order::Le,
            same => same,
        }
    }

    pub fn holds<T: PartialOrd + ?Sized>(self, left: &T, right: &T) -> bool {
        match self {
            Order::Eq => left == right,
            Order::Ne => left != right,
            Order::Lt => left < right,
            Order::Le => left <= right,
            Order::Gt => left > right,
            Order::Ge => left >= right,
        }
    }
}

/// A numeric measure of one recipient's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Number of matching events: `events(view, within: 30d)`, `purchases(...)`.
    Events(EventFilter),
    /// Sum of `amount` over matching purchases, in currency units. The filter's kind
    /// is always `purchase`.
    Spent(EventFilter),
    /// Human opens of earlier campaigns: `opened(within: 30d)`.
    Opened(Option<Duration>),
    /// Human clicks in earlier campaigns: `clicked(within: 30d)`.
    Clicked(Option<Duration>),
}

/// Which events count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `None`: every kind.
    pub kind: Option<String>,
    /// Only events at or after `now - within`.
    pub within: Option<Duration>,
    pub sku: Option<String>,
    pub category: Option<String>,
}

impl EventFilter {
    pub fn of_kind(kind: &str) -> EventFilter {
        EventFilter {
            kind: Some(kind.to_string()),
            ..EventFilter::default()
        }
    }
}

/// The kind `spent()` sums over.
pub const PURCHASE: &str = "purchase";

/// A length of time as written: `30d`, `12h`, `6mo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    pub amount: u32,
    pub unit: Unit,
}

/// Units of [`Duration`]. A month is 30 days and a year 365 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Unit {
    pub const ALL: [Unit; 6] = [
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Minute => "min",
            Unit::Hour => "h",
            Unit::Day => "d",
            Unit::Week => "w",
            Unit::Month => "mo",
            Unit::Year => "y",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        }
    }

    pub fn from_suffix(suffix: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.suffix() == suffix)
    }
}

/// The longest duration accepted: 200 years, so `now - d` never overflows.
pub const MAX_DURATION_SECONDS: i64 = 200 * 365 * 86_400;

impl Duration {
    pub fn new(amount: u32, unit: Unit) -> Duration {
        Duration { amount, unit }
    }

    pub fn seconds(self) -> i64 {
        i64::from(self.amount) * self.unit.seconds()
    }
}

/// Money literals are in currency units, amounts in cents: `spent() > 49.99` compares
/// the sum of cents with 4999, not with 4998.999….
pub fn cents(units: f64) -> f64 {
    let cents = units * 100.0;
    let rounded = cents.round();
    if (cents - rounded).abs() < 1e-6 {
        rounded
    } else {
        cents
    }
}
