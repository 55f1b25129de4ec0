//! Several accounts and regions from one exporter (`--config.file`), the
//! other account reached through STS `AssumeRole` with the real SDK.

use crate::common;
use crate::shared::bins::EXPORTER;

use crate::shared::docs;
use common::process;
use common::*;
use imagebuilder_sim::scenario::Ids;
use imagebuilder_sim::store::Store;

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
    let world = World::new(sample_world(), at(160.0))
        .with_other_account(other_account())
        .allowing(ROLE, Some("ibx-secret-id"));
    let h = world
        .spawn_exporter(&[
            "--config.file",
            config.to_str().unwrap(),
            "--aws.max-attempts",
            "2",
        ])
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
    let world = World::new(sample_world(), at(160.0))
        .with_other_account(other_account())
        .allowing(ROLE, Some("ibx-secret-id"));
    let h = world
        .spawn_exporter(&[
            "--config.file",
            config.to_str().unwrap(),
            "--aws.max-attempts",
            "1",
        ])
        .await;
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_up", &[("target", "prod-eu")]),
        Some(0.0)
    );
    assert_eq!(m.count("imagebuilder_workflow_step_status", &[]), 0);
    // A refused role is a configuration problem: counted with STS's code,
    // not retried.
    assert_eq!(
        m.get(
            "imagebuilder_exporter_api_errors_total",
            &[("target", "prod-eu"), ("code", "AccessDenied")]
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
    let bin = EXPORTER;
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

const ERRORS: &str = "imagebuilder_exporter_api_errors_total";
const MINUTE: f64 = 60.0;

/// The simulator's STS, through the real SDK: sessions last an hour, or
/// what `DurationSeconds` asks (900 s at least), or what the simulator is
/// told; a request signed with an expired session is refused with
/// Image Builder's `ExpiredTokenException`.
#[tokio::test]
async fn the_simulators_sts_hands_out_sessions_that_expire() {
    use aws_sdk_imagebuilder::config::ProvideCredentials;
    use aws_sdk_imagebuilder::error::ProvideErrorMetadata;
    use imagebuilder_exporter::aws::sdk::{load_sdk_config, AwsSettings};
    use imagebuilder_exporter::aws::AssumeRole;
    use imagebuilder_exporter::base::clock::{Clock, NANOS_PER_SEC};
    use std::time::{Duration, UNIX_EPOCH};

    let World { sim, clock } = World::new(sample_world(), at(0.0))
        .with_other_account(other_account())
        .allowing(ROLE, None);
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let base = AwsSettings {
        region: Some("eu-west-1".into()),
        endpoint_url: Some(running.url()),
        static_credentials: Some(("AKIDTEST".into(), "secret".into())),
        request_timeout: Duration::from_secs(5),
        ..AwsSettings::default()
    };
    let role = AwsSettings {
        assume_role: Some(AssumeRole {
            role_arn: ROLE.into(),
            external_id: None,
            session_name: "ibx-test".into(),
        }),
        ..base.clone()
    };
    let expiry_in = |creds: &aws_sdk_imagebuilder::config::Credentials| {
        let expiry = creds.expiry().expect("a session expires");
        let at = expiry.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
        (at - clock.now()) / NANOS_PER_SEC
    };
    let dyn_clock: std::sync::Arc<dyn Clock> = clock.clone();
    let assumed = load_sdk_config(&role, dyn_clock.clone()).await.unwrap();
    let provider = assumed.credentials_provider().unwrap();
    assert_eq!(
        expiry_in(&provider.provide_credentials().await.unwrap()),
        3600
    );

    // DurationSeconds, as the SDK sends it; below STS's 900 s, refused.
    let base_config = load_sdk_config(&base, dyn_clock.clone()).await.unwrap();
    let asking = |secs: u64| {
        let config = base_config.clone();
        async move {
            aws_config::sts::AssumeRoleProvider::builder(ROLE)
                .session_name("ibx-test")
                .session_length(Duration::from_secs(secs))
                .configure(&config)
                .build()
                .await
                .provide_credentials()
                .await
        }
    };
    assert_eq!(expiry_in(&asking(900).await.unwrap()), 900);
    let refused = asking(60).await.unwrap_err();
    assert!(
        format!(
            "{}",
            aws_sdk_imagebuilder::error::DisplayErrorContext(&refused)
        )
        .contains("ValidationError"),
        "{refused:?}"
    );

    // A short session, as the simulator is told to hand out.
    sim.set_session_lifetime(Some(Duration::from_secs(120)));
    let creds = provider.provide_credentials().await.unwrap();
    assert_eq!(expiry_in(&creds), 120);
    let client = aws_sdk_imagebuilder::Client::from_conf(
        aws_sdk_imagebuilder::config::Builder::from(&base_config)
            .credentials_provider(creds)
            .build(),
    );
    let list = || {
        client
            .list_image_build_versions()
            .image_version_arn("arn:aws:imagebuilder:eu-west-1:210987654321:image/api/1.0.0")
            .send()
    };
    list().await.expect("a live session is accepted");
    clock.advance_secs(119.0);
    list().await.expect("still live a second before it expires");
    clock.advance_secs(1.0);
    let err = list().await.expect_err("an expired session is refused");
    assert_eq!(err.code(), Some("ExpiredTokenException"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    running.stop().await;
}

/// [`other_account`] and a build of "worker" in flight: each refresh reads
/// it (several calls, each needing credentials).
fn other_account_with_a_build_in_flight() -> Store {
    let mut store = other_account();
    let mut ids = Ids::new(78);
    let b = fixed_build(
        &mut ids,
        "worker",
        1,
        at(-120.0),
        "BUILDING",
        vec![Wf {
            arn: BUILD_WF,
            kind: "BUILD",
            status: "RUNNING",
            start: Some(ts(-100.0)),
            steps: vec![
                step(
                    "Launch",
                    "COMPLETED",
                    Some(ts(-100.0)),
                    Some(ts(-40.0)),
                    Some(600),
                ),
                step("Build", "RUNNING", Some(ts(-40.0)), None, Some(3600)),
            ],
            ..Wf::default()
        }],
    );
    store.insert(in_other_account(b));
    store
}

/// A target with `role_arn` gets sessions that expire (here every 15
/// minutes): the exporter renews them before they do, once per session,
/// without a failed call. When the role's trust is revoked, the session in
/// hand works until it expires; then that target alone is down, with STS's
/// `AccessDenied` as the code, its last good data still served, and one
/// log line however many refreshes fail.
#[tokio::test]
async fn assumed_role_sessions_are_renewed_and_a_revoked_role_fails_alone() {
    let (logs, _guard) = logs::Captured::start();
    let config = write_config(&format!(
        "targets:\n  - region: us-east-1\n  - name: prod-eu\n    region: eu-west-1\n    role_arn: {ROLE}\n"
    ));
    let world = World::new(sample_world(), at(160.0))
        .with_other_account(other_account_with_a_build_in_flight())
        .allowing(ROLE, None);
    world
        .sim
        .set_session_lifetime(Some(std::time::Duration::from_secs(15 * 60)));
    // Every refresh lists the builds (discovery is due at once), so that
    // every refresh needs credentials.
    let h = world
        .spawn_exporter(&[
            "--config.file",
            config.to_str().unwrap(),
            "--discovery.interval",
            "1ms",
        ])
        .await;
    let up = |m: &Metrics, target: &str| m.get("imagebuilder_up", &[("target", target)]);

    // An hour in steps of five minutes: four sessions expire on the way.
    for step in 0..=12 {
        if step > 0 {
            h.clock.advance_secs(5.0 * MINUTE);
        }
        let m = h.scrape().await;
        assert_eq!(up(&m, "prod-eu"), Some(1.0), "step {step}: {}", m.text);
        assert_eq!(up(&m, "us-east-1"), Some(1.0), "step {step}");
        assert_eq!(
            m.sum(ERRORS, &[("target", "prod-eu")]),
            0.0,
            "step {step}: no call failed, none was refused as expired"
        );
    }
    // One AssumeRole per session (at 0, 15, 30, 45 and 60 minutes), not
    // one per call: the SDK tells expiry by the exporter's clock.
    assert_eq!(h.sim.calls_to("AssumeRole"), 5, "{:?}", h.sim.calls());

    // The role's trust is revoked: the session in hand still works.
    h.sim.revoke_role(ROLE);
    h.clock.advance_secs(MINUTE);
    let m = h.scrape().await;
    assert_eq!(up(&m, "prod-eu"), Some(1.0));
    // It expires; renewing it is denied, at every refresh from then on.
    for _ in 0..4 {
        h.clock.advance_secs(5.0 * MINUTE);
        let m = h.scrape().await;
        assert_eq!(up(&m, "us-east-1"), Some(1.0), "the others unaffected");
    }
    let m = h.scrape().await;
    assert_eq!(up(&m, "prod-eu"), Some(0.0));
    assert_eq!(up(&m, "us-east-1"), Some(1.0));
    let codes = m.label_values(ERRORS, "code");
    assert!(
        m.sum(ERRORS, &[("target", "prod-eu"), ("code", "AccessDenied")]) >= 1.0,
        "{codes:?}"
    );
    assert_eq!(
        m.sum(ERRORS, &[("target", "prod-eu")]),
        m.sum(ERRORS, &[("target", "prod-eu"), ("code", "AccessDenied")]),
        "nothing but AccessDenied (no ExpiredTokenException): {codes:?}"
    );
    assert_eq!(m.sum(ERRORS, &[("target", "us-east-1")]), 0.0);
    // Its last good data is still served.
    assert_eq!(
        m.get(
            "imagebuilder_workflow_step_duration_seconds",
            &[("image", "api"), ("account_id", OTHER)]
        ),
        Some(60.0)
    );
    let lines = logs.lines_with("warn", &["target_name=prod-eu", "code=AccessDenied"]);
    assert_eq!(lines.len(), 1, "one line per five minutes: {lines:#?}");
    assert!(
        lines[0].contains("sts:AssumeRole"),
        "the line says what was refused: {}",
        lines[0]
    );
    h.shutdown().await;
}

/// Each targets file of the docs, as a user copies it, run by the
/// exporter binary against the simulator binary (which lets any role be
/// assumed) with the endpoint variables docs/configuration.md gives: every
/// target of every file is read, and the exporter gets ready.
#[tokio::test(flavor = "multi_thread")]
async fn every_targets_file_in_the_docs_starts_and_gets_ready_against_the_simulator() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let files: Vec<String> = docs::code_blocks("yaml")
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("targets:")))
        .collect();
    assert!(files.len() >= 3, "found {} targets files", files.len());
    // A small account, so that each cold start takes a moment.
    let (_sim, url) = process::simulator(&[
        "--scenario",
        "sized",
        "--builds",
        "20",
        "--images",
        "2",
        "--running",
        "1",
        "--events-queue",
        "imagebuilder-events",
    ]);
    let env = [
        ("AWS_ENDPOINT_URL_IMAGEBUILDER", url.as_str()),
        ("AWS_ENDPOINT_URL_STS", url.as_str()),
        ("AWS_ENDPOINT_URL_SQS", url.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let mut runs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let path = dir.path().join(format!("targets-{i}.yml"));
        std::fs::write(&path, file).unwrap();
        let names: Vec<String> = imagebuilder_exporter::app::targets_file::load(&path)
            .unwrap_or_else(|e| panic!("targets file {i} of the docs refused: {e}\n{file}"))
            .targets
            .into_iter()
            .map(|t| t.name)
            .collect();
        let run = process::exporter(
            &[
                "--config.file",
                path.to_str().unwrap(),
                "--aws.max-requests-per-second",
                "200",
            ],
            &env,
        );
        runs.push((file, names, run));
    }
    for (file, names, run) in &runs {
        run.ready(std::time::Duration::from_secs(90)).await;
        let (status, _, body) = get(&format!("{}/metrics", run.base)).await;
        assert_eq!(status, 200);
        let m = Metrics::parse(&body);
        for name in names {
            assert_eq!(
                m.get("imagebuilder_up", &[("target", name)]),
                Some(1.0),
                "{name} of\n{file}\n{}",
                run.text()
            );
        }
        let ready = run
            .line(
                |l| l.contains("msg=ready"),
                std::time::Duration::from_secs(10),
            )
            .await;
        assert!(
            ready.contains("level=info") && ready.contains(&format!("targets={}", names.len())),
            "{ready}"
        );
    }
}
