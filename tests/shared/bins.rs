//! The programs the tests run: the exporter's executable, and the
//! simulator's, built by cargo on demand.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The exporter binary of this package, as cargo built it for the tests.
pub const EXPORTER: &str = env!("CARGO_BIN_EXE_imagebuilder-exporter");

/// The `imagebuilder-sim` binary, up to date: asked of cargo once per test
/// process.
///
/// It belongs to another package of the workspace (crates/imagebuilder-sim),
/// and cargo gives a package's tests only that package's binaries
/// (`CARGO_BIN_EXE_…`). So the tests run `cargo build -p imagebuilder-sim`
/// (cargo does not hold the build directory's lock while tests run) and
/// take the executable's path from cargo's own report, wherever the target
/// directory is: nothing to do when the binary is fresh, a rebuild when one
/// test binary is run after a change to the simulator, never a stale copy.
pub fn simulator_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--locked",
            "--package",
            "imagebuilder-sim",
            "--bin",
            "imagebuilder-sim",
            "--message-format=json",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo build -p imagebuilder-sim failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "imagebuilder-sim"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the simulator's executable")
    })
}
