//! A user's message, from the adapter to a committed turn: clean, redact, store with a lease,
//! then one transaction that commits only while the lease is still this process's.

use chrono::{DateTime, TimeDelta, Utc};
use kefu_core::model::{Attachment, ConversationRef, Inbound, Ticket, TicketStatus};
use kefu_core::state::Phase;
use kefu_core::{
    Action, Context, ConversationState, Event, Flood, QueueInfo, Reply, SecretFound, UserMessage,
};
use kefu_nlu::engine::Engine;
use kefu_nlu::secrets::{Redacted, redact_with_history};
use kefu_store::{InboundOutcome, StoreError, StoredInbound, UnitOfWork};
use tracing::Instrument;

use crate::turn::Turn;
use crate::{Result, Service, ServiceError, decode_state, error_chain, new_ticket_code};

/// Handlings a stored message gets before it is set aside as failed.
const MAX_ATTEMPTS: i64 = 5;

/// Messages taken over per [`Service::recover`] call.
const RECOVER_BATCH: i64 = 100;

/// The NLU reads at most this much of a message (it is stored whole, up to the configured cap).
const CLASSIFY_BYTES: usize = 2048;

/// Attempts at a turn whose fresh ticket code clashed with an existing one.
const CODE_ATTEMPTS: u32 = 3;

/// What happened to an inbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// The same platform message was already stored: nothing was done.
    Duplicate,
    /// Handled; what it caused is in the outbox.
    Processed {
        /// A secret was found and redacted (the warning is in the outbox, and, where the
        /// platform allows, the message's deletion).
        secret_redacted: bool,
        /// A ticket opened by this message.
        ticket_opened: Option<Box<Ticket>>,
    },
    /// Another handler took the message over (this one held it past its lease): it does the
    /// work, this one did nothing.
    TakenOver,
    /// Stored, but its handling failed for now (the database is unreachable or busy), or it waits
    /// for an earlier message of its conversation still unfinished: it is taken over and handled
    /// in its turn. The platform update can be acknowledged.
    Deferred,
    /// Stored, but its handling can never succeed: set aside with the reason (the platform
    /// update can be acknowledged; nothing else waits for it).
    Failed,
}

/// A stored message on its way through a turn.
struct Message<'a> {
    id: i64,
    conversation: &'a ConversationRef,
    user_name: &'a str,
    platform_message_id: &'a str,
    /// The redacted text.
    text: Redacted,
    /// Secrets found on arrival (empty when taken over: the warning went out already or will not).
    secrets: Vec<SecretFound>,
    sent_at: DateTime<Utc>,
    attachments: &'a [Attachment],
    pressed: bool,
    /// The text was longer than the service keeps.
    cut: bool,
    /// When this process received it (None when taken over from an earlier handler).
    received: Option<std::time::Instant>,
}

impl Service {
    /// Handles one inbound message end to end (see the crate doc).
    ///
    /// `Err` means the message was not stored: when [`ServiceError::is_transient`], hold the
    /// platform update and try again later; otherwise the update can never be stored — record
    /// it with [`Service::record_unstorable`] and acknowledge it, so it does not block the
    /// messages after it. Every `Ok` means the update can be acknowledged.
    pub async fn handle_inbound(&self, inbound: &Inbound, now: DateTime<Utc>) -> Result<Handled> {
        let received = std::time::Instant::now();
        let engine = self.engine().ok_or(ServiceError::NoEngine)?;
        let clean = kefu_core::text::sanitize(&inbound.text);
        let (text, cut) = kefu_core::text::cap(&clean, self.config.max_message_bytes);
        let name = kefu_core::text::sanitize(&inbound.user_name);
        let (name, _) = kefu_core::text::cap(&name, 256);
        let (redacted, spans) = Redacted::scan(text);
        let stored = Inbound {
            text: String::new(),
            user_name: name.to_owned(),
            platform_message_id: kefu_core::text::sanitize(&inbound.platform_message_id)
                .into_owned(),
            ..inbound.clone()
        };
        let lease_until = now + lease(self.config.inbound_lease);
        let id = match self
            .store
            .record_inbound(&stored, &redacted, self.instance(), lease_until, now)
            .await?
        {
            InboundOutcome::Duplicate => return Ok(Handled::Duplicate),
            InboundOutcome::New(id) => id,
        };
        self.metrics.inbound(&stored.conversation.platform);
        let message = Message {
            id,
            conversation: &stored.conversation,
            user_name: &stored.user_name,
            platform_message_id: &stored.platform_message_id,
            text: redacted,
            secrets: spans.iter().map(SecretFound::from).collect(),
            sent_at: inbound.at,
            attachments: &inbound.attachments,
            pressed: inbound.pressed,
            cut,
            received: Some(received),
        };
        let (handled, later) = self.settle(&engine, message, now).await;
        if later {
            self.handle_waiting(&engine, id, now).await;
        }
        Ok(handled)
    }

    /// Handles the messages of `after`'s conversation that wait for their turn behind it —
    /// deferred while it was unfinished, by this process or another — so they do not wait for
    /// recovery. Stops when none is left, an earlier one is still leased, or the store fails
    /// (recovery then takes them over).
    async fn handle_waiting(&self, engine: &Engine, mut after: i64, now: DateTime<Utc>) {
        for _ in 0..RECOVER_BATCH {
            let next = self
                .store
                .claim_next_waiting(
                    after,
                    self.instance(),
                    now + lease(self.config.inbound_lease),
                    MAX_ATTEMPTS,
                    now,
                )
                .await;
            let m = match next {
                Ok(Some(m)) => m,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(after, error = %error_chain(&e), "cannot take a message that waits its turn; recovery takes it over");
                    return;
                }
            };
            tracing::info!(inbound = m.id, "handling a message that waited its turn");
            let (_, later) = self.settle(engine, stored_message(&m), now).await;
            if !later {
                return;
            }
            after = m.id;
        }
    }

    /// Takes over and handles messages stored but not handled whose lease expired — their
    /// handler died, or failed for a moment — oldest first; returns how many were handled. A
    /// message another process is still handling is left alone. Their text was redacted before
    /// it was stored, so the secret warning is not repeated.
    pub async fn recover(&self, now: DateTime<Utc>) -> Result<usize> {
        let engine = self.engine().ok_or(ServiceError::NoEngine)?;
        let stale = self
            .store
            .claim_stale_inbound(
                self.instance(),
                now + lease(self.config.inbound_lease),
                MAX_ATTEMPTS,
                RECOVER_BATCH,
                now,
            )
            .await?;
        let mut handled = 0;
        for m in &stale {
            let message = stored_message(m);
            let (outcome, later) = self.settle(&engine, message, now).await;
            match outcome {
                Handled::Processed { .. } => handled += 1,
                // The database went away: the rest keep their leases and are taken over later.
                Handled::Deferred if !later => break,
                _ => {}
            }
            if later {
                self.handle_waiting(&engine, m.id, now).await;
            }
        }
        if !stale.is_empty() {
            tracing::info!(
                taken_over = stale.len(),
                handled,
                "recovered unhandled messages"
            );
        }
        Ok(handled)
    }

    /// Records a platform update that could never be stored (see [`Service::handle_inbound`]):
    /// which update and why, never its text.
    pub async fn record_unstorable(
        &self,
        platform: &str,
        source: &str,
        chat_id: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let letter = kefu_store::DeadLetter {
            platform: platform.to_owned(),
            source: source.to_owned(),
            chat_id: chat_id.map(str::to_owned),
            reason: reason.to_owned(),
            at: now,
        };
        self.store.record_dead_letter(&letter).await?;
        tracing::warn!(
            platform,
            source,
            reason,
            "an update that cannot be stored was set aside"
        );
        Ok(())
    }

    /// Runs the turn and turns its failure into what the caller needs to know, with whether a
    /// later message of the conversation may wait for this one ([`Service::handle_waiting`]).
    async fn settle(
        &self,
        engine: &Engine,
        message: Message<'_>,
        now: DateTime<Utc>,
    ) -> (Handled, bool) {
        let id = message.id;
        let span = tracing::info_span!(
            "turn",
            platform = %message.conversation.platform,
            inbound = id,
            conversation = tracing::field::Empty,
            ticket = tracing::field::Empty,
        );
        match self.process(engine, &message, now).instrument(span).await {
            Ok(done) => done,
            Err(e) if e.is_transient() => {
                tracing::warn!(inbound = id, error = %error_chain(&e), "a message's handling failed for now; it is retried when its lease expires");
                (Handled::Deferred, false)
            }
            Err(e) => {
                let reason = error_chain(&e);
                tracing::error!(inbound = id, error = %reason, "a message's handling can never succeed; set aside");
                match self.store.fail_inbound(id, &reason, now).await {
                    // Whatever waited for it may go now.
                    Ok(_) => (Handled::Failed, true),
                    Err(e) => {
                        tracing::warn!(inbound = id, error = %error_chain(&e), "could not set a message aside");
                        (Handled::Failed, false)
                    }
                }
            }
        }
    }

    async fn process(
        &self,
        engine: &Engine,
        m: &Message<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Handled, bool)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.turn(engine, m, now).await {
                Err(ServiceError::Store(StoreError::DuplicateTicketCode { .. }))
                    if attempt < CODE_ATTEMPTS =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    /// One committed turn; the flag tells whether a message of the conversation was stored
    /// after this one (it may wait for this one's turn).
    async fn turn(
        &self,
        engine: &Engine,
        m: &Message<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Handled, bool)> {
        let mut tx = self.store.begin().await?;
        // First, and conditional: the turn commits only while this process holds the message.
        if !tx.finish_inbound(m.id, self.instance(), now).await? {
            tx.rollback().await?;
            tracing::info!(
                inbound = m.id,
                "the message was taken over by another handler"
            );
            return Ok((Handled::TakenOver, false));
        }
        let conversation = tx.load_conversation(m.conversation).await?;
        tracing::Span::current().record("conversation", conversation.id);
        // A user's messages are handled in the order they were stored: while an earlier one is
        // unfinished (its handler at work here or in another instance, or dead with its lease
        // not expired), this one waits its turn. Looked at under the conversation's lock, so an
        // earlier message still being stored when this one was is seen too (storing it waits for
        // the lock on PostgreSQL; SQLite stores one at a time). The handler of the earlier one
        // takes this one next (`later` in its turn). One carrying a secret is handled at once:
        // its warning cannot wait.
        if m.secrets.is_empty() && tx.earlier_unhandled(m.id).await? {
            tx.rollback().await?;
            self.store.release_inbound(m.id, self.instance()).await?;
            tracing::info!(
                inbound = m.id,
                "an earlier message of the conversation is unfinished: this one waits its turn"
            );
            // The earlier one may finish before the release is seen, its handler then finding
            // nothing to take: the caller looks once more.
            return Ok((Handled::Deferred, true));
        }
        let mut state = decode_state(conversation.state.as_ref());
        let open = repair(&mut tx, &mut state, now).await?;
        let (text, split) = split_secrets(&mut tx, conversation.id, m, now).await?;
        let mut secrets = m.secrets.clone();
        secrets.extend(split);
        if let Some(t) = &open {
            tracing::Span::current().record("ticket", t.id);
        }
        let window = TimeDelta::from_std(self.config.flood.window).unwrap_or(TimeDelta::MAX);
        let recent = tx
            .count_recent_inbound(conversation.id, now - window)
            .await?;
        // A later message of the conversation is either seen here or waits for this turn's
        // commit to be stored at all: storing one takes a key-share lock on the conversation row
        // this turn holds `FOR UPDATE` on PostgreSQL (a weaker lock would open a gap here), and
        // the one write lock on SQLite. So one deferred behind this message is never missed.
        let later = recent.latest.is_some_and(|latest| latest > m.id);
        let queue = queue_info(&mut tx, open.as_ref()).await?;
        // Classified unless a human holds the chat (the policy may answer a clear question while
        // the ticket waits in the queue).
        let bot_may_answer = state.held_by_staff().is_none();
        let (prefix, _) = kefu_core::text::cap(&text, CLASSIFY_BYTES);
        let decision = bot_may_answer.then(|| {
            let started = std::time::Instant::now();
            let decision = engine.decide(prefix);
            self.metrics.nlu_time(started.elapsed());
            decision
        });
        let counted_decision = decision.clone();
        // Each clause of a message that asks two things, for the policy to answer both.
        let clauses = if bot_may_answer {
            kefu_core::clauses::decide(engine, prefix)
        } else {
            Vec::new()
        };
        let line_text = m
            .pressed
            .then(|| kefu_core::policy::press_label(&state, &text, engine.kb()))
            .flatten()
            .map_or_else(
                || text.clone(),
                |label| Redacted::of(&kefu_core::messages::pressed(&label)),
            );
        let code = new_ticket_code()?;
        let ctx = Context {
            kb: engine.kb(),
            now,
            hours: &self.config.hours,
            queue,
            ticket_code: &code,
            flood: Flood {
                recent_messages: usize::try_from(recent.typed).unwrap_or(usize::MAX),
                max_messages: self.config.flood.max_messages,
            },
        };
        let event = Event::UserMessage(UserMessage {
            text_redacted: text.as_str().to_owned(),
            secrets: secrets.clone(),
            at: m.sent_at,
            platform_message_id: m.platform_message_id.to_owned(),
            decision,
            attachments: m.attachments.to_vec(),
            clauses,
            thresholds: Some(engine.policy()),
        });
        let step = kefu_core::handle(&state, &event, &ctx);
        let mut turn = Turn::new(
            tx,
            self,
            conversation.id,
            m.conversation,
            m.user_name,
            open,
            Some(m.platform_message_id),
            Some(m.id),
            now,
        );
        turn.user_line(m.sent_at, line_text).await?;
        if let Some(d) = &counted_decision {
            turn.record_decision(d).await?;
        }
        if m.cut && step.state.held_by_staff().is_none() {
            let notice = kefu_core::messages::message_cut(step.state.language);
            turn.apply(Action::Reply(Reply {
                text: notice,
                buttons: Vec::new(),
            }))
            .await?;
        }
        let mut ticket_opened = None;
        for action in step.actions {
            let opens = matches!(action, Action::OpenTicket(_));
            turn.apply(action).await?;
            if opens {
                ticket_opened = turn.ticket.clone().map(Box::new);
            }
        }
        turn.flush().await?;
        let enqueued = turn.enqueued;
        let counted = std::mem::take(&mut turn.counted);
        let mut tx = turn.tx;
        tx.save_conversation(conversation.id, &serde_json::to_value(&step.state)?, now)
            .await?;
        tx.commit().await?;
        if enqueued {
            self.outbox_changed();
        }
        // Counted once the turn is real.
        let platform = &m.conversation.platform;
        counted.record(&self.metrics);
        if let Some(d) = &counted_decision {
            self.metrics.decision(d);
        }
        if !secrets.is_empty() {
            self.metrics.secrets_redacted(platform, secrets.len());
        }
        if let (true, Some(received)) = (enqueued, m.received) {
            self.metrics.reply_enqueued(platform, received.elapsed());
        }
        Ok((
            Handled::Processed {
                secret_redacted: !secrets.is_empty(),
                ticket_opened,
            },
            later,
        ))
    }
}

/// How far back a seed phrase split over messages is looked for: the user's last few messages,
/// within a few minutes.
const SPLIT_WINDOW: TimeDelta = TimeDelta::minutes(5);
const SPLIT_MESSAGES: i64 = 4;

/// A seed phrase split over this message and the user's previous ones ("my seed phrase is
/// w1 … w6", then "w7 … w12"): each part alone passed redaction; read together they are one.
/// The earlier parts are redacted where they were stored (the inbound row, its transcript line and
/// miss), and this message's part before it goes anywhere; returns this message's text and the
/// secrets found in it this way.
async fn split_secrets(
    tx: &mut kefu_store::UnitOfWork,
    conversation_id: i64,
    m: &Message<'_>,
    now: DateTime<Utc>,
) -> Result<(Redacted, Vec<SecretFound>)> {
    let history = tx
        .recent_inbound_texts(conversation_id, m.id, now - SPLIT_WINDOW, SPLIT_MESSAGES)
        .await?;
    if history.is_empty() || m.text.is_empty() {
        return Ok((m.text.clone(), Vec::new()));
    }
    let texts: Vec<&str> = history.iter().map(|(_, t)| t.as_str()).collect();
    let split = redact_with_history(&texts, &m.text);
    for ((id, _), earlier) in history.iter().zip(&split.history) {
        if let Some(earlier) = earlier {
            tx.redact_inbound(*id, earlier).await?;
        }
    }
    let Some(text) = split.current else {
        return Ok((m.text.clone(), Vec::new()));
    };
    tx.redact_inbound(m.id, &text).await?;
    tracing::info!(
        inbound = m.id,
        "a secret split over several messages was redacted"
    );
    Ok((text, split.spans.iter().map(SecretFound::from).collect()))
}

fn stored_message(m: &StoredInbound) -> Message<'_> {
    Message {
        id: m.id,
        conversation: &m.conversation,
        user_name: &m.user_name,
        platform_message_id: &m.platform_message_id,
        // Redacted before it was stored; scanned again because the type says so, which finds
        // nothing new (labels are not secrets).
        text: Redacted::of(&m.text),
        secrets: Vec::new(),
        sent_at: m.sent_at,
        attachments: &m.attachments,
        pressed: m.pressed,
        cut: false,
        received: None,
    }
}

fn lease(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::seconds(10))
}

/// Brings a conversation's state in line with its ticket, and returns the open ticket. A ticket
/// closed or changed elsewhere (by an older version, by hand, by a crash between two separate
/// writes in the past) must never leave the user stuck: a closed ticket gives the chat back to
/// the bot; a claimed ticket means staff hold the chat; a queued one means they do not.
pub(crate) async fn repair(
    tx: &mut UnitOfWork,
    state: &mut ConversationState,
    now: DateTime<Utc>,
) -> Result<Option<Ticket>> {
    let Some(code) = state.open_ticket().map(str::to_owned) else {
        return Ok(None);
    };
    let ticket = tx.ticket_by_code(&code).await?;
    let (phase, open) = match ticket {
        None => (Some(Phase::Idle), None),
        Some(t) => match (t.status, &state.phase) {
            (TicketStatus::Resolved | TicketStatus::Cancelled, _) => (Some(Phase::Idle), None),
            (TicketStatus::Claimed, Phase::Queued { .. }) => (
                Some(Phase::WithStaff {
                    ticket: code.clone(),
                    staff: t.assignee.clone().unwrap_or_default(),
                }),
                Some(t),
            ),
            (TicketStatus::Queued, Phase::WithStaff { .. }) => (
                Some(Phase::Queued {
                    ticket: code.clone(),
                    last_notice: now,
                }),
                Some(t),
            ),
            _ => (None, Some(t)),
        },
    };
    if let Some(phase) = phase {
        tracing::warn!(ticket = %code, "conversation state disagreed with its ticket; repaired");
        state.phase = phase;
    }
    Ok(open)
}

/// The queue as this transaction sees it.
pub(crate) async fn queue_info(tx: &mut UnitOfWork, open: Option<&Ticket>) -> Result<QueueInfo> {
    let position = match open {
        Some(t) => tx.queue_position(t.id).await?.map_or(0, |p| p as usize),
        None => usize::try_from(tx.queued_count().await?).unwrap_or(0) + 1,
    };
    let handling = tx.recent_handling_time(20).await?;
    let expected_wait = handling
        .and_then(|h| h.to_std().ok())
        .map(|h| h * position.max(1) as u32);
    Ok(QueueInfo {
        position,
        expected_wait,
    })
}
