//! What this build is: its version, git revision and build date (set by
//! `build.rs`, which falls back to `unknown` when git cannot tell), so that
//! `--version`, the landing page and the start-up log name the exact build.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("IMAGEBUILDER_EXPORTER_REVISION");
/// UTC, RFC 3339 to the second.
pub const BUILD_DATE: &str = env!("IMAGEBUILDER_EXPORTER_BUILD_DATE");

/// `--version`'s text after the program's name.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("IMAGEBUILDER_EXPORTER_REVISION"),
    ", built ",
    env!("IMAGEBUILDER_EXPORTER_BUILD_DATE"),
    ")"
);
