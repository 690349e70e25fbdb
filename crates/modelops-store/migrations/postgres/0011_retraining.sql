-- The closed loop (PostgreSQL): each model's retraining job, its runs, and
-- the scope of a run's token.

-- A model's job (core::retrain::RetrainJob; its spec as JSON in `body`).
CREATE TABLE retrain_jobs (
    model      TEXT COLLATE "C" PRIMARY KEY,
    body       TEXT NOT NULL,
    run_as     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One run (core::retrain::JobRun as JSON in `body`); `state`, `trigger`
-- and `started_at` repeated for the queries that pick runs; `log` the
-- kept tail of the job's output, saved with the heartbeat.
CREATE TABLE retrain_runs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model      TEXT COLLATE "C" NOT NULL,
    state      TEXT NOT NULL,
    trigger    TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    body       TEXT NOT NULL,
    log        TEXT NOT NULL DEFAULT '',
    -- When the replica running the job last said it still does.
    heartbeat_at TIMESTAMPTZ
);
CREATE INDEX retrain_runs_model ON retrain_runs (model, id);
CREATE INDEX retrain_runs_state ON retrain_runs (state, id);

-- A retraining run's token: the model and run it may act for (JSON).
ALTER TABLE api_tokens ADD COLUMN scope TEXT;
