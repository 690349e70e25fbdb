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


class Server:
    """A running `modelops serve` on a free port with a fresh data folder."""

    def __init__(self, url, token, data_dir, env):
        self.url = url
        self.token = token
        self.data_dir = data_dir
        self.env = env

    @property
    def hostport(self):
        return self.url.removeprefix("http://")

    def cli(self, *args, check=True, stdin=None):
        """Run a CLI command against this server as the admin."""
        proc = subprocess.run(
            [modelops_bin(), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env,
            input=stdin,
        )
        assert "panicked" not in proc.stderr, proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError(f"modelops {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}


def start_server(data_dir, *extra, env=None):
    """Starts `modelops serve` on a free port; returns (process, Server)."""
    import re
    import threading

    proc = subprocess.Popen(
        [modelops_bin(), "serve", "--addr", "127.0.0.1:0", "--data-dir", str(data_dir), "--log", "warn", *map(str, extra)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        m = re.search(r"modelops listening on (http://\S+)", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        proc.kill()
        pytest.fail("modelops serve did not start:\n" + "".join(lines))
    # Keep draining stderr so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    token = (data_dir / "admin.token").read_text().strip()
    cli_env = dict(os.environ, MODELOPS_SERVER=url, MODELOPS_TOKEN=token)
    return proc, Server(url, token, data_dir, cli_env)


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the session's serving tests (SQLite, local artifacts)."""
    proc, s = start_server(tmp_path_factory.mktemp("modelops-data"))
    yield s
    stop_server(proc)


@pytest.fixture(scope="session")
def onnx_fixtures(tmp_path_factory):
    """The ONNX fixtures (scikit-learn, XGBoost, LightGBM exports) with
    onnxruntime's outputs and shap's values, made by the repository's scripts."""
    import sys

    out = tmp_path_factory.mktemp("onnx-fixtures")
    for script in ["make_fixtures.py", "shap_fixtures.py"]:
        path = REPO / "tests" / "fixtures" / "onnx" / script
        proc = subprocess.run([sys.executable, str(path), str(out)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return out
