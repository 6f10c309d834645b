"""Prometheus metrics of a gateway replica."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "engram_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "engram_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.signals = Counter(
            "engram_signals", "Signals posted, by outcome", ["outcome"], registry=self.registry
        )

    def render(self, builder_stats: dict[str, int]) -> bytes:
        lines = [
            "# HELP engram_builder_total Work done by the memory builder since it started.",
            "# TYPE engram_builder_total counter",
            *(f'engram_builder_total{{what="{k}"}} {v}' for k, v in sorted(builder_stats.items())),
        ]
        return generate_latest(self.registry) + ("\n".join(lines) + "\n").encode()
