//! Worlds for the simulator: the demo, accounts of a given size for
//! benchmarks and soak tests, and organisations of such accounts
//! (`scenario/organization.rs`). Everything is generated from a seed, so a
//! scenario is the same at every run.

use std::collections::BTreeMap;

pub use crate::builders::{
    build_arn, failed_before_workflows, failure_message, pipeline, pipeline_arn, planned_build,
    relocate, BuildShape, Ids, ACCOUNT, BUILD_STEPS, BUILD_WORKFLOW, PIPELINES_CREATED, REGION,
    TEST_STEPS, TEST_WORKFLOW,
};
pub use organization::{organization, OrganizationSpec, OrganizationWorld};

mod organization;
use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::failure::{DistributionPlan, SimRegionFailure};
use crate::pipelines::{SimPipeline, SimSchedule};
use crate::store::{Outcome, SimBuild, Store};

/// Owner tags of the demo's images.
fn demo_tags(image: &str) -> BTreeMap<String, String> {
    let team = match image {
        "web-server" | "api-gateway" => "web",
        "data-pipeline" | "gpu-worker" | "ml-training" | "analytics-etl" => "data",
        _ => "platform",
    };
    [("team", team), ("env", "prod"), ("cost-center", "cc-1042")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const HOUR: Nanos = 3600 * NANOS_PER_SEC;
const MINUTE: Nanos = 60 * NANOS_PER_SEC;

/// The `--demo` world: five images with a day of history, and new builds
/// every 90 seconds from now on, some failing, one waiting for approval and
/// one running close to its timeout; pipelines (see [`demo_pipelines`]),
/// one of which disables itself about 2.5 minutes after `now`, and a build
/// that failed distributing to one of its three Regions.
pub fn demo(now: Nanos, seed: u64) -> Store {
    let images = [
        "web-server",
        "api-gateway",
        "base-al2023",
        "data-pipeline",
        "gpu-worker",
    ];
    let mut ids = Ids::new(seed);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut store = Store::default();
    let mut numbers = [0u32; 5];
    let mut next = |i: usize| {
        numbers[i] += 1;
        numbers[i]
    };
    // History: a build of each image every three hours over the last day,
    // started by the images' pipelines on their schedules, but a few by hand.
    // No pipeline disables itself by chance: a failure that would reach its
    // count is a success instead; gpu-worker's last two fail, leaving its
    // pipeline one failure away from its count.
    let mut streaks = [0i64; 5];
    for h in (1..=8).rev() {
        for (i, image) in images.iter().enumerate() {
            let created = now - h * 3 * HOUR + i as Nanos * 7 * MINUTE;
            let drawn =
                (rng.u8(..) < 40).then(|| (rng.usize(..2), rng.usize(..4), Outcome::Failed));
            let failure = match (*image, h) {
                ("gpu-worker", 3) => None,
                ("gpu-worker", 1 | 2) => Some((0, 2, Outcome::Failed)),
                _ if streaks[i] + 1 >= DEMO_FAILURE_COUNTS[i] => None,
                _ => drawn,
            };
            streaks[i] = if failure.is_some() { streaks[i] + 1 } else { 0 };
            let shape = BuildShape {
                speed: 0.5 + rng.f64(),
                failure,
                ..BuildShape::default()
            };
            let mut b = planned_build(&mut ids, image, next(i), created, &shape);
            if h == 4 && i % 2 == 1 {
                b.build_type = "USER_INITIATED".into();
            }
            store.insert(b);
        }
    }
    // Waiting for approval since ten minutes ago, for hours.
    let shape = BuildShape {
        speed: 0.2,
        approval_wait: Some(8 * HOUR),
        ..BuildShape::default()
    };
    store.insert(planned_build(
        &mut ids,
        "gpu-worker",
        next(4),
        now - 10 * MINUTE,
        &shape,
    ));
    // A pipeline that stopped: its last build, a success, is 8 days old.
    let mut stale = planned_build(
        &mut ids,
        "legacy-app",
        1,
        now - 8 * 24 * HOUR,
        &BuildShape::default(),
    );
    stale.log_group = Some("/legacy/imagebuilder".into());
    // Its pipeline runs only by hand.
    stale.build_type = "USER_INITIATED".into();
    store.insert(stale);
    // A build that failed outside any step: its infrastructure
    // configuration names an instance profile that does not exist.
    store.insert(failed_before_workflows(
        "windows-base",
        1,
        now - 40 * MINUTE,
        "Infrastructure configuration arn:aws:imagebuilder:us-east-1:123456789012:infrastructure-configuration/windows-base is invalid: instance profile 'ImageBuilderWindows' does not exist",
    ));
    // A failure in a component whose rollback failed too (its build
    // instance is left behind), and a step on its second attempt of three;
    // on images of their own, so that no live build replaces them: the
    // newest build of bastion-host names its failed component from the
    // start.
    let shape = BuildShape {
        speed: 0.05,
        failure: Some((0, 2, Outcome::Failed)),
        rollback_fails: true,
        ..BuildShape::default()
    };
    store.insert(planned_build(
        &mut ids,
        "bastion-host",
        1,
        now - 20 * MINUTE,
        &shape,
    ));
    let shape = BuildShape {
        speed: 3.0,
        retried_step: true,
        ..BuildShape::default()
    };
    store.insert(planned_build(
        &mut ids,
        "ml-training",
        1,
        now - 5 * MINUTE,
        &shape,
    ));
    // Live builds: short, so that a newcomer sees them progress.
    for k in 0..(24 * 40) {
        let i = k % 4; // gpu-worker stays waiting
        let created = now - 2 * MINUTE + k as Nanos * 90 * NANOS_PER_SEC;
        let failure = (rng.u8(..) < 45).then(|| (rng.usize(..2), rng.usize(..4), Outcome::Failed));
        // Every fifth build runs its components step close to its timeout.
        let components_timeout = (k % 5 == 2).then_some(60);
        let shape = BuildShape {
            speed: 0.05,
            failure,
            components_timeout,
            ..BuildShape::default()
        };
        // Started by hand (from CI): they reset their pipelines' counts when
        // they succeed, and leave them when they fail.
        let mut b = planned_build(&mut ids, images[i], next(i), created, &shape);
        b.build_type = "USER_INITIATED".into();
        store.insert(b);
    }
    demo_pipelines(now, &mut ids, &mut store);
    store.for_each_build(|b| {
        if b.tags.is_empty() {
            b.tags = demo_tags(&b.name);
        }
    });
    store
}

/// The auto-disable counts of the history's images' pipelines (web-server,
/// api-gateway (no policy: the default), base-al2023, data-pipeline,
/// gpu-worker).
const DEMO_FAILURE_COUNTS: [i64; 5] = [3, 5, 4, 5, 3];

/// A schedule with a time zone, start condition and policy.
fn schedule(
    expression: &str,
    (every, anchor): (Nanos, Nanos),
    timezone: Option<&str>,
    start_condition: Option<&str>,
    failure_count: Option<i32>,
) -> Option<SimSchedule> {
    Some(SimSchedule {
        timezone: timezone.map(str::to_string),
        start_condition: start_condition.map(str::to_string),
        failure_count,
        ..SimSchedule::new(expression, every, anchor)
    })
}

/// The demo's pipelines, one per image, and the builds of two images of
/// their own (every build links to its image's pipeline):
///
/// - web-server, api-gateway, base-al2023, data-pipeline: ENABLED on a
///   schedule every three hours; their live builds are manual, so that
///   each success resets the count;
/// - gpu-worker: ENABLED, two failures of its count of three;
/// - hardened-base: a count of two, one scheduled failure behind it, and a
///   scheduled build failing in its components about 2.5 minutes after
///   `now`, which disables the pipeline (its next scheduled build, two hours
///   later, never starts);
/// - windows-base: disabled by hand one failure into its count of three
///   (and its manual build since failed);
/// - legacy-app: no schedule (run by hand);
/// - bastion-host, ml-training: daily, no policy, ml-training as a rate;
/// - analytics-etl: daily, its last build failed distributing to eu-west-1
///   (one of us-east-1, eu-west-1 and ap-southeast-2, the last two in
///   another account).
fn demo_pipelines(now: Nanos, ids: &mut Ids, store: &mut Store) {
    const DAY: Nanos = 24 * HOUR;
    const EXPRESSION_MATCH_ONLY: Option<&str> = Some("EXPRESSION_MATCH_ONLY");
    const DEPENDENCY_UPDATES: Option<&str> =
        Some("EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE");
    let every_3h = "cron(0 */3 * * ? *)";
    let hardened_at = now - MINUTE;
    let etl_at = now - 50 * MINUTE;
    let pipelines: [(&str, Option<SimSchedule>); 11] = [
        (
            "web-server",
            schedule(
                every_3h,
                (3 * HOUR, 0),
                Some("Etc/UTC"),
                EXPRESSION_MATCH_ONLY,
                Some(3),
            ),
        ),
        (
            "api-gateway",
            schedule(every_3h, (3 * HOUR, 0), None, None, None),
        ),
        (
            "base-al2023",
            schedule(
                "rate(3 hours)",
                (3 * HOUR, now + 14 * MINUTE),
                None,
                DEPENDENCY_UPDATES,
                Some(4),
            ),
        ),
        (
            "data-pipeline",
            // New York, in standard time: 05:00 UTC is a run.
            schedule(
                every_3h,
                (3 * HOUR, 5 * HOUR),
                Some("America/New_York"),
                None,
                Some(5),
            ),
        ),
        (
            "gpu-worker",
            schedule(
                every_3h,
                (3 * HOUR, 0),
                Some("Asia/Tokyo"),
                EXPRESSION_MATCH_ONLY,
                Some(3),
            ),
        ),
        (
            "hardened-base",
            schedule(
                "rate(2 hours)",
                (2 * HOUR, hardened_at),
                None,
                EXPRESSION_MATCH_ONLY,
                Some(2),
            ),
        ),
        (
            "windows-base",
            // Sundays at 02:00 in Berlin (01:00 UTC in winter); 1970-01-04
            // was a Sunday.
            schedule(
                "cron(0 2 ? * SUN *)",
                (7 * DAY, 3 * DAY + HOUR),
                Some("Europe/Berlin"),
                DEPENDENCY_UPDATES,
                Some(3),
            ),
        ),
        ("legacy-app", None),
        (
            "bastion-host",
            schedule("cron(0 5 * * ? *)", (DAY, 5 * HOUR), None, None, None),
        ),
        (
            "ml-training",
            schedule("rate(1 day)", (DAY, now - 5 * MINUTE), None, None, None),
        ),
        (
            "analytics-etl",
            schedule(
                "rate(1 day)",
                (DAY, etl_at),
                Some("Europe/Dublin"),
                DEPENDENCY_UPDATES,
                Some(3),
            ),
        ),
    ];
    for (image, schedule) in pipelines {
        let mut p: SimPipeline = pipeline(image, schedule);
        p.date_created = now - 90 * DAY;
        p.tags = demo_tags(image);
        if image == "windows-base" {
            p.disabled_by_hand = true;
            p.initial_failures = 1;
            p.date_updated = Some(now - 2 * HOUR);
        }
        store.insert_pipeline(p);
    }
    // hardened-base: a success, a failure in its tests, then the failure
    // that disables it, and the run that never starts.
    let slow = |failure| BuildShape {
        speed: 0.2,
        failure,
        ..BuildShape::default()
    };
    for (n, created, failure) in [
        (1, hardened_at - 4 * HOUR, None),
        (2, hardened_at - 2 * HOUR, Some((1, 2, Outcome::Failed))),
        (3, hardened_at, Some((0, 2, Outcome::Failed))),
        (4, hardened_at + 2 * HOUR, None),
    ] {
        store.insert(planned_build(
            ids,
            "hardened-base",
            n,
            created,
            &slow(failure),
        ));
    }
    // analytics-etl: yesterday's success, and today's failed distribution.
    let quick = BuildShape {
        speed: 0.05,
        ..BuildShape::default()
    };
    store.insert(planned_build(ids, "analytics-etl", 1, etl_at - DAY, &quick));
    let mut b = planned_build(ids, "analytics-etl", 2, etl_at, &quick);
    b.distribution = Some(DistributionPlan {
        duration: 20 * MINUTE,
        message: "Image distribution failed in 1 of 3 Regions: eu-west-1 (account 210987654321)".into(),
        regions: vec![SimRegionFailure {
            region: Some("eu-west-1".into()),
            account_id: Some("210987654321".into()),
            status: Some("FAILED".into()),
            configuration_step: None,
            message: Some("Failed to copy AMI ami-0d4c3b2a1f0e98765 to eu-west-1: the KMS key arn:aws:kms:eu-west-1:210987654321:key/3f2a9c1e-8d4b-4e6f-a1b2-c3d4e5f60718 is disabled".into()),
        }],
    });
    store.insert(b);
    let arns: BTreeMap<String, String> = store
        .pipelines()
        .map(|p| (p.name.clone(), p.arn.clone()))
        .collect();
    store.for_each_build(|b| {
        if let Some(arn) = arns.get(&b.name) {
            b.pipeline_arn = Some(arn.clone());
        }
    });
}

/// An account of a given size: `builds` finished builds spread over the
/// `span` before `now` across `images` images (about 1 in 20 failing), plus
/// `running` builds in flight.
pub fn sized(
    now: Nanos,
    builds: usize,
    images: usize,
    running: usize,
    span: Nanos,
    seed: u64,
) -> Store {
    sized_with(now, builds, images, running, span, seed, |_| {})
}

/// [`sized`], each build passed through `place` (to [`relocate`] it)
/// before it is stored.
pub(crate) fn sized_with(
    now: Nanos,
    builds: usize,
    images: usize,
    running: usize,
    span: Nanos,
    seed: u64,
    mut place: impl FnMut(&mut SimBuild),
) -> Store {
    let mut ids = Ids::new(seed);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let mut store = Store::default();
    let images = images.max(1);
    let mut numbers = vec![0u32; images];
    let step = span / builds.max(1) as Nanos;
    for k in 0..builds {
        let i = k % images;
        numbers[i] += 1;
        // Old enough to be finished: a build takes under an hour at speed 1.
        let created = now - span - 2 * HOUR + k as Nanos * step;
        let failure = (rng.u8(..) < 13).then(|| (rng.usize(..2), rng.usize(..4), Outcome::Failed));
        let shape = BuildShape {
            failure,
            ..BuildShape::default()
        };
        let mut b = planned_build(&mut ids, &image_name(i), numbers[i], created, &shape);
        place(&mut b);
        store.insert(b);
    }
    for k in 0..running {
        let i = k % images;
        numbers[i] += 1;
        // Started a minute ago and slow: in flight for hours.
        let shape = BuildShape {
            speed: 20.0,
            ..BuildShape::default()
        };
        let mut b = planned_build(&mut ids, &image_name(i), numbers[i], now - MINUTE, &shape);
        place(&mut b);
        store.insert(b);
    }
    store
}

/// Image names of sized scenarios.
pub fn image_name(i: usize) -> String {
    format!("image-{i:04}")
}

/// A stream of builds from `start` for `span`, one every `every`, for soak
/// tests run on an accelerated clock.
pub fn stream(start: Nanos, span: Nanos, every: Nanos, images: usize, seed: u64) -> Store {
    let mut ids = Ids::new(seed);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xfeed);
    let mut store = Store::default();
    let images = images.max(1);
    let mut numbers = vec![0u32; images];
    let count = (span / every.max(1)) as usize;
    for k in 0..count {
        let i = k % images;
        numbers[i] += 1;
        let failure = (rng.u8(..) < 25).then(|| (rng.usize(..2), rng.usize(..4), Outcome::Failed));
        let shape = BuildShape {
            speed: 0.1,
            failure,
            ..BuildShape::default()
        };
        store.insert(planned_build(
            &mut ids,
            &image_name(i),
            numbers[i],
            start + k as Nanos * every,
            &shape,
        ));
    }
    store
}

#[cfg(test)]
#[path = "scenario_tests.rs"]
mod tests;
