//! Operating `kefu run`: its HTTP listener for operations (`server.listen`) — `GET /healthz`,
//! `GET /readyz`, `GET /metrics`, `POST /admin/reload-kb` — the KB reloads it and SIGHUP trigger,
//! and `kefu config check`.
//!
//! The Telegram webhook keeps its own listener (`telegram.webhook_listen`): that one faces
//! Telegram (the internet, through a TLS proxy); this one stays private to the host or the
//! monitoring network.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kefu_core::adapter::Secret;
use kefu_service::Service;
use kefu_service::leadership::Role;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::Failure;
use super::reload::{ReloadError, Reloaded};

/// The version of the KB at `kb` ([`super::reload::kb_version`]); empty when it cannot be read.
fn kb_version(kb: &Path) -> String {
    super::reload::kb_version(kb).unwrap_or_default()
}
use crate::settings::Settings;

/// How long `/readyz` waits for the database before calling it unreachable.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// A platform `kefu run` serves, as readiness sees it.
#[derive(Debug, Clone)]
enum Platform {
    /// Long polling (one poller across instances, by lease) or a webhook (every instance).
    Telegram { webhook: bool },
    /// `shards` gateway shards, each run by whichever instance holds its lease.
    Discord { shards: u32 },
}

impl Platform {
    fn name(&self) -> &'static str {
        match self {
            Platform::Telegram { .. } => "telegram",
            Platform::Discord { .. } => "discord",
        }
    }
}

/// What the operations endpoints and the reload triggers share.
#[derive(Debug)]
pub struct Ops {
    service: Arc<Service>,
    kb: PathBuf,
    admin_token: Secret,
    platforms: Vec<Platform>,
    /// Why the last reload was refused, until one succeeds.
    reload_error: Mutex<Option<String>>,
}

impl Ops {
    /// The operations of `service`, serving the KB at `kb`. Records the KB now serving.
    pub fn new(service: Arc<Service>, settings: &Settings, kb: &Path) -> Arc<Ops> {
        let mut platforms = Vec::new();
        if !settings.telegram.token.is_empty() {
            platforms.push(Platform::Telegram {
                webhook: !settings.telegram.webhook_url.is_empty(),
            });
        }
        if !settings.discord.token.is_empty() {
            platforms.push(Platform::Discord {
                shards: settings.discord.shards.max(1),
            });
        }
        let intents = service.engine().map_or(0, |e| e.kb().intents.len());
        service.metrics().kb_loaded(&kb_version(kb), intents);
        Arc::new(Ops {
            service,
            kb: kb.to_owned(),
            admin_token: settings.server.admin_token.clone(),
            platforms,
            reload_error: Mutex::new(None),
        })
    }

    /// Reloads the KB (`trigger` says why, for the log) and records the result. The reload
    /// itself runs one at a time and logs its outcome.
    pub async fn reload(&self, trigger: &str) -> Result<Reloaded, ReloadError> {
        tracing::info!(trigger, kb = %self.kb.display(), "kb: reload requested");
        let result = super::reload::reload(&self.service, &self.kb).await;
        self.record_reload(&result);
        result
    }

    /// Records a reload's result (whatever asked for it: SIGHUP, the endpoint, the watcher): the
    /// metrics and the readiness detail.
    pub fn record_reload(&self, result: &Result<Reloaded, ReloadError>) {
        let mut last = self
            .reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(r) => {
                // The reload reports the KB's hash; computed here when it does not.
                let version = if r.version.is_empty() {
                    kb_version(&self.kb)
                } else {
                    r.version.clone()
                };
                self.service
                    .metrics()
                    .kb_reload(Ok((version.as_str(), r.intents)));
                // Reloads from several triggers may finish in any order: an error stays reported
                // until the files as they are now have loaded.
                if version == kb_version(&self.kb) {
                    *last = None;
                }
            }
            Err(e) => {
                self.service.metrics().kb_reload(Err(()));
                *last = Some(e.to_string());
            }
        }
    }

    /// Whether the process can serve: the database answers, a KB is loaded, and each enabled
    /// platform's connections are running here or standing by for another instance.
    pub async fn readiness(&self) -> (bool, Value) {
        let mut checks = serde_json::Map::new();
        let mut not_ready = Vec::new();
        let db = tokio::time::timeout(DATABASE_TIMEOUT, self.service.store().queued_count()).await;
        let db = match db {
            Ok(Ok(_)) => json!({"ready": true}),
            Ok(Err(e)) => json!({"ready": false, "error": kefu_service::error_chain(&e),
                "fix": "check that the database (database.url) is up and reachable from this host"}),
            Err(_) => json!({"ready": false,
                "error": format!("no answer within {} s", DATABASE_TIMEOUT.as_secs()),
                "fix": "check that the database (database.url) is up and reachable from this host"}),
        };
        checks.insert("database".into(), db);
        let engine = self.service.engine();
        let mut kb = json!({
            "ready": engine.is_some(),
            "path": self.kb.display().to_string(),
            "intents": engine.as_ref().map_or(0, |e| e.kb().intents.len()),
        });
        if let Some(e) = self
            .reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            // The previous KB serves on: ready, but the operator should know.
            kb["last_reload_error"] = json!(e);
        }
        checks.insert("kb".into(), kb);
        let roles = self.service.roles();
        for p in &self.platforms {
            checks.insert(p.name().into(), platform_readiness(p, &roles));
        }
        for (name, check) in &checks {
            if check["ready"] != json!(true) {
                not_ready.push(name.clone());
            }
        }
        let ready = not_ready.is_empty();
        (
            ready,
            json!({"ready": ready, "not_ready": not_ready, "checks": checks}),
        )
    }

    fn platform_names(&self) -> Vec<&'static str> {
        self.platforms.iter().map(Platform::name).collect()
    }
}

/// A platform's readiness from this process's roles in the leases.
fn platform_readiness(p: &Platform, roles: &[(String, Role)]) -> Value {
    let role_name = |r: &Role| match r {
        Role::Leading => "leading",
        Role::StandingBy => "standing_by",
    };
    match p {
        // A webhook runs in every instance; the adapter reports no role for it.
        Platform::Telegram { webhook: true } => json!({"ready": true, "mode": "webhook"}),
        Platform::Telegram { webhook: false } => {
            match roles.iter().find(|(n, _)| n.starts_with("telegram:poll:")) {
                Some((_, role)) => json!({"ready": true, "role": role_name(role)}),
                None => json!({"ready": false,
                    "error": "not connected yet (the Bot API has not answered getMe)",
                    "fix": "check telegram.api_url and the token (KEFU__TELEGRAM__TOKEN); the log says why"}),
            }
        }
        Platform::Discord { shards } => {
            let running: Vec<Value> = roles
                .iter()
                .filter(|(n, _)| n.starts_with("discord:shard:"))
                .map(|(n, r)| json!({"lease": n, "role": role_name(r)}))
                .collect();
            let ready = running.len() == *shards as usize;
            let mut v = json!({"ready": ready, "shards": running});
            if !ready {
                v["error"] = json!(format!("{} of {shards} shard(s) started", running.len()));
                v["fix"] = json!(
                    "check discord.api_url and the token (KEFU__DISCORD__TOKEN); the log says why"
                );
            }
            v
        }
    }
}

/// The router of the operations endpoints.
pub fn router(ops: Arc<Ops>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/admin/reload-kb", post(reload_kb))
        .with_state(ops)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Arc<Ops>>) -> Response {
    let (ready, body) = ops.readiness().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    let text = ops.service.scrape(&ops.platform_names()).await;
    (
        [(header::CONTENT_TYPE, kefu_service::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

async fn reload_kb(State(ops): State<Arc<Ops>>, headers: HeaderMap) -> Response {
    let expected = ops.admin_token.expose();
    if expected.is_empty() {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({
                "error": "the admin endpoint is off: no admin token is configured",
                "fix": "set KEFU__SERVER__ADMIN_TOKEN (16+ random characters) in the environment and restart, then send it as `Authorization: Bearer <token>`; or send SIGHUP to reload the KB",
            })),
        )
            .into_response();
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        tracing::warn!("kb: reload request refused: missing or wrong admin token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({
                "error": "missing or wrong admin token",
                "fix": "send `Authorization: Bearer <KEFU__SERVER__ADMIN_TOKEN>`",
            })),
        )
            .into_response();
    }
    match ops.reload("POST /admin/reload-kb").await {
        Ok(r) => {
            let version = if r.version.is_empty() {
                kb_version(&ops.kb)
            } else {
                r.version
            };
            (
                StatusCode::OK,
                axum::Json(json!({"reloaded": true, "version": version, "intents": r.intents})),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "reloaded": false,
                "error": e.to_string(),
                "serving": "the previous KB",
            })),
        )
            .into_response(),
    }
}

/// Compares without stopping at the first difference (the time taken tells nothing of the token).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serves the operations endpoints on `listen` until `shutdown`. A listener that cannot be
/// opened (the port is taken) is logged and leaves the bot running without it: the chat platforms
/// matter more, and the monitoring sees the target down.
pub async fn serve(ops: Arc<Ops>, listen: &str, mut shutdown: watch::Receiver<bool>) {
    if listen.is_empty() {
        tracing::info!("ops: the listener is off (server.listen is empty)");
        return;
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen, error = %e, "ops: cannot listen: /healthz, /readyz and /metrics are off; fix: choose a free address in server.listen (KEFU__SERVER__LISTEN), port 0 for any");
            return;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| listen.to_owned(), |a| a.to_string());
    tracing::info!("ops: listening on http://{addr} (/healthz /readyz /metrics)");
    let stopped = async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, router(ops))
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(error = %e, "ops: the listener failed");
    }
}

/// Reloads the KB on every SIGHUP until `shutdown`.
pub async fn reload_on_sighup(ops: Arc<Ops>, mut shutdown: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload the KB with POST /admin/reload-kb");
                return;
            }
        };
        loop {
            tokio::select! {
                r = hup.recv() => {
                    if r.is_none() {
                        return;
                    }
                    let _ = ops.reload("SIGHUP").await;
                }
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (ops, shutdown.changed().await);
    }
}

/// `kefu config check`: loads and validates the configuration (done by the caller: an error
/// there exits 2 naming the key) and the KB, and prints the effective settings, secrets masked.
pub fn config_check(settings: &Settings, kb: Option<&Path>) -> Result<(), Failure> {
    super::configure_encoder(&settings.nlu)?;
    let kb = kb.unwrap_or(&settings.nlu.kb);
    let loaded = super::load_kb(kb).map_err(|f| match f {
        Failure::BadInput(e) | Failure::Other(e) => Failure::BadInput(e.context(format!(
            "nlu.kb = {}: the knowledge base does not load",
            kb.display()
        ))),
    })?;
    let mut shown = settings.clone();
    shown.database.url = mask_url_password(&shown.database.url);
    let text = toml::to_string(&shown)
        .map_err(|e| Failure::Other(anyhow::Error::new(e).context("printing the settings")))?;
    let mut out = String::new();
    super::outln!(
        out,
        "# The configuration is valid. Effective settings (secrets masked as \"***\"):"
    );
    super::outln!(
        out,
        "# KB {}: {} intents, version {}",
        kb.display(),
        loaded.intents.len(),
        kb_version(kb)
    );
    out.push_str(&text);
    super::emit(&out)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_is_masked() {
        assert_eq!(
            mask_url_password("postgres://kefu:s3cret@db:5432/kefu?sslmode=require"),
            "postgres://kefu:***@db:5432/kefu?sslmode=require"
        );
        assert_eq!(
            mask_url_password("postgres://kefu@db/kefu"),
            "postgres://kefu@db/kefu"
        );
        assert_eq!(mask_url_password("sqlite://kefu.db"), "sqlite://kefu.db");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
