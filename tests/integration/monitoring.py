#!/usr/bin/env python3
"""The alert rules and the Grafana dashboard in deploy/monitoring/ against the
binary that exports their metrics.

  monitoring.py LEASEHOLD_BINARY

1. Starts `leasehold serve` on a file lock with its HTTP server on loopback,
   waits until it leads, and reads the metric names it exports from /metrics
   (a histogram family also exports NAME_bucket, _sum and _count).
2. Every metric named in alerts.rules.yaml, in the promtool test's input
   series and in every dashboard query must be one of those: a renamed metric
   fails here.
3. alerts.yaml (the PrometheusRule) must carry exactly alerts.rules.yaml's
   groups, indented under spec.
4. `promtool check rules` and `promtool test rules` (one firing and one
   silent case per alert) must pass.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MON = os.path.join(ROOT, "deploy", "monitoring")
METRIC = re.compile(r"\b((?:leasehold|leader_election)_[a-z_]+)\b")
failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(what)


def live_metric_names(binary):
    with tempfile.TemporaryDirectory(prefix="leasehold-monitoring-") as d:
        log_path = os.path.join(d, "serve.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [binary, "serve", "--lock", f"file://{d}/m.lease", "--identity", "mon",
                 "--http-address=127.0.0.1:0", "--leader-elect-lease-duration=3s",
                 "--leader-elect-renew-deadline=2s", "--leader-elect-retry-period=250ms"],
                stdout=subprocess.DEVNULL, stderr=log)
        try:
            port = None
            deadline = time.monotonic() + 20
            text = ""
            while time.monotonic() < deadline:
                text = open(log_path).read()
                m = re.search(r"serving .* on http://[^ ]*:(\d+)$", text, re.M)
                if m and port is None:
                    port = m.group(1)
                if port:
                    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                    if re.search(r"^leader_election_master_status\{[^}]*\} 1$", body, re.M):
                        break
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            else:
                sys.exit(f"FAIL leasehold serve never led with metrics on loopback; its log:\n{text}")
            if proc.poll() is not None:
                sys.exit(f"FAIL leasehold serve exited {proc.returncode}; its log:\n{text}")
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    names = set()
    for line in body.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


def main():
    binary = sys.argv[1]
    live = live_metric_names(binary)
    check(f"the binary exports metric families ({len(live)} names)", len(live) >= 10, sorted(live))

    rules = open(os.path.join(MON, "alerts.rules.yaml")).read()
    tests = open(os.path.join(MON, "alerts_test.yaml")).read()
    dashboard = json.load(open(os.path.join(MON, "dashboard.json")))

    # Metrics in expressions only (comments and annotations are prose).
    rule_exprs = "\n".join(re.findall(r"^\s+expr: (?:>-\n)?((?:.*\n)*?)(?=^\s+(?:for|labels):)", rules, re.M))
    series = "\n".join(re.findall(r"series: '([^']*)'", tests))
    queries = []
    for p in dashboard["panels"]:
        queries += [t["expr"] for t in p.get("targets", [])]
    for v in dashboard.get("templating", {}).get("list", []):
        if isinstance(v.get("query"), dict):
            queries.append(v["query"]["query"])
    for where, text in (("alerts.rules.yaml expressions", rule_exprs),
                        ("alerts_test.yaml input series", series),
                        ("dashboard.json queries", "\n".join(queries))):
        used = set(METRIC.findall(text))
        check(f"{where} name metrics ({len(used)})", len(used) >= 3, "too few found: the extraction is broken")
        missing = sorted(used - live)
        check(f"every metric in {where} is exported", not missing, f"not exported: {missing}")
    alerts = re.findall(r"^\s+- alert: (\w+)", rules, re.M)
    check(f"alerts.rules.yaml defines the five alerts ({alerts})", len(alerts) == 5, alerts)
    for a in alerts:
        fires = re.search(rf"alertname: {a}\n\s+exp_alerts:\n\s+- exp_labels", tests)
        silent = re.search(rf"alertname: {a}\n\s+exp_alerts: \[\]", tests)
        check(f"alerts_test.yaml has a firing and a silent case for {a}", bool(fires and silent))
    check("every dashboard panel has a query", all(p.get("targets") for p in dashboard["panels"]))

    operator = open(os.path.join(MON, "alerts.yaml")).read()
    spec = operator.split("\nspec:\n", 1)[1] if "\nspec:\n" in operator else ""
    plain_groups = rules[rules.index("\ngroups:") + 1:]
    check("alerts.yaml's spec is alerts.rules.yaml's groups",
          "".join(line[2:] + "\n" if line else "\n" for line in spec.splitlines()) == plain_groups,
          "the two files differ: regenerate alerts.yaml from alerts.rules.yaml")

    for args in (["check", "rules", "alerts.rules.yaml"], ["test", "rules", "alerts_test.yaml"]):
        r = subprocess.run(["promtool", *args], cwd=MON, capture_output=True, text=True)
        check("promtool " + " ".join(args), r.returncode == 0, r.stdout + r.stderr)
        print("     " + (r.stdout + r.stderr).strip().replace("\n", "\n     "))
    print(f"monitoring: {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
