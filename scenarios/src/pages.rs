//! What a response body says: web frameworks' own error pages (Django's CSRF failure,
//! `DisallowedHost`, 404 pages of Django, Starlette, Flask and Express, debug tracebacks)
//! recognised and quoted at the relevant sentence, so a diagnosis names the real cause
//! instead of the scenario's usual suspects; and a bounded excerpt of any other body.

/// A framework page recognised in a response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognised {
    /// What the page is, e.g. `Django's CSRF failure page`.
    pub what: &'static str,
    /// The sentence that says why, quoted from the body (tags stripped).
    pub quote: String,
    /// The fault class this points to instead of the scenario's.
    pub class: &'static str,
    /// The likely fix.
    pub fix: &'static str,
}

/// The class of a recognised crash page (a traceback): it says where the backend failed,
/// not which fault, so diagnoses keep the scenario's own class.
pub const CRASH_CLASS: &str = "backend-crash";

/// The longest quote a recogniser returns.
const QUOTE_MAX: usize = 300;

/// `text` without HTML tags, `<script>`/`<style>` contents and runs of whitespace, with the
/// few entities frameworks write decoded.
#[must_use]
pub fn visible_text(body: &str) -> String {
    let mut out = String::with_capacity(body.len().min(1 << 16));
    let lower = body.to_ascii_lowercase();
    let mut i = 0;
    let bytes = body.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            // Skip the whole element for scripts and styles, else just the tag.
            let skip_to = ["script", "style"].iter().find_map(|tag| {
                lower[i + 1..].starts_with(tag).then(|| lower[i..].find(&format!("</{tag}>")).map_or(bytes.len(), |end| i + end + tag.len() + 3))
            });
            let end = skip_to.unwrap_or_else(|| lower[i..].find('>').map_or(bytes.len(), |end| i + end + 1));
            out.push(' ');
            i = end;
            continue;
        }
        let next = (i + 1..=bytes.len()).find(|j| body.is_char_boundary(*j)).unwrap_or(bytes.len());
        out.push_str(&body[i..next]);
        i = next;
    }
    let decoded = out.replace("&#x27;", "'").replace("&#39;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters of `text` from byte `start` (a char boundary), with `…` where cut
/// at the end.
fn quote_from(text: &str, start: usize, max: usize) -> String {
    let rest = &text[start..];
    let mut quote: String = rest.chars().take(max).collect();
    if rest.chars().count() > max {
        quote.push('…');
    }
    quote
}

/// The text starting at the first of `needles` found (case-sensitive), up to `max` characters.
fn quote_at(text: &str, needles: &[&str], max: usize) -> Option<String> {
    needles.iter().find_map(|n| text.find(n)).map(|at| quote_from(text, at, max))
}

/// Recognises a framework's error page in `body` (any status).
#[must_use]
pub fn recognise(status: u16, body: &str) -> Option<Recognised> {
    let text = visible_text(body);
    if text.contains("CSRF verification failed") {
        let quote = match (text.find("CSRF verification failed"), text.find("Reason given for failure:")) {
            (Some(_), Some(reason)) => format!("CSRF verification failed. {}", quote_from(&text, reason, 160)),
            (Some(at), None) => quote_from(&text, at, QUOTE_MAX).split(" More information is available").next().unwrap_or_default().trim().to_string(),
            _ => String::new(),
        };
        return Some(Recognised {
            what: "Django's CSRF failure page",
            quote,
            class: "framework-csrf",
            fix: "a Bearer-token API needs no CSRF protection: exempt these views (@csrf_exempt, or DRF's authentication classes, which only enforce CSRF for session auth)",
        });
    }
    if text.contains("DisallowedHost") || text.contains("Invalid HTTP_HOST header") {
        return Some(Recognised {
            what: "Django's DisallowedHost error",
            quote: quote_at(&text, &["Invalid HTTP_HOST header", "DisallowedHost"], QUOTE_MAX).unwrap_or_default(),
            class: "allowed-hosts",
            fix: "add the host the harness calls (127.0.0.1 / localhost, or the container's name) to ALLOWED_HOSTS, e.g. via the profile's [env]",
        });
    }
    if status == 400 && text.contains("Bad Request (400)") && text.len() < 60 {
        return Some(Recognised {
            what: "Django's bare 400 page (DEBUG off)",
            quote: text,
            class: "allowed-hosts",
            fix: "most often ALLOWED_HOSTS does not list the host the harness calls (127.0.0.1 / localhost): add it, or start once with DEBUG=True to see the reason",
        });
    }
    if text.contains("doesn't end in a slash") || text.contains("APPEND_SLASH") {
        return Some(Recognised {
            what: "Django's APPEND_SLASH error",
            quote: quote_at(&text, &["You called this URL via", "APPEND_SLASH"], QUOTE_MAX).unwrap_or_default(),
            class: "route-not-found",
            fix: "the route needs its trailing slash: write the path exactly as the backend's URLconf has it in the profile's [[endpoints]] / webhook_path",
        });
    }
    if status == 404 {
        let found = if text.contains("Using the URLconf") || text.contains("Page not found") {
            Some(("Django's 404 page", quote_at(&text, &["The current path,", "Page not found"], QUOTE_MAX)))
        } else if text.contains("The requested resource was not found on this server") {
            Some(("Django's 404 page", Some(text.clone())))
        } else if text.contains("The requested URL was not found on the server") {
            Some(("Flask/Werkzeug's 404 page", quote_at(&text, &["The requested URL was not found"], QUOTE_MAX)))
        } else if body.trim() == r#"{"detail":"Not Found"}"# {
            Some(("Starlette/FastAPI's 404 for an unknown route", Some(body.trim().to_string())))
        } else if text.starts_with("Cannot ") && text.len() < 200 {
            Some(("Express's 404 page", Some(text.clone())))
        } else {
            None
        };
        if let Some((what, quote)) = found {
            return Some(Recognised {
                what,
                quote: quote.unwrap_or_default(),
                class: "route-not-found",
                fix: "the route does not exist as called: check the profile's [[endpoints]] paths (and a trailing slash) against the backend's routes",
            });
        }
    }
    if status == 405 && (body.trim() == r#"{"detail":"Method Not Allowed"}"# || text.contains("The method is not allowed for the requested URL")) {
        return Some(Recognised {
            what: "the framework's 405 page",
            quote: quote_at(&text, &["The method is not allowed", "Method Not Allowed"], QUOTE_MAX).unwrap_or_default(),
            class: "route-not-found",
            fix: "the route does not accept this method: check the profile's [[endpoints]] method",
        });
    }
    if text.contains("Exception Value:") {
        let kind = quote_at(&text, &["Exception Type:"], 120).unwrap_or_default();
        let value = quote_at(&text, &["Exception Value:"], 200).unwrap_or_default();
        let cut = |q: &str, stop: &str| q.split(stop).next().unwrap_or(q).trim().to_string();
        return Some(Recognised {
            what: "Django's debug error page",
            quote: format!("{} {}", cut(&kind, "Exception Value:"), cut(&value, "Exception Location:")),
            class: CRASH_CLASS,
            fix: "the backend raised an exception: see the quoted exception and the backend log",
        });
    }
    if let Some(at) = text.rfind("Traceback (most recent call last)") {
        // The exception is the traceback's last line: quote its tail.
        let tail = &text[at..];
        let start = tail.char_indices().rev().nth(QUOTE_MAX - 1).map_or(0, |(i, _)| i);
        return Some(Recognised {
            what: "a Python traceback",
            quote: quote_from(tail, start, QUOTE_MAX),
            class: CRASH_CLASS,
            fix: "the backend raised an exception: see the quoted traceback and the backend log",
        });
    }
    None
}

/// The part of `body` a reader needs: the recognised page's quote, else the visible text
/// (tags stripped for HTML), at most `max` characters.
#[must_use]
pub fn excerpt(status: u16, body: &str, max: usize) -> String {
    if let Some(r) = recognise(status, body) {
        return format!("[{}] {}", r.what, r.quote);
    }
    let looks_html = body.trim_start().starts_with('<');
    let text = if looks_html { visible_text(body) } else { body.split_whitespace().collect::<Vec<_>>().join(" ") };
    quote_from(&text, 0, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Django 5's CSRF failure page (DEBUG off), shape kept: the reason sits far past the
    /// first few hundred characters, behind a `<style>` block.
    fn django_csrf_page() -> String {
        let style = "html * { padding:0; margin:0; } body * { padding:10px 20px; } ".repeat(12);
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\">\n  <meta name=\"robots\" content=\"NONE,NOARCHIVE\">\n  <title>403 Forbidden</title>\n  <style>{style}</style>\n</head>\n<body>\n<div id=\"summary\">\n  <h1>Forbidden <span>(403)</span></h1>\n  <p>CSRF verification failed. Request aborted.</p>\n\n\n</div>\n\n<div id=\"explanation\">\n  <p><small>More information is available with DEBUG=True.</small></p>\n</div>\n\n</body>\n</html>\n"
        )
    }

    #[test]
    fn django_csrf_page_is_recognised_past_the_first_characters() {
        let page = django_csrf_page();
        assert!(page.find("CSRF verification failed").unwrap_or(0) > 400, "the test page must put the reason late");
        let r = recognise(403, &page).expect("recognised");
        assert_eq!(r.class, "framework-csrf");
        assert!(r.quote.starts_with("CSRF verification failed"), "{}", r.quote);
        assert!(excerpt(403, &page, 120).contains("CSRF verification failed"));
    }

    #[test]
    fn django_csrf_reason_is_quoted_when_debug_shows_it() {
        let page = "<h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request aborted.</p><p>Reason given for failure:</p><pre>    Origin checking failed - http://localhost:3000 does not match any trusted origins.\n    </pre>";
        let r = recognise(403, page).expect("recognised");
        assert!(r.quote.contains("Origin checking failed"), "{}", r.quote);
    }

    #[test]
    fn disallowed_host_is_recognised() {
        let page = "<title>DisallowedHost at /health</title> … <pre class=\"exception_value\">Invalid HTTP_HOST header: &#x27;127.0.0.1:41234&#x27;. You may need to add &#x27;127.0.0.1&#x27; to ALLOWED_HOSTS.</pre>";
        let r = recognise(400, page).expect("recognised");
        assert_eq!(r.class, "allowed-hosts");
        assert!(r.quote.contains("add '127.0.0.1' to ALLOWED_HOSTS"), "{}", r.quote);
        let bare = recognise(400, "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n<body>\n  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n");
        assert_eq!(bare.map(|r| r.class), Some("allowed-hosts"), "Django's bare 400 page");
        assert!(recognise(400, r#"{"detail":"Bad Request (400) because the body is missing the field 'name'"}"#).is_none());
    }

    #[test]
    fn not_found_pages_of_each_framework_are_recognised() {
        for (page, what) in [
            (r#"{"detail":"Not Found"}"#, "Starlette"),
            ("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n", "Flask"),
            ("<h1>Not Found</h1><p>The requested resource was not found on this server.</p>", "Django"),
            ("<pre>Cannot GET /api/me</pre>", "Express"),
        ] {
            let r = recognise(404, page).unwrap_or_else(|| panic!("{what} not recognised"));
            assert_eq!(r.class, "route-not-found", "{what}");
            assert!(r.what.contains(what), "{what}: {}", r.what);
        }
        assert!(recognise(404, r#"{"detail":"user not found"}"#).is_none(), "an application 404 is not a routing 404");
    }

    #[test]
    fn a_traceback_is_quoted_at_its_last_line() {
        let body = format!("Traceback (most recent call last):\n{}KeyError: 'email_addresses'", "  File \"x.py\", line 1, in f\n".repeat(40));
        let r = recognise(500, &body).expect("recognised");
        assert!(r.quote.ends_with("KeyError: 'email_addresses'"), "{}", r.quote);
    }

    #[test]
    fn a_plain_json_error_is_not_recognised_and_its_excerpt_is_the_body() {
        let body = r#"{"detail":"Token has expired","reason":"token-expired"}"#;
        assert!(recognise(401, body).is_none());
        assert_eq!(excerpt(401, body, 400), body);
    }

    #[test]
    fn visible_text_drops_scripts_styles_and_tags_and_keeps_multibyte_text() {
        assert_eq!(visible_text("<style>p{}</style><p>Jeton <b>expiré</b></p><script>x()</script>"), "Jeton expiré");
    }
}
