-- One delivery pipeline and leases, SQLite flavour (mirror of
-- migrations/postgres/0003_delivery_pipeline_and_leases.sql: keep them in step).

-- Inbound messages are claimed for handling: the process that stored one holds a lease on it until it
-- commits the turn; only an expired lease is taken over (recovery), and the turn commits only while
-- its handler still holds the lease. `attempts` counts handlings begun; a message whose handling
-- keeps failing is set aside (`failed_at`, `failure`) instead of blocking recovery forever.
ALTER TABLE inbound_messages ADD COLUMN lease_owner TEXT;
ALTER TABLE inbound_messages ADD COLUMN lease_expires_at TEXT;
ALTER TABLE inbound_messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbound_messages ADD COLUMN failed_at TEXT;
ALTER TABLE inbound_messages ADD COLUMN failure TEXT;
-- What came with the text (photos, files…) and whether the text is a button's payload.
ALTER TABLE inbound_messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE inbound_messages ADD COLUMN pressed INTEGER NOT NULL DEFAULT 0;
DROP INDEX inbound_unprocessed;
CREATE INDEX inbound_unprocessed ON inbound_messages (lease_expires_at, id)
    WHERE processed_at IS NULL AND failed_at IS NULL;
-- Flood control counts a conversation's recent messages (shared by every instance).
CREATE INDEX inbound_conversation_received ON inbound_messages (conversation_id, received_at);

-- Platform updates that could never be stored (a permanent error: the update, not the database, is
-- at fault). Kept so an operator sees them; never their text, which may carry a secret.
CREATE TABLE dead_letters (
    id       INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    source   TEXT NOT NULL,
    chat_id  TEXT,
    reason   TEXT NOT NULL,
    at       TEXT NOT NULL
);

-- The inbound message a transcript line or a miss came from: a secret found later (a seed phrase split
-- over two messages) is redacted in all three places.
ALTER TABLE transcript_lines ADD COLUMN inbound_id INTEGER REFERENCES inbound_messages (id);
CREATE INDEX transcript_inbound ON transcript_lines (inbound_id) WHERE inbound_id IS NOT NULL;
ALTER TABLE misses ADD COLUMN inbound_id INTEGER REFERENCES inbound_messages (id);
CREATE INDEX misses_inbound ON misses (inbound_id) WHERE inbound_id IS NOT NULL;

-- The outbox holds everything the bot sends: messages to users and what goes to staff spaces.
-- `destination` is the unit of order (one user chat, or one ticket's staff space on a platform): its
-- rows are delivered one at a time in id order by whichever worker holds the lease of its first
-- undelivered row. `kind` says what to do; user kinds name the conversation (chat_id, user_id),
-- staff kinds the ticket; `payload` holds what a kind needs beyond text and buttons. A row ends
-- delivered (`delivered_at`, with the platform's message id in `sent_id`) or failed for good
-- (`failed_at`, with the reason in `last_error`).
CREATE TABLE outbox_rebuilt (
    id               INTEGER PRIMARY KEY,
    platform         TEXT NOT NULL,
    destination      TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN
                         ('user_message', 'delete_message', 'staff_open', 'staff_post', 'staff_close')),
    chat_id          TEXT,
    user_id          TEXT,
    ticket_id        INTEGER REFERENCES tickets (id),
    text             TEXT NOT NULL DEFAULT '',
    buttons          TEXT NOT NULL DEFAULT '[]',
    reply_to         TEXT,
    payload          TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    delivered_at     TEXT,
    failed_at        TEXT,
    last_error       TEXT,
    sent_id          TEXT,
    lease_owner      TEXT,
    lease_expires_at TEXT
);
INSERT INTO outbox_rebuilt (id, platform, destination, kind, chat_id, user_id, text, buttons, reply_to,
                            created_at, attempts, next_attempt_at, delivered_at, last_error)
    SELECT id, platform, 'chat:' || chat_id, 'user_message', chat_id, user_id, text, buttons, reply_to,
           created_at, attempts, next_attempt_at, delivered_at, last_error
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (platform, next_attempt_at, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_destination ON outbox (platform, destination, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_conversation ON outbox (platform, chat_id, user_id, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_ticket ON outbox (ticket_id) WHERE ticket_id IS NOT NULL;

-- Named leases: which instance holds a platform connection (the Telegram poller of a token, a Discord
-- gateway shard). The holder renews before `expires_at`; another instance takes an expired lease.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- Small per-platform values that must survive a restart or a failover (the Telegram update offset).
CREATE TABLE platform_state (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
