//! Users' messages and button presses, handed to the service. Everything the bot says back goes
//! through the outbox.

use chrono::{DateTime, Utc};
use kefu_core::model::{Attachment, AttachmentKind, ConversationRef, Inbound};
use kefu_service::{Handled, ServiceError};
use serenity::all::{ChannelId, ComponentInteraction, CreateThread, Message, RoleId, UserId};

use crate::{Adapter, PLATFORM, THREAD_AFTER, display_name};

/// Discord's thread name limit.
const THREAD_NAME_LIMIT: usize = 100;

/// Where a user's message belongs.
struct Placed {
    conversation: ConversationRef,
    /// The text for the service (mention stripped).
    text: String,
}

impl Adapter<'_> {
    pub(crate) async fn on_message(&self, msg: &Message) -> Result<(), ServiceError> {
        if Some(msg.channel_id.get()) == self.config.staff_channel_id {
            return Ok(());
        }
        if msg.guild_id.is_some()
            && let Some(ticket) = self
                .service
                .ticket_for_staff_space(PLATFORM, &msg.channel_id.to_string())
                .await?
        {
            let roles: Vec<RoleId> = msg
                .member
                .as_ref()
                .map(|m| m.roles.clone())
                .unwrap_or_default();
            return self.on_staff_message(msg, ticket, &roles).await;
        }
        let Some(placed) = self.place(msg).await? else {
            return Ok(());
        };
        let inbound = Inbound {
            conversation: placed.conversation,
            user_name: display_name(&msg.author),
            platform_message_id: msg.id.to_string(),
            text: placed.text,
            at: timestamp(msg),
            attachments: attachments(msg),
            pressed: false,
        };
        if inbound.text.trim().is_empty() && inbound.attachments.is_empty() {
            return Ok(());
        }
        self.inbound(&inbound).await
    }

    /// The conversation a message belongs to, or `None` when the bot should stay out of it.
    async fn place(&self, msg: &Message) -> Result<Option<Placed>, ServiceError> {
        let user = msg.author.id.to_string();
        let channel = msg.channel_id.to_string();
        if msg.guild_id.is_none() {
            return Ok(Some(Placed {
                conversation: conversation(&channel, &user),
                text: msg.content.clone(),
            }));
        }
        // A thread a channel conversation moved to: its user talks without mentioning the bot.
        if let Some(owner) = self.service.route_owner(PLATFORM, &channel).await?
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
        let conversation = conversation(&channel, &user);
        // The conversation goes on: move it into a thread started from this message.
        let recent = self
            .service
            .last_activity(&conversation)
            .await?
            .is_some_and(|at| Utc::now() - at <= THREAD_AFTER);
        if recent && !self.is_thread(msg.channel_id) {
            self.move_to_thread(msg, &conversation, &text).await?;
        }
        Ok(Some(Placed { conversation, text }))
    }

    /// Whether a channel is a thread (threads cannot hold threads).
    fn is_thread(&self, channel: ChannelId) -> bool {
        let cache = self.cache.load();
        cache
            .guilds()
            .iter()
            .filter_map(|g| {
                cache
                    .guild(*g)
                    .map(|g| g.threads.iter().any(|t| t.id == channel))
            })
            .any(|found| found)
    }

    /// Starts a thread from the message, named after the user's question (the earlier line that
    /// asked it, not a "转人工" that moved the conversation), and routes the conversation there.
    async fn move_to_thread(
        &self,
        msg: &Message,
        conversation: &ConversationRef,
        text: &str,
    ) -> Result<(), ServiceError> {
        let question = self
            .service
            .question_of(conversation)
            .await?
            .unwrap_or_else(|| first_line(text));
        let name = thread_name(&display_name(&msg.author), &question);
        match msg
            .channel_id
            .create_thread_from_message(&*self.http, msg.id, CreateThread::new(name))
            .await
        {
            Ok(thread) => {
                self.service
                    .move_conversation(conversation, &thread.id.to_string(), Utc::now())
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
    ) -> Result<(), ServiceError> {
        let data = press.data.custom_id.as_str();
        if data.starts_with("staff:") {
            return self.on_staff_button(press).await;
        }
        if data.is_empty() {
            return Ok(());
        }
        let user = press.user.id.to_string();
        let channel = press.channel_id.to_string();
        let conversation = match self.service.route_owner(PLATFORM, &channel).await? {
            Some(owner) if owner.user_id == user => owner,
            _ => conversation(&channel, &user),
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
        self.inbound(&inbound).await
    }

    async fn inbound(&self, inbound: &Inbound) -> Result<(), ServiceError> {
        match self.service.handle_inbound(inbound, Utc::now()).await? {
            Handled::Duplicate => {
                tracing::debug!(message = %inbound.platform_message_id, "discord: duplicate event");
            }
            Handled::Processed { .. }
            | Handled::TakenOver
            | Handled::Deferred
            | Handled::Failed => {}
        }
        Ok(())
    }
}

fn conversation(chat: &str, user: &str) -> ConversationRef {
    ConversationRef {
        platform: PLATFORM.to_owned(),
        chat_id: chat.to_owned(),
        user_id: user.to_owned(),
    }
}

/// A thread's name: the user and their question, within Discord's limit.
fn thread_name(user: &str, question: &str) -> String {
    kefu_core::render::truncate(&format!("{user} · {question}"), THREAD_NAME_LIMIT)
}

/// What came with a message besides text: files (with their CDN links, which staff can open from
/// any platform) and stickers.
fn attachments(msg: &Message) -> Vec<Attachment> {
    let files = msg.attachments.iter().map(|a| Attachment {
        kind: kind_of(a.content_type.as_deref()),
        name: Some(a.filename.clone()),
        url: Some(a.url.clone()),
    });
    let stickers = msg.sticker_items.iter().map(|s| Attachment {
        kind: AttachmentKind::Sticker,
        name: Some(s.name.clone()),
        url: None,
    });
    files.chain(stickers).collect()
}

fn kind_of(content_type: Option<&str>) -> AttachmentKind {
    match content_type.and_then(|t| t.split('/').next()) {
        Some("image") => AttachmentKind::Photo,
        Some("video") => AttachmentKind::Video,
        Some("audio") => AttachmentKind::Audio,
        Some(_) => AttachmentKind::Document,
        None => AttachmentKind::Other,
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

/// The first line of a text.
fn first_line(text: &str) -> String {
    text.trim().lines().next().unwrap_or_default().to_owned()
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
        assert_eq!(first_line("USDT提不出来\nmore"), "USDT提不出来");
    }

    #[test]
    fn a_thread_is_named_after_the_question_within_the_limit() {
        assert_eq!(thread_name("Alice", "USDT提不出来"), "Alice · USDT提不出来");
        let long = "提".repeat(300);
        assert!(thread_name("Alice", &long).chars().count() <= THREAD_NAME_LIMIT);
    }

    #[test]
    fn attachment_kinds_follow_the_content_type() {
        assert_eq!(kind_of(Some("image/png")), AttachmentKind::Photo);
        assert_eq!(kind_of(Some("video/mp4")), AttachmentKind::Video);
        assert_eq!(kind_of(Some("audio/ogg")), AttachmentKind::Audio);
        assert_eq!(kind_of(Some("application/pdf")), AttachmentKind::Document);
        assert_eq!(kind_of(None), AttachmentKind::Other);
    }

    /// A fuzz target on stable Rust: any message the gateway could deliver — random content with
    /// any characters, mentions of the bot in both forms and of others, attachments with any name
    /// and content type, stickers — converts without a panic. `KEFU_FUZZ_CASES` sets the number
    /// of inputs (default 3,000; README's figures: 1,000,000).
    mod fuzz {
        use super::*;
        use proptest::prelude::*;
        use serde_json::{Value, json};

        const ME: u64 = 900;

        fn cases() -> u32 {
            std::env::var("KEFU_FUZZ_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3000)
        }

        fn content() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                "[a-zA-Z0-9 ?!.,]{0,12}",
                "[提币充值没到账转人工客服你好]{0,8}",
                Just(format!("<@{ME}>")),
                Just(format!("<@!{ME}>")),
                Just(format!("<@{ME}>,")),
                Just("<@9001>".to_owned()),
                Just("@everyone".to_owned()),
                Just("，".to_owned()),
                Just("\u{0}\u{1b}[2J".to_owned()),
                Just("\n".to_owned()),
                any::<char>().prop_map(String::from),
            ];
            prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
        }

        prop_compose! {
            fn message()(
                text in content(),
                files in prop::collection::vec(
                    (any::<String>(), proptest::option::of("[a-z]{1,8}/[a-z0-9.+-]{1,12}")),
                    0..3,
                ),
                stickers in prop::collection::vec(any::<String>(), 0..2),
                guild in any::<bool>(),
            ) -> Value {
                let mut m = json!({"id": "10", "channel_id": "20",
                    "author": {"id": "30", "username": "u", "discriminator": "0",
                        "global_name": null, "avatar": null, "bot": false, "public_flags": 0},
                    "content": text, "timestamp": "2026-12-05T00:00:00.000000+00:00",
                    "edited_timestamp": null, "tts": false, "mention_everyone": false,
                    "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                    "pinned": false, "type": 0, "flags": 0, "components": []});
                m["attachments"] = Value::Array(files.iter().enumerate().map(|(i, (name, ct))| {
                    json!({"id": (100 + i).to_string(), "filename": name, "size": 1,
                        "url": "https://cdn.example/x", "proxy_url": "https://cdn.example/x",
                        "content_type": ct})
                }).collect());
                m["sticker_items"] = Value::Array(stickers.iter().enumerate().map(|(i, name)| {
                    json!({"id": (200 + i).to_string(), "name": name, "format_type": 1})
                }).collect());
                if guild {
                    m["guild_id"] = json!("40");
                }
                m
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: cases(),
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_message_converts_without_panic(raw in message()) {
                let msg: Message = serde_json::from_value(raw).expect("a gateway message");
                let me = UserId::new(ME);
                let found = attachments(&msg);
                prop_assert_eq!(found.len(), msg.attachments.len() + msg.sticker_items.len());
                let _ = timestamp(&msg);
                if let Some(text) = strip_mention(&msg.content, me) {
                    // The bot's mention is gone; nothing else is.
                    let (plain, nick) = (format!("<@{ME}>"), format!("<@!{ME}>"));
                    prop_assert!(!text.contains(&plain) && !text.contains(&nick), "{:?}", text);
                    prop_assert!(!text.trim().is_empty());
                }
                let name = thread_name(&display_name(&msg.author), &first_line(&msg.content));
                prop_assert!(name.chars().count() <= THREAD_NAME_LIMIT);
            }
        }
    }
}
