"""Errors of the memory package."""

from __future__ import annotations

from cluster import EngramError


class IngestError(EngramError, ValueError):
    """A signal file or request cannot be read at all (individual bad rows are quarantined instead)."""


class PipelineError(EngramError, RuntimeError):
    """The memory pipeline failed; nothing of the failed pass was marked processed."""
