//! Reads a connection's next request head before hyper sees it (the first,
//! and each one after hyper hands the connection back), and decides who
//! serves the request.
//!
//! A plain `GET /api/logs/stream` (HTTP/1.1, no body, nothing sent after
//! the head) is served by [`super::direct`], which keeps no buffer for the
//! stream's life; hyper keeps two of 8 KiB per connection, most of what an
//! idle stream costs. Everything else goes to hyper with the bytes read so
//! far put back in front of the socket ([`super::exchange`]), so hyper parses
//! the request, and answers anything malformed, exactly as before; with
//! the request's length when its framing is plain, so hyper can be given
//! that one request and the connection taken back after it.

use std::io;
use std::mem::MaybeUninit;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::stream::STREAM_PATH;

/// The most headers a head may have here; hyper's own bound is the same.
pub const MAX_HEADERS: usize = 256;

/// What the buffer starts at; a browser's stream request (cookies included)
/// usually fits. It grows up to the connection's buffer bound.
const FIRST_READ: usize = 2048;

/// Who serves the connection.
#[derive(Debug)]
pub enum FirstHead {
    /// A stream request the gateway writes itself (boxed: small while it
    /// waits in the connection's state).
    Stream(Box<Request<()>>),
    /// Anything else: hyper serves it, from these bytes on. `length` is the
    /// whole request's (head and body) when its head is complete and its
    /// body has a known length.
    Other {
        bytes: BytesMut,
        length: Option<usize>,
    },
    /// The client closed before sending anything.
    Closed,
}

/// Reads, after the bytes already read (`buf`), until the head is
/// complete, or shows it is not a stream request, or fills `max_bytes`
/// (then hyper answers it as too large). The caller bounds the time it may
/// take.
pub async fn read<R: AsyncRead + Unpin>(
    io: &mut R,
    mut buf: BytesMut,
    max_bytes: usize,
    max_headers: usize,
) -> io::Result<FirstHead> {
    if !buf.is_empty() {
        if let Some(decided) = classify(&buf, max_headers) {
            return Ok(decided.with(buf));
        }
    }
    buf.reserve(FIRST_READ.min(max_bytes).saturating_sub(buf.len()));
    loop {
        if buf.len() >= max_bytes {
            return Ok(FirstHead::other(buf));
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len().min(max_bytes - buf.len()));
        }
        if io.read_buf(&mut buf).await? == 0 {
            return Ok(if buf.is_empty() {
                FirstHead::Closed
            } else {
                FirstHead::other(buf)
            });
        }
        if let Some(decided) = classify(&buf, max_headers) {
            return Ok(decided.with(buf));
        }
    }
}

impl FirstHead {
    /// A request hyper reads on its own (its length is not known here).
    fn other(bytes: BytesMut) -> Self {
        FirstHead::Other {
            bytes,
            length: None,
        }
    }
}

enum Decision {
    Stream(Box<Request<()>>),
    Other(Option<usize>),
}

impl Decision {
    fn with(self, buf: BytesMut) -> FirstHead {
        match self {
            Decision::Stream(request) => FirstHead::Stream(request),
            Decision::Other(length) => FirstHead::Other { bytes: buf, length },
        }
    }
}

/// `None` while the head is incomplete.
fn classify(buf: &[u8], max_headers: usize) -> Option<Decision> {
    // On the stack and uninitialised: this runs for every request.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let headers = &mut headers[..max_headers.min(MAX_HEADERS)];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return None,
        // hyper answers malformed heads (and heads with too many headers).
        Err(_) => return Some(Decision::Other(None)),
    };
    let stream = parsed.method == Some("GET")
        && parsed.version == Some(1)
        // Bytes after the head (a body, a pipelined request) are hyper's.
        && len == buf.len()
        && parsed.path.is_some_and(is_stream_target);
    if let Some(request) = stream
        .then(|| request(parsed.path?, parsed.headers))
        .flatten()
    {
        return Some(Decision::Stream(request));
    }
    Some(Decision::Other(
        body_length(parsed.headers).and_then(|body| len.checked_add(body)),
    ))
}

/// The body's length when the head says it plainly: `Content-Length` (one
/// value, or equal ones) or no body; `None` for chunked or contradictory
/// framing, which hyper reads (or refuses) on its own.
fn body_length(headers: &[httparse::Header<'_>]) -> Option<usize> {
    let mut length = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let value: usize = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
            if length.is_some_and(|seen| seen != value) {
                return None;
            }
            length = Some(value);
        }
    }
    Some(length.unwrap_or(0))
}

/// Origin-form `/api/logs/stream`, with or without a query. (httparse
/// reports a target only once it is whole.)
fn is_stream_target(target: &str) -> bool {
    target.split_once('?').map_or(target, |(path, _)| path) == STREAM_PATH
}

/// The request, when it has no body and asks for nothing but a response.
fn request(target: &str, headers: &[httparse::Header<'_>]) -> Option<Box<Request<()>>> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    let has_body = map.contains_key(header::TRANSFER_ENCODING)
        || map
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0");
    if has_body || map.contains_key(header::EXPECT) || map.contains_key(header::UPGRADE) {
        return None;
    }
    let mut request = Request::new(());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = Uri::try_from(target).ok()?;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = map;
    Some(Box::new(request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MAX: usize = 16 * 1024;

    /// Decided from `bytes` alone: the client stays connected.
    async fn first(bytes: &[u8]) -> FirstHead {
        let (mut near, mut far) = tokio::io::duplex(MAX * 2);
        tokio::io::AsyncWriteExt::write_all(&mut far, bytes)
            .await
            .unwrap();
        let decided = tokio::time::timeout(
            Duration::from_secs(5),
            read(&mut near, BytesMut::new(), MAX, 64),
        );
        let decided = decided.await.expect("undecided with the head complete");
        drop(far);
        decided.unwrap()
    }

    async fn closed_after(bytes: &[u8]) -> FirstHead {
        let (mut near, mut far) = tokio::io::duplex(MAX * 2);
        tokio::io::AsyncWriteExt::write_all(&mut far, bytes)
            .await
            .unwrap();
        drop(far);
        read(&mut near, BytesMut::new(), MAX, 64).await.unwrap()
    }

    fn stream_head(extra: &str) -> String {
        format!("GET /api/logs/stream?channels=logs:etl:ws1 HTTP/1.1\r\nHost: x\r\n{extra}\r\n")
    }

    #[tokio::test]
    async fn a_plain_stream_request_is_served_directly() {
        let FirstHead::Stream(request) = first(stream_head("Cookie: a=b\r\n").as_bytes()).await
        else {
            panic!("not a direct stream");
        };
        assert_eq!(request.uri().path(), "/api/logs/stream");
        assert_eq!(request.uri().query(), Some("channels=logs:etl:ws1"));
        assert_eq!(request.headers()["cookie"], "a=b");
        assert_eq!(request.headers()["host"], "x");
    }

    #[tokio::test]
    async fn everything_else_goes_to_hyper_with_the_bytes_read() {
        let cases = [
            "POST /api/logs/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}".to_owned(),
            "GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            "GET /api/logs/streams HTTP/1.1\r\n\r\n".to_owned(),
            "GET /api HTTP/1.1\r\n\r\n".to_owned(),
            "HEAD /api/logs/stream HTTP/1.1\r\n\r\n".to_owned(),
            "GET /api/logs/stream HTTP/1.0\r\n\r\n".to_owned(),
            "GET http://x/api/logs/stream HTTP/1.1\r\n\r\n".to_owned(),
            stream_head("Content-Length: 3\r\n"),
            stream_head("Transfer-Encoding: chunked\r\n"),
            stream_head("Expect: 100-continue\r\n"),
            stream_head("Upgrade: websocket\r\n"),
            stream_head("") + "GET /health HTTP/1.1\r\n\r\n",
            "GET /api/logs/stream HTTP/1.1\r\nBad Header\r\n\r\n".to_owned(),
        ];
        for case in cases {
            match first(case.as_bytes()).await {
                FirstHead::Other { bytes, .. } => assert_eq!(&bytes[..], case.as_bytes(), "{case}"),
                other => panic!("{case:?} gave {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn bytes_already_read_are_parsed_first() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        let head = stream_head("");
        let decided = read(&mut near, BytesMut::from(head.as_bytes()), MAX, 64);
        assert!(
            matches!(decided.await.unwrap(), FirstHead::Stream(_)),
            "no read needed"
        );
        let (start, rest) = head.split_at(20);
        tokio::io::AsyncWriteExt::write_all(&mut far, rest.as_bytes())
            .await
            .unwrap();
        let decided = read(&mut near, BytesMut::from(start.as_bytes()), MAX, 64);
        assert!(
            matches!(decided.await.unwrap(), FirstHead::Stream(_)),
            "completed by a read"
        );
    }

    #[tokio::test]
    async fn other_requests_carry_their_length_when_their_framing_is_plain() {
        let head = "POST /api/logs/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
        let cases = [
            (format!("{head}{{}}"), Some(head.len() + 2)),
            (format!("{head}{{"), Some(head.len() + 2)), // the rest is still to come
            (
                format!("{head}{{}}GET /a HTTP/1.1\r\n\r\n"),
                Some(head.len() + 2),
            ),
            ("GET /health HTTP/1.1\r\n\r\n".to_owned(), Some(24)),
            (
                "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                    .to_owned(),
                None,
            ),
            (
                "POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n".to_owned(),
                None,
            ),
            (
                "POST /x HTTP/1.1\r\nContent-Length: two\r\n\r\n".to_owned(),
                None,
            ),
        ];
        for (case, expected) in cases {
            match first(case.as_bytes()).await {
                FirstHead::Other { length, .. } => assert_eq!(length, expected, "{case:?}"),
                other => panic!("{case:?} gave {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn heads_too_many_or_too_large_go_to_hyper_and_silence_is_closed() {
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(
            first(stream_head(&many).as_bytes()).await,
            FirstHead::Other { .. }
        ));
        let huge = stream_head(&format!("X-Big: {}\r\n", "a".repeat(MAX)));
        match first(huge.as_bytes()).await {
            FirstHead::Other { bytes, length } => {
                assert_eq!(bytes.len(), MAX, "read up to the bound only");
                assert_eq!(length, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(closed_after(b"").await, FirstHead::Closed));
        assert!(matches!(
            closed_after(b"GET /api/logs/stream HTTP/1.1\r\n").await,
            FirstHead::Other { .. }
        ));
    }
}
