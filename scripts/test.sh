#!/usr/bin/env bash
# The one test command: installs what the tests need (pinned, into .tools/) and runs every test.
# .ci/run calls exactly this. Works on a fresh clone with CI=true and no stdin.
#
# Order: cheap checks first (format, lint, supply chain, template), then the one release build
# (the arm64 bootstrap `sam build` makes, later executed under qemu), the quick benchmark on the
# debug builds (a functional check of the harness: it only fails on functional breakage, never on
# a slow figure; the figures come from a full scripts/bench.sh), then the Rust tests (client,
# emulator, handler with moto) and the process-level tests (the real Lambda runtime loop via
# cargo lambda, and the state machines in moto's Step Functions interpreter).
# Each step's wall time is printed at the end (what each costs: CONTRIBUTING.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

started=$SECONDS
current="" current_started=$SECONDS
timings=()
step() {
  if [ -n "$current" ]; then
    timings+=("$(printf '%5d s  %s' $((SECONDS - current_started)) "$current")")
  fi
  current=$*
  current_started=$SECONDS
  printf '\n==> %s\n' "$*"
}
summary() {
  local rc=$? line
  if [ -n "$current" ]; then
    timings+=("$(printf '%5d s  %s' $((SECONDS - current_started)) "$current")")
  fi
  printf '\n==> step times\n'
  for line in "${timings[@]}"; do printf '%s\n' "$line"; done
  if [ "$rc" -eq 0 ]; then
    printf '\n==> all tests passed in %d s\n' $((SECONDS - started))
  else
    printf '\n==> FAILED in step "%s" after %d s\n' "$current" $((SECONDS - started))
  fi
}
trap summary EXIT
# A run stopped by a signal ends failed (128 + the signal), never "all tests passed": without
# these, the EXIT trap would see the status of the interrupted step's last command.
trap 'exit 130' INT
trap 'exit 143' TERM

# A CI run builds everything once from a fresh clone: incremental compilation would only write
# its cache (time and disk) for a rebuild that never comes.
if [[ ${CI:-} == true ]]; then export CARGO_INCREMENTAL=0; fi

step "install pinned tools (scripts/install-tools.sh)"
scripts/install-tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "supply chain: cargo deny (licenses, duplicate versions, sources; deny.toml)"
scripts/deny.sh

step "template and state machine checks, sam build of the arm64 bootstrap (scripts/check-template.sh)"
scripts/check-template.sh --with-build

step "quick benchmark on the debug builds (functional check of the harness; report in target/bench/)"
scripts/bench.sh --quick --dev

step "arm64 bootstrap from sam build, run under qemu (scripts/arm64-smoke.sh)"
scripts/arm64-smoke.sh

step "cargo test (client, emulator, handler against the emulator and moto)"
cargo test --workspace

step "process-level tests (cargo lambda runtime loop, Step Functions in moto)"
.tools/venv-aws/bin/pytest tests/py -q
