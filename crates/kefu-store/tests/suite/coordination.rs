//! What instances share besides conversations: named leases (who runs a platform connection),
//! dead letters, and the values a platform adapter keeps across restarts.

use std::sync::Arc;

use chrono::TimeDelta;
use kefu_store::{DeadLetter, Store};
use tokio::sync::Barrier;

use super::{TestDb, t};

/// `n` instances on the database, each with its own pool.
async fn instances(db: &TestDb, n: usize) -> Vec<Store> {
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        stores.push(db.connect().await);
    }
    stores
}

pub async fn named_leases_are_exclusive_renewable_taken_over_after_expiry_and_released(db: TestDb) {
    let store = db.connect().await;
    assert_eq!(store.lease_holder("telegram").await.unwrap(), None);

    // Sub-second on purpose: the expiry is compared to the microsecond.
    let until = t(30) + TimeDelta::milliseconds(250);
    assert!(
        store
            .acquire_lease("telegram", "a", until, t(0))
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some(("a".to_owned(), until))
    );
    // Held: nobody else gets it, up to the last millisecond, and refusing changes nothing.
    for now in [t(1), t(30), until - TimeDelta::milliseconds(1)] {
        assert!(
            !store
                .acquire_lease("telegram", "b", now + TimeDelta::seconds(30), now)
                .await
                .unwrap(),
            "taken at {now} though held until {until}"
        );
    }
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some(("a".to_owned(), until))
    );
    // Another name is another lease.
    assert!(
        store
            .acquire_lease("discord", "b", t(60), t(1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease_holder("discord").await.unwrap(),
        Some(("b".to_owned(), t(60)))
    );

    // The holder renews.
    let renewed = t(50) + TimeDelta::milliseconds(750);
    assert!(
        store
            .acquire_lease("telegram", "a", renewed, t(20))
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some(("a".to_owned(), renewed))
    );
    assert!(
        !store
            .acquire_lease("telegram", "b", t(90), t(40))
            .await
            .unwrap(),
        "the renewal holds"
    );

    // Expired: taken over, and the old holder has lost it.
    let now = renewed + TimeDelta::microseconds(1);
    assert!(
        store
            .acquire_lease("telegram", "b", t(120), now)
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some(("b".to_owned(), t(120)))
    );
    assert!(
        !store
            .acquire_lease("telegram", "a", t(130), now + TimeDelta::seconds(1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some(("b".to_owned(), t(120)))
    );

    // Only the holder releases; then anyone takes it at once.
    assert!(!store.release_lease("telegram", "a").await.unwrap());
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some(("b".to_owned(), t(120)))
    );
    assert!(store.release_lease("telegram", "b").await.unwrap());
    assert!(!store.release_lease("telegram", "b").await.unwrap());
    assert_eq!(store.lease_holder("telegram").await.unwrap(), None);
    assert!(
        store
            .acquire_lease("telegram", "a", t(200), t(60))
            .await
            .unwrap()
    );
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some(("a".to_owned(), t(200)))
    );
    // The other name was never touched.
    assert_eq!(
        store.lease_holder("discord").await.unwrap(),
        Some(("b".to_owned(), t(60)))
    );
}

pub async fn concurrent_instances_never_hold_one_named_lease_together(db: TestDb) {
    let count = 8;
    let stores = instances(&db, count).await;
    let rounds = 6;
    let barrier = Arc::new(Barrier::new(count));
    let mut handles = Vec::new();
    for (i, instance) in stores.iter().cloned().enumerate() {
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            let owner = format!("instance-{i}");
            let mut won = Vec::new();
            for round in 0..rounds {
                // Each round starts after the last lease expired: everyone races for it…
                let start = t(round * 100);
                barrier.wait().await;
                let taken = instance
                    .acquire_lease("telegram", &owner, start + TimeDelta::seconds(50), start)
                    .await
                    .unwrap();
                // …then, while it runs, everyone tries again: only the holder keeps it.
                barrier.wait().await;
                let mid = start + TimeDelta::seconds(10);
                let kept = instance
                    .acquire_lease("telegram", &owner, mid + TimeDelta::seconds(50), mid)
                    .await
                    .unwrap();
                barrier.wait().await;
                won.push((taken, kept));
            }
            (owner, won)
        }));
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    let store = &stores[0];
    for round in 0..usize::try_from(rounds).unwrap() {
        let takers: Vec<&str> = results
            .iter()
            .filter(|(_, won)| won[round].0)
            .map(|(owner, _)| owner.as_str())
            .collect();
        let keepers: Vec<&str> = results
            .iter()
            .filter(|(_, won)| won[round].1)
            .map(|(owner, _)| owner.as_str())
            .collect();
        assert_eq!(takers.len(), 1, "round {round}: taken by {takers:?}");
        assert_eq!(keepers, takers, "round {round}: only the holder renews");
    }
    // The last round's holder is the one the database names, with the renewed expiry.
    let last = results
        .iter()
        .find(|(_, won)| won[won.len() - 1].1)
        .map(|(owner, _)| owner.clone())
        .unwrap();
    let end = t((rounds - 1) * 100) + TimeDelta::seconds(60);
    assert_eq!(
        store.lease_holder("telegram").await.unwrap(),
        Some((last, end))
    );
}

pub async fn dead_letters_and_platform_state_round_trip(db: TestDb) {
    let store = db.connect().await;
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    let letters = [
        DeadLetter {
            platform: "telegram".to_owned(),
            source: "update-1001".to_owned(),
            chat_id: Some("-100123".to_owned()),
            reason: "database unavailable: 连接被拒绝".to_owned(),
            at: t(1) + TimeDelta::microseconds(250_001),
        },
        DeadLetter {
            platform: "discord".to_owned(),
            source: "event-77".to_owned(),
            chat_id: None,
            reason: "unreadable payload".to_owned(),
            at: t(2),
        },
        DeadLetter {
            platform: "telegram".to_owned(),
            source: "update-1002".to_owned(),
            chat_id: Some("42".to_owned()),
            reason: "it's \"quoted\"".to_owned(),
            // Written later, stamped earlier: newest means last recorded.
            at: t(0),
        },
    ];
    let mut ids = Vec::new();
    for letter in &letters {
        ids.push(store.record_dead_letter(letter).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let newest_first: Vec<DeadLetter> = letters.iter().rev().cloned().collect();
    assert_eq!(store.dead_letters(10).await.unwrap(), newest_first);
    assert_eq!(store.dead_letters(2).await.unwrap(), newest_first[..2]);

    // Platform state: absent, saved, replaced, one value per name.
    assert_eq!(store.platform_state("telegram.offset").await.unwrap(), None);
    store
        .set_platform_state("telegram.offset", "1001", t(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .platform_state("telegram.offset")
            .await
            .unwrap()
            .as_deref(),
        Some("1001")
    );
    store
        .set_platform_state("telegram.offset", "9007199254740993", t(2))
        .await
        .unwrap();
    store
        .set_platform_state("discord.session", "{\"resume\": \"abc 你好\"}", t(2))
        .await
        .unwrap();
    store.set_platform_state("empty", "", t(3)).await.unwrap();
    assert_eq!(
        store
            .platform_state("telegram.offset")
            .await
            .unwrap()
            .as_deref(),
        Some("9007199254740993")
    );
    assert_eq!(
        store
            .platform_state("discord.session")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"resume\": \"abc 你好\"}")
    );
    assert_eq!(
        store.platform_state("empty").await.unwrap().as_deref(),
        Some("")
    );
    assert_eq!(store.platform_state("telegram").await.unwrap(), None);
    // Another pool (another instance, a restart) reads the same values.
    let other = db.connect().await;
    assert_eq!(
        other
            .platform_state("telegram.offset")
            .await
            .unwrap()
            .as_deref(),
        Some("9007199254740993")
    );
    assert_eq!(other.dead_letters(1).await.unwrap(), newest_first[..1]);
}
