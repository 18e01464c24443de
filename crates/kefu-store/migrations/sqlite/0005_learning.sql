-- What staff say a resolved ticket was about, and what was done with the suggestions drawn from
-- those labels; SQLite flavour (mirror of migrations/postgres/0005_learning.sql: keep them in
-- step).

-- One label per ticket (a later label replaces it): an intent of the KB, a new topic's short name,
-- or "not a question". `text` is the user's question as the transcript keeps it (redacted).
CREATE TABLE ticket_labels (
    ticket_id   INTEGER PRIMARY KEY REFERENCES tickets (id),
    kind        TEXT NOT NULL CHECK (kind IN ('intent', 'new_topic', 'not_a_question')),
    name        TEXT,
    text        TEXT NOT NULL,
    language    TEXT,
    labelled_by TEXT NOT NULL,
    labelled_at TEXT NOT NULL
);
CREATE INDEX ticket_labels_at ON ticket_labels (labelled_at, ticket_id);

-- Each suggestion accepted or rejected (`kefu kb accept` / `reject`): who, when, a one-line
-- summary and what was written (JSON).
CREATE TABLE kb_decisions (
    id         INTEGER PRIMARY KEY,
    suggestion TEXT NOT NULL,
    accepted   INTEGER NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    summary    TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX kb_decisions_at ON kb_decisions (decided_at, id);
CREATE INDEX kb_decisions_suggestion ON kb_decisions (suggestion);
