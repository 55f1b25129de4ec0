//! Following Image Builder's own events, with polling as the safety net.
//!
//! Image Builder sends "Image State Change" and "Workflow Step Waiting"
//! events to EventBridge, best effort; a rule can deliver them to an SQS
//! queue. The exporter long-polls that queue and treats each event as a
//! hint: the build it names is read at once, as a refresh reads it, so a
//! new build or a failure shows within seconds instead of at the next
//! discovery listing. Events never replace the truth: refreshes and the
//! discovery listing run as always, so losing events costs latency only.
//! A queue that cannot be read is reported (metric, log) and retried; it
//! never touches `imagebuilder_up`.

mod envelope;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub use envelope::{read, Hint, Ignored, Scope, Subject};

use crate::aws::sqs::{EventQueue, QueueMessage, BATCH, WAIT};
use crate::aws::{ApiError, ImageBuilderApi};
use crate::base::clock::{secs, Clock};
use crate::base::loglimit::LogLimiter;
use crate::metrics::ExporterMetrics;
use crate::refresh::target::Target;

/// After a burst's first batch, more receives without waiting gather what
/// else is already queued, so that a burst of events for one build causes
/// one read of it.
const DRAIN_ROUNDS: usize = 5;

/// After a failed receive the follower waits, doubling up to a minute.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// How often the same queue problem is logged.
const WARN_EVERY: Duration = Duration::from_secs(300);

/// What becomes of a usable message once its resource was read.
enum Fate {
    /// Read and served: deleted.
    Applied,
    /// Can never be used: counted and deleted.
    Ignored(Ignored),
    /// The read failed: left for redelivery.
    Kept,
}

/// One target's event queue, and what it does with the events.
pub struct Follower<C, Q> {
    target: Arc<Target<C>>,
    queue: Q,
    /// The target's region, and its account when the configuration tells
    /// it (a role); otherwise the account is learnt from what is tracked.
    scope: Scope,
    clock: Arc<dyn Clock>,
    metrics: ExporterMetrics,
    logs: LogLimiter,
}

/// What one batch of messages came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub received: usize,
    pub applied: usize,
    /// Ignored messages, by reason.
    pub ignored: Vec<Ignored>,
    /// Messages kept for another delivery: their build could not be read.
    pub kept: usize,
}

impl<C: ImageBuilderApi, Q: EventQueue> Follower<C, Q> {
    pub fn new(
        target: Arc<Target<C>>,
        queue: Q,
        scope: Scope,
        clock: Arc<dyn Clock>,
        metrics: ExporterMetrics,
    ) -> Self {
        let reasons: Vec<&str> = Ignored::ALL.iter().map(|r| r.as_str()).collect();
        metrics.init_events(target.name(), &reasons);
        let t = [target.name()];
        // Silence is measured from the start: an exporter that never got
        // an event while builds ran is as deaf as one that stopped getting
        // them.
        metrics
            .events_last_received
            .with_label_values(&t)
            .set(secs(clock.now()));
        Self {
            target,
            queue,
            scope,
            clock,
            metrics,
            logs: LogLimiter::default(),
        }
    }

    /// Polls the queue until the task is dropped.
    pub async fn run(self) {
        let mut retry = RETRY_FIRST;
        loop {
            match self.poll(WAIT).await {
                Ok(_) => retry = RETRY_FIRST,
                Err(e) => {
                    self.queue_failed(&e);
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// One long poll: receives a batch (and what else is already queued),
    /// reads the builds it names, deletes what was applied or can never be.
    pub async fn poll(&self, wait: Duration) -> Result<Outcome, ApiError> {
        let mut messages = self.queue.receive(wait, BATCH).await?;
        if messages.is_empty() {
            return Ok(Outcome::default());
        }
        for _ in 0..DRAIN_ROUNDS {
            match self.queue.receive(Duration::ZERO, BATCH).await {
                Ok(more) if !more.is_empty() => messages.extend(more),
                Ok(_) => break,
                // What was received is handled; the error shows next poll.
                Err(_) => break,
            }
        }
        Ok(self.handle(messages).await)
    }

    async fn handle(&self, messages: Vec<QueueMessage>) -> Outcome {
        let name = self.target.name();
        let t = [name];
        let now = self.clock.now();
        self.metrics
            .events_received
            .with_label_values(&t)
            .inc_by(messages.len() as u64);
        self.metrics
            .events_last_received
            .with_label_values(&t)
            .set(secs(now));
        let mut outcome = Outcome {
            received: messages.len(),
            ..Outcome::default()
        };
        let scope = self.scope();
        let mut delete = Vec::new();
        let mut hints: Vec<(QueueMessage, Hint)> = Vec::new();
        for m in messages {
            match read(&m.body, &scope) {
                Ok(h) => hints.push((m, h)),
                Err(why) => {
                    self.ignore(why, Ignoring::Body(&m.body), &mut outcome);
                    delete.push(m.receipt);
                }
            }
        }
        let (pipelines, builds): (Vec<_>, Vec<_>) = hints
            .into_iter()
            .partition(|(_, h)| matches!(h.subject, Subject::Pipeline(_)));
        let mut done: Vec<(QueueMessage, Hint, Fate)> = Vec::new();
        if !builds.is_empty() {
            let arns: Vec<Arc<str>> = builds
                .iter()
                .filter_map(|(_, h)| match &h.subject {
                    Subject::Build(a) => Some(Arc::from(a.as_str())),
                    Subject::Pipeline(_) => None,
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let (report, targeted) = self.target.refresh_builds(&arns).await;
            for (m, h) in builds {
                let Subject::Build(arn) = &h.subject else {
                    continue;
                };
                let fate = if targeted.read.iter().any(|a| &**a == arn)
                    && !report
                        .failures
                        .iter()
                        .any(|f| f.resource.contains(arn.as_str()))
                {
                    Fate::Applied
                } else if targeted.unknown.iter().any(|a| &**a == arn) {
                    Fate::Ignored(Ignored::UnknownBuild)
                } else {
                    Fate::Kept
                };
                done.push((m, h, fate));
            }
        }
        if !pipelines.is_empty() {
            // One listing answers every pipeline event of the batch.
            let (report, known) = self.target.refresh_pipelines().await;
            for (m, h) in pipelines {
                let Subject::Pipeline(arn) = &h.subject else {
                    continue;
                };
                let fate = if !report.complete() {
                    Fate::Kept
                } else if known.iter().any(|a| a == arn) {
                    Fate::Applied
                } else {
                    Fate::Ignored(Ignored::UnknownPipeline)
                };
                done.push((m, h, fate));
            }
        }
        let applied_at = self.clock.now();
        for (m, h, fate) in done {
            match fate {
                Fate::Applied => {
                    outcome.applied += 1;
                    self.metrics.events_applied.with_label_values(&t).inc();
                    if let Some(sent) = h.time {
                        self.metrics
                            .event_delay
                            .with_label_values(&t)
                            .observe(secs(applied_at.saturating_sub(sent).max(0)));
                    }
                    delete.push(m.receipt);
                }
                Fate::Ignored(why) => {
                    let what = match &h.subject {
                        Subject::Build(a) => Ignoring::Build(a),
                        Subject::Pipeline(a) => Ignoring::Pipeline(a),
                    };
                    self.ignore(why, what, &mut outcome);
                    delete.push(m.receipt);
                }
                // The API failed: the message comes back after its
                // visibility timeout, and refreshes go on meanwhile.
                Fate::Kept => outcome.kept += 1,
            }
        }
        if !delete.is_empty() {
            if let Err(e) = self.queue.delete(delete).await {
                self.queue_failed(&e);
            }
        }
        self.metrics.touch();
        outcome
    }

    /// The target's scope: the account is learnt from what it serves.
    fn scope(&self) -> Scope {
        let mut scope = self.scope.clone();
        if scope.account_id.is_none() {
            scope.account_id = self
                .target
                .current()
                .scopes()
                .first()
                .map(|(account, _)| account.to_string());
        }
        scope
    }

    fn ignore(&self, why: Ignored, what: Ignoring<'_>, outcome: &mut Outcome) {
        outcome.ignored.push(why);
        let name = self.target.name();
        self.metrics
            .events_ignored
            .with_label_values(&[name, why.as_str()])
            .inc();
        // Logged once per reason: a misrouted rule would otherwise fill
        // the log with the same complaint.
        // The field is never named `message`: the log formats take that
        // name for the line's own message, which the untrusted body would
        // then replace.
        if self.logs.allow(why.as_str(), None) {
            match what {
                Ignoring::Body(body) => {
                    tracing::warn!(target_name = %name, reason = why.as_str(), body = %crate::aws::shorten(body, 200), "event ignored and deleted");
                }
                Ignoring::Build(arn) => {
                    tracing::warn!(target_name = %name, reason = why.as_str(), build = %arn, "event ignored and deleted");
                }
                Ignoring::Pipeline(arn) => {
                    tracing::warn!(target_name = %name, reason = why.as_str(), pipeline = %arn, "event ignored and deleted");
                }
            }
        }
    }

    fn queue_failed(&self, e: &ApiError) {
        let name = self.target.name();
        self.metrics
            .event_queue_errors
            .with_label_values(&[name, e.code()])
            .inc();
        self.metrics.touch();
        if self
            .logs
            .allow(&format!("queue|{}", e.code()), Some(WARN_EVERY))
        {
            tracing::warn!(target_name = %name, operation = %e.operation(), code = e.code(), error = %e, "cannot read the event queue; the exporter keeps polling the API as without events");
        }
    }
}

/// What an ignored message is logged with.
#[derive(Debug, Clone, Copy)]
enum Ignoring<'a> {
    /// The message's body, as received (shortened in the log).
    Body(&'a str),
    /// The build it named, which the API does not know.
    Build(&'a str),
    /// The pipeline it named, which the listing does not hold.
    Pipeline(&'a str),
}

#[cfg(test)]
mod tests;
