//! A successful response's body, read under the total deadline, the size cap and the
//! cancellation signal: whole, as JSON, or line by line for streams.

use super::{Failure, Transport, cancelled, error_chain, ms, secs};
use crate::sample::{ErrorKind, SampleError};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// A successful response whose body is read under the total deadline, the size cap and the
/// cancellation signal.
pub(crate) struct Body<'t> {
    transport: &'t Transport,
    response: reqwest::Response,
    /// Start of the first attempt (error latency covers retries).
    started: Instant,
    /// Start of the attempt that succeeded (latency and TTFT of the answer).
    attempt_start: Instant,
    deadline: Instant,
    attempts: u32,
    read: usize,
    /// Bytes read and not handed out yet: `pending[head..]`. The lines before `head` are
    /// dropped when the next chunk arrives, so handing out a line never moves the rest.
    pending: Vec<u8>,
    head: usize,
    /// `pending[head..scanned]` holds no newline: each byte is searched once, so a line of any
    /// length costs time linear in its length.
    scanned: usize,
    what: String,
}

impl<'t> Body<'t> {
    /// `timing`: the first attempt's start, this attempt's start and the total deadline.
    pub(super) fn new(
        transport: &'t Transport,
        response: reqwest::Response,
        (started, attempt_start, deadline): (Instant, Instant, Instant),
        attempts: u32,
        what: String,
    ) -> Self {
        Body {
            transport,
            response,
            started,
            attempt_start,
            deadline,
            attempts,
            read: 0,
            pending: Vec::new(),
            head: 0,
            scanned: 0,
            what,
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Milliseconds since the successful attempt was sent.
    pub(crate) fn elapsed_ms(&self) -> f64 {
        ms(self.attempt_start.elapsed())
    }

    /// A classified error for this request (message prefixed with the request, redacted).
    pub(crate) fn error(&self, kind: ErrorKind, message: impl AsRef<str>) -> SampleError {
        self.transport.sample_error(
            Failure::new(kind, format!("{}: {}", self.what, message.as_ref())),
            self.attempts,
            self.started,
        )
    }

    /// The next piece of the body, `None` at its end. The deadline holds even against a
    /// server whose next chunk is always ready: it is checked before each read.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Vec<u8>>, SampleError> {
        if Instant::now() >= self.deadline {
            return Err(self.timed_out());
        }
        let next = tokio::select! {
            biased;
            _ = cancelled(self.transport.cancel.as_ref()) => {
                return Err(self.error(
                    ErrorKind::Cancelled,
                    format!("cancelled after {} bytes of the body", self.read),
                ));
            }
            r = tokio::time::timeout_at(self.deadline, self.response.chunk()) => r,
        };
        match next {
            Err(_) => Err(self.timed_out()),
            Ok(Err(e)) => {
                let cause = error_chain(&e.without_url());
                Err(self.error(
                    ErrorKind::MalformedBody,
                    format!("body broken after {} bytes: {cause}", self.read),
                ))
            }
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(c))) => {
                self.read = self.read.saturating_add(c.len());
                if self.read > self.transport.max_response_bytes {
                    return Err(self.error(
                        ErrorKind::TooLarge,
                        format!(
                            "body exceeds max_response_bytes ({}); reading stopped",
                            self.transport.max_response_bytes
                        ),
                    ));
                }
                Ok(Some(c.to_vec()))
            }
        }
    }

    fn timed_out(&self) -> SampleError {
        self.error(
            ErrorKind::Timeout,
            format!(
                "body not complete within total_timeout ({}) after {} bytes; the server is too \
                 slow or stalled",
                secs(self.transport.total_timeout),
                self.read
            ),
        )
    }

    /// The whole body as UTF-8 text.
    pub(crate) async fn text(&mut self) -> Result<String, SampleError> {
        let mut all = std::mem::take(&mut self.pending).split_off(self.head);
        (self.head, self.scanned) = (0, 0);
        while let Some(c) = self.chunk().await? {
            all.extend_from_slice(&c);
        }
        String::from_utf8(all).map_err(|e| {
            self.error(
                ErrorKind::MalformedBody,
                format!(
                    "body is not valid UTF-8 (at byte {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }

    /// The whole body parsed as JSON into `T`; a parse or shape error is `malformed_body`.
    pub(crate) async fn json<T: DeserializeOwned>(&mut self) -> Result<T, SampleError> {
        let text = self.text().await?;
        serde_json::from_str(&text).map_err(|e| {
            self.error(
                ErrorKind::MalformedBody,
                format!("body is not the expected JSON: {e}"),
            )
        })
    }

    /// The next line of the body (without `\n` / `\r\n`), decoded as UTF-8; the last line may
    /// lack a newline. `None` at the end of the body.
    pub(crate) async fn line(&mut self) -> Result<Option<String>, SampleError> {
        loop {
            let from = self.scanned.max(self.head);
            if let Some(at) = self.pending[from..].iter().position(|&b| b == b'\n') {
                let end = from + at;
                let mut line = &self.pending[self.head..end];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                let line = line.to_vec();
                (self.head, self.scanned) = (end + 1, end + 1);
                return self.decode_line(line).map(Some);
            }
            self.scanned = self.pending.len();
            match self.chunk().await? {
                Some(c) => {
                    // Drop the lines handed out: one move of the rest per chunk, not per line.
                    self.pending.drain(..self.head);
                    self.scanned -= self.head;
                    self.head = 0;
                    self.pending.extend_from_slice(&c);
                }
                None if self.head == self.pending.len() => return Ok(None),
                None => {
                    let line = self.pending.split_off(self.head);
                    (self.head, self.scanned) = (0, 0);
                    self.pending.clear();
                    return self.decode_line(line).map(Some);
                }
            }
        }
    }

    fn decode_line(&self, line: Vec<u8>) -> Result<String, SampleError> {
        String::from_utf8(line).map_err(|e| {
            self.error(
                ErrorKind::MalformedBody,
                format!(
                    "stream line is not valid UTF-8 (at byte {} of the line)",
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }
}
