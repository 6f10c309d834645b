"""The storage layer: every byte of tenant data and models, on a local folder or an object store.

The storage root (``storage_root``) is a local folder or an object-store URI (``s3://bucket/prefix``,
``gs://...``, ``abfs://...``: what ``pyarrow.fs`` opens). ``Storage`` holds its filesystem and is
the one place where a location is made from the root: other modules name what they store by a
*key*, a ``/``-separated path under the root built by ``cluster.paths`` from validated ids
(``tenants/acme/files/file-....jsonl.enc``).

Writes are atomic: a file appears whole or not at all. On a local disk it is written under a
temporary name beside its place and then renamed; an object store makes an object visible only
once its upload completed (multipart uploads included), so objects are written in place. A folder
(``put_tree``) is published file by file; callers make it visible afterwards (a version row in
SQL), so nobody reads one half written.

Credentials and endpoints come from the settings (``storage.endpoint``, ``storage.region``) or
from the environment variables pyarrow and LanceDB read themselves (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``), so a
cluster configured the usual way needs no Engram-specific keys. LanceDB tables get the same
location (``uri``) and options (``lance_options``).

What a node keeps for itself (decrypted adapter copies, base-model copies for the engines,
ONNX exports, training work folders) is not here: it is node-local scratch, named as such
where it is made.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

import pyarrow.fs as pafs

from cluster.errors import ConfigError
from cluster.settings import Settings, StorageSettings, is_object_store


@dataclass(frozen=True)
class Entry:
    """A stored file: its key, size in bytes and last change."""

    key: str
    size: int
    mtime: datetime | None


class Storage:
    """The storage root: every read, write, listing and deletion of stored files goes through it."""

    def __init__(self, root: str, options: StorageSettings | None = None) -> None:
        self.root = root.rstrip("/") or "/"
        self.options = options or StorageSettings()
        self.local = not is_object_store(self.root)
        self.fs, self.base = _filesystem(self.root, self.options)

    @staticmethod
    def of(settings: Settings) -> Storage:
        """The storage of ``settings`` (one per root and options in a process)."""
        return _storage(settings.storage_root, settings.storage)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Storage, (self.root, self.options))

    def __repr__(self) -> str:
        return f"Storage({self.root!r})"

    # -- locations --------------------------------------------------------------------------

    def uri(self, key: str = "") -> str:
        """The full location of ``key``: a local path or an object-store URI (for LanceDB, Ray Train)."""
        return f"{self.root}/{key}" if key else self.root

    def local_path(self, key: str) -> Path:
        """``key`` as a local path, on a local root only (files that must stay on one machine)."""
        if not self.local:
            raise ConfigError(f"{key} is kept only under a local storage root, not {self.root}", param=key)
        return Path(self.uri(key))

    def lance_options(self) -> dict[str, str]:
        """LanceDB's ``storage_options`` for this root: what the settings name (the environment
        variables give the rest)."""
        options: dict[str, str] = {}
        if self.options.endpoint:
            options["aws_endpoint"] = self.options.endpoint
            if self.options.endpoint.startswith("http://"):
                options["allow_http"] = "true"
        if self.options.region:
            options["aws_region"] = self.options.region
        return options

    def fs_path(self, key: str) -> str:
        """``key``'s path inside ``fs`` (for libraries that take a filesystem and a path: Ray Train)."""
        return f"{self.base}/{key}" if key else self.base

    def _key(self, path: str) -> str:
        return path[len(self.base) :].lstrip("/")

    # -- files ------------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        return bool(self.fs.get_file_info(self.fs_path(key)).type != pafs.FileType.NotFound)

    def is_file(self, key: str) -> bool:
        return bool(self.fs.get_file_info(self.fs_path(key)).type == pafs.FileType.File)

    def read_bytes(self, key: str) -> bytes:
        """The file's bytes; FileNotFoundError when there is none."""
        with self.open_input(key) as source:
            return bytes(source.read())

    @contextmanager
    def open_input(self, key: str) -> Iterator[BinaryIO]:
        """A stream of the file; FileNotFoundError when there is none."""
        try:
            stream = self.fs.open_input_stream(self.fs_path(key))
        except (FileNotFoundError, OSError) as e:
            if not self.exists(key):
                raise FileNotFoundError(self.uri(key)) from e
            raise
        with stream:
            yield stream

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_output(key) as out:
            out.write(data)

    @contextmanager
    def open_output(self, key: str) -> Iterator[BinaryIO]:
        """A stream that becomes the file ``key`` when the block ends without an error (atomic)."""
        path = self.fs_path(key)
        if self.local:
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            staging = f"{path.rsplit('/', 1)[0]}/.{path.rsplit('/', 1)[1]}.{secrets.token_hex(4)}.partial"
            try:
                with self.fs.open_output_stream(staging) as out:
                    yield out
                self.fs.move(staging, path)
            finally:
                if self.fs.get_file_info(staging).type != pafs.FileType.NotFound:
                    self.fs.delete_file(staging)
            return
        out = self.fs.open_output_stream(path)
        try:
            yield out
        except BaseException:
            out.abort()  # an unfinished upload leaves no object
            raise
        out.close()

    def delete(self, key: str) -> bool:
        """Remove one file; whether there was one."""
        try:
            self.fs.delete_file(self.fs_path(key))
        except FileNotFoundError:
            return False
        return True

    # -- folders ----------------------------------------------------------------------------

    def files(self, prefix: str) -> list[Entry]:
        """Every file under ``prefix`` (recursively), by key; none when there is no such folder."""
        selector = pafs.FileSelector(self.fs_path(prefix), recursive=True, allow_not_found=True)
        for attempt in range(3):
            try:
                infos = self.fs.get_file_info(selector)
                break
            except FileNotFoundError:  # a file went while the folder was walked (LanceDB's clean-up)
                if attempt == 2:
                    raise
        return sorted(
            (
                Entry(self._key(i.path), int(i.size or 0), i.mtime)
                for i in infos
                if i.type == pafs.FileType.File
            ),
            key=lambda e: e.key,
        )

    def children(self, prefix: str) -> list[str]:
        """The names right under ``prefix`` (files and folders)."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.fs_path(prefix), allow_not_found=True))
        return sorted(i.base_name for i in infos)

    def size(self, prefix: str) -> tuple[int, int]:
        """Files and bytes under ``prefix``."""
        entries = self.files(prefix)
        return len(entries), sum(e.size for e in entries)

    def delete_tree(self, prefix: str) -> None:
        """Remove ``prefix`` and everything under it (nothing when it is absent)."""
        path = self.fs_path(prefix)
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return
        self.fs.delete_dir(path)

    def put_tree(self, source: str | Path, prefix: str) -> list[str]:
        """Copy every file of the local folder ``source`` under ``prefix`` (each one atomically;
        what else is there stays); returns the relative names written."""
        source = Path(source)
        names = []
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = path.relative_to(source).as_posix()
            with open(path, "rb") as src, self.open_output(f"{prefix}/{relative}") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            names.append(relative)
        return names

    def get_tree(self, prefix: str, target: str | Path) -> list[str]:
        """Copy every file under ``prefix`` into the local folder ``target``; the relative names."""
        target = Path(target)
        names = []
        for entry in self.files(prefix):
            relative = entry.key[len(prefix) :].lstrip("/")
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with self.open_input(entry.key) as src, open(destination, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            names.append(relative)
        return names


@lru_cache(maxsize=16)
def _storage(root: str, options: StorageSettings) -> Storage:
    return Storage(root, options)


def _filesystem(root: str, options: StorageSettings) -> tuple[pafs.FileSystem, str]:
    """The filesystem of ``root`` and the root's path inside it."""
    if not is_object_store(root):
        local = root.removeprefix("file://")
        os.makedirs(local, exist_ok=True)
        return pafs.LocalFileSystem(), local
    if root.startswith("s3://") and (options.endpoint or options.region):
        parsed = urlparse(root)
        endpoint = urlparse(options.endpoint) if options.endpoint else None
        s3 = pafs.S3FileSystem(
            endpoint_override=endpoint.netloc if endpoint else None,
            scheme=endpoint.scheme if endpoint else "https",
            region=options.region,
        )
        return s3, f"{parsed.netloc}{parsed.path}".rstrip("/")
    fs, path = pafs.FileSystem.from_uri(root)
    return fs, path.rstrip("/")
