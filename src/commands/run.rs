//! `kefu run`: the chat platforms, until SIGINT or SIGTERM. Polling and delivery stop between
//! messages, so nothing is left half-handled: a message stored but not yet processed is handled
//! by the next run ([`kefu_service::Service::recover`]), an outbox row not yet sent stays pending.

use std::path::Path;

use anyhow::anyhow;

use super::{Failure, open_service, runtime};
use crate::settings::Settings;

/// Runs every enabled platform adapter (today: Telegram).
pub fn run(settings: &Settings, kb: &Path) -> Result<(), Failure> {
    if settings.telegram.token.is_empty() {
        return Err(Failure::BadInput(anyhow!(
            "no platform enabled: set KEFU__TELEGRAM__TOKEN"
        )));
    }
    runtime()?.block_on(async {
        let service = open_service(settings, kb).await?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!("stopping: finishing the message in hand");
            let _ = stop.send(true);
        });
        eprintln!("telegram: starting (api {})", settings.telegram.api_url);
        let result = kefu_telegram::run(&service, settings.telegram.adapter_config(), shutdown)
            .await
            .map_err(|e| Failure::Other(e.into()));
        service.store().close().await;
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
