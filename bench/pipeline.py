"""Memory pipeline throughput against the raw encoder, in one run.

Prints JSON: end-to-end build throughput (signals/s) of the Ray Data pipeline and, on the
same texts, the raw all-MiniLM-L6-v2 throughput in-process; their ratio is the figure. The raw
encoder is the pipeline's own (ONNX Runtime on CPU, every core, no Ray), the strictest
baseline; sentence-transformers' ``encode`` on the same texts is reported beside it. Also the
peak resident memory of the driver plus all Ray processes during the build.

    .venv/bin/python -m bench.pipeline --signals 20000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

import psutil


def _tree_rss(root: psutil.Process) -> int:
    """Resident bytes of the driver and every Ray process on this machine."""
    total = root.memory_info().rss
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.pid != root.pid and any("ray" in part for part in (proc.info["cmdline"] or [])[:2]):
                total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class PeakMemory:
    def __init__(self, interval: float = 0.25) -> None:
        self.peak = 0
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(me))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sentence_transformers_seconds(texts: list[str], batch_size: int) -> float:
    """Seconds for sentence-transformers' ``encode`` (torch, every core) on ``texts``."""
    from memory.embed import SentenceTransformerEmbedder, minilm_path

    model = SentenceTransformerEmbedder(minilm_path(), batch_size, None, "cpu")
    model.embed(texts[:64])  # warm-up
    started = time.perf_counter()
    model.embed(texts)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--encoder-repeats", type=int, default=1, help="raw encoder runs; the median is used")
    parser.add_argument(
        "--no-sentence-transformers", action="store_true", help="skip timing sentence-transformers' encode"
    )
    parser.add_argument(
        "--storage", choices=["local", "s3"], default="local", help="where the storage root is"
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray

    from bench.common import storage
    from cluster import Storage, load_settings
    from memory import TenantStore, build, get_embedder, ingest_rows
    from synthetic import generate

    per_user = 200
    data = generate(
        users=max(1, args.signals // per_user),
        sessions_per_user=20,
        turns_per_session=10,
        seed=1,
        malformed_rate=0.0,
    )
    rows = [r for r in data.signals][: args.signals]
    texts = [str(r["text"]) for r in rows]
    settings = load_settings(**storage(args.storage, "engram-bench-"))

    embedder = get_embedder(settings.embedding.model, batch_size=settings.embedding.batch_size)
    embedder.embed(texts[:64])  # warm-up
    unique = list(dict.fromkeys(texts))

    def encode_seconds(batch: list[str]) -> float:
        runs = []
        for _ in range(args.encoder_repeats):
            started = time.perf_counter()
            embedder.embed(batch)
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    encode_s = encode_seconds(texts)
    # The pipeline embeds each distinct text of a batch once; a raw encoder fed only the
    # distinct texts is the stricter baseline when the data repeats itself.
    encode_unique_s = encode_seconds(unique) if len(unique) < len(texts) else encode_s

    store = TenantStore(Storage.of(settings), "bench")
    started = time.perf_counter()
    ingest = ingest_rows(store, rows, settings.ingest, origin="bench")
    ingest_s = time.perf_counter() - started

    started = time.perf_counter()
    ray.init("local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - started
    with PeakMemory() as peak:
        started = time.perf_counter()
        report = build("bench", settings)
        build_s = time.perf_counter() - started
    rerun = build("bench", settings)
    ray.shutdown()
    # after the build, so that torch in this process weighs nothing in its peak memory
    st_encode_s = (
        None
        if args.no_sentence_transformers
        else sentence_transformers_seconds(texts, settings.embedding.batch_size)
    )

    pipeline_rate = report.signals / build_s
    encoder_rate = len(texts) / encode_s
    encoder_unique_rate = len(texts) / encode_unique_s
    print(
        json.dumps(
            {
                "storage": args.storage,
                "signals": len(rows),
                "users": report.users,
                "cpus": os.cpu_count(),
                "encoder_signals_per_s": round(encoder_rate, 1),
                "pipeline_signals_per_s": round(pipeline_rate, 1),
                "ratio_pipeline_to_encoder": round(pipeline_rate / encoder_rate, 3),
                "distinct_texts": len(unique),
                "encoder_distinct_only_signals_per_s": round(encoder_unique_rate, 1),
                "ratio_pipeline_to_encoder_distinct_only": round(pipeline_rate / encoder_unique_rate, 3),
                "encode_s": round(encode_s, 2),
                "sentence_transformers_encode_s": st_encode_s and round(st_encode_s, 2),
                "ratio_pipeline_to_sentence_transformers_encode": st_encode_s
                and round(pipeline_rate / (len(texts) / st_encode_s), 3),
                "build_s": round(build_s, 2),
                "ingest_signals_per_s": round(ingest.accepted / ingest_s, 1),
                "ray_init_s": round(ray_init_s, 2),
                "memories_written": report.memories_written,
                "by_kind": report.by_kind,
                "peak_rss_mb_during_build": round(peak.peak / 2**20),
                "rerun_signals": rerun.signals,
            }
        )
    )


if __name__ == "__main__":
    main()
