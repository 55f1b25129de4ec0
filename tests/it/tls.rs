//! `--web.config.file`: TLS, mutual TLS and basic auth, checked with real
//! TLS clients (rustls under hyper) against the exporter, in-process and as
//! the binary. Certificates are made at test time with rcgen.

use crate::common;
use crate::shared::bins::EXPORTER;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shared::http::{free_port, Failure};
use base64::Engine as _;
use common::{sample_world, try_request, Harness, Running, World, T0};
use imagebuilder_exporter::web::config::{WebConfigError, WebSecurity};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::AlertDescription;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

// ---------------------------------------------------------------------------
// Certificates and files.

/// A certificate authority that issues server and client certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM).
    fn issue(&self, sans: &[&str], client: bool, valid: (i32, i32)) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            sans.first().copied().unwrap_or("client"),
        );
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params.not_before = date_time_ymd(valid.0, 1, 1);
        params.not_after = date_time_ymd(valid.1, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self) -> (String, String) {
        self.issue(&["localhost", "127.0.0.1"], false, (2020, 2090))
    }

    fn client(&self, name: &str) -> (String, String) {
        self.issue(&[name], true, (2020, 2090))
    }
}

/// A fresh directory for one test's files, removed when dropped (even when
/// the test fails).
fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ibx-tls-{name}-"))
        .tempdir()
        .unwrap()
}

fn write(dir: impl AsRef<Path>, name: &str, text: &str) -> PathBuf {
    let dir = dir.as_ref();
    let p = dir.join(name);
    // Write then rename, as config management does: a reader never sees
    // half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

/// A directory with a server certificate and key from `ca`, and `web.yml`
/// made of the TLS lines plus `extra`.
fn tls_dir(name: &str, ca: &Ca, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempdir(name);
    let (cert, key) = ca.server();
    write(&d, "server.crt", &cert);
    write(&d, "server.key", &key);
    write(&d, "ca.crt", &ca.pem);
    // Relative paths: resolved against the file's directory.
    let cfg = write(
        &d,
        "web.yml",
        &format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}"),
    );
    (d, cfg)
}

fn users_yaml(users: &[(&str, &str)]) -> String {
    let mut s = String::from("basic_auth_users:\n");
    for (u, p) in users {
        // Cost 4 keeps debug builds fast; the server accepts any cost.
        s.push_str(&format!("  {u}: {}\n", bcrypt::hash(p, 4).unwrap()));
    }
    s
}

// ---------------------------------------------------------------------------
// A TLS client.

fn client_config(
    ca_pem: &str,
    client_cert: Option<&(String, String)>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let cfg = match client_cert {
        Some((cert, key)) => b
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

fn trusting(ca: &Ca) -> Arc<ClientConfig> {
    client_config(&ca.pem, None, rustls::DEFAULT_VERSIONS)
}

type Answer = (u16, hyper::HeaderMap, String);

/// GET over a fresh TLS connection, with basic auth if given. A server that
/// neither answers nor refuses within 20 s fails the test: a hang is not a
/// refusal.
async fn https(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Result<Answer, Failure> {
    let header = auth.map(|(u, p)| {
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        format!("Basic {v}")
    });
    let headers: Vec<(&str, &str)> = header
        .iter()
        .map(|v| ("authorization", v.as_str()))
        .collect();
    let sent = crate::shared::http::send(addr, Some(cfg), "GET", path, &headers);
    let (status, headers, body) = tokio::time::timeout(Duration::from_secs(20), sent)
        .await
        .unwrap_or_else(|_| panic!("{path}: neither answered nor refused within 20 s"))?;
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// The TLS error behind a refusal (the test fails if there is none).
fn tls_error(e: &Failure) -> &rustls::Error {
    e.tls_error()
        .unwrap_or_else(|| panic!("refused, but not by TLS: {e}"))
}

/// The alert the server refused the client with.
fn alert(e: &Failure) -> AlertDescription {
    e.alert_received()
        .unwrap_or_else(|| panic!("refused, but not by an alert from the server: {e}"))
}

/// Why a request was refused, asked of the shared client's [`Failure`]
/// (only these tests refuse on purpose).
impl Failure {
    /// The TLS error behind the failure, wherever it surfaced: a refusal by
    /// this client (`InvalidCertificate`…) or an alert from the server
    /// (`AlertReceived`).
    fn tls_error(&self) -> Option<&rustls::Error> {
        let mut e: Option<&(dyn std::error::Error + 'static)> = match self {
            Failure::Request(_) => None,
            Failure::Connect(e) | Failure::TlsHandshake(e) => Some(e),
            Failure::Exchange(e) => Some(e),
        };
        while let Some(err) = e {
            if let Some(tls) = err.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            // An io::Error's `source()` skips the error it wraps: look inside.
            if let Some(tls) = err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(tls);
            }
            e = err.source();
        }
        None
    }

    /// The alert the server sent, if that is why the request failed.
    fn alert_received(&self) -> Option<rustls::AlertDescription> {
        match self.tls_error() {
            Some(rustls::Error::AlertReceived(a)) => Some(*a),
            _ => None,
        }
    }
}

fn addr(h: &Harness) -> SocketAddr {
    h.url.trim_start_matches("http://").parse().unwrap()
}

async fn start(cfg: &Path) -> Harness {
    World::new(sample_world(), T0)
        .spawn_exporter(&["--web.config.file", cfg.to_str().unwrap()])
        .await
}

/// Like [`start`], checking the file for changes every 100 ms.
async fn start_watching(cfg: &Path) -> Harness {
    let security = WebSecurity::load(cfg)
        .unwrap()
        .with_reload_interval(Duration::from_millis(100));
    World::new(sample_world(), T0)
        .spawn_exporter_with(&[], move |o| {
            o.web.security = Some(Arc::new(security));
        })
        .await
}

/// Retries `probe` until it returns true, for up to `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !probe().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// In-process.

#[tokio::test(flavor = "multi_thread")]
async fn serves_tls_to_clients_that_trust_the_ca() {
    let ca = Ca::new("Test CA");
    let (_d, cfg) = tls_dir("plain-tls", &ca, "");
    let h = start(&cfg).await;
    let (status, headers, body) = https(addr(&h), trusting(&ca), "/metrics", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(body.contains("imagebuilder_up"), "{body}");

    // TLS 1.2 works too, by default.
    let tls12 = client_config(&ca.pem, None, &[&rustls::version::TLS12]);
    let (status, _, _) = https(addr(&h), tls12, "/-/healthy", None).await.unwrap();
    assert_eq!(status, 200);

    // A client that does not trust the CA refuses the server.
    let other = Ca::new("Other CA");
    let e = https(addr(&h), trusting(&other), "/-/healthy", None)
        .await
        .unwrap_err();
    assert!(matches!(e, Failure::TlsHandshake(_)), "{e}");
    assert_eq!(
        tls_error(&e),
        &rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_http_to_the_tls_port_gets_no_metrics() {
    let ca = Ca::new("Test CA");
    let (_d, cfg) = tls_dir("plaintext", &ca, "");
    let h = start(&cfg).await;
    let (status, _, body) = try_request("GET", &format!("{}/metrics", h.url))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("HTTP request to an HTTPS server"), "{body}");
    // Raw garbage that is neither HTTP nor TLS: closed, no answer.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr(&h)).await.unwrap();
    s.write_all(b"\x00\x01\x02\x03 not tls\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (the read ends, well before the
    // header timeout): what it sent, if anything, is TLS's fatal alert
    // record (content type 21), never an HTTP answer.
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("the server closes a connection that is neither HTTP nor TLS");
    assert!(read.is_ok() || buf.is_empty(), "{read:?}");
    assert!(
        buf.is_empty() || (buf[0] == 0x15 && buf.len() == 7),
        "answered {buf:?}"
    );
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP"), "{buf:?}");
    // The server still serves TLS afterwards.
    let (status, _, _) = https(addr(&h), trusting(&ca), "/-/healthy", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_over_tls() {
    let ca = Ca::new("Test CA");
    let extra = format!(
        "{}http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        users_yaml(&[
            ("prometheus", "correct horse"),
            ("grafana", "battery staple")
        ])
    );
    let (_d, cfg) = tls_dir("basic-auth", &ca, &extra);
    let h = start(&cfg).await;
    let a = addr(&h);
    let c = trusting(&ca);

    for (what, auth) in [
        ("no credentials", None),
        ("wrong password", Some(("prometheus", "wrong"))),
        ("unknown user", Some(("root", "correct horse"))),
        (
            "another user's password",
            Some(("grafana", "correct horse")),
        ),
    ] {
        for path in ["/metrics", "/-/healthy", "/"] {
            let (status, headers, body) = https(a, c.clone(), path, auth).await.unwrap();
            assert_eq!(status, 401, "{what} {path}: {body}");
            let challenge = headers["www-authenticate"].to_str().unwrap();
            assert!(
                challenge.starts_with("Basic realm=\"imagebuilder-exporter\""),
                "{challenge}"
            );
            assert_eq!(body, "Unauthorized\n", "no details in the body");
            assert_eq!(headers["x-frame-options"], "deny", "headers on 401 too");
        }
    }
    let (status, headers, body) = https(
        a,
        c.clone(),
        "/metrics",
        Some(("prometheus", "correct horse")),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("imagebuilder_workflow_step_status"));
    assert_eq!(headers["x-frame-options"], "deny");
    // Cached now, and the other user works too.
    for _ in 0..3 {
        let (status, _, _) = https(
            a,
            c.clone(),
            "/-/healthy",
            Some(("prometheus", "correct horse")),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
    }
    let (status, _, _) = https(
        a,
        c.clone(),
        "/-/ready",
        Some(("grafana", "battery staple")),
    )
    .await
    .unwrap();
    assert_ne!(status, 401);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_requires_a_certificate_from_the_client_ca() {
    let server_ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
    let rogue_ca = Ca::new("Rogue CA");
    let (d, cfg) = tls_dir(
        "mtls",
        &server_ca,
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n",
    );
    write(&d, "clients.crt", &client_ca.pem);
    let h = start(&cfg).await;
    let a = addr(&h);
    let all = rustls::DEFAULT_VERSIONS;

    let e = https(
        a,
        client_config(&server_ca.pem, None, all),
        "/metrics",
        None,
    )
    .await
    .unwrap_err();
    // Under TLS 1.3 the client has finished its side of the handshake when
    // the server refuses it: the alert comes instead of the answer.
    assert!(matches!(e, Failure::Exchange(_)), "{e}");
    assert_eq!(alert(&e), AlertDescription::CertificateRequired, "{e}");
    let rogue = rogue_ca.client("prometheus");
    let e = https(
        a,
        client_config(&server_ca.pem, Some(&rogue), all),
        "/metrics",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(alert(&e), AlertDescription::UnknownCA, "{e}");
    // Refused under TLS 1.2 as well, where the refusal is in the handshake.
    let tls12 = [&rustls::version::TLS12];
    let e = https(a, client_config(&server_ca.pem, None, &tls12), "/", None)
        .await
        .unwrap_err();
    assert!(matches!(e, Failure::TlsHandshake(_)), "{e}");
    assert_eq!(alert(&e), AlertDescription::CertificateRequired, "{e}");
    // An expired client certificate from the right CA.
    let expired = client_ca.issue(&["prometheus"], true, (2001, 2002));
    let e = https(
        a,
        client_config(&server_ca.pem, Some(&expired), all),
        "/",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(alert(&e), AlertDescription::CertificateExpired, "{e}");

    let good = client_ca.client("prometheus");
    let (status, _, body) = https(
        a,
        client_config(&server_ca.pem, Some(&good), all),
        "/metrics",
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("imagebuilder_up"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_allowed_sans_and_optional_client_certificates() {
    let ca = Ca::new("CA");
    let all = rustls::DEFAULT_VERSIONS;
    let (d, cfg) = tls_dir(
        "sans",
        &ca,
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example.com, 10.0.0.7]\n",
    );
    let h = start(&cfg).await;
    let a = addr(&h);
    let allowed = ca.issue(&["prometheus.example.com"], true, (2020, 2090));
    let by_ip = ca.issue(&["other.example.com", "10.0.0.7"], true, (2020, 2090));
    let not_allowed = ca.issue(&["grafana.example.com"], true, (2020, 2090));
    for cert in [&allowed, &by_ip] {
        let (status, _, _) = https(
            a,
            client_config(&ca.pem, Some(cert), all),
            "/-/healthy",
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
    }
    let e = https(
        a,
        client_config(&ca.pem, Some(&not_allowed), all),
        "/-/healthy",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(alert(&e), AlertDescription::AccessDenied, "{e}");
    h.shutdown().await;

    // VerifyClientCertIfGiven: no certificate is fine, a bad one is not.
    write(
        &d,
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n",
    );
    let h = start(&cfg).await;
    let a = addr(&h);
    let (status, _, _) = https(a, client_config(&ca.pem, None, all), "/-/healthy", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let rogue = Ca::new("Rogue").client("x");
    let e = https(
        a,
        client_config(&ca.pem, Some(&rogue), all),
        "/-/healthy",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(alert(&e), AlertDescription::UnknownCA, "{e}");
    h.shutdown().await;

    // RequireAnyClientCert: any certificate, even self-made, but one.
    write(
        &d,
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n",
    );
    let h = start(&cfg).await;
    let a = addr(&h);
    let (status, _, _) = https(
        a,
        client_config(&ca.pem, Some(&rogue), all),
        "/-/healthy",
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let e = https(a, client_config(&ca.pem, None, all), "/-/healthy", None)
        .await
        .unwrap_err();
    assert_eq!(alert(&e), AlertDescription::CertificateRequired, "{e}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn min_version_tls13_refuses_tls12_clients() {
    let ca = Ca::new("CA");
    let (_d, cfg) = tls_dir(
        "tls13",
        &ca,
        "  min_version: TLS13\n  curve_preferences: [X25519, CurveP256]\n",
    );
    let h = start(&cfg).await;
    let a = addr(&h);
    let e = https(
        a,
        client_config(&ca.pem, None, &[&rustls::version::TLS12]),
        "/",
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Failure::TlsHandshake(_)), "{e}");
    assert_eq!(alert(&e), AlertDescription::ProtocolVersion, "{e}");
    let (status, _, _) = https(
        a,
        client_config(&ca.pem, None, &[&rustls::version::TLS13]),
        "/",
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cipher_suites_restrict_tls12() {
    let ca = Ca::new("CA");
    let (_d, cfg) = tls_dir(
        "ciphers",
        &ca,
        "  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305]\n",
    );
    let h = start(&cfg).await;
    let a = addr(&h);
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .retain(|s| s.suite() == rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let aes_only = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let e = https(a, aes_only, "/", None).await.unwrap_err();
    assert!(matches!(e, Failure::TlsHandshake(_)), "{e}");
    assert_eq!(alert(&e), AlertDescription::HandshakeFailure, "{e}");
    let (status, _, _) = https(a, trusting(&ca), "/", None).await.unwrap();
    assert_eq!(status, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_answers_429() {
    let d = tempdir("rate");
    // A Go duration, as in the exporter-toolkit: 2.5 minutes.
    let cfg = write(&d, "web.yml", "rate_limit:\n  interval: 2.5m\n  burst: 2\n");
    let h = start(&cfg).await;
    let url = format!("{}/-/healthy", h.url);
    assert_eq!(try_request("GET", &url).await.unwrap().0, 200);
    assert_eq!(try_request("GET", &url).await.unwrap().0, 200);
    assert_eq!(try_request("GET", &url).await.unwrap().0, 429);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_applies_new_users_and_certificates_and_keeps_the_last_good_file() {
    let ca = Ca::new("CA one");
    let (d, cfg) = tls_dir("reload", &ca, &users_yaml(&[("prometheus", "first")]));
    let h = start_watching(&cfg).await;
    let a = addr(&h);
    let (status, _, _) = https(
        a,
        trusting(&ca),
        "/-/healthy",
        Some(("prometheus", "first")),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);

    // New password: taken up without a restart; the old one stops working.
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    write(
        &d,
        "web.yml",
        &format!("{tls}{}", users_yaml(&[("prometheus", "second")])),
    );
    eventually(Duration::from_secs(10), "new password accepted", || async {
        https(
            a,
            trusting(&ca),
            "/-/healthy",
            Some(("prometheus", "second")),
        )
        .await
        .is_ok_and(|r| r.0 == 200)
    })
    .await;
    let (status, _, _) = https(
        a,
        trusting(&ca),
        "/-/healthy",
        Some(("prometheus", "first")),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);

    // A broken file: the previous configuration stays in force.
    write(
        &d,
        "web.yml",
        &format!("{tls}basic_auth_users:\n  prometheus: not-a-hash\n"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, _) = https(
        a,
        trusting(&ca),
        "/-/healthy",
        Some(("prometheus", "second")),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);

    // Turning TLS off needs a restart: refused, TLS stays on.
    write(&d, "web.yml", &users_yaml(&[("prometheus", "third")]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, _) = https(
        a,
        trusting(&ca),
        "/-/healthy",
        Some(("prometheus", "second")),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);

    // A new certificate from another CA, same file names: new handshakes use it.
    let ca2 = Ca::new("CA two");
    let (cert, key) = ca2.server();
    write(&d, "server.key", &key);
    write(&d, "server.crt", &cert);
    write(
        &d,
        "web.yml",
        &format!("{tls}{}", users_yaml(&[("prometheus", "second")])),
    );
    eventually(
        Duration::from_secs(10),
        "new certificate served",
        || async {
            https(
                a,
                trusting(&ca2),
                "/-/healthy",
                Some(("prometheus", "second")),
            )
            .await
            .is_ok_and(|r| r.0 == 200)
        },
    )
    .await;
    // The old CA no longer vouches for the server.
    let e = https(
        a,
        trusting(&ca),
        "/-/healthy",
        Some(("prometheus", "second")),
    )
    .await
    .unwrap_err();
    assert_eq!(
        tls_error(&e),
        &rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
    h.shutdown().await;
}

#[test]
fn reload_reports_what_it_did() {
    let ca = Ca::new("CA");
    let (d, cfg) = tls_dir("reload-lib", &ca, &users_yaml(&[("a", "b")]));
    let s = WebSecurity::load(&cfg).unwrap();
    assert!(s.tls_enabled());
    assert_eq!(s.current().users(), 1);
    use imagebuilder_exporter::web::config::Reloaded;
    assert_eq!(s.reload(false).unwrap(), Reloaded::Unchanged);
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    write(
        &d,
        "web.yml",
        &format!("{tls}{}", users_yaml(&[("a", "b"), ("c", "d")])),
    );
    assert_eq!(s.reload(false).unwrap(), Reloaded::Applied);
    assert_eq!(s.current().users(), 2);
    write(&d, "web.yml", "basic_auth_users: {}\n");
    let e = s.reload(false).unwrap_err();
    assert!(e.to_string().contains("needs a restart"), "{e}");
    assert!(s.current().tls());
    // A changed certificate file alone counts as a change.
    write(
        &d,
        "web.yml",
        &format!("{tls}{}", users_yaml(&[("a", "b")])),
    );
    assert_eq!(s.reload(false).unwrap(), Reloaded::Applied);
    let (cert, key) = ca.server();
    write(&d, "server.key", &key);
    write(&d, "server.crt", &cert);
    assert_eq!(s.reload(false).unwrap(), Reloaded::Applied);
    assert_eq!(s.reload(false).unwrap(), Reloaded::Unchanged);
}

// ---------------------------------------------------------------------------
// Invalid files.

/// The bad web configuration files of `tests/testdata/web/*.bad.yml`, as
/// (file name, text, what the error must say): each file opens with one
/// `# error: …` line per fragment of the message it must be refused with,
/// as in the exporter-toolkit's `testdata/*.bad.yml`. The certificates they
/// name are made at test time ([`invalid_dir`]); each file is copied beside
/// them under its own name.
fn invalid_cases() -> Vec<(String, String, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/web");
    let mut cases: Vec<(String, String, Vec<String>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bad.yml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let fragments: Vec<String> = text
                .lines()
                .map_while(|l| l.strip_prefix("# error: "))
                .map(str::to_string)
                .collect();
            assert!(!fragments.is_empty(), "{name} says no `# error: `");
            (name, text, fragments)
        })
        .collect();
    cases.sort();
    // The table is read, not empty: every case of the former code is a file.
    assert!(cases.len() >= 20, "only {} bad web configs", cases.len());
    cases
}

fn invalid_dir() -> tempfile::TempDir {
    let ca = Ca::new("CA");
    let d = tempdir("invalid");
    let (cert, key) = ca.server();
    write(&d, "server.crt", &cert);
    write(&d, "server.key", &key);
    let (cert, key) = ca.issue(&["localhost"], false, (2001, 2002));
    write(&d, "expired.crt", &cert);
    write(&d, "expired.key", &key);
    let (cert, key) = ca.issue(&["localhost"], false, (2080, 2090));
    write(&d, "future.crt", &cert);
    write(&d, "future.key", &key);
    write(&d, "other.key", &ca.server().1);
    write(&d, "ca.crt", &ca.pem);
    d
}

#[test]
fn invalid_files_are_refused_with_the_file_field_and_reason() {
    let d = invalid_dir();
    for (name, yaml, fragments) in invalid_cases() {
        let cfg = write(&d, &name, &yaml);
        let e: WebConfigError = WebSecurity::load(&cfg).map(|_| ()).unwrap_err();
        let text = e.to_string();
        eprintln!("{name}: {text}");
        assert!(text.contains(&cfg.display().to_string()), "{name}: {text}");
        for f in &fragments {
            assert!(text.contains(f.as_str()), "{name}: {text:?} lacks {f:?}");
        }
        assert!(!text.contains("s3cr3t-in-clear"), "{name}: {text}");
        assert!(!text.contains("PRIVATE KEY-----"), "{name}: {text}");
    }
    let missing = d.path().join("no-such-web.yml");
    let e = WebSecurity::load(&missing).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("no-such-web.yml") && e.to_string().contains("cannot read"));
}

#[test]
fn the_binary_exits_2_and_says_why() {
    let d = invalid_dir();
    for (name, yaml, fragments) in invalid_cases() {
        let cfg = write(&d, &name, &yaml);
        let out = Command::new(EXPORTER)
            .args([
                "--demo",
                "--web.listen-address",
                "127.0.0.1:0",
                "--web.config.file",
                cfg.to_str().unwrap(),
            ])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("--web.config.file"), "{name}: {err}");
        for f in &fragments {
            assert!(err.contains(f.as_str()), "{name}: {err:?} lacks {f:?}");
        }
        assert!(!err.contains("s3cr3t-in-clear"), "{name}: {err}");
    }
}

// ---------------------------------------------------------------------------
// The binary: SIGHUP and secrets.

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_reloads_on_sighup_and_never_logs_secrets() {
    let ca = Ca::new("CA");
    let (d, cfg) = tls_dir(
        "binary",
        &ca,
        &users_yaml(&[("prometheus", "first-Secret-pw")]),
    );
    let port = free_port();
    let child = Command::new(EXPORTER)
        .args([
            "--demo",
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--web.config.file",
            cfg.to_str().unwrap(),
            "--log.level",
            "debug",
        ])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut child = Running(child);
    let a: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let c = trusting(&ca);
    eventually(Duration::from_secs(60), "serving TLS", || async {
        https(
            a,
            c.clone(),
            "/-/healthy",
            Some(("prometheus", "first-Secret-pw")),
        )
        .await
        .is_ok_and(|r| r.0 == 200)
    })
    .await;
    let (status, headers, _) = https(
        a,
        c.clone(),
        "/metrics",
        Some(("prometheus", "Wrong-Secret-pw")),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, body) = https(
        a,
        c.clone(),
        "/metrics",
        Some(("prometheus", "first-Secret-pw")),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("imagebuilder_exporter_build_info"));

    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let new_users = users_yaml(&[("prometheus", "second-Secret-pw")]);
    write(&d, "web.yml", &format!("{tls}{new_users}"));
    signal(&child.0, "-HUP");
    eventually(
        Duration::from_secs(10),
        "new password after SIGHUP",
        || async {
            https(
                a,
                c.clone(),
                "/-/healthy",
                Some(("prometheus", "second-Secret-pw")),
            )
            .await
            .is_ok_and(|r| r.0 == 200)
        },
    )
    .await;
    let (status, _, _) = https(
        a,
        c.clone(),
        "/-/healthy",
        Some(("prometheus", "first-Secret-pw")),
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    // A broken file on SIGHUP: logged, previous configuration kept.
    write(&d, "web.yml", &format!("{tls}  min_version: TLS11\n"));
    signal(&child.0, "-HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, _) = https(
        a,
        c.clone(),
        "/-/healthy",
        Some(("prometheus", "second-Secret-pw")),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);

    signal(&child.0, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut logs = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("web configuration loaded"), "{logs}");
    assert!(logs.contains("web configuration reloaded"), "{logs}");
    assert!(logs.contains("TLS11"), "the bad reload is logged: {logs}");
    assert!(logs.contains("basic authentication failed"), "{logs}");
    let b64 =
        |u: &str, p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
    for secret in [
        "first-Secret-pw".to_string(),
        "second-Secret-pw".into(),
        "Wrong-Secret-pw".into(),
        b64("prometheus", "first-Secret-pw"),
        b64("prometheus", "Wrong-Secret-pw"),
        b64("prometheus", "second-Secret-pw"),
        "$2b$04$".into(),
        "demo-secret".into(),
        "PRIVATE KEY".into(),
    ] {
        assert!(
            !logs.contains(&secret),
            "{secret} appears in the logs:\n{logs}"
        );
    }
}
