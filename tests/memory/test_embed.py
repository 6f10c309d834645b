"""The embedders: ONNX Runtime on CPU gives sentence-transformers' vectors, from a graph
exported once per node; torch on a GPU gives the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cluster import envs
from cluster.errors import ConfigError, UnknownComponentError
from memory import embed
from memory.embed import OnnxEmbedder, get_embedder, minilm_path

TEXTS = [
    "I moved to Lisbon last May and started working at Acme.",
    "hi",
    "",
    "Ünïcode café ☕ 東京 — naïve façade",
    "word " * 600,  # past the 256-token limit: truncated like sentence-transformers does
    "I moved to Lisbon last May and started working at Acme.",  # a duplicate
    *[f"note {i}: the meeting with team {i % 7} moves to room {i * 13}" for i in range(70)],
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_path(), device="cpu")
    return np.asarray(model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True))


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_onnx_vectors_are_sentence_transformers_vectors_in_input_order(
    reference: np.ndarray, batch_size: int
) -> None:
    embedder = get_embedder("all-minilm-l6-v2", batch_size=batch_size, threads=1)
    assert isinstance(embedder, OnnxEmbedder)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, reference, atol=2e-5)
    np.testing.assert_array_equal(vectors[0], vectors[5])
    assert embedder.embed([]).shape == (0, 384)


def test_the_int8_embedder_gives_vectors_close_to_the_full_models(reference: np.ndarray) -> None:
    embedder = get_embedder("all-minilm-l6-v2", threads=1, int8=True)
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.graph.endswith("-int8.onnx")
    vectors = embedder.embed(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() > 0.96 and cosines.mean() > 0.985, cosines
    assert not np.allclose(vectors, reference, atol=1e-3)  # another graph, not the full model again
    np.testing.assert_array_equal(vectors[0], vectors[5])


def test_the_graph_is_exported_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envs, "ENGRAM_CACHE_DIR", str(tmp_path / "cache"))
    first = embed.onnx_graph(Path(minilm_path()))
    assert Path(first).parent == tmp_path / "cache" / "onnx"
    made = Path(first).stat().st_mtime_ns
    assert embed.onnx_graph(Path(minilm_path())) == first
    assert Path(first).stat().st_mtime_ns == made
    assert [p.name for p in (tmp_path / "cache" / "onnx").glob("*.onnx")] == [Path(first).name]

    # a changed checkpoint (other weights) gets its own graph
    copy = tmp_path / "model"
    shutil.copytree(minilm_path(), copy)
    (copy / "model.safetensors").touch()
    assert embed.onnx_graph(copy) != first


def test_a_model_without_mean_pooling_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ConfigError, match=r"mean pooling only.*pooling_mode_cls_token"):
        OnnxEmbedder(str(tmp_path), batch_size=8, threads=1)


def test_an_unknown_embedder_names_the_valid_ones() -> None:
    with pytest.raises(UnknownComponentError, match="all-minilm-l6-v2"):
        get_embedder("no-such-model")


@pytest.mark.gpu
def test_the_gpu_embedder_gives_the_cpu_vectors(reference: np.ndarray) -> None:
    vectors = get_embedder("all-minilm-l6-v2", device="cuda").embed(TEXTS)
    np.testing.assert_allclose(vectors, reference, atol=1e-3)
