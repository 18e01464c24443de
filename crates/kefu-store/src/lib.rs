//! Kefu's persistence: conversations and their state, the redacted transcript, the human queue
//! (tickets), the outbox of messages to deliver, ratings, and the questions the bot could not
//! answer, in SQLite (the embedded default) or PostgreSQL (several instances sharing one
//! database), through sqlx.
//!
//! # What it owns
//! - The schema and its migrations, one set per backend (`migrations/sqlite`,
//!   `migrations/postgres`), embedded in the binary and applied by [`Store::connect`].
//! - The guarantees the rest of Kefu leans on: an inbound message is recorded once
//!   ([`Store::record_inbound`] is idempotent by platform + chat + platform message id); what a
//!   message changes is committed together ([`UnitOfWork`]); an outgoing message stays in the
//!   outbox until marked delivered (at-least-once); a ticket is claimed by exactly one staff
//!   member ([`Store::claim`], [`Store::claim_next`]).
//!
//! # What it must not know
//! No platform crate (teloxide, serenity) and no policy: the conversation state is opaque JSON
//! owned by kefu-core, ids are strings, and the caller passes every timestamp in. **Redaction is
//! the caller's job**: the store keeps exactly the text it is given and never reads
//! [`Inbound::text`](kefu_core::model::Inbound::text); pass the redacted text.
//!
//! # Layout
//! - [`store`]: [`Store`] (connecting, migrating, reads and one-shot writes) and [`UnitOfWork`]
//!   (one transaction for everything handling a message changes).
//! - `ops`: every query, written once; a small macro compiles each body for both drivers, so the
//!   SQL text is shared (sqlx's SQLite driver accepts `$1`) and only the dialect differences
//!   (`FOR UPDATE`, `SKIP LOCKED`) are spelled twice.
//! - `staff`: the staff console's queries (accounts, sessions, API tokens, sign-in failures,
//!   the bot's decisions and the report's counts), written the same way.
//! - `labels`: ticket labels (what staff said a ticket was about), KB decisions (suggestions
//!   accepted or rejected) and the transcript with each line's ticket, written the same way.
//! - [`types`]: values the store takes and returns besides kefu-core's domain types.
//! - [`error`]: [`StoreError`] and [`redact_url`].
//!
//! # Locking and atomicity
//! - **SQLite** (WAL, foreign keys on, 5 s busy timeout): every [`UnitOfWork`] starts with
//!   `BEGIN IMMEDIATE`, taking the database's single write lock up front. sqlx's `begin()` is
//!   deferred, and a deferred transaction that reads and then writes fails with `SQLITE_BUSY`
//!   (not retried by the busy timeout) when another writer got in first. So writers queue on the
//!   busy timeout, one unit of work at a time, while readers carry on from the WAL. Claims are a
//!   conditional `UPDATE … WHERE status = 'queued' RETURNING id` under that lock.
//! - **PostgreSQL** (read committed): [`UnitOfWork::load_conversation`] takes
//!   `SELECT … FOR UPDATE` on the conversation's row, so only work on the same conversation waits.
//!   [`Store::claim`] is the same conditional `UPDATE` (a concurrent claimer waits for the row
//!   lock, re-checks `status = 'queued'`, and matches nothing); [`Store::claim_next`] picks its
//!   row with `FOR UPDATE SKIP LOCKED`, so concurrent staff get distinct tickets without waiting.

pub mod error;
mod labels;
mod ops;
mod retention;
mod staff;
pub mod store;
pub mod types;

pub use error::{Result, StoreError, redact_url};
pub use store::{Store, UnitOfWork};
pub use types::{
    Activity, Backend, CancelOutcome, ClaimOutcome, Conversation, DeadLetter, FailedDelivery,
    InboundOutcome, KbDecision, LabelKind, Miss, MissSummary, NewLine, NewTicket, OpenTicket,
    OutboxMessage, Pruned, Rating, RecentInbound, ReleaseOutcome, ResolveOutcome, StaffRecord,
    StaffSessionRecord, StoreOptions, StoredInbound, TaggedLine, TicketLabel, User,
};
