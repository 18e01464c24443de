//! The outbox after rows are written: per-destination leases (one worker, one row at a time, in
//! the order written), concurrent workers on several instances, leases of dead workers, retries,
//! rows given up for good, and every kind of delivery read back as it was written.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kefu_core::delivery::{Delivery, Forward, StaffFile, StaffPost};
use kefu_core::model::{Button, ConversationRef, Outgoing, Priority};
use kefu_store::{FailedDelivery, OutboxMessage, Store};
use tokio::sync::Barrier;

use super::{TestDb, open, outgoing_to, t};

/// `n` instances on the database, each with its own pool.
async fn instances(db: &TestDb, n: usize) -> Vec<Store> {
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        stores.push(db.connect().await);
    }
    stores
}

fn ids(messages: &[OutboxMessage]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

/// What `owner` leases on Telegram at `now`, for thirty seconds, of up to `limit` destinations.
async fn lease(store: &Store, owner: &str, limit: i64, now: DateTime<Utc>) -> Vec<i64> {
    ids(&store
        .lease_due_outbox("telegram", owner, now + TimeDelta::seconds(30), limit, now)
        .await
        .unwrap())
}

fn user_chat(chat: &str, user: &str) -> ConversationRef {
    ConversationRef {
        platform: "telegram".to_owned(),
        chat_id: chat.to_owned(),
        user_id: user.to_owned(),
    }
}

async fn send(store: &Store, chat: &str, user: &str, text: &str, at: DateTime<Utc>) -> i64 {
    store
        .enqueue(&outgoing_to("telegram", chat, user, text), at)
        .await
        .unwrap()
}

async fn post(store: &Store, ticket_id: i64, text: &str, at: DateTime<Utc>) -> i64 {
    store
        .enqueue_delivery(
            "telegram",
            &Delivery::StaffPost {
                ticket_id,
                post: StaffPost {
                    text: text.to_owned(),
                    ..StaffPost::default()
                },
            },
            at,
        )
        .await
        .unwrap()
}

pub async fn only_the_first_undelivered_row_of_a_destination_is_leased(db: TestDb) {
    let store = db.connect().await;
    let ticket = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let staff = format!("staff:{}", ticket.id);

    let a1 = send(&store, "c1", "u1", "a1", t(1)).await;
    let s1 = store
        .enqueue_delivery(
            "telegram",
            &Delivery::OpenStaffSpace {
                ticket_id: ticket.id,
                title: "AAAA".to_owned(),
            },
            t(1),
        )
        .await
        .unwrap();
    let a2 = send(&store, "c1", "u1", "a2", t(1)).await;
    // Another user of the same (group) chat: the chat is one destination.
    let g1 = send(&store, "c1", "u2", "g1", t(1)).await;
    let s2 = post(&store, ticket.id, "summary", t(1)).await;
    let b1 = send(&store, "c2", "u3", "b1", t(1)).await;
    // The same chat id on another platform is a destination of its own.
    let d1 = store
        .enqueue(&outgoing_to("discord", "c1", "u1", "d1"), t(1))
        .await
        .unwrap();
    let a3 = store
        .enqueue_delivery(
            "telegram",
            &Delivery::DeleteUserMessage {
                conversation: user_chat("c1", "u1"),
                platform_message_id: "m-9".to_owned(),
            },
            t(1),
        )
        .await
        .unwrap();

    assert!(
        lease(&store, "w0", 10, t(0)).await.is_empty(),
        "not due yet"
    );

    // The first rows of the two oldest destinations, oldest first.
    let first = store
        .lease_due_outbox("telegram", "w1", t(32), 2, t(2))
        .await
        .unwrap();
    assert_eq!(ids(&first), [a1, s1]);
    assert_eq!(
        first
            .iter()
            .map(|m| (m.platform.as_str(), m.destination.as_str(), m.attempts))
            .collect::<Vec<_>>(),
        [("telegram", "chat:c1", 0), ("telegram", staff.as_str(), 0)]
    );
    assert_eq!(first[0].next_attempt_at, t(1));
    assert_eq!(first[0].last_error, None);
    // Another worker gets the third destination, and nothing of the two held by w1.
    assert_eq!(lease(&store, "w2", 10, t(2)).await, [b1]);
    assert!(lease(&store, "w3", 10, t(3)).await.is_empty());
    assert_eq!(
        ids(&store
            .lease_due_outbox("discord", "w3", t(33), 10, t(3))
            .await
            .unwrap()),
        [d1]
    );
    // Leased rows are still pending.
    assert_eq!(
        ids(&store.pending_outbox(Some("telegram"), 10).await.unwrap()),
        [a1, s1, a2, g1, s2, b1, a3]
    );

    // Each delivered row lets the next one of its destination go, in the order written.
    assert!(
        store
            .mark_delivered(a1, Some("sent-1"), t(4))
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_delivered(a1, Some("sent-1"), t(4))
            .await
            .unwrap(),
        "delivered already"
    );
    assert_eq!(lease(&store, "w3", 10, t(4)).await, [a2]);
    assert!(lease(&store, "w4", 10, t(4)).await.is_empty());
    assert!(store.mark_delivered(a2, None, t(5)).await.unwrap());
    assert_eq!(lease(&store, "w4", 10, t(5)).await, [g1]);
    assert!(
        store
            .mark_delivered(g1, Some("sent-3"), t(6))
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_delivered(s1, Some("topic-7"), t(6))
            .await
            .unwrap()
    );
    assert_eq!(lease(&store, "w5", 10, t(6)).await, [s2, a3]);
    assert!(lease(&store, "w6", 10, t(6)).await.is_empty());
    for id in [s2, a3, b1] {
        assert!(store.mark_delivered(id, None, t(7)).await.unwrap());
    }
    assert!(lease(&store, "w6", 10, t(100)).await.is_empty());
    assert!(
        store
            .pending_outbox(Some("telegram"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// What the workers saw, shared between them.
#[derive(Default)]
struct Seen {
    /// Destinations a worker holds right now.
    in_hand: HashSet<String>,
    /// Every row leased, in lease order.
    leased: Vec<i64>,
    /// Per destination, the rows sent, in sending order.
    sent: HashMap<String, Vec<i64>>,
    /// What went wrong.
    violations: Vec<String>,
}

pub async fn concurrent_outbox_workers_never_share_a_row_or_a_destination(db: TestDb) {
    let store = db.connect().await;
    let mut tickets = Vec::new();
    for (i, user) in ["a", "b", "c"].into_iter().enumerate() {
        tickets.push(
            open(&store, user, &format!("T{i:03}"), Priority::Normal, t(0))
                .await
                .id,
        );
    }
    // Three chats and three staff spaces, their rows written interleaved.
    let mut expected: HashMap<String, Vec<i64>> = HashMap::new();
    for round in 0..5 {
        for chat in ["c1", "c2", "c3"] {
            let id = send(&store, chat, "u", &format!("{chat}-{round}"), t(1)).await;
            expected.entry(format!("chat:{chat}")).or_default().push(id);
        }
        for &ticket in &tickets {
            let id = post(&store, ticket, &format!("{ticket}-{round}"), t(1)).await;
            expected
                .entry(format!("staff:{ticket}"))
                .or_default()
                .push(id);
        }
    }
    let total: usize = expected.values().map(Vec::len).sum();

    // Leases outlast the test (the clock stands still): a row leased twice was shared.
    let now = t(10);
    let lease_until = t(3600);
    let workers = 6;
    let barrier = Arc::new(Barrier::new(workers));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for (i, instance) in instances(&db, workers).await.into_iter().enumerate() {
        let barrier = Arc::clone(&barrier);
        let seen = Arc::clone(&seen);
        let done = Arc::clone(&done);
        handles.push(tokio::spawn(async move {
            let owner = format!("worker-{i}");
            barrier.wait().await;
            while done.load(Ordering::SeqCst) < total {
                let batch = instance
                    .lease_due_outbox("telegram", &owner, lease_until, 2, now)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                {
                    let mut seen = seen.lock().unwrap();
                    for m in &batch {
                        if !seen.in_hand.insert(m.destination.clone()) {
                            seen.violations.push(format!(
                                "{owner} leased row {} of {} while another worker held it",
                                m.id, m.destination
                            ));
                        }
                        seen.leased.push(m.id);
                    }
                }
                // Sending takes a while: others lease meanwhile.
                tokio::time::sleep(Duration::from_millis(3)).await;
                for m in &batch {
                    // Let go of the destination before marking: its next row cannot be leased
                    // before the mark commits, so no false alarm.
                    {
                        let mut seen = seen.lock().unwrap();
                        seen.in_hand.remove(&m.destination);
                        seen.sent
                            .entry(m.destination.clone())
                            .or_default()
                            .push(m.id);
                    }
                    assert!(
                        instance
                            .mark_delivered(m.id, Some(&format!("sent-{}", m.id)), now)
                            .await
                            .unwrap(),
                        "{owner} could not mark row {} delivered",
                        m.id
                    );
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for handle in handles {
        tokio::time::timeout(Duration::from_secs(120), handle)
            .await
            .expect("the workers finish")
            .unwrap();
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    let distinct: HashSet<i64> = seen.leased.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        seen.leased.len(),
        "a row was leased twice: {:?}",
        seen.leased
    );
    assert_eq!(seen.leased.len(), total);
    assert_eq!(
        seen.sent, expected,
        "every destination in the order written"
    );
    assert!(store.pending_outbox(None, 100).await.unwrap().is_empty());
}

pub async fn a_row_leased_by_a_dead_worker_is_leased_again_once_its_lease_expires(db: TestDb) {
    let store = db.connect().await;
    let r1 = send(&store, "c1", "u1", "first", t(0)).await;
    let r2 = send(&store, "c1", "u1", "second", t(0)).await;
    // Sub-second on purpose: the expiry is compared to the microsecond.
    let expiry = t(30) + TimeDelta::milliseconds(500);
    let taken = store
        .lease_due_outbox("telegram", "dead", expiry, 10, t(1))
        .await
        .unwrap();
    assert_eq!(ids(&taken), [r1]);

    // While the lease runs, neither the row nor the one behind it goes to anyone else.
    for now in [t(2), t(30), expiry - TimeDelta::milliseconds(1)] {
        assert!(
            lease(&store, "rescuer", 10, now).await.is_empty(),
            "leased at {now} though held until {expiry}"
        );
    }
    // Once it expired, the row is leased again (still the first, not the one behind it).
    let now = expiry + TimeDelta::microseconds(1);
    let again = store
        .lease_due_outbox("telegram", "rescuer", now + TimeDelta::seconds(30), 10, now)
        .await
        .unwrap();
    assert_eq!(ids(&again), [r1]);
    assert_eq!(
        again[0].user_message(),
        Some(&outgoing_to("telegram", "c1", "u1", "first"))
    );
    // The new lease holds in turn, also against the worker that came back.
    assert!(
        lease(&store, "dead", 10, now + TimeDelta::seconds(10))
            .await
            .is_empty()
    );

    assert!(store.mark_delivered(r1, Some("s-1"), now).await.unwrap());
    assert!(
        !store.mark_delivered(r1, Some("s-1b"), now).await.unwrap(),
        "the returning worker finds it delivered"
    );
    assert_eq!(lease(&store, "rescuer", 10, now).await, [r2]);
}

pub async fn a_worker_whose_row_was_taken_over_can_no_longer_settle_it(db: TestDb) {
    let store = db.connect().await;
    let r1 = send(&store, "c1", "u1", "first", t(0)).await;
    let r2 = send(&store, "c1", "u1", "second", t(0)).await;
    assert_eq!(lease(&store, "slow", 10, t(1)).await, [r1]);
    // The slow worker's lease (30 s from t(1)) expires; another takes the row over.
    let later = t(40);
    assert_eq!(lease(&store, "rescuer", 10, later).await, [r1]);
    // The slow one comes back: whatever it says, the row stays the rescuer's.
    assert!(
        !store
            .retry_later_as("slow", r1, "timeout", later, true)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_failed_as("slow", r1, "refused", later)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_delivered_as("slow", r1, Some("s-slow"), later)
            .await
            .unwrap()
    );
    assert!(
        lease(&store, "third", 10, later).await.is_empty(),
        "still in the rescuer's hands: neither the row nor the one behind it goes elsewhere"
    );
    assert!(
        store
            .mark_delivered_as("rescuer", r1, Some("s-1"), later)
            .await
            .unwrap()
    );
    assert_eq!(lease(&store, "third", 10, later).await, [r2]);
    assert!(
        store
            .retry_later_as("third", r2, "502", later, true)
            .await
            .unwrap(),
        "the holder settles its own row"
    );
}

pub async fn retry_later_holds_the_destination_back_until_due(db: TestDb) {
    let store = db.connect().await;
    let r1 = send(&store, "c1", "u1", "first", t(0)).await;
    let r2 = send(&store, "c1", "u1", "second", t(0)).await;
    let b1 = send(&store, "c2", "u2", "other chat", t(0)).await;
    assert_eq!(lease(&store, "w1", 10, t(1)).await, [r1, b1]);

    // Retrying lets go of the lease: a row due at once is leased again at once.
    assert!(store.retry_later(b1, "reset", t(1), false).await.unwrap());
    assert_eq!(lease(&store, "w4", 10, t(1)).await, [b1]);
    assert!(store.mark_delivered(b1, None, t(1)).await.unwrap());

    // A try that failed: the row waits until 60 s, and its chat with it.
    assert!(store.retry_later(r1, "timeout", t(60), true).await.unwrap());
    for now in [t(2), t(59) + TimeDelta::milliseconds(999)] {
        assert!(
            lease(&store, "w2", 10, now).await.is_empty(),
            "nothing of c1 is due at {now}"
        );
    }
    // Still pending meanwhile, with what happened.
    let pending = store.pending_outbox(Some("telegram"), 10).await.unwrap();
    assert_eq!(ids(&pending), [r1, r2]);
    assert_eq!(
        (
            pending[0].attempts,
            pending[0].next_attempt_at,
            pending[0].last_error.as_deref()
        ),
        (1, t(60), Some("timeout"))
    );

    let due = store
        .lease_due_outbox("telegram", "w2", t(90), 10, t(60))
        .await
        .unwrap();
    assert_eq!(ids(&due), [r1], "due again, the chat's first row still");
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].last_error.as_deref(), Some("timeout"));

    // A platform's "retry after" does not count as an attempt.
    assert!(
        store
            .retry_later(r1, "429: retry after 30 s", t(90), false)
            .await
            .unwrap()
    );
    assert!(lease(&store, "w3", 10, t(89)).await.is_empty());
    let due = store
        .lease_due_outbox("telegram", "w3", t(120), 10, t(90))
        .await
        .unwrap();
    assert_eq!(ids(&due), [r1]);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].last_error.as_deref(), Some("429: retry after 30 s"));

    assert!(store.mark_delivered(r1, Some("s-1"), t(91)).await.unwrap());
    assert!(
        !store.retry_later(r1, "late", t(200), true).await.unwrap(),
        "a delivered row is not retried"
    );
    assert_eq!(lease(&store, "w5", 10, t(91)).await, [r2]);
}

pub async fn a_failed_row_is_given_up_with_its_reason_and_its_destination_goes_on(db: TestDb) {
    let store = db.connect().await;
    let ticket = open(&store, "a", "AAAA", Priority::High, t(0)).await;
    let other_ticket = open(&store, "b", "BBBB", Priority::Normal, t(0)).await;
    let user = user_chat("c1", "u1");

    let s1 = store
        .enqueue_delivery(
            "telegram",
            &Delivery::OpenStaffSpace {
                ticket_id: ticket.id,
                title: "AAAA".to_owned(),
            },
            t(1),
        )
        .await
        .unwrap();
    let s2 = post(&store, ticket.id, "summary", t(2)).await;
    let u1 = send(&store, "c1", "u1", "reply", t(3)).await;
    let u2 = send(&store, "c1", "u1", "next reply", t(4)).await;
    let o1 = post(&store, other_ticket.id, "other summary", t(5)).await;
    let x1 = send(&store, "c9", "u9", "someone else", t(6)).await;
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        [("telegram".to_owned(), 6, t(1))]
    );
    assert_eq!(lease(&store, "w1", 10, t(10)).await, [s1, u1, o1, x1]);

    // Given up for good: the reason is kept, and the rows behind go on.
    assert!(
        store
            .mark_failed(u1, "chat not found", t(11))
            .await
            .unwrap()
    );
    assert!(!store.mark_failed(u1, "again", t(12)).await.unwrap());
    assert!(!store.mark_delivered(u1, Some("s"), t(12)).await.unwrap());
    assert!(!store.retry_later(u1, "again", t(12), true).await.unwrap());
    assert_eq!(lease(&store, "w2", 10, t(12)).await, [u2]);
    assert!(
        store
            .mark_failed(s1, "not enough rights to create a topic", t(13))
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_failed(o1, "forum disabled", t(13))
            .await
            .unwrap()
    );
    assert_eq!(lease(&store, "w2", 10, t(14)).await, [s2]);

    // Failed rows are no longer pending.
    assert_eq!(
        ids(&store.pending_outbox(None, 10).await.unwrap()),
        [s2, u2, x1]
    );
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        [("telegram".to_owned(), 3, t(2))]
    );
    assert_eq!(
        ids(&store
            .pending_outbox_for_conversation(&user, t(100))
            .await
            .unwrap()),
        [u2]
    );

    let failed_u1 = FailedDelivery {
        id: u1,
        platform: "telegram".to_owned(),
        kind: "user_message".to_owned(),
        text: "reply".to_owned(),
        error: "chat not found".to_owned(),
        failed_at: t(11),
    };
    let failed_s1 = FailedDelivery {
        id: s1,
        platform: "telegram".to_owned(),
        kind: "staff_open".to_owned(),
        text: String::new(),
        error: "not enough rights to create a topic".to_owned(),
        failed_at: t(13),
    };
    assert_eq!(
        store
            .failed_deliveries(None, Some(&user), 10)
            .await
            .unwrap(),
        std::slice::from_ref(&failed_u1)
    );
    assert_eq!(
        store
            .failed_deliveries(Some(ticket.id), None, 10)
            .await
            .unwrap(),
        std::slice::from_ref(&failed_s1)
    );
    assert_eq!(
        store
            .failed_deliveries(Some(ticket.id), Some(&user), 10)
            .await
            .unwrap(),
        [failed_s1.clone(), failed_u1.clone()],
        "both, oldest first"
    );
    assert_eq!(
        store
            .failed_deliveries(Some(ticket.id), Some(&user), 1)
            .await
            .unwrap(),
        [failed_s1]
    );
    let elsewhere = ConversationRef {
        platform: "discord".to_owned(),
        ..user.clone()
    };
    assert!(
        store
            .failed_deliveries(None, Some(&elsewhere), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .failed_deliveries(None, Some(&user_chat("c9", "u9")), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .failed_deliveries(Some(other_ticket.id), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .failed_deliveries(None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn every_delivery_kind_round_trips_through_the_outbox(db: TestDb) {
    let store = db.connect().await;
    let ticket = open(&store, "a", "AAAA", Priority::Urgent, t(0)).await;
    let user = user_chat("-100123", "42");
    let full_post = StaffPost {
        text: "🎫 AAAA — 充值未到账\n<b>not markup</b>".to_owned(),
        buttons: vec![
            Button {
                label: "Claim".to_owned(),
                payload: format!("staff:claim:{}", ticket.id),
            },
            Button {
                label: "解决".to_owned(),
                payload: format!("staff:resolve:{}", ticket.id),
            },
        ],
        file: Some(StaffFile {
            name: "transcript-AAAA.txt".to_owned(),
            heading: "Transcript:".to_owned(),
            content: "user: hi\nbot: hello \"there\"\n".to_owned(),
            attached_note: "Transcript attached.".to_owned(),
        }),
        forward: Some(Forward {
            chat_id: "-100123".to_owned(),
            message_id: "777".to_owned(),
        }),
        mention_staff: true,
        reply_to: Some("555".to_owned()),
    };
    let deliveries = [
        Delivery::UserMessage(Outgoing {
            conversation: user.clone(),
            text: "Hello 你好 'quoted' \\ \u{1F600}".to_owned(),
            buttons: vec![Button {
                label: "转人工".to_owned(),
                payload: "/human".to_owned(),
            }],
            reply_to: Some("m-1".to_owned()),
        }),
        Delivery::UserMessage(Outgoing {
            conversation: user.clone(),
            text: String::new(),
            buttons: vec![],
            reply_to: None,
        }),
        Delivery::DeleteUserMessage {
            conversation: user.clone(),
            platform_message_id: "m-2".to_owned(),
        },
        Delivery::OpenStaffSpace {
            ticket_id: ticket.id,
            title: "AAAA · Alice · deposit".to_owned(),
        },
        Delivery::StaffPost {
            ticket_id: ticket.id,
            post: full_post,
        },
        Delivery::StaffPost {
            ticket_id: ticket.id,
            post: StaffPost::default(),
        },
        Delivery::CloseStaffSpace {
            ticket_id: ticket.id,
        },
    ];
    // Microseconds survive on both backends.
    let at = |i: usize| t(1) + TimeDelta::microseconds(123_457 * i64::try_from(i).unwrap());

    // Half in a unit of work, half outside one.
    let mut written = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for (i, delivery) in deliveries.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let id = tx
            .enqueue_delivery("telegram", delivery, at(i))
            .await
            .unwrap();
        written.push((id, i));
    }
    tx.commit().await.unwrap();
    for (i, delivery) in deliveries.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        let id = store
            .enqueue_delivery("telegram", delivery, at(i))
            .await
            .unwrap();
        written.push((id, i));
    }
    written.sort_unstable();

    let expected: Vec<OutboxMessage> = written
        .iter()
        .map(|&(id, i)| OutboxMessage {
            id,
            platform: "telegram".to_owned(),
            destination: deliveries[i].destination(),
            delivery: deliveries[i].clone(),
            created_at: at(i),
            attempts: 0,
            next_attempt_at: at(i),
            last_error: None,
        })
        .collect();
    let pending = store.pending_outbox(Some("telegram"), 20).await.unwrap();
    assert_eq!(pending, expected);
    assert_eq!(
        pending
            .iter()
            .map(|m| m.delivery.kind())
            .collect::<HashSet<_>>()
            .len(),
        5,
        "every kind written"
    );

    // The user's chat as the terminal channel reads it.
    let for_user: Vec<&OutboxMessage> = expected
        .iter()
        .filter(|m| m.delivery.conversation().is_some())
        .collect();
    assert_eq!(
        store
            .pending_outbox_for_conversation(&user, t(10))
            .await
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        for_user
    );
    assert_eq!(
        pending
            .iter()
            .filter_map(OutboxMessage::user_message)
            .count(),
        2
    );

    // And as a worker leases them, one destination after the other.
    let mut leased = Vec::new();
    for step in 0..20 {
        let now = t(10 + step);
        let batch = store
            .lease_due_outbox("telegram", "w", now + TimeDelta::seconds(5), 10, now)
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 2, "one row per destination: {batch:?}");
        for m in batch {
            assert!(store.mark_delivered(m.id, None, now).await.unwrap());
            leased.push(m);
        }
    }
    leased.sort_by_key(|m| m.id);
    assert_eq!(leased, expected);
}
