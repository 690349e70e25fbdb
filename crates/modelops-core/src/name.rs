//! Validated names. A value of these types is known to be acceptable, so
//! storage and handlers never re-check them.

use crate::error::{Error, Result};
use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint};
use icu_properties::CodePointSetData;
use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

pub const MAX_NAME_LEN: usize = 128;
pub const MAX_TAG_KEY_LEN: usize = 250;
/// MLflow's limit for registry tags, which hold whole prompt templates
/// (`mlflow.prompt.text`).
pub const MAX_TAG_VALUE_LEN: usize = 100_000;

/// The rules below as JSON Schema patterns (ECMA-262), for API documents.
/// They state what `parse` accepts so that clients and fuzzers can generate
/// valid values; `parse` stays the authority.
pub mod pattern {
    /// The characters of the Basic Multilingual Plane that
    /// [`is_invisible`](super::is_invisible) refuses, as class ranges: every
    /// Default_Ignorable_Code_Point and Bidi_Control there (Unicode 18). A
    /// test checks it against the property data.
    ///
    /// The astral ones, U+1BCA0–U+1BCA3, U+1D173–U+1D17A and U+E0000–U+E0FFF
    /// (tag characters, variation selectors supplement), are not listed: a
    /// class without ECMA-262's `u` flag matches UTF-16 code units, with it
    /// `\u{…}` (a surrogate-pair range works only without it), and Python's
    /// `re`, which fuzzers such as schemathesis use, spells them `\U…`; no
    /// one spelling works for all. The patterns therefore still admit those
    /// few characters, and `parse` refuses them.
    macro_rules! invisible_bmp {
        () => {
            r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
        };
    }
    #[cfg(test)]
    pub(super) const INVISIBLE_BMP: &str = invisible_bmp!();

    /// [`ModelName`](super::ModelName): no `/`, no control or invisible
    /// characters, no leading or trailing whitespace (1–128 characters).
    pub const MODEL_NAME: &str = concat!(
        r"^[^\s/\u0000-\u001f\u007f-\u009f",
        invisible_bmp!(),
        r"](?:[^/\u0000-\u001f\u007f-\u009f",
        invisible_bmp!(),
        r"]*[^\s/\u0000-\u001f\u007f-\u009f",
        invisible_bmp!(),
        r"])?$"
    );
    /// Free text ([`check_text`](crate::model::check_text)): no control
    /// characters but tab, line feed and carriage return.
    pub const TEXT: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";
    /// Text that tells people apart (owner, team): no control characters but
    /// tab and line breaks, and no invisible ones.
    pub const IDENTIFYING_TEXT: &str = concat!(r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f", invisible_bmp!(), r"]*$");
    /// An artifact's file name: a bare name, no `/` or backslash, no control characters.
    pub const FILENAME: &str = r"^[^/\\\u0000-\u001f\u007f-\u009f]+$";
    /// [`AliasName`](super::AliasName): a letter, then letters, digits, `_`,
    /// `-`; not `latest` nor `v<digits>` (1–128 characters).
    pub const ALIAS: &str = r"^(?![Ll][Aa][Tt][Ee][Ss][Tt]$|[Vv][0-9]+$)[A-Za-z][A-Za-z0-9_-]*$";
    /// [`TagKey`](super::TagKey): no `=`, no control or invisible characters,
    /// no leading or trailing whitespace (1–250 characters).
    pub const TAG_KEY: &str = concat!(
        r"^[^\s=\u0000-\u001f\u007f-\u009f",
        invisible_bmp!(),
        r"](?:[^=\u0000-\u001f\u007f-\u009f",
        invisible_bmp!(),
        r"]*[^\s=\u0000-\u001f\u007f-\u009f",
        invisible_bmp!(),
        r"])?$"
    );
}

/// Shows a value for an error message: quoted, control and invisible
/// characters escaped, cut to a readable length.
pub fn quote(value: &str) -> String {
    let mut shown = String::new();
    for c in value.chars().take(80) {
        // escape_debug leaves the Hangul fillers (letters) as they are.
        if is_invisible(c) {
            shown.extend(c.escape_unicode());
        } else {
            shown.extend(c.escape_debug());
        }
    }
    if value.chars().count() > 80 {
        shown.push('…');
    }
    format!("`{shown}`")
}

/// Whether `c` is one of the characters UTS #39 §3.1 and UAX #31 §2.3 keep
/// out of identifiers because they are not seen: Default_Ignorable_Code_Point
/// (zero width space and joiners, soft hyphen, word joiner, variation
/// selectors, byte order mark, tag characters, Hangul fillers …) or
/// Bidi_Control (marks, embeddings, overrides and isolates, which reorder the
/// text around them). The data is ICU4X's, Unicode 18.
pub fn is_invisible(c: char) -> bool {
    // No ASCII character is default-ignorable or a bidi control (the
    // property lookups cost as much as the rest of a request's parsing).
    !c.is_ascii() && CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) || CodePointSetData::new::<BidiControl>().contains(c)
}

/// Refuses a value with an invisible character (see [`is_invisible`]), so two
/// names that look identical are the same name, and the audit log shows who
/// really acted.
pub fn check_visible(field: &str, value: &str) -> Result<()> {
    if value.is_ascii() {
        return Ok(());
    }
    let Some(c) = value.chars().find(|&c| is_invisible(c)) else {
        return Ok(());
    };
    let what = if CodePointSetData::new::<BidiControl>().contains(c) {
        "a bidirectional control character"
    } else {
        "an invisible character"
    };
    Err(Error::invalid(
        field,
        format!("{} contains U+{:04X}, {what} that can make two names look identical", quote(value), u32::from(c)),
    ))
}

/// The value in Normalization Form C, so that `e\u{301}` and `é` are one name.
pub(crate) fn to_nfc(value: String) -> String {
    if value.is_ascii() || unicode_normalization::is_nfc(&value) {
        value
    } else {
        value.nfc().collect()
    }
}

fn check_name(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("{} is longer than {max} characters", quote(value))));
    }
    if value.trim() != value {
        return Err(Error::invalid(field, format!("{} has leading or trailing whitespace", quote(value))));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("{} contains a control character", quote(value))));
    }
    check_visible(field, value)
}

/// A model's unique name: 1–128 characters, no `/`, no control or invisible
/// characters, no leading or trailing whitespace, kept in NFC (the length is
/// that of the NFC form). `/` is refused because names are path segments in
/// every API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        Self::parse_field("name", value)
    }

    /// Like [`ModelName::parse`], naming `field` in the error.
    pub fn parse_field(field: &str, value: impl Into<String>) -> Result<Self> {
        let value = to_nfc(value.into());
        check_name(field, &value, MAX_NAME_LEN)?;
        if value.contains('/') {
            return Err(Error::invalid(field, format!("{} must not contain `/`", quote(&value))));
        }
        Ok(Self(value))
    }

    /// A name read back from storage, exactly as stored. Rules only ever
    /// tighten (invisible characters, NFC came later than the first
    /// release), and a model registered under older rules must stay
    /// readable and addressable, not turn into a server error.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An alias such as `champion`: letters, digits, `_` and `-`, starting with a
/// letter, at most 128 characters. `latest` and `v<digits>` are refused
/// because MLflow gives them a meaning of their own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AliasName(String);

impl AliasName {
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_name("alias", &value, MAX_NAME_LEN)?;
        let mut chars = value.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !starts_with_letter || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(Error::invalid(
                "alias",
                format!("{} must start with a letter and contain only letters, digits, `_` and `-`", quote(&value)),
            ));
        }
        let lower = value.to_ascii_lowercase();
        let is_version_like = lower.len() > 1 && lower.starts_with('v') && lower[1..].chars().all(|c| c.is_ascii_digit());
        if lower == "latest" || is_version_like {
            return Err(Error::invalid("alias", format!("{} is reserved", quote(&value))));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tag key: 1–250 characters, no control or invisible characters, no `=`
/// (listings filter on `tag=key=value`, so a key with `=` could never be
/// filtered on), kept in NFC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagKey(String);

impl TagKey {
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        let value = to_nfc(value.into());
        check_name("tag key", &value, MAX_TAG_KEY_LEN)?;
        if value.contains('=') {
            return Err(Error::invalid("tag key", format!("{} must not contain `=`", quote(&value))));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a tag value, reported as `field`: at most [`MAX_TAG_VALUE_LEN`] characters, no
/// control characters but tab and line breaks (PostgreSQL text cannot hold
/// NUL at all, and the others make listings and logs unreadable).
pub fn check_tag_value(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_TAG_VALUE_LEN {
        return Err(Error::invalid(field, format!("value is longer than {MAX_TAG_VALUE_LEN} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(Error::invalid(field, format!("{} contains a control character", quote(value))));
    }
    Ok(())
}

/// Checks a filter value from a query string, reported as `field`: a NUL
/// can match nothing stored (every stored text refuses it) and PostgreSQL
/// refuses it as a parameter, so it is the client's mistake, said as such.
pub fn check_filter(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, format!("{} contains a NUL character, which no stored value holds", quote(value))));
    }
    Ok(())
}

macro_rules! string_newtype_impls {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::parse(value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
string_newtype_impls!(ModelName, AliasName, TagKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_refuse_what_breaks_paths_and_logs() {
        assert!(ModelName::parse("credit-risk v2.1").is_ok());
        for bad in ["", "a/b", " lead", "trail ", "bell\u{7}", &"x".repeat(129)] {
            let err = ModelName::parse(bad).unwrap_err();
            assert_eq!(err.field(), Some("name"), "{bad:?}");
        }
        let err = ModelName::parse("a/b").unwrap_err().to_string();
        assert!(err.contains("`a/b`"), "{err}");
    }

    #[test]
    fn aliases_follow_mlflow_rules() {
        assert!(AliasName::parse("champion").is_ok());
        assert!(AliasName::parse("challenger_2").is_ok());
        for bad in ["latest", "v3", "V12", "1st", "has space", ""] {
            assert!(AliasName::parse(bad).is_err(), "{bad}");
        }
        assert!(AliasName::parse("v").is_ok());
        assert!(AliasName::parse("vintage").is_ok());
    }

    /// One character of each class that UTS #39 §3.1 keeps out of identifiers.
    const INVISIBLE: [(&str, &str); 8] = [
        ("pay\u{200b}roll", "U+200B"),   // zero width space
        ("pay\u{200d}roll", "U+200D"),   // zero width joiner
        ("pay\u{202e}llor", "U+202E"),   // right-to-left override
        ("pay\u{2066}roll", "U+2066"),   // left-to-right isolate
        ("pay\u{ad}roll", "U+00AD"),     // soft hyphen
        ("\u{feff}payroll", "U+FEFF"),   // byte order mark
        ("payroll\u{e0041}", "U+E0041"), // tag latin capital letter a
        ("pay\u{3164}roll", "U+3164"),   // hangul filler, which escape_debug shows as is
    ];

    #[test]
    fn names_and_tag_keys_refuse_invisible_characters() {
        for (bad, code_point) in INVISIBLE {
            for (field, result) in [
                ("name", ModelName::parse(bad).map(String::from)),
                ("dependencies[0]", ModelName::parse_field("dependencies[0]", bad).map(String::from)),
                ("tag key", TagKey::parse(bad).map(String::from)),
            ] {
                let err = result.unwrap_err();
                assert_eq!(err.field(), Some(field), "{bad:?}");
                let message = err.to_string();
                assert!(message.contains(code_point), "{message}");
                // The message shows the value escaped, so it cannot hide or reorder text itself.
                assert!(message.is_ascii(), "{message:?}");
            }
        }
        let err = ModelName::parse("pay\u{200b}roll").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid `name`: `pay\\u{200b}roll` contains U+200B, an invisible character that can make two names look identical"
        );
    }

    #[test]
    fn names_are_stored_in_nfc() {
        let decomposed = ModelName::parse("cafe\u{301}").unwrap();
        let composed = ModelName::parse("caf\u{e9}").unwrap();
        assert_eq!(decomposed, composed);
        assert_eq!(decomposed.as_str(), "caf\u{e9}");
        assert_eq!(TagKey::parse("e\u{301}quipe").unwrap().as_str(), "\u{e9}quipe");
        // Through serde too, as dependencies and request bodies arrive that way.
        let deps: Vec<ModelName> = serde_json::from_str(r#"["cafe\u0301"]"#).unwrap();
        assert_eq!(deps, [composed]);
        // The length limit counts the normalised form: 128 decomposed é are 256
        // characters on the wire and 128 once composed.
        assert!(ModelName::parse("e\u{301}".repeat(MAX_NAME_LEN)).is_ok());
        assert!(ModelName::parse("e\u{301}".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn owner_and_team_refuse_invisible_characters() {
        let name = ModelName::parse("payroll").unwrap();
        for field in ["owner", "team"] {
            for (bad, code_point) in INVISIBLE {
                let value = Some(bad.to_string());
                let patch = match field {
                    "owner" => crate::model::ModelPatch { owner: value, ..Default::default() },
                    _ => crate::model::ModelPatch { team: value, ..Default::default() },
                };
                let err = patch.validate(&name).unwrap_err();
                assert_eq!(err.field(), Some(field), "{bad:?}");
                assert!(err.to_string().contains(code_point), "{err}");
            }
        }
        // Longer prose keeps them: a zero width joiner is part of many emoji and scripts.
        let patch = crate::model::ModelPatch { description: Some("family 👨\u{200d}👩\u{200d}👧".into()), ..Default::default() };
        assert!(patch.validate(&name).is_ok());
    }

    #[test]
    fn ordinary_names_are_still_accepted() {
        for good in ["credit risk v2", "modèle de crédit", "信用风险模型", "rocket 🚀", "Ωmega", "a.b_c-d"] {
            assert_eq!(ModelName::parse(good).unwrap().as_str(), good);
            assert_eq!(TagKey::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn the_patterns_refuse_every_invisible_bmp_character() {
        // Reads the class ranges back and compares them with the property data.
        let mut in_class = std::collections::BTreeSet::new();
        let mut rest = pattern::INVISIBLE_BMP;
        while let Some(tail) = rest.strip_prefix(r"\u") {
            let first = u32::from_str_radix(&tail[..4], 16).unwrap();
            rest = &tail[4..];
            let last = match rest.strip_prefix(r"-\u") {
                Some(tail) => {
                    rest = &tail[4..];
                    u32::from_str_radix(&tail[..4], 16).unwrap()
                }
                None => first,
            };
            in_class.extend(first..=last);
        }
        assert_eq!(rest, "");
        let refused: std::collections::BTreeSet<u32> =
            (0..=0xffff).filter(|&u| char::from_u32(u).is_some_and(is_invisible)).collect();
        let differ: Vec<String> = in_class.symmetric_difference(&refused).map(|u| format!("U+{u:04X}")).collect();
        assert!(differ.is_empty(), "the class and the property data differ at {differ:?}");
        for p in [pattern::MODEL_NAME, pattern::TAG_KEY] {
            assert_eq!(p.matches(pattern::INVISIBLE_BMP).count(), 3, "{p}");
        }
    }

    #[test]
    fn tag_keys_refuse_the_filter_separator() {
        assert!(TagKey::parse("domain").is_ok());
        let err = TagKey::parse("a=b").unwrap_err().to_string();
        assert!(err.contains("`a=b`") && err.contains("`=`"), "{err}");
    }
}
