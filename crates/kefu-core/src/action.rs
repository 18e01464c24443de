//! What the service must do after an event: the outputs of [`crate::handle`], in order.
//!
//! Actions are instructions, not effects: core performs none of them. The service carries them
//! out in one store transaction (replies go to the outbox) and in the order given, which matters
//! for replies (the secret warning comes before anything else).

use crate::model::{Attachment, Button, Detail, Priority};
use crate::state::EscalationReason;

/// One thing for the service to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the user a bot message.
    Reply(Reply),
    /// Delete the user's message on the platform where allowed (it carried a secret). Platforms
    /// that can't simply skip it; the warning was sent either way.
    DeleteUserMessage {
        /// The platform's message id.
        platform_message_id: String,
    },
    /// Open a ticket in the human queue. The code was supplied by the service in the
    /// [`crate::Context`] and already quoted to the user in the reply that follows.
    OpenTicket(NewTicket),
    /// Append the user's (redacted) message to the ticket's staff thread.
    RelayToStaff {
        /// The ticket's verification code.
        ticket: String,
        /// The redacted text (may be empty when only attachments came).
        text: String,
        /// Attachments to forward to the staff thread.
        attachments: Vec<Attachment>,
    },
    /// Deliver a staff member's message to the user (transcript sender: that staff member).
    RelayToUser {
        /// The staff member's display name.
        staff: String,
        /// What they wrote.
        text: String,
    },
    /// The user cancelled their queued ticket: mark it cancelled and tell the staff thread.
    CancelTicket {
        /// The ticket's verification code.
        ticket: String,
    },
    /// Keep a question the bot could not answer, for KB authors (`kefu kb misses`).
    RecordMiss {
        /// The redacted question.
        text: String,
        /// Its language as the NLU saw it ("zh", "en", …).
        language: String,
        /// The NLU's best (rejected) guess, if any.
        best_guess: Option<String>,
    },
    /// Store the user's rating of a ticket. Sent once with the score and again if a comment
    /// follows: the store keeps one rating per ticket and the later one replaces the earlier.
    RecordRating {
        /// The ticket rated.
        ticket: String,
        /// 1–5.
        score: u8,
        /// The user's comment (redacted).
        comment: Option<String>,
    },
    /// Send the user their own redacted transcript, as one message starting with `header`.
    SendTranscript {
        /// The heading, in the user's language.
        header: String,
    },
}

/// A bot message: text and buttons. The service wraps it into an `Outgoing` for the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The text.
    pub text: String,
    /// Buttons under it; each payload is a command the policy understands.
    pub buttons: Vec<Button>,
}

/// A ticket to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    /// The verification code (from the context).
    pub code: String,
    /// The intent that led here, if any.
    pub intent: Option<String>,
    /// Queue priority (the intent's, else normal).
    pub priority: Priority,
    /// Why it is opened.
    pub reason: EscalationReason,
    /// The details collected, in the order asked (skipped ones with `value: None`).
    pub details: Vec<Detail>,
}
