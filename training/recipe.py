"""The tenant LoRA SFT recipe: setup → train → evaluate → save, on Ray Train or in-process.

    config = load_config(base_model=folder, n_epochs=2)            # recipe.yaml beside this file
    train, validation = split(examples, config.validation_fraction, config.seed)
    result = fit(config, train, storage_path=runs, name="acme-v3")  # Ray Train; resumable
    report = evaluate(config.base_model, result.adapter_dir, validation)

One loop serves both ways of running: ``fit`` runs ``train_loop_per_worker`` on Ray Train
workers (DDP over gloo on CPU, NCCL on GPUs; data sharded by world rank; checkpoints every
``checkpoint_every`` steps, resumed after a worker failure or by re-creating the run with the
same name and storage path), and ``train_local`` runs the same setup, batches and step in this
process without Ray (the benchmark's baseline). Checkpoints hold the LoRA weights, the
optimizer, the step, the RNG state and the loss history; with ``sealing`` their files are
encrypted at rest (``cluster.crypto``) and opened only into private folders.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cluster import ConfigError, InvalidRequestError, Storage, StorageSettings, crypto
from training.bootstrap import local_model
from training.data import (
    IGNORE_INDEX,
    Example,
    Tokenized,
    collate,
    epoch_batches,
    split,
    steps_per_epoch,
    tokenize_all,
)

__all__ = [
    "FitResult",
    "RecipeConfig",
    "evaluate",
    "fit",
    "load_config",
    "split",
    "train_local",
    "train_loop_per_worker",
]

CONFIG_FILE = Path(__file__).with_name("recipe.yaml")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class RecipeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_model: str = Field(description="Folder of the base model checkpoint (Hugging Face format).")
    n_epochs: int = Field(3, ge=1, description="Passes over the training examples.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps; None: all epochs.")
    learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate (constant).")
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step on each worker.")
    max_seq_len: int = Field(1024, ge=8, description="Tokens kept per example; the rest is cut.")
    seed: int = Field(0, ge=0, description="Seeds LoRA init, dropout and the batch order.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: tuple[str, ...] = Field(
        ALL_LINEAR, min_length=1, description="Module names that get LoRA; default all linear layers."
    )
    checkpoint_every: int = Field(100, ge=1, description="Steps between checkpoints (one more at the end).")
    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share held out for evaluation when no validation set is given."
    )
    num_workers: int = Field(1, ge=1, description="Ray Train workers (data-parallel replicas).")
    use_gpu: bool = Field(False, description="Workers ask Ray for `gpus_per_worker` GPUs when true.")
    gpus_per_worker: float = Field(1, gt=0, le=8, description="GPUs each worker asks for with use_gpu.")
    cpus_per_worker: float = Field(
        1, gt=0, description="CPUs each worker asks Ray for; on CPU also its torch threads."
    )

    @field_validator("target_modules")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("target_modules lists a module twice")
        return value


def load_config(path: str | Path | None = None, **overrides: Any) -> RecipeConfig:
    """The recipe config from YAML (``recipe.yaml`` beside this file by default) and ``overrides``."""
    source = Path(path) if path is not None else CONFIG_FILE
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read recipe config {source}: {e}", param="path") from e
    if not isinstance(data, dict):
        raise ConfigError(f"recipe config {source} must hold a mapping", param="path")
    try:
        return RecipeConfig.model_validate({**data, **overrides})
    except ValidationError as e:
        first = e.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid recipe setting {name!r} in {source}: {first['msg']}", param=name) from e


class FitResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    steps: int = Field(description="Optimizer steps taken in all.")
    stopped: bool = Field(description="The supervisor stopped the run before its last step.")
    losses: list[float] = Field(description="Loss of every step, from step 1 on (resumed runs included).")
    starts: list[int] = Field(description="The step each attempt started from: [0] unless resumed.")
    adapter_dir: Path | None = Field(description="The final adapter as a plain peft folder.")
    checkpoint_path: str | None = Field(description="The last checkpoint on storage (Ray Train only).")
    train_seconds: float = Field(
        description="Wall time of the last attempt's step loop, checkpoints included."
    )
    samples: int = Field(description="Examples processed by all workers in the last attempt.")
    tokens: int = Field(description="Non-padding tokens processed by all workers in the last attempt.")

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


# -- setup: model, optimizer, data ---------------------------------------------------------------


def _tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model)


def _peft_model(config: RecipeConfig) -> Any:
    """The base model with fresh LoRA layers (seeded), in float32."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(config.seed)
    base = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=torch.float32)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lora)


@dataclass
class _Run:
    """What the loop works on: the peft model, its (maybe DDP-wrapped) training view and optimizer."""

    config: RecipeConfig
    rows: list[Tokenized]
    pad_token_id: int
    peft_model: Any
    model: Any
    optimizer: Any
    rank: int = 0
    world_size: int = 1
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)


def setup(
    config: RecipeConfig,
    rows: list[Tokenized],
    pad_token_id: int,
    *,
    wrap: Callable[[Any], Any],
    rank: int = 0,
    world_size: int = 1,
) -> _Run:
    """Build the model (``wrap`` places it: ``.to(device)`` or Ray's ``prepare_model``) and AdamW."""
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, int(config.cpus_per_worker)))
    peft_model = _peft_model(config)
    model = wrap(peft_model)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate)
    return _Run(config, rows, pad_token_id, peft_model, model, optimizer, rank, world_size)


def total_steps(config: RecipeConfig, n_examples: int, world_size: int) -> int:
    steps = config.n_epochs * steps_per_epoch(n_examples, config.batch_size, world_size)
    return min(steps, config.max_steps) if config.max_steps else steps


# -- train: the loop both runners share -------------------------------------------------------------


def _step(run: _Run, batch: dict[str, Any]) -> float:
    """One optimizer step on ``batch``; returns the loss averaged over workers."""
    import torch

    run.model.train()
    device = next(run.peft_model.parameters()).device
    loss = run.model(**{k: v.to(device) for k, v in batch.items()}).loss
    loss.backward()
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    value = loss.detach()
    if run.world_size > 1:
        torch.distributed.all_reduce(value)
        value = value / run.world_size
    return float(value)


def train(run: _Run, on_checkpoint: Callable[[_Run, dict[str, Any]], bool]) -> dict[str, Any]:
    """Step from ``run.step`` to the end; ``on_checkpoint`` every ``checkpoint_every`` steps and last.

    ``on_checkpoint`` returning True stops the loop there (the run was preempted or cancelled).
    """
    config = run.config
    per_epoch = steps_per_epoch(len(run.rows), config.batch_size, run.world_size)
    last = total_steps(config, len(run.rows), run.world_size)
    run.starts.append(run.step)
    started, samples, tokens = time.perf_counter(), 0, 0
    batches: list[list[int]] = []
    metrics: dict[str, Any] = {}
    while run.step < last:
        epoch, index = divmod(run.step, per_epoch)
        if index == 0 or not batches:  # a new epoch, or resumed in the middle of one
            batches = epoch_batches(
                len(run.rows),
                config.batch_size,
                seed=config.seed,
                epoch=epoch,
                rank=run.rank,
                world_size=run.world_size,
            )
        batch = collate([run.rows[i] for i in batches[index]], run.pad_token_id)
        loss = _step(run, batch)
        run.step += 1
        samples += len(batch["input_ids"])
        tokens += int(batch["attention_mask"].sum())
        run.history.append({"step": run.step, "loss": loss, "epoch": epoch})
        if run.step % config.checkpoint_every == 0 or run.step == last:
            metrics = {
                "step": run.step,
                "loss": loss,
                "epoch": epoch,
                "elapsed_s": time.perf_counter() - started,
                "samples": samples * run.world_size,
                "tokens": tokens * run.world_size,
            }
            if on_checkpoint(run, metrics):
                break
    metrics["elapsed_s"] = time.perf_counter() - started
    return metrics


# -- checkpoints -------------------------------------------------------------------------------------


def _write_state(run: _Run, folder: Path) -> None:
    import torch
    from peft import get_peft_model_state_dict

    torch.save(get_peft_model_state_dict(run.peft_model), folder / "adapter.pt")
    torch.save(run.optimizer.state_dict(), folder / "optimizer.pt")
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch.save(rng, folder / "rng.pt")
    state = {"step": run.step, "history": run.history, "starts": run.starts}
    (folder / "state.json").write_text(json.dumps(state))


def _read_state(run: _Run, folder: Path) -> None:
    import torch
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(run.peft_model, torch.load(folder / "adapter.pt", weights_only=True))
    run.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    rng = torch.load(folder / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    state = json.loads((folder / "state.json").read_text())
    run.step, run.history, run.starts = state["step"], state["history"], state["starts"]


@contextmanager
def _opened(folder: str | Path, sealing: crypto.Sealing | None) -> Iterator[Path]:
    """A checkpoint folder as plaintext: itself, or a private decrypted copy removed afterwards."""
    if sealing is None:
        yield Path(folder)
        return
    with crypto.decrypted(Storage(str(folder)), "", sealing.key, sealing.context) as plain:
        yield plain


Supervisor = Callable[[int, dict[str, Any]], bool]
"""Called by rank 0 after each checkpoint with the step and metrics; True stops the run there."""


def _report(
    run: _Run, metrics: dict[str, Any], sealing: crypto.Sealing | None, supervisor: Supervisor | None
) -> bool:
    """Rank 0 writes (and seals) a checkpoint; every worker reports, as Ray Train requires.

    Returns whether to stop here: the supervisor's answer, broadcast so all workers agree.
    """
    import ray.train
    import torch

    if run.rank == 0:
        _report_checkpoint(run, metrics, sealing)
    else:
        ray.train.report(metrics)
    stop = bool(supervisor(run.step, metrics)) if supervisor is not None and run.rank == 0 else False
    if run.world_size > 1:
        flag = torch.tensor([int(stop)])
        torch.distributed.broadcast(flag, src=0)
        stop = bool(flag.item())
    return stop


def _report_checkpoint(run: _Run, metrics: dict[str, Any], sealing: crypto.Sealing | None) -> None:
    import ray.train

    scratch = Path(tempfile.mkdtemp(prefix="engram-ckpt-"))
    try:
        plain = crypto.private_dir(scratch) if sealing else scratch / "checkpoint"
        plain.mkdir(exist_ok=True)
        _write_state(run, plain)
        folder = plain
        if sealing is not None:
            folder = scratch / "sealed"
            crypto.seal_tree(plain, Storage(str(scratch)), "sealed", sealing.key, sealing.context)
            shutil.rmtree(plain)
        checkpoint = ray.train.Checkpoint.from_directory(str(folder))
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"checkpoint_{run.step:08d}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _process_group_backend() -> str | None:
    """The workers' torch.distributed backend: Ray's choice (NCCL on GPUs) where this torch has
    CUDA; gloo where it has none (a CPU build of torch given logical GPUs, as in the tests), since
    NCCL is not in such a build. Gloo all-reduces CUDA tensors too."""
    import torch

    return None if torch.backends.cuda.is_built() else "gloo"


def _placed(model: Any) -> Any:
    """The worker's model on the device its process can use: the GPU Ray assigned when this torch
    has CUDA (``prepare_model``), else the CPU (a GPU-less node, or logical GPUs on a CPU torch
    build); wrapped for data-parallel training when there are several workers."""
    import ray.train
    import ray.train.torch
    import torch

    if torch.cuda.is_available():
        return ray.train.torch.prepare_model(model)
    if ray.train.get_context().get_world_size() > 1:
        return torch.nn.parallel.DistributedDataParallel(model)
    return model


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """The Ray Train worker: setup, resume from the latest checkpoint if any, train, checkpoint."""
    import ray
    import ray.train
    import ray.train.torch

    recipe = RecipeConfig.model_validate(config["recipe"])
    recipe = _on_this_node(recipe, config["storage_options"])
    sealing: crypto.Sealing | None = config.get("sealing")
    context = ray.train.get_context()
    rows = [Tokenized(ids, labels) for ids, labels in ray.get(config["rows"])]
    run = setup(
        recipe,
        rows,
        config["pad_token_id"],
        wrap=_placed,
        rank=context.get_world_rank(),
        world_size=context.get_world_size(),
    )
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as stored, _opened(stored, sealing) as plain:
            _read_state(run, plain)
    supervisor: Supervisor | None = config.get("supervisor")
    train(run, lambda r, metrics: _report(r, metrics, sealing, supervisor))


# -- save ------------------------------------------------------------------------------------------


def _save_adapter(config: RecipeConfig, plain_checkpoint: Path, target: Path) -> Path:
    """The checkpoint's LoRA weights as a plain peft folder (``save_pretrained``) at ``target``."""
    import torch
    from peft import set_peft_model_state_dict

    model = _peft_model(config)
    set_peft_model_state_dict(model, torch.load(plain_checkpoint / "adapter.pt", weights_only=True))
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    return target


def _on_this_node(config: RecipeConfig, options: StorageSettings) -> RecipeConfig:
    """``config`` with its base model in a folder of this node (a copy of one on an object store)."""
    return config.model_copy(update={"base_model": local_model(config.base_model, options)})


def _prepare(config: RecipeConfig, examples: list[Example]) -> tuple[list[Tokenized], int]:
    tokenizer = _tokenizer(config.base_model)
    return tokenize_all(tokenizer, examples, config.max_seq_len), int(tokenizer.pad_token_id)


def fit(
    config: RecipeConfig,
    examples: list[Example],
    *,
    storage_path: str | Path,
    name: str,
    storage_options: StorageSettings | None = None,
    sealing: crypto.Sealing | None = None,
    max_failures: int = 3,
    output_dir: str | Path | None = None,
    supervisor: Supervisor | None = None,
) -> FitResult:
    """Train on Ray Train; a run re-created with the same ``name`` and ``storage_path`` resumes.

    ``storage_path`` is where Ray Train keeps the run's checkpoints: a local folder or an
    object-store location (``storage_options`` for its endpoint), as is ``config.base_model``,
    which every worker copies to its node. The final adapter is saved as a plain peft folder in
    ``output_dir`` (default ``<storage_path>/<name>/adapter`` for a local ``storage_path``): with
    ``sealing``, give a private ``output_dir`` and seal the adapter for storage there.
    ``supervisor`` (picklable; it runs on the first worker) is asked after each checkpoint whether
    to stop there: a stopped run has ``stopped`` set, and resumes from that checkpoint when fit
    again with the same name.
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    options = storage_options or StorageSettings()
    storage = Storage(str(storage_path), options)
    if output_dir is None and not storage.local:
        raise InvalidRequestError(
            "output_dir is needed with an object-store storage_path", param="output_dir"
        )
    local = _on_this_node(config, options)  # the workers copy the base model to their own nodes
    rows, pad_token_id = _prepare(local, examples)
    resources = {"CPU": config.cpus_per_worker}
    if config.use_gpu:
        resources["GPU"] = config.gpus_per_worker
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "recipe": config.model_dump(),
            # In the object store: Ray Train exports its config to the dashboard's state, and tenant
            # data does not belong there.
            "rows": ray.put([(row.input_ids, row.labels) for row in rows]),
            "pad_token_id": pad_token_id,
            "sealing": sealing,
            "supervisor": supervisor,
            "storage_options": options,
        },
        scaling_config=ScalingConfig(
            num_workers=config.num_workers, use_gpu=config.use_gpu, resources_per_worker=resources
        ),
        torch_config=TorchConfig(backend=_process_group_backend()),
        run_config=RunConfig(
            name=name,
            storage_path=storage.fs_path(""),
            storage_filesystem=storage.fs,
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise InvalidRequestError(f"training run {name!r} reported no checkpoint", param="name")
    target = Path(output_dir) if output_dir is not None else Path(storage_path) / name / "adapter"
    with result.checkpoint.as_directory() as stored, _opened(stored, sealing) as plain:
        state = json.loads((plain / "state.json").read_text())
        _save_adapter(local, plain, target)
    metrics = result.metrics or {}
    return FitResult(
        steps=state["step"],
        stopped=state["step"] < total_steps(config, len(rows), config.num_workers),
        losses=[entry["loss"] for entry in state["history"]],
        starts=state["starts"],
        adapter_dir=target,
        checkpoint_path=result.checkpoint.path,
        train_seconds=float(metrics.get("elapsed_s", math.nan)),
        samples=int(metrics.get("samples", 0)),
        tokens=int(metrics.get("tokens", 0)),
    )


def train_local(
    config: RecipeConfig, examples: list[Example], *, output_dir: str | Path | None = None
) -> FitResult:
    """The same setup, batches and steps in this process, without Ray and without checkpoints."""
    import torch

    config = _on_this_node(config, StorageSettings())
    rows, pad_token_id = _prepare(config, examples)
    threads = torch.get_num_threads()
    device = torch.device("cuda" if config.use_gpu and torch.cuda.is_available() else "cpu")
    try:
        run = setup(config, rows, pad_token_id, wrap=lambda model: model.to(device))
        metrics = train(run, lambda _run, _metrics: False)
    finally:
        torch.set_num_threads(threads)
    adapter_dir = None
    if output_dir is not None:
        adapter_dir = Path(output_dir)
        adapter_dir.mkdir(parents=True, exist_ok=True)
        run.peft_model.save_pretrained(str(adapter_dir))
    return FitResult(
        steps=run.step,
        stopped=False,
        losses=[entry["loss"] for entry in run.history],
        starts=run.starts,
        adapter_dir=adapter_dir,
        checkpoint_path=None,
        train_seconds=metrics["elapsed_s"],
        samples=metrics["samples"],
        tokens=metrics["tokens"],
    )


# -- evaluate ------------------------------------------------------------------------------------


def evaluate(
    base_dir: str | Path,
    adapter_dir: str | Path,
    validation_examples: list[Example],
    *,
    max_seq_len: int = 1024,
    max_new_tokens: int = 64,
    storage_options: StorageSettings | None = None,
) -> dict[str, Any]:
    """Held-out loss and perplexity (assistant tokens only) and exact match, base model vs adapter.

    ``base_dir`` may be an object-store location (``storage_options``): it is copied to this node.

    Exact match: greedy decoding of the last assistant turn given the messages before it, for
    the examples that end in an assistant turn, compared after stripping whitespace.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = local_model(str(base_dir), storage_options or StorageSettings())
    tokenizer = _tokenizer(base_dir)
    rows = tokenize_all(tokenizer, validation_examples, max_seq_len)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    qa = [m for m in validation_examples if m[-1]["role"] == "assistant"]

    def measure() -> dict[str, Any]:
        total, count = 0.0, 0
        with torch.no_grad():
            for row in rows:
                batch = collate([row], int(tokenizer.pad_token_id))
                n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())  # the loss is on shifted labels
                total += float(model(**batch).loss) * n
                count += n
            answers = []
            for messages in qa:
                prompt = tokenizer.apply_chat_template(
                    messages[:-1], add_generation_prompt=True, tokenize=False
                )
                ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
                out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
                answers.append(
                    tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
                )
        loss = total / max(count, 1)
        hits = sum(a.strip() == m[-1]["content"].strip() for a, m in zip(answers, qa, strict=True))
        return {
            "loss": loss,
            "perplexity": math.exp(loss),
            "exact_match": hits / max(len(qa), 1),
            "answers": answers,
        }

    with model.disable_adapter():
        base_report = measure()
    return {"examples": len(rows), "qa_examples": len(qa), "base": base_report, "adapter": measure()}
