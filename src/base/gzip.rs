//! gzip for `/metrics`: the whole page as one stream, at the fastest level.
//!
//! The page is compressed once for all the scrapes that read it (see
//! `refresh::page`), as one deflate stream: a target's rows of a family
//! repeat the previous target's label names and values, and a stream that
//! sees them both compresses about three times better than the same rows
//! compressed one (target, family) at a time. miniz_oxide's fastest level
//! compresses the exposition format at over a gigabyte a second, 28-fold
//! (BENCHMARKS.md, "How the last two were met").
//!
//! ```
//! use std::io::Read;
//! use bytes::Bytes;
//! use imagebuilder_exporter::base::gzip::gzip;
//!
//! let page = [Bytes::from_static(b"# HELP up\n"), Bytes::from_static(b"up 1\n")];
//! let body = gzip(&page);
//!
//! let mut text = String::new();
//! flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
//! assert_eq!(text, "# HELP up\nup 1\n");
//! ```

use bytes::Bytes;
use crc32fast::Hasher;
use flate2::{Compress, Compression, FlushCompress};

/// The gzip header: deflate, no name or time, unknown OS (RFC 1952 §2.3).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// `parts`, one after the other, as one gzip member (curl, browsers and
/// many HTTP libraries read only the first member of a response).
pub fn gzip(parts: &[Bytes]) -> Bytes {
    let total: usize = parts.iter().map(Bytes::len).sum();
    // The exposition format compresses 20- to 30-fold.
    let mut out = Vec::with_capacity(HEADER.len() + total / 16 + 1024);
    out.extend_from_slice(&HEADER);
    let mut c = Compress::new(Compression::fast(), false);
    let mut crc = Hasher::new();
    for part in parts {
        crc.update(part);
        deflate(&mut c, part, &mut out, FlushCompress::None);
    }
    deflate(&mut c, &[], &mut out, FlushCompress::Finish);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
    out.extend_from_slice(&(total as u32).to_le_bytes());
    Bytes::from(out)
}

/// Feeds `input` to `c`, growing `out` as needed; with `Finish`, until the
/// stream is ended.
fn deflate(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) {
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let before = c.total_in();
        // Compressing into a Vec with room left cannot fail.
        let _ = c.compress_vec(input, out, flush);
        input = &input[(c.total_in() - before) as usize..];
        // Done when the input is used up and deflate did not fill the
        // output: it had nothing more to write.
        if input.is_empty() && out.len() < out.capacity() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(body: &[u8]) -> Vec<u8> {
        // A single-member decoder: the stream must be one member.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn parts_join_into_one_member() {
        let parts: Vec<Bytes> = ["# HELP a\n", "", "a{x=\"1\"} 1\n", "a{x=\"2\"} 2\n"]
            .into_iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        let body = gzip(&parts);
        assert_eq!(gunzip(&body), parts.concat());
        // Header, and a trailer with the CRC and length of the whole.
        assert_eq!(body[..10], HEADER);
        let n = body.len();
        let crc = crc32fast::hash(&parts.concat());
        assert_eq!(body[n - 8..n - 4], crc.to_le_bytes());
        assert_eq!(body[n - 4..], (parts.concat().len() as u32).to_le_bytes());
    }

    #[test]
    fn a_page_larger_than_the_window_and_the_buffers_round_trips() {
        // Rows that repeat from one part to the next, as targets' rows of a
        // family do, over several megabytes: back-references cross parts.
        let parts: Vec<Bytes> = (0..600)
            .map(|t| {
                let mut s = String::new();
                for step in 0..100 {
                    s.push_str(&format!(
                        "imagebuilder_workflow_step_status{{account_id=\"{t:012}\",step_name=\"s{step}\",status=\"RUNNING\"}} 0\n"
                    ));
                }
                Bytes::from(s)
            })
            .collect();
        let text = parts.concat();
        assert!(text.len() > 5_000_000);
        let body = gzip(&parts);
        assert_eq!(gunzip(&body), text);
        assert!(
            body.len() * 20 < text.len(),
            "{} of {}",
            body.len(),
            text.len()
        );
    }

    #[test]
    fn an_empty_page_is_a_valid_stream() {
        assert!(gunzip(&gzip(&[])).is_empty());
    }
}
