#!/usr/bin/env python3
"""Renewal cadence against outage tolerance: the longest kube-apiserver outage
a leasehold leader survives, for each renew_interval, at the defaults
15s/10s/2s (lease / renew deadline / retry) (`make bench-cadence`).

One leasehold_candidate (tests/integration/candidate.cc) per cadence, alone on
a Lease of its own, with --renew-interval R and --print-renewals: every
successful renewal prints a "renewed" line carrying the CLOCK_MONOTONIC time
it was sent (ElectorConfig::callbacks.on_renewed, the library's own record of
what extends the term), so the harness knows the term's end,
sent(last successful renewal) + renew_deadline, to the millisecond, without the
audit log (written in batches up to a second late).

An outage is kube-apiserver's process group frozen with SIGSTOP for D seconds,
then SIGCONT (etcd keeps running). Connections stay open and the kernel keeps
accepting bytes, so the client sees silence, not a refusal: the hardest case
for a client that must notice the server is gone. The outage starts at the
worst phase: --lead (default 0.15 s) before the next renewal is due, so the
last successful renewal went out about R - 0.15 s before it (renewals are
sent up to 0.1 s early, onto the process's shared 100 ms ticks; a trial whose
renewal got out before the freeze is seen by its phase and repeated).
--phases best adds the best phase: just after a renewal landed.

A trial is survived when the candidate printed no "stopped" after the outage
began, checked 1.5 s past the later of the outage's end and the term's end
then, and a renewal sent after the outage began succeeded. The candidate runs
with --recampaign, so after a loss it takes its own Lease back at once and the
next trial need not wait for the lease to expire.

Theory. Let RD = renew_deadline, P = retry_period and phi the time from the
last successful renewal's send to the outage's start (0 <= phi <= R: the next
renewal goes R after the last one landed; add the last answer's latency when
it was slow, e.g. a renewal left pending through an earlier outage, which is
why a trial is timed from a promptly answered one). The term has RD - phi
left when the outage starts. When the outage ends, a renewal then pending is answered at
once; otherwise the next try goes within P (a failed renewal, timed out after
RD / 2 or on a connection the client gave up on, is retried every P). So an
outage of D is survived for sure if D + P < RD - phi, and never if
D >= RD - phi:

  worst phase (phi = R):  sure up to RD - R - P, never beyond RD - R
  best phase  (phi = 0):  sure up to RD - P,     never beyond RD

For each cadence and phase the trials bisect between the two bounds (one trial
at the sure bound, one past the other, then halving to --resolution).

Writes --out (default bench/results/cadence.json): per cadence the writes per
minute (60 / R: the leader's renewals; a follower writes nothing), the bounds,
the longest outage survived and the shortest lost, and every trial (nominal
and actual outage, phase, term left at the end of the outage, outcome). Prints
a table.
"""
import argparse
import json
import os
import random
import signal
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import fleet as F  # noqa: E402
from failover import ControlPlane, run_end  # noqa: E402

DEFAULTS = F.Timings(15000, 10000, 2000)


def secs(text):
    """'2s', '1500ms' or '2' (seconds) -> float seconds."""
    t = text.strip()
    try:
        if t.endswith("ms"):
            return float(t[:-2]) / 1e3
        return float(t[:-1] if t.endswith("s") else t)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a duration (2s, 1500ms)" % text)


def theory(r, t):
    rd, p = t.renew_ms / 1e3, t.retry_ms / 1e3
    return {"worst": (round(max(0.0, rd - r - p), 3), round(rd - r, 3)),
            "best": (round(rd - p, 3), round(rd, 3))}


class Subject:
    """One candidate with renew_interval r on a Lease of its own."""

    def __init__(self, args, r):
        self.args, self.r = args, r
        self.ident = "cadence-%gs" % r
        self.log = F.EventLog(os.path.join(args.dir, "cadence-%gs.jsonl" % r))
        lease = F.unique_lease("cadence-%d" % int(r * 1000))
        argv = [args.candidate, "--kubeconfig", os.path.join(args.dir, "kubeconfig-elector"), "--namespace", F.NS,
                "--name", lease, "--identity", self.ident] + DEFAULTS.flags() + \
               ["--renew-interval=%dms" % int(round(r * 1000)), "--print-renewals", "--recampaign"]
        self.c = F.Candidate(self.log, "leasehold", self.ident, argv,
                             stderr_path=os.path.join(args.dir, "cadence-%gs.stderr" % r))

    def leading(self):
        return F.current_leader(self.log.snapshot()) == self.ident

    def renewals(self, since_ns=0):
        return [e for e in self.log.snapshot() if e["event"] == "renewed" and e["mono_ns"] >= since_ns]

    def last_start(self):
        starts = [e["mono_ns"] for e in self.log.snapshot() if e["event"] == "started"]
        return starts[-1] if starts else None

    def close(self):
        if self.c.alive():
            self.c.signal(signal.SIGTERM)
            if not self.c.wait_exit(15):
                self.c.kill_now()
        self.c.kill_now()
        self.log.close()


def sleep_until(t_ns):
    while True:
        left = (t_ns - F.mono_ns()) / 1e9
        if left <= 0:
            return
        time.sleep(min(left, 0.05) if left < 0.2 else left - 0.1)


def anchor(subj, phase, lead_s):
    """(renewal event to time from, outage start in mono ns), once the
    candidate leads and has renewed in its current term."""
    r_ns = int(subj.r * 1e9)
    deadline = time.monotonic() + subj.r + 60
    while time.monotonic() < deadline:
        if not subj.leading():
            subj.log.wait(lambda evs: subj.leading(), 5)
            continue
        start = subj.last_start() or 0
        now = F.mono_ns()
        if phase == "worst":
            # The last renewal will do if its successor is still far enough off
            # and it was answered promptly: the next one goes R after the
            # answer, so a renewal answered late (one left pending through
            # the previous outage) leaves the term less than RD - R.
            rs = subj.renewals(start)
            if rs and rs[-1]["mono_ns"] - rs[-1]["sent_mono_ns"] < 300_000_000 and \
                    rs[-1]["mono_ns"] + r_ns - int(lead_s * 1e9) > now + 50_000_000:
                return rs[-1], rs[-1]["mono_ns"] + r_ns - int(lead_s * 1e9)
        # Wait for the next renewal.
        got = subj.log.wait(lambda evs: [e for e in evs[-5:] if e["event"] == "renewed" and e["mono_ns"] > now],
                            subj.r + 5)
        if got and phase == "best":
            return got[-1], F.mono_ns()  # at once: just after it landed
    return None, None


def trial(args, subj, phase, d_s, pgid):
    """One outage of d_s at the given phase; a dict describing it, or None."""
    t = DEFAULTS
    rd_ns = t.renew_ms * 1_000_000
    ev, t0 = anchor(subj, phase, args.lead)
    if ev is None:
        return None
    sleep_until(t0)
    t_stop_before = F.mono_ns()
    os.killpg(pgid, signal.SIGSTOP)
    t_stop = F.mono_ns()
    try:
        sleep_until(t_stop + int(d_s * 1e9))
    finally:
        os.killpg(pgid, signal.SIGCONT)
    t_cont = F.mono_ns()
    subj.log.harness("outage", subj.ident, at=t_stop, began=t_stop_before, ended=t_cont, nominal_s=d_s, phase=phase)
    # The last renewal sent before the outage (one sent just before it may be
    # answered only after it), hence the term's end as the outage began.
    sent_before = lambda: max(e["sent_mono_ns"] for e in subj.renewals() if e["sent_mono_ns"] < t_stop_before)
    s_last = sent_before()
    check_at = max(t_cont, s_last + rd_ns) + 1_500_000_000
    sleep_until(check_at)
    s_last = sent_before()
    stopped = [e for e in subj.log.snapshot() if e["event"] == "stopped" and e["mono_ns"] >= t_stop_before]
    later = None
    if not stopped:
        # A renewal sent after the outage began, answered: the term went on.
        later = subj.log.wait(lambda evs: [e for e in evs if e["event"] == "renewed" and
                                           e["sent_mono_ns"] >= t_stop_before], subj.r + 5)
    survived = not stopped and bool(later) and subj.leading()
    phi = (t_stop_before - s_last) / 1e9
    out = {
        "phase": phase,
        "nominal_s": d_s,
        "outage_s": round((t_cont - t_stop_before) / 1e9, 3),
        "phase_s": round((t_stop_before - s_last) / 1e9, 3),  # phi: last successful send -> outage start
        "left_at_end_s": round((s_last + rd_ns - t_cont) / 1e9, 3),  # term left when the server came back
        "survived": survived,
        # The phase aimed at: worst = the next renewal was not sent before the
        # freeze, and the last one went out about R before it (not more: a
        # late answer would have put it further back); best = the freeze
        # began within 0.3 s of a renewal's send.
        "phase_ok": (subj.r - args.lead - 0.15 <= phi <= subj.r + 0.1) if phase == "worst" else phi <= 0.3,
    }
    if stopped:
        out["stopped_after_s"] = round((stopped[0]["mono_ns"] - t_stop_before) / 1e9, 3)
        out["deadline_after_s"] = round((s_last + rd_ns - t_stop_before) / 1e9, 3)
        # --recampaign: it takes its own Lease back; the next trial starts from there.
        again = subj.log.wait(lambda evs: [e for e in evs if e["event"] == "started" and e["mono_ns"] > t_stop], 60)
        if not again:
            out["error"] = "did not lead again within 60 s of the loss"
    elif not later:
        out["error"] = "no stopped line, yet no renewal after the outage within %.0f s" % (subj.r + 5)
    elif not survived:
        out["error"] = "no stopped line, yet not leading after the outage"
    return out


def next_outage(lo, hi, ok_max, lost_min, p, res, rd):
    """The next nominal outage to try, or None when the search is done."""
    if ok_max is None and lost_min is None:
        d = max(lo, res)  # the sure bound: expected to survive
    elif lost_min is None:  # all survived so far: go past the bound that cannot be survived
        d = hi + res if ok_max < hi + res else ok_max + p
        if d > rd + 2 * res:
            return None  # survived beyond the renew deadline: reported as an error
    elif ok_max is None:  # all lost so far: step down
        d = lost_min - p if lost_min - p >= res else (res if lost_min > res else None)
    elif lost_min - ok_max <= res + 1e-9:
        return None
    else:
        d = (ok_max + lost_min) / 2
    return None if d is None else round(round(d / 0.05) * 0.05, 2)


def search(args, subj, phase, pgid, rng):
    """Bisects the longest survived outage between the theoretical bounds."""
    lo, hi = theory(subj.r, DEFAULTS)[phase]
    p, rd = DEFAULTS.retry_ms / 1e3, DEFAULTS.renew_ms / 1e3
    trials, errors = [], []
    ok_max, lost_min = None, None  # nominal seconds
    attempts = 0
    while len([x for x in trials if x["phase_ok"]]) < args.max_trials and attempts < args.max_trials + 4:
        attempts += 1
        d = next_outage(lo, hi, ok_max, lost_min, p, args.resolution, rd)
        if d is None or (trials and trials[-1]["phase_ok"] and d == trials[-1]["nominal_s"]):
            break
        res = trial(args, subj, phase, d, pgid)
        if res is None:
            errors.append("%gs %s: the candidate did not lead and renew within %.0f s" % (subj.r, phase, subj.r + 60))
            break
        trials.append(res)
        if "error" in res:
            errors.append("%gs %s, outage %.2f s: %s" % (subj.r, phase, d, res["error"]))
        print("  renew every %gs, %s phase: outage %5.2f s, begun %.2f s after the last renewal was sent, "
              "%5.2f s of term left at its end: %s" % (subj.r, phase, res["outage_s"], res["phase_s"],
                                                       res["left_at_end_s"],
                                                       "survived" if res["survived"] else "LOST leadership"),
              flush=True)
        if not res["phase_ok"]:
            print("    (not the %s phase: repeated, not counted)" % phase, flush=True)
        elif res["survived"]:
            ok_max = d if ok_max is None else max(ok_max, d)
        else:
            lost_min = d if lost_min is None else min(lost_min, d)
        time.sleep(rng.uniform(0, 0.3))
    good = [x for x in trials if x["phase_ok"]]
    surv = [x for x in good if x["survived"]]
    lost = [x for x in good if not x["survived"]]
    top = max(surv, key=lambda x: x["outage_s"]) if surv else None
    res = {"theory_sure_s": lo, "theory_max_s": hi,
           "longest_survived_s": top["outage_s"] if top else None,
           "longest_survived_phase_s": top["phase_s"] if top else None,
           "longest_survived_left_s": top["left_at_end_s"] if top else None,
           "shortest_lost_s": min(x["outage_s"] for x in lost) if lost else None,
           "trials": len(good), "phase_missed": len(trials) - len(good), "raw": trials}
    for x in trials:
        if x["survived"] and x["left_at_end_s"] < -0.05:
            errors.append("%gs %s: survived an outage of %.2f s that outlasted the term by %.2f s" %
                          (subj.r, phase, x["outage_s"], -x["left_at_end_s"]))
    if surv and lost and res["shortest_lost_s"] < res["longest_survived_s"]:
        res["note"] = "not monotonic: an outage was lost that was shorter than one survived (phase differs)"
    return res, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="testenv bin dir (testenv)")
    ap.add_argument("--candidate", required=True, help="path of leasehold_candidate")
    ap.add_argument("--dir", default="build/bench-cadence-testenv",
                    help="state dir of the control plane this run starts")
    ap.add_argument("--out", default="bench/results/cadence.json")
    ap.add_argument("--intervals", default="2s,4s,6s,8s",
                    help="renew_interval values, comma-separated (2s = the default: the retry period)")
    ap.add_argument("--phases", default="worst", help="worst, best or worst,best")
    ap.add_argument("--max-trials", type=int, default=6, help="per cadence and phase")
    ap.add_argument("--resolution", type=float, default=0.25, help="bisection stops at this width (s)")
    ap.add_argument("--lead", type=float, default=0.15,
                    help="worst phase: the outage starts this long before the next renewal is due (s)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    args.dir = os.path.abspath(args.dir)
    args.candidate = os.path.abspath(args.candidate)
    intervals = [secs(x) for x in args.intervals.split(",") if x.strip()]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if any(p not in ("worst", "best") for p in phases):
        ap.error("--phases: worst and/or best")
    if any(r <= 0 or r * 1000 >= DEFAULTS.renew_ms for r in intervals):
        ap.error("--intervals: each must be > 0 and < the renew deadline (%gs)" % (DEFAULTS.renew_ms / 1e3))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    rng = random.Random(seed)
    for path in (args.candidate, os.path.join(args.bin, "testenv")):
        if not os.access(path, os.X_OK):
            print("cadence bench: %s is missing (make build; testenv/build.sh)" % path)
            return 1
    t_start = time.monotonic()
    load_before = os.getloadavg()
    cp = ControlPlane(args)
    print("cadence bench: seed %d, timings %s, renew_interval %s, control plane in %s" %
          (seed, DEFAULTS, ", ".join("%gs" % r for r in intervals), args.dir), flush=True)
    cp.up()
    rows, errors = [], []
    pgid = None
    try:
        pgid = F.read_pids(args)["kube-apiserver"]["pgid"]
        for r in intervals:
            th = theory(r, DEFAULTS)
            print("renew_interval %gs (%g writes/min): theory, worst phase %g..%g s, best phase %g..%g s" %
                  (r, 60.0 / r, th["worst"][0], th["worst"][1], th["best"][0], th["best"][1]), flush=True)
            subj = Subject(args, r)
            row = {"renew_interval_s": r, "writes_per_min": round(60.0 / r, 1),
                   "theory": {k: {"sure_s": v[0], "max_s": v[1]} for k, v in th.items()}}
            try:
                if not subj.log.wait(lambda evs: subj.leading(), 60):
                    errors.append("%gs: the candidate did not lead within 60 s" % r)
                    continue
                for phase in phases:
                    res, errs = search(args, subj, phase, pgid, rng)
                    row[phase] = res
                    errors += errs
                    print("  => renew every %gs, %s phase: longest survived %s s, shortest lost %s s "
                          "(theory: sure %g s, never beyond %g s)" %
                          (r, phase, res["longest_survived_s"], res["shortest_lost_s"], res["theory_sure_s"],
                           res["theory_max_s"]), flush=True)
            finally:
                subj.close()
                rows.append(row)
    finally:
        if pgid:
            try:
                os.killpg(pgid, signal.SIGCONT)  # never leave it frozen (down would wait on it)
            except ProcessLookupError:
                pass
        cp.down()
    doc = {
        "cadences": rows,
        "meta": {
            "timings": str(DEFAULTS), "phases": phases, "lead_s": args.lead, "resolution_s": args.resolution,
            "seed": seed, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "took_s": round(time.monotonic() - t_start, 1),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
            "kube_apiserver": "v1.36.3 (testenv)", "errors": errors,
            "definitions": {
                "outage": "kube-apiserver's process group SIGSTOPped, then SIGCONTed (etcd runs on)",
                "worst phase": "outage begins lead_s before the next renewal is due (~renew_interval after the "
                               "last successful renewal was sent)",
                "best phase": "outage begins as soon as a renewal's success is printed",
                "survived": "no stopped line after the outage began and a renewal sent after it began succeeded",
                "theory": "sure: D + retry_period < renew_deadline - phase; max: D < renew_deadline - phase",
                "writes_per_min": "the leader's renewals (PUT), 60 / renew_interval; followers watch, no writes",
            },
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print()
    print("%-15s %11s %22s %22s %16s %14s %7s" % ("renew_interval", "writes/min", "theory worst (sure..max)",
                                                 "theory best (sure..max)", "longest survived", "shortest lost",
                                                 "trials"))
    for row in rows:
        for phase in phases:
            res = row.get(phase)
            if not res:
                continue
            print("%-15s %11s %22s %22s %16s %14s %7d" % (
                "%gs%s" % (row["renew_interval_s"], "" if phase == "worst" else " (best)"), row["writes_per_min"],
                "%g..%g s" % (row["theory"]["worst"]["sure_s"], row["theory"]["worst"]["max_s"]),
                "%g..%g s" % (row["theory"]["best"]["sure_s"], row["theory"]["best"]["max_s"]),
                res["longest_survived_s"], res["shortest_lost_s"], res["trials"]))
    return run_end(doc, args.out, errors)


if __name__ == "__main__":
    sys.exit(main())
