//! End-to-end tests of the Discord adapter: the real binary (`kefu run`) against the fake Discord
//! HTTP API and gateway in `tests/fake_discord` (axum + WebSocket on 127.0.0.1:0). Tests dispatch
//! gateway events and assert on the HTTP requests the bot made. Each test has its own SQLite file
//! and fake; waits poll the recorded requests with a deadline. The last test runs both platforms
//! in one process, with the Telegram fake from `tests/fake_telegram`.

#![recursion_limit = "256"]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod fake_discord;
mod fake_telegram;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_discord::{
    CHANNEL, Fake, GUILD, Req, STAFF_CHANNEL, STAFF_ROLE, TOKEN, WAIT, buttons,
    component_interaction, content, message, posts_to, thread_message,
};
use serde_json::{Value, json};

/// A DM channel and its user.
const DM: u64 = 400_000_000_000_000_001;
const ALICE: (u64, &str) = (500_000_000_000_000_001, "Alice");
const CAROL: (u64, &str) = (500_000_000_000_000_003, "Carol");
/// Staff by role (not in the id list) and by id.
const BOB: (u64, &str) = (600_000_000_000_000_001, "Bob");
const DAVE: (u64, &str) = (600_000_000_000_000_002, "Dave");
/// Neither.
const MALLORY: (u64, &str) = (700_000_000_000_000_001, "Mallory");

/// `kefu run` with Discord on (and Telegram when `extra_env` says so), on a database of its own.
struct Kefu {
    child: Child,
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Kefu {
    fn start(fake: &Fake, extra_env: &[(&str, String)], kb: Option<&Path>) -> Kefu {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("kefu.db");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("run").current_dir(env!("CARGO_MANIFEST_DIR"));
        if let Some(kb) = kb {
            cmd.arg("--kb").arg(kb);
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KEFU__DATABASE__URL", format!("sqlite://{}", db.display()))
            .env("KEFU__DISCORD__TOKEN", TOKEN)
            .env("KEFU__DISCORD__API_URL", &fake.url)
            .env("KEFU__DISCORD__STAFF_CHANNEL_ID", STAFF_CHANNEL.to_string())
            .env("KEFU__DISCORD__STAFF_USER_IDS", DAVE.0.to_string())
            .env("KEFU__DISCORD__STAFF_ROLE_ID", STAFF_ROLE.to_string())
            // Staff-side texts in English, which the assertions read (the default is Chinese).
            .env("KEFU__SUPPORT__STAFF_LANGUAGE", "en")
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Kefu {
            child: cmd.spawn().expect("spawn kefu run"),
            _dir: dir,
            db,
        }
    }

    /// SIGTERM, then the exit status and stderr (bounded wait).
    fn stop(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code(), err);
            }
            assert!(
                Instant::now() < deadline,
                "kefu run did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Another `kefu` command on this process's database (`staff add …`), with `env` added;
    /// asserts it succeeds.
    fn cli(&self, args: &[&str], env: &[(&str, &str)]) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "KEFU__DATABASE__URL",
            format!("sqlite://{}", self.db.display()),
        )
        .envs(env.iter().copied());
        let out = cmd.output().expect("kefu");
        assert!(
            out.status.success(),
            "kefu {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kefu desk … --json` on this process's database.
    fn desk_json(&self, args: &[&str]) -> Value {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("desk")
            .args(args)
            .arg("--json")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "KEFU__DATABASE__URL",
            format!("sqlite://{}", self.db.display()),
        );
        let out = cmd.output().expect("kefu desk");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

impl Drop for Kefu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dm(id: u64, author: (u64, &str), text: &str) -> Value {
    message(id, DM, None, author, text, false, &[])
}

fn in_channel(id: u64, author: (u64, &str), text: &str, mention: bool) -> Value {
    message(id, CHANNEL, Some(GUILD), author, text, mention, &[])
}

/// Nothing the bot sends may ping: `allowed_mentions` present with nothing allowed.
fn assert_inert(r: &Req) {
    let am = &r.body["allowed_mentions"];
    assert_eq!(
        am["parse"],
        json!([]),
        "allowed_mentions.parse empty: {:?}",
        r.body
    );
    assert!(
        am["roles"].as_array().is_none_or(Vec::is_empty)
            && am["users"].as_array().is_none_or(Vec::is_empty),
        "{:?}",
        r.body
    );
}

/// Waits until the gateway session is up (the fake saw an IDENTIFY).
async fn connected(fake: &Fake) {
    fake.wait_state("the bot's IDENTIFY", |f| f.identifies() >= 1)
        .await;
}

/// Counts for a moment: lets anything that should NOT happen show up.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_and_dms_are_answered_the_rest_ignored_and_sigterm_stops_cleanly() {
    let fake = Fake::start().await;
    let kefu = Kefu::start(&fake, &[], None);
    connected(&fake).await;
    let intents = fake.intents().expect("IDENTIFY carried intents");
    assert_ne!(intents & (1 << 9), 0, "GUILD_MESSAGES");
    assert_ne!(intents & (1 << 12), 0, "DIRECT_MESSAGES");
    assert_ne!(intents & (1 << 15), 0, "MESSAGE_CONTENT");
    assert_eq!(intents & (1 << 1), 0, "no GUILD_MEMBERS");
    assert_eq!(intents & (1 << 8), 0, "no GUILD_PRESENCES");

    // Without a mention: ignored. With one: answered as a reply to that message.
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel(1001, CAROL, "提币失败了怎么办", false),
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel(1002, ALICE, "提币失败了怎么办", true),
    );
    let answer = fake
        .wait_for("the answer in the channel", |r| {
            r.path == format!("/channels/{CHANNEL}/messages") && !buttons(r).is_empty()
        })
        .await;
    assert!(content(&answer).contains("提币"), "{}", content(&answer));
    assert_inert(&answer);
    settle().await;
    assert_eq!(
        answer.body["message_reference"]["message_id"],
        json!("1002")
    );
    // Carol's message got nothing: no answer quotes it.
    let posts = fake.requests();
    let posts = posts_to(&posts, CHANNEL);
    assert!(
        posts
            .iter()
            .all(|p| p.body["message_reference"]["message_id"] != json!("1001")),
        "{posts:?}"
    );

    // A DM: every message, no quote.
    fake.dispatch(
        "MESSAGE_CREATE",
        dm(1003, ALICE, "how do I reset my password"),
    );
    let answer = fake
        .wait_for("the DM answer", |r| {
            r.path == format!("/channels/{DM}/messages") && !buttons(r).is_empty()
        })
        .await;
    assert!(
        content(&answer).to_lowercase().contains("password"),
        "{}",
        content(&answer)
    );
    assert!(
        answer
            .body
            .get("message_reference")
            .is_none_or(Value::is_null)
    );
    assert_inert(&answer);

    let (code, stderr) = kefu.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        !stderr.contains("discord-test-token"),
        "the token is never printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_that_goes_on_moves_into_a_thread() {
    let fake = Fake::start().await;
    let _kefu = Kefu::start(&fake, &[], None);
    connected(&fake).await;
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel(2001, ALICE, "充值没到账", true),
    );
    fake.wait_for("the first answer in the channel", |r| {
        r.path == format!("/channels/{CHANNEL}/messages") && !buttons(r).is_empty()
    })
    .await;
    fake.dispatch("MESSAGE_CREATE", in_channel(2002, ALICE, "转人工", true));
    let started = fake
        .wait_for("a thread started from the second message", |r| {
            r.method == "POST" && r.path == format!("/channels/{CHANNEL}/messages/2002/threads")
        })
        .await;
    assert!(
        started.body["name"]
            .as_str()
            .is_some_and(|n| n.contains("Alice"))
    );
    // A thread started from a message has the message's id.
    let thread = 2002;
    fake.wait_until("the next answer in the thread", |reqs| {
        !posts_to(reqs, thread).is_empty()
    })
    .await;
    // In the thread, Alice talks without mentioning the bot.
    let before = posts_to(&fake.requests(), thread).len();
    fake.dispatch(
        "MESSAGE_CREATE",
        thread_message(2003, thread, ALICE, "取消", &[]),
    );
    fake.wait_until("an answer to the unmentioned thread message", |reqs| {
        posts_to(reqs, thread).len() > before
    })
    .await;
    // Someone else's unmentioned message in that thread is not answered.
    let before = posts_to(&fake.requests(), thread).len();
    fake.dispatch(
        "MESSAGE_CREATE",
        thread_message(2004, thread, CAROL, "hello?", &[]),
    );
    settle().await;
    assert_eq!(posts_to(&fake.requests(), thread).len(), before);
    for p in posts_to(&fake.requests(), CHANNEL) {
        assert_ne!(
            p.body["message_reference"]["message_id"],
            json!("2002"),
            "the second turn is answered in the thread"
        );
    }
}

/// The private thread opened for a ticket, its code, and the Claim / Resolve custom ids.
async fn staff_thread(fake: &Fake) -> (u64, String, String, String) {
    let created = fake
        .wait_for("a private thread in the staff channel", |r| {
            r.method == "POST" && r.path == format!("/channels/{STAFF_CHANNEL}/threads")
        })
        .await;
    assert_eq!(created.body["type"], json!(12), "a private thread");
    assert_eq!(created.body["invitable"], json!(false));
    let name = created.body["name"].as_str().expect("name").to_owned();
    assert_eq!(name.split(" · ").count(), 3, "{name}");
    let code = name.split(" · ").next().expect("code").to_owned();
    let summary = fake
        .wait_for("the summary post", |r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && !buttons(r).is_empty()
                && buttons(r).iter().any(|(l, _)| l == "Claim")
        })
        .await;
    let thread: u64 = summary
        .path
        .split('/')
        .nth(2)
        .expect("channel")
        .parse()
        .expect("id");
    assert!(content(&summary).contains(&code), "{}", content(&summary));
    let b = buttons(&summary);
    let claim = b
        .iter()
        .find(|(l, _)| l == "Claim")
        .expect("Claim")
        .1
        .clone();
    let resolve = b
        .iter()
        .find(|(l, _)| l == "Resolve")
        .expect("Resolve")
        .1
        .clone();
    (thread, code, claim, resolve)
}

fn press(
    id: u64,
    channel: u64,
    guild: Option<u64>,
    who: (u64, &str),
    roles: &[u64],
    custom_id: &str,
) -> Value {
    component_interaction(
        id,
        &format!("tok-{id}"),
        channel,
        guild,
        who,
        roles,
        custom_id,
        1,
    )
}

fn callback_for(r: &Req, id: u64) -> bool {
    r.method == "POST" && r.path == format!("/interactions/{id}/tok-{id}/callback")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_worked_in_a_private_staff_thread() {
    let fake = Fake::start().await;
    let kefu = Kefu::start(&fake, &[], None);
    connected(&fake).await;
    fake.dispatch("MESSAGE_CREATE", dm(3001, ALICE, "转人工"));
    let (thread, code, claim, resolve) = staff_thread(&fake).await;
    let summary = posts_to(&fake.requests(), thread)[0].clone();
    assert!(
        content(&summary).contains("转人工"),
        "the transcript is posted"
    );
    // The role is mentioned (adds its members to the private thread), nothing else pings.
    assert_eq!(
        summary.body["allowed_mentions"]["roles"],
        json!([STAFF_ROLE.to_string()])
    );
    assert_eq!(summary.body["allowed_mentions"]["parse"], json!([]));
    fake.wait_for("the staff member by id added to the thread", |r| {
        r.method == "PUT" && r.path == format!("/channels/{thread}/thread-members/{}", DAVE.0)
    })
    .await;

    // Someone who is not staff is refused, ephemerally.
    fake.dispatch(
        "INTERACTION_CREATE",
        press(3100, thread, Some(GUILD), MALLORY, &[], &claim),
    );
    let refusal = fake
        .wait_for("the refusal", |r| callback_for(r, 3100))
        .await;
    assert_eq!(refusal.body["type"], json!(4));
    assert_eq!(refusal.body["data"]["flags"], json!(64), "ephemeral");
    assert!(
        refusal.body["data"]["content"]
            .as_str()
            .is_some_and(|t| t.contains("只有客服人员"))
    );

    // Staff (by role) claims: acknowledged, the user is told, with the verification code.
    fake.dispatch(
        "INTERACTION_CREATE",
        press(3101, thread, Some(GUILD), BOB, &[STAFF_ROLE], &claim),
    );
    let ack = fake
        .wait_for("the claim acknowledged", |r| callback_for(r, 3101))
        .await;
    assert_eq!(ack.body["type"], json!(6));
    fake.wait_for("the staff-joined message to the user", |r| {
        r.path == format!("/channels/{DM}/messages")
            && content(r).contains(&code)
            && content(r).contains("Bob")
    })
    .await;

    // The user's reply shows up in the thread; "@everyone" arrives inert.
    fake.dispatch("MESSAGE_CREATE", dm(3002, ALICE, "@everyone 是币安 <@&1>"));
    let relayed = fake
        .wait_for("the user's line relayed to the thread", |r| {
            r.path == format!("/channels/{thread}/messages") && content(r).contains("是币安")
        })
        .await;
    assert!(content(&relayed).contains("@everyone"));
    assert_inert(&relayed);

    // Staff text in the thread goes to the user, inert too.
    fake.dispatch(
        "MESSAGE_CREATE",
        thread_message(
            3003,
            thread,
            BOB,
            "@everyone 请提供提币记录截图",
            &[STAFF_ROLE],
        ),
    );
    let reply = fake
        .wait_for("the staff reply to the user", |r| {
            r.path == format!("/channels/{DM}/messages")
                && content(r).contains("请提供提币记录截图")
        })
        .await;
    assert_inert(&reply);
    // A non-staff message in the thread is not relayed.
    fake.dispatch(
        "MESSAGE_CREATE",
        thread_message(3004, thread, MALLORY, "秘密", &[]),
    );

    // Resolve: the thread is archived (not locked: the label buttons that follow stay
    // clickable), the user gets the rating buttons.
    fake.dispatch(
        "INTERACTION_CREATE",
        press(3102, thread, Some(GUILD), BOB, &[STAFF_ROLE], &resolve),
    );
    let archived = fake
        .wait_for("the thread archived", |r| {
            r.method == "PATCH" && r.path == format!("/channels/{thread}")
        })
        .await;
    assert_eq!(archived.body["archived"], json!(true));
    assert_eq!(archived.body["locked"], json!(false));
    let rating = fake
        .wait_for("the rating buttons", |r| {
            r.path == format!("/channels/{DM}/messages") && buttons(r).len() >= 5
        })
        .await;
    let (_, five) = buttons(&rating).last().cloned().expect("a rating button");
    fake.dispatch(
        "INTERACTION_CREATE",
        press(3103, DM, None, ALICE, &[], &five),
    );
    fake.wait_for("the rating acknowledged", |r| callback_for(r, 3103))
        .await;
    fake.wait_until("thanks for the rating", |reqs| {
        posts_to(reqs, DM)
            .iter()
            .any(|r| r.at > rating.at && content(r).contains("谢谢"))
    })
    .await;
    fake.dispatch("MESSAGE_CREATE", dm(3005, ALICE, "跳过"));
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = kefu.desk_json(&["show", &code]);
        if shown["ratings"][0]["score"] == json!(5) {
            assert_eq!(shown["state"], "resolved", "{shown}");
            let transcript = shown.to_string();
            assert!(
                !transcript.contains("秘密"),
                "a non-staff thread message is not relayed"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the rating is stored: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_resolve_in_the_thread_staff_label_the_question_with_a_button() {
    let fake = Fake::start().await;
    let kefu = Kefu::start(&fake, &[], None);
    // The presser is linked to the account "omar": the label is recorded under that name.
    kefu.cli(
        &["staff", "add", "omar"],
        &[("KEFU_STAFF_PASSWORD", "long enough password")],
    );
    kefu.cli(
        &["staff", "link", "omar", "--discord", &DAVE.0.to_string()],
        &[],
    );
    connected(&fake).await;
    fake.dispatch("MESSAGE_CREATE", dm(8001, ALICE, "我的账户被冻结了怎么办"));
    fake.wait_for("the answer", |r| {
        r.path == format!("/channels/{DM}/messages")
    })
    .await;
    fake.dispatch("MESSAGE_CREATE", dm(8002, ALICE, "转人工"));
    let (thread, code, claim, resolve) = staff_thread(&fake).await;
    fake.dispatch(
        "INTERACTION_CREATE",
        press(8101, thread, Some(GUILD), DAVE, &[], &claim),
    );
    // The ticket-opened message carries the code too: the staff-joined one also names omar.
    fake.wait_for("the staff-joined message to the user", |r| {
        r.path == format!("/channels/{DM}/messages")
            && content(r).contains(&code)
            && content(r).contains("omar")
    })
    .await;
    fake.dispatch(
        "INTERACTION_CREATE",
        press(8102, thread, Some(GUILD), DAVE, &[], &resolve),
    );
    let archive = |r: &Req| r.method == "PATCH" && r.path == format!("/channels/{thread}");
    let reqs = fake
        .wait_until("the label post, then the thread archived", |reqs| {
            reqs.iter().any(archive)
        })
        .await;
    let post_at = reqs
        .iter()
        .position(|r| {
            r.method == "POST"
                && r.path == format!("/channels/{thread}/messages")
                && content(r).contains("What was the question about?")
        })
        .unwrap_or_else(|| panic!("the label post: {reqs:#?}"));
    let archived_at = reqs.iter().position(archive).unwrap();
    assert!(
        post_at < archived_at,
        "posted before the thread was archived"
    );
    assert_eq!(reqs[archived_at].body["archived"], json!(true));
    assert_eq!(
        reqs[archived_at].body["locked"],
        json!(false),
        "a locked thread's buttons cannot be clicked"
    );
    let post = &reqs[post_at];
    assert!(
        content(post).contains("我的账户被冻结了怎么办"),
        "{}",
        content(post)
    );
    assert_inert(post);
    let choices = buttons(post);
    assert!(
        (3..=5).contains(&choices.len()),
        "up to 3 intents, new topic, not a question: {choices:?}"
    );
    assert!(
        choices
            .iter()
            .all(|(_, id)| id.starts_with("staff:label:") && id.len() <= 100),
        "{choices:?}"
    );
    let labels: Vec<&str> = choices.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        &labels[labels.len() - 2..],
        ["New topic", "Not a question"],
        "{choices:?}"
    );
    let (_, locked) = choices
        .iter()
        .find(|(_, id)| id.ends_with(":i:account.locked"))
        .unwrap_or_else(|| panic!("the likely intent: {choices:?}"))
        .clone();

    // Only staff may label: anyone else is refused, ephemerally, and nothing is recorded.
    fake.dispatch(
        "INTERACTION_CREATE",
        press(8103, thread, Some(GUILD), MALLORY, &[], &locked),
    );
    let refusal = fake
        .wait_for("the refusal", |r| callback_for(r, 8103))
        .await;
    assert_eq!(refusal.body["type"], json!(4));
    assert_eq!(refusal.body["data"]["flags"], json!(64), "ephemeral");
    settle().await;
    assert_eq!(kefu.desk_json(&["show", &code])["label"], Value::Null);

    // Staff press a label button: acknowledged, told (ephemerally, in their language) what was
    // recorded, and the thread is archived again.
    let before = fake.requests().len();
    fake.dispatch(
        "INTERACTION_CREATE",
        press(8104, thread, Some(GUILD), DAVE, &[], &locked),
    );
    let ack = fake
        .wait_for("the label press acknowledged", |r| callback_for(r, 8104))
        .await;
    assert_eq!(ack.body["type"], json!(6));
    let told = fake
        .wait_for("the ephemeral answer", |r| {
            r.method == "POST" && r.path.starts_with("/webhooks/") && r.path.ends_with("/tok-8104")
        })
        .await;
    assert_eq!(told.body["flags"], json!(64), "ephemeral");
    assert!(
        content(&told).contains("已记录") && content(&told).contains("account.locked"),
        "in the presser's language (zh-CN): {}",
        content(&told)
    );
    fake.wait_until("the thread archived again", |reqs| {
        reqs[before..].iter().any(archive)
    })
    .await;
    let shown = kefu.desk_json(&["show", &code]);
    assert_eq!(shown["state"], "resolved", "{shown}");
    let label = &shown["label"];
    assert_eq!(label["kind"], "intent", "{shown}");
    assert_eq!(label["name"], "account.locked");
    assert_eq!(label["text"], "我的账户被冻结了怎么办");
    assert_eq!(label["labelled_by"], "omar", "the linked account's name");

    // "Not a question" replaces it.
    let (_, none) = choices.last().cloned().unwrap();
    fake.dispatch(
        "INTERACTION_CREATE",
        press(8105, thread, Some(GUILD), BOB, &[STAFF_ROLE], &none),
    );
    fake.wait_for("the second answer", |r| {
        r.method == "POST" && r.path.ends_with("/tok-8105") && r.path.starts_with("/webhooks/")
    })
    .await;
    let shown = kefu.desk_json(&["show", &code]);
    assert_eq!(shown["label"]["kind"], "not_a_question", "{shown}");
    assert_eq!(
        shown["label"]["labelled_by"], "Bob",
        "an unlinked presser's own name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_dispatched_twice_is_answered_once_and_a_dropped_gateway_resumes() {
    let fake = Fake::start().await;
    let _kefu = Kefu::start(&fake, &[], None);
    connected(&fake).await;
    let question = dm(4001, ALICE, "2FA丢了怎么办");
    fake.dispatch("MESSAGE_CREATE", question.clone());
    fake.dispatch("MESSAGE_CREATE", question);
    fake.wait_until("the answer", |reqs| answers(reqs) >= 1)
        .await;
    settle().await;
    assert_eq!(answers(&fake.requests()), 1, "one answer for one message");

    // The connection drops; an event dispatched meanwhile is replayed on RESUME, once.
    fake.drop_connection();
    fake.dispatch("MESSAGE_CREATE", dm(4002, ALICE, "USDT提不出来"));
    fake.wait_state("the session resumed", |f| f.resumes() >= 1)
        .await;
    assert_eq!(fake.identifies(), 1, "resumed, not re-identified");
    fake.wait_until(
        "the answer to the message sent while disconnected",
        |reqs| answers(reqs) >= 2,
    )
    .await;
    fake.dispatch("MESSAGE_CREATE", dm(4003, ALICE, "withdrawal pending 3h??"));
    fake.wait_until("the answer after the resume", |reqs| answers(reqs) >= 3)
        .await;
    settle().await;
    assert_eq!(answers(&fake.requests()), 3, "each message answered once");
}

/// Answers in the DM: each question gets one message with buttons ("did this help?", "did you
/// mean…?"); the greeting has none.
fn answers(reqs: &[Req]) -> usize {
    posts_to(reqs, DM)
        .iter()
        .filter(|r| !buttons(r).is_empty())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_phrase_is_deleted_and_a_rate_limited_send_is_retried() {
    let fake = Fake::start().await;
    let _kefu = Kefu::start(&fake, &[], None);
    connected(&fake).await;
    fake.limit_next_sends(1);
    // A valid 12-word BIP39 mnemonic (checksum included).
    let phrase = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel(5001, ALICE, &format!("my words {phrase}"), true),
    );
    fake.wait_for("the message deleted", |r| {
        r.method == "DELETE" && r.path == format!("/channels/{CHANNEL}/messages/5001")
    })
    .await;
    let reqs = fake
        .wait_until("the warning, delivered after a 429", |reqs| {
            !posts_to(reqs, CHANNEL).is_empty()
        })
        .await;
    let limited: Vec<&Req> = reqs.iter().filter(|r| r.limited).collect();
    assert_eq!(limited.len(), 1, "the first send was refused");
    let warning = posts_to(&reqs, CHANNEL)[0];
    assert!(
        warning.at >= limited[0].at + Duration::from_millis(900),
        "retried about 1 s later"
    );
    assert!(!content(warning).contains("sausage"), "never echoed");
    settle().await;
    let all = fake.requests();
    assert!(
        all.iter()
            .all(|r| !r.body.to_string().contains("wave sausage")),
        "the phrase never leaves the bot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_answer_is_split_under_2000_characters() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kb = dir.path().join("kb");
    std::fs::create_dir(&kb).expect("kb dir");
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kb")).expect("kb")
    {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, kb.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let line = "火星链质押说明：锁仓期间不可赎回，收益按日发放到现货账户。";
    let answer = vec![line; 3000 / line.chars().count() + 1].join("\n");
    std::fs::write(
        kb.join("99-long.toml"),
        format!(
            "[[intent]]\nid = \"test.long\"\ntitle = {{ zh = \"长答案\", en = \"Long\" }}\n\
             examples.zh = [\"火星链质押规则\", \"火星链怎么质押\", \"火星链质押收益\", \"火星链锁仓\"]\n\
             examples.en = [\"mars chain staking rules\"]\n\
             answer.zh = \"\"\"{answer}\"\"\"\nanswer.en = \"\"\"Long.\"\"\"\n"
        ),
    )
    .expect("write kb");
    let fake = Fake::start().await;
    let _kefu = Kefu::start(&fake, &[], Some(&kb));
    connected(&fake).await;
    fake.dispatch("MESSAGE_CREATE", dm(6001, ALICE, "火星链质押规则"));
    let reqs = fake
        .wait_until("two parts", |reqs| {
            posts_to(reqs, DM)
                .iter()
                .filter(|r| content(r).contains("火星链质押说明"))
                .count()
                >= 2
        })
        .await;
    let parts: Vec<&str> = posts_to(&reqs, DM)
        .into_iter()
        .map(content)
        .filter(|t| t.contains("火星链质押说明"))
        .collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|p| p.chars().count() <= 2000));
    let total: usize = parts.iter().map(|p| p.matches(line).count()).sum();
    assert_eq!(total, answer.matches(line).count(), "nothing lost");
    // The buttons come with the last part only.
    let posts = posts_to(&reqs, DM);
    assert!(buttons(posts[0]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_users_ticket_is_worked_in_the_discord_staff_channel() {
    let discord = Fake::start().await;
    let telegram = fake_telegram::Fake::start().await;
    let _kefu = Kefu::start(
        &discord,
        &[
            ("KEFU__TELEGRAM__TOKEN", fake_telegram::TOKEN.to_owned()),
            ("KEFU__TELEGRAM__API_URL", telegram.url.clone()),
        ],
        None,
    );
    connected(&discord).await;
    let tg_user = fake_telegram::USER;
    telegram.push(fake_telegram::dm(1, 10, tg_user, "转人工"));
    let (thread, code, claim, resolve) = staff_thread(&discord).await;
    let summary = posts_to(&discord.requests(), thread)[0].clone();
    assert!(
        content(&summary).contains("telegram"),
        "{}",
        content(&summary)
    );

    discord.dispatch(
        "INTERACTION_CREATE",
        press(7101, thread, Some(GUILD), DAVE, &[], &claim),
    );
    telegram
        .wait_for("the claim notice on Telegram", |r| {
            r.method == "sendmessage"
                && r.body["chat_id"] == json!(tg_user)
                && fake_telegram::text(r).contains(&code)
                && fake_telegram::text(r).contains(DAVE.1)
        })
        .await;
    telegram.push(fake_telegram::dm(2, 11, tg_user, "订单号 12345"));
    discord
        .wait_for("the Telegram user's line in the Discord thread", |r| {
            r.path == format!("/channels/{thread}/messages") && content(r).contains("订单号 12345")
        })
        .await;
    discord.dispatch(
        "MESSAGE_CREATE",
        thread_message(7002, thread, DAVE, "已为您处理，请查收", &[]),
    );
    telegram
        .wait_for("the Discord staff reply on Telegram", |r| {
            r.method == "sendmessage"
                && r.body["chat_id"] == json!(tg_user)
                && fake_telegram::text(r).contains("已为您处理")
        })
        .await;
    discord.dispatch(
        "INTERACTION_CREATE",
        press(7102, thread, Some(GUILD), DAVE, &[], &resolve),
    );
    telegram
        .wait_for("the rating buttons on Telegram", |r| {
            r.method == "sendmessage"
                && r.body["chat_id"] == json!(tg_user)
                && fake_telegram::buttons(r).len() >= 5
        })
        .await;
    discord
        .wait_for("the thread archived", |r| {
            r.method == "PATCH" && r.path == format!("/channels/{thread}")
        })
        .await;
}

/// Discord never dispatches what was written while no gateway session was open (the bot was
/// down, or its instance died and another had yet to take the gateway over): the next session
/// catches up on recently active chats over the REST API, and answers each such message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_written_while_no_gateway_was_open_is_caught_up_and_answered_once() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = vec![(
        "KEFU__DATABASE__URL",
        format!("sqlite://{}", dir.path().join("kefu.db").display()),
    )];
    let kefu = Kefu::start(&fake, &db, None);
    connected(&fake).await;
    fake.dispatch("MESSAGE_CREATE", dm(4101, ALICE, "2FA丢了怎么办"));
    fake.wait_until("the first answer", |reqs| answers(reqs) >= 1)
        .await;
    let (code, _) = kefu.stop();
    assert_eq!(code, Some(0));

    // Written while the bot is down; never dispatched.
    fake.write_unheard(dm(4102, ALICE, "USDT提不出来"));
    let identified = fake.identifies();
    let _kefu = Kefu::start(&fake, &db, None);
    fake.wait_state("the new session", |f| f.identifies() > identified)
        .await;
    fake.wait_until("the answer to the unheard message", |reqs| {
        answers(reqs) >= 2
    })
    .await;
    settle().await;
    let reqs = fake.requests();
    assert_eq!(answers(&reqs), 2, "each message answered once");
    assert!(
        reqs.iter()
            .any(|r| r.method == "GET" && r.path == format!("/channels/{DM}/messages")),
        "caught up through the API"
    );
}
