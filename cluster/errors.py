"""The exception hierarchy shared by every package.

Errors carry their context as fields and survive pickling (they cross Ray process
boundaries), so every subclass passes all of its fields through ``EngramError``.
"""

from __future__ import annotations

from typing import Any


class EngramError(Exception):
    """Base of every Engram error. ``param`` names the offending field, if any."""

    def __init__(self, message: str, *, param: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.context = context

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.param, self.context))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[EngramError], message: str, param: str | None, context: dict[str, Any]) -> EngramError:
    error = cls.__new__(cls)
    EngramError.__init__(error, message, param=param, **context)
    return error


class ConfigError(EngramError, ValueError):
    """A settings file or value is invalid."""


class InvalidIdError(EngramError, ValueError):
    """A tenant, user or other id is malformed or could escape its storage folder."""


class UnknownComponentError(EngramError, LookupError):
    """A registry was asked for a name it does not hold."""


class NotFoundError(EngramError, LookupError):
    """The resource does not exist, or belongs to another tenant (the two are indistinguishable)."""


class ConflictError(EngramError, ValueError):
    """The resource already exists or is in a state that forbids the change."""


class InvalidRequestError(EngramError, ValueError):
    """A request is well-formed but cannot be served as asked (too long a context, an unusable parameter)."""


class DecryptionError(EngramError, RuntimeError):
    """Sealed data or a wrapped key cannot be opened: another key, another context, or altered bytes."""


class KeyDestroyedError(NotFoundError):
    """A tenant's data key was destroyed (the tenant was deleted): what it sealed is unreadable for good."""
