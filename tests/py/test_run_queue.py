"""The run queue (docs/queue.md) through the real Lambda runtime loop (`cargo lambda watch` +
`cargo lambda invoke`): SQS events as Lambda delivers them, the `batchItemFailures` SQS acts on,
and the jobs the emulator binary created."""

from __future__ import annotations

import json
import time
import uuid

from conftest import load_event  # noqa: F401  (the shared fixtures come from conftest)

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:cloudbot-trigger-runs-normal"


def record(message_id: str, body: dict) -> dict:
    now_ms = int(time.time() * 1000)
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}",
        "body": json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(now_ms - 1000),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(now_ms),
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def run(bot: str, message: str) -> dict:
    return {"public_id": "demo", "bot_id": bot, "input": {"message": message}}


def jobs_of(emulator, bot: str) -> int:
    return sum(1 for job in emulator.jobs() if job["bot_id"] == bot)


def failed(answer: dict) -> list[str]:
    return sorted(f["itemIdentifier"] for f in answer["batchItemFailures"])


def test_a_mixed_batch_through_the_runtime_and_its_second_delivery(invoke, emulator):
    # slow_bot: 503 with Retry-After (no job); error_bot: processed, then the connection reset.
    emulator.set_faults([
        {"fault": "status", "status": 503, "retry_after": 5, "method": "POST",
         "path_prefix": "/demo/bots/slow_bot/jobs"},
        {"fault": "reset_after", "method": "POST", "path_prefix": "/demo/bots/error_bot/jobs"},
    ])
    try:
        ids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("ok1", "ok2", "invalid", "503", "reset")}
        event = {"Records": [
            record(ids["ok1"], run("echo_bot", "one")),
            record(ids["invalid"], {"bot_id": "echo_bot", "colour": 1}),
            record(ids["ok2"], run("echo_bot", "two")),
            record(ids["503"], run("slow_bot", "three")),
            record(ids["reset"], run("error_bot", "four")),
        ]}
        before = {bot: jobs_of(emulator, bot) for bot in ("echo_bot", "slow_bot", "error_bot")}
        ok, answer = invoke(event)
        assert ok, answer
        assert failed(answer) == sorted([ids["invalid"], ids["503"]])
        after = {bot: jobs_of(emulator, bot) for bot in before}
        assert after["echo_bot"] == before["echo_bot"] + 2, "one job per valid message"
        assert after["slow_bot"] == before["slow_bot"]
        assert after["error_bot"] == before["error_bot"] + 1

        # Delivered again: the valid ones replay, the unknown one is never sent again.
        ok, again = invoke(event)
        assert ok, again
        assert failed(again) == sorted([ids["invalid"], ids["503"]])
        assert {bot: jobs_of(emulator, bot) for bot in before} == after
    finally:
        emulator.clear_faults()
