//! The Prometheus Operator's copies of the rules and the dashboard, under
//! `deploy/kubernetes/components/`: a PrometheusRule per rules file of
//! `alerts/`, and a ConfigMap holding `dashboards/imagebuilder.json` for
//! Grafana's dashboard sidecar.
//!
//! Kustomize reads no file outside its directory, so these are generated
//! from the sources and checked in. This test is the generator: with
//! `UPDATE_GENERATED=1` it writes them, and otherwise fails while they
//! differ from what the sources give. Whatever wrote them, the other tests
//! check what a cluster gets: exactly the groups of each rules file, and the
//! dashboard's bytes unchanged. (`.ci/lint-deploy.sh` renders them with
//! `kubectl kustomize` and validates them against the operator's CRDs.)

use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const REGENERATE: &str = "UPDATE_GENERATED=1 cargo test --test artifacts kubernetes::";

/// The label every resource of the kustomization carries.
const NAME_LABEL: &str = "app.kubernetes.io/name: imagebuilder-exporter";

/// (rules file, PrometheusRule file, the PrometheusRule's name)
const RULES: [(&str, &str, &str); 2] = [
    (
        "alerts/imagebuilder.rules.yml",
        "deploy/kubernetes/components/alerts/prometheusrule.yaml",
        "imagebuilder-exporter",
    ),
    (
        "alerts/imagebuilder-events.rules.yml",
        "deploy/kubernetes/components/event-alerts/prometheusrule.yaml",
        "imagebuilder-exporter-events",
    ),
];

const DASHBOARD: &str = "dashboards/imagebuilder.json";
const DASHBOARD_CONFIG_MAP: &str = "deploy/kubernetes/components/dashboard/configmap.yaml";
const DASHBOARD_KEY: &str = "imagebuilder.json";

/// The most that client-side `kubectl apply` can record of an object: its
/// last-applied-configuration annotation is limited to 256 KiB.
const LAST_APPLIED_LIMIT: usize = 262_144;

fn header(source: &str) -> String {
    format!(
        "# GENERATED from {source} by tests/artifacts/kubernetes.rs: do not edit.\n\
         # After changing {source}, run: {REGENERATE}\n"
    )
}

/// Every line indented by `by` spaces; empty lines stay empty.
fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{:by$}{l}\n", "")
            }
        })
        .collect()
}

/// The PrometheusRule of a rules file: its `groups:` block, as written
/// (comments included), under `spec:`.
fn prometheus_rule(source: &str, name: &str) -> String {
    let text = read(source);
    let at = text
        .find("\ngroups:\n")
        .unwrap_or_else(|| panic!("{source}: no top-level groups:"))
        + 1;
    format!(
        "{}apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  name: {name}\n  labels:\n    {NAME_LABEL}\n\
         spec:\n{}",
        header(source),
        indent(&text[at..], 2)
    )
}

/// The dashboard's ConfigMap: the JSON as a literal block scalar, which
/// keeps every byte (the chomping indicator keeps the trailing newlines).
fn dashboard_config_map() -> String {
    let json = read(DASHBOARD);
    assert!(
        !json.contains('\r') && !json.contains('\t') && !json.starts_with(' '),
        "{DASHBOARD}: a literal block scalar cannot keep it byte for byte"
    );
    let chomp = match (json.ends_with("\n\n"), json.ends_with('\n')) {
        (true, _) => "+",
        (false, true) => "",
        (false, false) => "-",
    };
    format!(
        "{}# Grafana's dashboard sidecar (kube-prometheus-stack's Grafana) loads\n\
         # every ConfigMap labelled grafana_dashboard: \"1\", in any namespace.\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n  name: imagebuilder-exporter-dashboard\n  labels:\n    {NAME_LABEL}\n    grafana_dashboard: \"1\"\n\
         data:\n  {DASHBOARD_KEY}: |{chomp}\n{}",
        header(DASHBOARD),
        indent(&json, 4)
    )
}

/// Every generated file, with what it must hold.
fn generated() -> Vec<(&'static str, String)> {
    let mut files: Vec<(&str, String)> = RULES
        .iter()
        .map(|(source, file, name)| (*file, prometheus_rule(source, name)))
        .collect();
    files.push((DASHBOARD_CONFIG_MAP, dashboard_config_map()));
    files
}

fn yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: not YAML: {e}"))
}

#[test]
fn the_generated_manifests_are_up_to_date() {
    let regenerate = std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, want) in generated() {
        if regenerate {
            std::fs::write(repo(path), &want).unwrap_or_else(|e| panic!("{path}: {e}"));
            eprintln!("wrote {path}");
        } else if std::fs::read_to_string(repo(path)).ok().as_deref() != Some(want.as_str()) {
            stale.push(path);
        }
        // Its component lists it.
        let dir = Path::new(path).parent().expect("a directory");
        let kustomization = yaml(&format!("{}/kustomization.yaml", dir.display()));
        let file = Path::new(path)
            .file_name()
            .expect("a name")
            .to_string_lossy();
        assert_eq!(kustomization["kind"], "Component", "{}", dir.display());
        assert!(
            kustomization["resources"]
                .as_sequence()
                .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(&file))),
            "{}/kustomization.yaml does not list {file}",
            dir.display()
        );
    }
    assert!(
        stale.is_empty(),
        "{} differ from what their sources give: run {REGENERATE}",
        stale.join(", ")
    );
}

/// What the Prometheus Operator loads is exactly each rules file's groups:
/// the same rules, expressions, labels and annotations as promtool tests.
#[test]
fn each_prometheus_rule_carries_exactly_the_groups_of_its_rules_file() {
    for (source, file, name) in RULES {
        let rules = yaml(source);
        let keys: Vec<&str> = rules
            .as_mapping()
            .expect("a mapping")
            .keys()
            .filter_map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["groups"], "{source}: only groups");
        let rule = yaml(file);
        assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1", "{file}");
        assert_eq!(rule["kind"], "PrometheusRule", "{file}");
        assert_eq!(rule["metadata"]["name"], name, "{file}");
        let spec_keys: Vec<&str> = rule["spec"]
            .as_mapping()
            .expect("spec")
            .keys()
            .filter_map(|k| k.as_str())
            .collect();
        assert_eq!(spec_keys, ["groups"], "{file}: spec holds the groups only");
        assert!(
            rules["groups"].as_sequence().is_some_and(|g| !g.is_empty()),
            "{source}: no groups"
        );
        assert!(
            rule["spec"]["groups"] == rules["groups"],
            "{file} does not carry the groups of {source}: run {REGENERATE}"
        );
    }
}

/// Grafana's sidecar gets `dashboards/imagebuilder.json` byte for byte,
/// under the label it looks for.
#[test]
fn the_dashboard_config_map_holds_the_dashboard_unchanged() {
    let map = yaml(DASHBOARD_CONFIG_MAP);
    assert_eq!(map["apiVersion"], "v1");
    assert_eq!(map["kind"], "ConfigMap");
    assert_eq!(
        map["metadata"]["labels"]["grafana_dashboard"],
        serde_yaml::Value::String("1".into()),
        "the sidecar's label, as a string"
    );
    let data = map["data"].as_mapping().expect("data");
    assert_eq!(data.len(), 1, "one dashboard");
    let held = map["data"][DASHBOARD_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("no {DASHBOARD_KEY}"));
    assert!(
        held == read(DASHBOARD),
        "{DASHBOARD_CONFIG_MAP} does not hold {DASHBOARD} unchanged: run {REGENERATE}"
    );
    // Grafana reads the key as a dashboard because of its .json suffix.
    assert!(DASHBOARD_KEY.ends_with(".json"));
}

/// `kubectl apply -k` (client side) records the whole object in an
/// annotation limited to 256 KiB: the dashboard must fit, with room to grow
/// noticed before it does not.
#[test]
fn the_dashboard_config_map_fits_a_client_side_apply() {
    let map: serde_json::Value =
        serde_yaml::from_value(yaml(DASHBOARD_CONFIG_MAP)).expect("as JSON");
    let recorded = serde_json::to_string(&map).expect("JSON").len();
    assert!(
        recorded < LAST_APPLIED_LIMIT * 9 / 10,
        "the dashboard ConfigMap is {recorded} bytes as kubectl records it, near or over \
         {LAST_APPLIED_LIMIT}: make docs/deployment.md install it with `kubectl apply --server-side`"
    );
}
