//! An in-memory Image Builder behind [`ImageBuilderApi`], for the refresh
//! algorithm's unit tests: what each call returns, which calls were made,
//! and faults (a resource that fails, items a listing skips).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::aws::{issue_kind, ApiError, DataIssue, Fetched, ImageBuilderApi, Operation, Page};
use crate::base::clock::{Nanos, NANOS_PER_SEC};
use crate::model::{
    Build, BuildStatus, Pipeline, StepDetail, StepExecution, StepLimits, StepStatus,
    WorkflowExecution, WorkflowStatus, WorkflowType,
};

pub const WF: &str = "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1";

/// Image Builder in memory: what each call returns, and the calls made.
#[derive(Default)]
pub struct World {
    pub builds: Vec<Build>,
    pub workflows: HashMap<String, Vec<WorkflowExecution>>,
    pub steps: HashMap<String, Vec<StepExecution>>,
    /// Builds the listing skips as unusable items (it still says so).
    pub skipped: HashSet<String>,
    /// Resources whose calls fail with a 503 (`"pipelines"`: the pipeline
    /// listing).
    pub failing: HashSet<String>,
    pub pipelines: Vec<Pipeline>,
}

#[derive(Default)]
pub struct FakeApi {
    world: Mutex<World>,
    calls: Mutex<Vec<String>>,
}

/// Items per page: small, so that every listing pages.
const PAGE: usize = 2;

pub fn page<T: Clone>(items: &[T], token: Option<String>) -> Page<T> {
    let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
    let end = (start + PAGE).min(items.len());
    Page {
        items: items[start..end].to_vec(),
        next_token: (end < items.len()).then(|| end.to_string()),
        issues: Vec::new(),
    }
}

pub fn unavailable(operation: Operation) -> ApiError {
    ApiError::Service {
        operation,
        code: "ServiceUnavailableException".into(),
        message: String::new(),
        status: 503,
    }
}

pub fn not_found(operation: Operation) -> ApiError {
    ApiError::Service {
        operation,
        code: "ResourceNotFoundException".into(),
        message: String::new(),
        status: 404,
    }
}

impl FakeApi {
    pub fn new(world: World) -> Self {
        Self {
            world: Mutex::new(world),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    /// The calls made since the last time, sorted (calls fan out).
    pub fn take_calls(&self) -> Vec<String> {
        let mut c = std::mem::take(&mut *self.calls.lock().unwrap());
        c.sort();
        c
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }
}

impl ImageBuilderApi for FakeApi {
    async fn list_image_build_versions(
        &self,
        image_version_arn: Option<String>,
        next_token: Option<String>,
    ) -> Result<Page<Build>, ApiError> {
        let w = self.world();
        let listed: Vec<Build> = w
            .builds
            .iter()
            .filter(|b| !w.skipped.contains(&*b.arn))
            .filter(|b| {
                image_version_arn
                    .as_deref()
                    .is_none_or(|v| b.arn.rsplit_once('/').map(|x| x.0) == Some(v))
            })
            .cloned()
            .collect();
        drop(w);
        match &image_version_arn {
            Some(v) => self.log(format!("LIBV {}", short(v))),
            None => self.log("LIBV".into()),
        }
        let w = self.world();
        let mut p = page(&listed, next_token);
        if p.next_token.is_none() {
            for arn in &w.skipped {
                p.issues.push(DataIssue {
                    operation: Operation::ListImageBuildVersions,
                    kind: issue_kind::UNUSABLE_ITEM,
                    field: "arn",
                    detail: format!("{arn} without its ARN"),
                });
            }
        }
        Ok(p)
    }

    async fn list_workflow_executions(
        &self,
        build_arn: String,
        next_token: Option<String>,
    ) -> Result<Page<WorkflowExecution>, ApiError> {
        self.log(format!("LWE {}", short(&build_arn)));
        let w = self.world();
        if w.failing.contains(&build_arn) {
            return Err(unavailable(Operation::ListWorkflowExecutions));
        }
        match w.workflows.get(&build_arn) {
            Some(list) => Ok(page(list, next_token)),
            None => Err(not_found(Operation::ListWorkflowExecutions)),
        }
    }

    async fn list_workflow_step_executions(
        &self,
        id: String,
        next_token: Option<String>,
    ) -> Result<Page<StepExecution>, ApiError> {
        self.log(format!("LWSE {id}"));
        let w = self.world();
        if w.failing.contains(&id) {
            return Err(unavailable(Operation::ListWorkflowStepExecutions));
        }
        match w.steps.get(&id) {
            Some(list) => Ok(page(list, next_token)),
            None => Err(not_found(Operation::ListWorkflowStepExecutions)),
        }
    }

    async fn get_workflow_step_execution(
        &self,
        id: String,
    ) -> Result<Fetched<StepDetail>, ApiError> {
        self.log(format!("GWSE {id}"));
        let w = self.world();
        for (exec_id, steps) in &w.steps {
            let Some(step) = steps.iter().find(|s| s.id == id) else {
                continue;
            };
            let (build_arn, workflow_arn) = w
                .workflows
                .iter()
                .find_map(|(arn, ws)| {
                    ws.iter()
                        .find(|x| &x.id == exec_id)
                        .map(|x| (arn.clone(), x.workflow_arn.clone()))
                })
                .unwrap_or_default();
            return Ok(Fetched {
                value: StepDetail {
                    step: step.clone(),
                    workflow_arn: Some(workflow_arn),
                    workflow_execution_id: Some(exec_id.clone()),
                    build_arn: Some(Arc::from(build_arn)),
                    limits: StepLimits {
                        timeout_seconds: Some(600),
                    },
                    on_failure: Some("Abort".into()),
                },
                issues: Vec::new(),
            });
        }
        Err(not_found(Operation::GetWorkflowStepExecution))
    }

    async fn list_image_pipelines(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<Pipeline>, ApiError> {
        self.log("LIP".into());
        let w = self.world();
        if w.failing.contains("pipelines") {
            return Err(unavailable(Operation::ListImagePipelines));
        }
        Ok(page(&w.pipelines, next_token))
    }
}

/// `image/web/1.0.0/2` of a build ARN.
pub fn short(arn: &str) -> String {
    arn.rsplit_once(':').map_or(arn, |x| x.1).to_string()
}

pub fn arn(image: &str, n: u32) -> String {
    format!("arn:aws:imagebuilder:us-east-1:123456789012:image/{image}/1.0.0/{n}")
}

pub fn secs(s: i64) -> Option<Nanos> {
    Some(s * NANOS_PER_SEC)
}

pub fn build(image: &str, n: u32, created: i64, status: BuildStatus) -> Build {
    Build {
        arn: Arc::from(arn(image, n)),
        name: Arc::from(image),
        version: format!("1.0.0/{n}"),
        status,
        date_created: secs(created),
        reason: None,
        build_type: None,
        log_group: None,
        tags: BTreeMap::new(),
        failure: None,
    }
}

pub fn execution(id: &str, status: WorkflowStatus, start: i64) -> WorkflowExecution {
    WorkflowExecution {
        id: id.into(),
        workflow_arn: Arc::from(WF),
        workflow_type: WorkflowType::Build,
        status,
        total_steps: None,
        steps_succeeded: None,
        steps_failed: None,
        steps_skipped: None,
        start: secs(start),
        end: None,
        message: None,
        retried: false,
        parallel_group: None,
    }
}

pub fn step(
    id: &str,
    name: &str,
    status: StepStatus,
    start: i64,
    end: Option<i64>,
) -> StepExecution {
    StepExecution {
        id: id.into(),
        name: Arc::from(name),
        action: Arc::from("ExecuteComponents"),
        status,
        start: secs(start),
        end: end.and_then(secs),
        attempt: Some(1),
        max_attempts: Some(1),
        rollback_status: None,
        message: None,
    }
}

impl World {
    pub fn add(&mut self, b: Build, execs: Vec<(WorkflowExecution, Vec<StepExecution>)>) {
        let arn = b.arn.to_string();
        self.builds.push(b);
        let mut list = Vec::new();
        for (mut e, steps) in execs {
            // The counts the service gives with each execution.
            let count = |status: StepStatus| {
                Some(steps.iter().filter(|s| s.status == status).count() as i64)
            };
            e.total_steps = Some(steps.len() as i64);
            e.steps_succeeded = count(StepStatus::Completed);
            e.steps_failed = count(StepStatus::Failed);
            e.steps_skipped = count(StepStatus::Skipped);
            self.steps.insert(e.id.clone(), steps);
            list.push(e);
        }
        self.workflows.insert(arn, list);
    }

    pub fn remove(&mut self, arn: &str) {
        self.builds.retain(|b| &*b.arn != arn);
        self.workflows.remove(arn);
    }
}

/// "web" built twice, both finished; "db" building, its second step running.
pub fn account() -> World {
    use StepStatus::{Completed, Running};
    let mut w = World::default();
    w.add(
        build("web", 1, 100, BuildStatus::Available),
        vec![(
            execution("wf-1", WorkflowStatus::Completed, 110),
            vec![
                step("s1", "Build", Completed, 110, Some(120)),
                step("s2", "Test", Completed, 120, Some(130)),
            ],
        )],
    );
    w.add(
        build("web", 2, 200, BuildStatus::Available),
        vec![(
            execution("wf-2", WorkflowStatus::Completed, 210),
            vec![
                step("s3", "Build", Completed, 210, Some(220)),
                step("s4", "Test", Completed, 220, Some(230)),
            ],
        )],
    );
    w.add(
        build("db", 1, 300, BuildStatus::Building),
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
