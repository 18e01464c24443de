//! Housekeeping: what [`Store::prune`](kefu_store::Store::prune) deletes, what it keeps, and
//! several instances pruning at once.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use kefu_core::model::{Redacted, Sender};
use kefu_store::{DeadLetter, InboundOutcome, Miss, NewLine, Pruned, Store};
use tokio::sync::Barrier;

use super::{OWNER, TestDb, cref, ids_of, inbound, outgoing, record, record_new, t, take_over_all};

/// Handles the stored message `id` of `user` as a turn would: a user line and an unanswered
/// question linked to it, a decision, and the message marked handled at `at`.
async fn handle(store: &Store, user: &str, id: i64, text: &str, at: DateTime<Utc>) {
    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref(user)).await.unwrap().id;
    tx.append_user_line(
        conversation,
        None,
        id,
        &NewLine::new(at, Sender::User, text),
    )
    .await
    .unwrap();
    tx.record_miss(&Miss {
        text: Redacted::of(text),
        language: Some("zh".to_owned()),
        intent_guess: None,
        confidence: Some(0.2),
        at,
        inbound_id: Some(id),
    })
    .await
    .unwrap();
    tx.record_decision("escalate", at).await.unwrap();
    assert!(tx.finish_inbound(id, OWNER, at).await.unwrap());
    tx.commit().await.unwrap();
}

fn letter(source: &str, at: DateTime<Utc>) -> DeadLetter {
    DeadLetter {
        platform: "telegram".to_owned(),
        source: source.to_owned(),
        chat_id: None,
        reason: "not JSON".to_owned(),
        at,
    }
}

pub async fn prune_deletes_only_finished_history_older_than_the_cut_off(db: TestDb) {
    let store = db.connect().await;
    let (old, cut, new) = (t(0), t(1000), t(2000));

    // Inbound: handled long ago, set aside long ago, never handled though old, handled lately.
    let handled = record_new(&store, &inbound("a", "m1", "提币一直没到账", old), old).await;
    handle(&store, "a", handled, "提币一直没到账", old).await;
    let set_aside = record_new(&store, &inbound("a", "m2", "poison", old), old).await;
    assert!(
        store
            .fail_inbound(set_aside, "handler panicked", old)
            .await
            .unwrap()
    );
    let waiting = record_new(&store, &inbound("b", "m1", "还在等", old), old).await;
    let recent = record_new(&store, &inbound("c", "m1", "2FA丢了", new), new).await;
    handle(&store, "c", recent, "2FA丢了", new).await;

    // Outbox: delivered, given up and still pending long ago; delivered lately.
    let delivered = store.enqueue(&outgoing("a", "答复"), old).await.unwrap();
    assert!(
        store
            .mark_delivered(delivered, Some("9"), old)
            .await
            .unwrap()
    );
    let given_up = store.enqueue(&outgoing("a", "blocked"), old).await.unwrap();
    assert!(
        store
            .mark_failed(given_up, "bot was blocked", old)
            .await
            .unwrap()
    );
    let pending = store.enqueue(&outgoing("b", "稍等"), old).await.unwrap();
    let delivered_lately = store.enqueue(&outgoing("c", "答复"), new).await.unwrap();
    assert!(
        store
            .mark_delivered(delivered_lately, Some("10"), new)
            .await
            .unwrap()
    );

    store.record_dead_letter(&letter("u-1", old)).await.unwrap();
    store.record_dead_letter(&letter("u-2", new)).await.unwrap();

    // One row per batch: every loop runs more than once.
    let pruned = store.prune(cut, cut, 1).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            inbound: 2,
            outbox: 2,
            dead_letters: 1,
            decisions: 1,
        }
    );
    assert_eq!(store.prune(cut, cut, 1).await.unwrap(), Pruned::default());

    // The support record stays whole: the lines and the question keep their text.
    let transcript = store.transcript(&cref("a")).await.unwrap();
    assert_eq!(
        transcript
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>(),
        ["提币一直没到账"]
    );
    let mut misses: Vec<String> = store
        .misses(10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    misses.sort();
    assert_eq!(misses, ["2FA丢了", "提币一直没到账"]);

    // The message nobody handled is still there for recovery, and only it.
    assert_eq!(
        ids_of(&take_over_all(&store, "recovery", t(5000)).await),
        [waiting]
    );
    // What still has to go out still goes out.
    let still_pending: Vec<i64> = store
        .pending_outbox(None, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(still_pending, [pending]);
    // A recent message is still recognised when the platform delivers it again.
    assert!(matches!(
        record(&store, &inbound("c", "m1", "2FA丢了", new), new).await,
        InboundOutcome::Duplicate
    ));
    let letters: Vec<String> = store
        .dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.source)
        .collect();
    assert_eq!(letters, ["u-2"]);
    let activity = store.activity(t(-100_000), t(100_000)).await.unwrap();
    assert_eq!(
        activity.decisions,
        [(new.date_naive(), "escalate".to_owned(), 1)]
    );

    // The decisions have a cut-off of their own.
    let later = new + TimeDelta::seconds(1);
    assert_eq!(
        store.prune(cut, later, 100).await.unwrap(),
        Pruned {
            decisions: 1,
            ..Pruned::default()
        }
    );
}

pub async fn instances_pruning_at_once_delete_each_row_once(db: TestDb) {
    let store = db.connect().await;
    let old = t(0);
    let messages: u64 = 60;
    for i in 0..messages {
        let user = format!("u{}", i % 7);
        let text = format!("第{i}条");
        let id = record_new(&store, &inbound(&user, &format!("m{i}"), &text, old), old).await;
        handle(&store, &user, id, &text, old).await;
        let row = store.enqueue(&outgoing(&user, &text), old).await.unwrap();
        assert!(store.mark_delivered(row, None, old).await.unwrap());
    }
    let pruners = 4;
    let barrier = Arc::new(Barrier::new(pruners));
    let mut handles = Vec::new();
    for _ in 0..pruners {
        let instance = db.connect().await;
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            instance.prune(t(1000), t(1000), 7).await.unwrap()
        }));
    }
    let mut total = Pruned::default();
    for handle in handles {
        let p = handle.await.unwrap();
        total.inbound += p.inbound;
        total.outbox += p.outbox;
        total.decisions += p.decisions;
    }
    assert_eq!(
        (total.inbound, total.outbox, total.decisions),
        (messages, messages, messages)
    );
    assert_eq!(
        store.prune(t(1000), t(1000), 7).await.unwrap(),
        Pruned::default()
    );
    // Every line kept its text.
    let mut lines = 0;
    for u in 0..7 {
        lines += store
            .transcript(&cref(&format!("u{u}")))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(lines, 60);
}
