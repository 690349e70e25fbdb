-- The model registry and its audit log (SQLite).
-- Times are RFC 3339 text in UTC with microseconds (core::clock::format_time):
-- they read back exactly and sort as text in time order.

CREATE TABLE models (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    description      TEXT NOT NULL,
    owner            TEXT NOT NULL,
    team             TEXT NOT NULL,
    business_purpose TEXT NOT NULL,
    intended_use     TEXT NOT NULL,
    restrictions     TEXT NOT NULL,
    risk_tier        TEXT NOT NULL,
    state            TEXT NOT NULL,
    -- Highest version number handed out; the counter versions are numbered from.
    latest_version   INTEGER,
    -- Lowercased name, description and business purpose for the `text` filter.
    search_text      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX models_kind ON models (kind, name);
CREATE INDEX models_owner ON models (owner, name);
CREATE INDEX models_team ON models (team, name);
CREATE INDEX models_risk_tier ON models (risk_tier, name);
CREATE INDEX models_state ON models (state, name);
CREATE INDEX models_created_at ON models (created_at, name);
CREATE INDEX models_updated_at ON models (updated_at, name);

CREATE TABLE model_tags (
    model_id INTEGER NOT NULL REFERENCES models (id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
) WITHOUT ROWID;
CREATE INDEX model_tags_key_value ON model_tags (key, value, model_id);

CREATE TABLE model_dependencies (
    model_id   INTEGER NOT NULL REFERENCES models (id),
    depends_on INTEGER NOT NULL REFERENCES models (id),
    position   INTEGER NOT NULL,
    PRIMARY KEY (model_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX model_dependencies_depends_on ON model_dependencies (depends_on);

CREATE TABLE model_versions (
    id                INTEGER PRIMARY KEY,
    model_id          INTEGER NOT NULL REFERENCES models (id),
    number            INTEGER NOT NULL,
    state             TEXT NOT NULL,
    artifact_sha256   TEXT NOT NULL,
    artifact_size     INTEGER NOT NULL,
    artifact_filename TEXT NOT NULL,
    -- serde_json of core's Lineage, Signature and ModelCard.
    lineage           TEXT NOT NULL,
    signature         TEXT NOT NULL,
    card              TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (model_id, number)
);
CREATE INDEX model_versions_state ON model_versions (model_id, state, number);
CREATE INDEX model_versions_artifact ON model_versions (artifact_sha256);

CREATE TABLE version_tags (
    version_id INTEGER NOT NULL REFERENCES model_versions (id),
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
) WITHOUT ROWID;
CREATE INDEX version_tags_key_value ON version_tags (key, value, version_id);

CREATE TABLE aliases (
    model_id   INTEGER NOT NULL REFERENCES models (id),
    alias      TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES model_versions (id),
    PRIMARY KEY (model_id, alias)
) WITHOUT ROWID;
CREATE INDEX aliases_version ON aliases (version_id);

-- The audit log: append-only. `before`/`after` are the JSON text exactly as
-- hashed-from; core re-canonicalises them when verifying.
CREATE TABLE audit_events (
    sequence  INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    before    TEXT,
    after     TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, sequence);
CREATE INDEX audit_events_actor ON audit_events (actor, sequence);
CREATE INDEX audit_events_action ON audit_events (action, sequence);
CREATE INDEX audit_events_time ON audit_events (time);

-- The newest event's sequence and hash, kept apart from the rows so that
-- removing the newest events is detected. Sequence 0 means "no event yet".
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    sequence INTEGER NOT NULL,
    hash     TEXT NOT NULL
);
INSERT INTO audit_head (id, sequence, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Defence in depth: the database itself refuses to rewrite history. Someone
-- holding the file can drop these; the hash chain is what catches that.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- An event must extend the chain at the recorded head.
CREATE TRIGGER audit_events_extend_head BEFORE INSERT ON audit_events
WHEN NEW.sequence <> (SELECT sequence + 1 FROM audit_head WHERE id = 1)
  OR NEW.prev_hash <> (SELECT hash FROM audit_head WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit event does not extend the chain head');
END;

CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head cannot be deleted');
END;

-- The head only moves forward, onto an event that exists.
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.sequence <= OLD.sequence
  OR NOT EXISTS (SELECT 1 FROM audit_events WHERE sequence = NEW.sequence AND hash = NEW.hash)
BEGIN
    SELECT RAISE(ABORT, 'audit head only moves forward to a stored event');
END;
