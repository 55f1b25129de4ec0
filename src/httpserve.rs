//! The accept loop shared by the exporter's web server and the simulator:
//! HTTP/1.1 over hyper, a limit on open connections, a deadline for request
//! headers (slow clients cannot hold a connection forever) and graceful
//! shutdown that lets requests in flight finish.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A handler's answer; an `Err` closes the connection without a response
/// (the simulator uses it to imitate connection resets).
pub type HandlerResult = Result<Response<Chunks>, CloseConnection>;

/// A response body made of shared chunks. The metrics page is mostly text
/// encoded once per refresh; sending it as reference-counted chunks means a
/// scrape neither copies it nor allocates its size again, however many
/// scrapes run at once.
#[derive(Debug, Default, Clone)]
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    pub fn new(chunks: Vec<Bytes>) -> Self {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self {
            chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
            remaining,
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The chunks, for encoders that need to read them (gzip).
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.chunks.iter()
    }
}

impl From<Bytes> for Chunks {
    fn from(b: Bytes) -> Self {
        Chunks::new(vec![b])
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.chunks.pop_front() {
            Some(b) => {
                self.remaining -= b.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Asks the server to drop the connection instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection closed by the handler")]
pub struct CloseConnection;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections open at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_read_timeout: Duration,
    /// Time requests in flight get to finish after shutdown is asked.
    pub shutdown_grace: Duration,
    /// Longest a connection may stay open: a client that stops reading its
    /// response cannot hold a connection (and its buffers) forever.
    pub max_connection_age: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 128,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            max_connection_age: Duration::from_secs(300),
        }
    }
}

/// Serves `handler` on `listener` until `shutdown` completes, then stops
/// accepting and waits (up to the grace period) for open requests.
pub async fn serve<H, Fut>(
    listener: TcpListener,
    handler: H,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let h = handler.clone();
        let svc = service_fn(move |req| {
            let h = h.clone();
            async move { h(req, peer).await }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        let max_age = opts.max_connection_age;
        tokio::spawn(async move {
            match tokio::time::timeout(max_age, conn).await {
                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "connection ended with an error"),
                Err(_) => {
                    tracing::debug!(%peer, "connection closed: open longer than its maximum age")
                }
                Ok(Ok(())) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the shutdown grace period; closing them");
    }
}

/// A response with a body and a content type.
pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Chunks> {
    respond_chunks(status, content_type, Chunks::from(body.into()))
}

/// A response with a body in chunks and a content type.
pub fn respond_chunks(status: u16, content_type: &str, body: Chunks) -> Response<Chunks> {
    let mut r = Response::new(body);
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}
