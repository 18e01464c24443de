//! Several services on one database at once, as several processes run them: nothing is handled
//! twice, nothing is lost. On SQLite, and on PostgreSQL when `KEFU_TEST_DATABASE_URL` is set.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use common::{Db, message_from, user};
use kefu_core::model::{ConversationRef, Sender};
use kefu_service::{Handled, Service};

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

fn counts(lines: &[String]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l.as_str()).or_default() += 1;
    }
    m
}

/// `kefu desk list` and a second `kefu chat` used to run recovery at start-up and handle again
/// the messages a live process had stored but not finished.
#[tokio::test]
async fn recovery_beside_live_handlers_never_handles_a_message_twice() {
    for db in Db::each().await {
        let live = Arc::new(db.service("live").await);
        let other = Arc::new(db.service("other").await);
        let stop = Arc::new(AtomicBool::new(false));
        let recovering = {
            let other = other.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut taken = 0;
                while !stop.load(Ordering::SeqCst) {
                    taken += other.recover(Utc::now()).await.unwrap();
                    tokio::task::yield_now().await;
                }
                taken
            })
        };
        let mut handlers = Vec::new();
        for u in 0..4 {
            let live = live.clone();
            handlers.push(tokio::spawn(async move {
                for i in 0..40 {
                    let m = message_from(
                        &user(u),
                        &format!("u{u}-{i}"),
                        &format!("提币没到账 {u}-{i}"),
                    );
                    let h = live.handle_inbound(&m, Utc::now()).await.unwrap();
                    assert!(matches!(h, Handled::Processed { .. }), "{h:?}");
                }
            }));
        }
        for h in handlers {
            h.await.unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        let taken = recovering.await.unwrap();
        assert_eq!(taken, 0, "nothing a live handler held was taken over");
        for u in 0..4 {
            let lines = user_lines(&live, &user(u)).await;
            assert_eq!(lines.len(), 40, "user {u}: one line per message");
            assert!(counts(&lines).values().all(|&n| n == 1), "no line twice");
        }
    }
}

/// Eight processes writing for the same users at once: every message once, none lost.
#[tokio::test]
async fn many_instances_handling_the_same_users_at_once_lose_and_double_nothing() {
    for db in Db::each().await {
        let mut services = Vec::new();
        for i in 0..6 {
            services.push(Arc::new(db.service(&format!("i{i}")).await));
        }
        let mut tasks = Vec::new();
        for (i, s) in services.iter().enumerate() {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..15 {
                    // Every instance writes for both users.
                    let u = user((n % 2) as u32);
                    let m = message_from(&u, &format!("i{i}-{n}"), &format!("你好 {i}-{n}"));
                    loop {
                        match s.handle_inbound(&m, Utc::now()).await {
                            Ok(_) => break,
                            Err(e) if e.is_transient() => {
                                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Anything deferred under contention is taken over once its claim expires.
        tokio::time::sleep(services[0].config().inbound_lease).await;
        while services[0].recover(Utc::now()).await.unwrap() > 0 {}
        let mut total = 0;
        for u in 0..2 {
            let lines = user_lines(&services[0], &user(u)).await;
            assert!(
                counts(&lines).values().all(|&n| n == 1),
                "user {u}: a line twice"
            );
            total += lines.len();
            // On SQLite, where one writer at a time stores them, a user's messages are handled in
            // the order they were stored, whichever instance stored each. (On PostgreSQL two
            // messages stored at the same moment may commit in either order: neither came first.)
            if db.url.starts_with("sqlite:") {
                assert_eq!(lines, stored_texts(&db.url, &user(u)).await, "user {u}");
            }
        }
        assert_eq!(total, 6 * 15, "every message once");
    }
}

/// A user's stored messages, in the order they were stored.
async fn stored_texts(url: &str, c: &ConversationRef) -> Vec<String> {
    use sqlx::{Connection as _, SqliteConnection};
    let mut conn = SqliteConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT i.text FROM inbound_messages i JOIN conversations c ON c.id = i.conversation_id \
         WHERE c.user_id = $1 ORDER BY i.id",
    )
    .bind(&c.user_id)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// Several processes starting at once on a new database (a new SQLite file, an empty PostgreSQL
/// schema) all get a migrated database.
#[tokio::test]
async fn a_fresh_database_opened_by_many_at_once_is_migrated_once_for_all() {
    for db in Db::each().await {
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { kefu_store::Store::connect(&url).await })
            })
            .collect();
        for o in opens {
            let store = o
                .await
                .unwrap()
                .expect("every opener gets a working database");
            assert_eq!(store.queued_count().await.unwrap(), 0);
            store.close().await;
        }
    }
}
