//! End-to-end tests of `kefu kb test`: the shipped stories pass through the real binary, a story
//! whose expectation is wrong fails with a readable diff (exit 1), and a malformed story file is
//! refused with its file, line and fix (exit 2).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

use std::path::Path;
use std::process::{Command, Output};

/// `kefu kb test ARGS…` from the repository root, without the caller's Kefu configuration.
fn kb_test(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
    cmd.args(["kb", "test"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KEFU_ENV")
        .env_remove("KEFU_CONFIG_DIR");
    for (key, _) in std::env::vars() {
        if key.starts_with("KEFU__") {
            cmd.env_remove(key);
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run kefu kb test");
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_shipped_stories_all_pass() {
    let (code, out, err) = kb_test(&[]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let summary = out.lines().last().unwrap();
    let passed: usize = summary
        .trim_start_matches("stories: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed >= 60, "{summary}");
    assert!(summary.ends_with(" 0 failed"), "{summary}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn a_story_whose_expectation_is_wrong_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "wrong.toml",
        r#"
[[story]]
name = "passes"

[[story.turn]]
user = "提币失败了"
answer = "withdrawal.failed"

[[story]]
name = "expects the wrong topic"

[[story.turn]]
user = "hello"

[[story.turn]]
user = "my withdrawal failed"
answer = "deposit.how"
phase = "idle"
"#,
    );
    let (code, out, err) = kb_test(&[&file]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("PASS  ") && out.contains(": passes"), "{out}");
    assert!(
        out.contains("FAIL  ") && out.contains(": expects the wrong topic"),
        "{out}"
    );
    assert!(
        out.contains("turn 2 (line 15, user: my withdrawal failed)"),
        "{out}"
    );
    assert!(
        out.contains("- expected the answer of deposit.how"),
        "{out}"
    );
    assert!(out.contains("- expected phase idle"), "{out}");
    assert!(
        out.contains("+ got phase awaiting_feedback, lang en"),
        "{out}"
    );
    assert!(out.contains("+ bot: "), "{out}");
    assert!(out.contains("stories: 1 passed, 1 failed"), "{out}");
}

#[test]
fn a_malformed_story_file_is_refused_with_its_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let typo = write(
        dir.path(),
        "typo.toml",
        "[[story]]\nname = \"typo\"\n\n[[story.turn]]\nusr = \"hello\"\n",
    );
    let (code, out, err) = kb_test(&[&typo]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains(&format!("{typo}:5: unknown field `usr`")),
        "{err}"
    );
    assert!(err.contains("fix:"), "{err}");

    let unknown = write(
        dir.path(),
        "unknown.toml",
        "[[story]]\nname = \"x\"\n\n[[story.turn]]\nuser = \"hi\"\nanswer = \"no.such.intent\"\n",
    );
    let (code, _, err) = kb_test(&[&unknown]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{unknown}:4: intent \"no.such.intent\" is not in the KB; fix:"
        )),
        "{err}"
    );
}
