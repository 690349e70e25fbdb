-- Erasure without breaking the audit chain (modelops-audit::personal).
--
-- Sealed events (encoding 3) hash a keyed commitment instead of each
-- personal value; the values sit beside them in `personal`, encrypted under
-- the person's key. `actor_ref` is the acting person's pseudonymous id (or
-- the plain actor for `system`), for filtering: not hashed.
ALTER TABLE audit_events ADD COLUMN personal TEXT;
ALTER TABLE audit_events ADD COLUMN actor_ref TEXT;
CREATE INDEX audit_events_actor_ref ON audit_events (actor_ref, sequence);

-- One key per person. Erasing a person deletes the row: their name and the
-- only key that opens their values are gone together.
CREATE TABLE personal_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    key        BLOB NOT NULL CHECK (length(key) = 32),
    created_at TEXT NOT NULL
);

-- Non-empty only inside an erasure's transaction: the one change the
-- append-only governance records accept is a name replaced by its
-- pseudonym and the person's comments cleared.
CREATE TABLE erasure_window (
    id INTEGER PRIMARY KEY CHECK (id = 1)
);

DROP TRIGGER approvals_no_update;
CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
WHEN NOT EXISTS (SELECT 1 FROM erasure_window)
BEGIN
    SELECT RAISE(ABORT, 'approvals is append-only');
END;

DROP TRIGGER evidence_no_update;
CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
WHEN NOT EXISTS (SELECT 1 FROM erasure_window)
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only');
END;

DROP TRIGGER reviews_no_update;
CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
WHEN NOT EXISTS (SELECT 1 FROM erasure_window)
BEGIN
    SELECT RAISE(ABORT, 'reviews is append-only');
END;

DROP TRIGGER policies_no_update;
CREATE TRIGGER policies_no_update BEFORE UPDATE ON policies
WHEN NOT EXISTS (SELECT 1 FROM erasure_window)
BEGIN
    SELECT RAISE(ABORT, 'policies is append-only');
END;
