//! The document model the reports are built in, and its two renderings:
//! GitHub Markdown and one self-contained HTML page. Every string from the
//! registry enters as a [`Span`] and is escaped here, for the format and the
//! place it is written in; nothing else writes markup.

use std::collections::BTreeSet;
use std::fmt::Write;

/// A piece of inline text.
pub(super) enum Span {
    Text(String),
    /// Identifiers, hashes, times: shown as code.
    Code(String),
    Strong(String),
    /// An item the registry could not fill.
    Missing,
    Break,
}

/// Inline text: a run of spans.
#[derive(Default)]
pub(super) struct Text(Vec<Span>);

impl Text {
    pub fn new() -> Self {
        Text(Vec::new())
    }

    pub fn plain(s: impl Into<String>) -> Self {
        Text::new().text(s)
    }

    pub fn code(s: impl Into<String>) -> Self {
        Text::new().and_code(s)
    }

    pub fn strong(s: impl Into<String>) -> Self {
        Text::new().and_strong(s)
    }

    pub fn missing() -> Self {
        Text(vec![Span::Missing])
    }

    /// `s`, or a dash when it is blank.
    pub fn value(s: &str) -> Self {
        if s.trim().is_empty() {
            Text::dash()
        } else {
            Text::plain(s)
        }
    }

    /// `s` as code, or a dash when it is blank.
    pub fn code_value(s: &str) -> Self {
        if s.trim().is_empty() {
            Text::dash()
        } else {
            Text::code(s)
        }
    }

    pub fn dash() -> Self {
        Text::plain("–")
    }

    /// The items joined by `sep`, each as code; a dash when there are none.
    pub fn codes<I, S>(items: I, sep: &str) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut t = Text::new();
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                t = t.text(sep);
            }
            t = t.and_code(item);
        }
        if t.0.is_empty() {
            Text::dash()
        } else {
            t
        }
    }

    /// The items one per line; a dash when there are none.
    pub fn lines<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut t = Text::new();
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                t = t.br();
            }
            t = t.text(item);
        }
        if t.0.is_empty() {
            Text::dash()
        } else {
            t
        }
    }

    pub fn text(mut self, s: impl Into<String>) -> Self {
        self.0.push(Span::Text(s.into()));
        self
    }

    pub fn and_code(mut self, s: impl Into<String>) -> Self {
        self.0.push(Span::Code(s.into()));
        self
    }

    pub fn and_strong(mut self, s: impl Into<String>) -> Self {
        self.0.push(Span::Strong(s.into()));
        self
    }

    pub fn br(mut self) -> Self {
        self.0.push(Span::Break);
        self
    }

    /// Appends another text's spans.
    pub fn then(mut self, other: Text) -> Self {
        self.0.extend(other.0);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(super) struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Text>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<Text>) {
        self.rows.push(cells);
    }
}

pub(super) enum Block {
    /// Levels 2 to 4; a level-2 heading starts a section of the HTML page.
    Heading(u8, String),
    Para(Text),
    /// Label → value pairs.
    Facts(Vec<(String, Text)>),
    Table(Table),
    List(Vec<Text>),
    /// Text someone wrote (a model card's Markdown), shown as written, quoted.
    Verbatim(String),
    /// A callout.
    Note(Text),
}

pub(super) struct Doc {
    /// What kind of report, shown above the title in HTML.
    pub kind: &'static str,
    pub title: String,
    pub meta: Vec<(String, Text)>,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(kind: &'static str, title: impl Into<String>) -> Self {
        Doc { kind, title: title.into(), meta: Vec::new(), blocks: Vec::new() }
    }

    pub fn meta(&mut self, label: &str, value: Text) {
        self.meta.push((label.to_owned(), value));
    }

    pub fn h2(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Heading(2, s.into()));
    }

    pub fn h3(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Heading(3, s.into()));
    }

    pub fn h4(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Heading(4, s.into()));
    }

    pub fn para(&mut self, t: Text) {
        self.blocks.push(Block::Para(t));
    }

    pub fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }

    /// The table, or `empty` as a paragraph when it has no rows.
    pub fn table_or(&mut self, table: Table, empty: &str) {
        if table.rows.is_empty() {
            self.para(Text::plain(empty));
        } else {
            self.blocks.push(Block::Table(table));
        }
    }

    // -------------------------------------------------------- Markdown

    pub fn markdown(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = writeln!(out, "# {}\n", md_text(&self.title));
        if !self.meta.is_empty() {
            md_facts(&mut out, &self.meta);
            out.push('\n');
        }
        for block in &self.blocks {
            md_block(&mut out, block);
            out.push('\n');
        }
        out
    }

    // -------------------------------------------------------- HTML

    pub fn html(&self) -> String {
        let mut s = String::with_capacity(32 * 1024);
        s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        // Nothing may be fetched or run: the report is one file that works offline.
        s.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
        let _ = write!(s, "<title>{}</title><style>{STYLE}</style></head><body>", escape(&self.title));
        let _ = write!(s, "<header><div class=\"brand\">modelops · {}</div><h1>{}</h1>", escape(self.kind), escape(&self.title));
        if !self.meta.is_empty() {
            s.push_str("<div class=\"meta\">");
            for (i, (label, value)) in self.meta.iter().enumerate() {
                if i > 0 {
                    s.push_str(" · ");
                }
                let _ = write!(s, "{}: {}", escape(label), html_inline(value));
            }
            s.push_str("</div>");
        }
        s.push_str("</header><main>");

        let mut ids = BTreeSet::new();
        let sections: Vec<(String, &str)> = self
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Heading(2, text) => Some((unique_id(&mut ids, text), text.as_str())),
                _ => None,
            })
            .collect();
        if sections.len() > 1 {
            s.push_str("<nav>");
            for (id, text) in &sections {
                let _ = write!(s, "<a href=\"#{id}\">{}</a>", escape(text));
            }
            s.push_str("</nav>");
        }

        let mut next_section = sections.iter();
        let mut open = false;
        for block in &self.blocks {
            if let Block::Heading(2, text) = block {
                if open {
                    s.push_str("</section>");
                }
                let id = next_section.next().map_or("", |(id, _)| id.as_str());
                let _ = write!(s, "<section id=\"{id}\"><h2>{}</h2>", escape(text));
                open = true;
            } else {
                html_block(&mut s, block);
            }
        }
        if open {
            s.push_str("</section>");
        }
        let _ = writeln!(
            s,
            "</main><footer>Generated by modelops {}. Self-contained: no scripts, no network.</footer></body></html>",
            env!("CARGO_PKG_VERSION")
        );
        s
    }
}

// ------------------------------------------------------------ Markdown

fn md_block(out: &mut String, block: &Block) {
    match block {
        Block::Heading(level, text) => {
            let _ = writeln!(out, "{} {}", "#".repeat(usize::from((*level).clamp(2, 6))), md_text(text));
        }
        Block::Para(t) => {
            let _ = writeln!(out, "{}", md_line_start(md_inline(t, false)));
        }
        Block::Facts(facts) => md_facts(out, facts),
        Block::Table(table) => md_table(out, table),
        Block::List(items) => {
            for item in items {
                let _ = writeln!(out, "- {}", md_line_start(md_inline(item, false)));
            }
        }
        Block::Verbatim(text) => {
            for line in text.lines() {
                let line = line.replace('<', "&lt;");
                if line.trim().is_empty() {
                    out.push_str(">\n");
                } else {
                    let _ = writeln!(out, "> {line}");
                }
            }
        }
        Block::Note(t) => {
            let _ = writeln!(out, "> {}", md_line_start(md_inline(t, false)));
        }
    }
}

fn md_facts(out: &mut String, facts: &[(String, Text)]) {
    for (label, value) in facts {
        let _ = writeln!(out, "- **{}:** {}", md_text(label), md_inline(value, false));
    }
}

fn md_table(out: &mut String, table: &Table) {
    let n = table.header.len();
    let _ = writeln!(out, "| {} |", table.header.iter().map(|h| md_cell(&md_text(h))).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(out, "|{}|", vec!["---"; n].join("|"));
    for row in &table.rows {
        let cells: Vec<String> = (0..n).map(|i| row.get(i).map_or_else(String::new, |c| md_cell(&md_inline(c, true)))).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// An empty cell keeps the row's shape in every renderer.
fn md_cell(s: &str) -> String {
    if s.is_empty() {
        " ".to_owned()
    } else {
        s.to_owned()
    }
}

fn md_inline(t: &Text, in_table: bool) -> String {
    let mut out = String::new();
    for span in &t.0 {
        match span {
            Span::Text(s) => out.push_str(&md_text(s)),
            Span::Code(s) => out.push_str(&md_code(s, in_table)),
            Span::Strong(s) if s.is_empty() => {}
            Span::Strong(s) => {
                let _ = write!(out, "**{}**", md_text(s));
            }
            Span::Missing => out.push_str("**Missing**"),
            Span::Break => out.push_str("<br>"),
        }
    }
    out
}

/// Text for Markdown: line breaks become `<br>` (a table row or list item
/// stays one line), `|` is escaped so it never splits a cell, `<` so no
/// HTML passes through, and the characters that would start emphasis, a
/// code span or a link are escaped so the text reads as written.
pub(super) fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            '<' => out.push_str("&lt;"),
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A code span: a fence longer than any run of backticks inside, line
/// breaks as spaces, and in a table `|` escaped (GitHub reads `\|` as a
/// pipe there, even inside code).
fn md_code(s: &str, in_table: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut body: String = s.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    if in_table {
        body = body.replace('|', "\\|");
    }
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if body.starts_with('`') || body.ends_with('`') {
        format!("{fence} {body} {fence}")
    } else {
        format!("{fence}{body}{fence}")
    }
}

/// Text that starts a line must not start a block: a heading, a quote, a
/// list item or an indented code block.
fn md_line_start(s: String) -> String {
    let s = s.trim_start().to_owned();
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    match s.chars().next() {
        Some('#' | '>' | '-' | '+' | '=' | '~') => format!("\\{s}"),
        Some(_) if digits > 0 && matches!(s[digits..].chars().next(), Some('.' | ')')) => {
            format!("{}\\{}", &s[..digits], &s[digits..])
        }
        _ => s,
    }
}

// ------------------------------------------------------------ HTML

/// Escape text for HTML element content and quoted attribute values.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_inline(t: &Text) -> String {
    let mut out = String::new();
    for span in &t.0 {
        match span {
            Span::Text(s) => out.push_str(&escape(s)),
            Span::Code(s) => {
                let _ = write!(out, "<code>{}</code>", escape(s));
            }
            Span::Strong(s) => {
                let _ = write!(out, "<strong>{}</strong>", escape(s));
            }
            Span::Missing => out.push_str("<strong class=\"missing\">Missing</strong>"),
            Span::Break => out.push_str("<br>"),
        }
    }
    out
}

fn html_block(s: &mut String, block: &Block) {
    match block {
        Block::Heading(level, text) => {
            let level = (*level).clamp(2, 6);
            let _ = write!(s, "<h{level}>{}</h{level}>", escape(text));
        }
        Block::Para(t) => {
            let _ = write!(s, "<p>{}</p>", html_inline(t));
        }
        Block::Facts(facts) => {
            s.push_str("<table class=\"facts\"><tbody>");
            for (label, value) in facts {
                let _ = write!(s, "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", escape(label), html_inline(value));
            }
            s.push_str("</tbody></table>");
        }
        Block::Table(table) => {
            s.push_str("<div class=\"scroll\"><table><thead><tr>");
            for h in &table.header {
                let _ = write!(s, "<th>{}</th>", escape(h));
            }
            s.push_str("</tr></thead><tbody>");
            for row in &table.rows {
                s.push_str("<tr>");
                for i in 0..table.header.len() {
                    let _ = write!(s, "<td>{}</td>", row.get(i).map(html_inline).unwrap_or_default());
                }
                s.push_str("</tr>");
            }
            s.push_str("</tbody></table></div>");
        }
        Block::List(items) => {
            s.push_str("<ul>");
            for item in items {
                let _ = write!(s, "<li>{}</li>", html_inline(item));
            }
            s.push_str("</ul>");
        }
        Block::Verbatim(text) => {
            let _ = write!(s, "<pre class=\"verbatim\">{}</pre>", escape(text));
        }
        Block::Note(t) => {
            let _ = write!(s, "<div class=\"note\">{}</div>", html_inline(t));
        }
    }
}

/// An element id from a heading: lowercase letters, digits and `-`, made
/// unique within the page.
fn unique_id(seen: &mut BTreeSet<String>, text: &str) -> String {
    let mut id = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
    }
    let base = id.trim_end_matches('-').to_owned();
    let base = if base.is_empty() { "section".to_owned() } else { base };
    let mut candidate = base.clone();
    let mut n = 2;
    while !seen.insert(candidate.clone()) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate
}

const STYLE: &str = r#"
:root{--ink:#1f2630;--muted:#5d6875;--line:#e3e7ec;--bg:#f6f7f9;--card:#fff;--bad:#b9382f;--bad-bg:#fbe9e7;--accent:#33527f}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1f2b3d;color:#fff;padding:28px 40px 24px}
header .brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;opacity:.7}
header h1{margin:4px 0 6px;font-size:26px;font-weight:600;overflow-wrap:anywhere}
header .meta{font-size:13px;opacity:.85}
header code{background:rgba(255,255,255,.12);color:#fff}
main{max-width:1280px;margin:0 auto;padding:24px 40px 48px}
nav{margin:0 0 18px;font-size:13px}
nav a{color:var(--accent);margin-right:16px;text-decoration:none}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:22px 24px;margin-bottom:24px}
section h2{margin:0 0 12px;font-size:19px}
h3{font-size:16px;margin:22px 0 8px}
h4{font-size:14px;margin:18px 0 6px;color:var(--muted)}
p,li,td{white-space:pre-wrap;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em;background:#fafbfc;white-space:nowrap}
table.facts th{width:220px;text-transform:none;letter-spacing:0;font-size:13px;white-space:normal}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef0f3;padding:1px 4px;border-radius:4px;word-break:break-all}
pre.verbatim{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafbfc;border-left:3px solid var(--line);padding:10px 14px;font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.missing{color:var(--bad);background:var(--bad-bg);padding:0 6px;border-radius:4px}
.note{background:#fff8e6;border:1px solid #f1dfae;border-radius:8px;padding:10px 12px;font-size:13px;color:#6b5518;margin:0 0 24px;white-space:pre-wrap}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px 0 24px}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_break_a_table_or_inject_html() {
        assert_eq!(md_text("a|b\nc\r\nd<e>"), "a\\|b<br>c<br>d&lt;e>");
        assert_eq!(md_text(r"x\|y *z* [l](u) `c`"), r"x\\\|y \*z\* \[l\](u) \`c\`");
        assert_eq!(md_code("a|b", true), "`a\\|b`");
        assert_eq!(md_code("a|b", false), "`a|b`");
        assert_eq!(md_code("x`y", false), "``x`y``");
        assert_eq!(md_code("`y", false), "`` `y ``");
        assert_eq!(md_line_start("# not a heading".into()), "\\# not a heading");
        assert_eq!(md_line_start("12. not a list".into()), "12\\. not a list");
        assert_eq!(md_line_start("12 apples".into()), "12 apples");
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(escape(r#"<script>"a"&'b'</script>"#), "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;");
    }

    #[test]
    fn section_ids_are_unique_and_plain() {
        let mut seen = BTreeSet::new();
        assert_eq!(unique_id(&mut seen, "How to verify"), "how-to-verify");
        assert_eq!(unique_id(&mut seen, "How to verify!"), "how-to-verify-2");
        assert_eq!(unique_id(&mut seen, "\"><script>"), "script");
        assert_eq!(unique_id(&mut seen, "—"), "section");
    }
}
