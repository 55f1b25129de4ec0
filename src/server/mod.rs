//! Layer 7: the exporter's web interface: `/metrics`, a landing page, and health endpoints, by
//! the Prometheus exporter conventions; TLS and basic auth from
//! `--web.config.file` (see [`crate::web::config`]).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, VARY};
use hyper::{Method, Request, Response};
use tokio::net::TcpListener;

use crate::aws::ImageBuilderApi;
use crate::metrics::text::CONTENT_TYPE;
use crate::refresh::exporter::{Encoding, Exporter, SCRAPE_TIMEOUT_HEADER};
use crate::refresh::target::{Release, Standing};
use crate::web::config::WebConfig;
use crate::web::config::WebSecurity;
use crate::web::serve::{respond, respond_chunks, serve_with_tls, Chunks, TlsConfigSource};

/// Serves until `shutdown` completes; requests in flight then get the
/// grace period to finish. With a web configuration file, serves TLS
/// and/or checks basic auth, and re-reads the file as it changes. A file
/// that does not load (if not loaded before) is logged and nothing is
/// served: never serve unprotected what was meant to be protected.
pub async fn run<C: ImageBuilderApi>(
    listener: TcpListener,
    exporter: Arc<Exporter<C>>,
    mut web: WebConfig,
    shutdown: impl Future<Output = ()>,
) {
    if let Err(e) = web.load_security() {
        tracing::error!(error = %e, "not serving: invalid web configuration");
        return;
    }
    let security = web
        .security
        .clone()
        .unwrap_or_else(|| Arc::new(WebSecurity::disabled()));
    let watcher = security
        .source()
        .is_some()
        .then(|| tokio::spawn(security.clone().watch()));
    let tls: Option<TlsConfigSource> = security.tls_enabled().then(|| {
        let s = security.clone();
        Arc::new(move || s.tls_config()) as TlsConfigSource
    });
    let path: Arc<str> = Arc::from(web.telemetry_path.as_str());
    serve_with_tls(
        listener,
        move |req, peer| {
            let exporter = exporter.clone();
            let path = path.clone();
            let security = security.clone();
            async move {
                let policy = security.current();
                if let Err(refused) = security.authorize(&policy, &req, peer).await {
                    return Ok(refused);
                }
                let mut r = route(&exporter, &path, req).await;
                policy.add_headers(&mut r);
                Ok(r)
            }
        },
        web.serve,
        tls,
        shutdown,
    )
    .await;
    if let Some(w) = watcher {
        w.abort();
    }
}

async fn route<C: ImageBuilderApi>(
    exporter: &Arc<Exporter<C>>,
    telemetry_path: &str,
    req: Request<Incoming>,
) -> Response<Chunks> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = respond(
            405,
            "text/plain; charset=utf-8",
            "Method Not Allowed: use GET or HEAD\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    let mut r = if path == telemetry_path && head {
        // Headers only: no reason to refresh.
        respond(200, CONTENT_TYPE, Bytes::new())
    } else if path == telemetry_path {
        let wait = exporter.scrape_wait(
            req.headers()
                .get(SCRAPE_TIMEOUT_HEADER)
                .and_then(|v| v.to_str().ok()),
        );
        if accepts_gzip(&req) {
            let body = exporter.render_metrics_within(Encoding::Gzip, wait).await;
            let mut r = respond_chunks(200, CONTENT_TYPE, body);
            r.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r.headers_mut()
                .insert(VARY, HeaderValue::from_static("Accept-Encoding"));
            r
        } else {
            respond_chunks(
                200,
                CONTENT_TYPE,
                exporter
                    .render_metrics_within(Encoding::Identity, wait)
                    .await,
            )
        }
    } else {
        match path {
            "/" => respond(
                200,
                "text/html; charset=utf-8",
                landing(exporter, telemetry_path),
            ),
            "/-/healthy" => respond(200, "text/plain; charset=utf-8", "Healthy\n"),
            "/-/ready" if exporter.is_ready() => {
                respond(200, "text/plain; charset=utf-8", "Ready\n")
            }
            "/-/ready" => respond(503, "text/plain; charset=utf-8", not_ready(exporter)),
            _ => respond(404, "text/plain; charset=utf-8", "Not Found\n"),
        }
    };
    if head {
        // Same headers, no body.
        *r.body_mut() = Chunks::default();
    }
    r
}

/// True if the client takes gzip (Prometheus does, by default).
fn accepts_gzip(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// What `/-/ready` says while it answers 503: which targets it waits for,
/// and why.
fn not_ready<C: ImageBuilderApi>(exporter: &Exporter<C>) -> String {
    let mut out = String::from("Not ready: waiting for\n");
    if exporter.awaits_organization() {
        out.push_str(
            "- the organisation: its accounts are being listed (organizations:ListAccounts)\n",
        );
    }
    for t in exporter.targets().iter().filter(|t| t.holds_readiness()) {
        out.push_str(&format!("- {}: {}\n", t.name(), describe(&t.standing())));
    }
    out
}

/// A target's state in words: whether it is served, what failed, and
/// whether readiness waits for it.
fn describe(standing: &Standing) -> String {
    match standing {
        Standing::Starting => "starting: its first refresh runs".into(),
        Standing::Ready { trouble: None } => "ready".into(),
        Standing::Ready { trouble: Some(t) } => format!(
            "ready; its last refresh failed ({} failed reads; the last good data is served): {}",
            t.failures, t.reason
        ),
        Standing::Failing {
            trouble,
            released: Some(Release::Lasting),
        } => format!(
            "failed: {}. Retrying will not fix this, so readiness does not wait for this target (imagebuilder_up 0)",
            trouble.reason
        ),
        Standing::Failing {
            trouble,
            released: Some(Release::Waited(d)),
        } => format!(
            "failing: {}. Still failing after --readiness.max-wait ({}), so readiness no longer waits for this target; retried at each scrape",
            trouble.reason,
            crate::base::parse::format_duration(*d)
        ),
        Standing::Failing {
            trouble,
            released: Some(Release::Joined),
        } => format!(
            "failing: {}. It joined after start-up, so readiness does not wait for it; retried",
            trouble.reason
        ),
        Standing::Failing {
            trouble,
            released: None,
        } => format!(
            "failing: {}. Retried; readiness waits for this target up to --readiness.max-wait",
            trouble.reason
        ),
    }
}

fn landing<C: ImageBuilderApi>(exporter: &Exporter<C>, telemetry_path: &str) -> String {
    let mut targets = String::new();
    for t in exporter.targets().iter() {
        targets.push_str(&format!(
            "<li>{}: {}</li>",
            html_escape(t.name()),
            html_escape(&describe(&t.standing()))
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><title>Image Builder Exporter</title></head><body>\
<h1>Image Builder Exporter</h1><p>Version {}</p>\
<p><a href=\"{p}\">Metrics</a> · <a href=\"/-/healthy\">Health</a> · <a href=\"/-/ready\">Readiness</a></p>\
<h2>Targets</h2><ul>{targets}</ul></body></html>\n",
        crate::base::version::LONG,
        p = html_escape(telemetry_path),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
