//! Every query, written once and compiled for both backends.
//!
//! [`Conn`] is a borrowed connection of either backend; [`dispatch!`] expands an operation's body
//! once per backend, so the same SQL text (sqlx's SQLite driver accepts `$1` placeholders) is
//! type-checked against each driver. Where the dialects differ (`FOR UPDATE`, `SKIP LOCKED`) the
//! body picks the text with the `pg` flag. Timestamps are truncated to microseconds on the way in,
//! PostgreSQL's precision, so both backends hand back exactly what they were given.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kefu_core::delivery::Delivery;
use kefu_core::model::{
    Attachment, Button, ConversationRef, Detail, Inbound, Outgoing, Priority, Redacted, Sender,
    Ticket, TicketStatus, TranscriptLine,
};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, SqliteConnection};

use crate::error::{Result, StoreError, db};
use crate::types::{
    CancelOutcome, ClaimOutcome, Conversation, DeadLetter, FailedDelivery, InboundOutcome, Miss,
    MissSummary, NewLine, NewTicket, OpenTicket, OutboxMessage, Rating, RecentInbound,
    ReleaseOutcome, ResolveOutcome, StoredInbound, User,
};

/// A borrowed connection (or open transaction) of either backend.
#[derive(Debug)]
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// Runs `$body` with `$c` bound to the backend's connection and `$pg` to whether it is PostgreSQL.
macro_rules! dispatch {
    ($conn:expr, |$c:ident, $pg:ident| $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => {
                #[allow(unused_variables, reason = "only some bodies differ per backend")]
                let $pg = false;
                $body
            }
            Conn::Postgres($c) => {
                #[allow(unused_variables, reason = "only some bodies differ per backend")]
                let $pg = true;
                $body
            }
        }
    };
}

pub(crate) use dispatch;

/// The columns [`TicketRow`] reads, joined with the conversation.
macro_rules! ticket_select {
    () => {
        "SELECT t.id, t.code, c.platform, c.chat_id, c.user_id, t.user_name, t.intent, t.priority, \
         t.status, t.assignee, t.reason, t.details, t.created_at, t.claimed_at, t.resolved_at \
         FROM tickets t JOIN conversations c ON c.id = t.conversation_id "
    };
}

/// Creates the conversation row if missing and evaluates to its id.
macro_rules! ensure_conversation {
    ($c:ident, $cref:expr) => {{
        sqlx::query(
            "INSERT INTO conversations (platform, chat_id, user_id) VALUES ($1, $2, $3) \
             ON CONFLICT (platform, chat_id, user_id) DO NOTHING",
        )
        .bind(&$cref.platform)
        .bind(&$cref.chat_id)
        .bind(&$cref.user_id)
        .execute(&mut *$c)
        .await
        .map_err(db("create a conversation"))?;
        let id: i64 = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE platform = $1 AND chat_id = $2 AND user_id = $3",
        )
        .bind(&$cref.platform)
        .bind(&$cref.chat_id)
        .bind(&$cref.user_id)
        .fetch_one(&mut *$c)
        .await
        .map_err(db("find a conversation"))?;
        id
    }};
}

/// Reads ticket `$id` on connection `$c`: evaluates to `Option<Ticket>`, `?`-propagating errors.
macro_rules! ticket_in {
    ($c:ident, $id:expr) => {{
        let row: Option<TicketRow> = sqlx::query_as(concat!(ticket_select!(), "WHERE t.id = $1"))
            .bind($id)
            .fetch_optional(&mut *$c)
            .await
            .map_err(db("read a ticket"))?;
        row.map(Ticket::try_from).transpose()?
    }};
}

/// Status and assignee of a ticket, for explaining why a conditional update changed nothing.
macro_rules! status_of {
    ($c:ident, $id:expr) => {{
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, assignee FROM tickets WHERE id = $1")
                .bind($id)
                .fetch_optional(&mut *$c)
                .await
                .map_err(db("read a ticket's status"))?;
        match row {
            None => None,
            Some((status, assignee)) => Some((
                TicketStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                    what: format!("ticket {} has status {status:?}", $id),
                })?,
                assignee,
            )),
        }
    }};
}

/// Microsecond precision, PostgreSQL's, so both backends round-trip the same value.
pub(crate) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// The queue rank of a priority: higher is served first.
pub(crate) fn priority_rank(priority: Priority) -> i64 {
    match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    id: i64,
    code: String,
    platform: String,
    chat_id: String,
    user_id: String,
    user_name: String,
    intent: Option<String>,
    priority: String,
    status: String,
    assignee: Option<String>,
    reason: String,
    details: Json<Vec<Detail>>,
    created_at: DateTime<Utc>,
    claimed_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
}

impl TryFrom<TicketRow> for Ticket {
    type Error = StoreError;

    fn try_from(r: TicketRow) -> Result<Self> {
        let priority = Priority::parse(&r.priority).ok_or_else(|| StoreError::Corrupt {
            what: format!("ticket {} has priority {:?}", r.id, r.priority),
        })?;
        let status = TicketStatus::parse(&r.status).ok_or_else(|| StoreError::Corrupt {
            what: format!("ticket {} has status {:?}", r.id, r.status),
        })?;
        Ok(Ticket {
            id: r.id,
            code: r.code,
            conversation: ConversationRef {
                platform: r.platform,
                chat_id: r.chat_id,
                user_id: r.user_id,
            },
            user_name: r.user_name,
            intent: r.intent,
            priority,
            status,
            assignee: r.assignee,
            reason: r.reason,
            details: r.details.0,
            created_at: r.created_at,
            claimed_at: r.claimed_at,
            resolved_at: r.resolved_at,
        })
    }
}

fn tickets(rows: Vec<TicketRow>) -> Result<Vec<Ticket>> {
    rows.into_iter().map(Ticket::try_from).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct LineRow {
    at: DateTime<Utc>,
    sender_kind: String,
    sender_name: Option<String>,
    text: String,
}

impl TryFrom<LineRow> for TranscriptLine {
    type Error = StoreError;

    fn try_from(r: LineRow) -> Result<Self> {
        let sender = match (r.sender_kind.as_str(), r.sender_name) {
            ("user", _) => Sender::User,
            ("bot", _) => Sender::Bot,
            ("staff", Some(name)) => Sender::Staff(name),
            (kind, _) => {
                return Err(StoreError::Corrupt {
                    what: format!("transcript line with sender {kind:?}"),
                });
            }
        };
        Ok(TranscriptLine {
            at: r.at,
            sender,
            text: r.text,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    platform: String,
    destination: String,
    kind: String,
    chat_id: Option<String>,
    user_id: Option<String>,
    ticket_id: Option<i64>,
    text: String,
    buttons: Json<Vec<Button>>,
    reply_to: Option<String>,
    payload: Json<Value>,
    created_at: DateTime<Utc>,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
}

impl TryFrom<OutboxRow> for OutboxMessage {
    type Error = StoreError;

    fn try_from(r: OutboxRow) -> Result<Self> {
        let corrupt = |what: &str| StoreError::Corrupt {
            what: format!("outbox row {} ({}): {what}", r.id, r.kind),
        };
        let conversation = || -> Result<ConversationRef> {
            match (&r.chat_id, &r.user_id) {
                (Some(chat_id), Some(user_id)) => Ok(ConversationRef {
                    platform: r.platform.clone(),
                    chat_id: chat_id.clone(),
                    user_id: user_id.clone(),
                }),
                _ => Err(corrupt("no conversation")),
            }
        };
        let ticket_id = || r.ticket_id.ok_or_else(|| corrupt("no ticket"));
        let payload_str = |key: &str| {
            r.payload
                .0
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| corrupt(&format!("no {key} in the payload")))
        };
        let delivery = match r.kind.as_str() {
            "user_message" => Delivery::UserMessage(Outgoing {
                conversation: conversation()?,
                text: r.text.clone(),
                buttons: r.buttons.0.clone(),
                reply_to: r.reply_to.clone(),
            }),
            "delete_message" => Delivery::DeleteUserMessage {
                conversation: conversation()?,
                platform_message_id: payload_str("message_id")?,
            },
            "staff_open" => Delivery::OpenStaffSpace {
                ticket_id: ticket_id()?,
                title: payload_str("title")?,
            },
            "staff_post" => Delivery::StaffPost {
                ticket_id: ticket_id()?,
                post: serde_json::from_value(r.payload.0.clone())
                    .map_err(|e| corrupt(&format!("unreadable staff post: {e}")))?,
            },
            "staff_close" => Delivery::CloseStaffSpace {
                ticket_id: ticket_id()?,
            },
            other => return Err(corrupt(&format!("unknown kind {other:?}"))),
        };
        Ok(OutboxMessage {
            id: r.id,
            platform: r.platform,
            destination: r.destination,
            delivery,
            created_at: r.created_at,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
        })
    }
}

#[derive(sqlx::FromRow)]
struct InboundRow {
    id: i64,
    platform: String,
    chat_id: String,
    user_id: String,
    conversation_id: i64,
    user_name: String,
    platform_message_id: String,
    text: String,
    sent_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    attachments: Json<Vec<Attachment>>,
    pressed: bool,
    attempts: i64,
}

impl From<InboundRow> for StoredInbound {
    fn from(r: InboundRow) -> Self {
        StoredInbound {
            id: r.id,
            conversation: ConversationRef {
                platform: r.platform,
                chat_id: r.chat_id,
                user_id: r.user_id,
            },
            conversation_id: r.conversation_id,
            user_name: r.user_name,
            platform_message_id: r.platform_message_id,
            text: r.text,
            sent_at: r.sent_at,
            received_at: r.received_at,
            attachments: r.attachments.0,
            pressed: r.pressed,
            attempts: r.attempts,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MissRow {
    text: String,
    occurrences: i64,
    last_at: DateTime<Utc>,
    language: Option<String>,
    intent_guess: Option<String>,
    mean_confidence: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: i64,
    state: Option<Json<Value>>,
    updated_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------------
// Inbound messages and users

/// Records an inbound message once, leased to `owner` until `lease_until` for its handling.
pub(crate) async fn record_inbound(
    conn: Conn<'_>,
    inbound: &Inbound,
    redacted_text: &Redacted,
    owner: &str,
    lease_until: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> Result<InboundOutcome> {
    let cref = &inbound.conversation;
    let received_at = micros(received_at);
    dispatch!(conn, |c, pg| {
        sqlx::query(
            "INSERT INTO users (platform, user_id, display_name, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (platform, user_id) DO UPDATE \
             SET display_name = excluded.display_name, updated_at = excluded.updated_at",
        )
        .bind(&cref.platform)
        .bind(&cref.user_id)
        .bind(&inbound.user_name)
        .bind(received_at)
        .execute(&mut *c)
        .await
        .map_err(db("record the user"))?;
        let conversation_id = ensure_conversation!(c, cref);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbound_messages \
             (platform, chat_id, platform_message_id, conversation_id, user_name, text, sent_at, \
              received_at, attachments, pressed, lease_owner, lease_expires_at, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1) \
             ON CONFLICT (platform, chat_id, platform_message_id) DO NOTHING RETURNING id",
        )
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&inbound.platform_message_id)
        .bind(conversation_id)
        .bind(&inbound.user_name)
        .bind(redacted_text.as_str())
        .bind(micros(inbound.at))
        .bind(received_at)
        .bind(Json(&inbound.attachments))
        .bind(inbound.pressed)
        .bind(owner)
        .bind(micros(lease_until))
        .fetch_optional(&mut *c)
        .await
        .map_err(db("record an inbound message"))?;
        Ok(id.map_or(InboundOutcome::Duplicate, InboundOutcome::New))
    })
}

/// The columns [`InboundRow`] reads, `i` being inbound_messages and `c` conversations.
macro_rules! inbound_columns {
    () => {
        "i.id, c.platform, c.chat_id, c.user_id, i.conversation_id, i.user_name, \
         i.platform_message_id, i.text, i.sent_at, i.received_at, i.attachments, i.pressed, i.attempts"
    };
}

/// Reads inbound message `$id` on connection `$c` as an [`InboundRow`], `?`-propagating errors.
macro_rules! inbound_row {
    ($c:ident, $id:expr) => {{
        let row: InboundRow = sqlx::query_as(concat!(
            "SELECT ",
            inbound_columns!(),
            " FROM inbound_messages i JOIN conversations c ON c.id = i.conversation_id \
             WHERE i.id = $1"
        ))
        .bind($id)
        .fetch_one(&mut *$c)
        .await
        .map_err(db("read an inbound message"))?;
        row
    }};
}

/// Takes over unprocessed messages whose lease expired (their handler died or gave up), in the
/// order they were stored (their ids: the clocks of several processes may disagree on when they
/// were received), leasing them to `owner`. A message waits while an earlier one of its
/// conversation is still leased to a handler: a user's messages are handled in the order they
/// were stored. Messages whose handling began `max_attempts` times already are set aside as
/// failed instead: one message that always fails must not be retried forever.
pub(crate) async fn claim_stale_inbound(
    conn: Conn<'_>,
    owner: &str,
    lease_until: DateTime<Utc>,
    max_attempts: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<StoredInbound>> {
    let now = micros(now);
    let rows: Vec<InboundRow> = dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE inbound_messages SET failed_at = $2, failure = $3 \
             WHERE processed_at IS NULL AND failed_at IS NULL AND attempts >= $1 \
             AND (lease_expires_at IS NULL OR lease_expires_at <= $2)",
        )
        .bind(max_attempts)
        .bind(now)
        .bind(format!("handling failed {max_attempts} times"))
        .execute(&mut *c)
        .await
        .map_err(db("set aside messages whose handling keeps failing"))?;
        let sql = if pg {
            "UPDATE inbound_messages SET lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM inbound_messages \
             WHERE processed_at IS NULL AND failed_at IS NULL \
             AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
             AND NOT EXISTS (SELECT 1 FROM inbound_messages o \
             WHERE o.conversation_id = inbound_messages.conversation_id AND o.id < inbound_messages.id \
             AND o.processed_at IS NULL AND o.failed_at IS NULL AND o.lease_expires_at > $3) \
             ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id"
        } else {
            "UPDATE inbound_messages SET lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM inbound_messages \
             WHERE processed_at IS NULL AND failed_at IS NULL \
             AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
             AND NOT EXISTS (SELECT 1 FROM inbound_messages o \
             WHERE o.conversation_id = inbound_messages.conversation_id AND o.id < inbound_messages.id \
             AND o.processed_at IS NULL AND o.failed_at IS NULL AND o.lease_expires_at > $3) \
             ORDER BY id LIMIT $4) RETURNING id"
        };
        let ids: Vec<i64> = sqlx::query_scalar(sql)
            .bind(owner)
            .bind(micros(lease_until))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *c)
            .await
            .map_err(db("take over unprocessed inbound messages"))?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            rows.push(inbound_row!(c, id));
        }
        rows
    });
    let mut out: Vec<StoredInbound> = rows.into_iter().map(StoredInbound::from).collect();
    out.sort_by_key(|m| m.id);
    Ok(out)
}

/// Takes the next message of `after`'s conversation that waits unleased or with its lease
/// expired, none earlier of the conversation still leased, leasing it to `owner` until
/// `lease_until`. A message whose handling began `max_attempts` times is left to
/// [`claim_stale_inbound`], which sets it aside.
pub(crate) async fn claim_next_waiting(
    conn: Conn<'_>,
    after: i64,
    owner: &str,
    lease_until: DateTime<Utc>,
    max_attempts: i64,
    now: DateTime<Utc>,
) -> Result<Option<StoredInbound>> {
    let now = micros(now);
    // PostgreSQL skips a row another claimer is locking; SQLite has one writer at a time.
    macro_rules! next_waiting {
        ($lock:literal) => {
            concat!(
                "UPDATE inbound_messages SET lease_owner = $1, lease_expires_at = $2, \
                 attempts = attempts + 1 WHERE id IN (SELECT m.id FROM inbound_messages m \
                 WHERE m.conversation_id = (SELECT conversation_id FROM inbound_messages WHERE id = $4) \
                 AND m.processed_at IS NULL AND m.failed_at IS NULL AND m.attempts < $5 \
                 AND (m.lease_expires_at IS NULL OR m.lease_expires_at <= $3) \
                 AND NOT EXISTS (SELECT 1 FROM inbound_messages o \
                 WHERE o.conversation_id = m.conversation_id AND o.id < m.id \
                 AND o.processed_at IS NULL AND o.failed_at IS NULL AND o.lease_expires_at > $3) \
                 ORDER BY m.id LIMIT 1",
                $lock,
                ") RETURNING id"
            )
        };
    }
    let row: Option<InboundRow> = dispatch!(conn, |c, pg| {
        let sql = if pg {
            next_waiting!(" FOR UPDATE SKIP LOCKED")
        } else {
            next_waiting!("")
        };
        let id: Option<i64> = sqlx::query_scalar(sql)
            .bind(owner)
            .bind(micros(lease_until))
            .bind(now)
            .bind(after)
            .bind(max_attempts)
            .fetch_optional(&mut *c)
            .await
            .map_err(db("take the next waiting message of a conversation"))?;
        match id {
            Some(id) => Some(inbound_row!(c, id)),
            None => None,
        }
    });
    Ok(row.map(StoredInbound::from))
}

/// Marks an inbound message handled — only while `owner` still holds its lease and it is neither
/// handled nor set aside. `false` means another handler took it over: the caller's turn must not
/// commit. On PostgreSQL this also locks the row until commit, so a concurrent take-over waits for
/// the turn and then finds it handled.
pub(crate) async fn finish_inbound(
    conn: Conn<'_>,
    inbound_id: i64,
    owner: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE inbound_messages SET processed_at = $3, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND lease_owner = $2 AND processed_at IS NULL AND failed_at IS NULL",
        )
        .bind(inbound_id)
        .bind(owner)
        .bind(micros(at))
        .execute(c)
        .await
        .map_err(db("mark an inbound message handled"))?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Whether an earlier message of the same conversation is neither handled nor set aside.
pub(crate) async fn earlier_unhandled(conn: Conn<'_>, inbound_id: i64) -> Result<bool> {
    let n: i64 = dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM inbound_messages o JOIN inbound_messages m \
             ON o.conversation_id = m.conversation_id \
             WHERE m.id = $1 AND o.id < m.id AND o.processed_at IS NULL AND o.failed_at IS NULL",
        )
        .bind(inbound_id)
        .fetch_one(c)
        .await
        .map_err(db("look for earlier unhandled messages"))?
    });
    Ok(n > 0)
}

/// Ends `owner`'s lease on an unhandled message that waits its turn, so whoever takes its
/// conversation's next message, or recovery, takes it over then; its handling did not begin, so
/// the attempt is given back.
pub(crate) async fn release_inbound(conn: Conn<'_>, inbound_id: i64, owner: &str) -> Result<bool> {
    let done = dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE inbound_messages SET lease_owner = NULL, lease_expires_at = NULL, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
             WHERE id = $1 AND lease_owner = $2 AND processed_at IS NULL AND failed_at IS NULL",
        )
        .bind(inbound_id)
        .bind(owner)
        .execute(c)
        .await
        .map_err(db("release an inbound message"))?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Sets an inbound message aside for good: its handling can never succeed.
pub(crate) async fn fail_inbound(
    conn: Conn<'_>,
    inbound_id: i64,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE inbound_messages SET failed_at = $3, failure = $2, lease_owner = NULL, \
             lease_expires_at = NULL WHERE id = $1 AND processed_at IS NULL AND failed_at IS NULL",
        )
        .bind(inbound_id)
        .bind(reason)
        .bind(micros(at))
        .execute(c)
        .await
        .map_err(db("set an inbound message aside"))?
        .rows_affected()
    });
    Ok(done == 1)
}

/// How many messages a conversation received since `since` (flood control, shared by every
/// instance on the database).
pub(crate) async fn count_recent_inbound(
    conn: Conn<'_>,
    conversation_id: i64,
    since: DateTime<Utc>,
) -> Result<RecentInbound> {
    let (typed, latest): (i64, Option<i64>) = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE pressed = $3), MAX(id) FROM inbound_messages \
             WHERE conversation_id = $1 AND received_at > $2",
        )
        .bind(conversation_id)
        .bind(micros(since))
        .bind(false)
        .fetch_one(c)
        .await
        .map_err(db("count a conversation's recent messages"))?
    });
    Ok(RecentInbound { typed, latest })
}

/// The conversation's inbound messages received after `since` and before message `before_id`,
/// oldest first, at most `limit` (the most recent ones): the window a seed phrase split over
/// messages is looked for in.
pub(crate) async fn recent_inbound_texts(
    conn: Conn<'_>,
    conversation_id: i64,
    before_id: i64,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, String)>> {
    let mut rows: Vec<(i64, String)> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT id, text FROM inbound_messages WHERE conversation_id = $1 AND id < $2 \
             AND received_at > $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(conversation_id)
        .bind(before_id)
        .bind(micros(since))
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db("read a conversation's recent messages"))?
    });
    rows.reverse();
    Ok(rows)
}

/// Replaces an inbound message's text — and the text of the transcript line and miss recorded
/// from it — with `redacted`: a secret found after the message was stored.
pub(crate) async fn redact_inbound(
    conn: Conn<'_>,
    inbound_id: i64,
    redacted: &Redacted,
) -> Result<()> {
    dispatch!(conn, |c, pg| {
        for (sql, what) in [
            (
                "UPDATE inbound_messages SET text = $2 WHERE id = $1",
                "redact an inbound message",
            ),
            (
                "UPDATE transcript_lines SET text = $2 WHERE inbound_id = $1",
                "redact a transcript line",
            ),
            (
                "UPDATE misses SET text = $2 WHERE inbound_id = $1",
                "redact a miss",
            ),
        ] {
            sqlx::query(sql)
                .bind(inbound_id)
                .bind(redacted.as_str())
                .execute(&mut *c)
                .await
                .map_err(db(what))?;
        }
    });
    Ok(())
}

/// Records a platform update that could never be stored.
pub(crate) async fn record_dead_letter(conn: Conn<'_>, letter: &DeadLetter) -> Result<i64> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "INSERT INTO dead_letters (platform, source, chat_id, reason, at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&letter.platform)
        .bind(&letter.source)
        .bind(letter.chat_id.as_deref())
        .bind(&letter.reason)
        .bind(micros(letter.at))
        .fetch_one(c)
        .await
        .map_err(db("record a dead letter"))
    })
}

/// The chats of `platform` with a message received since `since`, each with its latest stored
/// message id (by arrival), most recent chats first, at most `limit`.
pub(crate) async fn recent_inbound_chats(
    conn: Conn<'_>,
    platform: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(String, String)>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT m.chat_id, m.platform_message_id FROM inbound_messages m \
             JOIN (SELECT chat_id, MAX(id) AS id FROM inbound_messages \
                   WHERE platform = $1 AND received_at >= $2 GROUP BY chat_id) last ON last.id = m.id \
             ORDER BY m.id DESC LIMIT $3",
        )
        .bind(platform)
        .bind(micros(since))
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db("list recent chats"))
    })
}

pub(crate) async fn dead_letters(conn: Conn<'_>, limit: i64) -> Result<Vec<DeadLetter>> {
    type Row = (String, String, Option<String>, String, DateTime<Utc>);
    let rows: Vec<Row> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT platform, source, chat_id, reason, at FROM dead_letters \
                 ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db("list dead letters"))?
    });
    Ok(rows
        .into_iter()
        .map(|(platform, source, chat_id, reason, at)| DeadLetter {
            platform,
            source,
            chat_id,
            reason,
            at,
        })
        .collect())
}

pub(crate) async fn user(conn: Conn<'_>, platform: &str, user_id: &str) -> Result<Option<User>> {
    let row: Option<(String, Option<String>)> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT display_name, language FROM users WHERE platform = $1 AND user_id = $2",
        )
        .bind(platform)
        .bind(user_id)
        .fetch_optional(c)
        .await
        .map_err(db("read a user"))?
    });
    Ok(row.map(|(display_name, language)| User {
        platform: platform.to_owned(),
        user_id: user_id.to_owned(),
        display_name,
        language,
    }))
}

pub(crate) async fn set_user_language(
    conn: Conn<'_>,
    platform: &str,
    user_id: &str,
    language: Option<&str>,
) -> Result<bool> {
    let n = dispatch!(conn, |c, pg| {
        sqlx::query("UPDATE users SET language = $3 WHERE platform = $1 AND user_id = $2")
            .bind(platform)
            .bind(user_id)
            .bind(language)
            .execute(c)
            .await
            .map_err(db("set a user's language"))?
            .rows_affected()
    });
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// Conversations and transcripts

/// Creates the conversation if needed and reads it, locked until the transaction ends: on
/// PostgreSQL with `FOR UPDATE`; SQLite needs no row lock because the unit of work began with
/// `BEGIN IMMEDIATE` and holds the database's write lock. `FOR UPDATE`, not `FOR NO KEY
/// UPDATE`: a message stored for the conversation meanwhile (its foreign key takes a key-share
/// lock) waits for the commit, which a turn's look for later messages relies on.
pub(crate) async fn load_conversation(
    conn: Conn<'_>,
    cref: &ConversationRef,
) -> Result<Conversation> {
    let row: ConversationRow = dispatch!(conn, |c, pg| {
        let _ = ensure_conversation!(c, cref);
        let sql = if pg {
            "SELECT id, state, updated_at FROM conversations \
             WHERE platform = $1 AND chat_id = $2 AND user_id = $3 FOR UPDATE"
        } else {
            "SELECT id, state, updated_at FROM conversations \
             WHERE platform = $1 AND chat_id = $2 AND user_id = $3"
        };
        sqlx::query_as(sql)
            .bind(&cref.platform)
            .bind(&cref.chat_id)
            .bind(&cref.user_id)
            .fetch_one(&mut *c)
            .await
            .map_err(db("load a conversation"))?
    });
    Ok(conversation_from(row, cref))
}

/// Reads a conversation without creating or locking it.
pub(crate) async fn conversation(
    conn: Conn<'_>,
    cref: &ConversationRef,
) -> Result<Option<Conversation>> {
    let row: Option<ConversationRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT id, state, updated_at FROM conversations \
             WHERE platform = $1 AND chat_id = $2 AND user_id = $3",
        )
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .fetch_optional(c)
        .await
        .map_err(db("read a conversation"))?
    });
    Ok(row.map(|row| conversation_from(row, cref)))
}

fn conversation_from(row: ConversationRow, cref: &ConversationRef) -> Conversation {
    Conversation {
        id: row.id,
        reference: cref.clone(),
        state: row.state.map(|j| j.0),
        updated_at: row.updated_at,
    }
}

pub(crate) async fn save_conversation(
    conn: Conn<'_>,
    conversation_id: i64,
    state: &Value,
    at: DateTime<Utc>,
) -> Result<()> {
    let n = dispatch!(conn, |c, pg| {
        sqlx::query("UPDATE conversations SET state = $2, updated_at = $3 WHERE id = $1")
            .bind(conversation_id)
            .bind(Json(state))
            .bind(micros(at))
            .execute(c)
            .await
            .map_err(db("save a conversation's state"))?
            .rows_affected()
    });
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::UnknownConversation {
            id: conversation_id,
        })
    }
}

pub(crate) async fn append_transcript(
    conn: Conn<'_>,
    conversation_id: i64,
    ticket_id: Option<i64>,
    inbound_id: Option<i64>,
    line: &NewLine,
) -> Result<i64> {
    let (kind, name) = match &line.sender {
        Sender::User => ("user", None),
        Sender::Bot => ("bot", None),
        Sender::Staff(name) => ("staff", Some(name.as_str())),
    };
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "INSERT INTO transcript_lines (conversation_id, ticket_id, at, sender_kind, sender_name, text, inbound_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(conversation_id)
        .bind(ticket_id)
        .bind(micros(line.at))
        .bind(kind)
        .bind(name)
        .bind(line.text.as_str())
        .bind(inbound_id)
        .fetch_one(c)
        .await
        .map_err(db("append to a transcript"))
    })
}

pub(crate) async fn transcript(
    conn: Conn<'_>,
    cref: &ConversationRef,
) -> Result<Vec<TranscriptLine>> {
    let rows: Vec<LineRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT l.at, l.sender_kind, l.sender_name, l.text FROM transcript_lines l \
             JOIN conversations c ON c.id = l.conversation_id \
             WHERE c.platform = $1 AND c.chat_id = $2 AND c.user_id = $3 ORDER BY l.id",
        )
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .fetch_all(c)
        .await
        .map_err(db("read a transcript"))?
    });
    rows.into_iter().map(TranscriptLine::try_from).collect()
}

pub(crate) async fn ticket_transcript(
    conn: Conn<'_>,
    ticket_id: i64,
) -> Result<Vec<TranscriptLine>> {
    let rows: Vec<LineRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT at, sender_kind, sender_name, text FROM transcript_lines \
             WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(c)
        .await
        .map_err(db("read a ticket's transcript"))?
    });
    rows.into_iter().map(TranscriptLine::try_from).collect()
}

pub(crate) async fn tag_transcript_from(
    conn: Conn<'_>,
    conversation_id: i64,
    from_line_id: i64,
    ticket_id: i64,
) -> Result<u64> {
    Ok(dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE transcript_lines SET ticket_id = $3 \
             WHERE conversation_id = $1 AND id >= $2 AND ticket_id IS NULL",
        )
        .bind(conversation_id)
        .bind(from_line_id)
        .bind(ticket_id)
        .execute(c)
        .await
        .map_err(db("tag transcript lines with a ticket"))?
        .rows_affected()
    }))
}

pub(crate) async fn last_activity(
    conn: Conn<'_>,
    cref: &ConversationRef,
) -> Result<Option<DateTime<Utc>>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "SELECT MAX(l.at) FROM transcript_lines l \
             JOIN conversations c ON c.id = l.conversation_id \
             WHERE c.platform = $1 AND c.chat_id = $2 AND c.user_id = $3",
        )
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .fetch_one(c)
        .await
        .map_err(db("find a conversation's last activity"))
    })
}

// ---------------------------------------------------------------------------------------------
// Chat routes

pub(crate) async fn set_chat_route(
    conn: Conn<'_>,
    cref: &ConversationRef,
    route: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let done = dispatch!(conn, |c, pg| {
        sqlx::query(
            "INSERT INTO chat_routes (platform, chat_id, user_id, route, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (platform, chat_id, user_id) DO UPDATE \
             SET route = excluded.route, created_at = excluded.created_at",
        )
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .bind(route)
        .bind(micros(at))
        .execute(c)
        .await
        .map(|_| ())
    });
    match done {
        Ok(()) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::RouteTaken {
            platform: cref.platform.clone(),
            route: route.to_owned(),
        }),
        Err(e) => Err(db("record a chat route")(e)),
    }
}

pub(crate) async fn chat_route(conn: Conn<'_>, cref: &ConversationRef) -> Result<Option<String>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "SELECT route FROM chat_routes WHERE platform = $1 AND chat_id = $2 AND user_id = $3",
        )
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .fetch_optional(c)
        .await
        .map_err(db("find a chat route"))
    })
}

pub(crate) async fn conversation_for_route(
    conn: Conn<'_>,
    platform: &str,
    route: &str,
) -> Result<Option<ConversationRef>> {
    let row: Option<(String, String)> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT chat_id, user_id FROM chat_routes WHERE platform = $1 AND route = $2",
        )
        .bind(platform)
        .bind(route)
        .fetch_optional(c)
        .await
        .map_err(db("find the conversation of a chat route"))?
    });
    Ok(row.map(|(chat_id, user_id)| ConversationRef {
        platform: platform.to_owned(),
        chat_id,
        user_id,
    }))
}

// ---------------------------------------------------------------------------------------------
// Tickets

pub(crate) async fn open_ticket(conn: Conn<'_>, new: &NewTicket) -> Result<Ticket> {
    let result = dispatch!(conn, |c, pg| {
        let id: std::result::Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO tickets (code, conversation_id, user_name, intent, priority, priority_rank, \
             status, reason, details, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9) RETURNING id",
        )
        .bind(&new.code)
        .bind(new.conversation_id)
        .bind(&new.user_name)
        .bind(new.intent.as_deref())
        .bind(new.priority.as_str())
        .bind(priority_rank(new.priority))
        .bind(&new.reason)
        .bind(Json(&new.details))
        .bind(micros(new.created_at))
        .fetch_one(&mut *c)
        .await;
        match id {
            Ok(id) => ticket_in!(c, id),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::DuplicateTicketCode {
                    code: new.code.clone(),
                });
            }
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                return Err(StoreError::UnknownConversation {
                    id: new.conversation_id,
                });
            }
            Err(e) => return Err(db("open a ticket")(e)),
        }
    });
    result.ok_or_else(|| StoreError::Corrupt {
        what: "a ticket vanished right after it was opened".to_owned(),
    })
}

pub(crate) async fn ticket(conn: Conn<'_>, id: i64) -> Result<Option<Ticket>> {
    Ok(dispatch!(conn, |c, pg| ticket_in!(c, id)))
}

pub(crate) async fn ticket_by_code(conn: Conn<'_>, code: &str) -> Result<Option<Ticket>> {
    let row: Option<TicketRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(ticket_select!(), "WHERE t.code = $1"))
            .bind(code)
            .fetch_optional(c)
            .await
            .map_err(db("find a ticket by code"))?
    });
    row.map(Ticket::try_from).transpose()
}

pub(crate) async fn open_ticket_for(
    conn: Conn<'_>,
    cref: &ConversationRef,
) -> Result<Option<Ticket>> {
    let row: Option<TicketRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(
            ticket_select!(),
            "WHERE c.platform = $1 AND c.chat_id = $2 AND c.user_id = $3 \
             AND t.status IN ('queued', 'claimed') ORDER BY t.created_at DESC, t.id DESC LIMIT 1"
        ))
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .fetch_optional(c)
        .await
        .map_err(db("find a conversation's open ticket"))?
    });
    row.map(Ticket::try_from).transpose()
}

pub(crate) async fn open_tickets(conn: Conn<'_>, now: DateTime<Utc>) -> Result<Vec<OpenTicket>> {
    let rows: Vec<TicketRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(
            ticket_select!(),
            "WHERE t.status IN ('queued', 'claimed') ORDER BY t.priority_rank DESC, t.created_at, t.id"
        ))
        .fetch_all(c)
        .await
        .map_err(db("list open tickets"))?
    });
    Ok(tickets(rows)?
        .into_iter()
        .map(|ticket| {
            let until = ticket.claimed_at.unwrap_or(now);
            OpenTicket {
                waiting: (until - ticket.created_at).max(TimeDelta::zero()),
                ticket,
            }
        })
        .collect())
}

/// A conditional update skipped a ticket that is still queued: statuses never return to
/// `queued`, so something other than this store changed it.
fn still_queued(ticket_id: i64) -> StoreError {
    StoreError::Corrupt {
        what: format!("ticket {ticket_id} is queued yet its conditional update matched nothing"),
    }
}

/// The assignee of a claimed ticket, which always has one.
fn holder(assignee: Option<String>) -> String {
    assignee.unwrap_or_default()
}

pub(crate) async fn claim(
    conn: Conn<'_>,
    ticket_id: i64,
    staff: &str,
    at: DateTime<Utc>,
) -> Result<ClaimOutcome> {
    dispatch!(conn, |c, pg| {
        // The condition on status makes this atomic on both backends: PostgreSQL re-checks it
        // after waiting for a concurrent claimer's row lock; SQLite runs writers one at a time.
        let won: Option<i64> = sqlx::query_scalar(
            "UPDATE tickets SET status = 'claimed', assignee = $2, claimed_at = $3 \
             WHERE id = $1 AND status = 'queued' RETURNING id",
        )
        .bind(ticket_id)
        .bind(staff)
        .bind(micros(at))
        .fetch_optional(&mut *c)
        .await
        .map_err(db("claim a ticket"))?;
        if won.is_some() {
            return Ok(ClaimOutcome::Claimed);
        }
        Ok(match status_of!(c, ticket_id) {
            None => ClaimOutcome::NotFound,
            Some((TicketStatus::Claimed, assignee)) => {
                ClaimOutcome::AlreadyClaimedBy(holder(assignee))
            }
            Some((TicketStatus::Queued, _)) => return Err(still_queued(ticket_id)),
            Some((TicketStatus::Resolved | TicketStatus::Cancelled, _)) => ClaimOutcome::Closed,
        })
    })
}

pub(crate) async fn claim_next(
    conn: Conn<'_>,
    staff: &str,
    at: DateTime<Utc>,
) -> Result<Option<Ticket>> {
    Ok(dispatch!(conn, |c, pg| {
        let sql = if pg {
            "UPDATE tickets SET status = 'claimed', assignee = $1, claimed_at = $2 \
             WHERE status = 'queued' AND id = (SELECT id FROM tickets WHERE status = 'queued' \
             ORDER BY priority_rank DESC, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
        } else {
            // SQLite: the statement runs under the database write lock, so the sub-select and
            // the update see the same queue; no row locking exists or is needed.
            "UPDATE tickets SET status = 'claimed', assignee = $1, claimed_at = $2 \
             WHERE status = 'queued' AND id = (SELECT id FROM tickets WHERE status = 'queued' \
             ORDER BY priority_rank DESC, created_at, id LIMIT 1) RETURNING id"
        };
        let id: Option<i64> = sqlx::query_scalar(sql)
            .bind(staff)
            .bind(micros(at))
            .fetch_optional(&mut *c)
            .await
            .map_err(db("claim the next ticket"))?;
        match id {
            Some(id) => ticket_in!(c, id),
            None => None,
        }
    }))
}

pub(crate) async fn resolve(
    conn: Conn<'_>,
    ticket_id: i64,
    staff: &str,
    at: DateTime<Utc>,
) -> Result<ResolveOutcome> {
    dispatch!(conn, |c, pg| {
        let done: Option<i64> = sqlx::query_scalar(
            "UPDATE tickets SET status = 'resolved', resolved_at = $3 \
             WHERE id = $1 AND status = 'claimed' AND assignee = $2 RETURNING id",
        )
        .bind(ticket_id)
        .bind(staff)
        .bind(micros(at))
        .fetch_optional(&mut *c)
        .await
        .map_err(db("resolve a ticket"))?;
        if done.is_some() {
            return Ok(ResolveOutcome::Resolved);
        }
        Ok(match status_of!(c, ticket_id) {
            None => ResolveOutcome::NotFound,
            Some((TicketStatus::Queued, _)) => ResolveOutcome::NotClaimed,
            Some((TicketStatus::Claimed, assignee)) => ResolveOutcome::HeldBy(holder(assignee)),
            Some((TicketStatus::Resolved | TicketStatus::Cancelled, _)) => ResolveOutcome::Closed,
        })
    })
}

pub(crate) async fn cancel(
    conn: Conn<'_>,
    ticket_id: i64,
    at: DateTime<Utc>,
) -> Result<CancelOutcome> {
    dispatch!(conn, |c, pg| {
        let done: Option<i64> = sqlx::query_scalar(
            "UPDATE tickets SET status = 'cancelled', resolved_at = $2 \
             WHERE id = $1 AND status = 'queued' RETURNING id",
        )
        .bind(ticket_id)
        .bind(micros(at))
        .fetch_optional(&mut *c)
        .await
        .map_err(db("cancel a ticket"))?;
        if done.is_some() {
            return Ok(CancelOutcome::Cancelled);
        }
        Ok(match status_of!(c, ticket_id) {
            None => CancelOutcome::NotFound,
            Some((TicketStatus::Claimed, assignee)) => {
                CancelOutcome::AlreadyClaimedBy(holder(assignee))
            }
            Some((TicketStatus::Queued, _)) => return Err(still_queued(ticket_id)),
            Some((TicketStatus::Resolved | TicketStatus::Cancelled, _)) => CancelOutcome::Closed,
        })
    })
}

pub(crate) async fn release(conn: Conn<'_>, ticket_id: i64, staff: &str) -> Result<ReleaseOutcome> {
    dispatch!(conn, |c, pg| {
        let done: Option<i64> = sqlx::query_scalar(
            "UPDATE tickets SET status = 'queued', assignee = NULL, claimed_at = NULL \
             WHERE id = $1 AND status = 'claimed' AND assignee = $2 RETURNING id",
        )
        .bind(ticket_id)
        .bind(staff)
        .fetch_optional(&mut *c)
        .await
        .map_err(db("release a ticket"))?;
        if done.is_some() {
            return Ok(ReleaseOutcome::Released);
        }
        Ok(match status_of!(c, ticket_id) {
            None => ReleaseOutcome::NotFound,
            Some((TicketStatus::Queued, _)) => ReleaseOutcome::NotClaimed,
            Some((TicketStatus::Claimed, assignee)) => ReleaseOutcome::HeldBy(holder(assignee)),
            Some((TicketStatus::Resolved | TicketStatus::Cancelled, _)) => ReleaseOutcome::Closed,
        })
    })
}

pub(crate) async fn queued_count(conn: Conn<'_>) -> Result<i64> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar("SELECT COUNT(*) FROM tickets WHERE status = 'queued'")
            .fetch_one(c)
            .await
            .map_err(db("count the queue"))
    })
}

pub(crate) async fn queue_position(conn: Conn<'_>, ticket_id: i64) -> Result<Option<u32>> {
    let ahead: i64 = dispatch!(conn, |c, pg| {
        // Counts the queued tickets served no later than this one, itself included.
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets o JOIN tickets t ON t.id = $1 \
             WHERE t.status = 'queued' AND o.status = 'queued' AND ( \
               o.priority_rank > t.priority_rank OR (o.priority_rank = t.priority_rank AND ( \
                 o.created_at < t.created_at OR (o.created_at = t.created_at AND o.id <= t.id))))",
        )
        .bind(ticket_id)
        .fetch_one(c)
        .await
        .map_err(db("compute a queue position"))?
    });
    Ok(u32::try_from(ahead).ok().filter(|&n| n > 0))
}

pub(crate) async fn recent_handling_time(conn: Conn<'_>, last: i64) -> Result<Option<TimeDelta>> {
    let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT created_at, claimed_at FROM tickets WHERE claimed_at IS NOT NULL \
             ORDER BY claimed_at DESC, id DESC LIMIT $1",
        )
        .bind(last)
        .fetch_all(c)
        .await
        .map_err(db("read recent handling times"))?
    });
    let mut waits: Vec<TimeDelta> = rows
        .into_iter()
        .map(|(created, claimed)| (claimed - created).max(TimeDelta::zero()))
        .collect();
    waits.sort_unstable();
    let n = waits.len();
    Ok(match n {
        0 => None,
        _ if n % 2 == 1 => waits.get(n / 2).copied(),
        _ => match (waits.get(n / 2 - 1), waits.get(n / 2)) {
            (Some(a), Some(b)) => Some(*a + (*b - *a) / 2),
            _ => None,
        },
    })
}

pub(crate) async fn set_staff_thread(
    conn: Conn<'_>,
    ticket_id: i64,
    platform: &str,
    thread_id: &str,
) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query(
            "INSERT INTO staff_threads (ticket_id, platform, thread_id) VALUES ($1, $2, $3) \
             ON CONFLICT (ticket_id, platform) DO UPDATE SET thread_id = excluded.thread_id",
        )
        .bind(ticket_id)
        .bind(platform)
        .bind(thread_id)
        .execute(c)
        .await
        .map_err(db("record a staff thread"))?;
    });
    Ok(())
}

pub(crate) async fn staff_thread(
    conn: Conn<'_>,
    ticket_id: i64,
    platform: &str,
) -> Result<Option<String>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "SELECT thread_id FROM staff_threads WHERE ticket_id = $1 AND platform = $2",
        )
        .bind(ticket_id)
        .bind(platform)
        .fetch_optional(c)
        .await
        .map_err(db("find a staff thread"))
    })
}

pub(crate) async fn ticket_by_staff_thread(
    conn: Conn<'_>,
    platform: &str,
    thread_id: &str,
) -> Result<Option<Ticket>> {
    let row: Option<TicketRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(
            ticket_select!(),
            "JOIN staff_threads s ON s.ticket_id = t.id WHERE s.platform = $1 AND s.thread_id = $2"
        ))
        .bind(platform)
        .bind(thread_id)
        .fetch_optional(c)
        .await
        .map_err(db("find a ticket by staff thread"))?
    });
    row.map(Ticket::try_from).transpose()
}

// ---------------------------------------------------------------------------------------------
// Outbox

/// The outbox columns a [`Delivery`] fills (besides platform, times and counters).
struct OutboxColumns<'a> {
    chat_id: Option<&'a str>,
    user_id: Option<&'a str>,
    ticket_id: Option<i64>,
    text: &'a str,
    buttons: &'a [Button],
    reply_to: Option<&'a str>,
    payload: Value,
}

fn outbox_columns(delivery: &Delivery) -> Result<OutboxColumns<'_>> {
    Ok(match delivery {
        Delivery::UserMessage(m) => OutboxColumns {
            chat_id: Some(&m.conversation.chat_id),
            user_id: Some(&m.conversation.user_id),
            ticket_id: None,
            text: &m.text,
            buttons: &m.buttons,
            reply_to: m.reply_to.as_deref(),
            payload: Value::Object(Default::default()),
        },
        Delivery::DeleteUserMessage {
            conversation,
            platform_message_id,
        } => OutboxColumns {
            chat_id: Some(&conversation.chat_id),
            user_id: Some(&conversation.user_id),
            ticket_id: None,
            text: "",
            buttons: &[],
            reply_to: None,
            payload: serde_json::json!({ "message_id": platform_message_id }),
        },
        Delivery::OpenStaffSpace { ticket_id, title } => OutboxColumns {
            chat_id: None,
            user_id: None,
            ticket_id: Some(*ticket_id),
            text: "",
            buttons: &[],
            reply_to: None,
            payload: serde_json::json!({ "title": title }),
        },
        Delivery::StaffPost { ticket_id, post } => OutboxColumns {
            chat_id: None,
            user_id: None,
            ticket_id: Some(*ticket_id),
            text: &post.text,
            buttons: &post.buttons,
            reply_to: post.reply_to.as_deref(),
            payload: serde_json::to_value(post).map_err(|e| StoreError::Corrupt {
                what: format!("a staff post that cannot be encoded: {e}"),
            })?,
        },
        Delivery::CloseStaffSpace { ticket_id } => OutboxColumns {
            chat_id: None,
            user_id: None,
            ticket_id: Some(*ticket_id),
            text: "",
            buttons: &[],
            reply_to: None,
            payload: Value::Object(Default::default()),
        },
    })
}

pub(crate) async fn enqueue_delivery(
    conn: Conn<'_>,
    platform: &str,
    delivery: &Delivery,
    at: DateTime<Utc>,
) -> Result<i64> {
    let at = micros(at);
    let cols = outbox_columns(delivery)?;
    let destination = delivery.destination();
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "INSERT INTO outbox (platform, destination, kind, chat_id, user_id, ticket_id, text, \
             buttons, reply_to, payload, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        )
        .bind(platform)
        .bind(&destination)
        .bind(delivery.kind())
        .bind(cols.chat_id)
        .bind(cols.user_id)
        .bind(cols.ticket_id)
        .bind(cols.text)
        .bind(Json(cols.buttons))
        .bind(cols.reply_to)
        .bind(Json(&cols.payload))
        .bind(at)
        .fetch_one(c)
        .await
        .map_err(db("enqueue a delivery"))
    })
}

/// The columns [`OutboxRow`] reads.
macro_rules! outbox_select {
    () => {
        "SELECT id, platform, destination, kind, chat_id, user_id, ticket_id, text, buttons, \
         reply_to, payload, created_at, attempts, next_attempt_at, last_error FROM outbox "
    };
}

/// Leases the first undelivered row of up to `limit` destinations of `platform` that are due and
/// not leased by a live worker, for `owner` until `lease_until`.
///
/// Only a destination's *first* undelivered row is ever leased, so a destination is in one
/// worker's hands at a time and its rows go out in order, whatever the number of workers and
/// instances. On PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`: concurrent
/// workers pass over each other's candidates instead of waiting for them; on SQLite the statement
/// runs under the database's single write lock.
pub(crate) async fn lease_due_outbox(
    conn: Conn<'_>,
    platform: &str,
    owner: &str,
    lease_until: DateTime<Utc>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>> {
    let rows: Vec<OutboxRow> = dispatch!(conn, |c, pg| {
        let sql = if pg {
            concat!(
                "UPDATE outbox SET lease_owner = $2, lease_expires_at = $3 WHERE id IN (",
                "SELECT o.id FROM outbox o WHERE o.platform = $1 AND o.delivered_at IS NULL ",
                "AND o.failed_at IS NULL AND o.next_attempt_at <= $4 ",
                "AND (o.lease_expires_at IS NULL OR o.lease_expires_at <= $4) ",
                "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.platform = o.platform ",
                "AND p.destination = o.destination AND p.id < o.id ",
                "AND p.delivered_at IS NULL AND p.failed_at IS NULL) ",
                "ORDER BY o.id LIMIT $5 FOR UPDATE SKIP LOCKED) ",
                "RETURNING id, platform, destination, kind, chat_id, user_id, ticket_id, text, buttons, ",
                "reply_to, payload, created_at, attempts, next_attempt_at, last_error"
            )
        } else {
            concat!(
                "UPDATE outbox SET lease_owner = $2, lease_expires_at = $3 WHERE id IN (",
                "SELECT o.id FROM outbox o WHERE o.platform = $1 AND o.delivered_at IS NULL ",
                "AND o.failed_at IS NULL AND o.next_attempt_at <= $4 ",
                "AND (o.lease_expires_at IS NULL OR o.lease_expires_at <= $4) ",
                "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.platform = o.platform ",
                "AND p.destination = o.destination AND p.id < o.id ",
                "AND p.delivered_at IS NULL AND p.failed_at IS NULL) ",
                "ORDER BY o.id LIMIT $5) ",
                "RETURNING id, platform, destination, kind, chat_id, user_id, ticket_id, text, buttons, ",
                "reply_to, payload, created_at, attempts, next_attempt_at, last_error"
            )
        };
        sqlx::query_as(sql)
            .bind(platform)
            .bind(owner)
            .bind(micros(lease_until))
            .bind(micros(now))
            .bind(limit)
            .fetch_all(c)
            .await
            .map_err(db("lease due deliveries"))?
    });
    let mut out: Vec<OutboxMessage> = rows
        .into_iter()
        .map(OutboxMessage::try_from)
        .collect::<Result<_>>()?;
    out.sort_by_key(|m| m.id);
    Ok(out)
}

pub(crate) async fn pending_outbox_for_conversation(
    conn: Conn<'_>,
    cref: &ConversationRef,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>> {
    let rows: Vec<OutboxRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(
            outbox_select!(),
            "WHERE platform = $1 AND chat_id = $2 AND user_id = $3 AND delivered_at IS NULL \
             AND failed_at IS NULL AND next_attempt_at <= $4 ORDER BY id"
        ))
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .bind(micros(now))
        .fetch_all(c)
        .await
        .map_err(db("list a conversation's pending deliveries"))?
    });
    rows.into_iter().map(OutboxMessage::try_from).collect()
}

pub(crate) async fn pending_outbox(
    conn: Conn<'_>,
    platform: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxMessage>> {
    let rows: Vec<OutboxRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(
            outbox_select!(),
            "WHERE ($1 IS NULL OR platform = $1) AND delivered_at IS NULL AND failed_at IS NULL \
             ORDER BY id LIMIT $2"
        ))
        .bind(platform)
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db("list pending deliveries"))?
    });
    rows.into_iter().map(OutboxMessage::try_from).collect()
}

pub(crate) async fn mark_delivered(
    conn: Conn<'_>,
    id: i64,
    sent_id: Option<&str>,
    at: DateTime<Utc>,
    owner: Option<&str>,
) -> Result<bool> {
    let n = dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE outbox SET delivered_at = $2, sent_id = $3, attempts = attempts + 1, \
             last_error = NULL, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL \
             AND ($4 IS NULL OR lease_owner = $4)",
        )
        .bind(id)
        .bind(micros(at))
        .bind(sent_id)
        .bind(owner)
        .execute(c)
        .await
        .map_err(db("mark a delivery done"))?
        .rows_affected()
    });
    Ok(n == 1)
}

pub(crate) async fn retry_later(
    conn: Conn<'_>,
    id: i64,
    error: &str,
    retry_at: DateTime<Utc>,
    count_attempt: bool,
    owner: Option<&str>,
) -> Result<bool> {
    let n = dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + $4, last_error = $2, next_attempt_at = $3, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL \
             AND ($5 IS NULL OR lease_owner = $5)",
        )
        .bind(id)
        .bind(error)
        .bind(micros(retry_at))
        .bind(i64::from(count_attempt))
        .bind(owner)
        .execute(c)
        .await
        .map_err(db("record a failed delivery attempt"))?
        .rows_affected()
    });
    Ok(n == 1)
}

pub(crate) async fn mark_failed(
    conn: Conn<'_>,
    id: i64,
    error: &str,
    at: DateTime<Utc>,
    owner: Option<&str>,
) -> Result<bool> {
    let n = dispatch!(conn, |c, pg| {
        sqlx::query(
            "UPDATE outbox SET failed_at = $3, attempts = attempts + 1, last_error = $2, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL \
             AND ($4 IS NULL OR lease_owner = $4)",
        )
        .bind(id)
        .bind(error)
        .bind(micros(at))
        .bind(owner)
        .execute(c)
        .await
        .map_err(db("give up a delivery"))?
        .rows_affected()
    });
    Ok(n == 1)
}

pub(crate) async fn failed_deliveries(
    conn: Conn<'_>,
    ticket_id: Option<i64>,
    conversation: Option<&ConversationRef>,
    limit: i64,
) -> Result<Vec<FailedDelivery>> {
    type Row = (i64, String, String, String, Option<String>, DateTime<Utc>);
    let rows: Vec<Row> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT id, platform, kind, text, last_error, failed_at FROM outbox \
                 WHERE failed_at IS NOT NULL AND (($1 IS NOT NULL AND ticket_id = $1) OR \
                 ($2 IS NOT NULL AND platform = $2 AND chat_id = $3 AND user_id = $4)) \
                 ORDER BY id LIMIT $5",
        )
        .bind(ticket_id)
        .bind(conversation.map(|c| c.platform.as_str()))
        .bind(conversation.map(|c| c.chat_id.as_str()))
        .bind(conversation.map(|c| c.user_id.as_str()))
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db("list failed deliveries"))?
    });
    Ok(rows
        .into_iter()
        .map(
            |(id, platform, kind, text, error, failed_at)| FailedDelivery {
                id,
                platform,
                kind,
                text,
                error: error.unwrap_or_default(),
                failed_at,
            },
        )
        .collect())
}

/// Outbox depth and the oldest undelivered row's creation time, per platform (metrics, readiness).
pub(crate) async fn outbox_backlog(conn: Conn<'_>) -> Result<Vec<(String, i64, DateTime<Utc>)>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT platform, COUNT(*), MIN(created_at) FROM outbox \
             WHERE delivered_at IS NULL AND failed_at IS NULL GROUP BY platform ORDER BY platform",
        )
        .fetch_all(c)
        .await
        .map_err(db("measure the outbox backlog"))
    })
}

// ---------------------------------------------------------------------------------------------
// Ratings and misses

pub(crate) async fn record_rating(
    conn: Conn<'_>,
    ticket_id: i64,
    score: u8,
    comment: Option<&str>,
    at: DateTime<Utc>,
) -> Result<i64> {
    if !(1..=5).contains(&score) {
        return Err(StoreError::InvalidRating { score });
    }
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "INSERT INTO ratings (ticket_id, score, comment, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (ticket_id) DO UPDATE SET score = excluded.score, \
             comment = COALESCE(excluded.comment, ratings.comment), at = excluded.at RETURNING id",
        )
        .bind(ticket_id)
        .bind(i64::from(score))
        .bind(comment)
        .bind(micros(at))
        .fetch_one(c)
        .await
        .map_err(db("record a rating"))
    })
}

pub(crate) async fn ratings_for(conn: Conn<'_>, ticket_id: i64) -> Result<Vec<Rating>> {
    let rows: Vec<(i64, Option<String>, DateTime<Utc>)> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT score, comment, at FROM ratings WHERE ticket_id = $1 ORDER BY at, id",
        )
        .bind(ticket_id)
        .fetch_all(c)
        .await
        .map_err(db("read a ticket's ratings"))?
    });
    rows.into_iter()
        .map(|(score, comment, at)| {
            Ok(Rating {
                ticket_id,
                score: u8::try_from(score).map_err(|_| StoreError::Corrupt {
                    what: format!("rating score {score}"),
                })?,
                comment,
                at,
            })
        })
        .collect()
}

pub(crate) async fn record_miss(conn: Conn<'_>, miss: &Miss) -> Result<i64> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "INSERT INTO misses (text, language, intent_guess, confidence, at, inbound_id) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(miss.text.as_str())
        .bind(miss.language.as_deref())
        .bind(miss.intent_guess.as_deref())
        .bind(miss.confidence)
        .bind(micros(miss.at))
        .bind(miss.inbound_id)
        .fetch_one(c)
        .await
        .map_err(db("record a miss"))
    })
}

pub(crate) async fn misses(conn: Conn<'_>, limit: i64) -> Result<Vec<MissSummary>> {
    let rows: Vec<MissRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT m.text, COUNT(*) AS occurrences, MAX(m.at) AS last_at, MAX(m.language) AS language, \
             AVG(m.confidence) AS mean_confidence, \
             (SELECT g.intent_guess FROM misses g WHERE g.text = m.text \
              ORDER BY g.at DESC, g.id DESC LIMIT 1) AS intent_guess \
             FROM misses m GROUP BY m.text \
             ORDER BY occurrences DESC, last_at DESC, m.text LIMIT $1",
        )
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db("aggregate misses"))?
    });
    Ok(rows
        .into_iter()
        .map(|r| MissSummary {
            text: r.text,
            count: r.occurrences,
            last_at: r.last_at,
            language: r.language,
            intent_guess: r.intent_guess,
            mean_confidence: r.mean_confidence,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Leases and platform state

/// Takes the named lease for `owner` until `until` if it is free, expired or already `owner`'s
/// (renewal). Returns whether `owner` holds it now. One statement, atomic on both backends.
pub(crate) async fn acquire_lease(
    conn: Conn<'_>,
    name: &str,
    owner: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let held: Option<String> = dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "INSERT INTO leases (name, owner, acquired_at, expires_at) VALUES ($1, $2, $4, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, \
             acquired_at = CASE WHEN leases.owner = excluded.owner THEN leases.acquired_at \
             ELSE excluded.acquired_at END \
             WHERE leases.owner = excluded.owner OR leases.expires_at <= $4 RETURNING owner",
        )
        .bind(name)
        .bind(owner)
        .bind(micros(until))
        .bind(micros(now))
        .fetch_optional(c)
        .await
        .map_err(db("take a lease"))?
    });
    Ok(held.as_deref() == Some(owner))
}

/// Gives the named lease up, if `owner` holds it.
pub(crate) async fn release_lease(conn: Conn<'_>, name: &str, owner: &str) -> Result<bool> {
    let n = dispatch!(conn, |c, pg| {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(c)
            .await
            .map_err(db("give up a lease"))?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Who holds the named lease and until when, if anyone (expired leases included).
pub(crate) async fn lease_holder(
    conn: Conn<'_>,
    name: &str,
) -> Result<Option<(String, DateTime<Utc>)>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_as("SELECT owner, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(c)
            .await
            .map_err(db("read a lease"))
    })
}

/// Every lease (expired ones included), by name: (name, owner, expires_at).
pub(crate) async fn leases(conn: Conn<'_>) -> Result<Vec<(String, String, DateTime<Utc>)>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_as("SELECT name, owner, expires_at FROM leases ORDER BY name")
            .fetch_all(c)
            .await
            .map_err(db("list the leases"))
    })
}

pub(crate) async fn platform_state(conn: Conn<'_>, name: &str) -> Result<Option<String>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar("SELECT value FROM platform_state WHERE name = $1")
            .bind(name)
            .fetch_optional(c)
            .await
            .map_err(db("read a platform's state"))
    })
}

pub(crate) async fn set_platform_state(
    conn: Conn<'_>,
    name: &str,
    value: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query(
            "INSERT INTO platform_state (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(micros(at))
        .execute(c)
        .await
        .map_err(db("save a platform's state"))?;
    });
    Ok(())
}
