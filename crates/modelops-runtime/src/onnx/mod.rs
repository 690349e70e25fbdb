//! ONNX models: tract-onnx for the standard operators plus our own
//! `ai.onnx.ml` operators ([`ml`]) registered into its op table.
//!
//! Why tract and not onnxruntime: one pure-Rust binary with no shared
//! library to ship, and `Send + Sync` plans that serve concurrent requests
//! without a lock. Its gaps for tabular models (ZipMap, the tree
//! regressors, preprocessing, a quadratic and label-inverting tree
//! classifier) are closed here rather than by forking it.
//!
//! Loading decodes the protobuf, rewrites what tract cannot type (ZipMap,
//! see [`rewrite`]), refuses unknown operators by name, and builds the
//! optimised plan once with a symbolic batch axis `N`, so any number of rows
//! runs through the same plan. tract can panic on graphs it does not
//! expect; loading and running are wrapped so a panic is an error, never a
//! crash of the server.
//!
//! Outputs are named like the graph outputs. A ZipMap output (skl2onnx's
//! `output_probability`) is a `[rows, classes]` float tensor whose column
//! names [`OnnxModel::class_labels`] gives. Float inputs accept NaN
//! (`allow_nan`) exactly when the graph holds a tree ensemble or an
//! imputer, the operators that define what a missing value does.

pub mod explain;
pub mod ml;
pub mod rewrite;
pub mod tree_shap;

use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError, Tensor, TensorData};
use async_trait::async_trait;
use modelops_core::version::{DataType, Signature, SignatureField};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use tract_onnx::pb::type_proto::Value;
use tract_onnx::pb::{tensor_shape_proto::dimension, GraphProto, ValueInfoProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::InferenceFact;
use tract_onnx::tract_hir::tract_ndarray::{ArrayD, IxDyn};

/// Run states an idle model keeps, at most (one per request running at
/// once is enough).
const MAX_IDLE_STATES: usize = 16;

/// A loaded ONNX graph.
pub struct OnnxModel {
    signature: Signature,
    plan: Arc<TypedRunnableModel>,
    /// Run states kept for reuse: making one (a slot per node, each op's
    /// state) costs as much as running a small model.
    idle_states: Mutex<Vec<TypedSimpleState>>,
    output_names: Vec<String>,
    class_labels: Option<Vec<String>>,
    explainer: explain::Explainer,
    memory: usize,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel").field("signature", &self.signature).field("class_labels", &self.class_labels).finish_non_exhaustive()
    }
}

fn load_error(e: &TractError) -> RuntimeError {
    RuntimeError::Load(format!("{e:#}"))
}

fn dtype(elem_type: i32) -> Option<DataType> {
    Some(match elem_type {
        1 => DataType::Float32,
        11 => DataType::Float64,
        6 => DataType::Int32,
        7 => DataType::Int64,
        8 => DataType::String,
        9 => DataType::Bool,
        _ => return None,
    })
}

fn datum_type(dtype: DataType) -> DatumType {
    match dtype {
        DataType::Float32 => DatumType::F32,
        DataType::Float64 => DatumType::F64,
        DataType::Int32 => DatumType::I32,
        DataType::Int64 => DatumType::I64,
        DataType::Bool => DatumType::Bool,
        DataType::String | DataType::Bytes | DataType::Datetime => DatumType::String,
    }
}

/// A graph input or output as a signature field: the declared element
/// type and the dimensions after the batch axis (-1 when symbolic).
fn field(info: &ValueInfoProto, allow_nan: bool) -> Result<SignatureField, RuntimeError> {
    let Some(Value::TensorType(t)) = info.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(RuntimeError::Load(format!("`{}` is not a tensor", info.name)));
    };
    let dt = dtype(t.elem_type).ok_or_else(|| {
        RuntimeError::Load(format!("`{}` has element type {}, which modelops does not serve", info.name, t.elem_type))
    })?;
    let shape = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .skip(1)
                .map(|d| match d.value {
                    Some(dimension::Value::DimValue(v)) if v >= 0 => v,
                    _ => -1,
                })
                .collect()
        })
        .unwrap_or_default();
    let allow_nan = allow_nan && matches!(dt, DataType::Float32 | DataType::Float64);
    Ok(SignatureField { name: info.name.clone(), dtype: dt, shape, allow_nan })
}

fn graph_inputs(graph: &GraphProto) -> impl Iterator<Item = &ValueInfoProto> {
    graph.input.iter().filter(|i| !graph.initializer.iter().any(|init| init.name == i.name))
}

impl OnnxModel {
    /// Loads an ONNX artifact. Fails with [`RuntimeError::Load`] naming the
    /// unsupported operator or the malformed part; never panics.
    pub fn load(artifact: &[u8]) -> Result<Self, RuntimeError> {
        catch_unwind(AssertUnwindSafe(|| Self::load_unguarded(artifact))).unwrap_or_else(|_| {
            Err(RuntimeError::Load("the ONNX graph could not be prepared (tract failed on it): the model is malformed or uses an unsupported construct".into()))
        })
    }

    fn load_unguarded(artifact: &[u8]) -> Result<Self, RuntimeError> {
        let mut onnx = tract_onnx::onnx();
        ml::register(&mut onnx.op_register);
        let mut proto = onnx
            .proto_model_for_read(&mut &artifact[..])
            .map_err(|e| RuntimeError::Load(format!("not a valid ONNX model (protobuf): {e:#}")))?;
        let rewritten = rewrite::rewrite(&mut proto, &onnx.op_register)?;
        let graph = proto.graph.as_ref().ok_or_else(|| RuntimeError::Load("the ONNX model has no graph".into()))?;
        let handles_nan = graph.node.iter().any(|n| n.op_type.starts_with("TreeEnsemble") || n.op_type == "Imputer");
        let inputs = graph_inputs(graph).map(|i| field(i, handles_nan)).collect::<Result<Vec<_>, _>>()?;
        let explainer = explain::Explainer::from_graph(graph);
        let class_labels = rewritten.class_labels.clone().or_else(|| explain::classifier_labels(graph));

        let mut model = onnx.model_for_proto_model(&proto).map_err(|e| load_error(&e))?;
        let batch = model.symbols.sym("N");
        for (i, f) in inputs.iter().enumerate() {
            let mut shape: TVec<TDim> = tvec![batch.to_dim()];
            for &d in &f.shape {
                shape.push(if d < 0 { model.symbols.new_with_prefix("d").to_dim() } else { (d as usize).to_dim() });
            }
            model.set_input_fact(i, InferenceFact::dt_shape(datum_type(f.dtype), shape)).map_err(|e| load_error(&e))?;
        }
        let typed = model.into_optimized().map_err(|e| load_error(&e))?;
        let mut outputs = Vec::new();
        for (i, info) in graph.output.iter().enumerate() {
            let declared = field(info, false)?;
            let fact = typed.output_fact(i).map_err(|e| load_error(&e))?;
            // The declared shape when there is one, else what tract inferred.
            let has_shape = matches!(info.r#type.as_ref().and_then(|t| t.value.as_ref()), Some(Value::TensorType(t)) if t.shape.is_some());
            let shape = if has_shape {
                declared.shape
            } else {
                fact.shape.iter().skip(1).map(|d| d.to_i64().unwrap_or(-1)).collect()
            };
            outputs.push(SignatureField { shape, ..declared });
        }
        let output_names = outputs.iter().map(|o| o.name.clone()).collect();
        let plan = typed.into_runnable().map_err(|e| load_error(&e))?;
        Ok(OnnxModel {
            signature: Signature { inputs, outputs },
            plan,
            idle_states: Mutex::new(Vec::new()),
            output_names,
            class_labels,
            explainer,
            memory: artifact.len().saturating_mul(3).saturating_add(64 * 1024),
        })
    }

    /// The class labels naming the columns of a classifier's probability
    /// output (the ZipMap's keys, or the classifier operator's labels), as
    /// text; `None` for regressors and graphs without a classifier.
    pub fn class_labels(&self) -> Option<&[String]> {
        self.class_labels.as_deref()
    }

    /// Runs the plan on checked inputs, in the signature's order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        let rows = inputs.first().map_or(0, |t| t.shape.first().copied().unwrap_or(0));
        if rows == 0 {
            return Ok(self.empty_outputs());
        }
        catch_unwind(AssertUnwindSafe(|| self.run_unguarded(inputs)))
            .unwrap_or_else(|_| Err(RuntimeError::Internal("the ONNX plan panicked".into())))
    }

    fn empty_outputs(&self) -> Vec<Tensor> {
        self.signature
            .outputs
            .iter()
            .map(|f| {
                let shape = std::iter::once(0).chain(f.shape.iter().map(|&d| usize::try_from(d).unwrap_or(0))).collect();
                let data = match f.dtype {
                    DataType::Float32 => TensorData::Float32(vec![]),
                    DataType::Float64 => TensorData::Float64(vec![]),
                    DataType::Int32 => TensorData::Int32(vec![]),
                    DataType::Int64 => TensorData::Int64(vec![]),
                    DataType::Bool => TensorData::Bool(vec![]),
                    DataType::String | DataType::Bytes | DataType::Datetime => TensorData::String(vec![]),
                };
                Tensor::new(f.name.clone(), shape, data)
            })
            .collect()
    }

    fn run_unguarded(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        let internal = |e: TractError| RuntimeError::Internal(format!("the ONNX graph failed: {e:#}"));
        let values = inputs.iter().map(to_tract).collect::<TractResult<TVec<TValue>>>().map_err(internal)?;
        // Never waits for the pool: a busy one means another state.
        let idle = self.idle_states.try_lock().ok().and_then(|mut idle| idle.pop());
        let mut state = match idle {
            Some(state) => state,
            None => self.plan.spawn().map_err(internal)?,
        };
        // A run that fails (or panics) drops its state rather than reuse
        // one left mid-turn.
        let outputs = state.run(values).map_err(|e| match e.chain().find_map(|c| c.downcast_ref::<ml::categorical::UnknownCategory>()) {
            Some(unknown) => RuntimeError::input(format!("inputs.{}", unknown.input), format!("category `{}` is not one the model was trained on (known: {})", unknown.value, unknown.known)),
            None => internal(e),
        })?;
        if let Ok(mut idle) = self.idle_states.try_lock() {
            if idle.len() < MAX_IDLE_STATES {
                idle.push(state);
            }
        }
        outputs
            .into_iter()
            .zip(&self.output_names)
            .map(|(value, name)| from_tract(name, &value).map_err(internal))
            .collect()
    }
}

fn array<T: Datum>(shape: &[usize], data: Vec<T>) -> TractResult<TValue> {
    Ok(ArrayD::from_shape_vec(IxDyn(shape), data)?.into_tensor().into_tvalue())
}

fn to_tract(t: &crate::Tensor) -> TractResult<TValue> {
    match &t.data {
        TensorData::Float32(v) => Ok(TractTensor::from_shape(&t.shape, v)?.into_tvalue()),
        TensorData::Float64(v) => Ok(TractTensor::from_shape(&t.shape, v)?.into_tvalue()),
        TensorData::Int32(v) => Ok(TractTensor::from_shape(&t.shape, v)?.into_tvalue()),
        TensorData::Int64(v) => Ok(TractTensor::from_shape(&t.shape, v)?.into_tvalue()),
        TensorData::Bool(v) => Ok(TractTensor::from_shape(&t.shape, v)?.into_tvalue()),
        TensorData::String(v) => array(&t.shape, v.clone()),
    }
}

// `Tensor` here is tract's; ours is spelled out.
use tract_onnx::prelude::Tensor as TractTensor;

fn from_tract(name: &str, value: &TractTensor) -> TractResult<crate::Tensor> {
    let shape = value.shape().to_vec();
    let plain = value.try_as_plain_ram()?;
    let data = match value.datum_type() {
        DatumType::F32 => TensorData::Float32(plain.as_slice::<f32>()?.to_vec()),
        DatumType::F64 => TensorData::Float64(plain.as_slice::<f64>()?.to_vec()),
        DatumType::I64 => TensorData::Int64(plain.as_slice::<i64>()?.to_vec()),
        DatumType::I32 => TensorData::Int32(plain.as_slice::<i32>()?.to_vec()),
        DatumType::Bool => TensorData::Bool(plain.as_slice::<bool>()?.to_vec()),
        DatumType::String => TensorData::String(plain.as_slice::<String>()?.to_vec()),
        // tract carries some int64 tensors as symbolic dimensions (TDim).
        DatumType::TDim | DatumType::I8 | DatumType::I16 | DatumType::U8 | DatumType::U16 | DatumType::U32 => {
            TensorData::Int64(value.cast_to::<i64>()?.try_as_plain_ram()?.as_slice::<i64>()?.to_vec())
        }
        _ => TensorData::Float32(value.cast_to::<f32>()?.try_as_plain_ram()?.as_slice::<f32>()?.to_vec()),
    };
    Ok(crate::Tensor::new(name, shape, data))
}

#[async_trait]
impl LoadedModel for OnnxModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn platform(&self) -> &'static str {
        "onnx_onnxv1"
    }
    fn memory_bytes(&self) -> usize {
        self.memory
    }
    async fn predict(&self, request: PredictRequest) -> Result<Prediction, RuntimeError> {
        let explanations = if request.explain { Some(self.explainer.explain(&request.inputs, request.rows)?) } else { None };
        let outputs = self.run(&request.inputs)?;
        Ok(Prediction { outputs, explanations, usage: None })
    }
}
