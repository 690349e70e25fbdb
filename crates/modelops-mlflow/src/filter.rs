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
            return Ok((self.attribute(&first, start)?, start));
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

