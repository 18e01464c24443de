//! `kefu run`: the chat platforms (Telegram and/or Discord), until SIGINT or SIGTERM. Receiving
//! and delivery stop between messages. A message stored but not finished (this process crashed,
//! or its handling failed for now) is taken over once its claim expires, by this run's recovery
//! loop or the next run's ([`kefu_service::Service::recover`]); an outbox row not yet sent stays
//! pending and goes out after a restart.
//!
//! Beside the platforms it serves the operations endpoints (`server.listen`: health, readiness,
//! metrics, KB reload; [`super::ops`]), the staff console (`console.listen`; [`super::console`])
//! and reloads the KB on SIGHUP.

use std::path::Path;

use anyhow::anyhow;

use super::{Failure, multi_thread_runtime, open_service};
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
    multi_thread_runtime()?.block_on(async {
        let service = std::sync::Arc::new(open_service(settings, kb).await?);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let stop = std::sync::Arc::new(stop);
        let on_signal = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: finishing the message in hand");
            let _ = on_signal.send(true);
        });
        let ops = super::ops::Ops::new(service.clone(), settings, kb);
        let ops_server = super::ops::serve(ops.clone(), &settings.server.listen, shutdown.clone());
        let sighup = super::ops::reload_on_sighup(ops.clone(), shutdown.clone());
        // The KB is reloaded when its files change, too.
        let watcher =
            super::reload::watch(&service, kb, shutdown.clone(), |r| ops.record_reload(r));
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
            tracing::info!(api = %settings.telegram.api_url, "telegram: starting");
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
            tracing::info!(api = %settings.discord.api_url, "discord: starting");
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
        let recovery = recover_loop(&service, shutdown.clone());
        let housekeeping =
            housekeeping_loop(&service, settings.database.retention_days, shutdown.clone());
        // The staff console: a listener that cannot open is logged, the platforms go on.
        let console = async {
            if let Err(Failure::BadInput(e) | Failure::Other(e)) =
                super::console::serve(service.clone(), settings, Some(kb), shutdown.clone()).await
            {
                tracing::error!(error = %format!("{e:#}"), "the staff console is off");
            }
        };
        let (t, d, (), (), (), (), (), ()) = tokio::join!(
            telegram_run,
            discord_run,
            recovery,
            housekeeping,
            ops_server,
            sighup,
            watcher,
            console
        );
        service.store().close().await;
        let result = t.and(d);
        if result.is_ok() {
            tracing::info!("stopped");
        }
        result
    })
}

/// How often the bot looks for messages whose handling was cut short (their claim expired).
const RECOVER_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes over messages whose handling failed for now (the database was briefly unreachable) or
/// whose handler died, once their claim expires, until shutdown.
async fn recover_loop(
    service: &kefu_service::Service,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RECOVER_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = service.recover(chrono::Utc::now()).await {
            tracing::warn!(error = %kefu_service::error_chain(&e), "recovery: cannot look for unfinished messages");
        }
    }
}

/// How often the finished journal older than `database.retention_days` is deleted.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes the finished delivery journal older than `retention_days` (0: never) at start and
/// then hourly, until shutdown ([`kefu_service::Service::prune_history`]). Every instance does it;
/// the batches are shared out, so running it twice at once deletes nothing twice.
async fn housekeeping_loop(
    service: &kefu_service::Service,
    retention_days: u32,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if retention_days == 0 {
        tracing::info!("housekeeping: off (database.retention_days = 0): the journal is kept");
        return;
    }
    let keep = chrono::TimeDelta::days(i64::from(retention_days));
    loop {
        match service.prune_history(keep, chrono::Utc::now()).await {
            Ok(p) if p.total() > 0 => tracing::info!(
                inbound_messages = p.inbound,
                outbox = p.outbox,
                dead_letters = p.dead_letters,
                bot_decisions = p.decisions,
                "housekeeping: deleted the finished journal older than {retention_days} days"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %kefu_service::error_chain(&e), "housekeeping: cannot delete the old journal; trying again in an hour");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn wait_for_signal() {
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
