-- Governance (SQLite): users and API tokens, approvals, evidence, periodic
-- reviews and the policies loaded. Times are format_time text, as in 0001.

-- A model's developers and validation target: serde_json of
-- {"developers": [...], "validation": {"metric", "threshold"} | null}. Rows
-- written before this migration hold '{}': no developers, no validation.
ALTER TABLE models ADD COLUMN governance TEXT NOT NULL DEFAULT '{}';

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    -- JSON array of role names (core::auth::Role).
    roles      TEXT NOT NULL,
    team       TEXT NOT NULL,
    disabled   INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Only the sha256 of a token's secret is stored, never the secret.
CREATE TABLE api_tokens (
    -- The token's public id: 12 lowercase hex characters.
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    user_name   TEXT NOT NULL REFERENCES users (name),
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_name, created_at);

-- Decisions on versions: append-only.
CREATE TABLE approvals (
    id         INTEGER PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES model_versions (id),
    approver   TEXT NOT NULL,
    -- JSON array of the approver's role names when deciding.
    roles      TEXT NOT NULL,
    decision   TEXT NOT NULL,
    comment    TEXT NOT NULL,
    conditions TEXT NOT NULL,
    expires_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX approvals_version ON approvals (version_id);

-- Metrics and documents about versions: append-only. A document's three
-- columns are all set or all NULL.
CREATE TABLE evidence (
    id                INTEGER PRIMARY KEY,
    version_id        INTEGER NOT NULL REFERENCES model_versions (id),
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    value             REAL,
    dataset           TEXT NOT NULL,
    document_sha256   TEXT,
    document_size     INTEGER,
    document_filename TEXT,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    CHECK ((document_sha256 IS NULL) = (document_size IS NULL)
       AND (document_sha256 IS NULL) = (document_filename IS NULL))
);
CREATE INDEX evidence_version ON evidence (version_id);

-- Periodic reviews of versions: append-only.
CREATE TABLE reviews (
    id             INTEGER PRIMARY KEY,
    version_id     INTEGER NOT NULL REFERENCES model_versions (id),
    reviewer       TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    comment        TEXT NOT NULL,
    reviewed_at    TEXT NOT NULL,
    next_review_at TEXT NOT NULL
);
CREATE INDEX reviews_version ON reviews (version_id);

-- When each production version is next due for review.
CREATE TABLE review_schedule (
    version_id     INTEGER PRIMARY KEY REFERENCES model_versions (id),
    next_review_at TEXT NOT NULL
);
CREATE INDEX review_schedule_next ON review_schedule (next_review_at);

-- Every policy loaded, append-only; the active one is the row with the
-- highest id (loading an earlier text again adds a row for it).
CREATE TABLE policies (
    id        INTEGER PRIMARY KEY,
    sha256    TEXT NOT NULL,
    source    TEXT NOT NULL,
    format    TEXT NOT NULL,
    loaded_at TEXT NOT NULL,
    loaded_by TEXT NOT NULL
);

-- Defence in depth, as for audit_events: the database refuses to rewrite
-- the governance record.
CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
BEGIN
    SELECT RAISE(ABORT, 'approvals is append-only');
END;

CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
BEGIN
    SELECT RAISE(ABORT, 'approvals is append-only');
END;

CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only');
END;

CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only');
END;

CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews is append-only');
END;

CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews is append-only');
END;

CREATE TRIGGER policies_no_update BEFORE UPDATE ON policies
BEGIN
    SELECT RAISE(ABORT, 'policies is append-only');
END;

CREATE TRIGGER policies_no_delete BEFORE DELETE ON policies
BEGIN
    SELECT RAISE(ABORT, 'policies is append-only');
END;
