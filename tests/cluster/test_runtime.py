"""Engram's own Ray: which cluster ``ensure_ray`` joins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def stale_cluster_scenario(root: str) -> None:
    """A ``ray start`` style cluster is up (its address in /tmp/ray/ray_current_cluster); Engram's
    embedded defaults still start a local Ray of their own instead of joining it."""
    import ray
    from ray.cluster_utils import Cluster

    from cluster.runtime import ensure_ray
    from cluster.settings import Settings

    other = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        ensure_ray(Settings(storage_root=root), num_cpus=1)
        assert ray.get_runtime_context().gcs_address != other.address
    finally:
        ray.shutdown()
        other.shutdown()


@pytest.mark.integration
def test_embedded_defaults_start_their_own_ray_beside_another_cluster(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "ENGRAM_"))}
    env["RAY_AUTH_MODE"] = "disabled"
    code = f"from tests.cluster.test_runtime import stale_cluster_scenario as s; s({str(tmp_path)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-4000:]
