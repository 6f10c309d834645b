"""The HTTP contract of the gateway, on the real app with real storage and models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memory.embed import get_embedder
from memory.search import get_memory
from tests.serving.conftest import Gateway, make_gateway, wait_for


def _signal(user: str, text: str, i: int = 0, **over: Any) -> dict[str, Any]:
    row = {
        "user_id": user,
        "source": "chat",
        "role": "user",
        "session_id": f"{user}-s1",
        "text": text,
        "occurred_at": f"2024-05-{10 + i:02d}T10:00:00Z",
    }
    row.update(over)
    return row


def _search(gw: Gateway, key: dict[str, str], user: str, query: str, **extra: Any) -> list[dict[str, Any]]:
    response = gw.client.post(
        "/v1/memories/search", json={"user_id": user, "query": query, **extra}, headers=key
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _error(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] and error["message"]
    if param is not None:
        assert error.get("param") == param, error
    return error


def test_auth_and_admin(gateway: Gateway) -> None:
    c = gateway.client
    assert c.get("/healthz").json() == {"status": "ok"}
    _error(c.get("/v1/memories"), 401)
    _error(c.get("/v1/memories", headers={"Authorization": "Bearer egk_0000_nope"}), 401)
    _error(c.get("/v1/memories", headers={"Authorization": "Basic abc"}), 401)
    key = gateway.new_tenant("auth-t")
    assert c.get("/v1/memories", headers=key).status_code == 200
    _error(c.post("/admin/tenants", json={"tenant_id": "x"}, headers=key), 403)
    _error(c.get("/metrics", headers=key), 403)
    _error(c.post("/admin/tenants", json={"tenant_id": "auth-t"}, headers=gateway.admin), 409, "tenant_id")
    _error(c.post("/admin/tenants", json={"tenant_id": "../evil"}, headers=gateway.admin), 422, "tenant_id")
    _error(c.post("/admin/tenants/nobody/keys", headers=gateway.admin), 404)
    metrics = c.get("/metrics", headers=gateway.admin)
    assert metrics.status_code == 200 and "engram_requests_total" in metrics.text


def test_key_revocation(gateway: Gateway) -> None:
    c = gateway.client
    gateway.new_tenant("revoke-t")
    extra = c.post("/admin/tenants/revoke-t/keys", headers=gateway.admin).json()
    key = {"Authorization": f"Bearer {extra['key']}"}
    assert c.get("/v1/memories", headers=key).status_code == 200
    assert (
        c.delete(f"/admin/tenants/revoke-t/keys/{extra['key_id']}", headers=gateway.admin).status_code == 200
    )
    _error(c.get("/v1/memories", headers=key), 401)
    _error(c.delete(f"/admin/tenants/revoke-t/keys/{extra['key_id']}", headers=gateway.admin), 404)


def test_signals_become_searchable_by_themselves(gateway: Gateway) -> None:
    key = gateway.new_tenant("fresh-t")
    body = {
        "signals": [
            _signal("alice", "I moved to Lisbon last month", 0),
            _signal("alice", "I love surfing at dawn", 1),
            _signal("alice", "bad source", 2, source="fax"),
            _signal("alice", "I moved to Lisbon last month", 0),
        ]
    }
    response = gateway.client.post("/v1/signals", json=body, headers=key)
    assert response.json() == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": [{"index": 2, "reason": response.json()["rejected"][0]["reason"], "param": "source"}],
    }
    results = wait_for(
        lambda: [r for r in _search(gateway, key, "alice", "where does alice live") if r["kind"] == "fact"]
    )
    assert results[0]["text"] == "Lives in Lisbon" and results[0]["sources"]
    # the profile is written in the same pass, just after the memories
    wait_for(lambda: gateway.client.get("/v1/users/alice/profile", headers=key).status_code == 200)
    profile = gateway.client.get("/v1/users/alice/profile", headers=key).json()
    assert profile["signals"] == 2 and profile["current_facts"]["home_city"] == "Lisbon"


def test_request_limits_and_validation(tmp_path: Path) -> None:
    gw, close = make_gateway(tmp_path, max_signals_per_request=3, max_body_bytes=4096)
    try:
        key = gw.new_tenant("limits-t")
        c = gw.client
        _error(
            c.post("/v1/signals", json={"signals": [_signal("u", "hi", 0)] * 4}, headers=key), 413, "signals"
        )
        _error(c.post("/v1/signals", json={"signals": [_signal("u", "x" * 5000)]}, headers=key), 413)
        _error(c.post("/v1/signals", json={"signals": "nope"}, headers=key), 422, "signals")
        _error(
            c.post("/v1/signals", json={"signals": [], "tenant_id": "other"}, headers=key), 422, "tenant_id"
        )
        _error(
            c.post("/v1/signals", content=b"{not json", headers={**key, "content-type": "application/json"}),
            422,
        )
        _error(
            c.post("/v1/memories/search", json={"user_id": "u", "query": "q", "k": 0}, headers=key), 422, "k"
        )
        _error(
            c.post("/v1/memories/search", json={"user_id": "u", "query": "q", "kinds": ["x"]}, headers=key),
            422,
            "kinds.0",
        )
        _error(c.get("/v1/memories/not-an-id", headers=key), 422, "memory_id")
        _error(c.get("/v1/memories?limit=100000", headers=key), 422, "limit")
        _error(c.get("/v1/users/..%2Fetc/profile", headers=key), 404)  # no route: nothing escapes the tenant
    finally:
        close()


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    gw, close = make_gateway(tmp_path, quotas={"requests_per_s": 0.5, "burst": 2})
    try:
        key = gw.new_tenant("rl-t")
        assert [gw.client.get("/v1/memories", headers=key).status_code for _ in range(2)] == [200, 200]
        response = gw.client.get("/v1/memories", headers=key)
        _error(response, 429)
        assert int(response.headers["retry-after"]) >= 1
    finally:
        close()


def test_build_route_and_memory_crud(gateway: Gateway) -> None:
    c = gateway.client
    key = gateway.new_tenant("crud-t")
    texts = ["I work at Initech now", "I have a dog named Rex", "Lunch was great today"]
    c.post("/v1/signals", json={"signals": [_signal("bob", t, i) for i, t in enumerate(texts)]}, headers=key)
    build = c.post("/v1/memories/build", headers=key)
    assert build.status_code == 202
    done = wait_for(
        lambda: (
            (s := c.get(f"/v1/memories/build/{build.json()['id']}", headers=key).json())["status"]
            in ("succeeded", "failed")
            and s
        )
    )
    assert done["status"] == "succeeded", done
    _error(c.get("/v1/memories/build/build-0000", headers=key), 404)

    page = c.get("/v1/memories?user_id=bob&limit=2", headers=key).json()
    assert len(page["data"]) == 2 and page["next_offset"] == 2
    rest = c.get("/v1/memories?user_id=bob&limit=50&offset=2", headers=key).json()
    assert rest["next_offset"] is None
    every = page["data"] + rest["data"]
    assert {m["user_id"] for m in every} == {"bob"} and len({m["memory_id"] for m in every}) == len(every)

    dog = next(m for m in every if m["slot"] == "pet.dog")
    assert c.get(f"/v1/memories/{dog['memory_id']}", headers=key).json()["value"] == "Rex"
    fixed = c.patch(f"/v1/memories/{dog['memory_id']}", json={"text": "Has a dog named Max"}, headers=key)
    assert fixed.status_code == 200 and fixed.json()["text"] == "Has a dog named Max"
    # the corrected text is embedded as every memory is: by the full model, not the int8 query one
    stored = get_memory(gateway.ctx.store("crud-t"), dog["memory_id"], with_vector=True)
    model = gateway.settings.embedding.model
    assert stored is not None and gateway.settings.retrieval.query_int8
    np.testing.assert_allclose(
        stored["vector"], get_embedder(model).embed(["Has a dog named Max"])[0], atol=1e-5
    )
    hits = _search(gateway, key, "bob", "what is the name of the dog", kinds=["fact"])
    assert hits[0]["memory_id"] == dog["memory_id"] and hits[0]["text"] == "Has a dog named Max"
    _error(c.patch(f"/v1/memories/{dog['memory_id']}", json={"user_id": "x"}, headers=key), 422, "user_id")
    assert c.delete(f"/v1/memories/{dog['memory_id']}", headers=key).json()["deleted"] is True
    _error(c.get(f"/v1/memories/{dog['memory_id']}", headers=key), 404, "memory_id")
    _error(c.delete(f"/v1/memories/{dog['memory_id']}", headers=key), 404)


def test_tenants_never_see_each_other(gateway: Gateway) -> None:
    c = gateway.client
    a, b = gateway.new_tenant("iso-a"), gateway.new_tenant("iso-b")
    c.post(
        "/v1/signals", json={"signals": [_signal("carol", "I live in Oslo and love skiing", 0)]}, headers=a
    )
    build = c.post("/v1/memories/build", headers=a).json()["id"]
    wait_for(lambda: c.get(f"/v1/memories/build/{build}", headers=a).json()["status"] == "succeeded")
    mine = c.get("/v1/memories?user_id=carol", headers=a).json()["data"]
    assert mine
    memory_id = mine[0]["memory_id"]

    assert _search(gateway, b, "carol", "Oslo skiing") == []
    assert c.get("/v1/memories", headers=b).json()["data"] == []
    assert c.get("/v1/memories?user_id=carol", headers=b).json()["data"] == []
    _error(c.get(f"/v1/memories/{memory_id}", headers=b), 404)
    _error(c.patch(f"/v1/memories/{memory_id}", json={"importance": 0.1}, headers=b), 404)
    _error(c.delete(f"/v1/memories/{memory_id}", headers=b), 404)
    _error(c.get("/v1/users/carol/profile", headers=b), 404)
    _error(c.get(f"/v1/memories/build/{build}", headers=b), 404)
    assert not any(c.delete("/v1/users/carol", headers=b).json()["deleted"].values())
    # the body can never widen the scope: a tenant_id in a signal is refused, not obeyed
    sneaky = c.post("/v1/signals", json={"signals": [_signal("carol", "x", 0, tenant_id="iso-a")]}, headers=b)
    assert sneaky.json()["accepted"] == 0 and sneaky.json()["rejected"][0]["param"] == "tenant_id"
    assert c.get(f"/v1/memories/{memory_id}", headers=a).status_code == 200
    assert c.get("/v1/users/carol/profile", headers=a).status_code == 200


def test_forget_user_leaves_nothing_readable(gateway: Gateway) -> None:
    c = gateway.client
    key = gateway.new_tenant("forget-t")
    marker = "zanzibarquux"
    c.post(
        "/v1/signals",
        json={
            "signals": [
                _signal("dave", f"My password hint is {marker}", 0),
                _signal("dave", "also this", 1, source="fax"),
                _signal("erin", "I like tea", 2),
            ]
        },
        headers=key,
    )
    wait_for(lambda: _search(gateway, key, "dave", marker, k=3))
    wait_for(lambda: c.get("/v1/users/erin/profile", headers=key).status_code == 200)
    lance = Path(gateway.settings.storage_root) / "tenants" / "forget-t" / "lance"
    before = _user_rows_by_version(lance, "dave")
    assert len({v for _, v in before}) > len({t for t, _ in before}), "the tables must have history"
    assert sum(before.values()) > 0
    forgotten = c.delete("/v1/users/dave", headers=key).json()["deleted"]
    assert forgotten["signals"] == 1 and forgotten["memories"] >= 1 and forgotten["quarantine"] == 1
    assert _search(gateway, key, "dave", marker) == []
    _error(c.get("/v1/users/dave/profile", headers=key), 404)
    assert c.get("/v1/users/erin/profile", headers=key).status_code == 200
    # no version of any table that can still be checked out holds a row of the user
    after = _user_rows_by_version(lance, "dave")
    assert after and all(n == 0 for n in after.values()), after
    assert {t for t, _ in after} == {t for t, _ in before}
    files = [p for p in lance.rglob("*") if p.is_file()]
    assert any(p.suffix == ".lance" for p in files), "the scan must cover the tables' data files"
    leaked = [p for p in files if marker.encode() in p.read_bytes()]
    assert leaked == [], leaked


def _user_rows_by_version(lance: Path, user: str) -> dict[tuple[str, int], int]:
    """Rows of ``user`` in every version of every table of a tenant's LanceDB folder."""
    import lancedb

    db = lancedb.connect(str(lance))
    counts: dict[tuple[str, int], int] = {}
    for name in db.list_tables().tables:
        table = db.open_table(name)
        for version in table.list_versions():
            table.checkout(version["version"])
            counts[(name, version["version"])] = table.count_rows(f"user_id = '{user}'")
        table.checkout_latest()
    return counts
