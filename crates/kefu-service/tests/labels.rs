//! Ticket labels and KB decisions in the store, labelling through the service, and the label post
//! that follows a resolve in a staff space, against real databases (a SQLite file; PostgreSQL
//! when `KEFU_TEST_DATABASE_URL` is set).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::{Db, config, message_from, user};
use kefu_core::delivery::Delivery;
use kefu_core::model::{ConversationRef, TicketStatus};
use kefu_core::staff::{LabelButton, label_payload};
use kefu_service::{
    Handled, Label, LabelError, LabelKind, Service, ServiceError, StaffActor, StaffOutcome,
    StaffRole, TicketLabel,
};
use kefu_store::KbDecision;
use serde_json::json;

/// A 12-word BIP-39 phrase (a published test vector).
const SEED: &str = "legal winner thank year wave sausage worth useful legal winner thank yellow";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap()
}

/// The user writes each message in turn, then skips the details the bot asks for, until a
/// ticket opens: its id.
async fn escalate(s: &Service, who: &ConversationRef, messages: &[&str]) -> i64 {
    let skips = std::iter::repeat_n(&"/skip", 6);
    for (i, text) in messages.iter().chain(skips).enumerate() {
        let handled = s
            .handle_inbound(
                &message_from(who, &format!("{}-{i}", who.user_id), text),
                Utc::now(),
            )
            .await
            .unwrap();
        if let Handled::Processed {
            ticket_opened: Some(ticket),
            ..
        } = handled
        {
            return ticket.id;
        }
    }
    panic!("no ticket opened by {messages:?}");
}

/// Escalates, claims and resolves as `staff`: the ticket's id.
async fn resolved(s: &Service, who: &ConversationRef, messages: &[&str], staff: &str) -> i64 {
    let id = escalate(s, who, messages).await;
    assert_eq!(
        s.claim(id, staff, Utc::now()).await.unwrap(),
        StaffOutcome::Done
    );
    assert_eq!(
        s.resolve(id, staff, Utc::now()).await.unwrap(),
        StaffOutcome::Done
    );
    id
}

#[tokio::test]
async fn the_store_keeps_one_label_per_ticket_and_every_kb_decision_oldest_first() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let first = escalate(&s, &user(1), &["提币一直没到账怎么办", "转人工"]).await;
        let second = escalate(&s, &user(2), &["转人工"]).await;
        let store = s.store();
        assert!(store.ticket_labels().await.unwrap().is_empty());
        assert_eq!(store.ticket_label(first).await.unwrap(), None);

        let label = |ticket_id, kind, name: Option<&str>, minutes| TicketLabel {
            ticket_id,
            kind,
            name: name.map(str::to_owned),
            text: "提币一直没到账怎么办".into(),
            language: Some("zh".into()),
            labelled_by: "bob".into(),
            labelled_at: t0() + TimeDelta::minutes(minutes),
        };
        store
            .record_label(&label(
                first,
                LabelKind::Intent,
                Some("withdrawal.failed"),
                1,
            ))
            .await
            .unwrap();
        store
            .record_label(&label(second, LabelKind::NotAQuestion, None, 2))
            .await
            .unwrap();
        // A second label of the first ticket replaces its first, and is now the latest.
        let relabelled = TicketLabel {
            labelled_by: "lena".into(),
            language: None,
            ..label(first, LabelKind::NewTopic, Some("staking rewards"), 3)
        };
        store.record_label(&relabelled).await.unwrap();
        let all = store.ticket_labels().await.unwrap();
        assert_eq!(
            all,
            [
                label(second, LabelKind::NotAQuestion, None, 2),
                relabelled.clone()
            ],
            "one per ticket, oldest first"
        );
        assert_eq!(store.ticket_label(first).await.unwrap(), Some(relabelled));
        let shown = serde_json::to_value(&all[0]).unwrap();
        assert_eq!(shown["kind"], "not_a_question", "{shown}");

        assert!(store.kb_decisions().await.unwrap().is_empty());
        let decision = |suggestion: &str, accepted, minutes| KbDecision {
            suggestion: suggestion.into(),
            accepted,
            by: "lena".into(),
            at: t0() + TimeDelta::minutes(minutes),
            summary: format!("add 2 examples to {suggestion}"),
            detail: json!({"intent": suggestion, "examples": ["提币一直没到账怎么办", "提币卡住了"], "file": "config/kb/30-withdrawal.toml"}),
        };
        let later = decision("withdrawal.failed", true, 5);
        let earlier = decision("staking", false, 4);
        let same_time = decision("deposit.how", true, 5);
        for d in [&later, &earlier, &same_time] {
            store.record_kb_decision(d).await.unwrap();
        }
        assert_eq!(
            store.kb_decisions().await.unwrap(),
            [earlier, later, same_time],
            "oldest first, then in the order recorded"
        );
    }
}

#[tokio::test]
async fn the_tagged_transcript_says_which_lines_belong_to_the_ticket() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let id = escalate(&s, &user(1), &["我的账户被冻结了", "转人工"]).await;
        let lines = s.store().tagged_transcript(&user(1)).await.unwrap();
        let plain = s.store().transcript(&user(1)).await.unwrap();
        assert_eq!(
            lines.iter().map(|l| l.line.clone()).collect::<Vec<_>>(),
            plain,
            "the same lines as the transcript"
        );
        assert!(lines.windows(2).all(|w| w[0].id < w[1].id));
        let question = lines
            .iter()
            .find(|l| l.line.text == "我的账户被冻结了")
            .unwrap();
        assert_eq!(question.ticket_id, None, "said before the ticket opened");
        let request = lines.iter().find(|l| l.line.text == "转人工").unwrap();
        assert_eq!(request.ticket_id, Some(id), "the turn that opened it");
    }
}

#[tokio::test]
async fn a_label_records_the_users_question_and_a_pasted_seed_phrase_never_reaches_it() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let id = resolved(
            &s,
            &user(1),
            &[&format!("钱包被盗了 我的助记词是 {SEED} 怎么办"), "转人工"],
            "bob",
        )
        .await;
        let label = s
            .label_ticket(
                id,
                "bob",
                Label::Intent("security.account_hacked".into()),
                t0(),
            )
            .await
            .unwrap()
            .expect("the ticket exists");
        assert_eq!(label.kind, LabelKind::Intent);
        assert_eq!(label.name.as_deref(), Some("security.account_hacked"));
        assert!(label.text.contains("钱包被盗了"), "{label:?}");
        for word in SEED.split_whitespace() {
            assert!(!label.text.contains(word), "{word:?} in {:?}", label.text);
        }
        assert_eq!(label.language.as_deref(), Some("zh"));
        assert_eq!(
            (label.labelled_by.as_str(), label.labelled_at),
            ("bob", t0())
        );
        assert_eq!(s.store().ticket_labels().await.unwrap(), [label]);
    }
}

#[tokio::test]
async fn an_unknown_intent_is_refused_naming_the_closest_and_nothing_is_stored() {
    for db in Db::each().await {
        let s = db.service("a").await;
        // The details' answers are not the question.
        let id = resolved(
            &s,
            &user(1),
            &[
                "提币一直没到账",
                "转人工",
                "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
                "100 USDT",
                "TRC20",
                "今天下午3点",
            ],
            "bob",
        )
        .await;
        let refused = s
            .label_ticket(id, "bob", Label::Intent("withdrawl.pending".into()), t0())
            .await;
        match refused {
            Err(ServiceError::Label(LabelError::UnknownIntent { id, closest })) => {
                assert_eq!(id, "withdrawl.pending");
                assert_eq!(
                    closest.first().map(String::as_str),
                    Some("withdrawal.pending")
                );
            }
            other => panic!("refused: {other:?}"),
        }
        let e = s
            .label_ticket(id, "bob", Label::Intent("withdrawl.pending".into()), t0())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("withdrawal.pending"), "{e}");
        for bad in ["", &"x".repeat(41)] {
            assert!(matches!(
                s.label_ticket(id, "bob", Label::NewTopic(bad.to_owned()), t0())
                    .await,
                Err(ServiceError::Label(LabelError::BadTopicName { .. }))
            ));
        }
        assert!(s.store().ticket_labels().await.unwrap().is_empty());
        // No such ticket: nothing to label.
        assert_eq!(
            s.label_ticket(999_999, "bob", Label::NotAQuestion, t0())
                .await
                .unwrap(),
            None
        );
        let topic = s
            .label_ticket(
                id,
                "bob",
                Label::NewTopic("  staking rewards ".into()),
                t0(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(topic.name.as_deref(), Some("staking rewards"));
        assert_eq!(topic.text, "提币一直没到账");
    }
}

#[tokio::test]
async fn a_service_without_the_nlu_takes_any_well_formed_intent_id() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let id = resolved(&s, &user(1), &["提币一直没到账", "转人工"], "bob").await;
        let desk = Service::without_nlu(db.store().await, config());
        let label = desk
            .label_ticket(id, "bob", Label::Intent("not.in.the.kb".into()), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(label.name.as_deref(), Some("not.in.the.kb"));
        assert!(matches!(
            desk.label_ticket(id, "bob", Label::Intent("Not An Id".into()), t0())
                .await,
            Err(ServiceError::Label(LabelError::BadIntentId { .. }))
        ));
    }
}

#[tokio::test]
async fn a_resolve_from_a_staff_space_is_followed_there_by_the_label_post_before_it_closes() {
    for db in Db::each().await {
        let s = db
            .service_with("a", |c| {
                c.staff_spaces = vec!["telegram".into(), "discord".into()];
                c.label_spaces = vec!["telegram".into()];
            })
            .await;
        s.add_staff("omar", StaffRole::Agent, "long enough password", Utc::now())
            .await
            .unwrap();
        assert!(
            s.link_staff("omar", "telegram", Some("4242"))
                .await
                .unwrap()
        );
        let id = escalate(&s, &user(1), &["提币一直没到账", "转人工"]).await;
        let presser = StaffActor {
            name: "Omar Telegram".into(),
            space: Some("telegram".into()),
            reply_to: None,
            post_refusal: false,
            lang: None,
            platform_user_id: Some("4242".into()),
        };
        for action in [
            kefu_service::StaffAction::Claim,
            kefu_service::StaffAction::Resolve,
        ] {
            let done = s
                .staff_action(&presser, id, action, Utc::now())
                .await
                .unwrap();
            assert_eq!(done, StaffOutcome::Done);
        }
        let rows = s
            .store()
            .pending_outbox(Some("telegram"), 100)
            .await
            .unwrap();
        let kinds: Vec<&str> = rows.iter().map(|r| r.delivery.kind()).collect();
        let post = rows
            .iter()
            .position(|r| matches!(&r.delivery, Delivery::StaffPost { post, .. } if post.buttons.iter().any(|b| b.payload.starts_with("staff:label:"))))
            .unwrap_or_else(|| panic!("a label post: {kinds:?}"));
        let close = kinds.iter().position(|k| *k == "staff_close").unwrap();
        assert!(post < close, "posted before the topic closes: {kinds:?}");
        let Delivery::StaffPost { post, .. } = &rows[post].delivery else {
            unreachable!()
        };
        assert!(post.text.contains("提币一直没到账"), "{}", post.text);
        let payloads: Vec<&str> = post.buttons.iter().map(|b| b.payload.as_str()).collect();
        assert!(
            payloads.contains(
                &label_payload(id, &LabelButton::Intent("withdrawal.pending".into())).as_str()
            ) || payloads.contains(
                &label_payload(id, &LabelButton::Intent("withdrawal.failed".into())).as_str()
            ),
            "the question's likely intents: {payloads:?}"
        );
        assert!(payloads.len() <= 5, "{payloads:?}");
        assert_eq!(
            &payloads[payloads.len() - 2..],
            [
                label_payload(id, &LabelButton::NewTopic),
                label_payload(id, &LabelButton::NotAQuestion)
            ]
        );
        assert!(payloads.iter().all(|p| p.len() <= 64));
        // Not in the space that does not handle label buttons.
        let discord = s
            .store()
            .pending_outbox(Some("discord"), 100)
            .await
            .unwrap();
        assert!(!discord.iter().any(|r| matches!(&r.delivery, Delivery::StaffPost { post, .. } if !post.buttons.is_empty() && post.buttons.iter().any(|b| b.payload.starts_with("staff:label:")))));

        // Pressing "new topic" labels it under the linked account's name, named after the
        // question; a button again replaces it.
        let label = s
            .label_from_button(&presser, id, LabelButton::NewTopic, Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(label.kind, LabelKind::NewTopic);
        assert_eq!(label.name.as_deref(), Some("提币一直没到账"));
        assert_eq!(label.labelled_by, "omar");
        let label = s
            .label_from_button(
                &presser,
                id,
                LabelButton::Intent("withdrawal.pending".into()),
                Utc::now(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (label.kind, label.name.as_deref()),
            (LabelKind::Intent, Some("withdrawal.pending"))
        );
        assert_eq!(s.store().ticket_labels().await.unwrap().len(), 1);
        let t = s.store().ticket(id).await.unwrap().unwrap();
        assert_eq!(t.status, TicketStatus::Resolved);

        // A resolve from the desk or the console posts no label buttons.
        let other = escalate(&s, &user(2), &["充值没到账", "转人工"]).await;
        s.claim(other, "lena", Utc::now()).await.unwrap();
        s.resolve(other, "lena", Utc::now()).await.unwrap();
        let rows = s
            .store()
            .pending_outbox(Some("telegram"), 100)
            .await
            .unwrap();
        assert!(!rows.iter().any(|r| r.delivery.ticket_id() == Some(other)
            && matches!(&r.delivery, Delivery::StaffPost { post, .. } if !post.buttons.is_empty() && post.buttons[0].payload.starts_with("staff:label:"))));
    }
}
