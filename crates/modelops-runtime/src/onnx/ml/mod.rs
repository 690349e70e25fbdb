//! Our `ai.onnx.ml` operators, registered into tract's ONNX op table.
//!
//! tract covers the standard operators well but only six of the nineteen
//! `ai.onnx.ml` ones, and of those its tree ensemble is quadratic in the
//! number of leaves and inverts binary gradient-boosting labels. Every
//! operator here is a [`Kernel`]: one input, outputs whose first axis is the
//! row, evaluated on whole batches. [`MlOp`] adapts a kernel to both of
//! tract's op layers (inference rules while the graph is typed, a typed op
//! in the optimised plan), so a kernel is written once and knows nothing of
//! tract's optimiser. The semantics follow onnxruntime, the reference the
//! fixtures are checked against, including its choices where the ONNX
//! specification is vague (binary classifiers, missing values).

pub mod attrs;
pub mod categorical;
pub mod linear;
pub mod misc;
pub mod svm;
pub mod tree;

use std::sync::Arc;
use tract_onnx::pb::NodeProto;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::tract_hir::internal::*;

/// The shape of a kernel output in terms of the input's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutShape {
    /// `[rows]`: one value per row (a label).
    Rows,
    /// `[rows, n]`: scores, targets.
    RowsBy(usize),
    /// The input's own shape (element-wise operators).
    LikeInput,
    /// The input's shape and a last axis of `n` (`OneHotEncoder`: a column
    /// of categories becomes a column of indicator vectors).
    InputThen(usize),
}

/// One `ai.onnx.ml` operator's computation.
pub trait Kernel: std::fmt::Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn outputs(&self) -> Vec<(DatumType, OutShape)>;
    /// Refuses, when the model loads, an input type the operator cannot
    /// read (rather than failing every call).
    fn check_input(&self, _datum_type: DatumType) -> TractResult<()> {
        Ok(())
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>>;
}

/// A [`Kernel`] as a tract op, at both the inference and the typed level.
/// Equality is identity: two nodes are the same op only if they share the
/// kernel, which keeps tract from merging distinct models' nodes.
#[derive(Debug, Clone)]
pub struct MlOp(pub Arc<dyn Kernel>);

impl PartialEq for MlOp {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}
impl Eq for MlOp {}

impl Op for MlOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }
    fn as_typed(&self) -> Option<&dyn TypedOp> {
        Some(self)
    }
}

impl EvalOp for MlOp {
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = inputs.first().ok_or_else(|| format_err!("{} needs one input", self.0.name()))?;
        Ok(self.0.eval(input)?.into_iter().map(IntoTValue::into_tvalue).collect())
    }
    fn eval_out_of_plan(&self, inputs: TVec<TValue>) -> TractResult<Option<TVec<TValue>>> {
        Ok(Some(EvalOp::eval(self, &EvalContext::out_of_plan(), inputs)?))
    }
}

impl TypedOp for MlOp {
    fn as_op(&self) -> &dyn Op {
        self
    }
    fn as_op_mut(&mut self) -> &mut dyn Op {
        self
    }
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = inputs.first().ok_or_else(|| format_err!("{} needs one input", self.0.name()))?;
        self.0.check_input(input.datum_type)?;
        let rows = input.shape.iter().next().cloned().unwrap_or_else(|| 1.to_dim());
        Ok(self
            .0
            .outputs()
            .into_iter()
            .map(|(dt, shape)| match shape {
                OutShape::Rows => dt.fact([rows.clone()]),
                OutShape::RowsBy(n) => dt.fact([rows.clone(), n.to_dim()]),
                OutShape::LikeInput => dt.fact(input.shape.clone()),
                OutShape::InputThen(n) => {
                    let mut shape: TVec<TDim> = input.shape.iter().cloned().collect();
                    shape.push(n.to_dim());
                    dt.fact(shape)
                }
            })
            .collect())
    }
}

impl Expansion for MlOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }
    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.outputs().len())
    }
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        let specs = self.0.outputs();
        check_output_arity(outputs, specs.len())?;
        for (output, (dt, shape)) in outputs.iter().zip(specs) {
            s.equals(&output.datum_type, dt)?;
            match shape {
                OutShape::Rows => {
                    s.equals(&output.rank, 1)?;
                    s.equals(&output.shape[0], &inputs[0].shape[0])?;
                }
                OutShape::RowsBy(n) => {
                    s.equals(&output.rank, 2)?;
                    s.equals(&output.shape[0], &inputs[0].shape[0])?;
                    s.equals(&output.shape[1], n.to_dim())?;
                }
                OutShape::LikeInput => s.equals(&output.shape, &inputs[0].shape)?,
                OutShape::InputThen(n) => {
                    s.equals(&output.rank, inputs[0].rank.bex() + 1)?;
                    s.given(&inputs[0].shape, move |s, shape| {
                        let mut with = shape.clone();
                        with.push(n.to_dim());
                        s.equals(&output.shape, with)
                    })?;
                }
            }
        }
        Ok(())
    }
    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.clone(), inputs)
    }
}

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

fn built(kernel: impl Kernel) -> Built {
    Ok((expand(MlOp(Arc::new(kernel))), vec![]))
}

/// The operators we add or replace (tract's own `TreeEnsembleClassifier`,
/// `LinearClassifier` and `ArrayFeatureExtractor` are replaced; its
/// `LinearRegressor`, `Normalizer` and `CategoryMapper` are kept).
pub fn register(reg: &mut OnnxOpRegister) {
    fn classifier(_: &ParsingContext, node: &NodeProto) -> Built {
        built(tree::TreeOp::classifier(node)?)
    }
    fn regressor(_: &ParsingContext, node: &NodeProto) -> Built {
        built(tree::TreeOp::regressor(node)?)
    }
    fn ensemble(_: &ParsingContext, node: &NodeProto) -> Built {
        built(tree::TreeOp::ensemble_v5(node)?)
    }
    fn scaler(_: &ParsingContext, node: &NodeProto) -> Built {
        built(misc::Scaler::parse(node)?)
    }
    fn imputer(_: &ParsingContext, node: &NodeProto) -> Built {
        built(misc::Imputer::parse(node)?)
    }
    fn binarizer(_: &ParsingContext, node: &NodeProto) -> Built {
        built(misc::Binarizer::parse(node)?)
    }
    reg.insert("TreeEnsembleClassifier", classifier);
    reg.insert("TreeEnsembleRegressor", regressor);
    reg.insert("TreeEnsemble", ensemble);
    fn linear_classifier(_: &ParsingContext, node: &NodeProto) -> Built {
        built(linear::LinearClassifier::parse(node)?)
    }
    reg.insert("LinearClassifier", linear_classifier);
    reg.insert("Scaler", scaler);
    reg.insert("Imputer", imputer);
    reg.insert("Binarizer", binarizer);
    fn one_hot_encoder(ctx: &ParsingContext, node: &NodeProto) -> Built {
        built(categorical::OneHotEncoder::parse(ctx, node)?)
    }
    fn label_encoder(ctx: &ParsingContext, node: &NodeProto) -> Built {
        built(categorical::LabelEncoder::parse(ctx, node)?)
    }
    reg.insert("OneHotEncoder", one_hot_encoder);
    fn svm_classifier(_: &ParsingContext, node: &NodeProto) -> Built {
        built(svm::SvmClassifier::parse(node)?)
    }
    fn svm_regressor(_: &ParsingContext, node: &NodeProto) -> Built {
        built(svm::SvmRegressor::parse(node)?)
    }
    reg.insert("SVMClassifier", svm_classifier);
    fn array_feature_extractor(_: &ParsingContext, _: &NodeProto) -> Built {
        Ok((expand(misc::ArrayFeatureExtractor), vec![]))
    }
    reg.insert("ArrayFeatureExtractor", array_feature_extractor);
    reg.insert("SVMRegressor", svm_regressor);
    reg.insert("LabelEncoder", label_encoder);
}

/// The input as an `f32` row-major matrix: `(rows, columns, values)`.
pub(crate) fn as_matrix(input: &Tensor) -> TractResult<(usize, usize, std::borrow::Cow<'_, Tensor>)> {
    let t = input.cast_to::<f32>()?;
    let (rows, cols) = match *input.shape() {
        [] => (1, 1),
        [c] => (1, c),
        [r, c] => (r, c),
        ref other => bail!("expected a [rows, features] input, got shape {other:?}"),
    };
    Ok((rows, cols, t))
}
