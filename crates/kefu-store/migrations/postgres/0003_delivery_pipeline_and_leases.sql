-- One delivery pipeline and leases, PostgreSQL flavour (mirror of
-- migrations/sqlite/0003_delivery_pipeline_and_leases.sql: keep them in step; the comments there
-- explain each change).

ALTER TABLE inbound_messages ADD COLUMN lease_owner TEXT;
ALTER TABLE inbound_messages ADD COLUMN lease_expires_at TIMESTAMPTZ;
ALTER TABLE inbound_messages ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbound_messages ADD COLUMN failed_at TIMESTAMPTZ;
ALTER TABLE inbound_messages ADD COLUMN failure TEXT;
ALTER TABLE inbound_messages ADD COLUMN attachments JSONB NOT NULL DEFAULT '[]';
ALTER TABLE inbound_messages ADD COLUMN pressed BOOLEAN NOT NULL DEFAULT FALSE;
DROP INDEX inbound_unprocessed;
CREATE INDEX inbound_unprocessed ON inbound_messages (lease_expires_at, id)
    WHERE processed_at IS NULL AND failed_at IS NULL;
CREATE INDEX inbound_conversation_received ON inbound_messages (conversation_id, received_at);

CREATE TABLE dead_letters (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform TEXT NOT NULL,
    source   TEXT NOT NULL,
    chat_id  TEXT,
    reason   TEXT NOT NULL,
    at       TIMESTAMPTZ NOT NULL
);

ALTER TABLE transcript_lines ADD COLUMN inbound_id BIGINT REFERENCES inbound_messages (id);
CREATE INDEX transcript_inbound ON transcript_lines (inbound_id) WHERE inbound_id IS NOT NULL;
ALTER TABLE misses ADD COLUMN inbound_id BIGINT REFERENCES inbound_messages (id);
CREATE INDEX misses_inbound ON misses (inbound_id) WHERE inbound_id IS NOT NULL;

ALTER TABLE outbox ADD COLUMN destination TEXT;
UPDATE outbox SET destination = 'chat:' || chat_id;
ALTER TABLE outbox ALTER COLUMN destination SET NOT NULL;
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'user_message' CHECK (kind IN
    ('user_message', 'delete_message', 'staff_open', 'staff_post', 'staff_close'));
ALTER TABLE outbox ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE outbox ALTER COLUMN chat_id DROP NOT NULL;
ALTER TABLE outbox ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN ticket_id BIGINT REFERENCES tickets (id);
ALTER TABLE outbox ALTER COLUMN text SET DEFAULT '';
ALTER TABLE outbox ALTER COLUMN buttons SET DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN payload JSONB NOT NULL DEFAULT '{}';
ALTER TABLE outbox ADD COLUMN failed_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN sent_id TEXT;
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_expires_at TIMESTAMPTZ;
DROP INDEX outbox_pending;
DROP INDEX outbox_pending_platform;
DROP INDEX outbox_pending_conversation;
CREATE INDEX outbox_due ON outbox (platform, next_attempt_at, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_destination ON outbox (platform, destination, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_conversation ON outbox (platform, chat_id, user_id, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_ticket ON outbox (ticket_id) WHERE ticket_id IS NOT NULL;

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE platform_state (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
