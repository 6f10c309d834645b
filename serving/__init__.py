"""Serving: the Ray Serve application behind one authenticated, OpenAI-compatible HTTP API.

The gateway (``app``: FastAPI, one small module per feature: signals, memories, users, chat,
models, files, fine_tuning, usage, audit, admin) works from a ``GatewayContext`` (``context``)
and calls the deployments through typed handles (``handles``): retrieval (``retrieval``), the
always-on memory builder (``builder``) and one vLLM engine per base model (``llm``, with tenant
adapters decrypted by ``adapters``). ``deployments`` composes them into the Serve application.
"""

from serving.app import create_app
from serving.builder import BuildStatus, MemoryBuilder
from serving.context import GatewayContext
from serving.deployments import app, build_app, start_serving
from serving.handles import LLM, Builder, Retrieval, connect
from serving.llm import Chunk, Generation, LLMServer, engine_env
from serving.retrieval import Retriever

__all__ = [
    "LLM",
    "BuildStatus",
    "Builder",
    "Chunk",
    "GatewayContext",
    "Generation",
    "LLMServer",
    "MemoryBuilder",
    "Retrieval",
    "Retriever",
    "app",
    "build_app",
    "connect",
    "create_app",
    "engine_env",
    "start_serving",
]
