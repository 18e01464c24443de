//! What happens to a conversation: the inputs of [`crate::handle`].
//!
//! Tickets are named in core by their **verification code** (`ticket: String`): core is what picks
//! the code up from the [`crate::Context`] when a ticket opens, before the store has assigned a
//! database id, so the code is the one key both sides know from the first moment. The service maps
//! codes to `Ticket::id` (a ticket has both).

use chrono::{DateTime, Utc};
use kefu_nlu::engine::{Decision, Policy};
use kefu_nlu::secrets::{SecretKind, SecretSpan};

use crate::model::Attachment;

/// An event in a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The user wrote (or pressed a button, whose payload arrives as text).
    UserMessage(UserMessage),
    /// A staff member took the conversation's ticket.
    StaffClaimed {
        /// The ticket's verification code.
        ticket: String,
        /// The staff member's display name.
        staff: String,
    },
    /// A staff member wrote to the user.
    StaffReply {
        /// The ticket's verification code.
        ticket: String,
        /// The staff member's display name.
        staff: String,
        /// What they wrote.
        text: String,
    },
    /// A staff member gave the ticket back to the queue without resolving it: the user waits for
    /// the next staff member.
    StaffReleased {
        /// The ticket's verification code.
        ticket: String,
        /// Who released it.
        staff: String,
    },
    /// A staff member resolved the ticket: the chat goes back to the bot.
    StaffResolved {
        /// The ticket's verification code.
        ticket: String,
        /// Who resolved it.
        staff: String,
    },
    /// The ticket was closed without being resolved (by staff as spam/duplicate, or expired).
    TicketCancelled {
        /// The ticket's verification code.
        ticket: String,
    },
}

/// A user's message as core sees it: already redacted, already classified.
#[derive(Debug, Clone, PartialEq)]
pub struct UserMessage {
    /// The text with secrets replaced by labels (`[redacted: seed phrase, 12 words]`). Core never
    /// sees the original.
    pub text_redacted: String,
    /// The secrets that were found in the original (what, not where).
    pub secrets: Vec<SecretFound>,
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// The platform's id for the message (to delete it when it carried a secret).
    pub platform_message_id: String,
    /// The NLU's verdict on `text_redacted`. The service may leave it `None` for messages it
    /// knows are commands or button payloads; a question without one counts as not understood.
    pub decision: Option<Decision>,
    /// Photos, files… that came with the message (the text may then be empty).
    pub attachments: Vec<Attachment>,
    /// The NLU's verdict on each clause, in the order written, when the message asks more than
    /// one thing ("提币没到账，另外怎么改密码"); empty for a one-clause message. The service fills
    /// it with [`crate::clauses::decide`].
    pub clauses: Vec<Decision>,
    /// The thresholds the engine derived from the KB (`Engine::policy`). The policy's own rule on
    /// top of a decision (asking "A or B?" rather than handing over when the best intent alone
    /// reaches the clarify threshold) uses the same ones; `None` turns that rule off.
    pub thresholds: Option<Policy>,
}

/// A secret found in a user's message: its kind and size only, never its text or position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretFound {
    /// Seed phrase, private key…
    pub kind: SecretKind,
    /// Number of mnemonic words for a seed phrase, 1 otherwise.
    pub words: usize,
}

impl From<&SecretSpan> for SecretFound {
    fn from(span: &SecretSpan) -> Self {
        SecretFound {
            kind: span.kind,
            words: span.words,
        }
    }
}
