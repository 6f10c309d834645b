"""What a fine-tune file may hold, checked before ``actors.files.FileStore`` seals and stores it.

An upload is JSONL in OpenAI's chat format, one example per line::

    {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}

``validate_chat_jsonl`` checks every line and reports each problem with its line number: bad
JSON, not an object, missing or empty ``messages``, unknown roles or keys, empty content, no
assistant turn, too many tokens (the default base model's tokenizer with its chat template),
exact duplicates. A file with any problem is refused whole (``FileValidationError``).

``upload`` checks a file and stores it (``actors.files``: sealed with the tenant's key).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from actors import FileStore, check_upload
from cluster import InvalidRequestError, Settings
from training.bootstrap import ensure_base_model
from training.data import message_problem

MAX_REPORTED = 20  # problems named in a refusal
_TOKENIZER_LOCK = threading.Lock()
Messages = list[dict[str, str]]


class FileValidationError(InvalidRequestError):
    """An upload with bad lines; ``problems`` holds the first ``MAX_REPORTED`` as ``{"line", "error"}``."""

    @property
    def problems(self) -> list[dict[str, Any]]:
        return list(self.context.get("problems", []))


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based
    error: str


@dataclass(frozen=True)
class Report:
    """What validation found: the valid examples, their total tokens, and every problem."""

    examples: list[Messages]
    tokens: int
    problems: list[Problem]
    lines: int  # non-blank lines


# -- validation ---------------------------------------------------------------------------------


def _check_example(value: Any) -> tuple[Messages | None, str | None]:
    """The example's messages, or the first thing wrong with it."""
    if not isinstance(value, dict):
        return None, f"not a JSON object but {type(value).__name__}"
    unknown = sorted(set(value) - {"messages"})
    if unknown:
        return None, f"unknown key {unknown[0]!r}: an example holds only 'messages'"
    messages = value.get("messages")
    if messages is None:
        return None, "missing 'messages'"
    problem = message_problem(messages)
    return (None, problem) if problem is not None else (messages, None)


def _token_counts(tokenizer: Any, examples: Sequence[Messages], chat_template: str | None) -> list[int | str]:
    """Tokens of each example with the chat template applied, or why the template refused it."""
    from jinja2.exceptions import TemplateError

    texts: list[str] = []
    refused: dict[int, str] = {}
    for i, messages in enumerate(examples):
        try:
            texts.append(tokenizer.apply_chat_template(messages, tokenize=False, chat_template=chat_template))
        except TemplateError as e:
            refused[i] = f"the base model's chat template refuses it: {e}"
            texts.append("")
    with _TOKENIZER_LOCK:  # a fast tokenizer is not safe to call from two threads at once
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    return [refused.get(i, len(row)) for i, row in enumerate(ids)]


def validate_chat_jsonl(
    data: bytes, tokenizer: Any, max_tokens: int, chat_template: str | None = None
) -> Report:
    """Check every line of a chat-format JSONL file; blank lines are skipped."""
    problems: list[Problem] = []
    candidates: list[tuple[int, Messages]] = []
    seen: dict[str, int] = {}
    lines = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        lines += 1
        try:
            value = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))  # a BOM may lead
        except UnicodeDecodeError:
            problems.append(Problem(number, "not UTF-8 text"))
            continue
        except json.JSONDecodeError as e:
            problems.append(Problem(number, f"invalid JSON: {e.msg} at column {e.colno}"))
            continue
        except (ValueError, RecursionError) as e:  # a number too long to convert, nesting too deep
            problems.append(Problem(number, f"invalid JSON: {type(e).__name__}: {str(e)[:100]}"))
            continue
        messages, error = _check_example(value)
        if messages is None:
            problems.append(Problem(number, error or "invalid example"))
            continue
        canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
        if canonical in seen:
            problems.append(Problem(number, f"duplicate of line {seen[canonical]}"))
            continue
        seen[canonical] = number
        candidates.append((number, messages))
    counts = _token_counts(tokenizer, [m for _, m in candidates], chat_template)
    examples: list[Messages] = []
    tokens = 0
    for (number, messages), count in zip(candidates, counts, strict=True):
        if isinstance(count, str):
            problems.append(Problem(number, count))
        elif count > max_tokens:
            problems.append(Problem(number, f"{count} tokens, over the limit of {max_tokens}"))
        else:
            examples.append(messages)
            tokens += count
    problems.sort(key=lambda p: p.line)
    return Report(examples, tokens, problems, lines)


@lru_cache(maxsize=8)
def tokenizer_for(folder: str) -> Any:
    """The Hugging Face tokenizer in a checkpoint folder, loaded once per folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def default_base_model(settings: Settings) -> str:
    """The base model uploads are validated against: the first of ``llm.base_models``."""
    return next(iter(settings.llm.base_models))


def validate(settings: Settings, data: bytes) -> Report:
    """Check ``data`` against the default base model; FileValidationError if any line is bad."""
    limit = settings.files.max_file_bytes
    if not data.strip():
        raise InvalidRequestError("the file is empty", param="file")
    if len(data) > limit:
        raise InvalidRequestError(f"the file is over {limit} bytes", param="file")
    name = default_base_model(settings)
    spec = settings.llm.base_models[name]
    tokenizer = tokenizer_for(ensure_base_model(settings, name))
    report = validate_chat_jsonl(data, tokenizer, settings.files.max_example_tokens, spec.chat_template)
    if report.problems:
        shown = report.problems[:MAX_REPORTED]
        listed = "; ".join(f"line {p.line}: {p.error}" for p in shown[:5])
        more = f"; and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
        raise FileValidationError(
            f"{len(report.problems)} of {report.lines} lines are invalid, so the file is refused: "
            f"{listed}{more}",
            param="file",
            problems=[{"line": p.line, "error": p.error} for p in shown],
        )
    return report


def upload(store: FileStore, tenant_id: str, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
    """Check a fine-tune file (its name and purpose, then every line, against the store's settings)
    and store it; returns its record."""
    check_upload(filename, purpose)
    report = validate(store.settings, data)
    return store.add(tenant_id, filename, purpose, data, examples=len(report.examples), tokens=report.tokens)
