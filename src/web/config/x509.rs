//! What rustls does not expose about a certificate: its validity period (to
//! refuse an expired server certificate at load time, with its dates in the
//! message) and its subject alternative names (for `client_allowed_sans`).
//!
//! Read with `x509-parser`, which rcgen already brings into the lock; no
//! signature checks here, rustls and webpki do those. Every certificate read
//! here has been, or is about to be, parsed by webpki as well.
//!
//! `x509-parser` reads validity times more leniently than RFC 5280 writes
//! them (a UTCTime without seconds or with a numeric offset, a
//! GeneralizedTime with a fraction): such a time is read as the instant it
//! names. A date that does not exist (February 30, second 60) is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME;

/// What this module reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    /// `notBefore`, Unix seconds.
    pub(crate) not_before: i64,
    /// `notAfter`, Unix seconds.
    pub(crate) not_after: i64,
    /// Subject alternative names as Go's `crypto/x509` shows them: DNS
    /// names, e-mail addresses, IP addresses (formatted) and URIs.
    pub(crate) sans: Vec<String>,
}

/// Reads the validity period and SANs of a DER certificate.
pub(crate) fn parse(der: &[u8]) -> Result<CertInfo, X509Error> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| match e {
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
        x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
    })?;
    if !rest.is_empty() {
        // A PEM block holds one certificate: more is not ours to guess at.
        return Err(X509Error::InvalidCertificate);
    }
    Ok(CertInfo {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sans: subject_alt_names(&cert)?,
    })
}

/// Unix seconds as `2026-09-09T19:12:23Z`.
pub(crate) fn format_time(t: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        // Beyond the year 9999: no certificate time is, but say something.
        Err(_) => format!("{t} seconds after 1970"),
    }
}

/// The names of every subjectAltName extension, in order. A certificate
/// should have one at most (RFC 5280); several are read, not refused, as
/// before. Names of other kinds (directory names, other names) are skipped.
fn subject_alt_names(cert: &X509Certificate<'_>) -> Result<Vec<String>, X509Error> {
    let mut out = Vec::new();
    for ext in cert.iter_extensions() {
        if ext.oid != OID_X509_EXT_SUBJECT_ALT_NAME {
            continue;
        }
        let names = match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => &san.general_names,
            ParsedExtension::ParseError { error } => return Err(error.clone().into()),
            _ => return Err(X509Error::InvalidExtensions),
        };
        for name in names {
            match name {
                GeneralName::RFC822Name(s) | GeneralName::DNSName(s) | GeneralName::URI(s) => {
                    out.push((*s).to_string())
                }
                // The crate refuses names that are not UTF-8; Go keeps their
                // bytes. Replacement characters never match an allowed name
                // written in YAML, so the names nearby still count.
                GeneralName::Invalid(tag, bytes) if matches!(tag.0, 1 | 2 | 6) => {
                    out.push(String::from_utf8_lossy(bytes).into_owned())
                }
                GeneralName::IPAddress(b) => out.extend(ip_text(b)),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// An iPAddress SAN as Go's `net.IP.String` shows it; `None` for a length
/// that is neither IPv4 nor IPv6.
fn ip_text(b: &[u8]) -> Option<String> {
    if let Ok(b) = <[u8; 4]>::try_from(b) {
        return Some(Ipv4Addr::from(b).to_string());
    }
    let ip = Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
    Some(
        match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(ip),
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate made by hand, for what rcgen cannot write: the DER
    /// encoding of `tag` around `content`.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let len = (n as u32).to_be_bytes();
            let skip = len.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (4 - skip) as u8);
            out.extend(&len[skip..]);
        }
        out.extend(content);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    /// A v3 certificate with these validity times (whole TLVs) and
    /// extensions (the inner SEQUENCEs), empty names. Signature and key are
    /// dummies: nothing here checks them.
    fn handmade(not_before: &[u8], not_after: &[u8], extensions: &[Vec<u8>]) -> Vec<u8> {
        // id-ecPublicKey with prime256v1, and a point.
        let spki = seq(&[
            seq(&[
                tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
                tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            ]),
            tlv(0x03, &[&[0x00, 0x04][..], &[7; 64]].concat()),
        ]);
        handmade_with_key(&spki, not_before, not_after, extensions)
    }

    /// [`handmade`] with this subjectPublicKeyInfo.
    fn handmade_with_key(
        spki: &[u8],
        not_before: &[u8],
        not_after: &[u8],
        extensions: &[Vec<u8>],
    ) -> Vec<u8> {
        // ecdsa-with-SHA256.
        let sig_alg = seq(&[tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])]);
        let mut tbs = vec![
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            sig_alg.clone(),
            seq(&[]),
            seq(&[not_before.to_vec(), not_after.to_vec()]),
            seq(&[]),
            spki.to_vec(),
        ];
        if !extensions.is_empty() {
            tbs.push(tlv(0xa3, &seq(extensions)));
        }
        seq(&[seq(&tbs), sig_alg, tlv(0x03, &[0x00, 0x30, 0x00])])
    }

    fn utc(s: &str) -> Vec<u8> {
        tlv(0x17, s.as_bytes())
    }

    fn generalized(s: &str) -> Vec<u8> {
        tlv(0x18, s.as_bytes())
    }

    /// A subjectAltName extension of these (tag, bytes) names.
    fn san(names: &[(u8, &[u8])]) -> Vec<u8> {
        let names: Vec<Vec<u8>> = names.iter().map(|(t, v)| tlv(*t, v)).collect();
        seq(&[tlv(0x06, &[0x55, 0x1d, 0x11]), tlv(0x04, &seq(&names))])
    }

    fn dates(not_before: &[u8], not_after: &[u8]) -> Result<(String, String), X509Error> {
        parse(&handmade(not_before, not_after, &[]))
            .map(|i| (format_time(i.not_before), format_time(i.not_after)))
    }

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_788_981_143), "2026-09-09T19:12:23Z");
        assert_eq!(format_time(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_time(253_402_300_800),
            "253402300800 seconds after 1970"
        );
    }

    #[test]
    fn times() {
        let ok = |a: &str, b: &str| dates(&utc(a), &generalized(b)).unwrap();
        assert_eq!(
            ok("260909191223Z", "99991231235959Z"),
            ("2026-09-09T19:12:23Z".into(), "9999-12-31T23:59:59Z".into())
        );
        // RFC 5280: a UTCTime YY of 50 or more is 19YY, below is 20YY.
        assert_eq!(
            ok("991231235959Z", "20500101000000Z").0,
            "1999-12-31T23:59:59Z"
        );
        assert_eq!(
            ok("500101000000Z", "20500101000000Z").0,
            "1950-01-01T00:00:00Z"
        );
        assert_eq!(
            ok("491231235959Z", "20500101000000Z").0,
            "2049-12-31T23:59:59Z"
        );
        // Either encoding in either place.
        assert_eq!(
            dates(&generalized("19700101000000Z"), &utc("700101000001Z")).unwrap(),
            ("1970-01-01T00:00:00Z".into(), "1970-01-01T00:00:01Z".into())
        );

        for (what, t) in [
            ("offset inside the digits", utc("2609091912+0Z")),
            ("month 13", utc("261309191223Z")),
            ("too short", utc("26090919122Z")),
            ("no zone", utc("260909191223")),
            ("hour 24", utc("260909240000Z")),
            ("minute 60", utc("260909196000Z")),
            ("not digits", utc("26o909191223Z")),
            (
                "GeneralizedTime without a zone",
                generalized("20260909191223"),
            ),
            ("wrong tag", tlv(0x13, b"260909191223Z")),
        ] {
            assert!(
                dates(&t, &generalized("20500101000000Z")).is_err(),
                "{what}"
            );
        }
    }

    /// Changed with the move to `x509-parser`, pinned here. Before, a time
    /// had to be exactly `YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ`, and its day
    /// was only checked to be 1 to 31 (February 30 was read as March 2) and
    /// its second 0 to 60.
    #[test]
    fn times_read_differently_since_x509_parser() {
        let after = generalized("20500101000000Z");
        let read = |t: Vec<u8>| dates(&t, &after).map(|d| d.0);
        // Refused now: dates that do not exist.
        assert!(read(utc("260230000000Z")).is_err(), "February 30");
        assert!(read(utc("250229000000Z")).is_err(), "February 29, 2025");
        assert!(read(utc("260931000000Z")).is_err(), "September 31");
        assert!(read(utc("261231235960Z")).is_err(), "second 60");
        // Read now: forms RFC 5280 forbids but whose instant is clear.
        assert_eq!(read(utc("2609091912Z")).unwrap(), "2026-09-09T19:12:00Z");
        assert_eq!(
            read(utc("260909211223+0200")).unwrap(),
            "2026-09-09T19:12:23Z"
        );
        assert_eq!(
            read(generalized("20260909191223.5Z")).unwrap(),
            "2026-09-09T19:12:23Z"
        );
    }

    #[test]
    fn reads_what_rcgen_writes() {
        use rcgen::{date_time_ymd, CertificateParams, KeyPair, SanType};
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["example.com".into(), "10.1.2.3".into(), "::1".into()])
                .unwrap();
        p.subject_alt_names
            .push(SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
        p.subject_alt_names.push(SanType::URI(
            "spiffe://example.com/prometheus".try_into().unwrap(),
        ));
        // UTCTime before 2050, GeneralizedTime from 2050 on.
        p.not_before = date_time_ymd(2020, 2, 29);
        p.not_after = date_time_ymd(2051, 1, 1);
        let cert = p.self_signed(&key).unwrap();
        let info = parse(cert.der()).unwrap();
        assert_eq!(format_time(info.not_before), "2020-02-29T00:00:00Z");
        assert_eq!(format_time(info.not_after), "2051-01-01T00:00:00Z");
        assert_eq!(
            info.sans,
            [
                "example.com",
                "10.1.2.3",
                "::1",
                "ops@example.com",
                "spiffe://example.com/prometheus"
            ]
        );
        let bare = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(parse(bare.der()).unwrap().sans.is_empty());
        // Any truncation is refused cleanly, and so is anything after.
        for n in 0..cert.der().len() {
            assert!(parse(&cert.der()[..n]).is_err());
        }
        let mut longer = cert.der().to_vec();
        longer.push(0);
        assert!(parse(&longer).is_err());
    }

    #[test]
    fn subject_alternative_names() {
        let t = (utc("260909191223Z"), generalized("20500101000000Z"));
        let sans = |exts: &[Vec<u8>]| parse(&handmade(&t.0, &t.1, exts)).map(|i| i.sans);
        let names = san(&[
            (0x82, b"a.example.com"),
            (0x81, b"ops@example.com"),
            (0x86, b"spiffe://example.com/p"),
            (0x87, &[10, 0, 0, 7]),
            (
                0x87,
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1],
            ),
            (
                0x87,
                &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
            // An address of neither length, a registeredID: skipped.
            (0x87, &[1, 2, 3]),
            (0x88, &[0x2a, 0x03]),
            // Not UTF-8: kept, its bad bytes replaced.
            (0x82, b"b\xff.example.com"),
        ]);
        let want = [
            "a.example.com",
            "ops@example.com",
            "spiffe://example.com/p",
            "10.0.0.7",
            "192.0.2.1",
            "2001:db8::1",
            "b\u{fffd}.example.com",
        ];
        assert_eq!(sans(std::slice::from_ref(&names)).unwrap(), want);
        // Another extension first (basicConstraints, critical): skipped.
        let basic = seq(&[
            tlv(0x06, &[0x55, 0x1d, 0x13]),
            tlv(0x01, &[0xff]),
            tlv(0x04, &seq(&[])),
        ]);
        assert_eq!(sans(&[basic, names.clone()]).unwrap(), want);
        // Two SAN extensions (RFC 5280 forbids it): both read, as before.
        let second = san(&[(0x82, b"c.example.com")]);
        assert_eq!(
            sans(&[names, second]).unwrap().last().map(String::as_str),
            Some("c.example.com")
        );
        // A SAN extension that is not a list of names: refused.
        let broken = seq(&[tlv(0x06, &[0x55, 0x1d, 0x11]), tlv(0x04, &[0x30, 0x05])]);
        assert!(sans(&[broken]).is_err());
        assert_eq!(sans(&[]).unwrap(), Vec::<String>::new());
    }

    /// Changed with the move to `x509-parser`, pinned here: the crate reads
    /// the whole certificate, where the DER walk before only read the
    /// fields it needed (the public key info was only checked to be a
    /// SEQUENCE) and skipped SAN entries of tags it did not know.
    #[test]
    fn malformed_parts_are_refused_since_x509_parser() {
        let t = (utc("260909191223Z"), generalized("20500101000000Z"));
        // A public key info without its BIT STRING (webpki keeps it as
        // bytes, so only the crate notices).
        let alg = seq(&[tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01])]);
        let no_key = seq(&[alg.clone(), tlv(0x02, &[1])]);
        assert!(parse(&handmade_with_key(&no_key, &t.0, &t.1, &[])).is_err());
        let key = seq(&[alg, tlv(0x03, &[0x00, 0x04])]);
        assert!(parse(&handmade_with_key(&key, &t.0, &t.1, &[])).is_ok());
        // A SAN entry of universal class (a GeneralName is always
        // context-specific): the whole extension is refused, not skipped.
        let odd = san(&[(0x82, b"a.example.com"), (0x13, b"b.example.com")]);
        assert!(parse(&handmade(&t.0, &t.1, &[odd])).is_err());
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01",
            b"\x1f\x01\x00",
            b"\x30\x00",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
