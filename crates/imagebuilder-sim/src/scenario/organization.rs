//! An organisation of accounts for tests, the bench and a demo: N accounts
//! (the management account 123456789012 and members), each with a sized
//! world of its own in each of a list of Regions, a member role trusted in
//! each, all deterministic from a seed.

use std::collections::HashSet;

use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::org::{JoinedMethod, SimAccount, ORGANIZATION_CREATED};
use crate::scenario::{relocate, sized_with, ACCOUNT};
use crate::store::Store;
use crate::Simulator;

/// What [`organization`] builds.
#[derive(Debug, Clone)]
pub struct OrganizationSpec {
    /// Accounts listed, the management account included (at least 1).
    pub accounts: usize,
    /// The Regions each account has builds in.
    pub regions: Vec<String>,
    /// Finished builds per account and Region, over `span` before now.
    pub builds: usize,
    /// Images they are spread over.
    pub images: usize,
    /// Builds in flight per account and Region.
    pub running: usize,
    pub span: Nanos,
    /// The role trusted in every account, `arn:aws:iam::ID:role/ROLE_NAME`.
    pub role_name: String,
    /// How many members are named `sandbox-NNN` (the others `team-NNN`),
    /// for exclusion patterns.
    pub sandboxes: usize,
    pub seed: u64,
}

impl Default for OrganizationSpec {
    /// 20 accounts (2 of them sandboxes) × us-east-1 and eu-west-1 × 20
    /// builds over 20 hours, none running, role `imagebuilder-exporter`.
    fn default() -> Self {
        Self {
            accounts: 20,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            builds: 20,
            images: 5,
            running: 0,
            span: 20 * 3600 * NANOS_PER_SEC,
            role_name: "imagebuilder-exporter".into(),
            sandboxes: 2,
            seed: 7,
        }
    }
}

/// An organisation ready to load into a simulator.
#[derive(Debug)]
pub struct OrganizationWorld {
    /// `o-` and 10 letters or digits.
    pub id: String,
    pub role_name: String,
    /// Each account, the management account first, with its store per
    /// Region.
    pub accounts: Vec<(SimAccount, Vec<(String, Store)>)>,
}

impl OrganizationWorld {
    /// The accounts' IDs, the management account first.
    pub fn account_ids(&self) -> Vec<String> {
        self.accounts.iter().map(|(a, _)| a.id.clone()).collect()
    }

    /// Loads the organisation into `sim`: its ID, the member role
    /// (trusted in every account, without an external ID), and every
    /// account with its stores.
    pub fn install(self, sim: &Simulator) -> Result<(), String> {
        if !sim.set_organization_id(&self.id) {
            return Err(format!("{:?} is not an organisation ID", self.id));
        }
        sim.set_member_role(&self.role_name, None);
        for (account, stores) in self.accounts {
            sim.join_account(account, stores)?;
        }
        Ok(())
    }
}

/// The organisation `spec` describes, at `now`: account 123456789012
/// `management`, then members with distinct random 12-digit IDs named
/// `team-001`, `team-002`, … and, last, `sandbox-001`, …; every fourth
/// invited rather than created; joined between the organisation's creation
/// and a day before `now`. Each account has, in each Region, a
/// [`super::sized`] world of its own (its builds' ARNs name the account
/// and Region, their IDs differ).
pub fn organization(now: Nanos, spec: &OrganizationSpec) -> OrganizationWorld {
    let mut rng = fastrand::Rng::with_seed(spec.seed ^ 0x0a11_ac00_u64);
    let id: String = (0..10)
        .map(|_| {
            let c = rng.u8(..36);
            char::from(if c < 10 { b'0' + c } else { b'a' + c - 10 })
        })
        .collect();
    let members = spec.accounts.max(1) - 1;
    let sandboxes = spec.sandboxes.min(members);
    let mut taken: HashSet<String> = HashSet::from([ACCOUNT.to_string()]);
    let joined_until = (now - 24 * 3600 * NANOS_PER_SEC).max(ORGANIZATION_CREATED);
    let mut accounts = Vec::with_capacity(members + 1);
    for i in 0..=members {
        let account = if i == 0 {
            let mut a = SimAccount::new(ACCOUNT, "management", ORGANIZATION_CREATED);
            a.email = "aws-management@example.com".into();
            a
        } else {
            let account_id = loop {
                let candidate = format!("{}", rng.u64(100_000_000_000..1_000_000_000_000));
                if taken.insert(candidate.clone()) {
                    break candidate;
                }
            };
            let name = if i > members - sandboxes {
                format!("sandbox-{:03}", i - (members - sandboxes))
            } else {
                format!("team-{i:03}")
            };
            let joined = ORGANIZATION_CREATED
                + (joined_until - ORGANIZATION_CREATED) / (members as Nanos + 1) * i as Nanos;
            // To the second, as accounts are shown.
            let joined = joined - joined % NANOS_PER_SEC;
            let mut a = SimAccount::new(&account_id, &name, joined);
            if i % 4 == 0 {
                a.joined_method = JoinedMethod::Invited;
            }
            a
        };
        let stores = spec
            .regions
            .iter()
            .enumerate()
            .map(|(r, region)| {
                let seed = spec.seed
                    ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    ^ (r as u64 + 1).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
                let store = sized_with(
                    now,
                    spec.builds,
                    spec.images,
                    spec.running,
                    spec.span,
                    seed,
                    |b| relocate(b, &account.id, region),
                );
                (region.clone(), store)
            })
            .collect();
        accounts.push((account, stores));
    }
    OrganizationWorld {
        id: format!("o-{id}"),
        role_name: spec.role_name.clone(),
        accounts,
    }
}
