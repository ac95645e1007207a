"""What the deployed function links: the crate graph of the function built alone.

`sam build`, `cargo lambda build` and `scripts/bench.sh` build `cloudbot-trigger` alone, without
dev-dependencies, so Cargo unifies the features of its normal dependencies only. A unit or
integration test cannot see that graph (its build adds the dev-dependencies, and with them the
SDK's default HTTPS client), so these checks read it from `cargo tree`, for both Lambda
architectures:

* the SDK's own HTTPS client is not linked: every SDK client runs on ours (src/sdk/https.rs), and
  leaving the SDK's out is a size lever (docs/benchmarks.md, "Levers tried", row 20);
* `regex` (re-run patterns) has none of its `perf` features, another size lever (row 22);
* rustls keeps `prefer-post-quantum`, which that client used to turn on for every rustls user:
  without it the hybrid X25519MLKEM768 would no longer lead the key exchange groups of our
  connections (the Cloud BOT client's and the SDK clients').
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
# The SDK's default HTTPS client and what only it brings in (its other crate, rustls-native-certs,
# stays: reqwest 0.13's rustls features always link rustls-platform-verifier, which uses it).
NOT_LINKED = ["aws-smithy-http-client", "h2"]


def function_graph(target: str) -> dict[str, set[str]]:
    """Crate name -> enabled features, for the function's normal and build dependencies."""
    out = subprocess.run(
        [
            "cargo", "tree", "--offline", "--locked",
            "-p", "cloudbot-trigger", "-e", "normal,build",
            "--target", target, "--prefix", "none", "-f", "{p}|{f}",
        ],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    graph: dict[str, set[str]] = {}
    for line in out.splitlines():
        if "|" not in line:
            continue
        package, features = line.split("|", 1)
        name = package.split(" ")[0]
        graph.setdefault(name, set()).update(f for f in features.split(" ")[0].split(",") if f)
    return graph


@pytest.mark.parametrize("target", TARGETS)
def test_the_sdk_default_https_client_is_not_linked(target: str) -> None:
    graph = function_graph(target)
    assert "aws-smithy-runtime" in graph, "the graph was not read"
    linked = [name for name in NOT_LINKED if name in graph]
    assert linked == [], f"{target}: linked by the function: {linked}"
    assert "default-https-client" not in graph["aws-smithy-runtime"]


@pytest.mark.parametrize("target", TARGETS)
def test_rustls_prefers_the_post_quantum_key_exchange(target: str) -> None:
    assert "prefer-post-quantum" in function_graph(target)["rustls"]


@pytest.mark.parametrize("target", TARGETS)
def test_regex_has_no_perf_features(target: str) -> None:
    features = function_graph(target)["regex"]
    assert "unicode" in features, "the documented syntax needs Unicode"
    assert sorted(f for f in features if f.startswith("perf")) == []
