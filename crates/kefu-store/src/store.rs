//! [`Store`]: the pool, connecting and migrating, and the operations that need no caller-held
//! transaction. [`UnitOfWork`]: one transaction for everything a message changes.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kefu_core::delivery::Delivery;
use kefu_core::model::{ConversationRef, Inbound, Outgoing, Redacted, Ticket, TranscriptLine};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::error::{Result, StoreError, db, redact_url};
use crate::ops::{self, Conn};
use crate::retention::{self, Oldest};
use crate::types::{
    Activity, Backend, CancelOutcome, ClaimOutcome, Conversation, DeadLetter, FailedDelivery,
    InboundOutcome, KbDecision, Miss, MissSummary, NewLine, NewTicket, OpenTicket, OutboxMessage,
    Pruned, Rating, RecentInbound, ReleaseOutcome, ResolveOutcome, StaffRecord, StaffSessionRecord,
    StoreOptions, StoredInbound, TaggedLine, TicketLabel, User,
};
use crate::{labels, staff};

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a SQLite migration is tried while other processes migrate the same file.
const MIGRATE_ATTEMPTS: u32 = 10;

/// Whether an error is SQLite's "database is locked" / "table is locked" (`SQLITE_BUSY`,
/// `SQLITE_LOCKED`, with any extended code).
fn is_sqlite_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e
            .code()
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

/// Refuses database URLs that cannot work, before a driver turns them into a confusing error
/// later ("no such table" from an empty path, a hang from an in-memory database split over a
/// pool's connections).
fn check_url(url: &str, shown: &str) -> Result<()> {
    let url = url.trim();
    let reason = if url.is_empty() {
        Some("it is empty")
    } else if url.contains(":memory:") || url.contains("mode=memory") {
        Some(
            "an in-memory SQLite database is private to one connection and vanishes with the process",
        )
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        path.is_empty().then_some("it names no file")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::BadUrl {
            url: shown.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Kefu's database: a pool of SQLite or PostgreSQL connections. Cheap to clone (the pool is
/// shared), safe to use from many tasks.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite file (WAL, foreign keys on, 5 s busy timeout).
    Sqlite(SqlitePool),
    /// A PostgreSQL database, possibly shared by several Kefu instances.
    Postgres(PgPool),
}

/// A pooled connection of either backend.
enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }
}

impl Store {
    /// Connects with default options; see [`Store::connect_with`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// Connects and applies the backend's migrations (idempotent: applied ones are skipped).
    ///
    /// `postgres://…` and `postgresql://…` select PostgreSQL. `sqlite:…` URLs and plain paths
    /// select SQLite; the file is created when missing unless the URL sets `mode=`. Any other
    /// `scheme://` is refused. Errors name the URL with its password removed.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Self> {
        let shown = redact_url(url);
        check_url(url, &shown)?;
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect =
                PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
                    url: shown.clone(),
                    source,
                })?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            // The first connection gets a short deadline of its own: an unreachable server is
            // reported in seconds, not after the pool's (longer) acquire timeout.
            match tokio::time::timeout(options.connect_timeout, pool.acquire()).await {
                Ok(Ok(_first)) => {}
                Ok(Err(source)) => {
                    return Err(StoreError::Connect {
                        url: shown.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(StoreError::ConnectTimeout {
                        url: shown.clone(),
                        after: options.connect_timeout,
                    });
                }
            }
            Self::Postgres(pool)
        } else if url.starts_with("sqlite:") || !url.contains("://") {
            let connect = if url.starts_with("sqlite:") {
                let parsed = SqliteConnectOptions::from_str(url).map_err(|source| {
                    StoreError::InvalidUrl {
                        url: shown.clone(),
                        source,
                    }
                })?;
                if url.contains("mode=") {
                    parsed
                } else {
                    parsed.create_if_missing(true)
                }
            } else {
                SqliteConnectOptions::new()
                    .filename(url)
                    .create_if_missing(true)
            };
            let connect = connect
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true);
            // A new file is switched to WAL by its first connection, which needs the file's
            // exclusive lock; SQLite answers "database is locked" at once (the busy timeout does
            // not apply) when another process is doing the same. Such a first connection is
            // retried: the file is then in WAL mode and the retry only reads that.
            let mut attempt = 0u32;
            let pool = loop {
                attempt += 1;
                match SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect.clone())
                    .await
                {
                    Ok(pool) => break pool,
                    Err(source) if is_sqlite_busy(&source) && attempt < MIGRATE_ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    }
                    Err(source) => {
                        return Err(StoreError::Connect {
                            url: shown.clone(),
                            source,
                        });
                    }
                }
            };
            Self::Sqlite(pool)
        } else {
            return Err(StoreError::UnsupportedUrl { url: shown });
        };
        store.migrate(&shown).await?;
        Ok(store)
    }

    /// Applies the migrations, serialised between processes starting at once: on PostgreSQL by
    /// sqlx's migration lock (an advisory lock); on SQLite, where sqlx takes none, by retrying
    /// when another process migrated in between (its `CREATE TABLE` then fails with "already
    /// exists", or the database is busy): the retry finds the migration applied and skips it.
    async fn migrate(&self, shown: &str) -> Result<()> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let migrated = match self {
                Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
                Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
            };
            match migrated {
                Ok(()) => return Ok(()),
                Err(_) if matches!(self, Self::Sqlite(_)) && attempt < MIGRATE_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(source) => {
                    return Err(StoreError::Migrate {
                        url: shown.to_owned(),
                        source,
                    });
                }
            }
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }

    async fn acquire(&self) -> Result<Pooled> {
        let operation = "get a connection from the pool";
        Ok(match self {
            Self::Sqlite(pool) => Pooled::Sqlite(pool.acquire().await.map_err(db(operation))?),
            Self::Postgres(pool) => Pooled::Postgres(pool.acquire().await.map_err(db(operation))?),
        })
    }

    /// Starts a unit of work: one transaction for everything a message changes.
    ///
    /// On SQLite this is `BEGIN IMMEDIATE`: the database's write lock is taken now (waiting up to
    /// the busy timeout), not at the first write. sqlx's plain `begin()` is deferred, and a
    /// deferred transaction that reads and then writes fails with `SQLITE_BUSY` when another
    /// writer committed in between, which the busy timeout cannot retry. Units of work therefore
    /// run one at a time on SQLite (readers are never blocked, thanks to WAL). On PostgreSQL it is
    /// a plain `BEGIN` (read committed); [`UnitOfWork::load_conversation`] locks the
    /// conversation's row, so only units of work on the same conversation wait for each other.
    pub async fn begin(&self) -> Result<UnitOfWork> {
        let operation = "begin a transaction";
        let tx = match self {
            Self::Sqlite(pool) => Tx::Sqlite(
                pool.begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(db(operation))?,
            ),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await.map_err(db(operation))?),
        };
        Ok(UnitOfWork { tx })
    }

    /// Records an inbound message once: the first delivery returns [`InboundOutcome::New`], any
    /// repeat (same platform, chat and platform message id) [`InboundOutcome::Duplicate`] and
    /// changes nothing but the user's display name.
    ///
    /// The store keeps `redacted_text` byte for byte and never reads `inbound.text`: it takes
    /// only [`Redacted`] text, which only the secret scanner builds.
    /// The user row is created or its display name refreshed, and the conversation row is created
    /// if missing.
    ///
    /// A new message is leased to `owner` until `lease_until`: its handler commits the turn with
    /// [`UnitOfWork::finish_inbound`], which succeeds only while the lease is still theirs, and
    /// [`Store::claim_stale_inbound`] takes it over only once the lease expired.
    pub async fn record_inbound(
        &self,
        inbound: &Inbound,
        redacted_text: &Redacted,
        owner: &str,
        lease_until: DateTime<Utc>,
        received_at: DateTime<Utc>,
    ) -> Result<InboundOutcome> {
        let mut tx = self.begin().await?;
        let outcome = ops::record_inbound(
            tx.conn(),
            inbound,
            redacted_text,
            owner,
            lease_until,
            received_at,
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Takes over stored messages nobody finished handling whose lease expired (the handler
    /// died, or failed and let go), in the order they were stored, leasing them to `owner` until
    /// `lease_until`; a message whose conversation has an earlier one still leased waits for it.
    /// A message whose handling began `max_attempts` times is set aside as failed instead. A
    /// message another process is still handling is never returned.
    pub async fn claim_stale_inbound(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        max_attempts: i64,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredInbound>> {
        let mut tx = self.begin().await?;
        let claimed =
            ops::claim_stale_inbound(tx.conn(), owner, lease_until, max_attempts, limit, now)
                .await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Ends `owner`'s lease on an unhandled message that waits its turn, so that
    /// [`Store::claim_next_waiting`] or [`Store::claim_stale_inbound`] takes it over then; its
    /// handling did not begin, so it does not count as an attempt. `false` when `owner` does not
    /// hold it.
    pub async fn release_inbound(&self, inbound_id: i64, owner: &str) -> Result<bool> {
        ops::release_inbound(self.acquire().await?.conn(), inbound_id, owner).await
    }

    /// Takes over the next message of inbound message `after`'s conversation that waits for its
    /// turn (released, or its lease expired), the first stored first, leasing it to `owner` until
    /// `lease_until`; `None` when there is none, or an earlier message of the conversation is
    /// still leased. A handler calls it once its own message of the conversation is finished, so
    /// a message deferred behind it (by this process or another) does not wait for recovery.
    pub async fn claim_next_waiting(
        &self,
        after: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
        max_attempts: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredInbound>> {
        let mut tx = self.begin().await?;
        let claimed =
            ops::claim_next_waiting(tx.conn(), after, owner, lease_until, max_attempts, now)
                .await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Sets an inbound message aside for good (its handling can never succeed): recovery skips it.
    pub async fn fail_inbound(
        &self,
        inbound_id: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        ops::fail_inbound(self.acquire().await?.conn(), inbound_id, reason, at).await
    }

    /// Records a platform update that could never be stored (never its text).
    pub async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<i64> {
        ops::record_dead_letter(self.acquire().await?.conn(), letter).await
    }

    /// The chats of `platform` with a message received since `since`, each with the id of its
    /// latest stored message, most recent first, at most `limit` (what a new gateway session
    /// catches up on).
    pub async fn recent_inbound_chats(
        &self,
        platform: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        ops::recent_inbound_chats(self.acquire().await?.conn(), platform, since, limit).await
    }

    /// The most recent dead letters, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>> {
        ops::dead_letters(self.acquire().await?.conn(), limit).await
    }

    /// A user, if they ever wrote.
    pub async fn user(&self, platform: &str, user_id: &str) -> Result<Option<User>> {
        ops::user(self.acquire().await?.conn(), platform, user_id).await
    }

    /// A conversation as last saved, without creating or locking it.
    pub async fn conversation(&self, cref: &ConversationRef) -> Result<Option<Conversation>> {
        ops::conversation(self.acquire().await?.conn(), cref).await
    }

    /// A conversation's whole transcript in the order it was written (row order: turns of one
    /// conversation are serialised by its lock, while platform timestamps can be coarser than a
    /// second and would misorder a user line against the bot line written just before it).
    pub async fn transcript(&self, cref: &ConversationRef) -> Result<Vec<TranscriptLine>> {
        ops::transcript(self.acquire().await?.conn(), cref).await
    }

    /// When the conversation was last active: the latest time among its transcript lines, `None`
    /// when it has none (or does not exist).
    pub async fn last_activity(&self, cref: &ConversationRef) -> Result<Option<DateTime<Utc>>> {
        ops::last_activity(self.acquire().await?.conn(), cref).await
    }

    /// Records that a platform conversation continues elsewhere (Discord: a guild conversation
    /// moved into a thread): `route` is the platform's id of that place. Replaces the
    /// conversation's earlier route; [`StoreError::RouteTaken`] if another conversation of the
    /// platform has this route.
    pub async fn set_chat_route(
        &self,
        cref: &ConversationRef,
        route: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        ops::set_chat_route(self.acquire().await?.conn(), cref, route, now).await
    }

    /// Where a conversation continues, if it moved.
    pub async fn chat_route(&self, cref: &ConversationRef) -> Result<Option<String>> {
        ops::chat_route(self.acquire().await?.conn(), cref).await
    }

    /// The conversation that continues at `route` on `platform`.
    pub async fn conversation_for_route(
        &self,
        platform: &str,
        route: &str,
    ) -> Result<Option<ConversationRef>> {
        ops::conversation_for_route(self.acquire().await?.conn(), platform, route).await
    }

    /// The transcript lines tagged with a ticket (those exchanged while it was open), oldest first.
    pub async fn ticket_transcript(&self, ticket_id: i64) -> Result<Vec<TranscriptLine>> {
        ops::ticket_transcript(self.acquire().await?.conn(), ticket_id).await
    }

    /// A ticket by id.
    pub async fn ticket(&self, ticket_id: i64) -> Result<Option<Ticket>> {
        ops::ticket(self.acquire().await?.conn(), ticket_id).await
    }

    /// A ticket by its verification code.
    pub async fn ticket_by_code(&self, code: &str) -> Result<Option<Ticket>> {
        ops::ticket_by_code(self.acquire().await?.conn(), code).await
    }

    /// The conversation's queued or claimed ticket, if it has one.
    pub async fn open_ticket_for(&self, cref: &ConversationRef) -> Result<Option<Ticket>> {
        ops::open_ticket_for(self.acquire().await?.conn(), cref).await
    }

    /// Queued and claimed tickets, most urgent first, then oldest first, with how long each user
    /// waited (until the claim, or until `now`).
    pub async fn open_tickets(&self, now: DateTime<Utc>) -> Result<Vec<OpenTicket>> {
        ops::open_tickets(self.acquire().await?.conn(), now).await
    }

    /// How many tickets wait in the queue (queued, not claimed).
    pub async fn queued_count(&self) -> Result<i64> {
        ops::queued_count(self.acquire().await?.conn()).await
    }

    /// The ticket's place in the queue (1 = next to be served), or `None` unless it is queued.
    pub async fn queue_position(&self, ticket_id: i64) -> Result<Option<u32>> {
        ops::queue_position(self.acquire().await?.conn(), ticket_id).await
    }

    /// The median time from opening to claim over the `last` most recently claimed tickets, for
    /// the expected wait; `None` before any ticket was claimed.
    pub async fn recent_handling_time(&self, last: i64) -> Result<Option<TimeDelta>> {
        ops::recent_handling_time(self.acquire().await?.conn(), last).await
    }

    /// Claims a ticket for `staff`, atomically: of several staff claiming at once exactly one
    /// gets [`ClaimOutcome::Claimed`], the others [`ClaimOutcome::AlreadyClaimedBy`] the winner.
    pub async fn claim(
        &self,
        ticket_id: i64,
        staff: &str,
        at: DateTime<Utc>,
    ) -> Result<ClaimOutcome> {
        let mut tx = self.begin().await?;
        let outcome = tx.claim(ticket_id, staff, at).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Claims the most urgent, oldest queued ticket for `staff`; concurrent callers get distinct
    /// tickets. `None` when the queue is empty.
    pub async fn claim_next(&self, staff: &str, at: DateTime<Utc>) -> Result<Option<Ticket>> {
        let mut tx = self.begin().await?;
        let ticket = tx.claim_next(staff, at).await?;
        tx.commit().await?;
        Ok(ticket)
    }

    /// Resolves a ticket `staff` holds; see [`ResolveOutcome`] for the rules.
    pub async fn resolve(
        &self,
        ticket_id: i64,
        staff: &str,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome> {
        let mut tx = self.begin().await?;
        let outcome = tx.resolve(ticket_id, staff, at).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Cancels a queued ticket; see [`CancelOutcome`].
    pub async fn cancel(&self, ticket_id: i64, at: DateTime<Utc>) -> Result<CancelOutcome> {
        let mut tx = self.begin().await?;
        let outcome = tx.cancel(ticket_id, at).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records which staff thread (Telegram topic, Discord thread) mirrors a ticket on `platform`.
    pub async fn set_staff_thread(
        &self,
        ticket_id: i64,
        platform: &str,
        thread_id: &str,
    ) -> Result<()> {
        ops::set_staff_thread(self.acquire().await?.conn(), ticket_id, platform, thread_id).await
    }

    /// The staff thread mirroring a ticket on `platform`.
    pub async fn staff_thread(&self, ticket_id: i64, platform: &str) -> Result<Option<String>> {
        ops::staff_thread(self.acquire().await?.conn(), ticket_id, platform).await
    }

    /// The ticket a staff thread mirrors.
    pub async fn ticket_by_staff_thread(
        &self,
        platform: &str,
        thread_id: &str,
    ) -> Result<Option<Ticket>> {
        ops::ticket_by_staff_thread(self.acquire().await?.conn(), platform, thread_id).await
    }

    /// Puts a delivery in the outbox outside a unit of work, due now.
    pub async fn enqueue_delivery(
        &self,
        platform: &str,
        delivery: &Delivery,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        ops::enqueue_delivery(self.acquire().await?.conn(), platform, delivery, at).await
    }

    /// Puts a message for a user in the outbox outside a unit of work, due now.
    pub async fn enqueue(&self, message: &Outgoing, at: DateTime<Utc>) -> Result<i64> {
        let platform = message.conversation.platform.clone();
        self.enqueue_delivery(&platform, &Delivery::UserMessage(message.clone()), at)
            .await
    }

    /// Leases, for `owner` until `lease_until`, the first undelivered row of up to `limit`
    /// destinations of `platform` that are due and that no live worker holds. A destination (one
    /// chat, one ticket's staff space) is therefore in one worker's hands at a time, across
    /// every process on the database, and its rows go out in the order they were written. A row
    /// whose worker died is leased again once its lease expires. Oldest first.
    pub async fn lease_due_outbox(
        &self,
        platform: &str,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>> {
        ops::lease_due_outbox(
            self.acquire().await?.conn(),
            platform,
            owner,
            lease_until,
            limit,
            now,
        )
        .await
    }

    /// Every undelivered row for one conversation due by `now`, oldest first (the terminal
    /// channel delivers its own conversation).
    pub async fn pending_outbox_for_conversation(
        &self,
        cref: &ConversationRef,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>> {
        ops::pending_outbox_for_conversation(self.acquire().await?.conn(), cref, now).await
    }

    /// Undelivered rows (of one platform, or all), oldest first.
    pub async fn pending_outbox(
        &self,
        platform: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        ops::pending_outbox(self.acquire().await?.conn(), platform, limit).await
    }

    /// Marks a row delivered, with the platform's id of what was sent; `false` if it was already
    /// delivered or given up. Rows stay pending until this, so a crash between sending and
    /// marking re-sends (at least once) rather than losing.
    pub async fn mark_delivered(
        &self,
        outbox_id: i64,
        sent_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        ops::mark_delivered(self.acquire().await?.conn(), outbox_id, sent_id, at, None).await
    }

    /// [`mark_delivered`](Self::mark_delivered) by the worker that leased the row: `false` (and
    /// nothing changed) when another worker took the row over after this one's lease expired —
    /// the row is that worker's now, and the destination stays in one worker's hands.
    pub async fn mark_delivered_as(
        &self,
        owner: &str,
        outbox_id: i64,
        sent_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        ops::mark_delivered(
            self.acquire().await?.conn(),
            outbox_id,
            sent_id,
            at,
            Some(owner),
        )
        .await
    }

    /// Lets go of a row to try it again at `retry_at` (`count_attempt`: whether this try counts
    /// towards the backoff; a platform's "retry after" does not). `false` if it was delivered or
    /// given up meanwhile.
    pub async fn retry_later(
        &self,
        outbox_id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
        count_attempt: bool,
    ) -> Result<bool> {
        ops::retry_later(
            self.acquire().await?.conn(),
            outbox_id,
            error,
            retry_at,
            count_attempt,
            None,
        )
        .await
    }

    /// [`retry_later`](Self::retry_later) by the worker that leased the row; `false` when another
    /// worker took it over meanwhile (its lease is left alone).
    pub async fn retry_later_as(
        &self,
        owner: &str,
        outbox_id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
        count_attempt: bool,
    ) -> Result<bool> {
        ops::retry_later(
            self.acquire().await?.conn(),
            outbox_id,
            error,
            retry_at,
            count_attempt,
            Some(owner),
        )
        .await
    }

    /// Gives a row up for good, with the reason (shown by `kefu desk show`): the rows after it
    /// in its destination go on.
    pub async fn mark_failed(
        &self,
        outbox_id: i64,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        ops::mark_failed(self.acquire().await?.conn(), outbox_id, error, at, None).await
    }

    /// [`mark_failed`](Self::mark_failed) by the worker that leased the row; `false` when another
    /// worker took it over meanwhile.
    pub async fn mark_failed_as(
        &self,
        owner: &str,
        outbox_id: i64,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        ops::mark_failed(
            self.acquire().await?.conn(),
            outbox_id,
            error,
            at,
            Some(owner),
        )
        .await
    }

    /// Rows given up for a ticket's staff spaces or a user's conversation, oldest first.
    pub async fn failed_deliveries(
        &self,
        ticket_id: Option<i64>,
        conversation: Option<&ConversationRef>,
        limit: i64,
    ) -> Result<Vec<FailedDelivery>> {
        ops::failed_deliveries(self.acquire().await?.conn(), ticket_id, conversation, limit).await
    }

    /// Per platform: undelivered rows and when the oldest was written.
    pub async fn outbox_backlog(&self) -> Result<Vec<(String, i64, DateTime<Utc>)>> {
        ops::outbox_backlog(self.acquire().await?.conn()).await
    }

    /// Takes or renews the named lease for `owner` until `until`: `true` if `owner` holds it now
    /// (it was free, expired, or theirs already). How instances elect who runs a platform
    /// connection.
    pub async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        ops::acquire_lease(self.acquire().await?.conn(), name, owner, until, now).await
    }

    /// Gives up the named lease if `owner` holds it (a clean shutdown hands over at once).
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<bool> {
        ops::release_lease(self.acquire().await?.conn(), name, owner).await
    }

    /// Who holds the named lease and until when (possibly expired).
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        ops::lease_holder(self.acquire().await?.conn(), name).await
    }

    /// Every named lease, expired ones included, by name: (name, owner, expires at).
    pub async fn leases(&self) -> Result<Vec<(String, String, DateTime<Utc>)>> {
        ops::leases(self.acquire().await?.conn()).await
    }

    /// A small per-platform value (the Telegram update offset), if set.
    pub async fn platform_state(&self, name: &str) -> Result<Option<String>> {
        ops::platform_state(self.acquire().await?.conn(), name).await
    }

    /// Saves a platform value.
    pub async fn set_platform_state(
        &self,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        ops::set_platform_state(self.acquire().await?.conn(), name, value, at).await
    }

    /// Deletes, in batches of `batch` rows (each its own transaction), what is kept only for a
    /// while: inbound messages received before `journal_before` that were handled or set aside,
    /// outbox rows created before it that were delivered or given up, dead letters recorded
    /// before it, and the bot's decisions made before `decisions_before`. What is still to be
    /// handled or delivered stays, however old; tickets, transcripts, ratings, unanswered
    /// questions and labels are never deleted (a line or question keeps its text when its inbound
    /// message goes). Safe to run from several instances at once.
    pub async fn prune(
        &self,
        journal_before: DateTime<Utc>,
        decisions_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<Pruned> {
        let batch = batch.max(1);
        let mut pruned = Pruned::default();
        loop {
            let mut tx = self.begin().await?;
            let ids = retention::old_inbound(tx.conn(), journal_before, batch).await?;
            let n = retention::delete_inbound(tx.conn(), &ids, journal_before).await?;
            tx.commit().await?;
            pruned.inbound += n;
            if n == 0 || ids.len() < usize::try_from(batch).unwrap_or(usize::MAX) {
                break;
            }
            tokio::task::yield_now().await;
        }
        for (which, before) in [
            (Oldest::Outbox, journal_before),
            (Oldest::DeadLetters, journal_before),
            (Oldest::Decisions, decisions_before),
        ] {
            loop {
                let n =
                    retention::delete_oldest(self.acquire().await?.conn(), which, before, batch)
                        .await?;
                *match which {
                    Oldest::Outbox => &mut pruned.outbox,
                    Oldest::DeadLetters => &mut pruned.dead_letters,
                    Oldest::Decisions => &mut pruned.decisions,
                } += n;
                if i64::try_from(n).unwrap_or(i64::MAX) < batch {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(pruned)
    }

    /// Records a question the bot could not answer.
    pub async fn record_miss(&self, miss: &Miss) -> Result<i64> {
        ops::record_miss(self.acquire().await?.conn(), miss).await
    }

    /// Unanswered questions grouped by text, most frequent first (then most recent).
    pub async fn misses(&self, limit: i64) -> Result<Vec<MissSummary>> {
        ops::misses(self.acquire().await?.conn(), limit).await
    }

    /// The ratings given for a ticket, oldest first.
    pub async fn ratings_for(&self, ticket_id: i64) -> Result<Vec<Rating>> {
        ops::ratings_for(self.acquire().await?.conn(), ticket_id).await
    }

    /// Creates a staff account (`role`: `agent` or `lead`; `password_hash`: a PHC string);
    /// `false` when an account has that name already.
    pub async fn add_staff(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        staff::add_staff(self.acquire().await?.conn(), name, role, password_hash, at).await
    }

    /// Every staff account, by name.
    pub async fn staff_members(&self) -> Result<Vec<StaffRecord>> {
        staff::staff_members(self.acquire().await?.conn()).await
    }

    /// A staff account by name.
    pub async fn staff_member(&self, name: &str) -> Result<Option<StaffRecord>> {
        staff::staff_member(self.acquire().await?.conn(), name).await
    }

    /// A staff account with its password hash, for verifying a sign-in.
    pub async fn staff_credentials(&self, name: &str) -> Result<Option<(StaffRecord, String)>> {
        staff::staff_credentials(self.acquire().await?.conn(), name).await
    }

    /// Replaces a staff account's password hash and ends its console sessions, in one
    /// transaction; `false` when there is no such account.
    pub async fn set_staff_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let changed = staff::set_staff_password(tx.conn(), name, password_hash).await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// Deletes a staff account with its sessions and API tokens; `false` when there is none.
    pub async fn remove_staff(&self, name: &str) -> Result<bool> {
        staff::remove_staff(self.acquire().await?.conn(), name).await
    }

    /// Links a staff account to the `telegram` or `discord` user `user_id`, or unlinks it
    /// (`None`); `false` when there is no such account. A user linked to another account is
    /// [`StoreError::StaffIdTaken`]; another platform [`StoreError::UnknownStaffPlatform`].
    pub async fn link_staff(
        &self,
        name: &str,
        platform: &str,
        user_id: Option<&str>,
    ) -> Result<bool> {
        staff::link_staff(self.acquire().await?.conn(), name, platform, user_id).await
    }

    /// The staff account linked to a platform user, if any.
    pub async fn staff_by_platform_id(
        &self,
        platform: &str,
        user_id: &str,
    ) -> Result<Option<StaffRecord>> {
        staff::staff_by_platform_id(self.acquire().await?.conn(), platform, user_id).await
    }

    /// Starts a console session, known by the hash of its token, until `expires_at`; expired
    /// sessions are deleted first. `false` when there is no such account.
    pub async fn create_staff_session(
        &self,
        token_hash: &str,
        name: &str,
        csrf: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let created =
            staff::create_staff_session(tx.conn(), token_hash, name, csrf, at, expires_at).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The console session with this token hash and its account, unless it expired by `now`.
    pub async fn staff_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StaffSessionRecord>> {
        staff::staff_session(self.acquire().await?.conn(), token_hash, now).await
    }

    /// Ends the console session with this token hash (if any).
    pub async fn delete_staff_session(&self, token_hash: &str) -> Result<()> {
        staff::delete_staff_session(self.acquire().await?.conn(), token_hash).await
    }

    /// Makes the API token with this hash the account's only one; `false` when there is no such
    /// account.
    pub async fn replace_staff_token(
        &self,
        name: &str,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let stored = staff::replace_staff_token(tx.conn(), name, token_hash, at).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The staff account whose API token has this hash.
    pub async fn staff_by_token(&self, token_hash: &str) -> Result<Option<StaffRecord>> {
        staff::staff_by_token(self.acquire().await?.conn(), token_hash).await
    }

    /// When the latest failed sign-ins under `key` happened after `since`: newest first, at most
    /// `limit`.
    pub async fn recent_login_failures(
        &self,
        key: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DateTime<Utc>>> {
        staff::recent_login_failures(self.acquire().await?.conn(), key, since, limit).await
    }

    /// Records a failed sign-in under each of `keys` (`account:NAME`, `ip:ADDRESS`), and forgets
    /// every failure from before `forget_before`.
    pub async fn record_login_failure(
        &self,
        keys: &[&str],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        staff::record_login_failure(tx.conn(), keys, at, forget_before).await?;
        tx.commit().await
    }

    /// Forgets the failed sign-ins under `key`.
    pub async fn clear_login_failures(&self, key: &str) -> Result<()> {
        staff::clear_login_failures(self.acquire().await?.conn(), key).await
    }

    /// What the console's report counts between `since` and `until` (both included).
    pub async fn activity(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Activity> {
        staff::activity(self.acquire().await?.conn(), since, until).await
    }

    /// Stores a ticket's label. A ticket has one: a second label replaces the first.
    pub async fn record_label(&self, label: &TicketLabel) -> Result<()> {
        labels::record_label(self.acquire().await?.conn(), label).await
    }

    /// Every ticket label, oldest first (by when it was labelled).
    pub async fn ticket_labels(&self) -> Result<Vec<TicketLabel>> {
        labels::ticket_labels(self.acquire().await?.conn()).await
    }

    /// A ticket's label, if it has one.
    pub async fn ticket_label(&self, ticket_id: i64) -> Result<Option<TicketLabel>> {
        labels::ticket_label(self.acquire().await?.conn(), ticket_id).await
    }

    /// Records a KB suggestion accepted or rejected.
    pub async fn record_kb_decision(&self, d: &KbDecision) -> Result<()> {
        labels::record_kb_decision(self.acquire().await?.conn(), d).await
    }

    /// Every KB decision, oldest first.
    pub async fn kb_decisions(&self) -> Result<Vec<KbDecision>> {
        labels::kb_decisions(self.acquire().await?.conn()).await
    }

    /// A conversation's whole transcript, like [`transcript`](Self::transcript), with each
    /// line's id and the ticket it is tagged with.
    pub async fn tagged_transcript(&self, cref: &ConversationRef) -> Result<Vec<TaggedLine>> {
        labels::tagged_transcript(self.acquire().await?.conn(), cref).await
    }
}

#[derive(Debug)]
enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// One transaction for everything handling a message changes: the conversation's state, its
/// transcript, a ticket, outgoing messages, a rating or miss, the inbound message's processed mark.
/// Nothing is visible to others until [`commit`](Self::commit); dropping it rolls everything back.
///
/// ```no_run
/// # async fn demo(store: &kefu_store::Store, cref: &kefu_core::model::ConversationRef,
/// #   line: &kefu_store::NewLine, reply: &kefu_core::model::Outgoing,
/// #   inbound_id: i64, now: chrono::DateTime<chrono::Utc>) -> kefu_store::Result<()> {
/// let mut tx = store.begin().await?;
/// let conversation = tx.load_conversation(cref).await?;
/// // … kefu-core decides, from conversation.state …
/// tx.save_conversation(conversation.id, &serde_json::json!({"mode": "bot"}), now).await?;
/// tx.append_transcript(conversation.id, None, line).await?;
/// tx.enqueue(reply, now).await?;
/// if tx.finish_inbound(inbound_id, "instance-1", now).await? {
///     tx.commit().await?; // else: another handler took the message over; drop (roll back)
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UnitOfWork {
    tx: Tx,
}

impl UnitOfWork {
    fn conn(&mut self) -> Conn<'_> {
        match &mut self.tx {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    /// Makes every change visible at once.
    pub async fn commit(self) -> Result<()> {
        let operation = "commit a transaction";
        match self.tx {
            Tx::Sqlite(tx) => tx.commit().await.map_err(db(operation)),
            Tx::Postgres(tx) => tx.commit().await.map_err(db(operation)),
        }
    }

    /// Discards every change (dropping the unit of work does the same, without waiting).
    pub async fn rollback(self) -> Result<()> {
        let operation = "roll back a transaction";
        match self.tx {
            Tx::Sqlite(tx) => tx.rollback().await.map_err(db(operation)),
            Tx::Postgres(tx) => tx.rollback().await.map_err(db(operation)),
        }
    }

    /// Marks an inbound message handled, only while `owner` still holds its lease (see
    /// [`Store::record_inbound`]). `false`: another handler took it over (or it was handled or
    /// set aside) — roll this turn back, it must not commit. Call it first in the turn: on
    /// PostgreSQL it locks the message's row, so a concurrent take-over waits for this turn.
    pub async fn finish_inbound(
        &mut self,
        inbound_id: i64,
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        ops::finish_inbound(self.conn(), inbound_id, owner, at).await
    }

    /// Whether an earlier message of the same conversation is neither handled nor set aside (its
    /// handler may be at work, or dead with its lease not yet expired). Asked in a turn once the
    /// conversation is locked, it also sees an earlier message whose storing was under way.
    pub async fn earlier_unhandled(&mut self, inbound_id: i64) -> Result<bool> {
        ops::earlier_unhandled(self.conn(), inbound_id).await
    }

    /// How many messages the user typed in the conversation since `since` (flood control, shared
    /// by every instance), and the newest one's id (a message stored after the one being handled
    /// may wait for it: see [`Store::claim_next_waiting`]). Button presses are not counted: they
    /// answer the bot's own question.
    pub async fn count_recent_inbound(
        &mut self,
        conversation_id: i64,
        since: DateTime<Utc>,
    ) -> Result<RecentInbound> {
        ops::count_recent_inbound(self.conn(), conversation_id, since).await
    }

    /// The conversation's messages stored after `since` and before message `before_id`: `(id,
    /// text)`, oldest first, the last `limit` of them.
    pub async fn recent_inbound_texts(
        &mut self,
        conversation_id: i64,
        before_id: i64,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(i64, String)>> {
        ops::recent_inbound_texts(self.conn(), conversation_id, before_id, since, limit).await
    }

    /// Replaces a stored message's text, and that of the transcript line and the miss recorded
    /// from it, with a redacted version (a secret recognised only later).
    pub async fn redact_inbound(&mut self, inbound_id: i64, redacted: &Redacted) -> Result<()> {
        ops::redact_inbound(self.conn(), inbound_id, redacted).await
    }

    /// Loads the conversation (creating it, state `None`, if new) and locks it until commit: on
    /// PostgreSQL with `SELECT … FOR UPDATE`; on SQLite the unit of work already holds the
    /// database's write lock (`BEGIN IMMEDIATE`).
    pub async fn load_conversation(&mut self, cref: &ConversationRef) -> Result<Conversation> {
        ops::load_conversation(self.conn(), cref).await
    }

    /// Saves kefu-core's state for a conversation. The store does not look inside it.
    pub async fn save_conversation(
        &mut self,
        conversation_id: i64,
        state: &Value,
        at: DateTime<Utc>,
    ) -> Result<()> {
        ops::save_conversation(self.conn(), conversation_id, state, at).await
    }

    /// Sets (or with `None` clears) the user's chosen language; `false` if the user is unknown.
    pub async fn set_user_language(
        &mut self,
        platform: &str,
        user_id: &str,
        language: Option<&str>,
    ) -> Result<bool> {
        ops::set_user_language(self.conn(), platform, user_id, language).await
    }

    /// Appends a (redacted) line to the conversation's transcript, tagged with the ticket open at
    /// the time, if any. Returns the line's id.
    pub async fn append_transcript(
        &mut self,
        conversation_id: i64,
        ticket_id: Option<i64>,
        line: &NewLine,
    ) -> Result<i64> {
        ops::append_transcript(self.conn(), conversation_id, ticket_id, None, line).await
    }

    /// [`append_transcript`](Self::append_transcript) for a user's line, linked to the inbound
    /// message it came from.
    pub async fn append_user_line(
        &mut self,
        conversation_id: i64,
        ticket_id: Option<i64>,
        inbound_id: i64,
        line: &NewLine,
    ) -> Result<i64> {
        ops::append_transcript(
            self.conn(),
            conversation_id,
            ticket_id,
            Some(inbound_id),
            line,
        )
        .await
    }

    /// Tags with `ticket_id` the conversation's untagged transcript lines from `from_line_id` (an
    /// id [`append_transcript`](Self::append_transcript) returned) on: the lines of the turn
    /// that opened the ticket, written before it existed. Returns how many lines were tagged.
    pub async fn tag_transcript_from(
        &mut self,
        conversation_id: i64,
        from_line_id: i64,
        ticket_id: i64,
    ) -> Result<u64> {
        ops::tag_transcript_from(self.conn(), conversation_id, from_line_id, ticket_id).await
    }

    /// Opens a queued ticket and returns it with its id.
    pub async fn open_ticket(&mut self, ticket: &NewTicket) -> Result<Ticket> {
        ops::open_ticket(self.conn(), ticket).await
    }

    /// A ticket by id, as this transaction sees it.
    pub async fn ticket(&mut self, ticket_id: i64) -> Result<Option<Ticket>> {
        ops::ticket(self.conn(), ticket_id).await
    }

    /// The conversation's queued or claimed ticket, as this transaction sees it.
    pub async fn open_ticket_for(&mut self, cref: &ConversationRef) -> Result<Option<Ticket>> {
        ops::open_ticket_for(self.conn(), cref).await
    }

    /// [`Store::queue_position`] as this transaction sees it.
    pub async fn queue_position(&mut self, ticket_id: i64) -> Result<Option<u32>> {
        ops::queue_position(self.conn(), ticket_id).await
    }

    /// [`Store::claim`] inside this transaction.
    pub async fn claim(
        &mut self,
        ticket_id: i64,
        staff: &str,
        at: DateTime<Utc>,
    ) -> Result<ClaimOutcome> {
        ops::claim(self.conn(), ticket_id, staff, at).await
    }

    /// [`Store::claim_next`] inside this transaction.
    pub async fn claim_next(&mut self, staff: &str, at: DateTime<Utc>) -> Result<Option<Ticket>> {
        ops::claim_next(self.conn(), staff, at).await
    }

    /// [`Store::resolve`] inside this transaction.
    pub async fn resolve(
        &mut self,
        ticket_id: i64,
        staff: &str,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome> {
        ops::resolve(self.conn(), ticket_id, staff, at).await
    }

    /// [`Store::cancel`] inside this transaction.
    pub async fn cancel(&mut self, ticket_id: i64, at: DateTime<Utc>) -> Result<CancelOutcome> {
        ops::cancel(self.conn(), ticket_id, at).await
    }

    /// Gives a ticket `staff` holds back to the queue; see [`ReleaseOutcome`].
    pub async fn release(&mut self, ticket_id: i64, staff: &str) -> Result<ReleaseOutcome> {
        ops::release(self.conn(), ticket_id, staff).await
    }

    /// The conversation's whole transcript, as this transaction sees it (this turn's lines
    /// included).
    pub async fn transcript(&mut self, cref: &ConversationRef) -> Result<Vec<TranscriptLine>> {
        ops::transcript(self.conn(), cref).await
    }

    /// [`Store::queue_position`] as this transaction sees it.
    pub async fn queued_count(&mut self) -> Result<i64> {
        ops::queued_count(self.conn()).await
    }

    /// [`Store::recent_handling_time`] as this transaction sees it.
    pub async fn recent_handling_time(&mut self, last: i64) -> Result<Option<TimeDelta>> {
        ops::recent_handling_time(self.conn(), last).await
    }

    /// A ticket by its verification code, as this transaction sees it.
    pub async fn ticket_by_code(&mut self, code: &str) -> Result<Option<Ticket>> {
        ops::ticket_by_code(self.conn(), code).await
    }

    /// Puts a message for a user in the outbox, due now. Returns its outbox id.
    pub async fn enqueue(&mut self, message: &Outgoing, at: DateTime<Utc>) -> Result<i64> {
        let platform = message.conversation.platform.clone();
        ops::enqueue_delivery(
            self.conn(),
            &platform,
            &Delivery::UserMessage(message.clone()),
            at,
        )
        .await
    }

    /// Puts a delivery for `platform` in the outbox, due now. Returns its outbox id.
    pub async fn enqueue_delivery(
        &mut self,
        platform: &str,
        delivery: &Delivery,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        ops::enqueue_delivery(self.conn(), platform, delivery, at).await
    }

    /// The staff space mirroring a ticket on `platform`, as this transaction sees it.
    pub async fn staff_thread(&mut self, ticket_id: i64, platform: &str) -> Result<Option<String>> {
        ops::staff_thread(self.conn(), ticket_id, platform).await
    }

    /// Records a 1–5 rating (comment redacted) for a ticket: one per ticket, so a later call
    /// replaces the score (and the comment, when it brings one).
    pub async fn record_rating(
        &mut self,
        ticket_id: i64,
        score: u8,
        comment: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        ops::record_rating(self.conn(), ticket_id, score, comment, at).await
    }

    /// Records a question the bot could not answer.
    pub async fn record_miss(&mut self, miss: &Miss) -> Result<i64> {
        ops::record_miss(self.conn(), miss).await
    }

    /// Records what the bot decided for a message: `answer`, `clarify`, `escalate` or
    /// `out_of_scope`.
    pub async fn record_decision(&mut self, kind: &str, at: DateTime<Utc>) -> Result<()> {
        staff::record_decision(self.conn(), kind, at).await
    }
}
