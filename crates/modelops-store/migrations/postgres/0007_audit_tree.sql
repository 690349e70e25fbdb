-- The Merkle tree over the audit events (modelops-audit::tree): every stored
-- hash under its tlog stored-hash index (leaves and completed subtrees).
-- Written in the transaction of the event that completes it, never changed.
CREATE TABLE audit_tree (
    idx  BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL CHECK (octet_length(hash) = 32)
);

-- Signed checkpoints (modelops-audit::checkpoint), at most one per tree size.
-- Not a trust anchor by itself: a checkpoint counts only when its signature
-- verifies with the log's public key, which the database does not hold.
CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY CHECK (size > 0),
    root TEXT NOT NULL,
    time TIMESTAMPTZ NOT NULL,
    note TEXT NOT NULL
);

CREATE FUNCTION audit_tree_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER audit_tree_no_update BEFORE UPDATE OR DELETE ON audit_tree
FOR EACH ROW EXECUTE FUNCTION audit_tree_append_only();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
FOR EACH STATEMENT EXECUTE FUNCTION audit_tree_append_only();
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_tree_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION audit_tree_append_only();
