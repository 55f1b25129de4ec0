//! The organisation's accounts: `organizations:ListAccounts`, which only the
//! management account or a delegated administrator may call, with the
//! exporter's own credentials or through the role the `organization`
//! section of `--config.file` names.
//!
//! A narrow interface, [`OrganizationsApi`], over the AWS SDK for
//! Organizations (the same trimmed HTTP stack as the other clients), so that
//! the organisation loop is tested with a fake and the simulator alike.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use super::convert::{self, Issues};
use super::errors::{classify_in, ErrorContext};
use super::{ApiError, Fetched, Operation};
use crate::model::Account;

/// Accounts per page: the most `MaxResults` allows.
const PAGE: i32 = 20;

/// What the exporter asks of AWS Organizations.
pub trait OrganizationsApi: Send + Sync + 'static {
    /// Every account of the organisation, all pages.
    fn list_accounts(&self)
        -> impl Future<Output = Result<Fetched<Vec<Account>>, ApiError>> + Send;
}

/// [`OrganizationsApi`] over the AWS SDK.
pub struct SdkOrganizations {
    client: aws_sdk_organizations::Client,
    context: ErrorContext,
}

impl SdkOrganizations {
    /// A client from the SDK configuration of whoever lists the accounts.
    /// The listing runs once an hour, off every scrape's path: the SDK's
    /// standard retries (which know `TooManyRequestsException` as
    /// throttling) are enough, and a failure keeps the last list.
    pub fn new(sdk: &aws_config::SdkConfig, request_timeout: Duration) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3).min(request_timeout))
            .operation_attempt_timeout(request_timeout)
            .build();
        let config = aws_sdk_organizations::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .build();
        Self {
            client: aws_sdk_organizations::Client::from_conf(config),
            context: ErrorContext::default(),
        }
    }

    /// What the errors of this client name: its endpoint, role and
    /// credential source.
    pub fn with_context(mut self, context: ErrorContext) -> Self {
        self.context = context;
        self
    }
}

impl OrganizationsApi for SdkOrganizations {
    async fn list_accounts(&self) -> Result<Fetched<Vec<Account>>, ApiError> {
        let op = Operation::ListAccounts;
        let mut issues = Issues::new(op);
        let mut accounts = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let out = self
                .client
                .list_accounts()
                .max_results(PAGE)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| classify_in(&self.context, op, e))?;
            accounts.extend(
                out.accounts()
                    .iter()
                    .filter_map(|a| convert::account(a, &mut issues)),
            );
            // The documentation warns that a page may be empty with more to
            // come: only a missing token ends the listing. A token seen
            // before would never end it.
            match out.next_token().filter(|t| !t.is_empty()) {
                None => break,
                Some(t) if !seen.insert(t.to_string()) => {
                    return Err(ApiError::Parse {
                        operation: op,
                        message: "the pagination token repeats: the listing would never end".into(),
                    })
                }
                Some(t) => token = Some(t.to_string()),
            }
        }
        Ok(Fetched {
            value: accounts,
            issues: issues.list,
        })
    }
}
