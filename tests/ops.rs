//! Operating `kefu run`, from the outside: the real binary against the fake Bot API
//! (`tests/fake_telegram`), its operations listener on a free port (`KEFU__SERVER__LISTEN=
//! 127.0.0.1:0`; the address is read from its log), plain HTTP/1.1 requests to it.
//!
//! - `/healthz`, `/readyz` and `/metrics` on SQLite: the counters move as a conversation runs (a
//!   question answered, a ticket opened, claimed, answered, resolved and rated, a seed phrase
//!   redacted); every log line is one JSON object with the span fields, and none holds the seed
//!   phrase.
//! - `/readyz` turns 503 naming the database when the database stops accepting connections and
//!   200 again when it accepts them (PostgreSQL, a database of its own made unreachable with
//!   `ALLOW_CONNECTIONS false`; skipped with a note when `KEFU_TEST_DATABASE_URL` is not set).
//! - `POST /admin/reload-kb`: refused without a configured token and with a wrong one; with the
//!   right one a good KB is swapped in and a broken one refused, which `/readyz` and the metrics
//!   report.
//! - `kefu config check`, and `systemd-analyze verify` of `deploy/kefu.service` when the machine
//!   has it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod fake_telegram;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_telegram::{
    Fake, STAFF_CHAT, STAFF_ID, TOKEN, USER, WAIT, buttons, callback, dm, text, topic_msg,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SEED: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

const ADMIN_TOKEN: &str = "ops-test-admin-token-0123456789";

/// `kefu run` with its log in a file and its operations listener on a free port.
struct Bot {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    addr: String,
}

impl Bot {
    /// Starts against `fake` on `db_url` (a SQLite file in the bot's directory when `None`);
    /// waits (bounded) until the operations listener is up.
    async fn start(fake: &Fake, db_url: Option<&str>, env: &[(&str, &str)]) -> Bot {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("kefu.log");
        let db = db_url.map_or_else(
            || format!("sqlite://{}", dir.path().join("kefu.db").display()),
            str::to_owned,
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("run").current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("KEFU") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.env("KEFU__DATABASE__URL", db)
            .env("KEFU__TELEGRAM__TOKEN", TOKEN)
            .env("KEFU__TELEGRAM__API_URL", &fake.url)
            .env("KEFU__TELEGRAM__STAFF_CHAT_ID", STAFF_CHAT.to_string())
            .env("KEFU__TELEGRAM__STAFF_USER_IDS", STAFF_ID.to_string())
            .env("KEFU__SUPPORT__STAFF_LANGUAGE", "en")
            .env("KEFU__SERVER__LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("spawn kefu run");
        let mut bot = Bot {
            child,
            _dir: dir,
            log,
            addr: String::new(),
        };
        let deadline = Instant::now() + WAIT * 4;
        loop {
            let log = bot.log();
            if let Some(at) = log.find("listening on http://") {
                let rest = &log[at + "listening on http://".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
                    .unwrap_or(rest.len());
                bot.addr = rest[..end].to_owned();
                return bot;
            }
            if let Some(status) = bot.child.try_wait().expect("wait") {
                panic!("kefu run exited ({status}) before listening:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the operations listener did not start:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path, &[]).await
    }

    async fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        parse_metrics(&body)
    }

    /// Scrapes until `pred` holds for the metrics (bounded); returns them.
    async fn metrics_until(
        &self,
        what: &str,
        pred: impl Fn(&BTreeMap<String, f64>) -> bool,
    ) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.metrics().await;
            if pred(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; metrics: {m:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks `/readyz` until it answers `status` (bounded); returns the body.
    async fn readyz_until(&self, status: u16) -> Value {
        let deadline = Instant::now() + WAIT * 2;
        loop {
            let (got, body) = self.get("/readyz").await;
            let json: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("/readyz is not JSON ({e}): {body}"));
            if got == status {
                return json;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz did not turn {status}; last {got}: {json:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM; the exit code and the log (bounded wait).
    async fn stop(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status.code(), self.log());
            }
            assert!(Instant::now() < deadline, "kefu run did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status and the body.
async fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT * 2, stream.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// The text exposition as `series → value` (`name{labels}`, as written); panics on a line that
/// is neither a comment nor `series value`, and without the closing `# EOF`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not `series value`: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("bad value in {line}: {e}"));
        out.insert(series.to_owned(), value);
    }
    out
}

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

/// The sum of every series of `name` whose labels contain each of `labels` (`k="v"`).
fn sum(m: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    m.iter()
        .filter(|(k, _)| {
            let (n, l) = k.split_once('{').unwrap_or((k.as_str(), ""));
            n == name && labels.iter().all(|want| l.contains(want))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_json_logs_follow_a_conversation() {
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, None, &[("KEFU__LOG__FORMAT", "json")]).await;

    let (status, body) = bot.get("/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let ready = bot.readyz_until(200).await;
    assert_eq!(ready["checks"]["database"]["ready"], json!(true), "{ready}");
    assert_eq!(ready["checks"]["kb"]["ready"], json!(true), "{ready}");
    assert!(
        ready["checks"]["kb"]["intents"].as_u64().unwrap_or(0) > 0,
        "{ready}"
    );
    assert_eq!(
        ready["checks"]["telegram"]["role"],
        json!("leading"),
        "{ready}"
    );

    let before = bot.metrics().await;
    assert_eq!(
        value(
            &before,
            "kefu_inbound_messages_total{platform=\"telegram\"}"
        ),
        0.0
    );
    let kb_info: Vec<&String> = before
        .keys()
        .filter(|k| k.starts_with("kefu_kb_info{version=\""))
        .collect();
    assert_eq!(kb_info.len(), 1, "one KB version: {before:#?}");
    assert!(value(&before, "kefu_kb_intents") > 0.0);
    assert_eq!(
        value(&before, "kefu_outbox_depth{platform=\"telegram\"}"),
        0.0
    );
    assert!(
        before.contains_key("kefu_outbox_oldest_age_seconds{platform=\"telegram\"}"),
        "{before:#?}"
    );

    // A question the KB answers.
    fake.push(dm(1, 10, USER, "提币失败了怎么办"));
    fake.wait_for("the answer", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && !buttons(r).is_empty()
    })
    .await;
    let m = bot
        .metrics_until("the answer counted", |m| {
            sum(m, "kefu_delivery_attempts_total", &["outcome=\"sent\""]) >= 1.0
        })
        .await;
    assert_eq!(
        value(&m, "kefu_inbound_messages_total{platform=\"telegram\"}"),
        1.0
    );
    assert_eq!(
        sum(&m, "kefu_nlu_decisions_total", &["kind=\"answer\""]),
        1.0,
        "{m:#?}"
    );
    assert_eq!(value(&m, "kefu_nlu_decision_duration_seconds_count"), 1.0);
    assert_eq!(
        value(
            &m,
            "kefu_reply_enqueued_duration_seconds_count{platform=\"telegram\"}"
        ),
        1.0
    );

    // A ticket: opened, claimed, answered by staff, resolved and rated.
    fake.push(dm(2, 11, USER, "转人工"));
    let summary = fake
        .wait_for("the ticket's summary in the staff forum", |r| {
            r.method == "sendmessage"
                && r.body["chat_id"] == json!(STAFF_CHAT)
                && !buttons(r).is_empty()
        })
        .await;
    let thread = summary.body["message_thread_id"].as_i64().expect("a topic");
    let button = |label: &str| {
        buttons(&summary)
            .into_iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("{label} button"))
            .1
    };
    let m = bot
        .metrics_until("the ticket in the queue", |m| {
            value(m, "kefu_queue_length") == 1.0
        })
        .await;
    assert_eq!(
        sum(&m, "kefu_tickets_opened_total", &[]),
        1.0,
        "one ticket opened: {m:#?}"
    );
    assert!(value(&m, "kefu_queue_oldest_wait_seconds") >= 0.0);
    fake.push(callback(
        3,
        "cb-claim",
        STAFF_ID,
        STAFF_CHAT,
        &button("Claim"),
    ));
    fake.push(topic_msg(4, 12, thread, STAFF_ID, "I am looking into it"));
    fake.wait_for("the staff reply to the user", |r| {
        r.method == "sendmessage"
            && r.body["chat_id"] == json!(USER)
            && text(r).contains("I am looking into it")
    })
    .await;
    fake.push(topic_msg(5, 13, thread, STAFF_ID, "Still checking"));
    fake.push(callback(
        6,
        "cb-resolve",
        STAFF_ID,
        STAFF_CHAT,
        &button("Resolve"),
    ));
    let rating = fake
        .wait_for("the rating buttons", |r| {
            r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && buttons(r).len() >= 5
        })
        .await;
    let (_, five) = buttons(&rating).last().cloned().expect("a rating button");
    fake.push(callback(7, "cb-rate", USER, USER, &five));
    // A seed phrase: redacted before it is stored or logged.
    fake.push(dm(8, 14, USER, &format!("my seed phrase is {SEED}")));
    let m = bot
        .metrics_until("the rating and the secret counted", |m| {
            value(m, "kefu_ratings_total{score=\"5\"}") == 1.0
                && value(m, "kefu_secrets_redacted_total{platform=\"telegram\"}") >= 1.0
        })
        .await;
    assert_eq!(sum(&m, "kefu_tickets_claimed_total", &[]), 1.0, "{m:#?}");
    assert_eq!(sum(&m, "kefu_tickets_resolved_total", &[]), 1.0, "{m:#?}");
    assert_eq!(
        sum(&m, "kefu_first_response_seconds_count", &[]),
        1.0,
        "only the first staff message counts: {m:#?}"
    );
    assert_eq!(value(&m, "kefu_queue_length"), 0.0);
    assert_eq!(
        value(&m, "kefu_inbound_messages_total{platform=\"telegram\"}"),
        4.0,
        "the user's three messages and one button press (staff messages are not counted here)"
    );
    // Everything the bot enqueued goes out: the outbox drains.
    let m = bot
        .metrics_until("the outbox drained", |m| {
            value(m, "kefu_outbox_depth{platform=\"telegram\"}") == 0.0
        })
        .await;
    assert!(sum(&m, "kefu_delivery_attempts_total", &["outcome=\"sent\""]) >= 6.0);
    assert_eq!(
        value(&m, "kefu_outbox_oldest_age_seconds{platform=\"telegram\"}"),
        0.0
    );

    let (code, log) = bot.stop().await;
    assert_eq!(code, Some(0), "{log}");
    let mut spans_seen = false;
    for line in log.lines() {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(event.get(key).is_some(), "{key} missing: {line}");
        }
        if event["span"]["conversation"].is_number() && event["span"]["platform"] == "telegram" {
            spans_seen = true;
        }
    }
    assert!(spans_seen, "a turn's events carry its span fields:\n{log}");
    assert!(log.contains("\"message\":\"stopped\""), "{log}");
    assert!(
        !log.contains("abandon"),
        "no seed phrase in the log:\n{log}"
    );
    assert!(!log.contains("TEST-token"), "no token in the log");
}

/// A database of its own on `KEFU_TEST_DATABASE_URL`'s server, dropped with this.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create() -> Option<Database> {
        let Ok(admin) = std::env::var("KEFU_TEST_DATABASE_URL") else {
            let _ = writeln!(
                std::io::stderr(),
                "readiness test skipped: KEFU_TEST_DATABASE_URL is not set"
            );
            return None;
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("kefu_ops_{}_{nanos}", std::process::id());
        sql(&admin, &format!("CREATE DATABASE \"{name}\"")).await;
        let (base, _) = admin.rsplit_once('/').expect("a database URL");
        let url = format!("{base}/{name}");
        Some(Database { admin, name, url })
    }

    /// Refuses new connections and ends the open ones: the database is gone for the bot.
    async fn cut(&self) {
        sql(
            &self.admin,
            &format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false", self.name),
        )
        .await;
        sql(
            &self.admin,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                self.name
            ),
        )
        .await;
    }

    async fn restore(&self) {
        sql(
            &self.admin,
            &format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true", self.name),
        )
        .await;
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(sql(
                &admin,
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ));
        })
        .join();
    }
}

async fn sql(url: &str, statement: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to KEFU_TEST_DATABASE_URL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    let _ = conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    let Some(db) = Database::create().await else {
        return;
    };
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, Some(&db.url), &[]).await;
    let ready = bot.readyz_until(200).await;
    assert_eq!(ready["not_ready"], json!([]), "{ready}");

    db.cut().await;
    let down = bot.readyz_until(503).await;
    assert_eq!(down["ready"], json!(false), "{down}");
    assert!(
        down["not_ready"]
            .as_array()
            .is_some_and(|n| n.contains(&json!("database"))),
        "{down}"
    );
    assert_eq!(down["checks"]["database"]["ready"], json!(false), "{down}");
    assert!(
        down["checks"]["database"]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("database.url")),
        "{down}"
    );
    let (status, _) = bot.get("/healthz").await;
    assert_eq!(status, 200, "alive while the database is gone");

    db.restore().await;
    let back = bot.readyz_until(200).await;
    assert_eq!(back["checks"]["database"]["ready"], json!(true), "{back}");
    // And the bot serves again.
    fake.push(dm(1, 10, USER, "提币失败了怎么办"));
    fake.wait_for("an answer after the database came back", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER)
    })
    .await;
    let (code, log) = bot.stop().await;
    assert_eq!(code, Some(0), "{log}");
}

/// The shipped KB, copied where a test may break it.
fn copy_kb(to: &Path) -> PathBuf {
    let kb = to.join("kb");
    std::fs::create_dir_all(&kb).expect("mkdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kb");
    for entry in std::fs::read_dir(src).expect("config/kb") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&p, kb.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    kb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_reload_endpoint_needs_its_token_and_refuses_a_broken_kb() {
    let fake = Fake::start().await;
    // No token configured: the endpoint is off and says how to turn it on.
    let bot = Bot::start(&fake, None, &[]).await;
    let (status, body) = http(&bot.addr, "POST", "/admin/reload-kb", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("KEFU__SERVER__ADMIN_TOKEN"), "{body}");
    drop(bot);

    let dir = tempfile::tempdir().expect("temp dir");
    let kb = copy_kb(dir.path());
    let kb_arg = kb.display().to_string();
    let fake = Fake::start().await;
    let bot = Bot::start(
        &fake,
        None,
        &[
            ("KEFU__SERVER__ADMIN_TOKEN", ADMIN_TOKEN),
            ("KEFU__NLU__KB", &kb_arg),
        ],
    )
    .await;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (status, body) = http(
        &bot.addr,
        "POST",
        "/admin/reload-kb",
        &[("Authorization", "Bearer wrong-token-wrong-token")],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let before = bot.metrics().await;
    let version = |m: &BTreeMap<String, f64>| {
        m.keys()
            .find_map(|k| k.strip_prefix("kefu_kb_info{version=\""))
            .map(|v| v.trim_end_matches("\"}").to_owned())
            .expect("kefu_kb_info")
    };

    // A good change is swapped in: a new version.
    let extra = "[[intent]]\nid = \"test.ops\"\ntitle = { zh = \"运维\", en = \"Ops\" }\n\
        examples.zh = [\"火星链运维问题\", \"火星链运维怎么办\", \"火星链运维规则\", \"火星链运维时间\"]\n\
        examples.en = [\"mars chain operations\"]\nanswer.zh = \"运维答案\"\nanswer.en = \"Ops.\"\n";
    std::fs::write(kb.join("99-ops.toml"), extra).expect("write");
    let (status, body) = http(
        &bot.addr,
        "POST",
        "/admin/reload-kb",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("json");
    let m = bot
        .metrics_until("the reload counted", |m| {
            value(m, "kefu_kb_reloads_total{outcome=\"ok\"}") >= 1.0
        })
        .await;
    assert_ne!(version(&m), version(&before), "a new KB version");
    assert_eq!(json!(version(&m)), answer["version"], "{body}");
    assert_eq!(
        value(&m, "kefu_kb_intents"),
        value(&before, "kefu_kb_intents") + 1.0
    );

    // A broken KB is refused: the old one serves, /readyz names file:line, a metric counts it.
    std::fs::write(kb.join("99-ops.toml"), format!("{extra}\n[[intent]\nid = ")).expect("write");
    let (status, body) = http(
        &bot.addr,
        "POST",
        "/admin/reload-kb",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("99-ops.toml:"), "file:line: {body}");
    let m = bot
        .metrics_until("the failure counted", |m| {
            value(m, "kefu_kb_reloads_total{outcome=\"failed\"}") >= 1.0
        })
        .await;
    assert_eq!(
        value(&m, "kefu_kb_intents"),
        value(&before, "kefu_kb_intents") + 1.0,
        "the previous KB serves on"
    );
    let (status, body) = bot.get("/readyz").await;
    assert_eq!(status, 200, "the old KB serves: still ready: {body}");
    let ready: Value = serde_json::from_str(&body).expect("json");
    assert!(
        ready["checks"]["kb"]["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("99-ops.toml:")),
        "{ready:#}"
    );
    fake.push(dm(1, 10, USER, "火星链运维问题"));
    fake.wait_for("the answer from the KB serving", |r| {
        r.method == "sendmessage" && text(r).contains("运维答案")
    })
    .await;
}

#[test]
fn config_check_prints_the_effective_settings_with_secrets_masked() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.args(["config", "check"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied())
            .output()
            .expect("kefu config check")
    };
    let out = run(&[
        ("KEFU__TELEGRAM__TOKEN", TOKEN),
        ("KEFU__SERVER__ADMIN_TOKEN", ADMIN_TOKEN),
        (
            "KEFU__DATABASE__URL",
            "postgres://kefu:db-password@db.internal/kefu",
        ),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings: toml::Value = toml::from_str(&stdout).expect("TOML");
    assert_eq!(settings["telegram"]["token"].as_str(), Some("***"));
    assert_eq!(settings["server"]["admin_token"].as_str(), Some("***"));
    assert_eq!(settings["discord"]["token"].as_str(), Some(""), "not set");
    assert_eq!(
        settings["database"]["url"].as_str(),
        Some("postgres://kefu:***@db.internal/kefu")
    );
    assert_eq!(
        settings["server"]["listen"].as_str(),
        Some("127.0.0.1:9464")
    );
    assert_eq!(settings["log"]["format"].as_str(), Some("text"));
    assert!(stdout.contains("intents, version "), "{stdout}");
    for secret in ["TEST-token", ADMIN_TOKEN, "db-password"] {
        assert!(!stdout.contains(secret), "{secret} shown: {stdout}");
    }

    for (key, value) in [
        ("KEFU__SERVER__LISTEN", "localhost"),
        ("KEFU__LOG__LEVEL", "info,kefu=loud"),
        ("KEFU__LOG__FORMAT", "xml"),
        ("KEFU__FLOOD__MAX_MESSAGES", "many"),
    ] {
        let out = run(&[(key, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {stderr}");
        let named = key
            .trim_start_matches("KEFU__")
            .to_ascii_lowercase()
            .replace("__", ".");
        assert!(stderr.contains(&named), "{key}: names {named}: {stderr}");
    }
    let out = run(&[("KEFU__NLU__KB", "/no/such/kb")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nlu.kb"));
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kefu.service");
    let text = std::fs::read_to_string(&unit).expect("deploy/kefu.service");
    for line in [
        "User=kefu",
        "EnvironmentFile=",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ReadWritePaths=/var/lib/kefu",
    ] {
        assert!(text.contains(line), "{line} in the unit");
    }
    let Ok(out) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
    else {
        let _ = writeln!(
            std::io::stderr(),
            "systemd-analyze verify skipped: systemd-analyze is not on this machine"
        );
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The binary the unit names is not installed here: that one complaint is expected.
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("/usr/local/bin/kefu"))
        .collect();
    assert!(problems.is_empty(), "systemd-analyze verify: {stderr}");
}

/// SIGHUP reloads the KB (what `systemctl reload kefu` sends): the new file's intent is answered
/// and the reload is counted; the chat goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_kb() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kb = copy_kb(dir.path());
    let kb_arg = kb.display().to_string();
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, None, &[("KEFU__NLU__KB", &kb_arg)]).await;
    let before = bot.metrics().await;
    assert_eq!(
        value(&before, "kefu_kb_reloads_total{outcome=\"ok\"}"),
        0.0,
        "no reload yet"
    );
    // Unchanged files: the watcher does nothing; SIGHUP reloads anyway.
    let status = Command::new("kill")
        .args(["-HUP", &bot.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    bot.metrics_until("the SIGHUP reload counted", |m| {
        value(m, "kefu_kb_reloads_total{outcome=\"ok\"}") >= 1.0
    })
    .await;
    let log = std::fs::read_to_string(&bot.log).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("reload requested") && l.contains("SIGHUP")),
        "the log names the trigger: {log}"
    );
    // The process still serves after the swap.
    fake.push(dm(1, 10, USER, "USDT提不出来"));
    fake.wait_for("an answer after the reload", |r| {
        r.method == "sendmessage" && !text(r).is_empty()
    })
    .await;
    let (status, _) = bot.get("/healthz").await;
    assert_eq!(status, 200);
}

/// Housekeeping from the outside: a database with a month and a half of finished journal, and
/// one message still waiting to be handled. `kefu run` deletes the old finished rows at start,
/// counts them in `/metrics`, keeps the transcript and handles the waiting message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_deletes_the_old_finished_journal_and_keeps_the_rest() {
    use kefu_core::model::{ConversationRef, Inbound, Outgoing, Redacted, Sender};
    use kefu_store::{NewLine, Store};

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    let old = chrono::Utc::now() - chrono::TimeDelta::days(45);
    let chat = ConversationRef {
        platform: "telegram".to_owned(),
        chat_id: USER.to_string(),
        user_id: USER.to_string(),
    };
    let message = |id: &str, text: &str, at| Inbound {
        conversation: chat.clone(),
        user_name: "Alice".to_owned(),
        platform_message_id: id.to_owned(),
        text: text.to_owned(),
        at,
        attachments: Vec::new(),
        pressed: false,
    };
    {
        let store = Store::connect(&url).await.expect("store");
        let kefu_store::InboundOutcome::New(handled) = store
            .record_inbound(
                &message("1", "很久以前的问题", old),
                &Redacted::of("很久以前的问题"),
                "gone",
                old,
                old,
            )
            .await
            .unwrap()
        else {
            panic!("new message expected");
        };
        let mut tx = store.begin().await.unwrap();
        let conversation = tx.load_conversation(&chat).await.unwrap().id;
        tx.append_user_line(
            conversation,
            None,
            handled,
            &NewLine::new(old, Sender::User, "很久以前的问题"),
        )
        .await
        .unwrap();
        assert!(tx.finish_inbound(handled, "gone", old).await.unwrap());
        tx.commit().await.unwrap();
        let sent = store
            .enqueue(
                &Outgoing {
                    conversation: chat.clone(),
                    text: "很久以前的答复".to_owned(),
                    buttons: Vec::new(),
                    reply_to: None,
                },
                old,
            )
            .await
            .unwrap();
        assert!(store.mark_delivered(sent, Some("1"), old).await.unwrap());
        // Stored a moment ago by an instance that died before handling it: recovery answers it.
        let now = chrono::Utc::now();
        store
            .record_inbound(
                &message("2", "提币失败了怎么办", now),
                &Redacted::of("提币失败了怎么办"),
                "gone",
                now - chrono::TimeDelta::seconds(1),
                now,
            )
            .await
            .unwrap();
        store.close().await;
    }

    let fake = Fake::start().await;
    let bot = Bot::start(
        &fake,
        Some(&url),
        &[("KEFU__DATABASE__RETENTION_DAYS", "30")],
    )
    .await;
    let m = bot
        .metrics_until("the old journal deleted", |m| {
            sum(
                m,
                "kefu_pruned_rows_total",
                &[r#"table="inbound_messages""#],
            ) >= 1.0
        })
        .await;
    assert_eq!(
        sum(
            &m,
            "kefu_pruned_rows_total",
            &[r#"table="inbound_messages""#]
        ),
        1.0
    );
    assert_eq!(
        sum(&m, "kefu_pruned_rows_total", &[r#"table="outbox""#]),
        1.0
    );
    fake.wait_for("the waiting message answered", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER)
    })
    .await;
    let (code, log) = bot.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("housekeeping: deleted"), "{log}");

    let store = Store::connect(&url).await.expect("store");
    let lines: Vec<String> = store
        .transcript(&chat)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("很久以前的问题"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "提币失败了怎么办"), "{lines:?}");
    // The message handled now is recent: it stays, and a repeat of it is still recognised.
    let again = store
        .record_inbound(
            &message("2", "提币失败了怎么办", chrono::Utc::now()),
            &Redacted::of("提币失败了怎么办"),
            "test",
            chrono::Utc::now(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(again, kefu_store::InboundOutcome::Duplicate);
}
