//! Kefu's Telegram adapter.
//!
//! - **Long polling** with our own `getUpdates` loop (not teloxide's dispatcher) so the update offset
//!   is advanced only after [`Service::handle_inbound`] returned: the message is stored first, so a
//!   process killed mid-batch loses nothing, and the idempotent store makes the re-delivered update
//!   a no-op.
//! - **Private chats**: every text message goes to the service. **Groups**: only messages that
//!   mention the bot (`@username`, stripped) or reply to it; the answer replies to that message.
//! - **Buttons**: inline keyboards whose `callback_data` is the button's payload; a press is answered
//!   and then handled as the user's message (`platform_message_id` = `cb:` + the callback id).
//! - **Delivery** through the outbox (one worker loop): plain text (no parse mode, so `_*[]()` always
//!   render), split at Telegram's 4,096-character limit on line boundaries, `retry_after` honoured.
//! - **Staff forum** (`staff_chat_id`): a forum topic per open ticket with a summary post and Claim /
//!   Resolve buttons; staff text in a topic is relayed to the user; new user lines are relayed to
//!   the topic; resolving closes the topic.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kefu_core::model::{Button, ConversationRef, Inbound, Outgoing, Sender, Ticket};
use kefu_core::render::{render_transcript, split_text, ticket_summary, ticket_title, truncate};
use kefu_service::{Handled, Service, ServiceError, StaffOutcome};
use teloxide::RequestError;
use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::Settings as ThrottleSettings;
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Me,
    Message, MessageId, ReplyParameters, ThreadId, Update, UpdateKind, User,
};
use tokio::sync::watch;

/// The platform name stored with conversations and staff threads.
pub const PLATFORM: &str = "telegram";

/// Telegram's message length limit (UTF-16 code units).
pub const MESSAGE_LIMIT: usize = 4096;

/// A summary post longer than this sends the transcript as a file instead.
const SUMMARY_LIMIT: usize = 3500;

/// How long one `getUpdates` waits for news.
const POLL_TIMEOUT_SECS: u32 = 10;

/// How often the delivery worker looks at the outbox and the ticket queue.
const WORKER_TICK: Duration = Duration::from_millis(200);

pub use kefu_core::adapter::Secret;

/// The adapter's settings.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The BotFather token.
    pub token: Secret,
    /// The Bot API base URL (`https://api.telegram.org`, a self-hosted server or a test fake).
    pub api_url: String,
    /// The staff supergroup (with topics), if any.
    pub staff_chat_id: Option<i64>,
    /// Telegram user ids allowed to claim, resolve and reply.
    pub staff_user_ids: Vec<u64>,
    /// Receive updates by webhook instead of long polling.
    pub webhook: Option<WebhookConfig>,
}

/// Webhook mode: Telegram POSTs updates to `url`, which a reverse proxy or load balancer forwards
/// to `listen`; requests without the secret token header are refused.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The public HTTPS URL registered with `setWebhook`; its path is the route served.
    pub url: String,
    /// The local address to listen on, e.g. `0.0.0.0:8443`.
    pub listen: String,
    /// Sent by Telegram in `X-Telegram-Bot-Api-Secret-Token` (1–256 of `A-Z a-z 0-9 _ -`).
    pub secret: Secret,
}

/// Why the adapter stopped.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// `api_url` is not a URL.
    #[error("telegram.api_url is not a valid URL: {0}")]
    ApiUrl(#[from] url::ParseError),
    /// The bot could not identify itself (wrong token, unreachable API).
    #[error("cannot reach the Telegram Bot API (getMe): {0}")]
    GetMe(String),
    /// The webhook could not be set up.
    #[error("webhook: {0}")]
    Webhook(String),
}

/// Runs the adapter until `shutdown` turns true (or its sender is dropped): polling and delivery
/// stop between messages, never in the middle of one.
pub async fn run(
    service: &Service,
    config: TelegramConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TelegramError> {
    let url = url::Url::parse(&config.api_url)?;
    let plain = Bot::new(config.token.expose()).set_api_url(url);
    let me = plain
        .get_me()
        .await
        .map_err(|e| TelegramError::GetMe(hide(&e.to_string(), &config.token)))?;
    tracing::info!(username = %me.username(), "telegram: connected");
    // Throttle keeps within Telegram's per-chat limits; retries are ours (the outbox honours
    // `retry_after`), so a 429 never blocks the worker.
    let bot = Throttle::spawn_with_settings(plain, ThrottleSettings::default().no_retry());
    let adapter = Adapter {
        bot,
        service,
        config,
        me,
        topics: Mutex::new(HashMap::new()),
        topic_failures: Mutex::new(HashMap::new()),
    };
    match adapter.config.webhook.clone() {
        None => {
            // A webhook left set by an earlier deployment makes getUpdates fail with 409.
            if let Err(e) = adapter.bot.delete_webhook().await {
                tracing::warn!(error = %adapter.hide(&e), "telegram: deleteWebhook failed");
            }
            tokio::join!(
                adapter.poll_loop(shutdown.clone()),
                adapter.worker_loop(shutdown)
            );
        }
        Some(webhook) => {
            let (updates, server) = adapter.start_webhook(&webhook, shutdown.clone()).await?;
            tokio::join!(
                adapter.webhook_loop(updates, shutdown.clone()),
                adapter.worker_loop(shutdown)
            );
            let _ = server.await;
        }
    }
    tracing::info!("telegram: stopped");
    Ok(())
}

/// What the worker remembers about a ticket's topic.
#[derive(Debug, Clone, Copy)]
struct Topic {
    thread: i32,
    /// The user's lines (in the ticket's transcript) already shown in the topic. Counted among the
    /// user's lines only: the transcript is ordered by time, and a user line stamped with
    /// Telegram's whole-second date can sort before a bot line written a moment earlier.
    relayed: usize,
}

struct Adapter<'a> {
    bot: Throttle<Bot>,
    service: &'a Service,
    config: TelegramConfig,
    me: Me,
    topics: Mutex<HashMap<i64, Topic>>,
    /// Tickets whose topic could not be created, and when: retried after [`TOPIC_RETRY`].
    topic_failures: Mutex<HashMap<i64, std::time::Instant>>,
}

/// How long to wait before trying again to create a topic that failed (missing admin rights…).
const TOPIC_RETRY: Duration = Duration::from_secs(60);

/// The staff forum is synchronised every this many worker ticks.
const FORUM_EVERY: u32 = 3;

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Sleeps `d` or until shutdown; `true` when shutting down.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => stopping(shutdown),
        _ = shutdown.changed() => true,
    }
}

/// Removes the token from an error text (network errors may quote the request URL).
fn hide(text: &str, token: &Secret) -> String {
    token.hide_in(text)
}

#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] kefu_store::StoreError),
}

/// An update received by the webhook server, with where to say whether it was handled.
type WebhookUpdate = (Update, tokio::sync::oneshot::Sender<bool>);

#[derive(Clone)]
struct WebhookState {
    secret: Secret,
    updates: tokio::sync::mpsc::Sender<WebhookUpdate>,
}

/// The webhook route: the secret header is checked, the update handed to the adapter (one at a
/// time, in order), and 200 returned only once it is handled — otherwise Telegram retries.
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
    async fn start_webhook(
        &self,
        webhook: &WebhookConfig,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<
        (
            tokio::sync::mpsc::Receiver<WebhookUpdate>,
            tokio::task::JoinHandle<()>,
        ),
        TelegramError,
    > {
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
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let app = axum::Router::new()
            .route(&path, axum::routing::post(webhook_route))
            .with_state(WebhookState {
                secret: webhook.secret.clone(),
                updates: tx,
            });
        let listener = tokio::net::TcpListener::bind(&webhook.listen)
            .await
            .map_err(|e| TelegramError::Webhook(format!("listening on {}: {e}", webhook.listen)))?;
        let server = tokio::spawn(async move {
            let stop = async move {
                while !stopping(&shutdown) {
                    if shutdown.changed().await.is_err() {
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
        Ok((rx, server))
    }

    async fn webhook_loop(
        &self,
        mut updates: tokio::sync::mpsc::Receiver<WebhookUpdate>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next = tokio::select! {
                u = updates.recv() => u,
                _ = shutdown.changed() => None,
            };
            let Some((update, done)) = next else {
                break;
            };
            let ok = match self.handle_update(&update).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, update = update.id.0, "telegram: update not handled");
                    false
                }
            };
            let _ = done.send(ok);
            if stopping(&shutdown) {
                break;
            }
        }
    }

    async fn poll_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let mut offset: i32 = 0;
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
            for update in updates {
                match self.handle_update(&update).await {
                    Ok(()) => offset = (update.id.0 as i32).saturating_add(1),
                    Err(e) => {
                        // Not confirmed: fetched again after a pause.
                        tracing::error!(error = %e, update = update.id.0, "telegram: update not handled");
                        pause(&mut shutdown, Duration::from_secs(1)).await;
                        break;
                    }
                }
                if stopping(&shutdown) {
                    break;
                }
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

    fn hide(&self, e: &RequestError) -> String {
        hide(&e.to_string(), &self.config.token)
    }

    fn is_staff(&self, user: &User) -> bool {
        self.config.staff_user_ids.contains(&user.id.0)
    }

    async fn handle_update(&self, update: &Update) -> Result<(), HandleError> {
        match &update.kind {
            UpdateKind::Message(m) => self.on_message(m).await,
            UpdateKind::CallbackQuery(q) => self.on_callback(q).await,
            _ => Ok(()),
        }
    }

    async fn on_message(&self, msg: &Message) -> Result<(), HandleError> {
        let Some(from) = msg.from.as_ref() else {
            return Ok(());
        };
        if from.is_bot {
            return Ok(());
        }
        if self.config.staff_chat_id == Some(msg.chat.id.0) {
            return self.on_staff_message(msg, from).await;
        }
        let private = msg.chat.is_private();
        let Some(text) = msg.text() else {
            if private {
                self.on_non_text(msg, from).await?;
            }
            return Ok(());
        };
        let text = if private {
            text.to_owned()
        } else {
            let replied_to_bot = msg
                .reply_to_message()
                .and_then(|m| m.from.as_ref())
                .is_some_and(|u| u.id == self.me.user.id);
            match strip_mention(text, self.me.username()) {
                Some(rest) => rest,
                None if replied_to_bot => text.to_owned(),
                None => return Ok(()),
            }
        };
        let inbound = Inbound {
            conversation: conversation(msg.chat.id.0, from),
            user_name: from.full_name(),
            platform_message_id: msg.id.0.to_string(),
            text,
            at: msg.date,
            attachments: Vec::new(),
            pressed: false,
        };
        self.inbound(&inbound).await
    }

    async fn inbound(&self, inbound: &Inbound) -> Result<(), HandleError> {
        match self.service.handle_inbound(inbound, Utc::now()).await? {
            Handled::Duplicate => {
                tracing::debug!(message = %inbound.platform_message_id, "telegram: duplicate update")
            }
            Handled::Processed { delete_message, .. } => {
                if let Some(id) = delete_message.and_then(|id| id.parse::<i32>().ok())
                    && let Ok(chat) = inbound.conversation.chat_id.parse::<i64>()
                {
                    // The bot may lack the right (groups): the warning was sent anyway.
                    if let Err(e) = self.bot.delete_message(ChatId(chat), MessageId(id)).await {
                        tracing::info!(error = %self.hide(&e), "telegram: could not delete a message carrying a secret");
                    }
                }
            }
        }
        Ok(())
    }

    /// A photo, sticker, voice or file in a private chat: forwarded to the ticket's topic while
    /// staff hold the chat, otherwise a clear reply in the user's language.
    async fn on_non_text(&self, msg: &Message, from: &User) -> Result<(), HandleError> {
        let zh = from
            .language_code
            .as_deref()
            .is_some_and(|l| l.to_ascii_lowercase().starts_with("zh"));
        let cref = conversation(msg.chat.id.0, from);
        let store = self.service.store();
        if let Some(staff_chat) = self.config.staff_chat_id
            && let Some(ticket) = store.open_ticket_for(&cref).await?
            && let Some(thread) = store.staff_thread(ticket.id, PLATFORM).await?
            && let Ok(thread) = thread.parse::<i32>()
        {
            let forwarded = self
                .bot
                .forward_message(ChatId(staff_chat), msg.chat.id, msg.id)
                .message_thread_id(ThreadId(MessageId(thread)))
                .await;
            if forwarded.is_ok() {
                let text = if zh {
                    "已转交给客服人员。"
                } else {
                    "Sent to the support team."
                };
                self.send_direct(msg.chat.id, text).await;
                return Ok(());
            }
        }
        let text = if zh {
            "抱歉，我只能读懂文字消息。请用文字描述您的问题；如需发送截图或文件，请先输入“转人工”联系客服。"
        } else {
            "Sorry, I can only read text messages. Please describe your question in words; to send a screenshot or a file, type \"human\" to reach our support team first."
        };
        self.send_direct(msg.chat.id, text).await;
        Ok(())
    }

    async fn send_direct(&self, chat: ChatId, text: &str) {
        if let Err(e) = self.bot.send_message(chat, text).await {
            tracing::warn!(error = %self.hide(&e), "telegram: sending a notice failed");
        }
    }

    async fn on_callback(&self, q: &CallbackQuery) -> Result<(), HandleError> {
        let data = q.data.as_deref().unwrap_or_default();
        if let Some(action) = data.strip_prefix("staff:") {
            return self.on_staff_button(q, action).await;
        }
        if let Err(e) = self.bot.answer_callback_query(q.id.clone()).await {
            tracing::debug!(error = %self.hide(&e), "telegram: answerCallbackQuery failed");
        }
        if data.is_empty() {
            return Ok(());
        }
        let chat = q
            .message
            .as_ref()
            .map_or(q.from.id.0 as i64, |m| m.chat().id.0);
        let inbound = Inbound {
            conversation: conversation(chat, &q.from),
            user_name: q.from.full_name(),
            platform_message_id: format!("cb:{}", q.id.0),
            text: data.to_owned(),
            at: Utc::now(),
            attachments: Vec::new(),
            pressed: true,
        };
        self.inbound(&inbound).await
    }

    async fn answer(&self, q: &CallbackQuery, text: &str, alert: bool) {
        let mut request = self.bot.answer_callback_query(q.id.clone()).text(text);
        if alert {
            request = request.show_alert(true);
        }
        if let Err(e) = request.await {
            tracing::debug!(error = %self.hide(&e), "telegram: answerCallbackQuery failed");
        }
    }

    async fn on_staff_button(&self, q: &CallbackQuery, action: &str) -> Result<(), HandleError> {
        if !self.is_staff(&q.from) {
            self.answer(q, "Only support staff can do this.", true)
                .await;
            return Ok(());
        }
        let (verb, id) = action.split_once(':').unwrap_or((action, ""));
        let Ok(ticket_id) = id.parse::<i64>() else {
            self.answer(q, "Unknown ticket.", true).await;
            return Ok(());
        };
        let staff = staff_name(&q.from);
        let now = Utc::now();
        let outcome = match verb {
            "claim" => self.service.claim(ticket_id, &staff, now).await?,
            "resolve" => self.service.resolve(ticket_id, &staff, now).await?,
            _ => {
                self.answer(q, "Unknown action.", true).await;
                return Ok(());
            }
        };
        let text = match (&outcome, verb) {
            (StaffOutcome::Done, "claim") => "You hold this ticket now.".to_owned(),
            (StaffOutcome::Done, _) => "Resolved.".to_owned(),
            (StaffOutcome::HeldBy(other), _) => format!("{other} holds this ticket."),
            (StaffOutcome::NotOpen, "resolve") => {
                "Claim the ticket before resolving it (or it is closed).".to_owned()
            }
            (StaffOutcome::NotOpen, _) => "This ticket is closed.".to_owned(),
            (StaffOutcome::NotFound, _) => "No such ticket.".to_owned(),
        };
        self.answer(q, &text, outcome != StaffOutcome::Done).await;
        if outcome == StaffOutcome::Done
            && let Some(staff_chat) = self.config.staff_chat_id
            && let Some(thread) = self
                .service
                .store()
                .staff_thread(ticket_id, PLATFORM)
                .await?
                .and_then(|t| t.parse::<i32>().ok())
        {
            let thread = ThreadId(MessageId(thread));
            if verb == "claim" {
                let notice = format!("{staff} claimed this ticket.");
                let _ = self
                    .bot
                    .send_message(ChatId(staff_chat), notice)
                    .message_thread_id(thread)
                    .await;
            } else {
                self.relay_new_lines(staff_chat, ticket_id).await?;
                if let Ok(mut topics) = self.topics.lock() {
                    topics.remove(&ticket_id);
                }
                if let Err(e) = self.bot.close_forum_topic(ChatId(staff_chat), thread).await {
                    tracing::warn!(error = %self.hide(&e), "telegram: closeForumTopic failed");
                }
            }
        }
        Ok(())
    }

    /// A message in the staff group: text in a ticket's topic from a staff member goes to the user.
    async fn on_staff_message(&self, msg: &Message, from: &User) -> Result<(), HandleError> {
        let (Some(thread), Some(text)) = (msg.thread_id, msg.text()) else {
            return Ok(());
        };
        if !self.is_staff(from) {
            return Ok(());
        }
        let store = self.service.store();
        let Some(ticket) = store
            .ticket_by_staff_thread(PLATFORM, &thread.0.0.to_string())
            .await?
        else {
            return Ok(());
        };
        let staff = staff_name(from);
        let notice = match self
            .service
            .reply(ticket.id, &staff, text, Utc::now())
            .await?
        {
            StaffOutcome::Done => None,
            StaffOutcome::HeldBy(other) => Some(format!(
                "{other} holds this ticket: your message was not sent to the user."
            )),
            StaffOutcome::NotOpen | StaffOutcome::NotFound => {
                Some("This ticket is closed: your message was not sent to the user.".to_owned())
            }
        };
        if let Some(notice) = notice {
            let _ = self
                .bot
                .send_message(msg.chat.id, notice)
                .message_thread_id(thread)
                .reply_parameters(ReplyParameters::new(msg.id).allow_sending_without_reply())
                .await;
        }
        Ok(())
    }

    async fn worker_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let mut tick: u32 = 0;
        loop {
            tick = tick.wrapping_add(1);
            if let Err(e) = self.deliver(&shutdown).await {
                tracing::error!(error = %e, "telegram: delivery failed");
            }
            if stopping(&shutdown) {
                break;
            }
            if let Some(staff_chat) = self.config.staff_chat_id
                && tick % FORUM_EVERY == 1
                && let Err(e) = self.sync_forum(staff_chat, &shutdown).await
            {
                tracing::error!(error = %e, "telegram: staff forum sync failed");
            }
            if pause(&mut shutdown, WORKER_TICK).await {
                break;
            }
        }
    }

    /// Sends what the outbox holds for Telegram; stops between messages when shutting down.
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
                    let retry_at = match &e {
                        RequestError::RetryAfter(s) => {
                            now + chrono::TimeDelta::from_std(s.duration())
                                .unwrap_or(chrono::TimeDelta::seconds(1))
                        }
                        _ => now + backoff(m.attempts),
                    };
                    let err = self.hide(&e);
                    tracing::warn!(error = %err, outbox = m.id, %retry_at, "telegram: sendMessage failed");
                    store.mark_failed(m.id, &err, retry_at).await?;
                    blocked.insert(chat, retry_at);
                }
            }
        }
        Ok(())
    }

    async fn send_outgoing(&self, out: &Outgoing) -> Result<(), RequestError> {
        let Ok(chat) = out.conversation.chat_id.parse::<i64>() else {
            // Not a Telegram chat id: nothing can ever deliver it.
            tracing::error!(chat = %out.conversation.chat_id, "telegram: outbox row with an invalid chat id");
            return Ok(());
        };
        let parts = split_text(&out.text, MESSAGE_LIMIT);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let mut request = self.bot.send_message(ChatId(chat), part);
            // In groups the answer quotes the question; private chats stay uncluttered.
            if i == 0
                && chat < 0
                && let Some(id) = out.reply_to.as_deref().and_then(|r| r.parse::<i32>().ok())
            {
                request = request.reply_parameters(
                    ReplyParameters::new(MessageId(id)).allow_sending_without_reply(),
                );
            }
            if i == last && !out.buttons.is_empty() {
                request = request.reply_markup(keyboard(&out.buttons));
            }
            request.await?;
        }
        Ok(())
    }

    /// Opens a topic for each open ticket that has none yet; relays new user lines; closes the
    /// topics of tickets that left the queue (resolved from the desk, cancelled).
    async fn sync_forum(
        &self,
        staff_chat: i64,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), HandleError> {
        let store = self.service.store();
        let open = store.open_tickets(Utc::now()).await?;
        let open_ids: HashSet<i64> = open.iter().map(|t| t.ticket.id).collect();
        for t in &open {
            if stopping(shutdown) {
                return Ok(());
            }
            match store.staff_thread(t.ticket.id, PLATFORM).await? {
                None => {
                    let recently_failed = self.topic_failures.lock().is_ok_and(|f| {
                        f.get(&t.ticket.id)
                            .is_some_and(|at| at.elapsed() < TOPIC_RETRY)
                    });
                    if recently_failed {
                        continue;
                    }
                    if let Err(e) = self.open_topic(staff_chat, &t.ticket).await {
                        tracing::warn!(error = %e, ticket = t.ticket.id, "telegram: cannot open a staff topic");
                        if let Ok(mut f) = self.topic_failures.lock() {
                            f.insert(t.ticket.id, std::time::Instant::now());
                        }
                    }
                }
                Some(thread) => {
                    let known = self
                        .topics
                        .lock()
                        .is_ok_and(|m| m.contains_key(&t.ticket.id));
                    if !known {
                        // Seen for the first time by this process: start relaying from here.
                        let relayed = user_lines(&store.ticket_transcript(t.ticket.id).await?);
                        if let (Ok(thread), Ok(mut topics)) =
                            (thread.parse::<i32>(), self.topics.lock())
                        {
                            topics.insert(t.ticket.id, Topic { thread, relayed });
                        }
                    } else {
                        self.relay_new_lines(staff_chat, t.ticket.id).await?;
                    }
                }
            }
        }
        let gone: Vec<(i64, Topic)> = match self.topics.lock() {
            Ok(mut topics) => {
                let ids: Vec<i64> = topics
                    .keys()
                    .filter(|id| !open_ids.contains(id))
                    .copied()
                    .collect();
                ids.into_iter()
                    .filter_map(|id| topics.remove(&id).map(|t| (id, t)))
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for (_, topic) in gone {
            let _ = self
                .bot
                .close_forum_topic(ChatId(staff_chat), ThreadId(MessageId(topic.thread)))
                .await;
        }
        Ok(())
    }

    async fn open_topic(&self, staff_chat: i64, ticket: &Ticket) -> Result<(), String> {
        let store = self.service.store();
        let name = topic_name(ticket);
        let topic = self
            .bot
            .create_forum_topic(ChatId(staff_chat), name)
            .await
            .map_err(|e| self.hide(&e))?;
        let thread = topic.thread_id;
        store
            .set_staff_thread(ticket.id, PLATFORM, &thread.0.0.to_string())
            .await
            .map_err(|e| e.to_string())?;
        let relayed = user_lines(
            &store
                .ticket_transcript(ticket.id)
                .await
                .map_err(|e| e.to_string())?,
        );
        if let Ok(mut topics) = self.topics.lock() {
            topics.insert(
                ticket.id,
                Topic {
                    thread: thread.0.0,
                    relayed,
                },
            );
        }
        let lines = store
            .transcript(&ticket.conversation)
            .await
            .map_err(|e| e.to_string())?;
        let header = ticket_summary(ticket);
        let transcript = render_transcript(&lines);
        let buttons = InlineKeyboardMarkup::new(vec![vec![
            InlineKeyboardButton::callback("Claim", format!("staff:claim:{}", ticket.id)),
            InlineKeyboardButton::callback("Resolve", format!("staff:resolve:{}", ticket.id)),
        ]]);
        let chat = ChatId(staff_chat);
        if header.len() + transcript.len() <= SUMMARY_LIMIT {
            self.bot
                .send_message(chat, format!("{header}\n\nTranscript:\n{transcript}"))
                .message_thread_id(thread)
                .reply_markup(buttons)
                .await
                .map_err(|e| self.hide(&e))?;
        } else {
            let file = InputFile::memory(transcript.into_bytes())
                .file_name(format!("transcript-{}.txt", ticket.code));
            self.bot
                .send_document(chat, file)
                .caption(truncate(&format!("{header}\n\nTranscript attached."), 1000))
                .message_thread_id(thread)
                .reply_markup(buttons)
                .await
                .map_err(|e| self.hide(&e))?;
        }
        Ok(())
    }

    /// Posts the user's lines written since the last relay into the ticket's topic (one message).
    async fn relay_new_lines(&self, staff_chat: i64, ticket_id: i64) -> Result<(), HandleError> {
        let Some(topic) = self
            .topics
            .lock()
            .ok()
            .and_then(|m| m.get(&ticket_id).copied())
        else {
            return Ok(());
        };
        let lines = self.service.store().ticket_transcript(ticket_id).await?;
        let users: Vec<_> = lines.iter().filter(|l| l.sender == Sender::User).collect();
        if users.len() <= topic.relayed {
            return Ok(());
        }
        let total = users.len();
        let new: Vec<String> = users[topic.relayed..]
            .iter()
            .map(|l| format!("👤 {}", l.text))
            .collect();
        if !new.is_empty() {
            for part in split_text(&new.join("\n"), MESSAGE_LIMIT) {
                if let Err(e) = self
                    .bot
                    .send_message(ChatId(staff_chat), part)
                    .message_thread_id(ThreadId(MessageId(topic.thread)))
                    .await
                {
                    // Not advanced: tried again next round.
                    tracing::warn!(error = %self.hide(&e), "telegram: relaying to a topic failed");
                    return Ok(());
                }
            }
        }
        if let Ok(mut topics) = self.topics.lock()
            && let Some(t) = topics.get_mut(&ticket_id)
        {
            t.relayed = total;
        }
        Ok(())
    }
}

fn user_lines(lines: &[kefu_core::model::TranscriptLine]) -> usize {
    lines.iter().filter(|l| l.sender == Sender::User).count()
}

fn conversation(chat: i64, from: &User) -> ConversationRef {
    ConversationRef {
        platform: PLATFORM.to_owned(),
        chat_id: chat.to_string(),
        user_id: from.id.0.to_string(),
    }
}

fn staff_name(user: &User) -> String {
    user.full_name()
}

fn keyboard(buttons: &[Button]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        buttons
            .iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.payload.clone()))
            .collect::<Vec<_>>(),
    ])
}

use kefu_core::adapter::backoff;

/// The topic title: [`ticket_title`] cut to the 128 characters Telegram allows.
pub fn topic_name(ticket: &Ticket) -> String {
    truncate(&ticket_title(ticket), 128)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let s = Secret::new("123:ABC");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(format!("{s}"), "***");
        let cfg = TelegramConfig {
            token: s,
            api_url: "http://x".into(),
            staff_chat_id: None,
            staff_user_ids: vec![],
            webhook: None,
        };
        assert!(!format!("{cfg:?}").contains("ABC"));
        assert_eq!(hide("GET /bot123:ABC/x", &cfg.token), "GET /bot***/x");
    }

    #[test]
    fn topic_names_are_cut_to_telegrams_limit() {
        let ticket = Ticket {
            id: 1,
            code: "K7XQ2M".to_owned(),
            conversation: ConversationRef {
                platform: PLATFORM.to_owned(),
                chat_id: "42".to_owned(),
                user_id: "42".to_owned(),
            },
            user_name: "Alice".to_owned(),
            intent: Some("x".repeat(300)),
            priority: kefu_core::model::Priority::Normal,
            status: kefu_core::model::TicketStatus::Queued,
            assignee: None,
            reason: "user asked for a human".to_owned(),
            details: vec![],
            created_at: Utc::now(),
            claimed_at: None,
            resolved_at: None,
        };
        let name = topic_name(&ticket);
        assert_eq!(name.chars().count(), 128);
        assert!(name.starts_with("K7XQ2M · normal · xxx"));
        assert!(name.ends_with('…'));
    }

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
