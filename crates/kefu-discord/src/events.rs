//! From serenity's event handler to one ordered processing loop.
//!
//! serenity runs each event handler call in its own task; handling them there would let two
//! messages of one user race. The handler only forwards events to a channel, and one loop handles
//! them in arrival order. Component interactions must be answered within three seconds, so the
//! handler acknowledges them before forwarding (and refuses non-staff staff-button presses itself,
//! in the presser's language).
//!
//! A gateway event is never delivered again, so the loop decides what a failure means: a
//! transient one (the database unreachable) holds the loop and retries with growing pauses until
//! it passes or the bot stops — later events wait rather than overtake it; a permanent one (the
//! event can never be stored) is recorded in the dead-letter table, with the reason and without
//! the text, and the loop moves on.

use std::time::Duration;

use chrono::Utc;
use kefu_core::Lang;
use kefu_service::ServiceError;
use serenity::all::{
    ComponentInteraction, Context, CreateInteractionResponse, CreateInteractionResponseMessage,
    EventHandler, Interaction, Message, Ready, ResumedEvent,
};
use serenity::async_trait;
use tokio::sync::{mpsc, watch};

use crate::{Adapter, DiscordConfig, PLATFORM, is_staff, pause};

/// An event for the processing loop.
#[derive(Debug)]
pub(crate) enum Event {
    Message(Box<Message>),
    /// A button press, already acknowledged.
    Component(Box<ComponentInteraction>),
}

/// serenity's event handler: acknowledges interactions, forwards the rest.
pub(crate) struct Forwarder {
    events: mpsc::UnboundedSender<Event>,
    config: DiscordConfig,
    /// The staff's language, for a presser whose client language Kefu does not speak.
    staff_language: Lang,
}

impl Forwarder {
    pub(crate) fn new(
        events: mpsc::UnboundedSender<Event>,
        config: DiscordConfig,
        staff_language: Lang,
    ) -> Self {
        Forwarder {
            events,
            config,
            staff_language,
        }
    }
}

#[async_trait]
impl EventHandler for Forwarder {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(session = %ready.session_id, "discord: gateway ready");
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        tracing::info!("discord: gateway session resumed");
    }

    async fn message(&self, _ctx: Context, message: Message) {
        if message.author.bot {
            // Our own messages and other bots': never answered (no relay loops).
            return;
        }
        let _ = self.events.send(Event::Message(Box::new(message)));
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Interaction::Component(press) = interaction else {
            return;
        };
        if press.data.custom_id.starts_with("staff:") {
            let roles = press
                .member
                .as_ref()
                .map(|m| m.roles.clone())
                .unwrap_or_default();
            if !is_staff(&self.config, press.user.id, &roles) {
                let refusal = CreateInteractionResponse::Message(
                    CreateInteractionResponseMessage::new()
                        .content(kefu_core::staff::only_staff(
                            kefu_core::staff::lang_of_locale(&press.locale)
                                .unwrap_or(self.staff_language),
                        ))
                        .ephemeral(true),
                );
                if let Err(e) = press.create_response(&ctx.http, refusal).await {
                    tracing::debug!(error = %e, "discord: interaction response failed");
                }
                return;
            }
        }
        // A deferred update: the press is acknowledged, the message stays as it is.
        if let Err(e) = press
            .create_response(&ctx.http, CreateInteractionResponse::Acknowledge)
            .await
        {
            tracing::debug!(error = %e, "discord: interaction acknowledgement failed");
        }
        let _ = self.events.send(Event::Component(Box::new(press)));
    }
}

/// How far back a new gateway session looks for chats to catch up on.
const CATCH_UP_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// The most chats a new gateway session catches up on.
const CATCH_UP_CHATS: i64 = 500;

/// How long shutdown waits for the gateway task after closing the shards.
const GATEWAY_STOP: Duration = Duration::from_secs(5);

impl Adapter<'_> {
    /// Runs gateway shard `shard` of `total` until `stop` turns true, forwarding its events to
    /// `events`; then closes it. A gateway that fails is logged and ends the term (the
    /// leadership loop tries again after a pause).
    pub(crate) async fn gateway(
        &self,
        shard: u32,
        total: u32,
        events: mpsc::UnboundedSender<Event>,
        mut stop: watch::Receiver<bool>,
    ) {
        let events_for_catch_up = events.clone();
        let forwarder = Forwarder::new(
            events,
            self.config.clone(),
            self.service.config().staff_language,
        );
        let client = serenity::all::ClientBuilder::new_with_http(
            crate::rest_client(&self.config),
            crate::intents(),
        )
        .event_handler(forwarder)
        .await;
        let mut client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %crate::hide(&e.to_string(), &self.config.token), "discord: cannot start the gateway client");
                return;
            }
        };
        self.cache.store(client.cache.clone());
        let shards = client.shard_manager.clone();
        tracing::info!(shard, total, "discord: opening the gateway");
        let mut gateway = tokio::spawn(async move { client.start_shard(shard, total).await });
        // Beside the gateway, not before it: a stop must not wait for a long catch-up.
        let catch_up = async {
            if shard == 0 {
                self.catch_up(&events_for_catch_up).await;
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = catch_up => {}
            _ = stop.wait_for(|s| *s) => {}
            r = &mut gateway => {
                match r {
                    Ok(Err(e)) => tracing::error!(shard, error = %crate::hide(&e.to_string(), &self.config.token), "discord: gateway stopped"),
                    Ok(Ok(())) => tracing::warn!(shard, "discord: gateway closed"),
                    Err(e) => tracing::error!(shard, error = %e, "discord: gateway task failed"),
                }
                return;
            }
        }
        shards.shutdown_all().await;
        if tokio::time::timeout(GATEWAY_STOP, &mut gateway)
            .await
            .is_err()
        {
            // Its event handler holds a sender of the event queue, which must close for the
            // processing loop to end.
            gateway.abort();
            tracing::warn!(shard, "discord: the gateway did not close in time; stopped");
        } else {
            tracing::info!(shard, "discord: gateway closed");
        }
    }

    /// A new gateway session hears nothing of what was written before it opened: what users wrote
    /// while no instance ran the gateway (the last holder died and its lease had to expire) is
    /// fetched from the chats that were active in the last [`CATCH_UP_WINDOW`], after the last
    /// message stored from each, and handled like gateway events, oldest first. Messages already
    /// stored are recognised by their id and not handled again. A user who had never written in
    /// that window is not found this way.
    async fn catch_up(&self, events: &mpsc::UnboundedSender<Event>) {
        let since = Utc::now() - CATCH_UP_WINDOW;
        let chats = match self
            .service
            .store()
            .recent_inbound_chats(PLATFORM, since, CATCH_UP_CHATS)
            .await
        {
            Ok(chats) => chats,
            Err(e) => {
                tracing::warn!(error = %kefu_service::error_chain(&e), "discord: cannot list recent chats to catch up on");
                return;
            }
        };
        let mut caught = 0usize;
        for (chat, last) in chats {
            let (Ok(chat), Ok(last)) = (chat.parse::<u64>(), last.parse::<u64>()) else {
                continue;
            };
            if chat == 0 || last == 0 {
                continue;
            }
            let channel = serenity::all::ChannelId::new(chat);
            let request = serenity::all::GetMessages::new()
                .after(serenity::all::MessageId::new(last))
                .limit(50);
            let mut missed = match channel.messages(&self.http, request).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(chat, error = %e, "discord: cannot catch up on a chat");
                    continue;
                }
            };
            if missed.is_empty() {
                continue;
            }
            // The API leaves the server out of a message; the handler needs it.
            let guild = match channel.to_channel(&self.http).await {
                Ok(serenity::all::Channel::Guild(c)) => Some(c.guild_id),
                _ => None,
            };
            missed.sort_by_key(|m| m.id);
            for mut m in missed {
                if m.author.bot {
                    continue;
                }
                m.guild_id = guild;
                caught += 1;
                let _ = events.send(Event::Message(Box::new(m)));
            }
        }
        if caught > 0 {
            tracing::info!(
                messages = caught,
                "discord: caught up on messages written while no gateway was open"
            );
        }
    }

    /// Handles events in order until every gateway closed (the queue's senders are gone): a
    /// transient failure is retried until shutdown, then given up.
    pub(crate) async fn event_loop(
        &self,
        mut queue: mpsc::UnboundedReceiver<Event>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while let Some(event) = queue.recv().await {
            self.handle(event, &mut shutdown).await;
        }
    }

    /// Handles one event: a transient failure is retried (growing pauses, holding the loop) until
    /// it passes or the bot stops; a permanent one is set aside.
    async fn handle(&self, event: Event, shutdown: &mut watch::Receiver<bool>) {
        let mut wait = Duration::from_millis(500);
        loop {
            let result = match &event {
                Event::Message(m) => self.on_message(m).await,
                Event::Component(c) => self.on_component(c).await,
            };
            let e = match result {
                Ok(()) => return,
                Err(e) => e,
            };
            if !e.is_transient() {
                self.set_aside(&event, &e).await;
                return;
            }
            tracing::warn!(event = %event_id(&event), error = %kefu_service::error_chain(&e), "discord: event not stored yet, retrying");
            if pause(shutdown, wait).await {
                tracing::warn!(event = %event_id(&event), "discord: stopping with an event not stored");
                return;
            }
            wait = (wait * 2).min(MAX_WAIT);
        }
    }

    async fn set_aside(&self, event: &Event, e: &ServiceError) {
        let reason = kefu_service::error_chain(e);
        let chat = match event {
            Event::Message(m) => m.channel_id.to_string(),
            Event::Component(c) => c.channel_id.to_string(),
        };
        if let Err(e) = self
            .service
            .record_unstorable(PLATFORM, &event_id(event), Some(&chat), &reason, Utc::now())
            .await
        {
            tracing::error!(event = %event_id(event), error = %kefu_service::error_chain(&e), "discord: an event that cannot be stored could not be recorded either");
        }
    }
}

/// The longest pause between two tries of an event the database could not take.
const MAX_WAIT: Duration = Duration::from_secs(16);

fn event_id(event: &Event) -> String {
    match event {
        Event::Message(m) => format!("message {}", m.id),
        Event::Component(c) => format!("interaction {}", c.id),
    }
}
