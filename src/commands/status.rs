//! `kefu status`: what a deployment is doing, read from the database, so it shows every
//! instance at once — which instance runs each platform connection (and until when its lease
//! runs), what waits in the outbox per platform, the human queue and the updates set aside.

use chrono::Utc;
use serde_json::json;

use super::{Failure, emit, open_store, outln, runtime};
use crate::settings::Settings;

/// Prints the deployment's status (`json`: one object).
pub fn run(settings: &Settings, json: bool) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let store = open_store(settings).await?;
        let failed = |e: kefu_store::StoreError| Failure::Other(e.into());
        let now = Utc::now();
        let leases = store.leases().await.map_err(failed)?;
        let backlog = store.outbox_backlog().await.map_err(failed)?;
        let queued = store.queued_count().await.map_err(failed)?;
        let dead = store.dead_letters(1000).await.map_err(failed)?.len();
        store.close().await;
        let mut out = String::new();
        if json {
            let connections: Vec<_> = leases
                .iter()
                .map(|(name, owner, until)| {
                    json!({
                        "connection": name,
                        "instance": owner,
                        "lease_expires_at": until.to_rfc3339(),
                        "live": *until > now,
                    })
                })
                .collect();
            let outbox: Vec<_> = backlog
                .iter()
                .map(|(platform, rows, oldest)| {
                    json!({
                        "platform": platform,
                        "undelivered": rows,
                        "oldest_secs": (now - *oldest).num_seconds().max(0),
                    })
                })
                .collect();
            outln!(
                out,
                "{}",
                json!({
                    "connections": connections,
                    "outbox": outbox,
                    "queued_tickets": queued,
                    "dead_letters": dead,
                })
            );
        } else {
            outln!(out, "platform connections (one instance runs each):");
            if leases.is_empty() {
                outln!(out, "  none: no `kefu run` has connected to a platform");
            }
            for (name, owner, until) in &leases {
                let left = (*until - now).num_milliseconds();
                let state = if left > 0 {
                    format!("lease {:.1} s left", left as f64 / 1000.0)
                } else {
                    "lease expired: nobody runs it (the next instance to try takes it)".to_owned()
                };
                outln!(out, "  {name:<40}  {owner:<32}  {state}");
            }
            outln!(out, "outbox (undelivered):");
            if backlog.is_empty() {
                outln!(out, "  empty");
            }
            for (platform, rows, oldest) in &backlog {
                outln!(
                    out,
                    "  {platform:<10}  {rows} rows, oldest {} s",
                    (now - *oldest).num_seconds().max(0)
                );
            }
            outln!(out, "queued tickets: {queued}");
            outln!(out, "updates set aside (dead letters): {dead}");
        }
        emit(&out)
    })
}
