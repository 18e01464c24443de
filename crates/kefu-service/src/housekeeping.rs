//! Housekeeping: the delivery journal (inbound messages once handled, outbox rows once delivered
//! or given up, dead letters) is needed only for a while — to recognise a platform's repeated
//! delivery, to recover after a crash, to show an operator what failed — and would otherwise grow
//! with every message. `kefu run` calls [`Service::prune_history`] at start and hourly with
//! `database.retention_days`. The support record (tickets, transcripts, ratings, unanswered
//! questions, labels) is never deleted here.

use chrono::{DateTime, TimeDelta, Utc};
use kefu_store::Pruned;

use crate::{Result, Service};

/// The bot's decisions (the console report's answer / clarify / escalate counts) are kept at
/// least this long: the report reaches 366 days back.
pub const DECISIONS_KEPT: TimeDelta = TimeDelta::days(367);

/// Rows deleted per statement: each batch is one short transaction.
const BATCH: i64 = 500;

impl Service {
    /// Deletes the finished journal older than `keep` before `now`, and the decisions older than
    /// `keep` or [`DECISIONS_KEPT`], whichever is longer (see [`kefu_store::Store::prune`]).
    /// Counts what went in `kefu_pruned_rows_total`.
    pub async fn prune_history(&self, keep: TimeDelta, now: DateTime<Utc>) -> Result<Pruned> {
        let pruned = self
            .store
            .prune(now - keep, now - keep.max(DECISIONS_KEPT), BATCH)
            .await?;
        self.metrics.pruned(&pruned);
        Ok(pruned)
    }
}
