"""The state machines of template.yaml, run for real: moto's Step Functions interpreter executes the
very ASL files under statemachine/, every `lambda:invoke` task goes through tests/py/lambda_proxy.py
to `cargo lambda watch`, which runs the real function against the Cloud BOT emulator.

    start_execution -> moto (ASL interpreter) -> Lambda proxy -> cargo lambda watch -> function
                                                                      -> Secrets Manager (moto) + emulator

Order of start-up matters: moto sends Lambda Invoke calls to `localhost:$MOTO_PORT`, so the proxy
is started first and a moto of our own gets its port in `MOTO_PORT`. The function under watch is
the shared session one (conftest.py). The placeholders of the ASL files are substituted the way
CloudFormation does with the template's DefinitionSubstitutions, with a 1 s poll interval so the
tests are quick. Every test resets the emulator (jobs, requests, faults) first.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import boto3
import pytest
import requests
import yaml

from conftest import MOTO_SERVER, ROOT, Moto
from lambda_proxy import LambdaProxy
from test_template import TEMPLATE, CfnLoader

REGION = "us-east-1"
# What the template substitutes: the ARN of the `live` alias (AutoPublishAlias), not $LATEST.
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:cloudbot-trigger:live"
ROLE_ARN = "arn:aws:iam::123456789012:role/cloudbot-trigger-state-machine"
MAP_MAX_CONCURRENCY = 2
# The function's client makes up to 4 attempts per call on its own (src/cloudbot/retry.rs,
# MAX_ATTEMPTS) when a retry is safe. FAULT_RUN consecutive faults outlast one invocation but not
# two, so the Step Functions Retry is what recovers.
FAULT_RUN = 6
ERROR_BOT_MESSAGE = "Step 3 failed: element not found (emulated error)"
# The chaining recipe (docs/state-machines.md#chaining-bots); its placeholder names RunBot.
CHAIN_EXAMPLE = "examples/chain-bots.asl.json"


def definition(name: str, **overrides: str) -> str:
    """The ASL file with DefinitionSubstitutions applied, as CloudFormation would."""
    substitutions = {
        "CloudBotFunctionArn": FUNCTION_ARN,
        "PollIntervalSeconds": "1",
        "MapMaxConcurrency": str(MAP_MAX_CONCURRENCY),
        "CallbackTimeoutSeconds": "3600",
        **overrides,
    }
    text = (ROOT / "statemachine" / name).read_text()
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, f"unsubstituted placeholder left in {name}"
    return text


class StepFunctions:
    """moto with the ASL interpreter on, and the two state machines created from the ASL files."""

    def __init__(self, moto: Moto):
        self.moto = moto
        resp = requests.post(
            f"{moto.endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        )
        resp.raise_for_status()
        self.client = boto3.client(
            "stepfunctions",
            endpoint_url=moto.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.run_bot = self.create("run-bot", definition("run-bot.asl.json"))
        self.run_bot_map = self.create("run-bot-map", definition("run-bot-map.asl.json"))
        self.chain = self.create("chain-bots", definition(CHAIN_EXAMPLE, RunBotStateMachineArn=self.run_bot))

    def create(self, name: str, asl: str) -> str:
        return self.client.create_state_machine(name=name, definition=asl, roleArn=ROLE_ARN)["stateMachineArn"]

    def run(self, machine: str, execution_input: dict, timeout_s: float = 90) -> tuple[dict, list[dict]]:
        """Starts an execution and waits (bounded) until it leaves RUNNING; returns it and its history."""
        arn = self.client.start_execution(
            stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(execution_input)
        )["executionArn"]
        end = time.monotonic() + timeout_s
        while True:
            execution = self.client.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                break
            if time.monotonic() > end:
                self.client.stop_execution(executionArn=arn)
                pytest.fail(f"execution still RUNNING after {timeout_s} s: {self.history(arn)[-5:]}")
            time.sleep(0.2)
        return execution, self.history(arn)

    def history(self, arn: str) -> list[dict]:
        events, token = [], None
        for _ in range(50):
            page = self.client.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        return events


@pytest.fixture(scope="module")
def proxy():
    with LambdaProxy() as p:
        yield p


@pytest.fixture(scope="module")
def sfn(proxy, lambda_watch, tmp_path_factory) -> StepFunctions:
    proxy.set_target(f"http://127.0.0.1:{lambda_watch.port}")
    # moto_server_sfn.py: moto with the names of the `states` integration mapped, which moto
    # leaves out (the chain example's nested workflow needs it; see that file).
    moto = Moto(
        tmp_path_factory.mktemp("moto-sfn") / "moto.log",
        env={"MOTO_PORT": str(proxy.port)},
        server=[str(MOTO_SERVER.parent / "python"), str(ROOT / "tests" / "py" / "moto_server_sfn.py")],
    )
    # moto sends every service integration to $MOTO_PORT: the chain example's nested executions
    # (StartExecution, DescribeExecution) go through the proxy back to moto.
    proxy.set_aws_endpoint(moto.endpoint)
    try:
        yield StepFunctions(moto)
    finally:
        moto.stop()


@pytest.fixture()
def emu(emulator, proxy):
    """The session emulator, reset, with the proxy's invocation log cleared; faults cleared after."""
    emulator.reset()
    proxy.clear()
    yield emulator
    emulator.clear_faults()


def bot(emulator, bot_id: str) -> str:
    return f"{emulator.base_url}/demo/bots/{bot_id}/jobs"


def task_attempts(history: list[dict], state: str) -> list[str]:
    """Outcome of every attempt of the Task `state`: "succeeded" or the failed attempt's error."""
    outcomes, inside = [], False
    for event in history:
        kind = event["type"]
        if kind == "TaskStateEntered":
            inside = event["stateEnteredEventDetails"]["name"] == state
        elif kind == "TaskStateExited":
            inside = False
        elif inside and kind == "TaskSucceeded":
            outcomes.append("succeeded")
        elif inside and kind in ("TaskFailed", "TaskTimedOut"):
            outcomes.append(event.get("taskFailedEventDetails", {}).get("error", kind))
    return outcomes


def states_entered(history: list[dict]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def executes(emulator, bot_id: str) -> list[dict]:
    """The execute requests the emulator received for `bot_id`."""
    return [
        r for r in emulator.requests() if r["method"] == "POST" and r["path"] == f"/demo/bots/{bot_id}/jobs"
    ]


def executions_of(proxy: LambdaProxy, operation: str) -> list:
    return [i for i in proxy.invocations() if (i.payload or {}).get("operation", "execute") == operation]


# ------------------------------------------------------------------------------------------------
# run-bot.asl.json


def test_run_bot_succeeds_with_the_job_output(sfn, emu, proxy):
    execution, history = sfn.run(
        sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "echo_bot"), "input": {"message": "hello sfn"}}, "wait_seconds": 1}
    )

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["operation"] == "refer_job"
    assert output["status"] == "succeeded"
    assert output["bot_id"] == "echo_bot"
    assert output["output"]["echo"] == "hello sfn"
    assert output["output"]["shout"] == "HELLO SFN"
    jobs = emu.jobs()
    assert [j["job_id"] for j in jobs] == [output["job_id"]]
    assert task_attempts(history, "ExecuteBot") == ["succeeded"]
    assert len(executions_of(proxy, "execute")) == 1


def test_run_bot_uses_the_deployed_poll_interval_when_the_input_names_none(sfn, emu):
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "echo_bot")}})

    assert execution["status"] == "SUCCEEDED", execution
    waits = [e for e in history if e["type"] == "WaitStateEntered"]
    assert waits and all(json.loads(e["stateEnteredEventDetails"]["input"])["config"]["wait_seconds"] == 1 for e in waits)
    assert "UseInputWaitSeconds" not in states_entered(history)


def test_run_bot_fails_with_the_bots_message_when_the_job_ends_in_error(sfn, emu):
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "error_bot")}, "wait_seconds": 1})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.JobFailed"
    assert execution["cause"] == ERROR_BOT_MESSAGE
    assert states_entered(history)[-1] == "JobFailed"
    assert len(emu.jobs()) == 1


def test_run_bot_retries_a_rate_limited_execute_and_starts_one_job(sfn, emu, proxy):
    emu.set_faults(
        [{"fault": "status", "status": 429, "retry_after": 1, "method": "POST", "path_prefix": "/demo/bots/echo_bot/jobs", "count": FAULT_RUN}]
    )
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "echo_bot")}, "wait_seconds": 1})

    assert execution["status"] == "SUCCEEDED", execution
    attempts = task_attempts(history, "ExecuteBot")
    assert attempts[0] == "CloudBot.RateLimited" and attempts[-1] == "succeeded", attempts
    statuses = [r["status"] for r in executes(emu, "echo_bot")]
    assert statuses == [429] * FAULT_RUN + [201], statuses
    assert len(emu.jobs()) == 1, "a rate-limited execute starts no job; the retry starts exactly one"
    assert len(executions_of(proxy, "execute")) == len(attempts)


def test_run_bot_retries_an_unavailable_refer_and_follows_the_same_job(sfn, emu):
    emu.set_faults([{"fault": "status", "status": 503, "method": "GET", "path_prefix": "/demo/jobs/", "count": FAULT_RUN}])
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "echo_bot")}, "wait_seconds": 1})

    assert execution["status"] == "SUCCEEDED", execution
    attempts = task_attempts(history, "ReferJob")
    assert "CloudBot.Unavailable" in attempts and attempts[-1] == "succeeded", attempts
    assert task_attempts(history, "ExecuteBot") == ["succeeded"]
    refers = [r for r in emu.requests() if r["method"] == "GET" and r["path"].startswith("/demo/jobs/")]
    assert [r["status"] for r in refers[:FAULT_RUN]] == [503] * FAULT_RUN
    assert len(emu.jobs()) == 1


def test_run_bot_retries_lambda_throttling(sfn, emu, proxy):
    proxy.throttle_next(1)
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "echo_bot")}, "wait_seconds": 1})

    assert execution["status"] == "SUCCEEDED", execution
    assert task_attempts(history, "ExecuteBot") == ["Lambda.TooManyRequestsException", "succeeded"]
    assert len(emu.jobs()) == 1


def test_run_bot_retries_a_lambda_failure_after_the_function_ran_and_starts_one_job(sfn, emu, proxy):
    # The function runs and starts the job, then Lambda answers ServiceException: Step Functions
    # cannot tell whether a job exists. The retry carries the same idempotency key and gets the
    # recorded result instead of starting a second, paid run.
    proxy.service_exception_after_next(1)
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "echo_bot")}, "wait_seconds": 1})

    assert execution["status"] == "SUCCEEDED", execution
    assert task_attempts(history, "ExecuteBot") == ["Lambda.ServiceException", "succeeded"]
    first, retry = executions_of(proxy, "execute")
    assert first.failed_after_run and first.response["replay"] is False
    assert retry.response["replay"] is True and retry.response["job_id"] == first.response["job_id"]
    assert first.payload["idempotency_key"] == retry.payload["idempotency_key"]
    assert first.payload["idempotency_key"].endswith("#ExecuteBot") and ":execution:" in first.payload["idempotency_key"]
    assert len(executes(emu, "echo_bot")) == 1
    assert [j["job_id"] for j in emu.jobs()] == [first.response["job_id"]]


def test_run_bot_catches_a_non_retryable_error_without_retrying(sfn, emu, proxy):
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "no_such_bot")}, "wait_seconds": 1})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.NotFound"
    assert json.loads(execution["cause"])["errorType"] == "CloudBot.NotFound"
    assert task_attempts(history, "ExecuteBot") == ["CloudBot.NotFound"]
    assert states_entered(history)[-1] == "ExecuteFailed"
    assert len(proxy.invocations()) == 1
    assert emu.jobs() == []


def test_run_bot_never_retries_an_execute_whose_outcome_is_unknown(sfn, emu, proxy):
    # The emulator starts the job, then resets the connection: the function cannot know whether a
    # job exists (CloudBot.OutcomeUnknown). A retry would start a second, paid run.
    emu.set_faults([{"fault": "reset_after", "method": "POST", "path_prefix": "/demo/bots/echo_bot/jobs", "count": 1}])
    execution, history = sfn.run(sfn.run_bot, {"request": {"bot_endpoint": bot(emu, "echo_bot")}, "wait_seconds": 1})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.OutcomeUnknown"
    assert task_attempts(history, "ExecuteBot") == ["CloudBot.OutcomeUnknown"]
    assert len(executes(emu, "echo_bot")) == 1
    assert len(emu.jobs()) == 1, "the one job the emulator did start"


def test_run_bot_rejects_malformed_input_before_calling_the_function(sfn, emu, proxy):
    for bad in ({"wait_seconds": 1}, {"request": {"operation": "list_bots"}}, {"request": {}, "wait_seconds": "soon"}):
        execution, _ = sfn.run(sfn.run_bot, bad)
        assert (execution["status"], execution["error"]) == ("FAILED", "RunBot.InvalidInput"), bad
    assert proxy.invocations() == []


def test_a_scheduled_run_through_run_bot_is_keyed_by_the_schedule_and_starts_one_job(sfn, emu):
    # ScheduleTarget RunBot, or Callbacks DISABLED: the template's schedule starts RunBot with its
    # envelope. The Scheduler delivers at least once; both executions of one scheduled run key
    # ExecuteBot by the schedule and its time (ChooseKey), so the second gets the first's job.
    events = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)["Resources"]["RunBotStateMachine"]["Properties"]["Events"]
    text = events["Schedule"]["Properties"]["Input"]["Fn::Sub"]
    text = text.replace("${ScheduleInput}", json.dumps({"bot_endpoint": bot(emu, "echo_bot")}))
    text = text.replace("<aws.scheduler.schedule-arn>", "arn:aws:scheduler:us-east-1:123456789012:schedule/default/cloudbot-RunBot")
    text = text.replace("<aws.scheduler.scheduled-time>", f"2026-12-01T09:00:00Z-{uuid.uuid4().hex[:8]}")
    execution_input = json.loads(text)

    runs = [sfn.run(sfn.run_bot, execution_input) for _ in range(2)]

    assert [e["status"] for e, _ in runs] == ["SUCCEEDED", "SUCCEEDED"], runs[0][0]
    assert len(executes(emu, "echo_bot")) == 1, "one scheduled run, one job"
    outputs = [json.loads(e["output"]) for e, _ in runs]
    assert outputs[0]["job_id"] == outputs[1]["job_id"]
    for _, history in runs:
        assert "ScheduleKey" in states_entered(history)
        scheduled = json.loads(next(e for e in history if e["type"] == "TaskScheduled")["taskScheduledEventDetails"]["parameters"])
        assert scheduled["Payload"]["idempotency_key"].startswith("schedule:arn:aws:scheduler:")


# ------------------------------------------------------------------------------------------------
# run-bot-map.asl.json


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at the same instant (an end at t closes before a start at t opens)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak


def test_run_bot_map_runs_every_input_once_within_the_concurrency_bound(sfn, emu, proxy):
    messages = [f"item {i}" for i in range(5)]
    execution, _ = sfn.run(
        sfn.run_bot_map,
        {"bot_endpoint": bot(emu, "slow_bot"), "inputs": [{"message": m} for m in messages], "wait_seconds": 1},
        timeout_s=120,
    )

    assert execution["status"] == "SUCCEEDED", execution
    results = json.loads(execution["output"])["results"]
    assert [r["index"] for r in results] == list(range(5))
    assert all(r["succeeded"] and r["job"]["status"] == "succeeded" for r in results), results
    assert [r["job"]["output"]["echo"] for r in results] == messages

    # Exactly once: five execute requests, five jobs, each input's job once.
    created = executes(emu, "slow_bot")
    assert [r["status"] for r in created] == [201] * 5
    jobs = {j["job_id"]: j for j in emu.jobs()}
    assert sorted(jobs) == sorted(r["job"]["job_id"] for r in results) == sorted(r["job_id"] for r in created)
    assert sorted(j["output"]["echo"] for j in jobs.values()) == sorted(messages)
    assert len(executions_of(proxy, "execute")) == 5

    # Concurrency: a job runs from its execute request until it ends (emulator clock, ms).
    intervals = [(_at(r["received_at"]), _at(jobs[r["job_id"]]["end_time"])) for r in created]
    assert max_overlap(intervals) == MAP_MAX_CONCURRENCY, intervals


def test_run_bot_map_reports_a_failed_item_and_still_runs_the_others_once(sfn, emu, proxy):
    # One execute answers 404 (non-retryable): that item fails, the other four run exactly once.
    emu.set_faults([{"fault": "status", "status": 404, "method": "POST", "path_prefix": "/demo/bots/echo_bot/jobs", "count": 1}])
    execution, history = sfn.run(
        sfn.run_bot_map,
        {"bot_endpoint": bot(emu, "echo_bot"), "inputs": [{"message": f"m{i}"} for i in range(5)], "wait_seconds": 1},
    )

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.SomeJobsFailed"
    statuses = json.loads(execution["cause"].split("Item statuses in input order: ", 1)[1].split("]", 1)[0] + "]")
    assert sorted(statuses) == ["execute_failed"] + ["succeeded"] * 4, statuses
    assert [r["status"] for r in executes(emu, "echo_bot")].count(201) == 4
    assert len(executes(emu, "echo_bot")) == 5, "nothing is re-run"
    assert len(emu.jobs()) == 4
    map_output = next(e for e in history if e["type"] == "MapStateExited")["stateExitedEventDetails"]["output"]
    failed = [r for r in json.loads(map_output)["results"] if not r["succeeded"]]
    assert len(failed) == 1 and failed[0]["error"] == "CloudBot.NotFound", failed


def test_run_bot_map_rejects_an_unknown_way_to_follow_before_calling_the_function(sfn, emu, proxy):
    for follow in ("sometimes", 1, None):
        execution, _ = sfn.run(sfn.run_bot_map, {"bot_endpoint": bot(emu, "echo_bot"), "inputs": [{}], "follow": follow})
        assert (execution["status"], execution["error"]) == ("FAILED", "RunBot.InvalidInput"), follow
    assert proxy.invocations() == []


def test_run_bot_map_retries_an_item_after_a_lambda_failure_and_runs_every_input_once(sfn, emu, proxy):
    proxy.service_exception_after_next(1)
    messages = [f"m{i}" for i in range(5)]
    execution, history = sfn.run(
        sfn.run_bot_map,
        {"bot_endpoint": bot(emu, "echo_bot"), "inputs": [{"message": m} for m in messages], "wait_seconds": 1},
    )

    assert execution["status"] == "SUCCEEDED", execution
    calls = executions_of(proxy, "execute")
    assert len(calls) == 6, "five items, one of them retried"
    keys = [c.payload["idempotency_key"] for c in calls]
    assert len(set(keys)) == 5, "one key per Map item"
    assert all("#RunEach[" in k for k in keys), keys
    failed = [c for c in calls if c.failed_after_run]
    assert len(failed) == 1
    replays = [c for c in calls if not c.failed_after_run and c.response["replay"]]
    assert len(replays) == 1 and replays[0].payload["idempotency_key"] == failed[0].payload["idempotency_key"]
    assert len(executes(emu, "echo_bot")) == 5
    assert sorted(j["output"]["echo"] for j in emu.jobs()) == messages


# ------------------------------------------------------------------------------------------------
# The schedule (EventBridge Scheduler never fires in moto): its constant input, invoked directly.


# ------------------------------------------------------------------------------------------------
# examples/chain-bots.asl.json: two BOTs in a row, each through RunBot as a nested workflow


def nested_executions(sfn: StepFunctions) -> list[dict]:
    return sfn.client.list_executions(stateMachineArn=sfn.run_bot)["executions"]


def test_the_chain_example_runs_bot_b_with_bot_a_output(sfn, emu, proxy):
    before = {e["executionArn"] for e in nested_executions(sfn)}
    chain_input = {
        "bot_a": {"bot_endpoint": bot(emu, "echo_bot"), "input": {"message": "hello chain"}},
        "bot_b": {"bot_endpoint": bot(emu, "echo_bot")},
    }
    execution, history = sfn.run(sfn.chain, chain_input, timeout_s=120)

    assert execution["status"] == "SUCCEEDED", (execution, history[-5:])
    output = json.loads(execution["output"])
    a, b = output["a"]["job"], output["b"]["job"]
    assert a["status"] == "succeeded" and a["output"]["shout"] == "HELLO CHAIN"
    # B ran with A's output as its input (A's `shout` is B's `message`).
    assert b["status"] == "succeeded" and b["output"]["echo"] == "HELLO CHAIN"
    # Two BOT runs (the emulator lists jobs in creation order), each started once by its own
    # nested RunBot execution; B's input was A's output, so B started after A ended.
    assert [j["job_id"] for j in emu.jobs()] == [a["job_id"], b["job_id"]]
    assert len(executions_of(proxy, "execute")) == 2
    nested = [e for e in nested_executions(sfn) if e["executionArn"] not in before]
    assert sorted(e["status"] for e in nested) == ["SUCCEEDED", "SUCCEEDED"]
    assert all(e["name"].endswith(("-RunBotA", "-RunBotB")) for e in nested), nested
    assert states_entered(history) == ["RunBotA", "RunBotB", "Done"]


def test_the_chain_example_stops_at_a_failed_bot_and_names_its_error(sfn, emu, proxy):
    chain_input = {
        "bot_a": {"bot_endpoint": bot(emu, "error_bot")},
        "bot_b": {"bot_endpoint": bot(emu, "echo_bot")},
    }
    execution, history = sfn.run(sfn.chain, chain_input, timeout_s=120)

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "Chain.BotAFailed"
    # The Cause is the nested execution as DescribeExecution shows it, with RunBot's own error.
    nested = json.loads(execution["cause"])
    assert nested["Status"] == "FAILED" and nested["Error"] == "CloudBot.JobFailed", nested
    assert nested["Cause"] == ERROR_BOT_MESSAGE
    assert "RunBotB" not in states_entered(history)
    assert [j["bot_id"] for j in emu.jobs()] == ["error_bot"], "B never ran"


def test_the_docs_task_snippet_is_the_chain_examples_task():
    """docs/state-machines.md's copy-paste Task is RunBotA of the example, as run above."""
    import re

    docs = (ROOT / "docs" / "state-machines.md").read_text()
    section = docs.split("\n## Chaining BOTs\n", 1)[1].split("\n## ", 1)[0]
    [snippet] = re.findall(r"```json\n(.*?)```", section, re.S)
    example = json.loads((ROOT / "statemachine" / CHAIN_EXAMPLE).read_text())
    assert json.loads(snippet) == {"RunBotA": example["States"]["RunBotA"]}


def test_schedule_default_input_runs_the_default_bot_once_per_scheduled_run(emu, lambda_watch):
    # The target input exactly as the template defines it, with the context attributes filled in
    # the way EventBridge Scheduler does, delivered twice (at-least-once async delivery).
    template = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    envelope = template["Resources"]["CloudBotFunction"]["Properties"]["Events"]["Schedule"]["Properties"]["Input"]["Fn::Sub"]
    scheduled_time = f"2026-11-24T00:00:{uuid.uuid4().int % 60:02d}Z-{uuid.uuid4().hex[:8]}"
    schedule_input = json.loads(
        envelope.replace("${ScheduleInput}", template["Parameters"]["ScheduleInput"]["Default"])
        .replace("<aws.scheduler.schedule-arn>", "arn:aws:scheduler:us-east-1:123456789012:schedule/default/cloudbot")
        .replace("<aws.scheduler.scheduled-time>", scheduled_time)
    )
    ok, result = lambda_watch.invoke(schedule_input)
    again_ok, again = lambda_watch.invoke(schedule_input)

    # The session function's CLOUDBOT_DEFAULT_BOT_ENDPOINT is echo_bot (conftest.function_env).
    assert ok and again_ok, (result, again)
    assert (result["operation"], result["bot_id"], result["status"]) == ("execute", "echo_bot", "executing")
    assert (result["replay"], again["replay"], again["job_id"]) == (False, True, result["job_id"])
    assert [j["job_id"] for j in emu.jobs()] == [result["job_id"]]
