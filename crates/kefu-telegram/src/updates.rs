//! Receiving updates — long polling or a webhook — and classifying each at the edge.
//!
//! Polling is our own `getUpdates` loop, not teloxide's dispatcher, so acknowledgement follows
//! storage: the next request's offset confirms a batch only once each of its updates was stored by
//! the service, or recorded as unstorable. A database that is down holds the offset (the batch is
//! fetched again after a pause); an update that can never be stored (a permanent error) is set
//! aside with its reason and confirmed, so it never blocks the users after it. The offset is also
//! kept in the database, so a restart resumes where the last run confirmed.
//!
//! A batch's updates are handled per chat: each chat's in order, different chats at once, so the
//! hundredth update of a batch does not wait for the 99 before it.

use std::time::Duration;

use chrono::Utc;
use kefu_core::model::{Attachment, AttachmentKind, ConversationRef, Inbound};
use kefu_core::state::Lang;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, CallbackQuery, Me, Message, Update, UpdateKind, User};
use tokio::sync::watch;

use crate::{Adapter, PLATFORM, TelegramConfig, WebhookConfig, pause, stopping};

/// Chats whose updates of one batch are handled at once (each chat's in order).
const LANES_AT_ONCE: usize = 16;

/// How long one `getUpdates` waits for news.
const POLL_TIMEOUT_SECS: u32 = 10;

/// What an update is, for Kefu.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A user's message (text, or an attachment with its caption) or button press.
    User {
        /// The message for the service.
        inbound: Inbound,
        /// The callback query to answer, for a button press.
        callback: Option<String>,
    },
    /// Text typed in a ticket's forum topic in the staff supergroup.
    StaffText {
        /// The topic.
        topic: i32,
        /// Who wrote.
        from: Person,
        /// What they wrote.
        text: String,
        /// Their message, quoted by a refusal.
        message_id: i32,
    },
    /// A staff button pressed: Claim / Resolve / Release, or a label after a resolve.
    StaffButton {
        /// The callback query to answer.
        callback: String,
        /// Who pressed.
        from: Person,
        /// The button's payload (`staff:claim:7`).
        payload: String,
    },
    /// Nothing for Kefu (a group message not addressed to the bot, a bot's own message…).
    Ignore,
}

/// Someone on Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their user id.
    pub id: u64,
    /// Their full name.
    pub name: String,
    /// The language their client uses, when it is one Kefu speaks.
    pub lang: Option<Lang>,
}

impl Person {
    fn of(user: &User) -> Person {
        Person {
            id: user.id.0,
            name: user.full_name(),
            lang: user
                .language_code
                .as_deref()
                .and_then(kefu_core::staff::lang_of_locale),
        }
    }
}

/// Classifies an update: the whole of what the adapter knows about Telegram's update types.
pub fn classify(update: &Update, me: &Me, config: &TelegramConfig) -> Incoming {
    match &update.kind {
        UpdateKind::Message(m) => classify_message(m, me, config),
        UpdateKind::CallbackQuery(q) => classify_callback(q),
        _ => Incoming::Ignore,
    }
}

fn classify_message(msg: &Message, me: &Me, config: &TelegramConfig) -> Incoming {
    let Some(from) = msg.from.as_ref() else {
        return Incoming::Ignore;
    };
    if from.is_bot {
        return Incoming::Ignore;
    }
    if config.staff_chat_id == Some(msg.chat.id.0) {
        return match (msg.thread_id, msg.text()) {
            (Some(thread), Some(text)) if !text.trim().is_empty() => Incoming::StaffText {
                topic: thread.0.0,
                from: Person::of(from),
                text: text.to_owned(),
                message_id: msg.id.0,
            },
            _ => Incoming::Ignore,
        };
    }
    let attachments = attachments(msg);
    let written = msg.text().or(msg.caption()).unwrap_or_default();
    if written.is_empty() && attachments.is_empty() {
        // A service message (member joined, pinned…): nothing anyone wrote.
        return Incoming::Ignore;
    }
    let text = if msg.chat.is_private() {
        written.to_owned()
    } else {
        let replied_to_bot = msg
            .reply_to_message()
            .and_then(|m| m.from.as_ref())
            .is_some_and(|u| u.id == me.user.id);
        match strip_mention(written, me.username()) {
            Some(rest) => rest,
            None if replied_to_bot => written.to_owned(),
            None => return Incoming::Ignore,
        }
    };
    Incoming::User {
        inbound: Inbound {
            conversation: conversation(msg.chat.id.0, from),
            user_name: from.full_name(),
            platform_message_id: msg.id.0.to_string(),
            text,
            at: msg.date,
            attachments,
            pressed: false,
        },
        callback: None,
    }
}

fn classify_callback(q: &CallbackQuery) -> Incoming {
    let data = q.data.as_deref().unwrap_or_default();
    if data.starts_with("staff:") {
        return Incoming::StaffButton {
            callback: q.id.0.clone(),
            from: Person::of(&q.from),
            payload: data.to_owned(),
        };
    }
    let chat = q
        .message
        .as_ref()
        .map_or(q.from.id.0 as i64, |m| m.chat().id.0);
    Incoming::User {
        inbound: Inbound {
            conversation: conversation(chat, &q.from),
            user_name: q.from.full_name(),
            platform_message_id: format!("cb:{}", q.id.0),
            text: data.to_owned(),
            at: Utc::now(),
            attachments: Vec::new(),
            pressed: true,
        },
        callback: Some(q.id.0.clone()),
    }
}

/// What a message carries besides text.
fn attachments(msg: &Message) -> Vec<Attachment> {
    let kind = if msg.photo().is_some() {
        Some(AttachmentKind::Photo)
    } else if msg.video().is_some() || msg.animation().is_some() || msg.video_note().is_some() {
        Some(AttachmentKind::Video)
    } else if msg.voice().is_some() || msg.audio().is_some() {
        Some(AttachmentKind::Audio)
    } else if msg.document().is_some() {
        Some(AttachmentKind::Document)
    } else if msg.sticker().is_some() {
        Some(AttachmentKind::Sticker)
    } else if msg.location().is_some() || msg.contact().is_some() || msg.poll().is_some() {
        Some(AttachmentKind::Other)
    } else {
        None
    };
    let name = msg.document().and_then(|d| d.file_name.clone());
    kind.map(|kind| Attachment {
        kind,
        name,
        // A Telegram file URL carries the bot's token: never handed on.
        url: None,
    })
    .into_iter()
    .collect()
}

fn conversation(chat: i64, from: &User) -> ConversationRef {
    ConversationRef {
        platform: PLATFORM.to_owned(),
        chat_id: chat.to_string(),
        user_id: from.id.0.to_string(),
    }
}

/// The text without `@username` (case-insensitive, a whole mention), or `None` if the bot is not
/// mentioned. A bare mention becomes "hello".
pub fn strip_mention(text: &str, username: &str) -> Option<String> {
    let needle = format!("@{}", username.to_lowercase());
    let lower = text.to_lowercase();
    // Lowercasing may change byte lengths outside ASCII: search on ASCII-folded text instead.
    if lower.len() != text.len() {
        let folded = text.to_ascii_lowercase();
        return strip_at(text, &folded, &needle);
    }
    strip_at(text, &lower, &needle)
}

fn strip_at(text: &str, folded: &str, needle: &str) -> Option<String> {
    let mut from = 0;
    while let Some(pos) = folded[from..].find(needle) {
        let start = from + pos;
        let end = start + needle.len();
        let boundary = folded[end..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary {
            let after = text[end..]
                .strip_prefix(',')
                .or_else(|| text[end..].strip_prefix('，'))
                .unwrap_or(&text[end..]);
            let rest = format!("{}{}", &text[..start], after);
            let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
            let rest = rest.trim_matches(|c: char| c == ',' || c == '，' || c.is_whitespace());
            return Some(if rest.is_empty() {
                "hello".to_owned()
            } else {
                rest.to_owned()
            });
        }
        from = end;
    }
    None
}

/// What became of an update.
pub(crate) enum Settled {
    /// Stored (or nothing to store): confirm it.
    Done,
    /// The database is unavailable: confirm nothing from here on; fetch it again later.
    Retry,
}

/// An update received by the webhook server, with where to say whether it was handled.
type WebhookUpdate = (Update, tokio::sync::oneshot::Sender<bool>);

#[derive(Clone)]
struct WebhookState {
    secret: crate::Secret,
    updates: tokio::sync::mpsc::Sender<WebhookUpdate>,
}

/// The webhook route: the secret header is checked, the update handed to the adapter (one at a
/// time, in order), and 200 returned only once it is stored — otherwise Telegram retries.
async fn webhook_route(
    axum::extract::State(state): axum::extract::State<WebhookState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok());
    if given != Some(state.secret.expose()) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(update) = serde_json::from_slice::<Update>(&body) else {
        // Unparseable: retrying would not help.
        tracing::warn!(
            bytes = body.len(),
            "telegram: an unreadable webhook update was dropped"
        );
        return StatusCode::OK;
    };
    let (done, handled) = tokio::sync::oneshot::channel();
    if state.updates.send((update, done)).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match handled.await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl Adapter<'_> {
    /// The key of this bot's confirmed update offset in the database.
    fn offset_key(&self) -> String {
        format!("telegram:offset:{}", self.me.user.id.0)
    }

    /// Long polling until shutdown.
    pub(crate) async fn poll(&self, mut shutdown: watch::Receiver<bool>) {
        // A webhook left set by an earlier deployment makes getUpdates fail with 409.
        if let Err(e) = self.bot.delete_webhook().await {
            tracing::warn!(error = %self.hide(&e), "telegram: deleteWebhook failed");
        }
        let mut offset: i32 = match self
            .service
            .store()
            .platform_state(&self.offset_key())
            .await
        {
            Ok(Some(v)) => v.parse().unwrap_or(0),
            _ => 0,
        };
        // Updates settled but not yet confirmed (a batch fetched again after another chat's
        // update failed): not handled twice.
        let mut settled = std::collections::HashSet::new();
        while !stopping(&shutdown) {
            let request = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(POLL_TIMEOUT_SECS)
                .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
            let result = tokio::select! {
                r = request.send() => r,
                _ = shutdown.changed() => break,
            };
            let updates = match result {
                Ok(updates) => updates,
                Err(e) => {
                    let wait = match &e {
                        RequestError::RetryAfter(s) => s.duration(),
                        _ => Duration::from_secs(1),
                    };
                    tracing::warn!(error = %self.hide(&e), "telegram: getUpdates failed");
                    if pause(&mut shutdown, wait).await {
                        break;
                    }
                    continue;
                }
            };
            let before = offset;
            let (next, retry) = self.settle_batch(&updates, &mut settled).await;
            if let Some(next) = next {
                offset = next;
            }
            settled.retain(|id| *id >= offset);
            if offset != before
                && let Err(e) = self
                    .service
                    .store()
                    .set_platform_state(&self.offset_key(), &offset.to_string(), Utc::now())
                    .await
            {
                tracing::warn!(error = %kefu_service::error_chain(&e), "telegram: cannot save the update offset");
            }
            if retry && pause(&mut shutdown, Duration::from_secs(1)).await {
                break;
            }
        }
        if offset != 0 {
            // Confirm what was handled, so a restart doesn't fetch it again (harmless if it did).
            let _ = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(0)
                .limit(1)
                .await;
        }
    }

    /// Settles a `getUpdates` batch: each chat's updates in order, different chats at once (up to
    /// [`LANES_AT_ONCE`]), so one slow chat — or the hundredth update of a batch — does not wait
    /// for all the others. A chat whose update cannot be stored now stops there (its later updates
    /// must not overtake it). Returns the offset to confirm — past the batch when everything was
    /// settled, else the first update to fetch again — and whether one must be retried. Updates
    /// settled after that point are remembered in `settled`, and skipped when fetched again.
    async fn settle_batch(
        &self,
        updates: &[Update],
        settled: &mut std::collections::HashSet<i32>,
    ) -> (Option<i32>, bool) {
        use futures_util::StreamExt;
        let mut lanes: Vec<(Option<i64>, Vec<&Update>)> = Vec::new();
        for update in updates {
            let key = update.chat().map(|c| c.id.0);
            match lanes.iter_mut().find(|(k, _)| *k == key) {
                Some((_, lane)) => lane.push(update),
                None => lanes.push((key, vec![update])),
            }
        }
        let already: &std::collections::HashSet<i32> = settled;
        let outcomes: Vec<(Vec<i32>, Option<i32>)> = futures_util::stream::iter(lanes)
            .map(|(_, lane)| async move {
                let mut done = Vec::new();
                for update in lane {
                    let id = update.id.0 as i32;
                    if already.contains(&id) {
                        continue;
                    }
                    match self.settle(update).await {
                        Settled::Done => done.push(id),
                        Settled::Retry => return (done, Some(id)),
                    }
                }
                (done, None)
            })
            .buffer_unordered(LANES_AT_ONCE)
            .collect()
            .await;
        let first_retry = outcomes.iter().filter_map(|(_, r)| *r).min();
        settled.extend(outcomes.into_iter().flat_map(|(done, _)| done));
        match first_retry {
            Some(id) => (Some(id), true),
            None => (
                updates
                    .iter()
                    .map(|u| (u.id.0 as i32).saturating_add(1))
                    .max(),
                false,
            ),
        }
    }

    /// Handles one update and says whether it may be confirmed.
    pub(crate) async fn settle(&self, update: &Update) -> Settled {
        let incoming = classify(update, &self.me, &self.config);
        let result = match incoming {
            Incoming::Ignore => Ok(()),
            Incoming::User { inbound, callback } => self.on_user(&inbound, callback).await,
            Incoming::StaffText {
                topic,
                from,
                text,
                message_id,
            } => self.on_staff_text(topic, &from, &text, message_id).await,
            Incoming::StaffButton {
                callback,
                from,
                payload,
            } => self.on_staff_button(&callback, &from, &payload).await,
        };
        match result {
            Ok(()) => Settled::Done,
            Err(e) if e.is_transient() => {
                tracing::warn!(update = update.id.0, error = %kefu_service::error_chain(&e), "telegram: update not stored, will retry");
                Settled::Retry
            }
            Err(e) => {
                let reason = kefu_service::error_chain(&e);
                let chat = update.chat().map(|c| c.id.0.to_string());
                match self
                    .service
                    .record_unstorable(
                        PLATFORM,
                        &update.id.0.to_string(),
                        chat.as_deref(),
                        &reason,
                        Utc::now(),
                    )
                    .await
                {
                    Ok(()) => Settled::Done,
                    // Not even the record could be written: the database is at fault after all.
                    Err(_) => Settled::Retry,
                }
            }
        }
    }

    /// Webhook mode until shutdown.
    pub(crate) async fn serve_webhook(
        &self,
        webhook: &WebhookConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), crate::TelegramError> {
        use crate::TelegramError;
        if webhook.secret.is_empty() {
            return Err(TelegramError::Webhook(
                "a secret is required: set KEFU__TELEGRAM__WEBHOOK_SECRET".to_owned(),
            ));
        }
        let url = url::Url::parse(&webhook.url)?;
        let path = if url.path().is_empty() {
            "/".to_owned()
        } else {
            url.path().to_owned()
        };
        let (tx, mut updates) = tokio::sync::mpsc::channel::<WebhookUpdate>(64);
        let app = axum::Router::new()
            .route(&path, axum::routing::post(webhook_route))
            .with_state(WebhookState {
                secret: webhook.secret.clone(),
                updates: tx,
            });
        let listener = tokio::net::TcpListener::bind(&webhook.listen)
            .await
            .map_err(|e| TelegramError::Webhook(format!("listening on {}: {e}", webhook.listen)))?;
        let mut server_stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let stop = async move {
                while !stopping(&server_stop) {
                    if server_stop.changed().await.is_err() {
                        break;
                    }
                }
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "telegram: webhook server failed");
            }
        });
        self.bot
            .set_webhook(url)
            .secret_token(webhook.secret.expose())
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
            .await
            .map_err(|e| TelegramError::Webhook(format!("setWebhook: {}", self.hide(&e))))?;
        let mut shutdown = shutdown;
        loop {
            let next = tokio::select! {
                u = updates.recv() => u,
                _ = shutdown.changed() => None,
            };
            let Some((update, done)) = next else {
                break;
            };
            let stored = matches!(self.settle(&update).await, Settled::Done);
            let _ = done.send(stored);
            if stopping(&shutdown) {
                break;
            }
        }
        let _ = server.await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found_and_stripped() {
        assert_eq!(
            strip_mention("@KefuBot 提币失败了怎么办", "kefubot").as_deref(),
            Some("提币失败了怎么办")
        );
        assert_eq!(
            strip_mention("hey @kefubot, deposit?", "KefuBot").as_deref(),
            Some("hey deposit?")
        );
        assert_eq!(strip_mention("@kefubot2 hi", "kefubot"), None);
        assert_eq!(strip_mention("no mention", "kefubot"), None);
        assert_eq!(
            strip_mention("@kefubot", "kefubot").as_deref(),
            Some("hello")
        );
    }
}
