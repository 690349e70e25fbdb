//! Reading a node's attributes by name, with errors that name the
//! operator and the attribute: a malformed export is the user's to fix, so
//! the message has to say where.

use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

pub struct Attrs<'a>(pub &'a NodeProto);

impl<'a> Attrs<'a> {
    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.0.attribute.iter().find(|a| a.name == name)
    }

    pub fn op(&self) -> &str {
        &self.0.op_type
    }

    pub fn err(&self, name: &str, what: impl std::fmt::Display) -> TractError {
        format_err!("`{}` attribute `{name}`: {what}", self.0.op_type)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.get(name).map(|a| a.ints.as_slice())
    }

    pub fn req_ints(&self, name: &str) -> TractResult<&'a [i64]> {
        self.ints(name).ok_or_else(|| self.err(name, "missing"))
    }

    pub fn floats(&self, name: &str) -> Option<&'a [f32]> {
        self.get(name).map(|a| a.floats.as_slice())
    }

    pub fn float(&self, name: &str) -> Option<f32> {
        self.get(name).map(|a| a.f)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(|a| a.i)
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
    }

    pub fn tensor(&self, name: &str) -> Option<&'a TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }

    /// A float list given either as `NAME` (floats) or `NAME_as_tensor`.
    pub fn float_list(&self, name: &str) -> TractResult<Option<Vec<f64>>> {
        if let Some(f) = self.floats(name).filter(|f| !f.is_empty()) {
            return Ok(Some(f.iter().map(|&x| f64::from(x)).collect()));
        }
        match self.tensor(&format!("{name}_as_tensor")).or_else(|| self.tensor(name)) {
            Some(t) => Ok(Some(tensor_f64(t).map_err(|e| self.err(name, e))?)),
            None => Ok(self.floats(name).map(|f| f.iter().map(|&x| f64::from(x)).collect())),
        }
    }

    /// A list of ints given either as ints or as an integer tensor.
    pub fn int_list(&self, name: &str) -> TractResult<Option<Vec<i64>>> {
        if let Some(t) = self.tensor(name) {
            return Ok(Some(tensor_i64(t).map_err(|e| self.err(name, e))?));
        }
        Ok(self.ints(name).map(<[i64]>::to_vec))
    }
}

fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    raw.chunks_exact(N).map(|c| {
        let mut b = [0u8; N];
        b.copy_from_slice(c);
        b
    })
}

/// The values of a FLOAT, DOUBLE or FLOAT16-free numeric tensor.
pub fn tensor_f64(t: &TensorProto) -> Result<Vec<f64>, String> {
    const FLOAT: i32 = 1;
    const DOUBLE: i32 = 11;
    match t.data_type {
        FLOAT if !t.raw_data.is_empty() => Ok(chunks::<4>(&t.raw_data).map(|b| f64::from(f32::from_le_bytes(b))).collect()),
        FLOAT => Ok(t.float_data.iter().map(|&x| f64::from(x)).collect()),
        DOUBLE if !t.raw_data.is_empty() => Ok(chunks::<8>(&t.raw_data).map(f64::from_le_bytes).collect()),
        DOUBLE => Ok(t.double_data.clone()),
        other => Err(format!("expected a float or double tensor, got data type {other}")),
    }
}

/// The values of an integer tensor (UINT8, INT32, INT64 …).
#[allow(clippy::cast_possible_wrap)]
pub fn tensor_i64(t: &TensorProto) -> Result<Vec<i64>, String> {
    match t.data_type {
        // uint8, int8, uint16, int16, int32 live in int32_data
        2..=6 if t.raw_data.is_empty() => Ok(t.int32_data.iter().map(|&x| i64::from(x)).collect()),
        2 => Ok(t.raw_data.iter().map(|&x| i64::from(x)).collect()),
        3 => Ok(t.raw_data.iter().map(|&x| i64::from(x as i8)).collect()),
        6 => Ok(chunks::<4>(&t.raw_data).map(|b| i64::from(i32::from_le_bytes(b))).collect()),
        7 if !t.raw_data.is_empty() => Ok(chunks::<8>(&t.raw_data).map(i64::from_le_bytes).collect()),
        7 => Ok(t.int64_data.clone()),
        other => Err(format!("expected an integer tensor, got data type {other}")),
    }
}
