//! The simulated AWS organisation: a management account (the simulator's
//! default account, 123456789012) and member accounts, each with an ID,
//! name, email, state and per-Region Image Builder stores, and the controls
//! that change it at run time (accounts join, leave, are suspended, their
//! role denies the exporter, listing the organisation fails).
//!
//! What AWS does, and what the simulator does instead where AWS does not
//! say:
//! - An account that **leaves** is no longer listed, and `sts:AssumeRole`
//!   into any role of it is refused (`AccessDenied`): the member role of a
//!   service-managed StackSet with automatic deployment, the usual way to
//!   give every member the exporter's role, is deleted with its stack
//!   instance when the account leaves. Sessions already handed out work
//!   until they expire, as after [`Simulator::revoke_role`]; its builds
//!   are still there (the account exists), and it can join again.
//! - A **suspended** account (any state but `ACTIVE`) is listed with its
//!   state; `sts:AssumeRole` into it still succeeds, but every Image
//!   Builder call signed with its credentials is refused with `400
//!   SubscriptionRequiredException` ("The AWS Access Key Id needs a
//!   subscription for the service"), what AWS services answer an account
//!   that is not in good standing.
//! - The wire protocol of `ListAccounts` is in `organizations.rs`.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{Nanos, NANOS_PER_SEC};
use crate::scenario::ACCOUNT;
use crate::store::Store;
use crate::sync::{lock, read, write};
use crate::Simulator;

/// The organisation's ID until one is set: `o-` and 10 to 32 lower-case
/// letters or digits.
pub const ORGANIZATION_ID: &str = "o-exampleorg";

/// When the default organisation was created, and its management account
/// joined it: 2025-01-06T09:00:00Z.
pub const ORGANIZATION_CREATED: Nanos = 1_736_154_000 * NANOS_PER_SEC;

/// An account's `State` in `ListAccounts` (the model's `AccountState`; its
/// retired `Status` is not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountState {
    PendingActivation,
    Active,
    Suspended,
    PendingClosure,
    Closed,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingActivation => "PENDING_ACTIVATION",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::PendingClosure => "PENDING_CLOSURE",
            Self::Closed => "CLOSED",
        }
    }
}

/// How an account joined (the model's `AccountJoinedMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JoinedMethod {
    Invited,
    Created,
}

impl JoinedMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "INVITED",
            Self::Created => "CREATED",
        }
    }
}

/// An account of the organisation, as `ListAccounts` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    /// 12 digits.
    pub id: String,
    /// 1 to 128 ASCII characters.
    pub name: String,
    /// 6 to 64 characters, `local@domain.tld`.
    pub email: String,
    pub state: AccountState,
    pub joined_method: JoinedMethod,
    /// When it joined (Unix nanoseconds).
    pub joined: Nanos,
}

impl SimAccount {
    /// An ACTIVE account created in the organisation at `joined`, whose
    /// email is `aws+{name}@example.com`.
    pub fn new(id: &str, name: &str, joined: Nanos) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            email: format!("aws+{name}@example.com"),
            state: AccountState::Active,
            joined_method: JoinedMethod::Created,
            joined,
        }
    }

    /// Why the account breaks the model's shapes (`AccountId`,
    /// `AccountName`, `Email`), if it does.
    pub fn check(&self) -> Result<(), String> {
        if self.id.len() != 12 || !self.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account ID {:?} is not 12 digits", self.id));
        }
        if !(1..=128).contains(&self.name.len()) || !self.name.is_ascii() {
            return Err(format!(
                "account name {:?} is not 1 to 128 ASCII characters",
                self.name
            ));
        }
        let email_ok = (6..=64).contains(&self.email.chars().count())
            && self.email.split_once('@').is_some_and(|(local, domain)| {
                let plain = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
                plain(local)
                    && !domain.contains('@')
                    && domain
                        .rsplit_once('.')
                        .is_some_and(|(host, tld)| plain(host) && plain(tld))
            });
        if !email_ok {
            return Err(format!("email {:?} is not a valid address", self.email));
        }
        Ok(())
    }
}

/// Why `ListAccounts` fails, when a test makes it fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgFault {
    /// `AccessDeniedException`: the caller's policy no longer allows
    /// `organizations:ListAccounts`.
    AccessDenied,
    /// `TooManyRequestsException` (the SDK retries it, then gives up).
    TooManyRequests,
    /// `AWSOrganizationsNotInUseException`: the organisation was deleted.
    NotInUse,
    /// `ServiceException`, a 500 (retried by the SDK too).
    ServiceException,
}

/// The role the exporter assumes in every account: its name, and the
/// external ID its trust policy requires.
#[derive(Debug, Clone)]
struct MemberRole {
    name: String,
    external_id: Option<String>,
}

/// The organisation's state, behind one lock in the simulator.
#[derive(Debug)]
pub(crate) struct Organization {
    pub(crate) id: String,
    /// Listed accounts, the management account included, by ID (the
    /// listing's order).
    accounts: BTreeMap<String, SimAccount>,
    /// Accounts that left (their roles are gone).
    left: HashSet<String>,
    /// Members that may list the organisation besides the management
    /// account.
    delegated: HashSet<String>,
    member_role: Option<MemberRole>,
    pub(crate) fault: Option<OrgFault>,
}

impl Default for Organization {
    fn default() -> Self {
        let mut management = SimAccount::new(ACCOUNT, "management", ORGANIZATION_CREATED);
        management.email = "aws-management@example.com".into();
        Self {
            id: ORGANIZATION_ID.into(),
            accounts: BTreeMap::from([(ACCOUNT.to_string(), management)]),
            left: HashSet::new(),
            delegated: HashSet::new(),
            member_role: None,
            fault: None,
        }
    }
}

/// Why a caller may not list the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Fault(OrgFault),
    /// A member that is not a delegated administrator.
    NotAllowed,
    /// An account outside the organisation.
    NotAMember,
}

impl Organization {
    /// The state of a listed account.
    pub(crate) fn state_of(&self, account: &str) -> Option<AccountState> {
        self.accounts.get(account).map(|a| a.state)
    }

    pub(crate) fn has_left(&self, account: &str) -> bool {
        self.left.contains(account)
    }

    /// A listed account other than the management account.
    pub(crate) fn is_member(&self, account: &str) -> bool {
        account != ACCOUNT && self.accounts.contains_key(account)
    }

    /// Whether `caller` may call `ListAccounts`: the management account
    /// and delegated administrators may, unless a fault is set.
    pub(crate) fn may_list(&self, caller: &str) -> Result<(), Refusal> {
        if let Some(f) = self.fault {
            return Err(Refusal::Fault(f));
        }
        if caller == ACCOUNT || self.delegated.contains(caller) {
            Ok(())
        } else if self.accounts.contains_key(caller) {
            Err(Refusal::NotAllowed)
        } else {
            Err(Refusal::NotAMember)
        }
    }

    /// Up to `size` accounts after `after` (an account ID; the first
    /// page: `None`), and whether more follow. A cursor rather than an
    /// offset: an account that joins or leaves between two pages moves
    /// no other one across the page boundary.
    pub(crate) fn page(&self, after: Option<&str>, size: usize) -> (Vec<&SimAccount>, bool) {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = self
            .accounts
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(_, a)| a);
        let page: Vec<&SimAccount> = it.by_ref().take(size).collect();
        (page, it.next().is_some())
    }

    /// `Account` as `ListAccounts` sends it.
    pub(crate) fn account_json(&self, a: &SimAccount) -> Value {
        json!({
            "Id": a.id,
            "Arn": format!("arn:aws:organizations::{ACCOUNT}:account/{}/{}", self.id, a.id),
            "Email": a.email,
            "Name": a.name,
            "State": a.state.as_str(),
            "JoinedMethod": a.joined_method.as_str(),
            // JSON 1.1 timestamps are epoch seconds; the service's have
            // milliseconds.
            "JoinedTimestamp": crate::clock::secs(a.joined - a.joined.rem_euclid(1_000_000)),
        })
    }

    /// The member role's ARN in `account`, if a member role is set.
    fn member_role_arn(&self, account: &str) -> Option<String> {
        self.member_role
            .as_ref()
            .map(|r| role_arn(account, &r.name))
    }

    pub(crate) fn listed(&self) -> Vec<SimAccount> {
        self.accounts.values().cloned().collect()
    }
}

/// `arn:aws:iam::{account}:role/{name}`.
pub fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// Whether `id` is an organisation ID (`o-` and 10 to 32 lower-case
/// letters or digits, as `AccountArn`'s pattern has it).
fn valid_org_id(id: &str) -> bool {
    id.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// Pagination tokens: the last account ID of a page, obfuscated and
/// checked, salted with the organisation's ID. Opaque to clients; a token
/// of another organisation, or edited, is refused.
pub(crate) fn encode_token(org: &str, last: &str) -> String {
    let id: u64 = last.parse().unwrap_or(0);
    let v = id ^ salt(org);
    format!("AAE{v:016x}{:08x}", check(v))
}

pub(crate) fn decode_token(org: &str, token: &str) -> Option<String> {
    let hex = token.strip_prefix("AAE")?;
    if hex.len() != 24 || !hex.is_ascii() {
        return None;
    }
    let v = u64::from_str_radix(&hex[..16], 16).ok()?;
    let c = u32::from_str_radix(&hex[16..], 16).ok()?;
    let id = v ^ salt(org);
    (c == check(v) && id < 1_000_000_000_000).then(|| format!("{id:012}"))
}

fn salt(org: &str) -> u64 {
    org.bytes().fold(0x51_7cc1_b727_220a_u64, |h, b| {
        h.rotate_left(7) ^ u64::from(b)
    })
}

fn check(v: u64) -> u32 {
    (v.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
}

/// Run-time controls of the organisation.
impl Simulator {
    /// The organisation's ID.
    pub fn organization_id(&self) -> String {
        read(&self.state.org).id.clone()
    }

    /// Sets the organisation's ID (in the accounts' ARNs and the tokens);
    /// false, and nothing changes, if `id` is not `o-` and 10 to 32
    /// lower-case letters or digits.
    pub fn set_organization_id(&self, id: &str) -> bool {
        if !valid_org_id(id) {
            return false;
        }
        write(&self.state.org).id = id.into();
        true
    }

    /// `account` joins the organisation (or, already listed, is replaced:
    /// its name, email, state), with its builds in each Region of
    /// `stores` (see [`Simulator::add_account`]). The member role, if set,
    /// is trusted in it. An account that had left may join again. Refused
    /// if the account breaks the model's shapes.
    pub fn join_account(
        &self,
        account: SimAccount,
        stores: impl IntoIterator<Item = (String, Store)>,
    ) -> Result<(), String> {
        account.check()?;
        for (region, store) in stores {
            self.add_account(&account.id, &region, store);
        }
        let role = {
            let mut org = write(&self.state.org);
            org.left.remove(&account.id);
            let role = org.member_role.clone();
            org.accounts.insert(account.id.clone(), account.clone());
            role
        };
        if let Some(r) = role {
            lock(&self.state.roles)
                .allow(&role_arn(&account.id, &r.name), r.external_id.as_deref());
        }
        Ok(())
    }

    /// Member `account` leaves the organisation: it is no longer listed,
    /// and its roles can no longer be assumed (see the module's notes).
    /// False if it is not a member (the management account cannot leave).
    pub fn leave_account(&self, account: &str) -> bool {
        let mut org = write(&self.state.org);
        if !org.is_member(account) {
            return false;
        }
        org.accounts.remove(account);
        org.delegated.remove(account);
        org.left.insert(account.to_string());
        true
    }

    /// Sets a listed account's state; false if it is not listed.
    /// `SUSPENDED`, `PENDING_CLOSURE`, `CLOSED` and `PENDING_ACTIVATION`
    /// make its Image Builder calls fail (see the module's notes).
    pub fn set_account_state(&self, account: &str, state: AccountState) -> bool {
        match write(&self.state.org).accounts.get_mut(account) {
            Some(a) => {
                a.state = state;
                true
            }
            None => false,
        }
    }

    /// Suspends a listed account (`State` SUSPENDED).
    pub fn suspend_account(&self, account: &str) -> bool {
        self.set_account_state(account, AccountState::Suspended)
    }

    /// The role the exporter assumes in every account: trusted, with this
    /// external ID, in every listed account (the management account too)
    /// and in those that join later.
    pub fn set_member_role(&self, name: &str, external_id: Option<&str>) {
        let listed: Vec<String> = {
            let mut org = write(&self.state.org);
            org.member_role = Some(MemberRole {
                name: name.into(),
                external_id: external_id.map(str::to_string),
            });
            org.accounts.keys().cloned().collect()
        };
        let mut roles = lock(&self.state.roles);
        for account in listed {
            roles.allow(&role_arn(&account, name), external_id);
        }
    }

    /// The member role's ARN in `account` (`None`: no member role set).
    pub fn member_role_arn(&self, account: &str) -> Option<String> {
        read(&self.state.org).member_role_arn(account)
    }

    /// The member role of `account` stops trusting the exporter:
    /// `sts:AssumeRole` into it is refused (`AccessDenied`) until
    /// [`Simulator::undeny_role`]. False if no member role is set.
    pub fn deny_member_role(&self, account: &str) -> bool {
        match self.member_role_arn(account) {
            Some(arn) => {
                self.deny_role(&arn);
                true
            }
            None => false,
        }
    }

    /// Lets `member` call `ListAccounts`, as a delegated administrator
    /// of the organisation; false if it is not a member.
    pub fn delegate_administrator(&self, member: &str) -> bool {
        let mut org = write(&self.state.org);
        if !org.is_member(member) {
            return false;
        }
        org.delegated.insert(member.to_string());
        true
    }

    /// Makes every `ListAccounts` call fail with `fault` (`None`: work
    /// again).
    pub fn set_organization_fault(&self, fault: Option<OrgFault>) {
        write(&self.state.org).fault = fault;
    }

    /// The listed accounts, in the listing's order (by ID), the
    /// management account included.
    pub fn organization_accounts(&self) -> Vec<SimAccount> {
        read(&self.state.org).listed()
    }

    /// A listed account.
    pub fn organization_account(&self, account: &str) -> Option<SimAccount> {
        read(&self.state.org).accounts.get(account).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(ids: &[&str]) -> Organization {
        let mut o = Organization::default();
        for id in ids {
            o.accounts
                .insert(id.to_string(), SimAccount::new(id, "team", 0));
        }
        o
    }

    #[test]
    fn pages_follow_a_cursor_through_joins_and_leaves() {
        let mut o = org(&["200000000001", "200000000002", "200000000003"]);
        let ids = |p: &[&SimAccount]| p.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        let (p, more) = o.page(None, 2);
        assert_eq!(ids(&p), ["123456789012", "200000000001"]);
        assert!(more);
        // One before the cursor leaves, one joins after it: no account
        // is skipped or repeated.
        o.accounts.remove("123456789012");
        o.accounts.insert(
            "200000000004".into(),
            SimAccount::new("200000000004", "new", 0),
        );
        let (p, more) = o.page(Some("200000000001"), 2);
        assert_eq!(ids(&p), ["200000000002", "200000000003"]);
        assert!(more);
        let (p, more) = o.page(Some("200000000003"), 2);
        assert_eq!((ids(&p), more), (vec!["200000000004".to_string()], false));
        let (p, more) = o.page(Some("200000000004"), 2);
        assert!(p.is_empty() && !more);
    }

    #[test]
    fn accounts_as_list_accounts_sends_them() {
        let o = org(&[]);
        let mut a = SimAccount::new("200000000001", "team-001", 1_767_603_600_123_456_789);
        a.state = AccountState::PendingClosure;
        a.joined_method = JoinedMethod::Invited;
        assert_eq!(
            o.account_json(&a),
            json!({
                "Id": "200000000001",
                "Arn": "arn:aws:organizations::123456789012:account/o-exampleorg/200000000001",
                "Email": "aws+team-001@example.com",
                "Name": "team-001",
                "State": "PENDING_CLOSURE",
                "JoinedMethod": "INVITED",
                "JoinedTimestamp": 1_767_603_600.123,
            })
        );
    }

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = encode_token("o-exampleorg", "000000000042");
        assert_eq!(
            decode_token("o-exampleorg", &t).as_deref(),
            Some("000000000042")
        );
        assert_eq!(decode_token("o-otherorg01", &t), None, "another org's");
        let mut forged = t.clone();
        forged.replace_range(5..6, if &t[5..6] == "0" { "1" } else { "0" });
        assert_eq!(decode_token("o-exampleorg", &forged), None);
        for bad in ["", "AAE", "200000000001", "AAEzzzzzzzzzzzzzzzzzzzzzzzz"] {
            assert_eq!(decode_token("o-exampleorg", bad), None, "{bad}");
        }
    }

    #[test]
    fn who_may_list() {
        let mut o = org(&["200000000001"]);
        assert_eq!(o.may_list(ACCOUNT), Ok(()));
        assert_eq!(o.may_list("200000000001"), Err(Refusal::NotAllowed));
        assert_eq!(o.may_list("999999999999"), Err(Refusal::NotAMember));
        o.delegated.insert("200000000001".into());
        assert_eq!(o.may_list("200000000001"), Ok(()));
        o.fault = Some(OrgFault::TooManyRequests);
        assert_eq!(
            o.may_list(ACCOUNT),
            Err(Refusal::Fault(OrgFault::TooManyRequests))
        );
    }

    #[test]
    fn accounts_are_checked_against_the_model() {
        let ok = SimAccount::new("200000000001", "team-001", 0);
        assert_eq!(ok.check(), Ok(()));
        let with = |f: fn(&mut SimAccount)| {
            let mut a = ok.clone();
            f(&mut a);
            a.check()
        };
        assert!(with(|a| a.id = "2000".into()).is_err());
        assert!(with(|a| a.name = String::new()).is_err());
        assert!(with(|a| a.name = "é".into()).is_err());
        assert!(with(|a| a.email = "no-at-sign.example.com".into()).is_err());
        assert!(with(|a| a.email = "a b@example.com".into()).is_err());
        assert!(with(|a| a.email = format!("{}@example.com", "x".repeat(60))).is_err());
        assert!(valid_org_id("o-exampleorg") && valid_org_id("o-a1b2c3d4e5f6"));
        assert!(
            !valid_org_id("o-short")
                && !valid_org_id("o-UPPERCASE1")
                && !valid_org_id("r-exampleorg")
        );
    }
}
