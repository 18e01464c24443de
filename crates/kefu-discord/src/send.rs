//! [`Deliver`] for Discord: each outbox row becomes API calls; errors become the worker's
//! [`Outcome`]s. Messages are split at 2,000 characters, buttons go on the last part as
//! components, and `allowed_mentions` is always explicit, so nothing a user typed ("@everyone")
//! pings anyone; only a ticket's first post mentions the staff role, which adds its members to
//! the private thread.

use kefu_core::delivery::{Delivery, StaffPost};
use kefu_core::model::Button;
use kefu_core::render::{split_text, truncate};
use kefu_service::delivery::{Deliver, Limits, Outcome, Rate, ToUser};
use serenity::all::{
    ButtonStyle, ChannelId, ChannelType, CreateActionRow, CreateAllowedMentions, CreateAttachment,
    CreateButton, CreateMessage, CreateThread, EditThread, MessageId, MessageReference, RoleId,
    UserId,
};

use crate::{Adapter, MESSAGE_LIMIT, PLATFORM};

/// Discord allows five buttons in a row, five rows in a message.
const BUTTONS_PER_ROW: usize = 5;

/// Discord's thread name limit.
const THREAD_NAME_LIMIT: usize = 100;

/// How long to wait after a 429 from a proxy (serenity's error does not carry `retry_after`; its
/// own rate limiter, on against Discord, waits before sending).
const RATE_LIMITED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The Discord side of the delivery worker.
pub(crate) struct Sender<'a> {
    adapter: &'a Adapter<'a>,
}

impl<'a> Sender<'a> {
    pub(crate) fn new(adapter: &'a Adapter<'a>) -> Self {
        Sender { adapter }
    }

    fn http(&self) -> &serenity::http::Http {
        &self.adapter.http
    }

    fn staff_channel(&self) -> Option<ChannelId> {
        self.adapter.config.staff_channel_id.map(ChannelId::new)
    }

    /// Whether a channel is in a server: from the gateway's cache, else (an instance that does
    /// not run the gateway) from the API, remembered.
    async fn is_guild_channel(&self, channel: ChannelId) -> bool {
        let cache = self.adapter.cache.load();
        let cached = cache.guilds().iter().any(|g| {
            cache
                .guild(*g)
                .is_some_and(|g| g.channels.contains_key(&channel))
        });
        if cached {
            return true;
        }
        let known = |adapter: &crate::Adapter<'_>| {
            adapter
                .guild_channels
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&channel.get())
                .copied()
        };
        if let Some(known) = known(self.adapter) {
            return known;
        }
        let Ok(found) = self.http().get_channel(channel).await else {
            return false;
        };
        let in_guild = matches!(found, serenity::all::Channel::Guild(_));
        self.adapter
            .guild_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(channel.get(), in_guild);
        in_guild
    }

    /// Sends a message in parts; `Sent` carries the last part's id.
    async fn send_parts(
        &self,
        channel: ChannelId,
        text: &str,
        buttons: &[Button],
        quote: Option<MessageId>,
        mentions: CreateAllowedMentions,
    ) -> Outcome {
        let parts = split_text(text, MESSAGE_LIMIT);
        let last = parts.len().saturating_sub(1);
        let mut last_id = None;
        for (i, part) in parts.into_iter().enumerate() {
            let mut m = CreateMessage::new()
                .content(part)
                .allowed_mentions(if i == 0 {
                    mentions.clone()
                } else {
                    CreateAllowedMentions::new()
                });
            if i == 0
                && let Some(id) = quote
            {
                m = m.reference_message(
                    MessageReference::from((channel, id)).fail_if_not_exists(false),
                );
            }
            if i == last && !buttons.is_empty() {
                m = m.components(action_rows(buttons));
            }
            match channel.send_message(self.http(), m).await {
                Ok(sent) => last_id = Some(sent.id.to_string()),
                // A part already sent is sent again with the rest on retry: rare (a message over
                // 2,000 characters failing half way) and harmless beside losing the rest.
                Err(e) => return self.outcome(&e),
            }
        }
        Outcome::Sent(last_id)
    }

    /// What an error means for the worker.
    fn outcome(&self, e: &serenity::Error) -> Outcome {
        let text = crate::hide(&e.to_string(), &self.adapter.config.token);
        outcome_of(e, text)
    }
}

fn outcome_of(e: &serenity::Error, text: String) -> Outcome {
    use serenity::http::HttpError;
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let status = r.status_code.as_u16();
            if status == 429 {
                Outcome::RetryAfter(RATE_LIMITED_WAIT)
            } else if status >= 500 || status == 408 {
                Outcome::Transient(text)
            } else {
                Outcome::Permanent(text)
            }
        }
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Io(_) => {
            Outcome::Transient(text)
        }
        serenity::Error::Http(HttpError::RateLimitI64F64 | HttpError::RateLimitUtf8) => {
            Outcome::RetryAfter(RATE_LIMITED_WAIT)
        }
        _ => Outcome::Permanent(text),
    }
}

fn channel(id: &str) -> Option<ChannelId> {
    id.parse::<u64>()
        .ok()
        .filter(|&n| n != 0)
        .map(ChannelId::new)
}

impl Deliver for Sender<'_> {
    fn platform(&self) -> &str {
        PLATFORM
    }

    fn limits(&self) -> Limits {
        // serenity's rate limiter knows Discord's per-route buckets (against a proxy, the proxy
        // enforces them): the worker only bounds what is in flight.
        Limits {
            overall: None,
            in_flight: 32,
        }
    }

    fn pacing(&self, _delivery: &Delivery) -> Option<(String, Rate)> {
        None
    }

    async fn send_to_user(&self, m: ToUser<'_>) -> Outcome {
        let Some(to) = channel(m.chat) else {
            return Outcome::Permanent(format!("{:?} is not a Discord channel id", m.chat));
        };
        // In a server channel the answer quotes the question; DMs and threads stay uncluttered.
        let in_guild = !m.moved && m.reply_to.is_some() && self.is_guild_channel(to).await;
        let quote = match m.reply_to {
            Some(id) if in_guild => id
                .parse::<u64>()
                .ok()
                .filter(|&n| n != 0)
                .map(MessageId::new),
            _ => None,
        };
        self.send_parts(to, m.text, m.buttons, quote, CreateAllowedMentions::new())
            .await
    }

    async fn delete_message(
        &self,
        chat: &str,
        moved_to: Option<&str>,
        message_id: &str,
    ) -> Outcome {
        let Some(id) = message_id.parse::<u64>().ok().filter(|&n| n != 0) else {
            // A button press ("i:…"): nothing to delete.
            return Outcome::Sent(None);
        };
        // The message is where the conversation was when it was written: try both places.
        for place in moved_to.into_iter().chain(std::iter::once(chat)) {
            let Some(at) = channel(place) else { continue };
            match at.delete_message(self.http(), MessageId::new(id)).await {
                Ok(()) => return Outcome::Sent(None),
                Err(e) => match self.outcome(&e) {
                    // Not there, or no right to delete (DMs, Manage Messages missing): the user
                    // was warned either way, and the text was never stored.
                    Outcome::Permanent(reason) => {
                        tracing::info!(error = %reason, "discord: could not delete a message carrying a secret");
                    }
                    other => return other,
                },
            }
        }
        Outcome::Sent(None)
    }

    async fn open_staff_space(&self, title: &str) -> Outcome {
        let Some(staff) = self.staff_channel() else {
            return Outcome::Permanent("discord.staff_channel_id is not set".to_owned());
        };
        let thread = match staff
            .create_thread(
                self.http(),
                CreateThread::new(truncate(title, THREAD_NAME_LIMIT))
                    .kind(ChannelType::PrivateThread)
                    .invitable(false),
            )
            .await
        {
            Ok(thread) => thread,
            Err(e) => return self.outcome(&e),
        };
        for user in &self.adapter.config.staff_user_ids {
            if let Err(e) = thread
                .id
                .add_thread_member(self.http(), UserId::new(*user))
                .await
            {
                tracing::warn!(error = %e, user, "discord: adding a staff member to a ticket thread failed");
            }
        }
        Outcome::Sent(Some(thread.id.to_string()))
    }

    async fn post_to_staff(&self, space: &str, post: &StaffPost) -> Outcome {
        let Some(thread) = channel(space) else {
            return Outcome::Permanent(format!("no staff thread {space:?}"));
        };
        // Mentioning the staff role adds its members to the private thread; nothing else pings.
        let (role_line, mentions) = match self.adapter.config.staff_role_id {
            Some(role) if post.mention_staff => (
                format!("<@&{role}>\n"),
                CreateAllowedMentions::new().roles([RoleId::new(role)]),
            ),
            _ => (String::new(), CreateAllowedMentions::new()),
        };
        let quote = post
            .reply_to
            .as_deref()
            .and_then(|r| r.parse::<u64>().ok())
            .filter(|&n| n != 0)
            .map(MessageId::new);
        let limit = MESSAGE_LIMIT.saturating_sub(role_line.chars().count());
        match post.inline_text(limit) {
            Some(text) if text.is_empty() && role_line.is_empty() => Outcome::Sent(None),
            Some(text) => {
                self.send_parts(
                    thread,
                    &format!("{role_line}{text}"),
                    &post.buttons,
                    quote,
                    mentions,
                )
                .await
            }
            None => {
                // Too long to show inline: the transcript goes as a file, the summary with it.
                let mut m = CreateMessage::new()
                    .content(truncate(
                        &format!("{role_line}{}", post.caption()),
                        MESSAGE_LIMIT,
                    ))
                    .allowed_mentions(mentions);
                if let Some(file) = &post.file {
                    m = m.add_file(CreateAttachment::bytes(
                        file.content.clone().into_bytes(),
                        file.name.clone(),
                    ));
                }
                if !post.buttons.is_empty() {
                    m = m.components(action_rows(&post.buttons));
                }
                match thread.send_message(self.http(), m).await {
                    Ok(sent) => Outcome::Sent(Some(sent.id.to_string())),
                    Err(e) => self.outcome(&e),
                }
            }
        }
    }

    /// Archives the thread, and locks it unless label buttons may follow a resolve there:
    /// Discord makes the buttons of a locked thread unclickable, while those of an archived one
    /// still reach the bot.
    async fn close_staff_space(&self, space: &str) -> Outcome {
        let Some(thread) = channel(space) else {
            return Outcome::Sent(None);
        };
        let labels = self
            .adapter
            .service
            .config()
            .label_spaces
            .iter()
            .any(|s| s == PLATFORM);
        match thread
            .edit_thread(
                self.http(),
                EditThread::new().archived(true).locked(!labels),
            )
            .await
        {
            Ok(_) => Outcome::Sent(None),
            Err(e) => self.outcome(&e),
        }
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
                        let style = if b.payload.starts_with("staff:claim:") {
                            ButtonStyle::Primary
                        } else if b.payload.starts_with("staff:resolve:") {
                            ButtonStyle::Success
                        } else {
                            ButtonStyle::Secondary
                        };
                        CreateButton::new(b.payload.clone())
                            .label(truncate(&b.label, 80))
                            .style(style)
                    })
                    .collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_parse_and_anything_else_does_not() {
        assert_eq!(channel("42"), Some(ChannelId::new(42)));
        assert_eq!(channel("0"), None);
        assert_eq!(channel("x"), None);
    }

    #[test]
    fn buttons_fill_rows_of_five() {
        let buttons: Vec<Button> = (0..7)
            .map(|i| Button {
                label: format!("b{i}"),
                payload: format!("/p{i}"),
            })
            .collect();
        let rows = action_rows(&buttons);
        assert_eq!(rows.len(), 2);
    }
}
