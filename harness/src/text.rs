//! Reading bodies the way a person would: the visible text of an HTML error page, and the
//! part of it that says what is wrong rather than its first characters.

/// The visible text of `body`: for HTML, tags, scripts and styles removed and whitespace
/// collapsed; other bodies with whitespace collapsed.
#[must_use]
pub fn visible_text(body: &str) -> String {
    let looks_html = body.trim_start().starts_with('<') && body.contains('>');
    let mut out = String::with_capacity(body.len());
    if looks_html {
        let lower = body.to_ascii_lowercase();
        let mut i = 0;
        while i < body.len() {
            if body[i..].starts_with('<') {
                let skip_block = ["<script", "<style"].iter().find(|t| lower[i..].starts_with(**t)).map(|t| format!("</{}", &t[1..]));
                let end = match skip_block {
                    Some(close) => lower[i..].find(&close).and_then(|j| lower[i + j..].find('>').map(|k| i + j + k + 1)),
                    None => body[i..].find('>').map(|j| i + j + 1),
                };
                out.push(' ');
                i = end.unwrap_or(body.len());
            } else {
                let next = body[i..].find('<').map_or(body.len(), |j| i + j);
                out.push_str(&body[i..next]);
                i = next;
            }
        }
    } else {
        out.push_str(body);
    }
    let out = out.replace("&quot;", "\"").replace("&#x27;", "'").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// About `max` characters of `text` around the first of `markers` found (in order of
/// preference: the most telling first), starting a third of `max` before it, else `text`'s
/// start; `…` marks a cut.
#[must_use]
pub fn excerpt_around(text: &str, markers: &[&str], max: usize) -> String {
    let at = markers.iter().find_map(|m| text.find(m)).unwrap_or(0);
    let start = (0..=at.saturating_sub(max / 3)).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    let end = (start + max).min(text.len());
    let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&text[start..end]);
    if end < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_django_disallowed_host_page_is_quoted_where_it_says_why() {
        let page = format!(
            "<!DOCTYPE html><html><head><style>body {{ color: red }}</style><title>DisallowedHost</title></head><body>{}<h1>DisallowedHost at /health</h1><pre>Invalid HTTP_HOST header: &#x27;127.0.0.1:8000&#x27;. You may need to add &#x27;127.0.0.1&#x27; to ALLOWED_HOSTS.</pre></body></html>",
            "<div>padding</div>".repeat(100)
        );
        let text = visible_text(&page);
        assert!(!text.contains("color: red"), "{text}");
        let excerpt = excerpt_around(&text, &["ALLOWED_HOSTS"], 120);
        assert!(excerpt.contains("add '127.0.0.1' to ALLOWED_HOSTS"), "{excerpt}");
        assert!(excerpt.chars().count() <= 122, "{excerpt}");
    }

    #[test]
    fn plain_bodies_are_kept_and_cut_at_char_boundaries() {
        assert_eq!(visible_text("{\"detail\":  \"no\"}"), "{\"detail\": \"no\"}");
        let long = "é".repeat(500);
        let cut = excerpt_around(&long, &["x"], 10);
        assert!(cut.ends_with('…'));
    }
}
