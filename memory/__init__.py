"""Memory: signals in, a Ray Data pipeline to memories in LanceDB, and search over them.

Ingest (``ingest``) stores signals durably and quarantines bad rows; the pipeline (``pipeline``,
``stages``) normalizes, enriches, extracts (``extract``) and consolidates (``consolidate``) them
into memories and profiles; search (``search``: ``retrieval`` then ``ranking``) finds them; a
tenant's tables live in one ``TenantStore``; ``export`` writes memories and profiles out as Parquet
datasets. The records and memory kinds are ``cluster.schemas``.
"""

from memory.embed import Embedder, get_embedder
from memory.errors import IngestError, PipelineError
from memory.export import ExportReport, export_table
from memory.extract import Extraction, Extractor, get_extractor
from memory.ingest import IngestReport, Rejection, ingest_file, ingest_rows
from memory.manage import delete_memory, forget_user, profile, update_memory
from memory.packing import PackedContext, approx_tokens, pack_context, render_memory
from memory.pipeline import BuildReport, build, build_in_process
from memory.retrieval import MODES, SearchError, query_embedder
from memory.search import get_memory, list_memories, list_quarantine, search
from memory.store import TenantStore

__all__ = [
    "MODES",
    "BuildReport",
    "Embedder",
    "ExportReport",
    "Extraction",
    "Extractor",
    "IngestError",
    "IngestReport",
    "PackedContext",
    "PipelineError",
    "Rejection",
    "SearchError",
    "TenantStore",
    "approx_tokens",
    "build",
    "build_in_process",
    "delete_memory",
    "export_table",
    "forget_user",
    "get_embedder",
    "get_extractor",
    "get_memory",
    "ingest_file",
    "ingest_rows",
    "list_memories",
    "list_quarantine",
    "pack_context",
    "profile",
    "query_embedder",
    "render_memory",
    "search",
    "update_memory",
]
