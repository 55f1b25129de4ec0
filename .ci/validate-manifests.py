"""Validates the Kubernetes manifests of a kustomization, offline.

Run by .ci/lint-deploy.sh inside its virtualenv:

    kubectl kustomize deploy/kubernetes > rendered.yaml
    python .ci/validate-manifests.py deploy/kubernetes rendered.yaml 1.30.0 1.37.0

What is checked, and how:

* Core resources (ServiceAccount, Deployment, Service, ConfigMap): kubernetes-validate's
  strict JSON schemas, for each Kubernetes version given. Strict rejects
  unknown fields, as `kubectl apply` (--validate=strict) does. A resource
  without a schema (a typo in apiVersion or kind) is an error here, not the
  warning that the kubernetes-validate command prints before exiting 0.
* ServiceMonitor (a custom resource, monitoring.coreos.com/v1, absent from
  the core schemas): the pydantic models that cloudcoil generates from the
  prometheus-operator CRDs (package cloudcoil.models.prometheus_operator).
  They check types, enums, patterns (e.g. interval) and required fields.
  Fields the models do not know are rejected too, as for the rest.
* kustomization.yaml: lists every manifest of the directory and nothing
  else, and names the Deployment's image. `kubectl kustomize` (run by the
  caller) has rendered it: every resource comes out, in the kustomization's
  namespace, and passes the same schemas.
* Across the rendered resources: the Service selects the Deployment's pods
  and targets a container port; the ServiceMonitor selects the Service and
  scrapes a port it has; the Deployment runs as the ServiceAccount, which
  carries the IRSA annotation; every ConfigMap key the Deployment reads is
  from a ConfigMap of the kustomization (an optional reference to a
  misspelt name would silently leave the setting out). These mistakes pass
  every schema and break scraping, credentials or settings.
"""

import pathlib
import re
import sys

import yaml
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator_v1
from kubernetes_validate import utils as kv

# Custom resources, by (apiVersion, kind): the model that validates them.
CUSTOM_RESOURCES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): prometheus_operator_v1.ServiceMonitor,
}

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


def check_references(resources):
    by_kind = {}
    for doc in resources:
        by_kind.setdefault(doc["kind"], []).append(doc)

    def one(kind):
        items = by_kind.get(kind, [])
        if len(items) != 1:
            error(f"expected one {kind}, found {len(items)}")
            return None
        return items[0]

    deployment, service, monitor, account = (
        one("Deployment"), one("Service"), one("ServiceMonitor"), one("ServiceAccount"))
    if None in (deployment, service, monitor, account):
        return
    before = len(errors)
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"].get("labels", {})
    container_ports = [p for c in pod["spec"]["containers"] for p in c.get("ports", [])]
    targets = {p.get("name") for p in container_ports} | {p["containerPort"] for p in container_ports}
    service_ports = {p.get("name"): p for p in service["spec"].get("ports", [])}

    if not labels_match(service["spec"].get("selector"), pod_labels):
        error("Service: its selector does not match the Deployment's pod labels")
    for name, port in service_ports.items():
        if port.get("targetPort", port.get("port")) not in targets:
            error(f"Service: port {name} targets {port.get('targetPort')}, not a container port")
    if not labels_match(monitor["spec"]["selector"].get("matchLabels"),
                        service["metadata"].get("labels", {})):
        error("ServiceMonitor: its selector does not match the Service's labels")
    for ep in monitor["spec"]["endpoints"]:
        if ep.get("port") not in service_ports:
            error(f"ServiceMonitor: endpoint port {ep.get('port')!r} is not a port of the Service")
    if pod["spec"].get("serviceAccountName") != account["metadata"]["name"]:
        error("Deployment: serviceAccountName is not the ServiceAccount's name")
    if "eks.amazonaws.com/role-arn" not in (account["metadata"].get("annotations") or {}):
        error("ServiceAccount: no eks.amazonaws.com/role-arn annotation (IRSA)")
    config_maps = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    for c in pod["spec"]["containers"]:
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
            if ref and ref.get("name") not in config_maps:
                error(f"Deployment: {env['name']} reads ConfigMap {ref.get('name')!r}, "
                      f"not one of the kustomization's ({', '.join(sorted(config_maps)) or 'none'})")
    if len(errors) == before:
        print("OK    references: Service -> pods and port, ServiceMonitor -> Service and port, "
              "Deployment -> ServiceAccount with IRSA and ConfigMaps")


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: validate-manifests.py DIR RENDERED K8S_VERSION...")
    directory, rendered, versions = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
    kustomization_path = directory / "kustomization.yaml"
    if not kustomization_path.is_file():
        sys.exit(f"{directory}: no kustomization.yaml")
    kustomization = yaml.safe_load(kustomization_path.read_text()) or {}
    files = sorted(p for p in directory.iterdir()
                   if p.suffix in (".yaml", ".yml") and p != kustomization_path)

    # The sources, file by file, so that an error names its file.
    sources = []
    for path in files:
        for doc in load(path):
            sources.append(doc)
            validate(f"{path} {name_of(doc)}", doc, versions)

    # The kustomization.
    before = len(errors)
    if kustomization.get("apiVersion") != "kustomize.config.k8s.io/v1beta1":
        error(f"{kustomization_path}: apiVersion is not kustomize.config.k8s.io/v1beta1")
    listed = sorted(kustomization.get("resources") or [])
    present = sorted(p.name for p in files)
    if listed != present:
        error(f"{kustomization_path}: resources {listed} are not the manifests {present}")
    images = {i.get("name") for i in kustomization.get("images") or []}
    for doc in sources:
        if doc["kind"] == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if c["image"].rsplit(":", 1)[0] not in images:
                    error(f"{kustomization_path}: images does not name {c['image']}")
    if len(errors) == before:
        print(f"OK    {kustomization_path} lists every manifest and the image")

    # What `kubectl apply -k` would send.
    resources = load(rendered)
    before = len(errors)
    namespace = kustomization.get("namespace")
    if sorted(map(name_of, resources)) != sorted(map(name_of, sources)):
        error(f"kubectl kustomize rendered {sorted(map(name_of, resources))}, "
              f"the files hold {sorted(map(name_of, sources))}")
    for doc in resources:
        where = f"kubectl kustomize output {name_of(doc)}"
        meta = doc.get("metadata") or {}
        if namespace and meta.get("namespace") != namespace:
            error(f"{where}: not in namespace {namespace}")
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
        print(f"OK    kubectl kustomize output: {len(resources)} resources in namespace {namespace}, valid")
    check_references(resources)


main()
if errors:
    print(f"FAIL  {len(errors)} manifest error(s)")
    sys.exit(1)
print("manifests valid")
