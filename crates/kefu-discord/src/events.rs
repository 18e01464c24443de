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

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kefu_core::Lang;
use kefu_service::ServiceError;
use serenity::all::{
    ComponentInteraction, Context, CreateInteractionResponse, CreateInteractionResponseMessage,
    EventHandler, Interaction, Message, Ready, ResumedEvent,
};
use serenity::async_trait;
use serenity::gateway::ShardManager;
use tokio::sync::{mpsc, watch};

use crate::{Adapter, DiscordConfig, PLATFORM, is_staff, pause, stopping};

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

/// How long shutdown waits for the gateway task after closing the shards.
const GATEWAY_STOP: Duration = Duration::from_secs(5);

impl Adapter<'_> {
    /// Handles events in order until shutdown, then closes the gateway and handles what had
    /// already arrived.
    pub(crate) async fn event_loop(
        &self,
        mut queue: mpsc::UnboundedReceiver<Event>,
        mut shutdown: watch::Receiver<bool>,
        shards: Arc<ShardManager>,
        gateway: tokio::task::JoinHandle<()>,
    ) {
        while !stopping(&shutdown) {
            let next = tokio::select! {
                e = queue.recv() => e,
                _ = shutdown.changed() => continue,
            };
            let Some(event) = next else {
                break;
            };
            self.handle(event, &mut shutdown).await;
        }
        shards.shutdown_all().await;
        let _ = tokio::time::timeout(GATEWAY_STOP, gateway).await;
        // What had arrived is handled once more (a transient failure now is not retried: the
        // database is down and the bot is stopping; the platform update is lost to it, as any
        // update not received before a stop).
        let (_keep, mut stopped) = watch::channel(true);
        stopped.mark_changed();
        while let Ok(event) = queue.try_recv() {
            self.handle(event, &mut stopped).await;
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
