"""What two processes or gateways do at once on one control database, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from actors.broker import GPUBroker
from actors.tenants import TenantDirectory
from cluster import ConflictError
from cluster.settings import BrokerSettings, QuotaSettings
from tests.actors.test_db import _diff

ROOT = Path(__file__).resolve().parents[2]


def _at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each one's result, or the error it raised."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        gate.wait()
        try:
            return call()
        except Exception as e:
            return e

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_gateways_creating_the_same_tenant_and_keys(database_url: str) -> None:
    one, other = TenantDirectory(database_url), TenantDirectory(database_url)
    for round_ in range(5):
        tenant = f"race-{round_}"
        outcomes = _at_once(*[(lambda d=d, t=tenant: d.create_tenant(t)) for d in (one, other)])
        won = [o for o in outcomes if not isinstance(o, Exception)]
        lost = [o for o in outcomes if isinstance(o, Exception)]
        assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], ConflictError), outcomes
        keys = _at_once(*[(lambda d=d, t=tenant: d.create_key(t)) for d in (one, other) * 4])
        assert len({k.key_id for k in keys}) == 8
        for key in [*keys, won[0]]:
            assert one.authenticate(key.key) is not None and other.authenticate(key.key).tenant_id == tenant


def test_two_brokers_racing_never_grant_one_gpu_twice(database_url: str) -> None:
    def broker() -> GPUBroker:
        return GPUBroker(
            database_url,
            settings=BrokerSettings(),
            quotas=QuotaSettings(concurrent_jobs=None, nominal_gpus=0),  # every run borrows
            capacity_gpus=1,
        )

    first, second = broker(), broker()
    for round_ in range(10):
        _at_once(
            lambda r=round_: first.submit("t1", 1.0, workload_id=f"a{r}"),
            lambda r=round_: second.submit("t2", 1.0, workload_id=f"b{r}"),
            first.schedule,
            second.schedule,
        )
        held = [w for w in first.workloads(live=True) if w.state in ("admitted", "running")]
        assert sum(w.gpus for w in held) <= 1.0, [(w.workload_id, w.state) for w in held]
        for w in held:
            first.finish(w.workload_id)


MIGRATE = "import sys; from actors.db import engine_for; engine_for(sys.argv[1])"


def test_two_processes_starting_on_a_new_database_migrate_it_once(database_url: str) -> None:
    starters = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, database_url], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for starter in starters:
        _, err = starter.communicate(timeout=120)
        assert starter.returncode == 0, err.decode()[-2000:]
    assert _diff(database_url) == []
    with create_engine(database_url).connect() as db:
        assert db.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
