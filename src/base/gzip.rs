//! gzip for `/metrics` that compresses each unchanging part once.
//!
//! Prometheus asks for gzip at every scrape, and most of the page only
//! changes when a refresh does. Compressing megabytes at every scrape would
//! cost more than everything else the exporter does, so each unchanging part
//! is compressed once into a [`Segment`]: a piece of a deflate stream ended
//! by a full flush (it ends on a byte boundary, is not the last block, and
//! refers to nothing before it). A
//! [`GzipWriter`] joins the cached segments and the few bytes computed per
//! scrape into one ordinary gzip stream, whose CRC-32 it combines from the
//! parts' without reading them again.
//!
//! Joining whole gzip *members* would be simpler, but curl, browsers and many
//! HTTP libraries read only the first member of a response.
//!
//! ```
//! use std::io::Read;
//! use imagebuilder_exporter::base::gzip::{GzipWriter, Segment};
//!
//! let cached = Segment::compress(b"unchanging text\n");
//! let mut page = GzipWriter::new();
//! page.text(b"# computed per scrape\n");
//! page.segment(&cached);
//! page.text(b"elapsed 12.5\n");
//! let body: Vec<u8> = page.finish().concat();
//!
//! let mut text = String::new();
//! flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
//! assert_eq!(text, "# computed per scrape\nunchanging text\nelapsed 12.5\n");
//! ```

use bytes::Bytes;
use crc32fast::Hasher;
use flate2::{Compress, Compression, FlushCompress};

/// The gzip header: deflate, no name or time, unknown OS (RFC 1952 §2.3).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// The last block of the deflate stream: final, fixed Huffman codes, empty.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// A compressed piece of text that can go anywhere in a [`GzipWriter`].
#[derive(Debug, Clone, Default)]
pub struct Segment {
    deflate: Bytes,
    crc: u32,
    len: u64,
}

impl Segment {
    /// Compresses `data` at the fastest level: the exposition format is so
    /// repetitive that it still shrinks about twentyfold.
    pub fn compress(data: &[u8]) -> Self {
        let mut deflate = full_flush(&mut Compress::new(Compression::fast(), false), data);
        // Sized for text that compresses fourfold; the exposition format
        // does much better, and the segment is kept until the next refresh.
        deflate.shrink_to_fit();
        Self::of(data, deflate)
    }

    /// Compresses `data` with `c`, which can then make the next segment.
    fn compress_with(c: &mut Compress, data: &[u8]) -> Self {
        Self::of(data, full_flush(c, data))
    }

    fn of(data: &[u8], deflate: Vec<u8>) -> Self {
        Self {
            deflate: Bytes::from(deflate),
            crc: crc32fast::hash(data),
            len: data.len() as u64,
        }
    }
}

/// `data` deflated by `c`, ended by a full flush: on a byte boundary, no
/// final block, and the dictionary forgotten, so that it refers to nothing
/// before it and can sit between any two segments.
fn full_flush(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4 + 64);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let before = c.total_in();
        // Compressing into a Vec with room left cannot fail.
        let _ = c.compress_vec(input, &mut out, FlushCompress::Full);
        input = &input[(c.total_in() - before) as usize..];
        // The flush is done when input is used up and the output was not
        // filled: deflate had nothing more to write.
        if input.is_empty() && out.len() < out.capacity() {
            return out;
        }
    }
}

/// One gzip stream built from segments and text, as a list of buffers to
/// send one after the other (the cached ones are shared, not copied).
#[derive(Debug)]
pub struct GzipWriter {
    parts: Vec<Bytes>,
    crc: Hasher,
    /// Text not yet compressed: what lies between two segments.
    pending: Vec<u8>,
    /// One compressor for all of this response's text, made at the first
    /// and reset by each full flush. A page of hundreds of targets has
    /// thousands of pieces of text between segments, and a fresh
    /// compressor for each (hundreds of KiB of state to set up) cost more
    /// than the rest of the scrape.
    compressor: Option<Compress>,
}

impl Default for GzipWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GzipWriter {
    pub fn new() -> Self {
        Self {
            parts: vec![Bytes::from_static(&HEADER)],
            crc: Hasher::new(),
            pending: Vec::new(),
            compressor: None,
        }
    }

    /// Text computed for this response only; compressed with its
    /// neighbours when the next segment or the end comes.
    pub fn text(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// A segment compressed earlier. An empty one changes nothing (and
    /// does not split the text around it).
    pub fn segment(&mut self, segment: &Segment) {
        if segment.len > 0 {
            self.flush_pending();
            self.push(segment);
        }
    }

    /// The whole stream: header, segments, final block and trailer.
    pub fn finish(mut self) -> Vec<Bytes> {
        self.flush_pending();
        let len = self.crc.total_len();
        let mut tail = Vec::with_capacity(10);
        tail.extend_from_slice(&FINAL_BLOCK);
        tail.extend_from_slice(&std::mem::take(&mut self.crc).finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
        tail.extend_from_slice(&(len as u32).to_le_bytes());
        self.parts.push(Bytes::from(tail));
        self.parts
    }

    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let c = self
            .compressor
            .get_or_insert_with(|| Compress::new(Compression::fast(), false));
        let segment = Segment::compress_with(c, &self.pending);
        self.pending.clear();
        self.push(&segment);
    }

    fn push(&mut self, segment: &Segment) {
        self.crc
            .combine(&Hasher::new_with_initial_len(segment.crc, segment.len));
        self.parts.push(segment.deflate.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(parts: &[Bytes]) -> Vec<u8> {
        let body = parts.concat();
        // A single-member decoder: the stream must be one member.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn segments_and_text_join_into_one_member() {
        // Larger than deflate's 32 KiB window, as a real page is.
        let big: Vec<u8> = (0..20_000u32)
            .flat_map(|i| {
                format!(
                    "step_status{{image=\"web-{}\",step=\"s{}\",status=\"FAILED\"}} {}\n",
                    i % 50,
                    i % 10,
                    i % 2
                )
                .into_bytes()
            })
            .collect();
        let a = Segment::compress(&big);
        let b = Segment::compress(b"second\n");
        let mut w = GzipWriter::new();
        w.text(b"head\n");
        w.segment(&a);
        w.segment(&b);
        w.text(b"live 1\n");
        w.text(b"live 2\n");
        w.segment(&a);
        let parts = w.finish();
        let mut want = b"head\n".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"second\nlive 1\nlive 2\n");
        want.extend_from_slice(&big);
        assert_eq!(gunzip(&parts), want);
        // The cached segment is sent as is, not copied or recompressed.
        assert!(parts.iter().any(|p| p.as_ptr() == a.deflate.as_ptr()));
        assert!(a.deflate.len() * 10 < big.len(), "compresses");
        // The multi-member reader agrees: there is exactly one member.
        let body = parts.concat();
        let mut multi = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut multi)
            .unwrap();
        assert_eq!(multi, want);
    }

    /// The text of one response goes through one compressor: each piece
    /// must still refer to nothing before it, or the segments between
    /// would break its back-references.
    #[test]
    fn pieces_of_text_between_segments_stand_alone() {
        let line = |i: u32| {
            format!(
                "headroom{{target=\"t{}\",step=\"s{}\"}} {}\n",
                i % 7,
                i % 11,
                i
            )
        };
        let piece = |from: u32, n: u32| -> Vec<u8> {
            (from..from + n)
                .flat_map(|i| line(i).into_bytes())
                .collect()
        };
        let seg = Segment::compress(b"# a segment between\n");
        let mut w = GzipWriter::new();
        let mut want = Vec::new();
        for k in 0..300u32 {
            // Repeats of earlier pieces, small and (every 50th) past the
            // 32 KiB window: a back-reference across a segment would show.
            let p = if k % 50 == 0 {
                piece(0, 2_000)
            } else {
                piece(k % 3, 4)
            };
            w.text(&p);
            want.extend_from_slice(&p);
            w.segment(&seg);
            want.extend_from_slice(b"# a segment between\n");
        }
        let parts = w.finish();
        assert_eq!(gunzip(&parts), want);
        assert!(parts.concat().len() * 5 < want.len(), "still compresses");
    }

    #[test]
    fn an_empty_page_is_a_valid_stream() {
        assert!(gunzip(&GzipWriter::new().finish()).is_empty());
        let mut w = GzipWriter::new();
        w.segment(&Segment::compress(b""));
        w.text(b"");
        assert!(gunzip(&w.finish()).is_empty());
    }
}
