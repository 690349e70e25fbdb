//! The category encoders exporters put in front of a model trained on a
//! table: `OneHotEncoder` (scikit-learn's `OneHotEncoder`, one indicator
//! column per category) and `LabelEncoder` (scikit-learn's `OrdinalEncoder`
//! and `LabelEncoder`: a lookup from keys to values). Both read string or
//! integer categories, so unlike the other kernels they look at the input's
//! datum type instead of casting it to `f32`.

use super::attrs::{tensor_f64, tensor_i64, Attrs};
use super::{Kernel, OutShape};
use std::collections::HashMap;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};
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

/// Which of two equal keys a lookup keeps: onnxruntime's `OneHotEncoder`
/// assigns in order (the last wins), its `LabelEncoder` emplaces (the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Duplicates {
    FirstWins,
    LastWins,
}

fn positions<K: std::hash::Hash + Eq + Clone>(keys: &[K], duplicates: Duplicates) -> HashMap<K, usize> {
    let mut map = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        match duplicates {
            Duplicates::FirstWins => {
                map.entry(k.clone()).or_insert(i);
            }
            Duplicates::LastWins => {
                map.insert(k.clone(), i);
            }
        }
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

/// The graph input a node's input comes from, through the reshaping and
/// casting exporters put between a column and its encoder (skl2onnx casts
/// an integer column, `grade` → `gradecast`; a column picked out of a wider
/// input goes through `Gather` or `ArrayFeatureExtractor`): the name a
/// client knows. The node's own input name when no graph input is found.
fn graph_input_behind(model: &ModelProto, name: &str) -> String {
    const PASS_THROUGH: [&str; 9] =
        ["Cast", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Gather", "ArrayFeatureExtractor", "Slice"];
    let Some(graph) = model.graph.as_ref() else { return name.to_string() };
    let mut current = name;
    for _ in 0..16 {
        if graph.input.iter().any(|i| i.name == current) {
            return current.to_string();
        }
        let producer = graph.node.iter().find(|n| n.output.iter().any(|o| o == current));
        match producer {
            Some(node) if PASS_THROUGH.contains(&node.op_type.as_str()) && !node.input.is_empty() => current = &node.input[0],
            _ => break,
        }
    }
    name.to_string()
}

/// The `ai.onnx.ml` opset the model imports (1 when it does not say).
fn ml_opset(model: &ModelProto) -> i64 {
    model.opset_import.iter().find(|o| o.domain == "ai.onnx.ml").map_or(1, |o| o.version)
}

/// The input as integer categories: integers as they are, floats truncated
/// towards zero as onnxruntime does (a float column of codes); a NaN or
/// infinite float is no category at all.
fn int_categories(input: &Tensor) -> TractResult<Vec<Option<i64>>> {
    let plain = input.try_as_plain_ram()?;
    let float = |x: f64| x.is_finite().then_some(x as i64);
    Ok(match input.datum_type() {
        DatumType::I64 => plain.as_slice::<i64>()?.iter().map(|&x| Some(x)).collect(),
        DatumType::F32 => plain.as_slice::<f32>()?.iter().map(|&x| float(f64::from(x))).collect(),
        DatumType::F64 => plain.as_slice::<f64>()?.iter().map(|&x| float(x)).collect(),
        _ => input.cast_to::<i64>()?.try_as_plain_ram()?.as_slice::<i64>()?.iter().map(|&x| Some(x)).collect(),
    })
}

/// An integer column, as tract types it (it types `int64` values that may
/// be shapes — a `Cast` to int64 — as `TDim`).
fn is_integer(dt: DatumType) -> bool {
    dt == DatumType::TDim || (dt.is_integer() && dt != DatumType::Bool)
}

#[derive(Debug)]
pub struct OneHotEncoder {
    /// The graph input the encoded column comes from (for errors).
    input: String,
    categories: Categories,
    count: usize,
    /// `zeros` ≠ 0: an unknown category gives a row of zeros; `0`: an error.
    zeros_for_unknown: bool,
}

impl OneHotEncoder {
    pub fn parse(ctx: &ParsingContext, node: &NodeProto) -> TractResult<OneHotEncoder> {
        let a = Attrs(node);
        let strings = a.strings("cats_strings").filter(|s| !s.is_empty());
        let ints = a.ints("cats_int64s").filter(|s| !s.is_empty());
        let (categories, count) = match (strings, ints) {
            (Some(s), None) => (Categories::Strings(positions(&s, Duplicates::LastWins)), s.len()),
            (None, Some(i)) => (Categories::Ints(positions(i, Duplicates::LastWins)), i.len()),
            (Some(_), Some(_)) => return Err(a.err("cats_strings", "both `cats_strings` and `cats_int64s` are given; exactly one is allowed")),
            (None, None) => return Err(a.err("cats_strings", "missing (neither `cats_strings` nor `cats_int64s` lists a category)")),
        };
        let input = node.input.first().map(|i| graph_input_behind(ctx.model, i)).unwrap_or_default();
        Ok(OneHotEncoder { input, categories, count, zeros_for_unknown: a.int("zeros").unwrap_or(1) != 0 })
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
    fn check_input(&self, dt: DatumType) -> TractResult<()> {
        match &self.categories {
            Categories::Strings(_) if dt != DatumType::String => {
                bail!("`OneHotEncoder` lists string categories (`cats_strings`) but its input `{}` holds {dt:?}", self.input)
            }
            Categories::Ints(_) if !(is_integer(dt) || dt.is_float()) => {
                bail!("`OneHotEncoder` lists integer categories (`cats_int64s`) but its input `{}` holds {dt:?}", self.input)
            }
            _ => Ok(()),
        }
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        self.check_input(input.datum_type())?;
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
        match &self.categories {
            Categories::Strings(map) => {
                for (i, s) in input.try_as_plain_ram()?.as_slice::<String>()?.iter().enumerate() {
                    set(i, map.get(s).copied(), &|| s.clone())?;
                }
            }
            Categories::Ints(map) => {
                let shown = |i: usize| input.cast_to::<String>().ok().and_then(|t| t.try_as_plain_ram().ok()?.as_slice::<String>().ok()?.get(i).cloned());
                for (i, v) in int_categories(input)?.iter().enumerate() {
                    set(i, v.and_then(|v| map.get(&v).copied()), &|| shown(i).unwrap_or_else(|| "?".into()))?;
                }
            }
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
    Doubles(Vec<f64>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Strings(v) => v.len(),
            Column::Ints(v) => v.len(),
            Column::Floats(v) => v.len(),
            Column::Doubles(v) => v.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Column::Strings(_) => DatumType::String,
            Column::Ints(_) => DatumType::I64,
            Column::Floats(_) => DatumType::F32,
            Column::Doubles(_) => DatumType::F64,
        }
    }

    /// `NAME_strings` / `NAME_int64s` / `NAME_floats` (opsets 2–3), or
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
    const FLOAT: i32 = 1;
    const STRING: i32 = 8;
    const INT64: i32 = 7;
    const DOUBLE: i32 = 11;
    match t.data_type {
        STRING => Ok(Column::Strings(t.string_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())),
        FLOAT => Ok(Column::Floats(tensor_f64(t)?.into_iter().map(|x| x as f32).collect())),
        DOUBLE => Ok(Column::Doubles(tensor_f64(t)?)),
        INT64 => Ok(Column::Ints(tensor_i64(t)?)),
        other => Err(format!("data type {other} is not supported (string, int64, float or double)")),
    }
}

/// Floats as map keys, by their bits: -0.0 is 0.0, and every NaN is one
/// key, which a NaN input matches only where onnxruntime matches it
/// (`ai.onnx.ml` opset 4; before, a plain map where NaN equals nothing).
fn float_key(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
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
    nan_matches: bool,
}

#[derive(Debug)]
enum Lookup {
    Strings(HashMap<String, usize>),
    Ints(HashMap<i64, usize>),
    /// `f32` and `f64` keys alike, by [`float_key`] of the value as `f64`
    /// (exact for `f32`).
    Floats(HashMap<u64, usize>),
}

impl LabelEncoder {
    pub fn parse(ctx: &ParsingContext, node: &NodeProto) -> TractResult<LabelEncoder> {
        let a = Attrs(node);
        if a.has("classes_strings") {
            return Err(a.err("classes_strings", "the `ai.onnx.ml` opset 1 form (`classes_strings`) is not supported; export with opset 2 or later (`keys_*`/`values_*`)"));
        }
        let keys = Column::parse(&a, "keys")?.ok_or_else(|| a.err("keys_strings", "missing (no `keys_*` attribute lists the keys)"))?;
        let values = Column::parse(&a, "values")?.ok_or_else(|| a.err("values_strings", "missing (no `values_*` attribute lists the values)"))?;
        if keys.len() != values.len() {
            return Err(a.err("values", format!("{} values for {} keys", values.len(), keys.len())));
        }
        let default = match (&values, a.tensor("default_tensor").filter(|t| t.data_type != 0)) {
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
            (Column::Doubles(_), None) => Column::Doubles(vec![a.float("default_float").map_or(-0.0, f64::from)]),
        };
        let lookup = match &keys {
            Column::Strings(k) => Lookup::Strings(positions(k, Duplicates::FirstWins)),
            Column::Ints(k) => Lookup::Ints(positions(k, Duplicates::FirstWins)),
            Column::Floats(k) => Lookup::Floats(positions(&k.iter().map(|&x| float_key(f64::from(x))).collect::<Vec<_>>(), Duplicates::FirstWins)),
            Column::Doubles(k) => Lookup::Floats(positions(&k.iter().map(|&x| float_key(x)).collect::<Vec<_>>(), Duplicates::FirstWins)),
        };
        let input = node.input.first().map(|i| graph_input_behind(ctx.model, i)).unwrap_or_default();
        Ok(LabelEncoder { input, keys, values, default, lookup, nan_matches: ml_opset(ctx.model) >= 4 })
    }

    fn positions_of(&self, input: &Tensor) -> TractResult<Vec<Option<usize>>> {
        self.check_input(input.datum_type())?;
        let plain = input.try_as_plain_ram()?;
        Ok(match &self.lookup {
            Lookup::Strings(map) => plain.as_slice::<String>()?.iter().map(|s| map.get(s).copied()).collect(),
            Lookup::Ints(map) => int_categories(input)?.iter().map(|v| v.and_then(|v| map.get(&v).copied())).collect(),
            Lookup::Floats(map) => {
                let x = input.cast_to::<f64>()?;
                let find = |v: f64| if v.is_nan() && !self.nan_matches { None } else { map.get(&float_key(v)).copied() };
                x.try_as_plain_ram()?.as_slice::<f64>()?.iter().map(|&v| find(v)).collect()
            }
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
    fn check_input(&self, dt: DatumType) -> TractResult<()> {
        let fits = match &self.keys {
            Column::Strings(_) => dt == DatumType::String,
            Column::Ints(_) => is_integer(dt),
            Column::Floats(_) | Column::Doubles(_) => dt.is_float(),
        };
        if fits {
            Ok(())
        } else {
            bail!("`LabelEncoder` keys are {:?} but its input `{}` holds {dt:?}", self.keys.datum_type(), self.input)
        }
    }
    fn eval(&self, input: &Tensor) -> TractResult<TVec<Tensor>> {
        let at = self.positions_of(input)?;
        let shape = input.shape();
        let out = match (&self.values, &self.default) {
            (Column::Strings(v), Column::Strings(d)) => pick(shape, v, d, &at)?,
            (Column::Ints(v), Column::Ints(d)) => pick(shape, v, d, &at)?,
            (Column::Floats(v), Column::Floats(d)) => pick(shape, v, d, &at)?,
            (Column::Doubles(v), Column::Doubles(d)) => pick(shape, v, d, &at)?,
            _ => bail!("`LabelEncoder` default does not have the values' type"),
        };
        Ok(tvec!(out))
    }
}
