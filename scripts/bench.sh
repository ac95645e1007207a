#!/usr/bin/env bash
# Benchmarks cloudbot-trigger against the hello-world floor on this machine and writes the
# figures as markdown (see docs/benchmarks.md for what each figure means).
#
#   scripts/bench.sh            full run: >=20 cold starts each, 1 + 1000 warm invocations,
#                               load 4 sandboxes x 250, the Lambda CPU model (128/512/1769 MB and
#                               the template's default, periods 100 and 20 ms; plain and keyed
#                               executes, the store's CPU share, whole runs on both follow paths
#                               with their store calls per run), x86_64 + arm64
#                               artifacts -> BENCHMARKS.md
#   scripts/bench.sh --quick    short run: 3 starts, 1 + 100 warm, load 2 x 20, one CPU-model
#                               configuration, no arm64 build -> target/bench/BENCHMARKS-quick.md
#                               (CI runs `--quick --dev`: the harness kept working, no release build)
#
# The CPU model needs root and cgroup v1 (docs/benchmarks.md, "CPU model"); without them the
# report says it did not run, except under CI=true, where that is a failure.
#
# Options: --out FILE (report path), --dev (use debug builds: functional check only, figures
# meaningless), --arm64 / --no-arm64 (force or skip the arm64 build), and anything after `--`
# is passed to the harness (e.g. `-- --warm 2000 --latency-ms 10`).
#
# Fails only on functional breakage (a bootstrap that does not start, an unexpected function
# error, a lost or duplicated job, a harness failure), never because a figure is slow.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

quick=0
dev=0
arm64=auto
out=""
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --dev) dev=1 ;;
    --arm64) arm64=yes ;;
    --no-arm64) arm64=no ;;
    --out) out="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $arm64 == auto ]]; then
  if [[ $quick == 1 ]]; then arm64=no; else arm64=yes; fi
fi

profile=release
profile_flag=(--release)
if [[ $dev == 1 ]]; then
  profile=debug
  profile_flag=()
fi
mkdir -p target/bench
if [[ -z $out ]]; then
  if [[ $quick == 1 || $dev == 1 ]]; then out=target/bench/BENCHMARKS-quick.md; else out=BENCHMARKS.md; fi
fi

step() { printf '\n==> %s\n' "$*" >&2; }

# Two builds, not one: cargo unifies dependency features across the packages of one invocation,
# and the harness needs tokio/hyper features the function does not ship. Building the function
# alone keeps the measured bootstrap byte-identical to what `cargo lambda build` deploys.
if [[ $dev == 1 ]]; then
  # Functional check only, on the debug builds the tests use anyway, so scripts/test.sh builds
  # nothing twice: the harness, the floor and the emulator as `cargo test --workspace` builds
  # them, then the function alone as tests/py/conftest.py (and `cargo lambda watch`) builds it.
  # In this order: each build leaves its own binaries in target/debug/.
  step "build the harness, the floor and the emulator (debug, the cargo test --workspace build)"
  cargo test --workspace --no-run --quiet
  step "build the function alone (debug, the build the process-level tests run)"
  cargo build -p cloudbot-trigger --bin cloudbot-trigger
else
  step "build the function ($profile)"
  cargo build "${profile_flag[@]}" -p cloudbot-trigger --bin cloudbot-trigger
  step "build the harness, the floor and the emulator ($profile)"
  cargo build "${profile_flag[@]}" -p cloudbot-bench -p cloudbot-emulator
fi

bin=target/$profile
# How aws-lc-sys was built: the jitter-entropy switch is a build-time variable (environment or
# the [env] table of .cargo/config.toml).
if [[ -n ${AWS_LC_SYS_NO_JITTER_ENTROPY:-} ]]; then
  aws_lc_build="AWS_LC_SYS_NO_JITTER_ENTROPY=$AWS_LC_SYS_NO_JITTER_ENTROPY (environment)"
elif grep -qs '^AWS_LC_SYS_NO_JITTER_ENTROPY' .cargo/config.toml; then
  aws_lc_build="$(grep '^AWS_LC_SYS_NO_JITTER_ENTROPY' .cargo/config.toml | tr -d ' ') (.cargo/config.toml)"
else
  aws_lc_build="AWS_LC_SYS_NO_JITTER_ENTROPY unset (jitter entropy on)"
fi
harness_args=(
  --bootstrap "$bin/cloudbot-trigger"
  --floor "$bin/lambda-floor"
  --floor-post "$bin/floor-post"
  --emulator "$bin/cloudbot-emulator"
  --tls-start "$bin/tls-start"
  --template template.yaml
  --aws-lc-build "$aws_lc_build"
  --out "$out"
  --rustc "$(rustc --version)"
  --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+dirty')"
)
[[ $quick == 1 ]] && harness_args+=(--quick)
[[ $dev == 1 ]] && harness_args+=(--notice "debug builds (--dev): a functional check only; the figures mean nothing")

step "artifacts (x86_64)"
# Lambda zips hold the executable as `bootstrap` at the root; zip it the same way cargo lambda does.
py=python3
[[ -x .tools/venv-aws/bin/python ]] && py=.tools/venv-aws/bin/python
zip_bootstrap() { # SRC DEST.zip
  "$py" - "$1" "$2" <<'PY'
import sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(src, "rb") as f:
        z.writestr(info, f.read())
PY
}
mkdir -p target/bench/x86_64
zip_bootstrap "$bin/cloudbot-trigger" target/bench/x86_64/bootstrap.zip
zip_bootstrap "$bin/lambda-floor" target/bench/x86_64/floor.zip
harness_args+=(
  --artifact "x86_64 bootstrap ($profile)=$bin/cloudbot-trigger"
  --artifact "x86_64 zip=target/bench/x86_64/bootstrap.zip"
  --artifact "x86_64 floor bootstrap=$bin/lambda-floor"
  --artifact "x86_64 floor zip=target/bench/x86_64/floor.zip"
)

if [[ $arm64 == yes ]]; then
  step "artifacts (arm64, cargo lambda)"
  lambda_bin=.tools/venv-lambda/bin
  if [[ ! -x $lambda_bin/cargo-lambda ]]; then
    harness_args+=(--notice "arm64: cargo-lambda not installed (.tools/venv-lambda; run scripts/install-tools.sh): arm64 zip not measured")
  elif ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    harness_args+=(--notice "arm64: rustup target aarch64-unknown-linux-gnu not installed: arm64 zip not measured")
  elif PATH="$root/$lambda_bin:$PATH" cargo lambda build --release --arm64 --output-format zip \
         --bin cloudbot-trigger --lambda-dir target/bench/lambda-arm64 >&2; then
    harness_args+=(
      --artifact "arm64 bootstrap=target/aarch64-unknown-linux-gnu/release/cloudbot-trigger"
      --artifact "arm64 zip=target/bench/lambda-arm64/cloudbot-trigger/bootstrap.zip"
    )
  else
    harness_args+=(--notice "arm64: cargo lambda build --release --arm64 failed on this machine: arm64 zip not measured")
  fi
else
  harness_args+=(--notice "arm64: not built in this run (--quick or --no-arm64): arm64 zip not measured")
fi

step "run the harness"
"$bin/cloudbot-bench" "${harness_args[@]}" ${extra[@]+"${extra[@]}"}
step "report: $out"
