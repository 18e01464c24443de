//! Kefu's staff console: the human queue, tickets and reports in a browser, and the same actions
//! as a JSON API under `/api/`.
//!
//! Pages are rendered on the server with maud (every interpolation escaped); the only script is
//! `/static/console.js`, served from the binary like the style sheet, so the Content Security
//! Policy allows nothing inline. Live pages subscribe to a server-sent event stream
//! (`/events/queue`, `/events/tickets/ID`) that polls the store about once a second — so it sees
//! changes made by any instance sharing the database — and sends an event only when the HTML the
//! page shows changed (a digest of the rendered fragment); the script then fetches the fragment
//! and swaps it in.
//!
//! # Layout
//! - this file: [`ConsoleConfig`], [`router`], [`router_with_shutdown`], [`serve`], the response
//!   headers every answer carries, the fallbacks.
//! - `auth`: the session cookie, API tokens, CSRF and `Origin` checks, login and logout.
//! - `queue`, `ticket`, `reports`: the pages, their live fragments and their JSON twins.
//! - `suggestions`: the KB suggestions leads accept or reject, through a [`KbCurator`].
//! - `events`: the server-sent event streams.
//! - `views`: the page layout and formatting shared by the pages.
//! - `problem`: what a failed request answers (an HTML page or a JSON error).

mod auth;
mod events;
mod problem;
mod queue;
mod reports;
mod suggestions;
mod ticket;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kefu_service::Service;
use problem::Problem;
use tokio::sync::watch;

pub use futures_util::future::BoxFuture;
pub(crate) use kefu_service::{LoginOutcome, Report, StaffAccount, StaffSession};

/// What the suggestions page works on: the KB files and the learning loop's decisions, owned by
/// the program that serves the KB (`kefu run`).
pub trait KbCurator: Send + Sync + std::fmt::Debug {
    /// The open suggestions (neither accepted nor rejected), newest KB state.
    fn suggestions(&self) -> BoxFuture<'_, Result<Vec<SuggestionView>, String>>;
    /// Accepts (writes into the KB files, records the decision) or rejects one; Ok: a one-line
    /// summary of what was done.
    fn decide<'a>(
        &'a self,
        id: &'a str,
        accept: bool,
        by: &'a str,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// One open suggestion, as the suggestions page and `GET /api/suggestions` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuggestionView {
    /// The id `accept` and `reject` take.
    pub id: String,
    /// `add_examples`, `new_topic` or `overlap`.
    pub kind: String,
    /// What the suggestion is, in one sentence.
    pub summary: String,
    /// The intent it changes or adds, if any.
    pub intent: Option<String>,
    /// The questions it is made of.
    pub texts: Vec<String>,
    /// The expected effect, on one line.
    pub effect: String,
    /// Whether the bot is expected to do better with it.
    pub positive: bool,
}

/// How the console is reached.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// The URL staff open, e.g. `https://support.example.com`: when it starts with `https://`
    /// the session cookie is marked `Secure`, and a form posted from this origin is accepted
    /// even when a proxy rewrote the `Host` header. Empty: as served.
    pub public_url: String,
    /// The console is reached only through a reverse proxy on the same host or network, which
    /// appends the client's address to `X-Forwarded-For`: login throttling then counts per the
    /// address the proxy saw (the header's last entry) instead of the proxy's own. Off: the
    /// peer address, so a client cannot choose the address it is counted under.
    pub trust_forwarded_for: bool,
    /// Lists, accepts and rejects KB suggestions for the suggestions page. `None`: the page says
    /// it needs the KB, and the API answers 404 `no_kb`.
    pub kb_curator: Option<Arc<dyn KbCurator>>,
}

impl ConsoleConfig {
    /// Whether cookies are marked `Secure`.
    fn secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The origin (`scheme://host[:port]`) of the public URL, if it has one.
    fn public_origin(&self) -> Option<&str> {
        let url = self.public_url.trim();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        let end = rest
            .find('/')
            .map_or(url.len(), |i| url.len() - rest.len() + i);
        let origin = &url[..end];
        (!rest.is_empty()).then_some(origin)
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct App {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    service: Arc<Service>,
    config: ConsoleConfig,
    /// Turns `true` when the server shuts down: the event streams end.
    shutdown: watch::Receiver<bool>,
    /// Keeps the shutdown channel open when [`router`] made it (nothing ever sends on it).
    _never: Option<watch::Sender<bool>>,
    /// The notice each session's next suggestions page shows (ok, text), keyed by its CSRF token.
    notices: Mutex<HashMap<String, (bool, String)>>,
    /// The live pages' shared polls ([`events`]).
    polls: events::Polls,
}

impl App {
    pub(crate) fn service(&self) -> &Service {
        &self.inner.service
    }

    pub(crate) fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    pub(crate) fn shutdown(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.clone()
    }

    pub(crate) fn polls(&self) -> &events::Polls {
        &self.inner.polls
    }

    /// Keeps `notice` for the session with this CSRF token's next page.
    pub(crate) fn set_notice(&self, csrf: &str, notice: (bool, String)) {
        if let Ok(mut notices) = self.inner.notices.lock() {
            // Notices nobody came back for are dropped rather than kept without bound.
            if notices.len() >= 1024 {
                notices.clear();
            }
            notices.insert(csrf.to_owned(), notice);
        }
    }

    /// The notice kept for the session with this CSRF token, once.
    pub(crate) fn take_notice(&self, csrf: &str) -> Option<(bool, String)> {
        self.inner
            .notices
            .lock()
            .ok()
            .and_then(|mut notices| notices.remove(csrf))
    }
}

/// The console's routes, with their state. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: login throttling counts failures per
/// peer address (without it every client shares one count).
///
/// A graceful shutdown waits for open responses, and an event stream of this router ends only
/// after at most a minute (the browser reconnects at once); [`router_with_shutdown`] ends them
/// when the server stops.
pub fn router(service: Arc<Service>, config: ConsoleConfig) -> Router {
    let (tx, rx) = watch::channel(false);
    build(service, config, rx, Some(tx))
}

/// [`router`] whose event streams end as soon as `shutdown` turns `true`, so that a graceful
/// shutdown on the same signal does not wait for them.
pub fn router_with_shutdown(
    service: Arc<Service>,
    config: ConsoleConfig,
    shutdown: watch::Receiver<bool>,
) -> Router {
    build(service, config, shutdown, None)
}

/// Serves the console on `listen` (port 0 picks a free port; the address is logged) until
/// `shutdown` turns `true`: open event streams end, then the server stops.
pub async fn serve(
    service: Arc<Service>,
    config: ConsoleConfig,
    listen: &str,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "console: listening");
    let app = build(service, config, shutdown.clone(), None);
    let stopped = async move {
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped)
    .await
}

fn build(
    service: Arc<Service>,
    config: ConsoleConfig,
    shutdown: watch::Receiver<bool>,
    never: Option<watch::Sender<bool>>,
) -> Router {
    let app = App {
        inner: Arc::new(AppInner {
            service,
            config,
            shutdown,
            _never: never,
            notices: Mutex::new(HashMap::new()),
            polls: events::Polls::default(),
        }),
    };
    Router::new()
        .route("/", get(auth::home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/static/console.css", get(stylesheet))
        .route("/static/console.js", get(script))
        .route("/queue", get(queue::page))
        .route("/queue/rows", get(queue::rows_fragment))
        .route("/tickets/{id}", get(ticket::page))
        .route("/tickets/{id}/live", get(ticket::live))
        .route("/tickets/{id}/claim", post(ticket::claim))
        .route("/tickets/{id}/reply", post(ticket::reply))
        .route("/tickets/{id}/resolve", post(ticket::resolve))
        .route("/tickets/{id}/release", post(ticket::release))
        .route("/tickets/{id}/label", post(ticket::label))
        .route("/reports", get(reports::page))
        .route("/suggestions", get(suggestions::page))
        .route("/suggestions/{id}/accept", post(suggestions::accept))
        .route("/suggestions/{id}/reject", post(suggestions::reject))
        .route("/events/queue", get(events::queue))
        .route("/events/tickets/{id}", get(events::ticket))
        .route("/api/me", get(auth::api_me))
        .route("/api/queue", get(queue::api))
        .route("/api/tickets/{id}", get(ticket::api))
        .route("/api/tickets/{id}/claim", post(ticket::api_claim))
        .route("/api/tickets/{id}/reply", post(ticket::api_reply))
        .route("/api/tickets/{id}/resolve", post(ticket::api_resolve))
        .route("/api/tickets/{id}/release", post(ticket::api_release))
        .route("/api/tickets/{id}/label", post(ticket::api_label))
        .route("/api/reports", get(reports::api))
        .route("/api/suggestions", get(suggestions::api))
        .route(
            "/api/suggestions/{id}/accept",
            post(suggestions::api_accept),
        )
        .route(
            "/api/suggestions/{id}/reject",
            post(suggestions::api_reject),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

const CSS: &str = include_str!("../static/console.css");
const JS: &str = include_str!("../static/console.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Any other path: 404 for a signed-in staff member, else what an unauthenticated request to a
/// page (303 to the login page) or to the API (401) gets.
async fn not_found(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    unrouted(&app, &uri, &headers, Problem::NotFound).await
}

/// A known path with another method (a GET of an action): 405 for a signed-in staff member,
/// else as [`not_found`].
async fn not_allowed(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    unrouted(&app, &uri, &headers, Problem::MethodNotAllowed).await
}

async fn unrouted(app: &App, uri: &Uri, headers: &HeaderMap, problem: Problem) -> Response {
    let path = uri.path();
    let api = path.starts_with("/api/") || path.starts_with("/events/");
    let answer = match auth::identify(app, headers, api).await {
        Ok(Some(_)) => problem,
        Ok(None) => Problem::Unauthenticated,
        Err(p) => p,
    };
    if api { answer.api() } else { answer.page() }
}

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_origin_drops_the_path() {
        let c = |u: &str| ConsoleConfig {
            public_url: u.into(),
            ..ConsoleConfig::default()
        };
        assert_eq!(
            c("https://support.example.com/console/").public_origin(),
            Some("https://support.example.com")
        );
        assert_eq!(
            c("http://127.0.0.1:8088").public_origin(),
            Some("http://127.0.0.1:8088")
        );
        assert_eq!(c("").public_origin(), None);
        assert_eq!(c("https://").public_origin(), None);
        assert!(c("https://x").secure());
        assert!(!c("http://x").secure());
    }
}
