//! An AWS organisation's accounts as targets, through the real SDKs for
//! Organizations, STS and Image Builder against the simulator's
//! organisation: every ACTIVE account the filters select, in each Region,
//! is a target; joins and leaves follow the listing; a member whose role
//! refuses the exporter is that target down alone; a listing that fails
//! keeps the last accounts; and three shards serve, together, exactly what
//! one exporter serves, each series once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::*;
use imagebuilder_exporter::base::clock::{ManualClock, NANOS_PER_SEC};
use imagebuilder_sim::scenario::{self, OrganizationSpec};
use imagebuilder_sim::{OrgFault, SimAccount, Simulator};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// How long a test waits for what a listing every second brings before it
/// fails: a generous bound that only ends a test that would hang.
const PATIENCE: Duration = Duration::from_secs(60);

/// An organisation of the management account and four members (the last a
/// sandbox), each with three builds of one image in each Region.
fn organization(seed: u64) -> scenario::OrganizationWorld {
    scenario::organization(
        at(0.0),
        &OrganizationSpec {
            accounts: 5,
            regions: REGIONS.map(String::from).to_vec(),
            builds: 3,
            images: 1,
            running: 0,
            span: 3600 * NANOS_PER_SEC,
            sandboxes: 1,
            seed,
            ..OrganizationSpec::default()
        },
    )
}

const FILE: &str = "organization:\n  member_role_name: imagebuilder-exporter\n  regions: [us-east-1, eu-west-1]\n  accounts:\n    exclude: [\"sandbox-.*\"]\n";

/// A simulator holding [`organization`], and the IDs of its accounts,
/// the management account first.
fn simulator() -> (Simulator, std::sync::Arc<ManualClock>, Vec<String>) {
    let clock = ManualClock::new(at(0.0));
    let sim = Simulator::new(clock.clone(), sample_world(), 42);
    let world = organization(7);
    let ids = world.account_ids();
    world.install(&sim).expect("the organisation loads");
    (sim, clock, ids)
}

/// An exporter with the organisation file (and `args`), ready.
async fn start(
    sim: Simulator,
    clock: std::sync::Arc<ManualClock>,
    file: &str,
    args: &[&str],
) -> (Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("targets.yml");
    std::fs::write(&path, file).expect("write");
    let path = path.to_str().expect("utf-8").to_string();
    let mut all = vec!["--config.file", &path, "--organization.interval", "1s"];
    all.extend(args);
    let h = World { sim, clock }.spawn_exporter(&all).await;
    h.warm_up();
    wait_ready(&h).await;
    (h, dir)
}

async fn wait_ready(h: &Harness) {
    let started = Instant::now();
    loop {
        let (status, _, body) = get(&format!("{}/-/ready", h.url)).await;
        if status == 200 {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scrapes until `check` holds, at most [`PATIENCE`].
async fn until(h: &Harness, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
    let started = Instant::now();
    loop {
        let m = h.scrape().await;
        if check(&m) {
            return m;
        }
        assert!(started.elapsed() < PATIENCE, "{what}:\n{}", m.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The targets `accounts` make in every Region.
fn targets_of(accounts: &[&str]) -> BTreeSet<String> {
    accounts
        .iter()
        .flat_map(|a| REGIONS.iter().map(move |r| format!("{a}/{r}")))
        .collect()
}

fn served_targets(m: &Metrics) -> BTreeSet<String> {
    m.label_values("imagebuilder_exporter_ready", "target")
        .into_keys()
        .collect()
}

/// Every series that names `target`, of any family.
fn naming(m: &Metrics, target: &str) -> Vec<String> {
    m.text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&format!("target=\"{target}\"")))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_active_selected_account_in_each_region_is_a_target_and_the_listing_follows_joins_and_leaves(
) {
    let (sim, clock, ids) = simulator();
    // The sandbox is excluded by name; one member is suspended.
    let (management, members) = (&ids[0], &ids[1..]);
    let sandbox = &members[3];
    let suspended = &members[2];
    sim.suspend_account(suspended);
    let (h, _dir) = start(sim, clock, FILE, &[]).await;

    let expected = targets_of(&[management, &members[0], &members[1]]);
    let m = until(&h, "every target read", |m| {
        served_targets(m) == expected
            && expected
                .iter()
                .all(|t| m.get("imagebuilder_up", &[("target", t)]) == Some(1.0))
    })
    .await;
    assert_eq!(
        m.get("imagebuilder_exporter_organization_up", &[]),
        Some(1.0)
    );
    assert_eq!(
        m.get("imagebuilder_exporter_organization_accounts", &[]),
        Some(3.0)
    );
    assert_eq!(m.get("imagebuilder_exporter_shard_targets", &[]), Some(6.0));
    // Each account's builds, in each Region, under its own account_id.
    let accounts = m.label_values("imagebuilder_image_build_status", "account_id");
    let want: BTreeSet<&str> = [management, &members[0], &members[1]]
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        accounts.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        want
    );
    for region in REGIONS {
        assert!(
            m.count("imagebuilder_image_build_status", &[("region", region)]) > 0,
            "{region}"
        );
    }
    assert!(served_targets(&m)
        .iter()
        .all(|t| !t.starts_with(sandbox.as_str()) && !t.starts_with(suspended.as_str())));

    // A member joins: its targets come with the next listing, read.
    let newcomer = organization(99)
        .accounts
        .into_iter()
        .nth(1)
        .expect("a member");
    let new_id = newcomer.0.id.clone();
    assert!(!ids.contains(&new_id));
    h.sim
        .join_account(SimAccount::new(&new_id, "team-new", at(0.0)), newcomer.1)
        .expect("joins");
    let joined: BTreeSet<String> = expected.union(&targets_of(&[&new_id])).cloned().collect();
    let m = until(&h, "the newcomer read", |m| {
        served_targets(m) == joined
            && targets_of(&[&new_id])
                .iter()
                .all(|t| m.get("imagebuilder_up", &[("target", t)]) == Some(1.0))
    })
    .await;
    assert_eq!(m.get("imagebuilder_exporter_shard_targets", &[]), Some(8.0));
    let (status, _, _) = get(&format!("{}/-/ready", h.url)).await;
    assert_eq!(status, 200, "a joiner never makes the exporter unready");

    // A member leaves: its targets go, with every series that names them.
    let leaver = members[0].clone();
    assert!(h.sim.leave_account(&leaver));
    let m = until(&h, "the leaver dropped", |m| {
        targets_of(&[&leaver])
            .iter()
            .all(|t| naming(m, t).is_empty())
    })
    .await;
    assert_eq!(
        served_targets(&m),
        joined
            .difference(&targets_of(&[&leaver]))
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        m.count(
            "imagebuilder_image_build_status",
            &[("account_id", &leaver)]
        ),
        0
    );
    assert_eq!(m.get("imagebuilder_exporter_shard_targets", &[]), Some(6.0));
    h.shutdown().await;
}

#[tokio::test]
async fn a_member_whose_role_refuses_the_exporter_is_that_target_down_alone() {
    let (logs, _guard) = logs::Captured::start();
    let (sim, clock, ids) = simulator();
    let refused = ids[1].clone();
    assert!(sim.deny_member_role(&refused));
    let (h, _dir) = start(sim, clock, FILE, &[]).await;
    let down = targets_of(&[&refused]);
    let m = until(&h, "the refused account's targets down", |m| {
        down.iter()
            .all(|t| m.get("imagebuilder_up", &[("target", t)]) == Some(0.0))
    })
    .await;
    for t in &down {
        let denied: f64 = m.sum(
            "imagebuilder_exporter_api_errors_total",
            &[("target", t), ("code", "AccessDenied")],
        );
        assert!(denied >= 1.0, "{t}: {}", naming(&m, t).join("\n"));
    }
    // The others are read, and readiness does not wait for the refused.
    for t in targets_of(&[&ids[0], &ids[2], &ids[3]]) {
        assert_eq!(
            m.get("imagebuilder_up", &[("target", &t)]),
            Some(1.0),
            "{t}"
        );
    }
    let (status, _, _) = get(&format!("{}/-/ready", h.url)).await;
    assert_eq!(status, 200);
    // One warning per target (not per refresh) names the role.
    for _ in 0..3 {
        h.scrape().await;
    }
    let role = format!("arn:aws:iam::{refused}:role/imagebuilder-exporter");
    for t in &down {
        let target = format!("target_name={t}");
        let warned = logs.lines_with("warn", &["msg=\"could not read", &target, &role]);
        assert_eq!(warned.len(), 1, "{t}:\n{}", logs.text());
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_listing_that_fails_keeps_the_last_accounts_and_says_so() {
    let (sim, clock, ids) = simulator();
    let (h, _dir) = start(sim, clock, FILE, &[]).await;
    let expected = targets_of(&[&ids[0], &ids[1], &ids[2], &ids[3]]);
    until(&h, "every target", |m| served_targets(m) == expected).await;

    h.sim.set_organization_fault(Some(OrgFault::AccessDenied));
    // A member leaves meanwhile: unseen while the listing fails.
    assert!(h.sim.leave_account(&ids[1]));
    let m = until(&h, "the listing's failure counted", |m| {
        m.get("imagebuilder_exporter_organization_up", &[]) == Some(0.0)
            && m.get(
                "imagebuilder_exporter_organization_errors_total",
                &[("code", "AccessDeniedException")],
            )
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    assert_eq!(served_targets(&m), expected, "the last accounts are kept");
    assert_eq!(
        m.get("imagebuilder_exporter_organization_accounts", &[]),
        Some(4.0)
    );

    h.sim.set_organization_fault(None);
    let m = until(&h, "listed again", |m| {
        m.get("imagebuilder_exporter_organization_up", &[]) == Some(1.0)
            && served_targets(m) == targets_of(&[&ids[0], &ids[2], &ids[3]])
    })
    .await;
    assert_eq!(
        m.get("imagebuilder_exporter_organization_accounts", &[]),
        Some(3.0)
    );
    h.shutdown().await;
}

/// At start-up a listing refused for good does not hold readiness: the
/// exporter is ready, without the organisation's accounts, and says why.
#[tokio::test]
async fn a_listing_refused_at_start_up_does_not_hold_readiness() {
    let (sim, clock, _) = simulator();
    sim.set_organization_fault(Some(OrgFault::AccessDenied));
    let (h, _dir) = start(sim, clock, FILE, &[]).await;
    let m = h.scrape().await;
    assert_eq!(
        m.get("imagebuilder_exporter_organization_up", &[]),
        Some(0.0)
    );
    assert!(served_targets(&m).is_empty());
    assert_eq!(
        m.get("imagebuilder_exporter_organization_accounts", &[]),
        None
    );
    assert_eq!(m.get("imagebuilder_exporter_shard_targets", &[]), Some(0.0));
    h.shutdown().await;
}

/// What an exporter serves of Image Builder (its own metrics aside), line
/// by line.
fn account_lines(m: &Metrics) -> Vec<String> {
    let mut v: Vec<String> = m
        .text
        .lines()
        .filter(|l| l.starts_with("imagebuilder_") && !l.starts_with("imagebuilder_exporter_"))
        .filter(|l| !l.starts_with("imagebuilder_up"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_serve_together_exactly_what_one_exporter_serves_each_series_once() {
    // One simulator, one organisation: 20 accounts (2 sandboxes excluded)
    // × 2 Regions.
    let clock = ManualClock::new(at(0.0));
    let sim = Simulator::new(clock.clone(), sample_world(), 42);
    let world = scenario::organization(
        at(0.0),
        &OrganizationSpec {
            regions: REGIONS.map(String::from).to_vec(),
            builds: 2,
            images: 1,
            span: 3600 * NANOS_PER_SEC,
            ..OrganizationSpec::default()
        },
    );
    world.install(&sim).expect("loads");
    let running = sim.spawn(([127, 0, 0, 1], 0).into()).await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("targets.yml");
    std::fs::write(&file, FILE).expect("write");
    let file = file.to_str().expect("utf-8");
    let env = [
        ("AWS_ENDPOINT_URL", running.url()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDSHARDS".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "secret".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let one = process::exporter(&["--config.file", file], &env);
    let shards: Vec<_> = (0..3)
        .map(|i| {
            let index = format!("imagebuilder-exporter-{i}");
            process::exporter(
                &[
                    "--config.file",
                    file,
                    "--shard.count",
                    "3",
                    "--shard.index",
                    &index,
                ],
                &env,
            )
        })
        .collect();
    for run in std::iter::once(&one).chain(&shards) {
        run.ready(PATIENCE).await;
    }
    // The simulator's clock stands still: once every target is read, each
    // page is what it will stay.
    let page = |base: String| async move {
        let started = Instant::now();
        loop {
            let (_, _, body) = get(&format!("{base}/metrics")).await;
            let m = Metrics::parse(&body);
            let targets = served_targets(&m);
            if !targets.is_empty()
                && targets
                    .iter()
                    .all(|t| m.get("imagebuilder_up", &[("target", t)]) == Some(1.0))
                && m.sum("imagebuilder_exporter_backfill_pending", &[]) == 0.0
            {
                return m;
            }
            assert!(
                started.elapsed() < PATIENCE * 3,
                "{base} never read everything"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let whole = page(one.base.clone()).await;
    let mut parts = Vec::new();
    for s in &shards {
        parts.push(page(s.base.clone()).await);
    }

    // Targets: each once, all of them.
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in parts.iter().enumerate() {
        let served = m
            .get("imagebuilder_exporter_shard_targets", &[])
            .expect("shard_targets") as usize;
        assert_eq!(served, served_targets(m).len(), "shard {i}");
        assert!(served > 0, "shard {i} serves nothing");
        for t in served_targets(m) {
            assert!(owners.insert(t.clone(), i).is_none(), "{t} in two shards");
        }
    }
    assert_eq!(
        owners.keys().cloned().collect::<BTreeSet<_>>(),
        served_targets(&whole)
    );
    assert_eq!(served_targets(&whole).len(), 36);
    // Series: the shards' pages together are the whole page, each once.
    let mut together: Vec<String> = parts.iter().flat_map(account_lines).collect();
    together.sort();
    assert_eq!(together, account_lines(&whole));
    drop(shards);
    drop(one);
    running.stop().await;
}
