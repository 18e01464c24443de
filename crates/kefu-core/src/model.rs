//! Domain types. Platform adapters convert their own types into these at the edge; nothing past the
//! edge knows Telegram or Discord exist. Ids are strings so every platform fits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use kefu_nlu::kb::Priority;

/// Which conversation a message belongs to: one user in one chat on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConversationRef {
    /// "terminal", "telegram", "discord".
    pub platform: String,
    /// The platform's chat (DM or group/channel) id.
    pub chat_id: String,
    /// The platform's user id.
    pub user_id: String,
}

/// A user's message as it arrives, already converted by the adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// Where it came from.
    pub conversation: ConversationRef,
    /// The user's display name, for staff.
    pub user_name: String,
    /// The platform's message id: with the platform and chat it makes the message unique, so a
    /// repeated delivery is recognised.
    pub platform_message_id: String,
    /// The text as the user wrote it (never stored or logged before redaction). Empty when the
    /// message is only an attachment.
    pub text: String,
    /// When the platform says it was sent.
    pub at: DateTime<Utc>,
    /// Photos, files, stickers… that came with the message (the bot reads only text: while a
    /// ticket is open they are relayed to staff, otherwise the user is asked to write).
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// True when `text` is the payload of a button the user pressed rather than words they typed:
    /// the transcript then shows the button's label, marked as a press.
    #[serde(default)]
    pub pressed: bool,
}

/// Something a user sent besides text. The adapter describes it; the file itself stays on the
/// platform (staff get it forwarded or linked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// What it is.
    pub kind: AttachmentKind,
    /// The file name, when the platform gives one.
    #[serde(default)]
    pub name: Option<String>,
    /// Where staff can open it, when the platform gives a link (Discord's CDN URL).
    #[serde(default)]
    pub url: Option<String>,
}

/// The kinds of attachment users send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A picture (a screenshot, most often).
    Photo,
    /// A video or animation.
    Video,
    /// A voice note or an audio file.
    Audio,
    /// Any other file.
    Document,
    /// A sticker.
    Sticker,
    /// Anything else (a location, a contact, a poll…).
    Other,
}

impl AttachmentKind {
    /// The lowercase name used in transcripts and staff posts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "file",
            Self::Sticker => "sticker",
            Self::Other => "attachment",
        }
    }
}

/// Where a ticket is in the human queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting for a staff member.
    Queued,
    /// A staff member holds the conversation.
    Claimed,
    /// Done: the conversation went back to the bot.
    Resolved,
    /// The user cancelled before staff claimed it.
    Cancelled,
}

impl TicketStatus {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Claimed => "claimed",
            Self::Resolved => "resolved",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "claimed" => Some(Self::Claimed),
            "resolved" => Some(Self::Resolved),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Sender {
    /// The user.
    User,
    /// The bot.
    Bot,
    /// A staff member (their name or platform id).
    Staff(String),
}

pub use kefu_nlu::secrets::Redacted;

/// One line of a conversation's transcript. The text is always redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Who wrote it.
    pub sender: Sender,
    /// The redacted text.
    pub text: String,
}

/// A detail collected for a ticket (tx hash, amount, network…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// The detail's name from the KB's `collect` list: tx_id, amount, time, network, address, uid, coin.
    pub name: String,
    /// What the user gave, or None when they skipped it.
    pub value: Option<String>,
}

/// A request for a human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Database id.
    pub id: i64,
    /// Short verification code the user can check staff against (fake-support defence).
    pub code: String,
    /// The conversation it belongs to.
    pub conversation: ConversationRef,
    /// The user's display name.
    pub user_name: String,
    /// The intent that led here, if any.
    pub intent: Option<String>,
    /// Queue priority.
    pub priority: Priority,
    /// Where it is.
    pub status: TicketStatus,
    /// The staff member holding it.
    pub assignee: Option<String>,
    /// Why it was opened (low confidence, user asked, sensitive topic, answer didn't help…).
    pub reason: String,
    /// Details collected before it opened.
    pub details: Vec<Detail>,
    /// Timestamps.
    pub created_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A button under a message; adapters render them as inline keyboards or components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The label shown.
    pub label: String,
    /// What pressing it sends back as the user's message (a command the policy understands).
    pub payload: String,
}

/// A message for a user, in the outbox until delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The conversation to send it to.
    pub conversation: ConversationRef,
    /// The text (already redacted where it quotes the user).
    pub text: String,
    /// Buttons under it (may be empty).
    pub buttons: Vec<Button>,
    /// The platform message it answers, when the platform threads replies.
    pub reply_to: Option<String>,
}
