//! TreeSHAP (Lundberg, Erion, Lee 2018, "Consistent Individualized Feature
//! Attribution for Tree Ensembles", Algorithm 2: path-dependent, exact in
//! O(leaves · depth²) per tree) over one tree in the layout the `shap`
//! package uses.
//!
//! The numerics follow `shap/cext/tree_shap.h` (`tree_shap_recursive`,
//! `extend_path`, `unwind_path`, `unwound_path_sum`, `compute_expectations`)
//! operation for operation, in `f64`, so that our values agree with
//! `shap.TreeExplainer(model)` (default `feature_perturbation` without
//! background data: "tree_path_dependent") to rounding. Two differences,
//! both deliberate:
//! - decisions use the ONNX node modes ([`SplitMode`]) and a NaN goes where
//!   `missing_yes` says, because these trees come from ONNX tree-ensemble
//!   operators: the explanation must follow the path the served prediction
//!   took, not the path the training library would take;
//! - the "conditioning" arguments of `tree_shap_recursive` (used only for
//!   interaction values) are left out.
//!
//! The "path-dependent" value of a feature subset S is the expectation of
//! the tree's output when the features in S are fixed to the row's values
//! and the others are integrated out along the tree: at a split on a feature
//! outside S both children are taken, weighted by `cover[child] /
//! cover[node]`. That is why the covers (ONNX `nodes_hitrates`, filled from
//! the training library's node weights) are needed.

/// How a node compares `x[feature]` with its threshold; when the
/// comparison holds the row goes to `yes`, otherwise to `no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitMode {
    /// `x <= t` (scikit-learn, LightGBM)
    Leq,
    /// `x < t` (XGBoost)
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

/// One tree, nodes indexed from the root (0). A leaf has `yes[i] == no[i]
/// == u32::MAX`.
#[derive(Debug, Clone, Default)]
pub struct ShapTree {
    pub yes: Vec<u32>,
    pub no: Vec<u32>,
    /// Where a NaN goes: `true` → `yes`.
    pub missing_yes: Vec<bool>,
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub mode: Vec<SplitMode>,
    /// Training rows (or hessian sum) that reached the node: ONNX's
    /// `nodes_hitrates`. TreeSHAP needs them.
    pub cover: Vec<f64>,
    /// `n_outputs` values per node (only leaves' are read), row-major.
    pub value: Vec<f64>,
    pub n_outputs: usize,
}

pub const LEAF: u32 = u32::MAX;

/// Deepest tree (root at depth 0, so at most `MAX_DEPTH + 1` nodes on a
/// path) that [`ShapTree::validate`] and [`tree_shap`] accept. It bounds the
/// recursion (stack) and the path buffer, which grows with
/// depth × distinct features; real ensembles are far shallower (XGBoost's
/// default is 6, LightGBM's trees of 31 leaves rarely pass 20, unlimited
/// scikit-learn forests reach a few dozen levels).
pub const MAX_DEPTH: usize = 1024;

/// How far (relative) a node's cover may be from the sum of its children's
/// in [`ShapTree::validate`]: covers stored as `f32` hitrates and XGBoost's
/// hessian sums (accumulated in `f32`) are additive only to rounding.
pub const COVER_TOLERANCE: f64 = 1e-3;

/// Marks the root's path element, which stands for "no feature": it is
/// never matched against a split feature and never credited.
const NO_FEATURE: u32 = u32::MAX;

impl ShapTree {
    /// Number of nodes (the length every per-node vector must have).
    pub fn len(&self) -> usize {
        self.yes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.yes.is_empty()
    }

    /// Whether node `i` is a leaf. Only meaningful for `i < len()`.
    pub fn is_leaf(&self, i: usize) -> bool {
        self.yes.get(i) == Some(&LEAF) && self.no.get(i) == Some(&LEAF)
    }

    /// Checks, once at load, everything [`tree_shap`] relies on, so that a
    /// tree that passes gets exact values and one that fails is reported
    /// with the reason instead of giving NaNs (or nothing) per row:
    /// - every per-node vector has the same length, `value` has
    ///   `n_outputs` (≥ 1) entries per node;
    /// - a node is a leaf (both children [`LEAF`]) or has two children in
    ///   range; the nodes reachable from the root form a tree (no cycle, no
    ///   node reached twice) at most [`MAX_DEPTH`] deep;
    /// - every node reached, except a lone root leaf, has a finite,
    ///   positive cover: the cover ratios are the integration weights, and
    ///   a zero divides by zero in the path weights (as in `shap`, which
    ///   flags such trees as not fully defined);
    /// - covers add up: a node's is its children's sum, to
    ///   [`COVER_TOLERANCE`] relative. Every library's covers do (rows,
    ///   weights, hessians or counts reaching a node are split between its
    ///   children), and the fractions of a split must sum to 1 for the
    ///   path-dependent expectation to be one. This is what catches the
    ///   exporters' placeholder: skl2onnx and onnxmltools write
    ///   `nodes_hitrates` = 1.0 for every node, which would pass the other
    ///   checks and give wrong values.
    ///
    /// Feature indices are checked against the row's width per call
    /// ([`try_tree_shap`]); [`ShapTree::max_feature`] gives the loader the
    /// widest one to check against the signature.
    pub fn validate(&self) -> Result<(), String> {
        check_lengths(self)?;
        let mut seen = vec![false; self.len()];
        let mut walk = Walk { tree: self, budget: self.len(), x_len: None, seen: Some(&mut seen) };
        walk.node(0, 0)?;
        for i in (0..self.len()).filter(|&i| seen[i] && !self.is_leaf(i)) {
            let (c, a, b) = (self.cover[i], self.cover[self.yes[i] as usize], self.cover[self.no[i] as usize]);
            if (c - (a + b)).abs() > COVER_TOLERANCE * c {
                return Err(format!(
                    "node {i} has cover {c} but its children {a} + {b}: covers must add up \
                     (all-equal hitrates are an exporter's placeholder, not covers)"
                ));
            }
        }
        Ok(())
    }

    /// The largest feature index an internal node reachable from the root
    /// splits on (`None` for a lone leaf or an empty tree). Assumes nothing
    /// about validity: gives up (`None`) on a malformed structure.
    pub fn max_feature(&self) -> Option<u32> {
        check_lengths(self).ok()?;
        let mut walk = Walk { tree: self, budget: self.len(), x_len: None, seen: None };
        walk.node(0, 0).ok()?;
        (0..self.len()).filter(|&i| !self.is_leaf(i)).map(|i| self.feature[i]).max()
    }

    /// Depth of the deepest leaf (a lone leaf: 0), or the reason the tree
    /// is malformed.
    pub fn max_depth(&self) -> Result<usize, String> {
        check_lengths(self)?;
        let mut walk = Walk { tree: self, budget: self.len(), x_len: None, seen: None };
        walk.node(0, 0)
    }

    /// Which child a row goes to at internal node `i`.
    fn next(&self, i: usize, x: f32) -> u32 {
        if goes_yes(self.mode[i], x, self.threshold[i], self.missing_yes[i]) {
            self.yes[i]
        } else {
            self.no[i]
        }
    }

    /// The leaf row `x` ends in (the prediction is its `value`s), or `None`
    /// if the walk leaves the tree or exceeds the node count (a cycle).
    /// Used by tests and by callers checking the efficiency property.
    pub fn leaf_for(&self, x: &[f32]) -> Option<usize> {
        let mut i = 0usize;
        for _ in 0..=self.len() {
            if i >= self.len() {
                return None;
            }
            if self.is_leaf(i) {
                return Some(i);
            }
            let xv = *x.get(usize::try_from(self.feature[i]).ok()?)?;
            i = usize::try_from(self.next(i, xv)).ok()?;
        }
        None
    }
}

/// `true` when the row goes to `yes`. `x` is compared in `f64`: the ONNX
/// thresholds are `f32` widened exactly, so this is the `f32` comparison
/// the ONNX operator makes.
fn goes_yes(mode: SplitMode, x: f32, t: f64, missing_yes: bool) -> bool {
    if x.is_nan() {
        return missing_yes;
    }
    let x = f64::from(x);
    match mode {
        SplitMode::Leq => x <= t,
        SplitMode::Lt => x < t,
        SplitMode::Gte => x >= t,
        SplitMode::Gt => x > t,
        SplitMode::Eq => x == t,
        SplitMode::Neq => x != t,
    }
}

fn check_lengths(t: &ShapTree) -> Result<(), String> {
    let n = t.len();
    if n == 0 {
        return Err("tree has no nodes".into());
    }
    if u32::try_from(n).is_err() {
        return Err(format!("tree has {n} nodes, more than node ids can address"));
    }
    if t.n_outputs == 0 {
        return Err("tree has n_outputs = 0".into());
    }
    let lens = [
        ("no", t.no.len()),
        ("missing_yes", t.missing_yes.len()),
        ("feature", t.feature.len()),
        ("threshold", t.threshold.len()),
        ("mode", t.mode.len()),
        ("cover", t.cover.len()),
    ];
    for (name, len) in lens {
        if len != n {
            return Err(format!("tree has {n} nodes but {len} entries in `{name}`"));
        }
    }
    if n.checked_mul(t.n_outputs) != Some(t.value.len()) {
        return Err(format!(
            "tree has {n} nodes × {} outputs but {} values",
            t.n_outputs,
            t.value.len()
        ));
    }
    Ok(())
}

/// One depth-first pass from the root checking the structure. `budget`
/// counts node visits down from the node count, so a cycle (or a shared
/// child, when `seen` is not kept) cannot make the pass — or the TreeSHAP
/// recursion after it — run longer than a tree of that size would.
struct Walk<'a> {
    tree: &'a ShapTree,
    budget: usize,
    /// The row's width, when checking for a call: every split feature must
    /// index into it (and into `phi`).
    x_len: Option<usize>,
    /// Nodes already reached (kept by `validate` only, as it allocates):
    /// rejects nodes with two parents, which the budget alone lets through
    /// when other nodes are unreachable.
    seen: Option<&'a mut Vec<bool>>,
}

impl Walk<'_> {
    /// Returns the depth of the deepest leaf under `i` (which is at `depth`).
    fn node(&mut self, i: usize, depth: usize) -> Result<usize, String> {
        let t = self.tree;
        if self.budget == 0 {
            return Err("tree has a cycle (more node visits than nodes)".into());
        }
        self.budget -= 1;
        if depth > MAX_DEPTH {
            return Err(format!("tree is deeper than {MAX_DEPTH}"));
        }
        if let Some(seen) = self.seen.as_deref_mut() {
            match seen.get_mut(i) {
                Some(s) if *s => return Err(format!("node {i} is reached twice (not a tree)")),
                Some(s) => *s = true,
                None => return Err(format!("node {i} out of range")),
            }
        }
        let (yes, no) = (t.yes[i], t.no[i]);
        if yes == LEAF && no == LEAF {
            return Ok(depth);
        }
        if yes == LEAF || no == LEAF {
            return Err(format!("node {i} has only one child"));
        }
        let n = t.len();
        let (yes, no) = (yes as usize, no as usize);
        if yes >= n || no >= n {
            return Err(format!("node {i} has a child out of range ({yes}, {no}; {n} nodes)"));
        }
        for j in [i, yes, no] {
            let c = t.cover[j];
            if !(c.is_finite() && c > 0.0) {
                return Err(format!("node {j} has cover {c} (must be finite and > 0)"));
            }
        }
        if let Some(x_len) = self.x_len {
            let f = t.feature[i] as usize;
            if f >= x_len {
                return Err(format!("node {i} splits on feature {f}, the row has {x_len}"));
            }
        }
        let a = self.node(yes, depth + 1)?;
        let b = self.node(no, depth + 1)?;
        Ok(a.max(b))
    }
}

/// One element of the "unique path" of Algorithm 2: a feature split on
/// above the current node, the fraction of the path-dependent expectation
/// that flows through when the feature is absent (`zero`, product of cover
/// ratios) and present (`one`, 1 if the row goes this way, else 0), and the
/// permutation weight of subsets of that size.
#[derive(Debug, Clone, Copy)]
struct PathElement {
    feature: u32,
    zero: f64,
    one: f64,
    pweight: f64,
}

const EMPTY: PathElement = PathElement { feature: NO_FEATURE, zero: 0.0, one: 0.0, pweight: 0.0 };

/// Reusable working memory for [`try_tree_shap`]: the path buffer, grown to
/// the largest tree seen and kept, so a caller explaining many rows
/// allocates once.
#[derive(Debug, Clone, Default)]
pub struct ShapScratch {
    path: Vec<PathElement>,
}

/// Path elements the recursion needs for a tree `max_depth` deep over rows
/// of `n_features`. Each level copies its parent's path (as `shap` does)
/// right after the parent's; the path at a node of depth `l` holds at most
/// `min(l, distinct features) + 1` elements (the root's placeholder and
/// one per distinct feature above), so the buffer is the sum of those plus
/// the placeholder region before the root's. (`shap` allocates
/// `(D+2)(D+3)/2`, which is the same bound without the feature cap.)
fn path_len(max_depth: usize, n_features: usize) -> usize {
    let mut total = 1usize;
    for level in 0..=max_depth + 1 {
        total = total.saturating_add(level.min(n_features) + 1);
    }
    total
}

/// Adds tree's SHAP values for row `x` to `phi`, laid out
/// `[output][feature]` with `n_features + 1` entries per output, the last
/// being the tree's expected value (the bias).
///
/// `n_features` is `x.len()`; `phi` must hold `n_outputs * (x.len() + 1)`
/// values. Adds (never overwrites) so callers sum over the trees of an
/// ensemble. A malformed tree or a `phi` of the wrong size leaves `phi`
/// untouched (trees are meant to pass [`ShapTree::validate`] at load; use
/// [`try_tree_shap`] to see why). Allocates the path buffer once per call;
/// [`try_tree_shap`] takes a reusable [`ShapScratch`] instead.
pub fn tree_shap(tree: &ShapTree, x: &[f32], phi: &mut [f64]) {
    let mut scratch = ShapScratch::default();
    // The error is for callers that want it (`try_tree_shap`); here the
    // documented outcome of a malformed tree is an unchanged `phi`.
    let _ = try_tree_shap(tree, x, phi, &mut scratch);
}

/// [`tree_shap`] with a reusable scratch buffer, reporting why nothing was
/// added. Checks the structure (O(nodes), no allocation) before touching
/// `phi`, so on `Err` `phi` is unchanged.
pub fn try_tree_shap(
    tree: &ShapTree,
    x: &[f32],
    phi: &mut [f64],
    scratch: &mut ShapScratch,
) -> Result<(), String> {
    check_lengths(tree)?;
    let n_features = x.len();
    let stride = n_features + 1;
    if Some(phi.len()) != tree.n_outputs.checked_mul(stride) {
        return Err(format!(
            "phi has {} entries, expected {} outputs × ({n_features} features + 1)",
            phi.len(),
            tree.n_outputs
        ));
    }
    let mut walk = Walk { tree, budget: tree.len(), x_len: Some(n_features), seen: None };
    let max_depth = walk.node(0, 0)?;

    let need = path_len(max_depth, n_features);
    if scratch.path.len() < need {
        scratch.path.resize(need, EMPTY);
    }
    let mut rec = Recursion { tree, x, phi, stride };
    rec.node(&mut scratch.path[..need], 0, 0, 1.0, 1.0, NO_FEATURE, 1.0);
    Ok(())
}

/// The per-call constants of the recursion.
struct Recursion<'a> {
    tree: &'a ShapTree,
    x: &'a [f32],
    phi: &'a mut [f64],
    /// `n_features + 1`: the distance between outputs in `phi`.
    stride: usize,
}

impl Recursion<'_> {
    /// `tree_shap_recursive` without conditioning. `buf` starts at the
    /// parent's path (its first `depth + 1` elements); this node's path is
    /// built right after it, and the children build theirs after this one.
    /// `bias_weight` is the product of the `compute_expectations` weights
    /// from the root to this node: at a leaf, `bias_weight × value` is its
    /// share of the tree's expected value.
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        buf: &mut [PathElement],
        node: usize,
        depth: usize,
        parent_zero: f64,
        parent_one: f64,
        parent_feature: u32,
        bias_weight: f64,
    ) {
        let t = self.tree;
        // The pre-pass sized the buffer for the deepest path (see
        // `path_len`); these checks only keep a broken invariant from
        // panicking.
        let Some((parent, rest)) = buf.split_at_mut_checked(depth + 1) else { return };
        let Some(path) = rest.get_mut(..depth + 1) else { return };
        path.copy_from_slice(parent);
        extend(path, depth, parent_zero, parent_one, parent_feature);

        let (yes, no) = (t.yes[node], t.no[node]);
        if yes == LEAF || no == LEAF {
            self.leaf(path, node, depth, bias_weight);
            return;
        }
        let (yes, no) = (yes as usize, no as usize);
        let split = t.feature[node];
        let Some(&xv) = self.x.get(split as usize) else { return };
        let (hot, cold) = if goes_yes(t.mode[node], xv, t.threshold[node], t.missing_yes[node]) {
            (yes, no)
        } else {
            (no, yes)
        };

        let w = t.cover[node];
        let hot_zero = t.cover[hot] / w;
        let cold_zero = t.cover[cold] / w;
        // `compute_expectations` weighs the children by their covers over
        // the children's sum (not the parent's cover; equal when additive).
        let children = t.cover[hot] + t.cover[cold];
        let hot_bias = bias_weight * t.cover[hot] / children;
        let cold_bias = bias_weight * t.cover[cold] / children;

        // A feature already on the path is split on again: undo its earlier
        // extension and redo it below with the product of both fractions.
        let mut depth = depth;
        let mut incoming_zero = 1.0;
        let mut incoming_one = 1.0;
        if let Some(k) = path.iter().position(|e| e.feature == split) {
            incoming_zero = path[k].zero;
            incoming_one = path[k].one;
            unwind(path, depth, k);
            depth -= 1;
        }

        self.node(rest, hot, depth + 1, hot_zero * incoming_zero, incoming_one, split, hot_bias);
        self.node(rest, cold, depth + 1, cold_zero * incoming_zero, 0.0, split, cold_bias);
    }

    /// Credits each feature on the path with its share of this leaf's
    /// value: `unwound_path_sum` is the total permutation weight of the
    /// subsets without the feature, times (one − zero) the change in the
    /// leaf's reachability when the feature joins the subset.
    fn leaf(&mut self, path: &[PathElement], node: usize, depth: usize, bias_weight: f64) {
        let n_out = self.tree.n_outputs;
        let Some(values) = self.tree.value.get(node * n_out..(node + 1) * n_out) else { return };
        for i in 1..=depth {
            let w = unwound_path_sum(path, depth, i);
            let el = path[i];
            let scale = w * (el.one - el.zero);
            let f = el.feature as usize;
            for (j, v) in values.iter().enumerate() {
                if let Some(p) = self.phi.get_mut(j * self.stride + f) {
                    *p += scale * v;
                }
            }
        }
        let bias = self.stride - 1;
        for (j, v) in values.iter().enumerate() {
            if let Some(p) = self.phi.get_mut(j * self.stride + bias) {
                *p += bias_weight * v;
            }
        }
    }
}

/// EXTEND: adds a feature with fractions (`zero`, `one`) at position
/// `depth` and updates the permutation weights of every subset size.
fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: u32) {
    path[depth] = PathElement { feature, zero, one, pweight: if depth == 0 { 1.0 } else { 0.0 } };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 / d1;
        path[i].pweight = zero * path[i].pweight * (depth - i) as f64 / d1;
    }
}

/// UNWIND: removes the element at `index` (the inverse of its EXTEND) and
/// closes the gap; the path then holds `depth` elements.
fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one;
    let zero = path[index].zero;
    let mut next_one_portion = path[depth].pweight;
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * d1 / ((i + 1) as f64 * one);
            next_one_portion = tmp - path[i].pweight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].pweight = (path[i].pweight * d1) / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// The total permutation weight the path would have without the element at
/// `index`, without modifying it (UNWIND's arithmetic, summed).
fn unwound_path_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let one = path[index].one;
    let zero = path[index].zero;
    let mut next_one_portion = path[depth].pweight;
    let mut total = 0.0;
    if one != 0.0 {
        for i in (0..depth).rev() {
            let tmp = next_one_portion / ((i + 1) as f64 * one);
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero * (depth - i) as f64;
        }
    } else {
        for i in (0..depth).rev() {
            total += path[i].pweight / (zero * (depth - i) as f64);
        }
    }
    total * (depth + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: the tests' trees and rows, reproducible without a
    /// dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// A value on a coarse grid, so that rows hit thresholds exactly
        /// (what tells `Leq` from `Lt` and makes `Eq`/`Neq` splits matter).
        fn grid(&mut self) -> f64 {
            self.below(5) as f64 * 0.25
        }
    }

    const MODES: [SplitMode; 6] =
        [SplitMode::Leq, SplitMode::Lt, SplitMode::Gte, SplitMode::Gt, SplitMode::Eq, SplitMode::Neq];

    struct Gen<'a> {
        rng: &'a mut Rng,
        t: ShapTree,
        n_features: usize,
        modes: &'a [SplitMode],
    }

    impl Gen<'_> {
        fn push(&mut self) -> usize {
            let t = &mut self.t;
            t.yes.push(LEAF);
            t.no.push(LEAF);
            t.missing_yes.push(false);
            t.feature.push(0);
            t.threshold.push(0.0);
            t.mode.push(SplitMode::Leq);
            t.cover.push(0.0);
            t.value.extend(std::iter::repeat_n(0.0, t.n_outputs));
            t.yes.len() - 1
        }

        /// Builds a subtree at most `depth` deep; returns its node id.
        /// Covers are additive (a parent's is the sum of its children's),
        /// as every training library's are.
        fn build(&mut self, depth: usize) -> usize {
            let i = self.push();
            let leaf = depth == 0 || (self.t.yes.len() > 1 && self.rng.below(5) == 0);
            if leaf {
                self.t.cover[i] = 1.0 + self.rng.below(20) as f64;
                for j in 0..self.t.n_outputs {
                    self.t.value[i * self.t.n_outputs + j] = self.rng.unit() * 2.0 - 1.0;
                }
                return i;
            }
            // Few features: the same feature is split on repeatedly along
            // a path, which exercises UNWIND.
            self.t.feature[i] = self.rng.below(self.n_features) as u32;
            self.t.threshold[i] = self.rng.grid() + if self.rng.below(2) == 0 { 0.0 } else { 0.125 };
            self.t.mode[i] = self.modes[self.rng.below(self.modes.len())];
            self.t.missing_yes[i] = self.rng.below(2) == 0;
            let a = self.build(depth - 1) as u32;
            let b = self.build(depth - 1) as u32;
            self.t.yes[i] = a;
            self.t.no[i] = b;
            self.t.cover[i] = self.t.cover[a as usize] + self.t.cover[b as usize];
            i
        }
    }

    fn random_tree(rng: &mut Rng, depth: usize, n_features: usize, n_outputs: usize, modes: &[SplitMode]) -> ShapTree {
        let t = ShapTree { n_outputs, ..ShapTree::default() };
        let mut g = Gen { rng, t, n_features, modes };
        g.build(depth);
        g.t
    }

    fn random_row(rng: &mut Rng, n_features: usize) -> Vec<f32> {
        (0..n_features)
            .map(|_| if rng.below(6) == 0 { f32::NAN } else { (rng.grid() + rng.below(2) as f64 * 0.125) as f32 })
            .collect()
    }

    /// The path-dependent value of the subset `s` (bit mask of present
    /// features), output `j`: follow the row at splits on present features,
    /// otherwise average the children by cover over the parent's cover.
    fn value_of_subset(t: &ShapTree, x: &[f32], s: u32, i: usize, j: usize) -> f64 {
        if t.is_leaf(i) {
            return t.value[i * t.n_outputs + j];
        }
        let f = t.feature[i] as usize;
        let (yes, no) = (t.yes[i] as usize, t.no[i] as usize);
        if s & (1 << f) != 0 {
            value_of_subset(t, x, s, t.next(i, x[f]) as usize, j)
        } else {
            (t.cover[yes] * value_of_subset(t, x, s, yes, j) + t.cover[no] * value_of_subset(t, x, s, no, j))
                / t.cover[i]
        }
    }

    /// Shapley values from the definition: for each feature, the weighted
    /// sum over the subsets without it of its marginal contribution, weight
    /// |S|!(M−|S|−1)!/M!. Layout as `tree_shap`'s, bias = v(∅).
    fn brute_force(t: &ShapTree, x: &[f32]) -> Vec<f64> {
        let m = x.len();
        let stride = m + 1;
        let fact = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
        let mut phi = vec![0.0; t.n_outputs * stride];
        for j in 0..t.n_outputs {
            let v: Vec<f64> = (0..1u32 << m).map(|s| value_of_subset(t, x, s, 0, j)).collect();
            for f in 0..m {
                let mut acc = 0.0;
                for s in 0..1u32 << m {
                    if s & (1 << f) != 0 {
                        continue;
                    }
                    let size = s.count_ones() as usize;
                    let weight = fact(size) * fact(m - size - 1) / fact(m);
                    acc += weight * (v[(s | (1 << f)) as usize] - v[s as usize]);
                }
                phi[j * stride + f] = acc;
            }
            phi[j * stride + m] = v[0];
        }
        phi
    }

    fn shap(t: &ShapTree, x: &[f32]) -> Vec<f64> {
        let mut phi = vec![0.0; t.n_outputs * (x.len() + 1)];
        tree_shap(t, x, &mut phi);
        phi
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "{what}: entry {k}: got {g}, want {w}\n got {got:?}\nwant {want:?}");
        }
    }

    #[test]
    fn matches_brute_force_on_random_trees() {
        let mut rng = Rng(7);
        let mut cases = 0;
        for depth in [1, 2, 3, 4, 6, 8] {
            for n_outputs in [1, 3] {
                for modes in [&MODES[..], &MODES[0..1], &MODES[1..2], &MODES[2..3], &MODES[3..4], &MODES[4..5], &MODES[5..6]] {
                    for _ in 0..6 {
                        let n_features = 1 + rng.below(6);
                        let t = random_tree(&mut rng, depth, n_features, n_outputs, modes);
                        t.validate().expect("generated tree is valid");
                        for _ in 0..3 {
                            let x = random_row(&mut rng, n_features);
                            let want = brute_force(&t, &x);
                            let got = shap(&t, &x);
                            assert_close(&got, &want, 1e-9, &format!("depth {depth}, {n_outputs} outputs, x {x:?}, tree {t:?}"));
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert!(cases > 1000);
    }

    /// Efficiency: Σ φ + bias = f(x), for every output.
    #[test]
    fn values_sum_to_the_prediction() {
        let mut rng = Rng(11);
        for depth in [1, 3, 5, 10, 14] {
            for n_outputs in [1, 3] {
                for _ in 0..10 {
                    let n_features = 1 + rng.below(12);
                    let t = random_tree(&mut rng, depth, n_features, n_outputs, &MODES);
                    let x = random_row(&mut rng, n_features);
                    let phi = shap(&t, &x);
                    let leaf = t.leaf_for(&x).expect("valid tree");
                    for j in 0..n_outputs {
                        let sum: f64 = phi[j * (n_features + 1)..(j + 1) * (n_features + 1)].iter().sum();
                        let want = t.value[leaf * n_outputs + j];
                        assert!((sum - want).abs() < 1e-9, "depth {depth}: Σφ = {sum}, f(x) = {want}");
                    }
                }
            }
        }
    }

    /// A stump on feature 1 (x ≤ 0.5 → 1, else 3; covers 3 and 1): the
    /// bias is the cover-weighted mean 1.5 and the whole difference goes
    /// to feature 1.
    fn stump() -> ShapTree {
        ShapTree {
            yes: vec![1, LEAF, LEAF],
            no: vec![2, LEAF, LEAF],
            missing_yes: vec![false; 3],
            feature: vec![1, 0, 0],
            threshold: vec![0.5, 0.0, 0.0],
            mode: vec![SplitMode::Leq; 3],
            cover: vec![4.0, 3.0, 1.0],
            value: vec![0.0, 1.0, 3.0],
            n_outputs: 1,
        }
    }

    #[test]
    fn stump_by_hand_and_phi_is_added_to() {
        let t = stump();
        assert_eq!(shap(&t, &[9.0, 0.2]), vec![0.0, 1.0 - 1.5, 1.5]);
        assert_eq!(shap(&t, &[9.0, 0.7]), vec![0.0, 3.0 - 1.5, 1.5]);
        // NaN goes `no` here (missing_yes false).
        assert_eq!(shap(&t, &[9.0, f32::NAN]), vec![0.0, 1.5, 1.5]);
        // Two trees into one phi: sums.
        let mut phi = vec![0.0; 3];
        tree_shap(&t, &[0.0, 0.2], &mut phi);
        tree_shap(&t, &[0.0, 0.2], &mut phi);
        assert_eq!(phi, vec![0.0, -1.0, 3.0]);
    }

    #[test]
    fn single_leaf_tree_gives_its_value_as_bias() {
        let t = ShapTree {
            yes: vec![LEAF],
            no: vec![LEAF],
            missing_yes: vec![false],
            feature: vec![0],
            threshold: vec![0.0],
            mode: vec![SplitMode::Leq],
            cover: vec![0.0], // a lone leaf's cover is never read
            value: vec![2.0, -1.0],
            n_outputs: 2,
        };
        t.validate().expect("valid");
        assert_eq!(shap(&t, &[1.0]), vec![0.0, 2.0, 0.0, -1.0]);
    }

    #[test]
    fn scratch_is_reused_across_trees_of_different_sizes() {
        let mut rng = Rng(3);
        let mut scratch = ShapScratch::default();
        for depth in [8, 2, 12, 1] {
            let t = random_tree(&mut rng, depth, 6, 2, &MODES);
            let x = random_row(&mut rng, 6);
            let mut phi = vec![0.0; 2 * 7];
            try_tree_shap(&t, &x, &mut phi, &mut scratch).expect("valid");
            assert_close(&phi, &brute_force(&t, &x), 1e-9, "with scratch");
        }
    }

    /// A chain 600 deep on 3 features alternating: the path buffer is
    /// bounded by the distinct features, not the depth squared.
    #[test]
    fn deep_chain() {
        let depth = 600;
        let mut t = ShapTree { n_outputs: 1, ..ShapTree::default() };
        for i in 0..depth {
            let leaf = (2 * i + 1) as u32;
            let next = (2 * i + 2) as u32;
            // node 2i: internal; node 2i+1: leaf; node 2i+2: next internal
            t.yes.extend([leaf, LEAF]);
            t.no.extend([next, LEAF]);
            t.missing_yes.extend([false, false]);
            t.feature.extend([(i % 3) as u32, 0]);
            t.threshold.extend([f64::from(i as u32) / depth as f64, 0.0]);
            t.mode.extend([SplitMode::Lt, SplitMode::Lt]);
            t.value.extend([0.0, i as f64]);
        }
        t.yes.push(LEAF);
        t.no.push(LEAF);
        t.missing_yes.push(false);
        t.feature.push(0);
        t.threshold.push(0.0);
        t.mode.push(SplitMode::Lt);
        t.value.push(-1.0);
        // Covers: each leaf 1, the last leaf 1, internal = sum below.
        let n = t.yes.len();
        t.cover = vec![1.0; n];
        for i in (0..depth).rev() {
            t.cover[2 * i] = t.cover[2 * i + 1] + t.cover[2 * i + 2];
        }
        t.validate().expect("valid");
        assert_eq!(t.max_depth(), Ok(depth));
        let x = [0.3f32, 0.5, 0.9];
        let phi = shap(&t, &x);
        let leaf = t.leaf_for(&x).expect("valid");
        let sum: f64 = phi.iter().sum();
        assert!((sum - t.value[leaf]).abs() < 1e-9, "Σφ = {sum}, f(x) = {}", t.value[leaf]);
        assert_eq!(path_len(depth, 3), 1 + 1 + 2 + 3 + 4 * (depth - 1));
    }

    fn unchanged_and_rejected(t: &ShapTree, x: &[f32], why: &str) {
        assert!(t.validate().is_err(), "validate accepts {why}");
        let mut phi = vec![0.5; t.n_outputs.max(1) * (x.len() + 1)];
        let before = phi.clone();
        tree_shap(t, x, &mut phi);
        assert_eq!(phi, before, "{why}: phi changed");
        assert!(try_tree_shap(t, x, &mut phi, &mut ShapScratch::default()).is_err(), "{why}");
    }

    #[test]
    fn malformed_trees_are_rejected_without_panicking() {
        let x = [0.0f32, 0.2];
        let mut t = stump();
        t.yes[0] = 0; // cycle to the root
        unchanged_and_rejected(&t, &x, "cycle");
        let mut t = stump();
        t.yes[0] = 3; // out of range
        unchanged_and_rejected(&t, &x, "child out of range");
        let mut t = stump();
        t.no[0] = LEAF; // one child
        unchanged_and_rejected(&t, &x, "one child");
        // Both children the same node: `validate` rejects it; per call the
        // visit budget bounds the work, and the values are those of the
        // unfolded tree (no panic, no hang).
        let mut t = stump();
        t.yes[0] = 2;
        assert!(t.validate().is_err());
        let mut phi = vec![0.0; 3];
        tree_shap(&t, &x, &mut phi);
        let mut t = stump();
        t.cover[1] = 0.0;
        unchanged_and_rejected(&t, &x, "zero cover");
        let mut t = stump();
        t.cover[0] = f64::NAN;
        unchanged_and_rejected(&t, &x, "NaN cover");
        // The exporters' placeholder hitrates: validate rejects them (the
        // call itself cannot tell, and computes with them).
        let mut t = stump();
        t.cover = vec![1.0; 3];
        assert!(t.validate().unwrap_err().contains("add up"));
        let mut t = stump();
        t.value.pop();
        unchanged_and_rejected(&t, &x, "short values");
        let mut t = stump();
        t.mode.pop();
        unchanged_and_rejected(&t, &x, "short modes");
        let mut t = stump();
        t.n_outputs = 0;
        t.value.clear();
        unchanged_and_rejected(&t, &x, "no outputs");
        unchanged_and_rejected(&ShapTree { n_outputs: 1, ..ShapTree::default() }, &x, "empty");
        // A longer cycle below the root that the budget must stop.
        let mut t = stump();
        t.yes = vec![1, 2, 1];
        t.no = vec![2, 2, 1];
        unchanged_and_rejected(&t, &x, "inner cycle");
        // Too deep.
        let n = MAX_DEPTH + 2;
        let mut t = ShapTree { n_outputs: 1, ..ShapTree::default() };
        for i in 0..n {
            let internal = i + 1 < n;
            t.yes.push(if internal { (i + 1) as u32 } else { LEAF });
            t.no.push(if internal { (i + 1) as u32 } else { LEAF });
            t.missing_yes.push(false);
            t.feature.push(0);
            t.threshold.push(0.0);
            t.mode.push(SplitMode::Leq);
            t.cover.push(1.0);
            t.value.push(0.0);
        }
        unchanged_and_rejected(&t, &x, "too deep");

        // Valid tree, bad call: feature beyond the row, phi the wrong size.
        let t = stump();
        let mut phi = vec![0.0; 2];
        tree_shap(&t, &[0.0], &mut phi);
        assert_eq!(phi, vec![0.0, 0.0]);
        let mut phi = vec![0.0; 4];
        tree_shap(&t, &[0.0, 0.2], &mut phi);
        assert_eq!(phi, vec![0.0; 4]);
    }

    #[test]
    fn max_feature_and_depth() {
        let t = stump();
        assert_eq!(t.max_feature(), Some(1));
        assert_eq!(t.max_depth(), Ok(1));
    }
}
