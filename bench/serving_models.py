"""Models and reference timings for bench/serving.sh.

    serving_models.py make OUT       train the two benchmark models on fixed data and write
                                     OUT/{rf,logreg}.onnx (skl2onnx, default export),
                                     OUT/mlserver/{rf,logreg}/ (model.joblib + model-settings.json),
                                     OUT/row.json (one row of 10 features)
    serving_models.py ort OUT        onnxruntime's model-only time per row, single row and
                                     1,000-row batch, default threads and 1 thread, as JSON
"""

import json
import os
import statistics
import sys
import time

import numpy as np


def make(out):
    import joblib
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=5000, n_features=10, n_informative=6, random_state=7)
    X = X.astype(np.float32)
    models = {
        "rf": RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(X, y),
        "logreg": LogisticRegression(max_iter=1000).fit(X, y),
    }
    for name, model in models.items():
        proto = to_onnx(model, X[:1], target_opset={"": 17, "ai.onnx.ml": 3})
        with open(os.path.join(out, f"{name}.onnx"), "wb") as f:
            f.write(proto.SerializeToString())
        folder = os.path.join(out, "mlserver", name)
        os.makedirs(folder, exist_ok=True)
        joblib.dump(model, os.path.join(folder, "model.joblib"))
        settings = {"name": name, "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}
        with open(os.path.join(folder, "model-settings.json"), "w") as f:
            json.dump(settings, f)
    with open(os.path.join(out, "mlserver", "settings.json"), "w") as f:
        # Ports only; everything else is MLServer's default.
        json.dump({"http_port": 5981, "grpc_port": 5982, "metrics_port": 5983}, f)
    with open(os.path.join(out, "row.json"), "w") as f:
        json.dump([float(v) for v in X[0]], f)
    np.save(os.path.join(out, "batch.npy"), X[:1000])
    with open(os.path.join(out, "batch.json"), "w") as f:
        json.dump(X[:1000].astype(float).tolist(), f)


def per_row_us(run, rows, budget=2.0):
    """Median over repeated timed calls, in µs per row."""
    for _ in range(20):
        run()
    samples = []
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline or len(samples) < 20:
        t = time.perf_counter()
        run()
        samples.append((time.perf_counter() - t) * 1e6 / rows)
    return statistics.median(samples)


def ort(out):
    import onnxruntime as rt

    batch = np.load(os.path.join(out, "batch.npy"))
    result = {}
    for name in ["rf", "logreg"]:
        path = os.path.join(out, f"{name}.onnx")
        for threads in ["default", "1"]:
            options = rt.SessionOptions()
            if threads == "1":
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
            session = rt.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            feed = session.get_inputs()[0].name
            one = batch[:1]
            result[f"{name}/ort_{threads}_threads/1_row_us"] = per_row_us(lambda: session.run(None, {feed: one}), 1)
            result[f"{name}/ort_{threads}_threads/1000_rows_us_per_row"] = per_row_us(lambda: session.run(None, {feed: batch}), len(batch))
    print(json.dumps(result))


if __name__ == "__main__":
    command, out = sys.argv[1], sys.argv[2]
    {"make": make, "ort": ort}[command](out)
