"""The GPU broker: its policy on SQLite (fast), then real runs on logical GPUs in Ray (integration).

The integration scenarios need a Ray with GPUs, which the session's shared Ray (CPU only) is not:
each runs in a subprocess of its own (``_isolated``) with ``ray.init(num_gpus=2)`` or a
``ray.cluster_utils.Cluster`` of a CPU head and a GPU node, and asserts there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from actors.broker import GPUBroker, Workload, gpu_workloads
from actors.broker_runner import StepLoop, TrainState, load_checkpoint, save_checkpoint
from actors.keys import DataKeys
from actors.quotas import quotas
from actors.tenants import TenantDirectory
from cluster import Storage
from cluster.crypto import MAGIC
from cluster.errors import ConflictError, DecryptionError, InvalidRequestError, NotFoundError
from cluster.settings import BrokerSettings, QuotaSettings, Settings

ROOT = Path(__file__).resolve().parents[2]


def _broker(
    database_url: str, capacity: float, quotas: QuotaSettings | None = None, **settings: Any
) -> GPUBroker:
    """A broker on its own database; no job quotas unless ``quotas`` (the policy tests need none)."""
    return GPUBroker(
        database_url,
        settings=BrokerSettings(**settings),
        quotas=quotas or QuotaSettings(concurrent_jobs=None),
        capacity_gpus=capacity,
    )


def _set_nominal(broker: GPUBroker, tenant: str, gpus: float) -> None:
    """A tenant's nominal GPU quota, set as an admin sets it: one field of its quota."""
    directory = TenantDirectory(broker.engine.url.render_as_string(hide_password=False))
    if not directory.exists(tenant):
        directory.create_tenant(tenant)
    broker.quotas.set(tenant, {"nominal_gpus": gpus})
    broker.schedule()


def _states(broker: GPUBroker) -> dict[str, str]:
    return {w.workload_id: w.state for w in broker.workloads(kind="training")}


def _last(broker: GPUBroker, workload_id: str) -> str:
    return str(broker.events(workload_id)[-1])


def _set_capacity(broker: GPUBroker, gpus: float) -> None:
    """GPUs join or leave the pool (as when a GPU node joins the Ray cluster)."""
    broker.capacity_gpus = gpus
    broker.schedule()


# -- the policy ---------------------------------------------------------------------------------


def test_tenants_get_their_nominal_share_before_anyone_borrows(database_url: str) -> None:
    broker = _broker(database_url, capacity=0)
    for wid, tenant in [("a1", "t1"), ("a2", "t1"), ("a3", "t1"), ("b1", "t2"), ("b2", "t2")]:
        broker.submit(tenant, 1.0, workload_id=wid)
    assert set(_states(broker).values()) == {"queued"}
    assert _last(broker, "a1") == (
        "waiting: tenant t1 is within its nominal quota (0 used of 1) but 0 GPU are free, serving holds 0 "
        "and no borrowed GPUs can be taken back"
    )

    _set_capacity(broker, 2)  # t1 submitted three runs first, yet each tenant gets its nominal 1
    assert _states(broker) == {
        "a1": "admitted",
        "a2": "queued",
        "a3": "queued",
        "b1": "admitted",
        "b2": "queued",
    }
    assert _last(broker, "b1") == "admitted: 1 GPU: within tenant t2's nominal quota (1 used of nominal 1)"
    assert _last(broker, "a2") == (
        "waiting: tenant t1 uses 1 of nominal 1 GPU and 0 idle GPUs are left to borrow (needs 1)"
    )

    _set_capacity(broker, 3)  # one idle GPU: both tenants borrow nothing yet, the oldest run gets it
    assert _states(broker)["a2"] == "admitted"
    assert "borrows idle GPUs beyond tenant t1's nominal quota (2 used of nominal 1)" in _last(broker, "a2")

    _set_capacity(broker, 4)  # the next idle GPU goes to the tenant that borrows least, not to the oldest
    assert _states(broker) == {
        "a1": "admitted",
        "a2": "admitted",
        "a3": "queued",
        "b1": "admitted",
        "b2": "admitted",
    }


def test_borrowed_gpus_go_back_when_their_owner_needs_them(database_url: str) -> None:
    broker = _broker(database_url, capacity=2)
    broker.submit("t1", 1.0, workload_id="a1")
    broker.submit("t1", 1.0, workload_id="a2")
    assert _states(broker) == {"a1": "admitted", "a2": "admitted"}  # t1 borrows t2's idle quota
    for wid in ("a1", "a2"):
        assert broker.started(wid, 1, 0, "node-1")
    broker.checkpointed("a2", 1, 30, "/ckpt/a2/step-30.pt")

    broker.submit("t2", 1.0, workload_id="b1")
    assert _states(broker) == {"a1": "running", "a2": "preempting", "b1": "queued"}
    assert _last(broker, "a2") == (
        "preempted: b1 (batch) needs 1 GPU and 0 are free; this batch run borrows beyond tenant t1's "
        "nominal quota 1; it checkpoints, stops and is requeued"
    )
    assert _last(broker, "b1") == (
        "waiting: tenant t2 reclaims its nominal quota (0 used of nominal 1); "
        "waiting while a2 checkpoint and stop"
    )
    assert broker.should_stop("a2", 1) and not broker.should_stop("a1", 1)

    broker.stopped("a2", 1, 37, "/ckpt/a2/step-37.pt")  # the runner saved at its next step boundary
    assert _states(broker) == {"a1": "running", "a2": "preempted", "b1": "admitted"}
    assert [e.event for e in broker.events("a2")][-3:] == ["preempted", "requeued", "waiting"]
    assert broker.workload("a2").checkpoint_step == 37 and broker.workload("a2").preemptions == 1

    broker.finish("b1", 1, step=100)
    a2 = broker.workload("a2")
    assert (a2.state, a2.attempt) == ("admitted", 2)
    assert _last(broker, "a2").endswith("resumes from its checkpoint at step 37")
    lease = broker.lease("a2")
    assert lease is not None and lease.attempt == 2 and lease.checkpoint_dir.endswith("/t1/checkpoints/a2")
    assert not broker.started("a2", 1, 37)  # the old attempt's runner may not run again
    assert broker.started("a2", 2, 37, "node-1")
    assert _last(broker, "a2") == "resumed: from checkpoint /ckpt/a2/step-37.pt at step 37 on node node-1"


def test_priority_classes_order_admission_and_preemption(database_url: str) -> None:
    # every run borrows
    broker = _broker(database_url, capacity=0, quotas=QuotaSettings(concurrent_jobs=None, nominal_gpus=0))
    broker.submit("t1", 1.0, priority="batch", workload_id="batch-1")
    broker.submit("t1", 1.0, priority="interactive", workload_id="inter-1")
    _set_capacity(broker, 1)
    assert _states(broker) == {"batch-1": "queued", "inter-1": "admitted"}
    _set_capacity(broker, 2)
    assert _states(broker) == {"batch-1": "admitted", "inter-1": "admitted"}

    assert broker.serving_demand(1.0) == 0  # serving preempts the lowest class first
    assert _states(broker) == {"batch-1": "preempting", "inter-1": "admitted"}
    broker.stopped("batch-1", 1, 5, "/ckpt/b.pt")
    assert broker.serving_admitted() == 1

    # Within a tenant's nominal quota, a higher class displaces a lower one of the same tenant.
    _set_nominal(broker, "t2", 1.0)
    broker.serving_demand(0)
    broker.cancel("inter-1")
    broker.cancel("batch-1")
    broker.submit("t2", 1.0, priority="batch", workload_id="t2-batch")
    broker.submit("t2", 1.0, priority="batch", workload_id="t2-batch-2")
    broker.submit("t2", 1.0, priority="interactive", workload_id="t2-inter")
    assert _states(broker)["t2-inter"] == "queued"
    assert _states(broker)["t2-batch-2"] == "preempting"  # the borrowing batch run goes first
    broker.stopped("t2-batch-2", 1, 3, "/ckpt/c.pt")
    assert _states(broker)["t2-inter"] == "admitted"
    assert _states(broker)["t2-batch"] == "admitted"  # now borrowing: the interactive run holds the quota


def test_serving_takes_what_it_needs_and_only_that(database_url: str) -> None:
    broker = _broker(database_url, capacity=2)
    _set_nominal(broker, "t1", 2.0)
    broker.submit("t1", 1.0, workload_id="a1")
    broker.submit("t1", 1.0, workload_id="a2")
    assert broker.serving_demand(3.0) == 0  # more than the pool: two replicas can be placed, one waits
    assert _states(broker) == {"a1": "preempting", "a2": "preempting"}  # even runs within their quota
    broker.stopped("a1", 1, 1, "/c1.pt")
    assert broker.serving_admitted() == 1
    broker.stopped("a2", 1, 1, "/c2.pt")
    assert broker.serving_admitted() == 2
    waiting = [w for w in broker.workloads(kind="serving", live=True) if w.state == "queued"]
    assert len(waiting) == 1
    assert _last(broker, waiting[0].workload_id) == (
        "waiting: serving needs 1 GPU of the pool's 2: 0 are free, 0 held by training that can make room, "
        "2 by serving"
    )
    assert "waiting: tenant t1 reclaims" not in _last(broker, "a1")  # training waits for serving to shrink

    assert broker.serving_demand(1.0) == 1  # serving shrinks: the queued replica goes first
    assert _states(broker) == {"a1": "admitted", "a2": "preempted"}
    broker.serving_demand(0.0)
    assert _states(broker) == {"a1": "admitted", "a2": "admitted"}
    assert all(w.state == "finished" for w in broker.workloads(kind="serving"))
    assert [e.event for e in broker.events(waiting[0].workload_id)][-1] == "released"


def test_a_run_that_does_not_stop_is_taken_as_stopped_after_the_grace(database_url: str) -> None:
    broker = _broker(database_url, capacity=1, preemption_grace_s=0)
    broker.submit("t1", 1.0, workload_id="stuck")
    assert broker.started("stuck", 1, 0)
    broker.serving_demand(1.0)
    assert _states(broker) == {"stuck": "preempting"}
    broker.schedule()  # the grace has passed: serving gets the GPU, the run is requeued
    assert _states(broker) == {"stuck": "preempted"}
    assert broker.serving_admitted() == 1
    assert "did not checkpoint and stop within 0 s" in str(broker.events("stuck")[-2])
    assert broker.should_stop("stuck", 1)
    broker.finish("stuck", 1, step=9)  # the late report of the abandoned attempt changes nothing
    assert _states(broker) == {"stuck": "preempted"}


@pytest.mark.integration
def test_the_broker_actor_requeues_a_run_that_does_not_stop_with_nothing_else_happening(
    ray_local: None, tmp_path: Path
) -> None:
    import ray

    from actors.broker import start_broker

    settings = Settings(
        storage_root=str(tmp_path / "store"), broker=BrokerSettings(poll_s=0.05, preemption_grace_s=0.5)
    )
    broker = start_broker(settings, capacity_gpus=1, name="broker-clock-test")
    try:
        ray.get(broker.submit.remote("t1", 1.0, workload_id="stuck"))
        assert ray.get(broker.started.remote("stuck", 1, 0))
        assert ray.get(broker.serving_demand.remote(1.0)) == 0.0  # the run is preempted; it never stops
        assert ray.get(broker.workload.remote("stuck")).state == "preempting"
        # No runner reports and nobody calls: the broker's own clock requeues it after the grace.
        _wait_for(lambda: ray.get(broker.serving_admitted.remote()) == 1.0, timeout=15, what="admitted")
        assert ray.get(broker.workload.remote("stuck")).state == "preempted"
    finally:
        ray.kill(broker)


def test_a_lost_attempt_resumes_from_its_checkpoint_until_it_crashed_too_often(database_url: str) -> None:
    broker = _broker(database_url, capacity=1, max_failures=1)
    broker.submit("t1", 1.0, workload_id="a1")
    assert broker.started("a1", 1, 0, "node-1")
    broker.checkpointed("a1", 1, 30, "/ckpt/a1/step-30.pt")
    broker.interrupted("a1", 1, "attempt 1 lost: NodeDiedError")
    a1 = broker.workload("a1")
    assert (a1.state, a1.attempt) == ("admitted", 2)  # requeued, and the GPU is free: admitted again
    assert [str(e) for e in broker.events("a1") if e.event == "interrupted"] == [
        "interrupted: attempt 1 lost: NodeDiedError; requeued to resume from step 30 "
        "(crash 1 of 1 survivable)"
    ]
    broker.interrupted("a1", 1, "late report of the same loss")  # stale: changes nothing
    assert broker.workload("a1").state == "admitted"
    assert broker.started("a1", 2, 30, "node-2")
    broker.interrupted("a1", 2, "attempt 2 lost: WorkerCrashedError")
    assert broker.workload("a1").state == "failed"
    assert _last(broker, "a1") == "failed: attempt 2 lost: WorkerCrashedError; crash 2, more than 1"


def test_a_new_broker_on_the_same_database_carries_on(database_url: str) -> None:
    first = _broker(database_url, capacity=2)
    first.submit("t1", 1.0, workload_id="a1", priority="interactive", label="ft-job-1")
    first.submit("t1", 1.0, workload_id="a2")
    first.submit("t1", 1.0, workload_id="a3")
    first.serving_demand(1.0)
    before = (first.workloads(), {w: first.events(w) for w in ("a1", "a2", "a3")})

    second = _broker(database_url, capacity=2)
    second.schedule()  # nothing changed, so nothing is decided again
    assert (second.workloads(), {w: second.events(w) for w in ("a1", "a2", "a3")}) == before
    assert second.workload("a1").label == "ft-job-1"


def test_concurrent_job_and_gpu_second_quotas_hold_runs_back_and_say_why(database_url: str) -> None:
    broker = _broker(database_url, capacity=4, quotas=QuotaSettings(concurrent_jobs=2))
    for wid in ("a1", "a2", "a3"):
        broker.submit("t1", 1.0, workload_id=wid)
    broker.submit("t2", 1.0, workload_id="b1")
    # Four GPUs, yet t1 may run only two jobs at once.
    assert _states(broker) == {"a1": "admitted", "a2": "admitted", "a3": "queued", "b1": "admitted"}
    assert _last(broker, "a3") == (
        "waiting: tenant t1 runs 2 of its 2 concurrent fine-tune jobs; "
        "waits until it is back under that quota"
    )

    # GPU time is metered when a run gives its GPUs back: GPUs x seconds since its admission.
    with broker.engine.begin() as db:  # a1 was admitted an hour ago
        db.execute(
            gpu_workloads.update()
            .where(gpu_workloads.c.workload_id == "a1")
            .values(admitted_at=datetime.now(UTC) - timedelta(hours=1))
        )
    broker.finish("a1", 1, step=10)
    now = datetime.now(UTC)
    used = broker.quotas.usage("t1", now - timedelta(days=1), now + timedelta(hours=1))["gpu_seconds"]
    assert 3600 <= used < 3660
    assert _states(broker)["a3"] == "admitted"  # a slot came free

    # A tenant that spent its GPU-seconds of the period waits; the other tenant does not.
    with broker.engine.begin() as db:
        db.execute(
            quotas.insert().values(tenant_id="t1", concurrent_jobs=5, gpu_seconds=3000.0, updated_at=now)
        )
    broker.submit("t1", 1.0, workload_id="a4")
    broker.submit("t2", 1.0, workload_id="b2")
    assert _states(broker)["a4"] == "queued" and _states(broker)["b2"] == "admitted"
    assert _last(broker, "a4").startswith("waiting: tenant t1 used 36")
    assert _last(broker, "a4").endswith(
        "of its 3000 GPU-seconds in the last 30 days; waits until it is back under that quota"
    )
    assert broker.quotas.usage("t2", now - timedelta(days=1), now + timedelta(hours=1))["gpu_seconds"] == 0


def test_cpu_only_runs_need_no_gpu_and_are_never_preempted(database_url: str) -> None:
    broker = _broker(database_url, capacity=1, quotas=QuotaSettings(concurrent_jobs=1))
    broker.submit("t1", 0.0, workload_id="cpu-1")
    broker.submit("t1", 0.0, workload_id="cpu-2")
    assert _states(broker) == {"cpu-1": "admitted", "cpu-2": "queued"}  # the job quota still applies
    assert broker.started("cpu-1", 1, 0)
    assert broker.serving_demand(1.0) == 1.0  # serving takes the only GPU: nothing to preempt for it
    assert _states(broker)["cpu-1"] == "running"
    broker.finish("cpu-1", 1, step=5)
    assert _states(broker)["cpu-2"] == "admitted"


def test_requests_are_checked(database_url: str) -> None:
    broker = _broker(database_url, capacity=2)
    broker.submit("t1", 0.5, workload_id="half")
    with pytest.raises(ConflictError):
        broker.submit("t1", 0.5, workload_id="half")
    with pytest.raises(InvalidRequestError, match="whole GPUs"):
        broker.submit("t1", 1.5)
    with pytest.raises(InvalidRequestError, match="interactive or batch"):
        broker.submit("t1", 1.0, priority="serving")
    with pytest.raises(InvalidRequestError, match="replicas"):
        broker.serving_demand(1.5)
    with pytest.raises(NotFoundError):
        broker.events("half", tenant_id="t2")  # another tenant's workload does not exist for it
    assert broker.cancel("half").state == "cancelled"
    with pytest.raises(ConflictError):
        broker.cancel("half")
    assert _last(broker, "half") == "cancelled: cancelled while admitted"


# -- real runs on logical GPUs ----------------------------------------------------------------


@cache
def _toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 512, generator=generator)
    return x, x @ torch.randn(512, 64, generator=generator)


def _toy_init() -> TrainState:
    return {"w": torch.zeros(512, 64), "steps": 0}


def _toy_step(state: TrainState, step: int) -> TrainState:
    """One full-batch gradient step of a linear regression: a few milliseconds of real torch."""
    x, y = _toy_data()
    w = state["w"]
    return {"w": w - 0.05 * (x.T @ (x @ w - y)) / x.shape[0], "steps": state["steps"] + 1}


TOY = StepLoop(init=_toy_init, step=_toy_step, total_steps=1500, checkpoint_every=100)
ENDLESS = StepLoop(init=_toy_init, step=_toy_step, total_steps=10**9, checkpoint_every=100)


@cache
def _toy_reference() -> torch.Tensor:
    state = TOY.init()
    for step in range(TOY.total_steps):
        state = TOY.step(state, step)
    return state["w"]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_checkpoints_are_sealed_to_their_tenant_and_workload(
    tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    settings = Settings(storage_root=str(tmp_path / "store"))
    sealing = DataKeys.from_settings(settings).checkpoint_sealing("t1", "job-a")
    storage = (
        Storage(str(tmp_path / "store")) if where == "local" else Storage(request.getfixturevalue("s3_root"))
    )
    folder = "tenants/t1/checkpoints/job-a"
    state = {"w": torch.arange(6.0).reshape(2, 3), "steps": 7}
    assert load_checkpoint(storage, folder, sealing) is None
    save_checkpoint(storage, folder, 5, _toy_init(), sealing)
    path = save_checkpoint(storage, folder, 7, state, sealing)
    assert storage.children(folder) == ["step-000000007.pt.enc"]  # older removed
    raw = storage.read_bytes(path)
    assert raw.startswith(MAGIC) and torch.arange(6.0).numpy().tobytes() not in raw
    found = load_checkpoint(storage, folder, sealing)
    assert found is not None and found[0] == 7 and torch.equal(found[1]["w"], state["w"])
    for other in (
        DataKeys.from_settings(settings).checkpoint_sealing("t1", "job-b"),  # another run of the same tenant
        DataKeys.from_settings(settings).checkpoint_sealing("t2", "job-a"),  # another tenant's key
    ):
        with pytest.raises(DecryptionError):
            load_checkpoint(storage, folder, other)
    storage.write_bytes(f"{folder}/step-000000009.pt.enc", raw)  # a file passed off as a later step
    with pytest.raises(DecryptionError):
        load_checkpoint(storage, folder, sealing)


def _wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


def _isolated(scenario: str, tmp_path: Path, timeout: float = 150.0) -> None:
    """Run ``scenario(tmp_path)`` of this module in a fresh Python with a Ray of its own."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    code = f"from tests.actors.test_broker import {scenario}; {scenario}({str(tmp_path)!r})"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{scenario} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


def _check_finished(broker: Any, workload_id: str, settings: Settings) -> None:
    import ray

    w: Workload = ray.get(broker.workload.remote(workload_id))
    assert w.state == "finished", (w.state, [str(e) for e in ray.get(broker.events.remote(workload_id))])
    storage = Storage.of(settings)
    sealing = DataKeys.from_settings(settings).checkpoint_sealing(w.tenant_id, workload_id)
    found = load_checkpoint(storage, w.checkpoint_dir or "", sealing)
    assert found is not None
    steps, state, key = found
    assert storage.read_bytes(key).startswith(MAGIC)  # sealed at rest
    assert steps == state["steps"] == TOY.total_steps
    assert torch.allclose(state["w"], _toy_reference(), rtol=1e-4, atol=1e-5)


def serving_surge_scenario(root: str) -> None:
    """One node, two logical GPUs: a serving surge preempts the borrowing run, not the one within its
    tenant's quota; the preempted run resumes from its checkpoint when the surge ends."""
    import ray

    from actors.broker import start_broker
    from actors.broker_runner import request_serving_gpus, run_training

    torch.set_num_threads(1)
    ray.init("local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    settings = Settings(storage_root=f"{root}/store", broker=BrokerSettings(poll_s=0.05))
    broker = start_broker(settings)
    ray.get(broker.submit.remote("t1", 1.0, priority="interactive", workload_id="job-a"))
    ray.get(broker.submit.remote("t1", 1.0, priority="batch", workload_id="job-b"))  # borrows

    def progressed() -> bool:
        runs = ray.get(broker.workloads.remote(kind="training"))
        return all(w.state == "running" and (w.checkpoint_step or 0) >= 100 for w in runs)

    with ThreadPoolExecutor(2) as pool:
        runs = {
            "job-a": pool.submit(run_training, broker, "job-a", ENDLESS, settings, num_cpus=0.5),
            "job-b": pool.submit(run_training, broker, "job-b", TOY, settings, num_cpus=0.5),
        }
        _wait_for(progressed, what="both runs running past their first checkpoint")

        # The broker dies and Ray restarts it: it reads everything back from SQL.
        def snapshot() -> tuple[list[tuple[str, str, int]], list[str]]:
            runs = ray.get(broker.workloads.remote())
            events = [str(e) for w in runs for e in ray.get(broker.events.remote(w.workload_id))]
            return [(w.workload_id, w.state, w.attempt) for w in runs], events

        workloads, events = snapshot()
        ray.kill(broker, no_restart=False)
        after_workloads, after_events = snapshot()  # calls wait for the restarted actor
        assert after_workloads == workloads and after_events[: len(events)] == events

        # A serving surge: one more replica wants a whole GPU.
        assert request_serving_gpus(broker, 1.0, timeout_s=30) == 1.0
        replica = ray.remote(num_cpus=0, num_gpus=1)(_Replica).remote()
        assert ray.get(replica.gpu_ids.remote(), timeout=30)  # Ray really placed it on a freed GPU
        b: Workload = ray.get(broker.workload.remote("job-b"))
        preempted_at = b.checkpoint_step
        assert b.state == "preempted" and preempted_at and 0 < preempted_at < TOY.total_steps, b
        assert ray.get(broker.workload.remote("job-a")).state == "running"  # the in-quota run stays

        ray.kill(replica)  # the surge ends: the borrowed GPU goes back to training
        assert request_serving_gpus(broker, 0.0) == 0.0
        assert runs["job-b"].result(timeout=90) == "finished"
        ray.get(broker.cancel.remote("job-a"))
        assert runs["job-a"].result(timeout=30) == "cancelled"
    story = [e.event for e in ray.get(broker.events.remote("job-b"))]
    assert story == [
        "submitted",
        "admitted",
        "running",
        "preempted",
        "requeued",
        "waiting",
        "admitted",
        "resumed",
        "finished",
    ], story
    resumed = [str(e) for e in ray.get(broker.events.remote("job-b")) if e.event == "resumed"]
    assert f"at step {preempted_at} " in resumed[0], resumed
    _check_finished(broker, "job-b", settings)
    assert str(ray.get(broker.events.remote("job-a"))[-1]).startswith("stopped: checkpointed at step")
    ray.kill(broker)
    ray.shutdown()


def _crashy_step(state: TrainState, step: int) -> TrainState:
    """The toy step, but the first attempt's process dies at step 150 (after its checkpoint at 100)."""
    marker = Path(os.environ["ENGRAM_TEST_CRASH_MARKER"])
    if step == 150 and not marker.exists():
        marker.touch()
        os._exit(1)  # the worker process is lost: no exception, no answer
    return _toy_step(state, step)


CRASHY = StepLoop(init=_toy_init, step=_crashy_step, total_steps=1500, checkpoint_every=100)


def crash_scenario(root: str) -> None:
    """A run whose worker process dies resumes from its last checkpoint and ends as if nothing happened."""
    import ray

    from actors.broker import start_broker
    from actors.broker_runner import run_training

    os.environ["ENGRAM_TEST_CRASH_MARKER"] = f"{root}/crashed"  # Ray's workers inherit it
    torch.set_num_threads(1)
    ray.init("local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    settings = Settings(storage_root=f"{root}/store", broker=BrokerSettings(poll_s=0.05, max_failures=1))
    broker = start_broker(settings)
    ray.get(broker.submit.remote("t1", 1.0, workload_id="crashy"))
    assert run_training(broker, "crashy", CRASHY, settings, num_cpus=0.5, timeout_s=120) == "finished"
    assert Path(f"{root}/crashed").exists()
    story = [str(e) for e in ray.get(broker.events.remote("crashy"))]
    lost = [e for e in story if e.startswith("interrupted: attempt 1 lost: ")]
    assert lost and lost[0].endswith("requeued to resume from step 100 (crash 1 of 1 survivable)"), story
    assert any(e.startswith("resumed: from checkpoint") and " at step 100 " in e for e in story), story
    _check_finished(broker, "crashy", settings)
    ray.kill(broker)
    ray.shutdown()


class _Replica:
    """Stands in for a serving replica: it only holds the GPU Ray gave it."""

    def gpu_ids(self) -> list[int]:
        import ray

        return list(ray.get_gpu_ids())


def multi_node_scenario(root: str) -> None:
    """A CPU head and a GPU node: tenants share the GPUs, a borrowed GPU is reclaimed, the run resumes."""
    import ray
    from ray.cluster_utils import Cluster

    from actors.broker import start_broker
    from actors.broker_runner import run_training

    torch.set_num_threads(1)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0, "include_dashboard": False}
    )
    try:
        gpu_node = cluster.add_node(num_cpus=1, num_gpus=2)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        settings = Settings(storage_root=f"{root}/store", broker=BrokerSettings(poll_s=0.05))
        broker = start_broker(settings)
        assert ray.get(broker.capacity.remote()) == 2.0  # the pool is the cluster's GPUs
        for workload_id in ("a1", "a2"):
            ray.get(broker.submit.remote("t1", 1.0, workload_id=workload_id))

        def running(*ids: str) -> bool:
            runs = [ray.get(broker.workload.remote(w)) for w in ids]
            return all(w.state == "running" and (w.checkpoint_step or 0) >= 100 for w in runs)

        with ThreadPoolExecutor(3) as pool:
            runs = {
                w: pool.submit(run_training, broker, w, TOY, settings, num_cpus=0.5) for w in ("a1", "a2")
            }
            _wait_for(lambda: running("a1", "a2"), what="t1 running on both GPUs, one borrowed")
            ray.get(broker.submit.remote("t2", 1.0, workload_id="b1"))  # t2 wants its nominal GPU
            runs["b1"] = pool.submit(run_training, broker, "b1", TOY, settings, num_cpus=0.5)
            assert {name: run.result(timeout=90) for name, run in runs.items()} == dict.fromkeys(
                ("a1", "a2", "b1"), "finished"
            )
        a2 = [str(e) for e in ray.get(broker.events.remote("a2"))]
        assert any(e.startswith("preempted: b1 (batch) needs 1 GPU") for e in a2), a2
        assert any(e.startswith("resumed: from checkpoint") for e in a2), a2
        # Every attempt ran on the GPU node.
        starts = [
            e
            for w in ("a1", "a2", "b1")
            for e in ray.get(broker.events.remote(w))
            if e.event in ("running", "resumed")
        ]
        assert len(starts) == 4 and all(f"on node {gpu_node.node_id[:12]}" in e.message for e in starts)
        for workload_id in ("a1", "a2", "b1"):
            _check_finished(broker, workload_id, settings)
        ray.kill(broker)
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.integration
def test_a_serving_surge_preempts_the_borrowing_run_which_resumes_and_a_broker_restart_loses_nothing(
    tmp_path: Path,
) -> None:
    _isolated("serving_surge_scenario", tmp_path)


@pytest.mark.integration
def test_fair_share_reclaim_and_resume_on_a_cluster_of_a_cpu_head_and_a_gpu_node(tmp_path: Path) -> None:
    _isolated("multi_node_scenario", tmp_path)


@pytest.mark.integration
def test_a_run_whose_worker_dies_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    _isolated("crash_scenario", tmp_path)
