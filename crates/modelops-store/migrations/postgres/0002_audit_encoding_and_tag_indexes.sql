-- Which canonical form each audit event was hashed with (core::audit::
-- HashEncoding): 1 for the events written before this migration (the legacy
-- form), 2 (RFC 8785) for new ones. Old events keep verifying in their form.
ALTER TABLE audit_events ADD COLUMN encoding BIGINT NOT NULL DEFAULT 1;

-- A btree index entry holds at most ~2.7 kB, and a tag value may be 5,000
-- characters (up to 20 kB of UTF-8): the (key, value, id) indexes refused
-- long values with an error. Values are found through a hash index instead,
-- which stores a 4-byte hash whatever the value's length.
DROP INDEX model_tags_key_value;
CREATE INDEX model_tags_key ON model_tags (key, model_id);
CREATE INDEX model_tags_value ON model_tags USING hash (value);
DROP INDEX version_tags_key_value;
CREATE INDEX version_tags_key ON version_tags (key, version_id);
CREATE INDEX version_tags_value ON version_tags USING hash (value);
