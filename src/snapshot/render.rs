//! Rendering snapshots at scrape time: the unchanging text shared without a
//! copy (or its gzip segments), the values that depend on "now" computed.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;

use super::{Body, Snapshot};
use crate::base::clock::Nanos;
use crate::base::gzip::{GzipWriter, Segment};
use crate::metrics::family::Family;
use crate::metrics::text::{write_header, write_value};

/// The workflow families of every target at time `now`, as chunks to send
/// one after the other. Families stay contiguous across targets, as the text
/// format requires; the static text is shared, not copied.
pub fn render(snapshots: &[Arc<Snapshot>], now: Nanos) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(Family::ALL.len() * (1 + 2 * snapshots.len()));
    render_into(snapshots, now, &mut out);
    out
}

/// [`render`], gzip-compressed, followed by `tail` (text computed per
/// scrape). The unchanging text of each snapshot was compressed when the
/// snapshot was built; only the text computed per scrape is compressed here.
pub fn render_gzip(snapshots: &[Arc<Snapshot>], now: Nanos, tail: &[u8]) -> Vec<Bytes> {
    let mut out = GzipWriter::new();
    render_into(snapshots, now, &mut out);
    out.text(tail);
    out.finish()
}

/// A family's `# HELP` and `# TYPE` lines, as text and compressed.
struct Header {
    text: Bytes,
    gz: Segment,
}

/// The headers of every family, in [`Family`] order. They never change, so
/// they are written and compressed once: compressed per scrape, each cost
/// a fresh compressor between two segments, more than the rest of a gzip
/// scrape's work.
static HEADERS: LazyLock<Vec<Header>> = LazyLock::new(|| {
    Family::ALL
        .iter()
        .map(|f| {
            let mut text = Vec::with_capacity(512);
            write_header(&mut text, f.def());
            Header {
                gz: Segment::compress(&text),
                text: Bytes::from(text),
            }
        })
        .collect()
});

/// Where [`render_into`] writes the page.
trait Sink {
    /// A family's header.
    fn header(&mut self, header: &Header);
    /// The unchanging part of a family's body.
    fn fixed(&mut self, body: &Body);
    /// Text computed for this scrape.
    fn text(&mut self, text: Vec<u8>);
}

impl Sink for Vec<Bytes> {
    fn header(&mut self, header: &Header) {
        self.push(header.text.clone());
    }
    fn fixed(&mut self, body: &Body) {
        self.push(body.text.clone());
    }
    fn text(&mut self, text: Vec<u8>) {
        self.push(Bytes::from(text));
    }
}

impl Sink for GzipWriter {
    fn header(&mut self, header: &Header) {
        self.segment(&header.gz);
    }
    fn fixed(&mut self, body: &Body) {
        self.segment(&body.gz);
    }
    fn text(&mut self, text: Vec<u8>) {
        GzipWriter::text(self, &text);
    }
}

fn render_into(snapshots: &[Arc<Snapshot>], now: Nanos, out: &mut impl Sink) {
    for f in Family::ALL {
        let i = *f as usize;
        if snapshots.iter().all(|s| s.bodies[i].is_empty()) {
            continue;
        }
        out.header(&HEADERS[i]);
        for s in snapshots {
            let b = &s.bodies[i];
            out.fixed(b);
            if !b.live.is_empty() {
                let mut text = Vec::with_capacity(b.live.iter().map(|(p, _)| p.len() + 24).sum());
                for (prefix, v) in &b.live {
                    text.extend_from_slice(prefix);
                    write_value(&mut text, v.at(now));
                    text.push(b'\n');
                }
                out.text(text);
            }
        }
    }
}

/// [`render`] into one buffer.
#[cfg(test)]
pub fn render_text(snapshots: &[Arc<Snapshot>], now: Nanos) -> Vec<u8> {
    render(snapshots, now).concat()
}
