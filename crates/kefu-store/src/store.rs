//! [`Store`]: the pool, connecting and migrating, and the operations that need no caller-held
//! transaction. [`UnitOfWork`]: one transaction for everything a message changes.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kefu_core::model::{ConversationRef, Inbound, Outgoing, Ticket, TranscriptLine};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::error::{Result, StoreError, db, redact_url};
use crate::ops::{self, Conn};
use crate::types::{
    Backend, CancelOutcome, ClaimOutcome, Conversation, InboundOutcome, Miss, MissSummary,
    NewTicket, OpenTicket, OutboxMessage, Rating, ResolveOutcome, StoreOptions, StoredInbound,
    User,
};

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect =
                PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
                    url: shown.clone(),
                    source,
                })?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(|source| StoreError::Connect {
                    url: shown.clone(),
                    source,
                })?;
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
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(|source| StoreError::Connect {
                    url: shown.clone(),
                    source,
                })?;
            Self::Sqlite(pool)
        } else {
            return Err(StoreError::UnsupportedUrl { url: shown });
        };
        let migrated = match &store {
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        migrated.map_err(|source| StoreError::Migrate { url: shown, source })?;
        Ok(store)
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
    /// **Redaction is the caller's job.** The store keeps `redacted_text` byte for byte and never
    /// reads `inbound.text`; pass the text after secrets (seed phrases, keys, codes) were replaced.
    /// The user row is created or its display name refreshed, and the conversation row is created
    /// if missing.
    pub async fn record_inbound(
        &self,
        inbound: &Inbound,
        redacted_text: &str,
        received_at: DateTime<Utc>,
    ) -> Result<InboundOutcome> {
        let mut tx = self.begin().await?;
        let outcome = tx
            .record_inbound(inbound, redacted_text, received_at)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Inbound messages stored but never marked processed (a crash came between the two), oldest
    /// first: process them again on start-up.
    pub async fn unprocessed_inbound(&self, limit: i64) -> Result<Vec<StoredInbound>> {
        ops::unprocessed_inbound(self.acquire().await?.conn(), limit).await
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

    /// Enqueues a message outside a unit of work (a staff reply relayed by the desk, say).
    pub async fn enqueue(&self, message: &Outgoing, at: DateTime<Utc>) -> Result<i64> {
        ops::enqueue(self.acquire().await?.conn(), message, at).await
    }

    /// Undelivered messages due by `now`, oldest first. Rows stay pending until
    /// [`mark_delivered`](Self::mark_delivered), so a crash between sending and marking
    /// re-delivers (at least once) rather than losing. With several instances on PostgreSQL, run
    /// one delivery worker, or accept that two may send the same row.
    pub async fn pending_outbox(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>> {
        ops::pending_outbox(self.acquire().await?.conn(), limit, now).await
    }

    /// [`pending_outbox`](Self::pending_outbox) for one platform's delivery worker: its
    /// undelivered messages due by `now`, oldest first (indexed by platform).
    pub async fn pending_outbox_for_platform(
        &self,
        platform: &str,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>> {
        ops::pending_outbox_for_platform(self.acquire().await?.conn(), platform, limit, now).await
    }

    /// Every undelivered message for one conversation due by `now`, oldest first (indexed).
    pub async fn pending_outbox_for_conversation(
        &self,
        cref: &ConversationRef,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>> {
        ops::pending_outbox_for_conversation(self.acquire().await?.conn(), cref, now).await
    }

    /// Marks a message delivered; `false` if it was already delivered or does not exist.
    pub async fn mark_delivered(&self, outbox_id: i64, at: DateTime<Utc>) -> Result<bool> {
        ops::mark_delivered(self.acquire().await?.conn(), outbox_id, at).await
    }

    /// Records a failed delivery attempt and when to try again; `false` if the message was
    /// already delivered or does not exist.
    pub async fn mark_failed(
        &self,
        outbox_id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool> {
        ops::mark_failed(self.acquire().await?.conn(), outbox_id, error, retry_at).await
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
/// #   line: &kefu_core::model::TranscriptLine, reply: &kefu_core::model::Outgoing,
/// #   inbound_id: i64, now: chrono::DateTime<chrono::Utc>) -> kefu_store::Result<()> {
/// let mut tx = store.begin().await?;
/// let conversation = tx.load_conversation(cref).await?;
/// // … kefu-core decides, from conversation.state …
/// tx.save_conversation(conversation.id, &serde_json::json!({"mode": "bot"}), now).await?;
/// tx.append_transcript(conversation.id, None, line).await?;
/// tx.enqueue(reply, now).await?;
/// tx.mark_processed(inbound_id, now).await?;
/// tx.commit().await?;
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

    /// [`Store::record_inbound`] inside this transaction.
    pub async fn record_inbound(
        &mut self,
        inbound: &Inbound,
        redacted_text: &str,
        received_at: DateTime<Utc>,
    ) -> Result<InboundOutcome> {
        ops::record_inbound(self.conn(), inbound, redacted_text, received_at).await
    }

    /// Marks an inbound message handled; `false` if it already was.
    pub async fn mark_processed(&mut self, inbound_id: i64, at: DateTime<Utc>) -> Result<bool> {
        ops::mark_processed(self.conn(), inbound_id, at).await
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
        line: &TranscriptLine,
    ) -> Result<i64> {
        ops::append_transcript(self.conn(), conversation_id, ticket_id, line).await
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

    /// Puts a message in the outbox, due now. Returns its outbox id.
    pub async fn enqueue(&mut self, message: &Outgoing, at: DateTime<Utc>) -> Result<i64> {
        ops::enqueue(self.conn(), message, at).await
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
}
