//! End-to-end tests of the Telegram adapter: the real binary (`kefu run`) against the fake Bot API
//! in `tests/fake_telegram` (axum on 127.0.0.1:0). The fake serves queued updates through
//! `getUpdates` and records every other request (method + JSON body), so tests assert on what the
//! bot sent. Each test has its own SQLite file and fake server; waits poll the recorded requests
//! with a deadline.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod fake_telegram;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fake_telegram::{
    BOT_USERNAME, Fake, Kefu, Req, STAFF_CHAT, STAFF_ID, USER, WAIT, buttons, callback, chat_json,
    dm, group_msg, now_secs, sends_to, text, topic_msg, user,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_question_is_answered_with_buttons_and_sigterm_stops_cleanly() {
    let fake = Fake::start().await;
    let kefu = Kefu::start(&fake, &[], None);
    fake.push(dm(1, 10, USER, "提币失败了怎么办"));
    let answer = fake
        .wait_for("the answer with feedback buttons", |r| {
            r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && !buttons(r).is_empty()
        })
        .await;
    assert!(text(&answer).contains("提币"), "{}", text(&answer));
    assert!(
        answer.body.get("parse_mode").is_none(),
        "plain text, no parse mode"
    );
    let (code, stderr) = kefu.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(!stderr.contains("TEST-token"), "the token is never printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_groups_only_mentions_are_answered_as_replies() {
    let fake = Fake::start().await;
    let _kefu = Kefu::start(&fake, &[], None);
    let group = -500;
    fake.push(group_msg(1, 6, group, 43, "提币失败了怎么办"));
    fake.push(group_msg(
        2,
        7,
        group,
        43,
        &format!("@{BOT_USERNAME} 提币失败了怎么办"),
    ));
    let reqs = fake
        .wait_until("an answer with buttons in the group", |reqs| {
            sends_to(reqs, group).iter().any(|r| !buttons(r).is_empty())
        })
        .await;
    let sent = sends_to(&reqs, group);
    assert!(
        sent.iter()
            .any(|r| r.body["reply_parameters"]["message_id"] == json!(7)),
        "the answer replies to the mention: {sent:#?}"
    );
    assert!(
        sent.iter()
            .all(|r| r.body["reply_parameters"]["message_id"] != json!(6)),
        "the message without a mention is ignored: {sent:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_delivered_twice_is_answered_once() {
    let fake = Fake::start().await;
    let _kefu = Kefu::start(&fake, &[], None);
    let group = -600;
    let first = group_msg(
        1,
        20,
        group,
        43,
        &format!("@{BOT_USERNAME} 提币失败了怎么办"),
    );
    fake.push(first.clone());
    let reqs = fake
        .wait_until("the first answer", |reqs| {
            sends_to(reqs, group).iter().any(|r| !buttons(r).is_empty())
        })
        .await;
    let replies_to_20 = |reqs: &[Req]| {
        sends_to(reqs, group)
            .iter()
            .filter(|r| r.body["reply_parameters"]["message_id"] == json!(20))
            .count()
    };
    let before = replies_to_20(&reqs);
    assert!(before > 0);
    // Telegram delivers the same update again, then a new message: once the new message is
    // answered, anything the repeat caused would have been sent already (one poller, in order).
    fake.redeliver(first);
    fake.push(group_msg(
        2,
        21,
        group,
        43,
        &format!("@{BOT_USERNAME} 你好"),
    ));
    let reqs = fake
        .wait_until("the answer to the next message", |reqs| {
            sends_to(reqs, group)
                .iter()
                .any(|r| r.body["reply_parameters"]["message_id"] == json!(21))
        })
        .await;
    assert_eq!(replies_to_20(&reqs), before, "no second answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_retry_after_and_delivered_once() {
    let fake = Fake::start().await;
    fake.limit_next_sends(1);
    let _kefu = Kefu::start(&fake, &[], None);
    fake.push(dm(1, 10, USER, "提币失败了怎么办"));
    let reqs = fake
        .wait_until("the answer with buttons", |reqs| {
            sends_to(reqs, USER).iter().any(|r| !buttons(r).is_empty())
        })
        .await;
    let limited: Vec<&Req> = reqs.iter().filter(|r| r.limited).collect();
    assert_eq!(limited.len(), 1);
    let retried = sends_to(&reqs, USER)
        .into_iter()
        .find(|r| text(r) == text(limited[0]))
        .expect("the limited message is sent again");
    assert!(
        retried.at.duration_since(limited[0].at) >= Duration::from_millis(900),
        "retried only after retry_after"
    );
    let mut texts: Vec<&str> = sends_to(&reqs, USER).into_iter().map(text).collect();
    let n = texts.len();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), n, "each message delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_worked_in_a_staff_forum_topic() {
    let fake = Fake::start().await;
    let kefu = Kefu::with_staff(&fake);
    fake.push(dm(1, 10, USER, "转人工"));

    // A topic named "{code} · {priority} · {intent}" and the summary post with Claim/Resolve.
    let topic = fake
        .wait_for("createForumTopic", |r| r.method == "createforumtopic")
        .await;
    assert_eq!(topic.body["chat_id"], json!(STAFF_CHAT));
    let name = topic.body["name"].as_str().expect("name").to_owned();
    assert_eq!(name.split(" · ").count(), 3, "{name}");
    let code = name.split(" · ").next().expect("code").to_owned();
    let summary = fake
        .wait_for("the summary post", |r| {
            r.method == "sendmessage" && r.body["chat_id"] == json!(STAFF_CHAT)
        })
        .await;
    let thread = summary.body["message_thread_id"]
        .as_i64()
        .expect("in the topic");
    assert!(text(&summary).contains(&code));
    assert!(
        text(&summary).contains("转人工"),
        "the transcript is posted"
    );
    let staff_buttons = buttons(&summary);
    let claim = staff_buttons
        .iter()
        .find(|(l, _)| l == "Claim")
        .expect("Claim")
        .1
        .clone();
    let resolve = staff_buttons
        .iter()
        .find(|(l, _)| l == "Resolve")
        .expect("Resolve")
        .1
        .clone();
    assert!(claim.starts_with("staff:claim:"), "{claim}");

    // Someone not on the staff list is refused, in their own (Chinese) client language.
    fake.push(callback(2, "cb-intruder", 8, STAFF_CHAT, &claim));
    let refusal = fake
        .wait_for("the refusal", |r| {
            r.method == "answercallbackquery" && r.body["callback_query_id"] == "cb-intruder"
        })
        .await;
    assert!(
        refusal.body["text"]
            .as_str()
            .is_some_and(|t| t.contains("只有客服人员")),
        "{:?}",
        refusal.body
    );

    // Staff claim: the user is told (with the verification code).
    fake.push(callback(3, "cb-claim", STAFF_ID, STAFF_CHAT, &claim));
    fake.wait_for("the staff-joined message", |r| {
        r.method == "sendmessage"
            && r.body["chat_id"] == json!(USER)
            && text(r).contains(&code)
            && text(r).contains("Bob")
    })
    .await;

    // The user's message appears in the topic.
    fake.push(dm(4, 11, USER, "是币安"));
    fake.wait_for("the user's line relayed to the topic", |r| {
        r.method == "sendmessage"
            && r.body["message_thread_id"] == json!(thread)
            && text(r).contains("是币安")
    })
    .await;

    // A photo from the user is forwarded into the topic.
    fake.push(
        json!({"update_id": 40, "message": {"message_id": 13, "date": now_secs(),
        "chat": chat_json(USER), "from": user(USER, "Alice"),
        "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]}}),
    );
    let forwarded = fake
        .wait_for("the photo forwarded to the topic", |r| {
            r.method == "forwardmessage"
        })
        .await;
    assert_eq!(forwarded.body["chat_id"], json!(STAFF_CHAT));
    assert_eq!(forwarded.body["message_thread_id"], json!(thread));
    assert_eq!(forwarded.body["message_id"], json!(13));

    // Staff text in the topic goes to the user.
    fake.push(topic_msg(50, 12, thread, STAFF_ID, "请提供提币记录截图"));
    fake.wait_for("the staff reply to the user", |r| {
        r.method == "sendmessage"
            && r.body["chat_id"] == json!(USER)
            && text(r).contains("请提供提币记录截图")
    })
    .await;

    // Resolve: the topic closes and the user is asked for a rating.
    fake.push(callback(60, "cb-resolve", STAFF_ID, STAFF_CHAT, &resolve));
    let closed = fake
        .wait_for("closeForumTopic", |r| r.method == "closeforumtopic")
        .await;
    assert_eq!(closed.body["message_thread_id"], json!(thread));
    let rating = fake
        .wait_for("the rating buttons", |r| {
            r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && buttons(r).len() >= 5
        })
        .await;
    let (_, five) = buttons(&rating).last().cloned().expect("a rating button");
    fake.push(callback(70, "cb-rate", USER, USER, &five));
    let reqs = fake
        .wait_until("the user's rating answered", |reqs| {
            reqs.iter().any(|r| {
                r.method == "answercallbackquery" && r.body["callback_query_id"] == "cb-rate"
            }) && sends_to(reqs, USER)
                .iter()
                .any(|r| r.at > rating.at && text(r).contains("谢谢"))
        })
        .await;
    assert!(!reqs.iter().any(|r| r.limited));
    fake.push(dm(80, 14, USER, "跳过"));
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = kefu.desk_json(&["show", &code]);
        if shown["ratings"][0]["score"] == json!(5) {
            assert_eq!(shown["state"], "resolved", "{shown}");
            break;
        }
        assert!(Instant::now() < deadline, "the rating is stored: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_resolve_in_the_topic_staff_label_the_question_with_a_button() {
    let fake = Fake::start().await;
    let kefu = Kefu::with_staff(&fake);
    // The presser is linked to the account "omar": the label is recorded under that name.
    kefu.cli(
        &["staff", "add", "omar"],
        &[("KEFU_STAFF_PASSWORD", "long enough password")],
    );
    kefu.cli(
        &["staff", "link", "omar", "--telegram", &STAFF_ID.to_string()],
        &[],
    );
    fake.push(dm(1, 10, USER, "我的账户被冻结了怎么办"));
    fake.wait_for("the answer", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER)
    })
    .await;
    fake.push(dm(2, 11, USER, "转人工"));
    let topic = fake
        .wait_for("createForumTopic", |r| r.method == "createforumtopic")
        .await;
    let code = topic.body["name"]
        .as_str()
        .and_then(|n| n.split(" · ").next())
        .expect("code")
        .to_owned();
    let summary = fake
        .wait_for("the summary post", |r| {
            r.method == "sendmessage" && r.body["chat_id"] == json!(STAFF_CHAT)
        })
        .await;
    let thread = summary.body["message_thread_id"].clone();
    let staff_buttons = buttons(&summary);
    let find = |label: &str| {
        staff_buttons
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("{label}: {staff_buttons:?}"))
            .1
            .clone()
    };
    let (claim, resolve) = (find("Claim"), find("Resolve"));
    fake.push(callback(3, "cb-claim", STAFF_ID, STAFF_CHAT, &claim));
    // The ticket-opened message carries the code too: the staff-joined one also names omar.
    fake.wait_for("the staff-joined message", |r| {
        r.method == "sendmessage"
            && r.body["chat_id"] == json!(USER)
            && text(r).contains(&code)
            && text(r).contains("omar")
    })
    .await;
    fake.push(callback(4, "cb-resolve", STAFF_ID, STAFF_CHAT, &resolve));
    let reqs = fake
        .wait_until("the label post, then the topic closed", |reqs| {
            reqs.iter().any(|r| r.method == "closeforumtopic")
        })
        .await;
    let post_at = reqs
        .iter()
        .position(|r| {
            r.method == "sendmessage"
                && r.body["message_thread_id"] == thread
                && text(r).contains("What was the question about?")
        })
        .unwrap_or_else(|| panic!("the label post: {reqs:#?}"));
    let closed_at = reqs
        .iter()
        .position(|r| r.method == "closeforumtopic")
        .unwrap();
    assert!(post_at < closed_at, "posted before the topic closed");
    let post = &reqs[post_at];
    assert!(
        text(post).contains("我的账户被冻结了怎么办"),
        "{}",
        text(post)
    );
    let choices = buttons(post);
    assert!(
        (3..=5).contains(&choices.len()),
        "up to 3 intents, new topic, not a question: {choices:?}"
    );
    assert!(
        choices
            .iter()
            .all(|(_, data)| data.starts_with("staff:label:") && data.len() <= 64)
    );
    let labels: Vec<&str> = choices.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        &labels[labels.len() - 2..],
        ["New topic", "Not a question"],
        "{choices:?}"
    );
    let (_, locked) = choices
        .iter()
        .find(|(_, data)| data.ends_with(":i:account.locked"))
        .unwrap_or_else(|| panic!("the likely intent: {choices:?}"))
        .clone();

    // Only staff may label; staff press a button and are told what was recorded.
    fake.push(callback(5, "cb-label-intruder", 8, STAFF_CHAT, &locked));
    fake.wait_for("the intruder refused", |r| {
        r.method == "answercallbackquery" && r.body["callback_query_id"] == "cb-label-intruder"
    })
    .await;
    assert_eq!(kefu.desk_json(&["show", &code])["label"], Value::Null);
    fake.push(callback(6, "cb-label", STAFF_ID, STAFF_CHAT, &locked));
    let answered = fake
        .wait_for("the label toast", |r| {
            r.method == "answercallbackquery" && r.body["callback_query_id"] == "cb-label"
        })
        .await;
    assert!(
        answered.body["text"]
            .as_str()
            .is_some_and(|t| t.contains("account.locked")),
        "{:?}",
        answered.body
    );
    let shown = kefu.desk_json(&["show", &code]);
    assert_eq!(shown["state"], "resolved", "{shown}");
    let label = &shown["label"];
    assert_eq!(label["kind"], "intent", "{shown}");
    assert_eq!(label["name"], "account.locked");
    assert_eq!(label["text"], "我的账户被冻结了怎么办");
    assert_eq!(label["labelled_by"], "omar", "the linked account's name");

    // "Not a question" replaces it.
    let (_, none) = choices.last().cloned().unwrap();
    fake.push(callback(7, "cb-label-2", STAFF_ID, STAFF_CHAT, &none));
    fake.wait_for("the second toast", |r| {
        r.method == "answercallbackquery" && r.body["callback_query_id"] == "cb-label-2"
    })
    .await;
    assert_eq!(
        kefu.desk_json(&["show", &code])["label"]["kind"],
        "not_a_question"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_kb_answer_is_split_in_two_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kb = copy_kb(dir.path());
    let line = "火星链质押说明：锁仓期间不可赎回，收益按日发放到现货账户。";
    let answer = vec![line; 5000 / line.chars().count() + 1].join("\n");
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
    fake.push(dm(1, 10, USER, "火星链质押规则"));
    let reqs = fake
        .wait_until("two parts of the long answer", |reqs| {
            sends_to(reqs, USER)
                .iter()
                .filter(|r| text(r).contains("火星链质押说明"))
                .count()
                >= 2
        })
        .await;
    let parts: Vec<&str> = sends_to(&reqs, USER)
        .into_iter()
        .map(text)
        .filter(|t| t.contains("火星链质押说明"))
        .collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|p| p.encode_utf16().count() <= 4096));
    assert!(
        parts.iter().all(|p| p
            .lines()
            .all(|l| l.is_empty() || l == line || !line.contains(l))),
        "split on line boundaries: {:?}",
        parts
            .iter()
            .flat_map(|p| p.lines())
            .filter(|l| *l != line)
            .collect::<Vec<_>>()
    );
    let total: usize = parts.iter().map(|p| p.matches(line).count()).sum();
    assert_eq!(total, answer.matches(line).count(), "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_pending_answer_is_delivered_once() {
    let fake = Fake::start().await;
    // Telegram refuses every send until the restart: the answers stay in the outbox.
    fake.limit_next_sends(1000);
    let kefu = Kefu::start(&fake, &[], None);
    fake.push(dm(1, 10, USER, "提币失败了怎么办"));
    fake.wait_for("a refused send", |r| r.limited).await;
    let dir = kefu.kill();
    fake.limit_next_sends(0);
    let _kefu = Kefu::start_in(dir, &fake, &[], None);
    fake.wait_until(
        "the answer (greeting included) delivered after the restart",
        |reqs| sends_to(reqs, USER).iter().any(|r| !buttons(r).is_empty()),
    )
    .await;
    // Nothing else is still on its way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = fake.requests();
    let mut texts: Vec<&str> = sends_to(&reqs, USER).into_iter().map(text).collect();
    let n = texts.len();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), n, "each message delivered once: {texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("提币")),
        "the answer: {texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_gets_a_reply_in_the_users_language_and_a_seed_phrase_is_deleted() {
    let fake = Fake::start().await;
    let _kefu = Kefu::start(&fake, &[], None);
    fake.push(
        json!({"update_id": 1, "message": {"message_id": 10, "date": now_secs(),
        "chat": chat_json(USER), "from": user(USER, "Alice"),
        "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]}}),
    );
    fake.wait_for("the text-only notice in Chinese", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && text(r).contains("文字")
    })
    .await;
    let seed = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    fake.push(dm(2, 11, USER, &format!("我的助记词是 {seed}")));
    let deleted = fake
        .wait_for("deleteMessage", |r| r.method == "deletemessage")
        .await;
    assert_eq!(deleted.body["message_id"], json!(11));
    assert_eq!(deleted.body["chat_id"], json!(USER));
    let reqs = fake
        .wait_until("the warning", |reqs| sends_to(reqs, USER).len() >= 2)
        .await;
    assert!(
        reqs.iter()
            .all(|r| !r.body.to_string().contains("abandon about")),
        "the phrase is never echoed"
    );
}

#[test]
fn run_without_a_platform_says_which_variable_to_set() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
    cmd.arg("run").current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KEFU") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run kefu");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no platform enabled: set KEFU__TELEGRAM__TOKEN"),
        "{stderr}"
    );
}

/// POSTs `body` to 127.0.0.1:`port``path` over plain HTTP/1.1; returns the status code.
async fn post_json(port: u16, path: &str, secret: &str, body: &Value) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the webhook");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("webhook answers in time")
        .expect("read response");
    let response = String::from_utf8_lossy(&response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {response}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_checks_the_secret_and_answers() {
    let fake = Fake::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}/tg/hook");
    let _kefu = Kefu::start(
        &fake,
        &[
            ("KEFU__TELEGRAM__WEBHOOK_URL", &url),
            ("KEFU__TELEGRAM__WEBHOOK_LISTEN", &listen),
            ("KEFU__TELEGRAM__WEBHOOK_SECRET", "s3cret-Token"),
        ],
        None,
    );
    let set = fake
        .wait_for("setWebhook", |r| r.method == "setwebhook")
        .await;
    // teloxide sends setWebhook as a multipart form (it may carry a certificate).
    let form = set.body.to_string();
    assert!(
        form.contains(&url) && form.contains("s3cret-Token"),
        "{form}"
    );
    let update = dm(1, 10, USER, "提币失败了怎么办");
    assert_eq!(post_json(port, "/tg/hook", "wrong", &update).await, 401);
    assert_eq!(
        post_json(port, "/tg/hook", "s3cret-Token", &update).await,
        200
    );
    assert_eq!(
        post_json(port, "/tg/hook", "s3cret-Token", &update).await,
        200,
        "a retried update is acknowledged"
    );
    fake.wait_for("the answer with buttons", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER) && !buttons(r).is_empty()
    })
    .await;
    assert!(
        !fake.requests().iter().any(|r| r.method == "getupdates"),
        "no polling in webhook mode"
    );
}

/// Copies the shipped KB into `dir/kb`.
fn copy_kb(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kb");
    let dst = dir.join("kb");
    std::fs::create_dir_all(&dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read kb") {
        let entry = entry.expect("entry");
        if entry.path().extension().is_some_and(|e| e == "toml") {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
        }
    }
    dst
}
