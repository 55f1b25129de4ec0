//! The refresh algorithm against an in-memory Image Builder: which calls
//! each refresh makes, what is frozen when, which execution is the latest,
//! and how counters are seeded and counted. No HTTP, no SDK.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fake::*;
use super::*;
use crate::base::clock::NANOS_PER_SEC;
use crate::model::{Build, BuildStatus, Pipeline, StepStatus, WorkflowStatus};

/// Within the default lookback of every build of [`account`].
const NOW: Nanos = 1_000 * NANOS_PER_SEC;

fn tracker(interval: Duration) -> Tracker {
    Tracker::new(DiscoveryConfig {
        interval,
        ..DiscoveryConfig::default()
    })
}

/// A tracker past its cold start and backfill: what refreshes do from then on.
async fn started(api: &FakeApi, interval: Duration) -> Tracker {
    let mut t = tracker(interval);
    assert!(t.refresh(api, NOW).await.complete());
    while t.phase() != Phase::Steady {
        t.backfill(api, 3).await;
    }
    api.take_calls();
    t
}

fn calls(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The executions counted, by step name, image and status.
fn counted(t: &Tracker) -> Vec<(String, String, String, u64)> {
    let mut out = Vec::new();
    for v in &t.views().steps {
        for status in ["COMPLETED", "FAILED"] {
            let n = t.counters().get(&v.key, status).unwrap_or(0);
            if n > 0 {
                out.push((
                    v.key.workflow.image.to_string(),
                    v.key.step_name.to_string(),
                    status.to_string(),
                    n,
                ));
            }
        }
    }
    out
}

/// Two builds of "db": the first ended with `first` ("Test" ending
/// `test`), the second is running "Test" again.
fn retry_world(first: BuildStatus, workflow: WorkflowStatus, test: StepStatus) -> World {
    use StepStatus::{Completed, Running};
    let mut w = World::default();
    w.add(
        build("db", 1, 250, first),
        vec![(
            execution("wf-0", workflow, 260),
            vec![
                step("s9", "Build", Completed, 260, Some(270)),
                step("s10", "Test", test, 270, Some(280)),
            ],
        )],
    );
    w.add(
        build("db", 2, 300, BuildStatus::Building),
        vec![(
            execution("wf-3", WorkflowStatus::Running, 310),
            vec![
                step("s5", "Build", Completed, 310, Some(320)),
                step("s6", "Test", Running, 320, None),
            ],
        )],
    );
    w
}

/// The `GetWorkflowStepExecution` calls made since the last take.
fn details_read(api: &FakeApi) -> Vec<String> {
    api.take_calls()
        .into_iter()
        .filter(|c| c.starts_with("GWSE"))
        .collect()
}

#[tokio::test]
async fn a_cold_start_reads_the_latest_state_first_and_backfills_the_rest() {
    let api = FakeApi::new(account());
    let mut t = tracker(Duration::from_secs(3600));
    let report = t.refresh(&api, NOW).await;
    assert!(report.complete(), "{:?}", report.failures);
    assert!(report.discovery_ran);
    assert_eq!(t.phase(), Phase::Backfill);
    assert_eq!(
        api.take_calls(),
        calls(&[
            // 3 builds, pages of 2.
            "LIBV",
            "LIBV",
            // The pipelines, with the listing.
            "LIP",
            // The newest build of each image (back to an AVAILABLE one).
            "LWE image/db/1.0.0/1",
            "LWE image/web/1.0.0/2",
            // The latest execution of each workflow.
            "LWSE wf-2",
            "LWSE wf-3",
            // Details of the step in flight only.
            "GWSE s6",
        ])
    );
    // Ready: every step's latest state is known; finished steps' timeouts
    // are not yet.
    assert_eq!(t.views().steps.len(), 4);
    let timeouts: Vec<(&str, Option<i64>)> = t
        .views()
        .steps
        .iter()
        .map(|v| (&*v.key.step_name, v.timeout_seconds))
        .collect();
    assert_eq!(
        timeouts,
        [
            ("Build", None),
            ("Test", Some(600)),
            ("Build", None),
            ("Test", None)
        ]
    );
    assert_eq!(t.backfill_pending(), 4);

    // The backfill: newest first (db's step, then web's second build's,
    // then web's first build), in batches.
    t.backfill(&api, 2).await;
    assert_eq!(api.take_calls(), calls(&["GWSE s5", "GWSE s3"]));
    assert_eq!(t.backfill_pending(), 2);
    t.backfill(&api, 2).await;
    assert_eq!(
        api.take_calls(),
        calls(&["GWSE s4", "LWE image/web/1.0.0/1"])
    );
    assert_eq!(t.phase(), Phase::Steady);
    assert_eq!(t.backfill_pending(), 0);

    // Now exactly what a full cold start reads and shows, call for call.
    let full_api = FakeApi::new(account());
    let mut full = Tracker::new(DiscoveryConfig {
        interval: Duration::from_secs(3600),
        defer_backfill: false,
        ..DiscoveryConfig::default()
    });
    assert!(full.refresh(&full_api, NOW).await.complete());
    assert_eq!(full.phase(), Phase::Steady);
    assert_eq!(
        full_api.take_calls(),
        calls(&[
            "LIBV",
            "LIBV",
            "LIP",
            "LWE image/db/1.0.0/1",
            "LWE image/web/1.0.0/1",
            "LWE image/web/1.0.0/2",
            "LWSE wf-2",
            "LWSE wf-3",
            "GWSE s3",
            "GWSE s4",
            "GWSE s5",
            "GWSE s6",
        ])
    );
    assert_eq!(t.views(), full.views());
    assert_eq!(t.stats(), full.stats());

    // Finished when the exporter started: seeded, never counted.
    assert!(counted(&t).is_empty());
    for v in &t.views().steps {
        assert_eq!(t.counters().get(&v.key, "FAILED"), Some(0), "preset");
    }
    // What can no longer change is frozen.
    let frozen: BTreeMap<String, bool> = t
        .builds
        .values()
        .map(|b| (short(&b.build.arn), b.frozen))
        .collect();
    assert_eq!(
        frozen,
        [
            ("image/db/1.0.0/1".to_string(), false),
            ("image/web/1.0.0/1".to_string(), true),
            ("image/web/1.0.0/2".to_string(), true),
        ]
        .into_iter()
        .collect()
    );
    // The latest state comes from the newest build of each image.
    let versions: Vec<(String, String, String)> = t
        .views()
        .steps
        .iter()
        .map(|v| {
            (
                v.key.workflow.image.to_string(),
                v.key.step_name.to_string(),
                v.build.version.clone(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("db".into(), "Build".into(), "1.0.0/1".into()),
            ("db".into(), "Test".into(), "1.0.0/1".into()),
            ("web".into(), "Build".into(), "1.0.0/2".into()),
            ("web".into(), "Test".into(), "1.0.0/2".into()),
        ]
    );
    assert_eq!(t.stats().tracked_builds, 3);
}

#[tokio::test]
async fn before_ready_only_started_steps_have_their_details_read() {
    // A build running its first step, with a second one pending: the
    // headroom needs the running step's timeout at ready; the pending
    // step's waits for the next refresh, like any step in flight.
    let mut world = account();
    world.add(
        build("cache", 1, 400, BuildStatus::Building),
        vec![(
            execution("wf-4", WorkflowStatus::Running, 410),
            vec![
                step("s8", "Build", StepStatus::Running, 410, None),
                step("s9", "Test", StepStatus::Pending, 410, None),
            ],
        )],
    );
    let api = FakeApi::new(world);
    let mut t = tracker(Duration::from_secs(3600));
    assert!(t.refresh(&api, NOW).await.complete());
    assert_eq!(t.phase(), Phase::Backfill);
    assert_eq!(details_read(&api), calls(&["GWSE s6", "GWSE s8"]));

    // The next refresh, during the backfill, reads the pending one.
    t.refresh(&api, NOW + NANOS_PER_SEC).await;
    assert_eq!(details_read(&api), calls(&["GWSE s9"]));
    assert_eq!(t.phase(), Phase::Backfill);
}

#[tokio::test]
async fn a_failed_newest_build_reads_back_to_an_available_one_before_ready() {
    let mut w = account();
    w.add(
        build("web", 3, 400, BuildStatus::Failed),
        vec![(
            execution("wf-4", WorkflowStatus::Failed, 410),
            vec![
                step("s7", "Build", StepStatus::Failed, 410, Some(420)),
                step("s8", "Test", StepStatus::Skipped, 420, None),
            ],
        )],
    );
    let api = FakeApi::new(w);
    let mut t = tracker(Duration::from_secs(3600));
    t.refresh(&api, NOW).await;
    let made = api.take_calls();
    // web/3 failed: web/2, the newest that completed, is read too (its
    // "Test" is the last conclusive one). Its execution's counts say every
    // step COMPLETED, so its steps need no listing; web/1 waits.
    for c in [
        "LWE image/web/1.0.0/3",
        "LWE image/web/1.0.0/2",
        "LWSE wf-4",
    ] {
        assert!(made.contains(&c.to_string()), "{c} not in {made:?}");
    }
    for c in ["LWE image/web/1.0.0/1", "LWSE wf-2"] {
        assert!(!made.contains(&c.to_string()), "{c} in {made:?}");
    }
    let failures: Vec<(&str, &str)> = t
        .views()
        .failures
        .iter()
        .map(|f| (&*f.key.step_name, f.build.version.as_str()))
        .collect();
    assert_eq!(failures, [("Build", "1.0.0/3")]);
}

#[tokio::test]
async fn a_steady_refresh_reads_only_what_is_in_flight() {
    let api = FakeApi::new(account());
    let mut t = started(&api, Duration::from_secs(3600)).await;
    let version = t.version();
    let report = t.refresh(&api, NOW).await;
    assert!(report.complete() && !report.discovery_ran);
    assert_eq!(
        api.take_calls(),
        calls(&["LWE image/db/1.0.0/1", "LWSE wf-3"])
    );
    assert_eq!(t.version(), version, "nothing changed: nothing to encode");

    // The running step finishes: counted once, its details not read again.
    api.world().steps.get_mut("wf-3").unwrap()[1].status = StepStatus::Failed;
    t.refresh(&api, NOW).await;
    assert_eq!(
        api.take_calls(),
        calls(&["LWE image/db/1.0.0/1", "LWSE wf-3"])
    );
    assert_eq!(
        counted(&t),
        [("db".into(), "Test".into(), "FAILED".into(), 1)]
    );
    assert_ne!(t.version(), version);
    t.refresh(&api, NOW).await;
    assert_eq!(counted(&t).len(), 1, "once only");
}

#[tokio::test]
async fn a_new_build_is_read_whole_and_its_steps_counted() {
    let api = FakeApi::new(account());
    let mut t = started(&api, Duration::ZERO).await;
    api.world().add(
        build("web", 3, 400, BuildStatus::Failed),
        vec![(
            execution("wf-4", WorkflowStatus::Failed, 410),
            vec![
                step("s7", "Build", StepStatus::Failed, 410, Some(420)),
                step("s8", "Test", StepStatus::Skipped, 420, None),
            ],
        )],
    );
    let report = t.refresh(&api, NOW).await;
    assert!(report.complete());
    assert_eq!(
        api.take_calls(),
        calls(&[
            "LIBV",
            "LIBV",
            // The pipelines, with the listing.
            "LIP",
            "LWE image/db/1.0.0/1",
            "LWE image/web/1.0.0/3",
            "LWSE wf-3",
            "LWSE wf-4",
            "GWSE s7",
            "GWSE s8",
        ])
    );
    // Created after the exporter started: its terminal steps are news.
    assert_eq!(
        counted(&t),
        [("web".into(), "Build".into(), "FAILED".into(), 1)]
    );
    // The failure is open; "Test" was skipped, so its last conclusive
    // outcome is still build 2's, read from the listing already made.
    let failures: Vec<(&str, &str)> = t
        .views()
        .failures
        .iter()
        .map(|f| (&*f.key.step_name, f.build.version.as_str()))
        .collect();
    assert_eq!(failures, [("Build", "1.0.0/3")]);
}

#[tokio::test]
async fn a_failure_behind_a_running_retry_is_found_by_listing_older_executions_once() {
    // db's first build failed "Test"; its second is running it again.
    let w = retry_world(
        BuildStatus::Failed,
        WorkflowStatus::Failed,
        StepStatus::Failed,
    );
    let api = FakeApi::new(w);
    let mut t = tracker(Duration::from_secs(3600));
    t.refresh(&api, NOW).await;
    let first = api.take_calls();
    assert!(first.contains(&"LWSE wf-0".to_string()), "{first:?}");
    let failures: Vec<(&str, &str)> = t
        .views()
        .failures
        .iter()
        .map(|f| (&*f.key.step_name, f.build.version.as_str()))
        .collect();
    assert_eq!(failures, [("Test", "1.0.0/1")]);
    // Frozen once read: the next refresh lists only the running build.
    t.refresh(&api, NOW).await;
    assert_eq!(
        api.take_calls(),
        calls(&["LWE image/db/1.0.0/2", "LWSE wf-3"])
    );
}

#[tokio::test]
async fn a_retry_behind_a_build_whose_every_step_completed_lists_nothing_older() {
    // db's first build completed every step (its counts say so); its
    // second is running "Test": nothing can be open, so wf-0's steps are
    // not listed.
    let w = retry_world(
        BuildStatus::Available,
        WorkflowStatus::Completed,
        StepStatus::Completed,
    );
    let api = FakeApi::new(w);
    let mut t = tracker(Duration::from_secs(3600));
    t.refresh(&api, NOW).await;
    let first = api.take_calls();
    assert!(first.contains(&"LWSE wf-3".to_string()), "{first:?}");
    assert!(!first.contains(&"LWSE wf-0".to_string()), "{first:?}");
    assert!(t.views().failures.is_empty());
}

#[tokio::test]
async fn deleted_builds_leave_at_once_and_the_previous_build_takes_over() {
    let api = FakeApi::new(account());
    let mut t = started(&api, Duration::ZERO).await;
    api.world().remove(&arn("web", 2));
    let report = t.refresh(&api, NOW).await;
    assert!(report.complete());
    // web's first build is its latest now: its steps are read.
    assert_eq!(
        api.take_calls(),
        calls(&[
            "LIBV",
            // The pipelines, with the listing.
            "LIP",
            "LWE image/db/1.0.0/1",
            "LWSE wf-1",
            "LWSE wf-3",
            "GWSE s1",
            "GWSE s2",
        ])
    );
    assert!(t
        .views()
        .steps
        .iter()
        .filter(|v| &*v.key.workflow.image == "web")
        .all(|v| v.build.version == "1.0.0/1"));

    // Deleted between two listings: the not-found answer untracks it, and
    // it is not an outage.
    let api = FakeApi::new(account());
    let mut t = started(&api, Duration::from_secs(3600)).await;
    api.world().remove(&arn("db", 1));
    let report = t.refresh(&api, NOW).await;
    assert!(report.complete(), "{:?}", report.failures);
    assert!(t
        .views()
        .steps
        .iter()
        .all(|v| &*v.key.workflow.image != "db"));
    assert_eq!(t.stats().tracked_builds, 2);
}

#[tokio::test]
async fn a_partial_listing_drops_nothing_it_may_have_skipped() {
    let api = FakeApi::new(account());
    let mut t = started(&api, Duration::ZERO).await;
    let before = t.views().clone();
    // The listing skips web's newest build as unusable.
    api.world().skipped.insert(arn("web", 2));
    let report = t.refresh(&api, NOW).await;
    assert!(!report.complete(), "a partial read is reported");
    assert_eq!(t.stats().tracked_builds, 3, "web/2 is kept");
    assert_eq!(t.views().steps, before.steps);
}

#[tokio::test]
async fn a_failed_read_keeps_the_last_good_data() {
    let api = FakeApi::new(account());
    let mut t = started(&api, Duration::from_secs(3600)).await;
    let before = t.views().clone();
    api.world().steps.get_mut("wf-3").unwrap()[1].status = StepStatus::Completed;
    api.world().failing.insert("wf-3".into());
    let report = t.refresh(&api, NOW).await;
    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        report.failures[0].resource,
        "step executions of wf-3 (arn:aws:imagebuilder:us-east-1:123456789012:image/db/1.0.0/1)"
    );
    assert_eq!(t.views().steps, before.steps, "last good values");
    assert!(counted(&t).is_empty());
    // Readable again: the change arrives and is counted.
    api.world().failing.clear();
    assert!(t.refresh(&api, NOW).await.complete());
    assert_eq!(
        counted(&t),
        [("db".into(), "Test".into(), "COMPLETED".into(), 1)]
    );
}

#[tokio::test]
async fn lookback_and_max_builds_choose_what_is_tracked() {
    let api = FakeApi::new(account());
    // Only builds of the last 150 s: web/1 is older and not the newest of
    // its image, so it is not tracked; db/1 is in flight anyway.
    let mut t = Tracker::new(DiscoveryConfig {
        lookback: Duration::from_secs(150),
        interval: Duration::from_secs(3600),
        ..DiscoveryConfig::default()
    });
    t.refresh(&api, 400 * NANOS_PER_SEC).await;
    let mut tracked: Vec<String> = t.builds.keys().map(|a| short(a)).collect();
    tracked.sort();
    assert_eq!(tracked, ["image/db/1.0.0/1", "image/web/1.0.0/2"]);

    // At most two builds: the oldest finished one goes first.
    let mut t = Tracker::new(DiscoveryConfig {
        max_builds: 2,
        interval: Duration::from_secs(3600),
        ..DiscoveryConfig::default()
    });
    let report = t.refresh(&api, NOW).await;
    assert_eq!(report.dropped_builds, 1);
    assert!(!t.builds.contains_key(arn("web", 1).as_str()));
}

#[tokio::test]
async fn an_event_reads_its_build_and_nothing_else() {
    let api = FakeApi::new(account());
    let mut t = started(&api, Duration::from_secs(3600)).await;
    // A build the discovery listing has not seen yet fails its first step.
    api.world().add(
        build("web", 3, 400, BuildStatus::Failed),
        vec![(
            execution("wf-4", WorkflowStatus::Failed, 410),
            vec![
                step("s7", "Build", StepStatus::Failed, 410, Some(420)),
                step("s8", "Test", StepStatus::Skipped, 420, None),
            ],
        )],
    );
    let web3: Arc<str> = Arc::from(arn("web", 3));
    let (report, targeted) = t.refresh_builds(&api, &[web3.clone(), web3.clone()]).await;
    assert!(report.complete(), "{:?}", report.failures);
    assert_eq!(targeted.read, [web3], "named twice, read once");
    assert_eq!(
        api.take_calls(),
        calls(&[
            // The image version's three builds, in pages of two.
            "LIBV image/web/1.0.0",
            "LIBV image/web/1.0.0",
            // The build ended: its pipeline's counts changed.
            "LIP",
            "LWE image/web/1.0.0/3",
            "LWSE wf-4",
            "GWSE s7",
            "GWSE s8",
        ])
    );
    // Tracked, counted (it is news), its failure open.
    assert_eq!(t.stats().tracked_builds, 4);
    assert_eq!(
        counted(&t),
        [("web".into(), "Build".into(), "FAILED".into(), 1)]
    );
    assert_eq!(t.views().failures.len(), 1);

    // A build the API does not know: one listing, then ignored.
    let gone: Arc<str> = Arc::from(arn("api", 1));
    let (report, targeted) = t.refresh_builds(&api, std::slice::from_ref(&gone)).await;
    assert!(report.complete());
    assert_eq!(targeted.unknown, [gone]);
    assert_eq!(api.take_calls(), calls(&["LIBV image/api/1.0.0"]));
    assert_eq!(t.stats().tracked_builds, 4);
}

fn pipeline(name: &str, recipe: &str, status: crate::model::PipelineStatus) -> Pipeline {
    Pipeline {
        arn: Arc::from(format!(
            "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/{name}"
        )),
        name: Arc::from(name),
        recipe: Some(Arc::from(recipe)),
        status,
        consecutive_failures: Some(0),
        schedule: None,
        last_run_status: None,
        next_run: None,
    }
}

#[tokio::test]
async fn pipelines_are_listed_with_discovery_and_carry_the_name_their_builds_carry() {
    use crate::model::PipelineStatus::{Disabled, Enabled};
    let mut world = account();
    // An image whose name is not its ARN's: builds say "Web Server".
    world.add(
        Build {
            name: Arc::from("Web Server"),
            ..build("web-server", 1, 500, BuildStatus::Available)
        },
        vec![],
    );
    world.pipelines = vec![
        pipeline("web-nightly", "web-server", Disabled),
        pipeline("db-weekly", "db", Enabled),
        // No build of its recipe seen yet: the recipe's own name.
        pipeline("new-image", "new-image", Enabled),
    ];
    let api = FakeApi::new(world);
    let mut t = started(&api, Duration::ZERO).await;
    let rows: Vec<(&str, &str, &str)> = t
        .views()
        .pipelines
        .iter()
        .map(|p| (&*p.key.pipeline, &*p.key.image, p.pipeline.status.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("db-weekly", "db", "ENABLED"),
            ("new-image", "new-image", "ENABLED"),
            ("web-nightly", "Web Server", "DISABLED"),
        ]
    );

    // One listing pass a discovery: a deleted pipeline is gone at the next.
    api.world().pipelines.retain(|p| &*p.name != "db-weekly");
    assert!(t.refresh(&api, NOW).await.complete());
    assert_eq!(api.take_calls().iter().filter(|c| *c == "LIP").count(), 1);
    assert_eq!(t.views().pipelines.len(), 2);

    // A listing that fails keeps what was known, and says so.
    api.world().failing.insert("pipelines".into());
    api.world().pipelines.clear();
    let report = t.refresh(&api, NOW).await;
    assert!(!report.complete());
    assert_eq!(report.failures[0].resource, "the account's image pipelines");
    assert_eq!(t.views().pipelines.len(), 2);
    // The builds were read all the same.
    assert_eq!(t.views().images.len(), 3);
}

#[tokio::test]
async fn the_image_filter_applies_to_the_pipelines_image() {
    use crate::model::PipelineStatus::Enabled;
    let mut world = account();
    world.pipelines = vec![
        pipeline("web-nightly", "web", Enabled),
        pipeline("db-weekly", "db", Enabled),
    ];
    let api = FakeApi::new(world);
    let mut t = Tracker::new(DiscoveryConfig {
        image_filter: Some(regex::Regex::new("^web$").unwrap()),
        ..DiscoveryConfig::default()
    });
    assert!(t.refresh(&api, NOW).await.complete());
    let names: Vec<&str> = t
        .views()
        .pipelines
        .iter()
        .map(|p| &*p.key.pipeline)
        .collect();
    assert_eq!(names, ["web-nightly"]);
}

#[tokio::test]
async fn a_pipeline_event_reads_the_pipelines_and_nothing_else() {
    use crate::model::PipelineStatus::{Disabled, Enabled};
    let mut world = account();
    world.pipelines = vec![pipeline("web-nightly", "web", Enabled)];
    let api = FakeApi::new(world);
    let mut t = started(&api, Duration::from_secs(3600)).await;
    api.world().pipelines[0].status = Disabled;
    let version = t.version();
    let report = t.refresh_pipelines_now(&api).await;
    assert!(report.complete());
    assert_eq!(api.take_calls(), ["LIP"]);
    assert_eq!(t.views().pipelines[0].pipeline.status, Disabled);
    assert!(t.version() > version, "the change is served");
    assert_eq!(
        t.pipeline_arns(),
        ["arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/web-nightly"]
    );
}
