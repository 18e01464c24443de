//! End-to-end tests of the delivery pipeline under failure: the real binary (`kefu run`) against
//! the fake Bot API in `tests/fake_telegram`, killed and restarted around the outbox, and served
//! by a fake that refuses sends at random. They check the README's "Reliability" guarantees from
//! the outside: a line written while the bot could not deliver arrives after the restart, exactly
//! once; a crash mid-delivery resends at most the row in flight; refusals (429, 5xx) neither lose
//! nor reorder a destination's messages.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod fake_telegram;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fake_telegram::{
    Fake, Kefu, Req, STAFF_CHAT, STAFF_ID, USER, buttons, callback, dm, sends_to, text, topic_msg,
};
use serde_json::json;

/// Longer than the outbox lease (30 s), which a row in flight at a crash waits out.
const LONG_WAIT: Duration = Duration::from_secs(50);

/// The environment of a bot with the staff forum; `extra` is added.
fn staff_env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("KEFU__TELEGRAM__STAFF_CHAT_ID", STAFF_CHAT.to_string()),
        ("KEFU__TELEGRAM__STAFF_USER_IDS", format!("{STAFF_ID}")),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

fn start(fake: &Fake, env: &[(&'static str, String)], dir: Option<tempfile::TempDir>) -> Kefu {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match dir {
        Some(dir) => Kefu::start_in(dir, fake, &env, None),
        None => Kefu::start(fake, &env, None),
    }
}

/// Like `Fake::wait_until`, with a deadline of `within`.
async fn wait_long(
    fake: &Fake,
    what: &str,
    within: Duration,
    pred: impl Fn(&[Req]) -> bool,
) -> Vec<Req> {
    let deadline = Instant::now() + within;
    loop {
        let reqs = fake.requests();
        if pred(&reqs) {
            return reqs;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; requests: {:#?}",
            reqs.iter()
                .map(|r| (r.method.clone(), r.status, r.body.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Accepted posts in the staff topic `thread`.
fn topic_posts(reqs: &[Req], thread: i64) -> Vec<&Req> {
    sends_to(reqs, STAFF_CHAT)
        .into_iter()
        .filter(|r| r.body["message_thread_id"] == json!(thread))
        .collect()
}

/// A ticket opened by the user ("转人工") and claimed by staff; returns the topic's thread id.
/// Update ids 1–3 are used.
async fn open_and_claim(fake: &Fake) -> i64 {
    fake.push(dm(1, 10, USER, "转人工"));
    let summary = fake
        .wait_for("the summary post", |r| {
            r.method == "sendmessage"
                && !r.limited
                && r.body["chat_id"] == json!(STAFF_CHAT)
                && buttons(r).iter().any(|(l, _)| l == "Claim")
        })
        .await;
    let thread = summary.body["message_thread_id"]
        .as_i64()
        .expect("in the topic");
    let claim = buttons(&summary)
        .into_iter()
        .find(|(l, _)| l == "Claim")
        .expect("Claim")
        .1;
    fake.push(callback(3, "cb-claim", STAFF_ID, STAFF_CHAT, &claim));
    fake.wait_for("the staff-joined message", |r| {
        r.method == "sendmessage"
            && !r.limited
            && r.body["chat_id"] == json!(USER)
            && text(r).contains("Bob")
    })
    .await;
    thread
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_written_while_the_bot_cannot_deliver_reaches_the_topic_once_after_restarts() {
    let fake = Fake::start().await;
    let env = staff_env(&[]);
    let kefu = start(&fake, &env, None);
    let thread = open_and_claim(&fake).await;
    let (code, stderr, dir) = kefu.stop_keeping_db();
    assert_eq!(code, Some(0), "{stderr}");

    // Back up, but Telegram refuses every send: the user's line is stored and its relay waits in
    // the outbox. Then the process dies without any chance to clean up.
    fake.limit_next_sends(1000);
    let kefu = start(&fake, &env, Some(dir));
    fake.push(dm(4, 11, USER, "订单号 12345"));
    let line = |r: &Req| {
        r.method == "sendmessage"
            && r.body["message_thread_id"] == json!(thread)
            && text(r).contains("订单号 12345")
    };
    fake.wait_for("a refused relay of the line", |r| r.limited && line(r))
        .await;
    let dir = kefu.kill();

    fake.limit_next_sends(0);
    let _kefu = start(&fake, &env, Some(dir));
    wait_long(
        &fake,
        "the line relayed after the restart",
        LONG_WAIT,
        |reqs| topic_posts(reqs, thread).into_iter().any(line),
    )
    .await;
    // Anything else on its way (a second copy) would come within the pass after it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reqs = fake.requests();
    let copies: Vec<&Req> = topic_posts(&reqs, thread)
        .into_iter()
        .filter(|r| line(r))
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "the line reaches the topic exactly once: {:#?}",
        copies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(
        topic_posts(&reqs, thread)
            .into_iter()
            .filter(|r| buttons(r).iter().any(|(l, _)| l == "Claim"))
            .count(),
        1,
        "what was delivered before the restarts is not sent again"
    );
}

/// Texts sent to the user and accepted, in order.
fn user_texts(reqs: &[Req]) -> Vec<String> {
    sends_to(reqs, USER)
        .into_iter()
        .map(|r| text(r).to_owned())
        .collect()
}

/// The user's questions for the crash test (update ids from 1).
fn questions(fake: &Fake) {
    fake.push(dm(1, 10, USER, "提币失败了怎么办"));
    fake.push(dm(2, 11, USER, "充值没到账"));
    fake.push(dm(3, 12, USER, "怎么修改密码"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_telegram_accepted_a_send_each_message_arrives_once_or_twice() {
    // What the bot sends for these questions when nothing goes wrong.
    let baseline = {
        let fake = Fake::start().await;
        let kefu = start(&fake, &[], None);
        questions(&fake);
        let reqs = fake
            .wait_until("three answers with buttons", |reqs| {
                sends_to(reqs, USER)
                    .iter()
                    .filter(|r| !buttons(r).is_empty())
                    .count()
                    >= 3
            })
            .await;
        drop(kefu);
        user_texts(&reqs)
    };

    let fake = Fake::start().await;
    // Telegram takes each message at once but answers slowly: the kill lands after Telegram has
    // the first message and before the bot can mark it delivered.
    fake.delay_sends(Duration::from_secs(3));
    let kefu = start(&fake, &[], None);
    questions(&fake);
    fake.wait_for("the first send to the user", |r| {
        r.method == "sendmessage" && r.body["chat_id"] == json!(USER)
    })
    .await;
    let dir = kefu.kill();
    let before = user_texts(&fake.requests());
    assert!(!before.is_empty());

    fake.delay_sends(Duration::ZERO);
    let _kefu = start(&fake, &[], Some(dir));
    let expected: HashMap<&str, usize> = baseline.iter().fold(HashMap::new(), |mut m, t| {
        *m.entry(t.as_str()).or_default() += 1;
        m
    });
    wait_long(
        &fake,
        "every message after the restart",
        LONG_WAIT,
        |reqs| {
            let sent = user_texts(reqs);
            expected
                .iter()
                .all(|(t, n)| sent.iter().filter(|s| s == t).count() >= *n)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = user_texts(&fake.requests());

    for t in &sent {
        assert!(
            expected.contains_key(t.as_str()),
            "only what the bot would send anyway: {t:?}\nexpected: {baseline:#?}"
        );
    }
    let mut doubled = Vec::new();
    for (t, n) in &expected {
        let got = sent.iter().filter(|s| s == t).count();
        assert!(
            got >= *n && got <= 2 * n,
            "{t:?}: expected {n}, sent {got}\nsent: {sent:#?}"
        );
        if got > *n {
            doubled.push(*t);
        }
    }
    assert!(
        doubled.len() <= 1,
        "at most the row in flight at the crash is sent again: {doubled:?}\nsent: {sent:#?}"
    );
    // Telegram had the first message before the kill, and the bot never heard back: it is the
    // one sent again, and nothing overtook it.
    assert_eq!(doubled, vec![before[0].as_str()], "sent: {sent:#?}");
    // In order: with the repeat removed, the user saw what a run without the crash shows.
    let mut seen = sent.clone();
    let repeat = seen
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, t)| *t == &before[0])
        .map(|(i, _)| i);
    if let Some(i) = repeat {
        seen.remove(i);
    }
    assert_eq!(seen, baseline, "in order");
}

/// The `u…`/`s…` tag a relayed line ends with, and its number.
fn tag(text: &str, prefix: char) -> Option<u32> {
    let last = text
        .rsplit(|c: char| c.is_whitespace() || c == ':' || c == '：')
        .next()?;
    last.strip_prefix(prefix)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_429s_and_5xx_lose_and_reorder_nothing() {
    let fake = Fake::start().await;
    // No pacing (the fake has no limits) and no flood control: the refusals are the only delay.
    let env = staff_env(&[
        ("KEFU__TELEGRAM__MAX_PER_SECOND", "0"),
        ("KEFU__FLOOD__MAX_MESSAGES", "1000"),
    ]);
    let _kefu = start(&fake, &env, None);
    let thread = open_and_claim(&fake).await;
    let started = Instant::now();
    // About 30 % of sends refused; two of them with 502 (teloxide waits 10 s after each).
    fake.fail_sends_at_random(0x5eed_1234, 30, 2);
    for i in 1..=20_i64 {
        fake.push(dm(100 + 2 * i, 100 + i, USER, &format!("u{i}")));
        fake.push(topic_msg(
            101 + 2 * i,
            200 + i,
            thread,
            STAFF_ID,
            &format!("s{i}"),
        ));
    }
    let in_topic = |reqs: &[Req]| -> Vec<u32> {
        topic_posts(reqs, thread)
            .into_iter()
            .filter_map(|r| tag(text(r), 'u'))
            .collect()
    };
    let to_user = |reqs: &[Req]| -> Vec<u32> {
        sends_to(reqs, USER)
            .into_iter()
            .filter_map(|r| tag(text(r), 's'))
            .collect()
    };
    wait_long(
        &fake,
        "all forty lines delivered",
        Duration::from_secs(75),
        |reqs| in_topic(reqs).contains(&20) && to_user(reqs).contains(&20),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reqs = fake.requests();
    let want: Vec<u32> = (1..=20).collect();
    assert_eq!(in_topic(&reqs), want, "the user's lines in the topic");
    assert_eq!(to_user(&reqs), want, "the staff's lines to the user");
    let refused = reqs.iter().filter(|r| r.limited).count();
    let bad_gateway = reqs.iter().filter(|r| r.status == 502).count();
    assert!(refused >= 5, "the fake refused some sends: {refused}");
    eprintln!(
        "40 lines through {refused} refusals ({bad_gateway} × 502) in {:?}",
        started.elapsed()
    );
}
