//! The delivery worker over a platform that needs no network: a fake [`Deliver`] that records
//! what it was asked to send and answers as each test scripts it. The outbox is a real database
//! (SQLite; PostgreSQL too when `KEFU_TEST_DATABASE_URL` is set).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Db, user};
use kefu_core::delivery::{Delivery, StaffPost};
use kefu_core::model::{ConversationRef, Outgoing};
use kefu_service::Service;
use kefu_service::delivery::{Deliver, Limits, Outcome, Rate, ToUser};
use tokio::sync::watch;

const PLATFORM: &str = "telegram";

/// A platform that answers from a script, then `Sent`.
#[derive(Default)]
struct Fake {
    /// (destination, text) in the order the platform accepted them.
    sent: Mutex<Vec<(String, String)>>,
    /// Outcomes to give, in turn, for a text before accepting it.
    script: Mutex<HashMap<String, VecDeque<Outcome>>>,
    /// Every call, accepted or not: (text, when).
    calls: Mutex<Vec<(String, Instant)>>,
    opened: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// Destinations with a send in progress (a second one at once is a violation).
    busy: Mutex<HashMap<String, usize>>,
    violations: AtomicUsize,
    /// How long each call takes.
    latency: Duration,
}

impl Fake {
    fn with_latency(latency: Duration) -> Fake {
        Fake {
            latency,
            ..Fake::default()
        }
    }

    fn script(&self, text: &str, outcomes: Vec<Outcome>) {
        self.script
            .lock()
            .unwrap()
            .insert(text.to_owned(), outcomes.into());
    }

    fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().unwrap().clone()
    }

    fn texts_to(&self, destination: &str) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|(d, _)| d == destination)
            .map(|(_, t)| t)
            .collect()
    }

    async fn call(&self, destination: &str, text: &str) -> Outcome {
        self.calls
            .lock()
            .unwrap()
            .push((text.to_owned(), Instant::now()));
        {
            let mut busy = self.busy.lock().unwrap();
            let n = busy.entry(destination.to_owned()).or_default();
            *n += 1;
            if *n > 1 {
                self.violations.fetch_add(1, Ordering::SeqCst);
            }
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(n) = self.busy.lock().unwrap().get_mut(destination) {
            *n -= 1;
        }
        let scripted = self
            .script
            .lock()
            .unwrap()
            .get_mut(text)
            .and_then(VecDeque::pop_front);
        match scripted {
            Some(outcome) => outcome,
            None => {
                let mut sent = self.sent.lock().unwrap();
                sent.push((destination.to_owned(), text.to_owned()));
                Outcome::Sent(Some(sent.len().to_string()))
            }
        }
    }
}

impl Deliver for Fake {
    fn platform(&self) -> &str {
        PLATFORM
    }

    fn limits(&self) -> Limits {
        Limits {
            overall: None,
            in_flight: 16,
        }
    }

    fn pacing(&self, _delivery: &Delivery) -> Option<(String, Rate)> {
        None
    }

    async fn send_to_user(&self, m: ToUser<'_>) -> Outcome {
        self.call(&format!("chat:{}", m.chat), m.text).await
    }

    async fn delete_message(&self, chat: &str, _moved: Option<&str>, id: &str) -> Outcome {
        self.call(&format!("chat:{chat}"), &format!("delete {id}"))
            .await
    }

    async fn open_staff_space(&self, _title: &str) -> Outcome {
        let n = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
        match self.call("open", "open").await {
            Outcome::Sent(_) => Outcome::Sent(Some(format!("space-{n}"))),
            other => other,
        }
    }

    async fn post_to_staff(&self, space: &str, post: &StaffPost) -> Outcome {
        self.call(space, &post.text).await
    }

    async fn close_staff_space(&self, space: &str) -> Outcome {
        self.call(space, "close").await
    }
}

/// Runs the worker(s) until `done` or 30 s, then stops them.
async fn run_until(services: &[&Service], fake: &Fake, done: impl Fn(&Fake) -> bool) {
    run_until_then(services, fake, done, Duration::ZERO).await;
}

/// Runs the worker(s) until `done` (or 30 s) and `grace` more, then stops them.
async fn run_until_then(
    services: &[&Service],
    fake: &Fake,
    done: impl Fn(&Fake) -> bool,
    grace: Duration,
) {
    let (stop, shutdown) = watch::channel(false);
    let monitor = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(fake) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(grace).await;
        let _ = stop.send(true);
    };
    let workers = futures_util::future::join_all(
        services
            .iter()
            .map(|s| kefu_service::delivery::run(s, fake, shutdown.clone())),
    );
    tokio::join!(workers, monitor);
}

async fn say(s: &Service, to: &ConversationRef, text: &str) {
    let m = Outgoing {
        conversation: to.clone(),
        text: text.to_owned(),
        buttons: Vec::new(),
        reply_to: None,
    };
    s.store().enqueue(&m, Utc::now()).await.unwrap();
}

fn service(store: kefu_store::Store, instance: &str) -> Service {
    let mut config = common::config();
    config.instance = instance.to_owned();
    Service::without_nlu(store, config)
}

#[tokio::test]
async fn destinations_go_out_concurrently_each_in_order_and_one_at_a_time() {
    for db in Db::each().await {
        let s = service(db.store().await, "a");
        for round in 0..5 {
            for u in 0..20 {
                say(&s, &user(u), &format!("u{u} line {round}")).await;
            }
        }
        let fake = Fake::with_latency(Duration::from_millis(30));
        run_until(&[&s], &fake, |f| f.sent().len() == 100).await;
        assert_eq!(fake.sent().len(), 100, "everything delivered");
        for u in 0..20 {
            let chat = format!("chat:{}", user(u).chat_id);
            let expected: Vec<String> = (0..5).map(|r| format!("u{u} line {r}")).collect();
            assert_eq!(fake.texts_to(&chat), expected, "in order, once each");
        }
        assert!(
            fake.most_in_flight.load(Ordering::SeqCst) > 4,
            "many destinations at once: {}",
            fake.most_in_flight.load(Ordering::SeqCst)
        );
        assert_eq!(
            fake.violations.load(Ordering::SeqCst),
            0,
            "never two sends to one destination at once"
        );
        assert!(
            s.store().pending_outbox(None, 10).await.unwrap().is_empty(),
            "every row marked delivered"
        );
    }
}

#[tokio::test]
async fn a_failed_row_holds_its_destination_back_until_it_goes_through() {
    let db = Db::sqlite();
    let s = service(db.store().await, "a");
    let (a, b) = (user(1), user(2));
    say(&s, &a, "first").await;
    say(&s, &a, "second").await;
    say(&s, &b, "other chat").await;
    let fake = Fake::default();
    fake.script("first", vec![Outcome::Transient("502 bad gateway".into())]);
    run_until(&[&s], &fake, |f| f.sent().len() == 3).await;
    assert_eq!(
        fake.texts_to(&format!("chat:{}", a.chat_id)),
        ["first", "second"],
        "the second waited for the first"
    );
    let calls = fake.calls.lock().unwrap().clone();
    let tries: Vec<Instant> = calls
        .iter()
        .filter(|(t, _)| t == "first")
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(tries.len(), 2, "tried again after the failure");
    assert!(
        tries[1] - tries[0] >= Duration::from_millis(1500),
        "after a backoff: {:?}",
        tries[1] - tries[0]
    );
    let other = calls.iter().find(|(t, _)| t == "other chat").unwrap().1;
    assert!(other < tries[1], "other destinations were not held back");
}

#[tokio::test]
async fn retry_after_waits_as_told_and_keeps_the_order() {
    let db = Db::sqlite();
    let s = service(db.store().await, "a");
    let a = user(1);
    say(&s, &a, "one").await;
    say(&s, &a, "two").await;
    let fake = Fake::default();
    fake.script(
        "one",
        vec![
            Outcome::RetryAfter(Duration::from_millis(300)),
            Outcome::RetryAfter(Duration::from_millis(300)),
        ],
    );
    run_until(&[&s], &fake, |f| f.sent().len() == 2).await;
    assert_eq!(
        fake.texts_to(&format!("chat:{}", a.chat_id)),
        ["one", "two"]
    );
    let calls = fake.calls.lock().unwrap().clone();
    let first = calls
        .iter()
        .filter(|(t, _)| t == "one")
        .map(|(_, at)| *at)
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 3);
    assert!(
        first[1] - first[0] >= Duration::from_millis(250),
        "waited as told"
    );
}

#[tokio::test]
async fn a_permanent_failure_is_recorded_with_its_reason_and_the_destination_goes_on() {
    for db in Db::each().await {
        let s = service(db.store().await, "a");
        let a = user(1);
        say(&s, &a, "refused").await;
        say(&s, &a, "after").await;
        let fake = Fake::default();
        fake.script(
            "refused",
            vec![Outcome::Permanent(
                "Forbidden: bot was blocked by the user".into(),
            )],
        );
        run_until(&[&s], &fake, |f| f.sent().len() == 1).await;
        assert_eq!(fake.texts_to(&format!("chat:{}", a.chat_id)), ["after"]);
        let failed = s
            .store()
            .failed_deliveries(None, Some(&a), 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].text, "refused");
        assert!(failed[0].error.contains("blocked"), "{:?}", failed[0].error);
    }
}

#[tokio::test]
async fn a_staff_space_is_opened_once_and_its_posts_follow_it_there() {
    for db in Db::each().await {
        let s = db
            .service_with("a", |c| c.staff_spaces = vec![PLATFORM.into()])
            .await;
        let alice = user(1);
        let opened = s
            .handle_inbound(&common::message_from(&alice, "m1", "转人工"), Utc::now())
            .await
            .unwrap();
        let kefu_service::Handled::Processed {
            ticket_opened: Some(ticket),
            ..
        } = opened
        else {
            panic!("a ticket opens: {opened:?}")
        };
        for (id, text) in [("m2", "补充一 line one"), ("m3", "补充二 line two")] {
            s.handle_inbound(&common::message_from(&alice, id, text), Utc::now())
                .await
                .unwrap();
        }
        let fake = Fake::default();
        // The platform fails the first attempt to open the space.
        fake.script("open", vec![Outcome::Transient("timeout".into())]);
        run_until(&[&s], &fake, |f| {
            f.texts_to("space-2").iter().any(|t| t.contains("line two"))
        })
        .await;
        let posts = fake.texts_to("space-2");
        assert!(
            posts.len() >= 3,
            "summary and both lines: {posts:?} {:?}",
            fake.sent()
        );
        assert!(
            posts[0].contains(&ticket.code),
            "the summary first: {posts:?}"
        );
        let one = posts.iter().position(|t| t.contains("line one")).unwrap();
        let two = posts.iter().position(|t| t.contains("line two")).unwrap();
        assert!(one < two, "in order: {posts:?}");
        assert!(
            fake.sent()
                .iter()
                .all(|(d, _)| d == "space-2" || d.starts_with("chat:") || d == "open"),
            "nothing went to another space: {:?}",
            fake.sent()
        );
        assert_eq!(
            s.staff_space(ticket.id, PLATFORM).await.unwrap().as_deref(),
            Some("space-2"),
            "the space is recorded"
        );
    }
}

#[tokio::test]
async fn two_workers_on_one_database_send_each_row_once_in_order() {
    for db in Db::each().await {
        let a = service(db.store().await, "instance-a");
        let b = service(db.store().await, "instance-b");
        for round in 0..4 {
            for u in 0..10 {
                say(&a, &user(u), &format!("u{u} #{round}")).await;
            }
        }
        let fake = Fake::with_latency(Duration::from_millis(20));
        // The workers keep running a while after the last row, for a duplicate to show.
        run_until_then(
            &[&a, &b],
            &fake,
            |f| f.sent().len() >= 40,
            Duration::from_millis(600),
        )
        .await;
        assert_eq!(fake.sent().len(), 40, "each row once");
        for u in 0..10 {
            let chat = format!("chat:{}", user(u).chat_id);
            let expected: Vec<String> = (0..4).map(|r| format!("u{u} #{r}")).collect();
            assert_eq!(fake.texts_to(&chat), expected);
        }
        assert_eq!(fake.violations.load(Ordering::SeqCst), 0);
    }
}
