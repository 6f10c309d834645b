"""Encryption at rest: sealed files, wrapped keys, the master key, private plaintext copies."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest

from cluster import Storage, crypto
from cluster.errors import ConfigError, DecryptionError, InvalidRequestError
from cluster.settings import load_settings

KEY = bytes(range(32))
CHUNK = 64


def seal(data: bytes, key: bytes = KEY, context: str = "acme/files/a.txt") -> bytes:
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(data), out, key, context, chunk_bytes=CHUNK)
    return out.getvalue()


def unseal(sealed: bytes, key: bytes = KEY, context: str = "acme/files/a.txt") -> bytes:
    out = io.BytesIO()
    crypto.decrypt_stream(io.BytesIO(sealed), out, key, context)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_sealed_streams_round_trip_at_every_chunk_boundary(size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data)
    chunks = max(1, -(-size // CHUNK))
    assert len(sealed) == 25 + size + 16 * chunks
    assert sealed[:5] == b"EGRM\x01"  # magic and format version
    assert unseal(sealed) == data


def test_sealed_data_does_not_hold_the_plaintext() -> None:
    data = b"the quarterly numbers are secret " * 20
    assert b"quarterly" not in seal(data)
    assert seal(data) != seal(data)  # a fresh salt, hence a fresh file key, every time


def _chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    body = sealed[25:]
    return sealed[:25], [body[i : i + CHUNK + 16] for i in range(0, len(body), CHUNK + 16)]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda s: s[:40] + bytes([s[40] ^ 1]) + s[41:], id="flipped-bit"),
        pytest.param(lambda s: s[: 25 + 2 * (CHUNK + 16)], id="truncated-at-a-chunk-boundary"),
        pytest.param(lambda s: s[:-1], id="truncated-mid-chunk"),
        pytest.param(lambda s: s + s[25 : 25 + CHUNK + 16], id="chunk-appended"),
        pytest.param(
            lambda s: _chunks(s)[0] + _chunks(s)[1][1] + _chunks(s)[1][0] + b"".join(_chunks(s)[1][2:]),
            id="chunks-swapped",
        ),
        pytest.param(lambda s: s[:9] + os.urandom(16) + s[25:], id="salt-replaced"),
    ],
)
def test_altered_sealed_data_is_refused(tamper: object) -> None:
    sealed = seal(os.urandom(3 * CHUNK + 7))
    with pytest.raises(DecryptionError, match="cannot be decrypted"):
        unseal(tamper(sealed))  # type: ignore[operator]


def test_another_key_or_another_place_is_refused() -> None:
    sealed = seal(b"hello")
    with pytest.raises(DecryptionError, match="another key or for another place"):
        unseal(sealed, key=bytes(32))
    with pytest.raises(DecryptionError, match="another key or for another place"):
        unseal(sealed, context="globex/files/a.txt")


def test_unknown_format_versions_and_foreign_files_are_named() -> None:
    sealed = seal(b"hello")
    with pytest.raises(DecryptionError, match="format version 2"):
        unseal(sealed[:4] + b"\x02" + sealed[5:])
    with pytest.raises(DecryptionError, match="not a sealed Engram file"):
        unseal(b"PK\x03\x04" + sealed[4:])
    with pytest.raises(DecryptionError, match="shorter than its header"):
        unseal(b"EGRM")


def test_wrapped_keys_open_only_with_their_master_key_and_tenant() -> None:
    master, data_key = crypto.new_key(), crypto.new_key()
    wrapped = crypto.wrap_key(master, data_key, "acme")
    assert data_key not in wrapped and crypto.unwrap_key(master, wrapped, "acme") == data_key
    with pytest.raises(DecryptionError, match="master key is not the one that wrapped it") as e:
        crypto.unwrap_key(crypto.new_key(), wrapped, "acme")
    assert e.value.param == "security.master_key"
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(master, wrapped, "globex")  # a key row moved to another tenant
    with pytest.raises(DecryptionError, match="malformed"):
        crypto.unwrap_key(master, b"\x09" + wrapped[1:], "acme")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A storage root on the local disk, or on the S3 server."""
    if request.param == "local":
        return Storage(str(tmp_path / "store"))
    return Storage(request.getfixturevalue("s3_root"))


def test_trees_round_trip_and_refuse_links(tmp_path: Path, storage: Storage) -> None:
    source = tmp_path / "adapter"
    (source / "sub").mkdir(parents=True)
    (source / "adapter_config.json").write_text('{"r": 8}')
    (source / "sub" / "weights.bin").write_bytes(os.urandom(3 * crypto.CHUNK_BYTES // 2))
    names = crypto.seal_tree(source, storage, "sealed", KEY, "acme/adapters/m/v1")
    assert names == ["adapter_config.json", "sub/weights.bin"]
    assert [e.key for e in storage.files("sealed")] == [
        "sealed/adapter_config.json.enc",
        "sealed/sub/weights.bin.enc",
    ]
    assert b'"r": 8' not in storage.read_bytes("sealed/adapter_config.json.enc")
    with crypto.decrypted(storage, "sealed", KEY, "acme/adapters/m/v1") as plain:
        assert (plain / "adapter_config.json").read_text() == '{"r": 8}'
        assert (plain / "sub" / "weights.bin").read_bytes() == (source / "sub" / "weights.bin").read_bytes()
        private = plain.parent
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert not private.exists()
    with pytest.raises(DecryptionError), crypto.decrypted(storage, "sealed", KEY, "acme/adapters/m/v2"):
        pass  # the version's files do not open as another version
    (source / "link").symlink_to("/etc/passwd")
    with pytest.raises(InvalidRequestError, match="not a regular file") as e:
        crypto.seal_tree(source, storage, "again", KEY, "acme/adapters/m/v2")
    assert e.value.param == "source" and not storage.exists("again")


def test_a_failed_decryption_leaves_no_plaintext(tmp_path: Path, storage: Storage) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_bytes(os.urandom(5 * crypto.CHUNK_BYTES // 2))
    crypto.seal_tree(tmp_path / "in", storage, "sealed", KEY, "ctx")
    sealed = storage.read_bytes("sealed/a.txt.enc")
    storage.write_bytes("sealed/a.txt.enc", sealed[: -crypto.CHUNK_BYTES // 4])
    with pytest.raises(DecryptionError):
        crypto.open_tree(storage, "sealed", tmp_path / "out", KEY, "ctx")
    assert not (tmp_path / "out" / "a.txt").exists()


def test_the_local_master_key_is_made_once_and_private(tmp_path: Path) -> None:
    settings = load_settings(storage_root=str(tmp_path / "store"))
    key = crypto.master_key(settings)
    path = tmp_path / "store" / crypto.MASTER_KEY_FILE
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.master_key(settings) == key
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others") as e:
        crypto.master_key(settings)
    assert e.value.param == "security.master_key"


def test_an_explicit_master_key_is_validated_and_required_on_object_stores(tmp_path: Path) -> None:
    explicit = base64.b64encode(b"k" * 32).decode()
    settings = load_settings(storage_root=str(tmp_path), security={"master_key": explicit})
    assert crypto.master_key(settings) == b"k" * 32
    assert explicit not in repr(settings) and not (tmp_path / crypto.MASTER_KEY_FILE).exists()
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError) as e:
            load_settings(security={"master_key": bad})
        assert e.value.param == "security.master_key" and bad not in str(e.value)
        assert e.value.__cause__ is None  # the rejected secret is not carried along
    cloud = load_settings(
        storage_root="s3://bucket/engram",
        security={"master_key": explicit},
        api={"database_url": "sqlite://"},
    )
    assert crypto.master_key(cloud) == b"k" * 32
