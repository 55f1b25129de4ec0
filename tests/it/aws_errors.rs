//! What a new user sees when the AWS side is not set up: the binary, in a
//! clean environment, the real SDK against the simulator. Each class of
//! error is one line that names the cause and the fix (the full chain at
//! debug level only), and a bad region is refused at start-up naming where
//! it came from.

use crate::common;

use std::time::Duration;

use common::process::{exporter, Spawned};
use common::{get, Metrics, CLOSED};
use imagebuilder_sim::{RunningSimulator, Simulator};

/// Generous bounds for a busy machine: each wait ends as soon as the line
/// or the state shows.
const WITHIN: Duration = Duration::from_secs(60);

const FIX: &str = "set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run in a role";

async fn simulator() -> (Simulator, RunningSimulator) {
    let sim = common::demo_simulator();
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    (sim, running)
}

/// The warning lines of a run.
fn warnings(run: &Spawned) -> Vec<String> {
    run.lines()
        .into_iter()
        .filter(|l| l.contains("level=warn"))
        .collect()
}

async fn metrics(run: &Spawned) -> Metrics {
    let (status, _, body) = get(&format!("{}/metrics", run.base)).await;
    assert_eq!(status, 200);
    Metrics::parse(&body)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credentials_is_one_line_with_the_fix_and_the_chain_at_debug_level() {
    let (sim, running) = simulator().await;
    let url = running.url();
    let run = exporter(
        &["--log.level", "debug"],
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_IMAGEBUILDER", &url),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    // Retrying will not give credentials: ready at once, the target down.
    run.ready(WITHIN).await;
    let line = run
        .line(
            |l| l.contains("could not read") && l.contains("code=credentials"),
            WITHIN,
        )
        .await;
    assert!(
        line.contains("msg=\"could not read; nothing read yet for this target\"")
            && line.contains("error=\"ListImageBuildVersions: no AWS credentials: nothing is configured, and AWS_EC2_METADATA_DISABLED turns off the instance role: set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run in a role"),
        "{line}"
    );
    for w in warnings(&run) {
        assert!(
            !w.contains("Attempted") && !w.contains("Ec2InstanceMetadata") && w.len() < 800,
            "a warning carries the SDK's dump: {w}"
        );
        assert!(!w.contains("keeping the last good data"), "{w}");
    }
    // The full chain, for whoever asks for debug.
    run.line(
        |l| {
            l.contains("level=debug")
                && l.contains("msg=\"AWS SDK error\"")
                && l.contains("no credentials found in chain. Attempted:")
        },
        WITHIN,
    )
    .await;
    let m = metrics(&run).await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));
    assert_eq!(
        m.get(
            "imagebuilder_exporter_api_errors_total",
            &[
                ("code", "credentials"),
                ("operation", "ListImageBuildVersions")
            ]
        ),
        Some(1.0),
        "not retried"
    );
    assert_eq!(
        sim.calls_to("ListImageBuildVersions"),
        0,
        "nothing sent unsigned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credentials_from_the_profile_named_says_so() {
    let (_sim, running) = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[profile prod]\nregion = us-east-1\n").unwrap();
    let run = exporter(
        &[],
        &[
            ("AWS_PROFILE", "prod"),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_IMAGEBUILDER", &running.url()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let start = run.line(|l| l.contains("msg=target"), WITHIN).await;
    assert!(
        start.contains("credentials=\"profile prod (AWS_PROFILE)\""),
        "{start}"
    );
    let line = run.line(|l| l.contains("code=credentials"), WITHIN).await;
    assert!(
        line.contains("no AWS credentials: profile prod (AWS_PROFILE) gave none: ")
            && line.contains(FIX),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_names_the_host_the_region_and_the_fix() {
    let closed = CLOSED.to_string();
    let run = exporter(
        &["--readiness.max-wait", "2s", "--aws.max-attempts", "1"],
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_IMAGEBUILDER", &closed),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ],
    );
    let line = run.line(|l| l.contains("code=connection"), WITHIN).await;
    assert!(
        line.contains(&format!("error=\"ListImageBuildVersions: cannot reach {closed} (AWS_ENDPOINT_URL_IMAGEBUILDER) (region eu-west-1): connection refused: check --aws.region or AWS_ENDPOINT_URL_IMAGEBUILDER\"")),
        "{line}"
    );
    assert!(line.contains("nothing read yet"), "{line}");
    // A passing error: retried, and readiness waits for it only so long.
    run.ready(WITHIN).await;
    run.line(
        |l| {
            l.contains("still failing after --readiness.max-wait")
                && l.contains("target_name=eu-west-1")
        },
        WITHIN,
    )
    .await;
    let m = metrics(&run).await;
    assert_eq!(m.get("imagebuilder_up", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unresolvable_host_is_named() {
    // `.invalid` never resolves (RFC 2606).
    let run = exporter(
        &["--aws.max-attempts", "1"],
        &[
            ("AWS_REGION", "us-east-1"),
            (
                "AWS_ENDPOINT_URL_IMAGEBUILDER",
                "http://imagebuilder.invalid",
            ),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ],
    );
    let line = run
        .line(
            |l| l.contains("code=connection") || l.contains("code=timeout"),
            WITHIN,
        )
        .await;
    assert!(
        line.contains("cannot reach http://imagebuilder.invalid (AWS_ENDPOINT_URL_IMAGEBUILDER) (region us-east-1): the host name does not resolve")
            && line.contains("check --aws.region or AWS_ENDPOINT_URL_IMAGEBUILDER"),
        "{line}"
    );
}

/// Runs the exporter until it exits; its status and log.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut run = exporter(args, env);
    let status = run.exit(WITHIN).await;
    (status.code().unwrap_or(-1), run.text())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_or_malformed_region_is_refused_naming_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[default]\nregion = eu_west_1\n").unwrap();
    let config = config.to_str().unwrap();
    for (env, named) in [
        (vec![("AWS_REGION", "")], "AWS_REGION is \\\"\\\""),
        (
            vec![("AWS_REGION", " us-east-1")],
            "AWS_REGION is \\\" us-east-1\\\"",
        ),
        (
            vec![("AWS_DEFAULT_REGION", "us-east-1 ")],
            "AWS_DEFAULT_REGION is \\\"us-east-1 \\\"",
        ),
        (
            vec![("AWS_CONFIG_FILE", config)],
            "the region of AWS profile default (AWS_CONFIG_FILE or ~/.aws/config) is \\\"eu_west_1\\\"",
        ),
    ] {
        let (code, log) = refused(&[], &env).await;
        assert_eq!(code, 2, "{env:?}: {log}");
        assert!(
            log.contains(named) && log.contains("not an AWS region name like us-east-1"),
            "{env:?}: {log}"
        );
    }
    // The flag is checked with the others (clap's message).
    let (code, log) = refused(&["--aws.region", ""], &[]).await;
    assert_eq!(code, 2, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_region_is_said_once_without_the_instance_metadatas_warnings() {
    let closed = CLOSED.to_string();
    let (code, log) = refused(
        &[],
        // The instance metadata is tried, and fails, as off EC2.
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &closed)],
    )
    .await;
    assert_eq!(code, 2, "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("level=error")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(
            "no AWS region: set --aws.region, AWS_REGION, or a region in the AWS profile"
        ),
        "{log}"
    );
    assert!(
        !log.contains("level=warn") && !log.contains("IMDS"),
        "noise before the one thing: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_flag_with_a_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("targets.yml");
    std::fs::write(&path, "targets:\n  - region: eu-west-1\n").unwrap();
    let (code, log) = refused(
        &[
            "--config.file",
            path.to_str().unwrap(),
            "--aws.region",
            "us-east-1",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("--aws.region applies without --config.file; with a config file, each target's `region:` is used"),
        "{log}"
    );
}
