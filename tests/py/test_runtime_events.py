"""Every sample in events/ through the real Lambda runtime loop (`cargo lambda watch` + `cargo
lambda invoke`), against the emulator binary and moto, each with its expected result."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from conftest import EVENTS, load_event

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
