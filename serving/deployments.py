"""The Ray Serve application: gateway (FastAPI ingress) + retrieval + memory builder.

``build_app(settings)`` composes the deployments with handles; ``app`` is the builder
function that ``serve run`` / ``serve deploy`` import (see serving/serve_config.yaml).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from actors.tenants import TenantDirectory
from cluster.settings import Settings, load_settings
from serving.app import create_app
from serving.builder import MemoryBuilder
from serving.context import GatewayContext
from serving.retrieval import Retriever


@serve.ingress()
class Gateway:
    """Authenticates, validates and routes; retrieval and building happen in their own deployments."""

    def __init__(self, settings: Settings, retrieval: DeploymentHandle, builder: DeploymentHandle) -> None:
        tenants = TenantDirectory(settings.api.control_db_url(settings.storage_root))
        self.ctx = GatewayContext(settings, tenants, retrieval, builder)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.ctx)


def build_app(settings: Settings) -> Application:
    api = settings.api
    retrieval = serve.deployment(
        name="Retrieval",
        ray_actor_options={"num_cpus": 0.25},
        autoscaling_config={
            "min_replicas": 1,
            "max_replicas": api.retrieval_max_replicas,
            "target_ongoing_requests": 4,
        },
    )(Retriever)
    builder = serve.deployment(name="Builder", num_replicas=1, ray_actor_options={"num_cpus": 0.5})(
        MemoryBuilder
    )
    gateway = serve.deployment(
        name="Gateway",
        ray_actor_options={"num_cpus": 0.25},
        autoscaling_config={
            "min_replicas": api.gateway_replicas,
            "max_replicas": max(api.gateway_replicas, 4),
            "target_ongoing_requests": 16,
        },
    )(Gateway)
    return gateway.bind(settings, retrieval.bind(settings), builder.bind(settings))


def app(args: dict[str, Any]) -> Application:
    """Application builder for ``serve run serving.deployments:app config=engram.yaml``."""
    return build_app(load_settings(args.get("config")))
