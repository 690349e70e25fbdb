-- Governance (PostgreSQL): users and API tokens, approvals, evidence,
-- periodic reviews and the policies loaded. Names use the "C" collation, as
-- in 0001.

-- A model's developers and validation target: serde_json of
-- {"developers": [...], "validation": {"metric", "threshold"} | null}, as
-- text. Rows written before this migration hold '{}': no developers, no
-- validation.
ALTER TABLE models ADD COLUMN governance TEXT NOT NULL DEFAULT '{}';

CREATE TABLE users (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL UNIQUE,
    -- JSON array of role names (core::auth::Role), as text.
    roles      TEXT NOT NULL,
    team       TEXT COLLATE "C" NOT NULL,
    disabled   BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Only the sha256 of a token's secret is stored, never the secret.
CREATE TABLE api_tokens (
    -- The token's public id: 12 lowercase hex characters.
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    user_name   TEXT COLLATE "C" NOT NULL REFERENCES users (name),
    secret_hash TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens (user_name, created_at);

-- Decisions on versions: append-only.
CREATE TABLE approvals (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id BIGINT NOT NULL REFERENCES model_versions (id),
    approver   TEXT NOT NULL,
    -- JSON array of the approver's role names when deciding, as text.
    roles      TEXT NOT NULL,
    decision   TEXT NOT NULL,
    comment    TEXT NOT NULL,
    conditions TEXT NOT NULL,
    expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX approvals_version ON approvals (version_id);

-- Metrics and documents about versions: append-only. A document's three
-- columns are all set or all NULL.
CREATE TABLE evidence (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id        BIGINT NOT NULL REFERENCES model_versions (id),
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    value             DOUBLE PRECISION,
    dataset           TEXT NOT NULL,
    document_sha256   TEXT,
    document_size     BIGINT,
    document_filename TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    created_by        TEXT NOT NULL,
    CHECK ((document_sha256 IS NULL) = (document_size IS NULL)
       AND (document_sha256 IS NULL) = (document_filename IS NULL))
);
CREATE INDEX evidence_version ON evidence (version_id);

-- Periodic reviews of versions: append-only.
CREATE TABLE reviews (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version_id     BIGINT NOT NULL REFERENCES model_versions (id),
    reviewer       TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    comment        TEXT NOT NULL,
    reviewed_at    TIMESTAMPTZ NOT NULL,
    next_review_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX reviews_version ON reviews (version_id);

-- When each production version is next due for review.
CREATE TABLE review_schedule (
    version_id     BIGINT PRIMARY KEY REFERENCES model_versions (id),
    next_review_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX review_schedule_next ON review_schedule (next_review_at);

-- Every policy loaded, append-only; the active one is the row with the
-- highest id (loading an earlier text again adds a row for it).
CREATE TABLE policies (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256    TEXT NOT NULL,
    source    TEXT NOT NULL,
    format    TEXT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL,
    loaded_by TEXT NOT NULL
);

-- Defence in depth, as for audit_events: the database refuses to rewrite
-- the governance record.
CREATE FUNCTION governance_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER approvals_no_update BEFORE UPDATE OR DELETE ON approvals
FOR EACH ROW EXECUTE FUNCTION governance_append_only();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON approvals
FOR EACH STATEMENT EXECUTE FUNCTION governance_append_only();

CREATE TRIGGER evidence_no_update BEFORE UPDATE OR DELETE ON evidence
FOR EACH ROW EXECUTE FUNCTION governance_append_only();
CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON evidence
FOR EACH STATEMENT EXECUTE FUNCTION governance_append_only();

CREATE TRIGGER reviews_no_update BEFORE UPDATE OR DELETE ON reviews
FOR EACH ROW EXECUTE FUNCTION governance_append_only();
CREATE TRIGGER reviews_no_truncate BEFORE TRUNCATE ON reviews
FOR EACH STATEMENT EXECUTE FUNCTION governance_append_only();

CREATE TRIGGER policies_no_update BEFORE UPDATE OR DELETE ON policies
FOR EACH ROW EXECUTE FUNCTION governance_append_only();
CREATE TRIGGER policies_no_truncate BEFORE TRUNCATE ON policies
FOR EACH STATEMENT EXECUTE FUNCTION governance_append_only();
