//! The README's demo command on a fresh directory: a summary, and one message per
//! expected recipient in outbox/, each with that recipient's own name and address.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Recipients in the fixtures subscribed to `newsletter`: address → first name.
fn expected_recipients(fixtures: &Path) -> HashMap<String, String> {
    let mut reader = csv::Reader::from_path(fixtures.join("recipients.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (email, first, topics) = (column("email"), column("first_name"), column("topics"));
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r[topics].split(';').any(|t| t == "newsletter"))
        .map(|r| (r[email].to_lowercase(), r[first].to_string()))
        .collect()
}

#[test]
fn the_demo_sends_one_personal_message_to_each_subscribed_fixture_recipient() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("demo")
        .arg("--fixtures")
        .arg(root.join("fixtures"))
        .arg("--template")
        .arg(root.join("templates/weekly-picks"))
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("MAILCAST_SMTP_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout.lines().last().unwrap();
    assert!(summary.starts_with("demo: campaign"), "{summary}");

    let expected = expected_recipients(&root.join("fixtures"));
    assert!(
        summary.contains(&format!("sent {}", expected.len())),
        "{summary}"
    );
    let mut seen = HashMap::new();
    for entry in std::fs::read_dir(dir.path().join("outbox")).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let to = message
            .to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_lowercase();
        let first_name = expected
            .get(&to)
            .unwrap_or_else(|| panic!("{to} was not expected"));
        let html = message.body_html(0).unwrap();
        assert!(
            html.contains(first_name.as_str()),
            "{to}: no '{first_name}' in the message"
        );
        *seen.entry(to).or_insert(0) += 1;
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "every expected recipient has a message"
    );
    assert!(seen.values().all(|n| *n == 1), "nobody has two");
}
