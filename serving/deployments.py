"""The Ray Serve application: gateway (FastAPI ingress) + retrieval + memory builder + LLM engines.

``build_app(settings)`` composes the deployments with handles; ``app`` is the builder
function that ``serve run`` / ``serve deploy`` import (see serving/serve_config.yaml);
``start_serving`` runs it on the connected (or a new local) Ray, for ``engram serve``.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from actors import broker_name, start_broker
from cluster import ConfigError, Settings, ensure_ray, load_settings, replica_gpus
from serving.app import create_app
from serving.builder import MemoryBuilder
from serving.context import GatewayContext
from serving.llm import LLMServer, engine_env
from serving.retrieval import Retriever


@serve.ingress()
class Gateway:
    """Authenticates, validates and routes; retrieval and building happen in their own deployments."""

    def __init__(
        self,
        settings: Settings,
        retrieval: DeploymentHandle,
        builder: DeploymentHandle,
        llms: dict[str, DeploymentHandle],
    ) -> None:
        self.ctx = GatewayContext.create(settings, retrieval, builder, llms)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.ctx)


def llm_autoscaling(settings: Settings, deployment: str, *, gpus: float) -> dict[str, Any]:
    """Autoscaling of an LLM deployment whose replicas take ``gpus`` each; on GPUs, replicas only
    on GPUs the broker admits to serving."""
    llm = settings.llm
    config: dict[str, Any] = {
        "min_replicas": llm.min_replicas,
        "max_replicas": llm.max_replicas,
        "target_ongoing_requests": llm.max_num_seqs,
    }
    if gpus > 0:
        config["policy"] = {
            "policy_function": "serving.gpu_autoscaling:BrokerGatedPolicy",
            "policy_kwargs": {
                "deployment": deployment,
                "replica_gpus": gpus,
                "broker_name": broker_name(settings),
            },
        }
    return config


def llm_deployment(settings: Settings, base_model: str) -> Application:
    """One autoscaling vLLM deployment per base model; its replicas ask Ray for the GPUs the
    model's settings name (``replica_gpus``), so pending replicas are demand an autoscaler sees."""
    llm = settings.llm
    spec = llm.base_model(base_model)
    gpus = replica_gpus(spec)
    name = f"LLM-{base_model}"
    options: dict[str, Any] = {"num_cpus": llm.num_cpus}
    if gpus > 0:
        options["num_gpus"] = gpus
        if spec.accelerator_type:
            options["accelerator_type"] = spec.accelerator_type
    else:
        options["runtime_env"] = {"env_vars": engine_env(settings)}
    deployment = serve.deployment(
        name=name,
        ray_actor_options=options,
        max_ongoing_requests=llm.max_num_seqs * 2,
        autoscaling_config=llm_autoscaling(settings, name, gpus=gpus),
        health_check_period_s=10,
    )(LLMServer)
    return deployment.bind(settings, base_model)


def build_app(settings: Settings) -> Application:
    """The application; when a model is served on GPUs the GPU broker (a detached control-plane
    actor) is started with it, so the LLM deployments' autoscaler can take GPUs back from training."""
    api = settings.api
    llms = {name: llm_deployment(settings, name) for name in settings.llm.base_models}
    if any(replica_gpus(spec) > 0 for spec in settings.llm.base_models.values()):
        start_broker(settings)
    retrieval = serve.deployment(
        name="Retrieval",
        ray_actor_options={"num_cpus": 0.25},
        max_ongoing_requests=16,
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
        max_ongoing_requests=256,
        autoscaling_config={
            "min_replicas": api.gateway_replicas,
            "max_replicas": max(api.gateway_replicas, 4),
            "target_ongoing_requests": 16,
        },
    )(Gateway)
    return gateway.bind(settings, retrieval.bind(settings), builder.bind(settings), llms)


def app(args: dict[str, Any]) -> Application:
    """Application builder for ``serve deploy serving/serve_config.yaml`` and ``serve run
    serving.deployments:app config=engram.yaml``: the settings from ``config`` (or the node's
    ENGRAM_CONFIG and ENGRAM_* variables), secrets from the environment or the files the settings
    name. A deployed app with no admin key could create no tenant: it refuses to start."""
    settings = load_settings(args.get("config"))
    if settings.api.admin_key is None:
        raise ConfigError(
            "api.admin_key is not set: give the nodes ENGRAM_ADMIN_KEY, or name a file holding it in "
            "api.admin_key_file; without it no tenant can be created",
            param="api.admin_key",
        )
    return build_app(settings)


def start_serving(settings: Settings, *, wait: bool = True) -> str:
    """Run the Engram Serve application on the connected (or a new local) Ray; returns its URL once
    every deployment is up, or at once with ``wait=False`` (a replica may wait for a GPU node)."""
    # The always-on deployments hold about one logical CPU; a local Ray declares two more than
    # the machine has so that Ray Data builds started by the builder can still schedule.
    ensure_ray(settings, num_cpus=(os.cpu_count() or 1) + 2)
    serve.start(
        proxy_location=settings.api.proxy_location,
        http_options={"host": settings.api.host, "port": settings.api.port},
    )
    app = serve.RunTarget(build_app(settings), name="engram", route_prefix="/")
    serve.run_many([app], wait_for_ingress_deployment_creation=wait, wait_for_applications_running=wait)
    return f"http://{settings.api.host}:{settings.api.port}"
