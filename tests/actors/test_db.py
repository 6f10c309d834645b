"""The control-plane schema: alembic migrations are the schema, and they match the tables in code."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DatabaseError

from actors.audit import AuditEvent, AuditLog
from actors.db import alembic_config, engine_for, load_tables, migrate


def _diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as db:
        return compare_metadata(MigrationContext.configure(db), load_tables())


def test_migrated_schema_matches_the_tables_in_code(database_url: str) -> None:
    url = database_url
    engine_for(url)
    assert _diff(url) == []
    with create_engine(url).connect() as db:
        assert MigrationContext.configure(db).get_current_revision() is not None


def test_downgrade_to_nothing_and_back(database_url: str) -> None:
    url = database_url
    engine = create_engine(url)
    migrate(engine)
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert _diff(url) == []


def test_a_database_from_before_migrations_is_adopted(database_url: str) -> None:
    """Tables of the first release (``metadata.create_all``, no alembic): stamped at 0001, upgraded."""
    url = database_url
    engine = create_engine(url)
    migrate(engine, "0001")  # the first release's tables, which 0001 recreates exactly
    with engine.begin() as db:
        db.execute(text("DROP TABLE alembic_version"))
        db.execute(text("INSERT INTO tenants VALUES ('old-t', 'Old', '2026-01-01 00:00:00')"))
    migrate(engine)
    assert _diff(url) == []
    with engine.connect() as db:
        assert db.execute(text("SELECT name FROM tenants")).scalar_one() == "Old"


def test_the_audit_log_refuses_updates_and_deletes(database_url: str) -> None:
    url = database_url
    log = AuditLog(url)
    first = log.append(AuditEvent("t1", "k1", "POST /v1/signals", "/v1/signals", 200))
    second = log.append(
        AuditEvent("t2", "admin", "DELETE /admin/tenants/{tenant_id}", "/admin/tenants/t2", 200)
    )
    assert second > first
    with pytest.raises(DatabaseError, match="append-only"), log.engine.begin() as db:
        db.execute(text("UPDATE audit_events SET status = 500"))
    with pytest.raises(DatabaseError, match="append-only"), log.engine.begin() as db:
        db.execute(text("DELETE FROM audit_events"))
    assert [e["status"] for e in log.events()] == [200, 200]
    assert [e["tenant_id"] for e in log.events("t1")] == ["t1"]
    assert log.events(after=first)[0]["event_id"] == second


def test_nominal_gpu_quotas_set_before_one_quota_table_are_kept(database_url: str) -> None:
    """0008 folds the broker's gpu_quotas into quotas.nominal_gpus, beside the other overrides."""
    url = database_url
    engine = create_engine(url)
    migrate(engine, "0007")
    with engine.begin() as db:
        at = "2026-01-01 00:00:00"
        db.execute(
            text(f"INSERT INTO quotas (tenant_id, tokens_per_min, updated_at) VALUES ('a', 9, '{at}')")
        )
        db.execute(text(f"INSERT INTO gpu_quotas VALUES ('a', 0.5, '{at}'), ('b', 2.0, '{at}')"))
    migrate(engine)
    assert _diff(url) == []
    with engine.connect() as db:
        rows = db.execute(text("SELECT tenant_id, tokens_per_min, nominal_gpus FROM quotas ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [("a", 9, 0.5), ("b", None, 2.0)]
    command.downgrade(alembic_config(engine), "0007")
    with engine.connect() as db:
        rows = db.execute(text("SELECT tenant_id, nominal_gpus FROM gpu_quotas ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [("a", 0.5), ("b", 2.0)]
