"""Validates every kustomization under a directory, offline.

Run by .ci/lint-deploy.sh inside its virtualenv:

    python .ci/validate-manifests.py KUBECTL deploy/kubernetes 1.30.0 1.37.0

Every kustomization.yaml under the directory is checked: a Kustomization
(the base, the overlays) is rendered with `KUBECTL kustomize`, as `kubectl
apply -k` renders it, and what it renders is validated; a Component is
checked as the overlays that use it render it. What is checked, and how:

* Core resources (ServiceAccount, Deployment or StatefulSet, Service, ConfigMap): kubernetes-validate's
  strict JSON schemas, for each Kubernetes version given. Strict rejects
  unknown fields, as `kubectl apply` (--validate=strict) does. A resource
  without a schema (a typo in apiVersion or kind) is an error here, not the
  warning that the kubernetes-validate command prints before exiting 0.
* ServiceMonitor and PrometheusRule (custom resources,
  monitoring.coreos.com/v1, absent from the core schemas): the pydantic
  models that cloudcoil generates from the prometheus-operator v0.80.1 CRDs
  (PyPI package cloudcoil.models.prometheus_operator, pinned in
  .ci/deploy-lint-requirements.txt). They check types, enums, patterns
  (e.g. interval, a rule's `for`) and required fields. Fields the models do
  not know are rejected too, as for the rest.
* Each kustomization.yaml: lists every manifest of its directory and
  nothing else (a configMapGenerator's files aside), and names the
  workload's image. What `kubectl kustomize` renders is every resource its
  sources hold (its own files, those of the bases and components it names,
  the ConfigMaps it generates, less those a `$patch: delete` removes), all
  in the base's namespace, and passes the same schemas.
* What the operator and Grafana get: each rendered PrometheusRule carries
  exactly the groups of its rules file in alerts/, the dashboard ConfigMap
  (label grafana_dashboard: "1") holds dashboards/imagebuilder.json byte for
  byte, the jobs the rules name are the job the ServiceMonitor sets, and a
  `release` label, where one is set, is on every ServiceMonitor and
  PrometheusRule alike (kube-prometheus-stack selects both by it).
* Across the rendered resources: one workload (the Deployment, or the
  StatefulSet of the sharded overlay, which names the Service); the Service
  selects its pods and targets a container port; the ServiceMonitor selects
  the Service and scrapes a port it has; the workload runs as the
  ServiceAccount, which carries the IRSA annotation; every ConfigMap it
  reads (a key, or a volume) is a ConfigMap of the kustomization (an
  optional reference to a misspelt name would silently leave the setting
  out). These mistakes pass every schema and break scraping, credentials or
  settings.
"""

import pathlib
import re
import subprocess
import sys

import yaml
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator_v1
from kubernetes_validate import utils as kv

# Custom resources, by (apiVersion, kind): the model that validates them.
CUSTOM_RESOURCES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): prometheus_operator_v1.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_operator_v1.PrometheusRule,
}

# The sources of the generated resources (tests/artifacts/kubernetes.rs generates
# them): PrometheusRule name -> rules file; the dashboard ConfigMap's key ->
# dashboard file.
RULE_SOURCES = {
    "imagebuilder-exporter": "alerts/imagebuilder.rules.yml",
    "imagebuilder-exporter-events": "alerts/imagebuilder-events.rules.yml",
}
DASHBOARD_LABEL = ("grafana_dashboard", "1")
DASHBOARD_SOURCES = {"imagebuilder.json": "dashboards/imagebuilder.json"}

# What the API server accepts as names, which no schema checks: namespaces
# and Services are DNS-1123 labels (a Service's must start with a letter),
# the others DNS-1123 subdomains.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

errors = []


def error(msg):
    errors.append(msg)
    print(f"ERROR {msg}")


def load(path):
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        error(f"{path}: not YAML: {e}")
        return []
    for doc in docs:
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            error(f"{path}: a document without apiVersion and kind")
            return []
    return docs


def name_of(doc):
    return f"{doc['kind']}/{(doc.get('metadata') or {}).get('name', '?')}"


def key_paths(value, prefix=""):
    """Every mapping key in a document, as dotted paths (list items as [])."""
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            yield path
            yield from key_paths(v, path)
    elif isinstance(value, list):
        for v in value:
            yield from key_paths(v, prefix + "[]")


def validate_custom(where, doc, model):
    try:
        obj = model.model_validate(doc)
    except Exception as e:  # pydantic.ValidationError, listing every failure
        error(f"{where}: {e}")
        return False
    # pydantic drops the fields its models do not declare: what the round
    # trip lost is unknown to the CRD's schema.
    kept = set(key_paths(obj.model_dump(mode="json", by_alias=True, exclude_unset=True)))
    unknown = sorted(set(key_paths(doc)) - kept)
    if unknown:
        error(f"{where}: unknown field(s) {', '.join(unknown)}")
        return False
    return True


def validate_core(where, doc, versions):
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            error(f"{where} against Kubernetes {version}: {path}: {e.message}")
            return False
        except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as e:
            error(f"{where}: {e.message}")
            return False
        except kv.VersionNotSupportedError:
            error(f"kubernetes-validate has no schemas for Kubernetes {version}")
            return False
    return True


def validate(where, doc, versions):
    model = CUSTOM_RESOURCES.get((doc["apiVersion"], doc["kind"]))
    if model is not None:
        if validate_custom(where, doc, model):
            print(f"OK    {where} against the prometheus-operator CRD models (strict)")
    elif validate_core(where, doc, versions):
        print(f"OK    {where} against Kubernetes {', '.join(versions)} (strict)")


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_references(label, resources):
    by_kind = {}
    for doc in resources:
        by_kind.setdefault(doc["kind"], []).append(doc)

    def one(kind):
        items = by_kind.get(kind, [])
        if len(items) != 1:
            error(f"{label}: expected one {kind}, found {len(items)}")
            return None
        return items[0]

    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    if len(workloads) != 1:
        error(f"{label}: expected one Deployment or StatefulSet, found {len(workloads)}")
        return
    deployment = workloads[0]
    workload = deployment["kind"]
    service, monitor, account = one("Service"), one("ServiceMonitor"), one("ServiceAccount")
    if None in (service, monitor, account):
        return
    before = len(errors)
    if workload == "StatefulSet" and deployment["spec"].get("serviceName") != service["metadata"]["name"]:
        error(f"{label}: StatefulSet: serviceName is not the Service's name")
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"].get("labels", {})
    container_ports = [p for c in pod["spec"]["containers"] for p in c.get("ports", [])]
    targets = {p.get("name") for p in container_ports} | {p["containerPort"] for p in container_ports}
    service_ports = {p.get("name"): p for p in service["spec"].get("ports", [])}

    if not labels_match(service["spec"].get("selector"), pod_labels):
        error(f"{label}: Service: its selector does not match the {workload}'s pod labels")
    for name, port in service_ports.items():
        if port.get("targetPort", port.get("port")) not in targets:
            error(f"{label}: Service: port {name} targets {port.get('targetPort')}, not a container port")
    if not labels_match(monitor["spec"]["selector"].get("matchLabels"),
                        service["metadata"].get("labels", {})):
        error(f"{label}: ServiceMonitor: its selector does not match the Service's labels")
    for ep in monitor["spec"]["endpoints"]:
        if ep.get("port") not in service_ports:
            error(f"{label}: ServiceMonitor: endpoint port {ep.get('port')!r} is not a port of the Service")
    if pod["spec"].get("serviceAccountName") != account["metadata"]["name"]:
        error(f"{label}: {workload}: serviceAccountName is not the ServiceAccount's name")
    if "eks.amazonaws.com/role-arn" not in (account["metadata"].get("annotations") or {}):
        error(f"{label}: ServiceAccount: no eks.amazonaws.com/role-arn annotation (IRSA)")
    config_maps = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    for c in pod["spec"]["containers"]:
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
            if ref and ref.get("name") not in config_maps:
                error(f"{label}: {workload}: {env['name']} reads ConfigMap {ref.get('name')!r}, "
                      f"not one of the kustomization's ({', '.join(sorted(config_maps)) or 'none'})")
    for volume in pod["spec"].get("volumes") or []:
        ref = volume.get("configMap")
        if ref and ref.get("name") not in config_maps:
            error(f"{label}: {workload}: volume {volume['name']} is ConfigMap {ref.get('name')!r}, "
                  f"not one of the kustomization's ({', '.join(sorted(config_maps)) or 'none'})")
    if len(errors) == before:
        print(f"OK    {label}: references: Service -> pods and port, ServiceMonitor -> Service "
              f"and port, {workload} -> ServiceAccount with IRSA and ConfigMaps")


def check_generated(label, resources, repo):
    """What the operator and Grafana get is what alerts/ and dashboards/ hold."""
    before = len(errors)
    monitors = [d for d in resources if d["kind"] == "ServiceMonitor"]
    rules = [d for d in resources if d["kind"] == "PrometheusRule"]
    for rule in rules:
        name = rule["metadata"]["name"]
        source = RULE_SOURCES.get(name)
        if source is None:
            error(f"{label}: PrometheusRule/{name}: no rules file in alerts/ is known for it")
            continue
        groups = yaml.safe_load((repo / source).read_text())["groups"]
        if rule["spec"].get("groups") != groups:
            error(f"{label}: PrometheusRule/{name} does not carry exactly the groups of {source}: "
                  "run UPDATE_GENERATED=1 cargo test --test artifacts kubernetes::")
        # The jobs the rules name are the job the ServiceMonitor gives the
        # exporter's series, or the alerts that name one never fire.
        named = set(re.findall(r'job="([^"]*)"', yaml.safe_dump(groups)))
        set_by = {r.get("replacement") for m in monitors for ep in m["spec"]["endpoints"]
                  for r in ep.get("relabelings") or [] if r.get("targetLabel") == "job"}
        if named and not named <= set_by:
            error(f"{label}: PrometheusRule/{name} names job {sorted(named)}, "
                  f"the ServiceMonitor sets job {sorted(set_by) or 'to the Service name'}")
    dashboards = [d for d in resources if d["kind"] == "ConfigMap"
                  and (d["metadata"].get("labels") or {}).get(DASHBOARD_LABEL[0]) == DASHBOARD_LABEL[1]]
    for cm in dashboards:
        data = cm.get("data") or {}
        if set(data) != set(DASHBOARD_SOURCES):
            error(f"{label}: ConfigMap/{cm['metadata']['name']}: keys {sorted(data)}, "
                  f"expected {sorted(DASHBOARD_SOURCES)}")
        for key, source in DASHBOARD_SOURCES.items():
            if key in data and data[key] != (repo / source).read_text():
                error(f"{label}: ConfigMap/{cm['metadata']['name']} does not hold {source} "
                      "unchanged: run UPDATE_GENERATED=1 cargo test --test artifacts kubernetes::")
    # kube-prometheus-stack selects ServiceMonitors and PrometheusRules by
    # `release`: where one has it, all must, with one value.
    operator = monitors + rules
    releases = {(d["metadata"].get("labels") or {}).get("release") for d in operator}
    if len(releases) > 1:
        error(f"{label}: the release label differs between the ServiceMonitor and the "
              f"PrometheusRules: {sorted(map(str, releases))}")
    if len(errors) == before:
        release = next(iter(releases)) if releases else None
        print(f"OK    {label}: {len(rules)} PrometheusRule(s) = alerts/, {len(dashboards)} "
              f"dashboard ConfigMap(s) = dashboards/, release label {release or 'none'}")


def kustomizations(root):
    """Every kustomization under root: (directory, its kustomization.yaml)."""
    found = []
    for path in sorted(root.rglob("kustomization.yaml")):
        found.append((path.parent, yaml.safe_load(path.read_text()) or {}))
    return found


def sources_of(directory, kustomization, seen=None, deleted=None):
    """The documents a kustomization's own files hold, and those of the
    bases and components it names, each with its file; the ConfigMaps it
    generates; less what a `$patch: delete` patch anywhere in it removes."""
    top = seen is None
    seen = set() if seen is None else seen
    deleted = set() if deleted is None else deleted
    if directory.resolve() in seen:
        return []
    seen.add(directory.resolve())
    docs = []
    for entry in (kustomization.get("resources") or []) + (kustomization.get("components") or []):
        path = directory / entry
        if path.is_dir():
            child = path / "kustomization.yaml"
            docs += sources_of(path, yaml.safe_load(child.read_text()) or {}, seen, deleted)
        else:
            docs += [(path, d) for d in load(path)]
    for generator in kustomization.get("configMapGenerator") or []:
        docs.append((directory / "kustomization.yaml",
                     {"kind": "ConfigMap", "metadata": {"name": generator["name"]}}))
    for patch in kustomization.get("patches") or []:
        body = yaml.safe_load(patch.get("patch") or "") or {}
        if isinstance(body, dict) and body.get("$patch") == "delete":
            deleted.add((body.get("kind"), (body.get("metadata") or {}).get("name")))
    if top:
        docs = [(p, d) for p, d in docs
                if (d.get("kind"), (d.get("metadata") or {}).get("name")) not in deleted]
    return docs


def generated_name(doc, generators):
    """A generated ConfigMap's name without kustomize's hash suffix."""
    name = doc["metadata"]["name"]
    if doc["kind"] == "ConfigMap":
        for g in generators:
            if re.fullmatch(re.escape(g) + r"-[a-z0-9]{10}", name):
                return g
    return name


def check_kustomization(directory, kustomization, versions):
    """The kustomization file itself: kind, apiVersion, and every manifest of
    its directory listed."""
    path = directory / "kustomization.yaml"
    before = len(errors)
    kind = kustomization.get("kind")
    expected = {"Kustomization": "kustomize.config.k8s.io/v1beta1",
                "Component": "kustomize.config.k8s.io/v1alpha1"}.get(kind)
    if expected is None:
        error(f"{path}: kind {kind!r} is neither Kustomization nor Component")
    elif kustomization.get("apiVersion") != expected:
        error(f"{path}: apiVersion is not {expected}")
    generated_from = {f for g in kustomization.get("configMapGenerator") or []
                      for f in g.get("files") or []}
    files = sorted(p for p in directory.iterdir()
                   if p.suffix in (".yaml", ".yml") and p != path and p.name not in generated_from)
    listed_files = sorted(e for e in kustomization.get("resources") or []
                          if not (directory / e).is_dir())
    present = sorted(p.name for p in files)
    if listed_files != present:
        error(f"{path}: resources {listed_files} are not the manifests {present}")
    for entry in (kustomization.get("resources") or []) + (kustomization.get("components") or []):
        if not (directory / entry).exists():
            error(f"{path}: {entry} does not exist")
    images = {i.get("name") for i in kustomization.get("images") or []}
    for file in files:
        for doc in load(file):
            validate(f"{file} {name_of(doc)}", doc, versions)
            if doc["kind"] in ("Deployment", "StatefulSet"):
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    if c["image"].rsplit(":", 1)[0] not in images:
                        error(f"{path}: images does not name {c['image']}")
    if len(errors) == before:
        print(f"OK    {path}: a {kind} that lists every manifest of its directory")


def render(kubectl, directory):
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    if out.returncode != 0:
        error(f"kubectl kustomize {directory}: {out.stderr.strip()}")
        return None
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: validate-manifests.py KUBECTL DIR K8S_VERSION...")
    kubectl, root, versions = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
    repo = pathlib.Path(__file__).resolve().parent.parent
    found = kustomizations(root)
    if not found:
        sys.exit(f"{root}: no kustomization.yaml")
    # The sources, file by file, so that an error names its file.
    for directory, kustomization in found:
        check_kustomization(directory, kustomization, versions)

    # What `kubectl apply -k` would send, for each Kustomization.
    namespaces = set()
    rendered_count = 0
    for directory, kustomization in found:
        if kustomization.get("kind") != "Kustomization":
            continue
        label = f"kubectl kustomize {directory}"
        resources = render(kubectl, directory)
        if resources is None:
            continue
        rendered_count += 1
        before = len(errors)
        sources = [d for _, d in sources_of(directory, kustomization)]
        generators = {d["metadata"]["name"] for d in sources
                      if d["kind"] == "ConfigMap" and "data" not in d and "apiVersion" not in d}
        rendered_names = sorted(f"{d['kind']}/{generated_name(d, generators)}" for d in resources)
        if rendered_names != sorted(map(name_of, sources)):
            error(f"{label} rendered {rendered_names}, "
                  f"the files hold {sorted(map(name_of, sources))}")
        for doc in resources:
            where = f"{label}: {name_of(doc)}"
            meta = doc.get("metadata") or {}
            namespaces.add(meta.get("namespace"))
            if "namespace" in meta and not DNS_LABEL.match(str(meta["namespace"])):
                error(f"{where}: namespace {meta['namespace']!r} is not a DNS-1123 label")
            name_re = DNS_1035_LABEL if doc["kind"] == "Service" else DNS_SUBDOMAIN
            if not name_re.match(str(meta.get("name", ""))):
                error(f"{where}: name {meta.get('name')!r} is not valid for a {doc['kind']}")
            model = CUSTOM_RESOURCES.get((doc["apiVersion"], doc["kind"]))
            if model is not None:
                validate_custom(where, doc, model)
            else:
                validate_core(where, doc, versions)
        if len(errors) == before:
            print(f"OK    {label}: {len(resources)} resources, valid")
        check_references(label, resources)
        check_generated(label, resources, repo)
    # One namespace for everything, the base's: a resource that a component
    # adds outside it (an overlay without the namespace) is found here.
    if len(namespaces) != 1 or None in namespaces:
        error(f"rendered resources are in namespaces {sorted(map(str, namespaces))}, not one")
    else:
        print(f"OK    {rendered_count} kustomizations rendered, every resource in namespace "
              f"{next(iter(namespaces))}")


main()
if errors:
    print(f"FAIL  {len(errors)} manifest error(s)")
    sys.exit(1)
print("manifests valid")
