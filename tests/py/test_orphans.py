"""Orphaned jobs at process level (docs/orphans.md): a RunBot execution in moto's Step Functions
interpreter starts slow_bot through the real function (`cargo lambda watch`) and is stopped
(`StopExecution`) while the job runs. Delivered the event EventBridge would send for that stop,
the function suspends the job at the emulator and the run ends `orphaned` in the ledger; with that
event withheld, the sweep (`{"operation": "sweep"}`) does the same after asking moto's Step
Functions how the execution ended (`DescribeExecution`).

    start_execution -> moto (ASL) -> Lambda proxy -> this module's function -> emulator + ledger
    stop_execution; status-change event or sweep -> the same function -> DescribeExecution (moto)

The module runs its own emulator (slow_bot runs 120 s, so it is still running when the execution
is stopped), its own ledger table (the session one holds other modules' open runs) and its own
function, whose Step Functions client goes to this module's moto (`AWS_ENDPOINT_URL_SFN`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from conftest import MOTO_SERVER, ROOT, SEED, Emulator, LambdaWatch, Moto, function_env
from lambda_proxy import LambdaProxy
from test_state_machines import REGION, StepFunctions, bot

LEDGER_TABLE = "cloudbot-trigger-runs-orphans"
SLOW_BOT_MS = 120_000


@pytest.fixture(scope="module")
def emu(binaries, tmp_path_factory):
    seed = json.loads(SEED.read_text())
    for contract in seed["contracts"]:
        for b in contract["bots"]:
            if b["id"] == "slow_bot":
                b["duration_ms"] = SLOW_BOT_MS
    path = tmp_path_factory.mktemp("orphans-seed") / "seed.json"
    path.write_text(json.dumps(seed))
    emulator = Emulator(binaries["emulator"], seed=path)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def stack(emu, moto, tmp_path_factory):
    """The proxy, this module's moto with Step Functions, the ledger table and the function."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "create-ledger-table.py"), moto.endpoint, LEDGER_TABLE], check=True
    )
    logs = tmp_path_factory.mktemp("orphans")
    with LambdaProxy() as proxy:
        sfn_moto = Moto(
            logs / "moto.log",
            env={"MOTO_PORT": str(proxy.port)},
            server=[str(MOTO_SERVER.parent / "python"), str(ROOT / "tests" / "py" / "moto_server_sfn.py")],
        )
        env = {
            **function_env(emu.base_url, moto.endpoint),
            "CLOUDBOT_RUN_LEDGER_TABLE": LEDGER_TABLE,
            # The sweep's DescribeExecution goes to the moto that runs the executions.
            "AWS_ENDPOINT_URL_SFN": sfn_moto.endpoint,
        }
        watch = LambdaWatch.start(env, logs / "watch.log")
        try:
            proxy.set_target(f"http://127.0.0.1:{watch.port}")
            proxy.set_aws_endpoint(sfn_moto.endpoint)
            yield StepFunctions(sfn_moto), watch
        finally:
            watch.stop()
            sfn_moto.stop()


def runs(moto) -> list[dict]:
    return moto.dynamodb.scan(TableName=LEDGER_TABLE, ConsistentRead=True)["Items"]


def started_and_stopped(sfn: StepFunctions, emu, moto) -> tuple[str, str]:
    """A RunBot execution whose slow_bot job runs, stopped; its ARN and the job id."""
    emu.reset()
    arn = sfn.client.start_execution(
        stateMachineArn=sfn.run_bot,
        name=uuid.uuid4().hex,
        input=json.dumps({"request": {"bot_endpoint": bot(emu, "slow_bot")}, "wait_seconds": 60}),
    )["executionArn"]
    end = time.monotonic() + 90
    # Waits for the run's start in the ledger (written with the execute's answer).
    while not [r for r in runs(moto) if r.get("execution", {}).get("S") == arn]:
        assert time.monotonic() < end, sfn.history(arn)[-5:]
        time.sleep(0.2)
    (job,) = emu.jobs()
    assert job["status"] == 2, job
    sfn.client.stop_execution(executionArn=arn, error="Operator.Stopped", cause="stopped by the test")
    assert sfn.client.describe_execution(executionArn=arn)["status"] == "ABORTED"
    return arn, job["job_id"]


def the_run(moto, arn: str) -> dict:
    (run,) = [r for r in runs(moto) if r.get("execution", {}).get("S") == arn]
    return run


def status_change(arn: str, machine: str, status: str) -> dict:
    """The event EventBridge delivers for Step Functions' status change (its documented shape)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-07T12:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": machine,
            "name": arn.rsplit(":", 1)[-1],
            "status": status,
            "startDate": 1796640000000,
            "stopDate": 1796640001000,
            "input": "{}",
            "output": None,
        },
    }


def test_a_stopped_execution_gets_its_job_suspended_through_the_status_change_event(stack, emu, moto):
    sfn, watch = stack
    arn, job_id = started_and_stopped(sfn, emu, moto)
    assert "open" in the_run(moto, arn)

    ok, answer = watch.invoke(status_change(arn, sfn.run_bot, "ABORTED"))

    assert ok, answer
    assert [(r["run"], r["fate"]) for r in answer["runs"]] == [(f"demo/{job_id}", "suspended")]
    (job,) = emu.jobs()
    assert job["suspended"] is True, job
    run = the_run(moto, arn)
    assert run["end_status"]["S"] == "orphaned"
    assert "open" not in run and "open_key" not in run
    # A second delivery of the event finds no open run.
    ok, again = watch.invoke(status_change(arn, sfn.run_bot, "ABORTED"))
    assert ok and again["runs"] == [], again
    assert emu.stats()["jobs_suspended"] == 1


def test_with_the_event_withheld_the_sweep_suspends_the_job(stack, emu, moto):
    sfn, watch = stack
    arn, job_id = started_and_stopped(sfn, emu, moto)

    ok, answer = watch.invoke({"operation": "sweep"})

    assert ok, answer
    assert {"run": f"demo/{job_id}", "fate": "suspended"} in answer["runs"], answer
    (job,) = emu.jobs()
    assert job["suspended"] is True, job
    run = the_run(moto, arn)
    assert run["end_status"]["S"] == "orphaned"
    assert "open" not in run
    # The next sweep has nothing of this run left to do.
    ok, again = watch.invoke({"operation": "sweep"})
    assert ok and f"demo/{job_id}" not in [r["run"] for r in again["runs"]], again
    assert emu.stats()["jobs_suspended"] == 1
