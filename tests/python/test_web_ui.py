"""The web UI in a real browser (Debian's Chromium driven by Playwright),
against the real binary: whole stories as people live them.

- a developer signs in, registers a model and pushes a version from the
  browser, and submits it;
- two validators sign in and approve while the author is refused (by the
  server: the page shows the reason), and the gate's reasons change;
- a deployer starts a canary and rolls it back after a confirmation;
- drift appears on the monitoring page after shifted traffic;
- an auditor, with the keyboard only, filters the audit log, sees the chain
  verified and an event's inclusion proof checked against the signed
  checkpoint.

Every page visited is screenshotted (target/ui-screenshots), must log no
console error, and must pass axe-core (npm, tests/web) without a serious or
critical violation. Sessions: the cookie's flags, CSRF and cross-origin
refusals, sign-out ending the session, a revoked session sending back to
sign-in.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO, modelops_bin, start_server, stop_server
from test_live_monitoring import MODEL, training

from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = REPO / "tests" / "web" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO / "target" / "ui-screenshots"
WINDOW_S = 4

# The rule set and data of the live-monitoring walk: `score = x * 0.1`
# (0 for negative x), `%s` for a suffix such as " + 0.5".
RULES = MODEL


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("web-data")
    proc, server = start_server(data_dir)
    server.dir = data_dir
    server.tokens = {}
    for name, roles in [
        ("dana", ["developer", "validator"]),
        ("vera", ["validator"]),
        ("victor", ["validator"]),
        ("dario", ["deployer"]),
        ("aud", ["auditor"]),
    ]:
        server.cli("users", "create", name, *sum((["--role", r] for r in roles), []))
        token = json.loads(server.cli("tokens", "create", "--name", "laptop", "--user", name, "--json").stdout)["token"]
        server.tokens[name] = token
    yield server
    stop_server(proc)


def as_user(s, name):
    return dict(s.env, MODELOPS_TOKEN=s.tokens[name])


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: scripts/test installs Debian's `chromium`")
    if not AXE.exists():
        pytest.fail(f"axe-core not found at {AXE}: scripts/test runs `npm ci` in tests/web")
    shutil.rmtree(SHOTS, ignore_errors=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


class Visit:
    """A browser context for one person: console errors collected, every
    page screenshotted and checked by axe-core."""

    def __init__(self, browser, s, story, width=1280):
        self.s = s
        self.story = story
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.shots = 0

    def goto(self, path):
        self.page.goto(self.s.url + path)

    def sign_in(self, name):
        self.goto("/ui/login")
        self.page.get_by_label("API token").fill(self.s.tokens[name])
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    def check(self, label, expect_errors=False):
        """Screenshot, no console error, no serious accessibility violation."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        self.page.screenshot(path=str(SHOTS / f"{self.story}-{self.shots:02d}-{label}.png"), full_page=True)
        if not expect_errors:
            assert self.errors == [], f"console errors on {label}: {self.errors}"
        self.errors.clear()
        self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        serious = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
                   for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], f"accessibility violations on {label}: {serious}"

    def close(self):
        self.context.close()


def write_rules(s, suffix=""):
    path = s.dir / f"rules{len(suffix)}.yaml"
    path.write_text(RULES % suffix)
    return path


def test_a_developer_registers_a_model_and_pushes_a_version(browser, s):
    v = Visit(browser, s, "1-developer")
    page = v.page
    v.goto("/ui/")
    # Not signed in: the sign-in form, then back where she was going.
    expect(page.get_by_role("heading", name="Sign in to modelops")).to_be_visible()
    v.check("sign-in")
    v.sign_in("dana")
    expect(page.get_by_role("heading", name="Model inventory")).to_be_visible()
    v.check("inventory-empty")
    page.get_by_role("link", name="Register a model").click()
    page.get_by_label("Name", exact=True).fill("credit-web")
    page.get_by_label("Kind").select_option("rules")
    page.get_by_label("Risk tier").select_option("high")
    page.get_by_label("Team").fill("risk")
    page.get_by_label("Description").fill("Credit decisions for the web story")
    page.get_by_label("Validation metric").fill("auc")
    page.get_by_label("Validation threshold").fill("0.7")
    v.check("register-form")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status")).to_contain_text("Model registered")
    expect(page.get_by_role("heading", level=1)).to_contain_text("credit-web")

    # A bad input names the field, and nothing is created.
    v.goto("/ui/models/new")
    page.get_by_label("Name", exact=True).fill("risk/score")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid `name`: `risk/score` must not contain `/`")
    v.errors.clear()  # the 400 answer's resource error

    v.goto("/ui/models/credit-web")
    page.get_by_label("Artifact file").set_input_files(str(write_rules(s)))
    page.get_by_label("Description").fill("first rules")
    page.get_by_label("Metrics").fill("auc=0.81\nks=0.4")
    page.get_by_label("Model card (Markdown)").fill("# Credit rules\n\nScores **applications**.\n\n<script>alert(1)</script>")
    page.get_by_label("Card: intended use").fill("Consumer credit decisions")
    page.get_by_label("Card: limitations").fill("Not for business loans")
    page.get_by_label("Card: evaluation data").fill("2025 holdout")
    v.check("model-push-form")
    page.get_by_role("button", name="Push version").click()
    expect(page.get_by_role("status")).to_contain_text("Version pushed")
    expect(page.get_by_role("heading", level=1)).to_contain_text("credit-web v1")
    expect(page.locator(".badge-draft").first).to_be_visible()
    # The card is rendered, its script shown as text, never run.
    expect(page.locator(".card-md h3")).to_have_text("Credit rules")
    expect(page.locator(".card-md")).to_contain_text("<script>alert(1)</script>")
    # Gates ahead, with every failing reason.
    approved_gate = page.locator("[data-gate=approved]")
    expect(approved_gate).to_contain_text("blocked by")
    expect(approved_gate).to_contain_text("two_independent_validators")
    expect(approved_gate).to_contain_text("validation_report")
    v.check("version-draft")
    page.get_by_role("button", name="Submit for validation").click()
    expect(page.get_by_role("status")).to_contain_text("Submitted for validation")
    expect(page.locator("h1 .badge-in-validation")).to_be_visible()
    v.check("version-submitted")

    # What the registry holds is what the page said.
    got = requests.get(f"{s.url}/api/v1/models/credit-web/versions/1", headers=s.headers()).json()
    assert got["state"] == "in_validation"
    assert got["card"]["metrics"] == {"auc": 0.81, "ks": 0.4}
    assert got["created_by"] == "dana"

    # The inventory counts the version waiting, and finds the model.
    v.goto("/ui/?q=credit&tier=high")
    expect(page.get_by_test_id("awaiting-approval")).to_have_text("1")
    expect(page.get_by_role("link", name="credit-web")).to_be_visible()
    v.goto("/ui/?tier=low")
    expect(page.get_by_text("No model matches.")).to_be_visible()
    # A narrow window: nothing wider than the screen.
    v.context.close()
    v = Visit(browser, s, "1-developer-narrow", width=390)
    v.sign_in("dana")
    v.goto("/ui/models/credit-web/versions/1")
    assert v.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    v.check("version-narrow")
    v.close()


def test_two_validators_approve_while_the_author_is_refused(browser, s):
    report = s.dir / "validation.txt"
    report.write_text("validated by vera: challenger tests pass")

    author = Visit(browser, s, "2-author")
    author.sign_in("dana")
    author.goto("/ui/models/credit-web/versions/1")
    author.page.get_by_label("Comment").fill("looks fine to me")
    author.page.get_by_role("button", name="Approve").click()
    expect(author.page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(author.page.locator("main")).to_contain_text("created this version and may not approve")
    author.check("author-refused", expect_errors=True)
    author.close()

    for i, name in enumerate(["vera", "victor"]):
        v = Visit(browser, s, f"2-{name}")
        v.sign_in(name)
        v.goto("/ui/")
        v.page.get_by_role("link", name="credit-web").first.click()
        v.page.get_by_role("link", name="v1", exact=True).click()
        v.check("version-to-approve")
        if i == 0:
            # Independent evidence first (her metric and report), so the
            # second approval is the last condition.
            v.page.get_by_label("Metric", exact=True).fill("auc")
            v.page.get_by_label("Value", exact=True).fill("0.9")
            v.page.get_by_label("Computed on (dataset)").fill("holdout-2025")
            v.page.get_by_role("button", name="Attach metric").click()
            expect(v.page.get_by_role("status")).to_contain_text("Evidence attached")
            v.page.get_by_label("Document file").set_input_files(str(report))
            v.page.get_by_role("button", name="Attach document").click()
            expect(v.page.get_by_role("status")).to_contain_text("Evidence attached")
            evidence = v.page.locator("table", has_text="Value or document")
            expect(evidence).to_contain_text("holdout-2025")
            expect(v.page.locator("[data-gate=approved]")).not_to_contain_text("✗ validation_report")
            # The document reads back as attached, verified on the way.
            href = evidence.get_by_role("link", name="validation.txt").get_attribute("href")
            got = v.page.request.get(s.url + href)
            assert got.status == 200 and got.text() == report.read_text()
        v.page.get_by_label("Comment").fill(f"{name}: validated")
        v.page.get_by_label("Conditions (optional)").fill("re-validate after Q1")
        v.page.get_by_role("button", name="Approve").click()
        expect(v.page.get_by_role("status")).to_contain_text("Your approval is recorded")
        rows = v.page.locator("table", has_text="Comment").locator("tbody tr")
        expect(rows).to_have_count(i + 1)
        if i == 0:
            expect(v.page.locator("h1 .badge-in-validation")).to_be_visible()
            expect(v.page.locator("[data-gate=approved]")).to_contain_text("two_independent_validators")
        else:
            expect(v.page.locator("h1 .badge-approved")).to_be_visible()
        v.check("approved" if i else "one-approval")
        v.close()
    got = requests.get(f"{s.url}/api/v1/models/credit-web/versions/1/governance", headers=s.headers()).json()
    assert sorted(a["approver"] for a in got["approvals"]) == ["vera", "victor"]


def approved_rules(s, model, suffix="", reference=None):
    args = ["versions", "push", model, write_rules(s, suffix), "--json"]
    card = s.dir / "card.json"
    card.write_text(json.dumps({"intended_use": "web tests"}))
    args += ["--card", card]
    if reference is not None:
        args += ["--reference", reference]
    v = json.loads(s.cli(*args).stdout)["version"]
    s.cli("versions", "submit", model, v)
    out = subprocess.run([modelops_bin(), "versions", "approve", model, str(v), "--comment", "ok"], capture_output=True, text=True, env=as_user(s, "vera"))
    assert out.returncode == 0, out.stderr
    return v


def test_a_deployer_starts_a_canary_and_rolls_it_back(browser, s):
    s.cli("models", "create", "churn-web", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
    stable = approved_rules(s, "churn-web")
    canary = approved_rules(s, "churn-web", " + 0.5")
    # The deployer creates the deployment from the browser.
    v = Visit(browser, s, "3-deployer")
    v.sign_in("dario")
    v.page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    v.page.get_by_text("Create a deployment").click()
    v.page.get_by_label("Deployment name").fill("churn-web-live")
    v.page.get_by_label("Model", exact=True).fill("churn-web")
    v.page.get_by_label("Version", exact=True).fill(str(stable))
    v.check("create-deployment")
    v.page.get_by_role("button", name="Create deployment").click()
    expect(v.page.get_by_role("status")).to_contain_text("Deployment created")
    expect(v.page.locator(".split")).to_contain_text(f"v{stable} · 100%")

    # A developer sees the deployment but is offered neither canary nor rollback.
    dev = Visit(browser, s, "3-developer")
    dev.sign_in("dana")
    dev.goto("/ui/deployments/churn-web-live")
    expect(dev.page.get_by_role("heading", name="Start a canary")).to_have_count(0)
    expect(dev.page.get_by_role("link", name="Roll back")).to_have_count(0)
    dev.close()

    v.page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    v.check("deployments")
    v.page.get_by_role("link", name="churn-web-live").click()
    v.page.get_by_label("Version", exact=True).fill(str(canary))
    v.page.get_by_label("Steps (percent)").fill("50,100")
    v.page.get_by_label("Hold each step for (requests)").fill("100000")
    v.page.get_by_label("Rollback condition (CEL, optional)").fill("false")
    v.page.get_by_role("button", name="Start canary").click()
    expect(v.page.get_by_role("status")).to_contain_text("Canary started")
    expect(v.page.get_by_role("heading", name=f"Canary: v{canary} replacing v{stable}")).to_be_visible()
    expect(v.page.locator("ol.steps li.current")).to_contain_text("50%")
    expect(v.page.locator(".split")).to_contain_text(f"v{canary} · 50%")
    # Some traffic: the live metrics of both routes.
    for i in range(20):
        r = requests.post(f"{s.url}/api/v1/deployments/churn-web-live/predict", json={"rows": [{"x": 1.0 + i, "y": 2.0}]}, headers=s.headers())
        assert r.status_code == 200, r.text
    v.page.reload()
    v.check("canary")
    v.page.get_by_role("link", name="Roll back").click()
    expect(v.page.get_by_role("heading", name="Roll back churn-web-live?")).to_be_visible()
    expect(v.page.locator("main")).to_contain_text(f"sends all its traffic to v{stable}")
    v.check("rollback-confirm")
    v.page.get_by_role("button", name="Yes, roll back").click()
    expect(v.page.get_by_role("status")).to_contain_text("Rolled back")
    expect(v.page.locator(".split")).to_contain_text(f"v{stable} · 100%")
    expect(v.page.locator("ol.history")).to_contain_text("deployment.rollback")
    v.check("rolled-back")
    v.close()
    d = json.loads(s.cli("deploy", "show", "churn-web-live", "--json").stdout)
    assert [r["version"] for r in d["routes"]] == [stable] and d.get("canary") is None
    events = requests.get(f"{s.url}/api/v1/audit", params={"subject": "deployment/churn-web-live", "action": "deployment.rollback"}, headers=s.headers()).json()
    assert [e["actor"] for e in events["events"]] == ["dario"]


def test_retraining_runs_are_followed_from_the_browser(browser, s):
    s.cli("jobs", "define", "churn-web", "--", "/bin/sh", "-c", "echo fitting on the window; exit 3")
    s.cli("retrain", "churn-web", "--wait", check=False)
    v = Visit(browser, s, "7-retraining")
    v.sign_in("dana")
    v.page.get_by_role("link", name="Retraining").click()
    jobs = v.page.locator("table", has_text="Acts as")
    expect(jobs).to_contain_text("churn-web")
    expect(jobs).to_contain_text("echo fitting on the window")
    runs = v.page.locator("table", has_text="Trigger").last.locator("tbody tr")
    expect(runs.first).to_contain_text("failed")
    expect(runs.first).to_contain_text("manual")
    v.check("jobs")
    runs.first.get_by_role("link").first.click()
    expect(v.page.get_by_role("heading", level=1)).to_contain_text("failed")
    expect(v.page.locator("main")).to_contain_text("fitting on the window")
    expect(v.page.locator("dl.facts")).to_contain_text("3")
    v.check("run")
    # From the model's page too.
    v.goto("/ui/models/churn-web")
    expect(v.page.locator("main")).to_contain_text("Retraining job: command")
    v.close()


def closed_window(s, deployment, monitor, rows, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        results = json.loads(s.cli("monitor", "show", deployment, monitor, "--format", "json").stdout)["results"]
        for w in results:
            if w["closed"] and w["rows"] == rows:
                return w
        time.sleep(0.5)
    raise AssertionError(f"no closed window of {rows} rows")


def send(s, deployment, frame):
    session = requests.Session()
    for row in frame.itertuples():
        r = session.post(f"{s.url}/api/v1/deployments/{deployment}/predict", json={"rows": [{"x": float(row.x), "y": float(row.y)}]}, headers=s.headers())
        assert r.status_code == 200, r.text


def test_drift_appears_on_the_monitoring_page_after_shifted_traffic(browser, s):
    train = s.dir / "train.parquet"
    training().to_parquet(train)
    s.cli("models", "create", "churn-mon", "--kind", "rules", "--owner", "admin", "--risk-tier", "low")
    v1 = approved_rules(s, "churn-mon", reference=train)
    s.cli("deploy", "create", "churn-mon-live", "--model", "churn-mon", "--version", v1)
    s.cli("monitor", "create", "churn-mon-live", "drift", "--every", f"{WINDOW_S}s", "--min-rows", "50", "--prediction", "score",
          "--alert", "shifted=drift.dataset_drift")
    time.sleep(WINDOW_S - (time.time() % WINDOW_S) + 0.05)
    send(s, "churn-mon-live", training(n=150, seed=1))
    closed_window(s, "churn-mon-live", "drift", 150)
    time.sleep(WINDOW_S - (time.time() % WINDOW_S) + 0.05)
    send(s, "churn-mon-live", training(n=200, seed=2, shift=1.5))
    shifted = closed_window(s, "churn-mon-live", "drift", 200)
    drifted = {c["column"] for c in shifted["result"]["drift"]["columns"] if c["drift_detected"]}
    assert "x" in drifted and "y" not in drifted

    v = Visit(browser, s, "4-sre")
    v.sign_in("dario")
    v.goto("/ui/deployments/churn-mon-live")
    v.page.get_by_role("link", name="Monitoring").click()
    expect(v.page.get_by_role("heading", name="Drift score per feature")).to_be_visible()
    chart = v.page.locator("figure.chart").first
    expect(chart.locator("figcaption")).to_contain_text("x")
    expect(chart.locator("figcaption")).to_contain_text("score")
    # The newest window names the drifted features; y is not among them.
    newest = v.page.locator("table", has_text="Drifted features").locator("tbody tr").first
    expect(newest).to_contain_text("x")
    expect(newest).not_to_contain_text("y,")
    # Histograms of the window, reference against current, per feature.
    expect(v.page.locator(".hist h3", has_text="x")).to_contain_text("drifted")
    expect(v.page.locator(".hist svg rect.cur").first).to_be_attached()
    # The alert fired.
    expect(v.page.locator("table", has_text="Resolved").locator("tbody")).to_contain_text("shifted")
    v.check("monitoring")
    # An older window's histograms, by keyboard-reachable link.
    v.page.locator("table", has_text="Drifted features").locator("tbody tr").last.get_by_role("link", name="show").click()
    expect(v.page.locator("tr.selected")).to_have_count(1)
    v.check("monitoring-older-window")
    v.close()


def test_an_auditor_filters_the_log_and_sees_it_verified_with_the_keyboard(browser, s):
    r = requests.post(f"{s.url}/api/v1/audit/checkpoints", headers=s.headers())
    assert r.status_code == 200, r.text
    v = Visit(browser, s, "5-auditor")
    page = v.page
    v.goto("/ui/audit")
    # Keyboard only: Tab to the token field, type, Enter.
    for _ in range(10):
        if page.evaluate("document.activeElement && document.activeElement.id") == "token":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(s.tokens["aud"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.get_by_role("button", name="Verify the chain").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("chain-status")).to_contain_text("Chain verified")
    v.check("audit")
    page.get_by_label("Subject").focus()
    page.keyboard.type("model/credit-web*")
    page.get_by_label("Actor").focus()
    page.keyboard.type("vera")
    page.get_by_label("Action").focus()
    page.keyboard.type("version.approve")
    page.keyboard.press("Enter")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("version.approve")
    expect(rows.first).to_contain_text("model/credit-web/version/1")
    v.check("audit-filtered")
    rows.first.get_by_role("link").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("proof-status")).to_contain_text("Proof verified")
    expect(page.locator("main")).to_contain_text("validated")
    v.check("audit-event-proof")
    v.close()


def test_sessions_cookies_csrf_and_sign_out(browser, s):
    http = requests.Session()
    login = http.get(f"{s.url}/ui/login")
    assert login.status_code == 200
    csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
    # A wrong token: the form again, with the reason, and no session.
    bad = http.post(f"{s.url}/ui/login", data={"token": "mdo_nope_nope", "csrf": csrf, "next": "/ui/"}, allow_redirects=False)
    assert bad.status_code == 401 and "does not sign anyone in" in bad.text
    assert "modelops_session" not in http.cookies
    # Without the form's CSRF value: refused.
    forged = requests.post(f"{s.url}/ui/login", data={"token": s.tokens["vera"], "csrf": "x" * 32}, allow_redirects=False)
    assert forged.status_code == 403
    good = http.post(f"{s.url}/ui/login", data={"token": s.tokens["vera"], "csrf": csrf, "next": "//evil.example/"}, allow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/ui/"
    cookie = [c for c in good.headers.get("set-cookie").split(", ") if c.startswith("modelops_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=28800" in cookie and "Secure" not in cookie
    page = http.get(f"{s.url}/ui/")
    assert page.status_code == 200 and "Model inventory" in page.text
    # Governed data is not cached by the browser, nor framed by other sites.
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    form_csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    # A form without its CSRF field, or from another origin: refused, nothing done.
    no_csrf = http.post(f"{s.url}/ui/models/credit-web/versions/1/decide", data={"decision": "reject", "comment": "x"}, allow_redirects=False)
    assert no_csrf.status_code == 403 and "csrf" in no_csrf.text
    cross = http.post(f"{s.url}/ui/models/credit-web/versions/1/decide", data={"decision": "reject", "comment": "x", "csrf": form_csrf},
                      headers={"Origin": "http://evil.example"}, allow_redirects=False)
    assert cross.status_code == 403 and "evil.example" in cross.text
    got = requests.get(f"{s.url}/api/v1/models/credit-web/versions/1/governance", headers=s.headers()).json()
    assert all(a["decision"] == "approve" for a in got["approvals"])
    # Under a no-referrer policy a browser sends `Origin: null`: the CSRF token decides.
    nulled = http.post(f"{s.url}/ui/models/credit-web/versions/1/decide", data={"decision": "reject", "comment": "x", "csrf": "0" * 32},
                       headers={"Origin": "null"}, allow_redirects=False)
    assert nulled.status_code == 403 and "csrf" in nulled.text
    # A `next` that is not a plain path of this site goes to the inventory.
    again = requests.Session()
    form = again.get(f"{s.url}/ui/login").text.split('name="csrf" value="')[1].split('"')[0]
    odd = again.post(f"{s.url}/ui/login", data={"token": s.tokens["vera"], "csrf": form, "next": "/ui/\nSet-Cookie: x=1"}, allow_redirects=False)
    assert odd.status_code == 303 and odd.headers["location"] == "/ui/"
    # Unknown numbers in paths are pages that say so, not bare errors.
    missing = http.get(f"{s.url}/ui/models/credit-web/versions/abc")
    assert missing.status_code == 404 and "version `abc` not found" in missing.text and "<html" in missing.text
    # The session is a token named `web session`, audited; signing out revokes it.
    tokens = json.loads(s.cli("tokens", "list", "--user", "vera", "--json").stdout)["tokens"]
    assert any(t["name"] == "web session" and t["revoked_at"] is None for t in tokens)
    out = http.post(f"{s.url}/ui/logout", data={"csrf": form_csrf}, allow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    stale = requests.get(f"{s.url}/ui/", cookies={"modelops_session": cookie.split(";")[0].split("=", 1)[1]}, allow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/ui/login")
    session_id = cookie.split(";")[0].split("=", 1)[1].split("_")[1]
    tokens = json.loads(s.cli("tokens", "list", "--user", "vera", "--json").stdout)["tokens"]
    assert [t["revoked_at"] is not None for t in tokens if t["id"] == session_id] == [True]

    # In the browser: a session revoked elsewhere (an admin) ends at the next page.
    v = Visit(browser, s, "6-session")
    v.sign_in("victor")
    tokens = json.loads(s.cli("tokens", "list", "--user", "victor", "--json").stdout)["tokens"]
    for t in tokens:
        if t["name"] == "web session" and t["revoked_at"] is None:
            s.cli("tokens", "revoke", t["id"])
    time.sleep(0.2)
    v.goto("/ui/deployments")
    expect(v.page.get_by_role("heading", name="Sign in to modelops")).to_be_visible()
    expect(v.page.get_by_role("status")).to_contain_text("Your session ended")
    # Signing in again returns to the page asked for.
    v.page.get_by_label("API token").fill(s.tokens["victor"])
    v.page.get_by_role("button", name="Sign in").click()
    expect(v.page.get_by_role("heading", name="Deployments")).to_be_visible()
    v.page.get_by_role("button", name="Sign out").click()
    expect(v.page.get_by_role("heading", name="Sign in to modelops")).to_be_visible()
    v.close()
