"""Synthetic signals with their ground truth: data for the demo, the benchmarks' load and the tests.

Not product code: Engram never imports it to serve or build memories. Quality figures come from
the real conversations in ``../shared/data`` (see the benchmarks), not from this generator.
"""

from synthetic.generator import (
    MALFORMED_KINDS,
    FactTruth,
    Question,
    SyntheticData,
    generate,
    users_of,
    write_jsonl,
)

__all__ = ["MALFORMED_KINDS", "FactTruth", "Question", "SyntheticData", "generate", "users_of", "write_jsonl"]
