//! External tools some tests need (promtool, prometheus, cfn-lint).

use std::path::PathBuf;

/// The path of `name` on PATH. Without it, a test is skipped on a
/// developer's machine, but fails where `REQUIRE_TEST_TOOLS=1` (CI, which
/// installs them all).
pub fn require(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("REQUIRE_TEST_TOOLS").as_deref() == Ok("1") {
            panic!("{name} is required (REQUIRE_TEST_TOOLS=1) but not on PATH");
        }
        eprintln!("skipped: {name} is not on PATH (`bash .ci/run` installs it)");
    }
    found
}

/// Whether a finished command succeeded, and what it printed (stdout, then
/// stderr), for assertions that show the tool's own words.
pub fn report(out: &std::process::Output) -> (bool, String) {
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
