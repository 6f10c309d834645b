"""Running what the GPU broker admits: training runs that stop when preempted and resume, serving demand.

A training run is a ``StepLoop``: a state built by ``init`` and a ``step`` function. The broker
knows nothing of it. ``run_training`` drives one submitted workload to its end:

1. wait until the broker admits it (``GPUBroker.lease``);
2. run an *attempt* as a Ray task that asks for the granted GPUs (``num_gpus=lease.gpus``), so
   Ray places it on a GPU node; the attempt loads the newest checkpoint in the lease's folder (if
   any), runs steps, saves a checkpoint every ``checkpoint_every`` steps, and every ``poll_s``
   asks the broker whether to stop: preempted or cancelled, it saves a checkpoint at that step
   boundary, reports it (``GPUBroker.stopped``) and returns, which gives its GPUs back to Ray;
3. after a preemption, wait for the next admission and resume from the checkpoint.

Checkpoints are encrypted at rest with the tenant's data key (``cluster.crypto``), each file bound
to its tenant, workload and step; the state is serialized and sealed in memory, so no plaintext
checkpoint touches storage.

A fine-tuning recipe plugs in either as a ``StepLoop`` or, for a loop of its own (Ray Train),
through the same broker calls: take the lease, ``started``, poll ``should_stop`` at step
boundaries, ``checkpointed`` / ``stopped`` / ``finish``.

The serving side asks for GPUs with ``request_serving_gpus`` before it places more replicas;
training is preempted for it and the call returns once the GPUs are the deployment's.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayError, RayTaskError

from actors.broker import TERMINAL, Lease
from actors.control import unwrap
from actors.keys import DataKeys
from cluster import Settings, Storage, crypto

TrainState = dict[str, Any]
_CHECKPOINT = re.compile(r"^step-(\d{9})\.pt\.enc$")


@dataclass(frozen=True)
class StepLoop:
    """A training run as the broker's runner sees it.

    ``init()`` builds the state before step 0; ``step(state, i)`` runs step ``i`` and returns the
    state after it. The state is saved with ``torch.save`` and loaded with ``weights_only=True``,
    so it holds tensors, numbers, strings and lists/dicts of them. Both callables are pickled
    into Ray tasks: define them at module level.
    """

    init: Callable[[], TrainState]
    step: Callable[[TrainState, int], TrainState]
    total_steps: int
    checkpoint_every: int = 50


def save_checkpoint(
    storage: Storage, folder: str, step: int, state: TrainState, sealing: crypto.Sealing
) -> str:
    """Write the state after ``step`` steps, sealed, atomically as ``<folder>/step-<n>.pt.enc`` (a
    storage key); older ones are removed. Returns its key."""
    import torch

    name = f"step-{step:09d}.pt"
    target = f"{folder}/{name}{crypto.SUFFIX}"
    plain = io.BytesIO()
    torch.save(state, plain)
    plain.seek(0)
    with storage.open_output(target) as out:
        crypto.encrypt_stream(plain, out, sealing.key, f"{sealing.context}/{name}")
    for old in storage.children(folder):
        if _CHECKPOINT.match(old) and f"{folder}/{old}" != target:
            storage.delete(f"{folder}/{old}")
    return target


def load_checkpoint(
    storage: Storage, folder: str, sealing: crypto.Sealing
) -> tuple[int, TrainState, str] | None:
    """The newest checkpoint under ``folder`` (a storage key): (steps done, state, key); None when
    there is none.

    DecryptionError for a file sealed with another key or for another tenant, workload or step."""
    import torch

    found = sorted(
        (int(m.group(1)), name) for name in storage.children(folder) if (m := _CHECKPOINT.match(name))
    )
    if not found:
        return None
    step, newest = found[-1]
    key = f"{folder}/{newest}"
    plain = io.BytesIO()
    with storage.open_input(key) as sealed:
        name = newest.removesuffix(crypto.SUFFIX)
        crypto.decrypt_stream(sealed, plain, sealing.key, f"{sealing.context}/{name}", name=storage.uri(key))
    plain.seek(0)
    return step, torch.load(plain, weights_only=True), key


def _call(broker: ActorHandle, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call a broker method and wait for its answer (retried by Ray across broker restarts)."""
    return unwrap(getattr(broker, method).remote(*args, **kwargs))


def run_attempt(
    broker: ActorHandle, loop: StepLoop, lease: Lease, sealing: crypto.Sealing, storage: Storage
) -> str:
    """One admission's run of ``loop`` (inside a Ray task holding ``lease.gpus``).

    Returns "finished", "stopped" (preempted or cancelled, after a checkpoint) or "stale" (the
    broker no longer grants this attempt).
    """
    wid, attempt = lease.workload_id, lease.attempt
    found = load_checkpoint(storage, lease.checkpoint_dir, sealing)
    step, state = (found[0], found[1]) if found else (0, loop.init())
    node = ray.get_runtime_context().get_node_id()
    if not _call(broker, "started", wid, attempt, step, node):
        return "stale"
    asked = time.monotonic()
    while step < loop.total_steps:
        if time.monotonic() - asked >= lease.poll_s:
            asked = time.monotonic()
            if _call(broker, "should_stop", wid, attempt):
                path = save_checkpoint(storage, lease.checkpoint_dir, step, state, sealing)
                _call(broker, "stopped", wid, attempt, step, path)
                return "stopped"
        state = loop.step(state, step)
        step += 1
        if step % loop.checkpoint_every == 0 and step < loop.total_steps:
            path = save_checkpoint(storage, lease.checkpoint_dir, step, state, sealing)
            _call(broker, "checkpointed", wid, attempt, step, path)
    path = save_checkpoint(storage, lease.checkpoint_dir, step, state, sealing)
    _call(broker, "finish", wid, attempt, step=step, checkpoint=path)
    return "finished"


def run_training(
    broker: ActorHandle,
    workload_id: str,
    loop: StepLoop,
    settings: Settings,
    *,
    num_cpus: float = 1.0,
    timeout_s: float | None = None,
) -> str:
    """Drive a submitted training workload until it is finished, failed or cancelled; returns that state.

    ``settings`` give the master key that opens the tenant's data key, which seals the checkpoints.

    Blocks: call it from a thread, or as a Ray task (``ray.remote(num_cpus=0)(run_training)``).
    Each admission runs as a Ray task asking for the granted GPUs and ``num_cpus`` CPUs; an
    attempt that raises fails the workload with the error as its reason; an attempt whose worker
    or node is lost is requeued by the broker to resume from its checkpoint (``max_failures``).
    """
    attempt_task = ray.remote(run_attempt)
    poll_s: float = _call(broker, "poll_interval")
    tenant_id = _call(broker, "workload", workload_id).tenant_id
    sealing = DataKeys.from_settings(settings).checkpoint_sealing(tenant_id, workload_id)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        state = _call(broker, "workload", workload_id).state
        if state in TERMINAL:
            return str(state)
        lease: Lease | None = _call(broker, "lease", workload_id)
        if lease is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"workload {workload_id} still {state} after {timeout_s} s")
            time.sleep(poll_s)  # polling the broker: its state is in SQL, not in a waitable object
            continue
        run = attempt_task.options(
            num_gpus=lease.gpus, num_cpus=num_cpus, max_retries=0, name=f"train-{workload_id}-{lease.attempt}"
        )
        try:
            ray.get(run.remote(broker, loop, lease, sealing, Storage.of(settings)))
        except RayTaskError as e:  # the run itself raised: trying again would raise again
            error = f"attempt {lease.attempt} failed: {e.cause!r}" if e.cause else str(e)
            _call(broker, "finish", workload_id, lease.attempt, error=error[:2000])
        except RayError as e:  # its worker or node was lost: resume from the last checkpoint
            reason = f"attempt {lease.attempt} lost: {type(e).__name__}"
            _call(broker, "interrupted", workload_id, lease.attempt, reason)


def request_serving_gpus(
    broker: ActorHandle,
    gpus: float,
    *,
    deployment: str = "llm",
    replica_gpus: float = 1.0,
    timeout_s: float = 60.0,
) -> float:
    """Serving's autoscaler asks for ``gpus`` for ``deployment`` (in replicas of ``replica_gpus``).

    Training is preempted as needed; returns the GPUs the deployment holds once it has them all,
    or what it holds after ``timeout_s``. Lowering ``gpus`` gives GPUs back to training at once.
    """
    granted: float = _call(broker, "serving_demand", gpus, deployment=deployment, replica_gpus=replica_gpus)
    poll_s: float = _call(broker, "poll_interval")
    deadline = time.monotonic() + timeout_s
    while granted < gpus - 1e-6 and time.monotonic() < deadline:
        time.sleep(poll_s)  # preempted runs are checkpointing; the broker admits serving when they stop
        granted = _call(broker, "serving_admitted", deployment)
    return granted
