-- Which canonical form each audit event was hashed with (core::audit::
-- HashEncoding): 1 for the events written before this migration (the legacy
-- form), 2 (RFC 8785) for new ones. Old events keep verifying in their form.
ALTER TABLE audit_events ADD COLUMN encoding INTEGER NOT NULL DEFAULT 1;
