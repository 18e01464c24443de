//! Housekeeping, written once for both backends like `ops`: what is kept only for a while is
//! deleted in small batches, oldest first, each batch its own short transaction, so the message
//! path never waits long behind it.
//!
//! Only what is finished goes: an inbound message once handled or set aside (one waiting to be
//! handled stays, however old), an outbox row once delivered or given up (one pending stays),
//! dead letters, and the bot's decision counts. Tickets, transcripts, ratings, unanswered questions
//! and labels are the support record and are never deleted here. A transcript line or an
//! unanswered question that came from a deleted inbound message keeps its text; only its link to
//! the message is cleared.

use chrono::{DateTime, Utc};

use crate::error::{Result, db};
use crate::ops::{Conn, dispatch, micros};

/// Which inbound messages may go: received before the cut-off (`$1`) and finished. A macro, so
/// the queries below are built from one literal.
macro_rules! inbound_done {
    () => {
        "received_at < $1 AND (processed_at IS NOT NULL OR failed_at IS NOT NULL)"
    };
}

/// The ids of up to `limit` of the oldest finished inbound messages received before `before`. On
/// PostgreSQL they are locked, skipping those another instance is pruning at the same time.
pub(crate) async fn old_inbound(
    conn: Conn<'_>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>> {
    dispatch!(conn, |c, pg| {
        let sql = if pg {
            concat!(
                "SELECT id FROM inbound_messages WHERE ",
                inbound_done!(),
                " ORDER BY received_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
            )
        } else {
            concat!(
                "SELECT id FROM inbound_messages WHERE ",
                inbound_done!(),
                " ORDER BY received_at, id LIMIT $2"
            )
        };
        sqlx::query_scalar(sql)
            .bind(micros(before))
            .bind(limit)
            .fetch_all(c)
            .await
            .map_err(db("find old inbound messages"))
    })
}

/// Deletes the inbound messages `ids` (as [`old_inbound`] found them, in the same transaction),
/// first clearing the links transcript lines and unanswered questions have to them. Returns how
/// many were deleted.
pub(crate) async fn delete_inbound(
    conn: Conn<'_>,
    ids: &[i64],
    before: DateTime<Utc>,
) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    // Integers read from the database: nothing a user wrote reaches this text.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let unlink_lines =
        format!("UPDATE transcript_lines SET inbound_id = NULL WHERE inbound_id IN ({list})");
    let unlink_misses = format!("UPDATE misses SET inbound_id = NULL WHERE inbound_id IN ({list})");
    // The condition again, in the statement itself: whatever ids it is given, this never deletes
    // a message that is recent or still to be handled.
    let delete = format!(
        "DELETE FROM inbound_messages WHERE id IN ({list}) AND {}",
        inbound_done!()
    );
    dispatch!(conn, |c, pg| {
        sqlx::query(sqlx::AssertSqlSafe(unlink_lines))
            .execute(&mut *c)
            .await
            .map_err(db("unlink transcript lines from old inbound messages"))?;
        sqlx::query(sqlx::AssertSqlSafe(unlink_misses))
            .execute(&mut *c)
            .await
            .map_err(db("unlink unanswered questions from old inbound messages"))?;
        Ok(sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(micros(before))
            .execute(&mut *c)
            .await
            .map_err(db("delete old inbound messages"))?
            .rows_affected())
    })
}

/// A table whose old rows one statement deletes, `limit` at a time, oldest first.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Oldest {
    /// Outbox rows delivered or given up.
    Outbox,
    /// Dead letters.
    DeadLetters,
    /// The bot's recorded decisions.
    Decisions,
}

impl Oldest {
    fn sql(self, pg: bool) -> &'static str {
        match (self, pg) {
            (Self::Outbox, _) => {
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE created_at < $1 \
                 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL) \
                 ORDER BY created_at, id LIMIT $2)"
            }
            (Self::DeadLetters, _) => {
                "DELETE FROM dead_letters WHERE id IN \
                 (SELECT id FROM dead_letters WHERE at < $1 ORDER BY at, id LIMIT $2)"
            }
            // bot_decisions has no key column: its rows are picked by their row identity.
            (Self::Decisions, true) => {
                "DELETE FROM bot_decisions WHERE ctid IN \
                 (SELECT ctid FROM bot_decisions WHERE at < $1 ORDER BY at LIMIT $2)"
            }
            (Self::Decisions, false) => {
                "DELETE FROM bot_decisions WHERE rowid IN \
                 (SELECT rowid FROM bot_decisions WHERE at < $1 ORDER BY at LIMIT $2)"
            }
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Outbox => "delete old outbox rows",
            Self::DeadLetters => "delete old dead letters",
            Self::Decisions => "delete old bot decisions",
        }
    }
}

/// Deletes up to `limit` of the oldest rows of `which` from before `before`. Returns how many.
pub(crate) async fn delete_oldest(
    conn: Conn<'_>,
    which: Oldest,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64> {
    dispatch!(conn, |c, pg| {
        Ok(sqlx::query(which.sql(pg))
            .bind(micros(before))
            .bind(limit)
            .execute(c)
            .await
            .map_err(db(which.what()))?
            .rows_affected())
    })
}
