//! End-to-end tests of conversations, the human queue and persistence through the real binary:
//! `kefu chat` as the user and `kefu desk` as staff, as separate processes on one SQLite file —
//! the way a user escalates in one terminal while staff work in another.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod binary;

use std::path::Path;
use std::process::Stdio;

use binary::Deployment;
use serde_json::Value;

impl Deployment {
    /// Every byte the database keeps on disk (main file, WAL, shared memory).
    fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            if let Ok(b) = std::fs::read(Path::new(&p)) {
                bytes.extend(b);
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

const TX_HASH: &str = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";

#[test]
fn a_question_escalates_to_staff_who_reply_and_resolve_and_the_rating_is_stored() {
    let d = Deployment::new();
    // The user asks, says the answer didn't help (button 2), accepts a human (button 1) and gives
    // the details the KB's withdrawal.pending intent collects.
    let first = d.ok(
        &["chat", "--user", "alice"],
        &format!("提币一直没到账\n2\n1\n{TX_HASH}\n100 USDT\nTRC20\n今天下午3点\n"),
    );
    assert!(
        first.contains("有帮助"),
        "feedback buttons after the answer: {first}"
    );
    let tickets = d.json(&["desk", "list", "--json"]);
    let tickets = tickets.as_array().expect("array");
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let t = &tickets[0];
    let id = t["id"].as_i64().expect("id").to_string();
    let code = t["code"].as_str().expect("code").to_owned();
    assert_eq!(t["state"], "queued");
    assert_eq!(t["intent"], "withdrawal.pending");
    assert_eq!(t["platform"], "terminal");
    assert!(
        first.contains(&code),
        "the user is given the verification code: {first}"
    );
    assert!(
        first.contains("第 1 位"),
        "the user is told their place in the queue: {first}"
    );
    let shown = d.json(&["desk", "show", &id, "--json"]);
    let details: Vec<(String, Value)> = shown["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or_default().to_owned(),
                d["value"].clone(),
            )
        })
        .collect();
    assert!(
        details.contains(&("tx_id".to_owned(), Value::from(TX_HASH))),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|(n, v)| n == "amount" && v.as_str().is_some_and(|v| v.contains("100"))),
        "{details:?}"
    );

    // Staff claim and reply from another process.
    assert!(
        d.ok(&["desk", "claim", &id, "--as", "bob"], "")
            .contains("claimed")
    );
    d.ok(
        &[
            "desk",
            "reply",
            &id,
            "--as",
            "bob",
            "请问接收方是哪个平台？",
        ],
        "",
    );
    // The user's next run first prints what staff sent, then their answer goes to the transcript.
    let second = d.ok(&["chat", "--user", "alice"], "是币安\n");
    let staff_at = second
        .find("请问接收方是哪个平台")
        .expect("staff reply delivered");
    assert!(
        second.contains(&code),
        "the staff join notice quotes the code: {second}"
    );
    let shown = d.json(&["desk", "show", &code, "--json"]);
    let transcript = shown["transcript"].as_array().expect("transcript");
    let user_reply = transcript
        .iter()
        .position(|l| l["sender"] == "user" && l["text"] == "是币安");
    let staff_line = transcript.iter().position(|l| l["sender"] == "staff:bob");
    assert!(
        user_reply.is_some() && staff_line < user_reply,
        "{transcript:?}"
    );
    // While staff hold the chat the bot says nothing after the staff message.
    assert!(
        second[staff_at..]
            .lines()
            .skip(1)
            .all(|l| l.trim().is_empty()),
        "bot answered during takeover: {second}"
    );

    // Resolve: the chat returns to the bot, which asks for a rating; the rating is stored.
    d.ok(&["desk", "resolve", &id, "--as", "bob"], "");
    let third = d.ok(&["chat", "--user", "alice"], "5\n很满意\n");
    assert!(third.contains("5 ⭐") || third.contains('5'), "{third}");
    let shown = d.json(&["desk", "show", &id, "--json"]);
    assert_eq!(shown["state"], "resolved");
    let ratings = shown["ratings"].as_array().expect("ratings");
    assert_eq!(ratings.len(), 1, "one rating per ticket: {ratings:?}");
    assert_eq!(ratings[0]["score"], 5);
    assert_eq!(ratings[0]["comment"], "很满意");
    assert_eq!(
        d.json(&["desk", "list", "--json"]),
        Value::Array(Vec::new()),
        "the queue is empty"
    );
}

#[test]
fn a_pasted_seed_phrase_is_nowhere_in_the_database() {
    let d = Deployment::new();
    let phrase = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    let out = d.ok(
        &["chat", "--user", "carol"],
        &format!("我的助记词是 {phrase} 钱包被盗了\n转人工\n"),
    );
    assert!(out.contains("助记词"), "the user is warned: {out}");
    assert!(
        !out.contains("sausage"),
        "the phrase is never echoed: {out}"
    );
    let bytes = d.database_bytes();
    assert!(!bytes.is_empty());
    for word in ["sausage", "legal winner", "thank yellow"] {
        assert!(
            !contains(&bytes, word),
            "{word:?} found in the database file"
        );
    }
    assert!(
        contains(&bytes, "[redacted: seed phrase, 12 words]"),
        "the redaction label is stored instead"
    );
}

#[test]
fn of_two_staff_claiming_at_once_exactly_one_wins() {
    let d = Deployment::new();
    d.ok(&["chat", "--user", "dave"], "转人工\n");
    let id = d.json(&["desk", "list", "--json"])[0]["id"]
        .as_i64()
        .expect("a ticket")
        .to_string();
    let spawn = |staff: &str| {
        let mut cmd = d.command(&["desk", "claim", &id, "--as", staff]);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn("erin"), spawn("frank"));
    let codes: Vec<i32> = [a, b]
        .into_iter()
        .map(|c| {
            c.wait_with_output()
                .expect("wait")
                .status
                .code()
                .unwrap_or(-1)
        })
        .collect();
    assert_eq!(
        codes.iter().filter(|&&c| c == 0).count(),
        1,
        "exactly one claim succeeds: {codes:?}"
    );
    let holder = d.json(&["desk", "show", &id, "--json"])["assignee"]
        .as_str()
        .expect("assigned")
        .to_owned();
    assert!(holder == "erin" || holder == "frank");
    let loser = if holder == "erin" { "frank" } else { "erin" };
    let refused = d.run(&["desk", "reply", &id, "--as", loser, "hello"], "");
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains(&format!("held by {holder}")),
        "{refused:?}"
    );
}

#[test]
fn chat_answers_each_piped_line_without_prompts_and_exits_at_eof() {
    let d = Deployment::new();
    let out = d.ok(
        &["chat", "--user", "gina"],
        "2FA丢了怎么办\nhow do I contact support\n",
    );
    assert!(
        out.contains("谷歌验证") || out.contains("2FA") || out.contains("验证器"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("support") || l.contains("Support")),
        "an English reply to the English line: {out}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("> ")),
        "no prompts on a pipe: {out}"
    );
    assert!(
        !out.contains("Ctrl-D"),
        "no interactive banner on a pipe: {out}"
    );
}

#[test]
fn desk_commands_on_an_unknown_ticket_name_it_and_exit_2() {
    let d = Deployment::new();
    let run = d.run(&["desk", "show", "ZZZZZZ"], "");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("ZZZZZZ") && run.stderr.contains("fix:"),
        "{run:?}"
    );
}

#[test]
fn questions_the_bot_could_not_answer_are_listed_for_kb_authors() {
    let d = Deployment::new();
    d.ok(
        &["chat", "--user", "hank"],
        "今天天气怎么样\n帮我写一首诗\n",
    );
    d.ok(&["chat", "--user", "ivy"], "今天天气怎么样\n");
    let misses = d.json(&["kb", "misses", "--json"]);
    let rows = misses.as_array().expect("array");
    assert_eq!(
        rows[0]["text"], "今天天气怎么样",
        "most frequent first: {rows:?}"
    );
    assert_eq!(rows[0]["count"], 2);
    let table = d.ok(&["kb", "misses"], "");
    assert!(table.contains("今天天气怎么样"), "{table}");
}
