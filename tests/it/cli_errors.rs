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

/// `mailcast` with `env` set on top of a clean environment.
fn mailcast_with(
    args: &[&str],
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailcast"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("MAILCAST_SMTP_URL")
        .env_remove("MAILCAST_LINK_KEYS");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run mailcast");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_does_not_show_secrets_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        (
            "MAILCAST_SMTP_URL",
            "smtp://alice:S3cretPass@mail.example.com",
        ),
        (
            "DATABASE_URL",
            "postgres://bob:DbPass@db.example.com/mailcast",
        ),
    ];
    for args in [&["worker", "--help"][..], &["run", "--help"], &["--help"]] {
        let (code, help, _) = mailcast_with(args, dir.path(), &env);
        assert_eq!(code, 0);
        assert!(help.contains("MAILCAST_SMTP_URL") || help.contains("DATABASE_URL"));
        assert!(
            !help.contains("S3cretPass") && !help.contains("DbPass"),
            "{args:?} shows a password:\n{help}"
        );
    }
}

#[test]
fn errors_about_bad_urls_do_not_show_their_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(
        &["--database", "postgres://bob:DbPass@[bad/x", "migrate"],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "postgres://bob:***@");
    assert!(!stderr.contains("DbPass"), "{stderr}");
    let (code, _, stderr) = mailcast(
        &["worker", "--smtp", "smtp://alice:S3cretPass@exa mple.com"],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "smtp://alice:***@");
    assert!(!stderr.contains("S3cretPass"), "{stderr}");
}

#[test]
fn an_empty_database_url_is_refused_instead_of_using_a_throwaway_database() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast_with(&["migrate"], dir.path(), &[("DATABASE_URL", "")]);
    assert_ne!(code, 0, "{stderr}");
    assert_one_line_error(&stderr, "the database URL is empty");
}

#[test]
fn an_error_that_carries_its_cause_does_not_repeat_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(&["serve", "--listen", "127.0.0.1:99999"], dir.path());
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "cannot listen on 127.0.0.1:99999");
    let line = stderr.lines().find(|l| l.contains("error")).unwrap();
    let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "'{part}' is said twice: {line}"
        );
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["migrate"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mailcast");
    // The reader goes away before mailcast writes, as `head` does after its lines.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace") && !stderr.contains("error"),
        "{stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert!(
        output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
        "{:?}",
        output.status
    );
}

/// The public development key, as `MAILCAST_LINK_KEYS` would list it.
fn development_key_spec() -> String {
    format!(
        "{}:{}",
        mailcast::links::DEVELOPMENT_KEY_ID,
        hex::encode(mailcast::links::INSECURE_DEVELOPMENT_KEY)
    )
}

#[test]
fn serving_the_development_key_on_a_public_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = development_key_spec();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("MAILCAST_LINK_KEYS", &spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mailcast");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("mailcast serve kept serving the development key on 0.0.0.0");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert_one_line_error(&stderr, "public development link key");
    let warnings = stderr.matches("lists the public development key").count();
    assert_eq!(warnings, 1, "warned once: {stderr}");
}

#[tokio::test]
async fn two_processes_on_one_database_sign_with_the_same_generated_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let (code, stdout, stderr) = mailcast(args, dir.path());
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
        stdout
    };
    run(&["fixtures", "generate", "--recipients", "3", "--out", "fx"]);
    run(&["import", "recipients", "fx/recipients.csv"]);
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/weekly-picks");
    run(&["template", "load", template]);
    run(&[
        "campaign",
        "create",
        "spring",
        "--template",
        "weekly-picks",
        "--from-email",
        "news@shop.example.com",
    ]);
    let csv = std::fs::read_to_string(dir.path().join("fx/recipients.csv")).unwrap();
    let email = csv.lines().nth(1).unwrap().split(',').next().unwrap();
    let tokens = |out: &str| {
        run(&[
            "preview",
            "--campaign",
            "spring",
            "--recipient",
            email,
            "--out",
            out,
        ]);
        let html = std::fs::read_dir(dir.path().join(out))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "html"))
            .unwrap();
        let html = std::fs::read_to_string(html).unwrap();
        html.split("localhost:8080/")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "/_-".contains(*c))
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
    };
    let first = tokens("p1");
    let second = tokens("p2");
    assert!(!first.is_empty());
    assert_eq!(first, second, "both processes signed with one ring");
    let store = mailcast::store::Store::open(&dir.path().join("mailcast.db").display().to_string())
        .await
        .unwrap();
    let ring = mailcast::links::KeyRing::stored(&store).await.unwrap();
    let token = first[0].split('/').nth(1).unwrap();
    assert!(
        mailcast::links::Token::verify(&ring, token).is_ok(),
        "{token}"
    );
    let development = mailcast::links::KeyRing::development();
    assert!(mailcast::links::Token::verify(&development, token).is_err());
    store.close().await;
}

#[test]
fn bounce_settings_that_cannot_work_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = mailcast(
        &["bounces", "receive", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "receiving bounces needs --bounce-domain");

    let (code, _, stderr) = mailcast(
        &[
            "bounces",
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--bounce-domain",
            "localhost",
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "bounce domain \"localhost\" is not a domain name");

    let (code, _, stderr) = mailcast(
        &[
            "bounces",
            "receive",
            "--listen",
            "nowhere",
            "--bounce-domain",
            "b.example.com",
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "cannot listen on nowhere for bounces");

    let (code, _, stderr) = mailcast(&["bounces", "show", "99"], dir.path());
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "no bounce with id 99");

    for (flag, value, says) in [
        (
            "--pause-complaint-rate",
            "150%",
            "'150%' is not between 0% and 100%",
        ),
        ("--pause-hard-bounce-rate", "lots", "'lots' is not a share"),
        (
            "--pause-min-delivered",
            "-1",
            "--pause-min-delivered must be 0 or more",
        ),
    ] {
        let setting = format!("{flag}={value}");
        let (code, _, stderr) = mailcast(
            &[
                "bounces",
                "receive",
                "--listen",
                "127.0.0.1:0",
                "--bounce-domain",
                "b.example.com",
                &setting,
            ],
            dir.path(),
        );
        assert_ne!(code, 0, "{flag} {value}");
        assert_one_line_error(&stderr, says);
        assert!(stderr.contains(flag), "{flag} not named: {stderr}");
    }
}

#[test]
fn a_campaign_experiment_with_bad_parts_names_each_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let db = db.to_str().unwrap();
    let template = dir.path().join("promo");
    std::fs::create_dir(&template).unwrap();
    std::fs::write(template.join("subject.txt"), "Hello").unwrap();
    std::fs::write(
        template.join("body.html"),
        r#"<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>"#,
    )
    .unwrap();
    let (code, _, stderr) = mailcast(
        &[
            "--database",
            db,
            "template",
            "load",
            template.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let create = |extra: &[&str]| {
        let mut args = vec![
            "--database",
            db,
            "campaign",
            "create",
            "ab",
            "--template",
            "promo",
            "--from-email",
            "news@shop.example.com",
        ];
        args.extend_from_slice(extra);
        mailcast(&args, dir.path())
    };
    let (code, _, stderr) = create(&["--variant", "subject=A", "--variant", "colour=red"]);
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "--variant 2: unknown field `colour`");
    let (code, _, stderr) = create(&[
        "--variant",
        "subject=A",
        "--variant",
        "subject=B; template=missing",
        "--test-share",
        "80%",
        "--holdout",
        "30%",
        "--metric",
        "likes",
    ]);
    assert_ne!(code, 0);
    for field in [
        "experiment.variants[1].template: no template named 'missing'",
        "experiment.holdout: test share 80% plus holdout 30% is over 100%",
        "experiment.metric: unknown metric `likes`",
    ] {
        assert!(stderr.contains(field), "{field} not in: {stderr}");
    }
    let (_, listed, _) = mailcast(&["--database", db, "campaign", "list"], dir.path());
    assert!(
        listed.contains("no campaigns yet"),
        "nothing created: {listed}"
    );
}

/// `mailcast user`: a one-time password that signs in (checked against the stored
/// Argon2id hash), a reset that ends it, and bad input refused in one line.
#[test]
fn dashboard_users_are_created_with_a_one_time_password_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = mailcast(
        &["user", "create", "Ada@Shop.example.com", "--role", "editor"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("user ada@shop.example.com (editor)"),
        "{stdout}"
    );
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a one-time password")
        .to_string();
    let stored = stored_hash(dir.path(), "ada@shop.example.com");
    assert!(mailcast::accounts::verify_password(&password, &stored));
    assert!(!mailcast::accounts::verify_password("guess", &stored));

    let (code, _, stderr) = mailcast(
        &["user", "create", "not-an-address", "--role", "viewer"],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "email:");

    let (code, stdout, _) = mailcast(&["user", "list"], dir.path());
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (code, _, stderr) = mailcast(&["user", "remove", "nobody@shop.example.com"], dir.path());
    assert_ne!(code, 0);
    assert_one_line_error(&stderr, "no user nobody@shop.example.com");
}

#[test]
fn a_short_password_from_standard_input_is_refused() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args([
            "user",
            "create",
            "ada@shop.example.com",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_one_line_error(&stderr, "password: must be at least 12 characters");
}

fn stored_hash(dir: &std::path::Path, email: &str) -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = mailcast::store::Store::open(&dir.join("mailcast.db").display().to_string())
            .await
            .unwrap();
        let (_, hash) = store.user_credentials(email).await.unwrap().unwrap();
        store.close().await;
        hash
    })
}
