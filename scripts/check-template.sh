#!/usr/bin/env bash
# Offline checks of the SAM application: no AWS account, no Docker, no network.
#
#   scripts/check-template.sh               # cfn-lint, sam validate (--lint and the translator), asl-validator
#   scripts/check-template.sh --with-build  # ... plus `sam build` of the arm64 bootstrap (a release build)
#
# CHECK_TEMPLATE_BUILD=1 in the environment is the same as --with-build. Exits non-zero on any lint
# or validation error. `sam build` needs the aarch64-unknown-linux-gnu Rust target and
# cargo-lambda with zig (scripts/install-tools.sh arm64 lambda). Under CI=true a missing piece
# fails the run, naming it; elsewhere the build step prints a NOTICE and is skipped.
#
# The bootstrap sam build leaves in .aws-sam/build/CloudBotFunction/ is the deployed artifact;
# scripts/arm64-smoke.sh runs exactly that file.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

with_build=${CHECK_TEMPLATE_BUILD:-0}
for arg in "$@"; do
  case "$arg" in
    --with-build) with_build=1 ;;
    -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "check-template: unknown argument: $arg (expected --with-build)" >&2; exit 2 ;;
  esac
done

sam=.tools/venv-sam/bin/sam
cfn_lint=.tools/venv-sam/bin/cfn-lint
asl_validator=.tools/node/node_modules/.bin/asl-validator
for tool in "$sam" "$cfn_lint" "$asl_validator"; do
  if [ ! -x "$tool" ]; then
    echo "check-template: $tool is missing; run scripts/install-tools.sh sam node" >&2
    exit 2
  fi
done

# sam validate builds a boto3 session even though nothing is sent; dummy credentials keep it from
# looking for a profile. No telemetry, no update check: this runs without network.
export AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_SESSION_TOKEN=offline
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export SAM_CLI_TELEMETRY=0 SAM_CLI_CONTAINER_CONNECTION_TIMEOUT=1
unset AWS_PROFILE

step() { printf '\n[check-template] %s\n' "$*"; }

step "cfn-lint template.yaml"
"$cfn_lint" template.yaml

step "sam validate --lint"
"$sam" validate --lint --template-file template.yaml

# samconfig.toml turns lint on for `sam validate`; a config env that does not exist leaves it off,
# so this pass runs SAM's own translator (transform errors cfn-lint does not report).
step "sam validate --region us-east-1 (translator)"
"$sam" validate --region us-east-1 --config-env offline-translator --template-file template.yaml

shopt -s nullglob
# The template's state machines and the examples (statemachine/examples/, not deployed).
asl_files=(statemachine/*.asl.json statemachine/examples/*.asl.json)
if [ ${#asl_files[@]} -eq 0 ]; then
  echo "check-template: no statemachine/*.asl.json files found" >&2
  exit 1
fi
for f in "${asl_files[@]}"; do
  step "asl-validator $f"
  "$asl_validator" --json-path "$f"
done

if [ "$with_build" != 1 ]; then
  step "sam build skipped (pass --with-build or CHECK_TEMPLATE_BUILD=1: a release arm64 build)"
  exit 0
fi

# A missing piece of the arm64 chain: fatal under CI=true, a notice elsewhere.
missing() {
  if [ "${CI:-}" = true ]; then
    echo "check-template: ERROR: $1; CI=true requires the arm64 build (scripts/install-tools.sh $2)" >&2
    exit 1
  fi
  step "NOTICE: $1; sam build skipped (scripts/install-tools.sh $2)"
  exit 0
}
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  missing "the Rust target aarch64-unknown-linux-gnu is not installed" arm64
fi
if [ ! -x .tools/venv-lambda/bin/cargo-lambda ]; then
  missing ".tools/venv-lambda/bin/cargo-lambda is missing" lambda
fi
if ! .tools/venv-lambda/bin/python -m ziglang version >/dev/null 2>&1; then
  missing "zig (the ziglang package in .tools/venv-lambda) does not run" lambda
fi

step "sam build (cargo lambda build --release --arm64 --bin cloudbot-trigger, zig $(.tools/venv-lambda/bin/python -m ziglang version))"
# cargo-lambda finds zig through the ziglang package in its own venv.
PATH="$root/.tools/venv-lambda/bin:$PATH" "$sam" build --template-file template.yaml --build-dir .aws-sam/build
bootstrap=.aws-sam/build/CloudBotFunction/bootstrap
if [ ! -f "$bootstrap" ]; then
  echo "check-template: sam build did not produce $bootstrap" >&2
  exit 1
fi
# ELF header: byte 18-19 is e_machine; 0xB7 0x00 = EM_AARCH64 (little endian).
machine=$(od -An -tx1 -j18 -N2 "$bootstrap" | tr -d ' \n')
if [ "$machine" != "b700" ]; then
  echo "check-template: $bootstrap is not an aarch64 ELF binary (e_machine=$machine)" >&2
  exit 1
fi
step "sam build OK: $bootstrap ($(du -h "$bootstrap" | cut -f1), aarch64)"
