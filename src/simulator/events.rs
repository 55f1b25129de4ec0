//! Image Builder's EventBridge events, as an EventBridge rule delivers them
//! to an SQS queue: an "EC2 Image Builder Image State Change" when a build's
//! status changes (or a build appears), and an "EC2 Image Builder Workflow
//! Step Waiting" when a step starts WAITING. Shapes as the Image Builder
//! user guide shows them ("Event messages that Image Builder sends").
//!
//! Planned builds change with the simulator's clock, so the publisher is
//! ticked (every 100 ms of real time while a queue takes events). A tick must
//! stay cheap with thousands of builds, most finished or not created yet: the
//! times at which each build's state can change are known from its plan
//! (`SimBuild::change_times`), so only builds with such a time since the
//! last tick, and builds changed through `Simulator::update`, are evaluated.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};

use super::scenario::{ACCOUNT, REGION};
use super::store::{SimBuild, Store};
use crate::clock::Nanos;
use crate::timestamp::format_rfc3339_millis;

pub const STATE_CHANGE: &str = "EC2 Image Builder Image State Change";
pub const STEP_WAITING: &str = "EC2 Image Builder Workflow Step Waiting";

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
            last: now,
            rng: fastrand::Rng::with_seed(seed ^ 0xe7e7),
            evaluations: 0,
        };
        for b in store.visible(Nanos::MAX) {
            p.observe(b, now, None);
            p.reschedule(b, now);
        }
        p
    }

    /// Builds changed outside the clock (`None`: possibly every build).
    pub(crate) fn touch(&mut self, arns: Option<Vec<String>>) {
        match arns {
            Some(a) => self.touched.extend(a),
            None => self.all = true,
        }
    }

    /// True when a tick at `now` has something to do.
    pub(crate) fn due(&self, now: Nanos) -> bool {
        self.all
            || !self.touched.is_empty()
            || now < self.last
            || self.schedule.first().is_some_and(|(t, _)| *t <= now)
    }

    /// The events of every change since the last tick, oldest first, as
    /// message bodies.
    pub(crate) fn tick(&mut self, store: &Store, now: Nanos) -> Vec<String> {
        let mut events: Vec<(Nanos, String)> = Vec::new();
        if now < self.last {
            // The clock went back: compare each build at `now` only.
            self.last = now;
            self.all = true;
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
        self.last = now;
        events.sort_by_key(|(t, _)| *t);
        events.into_iter().map(|(_, e)| e).collect()
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
mod tests {
    use super::*;
    use crate::clock::NANOS_PER_SEC;
    use crate::simulator::scenario::{self, BuildShape, Ids};
    use crate::simulator::shapes::summary_json;
    use crate::simulator::store::Outcome;

    const T0: Nanos = 1_788_981_143_418_000_000;
    const S: Nanos = NANOS_PER_SEC;

    fn parse(events: &[String]) -> Vec<Value> {
        events
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    #[test]
    fn a_builds_state_is_constant_between_its_change_times() {
        let mut store = scenario::demo(T0, 7);
        let extra = scenario::stream(T0, 3600 * S, 600 * S, 3, 5);
        for b in extra.visible(Nanos::MAX) {
            store.insert(b.clone());
        }
        let mut checked = 0;
        for b in store.visible(Nanos::MAX) {
            let times = b.change_times();
            for pair in times.windows(2) {
                let (a, z) = (pair[0], pair[1]);
                // The summary holds the status, reason and failure context.
                let at_a = (summary_json(b, a), b.workflow_states(a));
                for x in [a + 1, a + (z - a) / 2, z - 1] {
                    assert_eq!(
                        (summary_json(b, x), b.workflow_states(x)),
                        at_a,
                        "{} at {x}",
                        b.arn
                    );
                }
                checked += 1;
            }
            let last = *times.last().unwrap();
            assert_eq!(
                summary_json(b, last),
                summary_json(b, last + 365 * 86_400 * S)
            );
            assert_eq!(
                b.workflow_states(last),
                b.workflow_states(last + 365 * 86_400 * S)
            );
        }
        assert!(checked > 10_000, "{checked}");
    }

    fn waiting_build() -> SimBuild {
        let shape = BuildShape {
            speed: 0.01,
            approval_wait: Some(60 * S),
            failure: Some((1, 0, Outcome::Failed)),
            ..BuildShape::default()
        };
        scenario::planned_build(&mut Ids::new(3), "web", 9, T0 + 10 * S, &shape)
    }

    #[test]
    fn events_follow_a_build_from_creation_to_failure() {
        let mut store = Store::default();
        store.insert(waiting_build());
        let mut p = Publisher::new(&store, T0, 1);
        assert!(p.tick(&store, T0 + 5 * S).is_empty(), "not created yet");
        let e = parse(&p.tick(&store, T0 + 10 * S));
        assert_eq!(e.len(), 1);
        let arn = scenario::build_arn("web", 9);
        assert_eq!(e[0]["detail-type"], STATE_CHANGE);
        assert_eq!(e[0]["source"], "aws.imagebuilder");
        assert_eq!(e[0]["account"], ACCOUNT);
        assert_eq!(e[0]["region"], REGION);
        assert_eq!(e[0]["version"], "0");
        assert_eq!(e[0]["resources"], json!([arn]));
        assert_eq!(e[0]["time"], format_seconds(T0 + 10 * S));
        assert!(e[0]["time"].as_str().unwrap().ends_with(":33Z"));
        assert_eq!(e[0]["detail"], json!({ "state": { "status": "PENDING" } }));
        // One tick much later: every transition on the way, in order.
        let e = parse(&p.tick(&store, T0 + 3600 * S));
        let kinds: Vec<String> = e
            .iter()
            .map(|e| match e["detail-type"].as_str().unwrap() {
                STATE_CHANGE => format!(
                    "{}->{}",
                    e["detail"]["previous-state"]["status"].as_str().unwrap(),
                    e["detail"]["state"]["status"].as_str().unwrap()
                ),
                _ => format!(
                    "waiting {}",
                    e["detail"]["workflow-step-name"].as_str().unwrap()
                ),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "PENDING->BUILDING",
                "waiting WaitForApproval",
                "BUILDING->TESTING",
                "TESTING->FAILED"
            ]
        );
        let waiting = &e[1];
        assert_eq!(waiting["resources"][0], arn);
        assert!(waiting["resources"][1]
            .as_str()
            .unwrap()
            .contains(":workflow/build/"));
        let step_id = waiting["detail"]["workflow-step-execution-id"]
            .as_str()
            .unwrap();
        assert!(store.step(step_id).is_some());
        let wf_id = waiting["detail"]["workflow-execution-id"].as_str().unwrap();
        assert!(store.workflow(wf_id).is_some());
        let failed = &e[3]["detail"]["state"];
        assert!(
            failed["reason"].as_str().unwrap().contains("failed"),
            "{failed}"
        );
        let times: Vec<&str> = e.iter().map(|e| e["time"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(p.tick(&store, T0 + 7200 * S).is_empty(), "nothing more");
        // Distinct event IDs.
        let mut ids: Vec<&str> = e.iter().map(|e| e["id"].as_str().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn changes_through_update_are_published() {
        let mut store = scenario::sized(T0, 50, 5, 0, 3600 * S, 1);
        let mut p = Publisher::new(&store, T0, 1);
        assert!(!p.due(T0 + 3600 * S), "finished builds never come due");
        // A fixed build added with a past creation time, then changed.
        let mut b = waiting_build();
        b.arn = scenario::build_arn("late", 1);
        b.date_created = T0 - 3600 * S;
        b.fixed_status = Some("BUILDING".into());
        store.insert(b);
        p.touch(store.take_touched());
        let e = parse(&p.tick(&store, T0 + S));
        assert_eq!(e.len(), 1, "appears as it is now");
        assert_eq!(e[0]["detail"]["state"]["status"], "BUILDING");
        let arn = scenario::build_arn("late", 1);
        store.build_mut(&arn).unwrap().fixed_status = Some("CANCELLED".into());
        p.touch(store.take_touched());
        let e = parse(&p.tick(&store, T0 + 2 * S));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["detail"]["previous-state"]["status"], "BUILDING");
        assert_eq!(e[0]["detail"]["state"]["status"], "CANCELLED");
        store.remove(&arn);
        p.touch(store.take_touched());
        assert!(p.tick(&store, T0 + 3 * S).is_empty());
        assert!(!p.seen.contains_key(&arn));
    }

    #[test]
    fn ticks_evaluate_only_the_builds_that_change() {
        // The demo: ~1,000 builds, most in the future.
        let store = scenario::demo(T0, 7);
        let mut p = Publisher::new(&store, T0, 7);
        let visible = store.visible(T0).count() as u64;
        assert_eq!(p.evaluations, visible);
        let mut now = T0;
        let mut events = 0;
        for _ in 0..600 {
            now += S / 10;
            if p.due(now) {
                events += p.tick(&store, now).len();
            }
        }
        // A minute of demo: a build or two created, a few steps moving.
        assert!(events >= 1, "{events}");
        assert!(p.evaluations - visible < 60, "{}", p.evaluations - visible);

        // 5,000 finished builds and 20 running ones.
        let store = scenario::sized(T0, 5000, 50, 20, 20 * 3600 * S, 1);
        let mut p = Publisher::new(&store, T0, 1);
        let start = p.evaluations;
        let mut now = T0;
        for _ in 0..600 {
            now += S / 10;
            if p.due(now) {
                p.tick(&store, now);
            }
        }
        assert!(p.evaluations - start <= 20 * 3, "{}", p.evaluations - start);
    }

    #[test]
    fn times_are_to_the_second() {
        assert_eq!(format_seconds(T0), "2026-09-09T19:12:23Z");
    }
}
