#!/usr/bin/env python3
"""Fault-injection torture suite: leasehold and client-go candidates on one
Lease, on a control plane of its own, under random faults (`make torture`).

The fleet: lh-1, lh-2 (leasehold_candidate), go-1 (the client-go peer) and
sc-1 talk to kube-apiserver directly; lh-3, go-2 and sc-2 each go through
their own faultproxy (testenv/cmd/faultproxy), a loopback TCP forwarder that
can blackhole or delay their traffic. Every candidate prints started/stopped
lines stamped with CLOCK_MONOTONIC (see tests/integration/fleet.py); a
watcher thread GETs the Lease with the admin token every 200 ms.

sc-1 and sc-2 are sidecars (issue 13): `leasehold run --lock k8s://NS/LEASE
-- proctree.py worker KIND DIR/trees` (--leasehold, default BUILD/leasehold
next to BUILD/tests/leasehold_candidate; the same timings; the default
--grace-period, the largest that fits: lease - renew - (250 ms + lease/1000),
747 ms at 3s/2s), with the workers of tests/integration/proctree.py: sc-1 a
`stubborn` one (ignores SIGTERM, must be SIGKILLed), sc-2 a `setsid` one (a
grandchild in a session of its own that ignores SIGTERM and outlives its
cooperative parent). Their started/stopped events come from OUTSIDE, never
from the worker: a tree is the processes of one (LEASEHOLD_IDENTITY,
LEASEHOLD_TERM) (leasehold increments leaseTransitions on every acquisition,
so a term is never reused); started = its first process's start (the
process's start file, stamped as its first act), stopped = its last
process's exit as timed by proctree's pidfd Observer, logged once every
process has ended and none came for 0.3 s (TreeObserver, SidecarTrees). The
sidecar's own SIGKILL or exit does not end its term (they are logged as
signal and sidecar_exit): its tree does. The token is LEASEHOLD_TERM. A
process of a tree already logged as stopped (or starting before its logged
start) is logged as tree_late and is a violation. Measurement: an end is
the instant the observer saw the pidfd readable (late by its poll and
scheduling: it can only make overlaps look longer); a start is stamped by
the Python worker once it runs, tens of ms after exec, so an overlap at the
START of a sidecar's term shorter than that could be missed (proctree's
known limit; the sidecar forks its worker only after it acquired, which
comes after the previous term's end, so the gap there is what it is).
Faults that hit "the
leader" hit a sidecar leader too: SIGKILL/SIGTERM/SIGSTOP go to the sidecar
process only, never to its worker; partitions and latency to sc-2's proxy.
Sidecars campaign again after a lost term (leasehold run's default), so they
are respawned only once they exit (SIGKILL, SIGTERM, or CMD exited), as the
other members. A "leader is now X" log line of a sidecar is its new_leader.

Fault kinds (a fault has a victim, a `began` and a `heal` time):
  sigkill-leader     SIGKILL of the leader (began = heal = the kill).
  sigkill-follower   SIGKILL of a follower.
  sigterm-leader     SIGTERM of the leader: it stops its work and releases.
  sigstop-short      the leader frozen (SIGSTOP .. SIGCONT) for 0.3 s ..
                     renew_deadline - retry_period: nobody else may lead.
  sigstop-long       the leader frozen for lease_duration + 0.5 .. 2.5 s: the
                     others take over while it still believes it leads.
  apiserver-restart  testenv restart kube-apiserver (heal = /readyz is 200).
  etcd-restart       testenv restart etcd (heal = /readyz is 200).
  partition-short    a proxied candidate (the leader when one is proxied)
  partition-long     blackholed for 0.3 s .. renew - retry, or lease + 0.5 ..
                     3 s; a third of the heals also reset its connections.
  latency            200..800 ms added each way to a proxied candidate for
                     2..6 s, then removed.
  admin-holder       an admin PUTs holderIdentity = a holder that does not
                     exist (renewTime now): the ghost's lease must expire and
                     the Lease be taken again.
  admin-renew        an admin PUTs renewTime = now (same holder).
  admin-delete       an admin DELETEs the Lease: it must be re-created.
When leasehold (a candidate or a sidecar) leads, a round is, with chance
--steer (0.3), a sigterm-leader with the leasehold followers (sidecars too)
frozen meanwhile, so that client-go takes over:
leasehold followers watch the Lease and otherwise win most take-overs, and
client-go leaders must meet the faults too. Likewise, before every
partition-long (and half the partition-shorts and latencies) whose leader is
not behind a proxy, a sigterm-leader with the direct followers frozen hands
the Lease to lh-3, go-2 or sc-2; and until sigstop-long, sigkill-leader and
partition-long have each hit a sidecar leader once, each of them drawn while
another leads is preceded the same way by a hand-over to sc-1 or sc-2 (sc-2
for a partition).
The first len(KINDS) rounds run every kind once, in a shuffled order; the
rest are drawn by weight. --seed replays a schedule (timing still varies).
The next fault comes no sooner than the liveness bound after a heal, and once
every running candidate has seen the leader. A SIGKILLed or SIGTERMed victim
sits out one round, then comes back as a new incarnation (BASE.N); candidates
that lost the Lease exit (no recampaign, as client-go) and come back at once.

The checker (over the monotonic event log, the Lease samples and the Lease's
writes in the kube-apiserver audit log):
  (a) never two leaders. Four exceptions, reported as expected overlaps:
      - sigstop-long of the earlier leader (not a sidecar: see below): the
        successor started during the
        pause (or within the stop bound after it); its fencing token (the
        Lease's leaseTransitions at its term start) must be strictly larger,
        and the frozen leader must stop within STOP(impl) of SIGCONT.
      - admin-delete: the earlier leader led when the Lease was deleted and
        the successor re-created it. A candidate that never saw the old Lease
        (client-go always; a leasehold process started after the delete)
        creates it with leaseTransitions 0, so the tokens cannot order these
        two terms: deleting a Lease under a fleet is an operator hazard, not a
        library fault (a leasehold candidate that saw the holder waits out its
        lease, and continues the numbering). The earlier leader must still
        stop within STOP(impl) of the delete.
      - client-go's release after a failed renewal: when its requests hang
        (a partition or latency of that candidate, a kube-apiserver or etcd
        restart), client-go ends the renewal after retry_period +
        renew_deadline, then, with ReleaseOnCancel (the peer's default, as in
        the fleet tests), release() waits up to renew_deadline more for a GET
        and an UPDATE before Run returns and the work context is cancelled.
        The others may take over lease_duration after the last renewal, so the
        work overlaps the next term by up to 2 x renew_deadline +
        retry_period - lease_duration (+ slack): 1.5 s at 3s/2s/500ms, 7 s at
        client-go's defaults 15s/10s/2s. Checked: the successor's token must
        be larger and the overlap within that bound. This is client-go's
        property: a leasehold leader gets no such exception.
      - client-go taking over an unexpired lease (the successor is a
        client-go peer; only with the audit log's evidence). client-go's
        follower restarts its observation of the holder only when the Lease,
        as a LeaderElectionRecord marshalled to JSON, differs from the last
        it read, and that record's times are metav1.Time, whole seconds: at
        a sub-second retry period a renewal within the same second as the
        previous one is no observation for it, so it can write the Lease up
        to about a second before the holder's lease has run out. That is
        client-go's protocol violation, not the holder's. The evidence, from
        every successful write of the Lease in testenv's audit*.log (leases
        are logged at level Metadata: user, User-Agent, verb, code,
        requestReceivedTimestamp and the ResponseComplete stageTimestamp,
        microseconds; one per auditID across rotated files), mapped onto the
        event log with the wall-minus-monotonic offsets logged in the config
        event (and a clock event at the end; linear in between):
          . the retry period is sub-second;
          . the take-over: the first successful update/create by the
            successor's own User-Agent (peer/BASE) completed after the
            earlier term began and received no later than the successor's
            logged start;
          . the last successful write before it (completion order) is a
            renewal (update/create) by the earlier leader's implementation
            (peer/BASE, or leasehold/VERSION, which every leasehold process
            sends alike);
          . the take-over completed less than lease_duration after that
            write completed (early = write + lease - take-over > 0), by no
            more than 1 s (the record's precision) + that write's own latency
            + 250 ms (the holder's delay from stamping renewTime to
            kube-apiserver receiving it, not in the log): so a release, or a
            holder silent for long, is no excuse;
          . the earlier leader's term ended within its own lease: no later
            than that write's completion + lease_duration;
          . the successor's fencing token is strictly larger.
        Anything short of that (no audit log, no offset, no such writes) is
        a violation. Counted in the report as client-go take-overs of an
        unexpired lease, each with how early it came.
      A partition is NOT an exception for leasehold: the partitioned process
      keeps its clock and must step down at renew_deadline < lease_duration.
      Neither is a frozen SIDECAR: sigstop-long of a sidecar leader excuses
      nothing, fenced or not, because its watchdog (a process of its own)
      must have SIGKILLed the tree by renewed_at + lease - margin while the
      sidecar was stopped; any overlap of its tree with the next term is a
      violation. The admin-delete exception applies to sidecars as to the
      others, with STOP(sidecar) = retry_period + grace + slack (it SIGTERMs
      the tree at the first renewal that fails, SIGKILLs it after the grace).
      STOP(leasehold) = retry_period + slack (it steps down as soon as it runs:
      its renew deadline has passed). STOP(client-go) = renew_deadline +
      retry_period + slack: client-go's renew loop, woken after the pause,
      starts a new PollUntilContextTimeout of renew_deadline and only ends the
      term when that times out, even though its first GET shows another holder.
  (b) fencing tokens increase: every term's token is strictly larger than the
      previous term's, except the first term on a re-created Lease.
  (c) liveness: after each fault heals, a leader within lease_duration +
      2 x retry_period + --slack-ms (default 1000 ms: process start, TLS
      handshakes and scheduling on a loaded 2-core VM). A leader whose term
      goes on across the heal counts at once.
  (d) the Lease is never left unreadable: every 200 ms GET must answer 200
      with a well-formed Lease (spec types right, holderIdentity a string,
      leaseDurationSeconds an int > 0, renewTime/acquireTime parseable). A 404
      is allowed from an admin-delete until the bound has passed; errors are
      allowed while kube-apiserver or etcd restarts (until 3 s after heal);
      anywhere else, errors for longer than 2 s in a row are a violation
      (shorter ones are counted as transient).
  (e) sidecars: after a sigstop-long, sigkill-leader or partition-long of a
      sidecar leader (it cannot renew), its tree ends no later than the
      fault's start + lease_duration, whoever leads next (the watchdog's
      deadline is at most that minus the margin, 253 ms at 3 s: the room left
      for the observer's latency); and no tree_late event. Reported: rounds
      while a sidecar led, rounds whose victim was the sidecar leader, the
      time from the fault to its tree's end (p50, max by kind), and the
      shortest gap from a sidecar's tree end to the next term.

Output: a progress line per round, then rounds, faults by kind, terms by
impl, hand-overs, max gap, the sidecar numbers, the audit log's writes,
client-go's take-overs of an unexpired lease, expected overlaps and
violations; DIR/torture-summary.json, DIR/torture-events.jsonl (every event),
DIR/torture-lease.jsonl (the Lease samples that were not plain reads) and
DIR/torture-audit-writes.jsonl (the Lease's successful writes, wall-clock ns,
read after kube-apiserver stopped and flushed its audit batch);
DIR/sidecar-BASE.log (the sidecars' JSON logs, each line prefixed with mono
ns) and DIR/trees/seen/ (every start file of their workers). Worker
processes still alive 3 s after the sidecars were stopped at the end are
SIGKILLed by the harness and reported as a problem. Exit 1 on any violation or
harness problem.

  torture.py --bin B --candidate C [--leasehold L] --dir D [--duration 600 | --rounds N] [--seed S]
  torture.py check D/torture-events.jsonl [--lease-log D/torture-lease.jsonl] [--audit D/torture-audit-writes.jsonl]
  torture.py selftest          the checker on hand-made logs that must fail
"""
import argparse
import calendar
import glob
import http.client
import json
import os
import queue
import random
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import fleet as F  # noqa: E402  (candidates, event log, terms)
import proctree  # noqa: E402  (worker trees seen from outside: start files, pidfd exits)

KINDS = ["sigkill-leader", "sigkill-follower", "sigterm-leader", "sigstop-short", "sigstop-long",
         "apiserver-restart", "etcd-restart", "partition-short", "partition-long", "latency",
         "admin-holder", "admin-renew", "admin-delete"]
WEIGHTS = {"sigkill-leader": 4, "sigkill-follower": 2, "sigterm-leader": 3, "sigstop-short": 3,
           "sigstop-long": 3, "apiserver-restart": 1, "etcd-restart": 1, "partition-short": 2,
           "partition-long": 3, "latency": 2, "admin-holder": 1, "admin-renew": 1, "admin-delete": 1}
IMPLS = {"lh-1": "leasehold", "lh-2": "leasehold", "lh-3": "leasehold", "go-1": "client-go", "go-2": "client-go",
         "sc-1": "sidecar", "sc-2": "sidecar"}
PROXIED = ("lh-3", "go-2", "sc-2")
# The proctree worker each `leasehold run` sidecar runs (tests/integration/proctree.py).
SIDECAR_WORKERS = {"sc-1": "stubborn", "sc-2": "setsid"}
PROCTREE = os.path.join(HERE, "..", "integration", "proctree.py")
TREE_QUIET_S = 0.3  # a tree whose every process has ended is closed after this long without a new one
# Faults after which a sidecar leader cannot renew: its tree must be gone by began + lease_duration.
SIDECAR_DEADLINE_KINDS = ("sigstop-long", "sigkill-leader", "partition-long")
CONTROL_PLANE_KINDS = ("apiserver-restart", "etcd-restart")
ERROR_GRACE_NS = 3_000_000_000  # errors allowed until 3 s after a control-plane heal
ERROR_STREAK_NS = 2_000_000_000  # elsewhere, errors for longer than this in a row
MS = 1_000_000
# The kube-apiserver audit log (testenv's policy logs leases at level
# Metadata: who, verb, code, user agent, timestamps with microseconds; no
# bodies). The successful writes of the torture Lease, by verb and code.
WRITE_OK = {"create": 201, "update": 200, "patch": 200, "delete": 200}
TAKEOVER_WRITES = (("update", 200), ("create", 201))
# User-Agents: leasehold's client sends "leasehold/VERSION" (src/kube/client.cc),
# the same for every leasehold process; fleet.py gives each client-go peer
# "peer/BASE" (its --user-agent).
LEASEHOLD_UA_PREFIX = "leasehold/"
# A client-go follower that misses renewals within one whole second of the
# record takes over at most that second (+ the holder's last write's own
# latency) before the holder's lease ends; this is the room for what the audit
# log cannot show: the holder's delay between stamping renewTime and
# kube-apiserver receiving the write (see early_takeover).
SEND_SKEW_NS = 250 * MS


def ms(ns):
    return ns / 1e6


def micro_time():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- the Lease

def parse_time(s):
    try:
        datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
        return True
    except (TypeError, ValueError):
        try:
            datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
            return True
        except (TypeError, ValueError):
            return False


def lease_problems(obj, name):
    """What is wrong with a Lease as GET returned it ([] when well-formed)."""
    if not isinstance(obj, dict):
        return ["not a JSON object"]
    p = []
    if obj.get("kind") != "Lease":
        p.append("kind %r" % obj.get("kind"))
    if not isinstance(obj.get("metadata"), dict) or obj["metadata"].get("name") != name:
        p.append("metadata.name is not %r" % name)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return p + ["spec is %r" % type(spec).__name__]
    h = spec.get("holderIdentity")
    if h is not None and not isinstance(h, str):
        p.append("holderIdentity %r is not a string" % (h,))
    d = spec.get("leaseDurationSeconds")
    if not isinstance(d, int) or isinstance(d, bool) or d <= 0:
        p.append("leaseDurationSeconds %r is not an int > 0" % (d,))
    t = spec.get("leaseTransitions")
    if t is not None and (not isinstance(t, int) or isinstance(t, bool) or t < 0):
        p.append("leaseTransitions %r is not an int >= 0" % (t,))
    for k in ("renewTime", "acquireTime"):
        if k in spec and spec[k] is not None and not parse_time(spec[k]):
            p.append("%s %r does not parse" % (k, spec[k]))
    if h and not spec.get("renewTime"):
        p.append("held by %r without a renewTime" % h)
    return p


class Admin:
    """Requests to kube-apiserver (directly, never through a proxy) with the admin token."""

    def __init__(self, cp_dir):
        self.server, self.token = F.kube_admin(argparse.Namespace(dir=cp_dir))
        self.host, self.port = self.server.split("//", 1)[1].rsplit(":", 1)
        self.ctx = ssl.create_default_context(cafile=os.path.join(cp_dir, "pki", "ca.crt"))
        self.conn = None

    def request(self, method, path, body=None, timeout=5):
        """(status, parsed JSON or raw bytes); raises OSError/HTTPException on
        transport errors. A kept-alive connection that kube-apiserver closed
        (it restarted) is retried once on a new one."""
        if self.conn is not None:
            try:
                return self._request(method, path, body, timeout)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                pass
        return self._request(method, path, body, timeout)

    def _request(self, method, path, body, timeout):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.host, int(self.port), context=self.ctx, timeout=timeout)
        try:
            self.conn.timeout = timeout
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                              headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
            r = self.conn.getresponse()
            raw = r.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw

    def close(self):
        if self.conn:
            self.conn.close()


def lease_path(name):
    return "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (F.NS, name)


class LeaseWatcher(threading.Thread):
    """GETs the Lease every 200 ms; keeps (mono_ns, state, detail) samples,
    state one of ok, absent (404), invalid (200, malformed), error."""

    def __init__(self, cp_dir, lease, path):
        super().__init__(daemon=True)
        self.admin, self.lease = Admin(cp_dir), lease
        self.samples = []
        self.stop_ev = threading.Event()
        self.file = open(path, "w")
        self.last_state = None

    def run(self):
        while not self.stop_ev.is_set():
            t = F.mono_ns()
            try:
                status, body = self.admin.request("GET", lease_path(self.lease), timeout=2)
                if status == 200:
                    probs = lease_problems(body, self.lease)
                    s = ("invalid", "; ".join(probs)) if probs else ("ok", "")
                elif status == 404:
                    s = ("absent", "404")
                else:
                    s = ("error", "HTTP %d" % status)
            except Exception as e:  # connection refused or reset, timeout
                s = ("error", "%s: %s" % (type(e).__name__, e))
            sample = (t, s[0], s[1])
            self.samples.append(sample)
            if s[0] != "ok" or self.last_state != "ok":  # every anomaly and every return to ok
                self.file.write(json.dumps({"mono_ns": t, "state": s[0], "detail": s[1]}) + "\n")
                self.file.flush()
            self.last_state = s[0]
            self.stop_ev.wait(0.2)

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        self.admin.close()
        self.file.close()


# ---------------------------------------------------------------- processes

class ControlPlane:
    def __init__(self, bin_dir, cp_dir):
        self.bin, self.dir = bin_dir, cp_dir
        self.testenv = os.path.join(bin_dir, "testenv")

    def up(self):
        subprocess.check_call([self.testenv, "up", "--dir", self.dir, "--bin", self.bin], stdout=subprocess.DEVNULL)

    def down(self):
        subprocess.call([self.testenv, "down", "--dir", self.dir], stdout=subprocess.DEVNULL)

    def restart(self, name):
        return subprocess.call([self.testenv, "restart", "--dir", self.dir, name], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout_s):
        return F.wait_ready(argparse.Namespace(dir=self.dir), timeout_s)

    def api_addr(self):
        return F.kube_admin(argparse.Namespace(dir=self.dir))[0].split("//", 1)[1]


class FaultProxy:
    """One faultproxy process; cmd() sends a command and waits for its answer."""

    def __init__(self, bin_dir, target, stderr_path):
        self.p = subprocess.Popen([os.path.join(bin_dir, "faultproxy"), "--target", target],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(stderr_path, "ab"),
                                  start_new_session=True)
        first = json.loads(self.p.stdout.readline())
        self.addr = first["listening"]
        self.answers = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.answers.put(json.loads(line))
        self.answers.put({"error": "faultproxy exited"})

    def cmd(self, line, timeout=5):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        a = self.answers.get(timeout=timeout)
        if "error" in a:
            raise RuntimeError("faultproxy %s: %s" % (line, a["error"]))
        return a

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


# ---------------------------------------------------------------- sidecars

def sidecar_grace_ms(t):
    """`leasehold run`'s default --grace-period: the largest that fits,
    lease - renew - margin, margin = 250 ms + lease/1000 (747 ms at 3s/2s)."""
    return max(0, t.lease_ms - t.renew_ms - (250 + t.lease_ms / 1000))


def ns_of(seconds):
    """proctree's CLOCK_MONOTONIC seconds as the event log's mono ns."""
    return int(round(seconds * 1e9))


class TreeObserver(proctree.Observer):
    """proctree's Observer for a long run: every start file, once read, is
    moved to DIR/seen/PID-STARTTIME.start, and processes are keyed by pid and
    starttime, so a pid the kernel reuses (pid_max is often 32768) for a later
    worker is seen again instead of being taken for the old one. New processes
    are also queued in `fresh` for SidecarTrees. Everything else (pidfd exit
    times, ESRCH/reused at scan = the scan time, kill_all) is proctree's."""

    def __init__(self, d, period=0.005):
        super().__init__(d, period)
        self.seen = os.path.join(d, "seen")
        os.makedirs(self.seen, exist_ok=True)
        self.fresh = []  # Proc objects not yet taken by SidecarTrees (under mu)

    def _scan(self):
        for name, pid in proctree.start_files(self.dir):
            path = os.path.join(self.dir, name)
            try:
                with open(path) as f:
                    p = proctree.Proc(json.loads(f.read()))
            except (OSError, ValueError, KeyError) as e:
                self.bad.append("%s: %s" % (name, e))
                try:
                    os.rename(path, os.path.join(self.seen, "bad-%d-%d.start" % (pid, F.mono_ns())))
                except OSError:
                    pass
                continue
            key = "%d-%s" % (pid, p.starttime)
            os.rename(path, os.path.join(self.seen, key + ".start"))  # a later owner of this pid writes anew
            if key in self.procs:
                continue
            self._watch(pid, p)
            with self.mu:
                self.procs[key] = p
                self.fresh.append(p)
                self.mu.notify_all()


class SidecarTrees(threading.Thread):
    """Turns the processes TreeObserver sees into the sidecars' started and
    stopped events. A tree is the processes of one (LEASEHOLD_IDENTITY,
    LEASEHOLD_TERM) on one incarnation of the Lease; leasehold increments
    leaseTransitions on every acquisition, its own lease included, so a term
    is never reused on one Lease. An admin-delete re-creates the Lease and
    restarts leaseTransitions (a sidecar can then hold the same token again):
    lease_deleted() starts a new incarnation, and a process belongs to the
    incarnation its start falls in. started =
    the first process's start (its start file), stopped = the last process's
    exit (pidfd), logged once every process of the tree has ended and no new
    one came for TREE_QUIET_S. A process of a tree already closed is logged as
    tree_late (the checker counts it as a violation: the term logged did not
    cover it); so is one that started before its tree's logged start."""

    def __init__(self, obs, log):
        super().__init__(name="sidecar-trees", daemon=True)
        self.obs, self.log = obs, log
        self.trees = {}  # (identity, term, Lease incarnation) -> dict
        self.open = {}
        self.deletes = []  # CLOCK_MONOTONIC s of each admin DELETE of the Lease (under mu)
        self.stop_ev = threading.Event()
        self.mu = threading.Lock()

    def run(self):
        while not self.stop_ev.wait(0.02):
            self.step()

    def step(self, final=False):
        with self.mu:
            with self.obs.mu:
                fresh, self.obs.fresh = self.obs.fresh, []
            for p in sorted(fresh, key=lambda p: p.start):
                key = (p.identity, str(p.term), sum(d <= p.start for d in self.deletes))
                t = self.trees.get(key)
                if t is None:
                    t = self.trees[key] = dict(identity=p.identity, term=str(p.term), procs=[p], first=p.start,
                                               closed=False, end=None)
                    self.open[key] = t
                    try:
                        tok = int(p.term)
                    except (TypeError, ValueError):
                        tok = None
                    self.log.add(dict(event="started", proc=p.identity, src="sidecar", impl="sidecar",
                                      mono_ns=ns_of(p.start), transitions=tok, worker=p.kind, pid=p.pid,
                                      how="first process of the tree (start file)"))
                elif t["closed"] or p.start < t["first"]:
                    t["procs"].append(p)
                    self.log.harness("tree_late", p.identity, term=str(p.term), pid=p.pid, role=p.role,
                                     start_ns=ns_of(p.start), tree_start_ns=ns_of(t["first"]),
                                     tree_stopped_ns=t["end"])
                else:
                    t["procs"].append(p)
            now = proctree.now()
            for key, t in list(self.open.items()):
                ends = [p.end for p in t["procs"]]
                if any(e is None for e in ends):
                    continue
                last = max(ends)
                if final or now - last >= TREE_QUIET_S:
                    t["closed"], t["end"] = True, ns_of(last)
                    del self.open[key]
                    self.log.add(dict(event="stopped", proc=t["identity"], src="sidecar", mono_ns=ns_of(last),
                                      term=t["term"], how="last process of the tree ended (pidfd)",
                                      pids=["%d/%s/%s" % (p.pid, p.role, p.end_how) for p in t["procs"]],
                                      tree_ms=round((last - t["first"]) * 1e3, 1)))

    def lease_deleted(self, at_s):
        """The Lease is deleted at CLOCK_MONOTONIC at_s (stamped before the
        DELETE is sent): a process started from then on belongs to its next
        incarnation."""
        with self.mu:
            self.deletes.append(at_s)

    def is_open(self, identity):
        with self.mu:
            return any(t["identity"] == identity for t in self.open.values())

    def finish(self, patience_s=3.0):
        """After the fleet is gone: waits for the trees to end, SIGKILLs what
        is left (each a problem: a tree outlived its sidecar) and closes every
        tree. Returns the problems."""
        self.stop_ev.set()
        self.join(5)
        problems = []
        if not self.obs.wait(lambda ps: all(p["end"] is not None for p in ps), patience_s):
            live = [p for p in self.obs.snapshot() if p["end"] is None]
            problems.append("worker processes alive %.0f s after their sidecars were stopped, killed by the "
                            "harness: %s" % (patience_s, ", ".join("%d (%s term %s, %s)" % (
                                p["pid"], p["identity"], p["term"], p["role"]) for p in live)))
            self.obs.kill_all(signal.SIGKILL)
            self.obs.wait(lambda ps: all(p["end"] is not None for p in ps), 5)
        self.step(final=True)
        self.obs.stop()
        self.step(final=True)  # start files the observer's last scan found
        for b in self.obs.bad:
            problems.append("unreadable start file %s" % b)
        return problems


class Sidecar(F.ProcessHandle):
    """A `leasehold run` process of the fleet (one incarnation; proc is its
    --identity), duck-typed like fleet.Candidate. Its JSON log goes to
    DIR/sidecar-BASE.log (each line prefixed with mono ns); "leader is now X"
    becomes a new_leader event (for F.settled). Its own signals and exit are
    logged as signal and sidecar_exit, never as killed/exit: the term it
    leads is its worker tree's (SidecarTrees), which a SIGKILL of the sidecar
    does not end."""

    def __init__(self, log, proc, argv, log_path):
        self.log, self.impl, self.proc, self.argv = log, "sidecar", proc, argv
        self.out = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        self.log.harness("spawned", proc, impl="sidecar", pid=self.p.pid)
        self.exited = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._wait, daemon=True).start()

    def _read(self):
        # EOF only once every holder of the pipe is gone (its worker tree inherits it).
        for raw in self.p.stdout:
            t = F.mono_ns()
            self.out.write(b"%d " % t + raw)
            self.out.flush()
            try:
                msg = json.loads(raw).get("msg", "")
            except (ValueError, AttributeError):
                continue
            if msg.startswith("leader is now "):
                self.log.add(dict(event="new_leader", proc=self.proc, src="sidecar", mono_ns=t,
                                  leader=msg[len("leader is now "):].strip()))
        self.out.close()

    def _wait(self):
        rc = self.p.wait()
        self.log.harness("sidecar_exit", self.proc, rc=rc)
        self.exited.set()

    def signal(self, sig):
        """Sends sig to the sidecar process only (never to its worker),
        stamped before kill()."""
        before = F.mono_ns()
        try:
            os.kill(self.p.pid, sig)
        except ProcessLookupError:
            pass
        return self.log.harness("signal", self.proc, at=before, sig=signal.Signals(sig).name, impl="sidecar")



class TortureFleet(F.Fleet):
    """fleet.Fleet plus the sidecar members (impl "sidecar"): `leasehold run
    --lock k8s://NS/LEASE` running SIDECAR_WORKERS[base] from proctree, which
    writes its start files into trees_dir."""

    def __init__(self, args, lease, timings, log, kubeconfig_for, leasehold, trees_dir, out_dir):
        super().__init__(args, lease, timings, log, kubeconfig_for=kubeconfig_for)
        self.leasehold, self.trees_dir, self.out_dir = leasehold, trees_dir, out_dir

    def spawn(self, base, impl, timings=None):
        if impl != "sidecar":
            return super().spawn(base, impl, timings)
        n = self.incarnation.get(base, 0) + 1
        self.incarnation[base] = n
        proc = "%s.%d" % (base, n)
        t = timings or self.timings
        # setpriv: a harness killed outright takes its sidecars along (their
        # watchdogs then end the trees).
        argv = (["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []) + [
                self.leasehold, "run", "--lock", "k8s://%s/%s" % (F.NS, self.lease), "--identity", proc,
                "--kubeconfig", self.kubeconfig_for(base), "--log-format", "json",
                "--leader-elect-lease-duration=%dms" % t.lease_ms, "--leader-elect-renew-deadline=%dms" % t.renew_ms,
                "--leader-elect-retry-period=%dms" % t.retry_ms,
                "--", sys.executable, PROCTREE, "worker", SIDECAR_WORKERS[base], self.trees_dir]
        c = Sidecar(self.log, proc, argv, os.path.join(self.out_dir, "sidecar-%s.log" % base))
        self.running[base] = c
        self.all.append(c)
        return c


# ---------------------------------------------------------------- the audit log

def wall_minus_mono_ns():
    """CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns: maps kube-apiserver's audit
    timestamps (its wall clock, on this machine) onto the event log's
    monotonic ns. The best of 5 reads (the narrowest monotonic bracket)."""
    best = None
    for _ in range(5):
        m1 = time.monotonic_ns()
        w = time.time_ns()
        m2 = time.monotonic_ns()
        if best is None or m2 - m1 < best[0]:
            best = (m2 - m1, w - (m1 + m2) // 2)
    return best[1]


def wall_ns_of(ts):
    """ns since the epoch of an audit timestamp (RFC 3339, UTC, up to
    microseconds), exactly; None if it does not parse."""
    if not isinstance(ts, str) or not ts.endswith("Z"):
        return None
    base, _, frac = ts[:-1].partition(".")
    try:
        secs = calendar.timegm(datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").timetuple())
        sub = int((frac + "000000000")[:9]) if frac else 0
    except ValueError:
        return None
    return secs * 1_000_000_000 + sub


def read_lease_writes(d, lease, ns=F.NS):
    """Every successful write of the Lease NS/lease in the kube-apiserver
    audit logs of testenv's state dir d (audit.log and any rotated
    audit-TIMESTAMP.log; one per auditID, so a request logged twice counts
    once), sorted by completion: [{verb, code, user, ua, received, done,
    audit_id}], verb/code one of WRITE_OK, received = requestReceivedTimestamp,
    done = the ResponseComplete stageTimestamp, both in wall-clock ns."""
    seen = {}
    for path in sorted(glob.glob(os.path.join(d, "audit*.log"))):
        with open(path, errors="replace") as f:
            for line in f:
                if lease not in line or "ResponseComplete" not in line:
                    continue  # cheap: most lines are other objects' or other stages'
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                ref = e.get("objectRef") or {}
                if (e.get("stage") != "ResponseComplete" or ref.get("resource") != "leases" or
                        ref.get("namespace") != ns or ref.get("name") != lease):
                    continue
                verb, code = e.get("verb"), (e.get("responseStatus") or {}).get("code")
                done = wall_ns_of(e.get("stageTimestamp"))
                if WRITE_OK.get(verb) != code or done is None:
                    continue
                seen[e.get("auditID")] = dict(verb=verb, code=code, user=(e.get("user") or {}).get("username"),
                                              ua=e.get("userAgent") or "", done=done, audit_id=e.get("auditID"),
                                              received=wall_ns_of(e.get("requestReceivedTimestamp")) or done)
    return sorted(seen.values(), key=lambda w: (w["done"], w["received"]))


def load_writes(path, lease):
    """The Lease's writes from a saved DIR/torture-audit-writes.jsonl or from a
    testenv state dir's audit logs; None when there is neither."""
    if os.path.isdir(path):
        if not glob.glob(os.path.join(path, "audit*.log")):
            return None
        return read_lease_writes(path, lease)
    if os.path.isfile(path):
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    return None


def writes_on_mono(events, writes):
    """The audit writes with received/done mapped to the event log's monotonic
    ns (mono = wall - offset), with the wall-minus-monotonic offsets the
    harness logged (the config event at the start, a clock event at the end;
    linear in between, so a clock slewed during the run is followed).
    Returns (writes, None) or (None, why not)."""
    if writes is None:
        return None, "no audit log"
    pts = sorted((e["mono_ns"], e["wall_minus_mono_ns"]) for e in events
                 if e["event"] in ("config", "clock") and e.get("wall_minus_mono_ns") is not None)
    if not pts:
        return None, "no wall-minus-monotonic offset in the event log (config event)"

    def off(m):
        if m <= pts[0][0] or len(pts) == 1:
            return pts[0][1]
        for (m0, o0), (m1, o1) in zip(pts, pts[1:]):
            if m <= m1:
                return o0 + (o1 - o0) * (m - m0) // max(1, m1 - m0)
        return pts[-1][1]

    out = []
    for w in writes:
        x = dict(w)
        for k in ("received", "done"):
            x[k] = w[k] - off(w[k] - pts[0][1])
        out.append(x)
    out.sort(key=lambda w: (w["done"], w["received"]))
    return out, None


def ua_of_impl(proc, impl, agents):
    """A predicate: is a User-Agent that of `proc`? client-go peers: exactly
    theirs (agents[BASE], else fleet.py's "peer/BASE"); leasehold processes
    all send leasehold/VERSION."""
    if impl == "client-go":
        base = proc.rsplit(".", 1)[0]
        want = agents.get(base, "peer/" + base)
        return lambda ua: ua == want
    return lambda ua: ua.startswith(LEASEHOLD_UA_PREFIX)


def early_takeover(a, b, writes, why_none, t, agents):
    """Whether client-go's b took over a's unexpired lease, from the audit
    writes (on the monotonic clock, sorted by completion). Returns
    (dict of numbers, None) when it did, else (None, why not). Required:
      - a sub-second retry period (else the holder's renewals are whole
        seconds apart and every one changes client-go's record);
      - b's take-over: the first successful update/create by b's own
        User-Agent completed after a's term began and received no later
        than b's logged start;
      - the last successful write to the Lease before it (in completion
        order) is an update/create by a's implementation (its renewal);
      - the take-over completed less than lease_duration after that write
        completed (early = that write's completion + lease - the take-over's
        completion > 0), and early by no more than the record's precision
        explains: 1 s + that write's latency (done - received) + SEND_SKEW
        (a release, or a holder silent for long, does not pass);
      - a's term ended within its own lease: no later than that write's
        completion + lease_duration."""
    if writes is None:
        return None, why_none
    if t.retry_ms >= 1000:
        return None, "retry period %d ms: not sub-second" % t.retry_ms
    lease_ns = int(t.lease_ms * MS)
    mine = ua_of_impl(b[2], "client-go", agents)
    i = next((i for i, w in enumerate(writes) if mine(w["ua"]) and (w["verb"], w["code"]) in TAKEOVER_WRITES and
              w["done"] > a[0] and w["received"] <= b[0]), None)
    if i is None:
        return None, "the audit log has no successful write by %s between %s's start and its own" % (b[2], a[2])
    take = writes[i]
    if i == 0:
        return None, "the audit log has no write of the Lease before %s's take-over" % b[2]
    prev = writes[i - 1]
    where = "%s %d by %s (%s) done at %.1f ms" % (prev["verb"], prev["code"], prev["user"], prev["ua"] or "-",
                                                  ms(prev["done"]))
    if (prev["verb"], prev["code"]) not in TAKEOVER_WRITES or not ua_of_impl(a[2], a[5], agents)(prev["ua"]):
        return None, "the last write before %s's take-over is not a renewal by %s's implementation: %s" % (
            b[2], a[2], where)
    early = prev["done"] + lease_ns - take["done"]
    if early <= 0:
        return None, "%s took over %.1f ms after the lease of the last write (%s) ran out" % (b[2], ms(-early), where)
    ceiling = 1000 * MS + (prev["done"] - prev["received"]) + SEND_SKEW_NS
    if early > ceiling:
        return None, ("%s took over %.1f ms before the lease of the last write (%s) ran out: more than the "
                      "record's whole-second precision explains (at most %.1f ms)" % (b[2], ms(early), where,
                                                                                     ms(ceiling)))
    if a[1] > prev["done"] + lease_ns:
        return None, ("%s took over %.1f ms early, but %s led on %.1f ms past its own lease (its last write, "
                      "%s, + lease)" % (b[2], ms(early), a[2], ms(a[1] - prev["done"] - lease_ns), where))
    return dict(early_ms=round(ms(early), 1), takeover_done_ms=round(ms(take["done"]), 1),
                takeover_write_ms=round(ms(take["done"] - take["received"]), 1),
                takeover_after_last_write_ms=round(ms(take["done"] - prev["done"]), 1),
                last_write_done_ms=round(ms(prev["done"]), 1), last_write=where,
                takeover="%s %d by %s (%s)" % (take["verb"], take["code"], take["user"], take["ua"])), None


# ---------------------------------------------------------------- checker

def terms_with_tokens(events, end_ns):
    """[(start, end, proc, how, token, impl)] and the problems of F.terms_of."""
    terms, problems = F.terms_of(events, end_ns)
    tok = {}
    impl = {}
    for e in events:
        if e["event"] == "started":
            tok[(e["proc"], e["mono_ns"])] = e.get("transitions")
            impl[e["proc"]] = e.get("impl") or e.get("src")
    return [(s, en, p, how, tok.get((p, s)), impl.get(p, "?")) for s, en, p, how in terms], problems


def stop_bound_ns(impl, t, slack_ms):
    """How long a leader may go on leading after it can run again (see the docstring)."""
    extra = {"client-go": t.renew_ms, "sidecar": sidecar_grace_ms(t)}.get(impl, 0)
    return int((extra + t.retry_ms + slack_ms) * MS)


def check(events, samples, t, slack_ms, end_ns=None, rounds_end_ns=None, writes=None):
    """Returns (report, violations, expected_overlaps). writes: the Lease's
    successful writes from the kube-apiserver audit log (read_lease_writes:
    wall-clock ns), or None without one: the evidence for a client-go
    take-over of an unexpired lease."""
    if end_ns is None:
        end_ns = max([e["mono_ns"] for e in events] + [s[0] for s in samples] + [0])
    if rounds_end_ns is None:
        rounds_end_ns = end_ns
    bound = t.bound_ns(slack_ms)
    terms, violations = terms_with_tokens(events, end_ns)
    faults = sorted([e for e in events if e["event"] == "fault"], key=lambda e: e["mono_ns"])
    for f in faults:
        f.setdefault("began", f["mono_ns"])
    expected = []
    # client-go: a renewal that fails because requests hang ends after
    # retry_period + renew_deadline, then release() (ReleaseOnCancel) waits up
    # to renew_deadline more before the work context ends.
    release_ns = int((t.retry_ms + 2 * t.renew_ms + slack_ms) * MS)
    cg_overlap_ns = int((2 * t.renew_ms + t.retry_ms - t.lease_ms + slack_ms) * MS)
    # client-go taking over an unexpired lease: evidence from the audit log.
    writes_m, no_writes = writes_on_mono(events, writes)
    config = next((e for e in events if e["event"] == "config"), {})
    agents = config.get("user_agents") or {}
    early_takeovers = []

    # (a) never two leaders, but for the explained overlaps.
    for i, a in enumerate(terms):
        for b in terms[i + 1:]:
            if b[0] >= a[1]:
                break
            if a[2] == b[2]:
                continue
            desc = "%s [%.1f, %.1f] token %s and %s [%.1f, %.1f] token %s overlap by %.1f ms" % (
                a[2], ms(a[0]), ms(a[1]), a[4], b[2], ms(b[0]), ms(b[1]), b[4], ms(min(a[1], b[1]) - b[0]))
            stop = stop_bound_ns(a[5], t, slack_ms)
            # A frozen sidecar is no excuse: its watchdog must have ended the tree.
            pause = [f for f in faults if f["kind"] == "sigstop-long" and f.get("proc") == a[2]
                     and f["began"] <= b[0] <= f["mono_ns"] + stop and a[0] < f["began"] and a[5] != "sidecar"]
            delete = [f for f in faults if f["kind"] == "admin-delete" and a[0] < f["began"] <= b[0] <= f["began"] + bound]
            hang = [f for f in faults if a[5] == "client-go" and f["began"] <= b[0] and
                    a[1] <= f["mono_ns"] + release_ns and
                    (f["kind"] in CONTROL_PLANE_KINDS or
                     (f["kind"] in ("partition-short", "partition-long", "latency") and f.get("proc") == a[2]))]
            if pause:
                f = pause[0]
                if a[4] is None or b[4] is None or not b[4] > a[4]:
                    violations.append("two leaders after sigstop-long of %s, not ordered by fencing token: %s" %
                                      (a[2], desc))
                elif a[1] > f["mono_ns"] + stop:
                    violations.append("frozen leader %s led on %.1f ms after SIGCONT (allowed %.1f ms): %s" %
                                      (a[2], ms(a[1] - f["mono_ns"]), ms(stop), desc))
                else:
                    expected.append("sigstop-long (fenced %s < %s): %s" % (a[4], b[4], desc))
            elif delete:
                f = delete[0]
                if a[1] > f["began"] + stop:
                    violations.append("leader %s led on %.1f ms after its Lease was deleted and re-taken "
                                      "(allowed %.1f ms): %s" % (a[2], ms(a[1] - f["began"]), ms(stop), desc))
                else:
                    expected.append("admin-delete (unfenced: a new Lease restarts leaseTransitions): %s" % desc)
            elif hang:
                over = min(a[1], b[1]) - b[0]
                if a[4] is None or b[4] is None or not b[4] > a[4]:
                    violations.append("two leaders after %s, not ordered by fencing token: %s" % (hang[0]["kind"], desc))
                elif over > cg_overlap_ns:
                    violations.append("client-go leader %s led on %.1f ms into the next term (allowed %.1f ms): %s" %
                                      (a[2], ms(over), ms(cg_overlap_ns), desc))
                else:
                    expected.append("client-go release after a failed renewal, %s (fenced %s < %s): %s" %
                                    (hang[0]["kind"], a[4], b[4], desc))
            elif b[5] == "client-go":
                early, why = early_takeover(a, b, writes_m, no_writes, t, agents)
                if early is None:
                    violations.append("two leaders: %s (not a client-go take-over of an unexpired lease: %s)" %
                                      (desc, why))
                elif a[4] is None or b[4] is None or not b[4] > a[4]:
                    violations.append("client-go %s took over an unexpired lease, not ordered by fencing token: %s" %
                                      (b[2], desc))
                else:
                    early_takeovers.append(dict(early, holder=a[2], successor=b[2]))
                    expected.append(
                        "client-go took over an unexpired lease: it missed a renewal within the same second "
                        "(sub-second retry period): %s's take-over (%s) completed %.1f ms after the last write "
                        "(%s), %.1f ms before that lease ran out (lease %.0f ms); fenced %s < %s: %s" % (
                            b[2], early["takeover"], early["takeover_after_last_write_ms"], early["last_write"],
                            early["early_ms"], t.lease_ms, a[4], b[4], desc))
            else:
                violations.append("two leaders: " + desc)

    # (e) sidecars: a leader that could not renew (frozen, killed, cut off)
    # has its tree gone by the fault's start + lease_duration, whoever leads
    # next; and no process of a tree outside the term logged for it.
    lease_ns = int(t.lease_ms * MS)
    sidecar_rounds, tree_end, victim_rounds = {}, {}, 0
    for f in faults:
        held = [x for x in terms if x[5] == "sidecar" and x[0] <= f["began"] < x[1]]
        if not held:
            continue
        x = held[0]
        sidecar_rounds[f["kind"]] = sidecar_rounds.get(f["kind"], 0) + 1
        victim_rounds += f.get("proc") == x[2]
        if f.get("proc") != x[2] or f["kind"] not in SIDECAR_DEADLINE_KINDS + ("sigterm-leader",):
            continue  # a fault of the control plane or a follower, or one a leader may survive
        after = x[1] - f["began"]
        tree_end.setdefault(f["kind"], []).append(after)
        if f["kind"] in SIDECAR_DEADLINE_KINDS and after > lease_ns:
            violations.append("sidecar %s (token %s): its tree ended %.1f ms after %s began, later than "
                              "lease_duration %.0f ms (%s)" % (x[2], x[4], ms(after), f["kind"], ms(lease_ns), x[3]))
    for e in events:
        if e["event"] == "tree_late":
            violations.append("sidecar %s term %s: pid %s (%s) started at %.1f ms, outside the term logged for its "
                              "tree (started %.1f ms, stopped %s)" % (
                                  e["proc"], e.get("term"), e.get("pid"), e.get("role"), ms(e.get("start_ns", 0)),
                                  ms(e.get("tree_start_ns") or 0),
                                  "%.1f ms" % ms(e["tree_stopped_ns"]) if e.get("tree_stopped_ns") else "-"))

    # (b) fencing tokens increase from term to term (a re-created Lease starts over).
    deletes = [f["began"] for f in faults if f["kind"] == "admin-delete"]
    for a, b in zip(terms, terms[1:]):
        if a[4] is None or b[4] is None:
            violations.append("a term without a fencing token: %s %s / %s %s" % (a[2], a[4], b[2], b[4]))
            continue
        if b[4] <= a[4] and not any(a[0] < d <= b[0] for d in deletes):
            violations.append("fencing token did not increase: %s token %s at %.1f ms, then %s token %s at %.1f ms" %
                              (a[2], a[4], ms(a[0]), b[2], b[4], ms(b[0])))

    # (c) a leader within the bound after each heal.
    gaps = []
    for i, f in enumerate(faults):
        t0 = f["mono_ns"]
        t_end = faults[i + 1]["began"] if i + 1 < len(faults) else rounds_end_ns
        ongoing = [x for x in terms if x[0] <= t0 < x[1] and x[1] >= min(t_end, t0 + bound)]
        if ongoing:
            gaps.append(0)
            continue
        nxt = [x for x in terms if t0 <= x[0] <= t_end]
        if not nxt:
            violations.append("round %d (%s of %s): no leader after the heal, before the next round" %
                              (i + 1, f["kind"], f.get("proc") or "-"))
            continue
        gap = nxt[0][0] - t0
        gaps.append(gap)
        if gap > bound:
            violations.append("round %d (%s of %s): leader %s only %.1f ms after the heal (bound %.1f ms)" %
                              (i + 1, f["kind"], f.get("proc") or "-", nxt[0][2], ms(gap), ms(bound)))

    # (d) the Lease is never left unreadable.
    cp_windows = [(f["began"], f["mono_ns"] + ERROR_GRACE_NS) for f in faults if f["kind"] in CONTROL_PLANE_KINDS]
    del_windows = [(f["began"], f["began"] + bound) for f in faults if f["kind"] == "admin-delete"]
    transient = 0
    streak = None  # (state, first mono_ns, detail) of a run of errors outside the windows
    lease_bad = []

    def close_streak(until):
        nonlocal streak, transient
        if streak is None:
            return
        st, t1, detail = streak
        if until - t1 > ERROR_STREAK_NS:
            lease_bad.append("the Lease was unreadable (%s: %s) for %.1f ms from %.1f ms while the control plane "
                             "was up" % (st, detail, ms(until - t1), ms(t1)))
        else:
            transient += 1
        streak = None

    absent, prev = None, None
    for ts, state, detail in samples:
        prev_ts, prev = prev, ts
        if state == "ok":
            close_streak(ts)
        elif state == "invalid":
            close_streak(ts)
            lease_bad.append("the Lease did not parse at %.1f ms: %s" % (ms(ts), detail))
        elif state == "absent":
            close_streak(ts)
            if not any(a <= ts <= b for a, b in del_windows):
                if absent and absent[1] == prev_ts:  # one line per run of 404s
                    absent[1] = ts
                else:
                    absent = [ts, ts]
                    lease_bad.append(absent)
        else:
            if any(a <= ts <= b for a, b in cp_windows):
                close_streak(ts)
            elif streak is None:
                streak = (state, ts, detail)
    close_streak(samples[-1][0] if samples else 0)
    if samples and samples[-1][1] != "ok":
        lease_bad.append("the Lease was not readable at the end (%s: %s)" % (samples[-1][1], samples[-1][2]))
    lease_bad = [b if isinstance(b, str) else
                 "the Lease was absent (404) from %.1f to %.1f ms, not after an admin-delete or longer than the "
                 "bound after it" % (ms(b[0]), ms(b[1])) for b in lease_bad]
    # One line per kind of problem is enough to read; all are counted.
    violations += lease_bad[:20]
    if len(lease_bad) > 20:
        violations.append("... and %d more Lease samples like these" % (len(lease_bad) - 20))

    # How long a leader under a fault went on leading: after SIGCONT for
    # sigstop-long, after the partition began for partition-long.
    step_down = {}
    for f in faults:
        if f["kind"] not in ("sigstop-long", "partition-long"):
            continue
        held = [x for x in terms if x[2] == f.get("proc") and x[0] <= f["began"] < x[1]]
        if held:
            ref = f["mono_ns"] if f["kind"] == "sigstop-long" else f["began"]
            key = "%s %s" % (f["kind"], held[0][5])
            step_down[key] = max(step_down.get(key, 0), round(ms(held[0][1] - ref), 1))

    impl_of = {x[2]: x[5] for x in terms}
    handovers, by_impl, kinds = {}, {}, {}
    for a, b in zip(terms, terms[1:]):
        k = "%s->%s" % (impl_of[a[2]], impl_of[b[2]])
        handovers[k] = handovers.get(k, 0) + 1
    for x in terms:
        by_impl[x[5]] = by_impl.get(x[5], 0) + 1
    for f in faults:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    report = {
        "rounds": len(faults),
        "faults": kinds,
        "terms": len(terms),
        "terms_by_impl": by_impl,
        "handovers": handovers,
        "max_gap_ms": round(ms(max(gaps)), 1) if gaps else None,
        "bound_ms": round(ms(bound), 1),
        "expected_overlaps": len(expected),
        "client_go_early_takeovers": len(early_takeovers),
        "client_go_early_takeover_list": early_takeovers,
        "audit_lease_writes": len(writes) if writes is not None else None,
        "wall_clock_drift_ms": clock_drift_ms(events),
        "max_step_down_ms": step_down,
        "sidecar_leader_rounds": sum(sidecar_rounds.values()),
        "sidecar_leader_victim_rounds": victim_rounds,
        "sidecar_leader_rounds_by_kind": sidecar_rounds,
        "sidecar_victim_tree_end_ms": {k: dict(n=len(v), p50=round(ms(sorted(v)[len(v) // 2]), 1),
                                               max=round(ms(max(v)), 1)) for k, v in sorted(tree_end.items())},
        "sidecar_handover_min_gap_ms": min_gap(terms, "sidecar"),
        "lease_samples": len(samples),
        "lease_transient_errors": transient,
        "violations": len(violations),
    }
    return report, violations, expected


def clock_drift_ms(events):
    """How far wall-minus-monotonic moved from the config event to the last
    clock event (the wall clock slewed or stepped during the run), or None."""
    offs = [e["wall_minus_mono_ns"] for e in sorted(events, key=lambda e: e["mono_ns"])
            if e["event"] in ("config", "clock") and e.get("wall_minus_mono_ns") is not None]
    return round(ms(offs[-1] - offs[0]), 3) + 0.0 if len(offs) > 1 else None  # + 0.0: no "-0.0"


def min_gap(terms, impl):
    """The shortest time from the end of a term of `impl` to the start of the
    next term (of another process), in ms: how close the checker came to
    seeing an overlap."""
    gaps = [b[0] - a[1] for a, b in zip(terms, terms[1:]) if a[5] == impl and a[2] != b[2] and b[0] >= a[1]]
    return round(ms(min(gaps)), 1) if gaps else None


def print_report(report, violations, expected, out=sys.stdout):
    print("rounds: %d" % report["rounds"], file=out)
    print("faults by kind: %s" % ", ".join("%s=%d" % kv for kv in sorted(report["faults"].items())), file=out)
    print("leadership terms: %d (%s); handovers: %s" % (
        report["terms"], ", ".join("%s=%d" % kv for kv in sorted(report["terms_by_impl"].items())),
        ", ".join("%s=%d" % kv for kv in sorted(report["handovers"].items()))), file=out)
    print("longest leaderless gap after a heal: %s ms (bound %s ms)" % (report["max_gap_ms"], report["bound_ms"]),
          file=out)
    print("Lease reads: %d, transient errors outside restarts: %d" %
          (report["lease_samples"], report["lease_transient_errors"]), file=out)
    if report.get("max_step_down_ms"):
        print("leaders under a fault stepped down within (ms; sigstop-long: after SIGCONT, partition-long: after "
              "it began): %s" % ", ".join("%s=%s" % kv for kv in sorted(report["max_step_down_ms"].items())), file=out)
    if report.get("sidecar_leader_rounds") is not None:
        print("rounds while a sidecar led: %d (%s), %d of them with the sidecar leader as the victim; its tree "
              "gone after the fault began (ms): %s; shortest gap from a sidecar's tree end to the next term: %s ms" % (
                  report["sidecar_leader_rounds"],
                  ", ".join("%s=%d" % kv for kv in sorted(report["sidecar_leader_rounds_by_kind"].items())),
                  report["sidecar_leader_victim_rounds"],
                  ", ".join("%s n=%d p50=%s max=%s" % (k, v["n"], v["p50"], v["max"])
                            for k, v in sorted(report["sidecar_victim_tree_end_ms"].items())) or "-",
                  report["sidecar_handover_min_gap_ms"]), file=out)
    if report.get("audit_lease_writes") is None:
        print("audit log: none (a client-go take-over of an unexpired lease cannot be told from a violation)",
              file=out)
    else:
        print("audit log: %d successful writes of the Lease; wall clock drift over the run %s ms" %
              (report["audit_lease_writes"], report.get("wall_clock_drift_ms")), file=out)
    print("client-go take-overs of an unexpired lease (audit evidence): %d%s" % (
        report.get("client_go_early_takeovers", 0),
        " (early by ms: %s)" % ", ".join("%s" % x["early_ms"] for x in report["client_go_early_takeover_list"])
        if report.get("client_go_early_takeover_list") else ""), file=out)
    print("expected overlaps (fenced, admin-caused or client-go's): %d" % len(expected), file=out)
    for x in expected:
        print("  expected " + x, file=out)
    print("violations: %d" % len(violations), file=out)
    for v in violations:
        print("  VIOLATION " + v, file=out)


# ---------------------------------------------------------------- the run

class Torture:
    def __init__(self, args):
        self.args, self.t = args, args.timings
        self.rng = random.Random(args.seed)
        self.bound = self.t.bound_ns(args.slack_ms)
        self.cp = ControlPlane(args.bin, os.path.join(args.dir, "testenv"))
        self.problems = []
        self.ghosts = 0
        self.log = self.fleet = self.watcher = self.admin = None
        self.trees = None
        self.proxies = {}

    # -- setup and teardown
    def setup(self):
        a = self.args
        os.makedirs(a.dir, exist_ok=True)
        for f in os.listdir(a.dir):
            if (f.startswith("fleet-") and f.endswith(".stderr")) or (f.startswith("sidecar-") and f.endswith(".log")):
                os.remove(os.path.join(a.dir, f))
        print("torture: control plane in %s" % self.cp.dir, flush=True)
        self.cp.up()
        self.admin = Admin(self.cp.dir)
        target = self.cp.api_addr()
        elector = open(os.path.join(self.cp.dir, "kubeconfig-elector")).read()
        server = F.kube_admin(argparse.Namespace(dir=self.cp.dir))[0]
        for base in PROXIED:
            p = FaultProxy(a.bin, target, os.path.join(a.dir, "faultproxy-%s.stderr" % base))
            self.proxies[base] = p
            path = os.path.join(self.cp.dir, "kubeconfig-via-%s" % base)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(elector.replace("server: " + server, "server: https://" + p.addr))
        self.log = F.EventLog(os.path.join(a.dir, "torture-events.jsonl"))
        self.lease = F.unique_lease("torture")
        fargs = argparse.Namespace(candidate=a.candidate, bin=a.bin, dir=self.cp.dir)

        def kubeconfig_for(base):
            name = "kubeconfig-via-%s" % base if base in PROXIED else "kubeconfig-elector"
            return os.path.join(self.cp.dir, name)

        trees_dir = os.path.join(a.dir, "trees")  # the sidecars' workers write their start files here
        shutil.rmtree(trees_dir, ignore_errors=True)
        os.makedirs(trees_dir)
        self.trees = SidecarTrees(TreeObserver(trees_dir).start(), self.log)
        self.trees.start()
        self.fleet = TortureFleet(fargs, self.lease, self.t, self.log, kubeconfig_for, a.leasehold, trees_dir, a.dir)
        # wall_minus_mono_ns maps the audit log's wall-clock times onto the
        # event log (another, in a clock event, at the end); user_agents are
        # the client-go peers' (fleet.py's --user-agent peer/BASE).
        self.log.harness("config", seed=a.seed, lease=self.lease, timings=str(self.t), slack_ms=a.slack_ms,
                         bound_ms=ms(self.bound), proxies={b: p.addr for b, p in self.proxies.items()},
                         wall_minus_mono_ns=wall_minus_mono_ns(),
                         user_agents={b: "peer/" + b for b, i in IMPLS.items() if i == "client-go"})
        for base, impl in IMPLS.items():
            self.fleet.spawn(base, impl)
        self.watcher = LeaseWatcher(self.cp.dir, self.lease, os.path.join(a.dir, "torture-lease.jsonl"))
        self.watcher_started = False

    def teardown(self):
        if self.fleet:
            for c in self.fleet.all:  # nothing may stay frozen
                if c.alive():
                    try:
                        os.kill(c.p.pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
            self.fleet.stop_all()
        if self.trees:
            self.problems += self.trees.finish()
        if self.watcher and self.watcher_started:
            self.watcher.stop()
        for base, p in self.proxies.items():
            try:  # connections left open once the fleet is gone: should be none or few
                self.log.harness("proxy_stats", base, **p.cmd("stats"))
            except (RuntimeError, queue.Empty, OSError) as e:
                self.problems.append("faultproxy of %s: %s" % (base, e))
            p.close()
        if self.admin:
            self.admin.close()
        if not self.args.keep:
            self.cp.down()

    # -- helpers
    def leader(self):
        return F.current_leader(self.log.snapshot())

    def running(self, proc):
        for b, c in self.fleet.running.items():
            if c.proc == proc:
                return b, c
        return None, None

    def respawn_exited(self):
        for base, c in list(self.fleet.running.items()):
            if not c.alive():
                self.fleet.spawn(base, IMPLS[base])

    def fault(self, kind, victim, began, heal, **kw):
        c = victim
        return self.log.harness("fault", c.proc if c else "", at=heal, began=began, kind=kind,
                                impl=c.impl if c else "", **kw)

    def pick_proxied(self, leader):
        """The proxied leader if there is one, else a proxied follower."""
        base, _ = self.running(leader)
        if base in PROXIED:
            return base, "leader"
        return self.rng.choice([b for b in PROXIED if b in self.fleet.running]), "follower"  # one may sit out

    def lease_put(self, edit):
        """GET, edit(spec), PUT; retried on conflicts. Returns mono_ns after the PUT or None."""
        for _ in range(8):
            try:
                st, obj = self.admin.request("GET", lease_path(self.lease))
                if st != 200:
                    self.problems.append("admin GET of the Lease: HTTP %d" % st)
                    return None
                edit(obj["spec"])
                st, _ = self.admin.request("PUT", lease_path(self.lease), obj)
                if st == 200:
                    return F.mono_ns()
                if st != 409:
                    self.problems.append("admin PUT of the Lease: HTTP %d" % st)
                    return None
            except Exception as e:
                self.problems.append("admin edit of the Lease: %s" % e)
                return None
        self.problems.append("admin PUT of the Lease: 8 conflicts in a row")
        return None

    # -- faults; each returns (fault event, note) or None on a harness problem
    def do(self, kind, leader):
        t, rng = self.t, self.rng
        base, lc = self.running(leader)
        if kind in ("sigkill-leader", "sigterm-leader"):
            sig = signal.SIGKILL if kind == "sigkill-leader" else signal.SIGTERM
            ev = lc.signal(sig)
            if not lc.wait_exit(10):
                self.problems.append("%s did not exit within 10 s of %s" % (lc.proc, sig.name))
                lc.kill_now()
            return self.fault(kind, lc, ev["mono_ns"], ev["mono_ns"]), ""
        if kind == "sigkill-follower":
            fb = rng.choice(sorted(b for b, c in self.fleet.running.items() if c.proc != leader and c.alive()))
            c = self.fleet.running[fb]
            ev = c.signal(signal.SIGKILL)
            c.wait_exit(10)
            return self.fault(kind, c, ev["mono_ns"], ev["mono_ns"]), ""
        if kind in ("sigstop-short", "sigstop-long"):
            if kind == "sigstop-short":
                pause = rng.uniform(0.3, (t.renew_ms - t.retry_ms) / 1e3)
            else:
                pause = t.lease_ms / 1e3 + rng.uniform(0.5, 2.5)
            ev = lc.signal(signal.SIGSTOP)
            time.sleep(pause)
            ev2 = lc.signal(signal.SIGCONT)
            f = self.fault(kind, lc, ev["mono_ns"], ev2["mono_ns"], pause_ms=round(pause * 1e3))
            if kind == "sigstop-long" and lc.impl == "sidecar":
                # Its watchdog ended the tree while it was frozen; the sidecar
                # itself campaigns on (recampaign is leasehold run's default).
                deadline = time.monotonic() + stop_bound_ns(lc.impl, t, self.args.slack_ms) / 1e9 + 1
                while self.trees.is_open(lc.proc) and time.monotonic() < deadline:
                    time.sleep(0.05)
            elif kind == "sigstop-long":
                # Usually it lost the Lease while frozen: it must stop, and exits
                # (no recampaign). client-go may also renew on: nobody took over yet.
                lc.wait_exit(stop_bound_ns(lc.impl, t, self.args.slack_ms) / 1e9 + 1)
            return f, "%.1f s" % pause
        if kind in CONTROL_PLANE_KINDS:
            name = "kube-apiserver" if kind == "apiserver-restart" else "etcd"
            began = F.mono_ns()
            rc = self.cp.restart(name)
            back = self.cp.wait_ready(60)
            if rc != 0 or back is None:
                self.problems.append("%s: testenv restart %s exit %d, ready %s" % (kind, name, rc, back is not None))
                return None
            return self.fault(kind, None, began, back, down_ms=round(ms(back - began))), \
                "down %.1f s" % ((back - began) / 1e9)
        if kind in ("partition-short", "partition-long", "latency"):
            vb, role = self.pick_proxied(leader)
            c = self.fleet.running[vb]
            px = self.proxies[vb]
            try:
                if kind == "latency":
                    lat, dur = rng.randrange(200, 801), rng.uniform(2, 6)
                    began = F.mono_ns()
                    px.cmd("latency %d" % lat)
                    time.sleep(dur)
                    px.cmd("latency 0")
                    heal = F.mono_ns()
                    return self.fault(kind, c, began, heal, role=role, latency_ms=lat), \
                        "+%d ms for %.1f s (%s)" % (lat, dur, role)
                if kind == "partition-short":
                    dur = rng.uniform(0.3, (t.renew_ms - t.retry_ms) / 1e3)
                else:
                    dur = t.lease_ms / 1e3 + rng.uniform(0.5, 3.0)
                reset = rng.random() < 1 / 3
                began = F.mono_ns()
                px.cmd("partition")
                time.sleep(dur)
                px.cmd("heal")
                heal = F.mono_ns()
                if reset:
                    px.cmd("reset")
            except (RuntimeError, queue.Empty) as e:
                self.problems.append("%s: %s" % (kind, e))
                return None
            return self.fault(kind, c, began, heal, role=role, reset=reset), \
                "%.1f s%s (%s)" % (dur, " + reset" if reset else "", role)
        if kind == "admin-holder":
            self.ghosts += 1
            ghost = "ghost-%d" % self.ghosts

            def edit(spec):
                spec["holderIdentity"] = ghost
                spec["renewTime"] = spec["acquireTime"] = micro_time()
            began = F.mono_ns()
            at = self.lease_put(edit)
            return (self.fault(kind, lc, began, at, ghost=ghost), "-> " + ghost) if at else None
        if kind == "admin-renew":
            began = F.mono_ns()
            at = self.lease_put(lambda spec: spec.update(renewTime=micro_time()))
            return (self.fault(kind, lc, began, at), "") if at else None
        if kind == "admin-delete":
            began = F.mono_ns()
            if self.trees:
                self.trees.lease_deleted(began / 1e9)
            try:
                st, _ = self.admin.request("DELETE", lease_path(self.lease))
            except Exception as e:
                st = str(e)
            if st != 200:
                self.problems.append("admin DELETE of the Lease: %s" % st)
                return None
            return self.fault(kind, lc, began, began), ""
        raise ValueError(kind)

    def steer(self, leader, to):
        """SIGTERM of the leader with every follower but those of `to` (bases)
        frozen (SIGSTOP, shorter than the bound): one of `to` takes the
        released Lease. So client-go leaders meet the faults too (leasehold
        followers, which watch the Lease, otherwise win most take-overs), and
        partitions and latency hit a leader behind a proxy."""
        _, lc = self.running(leader)
        frozen = [c for b, c in self.fleet.running.items() if b not in to and c.proc != leader and c.alive()]
        for c in frozen:
            c.signal(signal.SIGSTOP)
        try:
            ev = lc.signal(signal.SIGTERM)
            if not lc.wait_exit(10):
                self.problems.append("%s did not exit within 10 s of SIGTERM" % lc.proc)
                lc.kill_now()
            self.log.wait(lambda evs: F.current_leader(evs) not in (None, leader), self.bound / 1e9)
        finally:
            for c in frozen:
                c.signal(signal.SIGCONT)
        return self.fault("sigterm-leader", lc, ev["mono_ns"], ev["mono_ns"], steer=sorted(to)), \
            "with %s frozen" % ", ".join(c.proc for c in frozen)

    def schedule(self):
        first = list(KINDS)
        self.rng.shuffle(first)
        for k in first:
            yield k
        while True:
            yield self.rng.choices(KINDS, [WEIGHTS[k] for k in KINDS])[0]

    def run(self):
        a = self.args
        started = time.monotonic()
        print("torture: seed %d (replay with --seed %d); timings %s; bound %.1f s (lease + 2 x retry + %.0f ms slack); "
              "%s" % (a.seed, a.seed, self.t, self.bound / 1e9, a.slack_ms,
                      "%d rounds" % a.rounds if a.rounds else "%d s" % a.duration), flush=True)
        self.setup()
        print("torture: Lease %s/%s; fleet %s; %s behind faultproxies" %
              (F.NS, self.lease, ", ".join("%s (%s)" % kv for kv in IMPLS.items()), ", ".join(PROXIED)), flush=True)
        if not self.log.wait(lambda evs: F.settled(self.fleet, evs), 60):
            self.problems.append("the fleet did not settle within 60 s of its start")
            return
        self.watcher.start()
        self.watcher_started = True
        kinds = self.schedule()
        total = "%d" % a.rounds if a.rounds else "∞"
        r = 0
        pending = None
        drawn = 0  # fault kinds taken from the schedule (its first len(KINDS) cover every kind)
        carry = None  # a partition or latency put off by one round, to hand over to a proxied leader first
        sc_need = set(SIDECAR_DEADLINE_KINDS)  # kinds not yet run on a sidecar leader
        while True:
            elapsed = time.monotonic() - started
            covered = drawn >= len(KINDS) and carry is None
            if a.rounds and r >= a.rounds:
                break
            if not a.rounds and elapsed >= a.duration and covered:
                break
            leader = self.log.wait(lambda evs: F.settled(self.fleet, evs), 30)
            if not leader:
                self.problems.append("round %d: the fleet did not settle within 30 s (leader %s)" %
                                     (r + 1, self.leader()))
                break
            time.sleep(self.rng.uniform(0.2, 1.5))  # a random phase against the renewals
            leader = self.leader()
            if not leader:
                continue  # lost it meanwhile (a late consequence): settle again
            r += 1
            lb, lc = self.running(leader)
            go = [b for b, c in self.fleet.running.items() if c.impl == "client-go" and c.alive()]
            proxied = [b for b in PROXIED if b in self.fleet.running and self.fleet.running[b].alive()]
            if carry is None and lc and lc.impl in ("leasehold", "sidecar") and go and self.rng.random() < a.steer:
                kind = "sigterm-leader"
                got = self.steer(leader, go)
            else:
                kind = carry or next(kinds)
                drawn += carry is None
                was_carried, carry = carry is not None, None
                sc_to = [b for b in (("sc-2",) if kind == "partition-long" else SIDECAR_WORKERS)
                         if b in self.fleet.running and self.fleet.running[b].alive()]
                if kind in sc_need and not was_carried and lc and lc.impl != "sidecar" and sc_to:
                    # Until each has hit a sidecar leader once: hand the Lease
                    # to a sidecar first (a round of its own), the fault next.
                    carry, kind = kind, "sigterm-leader"
                    got = self.steer(leader, sc_to)
                elif kind in ("partition-short", "partition-long", "latency") and lb not in PROXIED and proxied and \
                        (kind == "partition-long" or self.rng.random() < 0.5):
                    # Most partitions should hit a leader: hand over to a proxied
                    # candidate first (a round of its own), the partition next.
                    carry, kind = kind, "sigterm-leader"
                    got = self.steer(leader, proxied)
                else:
                    got = self.do(kind, leader)
            if got is None:
                print("[round %d/%s %.0fs/%ds] %s: harness problem: %s" %
                      (r, total, time.monotonic() - started, a.duration, kind, self.problems[-1]), flush=True)
                break
            f, note = got
            heal = f["mono_ns"]
            if lc and lc.impl == "sidecar" and f.get("proc") == leader:
                sc_need.discard(kind)
            # The victim of a kill or a SIGTERM sits out one round (fewer
            # leasehold followers watching: client-go wins some terms too).
            if pending:
                self.fleet.spawn(pending, IMPLS[pending])
                pending = None
            if kind in ("sigkill-leader", "sigterm-leader", "sigkill-follower"):
                pending = [b for b, c in self.fleet.running.items() if c.proc == f["proc"]][0]
                del self.fleet.running[pending]
            self.respawn_exited()
            # Let the fault play out (a ghost holder expires, a frozen or
            # partitioned leader steps down...): the next one comes no earlier
            # than the bound after this heal, and once the fleet has settled.
            time.sleep(max(0, (heal + self.bound - F.mono_ns()) / 1e9))
            self.respawn_exited()
            now_leader = self.log.wait(lambda evs: F.settled(self.fleet, evs), 20)
            if now_leader:
                st = [e for e in self.log.snapshot() if e["event"] == "started" and e["proc"] == now_leader][-1]
                if now_leader == leader:
                    outcome = "leader %s kept" % leader
                elif st["mono_ns"] < heal:
                    outcome = "leader %s (token %s) took over %.1f s before the heal" % (
                        now_leader, st.get("transitions"), (heal - st["mono_ns"]) / 1e9)
                else:
                    outcome = "leader %s (token %s) %.1f s after the heal" % (
                        now_leader, st.get("transitions"), (st["mono_ns"] - heal) / 1e9)
            else:
                outcome = "NOT SETTLED within %.1f s (leader %s)" % (self.bound / 1e9 + 20, self.leader())
            print("[round %d/%s %.0fs/%ds] %s of %s%s ... %s" %
                  (r, total, time.monotonic() - started, a.duration, kind, f["proc"] or "the control plane",
                   " " + note if note else "", outcome), flush=True)
        self.rounds_end = F.mono_ns()

    def finish(self):
        a = self.args
        rounds_end = getattr(self, "rounds_end", F.mono_ns())
        self.teardown()
        end = F.mono_ns()
        if self.log:
            self.log.harness("clock", wall_minus_mono_ns=wall_minus_mono_ns())
        events = self.log.snapshot() if self.log else []
        if self.log:
            self.log.close()
        samples = self.watcher.samples if self.watcher else []
        # The Lease's writes from the audit log (kube-apiserver is down unless
        # --keep, and flushed its batch; else wait out the batch's 1 s).
        writes = None
        if getattr(self, "lease", None):
            if a.keep:
                time.sleep(1.5)
            try:
                writes = load_writes(self.cp.dir, self.lease)
            except OSError as e:
                self.problems.append("reading the audit log: %s" % e)
            if writes is not None:  # else the report says there was none
                with open(os.path.join(a.dir, "torture-audit-writes.jsonl"), "w") as f:
                    for w in writes:
                        f.write(json.dumps(w) + "\n")
        report, violations, expected = check(events, samples, self.t, a.slack_ms, end, rounds_end, writes)
        print("== torture seed %d, %s ==" % (a.seed, self.t))
        print_report(report, violations, expected)
        for p in self.problems:
            print("  PROBLEM " + p)
        report.update(seed=a.seed, timings=str(self.t), slack_ms=a.slack_ms, seconds=round(time.monotonic() -
                      self.t_start, 1), problems=self.problems, violation_list=violations,
                      expected_overlap_list=expected, events=os.path.join(a.dir, "torture-events.jsonl"))
        with open(os.path.join(a.dir, "torture-summary.json"), "w") as f:
            json.dump(report, f, indent=2)
        print("took %.1f s; summary %s; event log %s" % (report["seconds"], os.path.join(a.dir, "torture-summary.json"),
                                                       report["events"]))
        missing = [k for k in KINDS if k not in report["faults"]]
        if missing and not a.rounds:
            print("FAIL: fault kinds never run: %s" % ", ".join(missing))
            return 1
        return 0 if not violations and not self.problems else 1


def mode_run(args):
    for need in ("bin", "candidate", "dir"):
        if not getattr(args, need):
            print("torture: --%s is required" % need)
            return 2
    if not args.leasehold:  # BUILD/tests/leasehold_candidate -> BUILD/leasehold
        args.leasehold = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.candidate))), "leasehold")
    if not os.access(args.leasehold, os.X_OK):
        print("torture: no leasehold CLI at %s (--leasehold PATH)" % args.leasehold)
        return 2
    args.leasehold = os.path.abspath(args.leasehold)
    args.dir = os.path.abspath(args.dir)
    tt = Torture(args)
    tt.t_start = time.monotonic()
    try:
        tt.run()
    except KeyboardInterrupt:
        tt.problems.append("interrupted")
    except Exception as e:  # a harness bug must not leave the control plane running
        import traceback
        traceback.print_exc()
        tt.problems.append("harness error: %s" % e)
    return tt.finish()


def mode_check(args):
    with open(args.file) as f:
        events = [json.loads(l) for l in f if l.strip()]
    samples = []
    if args.lease_log:
        with open(args.lease_log) as f:
            samples = [(j["mono_ns"], j["state"], j["detail"]) for j in map(json.loads, f)]
    # The audit evidence: --audit, else what the run left next to its event log.
    lease = next((e.get("lease") for e in events if e["event"] == "config"), None)
    here = os.path.dirname(os.path.abspath(args.file))
    writes = None
    for path in ([args.audit] if args.audit else
                 [os.path.join(here, "torture-audit-writes.jsonl"), os.path.join(here, "testenv")]):
        writes = load_writes(path, lease) if lease else None
        if writes is not None:
            print("audit: %s" % path)
            break
    report, violations, expected = check(events, samples, args.timings, args.slack_ms, writes=writes)
    print_report(report, violations, expected)
    return 0 if not violations else 1


def mode_selftest(args):
    """The checker must flag each broken log and pass the good ones."""
    S = 1_000_000_000
    t = F.Timings(3000, 2000, 500)
    slack = 1000  # bound 5 s; STOP(leasehold) 1.5 s, STOP(client-go) 3.5 s

    def ev(at, event, proc="", **kw):
        return dict(event=event, proc=proc, mono_ns=int(at * S), **kw)

    def st(at, proc, tok, impl="leasehold"):
        return ev(at, "started", proc, transitions=tok, impl=impl)

    def fault(heal, kind, proc="", began=None):
        return ev(heal, "fault", proc, kind=kind, began=int((began if began is not None else heal) * S))

    def ok_samples(a, b):
        return [(int(x * 0.2 * S), "ok", "") for x in range(int(a * 5), int(b * 5))]

    pause = [st(0, "a.1", 1), fault(5, "sigstop-long", "a.1", began=1), st(4.2, "b.1", 2), ev(5.3, "stopped", "a.1")]

    # client-go taking over an unexpired lease. The event log's config event
    # maps wall clock to monotonic (wall = mono + W0); writes are the audit
    # log's successful writes of the Lease (wall ns), as read_lease_writes
    # gives them.
    W0 = 1_795_000_000 * S + 123_456_789
    LH, G1 = "leasehold/0.9.0", "peer/go-1"

    def config(offset=True):
        return ev(0, "config", lease="torture-1", user_agents={"go-1": G1, "go-2": "peer/go-2"},
                  **({"wall_minus_mono_ns": W0} if offset else {}))

    def wr(received, done, ua=LH, verb="update", user="elector"):
        return dict(verb=verb, code=WRITE_OK[verb], user=user, ua=ua, received=int(received * S) + W0,
                    done=int(done * S) + W0)

    # A sidecar leader frozen at 1.0 s, right after its renewal (done 0.96);
    # its watchdog ends the tree at 3.68 s (< 0.96 + 3); go-1.1 read the same
    # whole second at its last poll and writes at 3.55 s, 410 ms early.
    def sc_early(go_tok=6, sc_end=3.68, offset=True):
        return [config(offset), st(0, "s.1", 5, "sidecar"), fault(5, "sigstop-long", "s.1", began=1.0),
                st(3.56, "go-1.1", go_tok, "client-go"), ev(sc_end, "stopped", "s.1")]
    sc_writes = [wr(-0.06, -0.05, verb="create"), wr(0.45, 0.46), wr(0.95, 0.96), wr(3.50, 3.55, G1)]
    # A leasehold leader renewing until 0.5 s, leading on to 3.7 s (no fault).
    lh_late = [config(), st(0, "lh-1.1", 1), st(3.62, "go-1.1", 2, "client-go"), ev(3.7, "stopped", "lh-1.1")]
    lh_release = [config(), st(0, "lh-1.1", 1), st(1.52, "go-1.1", 2, "client-go"), ev(1.7, "stopped", "lh-1.1")]
    early_good = (sc_early(), ok_samples(0, 10), 0, sc_writes)
    cases = {
        "good: a fenced overlap after sigstop-long": (pause, ok_samples(0, 10), 0),
        "good: control-plane restart, errors inside its window": (
            [st(0, "a.1", 1), fault(6, "apiserver-restart", began=2), ev(3, "stopped", "a.1"), st(7, "b.1", 2)],
            ok_samples(0, 2) + [(int(x * 0.2 * S), "error", "ConnectionRefusedError") for x in range(10, 44)] +
            ok_samples(8.8, 12), 0),
        "good: admin-delete, the old leader stops in time": (
            [st(0, "a.1", 4), fault(2, "admin-delete", "a.1"), st(2.5, "b.1", 0), ev(3, "stopped", "a.1")],
            ok_samples(0, 2) + [(int(x * 0.2 * S), "absent", "404") for x in range(10, 12)] + ok_samples(2.4, 6), 0),
        "good: client-go leader partitioned, released late but fenced": (
            [st(0, "g.1", 1, "client-go"), fault(6, "partition-long", "g.1", began=1), st(4.2, "b.1", 2),
             ev(5.5, "stopped", "g.1")], ok_samples(0, 10), 0),
        "client-go leader partitioned, overlap beyond its bound": (
            [st(0, "g.1", 1, "client-go"), fault(9, "partition-long", "g.1", began=1), st(4.2, "b.1", 2),
             ev(7, "stopped", "g.1")], ok_samples(0, 10), 1),
        "client-go leader partitioned, overlap not fenced": (
            [st(0, "g.1", 2, "client-go"), fault(6, "partition-long", "g.1", began=1), st(4.2, "b.1", 2),
             ev(5.5, "stopped", "g.1")], ok_samples(0, 10), 1),
        "two leaders without a fault (unfenced overlap)": (
            [st(0, "a.1", 1), st(1, "b.1", 2), ev(1.5, "stopped", "a.1")], ok_samples(0, 3), 1),
        "two leaders after a partition (not an excuse)": (
            [st(0, "a.1", 1), fault(5, "partition-long", "a.1", began=1), st(4.2, "b.1", 2), ev(5.3, "stopped", "a.1")],
            ok_samples(0, 10), 1),
        "sigstop-long overlap with a decreasing token": (
            [st(0, "a.1", 3), fault(5, "sigstop-long", "a.1", began=1), st(4.2, "b.1", 2),
             ev(5.3, "stopped", "a.1")], ok_samples(0, 10), 1),
        "sigstop-long overlap with an equal token": (
            [st(0, "a.1", 3), fault(5, "sigstop-long", "a.1", began=1), st(4.2, "b.1", 3),
             ev(5.3, "stopped", "a.1")], ok_samples(0, 10), 1),
        "frozen leader leads on too long after SIGCONT": (
            [st(0, "a.1", 1), fault(5, "sigstop-long", "a.1", began=1), st(4.2, "b.1", 2),
             ev(7, "stopped", "a.1")], ok_samples(0, 10), 1),
        "fencing token not increasing between terms": (
            [st(0, "a.1", 5), ev(1, "stopped", "a.1"), st(1.5, "b.1", 5)], ok_samples(0, 3), 1),
        "late leader after a heal": (
            [st(0, "a.1", 1), fault(1, "sigkill-leader", "a.1"), ev(1, "killed", "a.1"), st(6.5, "b.1", 2)],
            ok_samples(0, 8), 1),
        "no leader after a heal": (
            [st(0, "a.1", 1), fault(1, "etcd-restart", began=0.5), ev(1.2, "stopped", "a.1"),
             fault(9, "sigkill-follower", "x.1")], ok_samples(0, 10), 1),
        "the Lease does not parse": (
            [st(0, "a.1", 1)], ok_samples(0, 2) + [(int(2 * S), "invalid", "leaseDurationSeconds 0")], 1),
        "the Lease unreadable for 3 s with the control plane up": (
            [st(0, "a.1", 1)], ok_samples(0, 2) + [(int(x * 0.2 * S), "error", "timeout") for x in range(10, 25)] +
            ok_samples(5, 6), 1),
        "the Lease absent without a delete": (
            [st(0, "a.1", 1)], ok_samples(0, 2) + [(int(2 * S), "absent", "404")] + ok_samples(2.2, 3), 1),
        "the Lease absent longer than the bound after a delete": (
            [st(0, "a.1", 1), fault(1, "admin-delete", "a.1"), ev(1.2, "stopped", "a.1"), st(3, "b.1", 0)],
            ok_samples(0, 1) + [(int(x * 0.2 * S), "absent", "404") for x in range(5, 35)] + ok_samples(7, 8), 1),
        "admin-delete: the old leader leads on too long": (
            [st(0, "a.1", 4), fault(2, "admin-delete", "a.1"), st(2.5, "b.1", 0), ev(4.0, "stopped", "a.1")],
            ok_samples(0, 6), 1),
        # Sidecars: started/stopped are their worker tree's (SidecarTrees);
        # their own signals and exit are "signal" and "sidecar_exit".
        "good: sidecar SIGTERMed, its stubborn tree killed after the grace, then the next": (
            [st(0, "s.1", 1, "sidecar"), fault(1, "sigterm-leader", "s.1"), ev(1, "signal", "s.1", sig="SIGTERM"),
             ev(1.8, "stopped", "s.1"), ev(1.85, "sidecar_exit", "s.1", rc=0), st(1.9, "b.1", 2)],
            ok_samples(0, 6), 0),
        "good: sidecar frozen past its lease, its tree gone before the lease ends": (
            [st(0, "s.1", 1, "sidecar"), fault(5, "sigstop-long", "s.1", began=1), ev(3.8, "stopped", "s.1"),
             st(4.2, "b.1", 2)], ok_samples(0, 10), 0),
        "sidecar frozen: a fenced overlap is no excuse (its watchdog must act)": (
            [st(0, "s.1", 1, "sidecar"), fault(5, "sigstop-long", "s.1", began=1), st(4.2, "b.1", 2),
             ev(4.5, "stopped", "s.1")], ok_samples(0, 10), 1),
        "sidecar frozen: its tree outlives SIGSTOP + lease, nobody led yet": (
            [st(0, "s.1", 1, "sidecar"), fault(5, "sigstop-long", "s.1", began=1), ev(4.3, "stopped", "s.1"),
             st(4.5, "b.1", 2)], ok_samples(0, 10), 1),
        "sidecar SIGKILLed: its term is its tree's, not the sidecar's life": (
            [st(0, "s.1", 1, "sidecar"), fault(1, "sigkill-leader", "s.1"), ev(1, "signal", "s.1", sig="SIGKILL"),
             ev(1.1, "sidecar_exit", "s.1", rc=-9), st(3.9, "b.1", 2), ev(4.5, "stopped", "s.1")],
            ok_samples(0, 6), 1),
        "sidecar partitioned: its tree outlives the partition's start + lease": (
            [st(0, "s.1", 1, "sidecar"), fault(5, "partition-long", "s.1", began=1), ev(4.2, "stopped", "s.1"),
             st(4.3, "b.1", 2)], ok_samples(0, 10), 1),
        "a sidecar's worker process outside its tree's logged term": (
            [st(0, "s.1", 1, "sidecar"), ev(1, "stopped", "s.1"), st(1.5, "b.1", 2),
             ev(2, "tree_late", "s.1", term="1", pid=42, role="grandchild", start_ns=int(0.5 * S), tree_start_ns=0,
                tree_stopped_ns=int(1 * S))], ok_samples(0, 3), 1),
        "good: admin-delete, the sidecar's tree ends within retry + grace": (
            [st(0, "s.1", 4, "sidecar"), fault(2, "admin-delete", "s.1"), st(2.5, "b.1", 0),
             ev(3.9, "stopped", "s.1")], ok_samples(0, 2) + [(int(x * 0.2 * S), "absent", "404") for x in
                                                            range(10, 12)] + ok_samples(2.4, 6), 0),
        "admin-delete: the sidecar's tree ends later than retry + grace": (
            [st(0, "s.1", 4, "sidecar"), fault(2, "admin-delete", "s.1"), st(2.5, "b.1", 0),
             ev(4.5, "stopped", "s.1")], ok_samples(0, 2) + [(int(x * 0.2 * S), "absent", "404") for x in
                                                            range(10, 12)] + ok_samples(2.4, 6), 1),
        # client-go taking over an unexpired lease: expected only with the
        # audit log's evidence (the 4th element: the Lease's writes).
        "good: client-go took over an unexpired lease 410 ms early (audit)": early_good,
        "client-go early take-over, no audit log": (sc_early(), ok_samples(0, 10), 1, None),
        "client-go early take-over, no clock offset in the event log": (
            sc_early(offset=False), ok_samples(0, 10), 1, sc_writes),
        "client-go early take-over, not fenced": (sc_early(go_tok=5), ok_samples(0, 10), 1, sc_writes),
        "client-go early take-over, the holder led past its own lease": (
            sc_early(sc_end=3.99), ok_samples(0, 10), 1, sc_writes),
        "client-go early take-over, the last write an admin's": (
            sc_early(), ok_samples(0, 10), 1, sc_writes[:3] + [wr(1.9, 1.91, "", user="admin")] + sc_writes[3:]),
        "client-go early take-over, the take-over write another peer's": (
            sc_early(), ok_samples(0, 10), 1, sc_writes[:3] + [wr(3.50, 3.55, "peer/go-2")]),
        "client-go took over after the lease ran out, the holder led on": (
            lh_late, ok_samples(0, 10), 1, [wr(-0.06, -0.05, verb="create"), wr(0.49, 0.5), wr(3.55, 3.6, G1)]),
        "client-go took over 2 s early (a release, not a missed second)": (
            lh_release, ok_samples(0, 10), 1, [wr(-0.06, -0.05, verb="create"), wr(0.49, 0.5), wr(1.45, 1.5, G1)]),
    }
    failed = 0
    for name, (events, samples, want, *rest) in cases.items():
        report, violations, expected = check(events, samples, t, slack, end_ns=int(10 * S),
                                             writes=rest[0] if rest else None)
        ok = (len(violations) == 0) if want == 0 else (len(violations) >= 1)
        print("%-62s violations=%d expected=%d %s" % (name, len(violations), len(expected),
                                                      "ok" if ok else "WRONG (want %s)" % ("0" if not want else ">0")))
        for v in violations:
            print("    " + v)
        failed += not ok
    # The good pause case must count its overlap as expected, not silently.
    _, _, expected = check(pause, ok_samples(0, 10), t, slack, end_ns=int(10 * S))
    if len(expected) != 1:
        print("the fenced overlap was not reported as expected")
        failed += 1
    # The early take-over is counted as such, with its numbers.
    report, _, expected = check(*early_good[:2], t, slack, end_ns=int(10 * S), writes=early_good[3])
    got = report["client_go_early_takeover_list"]
    if (report["client_go_early_takeovers"] != 1 or len(expected) != 1 or "unexpired lease" not in expected[0] or
            got[0]["early_ms"] != 410.0 or got[0]["takeover_after_last_write_ms"] != 2590.0):
        print("the client-go early take-over was not reported as such: %s %s" % (report, expected))
        failed += 1
    failed += selftest_audit()
    failed += selftest_trees(t, slack)
    print("torture checker selftest: %s" % ("ok" if not failed else "%d cases wrong" % failed))
    return 0 if not failed else 1


def selftest_audit():
    """read_lease_writes on hand-made audit files: successful writes of the
    Lease only (not a 409, a get, a watch's ResponseStarted or another
    Lease's), one per auditID across a rotated file and the current one,
    exact microseconds, sorted by completion. Returns the number of failures."""
    import tempfile

    def line(aid, verb, code, ua, recv, done, name="torture-1", stage="ResponseComplete", user="elector"):
        return json.dumps({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": aid, "stage": stage,
            "requestURI": "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (F.NS, name), "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["127.0.0.1"],
            "userAgent": ua, "objectRef": {"resource": "leases", "namespace": F.NS, "name": name,
                                           "apiGroup": "coordination.k8s.io", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": "2026-11-26T10:21:%sZ" % recv,
            "stageTimestamp": "2026-11-26T10:21:%sZ" % done}) + "\n"
    rotated = [line("a1", "create", 201, "leasehold/0.9.0", "50.000100", "50.004200"),
               line("a2", "update", 200, "peer/go-1", "51.123456", "51.130001")]
    current = [line("a2", "update", 200, "peer/go-1", "51.123456", "51.130001"),  # logged again
               line("a3", "update", 409, "peer/go-2", "51.200000", "51.201000"),
               line("a4", "get", 200, "peer/go-2", "51.300000", "51.301000"),
               line("a5", "update", 200, "leasehold/0.9.0", "51.400000", "51.402000", name="other"),
               line("a6", "watch", 200, "leasehold/0.9.0", "51.500000", "51.500300", stage="ResponseStarted"),
               line("a7", "delete", 200, "", "52.000000", "52.000500", user="admin")]
    with tempfile.TemporaryDirectory(prefix="torture-selftest-audit.") as d:
        with open(os.path.join(d, "audit-2026-11-26T10-21-51.000.log"), "w") as f:
            f.writelines(rotated)
        with open(os.path.join(d, "audit.log"), "w") as f:
            f.writelines(current)
        got = read_lease_writes(d, "torture-1")
    base = calendar.timegm((2026, 11, 26, 10, 21, 0, 0, 0, 0)) * 1_000_000_000
    want = [("a1", "create", 201, "leasehold/0.9.0", base + 50_000_100_000, base + 50_004_200_000),
            ("a2", "update", 200, "peer/go-1", base + 51_123_456_000, base + 51_130_001_000),
            ("a7", "delete", 200, "", base + 52_000_000_000, base + 52_000_500_000)]
    ok = [(w["audit_id"], w["verb"], w["code"], w["ua"], w["received"], w["done"]) for w in got] == want
    print("%-62s %s" % ("audit log: the Lease's successful writes, once each", "ok" if ok else "WRONG: %s" % got))
    return not ok


def selftest_trees(t, slack):
    """SidecarTrees on real processes: a proctree setsid worker (worker +
    grandchild) gives one started (its first start) and one stopped (its
    last pidfd exit); a start file of a closed tree gives tree_late, which
    the checker flags; a pid seen again with another starttime is a new
    process. Returns the number of failures."""
    import tempfile
    bad = 0
    with tempfile.TemporaryDirectory(prefix="torture-selftest.") as d:
        log = F.EventLog()
        obs = TreeObserver(d).start()
        trees = SidecarTrees(obs, log)
        trees.start()
        env = dict(os.environ, LEASEHOLD_IDENTITY="sc-9.1", LEASEHOLD_TERM="4")
        w = subprocess.Popen([sys.executable, PROCTREE, "worker", "setsid", d], env=env)
        seen = obs.wait(lambda ps: len(ps) >= 2 and ps, 10)
        obs.kill_all()
        w.wait()
        closed = log.wait(lambda evs: [e for e in evs if e["event"] == "stopped"], 5)
        procs = obs.snapshot()
        evs = log.snapshot()
        started = [e for e in evs if e["event"] == "started"]
        ok = (bool(seen) and bool(closed) and len(started) == 1 and len(closed) == 1 and len(procs) == 2 and
              started[0]["mono_ns"] == ns_of(min(p["start"] for p in procs)) and started[0]["transitions"] == 4 and
              started[0]["proc"] == "sc-9.1" and closed[0]["mono_ns"] == ns_of(max(p["end"] for p in procs)) and
              all(p["end_how"] == "pidfd" for p in procs) and not [n for n in os.listdir(d) if n.endswith(".start")])
        bad += not ok
        print("%-62s %s" % ("sidecar trees: setsid worker -> one started, one stopped", "ok" if ok else
                            "WRONG: %s / %s" % (procs, evs)))
        # A late process of the closed tree, and a reused pid (another starttime).
        q = subprocess.Popen(["true"])
        q.wait()

        def start_file(starttime, role):  # renamed into place, as workers do
            proctree.put_start(d, q.pid, dict(pid=q.pid, identity="sc-9.1", term="4", start=proctree.now(),
                                              starttime=starttime, kind="synthetic", role=role))
        for starttime in (1, 2):
            start_file(starttime, "late")
            obs.wait(lambda ps: len([p for p in ps if p["pid"] == q.pid]) >= starttime, 5)
        late = log.wait(lambda evs: len([e for e in evs if e["event"] == "tree_late"]) >= 2 and evs, 5)
        # The Lease is deleted and re-created: leaseTransitions starts over,
        # and the same sidecar may hold token 4 again. That is a new tree.
        trees.lease_deleted(proctree.now())
        start_file(3, "worker")
        again = log.wait(lambda evs: len([e for e in evs if e["event"] == "started"]) >= 2 and evs, 5)
        trees.finish(patience_s=1)
        _, violations, _ = check(log.snapshot(), [], t, slack, end_ns=F.mono_ns())
        ok = bool(late) and len([v for v in violations if "outside the term logged" in v]) == 2
        bad += not ok
        print("%-62s %s" % ("sidecar trees: late processes flagged, a reused pid seen twice",
                            "ok" if ok else "WRONG: %s" % violations))
        ok = bool(again) and len([e for e in log.snapshot() if e["event"] == "tree_late"]) == 2
        bad += not ok
        print("%-62s %s" % ("sidecar trees: the same token after an admin-delete is a new tree",
                            "ok" if ok else "WRONG: %s" % log.snapshot()))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="run", choices=["run", "check", "selftest"])
    ap.add_argument("file", nargs="?", help="check: the event log")
    ap.add_argument("--bin", help="testenv bin dir (testenv, kube-apiserver, peer, faultproxy)")
    ap.add_argument("--candidate", help="path of leasehold_candidate")
    ap.add_argument("--leasehold", help="the leasehold CLI the sidecar members run (default: leasehold in the "
                    "directory above --candidate's)")
    ap.add_argument("--dir", help="state dir: the control plane (DIR/testenv), logs, summary")
    ap.add_argument("--duration", type=int, default=600, help="seconds of rounds (default 600; every kind runs once)")
    ap.add_argument("--rounds", type=int, default=0, help="a number of rounds instead of --duration")
    ap.add_argument("--seed", type=int, default=None, help="fault schedule seed (default random, printed)")
    ap.add_argument("--timings", type=F.Timings.parse, default=F.Timings.parse("3s/2s/500ms"),
                    help="LEASE/RENEW/RETRY for every candidate (default 3s/2s/500ms)")
    ap.add_argument("--slack-ms", type=float, default=1000,
                    help="added to the liveness and stop bounds for scheduling on a loaded machine (default 1000)")
    ap.add_argument("--steer", type=float, default=0.3,
                    help="chance per round, when leasehold leads, of a SIGTERM with the leasehold followers frozen "
                    "(a hand-over to client-go) instead of the scheduled fault (default 0.3)")
    ap.add_argument("--lease-log", help="check: the Lease samples (DIR/torture-lease.jsonl)")
    ap.add_argument("--audit", help="check: the Lease's writes, DIR/torture-audit-writes.jsonl or a testenv state "
                    "dir with audit*.log (default: either, next to the event log)")
    ap.add_argument("--keep", action="store_true", help="leave the control plane running at the end")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if args.mode == "selftest":
        return mode_selftest(args)
    if args.mode == "check":
        if not args.file:
            ap.error("check needs FILE")
        return mode_check(args)
    return mode_run(args)


if __name__ == "__main__":
    sys.exit(main())
