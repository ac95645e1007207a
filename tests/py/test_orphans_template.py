"""The template's side of the orphan paths (docs/orphans.md): the status-change rule matches only
the stack's state machines and the three statuses that orphan a job, the sweep runs on the
Settings schedule with the documented operation, and the function may query only the open-runs
index and describe only its own state machines' executions."""

from __future__ import annotations

import json

import pytest
import yaml

from test_template import TEMPLATE, CfnLoader

MACHINES = ["RunBotStateMachine", "RunBotCallbackStateMachine", "RunBotMapStateMachine"]


@pytest.fixture(scope="module")
def resources() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)["Resources"]


def test_the_rule_matches_only_the_stacks_machines_failing_timing_out_or_stopped(resources):
    rule = resources["ExecutionEndedRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    # SUCCEEDED is never matched: a succeeded workflow may leave its job running on purpose.
    assert pattern["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": m} for m in MACHINES]
    assert rule["Targets"] == [{"Id": "CloudBotFunction", "Arn": {"Ref": "CloudBotFunction.Alias"}}]
    permission = resources["ExecutionEndedInvokePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["ExecutionEndedRule", "Arn"]}


def test_the_sweep_runs_on_the_settings_schedule_with_the_sweep_operation(resources):
    event = resources["CloudBotFunction"]["Properties"]["Events"]["OrphanSweep"]
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Fn::FindInMap": ["Settings", "OrphanSweepSchedule", "Default"]}
    assert json.loads(event["Properties"]["Input"]) == {"operation": "sweep"}


def test_the_function_queries_only_the_open_runs_index(resources):
    statements = [s for p in resources["CloudBotFunction"]["Properties"]["Policies"] for s in p["Statement"]]
    query = next(s for s in statements if s.get("Sid") == "QueryOpenRuns")
    assert query["Action"] == ["dynamodb:Query"]
    assert query["Resource"] == {"Fn::Sub": "${RunLedgerTable.Arn}/index/open_runs"}
    index = next(
        i for i in resources["RunLedgerTable"]["Properties"]["GlobalSecondaryIndexes"] if i["IndexName"] == "open_runs"
    )
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["open", "open_key"]


def test_the_function_describes_only_its_own_machines_executions(resources):
    policy = resources["DescribeOwnExecutionsPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "CloudBotFunctionRole"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "states:DescribeExecution"
    assert statement["Resource"] == [
        {"Fn::Sub": f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:${{{m}.Name}}:*"}
        for m in MACHINES
    ]
