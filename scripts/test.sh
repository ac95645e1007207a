#!/usr/bin/env bash
# The one test command: installs what the tests need (pinned, into .tools/) and runs every test.
# .ci/run calls exactly this. Works on a fresh clone with CI=true and no stdin.
#
# Order: cheap checks first (format, lint, template), then the Rust tests (client, emulator,
# handler with moto), the process-level tests (the real Lambda runtime loop via cargo lambda, and
# the state machines in moto's Step Functions interpreter), and last the quick benchmark, which
# only fails on functional breakage, never on a slow figure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

step "install pinned tools (scripts/install-tools.sh)"
scripts/install-tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "template and state machine checks (cfn-lint, sam validate, asl-validator, sam build)"
scripts/check-template.sh --with-build

step "quick benchmark (functional check of the harness; figures in target/bench/)"
scripts/bench.sh --quick

step "cargo test (client, emulator, handler against the emulator and moto)"
cargo test --workspace

step "process-level tests (cargo lambda runtime loop, Step Functions in moto)"
.tools/venv-aws/bin/pytest tests/py -q

step "all tests passed in $((SECONDS - started)) s"
