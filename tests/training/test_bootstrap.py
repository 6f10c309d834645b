"""The bootstrapped base model: deterministic, standard Hugging Face files, a tokenizer that round-trips."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cluster.errors import ConfigError, NotFoundError
from cluster.settings import load_settings
from training import bootstrap
from training.bootstrap import MARKER, SMOLLM2_GGUF_SHA256, bootstrap_model, ensure_base_model


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


# -- SmolLM2, the real instruction-tuned model ---------------------------------------------------

SMOLLM2 = "smollm2-135m-instruct"


@pytest.mark.slow
def test_smollm2_is_a_real_instruct_model_converted_from_its_checked_gguf(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = bootstrap_model(tmp_path / SMOLLM2, SMOLLM2)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["dtype"] == "bfloat16"
    assert "quantization_config" not in config
    marker = json.loads((folder / MARKER).read_text())
    assert marker["model"] == SMOLLM2 and marker["gguf_sha256"] == SMOLLM2_GGUF_SHA256

    model = AutoModelForCausalLM.from_pretrained(folder)
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_a_changed_smollm2_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "SMOLLM2_GGUF_SHA256", "0" * 64)
    with pytest.raises(ConfigError, match="not the pinned 0000"):
        bootstrap_model(tmp_path / SMOLLM2, SMOLLM2)
    assert not (tmp_path / SMOLLM2).exists()


def test_only_embedded_models_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="'llama-70b' is not an embedded model"):
        bootstrap_model(tmp_path / "x", "llama-70b")
