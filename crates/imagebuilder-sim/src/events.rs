//! Image Builder's EventBridge events, as an EventBridge rule delivers them
//! to an SQS queue: an "EC2 Image Builder Image State Change" when a build's
//! status changes (or a build appears), an "EC2 Image Builder Workflow Step
//! Waiting" when a step starts WAITING, and an "EC2 Image Builder Image
//! Pipeline Automatically Disabled" when a pipeline's count of failed
//! scheduled builds disables it. Shapes as the Image Builder user guide
//! shows them ("Event messages that Image Builder sends"); the last one's
//! `detail` is not documented, so it holds what a reader would want.
//!
//! Planned builds change with the simulator's clock, so the publisher is
//! ticked (every 100 ms of real time while a queue takes events). A tick must
//! stay cheap with thousands of builds, most finished or not created yet: the
//! times at which each build's state can change are known from its plan
//! (`SimBuild::change_times`), so only builds with such a time since the
//! last tick, and builds changed through `Simulator::update`, are evaluated.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{json, Value};

use crate::clock::Nanos;
use crate::scenario::{ACCOUNT, REGION};
use crate::store::{SimBuild, Store, Touched};
use crate::timestamp::format_rfc3339_millis;

pub const STATE_CHANGE: &str = "EC2 Image Builder Image State Change";
pub const STEP_WAITING: &str = "EC2 Image Builder Workflow Step Waiting";
pub const PIPELINE_DISABLED: &str = "EC2 Image Builder Image Pipeline Automatically Disabled";

/// What was last published of a build.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: String,
    /// Step executions that were WAITING.
    waiting: Vec<String>,
}

/// Turns the store's changes into events.
pub(crate) struct Publisher {
    seen: HashMap<String, Seen>,
    /// (next change time, build ARN), and each build's entry in it.
    schedule: BTreeSet<(Nanos, String)>,
    next_of: HashMap<String, Nanos>,
    /// Builds changed through `Simulator::update`; `all`: every build.
    touched: BTreeSet<String>,
    all: bool,
    /// Pipelines published as disabled by their count.
    disabled: HashSet<String>,
    /// The next time a pipeline's count disables it; pipelines are looked
    /// at then, and after any change to the store.
    next_disable: Option<Nanos>,
    pipelines_due: bool,
    /// The time of the last tick: changes up to it are published.
    last: Nanos,
    rng: fastrand::Rng,
    /// Builds evaluated so far (to test that ticks stay cheap).
    pub(crate) evaluations: u64,
}

impl Publisher {
    /// Starts from the store as it is at `now`: what happened before is
    /// not published, as an EventBridge rule sees only later events.
    pub(crate) fn new(store: &Store, now: Nanos, seed: u64) -> Self {
        let mut p = Self {
            seen: HashMap::new(),
            schedule: BTreeSet::new(),
            next_of: HashMap::new(),
            touched: BTreeSet::new(),
            all: false,
            disabled: HashSet::new(),
            next_disable: None,
            pipelines_due: false,
            last: now,
            rng: fastrand::Rng::with_seed(seed ^ 0xe7e7),
            evaluations: 0,
        };
        for b in store.visible(Nanos::MAX) {
            p.observe(b, now, None);
            p.reschedule(b, now);
        }
        p.observe_pipelines(store, now, None);
        p
    }

    /// Builds or pipelines changed outside the clock.
    pub(crate) fn touch(&mut self, t: Touched) {
        match t.builds {
            Some(a) if a.is_empty() && !t.pipelines => return,
            Some(a) => self.touched.extend(a),
            None => self.all = true,
        }
        // Any build may count towards a pipeline.
        self.pipelines_due = true;
    }

    /// True when a tick at `now` has something to do.
    pub(crate) fn due(&self, now: Nanos) -> bool {
        self.all
            || !self.touched.is_empty()
            || self.pipelines_due
            || now < self.last
            || self.schedule.first().is_some_and(|(t, _)| *t <= now)
            || self.next_disable.is_some_and(|t| t <= now)
    }

    /// The events of every change since the last tick, oldest first, as
    /// message bodies.
    pub(crate) fn tick(&mut self, store: &Store, now: Nanos) -> Vec<String> {
        let mut events: Vec<(Nanos, String)> = Vec::new();
        if now < self.last {
            // The clock went back: compare each build at `now` only.
            self.last = now;
            self.all = true;
            self.pipelines_due = true;
        }
        let mut due: BTreeSet<String> = std::mem::take(&mut self.touched);
        if std::mem::take(&mut self.all) {
            due.extend(self.seen.keys().cloned());
            due.extend(store.visible(Nanos::MAX).map(|b| b.arn.clone()));
        }
        let touched = due.clone();
        while let Some((t, arn)) = self.schedule.first().cloned() {
            if t > now {
                break;
            }
            self.schedule.pop_first();
            self.next_of.remove(&arn);
            due.insert(arn);
        }
        for arn in due {
            let Some(b) = store.build(&arn, Nanos::MAX) else {
                // Deleted: nothing more to say about it.
                self.seen.remove(&arn);
                self.unschedule(&arn);
                continue;
            };
            for c in b.change_times() {
                if c > self.last && c <= now {
                    self.observe(b, c, Some(&mut events));
                }
            }
            if touched.contains(&arn) {
                // Changed in place: its state now may differ from its plan.
                self.observe(b, now, Some(&mut events));
            }
            self.reschedule(b, now);
        }
        if std::mem::take(&mut self.pipelines_due) || self.next_disable.is_some_and(|t| t <= now) {
            // After the builds' events: a build's FAILED comes first.
            self.observe_pipelines(store, now, Some(&mut events));
        }
        self.last = now;
        events.sort_by_key(|(t, _)| *t);
        events.into_iter().map(|(_, e)| e).collect()
    }

    /// Compares the pipelines disabled by their count at `now` with those
    /// published, and adds an event for each newly disabled one to `out`
    /// (`None`: records them only): at the time it was disabled if that is
    /// after the last tick, else now (a change disabled it in the past).
    fn observe_pipelines(
        &mut self,
        store: &Store,
        now: Nanos,
        mut out: Option<&mut Vec<(Nanos, String)>>,
    ) {
        let mut next = None;
        let mut disabled = HashSet::new();
        for p in store.pipelines() {
            let Some(at) = store.auto_disabled_at(&p.arn) else {
                continue;
            };
            if at > now {
                next = Some(next.map_or(at, |n: Nanos| n.min(at)));
                continue;
            }
            disabled.insert(p.arn.clone());
            let Some(out) = out.as_deref_mut() else {
                continue;
            };
            if self.disabled.contains(&p.arn) {
                continue;
            }
            let t = if at > self.last { at } else { now };
            let failures = store
                .pipeline_state(&p.arn, t)
                .map_or(0, |s| s.consecutive_failures);
            let detail = json!({
                "pipeline-arn": p.arn,
                "pipeline-name": p.name,
                "consecutive-failures": failures,
                "failure-count": p.failure_limit(),
            });
            let e = self.envelope(PIPELINE_DISABLED, vec![p.arn.clone()], detail, t);
            out.push((t, e));
        }
        self.disabled = disabled;
        self.next_disable = next;
    }

    fn unschedule(&mut self, arn: &str) {
        if let Some(t) = self.next_of.remove(arn) {
            self.schedule.remove(&(t, arn.to_string()));
        }
    }

    fn reschedule(&mut self, b: &SimBuild, now: Nanos) {
        self.unschedule(&b.arn);
        if let Some(t) = b.change_times().into_iter().find(|t| *t > now) {
            self.schedule.insert((t, b.arn.clone()));
            self.next_of.insert(b.arn.clone(), t);
        }
    }

    /// Compares `b` at `t` with what was last published, and adds the
    /// events for the difference to `out` (`None`: records the state only).
    fn observe(&mut self, b: &SimBuild, t: Nanos, out: Option<&mut Vec<(Nanos, String)>>) {
        if b.date_created > t {
            return;
        }
        self.evaluations += 1;
        let states = b.workflow_states(t);
        let mut waiting = Vec::new();
        for (w, st) in &states {
            for (s, ss) in w.steps.iter().zip(&st.steps) {
                if ss.status == "WAITING" {
                    waiting.push((s.id.clone(), s.name.clone(), w.id.clone(), w.arn.clone()));
                }
            }
        }
        let status = b.status_of(&states, t);
        let before = self.seen.remove(&b.arn);
        let Some(out) = out else {
            let waiting = waiting.into_iter().map(|(id, ..)| id).collect();
            self.seen.insert(b.arn.clone(), Seen { status, waiting });
            return;
        };
        if before.as_ref().map(|s| &s.status) != Some(&status) {
            let mut state = json!({ "status": status });
            if status == "FAILED" {
                if let Some(r) = b.reason(t) {
                    state["reason"] = json!(r);
                }
            }
            // A build seen for the first time has no previous state.
            let mut detail = json!({ "state": state });
            if let Some(prev) = &before {
                detail["previous-state"] = json!({ "status": prev.status });
            }
            let e = self.envelope(STATE_CHANGE, vec![b.arn.clone()], detail, t);
            out.push((t, e));
        }
        for (step_id, name, wf_id, wf_arn) in &waiting {
            if before.as_ref().is_some_and(|s| s.waiting.contains(step_id)) {
                continue;
            }
            let detail = json!({
                "workflow-execution-id": wf_id,
                "workflow-step-execution-id": step_id,
                "workflow-step-name": name,
            });
            let e = self.envelope(STEP_WAITING, vec![b.arn.clone(), wf_arn.clone()], detail, t);
            out.push((t, e));
        }
        let seen = Seen {
            status,
            waiting: waiting.into_iter().map(|(id, ..)| id).collect(),
        };
        self.seen.insert(b.arn.clone(), seen);
    }

    /// EventBridge's envelope, in the account and region of the build's ARN.
    fn envelope(
        &mut self,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
        t: Nanos,
    ) -> String {
        let first = resources.first().map(String::as_str).unwrap_or_default();
        let arn: Vec<&str> = first.splitn(6, ':').collect();
        let region = arn
            .get(3)
            .copied()
            .filter(|r| !r.is_empty())
            .unwrap_or(REGION);
        let account = arn
            .get(4)
            .copied()
            .filter(|a| !a.is_empty())
            .unwrap_or(ACCOUNT);
        let r = &mut self.rng;
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            r.u32(..),
            r.u16(..),
            r.u16(..0x1000),
            0x8000 | r.u16(..0x4000),
            r.u64(..) & 0xffff_ffff_ffff
        );
        json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": "aws.imagebuilder",
            "account": account,
            "time": format_seconds(t),
            "region": region,
            "resources": resources,
            "detail": detail,
        })
        .to_string()
    }
}

/// RFC 3339 to the second, as EventBridge writes `time`.
fn format_seconds(t: Nanos) -> String {
    let millis = format_rfc3339_millis(t);
    match millis.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => millis,
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
