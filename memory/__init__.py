"""Memory: signals in, a Ray Data pipeline to memories in LanceDB, and search over them."""

from memory.ingest import IngestReport, Rejection, ingest_file, ingest_rows
from memory.pipeline import BuildReport, build
from memory.search import get_memory, list_memories, list_quarantine, search
from memory.store import TenantStore

__all__ = [
    "BuildReport",
    "IngestReport",
    "Rejection",
    "TenantStore",
    "build",
    "get_memory",
    "ingest_file",
    "ingest_rows",
    "list_memories",
    "list_quarantine",
    "search",
]
