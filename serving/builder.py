"""The always-on memory builder: new signals become searchable memories within seconds.

Tenants with new signals are built in the background every ``builder_interval_s``;
explicit builds (``POST /v1/memories/build``) go through the same queue, so one tenant is
never built by two passes at once. Small backlogs run in this process with an embedder
kept warm; large ones run on Ray Data. A builder that starts looks at every stored tenant once,
so what a stopped one left unbuilt (a replica restarted, or moved off a lost node) is built. A
failed pass is tried again, 1 s later, then 2, 4, ... up to a minute, with no new signal needed:
a pass can fail for reasons that pass (a node lost under Ray Data, the object store unreachable).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cluster import TENANT_ID, Settings, Storage
from memory import BuildReport, Embedder, TenantStore, build, build_in_process, get_embedder

log = logging.getLogger(__name__)

RETRY_MAX_S = 60.0  # a tenant whose passes keep failing is tried again at least this often


BuildStatus = Literal["queued", "running", "succeeded", "failed"]


@dataclass
class BuildRecord:
    id: str
    tenant_id: str
    status: BuildStatus = "queued"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished_at: str | None = None
    signals: int = 0
    memories_written: int = 0
    error: str | None = None


class MemoryBuilder:
    def __init__(self, settings: Settings, *, autostart: bool = True) -> None:
        self.settings = settings
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a tenant's pass ends
        self._building: str | None = None
        self._gone: set[str] = set()  # deleted tenants: never built again
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._dirty: set[str] = set()
        self._retry_at: dict[str, float] = {}  # tenants whose last pass failed: when to try again
        self._failures: dict[str, int] = {}  # failed passes in a row, per tenant
        self._queued: dict[str, list[BuildRecord]] = {}
        self._builds: dict[str, BuildRecord] = {}
        self.totals = {"signals": 0, "memories_written": 0, "passes": 0, "failures": 0}
        self._thread = threading.Thread(target=self._loop, name="memory-builder", daemon=True)
        if autostart:
            self._thread.start()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            cfg = self.settings.embedding
            self._embedder = get_embedder(cfg.model, batch_size=cfg.batch_size, threads=cfg.threads)
        return self._embedder

    def notify(self, tenant_id: str) -> None:
        """New signals arrived for ``tenant_id``."""
        with self._lock:
            if tenant_id not in self._gone:
                self._dirty.add(tenant_id)

    def start_build(self, tenant_id: str) -> dict[str, Any]:
        record = BuildRecord(id=f"build-{secrets.token_hex(8)}", tenant_id=tenant_id)
        with self._lock:
            if tenant_id in self._gone:
                record.status, record.error = "failed", "the tenant was deleted"
                return asdict(record)
            self._builds[record.id] = record
            self._queued.setdefault(tenant_id, []).append(record)
            self._dirty.add(tenant_id)
        self._wake.set()
        return asdict(record)

    def get_build(self, tenant_id: str, build_id: str) -> dict[str, Any] | None:
        """A build of this tenant; None for unknown ids and for other tenants' builds alike."""
        with self._lock:
            record = self._builds.get(build_id)
            return asdict(record) if record is not None and record.tenant_id == tenant_id else None

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.totals)

    async def forget_tenant(self, tenant_id: str) -> None:
        """Never build ``tenant_id`` again (it is being deleted): its queued builds and their records
        go, and a pass already building it is waited for, so nothing writes its tables afterwards."""
        with self._lock:
            self._gone.add(tenant_id)
            self._dirty.discard(tenant_id)
            self._retry_at.pop(tenant_id, None)
            self._queued.pop(tenant_id, None)
            for build_id in [b for b, r in self._builds.items() if r.tenant_id == tenant_id]:
                del self._builds[build_id]
        await asyncio.to_thread(self._wait_idle, tenant_id)

    def _wait_idle(self, tenant_id: str) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._building != tenant_id)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def run_once(self) -> None:
        """Build every tenant that has new signals, a queued build, or a failed pass due again."""
        now = time.monotonic()
        with self._lock:
            due = {t for t, at in self._retry_at.items() if at <= now}
            for tenant_id in due:
                del self._retry_at[tenant_id]
            tenants, self._dirty = sorted(self._dirty | due), set()
        for tenant_id in tenants:
            with self._lock:
                if tenant_id in self._gone:
                    continue
                self._building = tenant_id
                records = self._queued.pop(tenant_id, [])
                for record in records:
                    record.status = "running"
            try:
                report = self._build(tenant_id)
            except Exception as e:  # a failed build is reported and tried again later
                delay = self._retry_later(tenant_id)
                log.exception("build of tenant %s failed; trying again in %.0f s", tenant_id, delay)
                self._finish(records, None, f"{type(e).__name__}: {e}")
                continue
            finally:
                with self._idle:
                    self._building = None
                    self._idle.notify_all()
            with self._lock:
                self._failures.pop(tenant_id, None)
            self._finish(records, report, None)

    def _retry_later(self, tenant_id: str) -> float:
        """Schedule another pass of ``tenant_id`` after a failed one; returns the delay in s."""
        with self._lock:
            failures = self._failures[tenant_id] = self._failures.get(tenant_id, 0) + 1
            delay = min(RETRY_MAX_S, 2.0 ** (failures - 1))
            if tenant_id not in self._gone:
                self._retry_at[tenant_id] = time.monotonic() + delay
        return delay

    def _build(self, tenant_id: str) -> BuildReport:
        store = TenantStore(Storage.of(self.settings), tenant_id)
        total = BuildReport(tenant_id=tenant_id)
        if not store.has("signals"):
            return total
        limit = self.settings.api.builder_local_max
        while (pending := store.signals().count_rows("processed_at IS NULL")) > 0:
            report = (
                build_in_process(store, self.settings, self.embedder, limit)
                if pending <= limit
                else build(tenant_id, self.settings)
            )
            total.signals += report.signals
            total.memories_written += report.memories_written
            total.passes += report.passes
        return total

    def _finish(self, records: list[BuildRecord], report: BuildReport | None, error: str | None) -> None:
        with self._lock:
            if report is not None:
                self.totals["signals"] += report.signals
                self.totals["memories_written"] += report.memories_written
                self.totals["passes"] += report.passes
            else:
                self.totals["failures"] += 1
            for record in records:
                record.status = "failed" if error else "succeeded"
                record.error = error
                record.finished_at = datetime.now(UTC).isoformat()
                if report is not None:
                    record.signals, record.memories_written = report.signals, report.memories_written

    def _loop(self) -> None:
        _ = self.embedder  # load the model before the first signals arrive
        # Signals may be waiting from before this builder started (a restarted replica, one that
        # moved off a lost node): every stored tenant is looked at once.
        for tenant_id in Storage.of(self.settings).children("tenants"):
            if TENANT_ID.fullmatch(tenant_id):
                self.notify(tenant_id)
        while not self._stop.is_set():
            started = time.monotonic()
            self.run_once()
            remaining = self.settings.api.builder_interval_s - (time.monotonic() - started)
            self._wake.wait(max(0.0, remaining))
            self._wake.clear()
