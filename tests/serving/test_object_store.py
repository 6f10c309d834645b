"""The gateway with the storage root on an S3-compatible server and the control plane on PostgreSQL:
signals to searchable memories, fine-tune files, an adapter decrypted for an engine, usage, and a
tenant deletion that leaves no object of the tenant."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import Storage, model_key
from serving.adapters import DecryptedAdapters
from tests.actors.test_deletion import fake_adapter
from tests.conftest import object_store_settings, s3_objects
from tests.serving.conftest import ADMIN_KEY, gateway_over, wait_for
from tests.training.test_files import example, jsonl, tiny_model

pytestmark = pytest.mark.integration


def test_the_gateway_keeps_every_byte_on_the_object_store(
    s3_root: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = object_store_settings(
        s3_root, postgres_url, api={"admin_key": ADMIN_KEY, "builder_interval_s": 0.2}
    )
    storage = Storage.of(settings)
    storage.put_tree(tiny_model(), model_key("engram-tiny"))  # as `engram models bootstrap` publishes it
    gw, close = gateway_over(settings)
    prefix = s3_root.removeprefix("s3://engram-tests/")
    try:
        c, key = gw.client, gw.new_tenant("acme")
        signal = {
            "user_id": "ann",
            "source": "chat",
            "role": "user",
            "session_id": "s1",
            "text": "I moved to Lisbon last month",
            "occurred_at": "2024-05-10T10:00:00Z",
        }
        assert c.post("/v1/signals", headers=key, json={"signals": [signal]}).json()["accepted"] == 1

        def found() -> list[dict]:
            body = {"user_id": "ann", "query": "where does she live", "k": 3}
            return c.post("/v1/memories/search", headers=key, json=body).json()["results"]

        assert "Lisbon" in wait_for(found)[0]["text"]

        data = jsonl(example("Where do I live?", "In Lisbon."))
        upload = c.post(
            "/v1/files", headers=key, files={"file": ("t.jsonl", data)}, data={"purpose": "fine-tune"}
        )
        assert upload.status_code == 200, upload.text
        file_id = upload.json()["id"]
        assert c.get(f"/v1/files/{file_id}/content", headers=key).content == data
        sealed = [k for k in s3_objects(f"{prefix}/tenants/acme/files/") if file_id in k]
        assert len(sealed) == 1 and b"Lisbon" not in storage.read_bytes(sealed[0].removeprefix(f"{prefix}/"))

        source, weights = fake_adapter(tmp_path / "adapter")
        adapter = gw.ctx.models.register_adapter("acme", "engram-tiny", "support", source)
        assert storage.children(adapter.key) == ["adapter_config.json.enc", "adapter_model.safetensors.enc"]
        engine = DecryptedAdapters(settings)  # what an LLM replica on any node does
        assert (Path(engine.path(adapter)) / "adapter_model.safetensors").read_bytes() == weights
        engine.close()

        usage = c.get("/v1/usage", headers=key).json()
        assert usage["storage_bytes"] > len(weights)  # the sealed adapter and the tables, on the server

        deleted = c.delete("/admin/tenants/acme", headers=gw.admin)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["files_removed"] > 0
        assert s3_objects(f"{prefix}/tenants/acme/") == []  # no object of the tenant is left
        assert s3_objects(f"{prefix}/models/")  # the base model stays
    finally:
        close()
