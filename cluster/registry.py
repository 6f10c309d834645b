"""Name → factory registries for swappable parts (embedders, extractors, ...).

Factories are registered by name and called lazily, so heavy dependencies are only
imported when a part is actually used. An unknown name fails with the valid names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from cluster.errors import UnknownComponentError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, **options: object) -> T:
        """A new part ``name``; ``options`` go to its factory."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}",
                param=self.kind,
                name=name,
            ) from None
        return factory(**options)
