"""Envelope encryption at rest: a master key wraps one data key per tenant; files are sealed with it.

Keys. The master key (32 bytes, ``security.master_key``) never touches data: it only wraps each
tenant's 32-byte data key (AES-256-GCM, bound to the tenant id), and only the wrapped form is
stored (``actors.keys``). Destroying a wrapped data key makes everything sealed with it
unreadable for good, wherever copies of the sealed files went (crypto-erasure).

Files. A sealed file is a header and a run of AES-256-GCM chunks, so big files stream::

    header = b"EGRM" | version (1 byte) | chunk size (4 bytes, big-endian) | salt (16 bytes)
    chunk i = AES-GCM(file key, nonce = i (11 bytes) | last (1 byte), plaintext, aad = header | context)

The file key is HKDF-SHA256 of the data key and the file's random salt, so no two files share a
key and nonces are plain counters. The chunk index and the last-chunk flag in the nonce make
reordered, dropped, truncated or appended chunks fail; ``context`` (the tenant and the file's
place, e.g. ``acme/adapters/base.x/v1/adapter_config.json``) makes a file moved to another
tenant or name fail. Any failure is a ``DecryptionError``; nothing partial is left behind.
A folder (an adapter version, a training checkpoint) is sealed file by file into the storage
layer (``seal_tree``, ``cluster.storage``), on a local disk or an object store alike.

Plaintext exists only in private temporary folders (mode 0700) made by ``private_dir`` or
``decrypted``, for an engine that must read files (vLLM loading an adapter, a trainer resuming).
"""

from __future__ import annotations

import base64
import glob
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cluster.errors import ConfigError, DecryptionError, InvalidRequestError
from cluster.settings import Settings, is_object_store
from cluster.storage import Storage

KEY_BYTES = 32
MAGIC = b"EGRM"
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20
SUFFIX = ".enc"  # sealed files carry it, so no engine mistakes one for plaintext
MASTER_KEY_FILE = "master.key"

_HEADER = struct.Struct(">4sBI16s")
_TAG_BYTES = 16
_MAX_CHUNK = 64 << 20
_WRAP_VERSION = 1


@dataclass(frozen=True)
class Sealing:
    """A data key and the context what it seals is bound to (e.g. ``<tenant>/checkpoints/<run>``);
    the key never shows in a repr (Ray turns task arguments into strings for its state API)."""

    key: bytes = field(repr=False)
    context: str

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != KEY_BYTES:
            raise InvalidRequestError(f"sealing.key must be {KEY_BYTES} bytes", param="sealing.key")


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


# -- the master key -----------------------------------------------------------------------------


def master_key(settings: Settings) -> bytes:
    """The master key: ``security.master_key`` if set, else (local storage root only) the key in
    ``<storage_root>/master.key``, generated there once with mode 0600."""
    secret = settings.security.master_key
    if secret is not None:
        return base64.b64decode(secret.get_secret_value())
    if is_object_store(settings.storage_root):
        raise ConfigError(
            "security.master_key (ENGRAM_MASTER_KEY) is required when storage_root is an object store",
            param="security.master_key",
        )
    return _local_master_key(Storage.of(settings).local_path(MASTER_KEY_FILE))


def _local_master_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole under a private name, then linked into place: a process racing this one
        # either wins or reads the winner's complete file.
        staging = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(new_key()).decode() + "\n")
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"{path} is readable by others (mode {mode:o}): chmod 600 it, or set security.master_key",
            param="security.master_key",
        )
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except ValueError as e:
        raise ConfigError(f"{path} does not hold a base64 key", param="security.master_key") from e
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{path} holds {len(key)} bytes, not {KEY_BYTES}", param="security.master_key")
    return key


# -- wrapping data keys ---------------------------------------------------------------------------


def _wrap_aad(tenant_id: str) -> bytes:
    return b"engram/data-key/v1:" + tenant_id.encode()


def wrap_key(master: bytes, data_key: bytes, tenant_id: str) -> bytes:
    """``data_key`` sealed by the master key for ``tenant_id``: version | nonce | ciphertext+tag."""
    nonce = os.urandom(12)
    return bytes([_WRAP_VERSION]) + nonce + AESGCM(master).encrypt(nonce, data_key, _wrap_aad(tenant_id))


def unwrap_key(master: bytes, wrapped: bytes, tenant_id: str) -> bytes:
    """The data key in ``wrapped``; DecryptionError for another master key, tenant or altered bytes."""
    if len(wrapped) < 1 + 12 + _TAG_BYTES or wrapped[0] != _WRAP_VERSION:
        raise DecryptionError(
            f"the stored data key of tenant {tenant_id!r} is malformed (unknown wrap version or truncated)",
            param="tenant_id",
            tenant_id=tenant_id,
        )
    try:
        return AESGCM(master).decrypt(wrapped[1:13], wrapped[13:], _wrap_aad(tenant_id))
    except InvalidTag:
        raise DecryptionError(
            f"the data key of tenant {tenant_id!r} cannot be unwrapped: the master key is not the one that "
            "wrapped it, or the stored key was altered",
            param="security.master_key",
            tenant_id=tenant_id,
        ) from None


# -- sealing files ----------------------------------------------------------------------------------


def _file_cipher(data_key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"engram/file/v1")
    return AESGCM(hkdf.derive(data_key))


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt_stream(
    source: BinaryIO, out: BinaryIO, data_key: bytes, context: str, *, chunk_bytes: int = CHUNK_BYTES
) -> None:
    """Seal everything ``source`` holds into ``out``, chunk by chunk."""
    if not 1 <= chunk_bytes <= _MAX_CHUNK:
        raise InvalidRequestError(f"chunk_bytes must be in 1..{_MAX_CHUNK}", param="chunk_bytes")
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, chunk_bytes, os.urandom(16))
    aad = header + context.encode()
    cipher = _file_cipher(data_key, header[-16:])
    out.write(header)
    index, chunk = 0, source.read(chunk_bytes)
    while True:
        following = source.read(chunk_bytes) if len(chunk) == chunk_bytes else b""
        last = not following
        out.write(cipher.encrypt(_nonce(index, last), chunk, aad))
        if last:
            return
        index, chunk = index + 1, following


def decrypt_stream(source: BinaryIO, out: BinaryIO, data_key: bytes, context: str, *, name: str = "") -> None:
    """Open a sealed stream into ``out``; DecryptionError if anything is off (``out`` may then hold
    a verified prefix: callers write to a place they discard on error)."""
    what = name or "sealed data"

    def fail(reason: str) -> DecryptionError:
        return DecryptionError(f"{what} cannot be decrypted: {reason}", param="path", path=name)

    header = source.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise fail("shorter than its header")
    magic, version, chunk_bytes, salt = _HEADER.unpack(header)
    if magic != MAGIC:
        raise fail("not a sealed Engram file")
    if version != FORMAT_VERSION:
        raise fail(f"format version {version}; this build reads version {FORMAT_VERSION}")
    if not 1 <= chunk_bytes <= _MAX_CHUNK:
        raise fail(f"bad chunk size {chunk_bytes}")
    aad = header + context.encode()
    cipher = _file_cipher(data_key, salt)
    size = chunk_bytes + _TAG_BYTES
    index, chunk = 0, source.read(size)
    while True:
        following = source.read(size)
        last = not following
        try:
            out.write(cipher.decrypt(_nonce(index, last), chunk, aad))
        except InvalidTag:
            raise fail(
                "altered, truncated, or sealed with another key or for another place (tenant or name)"
            ) from None
        if last:
            return
        index, chunk = index + 1, following


def _file_context(context: str, relative: str) -> str:
    return f"{context}/{relative}"


def seal_tree(source: str | Path, storage: Storage, prefix: str, data_key: bytes, context: str) -> list[str]:
    """Seal every file under the local folder ``source`` into ``storage`` under ``prefix``
    (``<name>.enc``, same layout), replacing what was there; returns the names sealed.

    Each file is written atomically; callers publish the folder afterwards (a version row), so it
    is never read half written. Only regular files and folders are accepted (a link could pull in
    anything), and everything is checked before anything is written.
    """
    source = Path(source)
    if not source.is_dir():
        raise InvalidRequestError(f"{source} is not a folder", param="source")
    files = []
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise InvalidRequestError(
                f"{path} is not a regular file or folder; only those are stored", param="source"
            )
        if path.is_file():
            files.append((path, path.relative_to(source).as_posix()))
    storage.delete_tree(prefix)
    for path, relative in files:
        with open(path, "rb") as src, storage.open_output(f"{prefix}/{relative}{SUFFIX}") as out:
            encrypt_stream(src, out, data_key, _file_context(context, relative))
    return [relative for _, relative in files]


def open_tree(storage: Storage, prefix: str, target: str | Path, data_key: bytes, context: str) -> None:
    """Open a folder sealed by ``seal_tree`` into the local folder ``target`` (new or empty);
    DecryptionError when there is no such folder or anything in it is off."""
    target = Path(target)
    sealed = [e.key for e in storage.files(prefix) if e.key.endswith(SUFFIX)]
    if not sealed:
        raise DecryptionError(f"{storage.uri(prefix)} is not a sealed folder", param="path", path=prefix)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    for key in sealed:
        relative = key[len(prefix) :].lstrip("/")[: -len(SUFFIX)]
        plain = target / relative
        plain.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            with storage.open_input(key) as src, open(plain, "wb") as out:
                decrypt_stream(src, out, data_key, _file_context(context, relative), name=storage.uri(key))
        except BaseException:
            plain.unlink(missing_ok=True)
            raise


# -- private plaintext -----------------------------------------------------------------------------


def private_dir(parent: str | Path | None = None, prefix: str = "engram-plain-") -> Path:
    """A new folder only this user can enter (mode 0700), under ``parent`` (node-local) or the
    system temp folder.

    Its name holds this process's id. A process that is killed (a stopped Serve replica, a
    cancelled training actor, a crash) removes nothing, so each call first removes the folders
    with the same prefix whose process no longer runs: plaintext outlives its process only until
    the next one on the node makes such a folder.
    """
    parent = Path(parent or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    sweep_orphans(parent, prefix)
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    os.chmod(folder, 0o700)
    return folder


def sweep_orphans(parent: Path, prefix: str) -> list[Path]:
    """Remove the folders ``private_dir`` made under ``parent`` for processes no longer running."""
    owned = re.compile(rf"^{re.escape(prefix)}(\d+)-")
    gone = []
    for folder in parent.glob(f"{glob.escape(prefix)}*-*"):
        owner = owned.match(folder.name)
        if owner and folder.is_dir() and not _running(int(owner.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        pass
    return True


@contextmanager
def decrypted(
    storage: Storage, prefix: str, data_key: bytes, context: str, *, parent: str | Path | None = None
) -> Iterator[Path]:
    """A private plaintext copy of a folder sealed by ``seal_tree``, removed when the block ends."""
    folder = private_dir(parent)
    try:
        plain = folder / "plain"
        open_tree(storage, prefix, plain, data_key, context)
        yield plain
    finally:
        shutil.rmtree(folder, ignore_errors=True)
