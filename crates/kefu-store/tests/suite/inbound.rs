//! Inbound messages after they are recorded: the lease of the instance handling one, recovery
//! taking over what a dead instance left, setting aside what never succeeds, flood counts and
//! redaction of a secret recognised late.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::TimeDelta;
use kefu_core::model::{Attachment, AttachmentKind, Redacted, Sender, TranscriptLine};
use kefu_store::{InboundOutcome, Miss, NewLine, StoredInbound};
use tokio::sync::Barrier;

use super::{OWNER, TestDb, cref, ids_of, inbound, record, record_new, t, take_over_all};

/// `n` instances on the database, each with its own pool.
async fn instances(db: &TestDb, n: usize) -> Vec<kefu_store::Store> {
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        stores.push(db.connect().await);
    }
    stores
}

pub async fn a_live_inbound_lease_is_never_taken_over_and_an_expired_one_exactly_once(db: TestDb) {
    let store = db.connect().await;
    let mut message = inbound("a", "m-1", "look at this", t(0));
    message.attachments = vec![
        Attachment {
            kind: AttachmentKind::Photo,
            name: Some("screenshot 截图.png".to_owned()),
            url: Some("https://cdn.example/1.png".to_owned()),
        },
        Attachment {
            kind: AttachmentKind::Sticker,
            name: None,
            url: None,
        },
    ];
    message.pressed = true;
    // Sub-second on purpose: SQLite compares the stored times as text.
    let lease_until = t(60) + TimeDelta::milliseconds(500);
    let InboundOutcome::New(id) = store
        .record_inbound(
            &message,
            &Redacted::of("look at this"),
            "crashed",
            lease_until,
            t(1),
        )
        .await
        .unwrap()
    else {
        panic!("new message expected");
    };

    // While its handler's lease runs nobody takes the message over, up to the last millisecond.
    for now in [t(1), t(60), lease_until - TimeDelta::milliseconds(1)] {
        let taken = store
            .claim_stale_inbound("early", now + TimeDelta::seconds(60), 5, 10, now)
            .await
            .unwrap();
        assert!(
            taken.is_empty(),
            "taken over at {now} though leased until {lease_until}: {taken:?}"
        );
    }

    // Once it expired, eight instances try at once: exactly one gets it.
    let now = lease_until + TimeDelta::microseconds(1);
    let claimers = 8;
    let barrier = Arc::new(Barrier::new(claimers));
    let mut handles = Vec::new();
    for (i, instance) in instances(&db, claimers).await.into_iter().enumerate() {
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            let owner = format!("claimer-{i}");
            barrier.wait().await;
            let taken = instance
                .claim_stale_inbound(&owner, now + TimeDelta::seconds(60), 5, 10, now)
                .await
                .unwrap();
            (owner, taken)
        }));
    }
    let mut winners = Vec::new();
    for handle in handles {
        let (owner, taken) = handle.await.unwrap();
        if !taken.is_empty() {
            winners.push((owner, taken));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one taker: {winners:?}");
    let (winner, taken) = winners.pop().unwrap();
    let conversation_id = store.conversation(&cref("a")).await.unwrap().unwrap().id;
    assert_eq!(
        taken,
        [StoredInbound {
            id,
            conversation: cref("a"),
            conversation_id,
            user_name: "User a".to_owned(),
            platform_message_id: "m-1".to_owned(),
            text: "look at this".to_owned(),
            sent_at: t(0),
            received_at: t(1),
            attachments: message.attachments.clone(),
            pressed: true,
            attempts: 2,
        }]
    );

    // The new lease holds in turn, and the handler that lost the message cannot commit its turn.
    assert!(
        store
            .claim_stale_inbound(
                "late",
                now + TimeDelta::seconds(90),
                5,
                10,
                now + TimeDelta::seconds(30)
            )
            .await
            .unwrap()
            .is_empty()
    );
    let mut tx = store.begin().await.unwrap();
    assert!(
        !tx.finish_inbound(id, "crashed", now).await.unwrap(),
        "the old owner no longer holds the message"
    );
    tx.rollback().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(tx.finish_inbound(id, &winner, now).await.unwrap());
    tx.commit().await.unwrap();
    assert!(
        take_over_all(&store, "recovery", t(10_000))
            .await
            .is_empty()
    );
}

pub async fn concurrent_recoveries_share_out_expired_messages_without_duplicates(db: TestDb) {
    let store = db.connect().await;
    let claimers = 8;
    let stores = instances(&db, claimers).await;
    let now = t(1000);
    for round in 0..3 {
        let mut recorded = HashSet::new();
        for i in 0..30 {
            let message = inbound(
                &format!("u{}", i % 7),
                &format!("r{round}-m{i}"),
                "hello",
                t(i),
            );
            let InboundOutcome::New(id) = store
                .record_inbound(&message, &Redacted::of("hello"), "crashed", t(100), t(i))
                .await
                .unwrap()
            else {
                panic!("new message expected");
            };
            recorded.insert(id);
        }
        let barrier = Arc::new(Barrier::new(claimers));
        let mut handles = Vec::new();
        for (i, instance) in stores.iter().enumerate() {
            let instance = instance.clone();
            let barrier = Arc::clone(&barrier);
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                instance
                    .claim_stale_inbound(&format!("claimer-{i}"), t(100_000), 5, 4, now)
                    .await
                    .unwrap()
            }));
        }
        let mut taken = Vec::new();
        for handle in handles {
            let got = handle.await.unwrap();
            let order = ids_of(&got);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(order, sorted, "in the order stored");
            taken.extend(ids_of(&got));
        }
        // The claimers finish what they took (set aside here: either way it no longer holds back
        // the later messages of its conversation), and what they skipped (another one was taking
        // it, on PostgreSQL, or an earlier message of its conversation was taken) a later sweep
        // takes.
        for &id in &taken {
            assert!(store.fail_inbound(id, "finished", now).await.unwrap());
        }
        taken.extend(ids_of(&take_over_all(&store, "sweeper", now).await));
        let distinct: HashSet<i64> = taken.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            taken.len(),
            "round {round}: a message was taken over twice: {taken:?}"
        );
        assert_eq!(distinct, recorded, "round {round}");
        // The sweep's messages are finished too, before the next round's arrive.
        for id in distinct {
            store.fail_inbound(id, "finished", now).await.unwrap();
        }
    }
}

pub async fn a_message_waits_while_an_earlier_one_of_its_conversation_is_leased(db: TestDb) {
    let store = db.connect().await;
    let mut ids = Vec::new();
    for (i, (user, lease)) in [("ann", 50), ("ann", 0), ("bob", 0)]
        .into_iter()
        .enumerate()
    {
        let message = inbound(user, &format!("m{i}"), "hello", t(i as i64));
        let InboundOutcome::New(id) = store
            .record_inbound(
                &message,
                &Redacted::of("hello"),
                "crashed",
                t(lease),
                t(i as i64),
            )
            .await
            .unwrap()
        else {
            panic!("new message expected");
        };
        ids.push(id);
    }
    let mut tx = store.begin().await.unwrap();
    assert!(tx.earlier_unhandled(ids[1]).await.unwrap());
    assert!(!tx.earlier_unhandled(ids[0]).await.unwrap());
    assert!(!tx.earlier_unhandled(ids[2]).await.unwrap());
    tx.rollback().await.unwrap();
    // Ann's second message waits for her first, still leased; Bob's is free.
    assert_eq!(
        ids_of(&take_over_all(&store, "b", t(10)).await),
        vec![ids[2]]
    );
    // Once the first lease expires, both of Ann's, in order.
    assert_eq!(
        ids_of(&take_over_all(&store, "b", t(60)).await),
        vec![ids[0], ids[1]]
    );
    // Releasing a lease makes a message claimable at once; only its holder can release it.
    assert!(!store.release_inbound(ids[0], "someone else").await.unwrap());
    assert!(store.release_inbound(ids[0], "b").await.unwrap());
    assert_eq!(
        ids_of(&take_over_all(&store, "c", t(61)).await),
        vec![ids[0]]
    );
}

pub async fn a_conversations_next_waiting_message_is_taken_once_the_one_before_is_done(db: TestDb) {
    let store = db.connect().await;
    let mut ids = Vec::new();
    for (i, (user, owner, lease)) in [
        ("ann", "a", 50),
        ("ann", "b", 50),
        ("ann", "b", 50),
        ("bob", "b", 50),
        ("cat", "dead", 5),
    ]
    .into_iter()
    .enumerate()
    {
        let message = inbound(user, &format!("m{i}"), "hello", t(i as i64));
        let InboundOutcome::New(id) = store
            .record_inbound(
                &message,
                &Redacted::of("hello"),
                owner,
                t(lease),
                t(i as i64),
            )
            .await
            .unwrap()
        else {
            panic!("new message expected");
        };
        ids.push(id);
    }
    // "b" found Ann's first message unfinished: her next two wait, released; so does Bob's.
    for &id in &ids[1..4] {
        assert!(store.release_inbound(id, "b").await.unwrap());
    }
    let next = |after: i64, max_attempts: i64| {
        let store = store.clone();
        async move {
            store
                .claim_next_waiting(after, "c", t(100), max_attempts, t(10))
                .await
                .unwrap()
                .map(|m| (m.id, m.attempts))
        }
    };
    // Ann's first message is still leased to "a": nothing of hers is taken, from any message.
    assert_eq!(next(ids[0], 5).await, None);
    assert_eq!(next(ids[2], 5).await, None);
    assert!(store.fail_inbound(ids[0], "finished", t(11)).await.unwrap());
    // Then hers one at a time, in the order stored: the one taken holds the next back. Waiting
    // did not count as an attempt at handling.
    assert_eq!(next(ids[0], 5).await, Some((ids[1], 1)));
    assert_eq!(next(ids[0], 5).await, None);
    assert!(store.fail_inbound(ids[1], "finished", t(12)).await.unwrap());
    assert_eq!(next(ids[1], 5).await, Some((ids[2], 1)));
    assert!(store.fail_inbound(ids[2], "finished", t(13)).await.unwrap());
    assert_eq!(next(ids[2], 5).await, None);
    // Bob's conversation is his own.
    assert_eq!(next(ids[3], 5).await, Some((ids[3], 1)));
    // Cat's handler died (lease expired at 5): her message is taken, unless its handling began
    // as often as allowed — then it is left to recovery, which sets it aside.
    assert_eq!(next(ids[4], 1).await, None);
    assert_eq!(next(ids[4], 5).await, Some((ids[4], 2)));
}

pub async fn recovery_takes_messages_in_the_order_they_were_stored_up_to_its_limit(db: TestDb) {
    let store = db.connect().await;
    // Stored in this order by processes whose clocks disagree: the order stored decides.
    for (user, text, received) in [("c", "early", 30), ("a", "middle", 10), ("b", "late", 20)] {
        store
            .record_inbound(
                &inbound(user, "m-1", text, t(0)),
                &Redacted::of(text),
                "crashed",
                t(40),
                t(received),
            )
            .await
            .unwrap();
    }
    let texts =
        |messages: Vec<StoredInbound>| messages.into_iter().map(|m| m.text).collect::<Vec<_>>();
    assert_eq!(
        texts(
            store
                .claim_stale_inbound("recovery", t(200), 5, 2, t(100))
                .await
                .unwrap()
        ),
        ["early", "middle"]
    );
    assert_eq!(
        texts(
            store
                .claim_stale_inbound("recovery", t(200), 5, 2, t(100))
                .await
                .unwrap()
        ),
        ["late"]
    );
}

pub async fn a_message_whose_handling_keeps_failing_is_set_aside_after_max_attempts(db: TestDb) {
    let store = db.connect().await;
    let max_attempts = 3;
    let claim = |owner: &'static str, now| {
        let store = store.clone();
        async move {
            store
                .claim_stale_inbound(owner, now + TimeDelta::seconds(10), max_attempts, 10, now)
                .await
                .unwrap()
        }
    };
    let poison = record_new(&store, &inbound("a", "m-poison", "boom", t(0)), t(0)).await;
    let healthy = record_new(&store, &inbound("b", "m-ok", "hi", t(0)), t(1)).await;

    // The first handling (attempt 1) died with both; recovery begins attempt 2 of each.
    let taken = claim("r1", t(100)).await;
    assert_eq!(ids_of(&taken), [poison, healthy]);
    assert!(taken.iter().all(|m| m.attempts == 2), "{taken:?}");
    let mut tx = store.begin().await.unwrap();
    assert!(tx.finish_inbound(healthy, "r1", t(101)).await.unwrap());
    tx.commit().await.unwrap();
    // Attempt 3: the poison message alone, and it dies again.
    let taken = claim("r2", t(200)).await;
    assert_eq!(ids_of(&taken), [poison]);
    assert_eq!(taken[0].attempts, 3);
    // Its handling began three times: set aside rather than tried a fourth time, then or ever.
    assert!(claim("r3", t(300)).await.is_empty());
    assert!(
        take_over_all(&store, "recovery", t(10_000))
            .await
            .is_empty()
    );
    let mut tx = store.begin().await.unwrap();
    assert!(
        !tx.finish_inbound(poison, "r2", t(301)).await.unwrap(),
        "a set-aside message cannot be finished"
    );
    tx.rollback().await.unwrap();
    assert!(
        !store.fail_inbound(poison, "again", t(302)).await.unwrap(),
        "already set aside"
    );

    // A message at its limit whose handler still holds the lease is left alone: it may finish.
    let live = record_new(&store, &inbound("c", "m-live", "slow", t(400)), t(400)).await;
    assert!(
        store
            .claim_stale_inbound("r4", t(500), 1, 10, t(430))
            .await
            .unwrap()
            .is_empty()
    );
    let mut tx = store.begin().await.unwrap();
    assert!(tx.finish_inbound(live, OWNER, t(440)).await.unwrap());
    tx.commit().await.unwrap();

    // `fail_inbound` sets a message aside at once, its lease notwithstanding.
    let doomed = record_new(&store, &inbound("d", "m-doomed", "?", t(500)), t(500)).await;
    assert!(
        store
            .fail_inbound(doomed, "unreadable update", t(501))
            .await
            .unwrap()
    );
    assert!(!store.fail_inbound(doomed, "again", t(502)).await.unwrap());
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.finish_inbound(doomed, OWNER, t(503)).await.unwrap());
    tx.rollback().await.unwrap();
    assert!(
        take_over_all(&store, "recovery", t(10_000))
            .await
            .is_empty()
    );
}

/// The handler's lease ran out but nobody took the message over, so the handler still holds it
/// and commits its turn; recovery running meanwhile must not take the message (on SQLite it waits
/// for the turn's write lock, on PostgreSQL it skips the row the turn locked).
pub async fn a_turn_being_committed_is_not_taken_over(db: TestDb) {
    let store = db.connect().await;
    let recovery = db.connect().await;
    for commit in [true, false] {
        let user = if commit { "a" } else { "b" };
        let id = store
            .record_inbound(
                &inbound(user, "m-1", "hi", t(0)),
                &Redacted::of("hi"),
                "slow",
                t(10),
                t(0),
            )
            .await
            .unwrap();
        let InboundOutcome::New(id) = id else {
            panic!("new message expected");
        };
        let mut tx = store.begin().await.unwrap();
        assert!(tx.finish_inbound(id, "slow", t(20)).await.unwrap());
        let conversation = tx.load_conversation(&cref(user)).await.unwrap();
        tx.append_user_line(
            conversation.id,
            None,
            id,
            &NewLine::new(t(0), Sender::User, "hi"),
        )
        .await
        .unwrap();
        let recovery = recovery.clone();
        let concurrent = tokio::spawn(async move {
            recovery
                .claim_stale_inbound("recovery", t(80), 5, 10, t(20))
                .await
                .unwrap()
        });
        // Give recovery the chance to run while the turn is open (it is correct either way).
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        let mut taken = ids_of(&concurrent.await.unwrap());
        if commit {
            assert!(taken.is_empty(), "a handled message was taken over");
            assert_eq!(store.transcript(&cref(user)).await.unwrap().len(), 1);
        } else {
            // Rolled back: the message is unhandled, so recovery takes it, then or now.
            taken.extend(ids_of(
                &store
                    .claim_stale_inbound("recovery-2", t(80), 5, 10, t(20))
                    .await
                    .unwrap(),
            ));
            assert_eq!(taken, [id]);
            assert!(store.transcript(&cref(user)).await.unwrap().is_empty());
        }
    }
}

pub async fn count_recent_inbound_counts_within_the_window_only(db: TestDb) {
    let store = db.connect().await;
    let mut ids = Vec::new();
    for (i, received) in [0, 10, 20, 30].into_iter().enumerate() {
        let message = inbound(
            "a",
            &format!("m{i}"),
            &format!("text {received}"),
            t(received),
        );
        ids.push(record_new(&store, &message, t(received)).await);
    }
    record_new(&store, &inbound("b", "m0", "other", t(25)), t(25)).await;
    // A redelivery is not another message.
    record(&store, &inbound("a", "m3", "text 30", t(30)), t(31)).await;
    // A button press is not counted: it answers the bot's own question.
    let mut press = inbound("a", "p1", "/rate 5", t(15));
    press.pressed = true;
    record_new(&store, &press, t(15)).await;

    let mut tx = store.begin().await.unwrap();
    let a = tx.load_conversation(&cref("a")).await.unwrap().id;
    let b = tx.load_conversation(&cref("b")).await.unwrap().id;
    // Received strictly after `since`.
    assert_eq!(tx.count_recent_inbound(a, t(-1)).await.unwrap().typed, 4);
    assert_eq!(tx.count_recent_inbound(a, t(10)).await.unwrap().typed, 2);
    assert_eq!(
        tx.count_recent_inbound(a, t(10) - TimeDelta::milliseconds(1))
            .await
            .unwrap()
            .typed,
        3
    );
    assert_eq!(tx.count_recent_inbound(a, t(30)).await.unwrap().typed, 0);
    assert_eq!(tx.count_recent_inbound(b, t(0)).await.unwrap().typed, 1);
    // The newest message, a press counted or not; none in an empty window.
    let newest = tx.count_recent_inbound(a, t(-1)).await.unwrap().latest;
    assert!(newest > Some(ids[3]), "the press came last: {newest:?}");
    assert_eq!(
        tx.count_recent_inbound(a, t(15)).await.unwrap().latest,
        Some(ids[3])
    );
    assert_eq!(
        tx.count_recent_inbound(a, t(30)).await.unwrap().latest,
        None
    );

    // The messages before one, within the window, oldest first, the last `limit` of them.
    let text = |i: usize, received: i64| (ids[i], format!("text {received}"));
    assert_eq!(
        tx.recent_inbound_texts(a, ids[3], t(0), 10).await.unwrap(),
        [text(1, 10), text(2, 20)]
    );
    assert_eq!(
        tx.recent_inbound_texts(a, ids[3], t(-1), 2).await.unwrap(),
        [text(1, 10), text(2, 20)]
    );
    assert_eq!(
        tx.recent_inbound_texts(a, ids[1], t(-1), 10).await.unwrap(),
        [text(0, 0)]
    );
    assert!(
        tx.recent_inbound_texts(b, i64::MAX, t(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    tx.rollback().await.unwrap();
}

pub async fn redact_inbound_replaces_the_text_in_all_three_places_and_nowhere_else(db: TestDb) {
    let store = db.connect().await;
    // A seed phrase split over two messages: each half alone looked harmless when stored.
    let first_half = "abandon ability able about above absent";
    let second_half = "absorb abstract absurd abuse access accident";
    let first = record_new(&store, &inbound("a", "m1", first_half, t(0)), t(0)).await;
    let second = record_new(&store, &inbound("a", "m2", second_half, t(1)), t(1)).await;
    // The same words from another user, whose message is not redacted.
    let other = record_new(&store, &inbound("b", "m1", first_half, t(0)), t(0)).await;

    let line = |sender, text: &str| NewLine::new(t(1), sender, text);
    let miss = |text: &str, inbound_id| Miss {
        text: Redacted::of(text),
        language: Some("en".to_owned()),
        intent_guess: None,
        confidence: Some(0.1),
        at: t(1),
        inbound_id,
    };
    let mut tx = store.begin().await.unwrap();
    let a = tx.load_conversation(&cref("a")).await.unwrap().id;
    let b = tx.load_conversation(&cref("b")).await.unwrap().id;
    for (conversation, id, text) in [
        (a, first, first_half),
        (a, second, second_half),
        (b, other, first_half),
    ] {
        tx.append_user_line(conversation, None, id, &line(Sender::User, text))
            .await
            .unwrap();
        tx.record_miss(&miss(text, Some(id))).await.unwrap();
    }
    // Lines and misses not linked to the message keep their text, even the same text.
    tx.append_transcript(a, None, &line(Sender::Bot, first_half))
        .await
        .unwrap();
    tx.record_miss(&miss(first_half, None)).await.unwrap();

    let redacted = "[redacted: seed phrase, 12 words]";
    tx.redact_inbound(first, &Redacted::of(redacted))
        .await
        .unwrap();
    tx.redact_inbound(second, &Redacted::of(redacted))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.recent_inbound_texts(a, i64::MAX, t(-1), 10)
            .await
            .unwrap(),
        [(first, redacted.to_owned()), (second, redacted.to_owned())]
    );
    assert_eq!(
        tx.recent_inbound_texts(b, i64::MAX, t(-1), 10)
            .await
            .unwrap(),
        [(other, first_half.to_owned())]
    );
    tx.rollback().await.unwrap();
    let texts = |lines: Vec<TranscriptLine>| {
        lines
            .into_iter()
            .map(|l| (l.sender, l.text))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(store.transcript(&cref("a")).await.unwrap()),
        [
            (Sender::User, redacted.to_owned()),
            (Sender::User, redacted.to_owned()),
            (Sender::Bot, first_half.to_owned()),
        ]
    );
    assert_eq!(
        texts(store.transcript(&cref("b")).await.unwrap()),
        [(Sender::User, first_half.to_owned())]
    );
    let mut misses: Vec<(String, i64)> = store
        .misses(10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.text, m.count))
        .collect();
    misses.sort();
    // Two misses of user a's became the redacted text; b's and the unlinked one stay.
    assert_eq!(
        misses,
        [(redacted.to_owned(), 2), (first_half.to_owned(), 2),]
    );
    let stored = take_over_all(&store, "recovery", t(1000)).await;
    assert_eq!(
        stored
            .iter()
            .map(|m| (m.id, m.text.as_str()))
            .collect::<Vec<_>>(),
        [(first, redacted), (second, redacted), (other, first_half)]
    );
}
