"""LoRA SFT throughput: the recipe on Ray Train against the same loop in-process, in one run.

Prints JSON: samples/s and tokens/s of ``training.recipe.fit`` (Ray Train, one CPU worker)
and of ``training.recipe.train_local`` (the same setup, batches and step function in this
process, no Ray) on the same synthetic chat data and step count, and their ratio (Ray Train
/ plain; the target is >= 0.85). Medians over ``--repeats`` interleaved runs.

Timed: the step loop as each loop measures it, from its first batch to its last step (for
Ray Train also every checkpoint write, upload and ``ray.train.report``). Not timed: Ray
start-up, worker-group start, model loading (reported separately as end-to-end fit time).

    .venv/bin/python -m bench.training --examples 300 --steps 120 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

NAMES = [
    "Quenna",
    "Zorblat",
    "Ilvra",
    "Mordecai",
    "Tessaly",
    "Orrin",
    "Vashti",
    "Pellam",
    "Ysolde",
    "Brannoc",
]
THINGS = {
    "cat": ["Mittens", "Pepper", "Socks", "Biscuit"],
    "city": ["Lisbon", "Oslo", "Quito", "Nairobi", "Hanoi"],
    "car": ["a purple van", "a red coupe", "a green truck"],
    "sport": ["tennis", "rowing", "chess", "climbing"],
    "drink": ["black coffee", "green tea", "lemonade"],
}


def synthetic_chats(n: int, seed: int) -> list[list[dict[str, str]]]:
    """``n`` chat examples: a system line, then one or two question/answer turns about made-up people."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        messages = [{"role": "system", "content": "You answer from the user's memories, briefly."}]
        for _ in range(rng.choice((1, 2))):
            name, (thing, values) = rng.choice(NAMES), rng.choice(list(THINGS.items()))
            messages.append({"role": "user", "content": f"What {thing} does {name} have or like?"})
            messages.append({"role": "assistant", "content": f"{name}'s {thing}: {rng.choice(values)}."})
        examples.append(messages)
    return examples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps per run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--checkpoint-every", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (= CPUs of the Ray worker)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the medians are used")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray

    from bench.common import scratch
    from training import FitResult, bootstrap_model, fit, load_config, train_local

    root = Path(scratch("engram-bench-training-"))
    base = bootstrap_model(root / "base")
    examples = synthetic_chats(args.examples, seed=7)
    config = load_config(
        base_model=str(base),
        n_epochs=1 + args.steps * args.batch_size // args.examples,
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=1e-3,
        max_seq_len=256,
        checkpoint_every=args.checkpoint_every,
        cpus_per_worker=args.threads,
    )

    started = time.perf_counter()
    ray.init(
        "local", num_cpus=max(os.cpu_count() or 1, args.threads), include_dashboard=False, log_to_driver=False
    )
    ray_init_s = time.perf_counter() - started

    runs: dict[str, list[FitResult]] = {"ray_train": [], "plain": []}
    fit_wall_s = []
    for i in range(args.repeats):
        started = time.perf_counter()
        runs["ray_train"].append(fit(config, examples, storage_path=root / "runs", name=f"bench-{i}"))
        fit_wall_s.append(time.perf_counter() - started)
        runs["plain"].append(train_local(config, examples))
    ray.shutdown()

    def rates(results: list[FitResult]) -> dict[str, Any]:
        return {
            "samples_per_s": round(statistics.median(r.samples / r.train_seconds for r in results), 1),
            "tokens_per_s": round(statistics.median(r.tokens / r.train_seconds for r in results), 1),
            "train_s": [round(r.train_seconds, 2) for r in results],
            "final_loss": round(results[-1].final_loss, 4),
        }

    ray_rates, plain_rates = rates(runs["ray_train"]), rates(runs["plain"])
    print(
        json.dumps(
            {
                "examples": len(examples),
                "steps": args.steps,
                "batch_size": args.batch_size,
                "checkpoint_every": args.checkpoint_every,
                "threads": args.threads,
                "repeats": args.repeats,
                "samples_per_run": runs["plain"][0].samples,
                "tokens_per_run": runs["plain"][0].tokens,
                "ray_train": ray_rates,
                "plain": plain_rates,
                "ratio_ray_train_to_plain_samples_per_s": round(
                    ray_rates["samples_per_s"] / plain_rates["samples_per_s"], 3
                ),
                "timed": "each loop's step loop, first batch to last step; Ray Train's includes its "
                "checkpoint writes/uploads and ray.train.report calls; Ray start-up, worker-group "
                "start and model loading are excluded (see fit_wall_s)",
                "fit_wall_s": [round(s, 1) for s in fit_wall_s],
                "ray_init_s": round(ray_init_s, 2),
                "same_final_loss": abs(ray_rates["final_loss"] - plain_rates["final_loss"]) < 1e-3,
            }
        )
    )


if __name__ == "__main__":
    main()
