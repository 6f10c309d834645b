"""LLM serving throughput and time-to-first-token: Serve over HTTP against vLLM in-process.

One run, two phases over the same prompts (greedy, a fixed ``max_tokens``):

1. direct: ``LLMServer`` (vLLM's AsyncLLM) in this process, no HTTP, no Serve;
2. http: the Engram Serve app on a local Ray, streaming ``POST /v1/chat/completions``.

The direct engine is shut down before Serve starts, so the two never compete for the machine.
Each phase runs the base model at concurrency 1 and 8, and a mix of 4 LoRA adapters (round
robin) at concurrency 8. The http phase then measures memory augmentation: the same questions
of one user with memory on and with ``"memory": false``, alternated, at concurrency 1.

Output tokens/s = completion tokens (engine counts; over HTTP from the usage event) / wall
time of the scenario. TTFT = from sending a request to its first streamed chunk. Each request
text carries its scenario and index, so no request hits another's prefix cache. Each load also
gives the CPU time per request of each role (the engine core, the LLM replica, the gateway,
HAProxy, this process, the rest) and ``engine_cores``, the cores the engine core kept busy: where
the HTTP path's own work goes, and how much of the time the engine waited for it.

The HTTP client is aiohttp, as in vLLM's own serving benchmark: it shares the machine with the
server, and httpx took 2.4 ms of CPU per streamed request here against aiohttp's 1 ms.

Prints one JSON object (progress goes to stderr):

    .venv/bin/python -m bench.serving --requests 32 --max-tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from rich.console import Console

from actors import Adapter, ModelRegistry
from bench.common import free_port, json_stdout, percentiles, scratch, served
from cluster import Settings, load_settings
from serving import Generation, LLMServer
from training import ensure_base_model, random_adapter

ADMIN = "bench-admin-key-0123456789"
BASE = "engram-tiny"
ADAPTERS = 4
USER = "mia"
TARGETS = {"serve_vs_direct": 0.85, "adapters_vs_base": 0.6, "memory_ttft_added_p50_ms": 30.0}
PROMPTS = (
    "What is a good way to start learning the piano as an adult?",
    "Give me three ideas for a quick weeknight dinner.",
    "How do I keep basil alive on a windowsill?",
    "Explain compound interest in two sentences.",
    "What should I pack for a weekend hiking trip?",
    "Write a short thank-you note to a colleague.",
    "Why is the sky blue?",
    "Suggest a name for a small bakery by the sea.",
    "How can I sleep better when travelling across time zones?",
    "What are the rules of chess castling?",
    "Summarise the plot of a heist movie in one line.",
    "Which houseplants need very little light?",
    "How do I politely decline a meeting invitation?",
    "What is the difference between weather and climate?",
    "Recommend a stretching routine for desk workers.",
    "How long should I boil an egg for a soft yolk?",
)
MEMORY_FACTS = (
    "I moved to Lisbon last month with my partner Tom",
    "I work as a nurse at the children's hospital",
    "I am allergic to peanuts and shellfish",
    "My daughter Ana just turned seven",
    "I prefer tea over coffee, green tea mostly",
    "I am training for a half marathon in October",
    "I play the cello in a community orchestra",
    "We adopted a grey cat called Pixel",
    "I am learning Portuguese on weekday evenings",
    "I drive an old blue Volvo estate",
)
MEMORY_QUESTIONS = (
    "What should I cook for dinner tonight?",
    "Any tips for my training this week?",
    "Which city events would I enjoy this weekend?",
    "What gift could I buy for my daughter?",
    "How can I practise my language lessons?",
    "What drink would you recommend this afternoon?",
    "How do I keep my pet entertained indoors?",
    "What music could I rehearse next?",
)

console = Console(stderr=True)
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Sample:
    """One streamed request: time to its first chunk, and the completion tokens it produced."""

    ttft_ms: float
    tokens: int
    prompt_tokens: int
    memories: int = 0  # memories packed into the prompt (http, memory scenario)


# Sends one chat request: messages, and the adapter index (None: the base model).
Send = Callable[[Messages, int | None], Awaitable[Sample]]


def register_adapters(settings: Settings, tenant: str) -> list[Adapter]:
    """``ADAPTERS`` random adapters of the base model, registered as ``ft:<base>:<tenant>:a<k>``."""
    base_dir = ensure_base_model(settings, BASE)
    registry = ModelRegistry.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="engram-bench-adapters-") as folder:
        return [
            registry.register_adapter(
                tenant, BASE, f"a{k}", random_adapter(base_dir, Path(folder) / f"a{k}", seed=k + 1)
            )
            for k in range(ADAPTERS)
        ]


def messages(scenario: str, i: int, prompts: Sequence[str] = PROMPTS) -> Messages:
    """Request ``i`` of a scenario: a fixed prompt, tagged so that it is unique in the run."""
    return [{"role": "user", "content": f"[{scenario} {i}] {prompts[i % len(prompts)]}"}]


def summary(samples: list[Sample], wall_s: float, concurrency: int) -> dict[str, Any]:
    tokens = sum(s.tokens for s in samples)
    ttft = percentiles([s.ttft_ms for s in samples])
    return {
        "requests": len(samples),
        "concurrency": concurrency,
        "output_tokens": tokens,
        "wall_s": round(wall_s, 3),
        "output_tokens_per_s": round(tokens / wall_s, 1),
        "ttft_p50_ms": ttft["p50_ms"],
        "ttft_p95_ms": ttft["p95_ms"],
    }


# Processes by role, from their command lines (vLLM titles its engine process VLLM::EngineCore).
ROLES = (
    ("VLLM::EngineCore", "engine"),
    ("ServeReplica:engram:LLM-", "llm_replica"),
    ("ServeReplica:engram:Gateway", "gateway"),
    ("bin/haproxy", "haproxy"),
)


def cpu_seconds() -> Counter[str]:
    """CPU seconds so far of this process and all it started (Ray, Serve's replicas, the engines),
    by role: ``bench`` is this process (the HTTP client; in-process, also vLLM's front end), ``other``
    what no role names (Ray's own processes, the other replicas)."""
    me = psutil.Process()
    totals: Counter[str] = Counter()
    for process in [me, *me.children(recursive=True)]:
        try:
            with process.oneshot():
                times = process.cpu_times()
                title = " ".join(process.cmdline())
        except psutil.Error:  # ended meanwhile
            continue
        role = "bench" if process.pid == me.pid else next((r for k, r in ROLES if k in title), "other")
        totals[role] += times.user + times.system
    return totals


async def run_load(one: Callable[[int], Awaitable[Sample]], n: int, concurrency: int) -> dict[str, Any]:
    """Requests ``one(0..n-1)``, at most ``concurrency`` in flight, summarised, with the CPU time each
    role spent per request and the cores the engine kept busy."""
    indexes = iter(range(n))  # shared by the workers: each index is taken once
    samples: list[Sample] = []

    async def worker() -> None:
        for i in indexes:
            samples.append(await one(i))

    cpu = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall_s = time.perf_counter() - started
    spent = cpu_seconds()
    spent.subtract(cpu)
    return {
        **summary(samples, wall_s, concurrency),
        "engine_cores": round(spent["engine"] / wall_s, 3),
        "cpu_ms_per_request": {role: round(1000 * spent[role] / n, 2) for role in sorted(spent)},
    }


async def throughput_scenarios(send: Send, requests: int, phase: str) -> dict[str, dict[str, Any]]:
    """Base model at concurrency 1 and 8, the adapter mix at 8; after an untimed warm-up of both."""

    async def load(name: str, concurrency: int, adapters: bool, n: int) -> dict[str, Any]:
        def one(i: int) -> Awaitable[Sample]:
            return send(messages(name, i), i % ADAPTERS if adapters else None)

        result = await run_load(one, n, concurrency)
        console.log(
            f"{phase} {name}: {result['output_tokens_per_s']} tokens/s, "
            f"TTFT p50 {result['ttft_p50_ms']} ms p95 {result['ttft_p95_ms']} ms, "
            f"engine busy {result['engine_cores']} cores, CPU ms/request {result['cpu_ms_per_request']}"
        )
        return result

    await load("warmup", 8, False, 16)
    await load("warmup-adapters", 8, True, 2 * ADAPTERS)
    return {
        "base_c1": await load("base_c1", 1, False, requests),
        "base_c8": await load("base_c8", 8, False, requests),
        "adapters_c8": await load("adapters_c8", 8, True, requests),
    }


async def in_process(llm: LLMServer, request: Generation) -> Sample:
    """One completion on an in-process engine: time to its first chunk, and its token counts."""
    sent = time.perf_counter()
    first, last = 0.0, None
    async for chunk in llm.generate(request):
        first = first or time.perf_counter()
        last = chunk
    assert last is not None
    return Sample((first - sent) * 1000, last.completion_tokens, last.prompt_tokens)


async def direct_phase(
    settings: Settings, adapters: list[Adapter], requests: int, max_tokens: int
) -> dict[str, Any]:
    """The scenarios on vLLM in this process (started here, shut down at the end)."""
    started = time.perf_counter()
    llm = LLMServer(settings, BASE)
    engine_start_s = round(time.perf_counter() - started, 1)
    console.log(f"direct engine up in {engine_start_s}s")

    async def send(chat: Messages, adapter: int | None) -> Sample:
        request = Generation(
            messages=chat,
            max_tokens=max_tokens,
            min_tokens=max_tokens,
            temperature=0.0,
            adapter=None if adapter is None else adapters[adapter],
        )
        return await in_process(llm, request)

    try:
        return {"engine_start_s": engine_start_s, **await throughput_scenarios(send, requests, "direct")}
    finally:
        llm.shutdown()


def client(url: str) -> aiohttp.ClientSession:
    """The HTTP client of the benches, for the served app at ``url``."""
    timeout = aiohttp.ClientTimeout(total=300)
    return aiohttp.ClientSession(url, timeout=timeout, connector=aiohttp.TCPConnector(limit=32))


def chat_body(model: str, chat: Messages, max_tokens: int) -> dict[str, Any]:
    """A greedy chat request of exactly ``max_tokens`` completion tokens."""
    limits = {"max_tokens": max_tokens, "min_tokens": max_tokens}
    return {"model": model, "messages": chat, **limits, "temperature": 0}


async def stream_chat(http: aiohttp.ClientSession, headers: dict[str, str], body: dict[str, Any]) -> Sample:
    """One streamed chat completion: TTFT at its first event, tokens from its usage event."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    sent = time.perf_counter()
    first, usage, memories, done = 0.0, None, 0, False
    async with http.post("/v1/chat/completions", json=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"chat completion failed: {response.status} {await response.text()}")
        async for line in response.content:  # one SSE line at a time
            if not line.startswith(b"data: "):
                continue
            data = line[len(b"data: ") :].strip()
            if data == b"[DONE]":
                done = True
                break
            first = first or time.perf_counter()
            event = json.loads(data)
            if "engram" in event:  # on the first event only
                memories = len(event["engram"]["memory_ids"])
            usage = event.get("usage") or usage
    if not done or usage is None:
        raise RuntimeError("the event stream ended without usage and [DONE]")
    return Sample((first - sent) * 1000, usage["completion_tokens"], usage["prompt_tokens"], memories)


async def tenant_key(http: aiohttp.ClientSession, tenant: str) -> dict[str, str]:
    created = await post(http, "/admin/tenants", {"tenant_id": tenant}, {"Authorization": f"Bearer {ADMIN}"})
    return {"Authorization": f"Bearer {created['api_key']['key']}"}


async def post(
    http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> Any:
    """The JSON answer of a POST; an error status raises."""
    async with http.post(path, json=body, headers=headers) as response:
        response.raise_for_status()
        return await response.json()


async def build_memories(http: aiohttp.ClientSession, headers: dict[str, str], timeout_s: float = 300) -> int:
    """Ingest ``USER``'s facts, build, and wait until search returns them; the memories found."""
    signals = [
        {
            "signal_id": f"mem-{i}",
            "user_id": USER,
            "source": "chat",
            "role": "user",
            "session_id": f"s{i // 3}",
            "text": text,
            "occurred_at": f"2024-06-{1 + i:02d}T09:00:00Z",
        }
        for i, text in enumerate(MEMORY_FACTS)
    ]
    await post(http, "/v1/signals", {"signals": signals}, headers)
    build = await post(http, "/v1/memories/build", None, headers)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with http.get(f"/v1/memories/build/{build['id']}", headers=headers) as response:
            status = await response.json()
        if status["status"] == "failed":
            raise RuntimeError(f"memory build failed: {status}")
        search = {"user_id": USER, "query": MEMORY_QUESTIONS[0], "k": 20}
        results = (await post(http, "/v1/memories/search", search, headers))["results"]
        if status["status"] == "succeeded" and results:
            return len(results)
        await asyncio.sleep(0.5)
    raise TimeoutError(f"no memories of {USER} searchable after {timeout_s}s")


async def memory_scenario(
    http: aiohttp.ClientSession, headers: dict[str, str], pairs: int, max_tokens: int
) -> dict[str, Any]:
    """TTFT of the same questions of ``USER`` with memory on and off, alternated, one at a time."""
    found = await build_memories(http, headers)
    console.log(f"{found} memories of {USER} searchable")

    def ask(name: str, i: int, memory: bool) -> Awaitable[Sample]:
        body = {**chat_body(BASE, messages(name, i, MEMORY_QUESTIONS), max_tokens), "user": USER}
        if not memory:
            body["memory"] = False
        return stream_chat(http, headers, body)

    async def alternate(name: str, n: int) -> dict[bool, list[Sample]]:
        samples: dict[bool, list[Sample]] = {True: [], False: []}
        for i in range(n):
            for memory in (True, False) if i % 2 == 0 else (False, True):
                samples[memory].append(await ask(name, i, memory))
        return samples

    async def search(i: int) -> float:
        query = messages("memory", i, MEMORY_QUESTIONS)[0]["content"]
        sent = time.perf_counter()
        body = {"user_id": USER, "query": query, "k": 8}
        await post(http, "/v1/memories/search", body, headers)
        return (time.perf_counter() - sent) * 1000

    await alternate("memory-warmup", 2)
    samples = await alternate("memory", pairs)
    on, off = (percentiles([s.ttft_ms for s in samples[m]]) for m in (True, False))
    searches = percentiles([await search(i) for i in range(pairs)])  # what retrieval alone costs
    result = {
        "pairs": pairs,
        "memories_searchable": found,
        "memories_per_request": round(sum(s.memories for s in samples[True]) / pairs, 1),
        "memory_on_ttft_p50_ms": on["p50_ms"],
        "memory_on_ttft_p95_ms": on["p95_ms"],
        "memory_off_ttft_p50_ms": off["p50_ms"],
        "memory_off_ttft_p95_ms": off["p95_ms"],
        "http_search_p50_ms": searches["p50_ms"],
        "prompt_tokens_added": round(
            sum(s.prompt_tokens for s in samples[True]) / pairs
            - sum(s.prompt_tokens for s in samples[False]) / pairs,
            1,
        ),
    }
    console.log(f"http memory: {json.dumps(result)}")
    return result


async def http_phase(url: str, tenant: str, requests: int, max_tokens: int, pairs: int) -> dict[str, Any]:
    """The same scenarios through the served HTTP API, then the memory augmentation scenario."""
    async with client(url) as http:
        headers = await tenant_key(http, tenant)

        async def send(chat: Messages, adapter: int | None) -> Sample:
            model = BASE if adapter is None else f"ft:{BASE}:{tenant}:a{adapter}"
            return await stream_chat(http, headers, chat_body(model, chat, max_tokens))

        scenarios = await throughput_scenarios(send, requests, "http")
        return {**scenarios, "memory_c1": await memory_scenario(http, headers, pairs, max_tokens)}


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    return round(a["output_tokens_per_s"] / b["output_tokens_per_s"], 3)


def report(direct: dict[str, Any], http: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    memory = http["memory_c1"]
    ratios = {
        "serve_vs_direct_c1": ratio(http["base_c1"], direct["base_c1"]),
        "serve_vs_direct_c8": ratio(http["base_c8"], direct["base_c8"]),
        "adapters_vs_base_http_c8": ratio(http["adapters_c8"], http["base_c8"]),
        "adapters_vs_base_direct_c8": ratio(direct["adapters_c8"], direct["base_c8"]),
        "memory_ttft_added_p50_ms": round(
            memory["memory_on_ttft_p50_ms"] - memory["memory_off_ttft_p50_ms"], 2
        ),
    }
    targets = {
        "serve_vs_direct_c1": ratios["serve_vs_direct_c1"] >= TARGETS["serve_vs_direct"],
        "serve_vs_direct_c8": ratios["serve_vs_direct_c8"] >= TARGETS["serve_vs_direct"],
        "adapters_vs_base_http_c8": ratios["adapters_vs_base_http_c8"] >= TARGETS["adapters_vs_base"],
        "adapters_vs_base_direct_c8": ratios["adapters_vs_base_direct_c8"] >= TARGETS["adapters_vs_base"],
        "memory_ttft_added_p50_ms": ratios["memory_ttft_added_p50_ms"] <= TARGETS["memory_ttft_added_p50_ms"],
    }
    return {
        "model": BASE,
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "adapters": ADAPTERS,
        "machine": machine(),
        "direct": direct,
        "http": http,
        **ratios,
        "targets": TARGETS,
        "meets": {**targets, "all": all(targets.values())},
    }


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpus": os.cpu_count(), "gpu": gpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=32, help="requests per scenario")
    parser.add_argument("--max-tokens", type=int, default=64, help="completion length of each request")
    parser.add_argument(
        "--memory-pairs", type=int, default=None, help="memory on/off pairs; default --requests"
    )
    parser.add_argument("--storage-root", default=None, help="default: a new temporary folder")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (8 requests, 16 tokens)")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.max_tokens = 8, 16
    pairs = args.memory_pairs or args.requests
    stdout = json_stdout()

    settings = load_settings(
        storage_root=args.storage_root or scratch("engram-serving-"),
        api={"admin_key": ADMIN, "port": free_port(), "builder_interval_s": 0.5},
        # One engine replica, like the one direct engine it is compared with.
        llm={"min_replicas": 1, "max_replicas": 1},
    )
    tenant = f"bench-{secrets.token_hex(4)}"  # fresh per run: a reused storage root keeps its tenants
    adapters = register_adapters(settings, tenant)
    console.log(f"storage root {settings.storage_root}; {len(adapters)} adapters of tenant {tenant}")

    direct = asyncio.run(direct_phase(settings, adapters, args.requests, args.max_tokens))
    with served(settings) as url:
        console.log(f"Engram served at {url}")
        http = asyncio.run(http_phase(url, tenant, args.requests, args.max_tokens, pairs))
    print(json.dumps(report(direct, http, args)), file=stdout, flush=True)


if __name__ == "__main__":
    main()
