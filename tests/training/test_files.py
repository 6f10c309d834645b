"""Fine-tune files: the line-by-line report on the real tokenizer, sealed storage, tenant isolation."""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from actors.files import FileStore, files
from cluster import crypto
from cluster.errors import DecryptionError, InvalidRequestError, NotFoundError
from cluster.settings import load_settings
from training.bootstrap import bootstrap_model
from training.files import FileValidationError, tokenizer_for, upload, validate_chat_jsonl


@cache
def tiny_model() -> Path:
    """The bootstrapped base model, built once per test process (about ten seconds)."""
    folder = tempfile.mkdtemp(prefix="engram-tiny-")
    atexit.register(shutil.rmtree, folder, True)
    return bootstrap_model(Path(folder) / "engram-tiny")


def install_tiny_model(storage_root: Path) -> None:
    """Put the built model where the embedded default is looked for, so nothing is bootstrapped again."""
    shutil.copytree(tiny_model(), storage_root / "models" / "engram-tiny")


def example(question: str, answer: str, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def jsonl(*rows: Any) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    install_tiny_model(tmp_path)
    settings = load_settings(
        storage_root=str(tmp_path), files={"max_example_tokens": 64, "max_file_bytes": 4096}
    )
    return FileStore(settings)


def test_every_bad_line_is_reported_with_its_number() -> None:
    tokenizer = tokenizer_for(str(tiny_model()))
    good = example("Where do I live?", "In Lisbon.", system="Be brief.")
    data = jsonl(
        good,  # 1
        b'{"messages": [',  # 2
        [1, 2],  # 3
        {},  # 4
        {"messages": []},  # 5
        {"messages": [{"role": "bot", "content": "hi"}]},  # 6
        {**example("a", "b"), "tools": []},  # 7
        {"messages": [{"role": "user", "content": "a", "name": "x"}, {"role": "assistant", "content": "b"}]},
        example("What now?", "   "),  # 9
        {"messages": [{"role": "user", "content": "hello"}]},  # 10
        good,  # 11
        example("Tell me everything. " * 40, "No."),  # 12
        b"   ",  # 13: blank, skipped
        example("And the weather?", "Sunny."),  # 14
        b"\xff\xfe",  # 15
        b"[" * 100_000,  # 16: nested too deep for the parser
        b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "b"}]}',
    )
    report = validate_chat_jsonl(data, tokenizer, max_tokens=64)
    errors = {p.line: p.error for p in report.problems}
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17]
    assert errors[2].startswith("invalid JSON")
    assert errors[3] == "not a JSON object but list"
    assert errors[4] == "missing 'messages'"
    assert errors[5] == "'messages' must be a non-empty list"
    assert "messages[0].role must be one of" in errors[6] and "'bot'" in errors[6]
    assert errors[7].startswith("unknown key 'tools'")
    assert errors[8].startswith("messages[0] has unknown key 'name'")
    assert errors[9] == "messages[1].content is empty"
    assert errors[10].startswith("no assistant message")
    assert errors[11] == "duplicate of line 1"
    assert errors[12].endswith("tokens, over the limit of 64")
    assert errors[15] == "not UTF-8 text"
    assert errors[16].startswith("invalid JSON: RecursionError")
    assert errors[17].startswith("messages[0].content holds an unpaired UTF-16 surrogate")
    weather = example("And the weather?", "Sunny.")
    assert report.lines == 16 and report.examples == [good["messages"], weather["messages"]]
    expected = sum(
        len(
            tokenizer(tokenizer.apply_chat_template(m, tokenize=False), add_special_tokens=False)["input_ids"]
        )
        for m in report.examples
    )
    assert report.tokens == expected > 10


def test_a_file_with_any_bad_line_is_refused_whole(store: FileStore, tmp_path: Path) -> None:
    rows = [example(f"Question {i}?", f"Answer {i}.") for i in range(30)]
    rows[3], rows[7] = {"messages": "nope"}, rows[0]
    with pytest.raises(FileValidationError) as e:
        upload(store, "acme", "train.jsonl", "fine-tune", jsonl(*rows))
    assert e.value.param == "file" and e.value.problems == [
        {"line": 4, "error": "'messages' must be a non-empty list"},
        {"line": 8, "error": "duplicate of line 1"},
    ]
    assert "2 of 30 lines are invalid" in e.value.message and "line 4" in e.value.message
    many = [b"{"] * 25
    with pytest.raises(FileValidationError) as e:
        upload(store, "acme", "train.jsonl", "fine-tune", jsonl(*many))
    assert len(e.value.problems) == 20 and "and 20 more" in e.value.message
    for data, needle in [(b"", "empty"), (b"\n \n", "empty"), (jsonl(*rows[8:]) * 4, "over 4096 bytes")]:
        with pytest.raises(InvalidRequestError, match=needle) as refused:
            upload(store, "acme", "train.jsonl", "fine-tune", data)
        assert refused.value.param == "file"
    with pytest.raises(InvalidRequestError) as wrong:
        upload(store, "acme", "train.jsonl", "assistants", jsonl(rows[0]))
    assert wrong.value.param == "purpose"
    assert store.list("acme") == [] and not (tmp_path / "tenants" / "acme" / "files").exists()


def test_stored_sealed_and_read_back(store: FileStore) -> None:
    marker = "zebracrossing-4411"
    rows = [example(f"Where is {marker} {i}?", f"Near the river {i}.") for i in range(3)]
    data = b"\xef\xbb\xbf" + jsonl(*rows).replace(b"\n", b"\r\n")  # a BOM and CRLF, as some editors save
    record = upload(store, "acme", "train.jsonl", "fine-tune", data)
    assert record["file_id"].startswith("file-") and record["bytes"] == len(data)
    assert record["examples"] == 3 and record["tokens"] > 0
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["created_at"].tzinfo
    sealed = store.storage.read_bytes(store.key("acme", record["file_id"]))
    assert sealed.startswith(crypto.MAGIC) and marker.encode() not in sealed
    assert store.content("acme", record["file_id"]) == data
    assert store.examples("acme", record["file_id"]) == [r["messages"] for r in rows]
    assert store.get("acme", record["file_id"]) == record
    # bound to its tenant and id: the same bytes do not open as another file
    other = f"acme/files/file-{'0' * 32}"
    with pytest.raises(DecryptionError):
        crypto.decrypt_stream(io.BytesIO(sealed), io.BytesIO(), store.keys.key("acme"), other)


def test_tenants_see_only_their_own_files(store: FileStore) -> None:
    mine = [upload(store, "acme", f"f{i}.jsonl", "fine-tune", jsonl(example(f"q{i}", "a"))) for i in range(3)]
    theirs = upload(store, "globex", "g.jsonl", "fine-tune", jsonl(example("q", "a")))
    ids = [r["file_id"] for r in mine]
    assert [r["file_id"] for r in store.list("acme")] == ids[::-1]  # newest first
    assert [r["file_id"] for r in store.list("acme", limit=2)] == ids[:0:-1]
    assert [r["file_id"] for r in store.list("acme", after=ids[1])] == ids[:1]
    assert [r["file_id"] for r in store.list("globex")] == [theirs["file_id"]]
    for call in (store.get, store.content, store.examples, store.delete):
        with pytest.raises(NotFoundError) as e:
            call("globex", ids[0])
        assert e.value.param == "file_id"
    with pytest.raises(NotFoundError) as e:
        store.list("globex", after=ids[0])
    assert e.value.param == "after"
    store.delete("acme", ids[0])
    assert not store.storage.exists(store.key("acme", ids[0]))
    with pytest.raises(NotFoundError):
        store.get("acme", ids[0])
    with store.engine.connect() as db:
        assert db.execute(select(files.c.file_id).where(files.c.tenant_id == "acme")).scalars().all() != []
    assert store.get("globex", theirs["file_id"])["filename"] == "g.jsonl"
