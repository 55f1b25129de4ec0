//! The immutable result of a refresh, and its rendering at scrape time.
//!
//! A refresh ends by building a [`Snapshot`] and swapping it in whole:
//! scrapes never see half a refresh. Most of the text is encoded once, here;
//! only the few time-dependent values (how long a running step has been
//! running, and its headroom) are computed per scrape. That keeps `/metrics`
//! close to the cost of copying bytes however large the account.

use std::sync::Arc;

use bytes::Bytes;

use crate::clock::{secs, Nanos, NANOS_PER_SEC};
use crate::counters::StepCounters;
use crate::gzip::{GzipWriter, Segment};
use crate::metrics::family::{Family, FamilyDef, IMAGE_LABELS, STEP_LABELS, WORKFLOW_LABELS};
use crate::metrics::text::{write_header, write_labels, write_value};
use crate::model::{BuildStatus, RollbackStatus, StepStatus, WorkflowStatus};
use crate::views::{BuildRef, FailureView, ImageView, StepView, TagAllowList, Views, WorkflowView};

/// A value that depends on the time of the scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Live {
    /// now − start (never below 0: a clock behind the API's is not a
    /// negative duration).
    Elapsed { start: Nanos },
    /// timeout − (now − start).
    Headroom { start: Nanos, timeout: i64 },
}

impl Live {
    fn at(self, now: Nanos) -> f64 {
        match self {
            Live::Elapsed { start } => secs(now.saturating_sub(start).max(0)),
            Live::Headroom { start, timeout } => {
                secs(timeout * NANOS_PER_SEC - now.saturating_sub(start).max(0))
            }
        }
    }
}

/// One family's part of a snapshot.
#[derive(Debug, Default, Clone)]
struct Body {
    /// Samples that do not depend on time, encoded once; shared by every
    /// scrape without copying.
    text: Bytes,
    /// Samples computed at scrape time: the encoded `name{labels} ` and how
    /// to compute the value.
    live: Vec<(Box<[u8]>, Live)>,
    /// `text` compressed: by the refresh, so that gzip scrapes (all of
    /// Prometheus' scrapes) only join segments.
    gz: Segment,
}

/// A family's part while a snapshot is being built.
#[derive(Debug, Default, Clone)]
struct Draft {
    text: Vec<u8>,
    live: Vec<(Box<[u8]>, Live)>,
}

impl Body {
    fn is_empty(&self) -> bool {
        self.text.is_empty() && self.live.is_empty()
    }
}

/// One target's data as of its last refresh.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub target: Arc<str>,
    bodies: Vec<Body>,
    /// The (account, region) pairs its series belong to.
    scopes: Vec<(Arc<str>, Arc<str>)>,
}

impl Snapshot {
    /// What is served before anything was read.
    pub fn empty(target: &str) -> Self {
        Self {
            target: Arc::from(target),
            bodies: vec![Body::default(); Family::ALL.len()],
            scopes: Vec::new(),
        }
    }

    /// Encodes the views and counters.
    pub fn build(
        target: &str,
        views: &Views,
        counters: &StepCounters,
        tags: &TagAllowList,
    ) -> Self {
        let mut bodies = vec![Draft::default(); Family::ALL.len()];
        let mut labels = Vec::with_capacity(512);
        for s in &views.steps {
            labels.clear();
            write_labels(&mut labels, &STEP_LABELS, &s.key.label_values());
            encode_step(&mut bodies, &labels, s);
        }
        for f in &views.failures {
            labels.clear();
            write_labels(&mut labels, &STEP_LABELS, &f.key.label_values());
            encode_failure(&mut bodies, &labels, f);
        }
        for w in &views.workflows {
            labels.clear();
            let values = [
                &*w.key.account_id,
                &*w.key.region,
                &*w.key.image,
                &*w.key.workflow_arn,
                &*w.workflow_type,
            ];
            write_labels(&mut labels, &WORKFLOW_LABELS, &values);
            encode_workflow(&mut bodies, &labels, w);
        }
        for i in &views.images {
            labels.clear();
            let values = [&*i.key.account_id, &*i.key.region, &*i.key.image];
            write_labels(&mut labels, &IMAGE_LABELS, &values);
            encode_image(&mut bodies, &labels, i, tags);
        }
        counters.encode_executions(
            Family::StepExecutions.def().name,
            &mut bodies[Family::StepExecutions as usize].text,
        );
        counters.encode_durations(
            Family::StepExecutionDuration.def().name,
            &mut bodies[Family::StepExecutionDuration as usize].text,
        );
        Self {
            target: Arc::from(target),
            bodies: bodies
                .into_iter()
                .map(|d| Body {
                    gz: Segment::compress(&d.text),
                    text: Bytes::from(d.text),
                    live: d.live,
                })
                .collect(),
            scopes: views.scopes(),
        }
    }

    /// Bytes held by the encoded text, for the memory figures.
    pub fn encoded_len(&self) -> usize {
        self.bodies.iter().map(|b| b.text.len()).sum()
    }

    /// The (account, region) pairs this snapshot's series belong to.
    pub fn scopes(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.scopes
    }
}

/// `,name="value",…` for labels that follow a family's fixed ones.
fn extra(names: &[&str], values: &[&str]) -> String {
    let mut out = vec![b','];
    write_labels(&mut out, names, values);
    String::from_utf8(out).unwrap_or_default()
}

/// The labels naming the build version a row comes from.
fn build_labels(b: &BuildRef) -> [&str; 2] {
    [&b.version, &b.arn]
}

const BUILD_LABELS: [&str; 2] = ["image_version", "image_build_version_arn"];

fn sample(body: &mut Draft, def: &FamilyDef, labels: &[u8], extra: &str, v: f64) {
    let t = &mut body.text;
    t.extend_from_slice(def.name.as_bytes());
    t.push(b'{');
    t.extend_from_slice(labels);
    t.extend_from_slice(extra.as_bytes());
    t.extend_from_slice(b"} ");
    write_value(t, v);
    t.push(b'\n');
}

fn live(body: &mut Draft, def: &FamilyDef, labels: &[u8], v: Live) {
    let mut prefix = Vec::with_capacity(def.name.len() + labels.len() + 3);
    prefix.extend_from_slice(def.name.as_bytes());
    prefix.push(b'{');
    prefix.extend_from_slice(labels);
    prefix.extend_from_slice(b"} ");
    body.live.push((prefix.into_boxed_slice(), v));
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

fn state_set<T: PartialEq>(
    body: &mut Draft,
    def: &FamilyDef,
    labels: &[u8],
    known: &[T],
    current: &T,
    as_str: impl Fn(&T) -> &str,
) {
    let mut extra = String::with_capacity(40);
    for k in known {
        extra.clear();
        extra.push_str(",status=\"");
        extra.push_str(as_str(k));
        extra.push('"');
        sample(
            body,
            def,
            labels,
            &extra,
            if k == current { 1.0 } else { 0.0 },
        );
    }
    if !known.contains(current) {
        // A status outside the model (WAITING) gets its own series.
        let mut v = Vec::new();
        crate::metrics::text::write_label_value(&mut v, as_str(current));
        let extra = format!(",status=\"{}\"", String::from_utf8_lossy(&v));
        sample(body, def, labels, &extra, 1.0);
    }
}

fn encode_step(bodies: &mut [Draft], labels: &[u8], s: &StepView) {
    state_set(
        &mut bodies[Family::StepStatus as usize],
        Family::StepStatus.def(),
        labels,
        StepStatus::KNOWN,
        &s.status,
        |x| x.as_str(),
    );
    let dur = span(s.status.is_terminal(), s.start, s.end);
    let def = Family::StepDuration.def();
    let body = &mut bodies[Family::StepDuration as usize];
    match dur {
        Span::Done(d) => sample(body, def, labels, "", secs(d)),
        Span::Running(start) => live(body, def, labels, Live::Elapsed { start }),
        Span::Unknown => {}
    }
    if let Some(t) = s.timeout_seconds {
        let def = Family::StepTimeout.def();
        sample(
            &mut bodies[Family::StepTimeout as usize],
            def,
            labels,
            "",
            t as f64,
        );
        let def = Family::StepHeadroom.def();
        let body = &mut bodies[Family::StepHeadroom as usize];
        match dur {
            Span::Done(d) => sample(body, def, labels, "", secs(t * NANOS_PER_SEC - d)),
            Span::Running(start) => live(body, def, labels, Live::Headroom { start, timeout: t }),
            Span::Unknown => {}
        }
    }
    if let Some(t) = s.start {
        let def = Family::StepStart.def();
        sample(
            &mut bodies[Family::StepStart as usize],
            def,
            labels,
            "",
            secs(t),
        );
    }
    if let Some(t) = s.end {
        let def = Family::StepEnd.def();
        sample(
            &mut bodies[Family::StepEnd as usize],
            def,
            labels,
            "",
            secs(t),
        );
    }
    if let Some(r) = &s.rollback {
        state_set(
            &mut bodies[Family::StepRollbackStatus as usize],
            Family::StepRollbackStatus.def(),
            labels,
            RollbackStatus::KNOWN,
            r,
            |x| x.as_str(),
        );
    }
    let attempt = s.attempt.map(|a| a.to_string()).unwrap_or_default();
    let max_attempts = s.max_attempts.map(|a| a.to_string()).unwrap_or_default();
    let [version, arn] = build_labels(&s.build);
    sample(
        &mut bodies[Family::StepInfo as usize],
        Family::StepInfo.def(),
        labels,
        &extra(
            &[
                BUILD_LABELS[0],
                BUILD_LABELS[1],
                "on_failure",
                "attempt",
                "max_attempts",
            ],
            &[
                version,
                arn,
                s.on_failure.as_deref().unwrap_or_default(),
                &attempt,
                &max_attempts,
            ],
        ),
        1.0,
    );
}

fn encode_failure(bodies: &mut [Draft], labels: &[u8], f: &FailureView) {
    let [version, arn] = build_labels(&f.build);
    sample(
        &mut bodies[Family::StepFailureInfo as usize],
        Family::StepFailureInfo.def(),
        labels,
        &extra(
            &[BUILD_LABELS[0], BUILD_LABELS[1], "message"],
            &[version, arn, f.message.as_deref().unwrap_or_default()],
        ),
        1.0,
    );
    if let Some(t) = f.end {
        sample(
            &mut bodies[Family::StepFailureTimestamp as usize],
            Family::StepFailureTimestamp.def(),
            labels,
            "",
            secs(t),
        );
    }
}

fn encode_image(bodies: &mut [Draft], labels: &[u8], i: &ImageView, tags: &TagAllowList) {
    if let Some(n) = &i.newest {
        state_set(
            &mut bodies[Family::ImageBuildStatus as usize],
            Family::ImageBuildStatus.def(),
            labels,
            BuildStatus::KNOWN,
            &n.status,
            |x| x.as_str(),
        );
        let [version, arn] = build_labels(&n.build);
        sample(
            &mut bodies[Family::ImageBuildInfo as usize],
            Family::ImageBuildInfo.def(),
            labels,
            &extra(
                &[BUILD_LABELS[0], BUILD_LABELS[1], "build_type", "log_group"],
                &[
                    version,
                    arn,
                    n.build_type.as_deref().unwrap_or_default(),
                    &n.log_group,
                ],
            ),
            1.0,
        );
        if n.status == BuildStatus::Failed {
            sample(
                &mut bodies[Family::ImageBuildFailureInfo as usize],
                Family::ImageBuildFailureInfo.def(),
                labels,
                &extra(
                    &[BUILD_LABELS[0], BUILD_LABELS[1], "reason"],
                    &[version, arn, n.reason.as_deref().unwrap_or_default()],
                ),
                1.0,
            );
        }
        if !tags.is_empty() {
            let names: Vec<&str> = tags.labels().iter().map(String::as_str).collect();
            let values: Vec<&str> = n
                .tags
                .iter()
                .map(|v| v.as_deref().unwrap_or_default())
                .collect();
            sample(
                &mut bodies[Family::ImageTags as usize],
                Family::ImageTags.def(),
                labels,
                &extra(&names, &values),
                1.0,
            );
        }
    }
    if let Some(t) = i.last_success {
        sample(
            &mut bodies[Family::ImageLastSuccess as usize],
            Family::ImageLastSuccess.def(),
            labels,
            "",
            secs(t),
        );
    }
}

fn encode_workflow(bodies: &mut [Draft], labels: &[u8], w: &WorkflowView) {
    state_set(
        &mut bodies[Family::WorkflowStatus as usize],
        Family::WorkflowStatus.def(),
        labels,
        WorkflowStatus::KNOWN,
        &w.status,
        |x| x.as_str(),
    );
    let def = Family::WorkflowDuration.def();
    let body = &mut bodies[Family::WorkflowDuration as usize];
    match span(w.status.is_terminal(), w.start, w.end) {
        Span::Done(d) => sample(body, def, labels, "", secs(d)),
        Span::Running(start) => live(body, def, labels, Live::Elapsed { start }),
        Span::Unknown => {}
    }
    let def = Family::WorkflowSteps.def();
    let body = &mut bodies[Family::WorkflowSteps as usize];
    for (outcome, v) in [
        ("total", w.total),
        ("succeeded", w.succeeded),
        ("failed", w.failed),
        ("skipped", w.skipped),
    ] {
        if let Some(v) = v {
            sample(
                body,
                def,
                labels,
                &format!(",outcome=\"{outcome}\""),
                v as f64,
            );
        }
    }
    if w.failed() {
        let [version, arn] = build_labels(&w.build);
        sample(
            &mut bodies[Family::WorkflowFailureInfo as usize],
            Family::WorkflowFailureInfo.def(),
            labels,
            &extra(
                &[BUILD_LABELS[0], BUILD_LABELS[1], "message"],
                &[version, arn, w.message.as_deref().unwrap_or_default()],
            ),
            1.0,
        );
    }
}

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

/// Where [`render_into`] writes the page.
trait Sink {
    /// The unchanging part of a family's body.
    fn fixed(&mut self, body: &Body);
    /// Text computed for this scrape.
    fn text(&mut self, text: Vec<u8>);
}

impl Sink for Vec<Bytes> {
    fn fixed(&mut self, body: &Body) {
        self.push(body.text.clone());
    }
    fn text(&mut self, text: Vec<u8>) {
        self.push(Bytes::from(text));
    }
}

impl Sink for GzipWriter {
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
        let mut header = Vec::with_capacity(512);
        write_header(&mut header, f.def());
        out.text(header);
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
pub fn render_text(snapshots: &[Arc<Snapshot>], now: Nanos) -> Vec<u8> {
    render(snapshots, now).concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::StepKey;
    use crate::tracked::WorkflowKey;

    const S: Nanos = 1_788_981_143_418_000_000;

    fn key() -> StepKey {
        StepKey {
            workflow: WorkflowKey {
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                image: "web".into(),
                workflow_arn: "arn:wf".into(),
            },
            workflow_type: "BUILD".into(),
            step_name: "Build".into(),
            action: "ExecuteComponents".into(),
        }
    }

    fn render_one(s: Snapshot, now: Nanos) -> String {
        String::from_utf8(render_text(&[Arc::new(s)], now)).unwrap()
    }

    fn line<'a>(text: &'a str, name: &str, extra: &str) -> Option<&'a str> {
        let prefix = format!(
            "{name}{{account_id=\"123456789012\",region=\"us-east-1\",image=\"web\",workflow_arn=\"arn:wf\",workflow_type=\"BUILD\",step_name=\"Build\",action=\"ExecuteComponents\"{extra}}} "
        );
        text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    fn snap(steps: &[StepView]) -> Snapshot {
        let views = Views {
            steps: steps.to_vec(),
            ..Views::default()
        };
        Snapshot::build(
            "t",
            &views,
            &StepCounters::default(),
            &TagAllowList::default(),
        )
    }

    fn sv(
        key: StepKey,
        status: StepStatus,
        start: Option<Nanos>,
        end: Option<Nanos>,
        timeout_seconds: Option<i64>,
    ) -> StepView {
        StepView {
            key,
            status,
            start,
            end,
            timeout_seconds,
            rollback: None,
            build: BuildRef {
                version: "1.0.0/1".into(),
                arn: "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1".into(),
            },
            on_failure: None,
            attempt: None,
            max_attempts: None,
        }
    }

    #[test]
    fn finished_step_has_static_duration_and_headroom() {
        let text = render_one(
            snap(&[sv(
                key(),
                StepStatus::Completed,
                Some(S),
                Some(S + 12_418_000_000),
                Some(10),
            )]),
            S + 999 * NANOS_PER_SEC,
        );
        assert_eq!(
            line(&text, "imagebuilder_workflow_step_duration_seconds", ""),
            Some("12.418")
        );
        assert_eq!(
            line(&text, "imagebuilder_workflow_step_timeout_seconds", ""),
            Some("10")
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_timeout_headroom_seconds",
                ""
            ),
            Some("-2.418")
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_status",
                ",status=\"COMPLETED\""
            ),
            Some("1")
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_status",
                ",status=\"RUNNING\""
            ),
            Some("0")
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_end_timestamp_seconds",
                ""
            ),
            Some("1788981155.836")
        );
    }

    #[test]
    fn running_step_grows_at_scrape_time() {
        let s = Arc::new(snap(&[sv(
            key(),
            StepStatus::parse("WAITING"),
            Some(S),
            None,
            Some(3600),
        )]));
        for (after, headroom) in [(10.5, "3589.5"), (70.0, "3530")] {
            let text = String::from_utf8(render_text(
                std::slice::from_ref(&s),
                S + (after * 1e9) as i64,
            ))
            .unwrap();
            assert_eq!(
                line(&text, "imagebuilder_workflow_step_duration_seconds", ""),
                Some(after.to_string().as_str())
            );
            assert_eq!(
                line(
                    &text,
                    "imagebuilder_workflow_step_timeout_headroom_seconds",
                    ""
                ),
                Some(headroom)
            );
            assert_eq!(
                line(
                    &text,
                    "imagebuilder_workflow_step_status",
                    ",status=\"WAITING\""
                ),
                Some("1")
            );
            assert_eq!(
                text.matches("imagebuilder_workflow_step_status{").count(),
                7
            );
        }
    }

    #[test]
    fn no_duration_without_a_sane_start() {
        for (status, start, end) in [
            (StepStatus::Completed, None, Some(S)),
            (StepStatus::Completed, Some(S), Some(S - 1)),
            (StepStatus::Failed, Some(S), None),
            (StepStatus::Running, None, None),
        ] {
            let text = render_one(snap(&[sv(key(), status, start, end, Some(60))]), S);
            assert!(
                !text.contains("imagebuilder_workflow_step_duration_seconds{"),
                "{text}"
            );
            assert!(!text.contains("imagebuilder_workflow_step_timeout_headroom_seconds{"));
            assert!(text.contains("imagebuilder_workflow_step_timeout_seconds{"));
        }
    }

    #[test]
    fn step_info_failure_and_rollback_describe_the_executions() {
        let mut step = sv(
            key(),
            StepStatus::Failed,
            Some(S),
            Some(S + NANOS_PER_SEC),
            Some(60),
        );
        step.rollback = Some(RollbackStatus::Failed);
        step.on_failure = Some("Abort".into());
        step.attempt = Some(2);
        step.max_attempts = Some(3);
        let failure = FailureView {
            key: key(),
            build: step.build.clone(),
            message: Some(r#"Component "nginx" failed \ exit 1"#.into()),
            end: Some(S + NANOS_PER_SEC),
        };
        let views = Views {
            steps: vec![step],
            failures: vec![failure],
            ..Views::default()
        };
        let text = render_one(
            Snapshot::build(
                "t",
                &views,
                &StepCounters::default(),
                &TagAllowList::default(),
            ),
            S,
        );
        let arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/web/1.0.0/1";
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_info",
                &format!(",image_version=\"1.0.0/1\",image_build_version_arn=\"{arn}\",on_failure=\"Abort\",attempt=\"2\",max_attempts=\"3\"")
            ),
            Some("1")
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_failure_info",
                &format!(",image_version=\"1.0.0/1\",image_build_version_arn=\"{arn}\",message=\"Component \\\"nginx\\\" failed \\\\ exit 1\"")
            ),
            Some("1")
        );
        assert_eq!(
            line(
                &text,
                "imagebuilder_workflow_step_failure_timestamp_seconds",
                ""
            ),
            Some("1788981144.418")
        );
        for (status, v) in [
            ("RUNNING", "0"),
            ("COMPLETED", "0"),
            ("SKIPPED", "0"),
            ("FAILED", "1"),
        ] {
            assert_eq!(
                line(
                    &text,
                    "imagebuilder_workflow_step_rollback_status",
                    &format!(",status=\"{status}\"")
                ),
                Some(v)
            );
        }
        // A step that reports no rollback has no rollback series.
        let text = render_one(
            snap(&[sv(key(), StepStatus::Completed, Some(S), None, None)]),
            S,
        );
        assert!(!text.contains("imagebuilder_workflow_step_rollback_status{"));
        assert!(!text.contains("imagebuilder_workflow_step_failure_info{"));
        assert!(text.contains("on_failure=\"\",attempt=\"\",max_attempts=\"\"} 1"));
    }

    #[test]
    fn images_show_their_newest_build_last_success_and_tags() {
        use crate::views::{ImageKey, ImageView, NewestBuild};
        let key = ImageKey {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            image: "web".into(),
        };
        let failed = ImageView {
            key: key.clone(),
            newest: Some(NewestBuild {
                build: BuildRef {
                    version: "1.0.0/2".into(),
                    arn: "arn:b2".into(),
                },
                status: BuildStatus::Failed,
                build_type: Some("SCHEDULED".into()),
                log_group: "/aws/imagebuilder/web".into(),
                reason: Some("instance profile missing".into()),
                tags: vec![Some("platform".into()), None],
            }),
            last_success: Some(S),
        };
        let tags = TagAllowList::parse("team,env").unwrap();
        let views = Views {
            images: vec![failed],
            ..Views::default()
        };
        let text = render_one(
            Snapshot::build("t", &views, &StepCounters::default(), &tags),
            S,
        );
        let img = r#"account_id="123456789012",region="us-east-1",image="web""#;
        for l in [
            format!("imagebuilder_image_build_status{{{img},status=\"FAILED\"}} 1"),
            format!("imagebuilder_image_build_status{{{img},status=\"AVAILABLE\"}} 0"),
            format!("imagebuilder_image_build_info{{{img},image_version=\"1.0.0/2\",image_build_version_arn=\"arn:b2\",build_type=\"SCHEDULED\",log_group=\"/aws/imagebuilder/web\"}} 1"),
            format!("imagebuilder_image_build_failure_info{{{img},image_version=\"1.0.0/2\",image_build_version_arn=\"arn:b2\",reason=\"instance profile missing\"}} 1"),
            format!("imagebuilder_image_last_successful_build_timestamp_seconds{{{img}}} 1788981143.418"),
            format!("imagebuilder_image_tags{{{img},tag_team=\"platform\",tag_env=\"\"}} 1"),
        ] {
            assert!(text.lines().any(|x| x == l), "no {l} in\n{text}");
        }
        assert_eq!(
            text.matches("imagebuilder_image_build_status{").count(),
            BuildStatus::KNOWN.len()
        );
        // Without an allow-list there is no tag family.
        let text = render_one(
            Snapshot::build(
                "t",
                &views,
                &StepCounters::default(),
                &TagAllowList::default(),
            ),
            S,
        );
        assert!(!text.contains("imagebuilder_image_tags"));
    }

    #[test]
    fn families_stay_contiguous_across_targets() {
        let view = |region: &str| {
            sv(
                StepKey {
                    workflow: WorkflowKey {
                        region: region.into(),
                        ..key().workflow
                    },
                    ..key()
                },
                StepStatus::Running,
                Some(S),
                None,
                None,
            )
        };
        let a = Arc::new(snap(&[view("us-east-1")]));
        let b = Arc::new(snap(&[view("eu-west-1")]));
        let text = String::from_utf8(render_text(&[a, b], S)).unwrap();
        assert_eq!(
            text.matches("# TYPE imagebuilder_workflow_step_status gauge")
                .count(),
            1
        );
        let names: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('{').next().unwrap())
            .collect();
        let mut seen = Vec::new();
        for n in names {
            if seen.last() != Some(&n) {
                assert!(!seen.contains(&n), "{n} is split");
                seen.push(n);
            }
        }
    }
}
