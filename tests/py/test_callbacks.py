"""Callback-driven runs, end to end and offline (statemachine/run-bot-callback.asl.json):

    start_execution -> moto (ASL interpreter) -> Lambda proxy -> cargo lambda watch -> function
        -> callback record in DynamoDB (moto) -> execute on the emulator with our callback URL
    emulator job ends -> POST callback -> CallbackGateway (stands in for the callback HTTP API:
        request -> API Gateway v2 event -> function -> response) -> refer_job on the emulator
        -> SendTaskSuccess / SendTaskFailure (moto) -> the execution ends

The function here has its own `cargo lambda watch`: its AWS endpoint is the moto that runs the
state machines (Step Functions, and the idempotency table conftest's Moto creates, which also
holds the callback records), and CLOUDBOT_CALLBACK_BASE_URL points at the gateway. Every test resets the emulator.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests

from conftest import FUNCTION, LambdaWatch, Moto, function_env
from lambda_proxy import LambdaProxy
from test_state_machines import ERROR_BOT_MESSAGE, REGION, ROLE_ARN, definition, states_entered

CALLBACK_TIMEOUT_S = 8


@dataclass
class Delivery:
    """One callback the gateway received."""

    path: str
    body_len: int
    status: int
    answer: object
    at: float


@dataclass
class _GatewayState:
    target: str | None = None
    down: bool = False
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        # Signalled on every recorded delivery (CallbackGateway.wait_for).
        self.changed = threading.Condition(self.lock)


class CallbackGateway:
    """The callback API on loopback: each POST becomes an API Gateway HTTP API (payload 2.0) event
    for the function under watch, and the function's response becomes the HTTP answer. `down`
    answers 503 without calling the function (a receiver that is down)."""

    def __init__(self):
        self.state = _GatewayState()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, answer = gateway._forward(self.path, dict(self.headers), body)
                data = answer.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callbacks"

    def set_target(self, watch_port: int) -> None:
        self.state.target = f"http://127.0.0.1:{watch_port}/2015-03-31/functions/{FUNCTION}/invocations"

    def deliveries(self) -> list[Delivery]:
        with self.state.lock:
            return list(self.state.deliveries)

    def wait_for(self, ready, timeout_s: float = 20.0) -> list[Delivery]:
        """The deliveries once `ready(deliveries)` holds. A delivery is recorded when the function
        has answered it, which can be just after the execution it settled has ended."""
        with self.state.changed:
            if not self.state.changed.wait_for(lambda: ready(self.state.deliveries), timeout_s):
                raise AssertionError(f"callback deliveries not as expected: {self.state.deliveries}")
            return list(self.state.deliveries)

    def clear(self) -> None:
        with self.state.lock:
            self.state.deliveries.clear()
            self.state.down = False

    def _forward(self, path: str, headers: dict, body: bytes) -> tuple[int, dict, str]:
        if self.state.down:
            status, out_headers, answer = 503, {}, '{"message":"Service Unavailable"}'
        else:
            event = {
                "version": "2.0",
                "routeKey": "POST /callbacks/{id}",
                "rawPath": path,
                "rawQueryString": "",
                "headers": {k.lower(): v for k, v in headers.items()},
                "pathParameters": {"id": path.rsplit("/", 1)[-1]},
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "cbapi",
                    "domainName": "cbapi.execute-api.us-east-1.amazonaws.com",
                    "domainPrefix": "cbapi",
                    "http": {
                        "method": "POST",
                        "path": path,
                        "protocol": "HTTP/1.1",
                        "sourceIp": "203.0.113.20",
                        "userAgent": headers.get("User-Agent", ""),
                    },
                    "requestId": uuid.uuid4().hex,
                    "routeKey": "POST /callbacks/{id}",
                    "stage": "$default",
                    "time": "01/Dec/2026:00:00:00 +0000",
                    "timeEpoch": int(time.time() * 1000),
                },
                "isBase64Encoded": False,
                "body": body.decode("utf-8", "replace"),
            }
            request = urllib.request.Request(
                self.state.target, data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as resp:
                    response = json.loads(resp.read())
                status = int(response["statusCode"])
                out_headers = {k: v for k, v in (response.get("headers") or {}).items() if k.lower() != "content-length"}
                answer = response.get("body") or ""
            except (urllib.error.URLError, OSError, ValueError, KeyError) as err:
                # Like API Gateway when the integration fails.
                status, out_headers, answer = 502, {}, json.dumps({"message": f"integration failed: {err}"})
        try:
            parsed = json.loads(answer)
        except ValueError:
            parsed = answer
        with self.state.changed:
            self.state.deliveries.append(Delivery(path, len(body), status, parsed, time.time()))
            self.state.changed.notify_all()
        return status, out_headers, answer

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Stack:
    """moto (Step Functions + the table), the gateway, the function under watch (started with
    `env`), the machine."""

    def __init__(self, moto: Moto, gateway: CallbackGateway, watch: LambdaWatch, proxy: LambdaProxy, env: dict[str, str]):
        self.moto, self.gateway, self.watch, self.proxy, self.env = moto, gateway, watch, proxy, env
        self.sfn = boto3.client(
            "stepfunctions", endpoint_url=moto.endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
        )
        overrides = {"CallbackTimeoutSeconds": str(CALLBACK_TIMEOUT_S)}
        self.machine = self.sfn.create_state_machine(
            name="run-bot-callback", definition=definition("run-bot-callback.asl.json", **overrides), roleArn=ROLE_ARN
        )["stateMachineArn"]
        self.polling = self.sfn.create_state_machine(
            name="run-bot", definition=definition("run-bot.asl.json"), roleArn=ROLE_ARN
        )["stateMachineArn"]
        self.map = self.sfn.create_state_machine(
            name="run-bot-map", definition=definition("run-bot-map.asl.json", **overrides), roleArn=ROLE_ARN
        )["stateMachineArn"]

    def start(self, execution_input: dict, machine: str | None = None) -> str:
        return self.sfn.start_execution(stateMachineArn=machine or self.machine, name=uuid.uuid4().hex, input=json.dumps(execution_input))[
            "executionArn"
        ]

    def wait(self, arn: str, timeout_s: float = 60) -> tuple[dict, list[dict]]:
        end = time.monotonic() + timeout_s
        while True:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution, self.history(arn)
            if time.monotonic() > end:
                self.sfn.stop_execution(executionArn=arn)
                pytest.fail(f"execution still RUNNING after {timeout_s} s: {self.history(arn)[-5:]}")
            time.sleep(0.1)

    def run(self, execution_input: dict, timeout_s: float = 60, machine: str | None = None) -> tuple[dict, list[dict]]:
        return self.wait(self.start(execution_input, machine), timeout_s)

    def history(self, arn: str) -> list[dict]:
        return self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

    def log(self) -> str:
        return self.watch.log_path.read_text(errors="replace")

    def serve_with(self, watch: LambdaWatch) -> None:
        """Sends the state machines' Lambda tasks and the callbacks to `watch`."""
        self.proxy.set_target(f"http://127.0.0.1:{watch.port}")
        self.gateway.set_target(watch.port)


@pytest.fixture(scope="module")
def stack(binaries, emulator, tmp_path_factory):
    dirs = tmp_path_factory.mktemp("callbacks")
    with LambdaProxy() as proxy:
        gateway = CallbackGateway()
        moto = Moto(dirs / "moto.log", env={"MOTO_PORT": str(proxy.port)})
        watch = None
        try:
            requests.post(
                f"{moto.endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
            ).raise_for_status()
            env = {
                **function_env(emulator.base_url, moto.endpoint),
                "CLOUDBOT_CALLBACK_BASE_URL": gateway.base_url,
                "RUST_LOG": "debug",
            }
            # Two instances: a callback can arrive while the execute that registered it still runs.
            watch = LambdaWatch.start(env, dirs / "watch.log", concurrency=2)
            stack = Stack(moto, gateway, watch, proxy, env)
            stack.serve_with(watch)
            yield stack
        finally:
            if watch is not None:
                watch.stop()
            moto.stop()
            gateway.close()


@pytest.fixture()
def emu(emulator, stack):
    emulator.reset()
    stack.gateway.clear()
    yield emulator
    emulator.clear_faults()


def bot(emulator, bot_id: str) -> str:
    return f"{emulator.base_url}/demo/bots/{bot_id}/jobs"


def task_token(history: list[dict]) -> str:
    scheduled = next(e for e in history if e["type"] == "TaskScheduled")
    return json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Payload"]["task_token"]


def settlements(history: list[dict]) -> list[str]:
    """How the waiting (`.waitForTaskToken`) tasks ended; the plain Lambda tasks' ends (ReferJob,
    QuickRead, ...) are not settlements."""
    ends = ("TaskSucceeded", "TaskFailed", "TaskTimedOut")
    return [
        e["type"]
        for e in history
        if e["type"] in ends and e.get(e["type"][0].lower() + e["type"][1:] + "EventDetails", {}).get("resource") != "invoke"
    ]


def post(url: str, body: bytes) -> tuple[int, object]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def callback_url(emu) -> str:
    """The callback endpoint the function gave Cloud BOT (the id is in the path, shown as is)."""
    [job] = emu.jobs()
    return job["callback_endpoint"]


def reads_of(emu, job_id: str) -> int:
    return sum(1 for r in emu.requests() if r["method"] == "GET" and r["path"].endswith(f"/jobs/{job_id}"))


# ------------------------------------------------------------------------------------------------


def test_the_callback_settles_the_task_with_the_job_output(stack, emu):
    execution, history = stack.run({"request": {"bot_endpoint": bot(emu, "echo_bot"), "input": {"message": "hi callback"}}})

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["operation"] == "refer_job" and output["status"] == "succeeded"
    assert output["output"]["echo"] == "hi callback"
    [job] = emu.jobs()
    assert job["job_id"] == output["job_id"]
    assert job["callback_endpoint"].startswith(stack.gateway.base_url + "/")
    assert "WaitForJob" not in states_entered(history) and "RecoverJob" not in states_entered(history)
    assert "LookSoon" not in states_entered(history), "the job read as ended: no short loop"
    assert settlements(history) == ["TaskSucceeded"]
    [delivery] = stack.gateway.wait_for(lambda ds: len(ds) >= 1)
    assert delivery.status == 200 and delivery.answer == {"operation": "callback", "delivery": "settled"}
    # One execute and one read (the callback's refer_job); the body of the callback was not used.
    assert [r["method"] for r in emu.requests()] == ["POST", "GET"]
    token, secret_id = task_token(history), job["callback_endpoint"].rsplit("/", 1)[-1]
    log = stack.log()
    assert token not in log and secret_id not in log, "a task token or a callback id was logged"


# A DEBUG line of the AWS SDK's (aws_smithy_runtime) that every DynamoDB / Step Functions call writes:
# proof that the SDK's own logs reach the capture at the level under test.
SDK_DEBUG_LINE = "resolving endpoint"


@pytest.mark.parametrize(
    "rust_log",
    [
        "info",
        "debug",
        "trace",
        # Per-target directives must not raise what the SDK and HTTP crates may log.
        "trace,aws_smithy_runtime=trace,aws_sdk_dynamodb=trace,aws_sdk_sfn=trace,aws_sigv4=trace,hyper=trace,reqwest=trace",
    ],
)
def test_no_task_token_or_callback_id_is_logged_at_any_level(stack, emu, tmp_path, rust_log):
    """A real callback-driven run (register, execute, callback, SendTaskSuccess: the callback record
    is written, read and settled in DynamoDB several times) through a function logging at
    `rust_log`: the task token and the callback id appear nowhere in its output. At TRACE the
    AWS SDK used to print every DynamoDB item and the SendTaskSuccess request in full."""
    watch = LambdaWatch.start({**stack.env, "RUST_LOG": rust_log}, tmp_path / "watch.log", concurrency=2)
    try:
        stack.serve_with(watch)
        execution, history = stack.run({"request": {"bot_endpoint": bot(emu, "echo_bot"), "input": {"message": "log levels"}}})
        stack.gateway.wait_for(lambda ds: any(d.status == 200 for d in ds))
    finally:
        stack.serve_with(stack.watch)
        watch.stop()

    assert execution["status"] == "SUCCEEDED", execution
    assert settlements(history) == ["TaskSucceeded"] and "RecoverJob" not in states_entered(history)
    log = watch.log_path.read_text(errors="replace")
    token, callback_id = task_token(history), callback_url(emu).rsplit("/", 1)[-1]
    assert token not in log, f"RUST_LOG={rust_log}: the task token was logged"
    assert callback_id not in log, f"RUST_LOG={rust_log}: the callback id was logged"
    # The capture is real: the invocations were logged, and from DEBUG on the SDK's own lines too.
    assert log.count("invocation succeeded") >= 2, log[-2000:]
    assert (SDK_DEBUG_LINE in log) == (rust_log != "info"), f"RUST_LOG={rust_log}"


def test_an_error_bot_fails_the_execution_with_cloudbot_job_failed(stack, emu):
    execution, history = stack.run({"request": {"bot_endpoint": bot(emu, "error_bot")}})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.JobFailed"
    # moto 5.2.5 drops SendTaskFailure's `cause` (its responses.py passes only `error` on), so the
    # BOT's message as the cause is checked at unit level (src/callback/outcome.rs) and here only
    # where moto keeps it.
    assert execution.get("cause") in (None, ERROR_BOT_MESSAGE)
    assert settlements(history) == ["TaskFailed"]
    assert [d.status for d in stack.gateway.wait_for(lambda ds: len(ds) >= 1)] == [200]


def test_a_lost_callback_ends_through_the_polling_fallback(stack, emu):
    stack.gateway.state.down = True  # every callback attempt gets 503: callback_tries are spent
    started = time.monotonic()
    execution, history = stack.run({"request": {"bot_endpoint": bot(emu, "echo_bot")}, "wait_seconds": 1})

    assert execution["status"] == "SUCCEEDED", execution
    assert time.monotonic() - started >= CALLBACK_TIMEOUT_S
    entered = states_entered(history)
    assert "RecoverJob" in entered and "ReferJob" in entered
    output = json.loads(execution["output"])
    assert output["status"] == "succeeded" and output["output"]["echo"]
    # Never a second start: the fallback got the job as a replay.
    assert [r["method"] for r in emu.requests()].count("POST") == 1
    assert [d.status for d in stack.gateway.deliveries()] == [503, 503, 503]


def test_hostile_callbacks_change_nothing_and_cost_nothing_upstream(stack, emu):
    # Unknown, well-formed ids (a burst), malformed ids, and an oversized body: 404, no upstream call.
    before = len(emu.requests())
    for _ in range(20):
        status, answer = post(f"{stack.gateway.base_url}/{secrets.token_urlsafe(32)}", b'{"job_id":"x","status":0}')
        assert status == 404 and answer["error_type"] == "Callback.NotFound"
    status, answer = post(f"{stack.gateway.base_url}/short", b"{}")
    assert status == 404 and answer["error_type"] == "Callback.NotFound", answer
    status, _ = post(f"{stack.gateway.base_url}/{secrets.token_urlsafe(32)}", b"x" * (2 * 1024 * 1024))
    assert status == 404
    assert len(emu.requests()) == before

    # A valid id with a body naming another job and a foreign URL, while the BOT still runs: the
    # receiver reads the stored job from Cloud BOT and acts on what Cloud BOT says.
    arn = stack.start({"request": {"bot_endpoint": bot(emu, "slow_bot"), "input": {"message": "real"}}})
    end = time.monotonic() + 20
    while not emu.jobs():
        assert time.monotonic() < end
        time.sleep(0.05)
    url = callback_url(emu)
    forged = json.dumps(
        {
            "code": 201, "job_id": "11111111-1111-1111-1111-111111111111", "bot_id": "slow_bot", "bot_name": "x",
            "status": 0, "start_time": "2026-12-01T00:00:00Z", "output": {"echo": "forged"},
            "job_reference_endpoint": "http://203.0.113.66/demo/jobs/evil",
        }
    ).encode()
    status, answer = post(url, forged)
    execution, history = stack.wait(arn)

    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"])["output"]["echo"] == "real"
    assert settlements(history) == ["TaskSucceeded"], "one settlement only"
    paths = [r["path"] for r in emu.requests()]
    assert not any("11111111" in p or "evil" in p for p in paths)
    # The forged delivery found the job still executing: it told the task to look (the workflow
    # read the job itself until it ended), never the forged body.
    assert status == 200 and answer["delivery"] == "signalled", answer
    assert "LookSoon" in states_entered(history)
    # Second (and later) deliveries of the real callback: 2xx, no upstream read, no settlement.
    job_id = emu.jobs()[0]["job_id"]
    reads = reads_of(emu, job_id)
    status, answer = post(url, forged)
    assert status == 200 and answer == {"operation": "callback", "delivery": "already_settled"}
    assert reads_of(emu, job_id) == reads
    path = urllib.parse.urlsplit(url).path
    real = [d.status for d in stack.gateway.wait_for(lambda ds: any(d.path == path for d in ds)) if d.path == path]
    assert real and all(s == 200 for s in real), real
    assert task_token(history) not in stack.log()


def test_figures_job_end_to_execution_end_callback_vs_polling(stack, emu, capsys):
    """Figures for docs/state-machines.md (printed, not asserted: timings on a shared machine are
    reported, never tested). Reproduce with
    `.tools/venv-aws/bin/pytest tests/py/test_callbacks.py -k figures -s`.

    The lag is measured from the job's end on the emulator's clock to the execution's stop, for the
    same BOT (slow_bot, 3 s) on both paths; polling with wait_seconds 2 (deployments default to 30,
    where the expected lag is 15 s + one poll). Lambda invocations per run are counted from the
    history (TaskScheduled) and the callback gateway (the receiver's own invocation), and the
    10-minute figures are computed from the same loop: one refer_job per WaitForJob."""
    import math
    from datetime import datetime

    def run(machine, wait_seconds=None):
        emu.reset()
        stack.gateway.clear()
        execution_input = {"request": {"bot_endpoint": bot(emu, "slow_bot")}}
        if wait_seconds is not None:
            execution_input["wait_seconds"] = wait_seconds
        execution, history = stack.run(execution_input, machine=machine)
        assert execution["status"] == "SUCCEEDED", execution
        [job] = emu.jobs()
        ended = datetime.fromisoformat(job["end_time"].replace("Z", "+00:00"))
        scheduled = sum(1 for e in history if e["type"] == "TaskScheduled")
        if machine == stack.machine:  # the receiver's invocation is recorded once it answered
            stack.gateway.wait_for(lambda ds: any(d.status == 200 for d in ds))
        receiver = sum(1 for d in stack.gateway.deliveries() if d.status != 503)
        polls = states_entered(history).count("WaitForJob")
        return (execution["stopDate"] - ended).total_seconds(), scheduled + receiver, polls

    runs = 3
    callback = [run(stack.machine) for _ in range(runs)]
    polling = [run(stack.polling, wait_seconds=2) for _ in range(runs)]
    # The loops, as the counts show them: the callback path is one ExecuteBot and one receiver
    # invocation whatever the BOT's duration; polling is one ExecuteBot plus one refer_job per
    # wait, and a job ending at D s is seen by wait ceil(D / W) or the one after it (or the
    # one before it when the execute's answer and the state transition took longer than
    # ceil(D / W) * W - D s, as on a loaded machine: the first wait starts that much later).
    assert all(n == 2 and polls == 0 for _, n, polls in callback), callback
    assert all(n == 1 + polls for _, n, polls in polling), polling
    expected_polls = range(math.ceil(3 / 2) - 1, math.ceil(3 / 2) + 2)
    assert all(polls in expected_polls for _, _, polls in polling), polling
    bot_s, wait_s = 600, 30
    ten_minutes = (1 + math.ceil(bot_s / wait_s), 1 + math.ceil(bot_s / wait_s) + 1)
    with capsys.disabled():
        print(f"\njob end -> execution end (s), slow_bot 3 s, {runs} runs each:")
        print("  callback:            ", ", ".join(f"{s:.2f}" for s, _, _ in callback), " invocations:", [n for _, n, _ in callback])
        print("  polling (wait 2 s):  ", ", ".join(f"{s:.2f}" for s, _, _ in polling), " invocations:", [n for _, n, _ in polling])
        print(f"Lambda invocations, {bot_s // 60}-minute BOT, wait_seconds {wait_s}: polling {ten_minutes[0]}-{ten_minutes[1]}, callback 2")


def suspend(emu, job_id: str) -> None:
    """Stops a running job through the Cloud BOT API, as its owner would: it ends in error."""
    request = urllib.request.Request(
        f"{emu.base_url}/demo/jobs/{job_id}",
        method="DELETE",
        headers={
            "access-token": "demo-access-token",
            "secret-key": "demo-secret-key",
            "content-type": "application/json",
            "content-language": "en",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def test_a_map_of_callback_driven_items_is_settled_item_by_item(stack, emu):
    # Three items followed by callback (MaxConcurrency 2): each ExecuteBotAndWait waits with its
    # own task token and key; the first job is stopped (it ends in error). Every item is settled
    # by its own callback, the Map reports each item as the polling path does, three jobs start.
    messages = ["first", "second", "third"]
    arn = stack.start(
        {"bot_endpoint": bot(emu, "slow_bot"), "inputs": [{"message": m} for m in messages], "follow": "callback", "wait_seconds": 1},
        machine=stack.map,
    )
    end = time.monotonic() + 30
    while not emu.jobs():
        assert time.monotonic() < end
        time.sleep(0.05)
    stopped = emu.jobs()[0]["job_id"]
    suspend(emu, stopped)
    execution, history = stack.wait(arn, 90)

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.SomeJobsFailed"
    results = json.loads(next(e for e in history if e["type"] == "MapStateExited")["stateExitedEventDetails"]["output"])["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    failed = [r for r in results if not r["succeeded"]]
    assert len(failed) == 1 and failed[0]["status"] == "error", results
    assert failed[0]["job"]["job_id"] == stopped and failed[0]["job"]["status"] == "error"
    for r in results:
        if r["succeeded"]:
            assert r["status"] == "succeeded" and r["job"]["output"]["echo"] == messages[r["index"]], r
    # Three jobs, each started once; the error item's RecoverJob was a replay.
    assert [r["method"] for r in emu.requests()].count("POST") == 3
    assert len(emu.jobs()) == 3
    entered = states_entered(history)
    assert entered.count("ExecuteBotAndWait") == 3 and "ExecuteBot" not in entered
    assert entered.count("RecoverJob") == 1, "only the error item is read back, to report its job"
    # Lambda invocations (docs/state-machines.md's table): two per item (ExecuteBotAndWait and its
    # callback), plus RecoverJob and one ReferJob for the item that ended in error.
    assert sum(1 for e in history if e["type"] == "TaskScheduled") == 3 + 2
    # Every item was settled by its own callback (one id, token and key per item).
    deliveries = stack.gateway.wait_for(lambda ds: len(ds) >= 3)
    assert [d.status for d in deliveries] == [200] * 3, deliveries
    assert all(d.answer["delivery"] == "settled" for d in deliveries)
    assert len({d.path for d in deliveries}) == 3
    waits = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]
        for e in history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"].endswith("waitForTaskToken")
    ]
    assert len({w["task_token"] for w in waits}) == 3
    assert sorted(w["idempotency_key"].split("#")[1] for w in waits) == ["RunEach[0]", "RunEach[1]", "RunEach[2]"]
    assert settlements(history).count("TaskTimedOut") == 0
    log = stack.log()
    assert not any(w["task_token"] in log for w in waits), "a task token was logged"


def test_a_map_item_whose_callback_never_comes_ends_through_the_polling_fallback(stack, emu):
    stack.gateway.state.down = True  # every callback attempt gets 503: callback_tries are spent
    execution, history = stack.run(
        {"bot_endpoint": bot(emu, "echo_bot"), "inputs": [{"message": "a"}, {"message": "b"}], "follow": "callback", "wait_seconds": 1},
        machine=stack.map,
    )

    assert execution["status"] == "SUCCEEDED", execution
    results = json.loads(execution["output"])["results"]
    assert [r["job"]["output"]["echo"] for r in results] == ["a", "b"]
    entered = states_entered(history)
    assert entered.count("RecoverJob") == 2 and "ReferJob" in entered
    assert [r["method"] for r in emu.requests()].count("POST") == 2, "the fallback replays, never starts again"


def schedule_input(request: dict, scheduled_time: str) -> dict:
    """The input the template's schedule gives RunBotCallback (its `Input`, with ScheduleInput and
    the Scheduler's context attributes filled in as EventBridge Scheduler does)."""
    import yaml

    from test_template import TEMPLATE, CfnLoader

    template = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    events = template["Resources"]["RunBotCallbackStateMachine"]["Properties"]["Events"]
    text = events["Schedule"]["Properties"]["Input"]["Fn::Sub"]
    text = text.replace("${ScheduleInput}", json.dumps(request))
    text = text.replace("<aws.scheduler.schedule-arn>", "arn:aws:scheduler:us-east-1:123456789012:schedule/default/cloudbot-Schedule")
    text = text.replace("<aws.scheduler.scheduled-time>", scheduled_time)
    return json.loads(text)


@pytest.mark.parametrize(
    ("bot_id", "status", "error"), [("echo_bot", "SUCCEEDED", None), ("error_bot", "FAILED", "CloudBot.JobFailed")]
)
def test_a_scheduled_run_through_the_workflow_ends_with_the_job_outcome(stack, emu, bot_id, status, error):
    execution_input = schedule_input({"bot_endpoint": bot(emu, bot_id)}, f"2026-12-01T09:00:0{len(bot_id) % 10}Z")
    execution, history = stack.run(execution_input)

    assert execution["status"] == status, execution
    assert execution.get("error") == error
    assert [r["method"] for r in emu.requests()].count("POST") == 1
    # The run is keyed by the schedule and its time, not by the execution.
    scheduled = json.loads(next(e for e in history if e["type"] == "TaskScheduled")["taskScheduledEventDetails"]["parameters"])
    assert scheduled["Payload"]["idempotency_key"].startswith("schedule:arn:aws:scheduler:")
    assert "ScheduleKey" in states_entered(history)


def test_a_duplicate_schedule_delivery_runs_the_bot_once_and_both_executions_end_with_it(stack, emu):
    # EventBridge Scheduler delivers at least once: two executions for one scheduled run. The
    # second's ExecuteBot is answered with a replay and its new token takes over the callback
    # record; the first ends through the fallback. One BOT run, two correct outcomes.
    execution_input = schedule_input({"bot_endpoint": bot(emu, "slow_bot")}, "2026-12-01T10:00:00Z")
    first = stack.start(execution_input)
    end = time.monotonic() + 20
    while not emu.jobs():
        assert time.monotonic() < end
        time.sleep(0.05)
    second = stack.start(execution_input)
    results = [stack.wait(first, 60), stack.wait(second, 60)]

    assert [r["method"] for r in emu.requests()].count("POST") == 1, "the BOT ran once"
    outputs = [json.loads(execution["output"]) for execution, _ in results]
    assert [e["status"] for e, _ in results] == ["SUCCEEDED", "SUCCEEDED"]
    assert outputs[0]["job_id"] == outputs[1]["job_id"]
    # The second execution (the newest token) was settled by the callback.
    assert "RecoverJob" not in states_entered(results[1][1])


def test_a_callback_before_the_execute_answer_is_recorded_is_neither_lost_nor_trusted(stack, emu):
    # The execute answer comes 2 s late while the BOT ends after 0.3 s: the first callback
    # finds the record without its job, re-reads it for about a second, and answers 503
    # (Callback.NotReady) rather than act on the body; Cloud BOT's next attempt settles the task.
    emu.set_faults([{"fault": "latency", "latency_ms": 2000, "method": "POST", "path_prefix": "/demo/bots", "count": 1}])
    execution, history = stack.run({"request": {"bot_endpoint": bot(emu, "echo_bot"), "input": {"message": "fast"}}})

    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"])["output"]["echo"] == "fast"
    statuses = [d.status for d in stack.gateway.wait_for(lambda ds: ds and ds[-1].status == 200)]
    assert statuses[0] == 503 and statuses[-1] == 200, statuses
    assert stack.gateway.deliveries()[0].answer["error_type"] == "Callback.NotReady"
    assert settlements(history) == ["TaskSucceeded"]
    assert "RecoverJob" not in states_entered(history)


# ------------------------------------------------------------------------------------------------
# Hold mode: the job reads executing until its callback is acknowledged (emulator/README.md, "Hold
# mode"). [I] Cloud BOT counts callback-retry time in the job's run, so the real service may do
# this; the default mode (every test above) is the other possibility. Both must end on time.


def hold_until_callback_ack(emu) -> None:
    emu.admin("PUT", "callback-hold", {"enabled": True})
    assert emu.admin("GET", "callback-hold")["enabled"] is True


def test_hold_mode_a_callback_finding_the_job_executing_wakes_the_short_loop(stack, emu):
    hold_until_callback_ack(emu)
    started = time.monotonic()
    execution, history = stack.run({"request": {"bot_endpoint": bot(emu, "echo_bot"), "input": {"message": "held"}}})

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["status"] == "succeeded" and output["output"]["echo"] == "held"
    # The callback was a signal, the result came from the workflow's own read after the
    # acknowledgement released the job: no wait for the callback timeout, no fallback.
    entered = states_entered(history)
    assert "LookSoon" in entered and "QuickRead" in entered, entered
    assert "RecoverJob" not in entered and "WaitForJob" not in entered, entered
    assert time.monotonic() - started < CALLBACK_TIMEOUT_S
    assert settlements(history) == ["TaskSucceeded"]
    # The waiting task's output (the first task end; QuickRead's come after it).
    signal = json.loads(next(e for e in history if e["type"] == "TaskSucceeded")["taskSucceededEventDetails"]["output"])
    [job] = emu.jobs()
    assert signal == {
        "signal": "job_not_final",
        "status": "executing",
        "job_reference_endpoint": f"{emu.base_url}/demo/jobs/{job['job_id']}",
    }
    [delivery] = stack.gateway.wait_for(lambda ds: len(ds) >= 1)
    assert delivery.status == 200 and delivery.answer == {"operation": "callback", "delivery": "signalled"}
    # One start; the receiver's one read, then the short loop's reads.
    methods = [r["method"] for r in emu.requests()]
    assert methods.count("POST") == 1 and methods.count("GET") == 1 + entered.count("QuickRead")
    assert job["status"] == 0 and not job.get("held_for_callback")


def test_hold_mode_an_error_bot_still_fails_with_cloudbot_job_failed(stack, emu):
    hold_until_callback_ack(emu)
    execution, history = stack.run({"request": {"bot_endpoint": bot(emu, "error_bot")}})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.JobFailed"
    assert execution.get("cause") in (None, ERROR_BOT_MESSAGE)
    entered = states_entered(history)
    assert "LookSoon" in entered and "RecoverJob" not in entered, entered
    assert [d.answer["delivery"] for d in stack.gateway.wait_for(lambda ds: len(ds) >= 1)] == ["signalled"]


def test_hold_mode_map_items_are_woken_item_by_item(stack, emu):
    hold_until_callback_ack(emu)
    execution, history = stack.run(
        {"bot_endpoint": bot(emu, "echo_bot"), "inputs": [{"message": "a"}, {"message": "b"}], "follow": "callback", "wait_seconds": 30},
        machine=stack.map,
    )

    assert execution["status"] == "SUCCEEDED", execution
    results = json.loads(execution["output"])["results"]
    assert [r["job"]["output"]["echo"] for r in results] == ["a", "b"]
    entered = states_entered(history)
    assert entered.count("LookSoon") == 2 and "RecoverJob" not in entered and "WaitForJob" not in entered, entered
    assert [r["method"] for r in emu.requests()].count("POST") == 2
    deliveries = stack.gateway.wait_for(lambda ds: len(ds) >= 2)
    assert [d.answer["delivery"] for d in deliveries] == ["signalled", "signalled"]
