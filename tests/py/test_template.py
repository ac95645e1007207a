"""Invariants of template.yaml and statemachine/*.asl.json that cfn-lint and asl-validator do not see.

These are the promises docs/state-machines.md and docs/exactly-once.md make: ExecuteBot is never retried on an error after which a
job may have started unless the retry carries the same idempotency key (docs/exactly-once.md),
every retrier uses backoff with full jitter, every task has a timeout and a
Catch, DefinitionSubstitutions and the ASL placeholders agree, the function reads exactly the
environment variables src/config/ knows, and its IAM policy names exactly its secrets. Also the lists the
docs keep of the template and the code: every parameter, setting, variable, output, alarm and
operation has its row (docs/deploy.md, docs/operations.md), so none can be added without one. Offline, no tools beyond PyYAML.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# The only errorTypes a state machine may retry. The Lambda and timeout errors after which the
# function may have run are safe because ExecuteBot sends an idempotency key (docs/exactly-once.md).
RETRYABLE = {
    "CloudBot.RateLimited",
    "CloudBot.Unavailable",
    "Credentials.Unavailable",
    "Idempotency.InProgress",
    "Idempotency.Unavailable",
    "Callback.Unavailable",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.TooManyRequestsException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.Unknown",
    "Sandbox.Timedout",
    "States.Timeout",
}
# After these a BOT job may exist (or the key names another request): retrying ExecuteBot would
# only repeat the answer, or hide that an operator must look.
NEVER_RETRY_EXECUTE = {
    "CloudBot.OutcomeUnknown",
    "Idempotency.KeyReused",
    "States.TaskFailed",
    "States.ALL",
    "Function.DeadlineExceeded",
}


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags (!Ref, !GetAtt, !If, ...) as plain data."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


DEPLOY_MD = ROOT / "docs" / "deploy.md"
OPERATIONS_MD = ROOT / "docs" / "operations.md"


def _table(path: Path, header: str) -> list[list[str]]:
    """The rows (cells, stripped) of the one Markdown table in `path` whose header line starts
    with `header`."""
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert len(starts) == 1, f"{path.name}: {len(starts)} tables start with {header!r}"
    rows = []
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert rows, f"{path.name}: the table {header!r} is empty"
    return rows


def _table_names(path: Path, header: str) -> list[str]:
    """The `code` names in the first cell of every row of that table (a row may name several)."""
    names = []
    for row in _table(path, header):
        found = re.findall(r"`([^`]+)`", row[0])
        assert found, f"{path.name}: a row of {header!r} names nothing: {row}"
        names += found
    return names


def _settings(template: dict) -> dict[str, object]:
    """`Mappings: Settings`: each deploy-time setting's value (docs/deploy.md#settings-in-templateyaml)."""
    return {name: entry["Default"] for name, entry in template["Mappings"]["Settings"].items()}


def _state_machines(template: dict) -> dict[str, dict]:
    return {
        name: res["Properties"]
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::StateMachine"
    }


def _walk_states(states: dict, prefix: str = ""):
    """Yields (qualified name, state) for every state, including those inside Map/Parallel."""
    for name, state in states.items():
        yield prefix + name, state
        if state["Type"] == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator")
            yield from _walk_states(processor["States"], f"{prefix}{name}/")
        if state["Type"] == "Parallel":
            for i, branch in enumerate(state["Branches"]):
                yield from _walk_states(branch["States"], f"{prefix}{name}[{i}]/")


def _asl_files() -> list[Path]:
    files = sorted((ROOT / "statemachine").glob("*.asl.json"))
    assert files, "no statemachine/*.asl.json files"
    return files


def test_every_asl_file_is_referenced_and_its_placeholders_are_substituted(template):
    machines = _state_machines(template)
    referenced = {props["DefinitionUri"]: props for props in machines.values()}
    for path in _asl_files():
        rel = path.relative_to(ROOT).as_posix()
        assert rel in referenced, f"{rel} is not the DefinitionUri of any state machine"
        placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", path.read_text()))
        substitutions = set(referenced[rel].get("DefinitionSubstitutions", {}))
        assert placeholders == substitutions, f"{rel}: placeholders {placeholders} != substitutions {substitutions}"


def _starts_the_bot(task: dict) -> bool:
    """An execute of the function (ExecuteBot, RunBotMap's ExecuteBotAndWait, RecoverJob): it sends a request.
    DecideTick sends the request too, but only for the tick's decision (`schedule_tick`): it starts nothing."""
    payload = task.get("Parameters", {}).get("Payload", {})
    return "request.$" in payload and payload.get("operation") not in ("schedule_tick", "decide_rerun")


@pytest.mark.parametrize("path", _asl_files(), ids=lambda p: p.name)
def test_state_machine_retry_and_catch_policy(path: Path):
    definition = json.loads(path.read_text())
    assert isinstance(definition.get("TimeoutSeconds"), int), "an overall TimeoutSeconds bounds the poll loop"
    tasks = [(name, s) for name, s in _walk_states(definition["States"]) if s["Type"] == "Task"]
    assert tasks
    execute_tasks = [name for name, s in tasks if name.split("/")[-1] == "ExecuteBot"]
    assert execute_tasks, "every state machine starts the BOT in a state named ExecuteBot"
    for name, state in tasks:
        if state["Resource"].endswith(".waitForTaskToken"):
            # The callback wait: bounded by the CallbackTimeoutSeconds parameter (via $.config).
            assert state.get("TimeoutSecondsPath") == "$.config.callback_timeout_seconds", name
            assert "States.Timeout" in [e for c in state["Catch"] for e in c["ErrorEquals"]], f"{name}: a lost callback falls back"
        else:
            assert isinstance(state.get("TimeoutSeconds"), int), f"{name}: per-task TimeoutSeconds"
        catches = [e for c in state.get("Catch", []) for e in c["ErrorEquals"]]
        assert "States.ALL" in catches, f"{name}: non-retryable errors must be caught"
        for retrier in state.get("Retry", []):
            errors = set(retrier["ErrorEquals"])
            assert errors <= RETRYABLE, f"{name}: retries non-retryable {errors - RETRYABLE}"
            assert retrier.get("JitterStrategy") == "FULL", f"{name}: full jitter"
            assert retrier.get("BackoffRate", 1) > 1, f"{name}: exponential backoff"
            assert retrier.get("MaxDelaySeconds"), f"{name}: capped delay"
            if _starts_the_bot(state):
                assert not errors & NEVER_RETRY_EXECUTE, f"{name}: retrying {errors & NEVER_RETRY_EXECUTE} could start a second job"
                assert retrier.get("Comment"), f"{name}: every ExecuteBot retrier says why it is safe"
        if _starts_the_bot(state):
            # The run's execution, recorded in the ledger even when the key is a schedule
            # occurrence's, so the orphan paths find the run (docs/orphans.md).
            assert state["Parameters"]["Payload"].get("execution.$") == "$$.Execution.Id", f"{name}: sends its execution"
            key = state["Parameters"]["Payload"].get("idempotency_key.$", "")
            if key == "$.key.value" and "/" in name:
                # A RunBotMap item's: chosen in ItemKey (execution id and item index).
                item_states = definition["States"][name.split("/")[0]]["ItemProcessor"]["States"]
                assert "$$.Execution.Id" in item_states["ItemKey"]["Parameters"]["value.$"], name
                continue
            if key == "$.key.value":
                # Chosen before ExecuteBot: the schedule's run (ARN + time) or the execution id.
                states = definition["States"]
                assert "$$.Execution.Id" in states["ExecutionKey"]["Parameters"]["value.$"], name
                schedule_key = states["ScheduleKey"]["Parameters"]["value.$"]
                assert "schedule_arn" in schedule_key and "scheduled_time" in schedule_key, name
                if "TickKey" in states:
                    # A managed schedule's tick: the nominal occurrence's key, as DecideTick decided it.
                    tick_key = states["TickKey"]["Parameters"]["value.$"]
                    assert "$.tick.decision.idempotency_key" in tick_key and "#ExecuteBot" in tick_key, name
                continue
            assert "$$.Execution.Id" in key, f"{name}: the idempotency key is built from the execution id"


# docs/deploy.md promises FunctionTimeout at most 110 (each task allows 120 s) and a callback
# timeout of 120..21600 s (what the function accepts).
MAX_FUNCTION_TIMEOUT = 110


def test_task_timeout_outlasts_the_longest_function_timeout(template):
    settings = _settings(template)
    assert 5 <= settings["FunctionTimeout"] <= MAX_FUNCTION_TIMEOUT
    for path in _asl_files():
        for name, state in _walk_states(json.loads(path.read_text())["States"]):
            if state["Type"] == "Task" and "TimeoutSeconds" in state:
                assert state["TimeoutSeconds"] > MAX_FUNCTION_TIMEOUT, f"{path.name}/{name}"
    assert MAX_FUNCTION_TIMEOUT < 120 <= settings["CallbackTimeoutSeconds"] <= 21600


def test_map_concurrency_is_bounded_by_a_setting(template):
    assert 1 <= _settings(template)["MapMaxConcurrency"] <= 40  # 40: inline Map's real concurrency limit
    definition = json.loads((ROOT / "statemachine/run-bot-map.asl.json").read_text())
    maps = [s for _, s in _walk_states(definition["States"]) if s["Type"] == "Map"]
    assert len(maps) == 1
    assert "MaxConcurrency" in maps[0] or "MaxConcurrencyPath" in maps[0]
    assert maps[0].get("MaxConcurrency") != 0, "0 means unbounded"


# Variables src/config/ reads that a deployment must never set (docs/deploy.md: "Other variables the
# function reads").
LOCAL_ONLY_VARIABLES = {"CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK", "CLOUDBOT_TEST_ONLY_EXTRA_CA_FILE"}


def _config_variables() -> set[str]:
    """Every CLOUDBOT_ variable the function's configuration reads (src/config.rs, or a
    src/config/ module)."""
    sources = [ROOT / "src" / "config.rs"] + sorted((ROOT / "src" / "config").rglob("*.rs"))
    text = "".join(s.read_text() for s in sources if s.exists())
    known = set(re.findall(r'"(CLOUDBOT_[A-Z_]+)"', text))
    assert "CLOUDBOT_SECRET_ID" in known, sources
    return known


def test_function_env_matches_what_config_reads(template):
    env = template["Resources"]["CloudBotFunction"]["Properties"]["Environment"]["Variables"]
    known = _config_variables()
    assert "CLOUDBOT_SECRET_ID" in env
    unknown = set(env) - known
    assert not unknown, f"template sets variables src/config/ never reads: {unknown}"
    # Local-run switches must never be on in a deployment.
    for switch in LOCAL_ONLY_VARIABLES:
        assert switch not in env, switch


def test_every_variable_the_function_reads_has_its_docs_row():
    # The tuning levers keep their code defaults unless a deployment adds them to the template
    # (docs/deploy.md#tuning-the-function); tests/it/lambda/docs.rs checks that each documented
    # default is the code's.
    documented = _table_names(DEPLOY_MD, "| Variable |")
    assert len(documented) == len(set(documented)), documented
    known = _config_variables()
    assert set(documented) == known, (
        f"missing rows in docs/deploy.md: {sorted(known - set(documented))}; "
        f"rows for variables the function does not read: {sorted(set(documented) - known)}"
    )


# At most this many parameters: what an operator must decide (issue 19: `sam deploy --guided`
# asks each one, without its description). Issue 23 added ContractSecretArns (one secret per
# contract: the IAM grant needs the list at deploy time); issue 22 the budget's three (allowance,
# warning and stop levels: a contract's plan, not a tuning default), and the running-job caps (how
# many jobs a contract's plan runs at once: RunningCap for all, ContractRunningCaps per contract).
MAX_PARAMETERS = 18


def test_the_deploy_asks_only_what_an_operator_must_decide(template):
    params = template["Parameters"]
    assert len(params) <= MAX_PARAMETERS, sorted(params)
    grouped = [n for g in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"] for n in g["Parameters"]]
    assert sorted(grouped) == sorted(params), "every parameter in exactly one group"
    for name, p in params.items():
        assert p.get("Description"), name
        assert "Default" in p, f"{name}: a first `sam deploy --guided` can accept every default"
    # Every parameter has its row in docs/deploy.md (the one table of them; README.md links to
    # it), with the template's default ("empty" for "").
    rows = _table_names(DEPLOY_MD, "| Parameter |")
    assert sorted(rows) == sorted(params), sorted(set(params) ^ set(rows))
    for row in _table(DEPLOY_MD, "| Parameter |"):
        names = re.findall(r"`([^`]+)`", row[0])
        defaults = [""] * len(names) if row[1] == "empty" else re.findall(r"`([^`]*)`", row[1])
        assert len(defaults) == len(names), row[:2]
        for name, default in zip(names, defaults):
            assert default == str(params[name]["Default"]), f"docs/deploy.md: {name} default {default!r}"


def test_every_setting_has_its_docs_row_with_its_value(template):
    settings = _settings(template)
    rows = {re.findall(r"`([^`]+)`", r[0])[0]: r for r in _table(DEPLOY_MD, "| Setting |")}
    assert sorted(rows) == sorted(settings), sorted(set(rows) ^ set(settings))
    for name, value in settings.items():
        assert rows[name][1] == f"`{value}`", f"docs/deploy.md says {rows[name][1]} for {name}, template.yaml {value}"
    # Each setting is used, through FindInMap, and nothing refers to a setting that is missing.
    used = set(re.findall(r"!FindInMap \[Settings, (\w+), Default\]", TEMPLATE.read_text()))
    assert used == set(settings), sorted(used ^ set(settings))


def test_the_benchmark_finds_the_memory_setting(template):
    # bench/src/harness/cpu.rs (template_memory) reads the text: the first line that is exactly
    # `FunctionMemorySize:`, then a `Default:` among the lines indented by 4 or more after it.
    lines = TEMPLATE.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "FunctionMemorySize:")
    assert lines[at + 1].strip() == f"Default: {_settings(template)['FunctionMemorySize']}"
    assert lines[at + 1].startswith("    ")


def test_every_output_has_its_docs_row(template):
    rows = _table_names(DEPLOY_MD, "| Output |")
    assert sorted(rows) == sorted(template["Outputs"]), sorted(set(rows) ^ set(template["Outputs"]))


def test_function_may_read_only_its_secret(template):
    props = template["Resources"]["CloudBotFunction"]["Properties"]
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    actions = []
    settle = ["states:SendTaskSuccess", "states:SendTaskFailure"]
    for statement in statements:
        if "Fn::If" in statement:  # conditional statement: [condition, then, else]
            statement = statement["Fn::If"][1]
        # SendTask* cannot be scoped: a task token names no state machine (IAM has no resource
        # type for these actions). Nothing else may use "*".
        assert statement["Resource"] != "*" or statement["Action"] == settle, statement
        actions.append(statement["Action"])
    assert sorted(map(str, actions)) == sorted(
        [
            "kms:Decrypt",
            "secretsmanager:GetSecretValue",
            str(["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"]),
            str(["dynamodb:Query"]),
            str(["dynamodb:Query"]),  # the ledger's open_runs index only (test_orphans_template.py)
            str(["dynamodb:UpdateItem", "dynamodb:GetItem"]),
            "events:PutEvents",
            str(["dynamodb:GetItem"]),
            str(["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem"]),
            "sqs:ChangeMessageVisibility",
            "sqs:SendMessage",
            str(settle),
        ]
    )
    # Admission control (docs/queue.md): the slot items of the ledger only, and the two lanes.
    conditional = {s["Fn::If"][1]["Sid"]: s["Fn::If"] for s in statements if "Fn::If" in s}
    condition, slots, _ = conditional["AdmissionSlots"]
    assert condition == "AdmissionOn"
    assert slots["Resource"] == {"Fn::GetAtt": ["RunLedgerTable", "Arn"]}
    assert slots["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["slot:*"]}}
    condition, delay, _ = conditional["DelayWaitingRuns"]
    assert condition == "AdmissionOn"
    assert delay["Resource"] == [{"Fn::GetAtt": ["RunQueueHigh", "Arn"]}, {"Fn::GetAtt": ["RunQueueNormal", "Arn"]}]
    # The dead-letter move (docs/queue.md): the run dead-letter queue only, told by its URL.
    move = next(s for s in statements if s.get("Sid") == "MoveDeadLetteredRuns")
    assert move["Action"] == "sqs:SendMessage"
    assert move["Resource"] == {"Fn::GetAtt": ["RunDeadLetterQueue", "Arn"]}
    assert props["Environment"]["Variables"]["CLOUDBOT_RUN_DEAD_LETTER_QUEUE_URL"] == {"Ref": "RunDeadLetterQueue"}
    table = next(s for s in statements if isinstance(s.get("Action"), list) and s["Action"][0].startswith("dynamodb:"))
    assert table["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}, "only the idempotency table"
    ledger = next(s for s in statements if s.get("Sid") == "WriteRunLedger")
    assert ledger["Resource"] == {"Fn::GetAtt": ["RunLedgerTable", "Arn"]}, "only the ledger table"
    assert props["Environment"]["Variables"]["CLOUDBOT_RUN_LEDGER_TABLE"] == {"Ref": "RunLedgerTable"}
    events = next(s for s in statements if s.get("Sid") == "PutJobEvents")
    assert events["Resource"] == {"Fn::GetAtt": ["JobEventBus", "Arn"]}, "only the stack's bus"
    assert props["Environment"]["Variables"]["CLOUDBOT_EVENT_BUS_NAME"] == {"Ref": "JobEventBus"}
    assert props["Environment"]["Variables"]["CLOUDBOT_IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    # One secret for every contract, or one per contract: either way the policy names exactly the
    # secrets the function is told to read (docs/deploy.md, "Several contracts").
    variables = props["Environment"]["Variables"]
    read = next(s for s in statements if s.get("Action") == "secretsmanager:GetSecretValue")
    condition, per_contract, one = read["Resource"]["Fn::If"]
    assert condition == "HasContractSecrets"
    assert variables["CLOUDBOT_SECRET_ID"] == {"Fn::If": [condition, {"Ref": "AWS::NoValue"}, one]}
    assert variables["CLOUDBOT_CONTRACT_SECRETS"] == {
        "Fn::If": [condition, {"Fn::Join": [",", per_contract]}, {"Ref": "AWS::NoValue"}]
    }
    assert per_contract == {"Ref": "ContractSecretArns"}, "exactly the listed secrets, no pattern"



def test_no_task_expects_a_heartbeat_so_none_may_be_sent(template):
    # Least privilege: states:SendTaskHeartbeat would have no use (docs/state-machines.md: nothing
    # can send one while the BOT runs at Cloud BOT), so no task asks for heartbeats and the function
    # may not send them.
    for path in _asl_files():
        for name, state in _walk_states(json.loads(path.read_text())["States"]):
            assert not {"HeartbeatSeconds", "HeartbeatSecondsPath"} & set(state), f"{path.name}/{name}"
    statements = [s for p in template["Resources"]["CloudBotFunction"]["Properties"]["Policies"] for s in p["Statement"]]
    assert "states:SendTaskHeartbeat" not in json.dumps(statements)


def test_idempotency_table_is_on_demand_encrypted_with_ttl(template):
    table = template["Resources"]["IdempotencyTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "record_key", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    # The reconcile's index (docs/exactly-once.md; src/idempotency/dynamodb.rs BY_BOT_INDEX and
    # tests/it/support/moto.rs build the same), granted to the function for Query only.
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_bot"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["bot_endpoint", "claimed_at"]
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["state", "in_flight_until", "job_reference_endpoint"],
    }
    statements = [s for p in template["Resources"]["CloudBotFunction"]["Properties"]["Policies"] for s in p["Statement"]]
    [query] = [s for s in statements if isinstance(s, dict) and s.get("Sid") == "QueryClaimsByBot"]
    assert query["Action"] == ["dynamodb:Query"]
    assert query["Resource"] == {"Fn::Sub": "${IdempotencyTable.Arn}/index/by_bot"}


def test_run_ledger_table_is_on_demand_encrypted_recoverable_with_ttl_and_its_indexes(template):
    # docs/ledger.md: keys and indexes; src/ledger/mod.rs (index names) and
    # tests/it/support/moto.rs (the same table in moto) must agree with these.
    table = template["Resources"]["RunLedgerTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "run", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {
        "by_bot": ["bot", "started_at"],
        "by_month": ["month", "started_at"],
        "by_schedule": ["schedule", "nominal_time"],
        "open_runs": ["open", "open_key"],
    }
    ledger_rs = (ROOT / "src" / "ledger" / "mod.rs").read_text()
    moto_rs = (ROOT / "tests" / "it" / "support" / "moto.rs").read_text()
    for name, keys in indexes.items():
        assert f'"{name}"' in ledger_rs, name
        assert f'index("{name}", "{keys[0]}", "{keys[1]}")' in moto_rs, name
    env = template["Resources"]["CloudBotFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CLOUDBOT_RUN_LEDGER_RETENTION_DAYS"] == {"Ref": "RunLedgerRetentionDays"}


def test_maximum_run_time_default_and_the_running_job_alarm(template):
    # docs/overrun.md: the stack default reaches the function, and the alarm reads the longest
    # running time any look saw (Maximum), against its own parameter.
    env = template["Resources"]["CloudBotFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CLOUDBOT_MAX_RUN_SECONDS"] == {"Fn::FindInMap": ["Settings", "MaxRunSeconds", "Default"]}
    assert _settings(template)["MaxRunSeconds"] == 0, "no default maximum unless the operator sets one"
    alarm = template["Resources"]["JobRunningTooLongAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Statistic"]) == ("JobRunningSeconds", "Maximum")
    assert alarm["Threshold"] == {"Fn::FindInMap": ["Settings", "JobRunningAlarmSeconds", "Default"]}
    assert "Dimensions" not in alarm, "JobRunningSeconds is emitted without dimensions"
    assert len(alarm["AlarmDescription"]) <= 1024


# The three schedules (ScheduleTarget and Callbacks pick the one that takes ScheduleState) and the
# condition each one's State depends on.
SCHEDULES = {
    "CloudBotFunction": "ScheduleTargetsFunction",
    "RunBotStateMachine": "ScheduleTargetsRunBot",
    "RunBotCallbackStateMachine": "ScheduleTargetsRunBotCallback",
}


def test_async_retries_and_every_schedule_carry_an_idempotency_key(template):
    props = template["Resources"]["CloudBotFunction"]["Properties"]
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    assert props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    for resource in SCHEDULES:
        schedule = template["Resources"][resource]["Properties"]["Events"]["Schedule"]
        assert schedule["Type"] == "ScheduleV2", resource
        schedule_input = schedule["Properties"]["Input"]["Fn::Sub"]
        envelope = json.loads(schedule_input.replace("${ScheduleInput}", template["Parameters"]["ScheduleInput"]["Default"]))
        assert envelope["schedule"] == {
            "schedule_arn": "<aws.scheduler.schedule-arn>",
            "scheduled_time": "<aws.scheduler.scheduled-time>",
        }, f"{resource}: not <aws.scheduler.execution-id>: it changes on every attempt"
        assert envelope["request"] == {}
        assert "DeadLetterConfig" in schedule["Properties"], resource
        assert schedule["Properties"]["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600, resource
    # The state machines the schedule can start key the run from that envelope (ChooseKey).
    for name in ("run-bot.asl.json", "run-bot-callback.asl.json"):
        states = json.loads((ROOT / "statemachine" / name).read_text())["States"]
        assert states["ExecuteBot"]["Parameters"]["Payload"]["idempotency_key.$"] == "$.key.value", name
        assert "$.schedule.schedule_arn" in json.dumps(states["ChooseKey"]), name


def _condition(template: dict, name: str, params: dict[str, str]) -> bool:
    """Evaluates one of the template's Conditions for the given parameter values."""

    def evaluate(node) -> object:
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return params[arg]
            if fn in ("Condition", "Fn::Condition"):  # the YAML loader's spelling of !Condition
                return _condition(template, arg, params)
            if fn == "Fn::Equals":
                return str(evaluate(arg[0])) == str(evaluate(arg[1]))
            if fn == "Fn::Not":
                return not evaluate(arg[0])
            if fn == "Fn::And":
                return all(evaluate(a) for a in arg)
            if fn == "Fn::Or":
                return any(evaluate(a) for a in arg)
            if fn == "Fn::Join":  # a CommaDelimitedList parameter's value is its text
                return arg[0].join(str(evaluate(arg[1])).split(","))
            raise AssertionError(f"unexpected {fn} in a condition")
        return node

    return bool(evaluate(template["Conditions"][name]))


def _defaults(template: dict) -> dict[str, str]:
    return {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}


@pytest.mark.parametrize("callbacks", ["ENABLED", "DISABLED"])
@pytest.mark.parametrize("target", ["RunBotCallback", "RunBot", "Function"])
def test_exactly_one_schedule_runs_and_callbacks_off_means_run_bot(template, target, callbacks):
    params = {**_defaults(template), "ScheduleTarget": target, "Callbacks": callbacks, "ScheduleState": "ENABLED"}
    assert template["Parameters"]["ScheduleTarget"]["AllowedValues"] == ["RunBotCallback", "RunBot", "Function"]
    running = []
    for resource, condition in SCHEDULES.items():
        state = template["Resources"][resource]["Properties"]["Events"]["Schedule"]["Properties"]["State"]
        assert state == {"Fn::If": [condition, {"Ref": "ScheduleState"}, "DISABLED"]}, resource
        if _condition(template, condition, params):
            running.append(resource)
    expected = {
        ("RunBotCallback", "ENABLED"): "RunBotCallbackStateMachine",
        ("RunBotCallback", "DISABLED"): "RunBotStateMachine",
        ("RunBot", "ENABLED"): "RunBotStateMachine",
        ("RunBot", "DISABLED"): "RunBotStateMachine",
        ("Function", "ENABLED"): "CloudBotFunction",
        ("Function", "DISABLED"): "CloudBotFunction",
    }[(target, callbacks)]
    assert running == [expected]


def test_callbacks_off_removes_the_public_route_and_tells_the_function(template):
    off = {**_defaults(template), "Callbacks": "DISABLED"}
    on = {**_defaults(template), "Callbacks": "ENABLED"}
    assert template["Parameters"]["Callbacks"]["Default"] == "ENABLED"
    assert _condition(template, "CallbacksOn", on) and not _condition(template, "CallbacksOn", off)
    resources = template["Resources"]
    # Everything that names the callback API exists only with callbacks on (cfn-lint checks that
    # nothing unconditional refers to them).
    callback_resources = {n for n, r in resources.items() if n == "CallbackApi" or "CallbackApi" in json.dumps(r.get("Properties", {}))}
    callback_resources -= {"CloudBotFunction", "OperationsDashboard"}  # conditional values inside
    assert {"CallbackApi", "CallbackRoute", "BotDoneRoute", "CallbackIntegration", "CallbackStage", "CallbackInvokePermission", "CallbackApiErrorsAlarm"} <= callback_resources
    for name in callback_resources:
        assert resources[name].get("Condition") == "CallbacksOn", name
    base = resources["CloudBotFunction"]["Properties"]["Environment"]["Variables"]["CLOUDBOT_CALLBACK_BASE_URL"]
    assert base["Fn::If"][0] == "CallbacksOn" and base["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert template["Outputs"]["CallbackApiUrl"]["Condition"] == "CallbacksOn"


def test_http_api_routes_use_iam_and_throttling(template):
    api = template["Resources"]["HttpApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert {"ThrottlingBurstLimit", "ThrottlingRateLimit"} <= set(api["DefaultRouteSettings"])
    events = template["Resources"]["CloudBotFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events.values() if e["Type"] == "HttpApi"}
    assert routes == {
        ("POST", "/bots/{public_id}/{bot_id}/jobs"),
        ("GET", "/jobs/{public_id}/{job_id}"),
        ("GET", "/bots/{public_id}"),
    }


def test_the_callback_route_alone_is_unauthenticated_and_has_no_cycle(template):
    resources = template["Resources"]
    route = resources["CallbackRoute"]["Properties"]
    assert route["RouteKey"] == "POST /callbacks/{id}"
    assert route["AuthorizationType"] == "NONE", "Cloud BOT cannot sign requests"
    # The BOT-done webhook (src/bot_done.rs, PATH_SEGMENT) on the same API, unsigned too.
    done = resources["BotDoneRoute"]["Properties"]
    assert done["RouteKey"] == "POST /callbacks/bot-done/{public_id}/{bot_id}/{token}"
    assert done["AuthorizationType"] == "NONE" and done["Target"] == route["Target"]
    assert resources["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM", "the other routes keep IAM"
    assert {"ThrottlingBurstLimit", "ThrottlingRateLimit"} <= set(resources["CallbackStage"]["Properties"]["DefaultRouteSettings"])
    # The function names the API, the API must not name the function (cfn-lint checks the cycle).
    assert "CloudBotFunction" not in json.dumps(resources["CallbackApi"])
    base = resources["CloudBotFunction"]["Properties"]["Environment"]["Variables"]["CLOUDBOT_CALLBACK_BASE_URL"]
    url = base["Fn::If"][1]["Fn::Sub"]
    assert url.startswith("https://${CallbackApi}.") and url.endswith("/callbacks")
    permission = resources["CallbackInvokePermission"]["Properties"]
    assert permission["SourceArn"]["Fn::Sub"].endswith("${CallbackApi}/*/POST/callbacks/*")


# ------------------------------------------------------------------------------------------------
# Alarms and the dashboard see only metrics the function emits (src/metrics.rs is their one home),
# so a rename cannot silently blind an alarm.

METRICS_RS = ROOT / "src/metrics.rs"
KIND_RS = ROOT / "src/error/kind.rs"
OUR_NAMESPACE = "CloudBotTrigger/${AWS::StackName}"


def _operations() -> list[str]:
    """Every value of the Operation dimension: docs/operations.md's table, which
    tests/it/lambda/docs.rs generates from OPERATIONS in src/metrics.rs (and fails while it
    differs), so the code is the one home of the list."""
    return _table_names(OPERATIONS_MD, "| `Operation` |")


def _rust_consts(module: str) -> set[str]:
    """The string constants of `pub mod <module> { ... }` in src/metrics.rs."""
    text = METRICS_RS.read_text()
    block = re.search(r"pub mod " + module + r" \{(.*?)\n\}", text, re.S)
    assert block, f"pub mod {module} not found in {METRICS_RS}"
    return set(re.findall(r'pub const [A-Z_]+: &str = "([^"]+)";', block.group(1)))


def _dimension_sets() -> list[set[str]]:
    """Every dimension set a metric is emitted with: DIMENSION_SETS (the invocation's) and each
    metric's own (`*_DIMENSION_SETS`: by skip reason, none for SchedulePaused)."""
    text = METRICS_RS.read_text()
    blocks = re.findall(r"pub const \w*DIMENSION_SETS[^=]*= &\[(.*?)\];", text, re.S)
    assert len(blocks) >= 3, "DIMENSION_SETS not found"
    names = {
        "dimension::OPERATION": "Operation",
        "dimension::OUTCOME": "Outcome",
        "dimension::SKIP_REASON": "SkipReason",
        "dimension::LANE": "Lane",
        "dimension::CONTRACT": "Contract",
    }
    sets = []
    for block in blocks:
        for inner in re.findall(r"&\[([^\]]*)\]", block):
            sets.append({names[d.strip()] for d in inner.split(",") if d.strip()})
    return sets


def _error_types() -> set[str]:
    return set(re.findall(r'name: "([A-Za-z.]+)"', KIND_RS.read_text()))


def _ours(namespace) -> bool:
    return isinstance(namespace, dict) and namespace.get("Fn::Sub") == OUR_NAMESPACE or namespace == OUR_NAMESPACE


def _used_metrics(template: dict):
    """(where, metric name, {dimension: value}) of every metric in our namespace that an alarm or
    the dashboard reads, plus the metric names of SEARCH expressions (with dimensions None)."""
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::CloudWatch::Alarm":
            stats = [(props.get("Namespace"), props.get("MetricName"), props.get("Dimensions", []))]
            for m in props.get("Metrics", []):
                metric = m.get("MetricStat", {}).get("Metric")
                if metric:
                    stats.append((metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])))
            for namespace, metric, dims in stats:
                if _ours(namespace):
                    yield name, metric, {d["Name"]: d["Value"] for d in dims}
        if res["Type"] == "AWS::CloudWatch::Dashboard":
            for widget in _dashboard(template)["widgets"]:
                for row in widget["properties"].get("metrics", []):
                    parts = [p for p in row if not isinstance(p, dict)]
                    options = [p for p in row if isinstance(p, dict)]
                    for option in options:
                        expression = option.get("expression", "")
                        if OUR_NAMESPACE in expression:
                            for metric in re.findall(r'MetricName="([^"]+)"', expression):
                                yield f"{name}/{widget['properties']['title']}", metric, None
                    if parts and parts[0] == OUR_NAMESPACE:
                        dims = dict(zip(parts[2::2], parts[3::2]))
                        yield f"{name}/{widget['properties']['title']}", parts[1], dims


def _dashboard(template: dict, callbacks: bool = True, budget: bool = True) -> dict:
    """The dashboard body as JSON, its variables resolved for Callbacks ENABLED or DISABLED and a
    budget or none, and every other ${...} left as the placeholder's text."""
    body, variables = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    conditions = {"CallbacksOn": callbacks, "HasBudget": budget}

    def resolve(value):
        if isinstance(value, dict) and "Fn::If" in value:
            condition, then, otherwise = value["Fn::If"]
            assert condition in conditions, condition
            return resolve(then if conditions[condition] else otherwise)
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(resolve(part) for part in parts)
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return "${" + ".".join(value["Fn::GetAtt"]) + "}"
        if isinstance(value, dict) and "Ref" in value:
            return "${" + value["Ref"] + "}"
        return value

    for name, value in variables.items():
        body = body.replace("${" + name + "}", resolve(value))
    return json.loads(re.sub(r"\$\{[^}]+\}", lambda m: m.group(0).replace('"', ""), body))


def _widget(dashboard: dict, title: str) -> dict:
    (widget,) = [w["properties"] for w in dashboard["widgets"] if w["properties"]["title"].startswith(title)]
    return widget


def test_alarms_and_dashboard_use_only_metrics_the_function_emits(template):
    emitted = _rust_consts("name")
    dimensions = _rust_consts("dimension")
    sets = _dimension_sets()
    error_types = _error_types()
    assert {"Failures", "RunsStarted", "UpstreamLatency"} <= emitted, emitted
    assert sets and error_types
    used = list(_used_metrics(template))
    assert len(used) >= 10, used
    for where, metric, dims in used:
        assert metric in emitted, f"{where}: {metric} is not a metric src/metrics.rs emits ({sorted(emitted)})"
        if dims is None:
            continue
        assert set(dims) <= dimensions, f"{where}: unknown dimension in {dims}"
        assert set(dims) in sets, f"{where}: {sorted(dims)} is not one of the emitted dimension sets {sets}"
        if "Operation" in dims:
            assert dims["Operation"] in _operations(), f"{where}: {dims}"
        if "Outcome" in dims:
            assert dims["Outcome"] == "ok" or dims["Outcome"] in error_types, (
                f"{where}: Outcome {dims['Outcome']} is not an error type of src/error/kind.rs"
            )


def _stack_totals() -> set[str]:
    """The metrics src/metrics.rs also publishes without dimensions (STACK_TOTALS): the
    stack-wide totals an alarm watches as one metric, whatever the operations."""
    block = re.search(r"pub const STACK_TOTALS: &\[&str\] = &\[(.*?)\];", METRICS_RS.read_text(), re.S)
    assert block, "STACK_TOTALS not found in src/metrics.rs"
    consts = re.findall(r"name::([A-Z_]+)", block.group(1))
    names = dict(re.findall(r'pub const ([A-Z_]+): &str = "([^"]+)";', METRICS_RS.read_text()))
    return {names[c] for c in consts}


def _assert_watches_the_stack_total(props: dict, metric: str):
    """A plain single-metric alarm on `metric`'s dimensionless total, a 5-minute sum."""
    assert metric in _stack_totals(), f"{metric} has no dimensionless total in src/metrics.rs"
    assert "Metrics" not in props and "Dimensions" not in props, props
    assert _ours(props["Namespace"]) and props["MetricName"] == metric, props
    assert (props["Statistic"], props["Period"], props["EvaluationPeriods"]) == ("Sum", 300, 1), props
    assert props["TreatMissingData"] == "notBreaching", props


def test_no_alarm_holds_more_metrics_than_cloudwatch_allows(template):
    # PutMetricAlarm refuses a metric-math alarm with more than 10 entries holding a metric (the
    # expressions aside): the stack would fail to deploy.
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::CloudWatch::Alarm":
            metrics = res["Properties"].get("Metrics", [])
            stats = [m for m in metrics if "MetricStat" in m]
            assert len(stats) <= 10 and len(metrics) <= 10, f"{name}: {len(stats)} metrics, {len(metrics)} entries"


def test_failures_of_every_trigger_reach_an_alarm(template):
    alarms = {n: r["Properties"] for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # OutcomeUnknown alarms on the first occurrence and tells the human what to do.
    unknown = alarms["OutcomeUnknownAlarm"]
    assert unknown["Threshold"] == 0 and unknown["ComparisonOperator"] == "GreaterThanThreshold"
    assert "cloudbot jobs" in unknown["AlarmDescription"] and len(unknown["AlarmDescription"]) <= 1024
    # Calendar.Stale alarms on the first stale tick, of either operation that decides ticks, and
    # says how to recover (issue 21: "a date beyond the data's validity is an error, alarmed").
    stale = alarms["CalendarStaleAlarm"]
    stale_stats = [m["MetricStat"]["Metric"] for m in stale["Metrics"] if "MetricStat" in m]
    assert sorted((s["MetricName"], {d["Name"]: d["Value"] for d in s["Dimensions"]}["Operation"],
                   {d["Name"]: d["Value"] for d in s["Dimensions"]}["Outcome"]) for s in stale_stats) == [
        ("Failures", "execute", "Calendar.Stale"), ("Failures", "schedule_tick", "Calendar.Stale")]
    (stale_total,) = [m for m in stale["Metrics"] if m.get("ReturnData")]
    assert sorted(re.findall(r"\w+", stale_total["Expression"].removeprefix("SUM"))) == ["execute", "schedule_tick"]
    assert stale["Threshold"] == 0 and "backfill" in stale["AlarmDescription"]
    assert len(stale["AlarmDescription"]) <= 1024
    # Every operation's failures (HTTP API answers, callbacks and resolve_idempotency included)
    # reach FailuresAlarm through the dimensionless total the function emits.
    _assert_watches_the_stack_total(alarms["FailuresAlarm"], "Failures")
    assert alarms["FailuresAlarm"]["Threshold"] == 1
    assert alarms["FailuresAlarm"]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # Every state machine: failed and timed-out executions.
    machines = set(_state_machines(template))
    watched: dict[str, set[str]] = {}
    for props in alarms.values():
        for m in props.get("Metrics", []):
            metric = m.get("MetricStat", {}).get("Metric", {})
            if metric.get("Namespace") == "AWS/States":
                arn = metric["Dimensions"][0]["Value"]["Ref"]
                watched.setdefault(arn, set()).add(metric["MetricName"])
    for machine in machines:
        assert watched.get(machine, set()) >= {"ExecutionsFailed", "ExecutionsTimedOut"}, machine
    # Each API's own 5xx (the HTTP API; the callback API's 4xx too), and every queue's depth.
    assert any(p.get("Namespace") == "AWS/ApiGateway" and p.get("MetricName") == "5xx" for p in alarms.values())
    callback = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]["Dimensions"]
        for m in alarms["CallbackApiErrorsAlarm"]["Metrics"]
        if "MetricStat" in m
    }
    assert callback == {code: [{"Name": "ApiId", "Value": {"Ref": "CallbackApi"}}] for code in ("4xx", "5xx")}
    queues = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    queue_refs = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for p in alarms.values()
        for m in p.get("Metrics", [])
        if m.get("MetricStat", {}).get("Metric", {}).get("Namespace") == "AWS/SQS"
    }
    assert queues <= queue_refs, queues - queue_refs
    # Every alarm notifies the AlarmEmail topic the stack creates and the existing AlarmTopicArn,
    # each when given.
    for name, props in alarms.items():
        assert props["AlarmActions"] == [
            {"Fn::If": ["HasAlarmEmail", {"Ref": "AlarmTopic"}, {"Ref": "AWS::NoValue"}]},
            {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]},
        ], name
    resources = template["Resources"]
    assert resources["AlarmTopic"]["Condition"] == "HasAlarmEmail"
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}


def test_the_dashboard_shows_every_operation_state_machine_and_alarm(template):
    alarms = sorted(n for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm")
    for callbacks in (True, False):
        dashboard = _dashboard(template, callbacks)
        invocations = _widget(dashboard, "Invocations")["metrics"]
        shown = [row[3] for row in invocations if len(row) > 3 and row[1] == "Invocations"]
        assert sorted(shown) == sorted(_operations()), "one Invocations line per operation"
        executions = _widget(dashboard, "State machine executions")["metrics"]
        machines = {row[3].strip("${}") for row in executions}
        assert machines == set(_state_machines(template)), machines
        listed = sorted(a.removeprefix("${").removesuffix(".Arn}") for a in _widget(dashboard, "Alarms")["alarms"])
        conditional = {n for n in alarms if template["Resources"][n].get("Condition") == "CallbacksOn"}
        assert listed == sorted(alarms if callbacks else set(alarms) - conditional), listed
    # Without a budget, no budget alarm to list.
    listed = _widget(_dashboard(template, budget=False), "Alarms")["alarms"]
    assert "${BudgetWarningAlarm.Arn}" not in listed and len(listed) == len(alarms) - 1


def test_the_budget_is_off_at_0_and_its_alarm_watches_the_functions_share(template):
    # docs/usage.md: BudgetMonthlySeconds 0 = no budget; the function reads the same two values.
    resources = template["Resources"]
    assert template["Conditions"]["HasBudget"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BudgetMonthlySeconds"}, "0"]}]}
    env = resources["CloudBotFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CLOUDBOT_BUDGET_MONTHLY_SECONDS"] == {"Ref": "BudgetMonthlySeconds"}
    assert env["CLOUDBOT_BUDGET_STOP_PERCENT"] == {"Ref": "BudgetStopPercent"}
    alarm = resources["BudgetWarningAlarm"]
    assert alarm["Condition"] == "HasBudget"
    props = alarm["Properties"]
    assert (props["MetricName"], props["Statistic"], props["Threshold"]) == (
        "BudgetUsedPercent", "Maximum", {"Ref": "BudgetWarningPercent"})
    assert "Dimensions" not in props, "the dimensionless set: every contract"
    # The counter read is granted only with a budget, and only on counter items.
    statements = resources["CloudBotFunction"]["Properties"]["Policies"][0]["Statement"]
    (read,) = [s["Fn::If"] for s in statements if "Fn::If" in s and s["Fn::If"][1].get("Sid") == "ReadUsageCounter"]
    assert read[0] == "HasBudget" and read[2] == {"Ref": "AWS::NoValue"}
    assert read[1]["Action"] == ["dynamodb:GetItem"]
    assert read[1]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["usage:*"]}}


def test_every_alarm_has_its_docs_rows(template):
    alarms = sorted(n for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm")
    # docs/operations.md holds the one table of them (README.md links to it).
    rows = _table_names(OPERATIONS_MD, "| alarm | fires when |")
    assert sorted(rows) == alarms, sorted(set(rows) ^ set(alarms))


def test_state_machines_log_errors_and_every_log_group_expires(template):
    resources = template["Resources"]
    for name, props in _state_machines(template).items():
        logging = props["Logging"]
        assert logging["Level"] == "ERROR" and logging["IncludeExecutionData"] is False, name
        group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
    access = resources["HttpApi"]["Properties"]["AccessLogSettings"]
    assert json.loads(access["Format"])["status"] == "$context.status"
    for name, res in resources.items():
        if res["Type"] == "AWS::Logs::LogGroup":
            assert res["Properties"]["RetentionInDays"] == {"Fn::FindInMap": ["Settings", "LogRetentionDays", "Default"]}, name


def test_ledger_and_event_failures_reach_an_alarm(template):
    # Both metrics are emitted by whichever operations learn a job's state (the ledger's writers,
    # docs/ledger.md "Writes"; the events' publishers, docs/events.md): each alarm watches the
    # dimensionless total, so a new writer needs no template change, and fires on the first one.
    alarms = template["Resources"]
    for alarm, metric in (("LedgerWriteFailuresAlarm", "LedgerWriteFailures"), ("EventPublishFailuresAlarm", "EventPublishFailures")):
        props = alarms[alarm]["Properties"]
        _assert_watches_the_stack_total(props, metric)
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold", alarm
    widget = _widget(_dashboard(template), "Run ledger and job-finished events")
    shown = " ".join(str(row) for row in widget["metrics"])
    assert "LedgerWriteFailures" in shown and "EventPublishFailures" in shown


def test_the_job_event_bus_is_the_stacks_and_an_output(template):
    bus = template["Resources"]["JobEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert template["Outputs"]["JobEventBusName"]["Value"] == {"Ref": "JobEventBus"}
    assert template["Outputs"]["JobEventBusArn"]["Value"] == {"Fn::GetAtt": ["JobEventBus", "Arn"]}


def test_outputs(template):
    assert {
        "FunctionArn",
        "FunctionAliasArn",
        "HttpApiUrl",
        "RunBotStateMachineArn",
        "RunBotMapStateMachineArn",
        "RunBotCallbackStateMachineArn",
        "SecretArn",
        "ScheduleGroupName",
        "SchedulerRoleArn",
        "ScheduleTargetArn",
        "ScheduleDeadLetterQueueArn",
        "JobEventBusName",
        "JobEventBusArn",
    } <= set(template["Outputs"])


@pytest.mark.parametrize("callbacks", ["ENABLED", "DISABLED"])
@pytest.mark.parametrize("target", ["RunBotCallback", "RunBot", "Function"])
def test_managed_schedules_target_what_the_template_schedule_targets(template, target, callbacks):
    # `cloudbot schedules apply` targets ScheduleTargetArn: the same choice as the template's own
    # schedule (the one of the three that takes ScheduleState).
    params = {**_defaults(template), "ScheduleTarget": target, "Callbacks": callbacks}
    value = template["Outputs"]["ScheduleTargetArn"]["Value"]

    def evaluate(node):
        if isinstance(node, dict) and "Fn::If" in node:
            condition, then, otherwise = node["Fn::If"]
            return evaluate(then if _condition(template, condition, params) else otherwise)
        return node

    chosen = [r for r, c in SCHEDULES.items() if _condition(template, c, params)]
    expected = {"CloudBotFunction": {"Ref": "CloudBotFunction.Alias"}}.get(chosen[0], {"Ref": chosen[0]})
    assert evaluate(value) == expected


def test_the_scheduler_role_may_start_only_the_targets_and_dead_letter(template):
    role = template["Resources"]["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    grants = {s["Action"]: s["Resource"] for s in statements}
    assert grants == {
        "lambda:InvokeFunction": {"Ref": "CloudBotFunction.Alias"},
        "states:StartExecution": [{"Ref": "RunBotStateMachine"}, {"Ref": "RunBotCallbackStateMachine"}],
        "sqs:SendMessage": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]},
    }
    assert template["Outputs"]["SchedulerRoleArn"]["Value"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert template["Outputs"]["ScheduleGroupName"]["Value"] == {"Ref": "ScheduleGroup"}


# ------------------------------------------------------------------------------------------------
# Versioned invocation: every deploy publishes a version behind the `live` alias, and everything
# that invokes the function invokes that alias, never $LATEST.

ALIAS = "live"
SAM_PYTHON = ROOT / ".tools" / "venv-sam" / "bin" / "python"


def test_each_deploy_publishes_a_version_behind_the_alias(template):
    function = template["Resources"]["CloudBotFunction"]["Properties"]
    assert function["AutoPublishAlias"] == ALIAS
    assert template["Outputs"]["FunctionAliasArn"]["Value"] == {"Ref": "CloudBotFunction.Alias"}


def test_state_machines_invoke_only_the_alias(template):
    for name, props in _state_machines(template).items():
        assert props["DefinitionSubstitutions"]["CloudBotFunctionArn"] == {"Ref": "CloudBotFunction.Alias"}, name
        invoke = [
            s for policy in props["Policies"] for s in policy["Statement"] if s["Action"] == "lambda:InvokeFunction"
        ]
        assert [s["Resource"] for s in invoke] == [{"Ref": "CloudBotFunction.Alias"}], name


def _statements(statements: list) -> list[dict]:
    """IAM statements, with both branches of a conditional (Fn::If) statement."""
    out = []
    for statement in statements:
        if "Fn::If" in statement:
            _, then, otherwise = statement["Fn::If"]
            out += [s for s in (then, otherwise) if "Action" in s]
        else:
            out.append(statement)
    return out


@pytest.fixture(scope="module")
def translated() -> dict:
    """template.yaml after the AWS::Serverless transform (SAM CLI's translator, offline)."""
    if not SAM_PYTHON.exists():
        pytest.fail(f"{SAM_PYTHON} is missing: run scripts/install-tools.sh sam")
    done = subprocess.run(
        [str(SAM_PYTHON), str(ROOT / "tests" / "py" / "sam_translate.py"), str(TEMPLATE)],
        env={"PATH": "/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0", "AWS_EC2_METADATA_DISABLED": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_generated_invoker_targets_the_alias(translated):
    resources = translated["Resources"]
    aliases = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Alias" and r["Properties"]["FunctionName"] == {"Ref": "CloudBotFunction"}
    }
    assert [a["Name"] for a in aliases.values()] == [ALIAS]
    (alias_id,) = aliases
    alias_ref = {"Ref": alias_id}
    by_type: dict[str, list[tuple[str, dict]]] = {}
    for name, r in resources.items():
        by_type.setdefault(r["Type"], []).append((name, r["Properties"]))

    # The published version the alias points at comes from this function.
    versions = [p for _, p in by_type["AWS::Lambda::Version"]]
    assert versions and all(v["FunctionName"] == {"Ref": "CloudBotFunction"} for v in versions)

    # API Gateway's permissions (one per route) and the HTTP API integrations.
    permissions = by_type["AWS::Lambda::Permission"]
    assert permissions
    for name, p in permissions:
        assert p["FunctionName"] == alias_ref, f"{name} grants invoke on {p['FunctionName']}"
    # The IAM HttpApi (SAM's OpenAPI body); the callback API is plain resources (below).
    api = next(p for _, p in by_type["AWS::ApiGatewayV2::Api"] if "Body" in p)
    uris = [m["x-amazon-apigateway-integration"]["uri"] for path in api["Body"]["paths"].values() for m in path.values()]
    assert len(uris) == 3
    for uri in uris:
        assert f"${{{alias_id}}}" in json.dumps(uri), uri
    integrations = [p for _, p in by_type["AWS::ApiGatewayV2::Integration"]]
    assert [i["IntegrationUri"] for i in integrations] == [alias_ref], "the callback API's integration"

    # The schedule's target and its role.
    schedules = by_type["AWS::Scheduler::Schedule"]
    assert schedules
    # Admission control's sweep (docs/queue.md#the-sweep): the alias too, on with a cap only.
    sweeps = [p for _, p in schedules if p["Target"].get("Input") == '{"admission": "sweep"}']
    assert len(sweeps) == 1
    assert sweeps[0]["Target"]["Arn"] == alias_ref
    assert sweeps[0]["State"] == {"Fn::If": ["AdmissionOn", "ENABLED", "DISABLED"]}
    schedules = [(n, p) for n, p in schedules if p not in sweeps]
    # ScheduleTarget and Callbacks pick one of three schedules: the function's alias, the polling
    # workflow or the callback workflow (test_exactly_one_schedule_runs_... evaluates the choice).
    targets = {
        json.dumps(alias_ref): "ScheduleTargetsFunction",
        json.dumps({"Ref": "RunBotStateMachine"}): "ScheduleTargetsRunBot",
        json.dumps({"Ref": "RunBotCallbackStateMachine"}): "ScheduleTargetsRunBotCallback",
    }
    assert sorted(json.dumps(p["Target"]["Arn"]) for _, p in schedules) == sorted(targets)
    for _, p in schedules:
        condition = targets[json.dumps(p["Target"]["Arn"])]
        assert p["State"] == {"Fn::If": [condition, {"Ref": "ScheduleState"}, "DISABLED"]}, condition

    # State machines: the ASL substitution and their roles.
    machines = by_type["AWS::StepFunctions::StateMachine"]
    assert len(machines) == 3
    for name, p in machines:
        assert p["DefinitionSubstitutions"]["CloudBotFunctionArn"] == alias_ref, name

    # Every lambda:InvokeFunction grant in a generated role names the alias and nothing else.
    grants = 0
    for name, role in by_type["AWS::IAM::Role"]:
        for policy in role.get("Policies", []):
            for statement in _statements(policy["PolicyDocument"]["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "lambda:InvokeFunction" in actions:
                    grants += 1
                    assert statement["Resource"] == alias_ref, f"{name}: {statement}"
    assert grants >= 4, "the schedule's and the three state machines' roles"

    # Asynchronous invocations (the schedule) are configured on the alias they arrive at.
    (invoke_config,) = [p for _, p in by_type["AWS::Lambda::EventInvokeConfig"]]
    assert invoke_config["Qualifier"] == ALIAS
    assert invoke_config["MaximumRetryAttempts"] == 2, "retries carry the idempotency key (docs/exactly-once.md)"


# ------------------------------------------------------------------------------------------------
# The function accepts every configuration the template can give it.

SAMPLE_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cloudbot-trigger-AbCdEf"


def _function_env(template: dict, params: dict[str, object], settings: dict[str, object] | None = None) -> dict[str, str]:
    """The function's Environment.Variables for these parameter values and settings: conditions
    evaluated, parameter Refs and settings resolved (the created secret's ARN stands in for the
    secret Ref, a table name for the table's), AWS::NoValue dropped."""
    resources = {
        "IdempotencyTable": "cloudbot-trigger-IdempotencyTable-1A2B3C4D5E6F",
        "RunLedgerTable": "cloudbot-trigger-RunLedgerTable-1A2B3C4D5E6F",
        # A queue's Ref is its URL.
        "RunDeadLetterQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/cloudbot-trigger-runs-dlq",
    }
    settings = {**_settings(template), **(settings or {})}
    as_text = {name: str(value) for name, value in params.items()}

    def resolve(value):
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            if name == "AWS::NoValue":
                return None
            if name in resources:
                return resources[name]
            return str(params[name]) if name in params else SAMPLE_SECRET_ARN
        if isinstance(value, dict) and "Fn::If" in value:
            condition, then, otherwise = value["Fn::If"]
            return resolve(then if _condition(template, condition, as_text) else otherwise)
        if isinstance(value, dict) and "Fn::Join" in value:  # of a CommaDelimitedList parameter
            delimiter, items = value["Fn::Join"]
            return delimiter.join(resolve(items).split(","))
        if isinstance(value, dict) and "Fn::FindInMap" in value:
            mapping, name, key = value["Fn::FindInMap"]
            assert (mapping, key) == ("Settings", "Default"), value
            return str(settings[name])
        if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            pseudo = {
                # The longest stack name CloudFormation allows (128 characters).
                "AWS::StackName": "s" * 128,
                "CallbackApi": "a1b2c3d4e5",
                "AWS::Region": "us-east-1",
                "AWS::URLSuffix": "amazonaws.com",
            }
            return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo[m.group(1)], value["Fn::Sub"])
        assert isinstance(value, (str, int)), value
        return str(value)

    variables = template["Resources"]["CloudBotFunction"]["Properties"]["Environment"]["Variables"]
    env = {key: resolve(value) for key, value in variables.items()}
    return {key: value for key, value in env.items() if value is not None}


SAMPLE_CONTRACT_SECRETS = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:cloudbot-trigger/contract/sales-AbCdEf,"
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:cloudbot-trigger/contract/ops-GhIjKl"
)


@pytest.mark.parametrize("existing", ["", SAMPLE_SECRET_ARN])
@pytest.mark.parametrize("contracts", ["", SAMPLE_CONTRACT_SECRETS])
def test_one_secret_or_one_per_contract_never_both(template, existing, contracts):
    params = {**_defaults(template), "ExistingSecretArn": existing, "ContractSecretArns": contracts}
    env = _function_env(template, params)
    # The template's rule refuses both at deploy time, as the function would at cold start.
    rule = template["Rules"]["OneSecretOrOnePerContract"]["Assertions"][0]["Assert"]
    allowed = not (existing and contracts)
    assert rule == {
        "Fn::Or": [
            {"Fn::Equals": [{"Ref": "ExistingSecretArn"}, ""]},
            {"Fn::EachMemberEquals": [{"Ref": "ContractSecretArns"}, ""]},
        ]
    }
    if not allowed:
        return
    if contracts:
        assert env["CLOUDBOT_CONTRACT_SECRETS"] == contracts
        assert "CLOUDBOT_SECRET_ID" not in env
        assert not _condition(template, "CreateSecret", params), "no unused placeholder secret"
        assert not _condition(template, "OneSecret", params), "no SecretArn output"
    else:
        assert "CLOUDBOT_CONTRACT_SECRETS" not in env
        assert env["CLOUDBOT_SECRET_ID"] == (existing or SAMPLE_SECRET_ARN)
        assert _condition(template, "CreateSecret", params) == (not existing)


def _parameter_sets(template: dict) -> dict[str, tuple[dict[str, object], dict[str, object]]]:
    """Labelled (parameter values, setting overrides) to start the function with."""
    params = template["Parameters"]
    defaults = {name: p.get("Default", "") for name, p in params.items()}
    sets = {
        "defaults": (defaults, {}),
        "documented example": ({**defaults, "DefaultBotEndpoint": "https://api.c-bot.pro/acme/bots/daily_report/jobs"}, {}),
        # The callback timeout's documented range, against the function's default idempotency
        # expiry (checked at cold start: docs/deploy.md).
        "CallbackTimeoutSeconds=120": (defaults, {"CallbackTimeoutSeconds": 120}),
        "CallbackTimeoutSeconds=21600": (defaults, {"CallbackTimeoutSeconds": 21600}),
        "ContractSecretArns (one secret per contract)": ({**defaults, "ContractSecretArns": SAMPLE_CONTRACT_SECRETS}, {}),
    }
    for name, p in params.items():
        for allowed in p.get("AllowedValues", []):
            sets[f"{name}={allowed}"] = ({**defaults, name: allowed}, {})
    return sets


def test_the_function_starts_with_every_configuration_the_template_allows(template, binaries):
    # Config::from_env runs before the runtime loop: a rejected value exits at once naming the
    # variable ("invalid configuration: CLOUDBOT_..."). An accepted one gets as far as polling
    # the Runtime API, which here is a closed port.
    runtime = {
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "AWS_LAMBDA_FUNCTION_NAME": "cloudbot-trigger",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/cloudbot-trigger",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "PATH": "/usr/bin:/bin",
    }
    for label, (params, settings) in _parameter_sets(template).items():
        env = _function_env(template, params, settings)
        done = subprocess.run(
            [str(binaries["function"])],
            env={**runtime, **env},
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        output = done.stdout + done.stderr
        assert "invalid configuration" not in output and "CLOUDBOT_" not in output, f"{label}: {env}\n{output}"
        assert done.returncode != 0, f"{label}: the function cannot have run without a Runtime API"


def test_run_bot_callback_polls_exactly_like_run_bot():
    """RunBotCallback's fallback is RunBot's polling loop: the states they share must not drift."""
    run_bot = json.loads((ROOT / "statemachine/run-bot.asl.json").read_text())["States"]
    callback = json.loads((ROOT / "statemachine/run-bot-callback.asl.json").read_text())["States"]
    # Both key a scheduled run the same way (ChooseKey): the schedule targets either one.
    # The re-run loop too (docs/state-machines.md, "Re-run on failure"): one loop, in step.
    shared = ["CheckInput", "InvalidInput", "UseInputWaitSeconds", "ChooseKey", "ScheduleKey", "ExecutionKey",
              "TickKey", "TickPolicy", "TickRerun", "FirstAttempt",
              "WaitForJob", "ReferJob", "CheckJobStatus", "JobSucceeded", "JobFailed", "JobFailedWithoutMessage",
              "JobStatusUnknown", "ReferJobFailed", *RERUN_LOOP, "RerunUnknown", "RerunUndecided"]
    for name in shared:
        assert callback[name] == run_bot[name], name
    # However the callback path learnt that the job failed, the loop decides on the job as read.
    catches = {e: c["Next"] for c in callback["ExecuteBot"]["Catch"] for e in c["ErrorEquals"]}
    assert catches["CloudBot.JobFailed"] == "CallbackFailed"
    assert callback["CallbackFailed"]["Choices"] == [{"Variable": "$.request.rerun", "IsPresent": True, "Next": "RecoverJob"}]
    assert callback["CallbackFailed"]["Default"] == "ExecuteFailed"
    assert callback["ExecuteBot"]["Parameters"]["Payload"]["attempt.$"] == "$.attempt"
    assert callback["ExecuteBot"]["Resource"].endswith(".waitForTaskToken")
    assert callback["ExecuteBot"]["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert callback["RecoverJob"]["Parameters"]["Payload"] == {
        k: v for k, v in callback["ExecuteBot"]["Parameters"]["Payload"].items() if k != "task_token.$"
    }, "the fallback repeats ExecuteBot's request and key, so it gets the same job as a replay"


def test_run_bot_map_follows_a_callback_like_run_bot_callback():
    """RunBotMap's callback path is RunBotCallback's ExecuteBot and RecoverJob inside the item, with
    the item's own key, ending in the Map's shared polling loop and per-item results."""
    callback = json.loads((ROOT / "statemachine/run-bot-callback.asl.json").read_text())["States"]
    definition = json.loads((ROOT / "statemachine/run-bot-map.asl.json").read_text())
    item = definition["States"]["RunEach"]["ItemProcessor"]
    states = item["States"]
    assert item["StartAt"] == "ItemKey"
    assert states["FirstAttempt"]["Next"] == "ChooseFollow"
    assert states["ChooseFollow"]["Default"] == "ExecuteBot", "polling unless the input says callback"
    wait, recover, polling = states["ExecuteBotAndWait"], states["RecoverJob"], states["ExecuteBot"]
    assert wait["Resource"].endswith(".waitForTaskToken")
    for field in ("Retry", "TimeoutSecondsPath", "ResultSelector", "ResultPath", "Next"):
        assert wait[field] == callback["ExecuteBot"][field], field
    for field in ("Resource", "Retry", "TimeoutSeconds", "ResultSelector", "ResultPath", "Next"):
        assert recover[field] == callback["RecoverJob"][field], field
    payload = wait["Parameters"]["Payload"]
    assert payload["task_token.$"] == "$$.Task.Token"
    assert payload["idempotency_key.$"] == polling["Parameters"]["Payload"]["idempotency_key.$"], "one key per item"
    assert recover["Parameters"]["Payload"] == {k: v for k, v in payload.items() if k != "task_token.$"}
    catches = {e: c["Next"] for c in wait["Catch"] for e in c["ErrorEquals"]}
    assert catches == {"States.Timeout": "RecoverJob", "CloudBot.JobFailed": "RecoverJob", "States.ALL": "ExecuteFailed"}
    assert states["CheckJobStatus"]["Choices"][0]["Next"] == "WaitForJob", "one polling loop for both paths"


# The re-run loop's states, the same in every machine (RunBotMap: inside the item).
RERUN_LOOP = ["DecideRerun", "RerunDecided", "RerunWait", "NextAttempt", "NextAttemptKey"]


def test_run_bot_map_items_rerun_with_run_bots_loop():
    """A RunBotMap item runs RunBot's re-run loop on its own key; only where the loop leaves it
    differs: a stop reports the item (JobNotSucceeded), the next attempt goes back to ChooseFollow
    (a callback item stays one), an undecided or unknown decision is the item's result, not a Fail."""
    run_bot = json.loads((ROOT / "statemachine/run-bot.asl.json").read_text())["States"]
    definition = json.loads((ROOT / "statemachine/run-bot-map.asl.json").read_text())
    states = definition["States"]["RunEach"]["ItemProcessor"]["States"]
    for name in RERUN_LOOP:
        item, machine = json.loads(json.dumps(states[name])), json.loads(json.dumps(run_bot[name]))
        if name == "NextAttemptKey":
            assert item.pop("Next") == "ChooseFollow"
            machine.pop("Next")
        if name == "RerunDecided":
            assert item["Choices"][0] == machine["Choices"][0], "the rerun branch"
            assert item["Choices"][1] == {"Variable": "$.rerun.decision.decision", "StringEquals": "stop",
                                          "Next": "JobNotSucceeded"}
            assert item["Default"] == "RerunUnknown"
            continue
        assert item == machine, name
    rerun_branch = [c for c in run_bot["CheckJobStatus"]["Choices"] if c["Next"] == "DecideRerun"]
    assert rerun_branch and rerun_branch[0] in states["CheckJobStatus"]["Choices"]
    assert {k: v for k, v in states["FirstAttempt"].items() if k != "Next"} == {
        k: v for k, v in run_bot["FirstAttempt"].items() if k != "Next"}
    for execute in ("ExecuteBot", "ExecuteBotAndWait", "RecoverJob"):
        payload = states[execute]["Parameters"]["Payload"]
        assert (payload["idempotency_key.$"], payload["attempt.$"]) == ("$.key.value", "$.attempt"), execute
    assert states["ItemKey"]["Parameters"]["value.$"] == "States.Format('{}#RunEach[{}]#ExecuteBot', $$.Execution.Id, $.index)"
    for end in ("RerunUnknown", "RerunUndecided"):
        assert states[end]["Type"] == "Pass" and states[end]["Parameters"]["succeeded"] is False, end


# ------------------------------------------------------------------------------------------------
# samconfig.toml: committed deploy defaults, free of anything account-specific, every key an
# option of the SAM CLI command it configures.

SAMCONFIG = ROOT / "samconfig.toml"
SAM = ROOT / ".tools" / "venv-sam" / "bin" / "sam"


def _samconfig() -> dict:
    import tomllib

    return tomllib.loads(SAMCONFIG.read_text())


def test_samconfig_names_no_account_bucket_or_region():
    text = SAMCONFIG.read_text()
    assert not re.search(r"\b\d{12}\b", text), "an AWS account id"
    params = {k for section in _samconfig()["default"].values() for k in section["parameters"]}
    assert not params & {"s3_bucket", "region", "profile", "image_repository", "parameter_overrides"}
    deploy = _samconfig()["default"]["deploy"]["parameters"]
    assert deploy["resolve_s3"] is True and deploy["confirm_changeset"] is True
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert _samconfig()["default"]["validate"]["parameters"]["lint"] is True


def test_samconfig_keys_are_options_of_their_sam_commands(tmp_path):
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run scripts/install-tools.sh sam")
    for command, section in _samconfig()["default"].items():
        if command == "global":
            continue
        done = subprocess.run(
            [str(SAM), command, "--help"],
            env={"PATH": "/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        for key in section["parameters"]:
            option = "--" + key.replace("_", "-")
            assert re.search(rf"{re.escape(option)}\b", done.stdout), f"sam {command} has no {option}"
