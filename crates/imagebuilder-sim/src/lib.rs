//! `imagebuilder-sim`: a simulated AWS EC2 Image Builder account, speaking
//! the service's rest-json protocol, for `imagebuilder-exporter`'s tests,
//! benchmarks and `--demo`.
//!
//! It serves the read operations the exporter uses (plus
//! `GetWorkflowExecution` and `ListWaitingWorkflowSteps`), can inject
//! faults, and counts the calls it receives (per operation, and per
//! account and Region: `calls.rs`) so that tests can assert call budgets.
//! On the same endpoint it serves STS `AssumeRole` (`sts.rs`), a minimal
//! SQS (`sqs.rs`), to which it publishes Image Builder's EventBridge events
//! (`events.rs`) once [`Simulator::enable_events`] is called, and AWS
//! Organizations' `ListAccounts` (`organizations.rs`) for an organisation of
//! accounts that join, leave and are suspended at run time (`org.rs`).
//!
//! # Why a crate of its own
//!
//! It is a test double, and a test double must be independent of what it
//! tests: it depends on nothing of the exporter, and checks requests with
//! its own rules taken from the service models (`constraints.rs`), its own
//! clock, timestamps and HTTP server. A pattern or a parser that is wrong
//! in the exporter is then not silently wrong here too, and a test catches
//! it. It is also kept out of the exporter's release binary: the exporter
//! links it only for `--demo`, behind its default cargo feature `demo`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use imagebuilder_sim::clock::{Clock, SystemClock};
//! use imagebuilder_sim::{scenario, Simulator};
//!
//! let now = SystemClock.now();
//! let sim = Simulator::new(SystemClock, scenario::demo(now, 7), 7);
//! let running = sim.spawn("127.0.0.1:0".parse().unwrap()).await?;
//! println!("AWS_ENDPOINT_URL_IMAGEBUILDER={}", running.url());
//! # Ok(()) }
//! ```

pub mod admin;
pub mod build;
#[cfg(test)]
mod build_tests;
pub mod builders;
pub mod calls;
pub mod cli;
pub mod clock;
pub(crate) mod constraints;
pub(crate) mod events;
pub mod failure;
pub mod faults;
pub mod http;
pub mod org;
#[cfg(test)]
mod org_http_tests;
pub(crate) mod organizations;
#[cfg(test)]
mod organizations_sdk_tests;
pub mod pipelines;
#[cfg(test)]
mod pipelines_sdk_tests;
pub(crate) mod queue;
pub mod scenario;
pub(crate) mod serve;
pub mod shapes;
pub(crate) mod sqs;
#[cfg(test)]
mod sqs_sdk_tests;
pub mod store;
pub(crate) mod sts;
pub(crate) mod sync;
pub mod timestamp;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use crate::sync::lock;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::calls::Calls;
use crate::clock::Clock;
use crate::serve::serve;
pub use calls::CallScope;
pub use failure::{DistributionPlan, SimFailureContext, SimRegionFailure};
pub use faults::{BadAnswer, Faults};
pub use org::{AccountState, JoinedMethod, OrgFault, SimAccount};
pub use pipelines::{PipelineState, SimPipeline, SimSchedule};
pub use queue::{QueueDepth, QueueFault, QueueStats};
pub use store::Store;

/// How often, in real time, planned builds are looked at for events.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// The URL of queue `name` on a simulator serving at `endpoint`
/// (`http://127.0.0.1:4566`), in the simulated account.
pub fn queue_url(endpoint: &str, name: &str) -> String {
    format!(
        "{}/{}/{name}",
        endpoint.trim_end_matches('/'),
        scenario::ACCOUNT
    )
}

/// The SigV4 credential scope of a request: the access key ID and the
/// Region of `Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, …`
/// (`"(unsigned)"` and `""` without one).
pub(crate) fn credential_scope(headers: &hyper::HeaderMap) -> (&str, &str) {
    let mut scope = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split([',', ' ']).next())
        .unwrap_or_default()
        .split('/');
    let key = scope
        .next()
        .filter(|k| !k.is_empty())
        .unwrap_or("(unsigned)");
    let region = scope.nth(1).unwrap_or_default();
    (key, region)
}

/// Who signed a request: the account of the assumed role whose credentials
/// signed it (`None`: other credentials, the default account's), and the
/// Region of its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signer {
    pub(crate) assumed: Option<String>,
    pub(crate) region: String,
}

impl Signer {
    /// The account the request acts in: the assumed role's, or the
    /// default (management) account.
    pub(crate) fn account(&self) -> &str {
        self.assumed.as_deref().unwrap_or(scenario::ACCOUNT)
    }
}

pub(crate) struct SimState {
    /// The default account's builds and pipelines (any region).
    pub(crate) store: RwLock<Store>,
    /// Builds and pipelines added per account and Region (account →
    /// Region → store: looked up by `&str`, without allocating).
    pub(crate) accounts: RwLock<HashMap<String, HashMap<String, Store>>>,
    /// What a member account of the organisation has in a Region it was
    /// given no store for: nothing.
    pub(crate) empty: Store,
    /// The organisation (`org.rs`).
    pub(crate) org: RwLock<org::Organization>,
    /// Roles that may be assumed.
    pub(crate) roles: Mutex<sts::Roles>,
    /// Access keys handed out by AssumeRole, and their account.
    pub(crate) assumed: Mutex<HashMap<String, String>>,
    /// When the sessions handed out by AssumeRole expire, by access key.
    pub(crate) expiry: Mutex<HashMap<String, crate::clock::Nanos>>,
    /// How long every session lasts, whatever was asked (see
    /// [`Simulator::set_session_lifetime`]).
    pub(crate) session_lifetime: Mutex<Option<Duration>>,
    faults: RwLock<Faults>,
    pub(crate) calls: Mutex<Calls>,
    pub(crate) clock: Arc<dyn Clock>,
    rng: Mutex<fastrand::Rng>,
    requests: AtomicU64,
    pub(crate) queues: queue::Queues,
    /// Turns the default store's changes into events, once enabled.
    publisher: Mutex<Option<events::Publisher>>,
    publisher_running: AtomicBool,
    seed: u64,
}

impl SimState {
    pub(crate) fn faults(&self) -> Faults {
        crate::sync::read(&self.faults).clone()
    }

    /// Counts a call (by operation, by signing access key, and by the
    /// account and Region it acts in); returns who signed it.
    pub(crate) fn record_call(&self, op: &str, headers: &hyper::HeaderMap) -> Signer {
        let (key, region) = credential_scope(headers);
        let assumed = lock(&self.assumed).get(key).cloned();
        let signer = Signer {
            assumed,
            region: region.to_string(),
        };
        let mut calls = lock(&self.calls);
        calls.record(op, signer.account(), region);
        calls.record_key(key);
        signer
    }

    /// True if the request was signed with assumed-role credentials whose
    /// session has expired by the simulator's clock.
    pub(crate) fn session_expired(&self, headers: &hyper::HeaderMap) -> bool {
        let (key, _) = credential_scope(headers);
        lock(&self.expiry)
            .get(key)
            .is_some_and(|&expires| self.clock.now() >= expires)
    }

    /// True with probability `p`.
    pub(crate) fn roll(&self, p: f64) -> bool {
        p > 0.0 && lock(&self.rng).f64() < p
    }

    /// Publishes the events of every change since the last call to the
    /// queues that take them; returns how many.
    fn publish_due(&self) -> usize {
        let mut publisher = lock(&self.publisher);
        let Some(p) = publisher.as_mut() else {
            return 0;
        };
        let now = self.clock.now();
        if !p.due(now) {
            return 0;
        }
        let bodies = p.tick(&crate::sync::read(&self.store), now);
        // Sent under the publisher's lock, so that two ticks never
        // interleave their events.
        self.queues.publish(&bodies, now);
        bodies.len()
    }

    pub(crate) fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            n >> 48,
            n & 0xffff_ffff_ffff
        )
    }
}

/// A handle on a simulator; clones share the same world.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<SimState>,
}

impl Simulator {
    /// A simulator holding `store`, whose scenario moves with `clock` (any
    /// [`Clock`]: one of [`clock`]'s, or a client's own clock that
    /// implements the trait, so that client and simulator read one time).
    /// `seed` makes injected faults reproducible.
    pub fn new(clock: impl Clock, mut store: Store, seed: u64) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        // Events start from the store as given.
        let _ = store.take_touched();
        Self {
            state: Arc::new(SimState {
                store: RwLock::new(store),
                accounts: RwLock::new(HashMap::new()),
                empty: Store::default(),
                org: RwLock::new(org::Organization::default()),
                roles: Mutex::new(sts::Roles::default()),
                assumed: Mutex::new(HashMap::new()),
                expiry: Mutex::new(HashMap::new()),
                session_lifetime: Mutex::new(None),
                faults: RwLock::new(Faults::default()),
                calls: Mutex::new(Calls::default()),
                clock,
                rng: Mutex::new(fastrand::Rng::with_seed(seed)),
                requests: AtomicU64::new(1),
                queues: queue::Queues::default(),
                publisher: Mutex::new(None),
                publisher_running: AtomicBool::new(false),
                seed,
            }),
        }
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.state.clock.clone()
    }

    /// Changes the world (add, change or delete builds and pipelines).
    pub fn update<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let (r, touched) = {
            let mut store = crate::sync::write(&self.state.store);
            let r = f(&mut store);
            (r, store.take_touched())
        };
        if let Some(p) = lock(&self.state.publisher).as_mut() {
            p.touch(touched);
        }
        r
    }

    /// Creates the SQS queue `name` (if needed) without publishing to it:
    /// a queue whose EventBridge rule is broken, or that tests fill by hand.
    pub fn create_queue(&self, name: &str) {
        self.state.queues.create(name);
    }

    /// Creates the SQS queue `name` (if needed) and publishes to it, from
    /// now on, Image Builder's events about the default account's builds
    /// and pipelines, as an EventBridge rule on `aws.imagebuilder` would:
    /// "EC2 Image Builder Image State Change" when a build appears or its
    /// status changes, "EC2 Image Builder Workflow Step Waiting" when a
    /// step starts WAITING, "EC2 Image Builder Image Pipeline Automatically
    /// Disabled" when a pipeline's failed scheduled builds disable it.
    /// Changes of planned builds are seen within about 100 ms of real time
    /// (a background task, started here when called within a tokio
    /// runtime, else by `serve`).
    pub fn enable_events(&self, name: &str) {
        self.state.queues.create(name);
        self.state.queues.with(name, |q| q.events = true);
        {
            let mut publisher = lock(&self.state.publisher);
            if publisher.is_none() {
                let store = crate::sync::read(&self.state.store);
                let now = self.state.clock.now();
                *publisher = Some(events::Publisher::new(&store, now, self.state.seed));
            }
        }
        self.start_publisher();
    }

    /// Starts the publishing task, once, if a queue takes events and a
    /// runtime is at hand. It stops when the simulator is dropped.
    fn start_publisher(&self) {
        if !self.state.queues.any_events() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.state.publisher_running.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<SimState> = Arc::downgrade(&self.state);
        runtime.spawn(async move {
            let mut every = tokio::time::interval(PUBLISH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(state) = weak.upgrade() else { return };
                state.publish_due();
            }
        });
    }

    /// Publishes the events of the changes since the last publication now,
    /// without waiting for the background task; returns how many.
    pub fn publish_events(&self) -> usize {
        self.state.publish_due()
    }

    /// Sends a message with this body to queue `name`, as any producer
    /// could (for tests of bad messages). `None`: no such queue.
    pub fn send_message(&self, name: &str, body: &str) -> Option<String> {
        let now = self.state.clock.now();
        self.state.queues.send(name, body.to_string(), now)
    }

    /// Makes queue `name` answer every call with `fault` (`None`: work
    /// again). False if there is no such queue.
    pub fn set_queue_fault(&self, name: &str, fault: Option<QueueFault>) -> bool {
        self.state.queues.with(name, |q| q.fault = fault).is_some()
    }

    /// Messages in queue `name`: visible, and in flight (received, not
    /// deleted, visibility timeout not over).
    pub fn queue_depth(&self, name: &str) -> Option<QueueDepth> {
        self.state.queues.stats(name).map(|s| QueueDepth {
            visible: s.visible,
            in_flight: s.in_flight,
        })
    }

    /// Depth and counts of queue `name`.
    pub fn queue_stats(&self, name: &str) -> Option<QueueStats> {
        self.state.queues.stats(name)
    }

    /// Serves `store` to requests signed with credentials of a role in
    /// `account`, in `region` (for the default account 123456789012, to
    /// requests signed with any other credentials too, in `region`),
    /// instead of the default store.
    pub fn add_account(&self, account: &str, region: &str, store: Store) {
        crate::sync::write(&self.state.accounts)
            .entry(account.into())
            .or_default()
            .insert(region.into(), store);
    }

    /// Lets `sts:AssumeRole` succeed for `role_arn` (with this external ID,
    /// if one is given); other roles are denied unless
    /// [`Simulator::allow_any_role`] was called.
    pub fn allow_role(&self, role_arn: &str, external_id: Option<&str>) {
        lock(&self.state.roles).allow(role_arn, external_id);
    }

    /// Lets `sts:AssumeRole` succeed for any role, with any external ID,
    /// except those given to [`Simulator::deny_role`] and those of
    /// accounts that left the organisation: the standalone simulator's
    /// default. The role's account is served the builds added for it with
    /// [`Simulator::add_account`] in the Region of the request; else, for
    /// a member of the organisation, none; else the default account's.
    pub fn allow_any_role(&self) {
        lock(&self.state.roles).allow_any();
    }

    /// Refuses `sts:AssumeRole` for `role_arn` (`AccessDenied`), whatever
    /// else allows it.
    pub fn deny_role(&self, role_arn: &str) {
        lock(&self.state.roles).deny(role_arn);
    }

    /// Takes back `role_arn`'s trust: `sts:AssumeRole` is denied from now
    /// on. Sessions already handed out work until they expire, as in AWS.
    pub fn revoke_role(&self, role_arn: &str) {
        lock(&self.state.roles).deny(role_arn);
    }

    /// Undoes [`Simulator::deny_role`] and [`Simulator::revoke_role`]:
    /// `role_arn` may be assumed again if something allows it.
    pub fn undeny_role(&self, role_arn: &str) {
        lock(&self.state.roles).undeny(role_arn);
    }

    /// Makes every session `AssumeRole` hands out from now on last
    /// `lifetime`, whatever `DurationSeconds` asked (`None`: as asked, one
    /// hour by default). Real sessions last 15 minutes at least; shorter
    /// ones let a test see credentials expire and be renewed. A request
    /// signed with an expired session is refused with
    /// `ExpiredTokenException`.
    pub fn set_session_lifetime(&self, lifetime: Option<Duration>) {
        *lock(&self.state.session_lifetime) = lifetime;
    }

    pub fn set_faults(&self, f: Faults) {
        *crate::sync::write(&self.state.faults) = f;
    }

    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Calls received per operation since the last reset.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.state.calls).by_operation().clone()
    }

    /// Calls received for one operation.
    pub fn calls_to(&self, op: &str) -> u64 {
        lock(&self.state.calls)
            .by_operation()
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_calls(&self) -> u64 {
        lock(&self.state.calls).by_operation().values().sum()
    }

    /// Forgets the calls counted so far ([`Simulator::calls`] and
    /// [`Simulator::calls_by_scope`]; not [`Simulator::access_keys`]).
    pub fn reset_calls(&self) {
        lock(&self.state.calls).clear();
    }

    /// Calls received since the last reset by the account they act in,
    /// the Region of their signature and the operation. The account is
    /// the assumed role's whose credentials signed the call, or the
    /// default (management) account 123456789012 for other credentials;
    /// for `AssumeRole`, the account of the role asked for. So, for Image
    /// Builder, the (account, Region) whose builds were read.
    pub fn calls_by_scope(&self) -> BTreeMap<CallScope, u64> {
        lock(&self.state.calls).by_scope()
    }

    /// Requests per access key ID that signed them (STS' excepted).
    pub fn access_keys(&self) -> BTreeMap<String, u64> {
        lock(&self.state.calls).by_access_key().clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let state = self.state.clone();
        self.start_publisher();
        self.state.queues.open();
        let queues = self.state.clone();
        serve(
            listener,
            move |req| crate::http::handle(state.clone(), req),
            async move {
                shutdown.await;
                // Long polls answer now rather than hold the shutdown.
                queues.queues.close();
            },
        )
        .await;
    }

    /// Binds `addr` and serves in the background until the handle is
    /// stopped or dropped.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let sim = self.clone();
        let task = tokio::spawn(async move {
            sim.serve(listener, async {
                let _ = rx.await;
            })
            .await;
        });
        Ok(RunningSimulator {
            addr,
            stop: Some(tx),
            task: Some(task),
        })
    }
}

/// A simulator serving in the background.
pub struct RunningSimulator {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSimulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint to give the SDK (`AWS_ENDPOINT_URL_IMAGEBUILDER`, and
    /// `AWS_ENDPOINT_URL_SQS` for its queues).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of queue `name` (see [`Simulator::enable_events`]).
    pub fn queue_url(&self, name: &str) -> String {
        queue_url(&self.url(), name)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
