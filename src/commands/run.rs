//! `kefu run`: the chat platforms (Telegram and/or Discord), until SIGINT or SIGTERM. Polling and delivery stop between
//! messages, so nothing is left half-handled: a message stored but not yet processed is handled
//! by the next run ([`kefu_service::Service::recover`]), an outbox row not yet sent stays pending.

use std::path::Path;

use anyhow::anyhow;

use super::{Failure, open_service, runtime};
use crate::settings::Settings;

/// Runs every enabled platform adapter (Telegram, Discord) side by side on one service: a ticket
/// from either platform can be worked in either staff space.
pub fn run(settings: &Settings, kb: &Path) -> Result<(), Failure> {
    let telegram = !settings.telegram.token.is_empty();
    let discord = !settings.discord.token.is_empty();
    if !telegram && !discord {
        return Err(Failure::BadInput(anyhow!(
            "no platform enabled: set KEFU__TELEGRAM__TOKEN and/or KEFU__DISCORD__TOKEN"
        )));
    }
    runtime()?.block_on(async {
        let service = open_service(settings, kb).await?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let stop = std::sync::Arc::new(stop);
        let on_signal = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!("stopping: finishing the message in hand");
            let _ = on_signal.send(true);
        });
        // One adapter failing (bad token, unreachable API) stops the other: the process exits
        // with the error instead of running half-configured.
        let stop_all = |r: Result<(), Failure>| {
            if r.is_err() {
                let _ = stop.send(true);
            }
            r
        };
        let telegram_run = async {
            if !telegram {
                return Ok(());
            }
            eprintln!("telegram: starting (api {})", settings.telegram.api_url);
            stop_all(
                kefu_telegram::run(
                    &service,
                    settings.telegram.adapter_config(),
                    shutdown.clone(),
                )
                .await
                .map_err(|e| Failure::Other(e.into())),
            )
        };
        let discord_run = async {
            if !discord {
                return Ok(());
            }
            eprintln!("discord: starting (api {})", settings.discord.api_url);
            stop_all(
                kefu_discord::run(
                    &service,
                    settings.discord.adapter_config(),
                    shutdown.clone(),
                )
                .await
                .map_err(|e| Failure::Other(e.into())),
            )
        };
        let (t, d) = tokio::join!(telegram_run, discord_run);
        service.store().close().await;
        let result = t.and(d);
        if result.is_ok() {
            eprintln!("stopped");
        }
        result
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
