//! Tree ensembles: `TreeEnsembleClassifier`, `TreeEnsembleRegressor` and
//! the opset-5 `TreeEnsemble`, in one flat layout.
//!
//! Why our own: tract's ensemble resolves each leaf by walking an iterator
//! from the first leaf (quadratic in the ensemble's size) and takes the
//! argmax before the binary fix-up, inverting gradient-boosting labels.
//! Here every tree is a run of 16-byte nodes in one array (a leaf holds the
//! range of its weights), rows are evaluated in blocks, tree by tree, so a
//! tree's nodes stay in cache across the block, and nothing is allocated
//! per row. Scores accumulate in `f32`, as onnxruntime does for float
//! inputs, and the finalisation (base values, the binary cases, the
//! post-transforms with onnxruntime's own logistic and probit) follows
//! onnxruntime's `tree_ensemble_aggregator.h` and `ml_common.h`, which is
//! what every exporter's output is validated against.

use super::attrs::Attrs;
use super::{as_matrix, Kernel, OutShape};
use crate::onnx::tree_shap::{ShapTree, SplitMode, LEAF};
use std::collections::HashMap;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{ArrayD, IxDyn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

const IS_LEAF: u32 = 1 << 31;
const MISSING_TRUE: u32 = 1 << 30;
const MODE_SHIFT: u32 = 27;
const FEATURE_MASK: u32 = (1 << MODE_SHIFT) - 1;

/// One node: for a split, `a`/`b` are the yes/no children; for a leaf, the
/// `[a, b)` range of its weights. `meta` packs the feature index, the mode,
/// whether NaN goes to `yes`, and the leaf flag.
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f32,
    meta: u32,
    a: u32,
    b: u32,
}

impl Node {
    fn mode(self) -> Mode {
        match (self.meta >> MODE_SHIFT) & 7 {
            0 => Mode::Leq,
            1 => Mode::Lt,
            2 => Mode::Gte,
            3 => Mode::Gt,
            4 => Mode::Eq,
            _ => Mode::Neq,
        }
    }
}

/// A parsed ensemble, shared by the operator and the explainer.
#[derive(Debug, Clone)]
pub struct Ensemble {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    leaf_target: Vec<u32>,
    leaf_weight: Vec<f32>,
    /// Training rows reaching each node (`nodes_hitrates`), when exported.
    cover: Option<Vec<f32>>,
    /// One past the largest feature index any split reads.
    pub n_features: usize,
    pub n_targets: usize,
    pub aggregate: Aggregate,
    pub post: PostTransform,
    pub base_values: Vec<f32>,
    /// The same mode everywhere (the usual case): evaluated without a match.
    uniform: Option<Mode>,
}

/// A node as the classic (opset ≤ 3) attributes describe it.
struct ClassicNode {
    tree: i64,
    id: i64,
    feature: i64,
    value: f32,
    mode: Option<Mode>,
    yes: i64,
    no: i64,
    missing_true: bool,
    hitrate: Option<f32>,
}

fn parse_mode(a: &Attrs, s: &str) -> TractResult<Option<Mode>> {
    Ok(Some(match s {
        "BRANCH_LEQ" => Mode::Leq,
        "BRANCH_LT" => Mode::Lt,
        "BRANCH_GTE" => Mode::Gte,
        "BRANCH_GT" => Mode::Gt,
        "BRANCH_EQ" => Mode::Eq,
        "BRANCH_NEQ" => Mode::Neq,
        "LEAF" => return Ok(None),
        other => return Err(a.err("nodes_modes", format!("unknown mode `{other}`"))),
    }))
}

pub fn parse_post(a: &Attrs, s: &str) -> TractResult<PostTransform> {
    Ok(match s {
        "NONE" | "" => PostTransform::None,
        "LOGISTIC" => PostTransform::Logistic,
        "SOFTMAX" => PostTransform::Softmax,
        "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
        "PROBIT" => PostTransform::Probit,
        other => return Err(a.err("post_transform", format!("unknown transform `{other}`"))),
    })
}

fn parse_aggregate(a: &Attrs, s: &str) -> TractResult<Aggregate> {
    Ok(match s {
        "SUM" | "" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => return Err(a.err("aggregate_function", format!("unknown aggregate `{other}`"))),
    })
}

fn index(a: &Attrs, name: &str, v: i64) -> TractResult<u32> {
    u32::try_from(v).ok().filter(|&v| v < FEATURE_MASK).ok_or_else(|| a.err(name, format!("index {v} out of range")))
}

fn len_check(a: &Attrs, name: &str, got: usize, want: usize) -> TractResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(a.err(name, format!("has {got} entries where `nodes_modes` has {want}")))
    }
}

impl Ensemble {
    /// From the classic attributes; `prefix` is `class` or `target`.
    #[allow(clippy::too_many_lines)]
    fn classic(a: &Attrs, prefix: &str, n_targets: usize) -> TractResult<Ensemble> {
        let modes = a.strings("nodes_modes").ok_or_else(|| a.err("nodes_modes", "missing"))?;
        let n = modes.len();
        let trees = a.req_ints("nodes_treeids")?;
        let ids = a.req_ints("nodes_nodeids")?;
        let features = a.req_ints("nodes_featureids")?;
        let values = a.float_list("nodes_values")?.ok_or_else(|| a.err("nodes_values", "missing"))?;
        let yes = a.req_ints("nodes_truenodeids")?;
        let no = a.req_ints("nodes_falsenodeids")?;
        for (name, len) in [
            ("nodes_treeids", trees.len()),
            ("nodes_nodeids", ids.len()),
            ("nodes_featureids", features.len()),
            ("nodes_values", values.len()),
            ("nodes_truenodeids", yes.len()),
            ("nodes_falsenodeids", no.len()),
        ] {
            len_check(a, name, len, n)?;
        }
        let missing = a.ints("nodes_missing_value_tracks_true").filter(|m| !m.is_empty());
        if let Some(m) = missing {
            len_check(a, "nodes_missing_value_tracks_true", m.len(), n)?;
        }
        let hitrates = a.float_list("nodes_hitrates")?.filter(|h| !h.is_empty());
        if let Some(h) = &hitrates {
            len_check(a, "nodes_hitrates", h.len(), n)?;
        }
        #[allow(clippy::cast_possible_truncation)]
        let classic: Vec<ClassicNode> = (0..n)
            .map(|i| {
                Ok(ClassicNode {
                    tree: trees[i],
                    id: ids[i],
                    feature: features[i],
                    value: values[i] as f32,
                    mode: parse_mode(a, &modes[i])?,
                    yes: yes[i],
                    no: no[i],
                    missing_true: missing.is_some_and(|m| m[i] != 0),
                    hitrate: hitrates.as_ref().map(|h| h[i] as f32),
                })
            })
            .collect::<TractResult<_>>()?;

        let w_trees = a.req_ints(&format!("{prefix}_treeids"))?;
        let w_nodes = a.req_ints(&format!("{prefix}_nodeids"))?;
        let w_ids = a.req_ints(&format!("{prefix}_ids"))?;
        let w_values = a.float_list(&format!("{prefix}_weights"))?.ok_or_else(|| a.err(&format!("{prefix}_weights"), "missing"))?;
        if w_nodes.len() != w_trees.len() || w_ids.len() != w_trees.len() || w_values.len() != w_trees.len() {
            return Err(a.err(&format!("{prefix}_weights"), "the leaf weight lists differ in length"));
        }
        let mut weights: HashMap<(i64, i64), Vec<(u32, f32)>> = HashMap::new();
        for i in 0..w_trees.len() {
            let target = u32::try_from(w_ids[i])
                .ok()
                .filter(|&t| (t as usize) < n_targets)
                .ok_or_else(|| a.err(&format!("{prefix}_ids"), format!("{} is not below {n_targets}", w_ids[i])))?;
            #[allow(clippy::cast_possible_truncation)]
            weights.entry((w_trees[i], w_nodes[i])).or_default().push((target, w_values[i] as f32));
        }

        let position: HashMap<(i64, i64), u32> =
            classic.iter().enumerate().map(|(i, c)| ((c.tree, c.id), i as u32)).collect();
        if position.len() != n {
            return Err(a.err("nodes_nodeids", "a (tree, node) pair appears twice"));
        }
        let mut has_parent = vec![false; n];
        let mut nodes = Vec::with_capacity(n);
        let mut leaf_target = Vec::new();
        let mut leaf_weight = Vec::new();
        let mut n_features = 0;
        let mut uniform = None;
        let mut mixed = false;
        for c in &classic {
            match c.mode {
                Some(mode) => {
                    let child = |id: i64, name: &str| {
                        position.get(&(c.tree, id)).copied().ok_or_else(|| {
                            a.err(name, format!("node {id} of tree {} does not exist", c.tree))
                        })
                    };
                    let (y, n_) = (child(c.yes, "nodes_truenodeids")?, child(c.no, "nodes_falsenodeids")?);
                    has_parent[y as usize] = true;
                    has_parent[n_ as usize] = true;
                    let feature = index(a, "nodes_featureids", c.feature)?;
                    n_features = n_features.max(feature as usize + 1);
                    match uniform {
                        None if !mixed => uniform = Some(mode),
                        Some(m) if m != mode => {
                            uniform = None;
                            mixed = true;
                        }
                        _ => {}
                    }
                    let meta = feature | ((mode as u32) << MODE_SHIFT) | if c.missing_true { MISSING_TRUE } else { 0 };
                    nodes.push(Node { threshold: c.value, meta, a: y, b: n_ });
                }
                None => {
                    let start = leaf_target.len() as u32;
                    for &(t, w) in weights.get(&(c.tree, c.id)).map(Vec::as_slice).unwrap_or(&[]) {
                        leaf_target.push(t);
                        leaf_weight.push(w);
                    }
                    nodes.push(Node { threshold: 0.0, meta: IS_LEAF, a: start, b: leaf_target.len() as u32 });
                }
            }
        }
        // Roots are the nodes nothing points at, in tree order (onnxruntime
        // finds them the same way rather than trusting node id 0).
        let mut roots: Vec<(i64, u32)> =
            (0..n).filter(|&i| !has_parent[i]).map(|i| (classic[i].tree, i as u32)).collect();
        roots.sort_by_key(|r| r.0);
        let cover = classic.iter().map(|c| c.hitrate).collect::<Option<Vec<f32>>>();
        let ensemble = Ensemble {
            nodes,
            roots: roots.into_iter().map(|r| r.1).collect(),
            leaf_target,
            leaf_weight,
            cover,
            n_features,
            n_targets,
            aggregate: Aggregate::Sum,
            post: PostTransform::None,
            base_values: vec![],
            uniform: if mixed { None } else { uniform },
        };
        ensemble.check_acyclic(a)?;
        Ok(ensemble)
    }

    /// From the opset-5 `TreeEnsemble` attributes: splits and leaves are
    /// numbered apart, children say which list they index.
    #[allow(clippy::too_many_lines, clippy::cast_possible_truncation)]
    fn v5(a: &Attrs) -> TractResult<Ensemble> {
        let roots = a.req_ints("tree_roots")?;
        let features = a.req_ints("nodes_featureids")?;
        let n = features.len();
        let splits = a.float_list("nodes_splits")?.ok_or_else(|| a.err("nodes_splits", "missing"))?;
        let modes = a.int_list("nodes_modes")?.ok_or_else(|| a.err("nodes_modes", "missing"))?;
        let yes = a.req_ints("nodes_truenodeids")?;
        let yes_leaf = a.req_ints("nodes_trueleafs")?;
        let no = a.req_ints("nodes_falsenodeids")?;
        let no_leaf = a.req_ints("nodes_falseleafs")?;
        let missing = a.ints("nodes_missing_value_tracks_true").filter(|m| !m.is_empty());
        for (name, len) in [
            ("nodes_splits", splits.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", yes.len()),
            ("nodes_trueleafs", yes_leaf.len()),
            ("nodes_falsenodeids", no.len()),
            ("nodes_falseleafs", no_leaf.len()),
            ("nodes_missing_value_tracks_true", missing.map_or(n, <[i64]>::len)),
        ] {
            if len != n {
                return Err(a.err(name, format!("has {len} entries where `nodes_featureids` has {n}")));
            }
        }
        if a.has("membership_values") {
            return Err(a.err("membership_values", "set-membership splits (BRANCH_MEMBER) are not supported"));
        }
        let targets = a.req_ints("leaf_targetids")?;
        let weights = a.float_list("leaf_weights")?.ok_or_else(|| a.err("leaf_weights", "missing"))?;
        if weights.len() != targets.len() {
            return Err(a.err("leaf_weights", "differs in length from `leaf_targetids`"));
        }
        let n_targets = usize::try_from(a.int("n_targets").unwrap_or(1)).map_err(|_| a.err("n_targets", "negative"))?;
        let leaf_base = n as u32;
        let child = |id: i64, is_leaf: i64, name: &str| -> TractResult<u32> {
            let limit = if is_leaf != 0 { targets.len() } else { n };
            let id = u32::try_from(id).ok().filter(|&i| (i as usize) < limit).ok_or_else(|| a.err(name, format!("index {id} out of range")))?;
            Ok(if is_leaf != 0 { leaf_base + id } else { id })
        };
        let mut nodes = Vec::with_capacity(n + targets.len());
        let mut n_features = 0;
        let mut uniform = None;
        let mut mixed = false;
        for i in 0..n {
            let mode = match modes[i] {
                0 => Mode::Leq,
                1 => Mode::Lt,
                2 => Mode::Gte,
                3 => Mode::Gt,
                4 => Mode::Eq,
                5 => Mode::Neq,
                6 => return Err(a.err("nodes_modes", "set-membership splits (BRANCH_MEMBER) are not supported")),
                other => return Err(a.err("nodes_modes", format!("unknown mode {other}"))),
            };
            match uniform {
                None if !mixed => uniform = Some(mode),
                Some(m) if m != mode => {
                    uniform = None;
                    mixed = true;
                }
                _ => {}
            }
            let feature = index(a, "nodes_featureids", features[i])?;
            n_features = n_features.max(feature as usize + 1);
            let mt = missing.is_some_and(|m| m[i] != 0);
            let meta = feature | ((mode as u32) << MODE_SHIFT) | if mt { MISSING_TRUE } else { 0 };
            nodes.push(Node {
                threshold: splits[i] as f32,
                meta,
                a: child(yes[i], yes_leaf[i], "nodes_truenodeids")?,
                b: child(no[i], no_leaf[i], "nodes_falsenodeids")?,
            });
        }
        let mut leaf_target = Vec::with_capacity(targets.len());
        for (j, &t) in targets.iter().enumerate() {
            let t = u32::try_from(t).ok().filter(|&t| (t as usize) < n_targets).ok_or_else(|| a.err("leaf_targetids", format!("{t} is not below n_targets {n_targets}")))?;
            leaf_target.push(t);
            nodes.push(Node { threshold: 0.0, meta: IS_LEAF, a: j as u32, b: j as u32 + 1 });
        }
        let roots = roots
            .iter()
            .map(|&r| u32::try_from(r).ok().filter(|&r| (r as usize) < n).ok_or_else(|| a.err("tree_roots", format!("index {r} out of range"))))
            .collect::<TractResult<Vec<u32>>>()?;
        let aggregate = match a.int("aggregate_function").unwrap_or(1) {
            0 => Aggregate::Average,
            1 => Aggregate::Sum,
            2 => Aggregate::Min,
            3 => Aggregate::Max,
            other => return Err(a.err("aggregate_function", format!("unknown value {other}"))),
        };
        let post = match a.int("post_transform").unwrap_or(0) {
            0 => PostTransform::None,
            1 => PostTransform::Softmax,
            2 => PostTransform::Logistic,
            3 => PostTransform::SoftmaxZero,
            4 => PostTransform::Probit,
            other => return Err(a.err("post_transform", format!("unknown value {other}"))),
        };
        let ensemble = Ensemble {
            nodes,
            roots,
            leaf_target,
            leaf_weight: weights.iter().map(|&w| w as f32).collect(),
            cover: None,
            n_features,
            n_targets,
            aggregate,
            post,
            base_values: vec![],
            uniform: if mixed { None } else { uniform },
        };
        ensemble.check_acyclic(a)?;
        Ok(ensemble)
    }

    /// A cycle would make evaluation loop forever: refuse it at load.
    fn check_acyclic(&self, a: &Attrs) -> TractResult<()> {
        // 0 unseen, 1 on the current path, 2 done
        let mut state = vec![0u8; self.nodes.len()];
        let mut stack: Vec<(u32, bool)> = Vec::new();
        for &root in &self.roots {
            stack.push((root, false));
            while let Some((i, children_done)) = stack.pop() {
                let node = self.nodes[i as usize];
                if children_done {
                    state[i as usize] = 2;
                    continue;
                }
                match state[i as usize] {
                    2 => continue,
                    1 => return Err(a.err("nodes_truenodeids", "the nodes form a cycle, not a tree")),
                    _ => {}
                }
                state[i as usize] = 1;
                stack.push((i, true));
                if node.meta & IS_LEAF == 0 {
                    for c in [node.a, node.b] {
                        match state[c as usize] {
                            1 => return Err(a.err("nodes_truenodeids", "the nodes form a cycle, not a tree")),
                            0 => stack.push((c, false)),
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    #[inline(always)]
    fn leaf<const M: u8>(&self, root: u32, x: &[f32]) -> Node {
        let nodes = &self.nodes;
        let mut node = nodes[root as usize];
        while node.meta & IS_LEAF == 0 {
            let v = x[(node.meta & FEATURE_MASK) as usize];
            let t = node.threshold;
            let hit = match M {
                0 => v <= t,
                1 => v < t,
                2 => v >= t,
                3 => v > t,
                4 => v == t,
                5 => v != t,
                _ => match node.mode() {
                    Mode::Leq => v <= t,
                    Mode::Lt => v < t,
                    Mode::Gte => v >= t,
                    Mode::Gt => v > t,
                    Mode::Eq => v == t,
                    Mode::Neq => v != t,
                },
            };
            let yes = hit || (node.meta & MISSING_TRUE != 0 && v.is_nan());
            node = nodes[if yes { node.a } else { node.b } as usize];
        }
        node
    }

    /// Aggregates every tree's leaves for `rows` rows of `x` (row-major,
    /// `cols` wide) into `scores`/`has` (`rows × n_targets`).
    fn accumulate(&self, x: &[f32], cols: usize, rows: usize, scores: &mut [f32], has: &mut [bool]) {
        match self.uniform {
            Some(Mode::Leq) => self.accumulate_with::<0>(x, cols, rows, scores, has),
            Some(Mode::Lt) => self.accumulate_with::<1>(x, cols, rows, scores, has),
            Some(Mode::Gte) => self.accumulate_with::<2>(x, cols, rows, scores, has),
            Some(Mode::Gt) => self.accumulate_with::<3>(x, cols, rows, scores, has),
            _ => self.accumulate_with::<6>(x, cols, rows, scores, has),
        }
    }

    fn accumulate_with<const M: u8>(&self, x: &[f32], cols: usize, rows: usize, scores: &mut [f32], has: &mut [bool]) {
        const BLOCK: usize = 64;
        let t = self.n_targets;
        let mut start = 0;
        while start < rows {
            let end = (start + BLOCK).min(rows);
            for &root in &self.roots {
                for r in start..end {
                    let leaf = self.leaf::<M>(root, &x[r * cols..(r + 1) * cols]);
                    let (s, h) = (&mut scores[r * t..(r + 1) * t], &mut has[r * t..(r + 1) * t]);
                    for w in leaf.a as usize..leaf.b as usize {
                        let k = self.leaf_target[w] as usize;
                        let v = self.leaf_weight[w];
                        s[k] = match self.aggregate {
                            Aggregate::Sum | Aggregate::Average => s[k] + v,
                            Aggregate::Min => if !h[k] || v < s[k] { v } else { s[k] },
                            Aggregate::Max => if !h[k] || v > s[k] { v } else { s[k] },
                        };
                        h[k] = true;
                    }
                }
            }
            start = end;
        }
    }

    /// The raw scores before base values and transforms.
    fn raw(&self, x: &[f32], cols: usize, rows: usize) -> TractResult<(Vec<f32>, Vec<bool>)> {
        if cols < self.n_features {
            bail!("the tree ensemble reads feature {} but rows have {cols} features", self.n_features - 1);
        }
        let t = self.n_targets;
        let mut scores = vec![0f32; rows * t];
        let mut has = vec![false; rows * t];
        if rows < PARALLEL_ROWS {
            self.accumulate(x, cols, rows, &mut scores, &mut has);
        } else {
            // Big batches are split by rows over the cores (onnxruntime's
            // default too); one row's work stays on one thread.
            use rayon::prelude::*;
            let chunk = rows.div_ceil(rayon::current_num_threads().max(1)).max(PARALLEL_ROWS / 2);
            scores.par_chunks_mut(chunk * t).zip(has.par_chunks_mut(chunk * t)).zip(x.par_chunks(chunk * cols)).for_each(|((s, h), x)| {
                self.accumulate(x, cols, s.len() / t.max(1), s, h);
            });
        }
        Ok((scores, has))
    }

    /// One tree per [`ShapTree`], `n_outputs` values per leaf: the
    /// targets, or one value for a binary classifier scoring one class.
    pub fn shap_trees(&self, n_outputs: usize, target_of: impl Fn(u32) -> usize) -> Result<Vec<ShapTree>, String> {
        let cover = self.cover.as_ref().ok_or("the tree ensemble has no `nodes_hitrates` (node covers), which TreeSHAP needs")?;
        let mut out = Vec::with_capacity(self.roots.len());
        for &root in &self.roots {
            let mut tree = ShapTree { n_outputs, ..ShapTree::default() };
            // Renumber the tree's nodes from 0 in visiting order.
            let mut local: HashMap<u32, u32> = HashMap::new();
            let mut order = vec![root];
            local.insert(root, 0);
            let mut i = 0;
            while i < order.len() {
                let node = self.nodes[order[i] as usize];
                if node.meta & IS_LEAF == 0 {
                    for c in [node.a, node.b] {
                        if let std::collections::hash_map::Entry::Vacant(e) = local.entry(c) {
                            e.insert(order.len() as u32);
                            order.push(c);
                        }
                    }
                }
                i += 1;
            }
            for &g in &order {
                let node = self.nodes[g as usize];
                tree.cover.push(f64::from(cover[g as usize]));
                let mut values = vec![0f64; n_outputs];
                if node.meta & IS_LEAF != 0 {
                    tree.yes.push(LEAF);
                    tree.no.push(LEAF);
                    tree.missing_yes.push(false);
                    tree.feature.push(0);
                    tree.threshold.push(0.0);
                    tree.mode.push(SplitMode::Leq);
                    for w in node.a as usize..node.b as usize {
                        let k = target_of(self.leaf_target[w]);
                        if k < n_outputs {
                            values[k] += f64::from(self.leaf_weight[w]);
                        }
                    }
                } else {
                    tree.yes.push(local[&node.a]);
                    tree.no.push(local[&node.b]);
                    tree.missing_yes.push(node.meta & MISSING_TRUE != 0);
                    tree.feature.push(node.meta & FEATURE_MASK);
                    tree.threshold.push(f64::from(node.threshold));
                    tree.mode.push(match node.mode() {
                        Mode::Leq => SplitMode::Leq,
                        Mode::Lt => SplitMode::Lt,
                        Mode::Gte => SplitMode::Gte,
                        Mode::Gt => SplitMode::Gt,
                        Mode::Eq => SplitMode::Eq,
                        Mode::Neq => SplitMode::Neq,
                    });
                }
                tree.value.extend(values);
            }
            out.push(tree);
        }
        Ok(out)
    }
}

// onnxruntime's scalar helpers, in f32 as it computes them.

pub(super) fn logistic(v: f32) -> f32 {
    let e = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 { 1.0 - e } else { e }
}

/// Winitzki's approximation, which onnxruntime uses: probit outputs have
/// to match it, not the exact inverse.
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

fn probit(v: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * v - 1.0)
}

fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(-f32::MAX, f32::max);
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

fn softmax_zero(s: &mut [f32]) {
    let max = s.iter().copied().fold(-f32::MAX, f32::max);
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0;
    for v in s.iter_mut() {
        if *v > 0.000_000_1 || *v < -0.000_000_1 {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_max;
        }
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

/// A row of two or more scores through a post-transform, in place.
/// Batches of at least this many rows are scored on several threads.
const PARALLEL_ROWS: usize = 256;

pub fn transform_row(scores: &mut [f32], post: PostTransform) {
    match post {
        PostTransform::Probit => scores.iter_mut().for_each(|v| *v = probit(*v)),
        PostTransform::Logistic => scores.iter_mut().for_each(|v| *v = logistic(*v)),
        PostTransform::Softmax => softmax(scores),
        PostTransform::SoftmaxZero => softmax_zero(scores),
        PostTransform::None => {}
    }
}

/// One score through the transforms that apply to a lone score.
pub fn transform_one(v: f32, post: PostTransform) -> f32 {
    if post == PostTransform::Probit { probit(v) } else { v }
}

/// How a single binary score becomes two columns (onnxruntime's
/// `add_second_class`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Second {
    None,
    Complement,
    Negate,
}

/// Writes `scores` (one or more) transformed into `z` (the row's output).
pub(super) fn write_scores(scores: &mut [f32], post: PostTransform, z: &mut [f32], second: Second) {
    if scores.len() >= 2 {
        transform_row(scores, post);
        z[..scores.len()].copy_from_slice(scores);
    } else if let [s] = *scores {
        if post == PostTransform::Probit {
            z[0] = probit(s);
            return;
        }
        match second {
            Second::Complement => {
                z[0] = 1.0 - s;
                z[1] = s;
            }
            Second::Negate if post == PostTransform::Logistic => {
                z[0] = logistic(-s);
                z[1] = logistic(s);
            }
            Second::Negate => {
                z[0] = -s;
                z[1] = s;
            }
            Second::None => z[0] = s,
        }
    }
}

/// Class labels: the label output's element type.
#[derive(Debug, Clone)]
pub enum Labels {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Int(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn names(&self) -> Vec<String> {
        match self {
            Labels::Int(v) => v.iter().map(ToString::to_string).collect(),
            Labels::Str(v) => v.clone(),
        }
    }
    pub fn from_node(a: &Attrs) -> TractResult<Option<Labels>> {
        match (a.ints("classlabels_int64s").filter(|v| !v.is_empty()), a.strings("classlabels_strings").filter(|v| !v.is_empty())) {
            (Some(i), None) => Ok(Some(Labels::Int(i.to_vec()))),
            (None, Some(s)) => Ok(Some(Labels::Str(s))),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(a.err("classlabels_strings", "both integer and string class labels are given")),
        }
    }
}

#[derive(Debug)]
struct Classifier {
    labels: Labels,
    /// onnxruntime's `binary_case_`: two classes, leaves scoring one.
    binary_case: bool,
    all_positive: bool,
}

/// A tree ensemble operator: a classifier (label and scores) or a
/// regressor (targets).
#[derive(Debug)]
pub struct TreeOp {
    name: &'static str,
    pub ensemble: Ensemble,
    classifier: Option<Classifier>,
}

impl TreeOp {
    pub fn classifier(node: &NodeProto) -> TractResult<TreeOp> {
        let a = Attrs(node);
        let labels = Labels::from_node(&a)?.ok_or_else(|| a.err("classlabels_int64s", "no class labels are given"))?;
        let mut ensemble = Ensemble::classic(&a, "class", labels.len())?;
        ensemble.post = parse_post(&a, &a.string("post_transform").unwrap_or_default())?;
        ensemble.base_values = base_values(&a)?;
        let mut classes: Vec<u32> = ensemble.leaf_target.clone();
        classes.sort_unstable();
        classes.dedup();
        let classifier = Classifier {
            binary_case: labels.len() == 2 && classes.len() == 1,
            all_positive: ensemble.leaf_weight.iter().all(|&w| w >= 0.0),
            labels,
        };
        if classifier.labels.len() > 2 && !ensemble.base_values.is_empty() && ensemble.base_values.len() != classifier.labels.len() {
            return Err(a.err("base_values", format!("has {} values for {} classes", ensemble.base_values.len(), classifier.labels.len())));
        }
        Ok(TreeOp { name: "TreeEnsembleClassifier", ensemble, classifier: Some(classifier) })
    }

    pub fn regressor(node: &NodeProto) -> TractResult<TreeOp> {
        let a = Attrs(node);
        let n_targets = usize::try_from(a.int("n_targets").unwrap_or(1)).map_err(|_| a.err("n_targets", "negative"))?;
        let mut ensemble = Ensemble::classic(&a, "target", n_targets)?;
        ensemble.post = parse_post(&a, &a.string("post_transform").unwrap_or_default())?;
        ensemble.aggregate = parse_aggregate(&a, &a.string("aggregate_function").unwrap_or_default())?;
        ensemble.base_values = base_values(&a)?;
        Ok(TreeOp { name: "TreeEnsembleRegressor", ensemble, classifier: None })
    }

    pub fn ensemble_v5(node: &NodeProto) -> TractResult<TreeOp> {
        let a = Attrs(node);
        Ok(TreeOp { name: "TreeEnsemble", ensemble: Ensemble::v5(&a)?, classifier: None })
    }

    pub fn labels(&self) -> Option<&Labels> {
        self.classifier.as_ref().map(|c| &c.labels)
    }

    /// Whether the binary classifier's leaves carry one score (the
    /// positive class's margin), as gradient boosting exports do.
    pub fn single_score(&self) -> bool {
        self.classifier.as_ref().is_some_and(|c| c.binary_case)
    }

    fn finalize_regression(&self, s: &mut [f32], has: &[bool], z: &mut [f32]) {
        let e = &self.ensemble;
        #[allow(clippy::cast_precision_loss)]
        let n_trees = e.n_trees() as f32;
        if e.n_targets == 1 {
            let origin = if e.base_values.len() == 1 { e.base_values[0] } else { 0.0 };
            let v = match e.aggregate {
                Aggregate::Sum => s[0] + origin,
                Aggregate::Average => s[0] / n_trees + origin,
                Aggregate::Min | Aggregate::Max => if has[0] { s[0] + origin } else { origin },
            };
            z[0] = if e.post == PostTransform::Probit { probit(v) } else { v };
            return;
        }
        let base = (e.base_values.len() == e.n_targets).then_some(e.base_values.as_slice());
        for k in 0..s.len() {
            let b = base.map_or(0.0, |b| b[k]);
            s[k] = match e.aggregate {
                Aggregate::Sum => s[k] + b,
                Aggregate::Average => s[k] / n_trees + b,
                Aggregate::Min | Aggregate::Max => b + if has[k] { s[k] } else { 0.0 },
            };
        }
        write_scores(s, e.post, z, Second::None);
    }

    /// Returns the label's class index.
    fn finalize_classification(&self, c: &Classifier, s: &mut [f32], has: &mut [bool], z: &mut [f32]) -> usize {
        let base = &self.ensemble.base_values;
        let post = self.ensemble.post;
        if s.len() > 2 {
            for (k, &b) in base.iter().enumerate() {
                if has[k] {
                    s[k] += b;
                } else {
                    has[k] = true;
                    s[k] = b;
                }
            }
            let mut best: Option<usize> = None;
            for k in 0..s.len() {
                if has[k] && best.is_none_or(|b| s[k] > s[b]) {
                    best = Some(k);
                }
            }
            write_scores(s, post, z, Second::None);
            return best.unwrap_or(0);
        }
        let mut len = s.len();
        let mut second = Second::None;
        match base.len() {
            2 if has[1] => {
                s[1] = base[1] + s[0];
                s[0] = -s[1];
            }
            2 => {
                s[1] += base[1];
                s[0] += base[0];
            }
            1 => {
                s[0] += base[0];
                if !has[1] {
                    len = 1;
                }
            }
            _ => {
                second = Second::Negate;
                if !has[1] {
                    len = 1;
                }
            }
        }
        let positive = if len == 2 && has[1] { s[1] } else if has[0] { s[0] } else { 0.0 };
        let class = if c.binary_case {
            let (win, threshold, kind) = if c.all_positive { (1, 0.5, Second::Complement) } else { (1, 0.0, Second::Negate) };
            second = kind;
            if positive > threshold { win } else { 0 }
        } else {
            usize::from(positive > 0.0)
        };
        write_scores(&mut s[..len], post, z, second);
        class
    }
}

fn base_values(a: &Attrs) -> TractResult<Vec<f32>> {
    #[allow(clippy::cast_possible_truncation)]
    Ok(a.float_list("base_values")?.unwrap_or_default().into_iter().map(|v| v as f32).collect())
}

impl Kernel for TreeOp {
    fn name(&self) -> &'static str {
        self.name
    }

    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        match &self.classifier {
            Some(c) => {
                let dt = match c.labels {
                    Labels::Int(_) => DatumType::I64,
                    Labels::Str(_) => DatumType::String,
                };
                vec![(dt, OutShape::Rows), (DatumType::F32, OutShape::RowsBy(c.labels.len()))]
            }
            None => vec![(DatumType::F32, OutShape::RowsBy(self.ensemble.n_targets))],
        }
    }

    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let (rows, cols, x) = as_matrix(input)?;
        let x = x.try_as_plain_ram()?.as_slice::<f32>()?;
        let (mut scores, mut has) = self.ensemble.raw(x, cols, rows)?;
        let t = self.ensemble.n_targets;
        let mut z = vec![0f32; rows * t];
        match &self.classifier {
            Some(c) => {
                let mut classes = Vec::with_capacity(rows);
                for r in 0..rows {
                    let range = r * t..(r + 1) * t;
                    classes.push(self.finalize_classification(c, &mut scores[range.clone()], &mut has[range.clone()], &mut z[range]));
                }
                let label = match &c.labels {
                    Labels::Int(l) => ArrayD::from_shape_vec(IxDyn(&[rows]), classes.iter().map(|&k| l[k]).collect())?.into_tensor(),
                    Labels::Str(l) => ArrayD::from_shape_vec(IxDyn(&[rows]), classes.iter().map(|&k| l[k].clone()).collect())?.into_tensor(),
                };
                Ok(tvec!(label, Tensor::from_shape(&[rows, t], &z)?))
            }
            None => {
                for r in 0..rows {
                    let range = r * t..(r + 1) * t;
                    self.finalize_regression(&mut scores[range.clone()], &has[range.clone()], &mut z[range]);
                }
                Ok(tvec!(Tensor::from_shape(&[rows, t], &z)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probit_matches_onnxruntime_approximation() {
        // sqrt(2) * erfinv(2p - 1) ≈ the normal quantile; ORT's approximation
        // is within 2e-3 of it.
        assert!((probit(0.975) - 1.959_964).abs() < 2e-3);
        assert!(probit(0.5).abs() < 1e-6);
    }

    #[test]
    fn logistic_is_symmetric() {
        assert!((logistic(2.0) + logistic(-2.0) - 1.0).abs() < 1e-7);
    }
}
