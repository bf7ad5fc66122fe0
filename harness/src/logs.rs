//! Captured output of the backend (and of setup steps): a bounded ring of lines, optionally
//! mirrored to a file, with marks so a scenario can read only what its own requests caused.
//!
//! Lines are stored as plain text: terminal escape sequences (colours of `tracing-subscriber`'s
//! default format, `rich`, `colorlog`; cursor moves; OSC titles and links) are removed as a
//! line is captured, so no report ever shows one. The access-log lines of the harness's log
//! barriers (requests marked [`BARRIER_MARKER`], see [`crate::TestEnv::settle_log`]) are
//! written to the file but kept out of memory: no scenario's window holds them.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// Lines kept in memory per backend; older lines survive only in the log file.
pub const LOG_CAPACITY: usize = 20_000;

/// The query parameter that marks a log barrier's request (`GET /health?clerk-harness-barrier=7`):
/// a captured line that holds it, followed by the barrier's number, is the backend's log of
/// that request.
pub const BARRIER_MARKER: &str = "clerk-harness-barrier=";

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A position in a [`LogBuffer`]: lines pushed after it are "since" the mark. It also
/// remembers when it was taken, to match the log with the mock's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark(u64, std::time::SystemTime);

impl LogMark {
    /// When the mark was taken.
    #[must_use]
    pub fn at(&self) -> std::time::SystemTime {
        self.1
    }
}

/// A shared, thread-safe ring buffer of log lines.
#[derive(Clone, Debug)]
pub struct LogBuffer(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Woken on every line and when a pump reaches end of file: what [`LogBuffer::drained`]
    /// and [`LogBuffer::wait_for_line`] wait on instead of sleeping.
    changed: Notify,
}

#[derive(Debug)]
struct Inner {
    /// (sequence, when it was captured, the line)
    lines: VecDeque<(u64, std::time::SystemTime, String)>,
    next: u64,
    file: Option<(PathBuf, File)>,
    /// Pipes still being pumped into the buffer.
    open_pumps: usize,
    /// The highest barrier number seen in a line, and the sequence number the next line had
    /// then (where the barrier's line would have been).
    barrier: Option<(u64, u64)>,
}

impl LogBuffer {
    /// An empty buffer, mirrored to `file` when given (created or truncated).
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn new(file: Option<&Path>) -> std::io::Result<Self> {
        let file = match file {
            Some(path) => Some((path.to_path_buf(), File::create(path)?)),
            None => None,
        };
        let inner = Mutex::new(Inner { lines: VecDeque::new(), next: 0, file, open_pumps: 0, barrier: None });
        Ok(Self(Arc::new(Shared { inner, changed: Notify::new() })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits, at most `within`, until `done` holds for the buffer; true if it did.
    async fn wait_until(&self, within: Duration, done: impl Fn(&Inner) -> bool) -> bool {
        let wait = async {
            loop {
                let changed = self.0.changed.notified();
                tokio::pin!(changed);
                // Registered before the check, so a change between the check and the await
                // is not missed.
                changed.as_mut().enable();
                if done(&self.lock()) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }

    /// Waits, at most `within`, until every pipe pumped into the buffer has reached end of
    /// file — after a process exited, its last lines are then in. True if they all did.
    pub async fn drained(&self, within: Duration) -> bool {
        self.wait_until(within, |inner| inner.open_pumps == 0).await
    }

    /// Waits, at most `within`, for a line after `mark` that contains `needle` (e.g. the
    /// backend's access-log line of a request); true if one arrived.
    pub async fn wait_for_line(&self, mark: LogMark, needle: &str, within: Duration) -> bool {
        self.wait_until(within, |inner| inner.lines.iter().any(|(seq, _, line)| *seq >= mark.0 && line.contains(needle))).await
    }

    /// Waits, at most `within`, until the line of barrier `number` (or of a later one) has
    /// been captured; where it would have been in the log if it did.
    pub(crate) async fn wait_for_barrier(&self, number: u64, within: Duration) -> Option<LogMark> {
        let seen = self.wait_until(within, |inner| inner.barrier.is_some_and(|(n, _)| n >= number)).await;
        let inner = self.lock();
        match (seen, inner.barrier) {
            (true, Some((_, seq))) => Some(LogMark(seq, std::time::SystemTime::now())),
            _ => None,
        }
    }

    /// Waits until no line has been captured for `quiet`, or at most `cap`; the end of the
    /// log then. For output written a little after the event that caused it.
    pub async fn settle(&self, quiet: Duration, cap: Duration) -> LogMark {
        let deadline = tokio::time::Instant::now() + cap;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            let seen = self.lock().next;
            if !self.wait_until(quiet.min(deadline - now), |inner| inner.next != seen).await {
                break;
            }
        }
        self.mark()
    }

    /// Appends one line (a trailing newline is dropped, escape sequences are removed).
    pub fn push(&self, stream: Stream, line: &str) {
        let line = plain(line.trim_end_matches(['\n', '\r']));
        let line = line.as_ref();
        let mut inner = self.lock();
        if let Some((_, file)) = &mut inner.file {
            let tag = if stream == Stream::Stderr { "err" } else { "out" };
            let _ = writeln!(file, "{tag} | {line}");
        }
        if let Some(number) = barrier_number(line) {
            let at = inner.next;
            if inner.barrier.is_none_or(|(n, _)| number > n) {
                inner.barrier = Some((number, at));
            }
            drop(inner);
            self.0.changed.notify_waiters();
            return;
        }
        let seq = inner.next;
        inner.next += 1;
        if inner.lines.len() == LOG_CAPACITY {
            inner.lines.pop_front();
        }
        inner.lines.push_back((seq, std::time::SystemTime::now(), line.to_owned()));
        drop(inner);
        self.0.changed.notify_waiters();
    }

    /// Appends raw bytes that may hold several lines (container log frames).
    pub(crate) fn push_bytes(&self, stream: Stream, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            self.push(stream, line);
        }
    }

    /// The current end of the log.
    #[must_use]
    pub fn mark(&self) -> LogMark {
        LogMark(self.lock().next, std::time::SystemTime::now())
    }

    /// Every line still in memory.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.iter().map(|(_, _, l)| l.clone()).collect()
    }

    /// Lines pushed after `mark`.
    #[must_use]
    pub fn since(&self, mark: LogMark) -> Vec<String> {
        self.lock().lines.iter().filter(|(seq, _, _)| *seq >= mark.0).map(|(_, _, l)| l.clone()).collect()
    }

    /// Lines pushed after `mark`, each with when it was captured (to place it on a timeline).
    #[must_use]
    pub fn since_timed(&self, mark: LogMark) -> Vec<(std::time::SystemTime, String)> {
        self.lock().lines.iter().filter(|(seq, _, _)| *seq >= mark.0).map(|(_, at, l)| (*at, l.clone())).collect()
    }

    /// Lines pushed after `start` and before `end` (e.g. one scenario's window: `end` from
    /// [`crate::TestEnv::settle_log`]).
    #[must_use]
    pub fn between(&self, start: LogMark, end: LogMark) -> Vec<String> {
        self.between_timed(start, end).into_iter().map(|(_, l)| l).collect()
    }

    /// [`LogBuffer::between`], each line with when it was captured.
    #[must_use]
    pub fn between_timed(&self, start: LogMark, end: LogMark) -> Vec<(std::time::SystemTime, String)> {
        self.lock().lines.iter().filter(|(seq, _, _)| (start.0..end.0).contains(seq)).map(|(_, at, l)| (*at, l.clone())).collect()
    }

    /// The last `n` lines, joined, for error messages.
    #[must_use]
    pub fn tail(&self, n: usize) -> String {
        let inner = self.lock();
        let skip = inner.lines.len().saturating_sub(n);
        let text: Vec<&str> = inner.lines.iter().skip(skip).map(|(_, _, l)| l.as_str()).collect();
        if text.is_empty() {
            "(no output)".into()
        } else {
            text.join("\n")
        }
    }

    /// The last `n` lines pushed after `mark`, joined, leaving out lines that mention
    /// `skip` (e.g. the access-log lines of the harness's own health probes).
    #[must_use]
    pub fn tail_since(&self, mark: LogMark, n: usize, skip: Option<&str>) -> String {
        let inner = self.lock();
        let lines: Vec<&str> =
            inner.lines.iter().filter(|(seq, _, line)| *seq >= mark.0 && skip.is_none_or(|s| !line.contains(s))).map(|(_, _, l)| l.as_str()).collect();
        let text = lines[lines.len().saturating_sub(n)..].join("\n");
        if text.is_empty() {
            "(no output)".into()
        } else {
            text
        }
    }

    /// The file the log is mirrored to, if any.
    #[must_use]
    pub fn file(&self) -> Option<PathBuf> {
        self.lock().file.as_ref().map(|(p, _)| p.clone())
    }
}

/// The number of the barrier whose request `line` logs, if it logs one.
fn barrier_number(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once(BARRIER_MARKER)?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// `line` without terminal escape sequences (CSI such as `\x1b[2m`, OSC, DCS, single
/// escapes) and control characters other than tabs. The parser is a terminal emulator's
/// (`vte`), so a sequence is removed whole, whatever its parameters.
pub(crate) fn plain(line: &str) -> std::borrow::Cow<'_, str> {
    /// Keeps what a terminal would print, and tabs.
    struct Printed(String);
    impl vte::Perform for Printed {
        fn print(&mut self, c: char) {
            self.0.push(c);
        }
        fn execute(&mut self, byte: u8) {
            if byte == b'\t' {
                self.0.push('\t');
            }
        }
    }
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut printed = Printed(String::with_capacity(line.len()));
    vte::Parser::new().advance(&mut printed, line.as_bytes());
    std::borrow::Cow::Owned(printed.0)
}

/// Reads `reader` line by line into `buffer` until EOF (spawned per pipe). The pipe counts as
/// open from this call — not from the task's first poll — until EOF, for [`LogBuffer::drained`].
pub(crate) fn pump(reader: impl tokio::io::AsyncRead + Unpin, buffer: LogBuffer, stream: Stream) -> impl std::future::Future<Output = ()> {
    use tokio::io::AsyncBufReadExt;
    buffer.lock().open_pumps += 1;
    async move {
        let mut lines = tokio::io::BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            buffer.push(stream, &line);
        }
        buffer.lock().open_pumps -= 1;
        buffer.0.changed.notify_waiters();
    }
}

/// The last `n` lines of `text`.
pub(crate) fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_select_later_lines() {
        let log = LogBuffer::new(None).expect("memory only");
        log.push(Stream::Stdout, "before\n");
        let mark = log.mark();
        log.push_bytes(Stream::Stderr, b"one\ntwo\n");
        assert_eq!(log.since(mark), ["one", "two"]);
        assert_eq!(log.tail(2), "one\ntwo");
    }

    #[test]
    fn a_tail_since_a_mark_leaves_out_earlier_lines_and_probe_lines() {
        let log = LogBuffer::new(None).expect("memory only");
        log.push(Stream::Stdout, "an earlier start failed");
        let mark = log.mark();
        assert_eq!(log.tail_since(mark, 5, None), "(no output)");
        log.push(Stream::Stdout, "INFO: 127.0.0.1 - \"GET /health HTTP/1.1\" 400 Bad Request");
        log.push(Stream::Stderr, "Invalid HTTP_HOST header");
        assert_eq!(log.tail_since(mark, 5, Some("GET /health ")), "Invalid HTTP_HOST header");
        assert_eq!(log.tail_since(mark, 5, None).lines().count(), 2);
    }

    #[tokio::test]
    async fn drained_waits_for_the_end_of_every_pumped_pipe() {
        let log = LogBuffer::new(None).expect("memory only");
        let (mut writer, reader) = tokio::io::duplex(64);
        let task = tokio::spawn(pump(reader, log.clone(), Stream::Stdout));
        tokio::io::AsyncWriteExt::write_all(&mut writer, b"last words\n").await.expect("write");
        assert!(!log.drained(Duration::from_millis(20)).await, "the pipe is still open");
        drop(writer);
        assert!(log.drained(Duration::from_secs(5)).await, "end of file reached");
        assert_eq!(log.lines(), ["last words"]);
        task.await.expect("pump");
    }

    #[test]
    fn escape_sequences_are_removed_as_lines_are_captured() {
        let log = LogBuffer::new(None).expect("memory only");
        // tracing-subscriber's default format, with colours.
        log.push(
            Stream::Stdout,
            "\x1b[2m2026-12-05T10:00:00.123Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mapp::auth\x1b[0m\x1b[2m:\x1b[0m token refused \x1b[3mreason\x1b[0m\x1b[2m=\x1b[0mexpired",
        );
        // An OSC 8 hyperlink (BEL- and ST-terminated), a cursor move, a lone escape, a carriage return.
        log.push(Stream::Stderr, "see \x1b]8;;https://example.com\x07the docs\x1b]8;;\x1b\\ now\x1b[2K\x1b[1G\x1b(B done\r");
        // Tabs stay; plain lines are kept as they are.
        log.push(Stream::Stderr, "\tat handler (app.js:1:2)");
        assert_eq!(
            log.lines(),
            ["2026-12-05T10:00:00.123Z  INFO app::auth: token refused reason=expired", "see the docs now done", "\tat handler (app.js:1:2)"]
        );
        assert!(log.lines().iter().all(|l| !l.contains('\x1b')));
    }

    #[tokio::test]
    async fn barrier_lines_are_seen_but_never_kept() {
        let log = LogBuffer::new(None).expect("memory only");
        let start = log.mark();
        log.push(Stream::Stdout, "GET /api/me 200");
        assert_eq!(log.wait_for_barrier(1, Duration::from_millis(20)).await, None, "no barrier yet");
        log.push(Stream::Stdout, "INFO: 127.0.0.1:5 - \"GET /health?clerk-harness-barrier=12 HTTP/1.1\" 200 OK");
        assert_eq!(log.wait_for_barrier(13, Duration::from_millis(20)).await, None, "barrier 12 is not 13");
        let end = log.wait_for_barrier(12, Duration::from_secs(5)).await.expect("barrier 12 seen");
        log.push(Stream::Stdout, "the next scenario");
        assert_eq!(log.between(start, end), ["GET /api/me 200"]);
        assert_eq!(log.since(start), ["GET /api/me 200", "the next scenario"], "the barrier's line is kept out of memory");
    }

    #[tokio::test]
    async fn settle_waits_for_a_quiet_log_but_no_longer_than_the_cap() {
        let log = LogBuffer::new(None).expect("memory only");
        let t0 = tokio::time::Instant::now();
        log.settle(Duration::from_millis(30), Duration::from_secs(5)).await;
        assert!(t0.elapsed() < Duration::from_secs(1), "a quiet log settles after the quiet period");
        let writer = log.clone();
        let chatter = tokio::spawn(async move {
            for i in 0..40 {
                writer.push(Stream::Stdout, &format!("line {i}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let t0 = tokio::time::Instant::now();
        let mark = log.settle(Duration::from_millis(50), Duration::from_millis(150)).await;
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(140) && waited < Duration::from_secs(1), "capped: {waited:?}");
        assert!(log.since(mark).len() < 40, "the mark is where it stopped waiting");
        chatter.await.expect("chatter");
    }

    #[tokio::test]
    async fn wait_for_line_sees_only_lines_after_the_mark() {
        let log = LogBuffer::new(None).expect("memory only");
        log.push(Stream::Stdout, "GET /health 404");
        let mark = log.mark();
        assert!(!log.wait_for_line(mark, "/health", Duration::from_millis(20)).await, "the line before the mark does not count");
        let writer = log.clone();
        tokio::spawn(async move { writer.push(Stream::Stdout, "GET /health 404 again") });
        assert!(log.wait_for_line(mark, "/health", Duration::from_secs(5)).await);
    }
}
