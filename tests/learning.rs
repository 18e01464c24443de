//! The learning loop's suggestion side through the real binary: staff label tickets at resolve
//! (`kefu chat` as the users, `kefu desk` as staff), unanswered questions are in the database,
//! then `kefu kb suggest`, `accept`, `reject` and `history` on a temporary copy of the default KB.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod binary;
mod fake_telegram;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use binary::Deployment;
use fake_telegram::{Fake, TOKEN, dm, sends_to, text};
use serde_json::Value;

impl Deployment {
    /// `user` asks `question` in `kefu chat` and asks for a human; `staff` claims the ticket and
    /// resolves it with the label `flags`.
    fn label(&self, user: &str, question: &str, staff: &str, flags: &[&str]) {
        let run = self.run(&["chat", "--user", user], &format!("{question}\n转人工\n"));
        assert_eq!(run.code, 0, "{run:?}");
        let tickets = self.json(&["desk", "list", "--json"]);
        let id = tickets
            .as_array()
            .expect("array")
            .iter()
            .find(|t| t["state"] == "queued")
            .and_then(|t| t["id"].as_i64())
            .unwrap_or_else(|| panic!("{user}'s ticket is queued: {tickets}"))
            .to_string();
        self.ok(&["desk", "claim", &id, "--as", staff], "");
        let mut args = vec!["desk", "resolve", &id, "--as", staff];
        args.extend_from_slice(flags);
        let out = self.ok(&args, "");
        assert!(out.contains("labelled as"), "{out}");
    }

    /// Unanswered questions, as the bot records them.
    fn misses(&self, questions: &[(&str, usize)]) {
        let url = self.url();
        let questions: Vec<(String, usize)> = questions
            .iter()
            .map(|(q, n)| ((*q).to_owned(), *n))
            .collect();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let store = kefu_store::Store::connect(&url).await.unwrap();
                for (q, n) in questions {
                    for _ in 0..n {
                        let miss = kefu_store::Miss {
                            text: kefu_nlu::secrets::Redacted::of(&q),
                            language: Some("zh".to_owned()),
                            intent_guess: None,
                            confidence: None,
                            at: chrono::Utc::now(),
                            inbound_id: None,
                        };
                        store.record_miss(&miss).await.unwrap();
                    }
                }
                store.close().await;
            });
    }

    fn suggestions(&self) -> Vec<Value> {
        let kb = self.kb.display().to_string();
        let report = self.json(&["kb", "suggest", &kb, "--json"]);
        report["suggestions"]
            .as_array()
            .expect("suggestions")
            .clone()
    }
}

const SEED: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

#[test]
fn suggestions_are_accepted_into_the_kb_files_rejected_for_good_and_audited() {
    let d = Deployment::with_kb_copy();
    let kb = d.kb.display().to_string();
    let file = d.kb.join("30-withdrawal.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    assert!(original.starts_with("# Withdrawals:"), "a commented file");

    // Staff label two questions as withdrawal.failed; neither is an example yet.
    let texts = ["提币被风控拦截了怎么办", "提币风控审核一直不给过"];
    for (k, t) in texts.iter().enumerate() {
        d.label(
            &format!("user{k}"),
            t,
            "bob",
            &["--intent", "withdrawal.failed"],
        );
    }
    // Unanswered questions about one topic the KB lacks, and one with a seed phrase in it.
    d.misses(&[
        ("质押收益怎么算", 2),
        ("质押的收益什么时候发", 1),
        ("质押收益没到账", 1),
        ("质押收益率多少", 1),
        (&format!("质押收益 {SEED}"), 1),
    ]);
    let raw = d.run(&["kb", "suggest", &kb], "");
    assert_eq!(raw.code, 0, "{raw:?}");
    assert!(
        raw.stdout.contains("add_examples withdrawal.failed"),
        "{raw:?}"
    );

    let found = d.suggestions();
    let all = serde_json::to_string(&found).unwrap();
    for word in ["abandon", "redacted"] {
        assert!(!all.contains(word), "{word}: {all}");
    }
    let add = found
        .iter()
        .find(|s| s["kind"] == "add_examples" && s["intent"] == "withdrawal.failed")
        .unwrap_or_else(|| panic!("an add_examples suggestion: {all}"));
    let members: Vec<&str> = add["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    for t in texts {
        assert!(members.contains(&t), "{t} in {members:?}");
    }
    assert!(add["effect"]["after"]["resolved_rate"].is_number(), "{add}");
    assert!(
        add["effect"]["traffic"]["after"]["utility"].is_number(),
        "{add}"
    );
    let topic = found
        .iter()
        .find(|s| s["kind"] == "new_topic")
        .unwrap_or_else(|| panic!("a new topic: {all}"));
    assert!(
        topic["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["text"].as_str().unwrap().contains("质押")),
        "{topic}"
    );
    let add_id = add["id"].as_str().unwrap().to_owned();
    let topic_id = topic["id"].as_str().unwrap().to_owned();

    // Unknown ids change nothing.
    let unknown = d.run(&["kb", "accept", "deadbeef", "--as", "lena", &kb], "");
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("kefu kb suggest"), "{unknown:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);

    // Rejected: recorded, the KB untouched.
    let out = d.ok(&["kb", "reject", &topic_id, "--as", "lena", &kb], "");
    assert!(out.contains(&format!("rejected {topic_id}")), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);

    // Accepted: the examples are in the file that defines the intent, its comments kept.
    let out = d.ok(&["kb", "accept", &add_id, "--as", "lena", &kb], "");
    assert!(out.contains(&format!("accepted {add_id} (lena)")), "{out}");
    let edited = std::fs::read_to_string(&file).unwrap();
    assert!(edited.starts_with("# Withdrawals:"), "{edited}");
    assert_eq!(
        original
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            + 1,
        edited
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count(),
        "every comment kept, one note added: {edited}"
    );
    assert!(
        edited.contains(&format!("# kefu kb accept {add_id} (lena, ")),
        "{edited}"
    );
    for t in texts {
        assert!(edited.contains(&format!("\"{t}\"")), "{t}: {edited}");
    }
    assert_eq!(
        edited.lines().count(),
        original.lines().count() + 3,
        "only the note and the two examples are new"
    );
    let check = d.run(&["kb", "check", &kb], "");
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("valid"), "{check:?}");

    // Not suggested again, nor is the rejected one.
    let again = d.suggestions();
    assert!(
        again
            .iter()
            .all(|s| s["id"] != topic_id.as_str() && s["id"] != add_id.as_str()),
        "{again:?}"
    );
    let twice = d.run(&["kb", "reject", &topic_id, "--as", "lena", &kb], "");
    assert_eq!(twice.code, 2, "{twice:?}");
    assert!(
        twice.stderr.contains("already rejected by lena"),
        "{twice:?}"
    );

    // The history: who labelled, who decided what, when.
    let history = d.json(&["kb", "history", "--json"]);
    let labels = history["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 2, "{history}");
    assert!(
        labels.iter().all(|l| l["labelled_by"] == "bob"),
        "{history}"
    );
    let decisions = history["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "{history}");
    assert_eq!(decisions[0]["suggestion"], topic_id.as_str());
    assert_eq!(decisions[0]["accepted"], false);
    assert_eq!(decisions[1]["suggestion"], add_id.as_str());
    assert_eq!(decisions[1]["accepted"], true);
    assert_eq!(decisions[1]["by"], "lena");
    assert!(decisions[1]["at"].is_string(), "{history}");
    let text = d.ok(&["kb", "history"], "");
    assert!(text.contains("labelled ticket"), "{text}");
    assert!(text.contains(&format!("accepted {add_id}")), "{text}");
    assert!(text.contains(&format!("rejected {topic_id}")), "{text}");
}

#[test]
fn an_accepted_new_topic_is_a_new_intent_that_kb_check_passes() {
    let d = Deployment::with_kb_copy();
    let kb = d.kb.display().to_string();
    d.misses(&[
        ("质押收益怎么算", 2),
        ("质押的收益什么时候发", 1),
        ("质押收益没到账", 1),
        ("质押收益率多少", 1),
    ]);
    let found = d.suggestions();
    let topic = found
        .iter()
        .find(|s| s["kind"] == "new_topic")
        .unwrap_or_else(|| panic!("a new topic: {found:?}"));
    let id = topic["id"].as_str().unwrap();
    let intent = topic["intent"].as_str().unwrap();
    let file = PathBuf::from(topic["new_intent"]["file"].as_str().unwrap());
    d.ok(&["kb", "accept", id, "--as", "lena", &kb], "");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# FOR THE KB AUTHOR"), "{text}");
    assert!(text.contains(&format!("id = \"{intent}\"")), "{text}");
    assert!(text.contains("handoff = true"), "{text}");
    let check = d.run(&["kb", "check", &kb, "--json"], "");
    assert_eq!(check.code, 0, "{check:?}");
    let ask = d.json(&["ask", "--kb", &kb, "--json", "质押收益怎么算"]);
    assert_eq!(ask["candidates"][0]["intent"], intent, "{ask}");
}

/// What `kefu run` logs once its KB watcher runs, and when it has reloaded the KB.
const WATCHING: &str = "watching the knowledge base for changes";
const RELOADED: &str = "knowledge base reloaded";

/// How long a wait on the running bot may last.
const WAIT: Duration = Duration::from_secs(30);

/// `kefu run` on the deployment's KB and database, against the fake Bot API; its log is kept.
struct Bot {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
}

impl Bot {
    fn start(d: &Deployment, fake: &Fake) -> Bot {
        Self::start_with(d, fake, &[])
    }

    /// [`Bot::start`] with more environment variables.
    fn start_with(d: &Deployment, fake: &Fake, env: &[(&str, &str)]) -> Bot {
        let kb = d.kb.display().to_string();
        let mut cmd = d.command(&["run", "--kb", &kb]);
        cmd.env("KEFU__TELEGRAM__TOKEN", TOKEN)
            .env("KEFU__TELEGRAM__API_URL", &fake.url)
            .env("KEFU__SERVER__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
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
        Bot { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    async fn wait_log(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.log().contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what:?} in the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// `user` (a new one) says hello, then asks `question` (updates `n` and `n + 1`): every
    /// message the bot sends them until it has answered the question.
    async fn ask(&self, fake: &Fake, user: i64, n: i64, question: &str) -> Vec<String> {
        fake.push(dm(n, n, user, "/start"));
        let deadline = Instant::now() + WAIT;
        while sends_to(&fake.requests(), user).is_empty() {
            assert!(Instant::now() < deadline, "no greeting:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let greeted = sends_to(&fake.requests(), user).len();
        fake.push(dm(n + 1, n + 1, user, question));
        while sends_to(&fake.requests(), user).len() == greeted {
            assert!(Instant::now() < deadline, "no reply:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        // Whatever else the turn sends comes at once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sends_to(&fake.requests(), user)[greeted..]
            .iter()
            .map(|r| text(r).to_owned())
            .collect()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_bot_answers_an_accepted_topic_without_a_restart() {
    let d = Deployment::with_kb_copy();
    let kb = d.kb.display().to_string();
    let fake = Fake::start().await;
    let bot = Bot::start(&d, &fake);
    bot.wait_log(WATCHING).await;
    let question = "质押收益怎么算";
    let placeholder = "这个问题需要人工客服为您处理";
    let before = bot.ask(&fake, 501, 1, question).await;
    assert!(
        before.iter().all(|t| !t.contains(placeholder)),
        "{before:#?}"
    );

    let d2 = &d;
    tokio::task::block_in_place(|| {
        d2.misses(&[
            (question, 2),
            ("质押的收益什么时候发", 1),
            ("质押收益没到账", 1),
            ("质押收益率多少", 1),
        ]);
        let found = d2.suggestions();
        let topic = found
            .iter()
            .find(|s| s["kind"] == "new_topic")
            .unwrap_or_else(|| panic!("a new topic: {found:?}"));
        let id = topic["id"].as_str().unwrap();
        d2.ok(&["kb", "accept", id, "--as", "lena", &kb], "");
    });
    bot.wait_log(RELOADED).await;
    let after = bot.ask(&fake, 502, 3, question).await;
    assert!(
        after.iter().any(|t| t.contains(placeholder)),
        "the new intent answers: {after:#?}\n{}",
        bot.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_accepts_a_suggestion_through_the_console_api_of_kefu_run() {
    let d = Deployment::with_kb_copy();
    let password = "correct horse battery staple";
    let (found, token) = tokio::task::block_in_place(|| {
        d.misses(&[
            ("质押收益怎么算", 2),
            ("质押的收益什么时候发", 1),
            ("质押收益没到账", 1),
            ("质押收益率多少", 1),
        ]);
        let added = d.run_with(
            &["staff", "add", "lena", "--role", "lead"],
            &[("KEFU_STAFF_PASSWORD", password)],
            "",
        );
        assert_eq!(added.code, 0, "{added:?}");
        let token = d
            .ok(&["staff", "token", "lena"], "")
            .split_whitespace()
            .last()
            .expect("a token")
            .to_owned();
        (d.suggestions(), token)
    });
    let topic = found
        .iter()
        .find(|s| s["kind"] == "new_topic")
        .unwrap_or_else(|| panic!("a new topic: {found:?}"));
    let id = topic["id"].as_str().unwrap().to_owned();
    let intent = topic["intent"].as_str().unwrap().to_owned();
    let file = PathBuf::from(topic["new_intent"]["file"].as_str().unwrap());

    let fake = Fake::start().await;
    let bot = Bot::start_with(&d, &fake, &[("KEFU__CONSOLE__LISTEN", "127.0.0.1:0")]);
    bot.wait_log(WATCHING).await;
    let marker = "console: serving on http://";
    bot.wait_log(marker).await;
    let log = bot.log();
    let rest = &log[log.find(marker).unwrap() + marker.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    let base = format!("http://{}", &rest[..end]);
    let http = reqwest::Client::new();

    // The console lists what `kefu kb suggest` lists.
    let listed: Value = http
        .get(format!("{base}/api/suggestions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = listed["suggestions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let mut cli_ids: Vec<&str> = found.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    cli_ids.sort_unstable();
    assert_eq!(ids, cli_ids, "{listed}");

    let r = http
        .post(format!("{base}/api/suggestions/{id}/accept"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["ok"], true, "{done}");
    assert!(
        done["done"]
            .as_str()
            .unwrap()
            .starts_with(&format!("accepted {id} (lena): added intent {intent}")),
        "{done}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("id = \"{intent}\"")), "{text}");
    assert!(
        text.contains(&format!("kefu kb accept {id} (lena, ")),
        "{text}"
    );
    bot.wait_log(RELOADED).await;

    // Decided once: the same id again is refused, and the history names the lead.
    let again = http
        .post(format!("{base}/api/suggestions/{id}/accept"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let history = tokio::task::block_in_place(|| d.json(&["kb", "history", "--json"]));
    let decisions = history["decisions"].as_array().unwrap();
    assert!(
        decisions
            .iter()
            .any(|x| x["suggestion"] == id.as_str() && x["accepted"] == true && x["by"] == "lena"),
        "{history}"
    );
}
