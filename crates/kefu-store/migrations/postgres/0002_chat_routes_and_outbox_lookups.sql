-- Chat routes and indexed outbox look-ups, PostgreSQL flavour (mirror of
-- migrations/sqlite/0002_chat_routes_and_outbox_lookups.sql: keep them in step).

-- A platform conversation that moved to another channel (Discord: a guild conversation moved into
-- a thread). `route` is the platform's id of where it continues; one conversation per route.
CREATE TABLE chat_routes (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    route      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (platform, chat_id, user_id),
    UNIQUE (platform, route)
);

-- Pending messages for one platform (its delivery worker) and for one conversation.
CREATE INDEX outbox_pending_platform ON outbox (platform, next_attempt_at, id)
    WHERE delivered_at IS NULL;
CREATE INDEX outbox_pending_conversation ON outbox (platform, chat_id, user_id, next_attempt_at, id)
    WHERE delivered_at IS NULL;
