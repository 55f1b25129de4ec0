//! Each step's last conclusive outcome (the newest execution that
//! COMPLETED or FAILED), which decides whether a failure is still open, and
//! the older executions that must be listed to know it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::{StepStatus, WorkflowExecution, WorkflowStatus};
use crate::tracking::tracked::{
    build_order, execution_order, latest_steps, TrackedBuild, TrackedStep, TrackedWorkflow,
    WorkflowKey,
};

/// The newest conclusive execution of one step: the last time it either
/// COMPLETED or FAILED. A retry still running, or a later build that
/// skipped or cancelled the step, does not change it.
#[derive(Debug, Clone, Copy)]
pub struct Conclusive<'a> {
    pub build: &'a TrackedBuild,
    pub workflow: &'a TrackedWorkflow,
    pub step: &'a TrackedStep,
}

/// What the tracked state tells of each step's last conclusive outcome.
#[derive(Debug, Default)]
pub struct Outcomes<'a> {
    /// One per step of each (image, workflow ARN) whose conclusive
    /// execution is listed, in key order. A step settled by the counts of
    /// an unlisted execution (every step COMPLETED) has none: no failure
    /// is open for it.
    pub conclusive: Vec<(WorkflowKey, Conclusive<'a>)>,
    /// Executions whose steps must be listed to know the outcome of some
    /// step: older executions behind a newest one that ran, skipped or
    /// cancelled it. (build ARN, workflow execution ID)
    pub gaps: Vec<(Arc<str>, String)>,
}

/// Whether an execution's own counts (from `ListWorkflowExecutions`) show
/// that it COMPLETED with every step COMPLETED: none failed, none skipped.
fn all_steps_completed(e: &WorkflowExecution) -> bool {
    e.status == WorkflowStatus::Completed
        && e.total_steps.is_some_and(|t| t > 0)
        && e.steps_succeeded == e.total_steps
        && e.steps_failed == Some(0)
        && e.steps_skipped.is_none_or(|n| n == 0)
}

/// Every tracked execution of each (image, workflow ARN), newest first, in
/// the order [`select_latest`] uses.
fn executions_newest_first(
    builds: &HashMap<Arc<str>, TrackedBuild>,
) -> Vec<(WorkflowKey, Vec<(&TrackedBuild, usize)>)> {
    let mut groups: HashMap<WorkflowKey, Vec<(&TrackedBuild, usize)>> = HashMap::new();
    for tb in builds.values() {
        for (i, w) in tb.workflows.iter().flatten().enumerate() {
            groups
                .entry(WorkflowKey::new(&tb.build, &w.exec.workflow_arn))
                .or_default()
                .push((tb, i));
        }
    }
    let mut out: Vec<_> = groups.into_iter().collect();
    for (_, execs) in &mut out {
        execs.sort_by(|(a, ai), (b, bi)| {
            let wa = &a.workflows.as_deref().unwrap_or_default()[*ai];
            let wb = &b.workflows.as_deref().unwrap_or_default()[*bi];
            build_order(&b.build, &a.build)
                .then_with(|| execution_order(&wb.exec, *bi, &wa.exec, *ai))
        });
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Walks each workflow's executions from the newest back until every step
/// seen has a conclusive outcome, and says which older executions must be
/// listed for that. Pure: the refresh lists the gaps, then asks again.
pub fn outcomes(builds: &HashMap<Arc<str>, TrackedBuild>) -> Outcomes<'_> {
    let mut out = Outcomes::default();
    for (key, execs) in executions_newest_first(builds) {
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let mut found: HashMap<(&str, &str), Conclusive<'_>> = HashMap::new();
        for (n, (tb, i)) in execs.into_iter().enumerate() {
            let w = &tb.workflows.as_deref().unwrap_or_default()[i];
            let Some(steps) = &w.steps else {
                // The newest execution is listed by the refresh anyway;
                // an older one only when some step is still undecided and
                // its counts do not already say that every step COMPLETED
                // (the same workflow version runs the same steps): then no
                // failure is open, and listing it would tell nothing more.
                if n > 0 && !all_steps_completed(&w.exec) {
                    out.gaps.push((tb.build.arn.clone(), w.exec.id.clone()));
                }
                break;
            };
            for s in latest_steps(steps) {
                let k = (&*s.exec.name, &*s.exec.action);
                seen.insert(k);
                let conclusive =
                    matches!(s.exec.status, StepStatus::Completed | StepStatus::Failed);
                if conclusive && !found.contains_key(&k) {
                    found.insert(
                        k,
                        Conclusive {
                            build: tb,
                            workflow: w,
                            step: s,
                        },
                    );
                }
            }
            if !seen.is_empty() && seen.iter().all(|k| found.contains_key(k)) {
                break;
            }
        }
        let mut found: Vec<_> = found.into_iter().collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        out.conclusive
            .extend(found.into_iter().map(|(_, c)| (key.clone(), c)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StepStatus;
    use crate::tracking::tracked::tests::{
        build, listed, step, tracked, with_status, workflow, WF_B,
    };

    #[test]
    fn the_last_conclusive_outcome_survives_a_retry_in_progress() {
        // Build 1 failed "Build"; build 2 is running it again and has not
        // listed its steps' outcome yet for "Test".
        let failed = listed(
            workflow("wf-a", WF_B, Some(1)),
            vec![
                with_status(step("s1", "Build", None, Some(1)), StepStatus::Failed),
                with_status(step("s2", "Test", None, None), StepStatus::Skipped),
            ],
        );
        let running = listed(
            workflow("wf-b", WF_B, Some(2)),
            vec![
                with_status(step("s3", "Build", None, Some(2)), StepStatus::Running),
                with_status(step("s4", "Test", None, None), StepStatus::Pending),
            ],
        );
        let mut builds: HashMap<_, _> = [
            tracked(build("web", 1, 100), vec![failed]),
            tracked(build("web", 2, 200), vec![running]),
        ]
        .into_iter()
        .collect();
        let o = outcomes(&builds);
        assert!(o.gaps.is_empty());
        let got: Vec<(&str, &str, StepStatus)> = o
            .conclusive
            .iter()
            .map(|(_, c)| {
                (
                    &*c.step.exec.name,
                    c.build.build.version.as_str(),
                    c.step.exec.status.clone(),
                )
            })
            .collect();
        // "Test" never concluded in a tracked build: no outcome at all.
        assert_eq!(got, [("Build", "1.0.0/1", StepStatus::Failed)]);

        // The retry completes: it is the outcome now.
        let b2 = builds.get_mut(build("web", 2, 200).arn.as_ref()).unwrap();
        let steps = b2.workflows.as_mut().unwrap()[0].steps.as_mut().unwrap();
        steps[0].exec.status = StepStatus::Completed;
        let o = outcomes(&builds);
        assert_eq!(o.conclusive.len(), 1);
        assert_eq!(o.conclusive[0].1.build.build.version, "1.0.0/2");
    }

    #[test]
    fn an_older_execution_is_listed_only_while_some_step_is_undecided() {
        let old = workflow("wf-a", WF_B, Some(1));
        let older = workflow("wf-0", WF_B, Some(0));
        let newest = listed(
            workflow("wf-b", WF_B, Some(2)),
            vec![with_status(
                step("s3", "Build", None, Some(2)),
                StepStatus::Running,
            )],
        );
        let builds: HashMap<_, _> = [
            tracked(build("web", 0, 50), vec![older]),
            tracked(build("web", 1, 100), vec![old]),
            tracked(build("web", 2, 200), vec![newest]),
        ]
        .into_iter()
        .collect();
        let o = outcomes(&builds);
        // Only the next older one: the walk stops at the first unlisted.
        assert_eq!(
            o.gaps,
            [(build("web", 1, 100).arn.clone(), "wf-a".to_string())]
        );

        // Nothing undecided: no gap, however much history is unlisted.
        let done = listed(
            workflow("wf-b", WF_B, Some(2)),
            vec![step("s3", "Build", None, Some(2))],
        );
        let builds: HashMap<_, _> = [
            tracked(build("web", 1, 100), vec![workflow("wf-a", WF_B, Some(1))]),
            tracked(build("web", 2, 200), vec![done]),
        ]
        .into_iter()
        .collect();
        assert!(outcomes(&builds).gaps.is_empty());

        // The next older one's counts say every step COMPLETED: nothing is
        // open, nothing to list. Counts with a failure or a skip, or none,
        // are listed.
        let running = || {
            listed(
                workflow("wf-b", WF_B, Some(2)),
                vec![with_status(
                    step("s3", "Build", None, Some(2)),
                    StepStatus::Running,
                )],
            )
        };
        let counted = |ok: i64, failed: i64, skipped: i64| {
            let mut w = workflow("wf-a", WF_B, Some(1));
            w.exec.total_steps = Some(ok + failed + skipped);
            w.exec.steps_succeeded = Some(ok);
            w.exec.steps_failed = Some(failed);
            w.exec.steps_skipped = Some(skipped);
            w
        };
        for (older, listed_again) in [
            (counted(3, 0, 0), false),
            (counted(2, 1, 0), true),
            (counted(2, 0, 1), true),
        ] {
            let builds: HashMap<_, _> = [
                tracked(build("web", 1, 100), vec![older]),
                tracked(build("web", 2, 200), vec![running()]),
            ]
            .into_iter()
            .collect();
            let o = outcomes(&builds);
            assert_eq!(!o.gaps.is_empty(), listed_again, "{:?}", o.gaps);
            assert!(o.conclusive.is_empty());
        }
    }
}
