"""Decrypted adapter copies do not outlive the engine process that made them."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from actors.models import ModelRegistry
from actors.tenants import TenantDirectory
from cluster.settings import Settings, load_settings
from serving.adapters import DecryptedAdapters
from tests.actors.test_deletion import fake_adapter

# An engine process: decrypts the adapter, says where, then waits to be killed (no clean-up runs).
ENGINE = """
import sys
from actors.models import ModelRegistry
from cluster.settings import load_settings
from serving.adapters import DecryptedAdapters
settings = load_settings(storage_root=sys.argv[1], security={"scratch_dir": sys.argv[2]})
copies = DecryptedAdapters(settings)
print(copies.path(ModelRegistry.from_settings(settings).resolve("acme", sys.argv[3])), flush=True)
sys.stdin.read()
"""


def start_engine(settings: Settings, model: str) -> tuple[subprocess.Popen[str], Path]:
    assert settings.security.scratch_dir
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, settings.storage_root, settings.security.scratch_dir, model],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert engine.stdout
    return engine, Path(engine.stdout.readline().strip())


def test_a_new_engine_removes_the_plaintext_copies_of_killed_engines_only(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    settings = load_settings(storage_root=str(tmp_path / "store"), security={"scratch_dir": str(scratch)})
    TenantDirectory(settings.control_db_url).create_tenant("acme")
    source, weights = fake_adapter(tmp_path / "adapter")
    registry = ModelRegistry.from_settings(settings)
    model = registry.register_adapter("acme", "engram-tiny", "support", source).model
    killed, killed_copy = start_engine(settings, model)
    running, running_copy = start_engine(settings, model)
    try:
        assert (killed_copy / "adapter_model.safetensors").read_bytes() == weights
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed_copy.is_dir()  # a killed process removes nothing itself
        unrelated = scratch / "engram-adapters-notes"
        unrelated.mkdir()

        DecryptedAdapters(settings).close()

        engines = [p for p in scratch.iterdir() if p.name.startswith("engram-adapters-")]
        assert not killed_copy.exists()
        assert (running_copy / "adapter_model.safetensors").read_bytes() == weights
        assert sorted(engines) == sorted([running_copy.parents[1], unrelated])
    finally:
        running.kill()
        running.wait(timeout=30)
