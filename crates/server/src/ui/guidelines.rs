//! A project's guidelines — Markdown in the policy's `workbench.guidelines` — as the HTML
//! the workbench shows (key `g`). Written by an admin, read by every reviewer, so treated
//! like item content: raw HTML in the Markdown is shown as text, a link keeps only an
//! `http`, `https` or `mailto` destination (any other is shown as its text), and an image
//! shows as its description (nothing loads). pulldown-cmark escapes all text it writes.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// The guidelines as safe HTML (empty for none).
pub fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    // For each open link, whether it was kept (so that its end is kept or dropped too).
    let mut links: Vec<bool> = Vec::new();
    let events = parser.filter_map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let keep = safe_url(&dest_url);
            links.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => links.pop().unwrap_or(false).then_some(Event::End(TagEnd::Link)),
        // An image's description is written as its text; the image itself is not.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: &CowStr<'_>) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_is_rendered() {
        let html = render("# Rules\n\n* **threats** are `hate`\n* see [the policy](https://example.com/p)\n");
        assert!(html.contains("<h1>Rules</h1>"), "{html}");
        assert!(html.contains("<strong>threats</strong>"), "{html}");
        assert!(html.contains("<code>hate</code>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.com/p">the policy</a>"#),
            "{html}"
        );
    }

    #[test]
    fn raw_html_scripts_and_unsafe_links_stay_text() {
        let html = render(
            "<script>alert(1)</script>\n\nhi <img src=x onerror=alert(2)> [x](javascript:alert(3)) ![cat](https://evil.example/c.png)",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"), "{html}");
        assert!(html.contains(" x ") && html.contains("cat"), "{html}");
    }
}
