"""Managed schedules (issue 21) through their default target, RunBotCallback: the envelope the CLI
applies (`cloudbot_calendar::wire::target_input`: the Scheduler's key attributes, the schedule's
`definition` and the request), delivered as EventBridge Scheduler would (one execution per
delivery, at a scheduled time the test picks, twice for duplicates; moto never fires schedules).

    start_execution -> moto (ASL interpreter) -> DecideTick (function: schedule_tick) -> TickSkipped
                                                                    \\-> TickKey -> ExecuteBot -> ...

The stack (moto, the callback gateway, the function under watch) is test_callbacks.py's.
"""

from __future__ import annotations

import json
import uuid

from test_callbacks import bot, emu, stack  # noqa: F401  (fixtures)
from test_state_machines import states_entered

ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/cloudbot-trigger/{name}"


def delivery(emulator, definition: dict, scheduled_time: str, backfill: bool = False, bot_id: str = "echo_bot") -> dict:
    """The target input of `definition` (running the emulator's `bot_id`) with the Scheduler's
    placeholders filled in."""
    definition = {**definition, "bot_endpoint": bot(emulator, bot_id)}
    schedule = {
        "schedule_arn": ARN.format(name=definition["name"]),
        "scheduled_time": scheduled_time,
        "definition": definition,
    }
    if backfill:
        schedule["backfill"] = True
    return {"schedule": schedule, "request": {"bot_endpoint": definition["bot_endpoint"]}}


# Every day at 09:00 Tokyo (00:00Z); weekends and national holidays closed.
DAILY = {"name": "daily-report", "at": "09:00", "recurrence": "daily"}
# The 25th at 09:00 Tokyo, on the next business day when the 25th is closed.
PAYDAY = {"name": "payday", "at": "09:00", "recurrence": {"monthly": 25}, "on_closed": "next_business_day"}


def posts(emulator) -> int:
    return sum(1 for r in emulator.requests() if r["method"] == "POST" and "/bots/" in r["path"])


def execute_keys(history: list[dict]) -> list[str]:
    """The idempotency keys ExecuteBot was scheduled with."""
    keys = []
    for event in history:
        if event["type"] != "TaskScheduled":
            continue
        payload = json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]
        if "task_token" in payload:
            keys.append(payload["idempotency_key"])
    return keys


def test_a_holiday_tick_sends_nothing_and_the_execution_succeeds_with_the_skip(stack, emu):
    # Monday 2026-11-23 is 勤労感謝の日; delivered twice.
    for _ in range(2):
        execution, history = stack.run(delivery(emu, DAILY, "2026-11-23T00:00:00Z"))
        assert execution["status"] == "SUCCEEDED", execution
        output = json.loads(execution["output"])
        assert output["decision"] == "skipped" and output["reason"] == "holiday", output
        assert output["name"] == "勤労感謝の日" and output["schedule"] == "daily-report"
        entered = states_entered(history)
        assert "DecideTick" in entered and "TickSkipped" in entered and "ExecuteBot" not in entered
    assert posts(emu) == 0 and emu.jobs() == []


def test_a_shifted_run_starts_one_job_on_the_shifted_day_and_none_on_the_nominal_day(stack, emu):
    # Sunday 2026-10-25: payday moves to Monday 2026-10-26. Past ticks come as the CLI's catch-up
    # deliveries (backfill: lateness is not checked). Each day delivered twice.
    for _ in range(2):
        execution, _ = stack.run(delivery(emu, PAYDAY, "2026-10-25T00:00:00Z", backfill=True))
        assert execution["status"] == "SUCCEEDED", execution
        output = json.loads(execution["output"])
        assert (output["reason"], output["to"]) == ("shifted", "2026-10-26"), output
    assert posts(emu) == 0, "nothing on the nominal day"
    results = [stack.run(delivery(emu, PAYDAY, "2026-10-26T00:00:00Z", backfill=True)) for _ in range(2)]
    assert [e["status"] for e, _ in results] == ["SUCCEEDED", "SUCCEEDED"], results
    outputs = [json.loads(e["output"]) for e, _ in results]
    assert outputs[0]["job_id"] == outputs[1]["job_id"]
    assert posts(emu) == 1 and len(emu.jobs()) == 1, "one job for the occurrence"
    # Keyed on the nominal occurrence (the 25th at 09:00 Tokyo), not on the tick or the execution.
    nominal_key = f"schedule:{ARN.format(name='payday')}@2026-10-25T00:00:00Z#ExecuteBot"
    for _, history in results:
        assert set(execute_keys(history)) == {nominal_key}
        assert "TickKey" in states_entered(history)


def test_a_late_delivery_fails_schedule_too_late_and_sends_nothing(stack, emu):
    # Tuesday 2026-11-24, a business day, delivered long after its hour of max_lateness.
    execution, history = stack.run(delivery(emu, DAILY, "2026-11-24T00:00:00Z"))
    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "Schedule.TooLate"
    assert "daily-report" in execution["cause"]
    assert "TickFailed" in states_entered(history) and "ExecuteBot" not in states_entered(history)
    assert posts(emu) == 0


def state_record(stack, name: str) -> dict:
    """The schedule's state record (`schedule:<name>`), attribute -> its string or number."""
    item = stack.moto.dynamodb.get_item(
        TableName=stack.moto.table, Key={"record_key": {"S": f"schedule:{name}"}}, ConsistentRead=True
    ).get("Item", {})
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_three_failed_jobs_pause_the_schedule_and_the_next_tick_sends_nothing(stack, emu):
    # error_bot ends in error; Tuesday to Thursday (2026-11-24..26) are business days. Each run
    # follows its job to its end through Cloud BOT's callback, where the end is counted.
    name = f"breaker-{uuid.uuid4().hex[:8]}"
    daily = {**DAILY, "name": name}
    for n, day in enumerate(["24", "25", "26"], start=1):
        execution, history = stack.run(delivery(emu, daily, f"2026-11-{day}T00:00:00Z", backfill=True, bot_id="error_bot"))
        assert execution["status"] == "FAILED", execution
        assert "ExecuteBot" in states_entered(history)
        record = state_record(stack, name)
        assert record["consecutive_failures"] == str(n), record
        assert record["last_outcome"] == "failed", record
        assert ("paused_at" in record) == (n == 3), record
    assert record["pause_reason"].startswith("3 consecutive failed jobs, last "), record
    assert posts(emu) == 3 and len(emu.jobs()) == 3
    # Friday's tick: the execution succeeds with the skip, and nothing is sent.
    execution, history = stack.run(delivery(emu, daily, "2026-11-27T00:00:00Z", backfill=True, bot_id="error_bot"))
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert (output["decision"], output["reason"]) == ("skipped", "breaker_paused"), output
    assert output["pause_reason"] == record["pause_reason"]
    assert "TickSkipped" in states_entered(history) and "ExecuteBot" not in states_entered(history)
    assert posts(emu) == 3
    assert state_record(stack, name)["last_outcome"] == "paused"
