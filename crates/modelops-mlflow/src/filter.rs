//! The language of MLflow's search calls: filter strings
//! (`metrics.rmse < 0.5 and params.alpha = '0.1'`) and `order_by` clauses
//! (`metrics.rmse DESC`), parsed into a small tree and evaluated over rows
//! the caller supplies ([`Row`]), with MLflow's server semantics.
//!
//! Grammar: clauses joined by `AND` (any case; `OR` and parentheses are
//! refused by name). A key is `prefix.name` — `attribute(s)`/`attr`/`run`,
//! `metric(s)`, `param(s)`/`parameter(s)`, `tag(s)`, `dataset(s)` — or a bare
//! attribute name; the name may be quoted with backticks or double quotes
//! (``tags.`mlflow.runName` ``). Values are quoted strings, numbers, or for
//! `IN`/`NOT IN` a parenthesised list of strings. Numeric keys (metrics,
//! times, `version_number`) take numbers and comparisons; string keys take
//! strings with `=`, `!=`, `LIKE`, `ILIKE` (and `IN` for ids and names).
//!
//! Never panics: errors name the offending token and where it starts.

use std::cmp::Ordering;

/// Longest filter accepted, and most clauses: beyond them a filter is an
/// attack or a mistake.
pub const MAX_FILTER_LEN: usize = 64 * 1024;
pub const MAX_CLAUSES: usize = 500;

/// What is searched: each has its own attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Run,
    RegisteredModel,
    ModelVersion,
    LoggedModel,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Joined by `AND`; empty matches every row.
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub key: Key,
    pub op: Op,
    pub value: Literal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Attribute(String),
    Metric(String),
    Param(String),
    Tag(String),
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

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub key: Key,
    pub ascending: bool,
}

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

/// What the caller supplies per row for evaluation and ordering.
pub trait Row {
    fn attribute(&self, name: &str) -> Option<Value<'_>>;
    fn metric(&self, key: &str) -> Option<f64>;
    fn param(&self, key: &str) -> Option<&str>;
    fn tag(&self, key: &str) -> Option<&str>;
    /// The values of a dataset field (`name`, `digest`, `context`) over the
    /// row's datasets; empty when it has none.
    fn dataset(&self, field: &str) -> Vec<&str>;
}

/// The attributes each entity has, and which of them are numbers.
fn attributes(entity: Entity) -> (&'static [&'static str], &'static [&'static str]) {
    match entity {
        Entity::Run => (
            &["run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage", "start_time", "end_time", "created"],
            &["start_time", "end_time", "created"],
        ),
        Entity::RegisteredModel => {
            (&["name", "creation_timestamp", "last_updated_timestamp", "timestamp"], &["creation_timestamp", "last_updated_timestamp", "timestamp"])
        }
        Entity::ModelVersion => (
            &["name", "run_id", "source_path", "version_number", "creation_timestamp", "last_updated_timestamp", "timestamp"],
            &["version_number", "creation_timestamp", "last_updated_timestamp", "timestamp"],
        ),
        Entity::LoggedModel => (
            &["name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp", "creation_time", "last_updated_timestamp"],
            &["creation_timestamp", "creation_time", "last_updated_timestamp"],
        ),
    }
}

/// Attributes that take `IN` / `NOT IN`.
const LIST_ATTRIBUTES: &[&str] = &["run_id", "name", "model_id", "status", "run_name", "source_run_id"];

// ---- lexing ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare word: identifier part, keyword or number text.
    Word(String),
    /// A backticked or double-quoted identifier.
    Quoted(String),
    /// A single-quoted string (double quotes too, where a value goes).
    Str(String),
    Dot,
    Comma,
    Open,
    Close,
    Operator(&'static str),
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => w.clone(),
        Token::Quoted(q) => format!("`{q}`"),
        Token::Str(s) => format!("'{s}'"),
        Token::Dot => ".".into(),
        Token::Comma => ",".into(),
        Token::Open => "(".into(),
        Token::Close => ")".into(),
        Token::Operator(o) => (*o).into(),
    }
}

struct Lexed {
    tokens: Vec<(Token, usize)>,
}

fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), FilterError> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == quote {
            // A doubled quote stands for one.
            if chars.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
                continue;
            }
            return Ok((out, i + 1));
        }
        out.push(c);
        i += 1;
    }
    Err(error(format!("invalid filter: the quote {quote} at character {start} is never closed")))
}

fn lex(text: &str) -> Result<Lexed, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '\'' => {
                let (s, next) = quoted(&chars, i, '\'')?;
                tokens.push((Token::Str(s), start));
                i = next;
            }
            '"' | '`' => {
                let (s, next) = quoted(&chars, i, c)?;
                tokens.push((Token::Quoted(s), start));
                i = next;
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                tokens.push((Token::Dot, start));
                i += 1;
            }
            ',' => {
                tokens.push((Token::Comma, start));
                i += 1;
            }
            '(' => {
                tokens.push((Token::Open, start));
                i += 1;
            }
            ')' => {
                tokens.push((Token::Close, start));
                i += 1;
            }
            '=' => {
                tokens.push((Token::Operator("="), start));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push((Token::Operator("!="), start));
                i += 2;
            }
            '<' => {
                let (op, len) = match chars.get(i + 1) {
                    Some('=') => ("<=", 2),
                    Some('>') => ("!=", 2),
                    _ => ("<", 1),
                };
                tokens.push((Token::Operator(op), start));
                i += len;
            }
            '>' => {
                let (op, len) = if chars.get(i + 1) == Some(&'=') { (">=", 2) } else { (">", 1) };
                tokens.push((Token::Operator(op), start));
                i += len;
            }
            c if c.is_ascii_digit() || (matches!(c, '-' | '+' | '.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '.')) => {
                // A number: digits, one sign up front or after an exponent.
                let mut word = String::new();
                while i < chars.len() {
                    let d = chars[i];
                    let after_exponent = word.ends_with(['e', 'E']);
                    if d.is_ascii_alphanumeric() || d == '.' || ((d == '-' || d == '+') && (word.is_empty() || after_exponent)) {
                        word.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                tokens.push((Token::Word(word), start));
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '/') => {
                // An identifier part or keyword; dots separate parts.
                let mut word = String::new();
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | ':' | '/')) {
                    word.push(chars[i]);
                    i += 1;
                }
                tokens.push((Token::Word(word), start));
            }
            other => return Err(error(format!("invalid filter: unexpected character '{other}' at character {start}"))),
        }
    }
    Ok(Lexed { tokens })
}

// ---- parsing ----

struct Parser<'a> {
    tokens: &'a [(Token, usize)],
    at: usize,
    entity: Entity,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        token
    }

    fn unexpected(&self, what: &str) -> FilterError {
        match self.peek() {
            Some(token) => error(format!("invalid filter: unexpected token '{}' at character {}, expected {what}", describe(token), self.position())),
            None => error(format!("invalid filter: the filter ends where {what} was expected")),
        }
    }

    /// `prefix.name` or a bare attribute.
    fn key(&mut self) -> Result<Key, FilterError> {
        let start = self.position();
        let first = match self.next() {
            Some(Token::Word(w)) => w,
            Some(Token::Quoted(q)) => return self.attribute(q, start),
            _ => {
                self.at = self.at.saturating_sub(1);
                return Err(self.unexpected("a key such as `metrics.rmse` or `name`"));
            }
        };
        // A bare word holding dots was split by the lexer only at a Dot
        // token; `tags.a.b` arrives as Word(tags) Dot Word(a) Dot Word(b).
        if self.peek() != Some(&Token::Dot) {
            return self.attribute(first, start);
        }
        let kind = first.to_ascii_lowercase();
        let make: fn(String) -> Key = match kind.as_str() {
            "attribute" | "attributes" | "attr" | "run" => |s| Key::Attribute(s),
            "metric" | "metrics" => Key::Metric,
            "param" | "params" | "parameter" | "parameters" => Key::Param,
            "tag" | "tags" => Key::Tag,
            "dataset" | "datasets" => Key::Dataset,
            _ => {
                return Err(error(format!(
                    "invalid filter: `{first}` at character {start} is not a key type (attributes, metrics, params, tags, datasets)"
                )))
            }
        };
        self.next(); // the dot
        let mut name = match self.next() {
            Some(Token::Word(w)) => w,
            Some(Token::Quoted(q)) => q,
            _ => {
                self.at = self.at.saturating_sub(1);
                return Err(self.unexpected(&format!("a name after `{first}.`")));
            }
        };
        // Unquoted names may hold dots: `tags.mlflow.runName`.
        while self.peek() == Some(&Token::Dot) {
            self.next();
            match self.next() {
                Some(Token::Word(w)) => {
                    name.push('.');
                    name.push_str(&w);
                }
                _ => {
                    self.at = self.at.saturating_sub(1);
                    return Err(self.unexpected("a name part after `.`"));
                }
            }
        }
        let key = make(name);
        match &key {
            Key::Attribute(a) => return self.attribute(a.clone(), start),
            Key::Metric(_) | Key::Param(_) if !matches!(self.entity, Entity::Run | Entity::LoggedModel) => {
                return Err(error(format!("invalid filter: `{first}` keys cannot be searched on {}", entity_name(self.entity))))
            }
            Key::Dataset(field) => {
                if self.entity != Entity::Run {
                    return Err(error(format!("invalid filter: `{first}` keys cannot be searched on {}", entity_name(self.entity))));
                }
                if !matches!(field.as_str(), "name" | "digest" | "context") {
                    return Err(error(format!("invalid filter: `{field}` is not a dataset field (name, digest, context)")));
                }
            }
            _ => {}
        }
        Ok(key)
    }

    fn attribute(&self, name: String, start: usize) -> Result<Key, FilterError> {
        let (known, _) = attributes(self.entity);
        if known.contains(&name.as_str()) {
            Ok(Key::Attribute(name))
        } else {
            Err(error(format!(
                "invalid filter: `{name}` at character {start} is not an attribute of {}; valid ones are {}",
                entity_name(self.entity),
                known.join(", ")
            )))
        }
    }

    fn op(&mut self) -> Result<Op, FilterError> {
        let op = match self.next() {
            Some(Token::Operator("=")) => Op::Eq,
            Some(Token::Operator("!=")) => Op::Ne,
            Some(Token::Operator("<")) => Op::Lt,
            Some(Token::Operator("<=")) => Op::Le,
            Some(Token::Operator(">")) => Op::Gt,
            Some(Token::Operator(">=")) => Op::Ge,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => match self.next() {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::NotIn,
                _ => {
                    self.at = self.at.saturating_sub(1);
                    return Err(self.unexpected("`IN` after `NOT`"));
                }
            },
            _ => {
                self.at = self.at.saturating_sub(1);
                return Err(self.unexpected("a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)"));
            }
        };
        Ok(op)
    }

    fn literal(&mut self, op: Op) -> Result<Literal, FilterError> {
        if matches!(op, Op::In | Op::NotIn) {
            if self.next() != Some(Token::Open) {
                self.at = self.at.saturating_sub(1);
                return Err(self.unexpected("`(` opening the list of values"));
            }
            let mut values = Vec::new();
            loop {
                match self.next() {
                    Some(Token::Str(s) | Token::Quoted(s)) => values.push(s),
                    _ => {
                        self.at = self.at.saturating_sub(1);
                        return Err(self.unexpected("a quoted string in the list"));
                    }
                }
                match self.next() {
                    Some(Token::Comma) => {}
                    Some(Token::Close) => break,
                    _ => {
                        self.at = self.at.saturating_sub(1);
                        return Err(self.unexpected("`,` or `)` in the list"));
                    }
                }
            }
            return Ok(Literal::List(values));
        }
        match self.next() {
            Some(Token::Str(s) | Token::Quoted(s)) => Ok(Literal::Str(s)),
            Some(Token::Word(w)) => match w.parse::<f64>() {
                Ok(n) if !w.eq_ignore_ascii_case("nan") && !w.to_ascii_lowercase().contains("inf") => Ok(Literal::Num(n)),
                _ => {
                    self.at = self.at.saturating_sub(1);
                    Err(self.unexpected("a quoted string or a number"))
                }
            },
            _ => {
                self.at = self.at.saturating_sub(1);
                Err(self.unexpected("a quoted string or a number"))
            }
        }
    }
}

fn entity_name(entity: Entity) -> &'static str {
    match entity {
        Entity::Run => "runs",
        Entity::RegisteredModel => "registered models",
        Entity::ModelVersion => "model versions",
        Entity::LoggedModel => "logged models",
    }
}

fn key_text(key: &Key) -> String {
    match key {
        Key::Attribute(a) => format!("attributes.{a}"),
        Key::Metric(m) => format!("metrics.{m}"),
        Key::Param(p) => format!("params.{p}"),
        Key::Tag(t) => format!("tags.{t}"),
        Key::Dataset(d) => format!("datasets.{d}"),
    }
}

fn is_numeric(entity: Entity, key: &Key) -> bool {
    match key {
        Key::Metric(_) => true,
        Key::Attribute(a) => attributes(entity).1.contains(&a.as_str()),
        _ => false,
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
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
    }
}

/// The type rules: numeric keys compare with numbers, string keys match
/// strings, lists only where MLflow takes them.
fn check(entity: Entity, clause: &Clause) -> Result<(), FilterError> {
    let key = key_text(&clause.key);
    let op = op_text(clause.op);
    let numeric = is_numeric(entity, &clause.key);
    let ok = match (&clause.value, clause.op) {
        (Literal::Num(_), Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge) => numeric,
        (Literal::Str(_), Op::Eq | Op::Ne | Op::Like | Op::ILike) => !numeric,
        (Literal::List(_), Op::In | Op::NotIn) => {
            matches!(&clause.key, Key::Attribute(a) if LIST_ATTRIBUTES.contains(&a.as_str())) || matches!(clause.key, Key::Dataset(_))
        }
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let expected = if numeric { "a number with =, !=, <, <=, >, >=" } else { "a quoted string with =, !=, LIKE, ILIKE" };
    Err(error(format!("invalid filter: `{key} {op}` does not take {}; `{key}` takes {expected}", literal_kind(&clause.value))))
}

fn literal_kind(value: &Literal) -> &'static str {
    match value {
        Literal::Str(_) => "a string",
        Literal::Num(_) => "a number",
        Literal::List(_) => "a list",
    }
}

/// Parses a filter string; empty (or blank) matches everything.
pub fn parse_filter(entity: Entity, text: &str) -> Result<Filter, FilterError> {
    if text.len() > MAX_FILTER_LEN {
        return Err(error(format!("invalid filter: {} bytes is longer than the {MAX_FILTER_LEN} accepted", text.len())));
    }
    let lexed = lex(text)?;
    let mut parser = Parser { tokens: &lexed.tokens, at: 0, entity, end: text.chars().count() };
    let mut clauses = Vec::new();
    if lexed.tokens.is_empty() {
        return Ok(Filter { clauses });
    }
    loop {
        if clauses.len() >= MAX_CLAUSES {
            return Err(error(format!("invalid filter: more than {MAX_CLAUSES} clauses")));
        }
        let key = parser.key()?;
        let op = parser.op()?;
        let value = parser.literal(op)?;
        let clause = Clause { key, op, value };
        check(entity, &clause)?;
        clauses.push(clause);
        match parser.next() {
            None => break,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {
                if parser.peek().is_none() {
                    return Err(error("invalid filter: the filter ends with `AND`"));
                }
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("or") => {
                parser.at -= 1;
                return Err(error(format!(
                    "invalid filter: unexpected token 'OR' at character {}: only AND joins clauses",
                    parser.position()
                )));
            }
            Some(_) => {
                parser.at -= 1;
                return Err(parser.unexpected("`AND` or the end of the filter"));
            }
        }
    }
    Ok(Filter { clauses })
}

/// Parses `order_by` clauses: `<key> [ASC|DESC]` each.
pub fn parse_order_by(entity: Entity, clauses: &[String]) -> Result<Vec<OrderKey>, FilterError> {
    let mut keys = Vec::new();
    for clause in clauses {
        if clause.len() > MAX_FILTER_LEN {
            return Err(error("invalid order_by: the clause is too long"));
        }
        let lexed = lex(clause)?;
        if lexed.tokens.is_empty() {
            return Err(error("invalid order_by: an empty clause"));
        }
        let mut parser = Parser { tokens: &lexed.tokens, at: 0, entity, end: clause.chars().count() };
        let key = parser.key().map_err(|e| error(e.message.replace("invalid filter", "invalid order_by")))?;
        let ascending = match parser.next() {
            None => true,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("asc") => true,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("desc") => false,
            Some(_) => {
                parser.at -= 1;
                return Err(error(parser.unexpected("ASC, DESC or the end of the clause").message.replace("invalid filter", "invalid order_by")));
            }
        };
        if parser.peek().is_some() {
            return Err(error(parser.unexpected("the end of the clause").message.replace("invalid filter", "invalid order_by")));
        }
        keys.push(OrderKey { key, ascending });
    }
    Ok(keys)
}

/// `LIKE` matching: `%` any run of characters, `_` one; anchored at both
/// ends. Iterative with one backtrack point, so no pattern is exponential.
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.chars().flat_map(char::to_lowercase).collect()
        } else {
            s.chars().collect()
        }
    };
    let (t, p) = (fold(text), fold(pattern));
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
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
        Key::Dataset(d) => Found::Many(row.dataset(d)),
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

impl Filter {
    /// Whether `row` satisfies every clause. A row without the key matches
    /// no comparison, except `!=` / `NOT IN` on a tag of a registry entity:
    /// the client appends ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every
    /// registry search, and models without that tag must match it.
    pub fn matches(&self, entity: Entity, row: &dyn Row) -> bool {
        self.clauses.iter().all(|clause| match lookup(row, &clause.key) {
            Found::Str(s) => compare_str(s, clause.op, &clause.value),
            Found::Num(n) => match (clause.op, &clause.value) {
                (Op::Eq, Literal::Num(v)) => n == *v,
                (Op::Ne, Literal::Num(v)) => n != *v,
                (Op::Lt, Literal::Num(v)) => n < *v,
                (Op::Le, Literal::Num(v)) => n <= *v,
                (Op::Gt, Literal::Num(v)) => n > *v,
                (Op::Ge, Literal::Num(v)) => n >= *v,
                _ => false,
            },
            Found::Many(values) => values.iter().any(|s| compare_str(s, clause.op, &clause.value)),
            Found::Missing => {
                matches!(clause.key, Key::Tag(_))
                    && matches!(clause.op, Op::Ne | Op::NotIn)
                    && matches!(entity, Entity::RegisteredModel | Entity::ModelVersion | Entity::LoggedModel)
            }
        })
    }
}

/// Orders two rows by `keys`: numbers numerically (NaN after every
/// number), strings by code point, and a row without the key after every
/// row with it, whichever the direction (MLflow puts NULLs last).
pub fn compare(keys: &[OrderKey], a: &dyn Row, b: &dyn Row) -> Ordering {
    for key in keys {
        let ordering = match (lookup(a, &key.key), lookup(b, &key.key)) {
            (Found::Missing, Found::Missing) => Ordering::Equal,
            (Found::Missing, _) => return Ordering::Greater,
            (_, Found::Missing) => return Ordering::Less,
            (Found::Num(x), Found::Num(y)) => nan_last(x).total_cmp(&nan_last(y)),
            (Found::Str(x), Found::Str(y)) => x.cmp(y),
            (Found::Num(_), _) => Ordering::Less,
            (_, Found::Num(_)) => Ordering::Greater,
            (Found::Many(x), Found::Many(y)) => x.cmp(&y),
            (Found::Many(_), _) => Ordering::Greater,
            (_, Found::Many(_)) => Ordering::Less,
        };
        let ordering = if key.ascending { ordering } else { ordering.reverse() };
        if ordering.is_ne() {
            return ordering;
        }
    }
    Ordering::Equal
}

fn nan_last(v: f64) -> f64 {
    if v.is_nan() {
        f64::INFINITY
    } else {
        v
    }
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
        fn dataset(&self, _: &str) -> Vec<&str> {
            Vec::new()
        }
    }

    fn clause(key: Key, op: Op, value: Literal) -> Clause {
        Clause { key, op, value }
    }

    #[test]
    fn the_clients_own_strings_parse() {
        let f = parse_filter(Entity::RegisteredModel, "name LIKE 'rm-%' AND tag.`mlflow.prompt.is_prompt` != 'true'").unwrap();
        assert_eq!(
            f.clauses,
            vec![
                clause(Key::Attribute("name".into()), Op::Like, Literal::Str("rm-%".into())),
                clause(Key::Tag("mlflow.prompt.is_prompt".into()), Op::Ne, Literal::Str("true".into())),
            ]
        );
        let f = parse_filter(Entity::ModelVersion, "name='rm-1'").unwrap();
        assert_eq!(f.clauses, vec![clause(Key::Attribute("name".into()), Op::Eq, Literal::Str("rm-1".into()))]);
        let f = parse_filter(Entity::Run, "metrics.rmse < 0.5 and params.alpha = '0.1'").unwrap();
        assert_eq!(
            f.clauses,
            vec![
                clause(Key::Metric("rmse".into()), Op::Lt, Literal::Num(0.5)),
                clause(Key::Param("alpha".into()), Op::Eq, Literal::Str("0.1".into())),
            ]
        );
        let f = parse_filter(Entity::Run, r#"tags."mlflow.runName" ILIKE '%Squid%'"#).unwrap();
        assert_eq!(f.clauses, vec![clause(Key::Tag("mlflow.runName".into()), Op::ILike, Literal::Str("%Squid%".into()))]);
        let f = parse_filter(Entity::Run, "tags.mlflow.user = 'root'").unwrap();
        assert_eq!(f.clauses[0].key, Key::Tag("mlflow.user".into()));
        let f = parse_filter(Entity::Run, "run_id IN ('a','b') AND attributes.status = 'FINISHED'").unwrap();
        assert_eq!(f.clauses[0], clause(Key::Attribute("run_id".into()), Op::In, Literal::List(vec!["a".into(), "b".into()])));
        let f = parse_filter(Entity::ModelVersion, "version_number >= 2").unwrap();
        assert_eq!(f.clauses, vec![clause(Key::Attribute("version_number".into()), Op::Ge, Literal::Num(2.0))]);
        let f = parse_filter(Entity::Run, "metrics.loss <= -1.5e-3 and metrics.`a b` <> 3").unwrap();
        assert_eq!(f.clauses[0].value, Literal::Num(-1.5e-3));
        assert_eq!(f.clauses[1], clause(Key::Metric("a b".into()), Op::Ne, Literal::Num(3.0)));
        assert_eq!(parse_filter(Entity::Run, "params.p = 'it''s'").unwrap().clauses[0].value, Literal::Str("it's".into()));
        assert_eq!(parse_filter(Entity::Run, r"params.p = 'it\'s'").unwrap().clauses[0].value, Literal::Str("it's".into()));
        assert!(parse_filter(Entity::Run, "  ").unwrap().clauses.is_empty());
    }

    #[test]
    fn malformed_filters_name_the_token() {
        for (text, token) in [
            ("params.a = '1' OR params.a = '2'", "OR"),
            ("metrics.loss < 'low'", "metrics.loss <"),
            ("params.alpha < 1", "params.alpha <"),
            ("metrics.loss LIKE '%'", "metrics.loss LIKE"),
            ("tags.t = 5", "tags.t ="),
            ("foo.bar = 1", "foo"),
            ("colour = 'red'", "colour"),
            ("params.a = '1' AND", "AND"),
            ("params.a = 'x", "never closed"),
            ("params.a == 'x'", "="),
            ("(params.a = 'x')", "("),
            ("params.a = 'x' params.b = 'y'", "params"),
            ("run_id IN ('a' 'b')", "'b'"),
            ("metrics.loss < NaN", "NaN"),
            ("params. = 'x'", "="),
            ("`unterminated = 1", "never closed"),
            ("params.a = 'x' AND ;", ";"),
        ] {
            let e = parse_filter(Entity::Run, text).unwrap_err();
            assert!(e.message.contains(token), "{text}: {e}");
        }
        assert!(parse_filter(Entity::RegisteredModel, "metrics.m > 1").is_err(), "registered models have no metrics");
        assert!(parse_filter(Entity::RegisteredModel, "run_id = 'x'").is_err());
        assert!(parse_filter(Entity::Run, &"a".repeat(MAX_FILTER_LEN + 1)).is_err());
        let many = vec!["params.a = 'x'"; MAX_CLAUSES + 1].join(" AND ");
        assert!(parse_filter(Entity::Run, &many).unwrap_err().message.contains("clauses"));
    }

    #[test]
    fn evaluation_follows_mlflow() {
        let mut row = TestRow::default();
        row.attributes.insert("name", Value::Str("rm-1"));
        row.attributes.insert("version_number", Value::Num(3.0));
        row.metrics.insert("loss", 0.2);
        row.metrics.insert("nan", f64::NAN);
        row.params.insert("alpha", "0.5");
        row.tags.insert("team", "Risk");
        let yes = |entity, text: &str| parse_filter(entity, text).unwrap().matches(entity, &row);
        assert!(yes(Entity::Run, "metrics.loss < 0.25 and params.alpha = '0.5'"));
        assert!(!yes(Entity::Run, "metrics.loss > 0.25"));
        assert!(!yes(Entity::Run, "metrics.missing < 1"), "a missing metric matches nothing");
        assert!(!yes(Entity::Run, "tags.missing != 'x'"), "runs: a missing tag matches nothing");
        assert!(yes(Entity::RegisteredModel, "tags.`mlflow.prompt.is_prompt` != 'true'"), "registry: a missing tag matches !=");
        assert!(yes(Entity::ModelVersion, "version_number > 2 AND name LIKE 'rm-_'"));
        assert!(yes(Entity::Run, "tags.team ILIKE 'risk'"));
        assert!(!yes(Entity::Run, "tags.team LIKE 'risk'"));
        assert!(!yes(Entity::Run, "metrics.nan = 1"));
        assert!(yes(Entity::Run, "metrics.nan != 1"));
    }

    #[test]
    fn like_handles_wildcards_and_edges() {
        assert!(like("abc", "%", false));
        assert!(like("", "%", false));
        assert!(like("", "", false));
        assert!(!like("a", "", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("ab", "a_c", false));
        assert!(like("rm-12", "rm-%", false));
        assert!(like("xaxbxc", "%a%b%c", false));
        assert!(!like("abc", "abcd", false));
        assert!(like("ÄBC", "äbc", true));
        assert!(!like("ÄBC", "äbc", false));
        // Many wildcards over a long text stay fast.
        assert!(!like(&"a".repeat(5000), &"%a".repeat(200).replace("%a%a", "%a%b"), false));
    }

    #[test]
    fn order_by_parses_and_compares_with_missing_last() {
        let keys = parse_order_by(Entity::Run, &["metrics.rmse DESC".into(), "name".into()]);
        assert!(keys.is_err(), "runs have no `name` attribute");
        let keys = parse_order_by(Entity::Run, &["metrics.rmse DESC".into(), "params.`a b`".into(), "attributes.start_time asc".into()]).unwrap();
        assert_eq!(keys[0], OrderKey { key: Key::Metric("rmse".into()), ascending: false });
        assert_eq!(keys[1], OrderKey { key: Key::Param("a b".into()), ascending: true });
        for bad in ["name SIDEWAYS", "", "metrics.rmse DESC extra", "metrics."] {
            assert!(parse_order_by(Entity::RegisteredModel, &[bad.into()]).is_err(), "{bad}");
        }
        let (mut a, mut b, c) = (TestRow::default(), TestRow::default(), TestRow::default());
        a.metrics.insert("m", 1.0);
        b.metrics.insert("m", 2.0);
        let desc = parse_order_by(Entity::Run, &["metrics.m DESC".into()]).unwrap();
        assert_eq!(compare(&desc, &b, &a), Ordering::Less);
        assert_eq!(compare(&desc, &c, &a), Ordering::Greater, "missing sorts last, descending too");
        let asc = parse_order_by(Entity::Run, &["metrics.m".into()]).unwrap();
        assert_eq!(compare(&asc, &a, &b), Ordering::Less);
        assert_eq!(compare(&asc, &c, &b), Ordering::Greater);
    }

    /// A plain recursive LIKE, the reference for the iterative one.
    fn like_reference(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| like_reference(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && like_reference(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && like_reference(&t[1..], rest),
        }
    }

    fn render(filter: &Filter) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
        filter
            .clauses
            .iter()
            .map(|c| {
                let key = match &c.key {
                    Key::Attribute(a) => format!("attributes.{a}"),
                    Key::Metric(m) => format!("metrics.`{m}`"),
                    Key::Param(p) => format!("params.`{p}`"),
                    Key::Tag(t) => format!("tags.`{t}`"),
                    Key::Dataset(d) => format!("datasets.{d}"),
                };
                let value = match &c.value {
                    Literal::Str(s) => quote(s),
                    Literal::Num(n) => format!("{n:?}"),
                    Literal::List(l) => format!("({})", l.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")),
                };
                format!("{key} {} {value}", op_text(c.op))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn clause_strategy() -> impl Strategy<Value = Clause> {
        let name = "[a-z][a-z0-9_. -]{0,8}".prop_filter("no trailing space issues", |s: &String| !s.contains('`'));
        let text = "[ -~]{0,10}";
        prop_oneof![
            (name.clone(), prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Lt), Just(Op::Le), Just(Op::Gt), Just(Op::Ge)], -1e6f64..1e6)
                .prop_map(|(m, op, v)| clause(Key::Metric(m), op, Literal::Num(v))),
            (name.clone(), prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Like), Just(Op::ILike)], text)
                .prop_map(|(p, op, v)| clause(Key::Param(p), op, Literal::Str(v))),
            (name, prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Like), Just(Op::ILike)], text)
                .prop_map(|(t, op, v)| clause(Key::Tag(t), op, Literal::Str(v))),
            (prop_oneof![Just(Op::In), Just(Op::NotIn)], proptest::collection::vec(text, 1..4))
                .prop_map(|(op, vs)| clause(Key::Attribute("run_id".into()), op, Literal::List(vs))),
        ]
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,80}") {
            let _ = parse_filter(Entity::Run, &text);
            let _ = parse_filter(Entity::RegisteredModel, &text);
            let _ = parse_order_by(Entity::ModelVersion, &[text]);
        }

        #[test]
        fn grammar_fragments_never_panic(parts in proptest::collection::vec(prop_oneof![
            Just("metrics."), Just("params."), Just("tags."), Just("`"), Just("'"), Just("\""), Just(" AND "), Just(" and "),
            Just(" OR "), Just("("), Just(")"), Just(","), Just(" IN "), Just(" NOT "), Just("="), Just("!="), Just("<"), Just(">="),
            Just("LIKE"), Just("x"), Just("1.5"), Just("-"), Just("e"), Just("."), Just(" "), Just("\\"), Just("run_id"), Just("é")
        ], 0..20)) {
            let text: String = parts.concat();
            let _ = parse_filter(Entity::Run, &text);
            let _ = parse_order_by(Entity::Run, &[text]);
        }

        #[test]
        fn like_agrees_with_the_reference(text in "[ab%_]{0,8}", pattern in "[ab%_]{0,6}") {
            let t: Vec<char> = text.chars().collect();
            let p: Vec<char> = pattern.chars().collect();
            prop_assert_eq!(like(&text, &pattern, false), like_reference(&t, &p));
        }

        #[test]
        fn a_rendered_filter_parses_back(clauses in proptest::collection::vec(clause_strategy(), 1..5)) {
            let filter = Filter { clauses };
            let parsed = parse_filter(Entity::Run, &render(&filter)).map_err(|e| TestCaseError::fail(format!("{}: {e}", render(&filter))))?;
            prop_assert_eq!(parsed, filter);
        }
    }
}
