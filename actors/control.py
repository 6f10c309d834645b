"""Where the control-plane actors live in Ray: one namespace, one name each, detached, restarted.

Every control-plane actor is started with ``control_actor_options``: a named, detached actor in
``NAMESPACE`` that Ray restarts after a failure (``max_restarts=-1``) and whose calls in flight
are retried on the restarted actor (``max_task_retries=-1``). Such an actor keeps its state in
SQL and reloads it in its constructor, so a restart loses nothing. It asks for no CPU: it only
makes decisions, and must schedule on a machine whose CPUs are all taken by work.
"""

from __future__ import annotations

import hashlib
from typing import Any

NAMESPACE = "engram"
BROKER = "gpu-broker"
FINE_TUNER = "fine-tuner"


def actor_name(kind: str, database_url: str) -> str:
    """The name of the ``kind`` actor that decides for the control database ``database_url``: one
    per database, so deployments (or test runs) sharing a Ray cluster never reach each other's."""
    return f"{kind}-{hashlib.sha256(database_url.encode()).hexdigest()[:12]}"


def unwrap(ref: Any) -> Any:
    """``ray.get`` of a control-plane actor call; an error the actor raised (ConflictError,
    NotFoundError, ...) comes back as itself, not wrapped in a RayTaskError."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        raise (e.cause or e) from None


def control_actor_options(name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    """Ray ``.options(...)`` of the control-plane actor ``name``; a second start gets the running one."""
    return {
        "name": name,
        "namespace": namespace,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "max_task_retries": -1,
        "num_cpus": 0,
    }
