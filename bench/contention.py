#!/usr/bin/env python3
"""Contention benchmark: 50 cold candidates on one Lease, leasehold against
client-go, one run, one control plane.

Each trial takes a fresh Lease name and starts --candidates processes of one
implementation at once: leasehold_candidate (tests/integration/candidate.cc)
or the client-go peer (testenv/peer), through tests/integration/fleet.py, with
the same timings for both (default 15s/10s/2s). Trials alternate between the
implementations (--trials each). Per trial:

  time_to_first_leader  first spawn -> the first "started" event, both
                        CLOCK_MONOTONIC (the harness's and the candidates').
                        Includes starting 50 processes on a shared machine:
                        exec, the client set-up, the first GET, the CREATE race.
  one leader            the fleet checker (F.check) over the trial's events:
                        no two candidates' terms may overlap; also how many
                        distinct candidates printed "started" (1 expected).
  conflicts             kube-apiserver responses 409 on that Lease (from
                        DIR/audit.log) from the first spawn until the stop
                        (--hold), and every other non-2xx response on it by
                        code (404s of the first GETs before the Lease exists
                        are expected; listed apart). The stop itself is left
                        out: the leader's release is raced for by the
                        candidates not yet stopped.
  requests_first_Ns     every request the implementation's user made in the
                        first --request-window seconds after the first spawn
                        (each implementation runs as its own user,
                        bench-cont-lh / bench-cont-go; leasehold's shared
                        namespace LIST + WATCH and its Events are included;
                        SelfSubjectAccessReviews are not audited by testenv's
                        policy and so are not counted).

The candidates run --hold seconds after the first spawn (default 12), then
all are stopped (SIGTERM; the leader releases).

Writes --out (default bench/results/contention.json): `leasehold` and
`client_go` with the same keys plus raw per-trial samples, and `meta`.

  bench/contention.py --bin $(testenv/build.sh --print-bin) --candidate build-scale/tests/leasehold_candidate
"""
import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import fleet as F  # noqa: E402  (Timings, EventLog, Fleet, check)
import failover as FO  # noqa: E402  (ControlPlane, pct, read_audit)

IMPLS = ("leasehold", "client_go")
IMPL_KIND = {"leasehold": "leasehold", "client_go": "client-go"}
USERS = {"leasehold": "bench-cont-lh", "client_go": "bench-cont-go"}
BASE = {"leasehold": "lh", "client_go": "go"}


def run_trial(args, impl, idx):
    lease = F.unique_lease("contention-%s" % BASE[impl])
    log = F.EventLog(os.path.join(args.dir, "contention-%s-%02d.jsonl" % (BASE[impl], idx)))
    kc = os.path.join(args.dir, "kubeconfig-" + USERS[impl])
    fleet = F.Fleet(args, lease, args.timings, log, kubeconfig_for=lambda base: kc)
    wall0 = time.time()
    t0 = F.mono_ns()
    log.harness("first_spawn", at=t0)
    for k in range(args.candidates):
        fleet.spawn("%s%02d" % (BASE[impl], k), IMPL_KIND[impl])
    spawned_ms = F.ms(F.mono_ns() - t0)
    first = log.wait(lambda evs: next((e for e in evs if e["event"] == "started"), None), args.hold)
    ttfl = round(F.ms(first["mono_ns"] - t0), 1) if first else None
    left = args.hold - (time.monotonic_ns() - t0) / 1e9
    if left > 0:
        time.sleep(left)  # real time: the rest of the hold, to see whether a second leader appears
    t_end = F.mono_ns()
    wall_hold_end = time.time()
    events = log.snapshot()
    fleet.stop_all()
    wall_end = time.time()
    log.close()
    _, violations = F.check([e for e in events if e["mono_ns"] <= t_end], args.timings.bound_ns(10000), end_ns=t_end)
    two = [v for v in violations if "two leaders" in v]
    leaders = sorted({e["proc"] for e in events if e["event"] == "started"})
    return {"lease": lease, "impl": impl, "trial": idx, "time_to_first_leader_ms": ttfl,
            "first_leader": first["proc"] if first else None, "leaders_during_hold": leaders,
            "two_leaders": two, "spawn_all_ms": round(spawned_ms, 1), "wall_start": wall0,
            "wall_hold_end": wall_hold_end, "wall_end": wall_end, "loadavg": [round(x, 2) for x in os.getloadavg()]}


def count_requests(trial, audit, window_s):
    user = USERS[trial["impl"]]
    mine = [a for a in audit if a[1] == user and trial["wall_start"] <= a[0] < trial["wall_end"]]
    first = [a for a in mine if a[0] < trial["wall_start"] + window_s]
    # Only until the stop: a released Lease is raced for again by the
    # candidates not yet stopped, which is not the cold start.
    on_lease = [a for a in mine if a[3] == "leases" and a[4] == trial["lease"] and a[0] < trial["wall_hold_end"]]
    codes = {}
    for a in on_lease:
        if a[5] is not None and not 200 <= a[5] < 300:
            codes[str(a[5])] = codes.get(str(a[5]), 0) + 1
    by = {}
    for a in first:
        k = "%s %s" % (a[2], a[3] + "/lease" if a[3] == "leases" and a[4] == trial["lease"] else a[3])
        by[k] = by.get(k, 0) + 1
    trial.update({
        "conflicts_409": codes.get("409", 0),
        "non_2xx_on_lease": codes,
        "non_2xx_other_than_404_409": sum(v for k, v in codes.items() if k not in ("404", "409")),
        "requests_first_window": len(first),
        "requests_first_window_by_kind": by,
        "requests_on_lease_during_hold": len(on_lease),
    })


def summarize(trials, window_s):
    ttfl = [t["time_to_first_leader_ms"] for t in trials if t["time_to_first_leader_ms"] is not None]
    conf = [t["conflicts_409"] for t in trials]
    req = [t["requests_first_window"] for t in trials]
    key = "requests_first_%ds" % window_s
    return {
        "trials": len(trials),
        "time_to_first_leader_p50_ms": FO.pct(ttfl, 50),
        "time_to_first_leader_p99_ms": FO.pct(ttfl, 99),
        "time_to_first_leader_max_ms": max(ttfl) if ttfl else None,
        "trials_without_leader": sum(t["time_to_first_leader_ms"] is None for t in trials),
        "conflicts_per_trial_mean": round(statistics.mean(conf), 2) if conf else None,
        "non_2xx_other_than_404_409_total": sum(t["non_2xx_other_than_404_409"] for t in trials),
        key + "_mean": round(statistics.mean(req), 1) if req else None,
        "two_leaders_violations": sum(len(t["two_leaders"]) for t in trials),
        "trials_with_more_than_one_leader": sum(len(t["leaders_during_hold"]) > 1 for t in trials),
        "raw": {
            "time_to_first_leader_ms": [t["time_to_first_leader_ms"] for t in trials],
            "conflicts_409": conf,
            key: req,
            "non_2xx_on_lease": [t["non_2xx_on_lease"] for t in trials],
            "spawn_all_ms": [t["spawn_all_ms"] for t in trials],
            "trials": trials,
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="testenv bin dir (testenv, peer)")
    ap.add_argument("--candidate", required=True, help="path of leasehold_candidate")
    ap.add_argument("--dir", default="build/bench-contention-testenv",
                    help="state dir of the control plane this run starts")
    ap.add_argument("--out", default="bench/results/contention.json")
    ap.add_argument("--candidates", type=int, default=50, help="processes per trial")
    ap.add_argument("--trials", type=int, default=5, help="per implementation (alternating)")
    ap.add_argument("--timings", type=F.Timings.parse, default=F.Timings(15000, 10000, 2000),
                    help="LEASE/RENEW/RETRY for every candidate (default 15s/10s/2s)")
    ap.add_argument("--request-window", type=int, default=10, help="count requests in the first N seconds")
    ap.add_argument("--hold", type=float, default=12.0, help="seconds the candidates run after the first spawn")
    args = ap.parse_args()
    args.dir = os.path.abspath(args.dir)
    args.candidate = os.path.abspath(args.candidate)
    args.hold = max(args.hold, args.request_window + 1.0)
    for path in (args.candidate, os.path.join(args.bin, "peer"), os.path.join(args.bin, "testenv")):
        if not os.access(path, os.X_OK):
            print("contention bench: %s is missing (build leasehold_candidate; testenv/build.sh)" % path)
            return 1
    t_start = time.monotonic()
    load_before = os.getloadavg()
    cp = FO.ControlPlane(args)
    print("[contention] %d candidates per trial, %d trials each at %s; control plane in %s" %
          (args.candidates, args.trials, args.timings, args.dir), flush=True)
    cp.up()
    trials = {i: [] for i in IMPLS}
    try:
        cp.add_users(list(USERS.values()))
        for k in range(1, args.trials + 1):
            for impl in (IMPLS if k % 2 else tuple(reversed(IMPLS))):
                t = run_trial(args, impl, k)
                trials[impl].append(t)
                print("[contention] %-9s trial %d/%d: first leader after %s ms (%d processes spawned in %.0f ms), "
                      "leaders %s, load %s" %
                      (impl, k, args.trials, t["time_to_first_leader_ms"], args.candidates, t["spawn_all_ms"],
                       t["leaders_during_hold"], t["loadavg"][0]), flush=True)
                time.sleep(1.0)  # let the stopped processes' last requests land
        time.sleep(2.5)  # audit batches are flushed every second
        audit = FO.read_audit(args.dir, set(USERS.values()))
        for impl in IMPLS:
            for t in trials[impl]:
                count_requests(t, audit, args.request_window)
    finally:
        cp.down()
    result = {impl: summarize(trials[impl], args.request_window) for impl in IMPLS}
    errors = ["%s trial %d: %s" % (t["impl"], t["trial"], v) for impl in IMPLS for t in trials[impl]
              for v in t["two_leaders"]]
    errors += ["%s trial %d: no leader within %.0f s" % (t["impl"], t["trial"], args.hold)
               for impl in IMPLS for t in trials[impl] if t["time_to_first_leader_ms"] is None]
    doc = {
        "leasehold": result["leasehold"],
        "client_go": result["client_go"],
        "meta": {
            "timings": str(args.timings), "candidates": args.candidates, "trials_per_impl": args.trials,
            "request_window_s": args.request_window, "hold_s": args.hold,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "took_s": round(time.monotonic() - t_start, 1),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "kube_apiserver": "v1.36.3 (testenv)",
            "errors": errors,
            "note": ("%d processes start at once on a %d-CPU machine that also runs kube-apiserver, etcd and "
                     "other work: CPU contention (exec, runtime start-up, TLS) is part of time_to_first_leader "
                     "(see loadavg per trial in raw.trials)" % (args.candidates, os.cpu_count())),
            "definitions": {
                "time_to_first_leader": "first spawn -> first 'started' event, CLOCK_MONOTONIC",
                "conflicts": "kube-apiserver 409 responses on the trial's Lease (audit log), first spawn -> stop",
                "requests_first_window": "every audited request by the implementation's user in the first "
                                         "request_window_s after the first spawn (SelfSubjectAccessReview "
                                         "is not audited)",
                "two_leaders_violations": "overlapping terms of different candidates (fleet checker)",
            },
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    lh, go = doc["leasehold"], doc["client_go"]
    rk = "requests_first_%ds_mean" % args.request_window
    rows = [("time to first leader p50 (ms)", "time_to_first_leader_p50_ms"),
            ("time to first leader p99 (ms)", "time_to_first_leader_p99_ms"),
            ("409 conflicts per trial (mean)", "conflicts_per_trial_mean"),
            ("requests in first %d s (mean)" % args.request_window, rk),
            ("other non-2xx on the Lease (total)", "non_2xx_other_than_404_409_total"),
            ("two-leader violations", "two_leaders_violations"),
            ("trials with > 1 leader", "trials_with_more_than_one_leader")]
    print()
    print("%-42s %12s %12s" % ("%d candidates @ %s" % (args.candidates, args.timings), "leasehold", "client-go"))
    for label, key in rows:
        print("%-42s %12s %12s" % (label, lh[key], go[key]))
    return FO.run_end(doc, args.out, errors)


if __name__ == "__main__":
    sys.exit(main())
