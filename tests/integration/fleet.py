#!/usr/bin/env python3
"""Fleets of leader-election candidate processes on the real control plane.

Candidates are processes: leasehold_candidate (tests/integration/candidate.cc)
and the client-go peer (testenv/peer). Both print one JSON line per event
(new_leader, started, stopped, exited) stamped with CLOCK_MONOTONIC ns, the
clock this harness reads too (time.monotonic_ns), so one checker orders them.

Modes (each exits 0 on success, 1 with the violations listed otherwise):
  mixed             2 leasehold + 2 client-go candidates on one Lease, --rounds
                    rounds of random faults (SIGKILL or SIGTERM of the leader or
                    of a follower; the victim is restarted as a new
                    incarnation). The checker proves that no two candidates ever
                    lead at once (a SIGKILLed leader's term ends at its kill
                    time) and that every round ends with a leader within
                    lease_duration + 2 x retry_period + --slack of the fault.
                    Both directions of hand-over (leasehold <-> client-go) must
                    occur (up to 30 extra rounds are run until they have).
                    --pause-ms N adds SIGSTOP of the leader for N ms: with N
                    above the lease, two leaders are expected and reported.
  sigkill-takeover  2 leasehold candidates; the leader is SIGKILLed; the
                    follower takes over after the lease expires, never before
                    (kill + lease_duration - retry_period), and within the bound.
  etcd-restart      2 leasehold + 1 client-go while etcd is restarted (testenv
                    restart etcd), then frozen (SIGSTOP) for lease + 1 s: never
                    two leaders, and a leader again within the bound after
                    kube-apiserver is ready again.
  forbidden-retry   a leasehold candidate as user "nobody": a Forbidden error
                    naming verb, resource and namespace, retried (GET at the
                    jittered retry period, the watch with exponential backoff),
                    no crash, no token in the output, a clean exit on SIGTERM.
  cold-start        two leasehold candidates start at once on a fresh Lease and
                    the winner is SIGKILLed before its first renewal: the
                    other must lead within the bound, counted from the later
                    of the kill and its first sighting of the winner's record
                    (expiry counts from there; ctest kube.cold_start).
                    It guards a fixed bug that hit ~1 round in 10: the loser's
                    first GET answered 404 after its watch had already
                    delivered the winner's Lease; the 404 erased the record,
                    and take-over came only after 2 x lease_duration.
  check FILE        run the checker on a saved event log (JSON lines).
  selftest          the checker on hand-made logs that must fail (overlap,
                    late leader, no leader, a stop without a start) and one that
                    must pass: proof that the checker can fail.

Every run writes its event log to --log (default DIR/fleet-MODE.jsonl) and
prints the seed; `--seed N` replays the same fault schedule.
"""
import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proctree import cond_wait  # noqa: E402

NS = "leasehold-test"


def mono_ns():
    return time.monotonic_ns()  # CLOCK_MONOTONIC on Linux, as the candidates


def ms(ns):
    return ns / 1e6


class Timings:
    """lease_duration / renew_deadline / retry_period in ms, the same for every impl."""

    def __init__(self, lease_ms, renew_ms, retry_ms):
        self.lease_ms, self.renew_ms, self.retry_ms = lease_ms, renew_ms, retry_ms

    @staticmethod
    def parse(text):
        parts = [p.strip() for p in text.split("/")]
        if len(parts) != 3:
            raise argparse.ArgumentTypeError("timings: want LEASE/RENEW/RETRY, e.g. 2s/1.5s/300ms, got %r" % text)
        out = []
        for p in parts:
            for unit, mult in (("ms", 1), ("s", 1000)):
                if p.endswith(unit):
                    try:
                        out.append(int(round(float(p[: -len(unit)]) * mult)))
                    except ValueError:
                        raise argparse.ArgumentTypeError("timings: %r is not a number of %s" % (p, unit))
                    break
            else:
                raise argparse.ArgumentTypeError("timings: %r needs a unit, s or ms" % p)
        return Timings(*out)

    def flags(self):
        return ["--lease-duration=%dms" % self.lease_ms, "--renew-deadline=%dms" % self.renew_ms,
                "--retry-period=%dms" % self.retry_ms]

    def bound_ns(self, slack_ms):
        return int((self.lease_ms + 2 * self.retry_ms + slack_ms) * 1e6)

    def __str__(self):
        return "%gs/%gs/%gs" % (self.lease_ms / 1e3, self.renew_ms / 1e3, self.retry_ms / 1e3)


class EventLog:
    """Every event of every candidate and of the harness, in arrival order."""

    def __init__(self, path=None):
        self.mu = threading.Condition()
        self.events = []
        self.file = open(path, "w") if path else None

    def add(self, ev):
        with self.mu:
            self.events.append(ev)
            if self.file:
                self.file.write(json.dumps(ev) + "\n")
                self.file.flush()
            self.mu.notify_all()

    def harness(self, event, proc="", at=None, **kw):
        """Records a harness event, stamped now or `at` (mono ns)."""
        ev = dict(event=event, proc=proc, src="harness", mono_ns=at if at is not None else mono_ns(), **kw)
        self.add(ev)
        return ev

    def wait(self, pred, timeout_s):
        """Waits until pred(events) is truthy; returns its value or None."""
        with self.mu:
            return cond_wait(self.mu, lambda: pred(self.events), timeout_s)

    def snapshot(self):
        with self.mu:
            return list(self.events)

    def close(self):
        if self.file:
            self.file.close()
            self.file = None


class ProcessHandle:
    """alive / wait_exit / kill_now for a member process: `p` (its Popen) and
    `exited` (a threading.Event set once its output ended)."""

    def alive(self):
        return not self.exited.is_set()

    def wait_exit(self, timeout_s):
        return self.exited.wait(timeout_s)

    def kill_now(self):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.p.wait()
        self.exited.wait(5)


class Candidate(ProcessHandle):
    """One candidate process (one incarnation); proc is also its identity."""

    def __init__(self, log, impl, proc, argv, stderr_path=None, env=None):
        self.log, self.impl, self.proc, self.argv = log, impl, proc, argv
        self.stderr_lines = []  # (mono_ns, line), when stderr_path is "pipe"
        err = subprocess.PIPE if stderr_path == "pipe" else (open(stderr_path, "ab") if stderr_path else None)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True)
        self.log.harness("spawned", proc, impl=impl, pid=self.p.pid)
        self.exited = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.err_reader = None
        if stderr_path == "pipe":
            self.err_reader = threading.Thread(target=self._read_err, daemon=True)
            self.err_reader.start()

    def _read(self):
        for raw in self.p.stdout:
            try:
                j = json.loads(raw)
            except ValueError:
                self.log.harness("bad_line", self.proc, line=raw.decode(errors="replace").strip())
                continue
            j["proc"] = self.proc
            j["src"] = self.impl
            self.log.add(j)
        rc = self.p.wait()
        self.log.harness("exit", self.proc, rc=rc)
        self.exited.set()

    def _read_err(self):
        for raw in self.p.stderr:
            self.stderr_lines.append((mono_ns(), raw.decode(errors="replace").rstrip("\n")))

    def signal(self, sig):
        """Sends sig. SIGKILL is stamped after kill() returned (the process
        runs no more code after that, so its term ends no later); any other
        signal before kill() (the process reacts to it only after)."""
        before = mono_ns()
        try:
            os.kill(self.p.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            return self.log.harness("killed", self.proc, sig="SIGKILL")
        return self.log.harness("signal", self.proc, at=before, sig=signal.Signals(sig).name)



class Fleet:
    """Candidates of one Lease: starts them (each start is a new incarnation,
    identity BASE.N) and stops them. kubeconfig_for(base) picks the user."""

    def __init__(self, args, lease, timings, log, kubeconfig_for=None):
        self.args, self.lease, self.timings, self.log = args, lease, timings, log
        self.kubeconfig_for = kubeconfig_for or (lambda base: os.path.join(args.dir, "kubeconfig-elector"))
        self.incarnation = {}
        self.running = {}  # base -> Candidate
        self.all = []
        self.extra_flags = {}  # base -> more flags for its command line

    def argv(self, base, impl, proc, t):
        """The command line of one candidate process."""
        common = ["--kubeconfig", self.kubeconfig_for(base), "--namespace", NS, "--name", self.lease,
                  "--identity", proc] + t.flags()
        common += self.extra_flags.get(base, [])
        if impl == "leasehold":
            # Info lines too: they are what explains a violation (print_window).
            return [self.args.candidate, "--v=1"] + common
        return [os.path.join(self.args.bin, "peer")] + common + ["--user-agent", "peer/" + base]

    def stderr_dir(self):
        return os.path.dirname(self.log.file.name) if self.log.file else "/tmp"

    def spawn(self, base, impl, timings=None):
        n = self.incarnation.get(base, 0) + 1
        self.incarnation[base] = n
        proc = "%s.%d" % (base, n)
        argv = self.argv(base, impl, proc, timings or self.timings)
        stderr = os.path.join(self.stderr_dir(), "fleet-%s.stderr" % base)
        c = Candidate(self.log, impl, proc, argv, stderr_path=stderr)
        self.running[base] = c
        self.all.append(c)
        return c

    def stop_all(self):
        for c in self.running.values():
            if c.alive():
                c.signal(signal.SIGTERM)
        for c in self.running.values():
            if not c.wait_exit(10):
                c.kill_now()
        for c in self.all:
            c.kill_now()


# ---------------------------------------------------------------- checker

def terms_of(events, end_ns):
    """[(start, end, proc, how_ended)] from started/stopped/killed/exit events."""
    open_ = {}
    terms = []
    problems = []
    for ev in sorted(events, key=lambda e: e["mono_ns"]):
        kind, proc, t = ev["event"], ev.get("proc", ""), ev["mono_ns"]
        if kind == "started":
            if proc in open_:
                problems.append("%s: started twice without a stop (at %.1f ms)" % (proc, ms(t)))
            open_[proc] = t
        elif kind in ("stopped", "killed", "exit"):
            if proc in open_:
                how = {"stopped": "stopped", "killed": "SIGKILL", "exit": "exit without stopped"}[kind]
                if kind == "exit" and ev.get("rc") not in (-9,):
                    problems.append("%s exited (rc %s) while leading, without a stopped event" % (proc, ev.get("rc")))
                terms.append((open_.pop(proc), t, proc, how))
            elif kind == "stopped":
                problems.append("%s: stopped without a started (at %.1f ms)" % (proc, ms(t)))
    for proc, start in open_.items():
        terms.append((start, end_ns, proc, "still leading at the end"))
    terms.sort()
    return terms, problems


def check(events, bound_ns, end_ns=None, rounds_end_ns=None):
    """Returns (report dict, violations list). Terms still open at end_ns end
    there; the last round ends at rounds_end_ns (default end_ns)."""
    if end_ns is None:
        end_ns = max([e["mono_ns"] for e in events] + [0])
    if rounds_end_ns is None:
        rounds_end_ns = end_ns
    terms, violations = terms_of(events, end_ns)
    # 1. never two leaders: terms of different processes must not overlap.
    for i, (s1, e1, p1, _) in enumerate(terms):
        for s2, e2, p2, _ in terms[i + 1:]:
            if s2 >= e1:
                break
            if p1 != p2:
                violations.append("two leaders: %s [%.1f, %.1f] and %s [%.1f, %.1f] overlap by %.1f ms" %
                                  (p1, ms(s1), ms(e1), p2, ms(s2), ms(e2), ms(min(e1, e2) - s2)))
    # 2. every round ends with a leader within the bound of its fault.
    faults = sorted([e for e in events if e["event"] == "fault"], key=lambda e: e["mono_ns"])
    gaps = []
    for i, f in enumerate(faults):
        t0 = f["mono_ns"]
        # A round ends where the next fault begins (a fault that takes time, such
        # as freezing etcd, is logged when it is over but began earlier).
        t_end = faults[i + 1].get("began", faults[i + 1]["mono_ns"]) if i + 1 < len(faults) else rounds_end_ns
        target = f.get("proc", "")
        round_bound = bound_ns + int(f.get("bound_extra_ms", 0) * 1e6)  # a fault that also delays the store
        # A term that outlives the fault and is not the victim's: no gap.
        ongoing = [t for t in terms if t[0] <= t0 < t[1] and t[2] != target and t[1] >= min(t_end, t0 + round_bound)]
        if ongoing:
            gaps.append(0)
            continue
        nxt = [t for t in terms if t0 <= t[0] <= t_end and t[2] != target]
        if not nxt:
            violations.append("round %d (%s of %s): no new leader before the next round" % (i + 1, f["kind"], target))
            continue
        gap = nxt[0][0] - t0
        gaps.append(gap)
        if gap > round_bound:
            violations.append("round %d (%s of %s): leader %s only %.1f ms after the fault (bound %.1f ms)" %
                              (i + 1, f["kind"], target, nxt[0][2], ms(gap), ms(round_bound)))
    impl_of = {e["proc"]: e.get("impl", e.get("src")) for e in events if e["event"] == "started"}
    handovers = {}
    for a, b in zip(terms, terms[1:]):
        key = "%s->%s" % (impl_of.get(a[2], "?"), impl_of.get(b[2], "?"))
        handovers[key] = handovers.get(key, 0) + 1
    by_impl = {}
    for t in terms:
        by_impl[impl_of.get(t[2], "?")] = by_impl.get(impl_of.get(t[2], "?"), 0) + 1
    kinds = {}
    for f in faults:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    gaps_ms = sorted(ms(g) for g in gaps)
    report = {
        "rounds": len(faults),
        "faults": kinds,
        "terms": len(terms),
        "terms_by_impl": by_impl,
        "handovers": handovers,
        "max_gap_ms": round(gaps_ms[-1], 1) if gaps_ms else None,
        "bound_ms": round(ms(bound_ns), 1),
        "violations": len(violations),
    }
    return report, violations


def print_report(report, violations, out=sys.stdout):
    print("rounds: %d" % report["rounds"], file=out)
    print("faults by kind: %s" % ", ".join("%s=%d" % kv for kv in sorted(report["faults"].items())), file=out)
    print("leadership terms: %d; longest leaderless gap after a fault: %s ms (bound %s ms)" %
          (report["terms"], report["max_gap_ms"], report["bound_ms"]), file=out)
    print("terms by implementation: %s; handovers: %s" %
          (", ".join("%s=%d" % kv for kv in sorted(report["terms_by_impl"].items())),
           ", ".join("%s=%d" % kv for kv in sorted(report["handovers"].items()))), file=out)
    print("violations: %d" % len(violations), file=out)
    for v in violations:
        print("  VIOLATION " + v, file=out)


# ---------------------------------------------------------------- helpers

def current_leader(events):
    """The process whose term is open at the end of events, or None. Events
    are taken in the order they happened (mono_ns), not the order they were
    logged: a sidecar's tree is known to have ended only a little after it
    did, possibly after its next term's start was logged."""
    leading = None
    for ev in sorted(events, key=lambda e: e.get("mono_ns", 0)):
        if ev["event"] == "started":
            leading = ev["proc"]
        elif ev["event"] in ("stopped", "killed", "exit") and ev.get("proc") == leading:
            leading = None
    return leading


def leader_since(events, t0):
    """The current leader if its term started at or after t0 (mono ns), else
    None: after a fault longer than the renew deadline a new term must start,
    and the old leader may not have logged its end yet."""
    leader = current_leader(events)
    if not leader:
        return None
    starts = [e["mono_ns"] for e in events if e["event"] == "started" and e["proc"] == leader]
    return leader if starts and max(starts) >= t0 else None


def settled(fleet, events):
    """A leader exists and every other running candidate has seen it."""
    leader = current_leader(events)
    if not leader:
        return None
    seen = {}
    for ev in events:
        if ev["event"] == "new_leader":
            seen[ev["proc"]] = ev.get("leader")
    for c in fleet.running.values():
        if c.proc != leader and c.alive() and seen.get(c.proc) != leader:
            return None
    return leader


def restart_exited(fleet, impls):
    """Candidates that ended by themselves (lost the lease, recampaign off)."""
    for base, c in list(fleet.running.items()):
        if not c.alive():
            fleet.spawn(base, impls[base])


def unique_lease(prefix):
    return "%s-%d-%d" % (prefix, os.getpid(), mono_ns() % 1000000)


def finish(fleet, log, bound_ns, title):
    rounds_end = mono_ns()  # the last round ends here, before the fleet is stopped
    fleet.stop_all()
    end = mono_ns()
    events = log.snapshot()
    log.close()
    report, violations = check(events, bound_ns, end, rounds_end)
    print("== %s ==" % title)
    print_report(report, violations)
    if violations:
        print_window(fleet, events, violations, bound_ns)
    return report, violations


S = 1_000_000_000  # ns per second


def print_window(fleet, events, violations, bound_ns, limit=60):
    """After a violation: what each leasehold candidate logged (its stderr, t=
    lines on the events' clock) around each violating round, so a failure
    seen once in CI can be explained from its output."""
    faults = sorted([e for e in events if e["event"] == "fault"], key=lambda e: e["mono_ns"])
    rounds = sorted({int(m.group(1)) for v in violations for m in [re.match(r"round (\d+)", v)] if m})
    windows = []
    for r in rounds:
        if 1 <= r <= len(faults):
            f = faults[r - 1]
            windows.append((f.get("began", f["mono_ns"]) - 2 * S, f["mono_ns"] + bound_ns + 2 * S))
    if not windows:  # an overlap: the whole run
        windows.append((0, float("inf")))
    paths = sorted({os.path.join(fleet.stderr_dir(), "fleet-%s.stderr" % c.proc.split(".")[0])
                    for c in fleet.all if c.impl == "leasehold"})
    for path in paths:
        try:
            with open(path, errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        picked = []
        for line in lines:
            m = re.match(r"t=(\d+\.\d+) ", line)
            if m and any(a <= float(m.group(1)) * S <= b for a, b in windows):
                picked.append(line)
        print("-- %s: %d line(s) in the violating round(s)%s" %
              (os.path.basename(path), len(picked), ", the last %d:" % limit if len(picked) > limit else ":"))
        for line in picked[-limit:]:
            print("   " + line)


# ---------------------------------------------------------------- modes

def mode_mixed(args):
    rng = random.Random(args.seed)
    t = args.timings
    log = EventLog(args.log)
    fleet = Fleet(args, unique_lease("mixed"), t, log)
    impls = {"lh-1": "leasehold", "lh-2": "leasehold", "go-1": "client-go", "go-2": "client-go"}
    print("mixed fleet on %s/%s: 2 leasehold + 2 client-go, timings %s for both, %d rounds, seed %d" %
          (NS, fleet.lease, t, args.rounds, args.seed), flush=True)
    for base, impl in impls.items():
        fleet.spawn(base, impl)
    bound = t.bound_ns(args.slack_ms)
    kinds = ["sigkill-leader", "sigterm-leader", "sigkill-follower", "sigterm-follower"]
    weights = [5, 3, 1, 1]
    if args.pause_ms:  # only to show the checker failing: see mode_mixed's sigstop-leader
        kinds.append("sigstop-leader")
        weights.append(4)
    started = time.monotonic()
    problems = []
    pending = None
    r = -1
    while True:
        r += 1
        if r >= args.rounds:
            # Both directions of hand-over must have happened; if the dice
            # did not give one yet, a few more rounds (at most 30).
            h = check(log.snapshot(), bound)[0]["handovers"]
            both = h.get("leasehold->client-go") and h.get("client-go->leasehold")
            if both or r >= args.rounds + 30:
                break
        leader = log.wait(lambda evs: settled(fleet, evs), 20)
        if not leader:
            problems.append("round %d: the fleet did not settle within 20 s (leader %s)" %
                            (r + 1, current_leader(log.snapshot())))
            break
        kind = rng.choices(kinds, weights)[0]
        base_of = {c.proc: b for b, c in fleet.running.items()}
        if kind.endswith("leader"):
            victim_base = base_of[leader]
        else:
            victim_base = rng.choice(sorted(b for b, c in fleet.running.items() if c.proc != leader))
        victim = fleet.running[victim_base]
        if kind == "sigstop-leader":
            # A leader frozen for longer than the lease: the others take over
            # while it still believes it leads. Not a fault the library can
            # mask (only fencing tokens can); the checker must report it.
            ev = victim.signal(signal.SIGSTOP)
            log.harness("fault", victim.proc, kind=kind, at=ev["mono_ns"], impl=victim.impl)
            time.sleep(args.pause_ms / 1e3)
            victim.signal(signal.SIGCONT)
            restart_exited(fleet, impls)
            continue
        sig = signal.SIGKILL if kind.startswith("sigkill") else signal.SIGTERM
        began = mono_ns()  # the round before ends here: a SIGKILL is stamped only after kill() returned
        ev = victim.signal(sig)
        log.harness("fault", victim.proc, kind=kind, at=ev["mono_ns"], began=began, impl=victim.impl)  # the kill's time
        if not victim.wait_exit(10):
            problems.append("round %d: %s did not exit within 10 s of %s" % (r + 1, victim.proc, sig.name))
            victim.kill_now()
        # The previous round's victim comes back now, fresh; this one sits out
        # a round. So some rounds have fewer watching leasehold followers and
        # client-go wins too (a leasehold follower that saw the last renewal
        # always sees the expiry first).
        if pending:
            fleet.spawn(pending, impls[pending])
        pending = victim_base
        del fleet.running[victim_base]
        if kind.endswith("leader"):
            got = log.wait(lambda evs: current_leader(evs) not in (None, leader) and current_leader(evs),
                           ms(bound) / 1e3 + 5)
            if not got:
                problems.append("round %d: no leader %.1f s after %s" % (r + 1, ms(bound) / 1e3 + 5, kind))
        restart_exited(fleet, impls)
        if time.monotonic() - started > args.max_seconds:
            problems.append("stopped after %d rounds: --max-seconds %d reached" % (r + 1, args.max_seconds))
            break
    report, violations = finish(fleet, log, bound, "interop.mixed_fleet seed %d" % args.seed)
    for p in problems:
        print("  PROBLEM " + p)
    print("took %.1f s; event log %s" % (time.monotonic() - started, args.log))
    for d in ("leasehold->client-go", "client-go->leasehold"):
        if not report["handovers"].get(d):
            problems.append("no %s handover happened: interop not exercised in this run (seed %d)" % (d, args.seed))
    ok = not violations and not problems and report["rounds"] >= args.rounds
    if report["rounds"] < args.rounds:
        print("FAIL: only %d of %d rounds ran" % (report["rounds"], args.rounds))
    return 0 if ok else 1


def mode_sigkill(args):
    rng = random.Random(args.seed)
    t = args.timings
    log = EventLog(args.log)
    fleet = Fleet(args, unique_lease("sigkill"), t, log)
    impls = {"a": "leasehold", "b": "leasehold"}
    for base, impl in impls.items():
        fleet.spawn(base, impl)
    bound = t.bound_ns(args.slack_ms)
    # The victim renewed at most one renew interval (= retry_period) before
    # the kill, and the follower saw that renewal no earlier than it was sent.
    earliest_ns = int((t.lease_ms - t.retry_ms - args.slack_ms / 5) * 1e6)
    problems = []
    print("sigkill take-over on %s/%s, 2 leasehold candidates, timings %s, %d rounds" %
          (NS, fleet.lease, t, args.rounds), flush=True)
    for r in range(args.rounds):
        leader = log.wait(lambda evs: settled(fleet, evs), 20)
        if not leader:
            problems.append("round %d: no settled leader within 20 s" % (r + 1))
            break
        base = [b for b, c in fleet.running.items() if c.proc == leader][0]
        victim = fleet.running[base]
        time.sleep(rng.uniform(0, 2 * t.retry_ms / 1e3))  # kill at a random phase of the renewals
        ev = victim.signal(signal.SIGKILL)
        log.harness("fault", victim.proc, kind="sigkill-leader", at=ev["mono_ns"], impl=victim.impl)
        victim.wait_exit(10)
        got = log.wait(lambda evs: current_leader(evs) not in (None, leader) and current_leader(evs),
                       ms(bound) / 1e3 + 5)
        if not got:
            problems.append("round %d: no take-over within %.1f s of the SIGKILL" % (r + 1, ms(bound) / 1e3 + 5))
            break
        start = [e for e in log.snapshot() if e["event"] == "started" and e["proc"] == got][-1]["mono_ns"]
        after = start - ev["mono_ns"]
        print("round %d: SIGKILL of %s -> %s leads after %.1f ms (lease %d ms; allowed [%.0f, %.0f] ms)" %
              (r + 1, leader, got, ms(after), t.lease_ms, ms(earliest_ns), ms(bound)), flush=True)
        if after < earliest_ns:
            problems.append("round %d: %s took over %.1f ms after the kill, before the lease could expire" %
                            (r + 1, got, ms(after)))
        fleet.spawn(base, impls[base])
    report, violations = finish(fleet, log, bound, "kube.sigkill_takeover")
    for p in problems:
        print("  PROBLEM " + p)
    return 0 if not violations and not problems and report["rounds"] == args.rounds else 1


def mode_cold_start(args):
    """Two leasehold candidates start at once on a fresh Lease; the winner is
    SIGKILLed before its first renewal. The loser must take over within the
    bound (the cold-start bug in the module docstring took 2 x lease)."""
    rng = random.Random(args.seed)
    t = args.timings
    bound = t.bound_ns(args.slack_ms)
    late = []
    for r in range(args.rounds):
        log = EventLog(args.log + ".%d" % (r + 1))
        fleet = Fleet(args, unique_lease("cold"), t, log)
        for base in ("a", "b"):
            fleet.spawn(base, "leasehold")
        leader = log.wait(lambda evs: current_leader(evs), 20)
        if not leader:
            late.append("round %d: nobody led within 20 s" % (r + 1))
            fleet.stop_all()
            continue
        time.sleep(rng.uniform(0.05, 0.8 * t.retry_ms / 1e3))  # before the first renewal
        victim = [c for c in fleet.running.values() if c.proc == leader][0]
        ev = victim.signal(signal.SIGKILL)
        got = log.wait(lambda evs: current_leader(evs) not in (None, leader) and current_leader(evs),
                       2 * t.lease_ms / 1e3 + 5)
        after = None
        seen_after = 0  # how long after the kill the loser first reported the winner's record
        if got:
            evs = log.snapshot()
            start = [e for e in evs if e["event"] == "started" and e["proc"] == got][-1]["mono_ns"]
            after = start - ev["mono_ns"]
            # Expiry counts from the loser's first sighting of the record (its
            # own clock, never the winner's timestamps): a loser that started
            # slowly (a loaded machine) sees it late and may take over only
            # a lease after that. The bound counts from the later of the kill
            # and that sighting (its new_leader line, printed a little after
            # the sighting itself).
            seen = [e["mono_ns"] for e in evs if e["event"] == "new_leader" and e["proc"] == got
                    and e.get("leader") == leader]
            if seen:
                seen_after = max(0, min(seen) - ev["mono_ns"])
        print("round %d: SIGKILL of %s -> %s after %s ms (bound %.0f ms%s)" %
              (r + 1, leader, got, "%.1f" % ms(after) if after is not None else "never", ms(bound),
               ", from its first sighting %.1f ms after the kill" % ms(seen_after) if seen_after else ""),
              flush=True)
        if after is None or after - seen_after > bound:
            late.append("round %d: take-over %s ms after the kill, %s ms after the loser saw the record" %
                        (r + 1, "%.1f" % ms(after) if after is not None else "never",
                         "%.1f" % ms(after - seen_after) if after is not None else "-"))
        fleet.stop_all()
        log.close()
    for l in late:
        print("  LATE " + l)
    print("cold start: %d of %d rounds late" % (len(late), args.rounds))
    return 0 if not late else 1


def read_pids(args):
    with open(os.path.join(args.dir, "pids")) as f:
        return {p["name"]: p for p in json.load(f)}


def mode_etcd(args):
    t = args.timings
    log = EventLog(args.log)
    fleet = Fleet(args, unique_lease("etcd"), t, log)
    impls = {"lh-1": "leasehold", "lh-2": "leasehold", "go-1": "client-go"}
    # client-go with ReleaseOnCancel cancels its work context only after its
    # release attempt returns (Run's cancel is deferred past renew, which
    # calls release, whose Get and Update wait up to RenewDeadline more). With
    # etcd frozen, its work then runs up to RetryPeriod + 2 x RenewDeadline
    # after its last renewal, past LeaseDuration: it overlaps whoever takes
    # over, client-go or leasehold (7.5 ms in a CI run). That is client-go's
    # own behaviour, not the wire contract this test checks, and this mode
    # sends no SIGTERM before its end, so the peer runs without it.
    fleet.extra_flags["go-1"] = ["--release-on-cancel=false"]
    for base, impl in impls.items():
        fleet.spawn(base, impl)
    bound = t.bound_ns(args.slack_ms)
    problems = []
    print("etcd faults under a fleet of 2 leasehold + 1 client-go on %s/%s, timings %s" % (NS, fleet.lease, t),
          flush=True)
    testenv = os.path.join(args.bin, "testenv")
    faults = [("etcd-restart", None), ("etcd-pause", (t.lease_ms + 1000) / 1e3)]
    for kind, pause_s in faults:
        leader = log.wait(lambda evs: settled(fleet, evs), 30)
        if not leader:
            problems.append("%s: no settled leader within 30 s before the fault" % kind)
            break
        t0 = mono_ns()
        if pause_s is None:
            rc = subprocess.call([testenv, "restart", "--dir", args.dir, "etcd"], stdout=subprocess.DEVNULL)
            if rc != 0:
                problems.append("testenv restart etcd failed (exit %d)" % rc)
                break
        else:
            pgid = read_pids(args)["etcd"]["pgid"]
            os.killpg(pgid, signal.SIGSTOP)
            time.sleep(pause_s)  # real time: etcd frozen for longer than the lease
            os.killpg(pgid, signal.SIGCONT)
        # The fault "ends" once the control plane answers again; the round
        # starts there (the leader may have been lost while it was down).
        back = wait_ready(args, 60)
        if back is None:
            problems.append("%s: kube-apiserver not ready within 60 s" % kind)
            break
        log.harness("fault", "", kind=kind, at=back, began=t0, down_ms=ms(back - t0))
        print("%s: control plane back after %.0f ms (leader before: %s)" % (kind, ms(back - t0), leader), flush=True)
        # Both faults outlast the renew deadline: the leader after them is a
        # new term (a leader that has not logged its end yet is not it).
        got = log.wait(lambda evs: leader_since(evs, t0), ms(bound) / 1e3 + 10)
        if not got:
            problems.append("%s: no new term after the control plane came back" % kind)
        print("%s: leader %s" % (kind, got), flush=True)
        # Candidates that lost (client-go and the candidate end after a loss) come back.
        restart_exited(fleet, impls)
    # A release still hands over through the fleet after both faults.
    report, violations = finish(fleet, log, bound, "kube.etcd_restart")
    for p in problems:
        print("  PROBLEM " + p)
    return 0 if not violations and not problems else 1


def wait_ready(args, timeout_s):
    """mono_ns when /readyz of kube-apiserver answers 200 again (admin token)."""
    import ssl
    import urllib.request
    server, token = kube_admin(args)
    ctx = ssl.create_default_context(cafile=os.path.join(args.dir, "pki", "ca.crt"))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(server + "/readyz", headers={"Authorization": "Bearer " + token})
            with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
                if r.status == 200:
                    return mono_ns()
        except Exception:  # not ready yet: connection refused, 500, timeout
            pass
        time.sleep(0.1)
    return None


def kube_admin(args):
    """(server, admin token) from DIR/kubeconfig-admin (the token stays in memory)."""
    server = token = None
    with open(os.path.join(args.dir, "kubeconfig-admin")) as f:
        for line in f:
            s = line.strip()
            if s.startswith("server:"):
                server = s.split(":", 1)[1].strip()
            elif s.startswith("token:"):
                token = s.split(":", 1)[1].strip()
    return server, token


def token_of(args, user):
    with open(os.path.join(args.dir, "kubeconfig-" + user)) as f:
        for line in f:
            if line.strip().startswith("token:"):
                return line.split(":", 1)[1].strip()
    return None


def mode_forbidden(args):
    t = Timings(3000, 2000, 500)
    watch_s = 6.0
    log = EventLog(args.log)
    lease = unique_lease("forbidden")
    argv = [args.candidate, "--kubeconfig", os.path.join(args.dir, "kubeconfig-nobody"), "--namespace", NS,
            "--name", lease, "--identity", "nobody-1"] + t.flags()
    c = Candidate(log, "leasehold", "nobody-1", argv, stderr_path="pipe")
    t0 = mono_ns()
    time.sleep(watch_s)  # real time: let it retry
    still_running = c.alive()
    c.signal(signal.SIGTERM)
    exited = c.wait_exit(10)
    if not exited:
        c.kill_now()
    c.err_reader.join(5)
    log.close()
    lines = c.stderr_lines
    problems = []
    # Each refused attempt (the first GET, then CREATE while no Lease is
    # visible) names its verb, the resource with its API group, and the namespace.
    attempts = []
    for ts, l in lines:
        for verb in ("get", "create", "update"):
            if "%s failed: Forbidden" % verb in l:
                attempts.append((ts, l))
                want = ['grant verb "%s"' % verb, 'resource "leases"', 'API group "coordination.k8s.io"',
                        'namespace "%s"' % NS, 'User "nobody"']
                missing = [w for w in want if w not in l]
                if missing:
                    problems.append("a refused %s does not say %s: %s" % (verb, missing, l))
    watches = [(ts, l) for ts, l in lines if "watch:" in l and 'Forbidden' in l and 'grant verb "watch"' in l]
    print("stderr of the candidate as user nobody (%.0f s, retry_period %d ms):" % (watch_s, t.retry_ms))
    for ts, l in lines[:4]:
        print("  +%7.1f ms  %s" % (ms(ts - t0), l[:400]))
    if len(lines) > 4:
        print("  ... %d lines in all" % len(lines))
    print("attempts refused (get/create): %d; watch attempts refused: %d" % (len(attempts), len(watches)))
    if not still_running:
        problems.append("the candidate exited on a Forbidden error instead of retrying")
    if not exited or c.p.returncode != 0:
        problems.append("no clean exit on SIGTERM (rc %s)" % c.p.returncode)
    if len(attempts) < 4:
        problems.append("expected >= 4 refused attempts in %.0f s, got %d" % (watch_s, len(attempts)))
    gaps = [ms(b[0] - a[0]) for a, b in zip(attempts, attempts[1:])]
    print("gaps between attempts (ms): %s (retry_period %d ms, jittered up to x2.2; a watch failure adds one)" %
          ([round(g) for g in gaps], t.retry_ms))
    # No tight loop: one attempt per retry period at most, plus the first GET
    # and one extra attempt each time the watch fails (a follower whose watch
    # is down polls at once).
    limit = int(watch_s * 1000 / t.retry_ms) + 1 + len(watches)
    if len(attempts) > limit:
        problems.append("%d attempts in %.0f s: more than %d, not backing off" % (len(attempts), watch_s, limit))
    if gaps and max(gaps) > 2.2 * t.retry_ms + 300:
        problems.append("a gap of %.0f ms between attempts: longer than 2.2 x retry_period" % max(gaps))
    wgaps = [ms(b[0] - a[0]) for a, b in zip(watches, watches[1:])]
    print("gaps between watch attempts (ms): %s (exponential backoff)" % [round(g) for g in wgaps])
    if len(watches) > 12:
        problems.append("the watch was retried %d times in %.0f s: no backoff" % (len(watches), watch_s))
    if any(b < a * 0.9 for a, b in zip(wgaps, wgaps[1:])):
        problems.append("watch retry gaps do not grow: %s" % wgaps)
    tok = token_of(args, "nobody")
    if tok and any(tok in l for _, l in lines):
        problems.append("the bearer token appears in the output")
    for p in problems:
        print("  PROBLEM " + p)
    print("kube.forbidden_retry: %s" % ("ok" if not problems else "FAILED"))
    return 0 if not problems else 1


def mode_check(args):
    with open(args.file) as f:
        events = [json.loads(l) for l in f if l.strip()]
    report, violations = check(events, args.timings.bound_ns(args.slack_ms))
    print_report(report, violations)
    return 0 if not violations else 1


def mode_selftest(args):
    """The checker must flag each broken log and pass the good one."""
    S = 1_000_000_000

    def ev(t, event, proc, **kw):
        return dict(event=event, proc=proc, mono_ns=int(t * S), **kw)

    bound = Timings(2000, 1500, 300).bound_ns(500)  # 3.1 s
    good = [ev(0, "started", "a.1"), ev(1, "fault", "a.1", kind="sigkill-leader"), ev(1, "killed", "a.1"),
            ev(2.9, "started", "b.1"), ev(4, "fault", "b.1", kind="sigterm-leader"), ev(4.01, "stopped", "b.1"),
            ev(4.02, "started", "c.1"), ev(5, "fault", "x.1", kind="sigkill-follower"), ev(5, "killed", "x.1")]
    cases = {
        "good": (good, 0),
        "overlap: a SIGKILLed leader's successor too early": (
            [ev(0, "started", "a.1"), ev(1, "fault", "a.1", kind="sigkill-leader"), ev(1.2, "started", "b.1"),
             ev(1.3, "killed", "a.1")], 1),
        "overlap: stopped after the other started": (
            [ev(0, "started", "a.1"), ev(1, "fault", "a.1", kind="sigterm-leader"), ev(1.01, "started", "b.1"),
             ev(1.02, "stopped", "a.1")], 1),
        "late leader": (
            [ev(0, "started", "a.1"), ev(1, "fault", "a.1", kind="sigkill-leader"), ev(1, "killed", "a.1"),
             ev(4.2, "started", "b.1")], 1),
        "no leader after a round": (
            [ev(0, "started", "a.1"), ev(1, "fault", "a.1", kind="sigkill-leader"), ev(1, "killed", "a.1"),
             ev(2, "fault", "b.1", kind="sigkill-follower")], 2),
        "stopped without started": ([ev(0, "stopped", "a.1")], 1),
        "exit while leading without stopped": ([ev(0, "started", "a.1"), ev(1, "exit", "a.1", rc=0)], 1),
    }
    failed = 0
    for name, (events, want) in cases.items():
        report, violations = check(events, bound, end_ns=int(10 * S))
        ok = (len(violations) == want) if want == 0 else (len(violations) >= 1)
        print("%-55s violations=%d %s" % (name, len(violations), "ok" if ok else "WRONG (want %d)" % want))
        for v in violations:
            print("    " + v)
        failed += not ok
    print("checker selftest: %s" % ("ok" if not failed else "%d cases wrong" % failed))
    return 0 if not failed else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", help="testenv state dir (kubeconfigs, pids)")
    ap.add_argument("--bin", help="testenv bin dir (peer, testenv)")
    ap.add_argument("--candidate", help="path of leasehold_candidate")
    ap.add_argument("--seed", type=int, default=None, help="fault schedule seed (default: random, printed)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--timings", type=Timings.parse, default=None,
                    help="LEASE/RENEW/RETRY for every candidate, e.g. 2s/1.5s/300ms")
    ap.add_argument("--pause-ms", type=int, default=0,
                    help="mixed: also SIGSTOP the leader this long (longer than the lease: the checker must fail)")
    ap.add_argument("--slack-ms", type=float, default=500, help="added to the liveness bound (default 500)")
    ap.add_argument("--max-seconds", type=int, default=200, help="mixed: stop rounds after this long")
    ap.add_argument("--log", help="event log path (JSON lines)")
    ap.add_argument("mode", choices=["mixed", "sigkill-takeover", "etcd-restart", "forbidden-retry", "cold-start",
                                     "check", "selftest"])
    ap.add_argument("file", nargs="?", help="check: the event log")
    args = ap.parse_intermixed_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    defaults = {"mixed": ("2s/1500ms/300ms", 50), "sigkill-takeover": ("3s/2s/500ms", 3),
                "etcd-restart": ("3s/2s/500ms", 2), "cold-start": ("3s/2s/500ms", 10),
                "check": ("2s/1500ms/300ms", 0)}
    tdef, rdef = defaults.get(args.mode, ("2s/1500ms/300ms", 0))
    args.timings = args.timings or Timings.parse(tdef)
    args.rounds = args.rounds if args.rounds is not None else rdef
    if args.mode == "selftest":
        return mode_selftest(args)
    if args.mode == "check":
        if not args.file:
            ap.error("check needs FILE")
        return mode_check(args)
    for need in ("dir", "bin", "candidate"):
        if not getattr(args, need):
            ap.error("--%s is required for %s" % (need, args.mode))
    if not os.path.exists(os.path.join(args.dir, "kubeconfig-elector")):
        print("fleet: %s has no kubeconfig-elector: is the control plane up (testenv up --dir)?" % args.dir)
        return 1
    args.log = args.log or os.path.join(args.dir, "fleet-%s.jsonl" % args.mode)
    print("fleet %s: seed %d (replay with --seed %d)" % (args.mode, args.seed, args.seed), flush=True)
    return {"mixed": mode_mixed, "sigkill-takeover": mode_sigkill, "etcd-restart": mode_etcd,
            "forbidden-retry": mode_forbidden, "cold-start": mode_cold_start}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
