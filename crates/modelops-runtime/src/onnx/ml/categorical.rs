//! The category encoders exporters put in front of a model trained on a
//! table: `OneHotEncoder` (scikit-learn's `OneHotEncoder`, one indicator
//! column per category) and `LabelEncoder` (scikit-learn's `OrdinalEncoder`
//! and `LabelEncoder`: a lookup from keys to values). Both read string or
//! integer categories, so unlike the other kernels they look at the input's
//! datum type instead of casting it to `f32`.

use super::attrs::{tensor_f64, tensor_i64, Attrs};
use super::{Kernel, OutShape};
use std::collections::HashMap;
use tract_onnx::pb::{NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{ArrayD, IxDyn};

/// A category the model was not trained on, where the export says to refuse
/// it (`OneHotEncoder` with `zeros = 0`). The runtime answers it as the
/// request's mistake, naming the input, not as a failure of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input}: category `{value}` is not one the model was trained on (known: {known})")]
pub struct UnknownCategory {
    pub input: String,
    pub value: String,
    pub known: String,
}

/// The categories a column may hold, as the export lists them.
#[derive(Debug)]
enum Categories {
    Strings(HashMap<String, usize>),
    Ints(HashMap<i64, usize>),
}

fn positions<K: std::hash::Hash + Eq + Clone>(keys: &[K]) -> HashMap<K, usize> {
    let mut map = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        // The first occurrence wins, as in onnxruntime.
        map.entry(k.clone()).or_insert(i);
    }
    map
}

fn listing<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let all: Vec<String> = items.map(|x| x.to_string()).collect();
    if all.len() > 8 {
        format!("{}, … ({} in all)", all[..8].join(", "), all.len())
    } else {
        all.join(", ")
    }
}

/// The input as integer categories: integers as they are, floats truncated
/// towards zero as onnxruntime does (a float column of codes).
fn int_categories(input: &Tensor) -> TractResult<std::borrow::Cow<'_, [i64]>> {
    Ok(match input.datum_type() {
        DatumType::I64 => std::borrow::Cow::Borrowed(input.try_as_plain_ram()?.as_slice::<i64>()?),
        DatumType::F32 => input.try_as_plain_ram()?.as_slice::<f32>()?.iter().map(|&x| x as i64).collect(),
        DatumType::F64 => input.try_as_plain_ram()?.as_slice::<f64>()?.iter().map(|&x| x as i64).collect(),
        _ => input.cast_to::<i64>()?.try_as_plain_ram()?.as_slice::<i64>()?.to_vec().into(),
    })
}

#[derive(Debug)]
pub struct OneHotEncoder {
    input: String,
    categories: Categories,
    count: usize,
    /// `zeros = 1`: an unknown category gives a row of zeros; `0`: an error.
    zeros_for_unknown: bool,
}

impl OneHotEncoder {
    pub fn parse(node: &NodeProto) -> TractResult<OneHotEncoder> {
        let a = Attrs(node);
        let strings = a.strings("cats_strings").filter(|s| !s.is_empty());
        let ints = a.ints("cats_int64s").filter(|s| !s.is_empty());
        let (categories, count) = match (strings, ints) {
            (Some(s), None) => (Categories::Strings(positions(&s)), s.len()),
            (None, Some(i)) => (Categories::Ints(positions(i)), i.len()),
            (Some(_), Some(_)) => return Err(a.err("cats_strings", "both `cats_strings` and `cats_int64s` are given; exactly one is allowed")),
            (None, None) => return Err(a.err("cats_strings", "missing (neither `cats_strings` nor `cats_int64s` lists a category)")),
        };
        let zeros_for_unknown = match a.int("zeros").unwrap_or(1) {
            0 => false,
            1 => true,
            other => return Err(a.err("zeros", format!("must be 0 or 1, got {other}"))),
        };
        Ok(OneHotEncoder { input: node.input.first().cloned().unwrap_or_default(), categories, count, zeros_for_unknown })
    }

    fn unknown(&self, value: String) -> TractError {
        let known = match &self.categories {
            Categories::Strings(m) => {
                let mut k: Vec<_> = m.iter().map(|(s, &i)| (i, s)).collect();
                k.sort();
                listing(k.into_iter().map(|(_, s)| s))
            }
            Categories::Ints(m) => {
                let mut k: Vec<_> = m.iter().map(|(v, &i)| (i, *v)).collect();
                k.sort();
                listing(k.into_iter().map(|(_, v)| v))
            }
        };
        UnknownCategory { input: self.input.clone(), value, known }.into()
    }
}

impl Kernel for OneHotEncoder {
    fn name(&self) -> &'static str {
        "OneHotEncoder"
    }
    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        vec![(DatumType::F32, OutShape::InputThen(self.count))]
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let n = input.len();
        let mut y = vec![0f32; n * self.count];
        let mut set = |i: usize, hit: Option<usize>, shown: &dyn Fn() -> String| -> TractResult<()> {
            match hit {
                Some(c) => y[i * self.count + c] = 1.0,
                None if self.zeros_for_unknown => {}
                None => return Err(self.unknown(shown())),
            }
            Ok(())
        };
        match (&self.categories, input.datum_type()) {
            (Categories::Strings(map), DatumType::String) => {
                for (i, s) in input.try_as_plain_ram()?.as_slice::<String>()?.iter().enumerate() {
                    set(i, map.get(s).copied(), &|| s.clone())?;
                }
            }
            (Categories::Ints(map), dt) if dt != DatumType::String => {
                for (i, v) in int_categories(input)?.iter().enumerate() {
                    set(i, map.get(v).copied(), &|| v.to_string())?;
                }
            }
            (Categories::Strings(_), dt) => bail!("`OneHotEncoder` lists string categories but its input `{}` is {dt:?}", self.input),
            (Categories::Ints(_), _) => bail!("`OneHotEncoder` lists integer categories but its input `{}` holds strings", self.input),
        }
        let mut shape: TVec<usize> = input.shape().into();
        shape.push(self.count);
        Ok(tvec!(Tensor::from_shape(&shape, &y)?))
    }
}

/// A `LabelEncoder`'s keys or values: one typed list.
#[derive(Debug, Clone)]
enum Column {
    Strings(Vec<String>),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Strings(v) => v.len(),
            Column::Ints(v) => v.len(),
            Column::Floats(v) => v.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Column::Strings(_) => DatumType::String,
            Column::Ints(_) => DatumType::I64,
            Column::Floats(_) => DatumType::F32,
        }
    }

    /// `NAME_strings` / `NAME_int64s` / `NAME_floats` (opsets 1–3), or
    /// `NAME_tensor` (opset 4).
    fn parse(a: &Attrs, name: &str) -> TractResult<Option<Column>> {
        let mut found = Vec::new();
        if let Some(s) = a.strings(&format!("{name}_strings")).filter(|s| !s.is_empty()) {
            found.push(Column::Strings(s));
        }
        if let Some(i) = a.ints(&format!("{name}_int64s")).filter(|s| !s.is_empty()) {
            found.push(Column::Ints(i.to_vec()));
        }
        if let Some(f) = a.floats(&format!("{name}_floats")).filter(|s| !s.is_empty()) {
            found.push(Column::Floats(f.to_vec()));
        }
        if let Some(t) = a.tensor(&format!("{name}_tensor")) {
            found.push(tensor_column(t).map_err(|e| a.err(&format!("{name}_tensor"), e))?);
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(a.err(name, format!("given in {} forms; exactly one of `{name}_strings`, `{name}_int64s`, `{name}_floats`, `{name}_tensor` is allowed", found.len()))),
        }
    }
}

fn tensor_column(t: &TensorProto) -> Result<Column, String> {
    const STRING: i32 = 8;
    match t.data_type {
        STRING => Ok(Column::Strings(t.string_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())),
        1 | 11 => Ok(Column::Floats(tensor_f64(t)?.into_iter().map(|x| x as f32).collect())),
        _ => Ok(Column::Ints(tensor_i64(t)?)),
    }
}

/// Floats as map keys: by their bits, with every NaN one key (onnxruntime
/// matches a NaN key to a NaN input) and -0.0 the same as 0.0.
fn float_key(x: f32) -> u32 {
    if x.is_nan() {
        f32::NAN.to_bits()
    } else if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

#[derive(Debug)]
pub struct LabelEncoder {
    input: String,
    keys: Column,
    values: Column,
    default: Column,
    lookup: Lookup,
}

#[derive(Debug)]
enum Lookup {
    Strings(HashMap<String, usize>),
    Ints(HashMap<i64, usize>),
    Floats(HashMap<u32, usize>),
}

impl LabelEncoder {
    pub fn parse(node: &NodeProto) -> TractResult<LabelEncoder> {
        let a = Attrs(node);
        let keys = Column::parse(&a, "keys")?.ok_or_else(|| a.err("keys_strings", "missing (no `keys_*` attribute lists the keys)"))?;
        let values = Column::parse(&a, "values")?.ok_or_else(|| a.err("values_strings", "missing (no `values_*` attribute lists the values)"))?;
        if keys.len() != values.len() {
            return Err(a.err("values", format!("{} values for {} keys", values.len(), keys.len())));
        }
        let default = match (&values, a.tensor("default_tensor")) {
            (_, Some(t)) => {
                let d = tensor_column(t).map_err(|e| a.err("default_tensor", e))?;
                if d.datum_type() != values.datum_type() || d.len() != 1 {
                    return Err(a.err("default_tensor", "must hold one value of the values' type"));
                }
                d
            }
            // The ONNX defaults: "_Unused", -1, -0.0.
            (Column::Strings(_), None) => Column::Strings(vec![a.string("default_string").unwrap_or_else(|| "_Unused".into())]),
            (Column::Ints(_), None) => Column::Ints(vec![a.int("default_int64").unwrap_or(-1)]),
            (Column::Floats(_), None) => Column::Floats(vec![a.float("default_float").unwrap_or(-0.0)]),
        };
        let lookup = match &keys {
            Column::Strings(k) => Lookup::Strings(positions(k)),
            Column::Ints(k) => Lookup::Ints(positions(k)),
            Column::Floats(k) => Lookup::Floats(positions(&k.iter().map(|&x| float_key(x)).collect::<Vec<_>>())),
        };
        Ok(LabelEncoder { input: node.input.first().cloned().unwrap_or_default(), keys, values, default, lookup })
    }

    fn positions_of(&self, input: &Tensor) -> TractResult<Vec<Option<usize>>> {
        let dt = input.datum_type();
        let plain = input.try_as_plain_ram()?;
        Ok(match &self.lookup {
            Lookup::Strings(map) if dt == DatumType::String => plain.as_slice::<String>()?.iter().map(|s| map.get(s).copied()).collect(),
            Lookup::Ints(map) if dt != DatumType::String && !dt.is_float() => int_categories(input)?.iter().map(|v| map.get(v).copied()).collect(),
            Lookup::Floats(map) if dt.is_float() => {
                let x = input.cast_to::<f32>()?;
                x.try_as_plain_ram()?.as_slice::<f32>()?.iter().map(|&v| map.get(&float_key(v)).copied()).collect()
            }
            _ => bail!("`LabelEncoder` keys are {:?} but its input `{}` is {dt:?}", self.keys.datum_type(), self.input),
        })
    }
}

fn pick<T: Datum>(shape: &[usize], values: &[T], default: &[T], at: &[Option<usize>]) -> TractResult<Tensor> {
    let picked = at.iter().map(|p| p.map_or_else(|| default[0].clone(), |i| values[i].clone())).collect();
    Ok(ArrayD::from_shape_vec(IxDyn(shape), picked)?.into_tensor())
}

impl Kernel for LabelEncoder {
    fn name(&self) -> &'static str {
        "LabelEncoder"
    }
    fn outputs(&self) -> Vec<(DatumType, OutShape)> {
        vec![(self.values.datum_type(), OutShape::LikeInput)]
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let at = self.positions_of(input)?;
        let shape = input.shape();
        let out = match (&self.values, &self.default) {
            (Column::Strings(v), Column::Strings(d)) => pick(shape, v, d, &at)?,
            (Column::Ints(v), Column::Ints(d)) => pick(shape, v, d, &at)?,
            (Column::Floats(v), Column::Floats(d)) => pick(shape, v, d, &at)?,
            _ => bail!("`LabelEncoder` default does not have the values' type"),
        };
        Ok(tvec!(out))
    }
}
