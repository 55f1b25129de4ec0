//! Organizations' `Account` → [`Account`].

use aws_sdk_organizations::types::Account as SdkAccount;

use super::Issues;
use crate::aws::issue_kind::{BAD_VALUE, MISSING_FIELD, UNUSABLE_ITEM};
use crate::model::{Account, AccountState};

/// Skipped (with an issue) without a twelve-digit ID: no role ARN can be
/// made for it. A missing state keeps the account, unexported.
pub fn account(a: &SdkAccount, issues: &mut Issues) -> Option<Account> {
    let id = issues.required("Id", a.id(), "account")?;
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        issues.push(
            UNUSABLE_ITEM,
            "Id",
            format!("{id:?} is not a twelve-digit account ID; item skipped"),
        );
        return None;
    }
    let state = match a.state() {
        Some(s) => {
            let state = AccountState::parse(s.as_str());
            if matches!(state, AccountState::Other(_)) {
                issues.push(
                    BAD_VALUE,
                    "State",
                    format!("{id}: unknown state {state:?}; not exported"),
                );
            }
            Some(state)
        }
        None => {
            issues.push(
                MISSING_FIELD,
                "State",
                format!("{id}: no state; not exported"),
            );
            None
        }
    };
    // `arn:PARTITION:organizations::…`; the commercial partition without one.
    let partition = a
        .arn()
        .and_then(|arn| arn.strip_prefix("arn:"))
        .and_then(|rest| rest.split(':').next())
        .filter(|p| !p.is_empty())
        .unwrap_or("aws");
    Some(Account {
        id: id.to_string(),
        name: a.name().unwrap_or_default().to_string(),
        state,
        partition: partition.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Operation;
    use aws_sdk_organizations::types::AccountState as SdkState;

    fn convert(a: SdkAccount) -> (Option<Account>, Vec<String>) {
        let mut issues = Issues::new(Operation::ListAccounts);
        let out = account(&a, &mut issues);
        (out, issues.list.iter().map(|i| i.to_string()).collect())
    }

    #[test]
    fn an_active_account_is_read_whole() {
        let (a, issues) = convert(
            SdkAccount::builder()
                .id("210987654321")
                .name("team-007")
                .arn("arn:aws-us-gov:organizations::111111111111:account/o-abcdefghij/210987654321")
                .state(SdkState::Active)
                .build(),
        );
        let a = a.expect("kept");
        assert_eq!(
            (a.id.as_str(), a.name.as_str()),
            ("210987654321", "team-007")
        );
        assert_eq!(a.partition, "aws-us-gov");
        assert!(a.is_active());
        assert!(issues.is_empty(), "{issues:?}");
    }

    #[test]
    fn states_other_than_active_are_kept_but_not_exported() {
        for (state, known) in [
            (SdkState::Suspended, true),
            (SdkState::PendingClosure, true),
            (SdkState::Closed, true),
            (SdkState::from("MIGRATING"), false),
        ] {
            let (a, issues) = convert(
                SdkAccount::builder()
                    .id("210987654321")
                    .state(state.clone())
                    .build(),
            );
            let a = a.expect("kept");
            assert!(!a.is_active(), "{state:?}");
            assert_eq!(issues.is_empty(), known, "{state:?}: {issues:?}");
        }
    }

    #[test]
    fn an_account_without_a_usable_id_is_skipped_and_one_without_state_unexported() {
        for id in [None, Some(""), Some("12345"), Some("21098765432x")] {
            let mut b = SdkAccount::builder().state(SdkState::Active);
            if let Some(id) = id {
                b = b.id(id);
            }
            let (a, issues) = convert(b.build());
            assert_eq!(a, None, "{id:?}");
            assert!(
                issues[0].contains("unusable_item in field Id"),
                "{issues:?}"
            );
        }
        let (a, issues) = convert(SdkAccount::builder().id("210987654321").build());
        assert_eq!(a.map(|a| a.is_active()), Some(false));
        assert!(
            issues[0].contains("missing_field in field State"),
            "{issues:?}"
        );
    }
}
