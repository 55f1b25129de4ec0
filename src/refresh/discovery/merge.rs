//! Merging a fresh listing into what is tracked: what only the exporter
//! knows of an item (its limits, whether it was counted) survives, and an
//! incomplete listing never drops what it may have skipped.

use std::collections::{HashMap, HashSet};

use crate::model::{StepExecution, WorkflowExecution};
use crate::tracking::tracked::{Limits, TrackedBuild, TrackedStep, TrackedWorkflow};

/// Merges a fresh listing of a build's workflow executions. When the
/// listing skipped unusable items, executions it did not show are kept: they
/// may be the skipped ones.
pub(super) fn apply_workflows(tb: &mut TrackedBuild, list: Vec<WorkflowExecution>, complete: bool) {
    let merged = merge(
        tb.workflows.take(),
        list,
        |w: &TrackedWorkflow| &w.exec.id,
        |e: &WorkflowExecution| &e.id,
        !complete,
        |w, exec| w.exec = exec,
        |exec| TrackedWorkflow {
            exec,
            steps: None,
            frozen: false,
        },
    );
    tb.frozen = complete
        && tb.build.status.is_terminal()
        && merged.iter().all(|w| w.exec.status.is_terminal());
    tb.workflows = Some(merged);
}

/// Merges a fresh listing of a workflow execution's steps.
pub(super) fn apply_steps(
    w: &mut TrackedWorkflow,
    list: Vec<StepExecution>,
    baseline: bool,
    complete: bool,
) {
    let merged = merge(
        w.steps.take(),
        list,
        |s: &TrackedStep| &s.exec.id,
        |e: &StepExecution| &e.id,
        !complete,
        |s, exec| s.exec = exec,
        |exec| TrackedStep {
            // Terminal before we ever saw it, in a build that existed at
            // start-up: seed, do not count.
            counted: baseline && exec.status.is_terminal(),
            exec,
            limits: Limits::Unknown,
            on_failure: None,
        },
    );
    w.frozen = complete
        && w.exec.status.is_terminal()
        && merged.iter().all(|s| s.exec.status.is_terminal());
    w.steps = Some(merged);
}

/// Merges `fresh` items into `old` ones by ID: known items are updated in
/// place (keeping what only we know of them), new ones created, duplicates
/// ignored. Items missing from `fresh` are dropped, or kept at the end in
/// their old order when `keep_unlisted`.
fn merge<T, N>(
    old: Option<Vec<T>>,
    fresh: Vec<N>,
    old_id: impl Fn(&T) -> &str,
    new_id: impl Fn(&N) -> &str,
    keep_unlisted: bool,
    update: impl Fn(&mut T, N),
    create: impl Fn(N) -> T,
) -> Vec<T> {
    let mut old: Vec<Option<T>> = old.unwrap_or_default().into_iter().map(Some).collect();
    let index: HashMap<String, usize> = old
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|t| (old_id(t).to_string(), i)))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(fresh.len());
    for n in fresh {
        if !seen.insert(new_id(&n).to_string()) {
            continue; // listed twice
        }
        match index.get(new_id(&n)).and_then(|i| old[*i].take()) {
            Some(mut t) => {
                update(&mut t, n);
                out.push(t);
            }
            None => out.push(create(n)),
        }
    }
    if keep_unlisted {
        out.extend(old.into_iter().flatten());
    }
    out
}
