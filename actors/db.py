"""The control plane's SQL database: one SQLAlchemy metadata for every table, one engine per URL.

The schema is owned by the alembic migrations in ``actors/migrations``: ``engine_for`` brings a
database to the newest revision before handing out its engine (under a lock, so processes
starting together migrate once). The ``Table`` objects on ``metadata`` describe the same schema
for queries; a test checks that the two agree.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine

metadata = MetaData()

# Modules that define tables on ``metadata``; each has its tables created by a migration.
TABLE_MODULES = (
    "actors.tenants",
    "actors.models",
    "actors.quotas",
    "actors.audit",
    "actors.keys",
    "actors.broker",
    "actors.files",
    "actors.jobs",
)
MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock key of the migration step (any constant shared by all processes).
_PG_LOCK = 0x656E6772616D


def load_tables() -> MetaData:
    """``metadata`` with every table module imported (and so every table registered)."""
    for module in TABLE_MODULES:
        importlib.import_module(module)
    return metadata


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``; a pre-migration database (tables, no alembic
    version) is stamped at the first revision, whose tables it already has."""
    config = alembic_config(engine)
    tables = set(inspect(engine).get_table_names())
    if "tenants" in tables and "alembic_version" not in tables:
        command.stamp(config, "0001")
    command.upgrade(config, revision)


@contextmanager
def serialized(engine: Engine, name: str) -> Iterator[Connection]:
    """A transaction that holds the database-wide lock ``name`` from its start, so that such
    transactions run one at a time across every process on the database (a read-decide-write, as
    the broker's scheduling): on PostgreSQL an advisory transaction lock, on SQLite its write lock,
    taken by a first write that changes nothing. Reads made meanwhile on other connections see
    everything the previous holder committed."""
    with engine.begin() as db:
        if db.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        else:
            db.execute(text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"))
        yield db


@lru_cache(maxsize=8)
def engine_for(database_url: str) -> Engine:
    """An engine on ``database_url``, its schema migrated to the newest revision."""
    engine = create_engine(database_url, future=True)
    load_tables()
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        path = Path(engine.url.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.migrate.lock"):
            migrate(engine)
    elif engine.url.get_backend_name() == "postgresql":
        with engine.connect() as db:
            db.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK})
            try:
                migrate(engine)
            finally:
                db.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK})
    else:
        migrate(engine)
    return engine


def schema_revision(database_url: str) -> tuple[str, str]:
    """Migrate ``database_url`` to the newest schema; its URL (password hidden) and revision."""
    engine = engine_for(database_url)
    with engine.connect() as db:
        revision = db.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    return engine.url.render_as_string(hide_password=True), revision
