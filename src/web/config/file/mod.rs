//! The file format and its loader: YAML, and the PEM files it names, to a
//! checked [`Policy`].
//!
//! The loader only reads files and checks what it reads; it holds no state
//! between loads, so start-up and every reload go through the same code. As
//! it reads, it hashes every byte (and every read error) into a digest: the
//! reload compares digests to notice that something changed without keeping
//! the files.
//!
//! The structs mirror the exporter-toolkit's YAML (`deny_unknown_fields`: a
//! misspelt key is an error, not a silent default). What each section means
//! is checked in its own method; `tls_server_config`, the largest, is in
//! [`tls`].

mod duration;
mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::gate::{RateLimit, Users};
use super::{now_unix, Policy, Summary, WebConfigError};

/// For clap's `value_parser`: checks the whole file (certificates, keys,
/// hashes) so that a bad one is refused like any bad flag, with exit status
/// 2, before the exporter listens.
pub(crate) fn parse_web_config_file(s: &str) -> Result<PathBuf, WebConfigError> {
    let path = PathBuf::from(s);
    load_policy(&path, now_unix()).1?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// The format.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<RateLimitFile>,
}

// No `Debug`: `key` may hold a private key.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    /// A Go duration (`time.ParseDuration`), as the toolkit reads it.
    interval: Option<String>,
    burst: Option<u32>,
}

/// The headers `http_server_config.headers` may set, and the values allowed
/// where the toolkit restricts them.
const EXTRA_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

// ---------------------------------------------------------------------------
// The loader.

/// What reading one version of the file gave: a digest of every byte read
/// (to notice changes), and the policy or why not.
pub(super) type Loaded = ([u8; 32], Result<Policy, WebConfigError>);

/// Reads `path` and the files it names, and builds the policy. `now` (Unix
/// seconds) is when the server certificate must be valid.
pub(super) fn load_policy(path: &Path, now: i64) -> Loaded {
    let mut digest = Sha256::new();
    let result = Loader {
        dir: path.parent().unwrap_or(Path::new("")),
        digest: &mut digest,
        now,
    }
    .load(path)
    .map_err(|e| e.in_file(path));
    (digest.finalize().into(), result)
}

struct Loader<'a> {
    /// Where relative file names point: the configuration file's directory,
    /// as in the toolkit.
    dir: &'a Path,
    digest: &'a mut Sha256,
    now: i64,
}

impl Loader<'_> {
    /// Reads a file, recording its bytes (or the error) in the digest.
    fn read(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        let r = std::fs::read(path);
        self.digest.update(path.as_os_str().as_encoded_bytes());
        match &r {
            Ok(b) => {
                self.digest.update((b.len() as u64).to_be_bytes());
                self.digest.update(b);
            }
            Err(e) => self.digest.update(e.to_string()),
        }
        r
    }

    fn load(mut self, path: &Path) -> Result<Policy, WebConfigError> {
        let text = self
            .read(path)
            .map_err(|e| WebConfigError::whole(format!("cannot read it: {e}")))?;
        let file: FileConfig = serde_yaml::from_slice(&text).map_err(|e| {
            // serde_yaml leaves out the position when it is the very start.
            let mut msg = format!("invalid YAML: {e}");
            if let (Some(l), false) = (e.location(), msg.contains(" at line ")) {
                msg.push_str(&format!(" at line {} column {}", l.line(), l.column()));
            }
            WebConfigError::whole(msg)
        })?;
        let mut summary = Summary::default();
        let tls = match file.tls_server_config {
            Some(t) => self.tls(t, &mut summary)?,
            None => None,
        };
        let users = Users::new(file.basic_auth_users.unwrap_or_default())?;
        let headers = match file.http_server_config {
            Some(http) => {
                summary.http2_requested = http.http2 == Some(true);
                headers(http.headers.unwrap_or_default())?
            }
            None => Vec::new(),
        };
        let rate_limit = match file.rate_limit {
            Some(r) => rate_limit(r)?,
            None => None,
        };
        Ok(Policy {
            tls,
            users,
            headers,
            rate_limit,
            summary,
        })
    }
}

/// `http_server_config.headers`: only the toolkit's, with its values.
fn headers(
    configured: BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let mut out = Vec::new();
    for (name, value) in configured {
        let field = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) = EXTRA_HEADERS
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(&name))
        else {
            let names: Vec<_> = EXTRA_HEADERS.iter().map(|(h, _)| *h).collect();
            return Err(WebConfigError::at(
                field,
                format!(
                    "this header cannot be configured (allowed: {})",
                    names.join(", ")
                ),
            ));
        };
        if value.is_empty() {
            continue; // "Unset if blank."
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(WebConfigError::at(
                field,
                format!("{value:?} is not allowed: use one of {allowed:?}"),
            ));
        }
        let v = HeaderValue::from_str(&value)
            .map_err(|_| WebConfigError::at(&field, "not a valid header value"))?;
        // The table's names are valid: this cannot fail, but says so if so.
        let n = HeaderName::from_bytes(canonical.as_bytes())
            .map_err(|_| WebConfigError::at(&field, "not a valid header name"))?;
        out.push((n, v));
    }
    Ok(out)
}

/// `rate_limit`: off without an interval (or with a zero one), as in the
/// toolkit; a burst of at least 1 otherwise.
fn rate_limit(r: RateLimitFile) -> Result<Option<RateLimit>, WebConfigError> {
    const FIELD: &str = "rate_limit.interval";
    let nanos = match r.interval.as_deref() {
        None => 0,
        Some(s) => {
            duration::parse_go(s).map_err(|why| WebConfigError::at(FIELD, why.to_string()))?
        }
    };
    if nanos < 0 {
        return Err(WebConfigError::at(
            FIELD,
            format!(
                "{:?} is negative: use a positive interval, or 0 for no limit",
                r.interval.unwrap_or_default()
            ),
        ));
    }
    if nanos == 0 {
        return Ok(None);
    }
    let burst = r.burst.unwrap_or(0);
    if burst == 0 {
        return Err(WebConfigError::at(
            "rate_limit.burst",
            "must be at least 1 when rate_limit.interval is set (with 0 every request would be refused)",
        ));
    }
    Ok(Some(RateLimit {
        interval: Duration::from_nanos(nanos.unsigned_abs()),
        burst,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Response;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn load(yaml: &str) -> Result<Policy, WebConfigError> {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "web.yml", yaml);
        load_policy(&p, now_unix()).1
    }

    fn load_err(yaml: &str) -> WebConfigError {
        match load(yaml) {
            Ok(_) => panic!("loaded: {yaml}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_and_comment_only_files_turn_nothing_on() {
        for yaml in [
            "",
            "# nothing\n",
            "{}",
            "basic_auth_users:\n",
            "tls_server_config: {}\n",
            "rate_limit: {}\n",
            "rate_limit:\n  burst: 3\n",
            "rate_limit:\n  interval: \"0\"\n",
            "rate_limit:\n  interval: 0s\n",
            "rate_limit:\n  interval: \"-0\"\n  burst: 0\n",
        ] {
            let policy = load(yaml).unwrap_or_else(|e| panic!("{yaml:?}: {e}"));
            assert!(
                !policy.tls() && policy.users() == 0 && policy.rate_limit.is_none(),
                "{yaml:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_file_the_field_and_the_line() {
        let e = load_err("tls_server_config:\n  cert_fil: x.pem\n");
        let s = e.to_string();
        assert!(
            s.contains("web.yml") && s.contains("cert_fil") && s.contains("line 2"),
            "{s}"
        );
        assert_eq!(e.file().file_name().unwrap(), "web.yml");
        assert_eq!(e.field(), None);
        let e = load_err("basic_auth_users: [\n");
        assert!(e.to_string().contains("invalid YAML"), "{e}");
        let e = load_err("frobnicate: 1\n");
        assert!(e.to_string().contains("unknown field `frobnicate`"), "{e}");
        let e = load_err("basic_auth_users:\n  alice: hunter2\n");
        assert_eq!(e.field(), Some("basic_auth_users.alice"));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = load_err("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n");
        assert_eq!(e.field(), Some("tls_server_config.cert_file"));
        assert!(e.message().contains("nope.pem"), "{e}");
        let e = load_err("tls_server_config:\n  min_version: TLS13\n");
        assert!(e.message().contains("no certificate"), "{e}");
        let e = load_err("http_server_config:\n  headers:\n    Server: me\n");
        assert_eq!(e.field(), Some("http_server_config.headers.Server"));
        let e = load_err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
        assert!(e.message().contains("deny"), "{e}");
        let e = load_err("rate_limit:\n  interval: 1s\n");
        assert_eq!(e.field(), Some("rate_limit.burst"));
        let e = load_err("rate_limit:\n  interval: soon\n  burst: 1\n");
        assert_eq!(e.field(), Some("rate_limit.interval"));
        let e = load_err("tls_server_config:\n  cert: x\n  cert_file: y\n  key: z\n");
        assert!(e.message().contains("both set"), "{e}");
        // The file is named once, at the start.
        assert!(e.to_string().starts_with("web configuration file /"), "{e}");
    }

    #[test]
    fn headers_are_accepted_case_insensitively() {
        let policy = load(
            "http_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\n",
        )
        .unwrap();
        let mut r = Response::new(());
        policy.add_headers(&mut r);
        assert_eq!(r.headers()["x-frame-options"], "deny");
        assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
        assert!(!r.headers().contains_key("x-xss-protection"));
    }

    /// `rate_limit.interval` is a Go duration, as the exporter-toolkit reads
    /// it (before, it was read as a Prometheus duration).
    #[test]
    fn rate_limit_interval_is_a_go_duration() {
        let interval = |s: &str| {
            load(&format!("rate_limit:\n  interval: {s:?}\n  burst: 2\n"))
                .map(|p| p.rate_limit.map(|r| r.interval))
        };
        for (text, want) in [
            ("1.5s", Duration::from_millis(1500)),
            ("300ms", Duration::from_millis(300)),
            ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
            ("1m30s", Duration::from_secs(90)),
            ("30s1m", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("+5s", Duration::from_secs(5)),
            (".5s", Duration::from_millis(500)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("1ns", Duration::from_nanos(1)),
        ] {
            assert_eq!(interval(text), Ok(Some(want)), "{text}");
        }
        for text in [
            "1d", "1w", "1y", "5", "1.5", "s", "1S", "1 s", "", "-1s", "1e3s", "1h1d",
        ] {
            let e = interval(text).unwrap_err();
            assert_eq!(e.field(), Some("rate_limit.interval"), "{text}: {e}");
        }
        let e = interval("1d").unwrap_err();
        assert!(
            e.message().contains("unknown unit \"d\"") && e.message().contains("ns, us"),
            "{e}"
        );
        let e = interval("-1s").unwrap_err();
        assert!(e.message().contains("negative"), "{e}");
        // A YAML number is not a duration (the toolkit's YAML library would
        // read it as nanoseconds): refused, as before.
        assert!(load("rate_limit:\n  interval: 5\n  burst: 2\n").is_err());
        assert_eq!(
            load("rate_limit:\n  interval: 1m\n  burst: 2\n")
                .unwrap()
                .rate_limit,
            Some(RateLimit {
                interval: Duration::from_secs(60),
                burst: 2
            })
        );
    }
}
