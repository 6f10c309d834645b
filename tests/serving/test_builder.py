"""The always-on builder, in this process."""

from __future__ import annotations

import time
from typing import Any

import pytest

import serving.builder
from cluster import Settings, Storage, load_settings
from memory import TenantStore, build_in_process, ingest_rows
from serving import MemoryBuilder

SIGNAL = {
    "user_id": "u1",
    "source": "chat",
    "role": "user",
    "text": "I moved to Porto",
    "occurred_at": "2024-05-10T10:00:00Z",
}


def wait_built(store: TenantStore, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while store.signals().count_rows("processed_at IS NULL") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.signals().count_rows("processed_at IS NULL") == 0


def test_a_new_builder_builds_what_an_earlier_one_left(settings: Settings) -> None:
    """Signals stored while no builder ran (it stopped, or was on a node that was lost) get built
    by the next builder without anyone telling it about them."""
    store = TenantStore(Storage.of(settings), "acme")
    assert ingest_rows(store, [SIGNAL], settings.ingest).accepted == 1
    builder = MemoryBuilder(
        load_settings(storage_root=settings.storage_root, api={"builder_interval_s": 0.1})
    )
    try:
        wait_built(store)
        assert store.memories().count_rows("kind = 'episode'") == 1
    finally:
        builder.close()


def test_a_failed_pass_is_tried_again_without_new_signals(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that fails for a passing reason (here: its first two attempts raise, as one did when
    the node holding Ray Data's coordinator was lost) is tried again after a backoff, and the
    build ends with every signal in one memory; the failures are counted."""
    attempts: list[float] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        if len(attempts) <= 2:
            raise ConnectionError("object store unreachable")
        return build_in_process(*args, **kwargs)

    monkeypatch.setattr(serving.builder, "build_in_process", flaky)
    store = TenantStore(Storage.of(settings), "acme")
    assert ingest_rows(store, [SIGNAL], settings.ingest).accepted == 1
    builder = MemoryBuilder(
        load_settings(storage_root=settings.storage_root, api={"builder_interval_s": 0.1})
    )
    try:
        wait_built(store)
        assert store.memories().count_rows("kind = 'episode'") == 1
        assert len(attempts) == 3
        assert attempts[2] - attempts[1] >= 1.9  # backed off: 1 s after the first failure, 2 after the second
        assert builder.stats()["failures"] == 2
    finally:
        builder.close()
