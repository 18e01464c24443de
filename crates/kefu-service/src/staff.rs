//! Staff actions: claim, reply, resolve, release. Each is one transaction with the policy step it
//! triggers — the ticket's row and the conversation's state change together or not at all, so no
//! crash can leave a conversation "with staff" behind a resolved ticket.

use chrono::{DateTime, Utc};
use kefu_core::Event;
use kefu_core::delivery::{Delivery, StaffPost};
use kefu_core::model::{Sender, Ticket, TicketStatus};
use kefu_core::staff::{self as text, StaffAction, StaffOutcome};
use kefu_core::state::Lang;
use kefu_core::{Context, Flood, QueueInfo};
use kefu_store::{ClaimOutcome, ReleaseOutcome, ResolveOutcome};
use tracing::Instrument;

use crate::inbound::queue_info;
use crate::turn::Turn;
use crate::{Result, Service, decode_state};

/// Who acts, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffActor {
    /// The name users and the transcript see.
    pub name: String,
    /// The staff space the action came from (`telegram`, `discord`), if it came from one: a
    /// refusal is posted there, and a reply typed there is not echoed back to it.
    pub space: Option<String>,
    /// The staff-space message to quote in a refusal (the staff member's own message).
    pub reply_to: Option<String>,
    /// Post a refusal in the space (a typed reply that was not sent); a button press is
    /// answered by the platform's own toast instead.
    pub post_refusal: bool,
    /// The language of the refusal, when the platform says which the person uses.
    pub lang: Option<Lang>,
    /// The person's user id on the platform of `space`: when a staff account is linked to it,
    /// the action is taken under the account's name instead of `name`.
    pub platform_user_id: Option<String>,
}

impl StaffActor {
    /// Someone acting from the terminal desk or the console, under `name`.
    pub fn named(name: impl Into<String>) -> Self {
        StaffActor {
            name: name.into(),
            space: None,
            reply_to: None,
            post_refusal: false,
            lang: None,
            platform_user_id: None,
        }
    }
}

impl Service {
    /// A staff action on a ticket, with its policy step, in one transaction. Of several staff
    /// members claiming at once exactly one wins; a reply to a queued ticket claims it first; only
    /// the holder resolves or releases. An actor from a staff space whose platform user id is
    /// linked to a staff account acts under the account's name.
    pub async fn staff_action(
        &self,
        actor: &StaffActor,
        ticket_id: i64,
        action: StaffAction,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        let resolved = self.resolve_actor(actor).await?;
        let actor = resolved.as_ref().unwrap_or(actor);
        let span = tracing::info_span!(
            "staff",
            ticket = ticket_id,
            action = action.verb(),
            space = actor.space.as_deref().unwrap_or("-")
        );
        let outcome = self
            .staff_turn(actor, ticket_id, &action, now)
            .instrument(span)
            .await?;
        if outcome != StaffOutcome::Done {
            self.post_refusal(actor, ticket_id, &action, &outcome, now)
                .await?;
        }
        Ok(outcome)
    }

    /// The name an actor acts under: its staff account's, when its platform user id is linked
    /// to one, else its own.
    pub(crate) async fn acting_name(&self, actor: &StaffActor) -> Result<String> {
        Ok(self
            .resolve_actor(actor)
            .await?
            .map_or_else(|| actor.name.clone(), |a| a.name))
    }

    /// The actor under its staff account's name, when its platform user id is linked to one
    /// (`None`: act as given).
    async fn resolve_actor(&self, actor: &StaffActor) -> Result<Option<StaffActor>> {
        let (Some(space), Some(user_id)) = (&actor.space, &actor.platform_user_id) else {
            return Ok(None);
        };
        let Some(account) = self.store.staff_by_platform_id(space, user_id).await? else {
            return Ok(None);
        };
        Ok((account.name != actor.name).then(|| StaffActor {
            name: account.name,
            ..actor.clone()
        }))
    }

    /// [`staff_action`](Self::staff_action) `Claim` by `staff` (desk, console).
    pub async fn claim(
        &self,
        ticket_id: i64,
        staff: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        self.staff_action(
            &StaffActor::named(staff),
            ticket_id,
            StaffAction::Claim,
            now,
        )
        .await
    }

    /// [`staff_action`](Self::staff_action) `Reply` by `staff` (desk, console).
    pub async fn reply(
        &self,
        ticket_id: i64,
        staff: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        let action = StaffAction::Reply(text.to_owned());
        self.staff_action(&StaffActor::named(staff), ticket_id, action, now)
            .await
    }

    /// [`staff_action`](Self::staff_action) `Resolve` by `staff` (desk, console).
    pub async fn resolve(
        &self,
        ticket_id: i64,
        staff: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        self.staff_action(
            &StaffActor::named(staff),
            ticket_id,
            StaffAction::Resolve,
            now,
        )
        .await
    }

    /// [`staff_action`](Self::staff_action) `Release` by `staff` (desk, console).
    pub async fn release(
        &self,
        ticket_id: i64,
        staff: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        self.staff_action(
            &StaffActor::named(staff),
            ticket_id,
            StaffAction::Release,
            now,
        )
        .await
    }

    async fn staff_turn(
        &self,
        actor: &StaffActor,
        ticket_id: i64,
        action: &StaffAction,
        now: DateTime<Utc>,
    ) -> Result<StaffOutcome> {
        let Some(ticket) = self.store.ticket(ticket_id).await? else {
            return Ok(StaffOutcome::NotFound);
        };
        let staff = actor.name.as_str();
        // A resolve from a space whose adapter handles label buttons is followed there by the
        // label post (read before the transaction: it only reads).
        let label_post = match (action, &actor.space) {
            (StaffAction::Resolve, Some(space))
                if self.config.label_spaces.contains(space)
                    && self.config.staff_spaces.contains(space) =>
            {
                self.label_post(&ticket, self.config.staff_language)
                    .await?
                    .map(|post| (space.clone(), post))
            }
            _ => None,
        };
        let mut tx = self.store.begin().await?;
        // The conversation first, then the ticket: the same order as a user's turn, so the two
        // never wait for each other in a cycle.
        let conversation = tx.load_conversation(&ticket.conversation).await?;
        let mut state = decode_state(conversation.state.as_ref());
        let code = ticket.code.clone();
        let (outcome, event, notice) = match action {
            StaffAction::Claim => match tx.claim(ticket_id, staff, now).await? {
                ClaimOutcome::Claimed => (
                    StaffOutcome::Done,
                    Some(Event::StaffClaimed {
                        ticket: code,
                        staff: staff.to_owned(),
                    }),
                    Notice::Claimed,
                ),
                ClaimOutcome::AlreadyClaimedBy(other) if other == staff => {
                    (StaffOutcome::Done, None, Notice::None)
                }
                ClaimOutcome::AlreadyClaimedBy(other) => {
                    (StaffOutcome::HeldBy(other), None, Notice::None)
                }
                ClaimOutcome::NotFound => (StaffOutcome::NotFound, None, Notice::None),
                ClaimOutcome::Closed => (StaffOutcome::Closed, None, Notice::None),
            },
            StaffAction::Reply(body) => {
                let current = tx.ticket(ticket_id).await?;
                match current.as_ref().map(|t| (t.status, t.assignee.as_deref())) {
                    None => (StaffOutcome::NotFound, None, Notice::None),
                    Some((TicketStatus::Resolved | TicketStatus::Cancelled, _)) => {
                        (StaffOutcome::Closed, None, Notice::None)
                    }
                    Some((TicketStatus::Claimed, Some(holder))) if holder != staff => {
                        (StaffOutcome::HeldBy(holder.to_owned()), None, Notice::None)
                    }
                    Some((status, _)) => {
                        let claimed_now = status == TicketStatus::Queued;
                        if claimed_now {
                            // A reply to a queued ticket claims it (the policy does the same).
                            match tx.claim(ticket_id, staff, now).await? {
                                ClaimOutcome::Claimed => {}
                                ClaimOutcome::AlreadyClaimedBy(other) if other != staff => {
                                    tx.rollback().await?;
                                    return Ok(StaffOutcome::HeldBy(other));
                                }
                                _ => {}
                            }
                        }
                        let body = kefu_core::text::sanitize(body);
                        let redacted = kefu_nlu::secrets::Redacted::of(&body).into_string();
                        (
                            StaffOutcome::Done,
                            Some(Event::StaffReply {
                                ticket: code,
                                staff: staff.to_owned(),
                                text: redacted.clone(),
                            }),
                            Notice::Reply {
                                text: redacted,
                                claimed: claimed_now,
                            },
                        )
                    }
                }
            }
            StaffAction::Resolve => match tx.resolve(ticket_id, staff, now).await? {
                ResolveOutcome::Resolved => (
                    StaffOutcome::Done,
                    Some(Event::StaffResolved {
                        ticket: code,
                        staff: staff.to_owned(),
                    }),
                    Notice::Resolved,
                ),
                ResolveOutcome::NotClaimed => (StaffOutcome::NotClaimed, None, Notice::None),
                ResolveOutcome::HeldBy(other) => (StaffOutcome::HeldBy(other), None, Notice::None),
                ResolveOutcome::NotFound => (StaffOutcome::NotFound, None, Notice::None),
                ResolveOutcome::Closed => (StaffOutcome::Closed, None, Notice::None),
            },
            StaffAction::Release => match tx.release(ticket_id, staff).await? {
                ReleaseOutcome::Released => (
                    StaffOutcome::Done,
                    Some(Event::StaffReleased {
                        ticket: code,
                        staff: staff.to_owned(),
                    }),
                    Notice::Released,
                ),
                ReleaseOutcome::NotClaimed => (StaffOutcome::NotClaimed, None, Notice::None),
                ReleaseOutcome::HeldBy(other) => (StaffOutcome::HeldBy(other), None, Notice::None),
                ReleaseOutcome::NotFound => (StaffOutcome::NotFound, None, Notice::None),
                ReleaseOutcome::Closed => (StaffOutcome::Closed, None, Notice::None),
            },
        };
        let Some(event) = event else {
            tx.rollback().await?;
            return Ok(outcome);
        };
        // For the metrics, counted once the transaction commits.
        let claimed = matches!(
            notice,
            Notice::Claimed | Notice::Reply { claimed: true, .. }
        );
        let resolved = matches!(notice, Notice::Resolved);
        let first_response = if matches!(notice, Notice::Reply { .. }) {
            let lines = tx.transcript(&ticket.conversation).await?;
            let answered = lines
                .iter()
                .any(|l| matches!(l.sender, Sender::Staff(_)) && l.at >= ticket.created_at);
            (!answered).then(|| (now - ticket.created_at).to_std().unwrap_or_default())
        } else {
            None
        };
        // The policy step applies to the conversation as it stood before this action: if its
        // state lost track of the ticket (closed by an older version, changed by hand), it is
        // first put back where the ticket stood, so the user is never left stuck.
        let before = match (&notice, action) {
            (Notice::Claimed, _) | (Notice::Reply { claimed: true, .. }, _) => TicketStatus::Queued,
            _ => TicketStatus::Claimed,
        };
        align(&mut state, &ticket, before, staff, now);
        let open = tx.ticket(ticket_id).await?;
        let queue = if matches!(action, StaffAction::Release) {
            queue_info(&mut tx, open.as_ref()).await?
        } else {
            QueueInfo::default()
        };
        let engine = self.engine();
        let kb = engine.as_deref().map_or(&self.empty_kb, |e| e.kb());
        let ctx = Context {
            kb,
            now,
            hours: &self.config.hours,
            queue,
            ticket_code: &ticket.code,
            flood: Flood::UNLIMITED,
        };
        let step = kefu_core::handle(&state, &event, &ctx);
        let mut turn = Turn::new(
            tx,
            self,
            conversation.id,
            &ticket.conversation,
            &ticket.user_name,
            open.or(Some(ticket.clone())),
            None,
            None,
            now,
        );
        for action in step.actions {
            turn.apply(action).await?;
        }
        turn.flush().await?;
        let lang = self.config.staff_language;
        match notice {
            Notice::None => {}
            Notice::Claimed => {
                let t = text::claimed(lang, staff);
                turn.post_to_staff_spaces(ticket_id, None, |_| post(&t))
                    .await?;
            }
            Notice::Reply {
                text: body,
                claimed,
            } => {
                if claimed {
                    let t = text::claimed(lang, staff);
                    turn.post_to_staff_spaces(ticket_id, None, |_| post(&t))
                        .await?;
                }
                // Staff in the other spaces see what was said to the user.
                let line = format!("🧑‍💼 {staff}: {body}");
                turn.post_to_staff_spaces(ticket_id, actor.space.as_deref(), |_| post(&line))
                    .await?;
            }
            Notice::Resolved => {
                let t = text::resolved(lang, staff);
                turn.post_to_staff_spaces(ticket_id, None, |_| post(&t))
                    .await?;
                if let Some((space, label_post)) = label_post {
                    turn.post_to_staff_space(&space, ticket_id, label_post)
                        .await?;
                }
                turn.close_staff_spaces(ticket_id).await?;
            }
            Notice::Released => {
                let t = text::released(lang, staff);
                turn.post_to_staff_spaces(ticket_id, None, |_| post(&t))
                    .await?;
            }
        }
        let enqueued = turn.enqueued;
        let counted = std::mem::take(&mut turn.counted);
        let mut tx = turn.tx;
        tx.save_conversation(conversation.id, &serde_json::to_value(&step.state)?, now)
            .await?;
        tx.commit().await?;
        if enqueued {
            self.outbox_changed();
        }
        counted.record(&self.metrics);
        if claimed {
            self.metrics.ticket_claimed(ticket.priority);
        }
        if resolved {
            self.metrics.ticket_resolved(ticket.priority);
        }
        if let Some(took) = first_response {
            self.metrics.first_response(ticket.priority, took);
        }
        Ok(outcome)
    }

    /// Tells the staff member, in the space they acted from, that their action did nothing.
    async fn post_refusal(
        &self,
        actor: &StaffActor,
        ticket_id: i64,
        action: &StaffAction,
        outcome: &StaffOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (Some(space), true) = (&actor.space, actor.post_refusal) else {
            return Ok(());
        };
        if !self.config.staff_spaces.contains(space) || *outcome == StaffOutcome::NotFound {
            return Ok(());
        }
        let lang = actor.lang.unwrap_or(self.config.staff_language);
        let refusal = match action {
            StaffAction::Reply(_) => text::not_sent(lang, outcome),
            _ => Some(text::button_outcome(lang, action, outcome)),
        };
        let Some(refusal) = refusal else {
            return Ok(());
        };
        let delivery = Delivery::StaffPost {
            ticket_id,
            post: StaffPost {
                text: refusal,
                reply_to: actor.reply_to.clone(),
                ..StaffPost::default()
            },
        };
        self.store.enqueue_delivery(space, &delivery, now).await?;
        self.outbox_changed();
        Ok(())
    }
}

/// What staff spaces are told after an action.
enum Notice {
    None,
    Claimed,
    Reply { text: String, claimed: bool },
    Resolved,
    Released,
}

fn post(text: &str) -> StaffPost {
    StaffPost {
        text: text.to_owned(),
        ..StaffPost::default()
    }
}

/// Puts the conversation's phase where the ticket stood before this action (`before`: queued or
/// claimed), when it disagrees and does not belong to another open ticket.
fn align(
    state: &mut kefu_core::ConversationState,
    ticket: &Ticket,
    before: TicketStatus,
    staff: &str,
    now: DateTime<Utc>,
) {
    use kefu_core::state::Phase;
    let code = ticket.code.as_str();
    let agrees = match (&state.phase, before) {
        (Phase::Queued { ticket, .. }, TicketStatus::Queued) => ticket == code,
        (Phase::WithStaff { ticket, .. }, TicketStatus::Claimed) => ticket == code,
        _ => false,
    };
    let other_ticket = state.open_ticket().is_some_and(|t| t != code);
    if agrees || other_ticket {
        return;
    }
    tracing::warn!(ticket = %code, "conversation state disagreed with its ticket; repaired");
    state.phase = match before {
        TicketStatus::Queued => Phase::Queued {
            ticket: code.to_owned(),
            last_notice: now,
        },
        _ => Phase::WithStaff {
            ticket: code.to_owned(),
            staff: ticket.assignee.clone().unwrap_or_else(|| staff.to_owned()),
        },
    };
}
