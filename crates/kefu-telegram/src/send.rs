//! [`Deliver`] for Telegram: each outbox row becomes Bot API calls; errors become the worker's
//! [`Outcome`]s. Plain text only (no parse mode, so `_*[]()` always render), split at 4,096
//! characters on line boundaries, buttons on the last part.

use kefu_core::delivery::{Delivery, StaffPost};
use kefu_core::model::Button;
use kefu_core::render::{split_text, truncate};
use kefu_service::delivery::{Deliver, Limits, Outcome, Rate, ToUser};
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ReplyParameters, ThreadId,
};

use crate::{Adapter, MESSAGE_LIMIT, PLATFORM};

/// Telegram's limit on a document's caption.
const CAPTION_LIMIT: usize = 1024;

/// Telegram's limit on a forum topic's name.
const TOPIC_NAME_LIMIT: usize = 128;

/// About one message a second to one private chat, with a short burst allowed.
const PRIVATE_CHAT: Rate = Rate {
    per_second: 1.0,
    burst: 3,
};

/// Twenty messages a minute to one group (the staff forum's topics all share it).
const GROUP: Rate = Rate {
    per_second: 20.0 / 60.0,
    burst: 5,
};

/// The Telegram side of the delivery worker.
#[derive(Debug)]
pub struct Sender<'a> {
    adapter: &'a Adapter<'a>,
}

impl<'a> Sender<'a> {
    pub(crate) fn new(adapter: &'a Adapter<'a>) -> Self {
        Sender { adapter }
    }

    fn bot(&self) -> &Bot {
        &self.adapter.bot
    }

    fn staff_chat(&self) -> Option<ChatId> {
        self.adapter.config.staff_chat_id.map(ChatId)
    }

    /// What an error means for the worker.
    fn outcome(&self, e: &RequestError) -> Outcome {
        let text = self.adapter.hide(e);
        match e {
            RequestError::RetryAfter(s) => Outcome::RetryAfter(s.duration()),
            RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
                Outcome::Transient(text)
            }
            RequestError::MigrateToChatId(_) => Outcome::Permanent(text),
            RequestError::Api(ApiError::Unknown(description)) => {
                // teloxide keeps no status code: a server-side error reads as one.
                let d = description.to_ascii_lowercase();
                if ["internal", "gateway", "unavailable", "timeout", "too many"]
                    .iter()
                    .any(|w| d.contains(w))
                {
                    Outcome::Transient(text)
                } else {
                    Outcome::Permanent(text)
                }
            }
            RequestError::Api(_) => Outcome::Permanent(text),
        }
    }
}

fn keyboard(buttons: &[Button]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        buttons
            .iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.payload.clone()))
            .collect::<Vec<_>>(),
    ])
}

fn sent(id: MessageId) -> Outcome {
    Outcome::Sent(Some(id.0.to_string()))
}

fn thread(space: &str) -> Option<ThreadId> {
    space.parse::<i32>().ok().map(|t| ThreadId(MessageId(t)))
}

impl Deliver for Sender<'_> {
    fn platform(&self) -> &str {
        PLATFORM
    }

    fn limits(&self) -> Limits {
        Limits {
            overall: self.adapter.config.rate,
            in_flight: 32,
        }
    }

    fn pacing(&self, delivery: &Delivery) -> Option<(String, Rate)> {
        self.adapter.config.rate?;
        match delivery {
            Delivery::UserMessage(m) => {
                let rate = if m.conversation.chat_id.starts_with('-') {
                    GROUP
                } else {
                    PRIVATE_CHAT
                };
                Some((format!("chat:{}", m.conversation.chat_id), rate))
            }
            Delivery::StaffPost { .. } | Delivery::OpenStaffSpace { .. } => {
                Some(("staff".to_owned(), GROUP))
            }
            Delivery::DeleteUserMessage { .. } | Delivery::CloseStaffSpace { .. } => None,
        }
    }

    async fn send_to_user(&self, m: ToUser<'_>) -> Outcome {
        let Ok(chat) = m.chat.parse::<i64>() else {
            return Outcome::Permanent(format!("{:?} is not a Telegram chat id", m.chat));
        };
        let parts = split_text(m.text, MESSAGE_LIMIT);
        let last = parts.len().saturating_sub(1);
        let mut last_id = None;
        for (i, part) in parts.into_iter().enumerate() {
            let mut request = self.bot().send_message(ChatId(chat), part);
            // In groups the answer quotes the question; private chats stay uncluttered.
            if i == 0
                && chat < 0
                && let Some(id) = m.reply_to.and_then(|r| r.parse::<i32>().ok())
            {
                request = request.reply_parameters(
                    ReplyParameters::new(MessageId(id)).allow_sending_without_reply(),
                );
            }
            if i == last && !m.buttons.is_empty() {
                request = request.reply_markup(keyboard(m.buttons));
            }
            match request.await {
                Ok(message) => last_id = Some(message.id),
                // A part already sent is sent again with the rest on retry: rare (a message
                // over 4,096 characters failing half way) and harmless beside losing the rest.
                Err(e) => return self.outcome(&e),
            }
        }
        last_id.map_or(Outcome::Sent(None), sent)
    }

    async fn delete_message(
        &self,
        chat: &str,
        _moved_to: Option<&str>,
        message_id: &str,
    ) -> Outcome {
        let (Ok(chat), Ok(id)) = (chat.parse::<i64>(), message_id.parse::<i32>()) else {
            // A button press ("cb:…") or no Telegram id: nothing to delete.
            return Outcome::Sent(None);
        };
        match self.bot().delete_message(ChatId(chat), MessageId(id)).await {
            Ok(_) => Outcome::Sent(None),
            Err(e) => match self.outcome(&e) {
                // The bot may lack the right (groups) or the message is gone: the user was
                // warned either way, and the text was never stored.
                Outcome::Permanent(reason) => {
                    tracing::info!(error = %reason, "telegram: could not delete a message carrying a secret");
                    Outcome::Sent(None)
                }
                other => other,
            },
        }
    }

    async fn open_staff_space(&self, title: &str) -> Outcome {
        let Some(chat) = self.staff_chat() else {
            return Outcome::Permanent("telegram.staff_chat_id is not set".to_owned());
        };
        match self
            .bot()
            .create_forum_topic(chat, truncate(title, TOPIC_NAME_LIMIT))
            .await
        {
            Ok(topic) => Outcome::Sent(Some(topic.thread_id.0.0.to_string())),
            Err(e) => self.outcome(&e),
        }
    }

    async fn post_to_staff(&self, space: &str, post: &StaffPost) -> Outcome {
        let (Some(chat), Some(thread)) = (self.staff_chat(), thread(space)) else {
            return Outcome::Permanent(format!("no staff topic {space:?}"));
        };
        let mut last_id = None;
        if let Some(forward) = &post.forward
            && let (Ok(from), Ok(id)) = (
                forward.chat_id.parse::<i64>(),
                forward.message_id.parse::<i32>(),
            )
        {
            match self
                .bot()
                .forward_message(chat, ChatId(from), MessageId(id))
                .message_thread_id(thread)
                .await
            {
                Ok(m) => last_id = Some(m.id),
                Err(e) => return self.outcome(&e),
            }
        }
        let reply = post
            .reply_to
            .as_deref()
            .and_then(|r| r.parse::<i32>().ok())
            .map(|id| ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
        match post.inline_text(MESSAGE_LIMIT) {
            Some(text) if !text.is_empty() => {
                let parts = split_text(&text, MESSAGE_LIMIT);
                let last = parts.len().saturating_sub(1);
                for (i, part) in parts.into_iter().enumerate() {
                    let mut request = self
                        .bot()
                        .send_message(chat, part)
                        .message_thread_id(thread);
                    if i == 0
                        && let Some(reply) = reply.clone()
                    {
                        request = request.reply_parameters(reply);
                    }
                    if i == last && !post.buttons.is_empty() {
                        request = request.reply_markup(keyboard(&post.buttons));
                    }
                    match request.await {
                        Ok(m) => last_id = Some(m.id),
                        Err(e) => return self.outcome(&e),
                    }
                }
            }
            Some(_) => {}
            None => {
                // Too long to show inline: the transcript goes as a file, the summary as its
                // caption (one message, not many, in a group limited to twenty a minute).
                let Some(file) = &post.file else {
                    return Outcome::Sent(None);
                };
                let document = InputFile::memory(file.content.clone().into_bytes())
                    .file_name(file.name.clone());
                let mut request = self
                    .bot()
                    .send_document(chat, document)
                    .caption(truncate(&post.caption(), CAPTION_LIMIT))
                    .message_thread_id(thread);
                if !post.buttons.is_empty() {
                    request = request.reply_markup(keyboard(&post.buttons));
                }
                match request.await {
                    Ok(m) => last_id = Some(m.id),
                    Err(e) => return self.outcome(&e),
                }
            }
        }
        last_id.map_or(Outcome::Sent(None), sent)
    }

    async fn close_staff_space(&self, space: &str) -> Outcome {
        let (Some(chat), Some(thread)) = (self.staff_chat(), thread(space)) else {
            return Outcome::Sent(None);
        };
        match self.bot().close_forum_topic(chat, thread).await {
            Ok(_) => Outcome::Sent(None),
            Err(e) => match self.outcome(&e) {
                // Closed already (by hand, or by a delivery sent twice): done.
                Outcome::Permanent(reason) if reason.contains("NOT_MODIFIED") => {
                    Outcome::Sent(None)
                }
                other => other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_id_parses_and_anything_else_does_not() {
        assert_eq!(thread("17"), Some(ThreadId(MessageId(17))));
        assert_eq!(thread("x"), None);
    }

    #[test]
    fn keyboards_keep_labels_and_payloads() {
        let k = keyboard(&[Button {
            label: "是".into(),
            payload: "/yes".into(),
        }]);
        let json = serde_json::to_value(&k).unwrap_or_default();
        assert_eq!(json["inline_keyboard"][0][0]["text"], "是");
        assert_eq!(json["inline_keyboard"][0][0]["callback_data"], "/yes");
    }
}
