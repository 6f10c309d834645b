"""The ``engram`` command line: a thin client over the same Python API users call."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cluster import MEMORY_KINDS, EngramError, MemoryKind, Settings, Storage, load_settings
from engram.tables import memory_table

app = typer.Typer(
    help="Engram: per-user memory and per-tenant models for LLM assistants.", no_args_is_help=True
)
memories_app = typer.Typer(help="Read a tenant's memories.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Read a tenant's quarantined signals.", no_args_is_help=True)
app.add_typer(memories_app, name="memories")
models_app = typer.Typer(help="Base models and tenants' fine-tuned models.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(models_app, name="models")
console = Console()

# The memory kinds as the choices of --kind (typer takes an Enum for a repeatable choice).
KindChoice = StrEnum("KindChoice", {kind: kind for kind in MEMORY_KINDS})  # type: ignore[misc]


def _kinds(chosen: list[KindChoice] | None) -> list[MemoryKind] | None:
    return [cast(MemoryKind, kind.value) for kind in chosen] if chosen else None


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings file.")]
Tenant = Annotated[str, typer.Argument(help="Tenant id.")]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except EngramError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e


def _store(config: Path | None, tenant: str) -> tuple[Settings, Any]:
    from memory import TenantStore

    settings = _settings(config)
    try:
        return settings, TenantStore(Storage.of(settings), tenant)
    except EngramError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e


@app.command()
def ingest(
    tenant: Tenant,
    files: Annotated[list[Path], typer.Argument(help="JSONL or Parquet files of signals.")],
    config: ConfigOption = None,
) -> None:
    """Store signals from files; invalid rows go to quarantine."""
    from memory import ingest_file

    settings, store = _store(config, tenant)
    table = Table("file", "rows", "accepted", "duplicates", "quarantined")
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("ingesting", total=len(files))
        for path in files:
            try:
                report = ingest_file(store, path, settings.ingest)
            except EngramError as e:
                console.print(f"[red]error:[/red] {e}")
                raise typer.Exit(2) from e
            table.add_row(
                path.name,
                *(str(v) for v in (report.rows, report.accepted, report.duplicates, report.quarantined)),
            )
            bar.advance(task)
    console.print(table)


@app.command()
def build(tenant: Tenant, config: ConfigOption = None) -> None:
    """Run the memory pipeline over the tenant's unprocessed signals."""
    from memory import build as run_build

    settings, _ = _store(config, tenant)
    with console.status("building memories (Ray Data)"):
        report = run_build(tenant, settings)
    console.print_json(json.dumps(report.__dict__))


@app.command()
def search(
    tenant: Tenant,
    user: Annotated[str, typer.Argument(help="User id.")],
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: int = 5,
    mode: Annotated[str, typer.Option(help="ranked, hybrid, vector or keyword")] = "ranked",
    kind: Annotated[list[KindChoice] | None, typer.Option(help="Only these memory kinds.")] = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="What was valid at this time (UTC unless it says otherwise).")
    ] = None,
    include_superseded: Annotated[bool, typer.Option(help="Also memories a newer one replaced.")] = False,
    config: ConfigOption = None,
) -> None:
    """Search one user's memories (current ones unless --as-of or --include-superseded)."""
    from memory import search as run_search

    settings, store = _store(config, tenant)
    try:
        rows = run_search(
            store,
            user,
            query,
            k=k,
            mode=mode,  # type: ignore[arg-type]  # validated by search
            kinds=_kinds(kind),
            as_of=as_of,
            include_superseded=include_superseded,
            settings=settings.retrieval,
            embedder=settings.embedding.model,
        )
    except EngramError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    table = Table("score", "kind", "text", "valid", "sources")
    for row in rows:
        valid = f"{row['valid_from']:%Y-%m-%d}→" + (
            f"{row['valid_to']:%Y-%m-%d}" if row["valid_to"] else "now"
        )
        sources = ", ".join(row["sources"][:3]) + ("…" if len(row["sources"]) > 3 else "")
        table.add_row(f"{row['score']:.3f}", row["kind"], row["text"], valid, sources)
    console.print(table)


@memories_app.command("list")
def memories_list(
    tenant: Tenant,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    kind: Annotated[list[KindChoice] | None, typer.Option(help="Only these kinds.")] = None,
    current: Annotated[bool, typer.Option(help="Only memories valid now.")] = False,
    limit: int = 50,
    offset: int = 0,
    config: ConfigOption = None,
) -> None:
    """List memories, a page at a time."""
    from memory import list_memories

    _, store = _store(config, tenant)
    console.print(
        memory_table(
            list_memories(store, user, kinds=_kinds(kind), current_only=current, limit=limit, offset=offset)
        )
    )


@memories_app.command("show")
def memories_show(tenant: Tenant, memory_id: str, config: ConfigOption = None) -> None:
    """Show one memory with its provenance."""
    from memory import get_memory

    _, store = _store(config, tenant)
    row = get_memory(store, memory_id)
    if row is None:
        console.print(f"[red]error:[/red] no memory {memory_id!r}")
        raise typer.Exit(1)
    console.print_json(json.dumps(row, default=str))


@quarantine_app.command("list")
def quarantine_list(tenant: Tenant, limit: int = 50, config: ConfigOption = None) -> None:
    """Rows that were not accepted, with the reason."""
    from memory import list_quarantine

    _, store = _store(config, tenant)
    table = Table("origin", "line", "field", "reason", "row")
    for row in list_quarantine(store, limit=limit):
        table.add_row(
            row["origin"] or "", str(row["line"] or ""), row["field"] or "", row["reason"], row["row"][:80]
        )
    console.print(table)


@models_app.command("bootstrap")
def models_bootstrap(
    name: Annotated[str, typer.Option(help="Base model id in the registry.")] = "engram-tiny",
    seed: Annotated[int, typer.Option(help="Seed of the weights; the same seed gives the same files.")] = 0,
    force: Annotated[bool, typer.Option(help="Rebuild even if the model is there.")] = False,
    config: ConfigOption = None,
) -> None:
    """Build the embedded small base model under the storage root (serve and demo do it when missing)."""
    from training import base_model_location

    settings = _settings(config)
    spec = settings.llm.base_models.get(name)
    if spec is None or spec.path is not None:
        console.print(f"[red]error:[/red] {name!r} is not an embedded model of llm.base_models")
        raise typer.Exit(2)
    with console.status(f"bootstrapping {name}"):
        folder = base_model_location(settings, name, seed=seed, overwrite=force)
    console.print(f"{name}: {folder}")


@models_app.command("register")
def models_register(
    tenant: Tenant,
    adapter: Annotated[Path, typer.Argument(help="A peft LoRA adapter folder.")],
    suffix: Annotated[str, typer.Option(help="Model name suffix: ft:<base>:<tenant>:<suffix>.")],
    base: Annotated[str, typer.Option(help="Base model the adapter was trained on.")] = "engram-tiny",
    config: ConfigOption = None,
) -> None:
    """Register an adapter folder as the next version of a tenant's model (the first one deploys)."""
    from actors import ModelRegistry

    settings = _settings(config)
    if base not in settings.llm.base_models:
        known = sorted(settings.llm.base_models)
        console.print(f"[red]error:[/red] unknown base model {base!r}; known: {known}")
        raise typer.Exit(2)
    registry = ModelRegistry.from_settings(settings)
    try:
        registered = registry.register_adapter(tenant, base, suffix, adapter)
    except EngramError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    console.print(f"{registered.model} version {registered.version}")


@models_app.command("list")
def models_list(tenant: Tenant, config: ConfigOption = None) -> None:
    """The base models and the tenant's deployed fine-tuned models."""
    from actors import ModelRegistry

    settings = _settings(config)
    table = Table("model", "base", "version")
    for name in settings.llm.base_models:
        table.add_row(name, "", "")
    registry = ModelRegistry.from_settings(settings)
    for row in registry.list_models(tenant):
        table.add_row(row["model"], row["base_model"], str(row["version"]))
    console.print(table)


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Start a local Ray (or join the configured one) and the HTTP gateway; runs until Ctrl-C."""
    import secrets
    import time

    from serving import start_serving

    settings = _settings(config)
    if settings.api.admin_key is None:
        generated = "adm_" + secrets.token_urlsafe(24)
        settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"admin_key": generated})}
        )
        console.print(
            f"no admin key configured (ENGRAM_ADMIN_KEY); this run's admin key: [bold]{generated}[/bold]"
        )
    with console.status("starting Ray and the Serve application"):
        url = start_serving(settings)
    console.print(f"Engram is serving on {url}  (storage: {settings.storage_root}); Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping")


@app.command("ray-env")
def ray_env() -> None:
    """Print the environment a Ray for Engram starts with, as shell exports:
    `eval "$(engram ray-env)" && ray get-auth-token --generate > /dev/null && ray start --head`
    runs Serve as `engram serve` does (the environment turns Ray's token auth on)."""
    import shlex

    from cluster import RAY_ENV

    for name, value in RAY_ENV.items():
        print(f"export {name}={shlex.quote(value)}")


@app.command()
def demo(
    users: int = 4,
    sessions: int = 5,
    config: ConfigOption = None,
) -> None:
    """Generate signals for a few users, ingest, build, and show their memories and profiles."""
    from engram.demo import run_demo

    run_demo(_settings(config), users=users, sessions=sessions, console=console)


if __name__ == "__main__":
    app()
