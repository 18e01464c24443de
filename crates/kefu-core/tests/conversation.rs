//! A conversation through the real engine trained on the default KB (`config/kb`), the way the
//! service drives core: redact, classify the redacted text, `handle`, keep the new state.

// clippy.toml allows unwrap/expect inside #[test] functions only; the helpers here are test code too.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kefu_core::model::Priority;
use kefu_core::{
    Action, Context, ConversationState, Event, Flood, Lang, Phase, QueueInfo, SecretFound, Step,
    SupportHours, UserMessage, handle,
};
use kefu_nlu::engine::Engine;
use kefu_nlu::secrets::{find_secrets, redact};

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let kb = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb");
    Engine::train(kefu_nlu::kb::load(&kb).expect("the default KB loads"))
});

const TX: &str = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";

struct Chat {
    state: ConversationState,
    hours: SupportHours,
    now: DateTime<Utc>,
}

impl Chat {
    fn new() -> Chat {
        Chat {
            state: ConversationState::default(),
            hours: SupportHours::parse("Asia/Shanghai", "daily", "09:00", "21:00").unwrap(),
            // 2025-05-05 10:00 in Shanghai: staff on duty.
            now: DateTime::parse_from_rfc3339("2025-05-05T02:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    /// What the service does with one inbound line.
    fn send(&mut self, text: &str) -> Step {
        let spans = find_secrets(text);
        let redacted = redact(text, &spans);
        let decision = ENGINE.decide(&redacted);
        let event = Event::UserMessage(UserMessage {
            text_redacted: redacted.clone(),
            secrets: spans.iter().map(SecretFound::from).collect(),
            at: self.now,
            platform_message_id: "1".into(),
            decision: Some(decision),
            attachments: Vec::new(),
            clauses: kefu_core::clauses::decide(&ENGINE, &redacted),
            thresholds: Some(ENGINE.policy()),
        });
        let ctx = Context {
            kb: ENGINE.kb(),
            now: self.now,
            hours: &self.hours,
            queue: QueueInfo {
                position: 2,
                expected_wait: Some(Duration::from_secs(15 * 60)),
            },
            ticket_code: "Q4M7Z",
            flood: Flood::UNLIMITED,
        };
        let step = handle(&self.state, &event, &ctx);
        self.state = step.state.clone();
        step
    }
}

fn texts(step: &Step) -> Vec<&str> {
    step.actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r.text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_chinese_user_is_answered_then_handed_to_a_human_with_their_details() {
    let mut chat = Chat::new();

    let step = chat.send("提币一直没到账");
    let t = texts(&step);
    assert_eq!(t.len(), 2, "greeting, then the answer: {t:?}");
    assert!(t[0].contains("绝不会索要"), "{}", t[0]);
    assert!(
        t[1].contains("5–30 分钟") && t[1].ends_with("有帮助吗？"),
        "{}",
        t[1]
    );
    assert_eq!(chat.state.language, Lang::Zh);

    let step = chat.send("没有");
    assert!(
        texts(&step)[0].contains("转接人工客服"),
        "{:?}",
        texts(&step)
    );

    let step = chat.send("是的");
    assert!(texts(&step)[0].contains("(1/4)"), "{:?}", texts(&step));

    chat.send(TX);
    chat.send("100 USDT");
    chat.send("TRC20");
    let step = chat.send("今天下午3点");

    let ticket = step
        .actions
        .iter()
        .find_map(|a| match a {
            Action::OpenTicket(t) => Some(t),
            _ => None,
        })
        .expect("a ticket opens after the last detail");
    assert_eq!(ticket.code, "Q4M7Z");
    assert_eq!(ticket.intent.as_deref(), Some("withdrawal.pending"));
    assert_eq!(ticket.priority, Priority::Normal);
    let values: Vec<Option<&str>> = ticket.details.iter().map(|d| d.value.as_deref()).collect();
    assert_eq!(
        values,
        [
            Some(TX),
            Some("100 USDT"),
            Some("TRC20 (TRON)"),
            Some("今天下午3点")
        ]
    );
    let reply = texts(&step)[0];
    assert!(
        reply.contains("Q4M7Z") && reply.contains("第 2 位") && reply.contains("约 15 分钟"),
        "{reply}"
    );
    assert!(matches!(chat.state.phase, Phase::Queued { .. }));
}

#[test]
fn a_pasted_seed_phrase_is_never_echoed_and_the_wallet_called_compromised() {
    let mut chat = Chat::new();
    chat.send("你好");
    let seed = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let step = chat.send(&format!("我的助记词是 {seed} 帮我看看"));
    assert!(matches!(step.actions[0], Action::DeleteUserMessage { .. }));
    assert!(texts(&step)[0].contains("已泄露"), "{:?}", texts(&step));
    let all = format!("{:?}", step.actions);
    assert!(!all.contains("abandon"), "{all}");
}

#[test]
fn a_hacked_account_is_answered_and_escalated_as_urgent_after_uid_and_time() {
    let mut chat = Chat::new();
    chat.send("你好");
    let step = chat.send("我的账号被盗了");
    assert!(texts(&step)[0].contains("冻结账户"), "{:?}", texts(&step));
    assert!(texts(&step)[1].contains("UID"), "{:?}", texts(&step));
    chat.send("UID 88886666");
    let step = chat.send("十分钟前");
    let ticket = step
        .actions
        .iter()
        .find_map(|a| match a {
            Action::OpenTicket(t) => Some(t),
            _ => None,
        })
        .expect("ticket");
    assert_eq!(ticket.priority, Priority::Urgent);
    assert!(texts(&step)[0].contains("紧急"));
}
