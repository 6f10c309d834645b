"""The control plane's tests run on both of its databases: SQLite (embedded) and PostgreSQL (clusters)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import Settings, load_settings
from tests.conftest import new_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh control database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/control.db"
    return new_database(request.getfixturevalue("postgres"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings whose control plane is ``database_url`` (both databases, in turn)."""
    return load_settings(storage_root=str(tmp_path / "store"), api={"database_url": database_url})
