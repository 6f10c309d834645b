"""The engram CLI and the job entry point, on a real local Ray and LanceDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cluster import Storage
from engram import cli
from engram.cli import app
from memory import TenantStore

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

ROWS = [
    {
        "signal_id": "a1",
        "user_id": "u1",
        "source": "chat",
        "role": "user",
        "session_id": "s1",
        "text": "I moved to Lisbon last month",
        "occurred_at": "2024-05-10T10:00:00Z",
    },
    {
        "signal_id": "a2",
        "user_id": "u1",
        "source": "chat",
        "role": "user",
        "session_id": "s1",
        "text": "I love surfing",
        "occurred_at": "2024-05-10T10:01:00Z",
    },
    {
        "signal_id": "a3",
        "user_id": "u1",
        "source": "fax",
        "text": "bad",
        "occurred_at": "2024-05-10T10:02:00Z",
    },
]


def test_ingest_build_list_show_quarantine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "engram.yaml"
    config.write_text(f"storage_root: {tmp_path / 'store'}\n")
    signals = tmp_path / "signals.jsonl"
    signals.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    monkeypatch.setattr(cli.console, "width", 240)  # no table wrapping in the captured output
    runner = CliRunner()

    result = runner.invoke(app, ["ingest", "acme", str(signals), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "signals.jsonl" in result.output and "│ 3" in result.output

    result = runner.invoke(app, ["quarantine", "list", "acme", "--config", str(config)])
    assert result.exit_code == 0 and "source must be one of" in result.output

    result = runner.invoke(app, ["build", "acme", "--config", str(config)])
    assert result.exit_code == 0, result.output
    store = TenantStore(Storage(str(tmp_path / "store")), "acme")
    assert store.signals().count_rows("processed_at IS NULL") == 0

    result = runner.invoke(
        app, ["memories", "list", "acme", "--user", "u1", "--kind", "fact", "--config", str(config)]
    )
    assert result.exit_code == 0 and "Lives in Lisbon" in result.output

    memory_id = store.memories().search().where("kind = 'preference'").limit(1).to_arrow()["memory_id"][0]
    result = runner.invoke(app, ["memories", "show", "acme", memory_id.as_py(), "--config", str(config)])
    assert result.exit_code == 0 and '"a2"' in result.output

    result = runner.invoke(
        app, ["search", "acme", "u1", "surfing", "--mode", "keyword", "--config", str(config)]
    )
    assert result.exit_code == 0 and "surfing" in result.output

    assert runner.invoke(app, ["ingest", "../etc", str(signals), "--config", str(config)]).exit_code == 2
    assert (
        runner.invoke(app, ["memories", "show", "acme", "mem-missing", "--config", str(config)]).exit_code
        == 1
    )


def test_models_bootstrap_register_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.bootstrap import random_adapter

    config = tmp_path / "engram.yaml"
    config.write_text(f"storage_root: {tmp_path / 'store'}\n")
    monkeypatch.setattr(cli.console, "width", 240)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, "--config", str(config)])

    booted = run("models", "bootstrap")
    assert booted.exit_code == 0, booted.output
    folder = tmp_path / "store" / "models" / "engram-tiny"
    assert (folder / "config.json").exists()
    adapter = random_adapter(str(folder), tmp_path / "adapter", seed=1)
    for version in (1, 2):
        registered = run("models", "register", "acme", str(adapter), "--suffix", "support")
        assert registered.exit_code == 0, registered.output
        assert f"ft:engram-tiny:acme:support version {version}" in registered.output
    listed = run("models", "list", "acme")
    assert "ft:engram-tiny:acme:support" in listed.output and "engram-tiny" in listed.output
    assert "ft:" not in run("models", "list", "globex").output
    bad = run("models", "register", "acme", str(tmp_path), "--suffix", "x")
    assert bad.exit_code == 2 and "adapter_config.json" in bad.output
    assert run("models", "bootstrap", "--name", "nope").exit_code == 2
