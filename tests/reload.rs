//! Reloading the KB while `kefu run` serves: the real binary against the fake Bot API in
//! `tests/fake_telegram`, on a copy of `config/kb` in a temporary directory that the tests edit.
//! Reloads are triggered through the KB watcher (a file saved while the bot serves); the bot's log
//! (stderr, read as it is written) tells when a reload was done or refused.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod fake_telegram;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_telegram::{Fake, Req, TOKEN, USER, buttons, dm, sends_to, text};

/// The longest any one wait in these tests lasts.
const WAIT: Duration = Duration::from_secs(30);

/// The question whose answer the tests change, and how that answer starts in `config/kb`.
const QUESTION: &str = "提币失败了怎么办";
const OLD_ANSWER: &str = "提币失败时";
/// What the edited KB puts in front of that answer.
const MARK: &str = "【新版】";
const EDITED_FILE: &str = "30-withdrawal.toml";

/// What the bot logs when a reload is done, and when one is refused.
const RELOADED: &str = "knowledge base reloaded";
const REFUSED: &str = "knowledge base reload refused";
/// What the bot logs once the watcher runs (edits before it would not be seen).
const WATCHING: &str = "watching the knowledge base for changes";

/// A copy of `config/kb` (its `*.toml` files) that a test edits.
struct Kb {
    dir: tempfile::TempDir,
    /// The edited file as shipped.
    original: String,
}

impl Kb {
    fn copy() -> Kb {
        let dir = tempfile::tempdir().expect("temp dir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kb");
        for entry in std::fs::read_dir(&shipped).expect("config/kb") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                std::fs::copy(&path, dir.path().join(path.file_name().expect("name")))
                    .expect("copy");
            }
        }
        let original = std::fs::read_to_string(dir.path().join(EDITED_FILE)).expect("read");
        Kb { dir, original }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join(EDITED_FILE)
    }

    /// The edited file with [`MARK`] in front of the answer to [`QUESTION`].
    fn edited(&self) -> String {
        let from = format!("answer.zh = \"\"\"{OLD_ANSWER}");
        let to = format!("answer.zh = \"\"\"{MARK}{OLD_ANSWER}");
        assert_eq!(
            self.original.matches(&from).count(),
            1,
            "the answer to edit"
        );
        self.original.replacen(&from, &to, 1)
    }

    /// Saves the edited file in place.
    fn write(&self, text: &str) {
        std::fs::write(self.file(), text).expect("write the KB file");
    }

    /// Saves the edited file as many editors do: a new file renamed over the old one.
    fn write_by_rename(&self, text: &str) {
        let tmp = self.dir.path().join(format!(".{EDITED_FILE}.swp"));
        std::fs::write(&tmp, text).expect("write the new file");
        std::fs::rename(&tmp, self.file()).expect("rename it over the old one");
    }
}

/// `kefu run` against the fake, on its own database, with its log collected as it is written.
struct Bot {
    child: Child,
    log: Arc<Mutex<String>>,
    _db: tempfile::TempDir,
}

impl Bot {
    fn start(fake: &Fake, kb: &Path) -> Bot {
        let db = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("run")
            .arg("--kb")
            .arg(kb)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "KEFU__DATABASE__URL",
            format!("sqlite://{}", db.path().join("kefu.db").display()),
        )
        .env("KEFU__TELEGRAM__TOKEN", TOKEN)
        .env("KEFU__TELEGRAM__API_URL", &fake.url)
        // The load test's users write faster than the flood limit allows.
        .env("KEFU__FLOOD__MAX_MESSAGES", "1000")
        // Any free port for the operations listener: tests run side by side.
        .env("KEFU__SERVER__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kefu run");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Bot {
            child,
            log,
            _db: db,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Lines of the log containing `what`.
    fn count(&self, what: &str) -> usize {
        self.log().lines().filter(|l| l.contains(what)).count()
    }

    /// Waits (at most [`WAIT`]) until the log has `n` lines containing `what`; returns the last.
    async fn wait_log(&self, what: &str, n: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(what)).collect();
            if lines.len() >= n {
                return lines[n - 1].to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} log line(s) with {what:?}; the log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// SIGTERM, then the exit status (bounded wait).
    fn stop(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "kefu run did not stop on SIGTERM; the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bot's answers (messages with the feedback buttons) to `chat`, in the order sent.
fn answers(reqs: &[Req], chat: i64) -> Vec<String> {
    sends_to(reqs, chat)
        .into_iter()
        .filter(|r| !buttons(r).is_empty())
        .map(|r| text(r).to_owned())
        .collect()
}

/// `USER` says /start and is greeted (the first contact's greeting would otherwise come in front
/// of the first answer). Update and message 1.
async fn greet(fake: &Fake, bot: &Bot) {
    fake.push(dm(1, 1, USER, "/start"));
    let deadline = Instant::now() + WAIT;
    while sends_to(&fake.requests(), USER).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no greeting; the log:\n{}",
            bot.log()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Asks [`QUESTION`] as `USER` (update and message `n`) and returns the answer.
async fn ask(fake: &Fake, bot: &Bot, n: i64) -> String {
    let before = answers(&fake.requests(), USER).len();
    fake.push(dm(n, n, USER, QUESTION));
    let deadline = Instant::now() + WAIT;
    loop {
        let got = answers(&fake.requests(), USER);
        if got.len() > before {
            assert_eq!(got.len(), before + 1, "one answer: {got:#?}");
            return got[before].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no answer to message {n}; the log:\n{}",
            bot.log()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kb_file_edited_while_serving_gives_the_next_question_the_new_answer() {
    let kb = Kb::copy();
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, kb.path());
    bot.wait_log(WATCHING, 1).await;
    greet(&fake, &bot).await;
    let before = ask(&fake, &bot, 2).await;
    assert!(before.starts_with(OLD_ANSWER), "{before}");

    kb.write(&kb.edited());
    let line = bot.wait_log(RELOADED, 1).await;
    assert!(line.contains("version="), "{line}");
    assert!(line.contains("intents="), "{line}");
    let after = ask(&fake, &bot, 3).await;
    assert!(after.starts_with(&format!("{MARK}{OLD_ANSWER}")), "{after}");

    assert_eq!(bot.count(REFUSED), 0, "{}", bot.log());
    assert_eq!(bot.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_kb_is_refused_naming_file_line_and_the_old_answers_keep_coming() {
    let kb = Kb::copy();
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, kb.path());
    bot.wait_log(WATCHING, 1).await;
    greet(&fake, &bot).await;

    // The new answer, but the file does not parse: a table header left unclosed at its last line.
    let (broken, bad_line) = unparsable(&kb);
    kb.write(&broken);
    let refusal = bot.wait_log(REFUSED, 1).await;
    let file_line = format!("{}:{bad_line}:", kb.file().display());
    assert!(refusal.contains(&file_line), "names {file_line}: {refusal}");
    assert!(
        refusal.contains("fix: correct the TOML syntax"),
        "says what to do: {refusal}"
    );
    for n in 2..=3 {
        let answer = ask(&fake, &bot, n).await;
        assert!(
            answer.starts_with(OLD_ANSWER),
            "the old KB serves: {answer}"
        );
    }

    // The file parses now, but a new file in the same save repeats an intent id: refused too.
    let extra = kb.path().join("35-extra.toml");
    kb.write(&kb.edited());
    std::fs::write(
        &extra,
        "[[intent]]\nid = \"withdrawal.failed\"\ntitle = { zh = \"重复\" }\nexamples.zh = [\"重复一\", \"重复二\"]\nanswer.zh = \"重复\"\n",
    )
    .expect("write");
    let refusal = bot.wait_log(REFUSED, 2).await;
    let file_line = format!("{}:2:", extra.display());
    assert!(refusal.contains(&file_line), "names {file_line}: {refusal}");
    assert!(refusal.contains("duplicate intent id"), "{refusal}");
    assert!(refusal.contains("fix:"), "says what to do: {refusal}");
    let answer = ask(&fake, &bot, 4).await;
    assert!(
        answer.starts_with(OLD_ANSWER),
        "the old KB serves: {answer}"
    );

    assert_eq!(bot.count(RELOADED), 0, "{}", bot.log());
    assert_eq!(bot.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_kb_once_fixed_is_reloaded() {
    let kb = Kb::copy();
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, kb.path());
    bot.wait_log(WATCHING, 1).await;
    greet(&fake, &bot).await;
    kb.write(&unparsable(&kb).0);
    bot.wait_log(REFUSED, 1).await;

    // Fixed (saved by renaming a new file over it): reloaded, and the new answer is given.
    kb.write_by_rename(&kb.edited());
    let line = bot.wait_log(RELOADED, 1).await;
    assert!(line.contains("version="), "{line}");
    let answer = ask(&fake, &bot, 2).await;
    assert!(
        answer.starts_with(&format!("{MARK}{OLD_ANSWER}")),
        "{answer}"
    );

    assert_eq!(bot.count(REFUSED), 1, "{}", bot.log());
    assert_eq!(bot.stop(), Some(0));
}

/// The edited file with an unclosed table header at its end, and that line's number.
fn unparsable(kb: &Kb) -> (String, usize) {
    let broken = format!("{}\n[[intent]\n", kb.edited());
    let line = broken.lines().count();
    (broken, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_load_during_ten_reloads_loses_and_doubles_nothing() {
    const USERS: i64 = 10;
    const RELOADS: usize = 10;
    /// Questions with different (non-handoff) answers; message k of a user asks `QUESTIONS[k % 5]`.
    const QUESTIONS: [&str; 5] = [
        QUESTION,
        "充值没到账怎么办",
        "忘记密码了",
        "怎么下载app",
        "谷歌验证器丢了",
    ];
    let kb = Kb::copy();
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, kb.path());
    bot.wait_log(WATCHING, 1).await;
    let users: Vec<i64> = (0..USERS).map(|u| 1000 + u).collect();
    let mut update = 0;
    let mut push = |chat: i64, message: i64, text: &str| {
        update += 1;
        fake.push(dm(update, message, chat, text));
    };
    // Waits until each of `chats` has `want` answers among the requests after the first `from`.
    let wait_answers = |what: String, from: usize, want: usize, chats: Vec<i64>| {
        let fake = fake.clone();
        let log = bot.log.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let reqs = fake.requests_since(from);
                if chats.iter().all(|&c| answers(&reqs, c).len() >= want) {
                    return reqs;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}; the log:\n{}",
                    log.lock().unwrap()
                );
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    };

    // The answer to each question (the probe user asks them in turn), and every user greeted and
    // answered once, so what follows is the load alone.
    let probe = 999;
    push(probe, 1, "/start");
    for (k, q) in QUESTIONS.iter().enumerate() {
        push(probe, k as i64 + 2, q);
    }
    for &u in &users {
        push(u, 1, "/start");
        push(u, 2, QUESTION);
    }
    let mut chats = users.clone();
    chats.push(probe);
    wait_answers("the warm-up answers".into(), 0, 1, chats).await;
    let reqs = wait_answers(
        "the probe's answers".into(),
        0,
        QUESTIONS.len(),
        vec![probe],
    )
    .await;
    let expected = answers(&reqs, probe);
    assert_eq!(expected.len(), QUESTIONS.len(), "{expected:#?}");
    let distinct: std::collections::HashSet<&String> = expected.iter().collect();
    assert_eq!(distinct.len(), QUESTIONS.len(), "distinct answers");
    let baseline = fake.request_count();

    // Ten reloads, alternating the edited and the shipped file; each user writes during each.
    let edited = kb.edited();
    let mut sent = 0;
    for r in 0..RELOADS {
        kb.write(if r % 2 == 0 { &edited } else { &kb.original });
        for &u in &users {
            push(u, 3 + sent, QUESTIONS[sent as usize % QUESTIONS.len()]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent += 1;
        bot.wait_log(RELOADED, r + 1).await;
    }
    // One more message each: the chat's replies go out in order, so once it is answered every
    // earlier one has been sent.
    for &u in &users {
        push(u, 3 + sent, QUESTION);
    }
    let total = sent as usize + 1;
    wait_answers("every last answer".into(), baseline, total, users.clone()).await;
    assert_eq!(bot.count(RELOADED), RELOADS, "{}", bot.log());
    assert_eq!(bot.count(REFUSED), 0, "{}", bot.log());

    let reqs = fake.requests_since(baseline);
    for &u in &users {
        let all = sends_to(&reqs, u);
        let got: Vec<String> = answers(&reqs, u)
            .into_iter()
            .map(|a| a.replacen(MARK, "", 1))
            .collect();
        assert_eq!(
            all.len(),
            total,
            "user {u}: one reply per message, nothing else: {:#?}",
            all.iter().map(|r| text(r)).collect::<Vec<_>>()
        );
        // The last message (the eleventh) asks QUESTIONS[0], like the first.
        for (k, answer) in got.iter().enumerate() {
            let want = &expected[k % QUESTIONS.len()];
            assert_eq!(
                answer, want,
                "user {u}, message {k}: the answer to its question"
            );
        }
    }
    assert_eq!(bot.stop(), Some(0));
}
