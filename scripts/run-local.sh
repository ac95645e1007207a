#!/usr/bin/env bash
# Runs cloudbot-trigger locally, end to end, with nothing but this repository:
#   1. installs the pinned tools it needs (moto, cargo-lambda) into .tools/,
#   2. builds the function and the Cloud BOT emulator,
#   3. starts the emulator (demo seed: contract `demo`, `echo_bot` finishes after ~2 s) and a
#      local Secrets Manager (moto) holding the demo secret,
#   4. runs the function in the Lambda runtime emulator (`cargo lambda watch`),
#   5. invokes it with every execute sample in events/ and prints each job reference endpoint,
#   6. follows one job to completion with the operator CLI (`cloudbot job --follow`, credentials
#      from the same secret), then reads it once more through the function (refer_job),
#   7. stops everything it started (by PID, also on failure or Ctrl-C).
#
#   scripts/run-local.sh          # works unattended (CI=true, no stdin); about a minute when built
#
# The dev loop: `--serve` starts the same emulator, moto and function on the ports of the local
# run's defaults (emulator 8787, moto 5000: Cargo.toml [workspace.metadata.lambda.watch]; the
# function under watch on 9000, rebuilt when the code changes), checks that the function answers,
# prints the `export` lines for the operator CLI (`cloudbot`) and `cargo lambda invoke`, and keeps
# everything running until Ctrl-C, which stops it by PID. With the emulator and moto running, a
# bare `cargo lambda watch` in another terminal works too (with -P, or after stopping this one).
#
#   scripts/run-local.sh --serve
#
# Logs of the background processes are kept in a temporary directory, printed at the end.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

serve=0
case "${1:-}" in
  "") ;;
  --serve) serve=1 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) printf '[run-local] unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
esac
exec </dev/null

log() { printf '[run-local] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cloudbot-run-local.XXXXXX")
emulator_pid="" moto_pid="" watch_pid=""

cleanup() {
  local rc=$?
  # watch runs the function as its child: it leads its own process group, stopped as a whole.
  [ -n "$watch_pid" ] && kill -- "-$watch_pid" 2>/dev/null || true
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  # 130: Ctrl-C (how --serve ends), nothing to diagnose.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; then
    for f in "$work"/*.log; do
      [ -f "$f" ] || continue
      log "---- last lines of $f"
      tail -n 30 "$f" >&2 || true
    done
  fi
  log "logs: $work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  .tools/venv-aws/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Fails when something listens on `port` already (--serve needs the fixed ports).
port_free() { # port what
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    die "port $1 ($2) is in use: is another scripts/run-local.sh --serve running?"
  fi
}

wait_port() { # port seconds what
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$3 did not listen on port $1 within $2 s"
}

# ---------------------------------------------------------------------------------------------
log "installing pinned tools (moto, cargo-lambda)"
scripts/install-tools.sh aws lambda
export PATH="$root/.tools/venv-lambda/bin:$PATH"
py=.tools/venv-aws/bin/python

log "building the function and the emulator"
timeout 1800 cargo build --quiet -p cloudbot-trigger --bin cloudbot-trigger
timeout 1800 cargo build --quiet -p cloudbot-emulator --bin cloudbot-emulator
timeout 1800 cargo build --quiet -p cloudbot-cli --bin cloudbot

# The local run's defaults (Cargo.toml [workspace.metadata.lambda.watch], one home for them):
# secret id, table, region, dummy credentials; --serve also takes its ports from them.
eval "$("$py" - <<'PY'
import shlex, tomllib, urllib.parse
config = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["metadata"]["lambda"]["watch"]["config"]
env = {k: v for s in config for k, v in tomllib.loads(s)["env"].items()}
for key in ("CLOUDBOT_SECRET_ID", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "CLOUDBOT_IDEMPOTENCY_TABLE", "CLOUDBOT_RUN_LEDGER_TABLE", "CLOUDBOT_API_BASE",
            "AWS_ENDPOINT_URL"):
    print(f"default_{key}={shlex.quote(env[key])}")
print(f"default_emulator_port={urllib.parse.urlsplit(env['CLOUDBOT_API_BASE']).port}")
print(f"default_moto_port={urllib.parse.urlsplit(env['AWS_ENDPOINT_URL']).port}")
PY
)"
secret_id=$default_CLOUDBOT_SECRET_ID
table=$default_CLOUDBOT_IDEMPOTENCY_TABLE
ledger_table=$default_CLOUDBOT_RUN_LEDGER_TABLE
if [ "$serve" = 1 ]; then
  emulator_port=$default_emulator_port moto_port=$default_moto_port watch_port=9000
  port_free "$emulator_port" "the emulator"
  port_free "$moto_port" "moto"
  port_free "$watch_port" "cargo lambda watch"
else
  emulator_port=0 moto_port=$(free_port) watch_port=$(free_port)
fi

log "starting the Cloud BOT emulator (demo seed)"
target/debug/cloudbot-emulator --port "$emulator_port" >"$work/emulator.out" 2>"$work/emulator.log" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/emulator.out" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^cloudbot-emulator listening on //p' "$work/emulator.out")
[ -n "$base" ] || die "the emulator did not start"
log "emulator: $base"

log "starting moto (Secrets Manager, DynamoDB) with the demo secret, the idempotency table and the run ledger"
.tools/venv-aws/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
wait_port "$moto_port" 60 moto_server
moto="http://127.0.0.1:$moto_port"
"$py" - "$moto" "$secret_id" "$table" <<'PY'
import json, sys, boto3
endpoint, name, table = sys.argv[1], sys.argv[2], sys.argv[3]
client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
client.create_secret(Name=name, SecretString=json.dumps(
    {"access_token": "demo-access-token", "secret_key": "demo-secret-key"}))
# The idempotency table, shaped like template.yaml's IdempotencyTable.
dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                      AttributeDefinitions=[{"AttributeName": "record_key", "AttributeType": "S"}],
                      KeySchema=[{"AttributeName": "record_key", "KeyType": "HASH"}])
PY
# The run ledger, as template.yaml declares RunLedgerTable (docs/ledger.md).
"$py" scripts/create-ledger-table.py "$moto" "$ledger_table"

log "starting the function under cargo lambda watch"
if [ "$serve" = 1 ]; then
  # Nothing but the address: the defaults name this emulator, moto, secret and table (what a
  # bare `cargo lambda watch` gets); rebuilt when the code changes.
  setsid cargo lambda watch -A 127.0.0.1 -P "$watch_port" >"$work/watch.log" 2>&1 &
else
  # Every setting as a flag: a flag wins over the defaults and over this shell's environment.
  setsid cargo lambda watch -A 127.0.0.1 -P "$watch_port" --ignore-changes \
    --env-var "CLOUDBOT_API_BASE=$base" \
    --env-var "CLOUDBOT_DEFAULT_BOT_ENDPOINT=$base/demo/bots/echo_bot/jobs" \
    --env-var "CLOUDBOT_LANGUAGE=en" \
    --env-var "CLOUDBOT_SECRET_ID=$secret_id" \
    --env-var "CLOUDBOT_IDEMPOTENCY_TABLE=$table" \
    --env-var "CLOUDBOT_RUN_LEDGER_TABLE=$ledger_table" \
    --env-var "AWS_ENDPOINT_URL=$moto" \
    --env-var "AWS_REGION=$default_AWS_REGION" \
    --env-var "AWS_ACCESS_KEY_ID=$default_AWS_ACCESS_KEY_ID" \
    --env-var "AWS_SECRET_ACCESS_KEY=$default_AWS_SECRET_ACCESS_KEY" \
    >"$work/watch.log" 2>&1 &
fi
watch_pid=$!
wait_port "$watch_port" 60 "cargo lambda watch"

# invoke FILE -> prints the function's result (JSON) on stdout; fails on a function error.
invoke() {
  timeout 120 cargo lambda invoke -A 127.0.0.1 -P "$watch_port" cloudbot-trigger --data-file "$1"
}

# The samples name the API base http://127.0.0.1:8787 and a placeholder job id: substitute.
sample() { # name [job_id]
  local out="$work/$1"
  sed -e "s#http://127.0.0.1:8787#$base#g" \
      -e "s#00000000-0000-0000-0000-000000000000#${2:-00000000-0000-0000-0000-000000000000}#g" \
      "events/$1" >"$out"
  printf '%s' "$out"
}

# Field of a result; API Gateway responses carry it in their JSON body.
field() { # json key
  "$py" -c '
import json, sys
r = json.loads(sys.argv[1])
if "statusCode" in r:
    r = json.loads(r["body"])
v = r.get(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}

if [ "$serve" = 1 ]; then
  log "checking that the function answers (list_bots)"
  printf '{"operation": "list_bots", "public_id": "demo"}' >"$work/list-bots.json"
  answered=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do # the first invoke starts (and may build) the function
    if timeout 300 cargo lambda invoke -A 127.0.0.1 -P "$watch_port" cloudbot-trigger \
      --data-file "$work/list-bots.json" >"$work/list-bots.out" 2>"$work/invoke.err"; then
      answered=1
      break
    fi
    grep -q 'Error: [A-Z]' "$work/invoke.err" && { cat "$work/invoke.err" >&2; die "list_bots failed"; }
    sleep 2
  done
  [ -n "$answered" ] || { cat "$work/invoke.err" >&2; die "the function did not answer"; }
  cat <<SERVING

Running until Ctrl-C: the emulator on $base, moto on $moto, the function under
cargo lambda watch on 127.0.0.1:$watch_port (rebuilt on code changes). Logs: $work

# The operator CLI (cargo build -p cloudbot-cli, then target/debug/cloudbot):
export CLOUDBOT_API_BASE=$base CLOUDBOT_SECRET_ID=$secret_id
export AWS_ENDPOINT_URL=$moto AWS_REGION=$default_AWS_REGION AWS_ACCESS_KEY_ID=$default_AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$default_AWS_SECRET_ACCESS_KEY
target/debug/cloudbot bots

# cargo lambda invoke (the samples in events/ name this emulator):
export PATH="$root/.tools/venv-lambda/bin:\$PATH"
cargo lambda invoke -A 127.0.0.1 -P $watch_port cloudbot-trigger --data-file events/sfn-execute.json
SERVING
  # Until Ctrl-C (the INT trap exits, the EXIT trap stops everything by PID) or a process ends.
  wait -n "$emulator_pid" "$moto_pid" "$watch_pid" || true
  die "a background process ended (its log is in $work)"
fi

log "invoking the execute samples"
first_job="" first_endpoint=""
for name in scheduler-input.json scheduler-envelope.json scheduled-rule.json eventbridge-custom.json \
  sfn-execute.json apigw-v1-execute.json apigw-v2-execute.json; do
  # The first invoke also starts the function process: give it a few tries.
  result=""
  for attempt in 1 2 3 4 5; do
    if result=$(invoke "$(sample "$name")" 2>"$work/invoke.err"); then break; fi
    result=""
    grep -q 'Error: [A-Z]' "$work/invoke.err" && { cat "$work/invoke.err" >&2; die "$name failed"; }
    sleep 2
  done
  [ -n "$result" ] || { cat "$work/invoke.err" >&2; die "$name: no answer from the function"; }
  endpoint=$(field "$result" job_reference_endpoint)
  printf '%-26s job reference endpoint: %s\n' "$name" "$endpoint"
  if [ -z "$first_job" ]; then
    first_job=$(field "$result" job_id)
    first_endpoint=$endpoint
  fi
done

log "delivering scheduled-rule.json again (a duplicate delivery: same event id)"
again=$(invoke "$(sample scheduled-rule.json)")
printf '%-26s job reference endpoint: %s (replay: %s)\n' "scheduled-rule.json" \
  "$(field "$again" job_reference_endpoint)" "$(field "$again" replay)"
[ "$(field "$again" replay)" = "true" ] || die "the duplicate was not answered from the idempotency table"

log "following job $first_job with the operator CLI (cloudbot job --follow)"
env -u CLOUDBOT_ACCESS_TOKEN -u CLOUDBOT_SECRET_KEY CLOUDBOT_API_BASE="$base" \
  AWS_ENDPOINT_URL="$moto" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  timeout 120 target/debug/cloudbot --secret-id "$secret_id" --language en \
  job "$first_endpoint" --follow --interval 1s \
  || die "job $first_job did not succeed (cloudbot exit code $?)"

log "the same job through the function (refer_job)"
final=$(invoke "$(sample sfn-refer-job.json "$first_job")")
"$py" -m json.tool <<<"$final"
log "done"
