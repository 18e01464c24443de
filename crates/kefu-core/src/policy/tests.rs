//! One test per transition and per command. The KB is built here and decisions are made by hand,
//! so these tests check the policy, not the classifier's accuracy (see `tests/conversation.rs`
//! for a conversation through the real engine and KB).

use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use kefu_nlu::engine::{Candidate, Decision, DecisionKind};
use kefu_nlu::kb::{KnowledgeBase, parse_sources};
use kefu_nlu::secrets::SecretKind;

use super::*;
use crate::context::{Flood, QueueInfo};
use crate::event::SecretFound;
use crate::hours::SupportHours;
use crate::model::AttachmentKind;

const KB: &str = r#"
[meta]
name = "Test Exchange"
default_language = "zh"

[[intent]]
id = "withdrawal.pending"
title = { zh = "提币未到账", en = "Withdrawal pending" }
examples = { zh = ["提币没到账"], en = ["withdrawal not arrived"] }
answer = { zh = "提币通常 30 分钟内到账。", en = "Withdrawals arrive within 30 minutes." }
collect = ["tx_id", "amount", "network", "time"]

[[intent]]
id = "withdrawal.failed"
title = { zh = "提币失败", en = "Withdrawal failed" }
examples = { zh = ["提币失败"], en = ["withdrawal failed"] }
answer = { zh = "请检查地址和网络。", en = "Check the address and network." }

[[intent]]
id = "security.account_hacked"
title = { zh = "账户被盗", en = "Account hacked" }
examples = { zh = ["账号被盗了"], en = ["my account got hacked"] }
answer = { zh = "请立即冻结账户。", en = "Freeze your account now." }
handoff = true
priority = "urgent"
collect = ["uid", "time"]

[[intent]]
id = "support.complaint"
title = { zh = "投诉", en = "Complaint" }
examples = { zh = ["我要投诉"], en = ["i want to complain"] }
answer = { zh = "很抱歉给您带来不便。", en = "We're sorry for the trouble." }
handoff = true
priority = "high"

[[intent]]
id = "human"
title = { zh = "转人工客服", en = "Talk to a human agent" }
examples = { zh = ["我要找人工"], en = ["i want to speak to a human"] }
answer = { zh = "正在为您转接。", en = "Connecting you." }
handoff = true

[[intent]]
id = "smalltalk.greeting"
title = { zh = "问候", en = "Greeting" }
examples = { zh = ["你好"], en = ["hello"] }
answer = { zh = "您好！请描述您的问题。", en = "Hello! What can I do for you?" }

[[intent]]
id = "smalltalk.thanks"
title = { zh = "感谢", en = "Thanks" }
examples = { zh = ["谢谢"], en = ["thanks"] }
answer = { zh = "不客气！", en = "You're welcome!" }
"#;

const CODE: &str = "K7F2Q";
const EVM_TX: &str = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";

fn kb() -> KnowledgeBase {
    parse_sources(Path::new("t.toml"), &[(Path::new("t.toml"), KB)]).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Monday 2025-05-05 10:00 in Shanghai.
fn monday_morning() -> DateTime<Utc> {
    at("2025-05-05T02:00:00Z")
}

/// A test world: KB, hours and the knobs of the context.
struct World {
    kb: KnowledgeBase,
    hours: SupportHours,
    now: DateTime<Utc>,
    flood: Flood,
}

impl World {
    fn new() -> World {
        World {
            kb: kb(),
            hours: SupportHours::always(),
            now: monday_morning(),
            flood: Flood::UNLIMITED,
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            kb: &self.kb,
            now: self.now,
            hours: &self.hours,
            queue: QueueInfo {
                position: 3,
                expected_wait: Some(StdDuration::from_secs(10 * 60)),
            },
            ticket_code: CODE,
            flood: self.flood,
        }
    }

    fn step(&self, state: &ConversationState, event: Event) -> Step {
        handle(state, &event, &self.ctx())
    }

    fn say(&self, state: &ConversationState, text: &str, decision: Option<Decision>) -> Step {
        self.step(state, user(text, decision, self.now))
    }
}

fn user(text: &str, decision: Option<Decision>, at: DateTime<Utc>) -> Event {
    Event::UserMessage(UserMessage {
        text_redacted: text.to_owned(),
        secrets: Vec::new(),
        at,
        platform_message_id: "m1".to_owned(),
        decision,
        attachments: Vec::new(),
        clauses: Vec::new(),
        thresholds: None,
    })
}

fn decision(kind: DecisionKind, intents: &[&str], lang: &str) -> Decision {
    Decision {
        decision: kind,
        intent: intents.first().map(|s| (*s).to_owned()),
        confidence: if kind == DecisionKind::Answer {
            0.9
        } else {
            0.3
        },
        candidates: intents
            .iter()
            .map(|i| Candidate {
                intent: (*i).to_owned(),
                score: 0.3,
            })
            .collect(),
        out_of_scope: 0.05,
        language: lang.to_owned(),
    }
}

fn answer(id: &str) -> Option<Decision> {
    Some(decision(DecisionKind::Answer, &[id], "zh"))
}

fn clarify(a: &str, b: &str) -> Option<Decision> {
    Some(decision(DecisionKind::Clarify, &[a, b], "zh"))
}

fn low_confidence() -> Option<Decision> {
    Some(decision(
        DecisionKind::Escalate,
        &["withdrawal.failed", "withdrawal.pending"],
        "zh",
    ))
}

fn out_of_scope() -> Option<Decision> {
    let mut d = decision(DecisionKind::Escalate, &["withdrawal.failed"], "zh");
    d.confidence = 0.1;
    d.out_of_scope = 0.8;
    Some(d)
}

/// A greeted Chinese conversation in `phase`.
fn in_phase(phase: Phase) -> ConversationState {
    ConversationState {
        greeted: true,
        phase,
        ..ConversationState::default()
    }
}

fn idle() -> ConversationState {
    in_phase(Phase::Idle)
}

fn english(mut state: ConversationState) -> ConversationState {
    state.language = Lang::En;
    state.language_chosen = true;
    state
}

fn queued() -> ConversationState {
    in_phase(Phase::Queued {
        ticket: CODE.into(),
        last_notice: monday_morning(),
    })
}

fn with_staff() -> ConversationState {
    in_phase(Phase::WithStaff {
        ticket: CODE.into(),
        staff: "alice".into(),
    })
}

fn collecting(remaining: &[&str], collected: Vec<Detail>) -> ConversationState {
    in_phase(Phase::Collecting {
        intent: Some("withdrawal.pending".into()),
        remaining: remaining.iter().map(|s| (*s).to_owned()).collect(),
        collected,
        reason: EscalationReason::AnswerDidNotHelp,
        priority: Priority::Normal,
        attempts: 0,
    })
}

fn replies(step: &Step) -> Vec<&Reply> {
    step.actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn texts(step: &Step) -> Vec<&str> {
    replies(step).iter().map(|r| r.text.as_str()).collect()
}

fn payloads(reply: &Reply) -> Vec<&str> {
    reply.buttons.iter().map(|b| b.payload.as_str()).collect()
}

fn opened(step: &Step) -> Option<&NewTicket> {
    step.actions.iter().find_map(|a| match a {
        Action::OpenTicket(t) => Some(t),
        _ => None,
    })
}

fn has_miss(step: &Step) -> bool {
    step.actions
        .iter()
        .any(|a| matches!(a, Action::RecordMiss { .. }))
}

fn detail(name: &str, value: Option<&str>) -> Detail {
    Detail {
        name: name.into(),
        value: value.map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------------------------
// First contact
// ---------------------------------------------------------------------------------------------

#[test]
fn first_contact_is_greeted_in_chinese_with_what_the_bot_does_and_the_anti_fraud_facts() {
    let w = World::new();
    let step = w.say(
        &ConversationState::default(),
        "在吗",
        answer(GREETING_INTENT),
    );
    assert!(step.state.greeted);
    assert_eq!(step.state.language, Lang::Zh);
    let t = texts(&step);
    assert_eq!(
        t.len(),
        1,
        "only the greeting, not the KB's hello too: {t:?}"
    );
    assert!(
        t[0].contains("Test Exchange") && t[0].contains("提币"),
        "{}",
        t[0]
    );
    assert!(
        t[0].contains("绝不会主动私信") && t[0].contains("助记词"),
        "{}",
        t[0]
    );
}

#[test]
fn first_contact_in_english_is_greeted_in_english() {
    let w = World::new();
    let mut d = answer(GREETING_INTENT).unwrap();
    d.language = "en".into();
    let step = w.say(&ConversationState::default(), "hi", Some(d));
    assert_eq!(step.state.language, Lang::En);
    let t = texts(&step);
    assert!(
        t[0].starts_with("Hello") && t[0].contains("never message you first"),
        "{t:?}"
    );
}

#[test]
fn a_first_message_that_is_a_question_is_greeted_and_answered() {
    let w = World::new();
    let step = w.say(
        &ConversationState::default(),
        "提币一直没到账",
        answer("withdrawal.pending"),
    );
    let t = texts(&step);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].contains("智能客服"));
    assert!(t[1].starts_with("提币通常 30 分钟内到账。"));
}

#[test]
fn a_first_message_without_letters_is_greeted_in_the_kbs_default_language() {
    let w = World::new();
    let state = ConversationState {
        language: Lang::En,
        ..ConversationState::default()
    };
    let step = w.say(&state, "???", low_confidence());
    assert_eq!(step.state.language, Lang::Zh, "KB default is zh");
}

#[test]
fn start_command_greets_and_resets_to_idle() {
    let w = World::new();
    let step = w.say(&ConversationState::default(), "/start", None);
    assert_eq!(texts(&step).len(), 1, "greeting once");
    let again = w.say(
        &in_phase(Phase::AwaitingFeedback {
            intent: "withdrawal.failed".into(),
        }),
        "/start",
        None,
    );
    assert!(texts(&again)[0].contains("智能客服"));
    assert_eq!(again.state.phase, Phase::Idle);
}

// ---------------------------------------------------------------------------------------------
// Answers, feedback, clarification, misses
// ---------------------------------------------------------------------------------------------

#[test]
fn a_matched_question_is_answered_and_asks_did_this_help_with_yes_no_buttons() {
    let w = World::new();
    let step = w.say(&idle(), "提币失败", answer("withdrawal.failed"));
    let r = replies(&step);
    assert_eq!(r.len(), 1);
    assert!(r[0].text.starts_with("请检查地址和网络。") && r[0].text.contains("有帮助吗"));
    assert_eq!(payloads(r[0]), ["/yes", "/no"]);
    assert_eq!(
        step.state.phase,
        Phase::AwaitingFeedback {
            intent: "withdrawal.failed".into()
        }
    );
    assert_eq!(step.state.last_intent.as_deref(), Some("withdrawal.failed"));
}

#[test]
fn the_answer_is_given_in_the_conversations_language() {
    let w = World::new();
    let step = w.say(
        &english(idle()),
        "withdrawal failed",
        answer("withdrawal.failed"),
    );
    assert!(texts(&step)[0].starts_with("Check the address and network."));
    assert!(texts(&step)[0].contains("Did this answer help?"));
}

#[test]
fn yes_to_did_this_help_says_glad_and_returns_to_idle() {
    let w = World::new();
    let state = in_phase(Phase::AwaitingFeedback {
        intent: "withdrawal.failed".into(),
    });
    let step = w.say(&state, "/yes", None);
    assert_eq!(step.state.phase, Phase::Idle);
    assert!(texts(&step)[0].contains("太好了"));
    assert!(opened(&step).is_none());
}

#[test]
fn no_to_did_this_help_offers_a_human_with_yes_no_buttons() {
    let w = World::new();
    let state = in_phase(Phase::AwaitingFeedback {
        intent: "withdrawal.pending".into(),
    });
    let step = w.say(&state, "没有", None);
    let r = replies(&step);
    assert!(r[0].text.contains("转接人工客服"), "{}", r[0].text);
    assert_eq!(payloads(r[0]), ["/yes", "/no"]);
    assert_eq!(
        step.state.phase,
        Phase::OfferingHuman {
            reason: EscalationReason::AnswerDidNotHelp,
            intent: Some("withdrawal.pending".into())
        }
    );
}

#[test]
fn yes_to_the_human_offer_asks_for_the_intents_details_first() {
    let w = World::new();
    let state = in_phase(Phase::OfferingHuman {
        reason: EscalationReason::AnswerDidNotHelp,
        intent: Some("withdrawal.pending".into()),
    });
    let step = w.say(&state, "/yes", None);
    assert!(opened(&step).is_none(), "not before the details");
    let t = texts(&step);
    assert!(
        t[0].contains("4 个小问题") && t[0].contains("(1/4)") && t[0].contains("交易哈希"),
        "{t:?}"
    );
    assert_eq!(payloads(replies(&step)[0]), ["/skip", "/cancel"]);
    match step.state.phase {
        Phase::Collecting {
            remaining, reason, ..
        } => {
            assert_eq!(remaining, ["tx_id", "amount", "network", "time"]);
            assert_eq!(reason, EscalationReason::AnswerDidNotHelp);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn yes_to_the_human_offer_without_details_opens_a_ticket_at_once() {
    let w = World::new();
    let state = in_phase(Phase::OfferingHuman {
        reason: EscalationReason::NotUnderstood,
        intent: None,
    });
    let step = w.say(&state, "好的", None);
    let t = opened(&step).unwrap();
    assert_eq!(t.reason, EscalationReason::NotUnderstood);
    assert_eq!(t.priority, Priority::Normal);
    assert!(matches!(step.state.phase, Phase::Queued { .. }));
}

#[test]
fn no_to_the_human_offer_returns_to_idle_and_resets_misses() {
    let w = World::new();
    let mut state = in_phase(Phase::OfferingHuman {
        reason: EscalationReason::NotUnderstood,
        intent: None,
    });
    state.misses = 2;
    let step = w.say(&state, "不用了", None);
    assert_eq!(step.state.phase, Phase::Idle);
    assert_eq!(step.state.misses, 0);
    assert!(texts(&step)[0].contains("换个说法"));
}

#[test]
fn close_intents_ask_did_you_mean_with_both_titles_and_neither() {
    let w = World::new();
    let step = w.say(
        &idle(),
        "提币",
        clarify("withdrawal.pending", "withdrawal.failed"),
    );
    let r = replies(&step);
    assert_eq!(r[0].text, "您是想问「提币未到账」还是「提币失败」？");
    assert_eq!(
        payloads(r[0]),
        [
            "/pick withdrawal.pending",
            "/pick withdrawal.failed",
            "/neither"
        ]
    );
    assert_eq!(r[0].buttons[2].label, "都不是");
    assert_eq!(
        step.state.phase,
        Phase::Clarifying {
            first: "withdrawal.pending".into(),
            second: "withdrawal.failed".into()
        }
    );
}

fn clarifying() -> ConversationState {
    in_phase(Phase::Clarifying {
        first: "withdrawal.pending".into(),
        second: "withdrawal.failed".into(),
    })
}

#[test]
fn picking_an_option_answers_it() {
    let w = World::new();
    let step = w.say(&clarifying(), "/pick withdrawal.failed", None);
    assert!(texts(&step)[0].starts_with("请检查地址和网络。"));
    assert!(matches!(step.state.phase, Phase::AwaitingFeedback { .. }));
}

#[test]
fn typing_an_options_title_or_number_picks_it() {
    let w = World::new();
    let step = w.say(&clarifying(), "提币失败", low_confidence());
    assert!(texts(&step)[0].starts_with("请检查地址和网络。"));
    let step = w.say(&clarifying(), "1", None);
    assert!(texts(&step)[0].starts_with("提币通常"));
}

#[test]
fn neither_offers_a_human() {
    let w = World::new();
    let step = w.say(&clarifying(), "/neither", None);
    assert!(texts(&step)[0].contains("转接人工客服"));
    assert_eq!(
        step.state.phase,
        Phase::OfferingHuman {
            reason: EscalationReason::NeitherOption,
            intent: None
        }
    );
}

/// The world after a KB reload that removed `withdrawal.pending`, one of [`clarifying`]'s options.
fn world_without_pending() -> World {
    let mut w = World::new();
    w.kb.intents.retain(|i| i.id != "withdrawal.pending");
    assert!(w.kb.intent("withdrawal.pending").is_none());
    w
}

#[test]
fn choosing_an_option_the_reloaded_kb_no_longer_has_asks_for_the_question_again() {
    let w = world_without_pending();
    for pressed in ["/pick withdrawal.pending", "1"] {
        let step = w.say(&clarifying(), pressed, None);
        assert_eq!(
            texts(&step),
            [msg::option_gone(Lang::Zh).as_str()],
            "{pressed}"
        );
        assert_eq!(step.state.phase, Phase::Idle, "{pressed}");
        assert!(!has_miss(&step), "{pressed}");
    }
    let step = w.say(&english(clarifying()), "1", None);
    assert!(
        texts(&step)[0].contains("no longer there"),
        "{:?}",
        texts(&step)
    );
}

#[test]
fn the_option_the_reloaded_kb_still_has_can_still_be_chosen() {
    let w = world_without_pending();
    for pressed in ["/pick withdrawal.failed", "2"] {
        let step = w.say(&clarifying(), pressed, None);
        assert!(
            texts(&step)[0].starts_with("请检查地址和网络。"),
            "{pressed}"
        );
        assert!(matches!(step.state.phase, Phase::AwaitingFeedback { .. }));
    }
}

#[test]
fn a_clear_question_after_a_reload_removed_an_option_is_answered_without_asking_again() {
    let w = world_without_pending();
    let step = w.say(&clarifying(), "提币失败", answer("withdrawal.failed"));
    let r = replies(&step);
    assert_eq!(r.len(), 1, "{:?}", texts(&step));
    assert!(r[0].text.starts_with("请检查地址和网络。"), "{}", r[0].text);
    assert!(
        !payloads(r[0]).iter().any(|p| p.starts_with("/pick")),
        "the stale question is not asked again: {:?}",
        payloads(r[0])
    );
    assert_eq!(
        step.state.phase,
        Phase::AwaitingFeedback {
            intent: "withdrawal.failed".into()
        }
    );
    // Both options gone (a KB rewritten): neither pick nor "neither" is an error.
    let mut w = world_without_pending();
    w.kb.intents.retain(|i| i.id != "withdrawal.failed");
    let step = w.say(&clarifying(), "/pick withdrawal.failed", None);
    assert_eq!(texts(&step), [msg::option_gone(Lang::Zh).as_str()]);
    let step = w.say(&clarifying(), "/neither", None);
    assert!(texts(&step)[0].contains("转接人工客服"));
}

#[test]
fn a_new_question_instead_of_feedback_is_answered() {
    let w = World::new();
    let state = in_phase(Phase::AwaitingFeedback {
        intent: "withdrawal.failed".into(),
    });
    let step = w.say(&state, "提币没到账", answer("withdrawal.pending"));
    assert!(texts(&step)[0].starts_with("提币通常"));
}

#[test]
fn a_first_low_confidence_miss_asks_to_rephrase_and_records_the_miss() {
    let w = World::new();
    let step = w.say(&idle(), "那个东西怎么弄", low_confidence());
    assert!(texts(&step)[0].contains("换个说法"));
    assert_eq!(step.state.misses, 1);
    assert!(step.actions.contains(&Action::RecordMiss {
        text: "那个东西怎么弄".into(),
        language: "zh".into(),
        best_guess: Some("withdrawal.failed".into()),
    }));
}

#[test]
fn a_first_out_of_scope_message_says_what_the_bot_can_help_with() {
    let w = World::new();
    let step = w.say(&idle(), "今天天气怎么样", out_of_scope());
    assert!(
        texts(&step)[0].contains("不在我能帮忙的范围"),
        "{:?}",
        texts(&step)
    );
    assert!(has_miss(&step));
    assert_eq!(step.state.phase, Phase::Idle);
}

#[test]
fn a_second_miss_in_a_row_offers_a_human_instead_of_looping() {
    let w = World::new();
    let first = w.say(&idle(), "嗯那个", low_confidence());
    let second = w.say(&first.state, "就是那个啊", out_of_scope());
    assert!(has_miss(&second));
    let r = replies(&second);
    assert!(r[0].text.contains("还是没能理解"));
    assert_eq!(payloads(r[0]), ["/yes", "/no"]);
    assert_eq!(
        second.state.phase,
        Phase::OfferingHuman {
            reason: EscalationReason::NotUnderstood,
            intent: None
        }
    );
}

#[test]
fn an_answer_resets_the_miss_counter() {
    let w = World::new();
    let mut state = idle();
    state.misses = 1;
    let step = w.say(&state, "提币失败", answer("withdrawal.failed"));
    assert_eq!(step.state.misses, 0);
}

#[test]
fn a_question_without_a_decision_counts_as_a_miss() {
    let w = World::new();
    let step = w.say(&idle(), "随便问问", None);
    assert!(has_miss(&step));
    assert_eq!(step.state.misses, 1);
}

#[test]
fn an_answer_naming_an_intent_missing_from_the_kb_is_a_miss() {
    let w = World::new();
    let step = w.say(&idle(), "x", answer("gone.intent"));
    assert!(has_miss(&step));
}

#[test]
fn small_talk_is_answered_without_feedback_buttons() {
    let w = World::new();
    let step = w.say(&idle(), "谢谢", answer("smalltalk.thanks"));
    let r = replies(&step);
    assert_eq!(r[0].text, "不客气！");
    assert!(r[0].buttons.is_empty());
    assert_eq!(step.state.phase, Phase::Idle);
}

// ---------------------------------------------------------------------------------------------
// Handoff intents and the human command
// ---------------------------------------------------------------------------------------------

#[test]
fn a_handoff_intent_answers_and_opens_a_ticket_at_its_priority() {
    let w = World::new();
    let step = w.say(&idle(), "我要投诉", answer("support.complaint"));
    let t = texts(&step);
    assert_eq!(t[0], "很抱歉给您带来不便。");
    let ticket = opened(&step).unwrap();
    assert_eq!(ticket.priority, Priority::High);
    assert_eq!(ticket.reason, EscalationReason::Handoff);
    assert_eq!(ticket.intent.as_deref(), Some("support.complaint"));
    assert_eq!(ticket.code, CODE);
    assert!(t[1].contains(CODE));
}

#[test]
fn a_handoff_intent_with_details_answers_then_collects_before_the_ticket() {
    let w = World::new();
    let step = w.say(&idle(), "账号被盗了", answer("security.account_hacked"));
    let t = texts(&step);
    assert_eq!(t[0], "请立即冻结账户。");
    assert!(t[1].contains("UID"), "{t:?}");
    assert!(opened(&step).is_none());
    match &step.state.phase {
        Phase::Collecting {
            priority, reason, ..
        } => {
            assert_eq!(*priority, Priority::Urgent);
            assert_eq!(*reason, EscalationReason::Handoff);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_kbs_human_intent_acts_like_the_human_command() {
    let w = World::new();
    let mut state = idle();
    state.last_intent = Some("withdrawal.pending".into());
    let step = w.say(&state, "我要找人工", answer(HUMAN_INTENT));
    assert!(
        matches!(step.state.phase, Phase::Collecting { .. }),
        "{:?}",
        step.state.phase
    );
    assert!(!texts(&step).iter().any(|t| t.contains("正在为您转接。")));
}

#[test]
fn the_human_command_in_idle_opens_a_ticket_the_user_asked_for() {
    let w = World::new();
    for text in ["/human", "转人工", "real person"] {
        let step = w.say(&idle(), text, None);
        let t = opened(&step).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(t.reason, EscalationReason::UserAsked);
        assert_eq!(t.intent, None);
    }
}

#[test]
fn the_human_command_after_an_answer_collects_that_intents_details() {
    let w = World::new();
    let state = in_phase(Phase::AwaitingFeedback {
        intent: "withdrawal.pending".into(),
    });
    let step = w.say(&state, "人工客服", None);
    match &step.state.phase {
        Phase::Collecting { intent, reason, .. } => {
            assert_eq!(intent.as_deref(), Some("withdrawal.pending"));
            assert_eq!(*reason, EscalationReason::UserAsked);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_escalation_reply_gives_the_code_the_queue_position_and_the_wait() {
    let w = World::new();
    let step = w.say(&idle(), "/human", None);
    let t = texts(&step)[0];
    assert!(t.contains("工单核验码：K7F2Q"), "{t}");
    assert!(t.contains("报不出的人都不是我们的客服"), "{t}");
    assert!(t.contains("第 3 位") && t.contains("约 10 分钟"), "{t}");
    assert!(!t.contains("非工作时间"), "{t}");
    assert_eq!(
        step.state.phase,
        Phase::Queued {
            ticket: CODE.into(),
            last_notice: w.now
        }
    );
}

#[test]
fn the_escalation_reply_in_english_explains_the_code() {
    let w = World::new();
    let step = w.say(&english(idle()), "/human", None);
    let t = texts(&step)[0];
    assert!(t.contains("Ticket code: K7F2Q") && t.contains("anyone who can't is not our staff"));
    assert!(
        t.contains("number 3 in the queue") && t.contains("about 10 minutes"),
        "{t}"
    );
}

#[test]
fn outside_support_hours_the_reply_says_when_staff_are_back_in_the_support_timezone() {
    let mut w = World::new();
    w.hours = SupportHours::parse("Asia/Shanghai", "mon-fri", "09:00", "21:00").unwrap();
    w.now = at("2025-05-09T14:00:00Z"); // Friday 22:00 in Shanghai
    let step = w.say(&idle(), "/human", None);
    let t = texts(&step)[0];
    assert!(t.contains("非工作时间"), "{t}");
    assert!(t.contains("周一 2025-05-12 09:00（Asia/Shanghai）"), "{t}");
    assert!(t.contains("周一至周五 09:00–21:00"), "{t}");
}

#[test]
fn an_urgent_ticket_is_marked_urgent_for_the_user() {
    let w = World::new();
    let state = collecting(&["time"], vec![detail("uid", Some("12345678"))]);
    let mut state = state;
    if let Phase::Collecting { priority, .. } = &mut state.phase {
        *priority = Priority::Urgent;
    }
    let step = w.say(&state, "刚才", None);
    assert!(texts(&step)[0].contains("紧急"));
}

// ---------------------------------------------------------------------------------------------
// Collecting details
// ---------------------------------------------------------------------------------------------

#[test]
fn a_valid_detail_is_kept_and_the_next_one_is_asked() {
    let w = World::new();
    let state = collecting(&["tx_id", "amount"], Vec::new());
    let step = w.say(&state, &format!("txid: {EVM_TX}"), None);
    let t = texts(&step);
    assert!(t[0].starts_with("(2/2)") && t[0].contains("金额"), "{t:?}");
    match &step.state.phase {
        Phase::Collecting {
            remaining,
            collected,
            ..
        } => {
            assert_eq!(remaining, &["amount"]);
            assert_eq!(collected, &[detail("tx_id", Some(EVM_TX))]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_invalid_detail_is_asked_again_with_a_hint() {
    let w = World::new();
    let state = collecting(&["tx_id", "amount"], Vec::new());
    let step = w.say(&state, "0x123", None);
    let r = replies(&step);
    assert!(
        r[0].text.contains("不像交易哈希") && r[0].text.contains("跳过"),
        "{}",
        r[0].text
    );
    assert_eq!(payloads(r[0]), ["/skip", "/cancel"]);
    match &step.state.phase {
        Phase::Collecting {
            remaining,
            attempts,
            ..
        } => {
            assert_eq!(remaining.len(), 2);
            assert_eq!(*attempts, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_invalid_answer_is_kept_as_written_instead_of_asking_a_third_time() {
    let w = World::new();
    let first = w.say(&collecting(&["amount", "time"], Vec::new()), "好多钱", None);
    let second = w.say(&first.state, "记不太清，几千吧", None);
    match &second.state.phase {
        Phase::Collecting {
            collected,
            attempts,
            ..
        } => {
            assert_eq!(collected, &[detail("amount", Some("记不太清，几千吧"))]);
            assert_eq!(*attempts, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn skip_leaves_the_detail_empty_and_moves_on() {
    let w = World::new();
    for skip in ["跳过", "/skip", "skip", "不知道"] {
        let step = w.say(&collecting(&["tx_id", "amount"], Vec::new()), skip, None);
        match &step.state.phase {
            Phase::Collecting { collected, .. } => {
                assert_eq!(collected, &[detail("tx_id", None)], "{skip}")
            }
            other => panic!("{skip}: {other:?}"),
        }
    }
}

#[test]
fn the_last_detail_opens_the_ticket_with_every_detail_attached() {
    let w = World::new();
    let state = collecting(
        &["time"],
        vec![
            detail("tx_id", Some(EVM_TX)),
            detail("amount", Some("100 USDT")),
            detail("network", None),
        ],
    );
    let step = w.say(&state, "今天下午三点", None);
    let ticket = opened(&step).unwrap();
    assert_eq!(ticket.intent.as_deref(), Some("withdrawal.pending"));
    assert_eq!(ticket.reason, EscalationReason::AnswerDidNotHelp);
    assert_eq!(ticket.details.len(), 4);
    assert_eq!(ticket.details[3], detail("time", Some("今天下午三点")));
    assert!(texts(&step)[0].contains(CODE));
    assert!(matches!(step.state.phase, Phase::Queued { .. }));
}

#[test]
fn amounts_and_networks_are_stored_in_canonical_form() {
    let w = World::new();
    let step = w.say(
        &collecting(&["amount", "network"], Vec::new()),
        "1,000u",
        None,
    );
    let step = w.say(&step.state, "波场", None);
    let ticket = opened(&step).unwrap();
    assert_eq!(
        ticket.details,
        [
            detail("amount", Some("1000 USDT")),
            detail("network", Some("TRC20 (TRON)"))
        ]
    );
}

#[test]
fn cancel_while_collecting_opens_no_ticket() {
    let w = World::new();
    let step = w.say(&collecting(&["tx_id"], Vec::new()), "/cancel", None);
    assert!(opened(&step).is_none());
    assert_eq!(step.state.phase, Phase::Idle);
    assert!(texts(&step)[0].contains("不会创建工单"));
}

#[test]
fn the_human_command_while_collecting_opens_the_ticket_with_what_was_collected() {
    let w = World::new();
    let state = collecting(&["amount", "time"], vec![detail("tx_id", Some(EVM_TX))]);
    let step = w.say(&state, "转人工", None);
    let ticket = opened(&step).unwrap();
    assert_eq!(ticket.details, [detail("tx_id", Some(EVM_TX))]);
}

#[test]
fn help_and_language_while_collecting_repeat_the_question() {
    let w = World::new();
    let state = collecting(&["tx_id"], Vec::new());
    let step = w.say(&state, "/help", None);
    let t = texts(&step);
    assert!(t[0].contains("指令") && t[1].contains("交易哈希"), "{t:?}");
    let step = w.say(&state, "/lang en", None);
    let t = texts(&step);
    assert!(t[1].contains("transaction hash"), "{t:?}");
    assert_eq!(step.state.phase, state.phase, "still on the same question");
}

#[test]
fn a_detail_answer_does_not_switch_the_conversations_language() {
    let w = World::new();
    let step = w.say(
        &collecting(&["amount", "time"], Vec::new()),
        "100 USDT please",
        None,
    );
    assert_eq!(step.state.language, Lang::Zh);
}

// ---------------------------------------------------------------------------------------------
// Queued
// ---------------------------------------------------------------------------------------------

#[test]
fn a_queued_users_unclear_message_is_relayed_to_the_ticket_and_not_answered() {
    let w = World::new();
    let step = w.say(&queued(), "那个钱的事", low_confidence());
    assert_eq!(
        step.actions,
        [Action::RelayToStaff {
            ticket: CODE.into(),
            text: "那个钱的事".into(),
            attachments: Vec::new(),
        }]
    );
}

#[test]
fn a_queued_user_is_reminded_of_their_place_at_most_every_ten_minutes() {
    let mut w = World::new();
    w.now = monday_morning() + Duration::minutes(11);
    let step = w.say(&queued(), "还要等多久", None);
    let t = texts(&step);
    assert_eq!(t.len(), 1);
    assert!(t[0].contains("第 3 位"), "{t:?}");
    let again = w.say(&step.state, "快点", None);
    assert!(
        texts(&again).is_empty(),
        "no second reminder within ten minutes"
    );
    assert!(matches!(again.actions[0], Action::RelayToStaff { .. }));
}

#[test]
fn cancel_while_queued_cancels_the_ticket() {
    let w = World::new();
    let step = w.say(&queued(), "取消", None);
    assert_eq!(
        step.actions[0],
        Action::CancelTicket {
            ticket: CODE.into()
        }
    );
    assert!(texts(&step)[0].contains("已取消工单 K7F2Q"));
    assert_eq!(step.state.phase, Phase::Idle);
}

#[test]
fn the_human_command_while_queued_repeats_the_place_in_the_queue() {
    let w = World::new();
    let step = w.say(&queued(), "/human", None);
    assert!(opened(&step).is_none());
    assert!(texts(&step)[0].contains("已在人工客服队列中") && texts(&step)[0].contains("第 3 位"));
}

#[test]
fn transcript_language_and_help_still_work_while_queued() {
    let w = World::new();
    let step = w.say(&queued(), "聊天记录", None);
    assert!(matches!(step.actions[0], Action::SendTranscript { .. }));
    let step = w.say(&queued(), "English please", None);
    assert_eq!(step.state.language, Lang::En);
    let step = w.say(&queued(), "/help", None);
    assert!(texts(&step)[0].contains("转人工"));
}

// ---------------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------------

#[test]
fn a_staff_claim_hands_the_chat_to_staff_and_tells_the_user_the_code() {
    let w = World::new();
    let step = w.step(
        &queued(),
        Event::StaffClaimed {
            ticket: CODE.into(),
            staff: "alice".into(),
        },
    );
    assert_eq!(
        step.state.phase,
        Phase::WithStaff {
            ticket: CODE.into(),
            staff: "alice".into()
        }
    );
    assert!(texts(&step)[0].contains("alice") && texts(&step)[0].contains(CODE));
}

#[test]
fn while_staff_hold_the_chat_every_message_is_only_relayed() {
    let w = World::new();
    for (text, d) in [
        ("提币失败", answer("withdrawal.failed")),
        ("/cancel", None),
        ("/human", None),
        ("听不懂", low_confidence()),
    ] {
        let step = w.say(&with_staff(), text, d);
        assert_eq!(
            step.actions,
            [Action::RelayToStaff {
                ticket: CODE.into(),
                text: text.into(),
                attachments: Vec::new(),
            }],
            "{text}"
        );
        assert_eq!(step.state, with_staff());
    }
}

#[test]
fn while_staff_hold_the_chat_flooding_is_still_relayed_without_a_reply() {
    let mut w = World::new();
    w.flood = Flood {
        recent_messages: 50,
        max_messages: 5,
    };
    let step = w.say(&with_staff(), "快点", None);
    assert_eq!(step.actions.len(), 1);
    assert!(matches!(step.actions[0], Action::RelayToStaff { .. }));
}

#[test]
fn a_staff_reply_is_relayed_to_the_user() {
    let w = World::new();
    let step = w.step(
        &with_staff(),
        Event::StaffReply {
            ticket: CODE.into(),
            staff: "alice".into(),
            text: "您好，请稍等".into(),
        },
    );
    assert_eq!(
        step.actions,
        [Action::RelayToUser {
            staff: "alice".into(),
            text: "您好，请稍等".into()
        }]
    );
}

#[test]
fn a_staff_reply_to_a_queued_ticket_claims_it() {
    let w = World::new();
    let step = w.step(
        &queued(),
        Event::StaffReply {
            ticket: CODE.into(),
            staff: "bob".into(),
            text: "在的".into(),
        },
    );
    assert!(matches!(step.state.phase, Phase::WithStaff { ref staff, .. } if staff == "bob"));
    assert!(matches!(step.actions[0], Action::Reply(_)));
    assert!(matches!(step.actions[1], Action::RelayToUser { .. }));
}

#[test]
fn staff_events_for_another_ticket_change_nothing() {
    let w = World::new();
    for event in [
        Event::StaffClaimed {
            ticket: "OTHER".into(),
            staff: "a".into(),
        },
        Event::StaffReply {
            ticket: "OTHER".into(),
            staff: "a".into(),
            text: "x".into(),
        },
        Event::StaffResolved {
            ticket: "OTHER".into(),
            staff: "a".into(),
        },
        Event::TicketCancelled {
            ticket: "OTHER".into(),
        },
    ] {
        for state in [idle(), queued(), with_staff()] {
            let step = w.step(&state, event.clone());
            assert_eq!(step.state, state, "{event:?}");
            assert!(step.actions.is_empty(), "{event:?}");
        }
    }
}

#[test]
fn staff_resolving_returns_the_chat_to_the_bot_and_asks_for_a_rating() {
    let w = World::new();
    let step = w.step(
        &with_staff(),
        Event::StaffResolved {
            ticket: CODE.into(),
            staff: "alice".into(),
        },
    );
    assert_eq!(
        step.state.phase,
        Phase::Rating {
            ticket: CODE.into()
        }
    );
    let r = replies(&step);
    assert!(r[0].text.contains("打分"));
    assert_eq!(
        payloads(r[0]),
        ["/rate 1", "/rate 2", "/rate 3", "/rate 4", "/rate 5"]
    );
}

#[test]
fn a_ticket_closed_without_resolution_returns_the_chat_to_the_bot() {
    let w = World::new();
    let step = w.step(
        &queued(),
        Event::TicketCancelled {
            ticket: CODE.into(),
        },
    );
    assert_eq!(step.state.phase, Phase::Idle);
    assert!(texts(&step)[0].contains("已关闭"));
}

// ---------------------------------------------------------------------------------------------
// Rating
// ---------------------------------------------------------------------------------------------

fn rating() -> ConversationState {
    in_phase(Phase::Rating {
        ticket: CODE.into(),
    })
}

#[test]
fn a_rating_is_recorded_and_a_comment_invited() {
    let w = World::new();
    for text in ["/rate 4", "4", "4分", "★★★★"] {
        let step = w.say(&rating(), text, None);
        assert_eq!(
            step.actions[0],
            Action::RecordRating {
                ticket: CODE.into(),
                score: 4,
                comment: None
            },
            "{text}"
        );
        assert_eq!(payloads(replies(&step)[0]), ["/skip"]);
        assert_eq!(
            step.state.phase,
            Phase::RatingComment {
                ticket: CODE.into(),
                score: 4
            }
        );
    }
}

#[test]
fn a_comment_is_recorded_with_the_score() {
    let w = World::new();
    let state = in_phase(Phase::RatingComment {
        ticket: CODE.into(),
        score: 5,
    });
    let step = w.say(&state, "客服很耐心", low_confidence());
    assert_eq!(
        step.actions[0],
        Action::RecordRating {
            ticket: CODE.into(),
            score: 5,
            comment: Some("客服很耐心".into())
        }
    );
    assert!(!has_miss(&step));
    assert_eq!(step.state.phase, Phase::Idle);
}

#[test]
fn skipping_the_comment_ends_the_rating() {
    let w = World::new();
    let state = in_phase(Phase::RatingComment {
        ticket: CODE.into(),
        score: 3,
    });
    let step = w.say(&state, "跳过", None);
    assert_eq!(texts(&step), ["感谢您的反馈！还有其他问题随时问我。"]);
    assert!(
        !step
            .actions
            .iter()
            .any(|a| matches!(a, Action::RecordRating { .. }))
    );
    assert_eq!(step.state.phase, Phase::Idle);
}

#[test]
fn a_new_question_instead_of_a_rating_is_answered_and_the_rating_asked_again() {
    let w = World::new();
    let step = w.say(&rating(), "提币失败怎么办", answer("withdrawal.failed"));
    let r = replies(&step);
    assert_eq!(r.len(), 1);
    assert!(r[0].text.starts_with("请检查"), "{}", r[0].text);
    assert!(r[0].text.contains("回到刚才的评分："), "{}", r[0].text);
    assert_eq!(
        payloads(r[0]),
        ["/rate 1", "/rate 2", "/rate 3", "/rate 4", "/rate 5"]
    );
    assert_eq!(step.state.phase, rating().phase);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

fn with_secret(text: &str, decision: Option<Decision>) -> Event {
    Event::UserMessage(UserMessage {
        text_redacted: text.to_owned(),
        secrets: vec![SecretFound {
            kind: SecretKind::SeedPhrase,
            words: 12,
        }],
        at: monday_morning(),
        platform_message_id: "m42".to_owned(),
        decision,
        attachments: Vec::new(),
        clauses: Vec::new(),
        thresholds: None,
    })
}

#[test]
fn a_message_with_a_seed_phrase_is_deleted_and_warned_about_before_anything_else() {
    let w = World::new();
    let step = w.step(
        &idle(),
        with_secret("[redacted: seed phrase, 12 words]", None),
    );
    assert_eq!(
        step.actions[0],
        Action::DeleteUserMessage {
            platform_message_id: "m42".into()
        }
    );
    let t = texts(&step);
    assert_eq!(t.len(), 1, "the warning only: {t:?}");
    assert!(
        t[0].contains("助记词（12 个词）") && t[0].contains("已泄露"),
        "{t:?}"
    );
    assert!(!has_miss(&step), "a bare secret is not a question");
}

#[test]
fn a_secret_with_a_question_is_warned_about_and_the_question_answered() {
    let w = World::new();
    let step = w.step(
        &idle(),
        with_secret(
            "我的助记词 [redacted: seed phrase, 12 words] 提币失败了",
            answer("withdrawal.failed"),
        ),
    );
    let t = texts(&step);
    assert!(
        t[0].contains("已泄露") && t[1].starts_with("请检查"),
        "{t:?}"
    );
}

#[test]
fn a_secret_in_the_first_message_is_warned_about_before_the_greeting() {
    let w = World::new();
    let step = w.step(
        &ConversationState::default(),
        with_secret("[redacted: seed phrase, 12 words]", None),
    );
    let t = texts(&step);
    assert!(
        t[0].contains("已泄露") && t[1].contains("智能客服"),
        "{t:?}"
    );
}

#[test]
fn a_secret_while_staff_hold_the_chat_is_warned_about_and_relayed_redacted() {
    let w = World::new();
    let text = "[redacted: seed phrase, 12 words]";
    let step = w.step(&with_staff(), with_secret(text, None));
    assert!(matches!(step.actions[0], Action::DeleteUserMessage { .. }));
    assert!(matches!(step.actions[1], Action::Reply(_)));
    assert_eq!(
        step.actions[2],
        Action::RelayToStaff {
            ticket: CODE.into(),
            text: text.into(),
            attachments: Vec::new(),
        }
    );
}

#[test]
fn a_secret_pasted_as_a_detail_is_warned_about_and_the_question_repeated() {
    let w = World::new();
    let state = collecting(&["tx_id"], Vec::new());
    let step = w.step(&state, with_secret("[redacted: private key]", None));
    let t = texts(&step);
    assert!(
        t[0].contains("已泄露") && t[1].contains("交易哈希"),
        "{t:?}"
    );
    assert_eq!(step.state.phase, state.phase, "no attempt used up");
}

// ---------------------------------------------------------------------------------------------
// Flood control
// ---------------------------------------------------------------------------------------------

fn flooding() -> World {
    let mut w = World::new();
    w.flood = Flood {
        recent_messages: 11,
        max_messages: 10,
    };
    w
}

#[test]
fn over_the_flood_limit_the_user_gets_one_polite_reply_and_no_answer() {
    let w = flooding();
    let step = w.say(&idle(), "提币失败", answer("withdrawal.failed"));
    assert_eq!(texts(&step).len(), 1);
    assert!(texts(&step)[0].contains("太快"));
    assert!(step.state.throttled);
    assert_eq!(step.state.phase, Phase::Idle);
}

#[test]
fn further_messages_in_the_same_burst_get_no_reply_at_all() {
    let w = flooding();
    let first = w.say(&idle(), "a", None);
    let second = w.say(&first.state, "b", None);
    assert!(second.actions.is_empty());
}

#[test]
fn back_under_the_flood_limit_the_bot_answers_again() {
    let w = World::new();
    let mut state = idle();
    state.throttled = true;
    let step = w.say(&state, "提币失败", answer("withdrawal.failed"));
    assert!(!step.state.throttled);
    assert!(texts(&step)[0].starts_with("请检查"));
}

#[test]
fn flooding_while_queued_still_relays_every_message() {
    let w = flooding();
    let step = w.say(&queued(), "快点", None);
    assert!(matches!(step.actions[0], Action::RelayToStaff { .. }));
}

// ---------------------------------------------------------------------------------------------
// Commands and language
// ---------------------------------------------------------------------------------------------

#[test]
fn the_transcript_command_asks_the_service_for_the_users_transcript() {
    let w = World::new();
    let step = w.say(&idle(), "/transcript", None);
    assert_eq!(
        step.actions,
        [Action::SendTranscript {
            header: "以下是您的聊天记录（敏感信息已隐藏）：".into()
        }]
    );
}

#[test]
fn the_language_command_switches_and_pins_the_language() {
    let w = World::new();
    let step = w.say(&idle(), "/lang en", None);
    assert_eq!(step.state.language, Lang::En);
    assert!(step.state.language_chosen);
    assert_eq!(texts(&step), ["OK, I'll reply in English from now on."]);
    let next = w.say(&step.state, "提币失败", answer("withdrawal.failed"));
    assert!(texts(&next)[0].starts_with("Check the address"), "pinned");
}

#[test]
fn asking_for_chinese_in_words_switches_to_chinese() {
    let w = World::new();
    let step = w.say(&english(idle()), "说中文", None);
    assert_eq!(step.state.language, Lang::Zh);
    assert_eq!(texts(&step), ["好的，接下来我会用中文回复您。"]);
}

#[test]
fn the_reply_language_follows_the_users_writing_until_they_choose_one() {
    let w = World::new();
    let step = w.say(&idle(), "my withdrawal failed", answer("withdrawal.failed"));
    assert_eq!(step.state.language, Lang::En);
    let step = w.say(&step.state, "提币失败", answer("withdrawal.failed"));
    assert_eq!(step.state.language, Lang::Zh);
}

#[test]
fn a_short_english_word_does_not_switch_a_chinese_conversation() {
    let w = World::new();
    let step = w.say(&idle(), "USDT", low_confidence());
    assert_eq!(step.state.language, Lang::Zh);
    let step = w.say(&idle(), "ok", None);
    assert_eq!(step.state.language, Lang::Zh);
}

#[test]
fn the_help_command_lists_the_commands() {
    let w = World::new();
    let step = w.say(&idle(), "帮助", None);
    let t = texts(&step)[0];
    assert!(t.contains("/human") && t.contains("/cancel") && t.contains("/transcript"));
}

#[test]
fn an_unknown_slash_command_gets_help_and_is_not_a_miss() {
    let w = World::new();
    let step = w.say(&idle(), "/frobnicate", None);
    assert!(texts(&step)[0].contains("不认识这个指令"));
    assert!(!has_miss(&step));
}

#[test]
fn cancel_with_nothing_in_progress_says_so() {
    let w = World::new();
    let step = w.say(&idle(), "取消", None);
    assert!(texts(&step)[0].contains("没有需要取消"));
}

#[test]
fn cancel_drops_a_pending_question() {
    let w = World::new();
    let step = w.say(&clarifying(), "/cancel", None);
    assert_eq!(step.state.phase, Phase::Idle);
    assert!(texts(&step)[0].contains("已取消"));
}

#[test]
fn a_stale_yes_button_is_not_sent_to_the_nlu() {
    let w = World::new();
    let step = w.say(&idle(), "/yes", low_confidence());
    assert!(texts(&step)[0].contains("过期"));
    assert!(!has_miss(&step));
}

#[test]
fn a_late_pick_button_still_answers_its_topic() {
    let w = World::new();
    let step = w.say(&idle(), "/pick withdrawal.failed", None);
    assert!(texts(&step)[0].starts_with("请检查"));
}

#[test]
fn a_message_without_text_gets_a_text_only_reply() {
    let w = World::new();
    let step = w.say(&idle(), "  ", None);
    assert!(texts(&step)[0].contains("文字"));
    assert!(!has_miss(&step));
}

#[test]
fn every_state_reached_survives_a_json_round_trip() {
    let w = World::new();
    let mut state = ConversationState::default();
    let script: [(&str, Option<Decision>); 7] = [
        ("提币没到账", answer("withdrawal.pending")),
        ("没有", None),
        ("好的", None),
        (EVM_TX, None),
        ("跳过", None),
        ("跳过", None),
        ("昨天", None),
    ];
    for (text, d) in script {
        state = w.say(&state, text, d).state;
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(
            serde_json::from_str::<ConversationState>(&json).unwrap(),
            state
        );
    }
    assert!(matches!(state.phase, Phase::Queued { .. }), "{state:?}");
}

#[test]
fn a_first_slash_command_is_answered_in_the_kbs_default_language() {
    let w = World::new();
    let state = ConversationState {
        language: Lang::En,
        ..ConversationState::default()
    };
    let step = w.say(&state, "/human", None);
    assert_eq!(step.state.language, Lang::Zh);
}

#[test]
fn odd_input_in_any_phase_never_panics_and_always_leaves_a_storable_state() {
    let mut w = World::new();
    let phases = [
        idle(),
        clarifying(),
        in_phase(Phase::AwaitingFeedback {
            intent: "gone".into(),
        }),
        in_phase(Phase::OfferingHuman {
            reason: EscalationReason::UserAsked,
            intent: Some("gone".into()),
        }),
        collecting(&[], Vec::new()),
        collecting(&["tx_id"], Vec::new()),
        queued(),
        with_staff(),
        rating(),
        in_phase(Phase::RatingComment {
            ticket: CODE.into(),
            score: 9,
        }),
        ConversationState::default(),
    ];
    let texts = [
        "",
        "/",
        "//",
        "/pick",
        "/pick gone",
        "/rate",
        "/rate 0",
        "/lang",
        "/lang fr",
        "[redacted:",
        "[redacted: private key",
        "０",
        "⭐⭐⭐⭐⭐⭐",
        "1,",
        ".5",
        "0x",
        "é\u{301}",
        "\u{200b}",
        "人",
        "/human@",
        "💥💥💥",
    ];
    let decisions = [
        None,
        answer("gone"),
        clarify("gone", "gone"),
        clarify("withdrawal.failed", "withdrawal.failed"),
        Some(decision(DecisionKind::Clarify, &[], "xx")),
        Some(decision(DecisionKind::Answer, &[], "")),
    ];
    for flood in [
        Flood::UNLIMITED,
        Flood {
            recent_messages: 3,
            max_messages: 0,
        },
    ] {
        w.flood = flood;
        for state in &phases {
            for text in texts {
                for d in &decisions {
                    let step = w.say(state, text, d.clone());
                    serde_json::to_string(&step.state).unwrap();
                }
            }
        }
    }
}

#[test]
fn a_stored_collecting_state_with_nothing_left_to_ask_opens_the_ticket() {
    let w = World::new();
    let step = w.say(
        &collecting(&[], vec![detail("uid", Some("12345678"))]),
        "hello?",
        None,
    );
    assert_eq!(opened(&step).unwrap().details.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Attachments, release, button labels
// ---------------------------------------------------------------------------------------------

fn photo() -> Attachment {
    Attachment {
        kind: AttachmentKind::Photo,
        name: Some("screenshot.png".into()),
        url: None,
    }
}

fn with_attachment(text: &str, now: DateTime<Utc>) -> Event {
    match user(text, None, now) {
        Event::UserMessage(mut m) => {
            m.attachments = vec![photo()];
            Event::UserMessage(m)
        }
        other => other,
    }
}

#[test]
fn a_photo_alone_while_the_bot_holds_the_chat_gets_the_text_only_reply() {
    let w = World::new();
    let greeted = in_phase(Phase::Idle);
    let step = w.step(&greeted, with_attachment("", w.now));
    assert_eq!(texts(&step), [msg::text_only(Lang::Zh)]);
    // Even as the very first message: the greeting, then what the bot can read.
    let step = w.step(&ConversationState::default(), with_attachment("", w.now));
    assert_eq!(step.actions.len(), 2, "{:?}", step.actions);
    assert_eq!(texts(&step)[1], msg::text_only(Lang::Zh));
}

#[test]
fn a_photo_while_queued_or_with_staff_goes_to_the_ticket_with_its_caption() {
    let w = World::new();
    for state in [queued(), with_staff()] {
        let step = w.step(&state, with_attachment("看截图", w.now));
        assert_eq!(
            step.actions,
            [Action::RelayToStaff {
                ticket: CODE.into(),
                text: "看截图".into(),
                attachments: vec![photo()],
            }],
            "{state:?}"
        );
        let step = w.step(&state, with_attachment("", w.now));
        assert!(
            matches!(&step.actions[..], [Action::RelayToStaff { text, attachments, .. }] if text.is_empty() && attachments.len() == 1),
            "{:?}",
            step.actions
        );
    }
}

#[test]
fn a_released_ticket_goes_back_to_the_queue_and_the_user_is_told() {
    let w = World::new();
    let step = w.step(
        &with_staff(),
        Event::StaffReleased {
            ticket: CODE.into(),
            staff: "alice".into(),
        },
    );
    assert!(matches!(step.state.phase, Phase::Queued { ref ticket, .. } if ticket == CODE));
    assert_eq!(texts(&step).len(), 1);
    assert!(texts(&step)[0].contains(CODE), "{:?}", texts(&step));
    // Another ticket's release, or a release of a queued ticket, changes nothing.
    for (state, ticket) in [(with_staff(), "OTHER1"), (queued(), CODE)] {
        let step = w.step(
            &state,
            Event::StaffReleased {
                ticket: ticket.into(),
                staff: "alice".into(),
            },
        );
        assert_eq!(step.state, state);
        assert!(step.actions.is_empty());
    }
}

#[test]
fn a_button_press_is_named_by_the_label_the_user_saw() {
    let kb = kb();
    let feedback = in_phase(Phase::AwaitingFeedback {
        intent: "withdrawal.failed".into(),
    });
    assert_eq!(
        press_label(&feedback, "/yes", &kb),
        Some(msg::feedback_buttons(Lang::Zh).0)
    );
    let offering = in_phase(Phase::OfferingHuman {
        reason: EscalationReason::NotUnderstood,
        intent: None,
    });
    assert_eq!(
        press_label(&offering, "/no", &kb),
        Some(msg::offer_buttons(Lang::Zh).1)
    );
    assert_eq!(
        press_label(&collecting(&["amount"], Vec::new()), "/skip", &kb),
        Some(msg::detail_buttons(Lang::Zh).0)
    );
    assert_eq!(press_label(&rating(), "/rate 4", &kb), Some("4 ⭐".into()));
    let title = kb
        .intent("withdrawal.failed")
        .map(|i| i.title_in("zh", None).to_owned());
    assert_eq!(
        press_label(&in_phase(Phase::Idle), "/pick withdrawal.failed", &kb),
        title
    );
    // Typed words are not presses, and a payload of no current button has no label.
    assert_eq!(press_label(&feedback, "是的", &kb), None);
    assert_eq!(press_label(&in_phase(Phase::Idle), "/skip", &kb), None);
}

// ---------------------------------------------------------------------------------------------
// Interruptions: a clear new question in the middle of another one
// ---------------------------------------------------------------------------------------------

/// The engine's thresholds as the service passes them (the KB's derived policy).
fn thresholds() -> kefu_nlu::engine::Policy {
    kefu_nlu::engine::Policy {
        answer_threshold: 0.9,
        clarify_threshold: 0.55,
        clarify_ratio: 0.0,
        temperature: 1.0,
    }
}

/// A decision with these candidate scores (best first) and out-of-scope probability.
fn scored(kind: DecisionKind, candidates: &[(&str, f32)], oos: f32) -> Decision {
    Decision {
        decision: kind,
        intent: candidates.first().map(|c| c.0.to_owned()),
        confidence: candidates.first().map_or(0.0, |c| c.1),
        candidates: candidates
            .iter()
            .map(|(i, s)| Candidate {
                intent: (*i).to_owned(),
                score: *s,
            })
            .collect(),
        out_of_scope: oos,
        language: "en".to_owned(),
    }
}

/// A message as the service sends it: decision, per-clause decisions and the thresholds.
fn understood(text: &str, decision: Option<Decision>, clauses: Vec<Decision>) -> Event {
    Event::UserMessage(UserMessage {
        text_redacted: text.to_owned(),
        secrets: Vec::new(),
        at: monday_morning(),
        platform_message_id: "m2".to_owned(),
        decision,
        attachments: Vec::new(),
        clauses,
        thresholds: Some(thresholds()),
    })
}

fn amount_pending() -> ConversationState {
    collecting(&["amount", "network"], vec![detail("tx_id", Some(EVM_TX))])
}

#[test]
fn a_clear_question_instead_of_a_detail_is_answered_and_the_detail_asked_again() {
    let w = World::new();
    let step = w.say(&amount_pending(), "账号被盗了", answer("withdrawal.failed"));
    let r = replies(&step);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].text.starts_with("请检查地址和网络。"), "{}", r[0].text);
    assert!(
        r[0].text.contains("继续刚才的工单信息：(2/3) 金额是多少？"),
        "{}",
        r[0].text
    );
    assert_eq!(payloads(r[0]), ["/skip", "/cancel"]);
    // Still on the same detail, and the question did not count as a wrong answer.
    assert_eq!(step.state.phase, amount_pending().phase);
    assert!(opened(&step).is_none());
}

#[test]
fn a_question_asked_in_between_does_not_use_up_the_details_second_try() {
    let w = World::new();
    let step = w.say(&amount_pending(), "提币失败", answer("withdrawal.failed"));
    let step = w.say(&step.state, "很多钱", low_confidence());
    assert!(
        texts(&step)[0].contains("没能识别金额"),
        "{:?}",
        texts(&step)
    );
    let step = w.say(&step.state, "很多很多钱", low_confidence());
    match &step.state.phase {
        Phase::Collecting { collected, .. } => {
            assert_eq!(
                collected.last(),
                Some(&detail("amount", Some("很多很多钱")))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_valid_detail_is_kept_even_when_the_nlu_would_answer_it() {
    let w = World::new();
    let state = collecting(&["network"], Vec::new());
    let step = w.say(&state, "TRC20", answer("withdrawal.failed"));
    let ticket = opened(&step).expect("the last detail opens the ticket");
    assert_eq!(ticket.details, [detail("network", Some("TRC20 (TRON)"))]);
}

#[test]
fn asking_for_a_human_in_words_while_collecting_opens_the_ticket_with_what_was_collected() {
    let w = World::new();
    let step = w.say(&amount_pending(), "我要找人工", answer("human"));
    let ticket = opened(&step).expect("ticket");
    assert_eq!(ticket.details, [detail("tx_id", Some(EVM_TX))]);
}

#[test]
fn thanks_while_collecting_is_answered_once_and_the_detail_asked_again() {
    let w = World::new();
    let step = w.say(&amount_pending(), "谢谢", answer("smalltalk.thanks"));
    let t = texts(&step);
    assert!(
        t[0].starts_with("不客气！") && t[0].contains("继续刚才的工单信息"),
        "{t:?}"
    );
    let again = w.say(&step.state, "谢谢", answer("smalltalk.thanks"));
    let t = texts(&again);
    assert!(t[0].starts_with("继续刚才的工单信息"), "{t:?}");
    assert!(matches!(again.state.phase, Phase::Collecting { .. }));
}

fn offering() -> ConversationState {
    in_phase(Phase::OfferingHuman {
        reason: EscalationReason::AnswerDidNotHelp,
        intent: Some("withdrawal.pending".into()),
    })
}

#[test]
fn a_clear_question_instead_of_yes_or_no_to_a_human_is_answered_and_the_offer_repeated() {
    let w = World::new();
    let step = w.say(&offering(), "提币失败", answer("withdrawal.failed"));
    let r = replies(&step);
    assert!(r[0].text.starts_with("请检查"), "{}", r[0].text);
    assert!(
        r[0].text
            .contains("回到刚才的问题：需要为您转接人工客服吗？"),
        "{}",
        r[0].text
    );
    assert_eq!(payloads(r[0]), ["/yes", "/no"]);
    assert_eq!(step.state.phase, offering().phase);
}

#[test]
fn an_unclear_message_instead_of_yes_or_no_is_a_new_question_as_before() {
    let w = World::new();
    let step = w.say(&offering(), "嗯那个", low_confidence());
    assert!(has_miss(&step));
    assert_eq!(step.state.phase, Phase::Idle);
}

#[test]
fn a_clear_question_about_another_topic_while_clarifying_is_answered_and_the_choice_repeated() {
    let w = World::new();
    let step = w.say(
        &clarifying(),
        "账号被盗了怎么办",
        answer("support.complaint"),
    );
    // A hand-over topic goes its usual way: answered, and a ticket opened.
    assert!(opened(&step).is_some());
    let step = w.say(&clarifying(), "你好", answer("smalltalk.greeting"));
    let r = replies(&step);
    assert!(r[0].text.starts_with("您好！"), "{}", r[0].text);
    assert!(
        r[0].text.contains("回到刚才的问题：您是想问"),
        "{}",
        r[0].text
    );
    assert_eq!(payloads(r[0]).len(), 3);
    assert_eq!(step.state.phase, clarifying().phase);
}

#[test]
fn a_clear_question_about_one_of_the_options_picks_it() {
    let w = World::new();
    let step = w.say(&clarifying(), "提币失败了", answer("withdrawal.failed"));
    assert_eq!(
        step.state.phase,
        Phase::AwaitingFeedback {
            intent: "withdrawal.failed".into()
        }
    );
}

#[test]
fn a_clear_question_instead_of_a_comment_is_answered_and_the_comment_invited_again() {
    let w = World::new();
    let comment = in_phase(Phase::RatingComment {
        ticket: CODE.into(),
        score: 4,
    });
    let step = w.say(&comment, "提币失败怎么办", answer("withdrawal.failed"));
    let r = replies(&step);
    assert!(r[0].text.contains("回到刚才的评价："), "{}", r[0].text);
    assert_eq!(payloads(r[0]), ["/skip"]);
    assert!(
        !step
            .actions
            .iter()
            .any(|a| matches!(a, Action::RecordRating { .. }))
    );
    // Something that is not a clear question is the comment.
    let step = w.say(&comment, "客服态度很好", low_confidence());
    assert!(step.actions.iter().any(|a| matches!(
        a,
        Action::RecordRating { comment: Some(c), .. } if c == "客服态度很好"
    )));
}

// ---------------------------------------------------------------------------------------------
// Queued: clear questions answered while no one holds the ticket
// ---------------------------------------------------------------------------------------------

#[test]
fn a_clear_question_while_queued_is_answered_relayed_and_the_ticket_stays_open() {
    let w = World::new();
    let step = w.say(&queued(), "提币失败", answer("withdrawal.failed"));
    assert!(matches!(
        &step.actions[0],
        Action::RelayToStaff { ticket, text, .. } if ticket == CODE && text == "提币失败"
    ));
    let t = texts(&step);
    assert_eq!(t.len(), 1);
    assert!(t[0].starts_with("请检查地址和网络。"), "{t:?}");
    assert!(t[0].contains(&format!("核验码 {CODE}）仍在排队")), "{t:?}");
    assert!(matches!(step.state.phase, Phase::Queued { .. }));
    assert!(opened(&step).is_none());
}

#[test]
fn hand_over_topics_and_small_talk_while_queued_only_reach_the_ticket() {
    let w = World::new();
    for (text, d) in [
        ("我要投诉", answer("support.complaint")),
        ("你好", answer("smalltalk.greeting")),
    ] {
        let step = w.say(&queued(), text, d);
        assert_eq!(step.actions.len(), 1, "{text}: {:?}", step.actions);
        assert!(matches!(step.actions[0], Action::RelayToStaff { .. }));
    }
}

#[test]
fn a_clear_question_while_staff_hold_the_chat_only_reaches_staff() {
    let w = World::new();
    let step = w.say(&with_staff(), "提币失败", answer("withdrawal.failed"));
    assert_eq!(step.actions.len(), 1);
    assert!(matches!(step.actions[0], Action::RelayToStaff { .. }));
    assert_eq!(step.state.phase, with_staff().phase);
}

#[test]
fn thanks_while_queued_is_answered_once_and_still_relayed() {
    let w = World::new();
    let step = w.say(&queued(), "谢谢", answer("smalltalk.thanks"));
    assert!(texts(&step)[0].starts_with("不客气！"));
    assert!(texts(&step)[0].contains("仍在排队"));
    let again = w.say(&step.state, "谢谢", answer("smalltalk.thanks"));
    assert!(texts(&again).is_empty());
    assert!(matches!(again.actions[..], [Action::RelayToStaff { .. }]));
}

// ---------------------------------------------------------------------------------------------
// "A or B?" for siblings the engine would hand over
// ---------------------------------------------------------------------------------------------

fn fees_escalated(top: f32, oos: f32) -> Decision {
    scored(
        DecisionKind::Escalate,
        &[
            ("withdrawal.pending", top),
            ("withdrawal.failed", 0.015),
            ("support.complaint", 0.01),
        ],
        oos,
    )
}

#[test]
fn a_hand_over_whose_best_intent_alone_reaches_the_clarify_threshold_asks_a_or_b() {
    let w = World::new();
    let step = w.step(
        &idle(),
        understood("fees?", Some(fees_escalated(0.89, 0.044)), vec![]),
    );
    assert_eq!(
        step.state.phase,
        Phase::Clarifying {
            first: "withdrawal.pending".into(),
            second: "withdrawal.failed".into(),
        }
    );
    assert!(!has_miss(&step));
}

#[test]
fn a_hand_over_below_the_clarify_threshold_or_out_of_scope_stays_a_miss() {
    let w = World::new();
    for d in [fees_escalated(0.5, 0.044), fees_escalated(0.6, 0.7)] {
        let step = w.step(&idle(), understood("fees?", Some(d), vec![]));
        assert!(has_miss(&step));
        assert_eq!(step.state.phase, Phase::Idle);
    }
    // Without the engine's thresholds the rule is off.
    let step = w.say(&idle(), "fees?", Some(fees_escalated(0.89, 0.044)));
    assert!(has_miss(&step));
}

// ---------------------------------------------------------------------------------------------
// Two questions in one message
// ---------------------------------------------------------------------------------------------

#[test]
fn two_clear_questions_get_the_first_answered_and_the_second_offered_as_a_button() {
    let w = World::new();
    let whole = clarify("withdrawal.failed", "withdrawal.pending");
    let clauses = vec![
        scored(DecisionKind::Answer, &[("withdrawal.pending", 0.99)], 0.0),
        scored(DecisionKind::Answer, &[("withdrawal.failed", 0.97)], 0.0),
    ];
    let step = w.step(
        &idle(),
        understood("提币没到账，另外提币失败", whole, clauses),
    );
    let r = replies(&step);
    assert_eq!(r.len(), 1);
    assert!(r[0].text.starts_with("提币通常"), "{}", r[0].text);
    assert!(r[0].text.contains("您还问到「提币失败」"), "{}", r[0].text);
    assert_eq!(payloads(r[0]), ["/yes", "/no", "/pick withdrawal.failed"]);
    assert_eq!(
        press_label(&step.state, "/pick withdrawal.failed", &w.kb).as_deref(),
        Some("提币失败")
    );
    let second = w.say(&step.state, "/pick withdrawal.failed", None);
    assert!(texts(&second)[0].starts_with("请检查"));
}

#[test]
fn one_clear_clause_leaves_the_whole_messages_decision_in_charge() {
    let w = World::new();
    let clauses = vec![
        scored(DecisionKind::Answer, &[("withdrawal.pending", 0.99)], 0.0),
        scored(DecisionKind::Escalate, &[("withdrawal.failed", 0.3)], 0.0),
    ];
    let step = w.step(
        &idle(),
        understood("提币没到账，另外嗯", answer("withdrawal.failed"), clauses),
    );
    assert_eq!(
        step.state.phase,
        Phase::AwaitingFeedback {
            intent: "withdrawal.failed".into()
        }
    );
    assert_eq!(payloads(replies(&step)[0]), ["/yes", "/no"]);
}

// ---------------------------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------------------------

#[test]
fn thanks_is_answered_once_and_not_again_right_after() {
    let w = World::new();
    let step = w.say(&idle(), "谢谢", answer("smalltalk.thanks"));
    assert_eq!(texts(&step), ["不客气！"]);
    assert!(step.state.closed);
    let again = w.say(&step.state, "拜拜", answer("smalltalk.thanks"));
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    // A question reopens the conversation: the next thanks is answered again.
    let asked = w.say(&again.state, "提币失败", answer("withdrawal.failed"));
    assert!(!asked.state.closed);
    let thanks = w.say(&asked.state, "谢谢", answer("smalltalk.thanks"));
    assert_eq!(texts(&thanks), ["不客气！"]);
}

#[test]
fn yes_it_helped_is_the_closing_and_a_thanks_after_it_gets_no_second_goodbye() {
    let w = World::new();
    let state = in_phase(Phase::AwaitingFeedback {
        intent: "withdrawal.failed".into(),
    });
    let step = w.say(&state, "好的谢谢", None);
    assert_eq!(texts(&step), [msg::glad_it_helped(Lang::Zh)]);
    let again = w.say(&step.state, "谢谢", answer("smalltalk.thanks"));
    assert!(again.actions.is_empty(), "{:?}", again.actions);
}

#[test]
fn thanks_instead_of_a_rating_closes_politely() {
    let w = World::new();
    let step = w.say(&rating(), "谢谢", answer("smalltalk.thanks"));
    assert_eq!(texts(&step), ["不客气！"]);
    assert_eq!(step.state.phase, Phase::Idle);
}

// ---------------------------------------------------------------------------------------------
// Ways out
// ---------------------------------------------------------------------------------------------

#[test]
fn cancel_and_the_human_command_work_even_over_the_flood_limit() {
    let w = flooding();
    let step = w.say(&amount_pending(), "/cancel", None);
    assert_eq!(step.state.phase, Phase::Idle);
    assert_eq!(texts(&step), [msg::collect_cancelled(Lang::Zh)]);
    let step = w.say(&idle(), "转人工", None);
    assert!(opened(&step).is_some());
}

#[test]
fn a_second_staff_member_cannot_take_or_answer_a_held_chat() {
    let w = World::new();
    let claim = w.step(
        &with_staff(),
        Event::StaffClaimed {
            ticket: CODE.into(),
            staff: "bob".into(),
        },
    );
    assert_eq!(claim.state, with_staff());
    assert!(claim.actions.is_empty());
    let reply = w.step(
        &with_staff(),
        Event::StaffReply {
            ticket: CODE.into(),
            staff: "bob".into(),
            text: "hi".into(),
        },
    );
    assert!(reply.actions.is_empty());
}

#[test]
fn every_phase_the_bot_holds_has_its_ways_out() {
    let w = World::new();
    let states = [
        idle(),
        amount_pending(),
        offering(),
        clarifying(),
        queued(),
        rating(),
        in_phase(Phase::AwaitingFeedback {
            intent: "withdrawal.failed".into(),
        }),
        in_phase(Phase::RatingComment {
            ticket: CODE.into(),
            score: 3,
        }),
        with_staff(),
        ConversationState::default(),
    ];
    for state in states {
        crate::invariants::check_ways_out(&state, &w.ctx())
            .unwrap_or_else(|e| panic!("{:?}: {e}", state.phase));
    }
}
