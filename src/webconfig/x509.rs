//! Just enough X.509 reading for what rustls does not expose: a
//! certificate's validity period (to refuse an expired server certificate at
//! load time, with its dates in the message) and its subject alternative
//! names (for `client_allowed_sans`).
//!
//! A careful, minimal DER walk rather than a full X.509 parser (which would
//! bring a dozen crates): every certificate read here has already been, or is
//! about to be, parsed and checked by rustls/webpki, so this code only needs
//! to find two fields, and refuses anything it does not understand.

use crate::timestamp::{civil_from_days, days_from_civil};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What this module reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// Subject alternative names as Go's `crypto/x509` shows them: DNS
    /// names, e-mail addresses, IP addresses (formatted) and URIs.
    pub sans: Vec<String>,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT` version.
const VERSION: u8 = 0xa0;
/// `[3] EXPLICIT` extensions.
const EXTENSIONS: u8 = 0xa3;
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Reads the validity period and SANs of a DER certificate.
pub fn parse(der: &[u8]) -> Result<CertInfo, &'static str> {
    let (cert, rest) = expect(der, SEQUENCE, "certificate")?;
    if !rest.is_empty() {
        return Err("trailing data after the certificate");
    }
    let (tbs, _) = expect(cert, SEQUENCE, "tbsCertificate")?;
    let mut r = tbs;
    if r.first() == Some(&VERSION) {
        r = tlv(r)?.2;
    }
    r = expect(r, INTEGER, "serial number")?.1;
    r = expect(r, SEQUENCE, "signature algorithm")?.1;
    r = expect(r, SEQUENCE, "issuer")?.1;
    let (validity, after_validity) = expect(r, SEQUENCE, "validity")?;
    let (not_before, v) = time(validity)?;
    let (not_after, v) = time(v)?;
    if !v.is_empty() {
        return Err("unexpected data in the validity period");
    }
    r = expect(after_validity, SEQUENCE, "subject")?.1;
    r = expect(r, SEQUENCE, "subject public key info")?.1;
    let mut sans = Vec::new();
    // Optional issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    while !r.is_empty() {
        let (tag, content, rest) = tlv(r)?;
        if tag == EXTENSIONS {
            sans = subject_alt_names(content)?;
        }
        r = rest;
    }
    Ok(CertInfo {
        not_before,
        not_after,
        sans,
    })
}

/// One tag-length-value: (tag, content, rest). Single-byte tags and definite
/// lengths only, as DER requires.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
    if tag & 0x1f == 0x1f {
        return Err("unsupported DER tag");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad DER length");
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated DER");
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn expect<'a>(
    input: &'a [u8],
    want: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), &'static str> {
    let (tag, content, rest) = tlv(input)?;
    if tag != want {
        return Err(what);
    }
    Ok((content, rest))
}

/// A `Time` (UTCTime or GeneralizedTime, `Z` only as RFC 5280 requires):
/// (Unix seconds, rest).
fn time(input: &[u8]) -> Result<(i64, &[u8]), &'static str> {
    let (tag, content, rest) = tlv(input)?;
    let digits = |s: &[u8]| -> Result<i64, &'static str> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return Err("bad time in the validity period");
        }
        Ok(s.iter().fold(0i64, |a, d| a * 10 + (d - b'0') as i64))
    };
    let (year, rest_digits) = match tag {
        UTC_TIME if content.len() == 13 => {
            // RFC 5280: YY >= 50 is 19YY, otherwise 20YY.
            let yy = digits(&content[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &content[2..])
        }
        GENERALIZED_TIME if content.len() == 15 => (digits(&content[..4])?, &content[4..]),
        _ => return Err("bad time in the validity period"),
    };
    if rest_digits[10] != b'Z' {
        return Err("bad time in the validity period");
    }
    let month = digits(&rest_digits[0..2])?;
    let day = digits(&rest_digits[2..4])?;
    let hour = digits(&rest_digits[4..6])?;
    let minute = digits(&rest_digits[6..8])?;
    let second = digits(&rest_digits[8..10])?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err("bad time in the validity period");
    }
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

/// Unix seconds as `2026-09-09T19:12:23Z`.
pub fn format_time(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The SANs in the extensions (`content` of `[3]`).
fn subject_alt_names(content: &[u8]) -> Result<Vec<String>, &'static str> {
    let (mut exts, _) = expect(content, SEQUENCE, "extensions")?;
    let mut out = Vec::new();
    while !exts.is_empty() {
        let (ext, rest) = expect(exts, SEQUENCE, "extension")?;
        exts = rest;
        let (oid, mut e) = expect(ext, OID, "extension identifier")?;
        if e.first() == Some(&BOOLEAN) {
            e = tlv(e)?.2;
        }
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        let (value, _) = expect(e, OCTET_STRING, "extension value")?;
        let (mut names, _) = expect(value, SEQUENCE, "subject alternative names")?;
        while !names.is_empty() {
            let (tag, v, rest) = tlv(names)?;
            names = rest;
            let text = || String::from_utf8_lossy(v).into_owned();
            match tag {
                // rfc822Name, dNSName, uniformResourceIdentifier (IA5String).
                0x81 | 0x82 | 0x86 => out.push(text()),
                // iPAddress: 4 or 16 bytes, shown as Go's net.IP.String does.
                0x87 => {
                    if let Ok(b) = <[u8; 4]>::try_from(v) {
                        out.push(Ipv4Addr::from(b).to_string());
                    } else if let Ok(b) = <[u8; 16]>::try_from(v) {
                        let ip = Ipv6Addr::from(b);
                        let ip = match ip.to_ipv4_mapped() {
                            Some(v4) => IpAddr::V4(v4),
                            None => IpAddr::V6(ip),
                        };
                        out.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 2, 29),
            (2026, 9, 9),
            (1950, 1, 1),
            (9999, 12, 31),
        ] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(format_time(1_788_981_143), "2026-09-09T19:12:23Z");
        assert_eq!(format_time(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn times() {
        let utc = b"\x17\x0d260909191223Z";
        assert_eq!(time(utc).unwrap().0, 1_788_981_143);
        let utc_1999 = b"\x17\x0d991231235959Z";
        assert_eq!(time(utc_1999).unwrap().0, 946_684_799);
        let gen = b"\x18\x0f99991231235959Z";
        assert_eq!(time(gen).unwrap().0, 253_402_300_799);
        assert!(time(b"\x17\x0d2609091912+0Z").is_err());
        assert!(time(b"\x17\x0d261309191223Z").is_err());
        assert!(time(b"\x17\x0c26090919122Z").is_err());
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
        // Any truncation is refused cleanly.
        for n in 0..cert.der().len() {
            assert!(parse(&cert.der()[..n]).is_err());
        }
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
