//! End-to-end tests of how the `kefu` binary meets faults: configuration mistakes, database URLs
//! that can never work or a server that is not there, hostile bytes in users' input and names,
//! processes racing on one SQLite file, and staff actions on tickets in the wrong state (README
//! "Reliability" and "Configuration").
//!
//! Every test runs the built binary from the repository root with no inherited `KEFU*` variable
//! and a SQLite file of its own.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one run of the binary did.
struct Run {
    /// Exit code (-1 if killed by a signal or by the test's deadline).
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.elapsed,
            self.stdout(),
            self.stderr
        )
    }
}

/// How long any one run may take before the test gives up on it (and kills it).
const DEADLINE: Duration = Duration::from_secs(120);

/// A database of its own for each test, in a temporary directory that also holds any
/// configuration files the test writes.
struct Deployment {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("k.db");
        Deployment { dir, db }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.db.display())
    }

    /// `kefu ARGS…` from the repository root, with every inherited `KEFU*` variable removed, the
    /// test's database, and `env` on top.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KEFU__DATABASE__URL", self.url());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn spawn(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Running {
        let started = Instant::now();
        let mut child = self.command(args, env).spawn().expect("spawn kefu");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = stdin.to_vec();
        // A separate writer: the binary's output pipes are drained while it reads its input.
        let writer = std::thread::spawn(move || {
            // A binary that exits early closes the pipe: that shows in its exit code, not here.
            let _ = pipe.write_all(&input);
        });
        let mut out = child.stdout.take().expect("stdout is piped");
        let mut err = child.stderr.take().expect("stderr is piped");
        let stdout = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let stderr = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        Running {
            child,
            started,
            writer,
            stdout,
            stderr,
        }
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Run {
        self.spawn(args, env, stdin).wait()
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, &[], stdin.as_bytes())
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let run = self.run(args, stdin);
        assert_eq!(run.code, 0, "kefu {args:?}: {run:?}");
        run.stdout()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(self.ok(args, "").trim()).expect("one JSON value")
    }

    /// The code of the one open ticket of `user`.
    fn ticket_of(&self, user: &str) -> String {
        let list = self.json(&["desk", "list", "--json"]);
        let mine: Vec<&Value> = list
            .as_array()
            .expect("desk list --json is an array")
            .iter()
            .filter(|t| t["user"] == user)
            .collect();
        assert_eq!(mine.len(), 1, "one open ticket for {user}: {list}");
        mine[0]["code"].as_str().expect("code").to_owned()
    }

    /// What `user` wrote, in order, from their ticket's transcript (`desk show --json`).
    fn user_lines(&self, user: &str) -> Vec<String> {
        let code = self.ticket_of(user);
        let shown = self.json(&["desk", "show", &code, "--json"]);
        shown["transcript"]
            .as_array()
            .expect("transcript is an array")
            .iter()
            .filter(|l| l["sender"] == "user")
            .map(|l| l["text"].as_str().expect("text").to_owned())
            .collect()
    }
}

/// A run in progress.
struct Running {
    child: Child,
    started: Instant,
    writer: std::thread::JoinHandle<()>,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl Running {
    /// Waits for the run to end (killing it at the deadline).
    fn wait(mut self) -> Run {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for kefu") {
                break Some(status);
            }
            if self.started.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        self.writer.join().expect("stdin writer");
        let stdout = self.stdout.join().expect("stdout reader");
        let stderr = self.stderr.join().expect("stderr reader");
        Run {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed,
        }
    }
}

fn assert_config_error(run: &Run, names: &str) {
    assert_eq!(run.code, 2, "a configuration error exits 2; {run:?}");
    assert!(
        run.stderr.contains(names),
        "the message should name {names:?}; {run:?}"
    );
    assert!(
        run.stdout.is_empty(),
        "nothing on stdout on failure; {run:?}"
    );
}

/// A configuration directory in the deployment's temporary directory holding a copy of the
/// shipped `config/default.toml` with `extra` appended.
fn config_dir(d: &Deployment, extra: &str) -> PathBuf {
    let dir = d.dir.path().join("config");
    std::fs::create_dir_all(&dir).expect("config dir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let mut text = std::fs::read_to_string(shipped).expect("read config/default.toml");
    text.push_str(extra);
    std::fs::write(dir.join("default.toml"), text).expect("write default.toml");
    dir
}

#[test]
fn an_unknown_key_in_a_configuration_file_is_named_and_exits_2() {
    let d = Deployment::new();
    // The copy as shipped is accepted: the directory really is the one read.
    let dir = config_dir(&d, "");
    let dir_str = dir.to_str().expect("UTF-8 path");
    let fine = d.run_with(&["desk", "list"], &[("KEFU_CONFIG_DIR", dir_str)], b"");
    assert_eq!(fine.code, 0, "the shipped configuration is valid; {fine:?}");

    // The file's last section is [discord]: a misspelt key there.
    let dir = config_dir(&d, "\nstaff_chanel_id_typo = 5\n");
    let run = d.run_with(
        &["desk", "list"],
        &[("KEFU_CONFIG_DIR", dir.to_str().expect("UTF-8 path"))],
        b"",
    );
    assert_config_error(&run, "staff_chanel_id_typo");

    // A whole unknown section.
    let dir = config_dir(&d, "\n[bogus_section]\nanswer = 42\n");
    let run = d.run_with(
        &["desk", "list"],
        &[("KEFU_CONFIG_DIR", dir.to_str().expect("UTF-8 path"))],
        b"",
    );
    assert_config_error(&run, "bogus_section");
}

#[test]
fn a_missing_configuration_directory_is_named_and_exits_2() {
    let d = Deployment::new();
    let missing = d.dir.path().join("no-such-config-dir");
    let missing = missing.to_str().expect("UTF-8 path");
    let run = d.run_with(&["desk", "list"], &[("KEFU_CONFIG_DIR", missing)], b"");
    assert_config_error(&run, missing);
    assert!(run.stderr.contains("fix"), "the fix is given; {run:?}");
}

#[test]
fn kefu_env_naming_a_missing_file_exits_2() {
    let d = Deployment::new();
    let run = d.run_with(
        &["desk", "list"],
        &[("KEFU_ENV", "no-such-environment")],
        b"",
    );
    assert_config_error(&run, "no-such-environment");
}

#[test]
fn flood_control_that_refuses_everything_is_a_configuration_error() {
    let d = Deployment::new();
    let run = d.run_with(
        &["desk", "list"],
        &[("KEFU__FLOOD__MAX_MESSAGES", "0")],
        b"",
    );
    assert_config_error(&run, "flood.max_messages");
    let run = d.run_with(&["desk", "list"], &[("KEFU__FLOOD__WINDOW_SECS", "0")], b"");
    assert_config_error(&run, "flood.window_secs");
    // The same setting at 1 is accepted.
    let run = d.run_with(
        &["desk", "list"],
        &[("KEFU__FLOOD__MAX_MESSAGES", "1")],
        b"",
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn database_urls_that_name_no_database_are_refused_quickly_with_the_fix() {
    let d = Deployment::new();
    for url in ["sqlite::memory:", "sqlite://", ""] {
        for args in [&["desk", "list"][..], &["chat", "--user", "u"][..]] {
            let run = d.run_with(args, &[("KEFU__DATABASE__URL", url)], b"hello\n");
            assert_eq!(run.code, 2, "database.url {url:?}, kefu {args:?}; {run:?}");
            assert!(
                run.stderr.contains("database.url") && run.stderr.contains("fix"),
                "database.url {url:?}: the message names the setting and the fix; {run:?}"
            );
            assert!(
                run.stdout.is_empty(),
                "database.url {url:?}: nothing answered; {run:?}"
            );
            // The desk loads no KB: its refusal comes well within the 5 s a server is waited
            // for. A chat trains the KB first, so it gets more room.
            let limit = if args[0] == "desk" { 4 } else { 30 };
            assert!(
                run.elapsed < Duration::from_secs(limit),
                "database.url {url:?} is refused without waiting on anything; {run:?}"
            );
        }
    }
}

#[test]
fn an_unreachable_postgresql_is_an_error_that_names_the_database() {
    let d = Deployment::new();
    let run = d.run_with(
        &["desk", "list"],
        &[("KEFU__DATABASE__URL", "postgres://postgres@127.0.0.1:1/x")],
        b"",
    );
    assert_eq!(run.code, 1, "an unreachable server is a failure; {run:?}");
    assert!(
        run.stderr.to_lowercase().contains("database"),
        "the message says it is the database; {run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn the_desk_works_without_a_knowledge_base() {
    let d = Deployment::new();
    d.ok(&["chat", "--user", "kbless"], "手续费多少\n转人工\n");
    let code = d.ticket_of("kbless");
    let missing = d.dir.path().join("no-such-kb");
    let missing = missing.to_str().expect("UTF-8 path");
    let no_kb = [("KEFU__NLU__KB", missing)];

    // The path really is missing: a command that needs the KB refuses it.
    let chat = d.run_with(&["chat", "--user", "kbless"], &no_kb, b"hi\n");
    assert_eq!(chat.code, 2, "chat needs the KB; {chat:?}");

    let list = d.run_with(&["desk", "list"], &no_kb, b"");
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout().contains(&code), "{list:?}");
    let list = d.run_with(&["desk", "list", "--json"], &no_kb, b"");
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout().contains(&code), "{list:?}");
    for args in [
        &["desk", "show", code.as_str()][..],
        &["desk", "show", code.as_str(), "--json"][..],
    ] {
        let show = d.run_with(args, &no_kb, b"");
        assert_eq!(show.code, 0, "kefu {args:?}; {show:?}");
        assert!(show.stdout().contains("转人工"), "the transcript; {show:?}");
    }
}

#[test]
fn the_desk_shows_control_characters_visibly() {
    let d = Deployment::new();
    let name = "mal\u{1b}[31mory\u{7}";
    d.ok(
        &["chat", "--user", name],
        "wipe \u{1b}[2J the screen and ring \u{7} the bell\n转人工\n",
    );
    let list = d.json(&["desk", "list", "--json"]);
    let code = list[0]["code"].as_str().expect("a ticket").to_owned();
    for args in [&["desk", "list"][..], &["desk", "show", code.as_str()][..]] {
        let run = d.run(args, "");
        assert_eq!(run.code, 0, "kefu {args:?}; {run:?}");
        for (byte, what) in [(0x1b_u8, "ESC"), (0x07, "BEL")] {
            assert!(
                !run.stdout.contains(&byte),
                "kefu {args:?} printed a raw {what}; {run:?}"
            );
        }
    }
    let show = d.run(&["desk", "show", &code], "").stdout();
    // The user's line is there, its escape sequence harmless.
    assert!(
        show.contains("[2J the screen and ring"),
        "the user's line is shown; {show}"
    );
    // The name, kept as the user's id, shows its control characters as symbols.
    assert!(
        show.contains("mal\u{241b}[31mory\u{2407}"),
        "ESC and BEL in the user's id are shown as ␛ and ␇; {show}"
    );
}

#[test]
fn chat_skips_a_line_that_is_not_utf8_and_keeps_going() {
    let d = Deployment::new();
    let mut input = Vec::new();
    input.extend_from_slice("手续费多少\n".as_bytes());
    input.extend_from_slice(b"\xff\xfe broken \x80\xc3\n");
    input.extend_from_slice("提币一直没到账\n".as_bytes());
    input.extend_from_slice("充值\0没到账 nul\n".as_bytes());
    input.extend_from_slice("怎么联系客服\n".as_bytes());
    let run = d.run_with(&["chat", "--user", "bytes"], &[], &input);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("line 2") && run.stderr.contains("UTF-8"),
        "the skipped line is reported on stderr; {run:?}"
    );
    let out = run.stdout();
    assert!(
        out.contains("TxID"),
        "the line after the bad one is answered; {run:?}"
    );
    // Everything after the bad line reached the conversation, the NUL removed, nothing lost.
    d.ok(&["chat", "--user", "bytes"], "转人工\n");
    let lines = d.user_lines("bytes");
    assert_eq!(
        lines,
        [
            "手续费多少",
            "提币一直没到账",
            "充值没到账 nul",
            "怎么联系客服",
            "转人工"
        ],
        "{run:?}"
    );
}

#[test]
fn every_message_is_handled_exactly_once_while_the_desk_reads() {
    const LINES: usize = 300;
    let d = Arc::new(Deployment::new());
    // The database exists before the race starts.
    d.ok(&["desk", "list"], "");
    let mut input = String::new();
    for i in 0..LINES {
        input.push_str(&format!("手续费多少 第{i}次\n"));
    }
    input.push_str("转人工\n");
    let chat = d.spawn(
        &["chat", "--user", "racer"],
        &[("KEFU__FLOOD__MAX_MESSAGES", "1000000")],
        input.as_bytes(),
    );

    let done = Arc::new(AtomicBool::new(false));
    let desk = {
        let d = Arc::clone(&d);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut runs = Vec::new();
            while !done.load(Ordering::SeqCst) {
                runs.push(d.run(&["desk", "list"], ""));
            }
            runs
        })
    };
    let chat = chat.wait();
    done.store(true, Ordering::SeqCst);
    let desk_runs = desk.join().expect("desk loop");
    assert_eq!(chat.code, 0, "{chat:?}");
    assert!(!desk_runs.is_empty(), "the desk ran during the chat");
    for run in &desk_runs {
        assert_eq!(run.code, 0, "desk list during the chat; {run:?}");
    }

    let lines = d.user_lines("racer");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for l in &lines {
        *seen.entry(l.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "lines handled more than once: {twice:?}");
    assert_eq!(
        lines.len(),
        LINES + 1,
        "every line once, the request for a human last"
    );
    for (i, l) in lines.iter().take(LINES).enumerate() {
        assert_eq!(l, &format!("手续费多少 第{i}次"), "in order");
    }
    assert_eq!(lines[LINES], "转人工");
}

#[test]
fn concurrent_first_starts_on_a_new_database_all_succeed() {
    const USERS: usize = 8;
    let d = Deployment::new();
    assert!(!d.db.exists(), "the database file is new");
    let questions = ["手续费多少", "提币一直没到账", "充值没到账", "怎么联系客服"];
    let mut input = String::new();
    for q in questions {
        input.push_str(q);
        input.push('\n');
    }
    input.push_str("转人工\n");
    let running: Vec<(String, Running)> = (0..USERS)
        .map(|i| {
            let user = format!("u{i}");
            let r = d.spawn(&["chat", "--user", &user], &[], input.as_bytes());
            (user, r)
        })
        .collect();
    let runs: Vec<(String, Run)> = running.into_iter().map(|(u, r)| (u, r.wait())).collect();
    for (user, run) in &runs {
        assert_eq!(run.code, 0, "{user}; {run:?}");
        assert!(
            run.stdout().contains("TxID"),
            "{user}'s questions are answered; {run:?}"
        );
    }
    let list = d.json(&["desk", "list", "--json"]);
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(USERS),
        "one ticket per user: {list}"
    );
    for (user, _) in &runs {
        let mut expected: Vec<&str> = questions.to_vec();
        expected.push("转人工");
        assert_eq!(d.user_lines(user), expected, "{user}'s lines, each once");
    }
}

#[test]
fn concurrent_first_desk_runs_on_a_new_database_all_succeed() {
    // The desk loads no KB, so these reach the new file's migrations at the same moment.
    const RUNS: usize = 12;
    let d = Deployment::new();
    assert!(!d.db.exists(), "the database file is new");
    let running: Vec<Running> = (0..RUNS)
        .map(|_| d.spawn(&["desk", "list", "--json"], &[], b""))
        .collect();
    for run in running.into_iter().map(Running::wait) {
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stdout().trim(), "[]", "{run:?}");
    }
    // The database they made works.
    d.ok(&["chat", "--user", "after"], "手续费多少\n转人工\n");
    assert_eq!(d.user_lines("after"), ["手续费多少", "转人工"]);
}

#[test]
fn resolving_says_why_it_cannot() {
    let d = Deployment::new();
    d.ok(&["chat", "--user", "carol"], "手续费多少\n转人工\n");
    let code = d.ticket_of("carol");

    let queued = d.run(&["desk", "resolve", &code, "--as", "bob"], "");
    assert_ne!(queued.code, 0, "{queued:?}");
    assert!(
        queued.stderr.contains("claim it first"),
        "a queued ticket must be claimed first; {queued:?}"
    );

    d.ok(&["desk", "claim", &code, "--as", "bob"], "");
    d.ok(&["desk", "resolve", &code, "--as", "bob"], "");

    let again = d.run(&["desk", "resolve", &code, "--as", "bob"], "");
    assert_ne!(again.code, 0, "{again:?}");
    assert!(
        again.stderr.contains("already resolved"),
        "a resolved ticket says so; {again:?}"
    );
    assert!(
        !again.stderr.contains("claim it first"),
        "a resolved ticket is not waiting for a claim; {again:?}"
    );
    // Another staff member gets the same answer.
    let other = d.run(&["desk", "resolve", &code, "--as", "dave"], "");
    assert_ne!(other.code, 0, "{other:?}");
    assert!(other.stderr.contains("already resolved"), "{other:?}");
}

/// A ticket code can be all digits (the alphabet has 2–9): the desk finds the ticket by that code
/// rather than taking it for an id.
#[test]
fn a_ticket_whose_code_is_all_digits_is_found_by_its_code() {
    let d = Deployment::new();
    d.ok(&["chat", "--user", "dora"], "手续费多少\n转人工\n");
    let code = d.ticket_of("dora");
    let url = format!("sqlite://{}", d.db.display());
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&url)
                .await
                .expect("open the database");
            sqlx::query("UPDATE tickets SET code = '234567' WHERE code = $1")
                .bind(&code)
                .execute(&pool)
                .await
                .expect("set an all-digit code");
            pool.close().await;
        });
    let shown = d.json(&["desk", "show", "234567", "--json"]);
    assert_eq!(shown["code"], "234567", "{shown}");
    assert_eq!(shown["user"], "dora", "{shown}");
    // An id still works.
    let id = shown["id"].as_i64().expect("id").to_string();
    assert_eq!(d.json(&["desk", "show", &id, "--json"])["code"], "234567");
}
