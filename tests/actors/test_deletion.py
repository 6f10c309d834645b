"""Tenant data keys, adapters encrypted at rest, LoRA ids never reused, and tenant deletion."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import lancedb
import pytest
from sqlalchemy import create_engine, insert, make_url, select, text

from actors.broker import GPUBroker
from actors.db import engine_for, load_tables, migrate
from actors.deletion import delete_tenant
from actors.keys import DataKeys
from actors.models import ModelRegistry, model_versions, models
from actors.tenants import TenantDirectory
from cluster import Storage, area_key, crypto
from cluster.errors import ConflictError, DecryptionError, KeyDestroyedError, NotFoundError
from cluster.settings import Settings


def fake_adapter(folder: Path, size: int = 200_000) -> tuple[Path, bytes]:
    """A folder shaped like a peft adapter, with random (unique) weight bytes."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    weights = os.urandom(size)
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder, weights


def files_holding(root: Path, needle: bytes) -> list[Path]:
    """The files at or under ``root`` whose bytes hold ``needle``."""
    paths = [root] if root.is_file() else root.rglob("*")
    return [p for p in paths if p.is_file() and needle in p.read_bytes()]


def db_url(settings: Settings) -> str:
    return settings.control_db_url


def test_data_keys_are_made_once_stored_wrapped_and_destroyed_for_good(settings: Settings) -> None:
    keys = DataKeys.from_settings(settings)
    key = keys.key("acme")
    assert len(key) == 32 and keys.key("acme") == key and keys.key("globex") != key
    database = Path(settings.storage_root) / "control.db"
    assert files_holding(database.parent, key) == []  # only the wrapped form is stored

    stranger = DataKeys(db_url(settings), crypto.new_key())  # another master key
    with pytest.raises(DecryptionError, match="master key is not the one that wrapped it") as e:
        stranger.key("acme")
    assert e.value.param == "security.master_key"

    with engine_for(db_url(settings)).connect() as db:
        wrapped = db.execute(text("SELECT wrapped_key FROM data_keys WHERE tenant_id = 'acme'")).scalar_one()
    assert keys.destroy("acme") is True and keys.destroy("acme") is False
    for attempt in (lambda: keys.key("acme"), lambda: keys.key("acme", create=False)):
        with pytest.raises(KeyDestroyedError, match="was destroyed") as gone:
            attempt()
        assert gone.value.param == "tenant_id" and isinstance(gone.value, NotFoundError)
    assert files_holding(database.parent, wrapped) == []  # zeroed in the file, not just unlinked
    assert keys.destroyed(["acme", "globex", "nobody"]) == {"acme"}
    assert keys.key("globex")  # the other tenant is untouched
    with pytest.raises(NotFoundError, match="no data key"):
        keys.key("fresh", create=False)


def test_lora_ids_are_never_reused_after_rows_are_deleted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/control.db"
    engine = create_engine(url)
    migrate(engine, "0002")  # a database from before the change, with rows in it
    now = datetime.now(UTC)
    with engine.begin() as db:
        db.execute(
            insert(models).values(model="m", tenant_id="t", base_model="b", suffix="s", created_at=now)
        )
        for version in (1, 2):
            db.execute(insert(model_versions).values(model="m", version=version, created_at=now))
    migrate(engine)
    with engine.begin() as db:
        ddl = db.execute(text("SELECT sql FROM sqlite_master WHERE name = 'model_versions'")).scalar_one()
        assert "AUTOINCREMENT" in ddl
        assert db.execute(select(model_versions.c.lora_id).order_by("lora_id")).scalars().all() == [1, 2]
        db.execute(model_versions.delete().where(model_versions.c.lora_id == 2))
        db.execute(insert(model_versions).values(model="m", version=3, created_at=now))
        assert db.execute(select(model_versions.c.lora_id).order_by("lora_id")).scalars().all() == [1, 3]


def test_adapters_are_encrypted_at_rest(settings: Settings, tmp_path: Path) -> None:
    registry = ModelRegistry.from_settings(settings)
    source, weights = fake_adapter(tmp_path / "adapter")
    adapter = registry.register_adapter("acme", "engram-tiny", "support", source)
    storage = Storage.of(settings)
    assert storage.children(adapter.key) == ["adapter_config.json.enc", "adapter_model.safetensors.enc"]
    assert files_holding(Path(settings.storage_root), weights[1000:1064]) == []
    key = registry.keys.key("acme")
    with crypto.decrypted(storage, adapter.key, key, adapter.context) as plain:
        assert (plain / "adapter_model.safetensors").read_bytes() == weights
    other_version = adapter.context.replace("/v1", "/v2")  # version 1's files do not pass for version 2
    with pytest.raises(DecryptionError), crypto.decrypted(storage, adapter.key, key, other_version):
        pass


def test_lora_ids_of_a_deleted_tenant_are_not_handed_to_the_next(settings: Settings, tmp_path: Path) -> None:
    directory, registry = TenantDirectory(db_url(settings)), ModelRegistry.from_settings(settings)
    directory.create_tenant("first")
    source, _ = fake_adapter(tmp_path / "adapter")
    old = registry.register_adapter("first", "engram-tiny", "m", source)
    delete_tenant(settings, "first")
    directory.create_tenant("second")
    new = registry.register_adapter("second", "engram-tiny", "m", source)
    assert new.lora_id > old.lora_id


def test_deleting_a_tenant_leaves_nothing_readable(settings: Settings, tmp_path: Path) -> None:
    directory, registry = TenantDirectory(db_url(settings)), ModelRegistry.from_settings(settings)
    name, marker = "Doomed Holdings Ltd 7f3a", "uniquemarker-9d2c-doomed"
    first = directory.create_tenant("doomed", name)
    directory.create_key("doomed")
    directory.create_tenant("bystander")
    source, weights = fake_adapter(tmp_path / "adapter")
    adapter = registry.register_adapter("doomed", "engram-tiny", "support", source)
    registry.register_adapter("doomed", "engram-tiny", "support", source)  # a second version
    registry.register_adapter("bystander", "engram-tiny", "support", source)
    sealed_copy = tmp_path / "backup"  # a copy of the sealed adapter outside storage (a backup, a leak)
    shutil.copytree(Storage.of(settings).local_path(adapter.key), sealed_copy)
    table = lancedb.connect(Storage.of(settings).uri(area_key("doomed", "lance"))).create_table(
        "notes", data=[{"text": f"{marker} v1"}]
    )
    table.add([{"text": f"{marker} v2"}])
    table.delete("true")  # the rows survive in older versions until cleaned
    tables = load_tables().tables
    with engine_for(db_url(settings)).begin() as db:
        now = datetime.now(UTC)
        quota = {"tokens_per_min": 9, "nominal_gpus": 0.5}
        db.execute(insert(tables["quotas"]).values(tenant_id="doomed", **quota, updated_at=now))
        db.execute(insert(tables["usage"]).values(tenant_id="doomed", metric="requests", hour=now, value=3))
    broker = GPUBroker.from_settings(settings, capacity_gpus=1.0)
    assert broker.nominal("doomed") == 0.5
    running = broker.submit("doomed", 1.0, workload_id="doomed-run")
    queued = broker.submit("doomed", 1.0, workload_id="doomed-next")
    neighbour = broker.submit("bystander", 1.0, workload_id="bystander-run")
    assert running.state == "admitted" and queued.state == neighbour.state == "queued"
    root = Path(settings.storage_root)
    # the storage root, and the control plane's file where it is SQLite (PostgreSQL keeps its own)
    url = make_url(db_url(settings))
    scanned = [root, *([Path(url.database or "")] if url.get_backend_name() == "sqlite" else [])]
    assert files_holding(root, marker.encode()), "the scan must be able to find what it looks for"
    assert len(scanned) == 1 or name.encode() in scanned[1].read_bytes()

    report = delete_tenant(settings, "doomed")

    assert report.keys_revoked == 2 and report.data_key_destroyed
    assert report.lance_tables == {"notes": 3} and report.files_removed > 0 and report.bytes_removed > 0
    assert report.rows_removed["models"] == 1 and report.rows_removed["model_versions"] == 2
    assert report.rows_removed["quotas"] == 1 and report.rows_removed["usage"] == 1
    assert report.rows_removed["gpu_workloads"] == 2
    assert report.rows_removed["gpu_events"] >= 4  # submitted, admitted, queued, cancelled...
    # its runs are gone (a runner polling one stops), and the freed GPU goes to the other tenant
    with pytest.raises(NotFoundError):
        broker.should_stop("doomed-run", running.attempt)
    broker.schedule()
    assert broker.workload("bystander-run").state == "admitted"
    assert broker.nominal("doomed") == settings.quotas.nominal_gpus
    assert not (root / "tenants" / "doomed").exists() and (root / "tenants" / "bystander").exists()
    for needle in (marker.encode(), name.encode(), weights[5000:5064]):
        assert [p for folder in scanned for p in files_holding(folder, needle)] == [], needle[:20]
    assert directory.authenticate(first.key) is None and not directory.exists("doomed")
    with pytest.raises(NotFoundError):
        registry.resolve("doomed", adapter.model)
    assert registry.resolve("bystander", "ft:engram-tiny:bystander:support").version == 1
    # the sealed copy that got away can never be opened again: its key is gone
    with (
        pytest.raises(KeyDestroyedError, match="can never be decrypted"),
        crypto.decrypted(
            Storage(str(sealed_copy)), "", registry.keys.key("doomed", create=False), adapter.context
        ),
    ):
        pass
    with pytest.raises(KeyDestroyedError):  # and nothing new is ever sealed for the id
        registry.register_adapter("doomed", "engram-tiny", "support", source)
    assert sealed_copy.is_dir() and not (root / "tenants" / "doomed").exists()

    with pytest.raises(NotFoundError):
        delete_tenant(settings, "doomed")
    with pytest.raises(NotFoundError):
        delete_tenant(settings, "never-was")
    with pytest.raises(ConflictError, match="ids are never reused"):
        directory.create_tenant("doomed")
    with pytest.raises(NotFoundError):
        directory.create_key("doomed")
