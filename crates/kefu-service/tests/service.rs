//! The service against a real SQLite file and the engine trained on the default KB: the delivery
//! guarantees a platform adapter relies on.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use kefu_core::SupportHours;
use kefu_core::model::{ConversationRef, Inbound, Sender};
use kefu_nlu::engine::Engine;
use kefu_nlu::kb::KnowledgeBase;
use kefu_service::{FloodLimit, Handled, Service, StaffOutcome};
use kefu_store::Store;

fn kb() -> KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| {
        kefu_nlu::kb::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb"))
            .expect("default KB")
    })
    .clone()
}

async fn service(db: &Path) -> Service {
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("store");
    let flood = FloodLimit {
        max_messages: 100,
        window: Duration::from_secs(10),
    };
    Service::new(Engine::train(kb()), store, SupportHours::always(), flood)
}

fn alice() -> ConversationRef {
    ConversationRef {
        platform: "telegram".into(),
        chat_id: "42".into(),
        user_id: "42".into(),
    }
}

fn message(id: &str, text: &str) -> Inbound {
    Inbound {
        conversation: alice(),
        user_name: "Alice".into(),
        platform_message_id: id.into(),
        text: text.into(),
        at: Utc::now(),
        attachments: Vec::new(),
        pressed: false,
    }
}

#[tokio::test]
async fn the_same_platform_message_delivered_twice_gets_one_reply() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(&dir.path().join("k.db")).await;
    let first = s
        .handle_inbound(&message("m1", "提币一直没到账"), Utc::now())
        .await
        .unwrap();
    assert!(matches!(first, Handled::Processed { .. }));
    let replies = s.pending_for(&alice(), Utc::now()).await.unwrap().len();
    assert!(replies >= 1);
    let again = s
        .handle_inbound(&message("m1", "提币一直没到账"), Utc::now())
        .await
        .unwrap();
    assert_eq!(again, Handled::Duplicate);
    assert_eq!(
        s.pending_for(&alice(), Utc::now()).await.unwrap().len(),
        replies,
        "no second reply"
    );
    assert_eq!(
        s.store()
            .transcript(&alice())
            .await
            .unwrap()
            .iter()
            .filter(|l| l.sender == Sender::User)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_message_stored_before_a_crash_is_handled_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    {
        // The process stored the message, then died before handling it.
        let store = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        store
            .record_inbound(&message("m7", "怎么联系客服"), "怎么联系客服", Utc::now())
            .await
            .unwrap();
        store.close().await;
    }
    let s = service(&db).await;
    assert!(
        s.pending_for(&alice(), Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.recover(Utc::now()).await.unwrap(), 1);
    assert!(
        !s.pending_for(&alice(), Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "the reply is waiting in the outbox"
    );
    assert_eq!(s.recover(Utc::now()).await.unwrap(), 0, "handled once");
}

#[tokio::test]
async fn undelivered_replies_survive_a_restart_and_are_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let pending = {
        let s = service(&db).await;
        s.handle_inbound(&message("m1", "2FA丢了怎么办"), Utc::now())
            .await
            .unwrap();
        s.pending_for(&alice(), Utc::now()).await.unwrap()
    };
    assert!(!pending.is_empty());
    let s = service(&db).await;
    let after = s.pending_for(&alice(), Utc::now()).await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.id).collect::<Vec<_>>(),
        pending.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    for m in &after {
        s.delivered(m.id, Utc::now()).await.unwrap();
    }
    assert!(
        s.pending_for(&alice(), Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn while_staff_hold_the_chat_the_bot_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(&dir.path().join("k.db")).await;
    let opened = s
        .handle_inbound(&message("m1", "转人工"), Utc::now())
        .await
        .unwrap();
    let Handled::Processed {
        ticket_opened: Some(ticket),
        ..
    } = opened
    else {
        panic!("a ticket opens: {opened:?}")
    };
    assert_eq!(
        s.claim(ticket.id, "bob", Utc::now()).await.unwrap(),
        StaffOutcome::Done
    );
    assert_eq!(
        s.claim(ticket.id, "carol", Utc::now()).await.unwrap(),
        StaffOutcome::HeldBy("bob".into())
    );
    for m in s.pending_for(&alice(), Utc::now()).await.unwrap() {
        s.delivered(m.id, Utc::now()).await.unwrap();
    }
    s.handle_inbound(&message("m2", "提币失败了怎么办"), Utc::now())
        .await
        .unwrap();
    assert!(
        s.pending_for(&alice(), Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "the bot stays silent"
    );
    let transcript = s.store().ticket_transcript(ticket.id).await.unwrap();
    assert!(
        transcript
            .iter()
            .any(|l| l.sender == Sender::User && l.text == "提币失败了怎么办"),
        "staff see it"
    );
    s.reply(ticket.id, "bob", "我来看看", Utc::now())
        .await
        .unwrap();
    let out = s.pending_for(&alice(), Utc::now()).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message.text, "我来看看");
}

#[tokio::test]
async fn the_message_that_opens_a_ticket_belongs_to_the_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(&dir.path().join("k.db")).await;
    // Context without an intent, so that the human command opens the ticket at once.
    s.handle_inbound(&message("m1", "zzqx vvbn"), Utc::now())
        .await
        .unwrap();
    let opened = s
        .handle_inbound(&message("m2", "转人工"), Utc::now())
        .await
        .unwrap();
    let Handled::Processed {
        ticket_opened: Some(ticket),
        ..
    } = opened
    else {
        panic!("a ticket opens: {opened:?}")
    };
    let lines = s.store().ticket_transcript(ticket.id).await.unwrap();
    assert_eq!(
        lines.first().map(|l| (&l.sender, l.text.as_str())),
        Some((&Sender::User, "转人工")),
        "the ticket's transcript starts with the message that opened it: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.sender == Sender::Bot),
        "with the bot's answer in the same turn: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.text == "zzqx vvbn"),
        "earlier turns stay the conversation's context, not the ticket's: {lines:?}"
    );
    let whole = s.store().transcript(&alice()).await.unwrap();
    let users: Vec<&str> = whole
        .iter()
        .filter(|l| l.sender == Sender::User)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(users, ["zzqx vvbn", "转人工"], "the whole conversation");
}
