//! The calls the simulator received: per operation, per access key, and per
//! (account, Region, operation), so that a test can check call budgets and
//! that shards of an exporter read each account and Region once between
//! them.
//!
//! One mutex for all three, held for a few map updates per request. The
//! per-scope counts are nested maps looked up by `&str`: a request
//! allocates nothing unless its scope is new.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// Where a call went: the account whose resources it read (see
/// [`crate::Simulator::calls_by_scope`]), the Region its signature names
/// (empty when unsigned), and the operation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CallScope {
    pub account: String,
    pub region: String,
    pub operation: String,
}

impl CallScope {
    pub fn new(account: &str, region: &str, operation: &str) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
            operation: operation.into(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Calls {
    by_operation: BTreeMap<String, u64>,
    /// account → Region → operation → calls.
    by_scope: HashMap<String, HashMap<String, HashMap<String, u64>>>,
    /// Not cleared by [`Calls::clear`]: which credentials signed what,
    /// since the start.
    by_access_key: BTreeMap<String, u64>,
}

/// Maps of counters looked up by `&str`.
trait Counts {
    /// Adds one to the key's count, allocating the key only the first time.
    fn bump(&mut self, key: &str);
}

impl Counts for HashMap<String, u64> {
    fn bump(&mut self, key: &str) {
        match self.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.insert(key.to_string(), 1);
            }
        }
    }
}

impl Counts for BTreeMap<String, u64> {
    fn bump(&mut self, key: &str) {
        match self.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.insert(key.to_string(), 1);
            }
        }
    }
}

impl Calls {
    /// Counts a call of `operation` about `account` in `region`.
    pub(crate) fn record(&mut self, operation: &str, account: &str, region: &str) {
        self.by_operation.bump(operation);
        let regions = match self.by_scope.get_mut(account) {
            Some(r) => r,
            None => self.by_scope.entry(account.to_string()).or_default(),
        };
        let operations = match regions.get_mut(region) {
            Some(o) => o,
            None => regions.entry(region.to_string()).or_default(),
        };
        operations.bump(operation);
    }

    /// Counts a request signed with `access_key`.
    pub(crate) fn record_key(&mut self, access_key: &str) {
        self.by_access_key.bump(access_key);
    }

    pub(crate) fn by_operation(&self) -> &BTreeMap<String, u64> {
        &self.by_operation
    }

    pub(crate) fn by_access_key(&self) -> &BTreeMap<String, u64> {
        &self.by_access_key
    }

    pub(crate) fn by_scope(&self) -> BTreeMap<CallScope, u64> {
        let mut out = BTreeMap::new();
        for (account, regions) in &self.by_scope {
            for (region, operations) in regions {
                for (operation, n) in operations {
                    out.insert(CallScope::new(account, region, operation), *n);
                }
            }
        }
        out
    }

    /// Forgets the counts per operation and per scope.
    pub(crate) fn clear(&mut self) {
        self.by_operation.clear();
        self.by_scope.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_and_by_scope() {
        let mut c = Calls::default();
        c.record("ListImageBuildVersions", "111111111111", "us-east-1");
        c.record("ListImageBuildVersions", "111111111111", "us-east-1");
        c.record("ListImageBuildVersions", "111111111111", "eu-west-1");
        c.record("AssumeRole", "222222222222", "us-east-1");
        c.record_key("ASIA1");
        assert_eq!(c.by_operation()["ListImageBuildVersions"], 3);
        let scopes = c.by_scope();
        assert_eq!(
            scopes[&CallScope::new("111111111111", "us-east-1", "ListImageBuildVersions")],
            2
        );
        assert_eq!(scopes.len(), 3);
        assert_eq!(scopes.values().sum::<u64>(), 4);
        c.clear();
        assert!(c.by_operation().is_empty() && c.by_scope().is_empty());
        assert_eq!(c.by_access_key()["ASIA1"], 1, "keys are not reset");
    }
}
