"""Typed handles between the gateway and the deployments it calls.

Each deployment the gateway calls has a ``Protocol`` here: what the gateway may ask of it, with
the arguments and results of each method. ``async def`` marks a call that answers once,
``def ... -> AsyncIterator`` one that streams. ``connect`` gives the deployment's object in this
process (tests, tools) or a Serve ``DeploymentHandle`` to its replicas (the served app) that
protocol's face, so routes call ``ctx.retrieval.search(...)`` on either, and a reader goes from a
route to the protocol here, then to the class named in its docstring, which implements each method
under the same name (``tests/serving/test_handles.py`` checks that they agree).

Over Serve, calls go by Serve's inter-deployment gRPC (``_by_reference=False``): the result comes
back on the call itself, where a Ray actor call returns an object reference to fetch. In-process,
a method that is not async runs in a worker thread, as Serve runs it in a replica.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from cluster import MemoryKind

if TYPE_CHECKING:
    from serving.llm import Chunk, Generation

T = TypeVar("T")


class Retrieval(Protocol):
    """Memory search with the embedders loaded and the stores open: ``serving.retrieval.Retriever``."""

    async def search(
        self,
        tenant_id: str,
        user_id: str,
        query: str,
        *,
        k: int = 10,
        kinds: list[MemoryKind] | None = None,
        as_of: datetime | None = None,
        include_superseded: bool = False,
    ) -> list[dict[str, Any]]:
        """The user's best memories for ``query`` (``memory.search``)."""
        ...

    async def embed(self, texts: list[str]) -> list[Any]:
        """Vectors of memory texts, by the model that embeds every memory."""
        ...

    async def forget_tenant(self, tenant_id: str) -> None:
        """Close what is open of a tenant being deleted."""
        ...


class Builder(Protocol):
    """The always-on memory builder: ``serving.builder.MemoryBuilder``."""

    async def notify(self, tenant_id: str) -> None:
        """New signals arrived for the tenant."""
        ...

    async def start_build(self, tenant_id: str) -> dict[str, Any]:
        """Queue a build of the tenant; its record."""
        ...

    async def get_build(self, tenant_id: str, build_id: str) -> dict[str, Any] | None:
        """A build of this tenant; None for unknown ids and other tenants' builds alike."""
        ...

    async def stats(self) -> dict[str, int]:
        """Work done since the builder started."""
        ...

    async def forget_tenant(self, tenant_id: str) -> None:
        """Never build the tenant again; wait for a pass already building it."""
        ...


class LLM(Protocol):
    """The engine of one base model, tenant adapters per request: ``serving.llm.LLMServer``."""

    def generate(self, request: Generation) -> AsyncIterator[Chunk]:
        """Stream the completion of ``request``; leaving the iteration aborts it."""
        ...

    async def forget_tenant(self, tenant_id: str) -> list[int]:
        """Drop a deleted tenant's adapters; their LoRA ids."""
        ...


def connect(target: object, protocol: type[T]) -> T:
    """``target`` (the deployment's object, or a Serve ``DeploymentHandle`` to it) as ``protocol``."""
    from ray.serve.handle import DeploymentHandle

    methods = {
        name: inspect.iscoroutinefunction(member)  # False: the method streams
        for name, member in vars(protocol).items()
        if not name.startswith("_") and callable(member)
    }
    if isinstance(target, DeploymentHandle):
        return cast(T, _Remote(target, methods))
    return cast(T, _Local(target, methods))


class _Handle:
    """What ``connect`` returns: the protocol's methods of ``target``, nothing else."""

    def __init__(self, target: Any, methods: dict[str, bool]) -> None:
        self._target, self._methods = target, methods

    def _unary(self, name: str) -> bool:
        """Whether method ``name`` answers once (False: it streams); AttributeError for any other name."""
        if name not in self._methods:
            raise AttributeError(f"{name!r} is not a method of the deployment's protocol")
        return self._methods[name]


class _Local(_Handle):
    """A deployment's object in this process, every unary method awaitable."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        unary = self._unary(name)
        method = getattr(self._target, name)
        if not unary or inspect.iscoroutinefunction(method):
            return cast(Callable[..., Any], method)

        async def in_thread(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return in_thread


class _Remote(_Handle):
    """A Serve deployment called over gRPC; streaming methods give Serve's response generator."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not self._unary(name):

            def streamed(*args: Any, **kwargs: Any) -> Any:
                handle = self._target.options(_by_reference=False, stream=True)
                return getattr(handle, name).remote(*args, **kwargs)

            return streamed

        async def called(*args: Any, **kwargs: Any) -> Any:
            return await getattr(self._target.options(_by_reference=False), name).remote(*args, **kwargs)

        return called
