//! The store suite: every test is an async fn taking a fresh [`TestDb`], run against each backend
//! by `store_suite!` (see `tests/store.rs`).
//!
//! - this file: the machinery, shared helpers, migrations, units of work and tickets;
//! - `inbound`: recording inbound messages, their handling leases, recovery and late redaction;
//! - `outbox`: deliveries, their per-destination leases, retries and failures;
//! - `coordination`: named leases between instances, dead letters and platform state;
//! - `retention`: deleting old finished history.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed expectation should panic with the reason"
)]

mod coordination;
mod inbound;
mod outbox;
mod retention;

pub use coordination::*;
pub use inbound::*;
pub use outbox::*;
pub use retention::*;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kefu_core::delivery::{Delivery, StaffFile, StaffPost};
use kefu_core::model::{
    Button, ConversationRef, Detail, Inbound, Outgoing, Priority, Redacted, Sender, Ticket,
    TicketStatus, TranscriptLine,
};
use kefu_store::{
    Backend, CancelOutcome, ClaimOutcome, InboundOutcome, Miss, NewLine, NewTicket, ReleaseOutcome,
    ResolveOutcome, Store, StoreError, StoreOptions, StoredInbound, UnitOfWork,
};
use serde_json::json;
use tokio::sync::Barrier;

/// Lists the suite once; `store_suite!(run)` expands to one `#[tokio::test]` per test, each
/// calling `run(suite::name)`.
macro_rules! store_suite {
    ($run:path) => {
        $crate::suite::store_suite!(@tests $run;
            migrations_apply_twice_idempotently,
            an_upgraded_database_keeps_its_unhandled_messages_and_pending_deliveries,
            a_repeated_inbound_message_is_recorded_once,
            a_committed_unit_of_work_is_visible_as_a_whole,
            a_dropped_unit_of_work_leaves_nothing_but_the_message_to_handle_again,
            a_unit_of_work_reads_its_own_uncommitted_writes,
            concurrent_units_of_work_on_one_conversation_lose_no_update,
            concurrent_claims_have_exactly_one_winner,
            units_of_work_that_read_before_writing_survive_contention,
            claim_next_hands_out_distinct_tickets_under_concurrency,
            claim_next_serves_the_most_urgent_then_the_oldest,
            open_tickets_are_ordered_by_priority_then_age_with_waiting_time,
            queue_position_counts_the_tickets_served_first,
            claim_reports_why_it_did_not_claim,
            resolve_needs_the_holder_and_cancel_needs_a_queued_ticket,
            release_gives_a_ticket_back_to_the_queue_only_from_its_holder,
            tickets_round_trip_every_field,
            a_duplicate_ticket_code_is_refused,
            outbox_rows_stay_pending_until_delivered_and_retry_when_due,
            ratings_are_kept_per_ticket_and_checked,
            misses_are_aggregated_by_text_most_frequent_first,
            stored_text_is_exactly_the_redacted_text_and_secrets_never_reach_the_database,
            handling_time_is_the_median_of_recent_claims,
            users_keep_their_latest_name_and_chosen_language,
            staff_threads_map_tickets_both_ways,
            transcripts_keep_the_order_lines_were_written,
            pending_outbox_is_listed_per_platform_and_per_conversation,
            chat_routes_map_conversations_both_ways,
            last_activity_is_the_latest_transcript_line,
            a_turn_s_lines_are_tagged_with_the_ticket_it_opened,
            // inbound
            a_live_inbound_lease_is_never_taken_over_and_an_expired_one_exactly_once,
            concurrent_recoveries_share_out_expired_messages_without_duplicates,
            a_message_waits_while_an_earlier_one_of_its_conversation_is_leased,
            a_conversations_next_waiting_message_is_taken_once_the_one_before_is_done,
            recovery_takes_messages_in_the_order_they_were_stored_up_to_its_limit,
            a_message_whose_handling_keeps_failing_is_set_aside_after_max_attempts,
            a_turn_being_committed_is_not_taken_over,
            count_recent_inbound_counts_within_the_window_only,
            redact_inbound_replaces_the_text_in_all_three_places_and_nowhere_else,
            // outbox
            only_the_first_undelivered_row_of_a_destination_is_leased,
            concurrent_outbox_workers_never_share_a_row_or_a_destination,
            a_row_leased_by_a_dead_worker_is_leased_again_once_its_lease_expires,
            a_worker_whose_row_was_taken_over_can_no_longer_settle_it,
            retry_later_holds_the_destination_back_until_due,
            a_failed_row_is_given_up_with_its_reason_and_its_destination_goes_on,
            every_delivery_kind_round_trips_through_the_outbox,
            // coordination
            named_leases_are_exclusive_renewable_taken_over_after_expiry_and_released,
            concurrent_instances_never_hold_one_named_lease_together,
            dead_letters_and_platform_state_round_trip,
            // retention
            prune_deletes_only_finished_history_older_than_the_cut_off,
            instances_pruning_at_once_delete_each_row_once,
        );
    };
    (@tests $run:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $run($crate::suite::$name).await;
            }
        )*
    };
}
pub(crate) use store_suite;

/// One test's database: a SQLite file in its own temporary directory, or a PostgreSQL schema of
/// its own.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// What `Store::connect` is given.
    pub url: String,
    /// Where SQLite keeps the file (to scan its bytes).
    pub sqlite_file: Option<PathBuf>,
    /// The PostgreSQL schema (to scan its tables).
    pub pg_schema: Option<String>,
}

impl TestDb {
    /// A new pool on the test database (migrations applied).
    pub async fn connect(&self) -> Store {
        let options = StoreOptions {
            max_connections: 8,
            ..StoreOptions::default()
        };
        Store::connect_with(&self.url, &options)
            .await
            .expect("connect to the test database")
    }

    /// Whether `needle` occurs anywhere in what the database stored: the SQLite file and its WAL
    /// byte for byte, or every row of every table of the PostgreSQL schema as text.
    pub async fn raw_contains(&self, store: &Store, needle: &str) -> bool {
        match (store, &self.sqlite_file, &self.pg_schema) {
            (Store::Sqlite(_), Some(file), _) => {
                let mut found = false;
                for suffix in ["", "-wal", "-journal"] {
                    let path = PathBuf::from(format!("{}{suffix}", file.display()));
                    if let Ok(bytes) = std::fs::read(&path) {
                        found |= bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
                    }
                }
                found
            }
            (Store::Postgres(pool), _, Some(schema)) => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                )
                .bind(schema)
                .fetch_all(pool)
                .await
                .unwrap();
                assert!(tables.len() >= 10, "schema {schema} has tables {tables:?}");
                for table in tables {
                    let sql = format!(
                        "SELECT COUNT(*) FROM \"{schema}\".\"{table}\" t WHERE strpos(t::text, $1) > 0"
                    );
                    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(needle)
                        .fetch_one(pool)
                        .await
                        .unwrap();
                    if n > 0 {
                        return true;
                    }
                }
                false
            }
            _ => panic!("test database and store backends differ"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn cref(user: &str) -> ConversationRef {
    ConversationRef {
        platform: "terminal".to_owned(),
        chat_id: format!("chat-{user}"),
        user_id: user.to_owned(),
    }
}

fn inbound(user: &str, message_id: &str, text: &str, at: DateTime<Utc>) -> Inbound {
    Inbound {
        conversation: cref(user),
        user_name: format!("User {user}"),
        platform_message_id: message_id.to_owned(),
        text: text.to_owned(),
        at,
        attachments: Vec::new(),
        pressed: false,
    }
}

fn new_ticket(
    conversation_id: i64,
    code: &str,
    priority: Priority,
    at: DateTime<Utc>,
) -> NewTicket {
    NewTicket {
        code: code.to_owned(),
        conversation_id,
        user_name: "Alice".to_owned(),
        intent: Some("deposit.missing".to_owned()),
        priority,
        reason: "user asked for a human".to_owned(),
        details: vec![],
        created_at: at,
    }
}

/// Opens a ticket in its own unit of work for `user`'s conversation.
async fn open(
    store: &Store,
    user: &str,
    code: &str,
    priority: Priority,
    at: DateTime<Utc>,
) -> Ticket {
    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref(user)).await.unwrap();
    let ticket = tx
        .open_ticket(&new_ticket(conversation.id, code, priority, at))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    ticket
}

fn outgoing(user: &str, text: &str) -> Outgoing {
    Outgoing {
        conversation: cref(user),
        text: text.to_owned(),
        buttons: vec![
            Button {
                label: "Yes".to_owned(),
                payload: "/yes".to_owned(),
            },
            Button {
                label: "转人工".to_owned(),
                payload: "/human".to_owned(),
            },
        ],
        reply_to: Some("m-1".to_owned()),
    }
}

fn outgoing_to(platform: &str, chat: &str, user: &str, text: &str) -> Outgoing {
    Outgoing {
        conversation: ConversationRef {
            platform: platform.to_owned(),
            chat_id: chat.to_owned(),
            user_id: user.to_owned(),
        },
        text: text.to_owned(),
        buttons: vec![],
        reply_to: None,
    }
}

/// The instance that records and handles messages in most tests.
const OWNER: &str = "instance-1";

/// Records `message`, its text taken as already redacted, leased to [`OWNER`] for a minute.
async fn record(store: &Store, message: &Inbound, received_at: DateTime<Utc>) -> InboundOutcome {
    store
        .record_inbound(
            message,
            &Redacted::of(&message.text),
            OWNER,
            received_at + TimeDelta::seconds(60),
            received_at,
        )
        .await
        .unwrap()
}

/// The id of a message [`record`] found new.
async fn record_new(store: &Store, message: &Inbound, received_at: DateTime<Utc>) -> i64 {
    match record(store, message, received_at).await {
        InboundOutcome::New(id) => id,
        InboundOutcome::Duplicate => panic!("{message:?} should be new"),
    }
}

/// What recovery would handle again at `now`: every message nobody finished whose lease expired,
/// taken over by `owner` (for an hour, with no attempt limit in reach).
async fn take_over_all(store: &Store, owner: &str, now: DateTime<Utc>) -> Vec<StoredInbound> {
    store
        .claim_stale_inbound(owner, now + TimeDelta::hours(1), 100, 1000, now)
        .await
        .unwrap()
}

fn ids_of(messages: &[StoredInbound]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

/// How many migrations the backend's directory holds: each must be applied exactly once.
fn migration_files(backend: Backend) -> usize {
    let dir = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "sql")
        })
        .count()
}

/// The rows of `_sqlx_migrations` that applied successfully.
async fn applied_migrations(store: &Store) -> i64 {
    let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

pub async fn migrations_apply_twice_idempotently(db: TestDb) {
    let first = db.connect().await;
    assert_eq!(
        record(&first, &inbound("a", "m1", "hi", t(0)), t(1)).await,
        InboundOutcome::New(1)
    );
    first.close().await;

    // Connecting again re-runs the migrator, which must skip what is applied and keep the data.
    let second = db.connect().await;
    let third = db.connect().await;
    assert_eq!(
        record(&second, &inbound("a", "m1", "hi", t(0)), t(2)).await,
        InboundOutcome::Duplicate
    );
    assert_eq!(take_over_all(&third, "recovery", t(100)).await.len(), 1);
    let files = migration_files(third.backend());
    assert!(files >= 3, "migrations found: {files}");
    assert_eq!(
        applied_migrations(&third).await,
        i64::try_from(files).unwrap(),
        "each migration recorded once"
    );
}

/// A database written by the schema before leases and the delivery pipeline: what it held must
/// come through the upgrade usable — an unhandled message is handled, a pending reply delivered.
pub async fn an_upgraded_database_keeps_its_unhandled_messages_and_pending_deliveries(db: TestDb) {
    use sqlx::migrate::Migrator;
    use sqlx::types::Json;

    let backend = if db.sqlite_file.is_some() {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let dir = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let migrations = PathBuf::from(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")));
    let old = Migrator::new(migrations.as_path()).await.unwrap();
    let buttons = vec![Button {
        label: "转人工".to_owned(),
        payload: "/human".to_owned(),
    }];
    // The same statements on either pool ($n placeholders work on both).
    macro_rules! write_old_schema {
        ($pool:expr) => {{
            let pool = $pool;
            old.run_to(2, &pool).await.unwrap();
            sqlx::query(
                "INSERT INTO conversations (platform, chat_id, user_id) \
                 VALUES ('terminal', 'chat-a', 'a')",
            )
            .execute(&pool)
            .await
            .unwrap();
            let conversation_id: i64 = sqlx::query_scalar("SELECT id FROM conversations")
                .fetch_one(&pool)
                .await
                .unwrap();
            for (message_id, text, processed_at) in [
                ("m-1", "handled before the upgrade", Some(t(2))),
                ("m-2", "still waiting", None),
            ] {
                sqlx::query(
                    "INSERT INTO inbound_messages (platform, chat_id, platform_message_id, \
                     conversation_id, user_name, text, sent_at, received_at, processed_at) \
                     VALUES ('terminal', 'chat-a', $1, $2, 'User a', $3, $4, $4, $5)",
                )
                .bind(message_id)
                .bind(conversation_id)
                .bind(text)
                .bind(t(1))
                .bind(processed_at)
                .execute(&pool)
                .await
                .unwrap();
            }
            for (text, delivered_at) in [("sent already", Some(t(3))), ("not sent yet", None)] {
                sqlx::query(
                    "INSERT INTO outbox (platform, chat_id, user_id, text, buttons, reply_to, \
                     created_at, attempts, next_attempt_at, delivered_at, last_error) \
                     VALUES ('terminal', 'chat-a', 'a', $1, $2, 'm-2', $3, 2, $3, $4, 'timeout')",
                )
                .bind(text)
                .bind(Json(&buttons))
                .bind(t(2))
                .bind(delivered_at)
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }};
    }
    match backend {
        Backend::Sqlite => write_old_schema!(sqlx::SqlitePool::connect(&db.url).await.unwrap()),
        Backend::Postgres => write_old_schema!(sqlx::PgPool::connect(&db.url).await.unwrap()),
    }

    let store = db.connect().await;
    assert_eq!(
        applied_migrations(&store).await,
        i64::try_from(migration_files(backend)).unwrap()
    );
    let waiting = take_over_all(&store, "recovery", t(10)).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].text, "still waiting");
    assert_eq!(waiting[0].platform_message_id, "m-2");
    assert_eq!(waiting[0].conversation, cref("a"));
    assert_eq!(waiting[0].attachments, []);
    assert!(!waiting[0].pressed);
    assert_eq!(
        waiting[0].attempts, 1,
        "the take-over is its first recorded handling"
    );
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.finish_inbound(waiting[0].id, "recovery", t(11))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    let expected = Outgoing {
        conversation: cref("a"),
        text: "not sent yet".to_owned(),
        buttons,
        reply_to: Some("m-2".to_owned()),
    };
    let pending = store.pending_outbox(None, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].user_message(), Some(&expected));
    assert_eq!(pending[0].destination, "chat:chat-a");
    assert_eq!(pending[0].attempts, 2);
    assert_eq!(pending[0].last_error.as_deref(), Some("timeout"));
    let leased = store
        .lease_due_outbox("terminal", "worker", t(60), 10, t(10))
        .await
        .unwrap();
    assert_eq!(leased, pending);
    assert!(
        store
            .mark_delivered(leased[0].id, Some("sent-9"), t(12))
            .await
            .unwrap()
    );
    assert!(store.pending_outbox(None, 10).await.unwrap().is_empty());
}

pub async fn a_repeated_inbound_message_is_recorded_once(db: TestDb) {
    let store = db.connect().await;
    let message = inbound("a", "42", "where is my deposit", t(0));
    let first = store
        .record_inbound(&message, &Redacted::of(&message.text), OWNER, t(61), t(1))
        .await
        .unwrap();
    let InboundOutcome::New(id) = first else {
        panic!("first delivery should be new, got {first:?}");
    };
    assert_eq!(
        store
            .record_inbound(
                &message,
                &Redacted::of(&message.text),
                "instance-2",
                t(65),
                t(5)
            )
            .await
            .unwrap(),
        InboundOutcome::Duplicate
    );
    // Concurrent redeliveries, each to another instance: still one row.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let message = message.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_inbound(
                    &message,
                    &Redacted::of(&message.text),
                    &format!("other-{i}"),
                    t(66),
                    t(6),
                )
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), InboundOutcome::Duplicate);
    }
    // A redelivery takes no lease: the first recorder's stands, so nothing is stale yet…
    assert!(take_over_all(&store, "recovery", t(60)).await.is_empty());
    let mut tx = store.begin().await.unwrap();
    assert!(
        !tx.finish_inbound(id, "instance-2", t(7)).await.unwrap(),
        "a redelivery's instance does not hold the message"
    );
    tx.rollback().await.unwrap();
    // …and once it expired there is one message to handle again.
    let stored = take_over_all(&store, "recovery", t(100)).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    assert_eq!(
        stored[0].received_at,
        t(1),
        "the first delivery's time is kept"
    );
    assert_eq!(stored[0].text, "where is my deposit");
    assert_eq!(stored[0].sent_at, t(0));

    // The key is platform + chat + message id: the same id in another chat is another message.
    let mut elsewhere = message.clone();
    elsewhere.conversation.chat_id = "group-1".to_owned();
    let elsewhere = record_new(&store, &elsewhere, t(7)).await;
    let mut other_platform = message.clone();
    other_platform.conversation.platform = "telegram".to_owned();
    let other_platform = record_new(&store, &other_platform, t(7)).await;

    // Once handled it is no longer offered for handling again, and finishing twice is a no-op.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.finish_inbound(id, "recovery", t(101)).await.unwrap());
    assert!(!tx.finish_inbound(id, "recovery", t(102)).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        ids_of(&take_over_all(&store, "recovery-2", t(200)).await),
        [elsewhere, other_platform]
    );
}

/// Writes everything handling one message changes, in one unit of work: the message `inbound_id`
/// that [`OWNER`] recorded for `user`.
async fn write_everything(tx: &mut UnitOfWork, user: &str, inbound_id: i64) {
    // First in the turn: a turn whose message was taken over must not commit.
    assert!(tx.finish_inbound(inbound_id, OWNER, t(3)).await.unwrap());
    let conversation = tx.load_conversation(&cref(user)).await.unwrap();
    assert_eq!(conversation.state, None, "a new conversation has no state");
    tx.save_conversation(
        conversation.id,
        &json!({"mode": "queued", "misses": 0}),
        t(2),
    )
    .await
    .unwrap();
    assert!(
        tx.set_user_language("terminal", user, Some("en"))
            .await
            .unwrap()
    );
    tx.append_user_line(
        conversation.id,
        None,
        inbound_id,
        &NewLine::new(t(0), Sender::User, "my deposit never arrived"),
    )
    .await
    .unwrap();
    let ticket = tx
        .open_ticket(&new_ticket(conversation.id, "K7Q2", Priority::High, t(2)))
        .await
        .unwrap();
    tx.append_transcript(
        conversation.id,
        Some(ticket.id),
        &NewLine::new(
            t(2),
            Sender::Bot,
            "A human will take over. Your code is K7Q2.",
        ),
    )
    .await
    .unwrap();
    tx.enqueue(&outgoing(user, "A human will take over."), t(2))
        .await
        .unwrap();
    tx.record_miss(&Miss {
        text: Redacted::of("my deposit never arrived"),
        language: Some("en".to_owned()),
        intent_guess: Some("deposit.missing".to_owned()),
        confidence: Some(0.41),
        at: t(2),
        inbound_id: Some(inbound_id),
    })
    .await
    .unwrap();
}

pub async fn a_committed_unit_of_work_is_visible_as_a_whole(db: TestDb) {
    let store = db.connect().await;
    let message = inbound("a", "m-1", "my deposit never arrived", t(0));
    let inbound_id = record_new(&store, &message, t(1)).await;
    let mut tx = store.begin().await.unwrap();
    write_everything(&mut tx, "a", inbound_id).await;
    tx.commit().await.unwrap();

    let conversation = store.conversation(&cref("a")).await.unwrap().unwrap();
    assert_eq!(
        conversation.state,
        Some(json!({"mode": "queued", "misses": 0}))
    );
    assert_eq!(conversation.updated_at, Some(t(2)));
    assert_eq!(
        store
            .user("terminal", "a")
            .await
            .unwrap()
            .unwrap()
            .language
            .as_deref(),
        Some("en")
    );
    let transcript = store.transcript(&cref("a")).await.unwrap();
    assert_eq!(transcript.len(), 2);
    assert_eq!(transcript[0].sender, Sender::User);
    assert_eq!(transcript[1].sender, Sender::Bot);
    let ticket = store.ticket_by_code("K7Q2").await.unwrap().unwrap();
    assert_eq!(ticket.status, TicketStatus::Queued);
    assert_eq!(ticket.conversation, cref("a"));
    assert_eq!(
        store.ticket_transcript(ticket.id).await.unwrap(),
        transcript[1..]
    );
    assert_eq!(
        store.open_ticket_for(&cref("a")).await.unwrap(),
        Some(ticket)
    );
    assert_eq!(store.pending_outbox(None, 10).await.unwrap().len(), 1);
    assert_eq!(store.misses(10).await.unwrap().len(), 1);
    assert!(
        take_over_all(&store, "recovery", t(1000)).await.is_empty(),
        "handled: recovery has nothing to redo"
    );
}

pub async fn a_dropped_unit_of_work_leaves_nothing_but_the_message_to_handle_again(db: TestDb) {
    let store = db.connect().await;
    let message = |user| inbound(user, "m-1", "my deposit never arrived", t(0));
    let a = record_new(&store, &message("a"), t(1)).await;
    let b = record_new(&store, &message("b"), t(1)).await;
    {
        let mut tx = store.begin().await.unwrap();
        write_everything(&mut tx, "a", a).await;
        // Dropped without commit, as when the handler returns early with an error.
    }
    let mut tx = store.begin().await.unwrap();
    write_everything(&mut tx, "b", b).await;
    tx.rollback().await.unwrap();

    for user in ["a", "b"] {
        // The conversation and the user came with the message, recorded before the turn; what
        // the turn changed is gone.
        let conversation = store.conversation(&cref(user)).await.unwrap().unwrap();
        assert_eq!((conversation.state, conversation.updated_at), (None, None));
        assert!(store.transcript(&cref(user)).await.unwrap().is_empty());
        let known = store.user("terminal", user).await.unwrap().unwrap();
        assert_eq!(known.display_name, format!("User {user}"));
        assert_eq!(known.language, None);
    }
    assert_eq!(store.ticket_by_code("K7Q2").await.unwrap(), None);
    assert!(store.open_tickets(t(10)).await.unwrap().is_empty());
    assert!(store.pending_outbox(None, 10).await.unwrap().is_empty());
    assert!(store.misses(10).await.unwrap().is_empty());

    // The messages were not marked handled: a redelivery is still a duplicate, and once the
    // handler's lease ran out, recovery takes both over to handle them again.
    assert_eq!(
        record(&store, &message("a"), t(11)).await,
        InboundOutcome::Duplicate
    );
    assert!(take_over_all(&store, "recovery", t(60)).await.is_empty());
    let redo = take_over_all(&store, "recovery", t(100)).await;
    assert_eq!(ids_of(&redo), [a, b]);
    assert!(redo.iter().all(|m| m.text == "my deposit never arrived"));
}

/// Reads inside a unit of work see its own writes; others see none of them until it commits.
pub async fn a_unit_of_work_reads_its_own_uncommitted_writes(db: TestDb) {
    let store = db.connect().await;
    let earlier = open(&store, "b", "BBBB", Priority::Normal, t(0)).await;
    store
        .set_staff_thread(earlier.id, "telegram", "topic-5")
        .await
        .unwrap();

    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref("a")).await.unwrap();
    tx.append_transcript(
        conversation.id,
        None,
        &NewLine::new(t(10), Sender::User, "hello"),
    )
    .await
    .unwrap();
    let ticket = tx
        .open_ticket(&new_ticket(
            conversation.id,
            "TTTT",
            Priority::Normal,
            t(10),
        ))
        .await
        .unwrap();
    assert_eq!(tx.queued_count().await.unwrap(), 2);
    assert_eq!(
        tx.ticket_by_code("TTTT").await.unwrap().map(|t| t.id),
        Some(ticket.id)
    );
    let texts = |lines: Vec<TranscriptLine>| lines.into_iter().map(|l| l.text).collect::<Vec<_>>();
    assert_eq!(texts(tx.transcript(&cref("a")).await.unwrap()), ["hello"]);
    assert_eq!(
        tx.staff_thread(earlier.id, "telegram")
            .await
            .unwrap()
            .as_deref(),
        Some("topic-5")
    );
    assert_eq!(tx.staff_thread(ticket.id, "telegram").await.unwrap(), None);
    assert_eq!(tx.recent_handling_time(10).await.unwrap(), None);
    assert_eq!(
        tx.claim(earlier.id, "ann", t(70)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        tx.recent_handling_time(10).await.unwrap(),
        Some(TimeDelta::seconds(70))
    );
    assert_eq!(tx.queued_count().await.unwrap(), 1);

    assert_eq!(
        store.queued_count().await.unwrap(),
        1,
        "only BBBB, unclaimed"
    );
    assert_eq!(store.ticket_by_code("TTTT").await.unwrap(), None);
    assert!(store.transcript(&cref("a")).await.unwrap().is_empty());
    assert_eq!(store.recent_handling_time(10).await.unwrap(), None);
    tx.commit().await.unwrap();

    assert_eq!(store.queued_count().await.unwrap(), 1, "only TTTT");
    assert_eq!(
        store.recent_handling_time(10).await.unwrap(),
        Some(TimeDelta::seconds(70))
    );
    assert_eq!(
        texts(store.transcript(&cref("a")).await.unwrap()),
        ["hello"]
    );
}

pub async fn concurrent_units_of_work_on_one_conversation_lose_no_update(db: TestDb) {
    let store = db.connect().await;
    let tasks = 12;
    let barrier = Arc::new(Barrier::new(tasks));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let store = store.clone();
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut tx = store.begin().await.unwrap();
            let conversation = tx.load_conversation(&cref("a")).await.unwrap();
            let count = conversation
                .state
                .as_ref()
                .and_then(|s| s["count"].as_i64())
                .unwrap_or(0);
            // Give a racing transaction every chance to read the same count.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            tx.save_conversation(
                conversation.id,
                &json!({ "count": count + 1 }),
                t(i64::try_from(i).unwrap()),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let state = store.conversation(&cref("a")).await.unwrap().unwrap().state;
    assert_eq!(state, Some(json!({ "count": tasks })));
}

pub async fn concurrent_claims_have_exactly_one_winner(db: TestDb) {
    let store = db.connect().await;
    let ticket = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let staff = 16;
    let barrier = Arc::new(Barrier::new(staff));
    let mut handles = Vec::new();
    for i in 0..staff {
        let store = store.clone();
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            let name = format!("staff-{i}");
            barrier.wait().await;
            let outcome = store.claim(ticket.id, &name, t(60)).await.unwrap();
            (name, outcome)
        }));
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for handle in handles {
        let (name, outcome) = handle.await.unwrap();
        match outcome {
            ClaimOutcome::Claimed => winners.push(name),
            ClaimOutcome::AlreadyClaimedBy(holder) => losers.push(holder),
            other => panic!("unexpected claim outcome {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(losers.len(), staff - 1);
    assert!(
        losers.iter().all(|holder| *holder == winners[0]),
        "losers see the winner"
    );
    let claimed = store.ticket(ticket.id).await.unwrap().unwrap();
    assert_eq!(claimed.status, TicketStatus::Claimed);
    assert_eq!(claimed.assignee.as_deref(), Some(winners[0].as_str()));
    assert_eq!(claimed.claimed_at, Some(t(60)));
}

/// On SQLite a deferred transaction that reads, then writes after another writer committed, fails
/// with `SQLITE_BUSY` that no busy timeout retries; units of work take the write lock up front
/// (`BEGIN IMMEDIATE`) so this cannot happen.
pub async fn units_of_work_that_read_before_writing_survive_contention(db: TestDb) {
    let store = db.connect().await;
    let ticket = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let staff = 12;
    let barrier = Arc::new(Barrier::new(staff));
    let mut handles = Vec::new();
    for i in 0..staff {
        let store = store.clone();
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut tx = store.begin().await?;
            let seen = tx.ticket(ticket.id).await?.expect("ticket exists");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let outcome = tx.claim(seen.id, &format!("staff-{i}"), t(10)).await?;
            let conversation_id = tx.load_conversation(&cref("a")).await?.id;
            tx.append_transcript(
                conversation_id,
                Some(seen.id),
                &NewLine::new(
                    t(10),
                    Sender::Staff(format!("staff-{i}")),
                    &format!("{outcome:?}"),
                ),
            )
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(outcome)
        }));
    }
    let mut claimed = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(ClaimOutcome::Claimed) => claimed += 1,
            Ok(ClaimOutcome::AlreadyClaimedBy(_)) => {}
            other => panic!("a unit of work failed under contention: {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
    assert_eq!(
        store.ticket_transcript(ticket.id).await.unwrap().len(),
        staff
    );
}

pub async fn claim_next_hands_out_distinct_tickets_under_concurrency(db: TestDb) {
    let store = db.connect().await;
    let tickets = 10;
    for i in 0..tickets {
        open(
            &store,
            &format!("u{i}"),
            &format!("C{i:03}"),
            Priority::Normal,
            t(i),
        )
        .await;
    }
    let staff = 16;
    let barrier = Arc::new(Barrier::new(staff));
    let mut handles = Vec::new();
    for i in 0..staff {
        let store = store.clone();
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .claim_next(&format!("staff-{i}"), t(100))
                .await
                .unwrap()
        }));
    }
    let mut got = Vec::new();
    for handle in handles {
        if let Some(ticket) = handle.await.unwrap() {
            assert_eq!(ticket.status, TicketStatus::Claimed);
            got.push(ticket.id);
        }
    }
    let distinct: HashSet<i64> = got.iter().copied().collect();
    assert_eq!(
        got.len(),
        usize::try_from(tickets).unwrap(),
        "every ticket handed out: {got:?}"
    );
    assert_eq!(
        distinct.len(),
        got.len(),
        "no ticket handed out twice: {got:?}"
    );
    assert!(store.claim_next("late", t(101)).await.unwrap().is_none());
}

pub async fn claim_next_serves_the_most_urgent_then_the_oldest(db: TestDb) {
    let store = db.connect().await;
    let low = open(&store, "a", "LOW1", Priority::Low, t(0)).await;
    let normal_old = open(&store, "b", "NRM1", Priority::Normal, t(1)).await;
    let urgent = open(&store, "c", "URG1", Priority::Urgent, t(5)).await;
    let normal_new = open(&store, "d", "NRM2", Priority::Normal, t(3)).await;
    let mut order = Vec::new();
    while let Some(ticket) = store.claim_next("staff", t(10)).await.unwrap() {
        assert_eq!(ticket.assignee.as_deref(), Some("staff"));
        order.push(ticket.id);
    }
    assert_eq!(order, [urgent.id, normal_old.id, normal_new.id, low.id]);
}

pub async fn open_tickets_are_ordered_by_priority_then_age_with_waiting_time(db: TestDb) {
    let store = db.connect().await;
    let low = open(&store, "a", "LOW1", Priority::Low, t(0)).await;
    let normal_old = open(&store, "b", "NRM1", Priority::Normal, t(10)).await;
    let high = open(&store, "c", "HIG1", Priority::High, t(20)).await;
    let urgent = open(&store, "d", "URG1", Priority::Urgent, t(30)).await;
    let normal_new = open(&store, "e", "NRM2", Priority::Normal, t(40)).await;
    let gone = open(&store, "f", "GONE", Priority::Urgent, t(0)).await;
    assert_eq!(
        store.cancel(gone.id, t(41)).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        store.claim(high.id, "bob", t(50)).await.unwrap(),
        ClaimOutcome::Claimed
    );

    let open_tickets = store.open_tickets(t(100)).await.unwrap();
    let ids: Vec<i64> = open_tickets.iter().map(|o| o.ticket.id).collect();
    assert_eq!(
        ids,
        [urgent.id, high.id, normal_old.id, normal_new.id, low.id]
    );
    let waits: Vec<i64> = open_tickets
        .iter()
        .map(|o| o.waiting.num_seconds())
        .collect();
    // Queued: until now; claimed (high): until the claim.
    assert_eq!(waits, [70, 30, 90, 60, 100]);
}

pub async fn queue_position_counts_the_tickets_served_first(db: TestDb) {
    let store = db.connect().await;
    let a = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let b = open(&store, "b", "BBBB", Priority::Normal, t(10)).await;
    let c = open(&store, "c", "CCCC", Priority::Low, t(5)).await;
    assert_eq!(store.queue_position(a.id).await.unwrap(), Some(1));
    assert_eq!(store.queue_position(b.id).await.unwrap(), Some(2));
    assert_eq!(store.queue_position(c.id).await.unwrap(), Some(3));

    // An urgent ticket jumps the queue.
    let d = open(&store, "d", "DDDD", Priority::Urgent, t(20)).await;
    assert_eq!(store.queue_position(d.id).await.unwrap(), Some(1));
    assert_eq!(store.queue_position(c.id).await.unwrap(), Some(4));

    // Served tickets leave the queue; claimed ones have no position.
    assert_eq!(
        store.claim(d.id, "s", t(30)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.cancel(a.id, t(31)).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(store.queue_position(b.id).await.unwrap(), Some(1));
    assert_eq!(store.queue_position(c.id).await.unwrap(), Some(2));
    assert_eq!(store.queue_position(d.id).await.unwrap(), None);
    assert_eq!(store.queue_position(a.id).await.unwrap(), None);
    assert_eq!(store.queue_position(9999).await.unwrap(), None);
}

pub async fn claim_reports_why_it_did_not_claim(db: TestDb) {
    let store = db.connect().await;
    let a = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let b = open(&store, "b", "BBBB", Priority::Normal, t(0)).await;
    assert_eq!(
        store.claim(9999, "ann", t(1)).await.unwrap(),
        ClaimOutcome::NotFound
    );
    assert_eq!(
        store.claim(a.id, "ann", t(1)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.claim(a.id, "ann", t(2)).await.unwrap(),
        ClaimOutcome::AlreadyClaimedBy("ann".to_owned()),
        "claiming twice reports the holder, the caller's own name included"
    );
    assert_eq!(
        store.claim(a.id, "bob", t(2)).await.unwrap(),
        ClaimOutcome::AlreadyClaimedBy("ann".to_owned())
    );
    assert_eq!(
        store.ticket(a.id).await.unwrap().unwrap().claimed_at,
        Some(t(1))
    );
    assert_eq!(
        store.cancel(b.id, t(3)).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        store.claim(b.id, "bob", t(4)).await.unwrap(),
        ClaimOutcome::Closed
    );
}

pub async fn resolve_needs_the_holder_and_cancel_needs_a_queued_ticket(db: TestDb) {
    let store = db.connect().await;
    let a = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    assert_eq!(
        store.resolve(a.id, "ann", t(1)).await.unwrap(),
        ResolveOutcome::NotClaimed
    );
    assert_eq!(
        store.resolve(9999, "ann", t(1)).await.unwrap(),
        ResolveOutcome::NotFound
    );
    assert_eq!(
        store.claim(a.id, "ann", t(2)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.cancel(a.id, t(3)).await.unwrap(),
        CancelOutcome::AlreadyClaimedBy("ann".to_owned())
    );
    assert_eq!(
        store.resolve(a.id, "bob", t(3)).await.unwrap(),
        ResolveOutcome::HeldBy("ann".to_owned())
    );
    assert_eq!(
        store.resolve(a.id, "ann", t(4)).await.unwrap(),
        ResolveOutcome::Resolved
    );
    let resolved = store.ticket(a.id).await.unwrap().unwrap();
    assert_eq!(resolved.status, TicketStatus::Resolved);
    assert_eq!(resolved.resolved_at, Some(t(4)));
    assert_eq!(resolved.assignee.as_deref(), Some("ann"));
    assert_eq!(
        store.resolve(a.id, "ann", t(5)).await.unwrap(),
        ResolveOutcome::Closed
    );
    assert_eq!(
        store.cancel(a.id, t(5)).await.unwrap(),
        CancelOutcome::Closed
    );
    assert_eq!(store.open_ticket_for(&cref("a")).await.unwrap(), None);

    let b = open(&store, "b", "BBBB", Priority::Normal, t(0)).await;
    assert_eq!(
        store.cancel(b.id, t(6)).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let cancelled = store.ticket(b.id).await.unwrap().unwrap();
    assert_eq!(cancelled.status, TicketStatus::Cancelled);
    assert_eq!(
        cancelled.resolved_at,
        Some(t(6)),
        "resolved_at records when it closed"
    );
    assert_eq!(
        store.cancel(b.id, t(7)).await.unwrap(),
        CancelOutcome::Closed
    );
    assert_eq!(
        store.resolve(b.id, "ann", t(7)).await.unwrap(),
        ResolveOutcome::Closed
    );
    assert_eq!(
        store.cancel(9999, t(7)).await.unwrap(),
        CancelOutcome::NotFound
    );
}

pub async fn release_gives_a_ticket_back_to_the_queue_only_from_its_holder(db: TestDb) {
    let store = db.connect().await;
    let a = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let b = open(&store, "b", "BBBB", Priority::Normal, t(1)).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.release(a.id, "ann").await.unwrap(),
        ReleaseOutcome::NotClaimed
    );
    assert_eq!(
        tx.release(9999, "ann").await.unwrap(),
        ReleaseOutcome::NotFound
    );
    assert_eq!(
        tx.claim(a.id, "ann", t(10)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        tx.release(a.id, "bob").await.unwrap(),
        ReleaseOutcome::HeldBy("ann".to_owned())
    );
    assert_eq!(
        tx.ticket(a.id).await.unwrap().unwrap().assignee.as_deref(),
        Some("ann"),
        "a refused release changes nothing"
    );
    assert_eq!(
        tx.release(a.id, "ann").await.unwrap(),
        ReleaseOutcome::Released
    );
    tx.commit().await.unwrap();

    let released = store.ticket(a.id).await.unwrap().unwrap();
    assert_eq!(
        (released.status, released.assignee, released.claimed_at),
        (TicketStatus::Queued, None, None)
    );
    // Back in its old place: ahead of the ticket opened after it.
    assert_eq!(store.queue_position(a.id).await.unwrap(), Some(1));
    assert_eq!(store.queue_position(b.id).await.unwrap(), Some(2));
    assert_eq!(store.queued_count().await.unwrap(), 2);
    // Anyone may claim it again; once it is closed, there is nothing to release.
    assert_eq!(
        store.claim(a.id, "bob", t(20)).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.resolve(a.id, "bob", t(30)).await.unwrap(),
        ResolveOutcome::Resolved
    );
    assert_eq!(
        store.cancel(b.id, t(31)).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.release(a.id, "bob").await.unwrap(),
        ReleaseOutcome::Closed
    );
    assert_eq!(
        tx.release(b.id, "bob").await.unwrap(),
        ReleaseOutcome::Closed
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.ticket(a.id).await.unwrap().unwrap().status,
        TicketStatus::Resolved
    );
}

pub async fn tickets_round_trip_every_field(db: TestDb) {
    let store = db.connect().await;
    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref("a")).await.unwrap();
    let details = vec![
        Detail {
            name: "tx_id".to_owned(),
            value: Some("0x".to_owned() + &"ab".repeat(32)),
        },
        Detail {
            name: "amount".to_owned(),
            value: Some("1.5 USDT".to_owned()),
        },
        Detail {
            name: "network".to_owned(),
            value: None,
        },
    ];
    let created = t(0) + TimeDelta::nanoseconds(123_456_789);
    let opened = tx
        .open_ticket(&NewTicket {
            code: "Z9X8".to_owned(),
            conversation_id: conversation.id,
            user_name: "小明".to_owned(),
            intent: None,
            priority: Priority::Urgent,
            reason: "sensitive topic".to_owned(),
            details: details.clone(),
            created_at: created,
        })
        .await
        .unwrap();
    assert_eq!(tx.ticket(opened.id).await.unwrap().as_ref(), Some(&opened));
    assert_eq!(tx.queue_position(opened.id).await.unwrap(), Some(1));
    tx.commit().await.unwrap();
    let expected = Ticket {
        id: opened.id,
        code: "Z9X8".to_owned(),
        conversation: cref("a"),
        user_name: "小明".to_owned(),
        intent: None,
        priority: Priority::Urgent,
        status: TicketStatus::Queued,
        assignee: None,
        reason: "sensitive topic".to_owned(),
        details,
        // Stored at microsecond precision on both backends.
        created_at: t(0) + TimeDelta::microseconds(123_456),
        claimed_at: None,
        resolved_at: None,
    };
    assert_eq!(opened, expected);
    assert_eq!(
        store.ticket(opened.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.ticket_by_code("Z9X8").await.unwrap(), Some(expected));
    assert_eq!(store.ticket_by_code("NOPE").await.unwrap(), None);
}

pub async fn a_duplicate_ticket_code_is_refused(db: TestDb) {
    let store = db.connect().await;
    open(&store, "a", "SAME", Priority::Normal, t(0)).await;
    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref("b")).await.unwrap();
    let err = tx
        .open_ticket(&new_ticket(conversation.id, "SAME", Priority::Normal, t(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateTicketCode { code } if code == "SAME"),
        "{err:?}"
    );
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .open_ticket(&new_ticket(424_242, "OTHR", Priority::Normal, t(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownConversation { id: 424_242 }),
        "{err:?}"
    );
}

pub async fn outbox_rows_stay_pending_until_delivered_and_retry_when_due(db: TestDb) {
    let store = db.connect().await;
    let mut tx = store.begin().await.unwrap();
    let first = tx.enqueue(&outgoing("a", "first"), t(0)).await.unwrap();
    let second = tx.enqueue(&outgoing("b", "second"), t(1)).await.unwrap();
    tx.commit().await.unwrap();
    let lease = |store: &Store, owner: &'static str, now: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .lease_due_outbox("terminal", owner, now + TimeDelta::seconds(30), 10, now)
                .await
                .unwrap()
        }
    };
    assert!(lease(&store, "w1", t(-1)).await.is_empty(), "not due yet");
    let pending = store.pending_outbox(None, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(pending[0].user_message(), Some(&outgoing("a", "first")));
    assert_eq!(pending[0].platform, "terminal");
    assert_eq!(pending[0].destination, "chat:chat-a");
    assert_eq!(pending[0].attempts, 0);
    assert_eq!(pending[0].created_at, t(0));
    assert_eq!(pending[0].next_attempt_at, t(0));
    assert_eq!(pending[0].last_error, None);
    assert_eq!(
        store.pending_outbox(None, 1).await.unwrap().len(),
        1,
        "limit respected"
    );
    assert_eq!(
        store
            .lease_due_outbox("terminal", "w1", t(31), 1, t(1))
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        [first],
        "limit respected"
    );
    let leased = lease(&store, "w1", t(1)).await;
    assert_eq!(leased.iter().map(|m| m.id).collect::<Vec<_>>(), [second]);
    assert_eq!(leased[0], pending[1]);

    // A crash before delivery: the rows are still there for the next process, which leases them
    // once the dead worker's leases ran out.
    store.close().await;
    let store = db.connect().await;
    assert_eq!(store.pending_outbox(None, 10).await.unwrap().len(), 2);
    assert!(lease(&store, "w2", t(30)).await.is_empty(), "still leased");
    assert_eq!(
        lease(&store, "w2", t(32))
            .await
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        [first, second]
    );

    assert!(
        store
            .mark_delivered(first, Some("4711"), t(33))
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_delivered(first, Some("4712"), t(34))
            .await
            .unwrap(),
        "delivered once"
    );
    assert!(
        store
            .retry_later(second, "429 Too Many Requests", t(60), true)
            .await
            .unwrap()
    );
    assert!(
        lease(&store, "w2", t(59)).await.is_empty(),
        "waits for retry time"
    );
    let retry = lease(&store, "w2", t(60)).await;
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].id, second);
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(retry[0].next_attempt_at, t(60));
    assert_eq!(
        retry[0].last_error.as_deref(),
        Some("429 Too Many Requests")
    );
    // A platform's "retry after" is not the row's fault: it does not count as an attempt.
    assert!(
        store
            .retry_later(second, "retry after 10 s", t(70), false)
            .await
            .unwrap()
    );
    assert!(lease(&store, "w2", t(69)).await.is_empty());
    let retry = lease(&store, "w2", t(70)).await;
    assert_eq!(
        (retry[0].attempts, retry[0].last_error.as_deref()),
        (1, Some("retry after 10 s"))
    );
    assert!(store.mark_delivered(second, None, t(71)).await.unwrap());
    assert!(store.pending_outbox(None, 10).await.unwrap().is_empty());
    assert!(lease(&store, "w2", t(1000)).await.is_empty());
    assert!(
        !store.mark_failed(second, "late", t(2000)).await.unwrap(),
        "delivered stays delivered"
    );
    assert!(
        !store
            .retry_later(second, "late", t(2000), true)
            .await
            .unwrap()
    );
    assert!(!store.mark_delivered(9999, None, t(1)).await.unwrap());
}

pub async fn ratings_are_kept_per_ticket_and_checked(db: TestDb) {
    let store = db.connect().await;
    let a = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let b = open(&store, "b", "BBBB", Priority::Normal, t(0)).await;
    let mut tx = store.begin().await.unwrap();
    tx.record_rating(a.id, 5, None, t(10)).await.unwrap();
    tx.record_rating(a.id, 3, Some("慢了一点 but fine"), t(11))
        .await
        .unwrap();
    for bad in [0, 6] {
        let err = tx.record_rating(a.id, bad, None, t(12)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidRating { score } if score == bad),
            "{err:?}"
        );
    }
    tx.commit().await.unwrap();
    let ratings = store.ratings_for(a.id).await.unwrap();
    assert_eq!(
        ratings
            .iter()
            .map(|r| (r.ticket_id, r.score, r.comment.as_deref(), r.at))
            .collect::<Vec<_>>(),
        [(a.id, 3, Some("慢了一点 but fine"), t(11))],
        "one rating per ticket: the later score and comment replace the first"
    );
    assert!(store.ratings_for(b.id).await.unwrap().is_empty());
}

pub async fn misses_are_aggregated_by_text_most_frequent_first(db: TestDb) {
    let store = db.connect().await;
    let miss = |text: &str, guess: &str, confidence: f64, at: i64| Miss {
        text: Redacted::of(text),
        language: Some(if text.is_ascii() { "en" } else { "zh" }.to_owned()),
        intent_guess: Some(guess.to_owned()),
        confidence: Some(confidence),
        at: t(at),
        inbound_id: None,
    };
    for m in [
        miss("how to stake", "earn.intro", 0.2, 0),
        miss("怎么质押", "earn.intro", 0.3, 1),
        miss("怎么质押", "earn.apy", 0.5, 5),
        miss("how to stake", "earn.apy", 0.4, 2),
        miss("怎么质押", "earn.intro", 0.4, 3),
        miss("nft airdrop?", "airdrop", 0.1, 4),
        miss("nft airdrop?", "nft.intro", 0.2, 1),
    ] {
        store.record_miss(&m).await.unwrap();
    }
    let summary = store.misses(10).await.unwrap();
    let rows: Vec<(&str, i64, DateTime<Utc>, Option<&str>)> = summary
        .iter()
        .map(|s| {
            (
                s.text.as_str(),
                s.count,
                s.last_at,
                s.intent_guess.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("怎么质押", 3, t(5), Some("earn.apy")),
            // Equal counts: most recent first.
            ("nft airdrop?", 2, t(4), Some("airdrop")),
            ("how to stake", 2, t(2), Some("earn.apy")),
        ]
    );
    let zh = &summary[0];
    assert_eq!(zh.language.as_deref(), Some("zh"));
    assert!((zh.mean_confidence.unwrap() - 0.4).abs() < 1e-9);
    assert_eq!(store.misses(1).await.unwrap().len(), 1, "limit respected");
}

pub async fn stored_text_is_exactly_the_redacted_text_and_secrets_never_reach_the_database(
    db: TestDb,
) {
    let store = db.connect().await;
    // The "secret": twelve BIP-39 words the caller redacts before calling the store.
    let seed =
        "abandon ability able about above absent absorb abstract absurd abuse access accident";
    let raw = format!("help, my wallet words are {seed} is that safe?");
    // What the caller's redactor produced; tricky bytes on purpose (CJK, emoji, quotes, NUL-free
    // control characters, trailing spaces, CRLF).
    let redacted = "help, my wallet words are [redacted: seed phrase, 12 words] is that safe? \
                    钱包 🚀 \"q\" 'x' \\ \t tab  \r\nline2  ";
    let message = inbound("a", "m-secret", &raw, t(0));
    let InboundOutcome::New(_) = store
        .record_inbound(&message, &Redacted::of(redacted), OWNER, t(61), t(1))
        .await
        .unwrap()
    else {
        panic!("new message expected");
    };
    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref("a")).await.unwrap();
    tx.append_transcript(
        conversation.id,
        None,
        &NewLine::new(t(0), Sender::User, redacted),
    )
    .await
    .unwrap();
    let mut ticket = new_ticket(conversation.id, "SEED", Priority::Urgent, t(2));
    ticket.details = vec![Detail {
        name: "address".to_owned(),
        value: Some(redacted.to_owned()),
    }];
    let opened = tx.open_ticket(&ticket).await.unwrap();
    tx.enqueue(&outgoing("a", redacted), t(2)).await.unwrap();
    // Staff see it too: relayed, and in the transcript file of the ticket's first post.
    tx.enqueue_delivery(
        "telegram",
        &Delivery::StaffPost {
            ticket_id: opened.id,
            post: StaffPost {
                text: redacted.to_owned(),
                file: Some(StaffFile {
                    name: "SEED.txt".to_owned(),
                    heading: "Transcript:".to_owned(),
                    content: redacted.to_owned(),
                    attached_note: "Transcript attached.".to_owned(),
                }),
                ..StaffPost::default()
            },
        },
        t(2),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let stored = take_over_all(&store, "recovery", t(100)).await;
    assert_eq!(
        stored[0].text.as_bytes(),
        redacted.as_bytes(),
        "byte for byte"
    );
    assert_eq!(
        store.transcript(&cref("a")).await.unwrap()[0]
            .text
            .as_bytes(),
        redacted.as_bytes()
    );
    assert_eq!(
        store.ticket_by_code("SEED").await.unwrap().unwrap().details[0]
            .value
            .as_deref(),
        Some(redacted)
    );
    assert_eq!(
        store.pending_outbox(None, 10).await.unwrap()[0]
            .user_message()
            .map(|m| m.text.as_str()),
        Some(redacted)
    );

    // The scan itself works (finds what was stored)…
    assert!(
        db.raw_contains(&store, "[redacted: seed phrase, 12 words]")
            .await
    );
    // …and finds no trace of the secret the store was never given.
    assert!(!db.raw_contains(&store, "abandon ability able").await);
    assert!(!db.raw_contains(&store, "absurd abuse access").await);
}

pub async fn handling_time_is_the_median_of_recent_claims(db: TestDb) {
    let store = db.connect().await;
    assert_eq!(store.recent_handling_time(20).await.unwrap(), None);
    // Claimed after 60 s, 600 s, 120 s (in claim order), plus one still queued.
    let a = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let b = open(&store, "b", "BBBB", Priority::Normal, t(0)).await;
    let c = open(&store, "c", "CCCC", Priority::Normal, t(1000)).await;
    open(&store, "d", "DDDD", Priority::Normal, t(0)).await;
    store.claim(a.id, "s", t(60)).await.unwrap();
    store.claim(b.id, "s", t(600)).await.unwrap();
    store.claim(c.id, "s", t(1120)).await.unwrap();
    assert_eq!(
        store.recent_handling_time(20).await.unwrap(),
        Some(TimeDelta::seconds(120))
    );
    // The two most recent claims (600 s, 120 s): their median is the mean of the middle pair.
    assert_eq!(
        store.recent_handling_time(2).await.unwrap(),
        Some(TimeDelta::seconds(360))
    );
    assert_eq!(
        store.recent_handling_time(1).await.unwrap(),
        Some(TimeDelta::seconds(120))
    );
}

pub async fn users_keep_their_latest_name_and_chosen_language(db: TestDb) {
    let store = db.connect().await;
    let mut message = inbound("a", "1", "hi", t(0));
    record(&store, &message, t(0)).await;
    message.user_name = "Alice 🌸".to_owned();
    message.platform_message_id = "2".to_owned();
    record(&store, &message, t(1)).await;
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.set_user_language("terminal", "a", Some("zh"))
            .await
            .unwrap()
    );
    assert!(
        !tx.set_user_language("terminal", "nobody", Some("zh"))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let user = store.user("terminal", "a").await.unwrap().unwrap();
    assert_eq!(user.display_name, "Alice 🌸");
    assert_eq!(user.language.as_deref(), Some("zh"));
    assert_eq!(store.user("telegram", "a").await.unwrap(), None);
}

pub async fn staff_threads_map_tickets_both_ways(db: TestDb) {
    let store = db.connect().await;
    let a = open(&store, "a", "AAAA", Priority::Normal, t(0)).await;
    let b = open(&store, "b", "BBBB", Priority::Normal, t(0)).await;
    store
        .set_staff_thread(a.id, "telegram", "topic-17")
        .await
        .unwrap();
    store
        .set_staff_thread(a.id, "discord", "998877")
        .await
        .unwrap();
    store
        .set_staff_thread(b.id, "telegram", "topic-18")
        .await
        .unwrap();
    assert_eq!(
        store
            .staff_thread(a.id, "telegram")
            .await
            .unwrap()
            .as_deref(),
        Some("topic-17")
    );
    assert_eq!(
        store
            .staff_thread(a.id, "discord")
            .await
            .unwrap()
            .as_deref(),
        Some("998877")
    );
    assert_eq!(store.staff_thread(b.id, "discord").await.unwrap(), None);
    assert_eq!(
        store
            .ticket_by_staff_thread("telegram", "topic-18")
            .await
            .unwrap()
            .map(|t| t.id),
        Some(b.id)
    );
    // Re-mapping replaces the old thread.
    store
        .set_staff_thread(a.id, "telegram", "topic-99")
        .await
        .unwrap();
    assert_eq!(
        store
            .ticket_by_staff_thread("telegram", "topic-17")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .ticket_by_staff_thread("telegram", "topic-99")
            .await
            .unwrap()
            .map(|t| t.id),
        Some(a.id)
    );
    assert_eq!(
        store.backend(),
        if db.sqlite_file.is_some() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    );
}

pub async fn transcripts_keep_the_order_lines_were_written(db: TestDb) {
    let store = db.connect().await;
    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref("a")).await.unwrap();
    // A bot line at 10.5 s, then the user's next message stamped by the platform in whole seconds.
    let bot = NewLine::new(
        t(10) + chrono::TimeDelta::milliseconds(500),
        Sender::Bot,
        "staff joined",
    );
    let user = NewLine::new(t(10), Sender::User, "thanks");
    tx.append_transcript(conversation.id, None, &bot)
        .await
        .unwrap();
    tx.append_transcript(conversation.id, None, &user)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let texts: Vec<String> = store
        .transcript(&cref("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(texts, ["staff joined", "thanks"]);
}

pub async fn pending_outbox_is_listed_per_platform_and_per_conversation(db: TestDb) {
    let store = db.connect().await;
    let mut tx = store.begin().await.unwrap();
    // Enqueued out of time order: the lists are in the order rows were written.
    let d2 = tx
        .enqueue(&outgoing_to("discord", "c1", "u1", "d2"), t(2))
        .await
        .unwrap();
    let t1 = tx
        .enqueue(&outgoing_to("telegram", "42", "42", "t1"), t(1))
        .await
        .unwrap();
    let d1 = tx
        .enqueue(&outgoing_to("discord", "c1", "u1", "d1"), t(1))
        .await
        .unwrap();
    let other_user = tx
        .enqueue(&outgoing_to("discord", "c1", "u2", "other user"), t(1))
        .await
        .unwrap();
    let other_chat = tx
        .enqueue(&outgoing_to("discord", "c2", "u1", "other chat"), t(3))
        .await
        .unwrap();
    let later = tx
        .enqueue(&outgoing_to("discord", "c1", "u1", "later"), t(100))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ids = |v: Vec<kefu_store::OutboxMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store.pending_outbox(Some("discord"), 10).await.unwrap()),
        [d2, d1, other_user, other_chat, later]
    );
    assert_eq!(
        ids(store.pending_outbox(Some("discord"), 2).await.unwrap()),
        [d2, d1],
        "limit respected"
    );
    assert_eq!(
        ids(store.pending_outbox(Some("telegram"), 10).await.unwrap()),
        [t1]
    );
    assert!(
        store
            .pending_outbox(Some("slack"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.pending_outbox(None, 10).await.unwrap()),
        [d2, t1, d1, other_user, other_chat, later]
    );
    // What a platform's worker may send: due rows only, and of one chat only its first row (d2
    // is not due at 1 s, and holds back the due d1 and the other user's row behind it).
    let lease = |now| {
        let store = store.clone();
        async move {
            ids(store
                .lease_due_outbox("discord", "w", now + TimeDelta::seconds(5), 10, now)
                .await
                .unwrap())
        }
    };
    assert!(lease(t(0)).await.is_empty(), "not due yet");
    assert!(lease(t(1)).await.is_empty(), "d2 first");
    assert_eq!(lease(t(10)).await, [d2, other_chat]);

    let c1u1 = ConversationRef {
        platform: "discord".to_owned(),
        chat_id: "c1".to_owned(),
        user_id: "u1".to_owned(),
    };
    assert_eq!(
        ids(store
            .pending_outbox_for_conversation(&c1u1, t(10))
            .await
            .unwrap()),
        [d2, d1]
    );
    let pending = store
        .pending_outbox_for_conversation(&c1u1, t(100))
        .await
        .unwrap();
    assert_eq!(
        pending[0].user_message(),
        Some(&outgoing_to("discord", "c1", "u1", "d2"))
    );
    assert_eq!(pending.iter().map(|m| m.id).next_back(), Some(later));

    // Delivered and retried rows follow the same rules as `pending_outbox`.
    assert!(store.mark_delivered(d1, Some("s1"), t(11)).await.unwrap());
    assert!(store.retry_later(d2, "timeout", t(50), true).await.unwrap());
    assert!(
        store
            .pending_outbox_for_conversation(&c1u1, t(49))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store
            .pending_outbox_for_conversation(&c1u1, t(50))
            .await
            .unwrap()),
        [d2]
    );
    // other_chat is still leased (until 15 s) to the worker that took it at 10 s.
    assert!(lease(t(14)).await.is_empty());
    assert_eq!(lease(t(50)).await, [d2, other_chat]);
    assert_eq!(
        ids(store.pending_outbox(None, 10).await.unwrap()),
        [d2, t1, other_user, other_chat, later]
    );
}

pub async fn chat_routes_map_conversations_both_ways(db: TestDb) {
    let store = db.connect().await;
    let guild = |user: &str| ConversationRef {
        platform: "discord".to_owned(),
        chat_id: "channel-1".to_owned(),
        user_id: user.to_owned(),
    };
    assert_eq!(store.chat_route(&guild("u1")).await.unwrap(), None);
    assert_eq!(
        store
            .conversation_for_route("discord", "thread-9")
            .await
            .unwrap(),
        None
    );
    store
        .set_chat_route(&guild("u1"), "thread-9", t(0))
        .await
        .unwrap();
    store
        .set_chat_route(&guild("u2"), "thread-10", t(1))
        .await
        .unwrap();
    assert_eq!(
        store.chat_route(&guild("u1")).await.unwrap().as_deref(),
        Some("thread-9")
    );
    assert_eq!(
        store
            .conversation_for_route("discord", "thread-9")
            .await
            .unwrap(),
        Some(guild("u1"))
    );
    assert_eq!(
        store
            .conversation_for_route("telegram", "thread-9")
            .await
            .unwrap(),
        None,
        "routes are per platform"
    );

    // Moving again replaces the route; the old one no longer leads anywhere.
    store
        .set_chat_route(&guild("u1"), "thread-11", t(2))
        .await
        .unwrap();
    assert_eq!(
        store.chat_route(&guild("u1")).await.unwrap().as_deref(),
        Some("thread-11")
    );
    assert_eq!(
        store
            .conversation_for_route("discord", "thread-9")
            .await
            .unwrap(),
        None
    );
    // Setting the same route again is harmless.
    store
        .set_chat_route(&guild("u1"), "thread-11", t(3))
        .await
        .unwrap();

    // A route belongs to one conversation of a platform.
    let err = store
        .set_chat_route(&guild("u3"), "thread-10", t(4))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::RouteTaken { platform, route } if platform == "discord" && route == "thread-10"),
        "{err:?}"
    );
    assert_eq!(store.chat_route(&guild("u3")).await.unwrap(), None);
    assert_eq!(
        store
            .conversation_for_route("discord", "thread-10")
            .await
            .unwrap(),
        Some(guild("u2"))
    );
    // …but the same id may be a route on another platform.
    let elsewhere = ConversationRef {
        platform: "slack".to_owned(),
        ..guild("u3")
    };
    store
        .set_chat_route(&elsewhere, "thread-10", t(5))
        .await
        .unwrap();
    assert_eq!(
        store
            .conversation_for_route("slack", "thread-10")
            .await
            .unwrap(),
        Some(elsewhere)
    );
}

pub async fn last_activity_is_the_latest_transcript_line(db: TestDb) {
    let store = db.connect().await;
    assert_eq!(
        store.last_activity(&cref("a")).await.unwrap(),
        None,
        "unknown"
    );
    let mut tx = store.begin().await.unwrap();
    let a = tx.load_conversation(&cref("a")).await.unwrap();
    let b = tx.load_conversation(&cref("b")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.last_activity(&cref("a")).await.unwrap(),
        None,
        "no lines yet"
    );
    let line = |at, sender, text: &str| NewLine::new(at, sender, text);
    let mut tx = store.begin().await.unwrap();
    tx.append_transcript(a.id, None, &line(t(5), Sender::User, "hi"))
        .await
        .unwrap();
    // A bot line a moment later, then a user line stamped by the platform in whole seconds.
    let bot_at = t(5) + TimeDelta::milliseconds(500);
    tx.append_transcript(a.id, None, &line(bot_at, Sender::Bot, "hello"))
        .await
        .unwrap();
    tx.append_transcript(a.id, None, &line(t(5), Sender::User, "again"))
        .await
        .unwrap();
    tx.append_transcript(b.id, None, &line(t(90), Sender::User, "other"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.last_activity(&cref("a")).await.unwrap(), Some(bot_at));
    assert_eq!(store.last_activity(&cref("b")).await.unwrap(), Some(t(90)));
}

pub async fn a_turn_s_lines_are_tagged_with_the_ticket_it_opened(db: TestDb) {
    let store = db.connect().await;
    let line = |sender, text: &str| NewLine::new(t(1), sender, text);
    let mut tx = store.begin().await.unwrap();
    let conversation = tx.load_conversation(&cref("a")).await.unwrap();
    let other = tx.load_conversation(&cref("b")).await.unwrap();
    tx.append_transcript(
        conversation.id,
        None,
        &line(Sender::User, "earlier question"),
    )
    .await
    .unwrap();
    tx.append_transcript(conversation.id, None, &line(Sender::Bot, "earlier answer"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // One turn: the user's message, a bot line, then the ticket opens.
    let mut tx = store.begin().await.unwrap();
    let first = tx
        .append_transcript(conversation.id, None, &line(Sender::User, "human please"))
        .await
        .unwrap();
    tx.append_transcript(other.id, None, &line(Sender::User, "someone else"))
        .await
        .unwrap();
    tx.append_transcript(conversation.id, None, &line(Sender::Bot, "one moment"))
        .await
        .unwrap();
    let ticket = tx
        .open_ticket(&new_ticket(conversation.id, "TTTT", Priority::Normal, t(1)))
        .await
        .unwrap();
    assert_eq!(
        tx.tag_transcript_from(conversation.id, first, ticket.id)
            .await
            .unwrap(),
        2
    );
    tx.append_transcript(
        conversation.id,
        Some(ticket.id),
        &line(Sender::Bot, "ticket TTTT"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let texts = |lines: Vec<TranscriptLine>| lines.into_iter().map(|l| l.text).collect::<Vec<_>>();
    assert_eq!(
        texts(store.ticket_transcript(ticket.id).await.unwrap()),
        ["human please", "one moment", "ticket TTTT"]
    );
    assert_eq!(
        texts(store.transcript(&cref("a")).await.unwrap()),
        [
            "earlier question",
            "earlier answer",
            "human please",
            "one moment",
            "ticket TTTT"
        ]
    );

    // Lines already tagged keep their ticket.
    let mut tx = store.begin().await.unwrap();
    let second = tx
        .open_ticket(&new_ticket(conversation.id, "UUUU", Priority::Normal, t(2)))
        .await
        .unwrap();
    assert_eq!(
        tx.tag_transcript_from(conversation.id, first, second.id)
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
    assert_eq!(store.ticket_transcript(ticket.id).await.unwrap().len(), 3);
}
