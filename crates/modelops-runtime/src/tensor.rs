//! Batches: named, typed, row-major tensors whose first dimension is the
//! row, and the check of a batch against a version's signature.

use crate::error::RuntimeError;
use modelops_core::version::{DataType, Signature, SignatureField};

/// The elements of a tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    /// OIP `BYTES` holding UTF-8 text.
    String(Vec<String>),
}

impl TensorData {
    /// No elements, of the type a signature field of `dtype` holds.
    pub fn empty(dtype: DataType) -> Self {
        match dtype {
            DataType::Bool => Self::Bool(vec![]),
            DataType::Int32 => Self::Int32(vec![]),
            DataType::Int64 => Self::Int64(vec![]),
            DataType::Float32 => Self::Float32(vec![]),
            DataType::Float64 => Self::Float64(vec![]),
            DataType::String | DataType::Bytes | DataType::Datetime => Self::String(vec![]),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Bool(v) => v.len(),
            Self::Int32(v) => v.len(),
            Self::Int64(v) => v.len(),
            Self::Float32(v) => v.len(),
            Self::Float64(v) => v.len(),
            Self::String(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DataType {
        match self {
            Self::Bool(_) => DataType::Bool,
            Self::Int32(_) => DataType::Int32,
            Self::Int64(_) => DataType::Int64,
            Self::Float32(_) => DataType::Float32,
            Self::Float64(_) => DataType::Float64,
            Self::String(_) => DataType::String,
        }
    }

    /// Element `i` as JSON (NaN and infinities as `null`, which JSON lacks).
    pub fn json_at(&self, i: usize) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::Bool(v) => Value::Bool(v[i]),
            Self::Int32(v) => Value::from(v[i]),
            Self::Int64(v) => Value::from(v[i]),
            Self::Float32(v) => serde_json::Number::from_f64(f64::from(v[i])).map_or(Value::Null, Value::Number),
            Self::Float64(v) => serde_json::Number::from_f64(v[i]).map_or(Value::Null, Value::Number),
            Self::String(v) => Value::String(v[i].clone()),
        }
    }

    /// Element `i` as a double, for numeric tensors.
    pub fn f64_at(&self, i: usize) -> Option<f64> {
        match self {
            Self::Int32(v) => Some(f64::from(v[i])),
            #[allow(clippy::cast_precision_loss)]
            Self::Int64(v) => Some(v[i] as f64),
            Self::Float32(v) => Some(f64::from(v[i])),
            Self::Float64(v) => Some(v[i]),
            Self::Bool(_) | Self::String(_) => None,
        }
    }
}

/// The OIP name of a datatype (`FP32`, `INT64`, `BYTES`, …).
pub fn oip_datatype(dtype: DataType) -> &'static str {
    match dtype {
        DataType::Bool => "BOOL",
        DataType::Int32 => "INT32",
        DataType::Int64 => "INT64",
        DataType::Float32 => "FP32",
        DataType::Float64 => "FP64",
        DataType::String | DataType::Bytes | DataType::Datetime => "BYTES",
    }
}

/// A named tensor; `shape[0]` is the number of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: TensorData) -> Self {
        Self { name: name.into(), shape, data }
    }

    /// Elements per row (the product of the dimensions after the first).
    pub fn row_width(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
}

/// Checks `inputs` against the signature's inputs and returns them in the
/// signature's order with the signature's datatypes, and the batch size.
///
/// Refuses, naming the tensor: a missing or unknown input, a shape whose
/// element count differs from its data, a row shape other than the
/// signature's (a scalar feature may come as `[rows]` or `[rows, 1]`),
/// differing batch sizes, a datatype that does not convert without loss
/// (integers widen to floats, float32 and float64 convert both ways, int32
/// and int64 both ways within range), and NaN where `allow_nan` is false.
pub fn check_inputs(signature: &Signature, inputs: Vec<Tensor>) -> Result<(Vec<Tensor>, usize), RuntimeError> {
    let mut by_name: Vec<Option<Tensor>> = Vec::new();
    by_name.resize_with(signature.inputs.len(), || None);
    for tensor in inputs {
        let Some(position) = signature.inputs.iter().position(|f| f.name == tensor.name) else {
            let expected: Vec<&str> = signature.inputs.iter().map(|f| f.name.as_str()).collect();
            return Err(RuntimeError::input(
                format!("inputs.{}", tensor.name),
                format!("the model has no such input; it takes {}", expected.join(", ")),
            ));
        };
        if by_name[position].is_some() {
            return Err(RuntimeError::input(format!("inputs.{}", tensor.name), "given twice"));
        }
        by_name[position] = Some(tensor);
    }
    let mut rows = None;
    let mut checked = Vec::with_capacity(by_name.len());
    for (field, tensor) in signature.inputs.iter().zip(by_name) {
        let Some(tensor) = tensor else {
            return Err(RuntimeError::input(format!("inputs.{}", field.name), "missing: the model needs this input"));
        };
        let tensor = check_one(field, tensor)?;
        let n = tensor.shape[0];
        match rows {
            None => rows = Some(n),
            Some(r) if r != n => {
                return Err(RuntimeError::input(format!("inputs.{}", field.name), format!("has {n} rows where the other inputs have {r}")))
            }
            Some(_) => {}
        }
        checked.push(tensor);
    }
    Ok((checked, rows.unwrap_or(0)))
}

fn check_one(field: &SignatureField, mut tensor: Tensor) -> Result<Tensor, RuntimeError> {
    let name = format!("inputs.{}", field.name);
    let elements: usize = tensor.shape.iter().product();
    if tensor.shape.is_empty() {
        return Err(RuntimeError::input(name, "shape is empty: the first dimension is the number of rows"));
    }
    if elements != tensor.data.len() {
        return Err(RuntimeError::input(
            name,
            format!("shape {:?} holds {elements} elements but {} were given", tensor.shape, tensor.data.len()),
        ));
    }
    // The row shape: a scalar feature may arrive as [rows, 1].
    let row_shape = &tensor.shape[1..];
    let expected = &field.shape;
    let matches = row_shape.len() == expected.len()
        && row_shape.iter().zip(expected).all(|(got, want)| *want == -1 || i64::try_from(*got).is_ok_and(|g| g == *want));
    if !matches {
        if expected.is_empty() && row_shape == [1] {
            tensor.shape.truncate(1);
        } else {
            let want: Vec<String> = std::iter::once("rows".to_string())
                .chain(expected.iter().map(|d| if *d == -1 { "any".to_string() } else { d.to_string() }))
                .collect();
            return Err(RuntimeError::input(name, format!("shape {:?} does not match the signature's [{}]", tensor.shape, want.join(", "))));
        }
    }
    tensor.data = convert(&name, tensor.data, field.dtype)?;
    if !field.allow_nan {
        let nan_at = match &tensor.data {
            TensorData::Float32(v) => v.iter().position(|x| x.is_nan()),
            TensorData::Float64(v) => v.iter().position(|x| x.is_nan()),
            _ => None,
        };
        if let Some(i) = nan_at {
            let width = tensor.row_width().max(1);
            return Err(RuntimeError::input(
                name,
                format!("row {} holds NaN (a missing value) and the signature does not allow missing values", i / width),
            ));
        }
    }
    tensor.name = field.name.clone();
    Ok(tensor)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn convert(name: &str, data: TensorData, want: DataType) -> Result<TensorData, RuntimeError> {
    use TensorData as T;
    let got = data.dtype();
    let refuse = || {
        RuntimeError::input(
            name,
            format!("datatype {} cannot be used where the signature says {}", oip_datatype(got), oip_datatype(want)),
        )
    };
    Ok(match (data, want) {
        (d @ T::Bool(_), DataType::Bool)
        | (d @ T::Int32(_), DataType::Int32)
        | (d @ T::Int64(_), DataType::Int64)
        | (d @ T::Float32(_), DataType::Float32)
        | (d @ T::Float64(_), DataType::Float64)
        | (d @ T::String(_), DataType::String | DataType::Bytes | DataType::Datetime) => d,
        (T::Int32(v), DataType::Int64) => T::Int64(v.into_iter().map(i64::from).collect()),
        (T::Int64(v), DataType::Int32) => T::Int32(
            v.into_iter()
                .map(|x| i32::try_from(x).map_err(|_| RuntimeError::input(name, format!("{x} does not fit in INT32"))))
                .collect::<Result<_, _>>()?,
        ),
        (T::Int32(v), DataType::Float32) => T::Float32(v.into_iter().map(|x| x as f32).collect()),
        (T::Int64(v), DataType::Float32) => T::Float32(v.into_iter().map(|x| x as f32).collect()),
        (T::Int32(v), DataType::Float64) => T::Float64(v.into_iter().map(f64::from).collect()),
        (T::Int64(v), DataType::Float64) => T::Float64(v.into_iter().map(|x| x as f64).collect()),
        (T::Float64(v), DataType::Float32) => T::Float32(v.into_iter().map(|x| x as f32).collect()),
        (T::Float32(v), DataType::Float64) => T::Float64(v.into_iter().map(f64::from).collect()),
        _ => return Err(refuse()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(fields: &[(&str, DataType, &[i64])]) -> Signature {
        Signature {
            inputs: fields
                .iter()
                .map(|(n, t, s)| SignatureField { name: (*n).into(), dtype: *t, shape: s.to_vec(), allow_nan: false })
                .collect(),
            outputs: vec![],
        }
    }

    #[test]
    fn orders_converts_and_counts_rows() {
        let s = sig(&[("x", DataType::Float32, &[2]), ("age", DataType::Int64, &[])]);
        let (t, rows) = check_inputs(
            &s,
            vec![
                Tensor::new("age", vec![2, 1], TensorData::Int32(vec![30, 40])),
                Tensor::new("x", vec![2, 2], TensorData::Float64(vec![1.0, 2.0, 3.0, 4.0])),
            ],
        )
        .unwrap();
        assert_eq!(rows, 2);
        assert_eq!(t[0].data, TensorData::Float32(vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(t[1].shape, vec![2]);
        assert_eq!(t[1].data, TensorData::Int64(vec![30, 40]));
    }

    #[test]
    fn names_the_tensor_at_fault() {
        let s = sig(&[("x", DataType::Float32, &[3])]);
        let err = |inputs| check_inputs(&s, inputs).unwrap_err().to_string();
        assert!(err(vec![]).contains("inputs.x: missing"));
        assert!(err(vec![Tensor::new("y", vec![1], TensorData::Float32(vec![1.0]))]).contains("inputs.y: the model has no such input"));
        assert!(err(vec![Tensor::new("x", vec![1, 2], TensorData::Float32(vec![1.0, 2.0]))]).contains("does not match the signature's [rows, 3]"));
        assert!(err(vec![Tensor::new("x", vec![1, 3], TensorData::Float32(vec![1.0]))]).contains("holds 3 elements but 1 were given"));
        assert!(err(vec![Tensor::new("x", vec![1, 3], TensorData::String(vec!["a".into(); 3]))]).contains("datatype BYTES cannot be used"));
        assert!(err(vec![Tensor::new("x", vec![1, 3], TensorData::Float32(vec![1.0, f32::NAN, 2.0]))]).contains("row 0 holds NaN"));
    }
}
