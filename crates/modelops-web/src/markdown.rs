// Model cards are Markdown written by model developers: rendered to HTML
// with pulldown-cmark, with any raw HTML in them shown as text (a card
// must not be able to run script in a validator's browser) and links
// limited to http(s), mailto and this site.

use maud::{Markup, PreEscaped};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

pub fn render(markdown: &str) -> Markup {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        // The card sits under the page's own headings (h1, h2).
        Event::Start(Tag::Heading { level, id, classes, attrs }) => Event::Start(Tag::Heading { level: demoted(level), id, classes, attrs }),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(demoted(level))),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) if !safe_url(&dest_url) => {
            Event::Start(Tag::Link { link_type, dest_url: "#".into(), title, id })
        }
        // An image is fetched by every reader's browser: only this site's.
        Event::Start(Tag::Image { link_type, dest_url, title, id }) if !same_site(&dest_url) => {
            Event::Start(Tag::Image { link_type, dest_url: "#".into(), title, id })
        }
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    PreEscaped(html)
}

fn demoted(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

fn same_site(url: &str) -> bool {
    let url = url.trim();
    url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\")
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:") || lower.starts_with('/') || lower.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_links_are_text() {
        let out = render("# Card\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) <b>bold</b>").into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(!out.contains("<b>"), "{out}");
        assert!(out.contains("<h3>Card</h3>"), "{out}");
        let image = render("![x](https://tracker.example/p.gif) ![y](/ui/static/icon.svg)").into_string();
        assert!(!image.contains("tracker.example"), "{image}");
        assert!(image.contains("/ui/static/icon.svg"), "{image}");
    }
}
