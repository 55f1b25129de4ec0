//! Links and anchors of the Markdown pages, read as GitHub reads them.

use crate::shared::docs::{headings, prose_lines};

/// GitHub's anchor of a Markdown heading: lower case, spaces to `-`,
/// punctuation other than `-` and `_` dropped (so "What `--demo` shows" is
/// `what---demo-shows`).
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a page, as GitHub makes them: a heading whose anchor an
/// earlier heading already has gets `-1`, `-2`, … appended.
pub fn anchors(text: &str) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut out = std::collections::BTreeSet::new();
    for (_, title, _) in headings(text) {
        let base = anchor(&title);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The link targets of a text (`[text](target)` and `[label]: target`),
/// outside code blocks and inline code.
pub fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, line) in prose_lines(text) {
        // Inline code is not a link, whatever it holds.
        let mut prose = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                prose.push_str(part);
            }
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push(target.trim_matches(['<', '>']).to_string());
            rest = &after[end..];
        }
        let trimmed = prose.trim_start();
        if let Some(def) = trimmed.strip_prefix('[') {
            if let Some((_, target)) = def.split_once("]: ") {
                out.push(target.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    }
    out
}
