-- Deployments and their prediction records (SQLite). Times are format_time
-- text, as in 0001.

-- A deployment (core::deployment::Deployment) is stored whole as serde_json
-- in `body`, so the schema need not follow every field; the columns beside
-- it are what queries filter and order by, written from the same value. The
-- name and model read back from their columns, as stored.
CREATE TABLE deployments (
    name       TEXT PRIMARY KEY,
    model      TEXT NOT NULL,
    state      TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX deployments_model ON deployments (model, name);

-- One call answered through a deployment. Appended in batches off the
-- request path, read by deployment in id order, pruned by age; never
-- updated, not audited. No foreign key to deployments: records are
-- bookkeeping, written outside the write lock. AUTOINCREMENT so that ids are
-- never reused, even after pruning empties the table: a reader's `after_id`
-- stays a position in the log.
CREATE TABLE prediction_records (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment TEXT NOT NULL,
    at         TEXT NOT NULL,
    request_id TEXT NOT NULL,
    model      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    -- core::deployment::RecordRoute: primary or shadow.
    route      TEXT NOT NULL,
    -- Open Inference Protocol JSON tensors.
    inputs     TEXT NOT NULL,
    outputs    TEXT NOT NULL,
    error      TEXT,
    latency_us INTEGER NOT NULL
);
CREATE INDEX prediction_records_deployment ON prediction_records (deployment, id);
CREATE INDEX prediction_records_at ON prediction_records (at);
