"""The HTML report renders in a real browser: headless Chromium loads the
file offline, and the rendered DOM must hold the expected sections and SVG
charts, with no console message at all (a script error, or a blocked fetch
reported by the page's Content-Security-Policy, would show up there).

Needs Debian's `chromium` (scripts/test installs it; so does this module
when it is missing and we run as root)."""

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

EVIL_COLUMN = "<script>alert('column')</script>"
EVIL_GROUP = "<img src=x onerror=alert(1)>"


def chromium_path():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, capture_output=True)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium)")
    return found


class Dom(HTMLParser):
    """Counts elements and collects ids and text of the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.tags = {}
        self.ids = set()
        self.bars = 0
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for k, v in attrs:
            if k == "id":
                self.ids.add(v)
            if tag == "rect" and k == "class" and v == "bar":
                self.bars += 1

    def handle_data(self, data):
        self.text.append(data)


def render(html_path, tmp_path):
    """Load the page in headless Chromium; returns (dom, console lines, screenshot path)."""
    chromium = chromium_path()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,2400",
    ]
    url = html_path.resolve().as_uri()
    dump = subprocess.run(
        [chromium, *flags, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dump.returncode == 0, dump.stderr
    shot = tmp_path / "report.png"
    snap = subprocess.run(
        [chromium, *flags, f"--user-data-dir={tmp_path / 'profile-shot'}", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert snap.returncode == 0, snap.stderr
    console = [
        line
        for line in (dump.stderr + snap.stderr).splitlines()
        if ":CONSOLE" in line or "Uncaught" in line
    ]
    dom = Dom()
    dom.feed(dump.stdout)
    return dom, console, shot


def scored_frame(seed=1, n=1200):
    rng = np.random.default_rng(seed)
    group = rng.choice(["north", "south", EVIL_GROUP], n, p=[0.5, 0.35, 0.15])
    y = rng.integers(0, 2, n)
    s = np.clip(0.4 * y + rng.normal(0.3, 0.2, n), 0, 1)
    p = (s > np.where(group == "south", 0.6, 0.45)).astype(int)
    return pd.DataFrame({"y": y, "p": p, "s": s, EVIL_COLUMN: group})


def test_evaluation_report_renders_in_chromium(tmp_path, modelops):
    data = tmp_path / "scored.parquet"
    scored_frame().to_parquet(data, index=False)
    html = tmp_path / "report.html"
    modelops(
        "evaluate", "--data", data, "--target", "y", "--prediction", "p", "--score", "s",
        "--protected", EVIL_COLUMN, "--format", "html", "--out", html,
    )
    raw = html.read_text()
    assert "<script" not in raw and "<img" not in raw, "user strings must be escaped"

    dom, console, shot = render(html, tmp_path)
    assert console == [], "\n".join(console)
    assert {"summary", "performance", "fairness"} <= dom.ids
    # No element came from the data: the only scripts/images are none at all.
    assert dom.tags.get("script", 0) == 0 and dom.tags.get("img", 0) == 0
    # Gauges for the five bounded metrics, then two fairness charts: one
    # selection-rate bar and a TPR and an FPR bar per group (3 groups).
    assert dom.tags.get("svg", 0) == 5 + 2
    assert dom.bars == 3 + 2 * 3
    text = " ".join(dom.text)
    assert EVIL_COLUMN in text and EVIL_GROUP in text, "escaped strings display as text"
    assert "Demographic parity" in text and "ROC AUC" in text
    assert shot.stat().st_size > 20_000, "screenshot looks empty"


def test_regression_report_renders_in_chromium(tmp_path, modelops):
    rng = np.random.default_rng(4)
    n = 600
    y = rng.normal(10, 3, n)
    df = pd.DataFrame({"y": y, "p": y + rng.normal(0, 1, n), "site": rng.choice(["x", "y"], n)})
    data = tmp_path / "reg.csv"
    df.to_csv(data, index=False)
    html = tmp_path / "reg.html"
    modelops("evaluate", "--data", data, "--target", "y", "--prediction", "p", "--protected", "site",
             "--format", "html", "--out", html)
    dom, console, _ = render(html, tmp_path)
    assert console == [], "\n".join(console)
    assert {"summary", "performance", "fairness"} <= dom.ids
    assert "RMSE" in " ".join(dom.text)


def test_report_with_drift_renders_in_chromium(tmp_path, modelops):
    reference = scored_frame(seed=2)
    current = scored_frame(seed=3)
    rng = np.random.default_rng(9)
    reference["age"] = rng.normal(40, 10, len(reference))
    current["age"] = rng.normal(47, 10, len(current))  # drifted
    current["only_current"] = 1.0
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    reference.to_parquet(ref_path, index=False)
    current.to_parquet(cur_path, index=False)
    html = tmp_path / "full.html"
    modelops(
        "evaluate", "--data", cur_path, "--reference", ref_path, "--target", "y", "--prediction", "p",
        "--score", "s", "--protected", EVIL_COLUMN, "--format", "html", "--out", html,
    )
    dom, console, _ = render(html, tmp_path)
    assert console == [], "\n".join(console)
    assert {"summary", "drift", "performance", "fairness"} <= dom.ids
    text = " ".join(dom.text)
    assert "Dataset drift" in text and "Drift" in text and "No drift" in text
    # One histogram per shared column (y, p, s, the protected one, age), five
    # gauges and two fairness charts.
    assert dom.tags.get("svg", 0) == 5 + 5 + 2
    assert "only_current" not in text

    out = modelops(
        "evaluate", "--data", cur_path, "--reference", ref_path, "--target", "y", "--prediction", "p",
        "--format", "json",
    ).stdout
    drift = json.loads(out)["drift"]
    age = next(c for c in drift["columns"] if c["column"] == "age")
    assert age["drift_detected"] is True


def test_drift_report_renders_in_chromium(tmp_path, modelops):
    rng = np.random.default_rng(12)
    n = 1500

    def frame(shift):
        return pd.DataFrame(
            {
                "age": rng.normal(40 + 6 * shift, 10, n),
                EVIL_COLUMN: rng.choice(["a", "b", EVIL_GROUP], n, p=[0.5, 0.3, 0.2] if shift else [0.2, 0.3, 0.5]),
                "empty": np.full(n, np.nan),
                "with_inf": np.where(rng.random(n) < 0.05, np.inf, rng.normal(0, 1, n)),
                "user_id": [f"u{shift}_{i}" for i in range(n)],
            }
        )

    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    frame(0).to_parquet(ref, index=False)
    frame(1).to_parquet(cur, index=False)
    html = tmp_path / "drift.html"
    modelops("drift", "--reference", ref, "--current", cur, "--format", "html", "--out", html)
    raw = html.read_text()
    assert "<script" not in raw and "<img" not in raw
    dom, console, shot = render(html, tmp_path)
    assert console == [], "\n".join(console)
    assert {"summary", "drift"} <= dom.ids
    assert "performance" not in dom.ids
    text = " ".join(dom.text)
    assert EVIL_COLUMN in text and "Not computed" in text and "Dataset drift" in text
    # A histogram for every column that has one: at least age, the
    # categorical one and with_inf (finite values only).
    assert dom.tags.get("svg", 0) >= 3
    assert dom.bars > 10
    assert shot.stat().st_size > 20_000
