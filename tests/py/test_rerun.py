"""Re-run on failure through RunBot, run for real (moto's interpreter, the function under
`cargo lambda watch`, the emulator; the set-up of test_state_machines.py, whose fixtures this
module reuses). The emulator's scripted outcomes (`PUT /__emulator/outcomes`) make a BOT fail,
then succeed. What is checked: a failed job is run again under its own key, at most `attempts`
times (N + 1 jobs), only when its message matches, never after an unknown outcome, and a
repeated ExecuteBot of an attempt (what a redrive or a retry sends) replays its job.
docs/state-machines.md, "Re-run on failure".
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

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
