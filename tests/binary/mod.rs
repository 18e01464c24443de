//! The real `kefu` binary run as a test's separate process, on a SQLite file (and a KB) of the
//! test's own, with no `KEFU*` variable of the test's environment leaking in.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers shared by several test binaries, each using its own share of them"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A database of its own, and the KB the binary is pointed at.
pub struct Deployment {
    _dir: tempfile::TempDir,
    pub db: PathBuf,
    pub kb: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

impl Deployment {
    /// A new database; the checkout's default KB.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("kefu.db");
        let kb = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kb");
        Deployment { _dir: dir, db, kb }
    }

    /// A new database and a copy of the default KB, which the test may change.
    pub fn with_kb_copy() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("kefu.db");
        let kb = dir.path().join("kb");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kb"),
            &kb,
        );
        Deployment { _dir: dir, db, kb }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.db.display())
    }

    /// The binary with `args`, run from the checkout, on this database and KB.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KEFU__DATABASE__URL", self.url())
            .env("KEFU__NLU__KB", &self.kb);
        cmd
    }

    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, &[], stdin)
    }

    /// [`Deployment::run`] with more environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kefu");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait for kefu");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("utf-8"),
            stderr: String::from_utf8(out.stderr).expect("utf-8"),
        }
    }

    /// Runs and expects exit 0: the standard output.
    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let run = self.run(args, stdin);
        assert_eq!(run.code, 0, "kefu {args:?}: {run:?}");
        run.stdout
    }

    /// Runs and expects exit 0 and one JSON value on the standard output.
    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(self.ok(args, "").trim()).expect("one JSON value")
    }
}
