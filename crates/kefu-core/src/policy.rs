//! The conversation policy: `(state, event, context) → (state, actions)`.
//!
//! [`handle`] is a pure function. It reads the state, the event and the context, and returns the
//! next state with the actions for the service to carry out; it never fails and never panics on
//! any input (an event that doesn't fit the state, such as a staff reply for another ticket, gives
//! no actions and leaves the state as it was).
//!
//! # A user message, step by step
//! 1. **Language.** Outside detail questions and staff chats, the reply language follows the
//!    user's writing (Chinese characters → zh; an English phrase of two words or more → en) until
//!    they choose one explicitly with a language command.
//! 2. **Secrets.** If the message carried a seed phrase or key: delete it on the platform and warn
//!    first, whatever the phase (even while staff hold the chat: this is a safety notice, not an
//!    answer). The redacted text then goes on as usual.
//! 3. **Staff hold the chat** → relay to staff and stop: no answer, no command, no flood reply.
//!    Every message, commands included, reaches staff, who end the chat by resolving it.
//! 4. **Queued** → relay to the ticket; commands cancel, transcript, language and help still work;
//!    a clear FAQ question (the engine's own decision is "answer") is answered too, saying the
//!    ticket stays open; otherwise, every [`QUEUE_NOTICE_INTERVAL`] at most, a reminder of the
//!    place in the queue.
//! 5. **Flood control** → over the limit, one "please slow down" per burst and nothing else
//!    (cancel and the human command still work: they are the way out).
//! 6. **First contact** → the greeting, then the message is handled (unless it was only a hello).
//! 7. **Commands**, then the phase's own question (feedback, clarification, human offer, detail,
//!    rating); anything else is a new question and goes by the NLU's decision.
//!
//! # Interruptions, closings and two questions at once
//! - While the bot waits for something (a detail, an answer to a human offer or to "A or B?", a
//!   rating or its comment), a message that is clearly a new question — it is not what was asked
//!   for (a detail fails its validator) and the engine would answer it outside the form — is
//!   answered, and the bot goes back to where it was ("继续刚才的工单信息：(2/3) 金额是多少？")
//!   with the phase's buttons, a way to leave among them. "Clearly" is the engine's answer
//!   threshold, derived from the KB: no constant of the policy's own.
//! - Thanks and goodbyes ("好的谢谢", "bye") are answered once; another one right after gets no
//!   reply ([`ConversationState::closed`]).
//! - A message with two clear questions in separate clauses ([`crate::clauses`]) gets the first
//!   answered and the second offered as a button.
//! - The KB can be reloaded while "A or B?" waits: choosing an option it no longer has says the
//!   answers changed and asks for the question again (idle, not an error), the other option can
//!   still be chosen, and a clear new question is answered without asking the stale one again.
//! - When the engine hands over although its best intent alone reaches its own clarify threshold
//!   (the out-of-scope class outscored the second intent), the bot asks "A or B?" instead: on
//!   CLINC150's development split this turns 26 hand-overs into questions, 19 of them with the
//!   right option (`bench/sibling_rule.py`).

use chrono::Duration;
use kefu_nlu::engine::{Decision, DecisionKind};
use kefu_nlu::kb::KnowledgeBase;

use crate::action::{Action, NewTicket, Reply};
use crate::commands::{self, Command};
use crate::context::Context;
use crate::details;
use crate::event::{Event, UserMessage};
use crate::messages::{self as msg, OfferCause, TicketOpened};
use crate::model::{Attachment, Button, Detail, Priority};
use crate::state::{ConversationState, EscalationReason, Lang, Phase};

/// The KB intent that means "talk to a human": answered like the human command.
pub const HUMAN_INTENT: &str = "human";
/// The KB intent for "hello": not answered on first contact, where the greeting already says hello.
pub const GREETING_INTENT: &str = "smalltalk.greeting";
/// Intents under this prefix are answered without "did this help?".
pub const SMALLTALK_PREFIX: &str = "smalltalk.";
/// Shortest time between two "you are still in the queue" reminders.
pub const QUEUE_NOTICE_INTERVAL: Duration = Duration::minutes(10);
/// The KB intents that close a conversation ("thanks", "bye"): answered once, not repeated.
pub const CLOSING_INTENTS: &[&str] = &["smalltalk.thanks", "smalltalk.bye", "smalltalk.goodbye"];

/// The outcome of one event: the next state and what to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The state to store.
    pub state: ConversationState,
    /// The actions to carry out, in order.
    pub actions: Vec<Action>,
}

/// Applies one event to a conversation.
pub fn handle(state: &ConversationState, event: &Event, ctx: &Context<'_>) -> Step {
    let mut turn = Turn {
        state: state.clone(),
        actions: Vec::new(),
        ctx,
        already_closed: state.closed,
    };
    match event {
        Event::UserMessage(m) => turn.user_message(m),
        Event::StaffClaimed { ticket, staff } => turn.staff_claimed(ticket, staff),
        Event::StaffReply {
            ticket,
            staff,
            text,
        } => turn.staff_reply(ticket, staff, text),
        Event::StaffResolved { ticket, .. } => turn.staff_resolved(ticket),
        Event::StaffReleased { ticket, .. } => turn.staff_released(ticket),
        Event::TicketCancelled { ticket } => turn.ticket_cancelled(ticket),
    }
    Step {
        state: turn.state,
        actions: turn.actions,
    }
}

/// The label of the button whose payload is `payload`, as the user saw it in the conversation's
/// current phase (the buttons the bot last offered), for the transcript; `None` when the payload is
/// no button of this phase's (the user typed a command).
pub fn press_label(state: &ConversationState, payload: &str, kb: &KnowledgeBase) -> Option<String> {
    let lang = state.language;
    let default = kb.meta.default_language.as_deref();
    let title = |id: &str| {
        kb.intent(id)
            .map(|i| i.title_in(lang.code(), default).to_owned())
    };
    let command = commands::parse(payload.trim())?;
    if !payload.trim_start().starts_with('/') {
        return None;
    }
    match (&state.phase, command) {
        (Phase::AwaitingFeedback { .. }, Command::Yes) => Some(msg::feedback_buttons(lang).0),
        (Phase::AwaitingFeedback { .. }, Command::No) => Some(msg::feedback_buttons(lang).1),
        (Phase::OfferingHuman { .. }, Command::Yes) => Some(msg::offer_buttons(lang).0),
        (Phase::OfferingHuman { .. }, Command::No) => Some(msg::offer_buttons(lang).1),
        (Phase::Clarifying { .. }, Command::Neither) => Some(msg::neither_button(lang)),
        (Phase::Collecting { .. }, Command::Skip) => Some(msg::detail_buttons(lang).0),
        (Phase::Collecting { .. }, Command::Cancel) => Some(msg::detail_buttons(lang).1),
        (Phase::RatingComment { .. }, Command::Skip) => Some(msg::skip_button(lang)),
        (_, Command::Pick(id)) => title(&id),
        (_, Command::Rate(n)) => Some(format!("{n} ⭐")),
        _ => None,
    }
}

/// One step in progress.
struct Turn<'a, 'c> {
    state: ConversationState,
    actions: Vec<Action>,
    ctx: &'a Context<'c>,
    /// The bot had already said goodbye before this event.
    already_closed: bool,
}

/// What a clear question (the engine's decision is "answer", for a KB intent) is about, as far as
/// the policy treats it differently.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clear {
    /// The KB's "talk to a human" intent.
    Human,
    /// Thanks or goodbye.
    Closing,
    /// Any other small talk (hello).
    SmallTalk(String),
    /// An intent whose answer always opens a ticket.
    Handoff(String),
    /// An FAQ answer.
    Faq(String),
}

fn button(label: String, payload: &str) -> Button {
    Button {
        label,
        payload: payload.to_owned(),
    }
}

/// The 1–5 buttons under a rating question.
fn rating_buttons() -> Vec<Button> {
    (1..=5u8)
        .map(|n| button(format!("{n} ⭐"), &format!("/rate {n}")))
        .collect()
}

/// The text without secret labels: what is left to understand.
fn without_redactions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[redacted:") {
        out.push_str(&rest[..start]);
        match rest[start..].find(']') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

impl Turn<'_, '_> {
    fn lang(&self) -> Lang {
        self.state.language
    }

    fn reply(&mut self, text: String) {
        self.reply_with(text, Vec::new());
    }

    fn reply_with(&mut self, text: String, buttons: Vec<Button>) {
        self.actions.push(Action::Reply(Reply { text, buttons }));
    }

    fn queue_view<'s>(&'s self, code: &'s str) -> TicketOpened<'s> {
        TicketOpened {
            code,
            position: self.ctx.queue.position.max(1),
            wait: self.ctx.queue.expected_wait,
            priority: Priority::Normal,
            hours: self.ctx.hours,
            now: self.ctx.now,
        }
    }

    // ---------------------------------------------------------------------------------------
    // User messages
    // ---------------------------------------------------------------------------------------

    fn user_message(&mut self, m: &UserMessage) {
        let text = m.text_redacted.trim();
        let command = commands::parse(text);
        let phase = self.state.phase.clone();
        let first_contact = !self.state.greeted;
        // Anything but another goodbye reopens the conversation (a goodbye sets it again).
        self.state.closed = false;

        if text.starts_with('/') {
            // A slash command says nothing about the user's language ("/human" is not English).
            if first_contact && !self.state.language_chosen {
                self.state.language =
                    Lang::from_code(self.ctx.kb.default_language()).unwrap_or_default();
            }
        } else if !matches!(phase, Phase::Collecting { .. } | Phase::WithStaff { .. }) {
            self.follow_language(text, first_contact);
        }
        if !m.secrets.is_empty() {
            self.actions.push(Action::DeleteUserMessage {
                platform_message_id: m.platform_message_id.clone(),
            });
            self.reply(msg::secret_warning(self.lang(), &m.secrets));
        }

        match &phase {
            Phase::WithStaff { ticket, .. } => {
                if !text.is_empty() || !m.attachments.is_empty() {
                    self.relay_to_staff(ticket, text, &m.attachments);
                }
                return;
            }
            Phase::Queued {
                ticket,
                last_notice,
            } => {
                self.queued(ticket, *last_notice, m, command);
                return;
            }
            _ => {}
        }

        // Cancel and the human command are the way out of any state: flooding never blocks them.
        let way_out = matches!(command, Some(Command::Cancel | Command::Human));
        if self.ctx.flood.exceeded() && !way_out {
            if !self.state.throttled {
                self.state.throttled = true;
                self.reply(msg::slow_down(self.lang()));
            }
            return;
        }
        self.state.throttled = false;

        if first_contact {
            self.state.greeted = true;
            self.reply(msg::greeting(self.lang(), self.ctx.kb.meta.name.as_deref()));
        }

        let understandable = without_redactions(text);
        if understandable.is_empty() {
            if let Phase::Collecting { .. } = phase {
                self.ask_current_detail(false);
            } else if m.secrets.is_empty() && (!first_contact || !m.attachments.is_empty()) {
                // A photo or file alone: the bot reads only text (staff get attachments once a
                // ticket is open).
                self.reply(msg::text_only(self.lang()));
            }
            return;
        }

        match (phase, command) {
            (_, Some(Command::Start)) => {
                if !first_contact {
                    self.reply(msg::greeting(self.lang(), self.ctx.kb.meta.name.as_deref()));
                }
                self.state.phase = Phase::Idle;
            }
            (phase, Some(Command::Help)) => {
                self.reply(msg::help(self.lang()));
                if let Phase::Collecting { .. } = phase {
                    self.ask_current_detail(false);
                }
            }
            (phase, Some(Command::Language(lang))) => {
                self.state.language = lang;
                self.state.language_chosen = true;
                self.reply(msg::language_set(lang));
                if let Phase::Collecting { .. } = phase {
                    self.ask_current_detail(false);
                }
            }
            (_, Some(Command::Transcript)) => {
                self.actions.push(Action::SendTranscript {
                    header: msg::transcript_header(self.lang()),
                });
            }
            (_, Some(Command::Unknown)) => self.reply(msg::unknown_command(self.lang())),
            (phase, Some(Command::Human)) => self.human_requested(phase),
            (phase, Some(Command::Cancel)) => self.cancel(phase),
            (Phase::Collecting { .. }, command) => self.detail_answer(m, text, command),
            (Phase::AwaitingFeedback { .. }, Some(Command::Yes)) => {
                self.state.last_intent = None;
                self.state.phase = Phase::Idle;
                self.state.closed = true;
                self.reply(msg::glad_it_helped(self.lang()));
            }
            (Phase::AwaitingFeedback { intent }, Some(Command::No)) => self.offer_human(
                OfferCause::AnswerDidNotHelp,
                EscalationReason::AnswerDidNotHelp,
                Some(intent),
            ),
            (Phase::Clarifying { first, second }, Some(Command::Number(n))) if n <= 2 => {
                self.pick_option(if n == 1 { &first } else { &second });
            }
            (Phase::Clarifying { first, second }, Some(Command::Pick(id)))
                if id == first || id == second =>
            {
                self.pick_option(&id);
            }
            (Phase::Clarifying { .. }, Some(Command::Neither | Command::No)) => {
                self.offer_human(OfferCause::Neither, EscalationReason::NeitherOption, None)
            }
            (Phase::Clarifying { first, second }, None)
                if self.is_title_of(text, &first) || self.is_title_of(text, &second) =>
            {
                let id = if self.is_title_of(text, &first) {
                    first
                } else {
                    second
                };
                self.answer_intent(&id, false);
            }
            (Phase::Clarifying { first, second }, None) if matches!(self.clear(m), Some(Clear::Faq(id)) if id == first || id == second) =>
            {
                // A clear question about one of the two options is that option.
                if let Some(Clear::Faq(id)) = self.clear(m) {
                    self.answer_intent(&id, false);
                }
            }
            (
                phase @ (Phase::OfferingHuman { .. }
                | Phase::Clarifying { .. }
                | Phase::Rating { .. }
                | Phase::RatingComment { .. }),
                None,
            ) if self.clear(m).is_some() => self.interrupted(&phase, m, first_contact),
            (Phase::OfferingHuman { reason, intent }, Some(Command::Yes)) => {
                self.escalate(intent, reason)
            }
            (Phase::OfferingHuman { .. }, Some(Command::No)) => {
                self.state.misses = 0;
                self.state.phase = Phase::Idle;
                self.reply(msg::declined_human(self.lang()));
            }
            (Phase::Rating { ticket }, Some(Command::Rate(score) | Command::Number(score))) => {
                self.actions.push(Action::RecordRating {
                    ticket: ticket.clone(),
                    score,
                    comment: None,
                });
                self.state.phase = Phase::RatingComment { ticket, score };
                let skip = button(msg::skip_button(self.lang()), "/skip");
                self.reply_with(msg::ask_comment(self.lang()), vec![skip]);
            }
            (
                Phase::Rating { .. } | Phase::RatingComment { .. },
                Some(Command::Skip | Command::No | Command::Neither),
            ) => {
                self.state.phase = Phase::Idle;
                self.state.closed = true;
                self.reply(msg::thanks_for_feedback(self.lang()));
            }
            (Phase::RatingComment { ticket, score }, _) => {
                self.actions.push(Action::RecordRating {
                    ticket,
                    score,
                    comment: Some(details::free_text(text)),
                });
                self.state.phase = Phase::Idle;
                self.state.closed = true;
                self.reply(msg::thanks_for_feedback(self.lang()));
            }
            // A "did you mean" button pressed late still names a topic: answer it.
            (_, Some(Command::Pick(id))) => self.answer_intent(&id, first_contact),
            (_, Some(_)) if text.starts_with('/') => {
                self.reply(msg::stale_button(self.lang()));
            }
            _ => self.question(m, first_contact),
        }
    }

    /// Follows the language the user writes in, unless they chose one.
    fn follow_language(&mut self, text: &str, first_contact: bool) {
        if self.state.language_chosen {
            return;
        }
        let text = without_redactions(text);
        let detected = kefu_nlu::lang::detect(&text);
        let english_phrase = || {
            let words = text
                .split_whitespace()
                .filter(|w| w.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 2)
                .count();
            let letters = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
            words >= 2 && letters >= 8
        };
        self.state.language = match detected {
            Some("zh") => Lang::Zh,
            Some("en") if first_contact || english_phrase() => Lang::En,
            None | Some("und") if first_contact => {
                Lang::from_code(self.ctx.kb.default_language()).unwrap_or_default()
            }
            _ => self.state.language,
        };
    }

    fn is_title_of(&self, text: &str, intent: &str) -> bool {
        let default = self.ctx.kb.meta.default_language.as_deref();
        self.ctx.kb.intent(intent).is_some_and(|i| {
            let said = commands::normalise(text);
            i.title.iter().any(|(_, t)| commands::normalise(t) == said)
                || commands::normalise(i.title_in(self.lang().code(), default)) == said
        })
    }

    /// A message that is not a command or an answer to the pending question: ask the NLU.
    fn question(&mut self, m: &UserMessage, first_contact: bool) {
        if let Some((first, second)) = self.two_questions(m) {
            self.answer_intent(&first, first_contact);
            self.offer_second(&second);
            return;
        }
        let Some(d) = &m.decision else {
            self.miss(m, None);
            return;
        };
        match d.decision {
            DecisionKind::Answer => match d.intent.as_deref() {
                Some(HUMAN_INTENT) => self.human_requested(self.state.phase.clone()),
                Some(id) if self.ctx.kb.intent(id).is_some() => {
                    self.answer_intent(id, first_contact)
                }
                _ => self.miss(m, Some(d)),
            },
            DecisionKind::Clarify => {
                let kb = self.ctx.kb;
                let options: Vec<&str> = d
                    .candidates
                    .iter()
                    .map(|c| c.intent.as_str())
                    .filter(|id| kb.intent(id).is_some())
                    .take(2)
                    .collect();
                match options.as_slice() {
                    [a, b] if a != b => self.clarify(a, b),
                    [only] => self.answer_intent(only, first_contact),
                    _ => self.miss(m, Some(d)),
                }
            }
            DecisionKind::Escalate => match self.sibling_options(m) {
                Some((a, b)) => self.clarify(&a, &b),
                None => self.miss(m, Some(d)),
            },
        }
    }

    /// What a clear question is about; `None` when the engine would not answer the message.
    fn clear(&self, m: &UserMessage) -> Option<Clear> {
        let d = m.decision.as_ref()?;
        self.clear_decision(d)
    }

    fn clear_decision(&self, d: &Decision) -> Option<Clear> {
        if d.decision != DecisionKind::Answer {
            return None;
        }
        let id = d.intent.as_deref()?;
        let intent = self.ctx.kb.intent(id)?;
        Some(if id == HUMAN_INTENT {
            Clear::Human
        } else if CLOSING_INTENTS.contains(&id) {
            Clear::Closing
        } else if id.starts_with(SMALLTALK_PREFIX) {
            Clear::SmallTalk(id.to_owned())
        } else if intent.handoff {
            Clear::Handoff(id.to_owned())
        } else {
            Clear::Faq(id.to_owned())
        })
    }

    /// Two different clear questions in separate clauses, in the order asked.
    fn two_questions(&self, m: &UserMessage) -> Option<(String, String)> {
        let mut ids: Vec<String> = Vec::new();
        for d in &m.clauses {
            if let Some(Clear::Faq(id) | Clear::Handoff(id)) = self.clear_decision(d)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        let mut ids = ids.into_iter();
        Some((ids.next()?, ids.next()?))
    }

    /// Adds the second question of a two-question message to the answer of the first, as a
    /// button; only under a plain FAQ answer (a hand-over's ticket has the whole message anyway).
    fn offer_second(&mut self, second: &str) {
        if !matches!(self.state.phase, Phase::AwaitingFeedback { .. }) {
            return;
        }
        let lang = self.lang();
        let title = self.title(second);
        if let Some(Action::Reply(reply)) = self.actions.last_mut() {
            reply.text.push('\n');
            reply.text.push_str(&msg::also_asked(lang, &title));
            reply.buttons.push(button(
                msg::also_asked_button(&title),
                &format!("/pick {second}"),
            ));
        }
    }

    /// "A or B?" for a message the engine hands over although its best intent alone reaches the
    /// engine's own clarify threshold and beats the out-of-scope class: the engine declined to
    /// ask only because out-of-scope outscored the second intent, and a question whose right
    /// option is one click away serves the user better than a queue.
    fn sibling_options(&self, m: &UserMessage) -> Option<(String, String)> {
        let d = m.decision.as_ref()?;
        let thresholds = m.thresholds?;
        let kb = self.ctx.kb;
        let [a, b, ..] = d.candidates.as_slice() else {
            return None;
        };
        let in_kb = |id: &str| kb.intent(id).is_some() && id != HUMAN_INTENT;
        (a.score >= thresholds.clarify_threshold
            && a.score > d.out_of_scope
            && a.intent != b.intent
            && in_kb(&a.intent)
            && in_kb(&b.intent))
        .then(|| (a.intent.clone(), b.intent.clone()))
    }

    /// The title of an intent in the conversation's language (its id if the KB lacks it).
    fn title(&self, id: &str) -> String {
        let kb = self.ctx.kb;
        kb.intent(id).map_or_else(
            || id.to_owned(),
            |i| {
                i.title_in(self.lang().code(), kb.meta.default_language.as_deref())
                    .to_owned()
            },
        )
    }

    /// An intent's answer in the conversation's language.
    fn answer_text(&self, id: &str) -> Option<String> {
        let kb = self.ctx.kb;
        kb.intent(id).map(|i| {
            i.answer_in(self.lang().code(), kb.meta.default_language.as_deref())
                .to_owned()
        })
    }

    /// A clear question asked while the bot waited for something else (a human offer, "A or B?",
    /// a rating or its comment): a goodbye ends the wait, a human request or a hand-over topic
    /// goes its usual way, anything else is answered and the pending question asked again.
    fn interrupted(&mut self, phase: &Phase, m: &UserMessage, first_contact: bool) {
        match self.clear(m) {
            None => self.question(m, first_contact),
            Some(Clear::Human) => self.human_requested(phase.clone()),
            Some(Clear::Handoff(id)) => self.answer_intent(&id, first_contact),
            Some(Clear::Closing) => {
                let id = m.decision.as_ref().and_then(|d| d.intent.clone());
                self.close(id.as_deref());
            }
            // "A or B?" whose options the KB no longer has (it was reloaded since): not asked
            // again, the question is answered as a fresh one.
            Some(Clear::Faq(id) | Clear::SmallTalk(id)) if self.stale_clarification(phase) => {
                self.state.phase = Phase::Idle;
                self.answer_intent(&id, first_contact);
            }
            Some(Clear::Faq(id) | Clear::SmallTalk(id)) => {
                let answer = self.answer_text(&id);
                self.resume(answer);
            }
        }
    }

    /// True for a pending "A or B?" with an option the KB no longer has: the KB was reloaded
    /// since it was asked.
    fn stale_clarification(&self, phase: &Phase) -> bool {
        match phase {
            Phase::Clarifying { first, second } => {
                self.ctx.kb.intent(first).is_none() || self.ctx.kb.intent(second).is_none()
            }
            _ => false,
        }
    }

    /// One option of "A or B?" chosen (its button, its number). An option the KB no longer has
    /// (the KB was reloaded since the question was asked) is not an error: the user is told the
    /// answers changed and asked for the question again, and the conversation is idle.
    fn pick_option(&mut self, id: &str) {
        if self.ctx.kb.intent(id).is_some() {
            self.answer_intent(id, false);
        } else {
            self.state.phase = Phase::Idle;
            self.reply(msg::option_gone(self.lang()));
        }
    }

    /// Says goodbye (once: not again right after another goodbye) and ends what was pending.
    fn close(&mut self, intent: Option<&str>) {
        self.state.phase = Phase::Idle;
        self.state.misses = 0;
        if !self.already_closed {
            let text = intent
                .and_then(|id| self.answer_text(id))
                .unwrap_or_else(|| msg::goodbye(self.lang()));
            self.reply(text);
        }
        self.state.closed = true;
    }

    /// Answers an interruption (`answer`, if any) and asks the phase's pending question again,
    /// with its buttons: the conversation stays where it was.
    fn resume(&mut self, answer: Option<String>) {
        let lang = self.lang();
        let (to, question, buttons) = match &self.state.phase {
            Phase::Collecting {
                remaining,
                collected,
                ..
            } => {
                let Some(name) = remaining.first() else {
                    return;
                };
                let total = collected.len() + remaining.len();
                let q = msg::ask_detail(lang, name, collected.len() + 1, total);
                (msg::Resume::Details, q, self.detail_buttons())
            }
            Phase::OfferingHuman { .. } => {
                let (yes, no) = msg::offer_buttons(lang);
                (
                    msg::Resume::Question,
                    msg::offer_again(lang),
                    vec![button(yes, "/yes"), button(no, "/no")],
                )
            }
            Phase::Clarifying { first, second } => {
                let (q, buttons) = self.clarify_question(first, second);
                (msg::Resume::Question, q, buttons)
            }
            Phase::Rating { .. } => (msg::Resume::Rating, msg::rate_again(lang), rating_buttons()),
            Phase::RatingComment { .. } => (
                msg::Resume::Comment,
                msg::ask_comment(lang),
                vec![button(msg::skip_button(lang), "/skip")],
            ),
            _ => return,
        };
        let back = msg::resume(lang, to, &question);
        let text = match answer {
            Some(answer) => format!("{answer}\n\n{back}"),
            None => back,
        };
        self.reply_with(text, buttons);
    }

    /// Answers with an intent: plain FAQ (with "did this help?"), small talk, or handoff.
    fn answer_intent(&mut self, id: &str, first_contact: bool) {
        let kb = self.ctx.kb;
        let Some(intent) = kb.intent(id) else {
            self.reply(msg::stale_button(self.lang()));
            self.state.phase = Phase::Idle;
            return;
        };
        if id == HUMAN_INTENT {
            self.human_requested(self.state.phase.clone());
            return;
        }
        self.state.misses = 0;
        let answer = intent
            .answer_in(self.lang().code(), kb.meta.default_language.as_deref())
            .to_owned();
        if intent.handoff {
            self.reply(answer);
            self.state.last_intent = Some(id.to_owned());
            self.escalate(Some(id.to_owned()), EscalationReason::Handoff);
        } else if CLOSING_INTENTS.contains(&id) {
            self.close(Some(id));
        } else if id.starts_with(SMALLTALK_PREFIX) {
            if !(first_contact && id == GREETING_INTENT) {
                self.reply(answer);
            }
            self.state.phase = Phase::Idle;
        } else {
            let (yes, no) = msg::feedback_buttons(self.lang());
            let text = format!("{answer}\n\n{}", msg::did_it_help(self.lang()));
            self.reply_with(text, vec![button(yes, "/yes"), button(no, "/no")]);
            self.state.last_intent = Some(id.to_owned());
            self.state.phase = Phase::AwaitingFeedback {
                intent: id.to_owned(),
            };
        }
    }

    /// "Did you mean A or B?" with its three buttons.
    fn clarify_question(&self, first: &str, second: &str) -> (String, Vec<Button>) {
        let (a, b) = (self.title(first), self.title(second));
        let text = msg::clarify(self.lang(), &a, &b);
        let buttons = vec![
            button(a, &format!("/pick {first}")),
            button(b, &format!("/pick {second}")),
            button(msg::neither_button(self.lang()), "/neither"),
        ];
        (text, buttons)
    }

    fn clarify(&mut self, first: &str, second: &str) {
        let (text, buttons) = self.clarify_question(first, second);
        self.reply_with(text, buttons);
        self.state.misses = 0;
        self.state.phase = Phase::Clarifying {
            first: first.to_owned(),
            second: second.to_owned(),
        };
    }

    /// The bot could not answer: record it; ask to rephrase, or offer a human at the second miss.
    fn miss(&mut self, m: &UserMessage, d: Option<&Decision>) {
        self.state.misses = self.state.misses.saturating_add(1);
        self.state.last_intent = None;
        self.actions.push(Action::RecordMiss {
            text: m.text_redacted.clone(),
            language: d.map_or_else(|| self.lang().code().to_owned(), |d| d.language.clone()),
            best_guess: d.and_then(|d| d.intent.clone()),
        });
        if self.state.misses >= 2 {
            self.offer_human(
                OfferCause::NotUnderstood,
                EscalationReason::NotUnderstood,
                None,
            );
            return;
        }
        let out_of_scope =
            d.is_some_and(|d| d.out_of_scope > 0.0 && d.out_of_scope >= d.confidence);
        self.reply(if out_of_scope {
            msg::out_of_scope(self.lang())
        } else {
            msg::rephrase(self.lang())
        });
        self.state.phase = Phase::Idle;
    }

    fn offer_human(&mut self, cause: OfferCause, reason: EscalationReason, intent: Option<String>) {
        let (yes, no) = msg::offer_buttons(self.lang());
        self.reply_with(
            msg::offer_human(self.lang(), cause),
            vec![button(yes, "/yes"), button(no, "/no")],
        );
        self.state.phase = Phase::OfferingHuman { reason, intent };
    }

    fn human_requested(&mut self, phase: Phase) {
        let intent = match phase {
            Phase::Collecting {
                intent,
                collected,
                reason,
                priority,
                ..
            } => {
                // Asked for a human mid-questions: open now with what we have.
                self.open_ticket(intent, priority, reason, collected);
                return;
            }
            Phase::AwaitingFeedback { intent } => Some(intent),
            Phase::OfferingHuman { intent, .. } => intent,
            Phase::Clarifying { .. } => None,
            _ => self.state.last_intent.clone(),
        };
        self.escalate(intent, EscalationReason::UserAsked);
    }

    fn cancel(&mut self, phase: Phase) {
        let text = match phase {
            Phase::Collecting { .. } => msg::collect_cancelled(self.lang()),
            Phase::AwaitingFeedback { .. }
            | Phase::Clarifying { .. }
            | Phase::OfferingHuman { .. } => msg::cancelled(self.lang()),
            Phase::Rating { .. } | Phase::RatingComment { .. } => {
                msg::thanks_for_feedback(self.lang())
            }
            Phase::Idle | Phase::Queued { .. } | Phase::WithStaff { .. } => {
                msg::nothing_to_cancel(self.lang())
            }
        };
        self.state.phase = Phase::Idle;
        self.reply(text);
    }

    // ---------------------------------------------------------------------------------------
    // Escalation and details
    // ---------------------------------------------------------------------------------------

    /// Opens a ticket about `intent`, after asking for its `collect` details if it has any.
    fn escalate(&mut self, intent: Option<String>, reason: EscalationReason) {
        let kb_intent = intent.as_deref().and_then(|id| self.ctx.kb.intent(id));
        let priority = kb_intent.map(|i| i.priority).unwrap_or_default();
        let collect = kb_intent.map(|i| i.collect.clone()).unwrap_or_default();
        if collect.is_empty() {
            self.open_ticket(intent, priority, reason, Vec::new());
            return;
        }
        self.state.phase = Phase::Collecting {
            intent,
            remaining: collect,
            collected: Vec::new(),
            reason,
            priority,
            attempts: 0,
        };
        self.ask_current_detail(true);
    }

    /// Asks the current detail question (with the introduction before the first one).
    fn ask_current_detail(&mut self, with_intro: bool) {
        let Phase::Collecting {
            remaining,
            collected,
            ..
        } = &self.state.phase
        else {
            return;
        };
        let Some(name) = remaining.first() else {
            return;
        };
        let total = collected.len() + remaining.len();
        let question = msg::ask_detail(self.lang(), name, collected.len() + 1, total);
        let text = if with_intro {
            format!("{}\n{question}", msg::collect_intro(self.lang(), total))
        } else {
            question
        };
        self.reply_with(text, self.detail_buttons());
    }

    fn detail_buttons(&self) -> Vec<Button> {
        let (skip, cancel) = msg::detail_buttons(self.lang());
        vec![button(skip, "/skip"), button(cancel, "/cancel")]
    }

    /// The answer to the current detail question: skip, a valid value, a new question asked in
    /// between (answered, then the detail asked again), or another try.
    fn detail_answer(&mut self, m: &UserMessage, text: &str, command: Option<Command>) {
        let lang = self.lang();
        let Phase::Collecting { remaining, .. } = &self.state.phase else {
            return;
        };
        let Some(name) = remaining.first().cloned() else {
            // Nothing left to ask (a state stored by hand or by an older version): open now.
            self.finish_collecting();
            return;
        };
        let skip = matches!(
            command,
            Some(Command::Skip | Command::No | Command::Neither)
        );
        let valid = if skip {
            None
        } else {
            details::validate(&name, text)
        };
        if !skip && valid.is_none() {
            match self.clear(m) {
                None => {}
                Some(Clear::Human) => {
                    self.human_requested(self.state.phase.clone());
                    return;
                }
                Some(Clear::Closing) => {
                    let thanks = m.decision.as_ref().and_then(|d| d.intent.as_deref());
                    let answer = (!self.already_closed)
                        .then(|| thanks.and_then(|id| self.answer_text(id)))
                        .flatten();
                    self.state.closed = true;
                    self.resume(answer);
                    return;
                }
                Some(Clear::Faq(id) | Clear::Handoff(id) | Clear::SmallTalk(id)) => {
                    // Not an attempt at the detail: the attempt counter stays as it was.
                    let answer = self.answer_text(&id);
                    self.resume(answer);
                    return;
                }
            }
        }
        let Phase::Collecting {
            remaining,
            collected,
            attempts,
            ..
        } = &mut self.state.phase
        else {
            return;
        };
        let value = if skip {
            None
        } else if let Some(valid) = valid {
            Some(valid)
        } else if *attempts >= 1 {
            // Second try still doesn't fit: keep what they wrote for staff rather than loop.
            Some(details::free_text(text))
        } else {
            *attempts += 1;
            let hint = msg::detail_hint(lang, &name);
            let buttons = self.detail_buttons();
            self.reply_with(hint, buttons);
            return;
        };
        collected.push(Detail { name, value });
        remaining.remove(0);
        *attempts = 0;
        if !remaining.is_empty() {
            self.ask_current_detail(false);
            return;
        }
        self.finish_collecting();
    }

    /// Opens the ticket the details were collected for.
    fn finish_collecting(&mut self) {
        if let Phase::Collecting {
            intent,
            collected,
            reason,
            priority,
            ..
        } = std::mem::take(&mut self.state.phase)
        {
            self.open_ticket(intent, priority, reason, collected);
        }
    }

    fn open_ticket(
        &mut self,
        intent: Option<String>,
        priority: Priority,
        reason: EscalationReason,
        details: Vec<Detail>,
    ) {
        let code = self.ctx.ticket_code.to_owned();
        self.actions.push(Action::OpenTicket(NewTicket {
            code: code.clone(),
            intent,
            priority,
            reason,
            details,
        }));
        let view = TicketOpened {
            priority,
            ..self.queue_view(&code)
        };
        self.reply(msg::ticket_opened(self.lang(), &view));
        self.state.last_intent = None;
        self.state.misses = 0;
        self.state.phase = Phase::Queued {
            ticket: code,
            last_notice: self.ctx.now,
        };
    }

    // ---------------------------------------------------------------------------------------
    // Queued and staff
    // ---------------------------------------------------------------------------------------

    fn relay_to_staff(&mut self, ticket: &str, text: &str, attachments: &[Attachment]) {
        self.actions.push(Action::RelayToStaff {
            ticket: ticket.to_owned(),
            text: text.to_owned(),
            attachments: attachments.to_vec(),
        });
    }

    fn queued(
        &mut self,
        ticket: &str,
        last_notice: chrono::DateTime<chrono::Utc>,
        m: &UserMessage,
        command: Option<Command>,
    ) {
        let lang = self.lang();
        let text = m.text_redacted.trim();
        let attachments = &m.attachments;
        match command {
            Some(Command::Cancel) => {
                self.actions.push(Action::CancelTicket {
                    ticket: ticket.to_owned(),
                });
                self.state.phase = Phase::Idle;
                self.reply(msg::ticket_cancelled_by_user(lang, ticket));
            }
            Some(Command::Transcript) => self.actions.push(Action::SendTranscript {
                header: msg::transcript_header(lang),
            }),
            Some(Command::Language(l)) => {
                self.state.language = l;
                self.state.language_chosen = true;
                self.reply(msg::language_set(l));
            }
            Some(Command::Help) => self.reply(msg::help(lang)),
            Some(Command::Human) => {
                let text = msg::already_queued(lang, &self.queue_view(ticket));
                self.reply(text);
                self.set_last_notice();
            }
            _ if text.is_empty() && attachments.is_empty() => {}
            _ => {
                self.relay_to_staff(ticket, text, attachments);
                // No one holds the ticket yet: a question the bot can answer is answered now
                // rather than after the wait; it stays in the ticket's transcript for staff.
                let clear = self
                    .clear(m)
                    .filter(|_| !without_redactions(text).is_empty());
                match clear {
                    Some(Clear::Faq(id)) => {
                        if let Some(answer) = self.answer_text(&id) {
                            let open = msg::ticket_stays_open(lang, ticket);
                            self.reply(format!("{answer}\n\n{open}"));
                            self.set_last_notice();
                            return;
                        }
                    }
                    Some(Clear::Closing) => {
                        if !self.already_closed {
                            let thanks = m.decision.as_ref().and_then(|d| d.intent.as_deref());
                            let answer = thanks
                                .and_then(|id| self.answer_text(id))
                                .unwrap_or_else(|| msg::goodbye(lang));
                            let open = msg::ticket_stays_open(lang, ticket);
                            self.reply(format!("{answer}\n\n{open}"));
                            self.set_last_notice();
                        }
                        self.state.closed = true;
                        return;
                    }
                    _ => {}
                }
                if self.ctx.now - last_notice >= QUEUE_NOTICE_INTERVAL {
                    let text = msg::still_queued(lang, &self.queue_view(ticket));
                    self.reply(text);
                    self.set_last_notice();
                }
            }
        }
    }

    fn set_last_notice(&mut self) {
        if let Phase::Queued { last_notice, .. } = &mut self.state.phase {
            *last_notice = self.ctx.now;
        }
    }

    /// True when the event's ticket is this conversation's open ticket.
    fn is_open_ticket(&self, ticket: &str) -> bool {
        self.state.open_ticket() == Some(ticket)
    }

    fn staff_claimed(&mut self, ticket: &str, staff: &str) {
        // Only a queued ticket can be claimed: a held one keeps its holder (one staff member at
        // a time; the store refuses a second claim, and the policy does not depend on that).
        if !matches!(&self.state.phase, Phase::Queued { ticket: t, .. } if t == ticket) {
            return;
        }
        self.state.phase = Phase::WithStaff {
            ticket: ticket.to_owned(),
            staff: staff.to_owned(),
        };
        self.reply(msg::staff_joined(self.lang(), staff, ticket));
    }

    fn staff_reply(&mut self, ticket: &str, staff: &str, text: &str) {
        if !self.is_open_ticket(ticket) {
            return;
        }
        // A reply to a ticket nobody claimed yet claims it; one held by someone else is not theirs
        // to answer.
        match &self.state.phase {
            Phase::Queued { .. } => self.staff_claimed(ticket, staff),
            Phase::WithStaff { staff: holder, .. } if holder != staff => return,
            _ => {}
        }
        self.actions.push(Action::RelayToUser {
            staff: staff.to_owned(),
            text: text.to_owned(),
        });
    }

    fn staff_resolved(&mut self, ticket: &str) {
        if !self.is_open_ticket(ticket) {
            return;
        }
        self.state.phase = Phase::Rating {
            ticket: ticket.to_owned(),
        };
        self.reply_with(msg::ask_rating(self.lang()), rating_buttons());
    }

    fn staff_released(&mut self, ticket: &str) {
        if self.state.held_by_staff().map(|(t, _)| t) != Some(ticket) {
            return;
        }
        self.state.phase = Phase::Queued {
            ticket: ticket.to_owned(),
            last_notice: self.ctx.now,
        };
        let text = msg::back_in_queue(self.lang(), &self.queue_view(ticket));
        self.reply(text);
    }

    fn ticket_cancelled(&mut self, ticket: &str) {
        if !self.is_open_ticket(ticket) {
            return;
        }
        self.state.phase = Phase::Idle;
        self.reply(msg::ticket_closed(self.lang(), ticket));
    }
}

#[cfg(test)]
mod tests;
