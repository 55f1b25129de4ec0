//! What a refresh ran into: failed reads (their last good data is kept) and
//! bad fields, for `imagebuilder_up`, the logs and the counters.

use crate::aws::{ApiError, DataIssue};

/// A failed read: the call's error and what it was reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: ApiError,
    pub resource: String,
}

/// What a refresh ran into.
#[derive(Debug, Default)]
pub struct RefreshReport {
    /// Reads that failed: their last good data was kept.
    pub failures: Vec<Failure>,
    /// `--step-execution-id` values the API does not know.
    pub unknown_step_ids: Vec<String>,
    /// Bad fields inside answers that were otherwise used.
    pub issues: Vec<DataIssue>,
    pub discovery_ran: bool,
    /// Builds left untracked because of `--discovery.max-builds`.
    pub dropped_builds: usize,
}

impl RefreshReport {
    /// Everything that was needed could be read.
    pub fn complete(&self) -> bool {
        self.failures.is_empty()
    }

    /// Records the issues of a listing; true if it skipped no item. A
    /// listing that did is a partial read: reported as a failure, so that
    /// `imagebuilder_up` says the data may be incomplete.
    pub(super) fn take_issues(&mut self, issues: Vec<DataIssue>, resource: &str) -> bool {
        let skipped = issues.iter().filter(|i| i.skipped_item()).count();
        if let Some(operation) = issues
            .iter()
            .find(|i| i.skipped_item())
            .map(|i| i.operation)
        {
            self.fail(
                ApiError::Parse {
                    operation,
                    message: format!("{skipped} item(s) without an identifier were skipped; what they may be keeps its previous data"),
                },
                resource,
            );
        }
        self.issues.extend(issues);
        skipped == 0
    }

    pub(super) fn fail(&mut self, error: ApiError, resource: impl Into<String>) {
        self.failures.push(Failure {
            error,
            resource: resource.into(),
        });
    }
}
