//! Labelling a ticket at resolve from the terminal desk, through the real binary: `kefu chat` as
//! the user, `kefu desk` as staff, on one SQLite file.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod binary;

use binary::Deployment;
use serde_json::Value;

impl Deployment {
    /// The user writes `lines` in `kefu chat`, which escalates: the new ticket's id.
    fn escalate(&self, user: &str, lines: &str) -> String {
        let before = self.json(&["desk", "list", "--json"]);
        let before = before.as_array().map_or(0, Vec::len);
        self.ok(&["chat", "--user", user], lines);
        let tickets = self.json(&["desk", "list", "--json"]);
        let tickets = tickets.as_array().expect("array");
        assert_eq!(tickets.len(), before + 1, "a ticket opened: {tickets:?}");
        tickets
            .iter()
            .find(|t| t["state"] == "queued")
            .and_then(|t| t["id"].as_i64())
            .expect("the queued ticket")
            .to_string()
    }
}

#[test]
fn a_ticket_resolved_with_an_intent_keeps_the_users_question_under_that_intent() {
    let d = Deployment::new();
    let id = d.escalate("alice", "我的账户被冻结了怎么办\n转人工\n");
    d.ok(&["desk", "claim", &id, "--as", "bob"], "");

    // A mistyped intent changes nothing: exit 2 naming the closest, the ticket still claimed.
    let typo = d.run(
        &[
            "desk",
            "resolve",
            &id,
            "--as",
            "bob",
            "--intent",
            "account.lockd",
        ],
        "",
    );
    assert_eq!(typo.code, 2, "{typo:?}");
    assert!(typo.stderr.contains("account.lockd"), "{typo:?}");
    assert!(
        typo.stderr.contains("account.locked"),
        "the closest id: {typo:?}"
    );
    let shown = d.json(&["desk", "show", &id, "--json"]);
    assert_eq!(shown["state"], "claimed", "{shown}");
    assert_eq!(shown["assignee"], "bob");
    assert_eq!(shown["label"], Value::Null);

    // One label at a time.
    let both = d.run(
        &[
            "desk",
            "resolve",
            &id,
            "--as",
            "bob",
            "--intent",
            "account.locked",
            "--not-a-question",
        ],
        "",
    );
    assert_eq!(both.code, 2, "{both:?}");
    assert_eq!(d.json(&["desk", "show", &id, "--json"])["state"], "claimed");

    let out = d.ok(
        &[
            "desk",
            "resolve",
            &id,
            "--as",
            "bob",
            "--intent",
            "account.locked",
        ],
        "",
    );
    let resolved = out.find("resolved").expect("the resolve line");
    let labelled = out
        .find("labelled as intent account.locked")
        .unwrap_or_else(|| panic!("the label line: {out}"));
    assert!(resolved < labelled, "{out}");
    let shown = d.json(&["desk", "show", &id, "--json"]);
    assert_eq!(shown["state"], "resolved");
    let label = &shown["label"];
    assert_eq!(label["kind"], "intent", "{shown}");
    assert_eq!(label["name"], "account.locked");
    assert_eq!(label["text"], "我的账户被冻结了怎么办");
    assert_eq!(label["language"], "zh");
    assert_eq!(label["labelled_by"], "bob");
    assert!(label["labelled_at"].is_string(), "{label}");
    let text = d.ok(&["desk", "show", &id], "");
    assert!(
        text.contains("label     intent account.locked (by bob)"),
        "{text}"
    );
}

#[test]
fn a_new_topic_or_not_a_question_is_recorded_and_a_bad_topic_name_changes_nothing() {
    let d = Deployment::new();
    let id = d.escalate("carol", "how do I stake ETH for rewards\n/human\n");
    d.ok(&["desk", "claim", &id, "--as", "lena"], "");
    let empty = d.run(
        &["desk", "resolve", &id, "--as", "lena", "--new-topic", "  "],
        "",
    );
    assert_eq!(empty.code, 2, "{empty:?}");
    assert_eq!(d.json(&["desk", "show", &id, "--json"])["state"], "claimed");
    let out = d.ok(
        &[
            "desk",
            "resolve",
            &id,
            "--as",
            "lena",
            "--new-topic",
            "staking",
        ],
        "",
    );
    assert!(out.contains("labelled as new topic \"staking\""), "{out}");
    let label = d.json(&["desk", "show", &id, "--json"])["label"].clone();
    assert_eq!(label["kind"], "new_topic", "{label}");
    assert_eq!(label["name"], "staking");
    assert_eq!(label["text"], "how do I stake ETH for rewards");
    assert_eq!(label["language"], "en");

    let other = d.escalate("dave", "转人工\n");
    d.ok(&["desk", "claim", &other, "--as", "lena"], "");
    let out = d.ok(
        &[
            "desk",
            "resolve",
            &other,
            "--as",
            "lena",
            "--not-a-question",
        ],
        "",
    );
    assert!(out.contains("labelled as not a question"), "{out}");
    let label = d.json(&["desk", "show", &other, "--json"])["label"].clone();
    assert_eq!(label["kind"], "not_a_question", "{label}");
    assert_eq!(label["name"], Value::Null);

    // Without a flag, no label.
    let third = d.escalate("erin", "转人工\n");
    d.ok(&["desk", "claim", &third, "--as", "lena"], "");
    let out = d.ok(&["desk", "resolve", &third, "--as", "lena"], "");
    assert!(!out.contains("labelled"), "{out}");
    assert_eq!(
        d.json(&["desk", "show", &third, "--json"])["label"],
        Value::Null
    );
}

#[test]
fn a_resolved_ticket_is_relabelled_from_the_desk_and_the_later_label_wins() {
    let d = Deployment::new();
    let id = d.escalate("frank", "我的账户被冻结了怎么办\n转人工\n");
    d.ok(&["desk", "claim", &id, "--as", "bob"], "");
    d.ok(
        &[
            "desk",
            "resolve",
            &id,
            "--as",
            "bob",
            "--intent",
            "account.locked",
        ],
        "",
    );

    // A label is required, an unknown intent and an unknown ticket change nothing.
    let none = d.run(&["desk", "label", &id, "--as", "lena"], "");
    assert_eq!(none.code, 2, "{none:?}");
    let typo = d.run(
        &[
            "desk",
            "label",
            &id,
            "--as",
            "lena",
            "--intent",
            "account.lockd",
        ],
        "",
    );
    assert_eq!(typo.code, 2, "{typo:?}");
    assert!(typo.stderr.contains("account.locked"), "{typo:?}");
    let missing = d.run(
        &[
            "desk",
            "label",
            "999999",
            "--as",
            "lena",
            "--not-a-question",
        ],
        "",
    );
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("999999"), "{missing:?}");
    let label = d.json(&["desk", "show", &id, "--json"])["label"].clone();
    assert_eq!(label["name"], "account.locked", "{label}");
    assert_eq!(label["labelled_by"], "bob");

    let out = d.ok(
        &[
            "desk",
            "label",
            &id,
            "--as",
            "lena",
            "--new-topic",
            "frozen by court order",
        ],
        "",
    );
    assert!(
        out.contains("labelled as new topic \"frozen by court order\""),
        "{out}"
    );
    let shown = d.json(&["desk", "show", &id, "--json"]);
    assert_eq!(shown["state"], "resolved", "{shown}");
    let label = &shown["label"];
    assert_eq!(label["kind"], "new_topic", "{label}");
    assert_eq!(label["name"], "frozen by court order");
    assert_eq!(label["text"], "我的账户被冻结了怎么办");
    assert_eq!(label["labelled_by"], "lena");
    let history = d.ok(&["kb", "history"], "");
    assert!(history.contains("lena"), "{history}");
    assert!(history.contains("frozen by court order"), "{history}");
}
