"""The memory path with the storage root on an S3-compatible server and the control plane on
PostgreSQL: ingest, a Ray Data build, search, profiles, forgetting a user, deleting the tenant."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import TenantDirectory, delete_tenant
from cluster import Storage, tenant_key
from memory import TenantStore, build, forget_user, ingest_rows, profile, search
from synthetic import generate
from tests.conftest import object_store_settings, s3_objects

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]


def test_memories_live_on_the_object_store_and_leave_with_their_tenant(
    s3_root: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = object_store_settings(s3_root, postgres_url)
    storage = Storage.of(settings)
    assert not storage.local
    TenantDirectory(postgres_url).create_tenant("acme")
    data = generate(users=2, sessions_per_user=3, turns_per_session=6, seed=5)
    store = TenantStore(storage, "acme")
    report = ingest_rows(store, data.signals, settings.ingest)
    assert report.accepted > 0

    built = build("acme", settings)  # Ray Data workers read and write the tables on the server
    assert built.signals == report.accepted and built.memories_written > 0
    assert store.signals().count_rows("processed_at IS NULL") == 0
    prefix = s3_root.removeprefix("s3://engram-tests/")
    lance = [k for k in s3_objects(f"{prefix}/tenants/acme/lance/") if "/memories.lance/" in k]
    assert lance, "the memories table is on the object store"
    assert not (tmp_path / "tenants").exists() and not Path("s3:").exists()  # nothing went to a local path

    user = sorted({str(s["user_id"]) for s in data.signals if isinstance(s.get("user_id"), str)})[0]
    found = search(store, user, "where do I live", k=5, settings=settings.retrieval)
    assert found and all(r["memory_id"].startswith("mem-") for r in found)
    assert profile(store, user)["signals"] > 0
    removed = forget_user(store, user)
    assert removed["memories"] > 0 and search(store, user, "where do I live", k=5) == []

    files, size = storage.size(tenant_key("acme"))
    deleted = delete_tenant(settings, "acme")
    assert (deleted.files_removed, deleted.bytes_removed) == (files, size) and files > 0
    assert s3_objects(f"{prefix}/tenants/acme/") == []  # no object of the tenant is left
