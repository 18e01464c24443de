//! What staff said resolved tickets were about (ticket labels), the audit trail of the KB
//! suggestions drawn from them (KB decisions), and the tagged transcript a label's question is
//! read from; written once for both backends like the queries of `ops`.

use chrono::{DateTime, Utc};
use kefu_core::model::{ConversationRef, TranscriptLine};
use serde_json::Value;
use sqlx::types::Json;

use crate::error::{Result, StoreError, db};
use crate::ops::{Conn, LineRow, dispatch, micros};
use crate::types::{KbDecision, LabelKind, TaggedLine, TicketLabel};

/// `SELECT` of the columns [`LabelRow`] reads, from `ticket_labels`.
macro_rules! label_select {
    () => {
        "SELECT ticket_id, kind, name, text, language, labelled_by, labelled_at FROM ticket_labels "
    };
}

#[derive(sqlx::FromRow)]
struct LabelRow {
    ticket_id: i64,
    kind: String,
    name: Option<String>,
    text: String,
    language: Option<String>,
    labelled_by: String,
    labelled_at: DateTime<Utc>,
}

impl TryFrom<LabelRow> for TicketLabel {
    type Error = StoreError;

    fn try_from(r: LabelRow) -> Result<Self> {
        let kind = LabelKind::parse(&r.kind).ok_or_else(|| StoreError::Corrupt {
            what: format!("the label of ticket {} has kind {:?}", r.ticket_id, r.kind),
        })?;
        Ok(TicketLabel {
            ticket_id: r.ticket_id,
            kind,
            name: r.name,
            text: r.text,
            language: r.language,
            labelled_by: r.labelled_by,
            labelled_at: r.labelled_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    suggestion: String,
    accepted: bool,
    decided_by: String,
    decided_at: DateTime<Utc>,
    summary: String,
    detail: Json<Value>,
}

#[derive(sqlx::FromRow)]
struct TaggedRow {
    id: i64,
    ticket_id: Option<i64>,
    #[sqlx(flatten)]
    line: LineRow,
}

/// Stores a ticket's label, replacing the one it had.
pub(crate) async fn record_label(conn: Conn<'_>, label: &TicketLabel) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query(
            "INSERT INTO ticket_labels \
             (ticket_id, kind, name, text, language, labelled_by, labelled_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (ticket_id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             text = excluded.text, language = excluded.language, \
             labelled_by = excluded.labelled_by, labelled_at = excluded.labelled_at",
        )
        .bind(label.ticket_id)
        .bind(label.kind.as_str())
        .bind(label.name.as_deref())
        .bind(&label.text)
        .bind(label.language.as_deref())
        .bind(&label.labelled_by)
        .bind(micros(label.labelled_at))
        .execute(c)
        .await
        .map_err(db("record a ticket's label"))?;
    });
    Ok(())
}

/// Every label, oldest first.
pub(crate) async fn ticket_labels(conn: Conn<'_>) -> Result<Vec<TicketLabel>> {
    let rows: Vec<LabelRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(label_select!(), "ORDER BY labelled_at, ticket_id"))
            .fetch_all(c)
            .await
            .map_err(db("read the ticket labels"))?
    });
    rows.into_iter().map(TicketLabel::try_from).collect()
}

/// One ticket's label.
pub(crate) async fn ticket_label(conn: Conn<'_>, ticket_id: i64) -> Result<Option<TicketLabel>> {
    let row: Option<LabelRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(label_select!(), "WHERE ticket_id = $1"))
            .bind(ticket_id)
            .fetch_optional(c)
            .await
            .map_err(db("read a ticket's label"))?
    });
    row.map(TicketLabel::try_from).transpose()
}

pub(crate) async fn record_kb_decision(conn: Conn<'_>, d: &KbDecision) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query(
            "INSERT INTO kb_decisions \
             (suggestion, accepted, decided_by, decided_at, summary, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&d.suggestion)
        .bind(d.accepted)
        .bind(&d.by)
        .bind(micros(d.at))
        .bind(&d.summary)
        .bind(Json(&d.detail))
        .execute(c)
        .await
        .map_err(db("record a KB decision"))?;
    });
    Ok(())
}

/// Every KB decision, oldest first (in the order recorded when two share a time).
pub(crate) async fn kb_decisions(conn: Conn<'_>) -> Result<Vec<KbDecision>> {
    let rows: Vec<DecisionRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT suggestion, accepted, decided_by, decided_at, summary, detail \
             FROM kb_decisions ORDER BY decided_at, id",
        )
        .fetch_all(c)
        .await
        .map_err(db("read the KB decisions"))?
    });
    Ok(rows
        .into_iter()
        .map(|r| KbDecision {
            suggestion: r.suggestion,
            accepted: r.accepted,
            by: r.decided_by,
            at: r.decided_at,
            summary: r.summary,
            detail: r.detail.0,
        })
        .collect())
}

/// A conversation's transcript with each line's id and ticket, in the order it was written.
pub(crate) async fn tagged_transcript(
    conn: Conn<'_>,
    cref: &ConversationRef,
) -> Result<Vec<TaggedLine>> {
    let rows: Vec<TaggedRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT l.id, l.ticket_id, l.at, l.sender_kind, l.sender_name, l.text \
             FROM transcript_lines l JOIN conversations c ON c.id = l.conversation_id \
             WHERE c.platform = $1 AND c.chat_id = $2 AND c.user_id = $3 ORDER BY l.id",
        )
        .bind(&cref.platform)
        .bind(&cref.chat_id)
        .bind(&cref.user_id)
        .fetch_all(c)
        .await
        .map_err(db("read a transcript with its tickets"))?
    });
    rows.into_iter()
        .map(|r| {
            Ok(TaggedLine {
                id: r.id,
                ticket_id: r.ticket_id,
                line: TranscriptLine::try_from(r.line)?,
            })
        })
        .collect()
}
