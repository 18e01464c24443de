//! The policy's invariants under random conversations: random sequences of user messages (any
//! text, command, button payload, NLU verdict, secret, attachment, flood count) and staff actions
//! (on the conversation's ticket or another, by one of two staff members), each step checked with
//! `kefu_core::invariants`. `handle` must never panic, and every state reached must keep its ways out.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use kefu_core::invariants::{check_step, check_ways_out};
use kefu_core::model::{Attachment, AttachmentKind};
use kefu_core::{
    ConversationState, Event, Flood, QueueInfo, SecretFound, SupportHours, UserMessage, handle,
};
use kefu_nlu::engine::{Candidate, Decision, DecisionKind, Policy};
use kefu_nlu::kb::{KnowledgeBase, parse_sources};
use kefu_nlu::secrets::SecretKind;
use proptest::prelude::*;

const KB: &str = r#"
[meta]
default_language = "zh"

[[intent]]
id = "withdrawal.pending"
title = { zh = "提币未到账", en = "Withdrawal pending" }
examples = { zh = ["提币没到账"] }
answer = { zh = "提币通常 30 分钟内到账。", en = "Withdrawals arrive within 30 minutes." }
collect = ["tx_id", "amount", "network", "time"]

[[intent]]
id = "withdrawal.failed"
title = { zh = "提币失败", en = "Withdrawal failed" }
examples = { zh = ["提币失败"] }
answer = { zh = "请检查地址和网络。", en = "Check the address and network." }

[[intent]]
id = "security.account_hacked"
title = { zh = "账户被盗", en = "Account hacked" }
examples = { zh = ["账号被盗了"] }
answer = { zh = "请立即冻结账户。", en = "Freeze your account now." }
handoff = true
priority = "urgent"
collect = ["uid"]

[[intent]]
id = "human"
title = { zh = "转人工客服", en = "Talk to a human agent" }
examples = { zh = ["我要找人工"] }
answer = { zh = "正在为您转接。", en = "Connecting you." }
handoff = true

[[intent]]
id = "smalltalk.greeting"
title = { zh = "问候", en = "Greeting" }
examples = { zh = ["你好"] }
answer = { zh = "您好！", en = "Hello!" }

[[intent]]
id = "smalltalk.thanks"
title = { zh = "感谢", en = "Thanks" }
examples = { zh = ["谢谢"] }
answer = { zh = "不客气！", en = "You're welcome!" }
"#;

const INTENTS: &[&str] = &[
    "withdrawal.pending",
    "withdrawal.failed",
    "security.account_hacked",
    "human",
    "smalltalk.greeting",
    "smalltalk.thanks",
    "no.such.intent",
];

const TEXTS: &[&str] = &[
    "",
    "提币没到账",
    "提币没到账，另外怎么改密码",
    "谢谢",
    "好的谢谢",
    "bye",
    "/cancel",
    "取消",
    "/human",
    "转人工",
    "/yes",
    "/no",
    "是的",
    "没有",
    "/neither",
    "/skip",
    "跳过",
    "1",
    "2",
    "5",
    "/rate 4",
    "/pick withdrawal.failed",
    "/pick no.such.intent",
    "/lang en",
    "说中文",
    "/transcript",
    "/help",
    "/start",
    "/frobnicate",
    "100 USDT",
    "TRC20",
    "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    "12345678",
    "[redacted: seed phrase, 12 words]",
    "my withdrawal is stuck? and also how do I change my password",
    "今天天气怎么样",
    "提币失败",
];

fn kb() -> KnowledgeBase {
    parse_sources(Path::new("t.toml"), &[(Path::new("t.toml"), KB)]).unwrap()
}

fn decision() -> impl Strategy<Value = Decision> {
    (
        prop_oneof![
            Just(DecisionKind::Answer),
            Just(DecisionKind::Clarify),
            Just(DecisionKind::Escalate)
        ],
        proptest::collection::vec((0..INTENTS.len(), 0.0f32..1.0), 0..4),
        0.0f32..1.0,
        prop_oneof![Just("zh"), Just("en"), Just("und")],
    )
        .prop_map(|(kind, candidates, oos, language)| Decision {
            decision: kind,
            intent: candidates.first().map(|(i, _)| INTENTS[*i].to_owned()),
            confidence: candidates.first().map_or(0.0, |(_, s)| *s),
            candidates: candidates
                .iter()
                .map(|(i, s)| Candidate {
                    intent: INTENTS[*i].to_owned(),
                    score: *s,
                })
                .collect(),
            out_of_scope: oos,
            language: language.to_owned(),
        })
}

/// One random event; `None` staff ticket means "the conversation's open ticket, if any".
#[derive(Debug, Clone)]
enum Move {
    User {
        text: String,
        decision: Option<Decision>,
        clauses: Vec<Decision>,
        thresholds: bool,
        secret: bool,
        photo: bool,
        flood: bool,
    },
    Staff {
        kind: u8,
        own_ticket: bool,
        staff: &'static str,
    },
}

fn user_move() -> impl Strategy<Value = Move> {
    (
        prop_oneof![
            8 => proptest::sample::select(TEXTS).prop_map(str::to_owned),
            1 => ".{0,40}",
        ],
        proptest::option::of(decision()),
        proptest::collection::vec(decision(), 0..3),
        any::<bool>(),
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(text, decision, clauses, thresholds, secret, photo, flood)| Move::User {
                text,
                decision,
                clauses,
                thresholds,
                secret,
                photo,
                flood,
            },
        )
}

fn staff_move() -> impl Strategy<Value = Move> {
    (
        0u8..5,
        proptest::bool::weighted(0.85),
        prop_oneof![Just("alice"), Just("bob")],
    )
        .prop_map(|(kind, own_ticket, staff)| Move::Staff {
            kind,
            own_ticket,
            staff,
        })
}

fn moves() -> impl Strategy<Value = Vec<Move>> {
    proptest::collection::vec(prop_oneof![3 => user_move(), 1 => staff_move()], 1..40)
}

fn event(m: &Move, state: &ConversationState, at: DateTime<Utc>) -> Event {
    match m {
        Move::User {
            text,
            decision,
            clauses,
            thresholds,
            secret,
            photo,
            ..
        } => Event::UserMessage(UserMessage {
            text_redacted: text.clone(),
            secrets: if *secret {
                vec![SecretFound {
                    kind: SecretKind::SeedPhrase,
                    words: 12,
                }]
            } else {
                Vec::new()
            },
            at,
            platform_message_id: "m".to_owned(),
            decision: decision.clone(),
            attachments: if *photo {
                vec![Attachment {
                    kind: AttachmentKind::Photo,
                    name: None,
                    url: None,
                }]
            } else {
                Vec::new()
            },
            clauses: clauses.clone(),
            thresholds: thresholds.then_some(Policy {
                answer_threshold: 0.9,
                clarify_threshold: 0.55,
                clarify_ratio: 0.0,
                temperature: 1.0,
            }),
        }),
        Move::Staff {
            kind,
            own_ticket,
            staff,
        } => {
            let ticket = match (own_ticket, state.open_ticket()) {
                (true, Some(t)) => t.to_owned(),
                _ => "OTHER1".to_owned(),
            };
            let staff = (*staff).to_owned();
            match kind {
                0 => Event::StaffClaimed { ticket, staff },
                1 => Event::StaffReply {
                    ticket,
                    staff,
                    text: "请稍等".to_owned(),
                },
                2 => Event::StaffResolved { ticket, staff },
                3 => Event::StaffReleased { ticket, staff },
                _ => Event::TicketCancelled { ticket },
            }
        }
    }
}

/// Random conversations tried: `KEFU_FUZZ_CASES`, default 400 (README's figures: 50,000
/// conversations, about a million policy steps).
fn cases() -> u32 {
    std::env::var("KEFU_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_step_of_a_random_conversation_keeps_the_policys_promises(
        moves in moves(),
        hours_closed in any::<bool>(),
    ) {
        let kb = kb();
        let hours = if hours_closed {
            SupportHours::parse("Asia/Shanghai", "daily", "09:00", "09:01").unwrap()
        } else {
            SupportHours::always()
        };
        let start = DateTime::parse_from_rfc3339("2025-05-05T02:00:00Z").unwrap().with_timezone(&Utc);
        let mut state = ConversationState::default();
        for (i, m) in moves.iter().enumerate() {
            let now = start + Duration::minutes(7 * i as i64);
            let code = format!("T{i:05}");
            let flood = match m {
                Move::User { flood: true, .. } => Flood { recent_messages: 9, max_messages: 8 },
                _ => Flood::UNLIMITED,
            };
            let ctx = kefu_core::Context {
                kb: &kb,
                now,
                hours: &hours,
                queue: QueueInfo { position: 2, expected_wait: None },
                ticket_code: &code,
                flood,
            };
            let event = event(m, &state, now);
            let step = handle(&state, &event, &ctx);
            if let Err(e) = check_step(&state, &event, &step) {
                prop_assert!(false, "step {i}: {e}\nstate: {state:?}\nevent: {event:?}\nactions: {:?}", step.actions);
            }
            state = step.state;
            let calm = kefu_core::Context { flood: Flood::UNLIMITED, ..ctx };
            if let Err(e) = check_ways_out(&state, &calm) {
                prop_assert!(false, "after step {i}: {e}\nstate: {state:?}");
            }
        }
    }
}
