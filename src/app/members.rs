//! The targets of an organisation's member accounts: one SDK configuration
//! (and so one HTTP client and its connection pool) for them all, one
//! member-role session per account shared by its Regions, and a client,
//! a tracker and a target per account and Region.
//!
//! Each account's session has an identity cache of its own. The SDK
//! configuration's cache, which clients built from it share, holds 64
//! sessions and drops one at random beyond that: with more accounts, every
//! refresh would assume roles again (measured: 437 `AssumeRole` calls for
//! 100 accounts in four refreshes, instead of 100).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_imagebuilder::config::{
    IdentityCache, Region, SharedCredentialsProvider, SharedIdentityCache,
};

use super::targets_file::OrganizationSpec;
use super::Options;
use crate::aws::environment::{CredentialSource, Endpoint};
use crate::aws::errors::ErrorContext;
use crate::aws::sdk::{assume_role, SdkClient};
use crate::base::clock::Clock;
use crate::metrics::ExporterMetrics;
use crate::model::Account;
use crate::refresh::discovery::{DiscoveryConfig, Tracker};
use crate::refresh::organization::TargetFactory;
use crate::refresh::target::Target;

/// A member role's credentials and the cache that keeps them between
/// calls, shared by the account's Regions.
#[derive(Clone)]
struct Session {
    provider: SharedCredentialsProvider,
    cache: SharedIdentityCache,
}

/// Makes member targets (see the module's documentation).
pub struct MemberTargets {
    /// The exporter's own configuration: its credentials assume the member
    /// roles.
    pub base: aws_config::SdkConfig,
    pub spec: OrganizationSpec,
    pub options: Options,
    pub credentials: CredentialSource,
    pub clock: Arc<dyn Clock>,
    pub metrics: ExporterMetrics,
    /// Member-role sessions by role ARN, each with its cache.
    sessions: Mutex<HashMap<String, Session>>,
}

impl MemberTargets {
    pub fn new(
        base: aws_config::SdkConfig,
        spec: OrganizationSpec,
        options: Options,
        credentials: CredentialSource,
        clock: Arc<dyn Clock>,
        metrics: ExporterMetrics,
    ) -> Self {
        Self {
            base,
            spec,
            options,
            credentials,
            clock,
            metrics,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The session of a member role, made once and shared.
    async fn session(&self, role: &crate::aws::AssumeRole) -> Session {
        if let Some(s) = crate::base::sync::lock(&self.sessions).get(&role.role_arn) {
            return s.clone();
        }
        let session = Session {
            provider: assume_role(&self.base, role).await,
            cache: IdentityCache::lazy().build(),
        };
        crate::base::sync::lock(&self.sessions)
            .entry(role.role_arn.clone())
            .or_insert(session)
            .clone()
    }

    fn discovery(&self) -> DiscoveryConfig {
        let mut d = self.options.discovery.clone();
        if let Some(f) = &self.spec.image_name_filter {
            d.image_filter = Some(f.clone());
        }
        d
    }
}

impl TargetFactory<Arc<SdkClient>> for MemberTargets {
    async fn target(
        &self,
        name: &str,
        account: &Account,
        region: &str,
    ) -> Arc<Target<Arc<SdkClient>>> {
        let role = self.spec.member_role(&account.partition, &account.id);
        let session = self.session(&role).await;
        let sdk = self
            .base
            .to_builder()
            .region(Region::new(region.to_string()))
            .credentials_provider(session.provider)
            .identity_cache(session.cache)
            .build();
        let env = &crate::aws::environment::process_env;
        let explicit = self.options.aws.endpoint_url.as_deref();
        let context = ErrorContext {
            region: Some(region.to_string()),
            endpoint: Some(Endpoint::of("IMAGEBUILDER", explicit, region, env)),
            sts: Some(Endpoint::of(
                "STS",
                explicit,
                self.base.region().map(|r| r.as_ref()).unwrap_or(region),
                env,
            )),
            role: Some(role.role_arn.clone()),
            credentials: Some(self.credentials.clone()),
        };
        let client = SdkClient::new(
            &sdk,
            name,
            self.options.limits.clone(),
            self.metrics.clone(),
        )
        .with_context(context);
        Target::new(
            name,
            Arc::new(client),
            Tracker::new(self.discovery()),
            self.options.refresh_min_interval,
            self.clock.clone(),
            self.metrics.clone(),
        )
    }
}
