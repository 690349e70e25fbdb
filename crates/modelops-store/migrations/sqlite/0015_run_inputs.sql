-- The datasets a run read (MLflow's log_inputs): one row per run and
-- dataset (name, digest), with the input's tags (its context: training,
-- evaluation) as a JSON object. Logging the same dataset again to a run
-- keeps the first row, as MLflow does.
CREATE TABLE run_dataset_inputs (
    run_id      TEXT NOT NULL REFERENCES runs (run_id),
    name        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source      TEXT NOT NULL,
    schema      TEXT,
    profile     TEXT,
    tags        TEXT NOT NULL,
    logged_at   INTEGER NOT NULL,
    PRIMARY KEY (run_id, name, digest)
);
