//! Kefu's Discord adapter (serenity).
//!
//! - **Gateway events** arrive in serenity's handler, which only forwards them, in order, to one
//!   processing loop ([`events`]); component interactions are acknowledged right there, well
//!   within Discord's three-second deadline. Messages are deduplicated by the store (platform
//!   message id), so an event replayed after a gateway RESUME is a no-op.
//! - **Users** ([`users`]): every DM; in server channels only messages that mention the bot or reply
//!   to it, answered as a reply. When a channel conversation goes on (a second message within
//!   [`THREAD_AFTER`]), it moves into a thread started from the user's message, so a busy
//!   channel isn't flooded; the user then talks in the thread without mentioning the bot.
//! - **Delivery** ([`delivery`]) through the outbox: messages split at 2,000 characters, buttons as
//!   components, `allowed_mentions` empty so nothing a user typed ("@everyone") can ping.
//! - **Staff** ([`staff`]): a private thread in the staff channel per open ticket (from any
//!   platform), summary + transcript + Claim / Resolve buttons; staff text in a claimed thread is
//!   relayed to the user; resolving archives and locks the thread.

mod delivery;
mod events;
mod staff;
mod users;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kefu_service::{Service, ServiceError};
use serenity::all::{ChannelId, GatewayIntents, RoleId, UserId};
use serenity::cache::Cache;
use serenity::http::Http;
use std::sync::Arc;
use tokio::sync::watch;

/// The platform name stored with conversations and staff threads.
pub const PLATFORM: &str = "discord";

/// Discord's message length limit.
pub const MESSAGE_LIMIT: usize = 2000;

/// Discord's public API, where serenity's own rate limiter applies.
pub const DISCORD_API: &str = "https://discord.com";

/// A channel conversation whose previous line is at most this old moves into a thread.
pub const THREAD_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// How often the delivery worker looks at the outbox and the ticket queue.
const WORKER_TICK: Duration = Duration::from_millis(200);

/// The gateway intents the bot asks for. `MESSAGE_CONTENT` is privileged: without it Discord
/// still sends the text of DMs and of messages that mention the bot, but not what staff type in a
/// ticket thread or what a user writes in the thread their conversation moved to.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

pub use kefu_core::adapter::Secret;

/// The adapter's settings.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// The bot token (Developer Portal → Bot → Reset Token).
    pub token: Secret,
    /// The API base: [`DISCORD_API`], or a proxy that rate-limits for several processes, or a
    /// test fake. Anything but Discord's own URL turns serenity's rate limiter off (serenity sends
    /// to a proxy only without it): the proxy must enforce the limits.
    pub api_url: String,
    /// The staff text channel where ticket threads open, if any.
    pub staff_channel_id: Option<u64>,
    /// Discord user ids allowed to claim, resolve and reply.
    pub staff_user_ids: Vec<u64>,
    /// A role whose members may claim, resolve and reply (and are added to ticket threads).
    pub staff_role_id: Option<u64>,
}

/// Why the adapter stopped.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// The bot could not identify itself (wrong token, unreachable API).
    #[error("cannot reach the Discord API (GET /users/@me): {0}")]
    Connect(String),
    /// The gateway client could not be built.
    #[error("cannot start the Discord gateway client: {0}")]
    Client(String),
}

#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] kefu_store::StoreError),
}

/// Runs the adapter until `shutdown` turns true (or its sender is dropped): the gateway is closed,
/// the events already received are handled, delivery stops between messages.
pub async fn run(
    service: &Service,
    config: DiscordConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), DiscordError> {
    let mut builder = serenity::http::HttpBuilder::new(config.token.expose());
    if config.api_url.trim_end_matches('/') != DISCORD_API {
        builder = builder
            .proxy(config.api_url.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    let (events, queue) = tokio::sync::mpsc::unbounded_channel();
    let forwarder = events::Forwarder::new(events, config.clone());
    let mut client = serenity::all::ClientBuilder::new_with_http(builder.build(), intents())
        .event_handler(forwarder)
        .await
        .map_err(|e| DiscordError::Client(hide(&e.to_string(), &config.token)))?;
    let http = client.http.clone();
    let me = http
        .get_current_user()
        .await
        .map_err(|e| DiscordError::Connect(hide(&e.to_string(), &config.token)))?;
    tracing::info!(user = %me.name, id = %me.id, "discord: connected");
    let adapter = Adapter {
        http,
        cache: client.cache.clone(),
        service,
        config,
        me: me.id,
        threads: Mutex::new(HashMap::new()),
        thread_failures: Mutex::new(HashMap::new()),
    };
    let shards = client.shard_manager.clone();
    let gateway = tokio::spawn(async move {
        if let Err(e) = client.start().await {
            tracing::error!(error = %e, "discord: gateway stopped");
        }
    });
    tokio::join!(
        adapter.event_loop(queue, shutdown.clone(), shards, gateway),
        adapter.worker_loop(shutdown)
    );
    tracing::info!("discord: stopped");
    Ok(())
}

/// What the worker remembers about a ticket's staff thread.
#[derive(Debug, Clone, Copy)]
struct StaffThread {
    channel: ChannelId,
    /// The user's lines (in the ticket's transcript) already shown in the thread.
    relayed: usize,
}

struct Adapter<'a> {
    http: Arc<Http>,
    cache: Arc<Cache>,
    service: &'a Service,
    config: DiscordConfig,
    me: UserId,
    threads: Mutex<HashMap<i64, StaffThread>>,
    /// Tickets whose thread could not be created, and when: retried after [`THREAD_RETRY`].
    thread_failures: Mutex<HashMap<i64, std::time::Instant>>,
}

/// How long to wait before trying again to create a staff thread that failed.
const THREAD_RETRY: Duration = Duration::from_secs(60);

impl Adapter<'_> {
    fn is_staff(&self, user: UserId, roles: &[RoleId]) -> bool {
        is_staff(&self.config, user, roles)
    }
}

fn is_staff(config: &DiscordConfig, user: UserId, roles: &[RoleId]) -> bool {
    config.staff_user_ids.contains(&user.get())
        || config
            .staff_role_id
            .is_some_and(|r| roles.iter().any(|role| role.get() == r))
}

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

/// Removes the token from an error text.
fn hide(text: &str, token: &Secret) -> String {
    token.hide_in(text)
}

use kefu_core::adapter::backoff;

/// A user's name as staff see it: the display name, else the username.
fn display_name(user: &serenity::all::User) -> String {
    user.global_name
        .clone()
        .unwrap_or_else(|| user.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let cfg = DiscordConfig {
            token: Secret::new("MTIz.secret"),
            api_url: DISCORD_API.into(),
            staff_channel_id: None,
            staff_user_ids: vec![],
            staff_role_id: None,
        };
        assert!(!format!("{cfg:?}").contains("secret"));
        assert_eq!(format!("{}", cfg.token), "***");
        assert_eq!(hide("Bot MTIz.secret failed", &cfg.token), "Bot *** failed");
    }

    #[test]
    fn staff_by_id_or_role() {
        let cfg = DiscordConfig {
            token: Secret::default(),
            api_url: DISCORD_API.into(),
            staff_channel_id: Some(1),
            staff_user_ids: vec![7],
            staff_role_id: Some(50),
        };
        assert!(is_staff(&cfg, UserId::new(7), &[]));
        assert!(is_staff(&cfg, UserId::new(8), &[RoleId::new(50)]));
        assert!(!is_staff(&cfg, UserId::new(8), &[RoleId::new(51)]));
        let no_role = DiscordConfig {
            staff_role_id: None,
            ..cfg
        };
        assert!(!is_staff(&no_role, UserId::new(8), &[RoleId::new(50)]));
    }

    #[test]
    fn intents_include_what_the_adapter_reads() {
        let i = intents();
        assert!(i.contains(GatewayIntents::GUILD_MESSAGES));
        assert!(i.contains(GatewayIntents::DIRECT_MESSAGES));
        assert!(i.contains(GatewayIntents::MESSAGE_CONTENT));
        assert!(!i.contains(GatewayIntents::GUILD_MEMBERS));
        assert!(!i.contains(GatewayIntents::GUILD_PRESENCES));
    }
}
