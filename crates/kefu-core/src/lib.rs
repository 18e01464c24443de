//! Kefu's domain and conversation policy: what happens between a user's first message and a
//! resolved ticket, whatever platform the user is on.
//!
//! Pure and synchronous: given a conversation's state, an inbound event and the NLU's verdict, the
//! policy returns the next state and the actions to carry out (replies, a ticket to open, a message
//! to relay to staff…). It performs no I/O, knows no database and no chat platform, and reads no
//! clock: the caller passes the time in. That is why every transition is unit-tested here.
//!
//! ```text
//! service: load state ─► redact + NLU ─► handle(&state, &event, &ctx) ─► Step { state, actions }
//!                                                                         │
//!                         store state, run actions (outbox, tickets…) ◄───┘
//! ```
//!
//! # Layout
//! - [`model`]: domain types shared by the store, the service and the adapters (platform-neutral,
//!   string ids).
//! - [`state`]: [`ConversationState`] and its [`Phase`]s — what the store keeps between messages.
//! - [`event`]: [`Event`]s — a user message (redacted, classified) or a staff action.
//! - [`context`]: [`Context`] — the KB, the time, the queue, a fresh ticket code, flood counts.
//! - [`action`]: [`Action`]s — what the service must do next (reply, open a ticket, relay…).
//! - [`policy`]: [`handle`], the state machine itself.
//! - [`clauses`]: a message that asks two things, cut into clauses the NLU classifies one by one.
//! - [`invariants`]: what every step must respect (the bot silent while staff hold the chat, one
//!   ticket per escalation, a way out of every state), checkable by tests and fuzzers.
//! - [`commands`]: commands in both languages ("转人工", `/human`, button payloads).
//! - [`details`]: ticket details and their validators (tx hashes, amounts, addresses, networks…).
//! - [`hours`]: [`SupportHours`], timezone-aware opening times.
//! - [`messages`]: every phrase the bot says, in Chinese and English.
//! - [`render`]: plain-text rendering for adapters (splitting at a length limit, ticket titles).
//! - [`delivery`]: [`delivery::Delivery`] — everything the bot sends, as the outbox keeps it.
//! - [`staff`]: staff actions, their outcomes, and every text staff read (both languages).
//! - [`text`]: cleaning text at the edge (control characters, length caps, terminal display).
//!
//! # The conversation, in words
//! `Idle` → a question answered → `AwaitingFeedback` ("did this help?": yes → `Idle`, no →
//! `OfferingHuman`). Two close intents → `Clarifying` (an option → answered; neither →
//! `OfferingHuman`). Two misses in a row → `OfferingHuman` (yes → ticket, no → `Idle`). A ticket
//! for an intent with `collect` details goes through `Collecting` (one question at a time) first;
//! then `Queued` → staff claim → `WithStaff` → staff resolve → `Rating` → `RatingComment` →
//! `Idle`. The human command, cancel, transcript, language and help work from every bot phase.
//!
//! # What this crate must not know
//! Tokio, sqlx, teloxide, serenity — and the original text of a message that carried a secret:
//! the service redacts before calling [`handle`], which only ever sees labels such as
//! `[redacted: seed phrase, 12 words]`.

pub mod action;
pub mod adapter;
pub mod clauses;
pub mod commands;
pub mod context;
pub mod delivery;
pub mod details;
pub mod event;
pub mod hours;
pub mod invariants;
pub mod messages;
pub mod model;
pub mod policy;
pub mod render;
pub mod staff;
pub mod state;
pub mod text;

pub use action::{Action, NewTicket, Reply};
pub use context::{Context, Flood, QueueInfo};
pub use event::{Event, SecretFound, UserMessage};
pub use hours::SupportHours;
pub use policy::{Step, handle};
pub use state::{ConversationState, EscalationReason, Lang, Phase};
