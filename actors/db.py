"""The control plane's SQL database: one SQLAlchemy metadata for every table, one engine per URL."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Engine

metadata = MetaData()


@lru_cache(maxsize=8)
def engine_for(database_url: str) -> Engine:
    """An engine on ``database_url`` with every table created (SQLite: the file's folder too)."""
    engine = create_engine(database_url, future=True)
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    # Every table module registers on `metadata` before the first engine is made.
    import actors.models
    import actors.tenants  # noqa: F401

    metadata.create_all(engine)
    return engine
