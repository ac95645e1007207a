"""Re-run on failure through the shipped state machines, run for real (moto's interpreter, the
function under `cargo lambda watch`, the emulator; the set-ups of test_state_machines.py and, for
the callback-driven runs, test_callbacks.py, whose fixtures this module reuses). The emulator's
scripted outcomes (`PUT /__emulator/outcomes`) make a BOT fail, then succeed. What is checked: a
failed job is run again under its own key, at most `attempts` times (N + 1 jobs), only when its
message matches, never after an unknown outcome, and a repeated ExecuteBot of an attempt (what a
redrive or a retry sends) replays its job; the same loop in RunBotCallback (each attempt with its
own task token and callback), in a RunBotMap item (polling and callback) and for a managed
schedule's `policies.rerun`. docs/state-machines.md, "Re-run on failure".
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
import uuid

import pytest
from test_callbacks import stack  # noqa: F401 - fixture used by name
from test_schedule_targets import ARN, DAILY, delivery
from test_state_machines import (  # noqa: F401 - fixtures are used by name
    ERROR_BOT_MESSAGE,
    bot,
    emu,
    executes,
    executions_of,
    proxy,
    sfn,
    states_entered,
    task_attempts,
)


def run_bot(sfn, emu, bot_id: str, rerun: dict, **extra):
    return sfn.run(
        sfn.run_bot,
        {"request": {"bot_endpoint": bot(emu, bot_id), "rerun": rerun, **extra}, "wait_seconds": 1},
    )


def execute_payloads(proxy) -> list[dict]:
    return [i.payload for i in executions_of(proxy, "execute")]


def invoke(proxy, payload: dict) -> dict:
    """One invocation through the proxy, as Step Functions makes it."""
    req = urllib.request.Request(
        f"{proxy.url}/2015-03-31/functions/cloudbot-trigger/invocations",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=130) as resp:
        return json.loads(resp.read())


def test_a_job_that_failed_is_run_again_under_its_own_key_and_the_run_succeeds(sfn, emu, proxy):
    emu.admin("PUT", "outcomes", {"outcomes": ["error"]})
    execution, history = run_bot(sfn, emu, "echo_bot", {"attempts": 2, "backoff_seconds": 1})

    assert execution["status"] == "SUCCEEDED", execution
    jobs = emu.jobs()
    assert len(jobs) == 2
    first, second = execute_payloads(proxy)
    assert first["attempt"] == {"number": 1}
    assert second["idempotency_key"] == first["idempotency_key"] + "#attempt-2"
    first_job = [j for j in jobs if j["job_id"] != json.loads(execution["output"])["job_id"]][0]
    assert second["attempt"]["number"] == 2
    assert second["attempt"]["previous_job"].endswith("/demo/jobs/" + first_job["job_id"])
    assert states_entered(history).count("DecideRerun") == 1
    assert "RerunWait" in states_entered(history)

    # What a redrive (or a retry) of the second ExecuteBot sends: the same key and attempt. It
    # replays the second job; no third job.
    replay = invoke(proxy, second)
    assert replay["job_reference_endpoint"].endswith(json.loads(execution["output"])["job_id"])
    assert len(emu.jobs()) == 2


def test_a_bot_that_keeps_failing_runs_attempts_plus_one_times_and_fails_with_its_message(sfn, emu, proxy):
    execution, history = run_bot(sfn, emu, "error_bot", {"attempts": 2})

    assert execution["status"] == "FAILED", execution
    assert (execution["error"], execution["cause"]) == ("CloudBot.JobFailed", ERROR_BOT_MESSAGE)
    assert len(emu.jobs()) == 3
    keys = [p["idempotency_key"] for p in execute_payloads(proxy)]
    assert len(set(keys)) == 3 and keys[1].endswith("#attempt-2") and keys[2].endswith("#attempt-3")
    decisions = [i.response["decision"] for i in executions_of(proxy, "decide_rerun")]
    assert decisions == ["rerun", "rerun", "stop"]
    assert states_entered(history)[-1] == "JobFailed"


def test_a_message_that_does_not_match_the_pattern_is_not_run_again(sfn, emu, proxy):
    execution, history = run_bot(sfn, emu, "error_bot", {"attempts": 3, "message_pattern": "(?i)time ?out"})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.JobFailed"
    assert len(emu.jobs()) == 1
    assert "RerunWait" not in states_entered(history)


def test_an_unknown_outcome_of_a_rerun_is_never_another_attempt(sfn, emu, proxy):
    # The first job fails; the re-run's execute starts a job and loses the answer
    # (CloudBot.OutcomeUnknown): the run stops there, with the two jobs the emulator started.
    emu.admin("PUT", "outcomes", {"outcomes": ["error", "error"]})
    started = {}

    def fault_once_first_job_exists():
        # Waits on the emulator's state (the first job), not on time.
        deadline = time.monotonic() + 30
        while not emu.jobs():
            assert time.monotonic() < deadline, "the first job never started"
            time.sleep(0.05)
        emu.set_faults([{"fault": "reset_after", "method": "POST", "path_prefix": "/demo/bots/echo_bot/jobs", "count": 1}])
        started["ok"] = True

    watcher = threading.Thread(target=fault_once_first_job_exists)
    watcher.start()
    execution, history = run_bot(sfn, emu, "echo_bot", {"attempts": 3, "backoff_seconds": 3})
    watcher.join()

    assert started["ok"]
    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.OutcomeUnknown"
    assert task_attempts(history, "ExecuteBot") == ["succeeded", "CloudBot.OutcomeUnknown"]
    assert len(executes(emu, "echo_bot")) == 2
    assert len(emu.jobs()) == 2


def test_rerun_is_refused_where_no_loop_runs_it(sfn, emu, proxy):
    # Without a key (a plain direct invocation), nothing would run the loop: refused, nothing sent.
    answer = invoke(proxy, {"bot_endpoint": bot(emu, "echo_bot"), "rerun": {"attempts": 1}})
    assert answer["errorType"] == "InvalidRequest"
    assert "`rerun`" in answer["errorMessage"]
    assert emu.jobs() == []


# ------------------------------------------------------------------------------------------------
# RunBotCallback, RunBotMap items and managed schedules: the same loop.


@pytest.fixture()
def cb_emu(emulator, stack):  # noqa: F811 - stack is the imported fixture
    """The session emulator, reset, for the callback stack (test_callbacks.py's `emu`)."""
    emulator.reset()
    stack.gateway.clear()
    yield emulator
    emulator.clear_faults()


def started(history: list[dict]) -> list[dict]:
    """The payloads of the execute tasks (ExecuteBot, ExecuteBotAndWait, RecoverJob) in order."""
    payloads = []
    for event in history:
        if event["type"] != "TaskScheduled":
            continue
        payload = json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]
        if "request" in payload and "operation" not in payload:
            payloads.append(payload)
    return payloads


def posts(emulator) -> int:
    return sum(1 for r in emulator.requests() if r["method"] == "POST" and "/bots/" in r["path"])


def test_run_bot_callback_reruns_a_failed_job_each_attempt_with_its_own_callback(stack, cb_emu):  # noqa: F811
    emu = cb_emu
    emu.admin("PUT", "outcomes", {"outcomes": ["error"]})
    execution, history = stack.run(
        {"request": {"bot_endpoint": bot(emu, "echo_bot"), "rerun": {"attempts": 2}}, "wait_seconds": 1}
    )

    assert execution["status"] == "SUCCEEDED", execution
    jobs = emu.jobs()
    assert len(jobs) == 2 and posts(emu) == 2
    # Each attempt registered its own callback (a fresh secret id per job) ...
    assert len({j["callback_endpoint"] for j in jobs}) == 2
    # ... under its own task token and key; the second names the first job.
    waits = [p for p in started(history) if "task_token" in p]
    assert len(waits) == 2, waits
    first, second = waits
    assert first["task_token"] != second["task_token"]
    assert first["attempt"] == {"number": 1}
    assert second["idempotency_key"] == first["idempotency_key"] + "#attempt-2"
    failed = [j for j in jobs if j["job_id"] != json.loads(execution["output"])["job_id"]][0]
    assert second["attempt"]["number"] == 2
    assert second["attempt"]["previous_job"].endswith("/demo/jobs/" + failed["job_id"])
    # The callback said "failed"; the job was fetched as a replay of attempt 1 and read, then decided.
    entered = states_entered(history)
    assert ["CallbackFailed", "RecoverJob", "ReferJob", "DecideRerun", "RerunWait"] == [
        s for s in entered if s in ("CallbackFailed", "RecoverJob", "ReferJob", "DecideRerun", "RerunWait")
    ][:5], entered
    assert entered.count("DecideRerun") == 1
    assert [d.status for d in stack.gateway.wait_for(lambda ds: len(ds) >= 2)] == [200, 200]


def test_run_bot_callback_without_rerun_still_fails_at_the_callbacks_error(stack, cb_emu):  # noqa: F811
    execution, history = stack.run({"request": {"bot_endpoint": bot(cb_emu, "error_bot")}})

    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.JobFailed"
    entered = states_entered(history)
    assert "CallbackFailed" in entered and "RecoverJob" not in entered and "DecideRerun" not in entered
    assert len(cb_emu.jobs()) == 1


def test_a_run_bot_map_item_that_failed_is_run_again_under_its_item_key(sfn, emu, proxy):
    emu.admin("PUT", "outcomes", {"outcomes": ["error"]})
    execution, history = sfn.run(
        sfn.run_bot_map,
        {"bot_endpoint": bot(emu, "echo_bot"), "inputs": [{"message": "a"}, {"message": "b"}], "wait_seconds": 1,
         "rerun": {"attempts": 1, "backoff_seconds": 1}},
    )

    assert execution["status"] == "SUCCEEDED", execution
    assert len(emu.jobs()) == 3
    keys = [p["idempotency_key"] for p in execute_payloads(proxy)]
    assert len(keys) == 3 and len(set(keys)) == 3, keys
    [rerun_key] = [k for k in keys if k.endswith("#attempt-2")]
    assert re.search(r"#RunEach\[[01]\]#ExecuteBot#attempt-2$", rerun_key), rerun_key
    assert rerun_key.removesuffix("#attempt-2") in keys, "built on the item's own key"
    results = json.loads(execution["output"])["results"]
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert states_entered(history).count("DecideRerun") == 1


def test_a_run_bot_map_callback_item_reruns_with_a_new_callback(stack, cb_emu):  # noqa: F811
    emu = cb_emu
    emu.admin("PUT", "outcomes", {"outcomes": ["error", "error"]})
    execution, history = stack.run(
        {"bot_endpoint": bot(emu, "echo_bot"), "inputs": [{"message": "a"}], "wait_seconds": 1, "follow": "callback",
         "rerun": {"attempts": 1}},
        machine=stack.map,
    )

    # Two attempts, both failed: the item reports its last job; exactly attempts + 1 jobs.
    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "CloudBot.SomeJobsFailed"
    jobs = emu.jobs()
    assert len(jobs) == 2 and len({j["callback_endpoint"] for j in jobs}) == 2
    waits = [p for p in started(history) if "task_token" in p]
    assert [p["idempotency_key"].rsplit("#RunEach", 1)[1] for p in waits] == [
        "[0]#ExecuteBot", "[0]#ExecuteBot#attempt-2"]
    assert [p["attempt"]["number"] for p in waits] == [1, 2]
    decisions = [
        json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]["decision"]
        for e in history
        if e["type"] == "TaskSucceeded" and '"decision"' in e["taskSucceededEventDetails"]["output"]
    ]
    assert decisions == ["rerun", "stop"], decisions


def test_a_managed_schedules_rerun_policy_is_carried_into_the_run(stack, cb_emu):  # noqa: F811
    # Tuesday 2026-11-24, a business day, as a catch-up delivery (lateness not checked), to
    # RunBotCallback (the template's default target). The first job fails, its re-run succeeds.
    emu = cb_emu
    name = f"rerun-{uuid.uuid4().hex[:8]}"
    definition = {**DAILY, "name": name, "policies": {"rerun": {"attempts": 1, "backoff_seconds": 1}}}
    emu.admin("PUT", "outcomes", {"outcomes": ["error"]})
    execution, history = stack.run(delivery(emu, definition, "2026-11-24T00:00:00Z", backfill=True))

    assert execution["status"] == "SUCCEEDED", execution
    assert len(emu.jobs()) == 2
    nominal_key = f"schedule:{ARN.format(name=name)}@2026-11-24T00:00:00Z#ExecuteBot"
    keys = [p["idempotency_key"] for p in started(history) if "task_token" in p]
    assert keys == [nominal_key, nominal_key + "#attempt-2"], keys
    entered = states_entered(history)
    assert "TickRerun" in entered and "DecideRerun" in entered
    # The decision's request carried the schedule's policy (with its default backoff filled in).
    decide = [p for p in (json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]
                          for e in history if e["type"] == "TaskScheduled") if p.get("operation") == "decide_rerun"]
    assert decide[0]["request"]["rerun"] == {"attempts": 1, "backoff_seconds": 1}
