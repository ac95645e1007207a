"""Process-level fixtures: the real binaries, a real Secrets Manager, the real Lambda runtime loop.

Run with `.tools/venv-aws/bin/pytest tests/py` (after `scripts/install-tools.sh aws lambda`).
Everything binds 127.0.0.1 on free ports; every process is stopped by its PID in a finalizer,
also when a test fails. Fixtures (all session-scoped, started on first use):

* ``binaries`` -- builds ``target/debug/cloudbot-emulator`` (the ``cargo test --workspace``
  build) and ``target/debug/cloudbot-trigger`` (the function alone) once, returns their paths.
* ``emulator`` -- the Cloud BOT emulator binary with ``tests/resources/emulator-seed.json``
  (demo contract, short job durations) on an ephemeral port. ``emulator.base_url``;
  ``emulator.admin(method, path, body=None)`` calls ``/__emulator/...``; helpers ``requests()``,
  ``stats()``, ``jobs()``, ``reset()``, ``set_faults(rules)``, ``clear_faults()``,
  ``rotate_token(old, new_token, new_secret)``.
* ``moto`` -- ``moto_server`` (pinned) with the secret ``cloudbot-trigger/demo`` holding the demo
  credentials, the idempotency table ``cloudbot-trigger-idempotency`` and the run ledger
  ``cloudbot-trigger-runs`` (``moto.runs()``) (shaped like the
  template's; moto serves DynamoDB too). ``moto.endpoint``, ``moto.secret_id``, ``moto.client``
  (boto3 Secrets Manager), ``moto.dynamodb`` (boto3 DynamoDB), ``moto.table``,
  ``moto.records()``, ``moto.put_secret(access_token, secret_key)``.
* ``lambda_env`` -- the function's environment (dict) for the emulator and moto above.
* ``lambda_watch`` -- ``cargo lambda watch`` running the built function with ``lambda_env``;
  ``lambda_watch.port``, ``lambda_watch.log_path``, ``lambda_watch.invoke(event)``.
* ``invoke`` -- ``invoke(event_dict_or_path) -> (ok, payload)`` through ``timeout 120 cargo
  lambda invoke --data-file``: ``(True, result)`` on success, ``(False, {"errorType",
  "errorMessage"})`` for a function error.

Other suites can start their own instances with other settings and stop them with ``.stop()``:
``Moto(log_path, env={"MOTO_PORT": "<lambda proxy port>"})`` (moto's Step Functions interpreter
sends Lambda Invoke calls to ``localhost:$MOTO_PORT``; the demo secret is created in it too),
``LambdaWatch.start(function_env(emulator.base_url, moto.endpoint), log_path)``, and
``Emulator(binaries["emulator"])``.
``load_event(name, base_url, job_id)`` reads a sample from ``events/`` and substitutes the API
base (``http://127.0.0.1:8787`` in the files) and the placeholder job id
(``00000000-0000-0000-0000-000000000000``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SEED = ROOT / "tests" / "resources" / "emulator-seed.json"
LAMBDA_BIN = ROOT / ".tools" / "venv-lambda" / "bin"
MOTO_SERVER = ROOT / ".tools" / "venv-aws" / "bin" / "moto_server"
FUNCTION = "cloudbot-trigger"
EVENTS_API_BASE = "http://127.0.0.1:8787"
JOB_ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def watch_defaults() -> dict[str, str]:
    """The local run's defaults `cargo lambda watch` gives the function unless a flag or the
    environment sets the variable (Cargo.toml [workspace.metadata.lambda.watch], cargo `[env]`
    settings such as `env.CLOUDBOT_SECRET_ID = "..."`)."""
    config = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"]["watch"]["config"]
    defaults = {}
    for setting in config:
        defaults.update(tomllib.loads(setting)["env"])
    return defaults


WATCH_DEFAULTS = watch_defaults()
# The secret id `cargo lambda watch` gives the function by default.
SECRET_ID = WATCH_DEFAULTS["CLOUDBOT_SECRET_ID"]
IDEMPOTENCY_TABLE = WATCH_DEFAULTS["CLOUDBOT_IDEMPOTENCY_TABLE"]
RUN_LEDGER_TABLE = WATCH_DEFAULTS["CLOUDBOT_RUN_LEDGER_TABLE"]
ACCESS_TOKEN = "demo-access-token"
SECRET_KEY = "demo-secret-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def stop(proc: subprocess.Popen, group: bool = False) -> None:
    """Stops a process we started, by its PID (or its own process group, whose id is its PID)."""
    if proc.poll() is not None:
        return
    # SIGTERM first (a clean shutdown), SIGKILL if it is still there after the grace period.
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{LAMBDA_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def load_event(name: str, base_url: str | None = None, job_id: str | None = None) -> dict:
    text = (EVENTS / name).read_text()
    if base_url:
        text = text.replace(EVENTS_API_BASE, base_url)
    if job_id:
        text = text.replace(JOB_ID_PLACEHOLDER, job_id)
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# binaries


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    # The emulator as the Rust tests build it (nothing new to build after `cargo test`), then the
    # function alone, as `cargo lambda watch` runs it; in this order, because each build leaves
    # its own binaries in target/debug/.
    for cmd in (
        ["cargo", "test", "--workspace", "--no-run", "--quiet"],
        ["cargo", "build", "-p", "cloudbot-trigger", "--bin", FUNCTION],
    ):
        subprocess.run(cmd, cwd=ROOT, check=True, timeout=1800)
    return {
        "function": ROOT / "target" / "debug" / FUNCTION,
        "emulator": ROOT / "target" / "debug" / "cloudbot-emulator",
    }


# --------------------------------------------------------------------------------------------
# emulator


class Emulator:
    """The emulator binary on an ephemeral port."""

    def __init__(self, binary: Path, seed: Path = SEED):
        self.proc = subprocess.Popen(
            [str(binary), "--port", "0", "--config", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        match = re.match(r"cloudbot-emulator listening on (http://127\.0\.0\.1:\d+)", line)
        if not match:
            stop(self.proc)
            raise RuntimeError(f"emulator did not report its address: {line!r}")
        self.base_url = match.group(1)

    def admin(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}/__emulator/{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def requests(self) -> list[dict]:
        return self.admin("GET", "requests")["requests"]

    def stats(self) -> dict:
        return self.admin("GET", "stats")

    def jobs(self) -> list[dict]:
        return self.admin("GET", "jobs")["jobs"]

    def reset(self) -> None:
        self.admin("POST", "reset")

    def set_faults(self, rules: list[dict]) -> None:
        self.admin("DELETE", "faults")
        self.admin("POST", "faults", rules)

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def rotate_token(self, old: str, new_token: str, new_secret: str) -> None:
        self.admin(
            "POST",
            "tokens/rotate",
            {"access_token": old, "new_access_token": new_token, "new_secret_key": new_secret},
        )

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture(scope="session")
def emulator(binaries) -> Emulator:
    emu = Emulator(binaries["emulator"])
    yield emu
    emu.stop()


# --------------------------------------------------------------------------------------------
# moto (Secrets Manager)


class Moto:
    """moto_server on a free port with the demo secret."""

    def __init__(self, log_path: Path, env: dict[str, str] | None = None, server: list[str] | None = None):
        """`server`: the command that starts moto_server (default: the pinned `moto_server`)."""
        if not MOTO_SERVER.exists():
            raise RuntimeError(f"{MOTO_SERVER} is missing: run scripts/install-tools.sh aws")
        port = free_port()
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [*(server or [str(MOTO_SERVER)]), "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(port, self.proc, 60, "moto_server")
        self.endpoint = f"http://127.0.0.1:{port}"
        self.client = boto3.client(
            "secretsmanager",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.secret_id = SECRET_ID
        self.client.create_secret(
            Name=SECRET_ID,
            SecretString=json.dumps({"access_token": ACCESS_TOKEN, "secret_key": SECRET_KEY}),
        )
        self.dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.table = IDEMPOTENCY_TABLE
        # As template.yaml's IdempotencyTable (moto keeps the TTL setting but never deletes).
        self.dynamodb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "record_key", "AttributeType": "S"},
                {"AttributeName": "bot_endpoint", "AttributeType": "S"},
                {"AttributeName": "claimed_at", "AttributeType": "N"},
            ],
            KeySchema=[{"AttributeName": "record_key", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_bot",
                    "KeySchema": [
                        {"AttributeName": "bot_endpoint", "KeyType": "HASH"},
                        {"AttributeName": "claimed_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {
                        "ProjectionType": "INCLUDE",
                        "NonKeyAttributes": ["state", "in_flight_until", "job_reference_endpoint"],
                    },
                }
            ],
        )
        self.dynamodb.update_time_to_live(
            TableName=IDEMPOTENCY_TABLE,
            TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True},
        )
        # The run ledger, as template.yaml declares RunLedgerTable (docs/ledger.md).
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "create-ledger-table.py"), self.endpoint, RUN_LEDGER_TABLE],
            check=True,
        )
        self.ledger_table = RUN_LEDGER_TABLE

    def runs(self) -> list[dict]:
        """Every item of the run ledger (a scan; tests only)."""
        return self.dynamodb.scan(TableName=self.ledger_table, ConsistentRead=True)["Items"]

    def records(self) -> dict[str, str]:
        """The idempotency records: stored key -> state."""
        items = self.dynamodb.scan(TableName=self.table, ConsistentRead=True)["Items"]
        return {i["record_key"]["S"]: i["state"]["S"] for i in items}

    def put_secret(self, access_token: str, secret_key: str) -> None:
        self.client.put_secret_value(
            SecretId=self.secret_id,
            SecretString=json.dumps({"access_token": access_token, "secret_key": secret_key}),
        )

    def stop(self) -> None:
        stop(self.proc)
        self._log.close()


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> Moto:
    m = Moto(tmp_path_factory.mktemp("moto") / "moto.log")
    yield m
    m.stop()


# --------------------------------------------------------------------------------------------
# the function under `cargo lambda watch`


def function_env(emulator_base: str, moto_endpoint: str) -> dict[str, str]:
    """The function's configuration for a local emulator and moto: the secret id, region and dummy
    credentials of the local run's defaults (WATCH_DEFAULTS), passed as flags like the rest so
    that nothing in the test runner's environment (an AWS_REGION, a profile's keys) changes
    them, and the idempotency table and the run ledger as deployed."""
    return {
        **{k: WATCH_DEFAULTS[k] for k in ("CLOUDBOT_SECRET_ID", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
        "CLOUDBOT_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "CLOUDBOT_RUN_LEDGER_TABLE": RUN_LEDGER_TABLE,
        "CLOUDBOT_API_BASE": emulator_base,
        "CLOUDBOT_DEFAULT_BOT_ENDPOINT": f"{emulator_base}/demo/bots/echo_bot/jobs",
        "CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK": "true",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
    }


class LambdaWatch:
    """`cargo lambda watch` serving the built function (never rebuilds on file changes)."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, log):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self._log = log

    @classmethod
    def start(
        cls,
        env: dict[str, str],
        log_path: Path,
        port: int | None = None,
        concurrency: int = 1,
        process_env: dict[str, str] | None = None,
    ) -> "LambdaWatch":
        """`env` goes to the function as `--env-var` flags; `process_env` is added to watch's own
        environment (which the function inherits). `concurrency` > 1 lets watch run that many
        instances of the function at once (as Lambda runs concurrent sandboxes), e.g. a callback
        arriving while an execute still runs."""
        port = port or free_port()
        cmd = ["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--ignore-changes"]
        if concurrency > 1:
            cmd += ["--concurrency", str(concurrency)]
        for key, value in env.items():
            cmd += ["--env-var", f"{key}={value}"]
        log = open(log_path, "w")
        # Own process group: watch runs the function as a child; stop() ends the whole group.
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=tool_env(process_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        watch = cls(proc, port, log_path, log)
        try:
            wait_for_port(port, proc, 60, "cargo lambda watch")
            # The first invoke starts the function (`cargo run`, already built): wait for it.
            end = time.monotonic() + 180
            while True:
                ok, payload = watch.invoke({"operation": "list_bots", "public_id": "demo"})
                if ok or payload.get("errorType") not in (None, "InvokeFailed"):
                    break
                if time.monotonic() > end:
                    raise RuntimeError(f"the function did not answer: {payload}")
                time.sleep(1)
        except Exception:
            watch.stop()
            raise
        return watch

    def invoke(self, event: dict | str | Path) -> tuple[bool, dict]:
        """Invokes the function through `cargo lambda invoke` (bounded by `timeout 120`)."""
        if isinstance(event, dict):
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(event, f)
                path = Path(f.name)
            cleanup = True
        else:
            path = Path(event)
            cleanup = False
        try:
            done = subprocess.run(
                [
                    "timeout", "120", "cargo", "lambda", "invoke",
                    "-A", "127.0.0.1", "-P", str(self.port),
                    "--output-format", "json",
                    FUNCTION, "--data-file", str(path),
                ],
                cwd=ROOT,
                env=tool_env({"CARGO_LAMBDA_COLOR": "never", "NO_COLOR": "1"}),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if cleanup:
                path.unlink(missing_ok=True)
        return parse_invoke(done)

    def stop(self) -> None:
        stop(self.proc, group=True)
        self._log.close()


def parse_invoke(done: subprocess.CompletedProcess) -> tuple[bool, dict]:
    """`(True, result)` or `(False, {"errorType", "errorMessage"})` from `cargo lambda invoke`."""
    if done.returncode == 0:
        return True, json.loads(done.stdout)
    if done.returncode == 124:
        return False, {"errorType": "InvokeTimeout", "errorMessage": "cargo lambda invoke timed out"}
    text = (done.stdout or "") + (done.stderr or "")
    # The invoke command itself could not reach watch (not a function error).
    if "error sending request" in text or "Connection refused" in text:
        return False, {"errorType": "InvokeFailed", "errorMessage": text.strip()}
    # A function error is rendered as "Error: <errorType>" then "× <errorMessage>" wrapped over
    # lines prefixed with "│".
    match = re.search(r"Error:\s*([A-Za-z][\w.]*)\s*\n\s*×\s*(.*?)(?:\n\s*\n|$)", text, re.S)
    if match:
        message = re.sub(r"\s*\n\s*│\s*", " ", match.group(2)).strip()
        return False, {"errorType": match.group(1), "errorMessage": message}
    return False, {"errorType": "InvokeFailed", "errorMessage": text.strip()}


@pytest.fixture(scope="session")
def lambda_env(emulator, moto) -> dict[str, str]:
    return function_env(emulator.base_url, moto.endpoint)


@pytest.fixture(scope="session")
def lambda_watch(binaries, lambda_env, tmp_path_factory) -> LambdaWatch:
    watch = LambdaWatch.start(lambda_env, tmp_path_factory.mktemp("watch") / "watch.log")
    yield watch
    watch.stop()


@pytest.fixture(scope="session")
def invoke(lambda_watch):
    return lambda_watch.invoke
