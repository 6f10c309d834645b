"""A tenant's fine-tune files (OpenAI's ``/v1/files`` with purpose ``fine-tune``): records and sealed bytes.

A stored file is sealed with the tenant's data key (``cluster.crypto``) under
``tenants/<tenant>/files/<file_id>.jsonl.enc``, bound to its tenant and id; its record lives in
the ``files`` table. Another tenant's file is "not found", exactly like a missing one. What a file
may hold is checked before it is stored, by ``training.files`` (``upload``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, String, Table, and_, delete, insert, or_, select

from actors.db import engine_for, metadata
from actors.keys import DataKeys
from cluster import (
    InvalidRequestError,
    NotFoundError,
    Settings,
    Storage,
    area_key,
    crypto,
    validate_tenant_id,
)

PURPOSE = "fine-tune"
FILE_ID = r"^file-[0-9a-f]{32}$"
MAX_FILENAME = 255

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


def check_upload(filename: str, purpose: str) -> None:
    """An upload's purpose and name (its content is ``training.files``' to check)."""
    if purpose != PURPOSE:
        raise InvalidRequestError(f"purpose must be {PURPOSE!r}, not {purpose!r}", param="purpose")
    if not filename or len(filename) > MAX_FILENAME or not filename.isprintable():
        raise InvalidRequestError(
            f"the file name must be 1-{MAX_FILENAME} printable characters", param="file"
        )


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
        self.storage = Storage.of(settings)
        self.engine = engine_for(settings.control_db_url)
        self.keys = DataKeys.from_settings(settings)

    def key(self, tenant_id: str, file_id: str) -> str:
        """Where the sealed file is stored."""
        return area_key(tenant_id, "files", f"{file_id}.jsonl.enc")

    def add(
        self, tenant_id: str, filename: str, purpose: str, data: bytes, *, examples: int, tokens: int
    ) -> dict[str, Any]:
        """Seal and store a file that was validated (``training.files.upload``, which counted its
        ``examples`` and ``tokens``); returns its record."""
        validate_tenant_id(tenant_id)
        check_upload(filename, purpose)
        file_id = f"file-{os.urandom(16).hex()}"
        data_key = self.keys.key(tenant_id)  # KeyDestroyedError for a deleted tenant: nothing is written
        target = self.key(tenant_id, file_id)
        with self.storage.open_output(target) as out:
            crypto.encrypt_stream(io.BytesIO(data), out, data_key, _context(tenant_id, file_id))
        values = {
            "file_id": file_id,
            "tenant_id": tenant_id,
            "filename": filename,
            "purpose": purpose,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "examples": examples,
            "tokens": tokens,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.engine.begin() as db:
                db.execute(insert(files).values(**values))
        except BaseException:
            self.storage.delete(target)
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
        self.storage.delete(self.key(tenant_id, file_id))

    def content(self, tenant_id: str, file_id: str) -> bytes:
        """The file as uploaded, decrypted in memory (fine-tune files are small)."""
        self.get(tenant_id, file_id)
        plain = io.BytesIO()
        try:
            with self.storage.open_input(self.key(tenant_id, file_id)) as sealed:
                data_key = self.keys.key(tenant_id, create=False)
                crypto.decrypt_stream(sealed, plain, data_key, _context(tenant_id, file_id), name=file_id)
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
