#!/usr/bin/env bash
# The container image's binary, tested where Docker cannot run.
#
# Builds imagebuilder-exporter EXACTLY as the Dockerfile's builder stage does
# (same target, same cargo command: KEEP THEM IN SYNC WITH THE DOCKERFILE;
# .ci/lint-deploy.sh fails if they differ), checks that it is static and
# reports its size, then runs it the way the image does: no arguments, a
# clean environment, uid/gid 65532 with no capabilities and no_new_privs, a
# HOME it cannot write, on the default port :9863. It runs in a network
# namespace of its own (loopback only), so the default port is free whatever
# else runs on this machine, against the Image Builder simulator, and must
# become ready, serve the step metrics, and exit 0 on SIGTERM.
#
# Usage: bash .ci/static-binary.sh   (as root, or with sudo; local or CI)
#        bash .ci/static-binary.sh --build-only   (installs and builds, no run:
#        .ci/run builds in the background while the tests run, then runs this
#        script again, which finds the build up to date)
# STATIC_TARGET_DIR overrides the cargo target directory of the static build.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
NONROOT=65532          # distroless' nonroot user and group
PORT=9863              # the exporter's default port
SIM_PORT=4566

log() { printf -- '--- %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------------------
# Second half: inside the network namespace (see the end of the first half).
if [ "${1:-}" = "__in-netns" ]; then
  bin=$2 sim=$3 work=$4
  ip link set lo up

  sim_pid='' exp_pid=''
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # shellcheck disable=SC2317  # run by the EXIT trap
  cleanup() {
    local rc=$?
    for pid in $exp_pid $sim_pid; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
      echo "--- simulator log (tail)"; tail -n 20 "$work/sim.log" 2>/dev/null || true
      echo "--- exporter log (tail)"; tail -n 40 "$work/exporter.log" 2>/dev/null || true
    fi
    exit "$rc"
  }
  trap cleanup EXIT

  "$sim" --listen "127.0.0.1:$SIM_PORT" --scenario demo >"$work/sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$SIM_PORT/_sim/calls" && break
    kill -0 "$sim_pid" 2>/dev/null || die "the simulator exited"
    sleep 0.1
  done
  curl -sf -o /dev/null "http://127.0.0.1:$SIM_PORT/_sim/calls" || die "the simulator does not answer"

  # As the image runs it: env -i (only what a pod would set), the nonroot
  # user with no supplementary groups, every capability dropped from the
  # bounding set (capabilities: drop: [ALL]), no_new_privs
  # (allowPrivilegeEscalation: false), in a HOME it can read but not write
  # (readOnlyRootFilesystem), no arguments (the image's ENTRYPOINT alone).
  log "running $bin as uid $NONROOT against the simulator"
  (
    cd "$work/home"
    exec env -i \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME="$work/home" \
      AWS_ENDPOINT_URL_IMAGEBUILDER="http://127.0.0.1:$SIM_PORT" \
      AWS_REGION=us-east-1 \
      AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
      AWS_SECRET_ACCESS_KEY=fake-secret-for-the-simulator \
      AWS_EC2_METADATA_DISABLED=true \
      setpriv --reuid="$NONROOT" --regid="$NONROOT" --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        "$bin"
  ) >"$work/exporter.log" 2>&1 &
  exp_pid=$!

  url="http://127.0.0.1:$PORT"
  ready=''
  for _ in $(seq 300); do   # 30 s: the demo account's first refresh takes well under 1 s
    kill -0 "$exp_pid" 2>/dev/null || die "the exporter exited before it was ready"
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/-/ready")" = 200 ]; then ready=1; break; fi
    sleep 0.1
  done
  [ -n "$ready" ] || die "/-/ready did not answer 200 within 30 s"
  log "/-/ready answers 200"
  curl -sf -o /dev/null "$url/-/healthy" || die "/-/healthy does not answer 200"

  # The process is the binary itself (setpriv and env exec'd into it).
  [ "$(readlink "/proc/$exp_pid/exe")" = "$bin" ] || die "pid $exp_pid is not $bin"
  status=/proc/$exp_pid/status
  ids() { awk -v k="$1:" '$1 == k {print $2, $3, $4, $5}' "$status"; }
  [ "$(ids Uid)" = "$NONROOT $NONROOT $NONROOT $NONROOT" ] || die "not running as uid $NONROOT: Uid $(ids Uid)"
  [ "$(ids Gid)" = "$NONROOT $NONROOT $NONROOT $NONROOT" ] || die "not running as gid $NONROOT: Gid $(ids Gid)"
  grep -Eq '^Groups:[[:space:]]*$' "$status" || die "supplementary groups: $(grep ^Groups: "$status")"
  grep -Eq '^CapEff:[[:space:]]+0+$' "$status" || die "capabilities: $(grep ^CapEff: "$status")"
  grep -Eq '^NoNewPrivs:[[:space:]]+1$' "$status" || die "no_new_privs is not set"
  log "process $exp_pid: $(grep -E '^(Uid|Gid|CapEff|NoNewPrivs):' "$status" | tr -s '\t' ' ' | paste -sd ';')"

  curl -sf "$url/metrics" -o "$work/metrics.txt" || die "/metrics does not answer 200"
  grep -Fqx 'imagebuilder_up{target="us-east-1"} 1' "$work/metrics.txt" \
    || die "/metrics has no imagebuilder_up{target=\"us-east-1\"} 1: $(grep '^imagebuilder_up' "$work/metrics.txt" || echo none)"
  steps=$(grep -c '^imagebuilder_workflow_step_status{' "$work/metrics.txt" || true)
  [ "$steps" -gt 0 ] || die "/metrics has no imagebuilder_workflow_step_status series"
  log "/metrics: imagebuilder_up{target=\"us-east-1\"} 1, $steps imagebuilder_workflow_step_status series"
  log "resident memory after the first scrape: $(awk '/^VmRSS:/ {print $2, $3}' "$status")"

  kill -TERM "$exp_pid"
  rc=0
  for _ in $(seq 100); do kill -0 "$exp_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$exp_pid" 2>/dev/null && die "the exporter still runs 10 s after SIGTERM"
  wait "$exp_pid" || rc=$?
  exp_pid=''
  [ "$rc" -eq 0 ] || die "exit status $rc after SIGTERM, expected 0"
  log "SIGTERM: exit status 0"
  log "static binary test passed"
  exit 0
fi

# ---------------------------------------------------------------------------
# First half: install what is missing, build, inspect.
missing=()
command -v musl-gcc >/dev/null || missing+=(musl-tools)   # aws-lc-sys' C for musl
command -v curl >/dev/null || missing+=(curl)
command -v file >/dev/null || missing+=(file)
command -v readelf >/dev/null || missing+=(binutils)
command -v ip >/dev/null || missing+=(iproute2)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
  log "adding the $TARGET target"
  rustup target add "$TARGET"
fi

# A target directory of its own: the static build shares nothing with the
# usual builds (other target, other profile settings), and this way it never
# waits on their lock.
export CARGO_TARGET_DIR="${STATIC_TARGET_DIR:-$PWD/target/static}"
log "building the static binary (as the Dockerfile does)"
overrides=$(env | grep '^CARGO_PROFILE_RELEASE_' | sort | tr '\n' ' ' || true)
if [ -n "$overrides" ]; then
  # .ci/run turns optimisation off; the image is built without overrides.
  log "with the release profile overridden by: $overrides"
fi
start=$SECONDS
# Same command as the Dockerfile's builder stage: keep them in sync.
cargo build --release --locked --target x86_64-unknown-linux-musl --config 'profile.release.strip="symbols"' --bin imagebuilder-exporter
log "static build: $((SECONDS - start)) s"
if [ "${1:-}" = "--build-only" ]; then
  exit 0
fi
built="$CARGO_TARGET_DIR/$TARGET/release/imagebuilder-exporter"
unset CARGO_TARGET_DIR

# The simulator is the test's, not the image's: the usual debug build of
# its crate, or SIMULATOR_BIN (.ci/run's, built with its tests).
if [ -n "${SIMULATOR_BIN:-}" ]; then
  sim=$SIMULATOR_BIN
  [ -x "$sim" ] || die "SIMULATOR_BIN is not an executable: $sim"
else
  log "building the simulator"
  cargo build --locked -p imagebuilder-sim
  sim="$PWD/target/debug/imagebuilder-sim"
fi

# Static: no program interpreter, no shared libraries.
file_out=$(file -b "$built")
case "$file_out" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) die "not static: file says: $file_out" ;;
esac
headers=$(readelf -lW "$built") dynamic=$(readelf -dW "$built")
case "$headers" in *INTERP*) die "has a program interpreter: it is dynamic" ;; esac
case "$dynamic" in *"(NEEDED)"*) die "needs shared libraries: $(grep NEEDED <<<"$dynamic")" ;; esac
ldd_out=$(ldd "$built" 2>&1 || true)
case "$ldd_out" in
  *"statically linked"* | *"not a dynamic executable"*) ;;
  *) die "ldd lists libraries: $ldd_out" ;;
esac
log "static: file: $file_out"
log "static: ldd: $ldd_out"
size=$(stat -c %s "$built")
log "size: $size bytes ($(numfmt --to=iec-i --suffix=B --format=%.1f "$size"))"

# The image's layout: the binary owned by root, mode 0755 (COPY), a HOME the
# user can read but not write.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 0755 "$work"
install -m 0755 "$built" "$work/imagebuilder-exporter"
mkdir -m 0755 "$work/home"
version=$("$work/imagebuilder-exporter" --version)
crate_version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
case "$version" in *"$crate_version"*) ;; *) die "--version says $version, Cargo.toml $crate_version" ;; esac
log "--version: $version"

# unshare: a network namespace with only loopback, so :9863 is free whatever
# else runs here, and nothing outside can be reached (no real AWS).
as_root unshare --net -- bash "$0" __in-netns "$work/imagebuilder-exporter" "$sim" "$work"
