//! modelops-expr: the one expression language of modelops (CEL, through the
//! maintained `cel` crate). Governance policies, rule-based models, alert
//! conditions and canary rollback conditions all compile and evaluate their
//! conditions here.
//!
//! Owns: the declared context ([`Schema`], [`Type`]), compilation against it
//! ([`compile`], [`compile_condition`] → [`Expression`]), the conversion of
//! JSON inputs into CEL values as the schema declares them ([`Bindings`]),
//! evaluation ([`Expression::evaluate`], [`Expression::evaluate_bool`]) into
//! a [`Value`] free of the `cel` crate's types, and one error type
//! ([`ExprError`]).
//!
//! The `cel` crate parses and interprets but has no type checker. Compiling
//! therefore also:
//! - refuses sources over [`MAX_SOURCE_BYTES`] and bracket nesting deeper
//!   than [`MAX_NESTING`] (checked on the text first, then by the parser);
//!   trees deeper than [`MAX_DEPTH`] (`a + b + … + z` grows one level per
//!   term; `&&` and `||` chains are balanced and do not);
//! - refuses undeclared variables and functions outside the CEL standard
//!   library and the `strings` extension (`trim`, `lowerAscii`, `split`, …);
//! - walks the tree with the declared types as far as they are known (into
//!   comprehension variables over lists of objects too): a misspelt field of
//!   a declared object, or an operator over known types that cannot apply
//!   (`version.number > 'x'`, `'a' - 1`, `score + 1` with `score` a double),
//!   is an error at its position;
//! - evaluates once on a prototype built from the schema (zero values, lists
//!   of one element so comprehension bodies run, empty maps): an operator or
//!   function error is a type error, while errors that depend on data (a
//!   missing map key, division by zero, an index out of range, an overflow,
//!   a function refusing its argument) are not. A condition must give a bool.
//!
//! Numbers: comparisons mix ints and doubles by value (`x >= 1` with `x` a
//! double is fine, as is `1 == 1.0`); arithmetic does not (`x + 1` is a type
//! error: write `x + 1.0`). An integer in JSON binds as a double where the
//! schema declares a double.
//!
//! Stack: the `cel` parser and interpreter recurse per level, and in a debug
//! build a level of parenthesised nesting takes ~160 KiB of the parser's
//! stack. Compilation therefore runs on a thread of its own with a large
//! stack; evaluation runs on the caller's thread when the tree is shallow
//! and on such a thread when it is deep. Nothing here panics: a panic inside
//! `cel` is caught and answered as an [`ExprError::Internal`].
//!
//! Must not depend on: any I/O, tokio, HTTP, SQL, other modelops crates.

mod check;
mod schema;
mod value;

pub use schema::{Schema, Type};
pub use value::{Bindings, MapKey, Value};

use cel::common::ast::IdedExpr;
use cel::{Context, Env, ExecutionError};
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The longest source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// The deepest bracket (and `? :` chain) nesting accepted.
pub const MAX_NESTING: usize = 32;
/// The deepest expression tree accepted.
pub const MAX_DEPTH: usize = 64;

/// Compilation's stack: enough for the parser at [`MAX_NESTING`] and the
/// interpreter at [`MAX_DEPTH`] in a debug build, with room to spare. Only
/// the pages touched are committed.
const COMPILE_STACK: usize = 64 << 20;
/// The stack of evaluations deeper than [`INLINE_DEPTH`].
const EVAL_STACK: usize = 16 << 20;
/// Trees up to this deep are evaluated on the caller's thread. A level takes
/// ~2 KiB of stack in a release build and ~64 KiB in a debug build; the
/// bound keeps either well inside a 2 MiB thread (tokio's default).
const INLINE_DEPTH: usize = if cfg!(debug_assertions) { 8 } else { 48 };

/// A place in the source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of `source`.
    pub(crate) fn at(source: &str, offset: usize) -> Position {
        let mut line = 1;
        let mut column = 1;
        for (i, c) in source.char_indices() {
            if i >= offset {
                break;
            }
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

fn at_prefix(at: &Option<Position>) -> String {
    at.map(|p| format!("{p}: ")).unwrap_or_default()
}

fn binding_message(path: &str, problem: &str) -> String {
    if path.is_empty() {
        problem.to_string()
    } else {
        format!("`{path}`: {problem}")
    }
}

/// Everything that can go wrong compiling, binding or evaluating. Errors of
/// the source carry their [`Position`] where it is known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("the expression is empty")]
    Empty,
    #[error("the expression is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("{}nesting is deeper than {max} levels", at_prefix(.at))]
    TooDeep { max: usize, at: Option<Position> },
    #[error("the expression is {depth} operations deep; at most {max} are allowed (group long chains like `a + b + c + d` as `(a + b) + (c + d)`)")]
    TooComplex { depth: usize, max: usize },
    #[error("{at}: {message}")]
    Syntax { message: String, at: Position },
    #[error("{}`{name}` is not declared (variables: {declared})", at_prefix(.at))]
    UndeclaredVariable { name: String, declared: String, at: Option<Position> },
    #[error("{}`{name}` is not a known function{hint}", at_prefix(.at))]
    UnknownFunction { name: String, hint: String, at: Option<Position> },
    #[error("{}`{field}` is not a field of `{object}` (fields: {fields})", at_prefix(.at))]
    UnknownField { field: String, object: String, fields: String, at: Option<Position> },
    /// An operator or function applied to values it does not take, found by
    /// the static walk (with a position) or on the prototype (without).
    #[error("{}{message}", at_prefix(.at))]
    Type { message: String, at: Option<Position> },
    #[error("the condition gives {found}, not a bool")]
    NotBool { found: String },
    /// A JSON value that does not have the declared type; `path` is where in
    /// the variable (`approvals[0].at`).
    #[error("{}", binding_message(.path, .problem))]
    Binding { path: String, problem: String },
    #[error("`{name}` is not bound")]
    Unbound { name: String },
    /// A runtime error: a missing map key, a division by zero, …
    #[error("{message}")]
    Evaluation { message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExprError {
    /// Where in the source the error is, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            ExprError::Syntax { at, .. } => Some(*at),
            ExprError::TooDeep { at, .. }
            | ExprError::UndeclaredVariable { at, .. }
            | ExprError::UnknownFunction { at, .. }
            | ExprError::UnknownField { at, .. }
            | ExprError::Type { at, .. } => *at,
            _ => None,
        }
    }
}

/// The environment: the standard library and the `strings` extension. Built
/// once; a failure (a `cel` bug) is reported by every compile.
static ENV: LazyLock<Result<Arc<Env>, String>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings).map_err(|e| format!("the CEL environment could not be built: {e}"))?;
    Ok(Arc::new(env))
});

fn env() -> Result<Arc<Env>, ExprError> {
    ENV.as_ref().map(Arc::clone).map_err(|e| ExprError::Internal(e.clone()))
}

/// A compiled expression, checked against the schema it was compiled with.
/// Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Expression {
    source: Arc<str>,
    ast: Arc<IdedExpr>,
    depth: usize,
    /// The declared variables it reads.
    variables: Arc<[String]>,
}

#[derive(Clone, Copy, PartialEq)]
enum Want {
    Any,
    Bool,
}

/// Compiles `source` against `schema`: any result type.
pub fn compile(source: &str, schema: &Schema) -> Result<Expression, ExprError> {
    compile_as(source, schema, Want::Any)
}

/// Compiles a condition: like [`compile`], and the result must be a bool.
pub fn compile_condition(source: &str, schema: &Schema) -> Result<Expression, ExprError> {
    compile_as(source, schema, Want::Bool)
}

fn compile_as(source: &str, schema: &Schema, want: Want) -> Result<Expression, ExprError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(ExprError::TooLong { len: source.len(), max: MAX_SOURCE_BYTES });
    }
    if source.trim().is_empty() {
        return Err(ExprError::Empty);
    }
    check::nesting(source, MAX_NESTING)?;
    // The tree of a refused source is dropped on the big stack too: dropping
    // recurses as deep as the tree.
    on_big_stack(COMPILE_STACK, || compile_here(source, schema, want))
}

fn compile_here(source: &str, schema: &Schema, want: Want) -> Result<Expression, ExprError> {
    let env = env()?;
    // `max_recursion_depth` fits a u16 by construction.
    let parser = env.parser().enable_optional_syntax(false).max_recursion_depth(MAX_NESTING as u16);
    let (ast, info) = parser.parse_with_source_info(source).map_err(syntax_error)?;
    let depth = check::depth(&ast);
    if depth > MAX_DEPTH {
        return Err(ExprError::TooComplex { depth, max: MAX_DEPTH });
    }
    let checked = check::walk(&ast, schema, &info)?;
    let prototype = Bindings::prototype(schema)?;
    match run(&ast, &prototype)? {
        Ok(value) => {
            if want == Want::Bool && !matches!(value, cel::Value::Bool(_)) {
                return Err(ExprError::NotBool { found: with_article(&value::cel_type_name(&value)) });
            }
        }
        Err(e) if depends_on_data(&e) => {
            if want == Want::Bool && !matches!(checked.result, check::St::Bool | check::St::Dyn) {
                return Err(ExprError::NotBool { found: checked.result.described().to_string() });
            }
        }
        Err(e) => return Err(ExprError::Type { message: describe(&e), at: None }),
    }
    Ok(Expression { source: source.into(), ast: Arc::new(ast), depth, variables: checked.variables.into_iter().collect::<Vec<_>>().into() })
}

impl Expression {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The declared variables the expression reads, by name.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(String::as_str)
    }

    pub fn evaluate(&self, bindings: &Bindings) -> Result<Value, ExprError> {
        if let Some(name) = self.variables.iter().find(|v| !bindings.is_bound(v)) {
            return Err(ExprError::Unbound { name: name.clone() });
        }
        let evaluate = || run(&self.ast, bindings)?.map_err(|e| ExprError::Evaluation { message: describe(&e) }).and_then(Value::from_cel);
        if self.depth <= INLINE_DEPTH {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(evaluate)).unwrap_or_else(|_| Err(panicked()))
        } else {
            on_big_stack(EVAL_STACK, evaluate)
        }
    }

    /// Evaluates a condition; a result other than a bool is an error.
    pub fn evaluate_bool(&self, bindings: &Bindings) -> Result<bool, ExprError> {
        match self.evaluate(bindings)? {
            Value::Bool(b) => Ok(b),
            other => Err(ExprError::NotBool { found: with_article(other.type_name()) }),
        }
    }
}

/// Evaluates `ast` over `bindings`: the outer error is ours (no
/// environment), the inner one the interpreter's.
fn run(ast: &IdedExpr, bindings: &Bindings) -> Result<Result<cel::Value, ExecutionError>, ExprError> {
    let mut ctx = Context::with_env(env()?);
    ctx.set_variable_resolver(bindings);
    Ok(cel::Value::resolve(ast, &ctx))
}

fn panicked() -> ExprError {
    ExprError::Internal("the CEL interpreter panicked".into())
}

/// Runs `f` on a scoped thread with a `stack`-byte stack.
fn on_big_stack<T: Send>(stack: usize, f: impl FnOnce() -> Result<T, ExprError> + Send) -> Result<T, ExprError> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("modelops-expr".into())
            .stack_size(stack)
            .spawn_scoped(scope, f)
            .map_err(|e| ExprError::Internal(format!("could not start the expression thread: {e}")))?;
        handle.join().unwrap_or_else(|_| Err(panicked()))
    })
}

fn with_article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

fn syntax_error(errors: cel::ParseErrors) -> ExprError {
    let too_deep = errors
        .errors
        .iter()
        .any(|e| e.msg.contains("Recursion limit") || e.source.as_ref().is_some_and(|s| s.to_string().contains("Recursion limit")));
    let positioned = errors.errors.iter().find(|e| e.pos.0 >= 1 && e.pos.1 >= 1);
    let at = positioned.map(|e| Position { line: e.pos.0.unsigned_abs(), column: e.pos.1.unsigned_abs() });
    if too_deep {
        return ExprError::TooDeep { max: MAX_NESTING, at };
    }
    let message = positioned.or(errors.errors.first()).map(|e| e.msg.as_str()).unwrap_or("the expression could not be parsed");
    let message = message.strip_prefix("Syntax error: ").unwrap_or(message);
    ExprError::Syntax { message: lowercase_first(message), at: at.unwrap_or(Position { line: 1, column: 1 }) }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Errors that say something about the data, not about the expression: the
/// prototype cannot tell whether real data would raise them.
fn depends_on_data(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::NoSuchKey(_)
            | ExecutionError::DivisionByZero(_)
            | ExecutionError::RemainderByZero(_)
            | ExecutionError::IndexOutOfBounds(_)
            | ExecutionError::Overflow(..)
            | ExecutionError::FunctionError { .. }
            | ExecutionError::DuplicateKey(_)
    )
}

/// CEL's names for the `cel` crate's type names.
fn type_label(name: &str) -> &str {
    match name {
        "float" => "double",
        "google.protobuf.Timestamp" => "timestamp",
        "google.protobuf.Duration" => "duration",
        other => other,
    }
}

fn types_of(values: &[&cel::Value]) -> String {
    values.iter().map(|v| value::cel_type_name(v)).collect::<Vec<_>>().join(" and ")
}

/// An interpreter error in words: lowercase, names in backticks.
pub(crate) fn describe(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(key) => format!("no such key {}", value::quote(key)),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "remainder by zero".into(),
        ExecutionError::IndexOutOfBounds(index) => format!("index `{}` is out of range", cel_text(index)),
        ExecutionError::Overflow(op, a, b) => format!("`{}` overflows on {}", check::operator_symbol(op), types_of(&[a, b])),
        ExecutionError::NoSuchOverload(overload) => {
            let function = check::operator_symbol(overload.function());
            let args = overload.argument_types();
            let args = args.iter().map(|t| type_label(t)).collect::<Vec<_>>();
            if overload.is_member_function() && !args.is_empty() {
                format!("`{function}` cannot be called on a {} with ({})", args[0], args[1..].join(", "))
            } else {
                format!("`{function}` cannot be applied to ({})", args.join(", "))
            }
        }
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => {
            format!("`{}` cannot be applied to {}", check::operator_symbol(op), types_of(&[a, b]))
        }
        ExecutionError::ValuesNotComparable(a, b) => format!("{} cannot be compared", types_of(&[a, b])),
        ExecutionError::UndeclaredReference(name) => format!("`{name}` is not declared"),
        ExecutionError::FunctionError { function, message } => format!("`{function}`: {}", lowercase_first(message)),
        ExecutionError::UnexpectedType { got, want } => format!("expected {want}, got {got}"),
        ExecutionError::UnsupportedIndex(index, container) => {
            format!(
                "{} cannot be indexed by {}",
                with_article(&value::cel_type_name(container)),
                with_article(&value::cel_type_name(index))
            )
        }
        ExecutionError::UnsupportedKeyType(key) => format!("{} cannot be a map key", with_article(&value::cel_type_name(key))),
        ExecutionError::DuplicateKey(key) => format!("the map repeats the key `{}`", cel_text(key)),
        ExecutionError::InvalidArgumentCount { expected, actual } => format!("expected {expected} arguments, got {actual}"),
        other => lowercase_first(&other.to_string()),
    }
}

/// A scalar as text for a message.
fn cel_text(v: &cel::Value) -> String {
    match v {
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::Float(d) => d.to_string(),
        cel::Value::String(s) => s.to_string(),
        cel::Value::Bool(b) => b.to_string(),
        other => value::cel_type_name(other),
    }
}

#[cfg(test)]
mod tests;
