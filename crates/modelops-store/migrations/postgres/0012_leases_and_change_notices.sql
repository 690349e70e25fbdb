-- Leases: which replica holds a named duty (the background work), until when.
CREATE TABLE leases (
    name        TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- Every change is announced to the replicas listening on `modelops_changes`
-- as "<action> <subject>" of its audit event: PostgreSQL delivers a
-- transaction's notifications when it commits, and none when it rolls back,
-- so a replica hears of exactly the changes that happened, at once, and
-- forgets what it cached about them.
CREATE FUNCTION modelops_announce_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('modelops_changes', NEW.action || ' ' || left(NEW.subject, 7000));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_announce AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION modelops_announce_change();
