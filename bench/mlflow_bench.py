"""Helper of bench/mlflow.sh: the unmodified MLflow client (pinned in
tests/python/requirements.txt) against one server, modelops or a real
`mlflow server`. The server is MLFLOW_TRACKING_URI (with
MLFLOW_TRACKING_TOKEN for modelops).

    mlflow_bench.py free-port
        prints a free TCP port on 127.0.0.1
    mlflow_bench.py seed
        an experiment and a run (for log-batch), 50 registered models (for
        search), `bench` with version 1 and its alias `challenger`, and the
        empty models the creations go to; prints {"run_id": …} as JSON
    mlflow_bench.py client [--pgid N] [--aliases 500] [--creates 200] [--steps 1000]
        sequential client calls, each timed: get_model_version_by_alias,
        create_model_version, and a training loop logging 5 metrics per step
        inside mlflow.start_run(); prints JSON with wall time, per-call
        median and p99, the client's own CPU time and (with --pgid) the
        server's CPU time over each phase.
"""

import argparse
import json
import os
import socket
import statistics
import sys
import time

SEARCH_MODELS = 50  # registered models the search case lists (including `bench`)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_cpu_seconds(pgid):
    """user+system CPU seconds of every live process in process group `pgid`."""
    if pgid is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def seed():
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment_id = client.create_experiment("bench")
    run = client.create_run(experiment_id, run_name="log-batch")
    client.create_registered_model("bench")
    client.create_model_version("bench", "s3://bucket/path")
    client.set_registered_model_alias("bench", "challenger", "1")
    for i in range(1, SEARCH_MODELS):
        client.create_registered_model(f"search-{i:02d}")
    # Where wrk's and the client's creations go.
    client.create_registered_model("bench-create")
    client.create_registered_model("client-create")
    assert client.get_model_version_by_alias("bench", "challenger").version == "1"
    print(json.dumps({"run_id": run.info.run_id, "experiment_id": experiment_id, "mlflow": mlflow.__version__}))


def timed(label, n, call, pgid):
    """Calls `call(i)` for i in range(n), sequentially; times each call."""
    samples = []
    cpu0, server0 = time.process_time(), group_cpu_seconds(pgid)
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    cpu, server = time.process_time() - cpu0, group_cpu_seconds(pgid)
    samples.sort()
    result = {
        "calls": n,
        "wall_s": round(wall, 4),
        "median_ms": round(statistics.median(samples) * 1000, 4),
        "p99_ms": round(samples[min(n - 1, round(0.99 * (n - 1)))] * 1000, 4),
        "per_second": round(n / wall, 2),
        "client_cpu_s": round(cpu, 4),
        "server_cpu_s": None if server is None else round(server - server0, 3),
    }
    print(f"  {label}: {n} calls in {wall:.2f} s, median {result['median_ms']:.2f} ms, client CPU {cpu:.2f} s"
          + ("" if server is None else f", server CPU {result['server_cpu_s']:.2f} s"), file=sys.stderr)
    return result


def client_bench(args):
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    # Warm-up: the first calls open the connection and import lazily.
    for _ in range(10):
        client.get_model_version_by_alias("bench", "challenger")
    out = {}
    out["get_model_version_by_alias"] = timed(
        "get_model_version_by_alias", args.aliases, lambda i: client.get_model_version_by_alias("bench", "challenger"), args.pgid
    )
    out["create_model_version"] = timed(
        "create_model_version", args.creates, lambda i: client.create_model_version("client-create", "s3://bucket/path"), args.pgid
    )

    mlflow.set_experiment("client-train")
    cpu0, server0 = time.process_time(), group_cpu_seconds(args.pgid)
    start = time.perf_counter()
    with mlflow.start_run():
        loop = timed(
            "log_metrics (5 per step)",
            args.steps,
            lambda i: mlflow.log_metrics(
                {"loss": 1.0 / (i + 1), "accuracy": i / args.steps, "lr": 0.01 * 0.999**i, "grad_norm": 1.0 + (i % 7), "epoch": i // 100},
                step=i,
            ),
            args.pgid,
        )
    loop["run_wall_s"] = round(time.perf_counter() - start, 4)  # with start_run and the end of the run
    loop["run_client_cpu_s"] = round(time.process_time() - cpu0, 4)
    server = group_cpu_seconds(args.pgid)
    loop["run_server_cpu_s"] = None if server is None else round(server - server0, 3)
    out["training_loop"] = loop
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    sub.add_parser("seed")
    c = sub.add_parser("client")
    c.add_argument("--pgid", type=int)
    c.add_argument("--aliases", type=int, default=500)
    c.add_argument("--creates", type=int, default=200)
    c.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    if args.cmd == "free-port":
        print(free_port())
    elif args.cmd == "seed":
        seed()
    else:
        client_bench(args)


if __name__ == "__main__":
    main()
