//! The compile-time checks the `cel` crate does not do: nesting, depth,
//! declared variables, known functions, fields of declared objects and the
//! operand types of operators, as far as the static types are known.

use crate::schema::{backticked, Schema, Type};
use crate::{ExprError, Position};
use cel::common::ast::{operators, EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo};
use std::collections::BTreeSet;

/// Refuses bracket nesting deeper than `max` before the parser sees it: the
/// parser recurses per level. String literals are skipped; what this scan
/// gets wrong about a malformed source, the parser reports.
pub(crate) fn nesting(source: &str, max: usize) -> Result<(), ExprError> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(ExprError::TooDeep { max, at: Some(Position::at(source, i)) });
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            q @ (b'\'' | b'"') => {
                let raw = i > 0 && matches!(bytes[i - 1], b'r' | b'R');
                let triple = bytes.get(i..i + 3) == Some(&[q, q, q][..]);
                i = skip_string(bytes, i, q, triple, raw);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index after the string literal that opens at `start`.
fn skip_string(bytes: &[u8], start: usize, quote: u8, triple: bool, raw: bool) -> usize {
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        if bytes[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if bytes[i] == quote && (!triple || bytes.get(i..i + 3) == Some(&[quote, quote, quote][..])) {
            return i + if triple { 3 } else { 1 };
        }
        i += 1;
    }
    bytes.len()
}

/// The children of a node, for walks that must not recurse.
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(call) => call.target.iter().map(|t| t.as_ref()).chain(call.args.iter()).collect(),
        Expr::Comprehension(c) => vec![&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map.entries.iter().flat_map(|entry| entry_children(&entry.expr)).collect(),
        Expr::Struct(s) => s.entries.iter().flat_map(|entry| entry_children(&entry.expr)).collect(),
        Expr::Select(select) => vec![select.operand.as_ref()],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

fn entry_children(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::StructField(field) => vec![&field.value],
        EntryExpr::MapEntry(map_entry) => vec![&map_entry.key, &map_entry.value],
    }
}

/// The depth of the tree, without recursion (the tree may be thousands of
/// levels deep: `1 + 1 + … + 1`).
pub(crate) fn depth(root: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        stack.extend(children(e).into_iter().map(|c| (c, d + 1)));
    }
    deepest
}

/// The functions an expression may call: the CEL standard library and the
/// `strings` extension (cel-go's, which Kubernetes also enables). The macros
/// (`has`, `all`, `exists`, `exists_one`, `map`, `filter`) are expanded by
/// the parser and never reach this list. A test checks each name resolves in
/// the environment.
pub(crate) const KNOWN_FUNCTIONS: &[&str] = &[
    // conversions and types
    "bool",
    "bytes",
    "double",
    "duration",
    "dyn",
    "int",
    "string",
    "timestamp",
    "type",
    "uint",
    // size and strings
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    // timestamps
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
    // the strings extension
    "charAt",
    "format",
    "indexOf",
    "join",
    "lastIndexOf",
    "lowerAscii",
    "replace",
    "reverse",
    "split",
    "substring",
    "trim",
    "upperAscii",
];

/// Names of types an expression may mention as values (`type(x) == int`).
const TYPE_NAMES: &[&str] = &["bool", "bytes", "double", "int", "list", "map", "null_type", "string", "type", "uint"];

const MACROS: &[(&str, &str)] = &[
    ("has", "`has(object.field)`"),
    ("all", "`list.all(x, condition)`"),
    ("exists", "`list.exists(x, condition)`"),
    ("exists_one", "`list.exists_one(x, condition)`"),
    ("existsOne", "`list.existsOne(x, condition)`"),
    ("map", "`list.map(x, expression)` or `list.map(x, condition, expression)`"),
    ("filter", "`list.filter(x, condition)`"),
];

/// What the checks know of a value's type; `Dyn` when they cannot know.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum St<'s> {
    Dyn,
    Null,
    Bool,
    Int,
    Double,
    String,
    Timestamp,
    List(Box<St<'s>>),
    Map(Box<St<'s>>),
    Object(&'s [(String, Type)]),
}

impl<'s> St<'s> {
    fn of(t: &'s Type) -> Self {
        match t {
            Type::Bool => St::Bool,
            Type::Int => St::Int,
            Type::Double => St::Double,
            Type::String => St::String,
            Type::Timestamp => St::Timestamp,
            Type::List(item) => St::List(Box::new(St::of(item))),
            Type::Map(value) => St::Map(Box::new(St::of(value))),
            Type::Object(fields) => St::Object(fields),
        }
    }

    /// The type name an error shows, with its article.
    pub(crate) fn described(&self) -> &'static str {
        match self {
            St::Dyn => "a value",
            St::Null => "null",
            St::Bool => "a bool",
            St::Int => "an int",
            St::Double => "a double",
            St::String => "a string",
            St::Timestamp => "a timestamp",
            St::List(_) => "a list",
            St::Map(_) => "a map",
            St::Object(_) => "an object",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            St::Dyn => "dyn",
            St::Null => "null",
            St::Bool => "bool",
            St::Int => "int",
            St::Double => "double",
            St::String => "string",
            St::Timestamp => "timestamp",
            St::List(_) => "list",
            St::Map(_) | St::Object(_) => "map",
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(self, St::Bool | St::Int | St::Double | St::String | St::Timestamp)
    }

    fn is_number(&self) -> bool {
        matches!(self, St::Int | St::Double)
    }

    /// Whether the value is known not to be a bool.
    fn not_bool(&self) -> bool {
        !matches!(self, St::Bool | St::Dyn)
    }

    fn join(self, other: St<'s>) -> St<'s> {
        if self == other {
            return self;
        }
        match (self, other) {
            // An empty list literal (a macro's accumulator) takes the other's items.
            (St::List(a), St::List(b)) if *a == St::Dyn => St::List(b),
            (St::List(a), St::List(b)) if *b == St::Dyn => St::List(a),
            _ => St::Dyn,
        }
    }
}

/// What the static walk found.
pub(crate) struct Checked<'s> {
    pub(crate) result: St<'s>,
    /// The declared variables the expression reads.
    pub(crate) variables: BTreeSet<String>,
}

pub(crate) fn walk<'s>(root: &IdedExpr, schema: &'s Schema, info: &SourceInfo) -> Result<Checked<'s>, ExprError> {
    let mut walker = Walker { schema, info, scopes: Vec::new(), used: BTreeSet::new() };
    let result = walker.walk(root)?;
    Ok(Checked { result, variables: walker.used })
}

struct Walker<'s, 'i> {
    schema: &'s Schema,
    info: &'i SourceInfo,
    /// Comprehension variables, innermost last.
    scopes: Vec<(String, St<'s>)>,
    used: BTreeSet<String>,
}

impl<'s> Walker<'s, '_> {
    fn at(&self, e: &IdedExpr) -> Option<Position> {
        self.info.offset_for(e.id).map(|(start, _)| Position::at(&self.info.source, start as usize))
    }

    fn type_error(&self, e: &IdedExpr, message: String) -> ExprError {
        ExprError::Type { message, at: self.at(e) }
    }

    fn walk(&mut self, e: &IdedExpr) -> Result<St<'s>, ExprError> {
        match &e.expr {
            Expr::Unspecified => Ok(St::Dyn),
            Expr::Literal(lit) => Ok(match lit {
                LiteralValue::Boolean(_) => St::Bool,
                LiteralValue::Int(_) => St::Int,
                LiteralValue::Double(_) => St::Double,
                LiteralValue::String(_) => St::String,
                LiteralValue::Null => St::Null,
                LiteralValue::Bytes(_) | LiteralValue::UInt(_) => St::Dyn,
            }),
            Expr::Ident(name) => self.ident(e, name),
            Expr::Select(select) => {
                let operand = self.walk(&select.operand)?;
                let field_type = self.field(e, &select.operand, operand, &select.field)?;
                Ok(if select.test { St::Bool } else { field_type })
            }
            Expr::List(list) => {
                let mut item: Option<St<'s>> = None;
                for element in &list.elements {
                    let t = self.walk(element)?;
                    item = Some(match item {
                        None => t,
                        Some(prev) => prev.join(t),
                    });
                }
                Ok(St::List(Box::new(item.unwrap_or(St::Dyn))))
            }
            Expr::Map(map) => {
                let mut value: Option<St<'s>> = None;
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(m) = &entry.expr {
                        self.walk(&m.key)?;
                        let t = self.walk(&m.value)?;
                        value = Some(match value {
                            None => t,
                            Some(prev) => prev.join(t),
                        });
                    }
                }
                Ok(St::Map(Box::new(value.unwrap_or(St::Dyn))))
            }
            Expr::Struct(s) => Err(self.type_error(e, format!("`{}` is not a known type; struct literals are not supported", s.type_name))),
            Expr::Call(call) => {
                self.known_function(e, &call.func_name)?;
                let target = match &call.target {
                    Some(t) => Some(self.walk(t)?),
                    None => None,
                };
                let mut args = Vec::with_capacity(call.args.len());
                for arg in &call.args {
                    args.push(self.walk(arg)?);
                }
                self.call(e, &call.func_name, target, &call.args, args)
            }
            Expr::Comprehension(c) => {
                let range = self.walk(&c.iter_range)?;
                let (first, second) = match (&range, &c.iter_var2) {
                    (St::List(item), None) => ((*item.clone()), St::Dyn),
                    (St::List(item), Some(_)) => (St::Int, *item.clone()),
                    (St::Map(value), _) => (St::String, *value.clone()),
                    (St::Object(_), _) => (St::String, St::Dyn),
                    (St::Dyn, _) => (St::Dyn, St::Dyn),
                    (other, _) => {
                        return Err(self.type_error(
                            &c.iter_range,
                            format!("`{}` needs a list or a map, not {}", describe(&c.iter_range), other.described()),
                        ))
                    }
                };
                let accu_init = self.walk(&c.accu_init)?;
                let mut bound = 2;
                self.scopes.push((c.iter_var.clone(), first));
                if let Some(var2) = &c.iter_var2 {
                    self.scopes.push((var2.clone(), second));
                    bound += 1;
                }
                self.scopes.push((c.accu_var.clone(), accu_init.clone()));
                let walked = self.walk(&c.loop_cond).and_then(|_| self.walk(&c.loop_step));
                let walked = walked.and_then(|step| {
                    // `map` and `filter` start from `[]`: the step tells the items.
                    let accu = accu_init.join(step);
                    if let Some(slot) = self.scopes.last_mut() {
                        slot.1 = accu;
                    }
                    self.walk(&c.result)
                });
                self.scopes.truncate(self.scopes.len().saturating_sub(bound));
                walked
            }
        }
    }

    fn ident(&mut self, e: &IdedExpr, name: &str) -> Result<St<'s>, ExprError> {
        if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
            return Ok(t.clone());
        }
        if let Some(t) = self.schema.get(name) {
            self.used.insert(name.to_string());
            return Ok(St::of(t));
        }
        if TYPE_NAMES.contains(&name) {
            return Ok(St::Dyn);
        }
        Err(ExprError::UndeclaredVariable { name: name.to_string(), declared: self.schema.names(), at: self.at(e) })
    }

    /// The type of `operand.field`.
    fn field(&self, e: &IdedExpr, operand_expr: &IdedExpr, operand: St<'s>, field: &str) -> Result<St<'s>, ExprError> {
        match operand {
            St::Object(fields) => match fields.iter().find(|(n, _)| n == field) {
                Some((_, t)) => Ok(St::of(t)),
                None => Err(ExprError::UnknownField {
                    field: field.to_string(),
                    object: describe(operand_expr),
                    fields: backticked(fields.iter().map(|(n, _)| n.as_str())),
                    at: self.at(e),
                }),
            },
            St::Map(value) => Ok(*value),
            St::Dyn => Ok(St::Dyn),
            other => Err(self
                .type_error(e, format!("`{field}` cannot be selected from `{}`, which is {}", describe(operand_expr), other.described()))),
        }
    }

    fn call(
        &self,
        e: &IdedExpr,
        name: &str,
        target: Option<St<'s>>,
        arg_exprs: &[IdedExpr],
        args: Vec<St<'s>>,
    ) -> Result<St<'s>, ExprError> {
        let symbol = operator_symbol(name);
        let arg = |i: usize| args.get(i).cloned().unwrap_or(St::Dyn);
        match name {
            operators::LOGICAL_AND | operators::LOGICAL_OR | operators::LOGICAL_NOT => {
                if let Some(bad) = args.iter().find(|t| t.not_bool()) {
                    return Err(self.type_error(e, format!("`{symbol}` needs bools, not {}", bad.described())));
                }
                Ok(St::Bool)
            }
            operators::NOT_STRICTLY_FALSE => Ok(St::Bool),
            operators::NEGATE => match arg(0) {
                t @ (St::Int | St::Double | St::Dyn) => Ok(t),
                other => Err(self.type_error(e, format!("`-` cannot negate {}", other.described()))),
            },
            operators::EQUALS | operators::NOT_EQUALS => {
                let (a, b) = (arg(0), arg(1));
                if comparable_kinds(&a, &b) {
                    Ok(St::Bool)
                } else {
                    Err(self.type_error(e, format!("`{symbol}` compares {} with {}, which is never equal", a.described(), b.described())))
                }
            }
            operators::LESS | operators::LESS_EQUALS | operators::GREATER | operators::GREATER_EQUALS => {
                let (a, b) = (arg(0), arg(1));
                let ordered = |t: &St| t.is_scalar() || *t == St::Dyn;
                if ordered(&a) && ordered(&b) && comparable_kinds(&a, &b) {
                    Ok(St::Bool)
                } else {
                    Err(self.type_error(e, format!("`{symbol}` cannot compare {} with {}", a.described(), b.described())))
                }
            }
            operators::ADD | operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE | operators::MODULO => {
                self.arithmetic(e, name, arg(0), arg(1))
            }
            operators::CONDITIONAL => {
                if arg(0).not_bool() {
                    return Err(self.type_error(e, format!("the condition of `? :` must be a bool, not {}", arg(0).described())));
                }
                Ok(arg(1).join(arg(2)))
            }
            operators::INDEX => self.index(e, arg_exprs, arg(0), arg(1)),
            operators::IN => match arg(1) {
                St::List(item) => {
                    if comparable_kinds(&arg(0), &item) {
                        Ok(St::Bool)
                    } else {
                        Err(self.type_error(
                            e,
                            format!("`in` looks for {} in a list of {}s, which never holds it", arg(0).described(), item.name()),
                        ))
                    }
                }
                St::Map(_) | St::Object(_) | St::Dyn => Ok(St::Bool),
                other => Err(self.type_error(e, format!("`in` needs a list or a map on its right, not {}", other.described()))),
            },
            _ => self.function(e, name, target, args),
        }
    }

    fn arithmetic(&self, e: &IdedExpr, name: &str, a: St<'s>, b: St<'s>) -> Result<St<'s>, ExprError> {
        let symbol = operator_symbol(name);
        match (&a, &b) {
            (St::Dyn, _) | (_, St::Dyn) => Ok(St::Dyn),
            (St::Int, St::Int) => Ok(St::Int),
            (St::Double, St::Double) if name != operators::MODULO => Ok(St::Double),
            (St::String, St::String) if name == operators::ADD => Ok(St::String),
            (St::List(_), St::List(_)) if name == operators::ADD => Ok(a.join(b)),
            (St::Timestamp, St::Timestamp) if name == operators::SUBSTRACT => Ok(St::Dyn),
            (St::Timestamp, _) | (_, St::Timestamp) if name == operators::ADD || name == operators::SUBSTRACT => Ok(St::Dyn),
            (x, y) if x.is_number() && y.is_number() && x != y => Err(self.type_error(
                e,
                format!(
                    "`{symbol}` cannot combine {} with {}: CEL does not mix ints and doubles in arithmetic (write a double constant as `1.0`, or convert with `double()` or `int()`)",
                    x.described(),
                    y.described()
                ),
            )),
            (x, y) => Err(self.type_error(e, format!("`{symbol}` cannot be applied to {} and {}", x.described(), y.described()))),
        }
    }

    fn index(&self, e: &IdedExpr, arg_exprs: &[IdedExpr], container: St<'s>, key: St<'s>) -> Result<St<'s>, ExprError> {
        match container {
            St::List(item) => match key {
                St::Int | St::Dyn => Ok(*item),
                other => Err(self.type_error(e, format!("a list is indexed by an int, not {}", other.described()))),
            },
            St::Map(value) => match key {
                St::String | St::Dyn => Ok(*value),
                other => Err(self.type_error(e, format!("a map with string keys is indexed by a string, not {}", other.described()))),
            },
            St::Object(fields) => match arg_exprs.get(1).map(|k| &k.expr) {
                Some(Expr::Literal(LiteralValue::String(name))) => match arg_exprs.first() {
                    Some(operand) => self.field(e, operand, St::Object(fields), name.inner()),
                    None => Ok(St::Dyn),
                },
                _ => Ok(St::Dyn),
            },
            St::Dyn => Ok(St::Dyn),
            other => Err(self.type_error(e, format!("{} cannot be indexed", other.described()))),
        }
    }

    /// Operators are the parser's (`_+_`, `@in`, …); a name must be known.
    fn known_function(&self, e: &IdedExpr, name: &str) -> Result<(), ExprError> {
        let operator = name.starts_with(['_', '@']) || name == operators::LOGICAL_NOT || name == operators::NEGATE;
        if operator || KNOWN_FUNCTIONS.contains(&name) {
            return Ok(());
        }
        let hint = match MACROS.iter().find(|(m, _)| *m == name) {
            Some((_, usage)) => format!(" with these arguments; write {usage}"),
            None => String::new(),
        };
        Err(ExprError::UnknownFunction { name: name.to_string(), hint, at: self.at(e) })
    }

    fn function(&self, e: &IdedExpr, name: &str, target: Option<St<'s>>, args: Vec<St<'s>>) -> Result<St<'s>, ExprError> {
        let receiver = target.clone().or_else(|| args.first().cloned()).unwrap_or(St::Dyn);
        Ok(match name {
            "size" => match receiver {
                St::String | St::List(_) | St::Map(_) | St::Object(_) | St::Dyn => St::Int,
                other => return Err(self.type_error(e, format!("`size` needs a string, a list or a map, not {}", other.described()))),
            },
            "int" | "getDate" | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear" | "getFullYear" | "getHours" | "getMilliseconds"
            | "getMinutes" | "getMonth" | "getSeconds" | "indexOf" | "lastIndexOf" => St::Int,
            "double" => St::Double,
            "bool" | "contains" | "startsWith" | "endsWith" | "matches" => St::Bool,
            "timestamp" => St::Timestamp,
            "string" | "charAt" | "format" | "join" | "lowerAscii" | "replace" | "reverse" | "substring" | "trim" | "upperAscii" => {
                St::String
            }
            "split" => St::List(Box::new(St::String)),
            _ => St::Dyn,
        })
    }
}

/// Whether `==` between the two can ever hold (ints and doubles compare by
/// value).
fn comparable_kinds(a: &St, b: &St) -> bool {
    let known = |t: &St| !matches!(t, St::Dyn | St::Null);
    if !known(a) || !known(b) || a.is_number() && b.is_number() {
        return true;
    }
    a.name() == b.name()
}

/// `_+_` → `+`, `@in` → `in`, `_[_]` → `[]`.
pub(crate) fn operator_symbol(name: &str) -> &str {
    match name {
        operators::INDEX => "[]",
        operators::IN => "in",
        operators::CONDITIONAL => "? :",
        operators::LOGICAL_NOT => "!",
        operators::NEGATE => "-",
        "add" => "+",
        "sub" => "-",
        "mul" => "*",
        "div" => "/",
        "rem" => "%",
        other => other.trim_matches('_'),
    }
}

/// How an error names an expression: `version.card`, `a`, `tags[…]`.
fn describe(e: &IdedExpr) -> String {
    // Walks down the operand chain (a.b.c[…].d) without recursion.
    let mut parts: Vec<String> = Vec::new();
    let mut current = e;
    loop {
        match &current.expr {
            Expr::Ident(name) => {
                parts.push(name.clone());
                break;
            }
            Expr::Select(select) if !select.test => {
                parts.push(format!(".{}", select.field));
                current = &select.operand;
            }
            Expr::Call(call) if call.func_name == operators::INDEX && call.args.len() == 2 => {
                parts.push("[…]".into());
                current = &call.args[0];
            }
            _ => {
                parts.push("(…)".into());
                break;
            }
        }
        if parts.len() > 8 {
            parts.push("…".into());
            break;
        }
    }
    parts.reverse();
    parts.concat()
}
