"""`engram demo` as a new user runs it: Ray's defaults (token auth), a fresh home, and a quiet console."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import envs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What the demo printed before its causes were fixed: LanceDB's fork warning in each process Ray
# starts, Ray's notice that it turned token auth on by default, and any traceback.
NOISE = ("lancedb fork", "Token authentication is", "RuntimeWarning", "Traceback", "Error")


def test_the_demo_builds_and_shows_memories_without_warnings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ENGRAM_"))}
    env |= {"HOME": str(tmp_path), "ENGRAM_CACHE_DIR": envs.ENGRAM_CACHE_DIR, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "engram.cli", "demo", "--users", "2", "--sessions", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "built " in done.stdout and "facts and preferences" in done.stdout and "profiles" in done.stdout
    noisy = [line for line in done.stderr.splitlines() if any(mark in line for mark in NOISE)]
    assert noisy == []
    assert (tmp_path / ".ray" / "auth_token").is_file()  # token auth was on, with a token of its own
    assert (tmp_path / ".engram" / "tenants" / "demo" / "lance").is_dir()
