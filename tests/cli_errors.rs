//! Bad input at the edge gives one line naming the problem: no panic, no backtrace.

use std::process::Command;

fn mailcast(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("MAILCAST_SMTP_URL")
        .output()
        .expect("run mailcast");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_one_line_error(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    assert!(errors[0].contains(needle), "'{needle}' not in: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_postgres_database_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(
        &[
            "--database",
            "postgres://nobody:secret@127.0.0.1:1/nothing",
            "migrate",
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(
        &stderr,
        "cannot open database postgres://nobody:***@127.0.0.1:1/nothing",
    );
    assert!(!stderr.contains("secret"), "password leaked: {stderr}");
}

#[test]
fn a_sqlite_file_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(&["--database", "/no/such/dir/m.db", "migrate"], dir.path());
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "cannot open database /no/such/dir/m.db");
}

#[test]
fn an_unsupported_database_url_is_refused_with_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(
        &["--database", "mysql://localhost/x", "migrate"],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "use postgres://");
}

#[test]
fn a_missing_import_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(&["import", "recipients", "nope.csv"], dir.path());
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "nope.csv");
}

#[test]
fn a_bad_smtp_url_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(&["worker", "--smtp", "http://mail.example.com"], dir.path());
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "bad SMTP URL 'http://mail.example.com'");
}

#[test]
fn campaign_stats_lives_under_campaign_and_names_an_unknown_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = mailcast(&["campaign", "stats", "nosuch"], dir.path());
    assert_ne!(code, 0, "{stdout}");
    assert_one_line_error(&stderr, "no campaign named 'nosuch'");
    let (_, help, _) = mailcast(&["campaign", "--help"], dir.path());
    assert!(help.contains("stats"), "{help}");
    let (_, top, _) = mailcast(&["--help"], dir.path());
    assert!(
        !top.lines().any(|l| l.trim_start().starts_with("stats")),
        "the old top-level command is hidden: {top}"
    );
}

#[test]
fn a_bad_reply_to_address_is_named_and_no_campaign_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/weekly-picks");
    let (code, _, stderr) = mailcast(&["template", "load", template], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let create = |reply_to: &str| {
        mailcast(
            &[
                "campaign",
                "create",
                "spring",
                "--template",
                "weekly-picks",
                "--from-email",
                "news@shop.example.com",
                "--reply-to",
                reply_to,
            ],
            dir.path(),
        )
    };
    let (code, _, stderr) = create("not an address");
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "--reply-to");
    let (code, stdout, stderr) = create("help@shop.example.com");
    assert_eq!(code, 0, "the name 'spring' is still free: {stdout}{stderr}");
}
