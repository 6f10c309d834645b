"""The bootstrapped base model: deterministic, standard Hugging Face files, a tokenizer that round-trips."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cluster.errors import NotFoundError
from cluster.settings import load_settings
from training.bootstrap import MARKER, bootstrap_model, ensure_base_model


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_files_other_seed_other_weights(tmp_path: Path) -> None:
    first = _digests(bootstrap_model(tmp_path / "a", seed=3))
    assert first == _digests(bootstrap_model(tmp_path / "b", seed=3))
    other = _digests(bootstrap_model(tmp_path / "c", seed=4))
    assert other["model.safetensors"] != first["model.safetensors"]
    assert other["tokenizer.json"] == first["tokenizer.json"]
    assert MARKER in first and "config.json" in first and "chat_template.jinja" in first


def test_loads_in_transformers_with_a_working_tokenizer_and_chat_template(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = bootstrap_model(tmp_path / "m")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = "I moved to Lisbon in May 2023; my dog Rex loves the beach."
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) / 2, "words are merged, not split into characters"
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "qwen2" and model.config.eos_token_id == tokenizer.eos_token_id
    assert model.config.vocab_size == len(tokenizer)


def test_an_existing_bootstrap_is_kept_and_an_unfinished_one_redone(tmp_path: Path) -> None:
    folder = bootstrap_model(tmp_path / "m")
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert bootstrap_model(folder) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    (folder / MARKER).unlink()  # as if a bootstrap had been interrupted
    bootstrap_model(folder)
    assert (folder / MARKER).exists() and (folder / "model.safetensors").stat().st_mtime_ns != stamp


def test_registry_resolves_the_embedded_default_and_refuses_unknown_models(tmp_path: Path) -> None:
    settings = load_settings(storage_root=str(tmp_path))
    folder = ensure_base_model(settings, "engram-tiny")
    assert folder == f"{tmp_path}/models/engram-tiny" and (Path(folder) / MARKER).exists()
    external = load_settings(
        storage_root=str(tmp_path), llm={"base_models": {"qwen": {"path": "/ckpt/qwen"}}}
    )
    assert ensure_base_model(external, "qwen") == "/ckpt/qwen"
    with pytest.raises(NotFoundError) as e:
        ensure_base_model(settings, "qwen")
    assert e.value.param == "model"
