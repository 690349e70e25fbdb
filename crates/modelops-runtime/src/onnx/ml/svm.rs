//! `SVMClassifier` and `SVMRegressor`: scikit-learn's `SVC`, `NuSVC`,
//! `SVR`, `NuSVR` and `OneClassSVM` as skl2onnx exports them (libsvm's
//! support vectors, dual coefficients and intercepts). The arithmetic
//! follows onnxruntime's kernels step for step — kernel values in `f32`,
//! the one-vs-one sums in `f64`, the label by votes, Platt's pairwise
//! probabilities coupled by libsvm's iterative method in `f32` with its
//! stopping rule — because a probability that stops iterating one step
//! earlier differs in the fifth decimal.

use super::attrs::Attrs;
use super::tree::{logistic, parse_post, transform_row, write_scores, Labels, PostTransform, Second};
use super::{as_matrix, Kernel, OutShape};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{ArrayD, IxDyn};

/// The kernel function and its parameters (`kernel_params`: gamma, coef0,
/// degree).
#[derive(Debug, Clone, Copy)]
enum KernelFn {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl KernelFn {
    fn parse(a: &Attrs) -> TractResult<KernelFn> {
        let params = a.floats("kernel_params").unwrap_or_default();
        let p = |i: usize| params.get(i).copied().unwrap_or(0.0);
        let (gamma, coef0, degree) = (p(0), p(1), p(2));
        Ok(match a.string("kernel_type").as_deref().unwrap_or("LINEAR") {
            "LINEAR" => KernelFn::Linear,
            "POLY" => KernelFn::Poly { gamma, coef0, degree },
            "RBF" => KernelFn::Rbf { gamma },
            "SIGMOID" => KernelFn::Sigmoid { gamma, coef0 },
            other => return Err(a.err("kernel_type", format!("`{other}` is not one of LINEAR, POLY, RBF, SIGMOID"))),
        })
    }

    /// k(x, v) in `f32`, as onnxruntime computes it (a GEMM for the dot
    /// products, a running sum of squares for RBF).
    fn eval(self, x: &[f32], v: &[f32]) -> f32 {
        let dot = || x.iter().zip(v).fold(0f32, |acc, (a, b)| acc + a * b);
        match self {
            KernelFn::Linear => dot(),
            KernelFn::Poly { gamma, coef0, degree } => {
                let base = gamma * dot() + coef0;
                if degree == 2.0 {
                    base * base
                } else if degree == 3.0 {
                    base * base * base
                } else {
                    base.powf(degree)
                }
            }
            KernelFn::Rbf { gamma } => {
                let sum = x.iter().zip(v).fold(0f32, |acc, (a, b)| {
                    let d = a - b;
                    acc + d * d
                });
                (-gamma * sum).exp()
            }
            KernelFn::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

fn check_features(op: &str, cols: usize, features: usize) -> TractResult<()> {
    if cols != features {
        bail!("{op} expects {features} features, got {cols}");
    }
    Ok(())
}

/// Class probabilities from pairwise ones (`r[i*k + j]`: P(i | i or j)),
/// by the second method of Wu, Lin and Weng (2004), as libsvm and
/// onnxruntime run it: at most 100 rounds, stopping when every
/// component's error is below 0.005 / k.
fn couple_probabilities(k: usize, r: &[f32], p: &mut [f32]) {
    let mut q = vec![0f32; k * k];
    let mut qp = vec![0f32; k];
    let eps = 0.005 / k as f32;
    for i in 0..k {
        p[i] = 1.0 / k as f32;
        for j in 0..i {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for j in i + 1..k {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    for _ in 0..100 {
        let mut pqp = 0f32;
        for i in 0..k {
            qp[i] = 0.0;
            for j in 0..k {
                qp[i] += q[i * k + j] * p[j];
            }
            pqp += p[i] * qp[i];
        }
        let max_error = qp.iter().fold(0f32, |m, &v| m.max((v - pqp).abs()));
        if max_error < eps {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
}

/// How the classifier scores: libsvm's support vectors (one-vs-one), or
/// liblinear's one weight row per class.
#[derive(Debug)]
enum Mode {
    Svc {
        /// `vectors × features`.
        support_vectors: Vec<f32>,
        vectors_per_class: Vec<usize>,
        starting_vector: Vec<usize>,
        vector_count: usize,
    },
    Linear,
}

#[derive(Debug)]
pub struct SvmClassifier {
    mode: Mode,
    kernel: KernelFn,
    features: usize,
    classes: usize,
    labels: Labels,
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    post: PostTransform,
    weights_are_all_positive: bool,
}

impl SvmClassifier {
    pub fn parse(node: &NodeProto) -> TractResult<SvmClassifier> {
        let a = Attrs(node);
        let labels = match (a.ints("classlabels_ints").filter(|v| !v.is_empty()), a.strings("classlabels_strings").filter(|v| !v.is_empty())) {
            (_, Some(s)) => Labels::Str(s),
            (Some(i), None) => Labels::Int(i.to_vec()),
            (None, None) => return Err(a.err("classlabels_ints", "no class labels are given")),
        };
        let classes = labels.len();
        if !(2..65_536).contains(&classes) {
            return Err(a.err("classlabels_ints", format!("{classes} classes; between 2 and 65,535 are supported")));
        }
        let coefficients = a.floats("coefficients").filter(|c| !c.is_empty()).ok_or_else(|| a.err("coefficients", "missing"))?.to_vec();
        let rho = a.floats("rho").filter(|r| !r.is_empty()).ok_or_else(|| a.err("rho", "missing"))?.to_vec();
        let prob_a = a.floats("prob_a").unwrap_or_default().to_vec();
        let prob_b = a.floats("prob_b").unwrap_or_default().to_vec();
        if prob_a.len() != prob_b.len() {
            return Err(a.err("prob_b", format!("{} values where `prob_a` has {}", prob_b.len(), prob_a.len())));
        }
        let per_class = a.ints("vectors_per_class").unwrap_or_default();
        let pairs = classes * (classes - 1) / 2;
        let mut kernel = KernelFn::parse(&a)?;
        let support_vectors = a.floats("support_vectors").unwrap_or_default().to_vec();
        // Each count at most the number of values given, so sums cannot wrap.
        let bound = support_vectors.len() as i64;
        if per_class.iter().any(|&n| !(0..=bound).contains(&n)) {
            return Err(a.err("vectors_per_class", format!("{per_class:?} does not fit {bound} support vector values")));
        }
        let (mode, features) = if per_class.iter().sum::<i64>() > 0 {
            if per_class.len() != classes {
                return Err(a.err("vectors_per_class", format!("{} counts for {classes} classes", per_class.len())));
            }
            let vectors_per_class: Vec<usize> = per_class.iter().map(|&n| n as usize).collect();
            let starting_vector: Vec<usize> = vectors_per_class.iter().scan(0, |start, &n| Some(std::mem::replace(start, *start + n))).collect();
            let vector_count: usize = vectors_per_class.iter().sum();
            if support_vectors.is_empty() || support_vectors.len() % vector_count != 0 {
                return Err(a.err("support_vectors", format!("{} values do not split into {vector_count} vectors", support_vectors.len())));
            }
            if coefficients.len() < (classes - 1) * vector_count {
                return Err(a.err("coefficients", format!("{} values where {} classes of {vector_count} vectors need {}", coefficients.len(), classes, (classes - 1) * vector_count)));
            }
            if rho.len() < pairs {
                return Err(a.err("rho", format!("{} values for {pairs} pairs of classes", rho.len())));
            }
            if !prob_a.is_empty() && prob_a.len() < pairs {
                return Err(a.err("prob_a", format!("{} values for {pairs} pairs of classes", prob_a.len())));
            }
            let features = support_vectors.len() / vector_count;
            (Mode::Svc { support_vectors, vectors_per_class, starting_vector, vector_count }, features)
        } else {
            if coefficients.len() % classes != 0 {
                return Err(a.err("coefficients", format!("{} values do not split into {classes} classes", coefficients.len())));
            }
            kernel = KernelFn::Linear;
            (Mode::Linear, coefficients.len() / classes)
        };
        let post = parse_post(&a, &a.string("post_transform").unwrap_or_default())?;
        let weights_are_all_positive = coefficients.iter().all(|&c| c >= 0.0);
        let classifier = SvmClassifier { mode, kernel, features, classes, labels, coefficients, rho, prob_a, prob_b, post, weights_are_all_positive };
        if classifier.binary_margins() && post == PostTransform::Probit {
            return Err(a.err("post_transform", "PROBIT on a two-class SVC without probabilities is not supported"));
        }
        Ok(classifier)
    }

    fn have_probabilities(&self) -> bool {
        !self.prob_a.is_empty()
    }

    /// A two-class SVC without probabilities: one margin, written as two
    /// columns.
    fn binary_margins(&self) -> bool {
        matches!(self.mode, Mode::Svc { .. }) && !self.have_probabilities() && self.classes == 2
    }

    /// Columns of the score output.
    fn width(&self) -> usize {
        match self.mode {
            Mode::Svc { .. } if !self.have_probabilities() => {
                if self.classes > 2 {
                    self.classes * (self.classes - 1) / 2
                } else {
                    2
                }
            }
            _ => self.classes,
        }
    }
}

impl Kernel for SvmClassifier {
    fn name(&self) -> &'static str {
        "SVMClassifier"
    }

    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        let dt = match self.labels {
            Labels::Int(_) => DatumType::I64,
            Labels::Str(_) => DatumType::String,
        };
        vec![(dt, OutShape::Rows), (DatumType::F32, OutShape::RowsBy(self.width()))]
    }

    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let (rows, cols, x) = as_matrix(input)?;
        check_features("SVMClassifier", cols, self.features)?;
        let x = x.try_as_plain_ram()?.as_slice::<f32>()?;
        let k = self.classes;
        let pairs = k * (k - 1) / 2;
        let width = self.width();
        let mut z = vec![0f32; rows * width];
        let mut label_index = Vec::with_capacity(rows);
        let mut kernels = Vec::new();
        // Scratch for the one-vs-one scores, only where they exist (a
        // liblinear model may list many classes and no pairs).
        let svc = matches!(self.mode, Mode::Svc { .. });
        let mut votes = vec![0i64; if svc { k } else { 0 }];
        let mut pair_scores = vec![0f32; if svc { pairs } else { 0 }];
        let mut pairwise = vec![0f32; if svc && self.have_probabilities() { k * k } else { 0 }];
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let out = &mut z[r * width..(r + 1) * width];
            let (mut scores, best, max_weight) = match &self.mode {
                Mode::Linear => {
                    let scores: Vec<f32> = (0..k).map(|c| self.kernel.eval(row, &self.coefficients[c * cols..(c + 1) * cols]) + self.rho[0]).collect();
                    // The first maximum, as std::max_element.
                    let best = (1..k).fold(0, |b, c| if scores[c] > scores[b] { c } else { b });
                    let max = scores[best];
                    (scores, best, max)
                }
                Mode::Svc { support_vectors, vectors_per_class, starting_vector, vector_count } => {
                    let n = *vector_count;
                    kernels.clear();
                    kernels.extend((0..n).map(|v| self.kernel.eval(row, &support_vectors[v * cols..(v + 1) * cols])));
                    votes.iter_mut().for_each(|v| *v = 0);
                    let mut pair = 0;
                    for i in 0..k - 1 {
                        for j in i + 1..k {
                            let mut sum = 0f64;
                            let (si, ni) = (starting_vector[i], vectors_per_class[i]);
                            let (sj, nj) = (starting_vector[j], vectors_per_class[j]);
                            for m in 0..ni {
                                sum += f64::from(self.coefficients[n * (j - 1) + si + m] * kernels[si + m]);
                            }
                            for m in 0..nj {
                                sum += f64::from(self.coefficients[n * i + sj + m] * kernels[sj + m]);
                            }
                            sum += f64::from(self.rho[pair]);
                            pair_scores[pair] = sum as f32;
                            votes[if sum > 0.0 { i } else { j }] += 1;
                            pair += 1;
                        }
                    }
                    let best = (1..k).fold(0, |b, c| if votes[c] > votes[b] { c } else { b });
                    let scores = if self.have_probabilities() {
                        pairwise.iter_mut().for_each(|v| *v = 0.0);
                        let mut pair = 0;
                        for i in 0..k - 1 {
                            for j in i + 1..k {
                                let platt = 1.0 - logistic(pair_scores[pair] * self.prob_a[pair] + self.prob_b[pair]);
                                let p = platt.clamp(1.0e-7, 1.0 - 1.0e-7);
                                pairwise[i * k + j] = p;
                                pairwise[j * k + i] = 1.0 - p;
                                pair += 1;
                            }
                        }
                        let mut p = vec![0f32; k];
                        couple_probabilities(k, &pairwise, &mut p);
                        p
                    } else {
                        pair_scores.clone()
                    };
                    // The label comes from the votes even with probabilities.
                    (scores, best, 0.0)
                }
            };
            // The label, before the scores are transformed.
            let two = k == 2 && pairs == 1;
            let index = if two && !self.have_probabilities() {
                if (self.weights_are_all_positive && max_weight >= 0.5) || (max_weight > 0.0 && !self.weights_are_all_positive) {
                    1
                } else {
                    best
                }
            } else {
                best
            };
            label_index.push(index);
            if self.binary_margins() {
                let second = if self.post == PostTransform::None { Second::Negate } else { Second::Complement };
                write_scores(&mut scores[..1], self.post, out, second);
            } else {
                if scores.len() >= 2 {
                    transform_row(&mut scores, self.post);
                }
                out.copy_from_slice(&scores);
            }
        }
        let labels = match &self.labels {
            Labels::Int(l) => ArrayD::from_shape_vec(IxDyn(&[rows]), label_index.iter().map(|&i| l[i]).collect())?.into_tensor(),
            Labels::Str(l) => ArrayD::from_shape_vec(IxDyn(&[rows]), label_index.iter().map(|&i| l[i].clone()).collect())?.into_tensor(),
        };
        Ok(tvec!(labels, Tensor::from_shape(&[rows, width], &z)?))
    }
}

#[derive(Debug)]
pub struct SvmRegressor {
    kernel: KernelFn,
    /// `vectors × features`; empty in liblinear mode.
    support_vectors: Vec<f32>,
    vector_count: usize,
    features: usize,
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
}

impl SvmRegressor {
    pub fn parse(node: &NodeProto) -> TractResult<SvmRegressor> {
        let a = Attrs(node);
        let coefficients = a.floats("coefficients").filter(|c| !c.is_empty()).ok_or_else(|| a.err("coefficients", "missing"))?.to_vec();
        let rho = *a.floats("rho").and_then(|r| r.first()).ok_or_else(|| a.err("rho", "missing"))?;
        let vector_count = usize::try_from(a.int("n_supports").unwrap_or(0)).map_err(|_| a.err("n_supports", "must not be negative"))?;
        let support_vectors = a.floats("support_vectors").unwrap_or_default().to_vec();
        let (kernel, features) = if vector_count > 0 {
            if support_vectors.is_empty() || support_vectors.len() % vector_count != 0 {
                return Err(a.err("support_vectors", format!("{} values do not split into {vector_count} vectors", support_vectors.len())));
            }
            if coefficients.len() < vector_count {
                return Err(a.err("coefficients", format!("{} values for {vector_count} support vectors", coefficients.len())));
            }
            (KernelFn::parse(&a)?, support_vectors.len() / vector_count)
        } else {
            (KernelFn::Linear, coefficients.len())
        };
        Ok(SvmRegressor { kernel, support_vectors, vector_count, features, coefficients, rho, one_class: a.int("one_class").unwrap_or(0) != 0 })
    }
}

impl Kernel for SvmRegressor {
    fn name(&self) -> &'static str {
        "SVMRegressor"
    }

    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        vec![(DatumType::F32, OutShape::RowsBy(1))]
    }

    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let (rows, cols, x) = as_matrix(input)?;
        check_features("SVMRegressor", cols, self.features)?;
        let x = x.try_as_plain_ram()?.as_slice::<f32>()?;
        let y: Vec<f32> = (0..rows)
            .map(|r| {
                let row = &x[r * cols..(r + 1) * cols];
                let value = if self.vector_count > 0 {
                    // Summed in f64: thousands of support vectors with large
                    // dual coefficients lose the fifth digit in an f32 running
                    // sum (onnxruntime's blocked GEMM loses less).
                    let sum = (0..self.vector_count)
                        .map(|v| self.kernel.eval(row, &self.support_vectors[v * cols..(v + 1) * cols]))
                        .zip(&self.coefficients)
                        .fold(0f64, |acc, (k, &c)| acc + f64::from(k) * f64::from(c));
                    (sum + f64::from(self.rho)) as f32
                } else {
                    self.kernel.eval(row, &self.coefficients) + self.rho
                };
                if self.one_class {
                    if value > 0.0 { 1.0 } else { -1.0 }
                } else {
                    value
                }
            })
            .collect();
        Ok(tvec!(Tensor::from_shape(&[rows, 1], &y)?))
    }
}
