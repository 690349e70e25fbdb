-- The model registry and its audit log (PostgreSQL).
-- Names and subjects use the "C" collation so ordering and prefix ranges are
-- by code point, the same as SQLite's BINARY collation.

CREATE TABLE models (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT COLLATE "C" NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    description      TEXT NOT NULL,
    owner            TEXT COLLATE "C" NOT NULL,
    team             TEXT COLLATE "C" NOT NULL,
    business_purpose TEXT NOT NULL,
    intended_use     TEXT NOT NULL,
    restrictions     TEXT NOT NULL,
    risk_tier        TEXT NOT NULL,
    state            TEXT NOT NULL,
    -- Highest version number handed out; the counter versions are numbered from.
    latest_version   BIGINT,
    -- Lowercased name, description and business purpose for the `text` filter.
    search_text      TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX models_kind ON models (kind, name);
CREATE INDEX models_owner ON models (owner, name);
CREATE INDEX models_team ON models (team, name);
CREATE INDEX models_risk_tier ON models (risk_tier, name);
CREATE INDEX models_state ON models (state, name);
CREATE INDEX models_created_at ON models (created_at, name);
CREATE INDEX models_updated_at ON models (updated_at, name);

CREATE TABLE model_tags (
    model_id BIGINT NOT NULL REFERENCES models (id),
    key      TEXT COLLATE "C" NOT NULL,
    value    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE INDEX model_tags_key_value ON model_tags (key, value, model_id);

CREATE TABLE model_dependencies (
    model_id   BIGINT NOT NULL REFERENCES models (id),
    depends_on BIGINT NOT NULL REFERENCES models (id),
    position   BIGINT NOT NULL,
    PRIMARY KEY (model_id, depends_on)
);
CREATE INDEX model_dependencies_depends_on ON model_dependencies (depends_on);

CREATE TABLE model_versions (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id          BIGINT NOT NULL REFERENCES models (id),
    number            BIGINT NOT NULL,
    state             TEXT NOT NULL,
    artifact_sha256   TEXT NOT NULL,
    artifact_size     BIGINT NOT NULL,
    artifact_filename TEXT NOT NULL,
    -- serde_json of core's Lineage, Signature and ModelCard, as text.
    lineage           TEXT NOT NULL,
    signature         TEXT NOT NULL,
    card              TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (model_id, number)
);
CREATE INDEX model_versions_state ON model_versions (model_id, state, number);
CREATE INDEX model_versions_artifact ON model_versions (artifact_sha256);

CREATE TABLE version_tags (
    version_id BIGINT NOT NULL REFERENCES model_versions (id),
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (version_id, key)
);
CREATE INDEX version_tags_key_value ON version_tags (key, value, version_id);

CREATE TABLE aliases (
    model_id   BIGINT NOT NULL REFERENCES models (id),
    alias      TEXT COLLATE "C" NOT NULL,
    version_id BIGINT NOT NULL REFERENCES model_versions (id),
    PRIMARY KEY (model_id, alias)
);
CREATE INDEX aliases_version ON aliases (version_id);

-- The audit log: append-only. `before`/`after` are TEXT, not JSONB, so the
-- stored text is what was hashed; core re-canonicalises when verifying.
CREATE TABLE audit_events (
    sequence  BIGINT PRIMARY KEY,
    time      TIMESTAMPTZ NOT NULL,
    actor     TEXT COLLATE "C" NOT NULL,
    action    TEXT COLLATE "C" NOT NULL,
    subject   TEXT COLLATE "C" NOT NULL,
    before    TEXT,
    after     TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, sequence);
CREATE INDEX audit_events_actor ON audit_events (actor, sequence);
CREATE INDEX audit_events_action ON audit_events (action, sequence);
CREATE INDEX audit_events_time ON audit_events (time);

-- The newest event's sequence and hash; its row lock serialises writers.
-- Sequence 0 means "no event yet".
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    sequence BIGINT NOT NULL,
    hash     TEXT NOT NULL
);
INSERT INTO audit_head (id, sequence, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Defence in depth: the database itself refuses to rewrite history. Someone
-- with superuser rights can drop these; the hash chain is what catches that.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- An event must extend the chain at the recorded head.
CREATE FUNCTION audit_events_extend_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id = 1;
    IF NEW.sequence <> head.sequence + 1 OR NEW.prev_hash <> head.hash THEN
        RAISE EXCEPTION 'audit event does not extend the chain head';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_events_extend_head BEFORE INSERT ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_extend_head();

-- The head only moves forward, onto an event that exists, and is never deleted.
CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit_head cannot be deleted';
    END IF;
    IF NEW.sequence <= OLD.sequence
       OR NOT EXISTS (SELECT 1 FROM audit_events WHERE sequence = NEW.sequence AND hash = NEW.hash) THEN
        RAISE EXCEPTION 'audit head only moves forward to a stored event';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
