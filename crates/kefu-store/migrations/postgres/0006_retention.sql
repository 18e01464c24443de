-- Housekeeping, PostgreSQL flavour (mirror of migrations/sqlite/0006_retention.sql: keep them in
-- step). The delivery journal — inbound messages once handled, outbox rows once delivered or given
-- up, dead letters — is deleted after `database.retention_days` (see `Store::prune`); these indexes
-- let the oldest rows be found without reading the whole table.
CREATE INDEX inbound_received ON inbound_messages (received_at);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX dead_letters_at ON dead_letters (at);
