"""The typed handles: each protocol is what its deployment class implements, and ``connect`` calls it."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator

import pytest

from serving import LLM, Builder, LLMServer, MemoryBuilder, Retrieval, Retriever, connect

IMPLEMENTED_BY = [(Retrieval, Retriever), (Builder, MemoryBuilder), (LLM, LLMServer)]


def _methods(protocol: type) -> list[str]:
    return [name for name, member in vars(protocol).items() if not name.startswith("_") and callable(member)]


@pytest.mark.parametrize(("protocol", "implementation"), IMPLEMENTED_BY)
def test_each_protocol_method_is_implemented_with_the_same_parameters(
    protocol: type, implementation: type
) -> None:
    for name in _methods(protocol):
        wanted, given = getattr(protocol, name), getattr(implementation, name)
        assert list(inspect.signature(given).parameters.values()) == list(
            inspect.signature(wanted).parameters.values()
        ), f"{implementation.__name__}.{name}"
        streams = not inspect.iscoroutinefunction(wanted)
        assert inspect.isasyncgenfunction(given) == streams, f"{implementation.__name__}.{name}"


class Echo:
    """A deployment body with a sync, an async and a streaming method."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def notify(self, tenant_id: str) -> None:
        self.threads.append(threading.current_thread().name)

    async def forget_tenant(self, tenant_id: str) -> list[int]:
        return [len(tenant_id)]

    async def generate(self, request: str) -> AsyncIterator[str]:
        for part in request.split():
            yield part

    def secret(self) -> str:
        return "not in any protocol"


def test_a_local_object_is_called_through_its_protocol() -> None:
    echo = Echo()
    builder, llm = connect(echo, Builder), connect(echo, LLM)

    async def use() -> tuple[list[int], list[str]]:
        await builder.notify("acme")  # a sync method runs in a worker thread, as in a Serve replica
        parts = [part async for part in llm.generate("a b c")]  # type: ignore[arg-type]
        return await llm.forget_tenant("acme"), parts

    assert asyncio.run(use()) == ([4], ["a", "b", "c"])
    assert echo.threads and echo.threads[0] != threading.main_thread().name
    with pytest.raises(AttributeError, match="secret"):
        builder.secret  # type: ignore[attr-defined]  # noqa: B018
