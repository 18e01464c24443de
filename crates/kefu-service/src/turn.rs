//! The effects of one policy step, carried out inside its transaction: transcript lines, the
//! ticket, and outbox rows — for the user, and for the ticket's staff space on every platform
//! that has one. Nothing here sends anything: the delivery worker does, once the transaction
//! commits.

use chrono::{DateTime, Utc};
use kefu_core::Action;
use kefu_core::delivery::{Delivery, Forward, StaffFile, StaffPost};
use kefu_core::model::{Attachment, Button, ConversationRef, Outgoing, Redacted, Sender, Ticket};
use kefu_core::render::ticket_title;
use kefu_core::staff;
use kefu_nlu::engine::{Decision, DecisionKind};
use kefu_store::{Miss, NewLine, NewTicket, UnitOfWork};

use crate::{Result, Service};

/// One step's effects in progress.
pub(crate) struct Turn<'a> {
    pub(crate) tx: UnitOfWork,
    pub(crate) service: &'a Service,
    pub(crate) conversation_id: i64,
    pub(crate) cref: &'a ConversationRef,
    pub(crate) user_name: &'a str,
    /// The conversation's open ticket (or the one this step opened).
    pub(crate) ticket: Option<Ticket>,
    /// The platform message the replies answer (groups quote it).
    pub(crate) reply_to: Option<&'a str>,
    /// The user message this turn handles, if any.
    pub(crate) inbound_id: Option<i64>,
    /// The first transcript line this turn wrote: a ticket opened by the turn takes the lines
    /// written before it existed.
    pub(crate) first_line: Option<i64>,
    pub(crate) now: DateTime<Utc>,
    /// Replies of this turn not yet in the outbox: consecutive ones go out as one message (a
    /// greeting and the answer are one post, not two).
    pending: Option<(String, Vec<Button>)>,
    /// Whether anything went into the outbox.
    pub(crate) enqueued: bool,
    /// What the metrics count once the transaction commits.
    pub(crate) counted: Counted,
}

/// Events of a turn that the metrics count once its transaction committed.
#[derive(Debug, Default)]
pub(crate) struct Counted {
    /// Priorities of the tickets opened.
    pub(crate) opened: Vec<kefu_core::model::Priority>,
    /// Ratings recorded.
    pub(crate) ratings: Vec<u8>,
}

impl Counted {
    /// Records them (call after the commit).
    pub(crate) fn record(&self, metrics: &crate::metrics::Metrics) {
        for p in &self.opened {
            metrics.ticket_opened(*p);
        }
        for score in &self.ratings {
            metrics.rating(*score);
        }
    }
}

/// A bot decision as stored for the reports: `answer`, `clarify`, `escalate`, or `out_of_scope`
/// for an escalation whose most likely class is "none of the KB's topics" (as the metrics count
/// it).
pub(crate) fn decision_kind(d: &Decision) -> &'static str {
    match d.decision {
        DecisionKind::Answer => "answer",
        DecisionKind::Clarify => "clarify",
        DecisionKind::Escalate if d.out_of_scope >= d.confidence => "out_of_scope",
        DecisionKind::Escalate => "escalate",
    }
}

impl<'a> Turn<'a> {
    #[allow(
        clippy::too_many_arguments,
        reason = "the turn's context, named at its two call sites"
    )]
    pub(crate) fn new(
        tx: UnitOfWork,
        service: &'a Service,
        conversation_id: i64,
        cref: &'a ConversationRef,
        user_name: &'a str,
        ticket: Option<Ticket>,
        reply_to: Option<&'a str>,
        inbound_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Self {
        Turn {
            tx,
            service,
            conversation_id,
            cref,
            user_name,
            ticket,
            reply_to,
            inbound_id,
            first_line: None,
            now,
            pending: None,
            enqueued: false,
            counted: Counted::default(),
        }
    }

    /// Records what the bot decided for the message, with the turn.
    pub(crate) async fn record_decision(&mut self, decision: &Decision) -> Result<()> {
        self.tx
            .record_decision(decision_kind(decision), self.now)
            .await?;
        Ok(())
    }

    /// Writes the user's line to the transcript (tagged with the open ticket).
    pub(crate) async fn user_line(&mut self, at: DateTime<Utc>, text: Redacted) -> Result<()> {
        let line = NewLine {
            at,
            sender: Sender::User,
            text,
        };
        let ticket = self.ticket.as_ref().map(|t| t.id);
        let id = match self.inbound_id {
            Some(inbound) => {
                self.tx
                    .append_user_line(self.conversation_id, ticket, inbound, &line)
                    .await?
            }
            None => {
                self.tx
                    .append_transcript(self.conversation_id, ticket, &line)
                    .await?
            }
        };
        self.first_line.get_or_insert(id);
        Ok(())
    }

    async fn line(&mut self, sender: Sender, text: &str) -> Result<()> {
        let line = NewLine::new(self.now, sender, text);
        let id = self
            .tx
            .append_transcript(
                self.conversation_id,
                self.ticket.as_ref().map(|t| t.id),
                &line,
            )
            .await?;
        self.first_line.get_or_insert(id);
        Ok(())
    }

    async fn enqueue(&mut self, platform: &str, delivery: Delivery) -> Result<()> {
        self.tx
            .enqueue_delivery(platform, &delivery, self.now)
            .await?;
        self.enqueued = true;
        Ok(())
    }

    /// A bot message for the user: in the transcript now, in the outbox with the next replies of
    /// this turn merged into it.
    async fn say(&mut self, text: String, buttons: Vec<Button>) -> Result<()> {
        self.line(Sender::Bot, &text).await?;
        match self.pending.take() {
            Some((mut earlier, earlier_buttons)) if earlier_buttons.is_empty() => {
                earlier.push_str("\n\n");
                earlier.push_str(&text);
                self.pending = Some((earlier, buttons));
            }
            Some(earlier) => {
                self.send_to_user(earlier).await?;
                self.pending = Some((text, buttons));
            }
            None => self.pending = Some((text, buttons)),
        }
        Ok(())
    }

    async fn send_to_user(&mut self, (text, buttons): (String, Vec<Button>)) -> Result<()> {
        let out = Outgoing {
            conversation: self.cref.clone(),
            text,
            buttons,
            reply_to: self.reply_to.map(str::to_owned),
        };
        let platform = self.cref.platform.clone();
        self.enqueue(&platform, Delivery::UserMessage(out)).await
    }

    /// Puts the replies still held into the outbox (keeps order with what follows).
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if let Some(pending) = self.pending.take() {
            self.send_to_user(pending).await?;
        }
        Ok(())
    }

    /// A post for the ticket's staff space on every platform that has one (but `except`).
    pub(crate) async fn post_to_staff_spaces(
        &mut self,
        ticket_id: i64,
        except: Option<&str>,
        post: impl Fn(&str) -> StaffPost,
    ) -> Result<()> {
        let spaces = self.service.config.staff_spaces.clone();
        for platform in spaces.iter().filter(|p| Some(p.as_str()) != except) {
            let delivery = Delivery::StaffPost {
                ticket_id,
                post: post(platform),
            };
            self.enqueue(platform, delivery).await?;
        }
        Ok(())
    }

    /// A post for the ticket's staff space on one platform.
    pub(crate) async fn post_to_staff_space(
        &mut self,
        platform: &str,
        ticket_id: i64,
        post: StaffPost,
    ) -> Result<()> {
        self.enqueue(platform, Delivery::StaffPost { ticket_id, post })
            .await
    }

    /// Closes the ticket's staff spaces.
    pub(crate) async fn close_staff_spaces(&mut self, ticket_id: i64) -> Result<()> {
        let spaces = self.service.config.staff_spaces.clone();
        for platform in &spaces {
            self.enqueue(platform, Delivery::CloseStaffSpace { ticket_id })
                .await?;
        }
        Ok(())
    }

    /// Opens the ticket's staff spaces with their first post: the summary, the transcript so far
    /// and the Claim / Resolve / Release buttons.
    async fn open_staff_spaces(&mut self, ticket: &Ticket) -> Result<()> {
        let spaces = self.service.config.staff_spaces.clone();
        if spaces.is_empty() {
            return Ok(());
        }
        let lang = self.service.config.staff_language;
        let lines = self.tx.transcript(self.cref).await?;
        let post = StaffPost {
            text: staff::ticket_summary(lang, ticket),
            buttons: staff::button_labels(lang)
                .into_iter()
                .map(|(label, verb)| Button {
                    label,
                    payload: staff::button_payload(verb, ticket.id),
                })
                .collect(),
            file: Some(StaffFile {
                name: format!("transcript-{}.txt", ticket.code),
                heading: staff::transcript_heading(lang),
                content: staff::render_transcript(lang, &lines),
                attached_note: staff::transcript_attached(lang),
            }),
            mention_staff: true,
            ..StaffPost::default()
        };
        for platform in &spaces {
            let open = Delivery::OpenStaffSpace {
                ticket_id: ticket.id,
                title: ticket_title(ticket),
            };
            self.enqueue(platform, open).await?;
            let first = Delivery::StaffPost {
                ticket_id: ticket.id,
                post: post.clone(),
            };
            self.enqueue(platform, first).await?;
        }
        Ok(())
    }

    /// The user's message (and what came with it) for the ticket's staff spaces.
    async fn relay_post_to_staff_spaces(
        &mut self,
        text: &str,
        attachments: &[Attachment],
    ) -> Result<()> {
        let Some(ticket_id) = self.ticket.as_ref().map(|t| t.id) else {
            return Ok(());
        };
        let lang = self.service.config.staff_language;
        let from = self.cref.platform.clone();
        let forward = (!attachments.is_empty())
            .then(|| self.reply_to.map(str::to_owned))
            .flatten()
            .map(|message_id| Forward {
                chat_id: self.cref.chat_id.clone(),
                message_id,
            });
        self.post_to_staff_spaces(ticket_id, None, |platform| {
            let mut lines: Vec<String> = Vec::new();
            if !text.is_empty() {
                lines.push(staff::relayed_line(text));
            }
            let same_platform = platform == from;
            for a in attachments {
                // On the user's own platform the message itself is forwarded; elsewhere staff
                // get a line (with a link where the platform gave one).
                if !(same_platform && forward.is_some() && a.url.is_none()) {
                    lines.push(staff::attachment_line(lang, a, &from));
                }
            }
            StaffPost {
                text: lines.join("\n"),
                forward: forward.clone().filter(|_| same_platform),
                ..StaffPost::default()
            }
        })
        .await
    }

    async fn ticket_by_code(&mut self, code: &str) -> Result<Option<Ticket>> {
        if let Some(t) = self.ticket.as_ref().filter(|t| t.code == code) {
            return Ok(Some(t.clone()));
        }
        Ok(self.tx.ticket_by_code(code).await?)
    }

    /// Carries out one action of the step.
    pub(crate) async fn apply(&mut self, action: Action) -> Result<()> {
        match action {
            Action::Reply(r) => self.say(r.text, r.buttons).await?,
            Action::RelayToUser { staff, text } => {
                self.flush().await?;
                self.line(Sender::Staff(staff), &text).await?;
                self.pending = Some((text, Vec::new()));
            }
            Action::RelayToStaff {
                ticket,
                text,
                attachments,
            } => {
                if self.ticket.as_ref().is_some_and(|t| t.code == ticket) {
                    self.relay_post_to_staff_spaces(&text, &attachments).await?;
                }
            }
            Action::DeleteUserMessage {
                platform_message_id,
            } => {
                self.flush().await?;
                let delete = Delivery::DeleteUserMessage {
                    conversation: self.cref.clone(),
                    platform_message_id,
                };
                let platform = self.cref.platform.clone();
                self.enqueue(&platform, delete).await?;
            }
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
                self.open_staff_spaces(&ticket).await?;
                self.counted.opened.push(ticket.priority);
                self.ticket = Some(ticket);
            }
            Action::CancelTicket { ticket } => {
                if let Some(t) = self.ticket_by_code(&ticket).await? {
                    self.tx.cancel(t.id, self.now).await?;
                    let text = staff::cancelled(self.service.config.staff_language);
                    self.post_to_staff_spaces(t.id, None, |_| StaffPost {
                        text: text.clone(),
                        ..StaffPost::default()
                    })
                    .await?;
                    self.close_staff_spaces(t.id).await?;
                }
            }
            Action::RecordMiss {
                text,
                language,
                best_guess,
            } => {
                let miss = Miss {
                    text: Redacted::of(&text),
                    language: Some(language),
                    intent_guess: best_guess,
                    confidence: None,
                    at: self.now,
                    inbound_id: self.inbound_id,
                };
                self.tx.record_miss(&miss).await?;
            }
            Action::RecordRating {
                ticket,
                score,
                comment,
            } => {
                if let Some(t) = self.ticket_by_code(&ticket).await? {
                    self.tx
                        .record_rating(t.id, score, comment.as_deref(), self.now)
                        .await?;
                    self.counted.ratings.push(score);
                }
            }
            Action::SendTranscript { header } => {
                let lines = self.tx.transcript(self.cref).await?;
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
                self.say(text, Vec::new()).await?;
            }
        }
        Ok(())
    }
}
