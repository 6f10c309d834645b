"""What the hops of the HTTP path cost at concurrency 8: the engine behind zero, one and two Serve hops.

Four variants, one after the other in one run, the same streamed requests (base model, greedy,
a fixed ``max_tokens``, concurrency 8), each ``--rounds`` rounds of ``--requests``:

1. direct: ``LLMServer`` (vLLM's AsyncLLM) in this process, as in bench.serving;
2. one_hop: a Serve ingress replica that holds the engine itself (HAProxy -> replica -> engine);
3. two_hop: a bare ingress (no auth, memory or metering) -> the LLM deployment of Engram -> engine;
4. engram: the Engram application (gateway -> LLM deployment -> engine).

one_hop and two_hop stream the same SSE events as Engram's chat route. The difference between
them is the cost of the gateway -> LLM replica hop; between two_hop and engram, the cost of the
gateway's own work. Reports each variant's output tokens/s per round, the median and its ratio to
direct, and the CPU per request by role of the median round (bench.serving's roles).

    .venv/bin/python -m bench.serving_hops --rounds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request  # here, not in the functions: FastAPI reads the annotations from globals
from fastapi.responses import StreamingResponse

from bench.common import free_port, json_stdout, scratch
from bench.serving import (
    ADMIN,
    BASE,
    Messages,
    Sample,
    chat_body,
    client,
    console,
    in_process,
    messages,
    run_load,
    stream_chat,
    tenant_key,
)
from cluster import Settings, load_settings
from serving import Generation, LLMServer

CONCURRENCY = 8
Send = Callable[[Messages], Awaitable[Sample]]


async def rounds(send: Send, variant: str, rounds: int, requests: int) -> dict[str, Any]:
    """``rounds`` loads of ``requests`` at concurrency 8, after an untimed warm-up."""

    def load(name: str, n: int) -> Awaitable[dict[str, Any]]:
        return run_load(lambda i: send(messages(name, i)), n, CONCURRENCY)

    await load(f"{variant}-warmup", 2 * CONCURRENCY)
    results = [await load(f"{variant}-{r}", requests) for r in range(rounds)]
    per_round = [r["output_tokens_per_s"] for r in results]
    median = sorted(results, key=lambda r: r["output_tokens_per_s"])[len(results) // 2]
    console.log(f"{variant}: {per_round} tokens/s")
    return {
        "output_tokens_per_s": per_round,
        "median_output_tokens_per_s": statistics.median(per_round),
        "median_round": median,
    }


def generation(body: dict[str, Any]) -> Generation:
    return Generation(
        messages=body["messages"],
        max_tokens=body["max_tokens"],
        min_tokens=body["min_tokens"],
        temperature=body["temperature"],
    )


async def events(body: dict[str, Any], chunks: AsyncIterator[Any]) -> AsyncIterator[str]:
    """Engram's SSE events for ``chunks`` (serving.chat), with no memory and no metering."""
    from serving.chat import _sse

    first = await anext(aiter(chunks))
    head = {"id": "chatcmpl-bench", "created": int(time.time()), "model": body["model"]}
    async for event in _sse(head, {"memory_ids": []}, first, chunks, True, lambda _last: None):
        yield event


def one_hop(settings: Settings) -> Any:
    """An ingress replica with the engine in it, on the LLM deployment's resources."""
    from ray import serve

    from serving import engine_env

    api = FastAPI()

    @serve.ingress(api)
    class OneHop:
        def __init__(self) -> None:
            self.llm = LLMServer(settings, BASE)

        @api.post("/v1/chat/completions")
        async def chat(self, request: Request) -> StreamingResponse:
            body = await request.json()
            chunks = self.llm.generate(generation(body))
            return StreamingResponse(events(body, chunks), media_type="text/event-stream")

    options = {"num_cpus": settings.llm.num_cpus, "runtime_env": {"env_vars": engine_env(settings)}}
    gateway = serve.deployment(name="Gateway", ray_actor_options=options, max_ongoing_requests=256)
    return gateway(OneHop).bind()


def two_hop(settings: Settings) -> Any:
    """A bare ingress in front of Engram's LLM deployment, called as Engram's gateway calls it."""
    from ray import serve
    from ray.serve.handle import DeploymentHandle

    from serving import LLM, connect
    from serving.deployments import llm_deployment

    api = FastAPI()

    @serve.ingress(api)
    class TwoHop:
        def __init__(self, llm: DeploymentHandle) -> None:
            self.llm = connect(llm, LLM)

        @api.post("/v1/chat/completions")
        async def chat(self, request: Request) -> StreamingResponse:
            body = await request.json()
            chunks = self.llm.generate(generation(body))
            return StreamingResponse(events(body, chunks), media_type="text/event-stream")

    gateway = serve.deployment(name="Gateway", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=256)
    return gateway(TwoHop).bind(llm_deployment(settings, BASE))


async def direct(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    llm = LLMServer(settings, BASE)

    async def send(chat: Messages) -> Sample:
        request = Generation(chat, max_tokens=args.max_tokens, min_tokens=args.max_tokens, temperature=0.0)
        return await in_process(llm, request)

    try:
        return await rounds(send, "direct", args.rounds, args.requests)
    finally:
        llm.shutdown()


async def over_http(url: str, variant: str, tenant: str | None, args: argparse.Namespace) -> dict[str, Any]:
    async with client(url) as http:
        headers = {} if tenant is None else await tenant_key(http, tenant)

        def send(chat: Messages) -> Awaitable[Sample]:
            return stream_chat(http, headers, chat_body(BASE, chat, args.max_tokens))

        return await rounds(send, variant, args.rounds, args.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=6, help="timed loads per variant")
    parser.add_argument("--requests", type=int, default=32, help="requests per load")
    parser.add_argument("--max-tokens", type=int, default=64, help="completion length of each request")
    args = parser.parse_args()
    stdout = json_stdout()

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    from cluster import ensure_ray
    from serving import build_app

    settings = load_settings(
        storage_root=scratch("engram-serving-hops-"),
        api={"admin_key": ADMIN, "port": free_port()},
        llm={"min_replicas": 1, "max_replicas": 1},
    )
    results = {"direct": asyncio.run(direct(settings, args))}
    ensure_ray(settings, num_cpus=(os.cpu_count() or 1) + 2)  # as serving.start_serving
    serve.start(http_options={"host": settings.api.host, "port": settings.api.port})
    url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        for variant, app, tenant in (
            ("one_hop", one_hop(settings), None),
            ("two_hop", two_hop(settings), None),
            ("engram", build_app(settings), f"bench-{secrets.token_hex(4)}"),
        ):
            serve.run(app, name="engram", route_prefix="/")
            results[variant] = asyncio.run(over_http(url, variant, tenant, args))
            serve.delete("engram")
    finally:
        serve.shutdown()
        ray.shutdown()
    base = results["direct"]["median_output_tokens_per_s"]
    ratios = {f"{v}_vs_direct": round(r["median_output_tokens_per_s"] / base, 3) for v, r in results.items()}
    del ratios["direct_vs_direct"]
    report = {"rounds": args.rounds, "requests": args.requests, "max_tokens": args.max_tokens}
    print(json.dumps({**report, **results, **ratios}), file=stdout, flush=True)


if __name__ == "__main__":
    main()
