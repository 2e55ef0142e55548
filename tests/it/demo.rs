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
    let summary = summary_line(&stdout);
    assert!(
        stdout.contains("open http://127.0.0.1:8080/app and sign in as demo@mailcast.example"),
        "the demo ends with how to open the dashboard: {stdout}"
    );

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

/// The first `n` fixture recipients, with all products and no events: a small demo.
/// The demo's summary: `demo: campaign '…' done: audience …`.
fn summary_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|line| line.starts_with("demo: campaign"))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"))
}

fn small_fixtures(root: &Path, dir: &Path, n: usize) {
    let recipients = std::fs::read_to_string(root.join("fixtures/recipients.csv")).unwrap();
    let head: Vec<&str> = recipients.lines().take(n + 1).collect();
    std::fs::write(dir.join("recipients.csv"), head.join("\n") + "\n").unwrap();
    std::fs::copy(root.join("fixtures/products.csv"), dir.join("products.csv")).unwrap();
    std::fs::write(dir.join("events.jsonl"), "").unwrap();
}

fn demo_with_dkim(root: &Path, dir: &Path, key: &str) -> std::process::Output {
    std::fs::write(dir.join("dkim.key"), key).unwrap();
    Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("demo")
        .arg("--fixtures")
        .arg(dir.join("small"))
        .arg("--template")
        .arg(root.join("templates/weekly-picks"))
        .args([
            "--dkim-selector",
            "mc1",
            "--dkim-domain",
            "shop.example.com",
        ])
        .arg("--dkim-key")
        .arg(dir.join("dkim.key"))
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("MAILCAST_SMTP_URL")
        .output()
        .unwrap()
}

#[test]
fn a_dkim_key_given_to_the_worker_signs_every_message() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("small")).unwrap();
    small_fixtures(root, &dir.path().join("small"), 20);

    let bad = demo_with_dkim(root, dir.path(), "not a key");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a bad key is refused");
    assert!(stderr.contains("DKIM key"), "{stderr}");

    let output = demo_with_dkim(
        root,
        dir.path(),
        "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let mut signed = 0;
    for entry in std::fs::read_dir(dir.path().join("outbox")).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let signature: String = message
            .header_raw("DKIM-Signature")
            .expect("every message is signed")
            .split_whitespace()
            .collect();
        assert!(signature.contains("d=shop.example.com;"), "{signature}");
        assert!(signature.contains("s=mc1;"), "{signature}");
        assert!(
            signature.to_lowercase().contains("list-unsubscribe"),
            "{signature}"
        );
        signed += 1;
    }
    assert!(signed > 0, "the demo sent something");
}

#[test]
fn the_demo_runs_from_any_directory_on_its_built_in_fixtures_and_template() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("demo")
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let expected = expected_recipients(&root.join("fixtures"));
    let summary = summary_line(&stdout);
    assert!(
        summary.contains(&format!("sent {}", expected.len())),
        "{summary}"
    );
    let messages = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count();
    assert_eq!(
        messages,
        expected.len(),
        "one message per expected recipient"
    );
}

#[test]
fn a_relay_that_refuses_connections_is_one_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let relay = format!("smtp://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["demo", "--smtp", &relay])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("MAILCAST_SMTP_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("cannot reach") && lines[0].contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn a_worker_whose_relay_refuses_connections_says_so_once_and_keeps_running() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let relay = format!("smtp://user:S3cret@127.0.0.1:{port}");
    let database = dir.path().join("worker.db");
    let mut worker = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["worker", "--smtp", &relay, "--database"])
        .arg(&database)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("MAILCAST_SMTP_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = BufReader::new(worker.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("worker started")) {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the worker did not start: {seen:?}"));
        seen.push(line);
    }
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker keeps running"
    );
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    assert!(worker.wait().unwrap().success());
    seen.extend(lines.try_iter());
    let errors: Vec<&String> = seen.iter().filter(|l| l.contains("cannot reach")).collect();
    assert_eq!(errors.len(), 1, "{seen:#?}");
    assert!(
        errors[0].contains(&format!("127.0.0.1:{port}")),
        "{errors:?}"
    );
    assert!(!errors[0].contains("S3cret"), "{errors:?}");
}

/// A local port nothing listens on: bound once by the system, then let go.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `mailcast demo --automations` as the README gives it, in a fresh directory: the
/// four example automations run on a simulated clock, every message they sent is in
/// outbox/ and goes to a fixture recipient subscribed to the newsletter, and the summary
/// shows each automation and its sending steps.
#[test]
fn the_automation_demo_leaves_each_automations_messages_in_the_outbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["--database", "automations-demo.db", "demo", "--automations"])
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
    let sent_by_step = |step: &str| -> usize {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("v1") && l.split_whitespace().nth(1) == Some(step))
            .unwrap_or_else(|| panic!("no line for step {step}:\n{stdout}"));
        line.split_whitespace().nth(4).unwrap().parse().unwrap()
    };
    let steps = [
        "reminder",
        "second-reminder",
        "gift",
        "welcome",
        "tips",
        "picks",
        "offer",
        "last-nudge",
    ];
    let sent: usize = steps.iter().map(|s| sent_by_step(s)).sum();
    for step in ["reminder", "gift", "welcome", "offer"] {
        assert!(sent_by_step(step) > 0, "{step} sent nothing:\n{stdout}");
    }
    let expected = expected_recipients(&root.join("fixtures"));
    let mut subjects = std::collections::BTreeSet::new();
    let mut messages = 0;
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
        assert!(
            expected.contains_key(&to),
            "{to} is not subscribed to the newsletter"
        );
        let subject = message.subject().unwrap_or_default();
        subjects.insert(
            subject
                .split(',')
                .next_back()
                .unwrap_or_default()
                .trim()
                .to_string(),
        );
        messages += 1;
    }
    assert_eq!(
        messages, sent,
        "outbox/ holds what the steps sent:\n{stdout}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("you left something in your cart")),
        "{subjects:?}"
    );
}
