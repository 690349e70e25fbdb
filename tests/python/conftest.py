"""Shared fixtures for the compatibility tests: they run the real `modelops`
binary (``MODELOPS_BIN``, default ``<repo>/target/debug/modelops``) and
compare what it prints with the reference Python implementations."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def modelops_bin() -> str:
    return os.environ.get("MODELOPS_BIN", str(REPO / "target" / "debug" / "modelops"))


@pytest.fixture(scope="session")
def modelops():
    """Run `modelops ARGS…`; returns the CompletedProcess (text mode)."""
    binary = modelops_bin()
    if not Path(binary).is_file():
        pytest.fail(f"modelops binary not found at {binary}; build it or set MODELOPS_BIN")

    def run(*args, check=True, timeout=300):
        proc = subprocess.run(
            [binary, *map(str, args)], capture_output=True, text=True, timeout=timeout
        )
        # A panic is never an acceptable answer, whatever the input.
        assert "panicked" not in proc.stderr, proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError(
                f"modelops {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def modelops_json(modelops):
    """Run `modelops ARGS… --format json` and parse standard output."""

    def run(*args):
        return json.loads(modelops(*args, "--format", "json").stdout)

    return run
