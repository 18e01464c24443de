//! The async glue between a platform adapter and Kefu's pure parts: an inbound message is stored,
//! understood, decided on by the conversation policy, and its consequences are persisted in one
//! transaction; replies leave through the outbox.
//!
//! How a message flows (`Service::handle_inbound`):
//! 1. secrets are found and redacted — nothing below ever sees the raw text;
//! 2. the redacted message is stored idempotently (platform + chat + message id) and committed on
//!    its own, before anything else: a repeated delivery stops here, and a crash after this point
//!    loses nothing ([`Service::recover`] processes what was stored but never handled);
//! 3. in one transaction: the conversation is loaded and locked, the NLU decides (only while the
//!    bot holds the chat), [`kefu_core::handle`] returns the next state and actions, and the actions
//!    are persisted — transcript lines, ticket, outbox rows, misses, ratings — with the new state
//!    and the "processed" mark;
//! 4. adapters deliver the outbox ([`Service::pending_for`], [`Service::delivered`]).
//!
//! Staff actions (claim, reply, resolve) go through the same policy as events on the ticket's
//! conversation, so the rules (the bot stays silent while a human holds the chat, a rating is asked
//! after resolution) live in one place.
//!
//! This crate knows no chat platform: adapters convert their updates into [`Inbound`] first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kefu_core::model::{
    ConversationRef, Inbound, Outgoing, Sender, Ticket, TicketStatus, TranscriptLine,
};
use kefu_core::{
    Action, Context, ConversationState, Event, Flood, QueueInfo, SecretFound, SupportHours,
    UserMessage,
};
use kefu_nlu::engine::Engine;
use kefu_nlu::secrets::{find_secrets, redact};
use kefu_store::{
    ClaimOutcome, InboundOutcome, Miss, NewTicket, OutboxMessage, ResolveOutcome, Store,
    StoreError, UnitOfWork,
};

/// Why the service could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A conversation state could not be encoded.
    #[error("cannot encode conversation state: {0}")]
    State(#[from] serde_json::Error),
    /// The operating system gave no randomness for a ticket code.
    #[error("cannot generate a ticket code: {0}")]
    Random(getrandom::Error),
}

type Result<T> = std::result::Result<T, ServiceError>;

/// Per-user flood control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimit {
    /// Messages allowed per window.
    pub max_messages: usize,
    /// The window.
    pub window: Duration,
}

/// What happened to an inbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// The same platform message was already stored: nothing was done.
    Duplicate,
    /// Processed; replies are in the outbox.
    Processed {
        /// The platform message to delete (it carried a secret), where the platform allows.
        delete_message: Option<String>,
        /// A ticket opened by this message.
        ticket_opened: Option<Box<Ticket>>,
    },
}

/// What a staff action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffOutcome {
    /// Done.
    Done,
    /// Another staff member holds the ticket.
    HeldBy(String),
    /// The ticket isn't claimed yet (resolve) or is closed.
    NotOpen,
    /// No such ticket.
    NotFound,
}

/// The service: one per process, shared by every adapter.
#[derive(Debug)]
pub struct Service {
    engine: Engine,
    store: Store,
    hours: SupportHours,
    flood: FloodLimit,
    recent: Mutex<HashMap<ConversationRef, VecDeque<DateTime<Utc>>>>,
}

/// Characters of a ticket code: no 0/O, 1/I/L, so it reads unambiguously over the phone.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A fresh six-character ticket code from the operating system's randomness.
pub fn new_ticket_code() -> Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(ServiceError::Random)?;
    Ok(bytes
        .iter()
        .map(|b| CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char)
        .collect())
}

impl Service {
    /// Builds the service.
    pub fn new(engine: Engine, store: Store, hours: SupportHours, flood: FloodLimit) -> Self {
        Service {
            engine,
            store,
            hours,
            flood,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// The store, for read-only views (the staff desk).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The NLU engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Handles one inbound message end to end (see the crate doc).
    pub async fn handle_inbound(&self, inbound: &Inbound, now: DateTime<Utc>) -> Result<Handled> {
        let spans = find_secrets(&inbound.text);
        let redacted = redact(&inbound.text, &spans);
        let inbound_id = match self.store.record_inbound(inbound, &redacted, now).await? {
            InboundOutcome::Duplicate => return Ok(Handled::Duplicate),
            InboundOutcome::New(id) => id,
        };
        let secrets: Vec<SecretFound> = spans.iter().map(SecretFound::from).collect();
        self.process(
            inbound_id,
            &inbound.conversation,
            &inbound.user_name,
            &inbound.platform_message_id,
            redacted,
            secrets,
            inbound.at,
            (&inbound.attachments, inbound.pressed),
            now,
        )
        .await
    }

    /// Processes messages that were stored but never handled (the process stopped in between).
    /// Their text was redacted before it was stored, so the secret warning is not repeated.
    pub async fn recover(&self, now: DateTime<Utc>) -> Result<usize> {
        let pending = self.store.unprocessed_inbound(1000).await?;
        let n = pending.len();
        for m in pending {
            self.process(
                m.id,
                &m.conversation,
                &m.user_name,
                &m.platform_message_id,
                m.text,
                Vec::new(),
                m.sent_at,
                (&[], false),
                now,
            )
            .await?;
        }
        Ok(n)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site each; a struct would only rename them"
    )]
    async fn process(
        &self,
        inbound_id: i64,
        cref: &ConversationRef,
        user_name: &str,
        platform_message_id: &str,
        redacted: String,
        secrets: Vec<SecretFound>,
        sent_at: DateTime<Utc>,
        (attachments, pressed): (&[kefu_core::model::Attachment], bool),
        now: DateTime<Utc>,
    ) -> Result<Handled> {
        let recent_messages = self.count_recent(cref, now);
        let code = new_ticket_code()?;
        let mut tx = self.store.begin().await?;
        let conversation = tx.load_conversation(cref).await?;
        let state = decode_state(conversation.state.as_ref());
        let open = match state.open_ticket() {
            Some(code) => self.store.ticket_by_code(code).await?,
            None => None,
        };
        let queue = self.queue_info(open.as_ref(), now).await?;
        // Classified unless a human holds the chat (the policy may answer a clear question while
        // the ticket waits in the queue).
        let bot_may_answer = state.held_by_staff().is_none();
        let decision = bot_may_answer.then(|| self.engine.decide(&redacted));
        // Each clause of a message that asks two things, for the policy to answer both.
        let clauses = if bot_may_answer {
            kefu_core::clauses::decide(&self.engine, &redacted)
        } else {
            Vec::new()
        };
        let line_text = pressed
            .then(|| kefu_core::policy::press_label(&state, &redacted, self.engine.kb()))
            .flatten()
            .map_or_else(
                || redacted.clone(),
                |label| kefu_core::messages::pressed(&label),
            );
        let ctx = Context {
            kb: self.engine.kb(),
            now,
            hours: &self.hours,
            queue,
            ticket_code: &code,
            flood: Flood {
                recent_messages,
                max_messages: self.flood.max_messages,
            },
        };
        let event = Event::UserMessage(UserMessage {
            text_redacted: redacted.clone(),
            secrets,
            at: sent_at,
            platform_message_id: platform_message_id.to_owned(),
            decision,
            attachments: attachments.to_vec(),
            clauses,
            thresholds: Some(self.engine.policy()),
        });
        let step = kefu_core::handle(&state, &event, &ctx);
        let user_line = TranscriptLine {
            at: sent_at,
            sender: Sender::User,
            text: line_text,
        };
        let user_line_id = tx
            .append_transcript(conversation.id, open.as_ref().map(|t| t.id), &user_line)
            .await?;
        let mut turn = Turn {
            tx,
            conversation_id: conversation.id,
            cref,
            user_name,
            ticket: open,
            reply_to: Some(platform_message_id),
            first_line: Some(user_line_id),
            now,
        };
        let mut delete_message = None;
        let mut ticket_opened = None;
        for action in step.actions {
            match action {
                Action::DeleteUserMessage {
                    platform_message_id,
                } => delete_message = Some(platform_message_id),
                Action::OpenTicket(_) => {
                    turn.apply(action, &self.store).await?;
                    ticket_opened = turn.ticket.clone().map(Box::new);
                }
                other => turn.apply(other, &self.store).await?,
            }
        }
        let Turn { mut tx, .. } = turn;
        tx.save_conversation(conversation.id, &serde_json::to_value(&step.state)?, now)
            .await?;
        tx.mark_processed(inbound_id, now).await?;
        tx.commit().await?;
        Ok(Handled::Processed {
            delete_message,
            ticket_opened,
        })
    }

    /// A staff member claims a ticket: atomically (of two claiming at once, one wins), then the
    /// user is told a human has joined.
    pub async fn claim(
        &self,
        ticket_id: i64,
        staff: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        match self.store.claim(ticket_id, staff, now).await? {
            ClaimOutcome::Claimed => {}
            ClaimOutcome::AlreadyClaimedBy(other) if other == staff => {
                return Ok(StaffOutcome::Done);
            }
            ClaimOutcome::AlreadyClaimedBy(other) => return Ok(StaffOutcome::HeldBy(other)),
            ClaimOutcome::NotFound => return Ok(StaffOutcome::NotFound),
            ClaimOutcome::Closed => return Ok(StaffOutcome::NotOpen),
        }
        let Some(ticket) = self.store.ticket(ticket_id).await? else {
            return Ok(StaffOutcome::NotFound);
        };
        self.staff_event(
            &ticket,
            Event::StaffClaimed {
                ticket: ticket.code.clone(),
                staff: staff.to_owned(),
            },
            now,
        )
        .await?;
        Ok(StaffOutcome::Done)
    }

    /// A staff member writes to the user; a queued ticket is claimed first.
    pub async fn reply(
        &self,
        ticket_id: i64,
        staff: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        let Some(ticket) = self.store.ticket(ticket_id).await? else {
            return Ok(StaffOutcome::NotFound);
        };
        match (ticket.status, ticket.assignee.as_deref()) {
            (TicketStatus::Queued, _) => match self.claim(ticket_id, staff, now).await? {
                StaffOutcome::Done => {}
                other => return Ok(other),
            },
            (TicketStatus::Claimed, Some(holder)) if holder != staff => {
                return Ok(StaffOutcome::HeldBy(holder.to_owned()));
            }
            (TicketStatus::Claimed, _) => {}
            (TicketStatus::Resolved | TicketStatus::Cancelled, _) => {
                return Ok(StaffOutcome::NotOpen);
            }
        }
        let text = redact(text, &find_secrets(text));
        self.staff_event(
            &ticket,
            Event::StaffReply {
                ticket: ticket.code.clone(),
                staff: staff.to_owned(),
                text,
            },
            now,
        )
        .await?;
        Ok(StaffOutcome::Done)
    }

    /// A staff member resolves a ticket they hold; the chat returns to the bot, which asks for a rating.
    pub async fn resolve(
        &self,
        ticket_id: i64,
        staff: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        match self.store.resolve(ticket_id, staff, now).await? {
            ResolveOutcome::Resolved => {}
            ResolveOutcome::HeldBy(other) => return Ok(StaffOutcome::HeldBy(other)),
            ResolveOutcome::NotClaimed | ResolveOutcome::Closed => {
                return Ok(StaffOutcome::NotOpen);
            }
            ResolveOutcome::NotFound => return Ok(StaffOutcome::NotFound),
        }
        let Some(ticket) = self.store.ticket(ticket_id).await? else {
            return Ok(StaffOutcome::NotFound);
        };
        self.staff_event(
            &ticket,
            Event::StaffResolved {
                ticket: ticket.code.clone(),
                staff: staff.to_owned(),
            },
            now,
        )
        .await?;
        Ok(StaffOutcome::Done)
    }

    async fn staff_event(&self, ticket: &Ticket, event: Event, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conversation = tx.load_conversation(&ticket.conversation).await?;
        let state = decode_state(conversation.state.as_ref());
        let ctx = Context {
            kb: self.engine.kb(),
            now,
            hours: &self.hours,
            queue: QueueInfo::default(),
            ticket_code: &ticket.code,
            flood: Flood::UNLIMITED,
        };
        let step = kefu_core::handle(&state, &event, &ctx);
        let mut turn = Turn {
            tx,
            conversation_id: conversation.id,
            cref: &ticket.conversation,
            user_name: &ticket.user_name,
            ticket: Some(ticket.clone()),
            reply_to: None,
            first_line: None,
            now,
        };
        for action in step.actions {
            turn.apply(action, &self.store).await?;
        }
        let Turn { mut tx, .. } = turn;
        tx.save_conversation(conversation.id, &serde_json::to_value(&step.state)?, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Undelivered messages for one conversation, oldest first.
    pub async fn pending_for(
        &self,
        cref: &ConversationRef,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>> {
        Ok(self
            .store
            .pending_outbox_for_conversation(cref, now)
            .await?)
    }

    /// Marks an outbox message delivered.
    pub async fn delivered(&self, outbox_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.store.mark_delivered(outbox_id, now).await?;
        Ok(())
    }

    async fn queue_info(&self, open: Option<&Ticket>, now: DateTime<Utc>) -> Result<QueueInfo> {
        let position = match open {
            Some(t) => self
                .store
                .queue_position(t.id)
                .await?
                .map_or(0, |p| p as usize),
            None => {
                let queued = self.store.open_tickets(now).await?;
                queued
                    .iter()
                    .filter(|t| t.ticket.status == TicketStatus::Queued)
                    .count()
                    + 1
            }
        };
        let handling = self.store.recent_handling_time(20).await?;
        let expected_wait = handling
            .and_then(|h| h.to_std().ok())
            .map(|h| h * position.max(1) as u32);
        Ok(QueueInfo {
            position,
            expected_wait,
        })
    }

    fn count_recent(&self, cref: &ConversationRef, now: DateTime<Utc>) -> usize {
        let Ok(mut recent) = self.recent.lock() else {
            return 0;
        };
        let window =
            chrono::TimeDelta::from_std(self.flood.window).unwrap_or(chrono::TimeDelta::MAX);
        let times = recent.entry(cref.clone()).or_default();
        while times.front().is_some_and(|t| now - *t > window) {
            times.pop_front();
        }
        times.push_back(now);
        times.len()
    }
}

/// A conversation state from the store; an unreadable one (say, from an older version) restarts
/// the conversation rather than failing the user's message.
fn decode_state(value: Option<&serde_json::Value>) -> ConversationState {
    match value {
        None => ConversationState::default(),
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable conversation state; starting afresh");
            ConversationState::default()
        }),
    }
}

/// The side effects of one policy step, applied inside its transaction.
struct Turn<'a> {
    tx: UnitOfWork,
    conversation_id: i64,
    cref: &'a ConversationRef,
    user_name: &'a str,
    ticket: Option<Ticket>,
    reply_to: Option<&'a str>,
    /// The first transcript line this turn wrote (the user's message), if any: a ticket opened
    /// by the turn takes the lines written before it existed.
    first_line: Option<i64>,
    now: DateTime<Utc>,
}

impl Turn<'_> {
    async fn say(
        &mut self,
        sender: Sender,
        text: String,
        buttons: Vec<kefu_core::model::Button>,
    ) -> Result<()> {
        let line = TranscriptLine {
            at: self.now,
            sender,
            text: text.clone(),
        };
        let id = self
            .tx
            .append_transcript(
                self.conversation_id,
                self.ticket.as_ref().map(|t| t.id),
                &line,
            )
            .await?;
        self.first_line.get_or_insert(id);
        let out = Outgoing {
            conversation: self.cref.clone(),
            text,
            buttons,
            reply_to: self.reply_to.map(str::to_owned),
        };
        self.tx.enqueue(&out, self.now).await?;
        Ok(())
    }

    async fn ticket_by_code(&mut self, store: &Store, code: &str) -> Result<Option<Ticket>> {
        if let Some(t) = self.ticket.as_ref().filter(|t| t.code == code) {
            return Ok(Some(t.clone()));
        }
        Ok(store.ticket_by_code(code).await?)
    }

    async fn apply(&mut self, action: Action, store: &Store) -> Result<()> {
        match action {
            Action::Reply(r) => self.say(Sender::Bot, r.text, r.buttons).await?,
            Action::RelayToUser { staff, text } => {
                self.say(Sender::Staff(staff), text, Vec::new()).await?
            }
            // The user's line is already in the transcript, tagged with the ticket: staff read it
            // there (desk) or have it relayed by their platform's adapter.
            Action::RelayToStaff { .. } | Action::DeleteUserMessage { .. } => {}
            Action::OpenTicket(t) => {
                let ticket = self
                    .tx
                    .open_ticket(&NewTicket {
                        code: t.code,
                        conversation_id: self.conversation_id,
                        user_name: self.user_name.to_owned(),
                        intent: t.intent,
                        priority: t.priority,
                        reason: t.reason.as_str().to_owned(),
                        details: t.details,
                        created_at: self.now,
                    })
                    .await?;
                tracing::info!(ticket = ticket.id, code = %ticket.code, priority = ticket.priority.as_str(), "ticket opened");
                // The message that opened the ticket (and anything said before it in this turn)
                // belongs to it: staff read the ticket's transcript.
                if let Some(first) = self.first_line {
                    self.tx
                        .tag_transcript_from(self.conversation_id, first, ticket.id)
                        .await?;
                }
                self.ticket = Some(ticket);
            }
            Action::CancelTicket { ticket } => {
                if let Some(t) = self.ticket_by_code(store, &ticket).await? {
                    self.tx.cancel(t.id, self.now).await?;
                }
            }
            Action::RecordMiss {
                text,
                language,
                best_guess,
            } => {
                let miss = Miss {
                    text,
                    language: Some(language),
                    intent_guess: best_guess,
                    confidence: None,
                    at: self.now,
                };
                self.tx.record_miss(&miss).await?;
            }
            Action::RecordRating {
                ticket,
                score,
                comment,
            } => {
                if let Some(t) = self.ticket_by_code(store, &ticket).await? {
                    self.tx
                        .record_rating(t.id, score, comment.as_deref(), self.now)
                        .await?;
                }
            }
            Action::SendTranscript { header } => {
                let lines = store.transcript(self.cref).await?;
                let mut text = header;
                for l in lines {
                    let who = match &l.sender {
                        Sender::User => "you".to_owned(),
                        Sender::Bot => "bot".to_owned(),
                        Sender::Staff(name) => name.clone(),
                    };
                    text.push_str(&format!(
                        "\n[{}] {who}: {}",
                        l.at.format("%Y-%m-%d %H:%M"),
                        l.text
                    ));
                }
                self.say(Sender::Bot, text, Vec::new()).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_codes_are_six_unambiguous_characters() {
        let code = new_ticket_code().expect("randomness");
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        assert_ne!(
            new_ticket_code().expect("randomness"),
            code,
            "two codes in a row differ"
        );
    }
}
