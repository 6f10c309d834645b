"""Fine-tuning: what a fine-tune file may hold (``files``), training sets made of memories
(``from_memories``), the LoRA SFT recipe on Ray Train (``recipe``, ``data``, ``recipe.yaml``), and
the fine-tuner actor that runs jobs through the GPU broker (``finetuner``); the embedded small base
model (``bootstrap``). Job and file records are the control plane's (``actors.jobs``, ``actors.files``).
"""

from training.bootstrap import (
    base_model_location,
    bootstrap_model,
    ensure_base_model,
    local_model,
    random_adapter,
)
from training.files import FileValidationError, upload, validate
from training.finetuner import FineTuner, checkpoints, fine_tuner, fine_tuner_name
from training.from_memories import memory_examples, to_jsonl
from training.recipe import FitResult, RecipeConfig, evaluate, fit, load_config, train_local

__all__ = [
    "FileValidationError",
    "FineTuner",
    "FitResult",
    "RecipeConfig",
    "base_model_location",
    "bootstrap_model",
    "checkpoints",
    "ensure_base_model",
    "evaluate",
    "fine_tuner",
    "fine_tuner_name",
    "fit",
    "load_config",
    "local_model",
    "memory_examples",
    "random_adapter",
    "to_jsonl",
    "train_local",
    "upload",
    "validate",
]
