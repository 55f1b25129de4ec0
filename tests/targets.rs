//! Several accounts and regions from one exporter (`--config.file`), the
//! other account reached through STS `AssumeRole` with the real SDK.

mod common;

use common::*;
use imagebuilder_exporter::simulator::scenario::Ids;
use imagebuilder_exporter::simulator::store::Store;

const OTHER: &str = "210987654321";
const ROLE: &str = "arn:aws:iam::210987654321:role/imagebuilder-exporter";
const DENIED: &str = "arn:aws:iam::333333333333:role/imagebuilder-exporter";

/// The "api" image's builds, in account 210987654321 and eu-west-1.
fn other_account() -> Store {
    let mut ids = Ids::new(77);
    let mut store = Store::default();
    let mut b = simple_done_build(&mut ids, "api", 1, at(-600.0));
    b.arn = b
        .arn
        .replace("us-east-1", "eu-west-1")
        .replace("123456789012", OTHER);
    store.insert(b);
    store
}

/// `targets.yml` in a directory of its own, removed when dropped.
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl std::ops::Deref for ConfigFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}

fn write_config(text: &str) -> ConfigFile {
    let dir = tempfile::Builder::new()
        .prefix("ibx-targets-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("targets.yml");
    std::fs::write(&path, text).unwrap();
    ConfigFile { _dir: dir, path }
}

#[tokio::test]
async fn each_target_is_refreshed_on_its_own() {
    let config = write_config(&format!(
        "targets:\n  - region: us-east-1\n  - name: prod-eu\n    region: eu-west-1\n    role_arn: {ROLE}\n    external_id: ibx-secret-id\n  - name: broken\n    region: eu-west-1\n    role_arn: {DENIED}\n"
    ));
    let clock = imagebuilder_exporter::clock::ManualClock::new(at(160.0));
    let sim = imagebuilder_exporter::simulator::Simulator::new(clock.clone(), sample_world(), 42);
    sim.add_account(OTHER, "eu-west-1", other_account());
    sim.allow_role(ROLE, Some("ibx-secret-id"));
    let h = Harness::start_with(
        sim,
        clock,
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--aws.max-attempts",
            "2",
        ],
        |_| {},
    )
    .await;
    let m = h.scrape().await;

    // Both reachable targets export; the one whose role is denied is down
    // without blanking the others.
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "us-east-1")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "prod-eu")]),
        Some(1.0)
    );
    assert_eq!(m.get("imagebuilder_up", &[("target", "broken")]), Some(0.0));
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_duration_seconds",
            &[
                ("image", "api"),
                ("account_id", OTHER),
                ("region", "eu-west-1")
            ]
        ),
        Some(60.0)
    );
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_duration_seconds",
            &web("Launch")
        ),
        Some(12.418)
    );
    assert_eq!(
        m.count(
            "imagebuilder_workflow_step_duration_seconds",
            &[("account_id", OTHER)]
        ),
        1,
        "the other account sees only its builds"
    );
    assert_eq!(
        m.get(
            "imagebuilder_exporter_tracked_builds",
            &[("target", "prod-eu")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "imagebuilder_exporter_tracked_builds",
            &[("target", "us-east-1")]
        ),
        Some(2.0)
    );

    // The role's temporary credentials signed the other account's calls.
    let keys = h.sim.access_keys();
    assert!(keys.keys().any(|k| k.starts_with("ASIA")), "{keys:?}");
    assert!(keys.contains_key("AKIDTEST"));
    let assumed = h.sim.calls_to("AssumeRole");
    assert!(assumed >= 2, "prod-eu and broken each asked STS: {assumed}");

    // Assumed credentials are cached: the next refresh asks STS only for
    // the target that never got any.
    h.clock.advance_secs(10.0);
    h.sim.reset_calls();
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "prod-eu")]),
        Some(1.0)
    );
    assert!(h.sim.calls_to("AssumeRole") <= 2, "{:?}", h.sim.calls());
    h.shutdown().await;
}

#[tokio::test]
async fn a_wrong_external_id_is_denied() {
    let config = write_config(&format!("targets:\n  - name: prod-eu\n    region: eu-west-1\n    role_arn: {ROLE}\n    external_id: wrong-id\n"));
    let clock = imagebuilder_exporter::clock::ManualClock::new(at(160.0));
    let sim = imagebuilder_exporter::simulator::Simulator::new(clock.clone(), sample_world(), 42);
    sim.add_account(OTHER, "eu-west-1", other_account());
    sim.allow_role(ROLE, Some("ibx-secret-id"));
    let h = Harness::start_with(
        sim,
        clock,
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--aws.max-attempts",
            "1",
        ],
        |_| {},
    )
    .await;
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "prod-eu")]),
        Some(0.0)
    );
    assert_eq!(m.count("imagebuilder_workflow_step_status", &[]), 0);
    // A refused role is a configuration problem: counted as such, not retried.
    assert_eq!(
        m.get(
            "imagebuilder_exporter_api_errors_total",
            &[("target", "prod-eu"), ("code", "credentials")]
        ),
        Some(1.0)
    );
    assert_eq!(h.sim.calls_to("AssumeRole"), 1);
    assert_eq!(
        h.sim.calls_to("ListImageBuildVersions"),
        0,
        "nothing is sent unsigned"
    );
    h.shutdown().await;
}

#[test]
fn a_bad_config_file_is_refused_naming_the_problem() {
    let bin = env!("CARGO_BIN_EXE_imagebuilder-exporter");
    for (text, want) in [
        (
            "targets:\n  - region: us-east-1\n    role_arn: arn:aws:iam::12:role/x\n",
            "targets[0].role_arn",
        ),
        ("targets:\n  - regio: us-east-1\n", "unknown field `regio`"),
        ("nope: 1\n", "unknown field `nope`"),
        // Identical targets would serve every series twice: both are named.
        (
            "targets:\n  - name: a\n    region: eu-west-1\n  - name: b\n    region: eu-west-1\n",
            "targets[0] (\"a\") and targets[1] (\"b\") both read region eu-west-1",
        ),
    ] {
        let path = write_config(text);
        let out = std::process::Command::new(bin)
            .args(["--config.file", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(want) && err.contains("targets.yml"),
            "{text}: {err}"
        );
    }
    let out = std::process::Command::new(bin)
        .args(["--config.file", "/nonexistent/targets.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/targets.yml"));
}
