-- The times of calls that got labels, by deployment: the live-monitoring
-- engine (on the replica holding the background lease) takes them and
-- recomputes the closed windows holding them. Labels may be recorded
-- through any replica.
CREATE TABLE relabel_requests (
    deployment TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (deployment, at)
);
