"""Memory: signals in, a Ray Data pipeline to memories in LanceDB, and search over them."""

from memory.ingest import IngestReport, Rejection, ingest_file, ingest_rows
from memory.packing import PackedContext, approx_tokens, pack_context, render_memory
from memory.pipeline import BuildReport, build
from memory.retrieval import MODES, SearchError
from memory.search import get_memory, list_memories, list_quarantine, search
from memory.store import TenantStore

__all__ = [
    "MODES",
    "BuildReport",
    "IngestReport",
    "PackedContext",
    "Rejection",
    "SearchError",
    "TenantStore",
    "approx_tokens",
    "build",
    "get_memory",
    "ingest_file",
    "ingest_rows",
    "list_memories",
    "list_quarantine",
    "pack_context",
    "render_memory",
    "search",
]
