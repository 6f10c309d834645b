"""The model registry's lifecycle: versions with lineage, deploy, rollback, retire, tenant scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.models import ModelRegistry
from cluster.errors import ConflictError, NotFoundError
from cluster.settings import Settings
from tests.actors.test_deletion import fake_adapter

MODEL = "ft:engram-tiny:acme:support"


def _registry(settings: Settings, tmp_path: Path, versions: int) -> ModelRegistry:
    registry = ModelRegistry.from_settings(settings)
    for v in range(1, versions + 1):
        source, _ = fake_adapter(tmp_path / f"adapter-{v}")
        registry.register_adapter(
            "acme",
            "engram-tiny",
            "support",
            source,
            job_id=f"ftjob-{v}",
            lineage={"training_file_sha256": f"{v:064x}", "hyperparameters": {"n_epochs": v}},
            metrics={"validation_loss": 3.0 - v / 10},
        )
    return registry


def test_versions_keep_lineage_and_the_first_one_is_deployed(settings: Settings, tmp_path: Path) -> None:
    registry = _registry(settings, tmp_path, versions=2)
    model = registry.describe("acme", MODEL)
    assert model["deployed_version"] == 1 and registry.resolve("acme", MODEL).version == 1
    v2 = model["versions"][1]
    assert (v2["version"], v2["job_id"], v2["state"]) == (2, "ftjob-2", "ready")
    assert model["versions"][0]["state"] == "deployed"
    assert v2["lineage"]["hyperparameters"] == {"n_epochs": 2} and v2["metrics"]["validation_loss"] == 2.8
    for other in ("globex", "acme-2"):  # another tenant sees nothing of it
        with pytest.raises(NotFoundError):
            registry.describe(other, MODEL)
        with pytest.raises(NotFoundError):
            registry.deploy(other, MODEL, 2)


def test_deploy_and_rollback_walk_the_deployment_history(settings: Settings, tmp_path: Path) -> None:
    registry = _registry(settings, tmp_path, versions=3)
    with pytest.raises(ConflictError, match="no earlier deployed version"):
        registry.rollback("acme", MODEL)
    assert registry.deploy("acme", MODEL, 3) == 3
    assert registry.resolve("acme", MODEL).version == 3  # the next request gets it
    registry.deploy("acme", MODEL, 2)
    assert registry.rollback("acme", MODEL) == 3  # back to what was served before
    assert registry.rollback("acme", MODEL) == 1  # and one further back
    assert registry.resolve("acme", MODEL).version == 1
    with pytest.raises(ConflictError):
        registry.rollback("acme", MODEL)
    with pytest.raises(NotFoundError) as missing:
        registry.deploy("acme", MODEL, 9)
    assert missing.value.param == "version"
    actions = [(d["version"], d["action"]) for d in registry.describe("acme", MODEL)["deployments"]]
    assert actions == [(1, "deploy"), (3, "deploy"), (2, "deploy"), (3, "rollback"), (1, "rollback")]


def test_retiring_a_model_stops_serving_it_and_removes_its_files(settings: Settings, tmp_path: Path) -> None:
    registry = _registry(settings, tmp_path, versions=2)
    folder = registry.resolve("acme", MODEL).key.rsplit("/", 1)[0]
    assert registry.storage.children(folder) == ["v1", "v2"]
    registry.retire("acme", MODEL)
    assert not registry.storage.exists(folder)
    with pytest.raises(NotFoundError):
        registry.resolve("acme", MODEL)
    assert registry.list_models("acme") == []
    assert all(v["state"] == "retired" for v in registry.describe("acme", MODEL)["versions"])
    with pytest.raises(ConflictError, match="retired"):
        registry.deploy("acme", MODEL, 1)
