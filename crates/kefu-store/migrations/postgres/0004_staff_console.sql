-- The staff console, PostgreSQL flavour (mirror of migrations/sqlite/0004_staff_console.sql: keep
-- them in step; the comments there explain each table).

CREATE TABLE staff_accounts (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'lead')),
    password_hash TEXT NOT NULL,
    telegram_id   TEXT UNIQUE,
    discord_id    TEXT UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    staff_name TEXT NOT NULL REFERENCES staff_accounts (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_name);
CREATE INDEX staff_sessions_expires ON staff_sessions (expires_at);

CREATE TABLE staff_tokens (
    token_hash TEXT PRIMARY KEY,
    staff_name TEXT NOT NULL REFERENCES staff_accounts (name) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX staff_tokens_staff ON staff_tokens (staff_name);

CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

CREATE TABLE bot_decisions (
    at   TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('answer', 'clarify', 'escalate', 'out_of_scope'))
);
CREATE INDEX bot_decisions_at ON bot_decisions (at);
