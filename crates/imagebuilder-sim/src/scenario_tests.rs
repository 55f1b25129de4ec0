//! Tests of `scenario.rs` (a child module, in a file of its own for size).

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

/// Every pipeline's answer and every build's failure context in the
/// demo are valid against the model, at `now` and 10 minutes later.
#[test]
fn the_demo_s_answers_are_valid() {
    use crate::shapes::tests::{assert_pipeline_valid, assert_valid};
    use crate::shapes::{pipeline_json, summary_json};
    let now = 1_788_981_143_418_000_000;
    let store = demo(now, 7);
    let mut contexts = 0;
    for t in [now, now + 10 * MINUTE] {
        for p in store.pipelines() {
            let v = pipeline_json(p, &store.pipeline_state(&p.arn, t).unwrap());
            assert_pipeline_valid(&v);
            assert!(v.get("dateLastRun").is_none());
        }
        for b in store.visible(t) {
            let s = summary_json(b, t);
            if let Some(c) = s["state"].get("failureContext") {
                assert_valid(c);
                contexts += 1;
            }
            assert_eq!(
                s["state"]["status"] == "FAILED",
                s["state"].get("failureContext").is_some() || b.name == "windows-base",
                "{s}"
            );
        }
    }
    assert!(contexts > 10, "{contexts}");
}

#[test]
fn the_demo_has_pipelines_in_every_state() {
    let now = 1_788_981_143_418_000_000;
    let store = demo(now, 7);
    let state = |name: &str, t: Nanos| store.pipeline_state(&pipeline_arn(name), t).unwrap();
    assert_eq!(store.pipelines().count(), 11);
    // Every image has its pipeline, which started its builds.
    for b in store.visible(now) {
        assert_eq!(b.pipeline_arn, Some(pipeline_arn(&b.name)), "{}", b.arn);
    }
    let limit = |name: &str| {
        store
            .pipelines()
            .find(|p| p.name == name)
            .and_then(|p| p.schedule.as_ref()?.failure_count)
    };
    // One failure away from its count, for the whole demo.
    for t in [now, now + 10 * MINUTE, now + 60 * MINUTE] {
        let s = state("gpu-worker", t);
        assert_eq!((s.status.as_str(), s.consecutive_failures), ("ENABLED", 2));
        assert_eq!(limit("gpu-worker"), Some(3));
    }
    // Disables itself at its second failure, 2 to 4 minutes in.
    let s = state("hardened-base", now);
    assert_eq!((s.status.as_str(), s.consecutive_failures), ("ENABLED", 1));
    assert_eq!(limit("hardened-base"), Some(2));
    assert!(s.next_run.is_some());
    let at = store
        .auto_disabled_at(&pipeline_arn("hardened-base"))
        .unwrap();
    assert!(
        at > now + 2 * MINUTE && at < now + 4 * MINUTE,
        "{}",
        (at - now) / NANOS_PER_SEC
    );
    let s = state("hardened-base", at);
    assert_eq!((s.status.as_str(), s.consecutive_failures), ("DISABLED", 2));
    assert_eq!(s.last_run_status.as_deref(), Some("FAILED"));
    assert_eq!((s.next_run, s.disabled_at), (None, Some(at)));
    // Its next scheduled run never starts.
    assert!(store
        .build(&build_arn("hardened-base", 4), now + 3 * HOUR)
        .is_none());
    assert!(store
        .build(&build_arn("hardened-base", 3), now + 3 * HOUR)
        .is_some());
    // Disabled by hand, below its count.
    let s = state("windows-base", now + 10 * MINUTE);
    assert_eq!(
        (s.status.as_str(), s.consecutive_failures, s.disabled_at),
        ("DISABLED", 1, None)
    );
    assert_eq!(limit("windows-base"), Some(3));
    // Run by hand only.
    let legacy = store.pipelines().find(|p| p.name == "legacy-app").unwrap();
    assert!(legacy.schedule.is_none());
    assert_eq!(state("legacy-app", now).next_run, None);
    // No other pipeline disables itself, whatever the seed.
    for seed in [1, 7, 57, 99, 1234] {
        let store = demo(now, seed);
        let disabled: Vec<String> = store
            .pipelines()
            .filter(|p| store.auto_disabled_at(&p.arn).is_some())
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(disabled, ["hardened-base"], "seed {seed}");
    }
}

#[test]
fn the_demo_has_a_component_failure_and_a_distribution_failure() {
    use crate::shapes::summary_json;
    let now = 1_788_981_143_418_000_000;
    let store = demo(now, 7);
    let etl = store.build(&build_arn("analytics-etl", 2), now).unwrap();
    let s = summary_json(etl, now);
    assert_eq!(s["state"]["status"], "FAILED");
    let d = &s["state"]["failureContext"]["distributionFailure"];
    assert_eq!(d["regionFailures"].as_array().unwrap().len(), 1);
    assert_eq!(d["regionFailures"][0]["region"], "eu-west-1");
    assert_eq!(d["regionFailures"][0]["targetAccountId"], "210987654321");
    // The newest build of its image, for the whole demo.
    assert!(store
        .visible(now + HOUR)
        .all(|b| b.name != "analytics-etl" || b.date_created <= etl.date_created));
    // Once hardened-base's live build fails: its component.
    let at = store
        .auto_disabled_at(&pipeline_arn("hardened-base"))
        .unwrap();
    let b = store.build(&build_arn("hardened-base", 3), at).unwrap();
    let c = &summary_json(b, at)["state"]["failureContext"];
    assert_eq!(c["failedStep"], "ApplyBuildComponents");
    assert_eq!(
        c["componentFailure"]["componentArn"],
        "arn:aws:imagebuilder:us-east-1:123456789012:component/install-hardened-base/1.0.0/1"
    );
    assert!(summary_json(b, at - 1)["state"]
        .get("failureContext")
        .is_none());
}

#[test]
fn organizations_are_deterministic_and_each_account_and_region_has_its_own_builds() {
    use crate::constraints::IMAGE_BUILD_VERSION_ARN;
    use std::collections::HashSet;
    let now = 1_796_385_600 * NANOS_PER_SEC;
    let spec = OrganizationSpec {
        accounts: 12,
        builds: 6,
        running: 1,
        seed: 5,
        ..OrganizationSpec::default()
    };
    let world = organization(now, &spec);
    let again = organization(now, &spec);
    assert_eq!(world.id, again.id);
    assert_eq!(world.account_ids(), again.account_ids());
    let other = organization(
        now,
        &OrganizationSpec {
            seed: 6,
            ..spec.clone()
        },
    );
    assert_ne!(world.id, other.id);
    assert_ne!(world.account_ids()[1..], other.account_ids()[1..]);

    let ids = world.account_ids();
    assert_eq!(ids.len(), 12);
    assert_eq!(ids[0], ACCOUNT);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 12);
    let names: Vec<&str> = world
        .accounts
        .iter()
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(names[..3], ["management", "team-001", "team-002"]);
    assert_eq!(names[9..], ["team-009", "sandbox-001", "sandbox-002"]);
    let mut steps = HashSet::new();
    let mut joined = 0;
    for (account, stores) in &world.accounts {
        assert_eq!(account.check(), Ok(()));
        assert!(account.joined >= joined && account.joined <= now - 24 * HOUR);
        joined = account.joined;
        let regions: Vec<&str> = stores.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(regions, ["us-east-1", "eu-west-1"]);
        for (region, store) in stores {
            let builds: Vec<_> = store.visible(now).collect();
            assert_eq!(builds.len(), 7, "6 finished and 1 running");
            let prefix = format!("arn:aws:imagebuilder:{region}:{}:image/", account.id);
            for b in builds {
                assert!(b.arn.starts_with(&prefix), "{}", b.arn);
                assert_eq!(IMAGE_BUILD_VERSION_ARN.violation(&b.arn), None);
                for s in b.workflows.iter().flat_map(|w| &w.steps) {
                    assert!(steps.insert(s.id.clone()), "step {} twice", s.id);
                }
            }
        }
    }
    // No sandboxes asked for: every member is a team.
    let teams = organization(
        now,
        &OrganizationSpec {
            accounts: 3,
            sandboxes: 0,
            regions: vec![],
            ..spec
        },
    );
    let names: Vec<&str> = teams
        .accounts
        .iter()
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(names, ["management", "team-001", "team-002"]);
    assert!(teams.accounts.iter().all(|(_, s)| s.is_empty()));
}
