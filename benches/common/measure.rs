//! What the benches measure the same way: a process's memory and latency
//! quantiles. Included by each bench with `#[path]`; not a bench itself
//! (cargo only takes `benches/*.rs` as benches).

use std::time::Duration;

/// Resident memory of process `pid` now and at its peak (`VmRSS`,
/// `VmHWM` of `/proc/<pid>/status`), in bytes; 0 for what cannot be read
/// (a process that has exited).
pub fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The `q` quantile (0 to 1) of `sorted`, which is not empty: the
/// smallest value with at least that share of the values at or below it.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}
