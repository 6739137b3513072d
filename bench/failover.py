#!/usr/bin/env python3
"""Failover and API-cost benchmark: leasehold against client-go, one run, one
control plane (`make bench-failover`).

Both implementations run as processes side by side: leasehold_candidate
(tests/integration/candidate.cc) and the client-go peer (testenv/peer), as two
candidates of each on two Leases, with the same timings. Every number comes from
the candidates' CLOCK_MONOTONIC event lines or from the kube-apiserver audit log.

  graceful  SIGTERM to the leader (it stops its work and releases the Lease)
            -> the other candidate printed "started". --graceful-trials per
            implementation, at the defaults 15s/10s/2s.
  crash     SIGKILL of the leader at a random phase of its renewals -> the other
            started, minus the lease duration. --crash-trials at
            --crash-timings (default 3s/2s/500ms), and --default-crash-trials at
            15s/10s/2s.
  lateness  the same --crash-timings trials, from the kube-apiserver audit log
            alone: take-over past the expiry the follower observed
            (crash_takeover_lateness_*, see takeover_lateness()).
  requests  kube-apiserver requests per minute for one highly available
            Lease: 3 candidates of each implementation (1 leader, 2 standbys)
            on its own Lease, counted from DIR/audit.log (every candidate has
            its own user and token, so the audit log tells them apart), over
            --rate-seconds of steady state at 15s/10s/2s. ha_lease_requests_per_min
            is the sum of the three users; leader_requests_per_min is the
            leader's, follower_requests_per_min one follower's (the mean of the
            two).

Writes --out (default bench/results/failover.json): a `leasehold` and a
`client_go` object with the same keys, plus the raw samples; prints a table.
Percentiles are nearest-rank (p99 of 50 samples is the largest but none).
"""
import argparse
import glob
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import fleet as F  # noqa: E402  (the shared candidate and event-log code)

DEFAULTS = F.Timings(15000, 10000, 2000)
IMPLS = {"leasehold": ("lh-a", "lh-b"), "client_go": ("go-a", "go-b")}
# The request count's highly available Lease: the pair and one more standby.
HA = {"leasehold": ("lh-a", "lh-b", "lh-c"), "client_go": ("go-a", "go-b", "go-c")}
IMPL_KIND = {"leasehold": "leasehold", "client_go": "client-go"}


def pct(xs, p):
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return round(s[k], 1)


# ---------------------------------------------------------------- control plane

class ControlPlane:
    def __init__(self, args):
        self.args, self.dir = args, args.dir
        self.server, self.admin_token = None, None

    def up(self):
        te = os.path.join(self.args.bin, "testenv")
        subprocess.check_call([te, "up", "--dir", self.dir, "--bin", self.args.bin], stdout=subprocess.DEVNULL)
        self.server, self.admin_token = F.kube_admin(self.args)

    def down(self):
        subprocess.call([os.path.join(self.args.bin, "testenv"), "down", "--dir", self.dir],
                        stdout=subprocess.DEVNULL)

    def request(self, method, path, body=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "pki", "ca.crt"))
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + self.admin_token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return json.loads(r.read() or b"{}")

    def add_users(self, names):
        """One static-token user per candidate, bound to the elector Role.
        kube-apiserver reads --token-auth-file at start, so it is restarted."""
        tokens = {n: os.urandom(24).hex() for n in names}
        with open(os.path.join(self.dir, "pki", "tokens.csv"), "a") as f:
            for i, n in enumerate(names):
                f.write("%s,%s,uid-bench-%d\n" % (tokens[n], n, i))
        subprocess.check_call([os.path.join(self.args.bin, "testenv"), "restart", "--dir", self.dir,
                               "kube-apiserver"], stdout=subprocess.DEVNULL)
        self.server, self.admin_token = F.kube_admin(self.args)
        self.request("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings" % F.NS, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "bench-candidates"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leasehold-elector"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": n} for n in names]})
        src = open(os.path.join(self.dir, "kubeconfig-elector")).read()
        elector_token = F.token_of(self.args, "elector")
        for n in names:
            path = os.path.join(self.dir, "kubeconfig-" + n)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(src.replace(elector_token, tokens[n]))


# ---------------------------------------------------------------- one pair

class Pair:
    """Candidates of one implementation on their own Lease: two (IMPLS), or
    the three of HA for the request count. Each base runs as user bench-BASE."""

    def __init__(self, args, impl, timings, tag, bases=None):
        self.args, self.impl, self.timings = args, impl, timings
        self.bases = bases or IMPLS[impl]
        self.mu, self.closed = threading.Lock(), False
        self.log = F.EventLog(os.path.join(args.dir, "bench-%s-%s.jsonl" % (tag, impl)))
        self.fleet = F.Fleet(args, F.unique_lease("bench-%s-%s" % (tag, impl.replace("_", ""))), timings, self.log,
                             kubeconfig_for=lambda base: os.path.join(args.dir, "kubeconfig-bench-" + base))
        for base in self.bases:
            self.spawn(base)

    def spawn(self, base):
        """Starts a new incarnation of base, unless close() began (a trial
        thread still running when the run is stopped starts nothing more)."""
        with self.mu:
            if not self.closed:
                self.fleet.spawn(base, IMPL_KIND[self.impl])

    def settle(self, timeout_s=60):
        return self.log.wait(lambda evs: F.settled(self.fleet, evs), timeout_s)

    def leader_base(self, leader):
        return [b for b, c in self.fleet.running.items() if c.proc == leader][0]

    def started_after(self, not_proc, t0, timeout_s):
        def pred(evs):
            for e in reversed(evs):
                if e["mono_ns"] < t0:
                    break
                if e["event"] == "started" and e["proc"] != not_proc:
                    return e
            return None
        return self.log.wait(pred, timeout_s)

    def close(self):
        with self.mu:
            self.closed = True
        self.fleet.stop_all()
        self.log.close()


def user_of(proc):
    """The kube-apiserver user of a candidate incarnation: BASE.N runs as bench-BASE."""
    return "bench-" + proc.rsplit(".", 1)[0]


def run_trials(args, pair, kind, n, rng, out, errors, trials):
    """graceful: SIGTERM the leader; crash: SIGKILL it. Appends ms to out, and
    to trials what the audit log needs to find the trial again: the Lease, the
    victim's and the successor's users and the wall time of the kill."""
    t = pair.timings
    for i in range(n):
        leader = pair.settle()
        if not leader:
            errors.append("%s %s trial %d: no settled leader within 60 s" % (pair.impl, kind, i + 1))
            return
        # A random phase against the renewals and the followers' polls.
        time.sleep(rng.uniform(0.2, 0.2 + 2.2 * t.retry_ms / 1e3))
        base = pair.leader_base(leader)
        victim = pair.fleet.running[base]
        wall = time.time()  # kube-apiserver stamps its audit log with this clock; taken before the signal
        ev = victim.signal(signal.SIGKILL if kind == "crash" else signal.SIGTERM)
        limit = (t.lease_ms + 6 * t.retry_ms) / 1e3 + 10
        got = pair.started_after(leader, ev["mono_ns"], limit)
        if not got:
            errors.append("%s %s trial %d: nobody started within %.0f s" % (pair.impl, kind, i + 1, limit))
            return
        gap_ms = F.ms(got["mono_ns"] - ev["mono_ns"])
        out.append(round(gap_ms - (t.lease_ms if kind == "crash" else 0), 2))
        trials.append({"trial": i + 1, "lease": pair.fleet.lease, "leader_user": user_of(leader),
                       "follower_user": user_of(got["proc"]), "signal_wall": wall, "ms": out[-1]})
        if not victim.wait_exit(30):
            victim.kill_now()
        pair.spawn(base)
        print("  %-9s %-8s trial %2d/%d: %8.1f ms" % (pair.impl, kind, i + 1, n, out[-1]), flush=True)


def side_by_side(args, tag, timings, kind, n, seed):
    """Runs n trials of kind for both implementations at once (same load)."""
    pairs = {}
    samples = {impl: [] for impl in IMPLS}
    trials = {impl: [] for impl in IMPLS}
    errors = []
    try:
        for impl in IMPLS:
            pairs[impl] = Pair(args, impl, timings, tag)
        threads = [threading.Thread(target=run_trials, args=(args, pairs[impl], kind, n, random.Random(seed + k),
                                                            samples[impl], errors, trials[impl]), daemon=True)
                   for k, impl in enumerate(IMPLS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        for p in pairs.values():
            p.close()
    # The fleet checker over each pair's log: no two leaders in any trial.
    for impl, p in pairs.items():
        report, violations = F.check(p.log.events, timings.bound_ns(10000))
        for v in violations:
            if "two leaders" in v:
                errors.append("%s %s: %s" % (impl, kind, v))
    return samples, errors, trials


# ---------------------------------------------------------------- request rates

def read_audit(d, users):
    """[(wall_ts, user, verb, resource, name, code, user_agent)] of the given
    users, one per request (auditID), from every audit file of the state dir:
    kube-apiserver rotates audit.log at 100 MB into audit-TIMESTAMP.log, which
    1,000 Leases renewed every 2 s reach in minutes. A watch logs
    ResponseStarted, then ResponseComplete: the last code seen is kept."""
    seen = {}
    for path in sorted(glob.glob(os.path.join(d, "audit*.log"))):
        with open(path) as f:
            for line in f:
                if not any(u in line for u in users):
                    continue  # cheap: most lines are other users'
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                user = e.get("user", {}).get("username")
                if user not in users:
                    continue
                ts = e.get("requestReceivedTimestamp", "")
                try:
                    t = datetime.strptime(ts[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
                except ValueError:
                    continue
                ref = e.get("objectRef", {})
                code = e.get("responseStatus", {}).get("code")
                prev = seen.get(e["auditID"])
                seen[e["auditID"]] = (t.timestamp(), user, e.get("verb"), ref.get("resource"), ref.get("name"),
                                      code if code is not None else (prev[5] if prev else None),
                                      e.get("userAgent", "").split(" ")[0])
    return list(seen.values())


def audit_counts(d, users, wall0, wall1):
    """Requests per user received between two wall times, by verb, and each
    user's User-Agents (from read_audit)."""
    counts = {u: {} for u in users}
    agents = {u: set() for u in users}
    for ts, user, verb, _, _, _, ua in read_audit(d, users):
        if wall0 <= ts < wall1:
            counts[user][verb] = counts[user].get(verb, 0) + 1
            agents[user].add(ua)
    return counts, agents


def wall_of(ts):
    """Seconds since the epoch of an audit timestamp (RFC 3339, microseconds), or None."""
    try:
        return datetime.strptime(ts[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def lease_requests(d, users, leases):
    """The given users' requests on the given Leases from every audit file of
    the state dir, one dict per auditID: user, verb, lease (None for a watch
    of the whole namespace), code, received (requestReceivedTimestamp),
    started (a watch's ResponseStarted stageTimestamp), done (the
    stageTimestamp of ResponseComplete: None while a watch is still open).
    Wall-clock seconds of kube-apiserver's clock, microsecond resolution."""
    reqs = {}
    for path in sorted(glob.glob(os.path.join(d, "audit*.log"))):
        with open(path) as f:
            for line in f:
                if not any(u in line for u in users) or \
                        not ('"watch"' in line or any(n in line for n in leases)):
                    continue  # cheap: most lines are other users' or other Leases'
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                ref = e.get("objectRef", {})
                user = e.get("user", {}).get("username")
                if user not in users or ref.get("resource") != "leases" or \
                        ref.get("name") not in leases and not (e.get("verb") == "watch" and not ref.get("name")):
                    continue
                r = reqs.setdefault(e["auditID"], {"user": user, "verb": e.get("verb"), "lease": ref.get("name"),
                                                   "code": None, "received": wall_of(e.get("requestReceivedTimestamp")),
                                                   "started": None, "done": None})
                if e.get("stage") == "ResponseStarted":
                    r["started"] = wall_of(e.get("stageTimestamp"))
                elif e.get("stage") == "ResponseComplete":
                    r["done"] = wall_of(e.get("stageTimestamp"))
                code = e.get("responseStatus", {}).get("code")
                if code is not None:
                    r["code"] = code
    return sorted((r for r in reqs.values() if r["received"] is not None),
                  key=lambda r: r["done"] if r["done"] is not None else float("inf"))


def takeover_lateness(d, timings, trials):
    """Crash take-over lateness past the expiry the follower observed, from
    the kube-apiserver audit log alone (one clock, no mapping), for the
    crash trials of run_trials: {impl: [ms]}, {impl: [per-trial detail]},
    errors. Per trial, with every instant the stageTimestamp of a
    ResponseComplete audit event (kube-apiserver's wall clock, microseconds):

      takeover     the follower's (the one that printed started) first
                   successful update (code 200) of the Lease received after
                   the kill.
      last renew   the killed leader's last successful write of the Lease
                   received before the take-over (an update, code 200, or
                   the create, 201, that won a new Lease when the kill came
                   before the first renewal): the last renewal the follower
                   could see. Its replacement incarnation, the same user, is
                   started only after the take-over.
      observed     when the follower saw that renewal. A follower with a watch
                   open on the Lease (or on all Leases of the namespace) at
                   that instant, as leasehold's followers have: the renewal's
                   completion. A follower without one (client-go polls): the
                   completion of its first GET of the Lease that completed
                   after the renewal completed.
      lateness     takeover - (observed + lease duration of the timings), ms.

    Known errors. The watch event's delivery to the follower (kube-apiserver's
    watch cache -> the follower decodes it) is not in the audit log: a
    watching follower sees the renewal that much after its completion, so
    its observed expiry is that much later and the lateness here overstates
    its own by that latency (unmeasured: the watch cache's dispatch, one TLS
    write and the decode; longer when the machine is loaded). The event may
    also leave before the renewal's response is complete: a little the other
    way. A polling follower has the GET's answer a little after the audit
    log's completion: overstated the same way. A GET that overlapped the
    renewal counts as having seen it, though it may have read the version
    before (then the follower's real observation came one poll later:
    overstated again). A trial whose follower had no watch open at the last
    renewal (a leasehold incarnation started just before it, whose first GET
    is its observation) takes the GET rule and says so in observed_by. The
    take-over includes the write's round trip (takeover_write_ms): lateness
    runs to the write's completion, when the other candidates can see it, so
    it counts the write's latency too.

    A negative lateness is a take-over before the expiry by this rule.
    client-go does that at sub-second retry periods: its follower restarts
    its observation only when the record it reads differs from the last one
    as JSON, and a LeaderElectionRecord's times are whole seconds
    (metav1.Time), so a renewal in the same second as the one it last saw is
    no observation for it; it may take over up to ~1 s before the holder's
    lease ends. takeover_past_renewal_expiry_ms (take-over - (last renewal's
    completion + lease duration)) shows it per trial: negative, the follower
    wrote before the killed holder's own lease had run out."""
    users = {t[k] for ts in trials.values() for t in ts for k in ("leader_user", "follower_user")}
    leases = {t["lease"] for ts in trials.values() for t in ts}
    reqs = lease_requests(d, users, leases) if users else []
    lease_s = timings.lease_ms / 1e3
    out, detail, errors = {impl: [] for impl in trials}, {impl: [] for impl in trials}, []
    for impl, ts in trials.items():
        for t in ts:
            on = [r for r in reqs if r["lease"] == t["lease"] and r["done"] is not None]
            take = next((r for r in on if r["user"] == t["follower_user"] and r["verb"] == "update" and
                         r["code"] == 200 and r["received"] >= t["signal_wall"]), None)
            if not take:
                errors.append("%s crash trial %d: no successful update by %s after the kill in the audit log" %
                              (impl, t["trial"], t["follower_user"]))
                continue
            renew = [r for r in on if r["user"] == t["leader_user"] and (r["verb"], r["code"]) in
                     (("update", 200), ("create", 201)) and r["received"] < take["received"]]
            if not renew:
                errors.append("%s crash trial %d: no successful write by %s before the take-over" %
                              (impl, t["trial"], t["leader_user"]))
                continue
            last = renew[-1]
            watches = [r for r in reqs if r["user"] == t["follower_user"] and r["verb"] == "watch" and
                       r["lease"] in (None, t["lease"]) and (r["started"] or r["received"]) <= last["done"] and
                       (r["done"] is None or r["done"] > last["done"])]
            gets = [r for r in on if r["user"] == t["follower_user"] and r["verb"] == "get" and
                    last["done"] < r["done"] <= take["done"]]
            if watches:
                observed, by = last["done"], "watch"
            elif gets:
                observed, by = gets[0]["done"], "get"
            else:
                errors.append("%s crash trial %d: %s neither watched nor read the Lease after the last renewal" %
                              (impl, t["trial"], t["follower_user"]))
                continue
            late = round((take["done"] - (observed + lease_s)) * 1e3, 2)
            out[impl].append(late)
            rel = lambda x: round((x - t["signal_wall"]) * 1e3, 2)  # ms after the kill (harness clock)
            detail[impl].append({"trial": t["trial"], "lateness_ms": late, "observed_by": by,
                                 "last_renewal_done_ms": rel(last["done"]), "observed_ms": rel(observed),
                                 "takeover_done_ms": rel(take["done"]),
                                 "takeover_write_ms": round((take["done"] - take["received"]) * 1e3, 2),
                                 "takeover_past_renewal_expiry_ms": round((take["done"] - last["done"] - lease_s) * 1e3,
                                                                          2),
                                 "follower_gets_before_takeover": len(gets),
                                 "leader_user": t["leader_user"], "follower_user": t["follower_user"]})
    return out, detail, errors


def graceful_breakdown(d, trials):
    """Where a graceful failover's time goes, per graceful trial of
    run_trials, from the audit log: {impl: [per-trial detail]}, errors.

      takeover     the successor's first successful update of the Lease
                   received after the SIGTERM (its wall time is stamped just
                   before the signal is sent): its take-over.
      release      the victim's last successful update received before the
                   take-over: its release (the victim's next incarnation,
                   the same user, writes only after the take-over; picking
                   the victim's first write after the stamp instead could
                   miss a release that beat the stamp).
      server_ms    the two writes' durations in kube-apiserver (received ->
                   ResponseComplete): what any client pays, the floor of a
                   release-then-take-over hand-over on this control plane.
      gap_ms       release complete -> take-over received: the release's
                   delivery to the successor (its watch event or, for a
                   polling successor, its next poll) and the successor's
                   decision; below 0 when the event overtook that stamp.
      client_ms    the trial's total (SIGTERM -> "started", harness clock)
                   minus server_ms: everything else, the gap included. Both
                   are differences on one clock each, so no clock mapping.

    A trial whose writes the audit log does not show (a victim that died
    before writing) is reported as an error and left out."""
    users = {t[k] for ts in trials.values() for t in ts for k in ("leader_user", "follower_user")}
    leases = {t["lease"] for ts in trials.values() for t in ts}
    reqs = lease_requests(d, users, leases) if users else []
    detail, errors = {impl: [] for impl in trials}, []
    for impl, ts in trials.items():
        for t in ts:
            on = [r for r in reqs if r["lease"] == t["lease"] and r["done"] is not None and
                  r["verb"] == "update" and r["code"] == 200]
            take = next((r for r in on if r["user"] == t["follower_user"] and
                         r["received"] >= t["signal_wall"]), None)
            rel = take and next((r for r in reversed(on) if r["user"] == t["leader_user"] and
                                 r["received"] < take["received"]), None)
            if not rel:
                errors.append("%s graceful trial %d: no %s in the audit log" %
                              (impl, t["trial"], "take-over" if not take else "release before the take-over"))
                continue
            server = (rel["done"] - rel["received"] + take["done"] - take["received"]) * 1e3
            detail[impl].append({"trial": t["trial"], "total_ms": t["ms"], "server_ms": round(server, 2),
                                 "release_write_ms": round((rel["done"] - rel["received"]) * 1e3, 2),
                                 "takeover_write_ms": round((take["done"] - take["received"]) * 1e3, 2),
                                 "gap_ms": round((take["received"] - rel["done"]) * 1e3, 2),
                                 "client_ms": round(t["ms"] - server, 2)})
    return detail, errors


def graceful_split(detail):
    """The percentiles of one implementation's graceful_breakdown() detail,
    under their failover.json keys."""
    server, rest = [x["server_ms"] for x in detail], [x["client_ms"] for x in detail]
    return {"graceful_server_writes_p50_ms": pct(server, 50), "graceful_server_writes_p99_ms": pct(server, 99),
            "graceful_client_share_p50_ms": pct(rest, 50), "graceful_client_share_p99_ms": pct(rest, 99)}


def proc_cpu_s(pid):
    """utime + stime of one process (all its threads) in seconds, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def request_rates(args, seconds):
    """kube-apiserver requests per minute for one highly available Lease per
    implementation: its 3 candidates (HA: 1 leader, 2 standbys), each its own
    user, counted from the audit log over `seconds` of steady state. Returns
    ({impl: {"leader", "follower", "followers", "ha_lease"}}, window s,
    implementations whose leadership changed in the window). "follower" is
    one standby's: the mean of the two."""
    pairs = {}
    try:
        for impl in IMPLS:
            pairs[impl] = Pair(args, impl, DEFAULTS, "rates", bases=HA[impl])
        roles = {}
        for impl, p in pairs.items():
            leader = p.settle(60)
            if not leader:
                raise RuntimeError("%s: no settled leader for the request-rate window" % impl)
        time.sleep(2 * DEFAULTS.retry_ms / 1e3)  # past the start-up requests
        terms_before = {impl: sum(e["event"] == "started" for e in p.log.snapshot()) for impl, p in pairs.items()}
        for impl, p in pairs.items():
            lb = p.leader_base(F.current_leader(p.log.snapshot()))
            roles[impl] = {"leader": "bench-" + lb, "followers": ["bench-" + b for b in HA[impl] if b != lb]}
        wall0 = time.time()
        print("  counting kube-apiserver requests for %d s, 3 candidates per Lease (leaders %s)" %
              (seconds, ", ".join(r["leader"] for r in roles.values())), flush=True)
        time.sleep(seconds)  # real time: the window
        wall1 = time.time()
        changed = [impl for impl, p in pairs.items()
                   if sum(e["event"] == "started" for e in p.log.snapshot()) != terms_before[impl]]
    finally:
        for p in pairs.values():
            p.close()
    time.sleep(2.5)  # audit batches are flushed every second
    users = [u for r in roles.values() for u in [r["leader"]] + r["followers"]]
    counts, agents = audit_counts(args.dir, users, wall0, wall1)
    per_min = lambda n: round(n * 60.0 / (wall1 - wall0), 1)

    def one(user, role):
        c = counts[user]
        return {"role": role, "user": user, "per_min": per_min(sum(c.values())), "by_verb": c,
                "user_agent": sorted(agents[user])}

    out = {}
    for impl, r in roles.items():
        leader = one(r["leader"], "leader")
        followers = [one(u, "follower") for u in r["followers"]]
        ha_verbs = {}
        for x in [leader] + followers:
            for verb, n in x["by_verb"].items():
                ha_verbs[verb] = ha_verbs.get(verb, 0) + n
        fverbs = {}
        for x in followers:
            for verb, n in x["by_verb"].items():
                fverbs[verb] = round(fverbs.get(verb, 0) + n / len(followers), 1)
        out[impl] = {
            "leader": leader,
            "follower": {"per_min": round(sum(x["per_min"] for x in followers) / len(followers), 1),
                         "by_verb": fverbs},
            "followers": followers,
            "ha_lease": {"per_min": per_min(sum(ha_verbs.values())), "by_verb": ha_verbs,
                         "candidates": 1 + len(followers)},
        }
    return out, (wall1 - wall0), changed


def run_end(doc, out, errors):
    """The last lines every bench script prints (load, time taken, where the
    JSON went, each error); its exit status: 1 if there were errors."""
    print("load average before/after: %s / %s on %d CPUs; took %.0f s; wrote %s" %
          (doc["meta"]["loadavg_before"], doc["meta"]["loadavg_after"], os.cpu_count(), doc["meta"]["took_s"], out))
    for e in errors:
        print("ERROR " + e)
    return 1 if errors else 0


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="testenv bin dir (testenv, peer)")
    ap.add_argument("--candidate", required=True, help="path of leasehold_candidate")
    ap.add_argument("--dir", default="build/bench-testenv", help="state dir of the control plane this run starts")
    ap.add_argument("--out", default="bench/results/failover.json")
    ap.add_argument("--graceful-trials", type=int, default=100,
                    help="per implementation (issue 15 asks for at least 100); 0 skips")
    ap.add_argument("--crash-trials", type=int, default=100,
                    help="per implementation, at --crash-timings (100: p99 is the 99th of 100, not the largest); 0 skips")
    ap.add_argument("--crash-timings", type=F.Timings.parse, default=F.Timings(3000, 2000, 500))
    ap.add_argument("--default-crash-trials", type=int, default=5,
                    help="SIGKILL trials at 15s/10s/2s (~20 s each, both implementations at once); 0 skips")
    ap.add_argument("--rate-seconds", type=int, default=120, help="0 skips the request count")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    args.dir = os.path.abspath(args.dir)
    args.candidate = os.path.abspath(args.candidate)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    for path in (args.candidate, os.path.join(args.bin, "peer"), os.path.join(args.bin, "testenv")):
        if not os.access(path, os.X_OK):
            print("failover bench: %s is missing (make build; testenv/build.sh)" % path)
            return 1
    t_start = time.monotonic()
    load_before = os.getloadavg()
    cp = ControlPlane(args)
    print("failover bench: seed %d, control plane in %s" % (seed, args.dir), flush=True)
    # SIGTERM (a CI timeout, kill) unwinds like ^C, so the control plane is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    errors = []
    result = {}
    try:
        cp.up()
        cp.add_users(["bench-" + b for bases in HA.values() for b in bases])
        graceful, e1, parts, graceful_trials = {i: [] for i in IMPLS}, [], {i: [] for i in IMPLS}, {}
        if args.graceful_trials:
            print("graceful release -> other started, %d trials each at %s" % (args.graceful_trials, DEFAULTS),
                  flush=True)
            graceful, e1, graceful_trials = side_by_side(args, "graceful", DEFAULTS, "graceful",
                                                         args.graceful_trials, seed)
            time.sleep(2.5)  # audit batches are flushed every second
            parts, e5 = graceful_breakdown(args.dir, graceful_trials)
            e1 += e5
            for impl in IMPLS:
                split = graceful_split(parts[impl])
                print("  %-9s graceful, kube-apiserver's two writes p50/p99 %s/%s ms, the rest p50/p99 %s/%s ms" %
                      (impl, split["graceful_server_writes_p50_ms"], split["graceful_server_writes_p99_ms"],
                       split["graceful_client_share_p50_ms"], split["graceful_client_share_p99_ms"]), flush=True)
        crash, e2 = {i: [] for i in IMPLS}, []
        late, late_detail, e4 = {i: [] for i in IMPLS}, {i: [] for i in IMPLS}, []
        if args.crash_trials:
            print("SIGKILL -> other started, minus the lease: %d trials each at %s" %
                  (args.crash_trials, args.crash_timings), flush=True)
            crash, e2, crash_trials = side_by_side(args, "crash", args.crash_timings, "crash", args.crash_trials,
                                                   seed + 10)
            time.sleep(2.5)  # audit batches are flushed every second
            late, late_detail, e4 = takeover_lateness(args.dir, args.crash_timings, crash_trials)
            for impl in IMPLS:
                early = sum(d["takeover_past_renewal_expiry_ms"] < 0 for d in late_detail[impl])
                print("  %-9s take-over past the observed expiry (audit log), ms: %s; before the killed holder's "
                      "lease ran out: %d" % (impl, late[impl], early), flush=True)
        crash_def, e3 = {i: [] for i in IMPLS}, []
        if args.default_crash_trials:
            print("SIGKILL at the defaults %s: %d trials each" % (DEFAULTS, args.default_crash_trials), flush=True)
            crash_def, e3, _ = side_by_side(args, "crashdef", DEFAULTS, "crash", args.default_crash_trials,
                                            seed + 20)
        rates, window, changed = {i: {r: {"per_min": None, "by_verb": {}} for r in ("leader", "follower", "ha_lease")}
                                  for i in IMPLS}, 0.0, []
        if args.rate_seconds:
            print("kube-apiserver requests per minute (audit log), one Lease with 3 candidates, %s" % DEFAULTS,
                  flush=True)
            rates, window, changed = request_rates(args, args.rate_seconds)
        errors += e1 + e2 + e4 + e3
        for impl in changed:
            errors.append("%s: leadership changed during the request-rate window" % impl)
        for impl in IMPLS:
            result[impl] = {
                "graceful_failover_p50_ms": pct(graceful[impl], 50),
                "graceful_failover_p99_ms": pct(graceful[impl], 99),
                "graceful_trials": len(graceful[impl]),
                **graceful_split(parts[impl]),
                "crash_takeover_write_p99_ms": pct([x["takeover_write_ms"] for x in late_detail[impl]], 99),
                "crash_takeover_lateness_client_share_p99_ms":
                    pct([round(x["lateness_ms"] - x["takeover_write_ms"], 2) for x in late_detail[impl]], 99),
                "crash_failover_over_lease_p50_ms": pct(crash[impl], 50),
                "crash_failover_over_lease_p99_ms": pct(crash[impl], 99),
                "crash_trials": len(crash[impl]),
                "crash_timings": str(args.crash_timings),
                "crash_failover_over_lease_defaults_p50_ms": pct(crash_def[impl], 50),
                "crash_failover_over_lease_defaults_p99_ms": pct(crash_def[impl], 99),
                "crash_trials_defaults": len(crash_def[impl]),
                "crash_takeover_lateness_p50_ms": pct(late[impl], 50),
                "crash_takeover_lateness_p99_ms": pct(late[impl], 99),
                "crash_takeover_lateness_trials": len(late[impl]),
                "crash_takeovers_before_holder_expiry": sum(d["takeover_past_renewal_expiry_ms"] < 0
                                                            for d in late_detail[impl]),
                "ha_lease_requests_per_min": rates[impl]["ha_lease"]["per_min"],
                "ha_lease_candidates": len(HA[impl]),
                "leader_requests_per_min": rates[impl]["leader"]["per_min"],
                "follower_requests_per_min": rates[impl]["follower"]["per_min"],
                "ha_lease_requests_by_verb": rates[impl]["ha_lease"]["by_verb"],
                "leader_requests_by_verb": rates[impl]["leader"]["by_verb"],
                "follower_requests_by_verb": rates[impl]["follower"]["by_verb"],
                "raw": {"graceful_ms": graceful[impl], "graceful_breakdown": parts[impl],
                        "graceful_trials": graceful_trials.get(impl, []),
                        "crash_over_lease_ms": crash[impl],
                        "crash_over_lease_defaults_ms": crash_def[impl],
                        "crash_takeover_lateness_ms": late[impl],
                        "crash_takeover_lateness_trials": late_detail[impl],
                        "ha_lease_requests_by_user": ([rates[impl]["leader"]] + rates[impl].get("followers", [])
                                                      if args.rate_seconds else [])},
            }
    finally:
        cp.down()
    doc = {
        "leasehold": result.get("leasehold"),
        "client_go": result.get("client_go"),
        "meta": {
            "timings": str(DEFAULTS), "rate_window_s": round(window, 1), "seed": seed,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "took_s": round(time.monotonic() - t_start, 1),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "kube_apiserver": "v1.36.3 (testenv)", "errors": errors,
            "definitions": {
                "graceful": "SIGTERM to the leader (work stops, Lease released) -> other candidate's started event",
                "crash": "SIGKILL of the leader at a random renewal phase -> other started, minus lease duration",
                "graceful_server_writes": "per graceful trial, the durations in kube-apiserver (audit log, "
                                          "received -> ResponseComplete) of the release and of the "
                                          "successor's take-over, summed: the floor of a hand-over in two writes",
                "graceful_client_share": "per graceful trial, the total minus graceful_server_writes: signal "
                                         "handling, the release's delivery to the successor, its decision, and "
                                         "the answers' way back (graceful_breakdown() in failover.py)",
                "crash_takeover_lateness_client_share": "per crash trial, the lateness minus the take-over "
                                                        "write's duration in kube-apiserver",
                "crash_takeover_lateness": "the --crash-timings trials, all from the audit log (stageTimestamp of "
                                           "ResponseComplete): the follower's first successful update after the "
                                           "kill - (the follower's observation of the killed leader's last "
                                           "successful write + lease duration); observation = that write's "
                                           "completion for a follower with a watch open, else the completion of "
                                           "the follower's first GET after it (takeover_lateness() in failover.py)",
                "requests": "kube-apiserver audit events (unique auditID) by the candidate's own user, per minute",
                "ha_lease_requests": "the sum over one Lease's 3 candidates (1 leader, 2 standbys), each its own "
                                     "user; follower_requests_per_min is one standby's (the mean of the two)",
            },
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    lh, go = doc["leasehold"], doc["client_go"]
    rows = [("graceful release -> started p50 (ms)", "graceful_failover_p50_ms"),
            ("graceful release -> started p99 (ms)", "graceful_failover_p99_ms"),
            ("  of which kube-apiserver's 2 writes, p99 (ms)", "graceful_server_writes_p99_ms"),
            ("  the rest (total - the 2 writes), p99 (ms)", "graceful_client_share_p99_ms"),
            ("SIGKILL -> started - lease p50 (ms) @%s" % args.crash_timings, "crash_failover_over_lease_p50_ms"),
            ("SIGKILL -> started - lease p99 (ms) @%s" % args.crash_timings, "crash_failover_over_lease_p99_ms"),
            ("SIGKILL -> started - lease p50 (ms) @15s/10s/2s", "crash_failover_over_lease_defaults_p50_ms"),
            ("SIGKILL -> started - lease p99 (ms) @15s/10s/2s", "crash_failover_over_lease_defaults_p99_ms"),
            ("SIGKILL: take-over past observed expiry p50 (ms)", "crash_takeover_lateness_p50_ms"),
            ("SIGKILL: take-over past observed expiry p99 (ms)", "crash_takeover_lateness_p99_ms"),
            ("  minus the take-over write, p99 (ms)", "crash_takeover_lateness_client_share_p99_ms"),
            ("HA Lease (3 candidates) requests/min", "ha_lease_requests_per_min"),
            ("leader requests/min", "leader_requests_per_min"),
            ("follower requests/min (one standby)", "follower_requests_per_min")]
    print()
    print("%-50s %12s %12s" % ("", "leasehold", "client-go"))
    for label, key in rows:
        print("%-50s %12s %12s" % (label, lh[key], go[key]))
    print("trials: graceful %d/%d, crash %d/%d, crash at defaults %d/%d; request window %.0f s" %
          (lh["graceful_trials"], go["graceful_trials"], lh["crash_trials"], go["crash_trials"],
           lh["crash_trials_defaults"], go["crash_trials_defaults"], window))
    print("leader by verb: leasehold %s, client-go %s" % (lh["leader_requests_by_verb"], go["leader_requests_by_verb"]))
    print("follower by verb: leasehold %s, client-go %s" %
          (lh["follower_requests_by_verb"], go["follower_requests_by_verb"]))
    print("HA Lease by verb: leasehold %s, client-go %s" %
          (lh["ha_lease_requests_by_verb"], go["ha_lease_requests_by_verb"]))
    return run_end(doc, args.out, errors)


if __name__ == "__main__":
    sys.exit(main())
