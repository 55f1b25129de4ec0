//! Loading `tls_server_config`, one seam at a time: whether TLS is asked
//! for, the server certificate and its dates, the private key, client
//! authentication (type, CAs, allowed SANs), and versions, suites and
//! curves. Each step checks one group of fields and names the field it
//! refuses; [`crate::web::config::tls`] then builds the rustls configuration.
//!
//! Files are read before anything is parsed, in the order the toolkit names
//! them, so that the digest covers them whatever fails later.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};

use super::{Loader, TlsFile};
use crate::web::config::tls::{self as rustls_config, ClientAuth, TlsSettings, TlsVersion};
use crate::web::config::{x509, Summary, WebConfigError};

/// PEM text, and where it came from for messages: the field, and the file
/// when it was read from one.
struct Pem {
    bytes: Vec<u8>,
    field: String,
}

impl Loader<'_> {
    /// `tls_server_config` to a server configuration; `None` when the
    /// section asks for no TLS.
    pub(super) fn tls(
        &mut self,
        t: TlsFile,
        summary: &mut Summary,
    ) -> Result<Option<Arc<ServerConfig>>, WebConfigError> {
        if !tls_requested(&t)? {
            return Ok(None);
        }
        let cert = self.required_pem(t.cert, t.cert_file, "cert", "cert_file")?;
        let key = self.required_pem(t.key, t.key_file, "key", "key_file")?;
        let chain = self.server_certificate(&cert, summary)?;
        let key_der = private_key(&key)?;
        let client_auth = client_auth_type(t.client_auth_type.unwrap_or_default())?;
        summary.client_auth = Some(client_auth);
        let client_cas = self.client_cas(t.client_ca, t.client_ca_file, client_auth)?;
        let allowed_sans = allowed_sans(t.client_allowed_sans, client_auth)?;
        let (min_version, max_version) = versions(t.min_version, t.max_version)?;
        let cipher_suites = rustls_config::parse_cipher_suites(
            &t.cipher_suites.unwrap_or_default(),
        )
        .map_err(|e| WebConfigError::at("tls_server_config.cipher_suites", e.to_string()))?;
        let curves = rustls_config::parse_curves(&t.curve_preferences.unwrap_or_default())
            .map_err(|e| {
                WebConfigError::at("tls_server_config.curve_preferences", e.to_string())
            })?;
        let config = rustls_config::build(TlsSettings {
            chain,
            key: key_der,
            key_field: key.field,
            client_auth,
            client_cas,
            allowed_sans,
            min_version,
            max_version,
            cipher_suites,
            curves,
            prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
        })?;
        Ok(Some(config))
    }

    /// Inline PEM (`inline_name`) or a file (`file_name`), at most one.
    fn pem_source(
        &mut self,
        inline: Option<String>,
        file: Option<String>,
        inline_name: &str,
        file_name: &str,
    ) -> Result<Option<Pem>, WebConfigError> {
        let inline = inline.filter(|s| !s.is_empty());
        let file = file.filter(|s| !s.is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(WebConfigError::at(
                format!("tls_server_config.{inline_name}"),
                format!("{inline_name} and {file_name} are both set: use one"),
            )),
            (Some(text), None) => Ok(Some(Pem {
                bytes: text.into_bytes(),
                field: format!("tls_server_config.{inline_name}"),
            })),
            (None, Some(f)) => {
                let p = self.dir.join(&f);
                let field = format!("tls_server_config.{file_name}");
                let bytes = self.read(&p).map_err(|e| {
                    WebConfigError::at(&field, format!("cannot read {}: {e}", p.display()))
                })?;
                Ok(Some(Pem {
                    bytes,
                    field: format!("{field} ({})", p.display()),
                }))
            }
            (None, None) => Ok(None),
        }
    }

    /// [`Loader::pem_source`] for what TLS cannot do without.
    fn required_pem(
        &mut self,
        inline: Option<String>,
        file: Option<String>,
        inline_name: &str,
        file_name: &str,
    ) -> Result<Pem, WebConfigError> {
        self.pem_source(inline, file, inline_name, file_name)?
            .ok_or_else(|| {
                WebConfigError::at(
                    "tls_server_config",
                    format!("missing one of {inline_name} or {file_name}"),
                )
            })
    }

    /// The certificate chain, its leaf readable and valid now. An expired
    /// certificate is refused here, with its dates, rather than left to
    /// every client to refuse.
    fn server_certificate(
        &self,
        pem: &Pem,
        summary: &mut Summary,
    ) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
        let refuse = |why: String| WebConfigError::at(&pem.field, why);
        let chain = CertificateDer::pem_slice_iter(&pem.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refuse(format!("not valid PEM: {e}")))?;
        let Some(leaf) = chain.first() else {
            return Err(refuse("no PEM CERTIFICATE block found".into()));
        };
        // Read as clients will read it (webpki: strict DER), then for its
        // dates (x509-parser): both must accept it.
        let unreadable =
            |e: &dyn std::fmt::Display| refuse(format!("cannot read the certificate ({e})"));
        rustls::server::ParsedCertificate::try_from(leaf).map_err(|e| unreadable(&e))?;
        let info = x509::parse(leaf).map_err(|e| unreadable(&e))?;
        if self.now < info.not_before {
            return Err(refuse(format!(
                "the certificate is not valid yet: valid from {} to {}",
                x509::format_time(info.not_before),
                x509::format_time(info.not_after)
            )));
        }
        if self.now > info.not_after {
            return Err(refuse(format!(
                "the certificate expired on {}",
                x509::format_time(info.not_after)
            )));
        }
        summary.cert_not_after = Some(info.not_after);
        Ok(chain)
    }

    /// `client_ca`/`client_ca_file`: the roots client certificates are
    /// checked against, only with a `client_auth_type` that asks for a
    /// certificate, and required by the two that verify one.
    fn client_cas(
        &mut self,
        inline: Option<String>,
        file: Option<String>,
        client_auth: ClientAuth,
    ) -> Result<Option<RootCertStore>, WebConfigError> {
        let client_cas = match self.pem_source(inline, file, "client_ca", "client_ca_file")? {
            None => None,
            Some(pem) => {
                if client_auth == ClientAuth::NoClientCert {
                    return Err(WebConfigError::at(
                        pem.field,
                        "a client CA is set but client_auth_type is NoClientCert: set client_auth_type (RequireAndVerifyClientCert to require verified client certificates) or remove the CA",
                    ));
                }
                let certs = CertificateDer::pem_slice_iter(&pem.bytes)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| WebConfigError::at(&pem.field, format!("not valid PEM: {e}")))?;
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(WebConfigError::at(
                        pem.field,
                        "no usable CA certificate found",
                    ));
                }
                Some(roots)
            }
        };
        if client_auth.verifies() && client_cas.is_none() {
            return Err(WebConfigError::at(
                "tls_server_config.client_auth_type",
                format!("{client_auth} needs client_ca_file (or client_ca) to verify client certificates against"),
            ));
        }
        Ok(client_cas)
    }
}

/// Whether the section asks for TLS: any certificate, key or client
/// authentication field. The other fields alone are a mistake, not "off".
fn tls_requested(t: &TlsFile) -> Result<bool, WebConfigError> {
    let nonempty = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    let requested = [
        &t.cert,
        &t.key,
        &t.client_ca,
        &t.cert_file,
        &t.key_file,
        &t.client_auth_type,
        &t.client_ca_file,
    ]
    .into_iter()
    .any(nonempty);
    if requested {
        return Ok(true);
    }
    let set: Vec<&str> = [
        ("client_allowed_sans", t.client_allowed_sans.is_some()),
        ("min_version", t.min_version.is_some()),
        ("max_version", t.max_version.is_some()),
        ("cipher_suites", t.cipher_suites.is_some()),
        (
            "prefer_server_cipher_suites",
            t.prefer_server_cipher_suites.is_some(),
        ),
        ("curve_preferences", t.curve_preferences.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    if set.is_empty() {
        return Ok(false);
    }
    Err(WebConfigError::at(
        "tls_server_config",
        format!(
            "{} set, but no certificate: TLS is on only with cert_file and key_file (or cert and key)",
            set.join(", ")
        ),
    ))
}

/// The private key. Its content is never quoted in an error.
fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>, WebConfigError> {
    PrivateKeyDer::from_pem_slice(&pem.bytes).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key found (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                    .to_string()
            }
            e => format!("not a valid PEM private key ({})", pem_error_kind(&e)),
        };
        WebConfigError::at(&pem.field, why)
    })
}

/// A PEM error without the data it may quote.
fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a section has no END line",
        E::IllegalSectionStart { .. } => "a malformed BEGIN line",
        E::Base64Decode(_) => "bad base64",
        E::Io(_) => "read error",
        E::NoItemsFound => "nothing found",
        _ => "malformed",
    }
}

fn client_auth_type(name: String) -> Result<ClientAuth, WebConfigError> {
    ClientAuth::parse(&name).ok_or_else(|| {
        WebConfigError::at(
            "tls_server_config.client_auth_type",
            format!("unknown value {name:?}: use one of {}", ClientAuth::NAMES),
        )
    })
}

/// `client_allowed_sans`: only where every client must show a certificate
/// (else a client without one would get in), and not empty.
fn allowed_sans(
    sans: Option<Vec<String>>,
    client_auth: ClientAuth,
) -> Result<Option<Vec<String>>, WebConfigError> {
    const FIELD: &str = "tls_server_config.client_allowed_sans";
    let Some(sans) = sans else {
        return Ok(None);
    };
    if !client_auth.requires() {
        return Err(WebConfigError::at(
            FIELD,
            format!("needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, not {client_auth} (a client could connect without a certificate)"),
        ));
    }
    if sans.is_empty() {
        return Err(WebConfigError::at(
            FIELD,
            "is empty: no client could connect",
        ));
    }
    Ok(Some(sans))
}

/// `min_version` and `max_version`, TLS 1.2 and 1.3 by default.
fn versions(
    min: Option<String>,
    max: Option<String>,
) -> Result<(TlsVersion, TlsVersion), WebConfigError> {
    let version = |v: Option<String>, field: &str, default| match v.as_deref() {
        None | Some("") => Ok(default),
        Some(s) => {
            rustls_config::parse_version(s).map_err(|e| WebConfigError::at(field, e.to_string()))
        }
    };
    let min = version(min, "tls_server_config.min_version", TlsVersion::Tls12)?;
    let max = version(max, "tls_server_config.max_version", TlsVersion::Tls13)?;
    if min > max {
        return Err(WebConfigError::at(
            "tls_server_config.min_version",
            "is above max_version",
        ));
    }
    Ok((min, max))
}
