//! The service against real databases (a SQLite file; PostgreSQL when `KEFU_TEST_DATABASE_URL`
//! is set) and the engine trained on the default KB: what a platform adapter relies on, and the
//! faults it must survive.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::{Db, alice, message, message_from, user};
use kefu_core::delivery::Delivery;
use kefu_core::model::{ConversationRef, Sender, TicketStatus};
use kefu_service::{Handled, Service, StaffOutcome};
use kefu_store::OutboxMessage;

/// What waits in the outbox for a conversation, oldest first.
async fn pending(s: &Service, c: &ConversationRef) -> Vec<OutboxMessage> {
    pending_at(s, c, Utc::now()).await
}

/// What is due for a conversation by `at`.
async fn pending_at(s: &Service, c: &ConversationRef, at: DateTime<Utc>) -> Vec<OutboxMessage> {
    s.store()
        .pending_outbox_for_conversation(c, at)
        .await
        .unwrap()
}

/// The texts waiting for a user.
async fn texts(s: &Service, c: &ConversationRef) -> Vec<String> {
    texts_at(s, c, Utc::now()).await
}

/// The texts due for a user by `at`.
async fn texts_at(s: &Service, c: &ConversationRef, at: DateTime<Utc>) -> Vec<String> {
    pending_at(s, c, at)
        .await
        .iter()
        .filter_map(|m| m.user_message().map(|o| o.text.clone()))
        .collect()
}

async fn deliver_all(s: &Service, c: &ConversationRef) {
    for m in pending(s, c).await {
        s.store()
            .mark_delivered(m.id, None, Utc::now())
            .await
            .unwrap();
    }
}

async fn user_lines(s: &Service, c: &ConversationRef) -> Vec<String> {
    s.store()
        .transcript(c)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.sender == Sender::User)
        .map(|l| l.text)
        .collect()
}

async fn open_ticket(s: &Service, id: &str) -> i64 {
    let opened = s
        .handle_inbound(&message(id, "转人工"), Utc::now())
        .await
        .unwrap();
    let Handled::Processed {
        ticket_opened: Some(ticket),
        ..
    } = opened
    else {
        panic!("a ticket opens: {opened:?}")
    };
    ticket.id
}

#[tokio::test]
async fn the_same_platform_message_delivered_twice_gets_one_reply() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let first = s
            .handle_inbound(&message("m1", "提币一直没到账"), Utc::now())
            .await
            .unwrap();
        assert!(matches!(first, Handled::Processed { .. }));
        let replies = texts(&s, &alice()).await.len();
        assert!(replies >= 1);
        let again = s
            .handle_inbound(&message("m1", "提币一直没到账"), Utc::now())
            .await
            .unwrap();
        assert_eq!(again, Handled::Duplicate);
        assert_eq!(texts(&s, &alice()).await.len(), replies, "no second reply");
        assert_eq!(user_lines(&s, &alice()).await.len(), 1);
    }
}

#[tokio::test]
async fn a_message_stored_before_a_crash_is_handled_once_its_claim_expires() {
    for db in Db::each().await {
        let now = Utc::now();
        // A process stored the message, claimed until a second from now, then died.
        stored_by_a_dead_handler(&db, ("m7", "怎么联系客服"), TimeDelta::seconds(1), now).await;
        let s = db.service("b").await;
        assert_eq!(
            s.recover(now).await.unwrap(),
            0,
            "a live claim is never taken over"
        );
        assert!(pending(&s, &alice()).await.is_empty());
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(
            s.recover(Utc::now()).await.unwrap(),
            1,
            "taken over once expired"
        );
        assert!(
            !texts(&s, &alice()).await.is_empty(),
            "the reply is waiting in the outbox"
        );
        assert_eq!(s.recover(Utc::now()).await.unwrap(), 0, "handled once");
        assert_eq!(user_lines(&s, &alice()).await, ["怎么联系客服"]);
    }
}

/// A process stored the user's message `(id, text)` at `now`, claimed it for `claim`, then died.
async fn stored_by_a_dead_handler(
    db: &Db,
    (id, text): (&str, &str),
    claim: TimeDelta,
    now: DateTime<Utc>,
) {
    let store = db.store().await;
    store
        .record_inbound(
            &message(id, text),
            &kefu_core::model::Redacted::of(text),
            "dead",
            now + claim,
            now,
        )
        .await
        .unwrap();
    store.close().await;
}

/// How long the dead handler below claimed the first question. The tests pass a clock this far
/// ahead instead of sleeping, so a slow machine never sees the claim expire early.
const DEAD_CLAIM: TimeDelta = TimeDelta::seconds(60);

/// The user's first question ("充值没到账"), stored by a process that claimed it for
/// [`DEAD_CLAIM`] and died.
async fn first_question_of_a_dead_handler(db: &Db) {
    let first = ("m1", "充值没到账");
    stored_by_a_dead_handler(db, first, DEAD_CLAIM, Utc::now()).await;
}

/// A moment after the dead handler's claim expired.
fn after_the_dead_claim() -> DateTime<Utc> {
    Utc::now() + DEAD_CLAIM + TimeDelta::seconds(1)
}

/// A new process "b" after the dead handler: the user's second question ("怎么修改密码") reaches it
/// first and waits for the first one.
async fn second_question_waiting(db: &Db) -> Service {
    first_question_of_a_dead_handler(db).await;
    let s = db.service("b").await;
    let second = s
        .handle_inbound(&message("m2", "怎么修改密码"), Utc::now())
        .await
        .unwrap();
    assert_eq!(second, Handled::Deferred);
    s
}

/// The answer to the first question (a deposit) comes before the answer to the second (a
/// password), among the replies due by `at`.
async fn first_answered_first(s: &Service, at: DateTime<Utc>) {
    let answers = texts_at(s, &alice(), at).await;
    let find = |needle: &str| answers.iter().position(|t| t.contains(needle));
    let (deposit, password) = (find("充币需要区块链确认"), find("重置密码步骤"));
    assert!(
        deposit.is_some() && password.is_some() && deposit < password,
        "the first question answered first: {answers:#?}"
    );
}

#[tokio::test]
async fn a_message_after_one_a_dead_handler_held_waits_its_turn() {
    for db in Db::each().await {
        // The second question reaches the new process first: it waits, unanswered.
        let s = second_question_waiting(&db).await;
        assert!(
            pending(&s, &alice()).await.is_empty(),
            "nothing answered yet"
        );
        assert_eq!(
            s.recover(Utc::now()).await.unwrap(),
            0,
            "the second waits while the first is still claimed"
        );
        let later = after_the_dead_claim();
        assert_eq!(s.recover(later).await.unwrap(), 2, "both, in one pass");
        assert_eq!(
            user_lines(&s, &alice()).await,
            ["充值没到账", "怎么修改密码"],
            "in the order they came"
        );
        first_answered_first(&s, later).await;
        assert_eq!(s.recover(later).await.unwrap(), 0, "handled once");
    }
}

/// Messages that wait behind an unfinished one are taken, in order, by whoever handles the
/// conversation next once their turn comes, not only by the recovery loop: here the user's third
/// message, after the dead handler's claim on the first expired.
#[tokio::test]
async fn the_next_message_of_a_conversation_takes_the_ones_waiting_before_it_in_order() {
    for db in Db::each().await {
        let s = second_question_waiting(&db).await;
        let later = after_the_dead_claim();
        // No recovery runs. The third message waits too, then takes all three in order.
        let third = s
            .handle_inbound(&message("m3", "2FA丢了怎么办"), later)
            .await
            .unwrap();
        assert_eq!(third, Handled::Deferred, "it waited for the two before it");
        assert_eq!(
            user_lines(&s, &alice()).await,
            ["充值没到账", "怎么修改密码", "2FA丢了怎么办"]
        );
        first_answered_first(&s, later).await;
        assert_eq!(s.recover(later).await.unwrap(), 0, "nothing left over");
    }
}

#[tokio::test]
async fn undelivered_replies_survive_a_restart_and_are_delivered_once() {
    let db = Db::sqlite();
    let before = {
        let s = db.service("a").await;
        s.handle_inbound(&message("m1", "2FA丢了怎么办"), Utc::now())
            .await
            .unwrap();
        pending(&s, &alice()).await
    };
    assert!(!before.is_empty());
    let s = db.service("a").await;
    let after = pending(&s, &alice()).await;
    assert_eq!(
        after.iter().map(|m| m.id).collect::<Vec<_>>(),
        before.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    deliver_all(&s, &alice()).await;
    assert!(pending(&s, &alice()).await.is_empty());
}

#[tokio::test]
async fn while_staff_hold_the_chat_the_bot_does_not_answer() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let ticket = open_ticket(&s, "m1").await;
        assert_eq!(
            s.claim(ticket, "bob", Utc::now()).await.unwrap(),
            StaffOutcome::Done
        );
        assert_eq!(
            s.claim(ticket, "carol", Utc::now()).await.unwrap(),
            StaffOutcome::HeldBy("bob".into())
        );
        deliver_all(&s, &alice()).await;
        s.handle_inbound(&message("m2", "提币失败了怎么办"), Utc::now())
            .await
            .unwrap();
        assert!(texts(&s, &alice()).await.is_empty(), "the bot stays silent");
        let transcript = s.store().ticket_transcript(ticket).await.unwrap();
        assert!(
            transcript
                .iter()
                .any(|l| l.sender == Sender::User && l.text == "提币失败了怎么办"),
            "staff see it"
        );
        s.reply(ticket, "bob", "我来看看", Utc::now())
            .await
            .unwrap();
        assert_eq!(texts(&s, &alice()).await, ["我来看看"]);
    }
}

#[tokio::test]
async fn the_message_that_opens_a_ticket_belongs_to_the_ticket() {
    let db = Db::sqlite();
    let s = db.service("a").await;
    // Context without an intent, so that the human command opens the ticket at once.
    s.handle_inbound(&message("m1", "zzqx vvbn"), Utc::now())
        .await
        .unwrap();
    let ticket = open_ticket(&s, "m2").await;
    let lines = s.store().ticket_transcript(ticket).await.unwrap();
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
    assert_eq!(user_lines(&s, &alice()).await, ["zzqx vvbn", "转人工"]);
}

#[tokio::test]
async fn a_conversation_whose_ticket_was_closed_elsewhere_is_repaired_and_answers_again() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let ticket = open_ticket(&s, "m1").await;
        assert_eq!(
            s.claim(ticket, "bob", Utc::now()).await.unwrap(),
            StaffOutcome::Done
        );
        deliver_all(&s, &alice()).await;
        // The ticket is resolved without the conversation's step (a crash between the two
        // commits of an older version, or a hand edit): the conversation still says "with staff".
        s.store().resolve(ticket, "bob", Utc::now()).await.unwrap();
        s.handle_inbound(&message("m2", "提币一直没到账"), Utc::now())
            .await
            .unwrap();
        assert!(
            !texts(&s, &alice()).await.is_empty(),
            "the bot answers again instead of staying silent for good"
        );
        deliver_all(&s, &alice()).await;
        s.handle_inbound(&message("m3", "转人工"), Utc::now())
            .await
            .unwrap();
        assert!(
            !texts(&s, &alice()).await.is_empty(),
            "the human command is answered"
        );
        let saved = s.store().conversation(&alice()).await.unwrap().unwrap();
        let state: kefu_core::ConversationState =
            serde_json::from_value(saved.state.expect("a saved state")).unwrap();
        assert!(
            !matches!(state.phase, kefu_core::Phase::WithStaff { .. }),
            "no longer with staff: {:?}",
            state.phase
        );
    }
}

#[tokio::test]
async fn cancelling_a_queued_ticket_closes_its_staff_space() {
    for db in Db::each().await {
        let s = db
            .service_with("a", |c| c.staff_spaces = vec!["telegram".into()])
            .await;
        let ticket = open_ticket(&s, "m1").await;
        let cancel = s
            .handle_inbound(&message("m2", "/cancel"), Utc::now())
            .await
            .unwrap();
        assert!(matches!(cancel, Handled::Processed { .. }), "{cancel:?}");
        let t = s.store().ticket(ticket).await.unwrap().unwrap();
        assert_eq!(t.status, TicketStatus::Cancelled);
        let rows = s
            .store()
            .pending_outbox(Some("telegram"), 100)
            .await
            .unwrap();
        assert!(
            rows.iter()
                .any(|r| matches!(r.delivery, Delivery::CloseStaffSpace { ticket_id } if ticket_id == ticket)),
            "the staff space is closed: {:?}",
            rows.iter().map(|r| r.delivery.kind()).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn a_ticket_reaches_every_staff_space_with_its_summary_and_later_lines_in_order() {
    for db in Db::each().await {
        let s = db
            .service_with("a", |c| {
                c.staff_spaces = vec!["telegram".into(), "discord".into()];
            })
            .await;
        let ticket = open_ticket(&s, "m1").await;
        s.handle_inbound(&message("m2", "txid 0xabc123 金额 50 USDT"), Utc::now())
            .await
            .unwrap();
        s.handle_inbound(&message("m3", "还在吗"), Utc::now())
            .await
            .unwrap();
        for platform in ["telegram", "discord"] {
            let rows: Vec<_> = s
                .store()
                .pending_outbox(Some(platform), 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.delivery.ticket_id() == Some(ticket))
                .collect();
            let kinds: Vec<&str> = rows.iter().map(|r| r.delivery.kind()).collect();
            assert_eq!(kinds.first(), Some(&"staff_open"), "{platform}: {kinds:?}");
            let posts: Vec<String> = rows
                .iter()
                .filter_map(|r| match &r.delivery {
                    Delivery::StaffPost { post, .. } => Some(post.text.clone()),
                    _ => None,
                })
                .collect();
            let first = posts
                .iter()
                .position(|p| p.contains("0xabc123"))
                .expect("relayed");
            let second = posts
                .iter()
                .position(|p| p.contains("还在吗"))
                .expect("relayed");
            assert!(first < second, "in order: {posts:?}");
            assert!(
                rows.iter()
                    .all(|r| r.destination == format!("staff:{ticket}")),
                "one destination per ticket and platform"
            );
        }
    }
}

#[tokio::test]
async fn a_nul_byte_or_control_characters_never_stop_a_message() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let handled = s
            .handle_inbound(&message("m1", "提币\0没到账\u{1b}[2J\u{7}"), Utc::now())
            .await
            .unwrap();
        assert!(matches!(handled, Handled::Processed { .. }), "{handled:?}");
        let lines = user_lines(&s, &alice()).await;
        assert_eq!(lines.len(), 1);
        assert!(
            !lines[0]
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{:?}",
            lines[0]
        );
        assert!(!texts(&s, &alice()).await.is_empty(), "answered");
    }
}

#[tokio::test]
async fn a_huge_message_is_cut_stored_short_and_the_user_told() {
    let db = Db::sqlite();
    let s = db.service("a").await;
    let huge = "提币没到账 ".repeat(200_000);
    assert!(huge.len() > 2_000_000);
    let handled = s
        .handle_inbound(&message("m1", &huge), Utc::now())
        .await
        .unwrap();
    assert!(matches!(handled, Handled::Processed { .. }), "{handled:?}");
    let lines = user_lines(&s, &alice()).await;
    assert!(
        lines[0].len() <= s.config().max_message_bytes,
        "stored {} bytes",
        lines[0].len()
    );
    let said = texts(&s, &alice()).await.join("\n");
    assert!(
        said.contains(&kefu_core::messages::message_cut(kefu_core::Lang::Zh)),
        "the user is told the message was cut: {said}"
    );
}

#[tokio::test]
async fn flood_control_is_counted_in_the_database_so_every_instance_shares_it() {
    let db = Db::sqlite();
    let edit = |c: &mut kefu_service::ServiceConfig| c.flood.max_messages = 3;
    let a = db.service_with("a", edit).await;
    let b = db.service_with("b", edit).await;
    let bob = user(7);
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        s.handle_inbound(&message_from(&bob, &format!("f{i}"), "你好"), Utc::now())
            .await
            .unwrap();
    }
    let replies = texts(&a, &bob).await;
    assert!(
        replies.len() < 6,
        "over the limit across two instances, not every message is answered: {replies:?}"
    );
}

#[tokio::test]
async fn a_seed_phrase_split_over_two_messages_is_redacted_in_both() {
    const LEGAL_12: &str =
        "legal winner thank year wave sausage worth useful legal winner thank yellow";
    let words: Vec<&str> = LEGAL_12.split(' ').collect();
    let first = format!("my seed phrase is {}", words[..6].join(" "));
    let second = words[6..].join(" ");
    for db in Db::each().await {
        let s = db.service("a").await;
        s.handle_inbound(&message("m1", &first), Utc::now())
            .await
            .unwrap();
        let handled = s
            .handle_inbound(&message("m2", &second), Utc::now())
            .await
            .unwrap();
        assert!(
            matches!(
                handled,
                Handled::Processed {
                    secret_redacted: true,
                    ..
                }
            ),
            "the second part completes the phrase: {handled:?}"
        );
        let lines = s.store().transcript(&alice()).await.unwrap();
        let all: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
        for w in ["sausage", "worth useful", "wave"] {
            assert!(!all.contains(w), "{w:?} left in the transcript: {all}");
        }
        assert!(all.contains("my seed phrase is"), "the rest is kept: {all}");
        let said = texts(&s, &alice()).await.join("\n");
        assert!(!said.contains("sausage"), "never echoed: {said}");
        // Nothing of it is left for a restarted handler either.
        let stored = s
            .store()
            .claim_stale_inbound("x", Utc::now(), 100, 100, Utc::now() + TimeDelta::hours(1))
            .await
            .unwrap();
        assert!(stored.is_empty(), "both handled: {stored:?}");
        let misses = s.store().misses(50).await.unwrap();
        assert!(
            !format!("{misses:?}").contains("sausage"),
            "misses keep redacted text only: {misses:?}"
        );
    }
}
