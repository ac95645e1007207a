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
# Logs of the background processes are kept in a temporary directory, printed at the end.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
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
  if [ "$rc" -ne 0 ]; then
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

log "starting the Cloud BOT emulator (demo seed)"
target/debug/cloudbot-emulator --port 0 >"$work/emulator.out" 2>"$work/emulator.log" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/emulator.out" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^cloudbot-emulator listening on //p' "$work/emulator.out")
[ -n "$base" ] || die "the emulator did not start"
log "emulator: $base"

log "starting moto (Secrets Manager, DynamoDB) with the demo secret and the idempotency table"
moto_port=$(free_port)
.tools/venv-aws/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
wait_port "$moto_port" 60 moto_server
moto="http://127.0.0.1:$moto_port"
# The secret id the function is given by cargo lambda watch (Cargo.toml, one home for it).
secret_id=$("$py" -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["package"]["metadata"]["lambda"]["watch"]["env"]["CLOUDBOT_SECRET_ID"])')
"$py" - "$moto" "$secret_id" <<'PY'
import json, sys, boto3
endpoint, name = sys.argv[1], sys.argv[2]
client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
client.create_secret(Name=name, SecretString=json.dumps(
    {"access_token": "demo-access-token", "secret_key": "demo-secret-key"}))
# The idempotency table, shaped like template.yaml's IdempotencyTable.
dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
dynamodb.create_table(TableName="cloudbot-trigger-idempotency", BillingMode="PAY_PER_REQUEST",
                      AttributeDefinitions=[{"AttributeName": "record_key", "AttributeType": "S"}],
                      KeySchema=[{"AttributeName": "record_key", "KeyType": "HASH"}])
PY

log "starting the function under cargo lambda watch"
watch_port=$(free_port)
# The secret id, region and dummy credentials come from Cargo.toml
# ([package.metadata.lambda.watch]); only what depends on this run's ports is passed here.
setsid cargo lambda watch -A 127.0.0.1 -P "$watch_port" --ignore-changes \
  --env-var "CLOUDBOT_API_BASE=$base" \
  --env-var "CLOUDBOT_DEFAULT_BOT_ENDPOINT=$base/demo/bots/echo_bot/jobs" \
  --env-var "CLOUDBOT_LANGUAGE=en" \
  --env-var "AWS_ENDPOINT_URL=$moto" \
  --env-var "CLOUDBOT_IDEMPOTENCY_TABLE=cloudbot-trigger-idempotency" \
  >"$work/watch.log" 2>&1 &
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
