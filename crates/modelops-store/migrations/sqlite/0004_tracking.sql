-- Experiment tracking (MLflow's tracking API): experiments, runs and their
-- params, metrics and tags. Times are milliseconds since the Unix epoch, as
-- MLflow's clients send them. Not part of the audit chain (see
-- core::tracking).

CREATE TABLE experiments (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    -- NULL: the default location, mlflow-artifacts:/<id>.
    artifact_location TEXT,
    lifecycle_stage   TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);
-- MLflow's clients start runs in experiment 0 when none is set.
INSERT INTO experiments (id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
VALUES (0, 'Default', NULL, 'active', CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id),
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    experiment_id   INTEGER NOT NULL REFERENCES experiments (id),
    run_name        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    artifact_uri    TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted'))
);
CREATE INDEX runs_experiment ON runs (experiment_id, start_time);

CREATE TABLE run_params (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE run_tags (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- Every logged value. NaN is stored as value NULL with is_nan = 1 (SQLite
-- has no NaN); infinities are stored as they are.
CREATE TABLE metrics (
    run_id    TEXT NOT NULL REFERENCES runs (run_id),
    key       TEXT NOT NULL,
    value     REAL,
    is_nan    INTEGER NOT NULL CHECK (is_nan IN (0, 1)),
    timestamp INTEGER NOT NULL,
    step      INTEGER NOT NULL
);
-- A value logged twice identically is kept once (clients resend on retry).
CREATE UNIQUE INDEX metrics_identity ON metrics (run_id, key, step, timestamp, is_nan, IFNULL(value, 0));

-- The latest value of each metric (highest step, then timestamp, then value).
CREATE TABLE latest_metrics (
    run_id    TEXT NOT NULL REFERENCES runs (run_id),
    key       TEXT NOT NULL,
    value     REAL,
    is_nan    INTEGER NOT NULL CHECK (is_nan IN (0, 1)),
    timestamp INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
);
