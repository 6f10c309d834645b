"""Serving: the HTTP gateway on Ray Serve (auth, routes), retrieval and the memory builder."""

from serving.app import create_app
from serving.builder import MemoryBuilder
from serving.context import GatewayContext
from serving.retrieval import Retriever

__all__ = ["GatewayContext", "MemoryBuilder", "Retriever", "create_app"]
