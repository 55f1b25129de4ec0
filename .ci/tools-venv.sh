#!/usr/bin/env bash
# The Python tools the checks need (hadolint, kubectl, kubernetes-validate,
# the Prometheus Operator's models, cfn-lint), pinned in
# .ci/deploy-lint-requirements.txt, in one virtualenv; prints its path.
# Installs only when the pins changed since the last install, so a second
# run costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${DEPLOY_LINT_VENV:-$PWD/target/deploy-venv}
REQUIREMENTS=.ci/deploy-lint-requirements.txt

stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  printf -- '--- installing the check tools into %s\n' "$VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
  echo "$want" >"$stamp"
fi
echo "$VENV"
