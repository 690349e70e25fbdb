-- Each replica's statistics of a canary's routes in the current step
-- (modelops-deploy's Tally as JSON), so the replica judging the canary counts
-- every replica's calls. Keyed by the deployment's revision: a step is a
-- revision, and a new step starts from nothing.
CREATE TABLE canary_tallies (
    deployment TEXT COLLATE "C" NOT NULL,
    revision   BIGINT NOT NULL,
    replica    TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    tally      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (deployment, revision, replica, version)
);
CREATE INDEX canary_tallies_updated ON canary_tallies (updated_at);
