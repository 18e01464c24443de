//! Server-sent events for the live pages. What a page shows is polled from the store about once
//! a second — changes made by any instance sharing the database show — by one poll per page
//! watched (the queue with one set of filters, one ticket), shared by every stream watching it:
//! twenty staff on the queue cost the database one query a second, not twenty. A stream sends an
//! event (`change`, its data the fragment's version) only when the version changed; its first
//! event is the version known when it opened, so a page rendered a moment before catches up. The
//! page's script fetches the fragment when the version differs from the one it shows. A poll ends
//! within a second of its last stream; `kefu_console_event_streams` and `kefu_console_polls` count
//! both.
//!
//! A stream re-checks its session or token every 30 seconds and ends when it is gone; it ends
//! when the server shuts down, and after a minute in any case (the browser reconnects within a
//! second and the new stream's first event catches the page up); it is dropped when the client
//! goes away (found at the latest by the keep-alive comments).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::App;
use crate::auth::{ApiStaff, Who};
use crate::problem::{ApiError, Problem};
use crate::queue::{self, Filter};
use crate::ticket;

/// How often a page's poll reads the store.
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

    /// Which shared poll serves it.
    fn key(&self) -> String {
        match self {
            Self::Queue(filter) => format!("queue {filter:?}"),
            Self::Ticket(id) => format!("ticket {id}"),
        }
    }
}

/// What a poll last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Not polled yet.
    Nothing,
    /// The page's version.
    Version(String),
    /// The ticket no longer exists: the streams end.
    Gone,
}

/// The polls running, by [`Watch::key`].
#[derive(Debug, Default)]
pub(crate) struct Polls {
    live: Mutex<HashMap<String, Arc<watch::Sender<Seen>>>>,
}

impl Polls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<watch::Sender<Seen>>>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Under the lock, whether `ends` holds for the poll `sender` of `key`; if so, the poll is
    /// taken out of the registry (no stream will subscribe to it again).
    fn forget_if(
        &self,
        key: &str,
        sender: &Arc<watch::Sender<Seen>>,
        ends: impl FnOnce(&watch::Sender<Seen>) -> bool,
    ) -> bool {
        let mut live = self.lock();
        if !ends(sender) {
            return false;
        }
        if live.get(key).is_some_and(|s| Arc::ptr_eq(s, sender)) {
            live.remove(key);
        }
        true
    }
}

/// A receiver of `watch`'s poll, started if none runs.
fn subscribe(app: &App, watch: &Watch) -> watch::Receiver<Seen> {
    let key = watch.key();
    let mut live = app.polls().lock();
    if let Some(sender) = live.get(&key) {
        return sender.subscribe();
    }
    let (sender, receiver) = watch::channel(Seen::Nothing);
    let sender = Arc::new(sender);
    live.insert(key.clone(), Arc::clone(&sender));
    app.service().metrics().console_poll(true);
    tokio::spawn(poll(app.clone(), watch.clone(), key, sender));
    receiver
}

/// Polls `watch` every [`POLL`] and publishes each new version, until no stream listens (checked
/// under the registry's lock, so a stream subscribing meanwhile is never left on an ended poll),
/// the ticket is gone, or the server shuts down.
async fn poll(app: App, watch: Watch, key: String, sender: Arc<watch::Sender<Seen>>) {
    let mut ticker = interval(POLL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shutdown = app.shutdown();
    loop {
        let stopping = tokio::select! {
            _ = ticker.tick() => *shutdown.borrow(),
            changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
        };
        if (stopping || sender.receiver_count() == 0)
            && app
                .polls()
                .forget_if(&key, &sender, |s| stopping || s.receiver_count() == 0)
        {
            break;
        }
        let seen = match watch.version(&app).await {
            Ok(version) => Seen::Version(version),
            Err(Problem::NotFound) => Seen::Gone,
            // Logged where it failed; the next poll tries again.
            Err(_) => continue,
        };
        let gone = seen == Seen::Gone;
        sender.send_if_modified(|last| {
            let changed = *last != seen;
            *last = seen;
            changed
        });
        if gone {
            app.polls().forget_if(&key, &sender, |_| true);
            break;
        }
    }
    app.service().metrics().console_poll(false);
}

struct Stream {
    app: App,
    who: Who,
    seen: watch::Receiver<Seen>,
    shutdown: watch::Receiver<bool>,
    last: Option<String>,
    checked: Instant,
    until: Instant,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.app.service().metrics().console_stream(false);
    }
}

impl Stream {
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
            let seen = self.seen.borrow_and_update().clone();
            match seen {
                Seen::Gone => return None,
                Seen::Version(version) if self.last.as_deref() != Some(version.as_str()) => {
                    let first = self.last.is_none();
                    self.last = Some(version.clone());
                    let event = Event::default().event("change").data(version);
                    return Some(if first { event.retry(RETRY) } else { event });
                }
                Seen::Version(_) | Seen::Nothing => {}
            }
            let wake = (self.checked + RECHECK).min(self.until);
            tokio::select! {
                changed = self.seen.changed() => {
                    // The poll ended: the server is stopping.
                    if changed.is_err() {
                        return None;
                    }
                }
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
            }
            if self.checked.elapsed() >= RECHECK {
                self.checked = Instant::now();
                if !self.still_allowed().await {
                    return None;
                }
            }
        }
    }
}

fn stream(
    app: App,
    who: Who,
    watch: Watch,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    app.service().metrics().console_stream(true);
    let stream = Stream {
        seen: subscribe(&app, &watch),
        shutdown: app.shutdown(),
        app,
        who,
        last: None,
        checked: Instant::now(),
        until: Instant::now() + LIFETIME,
    };
    futures_util::stream::unfold(stream, |mut s| async move {
        let event = s.next().await?;
        Some((Ok(event), s))
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
