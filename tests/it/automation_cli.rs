//! `mailcast automation …` as a marketer runs it: the shipped examples load, a file
//! with problems is refused naming each, and list, show, pause, resume and stats say
//! what is there.

use std::path::Path;
use std::process::Command;

fn mailcast(db: &Path, args: &[&str]) -> (i32, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(db)
        .args(args)
        .current_dir(root)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run mailcast");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(db: &Path, args: &[&str]) -> String {
    let (code, out, err) = mailcast(db, args);
    assert_eq!(code, 0, "mailcast {args:?}:\n{out}\n{err}");
    out
}

#[test]
fn the_shipped_automations_load_and_a_broken_file_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    ok(&db, &["import", "recipients", "fixtures/recipients.csv"]);
    for template in [
        "abandoned-cart",
        "birthday-offer",
        "welcome",
        "welcome-tips",
        "welcome-picks",
        "win-back",
    ] {
        ok(&db, &["template", "load", &format!("templates/{template}")]);
    }
    let loaded = ok(&db, &["automation", "load", "automations"]);
    assert_eq!(loaded.matches("version 1 loaded").count(), 4, "{loaded}");
    let again = ok(&db, &["automation", "load", "automations/welcome.toml"]);
    assert!(again.contains("unchanged (version 1)"), "{again}");

    let source = std::fs::read_to_string("automations/abandoned-cart.toml").unwrap();
    let file = dir.path().join("abandoned-cart.toml");
    let refused = |text: String| {
        std::fs::write(&file, text).unwrap();
        let (code, _, stderr) = mailcast(&db, &["automation", "load", file.to_str().unwrap()]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("refused, nothing stored"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    };
    let stderr = refused(
        source
            .replace("timeout = \"4h\"", "timeout = \"4hours\"")
            .replace("else = \"exit\"", "else = \"nowhere\""),
    );
    assert!(
        stderr.contains("step 1 `wait_for`") && stderr.contains("4hours"),
        "{stderr}"
    );
    assert!(
        stderr.contains("step 4 `else`") && stderr.contains("nowhere"),
        "{stderr}"
    );
    let stderr = refused(source.replace(
        "template = \"abandoned-cart\", kind",
        "template = \"abandoned-kart\", kind",
    ));
    assert!(
        stderr.contains("step 2 `send`") && stderr.contains("abandoned-kart"),
        "{stderr}"
    );

    let list = ok(&db, &["automation", "list"]);
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(
        list.lines().all(|l| l.contains(" v1 ")),
        "the refused file stored nothing: {list}"
    );
    let show = ok(&db, &["automation", "show", "abandoned-cart"]);
    assert!(show.contains("trigger: an event: cart_add\n"), "{show}");
    assert!(show.contains("entry:   once per 7d\n"), "{show}");
    assert!(show.contains("1. wait-for-purchase: wait up to 4h for purchase: when it comes exit, else step 2 (reminder)"), "{show}");
    ok(&db, &["automation", "pause", "birthday"]);
    assert!(ok(&db, &["automation", "list"]).contains("birthday                 paused"));
    ok(&db, &["automation", "resume", "birthday"]);
    let stats = ok(&db, &["automation", "stats", "welcome"]);
    assert!(
        stats.starts_with("welcome: entered 0, active 0, converted 0"),
        "{stats}"
    );
    let (code, _, stderr) = mailcast(&db, &["automation", "show", "nothing"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no automation named 'nothing'"), "{stderr}");
}
