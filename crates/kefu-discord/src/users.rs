//! Users' messages and button presses.

use chrono::{DateTime, Utc};
use kefu_core::model::{ConversationRef, Inbound};
use kefu_service::Handled;
use serenity::all::{
    ChannelId, ComponentInteraction, CreateAllowedMentions, CreateMessage, CreateThread, Message,
    MessageId, RoleId, UserId,
};

use crate::{Adapter, HandleError, PLATFORM, THREAD_AFTER, display_name};

/// Where a user's message belongs.
struct Placed {
    conversation: ConversationRef,
    /// The text for the service (mention stripped).
    text: String,
}

impl Adapter<'_> {
    pub(crate) async fn on_message(&self, msg: &Message) -> Result<(), HandleError> {
        if Some(msg.channel_id.get()) == self.config.staff_channel_id {
            return Ok(());
        }
        let store = self.service.store();
        let channel = msg.channel_id.to_string();
        if msg.guild_id.is_some()
            && let Some(ticket) = store.ticket_by_staff_thread(PLATFORM, &channel).await?
        {
            let roles: Vec<RoleId> = msg
                .member
                .as_ref()
                .map(|m| m.roles.clone())
                .unwrap_or_default();
            return self.on_staff_message(msg, &ticket, &roles).await;
        }
        let Some(placed) = self.place(msg).await? else {
            return Ok(());
        };
        if msg.content.trim().is_empty() {
            return self.on_non_text(msg, &placed.conversation).await;
        }
        let inbound = Inbound {
            conversation: placed.conversation,
            user_name: display_name(&msg.author),
            platform_message_id: msg.id.to_string(),
            text: placed.text,
            at: timestamp(msg),
            attachments: Vec::new(),
            pressed: false,
        };
        self.inbound(
            &inbound,
            Some((msg.channel_id, msg.id)),
            msg.guild_id.is_some(),
        )
        .await
    }

    /// The conversation a message belongs to, or `None` when the bot should stay out of it.
    async fn place(&self, msg: &Message) -> Result<Option<Placed>, HandleError> {
        let store = self.service.store();
        let user = msg.author.id.to_string();
        let channel = msg.channel_id.to_string();
        if msg.guild_id.is_none() {
            return Ok(Some(Placed {
                conversation: self.conversation(&channel, &user),
                text: msg.content.clone(),
            }));
        }
        // A thread a channel conversation moved to: its user talks without mentioning the bot.
        if let Some(owner) = store.conversation_for_route(PLATFORM, &channel).await?
            && owner.user_id == user
        {
            let text = strip_mention(&msg.content, self.me).unwrap_or_else(|| msg.content.clone());
            return Ok(Some(Placed {
                conversation: owner,
                text,
            }));
        }
        let replied_to_bot = msg
            .referenced_message
            .as_ref()
            .is_some_and(|m| m.author.id == self.me);
        let mentioned = msg.mentions.iter().any(|u| u.id == self.me);
        if !mentioned && !replied_to_bot {
            return Ok(None);
        }
        let text = strip_mention(&msg.content, self.me).unwrap_or_else(|| msg.content.clone());
        let conversation = self.conversation(&channel, &user);
        // The conversation goes on: move it into a thread started from this message.
        let recent = store
            .last_activity(&conversation)
            .await?
            .is_some_and(|at| Utc::now() - at <= THREAD_AFTER);
        if recent && !self.is_thread(msg.channel_id) {
            self.move_to_thread(msg, &conversation).await?;
        }
        Ok(Some(Placed { conversation, text }))
    }

    fn conversation(&self, chat: &str, user: &str) -> ConversationRef {
        ConversationRef {
            platform: PLATFORM.to_owned(),
            chat_id: chat.to_owned(),
            user_id: user.to_owned(),
        }
    }

    /// Whether a channel is a thread (threads cannot hold threads).
    fn is_thread(&self, channel: ChannelId) -> bool {
        self.cache
            .guilds()
            .iter()
            .filter_map(|g| {
                self.cache
                    .guild(*g)
                    .map(|g| g.threads.iter().any(|t| t.id == channel))
            })
            .any(|found| found)
    }

    async fn move_to_thread(
        &self,
        msg: &Message,
        conversation: &ConversationRef,
    ) -> Result<(), HandleError> {
        let name = kefu_core::render::truncate(
            &format!(
                "{} · {}",
                display_name(&msg.author),
                first_line(&msg.content, self.me)
            ),
            100,
        );
        match msg
            .channel_id
            .create_thread_from_message(&*self.http, msg.id, CreateThread::new(name))
            .await
        {
            Ok(thread) => {
                self.service
                    .store()
                    .set_chat_route(conversation, &thread.id.to_string(), Utc::now())
                    .await?;
            }
            Err(e) => {
                // No thread permission: the conversation simply stays in the channel.
                tracing::info!(error = %e, "discord: could not start a thread for a conversation");
            }
        }
        Ok(())
    }

    pub(crate) async fn on_component(
        &self,
        press: &ComponentInteraction,
    ) -> Result<(), HandleError> {
        let data = press.data.custom_id.as_str();
        if let Some(action) = data.strip_prefix("staff:") {
            return self.on_staff_button(press, action).await;
        }
        if data.is_empty() {
            return Ok(());
        }
        let user = press.user.id.to_string();
        let channel = press.channel_id.to_string();
        let store = self.service.store();
        let conversation = match store.conversation_for_route(PLATFORM, &channel).await? {
            Some(owner) if owner.user_id == user => owner,
            _ => self.conversation(&channel, &user),
        };
        let inbound = Inbound {
            conversation,
            user_name: display_name(&press.user),
            platform_message_id: format!("i:{}", press.id),
            text: data.to_owned(),
            at: Utc::now(),
            attachments: Vec::new(),
            pressed: true,
        };
        self.inbound(&inbound, None, false).await
    }

    /// Hands a message to the service; deletes the platform message if it carried a secret.
    async fn inbound(
        &self,
        inbound: &Inbound,
        source: Option<(ChannelId, MessageId)>,
        in_guild: bool,
    ) -> Result<(), HandleError> {
        match self.service.handle_inbound(inbound, Utc::now()).await? {
            Handled::Duplicate => {
                tracing::debug!(message = %inbound.platform_message_id, "discord: duplicate event");
            }
            Handled::Processed { delete_message, .. } => {
                // Only in servers: nobody can delete the other side's messages in a DM.
                if delete_message.is_some()
                    && in_guild
                    && let Some((channel, id)) = source
                    && let Err(e) = channel.delete_message(&*self.http, id).await
                {
                    tracing::info!(error = %e, "discord: could not delete a message carrying a secret (Manage Messages missing?)");
                }
            }
        }
        Ok(())
    }

    /// An attachment or sticker without text: relayed to the ticket's staff thread while one is
    /// open, otherwise a clear reply.
    async fn on_non_text(
        &self,
        msg: &Message,
        conversation: &ConversationRef,
    ) -> Result<(), HandleError> {
        let store = self.service.store();
        if !msg.attachments.is_empty()
            && let Some(ticket) = store.open_ticket_for(conversation).await?
            && let Some(thread) = store.staff_thread(ticket.id, PLATFORM).await?
            && let Ok(thread) = thread.parse::<u64>()
        {
            let files: Vec<String> = msg
                .attachments
                .iter()
                .map(|a| format!("📎 {} {}", a.filename, a.url))
                .collect();
            let relayed = ChannelId::new(thread)
                .send_message(
                    &*self.http,
                    CreateMessage::new()
                        .content(kefu_core::render::truncate(&files.join("\n"), 1900))
                        .allowed_mentions(CreateAllowedMentions::new()),
                )
                .await;
            if relayed.is_ok() {
                self.notice(msg, "已转交给客服人员。/ Sent to the support team.")
                    .await;
                return Ok(());
            }
        }
        self.notice(
            msg,
            "抱歉，我只能读懂文字消息，请用文字描述您的问题；如需发送截图，请先输入“转人工”。\nSorry, I can only read text. Please describe your question in words; to send a screenshot, type \"human\" first.",
        )
        .await;
        Ok(())
    }

    async fn notice(&self, msg: &Message, text: &str) {
        let mut m = CreateMessage::new()
            .content(text)
            .allowed_mentions(CreateAllowedMentions::new());
        if msg.guild_id.is_some() {
            m = m.reference_message(msg);
        }
        if let Err(e) = msg.channel_id.send_message(&*self.http, m).await {
            tracing::warn!(error = %e, "discord: sending a notice failed");
        }
    }
}

fn timestamp(msg: &Message) -> DateTime<Utc> {
    DateTime::from_timestamp(msg.timestamp.unix_timestamp(), 0).unwrap_or_else(Utc::now)
}

/// The text without the bot's mention (`<@id>` or `<@!id>`), or `None` if it has none. A bare
/// mention becomes "hello".
pub(crate) fn strip_mention(text: &str, me: UserId) -> Option<String> {
    let forms = [format!("<@{me}>"), format!("<@!{me}>")];
    if !forms.iter().any(|f| text.contains(f.as_str())) {
        return None;
    }
    let mut rest = text.to_owned();
    for f in &forms {
        for sep in [",", "，", ""] {
            rest = rest.replace(&format!("{f}{sep}"), " ");
        }
    }
    let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = rest.trim_matches(|c: char| c == ',' || c == '，' || c.is_whitespace());
    Some(if rest.is_empty() {
        "hello".to_owned()
    } else {
        rest.to_owned()
    })
}

/// The first line of a message, without the mention: a thread's name.
fn first_line(text: &str, me: UserId) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    strip_mention(line, me).unwrap_or_else(|| line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped_in_both_forms() {
        let me = UserId::new(900);
        assert_eq!(
            strip_mention("<@900> 提币失败了怎么办", me).as_deref(),
            Some("提币失败了怎么办")
        );
        assert_eq!(
            strip_mention("hey <@!900>, deposit?", me).as_deref(),
            Some("hey deposit?")
        );
        assert_eq!(strip_mention("<@9001> hi", me), None);
        assert_eq!(strip_mention("no mention", me), None);
        assert_eq!(strip_mention("<@900>", me).as_deref(), Some("hello"));
        assert_eq!(first_line("<@900> USDT提不出来\nmore", me), "USDT提不出来");
    }
}
