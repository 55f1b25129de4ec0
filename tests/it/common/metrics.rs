//! A scraped page, queried by metric name and labels.

use std::collections::BTreeMap;

/// Samples read by a Prometheus text-format parser.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<prometheus_parse::Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        Metrics {
            text: text.to_string(),
            samples: crate::shared::exposition::samples(text),
        }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a prometheus_parse::Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    /// The one sample of `name` with these labels (others free).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<_> = self.matching(name, labels).collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series",
            found.len()
        );
        found.first().map(|s| value(&s.value))
    }

    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.matching(name, labels).count()
    }

    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| value(&s.value)).sum()
    }

    /// Label values of one label across the series of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.metric == name) {
            if let Some(v) = s.labels.get(label) {
                *out.entry(v.to_string()).or_insert(0) += 1;
            }
        }
        out
    }
}

fn value(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => *x,
        prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => f64::NAN,
    }
}
