"""A tenant's fine-tune files (OpenAI's ``/v1/files`` with purpose ``fine-tune``): validated, sealed.

An upload is JSONL in OpenAI's chat format, one example per line::

    {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}

``validate_chat_jsonl`` checks every line and reports each problem with its line number: bad
JSON, not an object, missing or empty ``messages``, unknown roles or keys, empty content, no
assistant turn, too many tokens (the default base model's tokenizer with its chat template),
exact duplicates. A file with any problem is refused whole (``FileValidationError``).

A stored file is sealed with the tenant's data key (``cluster.crypto``) under
``tenants/<tenant>/files/<file_id>.jsonl.enc``, bound to its tenant and id; its record lives in
the ``files`` table. Another tenant's file is "not found", exactly like a missing one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, String, Table, and_, delete, insert, or_, select

from actors.db import engine_for, metadata
from actors.keys import DataKeys
from cluster.crypto import decrypt_stream, encrypt_stream
from cluster.errors import InvalidRequestError, NotFoundError
from cluster.paths import tenant_path, validate_tenant_id
from cluster.settings import Settings
from training.bootstrap import ensure_base_model
from training.data import message_problem

PURPOSE = "fine-tune"
MAX_REPORTED = 20  # problems named in a refusal
FILE_ID = r"^file-[0-9a-f]{32}$"
MAX_FILENAME = 255
_TOKENIZER_LOCK = threading.Lock()

files = Table(
    "files",
    metadata,
    Column("file_id", String(64), primary_key=True),
    Column("tenant_id", String(63), nullable=False, index=True),
    Column("filename", String(MAX_FILENAME), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("examples", Integer, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Messages = list[dict[str, str]]
RECORD_FIELDS = ("file_id", "filename", "purpose", "bytes", "sha256", "examples", "tokens", "created_at")


class FileValidationError(InvalidRequestError):
    """An upload with bad lines; ``problems`` holds the first ``MAX_REPORTED`` as ``{"line", "error"}``."""

    @property
    def problems(self) -> list[dict[str, Any]]:
        return list(self.context.get("problems", []))


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based
    error: str


@dataclass(frozen=True)
class Report:
    """What validation found: the valid examples, their total tokens, and every problem."""

    examples: list[Messages]
    tokens: int
    problems: list[Problem]
    lines: int  # non-blank lines


# -- validation ---------------------------------------------------------------------------------


def _check_example(value: Any) -> tuple[Messages | None, str | None]:
    """The example's messages, or the first thing wrong with it."""
    if not isinstance(value, dict):
        return None, f"not a JSON object but {type(value).__name__}"
    unknown = sorted(set(value) - {"messages"})
    if unknown:
        return None, f"unknown key {unknown[0]!r}: an example holds only 'messages'"
    messages = value.get("messages")
    if messages is None:
        return None, "missing 'messages'"
    problem = message_problem(messages)
    return (None, problem) if problem is not None else (messages, None)


def _token_counts(tokenizer: Any, examples: Sequence[Messages], chat_template: str | None) -> list[int | str]:
    """Tokens of each example with the chat template applied, or why the template refused it."""
    from jinja2.exceptions import TemplateError

    texts: list[str] = []
    refused: dict[int, str] = {}
    for i, messages in enumerate(examples):
        try:
            texts.append(tokenizer.apply_chat_template(messages, tokenize=False, chat_template=chat_template))
        except TemplateError as e:
            refused[i] = f"the base model's chat template refuses it: {e}"
            texts.append("")
    with _TOKENIZER_LOCK:  # a fast tokenizer is not safe to call from two threads at once
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    return [refused.get(i, len(row)) for i, row in enumerate(ids)]


def validate_chat_jsonl(
    data: bytes, tokenizer: Any, max_tokens: int, chat_template: str | None = None
) -> Report:
    """Check every line of a chat-format JSONL file; blank lines are skipped."""
    problems: list[Problem] = []
    candidates: list[tuple[int, Messages]] = []
    seen: dict[str, int] = {}
    lines = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        lines += 1
        try:
            value = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))  # a BOM may lead
        except UnicodeDecodeError:
            problems.append(Problem(number, "not UTF-8 text"))
            continue
        except json.JSONDecodeError as e:
            problems.append(Problem(number, f"invalid JSON: {e.msg} at column {e.colno}"))
            continue
        except (ValueError, RecursionError) as e:  # a number too long to convert, nesting too deep
            problems.append(Problem(number, f"invalid JSON: {type(e).__name__}: {str(e)[:100]}"))
            continue
        messages, error = _check_example(value)
        if messages is None:
            problems.append(Problem(number, error or "invalid example"))
            continue
        canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
        if canonical in seen:
            problems.append(Problem(number, f"duplicate of line {seen[canonical]}"))
            continue
        seen[canonical] = number
        candidates.append((number, messages))
    counts = _token_counts(tokenizer, [m for _, m in candidates], chat_template)
    examples: list[Messages] = []
    tokens = 0
    for (number, messages), count in zip(candidates, counts, strict=True):
        if isinstance(count, str):
            problems.append(Problem(number, count))
        elif count > max_tokens:
            problems.append(Problem(number, f"{count} tokens, over the limit of {max_tokens}"))
        else:
            examples.append(messages)
            tokens += count
    problems.sort(key=lambda p: p.line)
    return Report(examples, tokens, problems, lines)


@lru_cache(maxsize=8)
def tokenizer_for(folder: str) -> Any:
    """The Hugging Face tokenizer in a checkpoint folder, loaded once per folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def default_base_model(settings: Settings) -> str:
    """The base model uploads are validated against: the first of ``llm.base_models``."""
    return next(iter(settings.llm.base_models))


# -- storage ------------------------------------------------------------------------------------


def _context(tenant_id: str, file_id: str) -> str:
    return f"{tenant_id}/files/{file_id}"


def _record(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A file's record (without its tenant); ``created_at`` in UTC (SQLite hands back naive times)."""
    record = {name: row[name] for name in RECORD_FIELDS}
    created: datetime = record["created_at"]
    record["created_at"] = created if created.tzinfo else created.replace(tzinfo=UTC)
    return record


class FileStore:
    """A tenant's fine-tune files: records in SQL, contents sealed under the tenant's folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = engine_for(settings.api.control_db_url(settings.storage_root))
        self.keys = DataKeys.from_settings(settings)

    def path(self, tenant_id: str, file_id: str) -> Path:
        return Path(tenant_path(self.settings.storage_root, tenant_id, "files", f"{file_id}.jsonl.enc"))

    def validate(self, data: bytes) -> Report:
        """Validate ``data`` against the default base model; FileValidationError if any line is bad."""
        limit = self.settings.files.max_file_bytes
        if not data.strip():
            raise InvalidRequestError("the file is empty", param="file")
        if len(data) > limit:
            raise InvalidRequestError(f"the file is over {limit} bytes", param="file")
        name = default_base_model(self.settings)
        spec = self.settings.llm.base_models[name]
        tokenizer = tokenizer_for(ensure_base_model(self.settings, name))
        report = validate_chat_jsonl(
            data, tokenizer, self.settings.files.max_example_tokens, spec.chat_template
        )
        if report.problems:
            shown = report.problems[:MAX_REPORTED]
            listed = "; ".join(f"line {p.line}: {p.error}" for p in shown[:5])
            more = f"; and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
            raise FileValidationError(
                f"{len(report.problems)} of {report.lines} lines are invalid, so the file is refused: "
                f"{listed}{more}",
                param="file",
                problems=[{"line": p.line, "error": p.error} for p in shown],
            )
        return report

    def create(self, tenant_id: str, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        """Validate and store a file; returns its record."""
        validate_tenant_id(tenant_id)
        if purpose != PURPOSE:
            raise InvalidRequestError(f"purpose must be {PURPOSE!r}, not {purpose!r}", param="purpose")
        if not filename or len(filename) > MAX_FILENAME or not filename.isprintable():
            raise InvalidRequestError(
                f"the file name must be 1-{MAX_FILENAME} printable characters", param="file"
            )
        report = self.validate(data)
        file_id = f"file-{os.urandom(16).hex()}"
        data_key = self.keys.key(tenant_id)  # KeyDestroyedError for a deleted tenant: nothing is written
        target = self.path(tenant_id, file_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.partial")
        try:
            with open(staging, "wb") as out:
                encrypt_stream(io.BytesIO(data), out, data_key, _context(tenant_id, file_id))
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        values = {
            "file_id": file_id,
            "tenant_id": tenant_id,
            "filename": filename,
            "purpose": purpose,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "examples": len(report.examples),
            "tokens": report.tokens,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.engine.begin() as db:
                db.execute(insert(files).values(**values))
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return _record(values)

    def get(self, tenant_id: str, file_id: str) -> dict[str, Any]:
        with self.engine.connect() as db:
            row = db.execute(
                select(files).where(files.c.file_id == file_id, files.c.tenant_id == tenant_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no file {file_id!r}", param="file_id")
        return _record(row._mapping)

    def delete(self, tenant_id: str, file_id: str) -> None:
        with self.engine.begin() as db:
            removed = db.execute(
                delete(files).where(files.c.file_id == file_id, files.c.tenant_id == tenant_id)
            ).rowcount
        if not removed:
            raise NotFoundError(f"no file {file_id!r}", param="file_id")
        self.path(tenant_id, file_id).unlink(missing_ok=True)

    def content(self, tenant_id: str, file_id: str) -> bytes:
        """The file as uploaded, decrypted in memory (fine-tune files are small)."""
        self.get(tenant_id, file_id)
        plain = io.BytesIO()
        try:
            with open(self.path(tenant_id, file_id), "rb") as sealed:
                data_key = self.keys.key(tenant_id, create=False)
                decrypt_stream(sealed, plain, data_key, _context(tenant_id, file_id), name=file_id)
        except FileNotFoundError:  # deleted since the record was read
            raise NotFoundError(f"no file {file_id!r}", param="file_id") from None
        return plain.getvalue()

    def examples(self, tenant_id: str, file_id: str) -> list[Messages]:
        """The file's examples (each a list of messages), for a training recipe."""
        lines = self.content(tenant_id, file_id).decode("utf-8-sig").split("\n")  # validated: UTF-8
        return [json.loads(line)["messages"] for line in lines if line.strip()]

    def list(self, tenant_id: str, limit: int = 100, after: str | None = None) -> list[dict[str, Any]]:
        """The tenant's files, newest first; ``after`` a file id continues a listing past it."""
        query = select(files).where(files.c.tenant_id == tenant_id)
        if after is not None:
            with self.engine.connect() as db:
                mark = db.execute(
                    select(files.c.created_at).where(files.c.file_id == after, files.c.tenant_id == tenant_id)
                ).scalar()
            if mark is None:
                raise NotFoundError(f"no file {after!r}", param="after")
            query = query.where(
                or_(files.c.created_at < mark, and_(files.c.created_at == mark, files.c.file_id < after))
            )
        query = query.order_by(files.c.created_at.desc(), files.c.file_id.desc()).limit(limit)
        with self.engine.connect() as db:
            return [_record(row._mapping) for row in db.execute(query).all()]
