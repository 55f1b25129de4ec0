#!/usr/bin/env bash
# Lints what deploys the exporter, offline:
#   * the Dockerfile, with hadolint (no rule ignored);
#   * the Dockerfile against .ci/static-binary.sh: same target, same cargo
#     command (that script tests the image's binary where Docker cannot run),
#     and the image version against Cargo.toml;
#   * every kustomization under deploy/kubernetes/ (the base, the
#     kube-prometheus-stack overlays and their components), rendered with
#     `kubectl kustomize` (as `kubectl apply -k` renders it) and checked by
#     .ci/validate-manifests.py: kubernetes-validate's strict schemas for the
#     core resources, prometheus-operator's CRD models for the ServiceMonitor
#     and the PrometheusRules, the kustomizations, the references between the
#     resources (selectors, port names, service account), and that the
#     PrometheusRules and the dashboard ConfigMap hold alerts/ and
#     dashboards/ unchanged.
# The tools come from PyPI, pinned in .ci/deploy-lint-requirements.txt, into
# a virtualenv under target/ (reused while the pins do not change).
#
# Usage: bash .ci/lint-deploy.sh
# K8S_VERSIONS: the Kubernetes versions to validate against (default below).
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest and the newest release that kubernetes-validate 1.37 ships
# schemas for and that a cluster is likely to run.
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.37.0"}
log() { printf -- '--- %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

VENV=$(bash .ci/tools-venv.sh)

log "hadolint $("$VENV/bin/hadolint" --version | grep -o '[0-9][0-9.]*' | head -n1): Dockerfile"
"$VENV/bin/hadolint" --no-color Dockerfile
log "hadolint: no findings"

log "Dockerfile and .ci/static-binary.sh build the same binary"
# Every `cargo build` line of the Dockerfile (the dependency layer and the
# real build) must be the script's one `cargo build ... --release` line.
mapfile -t docker_builds < <(grep -o 'cargo build --release.*--bin imagebuilder-exporter' Dockerfile | sort -u)
mapfile -t script_builds < <(grep -o '^cargo build --release.*' .ci/static-binary.sh | sort -u)
[ "${#docker_builds[@]}" -eq 1 ] || die "the Dockerfile's cargo build commands differ: ${docker_builds[*]:-none}"
[ "${#script_builds[@]}" -eq 1 ] || die "expected one cargo build --release line in .ci/static-binary.sh"
[ "${docker_builds[0]}" = "${script_builds[0]}" ] \
  || die "cargo commands differ: Dockerfile: ${docker_builds[0]} / .ci/static-binary.sh: ${script_builds[0]}"
target=$(grep -o -- '--target [^ ]*' <<<"${docker_builds[0]}" | cut -d' ' -f2)
grep -q "^TARGET=$target\$" .ci/static-binary.sh || die ".ci/static-binary.sh's TARGET is not $target"
grep -q "COPY --from=builder /build/target/$target/release/imagebuilder-exporter " Dockerfile \
  || die "the final stage does not copy the $target binary"
echo "${docker_builds[0]}"

log "the Dockerfile's dependency layer stubs every target of the workspace"
# cargo refuses a manifest whose targets have no file: a [[bin]], [[bench]],
# [[test]] or [[example]] added to a Cargo.toml needs its stub in the
# Dockerfile, and so does a workspace member (its manifest copied, its
# targets stubbed, its sources copied for the real build).
python3 - <<'PY' || die "add the missing stubs to the Dockerfile's dependency layer"
import os, sys, tomllib
root = tomllib.load(open("Cargo.toml", "rb"))
default_dir = {"bin": "src/bin", "bench": "benches", "test": "tests", "example": "examples"}
def targets(manifest, member):
    paths = [manifest.get("lib", {}).get("path", "src/lib.rs")]
    for kind, folder in default_dir.items():
        for target in manifest.get(kind, []):
            paths.append(target.get("path", f"{folder}/{target['name']}.rs"))
    return [os.path.normpath(os.path.join(member, p)) for p in paths]
members = [m for m in root.get("workspace", {}).get("members", []) if m != "."]
paths = targets(root, ".")
copies = []
for member in members:
    paths += targets(tomllib.load(open(f"{member}/Cargo.toml", "rb")), member)
    copies += [f"COPY {member}/Cargo.toml {member}/", f"COPY {member}/src ./{member}/src"]
dockerfile = open("Dockerfile").read()
stub = dockerfile[dockerfile.index("COPY Cargo.toml Cargo.lock"):dockerfile.index("COPY src ./src")]
missing = [f"stub {p}" for p in paths if p not in stub]
missing += [f"have {c!r}" for c in copies if c not in dockerfile]
for p in missing:
    print(f"FAIL: the Dockerfile does not {p}", file=sys.stderr)
print(" ".join(paths))
sys.exit(1 if missing else 0)
PY

log "image version matches Cargo.toml"
version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
grep -qx "ARG VERSION=$version" Dockerfile || die "Dockerfile: ARG VERSION is not $version (Cargo.toml)"
grep -q "image: ghcr.io/example/imagebuilder-exporter:$version\$" deploy/kubernetes/base/deployment.yaml \
  || die "deploy/kubernetes/base/deployment.yaml: the image tag is not $version (Cargo.toml)"
grep -q "newTag: $version\$" deploy/kubernetes/base/kustomization.yaml \
  || die "deploy/kubernetes/base/kustomization.yaml: newTag is not $version (Cargo.toml)"
for f in deploy/kubernetes/components/organization-shards/statefulset.yaml; do
  grep -q "image: ghcr.io/example/imagebuilder-exporter:$version\$" "$f" \
    || die "$f: the image tag is not $version (Cargo.toml)"
done
grep -q "newTag: $version\$" deploy/kubernetes/components/organization-shards/kustomization.yaml \
  || die "deploy/kubernetes/components/organization-shards/kustomization.yaml: newTag is not $version (Cargo.toml)"
echo "$version"

log "Kubernetes manifests: every kustomization under deploy/kubernetes (Kubernetes $K8S_VERSIONS)"
# shellcheck disable=SC2086  # one argument per version
"$VENV/bin/python" .ci/validate-manifests.py "$VENV/bin/kubectl" deploy/kubernetes $K8S_VERSIONS

log "deploy lint passed"
