//! The one HTTP client of the tests, over plain TCP or TLS, and the one
//! `free_port`: [`send`] with every detail, [`try_request`] for the plain
//! requests most tests make.
//!
//! Every request takes a fresh connection, so that each test sees the
//! server's answer to exactly that request (no pooled connection left over
//! from another). A failure keeps its cause, so that a test can assert why a
//! TLS handshake was refused (see [`Failure::tls_error`]) rather than only
//! that it was.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An answer: status, headers and body.
pub type Answer = (u16, hyper::HeaderMap, Bytes);

/// Why a request got no answer, at the step where it failed.
#[derive(Debug)]
pub enum Failure {
    /// The URL or request could not be built.
    Request(String),
    Connect(std::io::Error),
    /// The TLS handshake, as the client saw it.
    TlsHandshake(std::io::Error),
    /// Sending the request or reading the answer (with TLS 1.3, a server
    /// that refuses the client's certificate says so here, after the
    /// client's side of the handshake is done).
    Exchange(hyper::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Request(e) => write!(f, "request: {e}"),
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::TlsHandshake(e) => write!(f, "TLS handshake: {e}"),
            Failure::Exchange(e) => write!(f, "exchange: {e}"),
        }
    }
}

/// Sends `method path` to `addr` over a fresh connection, TLS if `tls` is
/// given (the server is then expected to be `localhost`), with `headers`.
pub async fn send(
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, Failure> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(Failure::Connect)?;
    let host = match tls {
        Some(_) => "localhost".to_string(),
        None => addr.to_string(),
    };
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failure::Request(e.to_string()))?;
    match tls {
        None => exchange(tcp, req).await,
        Some(cfg) => {
            let name = ServerName::try_from("localhost").expect("a valid name");
            let stream = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .map_err(Failure::TlsHandshake)?;
            exchange(stream, req).await
        }
    }
}

/// One HTTP/1.1 request and its answer over `io`.
async fn exchange<S>(io: S, req: Request<Empty<Bytes>>) -> Result<Answer, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(Failure::Exchange)?;
    let conn = tokio::spawn(conn);
    let answer = async {
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, headers, body))
    };
    match answer.await {
        Ok(a) => Ok(a),
        // The request is only "canceled" when the connection failed under
        // it: the connection's own error says why (a TLS alert, say).
        Err(e) if e.is_canceled() => match conn.await {
            Ok(Err(why)) => Err(Failure::Exchange(why)),
            _ => Err(Failure::Exchange(e)),
        },
        Err(e) => Err(Failure::Exchange(e)),
    }
}

/// A request over a fresh connection: (status, headers, body), or why
/// there was no answer (connection refused…).
pub async fn try_request(
    method: &str,
    url: &str,
) -> Result<(u16, hyper::HeaderMap, String), String> {
    let (status, headers, body) = raw_request(method, url, &[]).await?;
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// A request with extra headers; the body as bytes.
pub async fn raw_request(
    method: &str,
    url: &str,
    extra: &[(&str, &str)],
) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let authority = uri.authority().ok_or("no authority")?.as_str();
    let addr: SocketAddr = authority.parse().map_err(|e| format!("{e}"))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    send(addr, None, method, path, extra)
        .await
        .map_err(|e| e.to_string())
}
