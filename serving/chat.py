"""``POST /v1/chat/completions``: OpenAI-compatible chat, augmented with the user's memories.

The model name picks the engine: a base model of the registry, or the caller's own
fine-tuned model (``ft:<base>:<tenant>:<suffix>``), which resolves to its deployed adapter.
When ``user`` is set and memory is not turned off, that user's memories are retrieved for
the last user turn, packed into the system prompt within a token budget, and their ids are
returned in the ``engram`` extension field.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from actors import Adapter
from cluster import USER_ID, NotFoundError
from memory import pack_context
from serving.auth import Caller, tenant_caller
from serving.context import GatewayContext
from serving.handles import LLM
from serving.llm import Chunk, Generation

router = APIRouter(tags=["chat"])
MEMORY_PREAMBLE = "What you remember about the user (most relevant first; use it when it helps):"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str = Field(max_length=200_000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=200_000)] | list[TextPart]
    name: str | None = Field(None, max_length=64)

    def as_text(self) -> dict[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class MemoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="Use the user's memories (needs `user`).")
    k: int | None = Field(None, ge=1, le=100, description="Memories to retrieve; default from settings.")
    max_tokens: int | None = Field(
        None, ge=0, le=32_768, description="Token budget of the packed memories; default from settings."
    )
    return_prompt: bool = Field(False, description="Return the messages as sent to the model.")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=300)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1_000)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)
    min_tokens: int = Field(
        0, ge=0, le=1_000_000, description="vLLM extension: tokens generated before the end token may stop."
    )
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: (
        Annotated[str, Field(min_length=1, max_length=256)]
        | list[Annotated[str, Field(min_length=1, max_length=256)]]
        | None
    ) = Field(None, max_length=4)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        None, pattern=USER_ID.pattern, description="The end user; their memories augment the prompt."
    )
    memory: MemoryOptions | bool = Field(
        True, description="Memory augmentation for `user`: false turns it off, an object tunes it."
    )

    @model_validator(mode="after")
    def _one_length(self) -> ChatRequest:
        both = self.max_tokens is not None and self.max_completion_tokens is not None
        if both and self.max_tokens != self.max_completion_tokens:
            raise ValueError("max_tokens and max_completion_tokens disagree")
        return self

    def memory_options(self) -> MemoryOptions:
        return self.memory if isinstance(self.memory, MemoryOptions) else MemoryOptions(enabled=self.memory)


def _ctx(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


async def resolve_model(ctx: GatewayContext, tenant_id: str, model: str) -> tuple[LLM, Adapter | None]:
    """The engine serving ``model`` for this tenant, and the adapter to apply (None for a base model)."""
    if model in ctx.llms:
        return ctx.llms[model], None
    if model.startswith("ft:"):
        adapter = await asyncio.to_thread(ctx.models.resolve, tenant_id, model)
        if adapter.base_model in ctx.llms:
            return ctx.llms[adapter.base_model], adapter
    raise NotFoundError(f"the model {model!r} does not exist", param="model")


async def recall(
    ctx: GatewayContext, tenant_id: str, user_id: str, messages: list[dict[str, str]], options: MemoryOptions
) -> tuple[list[dict[str, str]], list[str]]:
    """``messages`` with the user's memories packed into the system prompt, and the ids used."""
    query = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "").strip()
    if not query:
        return messages, []
    results = await ctx.retrieval.search(
        tenant_id, user_id, query[-2000:], k=options.k or ctx.settings.llm.memory_k
    )
    budget = ctx.settings.llm.memory_max_tokens if options.max_tokens is None else options.max_tokens
    packed = pack_context(results, budget)
    if not packed.memories:
        return messages, []
    block = f"{MEMORY_PREAMBLE}\n{packed.text}"
    if messages[0]["role"] == "system":
        augmented = [{"role": "system", "content": f"{messages[0]['content']}\n\n{block}"}, *messages[1:]]
    else:
        augmented = [{"role": "system", "content": block}, *messages]
    return augmented, [m["memory_id"] for m in packed.memories]


def _extension(
    memory_ids: list[str], messages: list[dict[str, str]], options: MemoryOptions
) -> dict[str, Any]:
    extension: dict[str, Any] = {"memory_ids": memory_ids}
    if options.return_prompt:
        extension["messages"] = messages
    return extension


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest, request: Request, caller: Annotated[Caller, Depends(tenant_caller)]
) -> dict[str, Any] | StreamingResponse:
    ctx = _ctx(request)
    llm, adapter = await resolve_model(ctx, caller.tenant_id, body.model)
    ctx.limits.check_tokens(caller.tenant_id)
    messages = [m.as_text() for m in body.messages]
    options = body.memory_options()
    memory_ids: list[str] = []
    if body.user is not None and options.enabled:
        messages, memory_ids = await recall(ctx, caller.tenant_id, body.user, messages, options)
    generation = Generation(
        messages=messages,
        max_tokens=body.max_tokens or body.max_completion_tokens,
        min_tokens=body.min_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=[body.stop] if isinstance(body.stop, str) else list(body.stop or []),
        seed=body.seed,
        adapter=adapter,
    )
    chunks = llm.generate(generation)
    first: Chunk = await anext(aiter(chunks))  # errors (context too long, bad adapter) surface as 4xx here
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model}
    extension = _extension(memory_ids, messages, options)
    meter = partial(_meter, ctx, caller.tenant_id)
    if body.stream:
        usage = body.stream_options is not None and body.stream_options.include_usage
        events = _sse(head, extension, first, chunks, usage, meter)
        return StreamingResponse(events, media_type="text/event-stream")
    parts, last = [first.text], first
    try:
        async for chunk in chunks:
            parts.append(chunk.text)
            last = chunk
    finally:
        meter(last)
    return {
        **head,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(parts)},
                "finish_reason": last.finish_reason,
            }
        ],
        "usage": _usage(last),
        "engram": extension,
    }


def _usage(chunk: Chunk) -> dict[str, int]:
    return {
        "prompt_tokens": chunk.prompt_tokens,
        "completion_tokens": chunk.completion_tokens,
        "total_tokens": chunk.prompt_tokens + chunk.completion_tokens,
    }


def _meter(ctx: GatewayContext, tenant_id: str, last: Chunk) -> None:
    """The tokens of a finished (or abandoned) completion: metered, and taken from the tokens/min quota."""
    ctx.usage.add(tenant_id, "prompt_tokens", last.prompt_tokens)
    ctx.usage.add(tenant_id, "completion_tokens", last.completion_tokens)
    ctx.limits.spend_tokens(tenant_id, last.prompt_tokens + last.completion_tokens)


async def _sse(
    head: dict[str, Any],
    extension: dict[str, Any],
    first: Chunk,
    chunks: AsyncIterator[Chunk],
    usage: bool,
    meter: Callable[[Chunk], None],
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format; leaving early (a client gone) aborts the request."""

    def event(delta: dict[str, str], finish: str | None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        payload = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return f"data: {json.dumps(payload)}\n\n"

    last = first
    try:
        yield event({"role": "assistant", "content": first.text}, first.finish_reason, engram=extension)
        async for chunk in chunks:
            last = chunk
            yield event({"content": chunk.text}, chunk.finish_reason)
        if usage:
            final = {**head, "object": "chat.completion.chunk", "choices": [], "usage": _usage(last)}
            yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        meter(last)
        await _close(chunks)


async def _close(chunks: AsyncIterator[Chunk]) -> None:
    """Stop a generation that was not read to the end, in this process or in the LLM replica."""
    cancel = getattr(chunks, "cancel", None)  # a Serve DeploymentResponseGenerator
    if cancel is not None:
        cancel()
        return
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
