//! The look-ups adapters make on every event and the worker on every send: which ticket a staff
//! space (Telegram topic, Discord thread) mirrors, where a conversation that moved (a Discord
//! channel conversation now in a thread) continues. Answered from a cache kept current by the
//! service itself (it records every space and route it learns), falling back to the store.
//!
//! Positive entries never go stale: a space or route, once recorded, keeps its meaning (channel ids
//! are never reused). Negative entries ("this channel is no staff space") expire after
//! [`NEGATIVE_TTL`], for the moment between another instance creating a space and recording it.
//! Every map is bounded: past [`CAPACITY`] entries it starts afresh, so memory does not grow with
//! the number of conversations ever seen.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kefu_core::model::ConversationRef;

use crate::{Result, Service};

/// How long "not a staff space / not a route" is believed.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// Most entries a map holds before it is cleared.
const CAPACITY: usize = 4096;

/// A bounded map with optional expiry.
#[derive(Debug)]
struct Cache<K, V> {
    entries: Mutex<HashMap<K, (V, Option<Instant>)>>,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Cache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        let mut map = self.entries.lock().ok()?;
        match map.get(key) {
            Some((v, None)) => Some(v.clone()),
            Some((v, Some(expires))) if *expires > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: K, value: V, ttl: Option<Duration>) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(key, (value, ttl.map(|t| Instant::now() + t)));
        }
    }
}

/// The caches.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    /// (platform, space id) → the ticket it mirrors, or `None` (not a space) for a while.
    space_ticket: Cache<(String, String), Option<i64>>,
    /// (ticket, platform) → its space.
    ticket_space: Cache<(i64, String), String>,
    /// (platform, route) → the conversation continuing there, or `None` for a while.
    route_owner: Cache<(String, String), Option<ConversationRef>>,
    /// conversation → its route, or `None` (it did not move) for a while.
    route_of: Cache<ConversationRef, Option<String>>,
}

impl Service {
    /// The ticket whose staff space on `platform` is `space` (a Telegram topic id, a Discord
    /// thread id), if it is one.
    pub async fn ticket_for_staff_space(&self, platform: &str, space: &str) -> Result<Option<i64>> {
        let key = (platform.to_owned(), space.to_owned());
        if let Some(found) = self.directory.space_ticket.get(&key) {
            return Ok(found);
        }
        let found = self
            .store
            .ticket_by_staff_thread(platform, space)
            .await?
            .map(|t| t.id);
        let ttl = found.is_none().then_some(NEGATIVE_TTL);
        self.directory.space_ticket.put(key, found, ttl);
        Ok(found)
    }

    /// The staff space of a ticket on `platform`, if one was opened.
    pub async fn staff_space(&self, ticket_id: i64, platform: &str) -> Result<Option<String>> {
        let key = (ticket_id, platform.to_owned());
        if let Some(space) = self.directory.ticket_space.get(&key) {
            return Ok(Some(space));
        }
        let space = self.store.staff_thread(ticket_id, platform).await?;
        if let Some(space) = &space {
            self.directory.ticket_space.put(key, space.clone(), None);
        }
        Ok(space)
    }

    /// Records that a ticket's staff space on `platform` is `space`.
    pub(crate) async fn remember_staff_space(
        &self,
        ticket_id: i64,
        platform: &str,
        space: &str,
    ) -> Result<()> {
        self.store
            .set_staff_thread(ticket_id, platform, space)
            .await?;
        self.directory
            .ticket_space
            .put((ticket_id, platform.to_owned()), space.to_owned(), None);
        self.directory.space_ticket.put(
            (platform.to_owned(), space.to_owned()),
            Some(ticket_id),
            None,
        );
        Ok(())
    }

    /// The conversation that continues at `route` on `platform` (a Discord thread a channel
    /// conversation moved to).
    pub async fn route_owner(
        &self,
        platform: &str,
        route: &str,
    ) -> Result<Option<ConversationRef>> {
        let key = (platform.to_owned(), route.to_owned());
        if let Some(found) = self.directory.route_owner.get(&key) {
            return Ok(found);
        }
        let found = self.store.conversation_for_route(platform, route).await?;
        let ttl = found.is_none().then_some(NEGATIVE_TTL);
        self.directory.route_owner.put(key, found.clone(), ttl);
        Ok(found)
    }

    /// Where a conversation continues, if it moved.
    pub async fn route_of(&self, conversation: &ConversationRef) -> Result<Option<String>> {
        if let Some(found) = self.directory.route_of.get(conversation) {
            return Ok(found);
        }
        let found = self.store.chat_route(conversation).await?;
        let ttl = found.is_none().then_some(NEGATIVE_TTL);
        self.directory
            .route_of
            .put(conversation.clone(), found.clone(), ttl);
        Ok(found)
    }

    /// Records that a conversation continues at `route` (its replies go there from now on).
    pub async fn move_conversation(
        &self,
        conversation: &ConversationRef,
        route: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.store.set_chat_route(conversation, route, now).await?;
        self.directory
            .route_of
            .put(conversation.clone(), Some(route.to_owned()), None);
        self.directory.route_owner.put(
            (conversation.platform.clone(), route.to_owned()),
            Some(conversation.clone()),
            None,
        );
        Ok(())
    }

    /// When the conversation last had a line in its transcript.
    pub async fn last_activity(
        &self,
        conversation: &ConversationRef,
    ) -> Result<Option<DateTime<Utc>>> {
        Ok(self.store.last_activity(conversation).await?)
    }
}

impl Service {
    /// What the user last asked in this conversation (their latest typed line, not a button
    /// press), to name a place the conversation moves to after it.
    pub async fn question_of(&self, conversation: &ConversationRef) -> Result<Option<String>> {
        let lines = self.store.transcript(conversation).await?;
        let pressed_mark = kefu_core::messages::pressed("");
        Ok(lines
            .iter()
            .rev()
            .filter(|l| l.sender == kefu_core::model::Sender::User)
            .map(|l| l.text.trim())
            .find(|t| !t.is_empty() && !t.starts_with(pressed_mark.as_str()))
            .map(|t| t.lines().next().unwrap_or(t).to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_entry_expires_and_a_full_cache_starts_afresh() {
        let cache: Cache<u32, Option<u32>> = Cache::default();
        cache.put(1, None, Some(Duration::ZERO));
        assert_eq!(cache.get(&1), None, "expired at once");
        cache.put(2, Some(7), None);
        assert_eq!(cache.get(&2), Some(Some(7)));
        for k in 0..(CAPACITY as u32 + 10) {
            cache.put(k + 100, Some(k), None);
        }
        let len = cache.entries.lock().map(|m| m.len()).unwrap_or_default();
        assert!(len <= CAPACITY, "{len}");
    }
}
