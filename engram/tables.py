"""Rich tables the CLI and the demo print."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def memory_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table("kind", "text", "slot", "support", "valid", "sources", title=title, show_lines=False)
    for row in rows:
        valid = (
            f"{row['valid_from']:%Y-%m-%d}→{row['valid_to']:%Y-%m-%d}"
            if row["valid_to"]
            else (f"{row['valid_from']:%Y-%m-%d}→now")
        )
        table.add_row(
            row["kind"],
            row["text"][:90],
            row["slot"] or "",
            str(row["support"]),
            valid,
            ", ".join(row["sources"][:2]) + ("…" if len(row["sources"]) > 2 else ""),
        )
    return table
