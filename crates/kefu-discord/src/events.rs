//! From serenity's event handler to one ordered processing loop.
//!
//! serenity runs each event handler call in its own task; handling them there would let two
//! messages of one user race. The handler only forwards events to a channel, and one loop handles
//! them in arrival order. Component interactions must be answered within three seconds, so the
//! handler acknowledges them before forwarding (and refuses non-staff staff-button presses itself).

use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ComponentInteraction, Context, CreateInteractionResponse, CreateInteractionResponseMessage,
    EventHandler, Interaction, Message, Ready, ResumedEvent,
};
use serenity::async_trait;
use serenity::gateway::ShardManager;
use tokio::sync::{mpsc, watch};

use crate::{Adapter, DiscordConfig, is_staff, stopping};

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
}

impl Forwarder {
    pub(crate) fn new(events: mpsc::UnboundedSender<Event>, config: DiscordConfig) -> Self {
        Forwarder { events, config }
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
                        .content("Only support staff can do this.")
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
            self.handle(event).await;
        }
        shards.shutdown_all().await;
        let _ = tokio::time::timeout(GATEWAY_STOP, gateway).await;
        while let Ok(event) = queue.try_recv() {
            self.handle(event).await;
        }
    }

    /// Handles one event; a failure (the database unreachable…) is retried with growing pauses
    /// for about a minute, since nothing redelivers a gateway event.
    async fn handle(&self, event: Event) {
        let mut wait = Duration::from_millis(500);
        for attempt in 1..=HANDLE_ATTEMPTS {
            let result = match &event {
                Event::Message(m) => self.on_message(m).await,
                Event::Component(c) => self.on_component(c).await,
            };
            match result {
                Ok(()) => return,
                Err(e) if attempt == HANDLE_ATTEMPTS => {
                    tracing::error!(error = %e, event = ?event_id(&event), "discord: event not handled, giving up");
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "discord: event not handled, retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(16));
                }
            }
        }
    }
}

/// Attempts per event: pauses of 0.5, 1, 2, 4, 8, 16, 16 s between them.
const HANDLE_ATTEMPTS: u32 = 8;

fn event_id(event: &Event) -> String {
    match event {
        Event::Message(m) => format!("message {}", m.id),
        Event::Component(c) => format!("interaction {}", c.id),
    }
}
