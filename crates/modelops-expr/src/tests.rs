use super::*;
use serde_json::json;

fn schema() -> Schema {
    Schema::new()
        .var(
            "version",
            Type::object([
                ("number", Type::Int),
                ("author", Type::String),
                ("created_at", Type::Timestamp),
                ("tags", Type::map(Type::String)),
                ("card", Type::object([("intended_use", Type::String), ("metrics", Type::map(Type::Double))])),
            ]),
        )
        .var("approvals", Type::list(Type::object([("by", Type::String), ("roles", Type::list(Type::String)), ("at", Type::Timestamp)])))
        .var("score", Type::Double)
        .var("flag", Type::Bool)
        .var("now", Type::Timestamp)
}

fn bindings() -> Bindings {
    Bindings::from_object(
        &schema(),
        &json!({
            "version": {
                "number": 3, "author": "ana", "created_at": "2026-01-01T00:00:00Z", "tags": {"team": "risk"},
                "card": {"intended_use": "  credit scoring ", "metrics": {"auc": 0.91}}
            },
            "approvals": [
                {"by": "ana", "roles": ["developer"], "at": "2026-01-02T00:00:00Z"},
                {"by": "val", "roles": ["validator"], "at": "2026-01-03T00:00:00Z"}
            ],
            "score": 1,
            "flag": true,
            "now": "2026-01-10T00:00:00Z"
        }),
    )
    .unwrap()
}

fn eval(source: &str) -> Result<Value, ExprError> {
    compile(source, &schema())?.evaluate(&bindings())
}

fn condition(source: &str) -> Result<bool, ExprError> {
    compile_condition(source, &schema())?.evaluate_bool(&bindings())
}

fn compile_err(source: &str) -> String {
    compile_condition(source, &schema()).unwrap_err().to_string()
}

#[test]
fn conditions_evaluate_over_bound_json() {
    assert_eq!(condition("approvals.exists(a, 'validator' in a.roles && a.by != version.author)"), Ok(true));
    assert_eq!(condition("approvals.all(a, 'validator' in a.roles)"), Ok(false));
    assert_eq!(condition("version.card.intended_use.trim() == 'credit scoring'"), Ok(true));
    assert_eq!(condition("version.tags['team'] == 'risk' && has(version.tags.team) && !has(version.tags.owner)"), Ok(true));
    assert_eq!(condition("now - version.created_at > duration('24h')"), Ok(true));
    assert_eq!(condition("approvals.filter(a, a.by != version.author).map(a, a.by) == ['val']"), Ok(true));
    assert_eq!(condition("approvals.exists_one(a, a.at > timestamp('2026-01-02T12:00:00Z'))"), Ok(true));
    assert_eq!(eval("version.number * 2 + size(approvals)"), Ok(Value::Int(8)));
    assert_eq!(eval("{'n': version.number, 'who': approvals.map(a, a.by)}").unwrap().to_json(), json!({"n": 3, "who": ["ana", "val"]}));
}

#[test]
fn ints_and_doubles_compare_by_value_but_do_not_mix_in_arithmetic() {
    // `score` is declared a double and bound from the JSON integer `1`.
    assert_eq!(condition("score >= 1"), Ok(true));
    assert_eq!(condition("score == 1"), Ok(true));
    assert_eq!(condition("score < 1.5 && 2 > score"), Ok(true));
    assert_eq!(condition("version.number == 3.0"), Ok(true));
    assert_eq!(eval("score + 1.0"), Ok(Value::Double(2.0)));
    let err = compile_err("score + 1 > 0.0");
    assert!(err.starts_with("1:7: `+` cannot combine a double with an int"), "{err}");
    assert!(err.contains("write a double constant as `1.0`"), "{err}");
}

#[test]
fn sources_over_the_limit_and_empty_ones_are_refused() {
    let long = format!("flag || {}", "flag || ".repeat(MAX_SOURCE_BYTES / 8));
    assert_eq!(compile_condition(&long, &schema()).unwrap_err(), ExprError::TooLong { len: long.len(), max: MAX_SOURCE_BYTES });
    assert_eq!(compile_condition(" \n ", &schema()).unwrap_err(), ExprError::Empty);
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = compile_condition("flag &&\n  (score > ", &schema()).unwrap_err();
    assert!(matches!(err, ExprError::Syntax { at: Position { line: 2, .. }, .. }), "{err:?}");
    assert!(err.to_string().starts_with("2:"), "{err}");
    assert!(compile_err("version.?card == ''").contains("unsupported syntax"));
}

#[test]
fn every_variable_must_be_declared() {
    assert_eq!(
        compile_err("flag && versoin.number > 1"),
        "1:9: `versoin` is not declared (variables: `version`, `approvals`, `score`, `flag`, `now`)"
    );
    // A comprehension variable is only in scope inside its comprehension.
    assert!(compile_err("approvals.exists(x, true) && x.by == ''").contains("`x` is not declared"));
    let compiled = compile_condition("approvals.exists(a, a.by == version.author)", &schema()).unwrap();
    assert_eq!(compiled.variables().collect::<Vec<_>>(), vec!["approvals", "version"]);
}

#[test]
fn only_known_functions_may_be_called() {
    assert_eq!(compile_err("max(score, 1.0) > 0.0"), "1:4: `max` is not a known function");
    assert_eq!(compile_err("version.author.strip() == ''"), "1:21: `strip` is not a known function");
    let err = compile_err("approvals.exists(a)");
    assert!(err.contains("`exists` is not a known function with these arguments; write `list.exists(x, condition)`"), "{err}");
}

#[test]
fn every_known_function_resolves_in_the_environment() {
    let env = env().unwrap();
    for name in check::KNOWN_FUNCTIONS {
        let undeclared = |source: String| {
            let program = env.compile(&source).unwrap();
            let ctx = Context::with_env(Arc::clone(&env));
            matches!(program.execute(&ctx), Err(ExecutionError::UndeclaredReference(_)))
        };
        assert!(!(undeclared(format!("{name}()")) && undeclared(format!("''.{name}()"))), "`{name}` is not in the environment");
    }
}

#[test]
fn fields_of_declared_objects_are_checked() {
    assert_eq!(
        compile_err("version.crad.intended_use != ''"),
        "1:8: `crad` is not a field of `version` (fields: `number`, `author`, `created_at`, `tags`, `card`)"
    );
    assert_eq!(compile_err("approvals.exists(a, a.byy == 'x')"), "1:22: `byy` is not a field of `a` (fields: `by`, `roles`, `at`)");
    assert!(compile_err("approvals[0].byy == 'x'").contains("`byy` is not a field of `approvals[…]`"));
    assert!(compile_err("approvals.filter(a, true).exists(b, b.who == '')").contains("`who` is not a field of `b`"));
    assert!(compile_err("has(version.card.intended_us)").contains("`intended_us` is not a field of `version.card`"));
    assert!(compile_err("version['crad'] == 1").contains("`crad` is not a field of `version`"));
    assert!(compile_err("version.number.value == 1").contains("`value` cannot be selected from `version.number`, which is an int"));
    // The error is where it is, also on a later line.
    assert!(compile_err("flag &&\n  version.card.intnded_use == ''").starts_with("2:15: `intnded_use`"));
    // Map values are selected by any key: which keys exist is data.
    assert_eq!(condition("version.tags.team == 'risk'"), Ok(true));
}

#[test]
fn operator_type_errors_are_refused_at_compile() {
    assert_eq!(compile_err("version.number > 'x'"), "1:16: `>` cannot compare an int with a string");
    assert_eq!(compile_err("'a' - 1 == 0"), "1:5: `-` cannot be applied to a string and an int");
    assert!(compile_err("!version.number").contains("`!` needs bools, not an int"));
    assert!(compile_err("version.author == 3").contains("`==` compares a string with an int"));
    assert!(compile_err("3 in approvals.map(a, a.by)").contains("`in` looks for an int in a list of strings"));
    assert!(compile_err("version.author in 'abc'").contains("`in` needs a list or a map on its right, not a string"));
    assert!(compile_err("approvals['x'].by == ''").contains("a list is indexed by an int, not a string"));
    assert!(compile_err("version.number ? true : false").contains("the condition of `? :` must be a bool"));
    // What the walk cannot type, the prototype evaluation finds.
    assert_eq!(compile_err("dyn(version.number) > 'x'"), "`>` cannot be applied to (int, string)");
    assert_eq!(compile_err("size(1) > 0"), "1:5: `size` needs a string, a list or a map, not an int");
    assert_eq!(compile_err("version.author.contains(1)"), "`contains` cannot be called on a string with (int)");
    assert_eq!(compile_err("approvals.exists(a, dyn(a.at) > 1)"), "`>` cannot be applied to (timestamp, int)");
}

#[test]
fn errors_that_depend_on_data_are_not_type_errors() {
    for source in [
        "version.card.metrics['auc'] > 0.5",
        "10 / (version.number - version.number) > 1",
        "approvals[5].by == 'x'",
        "int(version.author) > 2",
        "{version.author: 1, version.tags['x']: 2}.size() == 2",
    ] {
        assert!(compile_condition(source, &schema()).is_ok(), "{source}");
    }
    // …but they are errors when evaluated on data that raises them.
    let missing = compile_condition("version.card.metrics['roc'] > 0.5", &schema()).unwrap();
    assert_eq!(missing.evaluate_bool(&bindings()).unwrap_err().to_string(), "no such key `roc`");
    let out_of_range = compile_condition("approvals[5].by == 'x'", &schema()).unwrap();
    assert_eq!(out_of_range.evaluate_bool(&bindings()).unwrap_err().to_string(), "index `5` is out of range");
}

#[test]
fn a_condition_must_give_a_bool() {
    assert_eq!(compile_err("version.number"), "the condition gives an int, not a bool");
    assert_eq!(compile_err("version.card.metrics['auc']"), "the condition gives a double, not a bool");
    assert_eq!(compile_err("approvals.map(a, a.by)"), "the condition gives a list, not a bool");
    // A general expression may give anything.
    assert_eq!(eval("version.card.metrics['auc']"), Ok(Value::Double(0.91)));
    let general = compile("version.author", &schema()).unwrap();
    assert_eq!(general.evaluate_bool(&bindings()).unwrap_err().to_string(), "the condition gives a string, not a bool");
}

#[test]
fn unbound_variables_are_refused_at_evaluation() {
    let e = compile_condition("flag && score > 0.0", &schema()).unwrap();
    let mut partial = Bindings::new(&schema());
    partial.bind("flag", &json!(true)).unwrap();
    assert_eq!(e.evaluate(&partial).unwrap_err(), ExprError::Unbound { name: "score".into() });
    partial.bind("score", &json!(0.5)).unwrap();
    assert_eq!(e.evaluate_bool(&partial), Ok(true));
}

/// Runs `f` on a thread with tokio's default stack, where a server evaluates.
fn on_small_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| std::thread::Builder::new().stack_size(2 << 20).spawn_scoped(s, f).unwrap().join().unwrap())
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    on_small_stack(|| {
        let parens = format!("{}flag{}", "(".repeat(2046), ")".repeat(2046));
        assert_eq!(parens.len(), MAX_SOURCE_BYTES);
        assert!(matches!(compile_condition(&parens, &schema()), Err(ExprError::TooDeep { max: MAX_NESTING, .. })));

        let lists = format!("size({}{}) == 1", "[".repeat(1000), "]".repeat(1000));
        assert!(matches!(compile_condition(&lists, &schema()), Err(ExprError::TooDeep { .. })));

        // `? :` nests without brackets: the parser's own limit refuses it.
        let ternaries = format!("{}flag", "flag ? true : ".repeat(200));
        let err = compile_condition(&ternaries, &schema()).unwrap_err();
        assert!(matches!(err, ExprError::TooDeep { .. }), "{err:?}");

        // A long chain of one operator is a deep tree.
        let sums = format!("{}1 > 0", "1 + ".repeat(1020));
        assert!(matches!(compile_condition(&sums, &schema()), Err(ExprError::TooComplex { .. })));
        let selects = format!("version{} == ''", ".x".repeat(2000));
        assert!(compile_condition(&selects, &schema()).is_err());

        // Repeated negation collapses in the parser: an even count is the operand.
        let nots = format!("{}flag", "!".repeat(MAX_SOURCE_BYTES - 4));
        assert_eq!(nots.len(), MAX_SOURCE_BYTES);
        assert_eq!(compile_condition(&nots, &schema()).unwrap().evaluate_bool(&bindings()), Ok(true));
        let odd = format!("{}flag", "!".repeat(MAX_SOURCE_BYTES - 5));
        assert_eq!(compile_condition(&odd, &schema()).unwrap().evaluate_bool(&bindings()), Ok(false));

        // `&&` chains are balanced: 819 terms are ten levels deep.
        let ands = format!("flag{}", " && flag".repeat((MAX_SOURCE_BYTES - 4) / 8));
        assert!(ands.len() <= MAX_SOURCE_BYTES && ands.len() > MAX_SOURCE_BYTES - 8);
        assert_eq!(compile_condition(&ands, &schema()).unwrap().evaluate_bool(&bindings()), Ok(true));
    });
}

#[test]
fn the_deepest_accepted_expressions_compile_and_evaluate_on_a_small_stack() {
    on_small_stack(|| {
        let parens = format!("{}flag{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(compile_condition(&parens, &schema()).unwrap().evaluate_bool(&bindings()), Ok(true));
        let too_many = format!("{}flag{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert!(matches!(compile_condition(&too_many, &schema()), Err(ExprError::TooDeep { .. })));

        // MAX_DEPTH - 2 additions under a comparison: the tree is MAX_DEPTH deep.
        let terms = MAX_DEPTH - 2;
        let sums = format!("{}version.number == {}", "1 + ".repeat(terms), terms + 3);
        let compiled = compile_condition(&sums, &schema()).unwrap();
        assert_eq!(compiled.evaluate_bool(&bindings()), Ok(true));
        let one_more = format!("{}version.number == 0", "1 + ".repeat(terms + 1));
        assert!(matches!(compile_condition(&one_more, &schema()), Err(ExprError::TooComplex { .. })));

        let nested = "approvals.exists(a, approvals.exists(b, approvals.exists(c, approvals.exists(d, a.by == d.by && b.by != c.by))))";
        assert_eq!(condition(nested), Ok(true));
    });
}

#[test]
fn malformed_sources_are_errors_not_panics() {
    for source in [
        "'unterminated",
        "\"\"\"open",
        "r'\\'",
        "a.b.",
        "[1, 2",
        "{'a': }",
        "))))((((",
        "1 ? : 2",
        "foo.bar(",
        "\u{0}",
        "version.number >>> 2",
        "has()",
        "has(1)",
        "approvals.exists(1, true)",
        "approvals.map(a, b, c, d)",
        "Foo{x: 1}",
        "b'\\xff' == b''",
        "18446744073709551615u > 1u",
        "9223372036854775807 + 1 > 0",
        "'\u{202e}' == version.author",
        "timestamp('x') > now",
        "type(version) == map",
    ] {
        let _ = compile_condition(source, &schema()).map(|e| e.evaluate(&bindings()));
    }
    assert!(compile_err("Foo{x: 1}").contains("`Foo` is not a known type"));
}

#[test]
fn runtime_errors_are_described_in_words() {
    let overflow = compile_condition("version.number * 9223372036854775807 > 0", &schema()).unwrap();
    assert_eq!(overflow.evaluate_bool(&bindings()).unwrap_err().to_string(), "`*` overflows on int and int");
    let bad_time = compile_condition("timestamp(version.author) > now", &schema()).unwrap();
    let err = bad_time.evaluate_bool(&bindings()).unwrap_err().to_string();
    assert!(err.starts_with("`timestamp`: "), "{err}");
    let div = compile("10 / (version.number - 3)", &schema()).unwrap();
    assert_eq!(div.evaluate(&bindings()).unwrap_err().to_string(), "division by zero");
}

#[test]
fn expressions_are_send_sync_and_cheap_to_share() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<Expression>();
    shared::<Bindings>();
    let e = compile_condition("flag", &schema()).unwrap();
    assert_eq!(e.source(), "flag");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || e.evaluate_bool(&bindings()))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Ok(true));
    }
}

/// The deepest expressions evaluated on the caller's thread fit in half of
/// tokio's 2 MiB worker stack, whatever their shape.
#[test]
fn inline_evaluation_fits_in_a_small_stack() {
    type Shape = fn(usize) -> String;
    let shapes: [Shape; 4] = [
        |n| format!("{}version.number > 0", "1 + ".repeat(n)),
        |n| {
            let mut s = String::from("a0.by == version.author");
            for i in (0..n).rev() {
                s = format!("approvals.exists(a{i}, {s})");
            }
            s
        },
        |n| format!("{}version.author{} > 0", "size(string(".repeat(n), "))".repeat(n)),
        |n| format!("{}flag{}", "(flag ? ".repeat(n), " : false)".repeat(n)),
    ];
    for shape in shapes {
        let mut deepest = None;
        for n in 1.. {
            match compile_condition(&shape(n), &schema()) {
                Ok(e) if e.depth <= INLINE_DEPTH => deepest = Some(e),
                _ => break,
            }
        }
        let e = deepest.unwrap();
        let bindings = bindings();
        let result = std::thread::scope(|s| {
            std::thread::Builder::new().stack_size(1 << 20).spawn_scoped(s, || e.evaluate(&bindings)).unwrap().join().unwrap()
        });
        assert!(result.is_ok(), "{}: {result:?}", e.source());
    }
}
