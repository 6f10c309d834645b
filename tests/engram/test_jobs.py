"""engram.jobs without a Ray cluster: its arguments, refusals and the JSON last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engram.jobs import REFUSED, main, parser


def test_config_goes_before_or_after_the_operation() -> None:
    assert parser().parse_args(["--config", "a.yaml", "build", "acme"]).config == "a.yaml"
    assert parser().parse_args(["build", "acme", "--config", "b.yaml"]).config == "b.yaml"
    both = ["--config", "a.yaml", "build", "acme", "--config", "b.yaml"]
    assert parser().parse_args(both).config == "b.yaml"
    assert parser().parse_args(["build", "acme"]).config is None


def test_an_unknown_tenant_is_refused_with_a_json_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "engram.yaml"
    config.write_text(f"storage_root: {tmp_path / 'store'}\n")
    assert main(["ingest", "nobody", str(tmp_path / "x.jsonl"), "--config", str(config)]) == REFUSED
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == {
        "op": "ingest",
        "error": {"type": "NotFoundError", "message": "no tenant 'nobody'", "param": "tenant"},
    }
