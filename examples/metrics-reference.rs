//! Writes the generated tables of docs/metrics.md from the metric table
//! (src/metrics/family.rs), leaving the prose around them as it is:
//!
//! ```text
//! cargo run --example metrics-reference           # update the file
//! cargo run --example metrics-reference -- --check  # exit status 1 if stale
//! ```
//!
//! An example rather than a binary of the package: it is a tool for the
//! people who change the contract, not something the exporter ships.

use std::path::Path;
use std::process::ExitCode;

use imagebuilder_exporter::metrics::reference::{update, COMMAND};

fn main() -> ExitCode {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let check = std::env::args().skip(1).any(|a| a == "--check");
    let doc = match std::fs::read_to_string(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let fresh = match update(&doc) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    if fresh == doc {
        println!("{} is up to date", path.display());
        return ExitCode::SUCCESS;
    }
    if check {
        eprintln!("{} is stale: run `{COMMAND}`", path.display());
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&path, fresh) {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("{} updated", path.display());
    ExitCode::SUCCESS
}
