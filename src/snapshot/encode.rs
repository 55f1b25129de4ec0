//! From views and counters to the text of each family, written with
//! `metrics::text` and the typed label sets of `metrics::labels`.

use super::Live;
use crate::base::clock::{secs, Nanos, NANOS_PER_SEC};
use crate::metrics::family::{Family, DURATION_BUCKETS};
use crate::metrics::labels::TagAllowList;
use crate::metrics::labels::{
    encode as labels, BuildLabels, ComponentFailureLabels, DistributionFailureLabels,
    FailureLabels, ImageInfoLabels, LabelSet, MessageLabels, PipelineInfoLabels, ReasonLabels,
    StepInfoLabels, OUTCOME, STATUS, WORKFLOW,
};
use crate::metrics::text::{
    sample_prefix, write_histogram, write_labels, write_sample, write_state_set,
};
use crate::model::{
    BuildStatus, FailureContext, PipelineStatus, RegionFailure, RollbackStatus, StepStatus,
    WorkflowStatus,
};
use crate::tracking::counters::StepCounters;
use crate::tracking::tracked::WorkflowKey;
use crate::tracking::views::{
    BuildRef, FailureView, ImageView, PipelineView, StepView, Views, WorkflowView,
};

/// A family's part while a snapshot is being built.
#[derive(Debug, Default, Clone)]
pub(super) struct Draft {
    pub(super) text: Vec<u8>,
    pub(super) live: Vec<(Box<[u8]>, Live)>,
}

/// The drafts of every family, in [`Family`] order.
struct Drafts(Vec<Draft>);

impl Drafts {
    fn text(&mut self, f: Family) -> &mut Vec<u8> {
        &mut self.0[f as usize].text
    }

    fn sample(&mut self, f: Family, labels: &[u8], extra: &[u8], v: f64) {
        write_sample(self.text(f), f.def().name, labels, extra, v);
    }

    fn live(&mut self, f: Family, labels: &[u8], v: Live) {
        let prefix = sample_prefix(f.def().name, labels, &[]);
        self.0[f as usize].live.push((prefix, v));
    }

    fn state_set<'a>(
        &mut self,
        f: Family,
        labels: &[u8],
        known: impl IntoIterator<Item = &'a str>,
        current: &str,
    ) {
        let [status] = STATUS;
        write_state_set(self.text(f), f.def().name, labels, status, known, current);
    }
}

/// Encodes everything a snapshot shows.
pub(super) fn encode(views: &Views, counters: &StepCounters, tags: &TagAllowList) -> Vec<Draft> {
    let mut d = Drafts(vec![Draft::default(); Family::ALL.len()]);
    for s in &views.steps {
        step(&mut d, &labels(&s.key), s);
    }
    for f in &views.failures {
        failure(&mut d, &labels(&f.key), f);
    }
    for w in &views.workflows {
        workflow(
            &mut d,
            &labels(&WorkflowLabels(&w.key, &w.workflow_type)),
            w,
        );
    }
    for i in &views.images {
        image(&mut d, &labels(&i.key), i, tags);
    }
    for p in &views.pipelines {
        pipeline(&mut d, &labels(&p.key), p);
    }
    let name = Family::StepExecutions.def().name;
    let mut status = Vec::with_capacity(32);
    for (key, s, n) in counters.executions() {
        status.clear();
        write_labels(&mut status, &STATUS, &[s]);
        write_sample(
            d.text(Family::StepExecutions),
            name,
            &labels(key),
            &status,
            n as f64,
        );
    }
    let name = Family::StepExecutionDuration.def().name;
    for (key, h) in counters.durations() {
        let out = d.text(Family::StepExecutionDuration);
        write_histogram(
            out,
            name,
            &labels(key),
            &DURATION_BUCKETS,
            &h.buckets,
            h.sum,
        );
    }
    d.0
}

/// The labels of a workflow's series.
struct WorkflowLabels<'a>(&'a WorkflowKey, &'a str);

impl LabelSet<5> for WorkflowLabels<'_> {
    const NAMES: [&'static str; 5] = WORKFLOW;
    fn values(&self) -> [&str; 5] {
        let k = self.0;
        [&k.account_id, &k.region, &k.image, &k.workflow_arn, self.1]
    }
}

fn build_labels(b: &BuildRef) -> BuildLabels<'_> {
    BuildLabels {
        version: &b.version,
        arn: &b.arn,
    }
}

/// A duration that is either known or still growing.
enum Span {
    Done(Nanos),
    Running(Nanos),
    Unknown,
}

fn span(terminal: bool, start: Option<Nanos>, end: Option<Nanos>) -> Span {
    match (start, end) {
        (Some(s), None) if !terminal => Span::Running(s),
        // No start, an end before the start, or a finished step that lost its
        // end time: no duration rather than an invented one.
        _ => crate::model::span(start, end).map_or(Span::Unknown, Span::Done),
    }
}

fn step(d: &mut Drafts, l: &[u8], s: &StepView) {
    let known = StepStatus::KNOWN.iter().map(StepStatus::as_str);
    d.state_set(Family::StepStatus, l, known, s.status.as_str());
    let dur = span(s.status.is_terminal(), s.start, s.end);
    match dur {
        Span::Done(t) => d.sample(Family::StepDuration, l, &[], secs(t)),
        Span::Running(start) => d.live(Family::StepDuration, l, Live::Elapsed { start }),
        Span::Unknown => {}
    }
    if let Some(t) = s.timeout_seconds {
        d.sample(Family::StepTimeout, l, &[], t as f64);
        match dur {
            Span::Done(x) => {
                d.sample(Family::StepHeadroom, l, &[], secs(t * NANOS_PER_SEC - x));
            }
            Span::Running(start) => {
                d.live(
                    Family::StepHeadroom,
                    l,
                    Live::Headroom { start, timeout: t },
                );
            }
            Span::Unknown => {}
        }
    }
    if let Some(t) = s.start {
        d.sample(Family::StepStart, l, &[], secs(t));
    }
    if let Some(t) = s.end {
        d.sample(Family::StepEnd, l, &[], secs(t));
    }
    if let Some(r) = &s.rollback {
        let known = RollbackStatus::KNOWN.iter().map(RollbackStatus::as_str);
        d.state_set(Family::StepRollbackStatus, l, known, r.as_str());
    }
    let attempt = s.attempt.map(|a| a.to_string()).unwrap_or_default();
    let max_attempts = s.max_attempts.map(|a| a.to_string()).unwrap_or_default();
    let info = StepInfoLabels {
        build: build_labels(&s.build),
        on_failure: s.on_failure.as_deref().unwrap_or_default(),
        attempt: &attempt,
        max_attempts: &max_attempts,
    };
    d.sample(Family::StepInfo, l, &labels(&info), 1.0);
}

fn failure(d: &mut Drafts, l: &[u8], f: &FailureView) {
    let info = MessageLabels(FailureLabels {
        build: build_labels(&f.build),
        text: f.message.as_deref().unwrap_or_default(),
    });
    d.sample(Family::StepFailureInfo, l, &labels(&info), 1.0);
    if let Some(t) = f.end {
        d.sample(Family::StepFailureTimestamp, l, &[], secs(t));
    }
}

fn workflow(d: &mut Drafts, l: &[u8], w: &WorkflowView) {
    let known = WorkflowStatus::KNOWN.iter().map(WorkflowStatus::as_str);
    d.state_set(Family::WorkflowStatus, l, known, w.status.as_str());
    match span(w.status.is_terminal(), w.start, w.end) {
        Span::Done(t) => d.sample(Family::WorkflowDuration, l, &[], secs(t)),
        Span::Running(start) => d.live(Family::WorkflowDuration, l, Live::Elapsed { start }),
        Span::Unknown => {}
    }
    let mut outcome = Vec::with_capacity(24);
    for (name, v) in [
        ("total", w.total),
        ("succeeded", w.succeeded),
        ("failed", w.failed),
        ("skipped", w.skipped),
    ] {
        if let Some(v) = v {
            outcome.clear();
            write_labels(&mut outcome, &OUTCOME, &[name]);
            d.sample(Family::WorkflowSteps, l, &outcome, v as f64);
        }
    }
    if w.failed() {
        let info = MessageLabels(FailureLabels {
            build: build_labels(&w.build),
            text: w.message.as_deref().unwrap_or_default(),
        });
        d.sample(Family::WorkflowFailureInfo, l, &labels(&info), 1.0);
    }
}

fn image(d: &mut Drafts, l: &[u8], i: &ImageView, tags: &TagAllowList) {
    if let Some(n) = &i.newest {
        let known = BuildStatus::KNOWN.iter().map(BuildStatus::as_str);
        d.state_set(Family::ImageBuildStatus, l, known, n.status.as_str());
        let info = ImageInfoLabels {
            build: build_labels(&n.build),
            build_type: n.build_type.as_deref().unwrap_or_default(),
            log_group: &n.log_group,
        };
        d.sample(Family::ImageBuildInfo, l, &labels(&info), 1.0);
        if n.status == BuildStatus::Failed {
            let info = ReasonLabels(FailureLabels {
                build: build_labels(&n.build),
                text: n.reason.as_deref().unwrap_or_default(),
            });
            d.sample(Family::ImageBuildFailureInfo, l, &labels(&info), 1.0);
        }
        if let Some(f) = &n.failure {
            failure_context(d, l, &n.build, f);
        }
        if !tags.is_empty() {
            // The allow-list is the user's: its length is known only at
            // run time, so these labels are the one untyped set.
            let names: Vec<&str> = tags.labels().iter().map(String::as_str).collect();
            let values: Vec<&str> = n
                .tags
                .iter()
                .map(|v| v.as_deref().unwrap_or_default())
                .collect();
            let mut extra = Vec::with_capacity(64);
            write_labels(&mut extra, &names, &values);
            d.sample(Family::ImageTags, l, &extra, 1.0);
        }
    }
    if let Some(t) = i.last_success {
        d.sample(Family::ImageLastSuccess, l, &[], secs(t));
    }
}

/// The component and Regions a failed build names in its failure context.
fn failure_context(d: &mut Drafts, l: &[u8], build: &BuildRef, f: &FailureContext) {
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    if let Some(c) = &f.component {
        let info = ComponentFailureLabels {
            build: build_labels(build),
            failed_step: f.failed_step.as_deref().unwrap_or_default(),
            component: &c.component,
            phase: c.phase.as_deref().unwrap_or_default(),
            component_step: c.step.as_deref().unwrap_or_default(),
            action: c.action.as_deref().unwrap_or_default(),
            message: c.message.as_deref().unwrap_or_default(),
        };
        d.sample(Family::ImageComponentFailureInfo, l, &labels(&info), 1.0);
    }
    if let Some(dist) = &f.distribution {
        // A Region's own message, else the distribution's; a failure that
        // names no Region is still one series, with the message it has.
        let mut rows: Vec<RegionFailure> = dist
            .regions
            .iter()
            .map(|r| RegionFailure {
                message: r.message.clone().or_else(|| dist.message.clone()),
                ..r.clone()
            })
            .collect();
        if rows.is_empty() {
            rows.push(RegionFailure {
                message: dist.message.clone(),
                ..RegionFailure::default()
            });
        }
        // Entries the labels cannot tell apart would be one series twice.
        rows.sort();
        rows.dedup();
        for r in &rows {
            let (region, account, status, step, message) = (
                text(&r.region),
                text(&r.account_id),
                text(&r.status),
                text(&r.configuration_step),
                text(&r.message),
            );
            let info = DistributionFailureLabels {
                build: build_labels(build),
                region: &region,
                account_id: &account,
                status: &status,
                configuration_step: &step,
                message: &message,
            };
            d.sample(Family::ImageDistributionFailureInfo, l, &labels(&info), 1.0);
        }
    }
}

fn pipeline(d: &mut Drafts, l: &[u8], v: &PipelineView) {
    let p = &v.pipeline;
    let known = PipelineStatus::KNOWN.iter().map(PipelineStatus::as_str);
    d.state_set(Family::PipelineStatus, l, known, p.status.as_str());
    if let Some(n) = p.consecutive_failures {
        d.sample(Family::PipelineConsecutiveFailures, l, &[], n as f64);
    }
    let schedule = p.schedule.clone().unwrap_or_default();
    if let Some(n) = schedule.auto_disable_failure_count {
        d.sample(Family::PipelineAutoDisableFailureLimit, l, &[], n as f64);
    }
    if let Some(s) = &p.last_run_status {
        let known = BuildStatus::KNOWN.iter().map(BuildStatus::as_str);
        d.state_set(Family::PipelineLastRunStatus, l, known, s.as_str());
    }
    if let Some(t) = p.next_run {
        d.sample(Family::PipelineNextRun, l, &[], secs(t));
    }
    let info = PipelineInfoLabels {
        arn: &p.arn,
        schedule_expression: schedule.expression.as_deref().unwrap_or_default(),
        timezone: schedule.timezone.as_deref().unwrap_or_default(),
        start_condition: schedule.start_condition.as_deref().unwrap_or_default(),
    };
    d.sample(Family::PipelineInfo, l, &labels(&info), 1.0);
}
