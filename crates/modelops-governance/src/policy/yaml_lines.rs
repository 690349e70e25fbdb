//! Lines of values in a YAML policy. `serde_norway` reports where a syntax
//! error is but gives no spans for values, so the line of a condition is
//! found in the text: block mappings and sequences are followed by
//! indentation. Flow collections, aliases and other forms this does not
//! follow give the line of the deepest key it did find.

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Debug, Clone, Copy)]
struct Line<'s> {
    /// 1-based.
    number: usize,
    indent: usize,
    text: &'s str,
}

/// The line of the value at `path`, or of the deepest part of it found.
pub(super) fn line_of(source: &str, path: &[Seg]) -> Option<usize> {
    find(&significant_lines(source), path, None)
}

/// The lines that carry structure: not blank, not comments, not the
/// content of block scalars (`key: |`).
fn significant_lines(source: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut scalar_indent: Option<usize> = None;
    for (i, raw) in source.lines().enumerate() {
        let text = raw.trim_start_matches(' ');
        let indent = raw.len() - text.len();
        if text.trim().is_empty() {
            continue;
        }
        if let Some(parent) = scalar_indent {
            if indent > parent {
                continue;
            }
            scalar_indent = None;
        }
        if text.starts_with('#') || text.starts_with("---") || text.starts_with("...") {
            continue;
        }
        let value = strip_comment(text).trim_end();
        if value.ends_with(['|', '>']) || value.ends_with("|-") || value.ends_with(">-") || value.ends_with("|+") || value.ends_with(">+") {
            scalar_indent = Some(indent);
        }
        lines.push(Line { number: i + 1, indent, text });
    }
    lines
}

fn strip_comment(text: &str) -> &str {
    match text.find(" #") {
        Some(i) => &text[..i],
        None => text,
    }
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// The rest of the line after `key:`, when the line is that key.
fn after_key<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let rest = [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .find_map(|k| text.strip_prefix(k.as_str()).map(str::trim_start))?;
    let rest = rest.strip_prefix(':')?;
    (rest.is_empty() || rest.starts_with(' ')).then(|| rest.trim())
}

fn find(lines: &[Line], path: &[Seg], best: Option<usize>) -> Option<usize> {
    let (Some((seg, rest)), Some(first)) = (path.split_first(), lines.first()) else {
        return best;
    };
    let indent = first.indent;
    match *seg {
        Seg::Key(key) => {
            let Some((i, value)) =
                lines.iter().enumerate().find_map(|(i, l)| if l.indent == indent { after_key(l.text, key).map(|v| (i, v)) } else { None })
            else {
                return best;
            };
            let found = Some(lines[i].number);
            let value_on_next_lines = strip_comment(value).trim().is_empty();
            let end = lines[i + 1..]
                .iter()
                .position(|l| !(l.indent > indent || value_on_next_lines && l.indent == indent && is_item(l.text)))
                .map_or(lines.len(), |p| i + 1 + p);
            find(&lines[i + 1..end], rest, found)
        }
        Seg::Index(n) => {
            let Some(i) = lines.iter().enumerate().filter(|(_, l)| l.indent == indent && is_item(l.text)).map(|(i, _)| i).nth(n) else {
                return best;
            };
            let item = lines[i];
            let found = Some(item.number);
            let end = lines[i + 1..].iter().position(|l| l.indent <= indent).map_or(lines.len(), |p| i + 1 + p);
            // `- name: x` opens the item's mapping on the item's own line.
            let content = item.text[1..].trim_start_matches(' ');
            let mut region = Vec::with_capacity(end - i);
            if !content.is_empty() {
                region.push(Line { number: item.number, indent: item.indent + (item.text.len() - content.len()), text: content });
            }
            region.extend_from_slice(&lines[i + 1..end]);
            find(&region, rest, found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "\
# a comment
review_cadence_days:
  low: 730
tiers:
  medium:
    approved:
    - name: first
      when: >
        name: not a key
      message: m
    - name: second   # trailing
      message: m
      when: 'x'
  high:
    approved:
      -
        name: third
        when: y
    production: *alias
";

    fn line(path: &[Seg]) -> Option<usize> {
        line_of(SOURCE, path)
    }

    #[test]
    fn finds_keys_and_items_by_indentation() {
        use Seg::*;
        assert_eq!(line(&[Key("review_cadence_days"), Key("low")]), Some(3));
        assert_eq!(line(&[Key("tiers"), Key("medium"), Key("approved"), Index(0), Key("when")]), Some(8));
        assert_eq!(line(&[Key("tiers"), Key("medium"), Key("approved"), Index(1), Key("name")]), Some(11));
        assert_eq!(line(&[Key("tiers"), Key("medium"), Key("approved"), Index(1), Key("when")]), Some(13));
        assert_eq!(line(&[Key("tiers"), Key("high"), Key("approved"), Index(0), Key("when")]), Some(18));
        // What it cannot follow gives the deepest line found.
        assert_eq!(line(&[Key("tiers"), Key("high"), Key("production"), Index(0), Key("when")]), Some(19));
        assert_eq!(line(&[Key("tiers"), Key("medium"), Key("approved"), Index(5), Key("when")]), Some(6));
        assert_eq!(line(&[Key("nothing")]), None);
    }
}
