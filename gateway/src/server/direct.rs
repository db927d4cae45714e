//! Serves a stream request without hyper: runs it through the router (every
//! layer and the handler, as for any request), then writes the HTTP/1.1
//! response itself, straight from the body's frames to the socket.
//!
//! Why: hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for a
//! connection's life, about three quarters of what an idle stream cost. Here
//! nothing outlives a write: the status line and headers are built once, and
//! each frame goes out as one vectored write of chunk size, frame and CRLF
//! (the body already merges frames that are waiting). While the response
//! lasts the socket is read into a 64-byte probe only to notice the client
//! leaving; bytes a client sends anyway stop the probe and are kept as the
//! start of the connection's next request.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, Response};
use axum::Router;
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tower::ServiceExt;

/// What a probe read takes at most; more is left in the kernel's buffer.
const PROBE_BYTES: usize = 64;

/// How the connection goes on after the response.
#[derive(Debug)]
pub enum After {
    /// Open: the next request starts with these bytes.
    KeepAlive(BytesMut),
    /// Closed: the client left, asked for it, or a write failed.
    Close,
}

/// Serves `request` on `io` and writes its response. Not an `async fn`: the
/// request is handed to the router's (boxed) future at once rather than
/// kept in this future's state for the stream's life.
pub fn serve<'a, IO>(
    io: &'a mut IO,
    request: Box<Request<()>>,
    router: &Router,
    peer: SocketAddr,
) -> impl Future<Output = After> + 'a
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let close = wants_close(request.headers());
    let mut request = (*request).map(|()| Body::empty());
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = Box::pin(router.clone().oneshot(request));
    async move {
        let response = response.await.unwrap_or_else(|never| match never {});
        match respond(io, response, close).await {
            Ok(after) => after,
            Err(error) => {
                tracing::debug!(%peer, %error, "stream connection ended");
                After::Close
            }
        }
    }
}

/// Whether `Connection: close` is among the headers.
pub(super) fn wants_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

/// How the body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
}

async fn respond<IO>(io: &mut IO, response: Response<Body>, close: bool) -> io::Result<After>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (parts, mut body) = response.into_parts();
    let (head, framing) = head(
        &parts,
        axum::body::HttpBody::size_hint(&body).exact(),
        close,
    );
    // Neither the headers nor their encoding is needed again: do not keep
    // them for the stream's life.
    drop(parts);
    io.write_all(&head).await?;
    drop(head);
    let mut early = BytesMut::new();
    loop {
        let frame = {
            let probe = async {
                if early.is_empty() {
                    probe(io, &mut early).await
                } else {
                    // The client sent bytes: the rest is the next request's.
                    std::future::pending().await
                }
            };
            tokio::select! {
                biased;
                frame = body.frame() => frame,
                gone = probe => return Err(gone),
            }
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(io::Error::other)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: none on these responses
        };
        match framing {
            Framing::Length => io.write_all(&data).await?,
            Framing::Chunked if data.is_empty() => {}
            Framing::Chunked => {
                let size = chunk_size_line(data.len());
                write_all_vectored(
                    io,
                    &mut [
                        IoSlice::new(size.as_bytes()),
                        IoSlice::new(&data),
                        IoSlice::new(b"\r\n"),
                    ],
                )
                .await?;
            }
        }
    }
    if framing == Framing::Chunked {
        io.write_all(b"0\r\n\r\n").await?;
    }
    io.flush().await?;
    Ok(if close {
        After::Close
    } else {
        After::KeepAlive(early)
    })
}

/// Reads until the client closes (or the socket fails), or sends bytes,
/// which are kept in `early` for whoever serves the connection next.
async fn probe<IO: AsyncRead + Unpin>(io: &mut IO, early: &mut BytesMut) -> io::Error {
    let mut buf = [0u8; PROBE_BYTES];
    match io.read(&mut buf).await {
        Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "the client closed the stream"),
        Ok(n) => {
            early.extend_from_slice(&buf[..n]);
            std::future::pending().await
        }
        Err(error) => error,
    }
}

/// The status line and headers, and how the body follows them.
fn head(
    parts: &axum::http::response::Parts,
    exact: Option<u64>,
    close: bool,
) -> (Vec<u8>, Framing) {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(parts.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue; // this writer decides the connection's framing
        }
        line(&mut head, name.as_str(), value.as_bytes());
    }
    if !parts.headers.contains_key(header::DATE) {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        line(&mut head, "date", now.as_bytes());
    }
    let framing = if parts.headers.contains_key(header::CONTENT_LENGTH) {
        Framing::Length
    } else if let Some(len) = exact {
        line(&mut head, "content-length", len.to_string().as_bytes());
        Framing::Length
    } else {
        line(&mut head, "transfer-encoding", b"chunked");
        Framing::Chunked
    };
    if close {
        line(&mut head, "connection", b"close");
    }
    head.extend_from_slice(b"\r\n");
    (head, framing)
}

fn line(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// A chunk's size line, `{hex}\r\n`, on the stack (no allocation per frame).
struct ChunkSize {
    buf: [u8; 18],
    start: usize,
}

impl ChunkSize {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn chunk_size_line(len: usize) -> ChunkSize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 18];
    buf[16] = b'\r';
    buf[17] = b'\n';
    let (mut start, mut rest) = (16, len);
    loop {
        start -= 1;
        buf[start] = HEX[rest & 15];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    ChunkSize { buf, start }
}

/// Writes every slice, in as few writes as the socket takes.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    io: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let n = io.write_vectored(bufs).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use bytes::Bytes;
    use futures_util::stream;
    use std::convert::Infallible;

    async fn written(response: Response<Body>, close: bool) -> (String, After) {
        let (mut near, mut far) = tokio::io::duplex(64 * 1024);
        let after = respond(&mut near, response, close).await.unwrap();
        drop(near);
        let mut out = String::new();
        far.read_to_string(&mut out).await.unwrap();
        (out, after)
    }

    #[tokio::test]
    async fn a_streamed_body_is_chunked_frame_by_frame() {
        let frames =
            ["data: a\n\n", "", "data: bc\n\n"].map(|s| Ok::<_, Infallible>(Bytes::from(s)));
        let mut response = Response::new(Body::from_stream(stream::iter(frames)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
        let (out, after) = written(response, false).await;
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: text/event-stream"),
            "{head}"
        );
        assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
        assert!(head.contains("\r\ndate: "), "{head}");
        assert!(!head.contains("connection"), "{head}");
        assert_eq!(body, "9\r\ndata: a\n\n\r\na\r\ndata: bc\n\n\r\n0\r\n\r\n");
        assert!(matches!(after, After::KeepAlive(early) if early.is_empty()));
    }

    #[tokio::test]
    async fn a_whole_body_gets_its_length_and_close_is_honoured() {
        let mut response = Response::new(Body::from(r#"{"error":{}}"#));
        *response.status_mut() = StatusCode::FORBIDDEN;
        let (out, after) = written(response, true).await;
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(out.contains("\r\ncontent-length: 12\r\n"), "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n{\"error\":{}}"), "{out}");
        assert!(matches!(after, After::Close));
    }

    #[tokio::test]
    async fn the_client_leaving_ends_the_response_and_early_bytes_are_kept() {
        let pending = || Body::from_stream(stream::pending::<Result<Bytes, Infallible>>());
        let (mut near, mut far) = tokio::io::duplex(1024);
        let serving =
            tokio::spawn(async move { respond(&mut near, Response::new(pending()), false).await });
        let mut head = [0u8; 16];
        far.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200 OK\r");
        drop(far);
        let error = serving.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);

        // Bytes sent during a response stop the probe and wait for hyper.
        let (mut near, mut far) = tokio::io::duplex(1024);
        far.write_all(b"GET /health HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let body = Body::from_stream(stream::once(async move {
            let _ = rx.await;
            Ok::<_, Infallible>(Bytes::from_static(b"x"))
        }));
        let serving =
            tokio::spawn(async move { respond(&mut near, Response::new(body), false).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tx.send(()).unwrap();
        let After::KeepAlive(early) = serving.await.unwrap().unwrap() else {
            panic!("closed");
        };
        assert_eq!(&early[..], b"GET /health HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn chunk_size_lines_are_lowercase_hex() {
        for (len, line) in [
            (0, "0\r\n"),
            (9, "9\r\n"),
            (255, "ff\r\n"),
            (65536, "10000\r\n"),
        ] {
            assert_eq!(chunk_size_line(len).as_bytes(), line.as_bytes());
        }
        assert_eq!(
            chunk_size_line(usize::MAX).as_bytes().len(),
            2 * size_of::<usize>() + 2
        );
    }

    #[test]
    fn connection_close_is_found_among_tokens() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONNECTION, "keep-alive, Close".parse().unwrap());
        assert!(wants_close(&headers));
        assert!(!wants_close(&HeaderMap::new()));
    }
}
