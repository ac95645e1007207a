#!/usr/bin/env bash
# Supply-chain checks with cargo-deny against the policy in deny.toml.
#
#   scripts/deny.sh               # licenses, bans (duplicates, wildcards, denied crates), sources:
#                                 # offline, what scripts/test.sh runs
#   scripts/deny.sh advisories    # RustSec advisories: fetches the advisory database, so only on a
#                                 # machine with network access (not in CI; see CONTRIBUTING.md)
#
# cargo-deny comes prebuilt and hash-checked from scripts/install-tools.sh deny.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

deny=.tools/venv-deny/bin/cargo-deny
if [ ! -x "$deny" ]; then
  echo "deny: $deny is missing; run scripts/install-tools.sh deny" >&2
  exit 2
fi

checks=(licenses bans sources)
offline=(--offline)
case "${1:-}" in
  "") ;;
  advisories) checks=(advisories); offline=() ;;
  -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "deny: unknown argument: $1 (expected nothing or advisories)" >&2; exit 2 ;;
esac

# The graph for our two Linux targets only (deny.toml [graph]). cargo-deny's own `cargo metadata`
# call would need the manifests of every platform's crates (windows-sys, ...), which a build for
# Linux never downloads; --filter-platform needs only what Cargo.lock resolves for these targets.
mkdir -p target/deny
cargo metadata --quiet --locked --offline --format-version 1 \
  --filter-platform x86_64-unknown-linux-gnu --filter-platform aarch64-unknown-linux-gnu \
  >target/deny/metadata.json 2>target/deny/metadata.err || {
  # Offline fails only when a crate was never downloaded (a fresh machine before any build).
  cargo metadata --quiet --locked --format-version 1 \
    --filter-platform x86_64-unknown-linux-gnu --filter-platform aarch64-unknown-linux-gnu \
    >target/deny/metadata.json
}

"$deny" --workspace --metadata-path target/deny/metadata.json --color never \
  ${offline[@]+"${offline[@]}"} check --show-stats "${checks[@]}"
