"""The demo: a local Ray, synthetic signals for a few users, ingest, build, show memories and profiles."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cluster import Settings, Storage
from engram.tables import memory_table

DEMO_TENANT = "demo"


def run_demo(settings: Settings, *, users: int, sessions: int, console: Console) -> None:
    from memory import TenantStore, build, ingest_rows, list_memories
    from synthetic import generate

    data = generate(users=users, sessions_per_user=sessions, turns_per_session=8, seed=7)
    store = TenantStore(Storage.of(settings), DEMO_TENANT)
    console.rule(f"[bold]Engram demo[/bold]: tenant {DEMO_TENANT!r} in {store.uri}")
    report = ingest_rows(store, data.signals, settings.ingest, origin="synthetic")
    console.print(
        f"ingested {report.rows} rows: {report.accepted} accepted, {report.duplicates} duplicates, "
        f"{report.quarantined} quarantined"
    )
    for rejection in report.rejected[:5]:
        console.print(f"  [yellow]quarantined[/yellow] row {rejection.index}: {rejection.reason}")
    # Ray Data shows the build's progress itself (bars on a terminal, log lines elsewhere). Its
    # actor pool also makes the driver's core worker log one "constructor arguments in the object
    # store" line: Ray Data passes each pool actor its own map function by reference and keeps that
    # reference for the whole run (ray-project/ray#57733); no setting hides that C++ log line
    # without hiding every error the driver logs, so it stays.
    console.print("building memories on Ray Data")
    built = build(DEMO_TENANT, settings)
    console.print(
        f"built {built.memories_written} memories ({built.by_kind}) from {built.signals} signals "
        f"of {built.users} users in {built.seconds:.1f} s"
    )
    for user in sorted({str(s["user_id"]) for s in data.signals if isinstance(s.get("user_id"), str)})[
        :users
    ]:
        rows = list_memories(store, user, kinds=["fact", "preference"], limit=30)
        console.print(
            memory_table(rows, title=f"{user}: facts and preferences (superseded ones keep valid_to)")
        )
    profiles = store.profiles().search().limit(None).to_arrow().to_pylist()
    table = Table(
        "user",
        "signals",
        "sessions",
        "by source",
        "top topics",
        "current facts",
        "last active",
        title="profiles",
    )
    for p in sorted(profiles, key=lambda p: p["user_id"]):
        table.add_row(
            p["user_id"],
            str(p["signals"]),
            str(p["sessions"]),
            ", ".join(f"{k}={v}" for k, v in p["by_source"]),
            ", ".join(p["top_topics"][:5]),
            "; ".join(f"{k}={v}" for k, v in p["current_facts"])[:120],
            f"{p['last_active']:%Y-%m-%d}",
        )
    console.print(table)
