//! Image pipelines: read with the discovery listing (one paginated pass),
//! and at once when an event says the service disabled one.
//!
//! A pipeline the service disabled starts no build, so nothing about its
//! image changes and no step fails: only the pipeline's own state shows it.

use std::collections::HashMap;
use std::sync::Arc;

use super::listing::list_all;
use super::{RefreshReport, Tracker};
use crate::aws::{ImageBuilderApi, Operation};
use crate::model::{parse_arn, Build, Pipeline};

impl Tracker {
    /// Lists every pipeline of the account. A listing that fails keeps the
    /// last known pipelines; one that skipped items keeps the previous
    /// state of pipelines it did not list (they may be those items).
    pub(crate) async fn refresh_pipelines<C: ImageBuilderApi>(
        &mut self,
        api: &C,
        report: &mut RefreshReport,
    ) {
        match list_all(Operation::ListImagePipelines, |t| {
            api.list_image_pipelines(t)
        })
        .await
        {
            Ok((listed, issues)) => {
                let complete = report.take_issues(issues, "the account's image pipelines");
                let mut by_arn: HashMap<Arc<str>, Pipeline> = if complete {
                    HashMap::new()
                } else {
                    std::mem::take(&mut self.pipelines)
                        .into_iter()
                        .map(|p| (p.arn.clone(), p))
                        .collect()
                };
                for p in listed {
                    by_arn.insert(p.arn.clone(), p);
                }
                let mut pipelines: Vec<Pipeline> = by_arn.into_values().collect();
                pipelines.sort_by(|a, b| a.arn.cmp(&b.arn));
                self.pipelines = pipelines;
            }
            Err(e) => report.fail(e, "the account's image pipelines"),
        }
    }

    /// Reads the pipelines again (an event said one was disabled), and
    /// serves the result. Whatever the event's detail said, the listing is
    /// what is served.
    pub async fn refresh_pipelines_now<C: ImageBuilderApi>(&mut self, api: &C) -> RefreshReport {
        let mut report = RefreshReport::default();
        self.refresh_pipelines(api, &mut report).await;
        self.update_views();
        report
    }

    /// The ARNs of the pipelines last listed.
    pub fn pipeline_arns(&self) -> Vec<String> {
        self.pipelines.iter().map(|p| p.arn.to_string()).collect()
    }

    /// Remembers the image names a listing of builds shows, by the name
    /// segment of their ARNs: recipe ARNs write a name the same way
    /// (lower-case, spaces as hyphens), so a pipeline's series carry the
    /// image name its builds carry.
    pub(super) fn learn_image_names<'a>(&mut self, builds: impl IntoIterator<Item = &'a Build>) {
        for b in builds {
            if let Some(p) = parse_arn(&b.arn) {
                if !self.image_names.contains_key(p.name) {
                    self.image_names.insert(Arc::from(p.name), b.name.clone());
                }
            }
        }
    }
}
