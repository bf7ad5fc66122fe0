//! HAR 1.2, as browsers export it (DevTools → Network → "Save all as HAR"): Chrome, Firefox
//! and Safari write the same `log.entries[]` with small differences (Firefox's local time
//! offsets and `bodySize: -1`, Safari's missing `cookies`, Chrome's `_`-prefixed extras), so
//! every field the replay does not need is optional and unknown fields are ignored.
//!
//! Each entry is parsed on its own so a malformed one is named by its index.

use std::io::Read as _;

use base64::Engine as _;
use serde::Deserialize;

use super::ReplayError;

/// A parsed HAR: the browser that wrote it and its entries in file order.
#[derive(Clone, Debug)]
pub struct Har {
    /// `log.browser.name` (or `log.creator.name`): "Chrome", "Firefox", "WebKit"…
    pub browser: String,
    /// The entries, in file order (browsers write them in request order).
    pub entries: Vec<Entry>,
}

/// One request and its answer.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Index in `log.entries` (errors and reports name it).
    pub index: usize,
    /// When the browser started the request, ms since the Unix epoch, by the browser's clock.
    pub started_ms: i64,
    /// The request.
    pub request: Request,
    /// The answer (`status` 0: none, e.g. a request the browser blocked).
    pub response: Response,
}

/// What the browser sent.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// The full URL.
    pub url: url::Url,
    /// Headers as sent (names lowercased).
    pub headers: Vec<(String, String)>,
    /// Cookies as sent (`request.cookies`, else parsed from the `Cookie` header).
    pub cookies: Vec<(String, String)>,
}

/// What came back.
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status; 0 when the browser recorded none.
    pub status: u16,
    /// Headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// The body, decoded (base64 and gzip undone) when it is text.
    pub body: Option<String>,
}

impl Request {
    /// A header's value (`name` lowercase).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// A cookie's value.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Response {
    /// A header's value (`name` lowercase).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[derive(Deserialize)]
struct File {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    creator: Option<Named>,
    #[serde(default)]
    browser: Option<Named>,
    entries: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    started_date_time: String,
    request: RawRequest,
    response: RawResponse,
}

#[derive(Deserialize)]
struct RawRequest {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<Pair>,
    #[serde(default)]
    cookies: Vec<Pair>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    status: i64,
    #[serde(default)]
    headers: Vec<Pair>,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct Pair {
    name: String,
    #[serde(default)]
    value: String,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Parses a HAR file's bytes (plain JSON, or gzip-compressed as `.har.gz`).
///
/// # Errors
/// [`ReplayError::Malformed`] naming the entry index (or the file) and what is wrong.
pub fn parse(bytes: &[u8]) -> Result<Har, ReplayError> {
    let plain;
    let bytes = if bytes.starts_with(&GZIP_MAGIC) {
        plain = gunzip(bytes).map_err(|e| ReplayError::Malformed { entry: None, problem: format!("a gzip-compressed file that does not decompress: {e}") })?;
        plain.as_slice()
    } else {
        bytes
    };
    let file: File = serde_json::from_slice(bytes).map_err(|e| ReplayError::Malformed {
        entry: None,
        problem: format!("not a HAR file (a JSON object with log.entries[]): {e} — save it from DevTools → Network → \"Save all as HAR\""),
    })?;
    let browser = file.log.browser.or(file.log.creator).map(|n| n.name).unwrap_or_default();
    let entries = file.log.entries.into_iter().enumerate().map(|(index, value)| entry(index, value)).collect::<Result<Vec<_>, _>>()?;
    Ok(Har { browser, entries })
}

fn entry(index: usize, value: serde_json::Value) -> Result<Entry, ReplayError> {
    // An error quotes the value it could not read: never a token, id or email of the HAR.
    let bad = |problem: String| ReplayError::Malformed { entry: Some(index), problem: scrub(&problem) };
    let raw: RawEntry = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    let started_ms =
        parse_rfc3339_ms(&raw.started_date_time).ok_or_else(|| bad(format!("startedDateTime {:?} is not an ISO 8601 time", raw.started_date_time)))?;
    let url = url::Url::parse(&raw.request.url).map_err(|e| bad(format!("request.url {:?}: {e}", raw.request.url)))?;
    let headers = pairs(raw.request.headers);
    let mut cookies = pairs_keep_case(raw.request.cookies);
    if cookies.is_empty() {
        // Safari leaves request.cookies empty: the Cookie header has them.
        if let Some(line) = header(&headers, "cookie") {
            cookies = line.split(';').filter_map(|c| c.trim().split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        }
    }
    let status = u16::try_from(raw.response.status.max(0)).map_err(|_| bad(format!("response.status {} is not an HTTP status", raw.response.status)))?;
    let response_headers = pairs(raw.response.headers);
    let body = raw.response.content.and_then(|c| body(c, header(&response_headers, "content-encoding"))).transpose().map_err(bad)?;
    Ok(Entry {
        index,
        started_ms,
        request: Request { method: raw.request.method.to_ascii_uppercase(), url, headers, cookies },
        response: Response { status, headers: response_headers, body },
    })
}

/// `text` with every JWT, Clerk id, key and email replaced by what it is: an error message
/// may quote a HAR's value, and a HAR's values must not reach a terminal or a CI log.
#[must_use]
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || "_-.@+=%".contains(c) {
            word.push(c);
            continue;
        }
        out.push_str(&scrub_word(&word));
        word.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn scrub_word(word: &str) -> String {
    const IDS: &[&str] = &["sess_", "user_", "client_", "sk_", "pk_", "org_", "dvb_"];
    if word.starts_with("eyJ") {
        "[token]".into()
    } else if word.contains('@') && word.contains('.') {
        "[email]".into()
    } else if let Some(prefix) = IDS.iter().find(|p| word.starts_with(**p) && word.len() > p.len() + 8) {
        format!("{prefix}[id]")
    } else {
        word.to_string()
    }
}

fn pairs(list: Vec<Pair>) -> Vec<(String, String)> {
    list.into_iter().map(|p| (p.name.to_ascii_lowercase(), p.value)).collect()
}

fn pairs_keep_case(list: Vec<Pair>) -> Vec<(String, String)> {
    list.into_iter().map(|p| (p.name, p.value)).collect()
}

/// The body as text: base64 undone (`encoding: "base64"`), then gzip when the bytes still
/// are (some exports keep the compressed bytes).
fn body(content: Content, _content_encoding: Option<&str>) -> Option<Result<String, String>> {
    let text = content.text?;
    if content.encoding.as_deref() != Some("base64") {
        return Some(Ok(text));
    }
    let bytes = match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(b) => b,
        Err(e) => return Some(Err(format!("response.content.text is marked base64 but is not: {e}"))),
    };
    let bytes = if bytes.starts_with(&GZIP_MAGIC) {
        match gunzip(&bytes) {
            Ok(b) => b,
            Err(e) => return Some(Err(format!("response.content.text is gzip that does not decompress: {e}"))),
        }
    } else {
        bytes
    };
    Some(Ok(String::from_utf8_lossy(&bytes).into_owned()))
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// `2026-12-06T06:20:00.123Z` or with an offset (Firefox writes local time,
/// `…T07:20:00.123+01:00`): ms since the epoch.
#[must_use]
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An HTTP `Date` header (`Sun, 06 Dec 2026 06:20:00 GMT`): seconds since the epoch.
#[must_use]
pub fn parse_http_date(text: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(text).ok()?;
    t.duration_since(std::time::UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_secs()).ok())
}
