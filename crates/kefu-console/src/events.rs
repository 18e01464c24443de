//! Server-sent events for the live pages. Each stream polls the store about once a second —
//! changes made by any instance sharing the database show — renders what its page shows and
//! sends an event (`change`, its data the fragment's version) only when that changed; the first
//! poll always sends one, so a page rendered a moment before the stream opened catches up. The
//! page's script fetches the fragment when the version differs from the one it shows.
//!
//! A stream re-checks its session or token every 30 seconds and ends when it is gone; it ends
//! when the server shuts down, and after a minute in any case (the browser reconnects within a
//! second and the new stream's first event catches the page up); it is dropped when the client
//! goes away (found at the latest by the keep-alive comments).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::App;
use crate::auth::{ApiStaff, Who};
use crate::problem::{ApiError, Problem};
use crate::queue::{self, Filter};
use crate::ticket;

/// How often a stream polls the store.
const POLL: Duration = Duration::from_secs(1);
/// How often a stream checks that its session or token still holds.
const RECHECK: Duration = Duration::from_secs(30);
/// Keep-alive comments while nothing changes.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The longest a stream stays open: the browser then reconnects (after `RETRY`) and catches up
/// from the first event of the new stream. This bounds how long a graceful shutdown that did not
/// end the streams waits for them.
const LIFETIME: Duration = Duration::from_secs(60);
/// How long the browser waits before reconnecting a stream that ended.
const RETRY: Duration = Duration::from_secs(1);

/// What a stream watches.
#[derive(Debug, Clone)]
enum Watch {
    Queue(Filter),
    Ticket(i64),
}

impl Watch {
    /// The version of what the page shows now.
    async fn version(&self, app: &App) -> Result<String, Problem> {
        match self {
            Self::Queue(filter) => {
                let tickets = queue::load(app, filter, Utc::now()).await?;
                Ok(queue::tbody(&tickets).1)
            }
            Self::Ticket(id) => {
                let (t, transcript) = ticket::load(app, *id).await?;
                Ok(ticket::live_parts(&t, &transcript).version)
            }
        }
    }
}

struct Poller {
    app: App,
    who: Who,
    watch: Watch,
    shutdown: watch::Receiver<bool>,
    ticker: tokio::time::Interval,
    last: Option<String>,
    checked: Instant,
    until: Instant,
}

impl Poller {
    /// Whether the session or token that opened the stream still holds.
    async fn still_allowed(&self) -> bool {
        let service = self.app.service();
        let held = match &self.who {
            Who::Session(s) => service
                .staff_session(&s.token, Utc::now())
                .await
                .map(|s| s.is_some()),
            Who::Token(account, token) => service
                .staff_by_api_token(token)
                .await
                .map(|a| a.is_some_and(|a| a.name == account.name)),
        };
        // A failing database ends no stream: the next check decides.
        held.unwrap_or(true)
    }

    /// The next event: waits for a change, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.shutdown.borrow() || Instant::now() >= self.until {
                return None;
            }
            tokio::select! {
                _ = self.ticker.tick() => {}
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return None;
                    }
                    continue;
                }
            }
            if self.checked.elapsed() >= RECHECK {
                self.checked = Instant::now();
                if !self.still_allowed().await {
                    return None;
                }
            }
            match self.watch.version(&self.app).await {
                Ok(version) => {
                    if self.last.as_deref() != Some(version.as_str()) {
                        let first = self.last.is_none();
                        self.last = Some(version.clone());
                        let event = Event::default().event("change").data(version);
                        return Some(if first { event.retry(RETRY) } else { event });
                    }
                }
                Err(Problem::NotFound) => return None,
                // Logged where it failed; the next poll tries again.
                Err(_) => {}
            }
        }
    }
}

fn stream(app: App, who: Who, watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut ticker = interval(POLL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let poller = Poller {
        shutdown: app.shutdown(),
        app,
        who,
        watch,
        ticker,
        last: None,
        checked: Instant::now(),
        until: Instant::now() + LIFETIME,
    };
    futures_util::stream::unfold(poller, |mut p| async move {
        let event = p.next().await?;
        Some((Ok(event), p))
    })
}

fn respond(app: App, who: Who, watch: Watch) -> Response {
    let mut response = Sse::new(stream(app, who, watch))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // A buffering proxy (nginx) would hold the events back.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// `GET /events/queue` (with the queue page's query string).
pub(crate) async fn queue(
    State(app): State<App>,
    ApiStaff(who): ApiStaff,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = Filter::parse(query.as_deref())?;
    Ok(respond(app, who, Watch::Queue(filter)))
}

/// `GET /events/tickets/ID`.
pub(crate) async fn ticket(
    State(app): State<App>,
    ApiStaff(who): ApiStaff,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = raw
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(Problem::NotFound)?;
    // A ticket that does not exist is a 404 now, not an empty stream.
    ticket::load(&app, id).await?;
    Ok(respond(app, who, Watch::Ticket(id)))
}
