use std::collections::BTreeMap;

use super::*;
use crate::domain::CampaignKind;

const EXAMPLE: &str = r#"
# Abandoned cart: remind people who put something in their cart and did not buy.
name = "abandoned-cart"
description = "Cart reminder after 4 hours, a second one a day later for VIPs"
from = { email = "shop@shop.example.com", name = "The Shop", reply_to = "help@shop.example.com" }  # name, reply_to optional
entry = "once per 7d"          # "once" (default), "every time", or "once per <duration>"
goal = { event = "purchase" }  # optional; same filters as an event trigger
trigger = { event = "cart_add", category = "shoes" }   # filters optional: sku, category, min_amount (currency units, number)

[[step]]
id = "wait-for-purchase"                    # optional; needed only to be a goto target
wait_for = { event = "purchase", timeout = "4h" }
on_event = "exit"                           # where to go when the event came; default: next step
on_timeout = "reminder"                     # default: next step

[[step]]
id = "reminder"
send = { template = "abandoned-cart", kind = "marketing", topic = "promotions" }   # kind default "marketing"; optional topic, utm (table of strings), data (table)

[[step]]
wait = "1d"

[[step]]
if = 'segment("vip") and country == "US"'   # the segment language (src/segment)
then = "second"                             # default: next step
else = "exit"                               # default: next step

[[step]]
id = "second"
send = { template = "abandoned-cart" }
goto = "exit"                               # any step without branches may set where it goes next: a step id or "exit"
"#;

/// A valid head: every test adds its own steps (and may replace a key).
const HEAD: &str = r#"
name = "test"
from = { email = "shop@shop.example.com" }
trigger = { event = "cart_add" }
"#;

fn with_steps(steps: &str) -> String {
    format!("{HEAD}\n{steps}")
}

fn event(kind: &str) -> EventMatch {
    EventMatch {
        kind: kind.into(),
        sku: None,
        category: None,
        min_amount_cents: None,
    }
}

fn send(template: &str, topic: Option<&str>, next: Next) -> Action {
    Action::Send {
        template: template.into(),
        kind: CampaignKind::Marketing,
        topic: topic.map(str::to_string),
        utm: BTreeMap::new(),
        data: serde_json::Map::new(),
        next,
    }
}

fn step(id: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        action,
    }
}

/// The problems with `text`, one string each, as displayed.
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(def) => panic!("parsed without a problem: {def:?}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The single problem with a document of `steps`.
fn step_error(steps: &str) -> String {
    let errors = errors(&with_steps(steps));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].clone()
}

fn actions(steps: &str) -> Vec<Action> {
    let def = parse(&with_steps(steps)).unwrap_or_else(|e| panic!("{e}"));
    def.steps.into_iter().map(|s| s.action).collect()
}

fn known() -> Known {
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
    Known {
        event_kinds: set(&["cart_add", "purchase", "view"]),
        templates: set(&["abandoned-cart", "welcome"]),
        topics: set(&["newsletter", "promotions"]),
        segments: set(&["vip"]),
    }
}

#[test]
fn the_example_parses_into_its_structure() {
    let expected = Definition {
        name: "abandoned-cart".into(),
        description: "Cart reminder after 4 hours, a second one a day later for VIPs".into(),
        sender: Sender {
            email: "shop@shop.example.com".into(),
            name: "The Shop".into(),
            reply_to: Some("help@shop.example.com".into()),
        },
        trigger: Trigger::Event(EventMatch {
            category: Some("shoes".into()),
            ..event("cart_add")
        }),
        entry: EntryRule::OncePer {
            seconds: 7 * 86_400,
        },
        goal: Some(event("purchase")),
        steps: vec![
            step(
                "wait-for-purchase",
                Action::WaitFor {
                    event: event("purchase"),
                    timeout_seconds: 4 * 3_600,
                    on_event: Next::Exit,
                    on_timeout: Next::Step(1),
                },
            ),
            step(
                "reminder",
                send("abandoned-cart", Some("promotions"), Next::Step(2)),
            ),
            step(
                "step-3",
                Action::Wait {
                    seconds: 86_400,
                    next: Next::Step(3),
                },
            ),
            step(
                "step-4",
                Action::If {
                    condition: r#"segment("vip") and country == "US""#.into(),
                    then: Next::Step(4),
                    otherwise: Next::Exit,
                },
            ),
            step("second", send("abandoned-cart", None, Next::Exit)),
        ],
    };
    let def = parse(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(def, expected);
    let kinds: Vec<&str> = def.steps.iter().map(Step::kind_name).collect();
    assert_eq!(kinds, ["wait_for", "send", "wait", "if", "send"]);
    let sends: Vec<usize> = def.sends().map(|(index, _)| index).collect();
    assert_eq!(sends, [1, 4]);
    assert_eq!(check(&def, &known()), Ok(()));
}

#[test]
fn a_checked_definition_survives_json() {
    let mut def = parse(EXAMPLE).unwrap();
    def.steps.push(step(
        "changes",
        Action::Update {
            change: Change::Attribute {
                path: "profile.welcomed".into(),
                value: serde_json::json!({ "at": [1, 2.5, "x"] }),
            },
            next: Next::Exit,
        },
    ));
    def.steps.push(step(
        "half",
        Action::Split {
            branches: vec![(1, Next::Step(5)), (2, Next::Exit)],
        },
    ));
    def.steps.push(step(
        "join",
        Action::Update {
            change: Change::Subscribe("newsletter".into()),
            next: Next::Exit,
        },
    ));
    def.entry = EntryRule::EveryTime;
    def.trigger = Trigger::Date {
        field: DateField::Attribute("birthday".into()),
        at: LocalTime { hour: 9, minute: 0 },
    };
    let json = serde_json::to_string(&def).unwrap();
    let back: Definition = serde_json::from_str(&json).unwrap();
    assert_eq!(back, def);
}

#[test]
fn defaults_fill_what_is_left_out() {
    let def = parse(&with_steps(
        "[[step]]\nwait = \"30min\"\n[[step]]\nwait = \"2w\"",
    ))
    .unwrap();
    assert_eq!(def.entry, EntryRule::Once);
    assert_eq!(def.description, "");
    assert_eq!(def.goal, None);
    assert_eq!(def.sender.name, "");
    assert_eq!(def.sender.reply_to, None);
    let expected = [
        step(
            "step-1",
            Action::Wait {
                seconds: 1_800,
                next: Next::Step(1),
            },
        ),
        step(
            "step-2",
            Action::Wait {
                seconds: 14 * 86_400,
                next: Next::Exit,
            },
        ),
    ];
    assert_eq!(def.steps, expected);
}

#[test]
fn every_kind_of_trigger_and_entry_is_read() {
    let cases = [
        ("{ recipient_created = true }", Trigger::RecipientCreated),
        (
            r#"{ subscribed = "newsletter" }"#,
            Trigger::Subscribed {
                topic: "newsletter".into(),
            },
        ),
        (
            "{ enters_segment = 'last(purchase) > 120d ago' }",
            Trigger::EntersSegment {
                expression: "last(purchase) > 120d ago".into(),
            },
        ),
        (
            r#"{ date = "attr.birthday", at = "09:00" }"#,
            Trigger::Date {
                field: DateField::Attribute("birthday".into()),
                at: LocalTime { hour: 9, minute: 0 },
            },
        ),
        (
            r#"{ date = "created_at", at = "23:59" }"#,
            Trigger::Date {
                field: DateField::CreatedAt,
                at: LocalTime {
                    hour: 23,
                    minute: 59,
                },
            },
        ),
        (
            r#"{ event = "purchase", sku = "A-1", min_amount = 49.99 }"#,
            Trigger::Event(EventMatch {
                sku: Some("A-1".into()),
                min_amount_cents: Some(4_999),
                ..event("purchase")
            }),
        ),
    ];
    for (trigger, expected) in cases {
        let text = format!(
            "name = \"t\"\nfrom = {{ email = \"a@b.example\" }}\nentry = \"every time\"\ntrigger = {trigger}\n[[step]]\nexit = true"
        );
        let def = parse(&text).unwrap_or_else(|e| panic!("{trigger}: {e}"));
        assert_eq!(def.trigger, expected);
        assert_eq!(def.entry, EntryRule::EveryTime);
    }
}

#[test]
fn every_kind_of_step_is_read() {
    let steps = r#"
[[step]]
wait_until = "07:05"
goto = "b"
[[step]]
id = "a"
update = { attribute = "profile.welcomed", value = true }
goto = "exit"
[[step]]
id = "b"
split = [{ weight = 1, goto = "a" }, { weight = 3, goto = "exit" }]
[[step]]
update = { subscribe = "newsletter" }
[[step]]
update = { unsubscribe = "promotions" }
[[step]]
send = { template = "welcome", kind = "transactional", utm = { utm_source = "journey" }, data = { n = 2, tags = ["x"] } }
[[step]]
exit = true
"#;
    let expected = [
        Action::WaitUntil {
            at: LocalTime { hour: 7, minute: 5 },
            next: Next::Step(2),
        },
        Action::Update {
            change: Change::Attribute {
                path: "profile.welcomed".into(),
                value: serde_json::Value::Bool(true),
            },
            next: Next::Exit,
        },
        Action::Split {
            branches: vec![(1, Next::Step(1)), (3, Next::Exit)],
        },
        Action::Update {
            change: Change::Subscribe("newsletter".into()),
            next: Next::Step(4),
        },
        Action::Update {
            change: Change::Unsubscribe("promotions".into()),
            next: Next::Step(5),
        },
        Action::Send {
            template: "welcome".into(),
            kind: CampaignKind::Transactional,
            topic: None,
            utm: BTreeMap::from([("utm_source".into(), "journey".into())]),
            data: serde_json::json!({ "n": 2, "tags": ["x"] })
                .as_object()
                .unwrap()
                .clone(),
            next: Next::Step(6),
        },
        Action::Exit,
    ];
    assert_eq!(actions(steps), expected);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let errors = errors("name = \"x\"\n\nentry = once per 7d");
    assert_eq!(
        errors,
        ["line 3, column 9: string values must be quoted, expected literal string"]
    );
}

#[test]
fn an_unknown_key_is_named() {
    let top = errors(&format!(
        "{HEAD}tigger = 1\ndescripton = \"x\"\n[[step]]\nwait = \"1x\""
    ));
    assert_eq!(top.len(), 3, "{top:#?}");
    assert!(
        top[0].starts_with("line 5, column 1: unknown field `tigger`, expected one of"),
        "{}",
        top[0]
    );
    assert!(
        top[1].starts_with("line 6, column 1: unknown field `descripton`"),
        "{}",
        top[1]
    );
    assert!(
        top[2].starts_with("step 1 `wait`: `1x` is not a duration"),
        "{}",
        top[2]
    );
    let in_step = step_error("[[step]]\nsedn = { template = \"welcome\" }");
    assert!(
        in_step.starts_with("step 1: unknown field `sedn`, expected one of `id`, `wait`"),
        "{in_step}"
    );
    let in_action = step_error("[[step]]\nsend = { templat = \"welcome\" }");
    assert!(
        in_action.starts_with("step 1 `send`: unknown field `templat`"),
        "{in_action}"
    );
}

#[test]
fn top_level_problems_name_their_key() {
    let cases = [
        (
            "name = \"Cart Reminder\"",
            "name: `Cart Reminder` has the character `C`; a name is made of a-z, 0-9, `-`, `_` and `.`",
        ),
        ("name = \"\"", "name: the name is empty"),
        (
            "from = { email = \"shop.example.com\" }",
            "from `email`: invalid email address 'shop.example.com': it has no '@'",
        ),
        (
            "from = { email = \"a@b.example\", reply_to = \"x@\" }",
            "from `reply_to`: invalid email address 'x@': the domain is not a valid host name",
        ),
        (
            "entry = \"twice\"",
            "entry: `twice` is not an entry rule: write \"once\", \"every time\" or \"once per 7d\"",
        ),
        (
            "entry = \"once per 0d\"",
            "entry: `0d` is not longer than zero",
        ),
        (
            "goal = { event = \"cart_add\" }",
            "goal `event`: `cart_add` is also the trigger's event; the goal must be another kind of event",
        ),
        (
            "trigger = { event = \"purchase\", min_amount = 1.005 }",
            "trigger `min_amount`: `1.005` has more than two decimals",
        ),
        (
            "trigger = { date = \"attr.birthday\" }",
            "trigger `at`: missing: a `date` trigger needs the local time to start at, such as \"09:00\"",
        ),
        (
            "trigger = { date = \"birthday\", at = \"9:00\" }",
            "trigger `date`: `birthday` is not a date field: write \"created_at\" or \"attr.NAME\"",
        ),
        (
            "trigger = { subscribed = \"news\", category = \"shoes\" }",
            "trigger `category`: filters events: only an `event` trigger takes it",
        ),
        (
            "trigger = { subscribed = \"news\", recipient_created = true }",
            "trigger: needs exactly one of `event`, `recipient_created`, `subscribed`, `enters_segment` or `date` (found `recipient_created`, `subscribed`)",
        ),
        (
            "trigger = { enters_segment = 'country = \"US\"' }",
            "trigger `enters_segment`: at 1:9: ",
        ),
    ];
    for (line, expected) in cases {
        let key = line.split(' ').next().unwrap();
        let head: String = HEAD
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = format!("{head}{line}\n[[step]]\nexit = true");
        let errors = errors(&text);
        let found = errors.iter().any(|e| e.starts_with(expected));
        assert!(found, "{line}: expected {expected}, got {errors:#?}");
    }
}

#[test]
fn a_missing_key_or_step_list_is_reported() {
    let errors = errors("description = \"nothing else\"");
    assert_eq!(
        errors,
        [
            "name: missing",
            "from: missing",
            "trigger: missing",
            "step: no steps: an automation needs at least one [[step]]",
        ]
    );
}

#[test]
fn step_problems_name_the_step_and_key() {
    let cases = [
        (
            "wait = \"4x\"",
            "step 1 `wait`: `4x` is not a duration: write digits and a unit, min, h, d or w (30min, 4h, 1d, 2w)",
        ),
        (
            "wait = \"0h\"",
            "step 1 `wait`: `0h` is not longer than zero",
        ),
        (
            "wait = \"99999w\"",
            "step 1 `wait`: `99999w` is longer than 200 years",
        ),
        (
            "wait_until = \"24:00\"",
            "step 1 `wait_until`: `24:00` is not a time of day: write HH:MM, 24-hour (09:00, 17:30)",
        ),
        (
            "wait_for = { event = \"purchase\", timeout = \"0min\" }",
            "step 1 `wait_for`: timeout `0min` is not longer than zero",
        ),
        (
            "wait_for = { event = \"\", timeout = \"1h\" }",
            "step 1 `wait_for`: event is empty",
        ),
        (
            "if = 'country == 5'",
            "step 1 `if`: at 1:12: 'country' is text",
        ),
        ("if = 'segment(\"vip\") and'", "step 1 `if`: at 1:"),
        (
            "split = [{ weight = 1, goto = \"exit\" }]",
            "step 1 `split`: needs at least two branches",
        ),
        (
            "split = [{ weight = 0, goto = \"exit\" }, { weight = 1, goto = \"exit\" }]",
            "step 1 `split`: branch 1: weight 0 is not a positive whole number",
        ),
        (
            "split = [{ weight = 1, goto = \"exit\" }, { weight = 1, goto = \"nowhere\" }]",
            "step 1 `split`: branch 2: unknown step `nowhere`",
        ),
        (
            "send = { template = \"\" }",
            "step 1 `send`: template is empty",
        ),
        (
            "send = { template = \"welcome\", kind = \"promo\" }",
            "step 1 `send`: kind `promo` is not a kind of mail: write \"marketing\" or \"transactional\"",
        ),
        (
            "send = { template = \"welcome\", data = { ratio = nan } }",
            "step 1 `send`: data JSON cannot hold inf or nan",
        ),
        (
            "update = { attribute = \"2fast\", value = 1 }",
            "step 1 `update`: attribute `2fast` is not an attribute name: letters, digits and `_`, parts joined by `.`",
        ),
        (
            "update = { attribute = \"seen\" }",
            "step 1 `update`: value missing: the value to set",
        ),
        (
            "update = { subscribe = \"a\", unsubscribe = \"b\" }",
            "step 1 `update`: needs exactly one of `attribute` (with `value`), `subscribe` or `unsubscribe`",
        ),
        ("exit = false", "step 1 `exit`: can only be true"),
        (
            "wait = \"1h\"\ngoto = \"exit\"\nthen = \"exit\"",
            "step 1 `then`: not for a `wait` step",
        ),
        (
            "split = [{ weight = 1, goto = \"exit\" }, { weight = 1, goto = \"exit\" }]\ngoto = \"exit\"",
            "step 1 `goto`: not for a `split` step; each branch has its own `goto`",
        ),
        (
            "id = \"exit\"\nexit = true",
            "step 1 `id`: `exit` is reserved: `goto = \"exit\"` ends the automation",
        ),
        (
            "id = \"x\"",
            "step 1: no action: a step needs one of `wait`, `wait_until`, `wait_for`, `if`, `split`, `send`, `update` or `exit`",
        ),
        (
            "wait = \"1h\"\nexit = true",
            "step 1: `wait` and `exit` in one step: a step has exactly one action; give each its own [[step]]",
        ),
    ];
    for (body, expected) in cases {
        let error = step_error(&format!("[[step]]\n{body}"));
        assert!(
            error.starts_with(expected),
            "{body}:\n  expected {expected}\n  got      {error}"
        );
    }
}

#[test]
fn targets_must_exist_and_ids_be_unique() {
    let unknown = step_error(
        "[[step]]\nid = \"reminder\"\nwait = \"1h\"\n[[step]]\nwait = \"1h\"\ngoto = \"remnder\"",
    );
    assert_eq!(
        unknown,
        "step 2 `goto`: unknown step `remnder` (did you mean `reminder`?)"
    );
    let repeated =
        step_error("[[step]]\nid = \"a\"\nwait = \"1h\"\n[[step]]\nid = \"a\"\nexit = true");
    assert_eq!(repeated, "step 2 `id`: `a` is already the id of step 1");
    let generated = step_error("[[step]]\nid = \"step-2\"\nwait = \"1h\"\n[[step]]\nexit = true");
    assert_eq!(
        generated,
        "step 1 `id`: `step-2` is the id step 2 has without one; choose another"
    );
    let own_number = actions("[[step]]\nid = \"step-1\"\nwait = \"1h\"\n[[step]]\nexit = true");
    assert_eq!(own_number.len(), 2);
}

#[test]
fn a_cycle_is_refused() {
    let steps = r#"
[[step]]
send = { template = "welcome" }
[[step]]
id = "reminder"
wait = "1d"
[[step]]
if = 'segment("vip")'
else = "exit"
[[step]]
send = { template = "welcome" }
goto = "reminder"
"#;
    assert_eq!(
        step_error(steps),
        "step 4 `goto`: leads back to step 2 (`reminder`), a cycle"
    );
    let to_itself = step_error("[[step]]\nid = \"again\"\nwait = \"1d\"\ngoto = \"again\"");
    assert_eq!(
        to_itself,
        "step 1 `goto`: leads back to step 1 (`again`), a cycle"
    );
}

#[test]
fn going_back_to_a_step_that_does_not_return_is_no_cycle() {
    let steps = r#"
[[step]]
wait = "1d"
goto = "last"
[[step]]
id = "final"
send = { template = "welcome" }
goto = "exit"
[[step]]
id = "last"
wait = "1h"
goto = "final"
"#;
    let found = actions(steps);
    assert!(
        matches!(
            found[2],
            Action::Wait {
                next: Next::Step(1),
                ..
            }
        ),
        "{found:?}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
name = "Bad Name"
from = { email = "nobody" }
trigger = { event = "cart_add" }

[[step]]
wait = "soon"

[[step]]
sedn = { template = "x" }

[[step]]
send = { template = "welcome" }
goto = "nowhere"
"#;
    let errors = errors(text);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_eq!(
        errors[..3],
        [
            "name: `Bad Name` has the character `B`; a name is made of a-z, 0-9, `-`, `_` and `.`",
            "from `email`: invalid email address 'nobody': it has no '@'",
            "step 1 `wait`: `soon` is not a duration: write digits and a unit, min, h, d or w (30min, 4h, 1d, 2w)",
        ]
    );
    assert!(
        errors[3].starts_with("step 2: unknown field `sedn`"),
        "{}",
        errors[3]
    );
    assert_eq!(errors[4], "step 3 `goto`: unknown step `nowhere`");
    let shown = parse(text).unwrap_err().to_string();
    assert_eq!(shown.lines().count(), 5, "{shown}");
}

#[test]
fn check_reports_every_name_the_store_does_not_hold() {
    let text = r#"
name = "t"
from = { email = "a@b.example" }
trigger = { event = "cart_ad" }
goal = { event = "purchase" }
[[step]]
wait_for = { event = "purchse", timeout = "1h" }
[[step]]
if = 'segment("vip") or segment("vips")'
[[step]]
send = { template = "welcom", topic = "newsletter" }
[[step]]
send = { template = "welcome", topic = "news" }
[[step]]
update = { unsubscribe = "promotion" }
"#;
    let def = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let errors = check(&def, &known()).unwrap_err().to_string();
    let expected = [
        "trigger `event`: unknown event kind `cart_ad` (did you mean `cart_add`?)",
        "step 1 `wait_for`: unknown event kind `purchse` (did you mean `purchase`?)",
        "step 2 `if`: unknown segment `vips` (did you mean `vip`?)",
        "step 3 `send`: unknown template `welcom` (did you mean `welcome`?)",
        "step 4 `send`: unknown topic `news`",
        "step 5 `update`: unknown topic `promotion` (did you mean `promotions`?)",
    ];
    assert_eq!(errors.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn check_reads_the_segments_of_an_enters_segment_trigger() {
    let text = r#"
name = "t"
from = { email = "a@b.example" }
trigger = { enters_segment = 'segment("lapsed") and country == "US"' }
[[step]]
exit = true
"#;
    let def = parse(text).unwrap();
    let error = check(&def, &known()).unwrap_err().to_string();
    assert_eq!(error, "trigger `enters_segment`: unknown segment `lapsed`");
}

#[test]
fn an_event_matches_its_kind_and_every_filter() {
    let filter = EventMatch {
        kind: "purchase".into(),
        sku: Some("A-1".into()),
        category: Some("shoes".into()),
        min_amount_cents: Some(5_000),
    };
    assert!(filter.matches("purchase", Some("A-1"), Some("shoes"), Some(5_000)));
    assert!(!filter.matches("view", Some("A-1"), Some("shoes"), Some(5_000)));
    assert!(!filter.matches("purchase", Some("B-2"), Some("shoes"), Some(5_000)));
    assert!(!filter.matches("purchase", Some("A-1"), None, Some(5_000)));
    assert!(!filter.matches("purchase", Some("A-1"), Some("shoes"), Some(4_999)));
    assert!(!filter.matches("purchase", Some("A-1"), Some("shoes"), None));
    assert!(event("view").matches("view", None, None, None));
}

#[test]
fn a_local_time_is_a_naive_time() {
    let at = LocalTime {
        hour: 9,
        minute: 30,
    };
    assert_eq!(
        at.naive(),
        chrono::NaiveTime::from_hms_opt(9, 30, 0).unwrap()
    );
}
