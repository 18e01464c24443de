//! The delivery worker: one for each platform, the same code for all. It leases due outbox rows
//! (the first undelivered row of each destination — one user chat, one ticket's staff space — so
//! a destination's rows go out one at a time, in order, by one worker across every process),
//! keeps many destinations in flight at once within the platform's allowances, and hands each
//! row to the platform's [`Deliver`] implementation, which only converts and calls the API.
//!
//! The worker owns everything else:
//! - **pacing**: the platform's overall rate and each destination's own (a Telegram chat takes
//!   about one message a second, a group twenty a minute), as token buckets that allow a burst;
//! - **retries**: `RetryAfter` waits as the platform says without counting as a failure;
//!   `Transient` backs off exponentially (2 s … 10 min) and is given up after
//!   [`MAX_ATTEMPTS`]; `Permanent` marks the row failed with the reason (`kefu desk show` lists
//!   it) and lets the destination's next rows go on;
//! - **holding back**: a row that failed keeps its destination's later rows waiting until it is
//!   delivered or given up, so nothing overtakes it;
//! - **staff spaces**: the space a platform returns when it opens one is stored, and later rows
//!   for that ticket go there.
//!
//! A row is marked delivered only after the platform confirmed it: a crash between the two sends
//! it again once its lease expires (at least once; see README "Reliability").

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use kefu_core::delivery::{Delivery, StaffPost};
use kefu_core::model::{Button, ConversationRef};
use kefu_core::render::ticket_title;
use kefu_store::OutboxMessage;
use tokio::sync::watch;
use tracing::Instrument;

use crate::metrics::DeliveryOutcome;
use crate::{Service, error_chain};

/// What a platform said to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the platform's id of what was created (a message, a topic or thread), if any.
    Sent(Option<String>),
    /// The platform asked to wait this long before trying again (HTTP 429).
    RetryAfter(Duration),
    /// A failure that may pass (network, 5xx): try again later.
    Transient(String),
    /// A failure no retry will fix (the chat is gone, the bot lacks a right): give up.
    Permanent(String),
}

/// A message for a user, as the worker hands it to the platform.
#[derive(Debug, Clone, Copy)]
pub struct ToUser<'a> {
    /// The conversation.
    pub conversation: &'a ConversationRef,
    /// Where to send it: the conversation's chat, or the place it moved to (a Discord thread).
    pub chat: &'a str,
    /// True when `chat` is the place the conversation moved to.
    pub moved: bool,
    /// The text (the adapter splits it at its platform's limit).
    pub text: &'a str,
    /// Buttons under the last part.
    pub buttons: &'a [Button],
    /// The user's message it answers (groups quote it).
    pub reply_to: Option<&'a str>,
}

/// A rate: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained messages per second.
    pub per_second: f64,
    /// Messages allowed at once after a quiet spell.
    pub burst: u32,
}

/// A platform's allowances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The most the bot may send overall; `None`: no overall limit (the platform's own client
    /// enforces it, or a self-hosted API server has none).
    pub overall: Option<Rate>,
    /// Deliveries in flight at once.
    pub in_flight: usize,
}

/// What a platform adapter implements for the worker: conversions and API calls, nothing else.
pub trait Deliver: Send + Sync {
    /// The platform's name in the outbox (`telegram`, `discord`).
    fn platform(&self) -> &str;

    /// The platform's allowances.
    fn limits(&self) -> Limits;

    /// The pacing a delivery is subject to besides the overall rate: a key (deliveries with the
    /// same key share it) and its rate. `None`: only the overall rate.
    fn pacing(&self, delivery: &Delivery) -> Option<(String, Rate)>;

    /// Sends a message to a user's chat; `Sent` carries the (last) message's id.
    fn send_to_user(&self, message: ToUser<'_>) -> impl Future<Output = Outcome> + Send;

    /// Deletes a user's message (it carried a secret). `chat` is the conversation's chat and
    /// `moved_to` where it continues, if it moved (the message is in one of the two).
    /// `Sent(None)` when the platform does not let bots delete users' messages there.
    fn delete_message(
        &self,
        chat: &str,
        moved_to: Option<&str>,
        message_id: &str,
    ) -> impl Future<Output = Outcome> + Send;

    /// Opens a staff space named `title` (a forum topic, a private thread); `Sent` carries its id.
    fn open_staff_space(&self, title: &str) -> impl Future<Output = Outcome> + Send;

    /// Posts in a staff space; `Sent` carries the post's id.
    fn post_to_staff(&self, space: &str, post: &StaffPost) -> impl Future<Output = Outcome> + Send;

    /// Closes (archives) a staff space.
    fn close_staff_space(&self, space: &str) -> impl Future<Output = Outcome> + Send;
}

/// A row given this many transient failures is given up (about two hours of backoff).
pub const MAX_ATTEMPTS: i64 = 20;

/// How long a leased row is this worker's. Longer than any one API call takes (adapters set
/// their clients' timeouts well under it), so a row is never sent by two live workers.
pub const LEASE: Duration = Duration::from_secs(30);

/// How often the outbox is looked at when nothing wakes the worker (another instance wrote).
const POLL: Duration = Duration::from_millis(250);

/// After a delivery completes, the next look waits this long so completions are batched.
const SETTLE: Duration = Duration::from_millis(10);

/// Exponential backoff for a failed delivery: 2, 4, 8… seconds after `attempts` earlier tries,
/// at most ten minutes.
pub fn backoff(attempts: i64) -> TimeDelta {
    let exp = attempts.clamp(0, 9) as u32;
    TimeDelta::seconds((2i64.pow(exp + 1)).min(600))
}

/// Runs the delivery worker for `deliver`'s platform until `shutdown` turns true (or its sender is
/// dropped): then it leases nothing more, lets the sends in progress finish, and returns.
pub async fn run<D: Deliver>(service: &Service, deliver: &D, mut shutdown: watch::Receiver<bool>) {
    let limits = deliver.limits();
    let pacer = Pacer::new(limits.overall);
    let platform = deliver.platform().to_owned();
    let capacity = limits.in_flight.max(1);
    let mut in_flight = FuturesUnordered::new();
    let mut next_look = Instant::now();
    tracing::info!(platform = %platform, in_flight = capacity, "delivery: started");
    loop {
        let stopping = stopping(&shutdown);
        if stopping && in_flight.is_empty() {
            break;
        }
        let room = capacity - in_flight.len();
        if !stopping && room > 0 && Instant::now() >= next_look {
            let now = Utc::now();
            let until = now + TimeDelta::from_std(LEASE).unwrap_or(TimeDelta::seconds(30));
            // The sends in flight keep running while the outbox is read: they may hold the
            // pool's connections or be next in line for one, and a read that waited for them
            // without polling them would wait for ever.
            let lease = service.store.lease_due_outbox(
                &platform,
                service.instance(),
                until,
                room as i64,
                now,
            );
            tokio::pin!(lease);
            let leased = loop {
                tokio::select! {
                    r = &mut lease => break r,
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                }
            };
            match leased {
                Ok(rows) => {
                    next_look = if rows.len() < room {
                        Instant::now() + POLL
                    } else {
                        Instant::now()
                    };
                    for row in rows {
                        in_flight.push(deliver_one(
                            service,
                            deliver,
                            &pacer,
                            row,
                            shutdown.clone(),
                        ));
                    }
                }
                Err(e) => {
                    tracing::warn!(platform = %platform, error = %error_chain(&e), "delivery: cannot read the outbox");
                    next_look = Instant::now() + Duration::from_secs(1);
                }
            }
        }
        let woken = service.outbox_ready.notified();
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {
                // The destination's next row may be due now.
                next_look = next_look.min(Instant::now() + SETTLE);
            }
            () = woken => next_look = Instant::now(),
            () = tokio::time::sleep_until(next_look.into()), if room > 0 && !stopping => {}
            _ = shutdown.changed(), if !stopping => {}
        }
    }
    tracing::info!(platform = %platform, "delivery: stopped");
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Delivers one leased row and records what came of it.
async fn deliver_one<D: Deliver>(
    service: &Service,
    deliver: &D,
    pacer: &Pacer,
    row: OutboxMessage,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = tracing::info_span!(
        "deliver",
        platform = %row.platform,
        outbox = row.id,
        destination = %row.destination,
        ticket = row.delivery.ticket_id(),
    );
    async move {
        let wait = pacer.reserve(deliver.pacing(&row.delivery));
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {
                    // Stopping: let go of the row now rather than when its lease expires.
                    let _ = service.store.retry_later_as(service.instance(), row.id, "not sent: shutting down", Utc::now(), false).await;
                    return;
                }
            }
        }
        let outcome = send(service, deliver, &row).await;
        record(service, &row, outcome).await;
    }
    .instrument(span)
    .await;
}

async fn send<D: Deliver>(service: &Service, deliver: &D, row: &OutboxMessage) -> Outcome {
    let platform = deliver.platform();
    match &row.delivery {
        Delivery::UserMessage(m) => {
            let route = match service.route_of(&m.conversation).await {
                Ok(route) => route,
                Err(e) => return Outcome::Transient(error_chain(&e)),
            };
            let chat = route.as_deref().unwrap_or(&m.conversation.chat_id);
            deliver
                .send_to_user(ToUser {
                    conversation: &m.conversation,
                    chat,
                    moved: route.is_some(),
                    text: &m.text,
                    buttons: &m.buttons,
                    reply_to: m.reply_to.as_deref(),
                })
                .await
        }
        Delivery::DeleteUserMessage {
            conversation,
            platform_message_id,
        } => {
            let route = match service.route_of(conversation).await {
                Ok(route) => route,
                Err(e) => return Outcome::Transient(error_chain(&e)),
            };
            deliver
                .delete_message(&conversation.chat_id, route.as_deref(), platform_message_id)
                .await
        }
        Delivery::OpenStaffSpace { ticket_id, title } => {
            match service.staff_space(*ticket_id, platform).await {
                Ok(Some(space)) => Outcome::Sent(Some(space)),
                Ok(None) => open_space(service, deliver, *ticket_id, title).await,
                Err(e) => Outcome::Transient(error_chain(&e)),
            }
        }
        Delivery::StaffPost { ticket_id, post } => {
            let space = match service.staff_space(*ticket_id, platform).await {
                Ok(Some(space)) => space,
                Ok(None) => {
                    // The space's opening failed for good earlier (the bot lacked a right, say):
                    // try again now, the right may have been granted since.
                    let title = match service.store.ticket(*ticket_id).await {
                        Ok(Some(t)) => ticket_title(&t),
                        Ok(None) => return Outcome::Permanent(format!("no ticket {ticket_id}")),
                        Err(e) => return Outcome::Transient(error_chain(&e)),
                    };
                    match open_space(service, deliver, *ticket_id, &title).await {
                        Outcome::Sent(Some(space)) => space,
                        Outcome::Sent(None) => {
                            return Outcome::Permanent("the platform opened no staff space".into());
                        }
                        other => return other,
                    }
                }
                Err(e) => return Outcome::Transient(error_chain(&e)),
            };
            deliver.post_to_staff(&space, post).await
        }
        Delivery::CloseStaffSpace { ticket_id } => {
            match service.staff_space(*ticket_id, platform).await {
                Ok(Some(space)) => deliver.close_staff_space(&space).await,
                Ok(None) => Outcome::Sent(None),
                Err(e) => Outcome::Transient(error_chain(&e)),
            }
        }
    }
}

/// Opens a ticket's staff space and records it, so later rows go there.
async fn open_space<D: Deliver>(
    service: &Service,
    deliver: &D,
    ticket_id: i64,
    title: &str,
) -> Outcome {
    match deliver.open_staff_space(title).await {
        Outcome::Sent(Some(space)) => {
            match service
                .remember_staff_space(ticket_id, deliver.platform(), &space)
                .await
            {
                Ok(()) => Outcome::Sent(Some(space)),
                // Opened but not recorded: retried, which may open a second space (reported).
                Err(e) => Outcome::Transient(format!(
                    "opened staff space {space} but could not record it: {}",
                    error_chain(&e)
                )),
            }
        }
        other => other,
    }
}

/// Writes the outcome to the outbox (a few tries: an unrecorded success would be sent again).
async fn record(service: &Service, row: &OutboxMessage, outcome: Outcome) {
    let now = Utc::now();
    let counted = match &outcome {
        Outcome::Sent(_) => DeliveryOutcome::sent,
        Outcome::RetryAfter(_) => DeliveryOutcome::retry_after,
        Outcome::Transient(_) => DeliveryOutcome::transient,
        Outcome::Permanent(_) => DeliveryOutcome::permanent,
    };
    service.metrics().delivery(&row.platform, counted);
    for attempt in 0..3u64 {
        let result = match &outcome {
            Outcome::Sent(id) => {
                service
                    .store
                    .mark_delivered_as(service.instance(), row.id, id.as_deref(), now)
                    .await
            }
            Outcome::RetryAfter(wait) => {
                let at = now + TimeDelta::from_std(*wait).unwrap_or(TimeDelta::seconds(1));
                tracing::info!(wait_ms = wait.as_millis() as u64, "delivery: rate limited");
                service
                    .store
                    .retry_later_as(service.instance(), row.id, "rate limited", at, false)
                    .await
            }
            Outcome::Transient(e) if row.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::error!(error = %e, attempts = row.attempts + 1, "delivery: given up after repeated failures");
                service
                    .store
                    .mark_failed_as(service.instance(), row.id, e, now)
                    .await
            }
            Outcome::Transient(e) => {
                let at = now + backoff(row.attempts);
                tracing::warn!(error = %e, retry_at = %at, "delivery: failed, will retry");
                service
                    .store
                    .retry_later_as(service.instance(), row.id, e, at, true)
                    .await
            }
            Outcome::Permanent(e) => {
                tracing::error!(error = %e, "delivery: refused for good");
                service
                    .store
                    .mark_failed_as(service.instance(), row.id, e, now)
                    .await
            }
        };
        match result {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "delivery: cannot record the outcome");
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
}

/// Token buckets (GCRA): the overall rate and one per pacing key.
#[derive(Debug)]
struct Pacer {
    overall: Option<Mutex<Bucket>>,
    keyed: Mutex<HashMap<String, Bucket>>,
}

/// One bucket: `tat` is when it would be empty again at the sustained rate.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    interval: Duration,
    tolerance: Duration,
    tat: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Self {
        let interval = Duration::from_secs_f64(1.0 / rate.per_second.max(1e-3));
        Bucket {
            interval,
            tolerance: interval * rate.burst.saturating_sub(1),
            tat: now,
        }
    }

    /// Takes one token; returns how long to wait before using it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let tat = self.tat.max(now);
        let allowed_at = tat.checked_sub(self.tolerance).unwrap_or(now);
        self.tat = tat + self.interval;
        allowed_at.saturating_duration_since(now)
    }
}

/// Buckets kept at most; idle ones are dropped past this.
const PACING_KEYS: usize = 4096;

impl Pacer {
    fn new(overall: Option<Rate>) -> Self {
        Pacer {
            overall: overall.map(|r| Mutex::new(Bucket::new(r, Instant::now()))),
            keyed: Mutex::new(HashMap::new()),
        }
    }

    fn reserve(&self, key: Option<(String, Rate)>) -> Duration {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some((key, rate)) = key
            && let Ok(mut keyed) = self.keyed.lock()
        {
            if keyed.len() >= PACING_KEYS {
                keyed.retain(|_, b| b.tat > now);
            }
            let bucket = keyed.entry(key).or_insert_with(|| Bucket::new(rate, now));
            wait = bucket.reserve(now);
        }
        if let Some(overall) = &self.overall
            && let Ok(mut bucket) = overall.lock()
        {
            // The overall token is taken for the moment the keyed wait ends.
            wait += bucket.reserve(now + wait);
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0).num_seconds(), 2);
        assert_eq!(backoff(3).num_seconds(), 16);
        assert_eq!(backoff(100).num_seconds(), 600);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_paces() {
        let now = Instant::now();
        let mut b = Bucket::new(
            Rate {
                per_second: 10.0,
                burst: 3,
            },
            now,
        );
        assert_eq!(b.reserve(now), Duration::ZERO);
        assert_eq!(b.reserve(now), Duration::ZERO);
        assert_eq!(b.reserve(now), Duration::ZERO);
        let fourth = b.reserve(now);
        assert!(
            fourth >= Duration::from_millis(90) && fourth <= Duration::from_millis(110),
            "{fourth:?}"
        );
        let fifth = b.reserve(now);
        assert!(fifth >= Duration::from_millis(190), "{fifth:?}");
    }

    #[test]
    fn keys_are_paced_separately_under_one_overall_rate() {
        let p = Pacer::new(Some(Rate {
            per_second: 1000.0,
            burst: 1000,
        }));
        let slow = Rate {
            per_second: 1.0,
            burst: 1,
        };
        assert_eq!(p.reserve(Some(("a".into(), slow))), Duration::ZERO);
        assert_eq!(p.reserve(Some(("b".into(), slow))), Duration::ZERO);
        let again = p.reserve(Some(("a".into(), slow)));
        assert!(again >= Duration::from_millis(900), "{again:?}");
    }
}
