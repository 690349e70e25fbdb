-- The Merkle tree over the audit events (modelops-audit::tree): every stored
-- hash under its tlog stored-hash index (leaves and completed subtrees).
-- Written in the transaction of the event that completes it, never changed.
CREATE TABLE audit_tree (
    idx  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL CHECK (length(hash) = 32)
);

-- Signed checkpoints (modelops-audit::checkpoint), at most one per tree size.
-- Not a trust anchor by itself: a checkpoint counts only when its signature
-- verifies with the log's public key, which the database does not hold.
CREATE TABLE audit_checkpoints (
    size INTEGER PRIMARY KEY CHECK (size > 0),
    root TEXT NOT NULL,
    time TEXT NOT NULL,
    note TEXT NOT NULL
);

CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN
    SELECT RAISE(ABORT, 'audit_tree is append-only');
END;

CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN
    SELECT RAISE(ABORT, 'audit_tree is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
