//! The native API's rows and columns ↔ tensors, by the version's signature.

use crate::error::ApiError;
use modelops_core::version::{Signature, SignatureField};
use modelops_serving::{Tensor, TensorData};
use serde_json::{Map, Value};

/// Builds one tensor per signature input from records (`rows`) or columns.
pub fn to_tensors(signature: &Signature, rows: Option<Vec<Value>>, columns: Option<Map<String, Value>>) -> Result<Vec<Tensor>, ApiError> {
    match (rows, columns) {
        (Some(_), Some(_)) => Err(ApiError::invalid("rows", "give `rows` or `columns`, not both")),
        (None, None) => Err(ApiError::invalid("rows", "missing: give `rows` (one object per row) or `columns`")),
        (Some(rows), None) => from_rows(signature, &rows),
        (None, Some(columns)) => from_columns(signature, &columns),
    }
}

fn from_rows(signature: &Signature, rows: &[Value]) -> Result<Vec<Tensor>, ApiError> {
    let single = match signature.inputs.as_slice() {
        [only] if !only.shape.is_empty() => Some(only),
        _ => None,
    };
    let mut builders: Vec<Builder> = signature.inputs.iter().map(|f| Builder::new(f, rows.len())).collect();
    for (r, row) in rows.iter().enumerate() {
        match row {
            Value::Object(record) => {
                if let Some(extra) = record.keys().find(|k| !signature.inputs.iter().any(|f| &f.name == *k)) {
                    let names: Vec<&str> = signature.inputs.iter().map(|f| f.name.as_str()).collect();
                    return Err(ApiError::invalid(
                        format!("rows[{r}].{extra}"),
                        format!("is not an input of the model, which takes {}", names.join(", ")),
                    ));
                }
                for builder in &mut builders {
                    let value = record.get(&builder.field.name).ok_or_else(|| {
                        ApiError::invalid(format!("rows[{r}].{}", builder.field.name), "missing: the model needs this input")
                    })?;
                    builder.push(&format!("rows[{r}].{}", builder.field.name), value)?;
                }
            }
            Value::Array(_) if single.is_some() => {
                builders[0].push(&format!("rows[{r}]"), row)?;
            }
            _ => {
                return Err(ApiError::invalid(
                    format!("rows[{r}]"),
                    "must be an object keyed by input name (or an array, for a model with one vector input)",
                ))
            }
        }
    }
    builders.into_iter().map(Builder::finish).collect()
}

fn from_columns(signature: &Signature, columns: &Map<String, Value>) -> Result<Vec<Tensor>, ApiError> {
    if let Some(extra) = columns.keys().find(|k| !signature.inputs.iter().any(|f| &f.name == *k)) {
        return Err(ApiError::invalid(format!("columns.{extra}"), "is not an input of the model"));
    }
    let mut rows = None;
    let mut tensors = Vec::with_capacity(signature.inputs.len());
    for field in &signature.inputs {
        let name = format!("columns.{}", field.name);
        let values = match columns.get(&field.name) {
            Some(Value::Array(values)) => values,
            Some(_) => return Err(ApiError::invalid(name, "must be an array with one value per row")),
            None => return Err(ApiError::invalid(name, "missing: the model needs this input")),
        };
        match rows {
            None => rows = Some(values.len()),
            Some(n) if n != values.len() => {
                return Err(ApiError::invalid(name, format!("has {} values where other columns have {n}", values.len())))
            }
            Some(_) => {}
        }
        let mut builder = Builder::new(field, values.len());
        for (r, value) in values.iter().enumerate() {
            builder.push(&format!("{name}[{r}]"), value)?;
        }
        tensors.push(builder.finish()?);
    }
    Ok(tensors)
}

struct Builder<'a> {
    field: &'a SignatureField,
    rows: usize,
    /// Elements per row, fixed by the first row when the signature has `-1`.
    width: Option<Vec<usize>>,
    data: TensorData,
}

impl<'a> Builder<'a> {
    fn new(field: &'a SignatureField, rows: usize) -> Self {
        let data = TensorData::empty(field.dtype);
        Self { field, rows, width: None, data }
    }

    fn push(&mut self, at: &str, value: &Value) -> Result<(), ApiError> {
        if self.field.shape.is_empty() {
            return self.element(at, value);
        }
        // A lone value for an input of one element per row (`[1]`, as
        // scikit-learn exports declare each column of a table): the natural
        // record is `{"region": "north"}`, not `{"region": ["north"]}`.
        if !value.is_array() && self.field.shape.iter().all(|&d| d == 1) {
            let dims = vec![1; self.field.shape.len()];
            match &self.width {
                Some(w) if *w != dims => return Err(ApiError::invalid(at, format!("is one value where earlier rows have shape {w:?}"))),
                _ => self.width = Some(dims),
            }
            return self.element(at, value);
        }
        let mut dims = Vec::new();
        let mut flat = Vec::new();
        shape_of(at, value, &mut dims, &mut flat, 0)?;
        let fits = dims.len() == self.field.shape.len()
            && dims.iter().zip(&self.field.shape).all(|(d, want)| *want == -1 || i64::try_from(*d).is_ok_and(|d| d == *want));
        if !fits {
            return Err(ApiError::invalid(at, format!("has shape {dims:?}; the signature's is {:?}", self.field.shape)));
        }
        match &self.width {
            None => self.width = Some(dims),
            Some(w) if *w != dims => return Err(ApiError::invalid(at, format!("has shape {dims:?} where earlier rows have {w:?}"))),
            Some(_) => {}
        }
        for (i, v) in flat.into_iter().enumerate() {
            self.element(&format!("{at}[{i}]"), v)?;
        }
        Ok(())
    }

    #[allow(clippy::cast_possible_truncation)]
    fn element(&mut self, at: &str, value: &Value) -> Result<(), ApiError> {
        let bad = |what: &str| ApiError::invalid(at, format!("`{value}` is not {what}"));
        let float = || match value {
            Value::Null => Ok(f64::NAN),
            Value::Number(n) => n.as_f64().ok_or_else(|| bad("a number")),
            _ => Err(bad("a number")),
        };
        match &mut self.data {
            TensorData::Bool(v) => v.push(value.as_bool().ok_or_else(|| bad("true or false"))?),
            TensorData::Int32(v) => v.push(value.as_i64().and_then(|x| i32::try_from(x).ok()).ok_or_else(|| bad("a 32-bit integer"))?),
            TensorData::Int64(v) => v.push(value.as_i64().ok_or_else(|| bad("an integer"))?),
            TensorData::Float32(v) => v.push(float()? as f32),
            TensorData::Float64(v) => v.push(float()?),
            TensorData::String(v) => v.push(value.as_str().ok_or_else(|| bad("a string"))?.to_string()),
        }
        Ok(())
    }

    fn finish(self) -> Result<Tensor, ApiError> {
        let mut shape = vec![self.rows];
        // No rows: the row shape is the signature's (a variable dimension empty).
        let width = self.width.unwrap_or_else(|| self.field.shape.iter().map(|d| usize::try_from(*d).unwrap_or(0)).collect());
        shape.extend(width);
        Ok(Tensor::new(self.field.name.clone(), shape, self.data))
    }
}

fn shape_of<'v>(at: &str, value: &'v Value, dims: &mut Vec<usize>, flat: &mut Vec<&'v Value>, depth: usize) -> Result<(), ApiError> {
    if depth > 8 {
        return Err(ApiError::invalid(at, "nests arrays deeper than 8 levels"));
    }
    match value {
        Value::Array(items) => {
            if dims.len() == depth {
                dims.push(items.len());
            } else if dims[depth] != items.len() {
                return Err(ApiError::invalid(at, "is a ragged array (rows of different lengths)"));
            }
            for item in items {
                shape_of(at, item, dims, flat, depth + 1)?;
            }
            Ok(())
        }
        other => {
            if depth != dims.len() {
                return Err(ApiError::invalid(at, "is a ragged array (values and arrays mixed)"));
            }
            flat.push(other);
            Ok(())
        }
    }
}

/// One object per row keyed by output name: a scalar where a row holds one
/// element of a 1-D output, else the row's elements.
pub fn to_records(outputs: &[Tensor], rows: usize) -> Vec<Map<String, Value>> {
    (0..rows)
        .map(|r| {
            outputs
                .iter()
                .map(|t| {
                    let width = t.row_width();
                    let value = if t.shape.len() == 1 {
                        t.data.json_at(r)
                    } else {
                        Value::Array((r * width..(r + 1) * width).filter(|i| *i < t.data.len()).map(|i| t.data.json_at(i)).collect())
                    };
                    (t.name.clone(), value)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use modelops_core::version::DataType;
    use serde_json::json;

    fn sig(fields: &[(&str, DataType, &[i64])]) -> Signature {
        Signature {
            inputs: fields.iter().map(|(n, t, s)| SignatureField { name: (*n).into(), dtype: *t, shape: s.to_vec(), allow_nan: false }).collect(),
            outputs: vec![],
        }
    }

    fn rows(v: Value) -> Option<Vec<Value>> {
        Some(v.as_array().unwrap().clone())
    }

    #[test]
    fn records_columns_and_vectors_become_tensors() {
        let s = sig(&[("age", DataType::Int64, &[]), ("income", DataType::Float64, &[])]);
        let t = to_tensors(&s, rows(json!([{"age": 30, "income": 1.5}, {"age": 40, "income": null}])), None).unwrap();
        assert_eq!(t[0].data, TensorData::Int64(vec![30, 40]));
        let TensorData::Float64(income) = &t[1].data else { panic!() };
        assert!(income[0] == 1.5 && income[1].is_nan());
        let c = to_tensors(&s, None, Some(json!({"age": [1], "income": [2.0]}).as_object().unwrap().clone())).unwrap();
        assert_eq!(c[0].shape, vec![1]);
        let v = sig(&[("X", DataType::Float32, &[3])]);
        let t = to_tensors(&v, rows(json!([[1, 2, 3], [4, 5, 6]])), None).unwrap();
        assert_eq!(t[0].shape, vec![2, 3]);
        let empty = to_tensors(&v, rows(json!([])), None).unwrap();
        assert_eq!(empty[0].shape, vec![0, 3]);
    }

    #[test]
    fn a_lone_value_fills_an_input_of_one_element_per_row() {
        // skl2onnx declares each column of a table as an [N, 1] input.
        let s = sig(&[("region", DataType::String, &[1]), ("income", DataType::Float32, &[1])]);
        let t = to_tensors(&s, rows(json!([{"region": "north", "income": 1.5}, {"region": ["south"], "income": [2]}])), None).unwrap();
        assert_eq!((t[0].shape.clone(), t[0].data.clone()), (vec![2, 1], TensorData::String(vec!["north".into(), "south".into()])));
        assert_eq!(t[1].shape, vec![2, 1]);
        let c = to_tensors(&s, None, Some(json!({"region": ["east"], "income": [3.0]}).as_object().unwrap().clone())).unwrap();
        assert_eq!(c[0].shape, vec![1, 1]);
        let err = to_tensors(&s, rows(json!([{"region": 7, "income": 1.0}])), None).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("rows[0].region"));
        let wide = sig(&[("X", DataType::Float32, &[3])]);
        let err = to_tensors(&wide, rows(json!([{"X": 1.0}])), None).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("rows[0].X"), "a lone value fills only a one-element input");
    }

    #[test]
    fn mistakes_name_the_row_and_input() {
        let s = sig(&[("age", DataType::Int64, &[]), ("income", DataType::Float64, &[])]);
        let field = |r: Value| to_tensors(&s, rows(r), None).unwrap_err().field.unwrap();
        assert_eq!(field(json!([{"age": 1, "income": 1.0}, {"age": 2}])), "rows[1].income");
        assert_eq!(field(json!([{"age": 1, "income": 1.0, "zip": "x"}])), "rows[0].zip");
        assert_eq!(field(json!([{"age": 1.5, "income": 1.0}])), "rows[0].age");
        assert_eq!(field(json!([7])), "rows[0]");
        let v = sig(&[("X", DataType::Float32, &[3])]);
        let err = to_tensors(&v, rows(json!([[1, 2, 3], [4, 5]])), None).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("rows[1]"));
        let err = to_tensors(&s, None, Some(json!({"age": [1, 2], "income": [1.0]}).as_object().unwrap().clone())).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("columns.income"));
    }
}
