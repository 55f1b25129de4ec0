//! The simulator's organisation through the real SDK clients: Organizations'
//! `ListAccounts` (pages, fields, faults, bad input) as the exporter's
//! discovery will read it, and a member role assumed with the SDK's own
//! AssumeRole provider reading that account's builds in the Region it
//! signs for.

use aws_sdk_organizations::config::retry::RetryConfig;
use aws_sdk_organizations::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::{
    Account, AccountJoinedMethod, AccountState as SdkState, InvalidInputExceptionReason,
};

use crate::clock::{ManualClock, Nanos, NANOS_PER_SEC};
use crate::org::{AccountState, JoinedMethod, OrgFault, SimAccount};
use crate::scenario::{self, OrganizationSpec, ACCOUNT};
use crate::{CallScope, RunningSimulator, Simulator, Store};

/// 2026-12-04T12:00:00Z.
const T0: Nanos = 1_796_385_600 * NANOS_PER_SEC;
const ROLE_NAME: &str = "imagebuilder-exporter";

fn spec(accounts: usize, builds: usize) -> OrganizationSpec {
    OrganizationSpec {
        accounts,
        builds,
        seed: 11,
        ..OrganizationSpec::default()
    }
}

/// A simulator serving the organisation `spec` makes.
async fn start(spec: &OrganizationSpec) -> (Simulator, RunningSimulator) {
    let sim = Simulator::new(ManualClock::new(T0), Store::default(), 3);
    scenario::organization(T0, spec).install(&sim).unwrap();
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    (sim, running)
}

/// An Organizations client signing with static credentials `key` (those
/// of the management account, unless the test says they are a role's),
/// without retries unless `retries`.
fn organizations(
    sim: &RunningSimulator,
    key: &str,
    retries: bool,
) -> aws_sdk_organizations::Client {
    let retry = if retries {
        RetryConfig::standard()
    } else {
        RetryConfig::disabled()
    };
    let config = aws_sdk_organizations::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(sim.url())
        .retry_config(retry)
        .credentials_provider(Credentials::new(key, "secret", None, None, "static"))
        .build();
    aws_sdk_organizations::Client::from_conf(config)
}

/// Every account, following `NextToken`, `max` per page; and the pages.
async fn list_all(
    client: &aws_sdk_organizations::Client,
    max: Option<i32>,
) -> (Vec<Account>, usize) {
    let pages: Vec<_> = client
        .list_accounts()
        .set_max_results(max)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let n = pages.len();
    (
        pages
            .into_iter()
            .flat_map(|p| p.accounts.unwrap_or_default())
            .collect(),
        n,
    )
}

fn ids(accounts: &[Account]) -> Vec<&str> {
    accounts.iter().filter_map(Account::id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_1_and_20_list_every_account_with_every_field() {
    let (sim, running) = start(&spec(45, 0)).await;
    let client = organizations(&running, "AKIDMANAGEMENT", false);
    let expected = sim.organization_accounts();
    assert_eq!(expected.len(), 45);
    let org = sim.organization_id();

    let (by_one, pages) = list_all(&client, Some(1)).await;
    assert_eq!(pages, 45);
    assert_eq!(sim.calls_to("ListAccounts"), 45, "no empty last page");
    let (by_twenty, pages) = list_all(&client, Some(20)).await;
    assert_eq!(pages, 3);
    let (by_default, pages) = list_all(&client, None).await;
    assert_eq!(pages, 3, "20 a page when MaxResults is absent");
    assert_eq!(by_one, by_twenty);
    assert_eq!(by_one, by_default);

    let want: Vec<&str> = expected.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids(&by_one), want);
    for (got, sim_account) in by_one.iter().zip(&expected) {
        assert_eq!(got.name(), Some(sim_account.name.as_str()));
        assert_eq!(got.email(), Some(sim_account.email.as_str()));
        assert_eq!(
            got.arn(),
            Some(
                format!(
                    "arn:aws:organizations::{ACCOUNT}:account/{org}/{}",
                    sim_account.id
                )
                .as_str()
            )
        );
        assert_eq!(got.state(), Some(&SdkState::Active));
        // Retired on 2026-09-09: not sent.
        assert_eq!(got.status(), None);
        let joined = got.joined_timestamp().expect("JoinedTimestamp");
        assert_eq!(
            joined.as_nanos(),
            i128::from(sim_account.joined),
            "{}",
            sim_account.name
        );
        assert_eq!(
            got.joined_method(),
            Some(match sim_account.joined_method {
                JoinedMethod::Created => &AccountJoinedMethod::Created,
                JoinedMethod::Invited => &AccountJoinedMethod::Invited,
            })
        );
    }
    // The scenario's names: the management account, teams, two sandboxes.
    let names: Vec<&str> = by_one.iter().filter_map(Account::name).collect();
    assert!(names.contains(&"management"));
    assert!(names.contains(&"team-042"));
    assert_eq!(
        names.iter().filter(|n| n.starts_with("sandbox-")).count(),
        2
    );
    assert!(by_one
        .iter()
        .any(|a| a.joined_method() == Some(&AccountJoinedMethod::Invited)));
    let org_pattern = regex::Regex::new(r"^o-[a-z0-9]{10,32}$").unwrap();
    assert!(org_pattern.is_match(&org), "{org}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_leaves_and_state_changes_show_in_the_listing() {
    let (sim, running) = start(&spec(5, 0)).await;
    let client = organizations(&running, "AKIDMANAGEMENT", false);
    let members: Vec<String> = sim
        .organization_accounts()
        .into_iter()
        .map(|a| a.id)
        .filter(|id| id != ACCOUNT)
        .collect();

    let mut newcomer = SimAccount::new("999900000001", "team-new", T0);
    newcomer.joined_method = JoinedMethod::Invited;
    sim.join_account(newcomer, []).unwrap();
    assert!(sim.leave_account(&members[0]));
    assert!(!sim.leave_account(&members[0]), "already gone");
    assert!(!sim.leave_account(ACCOUNT), "the management account stays");
    assert!(sim.suspend_account(&members[1]));
    assert!(sim.set_account_state(&members[2], AccountState::Closed));
    assert!(!sim.suspend_account("000000000000"));

    let (accounts, _) = list_all(&client, Some(2)).await;
    let listed = ids(&accounts);
    assert_eq!(listed.len(), 5);
    assert!(!listed.contains(&members[0].as_str()));
    let state = |id: &str| {
        accounts
            .iter()
            .find(|a| a.id() == Some(id))
            .and_then(|a| a.state().cloned())
    };
    assert_eq!(state("999900000001"), Some(SdkState::Active));
    assert_eq!(state(&members[1]), Some(SdkState::Suspended));
    assert_eq!(state(&members[2]), Some(SdkState::Closed));
    assert_eq!(state(&members[3]), Some(SdkState::Active));
    let newcomer = accounts
        .iter()
        .find(|a| a.id() == Some("999900000001"))
        .unwrap();
    assert_eq!(
        newcomer.joined_method(),
        Some(&AccountJoinedMethod::Invited)
    );
    assert_eq!(
        newcomer.joined_timestamp().map(|t| t.secs()),
        Some(T0 / NANOS_PER_SEC)
    );

    // Back again.
    sim.join_account(SimAccount::new(&members[0], "team-001", T0), [])
        .unwrap();
    let (accounts, _) = list_all(&client, None).await;
    assert!(ids(&accounts).contains(&members[0].as_str()));
    // An account that breaks the model is refused.
    assert!(sim
        .join_account(SimAccount::new("12345", "short", T0), [])
        .is_err());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_faults_reach_the_sdk_with_the_model_s_codes() {
    let (sim, running) = start(&spec(3, 0)).await;
    let client = organizations(&running, "AKIDMANAGEMENT", false);
    for (fault, code, status) in [
        (OrgFault::AccessDenied, "AccessDeniedException", 400),
        (OrgFault::TooManyRequests, "TooManyRequestsException", 400),
        (OrgFault::NotInUse, "AWSOrganizationsNotInUseException", 400),
        (OrgFault::ServiceException, "ServiceException", 500),
    ] {
        sim.set_organization_fault(Some(fault));
        let err = client.list_accounts().send().await.unwrap_err();
        let raw = err.raw_response().map(|r| r.status().as_u16());
        let err = err.into_service_error();
        assert_eq!((err.code(), raw), (Some(code), Some(status)), "{err:?}");
        let typed = match fault {
            OrgFault::AccessDenied => err.is_access_denied_exception(),
            OrgFault::TooManyRequests => err.is_too_many_requests_exception(),
            OrgFault::NotInUse => err.is_aws_organizations_not_in_use_exception(),
            OrgFault::ServiceException => err.is_service_exception(),
        };
        assert!(typed, "{err:?}");
        assert!(err.message().is_some_and(|m| !m.is_empty()));
    }
    // The SDK retries throttling (3 attempts in all), then gives up.
    sim.set_organization_fault(Some(OrgFault::TooManyRequests));
    sim.reset_calls();
    let retrying = organizations(&running, "AKIDMANAGEMENT", true);
    let err = retrying.list_accounts().send().await.unwrap_err();
    assert_eq!(err.code(), Some("TooManyRequestsException"));
    assert_eq!(sim.calls_to("ListAccounts"), 3);
    sim.set_organization_fault(None);
    assert_eq!(list_all(&client, None).await.0.len(), 3);

    // Who asks: a member is denied, unless it is a delegated
    // administrator; an account outside the organisation is in none.
    let member = sim.organization_accounts()[1].id.clone();
    crate::sync::lock(&sim.state.assumed).insert("ASIAMEMBER".into(), member.clone());
    crate::sync::lock(&sim.state.assumed).insert("ASIASTRANGER".into(), "444455556666".into());
    let err = organizations(&running, "ASIAMEMBER", false)
        .list_accounts()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");
    let err = organizations(&running, "ASIASTRANGER", false)
        .list_accounts()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_aws_organizations_not_in_use_exception(), "{err:?}");
    assert!(sim.delegate_administrator(&member));
    let by_member = list_all(&organizations(&running, "ASIAMEMBER", false), None).await;
    assert_eq!(by_member.0.len(), 3);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_max_results_and_tokens_are_refused_as_the_model_says() {
    let (sim, running) = start(&spec(25, 0)).await;
    let client = organizations(&running, "AKIDMANAGEMENT", false);
    for (max, reason) in [
        (0, InvalidInputExceptionReason::MinValueExceeded),
        (21, InvalidInputExceptionReason::MaxValueExceeded),
        (-3, InvalidInputExceptionReason::MinValueExceeded),
    ] {
        let err = client
            .list_accounts()
            .max_results(max)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        let aws_sdk_organizations::operation::list_accounts::ListAccountsError::InvalidInputException(e) = &err else {
            panic!("{max}: {err:?}");
        };
        assert_eq!(e.reason(), Some(&reason), "{max}");
    }
    let first = client.list_accounts().send().await.unwrap();
    let token = first.next_token().expect("25 accounts: a second page");
    let mut forged = token.to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in ["not-a-token", forged.as_str(), ""] {
        let err = client
            .list_accounts()
            .next_token(bad)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        let aws_sdk_organizations::operation::list_accounts::ListAccountsError::InvalidInputException(e) = &err else {
            panic!("{bad}: {err:?}");
        };
        assert_eq!(
            e.reason(),
            Some(&InvalidInputExceptionReason::InvalidPaginationToken),
            "{bad}"
        );
    }
    // Another organisation's token is not this one's.
    assert!(sim.set_organization_id("o-0therorg00"));
    let err = client
        .list_accounts()
        .next_token(token)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_input_exception(), "{err:?}");
    running.stop().await;
}

/// The SDK's AssumeRole provider for `role`, from static credentials,
/// STS at the simulator.
async fn assumed(
    running: &RunningSimulator,
    role: &str,
) -> aws_sdk_imagebuilder::config::SharedCredentialsProvider {
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(running.url())
        .credentials_provider(Credentials::new(
            "AKIDEXPORTER",
            "secret",
            None,
            None,
            "static",
        ))
        .load()
        .await;
    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name("ibx-test")
        .configure(&base)
        .build()
        .await;
    aws_sdk_imagebuilder::config::SharedCredentialsProvider::new(provider)
}

fn imagebuilder(
    running: &RunningSimulator,
    region: &str,
    credentials: aws_sdk_imagebuilder::config::SharedCredentialsProvider,
) -> aws_sdk_imagebuilder::Client {
    let config = aws_sdk_imagebuilder::Config::builder()
        .behavior_version(aws_sdk_imagebuilder::config::BehaviorVersion::latest())
        .region(aws_sdk_imagebuilder::config::Region::new(
            region.to_string(),
        ))
        .endpoint_url(running.url())
        .retry_config(aws_sdk_imagebuilder::config::retry::RetryConfig::disabled())
        .credentials_provider(credentials)
        .build();
    aws_sdk_imagebuilder::Client::from_conf(config)
}

/// The ARNs of every build `client` lists.
async fn build_arns(client: &aws_sdk_imagebuilder::Client) -> Result<Vec<String>, String> {
    let mut arns = Vec::new();
    let mut pages = client.list_image_build_versions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| e.code().unwrap_or("(no code)").to_string())?;
        arns.extend(
            page.image_summary_list()
                .iter()
                .filter_map(|s| s.arn().map(str::to_string)),
        );
    }
    Ok(arns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_role_reads_its_own_builds_in_the_region_it_signs_for() {
    let (sim, running) = start(&spec(4, 30)).await;
    let accounts = sim.organization_accounts();
    let member = &accounts[1].id;
    let role = sim.member_role_arn(member).unwrap();
    assert_eq!(role, format!("arn:aws:iam::{member}:role/{ROLE_NAME}"));
    let creds = assumed(&running, &role).await;
    // A session handed out now, kept for the end.
    let session = {
        use aws_sdk_imagebuilder::config::ProvideCredentials;
        aws_sdk_imagebuilder::config::SharedCredentialsProvider::new(
            creds.provide_credentials().await.unwrap(),
        )
    };

    for region in ["eu-west-1", "us-east-1"] {
        let arns = build_arns(&imagebuilder(&running, region, creds.clone()))
            .await
            .unwrap();
        // 30 builds, over 5 images: two pages of 25 at most.
        assert_eq!(arns.len(), 30, "{region}");
        let prefix = format!("arn:aws:imagebuilder:{region}:{member}:image/");
        assert!(arns.iter().all(|a| a.starts_with(&prefix)), "{arns:?}");
    }
    // A Region the account has no builds in: nothing, not another
    // account's builds.
    let elsewhere = imagebuilder(&running, "ap-south-1", creds.clone());
    assert_eq!(build_arns(&elsewhere).await.unwrap(), Vec::<String>::new());
    // The management account's own credentials read its own builds.
    let management = aws_sdk_imagebuilder::config::SharedCredentialsProvider::new(
        Credentials::new("AKIDEXPORTER", "secret", None, None, "static"),
    );
    let own = build_arns(&imagebuilder(&running, "eu-west-1", management))
        .await
        .unwrap();
    assert_eq!(own.len(), 30);
    assert!(own[0].contains(&format!(":eu-west-1:{ACCOUNT}:")));

    let scopes = sim.calls_by_scope();
    let calls = |account: &str, region: &str, op: &str| {
        scopes
            .get(&CallScope::new(account, region, op))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(calls(member, "eu-west-1", "ListImageBuildVersions"), 2);
    assert_eq!(calls(member, "us-east-1", "ListImageBuildVersions"), 2);
    assert_eq!(calls(member, "ap-south-1", "ListImageBuildVersions"), 1);
    assert_eq!(calls(ACCOUNT, "eu-west-1", "ListImageBuildVersions"), 2);
    // Each client asked for a session: every AssumeRole is counted
    // against the member, in the Region STS was signed for.
    let sessions: Vec<&CallScope> = scopes
        .keys()
        .filter(|s| s.operation == "AssumeRole")
        .collect();
    assert!(!sessions.is_empty());
    assert!(
        sessions
            .iter()
            .all(|s| s.account == *member && s.region == "eu-west-1"),
        "{sessions:?}"
    );
    assert_eq!(
        scopes
            .iter()
            .filter(|(s, _)| s.operation == "ListImageBuildVersions")
            .map(|(_, n)| n)
            .sum::<u64>(),
        7
    );

    // Suspended: the session is refused by Image Builder.
    assert!(sim.suspend_account(member));
    let err = build_arns(&imagebuilder(&running, "eu-west-1", creds.clone()))
        .await
        .unwrap_err();
    assert_eq!(err, "SubscriptionRequiredException");
    assert!(sim.set_account_state(member, AccountState::Active));
    assert!(
        build_arns(&imagebuilder(&running, "eu-west-1", creds.clone()))
            .await
            .is_ok()
    );

    // Another member's role denies the exporter: AssumeRole is refused.
    let denied = &accounts[2].id;
    assert!(sim.deny_member_role(denied));
    let refused = assumed(&running, &sim.member_role_arn(denied).unwrap()).await;
    let err = build_arns(&imagebuilder(&running, "eu-west-1", refused))
        .await
        .unwrap_err();
    assert_eq!(err, "(no code)", "a credentials error, not a service's");
    let provider_error = {
        use aws_sdk_imagebuilder::config::ProvideCredentials;
        assumed(&running, &sim.member_role_arn(denied).unwrap())
            .await
            .provide_credentials()
            .await
            .unwrap_err()
    };
    assert!(
        format!(
            "{}",
            aws_sdk_imagebuilder::error::DisplayErrorContext(&provider_error)
        )
        .contains("AccessDenied"),
        "{provider_error:?}"
    );
    sim.undeny_role(&sim.member_role_arn(denied).unwrap());
    let trusted = assumed(&running, &sim.member_role_arn(denied).unwrap()).await;
    assert_eq!(
        build_arns(&imagebuilder(&running, "eu-west-1", trusted))
            .await
            .unwrap()
            .len(),
        30
    );

    // A member that left: no new session; the one it has still works
    // until it expires.
    assert!(sim.leave_account(member));
    let fresh = assumed(&running, &role).await;
    assert!(build_arns(&imagebuilder(&running, "eu-west-1", fresh))
        .await
        .is_err());
    assert_eq!(
        build_arns(&imagebuilder(&running, "eu-west-1", session))
            .await
            .unwrap()
            .len(),
        30
    );
    running.stop().await;
}
