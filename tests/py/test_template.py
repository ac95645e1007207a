"""Invariants of template.yaml and statemachine/*.asl.json that cfn-lint and asl-validator do not see.

These are the promises docs/state-machines.md and docs/exactly-once.md make: ExecuteBot is never retried on an error after which a
job may have started unless the retry carries the same idempotency key (docs/exactly-once.md),
every retrier uses backoff with full jitter, every task has a timeout and a
Catch, DefinitionSubstitutions and the ASL placeholders agree, the function reads exactly the
environment variables src/config/ knows, and its IAM policy names one secret. Offline, no tools
beyond PyYAML.
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
    """An execute of the function (ExecuteBot, RunBotMap's ExecuteBotAndWait, RecoverJob): it sends a request."""
    return "request.$" in task.get("Parameters", {}).get("Payload", {})


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
            key = state["Parameters"]["Payload"].get("idempotency_key.$", "")
            if key == "$.key.value":
                # Chosen before ExecuteBot: the schedule's run (ARN + time) or the execution id.
                states = definition["States"]
                assert "$$.Execution.Id" in states["ExecutionKey"]["Parameters"]["value.$"], name
                schedule_key = states["ScheduleKey"]["Parameters"]["value.$"]
                assert "schedule_arn" in schedule_key and "scheduled_time" in schedule_key, name
                continue
            assert "$$.Execution.Id" in key, f"{name}: the idempotency key is built from the execution id"


def test_task_timeout_outlasts_the_longest_function_timeout(template):
    max_function_timeout = template["Parameters"]["FunctionTimeout"]["MaxValue"]
    for path in _asl_files():
        for name, state in _walk_states(json.loads(path.read_text())["States"]):
            if state["Type"] == "Task" and "TimeoutSeconds" in state:
                assert state["TimeoutSeconds"] > max_function_timeout, f"{path.name}/{name}"
    assert template["Parameters"]["CallbackTimeoutSeconds"]["MinValue"] > max_function_timeout


def test_map_concurrency_is_bounded_by_a_parameter(template):
    param = template["Parameters"]["MapMaxConcurrency"]
    assert 1 <= param["Default"] <= param["MaxValue"] <= 40  # 40: inline Map's real concurrency limit
    definition = json.loads((ROOT / "statemachine/run-bot-map.asl.json").read_text())
    maps = [s for _, s in _walk_states(definition["States"]) if s["Type"] == "Map"]
    assert len(maps) == 1
    assert "MaxConcurrency" in maps[0] or "MaxConcurrencyPath" in maps[0]
    assert maps[0].get("MaxConcurrency") != 0, "0 means unbounded"


# Variables src/config/ reads that a deployment must never set (docs/deploy.md: "Other variables the
# function reads").
LOCAL_ONLY_VARIABLES = {"CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK", "CLOUDBOT_TEST_ONLY_EXTRA_CA_FILE"}


def test_function_env_matches_what_config_reads(template):
    env = template["Resources"]["CloudBotFunction"]["Properties"]["Environment"]["Variables"]
    config_rs = "\n".join(p.read_text() for p in sorted((ROOT / "src/config").glob("*.rs")))
    known = set(re.findall(r'"(CLOUDBOT_[A-Z_]+)"', config_rs))
    assert "CLOUDBOT_SECRET_ID" in env
    unknown = set(env) - known
    assert not unknown, f"template sets variables src/config/ never reads: {unknown}"
    # Local-run switches must never be on in a deployment.
    for switch in LOCAL_ONLY_VARIABLES:
        assert switch not in env, switch
    # And every other setting the function reads can be made through the template.
    unsettable = known - set(env) - LOCAL_ONLY_VARIABLES
    assert not unsettable, (
        f"src/config/ reads variables the template cannot set: {unsettable}; "
        "add a Parameter wired to the function's Environment (and its row in the configuration table of docs/deploy.md)"
    )


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
            str(settle),
        ]
    )
    table = next(s for s in statements if isinstance(s.get("Action"), list) and s["Action"][0].startswith("dynamodb:"))
    assert table["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}, "only the idempotency table"
    assert props["Environment"]["Variables"]["CLOUDBOT_IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    secret_id = props["Environment"]["Variables"]["CLOUDBOT_SECRET_ID"]
    read = next(s for s in statements if s.get("Action") == "secretsmanager:GetSecretValue")
    assert read["Resource"] == secret_id, "the policy and the function must name the same secret"


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


def test_async_retries_and_the_schedule_carry_an_idempotency_key(template):
    props = template["Resources"]["CloudBotFunction"]["Properties"]
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    schedule_input = props["Events"]["Schedule"]["Properties"]["Input"]["Fn::Sub"]
    envelope = json.loads(schedule_input.replace("${ScheduleInput}", template["Parameters"]["ScheduleInput"]["Default"]))
    assert envelope["schedule"] == {
        "schedule_arn": "<aws.scheduler.schedule-arn>",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }, "not <aws.scheduler.execution-id>: it changes on every attempt"
    assert envelope["request"] == {}
    assert props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    schedule = props["Events"]["Schedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert "DeadLetterConfig" in schedule["Properties"]
    assert schedule["Properties"]["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600


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
    assert resources["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM", "the other routes keep IAM"
    assert {"ThrottlingBurstLimit", "ThrottlingRateLimit"} <= set(resources["CallbackStage"]["Properties"]["DefaultRouteSettings"])
    # The function names the API, the API must not name the function (cfn-lint checks the cycle).
    assert "CloudBotFunction" not in json.dumps(resources["CallbackApi"])
    base = resources["CloudBotFunction"]["Properties"]["Environment"]["Variables"]["CLOUDBOT_CALLBACK_BASE_URL"]
    assert base["Fn::Sub"].startswith("https://${CallbackApi}.") and base["Fn::Sub"].endswith("/callbacks")
    permission = resources["CallbackInvokePermission"]["Properties"]
    assert permission["SourceArn"]["Fn::Sub"].endswith("${CallbackApi}/*/POST/callbacks/*")


# ------------------------------------------------------------------------------------------------
# Alarms and the dashboard see only metrics the function emits (src/metrics.rs is their one home),
# so a rename cannot silently blind an alarm.

METRICS_RS = ROOT / "src/metrics.rs"
KIND_RS = ROOT / "src/error/kind.rs"
OUR_NAMESPACE = "CloudBotTrigger/${AWS::StackName}"
OPERATIONS = {"execute", "refer_job", "list_bots", "none"}


def _rust_consts(module: str) -> set[str]:
    """The string constants of `pub mod <module> { ... }` in src/metrics.rs."""
    text = METRICS_RS.read_text()
    block = re.search(r"pub mod " + module + r" \{(.*?)\n\}", text, re.S)
    assert block, f"pub mod {module} not found in {METRICS_RS}"
    return set(re.findall(r'pub const [A-Z_]+: &str = "([^"]+)";', block.group(1)))


def _dimension_sets() -> list[set[str]]:
    text = METRICS_RS.read_text()
    block = re.search(r"pub const DIMENSION_SETS[^=]*= &\[(.*?)\n\];", text, re.S)
    assert block, "DIMENSION_SETS not found"
    names = {"dimension::OPERATION": "Operation", "dimension::OUTCOME": "Outcome"}
    sets = []
    for inner in re.findall(r"&\[([^\]]*)\]", block.group(1)):
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
            body = props["DashboardBody"]["Fn::Sub"]
            widgets = json.loads(re.sub(r"\$\{[^}]+\}", lambda m: m.group(0).replace('"', ""), body))["widgets"]
            for widget in widgets:
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
            assert dims["Operation"] in OPERATIONS, f"{where}: {dims}"
        if "Outcome" in dims:
            assert dims["Outcome"] == "ok" or dims["Outcome"] in error_types, (
                f"{where}: Outcome {dims['Outcome']} is not an error type of src/error/kind.rs"
            )


def test_failures_of_every_trigger_reach_an_alarm(template):
    alarms = {n: r["Properties"] for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # OutcomeUnknown alarms on the first occurrence and tells the human what to do.
    unknown = alarms["OutcomeUnknownAlarm"]
    assert unknown["Threshold"] == 0 and unknown["ComparisonOperator"] == "GreaterThanThreshold"
    assert "cloudbot jobs" in unknown["AlarmDescription"] and len(unknown["AlarmDescription"]) <= 1024
    # Every operation's failures (HTTP API answers included) are summed by FailuresAlarm.
    operations = {
        d["Value"]
        for m in alarms["FailuresAlarm"]["Metrics"]
        if "MetricStat" in m
        for d in m["MetricStat"]["Metric"]["Dimensions"]
    }
    assert operations == OPERATIONS
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
    # The HTTP API's own 5xx, and every queue's depth.
    assert any(p.get("Namespace") == "AWS/ApiGateway" and p.get("MetricName") == "5xx" for p in alarms.values())
    queues = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    queue_refs = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for p in alarms.values()
        for m in p.get("Metrics", [])
        if m.get("MetricStat", {}).get("Metric", {}).get("Namespace") == "AWS/SQS"
    }
    assert queues <= queue_refs, queues - queue_refs
    # One SNS topic parameter, on every alarm.
    for name, props in alarms.items():
        assert props["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}, name


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
            assert res["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_outputs(template):
    assert {
        "FunctionArn",
        "FunctionAliasArn",
        "HttpApiUrl",
        "RunBotStateMachineArn",
        "RunBotMapStateMachineArn",
        "SecretArn",
    } <= set(template["Outputs"])


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
    # ScheduleTarget picks one of two schedules: the function's alias or the callback workflow.
    machine_ref = {"Ref": "RunBotCallbackStateMachine"}
    assert sorted(json.dumps(p["Target"]["Arn"]) for _, p in schedules) == sorted(map(json.dumps, [alias_ref, machine_ref]))
    states = {json.dumps(p["Target"]["Arn"]): p["State"] for _, p in schedules}
    assert states[json.dumps(machine_ref)] == {"Fn::If": ["ScheduleTargetsWorkflow", {"Ref": "ScheduleState"}, "DISABLED"]}
    assert states[json.dumps(alias_ref)] == {"Fn::If": ["ScheduleTargetsWorkflow", "DISABLED", {"Ref": "ScheduleState"}]}

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


def _function_env(template: dict, params: dict[str, object]) -> dict[str, str]:
    """The function's Environment.Variables with parameter Refs resolved (the created secret's ARN
    stands in for the secret Ref, a table name for the table's)."""
    resources = {"IdempotencyTable": "cloudbot-trigger-IdempotencyTable-1A2B3C4D5E6F"}

    def resolve(value):
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            if name in resources:
                return resources[name]
            return str(params[name]) if name in params else SAMPLE_SECRET_ARN
        if isinstance(value, dict) and "Fn::If" in value:
            return resolve(value["Fn::If"][1])
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
    return {key: resolve(value) for key, value in variables.items()}


def _parameter_sets(template: dict) -> dict[str, dict[str, object]]:
    params = template["Parameters"]
    defaults = {name: p.get("Default", "") for name, p in params.items()}
    sets = {
        "defaults": defaults,
        "minimums": {**defaults, **{n: p["MinValue"] for n, p in params.items() if "MinValue" in p}},
        "maximums": {**defaults, **{n: p["MaxValue"] for n, p in params.items() if "MaxValue" in p}},
        "documented example": {
            **defaults,
            "DefaultBotEndpoint": "https://api.c-bot.pro/acme/bots/daily_report/jobs",
            "DefaultPublicId": "acme",
        },
    }
    for name, p in params.items():
        for allowed in p.get("AllowedValues", []):
            sets[f"{name}={allowed}"] = {**defaults, name: allowed}
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
    for label, params in _parameter_sets(template).items():
        env = _function_env(template, params)
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
    shared = ["InvalidInput", "UseInputWaitSeconds", "WaitForJob", "ReferJob", "CheckJobStatus", "JobSucceeded",
              "JobFailed", "JobFailedWithoutMessage", "JobStatusUnknown", "ReferJobFailed"]
    for name in shared:
        expected = dict(run_bot[name])
        if name == "UseInputWaitSeconds":
            expected["Next"] = "ChooseKey"
        assert callback[name] == expected, name
    assert {**callback["CheckInput"], "Default": "ExecuteBot"} == run_bot["CheckInput"]
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
    assert item["StartAt"] == "ChooseFollow"
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
