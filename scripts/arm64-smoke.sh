#!/usr/bin/env bash
# Runs the arm64 bootstrap that AWS runs: the file `sam build` leaves in
# .aws-sam/build/CloudBotFunction/ (scripts/check-template.sh --with-build makes it), under qemu
# user-mode emulation, against the test kit's Lambda Runtime API (testkit/), the Cloud BOT emulator
# and a local Secrets Manager endpoint. Checks every answer (cold start, execute, refer_job,
# list_bots, an invalid request), zips the artifact the way `sam package` does and reports its size.
#
#   scripts/arm64-smoke.sh        # after scripts/check-template.sh --with-build (scripts/test.sh order)
#
# No second arm64 build: the sam build output is reused as is. `arm64-smoke` and the emulator are
# the debug binaries of the test build (`cargo test --workspace --no-run`, which scripts/test.sh
# has made by then, so nothing is rebuilt); they only drive the bootstrap, whose own speed under
# qemu is no figure.
# Under CI=true a missing piece (the sam build output, qemu, the aarch64 libraries) fails the run,
# naming it; elsewhere the script prints a NOTICE and exits 0.
# Writes target/arm64-smoke/{report.md,bootstrap.zip,*.log}.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
exec </dev/null

log() { printf '[arm64-smoke] %s\n' "$*" >&2; }
missing() { # what, how to get it
  if [ "${CI:-}" = true ]; then
    log "ERROR: $1 ($2). CI=true requires the arm64 bootstrap to be run."
    exit 1
  fi
  log "NOTICE: $1 ($2); the arm64 bootstrap was NOT run"
  exit 0
}

# Overridable for the tests of this script's own failure modes (tests/py/test_arm64_smoke.py).
bootstrap=${ARM64_SMOKE_BOOTSTRAP:-.aws-sam/build/CloudBotFunction/bootstrap}
qemu=${ARM64_SMOKE_QEMU:-/usr/bin/qemu-aarch64-static}
sysroot=${ARM64_SMOKE_SYSROOT:-/usr/aarch64-linux-gnu}
work=target/arm64-smoke

[ -f "$bootstrap" ] || missing "$bootstrap does not exist" "scripts/check-template.sh --with-build builds it with sam build"
# ELF header bytes 18-19 (e_machine): 0xB7 0x00 = EM_AARCH64.
machine=$(od -An -tx1 -j18 -N2 "$bootstrap" | tr -d ' \n')
if [ "$machine" != b700 ]; then
  log "ERROR: $bootstrap is not an aarch64 ELF binary (e_machine=$machine)"
  exit 1
fi
[ -x "$qemu" ] || missing "qemu-aarch64-static is not installed" "scripts/install-tools.sh qemu: Debian qemu-user-static"
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] ||
  missing "the aarch64 C library is not in $sysroot" "scripts/install-tools.sh qemu: Debian libc6-arm64-cross"
[ -x .tools/venv-sam/bin/python ] || missing ".tools/venv-sam is missing" "scripts/install-tools.sh sam"

log "building arm64-smoke and the emulator (debug, the cargo test --workspace build)"
cargo test --workspace --no-run --quiet

rm -rf "$work"
mkdir -p "$work"
# The zip `sam deploy` uploads: SAM's own packaging function on the build directory.
zip=$(.tools/venv-sam/bin/python - "$(dirname "$bootstrap")" "$work/bootstrap" <<'PY'
import sys
from samcli.lib.package.utils import make_zip
print(make_zip(sys.argv[2], sys.argv[1]))
PY
)

log "running $bootstrap under $qemu"
target/debug/arm64-smoke --bootstrap "$bootstrap" --emulator target/debug/cloudbot-emulator \
  --qemu "$qemu" --sysroot "$sysroot" --work "$work" --report "$work/report.md"

bytes() { stat -c %s "$1"; }
printf '\narm64 bootstrap: %s bytes; deployment zip (%s): %s bytes; ran under qemu: OK\n' \
  "$(bytes "$bootstrap")" "$zip" "$(bytes "$zip")" | tee -a "$work/report.md"
