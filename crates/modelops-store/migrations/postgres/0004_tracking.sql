-- Experiment tracking (MLflow's tracking API): experiments, runs and their
-- params, metrics and tags. Times are milliseconds since the Unix epoch, as
-- MLflow's clients send them. Not part of the audit chain (see
-- core::tracking).

CREATE TABLE experiments (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    -- NULL: the default location, mlflow-artifacts:/<id>.
    artifact_location TEXT,
    lifecycle_stage   TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
    creation_time     BIGINT NOT NULL,
    last_update_time  BIGINT NOT NULL
);
-- MLflow's clients start runs in experiment 0 when none is set (the
-- sequence starts at 1, so 0 is never taken again).
INSERT INTO experiments (id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
VALUES (0, 'Default', NULL, 'active', (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);

CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments (id),
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    experiment_id   BIGINT NOT NULL REFERENCES experiments (id),
    run_name        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      BIGINT NOT NULL,
    end_time        BIGINT,
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

-- Every logged value. NaN is stored as value NULL with is_nan (as on
-- SQLite, which has no NaN); infinities are stored as they are.
CREATE TABLE metrics (
    run_id    TEXT NOT NULL REFERENCES runs (run_id),
    key       TEXT NOT NULL,
    value     DOUBLE PRECISION,
    is_nan    BOOLEAN NOT NULL,
    timestamp BIGINT NOT NULL,
    step      BIGINT NOT NULL
);
-- A value logged twice identically is kept once (clients resend on retry).
CREATE UNIQUE INDEX metrics_identity ON metrics (run_id, key, step, timestamp, is_nan, COALESCE(value, 0));

-- The latest value of each metric (highest step, then timestamp, then value).
CREATE TABLE latest_metrics (
    run_id    TEXT NOT NULL REFERENCES runs (run_id),
    key       TEXT NOT NULL,
    value     DOUBLE PRECISION,
    is_nan    BOOLEAN NOT NULL,
    timestamp BIGINT NOT NULL,
    step      BIGINT NOT NULL,
    PRIMARY KEY (run_id, key)
);
