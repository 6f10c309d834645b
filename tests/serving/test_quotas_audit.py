"""Quotas, usage and the audit log through the gateway (real FastAPI app, SQLite, LanceDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.broker import GPUBroker
from tests.serving.conftest import Gateway, make_gateway
from tests.serving.test_gateway import _error, _signal


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    gateway, close = make_gateway(tmp_path, quotas={"cache_s": 0, "burst": 3})
    yield gateway
    close()


def test_admin_sets_quotas_and_the_tenant_sees_them(gw: Gateway) -> None:
    c = gw.client
    key = gw.new_tenant("q-t")
    _error(c.put("/admin/tenants/q-t/quota", json={"requests_per_s": 2}, headers=key), 403)
    _error(c.put("/admin/tenants/none-t/quota", json={"requests_per_s": 2}, headers=gw.admin), 404)
    _error(
        c.put("/admin/tenants/q-t/quota", json={"requests_per_s": -1}, headers=gw.admin),
        422,
        "requests_per_s",
    )
    _error(c.put("/admin/tenants/q-t/quota", json={"bogus": 1}, headers=gw.admin), 422, "bogus")
    _error(
        c.put("/admin/tenants/q-t/quota", json={"nominal_gpus": -0.5}, headers=gw.admin), 422, "nominal_gpus"
    )
    limits = {"tokens_per_min": 500, "storage_bytes": 10**9, "nominal_gpus": 2.5}
    put = c.put("/admin/tenants/q-t/quota", json=limits, headers=gw.admin)
    assert put.status_code == 200, put.text
    assert put.json()["quota"]["tokens_per_min"] == 500 and put.json()["quota"]["nominal_gpus"] == 2.5
    assert GPUBroker.from_settings(gw.settings).nominal("q-t") == 2.5  # what the broker admits by
    assert c.get("/admin/tenants/q-t/quota", headers=gw.admin).json()["quota"]["storage_bytes"] == 10**9
    usage = c.get("/v1/usage", headers=key).json()
    assert usage["tenant_id"] == "q-t" and usage["quota"]["tokens_per_min"] == 500
    _error(c.get("/admin/tenants/none-t/usage", headers=gw.admin), 404)


def test_requests_are_metered_per_tenant(gw: Gateway) -> None:
    c = gw.client
    a, b = gw.new_tenant("meter-a"), gw.new_tenant("meter-b")
    for _ in range(5):
        assert c.get("/v1/memories", headers=a).status_code == 200
    c.get("/v1/memories", headers=b)
    mine = c.get("/v1/usage", headers=a).json()
    assert mine["usage"]["requests"] == 5  # the usage call itself is metered after it answers
    assert c.get("/v1/usage", headers=a).json()["usage"]["requests"] == 6
    assert c.get("/admin/tenants/meter-b/usage", headers=gw.admin).json()["usage"]["requests"] == 1
    assert mine["storage_bytes"] == 0  # measured: it stored nothing yet
    _error(c.get("/v1/usage?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", headers=a), 400, "since")


def test_a_lowered_rate_quota_applies_at_once_with_retry_after(gw: Gateway) -> None:
    c = gw.client
    key, other = gw.new_tenant("rate-t"), gw.new_tenant("rate-other")
    assert (
        c.put("/admin/tenants/rate-t/quota", json={"requests_per_s": 0.2}, headers=gw.admin).status_code
        == 200
    )
    codes = [c.get("/v1/memories", headers=key).status_code for _ in range(gw.settings.quotas.burst + 1)]
    assert codes[-1] == 429
    response = c.get("/v1/memories", headers=key)
    _error(response, 429, "requests_per_s")
    assert int(response.headers["retry-after"]) >= 1
    assert c.get("/v1/memories", headers=other).status_code == 200  # the neighbour is not limited


def test_storage_quota_refuses_new_signals_and_keeps_stored_ones(gw: Gateway) -> None:
    c = gw.client
    key = gw.new_tenant("store-t")
    first = c.post("/v1/signals", json={"signals": [_signal("ann", "I live in Porto")]}, headers=key)
    assert first.json()["accepted"] == 1
    assert (
        c.put("/admin/tenants/store-t/quota", json={"storage_bytes": 1}, headers=gw.admin).status_code == 200
    )
    refused = c.post("/v1/signals", json={"signals": [_signal("ann", "I like jazz", 1)]}, headers=key)
    assert _error(refused, 429, "storage_bytes")["type"] == "insufficient_quota"
    c.put("/admin/tenants/store-t/quota", json={}, headers=gw.admin)  # back to the default: unlimited
    again = c.post("/v1/signals", json={"signals": [_signal("ann", "I like jazz", 1)]}, headers=key)
    assert again.json()["accepted"] == 1


def test_mutating_calls_are_audited_and_each_tenant_reads_only_its_own(gw: Gateway) -> None:
    c = gw.client
    a, b = gw.new_tenant("audit-a"), gw.new_tenant("audit-b")
    c.post("/v1/signals", json={"signals": [_signal("ann", "I live in Porto")]}, headers=a)
    c.post("/v1/signals", json={"signals": [_signal("bo", "I live in Braga")]}, headers=b)
    c.post(
        "/v1/memories/search", json={"user_id": "ann", "query": "home"}, headers=a
    )  # read-only: not audited
    c.delete("/v1/users/ann", headers=a)
    c.post("/v1/signals", json={"signals": []}, headers={"Authorization": "Bearer egk_nope_nope"})
    c.put("/admin/tenants/audit-a/quota", json={"requests_per_s": 9}, headers=gw.admin)

    mine = c.get("/v1/audit", headers=a).json()["events"]
    assert {e["tenant_id"] for e in mine} == {"audit-a"}
    assert [e["action"] for e in mine] == [
        "POST /admin/tenants",
        "POST /v1/signals",
        "DELETE /v1/users/{user_id}",
        "PUT /admin/tenants/{tenant_id}/quota",
    ]
    assert mine[1]["actor"] != "admin" and mine[1]["status"] == 200 and mine[2]["resource"] == "/v1/users/ann"
    assert mine[0]["actor"] == mine[3]["actor"] == "admin"
    everything = c.get("/admin/audit", headers=gw.admin).json()["events"]
    assert {"audit-a", "audit-b", None} <= {e["tenant_id"] for e in everything}
    assert any(e["actor"] == "anonymous" and e["status"] == 401 for e in everything)
    only_b = c.get("/admin/audit?tenant_id=audit-b", headers=gw.admin).json()["events"]
    assert {e["tenant_id"] for e in only_b} == {"audit-b"}
    page = c.get("/admin/audit?limit=2", headers=gw.admin).json()
    assert len(page["events"]) == 2
    rest = c.get(f"/admin/audit?after={page['next_after']}", headers=gw.admin).json()["events"]
    assert rest[0]["event_id"] > page["events"][-1]["event_id"]
    _error(c.get("/admin/audit", headers=a), 403)
    _error(c.get(f"/v1/audit?after={2**64}", headers=a), 422, "after")  # beyond any SQL integer
