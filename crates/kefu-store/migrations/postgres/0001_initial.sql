-- Kefu's schema, PostgreSQL flavour (mirror of migrations/sqlite/0001_initial.sql: keep them in step).
-- Timestamps are TIMESTAMPTZ, JSON is JSONB. Every text that came from a user arrives already redacted.

-- People who wrote to the bot, per platform.
CREATE TABLE users (
    platform     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    display_name TEXT NOT NULL,
    language     TEXT,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (platform, user_id)
);

-- One user in one chat on one platform; `state` is kefu-core's conversation state, opaque JSON.
CREATE TABLE conversations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    state      JSONB,
    updated_at TIMESTAMPTZ,
    UNIQUE (platform, chat_id, user_id)
);

-- Every inbound message, stored before any reply; the unique key recognises repeated deliveries.
CREATE TABLE inbound_messages (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform            TEXT NOT NULL,
    chat_id             TEXT NOT NULL,
    platform_message_id TEXT NOT NULL,
    conversation_id     BIGINT NOT NULL REFERENCES conversations (id),
    user_name           TEXT NOT NULL,
    text                TEXT NOT NULL,
    sent_at             TIMESTAMPTZ NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL,
    processed_at        TIMESTAMPTZ,
    UNIQUE (platform, chat_id, platform_message_id)
);
CREATE INDEX inbound_unprocessed ON inbound_messages (received_at, id) WHERE processed_at IS NULL;

-- Requests for a human. `priority_rank` orders the queue (low 0 … urgent 3).
CREATE TABLE tickets (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    user_name       TEXT NOT NULL,
    intent          TEXT,
    priority        TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    priority_rank   BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'claimed', 'resolved', 'cancelled')),
    assignee        TEXT,
    reason          TEXT NOT NULL,
    details         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    claimed_at      TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ
);
CREATE INDEX tickets_queue ON tickets (status, priority_rank DESC, created_at, id);
CREATE INDEX tickets_conversation ON tickets (conversation_id);
CREATE INDEX tickets_claimed_at ON tickets (claimed_at) WHERE claimed_at IS NOT NULL;

-- The redacted transcript; `ticket_id` tags the lines exchanged while a ticket was open.
CREATE TABLE transcript_lines (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    ticket_id       BIGINT REFERENCES tickets (id),
    at              TIMESTAMPTZ NOT NULL,
    sender_kind     TEXT NOT NULL CHECK (sender_kind IN ('user', 'bot', 'staff')),
    sender_name     TEXT,
    text            TEXT NOT NULL
);
CREATE INDEX transcript_conversation ON transcript_lines (conversation_id, at, id);
CREATE INDEX transcript_ticket ON transcript_lines (ticket_id, at, id) WHERE ticket_id IS NOT NULL;

-- Messages to deliver; a row stays pending until marked delivered, so a crash re-delivers.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform        TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    text            TEXT NOT NULL,
    buttons         JSONB NOT NULL,
    reply_to        TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;

-- How users rated the help they got: one rating per ticket (a later score or comment updates it).
CREATE TABLE ratings (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    score     BIGINT NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment   TEXT,
    at        TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX ratings_ticket ON ratings (ticket_id);

-- Questions the bot could not answer, for KB authors (`kefu kb misses`).
CREATE TABLE misses (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text         TEXT NOT NULL,
    language     TEXT,
    intent_guess TEXT,
    confidence   DOUBLE PRECISION,
    at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX misses_text ON misses (text);

-- The staff thread/topic that mirrors a ticket on a platform (Telegram forum topic, Discord thread).
CREATE TABLE staff_threads (
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    platform  TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    PRIMARY KEY (ticket_id, platform),
    UNIQUE (platform, thread_id)
);
