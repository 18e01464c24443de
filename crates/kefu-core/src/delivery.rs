//! What the bot sends, as the outbox keeps it until a platform confirms it.
//!
//! Everything leaves through the outbox: replies to users, the deletion of a message that carried
//! a secret, and everything staff see in their spaces (a ticket's topic or thread, its opening
//! summary, the user's lines relayed, claim and resolve notices, closing). A [`Delivery`] is
//! written in the same transaction as the change that caused it, so a crash can neither lose one
//! nor send one for a change that did not happen.
//!
//! Each delivery has a *destination* ([`Delivery::destination`]): one user chat, or one ticket's
//! staff space on one platform. Deliveries to one destination are sent one at a time, in the order
//! they were written; different destinations go out concurrently.

use serde::{Deserialize, Serialize};

use crate::model::{Button, ConversationRef, Outgoing};

/// One thing to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// A message to a user's chat.
    UserMessage(Outgoing),
    /// Delete a user's message (it carried a secret), where the platform lets the bot.
    DeleteUserMessage {
        /// The user's conversation.
        conversation: ConversationRef,
        /// The platform's id of the message.
        platform_message_id: String,
    },
    /// Make sure the ticket has its staff space on this platform (a Telegram forum topic, a
    /// Discord private thread), named `title`. Comes before the ticket's first post.
    OpenStaffSpace {
        /// The ticket.
        ticket_id: i64,
        /// The space's name ([`crate::render::ticket_title`]).
        title: String,
    },
    /// A post in the ticket's staff space.
    StaffPost {
        /// The ticket.
        ticket_id: i64,
        /// What to post.
        post: StaffPost,
    },
    /// Close (archive) the ticket's staff space: it was resolved or cancelled.
    CloseStaffSpace {
        /// The ticket.
        ticket_id: i64,
    },
}

/// A post in a staff space.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffPost {
    /// The text (split by the adapter at its platform's limit).
    pub text: String,
    /// Buttons under it (`staff:claim:ID`, `staff:resolve:ID`…).
    #[serde(default)]
    pub buttons: Vec<Button>,
    /// A file to attach (a long transcript); the text is then its caption.
    #[serde(default)]
    pub file: Option<StaffFile>,
    /// A message of the user's to forward as it is (a photo), when the staff space is on the
    /// user's own platform.
    #[serde(default)]
    pub forward: Option<Forward>,
    /// Mention the staff role (Discord: adds its members to a private thread). Nothing else in a
    /// post ever pings anyone.
    #[serde(default)]
    pub mention_staff: bool,
    /// The staff-space message this one answers (a refusal quoting the staff member's message).
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// A text file that goes with a staff post (a ticket's transcript). When the post's text and the
/// file fit in one message on the platform, the adapter shows it inline (`heading`, then the
/// content, under the text); otherwise it attaches the file and adds `attached_note` to the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffFile {
    /// Its name.
    pub name: String,
    /// The heading above the content when shown inline ("Transcript:").
    pub heading: String,
    /// The content (UTF-8 text).
    pub content: String,
    /// Said under the text when the file is attached instead ("Transcript attached.").
    pub attached_note: String,
}

impl StaffPost {
    /// The text with the file shown inline, if that fits in `limit` characters (UTF-16 code units
    /// for Telegram's sake, which counts that way); `None` when the file must be attached.
    pub fn inline_text(&self, limit: usize) -> Option<String> {
        let Some(file) = &self.file else {
            return Some(self.text.clone());
        };
        let text = format!("{}\n\n{}\n{}", self.text, file.heading, file.content);
        (crate::render::utf16_len(&text) <= limit).then_some(text)
    }

    /// The text to send with the file attached.
    pub fn caption(&self) -> String {
        match &self.file {
            Some(file) => format!("{}\n\n{}", self.text, file.attached_note),
            None => self.text.clone(),
        }
    }
}

/// A user's message to forward into a staff space on the same platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// The user's chat.
    pub chat_id: String,
    /// The message.
    pub message_id: String,
}

impl Delivery {
    /// The unit of order: `chat:{chat_id}` for a user's chat, `staff:{ticket_id}` for a ticket's
    /// staff space (per platform: the outbox keeps the platform beside it).
    pub fn destination(&self) -> String {
        match self {
            Self::UserMessage(m) => format!("chat:{}", m.conversation.chat_id),
            Self::DeleteUserMessage { conversation, .. } => {
                format!("chat:{}", conversation.chat_id)
            }
            Self::OpenStaffSpace { ticket_id, .. }
            | Self::StaffPost { ticket_id, .. }
            | Self::CloseStaffSpace { ticket_id } => format!("staff:{ticket_id}"),
        }
    }

    /// The kind's name as the outbox stores it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UserMessage(_) => "user_message",
            Self::DeleteUserMessage { .. } => "delete_message",
            Self::OpenStaffSpace { .. } => "staff_open",
            Self::StaffPost { .. } => "staff_post",
            Self::CloseStaffSpace { .. } => "staff_close",
        }
    }

    /// The ticket of a staff delivery.
    pub fn ticket_id(&self) -> Option<i64> {
        match self {
            Self::OpenStaffSpace { ticket_id, .. }
            | Self::StaffPost { ticket_id, .. }
            | Self::CloseStaffSpace { ticket_id } => Some(*ticket_id),
            Self::UserMessage(_) | Self::DeleteUserMessage { .. } => None,
        }
    }

    /// The user conversation of a user delivery.
    pub fn conversation(&self) -> Option<&ConversationRef> {
        match self {
            Self::UserMessage(m) => Some(&m.conversation),
            Self::DeleteUserMessage { conversation, .. } => Some(conversation),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cref(chat: &str) -> ConversationRef {
        ConversationRef {
            platform: "telegram".into(),
            chat_id: chat.into(),
            user_id: "u".into(),
        }
    }

    #[test]
    fn a_users_chat_and_a_tickets_staff_space_are_each_one_destination() {
        let reply = Delivery::UserMessage(Outgoing {
            conversation: cref("42"),
            text: "hi".into(),
            buttons: vec![],
            reply_to: None,
        });
        let delete = Delivery::DeleteUserMessage {
            conversation: cref("42"),
            platform_message_id: "7".into(),
        };
        assert_eq!(reply.destination(), delete.destination());
        let open = Delivery::OpenStaffSpace {
            ticket_id: 3,
            title: "T".into(),
        };
        let post = Delivery::StaffPost {
            ticket_id: 3,
            post: StaffPost::default(),
        };
        assert_eq!(open.destination(), post.destination());
        assert_ne!(open.destination(), reply.destination());
        assert_eq!(post.ticket_id(), Some(3));
        assert_eq!(delete.conversation(), Some(&cref("42")));
    }
}
