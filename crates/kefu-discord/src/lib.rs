//! Kefu's Discord adapter (serenity): an edge that converts and nothing else.
//!
//! - [`events`]: serenity's handler only forwards gateway events, in order, to one processing
//!   loop; component interactions are acknowledged right there, within Discord's three-second
//!   deadline. A failure to store an event is told apart: transient (the database is down) holds
//!   the loop and retries, so nothing is lost or reordered; permanent (this event can never be
//!   stored) is set aside in the dead-letter table and the loop moves on. Messages are
//!   deduplicated by the service (platform message id), so an event replayed after a gateway
//!   RESUME is a no-op.
//! - [`users`]: every DM; in server channels only messages that mention the bot or reply to it.
//!   When a channel conversation goes on (a second message within [`THREAD_AFTER`]), it moves into
//!   a thread named after the user's question, so a busy channel isn't flooded; the user then
//!   talks in the thread without mentioning the bot.
//! - [`staff`]: a private thread in the staff channel per open ticket; what staff type there and
//!   the Claim / Resolve / Release buttons go to [`kefu_service::Service::staff_action`], the
//!   label buttons of the post that follows a resolve to
//!   [`kefu_service::Service::label_from_button`].
//! - [`send`]: [`kefu_service::delivery::Deliver`] for Discord — messages split at 2,000
//!   characters, buttons as components, `allowed_mentions` empty so nothing a user typed
//!   ("@everyone") can ping. The service's delivery worker decides what to send and when.
//!
//! The adapter knows neither the store nor the policy, and every text it shows comes from
//! `kefu-core`.

mod events;
mod send;
mod staff;
mod users;

use std::sync::Arc;
use std::time::Duration;

use kefu_service::Service;
use serenity::all::{GatewayIntents, RoleId, UserId};
use serenity::cache::Cache;
use serenity::http::Http;
use tokio::sync::watch;

/// The platform name stored with conversations and staff threads.
pub const PLATFORM: &str = "discord";

/// Discord's message length limit.
pub const MESSAGE_LIMIT: usize = 2000;

/// Discord's public API, where serenity's own rate limiter applies.
pub const DISCORD_API: &str = "https://discord.com";

/// A channel conversation whose previous line is at most this old moves into a thread.
pub const THREAD_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

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
    /// The total number of gateway shards (1 unless the bot is in thousands of servers). With
    /// several instances, each shard is run by whichever instance holds its lease.
    pub shards: u32,
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

/// Runs the adapter until `shutdown` turns true (or its sender is dropped): the gateway is closed,
/// the events already received are handled, delivery stops between messages.
///
/// Delivery runs in every instance. Each gateway shard runs in exactly one: the instance that
/// holds its lease (`discord:shard:N/TOTAL:BOT`); the others stand by and take over when it dies.
pub async fn run(
    service: &Service,
    config: DiscordConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), DiscordError> {
    let http = Arc::new(rest_client(&config));
    let me = http
        .get_current_user()
        .await
        .map_err(|e| DiscordError::Connect(hide(&e.to_string(), &config.token)))?;
    tracing::info!(user = %me.name, id = %me.id, "discord: connected");
    let total = config.shards.max(1);
    let adapter = Adapter {
        http,
        cache: arc_swap::ArcSwap::from_pointee(Cache::new()),
        guild_channels: std::sync::Mutex::new(std::collections::HashMap::new()),
        service,
        config,
        me: me.id,
    };
    let (events, queue) = tokio::sync::mpsc::unbounded_channel();
    let gateways = async {
        // The queue closes when the last sender goes: this one, at the end of this block, and
        // each gateway's, when it stopped.
        let events = events;
        let names: Vec<String> = (0..total)
            .map(|shard| format!("discord:shard:{shard}/{total}:{}", me.id))
            .collect();
        let runs = names.iter().enumerate().map(|(shard, name)| {
            let events = &events;
            let adapter = &adapter;
            service.lead(name, shutdown.clone(), move |stop| {
                adapter.gateway(shard as u32, total, events.clone(), stop)
            })
        });
        futures_util::future::join_all(runs).await;
    };
    let sender = send::Sender::new(&adapter);
    tokio::join!(
        adapter.event_loop(queue, shutdown.clone()),
        gateways,
        kefu_service::delivery::run(service, &sender, shutdown.clone())
    );
    tracing::info!("discord: stopped");
    Ok(())
}

/// The REST client: Discord's API, or a proxy (which must enforce the rate limits).
fn rest_client(config: &DiscordConfig) -> Http {
    let mut builder = serenity::http::HttpBuilder::new(config.token.expose());
    if config.api_url.trim_end_matches('/') != DISCORD_API {
        builder = builder
            .proxy(config.api_url.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    builder.build()
}

/// What every part of the adapter shares.
pub(crate) struct Adapter<'a> {
    pub(crate) http: Arc<Http>,
    /// The cache of the gateway this instance runs now (empty while it stands by).
    pub(crate) cache: arc_swap::ArcSwap<Cache>,
    /// Whether a channel is in a server, as the API said (for an instance without a gateway).
    pub(crate) guild_channels: std::sync::Mutex<std::collections::HashMap<u64, bool>>,
    pub(crate) service: &'a Service,
    pub(crate) config: DiscordConfig,
    pub(crate) me: UserId,
}

impl Adapter<'_> {
    pub(crate) fn is_staff(&self, user: UserId, roles: &[RoleId]) -> bool {
        is_staff(&self.config, user, roles)
    }
}

pub(crate) fn is_staff(config: &DiscordConfig, user: UserId, roles: &[RoleId]) -> bool {
    config.staff_user_ids.contains(&user.get())
        || config
            .staff_role_id
            .is_some_and(|r| roles.iter().any(|role| role.get() == r))
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

/// Removes the token from an error text.
pub(crate) fn hide(text: &str, token: &Secret) -> String {
    token.hide_in(text)
}

/// A user's name as staff see it: the display name, else the username.
pub(crate) fn display_name(user: &serenity::all::User) -> String {
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
            shards: 1,
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
            shards: 1,
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
