"""Does memory help the model answer? REALTALK questions through the chat API, memory on and off.

Each REALTALK chat (``../shared/data/realtalk/``, see its README) is one Engram user: every turn
is posted to ``/v1/signals`` as ``"<speaker>: <text>"`` with its time and session, and the
gateway's builder turns them into memories. Then each question of the chat is asked through
``POST /v1/chat/completions`` on the embedded SmolLM2-135M-Instruct, greedy, once with memory
(``"user"``: the chat's user) and once without (``"memory": false``), alternating which goes
first. Answers are scored against the gold answer with token-level F1 (lower-case, punctuation
and articles removed, as SQuAD's QA F1). Also reported: the share of memory-on answers whose
packed memories cite an evidence turn of the question (a memory's ``sources`` hold the signal
ids, which are the turns' ``dia_id``).

The split is bench.embedders' (by chat file, fixed there): ``--split dev`` to tune on,
``--split held_back`` to report. Prints one JSON object; progress on stderr.

    .venv/bin/python -m bench.answer_quality --split dev
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import json_stdout, scratch, served
from bench.embedders import DATA, DEV, evidence_ids
from cluster import Storage, load_settings

MODEL = "smollm2-135m-instruct"
ADMIN = "answer-quality-admin-key-0123456789"
SYSTEM = "Answer the question in a few words."


def normalize(text: str) -> list[str]:
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return [w for w in text.split() if w not in ("a", "an", "the")]


def f1(answer: str, gold: str) -> float:
    got, want = normalize(answer), normalize(gold)
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or not common:
        return float(got == want)
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def signals(path: Path, user: str) -> list[dict[str, Any]]:
    chat = json.loads(path.read_text())
    rows = []
    for key in (k for k in chat if re.fullmatch(r"session_\d+", k)):
        for turn in chat[key]:
            if not turn.get("clean_text"):
                continue
            when = datetime.strptime(turn["date_time"], "%d.%m.%Y, %H:%M:%S")
            rows.append(
                {
                    "signal_id": turn["dia_id"],
                    "user_id": user,
                    "source": "chat",
                    "role": "user",
                    "session_id": f"{user}-{key}",
                    "text": f"{turn['speaker']}: {turn['clean_text']}",
                    "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
    return rows


def say(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "held_back"), default="dev")
    parser.add_argument("--questions", type=int, default=0, help="at most this many per chat (0: all)")
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    stdout = json_stdout()
    files = [p for p in sorted(DATA.glob("Chat_*.json")) if (p.name in DEV) == (args.split == "dev")]
    settings = load_settings(
        storage_root=scratch("engram-answer-quality-"),
        api={"admin_key": ADMIN, "builder_interval_s": 0.5},
        llm={"base_models": {MODEL: {"dtype": "bfloat16"}}, "min_replicas": 1, "max_replicas": 1},
    )
    from memory import TenantStore

    store = TenantStore(Storage.of(settings), "realtalk")
    scored: list[dict[str, Any]] = []
    with served(settings) as url, httpx.Client(base_url=url, timeout=300) as http:
        created = http.post(
            "/admin/tenants", json={"tenant_id": "realtalk"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        created.raise_for_status()
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        for n, path in enumerate(files):
            user = f"chat{n}"
            rows = signals(path, user)
            for begin in range(0, len(rows), 500):
                http.post(
                    "/v1/signals", headers=key, json={"signals": rows[begin : begin + 500]}
                ).raise_for_status()
            say(f"{path.name}: {len(rows)} turns posted as {user}")
        deadline = time.monotonic() + 1800
        while store.signals().count_rows("processed_at IS NULL"):
            assert time.monotonic() < deadline, "the builder did not finish"
            time.sleep(2)
        sources = {
            row["memory_id"]: set(row["sources"])
            for row in store.memories()
            .search()
            .limit(None)
            .select(["memory_id", "sources"])
            .to_arrow()
            .to_pylist()
        }
        say(f"built: {len(sources)} memories")
        for n, path in enumerate(files):
            qa = json.loads(path.read_text())["qa"]
            for i, item in enumerate(qa[: args.questions or None]):
                messages = [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": item["question"]},
                ]
                body = {"model": MODEL, "messages": messages, "temperature": 0, "max_tokens": args.max_tokens}
                result: dict[str, Any] = {"category": item["category"], "gold": str(item["answer"])}
                for memory in (True, False) if i % 2 == 0 else (False, True):
                    extra = {"user": f"chat{n}"} if memory else {"memory": False}
                    answer = http.post("/v1/chat/completions", headers=key, json=body | extra)
                    answer.raise_for_status()
                    reply = answer.json()
                    text = reply["choices"][0]["message"]["content"]
                    side = "on" if memory else "off"
                    result[side] = f1(text, result["gold"])
                    if memory:
                        cited = set().union(*(sources.get(m, set()) for m in reply["engram"]["memory_ids"]))
                        result["evidence_packed"] = bool(cited & evidence_ids(item.get("evidence", [])))
                scored.append(result)
            say(f"{path.name}: {len(qa[: args.questions or None])} questions asked")

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "questions": len(rows),
            "f1_memory_on": round(100 * sum(r["on"] for r in rows) / len(rows), 1),
            "f1_memory_off": round(100 * sum(r["off"] for r in rows) / len(rows), 1),
            "evidence_packed": round(sum(r["evidence_packed"] for r in rows) / len(rows), 3),
        }

    categories = sorted({r["category"] for r in scored})
    report = {
        "split": args.split,
        "chats": [p.name for p in files],
        "model": MODEL,
        "all": summary(scored),
        **{f"category_{c}": summary([r for r in scored if r["category"] == c]) for c in categories},
    }
    print(json.dumps(report, indent=1), file=stdout, flush=True)


if __name__ == "__main__":
    main()
