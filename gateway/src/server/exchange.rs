//! hyper serving one request, then handing the connection back, so the
//! next request head is read by the connection layer again (and a stream
//! request after a publish on a keep-alive connection is still written
//! without hyper's buffers).
//!
//! hyper has no "serve one request" mode that keeps the connection open,
//! so the socket is wrapped: hyper may read exactly the request's length
//! (known from its head, see `first_head`), and once the response's body
//! has ended a further read reports end of input. hyper then finishes,
//! having flushed what it wrote, with the connection open, and
//! `poll_without_shutdown` returns the socket; bytes after the request
//! (a pipelined one) were never given to hyper and start the next head.
//! The bytes the connection layer read before (the head) are put back in
//! front of the socket, so hyper parses the request as if it read it.
//! A request whose length is not known (a chunked body) is served by hyper
//! for the rest of the connection's life, as before.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Version};
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How hyper is set up for one connection.
#[derive(Debug, Clone, Copy)]
pub struct HyperSettings {
    pub header_read_timeout: Duration,
    pub keep_alive: bool,
    pub max_buf_size: usize,
    pub max_headers: usize,
}

/// Serves the request that starts `prefix` (of `length` bytes in all, when
/// known) with hyper. Returns the socket and the bytes after the request
/// when the connection stays open; `None` when it closed, failed, was
/// kept by hyper to its end, or shutdown ended it.
pub async fn serve<T>(
    io: T,
    prefix: BytesMut,
    length: Option<usize>,
    peer: SocketAddr,
    router: Router,
    settings: HyperSettings,
    shutdown: &CancellationToken,
) -> Option<(T, BytesMut)>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let length = length.filter(|_| settings.keep_alive);
    let response_end = Arc::new(ResponseEnd::default());
    let io = OneRequest {
        prefix,
        inner: io,
        remaining: length,
        end: response_end.clone(),
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        let end = response_end.clone();
        // Boxed so the service's future is `Unpin`, which
        // `poll_without_shutdown` needs.
        Box::pin(async move {
            let closing = asks_to_close(request.version(), request.headers());
            let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
            if closing || asks_to_close(response.version(), response.headers()) {
                // hyper closes after this response; the connection is not
                // handed back.
                end.closing.store(true, Ordering::Release);
            }
            Ok::<_, Infallible>(response.map(|body| Body::new(EndSignal { inner: body, end })))
        })
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(settings.keep_alive)
        .max_buf_size(settings.max_buf_size)
        .max_headers(settings.max_headers);
    let mut conn = builder.serve_connection(TokioIo::new(io), service);
    let result = tokio::select! {
        result = poll_fn(|cx| conn.poll_without_shutdown(cx)) => result,
        () = shutdown.cancelled() => {
            Pin::new(&mut conn).graceful_shutdown();
            if let Err(error) = poll_fn(|cx| conn.poll_without_shutdown(cx)).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            return None;
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
        return None;
    }
    let parts = conn.into_parts();
    let OneRequest {
        prefix,
        inner,
        remaining,
        end,
    } = parts.io.into_inner();
    // Handed back only when hyper stopped at the end of input this wrapper
    // made up, not at the client's.
    let handed_back = remaining == Some(0)
        && end.ended.load(Ordering::Acquire)
        && !end.closing.load(Ordering::Acquire)
        && parts.read_buf.is_empty();
    handed_back.then_some((inner, prefix))
}

/// Set by the response body when it ends; the reader waits for it.
#[derive(Debug, Default)]
struct ResponseEnd {
    ended: AtomicBool,
    /// The request or the response asked to close the connection after it.
    closing: AtomicBool,
    reader: AtomicWaker,
}

/// HTTP/1.0 (keep-alive there is opt-in and rare) or `Connection: close`.
fn asks_to_close(version: Version, headers: &HeaderMap) -> bool {
    version < Version::HTTP_11 || super::direct::wants_close(headers)
}

impl ResponseEnd {
    fn set(&self) {
        self.ended.store(true, Ordering::Release);
        self.reader.wake();
    }
}

/// The socket under hyper, with the bytes already read (`prefix`) put
/// back in front of it. It gives hyper at most `remaining` bytes (all when
/// `None`); after them a read waits for the response's end, then reports
/// end of input. What hyper was not given stays in `prefix` or the socket.
struct OneRequest<T> {
    prefix: BytesMut,
    inner: T,
    remaining: Option<usize>,
    end: Arc<ResponseEnd>,
}

impl<T: AsyncRead + Unpin> AsyncRead for OneRequest<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let room = match this.remaining {
            None => buf.remaining(),
            Some(0) => {
                // hyper reads here to notice a client leaving, and, once the
                // response is out, for a next request: that one is not its.
                this.end.reader.register(cx.waker());
                return if this.end.ended.load(Ordering::Acquire) {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                };
            }
            Some(remaining) => remaining.min(buf.remaining()),
        };
        let got = if this.prefix.is_empty() {
            let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
            let got = limited.filled().len();
            buf.advance(got);
            ready!(polled)?;
            got
        } else {
            let got = room.min(this.prefix.len());
            buf.put_slice(&this.prefix.split_to(got));
            if this.prefix.is_empty() {
                // Give the head's buffer back now, not at the connection's end.
                this.prefix = BytesMut::new();
            }
            got
        };
        if let Some(remaining) = &mut this.remaining {
            *remaining -= got;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for OneRequest<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that tells [`ResponseEnd`] once it has no more frames.
struct EndSignal {
    inner: Body,
    end: Arc<ResponseEnd>,
}

impl http_body::Body for EndSignal {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.end.set();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            // hyper does not poll a body that says it is over.
            self.end.set();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for EndSignal {
    fn drop(&mut self) {
        // A body hyper drops unpolled (a HEAD request's, or a 304's) is over too.
        self.end.set();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use futures_util::{stream, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const A: &str = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const SLOW: &str = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";

    fn router() -> Router {
        Router::new().route("/a", get(|| async { "alpha" })).route(
            "/slow",
            get(|| async {
                let frames = stream::iter(["one ", "two ", "three"]).then(|frame| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, Infallible>(Bytes::from_static(frame.as_bytes()))
                });
                Body::from_stream(frames)
            }),
        )
    }

    fn settings(keep_alive: bool) -> HyperSettings {
        HyperSettings {
            header_read_timeout: Duration::from_secs(5),
            keep_alive,
            max_buf_size: 16 * 1024,
            max_headers: 64,
        }
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    type Back = Option<(DuplexStream, BytesMut)>;

    /// Serves from `prefix` on a socket whose client stays connected; what
    /// was written, and what `serve` handed back.
    async fn exchange(prefix: &str, length: Option<usize>, keep_alive: bool) -> (String, Back) {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let prefix = BytesMut::from(prefix.as_bytes());
        let served = serve(
            near,
            prefix,
            length,
            peer(),
            router(),
            settings(keep_alive),
            &shutdown,
        );
        let back = tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("serve returned");
        let mut written = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(1), far.read(&mut written))
            .await
            .map_or(0, Result::unwrap);
        (String::from_utf8_lossy(&written[..n]).into_owned(), back)
    }

    #[tokio::test]
    async fn the_connection_is_handed_back_after_one_complete_response() {
        let (written, back) = exchange(A, Some(A.len()), true).await;
        assert!(written.starts_with("HTTP/1.1 200 OK\r\n"), "{written}");
        assert!(written.ends_with("\r\n\r\nalpha"), "{written}");
        assert!(!written.contains("connection: close"), "{written}");
        let (_, rest) = back.expect("handed back");
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_streamed_body_is_finished_before_the_hand_back() {
        let (written, back) = exchange(SLOW, Some(SLOW.len()), true).await;
        assert!(written.contains("one "), "{written}");
        assert!(
            written.contains("three\r\n0\r\n\r\n"),
            "the whole chunked body: {written}"
        );
        assert!(back.is_some());
    }

    #[tokio::test]
    async fn hyper_gets_one_request_and_the_pipelined_rest_comes_back() {
        let pipelined = format!("{A}{SLOW}GET /a HT");
        let (written, back) = exchange(&pipelined, Some(A.len()), true).await;
        assert_eq!(written.matches("HTTP/1.1 200 OK").count(), 1, "{written}");
        let (_, rest) = back.expect("handed back");
        assert_eq!(&rest[..], format!("{SLOW}GET /a HT").as_bytes());
    }

    #[tokio::test]
    async fn a_request_still_arriving_is_read_to_its_end() {
        let (near, mut far) = tokio::io::duplex(1024);
        let shutdown = CancellationToken::new();
        let (start, rest) = A.split_at(9);
        let prefix = BytesMut::from(start.as_bytes());
        let serving = tokio::spawn(async move {
            serve(
                near,
                prefix,
                Some(A.len()),
                peer(),
                router(),
                settings(true),
                &shutdown,
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!serving.is_finished(), "the rest of the head is waited for");
        far.write_all(rest.as_bytes()).await.unwrap();
        far.write_all(b"GET /next").await.unwrap();
        let (_, unread) = serving.await.unwrap().expect("handed back");
        assert!(unread.is_empty(), "the next request is left on the socket");
        let mut written = vec![0u8; 1024];
        let n = far.read(&mut written).await.unwrap();
        assert!(String::from_utf8_lossy(&written[..n]).ends_with("alpha"));
    }

    #[tokio::test]
    async fn unknown_lengths_no_keep_alive_and_gone_clients_are_not_handed_back() {
        let (written, back) = exchange(A, Some(A.len()), false).await;
        assert!(written.contains("alpha"), "{written}");
        assert!(back.is_none(), "without keep-alive");
        for closing in [
            "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "GET /a HTTP/1.0\r\n\r\n",
        ] {
            let (written, back) = exchange(closing, Some(closing.len()), true).await;
            assert!(written.contains("alpha"), "{written}");
            assert!(back.is_none(), "{closing:?} asked to close");
        }

        // Without a length hyper keeps the connection until the client leaves.
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let prefix = BytesMut::from(format!("{A}{A}").as_bytes());
        let serving = tokio::spawn(async move {
            serve(
                near,
                prefix,
                None,
                peer(),
                router(),
                settings(true),
                &shutdown,
            )
            .await
        });
        let mut written = Vec::new();
        while String::from_utf8_lossy(&written).matches("alpha").count() < 2 {
            let mut buf = [0u8; 1024];
            let n = far.read(&mut buf).await.unwrap();
            written.extend_from_slice(&buf[..n]);
        }
        assert!(!serving.is_finished());
        drop(far);
        assert!(serving.await.unwrap().is_none());
    }
}
