//! Rendering snapshots at scrape time: the unchanging text shared without a
//! copy, the values that depend on "now" computed.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;

use super::Snapshot;
use crate::base::clock::Nanos;
use crate::base::gzip::gzip;
use crate::metrics::family::Family;
use crate::metrics::text::{write_header, write_value};

/// The workflow families of every target at time `now`, as chunks to send
/// one after the other. Families stay contiguous across targets, as the text
/// format requires; the static text is shared, not copied.
pub fn render(snapshots: &[Arc<Snapshot>], now: Nanos) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(Family::ALL.len() * (1 + 2 * snapshots.len()));
    for f in Family::ALL {
        let i = *f as usize;
        if snapshots.iter().all(|s| s.bodies[i].is_empty()) {
            continue;
        }
        out.push(HEADERS[i].clone());
        for s in snapshots {
            let b = &s.bodies[i];
            if !b.text.is_empty() {
                out.push(b.text.clone());
            }
            if !b.live.is_empty() {
                let mut text = Vec::with_capacity(b.live.iter().map(|(p, _)| p.len() + 24).sum());
                for (prefix, v) in &b.live {
                    text.extend_from_slice(prefix);
                    write_value(&mut text, v.at(now));
                    text.push(b'\n');
                }
                out.push(Bytes::from(text));
            }
        }
    }
    out
}

/// [`render`] followed by `tail` (text computed per scrape), as one gzip
/// stream.
pub fn render_gzip(snapshots: &[Arc<Snapshot>], now: Nanos, tail: Bytes) -> Bytes {
    let mut parts = render(snapshots, now);
    parts.push(tail);
    gzip(&parts)
}

/// The `# HELP` and `# TYPE` lines of every family, in [`Family`] order:
/// they never change.
static HEADERS: LazyLock<Vec<Bytes>> = LazyLock::new(|| {
    Family::ALL
        .iter()
        .map(|f| {
            let mut text = Vec::with_capacity(512);
            write_header(&mut text, f.def());
            Bytes::from(text)
        })
        .collect()
});

/// [`render`] into one buffer.
#[cfg(test)]
pub fn render_text(snapshots: &[Arc<Snapshot>], now: Nanos) -> Vec<u8> {
    render(snapshots, now).concat()
}
