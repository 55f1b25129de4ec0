//! A refresh of named builds only: what an Image Builder event asks for.
//!
//! An event is a hint that a build changed. Its build is read as a refresh
//! would read it (its summary, workflow executions, step executions and the
//! details they need), and nothing else: the calls stay proportional to the
//! builds named, whatever the size of the account. A build not tracked yet
//! becomes tracked at once, without waiting for the discovery listing.

use std::collections::HashSet;
use std::sync::Arc;

use super::listing::list_all;
use super::{RefreshReport, Tracker};
use crate::aws::{ImageBuilderApi, Operation};
use crate::model::BuildStatus;
use crate::tracking::tracked::TrackedBuild;
use crate::tracking::views::ImageKey;

/// What a targeted refresh found for each build it was asked about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Targeted {
    /// Builds read (and tracked).
    pub read: Vec<Arc<str>>,
    /// Builds the API does not know (deleted, or never existed), or that
    /// `--filter.image-name` leaves out: ignored.
    pub unknown: Vec<Arc<str>>,
}

impl Tracker {
    /// Reads the builds `arns` (image build version ARNs) as a refresh
    /// would, and only them.
    pub async fn refresh_builds<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        arns: &[Arc<str>],
    ) -> (RefreshReport, Targeted) {
        let mut report = RefreshReport::default();
        let mut targeted = Targeted::default();
        // A build that ended changes its pipeline's counts.
        let mut ended = false;
        // One listing per image version: it holds the build's state.
        let mut versions: Vec<(String, Vec<Arc<str>>)> = Vec::new();
        let mut seen = HashSet::new();
        // Named twice (a burst of events for one build): read once.
        for arn in arns.iter().filter(|a| seen.insert(Arc::clone(a))) {
            let Some((version, _)) = arn.rsplit_once('/') else {
                targeted.unknown.push(arn.clone());
                continue;
            };
            match versions.iter_mut().find(|(v, _)| v == version) {
                Some((_, list)) => list.push(arn.clone()),
                None => versions.push((version.to_string(), vec![arn.clone()])),
            }
        }
        for (version, wanted) in versions {
            let listed = list_all(Operation::ListImageBuildVersions, |t| {
                api.list_image_build_versions(Some(version.clone()), t)
            })
            .await;
            let (builds, issues) = match listed {
                Ok(x) => x,
                Err(e) => {
                    report.fail(e, format!("image build versions of {version}"));
                    continue;
                }
            };
            report.take_issues(issues, &format!("image build versions of {version}"));
            for arn in wanted {
                let found = builds.iter().find(|b| b.arn == arn).filter(|b| {
                    self.cfg
                        .image_filter
                        .as_ref()
                        .is_none_or(|re| re.is_match(&b.name))
                });
                let Some(b) = found else {
                    targeted.unknown.push(arn);
                    continue;
                };
                if let (BuildStatus::Available, Some(created)) = (&b.status, b.date_created) {
                    let slot = self.last_success.entry(ImageKey::of(b)).or_insert(created);
                    *slot = (*slot).max(created);
                }
                let was_terminal = self
                    .builds
                    .get(&arn)
                    .is_some_and(|tb| tb.build.status.is_terminal());
                ended |= b.status.is_terminal() && !was_terminal;
                match self.builds.get_mut(&arn) {
                    Some(tb) => tb.build = b.clone(),
                    None => {
                        // Created after the start: its steps are counted.
                        self.builds.insert(
                            arn.clone(),
                            TrackedBuild {
                                build: b.clone(),
                                workflows: None,
                                frozen: false,
                                baseline: false,
                            },
                        );
                    }
                }
                targeted.read.push(arn);
            }
        }
        let only: HashSet<Arc<str>> = targeted.read.iter().cloned().collect();
        let jobs: Vec<Arc<str>> = self
            .builds
            .values()
            .filter(|b| only.contains(&b.build.arn) && !b.frozen)
            .map(|b| b.build.arn.clone())
            .collect();
        self.list_workflows(api, jobs, &mut report).await;
        self.refresh_steps(api, &mut report, Some(&only)).await;
        self.refresh_limits(api, &mut report, Some(&only)).await;
        if ended {
            self.refresh_pipelines(api, &mut report).await;
        }
        self.count_terminal_steps();
        self.update_views();
        (report, targeted)
    }
}
