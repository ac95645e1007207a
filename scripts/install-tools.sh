#!/usr/bin/env bash
# Installs every tool the tests, the local run and the benchmarks need, pinned, into .tools/
# (git-ignored). Idempotent: a tool set whose pin file has not changed since it was installed is
# kept, so a second run takes about a second.
#
#   scripts/install-tools.sh            # everything
#   scripts/install-tools.sh aws lambda # only some sets: aws | lambda | sam | node | arm64
#
# Sets:
#   aws     .tools/venv-aws     moto server (Secrets Manager, Step Functions), boto3, pytest, requests
#   lambda  .tools/venv-lambda  cargo-lambda (+ ziglang), the Lambda runtime emulator `cargo lambda watch`
#   sam     .tools/venv-sam     aws-sam-cli and cfn-lint (their own venv: SAM pins an older boto3)
#   node    .tools/node         asl-validator (npm)
#   arm64   rustup target aarch64-unknown-linux-gnu: optional; a notice, not a failure, when it
#           cannot be fetched (rustup's server is not one of the registries our machines reach)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
req="$root/scripts/requirements"
mkdir -p "$tools"

log() { printf '[install-tools] %s\n' "$*" >&2; }

# Installs a pinned requirements file into a venv unless the same file was installed already.
install_venv() {
  local name=$1 reqfile=$2 venv="$tools/$1"
  local stamp="$venv/.installed-from"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$reqfile"; then
    return 0
  fi
  log "creating $venv from ${reqfile#"$root"/}"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-input -r "$reqfile"
  cp "$reqfile" "$stamp"
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
  log "adding the aarch64-unknown-linux-gnu Rust target (optional)"
  if ! timeout 300 rustup target add aarch64-unknown-linux-gnu >&2; then
    log "NOTICE: the aarch64 target could not be installed; arm64 builds will be skipped with a notice"
  fi
}

sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(aws lambda sam node arm64)
for s in "${sets[@]}"; do
  case "$s" in
    aws) install_venv venv-aws "$req/aws.txt" ;;
    lambda) install_venv venv-lambda "$req/lambda.txt" ;;
    sam) install_venv venv-sam "$req/sam.txt" ;;
    node) install_node ;;
    arm64) install_arm64 ;;
    *) log "unknown tool set: $s (expected aws, lambda, sam, node or arm64)"; exit 2 ;;
  esac
done
