-- What a run read (MLflow's log_inputs). Datasets: one row per run and
-- dataset (name, digest), with the input's tags (its context: training,
-- evaluation) as a JSON array of [key, value] pairs; logging the same
-- dataset again to a run keeps the first row, as MLflow does. Logged
-- models a run used (evaluated, scored): one row per run and model.
-- `position` keeps the order they were logged in.
CREATE TABLE run_dataset_inputs (
    run_id      TEXT NOT NULL REFERENCES runs (run_id),
    position    BIGINT NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    digest      TEXT COLLATE "C" NOT NULL,
    source_type TEXT NOT NULL,
    source      TEXT NOT NULL,
    schema      TEXT,
    profile     TEXT,
    tags        TEXT NOT NULL,
    PRIMARY KEY (run_id, name, digest)
);

CREATE TABLE run_model_inputs (
    run_id   TEXT NOT NULL REFERENCES runs (run_id),
    position BIGINT NOT NULL,
    model_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, model_id)
);
