//! The outbox worker: sends what the service queued for Discord users, and keeps the staff
//! channel's threads in step with the ticket queue.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kefu_core::model::{Button, Outgoing};
use kefu_core::render::split_text;
use serenity::all::{
    ButtonStyle, ChannelId, CreateActionRow, CreateAllowedMentions, CreateButton, CreateMessage,
    MessageId, MessageReference,
};
use tokio::sync::watch;

use crate::{Adapter, HandleError, MESSAGE_LIMIT, PLATFORM, WORKER_TICK, backoff, pause, stopping};

/// The staff channel is synchronised every this many worker ticks.
const STAFF_EVERY: u32 = 3;

/// Discord allows five buttons in a row, five rows in a message.
const BUTTONS_PER_ROW: usize = 5;

/// Why a send failed.
#[derive(Debug)]
pub(crate) struct SendError {
    pub(crate) text: String,
    /// Discord answered 429.
    pub(crate) rate_limited: bool,
}

impl From<serenity::Error> for SendError {
    fn from(e: serenity::Error) -> Self {
        let rate_limited = matches!(
            &e,
            serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r))
                if r.status_code.as_u16() == 429
        );
        SendError {
            text: e.to_string(),
            rate_limited,
        }
    }
}

impl Adapter<'_> {
    pub(crate) async fn worker_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let mut tick: u32 = 0;
        loop {
            tick = tick.wrapping_add(1);
            if let Err(e) = self.deliver(&shutdown).await {
                tracing::error!(error = %e, "discord: delivery failed");
            }
            if stopping(&shutdown) {
                break;
            }
            if let Some(staff) = self.config.staff_channel_id
                && tick % STAFF_EVERY == 1
                && let Err(e) = self.sync_staff(ChannelId::new(staff), &shutdown).await
            {
                tracing::error!(error = %e, "discord: staff channel sync failed");
            }
            if pause(&mut shutdown, WORKER_TICK).await {
                break;
            }
        }
    }

    /// Sends what the outbox holds for Discord; stops between messages when shutting down.
    async fn deliver(&self, shutdown: &watch::Receiver<bool>) -> Result<(), HandleError> {
        let store = self.service.store();
        let pending = store
            .pending_outbox_for_platform(PLATFORM, 200, Utc::now())
            .await?;
        // A chat whose message failed gets nothing more this round: order is kept.
        let mut blocked: HashMap<String, DateTime<Utc>> = HashMap::new();
        for m in pending {
            if stopping(shutdown) {
                break;
            }
            let chat = m.message.conversation.chat_id.clone();
            if let Some(retry_at) = blocked.get(&chat) {
                store
                    .mark_failed(m.id, "an earlier message to this chat failed", *retry_at)
                    .await?;
                continue;
            }
            match self.send_outgoing(&m.message).await {
                Ok(()) => {
                    store.mark_delivered(m.id, Utc::now()).await?;
                }
                Err(e) => {
                    let now = Utc::now();
                    // serenity's error does not carry `retry_after`; its own rate limiter (on
                    // against Discord) waits before sending, so a 429 here comes from a proxy.
                    let retry_at = if e.rate_limited {
                        now + chrono::TimeDelta::seconds(1)
                    } else {
                        now + backoff(m.attempts)
                    };
                    let err = crate::hide(&e.text, &self.config.token);
                    tracing::warn!(error = %err, outbox = m.id, %retry_at, "discord: sending failed");
                    store.mark_failed(m.id, &err, retry_at).await?;
                    blocked.insert(chat, retry_at);
                }
            }
        }
        Ok(())
    }

    async fn send_outgoing(&self, out: &Outgoing) -> Result<(), SendError> {
        let Ok(chat) = out.conversation.chat_id.parse::<u64>() else {
            tracing::error!(chat = %out.conversation.chat_id, "discord: outbox row with an invalid channel id");
            return Ok(());
        };
        let store = self.service.store();
        // A channel conversation that moved into a thread is answered there.
        let route = store
            .chat_route(&out.conversation)
            .await
            .map_err(|e| SendError {
                text: e.to_string(),
                rate_limited: false,
            })?
            .and_then(|r| r.parse::<u64>().ok());
        let channel = ChannelId::new(route.unwrap_or(chat));
        // In a server channel the answer quotes the question; DMs and threads stay uncluttered.
        let quote = match (&out.reply_to, route) {
            (Some(id), None) if self.is_guild_channel(channel) => {
                id.parse::<u64>().ok().map(MessageId::new)
            }
            _ => None,
        };
        let parts = split_text(&out.text, MESSAGE_LIMIT);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let mut m = CreateMessage::new()
                .content(part)
                .allowed_mentions(CreateAllowedMentions::new());
            if i == 0
                && let Some(id) = quote
            {
                m = m.reference_message(
                    MessageReference::from((channel, id)).fail_if_not_exists(false),
                );
            }
            if i == last && !out.buttons.is_empty() {
                m = m.components(action_rows(&out.buttons));
            }
            channel.send_message(&*self.http, m).await?;
        }
        Ok(())
    }

    fn is_guild_channel(&self, channel: ChannelId) -> bool {
        self.cache.guilds().iter().any(|g| {
            self.cache
                .guild(*g)
                .is_some_and(|g| g.channels.contains_key(&channel))
        })
    }
}

/// Buttons as action rows of at most five; the payload is the custom id (Discord: ≤ 100 bytes).
pub(crate) fn action_rows(buttons: &[Button]) -> Vec<CreateActionRow> {
    buttons
        .chunks(BUTTONS_PER_ROW)
        .take(5)
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .map(|b| {
                        CreateButton::new(b.payload.clone())
                            .label(kefu_core::render::truncate(&b.label, 80))
                            .style(ButtonStyle::Secondary)
                    })
                    .collect(),
            )
        })
        .collect()
}
