//! The async glue between the platform adapters and Kefu's pure parts: an inbound message is
//! stored, understood, decided on by the conversation policy, and everything it causes is
//! persisted in one transaction; then one delivery pipeline sends what the outbox holds.
//!
//! # Layout
//! - [`Service`] (this file): the shared state — the store, the NLU engine (swappable when the
//!   KB reloads), the configuration, this process's identity for leases.
//! - `inbound`: [`Service::handle_inbound`] and [`Service::recover`] — a user's message from
//!   the platform to a committed turn.
//! - `staff`: [`Service::staff_action`] — claim, reply, resolve, release, each with its policy
//!   step in one transaction; an actor linked to a staff account acts under the account's name.
//! - [`accounts`]: staff accounts for the console — passwords, sign-in with throttling,
//!   sessions, API tokens, links to Telegram and Discord users.
//! - [`reports`]: [`Service::report`], the console's daily counts, medians and ratings.
//! - [`labels`]: [`Service::label_ticket`] — what staff say a resolved ticket was about, stored
//!   with the user's question for suggesting KB changes; the label post that follows a resolve
//!   in a staff space whose adapter handles its buttons.
//! - `turn`: the effects of one policy step inside its transaction (transcript, tickets, outbox
//!   rows for users and for every staff space).
//! - [`delivery`]: the delivery worker, generic over the small [`delivery::Deliver`] trait each
//!   platform adapter implements.
//! - [`metrics`]: what the service counts and measures, for Prometheus ([`Service::scrape`]).
//! - `directory`: the look-ups adapters need on every event (is this channel a ticket's staff
//!   space? where does this conversation continue?), answered from a cache kept current.
//!
//! # How a message flows
//! 1. The adapter converts a platform update into an [`Inbound`] and calls
//!    [`Service::handle_inbound`]: the text is cleaned (control characters, length) and secrets
//!    are found and redacted — nothing below ever sees the raw text.
//! 2. The redacted message is stored idempotently (platform + chat + message id) and committed on
//!    its own, *leased* to this process for its handling: a repeated delivery stops here, and a
//!    crash after this point loses nothing — another handler takes the message over once the
//!    lease expires ([`Service::recover`]), never before. A message whose conversation has an
//!    earlier one unfinished (in this process or another) lets its lease go and waits: whoever
//!    finishes the earlier one takes it next, in order — recovery, when that one's handler died.
//! 3. One transaction: the message is marked handled *only if this process still holds its
//!    lease* (otherwise the turn rolls back: another handler owns it), the conversation is
//!    loaded and locked (and repaired if its ticket was closed elsewhere), the NLU decides unless
//!    a human holds the chat, [`kefu_core::handle`] returns the next state and actions, and the
//!    actions are persisted — transcript lines, ticket, outbox rows for the user and for the
//!    staff spaces, misses, ratings — with the new state.
//! 4. The delivery worker leases due outbox rows (one destination at a time, in order; many
//!    destinations at once) and hands them to the platform's [`delivery::Deliver`].
//!
//! **Invariant:** nothing leaves the process except through the outbox, written in the same
//! transaction as the change that caused it.
//!
//! This crate knows no chat platform: adapters convert their updates at the edge.

pub mod accounts;
pub mod delivery;
mod directory;
pub mod housekeeping;
mod inbound;
pub mod labels;
pub mod leadership;
pub mod metrics;
pub mod reports;
mod staff;
mod turn;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use kefu_core::state::Lang;
use kefu_core::{ConversationState, SupportHours};
use kefu_nlu::engine::Engine;
use kefu_nlu::kb::{KnowledgeBase, Meta, Vocabulary};
use kefu_store::{Store, StoreError};
use tokio::sync::Notify;

pub use accounts::{AccountError, LoginOutcome, StaffAccount, StaffRole, StaffSession};
pub use inbound::Handled;
pub use kefu_core::staff::{LabelButton, StaffAction, StaffOutcome};
pub use kefu_store::{LabelKind, TicketLabel};
pub use labels::{Label, LabelError};
pub use reports::{Report, ReportDay};
pub use staff::StaffActor;

/// Why the service could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A conversation state could not be encoded.
    #[error("cannot encode conversation state: {0}")]
    State(#[from] serde_json::Error),
    /// The operating system gave no randomness (for a ticket code, a token, a salt).
    #[error("cannot get randomness from the operating system: {0}")]
    Random(getrandom::Error),
    /// A staff account could not be created or changed as asked.
    #[error(transparent)]
    Account(#[from] accounts::AccountError),
    /// A user message arrived at a service built without the NLU (the staff desk).
    #[error("this service was built without the NLU engine and cannot answer users")]
    NoEngine,
    /// A ticket label was refused (an unknown intent, a bad name).
    #[error(transparent)]
    Label(#[from] labels::LabelError),
}

impl ServiceError {
    /// True when trying again later may succeed (the database is unreachable or busy); false
    /// when the input itself is at fault and never will be handled.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_transient(),
            Self::Random(_) => true,
            Self::State(_) | Self::NoEngine | Self::Account(_) | Self::Label(_) => false,
        }
    }
}

type Result<T> = std::result::Result<T, ServiceError>;

/// An error with its whole chain of causes, for logs: "database error while trying to record an
/// inbound message: error returned from database: invalid byte sequence…".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Per-user flood control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimit {
    /// Messages allowed per window.
    pub max_messages: usize,
    /// The window.
    pub window: Duration,
}

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// When staff are on duty.
    pub hours: SupportHours,
    /// Per-user flood control (counted in the database, so it holds across instances).
    pub flood: FloodLimit,
    /// The platforms with a staff space (a Telegram staff forum, a Discord staff channel): every
    /// ticket gets a space on each, whatever platform its user is on.
    pub staff_spaces: Vec<String>,
    /// The language of staff-side texts (notices, summaries, refusals).
    pub staff_language: Lang,
    /// This process's name in leases (of inbound messages, outbox rows, platform connections):
    /// unique per process, e.g. [`instance_id`].
    pub instance: String,
    /// How long a stored message is this process's to handle before another may take it over.
    pub inbound_lease: Duration,
    /// The longest text kept of a message; longer ones are cut and the user is told.
    pub max_message_bytes: usize,
    /// The term of a platform connection's lease ([`Service::lead`]): another instance takes the
    /// connection over within this plus a second after its holder died.
    pub lease_term: Duration,
    /// The staff spaces whose adapter handles label buttons: a ticket resolved from one of them
    /// gets a "what was the question about?" post there, before the space closes.
    pub label_spaces: Vec<String>,
}

impl ServiceConfig {
    /// Defaults for everything but the hours and the flood limit.
    pub fn new(hours: SupportHours, flood: FloodLimit) -> Self {
        ServiceConfig {
            hours,
            flood,
            staff_spaces: Vec::new(),
            staff_language: Lang::Zh,
            instance: instance_id(),
            inbound_lease: Duration::from_secs(10),
            max_message_bytes: 8 * 1024,
            lease_term: Duration::from_secs(3),
            label_spaces: Vec::new(),
        }
    }
}

/// A name for this process that no other process shares: host, pid and random bits.
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let mut bytes = [0u8; 4];
    let salt = getrandom::fill(&mut bytes)
        .map(|()| u32::from_le_bytes(bytes))
        .unwrap_or_default();
    format!("{host}-{}-{salt:08x}", std::process::id())
}

/// The service: one per process, shared by every adapter.
#[derive(Debug)]
pub struct Service {
    nlu: Option<ArcSwapOption<Engine>>,
    /// Staff events need a KB in their context but consult nothing in it: a service without the
    /// NLU (the desk) gives them this empty one.
    empty_kb: KnowledgeBase,
    store: Store,
    config: ServiceConfig,
    /// Woken whenever a committed transaction put rows in the outbox.
    outbox_ready: Notify,
    directory: directory::Directory,
    /// The platform connections this process leads or stands by for.
    roles: leadership::Roles,
    /// Counters and histograms of what this process did.
    metrics: metrics::Metrics,
}

/// Characters of a ticket code: no 0/O, 1/I/L, so it reads unambiguously over the phone.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A fresh six-character ticket code from the operating system's randomness.
pub fn new_ticket_code() -> Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(ServiceError::Random)?;
    Ok(bytes
        .iter()
        .map(|b| CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char)
        .collect())
}

impl Service {
    /// A service that answers users with `engine`.
    pub fn new(engine: Engine, store: Store, config: ServiceConfig) -> Self {
        Self::build(
            Some(ArcSwapOption::new(Some(Arc::new(engine)))),
            store,
            config,
        )
    }

    /// A service for staff actions and views only (the desk): no KB is loaded or trained, and
    /// [`handle_inbound`](Self::handle_inbound) refuses user messages.
    pub fn without_nlu(store: Store, config: ServiceConfig) -> Self {
        Self::build(None, store, config)
    }

    fn build(nlu: Option<ArcSwapOption<Engine>>, store: Store, config: ServiceConfig) -> Self {
        Service {
            nlu,
            empty_kb: KnowledgeBase {
                meta: Meta::default(),
                intents: Vec::new(),
                out_of_scope: Vec::new(),
                vocabulary: Vocabulary::default(),
                source: std::path::PathBuf::new(),
                warnings: Vec::new(),
            },
            store,
            config,
            outbox_ready: Notify::new(),
            directory: directory::Directory::default(),
            roles: leadership::Roles::default(),
            metrics: metrics::Metrics::new(),
        }
    }

    /// The store, for read-only views (the staff desk, the console).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The NLU engine serving now, if this service has one. Hold the `Arc` for the length of one
    /// message: a KB reload swaps the engine for later messages only.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.nlu.as_ref().and_then(|n| n.load_full())
    }

    /// Swaps in a newly trained engine (a KB reload): messages in hand finish on the old one.
    /// Returns `false` (and does nothing) on a service built without the NLU.
    pub fn replace_engine(&self, engine: Engine) -> bool {
        match &self.nlu {
            Some(n) => {
                n.store(Some(Arc::new(engine)));
                true
            }
            None => false,
        }
    }

    /// This process's name in leases.
    pub fn instance(&self) -> &str {
        &self.config.instance
    }

    /// Wakes delivery workers: rows were committed to the outbox.
    fn outbox_changed(&self) {
        self.outbox_ready.notify_waiters();
    }
}

/// A conversation state from the store; an unreadable one (say, from an older version) restarts
/// the conversation rather than failing the user's message.
fn decode_state(value: Option<&serde_json::Value>) -> ConversationState {
    match value {
        None => ConversationState::default(),
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable conversation state; starting afresh");
            ConversationState::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_codes_are_six_unambiguous_characters() {
        let code = new_ticket_code().expect("randomness");
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        assert_ne!(
            new_ticket_code().expect("randomness"),
            code,
            "two codes in a row differ"
        );
    }

    #[test]
    fn instance_ids_differ_between_calls() {
        assert_ne!(instance_id(), instance_id());
    }

    #[test]
    fn an_error_chain_names_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner cause"));
        assert_eq!(error_chain(&e), "outer: inner cause");
    }
}
