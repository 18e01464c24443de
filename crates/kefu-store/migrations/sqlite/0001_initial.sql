-- Kefu's schema, SQLite flavour (mirror of migrations/postgres/0001_initial.sql: keep them in step).
-- Timestamps are UTC RFC 3339 text as sqlx encodes DateTime<Utc> (always "+00:00"), which sorts
-- chronologically; JSON is text. Every text that came from a user arrives already redacted.

-- People who wrote to the bot, per platform.
CREATE TABLE users (
    platform     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    display_name TEXT NOT NULL,
    language     TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (platform, user_id)
);

-- One user in one chat on one platform; `state` is kefu-core's conversation state, opaque JSON.
CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    state      TEXT,
    updated_at TEXT,
    UNIQUE (platform, chat_id, user_id)
);

-- Every inbound message, stored before any reply; the unique key recognises repeated deliveries.
CREATE TABLE inbound_messages (
    id                  INTEGER PRIMARY KEY,
    platform            TEXT NOT NULL,
    chat_id             TEXT NOT NULL,
    platform_message_id TEXT NOT NULL,
    conversation_id     INTEGER NOT NULL REFERENCES conversations (id),
    user_name           TEXT NOT NULL,
    text                TEXT NOT NULL,
    sent_at             TEXT NOT NULL,
    received_at         TEXT NOT NULL,
    processed_at        TEXT,
    UNIQUE (platform, chat_id, platform_message_id)
);
CREATE INDEX inbound_unprocessed ON inbound_messages (received_at, id) WHERE processed_at IS NULL;

-- Requests for a human. `priority_rank` orders the queue (low 0 … urgent 3).
CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    user_name       TEXT NOT NULL,
    intent          TEXT,
    priority        TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    priority_rank   INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'claimed', 'resolved', 'cancelled')),
    assignee        TEXT,
    reason          TEXT NOT NULL,
    details         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    claimed_at      TEXT,
    resolved_at     TEXT
);
CREATE INDEX tickets_queue ON tickets (status, priority_rank DESC, created_at, id);
CREATE INDEX tickets_conversation ON tickets (conversation_id);
CREATE INDEX tickets_claimed_at ON tickets (claimed_at) WHERE claimed_at IS NOT NULL;

-- The redacted transcript; `ticket_id` tags the lines exchanged while a ticket was open.
CREATE TABLE transcript_lines (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    ticket_id       INTEGER REFERENCES tickets (id),
    at              TEXT NOT NULL,
    sender_kind     TEXT NOT NULL CHECK (sender_kind IN ('user', 'bot', 'staff')),
    sender_name     TEXT,
    text            TEXT NOT NULL
);
CREATE INDEX transcript_conversation ON transcript_lines (conversation_id, at, id);
CREATE INDEX transcript_ticket ON transcript_lines (ticket_id, at, id) WHERE ticket_id IS NOT NULL;

-- Messages to deliver; a row stays pending until marked delivered, so a crash re-delivers.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    platform        TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    text            TEXT NOT NULL,
    buttons         TEXT NOT NULL,
    reply_to        TEXT,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at    TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;

-- How users rated the help they got: one rating per ticket (a later score or comment updates it).
CREATE TABLE ratings (
    id        INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    score     INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment   TEXT,
    at        TEXT NOT NULL
);
CREATE UNIQUE INDEX ratings_ticket ON ratings (ticket_id);

-- Questions the bot could not answer, for KB authors (`kefu kb misses`).
CREATE TABLE misses (
    id           INTEGER PRIMARY KEY,
    text         TEXT NOT NULL,
    language     TEXT,
    intent_guess TEXT,
    confidence   REAL,
    at           TEXT NOT NULL
);
CREATE INDEX misses_text ON misses (text);

-- The staff thread/topic that mirrors a ticket on a platform (Telegram forum topic, Discord thread).
CREATE TABLE staff_threads (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    platform  TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    PRIMARY KEY (ticket_id, platform),
    UNIQUE (platform, thread_id)
);
