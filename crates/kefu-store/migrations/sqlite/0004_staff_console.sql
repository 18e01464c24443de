-- The staff console, SQLite flavour (mirror of migrations/postgres/0004_staff_console.sql: keep them
-- in step).

-- Who may sign in to the console, as what, and which Telegram and Discord user each account is (an
-- action taken there by that user is recorded under the account's name). `password_hash` is an
-- argon2id PHC string.
CREATE TABLE staff_accounts (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'lead')),
    password_hash TEXT NOT NULL,
    telegram_id   TEXT UNIQUE,
    discord_id    TEXT UNIQUE,
    created_at    TEXT NOT NULL
);

-- Console sessions, keyed by the SHA-256 (hex) of the browser's token: the token itself is never
-- stored. Expired rows are ignored and pruned when a new session starts.
CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    staff_name TEXT NOT NULL REFERENCES staff_accounts (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_name);
CREATE INDEX staff_sessions_expires ON staff_sessions (expires_at);

-- Personal API tokens, keyed by their SHA-256 (hex), like sessions.
CREATE TABLE staff_tokens (
    token_hash TEXT PRIMARY KEY,
    staff_name TEXT NOT NULL REFERENCES staff_accounts (name) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX staff_tokens_staff ON staff_tokens (staff_name);

-- Failed sign-ins, one row each, keyed `account:NAME` or `ip:ADDRESS`: the recent ones throttle
-- further attempts.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at  TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

-- What the bot decided for each message it classified, for the console's reports.
CREATE TABLE bot_decisions (
    at   TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('answer', 'clarify', 'escalate', 'out_of_scope'))
);
CREATE INDEX bot_decisions_at ON bot_decisions (at);
