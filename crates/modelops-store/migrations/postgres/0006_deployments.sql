-- Deployments and their prediction records (PostgreSQL). Names use the "C"
-- collation, as in 0001.

-- A deployment (core::deployment::Deployment) is stored whole as serde_json
-- text in `body`, so the schema need not follow every field; the columns
-- beside it are what queries filter and order by, written from the same
-- value. The name and model read back from their columns, as stored.
CREATE TABLE deployments (
    name       TEXT COLLATE "C" PRIMARY KEY,
    model      TEXT COLLATE "C" NOT NULL,
    state      TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployments_model ON deployments (model, name);

-- One call answered through a deployment. Appended in batches off the
-- request path, read by deployment in id order, pruned by age; never
-- updated, not audited. No foreign key to deployments: records are
-- bookkeeping, written outside the write lock.
CREATE TABLE prediction_records (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment TEXT COLLATE "C" NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    request_id TEXT NOT NULL,
    model      TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    -- core::deployment::RecordRoute: primary or shadow.
    route      TEXT NOT NULL,
    -- Open Inference Protocol JSON tensors.
    inputs     TEXT NOT NULL,
    outputs    TEXT NOT NULL,
    error      TEXT,
    latency_us BIGINT NOT NULL
);
CREATE INDEX prediction_records_deployment ON prediction_records (deployment, id);
CREATE INDEX prediction_records_at ON prediction_records (at);
