-- MLflow 3's logged models, the files written through MLflow's artifact
-- proxy, and the versions deleted through MLflow's registry API. Logged
-- models and artifact files are tracking bookkeeping (not audited, see
-- core::tracking); a deleted version is a retired one (audited) that the
-- MLflow surface no longer shows.

CREATE TABLE logged_models (
    model_id         TEXT COLLATE "C" PRIMARY KEY,
    experiment_id    BIGINT NOT NULL REFERENCES experiments (id),
    name             TEXT NOT NULL,
    artifact_uri     TEXT NOT NULL,
    status           TEXT NOT NULL,
    model_type       TEXT NOT NULL,
    source_run_id    TEXT,
    creation_time    BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL
);
CREATE INDEX logged_models_experiment ON logged_models (experiment_id, creation_time);

CREATE TABLE logged_model_tags (
    model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models (model_id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE logged_model_params (
    model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models (model_id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE run_outputs (
    run_id   TEXT NOT NULL REFERENCES runs (run_id),
    model_id TEXT COLLATE "C" NOT NULL,
    step     BIGINT NOT NULL,
    PRIMARY KEY (run_id, model_id, step)
);

-- Byte order ("C"), so a directory's files are one range of the index.
CREATE TABLE mlflow_artifacts (
    path       TEXT COLLATE "C" PRIMARY KEY,
    sha256     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE mlflow_deleted_versions (
    model_id BIGINT NOT NULL REFERENCES models (id),
    number   BIGINT NOT NULL,
    PRIMARY KEY (model_id, number)
);
