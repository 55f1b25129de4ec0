//! Pipelines and failure contexts through the real SDK client: what the
//! exporter will read (paginated, filtered, faulted, per account), parsed
//! into the SDK's types, so that every member is valid against the model.

use std::sync::Arc;

use aws_sdk_imagebuilder::error::ProvideErrorMetadata;
use aws_sdk_imagebuilder::types::{
    Filter, ImageConfigurationStep, ImagePipeline, ImageStatus, PipelineExecutionStartCondition,
    PipelineStatus, RegionFailureStatus,
};

use crate::clock::{Clock, ManualClock, Nanos, NANOS_PER_SEC};
use crate::failure::{DistributionPlan, SimRegionFailure};
use crate::pipelines::SimSchedule;
use crate::scenario::{self, BuildShape, Ids};
use crate::store::Outcome;
use crate::timestamp::{format_rfc3339_millis, parse_rfc3339_millis};
use crate::{Faults, RunningSimulator, Simulator, Store};

const T0: Nanos = 1_788_981_143_418_000_000;
const MIN: Nanos = 60 * NANOS_PER_SEC;
const HOUR: Nanos = 60 * MIN;

fn client(sim: &RunningSimulator, key: &str) -> aws_sdk_imagebuilder::Client {
    use aws_sdk_imagebuilder::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
    let config = aws_sdk_imagebuilder::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(sim.url())
        .retry_config(RetryConfig::disabled())
        .credentials_provider(Credentials::new(key, "secret", None, None, "static"))
        .build();
    aws_sdk_imagebuilder::Client::from_conf(config)
}

fn schedule(failure_count: Option<i32>) -> SimSchedule {
    SimSchedule {
        timezone: Some("Europe/Berlin".into()),
        start_condition: Some("EXPRESSION_MATCH_ONLY".into()),
        failure_count,
        ..SimSchedule::new("cron(0 */3 * * ? *)", 3 * HOUR, 0)
    }
}

/// 30 pipelines `img-00` … `img-29`; `img-00` has a scheduled failure
/// behind it, `img-01` disabled itself at its second, `img-02` is manual,
/// `img-03` disabled by hand.
fn world() -> Store {
    let mut store = Store::default();
    let mut ids = Ids::new(1);
    for i in 0..30 {
        let image = format!("img-{i:02}");
        let mut p = scenario::pipeline(&image, Some(schedule(Some(2))));
        match i {
            2 => p.schedule = None,
            3 => p.disabled_by_hand = true,
            _ => {}
        }
        store.insert_pipeline(p);
    }
    let failing = BuildShape {
        speed: 0.05,
        failure: Some((0, 2, Outcome::Failed)),
        ..BuildShape::default()
    };
    for (image, n) in [("img-00", 1), ("img-01", 1), ("img-01", 2)] {
        let mut b = scenario::planned_build(&mut ids, image, n, T0 - HOUR * n as i64, &failing);
        b.pipeline_arn = Some(scenario::pipeline_arn(image));
        store.insert(b);
    }
    store
}

async fn start(store: Store) -> (Simulator, RunningSimulator) {
    let clock: Arc<dyn Clock> = ManualClock::new(T0);
    let sim = Simulator::new(clock, store, 1);
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    (sim, running)
}

async fn list(
    c: &aws_sdk_imagebuilder::Client,
    filters: Vec<Filter>,
    page: Option<i32>,
) -> Vec<ImagePipeline> {
    let mut req = c.list_image_pipelines().set_max_results(page);
    for f in filters {
        req = req.filters(f);
    }
    req.into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
}

fn filter(name: &str, values: &[&str]) -> Filter {
    let mut f = Filter::builder().name(name);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_are_listed_page_by_page_through_the_sdk() {
    let (sim, running) = start(world()).await;
    let c = client(&running, "AKIDPIPELINES");
    let all = list(&c, vec![], None).await;
    assert_eq!(all.len(), 30);
    assert_eq!(
        sim.calls_to("ListImagePipelines"),
        2,
        "25 a page by default"
    );
    let by_name = |n: &str| all.iter().find(|p| p.name() == Some(n)).unwrap();

    let p = by_name("img-00");
    assert_eq!(p.arn(), Some(scenario::pipeline_arn("img-00").as_str()));
    assert_eq!(
        p.image_recipe_arn(),
        Some("arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/img-00/1.0.0")
    );
    assert_eq!(p.container_recipe_arn(), None);
    let s = p.schedule().unwrap();
    assert_eq!(s.schedule_expression(), Some("cron(0 */3 * * ? *)"));
    assert_eq!(s.timezone(), Some("Europe/Berlin"));
    assert_eq!(
        s.pipeline_execution_start_condition(),
        Some(&PipelineExecutionStartCondition::ExpressionMatchOnly)
    );
    assert_eq!(s.auto_disable_policy().map(|a| a.failure_count()), Some(2));
    assert_eq!(p.status(), Some(&PipelineStatus::Enabled));
    assert_eq!(p.consecutive_failures(), Some(1));
    assert_eq!(p.last_run_status(), Some(&ImageStatus::Failed));
    assert_eq!(p.date_last_run(), None, "no longer filled in");
    // The next multiple of three hours after T0 (19:12 UTC): 21:00.
    let next = parse_rfc3339_millis(p.date_next_run().unwrap()).unwrap();
    assert_eq!(format_rfc3339_millis(next), "2026-09-09T21:00:00.000Z");
    assert!(p.infrastructure_configuration_arn().is_some());
    assert!(p.distribution_configuration_arn().is_some());
    assert!(p.date_created().is_some() && p.date_updated().is_some());

    let p = by_name("img-01");
    assert_eq!(p.status(), Some(&PipelineStatus::Disabled));
    assert_eq!(p.consecutive_failures(), Some(2));
    assert_eq!(p.date_next_run(), None);
    let p = by_name("img-02");
    assert!(p.schedule().is_none());
    assert_eq!(p.date_next_run(), None);
    assert_eq!(p.status(), Some(&PipelineStatus::Enabled));
    assert_eq!(p.last_run_status(), None, "never ran");
    let p = by_name("img-03");
    assert_eq!(p.status(), Some(&PipelineStatus::Disabled));
    assert_eq!(p.consecutive_failures(), Some(0));

    // Filters, and pages of 100.
    sim.reset_calls();
    let some = list(&c, vec![filter("name", &["img-0*", "img-15"])], Some(100)).await;
    assert_eq!(some.len(), 11);
    assert_eq!(sim.calls_to("ListImagePipelines"), 1);
    let some = list(&c, vec![filter("status", &["DISABLED"])], None).await;
    let names: Vec<&str> = some.iter().filter_map(|p| p.name()).collect();
    assert_eq!(names, ["img-01", "img-03"]);

    // Refused: pages over 100, forged tokens, unknown filters.
    let e = c
        .list_image_pipelines()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidRequestException"));
    let e = c
        .list_image_pipelines()
        .next_token("AQforged")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidPaginationTokenException"));
    let e = c
        .list_image_pipelines()
        .filters(filter("owner", &["Self"]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidRequestException"));
    assert!(e.message().unwrap_or_default().contains("owner"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_accounts_apply_to_pipelines() {
    let (sim, running) = start(world()).await;
    let c = client(&running, "AKIDPIPELINES");
    sim.set_faults(Faults {
        throttle_ratio: 1.0,
        operations: vec!["ListImagePipelines".into()],
        ..Faults::default()
    });
    let e = c.list_image_pipelines().send().await.unwrap_err();
    assert_eq!(e.code(), Some("CallRateLimitExceededException"));
    assert!(c.list_image_build_versions().send().await.is_ok());
    sim.set_faults(Faults::default());

    // Another account's own pipelines, for its assumed-role credentials.
    let mut other = Store::default();
    let mut p = scenario::pipeline("theirs", None);
    p.arn = p.arn.replace("123456789012", "210987654321");
    other.insert_pipeline(p);
    sim.add_account("210987654321", "us-east-1", other);
    crate::sync::lock(&sim.state.assumed).insert("AKIDOTHER".into(), "210987654321".into());
    let theirs = list(&client(&running, "AKIDOTHER"), vec![], None).await;
    let names: Vec<&str> = theirs.iter().filter_map(|p| p.name()).collect();
    assert_eq!(names, ["theirs"]);
    assert!(theirs[0].arn().unwrap().contains(":210987654321:"));
    assert_eq!(
        theirs[0].infrastructure_configuration_arn(),
        Some("arn:aws:imagebuilder:us-east-1:210987654321:infrastructure-configuration/theirs")
    );
    assert_eq!(list(&c, vec![], None).await.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_contexts_parse_into_the_sdk_s_types() {
    let mut store = Store::default();
    let mut ids = Ids::new(2);
    let failing = BuildShape {
        speed: 0.05,
        failure: Some((0, 2, Outcome::Failed)),
        ..BuildShape::default()
    };
    store.insert(scenario::planned_build(
        &mut ids,
        "web",
        1,
        T0 - HOUR,
        &failing,
    ));
    let mut b = scenario::planned_build(&mut ids, "api", 1, T0 - HOUR, &BuildShape::default());
    b.distribution = Some(DistributionPlan {
        duration: 10 * MIN,
        message: "Distribution failed in 1 of 3 Regions".into(),
        regions: vec![SimRegionFailure {
            region: Some("eu-west-1".into()),
            account_id: Some("210987654321".into()),
            status: Some("FAILED".into()),
            configuration_step: Some("UPDATE_LAUNCH_TEMPLATES".into()),
            message: Some("Launch template lt-0a1b2c3d not found".into()),
        }],
    });
    store.insert(b);
    let (_sim, running) = start(store).await;
    let c = client(&running, "AKIDPIPELINES");
    let out = c.list_image_build_versions().send().await.unwrap();
    let state = |name: &str| {
        out.image_summary_list()
            .iter()
            .find(|s| s.name() == Some(name))
            .and_then(|s| s.state())
            .unwrap()
            .clone()
    };

    let web = state("web");
    assert_eq!(web.status(), Some(&ImageStatus::Failed));
    let f = web.failure_context().unwrap();
    assert_eq!(f.image_status(), Some(&ImageStatus::Building));
    assert_eq!(f.failed_step(), Some("ApplyBuildComponents"));
    assert!(f.workflow_execution_id().unwrap().starts_with("wf-"));
    assert!(f.step_execution_id().unwrap().starts_with("step-"));
    assert_eq!(f.workflow_arn(), Some(scenario::BUILD_WORKFLOW));
    let cf = f.component_failure().unwrap();
    assert_eq!(
        cf.component_arn(),
        Some("arn:aws:imagebuilder:us-east-1:123456789012:component/install-web/1.0.0/1")
    );
    assert_eq!(cf.phase_name(), Some("build"));
    assert_eq!(cf.step_name(), Some("InstallPackages"));
    assert_eq!(cf.action(), Some("ExecuteBash"));
    assert!(cf.error_message().unwrap().contains("dnf install"));
    assert!(f.distribution_failure().is_none());

    let api = state("api");
    assert_eq!(api.status(), Some(&ImageStatus::Failed));
    assert_eq!(api.reason(), Some("Distribution failed in 1 of 3 Regions"));
    let f = api.failure_context().unwrap();
    assert_eq!(f.image_status(), Some(&ImageStatus::Distributing));
    assert!(f.component_failure().is_none() && f.failed_step().is_none());
    let d = f.distribution_failure().unwrap();
    assert_eq!(
        d.error_message(),
        Some("Distribution failed in 1 of 3 Regions")
    );
    let r = &d.region_failures()[0];
    assert_eq!(r.region(), Some("eu-west-1"));
    assert_eq!(r.status(), Some(&RegionFailureStatus::Failed));
    assert_eq!(
        r.image_configuration_step(),
        Some(&ImageConfigurationStep::UpdateLaunchTemplates)
    );
    assert_eq!(r.target_account_id(), Some("210987654321"));
    assert_eq!(
        r.error_message(),
        Some("Launch template lt-0a1b2c3d not found")
    );
}

/// `GET /_sim/pipelines` on the simulator.
async fn admin_pipelines(running: &RunningSimulator) -> serde_json::Value {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(running.addr())
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/_sim/pipelines")
        .header("host", "sim")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_endpoint_lists_the_pipelines_states() {
    let (_sim, running) = start(world()).await;
    let all = admin_pipelines(&running).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 30);
    let find = |n: &str| all.iter().find(|p| p["name"] == n).unwrap().clone();
    let p = find("img-01");
    assert_eq!(p["status"], "DISABLED");
    assert_eq!(p["consecutiveFailures"], 2);
    assert_eq!(
        (p["failureCount"].clone(), p["disablesAt"].clone()),
        (serde_json::json!(2), serde_json::json!(2))
    );
    assert_eq!(p["disabledByHand"], false);
    let at = p["disabledAtEpochSeconds"].as_f64().unwrap();
    assert!(
        at < crate::clock::secs(T0) && at > crate::clock::secs(T0 - HOUR),
        "{p}"
    );
    assert_eq!(p["dateNextRun"], serde_json::Value::Null);
    let p = find("img-03");
    assert_eq!(
        (p["status"].as_str(), p["disabledByHand"].as_bool()),
        (Some("DISABLED"), Some(true))
    );
    assert_eq!(p["disabledAt"], serde_json::Value::Null);
    let p = find("img-02");
    assert_eq!(p["disablesAt"], serde_json::Value::Null, "manual");
    assert_eq!(
        find("img-00")["recipeArn"],
        "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/img-00/1.0.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_pipeline_is_served_as_given() {
    let mut store = Store::default();
    let mut p = scenario::pipeline("odd", None);
    p.fixed = Some(serde_json::json!({
        "name": "odd",
        "status": "PAUSED",
        "consecutiveFailures": 3,
        "schedule": { "scheduleExpression": "rate(1 day)" },
    }));
    store.insert_pipeline(p);
    store.insert_pipeline(scenario::pipeline("plain", None));
    let (_sim, running) = start(store).await;
    let c = client(&running, "AKIDPIPELINES");
    let all = list(&c, vec![], None).await;
    assert_eq!(all.len(), 2);
    let odd = &all[0];
    assert_eq!((odd.arn(), odd.name()), (None, Some("odd")));
    assert_eq!(odd.status().map(|s| s.as_str()), Some("PAUSED"));
    assert!(odd.image_recipe_arn().is_none());
    assert!(odd.schedule().unwrap().auto_disable_policy().is_none());
    assert_eq!(odd.consecutive_failures(), Some(3));
    // Filters read the literal answer too.
    let some = list(&c, vec![filter("status", &["PAUSED"])], None).await;
    assert_eq!(some.len(), 1);
}
