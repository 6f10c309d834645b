"""``DELETE /admin/tenants/{id}`` on the real gateway: nothing of the tenant is readable or servable after."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from typing import Any

import lancedb

from actors.keys import DataKeys
from cluster import Storage, crypto
from cluster.errors import KeyDestroyedError, NotFoundError
from serving.adapters import DecryptedAdapters
from tests.actors.test_deletion import fake_adapter, files_holding
from tests.serving.conftest import make_gateway, wait_for
from tests.training.test_files import example, install_tiny_model, jsonl

MODEL = "ft:engram-tiny:doomed:support"


def _signals(user: str, texts: list[str]) -> dict[str, Any]:
    return {
        "signals": [
            {
                "user_id": user,
                "source": "chat",
                "role": "user",
                "session_id": f"{user}-s",
                "text": text,
                "occurred_at": f"2024-05-{10 + i:02d}T10:00:00Z",
            }
            for i, text in enumerate(texts)
        ]
    }


def _search(gw: Any, key: dict[str, str], user: str, query: str) -> list[dict[str, Any]]:
    response = gw.client.post("/v1/memories/search", json={"user_id": user, "query": query}, headers=key)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_deleting_a_tenant_leaves_nothing_to_read_or_serve(tmp_path: Path) -> None:
    install_tiny_model(tmp_path / "store")  # fine-tune files are checked with its tokenizer
    gw, close = make_gateway(tmp_path / "store")
    try:
        _check_deletion(gw, tmp_path)
    finally:
        close()


def _check_deletion(gw: Any, tmp_path: Path) -> None:
    c, root = gw.client, Path(gw.settings.storage_root)
    name, marker = "Doomed Industries 51c0", "xylophonequartz"
    created = c.post("/admin/tenants", json={"tenant_id": "doomed", "name": name}, headers=gw.admin)
    assert created.status_code == 201, created.text
    doomed = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
    bystander = gw.new_tenant("bystander")
    texts = [f"My locker code is {marker}", f"I moved to {marker} town", "I like tea"]
    assert c.post("/v1/signals", json=_signals("dave", texts), headers=doomed).json()["accepted"] == 3
    c.post("/v1/signals", json=_signals("erin", ["I moved to Lisbon last month"]), headers=bystander)
    wait_for(lambda: _search(gw, doomed, "dave", marker))
    wait_for(lambda: _search(gw, bystander, "erin", "where does erin live"))
    upload = {"file": ("train.jsonl", jsonl(example("My locker code?", f"It is {marker}.")))}
    uploaded = c.post("/v1/files", headers=doomed, files=upload, data={"purpose": "fine-tune"})
    assert uploaded.status_code == 200, uploaded.text

    source, weights = fake_adapter(tmp_path / "adapter")
    adapter = gw.ctx.models.register_adapter("doomed", "engram-tiny", "support", source)
    sealed_copy = tmp_path / "sealed-backup"
    shutil.copytree(Storage.of(gw.settings).local_path(adapter.key), sealed_copy)
    # what an engine replica holds: a private plaintext copy, identical to what was registered
    engine_copies = DecryptedAdapters(gw.settings)
    plain = Path(engine_copies.path(adapter))
    assert (plain / "adapter_model.safetensors").read_bytes() == weights
    assert stat.S_IMODE(engine_copies.root.stat().st_mode) == 0o700
    assert not plain.is_relative_to(root)

    # before: the scan finds the tenant (so it can fail), the adapter is sealed, and tables have history
    piece = weights[7000:7064]
    assert files_holding(root, marker.encode()) and files_holding(root, name.encode())
    assert files_holding(root, piece) == [], "the adapter must be encrypted at rest"
    lance = lancedb.connect(str(root / "tenants" / "doomed" / "lance"))
    assert len(lance.open_table("signals").list_versions()) > 1

    assert c.delete("/admin/tenants/doomed", headers=doomed).status_code == 403
    response = c.delete("/admin/tenants/doomed", headers=gw.admin)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["tenant_id"] == "doomed" and report["keys_revoked"] == 1 and report["data_key_destroyed"]
    assert {"signals", "memories"} <= set(report["lance_tables"]) and report["files_removed"] > 0
    assert report["rows_removed"]["models"] == 1 and report["rows_removed"]["model_versions"] == 1
    assert report["rows_removed"]["files"] == 1

    # nothing can be served: its key is dead everywhere, its model is gone
    for method, path in [
        ("GET", "/v1/memories"),
        ("GET", "/v1/models"),
        ("POST", "/v1/memories/search"),
        ("GET", f"/v1/files/{uploaded.json()['id']}/content"),
    ]:
        assert c.request(method, path, headers=doomed, json={}).status_code == 401, path
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert c.post("/v1/chat/completions", json=chat, headers=doomed).status_code == 401
    assert c.post("/v1/chat/completions", json=chat, headers=bystander).status_code == 404
    try:
        gw.ctx.models.resolve("doomed", MODEL)
        raise AssertionError("the deleted tenant's model still resolves")
    except NotFoundError:
        pass

    # nothing can be read back from storage: no folder, and no file anywhere holds its data
    assert not (root / "tenants" / "doomed").exists()
    for needle in (marker.encode(), name.encode(), piece):
        assert files_holding(root, needle) == [], needle[:16]
    # a sealed copy that escaped (a backup) is useless: the key that opens it is destroyed
    keys = DataKeys.from_settings(gw.settings)
    try:
        with crypto.decrypted(
            Storage(str(sealed_copy)), "", keys.key("doomed", create=False), adapter.context
        ):
            raise AssertionError("a sealed copy opened after the tenant's deletion")
    except KeyDestroyedError as e:
        assert "destroyed" in str(e)
    # engine replicas that did not see the DELETE learn of it from the destroyed key
    assert engine_copies.deleted_tenants() == {"doomed"}
    assert engine_copies.forget("doomed") == [adapter.lora_id] and not plain.exists()
    engine_copies.close()
    assert not engine_copies.root.exists()

    # once deleted, always deleted: 404 again, and the id is never handed out again
    assert c.delete("/admin/tenants/doomed", headers=gw.admin).status_code == 404
    assert c.delete("/admin/tenants/never-was", headers=gw.admin).status_code == 404
    again = c.post("/admin/tenants", json={"tenant_id": "doomed"}, headers=gw.admin)
    assert again.status_code == 409 and again.json()["error"]["param"] == "tenant_id"
    assert c.post("/admin/tenants/doomed/keys", headers=gw.admin).status_code == 404
    # the builder never recreates its tables, and the other tenant is untouched
    assert gw.builder.start_build("doomed")["status"] == "failed"
    gw.builder.run_once()
    assert not (root / "tenants" / "doomed").exists()
    assert _search(gw, bystander, "erin", "where does erin live")
