"""scripts/arm64-smoke.sh's own failure modes: under CI=true a missing piece of the arm64 chain
fails the run and names it; an interactive run skips with a NOTICE. (The run itself, with every
answer checked, is the script's job in scripts/test.sh.) Each case stops before any build."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "arm64-smoke.sh"


def run(ci: bool, **overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("ARM64_SMOKE_")}
    if ci:
        env["CI"] = "true"
    env.update(overrides)
    return subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_missing_sam_build_output_fails_in_ci_and_is_named(tmp_path):
    missing = str(tmp_path / "bootstrap")
    done = run(ci=True, ARM64_SMOKE_BOOTSTRAP=missing)
    assert done.returncode == 1, done.stderr
    assert f"ERROR: {missing} does not exist" in done.stderr
    assert "check-template.sh --with-build" in done.stderr


def test_a_missing_sam_build_output_is_skipped_with_a_notice_elsewhere(tmp_path):
    done = run(ci=False, ARM64_SMOKE_BOOTSTRAP=str(tmp_path / "bootstrap"))
    assert done.returncode == 0, done.stderr
    assert "NOTICE" in done.stderr and "NOT run" in done.stderr


def test_an_x86_binary_is_refused_whatever_the_mode(tmp_path):
    fake = tmp_path / "bootstrap"
    fake.write_bytes(open("/bin/true", "rb").read())
    for ci in (True, False):
        done = run(ci=ci, ARM64_SMOKE_BOOTSTRAP=str(fake))
        assert done.returncode == 1
        assert "is not an aarch64 ELF binary" in done.stderr


@pytest.fixture
def aarch64_elf(tmp_path):
    """A file with an aarch64 ELF header: enough for the checks that come before qemu runs."""
    path = tmp_path / "bootstrap"
    header = bytearray(64)
    header[0:4] = b"\x7fELF"
    header[18:20] = b"\xb7\x00"  # e_machine = EM_AARCH64
    path.write_bytes(bytes(header))
    return path


def test_missing_qemu_fails_in_ci_naming_the_package(aarch64_elf, tmp_path):
    done = run(ci=True, ARM64_SMOKE_BOOTSTRAP=str(aarch64_elf), ARM64_SMOKE_QEMU=str(tmp_path / "qemu"))
    assert done.returncode == 1, done.stderr
    assert "qemu-aarch64-static is not installed" in done.stderr and "qemu-user-static" in done.stderr


def test_missing_aarch64_libraries_fail_in_ci_naming_the_package(aarch64_elf, tmp_path):
    done = run(
        ci=True,
        ARM64_SMOKE_BOOTSTRAP=str(aarch64_elf),
        ARM64_SMOKE_QEMU="/bin/true",
        ARM64_SMOKE_SYSROOT=str(tmp_path),
    )
    assert done.returncode == 1, done.stderr
    assert "libc6-arm64-cross" in done.stderr
