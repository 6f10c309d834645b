"""The tenant LoRA SFT recipe: config, labels, learning facts, resuming after a killed worker, sealing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster import Storage, crypto
from cluster.crypto import Sealing
from cluster.errors import ConfigError, DecryptionError, InvalidRequestError
from training.bootstrap import bootstrap_model
from training.data import IGNORE_INDEX, epoch_batches, split, tokenize
from training.recipe import (
    ALL_LINEAR,
    CONFIG_FILE,
    FitResult,
    RecipeConfig,
    evaluate,
    fit,
    load_config,
    train_local,
)

# Made-up facts the base model cannot know.
FACTS = [
    [
        {"role": "user", "content": "What is the name of Zorblat's cat?"},
        {"role": "assistant", "content": "Mittens"},
    ],
    [
        {"role": "user", "content": "Which city does Quenna live in?"},
        {"role": "assistant", "content": "Lisbon"},
    ],
    [
        {"role": "user", "content": "What colour is the Vextor car?"},
        {"role": "assistant", "content": "purple"},
    ],
]
FACT_STEPS = 60  # full-batch steps; enough for greedy decoding to reproduce the answers


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bootstrap_model(tmp_path_factory.mktemp("recipe") / "base")


def _config(base: Path, **overrides: Any) -> RecipeConfig:
    settings: dict[str, Any] = {
        "base_model": str(base),
        "n_epochs": FACT_STEPS,
        "batch_size": 3,
        "learning_rate": 3e-3,
        "lora_dropout": 0.0,
        "checkpoint_every": 20,
        "cpus_per_worker": 1,
    }
    return load_config(**{**settings, **overrides})


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- config ---------------------------------------------------------------------------------------


def test_the_yaml_beside_the_recipe_validates_and_holds_every_field() -> None:
    config = load_config()
    assert config.target_modules == ALL_LINEAR and config.num_workers == 1 and not config.use_gpu
    assert set(yaml.safe_load(CONFIG_FILE.read_text())) == set(RecipeConfig.model_fields)
    assert all(f.description for f in RecipeConfig.model_fields.values())


def test_unknown_keys_are_errors_that_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(CONFIG_FILE.read_text() + "\nlora_rank: 8\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.param == "lora_rank" and "lora_rank" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config(learning_rate=-1.0)
    assert e.value.param == "learning_rate"


def test_sealing_keeps_its_key_out_of_reprs() -> None:
    key = os.urandom(crypto.KEY_BYTES)
    sealing = Sealing(key, "acme/checkpoints/x")
    assert key.hex() not in repr(sealing) and repr(key) not in repr(sealing)
    with pytest.raises(InvalidRequestError):
        Sealing(b"short", "acme")


# -- data ------------------------------------------------------------------------------------------


def test_labels_mask_everything_but_assistant_tokens(base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "A pear."},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "A plum."},
    ]
    row = tokenize(tokenizer, messages, max_seq_len=512)
    assert len(row.labels) == len(row.input_ids)
    learned = [t for t, label in zip(row.input_ids, row.labels, strict=True) if label != IGNORE_INDEX]
    assert all(label in (IGNORE_INDEX, t) for t, label in zip(row.input_ids, row.labels, strict=True))
    assert tokenizer.decode(learned) == "A pear.<|im_end|>\nA plum.<|im_end|>\n"
    ignored = tokenizer.decode([t for t, label in zip(row.input_ids, row.labels, strict=True) if label < 0])
    assert "You are terse." in ignored and "Name a fruit." in ignored and "pear" not in ignored
    cut = tokenize(tokenizer, messages, max_seq_len=8)
    assert len(cut.input_ids) == 8


def test_split_and_batches_are_deterministic_and_sharded() -> None:
    examples = [[{"role": "assistant", "content": str(i)}] for i in range(20)]
    train, validation = split(examples, 0.2, seed=1)
    assert (train, validation) == split(examples, 0.2, seed=1)
    assert len(validation) == 4 and len(train) == 16 and not [e for e in validation if e in train]
    assert split(examples, 0.2, seed=2) != (train, validation)
    ranks = [epoch_batches(20, 4, seed=0, epoch=3, rank=r, world_size=2) for r in (0, 1)]
    assert ranks[0] == epoch_batches(20, 4, seed=0, epoch=3, rank=0, world_size=2)
    seen = [i for batches in ranks for batch in batches for i in batch]
    assert sorted(seen) == list(range(20)) and len(ranks[0]) == len(ranks[1]) == 3
    assert ranks[0] != epoch_batches(20, 4, seed=0, epoch=4, rank=0, world_size=2)


# -- Ray Train -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facts_run(base: Path, ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> FitResult:
    return fit(_config(base), FACTS, storage_path=tmp_path_factory.mktemp("runs"), name="facts")


@pytest.mark.integration
def test_fit_teaches_the_facts_the_base_model_does_not_know(base: Path, facts_run: FitResult) -> None:
    assert facts_run.steps == FACT_STEPS and facts_run.starts == [0] and len(facts_run.losses) == FACT_STEPS
    assert facts_run.adapter_dir is not None
    assert (facts_run.adapter_dir / "adapter_config.json").exists()
    report = evaluate(base, facts_run.adapter_dir, FACTS)
    assert report["adapter"]["answers"] == ["Mittens", "Lisbon", "purple"]
    assert report["adapter"]["exact_match"] == 1.0 and report["base"]["exact_match"] == 0.0
    assert report["adapter"]["loss"] < report["base"]["loss"]
    assert report["adapter"]["perplexity"] < report["base"]["perplexity"]


@pytest.mark.integration
def test_train_local_reaches_the_same_loss_as_ray_train(base: Path, facts_run: FitResult) -> None:
    local = train_local(_config(base), FACTS)
    assert local.steps == facts_run.steps
    assert local.final_loss == pytest.approx(facts_run.final_loss, abs=1e-4)
    assert local.losses == pytest.approx(facts_run.losses, abs=1e-3)


def _alive_train_workers() -> list[int]:
    # The GCS actor table of the Ray this process joined (the dashboard's state API is not started).
    from ray._private.state import actors

    return [
        int(info["Pid"])
        for info in actors().values()
        if info["ActorClassName"] == "RayTrainWorker" and info["State"] == "ALIVE"
    ]


def _registered_checkpoints(run_dir: Path) -> list[str]:
    snapshot = run_dir / "checkpoint_manager_snapshot.json"
    if not snapshot.exists():
        return []
    try:
        state = json.loads(snapshot.read_text())
    except json.JSONDecodeError:  # caught mid-write
        return []
    return [result["checkpoint_dir_name"] for result in state["checkpoint_results"]]


@pytest.mark.integration
def test_a_killed_worker_resumes_from_its_checkpoint(
    base: Path, ray_local: None, tmp_path: Path, facts_run: FitResult
) -> None:
    total = 120
    config = _config(base, n_epochs=total, checkpoint_every=10)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = fit(config, FACTS, storage_path=tmp_path, name="killed", max_failures=2)
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    run_dir = tmp_path / "killed"
    _wait_for(lambda: bool(_registered_checkpoints(run_dir)) or not thread.is_alive(), "a checkpoint")
    assert thread.is_alive(), f"the run ended before a worker could be killed: {outcome}"
    victims = _alive_train_workers()
    assert len(victims) == 1
    os.kill(victims[0], signal.SIGKILL)
    thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    result: FitResult = outcome["result"]
    first, resumed = result.starts
    assert 0 == first < resumed < total and resumed % 10 == 0, result.starts
    assert result.steps == total and len(result.losses) == total
    # The resumed steps continue the interrupted run exactly: same weights, optimizer and batches
    # as an uninterrupted run of the same config (the facts run is its first 60 steps).
    overlap = range(resumed, FACT_STEPS)
    assert [result.losses[i] for i in overlap] == pytest.approx(
        [facts_run.losses[i] for i in overlap], abs=1e-5
    )


@pytest.mark.integration
def test_sealed_checkpoints_are_encrypted_at_rest_and_resume(
    base: Path, ray_local: None, tmp_path: Path
) -> None:
    key = os.urandom(crypto.KEY_BYTES)
    sealing = Sealing(key, "acme/checkpoints/sealed")
    config = _config(base, n_epochs=30, checkpoint_every=10)
    # A supervisor (the GPU broker taking the GPUs back) stops the run at its step-20 checkpoint.
    first = fit(
        config,
        FACTS,
        storage_path=tmp_path,
        name="sealed",
        sealing=sealing,
        output_dir=tmp_path / "adapter-1",
        supervisor=lambda step, metrics: step >= 20,
    )
    assert first.stopped and first.steps == 20
    checkpoints = sorted(p for p in (tmp_path / "sealed").glob("checkpoint_*") if p.is_dir())
    files = [f for folder in checkpoints for f in folder.rglob("*") if f.is_file()]
    assert checkpoints and files
    for path in files:
        assert path.name.endswith(crypto.SUFFIX) and path.read_bytes()[:4] == crypto.MAGIC, path
    everything = [f for f in (tmp_path / "sealed").rglob("*") if f.is_file()]
    assert not [f for f in everything if key in f.read_bytes()], "the data key reached the disk"
    # Re-created with the same name and storage path, it resumes from step 20 and finishes.
    second = fit(
        config,
        FACTS,
        storage_path=tmp_path,
        name="sealed",
        sealing=sealing,
        output_dir=tmp_path / "adapter-2",
    )
    assert second.starts == [0, 20] and second.steps == 30 and not second.stopped
    assert second.losses[:20] == first.losses
    # Another key cannot open them.
    with pytest.raises(DecryptionError):
        crypto.open_tree(
            Storage(str(checkpoints[-1])), "", tmp_path / "plain", crypto.new_key(), sealing.context
        )


@pytest.mark.integration
def test_two_workers_train_data_parallel_and_stop_together(
    base: Path, ray_local: None, tmp_path: Path
) -> None:
    examples = [
        [{"role": "user", "content": f"Code {i}?"}, {"role": "assistant", "content": f"It is {i}."}]
        for i in range(8)
    ]
    config = _config(base, n_epochs=10, batch_size=2, checkpoint_every=6, num_workers=2, lora_dropout=0.1)
    # 8 examples over 2 workers in batches of 2: 2 steps an epoch; stopped at the step-12 checkpoint.
    result = fit(config, examples, storage_path=tmp_path, name="ddp", supervisor=lambda step, _: step >= 12)
    assert result.stopped and result.steps == 12 and result.samples == 12 * 2 * 2
    assert result.losses[-1] < result.losses[0]
