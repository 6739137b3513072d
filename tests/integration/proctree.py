#!/usr/bin/env python3
"""Watching a worker's whole process tree from the outside (issue 13).

Three parts, shared by tests/integration/tree_safety.py:

  worker   `proctree.py worker KIND DIR`: the program `leasehold run` runs.
           Every process of its tree, as its first act, writes one JSON file
           DIR/<pid>.start (written to a temporary name, then renamed, so a
           reader never sees half of it):
             {pid, identity: $LEASEHOLD_IDENTITY, term: $LEASEHOLD_TERM,
              start: CLOCK_MONOTONIC seconds, starttime: /proc/self/stat
              field 22, kind, role}
           That is all a worker says about itself: its END is never reported
           by the worker, it is observed (below). KIND:
             cooperative  exits on SIGTERM
             stubborn     ignores SIGTERM, sleeps forever
             trap         catches SIGTERM and keeps running; run it as
                          sh -c 'python3 proctree.py worker trap DIR; :'
                          so SIGTERM to the group kills sh but not the worker
             fork-exit    forks a grandchild that ignores SIGTERM and runs
                          forever; the parent exits 0 as soon as the
                          grandchild has written its start file
             setsid       forks a grandchild that calls setsid(), ignores
                          SIGTERM and runs forever; the parent stays
                          (cooperative)
  Observer a thread that scans DIR every ~5 ms; for every new pid it opens a
           pidfd (pidfd_open), checks that /proc/<pid>/stat's starttime is the
           one in the start file (a reused pid is not our process), and records
           the CLOCK_MONOTONIC instant the pidfd becomes readable (the process
           exited). A process already gone when first scanned (ESRCH, or its
           pid reused) gets the scan time as its end, a conservative upper
           bound, and the record says so (end_how).
  check    intervals [start, end] of every process, grouped by identity; a
           violation is any pair of processes of DIFFERENT identities whose
           intervals overlap (an unfinished process ends at +inf). Also, per
           hand-over between trees (a tree = the processes of one identity and
           term), the old tree's lifetime and the gap to the new tree's first
           start.

  `proctree.py selftest` feeds the checker synthetic intervals, overlapping
  and not, and asserts it finds exactly the overlaps (so it can fail).

Known limit: `start` is stamped by the process itself once Python runs, some
tens of ms after exec, so an overlap shorter than that startup could be missed;
the hand-over gaps printed show how far each hand-over is from that.
"""
import errno
import json
import math
import os
import select
import signal
import sys
import threading
import time

KINDS = ("cooperative", "stubborn", "trap", "fork-exit", "setsid")


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def stat_starttime(pid):
    """Field 22 of /proc/PID/stat (clock ticks after boot), or None if gone."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[22 - 3])


# ---------------------------------------------------------------- worker side

def put_start(d, pid, rec):
    """DIR/<pid>.start holding `rec`, written to a temporary name and renamed,
    so the observer never reads it half written (an empty file it would set
    aside as bad)."""
    tmp = os.path.join(d, ".%d.tmp" % pid)
    with open(tmp, "w") as f:
        f.write(json.dumps(rec) + "\n")
    os.rename(tmp, os.path.join(d, "%d.start" % pid))


def write_start(d, kind, role):
    rec = {
        "pid": os.getpid(),
        "identity": os.environ.get("LEASEHOLD_IDENTITY", ""),
        "term": os.environ.get("LEASEHOLD_TERM", ""),
        "start": now(),
        "starttime": stat_starttime("self"),
        "kind": kind,
        "role": role,
    }
    put_start(d, os.getpid(), rec)


def sleep_forever():
    while True:
        time.sleep(3600)


def grandchild(d, kind, new_session, ready_w):
    """The forked grandchild: ignores SIGTERM, reports, runs forever."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    write_start(d, kind, "grandchild")
    if new_session:
        os.setsid()
    os.close(ready_w)  # the parent may go on
    sleep_forever()


def fork_grandchild(d, kind, new_session):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            grandchild(d, kind, new_session, w)
        finally:
            os._exit(0)
    os.close(w)
    os.read(r, 1)  # EOF once the grandchild has written its start file
    os.close(r)
    return pid


def worker(kind, d):
    if kind not in KINDS:
        print("proctree: unknown worker kind %r (want one of %s)" % (kind, ", ".join(KINDS)), file=sys.stderr)
        return 2
    if kind == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif kind == "trap":
        signal.signal(signal.SIGTERM, lambda *_: None)
    else:  # cooperative, and the parents of fork-exit and setsid
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    write_start(d, kind, "worker")
    if kind == "fork-exit":
        fork_grandchild(d, kind, new_session=False)
        os._exit(0)
    if kind == "setsid":
        fork_grandchild(d, kind, new_session=True)
    sleep_forever()


# -------------------------------------------------------------- observer side

class Proc:
    """One observed process. end is None while it runs."""

    def __init__(self, rec):
        self.pid = rec["pid"]
        self.identity = rec.get("identity", "")
        self.term = rec.get("term", "")
        self.start = rec["start"]
        self.starttime = rec.get("starttime")
        self.kind = rec.get("kind", "")
        self.role = rec.get("role", "")
        self.end = None
        self.end_how = ""  # pidfd | esrch-at-scan | reused-at-scan
        self.pidfd = None

    def as_dict(self):
        return dict(pid=self.pid, identity=self.identity, term=self.term, start=self.start,
                    end=self.end, end_how=self.end_how, kind=self.kind, role=self.role)

    def label(self):
        return "pid %d (%s, term %s, %s %s)" % (self.pid, self.identity, self.term, self.kind, self.role)


def start_files(d):
    """(file name, pid) of every PID.start file in directory d (none if d is gone)."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".start"):
            continue
        try:
            yield name, int(name[: -len(".start")])
        except ValueError:
            continue


def cond_wait(cond, pred, timeout):
    """With threading.Condition `cond` held: waits (re-checking at least every
    50 ms) until pred() is truthy; returns its value, or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        cond.wait(min(left, 0.05))


class Observer:
    """Scans DIR for start files every `period` s; times every exit by pidfd."""

    def __init__(self, d, period=0.005):
        self.dir, self.period = d, period
        self.mu = threading.Condition()
        self.procs = {}  # pid -> Proc (a pid appears once: start files are never removed)
        self.bad = []  # unreadable start files
        self._stop = threading.Event()
        self._poll = select.poll()
        self._by_fd = {}
        self._thread = threading.Thread(target=self._run, name="proctree-observer", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        for p in self.procs.values():
            if p.pidfd is not None:
                os.close(p.pidfd)
                p.pidfd = None

    def _watch(self, pid, p):
        """Times p's exit by a pidfd; if it is already gone, or the pid is
        someone else's now, ends it at the scan time and says which."""
        try:
            fd = os.pidfd_open(pid)
        except OSError as e:
            if e.errno != errno.ESRCH:
                raise
            p.end, p.end_how = now(), "esrch-at-scan"
            return
        if stat_starttime(pid) != p.starttime:
            # The pid is someone else's now (ours ended before the scan),
            # or ours is gone and its stat with it.
            os.close(fd)
            p.end, p.end_how = now(), "reused-at-scan"
            return
        p.pidfd = fd
        self._by_fd[fd] = p
        self._poll.register(fd, select.POLLIN)

    def _scan(self):
        for name, pid in start_files(self.dir):
            if pid in self.procs:
                continue
            try:
                with open(os.path.join(self.dir, name)) as f:
                    p = Proc(json.loads(f.read()))
            except (OSError, ValueError, KeyError) as e:
                self.bad.append("%s: %s" % (name, e))
                self.procs[pid] = None
                continue
            self._watch(pid, p)
            with self.mu:
                self.procs[pid] = p
                self.mu.notify_all()

    def _run(self):
        while not self._stop.is_set():
            self._scan()
            for fd, _ in self._poll.poll(self.period * 1000):
                t = now()
                p = self._by_fd.pop(fd)
                self._poll.unregister(fd)
                with self.mu:
                    p.end, p.end_how = t, "pidfd"
                    self.mu.notify_all()
        self._scan()

    # ---- queries (any thread)

    def snapshot(self):
        """A copy of every process seen so far, as dicts."""
        with self.mu:
            return [p.as_dict() for p in self.procs.values() if p is not None]

    def wait(self, pred, timeout):
        """Waits until pred(list of dicts) is truthy; returns it or None."""
        with self.mu:
            return cond_wait(self.mu, lambda: pred([p.as_dict() for p in self.procs.values() if p is not None]),
                             timeout)

    def kill_all(self, sig=signal.SIGKILL):
        """Signals every observed process still running, through its pidfd
        (no pid-reuse race). Returns the pids signalled."""
        hit = []
        with self.mu:
            live = [p for p in self.procs.values() if p is not None and p.end is None and p.pidfd is not None]
        for p in live:
            try:
                signal.pidfd_send_signal(p.pidfd, sig)
                hit.append(p.pid)
            except OSError:
                pass
        return hit


# ------------------------------------------------------------------- checker

def _end(p):
    return math.inf if p["end"] is None else p["end"]


def trees(procs):
    """Processes grouped by (identity, term), ordered by first start."""
    by = {}
    for p in procs:
        by.setdefault((p["identity"], str(p["term"])), []).append(p)
    out = []
    for (ident, term), ps in by.items():
        out.append(dict(identity=ident, term=term, procs=sorted(ps, key=lambda p: p["start"]),
                        first_start=min(p["start"] for p in ps), last_end=max(_end(p) for p in ps)))
    return sorted(out, key=lambda t: t["first_start"])


def check(procs):
    """Returns (violations, handovers).

    violations: every pair of processes of different identities whose
    [start, end] intervals overlap, as dicts with both processes and the
    overlap in ms (inf when both are still running).
    handovers: for each pair of consecutive trees of different identities,
    the old tree's lifetime and the gap from its last end to the new tree's
    first start (negative: they overlapped).
    """
    ps = sorted(procs, key=lambda p: p["start"])
    violations = []
    for i, x in enumerate(ps):
        for y in ps[i + 1:]:
            if y["start"] > _end(x):
                break  # sorted by start: every later one starts after x ended too
            if x["identity"] == y["identity"]:
                continue
            lo, hi = max(x["start"], y["start"]), min(_end(x), _end(y))
            if lo <= hi:
                violations.append(dict(a=x, b=y, overlap_ms=(hi - lo) * 1e3))
    ts = trees(procs)
    handovers = []
    for old, new in zip(ts, ts[1:]):
        if old["identity"] == new["identity"]:
            continue
        handovers.append(dict(old=(old["identity"], old["term"]), new=(new["identity"], new["term"]),
                              old_lifetime_ms=(old["last_end"] - old["first_start"]) * 1e3,
                              gap_ms=(new["first_start"] - old["last_end"]) * 1e3))
    return violations, handovers


def describe(p, t0=0.0):
    """One process; times in seconds after t0 (the caller's reference instant)."""
    end = "still running" if p["end"] is None else "ended %.3f (%s)" % (p["end"] - t0, p["end_how"])
    return "pid %d [%s term %s, %s/%s] start %.3f, %s" % (p["pid"], p["identity"], p["term"], p["kind"],
                                                      p["role"], p["start"] - t0, end)


def format_report(violations, handovers, procs, t0=0.0):
    lines = []
    for t in trees(procs):
        life = "running" if t["last_end"] == math.inf else "%.0f ms" % ((t["last_end"] - t["first_start"]) * 1e3)
        lines.append("  tree %s term %s: %d process(es), first start → last end %s" % (
            t["identity"], t["term"], len(t["procs"]), life))
        for p in t["procs"]:
            lines.append("    " + describe(p, t0))
    for h in handovers:
        gap = h["gap_ms"]
        lines.append("  hand-over %s/%s → %s/%s: old tree lived %s, gap %s" % (
            h["old"][0], h["old"][1], h["new"][0], h["new"][1],
            "∞" if h["old_lifetime_ms"] == math.inf else "%.0f ms" % h["old_lifetime_ms"],
            "-∞ (old tree still running)" if gap == -math.inf else "%.1f ms" % gap))
    for v in violations:
        ov = "∞ (both still running)" if v["overlap_ms"] == math.inf else "%.1f ms" % v["overlap_ms"]
        lines.append("  VIOLATION overlap %s: %s  <->  %s" % (ov, describe(v["a"], t0), describe(v["b"], t0)))
    return "\n".join(lines)


# ------------------------------------------------------------------ selftest

def selftest():
    def P(pid, ident, start, end, term="1"):
        return dict(pid=pid, identity=ident, term=term, start=start, end=end, end_how="pidfd",
                    kind="synthetic", role="worker")

    cases = [
        # (name, procs, expected overlapping pid pairs)
        ("clean hand-over", [P(1, "a", 0, 5), P(2, "a", 1, 6), P(3, "b", 6.5, None)], set()),
        ("touching ends count as overlap", [P(1, "a", 0, 5), P(2, "b", 5, 7)], {(1, 2)}),
        ("grandchild outlives the term", [P(1, "a", 0, 5), P(2, "a", 1, None), P(3, "b", 6, None)], {(2, 3)}),
        ("same identity never counts", [P(1, "a", 0, 5, "1"), P(2, "a", 3, 9, "3")], set()),
        ("several overlaps", [P(1, "a", 0, 10), P(2, "a", 0.5, 4), P(3, "b", 3, 12), P(4, "c", 11, None)],
         {(1, 3), (2, 3), (3, 4)}),
        ("late starter overlaps an early long one", [P(1, "a", 0, 100), P(2, "a", 1, 2), P(3, "b", 50, 60)],
         {(1, 3)}),
        ("disjoint three", [P(1, "a", 0, 1), P(2, "b", 2, 3), P(3, "c", 4, 5)], set()),
    ]
    bad = 0
    for name, procs, want in cases:
        v, _ = check(procs)
        got = {tuple(sorted((x["a"]["pid"], x["b"]["pid"]))) for x in v}
        ok = got == want
        bad += not ok
        print("%s %s: expected overlaps %s, checker found %s" % ("ok  " if ok else "FAIL", name,
                                                                sorted(want), sorted(got)))
    # Overlap length and hand-over numbers.
    v, h = check([P(1, "a", 0, 5), P(2, "b", 4.5, None)])
    ok = len(v) == 1 and abs(v[0]["overlap_ms"] - 500) < 1e-6 and len(h) == 1 and abs(h[0]["gap_ms"] + 500) < 1e-6
    bad += not ok
    print("%s overlap length 500 ms and hand-over gap -500 ms: %s" % ("ok  " if ok else "FAIL",
                                                                      [(x["overlap_ms"]) for x in v]))
    v, h = check([P(1, "a", 0, 5), P(2, "a", 1, 5.2), P(3, "b", 5.3, None)])
    ok = not v and len(h) == 1 and abs(h[0]["gap_ms"] - 100) < 1e-6 and abs(h[0]["old_lifetime_ms"] - 5200) < 1e-6
    bad += not ok
    print("%s hand-over: old tree lived 5200 ms, gap 100 ms: %s" % ("ok  " if ok else "FAIL", h))
    # The observer on real processes: a start file, an exit timed by pidfd, and
    # a process that ended before the first scan (ESRCH → the scan time).
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory(prefix="proctree-selftest.") as d:
        obs = Observer(d).start()
        env = dict(os.environ, LEASEHOLD_IDENTITY="x", LEASEHOLD_TERM="7")
        w = subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker", "setsid", d], env=env)
        seen = obs.wait(lambda ps: len(ps) >= 2 and ps, 10)
        t_kill = now()
        killed = obs.kill_all()
        done = obs.wait(lambda ps: all(p["end"] is not None for p in ps) and ps, 5)
        w.wait()
        ok = bool(seen) and bool(done) and len(killed) == 2 and all(
            p["end_how"] == "pidfd" and t_kill <= p["end"] < t_kill + 0.5 and p["identity"] == "x" and p["term"] == "7"
            for p in done)
        bad += not ok
        print("%s observer: worker + setsid grandchild seen, exits timed by pidfd: %s" % (
            "ok  " if ok else "FAIL", [(p["pid"], p["role"], p["end_how"]) for p in (done or seen or [])]))
        # A fake start file of a pid that has exited: ESRCH at scan.
        q = subprocess.Popen(["true"])
        q.wait()
        put_start(d, q.pid, dict(pid=q.pid, identity="y", term="8", start=now(), starttime=1))
        gone = obs.wait(lambda ps: [p for p in ps if p["pid"] == q.pid], 5)
        ok = bool(gone) and gone[0]["end"] is not None and gone[0]["end_how"] in ("esrch-at-scan", "reused-at-scan")
        bad += not ok
        print("%s observer: a process gone before the scan ends at the scan time: %s" % (
            "ok  " if ok else "FAIL", gone and gone[0]["end_how"]))
        obs.stop()
    print("proctree selftest: %s" % ("%d failed" % bad if bad else "all passed"))
    return 1 if bad else 0


def main(argv):
    if len(argv) == 4 and argv[1] == "worker":
        return worker(argv[2], argv[3])
    if len(argv) == 2 and argv[1] == "selftest":
        return selftest()
    if len(argv) == 3 and argv[1] == "check":  # a JSON list of process dicts
        with open(argv[2]) as f:
            procs = json.load(f)
        v, h = check(procs)
        print(format_report(v, h, procs))
        return 1 if v else 0
    print("usage: proctree.py worker KIND DIR | selftest | check FILE.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
