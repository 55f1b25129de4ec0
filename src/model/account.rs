//! The member accounts of an AWS organisation (`organizations:ListAccounts`):
//! with an `organization` section in `--config.file`, each ACTIVE account
//! times each configured Region is a target.

open_enum! {
    /// `AccountState`. (`Status`, which the service retired on September 9,
    /// 2026, is not read.)
    AccountState {
        PendingActivation => "PENDING_ACTIVATION",
        Active => "ACTIVE",
        Suspended => "SUSPENDED",
        PendingClosure => "PENDING_CLOSURE",
        Closed => "CLOSED",
    }
}

/// One account of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Twelve digits.
    pub id: String,
    /// The account's friendly name; may be empty (the API marks it
    /// sensitive and optional).
    pub name: String,
    /// `None` when the answer carried no state: such an account is not
    /// exported (only ACTIVE ones are).
    pub state: Option<AccountState>,
    /// The partition of its ARN (`aws`, `aws-us-gov`, `aws-cn`): the
    /// partition of the role assumed in it.
    pub partition: String,
}

impl Account {
    /// Whether the account is exported: only ACTIVE accounts can be read
    /// (a suspended one refuses every call).
    pub fn is_active(&self) -> bool {
        self.state == Some(AccountState::Active)
    }
}
