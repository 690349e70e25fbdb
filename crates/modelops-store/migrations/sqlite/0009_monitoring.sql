-- Live monitoring (SQLite): reference profiles, monitors, their state and
-- window results, labels, alerts and retraining requests. Times are
-- format_time text, as in 0001.

-- A version's reference profile, set once (immutable like lineage: the
-- use case only inserts; erasure may rewrite `created_by`).
CREATE TABLE reference_profiles (
    model      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    profile    TEXT NOT NULL,
    source     TEXT NOT NULL,
    rows_count INTEGER NOT NULL,
    -- The label-free performance estimator (CBPE) fitted on the same
    -- reference's scores and labels, JSON; absent without labels.
    estimator  TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (model, version)
);

-- A monitor over a deployment's recorded predictions (core::monitoring::Monitor,
-- its spec as JSON in `body`).
CREATE TABLE monitors (
    deployment TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (deployment, name)
);

-- What the engine keeps between runs (last closed window, alert rule
-- states); bookkeeping, rewritten whole.
CREATE TABLE monitor_states (
    deployment TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (deployment, name)
);

-- One window of one monitor for one serving version; replaced when late
-- labels change its performance.
CREATE TABLE monitor_results (
    deployment   TEXT NOT NULL,
    monitor      TEXT NOT NULL,
    window_start TEXT NOT NULL,
    version      INTEGER NOT NULL,
    window_end   TEXT NOT NULL,
    rows_count   INTEGER NOT NULL,
    closed       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    computed_at  TEXT NOT NULL,
    PRIMARY KEY (deployment, monitor, window_start, version)
);

-- Ground truth for recorded calls, by request id; a later label replaces
-- an earlier one.
CREATE TABLE prediction_labels (
    deployment TEXT NOT NULL,
    request_id TEXT NOT NULL,
    label      TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (deployment, request_id)
);
CREATE INDEX prediction_records_request ON prediction_records (deployment, request_id);

CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment   TEXT NOT NULL,
    monitor      TEXT NOT NULL,
    rule         TEXT NOT NULL,
    state        TEXT NOT NULL,
    version      INTEGER NOT NULL,
    window_start TEXT NOT NULL,
    fired_at     TEXT NOT NULL,
    resolved_at  TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX alerts_deployment ON alerts (deployment, id);

CREATE TABLE retrain_requests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    model      TEXT NOT NULL,
    deployment TEXT NOT NULL,
    alert_id   INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
