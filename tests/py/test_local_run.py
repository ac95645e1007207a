"""The local run's settings: `cargo lambda watch` gives the function the defaults of Cargo.toml
([workspace.metadata.lambda.watch], cargo `[env]` settings), and each of them can be changed per
run, by an `--env-var` flag or by the environment watch is started in. (An `env` table in the
package metadata could not be: cargo-lambda 1.9.2 applies it after the flags.)

The proof is the credentials the function sends: moto holds a second secret with the emulator's
refer-only token pair, so an execute under that secret is refused with `CloudBot.Forbidden` while
one under the demo secret starts a job.
"""

from __future__ import annotations

import json

import pytest

from conftest import SECRET_ID, WATCH_DEFAULTS, LambdaWatch, function_env

OTHER_SECRET = "cloudbot-trigger/refer-only"


@pytest.fixture(scope="module")
def other_secret(moto):
    moto.client.create_secret(
        Name=OTHER_SECRET, SecretString=json.dumps({"access_token": "demo-refer-token", "secret_key": "demo-refer-secret"})
    )
    return OTHER_SECRET


def run_under(binaries, emulator, moto, tmp_path, flags: dict[str, str], process_env: dict[str, str] | None = None):
    """Starts watch with `flags` on top of the tests' configuration, executes the default BOT once."""
    env = {**function_env(emulator.base_url, moto.endpoint), **flags}
    watch = LambdaWatch.start(env, tmp_path / "watch.log", process_env=process_env)
    try:
        return watch.invoke({"public_id": "demo", "bot_id": "echo_bot"})
    finally:
        watch.stop()


def test_the_defaults_name_the_demo_secret_of_the_local_run():
    assert SECRET_ID == "cloudbot-trigger/demo"
    # Everything a bare `cargo lambda watch` needs against the emulator's and moto's default ports.
    assert WATCH_DEFAULTS["CLOUDBOT_API_BASE"] == "http://127.0.0.1:8787"
    assert WATCH_DEFAULTS["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "CLOUDBOT_IDEMPOTENCY_TABLE"} <= set(WATCH_DEFAULTS)


def test_a_flag_overrides_the_default_secret(binaries, emulator, moto, other_secret, tmp_path):
    ok, result = run_under(binaries, emulator, moto, tmp_path, {"CLOUDBOT_SECRET_ID": other_secret})
    assert not ok and result["errorType"] == "CloudBot.Forbidden", result


def test_the_environment_overrides_the_default_secret(binaries, emulator, moto, other_secret, tmp_path):
    # No flag for the secret id: the variable comes from the environment watch was started in.
    env = {k: v for k, v in function_env(emulator.base_url, moto.endpoint).items() if k != "CLOUDBOT_SECRET_ID"}
    watch = LambdaWatch.start(env, tmp_path / "watch.log", process_env={"CLOUDBOT_SECRET_ID": other_secret})
    try:
        ok, result = watch.invoke({"public_id": "demo", "bot_id": "echo_bot"})
        assert not ok and result["errorType"] == "CloudBot.Forbidden", result
    finally:
        watch.stop()


def test_without_an_override_the_default_secret_is_used(binaries, emulator, moto, other_secret, tmp_path):
    env = {k: v for k, v in function_env(emulator.base_url, moto.endpoint).items() if k != "CLOUDBOT_SECRET_ID"}
    watch = LambdaWatch.start(env, tmp_path / "watch.log")
    try:
        ok, result = watch.invoke({"public_id": "demo", "bot_id": "echo_bot"})
        assert ok, result
        assert result["job_reference_endpoint"].startswith(f"{emulator.base_url}/demo/jobs/")
    finally:
        watch.stop()
