"""``/v1/files`` on the real gateway (FastAPI app, SQLite, sealed storage, the bootstrapped tokenizer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import Gateway, make_gateway
from tests.serving.test_gateway import _error
from tests.training.test_files import example, install_tiny_model, jsonl


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("files")
    install_tiny_model(root)
    gateway, close = make_gateway(root)
    yield gateway
    close()


def _upload(gw: Gateway, key: dict[str, str], data: bytes, purpose: str = "fine-tune") -> httpx.Response:
    return gw.client.post(
        "/v1/files",
        headers=key,
        files={"file": ("train.jsonl", data, "application/jsonl")},
        data={"purpose": purpose},
    )


def test_upload_read_list_content_delete(gw: Gateway) -> None:
    c, key = gw.client, gw.new_tenant("files-a")
    data = jsonl(example("Where do I live?", "In Lisbon."), example("My dog?", "Rex."))
    response = _upload(gw, key, data)
    assert response.status_code == 200, response.text
    created = response.json()
    assert (
        created["id"].startswith("file-") and created["object"] == "file" and created["status"] == "processed"
    )
    assert created["bytes"] == len(data) and created["filename"] == "train.jsonl"
    assert created["purpose"] == "fine-tune" and isinstance(created["created_at"], int)
    assert created["engram"]["examples"] == 2 and created["engram"]["tokens"] > 0
    file_id = created["id"]
    assert c.get(f"/v1/files/{file_id}", headers=key).json() == created
    listed = c.get("/v1/files", headers=key).json()
    assert listed["object"] == "list" and listed["data"] == [created] and listed["has_more"] is False
    content = c.get(f"/v1/files/{file_id}/content", headers=key)
    assert content.status_code == 200 and content.content == data
    deleted = c.delete(f"/v1/files/{file_id}", headers=key)
    assert deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    _error(c.get(f"/v1/files/{file_id}", headers=key), 404, "file_id")
    _error(c.delete(f"/v1/files/{file_id}", headers=key), 404, "file_id")
    assert c.get("/v1/files", headers=key).json()["data"] == []


def test_bad_uploads_are_refused_naming_the_field_and_lines(gw: Gateway) -> None:
    c, key = gw.client, gw.new_tenant("files-bad")
    good = example("Hi", "Hello.")
    error = _error(_upload(gw, key, jsonl(good, {"messages": []}, b"{oops", good)), 400, "file")
    assert (
        error["type"] == "invalid_request" and "line 2" in error["message"] and "line 4" in error["message"]
    )
    assert [p["line"] for p in error["lines"]] == [2, 3, 4]
    assert error["lines"][2]["error"] == "duplicate of line 1"
    assert "empty" in _error(_upload(gw, key, b""), 400, "file")["message"]
    _error(_upload(gw, key, jsonl(good), purpose="assistants"), 400, "purpose")
    _error(_upload(gw, key, b"x" * (gw.settings.files.max_file_bytes + 1)), 413, "file")
    _error(c.post("/v1/files", headers=key, data={"purpose": "fine-tune"}), 422, "file")
    _error(c.post("/v1/files", headers=key, files={"file": ("t.jsonl", jsonl(good))}), 422, "purpose")
    _error(c.get("/v1/files/not-a-file", headers=key), 422, "file_id")
    _error(c.get("/v1/files?after=bogus", headers=key), 422, "after")
    _error(c.get("/v1/files?limit=0", headers=key), 422, "limit")
    _error(c.get("/v1/files"), 401)
    assert c.get("/v1/files", headers=key).json()["data"] == []


def test_another_tenants_file_is_not_found(gw: Gateway) -> None:
    c, a, b = gw.client, gw.new_tenant("files-owner"), gw.new_tenant("files-other")
    file_id = _upload(gw, a, jsonl(example("Secret plan?", "Tuesday."))).json()["id"]
    for method, path in [
        ("GET", f"/v1/files/{file_id}"),
        ("GET", f"/v1/files/{file_id}/content"),
        ("DELETE", f"/v1/files/{file_id}"),
    ]:
        _error(c.request(method, path, headers=b), 404, "file_id")
    _error(c.get(f"/v1/files?after={file_id}", headers=b), 404, "after")
    assert c.get("/v1/files", headers=b).json()["data"] == []
    assert c.get(f"/v1/files/{file_id}/content", headers=a).status_code == 200
    sealed = Path(gw.settings.storage_root) / "tenants" / "files-owner" / "files" / f"{file_id}.jsonl.enc"
    assert sealed.read_bytes().startswith(b"EGRM") and b"Secret plan" not in sealed.read_bytes()


def test_a_training_file_from_the_tenants_own_memories(gw: Gateway) -> None:
    from tests.serving.conftest import wait_for
    from tests.serving.test_gateway import _signal

    c, key, other = gw.client, gw.new_tenant("mem-a"), gw.new_tenant("mem-b")
    mine = [_signal("alice", "I moved to Lisbon last month", 0), _signal("alice", "I work at Globex", 1)]
    assert c.post("/v1/signals", json={"signals": mine}, headers=key).json()["accepted"] == 2
    theirs = [_signal("alice", "I moved to Oslo last month", 0)]
    assert c.post("/v1/signals", json={"signals": theirs}, headers=other).json()["accepted"] == 1

    def facts(headers: dict[str, str]) -> set[str]:
        memories = c.get("/v1/memories?user_id=alice&kind=fact", headers=headers).json()["data"]
        return {m["slot"] for m in memories}

    wait_for(lambda: {"home_city", "employer"} <= facts(key))
    wait_for(lambda: "home_city" in facts(other))
    made = c.post("/v1/files/from_memories", headers=key, json={"user_ids": ["alice"]})
    assert made.status_code == 200, made.text
    assert made.json()["purpose"] == "fine-tune" and made.json()["engram"]["examples"] == 2
    lines = c.get(f"/v1/files/{made.json()['id']}/content", headers=key).content.decode().splitlines()
    pairs = {tuple(m["content"] for m in json.loads(line)["messages"]) for line in lines}
    assert pairs == {
        ("What is the home city of alice?", "Lisbon"),
        ("What is the employer of alice?", "Globex"),
    }  # the other tenant's alice (Oslo) never enters it
    _error(c.post("/v1/files/from_memories", headers=key, json={"user_ids": ["nobody"]}), 400, "user_ids")
    _error(c.post("/v1/files/from_memories", headers=key, json={"user_ids": []}), 422, "user_ids")
    _error(c.post("/v1/files/from_memories", headers=key, json={"user_ids": ["../x"]}), 422, "user_ids")
