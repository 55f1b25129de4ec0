//! An organisation's accounts as targets: listed at start-up and every
//! `--organization.interval`, each ACTIVE account that the filters select,
//! in each Region listed, is a target named `ACCOUNT/REGION`, of this
//! replica's shard. An account that joins becomes a target (its cold start
//! as any, without holding readiness); one that leaves, or stops being
//! ACTIVE, is dropped with its series. A failed listing keeps the last
//! known accounts and says so (`imagebuilder_exporter_organization_up` 0).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;

use super::exporter::Exporter;
use super::shard::Shard;
use super::target::Target;
use crate::aws::organizations::OrganizationsApi;
use crate::aws::ImageBuilderApi;
use crate::base::clock::{secs, Clock};
use crate::base::loglimit::LogLimiter;
use crate::metrics::ExporterMetrics;
use crate::model::Account;

/// After a failed listing, the next is tried after this long, doubling up
/// to [`RETRY_MAX`] (at most `--organization.interval`).
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// How often the same failure is logged.
const WARN_EVERY: Duration = Duration::from_secs(300);

/// Which accounts, and where: the `organization` section's filters.
#[derive(Debug, Clone)]
pub struct Members {
    pub regions: Vec<String>,
    /// Accounts whose ID or name one of these matches (all when empty)…
    pub include: Vec<Regex>,
    /// …unless one of these does.
    pub exclude: Vec<Regex>,
}

impl Members {
    /// Whether the filters select an account (its state aside).
    pub fn selects(&self, account: &Account) -> bool {
        let hit = |res: &[Regex]| {
            res.iter()
                .any(|r| r.is_match(&account.id) || r.is_match(&account.name))
        };
        (self.include.is_empty() || hit(&self.include)) && !hit(&self.exclude)
    }
}

/// Makes the target of one member account in one Region: the app's
/// wiring (clients, the member role's session, the tracker).
pub trait TargetFactory<C>: Send + Sync + 'static {
    fn target(
        &self,
        name: &str,
        account: &Account,
        region: &str,
    ) -> impl Future<Output = Arc<Target<C>>> + Send;
}

/// The name of a member account's target in a Region (and its key for
/// sharding).
pub fn target_name(account_id: &str, region: &str) -> String {
    format!("{account_id}/{region}")
}

/// The organisation's listing loop.
pub struct Organization<O, F, C> {
    pub api: O,
    pub members: Members,
    pub factory: F,
    pub shard: Shard,
    pub interval: Duration,
    pub metrics: ExporterMetrics,
    pub clock: Arc<dyn Clock>,
    pub exporter: Arc<Exporter<C>>,
}

/// What a listing changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// (name, account, region) to add.
    pub join: Vec<(String, Account, String)>,
    /// Names to drop.
    pub leave: Vec<String>,
    /// Targets written one by one that an account of the organisation
    /// would repeat: kept as written.
    pub written: Vec<String>,
}

/// What the accounts listed mean for the targets this replica serves:
/// pure, so that joins, leaves, filters and shards are tested without a
/// loop. `served` are the organisation's targets served now; `others` the
/// names of the targets written one by one.
pub fn change(
    accounts: &[Account],
    members: &Members,
    shard: Shard,
    served: &BTreeSet<String>,
    others: &BTreeSet<String>,
) -> Change {
    let mut wanted: BTreeMap<String, (Account, String)> = BTreeMap::new();
    let mut written = Vec::new();
    for a in accounts
        .iter()
        .filter(|a| a.is_active() && members.selects(a))
    {
        for region in &members.regions {
            let name = target_name(&a.id, region);
            if !shard.owns(&name) {
                continue;
            }
            if others.contains(&name) {
                written.push(name);
                continue;
            }
            wanted.insert(name, (a.clone(), region.clone()));
        }
    }
    Change {
        leave: served
            .iter()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect(),
        join: wanted
            .into_iter()
            .filter(|(n, _)| !served.contains(n))
            .map(|(n, (a, r))| (n, a, r))
            .collect(),
        written,
    }
}

impl<O, F, C> Organization<O, F, C>
where
    O: OrganizationsApi,
    F: TargetFactory<C>,
    C: ImageBuilderApi,
{
    /// Lists the accounts now and every `interval`, until the process ends.
    /// The first listing (or giving up on it: an error retrying will not
    /// fix, or `max_wait` of passing ones) lets `/-/ready` answer; targets
    /// added later never hold it.
    pub async fn run(self, started: Instant, max_wait: Duration) {
        let logs = LogLimiter::default();
        let mut served: BTreeSet<String> = BTreeSet::new();
        let mut first = true;
        let mut delay = RETRY_FIRST;
        loop {
            let wait = match self.api.list_accounts().await {
                Ok(fetched) => {
                    for issue in &fetched.issues {
                        if logs.allow(&format!("issue|{issue}"), Some(WARN_EVERY)) {
                            tracing::warn!(issue = %issue, "an account of the organisation's listing could not be used as it is");
                        }
                    }
                    self.metrics.organization_up.set(1);
                    self.metrics
                        .organization_last_success
                        .set(secs(self.clock.now()));
                    self.metrics.show_organization(true);
                    let accounts = fetched.value;
                    let selected = accounts
                        .iter()
                        .filter(|a| a.is_active() && self.members.selects(a))
                        .count();
                    self.metrics.organization_accounts.set(selected as i64);
                    self.apply(&accounts, &mut served, !first, &logs, max_wait)
                        .await;
                    if first {
                        tracing::info!(
                            accounts = accounts.len(),
                            selected,
                            targets = served.len(),
                            shard = self.shard.index,
                            shards = self.shard.count,
                            "organisation listed"
                        );
                        self.exporter.organization_listed();
                        first = false;
                    }
                    delay = RETRY_FIRST;
                    self.interval
                }
                Err(e) => {
                    self.metrics.organization_up.set(0);
                    self.metrics.show_organization(false);
                    self.metrics
                        .organization_errors
                        .with_label_values(&[e.code()])
                        .inc();
                    if logs.allow(&format!("error|{}", e.code()), Some(WARN_EVERY)) {
                        tracing::warn!(error = %e, code = e.code(), "cannot list the organisation's accounts; the last known accounts are still exported");
                    }
                    let gave_up = e.is_lasting() || started.elapsed() >= max_wait;
                    if first && gave_up {
                        tracing::warn!(error = %e, "readiness no longer waits for the organisation's accounts: none are exported until a listing succeeds");
                        self.exporter.organization_listed();
                        first = false;
                    }
                    let wait = delay.min(self.interval);
                    delay = (delay * 2).min(RETRY_MAX);
                    wait
                }
            };
            self.metrics.touch();
            tokio::time::sleep(wait).await;
        }
    }

    /// Adds the targets of accounts that joined and drops those of accounts
    /// that left. `late`: readiness does not wait for the new ones, which
    /// then start on their own.
    async fn apply(
        &self,
        accounts: &[Account],
        served: &mut BTreeSet<String>,
        late: bool,
        logs: &LogLimiter,
        max_wait: Duration,
    ) {
        let others: BTreeSet<String> = self
            .exporter
            .targets()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| !served.contains(n))
            .collect();
        let change = change(accounts, &self.members, self.shard, served, &others);
        for name in &change.written {
            if logs.allow(&format!("written|{name}"), None) {
                tracing::info!(target_name = %name, "this account and Region is also a target of `targets`: the one written there is used");
            }
        }
        if !change.leave.is_empty() {
            let names: Vec<&str> = change.leave.iter().map(String::as_str).collect();
            self.exporter.remove_targets(&names);
            for name in &change.leave {
                served.remove(name);
                tracing::info!(target_name = %name, "target dropped: its account left the organisation, is no longer ACTIVE, or no longer selected");
            }
        }
        let mut joined = Vec::with_capacity(change.join.len());
        for (name, account, region) in &change.join {
            let target = self.factory.target(name, account, region).await;
            if late {
                target.joined_after_start();
                tokio::spawn(target.clone().settle(Instant::now(), max_wait));
                tracing::info!(target_name = %name, account = %account.id, account_name = %account.name, region = %region, "target added: its account joined the organisation (or became ACTIVE)");
            }
            served.insert(name.clone());
            joined.push(target);
        }
        if !joined.is_empty() {
            self.exporter.add_targets(joined);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountState;

    fn account(id: &str, name: &str, state: AccountState) -> Account {
        Account {
            id: id.into(),
            name: name.into(),
            state: Some(state),
            partition: "aws".into(),
        }
    }

    fn members(include: &[&str], exclude: &[&str]) -> Members {
        let re = |p: &&str| Regex::new(&format!("^(?:{p})$")).expect("pattern");
        Members {
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            include: include.iter().map(re).collect(),
            exclude: exclude.iter().map(re).collect(),
        }
    }

    fn names(list: &[(String, Account, String)]) -> Vec<&str> {
        list.iter().map(|(n, _, _)| n.as_str()).collect()
    }

    #[test]
    fn active_selected_accounts_times_regions_are_the_targets() {
        let accounts = [
            account("111111111111", "team-001", AccountState::Active),
            account("222222222222", "sandbox-002", AccountState::Active),
            account("333333333333", "team-003", AccountState::Suspended),
            account(
                "444444444444",
                "team-004",
                AccountState::Other("NEW".into()),
            ),
        ];
        let c = change(
            &accounts,
            &members(&[], &["sandbox-.*"]),
            Shard::default(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert_eq!(
            names(&c.join),
            ["111111111111/eu-west-1", "111111111111/us-east-1"]
        );
        assert!(c.leave.is_empty());
        // Included by ID or by name; exclusion wins.
        let c = change(
            &accounts,
            &members(&["2222.*", "team-001"], &["team-001"]),
            Shard::default(),
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert_eq!(
            names(&c.join),
            ["222222222222/eu-west-1", "222222222222/us-east-1"]
        );
    }

    #[test]
    fn a_listing_adds_joiners_and_drops_leavers_and_the_suspended() {
        let served: BTreeSet<String> = [
            "111111111111/us-east-1",
            "111111111111/eu-west-1",
            "222222222222/us-east-1",
            "222222222222/eu-west-1",
        ]
        .map(String::from)
        .into();
        let accounts = [
            account("111111111111", "a", AccountState::Suspended),
            account("333333333333", "c", AccountState::Active),
            account("222222222222", "b", AccountState::Active),
        ];
        let c = change(
            &accounts,
            &members(&[], &[]),
            Shard::default(),
            &served,
            &BTreeSet::new(),
        );
        assert_eq!(
            c.leave,
            ["111111111111/eu-west-1", "111111111111/us-east-1"]
        );
        assert_eq!(
            names(&c.join),
            ["333333333333/eu-west-1", "333333333333/us-east-1"]
        );
    }

    #[test]
    fn shards_split_the_targets_and_written_targets_win() {
        let accounts: Vec<Account> = (0..50)
            .map(|i| account(&format!("{:012}", 100 + i), "t", AccountState::Active))
            .collect();
        let m = members(&[], &[]);
        let mut all = BTreeSet::new();
        for index in 0..3 {
            let c = change(
                &accounts,
                &m,
                Shard { index, count: 3 },
                &BTreeSet::new(),
                &BTreeSet::new(),
            );
            for (n, _, _) in &c.join {
                assert!(all.insert(n.clone()), "{n} in two shards");
            }
        }
        assert_eq!(all.len(), 100);
        let others: BTreeSet<String> = ["000000000100/us-east-1".to_string()].into();
        let c = change(&accounts, &m, Shard::default(), &BTreeSet::new(), &others);
        assert_eq!(c.written, ["000000000100/us-east-1"]);
        assert_eq!(c.join.len(), 99);
    }
}
