//! The promises [`crate::handle`] keeps whatever happens, as checks a test or a fuzzer can run on
//! every step of a random conversation.
//!
//! - **Staff hold the chat → the bot is silent.** While a staff member holds the chat, a user
//!   message produces no bot reply (the one exception is the warning about a pasted secret), no
//!   transcript, no ticket, no miss or rating; the message reaches staff and the chat stays theirs.
//! - **One ticket per escalation.** A step opens at most one ticket, only when the conversation has
//!   none open, and the conversation is then queued on exactly that ticket.
//! - **One holder.** A held ticket keeps its staff member until staff resolve, release or close it;
//!   a chat only passes to staff from the queue, on its own ticket.
//! - **Ways out.** From every state the bot holds, /cancel returns to idle and tells the user, and
//!   the human command reaches the queue (or says the user is already in it); a staff-held chat
//!   ends when staff resolve, release or close its ticket.
//! - **Well-formed output.** Every reply has text, every button's payload is a command the policy
//!   understands, and every state survives the store's JSON round trip.
//!
//! [`check_step`] checks one step; [`check_ways_out`] checks one state. Both return a sentence
//! naming the broken promise, so a failing random sequence reads as a bug report.

use crate::action::Action;
use crate::commands::{self, Command};
use crate::context::Context;
use crate::event::{Event, UserMessage};
use crate::messages as msg;
use crate::policy::{Step, handle};
use crate::state::{ConversationState, Phase};

/// Checks the step `handle(before, event, …)` returned against the promises above.
pub fn check_step(before: &ConversationState, event: &Event, step: &Step) -> Result<(), String> {
    check_output(step)?;
    check_tickets(before, step)?;
    check_holder(before, event, step)?;
    if let (Some((ticket, staff)), Event::UserMessage(m)) = (before.held_by_staff(), event) {
        check_silent(before, m, step, ticket, staff)?;
    }
    Ok(())
}

fn check_output(step: &Step) -> Result<(), String> {
    for action in &step.actions {
        if let Action::Reply(reply) = action {
            if reply.text.trim().is_empty() {
                return Err("a reply has no text".to_owned());
            }
            for b in &reply.buttons {
                match commands::parse(&b.payload) {
                    Some(Command::Unknown) | None => {
                        return Err(format!(
                            "button {:?} sends {:?}, which the policy does not understand",
                            b.label, b.payload
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    let json = serde_json::to_value(&step.state).map_err(|e| format!("state not storable: {e}"))?;
    let back: ConversationState =
        serde_json::from_value(json).map_err(|e| format!("stored state not readable: {e}"))?;
    if back != step.state {
        return Err(format!(
            "state changes in the JSON round trip: {:?} → {back:?}",
            step.state
        ));
    }
    Ok(())
}

fn check_tickets(before: &ConversationState, step: &Step) -> Result<(), String> {
    let opened: Vec<&str> = step
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::OpenTicket(t) => Some(t.code.as_str()),
            _ => None,
        })
        .collect();
    match opened.as_slice() {
        [] => {
            // Without a new ticket, an open ticket can only be the one there was.
            if let (Some(after), before_ticket) = (step.state.open_ticket(), before.open_ticket())
                && before_ticket != Some(after)
            {
                return Err(format!(
                    "the conversation moved to ticket {after} without opening it (it had {before_ticket:?})"
                ));
            }
        }
        [code] => {
            if let Some(open) = before.open_ticket() {
                return Err(format!(
                    "ticket {code} opened while ticket {open} was still open"
                ));
            }
            if !matches!(&step.state.phase, Phase::Queued { ticket, .. } if ticket == code) {
                return Err(format!(
                    "ticket {code} opened but the conversation is {:?}",
                    step.state.phase
                ));
            }
        }
        more => return Err(format!("one step opened {} tickets", more.len())),
    }
    Ok(())
}

fn check_holder(before: &ConversationState, event: &Event, step: &Step) -> Result<(), String> {
    let after = step.state.held_by_staff();
    match (before.held_by_staff(), after) {
        (Some(held), Some(now)) if held != now => Err(format!(
            "the chat held by {} on ticket {} passed to {} on ticket {}",
            held.1, held.0, now.1, now.0
        )),
        (None, Some((ticket, staff))) => {
            let queued_on_it =
                matches!(&before.phase, Phase::Queued { ticket: t, .. } if t == ticket);
            let by_that_staff = match event {
                Event::StaffClaimed {
                    ticket: t,
                    staff: s,
                }
                | Event::StaffReply {
                    ticket: t,
                    staff: s,
                    ..
                } => t == ticket && s == staff,
                _ => false,
            };
            if queued_on_it && by_that_staff {
                Ok(())
            } else {
                Err(format!(
                    "{staff} holds ticket {ticket} after {event:?} in {:?}",
                    before.phase
                ))
            }
        }
        _ => Ok(()),
    }
}

fn check_silent(
    before: &ConversationState,
    m: &UserMessage,
    step: &Step,
    ticket: &str,
    staff: &str,
) -> Result<(), String> {
    let warning = msg::secret_warning(before.language, &m.secrets);
    for action in &step.actions {
        match action {
            Action::Reply(r) if !m.secrets.is_empty() && r.text == warning => {}
            Action::RelayToStaff { ticket: t, .. } if t == ticket => {}
            Action::DeleteUserMessage { .. } => {}
            other => {
                return Err(format!(
                    "while {staff} holds the chat the bot did {other:?}"
                ));
            }
        }
    }
    let warnings = step
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Reply(_)))
        .count();
    if warnings > 1 {
        return Err(format!(
            "while {staff} holds the chat the bot replied {warnings} times"
        ));
    }
    let has_content = !m.text_redacted.trim().is_empty() || !m.attachments.is_empty();
    let relayed = step
        .actions
        .iter()
        .any(|a| matches!(a, Action::RelayToStaff { .. }));
    if has_content && !relayed {
        return Err(format!(
            "a message to {staff} on ticket {ticket} was not relayed"
        ));
    }
    if step.state.held_by_staff() != Some((ticket, staff)) {
        return Err(format!(
            "a user message ended {staff}'s hold on ticket {ticket}: now {:?}",
            step.state.phase
        ));
    }
    Ok(())
}

/// A user message with no NLU verdict: how commands arrive.
fn command_message(text: &str, ctx: &Context<'_>) -> Event {
    Event::UserMessage(UserMessage {
        text_redacted: text.to_owned(),
        secrets: Vec::new(),
        at: ctx.now,
        platform_message_id: "way-out".to_owned(),
        decision: None,
        attachments: Vec::new(),
        clauses: Vec::new(),
        thresholds: None,
    })
}

/// Checks that `state` has its ways out: /cancel and the human command from any state the bot
/// holds; resolve, release and close from a staff-held one.
pub fn check_ways_out(state: &ConversationState, ctx: &Context<'_>) -> Result<(), String> {
    let replied = |step: &Step| step.actions.iter().any(|a| matches!(a, Action::Reply(_)));
    if let Some((ticket, staff)) = state.held_by_staff() {
        let endings = [
            Event::StaffResolved {
                ticket: ticket.to_owned(),
                staff: staff.to_owned(),
            },
            Event::StaffReleased {
                ticket: ticket.to_owned(),
                staff: staff.to_owned(),
            },
            Event::TicketCancelled {
                ticket: ticket.to_owned(),
            },
        ];
        for event in endings {
            let step = handle(state, &event, ctx);
            if step.state.held_by_staff().is_some() || !replied(&step) {
                return Err(format!(
                    "{event:?} did not hand the chat back (now {:?})",
                    step.state.phase
                ));
            }
        }
        return Ok(());
    }
    let cancel = handle(state, &command_message("/cancel", ctx), ctx);
    if cancel.state.phase != Phase::Idle || !replied(&cancel) {
        return Err(format!(
            "/cancel in {:?} left {:?}{}",
            state.phase,
            cancel.state.phase,
            if replied(&cancel) {
                ""
            } else {
                " with no reply"
            }
        ));
    }
    if let Phase::Queued { ticket, .. } = &state.phase {
        let cancelled = cancel
            .actions
            .iter()
            .any(|a| matches!(a, Action::CancelTicket { ticket: t } if t == ticket));
        if !cancelled {
            return Err(format!("/cancel while queued left ticket {ticket} open"));
        }
    }
    let human = handle(state, &command_message("/human", ctx), ctx);
    let reached = human
        .actions
        .iter()
        .any(|a| matches!(a, Action::OpenTicket(_)))
        || matches!(
            human.state.phase,
            Phase::Collecting { .. } | Phase::Queued { .. }
        );
    if !reached || !replied(&human) {
        return Err(format!(
            "/human in {:?} did not reach the queue (now {:?})",
            state.phase, human.state.phase
        ));
    }
    Ok(())
}
