//! Build metadata for `--version`, the landing page and the start-up log:
//! the git revision and the build date.
//!
//! Falls back gracefully, so that every way of building works:
//! * the revision is `IMAGEBUILDER_EXPORTER_REVISION` when set (the
//!   container build passes it: its context has no `.git`), else what
//!   `git rev-parse` says of this crate's own repository, else `unknown`
//!   (a tarball, no git installed);
//! * the date is `SOURCE_DATE_EPOCH` when set (reproducible builds), else
//!   the time this script runs.
//!
//! Only std: no build dependency to compile. The script runs again when the
//! checked-out commit changes, not at every build (a new date would rebuild
//! the crate each time).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set by the container build (`--build-arg REVISION=...`).
// tests/it/cli.rs includes this file for the functions below `main`; the
// entry point and its variable are cargo's alone.
#[cfg(not(test))]
const REVISION_VAR: &str = "IMAGEBUILDER_EXPORTER_REVISION";

#[cfg(not(test))]
fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={REVISION_VAR}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let from_env = std::env::var(REVISION_VAR)
        .ok()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty() && r != "unknown");
    let revision = match from_env {
        Some(r) => r,
        None => {
            // Only paths that exist: cargo runs the script at every build
            // for a path that does not.
            for path in watched(&dir) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            revision(&dir).unwrap_or_else(|| "unknown".into())
        }
    };
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=IMAGEBUILDER_EXPORTER_REVISION={revision}");
    println!(
        "cargo:rustc-env=IMAGEBUILDER_EXPORTER_BUILD_DATE={}",
        utc_date(epoch)
    );
}

/// `git` in `dir`, its output if it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// True if `dir` is the top of its own git work tree: a crate unpacked
/// inside another repository must not take that repository's revision.
fn own_repository(dir: &Path) -> bool {
    let top = git(dir, &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    match (
        top.and_then(|t| t.canonicalize().ok()),
        dir.canonicalize().ok(),
    ) {
        (Some(top), Some(dir)) => top == dir,
        _ => false,
    }
}

/// The abbreviated commit `dir` has checked out, if it is a repository of
/// its own and git runs.
pub fn revision(dir: &Path) -> Option<String> {
    if !own_repository(dir) {
        return None;
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"])
}

/// The files whose change means another commit: HEAD, the branch it points
/// to, and the packed refs (in a worktree, git says where they are).
pub fn watched(dir: &Path) -> Vec<PathBuf> {
    if !own_repository(dir) {
        return Vec::new();
    }
    let mut refs = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["rev-parse", "--symbolic-full-name", "HEAD"]) {
        if branch.starts_with("refs/") {
            refs.push(branch);
        }
    }
    refs.iter()
        .filter_map(|r| git(dir, &["rev-parse", "--git-path", r]))
        .map(|p| {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                dir.join(p)
            }
        })
        .filter(|p| p.exists())
        .collect()
}

/// `2026-12-04T14:40:45Z` for Unix time `secs` (the civil calendar from
/// days, as in Howard Hinnant's `civil_from_days`).
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}
