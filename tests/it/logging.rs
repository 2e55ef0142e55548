//! Logs for machines as well as people: no colour codes when stderr is not a
//! terminal, and one JSON object per line with `--log-format json`.

use std::process::Command;

/// The demo in a fresh directory (it logs as its worker starts and finishes),
/// with stderr piped; returns stderr.
fn demo_stderr(extra_args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(extra_args)
        .arg("demo")
        .arg("--fixtures")
        .arg(root.join("fixtures"))
        .arg("--template")
        .arg(root.join("templates/weekly-picks"))
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("MAILCAST_SMTP_URL")
        .env_remove("MAILCAST_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.trim().is_empty(), "the demo logged nothing");
    stderr
}

#[test]
fn logs_into_a_pipe_carry_no_colour_codes() {
    let stderr = demo_stderr(&[], &[]);
    assert!(!stderr.contains("\x1b["), "{stderr}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("MAILCAST_LOG_FORMAT", "json")][..]),
    ] {
        let stderr = demo_stderr(args, env);
        for line in stderr.lines() {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(value["level"].is_string(), "{line}");
            assert!(value["fields"].is_object(), "{line}");
        }
    }
}
