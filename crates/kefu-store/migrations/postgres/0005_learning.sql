-- Ticket labels and KB decisions, PostgreSQL flavour (mirror of migrations/sqlite/0005_learning.sql:
-- keep them in step; the comments there explain each table).

CREATE TABLE ticket_labels (
    ticket_id   BIGINT PRIMARY KEY REFERENCES tickets (id),
    kind        TEXT NOT NULL CHECK (kind IN ('intent', 'new_topic', 'not_a_question')),
    name        TEXT,
    text        TEXT NOT NULL,
    language    TEXT,
    labelled_by TEXT NOT NULL,
    labelled_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ticket_labels_at ON ticket_labels (labelled_at, ticket_id);

CREATE TABLE kb_decisions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    suggestion TEXT NOT NULL,
    accepted   BOOLEAN NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    summary    TEXT NOT NULL,
    detail     JSONB NOT NULL
);
CREATE INDEX kb_decisions_at ON kb_decisions (decided_at, id);
CREATE INDEX kb_decisions_suggestion ON kb_decisions (suggestion);
