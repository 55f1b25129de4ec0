//! `tls_server_config` to a rustls [`ServerConfig`], with the aws-lc-rs
//! provider the AWS SDK already uses.
//!
//! Names follow Go's `crypto/tls`, as the exporter-toolkit's do. What rustls
//! cannot do (TLS 1.0/1.1, CBC or RSA key-exchange suites, P-521) is refused
//! with a message that says so, never silently dropped. The name parsers
//! return a [`TlsNameError`]; the loader, which knows the field, makes it a
//! [`WebConfigError`].

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CipherSuite, DigitallySignedStruct, DistinguishedName, Error, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};

use super::{x509, WebConfigError};

/// `client_auth_type`, as Go's `tls.ClientAuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub(crate) const NAMES: &'static str = "NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert";

    pub(crate) fn parse(s: &str) -> Option<ClientAuth> {
        Some(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // The toolkit keeps the old name for backwards compatibility.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether client certificates are checked against `client_ca_file`.
    pub(crate) fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }

    /// Whether a client must present a certificate.
    pub(crate) fn requires(self) -> bool {
        matches!(
            self,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A TLS version of `min_version`/`max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TlsVersion {
    Tls12,
    Tls13,
}

/// A Go name of a TLS version, cipher suite or curve that cannot be used:
/// unknown, or known but not implemented by rustls (said so, with what to
/// use instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TlsNameError {
    #[error("{0} is not supported: the TLS library (rustls) implements only TLS 1.2 and 1.3, as TLS 1.0 and 1.1 are deprecated (RFC 8996); use TLS12 or TLS13")]
    OldVersion(String),
    #[error("unknown TLS version {0:?}: use TLS12 or TLS13")]
    UnknownVersion(String),
    #[error("{name} is not supported: rustls implements only AEAD suites with forward secrecy (supported: {})", supported_suite_names())]
    WeakSuite { name: String },
    #[error(
        "unknown cipher suite {name:?} (supported: {})",
        supported_suite_names()
    )]
    UnknownSuite { name: String },
    #[error(
        "CurveP521 is not supported by rustls: use CurveP256, CurveP384, X25519 or X25519MLKEM768"
    )]
    CurveP521,
    #[error("unknown curve {0:?}: use CurveP256, CurveP384, X25519 or X25519MLKEM768")]
    UnknownCurve(String),
}

/// Parses `TLS12`/`TLS13`; `TLS10`/`TLS11` are refused with the reason.
pub(crate) fn parse_version(s: &str) -> Result<TlsVersion, TlsNameError> {
    match s {
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        "TLS10" | "TLS11" => Err(TlsNameError::OldVersion(s.to_string())),
        _ => Err(TlsNameError::UnknownVersion(s.to_string())),
    }
}

/// Go's names of the suites rustls implements (TLS 1.3 first, then 1.2).
/// Go also accepts the ChaCha20 TLS 1.2 suites without `_SHA256`.
const SUITES: &[(&str, CipherSuite)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Suites Go knows but rustls deliberately does not implement.
const GO_ONLY_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

fn supported_suite_names() -> String {
    SUITES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps `cipher_suites` to rustls suites, in the given order.
pub(crate) fn parse_cipher_suites(names: &[String]) -> Result<Vec<CipherSuite>, TlsNameError> {
    let mut out = Vec::new();
    for name in names {
        match SUITES.iter().find(|(n, _)| n == name) {
            Some((_, s)) => {
                if !out.contains(s) {
                    out.push(*s);
                }
            }
            None if GO_ONLY_SUITES.contains(&name.as_str()) => {
                return Err(TlsNameError::WeakSuite { name: name.clone() })
            }
            None => return Err(TlsNameError::UnknownSuite { name: name.clone() }),
        }
    }
    Ok(out)
}

/// Maps `curve_preferences` (Go's `tls.CurveID` names) to key exchange
/// groups of the provider, in the given order.
pub(crate) fn parse_curves(
    names: &[String],
) -> Result<Vec<&'static dyn SupportedKxGroup>, TlsNameError> {
    use rustls::crypto::aws_lc_rs::kx_group;
    let mut out: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for name in names {
        let g: &'static dyn SupportedKxGroup = match name.as_str() {
            "CurveP256" => kx_group::SECP256R1,
            "CurveP384" => kx_group::SECP384R1,
            "X25519" => kx_group::X25519,
            "X25519MLKEM768" => kx_group::X25519MLKEM768,
            "CurveP521" => return Err(TlsNameError::CurveP521),
            _ => return Err(TlsNameError::UnknownCurve(name.clone())),
        };
        if !out.iter().any(|o| o.name() == g.name()) {
            out.push(g);
        }
    }
    Ok(out)
}

/// Everything needed to build a server config, read and checked.
pub(crate) struct TlsSettings {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: rustls::pki_types::PrivateKeyDer<'static>,
    /// Where the key came from, to blame it when it does not fit.
    pub(crate) key_field: String,
    pub(crate) client_auth: ClientAuth,
    pub(crate) client_cas: Option<RootCertStore>,
    pub(crate) allowed_sans: Option<Vec<String>>,
    pub(crate) min_version: TlsVersion,
    pub(crate) max_version: TlsVersion,
    pub(crate) cipher_suites: Vec<CipherSuite>,
    pub(crate) curves: Vec<&'static dyn SupportedKxGroup>,
    pub(crate) prefer_server_cipher_suites: bool,
}

/// The provider restricted to the configured suites and curves. For each
/// TLS version, listed suites restrict that version; a version with none
/// listed keeps its defaults (as Go does for TLS 1.3, whose suites it does
/// not let you choose).
fn provider(s: &TlsSettings) -> CryptoProvider {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if !s.cipher_suites.is_empty() {
        let listed = |v: &SupportedProtocolVersion| {
            s.cipher_suites.iter().any(|c| {
                p.cipher_suites
                    .iter()
                    .any(|x| x.suite() == *c && x.version() == v)
            })
        };
        let restrict12 = listed(&rustls::version::TLS12);
        let restrict13 = listed(&rustls::version::TLS13);
        let mut suites: Vec<SupportedCipherSuite> = Vec::new();
        // Listed suites first, in the listed order (the server's preference).
        for c in &s.cipher_suites {
            if let Some(x) = p.cipher_suites.iter().find(|x| x.suite() == *c) {
                suites.push(*x);
            }
        }
        for x in &p.cipher_suites {
            let restricted = if x.version() == &rustls::version::TLS12 {
                restrict12
            } else {
                restrict13
            };
            if !restricted && !suites.contains(x) {
                suites.push(*x);
            }
        }
        p.cipher_suites = suites;
    }
    if !s.curves.is_empty() {
        p.kx_groups = s.curves.clone();
    }
    p
}

/// Builds the server config: checks that the key matches the certificate,
/// and sets up client certificate verification.
pub(crate) fn build(s: TlsSettings) -> Result<Arc<ServerConfig>, WebConfigError> {
    let provider = Arc::new(provider(&s));
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (s.min_version..=s.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let key_field = s.key_field;
    let certified = CertifiedKey::from_der(s.chain, s.key, &provider).map_err(|e| match e {
        Error::InconsistentKeys(_) => WebConfigError::at(
            &key_field,
            "the private key does not belong to the certificate in cert_file",
        ),
        e => WebConfigError::at(&key_field, format!("cannot use the private key: {e}")),
    })?;
    let verifier = client_verifier(
        s.client_auth,
        s.client_cas,
        s.allowed_sans,
        provider.clone(),
    )?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            WebConfigError::at(
                "tls_server_config.cipher_suites",
                format!("no cipher suite left for the TLS versions allowed: {e}"),
            )
        })?;
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    // HTTP/1.1 only: a client that insists on h2 is told so in the handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = s.prefer_server_cipher_suites;
    Ok(Arc::new(config))
}

fn client_verifier(
    auth: ClientAuth,
    cas: Option<RootCertStore>,
    allowed_sans: Option<Vec<String>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    let hints: Vec<DistinguishedName> = cas.as_ref().map(|r| r.subjects()).unwrap_or_default();
    let inner: Arc<dyn ClientCertVerifier> = match auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                hints,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let roots = cas.ok_or_else(|| {
                WebConfigError::at(
                    "tls_server_config.client_ca_file",
                    format!("client_auth_type {auth} needs client_ca_file (or client_ca)"),
                )
            })?;
            let mut b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if auth == ClientAuth::VerifyClientCertIfGiven {
                b = b.allow_unauthenticated();
            }
            b.build().map_err(|e| {
                WebConfigError::at(
                    "tls_server_config.client_ca_file",
                    format!("cannot verify clients with it: {e}"),
                )
            })?
        }
    };
    Ok(match allowed_sans {
        Some(allowed) => Arc::new(AllowedSans { inner, allowed }),
        None => inner,
    })
}

/// `RequestClientCert` / `RequireAnyClientCert`: a certificate is asked for
/// (or required) but not checked against a CA, as in Go. The client must
/// still prove it holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // Well-formed, at least.
        ParsedCertificate::try_from(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier accepts a certificate,
/// one of its SANs must equal one of the list (Go's semantics: exact match
/// on DNS names, e-mail addresses, IP addresses and URIs).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let info = x509::parse(end_entity)
            .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        if info.sans.iter().any(|s| self.allowed.contains(s)) {
            Ok(ok)
        } else {
            Err(Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("TLS12"), Ok(TlsVersion::Tls12));
        assert_eq!(parse_version("TLS13"), Ok(TlsVersion::Tls13));
        let e = parse_version("TLS10").unwrap_err().to_string();
        assert!(
            e.contains("TLS10") && e.contains("only TLS 1.2 and 1.3"),
            "{e}"
        );
        assert!(parse_version("tls13")
            .unwrap_err()
            .to_string()
            .contains("unknown"));
    }

    #[test]
    fn suites_and_curves_by_go_names() {
        let s = parse_cipher_suites(&[
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into(),
            "TLS_AES_128_GCM_SHA256".into(),
        ])
        .unwrap();
        assert_eq!(
            s,
            vec![
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS13_AES_128_GCM_SHA256
            ]
        );
        // Every name in the table is one the provider has.
        let p = rustls::crypto::aws_lc_rs::default_provider();
        for (name, suite) in SUITES {
            assert!(
                p.cipher_suites.iter().any(|x| x.suite() == *suite),
                "{name}"
            );
        }
        let e = parse_cipher_suites(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not supported"), "{e}");
        let e = parse_cipher_suites(&["TLS_MADE_UP".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown cipher suite \"TLS_MADE_UP\""), "{e}");

        let c = parse_curves(&["X25519".into(), "CurveP256".into()]).unwrap();
        assert_eq!(c.len(), 2);
        assert!(parse_curves(&["CurveP521".into()])
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        assert!(parse_curves(&["P-256".into()])
            .unwrap_err()
            .to_string()
            .contains("unknown curve"));
    }

    #[test]
    fn client_auth_names() {
        assert_eq!(ClientAuth::parse(""), Some(ClientAuth::NoClientCert));
        assert_eq!(
            ClientAuth::parse("RequireClientCert"),
            Some(ClientAuth::RequireAnyClientCert)
        );
        assert_eq!(ClientAuth::parse("requireandverifyclientcert"), None);
        assert!(ClientAuth::RequireAndVerifyClientCert.verifies());
        assert!(!ClientAuth::RequestClientCert.requires());
    }
}
