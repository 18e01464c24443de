//! Leadership of a platform connection across instances ([`Service::lead`]): one runs it at a
//! time; a clean stop hands it over at once; a holder that dies without a word is replaced once
//! its lease expires, never before; a holder whose lease was taken stops. On SQLite, and on
//! PostgreSQL when `KEFU_TEST_DATABASE_URL` is set.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::Db;
use kefu_service::Service;
use kefu_service::leadership::Role;
use tokio::sync::watch;

const LEASE: &str = "telegram:poll:42";
const TERM: Duration = Duration::from_secs(2);
/// The longest any wait below may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Who runs the connection, and the most that ever ran it at once.
#[derive(Default)]
struct Connection {
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    terms: Mutex<Vec<String>>,
}

/// Counts itself out when the work ends, however it ends (a task aborted mid-way too).
struct Running(Arc<Connection>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `service.lead` in a task until `shutdown`; the work records its term and waits for its stop.
fn spawn_instance(
    service: Arc<Service>,
    connection: Arc<Connection>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let name = service.instance().to_owned();
        service
            .lead(LEASE, shutdown, |mut stop| {
                let connection = connection.clone();
                let name = name.clone();
                async move {
                    let now = connection.running.fetch_add(1, Ordering::SeqCst) + 1;
                    connection.most_at_once.fetch_max(now, Ordering::SeqCst);
                    connection.terms.lock().unwrap().push(name);
                    let _running = Running(connection.clone());
                    let _ = stop.wait_for(|s| *s).await;
                }
            })
            .await;
    })
}

fn role(s: &Service) -> Option<Role> {
    s.roles()
        .into_iter()
        .find(|(n, _)| n == LEASE)
        .map(|(_, r)| r)
}

/// Waits until `pred` holds, or fails the test naming `what`.
async fn wait_for(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn services(db: &Db, names: &[&str]) -> Vec<Arc<Service>> {
    let mut out = Vec::new();
    for name in names {
        out.push(Arc::new(
            db.service_with(name, |c| c.lease_term = TERM).await,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_runs_a_connection_and_another_takes_over_when_it_stops_or_dies() {
    for db in Db::each().await {
        let connection = Arc::new(Connection::default());
        let instances = services(&db, &["a", "b", "c"]).await;
        let mut stops = Vec::new();
        let mut tasks = Vec::new();
        for s in &instances {
            let (stop, shutdown) = watch::channel(false);
            stops.push(stop);
            tasks.push(spawn_instance(s.clone(), connection.clone(), shutdown));
        }
        let leading = |instances: &[Arc<Service>]| {
            instances
                .iter()
                .filter(|s| role(s) == Some(Role::Leading))
                .count()
        };
        wait_for("a leader", || {
            connection.running.load(Ordering::SeqCst) == 1
                && instances.iter().all(|s| role(s).is_some())
        })
        .await;
        assert_eq!(leading(&instances), 1);
        // Several renewals later, still the same single leader.
        tokio::time::sleep(TERM * 2).await;
        assert_eq!(connection.terms.lock().unwrap().len(), 1);
        let first = connection.terms.lock().unwrap()[0].clone();
        let holder = db.store().await.lease_holder(LEASE).await.unwrap().unwrap();
        assert_eq!(holder.0, first, "the lease row names the leader");

        // A clean stop gives the lease up: another leads.
        let i = instances
            .iter()
            .position(|s| s.instance() == first)
            .unwrap();
        stops[i].send(true).unwrap();
        tasks.remove(i).await.unwrap();
        stops.remove(i);
        let left: Vec<Arc<Service>> = instances
            .iter()
            .filter(|s| s.instance() != first)
            .cloned()
            .collect();
        wait_for("a second leader", || {
            connection.terms.lock().unwrap().len() == 2
        })
        .await;
        let second = connection.terms.lock().unwrap()[1].clone();
        assert_ne!(second, first);

        // The second dies without a word (its task is aborted: no release): the last one waits
        // for the lease to expire, then leads.
        let j = left.iter().position(|s| s.instance() == second).unwrap();
        let died = Instant::now();
        let expires = db
            .store()
            .await
            .lease_holder(LEASE)
            .await
            .unwrap()
            .unwrap()
            .1;
        tasks[j].abort();
        wait_for("the last instance to take over", || {
            connection.terms.lock().unwrap().len() == 3
        })
        .await;
        let third = connection.terms.lock().unwrap()[2].clone();
        assert!(third != first && third != second);
        assert!(
            Utc::now() >= expires,
            "taken over before the dead holder's lease expired (died {:?} ago)",
            died.elapsed()
        );
        assert_eq!(
            connection.most_at_once.load(Ordering::SeqCst),
            1,
            "never two at once"
        );
        for stop in &stops {
            let _ = stop.send(true);
        }
        for t in tasks {
            let _ = t.await;
        }
        assert_eq!(connection.running.load(Ordering::SeqCst), 0);
        assert_eq!(
            db.store().await.lease_holder(LEASE).await.unwrap(),
            None,
            "the last leader gave the lease up at shutdown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_was_taken_stops_its_work_and_stands_by() {
    for db in Db::each().await {
        let connection = Arc::new(Connection::default());
        let instances = services(&db, &["a"]).await;
        let (stop, shutdown) = watch::channel(false);
        let task = spawn_instance(instances[0].clone(), connection.clone(), shutdown);
        wait_for("the leader", || {
            connection.running.load(Ordering::SeqCst) == 1
        })
        .await;
        // Another instance got the lease (say, this one's clock ran late and its term ran out).
        let store = db.store().await;
        assert!(store.release_lease(LEASE, "a").await.unwrap());
        let now = Utc::now();
        assert!(
            store
                .acquire_lease(LEASE, "thief", now + chrono::TimeDelta::minutes(5), now)
                .await
                .unwrap()
        );
        wait_for("the work to stop", || {
            connection.running.load(Ordering::SeqCst) == 0
        })
        .await;
        wait_for("standing by", || {
            role(&instances[0]) == Some(Role::StandingBy)
        })
        .await;
        assert_eq!(
            store.lease_holder(LEASE).await.unwrap().unwrap().0,
            "thief",
            "a leader that lost its lease does not give away someone else's"
        );
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(role(&instances[0]), None);
    }
}
