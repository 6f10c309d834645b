"""Quotas (defaults with per-tenant overrides) and usage metered in hourly buckets, on SQLite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from actors.quotas import QuotaBook, QuotaExceededError
from actors.tenants import TenantDirectory
from cluster.errors import NotFoundError
from cluster.settings import QuotaSettings


@pytest.fixture
def book(database_url: str) -> QuotaBook:
    url = database_url
    TenantDirectory(url).create_tenant("t1")
    TenantDirectory(url).create_tenant("t2")
    return QuotaBook(url, QuotaSettings(requests_per_s=50, concurrent_jobs=2, gpu_seconds=None))


def test_overrides_sit_on_the_defaults_and_reset(book: QuotaBook) -> None:
    assert book.get("t1").requests_per_s == 50 and book.get("t1").tokens_per_min is None
    quota = book.set("t1", {"tokens_per_min": 1000, "storage_bytes": 10})
    assert (quota.tokens_per_min, quota.storage_bytes, quota.requests_per_s) == (1000, 10, 50)
    assert book.get("t2").tokens_per_min is None  # another tenant is untouched
    assert book.set("t1", {}).tokens_per_min is None  # PUT without the field: back to the default
    with pytest.raises(NotFoundError):
        book.set("nobody", {"tokens_per_min": 5})
    with pytest.raises(ValueError, match="unknown quota fields"):
        book.set("t1", {"tokens": 5})


def test_usage_adds_up_per_hour_metric_and_tenant(book: QuotaBook) -> None:
    hour = datetime(2026, 5, 1, 10, tzinfo=UTC)
    book.record(
        [
            ("t1", "requests", 1, hour + timedelta(minutes=1)),
            ("t1", "requests", 2, hour + timedelta(minutes=59)),
            ("t1", "requests", 4, hour + timedelta(hours=1)),
            ("t1", "prompt_tokens", 30, hour),
            ("t2", "requests", 100, hour),
        ]
    )
    book.record([("t1", "requests", 8, hour)])
    assert book.usage("t1", hour, hour + timedelta(hours=1))["requests"] == 11
    assert book.usage("t1", hour, hour + timedelta(hours=2))["requests"] == 15
    assert book.usage("t1", hour, hour + timedelta(hours=2))["prompt_tokens"] == 30
    assert book.usage("t2", hour, hour + timedelta(hours=2))["requests"] == 100
    hourly = book.hourly("t1", hour, hour + timedelta(hours=2))
    assert [(h["hour"], h["metric"], h["value"]) for h in hourly] == [
        (hour, "prompt_tokens", 30),
        (hour, "requests", 11),
        (hour + timedelta(hours=1), "requests", 4),
    ]
    with pytest.raises(ValueError, match="unknown usage metric"):
        book.record([("t1", "bananas", 1, hour)])  # type: ignore[list-item]


def test_concurrent_metering_loses_nothing(book: QuotaBook) -> None:
    at = datetime.now(UTC)

    def meter() -> None:
        for _ in range(25):
            book.record([("t1", "completion_tokens", 2, at)])

    threads = [threading.Thread(target=meter) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert book.usage("t1", at, at + timedelta(hours=1))["completion_tokens"] == 200


def test_job_admission_counts_running_jobs_and_gpu_seconds(book: QuotaBook) -> None:
    book.admit_job("t1", running_jobs=1)
    with pytest.raises(QuotaExceededError) as e:
        book.admit_job("t1", running_jobs=2)
    assert e.value.param == "concurrent_jobs"
    book.set("t1", {"gpu_seconds": 100})
    now = datetime.now(UTC)
    book.record([("t1", "gpu_seconds", 60, now - timedelta(days=40))])  # outside the 30-day period
    book.record([("t1", "gpu_seconds", 60, now - timedelta(days=1))])
    book.admit_job("t1", running_jobs=0, now=now)
    book.record([("t1", "gpu_seconds", 45, now)])
    with pytest.raises(QuotaExceededError) as e:
        book.admit_job("t1", running_jobs=0, now=now)
    assert e.value.param == "gpu_seconds"
    book.admit_job("t2", running_jobs=0, now=now)  # the other tenant's budget is its own
