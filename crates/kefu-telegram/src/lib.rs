//! Kefu's Telegram adapter (teloxide): an edge that converts and nothing else.
//!
//! # Layout
//! - [`updates`]: receiving — our own `getUpdates` loop (the offset is confirmed only once every
//!   update of a batch is stored, or set aside as unstorable), or a webhook; each update is
//!   classified ([`updates::classify`]) into a user's message, a staff member's action, or nothing.
//! - [`users`]: a user's message or button press → [`kefu_core::model::Inbound`] for the service.
//! - [`staff`]: the staff supergroup — text in a ticket's forum topic and the Claim / Resolve /
//!   Release buttons → [`kefu_service::Service::staff_action`]; the label buttons of the post
//!   that follows a resolve → [`kefu_service::Service::label_from_button`].
//! - [`send`]: [`kefu_service::delivery::Deliver`] for Telegram — messages split at 4,096
//!   characters, inline keyboards, forum topics opened, posted to and closed, a user's photo
//!   forwarded into a topic. The service's delivery worker decides what to send, when, and what a
//!   failure means.
//!
//! # What it must not know
//! The store and the policy: the adapter asks the service (which ticket a topic mirrors, what a
//! staff action did) and every text it shows comes from `kefu-core`. No teloxide type leaves this
//! crate.

pub mod send;
pub mod staff;
pub mod updates;
pub mod users;

use std::time::Duration;

use kefu_service::Service;
use teloxide::prelude::*;
use teloxide::types::Me;
use tokio::sync::watch;

pub use kefu_core::adapter::Secret;

/// The platform name stored with conversations and staff threads.
pub const PLATFORM: &str = "telegram";

/// Telegram's message length limit (UTF-16 code units).
pub const MESSAGE_LIMIT: usize = 4096;

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
    /// Most messages a second overall, and at once (Telegram allows about 30 a second); `None`
    /// sends as fast as the API answers (a self-hosted Bot API server, a test fake).
    pub rate: Option<kefu_service::delivery::Rate>,
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

/// What every part of the adapter shares.
#[derive(Debug)]
pub(crate) struct Adapter<'a> {
    pub(crate) bot: Bot,
    pub(crate) service: &'a Service,
    pub(crate) config: TelegramConfig,
    pub(crate) me: Me,
}

/// Runs the adapter until `shutdown` turns true (or its sender is dropped): receiving and
/// delivery stop between messages, never in the middle of one.
pub async fn run(
    service: &Service,
    config: TelegramConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TelegramError> {
    let url = url::Url::parse(&config.api_url)?;
    let bot = Bot::new(config.token.expose()).set_api_url(url);
    let me = bot
        .get_me()
        .await
        .map_err(|e| TelegramError::GetMe(config.token.hide_in(&e.to_string())))?;
    tracing::info!(username = %me.username(), "telegram: connected");
    let adapter = Adapter {
        bot,
        service,
        config,
        me,
    };
    let sender = send::Sender::new(&adapter);
    let receiving = async {
        match adapter.config.webhook.clone() {
            None => {
                // One poller per token across every instance: whoever holds the lease.
                let lease = format!("telegram:poll:{}", adapter.me.user.id.0);
                service
                    .lead(&lease, shutdown.clone(), |stop| adapter.poll(stop))
                    .await;
                Ok(())
            }
            Some(webhook) => adapter.serve_webhook(&webhook, shutdown.clone()).await,
        }
    };
    let (received, ()) = tokio::join!(
        receiving,
        kefu_service::delivery::run(service, &sender, shutdown.clone())
    );
    tracing::info!("telegram: stopped");
    received
}

impl Adapter<'_> {
    /// An error text without the token (network errors may quote the request URL).
    pub(crate) fn hide(&self, e: &teloxide::RequestError) -> String {
        self.config.token.hide_in(&e.to_string())
    }
}

pub(crate) fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Sleeps `d` or until shutdown; `true` when shutting down.
pub(crate) async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => stopping(shutdown),
        _ = shutdown.changed() => true,
    }
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
            rate: None,
        };
        assert!(!format!("{cfg:?}").contains("ABC"));
        assert_eq!(cfg.token.hide_in("GET /bot123:ABC/x"), "GET /bot***/x");
    }
}
