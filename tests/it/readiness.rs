//! One bad target never keeps the others from being scraped: `/-/ready`
//! stops waiting for a target whose refresh failed with an error retrying
//! will not fix (a denied role) at once, and for one that keeps failing with
//! passing errors after `--readiness.max-wait`; the landing page and the log
//! say which target and why. The real SDK against the simulator; no scrape
//! before ready (a Kubernetes Service sends none to an unready pod).

use crate::common;

use std::time::{Duration, Instant};

use common::logs::Captured;
use common::*;
use imagebuilder_sim::Faults;

/// Generous: these wait for the first refreshes of a small account, which
/// take well under a second, on a busy machine.
const WITHIN: Duration = Duration::from_secs(60);

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("targets.yml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

async fn ready_status(h: &Harness) -> (u16, String) {
    let (status, _, body) = get(&format!("{}/-/ready", h.url)).await;
    (status, body)
}

/// Polls `/-/ready` until it answers 200.
async fn until_ready(h: &Harness, logs: &Captured) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let (status, body) = ready_status(h).await;
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {status}: {body}\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_denied_role_does_not_keep_the_other_targets_unready() {
    let (logs, _guard) = Captured::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!("targets:\n  - region: us-east-1\n  - name: prod-eu\n    region: eu-west-1\n    role_arn: {ROLE}\n  - name: broken\n    region: eu-west-1\n    role_arn: {DENIED}\n"),
    );
    let world = World::new(sample_world(), at(160.0))
        .with_other_account(other_account())
        .allowing(ROLE, None);
    let h = world.spawn_exporter(&["--config.file", &config]).await;
    h.warm_up();
    until_ready(&h, &logs).await;

    // Ready without a single scrape, the denied target settled as failed.
    let m = h.scrape().await;
    for good in ["us-east-1", "prod-eu"] {
        assert_eq!(m.get("imagebuilder_up", &[("target", good)]), Some(1.0));
        assert_eq!(
            m.get("imagebuilder_exporter_ready", &[("target", good)]),
            Some(1.0)
        );
    }
    assert_eq!(m.get("imagebuilder_up", &[("target", "broken")]), Some(0.0));
    assert_eq!(
        m.get("imagebuilder_exporter_ready", &[("target", "broken")]),
        Some(0.0),
        "imagebuilder_exporter_ready still means a complete refresh"
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_duration_seconds",
            &[("image", "api"), ("account_id", OTHER)]
        ),
        Some(60.0)
    );

    // The landing page and the log say which target failed, and why.
    let (_, _, page) = get(&format!("{}/", h.url)).await;
    assert!(page.contains("<li>us-east-1: ready</li>"), "{page}");
    assert!(
        page.contains(&format!("<li>broken: failed: ListImageBuildVersions: cannot assume {DENIED}: STS answered AccessDenied"))
            && page.contains("Retrying will not fix this, so readiness does not wait for this target"),
        "{page}"
    );
    let released = logs.lines_with(
        "warn",
        &[
            "target_name=broken",
            "readiness no longer waits for this target",
            "AccessDenied",
        ],
    );
    assert_eq!(released.len(), 1, "{}", logs.text());
    let ready = logs.lines_with(
        "warn",
        &["msg=ready", "targets=3", "failing_targets=broken"],
    );
    assert_eq!(ready.len(), 1, "{}", logs.text());
    assert!(
        logs.lines_with("warn", &["keeping the last good data"])
            .is_empty(),
        "no last good data was ever read: {}",
        logs.text()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_target_failing_with_passing_errors_holds_readiness_for_the_bound_only() {
    let (logs, _guard) = Captured::start();
    const MAX_WAIT: Duration = Duration::from_secs(5);
    let world = World::new(sample_world(), at(160.0));
    // Every listing answers 5xx: passing, retried, never fixed by itself.
    world.sim.set_faults(Faults {
        server_error_ratio: 1.0,
        operations: vec!["ListImageBuildVersions".into()],
        ..Faults::default()
    });
    let h = world
        .spawn_exporter(&["--readiness.max-wait", "5s", "--aws.max-attempts", "1"])
        .await;
    let started = Instant::now();
    h.warm_up();
    // Before the bound, it waits for the failing target (checked only when
    // the answer certainly came before the bound, so that a slow machine
    // cannot fail it).
    let (status, body) = ready_status(&h).await;
    if started.elapsed() < MAX_WAIT {
        assert_eq!(status, 503, "{body}");
        assert!(
            body.starts_with("Not ready: waiting for\n- us-east-1: "),
            "{body}"
        );
    }
    until_ready(&h, &logs).await;
    assert!(
        started.elapsed() >= MAX_WAIT,
        "ready after {:?}, before the bound",
        started.elapsed()
    );
    let (_, _, page) = get(&format!("{}/", h.url)).await;
    assert!(
        page.contains("<li>us-east-1: failing: ListImageBuildVersions failed: Service")
            && page.contains("Still failing after --readiness.max-wait (5s), so readiness no longer waits for this target"),
        "{page}"
    );
    let released = logs.lines_with(
        "warn",
        &[
            "target_name=us-east-1",
            "still failing after --readiness.max-wait",
            "max_wait_s=5",
        ],
    );
    assert_eq!(released.len(), 1, "{}", logs.text());
    assert!(
        h.sim.calls_to("ListImageBuildVersions") >= 2,
        "retried without a scrape: {:?}",
        h.sim.calls()
    );
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));

    // The API recovers: the next scrape reads everything.
    h.sim.set_faults(Faults::default());
    let m = h.scrape().await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(1.0));
    assert_eq!(m.get("imagebuilder_exporter_ready", &[]), Some(1.0));
    let (_, _, page) = get(&format!("{}/", h.url)).await;
    assert!(page.contains("<li>us-east-1: ready</li>"), "{page}");
    h.shutdown().await;
}
