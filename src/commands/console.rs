//! The staff console's listener (`console.listen`), served beside the platforms by `kefu run` and
//! alone by `kefu console`: the queue, tickets and reports in a browser, and the JSON API
//! ([`kefu_console`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use kefu_service::Service;
use tokio::sync::watch;

use super::{Failure, multi_thread_runtime, open_desk};
use crate::settings::Settings;

/// The console's configuration; with `kb`, its suggestions page works on that KB's files and the
/// service's database.
fn config(
    settings: &Settings,
    service: &Service,
    kb: Option<&Path>,
) -> kefu_console::ConsoleConfig {
    kefu_console::ConsoleConfig {
        public_url: settings.console.public_url.clone(),
        trust_forwarded_for: settings.console.trust_forwarded_for,
        kb_curator: kb.map(|kb| {
            Arc::new(super::learn::Curator::new(service.store().clone(), kb))
                as Arc<dyn kefu_console::KbCurator>
        }),
    }
}

/// Serves the console on `console.listen` until `shutdown`; `kb` is the KB `kefu run` serves
/// (the suggestions page edits it), `None` for `kefu console`. A listener that cannot be opened
/// is logged and the rest of `kefu run` goes on without the console; `Err` only for
/// `kefu console`, whose one job it is.
pub async fn serve(
    service: Arc<Service>,
    settings: &Settings,
    kb: Option<&Path>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Failure> {
    let listen = settings.console.listen.as_str();
    if listen.is_empty() {
        tracing::info!("console: off (console.listen is empty)");
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Failure::Other(anyhow!(
            "console: cannot listen on {listen}: {e}; fix: choose a free address in console.listen (KEFU__CONSOLE__LISTEN), port 0 for any, or \"\" to turn the console off"
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_or_else(|_| listen.to_owned(), |a| a.to_string());
    tracing::info!("console: serving on http://{addr}/ (staff accounts: kefu staff add NAME)");
    // Open live pages (event streams) end at shutdown too, so a stop never waits for them.
    let config = config(settings, &service, kb);
    let app = kefu_console::router_with_shutdown(service, config, shutdown.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    let stopped = async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
        .map_err(|e| Failure::Other(anyhow!("console: the listener failed: {e}")))
}

/// `kefu console`: the console alone, on the configured database, until SIGINT or SIGTERM. It
/// loads no KB and handles no user messages (that is `kefu run`'s job): staff actions and replies
/// go through the outbox, which `kefu run` delivers.
pub fn run(settings: &Settings) -> Result<(), Failure> {
    if settings.console.listen.is_empty() {
        return Err(Failure::BadInput(anyhow!(
            "console.listen is empty; fix: set it to an address such as 127.0.0.1:8088 (KEFU__CONSOLE__LISTEN)"
        )));
    }
    multi_thread_runtime()?.block_on(async {
        let service = Arc::new(open_desk(settings).await?);
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(async move {
            super::run::wait_for_signal().await;
            tracing::info!("console: stopping");
            let _ = stop.send(true);
        });
        let served = serve(service.clone(), settings, None, shutdown).await;
        service.store().close().await;
        served
    })
}
