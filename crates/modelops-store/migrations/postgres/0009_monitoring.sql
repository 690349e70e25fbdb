-- Live monitoring (PostgreSQL); see the SQLite migration of the same number
-- for what each table holds.

CREATE TABLE reference_profiles (
    model      TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    profile    TEXT NOT NULL,
    source     TEXT NOT NULL,
    rows_count BIGINT NOT NULL,
    estimator  TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (model, version)
);

CREATE TABLE monitors (
    deployment TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (deployment, name)
);

CREATE TABLE monitor_states (
    deployment TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (deployment, name)
);

CREATE TABLE monitor_results (
    deployment   TEXT COLLATE "C" NOT NULL,
    monitor      TEXT COLLATE "C" NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL,
    window_end   TIMESTAMPTZ NOT NULL,
    rows_count   BIGINT NOT NULL,
    closed       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    computed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (deployment, monitor, window_start, version)
);

CREATE TABLE prediction_labels (
    deployment TEXT COLLATE "C" NOT NULL,
    request_id TEXT NOT NULL,
    label      TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (deployment, request_id)
);
CREATE INDEX prediction_records_request ON prediction_records (deployment, request_id);

CREATE TABLE alerts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment   TEXT COLLATE "C" NOT NULL,
    monitor      TEXT COLLATE "C" NOT NULL,
    rule         TEXT NOT NULL,
    state        TEXT NOT NULL,
    version      BIGINT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    fired_at     TIMESTAMPTZ NOT NULL,
    resolved_at  TIMESTAMPTZ,
    detail       TEXT NOT NULL
);
CREATE INDEX alerts_deployment ON alerts (deployment, id);

CREATE TABLE retrain_requests (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model      TEXT COLLATE "C" NOT NULL,
    deployment TEXT COLLATE "C" NOT NULL,
    alert_id   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
