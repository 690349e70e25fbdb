//! The element-wise preprocessing operators exporters put before a model:
//! `Scaler` (scikit-learn's `StandardScaler`), `Imputer` (`SimpleImputer`),
//! `Binarizer`. They compute in `f32` and produce float tensors, which is
//! what the exporters declare for float inputs.

use super::attrs::Attrs;
use super::{Kernel, OutShape};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// A per-column parameter: one value for all columns, or one per column.
fn per_column(a: &Attrs, name: &str, values: &[f32], cols: usize) -> TractResult<()> {
    if values.len() == 1 || values.len() == cols {
        Ok(())
    } else {
        Err(a.err(name, format!("has {} values for {cols} columns", values.len())))
    }
}

fn columns(input: &Tensor) -> usize {
    input.shape().last().copied().unwrap_or(1)
}

fn map_columns(input: &Tensor, f: impl Fn(usize, f32) -> f32) -> TractResult<TVec<Tensor>> {
    let x = input.cast_to::<f32>()?;
    let x = x.try_as_plain_ram()?.as_slice::<f32>()?;
    let cols = columns(input).max(1);
    let y: Vec<f32> = x.iter().enumerate().map(|(i, &v)| f(i % cols, v)).collect();
    Ok(tvec!(Tensor::from_shape(input.shape(), &y)?))
}

#[derive(Debug)]
pub struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    pub fn parse(node: &NodeProto) -> TractResult<Scaler> {
        let a = Attrs(node);
        let offset = a.floats("offset").map(<[f32]>::to_vec).unwrap_or_else(|| vec![0.0]);
        let scale = a.floats("scale").map(<[f32]>::to_vec).unwrap_or_else(|| vec![1.0]);
        if offset.is_empty() || scale.is_empty() {
            return Err(a.err("scale", "`offset` and `scale` need at least one value"));
        }
        Ok(Scaler { offset, scale })
    }
}

impl Kernel for Scaler {
    fn name(&self) -> &'static str {
        "Scaler"
    }
    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        vec![(DatumType::F32, OutShape::LikeInput)]
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let cols = columns(input);
        let a = Attrs(&NodeProto::default());
        per_column(&a, "offset", &self.offset, cols)?;
        per_column(&a, "scale", &self.scale, cols)?;
        let pick = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        map_columns(input, |c, x| (x - pick(&self.offset, c)) * pick(&self.scale, c))
    }
}

#[derive(Debug)]
pub struct Imputer {
    values: Vec<f32>,
    replaced: f32,
}

impl Imputer {
    pub fn parse(node: &NodeProto) -> TractResult<Imputer> {
        let a = Attrs(node);
        let values = a.floats("imputed_value_floats").filter(|v| !v.is_empty()).map(<[f32]>::to_vec).ok_or_else(|| {
            a.err("imputed_value_floats", "missing (integer imputation, `imputed_value_int64s`, is not supported)")
        })?;
        let replaced = a.float("replaced_value_float").unwrap_or(0.0);
        Ok(Imputer { values, replaced })
    }
}

impl Kernel for Imputer {
    fn name(&self) -> &'static str {
        "Imputer"
    }
    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        vec![(DatumType::F32, OutShape::LikeInput)]
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        per_column(&Attrs(&NodeProto::default()), "imputed_value_floats", &self.values, columns(input))?;
        let nan = self.replaced.is_nan();
        map_columns(input, |c, x| {
            let missing = if nan { x.is_nan() } else { x == self.replaced };
            if missing { if self.values.len() == 1 { self.values[0] } else { self.values[c] } } else { x }
        })
    }
}

#[derive(Debug)]
pub struct Binarizer {
    threshold: f32,
}

impl Binarizer {
    pub fn parse(node: &NodeProto) -> TractResult<Binarizer> {
        Ok(Binarizer { threshold: Attrs(node).float("threshold").unwrap_or(0.0) })
    }
}

impl Kernel for Binarizer {
    fn name(&self) -> &'static str {
        "Binarizer"
    }
    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        vec![(DatumType::F32, OutShape::LikeInput)]
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        map_columns(input, |_, x| if x > self.threshold { 1.0 } else { 0.0 })
    }
}

/// `ArrayFeatureExtractor` as onnxruntime runs it: the output keeps the
/// input's rank, its last axis as long as the index list (`[N, C]` with
/// the scalar index `0` → `[N, 1]`). tract's own is a `Gather`, which
/// drops that axis for a scalar index and breaks the graph after it
/// (skl2onnx's one-vs-rest scores of a multiclass `SVC` concatenate such
/// columns).
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq)]
pub struct ArrayFeatureExtractor;

impl Expansion for ArrayFeatureExtractor {
    fn name(&self) -> StaticName {
        "ArrayFeatureExtractor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[1].datum_type, i64::datum_type())?;
        s.given(&inputs[0].rank, move |s, rank| s.equals(&outputs[0].rank, rank.max(2)))?;
        s.given_2(&inputs[0].shape, &inputs[1].shape, move |s, input_shape, indices_shape| {
            // onnxruntime: `[N, k]` from `[N, C]`, and `[1, k]` from `[C]`.
            let mut shape: TVec<TDim> = if input_shape.len() == 1 {
                tvec![1.to_dim()]
            } else {
                input_shape.iter().take(input_shape.len() - 1).cloned().collect()
            };
            shape.push(indices_shape.iter().cloned().product::<TDim>());
            s.equals(&outputs[0].shape, shape)
        })
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        use tract_onnx::tract_hir::tract_core::ops::array::Gather;
        use tract_onnx::tract_hir::tract_core::ops::change_axes::AxisOp;
        let rank = model.outlet_fact(inputs[0])?.rank();
        if rank == 0 {
            bail!("`ArrayFeatureExtractor` needs an input of rank 1 or more");
        }
        let data_fact = model.outlet_fact(inputs[0])?.clone();
        let indices_fact = model.outlet_fact(inputs[1])?.clone();
        // Constant indices (what exporters write) are checked now: tract's
        // gather does not bound-check every row.
        if let (Some(indices), Some(width)) = (indices_fact.konst.as_ref(), data_fact.shape.last().and_then(|d| d.to_i64().ok())) {
            let indices = indices.cast_to::<i64>()?;
            if let Some(bad) = indices.try_as_plain_ram()?.as_slice::<i64>()?.iter().find(|&&i| i < -width || i >= width) {
                bail!("`ArrayFeatureExtractor` index {bad} is outside the {width} columns of its input");
            }
        }
        let indices_shape: TVec<TDim> = indices_fact.shape.iter().cloned().collect();
        // The indices as one list, whatever their shape.
        let indices = match indices_shape.len() {
            0 => model.wire_node(format!("{prefix}.indices"), AxisOp::Add(0), &[inputs[1]])?[0],
            1 => inputs[1],
            _ => {
                let n = indices_shape.iter().cloned().product::<TDim>();
                model.wire_node(format!("{prefix}.indices"), AxisOp::Reshape(0, indices_shape, tvec![n]), &[inputs[1]])?[0]
            }
        };
        let gathered = model.wire_node(prefix, Gather { axis: rank - 1, output_type: None }, &[inputs[0], indices])?;
        if rank == 1 {
            return model.wire_node(format!("{prefix}.row"), AxisOp::Add(0), &gathered);
        }
        Ok(gathered)
    }
}
