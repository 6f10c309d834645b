"""The always-on builder, in this process."""

from __future__ import annotations

import time

from cluster import Settings, Storage, load_settings
from memory import TenantStore, ingest_rows
from serving import MemoryBuilder


def test_a_new_builder_builds_what_an_earlier_one_left(settings: Settings) -> None:
    """Signals stored while no builder ran (it stopped, or was on a node that was lost) get built
    by the next builder without anyone telling it about them."""
    store = TenantStore(Storage.of(settings), "acme")
    signal = {
        "user_id": "u1",
        "source": "chat",
        "role": "user",
        "text": "I moved to Porto",
        "occurred_at": "2024-05-10T10:00:00Z",
    }
    assert ingest_rows(store, [signal], settings.ingest).accepted == 1
    builder = MemoryBuilder(
        load_settings(storage_root=settings.storage_root, api={"builder_interval_s": 0.1})
    )
    try:
        deadline = time.monotonic() + 60
        while store.signals().count_rows("processed_at IS NULL") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.signals().count_rows("processed_at IS NULL") == 0
        assert store.memories().count_rows("kind = 'episode'") == 1
    finally:
        builder.close()
