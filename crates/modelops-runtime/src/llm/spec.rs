//! The LLM artifact: parsed, checked and compiled at load.

use crate::error::RuntimeError;
use serde::Deserialize;

/// The artifact as written (JSON or YAML); see the module docs of
/// [`crate::llm`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spec {
    pub upstream: String,
    pub model: String,
    pub messages: Vec<MessageSpec>,
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<i64>,
    pub stop: Option<Vec<String>>,
    pub response_format: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageSpec {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    System,
    Developer,
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParameterSpec {
    pub name: String,
    /// A required parameter refuses an empty (or blank) value.
    #[serde(default = "yes")]
    pub required: bool,
    /// What an empty value of an optional parameter becomes.
    #[serde(default)]
    pub default: String,
    /// For people reading the artifact; not sent anywhere.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
}

fn yes() -> bool {
    true
}

/// The most stop sequences OpenAI accepts.
pub(crate) const MAX_STOP: usize = 4;

/// Parses JSON (when the artifact starts with `{`) or YAML, naming the
/// member at fault, then checks the values.
pub(crate) fn parse(artifact: &[u8]) -> Result<Spec, RuntimeError> {
    let spec: Spec = crate::spec::parse(artifact, "LLM spec")?;
    check(&spec)?;
    Ok(spec)
}

fn check(spec: &Spec) -> Result<(), RuntimeError> {
    let load = |field: &str, reason: String| Err(RuntimeError::Load(format!("`{field}` {reason}")));
    if spec.upstream.trim().is_empty() {
        return load(
            "upstream",
            "is empty: name one of the server's configured upstreams".into(),
        );
    }
    if spec.model.trim().is_empty() {
        return load("model", "is empty".into());
    }
    if spec.messages.is_empty() {
        return load("messages", "is empty: give at least one message".into());
    }
    if let Some(t) = spec.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return load("temperature", format!("`{t}` is outside [0, 2]"));
    }
    if let Some(p) = spec.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
        return load("top_p", format!("`{p}` is outside [0, 1]"));
    }
    if spec.max_tokens == Some(0) {
        return load("max_tokens", "`0` must be at least 1".into());
    }
    if let Some(stop) = &spec.stop {
        if stop.len() > MAX_STOP || stop.iter().any(String::is_empty) {
            return load(
                "stop",
                format!("must hold at most {MAX_STOP} non-empty sequences"),
            );
        }
    }
    if let Some(format) = &spec.response_format {
        if !format.get("type").is_some_and(serde_json::Value::is_string) {
            return load(
                "response_format",
                "must be an object with a `type` (`text`, `json_object`, `json_schema`)".into(),
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in spec.parameters.iter().enumerate() {
        if !is_identifier(&p.name) {
            return load(
                &format!("parameters[{i}].name"),
                format!(
                    "`{}` is not a name (letters, digits and `_`, not starting with a digit)",
                    p.name
                ),
            );
        }
        if !seen.insert(p.name.as_str()) {
            return load(
                &format!("parameters[{i}].name"),
                format!("`{}` is declared twice", p.name),
            );
        }
        if p.required && !p.default.is_empty() {
            return load(
                &format!("parameters[{i}].default"),
                format!(
                    "is set but `{}` is required: make it `required: false`",
                    p.name
                ),
            );
        }
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A message's content cut at its placeholders.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Text(String),
    /// The index of a declared parameter.
    Parameter(usize),
}

/// Compiles `{{name}}` placeholders (spaces inside the braces allowed)
/// against the declared parameter names. `field` names the message for
/// errors. There is no escape: `{{` always opens a placeholder.
pub(crate) fn compile(
    field: &str,
    content: &str,
    parameters: &[&str],
) -> Result<Vec<Segment>, RuntimeError> {
    let mut segments = Vec::new();
    let mut rest = content;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            segments.push(Segment::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(RuntimeError::Load(format!(
                "`{field}` has a `{{{{` that is never closed by `}}}}`"
            )));
        };
        let name = after[..close].trim();
        let Some(index) = parameters.iter().position(|p| *p == name) else {
            let declared = if parameters.is_empty() {
                "none".to_string()
            } else {
                parameters
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(RuntimeError::Load(format!(
                "`{field}` uses the placeholder `{{{{{name}}}}}` but no parameter `{name}` is declared (declared: {declared})"
            )));
        };
        segments.push(Segment::Parameter(index));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_string()));
    }
    Ok(segments)
}

/// Renders compiled segments with one row's parameter values.
pub(crate) fn render(segments: &[Segment], values: &[&str]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Parameter(i) => out.push_str(values.get(*i).copied().unwrap_or_default()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_compile_and_render() {
        let segments =
            compile("m", "Summarise {{ text }} in {{lang}}.", &["lang", "text"]).unwrap();
        assert_eq!(
            render(&segments, &["French", "the memo"]),
            "Summarise the memo in French."
        );
        assert_eq!(
            render(&compile("m", "no placeholders", &[]).unwrap(), &[]),
            "no placeholders"
        );
        // A value is inserted verbatim: placeholders in it are not expanded.
        assert_eq!(
            render(&segments, &["{{text}}", "x"]),
            "Summarise x in {{text}}."
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_refused_by_name() {
        let err = compile("messages[1].content", "Hi {{nmae}}", &["name"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the artifact cannot be loaded: `messages[1].content` uses the placeholder `{{nmae}}` but no parameter `nmae` is declared (declared: `name`)"
        );
        let err = compile("messages[0].content", "Hi {{name", &["name"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`messages[0].content` has a `{{` that is never closed by `}}`"),
            "{err}"
        );
    }

    #[test]
    fn spec_fields_are_checked() {
        let err = |yaml: &str| parse(yaml.as_bytes()).unwrap_err().to_string();
        let base = "upstream: openai\nmodel: m\nmessages: [{role: user, content: hi}]\n";
        assert!(parse(base.as_bytes()).is_ok());
        assert!(
            err(&format!("{base}temperature: 3\n")).contains("`temperature` `3` is outside [0, 2]")
        );
        assert!(err(&format!("{base}parameters: [{{name: 1x}}]\n"))
            .contains("`parameters[0].name` `1x` is not a name"));
        assert!(
            err(&format!("{base}parameters: [{{name: a}}, {{name: a}}]\n"))
                .contains("`a` is declared twice")
        );
        assert!(err(&format!("{base}colour: red\n")).contains("unknown field `colour`"));
        assert!(
            err("upstream: openai\nmodel: m\nmessages: [{role: robot, content: hi}]\n")
                .contains("unknown variant `robot`")
        );
        assert!(
            err(r#"{"upstream": "openai", "model": "m", "messages": []}"#)
                .contains("`messages` is empty")
        );
    }
}
