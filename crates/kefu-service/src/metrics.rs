//! What the service counts and measures, for Prometheus (`kefu run`'s `/metrics`). The service
//! records events where they happen — after the transaction that made them real committed — and
//! the gauges that describe the database (the outbox backlog, the human queue) are read from the
//! store when scraped ([`Service::scrape`]), so they are right across every instance sharing it.
//!
//! Names follow Prometheus conventions: `kefu_` prefix, base units (seconds), counters end in
//! `_total` (added by the encoder). Label values are bounded: platforms, the KB's intents, the
//! four priorities, the five scores.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kefu_core::model::Priority;
use kefu_nlu::engine::{Decision, DecisionKind};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::{Service, error_chain};

/// The `Content-Type` of [`Service::scrape`]'s text (OpenMetrics 1.0, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlatformLabel {
    platform: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    kind: DecisionLabel,
    intent: String,
}

/// What the NLU decided, as counted.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "the variant names are the label values Prometheus shows"
)]
enum DecisionLabel {
    answer,
    clarify,
    escalate,
    out_of_scope,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    platform: String,
    outcome: DeliveryOutcome,
}

/// What came of one delivery attempt (the label of `kefu_delivery_attempts_total`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "the variant names are the label values Prometheus shows"
)]
pub enum DeliveryOutcome {
    /// The platform confirmed it.
    sent,
    /// The platform asked to wait (HTTP 429).
    retry_after,
    /// A failure that may pass: retried with backoff.
    transient,
    /// Refused for good: set aside.
    permanent,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PriorityLabel {
    priority: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScoreLabel {
    score: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KbLabels {
    version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type Histograms<S> = Family<S, Histogram, fn() -> Histogram>;
type SecondsGauge = Gauge<f64, AtomicU64>;

fn reply_buckets() -> Histogram {
    // 5 ms … ~20 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

fn first_response_buckets() -> Histogram {
    Histogram::new([
        30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
    ])
}

/// The service's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    inbound: Family<PlatformLabel, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    nlu_seconds: Histogram,
    reply_seconds: Histograms<PlatformLabel>,
    outbox_depth: Family<PlatformLabel, Gauge>,
    outbox_oldest: Family<PlatformLabel, SecondsGauge>,
    deliveries: Family<DeliveryLabels, Counter>,
    tickets_opened: Family<PriorityLabel, Counter>,
    tickets_claimed: Family<PriorityLabel, Counter>,
    tickets_resolved: Family<PriorityLabel, Counter>,
    queue_length: Gauge,
    queue_oldest: SecondsGauge,
    first_response: Histograms<PriorityLabel>,
    ratings: Family<ScoreLabel, Counter>,
    secrets: Family<PlatformLabel, Counter>,
    kb_reloads: Family<OutcomeLabel, Counter>,
    pruned: Family<TableLabel, Counter>,
    console_streams: Gauge,
    console_polls: Gauge,
    kb_info: Family<KbLabels, Gauge>,
    kb_intents: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kefu");
        let m = Metrics {
            registry: Registry::default(),
            inbound: Family::default(),
            decisions: Family::default(),
            // 50 µs … ~0.4 s.
            nlu_seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 14)),
            reply_seconds: Family::new_with_constructor(reply_buckets),
            outbox_depth: Family::default(),
            outbox_oldest: Family::default(),
            deliveries: Family::default(),
            tickets_opened: Family::default(),
            tickets_claimed: Family::default(),
            tickets_resolved: Family::default(),
            queue_length: Gauge::default(),
            queue_oldest: Gauge::default(),
            first_response: Family::new_with_constructor(first_response_buckets),
            ratings: Family::default(),
            secrets: Family::default(),
            kb_reloads: Family::default(),
            pruned: Family::default(),
            console_streams: Gauge::default(),
            console_polls: Gauge::default(),
            kb_info: Family::default(),
            kb_intents: Gauge::default(),
        };
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("build_info", "Kefu's version (always 1)", build);
        registry.register(
            "inbound_messages",
            "User messages received and stored (a platform's repeated delivery of one is not counted again)",
            m.inbound.clone(),
        );
        registry.register(
            "nlu_decisions",
            "What the NLU decided for a user's message: answer, clarify, escalate or out_of_scope, with the intent (\"none\" when there is no guess)",
            m.decisions.clone(),
        );
        registry.register_with_unit(
            "nlu_decision_duration",
            "Time the NLU took to classify one message and decide",
            Unit::Seconds,
            m.nlu_seconds.clone(),
        );
        registry.register_with_unit(
            "reply_enqueued_duration",
            "From a user's message arriving to the bot's reply being committed to the outbox",
            Unit::Seconds,
            m.reply_seconds.clone(),
        );
        registry.register(
            "outbox_depth",
            "Outbox rows not yet delivered (nor given up), per platform, across every instance",
            m.outbox_depth.clone(),
        );
        registry.register_with_unit(
            "outbox_oldest_age",
            "Age of the oldest undelivered outbox row, per platform (0 when none waits)",
            Unit::Seconds,
            m.outbox_oldest.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Delivery attempts by outcome: sent, retry_after (the platform's rate limit), transient (retried with backoff), permanent (set aside)",
            m.deliveries.clone(),
        );
        registry.register(
            "tickets_opened",
            "Tickets opened (handed to the human queue), by priority",
            m.tickets_opened.clone(),
        );
        registry.register(
            "tickets_claimed",
            "Tickets claimed by a staff member, by priority",
            m.tickets_claimed.clone(),
        );
        registry.register(
            "tickets_resolved",
            "Tickets resolved by staff, by priority",
            m.tickets_resolved.clone(),
        );
        registry.register(
            "queue_length",
            "Tickets waiting in the human queue (not yet claimed), across every instance",
            m.queue_length.clone(),
        );
        registry.register_with_unit(
            "queue_oldest_wait",
            "How long the longest-waiting unclaimed ticket has waited (0 when the queue is empty)",
            Unit::Seconds,
            m.queue_oldest.clone(),
        );
        registry.register_with_unit(
            "first_response",
            "From a ticket opening to the first message a staff member sent its user, by priority",
            Unit::Seconds,
            m.first_response.clone(),
        );
        registry.register(
            "ratings",
            "Ratings users gave after a ticket, per score (1-5)",
            m.ratings.clone(),
        );
        registry.register(
            "secrets_redacted",
            "Secrets (seed phrases, private keys) found in users' messages and redacted, per platform",
            m.secrets.clone(),
        );
        registry.register(
            "pruned_rows",
            "Rows housekeeping deleted after database.retention_days, per table: inbound_messages (handled), outbox (delivered or given up), dead_letters, bot_decisions",
            m.pruned.clone(),
        );
        registry.register(
            "console_event_streams",
            "The staff console's live-page event streams open now",
            m.console_streams.clone(),
        );
        registry.register(
            "console_polls",
            "The staff console's database polls running now: one per page watched, shared by every stream watching it",
            m.console_polls.clone(),
        );
        registry.register(
            "kb_reloads",
            "Knowledge-base reloads by outcome: ok, or failed (the old KB kept serving)",
            m.kb_reloads.clone(),
        );
        registry.register(
            "kb_info",
            "The knowledge base serving now: its version (a hash of its files) as a label; always 1",
            m.kb_info.clone(),
        );
        registry.register(
            "kb_intents",
            "Intents in the knowledge base serving now",
            m.kb_intents.clone(),
        );
        // The series a rule may compare with exist from the start, at 0.
        for p in [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ] {
            let label = priority_label(p);
            let _ = m.tickets_opened.get_or_create(&label);
            let _ = m.tickets_claimed.get_or_create(&label);
            let _ = m.tickets_resolved.get_or_create(&label);
        }
        for score in 1..=5u8 {
            let _ = m.ratings.get_or_create(&ScoreLabel {
                score: score.to_string(),
            });
        }
        for outcome in ["ok", "failed"] {
            let _ = m.kb_reloads.get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            });
        }
        Metrics { registry, ..m }
    }

    /// A user's message stored for handling.
    pub(crate) fn inbound(&self, platform: &str) {
        self.inbound.get_or_create(&platform_label(platform)).inc();
    }

    /// The NLU's time for one decision.
    pub(crate) fn nlu_time(&self, took: Duration) {
        self.nlu_seconds.observe(took.as_secs_f64());
    }

    /// A decision of a committed turn.
    pub(crate) fn decision(&self, d: &Decision) {
        let kind = match d.decision {
            DecisionKind::Answer => DecisionLabel::answer,
            DecisionKind::Clarify => DecisionLabel::clarify,
            // An escalation whose most likely class is "none of the KB's topics".
            DecisionKind::Escalate if d.out_of_scope >= d.confidence => DecisionLabel::out_of_scope,
            DecisionKind::Escalate => DecisionLabel::escalate,
        };
        let intent = d.intent.clone().unwrap_or_else(|| "none".to_owned());
        self.decisions
            .get_or_create(&DecisionLabels { kind, intent })
            .inc();
    }

    /// A reply committed to the outbox `took` after its message arrived.
    pub(crate) fn reply_enqueued(&self, platform: &str, took: Duration) {
        self.reply_seconds
            .get_or_create(&platform_label(platform))
            .observe(took.as_secs_f64());
    }

    /// Secrets found in a user's message and redacted.
    pub(crate) fn secrets_redacted(&self, platform: &str, count: usize) {
        self.secrets
            .get_or_create(&platform_label(platform))
            .inc_by(count as u64);
    }

    /// One delivery attempt's outcome.
    pub(crate) fn delivery(&self, platform: &str, outcome: DeliveryOutcome) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                platform: platform.to_owned(),
                outcome,
            })
            .inc();
    }

    pub(crate) fn ticket_opened(&self, priority: Priority) {
        self.tickets_opened
            .get_or_create(&priority_label(priority))
            .inc();
    }

    pub(crate) fn ticket_claimed(&self, priority: Priority) {
        self.tickets_claimed
            .get_or_create(&priority_label(priority))
            .inc();
    }

    pub(crate) fn ticket_resolved(&self, priority: Priority) {
        self.tickets_resolved
            .get_or_create(&priority_label(priority))
            .inc();
    }

    /// A staff member's first message to a ticket's user, `took` after the ticket opened.
    pub(crate) fn first_response(&self, priority: Priority, took: Duration) {
        self.first_response
            .get_or_create(&priority_label(priority))
            .observe(took.as_secs_f64());
    }

    pub(crate) fn rating(&self, score: u8) {
        self.ratings
            .get_or_create(&ScoreLabel {
                score: score.to_string(),
            })
            .inc();
    }

    /// A knowledge-base reload: `Ok((version, intents))` now serving, or it failed (the old KB
    /// serves on).
    pub fn kb_reload(&self, result: Result<(&str, usize), ()>) {
        let outcome = match result {
            Ok((version, intents)) => {
                self.kb_loaded(version, intents);
                "ok"
            }
            Err(()) => "failed",
        };
        self.kb_reloads
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A console event stream opened (`true`) or closed.
    pub fn console_stream(&self, opened: bool) {
        self.console_streams.inc_by(if opened { 1 } else { -1 });
    }

    /// A console poll started (`true`) or ended.
    pub fn console_poll(&self, started: bool) {
        self.console_polls.inc_by(if started { 1 } else { -1 });
    }

    /// What one housekeeping pass deleted.
    pub(crate) fn pruned(&self, p: &kefu_store::Pruned) {
        for (table, n) in [
            ("inbound_messages", p.inbound),
            ("outbox", p.outbox),
            ("dead_letters", p.dead_letters),
            ("bot_decisions", p.decisions),
        ] {
            self.pruned
                .get_or_create(&TableLabel {
                    table: table.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// The knowledge base now serving (at start-up, and after a reload).
    pub fn kb_loaded(&self, version: &str, intents: usize) {
        self.kb_info.clear();
        self.kb_info
            .get_or_create(&KbLabels {
                version: version.to_owned(),
            })
            .set(1);
        self.kb_intents
            .set(i64::try_from(intents).unwrap_or(i64::MAX));
    }

    /// Sets the outbox gauges from `(platform, rows waiting, oldest row's creation)` of each
    /// platform with a backlog.
    fn set_outbox(&self, backlog: &[(String, i64, DateTime<Utc>)], now: DateTime<Utc>) {
        for (platform, depth, oldest) in backlog {
            let label = platform_label(platform);
            self.outbox_depth.get_or_create(&label).set(*depth);
            self.outbox_oldest
                .get_or_create(&label)
                .set(seconds_between(*oldest, now));
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics: cannot encode");
        }
        out
    }
}

fn platform_label(platform: &str) -> PlatformLabel {
    PlatformLabel {
        platform: platform.to_owned(),
    }
}

fn priority_label(priority: Priority) -> PriorityLabel {
    PriorityLabel {
        priority: priority.as_str().to_owned(),
    }
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).to_std().map_or(0.0, |d| d.as_secs_f64())
}

impl Service {
    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Refreshes the gauges read from the database (the outbox backlog per platform, the human
    /// queue) and returns every metric in the text exposition format ([`CONTENT_TYPE`]). A
    /// database that cannot be read leaves those gauges as they were (and logs why).
    pub async fn scrape(&self, platforms: &[&str]) -> String {
        let now = Utc::now();
        match self.store.outbox_backlog().await {
            Ok(backlog) => {
                // Every platform `kefu run` serves reads 0 when nothing waits for it.
                let m = &self.metrics;
                m.outbox_depth.clear();
                m.outbox_oldest.clear();
                for platform in platforms {
                    let label = platform_label(platform);
                    m.outbox_depth.get_or_create(&label).set(0);
                    m.outbox_oldest.get_or_create(&label).set(0.0);
                }
                m.set_outbox(&backlog, now);
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "metrics: cannot read the outbox backlog")
            }
        }
        match self.store.open_tickets(now).await {
            Ok(open) => {
                let queued = open
                    .iter()
                    .filter(|t| t.ticket.status == kefu_core::model::TicketStatus::Queued);
                let (count, oldest) = queued.fold((0i64, 0.0f64), |(n, oldest), t| {
                    let waited = t.waiting.to_std().map_or(0.0, |d| d.as_secs_f64());
                    (n + 1, oldest.max(waited))
                });
                self.metrics.queue_length.set(count);
                self.metrics.queue_oldest.set(oldest);
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "metrics: cannot read the queue")
            }
        }
        self.metrics.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: DecisionKind, intent: Option<&str>, confidence: f32, oos: f32) -> Decision {
        Decision {
            decision: kind,
            intent: intent.map(str::to_owned),
            confidence,
            candidates: Vec::new(),
            out_of_scope: oos,
            language: "en".to_owned(),
        }
    }

    #[test]
    fn the_exposition_names_every_metric_with_its_labels() {
        let m = Metrics::new();
        m.inbound("telegram");
        m.decision(&decision(DecisionKind::Answer, Some("deposit"), 0.9, 0.0));
        m.decision(&decision(DecisionKind::Escalate, Some("deposit"), 0.2, 0.7));
        m.decision(&decision(DecisionKind::Escalate, None, 0.3, 0.1));
        m.nlu_time(Duration::from_micros(120));
        m.reply_enqueued("telegram", Duration::from_millis(40));
        m.delivery("telegram", DeliveryOutcome::retry_after);
        m.ticket_opened(Priority::Urgent);
        m.first_response(Priority::Urgent, Duration::from_secs(90));
        m.rating(5);
        m.secrets_redacted("discord", 2);
        m.kb_loaded("abc123", 40);
        m.kb_reload(Ok(("def456", 41)));
        m.kb_reload(Err(()));
        let text = m.encode();
        for line in [
            "kefu_inbound_messages_total{platform=\"telegram\"} 1",
            "kefu_nlu_decisions_total{kind=\"answer\",intent=\"deposit\"} 1",
            "kefu_nlu_decisions_total{kind=\"out_of_scope\",intent=\"deposit\"} 1",
            "kefu_nlu_decisions_total{kind=\"escalate\",intent=\"none\"} 1",
            "kefu_nlu_decision_duration_seconds_count 1",
            "kefu_reply_enqueued_duration_seconds_count{platform=\"telegram\"} 1",
            "kefu_delivery_attempts_total{platform=\"telegram\",outcome=\"retry_after\"} 1",
            "kefu_tickets_opened_total{priority=\"urgent\"} 1",
            "kefu_first_response_seconds_bucket{le=\"120.0\",priority=\"urgent\"} 1",
            "kefu_ratings_total{score=\"5\"} 1",
            "kefu_secrets_redacted_total{platform=\"discord\"} 2",
            "kefu_kb_info{version=\"def456\"} 1",
            "kefu_kb_intents 41",
            "kefu_kb_reloads_total{outcome=\"ok\"} 1",
            "kefu_kb_reloads_total{outcome=\"failed\"} 1",
            "# TYPE kefu_queue_length gauge",
            "# UNIT kefu_queue_oldest_wait_seconds seconds",
            "kefu_tickets_claimed_total{priority=\"low\"} 0",
            "kefu_ratings_total{score=\"1\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(
            !text.contains("abc123"),
            "the replaced KB version is gone:\n{text}"
        );
    }
}
