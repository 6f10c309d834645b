"""Fine-tuning: tenant files (``files``), the LoRA SFT recipe on Ray Train (``recipe``, ``data``),
job records (``jobs``) and the fine-tuner actor that runs them through the GPU broker (``finetuner``);
the embedded small base model (``bootstrap``)."""
