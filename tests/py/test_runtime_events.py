"""Every sample in events/ through the real Lambda runtime loop (`cargo lambda watch` + `cargo
lambda invoke`), against the emulator binary and moto, each with its expected result."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
import urllib.error
import urllib.request

import pytest

from conftest import EVENTS, FUNCTION, LambdaWatch, load_event

# file -> expected kind: "executed" (job started), "job" (refer_job result), an HTTP status for
# API Gateway samples, or ("error", errorType, text in the message).
EXPECTED = {
    "scheduler-input.json": "executed",
    "scheduler-envelope.json": "executed",
    "scheduled-rule.json": "executed",
    "eventbridge-custom.json": "executed",
    "sfn-execute.json": "executed",
    "sfn-refer-job.json": "job",
    "apigw-v1-execute.json": 202,
    "apigw-v1-refer-job.json": 200,
    "apigw-v1-list-bots.json": 200,
    "apigw-v2-execute.json": 202,
    "apigw-v2-refer-job.json": 200,
    "apigw-v2-list-bots.json": 200,
    "apigw-v1-bad-json-body.json": 400,
    "bad-request-unknown-field.json": ("error", "InvalidRequest", "inptu"),
    "bad-request-foreign-host.json": ("error", "InvalidRequest", "bot_endpoint"),
}


def test_every_event_file_is_covered():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.fixture(scope="module")
def finished_job(invoke, emulator):
    """A job started through the function and followed with refer_job until it finished."""
    ok, started = invoke({"operation": "execute", "public_id": "demo", "bot_id": "echo_bot",
                          "input": {"message": "followed to the end"}})
    assert ok, started
    refer = {"operation": "refer_job", "job_reference_endpoint": started["job_reference_endpoint"]}
    for _ in range(60):
        ok, job = invoke(refer)
        assert ok, job
        if job["status"] != "executing":
            return job
        time.sleep(0.2)
    pytest.fail(f"job {started['job_id']} did not finish")


def assert_job(result: dict, base_url: str, operation: str) -> None:
    assert result["operation"] == operation
    assert result["job_reference_endpoint"] == f"{base_url}/demo/jobs/{result['job_id']}"
    assert result["public_id"] == "demo"
    assert result["bot_id"] == "echo_bot"
    for key in ("bot_name", "status", "status_code", "response_code", "start_time",
                "elapsed_time", "message", "output"):
        assert key in result, key


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event_through_the_runtime(name, invoke, emulator, finished_job):
    expected = EXPECTED[name]
    event = load_event(name, emulator.base_url, finished_job["job_id"])
    requests_before = len(emulator.requests())
    jobs_before = emulator.stats()["jobs_created"]
    ok, payload = invoke(event)

    if expected == "executed":
        assert ok, payload
        assert_job(payload, emulator.base_url, "execute")
        assert payload["status"] == "executing" and payload["status_code"] == 2
        assert payload["response_code"] == 201
        assert emulator.stats()["jobs_created"] == jobs_before + 1
    elif expected == "job":
        assert ok, payload
        assert_job(payload, emulator.base_url, "refer_job")
        assert payload["job_id"] == finished_job["job_id"]
        assert payload["status"] == "succeeded" and payload["status_code"] == 0
        assert payload["output"]["echo"] == "followed to the end"
    elif isinstance(expected, int):
        assert ok, f"API Gateway errors must be responses, not function errors: {payload}"
        assert payload["statusCode"] == expected, payload
        body = json.loads(payload["body"])
        headers = {k.lower(): v for k, v in payload["headers"].items()}
        if expected == 202:
            assert_job(body, emulator.base_url, "execute")
            assert headers["location"] == body["job_reference_endpoint"]
            assert headers["content-type"] == "application/json"
        elif expected == 200 and "refer-job" in name:
            assert_job(body, emulator.base_url, "refer_job")
            assert body["status"] == "succeeded"
        elif expected == 200:
            assert body["operation"] == "list_bots"
            bots = {b["bot_id"]: b for b in body["bots"]}
            assert bots["echo_bot"]["bot_endpoint"] == f"{emulator.base_url}/demo/bots/echo_bot/jobs"
        else:
            assert headers["content-type"] == "application/problem+json"
            assert body["error_type"] == "InvalidRequest" and body["status"] == expected
            assert len(emulator.requests()) == requests_before
    else:
        _, error_type, needle = expected
        assert not ok, payload
        assert payload["errorType"] == error_type, payload
        assert needle in payload["errorMessage"], payload
        assert len(emulator.requests()) == requests_before, "nothing may reach Cloud BOT"


def test_logs_are_json_and_free_of_secrets(invoke, lambda_watch):
    ok, _ = invoke(load_event("apigw-v1-list-bots.json"))
    assert ok
    logs = lambda_watch.log_path.read_text()
    for secret in ("demo-access-token", "demo-secret-key", "caller-token-that-must-never-be-logged"):
        assert secret not in logs
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    finished = [l for l in lines if l.get("fields", {}).get("message") in
                ("invocation succeeded", "invocation failed")]
    assert finished, "the function logs one JSON summary line per invocation"
    span = finished[-1]["span"]
    assert span["name"] == "invocation" and span["trigger"] == "apigw-rest"
    assert span["operation"] == "list_bots" and span["upstream_status"] == 200


def test_secret_rotation_while_warm(invoke, emulator, moto):
    """Rotate the token at Cloud BOT and in Secrets Manager while the sandbox holds the old one
    in its cache: the function gets a 401, re-reads the secret once and the execute succeeds."""
    ok, _ = invoke({"operation": "list_bots", "public_id": "demo"})  # warm the cache
    assert ok
    emulator.rotate_token("demo-access-token", "rotated-access-token", "rotated-secret-key")
    moto.put_secret("rotated-access-token", "rotated-secret-key")
    try:
        before = emulator.stats()["jobs_created"]
        ok, started = invoke(load_event("scheduler-input.json"))
        assert ok, started
        assert emulator.stats()["jobs_created"] == before + 1
        statuses = [r["status"] for r in emulator.requests() if r["method"] == "POST"][-2:]
        assert statuses == [401, 201]
    finally:
        # Back to the demo pair for other suites sharing these session fixtures.
        emulator.reset()
        moto.put_secret("demo-access-token", "demo-secret-key")


def test_misconfiguration_stops_the_function_at_start_naming_the_variable(binaries):
    """A bad configuration fails the cold start (before polling for events) with an error that
    names the variable, instead of failing every invocation later."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDBOT_")}
    base.update({"AWS_REGION": "us-east-1", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"})
    for env, variable in (
        ({}, "CLOUDBOT_SECRET_ID"),
        ({"CLOUDBOT_SECRET_ID": "s", "CLOUDBOT_API_BASE": "ftp://api.example"}, "CLOUDBOT_API_BASE"),
        ({"CLOUDBOT_SECRET_ID": "s", "CLOUDBOT_SECRET_TTL_SECONDS": "soon"}, "CLOUDBOT_SECRET_TTL_SECONDS"),
    ):
        done = subprocess.run([str(binaries["function"])], env={**base, **env}, capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert done.returncode != 0
        assert variable in done.stdout + done.stderr


@pytest.mark.parametrize("name", ["scheduled-rule.json", "scheduler-envelope.json", "eventbridge-custom.json"])
def test_a_keyed_sample_delivered_twice_starts_one_job(name, invoke, emulator, moto):
    # A fresh key per run (the samples' own ids are used by the test above in the same session).
    event = load_event(name, emulator.base_url)
    fresh = uuid.uuid4().hex
    if "schedule" in event:
        event["schedule"]["scheduled_time"] = f"2026-11-24T00:00:00Z#{fresh}"
    else:
        event["id"] = fresh
    jobs_before = emulator.stats()["jobs_created"]
    ok, first = invoke(event)
    again_ok, second = invoke(event)

    assert ok and again_ok, (first, second)
    assert (first["replay"], second["replay"]) == (False, True)
    assert second["job_reference_endpoint"] == first["job_reference_endpoint"]
    assert emulator.stats()["jobs_created"] == jobs_before + 1
    assert "completed" in moto.records().values()
    # One run in the ledger for the job, with its trigger (docs/ledger.md).
    job_id = first["job_reference_endpoint"].rsplit("/", 1)[1]
    runs = [r for r in moto.runs() if r["run"]["S"].endswith("/" + job_id)]
    assert len(runs) == 1, runs
    trigger = {"scheduler-envelope.json": "scheduler"}.get(name, "eventbridge")
    assert runs[0]["trigger"]["S"] == trigger


# --------------------------------------------------------------------------------------------
# payloads lambda_runtime's own deserializer used to reject, and logging at TRACE


def invoke_bytes(watch: LambdaWatch, body: bytes) -> tuple[bool, dict]:
    """Invokes through watch's Lambda Invoke API with the payload bytes exactly as given
    (`cargo lambda invoke` sends only text): `(True, result)` or `(False, {"errorType", ...})`."""
    url = f"http://127.0.0.1:{watch.port}/2015-03-31/functions/{FUNCTION}/invocations"
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            failed = response.headers.get("X-Amz-Function-Error") is not None
            payload = json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        failed, payload = True, json.loads(error.read() or b"null")
    if isinstance(payload, dict) and "errorType" in payload:
        failed = True
    return not failed, payload


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


RAW_PAYLOADS = {
    "arrays 129 deep": (nested(129), "nested deeper than 128"),
    "arrays 200000 deep": (nested(200_000), "nested deeper"),
    "deep EventBridge detail": (
        b'{"detail-type":"Run","source":"app","detail":{"input":' + nested(300) + b"}}",
        "at `detail.input[0][0]",
    ),
    "timeout 1e400": (b'{"public_id":"demo","bot_id":"echo_bot","timeout":1e400}', "field `timeout`"),
    "timeout of 400 digits": (b'{"public_id":"demo","bot_id":"echo_bot","timeout":' + b"9" * 400 + b"}",
                              "field `timeout`"),
    "huge number in input": (b'{"public_id":"demo","bot_id":"echo_bot","input":{"n":[-1e999]}}',
                             "field `input.n[0]`"),
    "not UTF-8": (b'{"public_id":"demo","bot_id":"\xff\xfe"}', "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(RAW_PAYLOADS))
def test_payloads_the_runtime_used_to_reject_get_invalid_request(case, lambda_watch, emulator):
    body, needle = RAW_PAYLOADS[case]
    requests_before = len(emulator.requests())
    started = time.monotonic()
    ok, payload = invoke_bytes(lambda_watch, body)
    assert not ok, payload
    assert payload["errorType"] == "InvalidRequest", payload
    assert needle in payload["errorMessage"], payload
    assert time.monotonic() - started < 30
    assert len(emulator.requests()) == requests_before, "nothing may reach Cloud BOT"
    # The runtime loop goes on.
    ok, _ = invoke_bytes(lambda_watch, b'{"operation":"list_bots","public_id":"demo"}')
    assert ok


@pytest.fixture(scope="module")
def trace_watch(binaries, lambda_env, tmp_path_factory):
    """A second `cargo lambda watch` with the function at AWS_LAMBDA_LOG_LEVEL=TRACE."""
    watch = LambdaWatch.start({**lambda_env, "AWS_LAMBDA_LOG_LEVEL": "TRACE"},
                              tmp_path_factory.mktemp("watch-trace") / "watch.log")
    yield watch
    watch.stop()


def test_trace_logs_carry_no_raw_event_header_input_or_secret(trace_watch, emulator):
    for name in ("apigw-v1-execute.json", "apigw-v2-execute.json", "scheduler-input.json"):
        ok, _ = invoke_bytes(trace_watch, json.dumps(load_event(name, emulator.base_url)).encode())
        assert ok, name
    logs = trace_watch.log_path.read_text(errors="replace")
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    # The level is in effect: the DEBUG lines show. (The function has no TRACE events of its own,
    # and the runtime, AWS SDK and HTTP crates, whose TRACE lines were the ones that printed raw
    # events and whole requests, are capped at DEBUG: src/telemetry.rs.)
    assert any(line.get("level") == "DEBUG" for line in lines), "the function logs at TRACE"
    assert "raw JSON event" not in logs
    for secret in ("demo-access-token", "demo-secret-key", "caller-token-that-must-never-be-logged",
                   "Hello from API Gateway", "Hello from EventBridge Scheduler"):
        assert secret not in logs, secret


def test_a_payload_that_is_not_utf8_does_not_end_the_function_at_trace(trace_watch):
    ok, payload = invoke_bytes(trace_watch, b'{"operation":"list_bots","public_id":"\xff"}')
    assert not ok and payload["errorType"] == "InvalidRequest", payload
    ok, payload = invoke_bytes(trace_watch, b'{"operation":"list_bots","public_id":"demo"}')
    assert ok, payload
    assert trace_watch.proc.poll() is None
    assert "Failed to parse raw JSON event" not in trace_watch.log_path.read_text(errors="replace")
