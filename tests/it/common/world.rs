//! Simulated Image Builder accounts for the tests: literal builds (every
//! value fixed, so that a test can assert exact numbers), the accounts the
//! tests share, and the [`World`] that serves them to an exporter.

use std::sync::Arc;

use imagebuilder_exporter::base::clock::{Clock, ManualClock, Nanos, SystemClock, NANOS_PER_SEC};
use imagebuilder_sim::scenario::{self, build_arn, Ids};
use imagebuilder_sim::store::{
    FixedStep, FixedWorkflow, SimBuild, SimStep, SimWorkflow, StepPlan, Store,
};
use imagebuilder_sim::Simulator;

/// A simulated Image Builder as a test sets it up before the exporter
/// starts: its accounts, the roles its STS lets be assumed, and the manual
/// clock that it and the exporter read. [`World::spawn_exporter`] starts
/// both.
pub struct World {
    pub sim: Simulator,
    pub clock: Arc<ManualClock>,
}

impl World {
    /// `store` as the default account (123456789012, us-east-1), at `now`.
    pub fn new(store: Store, now: Nanos) -> World {
        let clock = ManualClock::new(now);
        World {
            sim: Simulator::new(clock.clone(), store, 42),
            clock,
        }
    }

    /// One more account's builds, in `region`.
    pub fn with_account(self, account: &str, region: &str, store: Store) -> World {
        self.sim.add_account(account, region, store);
        self
    }

    /// The [`OTHER`] account in eu-west-1, with `store`'s builds.
    pub fn with_other_account(self, store: Store) -> World {
        self.with_account(OTHER, "eu-west-1", store)
    }

    /// STS lets `role` be assumed, with `external_id` if given.
    pub fn allowing(self, role: &str, external_id: Option<&str>) -> World {
        self.sim.allow_role(role, external_id);
        self
    }
}

/// The simulator's demo account (three days of builds, seed 3) on the
/// system clock, for tests that run the exporter binary: it reads the real
/// time, so a [`World`]'s manual clock would not do.
pub fn demo_simulator() -> Simulator {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Simulator::new(clock.clone(), scenario::demo(clock.now(), 3), 3)
}

/// The account a second target reads, through [`ROLE`].
pub const OTHER: &str = "210987654321";
/// The role of [`OTHER`] that the tests' simulators let be assumed.
pub const ROLE: &str = "arn:aws:iam::210987654321:role/imagebuilder-exporter";
/// A role no simulator allows: assuming it is denied.
pub const DENIED: &str = "arn:aws:iam::333333333333:role/imagebuilder-exporter";

/// The "api" image's builds, in account [`OTHER`] and eu-west-1.
pub fn other_account() -> Store {
    let mut ids = Ids::new(77);
    let mut store = Store::default();
    store.insert(in_other_account(simple_done_build(
        &mut ids,
        "api",
        1,
        at(-600.0),
    )));
    store
}

/// `build` as account [`OTHER`]'s, in eu-west-1: its ARN says where it is.
pub fn in_other_account(mut build: SimBuild) -> SimBuild {
    build.arn = build
        .arn
        .replace("us-east-1", "eu-west-1")
        .replace("123456789012", OTHER);
    build
}

/// 2026-09-09T19:12:23.418Z
pub const T0: Nanos = 1_788_981_143_418_000_000;
pub const BUILD_WF: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1";

pub fn at(secs: f64) -> Nanos {
    T0 + (secs * NANOS_PER_SEC as f64) as Nanos
}

pub fn ts(secs: f64) -> String {
    imagebuilder_exporter::base::timestamp::format_rfc3339_millis(at(secs))
}

/// A step with literal values.
#[derive(Default)]
pub struct Step {
    pub name: &'static str,
    pub action: &'static str,
    pub status: &'static str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub timeout: Option<i64>,
    pub message: Option<String>,
    pub rollback: Option<&'static str>,
    /// (attemptNumber, maxAttempts); (1, 1) when `None`.
    pub attempts: Option<(i32, i32)>,
    /// `onFailure`; `Abort` when `None`.
    pub on_failure: Option<&'static str>,
}

pub fn step(
    name: &'static str,
    status: &'static str,
    start: Option<String>,
    end: Option<String>,
    timeout: Option<i64>,
) -> Step {
    Step {
        name,
        action: "ExecuteComponents",
        status,
        start,
        end,
        timeout,
        ..Step::default()
    }
}

/// A workflow execution with literal values.
#[derive(Default)]
pub struct Wf {
    pub arn: &'static str,
    pub kind: &'static str,
    pub status: &'static str,
    pub start: Option<String>,
    pub end: Option<String>,
    pub steps: Vec<Step>,
    pub message: Option<String>,
}

/// A build whose every value is fixed (times as strings, so they can be bad).
pub fn fixed_build(
    ids: &mut Ids,
    image: &str,
    n: u32,
    created: Nanos,
    status: &str,
    wfs: Vec<Wf>,
) -> SimBuild {
    SimBuild {
        arn: build_arn(image, n),
        name: image.into(),
        version: format!("1.0.0/{n}"),
        date_created: created,
        fixed_status: Some(status.into()),
        reason: None,
        tags: Default::default(),
        log_group: None,
        build_type: "SCHEDULED".into(),
        pipeline_arn: None,
        failure_context: None,
        distribution: None,
        workflows: wfs
            .into_iter()
            .map(|w| SimWorkflow {
                id: ids.workflow(),
                arn: w.arn.into(),
                workflow_type: w.kind.into(),
                fixed: Some(FixedWorkflow {
                    status: w.status.into(),
                    start: w.start,
                    end: w.end,
                    message: w.message,
                }),
                retried: false,
                parallel_group: None,
                steps: w
                    .steps
                    .into_iter()
                    .map(|s| {
                        let (attempt, max_attempts) = s.attempts.unwrap_or((1, 1));
                        SimStep {
                            id: ids.step(),
                            name: s.name.into(),
                            action: s.action.into(),
                            description: String::new(),
                            timeout_seconds: s.timeout,
                            on_failure: s.on_failure.unwrap_or("Abort").into(),
                            plan: StepPlan::Fixed(FixedStep {
                                status: s.status.into(),
                                start: s.start,
                                end: s.end,
                                rollback_status: s.rollback.map(str::to_string),
                                message: s.message,
                            }),
                            failure_message: String::new(),
                            rollback: "COMPLETED",
                            attempt,
                            max_attempts,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A finished build with one BUILD workflow of one completed step.
pub fn simple_done_build(ids: &mut Ids, image: &str, n: u32, created: Nanos) -> SimBuild {
    fixed_build(
        ids,
        image,
        n,
        created,
        "AVAILABLE",
        vec![Wf {
            arn: BUILD_WF,
            kind: "BUILD",
            status: "COMPLETED",
            start: Some(
                imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                    created + NANOS_PER_SEC,
                ),
            ),
            end: Some(
                imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                    created + 61 * NANOS_PER_SEC,
                ),
            ),
            steps: vec![step(
                "Build",
                "COMPLETED",
                Some(
                    imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                        created + NANOS_PER_SEC,
                    ),
                ),
                Some(
                    imagebuilder_exporter::base::timestamp::format_rfc3339_millis(
                        created + 61 * NANOS_PER_SEC,
                    ),
                ),
                Some(600),
            )],
            ..Wf::default()
        }],
    )
}

/// One build of "web" with four steps covering the interesting cases, and
/// one finished build of "db".
pub fn sample_world() -> Store {
    let mut ids = Ids::new(1);
    let mut store = Store::default();
    store.insert(fixed_build(
        &mut ids,
        "web",
        1,
        at(-60.0),
        "BUILDING",
        vec![Wf {
            arn: BUILD_WF,
            kind: "BUILD",
            status: "RUNNING",
            start: Some(ts(0.0)),
            end: None,
            steps: vec![
                step(
                    "Launch",
                    "COMPLETED",
                    Some(ts(0.0)),
                    Some(ts(12.418)),
                    Some(60),
                ),
                step(
                    "Components",
                    "FAILED",
                    Some(ts(12.5)),
                    Some(ts(100.0)),
                    Some(60),
                ),
                Step {
                    name: "Approve",
                    action: "WaitForAction",
                    status: "WAITING",
                    start: Some(ts(100.0)),
                    end: None,
                    timeout: Some(3600),
                    ..Step::default()
                },
                step(
                    "Sanitize",
                    "RUNNING",
                    Some("09/09/2026 19:14".into()),
                    None,
                    Some(720),
                ),
                step("Terminate", "PENDING", None, None, Some(720)),
            ],
            ..Wf::default()
        }],
    ));
    store.insert(simple_done_build(&mut ids, "db", 1, at(-7200.0)));
    store
}

/// Labels of a step of the sample world's "web" build.
pub fn web(step: &str) -> Vec<(&str, &str)> {
    vec![
        ("image", "web"),
        ("step_name", step),
        ("workflow_arn", BUILD_WF),
        ("workflow_type", "BUILD"),
    ]
}

/// `labels` plus one more.
pub fn with<'a>(
    mut labels: Vec<(&'a str, &'a str)>,
    k: &'a str,
    v: &'a str,
) -> Vec<(&'a str, &'a str)> {
    labels.push((k, v));
    labels
}
