//! TreeSHAP (Lundberg et al. 2018, Algorithm 2: path-dependent, exact in
//! polynomial time) over one tree in the layout the `shap` package uses.
//! (Being written.)

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

/// Adds tree's SHAP values for row `x` to `phi`, laid out
/// `[output][feature]` with `n_features + 1` entries per output, the last
/// being the tree's expected value (the bias).
pub fn tree_shap(_tree: &ShapTree, _x: &[f32], _phi: &mut [f64]) {}
