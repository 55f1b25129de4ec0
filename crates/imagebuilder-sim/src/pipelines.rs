//! Image pipelines: their schedule and auto-disable policy, and their state
//! (`status`, `consecutiveFailures`, `dateNextRun`) derived from the builds
//! they started, by the rules the service documents for
//! `ImagePipeline.consecutiveFailures` and `AutoDisablePolicy`:
//!
//! - each build counts when it ends: a SCHEDULED build that FAILED adds one,
//!   any AVAILABLE build (scheduled or manual) resets the count to 0, a
//!   USER_INITIATED build that FAILED leaves it (a cancelled build too);
//! - when the count reaches the policy's `failureCount` (5 for a scheduled
//!   pipeline without a policy), the pipeline is DISABLED at that build's
//!   end, and starts no scheduled build after (the store hides its
//!   scheduled builds created later); manual builds still run.
//!
//! The builds are planned, so the time a pipeline disables itself does not
//! depend on when it is asked: the store computes it once per change.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::build::SimBuild;
use crate::clock::Nanos;

/// What the service disables a scheduled pipeline at when its schedule has
/// no `autoDisablePolicy` (the model's documentation of the policy).
pub const DEFAULT_FAILURE_COUNT: i64 = 5;

/// A pipeline's `schedule`. The simulator does not parse the expression:
/// `every` and `anchor` say what it means (runs at `anchor + k * every`),
/// time zones and daylight saving time included.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimSchedule {
    /// `scheduleExpression`: `cron(0 3 * * ? *)` or `rate(1 day)`.
    pub expression: String,
    /// `timezone` (absent when `None`: UTC).
    pub timezone: Option<String>,
    /// `pipelineExecutionStartCondition`: EXPRESSION_MATCH_ONLY or
    /// EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE (absent when `None`).
    pub start_condition: Option<String>,
    /// `autoDisablePolicy.failureCount` (1 to 10 in the model); `None`: no
    /// policy in the answer, and the service's default of 5 applies.
    pub failure_count: Option<i32>,
    /// The cadence the expression means, for `dateNextRun`.
    pub every: Nanos,
    /// One time the expression matches.
    pub anchor: Nanos,
}

impl SimSchedule {
    /// A schedule running at `anchor + k * every`, with no time zone, start
    /// condition or policy in the answer.
    pub fn new(expression: &str, every: Nanos, anchor: Nanos) -> Self {
        Self {
            expression: expression.into(),
            every,
            anchor,
            ..Self::default()
        }
    }

    /// The first run strictly after `now` (`None` for a cadence of 0).
    pub fn next_run(&self, now: Nanos) -> Option<Nanos> {
        (self.every > 0).then(|| {
            let k = (now.saturating_sub(self.anchor)).div_euclid(self.every) + 1;
            self.anchor.saturating_add(k.saturating_mul(self.every))
        })
    }
}

/// An image pipeline of the simulated account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimPipeline {
    /// `arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/<name,
    /// lower-case>`; the account and Region of the configurations' ARNs.
    pub arn: String,
    pub name: String,
    pub image_recipe_arn: Option<String>,
    pub container_recipe_arn: Option<String>,
    /// `None`: a manual pipeline, never disabled by its count.
    pub schedule: Option<SimSchedule>,
    /// Disabled by hand (UpdateImagePipeline): DISABLED whatever its count.
    /// It hides no build: the world given is the world served.
    pub disabled_by_hand: bool,
    /// `consecutiveFailures` before the first build the store holds (a
    /// pipeline with history).
    pub initial_failures: i64,
    /// A literal JSON answer instead of the derived one (malformed-answer
    /// tests: missing arn, missing schedule or recipe, unknown status …).
    /// Its state is still derived (events, `/_sim/pipelines`).
    pub fixed: Option<Value>,
    /// `description` (absent when `None`).
    pub description: Option<String>,
    pub date_created: Nanos,
    /// `dateUpdated`; `None`: `dateCreated`. Changing a pipeline through the
    /// store is not an UpdateImagePipeline: its count is not reset.
    pub date_updated: Option<Nanos>,
    pub tags: BTreeMap<String, String>,
}

impl SimPipeline {
    /// The count at which the pipeline disables itself: its policy's, or
    /// the default for a scheduled pipeline; `None` without a schedule.
    pub fn failure_limit(&self) -> Option<i64> {
        let s = self.schedule.as_ref()?;
        Some(s.failure_count.map_or(DEFAULT_FAILURE_COUNT, i64::from))
    }
}

/// A pipeline's state at some time.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineState {
    /// ENABLED or DISABLED.
    pub status: String,
    pub consecutive_failures: i64,
    /// The current status of its newest visible build.
    pub last_run_status: Option<String>,
    /// While ENABLED and scheduled.
    pub next_run: Option<Nanos>,
    /// When its count disabled it (not set for a pipeline disabled by hand).
    pub disabled_at: Option<Nanos>,
}

/// One build of a pipeline, as the count sees it: nothing in it depends on
/// the time it is looked at, so the store keeps it between changes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub(crate) arn: String,
    pub(crate) created: Nanos,
    pub(crate) scheduled: bool,
    /// When it ended, and how (see [`SimBuild::finished`]).
    pub(crate) finished: Option<(Nanos, String)>,
}

impl Run {
    pub(crate) fn of(b: &SimBuild) -> Self {
        Self {
            arn: b.arn.clone(),
            created: b.date_created,
            scheduled: b.build_type == "SCHEDULED",
            finished: b.finished(),
        }
    }

    /// A scheduled build the pipeline, disabled at `disabled_at`, never
    /// started.
    pub(crate) fn hidden(&self, disabled_at: Option<Nanos>) -> bool {
        self.scheduled && disabled_at.is_some_and(|d| self.created > d)
    }
}

/// The count of a pipeline at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count {
    pub(crate) consecutive: i64,
    /// When the count disabled it, if it did by then.
    pub(crate) disabled_at: Option<Nanos>,
}

/// Counts the runs of `p` that ended by `now`, in the order they ended.
pub(crate) fn count(p: &SimPipeline, runs: &[Run], now: Nanos) -> Count {
    let limit = p.failure_limit();
    let mut n = p.initial_failures;
    // Already at its count before its first build: disabled from the start.
    let mut disabled_at = limit
        .is_some_and(|l| n >= l)
        .then_some(p.date_created)
        .filter(|t| *t <= now);
    let mut ended: Vec<(Nanos, Nanos, &Run, &str)> = runs
        .iter()
        .filter_map(|r| {
            let (t, status) = r.finished.as_ref()?;
            (*t <= now).then_some((*t, r.created, r, status.as_str()))
        })
        .collect();
    ended.sort_by(|a, b| (a.0, a.1, &a.2.arn).cmp(&(b.0, b.1, &b.2.arn)));
    for (t, _, r, status) in ended {
        if r.hidden(disabled_at) {
            continue;
        }
        match status {
            "AVAILABLE" => n = 0,
            "FAILED" if r.scheduled => {
                n += 1;
                if disabled_at.is_none() && limit.is_some_and(|l| n >= l) {
                    disabled_at = Some(t);
                }
            }
            _ => {}
        }
    }
    Count {
        consecutive: n,
        disabled_at,
    }
}

/// `filters` of ListImagePipelines as the model allows them (1 to 10
/// filters of a name and 1 to 10 values), for the members the service
/// documents; an error message in the service's style otherwise.
pub(crate) fn parse_filters(v: Option<&Value>) -> Result<Vec<(String, Vec<String>)>, String> {
    const NAMES: [&str; 6] = [
        "description",
        "distributionConfigurationArn",
        "imageRecipeArn",
        "infrastructureConfigurationArn",
        "name",
        "status",
    ];
    let invalid = |what: &str| format!("1 validation error detected: {what}");
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) if (1..=10).contains(&a.len()) => a,
        Some(_) => {
            return Err(invalid(
                "Value at 'filters' failed to satisfy constraint: Member must have length between 1 and 10",
            ))
        }
    };
    let value_ok = |s: &str| {
        (1..=1024).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "./_ :,{}\"*-".contains(c))
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let at = i + 1;
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        if !NAMES.contains(&name) {
            return Err(format!(
                "The filter name '{name}' at 'filters.{at}.member.name' is not supported. Supported filters: {}",
                NAMES.join(", ")
            ));
        }
        let values: Vec<String> = match f.get("values").and_then(Value::as_array) {
            Some(a) if (1..=10).contains(&a.len()) => a
                .iter()
                .map(|x| x.as_str().filter(|s| value_ok(s)).map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    invalid(&format!(
                        "Value at 'filters.{at}.member.values' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z./_ :,{{}}\"*-]{{1,1024}}$"
                    ))
                })?,
            _ => {
                return Err(invalid(&format!(
                    "Value at 'filters.{at}.member.values' failed to satisfy constraint: Member must have length between 1 and 10"
                )))
            }
        };
        out.push((name.to_string(), values));
    }
    Ok(out)
}

/// True when the `ImagePipeline` JSON `item` passes every filter: one of
/// its values equals the member (for `name`, `web*` is a prefix and
/// `*web*` a substring, as the model documents).
pub(crate) fn filters_match(item: &Value, filters: &[(String, Vec<String>)]) -> bool {
    filters.iter().all(|(name, values)| {
        let Some(have) = item.get(name).and_then(Value::as_str) else {
            return false;
        };
        values.iter().any(|v| match name.as_str() {
            "name" => match (v.strip_prefix('*'), v.strip_suffix('*')) {
                (Some(inner), Some(_)) if v.len() >= 2 => {
                    have.contains(inner.strip_suffix('*').unwrap_or(inner))
                }
                (None, Some(prefix)) => have.starts_with(prefix),
                _ => have == v,
            },
            _ => have == v,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::NANOS_PER_SEC;
    use serde_json::json;

    const T0: Nanos = 1_788_981_143_418_000_000;
    const MIN: Nanos = 60 * NANOS_PER_SEC;

    fn pipeline(failure_count: Option<i32>) -> SimPipeline {
        SimPipeline {
            arn: "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web".into(),
            name: "web".into(),
            schedule: Some(SimSchedule {
                failure_count,
                ..SimSchedule::new("rate(1 hour)", 60 * MIN, T0)
            }),
            ..SimPipeline::default()
        }
    }

    /// Build `n`, created at `T0 + n` minutes and ending a minute later.
    fn run(n: i64, scheduled: bool, status: &str) -> Run {
        Run {
            arn: format!("b{n}"),
            created: T0 + n * MIN,
            scheduled,
            finished: Some((T0 + (n + 1) * MIN, status.into())),
        }
    }

    fn after(n: i64) -> Nanos {
        T0 + (n + 1) * MIN
    }

    #[test]
    fn a_failed_scheduled_build_adds_one_when_it_ends() {
        let runs = [run(0, true, "FAILED"), run(2, true, "FAILED")];
        let p = pipeline(Some(3));
        assert_eq!(count(&p, &runs, after(0) - 1).consecutive, 0, "running");
        assert_eq!(count(&p, &runs, after(0)).consecutive, 1);
        assert_eq!(count(&p, &runs, after(2)).consecutive, 2);
        assert_eq!(count(&p, &runs, after(2)).disabled_at, None);
        // Counted from the count before the store's first build.
        let p = SimPipeline {
            initial_failures: 1,
            ..pipeline(Some(5))
        };
        assert_eq!(count(&p, &runs, after(2)).consecutive, 3);
    }

    #[test]
    fn any_success_resets_the_count() {
        let p = SimPipeline {
            initial_failures: 2,
            ..pipeline(Some(5))
        };
        for scheduled in [true, false] {
            let runs = [run(0, true, "FAILED"), run(2, scheduled, "AVAILABLE")];
            assert_eq!(count(&p, &runs, after(0)).consecutive, 3);
            assert_eq!(count(&p, &runs, after(2)).consecutive, 0, "{scheduled}");
        }
    }

    #[test]
    fn a_failed_manual_build_leaves_the_count() {
        let p = pipeline(Some(2));
        let runs = [
            run(0, true, "FAILED"),
            run(2, false, "FAILED"),
            run(4, false, "FAILED"),
            run(6, true, "CANCELLED"),
        ];
        let c = count(&p, &runs, after(6));
        assert_eq!((c.consecutive, c.disabled_at), (1, None));
        // The next scheduled failure continues from there.
        let mut runs = runs.to_vec();
        runs.push(run(8, true, "FAILED"));
        assert_eq!(count(&p, &runs, after(8)).consecutive, 2);
    }

    #[test]
    fn reaching_the_count_disables_at_that_build_s_end() {
        let p = pipeline(Some(2));
        let runs = [
            run(0, true, "FAILED"),
            run(2, true, "FAILED"),
            // Created after: never started, not counted.
            run(4, true, "FAILED"),
            // Manual builds still run and count.
            run(6, false, "FAILED"),
        ];
        assert_eq!(count(&p, &runs, after(2) - 1).disabled_at, None);
        let c = count(&p, &runs, after(2));
        assert_eq!((c.consecutive, c.disabled_at), (2, Some(after(2))));
        let c = count(&p, &runs, after(6));
        assert_eq!((c.consecutive, c.disabled_at), (2, Some(after(2))));
        assert!(runs[2].hidden(c.disabled_at));
        assert!(!runs[3].hidden(c.disabled_at), "manual");
        assert!(!runs[1].hidden(c.disabled_at));
        // A manual success after resets the count; the pipeline stays
        // disabled.
        let mut runs = runs.to_vec();
        runs.push(run(8, false, "AVAILABLE"));
        let c = count(&p, &runs, after(8));
        assert_eq!((c.consecutive, c.disabled_at), (0, Some(after(2))));
    }

    #[test]
    fn without_a_policy_a_scheduled_pipeline_disables_at_five() {
        let p = pipeline(None);
        assert_eq!(p.failure_limit(), Some(5));
        let runs: Vec<Run> = (0..6).map(|n| run(2 * n, true, "FAILED")).collect();
        assert_eq!(count(&p, &runs, after(6)).disabled_at, None);
        assert_eq!(count(&p, &runs, after(8)).disabled_at, Some(after(8)));
        assert!(runs[5].hidden(Some(after(8))));
        // A manual pipeline never disables itself.
        let manual = SimPipeline {
            schedule: None,
            ..pipeline(None)
        };
        assert_eq!(manual.failure_limit(), None);
        let c = count(&manual, &runs, after(10));
        assert_eq!((c.consecutive, c.disabled_at), (6, None));
    }

    #[test]
    fn builds_count_in_the_order_they_end() {
        // b0 is created first but ends after b1's success.
        let mut slow = run(0, true, "FAILED");
        slow.finished = Some((after(5), "FAILED".into()));
        let runs = [slow, run(1, true, "AVAILABLE")];
        let p = pipeline(Some(5));
        assert_eq!(count(&p, &runs, after(5)).consecutive, 1);
    }

    #[test]
    fn the_next_run_is_the_first_after_now() {
        let s = SimSchedule::new("rate(1 hour)", 60 * MIN, T0);
        assert_eq!(s.next_run(T0), Some(T0 + 60 * MIN));
        assert_eq!(s.next_run(T0 - 1), Some(T0));
        assert_eq!(s.next_run(T0 + 61 * MIN), Some(T0 + 120 * MIN));
        assert_eq!(s.next_run(T0 - 150 * MIN), Some(T0 - 120 * MIN));
        assert_eq!(SimSchedule::new("x", 0, T0).next_run(T0), None);
    }

    #[test]
    fn filters_follow_the_model() {
        let ok = json!([{ "name": "name", "values": ["web*", "api"] }, { "name": "status", "values": ["ENABLED"] }]);
        let f = parse_filters(Some(&ok)).unwrap();
        let item = |name: &str, status: &str| json!({ "name": name, "status": status });
        assert!(filters_match(&item("web-server", "ENABLED"), &f));
        assert!(filters_match(&item("api", "ENABLED"), &f));
        assert!(!filters_match(&item("api-gateway", "ENABLED"), &f));
        assert!(!filters_match(&item("web-server", "DISABLED"), &f));
        let f = parse_filters(Some(&json!([{ "name": "name", "values": ["*serv*"] }]))).unwrap();
        assert!(filters_match(&item("web-server", "ENABLED"), &f));
        assert!(!filters_match(&item("web", "ENABLED"), &f));
        assert!(!filters_match(&json!({}), &f), "no name: no match");
        for bad in [
            json!([]),
            json!({ "name": "name" }),
            json!([{ "name": "owner", "values": ["x"] }]),
            json!([{ "name": "name", "values": [] }]),
            json!([{ "name": "name", "values": ["a|b"] }]),
            json!([{ "name": "name" }]),
            json!((0..11)
                .map(|_| json!({ "name": "name", "values": ["x"] }))
                .collect::<Vec<_>>()),
        ] {
            assert!(parse_filters(Some(&bad)).is_err(), "{bad}");
        }
        assert_eq!(parse_filters(None), Ok(Vec::new()));
    }
}
