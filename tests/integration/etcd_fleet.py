#!/usr/bin/env python3
"""Fleets of etcd:// candidates on a real etcd (testenv/cmd/etcdcluster).

Candidates are processes: leasehold_candidate --lock etcd://... and the Go
reference candidate testenv/etcdpeer (concurrency.Election). Both print the
JSON lines of fleet.py (started, stopped, new_leader, exited) stamped with
CLOCK_MONOTONIC; fleet.py's checker orders them.

Modes (exit 0 on success, 1 with the violations listed):
  mixed      2 leasehold + 2 Go candidates in one election, --rounds rounds of
             random faults: SIGKILL or SIGTERM of the leader or of a follower,
             SIGSTOP of the leader for a third of the renew deadline (it keeps
             leading), and SIGSTOP of a leasehold leader for TTL + 1 s (the
             others take over while it is frozen). The victim is restarted as
             a new incarnation. Checks: no two candidates lead at once, where
             a leasehold term ends at the latest at its deadline (the
             started event's deadline_mono_ns, moved by each "renewed"
             event's sent_mono_ns + renew_deadline: what the library
             guarantees to a frozen process); fencing tokens (the leader
             key's create_revision) strictly increase from term to term; each
             round ends with a leader within TTL + 2 x retry + --slack of the
             fault; both directions of hand-over (leasehold <-> Go) happen.
             A Go leader is never frozen past the TTL: concurrency.Election
             has no deadline of its own, so a frozen Go leader resumes
             believing it leads until its next keepalive fails (the gap
             leasehold's deadline closes; docs/etcd.md).
  torture    3 members, each candidate behind faultproxies of its own: the
             leader SIGKILLed, SIGTERMed or frozen past the TTL (leasehold
             only), a member SIGKILLed and restarted, the leader cut off from
             every member for TTL/3 or (leasehold only) TTL + 1 s; the same
             checks (make torture-etcd; ctest torture.etcd_short).
  selftest   the deadline and token checks on hand-made logs that must fail,
             and one that must pass.
"""
import argparse
import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import (EventLog, Fleet, Timings, check, print_report, current_leader, settled,  # noqa: E402
                   restart_exited, mono_ns, ms)


class EtcdCluster:
    """etcdcluster up/down in a directory of its own."""

    def __init__(self, bin_dir, members=1, extra=()):
        self.bin = bin_dir
        self.dir = tempfile.mkdtemp(prefix="leasehold-etcd-fleet-")
        argv = [os.path.join(bin_dir, "etcdcluster"), "up", "--dir", self.dir, "--bin", bin_dir,
                "--members", str(members)] + list(extra)
        with open(os.path.join(self.dir, "etcdcluster.log"), "ab") as out:
            rc = subprocess.call(argv, stdout=out, stderr=out)
        if rc != 0:
            with open(os.path.join(self.dir, "etcdcluster.log")) as f:
                tail = f.read()[-2000:]
            self.down()
            raise RuntimeError("etcdcluster up failed (exit %d):\n%s" % (rc, tail))
        with open(os.path.join(self.dir, "cluster.json")) as f:
            self.info = json.load(f)

    def endpoints(self):
        return self.info["endpoints"]

    def member_of(self, endpoint):
        for i, m in enumerate(self.info["members"]):
            if m["client_url"] == endpoint:
                return i
        return -1

    def count_keys(self, prefix):
        """How many candidate keys election PREFIX has (a count-only range on the first endpoint)."""
        key = (prefix + "/").encode()
        end = key[:-1] + bytes([key[-1] + 1])
        body = {"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(end).decode(),
                "count_only": True}
        return int(self.gateway("/v3/kv/range", body).get("count", "0"))

    def gateway(self, path, body):
        """POSTs BODY (a dict) to the first endpoint's gateway; the answer as a dict."""
        req = urllib.request.Request(self.endpoints()[0] + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)

    def put(self, key, value):
        """Puts KEY=VALUE; the store's revision after it."""
        b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        return int(self.gateway("/v3/kv/put", {"key": b64(key), "value": b64(value)})["header"]["revision"])

    def compact(self, revision):
        """Compacts the store at REVISION (physical: done when it answers)."""
        self.gateway("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    def lock_url(self, prefix):
        hosts = ",".join(e.split("://", 1)[1] for e in self.endpoints())
        return ("etcds://" if self.info.get("tls") else "etcd://") + hosts + prefix

    def down(self):
        subprocess.call([os.path.join(self.bin, "etcdcluster"), "down", "--dir", self.dir],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.environ.get("LEASEHOLD_KEEP_ETCD_DIR"):
            print("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class EtcdFleet(Fleet):
    """Candidates of one election; each start is a new incarnation BASE.N."""

    def __init__(self, args, cluster, prefix, timings, log):
        super().__init__(args, prefix, timings, log)
        self.cluster, self.prefix = cluster, prefix

    def endpoints_for(self, base):
        """The cluster's endpoints, or (torture) this candidate's proxies to them."""
        return self.cluster.endpoints()

    def argv(self, base, impl, proc, t):
        eps = self.endpoints_for(base)
        if impl == "leasehold":
            url = ("etcds://" if self.cluster.info.get("tls") else "etcd://") + \
                ",".join(e.split("://", 1)[1] for e in eps) + self.prefix
            return [self.args.candidate, "--lock", url, "--identity", proc, "--print-renewals"] + t.flags()
        return [os.path.join(self.args.bin, "etcdpeer"), "--endpoints", ",".join(eps),
                "--prefix", self.prefix, "--id", proc, "--ttl", "%d" % (t.lease_ms // 1000)]

    def stderr_dir(self):
        return self.cluster.dir


def wait_renewed(log, victim, after_ns, t):
    """After a short pause of the leader (no fault for the checker): waits
    until a leasehold victim renewed after AFTER_NS, or ended its term at its
    deadline, so the next round meets a leader with its whole margin or
    none. Back to back, two short pauses add up past the renew deadline: the
    leader then ends its term, rightly, and a next round started before that
    shows (1 ms later in a stress run) left the checker a round with no new
    leader. A Go leader has no deadline and reports no renewals."""
    if victim.impl != "leasehold":
        return
    log.wait(lambda evs: any(e.get("proc") == victim.proc and e["event"] in ("renewed", "stopped") and
                             e["mono_ns"] > after_ns for e in evs), t.renew_ms / 1e3 + 1)


class Proxy:
    """testenv/cmd/faultproxy in front of one member (commands on stdin)."""

    def __init__(self, bin_dir, target):
        self.p = subprocess.Popen([os.path.join(bin_dir, "faultproxy"), "--target", target], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.address = json.loads(self.p.stdout.readline())["listening"]

    def command(self, cmd):
        self.p.stdin.write(cmd + "\n")
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


class TortureFleet(EtcdFleet):
    """Each candidate reaches every member through proxies of its own, so
    one candidate can be cut off from the whole cluster."""

    def __init__(self, *a):
        super().__init__(*a)
        self.proxies = {}  # base -> [Proxy per member]

    def endpoints_for(self, base):
        if base not in self.proxies:
            self.proxies[base] = [Proxy(self.args.bin, e.split("://", 1)[1]) for e in self.cluster.endpoints()]
        return ["http://" + p.address for p in self.proxies[base]]

    def cut(self, base, cmd):
        for p in self.proxies.get(base, []):
            p.command(cmd)

    def close(self):
        for ps in self.proxies.values():
            for p in ps:
                p.close()


def mode_torture(args):
    """mixed's faults on 3 members, plus: a member SIGKILLed and restarted
    1-4 s later, and the leader cut off from every member (faultproxy
    partition) for TTL/3 (it keeps leading) or, leasehold leaders only, for
    TTL + 1 s (the others take over; it stops at its deadline)."""
    rng = random.Random(args.seed)
    t = args.timings
    cluster = EtcdCluster(args.bin, 3)
    log = EventLog(args.log)
    prefix = "/leasehold/torture-%d" % os.getpid()
    fleet = TortureFleet(args, cluster, prefix, t, log)
    impls = {"lh-1": "leasehold", "lh-2": "leasehold", "go-1": "etcd-go", "go-2": "etcd-go"}
    etcdcluster = os.path.join(args.bin, "etcdcluster")
    print("etcd torture on 3 members, %s: 2 leasehold + 2 concurrency.Election through proxies, timings %s, "
          "%d rounds, seed %d" % (prefix, t, args.rounds, args.seed), flush=True)
    problems = []
    started = time.monotonic()
    try:
        for base, impl in impls.items():
            fleet.spawn(base, impl)
        bound = t.bound_ns(args.slack_ms)
        kinds = ["sigkill-leader", "sigterm-leader", "member-restart", "partition-short-leader",
                 "partition-long-leader", "sigstop-long-leader"]
        weights = [3, 2, 3, 2, 3, 1]
        for r in range(args.rounds):
            leader = log.wait(lambda evs: settled(fleet, evs), 30)
            if not leader:
                problems.append("round %d: the fleet did not settle within 30 s (leader %s)" %
                                (r + 1, current_leader(log.snapshot())))
                break
            kind = rng.choices(kinds, weights)[0]
            base = {c.proc: b for b, c in fleet.running.items()}[leader]
            victim = fleet.running[base]
            if kind in ("partition-long-leader", "sigstop-long-leader") and victim.impl != "leasehold":
                kind = "partition-short-leader"  # Go has no deadline of its own (see mixed)
            if kind == "member-restart":
                m = rng.randrange(3)
                t0 = mono_ns()
                subprocess.check_call([etcdcluster, "kill", "--dir", cluster.dir, "--member", str(m)],
                                      stdout=subprocess.DEVNULL)
                # A killed raft leader: an election (etcd's timeout, 1 s), then
                # every lease gets its TTL again plus that timeout (lessor
                # Promote), so a leader lost meanwhile is replaced that much later.
                log.harness("fault", "", kind=kind, at=t0, member=m, bound_extra_ms=t.lease_ms + 2000)
                time.sleep(rng.uniform(1, 4))
                subprocess.check_call([etcdcluster, "restart", "--dir", cluster.dir, "--member", str(m)],
                                      stdout=subprocess.DEVNULL)
            elif kind.startswith("partition"):
                pause_ms = t.lease_ms / 3 if kind == "partition-short-leader" else t.lease_ms + 1000
                t0 = mono_ns()
                fleet.cut(base, "partition")
                log.harness("fault", victim.proc if kind == "partition-long-leader" else "", kind=kind, at=t0,
                            pause_ms=pause_ms)
                time.sleep(pause_ms / 1e3)
                healed = mono_ns()
                fleet.cut(base, "heal")
                if kind == "partition-short-leader":
                    wait_renewed(log, victim, healed, t)
            elif kind == "sigstop-long-leader":
                ev = victim.signal(signal.SIGSTOP)
                log.harness("fault", victim.proc, kind=kind, at=ev["mono_ns"])
                time.sleep((t.lease_ms + 1000) / 1e3)
                victim.signal(signal.SIGCONT)
            else:
                sig = signal.SIGKILL if kind == "sigkill-leader" else signal.SIGTERM
                began = mono_ns()
                ev = victim.signal(sig)
                log.harness("fault", victim.proc, kind=kind, at=ev["mono_ns"], began=began)
                victim.wait_exit(10)
            if kind.endswith("long-leader") or kind in ("sigkill-leader", "sigterm-leader"):
                got = log.wait(lambda evs: current_leader(evs) not in (None, leader) and current_leader(evs),
                               ms(bound) / 1e3 + 5)
                if not got:
                    problems.append("round %d: no new leader after %s of %s" % (r + 1, kind, leader))
            # Candidates that ended (killed, or lost the lease: recampaign is off) come back.
            for b, c in list(fleet.running.items()):
                if not c.alive():
                    c.wait_exit(10)
                    fleet.spawn(b, impls[b])
            print("round %d/%d: %s of %s" % (r + 1, args.rounds, kind, leader), flush=True)
            if time.monotonic() - started > args.max_seconds:
                problems.append("stopped after %d rounds: --max-seconds %d reached" % (r + 1, args.max_seconds))
                break
        # The last round gets what every other round gets from the next
        # one's settle wait: time for a leader it cost its term to be
        # replaced (a stress run saw a last member-restart round end with the
        # fleet stopped before the next leader started).
        log.wait(lambda evs: settled(fleet, evs), ms(bound) / 1e3 + t.lease_ms / 1e3 + 5)
        rounds_end = mono_ns()
        fleet.stop_all()
        end = mono_ns()
    finally:
        fleet.close()
        cluster.down()
    events = log.snapshot()
    log.close()
    report, violations = full_check(events, t, bound, end, rounds_end)
    print("== torture.etcd seed %d ==" % args.seed)
    print_report(report, violations)
    print("leasehold terms ended at their deadline (frozen or cut off past it): %d" % report["capped_terms"])
    for p in problems:
        print("  PROBLEM " + p)
    print("took %.1f s; event log %s" % (time.monotonic() - started, args.log))
    return 0 if not violations and not problems and report["rounds"] >= args.rounds else 1


def cap_at_deadlines(events, renew_ms):
    """The events with each leasehold term ending no later than its deadline:
    a stop, kill or exit that comes after the deadline is moved to it
    (marked capped). Deadlines come from started (deadline_mono_ns) and
    renewed (sent_mono_ns + renew_deadline) events of the same term."""
    out = []
    deadline = {}  # proc -> deadline of its open term (leasehold only)
    for ev in sorted(events, key=lambda e: e["mono_ns"]):
        proc = ev.get("proc", "")
        kind = ev["event"]
        if kind == "started" and "deadline_mono_ns" in ev:
            deadline[proc] = ev["deadline_mono_ns"]
        elif kind == "renewed" and proc in deadline:
            # A renewal observed after the deadline passed comes too late to extend the term.
            if ev["sent_mono_ns"] < deadline[proc]:
                deadline[proc] = max(deadline[proc], ev["sent_mono_ns"] + int(renew_ms * 1e6))
        elif kind in ("stopped", "killed", "exit") and proc in deadline:
            d = deadline.pop(proc)
            if ev["mono_ns"] > d:
                ev = dict(ev, mono_ns=d, capped_from=ev["mono_ns"])
        out.append(ev)
    return out


def token_violations(events):
    """Fencing tokens (transitions of started events, in start order) must strictly increase."""
    starts = sorted((e for e in events if e["event"] == "started"), key=lambda e: e["mono_ns"])
    bad = []
    for a, b in zip(starts, starts[1:]):
        if b["transitions"] <= a["transitions"]:
            bad.append("fencing token did not increase: %s started with %d after %s with %d" %
                       (b["proc"], b["transitions"], a["proc"], a["transitions"]))
    return bad


def full_check(events, timings, bound_ns, end_ns=None, rounds_end_ns=None):
    capped = cap_at_deadlines(events, timings.renew_ms)
    report, violations = check(capped, bound_ns, end_ns, rounds_end_ns)
    violations += token_violations(capped)
    report["violations"] = len(violations)
    report["capped_terms"] = sum(1 for e in capped if "capped_from" in e)
    return report, violations


def mode_mixed(args):
    rng = random.Random(args.seed)
    t = args.timings
    cluster = EtcdCluster(args.bin, args.members)
    try:
        return run_mixed(args, rng, t, cluster)
    finally:
        cluster.down()


def run_mixed(args, rng, t, cluster):
    log = EventLog(args.log)
    prefix = "/leasehold/fleet-%d-%d" % (os.getpid(), mono_ns() % 1000000)
    fleet = EtcdFleet(args, cluster, prefix, t, log)
    impls = {"lh-1": "leasehold", "lh-2": "leasehold", "go-1": "etcd-go", "go-2": "etcd-go"}
    print("etcd mixed fleet on %s%s: 2 leasehold + 2 concurrency.Election, timings %s (Go: --ttl %d), %d rounds, "
          "seed %d" % (cluster.lock_url(""), prefix, t, t.lease_ms // 1000, args.rounds, args.seed), flush=True)
    for base, impl in impls.items():
        fleet.spawn(base, impl)
    bound = t.bound_ns(args.slack_ms)
    kinds = ["sigkill-leader", "sigterm-leader", "sigkill-follower", "sigterm-follower", "sigstop-short-leader",
             "sigstop-long-leader"]
    weights = [4, 3, 1, 1, 2, 3]
    started = time.monotonic()
    problems = []
    pending = None
    r = -1
    while True:
        r += 1
        if r >= args.rounds:
            h = full_check(log.snapshot(), t, bound)[0]["handovers"]
            if (h.get("leasehold->etcd-go") and h.get("etcd-go->leasehold")) or r >= args.rounds + 30:
                break
        leader = log.wait(lambda evs: settled(fleet, evs), 20)
        if not leader:
            problems.append("round %d: the fleet did not settle within 20 s (leader %s)" %
                            (r + 1, current_leader(log.snapshot())))
            break
        kind = rng.choices(kinds, weights)[0]
        base_of = {c.proc: b for b, c in fleet.running.items()}
        victim_base = base_of[leader] if kind.endswith("leader") else \
            rng.choice(sorted(b for b, c in fleet.running.items() if c.proc != leader))
        victim = fleet.running[victim_base]
        if kind == "sigstop-long-leader" and victim.impl != "leasehold":
            kind = "sigstop-short-leader"  # see the docstring: Go has no deadline of its own
        if kind.startswith("sigstop"):
            pause_ms = t.renew_ms / 3 if kind == "sigstop-short-leader" else t.lease_ms + 1000
            ev = victim.signal(signal.SIGSTOP)
            # A short pause is no fault for the checker: the leader goes on.
            log.harness("fault", victim.proc if kind == "sigstop-long-leader" else "", kind=kind,
                        at=ev["mono_ns"], impl=victim.impl, pause_ms=pause_ms)
            time.sleep(pause_ms / 1e3)
            cont = victim.signal(signal.SIGCONT)
            if kind == "sigstop-short-leader":
                wait_renewed(log, victim, cont["mono_ns"], t)
            if kind == "sigstop-long-leader":
                got = log.wait(lambda evs: current_leader(evs) not in (None, leader) and current_leader(evs),
                               ms(bound) / 1e3 + 5)
                if not got:
                    problems.append("round %d: no leader after %s" % (r + 1, kind))
                victim.wait_exit(10)  # it ends its term at its deadline and exits (recampaign off)
            restart_exited(fleet, impls)
            continue
        sig = signal.SIGKILL if kind.startswith("sigkill") else signal.SIGTERM
        began = mono_ns()  # the round before ends here: a SIGKILL is stamped only after kill() returned
        ev = victim.signal(sig)
        log.harness("fault", victim.proc, kind=kind, at=ev["mono_ns"], began=began, impl=victim.impl)
        if not victim.wait_exit(10):
            problems.append("round %d: %s did not exit within 10 s of %s" % (r + 1, victim.proc, sig.name))
            victim.kill_now()
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
    rounds_end = mono_ns()
    fleet.stop_all()
    end = mono_ns()
    events = log.snapshot()
    log.close()
    report, violations = full_check(events, t, bound, end, rounds_end)
    print("== interop.etcd_fleet seed %d ==" % args.seed)
    print_report(report, violations)
    print("leasehold terms ended at their deadline (frozen past it): %d" % report["capped_terms"])
    for d in ("leasehold->etcd-go", "etcd-go->leasehold"):
        if not report["handovers"].get(d):
            problems.append("no %s handover happened (seed %d)" % (d, args.seed))
    for p in problems:
        print("  PROBLEM " + p)
    print("took %.1f s; event log %s" % (time.monotonic() - started, args.log))
    ok = not violations and not problems and report["rounds"] >= args.rounds
    return 0 if ok else 1


def mode_selftest(args):
    S = 1_000_000_000
    t = Timings.parse("3s/2s/500ms")
    bound = t.bound_ns(500)

    def ev(at, event, proc, **kw):
        return dict(event=event, proc=proc, mono_ns=int(at * S), **kw)

    frozen = [ev(0, "started", "a.1", transitions=5, deadline_mono_ns=int(1.9 * S)),
              ev(1, "renewed", "a.1", transitions=5, sent_mono_ns=int(0.9 * S)),
              ev(1.5, "fault", "a.1", kind="sigstop-long-leader"),
              ev(4.8, "started", "b.1", transitions=7),
              ev(5.6, "stopped", "a.1", transitions=5)]  # after SIGCONT
    cases = {
        "good: a frozen leasehold leader's term ends at its deadline": (frozen, 0),
        "overlap: a renewal moves the deadline past the successor's start": (
            frozen[:2] + [ev(1.4, "renewed", "a.1", transitions=5, sent_mono_ns=int(1.4 * S)),
                          ev(3.0, "renewed", "a.1", transitions=5, sent_mono_ns=int(3.0 * S))] + frozen[2:], 1),
        "good: a renewal sent after the deadline does not extend the term": (
            frozen[:2] + [ev(3.0, "renewed", "a.1", transitions=5, sent_mono_ns=int(3.0 * S))] + frozen[2:], 0),
        "overlap: a leader without deadlines (Go) resumes leading": (
            [ev(0, "started", "g.1", transitions=5), ev(1.5, "fault", "g.1", kind="sigstop-long-leader"),
             ev(4.8, "started", "b.1", transitions=7), ev(5.6, "stopped", "g.1")], 1),
        "good: a SIGKILL stamped after the leader's exit was seen (the round ends at `began`)": (
            [ev(0, "started", "a.1", transitions=2), ev(1, "fault", "x.1", kind="sigkill-follower"),
             ev(1.041, "exit", "a.1", rc=-9), ev(1.047, "killed", "a.1"),
             ev(1.047, "fault", "a.1", kind="sigkill-leader", began=int(1.039 * S)),
             ev(3.9, "started", "b.1", transitions=3)], 0),
        "the same without `began`: round 1 looks leaderless": (
            [ev(0, "started", "a.1", transitions=2), ev(1, "fault", "x.1", kind="sigkill-follower"),
             ev(1.041, "exit", "a.1", rc=-9), ev(1.047, "killed", "a.1"),
             ev(1.047, "fault", "a.1", kind="sigkill-leader"), ev(3.9, "started", "b.1", transitions=3)], 1),
        "token did not increase": (
            [ev(0, "started", "a.1", transitions=9), ev(1, "fault", "a.1", kind="sigterm-leader"),
             ev(1.01, "stopped", "a.1"), ev(1.02, "started", "b.1", transitions=8)], 1),
    }
    failed = 0
    for name, (events, want) in cases.items():
        report, violations = full_check(events, t, bound, end_ns=int(10 * S))
        ok = (len(violations) == 0) if want == 0 else (len(violations) >= 1)
        print("%-65s violations=%d %s" % (name, len(violations), "ok" if ok else "WRONG"))
        for v in violations:
            print("    " + v)
        failed += not ok
    print("etcd checker selftest: %s" % ("ok" if not failed else "%d cases wrong" % failed))
    return 0 if not failed else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", help="testenv bin dir (etcd, etcdcluster, etcdpeer)")
    ap.add_argument("--candidate", help="path of leasehold_candidate")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--members", type=int, default=1, help="etcd members (1 or 3)")
    ap.add_argument("--timings", type=Timings.parse, default=Timings.parse("3s/2s/500ms"),
                    help="LEASE/RENEW/RETRY; the lease is the session TTL (whole seconds)")
    ap.add_argument("--slack-ms", type=float, default=1000)
    ap.add_argument("--max-seconds", type=int, default=600)
    ap.add_argument("--log", help="event log path (JSON lines)")
    ap.add_argument("mode", choices=["mixed", "torture", "selftest"])
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if args.mode == "selftest":
        return mode_selftest(args)
    for need in ("bin", "candidate"):
        if not getattr(args, need):
            ap.error("--%s is required" % need)
    args.log = args.log or os.path.join(tempfile.gettempdir(), "etcd-fleet-%d.jsonl" % os.getpid())
    print("etcd_fleet %s: seed %d (replay with --seed %d)" % (args.mode, args.seed, args.seed), flush=True)
    return mode_torture(args) if args.mode == "torture" else mode_mixed(args)


if __name__ == "__main__":
    sys.exit(main())
