//! Where a conversation is: the data the store keeps (as JSON) between two messages.
//!
//! A [`ConversationState`] is the few facts that hold whatever the conversation is doing (the
//! user's language, whether they were greeted, the consecutive-miss counter…) plus a [`Phase`]:
//! the one thing the bot is waiting for right now. Every phase carries exactly the data its next
//! step needs, so there is no "current intent" field that is meaningless half of the time.
//!
//! The JSON form is stable: fields added later get `#[serde(default)]`, so a state stored by an
//! older version still loads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Detail, Priority};

/// The two languages the bot speaks. Every bot phrase exists in both (see [`crate::messages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Simplified Chinese (Traditional-script users read it too).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The language code used by the KB (`"zh"`, `"en"`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// Maps a language code to the bot language that serves it; `None` for languages the bot does
    /// not speak (the conversation then keeps its current language).
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Why a ticket is opened; stored on the ticket (`Ticket::reason`) for staff and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// The user asked for a human (command, button or the KB's `human` intent).
    UserAsked,
    /// The answered intent has `handoff = true` in the KB (e.g. a hacked account).
    Handoff,
    /// The user said the answer did not help and accepted a human.
    AnswerDidNotHelp,
    /// The user said neither of the two suggested topics was right.
    NeitherOption,
    /// The bot failed to understand twice in a row.
    NotUnderstood,
}

impl EscalationReason {
    /// The snake_case name stored in `Ticket::reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserAsked => "user_asked",
            Self::Handoff => "handoff",
            Self::AnswerDidNotHelp => "answer_did_not_help",
            Self::NeitherOption => "neither_option",
            Self::NotUnderstood => "not_understood",
        }
    }
}

/// One conversation's state between two events.
///
/// A new conversation starts from [`ConversationState::default`]: not greeted, Chinese until the
/// first message says otherwise, in [`Phase::Idle`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConversationState {
    /// The language replies are written in.
    #[serde(default)]
    pub language: Lang,
    /// True once the user chose the language explicitly (`/lang en`, "说中文"): from then on the
    /// language of their messages no longer switches it.
    #[serde(default)]
    pub language_chosen: bool,
    /// True once the first-contact greeting was sent.
    #[serde(default)]
    pub greeted: bool,
    /// Messages in a row the bot could not understand (reset by any answer). At two the bot offers
    /// a human instead of asking the user to rephrase again.
    #[serde(default)]
    pub misses: u8,
    /// The last intent answered: when the user then asks for a human, the ticket is about it and
    /// its `collect` details are asked for first. Cleared when a ticket opens.
    #[serde(default)]
    pub last_intent: Option<String>,
    /// True while the user is over the flood limit and has been told so: further messages in the
    /// same burst get no reply at all.
    #[serde(default)]
    pub throttled: bool,
    /// True once the bot said goodbye to a "thanks" or "bye": another one then gets no reply, so a
    /// polite user is not thanked back in a loop. Cleared by anything else the user says.
    #[serde(default)]
    pub closed: bool,
    /// What the bot is waiting for.
    #[serde(default)]
    pub phase: Phase,
}

/// What the conversation is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// The bot holds the chat and expects a question.
    #[default]
    Idle,
    /// An FAQ answer was sent with "did this help?" (yes / no).
    AwaitingFeedback {
        /// The intent answered.
        intent: String,
    },
    /// "Did you mean A or B?" was asked (A / B / neither).
    Clarifying {
        /// The first option's intent id.
        first: String,
        /// The second option's intent id.
        second: String,
    },
    /// "Shall I pass you to a human?" was asked (yes / no).
    OfferingHuman {
        /// Why the offer was made (becomes the ticket's reason on "yes").
        reason: EscalationReason,
        /// The intent the ticket would be about, if any.
        intent: Option<String>,
    },
    /// Details for a ticket are being asked for, one at a time, before it opens.
    Collecting {
        /// The intent the ticket is about, if any.
        intent: Option<String>,
        /// Detail names still to ask for; the first is the one just asked.
        remaining: Vec<String>,
        /// Details answered (or skipped) so far, in the order asked.
        collected: Vec<Detail>,
        /// Why the ticket will open.
        reason: EscalationReason,
        /// The ticket's priority.
        priority: Priority,
        /// Invalid answers given to the current question; at the second the text is taken as it
        /// is (staff can read it) rather than asking a third time.
        #[serde(default)]
        attempts: u8,
    },
    /// A ticket is open and waiting for staff; the user's messages are relayed to it.
    Queued {
        /// The ticket's verification code (the ticket's key in core: see [`crate::Event`]).
        ticket: String,
        /// When the user was last told their place in the queue.
        last_notice: DateTime<Utc>,
    },
    /// A staff member holds the chat: the bot never answers, it only relays.
    WithStaff {
        /// The ticket's verification code.
        ticket: String,
        /// The staff member's name.
        staff: String,
    },
    /// The ticket was resolved and the user was asked to rate the help 1–5.
    Rating {
        /// The ticket rated.
        ticket: String,
    },
    /// The user rated and was asked for an optional comment.
    RatingComment {
        /// The ticket rated.
        ticket: String,
        /// The score given, 1–5.
        score: u8,
    },
}

impl ConversationState {
    /// The ticket and staff member holding the chat, if a human holds it. The service uses this to
    /// relay without classifying the message (the architecture's step 3).
    pub fn held_by_staff(&self) -> Option<(&str, &str)> {
        match &self.phase {
            Phase::WithStaff { ticket, staff } => Some((ticket, staff)),
            _ => None,
        }
    }

    /// The verification code of the conversation's open ticket (queued or held by staff).
    pub fn open_ticket(&self) -> Option<&str> {
        match &self.phase {
            Phase::Queued { ticket, .. } | Phase::WithStaff { ticket, .. } => Some(ticket),
            _ => None,
        }
    }

    /// True when the next user message will be answered by the bot (not relayed to staff).
    pub fn bot_holds_chat(&self) -> bool {
        self.open_ticket().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_survives_a_round_trip_through_json() {
        let state = ConversationState {
            language: Lang::En,
            greeted: true,
            misses: 1,
            phase: Phase::Collecting {
                intent: Some("withdrawal.pending".into()),
                remaining: vec!["amount".into()],
                collected: vec![Detail {
                    name: "tx_id".into(),
                    value: None,
                }],
                reason: EscalationReason::AnswerDidNotHelp,
                priority: Priority::High,
                attempts: 1,
            },
            ..ConversationState::default()
        };
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains(r#""phase":"collecting""#), "{json}");
        let back: ConversationState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn an_empty_json_object_is_a_fresh_conversation() {
        let state: ConversationState = serde_json::from_str("{}").unwrap();
        assert_eq!(state, ConversationState::default());
        assert!(!state.greeted);
        assert_eq!(state.phase, Phase::Idle);
    }

    #[test]
    fn only_a_staff_held_chat_reports_its_holder() {
        let mut state = ConversationState {
            phase: Phase::WithStaff {
                ticket: "K7F2Q".into(),
                staff: "alice".into(),
            },
            ..ConversationState::default()
        };
        assert_eq!(state.held_by_staff(), Some(("K7F2Q", "alice")));
        assert!(!state.bot_holds_chat());
        state.phase = Phase::Idle;
        assert_eq!(state.held_by_staff(), None);
        assert!(state.bot_holds_chat());
    }
}
