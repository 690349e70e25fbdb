//! The language of MLflow's search calls: filter strings
//! (`metrics.rmse < 0.5 and params.alpha = '0.1'`) and `order_by` clauses
//! (`metrics.rmse DESC`), parsed into a small tree and evaluated over rows
//! the caller supplies ([`Row`]), with the semantics of MLflow's server
//! (`mlflow/utils/search_utils.py`) for `search_runs`,
//! `search_registered_models`, `search_model_versions` and
//! `search_logged_models`.
//!
//! Owns: the grammar, the per-entity rules (which attributes exist, which
//! are numbers, which key kinds an entity has), the type rules (numbers
//! with comparisons, strings with `=`/`!=`/`LIKE`/`ILIKE`, lists with
//! `IN`/`NOT IN`), `LIKE` matching and the order of rows. Not the rows:
//! the caller maps its records onto [`Row`].
//!
//! Grammar: clauses joined by `AND` (any case; `OR` and parentheses are
//! refused by name). A key is `prefix.name` — `attribute(s)`/`attr`/`run`,
//! `metric(s)`, `param(s)`/`parameter(s)`, `tag(s)`, `dataset(s)` — or a bare
//! attribute name; the name may hold dots (`tags.mlflow.user`) or be quoted
//! with backticks or double quotes (``tags.`mlflow.runName` ``). Values are
//! single- or double-quoted strings (a doubled quote, `\'` and `\\` escape;
//! any other backslash is kept, so `LIKE '50\%'` reaches the matcher),
//! numbers, or for `IN`/`NOT IN` a parenthesised list of strings.
//!
//! Never panics, whatever the input: errors name the offending token and
//! the character index (from 0) where it starts.

use std::cmp::Ordering;
use std::fmt;

/// Longest filter (and `order_by` clause) accepted, in bytes: beyond it a
/// filter is an attack or a mistake, and lexing cost stays bounded.
pub const MAX_FILTER_LEN: usize = 64 * 1024;
/// Most clauses in one filter, and most `order_by` clauses in one call.
pub const MAX_CLAUSES: usize = 500;

/// What is searched: each has its own attributes and key kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Run,
    RegisteredModel,
    ModelVersion,
    LoggedModel,
}

impl Entity {
    fn plural(self) -> &'static str {
        match self {
            Entity::Run => "runs",
            Entity::RegisteredModel => "registered models",
            Entity::ModelVersion => "model versions",
            Entity::LoggedModel => "logged models",
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Joined by `AND`; empty matches every row.
    pub clauses: Vec<Clause>,
}

/// One comparison: `key op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub key: Key,
    pub op: Op,
    pub value: Literal,
}

/// What a clause or an order key reads from a row. Attribute names are
/// canonical: aliases are resolved at parse time (`created` is
/// `start_time`, `run name` is `run_name`, `creation_time` of a logged
/// model is `creation_timestamp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Attribute(String),
    Metric(String),
    Param(String),
    Tag(String),
    /// A dataset field of a run: `name`, `digest` or `context`.
    Dataset(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
}

/// A clause's right-hand side. The parser never produces NaN or an
/// unquoted string; `List` only with `IN` / `NOT IN`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    List(Vec<String>),
}

/// One `order_by` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub key: Key,
    pub ascending: bool,
}

/// Why a filter or `order_by` clause was refused; the message names the
/// offending token and its character index, for the client to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    pub message: String,
}

fn error(message: impl Into<String>) -> FilterError {
    FilterError { message: message.into() }
}

/// A value a row holds for an attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    Num(f64),
}

/// What the caller supplies per row for evaluation and ordering. `None`
/// (or an empty list) means the row has no such key.
pub trait Row {
    /// A canonical attribute name (see [`Key`]); numeric attributes
    /// (times, `version_number`) as [`Value::Num`].
    fn attribute(&self, name: &str) -> Option<Value<'_>>;
    fn metric(&self, key: &str) -> Option<f64>;
    fn param(&self, key: &str) -> Option<&str>;
    fn tag(&self, key: &str) -> Option<&str>;
    /// The values of a dataset field (`name`, `digest`, `context`) over the
    /// row's datasets; empty when it has none.
    fn dataset(&self, field: &str) -> Vec<&str>;
}

// ---- the entities' attributes ----

/// The attributes of an entity: those a filter may name, those only
/// `order_by` may name, and which of either are numbers.
struct Attributes {
    filter: &'static [&'static str],
    order_only: &'static [&'static str],
    numeric: &'static [&'static str],
}

fn attributes(entity: Entity) -> Attributes {
    match entity {
        Entity::Run => Attributes {
            filter: &["run_id", "run_name", "status", "user_id", "start_time", "end_time", "artifact_uri", "lifecycle_stage"],
            order_only: &[],
            numeric: &["start_time", "end_time"],
        },
        // MLflow filters registered models by name only, and orders them by
        // name or time (`timestamp` being its old name for creation time).
        Entity::RegisteredModel => Attributes {
            filter: &["name"],
            order_only: &["creation_timestamp", "last_updated_timestamp", "timestamp"],
            numeric: &["creation_timestamp", "last_updated_timestamp", "timestamp"],
        },
        Entity::ModelVersion => Attributes {
            filter: &["name", "run_id", "source_path", "version_number", "creation_timestamp", "last_updated_timestamp"],
            order_only: &["timestamp"],
            numeric: &["version_number", "creation_timestamp", "last_updated_timestamp", "timestamp"],
        },
        Entity::LoggedModel => Attributes {
            filter: &["name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp", "last_updated_timestamp"],
            order_only: &[],
            numeric: &["creation_timestamp", "last_updated_timestamp"],
        },
    }
}

/// The canonical name of an attribute alias MLflow accepts.
fn canonical_attribute(entity: Entity, name: &str) -> &str {
    match (entity, name) {
        (Entity::Run, "created" | "Created") => "start_time",
        (Entity::Run, "run name" | "Run name" | "Run Name") => "run_name",
        (Entity::LoggedModel, "creation_time") => "creation_timestamp",
        _ => name,
    }
}

/// String attributes that take `IN` / `NOT IN` lists (ids, names, states).
const LIST_ATTRIBUTES: &[&str] = &["run_id", "run_name", "name", "model_id", "status", "source_run_id"];

fn is_numeric(entity: Entity, key: &Key) -> bool {
    match key {
        Key::Metric(_) => true,
        Key::Attribute(a) => attributes(entity).numeric.contains(&a.as_str()),
        Key::Param(_) | Key::Tag(_) | Key::Dataset(_) => false,
    }
}

// ---- lexing ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare word: identifier part, keyword or number text.
    Word(String),
    /// A backticked identifier (never a value).
    Backticked(String),
    /// A double-quoted identifier or string value, as MLflow takes both.
    DoubleQuoted(String),
    /// A single-quoted string value.
    Str(String),
    Dot,
    Comma,
    Open,
    Close,
    Operator(&'static str),
}

/// A token and the character indices it spans.
struct Spanned {
    token: Token,
    start: usize,
    end: usize,
}

/// How a token is shown in an error: as written, near enough.
fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => w.clone(),
        Token::Backticked(q) => format!("`{q}`"),
        Token::DoubleQuoted(q) => format!("\"{q}\""),
        Token::Str(s) => format!("'{s}'"),
        Token::Dot => ".".into(),
        Token::Comma => ",".into(),
        Token::Open => "(".into(),
        Token::Close => ")".into(),
        Token::Operator(o) => (*o).into(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '/')
}

/// A quoted run starting at `start` (the opening quote): its text and the
/// index after the closing quote. `\<quote>` and a doubled quote stand for
/// the quote, `\\` for one backslash; any other backslash is kept as is,
/// so `LIKE` patterns keep their escapes (`'50\%'`).
fn quoted(chars: &[char], start: usize, quote: char, what: &str) -> Result<(String, usize), FilterError> {
    let mut out = String::new();
    let mut i = start + 1;
    while let Some(&c) = chars.get(i) {
        match (c, chars.get(i + 1)) {
            ('\\', Some(&next)) if next == quote || next == '\\' => {
                out.push(next);
                i += 2;
            }
            (c, Some(&next)) if c == quote && next == quote => {
                out.push(quote);
                i += 2;
            }
            (c, _) if c == quote => return Ok((out, i + 1)),
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(error(format!("invalid {what}: the quote {quote} at character {start} is never closed")))
}

fn lex(text: &str, what: &str) -> Result<Vec<Spanned>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens: Vec<Spanned> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        let next = chars.get(i + 1).copied();
        // The token that ends right here, without a gap: a dot after a name
        // separates name parts even before a digit (`params.0.1`), and a
        // word after such a dot is a name part even if it starts with one.
        let adjacent = tokens.last().filter(|t| t.end == i).map(|t| &t.token);
        let after_name = matches!(adjacent, Some(Token::Word(_) | Token::Backticked(_) | Token::DoubleQuoted(_)));
        let after_dot = matches!(adjacent, Some(Token::Dot));
        let token = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '\'' | '"' | '`' => {
                let (s, after) = quoted(&chars, i, c, what)?;
                i = after;
                match c {
                    '\'' => Token::Str(s),
                    '"' => Token::DoubleQuoted(s),
                    _ => Token::Backticked(s),
                }
            }
            '.' if after_name || !next.is_some_and(|d| d.is_ascii_digit()) => {
                i += 1;
                Token::Dot
            }
            ',' | '(' | ')' | '=' => {
                i += 1;
                match c {
                    ',' => Token::Comma,
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Operator("="),
                }
            }
            '!' if next == Some('=') => {
                i += 2;
                Token::Operator("!=")
            }
            '<' | '>' => {
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => ("<=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', _) => ("<", 1),
                    (_, Some('=')) => (">=", 2),
                    _ => (">", 1),
                };
                i += len;
                Token::Operator(op)
            }
            c if is_word_char(c) && after_dot => {
                let mut word = String::new();
                while let Some(&d) = chars.get(i).filter(|d| is_word_char(**d)) {
                    word.push(d);
                    i += 1;
                }
                Token::Word(word)
            }
            c if c.is_ascii_digit() || (matches!(c, '-' | '+' | '.') && next.is_some_and(|d| d.is_ascii_digit() || d == '.')) => {
                // A number: digits, dots, letters (an exponent, or garbage
                // the parser names), a sign up front or after an exponent.
                let mut word = String::new();
                while let Some(&d) = chars.get(i) {
                    let sign_ok = word.is_empty() || word.ends_with(['e', 'E']);
                    if d.is_ascii_alphanumeric() || d == '.' || (matches!(d, '-' | '+') && sign_ok) {
                        word.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                Token::Word(word)
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while let Some(&d) = chars.get(i).filter(|d| is_word_char(**d)) {
                    word.push(d);
                    i += 1;
                }
                Token::Word(word)
            }
            other => return Err(error(format!("invalid {what}: unexpected character '{other}' at character {start}"))),
        };
        tokens.push(Spanned { token, start, end: i });
    }
    Ok(tokens)
}

/// A number literal: only digits, dots, signs and exponents, so `inf`,
/// `NaN` and `0x10` are refused (MLflow's SQL lexer has no such numbers).
fn number(word: &str) -> Option<f64> {
    if word.is_empty() || !word.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) {
        return None;
    }
    word.parse().ok()
}

// ---- parsing ----

struct Parser<'a> {
    tokens: &'a [Spanned],
    at: usize,
    entity: Entity,
    /// "filter" or "order_by": what errors call the input.
    what: &'static str,
    /// Parsing `order_by`: order-only attributes are allowed.
    order: bool,
    /// Character count of the input, where "the end" is.
    end: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.at).map(|t| &t.token)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |t| t.start)
    }

    fn unexpected(&self, expected: &str) -> FilterError {
        let what = self.what;
        match self.peek() {
            Some(token) => {
                error(format!("invalid {what}: unexpected token '{}' at character {}, expected {expected}", describe(token), self.position()))
            }
            None => error(format!("invalid {what}: it ends at character {} where {expected} was expected", self.end)),
        }
    }

    /// `prefix.name` or a bare (possibly quoted) attribute, with where it
    /// starts.
    fn key(&mut self) -> Result<(Key, usize), FilterError> {
        let start = self.position();
        let first = match self.peek() {
            Some(Token::Word(w)) => w,
            Some(Token::Backticked(q) | Token::DoubleQuoted(q)) => {
                self.at += 1;
                return Ok((self.attribute(q, start)?, start));
            }
            Some(Token::Open) => {
                return Err(error(format!(
                    "invalid {}: unexpected token '(' at character {start}: parentheses are not supported, only AND joins clauses",
                    self.what
                )))
            }
            _ => return Err(self.unexpected("a key such as `metrics.rmse` or `name`")),
        };
        self.at += 1;
        if self.peek() != Some(&Token::Dot) {
            return Ok((self.attribute(first, start)?, start));
        }
        let make: fn(String) -> Key = match first.to_ascii_lowercase().as_str() {
            "attribute" | "attributes" | "attr" | "run" => Key::Attribute,
            "metric" | "metrics" => Key::Metric,
            "param" | "params" | "parameter" | "parameters" => Key::Param,
            "tag" | "tags" => Key::Tag,
            "dataset" | "datasets" => Key::Dataset,
            _ => {
                return Err(error(format!(
                    "invalid {}: `{first}` at character {start} is not a key type (attributes, metrics, params, tags, datasets)",
                    self.what
                )))
            }
        };
        self.at += 1; // the dot
        let name = match self.tokens.get(self.at) {
            Some(Spanned { token: Token::Word(w), end, .. }) => {
                let (mut name, mut end) = (w.clone(), *end);
                self.at += 1;
                // Unquoted names may hold dots (`tags.mlflow.runName`) as
                // long as nothing separates the parts.
                while let (Some(dot), Some(part)) = (self.tokens.get(self.at), self.tokens.get(self.at + 1)) {
                    match (&dot.token, &part.token) {
                        (Token::Dot, Token::Word(w)) if dot.start == end && part.start == dot.end => {
                            name.push('.');
                            name.push_str(w);
                            end = part.end;
                            self.at += 2;
                        }
                        _ => break,
                    }
                }
                name
            }
            Some(Spanned { token: Token::Backticked(q) | Token::DoubleQuoted(q), .. }) => {
                self.at += 1;
                q.clone()
            }
            _ => return Err(self.unexpected(&format!("a name after `{first}.`"))),
        };
        let key = make(name);
        let refuse = |kind: &str| {
            error(format!("invalid {}: `{first}` at character {start}: {kind} cannot be searched on {}", self.what, self.entity.plural()))
        };
        match key {
            Key::Attribute(a) => return Ok((self.attribute(&a, start)?, start)),
            Key::Metric(_) if !matches!(self.entity, Entity::Run | Entity::LoggedModel) => return Err(refuse("metrics")),
            Key::Param(_) if !matches!(self.entity, Entity::Run | Entity::LoggedModel) => return Err(refuse("params")),
            Key::Dataset(ref field) => {
                if self.entity != Entity::Run {
                    return Err(refuse("datasets"));
                }
                if self.order {
                    return Err(error(format!("invalid order_by: `{first}.{field}` at character {start}: runs cannot be ordered by datasets")));
                }
                if !matches!(field.as_str(), "name" | "digest" | "context") {
                    return Err(error(format!(
                        "invalid {}: `{field}` at character {start} is not a dataset field (name, digest, context)",
                        self.what
                    )));
                }
            }
            _ => {}
        }
        Ok((key, start))
    }

    /// An attribute of the entity, by its canonical name.
    fn attribute(&self, name: &str, start: usize) -> Result<Key, FilterError> {
        let canonical = canonical_attribute(self.entity, name);
        let known = attributes(self.entity);
        if known.filter.contains(&canonical) || (self.order && known.order_only.contains(&canonical)) {
            return Ok(Key::Attribute(canonical.to_string()));
        }
        let mut valid = known.filter.to_vec();
        if self.order {
            valid.extend_from_slice(known.order_only);
        }
        Err(error(format!(
            "invalid {}: `{name}` at character {start} is not an attribute of {}; valid ones are {}",
            self.what,
            self.entity.plural(),
            valid.join(", ")
        )))
    }

    fn op(&mut self) -> Result<Op, FilterError> {
        let op = match self.peek() {
            Some(Token::Operator("=")) => Op::Eq,
            Some(Token::Operator("!=")) => Op::Ne,
            Some(Token::Operator("<")) => Op::Lt,
            Some(Token::Operator("<=")) => Op::Le,
            Some(Token::Operator(">")) => Op::Gt,
            Some(Token::Operator(">=")) => Op::Ge,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => {
                self.at += 1;
                match self.peek() {
                    Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::NotIn,
                    _ => return Err(self.unexpected("`IN` after `NOT`")),
                }
            }
            _ => return Err(self.unexpected("a comparison (=, !=, <>, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)")),
        };
        self.at += 1;
        Ok(op)
    }

    fn literal(&mut self, op: Op) -> Result<Literal, FilterError> {
        if matches!(op, Op::In | Op::NotIn) {
            if self.peek() != Some(&Token::Open) {
                return Err(self.unexpected("`(` opening the list of values"));
            }
            self.at += 1;
            let mut values = Vec::new();
            loop {
                match self.peek() {
                    Some(Token::Str(s) | Token::DoubleQuoted(s)) => values.push(s.clone()),
                    _ => return Err(self.unexpected("a quoted string in the list")),
                }
                self.at += 1;
                match self.peek() {
                    Some(Token::Comma) => self.at += 1,
                    Some(Token::Close) => {
                        self.at += 1;
                        return Ok(Literal::List(values));
                    }
                    _ => return Err(self.unexpected("`,` or `)` in the list")),
                }
            }
        }
        let value = match self.peek() {
            Some(Token::Str(s) | Token::DoubleQuoted(s)) => Literal::Str(s.clone()),
            Some(Token::Word(w)) => match number(w) {
                Some(n) => Literal::Num(n),
                None => return Err(self.unexpected("a quoted string or a number")),
            },
            _ => return Err(self.unexpected("a quoted string or a number")),
        };
        self.at += 1;
        Ok(value)
    }
}

/// The type rules: numeric keys compare with numbers, string keys match
/// strings, lists only where MLflow takes them. Returns the clause with
/// its value as evaluation needs it.
fn check(entity: Entity, clause: Clause, at: usize) -> Result<Clause, FilterError> {
    let numeric = is_numeric(entity, &clause.key);
    let comparison = matches!(clause.op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge);
    let ok = match (&clause.value, clause.op) {
        (Literal::Num(_), _) => numeric && comparison,
        // MLflow converts a quoted version number (`version_number = '3'`).
        (Literal::Str(s), _) if numeric && comparison && entity == Entity::ModelVersion && matches!(clause.key, Key::Attribute(_)) => {
            if let Some(n) = number(s) {
                return Ok(Clause { value: Literal::Num(n), ..clause });
            }
            false
        }
        (Literal::Str(_), Op::Eq | Op::Ne | Op::Like | Op::ILike) => !numeric,
        (Literal::List(_), Op::In | Op::NotIn) => match &clause.key {
            Key::Attribute(a) => LIST_ATTRIBUTES.contains(&a.as_str()),
            Key::Dataset(_) => true,
            _ => false,
        },
        _ => false,
    };
    if ok {
        return Ok(clause);
    }
    let key = &clause.key;
    let expected = if numeric {
        "a number with =, !=, <, <=, >, >="
    } else if matches!(key, Key::Dataset(_)) || matches!(key, Key::Attribute(a) if LIST_ATTRIBUTES.contains(&a.as_str())) {
        "a quoted string with =, !=, LIKE, ILIKE, or a list of them with IN, NOT IN"
    } else {
        "a quoted string with =, !=, LIKE, ILIKE"
    };
    let given = match clause.value {
        Literal::Str(_) => "a string",
        Literal::Num(_) => "a number",
        Literal::List(_) => "a list",
    };
    Err(error(format!("invalid filter: `{key} {}` at character {at} does not take {given}; `{key}` takes {expected}", clause.op)))
}

/// Parses a filter string; empty (or blank) matches everything.
pub fn parse_filter(entity: Entity, text: &str) -> Result<Filter, FilterError> {
    if text.len() > MAX_FILTER_LEN {
        return Err(error(format!("invalid filter: {} bytes is longer than the {MAX_FILTER_LEN} accepted", text.len())));
    }
    let tokens = lex(text, "filter")?;
    let mut parser = Parser { tokens: &tokens, at: 0, entity, what: "filter", order: false, end: text.chars().count() };
    let mut clauses = Vec::new();
    if tokens.is_empty() {
        return Ok(Filter { clauses });
    }
    loop {
        if clauses.len() == MAX_CLAUSES {
            return Err(error(format!("invalid filter: more than {MAX_CLAUSES} clauses (the next starts at character {})", parser.position())));
        }
        let (key, at) = parser.key()?;
        let op = parser.op()?;
        let value = parser.literal(op)?;
        clauses.push(check(entity, Clause { key, op, value }, at)?);
        match parser.peek() {
            None => break,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {
                let and_at = parser.position();
                parser.at += 1;
                if parser.peek().is_none() {
                    return Err(error(format!("invalid filter: the filter ends with '{w}' at character {and_at}")));
                }
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("or") => {
                return Err(error(format!(
                    "invalid filter: unexpected token '{w}' at character {}: only AND joins clauses",
                    parser.position()
                )));
            }
            Some(_) => return Err(parser.unexpected("`AND` or the end of the filter")),
        }
    }
    Ok(Filter { clauses })
}

/// Parses `order_by` clauses, `<key> [ASC|DESC]` each (ascending when
/// neither is given). Datasets cannot order.
pub fn parse_order_by(entity: Entity, clauses: &[String]) -> Result<Vec<OrderKey>, FilterError> {
    if clauses.len() > MAX_CLAUSES {
        return Err(error(format!("invalid order_by: {} clauses is more than the {MAX_CLAUSES} accepted", clauses.len())));
    }
    let mut keys = Vec::with_capacity(clauses.len());
    for (index, clause) in clauses.iter().enumerate() {
        if clause.len() > MAX_FILTER_LEN {
            return Err(error(format!("invalid order_by: clause {index} is longer than the {MAX_FILTER_LEN} bytes accepted")));
        }
        let tokens = lex(clause, "order_by")?;
        if tokens.is_empty() {
            return Err(error(format!("invalid order_by: clause {index} is empty")));
        }
        let mut parser = Parser { tokens: &tokens, at: 0, entity, what: "order_by", order: true, end: clause.chars().count() };
        let (key, _) = parser.key()?;
        let ascending = match parser.peek() {
            None => true,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("asc") => true,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("desc") => false,
            Some(_) => return Err(parser.unexpected("ASC, DESC or the end of the clause")),
        };
        parser.at += 1;
        if parser.peek().is_some() {
            return Err(parser.unexpected("the end of the clause"));
        }
        keys.push(OrderKey { key, ascending });
    }
    Ok(keys)
}

// ---- rendering: the canonical text of a tree, which parses back to it ----

/// A name that reads back the same without quotes: dot-separated runs of
/// ASCII letters, digits and `_`.
fn is_plain(name: &str) -> bool {
    !name.is_empty() && name.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str, quote: char) -> fmt::Result {
    use fmt::Write;
    f.write_char(quote)?;
    for c in text.chars() {
        if c == quote || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char(quote)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, name) = match self {
            // Canonical attribute names are plain, and bare is how the
            // client writes them.
            Key::Attribute(a) if is_plain(a) && !a.contains('.') => return f.write_str(a),
            Key::Attribute(a) => ("attributes", a),
            Key::Metric(m) => ("metrics", m),
            Key::Param(p) => ("params", p),
            Key::Tag(t) => ("tags", t),
            Key::Dataset(d) => ("datasets", d),
        };
        write!(f, "{prefix}.")?;
        if is_plain(name) {
            f.write_str(name)
        } else {
            write_quoted(f, name, '`')
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
        })
    }
}

impl fmt::Display for Literal {
    /// Numbers in Rust's shortest round-trip form; infinities as `1e999`
    /// (which parses back to them); NaN as `NaN`, which does not parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write_quoted(f, s, '\''),
            Literal::Num(n) if n.is_infinite() => f.write_str(if *n > 0.0 { "1e999" } else { "-1e999" }),
            Literal::Num(n) => write!(f, "{n:?}"),
            Literal::List(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, item, '\'')?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.key, self.op, self.value)
    }
}

impl fmt::Display for Filter {
    /// The clauses joined by ` AND `; [`parse_filter`] reads it back to the
    /// same tree (for the entity it was parsed for).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write!(f, "{clause}")?;
        }
        Ok(())
    }
}

impl fmt::Display for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, if self.ascending { "ASC" } else { "DESC" })
    }
}

// ---- evaluation ----

/// One element of a compiled `LIKE` pattern.
enum Pattern {
    /// `%`: any run of characters, maybe empty.
    Any,
    /// `_`: exactly one character.
    One,
    Char(char),
}

/// `LIKE` matching, anchored at both ends: `%` any run of characters, `_`
/// one, `\` makes the next character literal (`\%`, `\_`, `\\`; a trailing
/// `\` is itself), as PostgreSQL's default. Case-insensitive compares
/// characters by their Unicode lower case, one character with one. Linear
/// memory and O(text × pattern) time at worst: one backtrack point, no
/// recursion, so no pattern is exponential.
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let mut compiled = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            // Consecutive `%` are one.
            '%' if matches!(compiled.last(), Some(Pattern::Any)) => {}
            '%' => compiled.push(Pattern::Any),
            '_' => compiled.push(Pattern::One),
            '\\' => compiled.push(Pattern::Char(chars.next().unwrap_or('\\'))),
            c => compiled.push(Pattern::Char(c)),
        }
    }
    let same = |p: char, t: char| p == t || (case_insensitive && p.to_lowercase().eq(t.to_lowercase()));
    let text: Vec<char> = text.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    // The last `%` seen: the pattern index after it, and the text index its
    // run currently ends at. On a mismatch the run grows by one character.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&t) = text.get(ti) {
        match compiled.get(pi) {
            Some(Pattern::Any) => {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            Some(Pattern::One) => {
                ti += 1;
                pi += 1;
                continue;
            }
            Some(Pattern::Char(p)) if same(*p, t) => {
                ti += 1;
                pi += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((after, run_end)) => {
                pi = after;
                ti = run_end + 1;
                star = Some((after, run_end + 1));
            }
            None => return false,
        }
    }
    compiled[pi.min(compiled.len())..].iter().all(|p| matches!(p, Pattern::Any))
}

enum Found<'a> {
    Str(&'a str),
    Num(f64),
    Many(Vec<&'a str>),
    Missing,
}

fn lookup<'a>(row: &'a dyn Row, key: &Key) -> Found<'a> {
    match key {
        Key::Attribute(a) => match row.attribute(a) {
            Some(Value::Str(s)) => Found::Str(s),
            Some(Value::Num(n)) => Found::Num(n),
            None => Found::Missing,
        },
        Key::Metric(m) => row.metric(m).map_or(Found::Missing, Found::Num),
        Key::Param(p) => row.param(p).map_or(Found::Missing, Found::Str),
        Key::Tag(t) => row.tag(t).map_or(Found::Missing, Found::Str),
        Key::Dataset(d) => match row.dataset(d) {
            values if values.is_empty() => Found::Missing,
            values => Found::Many(values),
        },
    }
}

fn compare_str(found: &str, op: Op, value: &Literal) -> bool {
    match (op, value) {
        (Op::Eq, Literal::Str(v)) => found == v,
        (Op::Ne, Literal::Str(v)) => found != v,
        (Op::Like, Literal::Str(v)) => like(found, v, false),
        (Op::ILike, Literal::Str(v)) => like(found, v, true),
        (Op::In, Literal::List(vs)) => vs.iter().any(|v| v == found),
        (Op::NotIn, Literal::List(vs)) => vs.iter().all(|v| v != found),
        _ => false,
    }
}

/// IEEE comparison: NaN equals nothing and differs from everything.
fn compare_num(found: f64, op: Op, value: &Literal) -> bool {
    match (op, value) {
        (Op::Eq, Literal::Num(v)) => found == *v,
        (Op::Ne, Literal::Num(v)) => found != *v,
        (Op::Lt, Literal::Num(v)) => found < *v,
        (Op::Le, Literal::Num(v)) => found <= *v,
        (Op::Gt, Literal::Num(v)) => found > *v,
        (Op::Ge, Literal::Num(v)) => found >= *v,
        _ => false,
    }
}

impl Filter {
    /// Whether `row` satisfies every clause. A row without the key matches
    /// no comparison, except `!=` / `NOT IN` on a tag of a registry entity
    /// (registered model, model version, logged model): the client appends
    /// ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every registry search,
    /// and models without that tag must match it. A dataset clause matches
    /// when any of the run's datasets does.
    pub fn matches(&self, entity: Entity, row: &dyn Row) -> bool {
        self.clauses.iter().all(|clause| match lookup(row, &clause.key) {
            Found::Str(s) => compare_str(s, clause.op, &clause.value),
            Found::Num(n) => compare_num(n, clause.op, &clause.value),
            Found::Many(values) => values.iter().any(|s| compare_str(s, clause.op, &clause.value)),
            Found::Missing => {
                matches!(clause.key, Key::Tag(_))
                    && matches!(clause.op, Op::Ne | Op::NotIn)
                    && matches!(entity, Entity::RegisteredModel | Entity::ModelVersion | Entity::LoggedModel)
            }
        })
    }
}

/// Where a value sorts regardless of direction: present values first, then
/// NaN, then rows without the key (as MLflow's server sorts).
fn rank(found: &Found<'_>) -> u8 {
    match found {
        Found::Num(n) if n.is_nan() => 1,
        Found::Missing => 2,
        _ => 0,
    }
}

/// Orders two rows by `keys`, the first that differs deciding; `Equal`
/// leaves the tie to the caller's own tie-breaker. Numbers numerically,
/// strings by code point; NaN after every number and rows without the key
/// after everything, whichever the direction (MLflow puts NULLs last).
pub fn compare(keys: &[OrderKey], a: &dyn Row, b: &dyn Row) -> Ordering {
    for key in keys {
        let (x, y) = (lookup(a, &key.key), lookup(b, &key.key));
        let ordering = match rank(&x).cmp(&rank(&y)) {
            Ordering::Equal if rank(&x) > 0 => Ordering::Equal,
            Ordering::Equal => {
                let ordering = match (&x, &y) {
                    (Found::Num(x), Found::Num(y)) => x.total_cmp(y),
                    (Found::Str(x), Found::Str(y)) => x.cmp(y),
                    (Found::Many(x), Found::Many(y)) => x.cmp(y),
                    // A caller mixing kinds for one key: numbers first.
                    (Found::Num(_), _) => Ordering::Less,
                    (_, Found::Num(_)) => Ordering::Greater,
                    (Found::Str(_), _) => Ordering::Less,
                    _ => Ordering::Greater,
                };
                if key.ascending {
                    ordering
                } else {
                    ordering.reverse()
                }
            }
            unequal => unequal,
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct TestRow {
        attributes: HashMap<&'static str, Value<'static>>,
        metrics: HashMap<&'static str, f64>,
        params: HashMap<&'static str, &'static str>,
        tags: HashMap<&'static str, &'static str>,
        datasets: Vec<(&'static str, &'static str)>,
    }

    impl Row for TestRow {
        fn attribute(&self, name: &str) -> Option<Value<'_>> {
            self.attributes.get(name).copied()
        }
        fn metric(&self, key: &str) -> Option<f64> {
            self.metrics.get(key).copied()
        }
        fn param(&self, key: &str) -> Option<&str> {
            self.params.get(key).copied()
        }
        fn tag(&self, key: &str) -> Option<&str> {
            self.tags.get(key).copied()
        }
        fn dataset(&self, field: &str) -> Vec<&str> {
            self.datasets.iter().filter(|(f, _)| *f == field).map(|(_, v)| *v).collect()
        }
    }

    fn clause(key: Key, op: Op, value: Literal) -> Clause {
        Clause { key, op, value }
    }
    fn attr(name: &str) -> Key {
        Key::Attribute(name.into())
    }
    fn s(text: &str) -> Literal {
        Literal::Str(text.into())
    }
    fn parse(entity: Entity, text: &str) -> Vec<Clause> {
        match parse_filter(entity, text) {
            Ok(filter) => filter.clauses,
            Err(e) => panic!("{text}: {e}"),
        }
    }
    fn parse_err(entity: Entity, text: &str) -> String {
        match parse_filter(entity, text) {
            Ok(filter) => panic!("{text} parsed: {filter:?}"),
            Err(e) => e.message,
        }
    }
    fn order(entity: Entity, clauses: &[&str]) -> Result<Vec<OrderKey>, FilterError> {
        parse_order_by(entity, &clauses.iter().map(|c| c.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_clients_own_strings_parse_to_exact_trees() {
        let prompt = clause(Key::Tag("mlflow.prompt.is_prompt".into()), Op::Ne, s("true"));
        assert_eq!(
            parse(Entity::RegisteredModel, "name LIKE 'rm-%' AND tag.`mlflow.prompt.is_prompt` != 'true'"),
            vec![clause(attr("name"), Op::Like, s("rm-%")), prompt.clone()]
        );
        assert_eq!(parse(Entity::ModelVersion, "tag.`mlflow.prompt.is_prompt` != 'true'"), vec![prompt]);
        assert_eq!(parse(Entity::ModelVersion, "name='rm-1'"), vec![clause(attr("name"), Op::Eq, s("rm-1"))]);
        assert_eq!(
            parse(Entity::Run, "metrics.rmse < 0.5 and params.alpha = '0.1'"),
            vec![clause(Key::Metric("rmse".into()), Op::Lt, Literal::Num(0.5)), clause(Key::Param("alpha".into()), Op::Eq, s("0.1"))]
        );
        assert_eq!(parse(Entity::Run, "attributes.status = 'FINISHED'"), vec![clause(attr("status"), Op::Eq, s("FINISHED"))]);
        assert_eq!(
            parse(Entity::Run, r#"tags."mlflow.runName" ILIKE '%Squid%'"#),
            vec![clause(Key::Tag("mlflow.runName".into()), Op::ILike, s("%Squid%"))]
        );
        assert_eq!(
            parse(Entity::Run, "run_id IN ('a','b')"),
            vec![clause(attr("run_id"), Op::In, Literal::List(vec!["a".into(), "b".into()]))]
        );
        assert_eq!(parse(Entity::ModelVersion, "version_number >= 2"), vec![clause(attr("version_number"), Op::Ge, Literal::Num(2.0))]);
        assert!(parse(Entity::Run, "").is_empty());
        assert!(parse(Entity::Run, " \t\n").is_empty());
    }

    #[test]
    fn identifier_forms() {
        for (prefix, make) in [
            ("attribute", Key::Attribute as fn(String) -> Key),
            ("attributes", Key::Attribute),
            ("attr", Key::Attribute),
            ("run", Key::Attribute),
            ("metric", Key::Metric),
            ("metrics", Key::Metric),
            ("param", Key::Param),
            ("params", Key::Param),
            ("parameter", Key::Param),
            ("parameters", Key::Param),
            ("tag", Key::Tag),
            ("tags", Key::Tag),
            ("dataset", Key::Dataset),
            ("datasets", Key::Dataset),
        ] {
            let (name, value) = match make(String::new()) {
                Key::Attribute(_) => ("run_name", "'x'"),
                Key::Metric(_) => ("m", "1"),
                Key::Dataset(_) => ("digest", "'x'"),
                _ => ("k", "'x'"),
            };
            let clauses = parse(Entity::Run, &format!("{prefix}.{name} = {value}"));
            assert_eq!(clauses[0].key, make(name.into()), "{prefix}");
        }
        assert_eq!(parse(Entity::Run, "tags.mlflow.user = 'root'")[0].key, Key::Tag("mlflow.user".into()));
        assert_eq!(parse(Entity::Run, "tags.`a b` = 'x'")[0].key, Key::Tag("a b".into()));
        assert_eq!(parse(Entity::Run, r#"tags."a b" = 'x'"#)[0].key, Key::Tag("a b".into()));
        assert_eq!(parse(Entity::Run, "tags.`a``b` = 'x'")[0].key, Key::Tag("a`b".into()));
        assert_eq!(parse(Entity::Run, "params.0.1 = 'x'")[0].key, Key::Param("0.1".into()), "a dot after a name splits parts");
        assert_eq!(parse(Entity::Run, "metrics.1st_loss > 1")[0].key, Key::Metric("1st_loss".into()));
        assert_eq!(parse(Entity::Run, "params.a-b/c:d = 'x'")[0].key, Key::Param("a-b/c:d".into()));
        assert_eq!(parse(Entity::Run, "attributes.`start_time` > 1")[0].key, attr("start_time"));
        assert_eq!(parse(Entity::Run, "\"status\" = 'RUNNING'")[0].key, attr("status"));
        assert_eq!(parse(Entity::Run, "METRICS.x < 1")[0].key, Key::Metric("x".into()), "prefixes in any case");
        // Aliases resolve to the canonical attribute.
        assert_eq!(parse(Entity::Run, "created > 5")[0].key, attr("start_time"));
        assert_eq!(parse(Entity::Run, "attributes.`Run Name` = 'x'")[0].key, attr("run_name"));
        assert_eq!(parse(Entity::LoggedModel, "creation_time > 5")[0].key, attr("creation_timestamp"));
        // Each entity's attributes.
        for (entity, text) in [
            (Entity::Run, "run_id = 'a' AND run_name = 'b' AND status = 'c' AND user_id = 'd' AND artifact_uri = 'e' AND lifecycle_stage = 'f' AND start_time > 1 AND end_time < 2"),
            (Entity::RegisteredModel, "name = 'a' AND tags.t = 'b'"),
            (Entity::ModelVersion, "name = 'a' AND run_id = 'b' AND source_path = 'c' AND version_number = 1 AND creation_timestamp > 1 AND last_updated_timestamp > 1"),
            (Entity::LoggedModel, "name = 'a' AND model_id = 'b' AND model_type = 'c' AND status = 'd' AND source_run_id = 'e' AND creation_timestamp > 1 AND last_updated_timestamp > 1 AND metrics.m > 1 AND params.p = 'x'"),
        ] {
            assert!(parse_filter(entity, text).is_ok(), "{entity:?}: {text}");
        }
    }

    #[test]
    fn literals_and_operators() {
        let value = |text: &str| parse(Entity::Run, text).remove(0).value;
        assert_eq!(value("params.p = 'it''s'"), s("it's"));
        assert_eq!(value(r"params.p = 'it\'s'"), s("it's"));
        assert_eq!(value(r#"params.p = "say ""hi""""#), s(r#"say "hi""#));
        assert_eq!(value(r"params.p = 'a\\b'"), s(r"a\b"));
        assert_eq!(value(r"params.p LIKE '50\%'"), s(r"50\%"), "other escapes reach LIKE");
        assert_eq!(value("params.p = ''"), s(""));
        assert_eq!(value("params.p = 'é ünï'"), s("é ünï"));
        for (text, n) in [("1", 1.0), ("-2", -2.0), ("+3", 3.0), ("1.5", 1.5), (".5", 0.5), ("-.5", -0.5), ("1e3", 1e3), ("-1.5E-3", -1.5e-3), ("2.", 2.0)] {
            assert_eq!(value(&format!("metrics.m > {text}")), Literal::Num(n), "{text}");
        }
        assert_eq!(value("metrics.m>-1"), Literal::Num(-1.0));
        assert_eq!(value(r#"run_id NOT IN ("x", 'y')"#), Literal::List(vec!["x".into(), "y".into()]));
        assert_eq!(value("run_id in ('x')"), Literal::List(vec!["x".into()]));
        let ops = |text: &str| parse(Entity::Run, text).iter().map(|c| c.op).collect::<Vec<_>>();
        assert_eq!(
            ops("metrics.a = 1 AND metrics.a != 1 and metrics.a <> 1 And metrics.a < 1 AND metrics.a <= 1 AND metrics.a > 1 AND metrics.a >= 1"),
            vec![Op::Eq, Op::Ne, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge]
        );
        assert_eq!(
            ops("params.a like 'x' AND params.a ILike 'x' AND run_id In ('x') AND run_id not in ('x')"),
            vec![Op::Like, Op::ILike, Op::In, Op::NotIn]
        );
        // Lists: datasets, names, ids.
        assert_eq!(parse(Entity::Run, "datasets.digest IN ('a')")[0].key, Key::Dataset("digest".into()));
        assert!(parse_filter(Entity::RegisteredModel, "name IN ('a', 'b')").is_ok());
        assert!(parse_filter(Entity::LoggedModel, "model_id NOT IN ('a')").is_ok());
        // A quoted version number is converted, as MLflow does.
        assert_eq!(parse(Entity::ModelVersion, "version_number = '3'")[0].value, Literal::Num(3.0));
    }

    #[test]
    fn attributes_outside_the_entity_are_refused_with_the_valid_ones() {
        let e = parse_err(Entity::RegisteredModel, "run_id = 'x'");
        assert!(e.contains("`run_id` at character 0") && e.contains("valid ones are name"), "{e}");
        let e = parse_err(Entity::Run, "colour = 'red'");
        assert!(e.contains("colour") && e.contains("run_id, run_name, status"), "{e}");
        assert!(parse_err(Entity::Run, "name = 'x'").contains("`name`"));
        assert!(parse_err(Entity::RegisteredModel, "timestamp > 1").contains("timestamp"), "order_by only");
        assert!(parse_err(Entity::ModelVersion, "timestamp > 1").contains("timestamp"), "order_by only");
        assert!(parse_err(Entity::Run, "creation_time > 1").contains("creation_time"));
        for (entity, text, token) in [
            (Entity::RegisteredModel, "metrics.m > 1", "metrics"),
            (Entity::ModelVersion, "params.p = 'x'", "params"),
            (Entity::LoggedModel, "datasets.name = 'x'", "datasets"),
            (Entity::RegisteredModel, "dataset.name = 'x'", "dataset"),
        ] {
            let e = parse_err(entity, text);
            assert!(e.contains(&format!("`{token}` at character 0")), "{text}: {e}");
        }
        assert!(parse_err(Entity::Run, "datasets.size = 'x'").contains("`size`"));
    }

    #[test]
    fn type_mismatches_name_the_key_and_operator() {
        for (entity, text, token) in [
            (Entity::Run, "metrics.loss < 'low'", "`metrics.loss <` at character 0"),
            (Entity::Run, "params.alpha < 1", "`params.alpha <`"),
            (Entity::Run, "params.alpha < '1'", "`params.alpha <`"),
            (Entity::Run, "metrics.loss LIKE '%'", "`metrics.loss LIKE`"),
            (Entity::Run, "tags.t = 5", "`tags.t =`"),
            (Entity::Run, "status = 1", "`status =`"),
            (Entity::Run, "start_time = 'yesterday'", "`start_time =`"),
            (Entity::Run, "params.a = 'x' AND start_time LIKE '1%'", "`start_time LIKE` at character 19"),
            (Entity::Run, "user_id IN ('a')", "`user_id IN`"),
            (Entity::Run, "tags.t NOT IN ('a')", "`tags.t NOT IN`"),
            (Entity::Run, "metrics.m IN ('1')", "`metrics.m IN`"),
            (Entity::ModelVersion, "version_number = 'three'", "`version_number =`"),
            (Entity::ModelVersion, "version_number LIKE '3'", "`version_number LIKE`"),
            (Entity::RegisteredModel, "tags.`a b` > 'x'", "`tags.`a b` >`"),
        ] {
            let e = parse_err(entity, text);
            assert!(e.contains(token), "{text}: {e}");
        }
    }

    #[test]
    fn malformed_filters_name_the_token_and_where() {
        for (text, expected) in [
            ("params.a = '1' OR params.a = '2'", "'OR' at character 15"),
            ("params.a = '1' or params.a = '2'", "'or' at character 15"),
            ("tags.é = 'x' OR tags.b = 'y'", "'OR' at character 13"),
            ("(params.a = 'x')", "'(' at character 0"),
            ("params.a = 'x' AND (params.b = 'y')", "'(' at character 19"),
            ("params.a = '1' AND", "'AND' at character 15"),
            ("params.a = '1' and ", "'and' at character 15"),
            ("AND params.a = '1'", "`AND` at character 0"),
            ("params.a = '1' AND AND params.b = '2'", "`AND` at character 19"),
            ("params.a = 'x", "quote ' at character 11 is never closed"),
            ("params.a = \"x", "quote \" at character 11 is never closed"),
            ("`unterminated = 1", "quote ` at character 0 is never closed"),
            ("params.a = '\\'", "never closed"),
            ("params.a == 'x'", "'=' at character 10"),
            ("params.a = 'x' params.b = 'y'", "'params' at character 15"),
            ("run_id IN ('a' 'b')", "''b'' at character 15"),
            ("run_id IN ('a',)", "')' at character 15"),
            ("run_id IN ()", "')' at character 11"),
            ("run_id IN 'a'", "''a'' at character 10"),
            ("run_id IN ('a'", "ends at character 14"),
            ("run_id IN (1)", "'1' at character 11"),
            ("metrics.loss < NaN", "'NaN' at character 15"),
            ("metrics.loss < inf", "'inf'"),
            ("metrics.loss < 1abc", "'1abc'"),
            ("metrics.loss < 0x10", "'0x10'"),
            ("params.a = `x`", "'`x`' at character 11"),
            ("params. = 'x'", "'=' at character 8"),
            ("params.a = 'x' AND ;", "';' at character 19"),
            ("params.a", "ends at character 8"),
            ("params.a =", "ends at character 10"),
            ("params.a NOT 'x'", "''x'' at character 13"),
            ("foo.bar = 1", "`foo` at character 0 is not a key type"),
            ("tags.a .b = 'x'", "'.' at character 7"),
            ("metrics.m = 1 = 2", "'=' at character 14"),
            ("!", "'!' at character 0"),
        ] {
            let e = parse_err(Entity::Run, text);
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn caps_and_hostile_inputs_are_errors_not_panics() {
        let e = parse_err(Entity::Run, &"a".repeat(MAX_FILTER_LEN + 1));
        assert!(e.contains("longer than"), "{e}");
        let many = vec!["params.a = 'x'"; MAX_CLAUSES + 1].join(" AND ");
        assert!(many.len() < MAX_FILTER_LEN);
        assert!(parse_err(Entity::Run, &many).contains("more than 500 clauses"));
        assert_eq!(parse(Entity::Run, &vec!["params.a = 'x'"; MAX_CLAUSES].join(" AND ")).len(), MAX_CLAUSES);
        assert!(order(Entity::Run, &vec!["metrics.m"; MAX_CLAUSES + 1]).is_err());
        for text in [
            "(".repeat(60_000),
            ")".repeat(60_000),
            "`".into(),
            "'".into(),
            "\"".into(),
            "\\".into(),
            "AND".into(),
            "NOT".into(),
            "run_id IN (".into(),
            "run_id NOT".into(),
            "tags.".into(),
            ".".into(),
            "-".into(),
            "1e".into(),
            "\u{202e}name = 'x'".into(),
            "name\0= 'x'".into(),
            "metrics.m = 1e999999".into(),
            "\u{1F600}".repeat(1000),
        ] {
            for entity in [Entity::Run, Entity::RegisteredModel, Entity::ModelVersion, Entity::LoggedModel] {
                let _ = parse_filter(entity, &text);
                let _ = parse_order_by(entity, std::slice::from_ref(&text));
            }
        }
    }

    #[test]
    fn missing_keys_match_nothing_but_registry_tag_inequality() {
        let row = TestRow::default();
        let yes = |entity, text: &str| parse_filter(entity, text).map(|f| f.matches(entity, &row)).unwrap_or_else(|e| panic!("{e}"));
        for entity in [Entity::RegisteredModel, Entity::ModelVersion, Entity::LoggedModel] {
            assert!(yes(entity, "tag.`mlflow.prompt.is_prompt` != 'true'"), "{entity:?}");
            assert!(!yes(entity, "tag.`mlflow.prompt.is_prompt` = 'true'"), "{entity:?}");
            assert!(!yes(entity, "tags.t LIKE '%'"), "{entity:?}");
            assert!(!yes(entity, "name != 'x'"), "{entity:?}: only tags");
        }
        assert!(!yes(Entity::Run, "tags.missing != 'x'"), "runs: a missing tag matches nothing");
        assert!(!yes(Entity::Run, "metrics.missing != 1"));
        assert!(!yes(Entity::Run, "params.missing != 'x'"));
        assert!(!yes(Entity::Run, "end_time > 0"));
        assert!(!yes(Entity::Run, "datasets.name != 'x'"), "no datasets");
        assert!(!yes(Entity::Run, "run_id NOT IN ('x')"));
        assert!(yes(Entity::Run, ""));
        let mut prompt = TestRow::default();
        prompt.attributes.insert("name", Value::Str("rm-1"));
        prompt.tags.insert("mlflow.prompt.is_prompt", "true");
        let f = parse_filter(Entity::RegisteredModel, "name LIKE 'rm-%' AND tag.`mlflow.prompt.is_prompt` != 'true'").unwrap_or_else(|e| panic!("{e}"));
        assert!(!f.matches(Entity::RegisteredModel, &prompt));
        prompt.tags.clear();
        assert!(f.matches(Entity::RegisteredModel, &prompt));
    }

    #[test]
    fn evaluation_follows_mlflow() {
        let mut row = TestRow::default();
        row.attributes.insert("run_id", Value::Str("abc"));
        row.attributes.insert("status", Value::Str("FINISHED"));
        row.attributes.insert("start_time", Value::Num(1000.0));
        row.metrics.insert("loss", 0.2);
        row.metrics.insert("nan", f64::NAN);
        row.params.insert("alpha", "0.5");
        row.tags.insert("team", "Risk");
        row.tags.insert("mlflow.runName", "big-Squid-7");
        row.datasets = vec![("name", "train"), ("name", "eval"), ("digest", "d1")];
        let yes = |text: &str| parse_filter(Entity::Run, text).map(|f| f.matches(Entity::Run, &row)).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(yes("metrics.loss < 0.25 and params.alpha = '0.5'"));
        assert!(!yes("metrics.loss > 0.25 and params.alpha = '0.5'"));
        assert!(yes("metrics.loss = 0.2 AND metrics.loss <= 0.2 AND metrics.loss >= 0.2 AND metrics.loss != 0.3"));
        assert!(yes("attributes.status = 'FINISHED'"));
        assert!(!yes("attributes.status = 'finished'"), "strings compare exactly");
        assert!(yes("created >= 1000 AND start_time < 1001"));
        assert!(yes("run_id IN ('x', 'abc') AND run_id NOT IN ('x')"));
        assert!(!yes("run_id IN ('x')"));
        assert!(yes("tags.\"mlflow.runName\" ILIKE '%squid%'"));
        assert!(!yes("tags.\"mlflow.runName\" LIKE '%squid%'"));
        assert!(yes("tags.team ILIKE 'risk' AND tags.team != 'risk'"));
        assert!(!yes("params.alpha = '0.50'"), "params are strings");
        // NaN is IEEE: equal to nothing, unequal to everything.
        assert!(!yes("metrics.nan = 1"));
        assert!(yes("metrics.nan != 1"));
        assert!(!yes("metrics.nan < 1") && !yes("metrics.nan >= 1"));
        // A dataset clause matches when any dataset does.
        assert!(yes("datasets.name = 'eval'"));
        assert!(yes("datasets.name IN ('x', 'train')"));
        assert!(yes("datasets.name != 'eval'"), "train differs from eval");
        assert!(!yes("datasets.context = 'training'"), "no context at all");
    }

    #[test]
    fn like_handles_wildcards_escapes_and_edges() {
        assert!(like("abc", "%", false));
        assert!(like("", "%", false));
        assert!(like("", "%%", false));
        assert!(like("", "", false));
        assert!(!like("a", "", false), "the empty pattern matches only the empty text");
        assert!(like("abc", "a_c", false));
        assert!(!like("ab", "a_c", false));
        assert!(!like("abcd", "a_c", false), "anchored at the end");
        assert!(!like("xabc", "abc", false), "anchored at the start");
        assert!(like("rm-12", "rm-%", false));
        assert!(like("xaxbxc", "%a%b%c", false));
        assert!(!like("abc", "abcd", false), "a pattern longer than the text");
        assert!(!like("ab", "___", false));
        assert!(like("50%", r"50\%", false));
        assert!(!like("500", r"50\%", false));
        assert!(like("a_b", r"a\_b", false));
        assert!(!like("axb", r"a\_b", false));
        assert!(like(r"a\b", r"a\\b", false));
        assert!(like(r"a\", r"a\", false), "a trailing backslash is itself");
        assert!(like("a.b", "a.b", false) && !like("axb", "a.b", false), "no regex meaning");
        assert!(like("ÄBC", "äbc", true));
        assert!(!like("ÄBC", "äbc", false));
        assert!(like("Straße", "STRA_E", true), "one character matches one");
        assert!(like("日本語", "日_語", false));
        // Many wildcards over a long text stay fast.
        assert!(!like(&"a".repeat(20_000), &"%a".repeat(2_000).replacen("%a", "%b", 1), false));
        assert!(like(&"a".repeat(20_000), &"%a".repeat(2_000), false));
    }

    #[test]
    fn order_by_parses() {
        let keys = order(Entity::Run, &["metrics.rmse DESC", "params.`a b`", "attributes.start_time asc", "tags.mlflow.runName Desc", "created"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            keys,
            vec![
                OrderKey { key: Key::Metric("rmse".into()), ascending: false },
                OrderKey { key: Key::Param("a b".into()), ascending: true },
                OrderKey { key: attr("start_time"), ascending: true },
                OrderKey { key: Key::Tag("mlflow.runName".into()), ascending: false },
                OrderKey { key: attr("start_time"), ascending: true },
            ]
        );
        for (entity, clause) in [
            (Entity::RegisteredModel, "name"),
            (Entity::RegisteredModel, "timestamp DESC"),
            (Entity::RegisteredModel, "last_updated_timestamp"),
            (Entity::RegisteredModel, "creation_timestamp ASC"),
            (Entity::ModelVersion, "version_number DESC"),
            (Entity::ModelVersion, "timestamp"),
            (Entity::LoggedModel, "creation_time DESC"),
            (Entity::LoggedModel, "metrics.accuracy DESC"),
        ] {
            assert!(order(entity, &[clause]).is_ok(), "{entity:?} {clause}");
        }
        assert!(order(Entity::Run, &[]).is_ok_and(|k| k.is_empty()));
        for (entity, clause, token) in [
            (Entity::RegisteredModel, "name SIDEWAYS", "'SIDEWAYS' at character 5"),
            (Entity::RegisteredModel, "", "clause 0 is empty"),
            (Entity::RegisteredModel, "   ", "clause 0 is empty"),
            (Entity::Run, "metrics.rmse DESC extra", "'extra' at character 18"),
            (Entity::Run, "metrics.rmse ASC DESC", "'DESC'"),
            (Entity::Run, "metrics.", "ends at character 8"),
            (Entity::Run, "name", "`name`"),
            (Entity::Run, "datasets.name", "datasets"),
            (Entity::RegisteredModel, "metrics.m", "metrics"),
            (Entity::Run, "metrics.m, params.p", "','"),
            (Entity::Run, "metrics.`m", "never closed"),
            (Entity::Run, "metrics.m = 1", "'='"),
        ] {
            match order(entity, &[clause]) {
                Ok(keys) => panic!("{clause}: {keys:?}"),
                Err(e) => assert!(e.message.contains(token) && e.message.starts_with("invalid order_by"), "{clause}: {e}"),
            }
        }
        let e = order(Entity::Run, &["metrics.m", ""]).unwrap_err();
        assert!(e.message.contains("clause 1"), "{e}");
    }

    #[test]
    fn compare_orders_missing_last_and_nan_before_it() {
        let row = |m: Option<f64>, name: Option<&'static str>| {
            let mut r = TestRow::default();
            if let Some(m) = m {
                r.metrics.insert("m", m);
            }
            if let Some(name) = name {
                r.params.insert("p", name);
            }
            r
        };
        let (one, two, nan, none) = (row(Some(1.0), None), row(Some(2.0), None), row(Some(f64::NAN), None), row(None, None));
        let inf = row(Some(f64::INFINITY), None);
        let desc = order(Entity::Run, &["metrics.m DESC"]).unwrap_or_default();
        let asc = order(Entity::Run, &["metrics.m"]).unwrap_or_default();
        assert_eq!(compare(&desc, &two, &one), Ordering::Less);
        assert_eq!(compare(&asc, &one, &two), Ordering::Less);
        for keys in [&asc, &desc] {
            assert_eq!(compare(keys, &none, &one), Ordering::Greater, "missing sorts last");
            assert_eq!(compare(keys, &one, &none), Ordering::Less);
            assert_eq!(compare(keys, &nan, &inf), Ordering::Greater, "NaN after every number");
            assert_eq!(compare(keys, &nan, &none), Ordering::Less, "NaN before missing");
            assert_eq!(compare(keys, &none, &none), Ordering::Equal);
            assert_eq!(compare(keys, &nan, &nan), Ordering::Equal);
        }
        // Sorting a list: both directions keep NaN then missing at the end.
        let rows = [&none, &nan, &one, &inf, &two];
        let sorted = |keys: &[OrderKey]| {
            let mut v: Vec<&TestRow> = rows.to_vec();
            v.sort_by(|a, b| compare(keys, *a, *b));
            v.iter().map(|r| r.metrics.get("m").map_or("none".to_string(), |m| m.to_string())).collect::<Vec<_>>()
        };
        assert_eq!(sorted(&asc), ["1", "2", "inf", "NaN", "none"]);
        assert_eq!(sorted(&desc), ["inf", "2", "1", "NaN", "none"]);
        // Strings by code point; the second key breaks ties.
        let (a, b) = (row(Some(1.0), Some("a")), row(Some(1.0), Some("B")));
        let keys = order(Entity::Run, &["metrics.m", "params.p DESC"]).unwrap_or_default();
        assert_eq!(compare(&keys, &a, &b), Ordering::Less, "'a' > 'B', descending");
        let keys = order(Entity::Run, &["params.p"]).unwrap_or_default();
        assert_eq!(compare(&keys, &b, &a), Ordering::Less);
        assert_eq!(compare(&[], &a, &b), Ordering::Equal, "no keys: the caller's tie-breaker decides");
    }

    #[test]
    fn rendering_is_canonical_and_parses_back() {
        let text = "name LIKE 'rm-%' AND tag.`mlflow.prompt.is_prompt` != 'true'";
        let filter = parse_filter(Entity::RegisteredModel, text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(filter.to_string(), "name LIKE 'rm-%' AND tags.mlflow.prompt.is_prompt != 'true'");
        let filter = parse_filter(Entity::Run, r#"metrics.`a b` <= -1.5e-3 and params.p = 'it''s \\ ok' AND run_id NOT IN ("x")"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(filter.to_string(), r"metrics.`a b` <= -0.0015 AND params.p = 'it\'s \\ ok' AND run_id NOT IN ('x')");
        assert_eq!(parse_filter(Entity::Run, &filter.to_string()), Ok(filter));
        let inf = Filter { clauses: vec![clause(Key::Metric("m".into()), Op::Lt, Literal::Num(f64::INFINITY))] };
        assert_eq!(parse_filter(Entity::Run, &inf.to_string()), Ok(inf));
        assert_eq!(OrderKey { key: Key::Tag("a b".into()), ascending: false }.to_string(), "tags.`a b` DESC");
    }

    /// A plain recursive LIKE, the reference for the iterative one:
    /// exponential, so only for short inputs.
    fn like_reference(t: &[char], p: &[char], ci: bool) -> bool {
        let same = |a: char, b: char| if ci { a.to_lowercase().eq(b.to_lowercase()) } else { a == b };
        match p {
            [] => t.is_empty(),
            ['%', rest @ ..] => (0..=t.len()).any(|i| like_reference(&t[i..], rest, ci)),
            ['_', rest @ ..] => !t.is_empty() && like_reference(&t[1..], rest, ci),
            ['\\', c, rest @ ..] => t.first().is_some_and(|f| same(*c, *f)) && like_reference(&t[1..], rest, ci),
            [c, rest @ ..] => t.first().is_some_and(|f| same(*c, *f)) && like_reference(&t[1..], rest, ci),
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z_][a-zA-Z0-9_]{0,5}(\\.[a-zA-Z0-9_]{1,4}){0,2}", "[a-z0-9 .`'\"\\\\%-]{1,8}", "\\PC{1,4}"]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[ -~]{0,10}", "\\PC{0,6}"]
    }

    fn number() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("finite", |v| v.is_finite())
    }

    fn comparison() -> impl Strategy<Value = Op> {
        prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Lt), Just(Op::Le), Just(Op::Gt), Just(Op::Ge)]
    }

    fn string_op() -> impl Strategy<Value = Op> {
        prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Like), Just(Op::ILike)]
    }

    fn list() -> impl Strategy<Value = (Op, Literal)> {
        (prop_oneof![Just(Op::In), Just(Op::NotIn)], proptest::collection::vec(text(), 1..4)).prop_map(|(op, l)| (op, Literal::List(l)))
    }

    /// Valid clauses for runs.
    fn run_clause() -> impl Strategy<Value = Clause> {
        prop_oneof![
            (name(), comparison(), number()).prop_map(|(m, op, v)| clause(Key::Metric(m), op, Literal::Num(v))),
            (name(), string_op(), text()).prop_map(|(p, op, v)| clause(Key::Param(p), op, Literal::Str(v))),
            (name(), string_op(), text()).prop_map(|(t, op, v)| clause(Key::Tag(t), op, Literal::Str(v))),
            (prop_oneof![Just("start_time"), Just("end_time")], comparison(), number()).prop_map(|(a, op, v)| clause(attr(a), op, Literal::Num(v))),
            (prop_oneof![Just("run_name"), Just("user_id"), Just("artifact_uri")], string_op(), text()).prop_map(|(a, op, v)| clause(attr(a), op, Literal::Str(v))),
            (prop_oneof![Just("run_id"), Just("status")], list()).prop_map(|(a, (op, v))| clause(attr(a), op, v)),
            (prop_oneof![Just("name"), Just("digest"), Just("context")], list()).prop_map(|(d, (op, v))| clause(Key::Dataset(d.into()), op, v)),
        ]
    }

    /// Valid clauses for model versions.
    fn version_clause() -> impl Strategy<Value = Clause> {
        prop_oneof![
            (name(), string_op(), text()).prop_map(|(t, op, v)| clause(Key::Tag(t), op, Literal::Str(v))),
            (prop_oneof![Just("version_number"), Just("creation_timestamp")], comparison(), number())
                .prop_map(|(a, op, v)| clause(attr(a), op, Literal::Num(v))),
            (prop_oneof![Just("name"), Just("source_path")], string_op(), text()).prop_map(|(a, op, v)| clause(attr(a), op, Literal::Str(v))),
            list().prop_map(|(op, v)| clause(attr("run_id"), op, v)),
        ]
    }

    const FRAGMENTS: &[&str] = &[
        "metrics.", "params.", "tags.", "attributes.", "datasets.", "`", "'", "\"", " AND ", " and ", " OR ", "(", ")", ",", " IN ", " NOT ", "=",
        "!=", "<>", "<", ">=", " LIKE ", " ILIKE ", "x", "1.5", "-2e-3", "-", "e", ".", " ", "\\", "run_id", "name", "version_number", "é",
        "%", "_", " ASC", " DESC", "\u{202e}",
    ];

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            for entity in [Entity::Run, Entity::RegisteredModel, Entity::ModelVersion, Entity::LoggedModel] {
                let _ = parse_filter(entity, &text);
                let _ = parse_order_by(entity, std::slice::from_ref(&text));
                let lossy = String::from_utf8_lossy(&bytes).into_owned();
                let _ = parse_filter(entity, &lossy);
                let _ = parse_order_by(entity, &[lossy]);
            }
        }

        #[test]
        fn grammar_fragments_never_panic(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..24)) {
            let text: String = parts.concat();
            for entity in [Entity::Run, Entity::RegisteredModel, Entity::ModelVersion, Entity::LoggedModel] {
                if let Ok(filter) = parse_filter(entity, &text) {
                    // Whatever parses renders to text that parses to it again.
                    prop_assert_eq!(parse_filter(entity, &filter.to_string()), Ok(filter));
                }
                let _ = parse_order_by(entity, std::slice::from_ref(&text));
            }
        }

        #[test]
        fn like_agrees_with_the_reference(text in "[abAB%_\\\\]{0,8}", pattern in "[abAB%_\\\\]{0,7}", ci in any::<bool>()) {
            let t: Vec<char> = text.chars().collect();
            let p: Vec<char> = pattern.chars().collect();
            prop_assert_eq!(like(&text, &pattern, ci), like_reference(&t, &p, ci), "{:?} LIKE {:?}", text, pattern);
        }

        #[test]
        fn a_rendered_run_filter_parses_back(clauses in proptest::collection::vec(run_clause(), 0..5)) {
            let filter = Filter { clauses };
            let text = filter.to_string();
            let parsed = parse_filter(Entity::Run, &text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed, filter, "{}", text);
        }

        #[test]
        fn a_rendered_version_filter_parses_back(clauses in proptest::collection::vec(version_clause(), 1..5)) {
            let filter = Filter { clauses };
            let text = filter.to_string();
            let parsed = parse_filter(Entity::ModelVersion, &text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed, filter, "{}", text);
        }

        #[test]
        fn rendered_order_keys_parse_back(keys in proptest::collection::vec(
            (prop_oneof![name().prop_map(Key::Metric), name().prop_map(Key::Tag), Just(attr("start_time"))], any::<bool>())
                .prop_map(|(key, ascending)| OrderKey { key, ascending }), 0..4)) {
            let text: Vec<String> = keys.iter().map(ToString::to_string).collect();
            prop_assert_eq!(parse_order_by(Entity::Run, &text), Ok(keys));
        }
    }
}
