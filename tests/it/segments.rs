//! Segments: the language, its errors, the SQL it compiles to on both engines, the
//! audience questions the store answers, the commands, and a differential test of
//! the SQL against the in-memory evaluator.
//!
//! PostgreSQL runs too when `TEST_DATABASE_URL` is set (a fresh `mc_seg_*` database
//! per test).

use crate::support::segment_data;
use crate::support::segment_db;
use crate::support::segment_fixtures;
use crate::support::segment_gen;

use std::collections::{BTreeSet, HashMap};

use mailcast::cli::segment::{SegmentCommand, run_to};
use mailcast::domain::EmailAddress;
use mailcast::segment::ast::{
    Duration, EventFilter, Expr, Field, Metric, Order, Test, TextField, Unit, Value,
};
use mailcast::segment::eval::{Person, PersonEvent, Touch, select};
use mailcast::segment::{
    SegmentError, compile, compile_declared, compile_stored, compile_text, no_segments, parse,
};
use mailcast::store::{Engine, SqlFilter, SqlParam, Store};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use segment_data::DAY;
use segment_db::SegDb;
use segment_gen::{Lit, Vocab};
use serde_json::json;

/// 2026-11-20T00:00:00Z, the fixtures' `now`.
const NOW: i64 = 1_795_132_800;

const ISSUE_EXAMPLES: &[&str] = &[
    r#"country in ["US", "CA"] and attr.age >= 30 and "running" in attr.interests"#,
    "purchases(within: 90d) >= 3 and spent(within: 365d) > 500",
    "did(cart_add, within: 2d) and not did(purchase, within: 2d)",
    "last(purchase) > 180d ago",
    r#"viewed(category: "shoes", within: 30d) and not segment("vip")"#,
    "opened(within: 30d) == 0 and created_at < 60d ago",
];

fn err(text: &str) -> String {
    parse(text).expect_err(text).to_string()
}

// ---------------------------------------------------------------- the language

#[test]
fn every_example_of_the_issue_parses_and_prints_back_the_same_tree() {
    for text in ISSUE_EXAMPLES {
        let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let printed = expr.to_string();
        assert_eq!(parse(&printed).unwrap(), expr, "{text} → {printed}");
    }
}

#[test]
fn value_first_membership_is_an_attribute_contains_test() {
    let expr = parse(r#""running" in attr.interests"#).unwrap();
    let expected = Expr::Field(
        Field::Attr(vec!["interests".into()]),
        Test::Contains(Value::Text("running".into())),
    );
    assert_eq!(expr, expected);
    assert_eq!(expr.to_string(), r#"attr.interests contains "running""#);
    assert_eq!(
        parse("30 <= attr.age").unwrap(),
        parse("attr.age >= 30").unwrap()
    );
}

#[test]
fn shorthands_are_events_of_one_kind() {
    assert_eq!(
        parse("purchases(within: 90d) >= 3").unwrap(),
        parse("events(purchase, within: 90d) >= 3").unwrap()
    );
    assert_eq!(
        parse(r#"viewed(category: "shoes")"#).unwrap(),
        parse("did(kind: view, category: shoes)").unwrap()
    );
    let cart = parse("did(cart_add, within: 2d)").unwrap();
    let filter = EventFilter {
        kind: Some("cart_add".into()),
        within: Some(Duration::new(2, Unit::Day)),
        ..EventFilter::default()
    };
    assert_eq!(cart, Expr::Did(filter));
}

#[test]
fn last_is_a_duration_and_ago_is_optional_there() {
    let expr = parse("last(purchase) > 180d ago").unwrap();
    assert_eq!(expr, parse("last(purchase) > 180d").unwrap());
    let Expr::Recency(_, Order::Gt, d) = expr else {
        panic!("not a recency test: {expr:?}");
    };
    assert_eq!(d.seconds(), 180 * DAY);
}

#[test]
fn keywords_infix_not_comments_and_dates_are_accepted() {
    let expr = parse("country NOT in [\"US\"] # not Americans\nAND attr.vip == true").unwrap();
    assert_eq!(
        expr.to_string(),
        r#"not country in ["US"] and attr.vip == true"#
    );
    assert_eq!(
        parse("exists(attr.age)").unwrap(),
        parse("attr.age exists").unwrap()
    );
    let dated = parse(r#"created_at >= "2026-01-31""#).unwrap();
    assert_eq!(dated.to_string(), r#"created_at >= "2026-01-31""#);
    assert!(parse(r#"created_at < "2026-01-31T10:00:00+01:00""#).is_ok());
}

#[test]
fn nested_groups_print_with_the_parentheses_they_need() {
    let text = "(a_b_c() or true) and not (false or true)";
    assert!(parse(text).is_err(), "a_b_c is not a function");
    let expr = parse("(true or false) and not (false and true) or true").unwrap();
    assert_eq!(
        expr.to_string(),
        "(true or false) and not (false and true) or true"
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn a_missing_duration_after_within_names_the_position() {
    assert_eq!(
        err("purchases(within: 90) >= 3"),
        "1:19: expected a duration like 30d after 'within:'"
    );
    assert_eq!(
        err("did(view, within: soon)"),
        "1:19: expected a duration like 30d after 'within:'"
    );
}

#[test]
fn sql_is_refused_at_parse_time() {
    assert!(err("1=1; DROP TABLE recipients").starts_with("1:2: expected '=='"));
    assert!(err("country == 'US'").starts_with("1:12: strings are written in double quotes"));
    assert!(
        err(r#"country == "US"; DELETE FROM recipients"#)
            .starts_with("1:16: unexpected character ';'")
    );
    assert!(err("country == \"US\" -- comment").starts_with("1:17:"));
    assert!(err("email == \"a\" OR 1 = 1").starts_with("1:19: expected '=='"));
}

#[test]
fn unknown_fields_and_functions_are_named() {
    assert_eq!(
        err("age >= 30"),
        "1:1: unknown field 'age': fields are email, first_name, last_name, country, city, locale, timezone, created_at and attr.NAME"
    );
    assert!(
        err("bought(shoes)")
            .starts_with("1:1: unknown function 'bought': functions are events, purchases")
    );
    assert!(err("did(view, colour: \"red\")").contains("'colour' is not one of them"));
}

#[test]
fn type_errors_say_what_the_field_takes() {
    assert_eq!(
        err("country == 3"),
        "1:12: 'country' is text: compare it with a string such as \"US\", not a number"
    );
    assert!(err(r#"country in ["US", 3]"#).starts_with("1:19: 'country' is text"));
    assert!(err("created_at > 5").starts_with("1:14: 'created_at' is a point in time"));
    assert!(err("attr.age >= 30d").starts_with("1:13: expected 'ago' after the duration"));
    assert!(err("attr.vip < true").contains("true and false can only be compared with == and !="));
    assert!(err(r#"attr.x in [1, "a"]"#).contains("a list holds values of one type"));
    assert!(err(r#"purchases() >= "3""#).contains("purchases() is a number"));
    assert!(err("last(purchase) > 3").contains("compare it with a duration such as 180d"));
    assert!(err("spent(purchase) > 3").contains("spent() takes named arguments"));
    assert!(err("did(within: 2d)").contains("did() needs an event kind"));
    assert!(err("did(view, within: 2d, within: 3d)").contains("'within' is given twice"));
    assert!(err("90m ago < created_at").contains("'m' is ambiguous"));
}

#[test]
fn syntax_errors_point_at_the_line_and_column() {
    assert_eq!(
        err(""),
        "1:1: expected a condition such as country == \"US\"; the expression is empty"
    );
    assert_eq!(
        err("(country == \"US\""),
        "1:17: expected ')' to close the '(' at 1:1, found the end of the expression"
    );
    assert_eq!(
        err("country == \"US\" attr.age > 3"),
        "1:17: expected 'and', 'or' or the end of the expression, found 'attr'"
    );
    assert_eq!(
        err("country == \"US\"\n  and frobs > 3")
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["2", "7"]
    );
    assert!(err("purchases(within: 90d)").contains("expected a comparison such as >= 3"));
    assert!(err("country").contains("expected an operator after 'country'"));
    assert!(err("\"unterminated").contains("no closing '\"'"));
}

#[test]
fn errors_render_with_a_caret_under_the_position() {
    let text = "purchases(within: 90) >= 3";
    let rendered = parse(text).unwrap_err().render(text);
    assert_eq!(
        rendered,
        "1:19: expected a duration like 30d after 'within:'\n  purchases(within: 90) >= 3\n                    ^"
    );
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    for text in [
        "(".repeat(10_000),
        "not ".repeat(10_000),
        "a".repeat(100_000),
    ] {
        assert!(parse(&text).is_err());
    }
    let wide = vec!["true"; 2_000].join(" and ");
    assert!(parse(&wide).is_ok());
}

// ---------------------------------------------------------------- compiling

fn compile_both(text: &str) -> Vec<SqlFilter> {
    let expr = parse(text).unwrap();
    [Engine::Sqlite, Engine::Postgres]
        .into_iter()
        .map(|engine| compile(&expr, engine, NOW, &no_segments).unwrap())
        .collect()
}

#[test]
fn every_value_and_json_path_is_a_bound_parameter() {
    let hostile = r#"email == "x'); DROP TABLE recipients; --" and attr.secret_key contains "o'hara" and did(view, sku: "1' OR '1")"#;
    for filter in compile_both(hostile) {
        for needle in ["DROP", "o'hara", "secret_key", "1' OR", "view"] {
            assert!(!filter.sql.contains(needle), "{needle} in {}", filter.sql);
        }
        let texts: Vec<&SqlParam> = filter.params.iter().collect();
        assert!(texts.contains(&&SqlParam::Text("x'); DROP TABLE recipients; --".into())));
        assert!(!filter.sql.contains('\''.to_string().repeat(2).as_str()));
    }
}

#[test]
fn placeholders_are_numbered_from_one_in_order() {
    for filter in compile_both(r#"country in ["US", "CA"] and attr.age >= 30"#) {
        let n = filter.params.len();
        assert!(n >= 4);
        for i in 1..=n {
            assert!(
                filter.sql.contains(&format!("${i}")),
                "${i} missing: {}",
                filter.sql
            );
        }
        assert!(!filter.sql.contains(&format!("${}", n + 1)));
    }
}

#[test]
fn relative_times_are_taken_back_from_now() {
    let [sqlite, _] = compile_both("created_at < 60d ago").try_into().unwrap();
    assert_eq!(sqlite.params, vec![SqlParam::Int(NOW - 60 * DAY)]);
    let spent = compile_both("spent() > 49.99").remove(0);
    assert!(
        spent.params.contains(&SqlParam::Float(4_999.0)),
        "{:?}",
        spent.params
    );
}

fn stored(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn compile_with(text: &str, segments: &HashMap<String, String>) -> Result<SqlFilter, SegmentError> {
    compile(&parse(text).unwrap(), Engine::Sqlite, NOW, &|n| {
        segments.get(n).cloned()
    })
}

#[test]
fn segment_references_are_inlined() {
    let segments = stored(&[
        ("vip", "spent() > 1000"),
        ("us_vip", r#"segment("vip") and country == "US""#),
    ]);
    let inlined = compile_with(r#"segment("us_vip")"#, &segments).unwrap();
    let direct = compile_with(r#"spent() > 1000 and country == "US""#, &segments).unwrap();
    assert_eq!(inlined.params, direct.params);
}

#[test]
fn cycles_and_unknown_segments_are_refused_with_the_path() {
    let segments = stored(&[
        ("a", r#"segment("b") or country == "US""#),
        ("b", r#"not segment("a")"#),
        ("broken", "country =="),
        ("user", r#"segment("ghost")"#),
    ]);
    let cycle = compile_with(r#"segment("a")"#, &segments).unwrap_err();
    assert_eq!(
        cycle.to_string(),
        r#"segment "a" refers to itself: a → b → a"#
    );
    let unknown = compile_with(r#"segment("nope")"#, &segments).unwrap_err();
    assert_eq!(unknown.to_string(), r#"no segment named "nope""#);
    let nested = compile_with(r#"segment("user")"#, &segments).unwrap_err();
    assert_eq!(
        nested.to_string(),
        r#"in segment "user": no segment named "ghost""#
    );
    let broken = compile_with(r#"segment("broken")"#, &segments).unwrap_err();
    assert!(
        broken
            .to_string()
            .starts_with(r#"in segment "broken": 1:11: expected a value"#),
        "{broken}"
    );
}

#[test]
fn exponential_references_are_refused_as_too_large() {
    let mut pairs = vec![("s0".to_string(), "true".to_string())];
    for i in 1..15 {
        let prev = format!("segment(\"s{}\")", i - 1);
        pairs.push((format!("s{i}"), format!("{prev} and {prev}")));
    }
    let segments: HashMap<String, String> = pairs.into_iter().collect();
    let error = compile_with(r#"segment("s14")"#, &segments).unwrap_err();
    assert!(matches!(error, SegmentError::TooLarge(_)), "{error}");
}

#[test]
fn hand_built_trees_that_break_the_type_rules_are_refused() {
    let bad = Expr::Field(
        Field::Text(TextField::Country),
        Test::Compare(Order::Eq, Value::Number(3.0)),
    );
    assert!(matches!(
        compile(&bad, Engine::Sqlite, NOW, &no_segments),
        Err(SegmentError::Invalid(_))
    ));
    let lonely = Expr::And(vec![Expr::Const(true)]);
    assert!(compile(&lonely, Engine::Postgres, NOW, &no_segments).is_err());
    let nan = Expr::Metric(Metric::Opened(None), Order::Eq, f64::NAN);
    assert!(compile(&nan, Engine::Sqlite, NOW, &no_segments).is_err());
}

// ---------------------------------------------------------------- on the stores

fn at(days_ago: i64) -> i64 {
    NOW - days_ago * DAY
}

fn ev(kind: &str, sku: Option<(&str, &str)>, cents: Option<i64>, days_ago: i64) -> PersonEvent {
    PersonEvent {
        kind: kind.into(),
        sku: sku.map(|(s, _)| s.into()),
        category: sku.map(|(_, c)| c.into()),
        amount_cents: cents,
        occurred_at: at(days_ago),
    }
}

const SHOE: Option<(&str, &str)> = Some(("SH-1", "shoes"));
const SHIRT: Option<(&str, &str)> = Some(("AP-1", "apparel"));

/// Five people, one per kind of segment in the issue.
fn cast() -> Vec<Person> {
    let person = |name: &str, country: &str, attributes, created_days_ago| Person {
        email: format!("{name}@example.com"),
        first_name: Some(name.into()),
        country: Some(country.into()),
        created_at: at(created_days_ago),
        attributes,
        ..Person::default()
    };
    let mut ana = person(
        "ana",
        "US",
        json!({"age": 34, "interests": ["running", "yoga"], "income": 80000}),
        400,
    );
    ana.events = (0..4)
        .map(|d| ev("purchase", SHIRT, Some(15_000), 10 + d))
        .collect();
    ana.touches = vec![Touch {
        kind: "open".into(),
        human: true,
        occurred_at: at(3),
    }];
    let mut ben = person(
        "ben",
        "CA",
        json!({"age": 28, "interests": ["gaming"]}),
        300,
    );
    ben.events = vec![
        ev("cart_add", SHOE, None, 1),
        ev("purchase", SHOE, Some(9_900), 40),
    ];
    let mut cleo = person(
        "cleo",
        "DE",
        json!({"age": "41", "loyalty_tier": "gold"}),
        900,
    );
    cleo.events = vec![
        ev("purchase", SHIRT, Some(4_999), 200),
        ev("view", SHOE, None, 5),
    ];
    let mut dan = person("dan", "US", json!({"age": 52, "interests": "running"}), 100);
    dan.events = vec![ev("view", SHOE, None, 10)];
    dan.touches = vec![Touch {
        kind: "open".into(),
        human: false,
        occurred_at: at(2),
    }];
    let eve = person("eve", "IT", json!({}), 10);
    vec![ana, ben, cleo, dan, eve]
}

async fn cast_on(db: &SegDb) -> Vec<Person> {
    let mut people = cast();
    let products = segment_data::catalogue(segment_data::PRODUCTS);
    segment_data::load(&db.store, &mut people, &products).await;
    db.store
        .upsert_segment("vip", "spent(within: 365d) > 500", "big spenders")
        .await
        .unwrap();
    people
}

async fn names(store: &Store, people: &[Person], text: &str) -> BTreeSet<String> {
    let filter = compile_text(store, text, NOW)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let ids = store.matching_ids(&filter).await.unwrap();
    let by_id: HashMap<i64, &str> = people
        .iter()
        .map(|p| (p.id, p.first_name.as_deref().unwrap()))
        .collect();
    ids.iter().map(|id| by_id[id].to_string()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn each_kind_of_segmentation_selects_the_expected_people() {
    let cases: &[(&str, &[&str])] = &[
        // demographic
        ("attr.age >= 30", &["ana", "dan"]),
        ("not attr.age >= 30", &["ben", "cleo", "eve"]),
        (r#"attr.age == "41""#, &["cleo"]),
        ("attr.age exists", &["ana", "ben", "cleo", "dan"]),
        // geographic
        (r#"country in ["US", "CA"]"#, &["ana", "ben", "dan"]),
        (r#"country != "US""#, &["ben", "cleo", "eve"]),
        (
            r#"email ends_with "@example.com" and first_name starts_with "e""#,
            &["eve"],
        ),
        // psychographic
        (r#""running" in attr.interests"#, &["ana", "dan"]),
        (r#"attr.interests contains "yo""#, &[]),
        (r#"attr.loyalty_tier in ["gold", "silver"]"#, &["cleo"]),
        // behavioural
        (
            "purchases(within: 90d) >= 3 and spent(within: 365d) > 500",
            &["ana"],
        ),
        (
            "did(cart_add, within: 2d) and not did(purchase, within: 2d)",
            &["ben"],
        ),
        ("last(purchase) > 180d ago", &["cleo"]),
        (
            r#"viewed(category: "shoes", within: 30d) and not segment("vip")"#,
            &["cleo", "dan"],
        ),
        (
            "opened(within: 30d) == 0 and created_at < 60d ago",
            &["ben", "cleo", "dan"],
        ),
        (r#"purchased(sku: "SH-1") or clicked() > 0"#, &["ben"]),
        ("events(within: 7d) >= 1", &["ben", "cleo"]),
        ("spent() > 49.99", &["ana", "ben"]),
        ("spent() >= 49.99", &["ana", "ben", "cleo"]),
    ];
    for db in SegDb::all().await {
        let people = cast_on(&db).await;
        for (text, expected) in cases {
            assert_eq!(
                names(&db.store, &people, text).await,
                set(expected),
                "{text} on {}",
                db.label
            );
            let by_eval = select(&parse(text).unwrap(), &people, NOW, &|n| {
                (n == "vip").then(|| "spent(within: 365d) > 500".to_string())
            })
            .unwrap();
            assert_eq!(by_eval.len(), expected.len(), "evaluator: {text}");
        }
        db.drop_database().await;
    }
}

#[tokio::test]
async fn count_splits_matches_by_why_they_may_not_be_mailed() {
    for db in SegDb::all().await {
        let people = cast_on(&db).await;
        let store = &db.store;
        store.ensure_topics(&["promotions"]).await.unwrap();
        store
            .suppress(&EmailAddress::parse("dan@example.com").unwrap(), "bounced")
            .await
            .unwrap();
        let ben = people.iter().find(|p| p.email.starts_with("ben")).unwrap();
        store.unsubscribe(ben.id, None, "test").await.unwrap();
        let cleo = people.iter().find(|p| p.email.starts_with("cleo")).unwrap();
        store
            .unsubscribe(cleo.id, Some("newsletter"), "test")
            .await
            .unwrap();
        let everyone = compile_text(store, "true", NOW).await.unwrap();

        let count = store
            .count_segment(&everyone, Some("newsletter"))
            .await
            .unwrap();
        assert_eq!((count.matching, count.eligible), (5, 2), "{}", db.label);
        assert_eq!(count.excluded_by_suppression, 1);
        assert_eq!(count.excluded_by_status, 1);
        assert_eq!(count.excluded_by_consent, 1);
        let promotions = store
            .count_segment(&everyone, Some("promotions"))
            .await
            .unwrap();
        assert_eq!(
            (promotions.eligible, promotions.excluded_by_consent),
            (0, 3)
        );
        let no_topic = store.count_segment(&everyone, None).await.unwrap();
        assert_eq!((no_topic.eligible, no_topic.excluded_by_consent), (3, 0));
        assert!(store.count_segment(&everyone, Some("nope")).await.is_err());
        db.drop_database().await;
    }
}

#[tokio::test]
async fn sample_returns_matching_recipients_lowest_id_first() {
    for db in SegDb::all().await {
        let people = cast_on(&db).await;
        let filter = compile_text(&db.store, r#"country in ["US", "CA"]"#, NOW)
            .await
            .unwrap();
        let sample = db.store.sample_segment(&filter, 2).await.unwrap();
        let emails: Vec<&str> = sample.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(
            emails,
            ["ana@example.com", "ben@example.com"],
            "{}",
            db.label
        );
        assert!(sample[0].id < sample[1].id && people.len() == 5);
        db.drop_database().await;
    }
}

#[tokio::test]
async fn templates_learn_which_declared_segments_each_recipient_is_in() {
    for db in SegDb::all().await {
        let people = cast_on(&db).await;
        let store = &db.store;
        store
            .upsert_segment("us", r#"country == "US""#, "")
            .await
            .unwrap();
        let declared = compile_declared(store, &["vip".into(), "us".into()], NOW)
            .await
            .unwrap();
        let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
        let names = store
            .recipient_segment_names(&ids, &declared)
            .await
            .unwrap();
        let of = |name: &str| {
            &names[&people
                .iter()
                .find(|p| p.email.starts_with(name))
                .unwrap()
                .id]
        };
        assert_eq!(of("ana"), &["vip", "us"], "{}", db.label);
        assert_eq!(of("dan"), &["us"]);
        assert!(of("eve").is_empty());
        assert_eq!(names.len(), 5);
        assert!(
            store
                .recipient_segment_names(&[], &declared)
                .await
                .unwrap()
                .is_empty()
        );
        db.drop_database().await;
    }
}

async fn command(store: &Store, cmd: SegmentCommand) -> Result<String, String> {
    let mut out = Vec::new();
    let result = run_to(store, &cmd, NOW, &mut out).await;
    let text = String::from_utf8(out).unwrap();
    result.map(|()| text).map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn commands_check_save_list_count_and_sample() {
    let db = SegDb::sqlite().await;
    cast_on(&db).await;
    let store = &db.store;
    let check = |expr: &str| SegmentCommand::Check {
        expr: expr.into(),
        sql: false,
    };
    let ok = command(store, check(r#"country  in ["US"]AND attr.age>=30"#))
        .await
        .unwrap();
    assert_eq!(ok, "ok: country in [\"US\"] and attr.age >= 30\n");
    let bad = command(store, check("purchases(within: 90) >= 3"))
        .await
        .unwrap_err();
    assert!(
        bad.contains("1:19: expected a duration") && bad.ends_with("^"),
        "{bad}"
    );
    let unknown = command(store, check(r#"segment("ghost")"#))
        .await
        .unwrap_err();
    assert_eq!(unknown, r#"no segment named "ghost""#);

    let save = |name: &str, expr: &str| SegmentCommand::Save {
        name: name.into(),
        expr: expr.into(),
        description: String::new(),
    };
    command(store, save("lapsed", "last(purchase) > 180d ago"))
        .await
        .unwrap();
    let cycle = command(store, save("vip", r#"segment("lapsed") or segment("vip")"#))
        .await
        .unwrap_err();
    assert!(cycle.contains(r#"refers to itself: vip → vip"#), "{cycle}");
    command(
        store,
        save("lapsed", r#"last(purchase) > 180d and not segment("vip")"#),
    )
    .await
    .unwrap();
    let cycle = command(store, save("vip", r#"segment("lapsed")"#))
        .await
        .unwrap_err();
    assert!(cycle.contains("vip → lapsed → vip"), "{cycle}");
    let list = command(store, SegmentCommand::List).await.unwrap();
    assert_eq!(
        list,
        "lapsed: last(purchase) > 180d ago and not segment(\"vip\")\nvip: spent(within: 365d) > 500\n    big spenders\n"
    );

    let count = command(
        store,
        SegmentCommand::Count {
            expr: "lapsed".into(),
            topic: Some("newsletter".into()),
        },
    )
    .await
    .unwrap();
    assert!(
        count.starts_with("matching:                        1\neligible:                        1"),
        "{count}"
    );
    let sample = command(
        store,
        SegmentCommand::Sample {
            expr: "lapsed".into(),
            limit: 5,
        },
    )
    .await
    .unwrap();
    assert!(
        sample.contains("cleo@example.com") && sample.lines().count() == 2,
        "{sample}"
    );
    let sql = command(
        store,
        SegmentCommand::Check {
            expr: "attr.age >= 30".into(),
            sql: true,
        },
    )
    .await
    .unwrap();
    assert!(
        sql.contains("json_type(r.attributes, $1)") && sql.contains("$1 = Text(\"$.\\\"age\\\"\")"),
        "{sql}"
    );
    db.drop_database().await;
}

// ---------------------------------------------------------------- differential

const NOISE: &[&str] = &[
    "", "a", "an", "ö", "@", ".COM", "09-", "30", "true", "O'Brien", "\"", "%", "_", "high",
];

const GENERATED: Vocab = Vocab {
    texts: NOISE,
    columns: &[
        (
            TextField::Email,
            &["user1", "@gmail.com", "Example.COM", "user12@mail.de"],
        ),
        (
            TextField::FirstName,
            &["Ana", "anna", "Jörg", "Zoë", "O'Brien", ""],
        ),
        (TextField::LastName, &["Ana", "Zoë", "O'Brien", ""]),
        (TextField::Country, &["US", "CA", "DE", "IT", ""]),
        (
            TextField::City,
            &["Napoli", "München", "São Paulo", "New York", ""],
        ),
        (TextField::Locale, &["en-US", "de-DE", "it-IT"]),
        (TextField::Timezone, &["America/New_York", "Europe/Rome"]),
    ],
    attrs: &[
        (
            "age",
            &[
                Lit::N(18.0),
                Lit::N(30.0),
                Lit::N(30.5),
                Lit::N(45.0),
                Lit::N(65.0),
                Lit::S("30"),
            ],
        ),
        (
            "income",
            &[Lit::N(25_000.0), Lit::N(50_000.0), Lit::N(75_000.5)],
        ),
        (
            "gender",
            &[Lit::S("female"), Lit::S("male"), Lit::S("nonbinary")],
        ),
        (
            "interests",
            &[
                Lit::S("running"),
                Lit::S("yoga"),
                Lit::S("travel"),
                Lit::N(7.0),
                Lit::B(true),
            ],
        ),
        (
            "lifestyle",
            &[
                Lit::S("homeowner"),
                Lit::S("outdoorsy"),
                Lit::S("eco_conscious"),
            ],
        ),
        (
            "birthday",
            &[Lit::S("01-15"), Lit::S("06-"), Lit::S("12-01")],
        ),
        (
            "loyalty_tier",
            &[Lit::S("gold"), Lit::S("silver"), Lit::S("bronze")],
        ),
        ("vip", &[Lit::B(true), Lit::B(false), Lit::S("true")]),
        ("address", &[Lit::S("Main Street 1"), Lit::S("Main")]),
        (
            "address.city",
            &[Lit::S("Napoli"), Lit::S("Berlin"), Lit::S("Toronto")],
        ),
        ("address.zip", &[Lit::S("12345"), Lit::N(12345.0)]),
        (
            "score",
            &[
                Lit::N(2.5),
                Lit::N(50.0),
                Lit::S("high"),
                Lit::B(true),
                Lit::N(2.0),
            ],
        ),
        ("missing", &[Lit::N(1.0), Lit::S("x")]),
    ],
    kinds: &["view", "cart_add", "purchase", "wishlist", "refund"],
    skus: &["SH-1", "SH-2", "AP-1", "BT-1", "XX-9"],
    categories: &["shoes", "apparel", "home", "beauty", "garden"],
    segments: &["vip", "lapsed", "shoe_fans"],
};

const STORED: &[(&str, &str)] = &[
    (
        "vip",
        r#"spent(within: 365d) > 200 or attr.loyalty_tier == "gold""#,
    ),
    ("lapsed", r#"last(purchase) > 180d and not segment("vip")"#),
    (
        "shoe_fans",
        r#"viewed(category: "shoes", within: 90d) or purchased(category: "shoes")"#,
    ),
];

struct World {
    people: Vec<Person>,
    dbs: Vec<SegDb>,
}

async fn world(mut people: Vec<Person>, products: &[mailcast::store::NewProduct]) -> World {
    let mut dbs = SegDb::all().await;
    let mut loaded = Vec::new();
    for db in &mut dbs {
        let mut copy = people.clone();
        segment_data::load(&db.store, &mut copy, products).await;
        for (name, expr) in STORED {
            db.store.upsert_segment(name, expr, "").await.unwrap();
        }
        loaded.push(copy);
    }
    // Both stores number recipients alike (fresh tables, one batch in order).
    people = loaded.remove(0);
    for other in loaded {
        let ids = |ps: &[Person]| {
            ps.iter()
                .map(|p| (p.email.clone(), p.id))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&other), ids(&people), "ids differ between engines");
    }
    World { people, dbs }
}

fn differential(world: &World, vocab: Vocab, cases: u32, runtime: &tokio::runtime::Runtime) {
    let stored = stored(STORED);
    let resolve = |n: &str| stored.get(n).cloned();
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let selective = std::cell::Cell::new(0);
    let result = runner.run(&segment_gen::expr(vocab), |expr| {
        let text = expr.to_string();
        let reparsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        proptest::prop_assert_eq!(&reparsed, &expr, "printed as {}", text);
        let expected = select(&expr, &world.people, NOW, &resolve)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        if !expected.is_empty() && expected.len() < world.people.len() {
            selective.set(selective.get() + 1);
        } else if std::env::var("SEG_DEBUG").is_ok() {
            eprintln!("DEGENERATE {} {}", expected.len(), text);
        }
        for db in &world.dbs {
            let got = runtime.block_on(async {
                let filter = compile_stored(&db.store, &expr, NOW).await?;
                Ok::<_, SegmentError>(db.store.matching_ids(&filter).await?)
            });
            let got =
                got.map_err(|e| TestCaseError::fail(format!("{text} on {}: {e}", db.label)))?;
            proptest::prop_assert_eq!(&got, &expected, "{} on {}", text, db.label);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // Expressions that select nobody or everybody prove little: many must not.
    let split = selective.get();
    eprintln!("{split} of {cases} expressions split the audience");
    assert!(
        split * 3 > cases,
        "only {split} of {cases} expressions split the audience"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sql_selects_exactly_what_the_evaluator_selects_on_generated_data() {
    let runtime = runtime();
    let people = segment_data::generate(7, 250, NOW);
    let products = segment_data::catalogue(segment_data::PRODUCTS);
    let world = runtime.block_on(world(people, &products));
    differential(&world, GENERATED, 300, &runtime);
    for db in world.dbs {
        runtime.block_on(db.drop_database());
    }
}

const FIXTURES: Vocab = Vocab {
    texts: NOISE,
    columns: &[
        (
            TextField::Email,
            &["gmail.com", "@outlook.com", "laura", ".com"],
        ),
        (
            TextField::FirstName,
            &["Laura", "Giorgia", "James", "Anna", "L"],
        ),
        (TextField::LastName, &["Costa", "Smith", "Müller", "S"]),
        (
            TextField::Country,
            &["US", "GB", "DE", "CA", "BR", "JP", "IT"],
        ),
        (
            TextField::City,
            &["New York", "London", "Berlin", "Paris", "Toronto"],
        ),
        (TextField::Locale, &["en-US", "de-DE", "en-GB", "pt-BR"]),
        (
            TextField::Timezone,
            &["America/New_York", "Europe/Berlin", "Europe/London"],
        ),
    ],
    attrs: &[
        (
            "age",
            &[Lit::N(18.0), Lit::N(30.0), Lit::N(45.5), Lit::N(65.0)],
        ),
        (
            "income",
            &[Lit::N(30_000.0), Lit::N(50_000.0), Lit::N(90_000.0)],
        ),
        (
            "gender",
            &[Lit::S("female"), Lit::S("male"), Lit::S("nonbinary")],
        ),
        (
            "interests",
            &[
                Lit::S("running"),
                Lit::S("travel"),
                Lit::S("yoga"),
                Lit::S("tech"),
            ],
        ),
        (
            "lifestyle",
            &[
                Lit::S("parent"),
                Lit::S("pet_owner"),
                Lit::S("urban"),
                Lit::S("retired"),
            ],
        ),
        (
            "birthday",
            &[Lit::S("11-20"), Lit::S("02-"), Lit::S("06-15")],
        ),
        (
            "loyalty_tier",
            &[Lit::S("gold"), Lit::S("silver"), Lit::S("bronze")],
        ),
    ],
    kinds: &["view", "cart_add", "purchase"],
    skus: &["SH-1001", "SH-1006", "AP-2001", "EL-4003", "HM-5005"],
    categories: &[
        "shoes",
        "apparel",
        "outdoor",
        "electronics",
        "home",
        "beauty",
    ],
    segments: &["vip", "lapsed", "shoe_fans"],
};

#[test]
fn sql_selects_exactly_what_the_evaluator_selects_on_the_demo_fixtures() {
    let Some((people, products)) = segment_fixtures::read(&segment_fixtures::fixtures_dir()) else {
        eprintln!("fixtures/ not present: skipped");
        return;
    };
    let runtime = runtime();
    let world = runtime.block_on(world(people, &products));
    differential(&world, FIXTURES, 100, &runtime);
    for db in world.dbs {
        runtime.block_on(db.drop_database());
    }
}

// ---------------------------------------------------------------- the parser never panics

#[test]
fn the_parser_never_panics_on_arbitrary_text() {
    let config = Config {
        cases: 3_000,
        failure_persistence: None,
        ..Config::default()
    };
    let strategy = proptest::prop_oneof![
        proptest::arbitrary::any::<String>(),
        segment_gen::token_soup()
    ];
    TestRunner::new(config)
        .run(&strategy, |text| {
            if let Ok(expr) = parse(&text) {
                let printed = expr.to_string();
                proptest::prop_assert_eq!(
                    parse(&printed).ok(),
                    Some(expr),
                    "{:?} printed as {:?}",
                    text,
                    printed
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn printing_and_parsing_give_back_the_same_tree() {
    let config = Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&segment_gen::expr(GENERATED), |expr| {
            let printed = expr.to_string();
            proptest::prop_assert_eq!(parse(&printed).ok(), Some(expr), "printed as {}", printed);
            Ok(())
        })
        .unwrap();
}
