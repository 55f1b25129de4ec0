//! The accept loop of the exporter's web server: HTTP/1.1 over hyper,
//! optionally over TLS (rustls), a limit on open connections that closes an
//! idle one for a new client rather than make it wait (see
//! [`connections`]), a deadline for the TLS handshake and the request
//! headers (slow clients cannot hold a connection forever) and graceful
//! shutdown that lets requests in flight finish.

mod connections;

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
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use self::connections::{Admitted, Connections};
use crate::base::loglimit::LogLimiter;

/// A handler's answer; an `Err` closes the connection without a response.
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

/// Chunks shorter than this are copied together into one of up to
/// [`JOINED`] bytes. A plain-text page of hundreds of targets is tens of
/// thousands of small pieces (a family's rows of one target); sent one by
/// one, each costs a body frame and an I/O vector, which cost more than
/// copying them.
const SMALL: usize = 16 * 1024;
const JOINED: usize = 64 * 1024;

impl Chunks {
    pub fn new(chunks: Vec<Bytes>) -> Self {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        let mut out = VecDeque::with_capacity(chunks.len().min(1024));
        let mut joined: Vec<u8> = Vec::new();
        for c in chunks.into_iter().filter(|c| !c.is_empty()) {
            if c.len() >= SMALL {
                if !joined.is_empty() {
                    out.push_back(Bytes::from(std::mem::take(&mut joined)));
                }
                out.push_back(c);
                continue;
            }
            if joined.len() + c.len() > JOINED {
                out.push_back(Bytes::from(std::mem::take(&mut joined)));
            }
            if joined.is_empty() {
                joined.reserve(JOINED);
            }
            joined.extend_from_slice(&c);
        }
        if !joined.is_empty() {
            out.push_back(Bytes::from(joined));
        }
        Self {
            chunks: out,
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

    /// The chunks in the order they are sent.
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

/// A response body on the wire: the connection counts as answering a
/// request (not idle, never closed to make room) until hyper has taken the
/// last chunk and drops it.
struct Answer {
    body: Chunks,
    _busy: connections::Busy,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Asks the server to drop the connection instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection closed by the handler")]
pub struct CloseConnection;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections open at once. When all are open, a new one takes the
    /// place of an idle one (see [`connections`]); only when every one is
    /// answering a request do new ones wait in the listen backlog.
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

/// Where a TLS listener gets its configuration: asked at each new
/// connection, so that a reloaded certificate applies from the next
/// handshake on. `None` closes the connection.
pub type TlsConfigSource = Arc<dyn Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync>;

/// Serves `handler` on `listener` until `shutdown` completes, then stops
/// accepting and waits (up to the grace period) for open requests. With
/// `tls`, every connection is TLS. The handshake runs
/// on the connection's own task, within the header read timeout, so a slow
/// or silent client never holds up accepting. A plaintext HTTP request to
/// the TLS port is answered with a 400 that says so, and closed.
pub async fn serve_with_tls<H, Fut>(
    listener: TcpListener,
    handler: H,
    opts: ServeOptions,
    tls: Option<TlsConfigSource>,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let connections = Connections::new(opts.max_connections);
    let handshake_failures = Arc::new(LogLimiter::new(64));
    let sheds = LogLimiter::new(4);
    tokio::pin!(shutdown);
    loop {
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
        // Checked once the connection is here (before, its slot could have
        // turned busy while accept waited): with every connection answering
        // a request, this one waits, as those behind it wait in the backlog.
        tokio::select! {
            () = connections.room() => {}
            () = &mut shutdown => break,
        }
        let _ = stream.set_nodelay(true);
        let (admitted, shed) = connections.admit(peer.ip());
        let full = shed.is_some();
        if let Some(shed) = shed {
            tracing::debug!(address = %shed.address, held = shed.held, "server full: closed an idle connection for a new one");
            // Worth knowing (a client holding connections without sending
            // requests, or --web.max-connections too low), not at every one.
            if sheds.allow("shed", Some(SHED_LOG_EVERY)) {
                tracing::warn!(address = %shed.address, held = shed.held, max_connections = opts.max_connections, "server full: closing the oldest idle connection of the client address holding the most, so that new clients are served (repeats within five minutes are logged at debug)");
            }
        }
        let conn = Conn {
            handler: handler.clone(),
            peer,
            opts: opts.clone(),
            watcher: graceful.watcher(),
            admitted: Arc::new(admitted),
        };
        let source = tls.clone();
        let failures = handshake_failures.clone();
        tokio::spawn(async move {
            let admitted = conn.admitted.clone();
            let served = async move {
                match source {
                    None => conn.serve(TokioIo::new(stream)).await,
                    Some(source) => {
                        let timeout = conn.opts.header_read_timeout;
                        let accepted = tokio::time::timeout(
                            timeout,
                            accept_tls(stream, &source, peer, &failures),
                        )
                        .await;
                        match accepted {
                            Ok(Some(tls_stream)) => conn.serve(TokioIo::new(tls_stream)).await,
                            Ok(None) => {}
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            };
            // Closed (the future dropped) when its slot is needed; a
            // connection answering a request is never chosen.
            tokio::select! {
                () = served => {}
                () = admitted.shed() => tracing::debug!(%peer, "idle connection closed to make room"),
            }
        });
        if full {
            // Full: let the new connection read its request (and so turn
            // busy) before another is accepted and could take its place.
            // Accepting without yielding would admit a whole burst first.
            tokio::task::yield_now().await;
        }
    }
    drop(listener);
    if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open after the shutdown grace period; closing them");
    }
}

/// How often the server says (at warn) that it closes idle connections to
/// make room.
const SHED_LOG_EVERY: Duration = Duration::from_secs(300);

/// One accepted connection, before its transport is ready.
struct Conn<H> {
    handler: H,
    peer: SocketAddr,
    opts: ServeOptions,
    watcher: Watcher,
    /// Its slot among the open connections, released when the last clone
    /// drops.
    admitted: Arc<Admitted>,
}

impl<H, Fut> Conn<H>
where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    /// Serves HTTP/1.1 on `io` until the client leaves, the connection gets
    /// too old, or shutdown.
    async fn serve<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let h = self.handler;
        let admitted = self.admitted;
        let svc = service_fn(move |req| {
            let h = h.clone();
            // Busy from the request's headers until its body is sent.
            let busy = admitted.request();
            async move {
                h(req, peer)
                    .await
                    .map(|r| r.map(|body| Answer { body, _busy: busy }))
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.opts.header_read_timeout)
            .keep_alive(true)
            .serve_connection(io, svc);
        let conn = self.watcher.watch(conn);
        match tokio::time::timeout(self.opts.max_connection_age, conn).await {
            Ok(Err(e)) => tracing::debug!(error = %e, %peer, "connection ended with an error"),
            Err(_) => {
                tracing::debug!(%peer, "connection closed: open longer than its maximum age")
            }
            Ok(Ok(())) => {}
        }
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Runs the TLS handshake; `None` if the connection is to be dropped.
async fn accept_tls(
    stream: TcpStream,
    source: &TlsConfigSource,
    peer: SocketAddr,
    failures: &LogLimiter,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => {}
        _ => return None,
    }
    if first[0] != TLS_HANDSHAKE && first[0].is_ascii_alphabetic() {
        // `GET / HTTP/1.1` and the like: say what is wrong, as Go does.
        tracing::debug!(%peer, "plaintext HTTP request on the TLS port refused");
        refuse_plaintext(stream).await;
        return None;
    }
    let config = source()?;
    match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
        Ok(s) => Some(s),
        Err(e) => {
            let error = e.to_string();
            tracing::debug!(%peer, %error, "TLS handshake failed");
            // Once a minute per kind of failure at info, so that a client
            // refused for its certificate shows in the default logs without
            // a scanner flooding them.
            if failures.allow(&error, Some(Duration::from_secs(60))) {
                tracing::info!(%peer, %error, "TLS handshake failed (repeats of this error within a minute are logged at debug)");
            }
            None
        }
    }
}

/// Answers a plaintext request on the TLS port with a 400, then closes
/// gently: reading what the client sent first avoids a reset that could
/// discard the answer before the client reads it.
async fn refuse_plaintext(mut stream: TcpStream) {
    const ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
    let mut buf = [0u8; 4096];
    // Up to the end of the request headers, 64 KiB or a second.
    let headers = async {
        let mut seen: Vec<u8> = Vec::new();
        while seen.len() < 65_536 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), headers).await;
    let answer = async {
        let _ = stream.write_all(ANSWER).await;
        let _ = stream.shutdown().await;
        // Let the client read the answer and close first.
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_chunks_are_joined_large_ones_shared_and_the_order_kept() {
        let large = Bytes::from(vec![b'L'; SMALL]);
        let mut parts: Vec<Bytes> = (0..3000u32)
            .map(|i| Bytes::from(format!("piece {i}\n")))
            .collect();
        parts.insert(1500, large.clone());
        parts.insert(10, Bytes::new());
        let whole: Vec<u8> = parts.concat();
        let c = Chunks::new(parts);
        assert_eq!(c.len(), whole.len() as u64);
        let sent: Vec<&Bytes> = c.iter().collect();
        assert_eq!(
            sent.iter().map(|b| &b[..]).collect::<Vec<_>>().concat(),
            whole
        );
        // 3,000 pieces of about 10 bytes, around one large chunk: a few
        // joined buffers, none over the limit, and the large one not copied.
        assert!(sent.len() <= 4, "{} chunks", sent.len());
        assert!(sent.iter().all(|b| b.len() <= JOINED || b.len() == SMALL));
        assert!(sent.iter().any(|b| b.as_ptr() == large.as_ptr()));
    }
}
