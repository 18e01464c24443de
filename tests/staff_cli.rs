//! End-to-end tests of `kefu staff`: the built binary, run from the repository root with no
//! inherited `KEFU*` variable and a SQLite file of its own, manages the console's accounts; what
//! it stored is then checked through the service, as the console would use it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use kefu_core::SupportHours;
use kefu_service::{FloodLimit, LoginOutcome, Service, ServiceConfig, StaffRole};
use serde_json::Value;

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A database of its own, in a temporary directory.
struct Deployment {
    _dir: tempfile::TempDir,
    url: String,
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        Deployment { _dir: dir, url }
    }

    /// `kefu ARGS…` with `env` set and `stdin` piped in (closed at its end).
    fn kefu(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KEFU__DATABASE__URL", &self.url);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kefu");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A binary that does not read its stdin closes the pipe: that shows in its exit code.
        let _ = pipe.write_all(stdin.as_bytes());
        drop(pipe);
        let out = child.wait_with_output().expect("wait for kefu");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kefu staff ARGS…` expected to succeed.
    fn ok(&self, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["staff"];
        all.extend_from_slice(args);
        let run = self.kefu(&all, &[], stdin);
        assert_eq!(run.code, 0, "kefu {all:?}: {run:?}");
        run
    }

    /// `kefu staff ARGS…` expected to be refused as bad input (exit 2).
    fn refused(&self, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["staff"];
        all.extend_from_slice(args);
        let run = self.kefu(&all, &[], stdin);
        assert_eq!(run.code, 2, "kefu {all:?}: {run:?}");
        run
    }

    /// `kefu staff list --json`.
    fn accounts(&self) -> Vec<Value> {
        let run = self.ok(&["list", "--json"], "");
        match serde_json::from_str(run.stdout.trim()).expect("list --json prints JSON") {
            Value::Array(rows) => rows,
            other => panic!("an array: {other}"),
        }
    }

    fn account(&self, name: &str) -> Option<Value> {
        self.accounts().into_iter().find(|a| a["name"] == name)
    }

    /// The service on this database, as the console opens it.
    async fn service(&self) -> Service {
        let store = kefu_store::Store::connect(&self.url).await.expect("store");
        let config = ServiceConfig::new(
            SupportHours::always(),
            FloodLimit {
                max_messages: 100,
                window: Duration::from_secs(10),
            },
        );
        Service::without_nlu(store, config)
    }
}

async fn signs_in(s: &Service, name: &str, password: &str) -> bool {
    match s
        .login(name, password, "127.0.0.1", Utc::now())
        .await
        .unwrap()
    {
        LoginOutcome::LoggedIn(_) => true,
        LoginOutcome::Refused => false,
        LoginOutcome::Throttled { .. } => panic!("throttled"),
    }
}

#[tokio::test]
async fn staff_accounts_are_managed_from_the_command_line() {
    let d = Deployment::new();
    assert!(d.accounts().is_empty());
    let empty = d.ok(&["list"], "");
    assert!(empty.stdout.contains("no staff accounts"), "{empty:?}");

    // The password comes from stdin, or from KEFU_STAFF_PASSWORD; it is never printed.
    let added = d.ok(&["add", "alice", "--role", "lead"], "correct horse\n");
    assert!(
        added.stdout.contains("alice") && added.stdout.contains("lead"),
        "{added:?}"
    );
    let bob = d.kefu(
        &["staff", "add", "bob"],
        &[("KEFU_STAFF_PASSWORD", "battery staple")],
        "",
    );
    assert_eq!(bob.code, 0, "{bob:?}");
    for run in [&added, &bob] {
        for secret in ["correct horse", "battery staple", "$argon2"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{run:?}"
            );
        }
    }
    let accounts = d.accounts();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    let alice = d.account("alice").unwrap();
    assert_eq!(alice["role"], "lead");
    assert_eq!(alice["telegram_id"], Value::Null);
    assert_eq!(alice["discord_id"], Value::Null);
    assert!(
        alice["created_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    assert_eq!(
        d.account("bob").unwrap()["role"],
        "agent",
        "the default role"
    );
    let table = d.ok(&["list"], "");
    assert!(
        table.stdout.contains("alice") && table.stdout.contains("bob"),
        "{table:?}"
    );
    {
        let s = d.service().await;
        assert!(signs_in(&s, "alice", "correct horse").await);
        assert!(signs_in(&s, "bob", "battery staple").await);
        assert_eq!(
            s.staff_account("alice").await.unwrap().unwrap().role,
            StaffRole::Lead
        );
        s.store().close().await;
    }

    // Refusals name the problem and the fix.
    let short = d.refused(&["add", "carol"], "short\n");
    assert!(
        short.stderr.contains("at least 8 characters") && short.stderr.contains("fix:"),
        "{short:?}"
    );
    assert!(d.account("carol").is_none());
    let none = d.refused(&["add", "carol"], "");
    assert!(none.stderr.contains("KEFU_STAFF_PASSWORD"), "{none:?}");
    let taken = d.refused(&["add", "alice"], "another password\n");
    assert!(taken.stderr.contains("exists already"), "{taken:?}");
    let role = d.kefu(
        &["staff", "add", "carol", "--role", "admin"],
        &[],
        "long enough\n",
    );
    assert_eq!(role.code, 2, "{role:?}");
    assert!(d.account("carol").is_none());

    // Linking to the Telegram and Discord users they are.
    d.ok(&["link", "alice", "--telegram", "12345"], "");
    d.ok(&["link", "alice", "--discord", "987654321012345678"], "");
    let alice = d.account("alice").unwrap();
    assert_eq!(alice["telegram_id"], "12345");
    assert_eq!(alice["discord_id"], "987654321012345678");
    let taken = d.refused(&["link", "bob", "--telegram", "12345"], "");
    assert!(
        taken.stderr.contains("linked to alice")
            && taken
                .stderr
                .contains("kefu staff link alice --unlink telegram"),
        "{taken:?}"
    );
    let bad = d.refused(&["link", "bob", "--telegram", "@bob"], "");
    assert!(bad.stderr.contains("fix:"), "{bad:?}");
    let nobody = d.refused(&["link", "nobody", "--discord", "1"], "");
    assert!(nobody.stderr.contains("no staff account"), "{nobody:?}");
    d.refused(&["link", "bob"], "");
    d.refused(&["link", "bob", "--telegram", "1", "--discord", "2"], "");
    {
        let s = d.service().await;
        assert_eq!(
            s.staff_by_platform_id("telegram", "12345")
                .await
                .unwrap()
                .map(|a| a.name),
            Some("alice".to_owned())
        );
        s.store().close().await;
    }
    d.ok(&["link", "alice", "--unlink", "telegram"], "");
    let alice = d.account("alice").unwrap();
    assert_eq!(alice["telegram_id"], Value::Null);
    assert_eq!(alice["discord_id"], "987654321012345678");

    // A personal API token, printed once.
    let issued = d.ok(&["token", "alice"], "");
    let token = issued.stdout.trim().to_owned();
    assert_eq!(token.len(), 64, "{issued:?}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    d.refused(&["token", "nobody"], "");

    // A new password replaces the old one.
    d.ok(&["passwd", "alice"], "new password 1\r\n");
    d.refused(&["passwd", "nobody"], "new password 1\n");
    let short = d.refused(&["passwd", "alice"], "1234567\n");
    assert!(short.stderr.contains("at least 8 characters"), "{short:?}");
    {
        let s = d.service().await;
        assert_eq!(
            s.staff_by_api_token(&token).await.unwrap().map(|a| a.name),
            Some("alice".to_owned())
        );
        assert!(!signs_in(&s, "alice", "correct horse").await);
        assert!(signs_in(&s, "alice", "new password 1").await);
        s.store().close().await;
    }

    // Removing an account.
    let removed = d.ok(&["remove", "bob"], "");
    assert!(removed.stdout.contains("bob"), "{removed:?}");
    assert!(d.account("bob").is_none());
    let again = d.refused(&["remove", "bob"], "");
    assert!(again.stderr.contains("kefu staff list"), "{again:?}");
    let names: Vec<Value> = d
        .accounts()
        .into_iter()
        .map(|a| a["name"].clone())
        .collect();
    assert_eq!(names, ["alice"]);
}

#[test]
fn the_help_says_where_the_password_comes_from() {
    let d = Deployment::new();
    let help = d.kefu(&["staff", "add", "--help"], &[], "");
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("KEFU_STAFF_PASSWORD"), "{help:?}");
    assert!(help.stdout.contains("stdin"), "{help:?}");
}
