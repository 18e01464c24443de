//! What the service knows that core needs: the KB, the time, the queue, a fresh ticket code, and
//! how many messages this user sent lately. Passing these in keeps core deterministic: the same
//! state, event and context always give the same step.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kefu_nlu::kb::KnowledgeBase;

use crate::hours::SupportHours;

/// Everything besides the state and the event that a step depends on.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The knowledge base answers come from (`Engine::kb()`).
    pub kb: &'a KnowledgeBase,
    /// The current time.
    pub now: DateTime<Utc>,
    /// When staff are on duty.
    pub hours: &'a SupportHours,
    /// The human queue as it stands.
    pub queue: QueueInfo,
    /// A fresh, random verification code, used only if this step opens a ticket.
    pub ticket_code: &'a str,
    /// Flood control for this user.
    pub flood: Flood,
}

/// The human queue, from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueInfo {
    /// 1-based place: of this conversation's ticket if it is queued, else the place a ticket
    /// opened now would take (tickets of at least its priority ahead, plus one). 0 is read as 1.
    pub position: usize,
    /// Expected wait from recent handling times; `None` when there is no history yet.
    pub expected_wait: Option<Duration>,
}

/// Per-user flood control: the service counts the user's messages in its window (this one
/// included) and passes the count with the configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flood {
    /// Messages from this user in the window, including this one.
    pub recent_messages: usize,
    /// The most allowed in the window (configuration).
    pub max_messages: usize,
}

impl Flood {
    /// No limit (tests, the terminal channel).
    pub const UNLIMITED: Flood = Flood {
        recent_messages: 0,
        max_messages: usize::MAX,
    };

    /// True when this message is over the limit.
    pub fn exceeded(self) -> bool {
        self.recent_messages > self.max_messages
    }
}
