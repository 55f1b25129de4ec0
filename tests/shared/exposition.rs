//! `/metrics` read by a real parser of the Prometheus text format, not by
//! string matching: a page it refuses fails the test.

/// The samples of an exposition page; panics on a page the parser refuses.
pub fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .expect("valid exposition text")
        .samples
}
