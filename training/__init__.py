"""Fine-tuning on Ray Train (datasets, LoRA recipe, evaluation, export): not built yet."""
