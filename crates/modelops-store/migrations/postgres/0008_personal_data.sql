-- Erasure without breaking the audit chain (modelops-audit::personal).
--
-- Sealed events (encoding 3) hash a keyed commitment instead of each
-- personal value; the values sit beside them in `personal`, encrypted under
-- the person's key. `actor_ref` is the acting person's pseudonymous id (or
-- the plain actor for `system`), for filtering: not hashed.
ALTER TABLE audit_events ADD COLUMN personal TEXT;
ALTER TABLE audit_events ADD COLUMN actor_ref TEXT COLLATE "C";
CREATE INDEX audit_events_actor_ref ON audit_events (actor_ref, sequence);

-- One key per person. Erasing a person deletes the row: their name and the
-- only key that opens their values are gone together.
CREATE TABLE personal_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL UNIQUE,
    key        BYTEA NOT NULL CHECK (octet_length(key) = 32),
    created_at TIMESTAMPTZ NOT NULL
);

-- The one change the append-only governance records accept: inside an
-- erasure's transaction (`SET LOCAL modelops.erasing = 'on'`), a name
-- replaced by its pseudonym and the person's comments cleared.
CREATE OR REPLACE FUNCTION governance_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('modelops.erasing', true) = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

-- Erasing a user renames them to their pseudonym; their tokens follow.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_user_name_fkey;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_user_name_fkey
    FOREIGN KEY (user_name) REFERENCES users (name) ON UPDATE CASCADE;
