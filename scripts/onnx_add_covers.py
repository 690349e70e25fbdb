#!/usr/bin/env python3
"""Writes the trained model's node covers into an exported ONNX tree ensemble.

Usage: onnx_add_covers.py MODEL.onnx TRAINED_MODEL (-o OUT.onnx | --in-place)
                          [--inputs ROWS.json | --no-check]

modelops explains ONNX tree ensembles with TreeSHAP, which weights each
child of a split by cover(child) / cover(node): it needs every node's
training cover, which ONNX stores in the tree operator's `nodes_hitrates`.
The exporters do not fill it: skl2onnx 1.20 and onnxmltools 1.16 (LightGBM)
write 1.0 for every node, onnxmltools (XGBoost) leaves it out. This tool
takes the covers from the trained model, the ones `shap.TreeExplainer` uses
for its type:

- scikit-learn random forest / extra trees / gradient boosting / decision
  tree (or a Pipeline ending in one), from joblib or pickle:
  `tree_.weighted_n_node_samples`;
- XGBoost (XGBClassifier / XGBRegressor / Booster from joblib or pickle, or
  XGBoost's own `.json` / `.ubj` model file): each node's `sum_hessian`;
- LightGBM (Booster or LGBMModel from joblib or pickle, or a model text
  file `.txt`): `internal_count` (splits) / `leaf_count` (leaves);

and maps them onto the ONNX nodes without relying on how the converter
numbers them: it walks tree i of the ONNX operator and tree i of the model
from their roots together, the ONNX true branch with the branch the library
takes when its comparison holds, and checks at every node that both are
leaves or both split on the same feature with the same threshold (to
float32) and the expected comparison. Any difference stops it, naming the
tree and node. Then it checks that onnxruntime gives bit-identical outputs
before and after the rewrite (hit rates are hints to the runtime) on probe
rows made from the model's own thresholds (plus NaN and random rows), or on
the rows of --inputs.

The ai.onnx.ml opset-5 TreeEnsemble has `nodes_hitrates` for interior nodes
only (leaves have no attribute for it): the tool fills those, but TreeSHAP
cannot be computed exactly from such a file alone.

It needs onnx, numpy, onnxruntime and the trained model's own library,
which it imports only for that model type.
"""

import argparse
import importlib.util
import json
import os
import sys

try:
    import numpy as np
except ImportError:  # reported by main() as a missing dependency
    np = None

TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble")


class Fail(Exception):
    """An expected error: reported as one message, never a traceback."""


# ---------------------------------------------------------------- originals
# Every original tree becomes a dict of arrays: left/right child (-1 at a
# leaf), feature, threshold, cover; `left` is where the row goes when the
# library's comparison holds ("mode").


def first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else repr(e)


def _library(model):
    return type(model).__module__.split(".")[0]


def describe(model):
    t = type(model)
    return f"{t.__module__}.{t.__qualname__}"


def sklearn_trees(model):
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import BaseDecisionTree

    if isinstance(model, (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)):
        if not hasattr(model, "estimators_"):
            raise Fail(f"the {type(model).__name__} is not fitted")
        estimators = list(model.estimators_)
    elif isinstance(model, (GradientBoostingClassifier, GradientBoostingRegressor)):
        if not hasattr(model, "estimators_"):
            raise Fail(f"the {type(model).__name__} is not fitted")
        # skl2onnx: tree id = stage * n_classes + class (one column for
        # binary and regression), i.e. estimators_ in row-major order.
        estimators = list(np.asarray(model.estimators_).ravel())
    elif isinstance(model, BaseDecisionTree):
        if not hasattr(model, "tree_"):
            raise Fail(f"the {type(model).__name__} is not fitted")
        estimators = [model]
    else:
        return None
    out = []
    for e in estimators:
        t = e.tree_
        out.append(
            {
                "left": t.children_left.astype(np.int64),
                "right": t.children_right.astype(np.int64),
                "feature": t.feature.astype(np.int64),
                "threshold": t.threshold.astype(np.float64),
                "cover": t.weighted_n_node_samples.astype(np.float64),
                "mode": "BRANCH_LEQ",
            }
        )
    return out


def xgboost_trees(model):
    import xgboost

    if isinstance(model, xgboost.XGBModel):
        try:
            booster = model.get_booster()
        except xgboost.core.XGBoostError as e:
            raise Fail(f"the {type(model).__name__} is not fitted ({e})")
    elif isinstance(model, xgboost.Booster):
        booster = model
    else:
        return None
    js = json.loads(booster.save_raw("json"))
    gb = js["learner"]["gradient_booster"]
    if gb.get("name", "gbtree") != "gbtree":
        raise Fail(f"XGBoost booster {gb.get('name')!r} is not supported (only gbtree)")
    out = []
    for t in gb["model"]["trees"]:
        left = np.array(t["left_children"], dtype=np.int64)
        if any(int(c) != 0 for c in t.get("split_type", [])):
            raise Fail("XGBoost categorical splits are not supported")
        out.append(
            {
                "left": left,
                "right": np.array(t["right_children"], dtype=np.int64),
                "feature": np.array(t["split_indices"], dtype=np.int64),
                # float32 in the model; XGBoost compares x < split.
                "threshold": np.array(t["split_conditions"], dtype=np.float32).astype(np.float64),
                "cover": np.array(t["sum_hessian"], dtype=np.float32).astype(np.float64),
                "mode": "BRANCH_LT",
            }
        )
    return out


def lightgbm_trees(model):
    import lightgbm

    if isinstance(model, lightgbm.LGBMModel):
        try:
            booster = model.booster_
        except Exception as e:  # sklearn's NotFittedError / LightGBMError
            raise Fail(f"the {type(model).__name__} is not fitted ({e})")
    elif isinstance(model, lightgbm.Booster):
        booster = model
    else:
        return None
    out = []
    for info in booster.dump_model()["tree_info"]:
        left, right, feature, threshold, cover = [], [], [], [], []

        def add(node):
            i = len(left)
            for a in (left, right, feature, threshold, cover):
                a.append(None)
            if "split_index" in node:
                if node.get("decision_type", "<=") != "<=":
                    raise Fail(f"LightGBM decision type {node.get('decision_type')} is not supported")
                feature[i] = node["split_feature"]
                threshold[i] = float(node["threshold"])
                cover[i] = float(node["internal_count"])
                left[i] = add(node["left_child"])
                right[i] = add(node["right_child"])
            else:
                feature[i], threshold[i], left[i], right[i] = -2, 0.0, -1, -1
                # shap: leaf_count, 0 for a lone-leaf tree without it.
                cover[i] = float(node.get("leaf_count", 0))
            return i

        add(info["tree_structure"])
        out.append(
            {
                "left": np.array(left, dtype=np.int64),
                "right": np.array(right, dtype=np.int64),
                "feature": np.array(feature, dtype=np.int64),
                "threshold": np.array(threshold, dtype=np.float64),
                "cover": np.array(cover, dtype=np.float64),
                "mode": "BRANCH_LEQ",
            }
        )
    return out


READERS = {"sklearn": sklearn_trees, "xgboost": xgboost_trees, "lightgbm": lightgbm_trees}
COVER_NAMES = {
    "sklearn": "tree_.weighted_n_node_samples",
    "xgboost": "sum_hessian",
    "lightgbm": "internal_count/leaf_count",
}


def final_estimator(model):
    """A scikit-learn Pipeline's last step (recursively); the model itself
    otherwise."""
    while _library(model) == "sklearn" and type(model).__name__ == "Pipeline" and hasattr(model, "steps"):
        model = model.steps[-1][1]
    return model


def original_trees(model):
    """The model's trees (see above), or None when it is not a tree
    ensemble this tool knows. Imports only the model's own library."""
    model = final_estimator(model)
    reader = READERS.get(_library(model))
    if reader is None:
        return None
    try:
        return reader(model)
    except ImportError:
        return None


def load_trained(path):
    """A trained model from a joblib / pickle file, an XGBoost `.json` /
    `.ubj` model file or a LightGBM model text file."""
    if not os.path.isfile(path):
        raise Fail(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".json", ".ubj"):
        try:
            import xgboost
        except ImportError:
            raise Fail(f"{path}: reading an XGBoost model file needs the xgboost package, which is not installed")
        try:
            return xgboost.Booster(model_file=path)
        except Exception as e:
            raise Fail(f"{path}: not an XGBoost model file ({first_line(e)})")
    if ext == ".txt":
        try:
            import lightgbm
        except ImportError:
            raise Fail(f"{path}: reading a LightGBM model file needs the lightgbm package, which is not installed")
        try:
            return lightgbm.Booster(model_file=path)
        except Exception as e:
            raise Fail(f"{path}: not a LightGBM model text file ({first_line(e)})")
    try:
        import joblib

        load = joblib.load
    except ImportError:
        import pickle

        def load(p):
            with open(p, "rb") as f:
                return pickle.load(f)

    try:
        return load(path)
    except ModuleNotFoundError as e:
        if e.name and all(part.isidentifier() for part in e.name.split(".")):
            raise Fail(f"{path}: loading it needs the Python package {e.name.split('.')[0]!r}, which is not installed")
        raise Fail(f"{path}: not a joblib/pickle file; expected a joblib/pickle file, an XGBoost .json/.ubj "
                   "model or a LightGBM .txt model")
    except Exception as e:
        raise Fail(
            f"{path}: cannot load it as a joblib/pickle file ({type(e).__name__}: {first_line(e)}); expected a joblib/pickle "
            "file, an XGBoost .json/.ubj model or a LightGBM .txt model"
        )


# ---------------------------------------------------------------- ONNX side


def attrs_of(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def as_array(v):
    import onnx
    from onnx import numpy_helper

    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)


def tree_node(proto):
    nodes = [n for n in proto.graph.node if n.domain == "ai.onnx.ml" and n.op_type in TREE_OPS]
    if len(nodes) != 1:
        raise Fail(f"expected one tree-ensemble node (ai.onnx.ml {'/'.join(TREE_OPS)}), found {len(nodes)}")
    return nodes[0]


class LegacyTrees:
    """TreeEnsembleClassifier / TreeEnsembleRegressor (ai.onnx.ml 1-3):
    every node, leaves included, is an entry of nodes_*, keyed by
    (tree id, node id)."""

    def __init__(self, node):
        a = attrs_of(node)
        self.a = a
        self.tree_ids = list(a["nodes_treeids"])
        self.node_ids = list(a["nodes_nodeids"])
        self.features = list(a["nodes_featureids"])
        self.modes = [m.decode() for m in a["nodes_modes"]]
        vals = a.get("nodes_values")
        if vals is None:
            vals = as_array(a["nodes_values_as_tensor"])
        self.values = np.asarray(vals, dtype=np.float64)
        self.true = list(a["nodes_truenodeids"])
        self.false = list(a["nodes_falsenodeids"])
        self.index = {(t, n): i for i, (t, n) in enumerate(zip(self.tree_ids, self.node_ids))}
        self.trees = sorted(set(self.tree_ids))
        self.n = len(self.tree_ids)

    def root(self, t):
        children = {c for i in range(self.n) if self.tree_ids[i] == t and self.modes[i] != "LEAF"
                    for c in (self.true[i], self.false[i])}
        roots = [i for i in range(self.n) if self.tree_ids[i] == t and self.node_ids[i] not in children]
        if len(roots) != 1:
            raise Fail(f"tree {t}: {len(roots)} roots")
        return roots[0]

    def size(self, t):
        return sum(1 for x in self.tree_ids if x == t)

    def is_leaf(self, i):
        return self.modes[i] == "LEAF"

    def children(self, i):
        t = self.tree_ids[i]
        try:
            return self.index[(t, self.true[i])], self.index[(t, self.false[i])]
        except KeyError:
            raise Fail(f"tree {t}: ONNX node {self.node_ids[i]} has a child that is not in the tree")

    def split(self, i):
        return self.features[i], self.values[i], self.modes[i]

    def set_hitrates(self, node, covers):
        """covers: attribute index → cover, for every node."""
        from onnx import helper

        keep = [x for x in node.attribute if x.name not in ("nodes_hitrates", "nodes_hitrates_as_tensor")]
        del node.attribute[:]
        node.attribute.extend(keep)
        node.attribute.append(helper.make_attribute("nodes_hitrates", [float(covers[i]) for i in range(self.n)]))


class V5Trees:
    """TreeEnsemble (ai.onnx.ml 5): interior nodes in nodes_*, leaves in
    leaf_*, a child is either according to nodes_{true,false}leafs. Handles
    are ("n", i) or ("l", k)."""

    MODES = {0: "BRANCH_LEQ", 1: "BRANCH_LT", 2: "BRANCH_GTE", 3: "BRANCH_GT", 4: "BRANCH_EQ", 5: "BRANCH_NEQ", 6: "BRANCH_MEMBER"}

    def __init__(self, node):
        a = attrs_of(node)
        self.roots = list(a["tree_roots"])
        self.features = list(a["nodes_featureids"])
        self.values = as_array(a["nodes_splits"]).astype(np.float64)
        self.modes = [self.MODES[int(m)] for m in as_array(a["nodes_modes"])]
        self.true, self.false = list(a["nodes_truenodeids"]), list(a["nodes_falsenodeids"])
        self.tleaf, self.fleaf = list(a["nodes_trueleafs"]), list(a["nodes_falseleafs"])
        self.trees = list(range(len(self.roots)))
        self.n = len(self.features)
        self.dtype = as_array(a["nodes_splits"]).dtype

    def root(self, t):
        return ("n", self.roots[t])

    def size(self, t):
        return None  # trees are not labelled per node; the walk checks coverage globally

    def is_leaf(self, h):
        return h[0] == "l"

    def children(self, h):
        i = h[1]
        return (("l" if self.tleaf[i] else "n", self.true[i]), ("l" if self.fleaf[i] else "n", self.false[i]))

    def split(self, h):
        return self.features[h[1]], self.values[h[1]], self.modes[h[1]]

    def set_hitrates(self, node, covers):
        from onnx import helper, numpy_helper

        interior = np.array([covers[("n", i)] for i in range(self.n)], dtype=np.float32)
        keep = [x for x in node.attribute if x.name != "nodes_hitrates"]
        del node.attribute[:]
        node.attribute.extend(keep)
        node.attribute.append(helper.make_attribute("nodes_hitrates", numpy_helper.from_array(interior)))


def onnx_trees(node):
    try:
        return V5Trees(node) if node.op_type == "TreeEnsemble" else LegacyTrees(node)
    except KeyError as e:
        raise Fail(f"the {node.op_type} node has no attribute {e.args[0]}")


def same_threshold(onnx_t, orig_t):
    """The ONNX threshold is float32: equal to the original rounded to
    float32, or within two float32 steps of it (skl2onnx moves a
    threshold to the float32 that splits float32 inputs the way the float64
    one does)."""
    o32 = np.float32(orig_t)
    if np.float32(onnx_t) == o32:
        return True
    step = abs(float(np.spacing(o32))) if np.isfinite(o32) else 0.0
    return abs(float(onnx_t) - float(orig_t)) <= 2 * step


NOT_EXPORTED = "is the ONNX file an export of this trained model?"


def _node(h):
    """An ONNX node handle in words: a nodes_* index, or an opset-5 ("n", i) / ("l", k)."""
    if isinstance(h, tuple):
        return f"{'interior node' if h[0] == 'n' else 'leaf'} {h[1]}"
    return f"node {h}"


def map_covers(onnx_trees, orig):
    """Walks every ONNX tree with its original; returns handle → cover."""
    if len(onnx_trees.trees) != len(orig):
        raise Fail(f"the ONNX model has {len(onnx_trees.trees)} trees, the trained model {len(orig)}: {NOT_EXPORTED}")
    covers = {}
    for t, o in zip(onnx_trees.trees, orig):
        stack = [(onnx_trees.root(t), 0)]
        visited = 0
        while stack:
            h, j = stack.pop()
            visited += 1
            if h in covers:
                raise Fail(f"tree {t}: ONNX {_node(h)} reached twice")
            covers[h] = o["cover"][j]
            o_leaf = o["left"][j] < 0
            if onnx_trees.is_leaf(h) != o_leaf:
                raise Fail(
                    f"tree {t}: ONNX {_node(h)} is {'a leaf' if onnx_trees.is_leaf(h) else 'a split'}, the trained "
                    f"model's node {j} {'a leaf' if o_leaf else 'a split'}: {NOT_EXPORTED}"
                )
            if o_leaf:
                continue
            f, thr, mode = onnx_trees.split(h)
            if f != o["feature"][j] or mode != o["mode"] or not same_threshold(thr, o["threshold"][j]):
                raise Fail(
                    f"tree {t}: ONNX {_node(h)} ({mode} x[{f}] {float(thr)!r}) does not match the trained model's "
                    f"node {j} ({o['mode']} x[{int(o['feature'][j])}] {float(o['threshold'][j])!r}): {NOT_EXPORTED}"
                )
            yes, no = onnx_trees.children(h)
            stack.append((yes, o["left"][j]))
            stack.append((no, o["right"][j]))
        size = onnx_trees.size(t)
        if size is not None and size != visited:
            raise Fail(f"tree {t}: walked {visited} of its {size} ONNX nodes")
        if visited != len(o["left"]):
            raise Fail(f"tree {t}: walked {visited} nodes, the original has {len(o['left'])}")
    if isinstance(onnx_trees, V5Trees):
        interior = sum(1 for h in covers if h[0] == "n")
        if interior != onnx_trees.n:
            raise Fail(f"walked {interior} of {onnx_trees.n} interior nodes")
    elif len(covers) != onnx_trees.n:
        raise Fail(f"walked {len(covers)} of {onnx_trees.n} ONNX nodes")
    return covers


def hitrates_state(node):
    """What the file holds before the rewrite, in words."""
    before = attrs_of(node).get("nodes_hitrates")
    if before is None:
        return "absent"
    before = as_array(before)
    return "all 1.0" if np.all(before == 1.0) else f"{len(before)} values"


# ------------------------------------------------------------ onnxruntime


def run(proto, X):
    """onnxruntime's outputs for one input array X, or for a dict of inputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # not the exporters' output-shape warnings
    sess = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = X if isinstance(X, dict) else {sess.get_inputs()[0].name: X}
    return sess.run(None, feeds)


def same_outputs(a, b):
    for x, y in zip(a, b):
        if isinstance(x, list):  # ZipMap
            if x != y and not all(
                set(r) == set(s) and all(np.array_equal(r[k], s[k], equal_nan=True) for k in r) for r, s in zip(x, y)
            ):
                return False
        else:
            x, y = np.asarray(x), np.asarray(y)
            if x.dtype.kind == "f":
                if not np.array_equal(x, y, equal_nan=True):
                    return False
            elif not np.array_equal(x, y):
                return False
    return len(a) == len(b)


def _ort_outputs(proto, inputs, when):
    try:
        return [run(proto, X) for X in inputs]
    except Exception as e:
        raise Fail(f"onnxruntime cannot run the model {when}: {first_line(e)}")


def add_covers(proto, orig, inputs):
    """Writes the covers of `orig` (original_trees) into the tree node of
    `proto` (changed in place), checks the model and that onnxruntime's
    outputs on each of `inputs` (arrays, or dicts name → array) are
    unchanged. Returns (trees, node): the ONNX tree view and the node."""
    import onnx

    node = tree_node(proto)
    trees = onnx_trees(node)
    covers = map_covers(trees, orig)
    outs_before = _ort_outputs(proto, inputs, "before the rewrite")
    trees.set_hitrates(node, covers)
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise Fail(f"the rewritten model does not pass onnx.checker: {e}")
    outs_after = _ort_outputs(proto, inputs, "after the rewrite")
    for x, y in zip(outs_before, outs_after):
        if not same_outputs(x, y):
            raise Fail("onnxruntime's outputs changed after writing nodes_hitrates")
    return trees, node


# ---------------------------------------------------------- probe rows

def numpy_of(elem_type):
    """The numpy dtype of an ONNX tensor element type we can make rows of."""
    return {1: np.float32, 11: np.float64, 10: np.float16, 6: np.int32, 7: np.int64}.get(elem_type)


def probe_inputs(proto, trees, n_rows=512, seed=0):
    """Rows to compare onnxruntime's outputs on, for a model with one 2-D
    numeric input: each feature takes one of the model's thresholds on it,
    the float32 just above or below, NaN (float inputs) or a random value.
    Raises Fail when the input is of another kind (use --inputs)."""
    graph_inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(graph_inputs) != 1:
        raise Fail(f"the model has {len(graph_inputs)} inputs: pass rows with --inputs (or --no-check)")
    inp = graph_inputs[0]
    tt = inp.type.tensor_type
    dtype = numpy_of(tt.elem_type)
    dims = tt.shape.dim
    if dtype is None or len(dims) != 2:
        raise Fail(f"cannot make probe rows for input {inp.name!r} (not a 2-D numeric tensor): "
                   "pass rows with --inputs (or --no-check)")
    width = dims[1].dim_value if dims[1].HasField("dim_value") else None
    features = np.asarray(trees.features, dtype=np.int64)
    if width is None:
        width = int(features.max()) + 1 if features.size else 1
    rng = np.random.RandomState(seed)
    leaf = np.array([trees.is_leaf(i) for i in range(trees.n)]) if isinstance(trees, LegacyTrees) \
        else np.zeros(trees.n, dtype=bool)
    cands = []
    for f in range(width):
        thr = trees.values[(features == f) & ~leaf].astype(np.float32)
        vals = [thr, np.nextafter(thr, np.float32(np.inf)), np.nextafter(thr, np.float32(-np.inf)),
                rng.randn(4).astype(np.float32)]
        cands.append(np.unique(np.concatenate(vals)))
    X = np.empty((n_rows, width), dtype=np.float64)
    for f, c in enumerate(cands):
        X[:, f] = c[rng.randint(len(c), size=n_rows)]
    if np.issubdtype(dtype, np.floating):
        X[rng.rand(*X.shape) < 0.1] = np.nan
        X[0, :] = np.nan
    else:
        X = np.round(X)
    return [X.astype(dtype)]


def read_inputs(path, proto):
    """--inputs: a JSON list of rows, {"X": rows} / {input name: rows};
    null is NaN."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise Fail(f"--inputs {path}: {e}")
    graph_inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]

    def arr(rows, inp):
        dtype = numpy_of(inp.type.tensor_type.elem_type)
        if dtype is None:
            return np.asarray(rows, dtype=object)
        return np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=dtype)

    try:
        if isinstance(data, list):
            if len(graph_inputs) != 1:
                raise Fail(f"--inputs {path}: the model has {len(graph_inputs)} inputs; give {{name: rows}}")
            return [arr(data, graph_inputs[0])]
        if isinstance(data, dict):
            if len(data) == 1 and len(graph_inputs) == 1:
                return [arr(next(iter(data.values())), graph_inputs[0])]
            by_name = {i.name: i for i in graph_inputs}
            missing = [n for n in by_name if n not in data]
            if missing:
                raise Fail(f"--inputs {path}: no rows for input(s) {', '.join(missing)}")
            return [{n: arr(data[n], by_name[n]) for n in by_name}]
    except (TypeError, ValueError) as e:
        raise Fail(f"--inputs {path}: {e}")
    raise Fail(f"--inputs {path}: expected a list of rows or {{input name: rows}}")


# ------------------------------------------------------------------ CLI


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "onnx-add-covers",
        description="Write a trained tree ensemble's node covers into its ONNX export's nodes_hitrates "
                    "(what TreeSHAP needs).",
    )
    p.add_argument("model", metavar="MODEL.onnx", help="the exported ONNX model")
    p.add_argument("trained", metavar="TRAINED_MODEL",
                   help="the fitted model it was exported from: joblib/pickle of a scikit-learn forest, gradient "
                        "boosting model or pipeline ending in one, of an XGBoost or LightGBM model; an XGBoost "
                        ".json/.ubj model file; a LightGBM .txt model file")
    p.add_argument("-o", "--output", metavar="OUT.onnx", help="where to write the model with covers")
    p.add_argument("--in-place", action="store_true", help="rewrite MODEL.onnx itself (without -o)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--inputs", metavar="ROWS.json",
                   help="rows to compare onnxruntime's outputs on (a JSON list of rows, or {input name: rows}; "
                        "null is NaN) instead of probe rows made from the thresholds")
    g.add_argument("--no-check", action="store_true", help="skip the onnxruntime outputs-unchanged check")
    args = p.parse_args(argv)
    missing = [m for m in ("numpy", "onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"{p.prog}: error: needs the Python package(s) {', '.join(missing)}, not installed for "
              f"{sys.executable} (pip install {' '.join(missing)}, or run it with the Python that has them)",
              file=sys.stderr)
        return 1
    try:
        msg = add_covers_cli(args)
    except Fail as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 1
    print(msg)
    return 0


def add_covers_cli(args):
    if args.output and args.in_place:
        raise Fail("give either -o OUT.onnx or --in-place, not both")
    if not args.output and not args.in_place:
        raise Fail(f"no output: give -o OUT.onnx, or --in-place to rewrite {args.model}")
    out = args.output or args.model
    import onnx

    if not os.path.isfile(args.model):
        raise Fail(f"{args.model}: no such file")
    try:
        proto = onnx.load(args.model)
    except Exception as e:
        raise Fail(f"{args.model}: cannot read it as an ONNX model ({type(e).__name__}: {first_line(e)})")
    node = tree_node(proto)
    model = load_trained(args.trained)
    est = final_estimator(model)
    orig = original_trees(model)
    if orig is None:
        raise Fail(
            f"unsupported model type {describe(est)}: expected a fitted scikit-learn random forest, extra trees, "
            "gradient boosting or decision tree (or a Pipeline ending in one), an XGBoost model or a LightGBM Booster"
        )
    emitted = hitrates_state(node)
    trees = onnx_trees(node)
    if args.no_check:
        inputs = []
    elif args.inputs:
        inputs = read_inputs(args.inputs, proto)
    else:
        inputs = probe_inputs(proto, trees)
    trees, node = add_covers(proto, orig, inputs)
    try:
        onnx.save(proto, out)
    except OSError as e:
        raise Fail(f"cannot write {out}: {e}")
    where = "interior nodes only: opset-5 TreeEnsemble has no leaf hit rates" if isinstance(trees, V5Trees) \
        else f"{trees.n} nodes"
    if args.no_check:
        check = "onnxruntime check skipped"
    else:
        rows = sum(len(next(iter(x.values()))) if isinstance(x, dict) else len(x) for x in inputs)
        check = f"onnxruntime outputs unchanged on {rows} rows"
    return (f"wrote {out}: nodes_hitrates of {len(orig)} trees ({where}) from {describe(est)} "
            f"{COVER_NAMES[_library(est)]} (was {emitted}); {check}")


if __name__ == "__main__":
    sys.exit(main())
