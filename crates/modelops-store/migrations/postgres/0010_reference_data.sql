-- The file a reference profile was fitted from, kept as an artifact when
-- asked (`modelops reference set … --store-data`): evidently-mode monitors
-- compare whole windows with it. Both or neither.
ALTER TABLE reference_profiles ADD COLUMN data_sha256 TEXT;
ALTER TABLE reference_profiles ADD COLUMN data_filename TEXT;
