//! Worlds for the simulator: the demo, and accounts of a given size for
//! benchmarks and soak tests. Everything is generated from a seed, so a
//! scenario is the same at every run.

use std::collections::BTreeMap;

pub use super::builders::{
    build_arn, failed_before_workflows, failure_message, pipeline, pipeline_arn, planned_build,
    BuildShape, Ids, ACCOUNT, BUILD_STEPS, BUILD_WORKFLOW, PIPELINES_CREATED, REGION, TEST_STEPS,
    TEST_WORKFLOW,
};
use super::store::{Outcome, Store};
use crate::clock::{Nanos, NANOS_PER_SEC};

/// Owner tags of the demo's images.
fn demo_tags(image: &str) -> BTreeMap<String, String> {
    let team = match image {
        "web-server" | "api-gateway" => "web",
        "data-pipeline" | "gpu-worker" | "ml-training" => "data",
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
/// one running close to its timeout.
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
    // History: a build of each image every three hours over the last day.
    for h in (1..=8).rev() {
        for (i, image) in images.iter().enumerate() {
            let created = now - h * 3 * HOUR + i as Nanos * 7 * MINUTE;
            let failure =
                (rng.u8(..) < 40).then(|| (rng.usize(..2), rng.usize(..4), Outcome::Failed));
            let shape = BuildShape {
                speed: 0.5 + rng.f64(),
                failure,
                ..BuildShape::default()
            };
            store.insert(planned_build(&mut ids, image, next(i), created, &shape));
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
    store.insert(stale);
    // A build that failed outside any step: its infrastructure
    // configuration names an instance profile that does not exist.
    store.insert(failed_before_workflows(
        "windows-base",
        1,
        now - 40 * MINUTE,
        "Infrastructure configuration arn:aws:imagebuilder:us-east-1:123456789012:infrastructure-configuration/windows-base is invalid: instance profile 'ImageBuilderWindows' does not exist",
    ));
    // A failure whose rollback failed too (its build instance is left
    // behind), and a step on its second attempt of three; on images of
    // their own, so that no live build replaces them.
    let shape = BuildShape {
        speed: 0.05,
        failure: Some((0, 0, Outcome::Failed)),
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
        store.insert(planned_build(&mut ids, images[i], next(i), created, &shape));
    }
    store.for_each_build(|b| {
        if b.tags.is_empty() {
            b.tags = demo_tags(&b.name);
        }
    });
    store
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
        store.insert(planned_build(
            &mut ids,
            &image_name(i),
            numbers[i],
            created,
            &shape,
        ));
    }
    for k in 0..running {
        let i = k % images;
        numbers[i] += 1;
        // Started a minute ago and slow: in flight for hours.
        let shape = BuildShape {
            speed: 20.0,
            ..BuildShape::default()
        };
        store.insert(planned_build(
            &mut ids,
            &image_name(i),
            numbers[i],
            now - MINUTE,
            &shape,
        ));
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
mod tests {
    use super::*;

    #[test]
    fn the_demo_has_history_a_waiting_step_and_a_future() {
        let now = 1_788_981_143_418_000_000;
        let store = demo(now, 7);
        let visible: Vec<_> = store.visible(now).collect();
        assert!(visible.len() >= 40);
        let waiting = visible.iter().any(|b| {
            b.workflow_states(now)
                .iter()
                .any(|(_, s)| s.steps.iter().any(|x| x.status == "WAITING"))
        });
        assert!(waiting);
        assert!(visible.iter().any(|b| b.status(now) == "FAILED"));
        assert!(store.visible(now + HOUR).count() > visible.len());
    }

    #[test]
    fn sized_scenarios_have_the_size_asked() {
        let now = 1_788_981_143_418_000_000;
        let store = sized(now, 100, 5, 3, 20 * HOUR, 1);
        assert_eq!(store.visible(now).count(), 103);
        let running = store
            .visible(now)
            .filter(|b| b.status(now) == "BUILDING")
            .count();
        assert_eq!(running, 3);
    }
}
