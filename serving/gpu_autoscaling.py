"""Serve autoscaling of GPU LLM deployments through the GPU broker: serving first, training borrows.

``BrokerGatedPolicy`` is the Ray Serve autoscaling policy of an LLM deployment on a GPU
cluster. Each tick it takes Serve's own queue-length decision, tells the broker the GPUs that
many replicas need (``GPUBroker.serving_demand``), and answers with the replicas the broker has
admitted: when the GPUs are held by borrowing training runs, the broker preempts them (they
checkpoint and stop) and the replicas come a tick or two later, instead of pending in Ray's
queue beside training that holds their GPUs. When load falls, the freed GPUs go back to
training at once. Serve then applies its usual delays and min/max bounds.

The policy runs in the Serve controller: it asks the broker at most every ``refresh_s``
(or at once when the wanted number changes) and waits at most ``timeout_s``. With no broker
running, or one that does not answer, Serve decides alone (serving is never blocked on it).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError, RayError
from ray.serve.autoscaling_policy import replica_queue_length_autoscaling_policy
from ray.serve.config import AutoscalingContext

from actors import NAMESPACE, get_broker

logger = logging.getLogger(__name__)


class BrokerGatedPolicy:
    """Serve's replica-queue-length policy, capped by what the GPU broker admits."""

    def __init__(
        self,
        deployment: str,
        replica_gpus: float,
        broker_name: str,
        refresh_s: float = 1.0,
        timeout_s: float = 1.0,
        namespace: str = NAMESPACE,
    ) -> None:
        self.deployment = deployment
        self.replica_gpus = replica_gpus
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.broker_name = broker_name
        self.namespace = namespace
        self._broker: ActorHandle | None = None
        self._asked: tuple[int, float] | None = None  # (replicas wanted, when)
        self._admitted: int | None = None

    def __call__(self, ctx: AutoscalingContext) -> tuple[int, dict[str, Any]]:
        desired, state = replica_queue_length_autoscaling_policy(ctx)
        wanted = min(
            max(math.ceil(desired - 1e-9), ctx.capacity_adjusted_min_replicas),
            ctx.capacity_adjusted_max_replicas,
        )
        admitted = self.admitted(wanted)
        if admitted is None:
            return wanted, state
        return min(wanted, max(admitted, ctx.capacity_adjusted_min_replicas)), state

    def admitted(self, wanted: int) -> int | None:
        """Replicas the broker admits of ``wanted`` (telling it the demand); None: no broker answer."""
        now = time.monotonic()
        fresh = self._asked is not None and self._asked[0] == wanted and now - self._asked[1] < self.refresh_s
        if fresh:
            return self._admitted
        broker = self._find_broker()
        if broker is None:
            return None
        demand: Any = broker.serving_demand.remote(
            wanted * self.replica_gpus, deployment=self.deployment, replica_gpus=self.replica_gpus
        )
        try:
            gpus: float = ray.get(demand, timeout=self.timeout_s)
        except (GetTimeoutError, RayError) as e:
            logger.warning("GPU broker did not answer for %s (%s); Serve decides alone", self.deployment, e)
            self._broker = None
            return None
        self._asked = (wanted, now)
        self._admitted = math.floor(gpus / self.replica_gpus + 1e-6)
        return self._admitted

    def _find_broker(self) -> ActorHandle | None:
        if self._broker is None:
            try:
                self._broker = get_broker(self.broker_name, self.namespace)
            except ValueError:
                return None
        return self._broker
