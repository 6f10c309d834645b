"""One local Ray per test session; a fresh storage root per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.settings import Settings, load_settings

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU-marked tests run only where torch sees a GPU."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a GPU; none is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A local Ray set up as the one Engram starts (``cluster.runtime.RAY_ENV``)."""
    import ray

    from cluster.runtime import apply_ray_env

    apply_ray_env()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="engram-tests")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(storage_root=str(tmp_path / "store"))
