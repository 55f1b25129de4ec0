//! Paging and fan-out: how every listing is read to its end, safely.

use std::collections::HashSet;
use std::future::Future;

use futures_util::stream::{self, StreamExt};

use crate::aws::{ApiError, DataIssue, Operation, Page};

/// Calls in flight at once within a refresh; the client's own concurrency
/// limit is what really bounds the API.
const FAN_OUT: usize = 64;

/// Pages a single listing may take before it is considered endless.
const MAX_PAGES: usize = 2_000;

/// Follows `nextToken` to the end. A token seen twice, or more than
/// `MAX_PAGES` pages, is a malformed answer: the listing fails instead of
/// looping forever.
pub async fn list_all<T, F, Fut>(
    op: Operation,
    mut fetch: F,
) -> Result<(Vec<T>, Vec<DataIssue>), ApiError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, ApiError>>,
{
    let mut items = Vec::new();
    let mut issues = Vec::new();
    let mut seen = HashSet::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = fetch(token.take()).await?;
        items.extend(page.items);
        issues.extend(page.issues);
        match page.next_token.filter(|t| !t.is_empty()) {
            None => return Ok((items, issues)),
            Some(t) => {
                if !seen.insert(t.clone()) {
                    return Err(ApiError::Parse {
                        operation: op,
                        message: format!(
                            "nextToken {:?} was returned twice; the listing would never end",
                            crate::aws::shorten(&t, 40)
                        ),
                    });
                }
                token = Some(t);
            }
        }
    }
    Err(ApiError::Parse {
        operation: op,
        message: format!("more than {MAX_PAGES} pages; the listing was abandoned"),
    })
}

/// Runs `f` over `jobs` with bounded concurrency and collects the results.
pub(super) async fn fan_out<J, R, F, Fut>(jobs: impl IntoIterator<Item = J>, f: F) -> Vec<R>
where
    F: Fn(J) -> Fut,
    Fut: Future<Output = R>,
{
    stream::iter(jobs)
        .map(f)
        .buffer_unordered(FAN_OUT)
        .collect()
        .await
}
