//! The staff console in a real browser: headless Chromium, driven through chromedriver
//! (WebDriver, the `fantoccini` client), against the real `kefu run` serving the fake Bot API
//! (`tests/fake_telegram`) and its console on a free port.
//!
//! - A lead logs in; a user escalates on Telegram and the ticket appears in the open queue page
//!   without a reload; the lead claims it and replies, and the reply reaches the user on Telegram;
//!   the user's next line (with markup in it) appears on the ticket page without a reload, as text;
//!   the lead resolves and the user is asked for a rating. Screenshots of the queue, the ticket and
//!   the reports pages are saved under `target/screenshots/`.
//! - A claim from the console and one from the Telegram staff topic at the same time: exactly one
//!   wins, and the other side is told who holds the ticket.
//! - `kefu console` alone serves the console and stops promptly on SIGTERM with a live page open.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`;
//! `.ci/run` installs them).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod browser;
mod fake_telegram;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use browser::Browser;
use fake_telegram::{Fake, STAFF_CHAT, STAFF_ID, TOKEN, USER, WAIT, buttons, callback, dm, text};
use fantoccini::Locator;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// `kefu run` with its log in a file and its console on a free port.
struct Bot {
    child: Child,
    dir: tempfile::TempDir,
    log: PathBuf,
    console: String,
}

impl Bot {
    /// Creates the staff accounts (`kefu staff add`), then starts `kefu run` against `fake` and
    /// waits (bounded) until its console listens.
    async fn start(fake: &Fake, accounts: &[(&str, &str)]) -> Bot {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, role) in accounts {
            let out = kefu(dir.path())
                .args(["staff", "add", name, "--role", role])
                .env("KEFU_STAFF_PASSWORD", PASSWORD)
                .output()
                .expect("kefu staff add");
            assert!(
                out.status.success(),
                "kefu staff add {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = dir.path().join("kefu.log");
        let child = kefu(dir.path())
            .arg("run")
            .env("KEFU__TELEGRAM__TOKEN", TOKEN)
            .env("KEFU__TELEGRAM__API_URL", &fake.url)
            .env("KEFU__TELEGRAM__STAFF_CHAT_ID", STAFF_CHAT.to_string())
            .env("KEFU__TELEGRAM__STAFF_USER_IDS", STAFF_ID.to_string())
            .env("KEFU__SUPPORT__STAFF_LANGUAGE", "en")
            .env("KEFU__SERVER__LISTEN", "")
            .env("KEFU__CONSOLE__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn kefu run");
        let mut bot = Bot {
            child,
            dir,
            log,
            console: String::new(),
        };
        let deadline = Instant::now() + WAIT * 4;
        let marker = "console: serving on http://";
        loop {
            let log = bot.log();
            if let Some(at) = log.find(marker) {
                let rest = &log[at + marker.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
                    .unwrap_or(rest.len());
                bot.console = format!("http://{}", &rest[..end]);
                return bot;
            }
            if let Some(status) = bot.child.try_wait().expect("wait") {
                panic!("kefu run exited ({status}) before its console listened:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the console did not start:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.console)
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `kefu` binary on the database in `dir`, with no `KEFU…` setting inherited.
fn kefu(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("KEFU") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env(
        "KEFU__DATABASE__URL",
        format!("sqlite://{}", dir.join("kefu.db").display()),
    );
    cmd
}

/// Logs in as `name` and waits for the queue page.
async fn login(browser: &Browser, bot: &Bot, name: &str) {
    browser
        .c()
        .goto(&bot.url("/login"))
        .await
        .expect("open /login");
    let form = browser
        .c()
        .form(Locator::Css("form#login"))
        .await
        .expect("the login form");
    form.set_by_name("name", name).await.expect("name");
    form.set_by_name("password", PASSWORD)
        .await
        .expect("password");
    form.submit().await.expect("submit");
    browser.wait_for("table#queue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_works_a_telegram_ticket_in_the_browser_from_queue_to_rating() {
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, &[("lena", "lead")]).await;
    let browser = Browser::start().await;

    // 1. Log in.
    login(&browser, &bot, "lena").await;
    assert!(
        browser
            .c()
            .current_url()
            .await
            .expect("url")
            .path()
            .starts_with("/queue")
    );
    browser.mark().await;

    // 2. A user escalates on Telegram: the ticket appears in the open queue without a reload.
    fake.push(dm(1, 10, USER, "转人工"));
    let row = browser.wait_for("table#queue tr[data-ticket]").await;
    let id = row.attr("data-ticket").await.expect("attr").expect("an id");
    browser
        .wait_text(&format!("tr[data-ticket='{id}'] .platform"), "telegram")
        .await;
    assert!(
        browser.still_marked().await,
        "the queue updated without a reload"
    );
    browser.screenshot("console-queue").await;

    // 3. Open the ticket, claim it, reply: the reply reaches the user on Telegram.
    browser
        .c()
        .find(Locator::Css(&format!("tr[data-ticket='{id}'] .code a")))
        .await
        .expect("the ticket's link")
        .click()
        .await
        .expect("open the ticket");
    let code = browser.wait_for("#code").await.text().await.expect("code");
    assert!(!code.trim().is_empty(), "the verification code is shown");
    browser
        .wait_for("#claim-btn")
        .await
        .click()
        .await
        .expect("claim");
    browser.wait_text("#holder", "lena").await;
    let reply = "Hi, this is Lena from support: checking your withdrawal now";
    browser
        .wait_for("form#reply textarea[name=text]")
        .await
        .send_keys(reply)
        .await
        .expect("type the reply");
    browser
        .c()
        .find(Locator::Css("#send"))
        .await
        .expect("send")
        .click()
        .await
        .expect("send");
    fake.wait_for("the console's reply on Telegram", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && text(r).contains(reply)
    })
    .await;
    browser.wait_text("#transcript", reply).await;

    // 4. The user's next line appears without a reload, as text (markup in it stays inert).
    browser.mark().await;
    let hostile = "<script>window.__pwned=1;alert(1)</script><img src=x onerror=\"window.__pwned=2\"> still pending";
    fake.push(dm(2, 11, USER, hostile));
    browser
        .wait_text("#transcript .line.user:last-of-type .text", "still pending")
        .await;
    let shown = browser
        .c()
        .find(Locator::Css("#transcript .line.user:last-of-type .text"))
        .await
        .expect("the user's line")
        .text()
        .await
        .expect("text");
    assert!(
        shown.contains("<script>"),
        "markup shows as text: {shown:?}"
    );
    assert!(
        browser.still_marked().await,
        "the ticket updated without a reload"
    );
    let injected = browser
        .c()
        .execute(
            "return [window.__pwned === undefined, \
                     document.querySelectorAll('#transcript script, #transcript img').length];",
            vec![],
        )
        .await
        .expect("inspect the DOM");
    assert_eq!(
        injected,
        json!([true, 0]),
        "nothing the user wrote ran or became an element"
    );
    assert!(
        browser.c().get_alert_text().await.is_err(),
        "no alert was opened"
    );
    browser.screenshot("console-ticket").await;

    // 5. Resolve: the user is asked to rate the help.
    browser
        .c()
        .find(Locator::Css("#resolve-btn"))
        .await
        .expect("resolve")
        .click()
        .await
        .expect("resolve");
    browser.wait_text("#state", "resolved").await;
    let rating = fake
        .wait_for("the rating request", |r| {
            r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && buttons(r).len() >= 5
        })
        .await;
    let (_, five) = buttons(&rating).last().cloned().expect("a rating button");
    fake.push(callback(3, "cb-rate", USER, USER, &five));
    fake.wait_for("the rating acknowledged", |r| {
        r.method == "answercallbackquery" && r.body["callback_query_id"] == "cb-rate"
    })
    .await;

    // The reports (a lead's page): charts drawn. The bot acknowledges a button press before it
    // stores the rating, so the page is reloaded (bounded) until the rating is in.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browser
            .c()
            .goto(&bot.url("/reports"))
            .await
            .expect("open /reports");
        let shown = browser.wait_for("#mean-rating").await.text().await;
        if shown.is_ok_and(|t| t.contains("5.00 / 5")) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for chart in [
        "svg#chart-tickets",
        "svg#chart-decisions",
        "svg#chart-ratings",
    ] {
        let svg = browser.wait_for(chart).await;
        let (_, _, w, h) = svg.rectangle().await.expect("a box");
        assert!(w > 100.0 && h > 50.0, "{chart} is drawn ({w}×{h})");
    }
    browser.wait_for("table#misses").await;
    browser.wait_text("#mean-rating", "5.00 / 5").await;
    browser.wait_text("#opened", "1").await;
    browser.wait_text("#resolved", "1").await;
    browser.screenshot("console-reports").await;

    browser.close().await;
    let log = bot.log();
    assert!(!log.contains(PASSWORD), "no password in the log");
    drop(bot);
}

/// A console claim and a Telegram claim of the same ticket at once: exactly one wins; the console
/// names the holder when it lost, the Telegram toast does when Telegram lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_the_console_and_one_from_telegram_exactly_one_wins() {
    let fake = Fake::start().await;
    let bot = Bot::start(&fake, &[("omar", "agent")]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // The API, with a personal token (`kefu staff token`).
    let out = kefu(bot.dir.path())
        .args(["staff", "token", "omar"])
        .output()
        .expect("kefu staff token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .expect("a token")
        .to_owned();

    fake.push(dm(1, 10, USER, "转人工"));
    let summary = fake
        .wait_for("the ticket's summary in the staff forum", |r| {
            r.method == "sendmessage"
                && r.body["chat_id"] == json!(STAFF_CHAT)
                && !buttons(r).is_empty()
        })
        .await;
    let claim = buttons(&summary)
        .into_iter()
        .find(|(l, _)| l == "Claim")
        .expect("a Claim button")
        .1;
    let queue: Value = http
        .get(bot.url("/api/queue"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET /api/queue")
        .json()
        .await
        .expect("json");
    let id = queue[0]["id"].as_i64().expect("the ticket in the queue");

    // Both at once.
    fake.push(callback(2, "cb-claim", STAFF_ID, STAFF_CHAT, &claim));
    let console = http
        .post(bot.url(&format!("/api/tickets/{id}/claim")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("POST claim");
    let console_status = console.status().as_u16();
    let console_body: Value = console.json().await.unwrap_or(Value::Null);
    let toast = fake
        .wait_for("the Telegram claim answered", |r| {
            r.method == "answercallbackquery" && r.body["callback_query_id"] == "cb-claim"
        })
        .await;
    let toast = toast.body["text"].as_str().unwrap_or_default().to_owned();

    let ticket: Value = http
        .get(bot.url(&format!("/api/tickets/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET ticket")
        .json()
        .await
        .expect("json");
    let holder = ticket["assignee"]
        .as_str()
        .or_else(|| ticket["holder"].as_str())
        .expect("one holder")
        .to_owned();
    if console_status == 200 {
        assert_eq!(holder, "omar", "the console won: {ticket}");
        assert!(
            toast.contains("omar"),
            "Telegram is told who holds it: {toast:?}"
        );
    } else {
        assert_eq!(console_status, 409, "{console_body}");
        assert_ne!(holder, "omar", "Telegram won: {ticket}");
        assert_eq!(
            console_body["holder"],
            json!(holder),
            "the console names the holder"
        );
    }
    drop(bot);
}

/// `kefu console` alone: it serves the console on the configured database (no platform token, no
/// KB), refuses pages without a session, and stops promptly on SIGTERM even with a live page
/// (an open event stream) connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kefu_console_alone_serves_the_console_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = kefu(dir.path())
        .args(["staff", "add", "lena", "--role", "lead"])
        .env("KEFU_STAFF_PASSWORD", PASSWORD)
        .output()
        .expect("kefu staff add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = dir.path().join("console.log");
    let mut child = kefu(dir.path())
        .arg("console")
        .env("KEFU__CONSOLE__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn kefu console");
    let marker = "console: serving on http://";
    let deadline = Instant::now() + WAIT;
    let base = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
                .unwrap_or(rest.len());
            break format!("http://{}", &rest[..end]);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("kefu console exited ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "kefu console did not listen:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("GET /login");
    assert_eq!(login.status().as_u16(), 200);
    let queue = http
        .get(format!("{base}/queue"))
        .send()
        .await
        .expect("GET /queue");
    assert_eq!(
        queue.status().as_u16(),
        303,
        "no session: to the login page"
    );
    let api = http
        .get(format!("{base}/api/queue"))
        .send()
        .await
        .expect("GET /api/queue");
    assert_eq!(api.status().as_u16(), 401);

    // A live page's event stream, open while the console is told to stop.
    let out = kefu(dir.path())
        .args(["staff", "token", "lena"])
        .output()
        .expect("kefu staff token");
    let token = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .expect("a token")
        .to_owned();
    let stream = http
        .get(format!("{base}/events/queue"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET /events/queue");
    assert_eq!(stream.status().as_u16(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kefu console did not stop on SIGTERM with a live page open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        exit.success(),
        "{exit}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(stream);
}
