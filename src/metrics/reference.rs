//! The metrics reference, docs/metrics.md, written from the metric table.
//!
//! The file is prose by hand (what the families share, how they join) with
//! the tables generated between markers, one per [`Section`] and one of the
//! shared label sets:
//!
//! ```text
//! <!-- BEGIN metrics table `step`: generated from … -->
//! | Metric | Type | Labels | Meaning |
//! …
//! <!-- END metrics table `step` -->
//! ```
//!
//! [`update`] rewrites what lies between the markers and leaves the rest
//! alone; `cargo run --example metrics-reference` applies it to the file,
//! and a unit test fails when the checked-in file is not what it gives.

use std::fmt::Write;

use super::family::{contract, FamilyDef, Kind, Section, LABEL_SETS};

/// How the command that updates the file is named, in the markers and in
/// the failing test's message.
pub const COMMAND: &str = "cargo run --example metrics-reference";

/// The start of a begin marker, before the table's id.
const BEGIN: &str = "<!-- BEGIN metrics table `";

/// The id of the table of shared label sets.
const LABELS: &str = "labels";

/// A reference whose markers cannot be filled in. Each names the table, so
/// that the writer of the prose knows which marker to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("no table `{0}`: add a line `{BEGIN}{0}` -->` and one `<!-- END metrics table `{0}` -->` where its families are described")]
    Missing(&'static str),
    #[error("table `{0}` is not one of the metric table's (labels, step, workflow, image, pipeline, lifetime, exporter)")]
    Unknown(String),
    #[error("table `{0}` appears twice: keep one")]
    Twice(String),
    #[error("table `{0}` has no end marker `<!-- END metrics table `{0}` -->`")]
    Unclosed(String),
}

/// `doc` with every generated table written afresh from the metric table.
pub fn update(doc: &str) -> Result<String, ReferenceError> {
    let mut out = String::with_capacity(doc.len());
    let mut seen: Vec<String> = Vec::new();
    let mut rest = doc;
    while let Some(at) = rest.find(BEGIN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + BEGIN.len()..];
        let id = after.split('`').next().unwrap_or_default().to_string();
        let table = render(&id).ok_or_else(|| ReferenceError::Unknown(id.clone()))?;
        if seen.contains(&id) {
            return Err(ReferenceError::Twice(id));
        }
        let end = end_marker(&id);
        let close = after
            .find(&end)
            .ok_or_else(|| ReferenceError::Unclosed(id.clone()))?;
        out.push_str(&begin_marker(&id));
        out.push('\n');
        out.push_str(&table);
        out.push_str(&end);
        rest = &after[close + end.len()..];
        seen.push(id);
    }
    out.push_str(rest);
    for id in ids() {
        if !seen.iter().any(|s| s == id) {
            return Err(ReferenceError::Missing(id));
        }
    }
    Ok(out)
}

/// Every table the reference must hold.
fn ids() -> impl Iterator<Item = &'static str> {
    std::iter::once(LABELS).chain(Section::ALL.iter().map(|s| s.id()))
}

fn begin_marker(id: &str) -> String {
    format!("{BEGIN}{id}`: generated from src/metrics/family.rs, do not edit; run `{COMMAND}` to update -->")
}

fn end_marker(id: &str) -> String {
    format!("<!-- END metrics table `{id}` -->")
}

/// The Markdown table of `id`, or `None` for an id the table does not have.
fn render(id: &str) -> Option<String> {
    let mut out = String::new();
    if id == LABELS {
        out.push_str("| Label set | Labels |\n|---|---|\n");
        for (name, labels) in LABEL_SETS {
            let _ = writeln!(out, "| {name} labels | {} |", code_list(labels.iter()));
        }
        return Some(out);
    }
    let section = Section::ALL.into_iter().find(|s| s.id() == id)?;
    out.push_str("| Metric | Type | Labels | Meaning |\n|---|---|---|---|\n");
    for f in contract().filter(|f| f.section == section) {
        let mut meaning = f.meaning().to_string();
        if f.kind == Kind::Histogram {
            let _ = write!(meaning, " Buckets: {}.", buckets(f.buckets));
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            f.name,
            f.kind,
            labels(f),
            cell(&meaning)
        );
    }
    Some(out)
}

/// A row's labels: a shared set by its name, then what the row adds.
fn labels(f: &FamilyDef) -> String {
    let mut parts = f.labels.iter();
    let shared = f
        .labels
        .first()
        .and_then(|first| LABEL_SETS.iter().find(|(_, set)| set == first))
        .map(|(name, _)| format!("{name} labels"));
    if shared.is_some() {
        parts.next();
    }
    let own = parts.flat_map(|p| p.iter());
    let listed = code_list(own);
    match (shared, listed.is_empty()) {
        (Some(s), true) => s,
        (Some(s), false) => format!("{s}, {listed}"),
        (None, true) => "none".into(),
        (None, false) => listed,
    }
}

fn code_list<'a>(names: impl Iterator<Item = &'a &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text that stays in its table cell: a `|` would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Bucket bounds as people read them: `1, 2, 5 s, 1, 2 min`, each run of
/// bounds in the largest unit that keeps them at 1 or more.
fn buckets(bounds: &[f64]) -> String {
    let unit = |v: f64| match v {
        v if v < 1.0 => ("ms", 0.001),
        v if v < 60.0 => ("s", 1.0),
        v if v < 3600.0 => ("min", 60.0),
        _ => ("h", 3600.0),
    };
    let mut runs: Vec<(&str, Vec<String>)> = Vec::new();
    for &b in bounds {
        let (name, size) = unit(b);
        // Rounded to a millionth: 0.64 / 0.001 is 640.0000000000001.
        let n = ((b / size) * 1e6).round() / 1e6;
        match runs.last_mut() {
            Some((u, values)) if *u == name => values.push(n.to_string()),
            _ => runs.push((name, vec![n.to_string()])),
        }
    }
    runs.iter()
        .map(|(u, values)| format!("{} {u}", values.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The skeleton of a reference: every marker, stale content inside.
    fn skeleton() -> String {
        ids()
            .map(|id| {
                format!(
                    "## {id}\n\nProse about {id}.\n\n{BEGIN}{id}` -->\nstale\n{}\n",
                    end_marker(id)
                )
            })
            .collect()
    }

    #[test]
    fn tables_are_rewritten_and_prose_kept() {
        let doc = update(&skeleton()).unwrap();
        assert!(!doc.contains("stale"));
        assert!(doc.contains("Prose about pipeline.\n\n<!-- BEGIN metrics table `pipeline`: generated from src/metrics/family.rs, do not edit; run `cargo run --example metrics-reference` to update -->\n| Metric | Type | Labels | Meaning |\n"));
        assert_eq!(update(&doc).unwrap(), doc, "stable");
        for f in contract() {
            assert_eq!(
                doc.matches(&format!("| `{}` |", f.name)).count(),
                1,
                "{}",
                f.name
            );
        }
        assert!(doc.contains("| `imagebuilder_workflow_step_info` | gauge | step labels, `image_version`, `image_build_version_arn`, `on_failure`, `attempt`, `max_attempts` | 1. Which build"));
        assert!(doc.contains("| `imagebuilder_exporter_scrape_timeouts_total` | counter | none |"));
        assert!(doc.contains("| `imagebuilder_exporter_api_errors_total` | counter | `target`, `operation`, `code` |"));
        assert!(doc.contains("| step labels | `account_id`, `region`, `image`, `workflow_arn`, `workflow_type`, `step_name`, `action` |"));
    }

    #[test]
    fn bad_markers_are_named() {
        let doc = skeleton();
        let without = doc.replace(&format!("{BEGIN}image` -->"), "");
        assert_eq!(update(&without), Err(ReferenceError::Missing("image")));
        let unknown = format!("{doc}{BEGIN}steps` -->\n{}\n", end_marker("steps"));
        assert_eq!(
            update(&unknown),
            Err(ReferenceError::Unknown("steps".into()))
        );
        let twice = format!("{doc}{BEGIN}step` -->\n{}\n", end_marker("step"));
        assert_eq!(update(&twice), Err(ReferenceError::Twice("step".into())));
        let unclosed = doc.replace(&end_marker("lifetime"), "");
        assert_eq!(
            update(&unclosed),
            Err(ReferenceError::Unclosed("lifetime".into()))
        );
    }

    #[test]
    fn buckets_read_in_units() {
        use crate::metrics::family::{Family, Own};
        assert_eq!(
            buckets(Family::StepExecutionDuration.def().buckets),
            "1, 2, 5, 10, 20, 30 s, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45 min, 1, 1.5, 2, 3, 4, 6, 8, 12 h"
        );
        assert_eq!(
            buckets(Own::ApiDuration.def().buckets),
            "5, 10, 20, 40, 80, 160, 320, 640 ms, 1.28, 2.56, 5.12, 10.24 s"
        );
        assert_eq!(
            buckets(Own::EventDelay.def().buckets),
            "500 ms, 1, 2.5, 5, 10, 30 s, 1, 5, 15 min"
        );
        assert_eq!(cell("a | b"), "a \\| b");
    }

    /// The checked-in reference is what the table gives: a change to a
    /// name, label, help or meaning updates the docs in the same commit.
    #[test]
    fn docs_metrics_md_is_generated_from_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md");
        let doc = std::fs::read_to_string(path).expect("docs/metrics.md");
        let fresh = update(&doc).unwrap_or_else(|e| panic!("docs/metrics.md: {e}"));
        if let Some((n, (was, is))) = doc
            .lines()
            .zip(fresh.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            panic!(
                "docs/metrics.md is not what the metric table (src/metrics/family.rs) gives, from line {}:\n  checked in: {was}\n  generated:  {is}\nRun `{COMMAND}` to update it.",
                n + 1
            );
        }
        assert_eq!(doc, fresh, "docs/metrics.md is stale: run `{COMMAND}`");
    }
}
