"""The function's EMF records, read from a real runtime-loop run (`cargo lambda watch`), checked
against the CloudWatch Embedded Metric Format specification and against src/metrics.rs.

One record per invocation, on stdout next to the JSON log lines: every declared metric and
dimension is a root member, units are CloudWatch units, dimensions are bounded (operation and
outcome), ids are plain properties, BOT input never appears.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from conftest import load_event

ROOT = Path(__file__).resolve().parents[2]
METRICS_RS = ROOT / "src/metrics.rs"
KIND_RS = ROOT / "src/error/kind.rs"

# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html
CLOUDWATCH_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}


def _emitted_names() -> set[str]:
    block = re.search(r"pub mod name \{(.*?)\n\}", METRICS_RS.read_text(), re.S)
    assert block
    return set(re.findall(r'pub const [A-Z_]+: &str = "([^"]+)";', block.group(1)))


def _dimension_names() -> set[str]:
    block = re.search(r"pub mod dimension \{(.*?)\n\}", METRICS_RS.read_text(), re.S)
    assert block
    return set(re.findall(r'pub const [A-Z_]+: &str = "([^"]+)";', block.group(1)))


def _records(log_path: Path) -> list[dict]:
    records = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def assert_valid_emf(record: dict) -> None:
    """The structural rules of the EMF specification for one record."""
    aws = record["_aws"]
    assert isinstance(aws["Timestamp"], int)
    assert abs(aws["Timestamp"] / 1000 - time.time()) < 3600, "Timestamp is epoch milliseconds"
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str) and 0 < len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            # The specification allows an empty set: a metric without dimensions (one alarm
            # for every schedule or job: SchedulePaused, JobRunningSeconds, BotSeconds).
            assert len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(record.get(name), str), f"dimension {name} is not a string root member"
                assert 0 < len(record[name]) <= 1024
        assert 0 < len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            value = record.get(metric["Name"])
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (
                f"metric {metric['Name']} is not a numeric root member: {value!r}"
            )
            assert metric.get("Unit", "None") in CLOUDWATCH_UNITS, metric


def test_one_valid_emf_record_per_invocation_with_the_outcome(invoke, lambda_watch, emulator):
    before = len(_records(lambda_watch.log_path))
    message = "metrics-test-input-value-that-must-not-appear"
    ok, started = invoke({"bot_endpoint": f"{emulator.base_url}/demo/bots/echo_bot/jobs",
                          "input": {"message": message}})
    assert ok, started
    ok, failed = invoke({"operation": "execute", "no_such_field": 1})
    assert not ok and failed["errorType"] == "InvalidRequest"
    ok, _ = invoke(load_event("sfn-refer-job.json", emulator.base_url, started["job_id"]))
    assert ok
    ok, unknown = invoke({"bot_endpoint": f"{emulator.base_url}/demo/bots/no_such_bot/jobs"})
    assert not ok and unknown["errorType"] == "CloudBot.NotFound"

    records = _records(lambda_watch.log_path)
    new = records[before:]
    assert len(new) == 4, "exactly one record per invocation"
    emitted = _emitted_names()
    declared_dims = _dimension_names()
    error_types = set(re.findall(r'name: "([A-Za-z.]+)"', KIND_RS.read_text()))
    # Every record of the session (other tests' records too: the queue's lanes, the usage of a
    # recorded end) is valid EMF with names and dimensions the metrics module declares.
    for record in records:
        assert_valid_emf(record)
        names = {m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        assert names <= emitted, names - emitted
        dims = {n for d in record["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"] for n in s}
        assert dims <= declared_dims, dims - declared_dims
    # This test's four invocations: the invocation's own metrics have few, bounded dimensions
    # (operation and outcome; ids are properties). A recorded end adds its usage directive (by
    # Contract), checked above.
    for record in new:
        directives = record["_aws"]["CloudWatchMetrics"]
        own = [d for d in directives if any(m["Name"] == "Invocations" for m in d["Metrics"])]
        assert len(own) == 1, directives
        dims = {n for s in own[0]["Dimensions"] for n in s}
        assert dims == {"Operation", "Outcome"}, dims
        # The stack-wide total the failure alarms watch: Failures without dimensions, in every
        # invocation's record.
        totals = [d for d in directives if d["Dimensions"] == [[]]]
        assert any(m["Name"] == "Failures" for d in totals for m in d["Metrics"]), directives
        assert record["Operation"] in {"execute", "refer_job", "list_bots", "none"}
        assert record["Outcome"] == "ok" or record["Outcome"] in error_types, record["Outcome"]
    for record in new:
        assert message not in json.dumps(record), "BOT input must never reach a metrics record"
        assert record["Invocations"] == 1
        assert record["TotalLatency"] > 0

    execute, invalid, refer, not_found = new
    assert (execute["Operation"], execute["Outcome"]) == ("execute", "ok")
    assert execute["RunsStarted"] == 1 and execute["Failures"] == 0
    assert execute["JobId"] == started["job_id"]
    assert execute["Trigger"] == "direct"
    assert 0 < execute["UpstreamLatency"] <= execute["TotalLatency"]
    assert execute["ColdStart"] == 0, "the session's first invocation was the cold start"

    assert (invalid["Operation"], invalid["Outcome"]) == ("none", "InvalidRequest")
    assert invalid["Failures"] == 1 and invalid["RunsStarted"] == 0
    assert "UpstreamLatency" not in invalid, "nothing was sent upstream"

    assert (refer["Operation"], refer["Outcome"]) == ("refer_job", "ok")
    assert refer["RunsStarted"] == 0 and refer["JobId"] == started["job_id"]

    assert (not_found["Operation"], not_found["Outcome"]) == ("execute", "CloudBot.NotFound")
    assert not_found["Failures"] == 1 and not_found["RunsStarted"] == 0

    # The sandbox's first record is its cold start, and it read the secret.
    first = records[0]
    assert first["ColdStart"] == 1 and first["SecretFetches"] >= 1
    assert sum(r["ColdStart"] for r in records) == 1
    # At most one read and one re-read on a 401 per invocation (other tests in the session
    # rotate and replace the secret, so warm invocations may legitimately read it again).
    assert all(0 <= r["SecretFetches"] <= 2 for r in records)
    assert new[1]["SecretFetches"] == 0, "an undecodable request never reads the secret"
