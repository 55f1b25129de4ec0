//! What both test binaries use, each file of it whole: the HTTP client, the
//! programs' paths and a guard that ends one, the external tools, the
//! documentation's pages and the exposition parser. (The benchmarks include
//! `http.rs` and `running.rs`.) What only one binary uses is in its own `common`
//! (`tests/it/common/`, `tests/artifacts/common/`).

pub mod bins;
pub mod docs;
pub mod exposition;
pub mod http;
pub mod running;
pub mod tools;
