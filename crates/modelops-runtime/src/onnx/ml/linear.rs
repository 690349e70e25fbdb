//! `LinearClassifier` (scikit-learn's logistic regression and linear SVMs
//! as skl2onnx exports them). tract has one, but it cannot produce string
//! labels; ours follows onnxruntime's kernel: one score per class from the
//! coefficients, the label by the first maximum (or the sign of a single
//! score), then the post-transform.

use super::attrs::Attrs;
use super::tree::{logistic, parse_post, Labels, PostTransform};
use super::{as_matrix, Kernel, OutShape};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{ArrayD, IxDyn};

#[derive(Debug)]
pub struct LinearClassifier {
    /// `targets × features`, row-major.
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    targets: usize,
    features: usize,
    labels: Labels,
    post: PostTransform,
}

impl LinearClassifier {
    pub fn parse(node: &NodeProto) -> TractResult<LinearClassifier> {
        let a = Attrs(node);
        let coefficients = a.floats("coefficients").filter(|c| !c.is_empty()).ok_or_else(|| a.err("coefficients", "missing"))?.to_vec();
        let labels = match (a.ints("classlabels_ints").filter(|v| !v.is_empty()), a.strings("classlabels_strings").filter(|v| !v.is_empty())) {
            (_, Some(s)) => Labels::Str(s),
            (Some(i), None) => Labels::Int(i.to_vec()),
            (None, None) => return Err(a.err("classlabels_ints", "no class labels are given")),
        };
        let intercepts = a.floats("intercepts").map(<[f32]>::to_vec).unwrap_or_default();
        let targets = if intercepts.is_empty() { labels.len() } else { intercepts.len() };
        if targets == 0 || coefficients.len() % targets != 0 {
            return Err(a.err("coefficients", format!("{} values do not split into {targets} classes", coefficients.len())));
        }
        if targets > 1 && targets != labels.len() {
            return Err(a.err("intercepts", format!("{targets} classes scored but {} labelled", labels.len())));
        }
        let intercepts = if intercepts.is_empty() { vec![0.0; targets] } else { intercepts };
        let post = parse_post(&a, &a.string("post_transform").unwrap_or_default())?;
        Ok(LinearClassifier { features: coefficients.len() / targets, coefficients, intercepts, targets, labels, post })
    }

    /// Two probability columns from one score, as onnxruntime writes them.
    fn second_class(&self) -> bool {
        self.targets == 1 && self.labels.len() == 2
    }

    fn label(&self, index: usize, binary_positive: Option<bool>) -> LabelValue {
        match (&self.labels, binary_positive) {
            (Labels::Int(l), Some(p)) => LabelValue::Int(if l.len() == 2 { l[usize::from(p)] } else { i64::from(p) }),
            (Labels::Str(l), Some(p)) => LabelValue::Str(if l.len() == 2 { l[usize::from(p)].clone() } else { if p { "1" } else { "0" }.into() }),
            (Labels::Int(l), None) => LabelValue::Int(l[index]),
            (Labels::Str(l), None) => LabelValue::Str(l[index].clone()),
        }
    }
}

enum LabelValue {
    Int(i64),
    Str(String),
}

impl Kernel for LinearClassifier {
    fn name(&self) -> &'static str {
        "LinearClassifier"
    }

    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        let dt = match self.labels {
            Labels::Int(_) => DatumType::I64,
            Labels::Str(_) => DatumType::String,
        };
        let width = if self.second_class() { 2 } else { self.targets };
        vec![(dt, OutShape::Rows), (DatumType::F32, OutShape::RowsBy(width))]
    }

    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let (rows, cols, x) = as_matrix(input)?;
        if cols != self.features {
            bail!("LinearClassifier expects {} features, got {cols}", self.features);
        }
        let x = x.try_as_plain_ram()?.as_slice::<f32>()?;
        let t = self.targets;
        let width = if self.second_class() { 2 } else { t };
        let mut z = vec![0f32; rows * width];
        let mut ints = Vec::new();
        let mut strs = Vec::new();
        let mut s = vec![0f32; t];
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            for (k, score) in s.iter_mut().enumerate() {
                let c = &self.coefficients[k * cols..(k + 1) * cols];
                *score = row.iter().zip(c).fold(0f32, |acc, (a, b)| acc + a * b) + self.intercepts[k];
            }
            let label = if t == 1 {
                self.label(0, Some(s[0] > 0.0))
            } else {
                let mut best = 0;
                for k in 1..t {
                    if s[k] > s[best] {
                        best = k;
                    }
                }
                self.label(best, None)
            };
            match label {
                LabelValue::Int(v) => ints.push(v),
                LabelValue::Str(v) => strs.push(v),
            }
            let out = &mut z[r * width..(r + 1) * width];
            if t > 1 {
                match self.post {
                    PostTransform::Logistic => s.iter_mut().for_each(|v| *v = logistic(*v)),
                    PostTransform::Softmax | PostTransform::SoftmaxZero | PostTransform::Probit => super::tree::transform_row(&mut s, self.post),
                    PostTransform::None => {}
                }
                out.copy_from_slice(&s);
            } else if self.post == PostTransform::Probit {
                out[0] = super::tree::transform_one(s[0], self.post);
            } else if self.second_class() {
                out[0] = 1.0 - s[0];
                out[1] = s[0];
            } else {
                out[0] = s[0];
            }
        }
        let labels = match self.labels {
            Labels::Int(_) => ArrayD::from_shape_vec(IxDyn(&[rows]), ints)?.into_tensor(),
            Labels::Str(_) => ArrayD::from_shape_vec(IxDyn(&[rows]), strs)?.into_tensor(),
        };
        Ok(tvec!(labels, Tensor::from_shape(&[rows, width], &z)?))
    }
}
