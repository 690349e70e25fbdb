"""What the examples share: a `modelops serve` of their own in a fresh
folder, its CLI run as one of the example's people, its REST API, and the
audit events of a story."""

import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.request


def log(msg):
    print(msg, flush=True)


class Server:
    def __init__(self, binary, folder, *extra, env=None):
        self.binary = binary
        self.folder = folder
        self.proc = subprocess.Popen(
            [binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", str(folder / "server"), "--log", "warn", *map(str, extra)],
            stderr=subprocess.PIPE, text=True, env=env,
        )
        self.url = None
        for line in self.proc.stderr:
            m = re.search(r"modelops listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        if self.url is None:
            raise SystemExit("modelops serve did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        self.tokens = {"admin": (folder / "server" / "admin.token").read_text().strip()}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def cli(self, *args, user="admin", check=True):
        env = dict(os.environ, MODELOPS_SERVER=self.url, MODELOPS_TOKEN=self.tokens[user])
        proc = subprocess.run([self.binary, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
        if check and proc.returncode != 0:
            raise SystemExit(f"modelops {' '.join(map(str, args))} (as {user}) exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def json(self, *args, user="admin"):
        return json.loads(self.cli(*args, "--json", user=user).stdout)

    def call(self, method, path, body=None, user="admin", headers=None):
        req = urllib.request.Request(self.url + path, method=method, data=None if body is None else json.dumps(body).encode())
        req.add_header("Authorization", f"Bearer {self.tokens[user]}")
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{method} {path} answered {e.code}: {e.read().decode(errors='replace')}") from None



def audit_story(server, subjects, wanted):
    """The audit events on `subjects` (prefixes ending in `*`) whose action
    matches `wanted`, in order, as printable lines and as dicts."""
    events = []
    for subject in subjects:
        events += server.json("audit", "log", "--subject", subject, "--page-size", "1000")["events"]
    events.sort(key=lambda e: e["sequence"])
    lines, story = [], []
    for e in events:
        if not re.search(wanted, e["action"]):
            continue
        after = e.get("after") or {}
        state = after.get("state") or (after.get("run") or {}).get("state") or ""
        reason = after.get("reason") or (after.get("run") or {}).get("reason") or after.get("by_policy") or ""
        lines.append(f"{e['sequence']:>5}  {e['time'][11:23]}  {e['actor']:<8} {e['action']:<20} {e['subject']:<34} {state} {reason}".rstrip())
        story.append({"action": e["action"], "actor": e["actor"], "subject": e["subject"], "state": state, "reason": reason})
    return lines, story


def wait_for_run(server, model, until, timeout=120, poll=0.3, between=None):
    """Polls the model's newest run until `until(run)` holds; `between()`
    runs between polls (traffic). Returns the run."""
    import time

    deadline = time.time() + timeout
    run = None
    while time.time() < deadline:
        runs = server.json("jobs", "list", "--model", model)["runs"]
        run = runs[0] if runs else None
        if run is not None and until(run):
            return run
        if between is not None:
            between()
        else:
            time.sleep(poll)
    raise SystemExit(f"timed out waiting on the run of `{model}`: {run}")


def follow(server, model, run_id, send, timeout=300):
    """Sends traffic (`send()`) and prints each new state of the run until
    it ends; returns the run."""
    seen = set()

    def traffic_and_report():
        send()
        now = server.json("jobs", "show", str(run_id))
        if (now["state"], now["reason"]) not in seen:
            seen.add((now["state"], now["reason"]))
            log(f"   run {run_id}: {now['state']} — {now['reason']}")

    return wait_for_run(server, model, lambda r: r.get("ended_at"), timeout=timeout, between=traffic_and_report)


STORY = r"^(retrain\.|version\.(create|submit|approve|promote)|deployment\.|alert\.fire)"


def report_run(server, model, deployment, run):
    """Prints how a run ended, its job's output and the audit events of the
    story, verifies the log; returns the figures the tests read."""
    log(f"== run {run['id']}: {run['state']} — {run['reason']}")
    log("-- the job's output:")
    log(server.cli("jobs", "logs", str(run["id"])).stdout)
    served = server.call("GET", f"/api/v1/deployments/{deployment}")
    lines, story = audit_story(server, [f"model/{model}*", f"deployment/{deployment}*"], STORY)
    log("== the audit events of the story")
    log("\n".join(lines))
    verify = server.cli("audit", "verify", check=False)
    log(verify.stdout.strip())
    return {
        "run": run["id"], "state": run["state"], "reason": run["reason"], "version": run.get("version"),
        "serving": [r["version"] for r in served["routes"]], "shadows": served.get("shadows", []),
        "audit_story": story, "audit_verified": verify.returncode == 0,
        "alerts": [{"rule": a["rule"], "monitor": a["monitor"]} for a in server.json("alerts", "list", "--deployment", deployment)["alerts"]],
    }
