"""Chat examples for the recipe: validation, tokenization with loss on assistant tokens, batching.

An example is an OpenAI chat-format message list::

    [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
     {"role": "assistant", "content": "..."}]

It is rendered with the base model tokenizer's chat template. Labels are the token ids on
the assistant turns (their content and the end-of-turn marker, so the model learns to stop)
and -100 everywhere else, so the loss is on assistant tokens only. Batches are a function of
the seed, the epoch and the worker's rank: the same config and data give the same batches.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from cluster import InvalidRequestError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
_SURROGATE = re.compile("[\ud800-\udfff]")

Message = dict[str, str]
Example = list[Message]


@dataclass(frozen=True)
class Tokenized:
    """One example as token ids with its labels (``IGNORE_INDEX`` outside assistant turns)."""

    input_ids: list[int]
    labels: list[int]


def message_problem(messages: Any) -> str | None:
    """The first thing wrong with one example's message list, or None when it is a valid example."""
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            return f"{where} is not an object"
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            return f"{where} has unknown key {extra[0]!r}: a message holds 'role' and 'content'"
        if message.get("role") not in ROLES:
            return f"{where}.role must be one of {list(ROLES)}, not {message.get('role')!r}"
        content = message.get("content")
        if not isinstance(content, str):
            return f"{where}.content must be a string"
        if not content.strip():
            return f"{where}.content is empty"
        if not content.isascii() and _SURROGATE.search(content):
            return f"{where}.content holds an unpaired UTF-16 surrogate escape (not Unicode text)"
    if not any(m["role"] == "assistant" for m in messages):
        return "no assistant message: there is nothing to learn from"
    return None


def validate_examples(examples: Any) -> list[Example]:
    """The examples, checked (``message_problem``); InvalidRequestError naming the first bad one."""
    if not isinstance(examples, list) or not examples:
        raise InvalidRequestError("examples must be a non-empty list of chat message lists", param="examples")
    for i, messages in enumerate(examples):
        problem = message_problem(messages)
        if problem is not None:
            raise InvalidRequestError(f"example {i}: {problem}", param="examples")
    return examples


def _render(tokenizer: Any, messages: Example, *, generation_prompt: bool = False) -> str:
    if not messages:
        return ""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return str(text)


def assistant_spans(tokenizer: Any, messages: Example) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns.

    A span runs from the end of the generation prompt before the turn to the end of the turn
    (so it holds the content and the end-of-turn marker). The chat template must render each
    conversation prefix as a prefix of the whole, as ChatML-style templates do.
    """
    full = _render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_render(tokenizer, messages[:i], generation_prompt=True))
        end = len(_render(tokenizer, messages[: i + 1]))
        if not full.startswith(_render(tokenizer, messages[: i + 1])):
            raise InvalidRequestError(
                "the tokenizer's chat template does not render conversation prefixes as prefixes; "
                "assistant tokens cannot be located",
                param="base_model",
            )
        spans.append((start, end))
    return full, spans


def tokenize(tokenizer: Any, messages: Example, max_seq_len: int) -> Tokenized:
    """Token ids of the rendered conversation (cut to ``max_seq_len``), labelled on assistant tokens only."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])[:max_seq_len]
    offsets = list(encoded["offset_mapping"])[:max_seq_len]
    labels = [
        token if any(start <= begin < end for start, end in spans) else IGNORE_INDEX
        for token, (begin, _) in zip(ids, offsets, strict=True)
    ]
    return Tokenized(ids, labels)


def tokenize_all(tokenizer: Any, examples: list[Example], max_seq_len: int) -> list[Tokenized]:
    """Every example tokenized; an example left without assistant tokens after the cut is an error."""
    rows = []
    for i, messages in enumerate(validate_examples(examples)):
        row = tokenize(tokenizer, messages, max_seq_len)
        if all(label == IGNORE_INDEX for label in row.labels):
            raise InvalidRequestError(
                f"example {i} has no assistant tokens within max_seq_len={max_seq_len}; "
                "raise max_seq_len or shorten the example",
                param="max_seq_len",
            )
        rows.append(row)
    return rows


def steps_per_epoch(n_examples: int, batch_size: int, world_size: int) -> int:
    """Optimizer steps in one epoch; every worker takes the same number (the remainder is dropped)."""
    per_worker = n_examples // world_size
    if per_worker == 0:
        raise InvalidRequestError(
            f"{n_examples} training examples cannot feed {world_size} workers", param="num_workers"
        )
    return -(-per_worker // batch_size)


def epoch_batches(
    n_examples: int, batch_size: int, *, seed: int, epoch: int, rank: int, world_size: int
) -> list[list[int]]:
    """This worker's batches (lists of example indices) for ``epoch``: a seeded shuffle, sharded by rank."""
    order = list(range(n_examples))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    per_worker = n_examples // world_size
    shard = order[rank::world_size][:per_worker]
    return [shard[i : i + batch_size] for i in range(0, len(shard), batch_size)]


def collate(rows: list[Tokenized], pad_token_id: int) -> dict[str, Any]:
    """A right-padded batch: input_ids, attention_mask and labels tensors."""
    import torch

    width = max(len(row.input_ids) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        input_ids[i, :n] = torch.tensor(row.input_ids)
        labels[i, :n] = torch.tensor(row.labels)
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def split(
    examples: list[Example], validation_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """A deterministic train/validation split: a seeded shuffle, at least one example on each side."""
    if not 0 < validation_fraction < 1:
        raise InvalidRequestError("validation_fraction must be between 0 and 1", param="validation_fraction")
    if len(examples) < 2:
        raise InvalidRequestError("at least two examples are needed to split off a validation set")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_validation = min(len(examples) - 1, max(1, round(len(examples) * validation_fraction)))
    held_out = set(order[:n_validation])
    train = [e for i, e in enumerate(examples) if i not in held_out]
    validation = [e for i, e in enumerate(examples) if i in held_out]
    return train, validation
