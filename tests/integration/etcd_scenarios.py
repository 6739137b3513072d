#!/usr/bin/env python3
"""etcd:// on a real etcd (testenv/cmd/etcdcluster): one scenario per mode.

Candidates are leasehold_candidate --lock etcd://... processes (and the Go
concurrency.Election peer where named), observed from outside through their
JSON event lines (CLOCK_MONOTONIC) and their process state; etcd_fleet.py's
checker (terms capped at each leasehold term's reported deadline, fencing
tokens increasing) judges every run.

  admin-delete   `leasehold release --force` on the election deletes the
                 leader's key: the leader's work stops within 1 s (its watch
                 of its own key; its term counts as ended at the deletion,
                 and how long it led on past the next leader's start is
                 printed), the next candidate leads with a higher token, the old leader (--recampaign) queues again with a new
                 key; `leasehold status` names each leader.
  member-restart 3 members; the member every candidate talks to first
                 (the first endpoint) is SIGKILLed, later restarted: the
                 leader keeps its term (its keepalives fail over to the next
                 member before its deadline), no second leader.
  partition      the leader reaches etcd only through testenv/faultproxy;
                 `partition` blackholes it: its work stops no later than its
                 deadline (+ 300 ms for the stop to be logged), a direct
                 candidate (Go or leasehold) leads only after that, and after
                 `heal` the old leader campaigns again and follows.
  sidecar-partition
                 `leasehold run` (the sidecar) through faultproxy, cut off:
                 its worker's tree is gone from the process table within
                 renew_deadline + 500 ms of the cut, before a Go candidate
                 leads.
  compaction     a waiting candidate b reaches etcd through faultproxy with
                 LATENCY ms each way, so its watch of the leader's key is
                 created 2 x LATENCY after the read it starts from; in that
                 gap the harness writes and compacts past that revision: etcd
                 cancels the watch as compacted (b's log says so; up to 3
                 tries with a new b when the gap is missed). b must recover
                 (read again, watch again) and take over within 1 s of the
                 leader's release, latency removed by then.
  tls-auth       a TLS member with auth: a candidate with the CA, a client
                 certificate and user elector's password file leads; one with
                 a wrong password logs one line naming the user (and no
                 password), one without a client certificate one naming the
                 certificate; neither leads.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import EventLog, Candidate, Timings, print_report, current_leader, mono_ns, ms  # noqa: E402
from etcd_fleet import EtcdCluster, full_check  # noqa: E402


class Run:
    def __init__(self, args, cluster, timings, title):
        self.args, self.cluster, self.t, self.title = args, cluster, timings, title
        self.log = EventLog(os.path.join(cluster.dir, "events.jsonl"))
        self.prefix = "/leasehold/scenario-%d" % os.getpid()
        self.cands = []
        self.problems = []

    def leasehold(self, proc, url=None, extra=()):
        argv = [self.args.candidate, "--lock", url or self.cluster.lock_url(self.prefix), "--identity", proc,
                "--print-renewals"] + self.t.flags() + list(extra)
        c = Candidate(self.log, "leasehold", proc, argv, stderr_path=os.path.join(self.cluster.dir, proc + ".err"))
        self.cands.append(c)
        return c

    def go(self, proc):
        argv = [os.path.join(self.args.bin, "etcdpeer"), "--endpoints", ",".join(self.cluster.endpoints()),
                "--prefix", self.prefix, "--id", proc, "--ttl", "%d" % (self.t.lease_ms // 1000)]
        c = Candidate(self.log, "etcd-go", proc, argv, stderr_path=os.path.join(self.cluster.dir, proc + ".err"))
        self.cands.append(c)
        return c

    def wait_leader(self, pred, timeout_s, what):
        got = self.log.wait(lambda evs: pred(current_leader(evs)), timeout_s)
        if not got:
            self.problems.append("%s: not within %.1f s (leader %s)" % (what, timeout_s,
                                                                      current_leader(self.log.snapshot())))
        return current_leader(self.log.snapshot())

    def event(self, proc, kind, after_ns=0):
        for e in self.log.snapshot():
            if e.get("proc") == proc and e["event"] == kind and e["mono_ns"] >= after_ns:
                return e
        return None

    def wait_keys(self, n, timeout_s=10):
        self._wait_count(lambda c: c >= n, "the election never had %d keys" % n, timeout_s)

    def wait_keys_at_most(self, n, timeout_s=10):
        self._wait_count(lambda c: c <= n, "the election still had more than %d keys" % n, timeout_s)

    def _wait_count(self, ok, problem, timeout_s):
        """Polls the election's key count until ok(count); PROBLEM noted after TIMEOUT_S."""
        deadline = time.monotonic() + timeout_s
        while not ok(self.cluster.count_keys(self.prefix)):
            if time.monotonic() > deadline:
                self.problems.append(problem)
                return
            time.sleep(0.05)

    def status(self):
        out = subprocess.run([self.args.cli, "status", self.cluster.lock_url(self.prefix), "-o", "json"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            self.problems.append("leasehold status failed: %s" % out.stderr.strip())
            return {}
        return json.loads(out.stdout)

    def finish(self, excuse=None):
        """Stops every candidate and checks the run. excuse = (proc, t0): the
        end of proc's term that comes within 1 s after t0 counts at t0 (the
        owner of a key an admin deleted at t0 leads until its watch shows the
        deletion; docs/etcd.md)."""
        end = mono_ns()
        for c in self.cands:
            if c.alive():
                c.signal(signal.SIGTERM)
        for c in self.cands:
            if not c.wait_exit(10):
                self.problems.append("%s did not exit within 10 s of SIGTERM" % c.proc)
                c.kill_now()
        events = self.log.snapshot()
        self.log.close()
        if excuse:
            proc, t0 = excuse
            for i, e in enumerate(events):
                if e.get("proc") == proc and e["event"] == "stopped" and t0 <= e["mono_ns"] <= t0 + 1e9:
                    events[i] = dict(e, mono_ns=t0, excused_from=e["mono_ns"])
                    break
        report, violations = full_check(events, self.t, self.t.bound_ns(1000), end, end)
        print("== %s ==" % self.title)
        print("terms: %d, by implementation: %s; leasehold terms ended at their deadline: %d; violations: %d" %
              (report["terms"], report["terms_by_impl"], report["capped_terms"], len(violations)))
        for v in violations:
            print("  VIOLATION " + v)
        for p in self.problems:
            print("  PROBLEM " + p)
        return 0 if not violations and not self.problems else 1


def mode_admin_delete(args, cluster):
    run = Run(args, cluster, args.timings, "etcd.admin_delete")
    a = run.leasehold("a", extra=["--recampaign"])
    run.wait_leader(lambda l: l == "a", 10, "a leads")
    # b queues before g: each is started once the keys of those before exist.
    b = run.leasehold("b")
    run.wait_keys(2)
    run.go("g")
    run.wait_keys(3)
    first = run.event("a", "started")
    st = run.status()
    if st.get("holder") != "a":
        run.problems.append("status names %r, not a" % st.get("holder"))
    t0 = mono_ns()
    rel = subprocess.run([args.cli, "release", cluster.lock_url(run.prefix), "--force"], capture_output=True,
                         text=True, timeout=20)
    print("release: exit %d: %s%s" % (rel.returncode, rel.stdout.strip(), rel.stderr.strip()), flush=True)
    if rel.returncode != 0:
        run.problems.append("release --force failed: " + rel.stderr.strip())
    run.wait_leader(lambda l: l == "b", 5, "b leads after the release")
    # a's end may be logged after b's start (the owner of a deleted key leads
    # until its watch shows the deletion): wait for it, up to the bound below.
    stopped = run.log.wait(lambda evs: run.event("a", "stopped", t0), max(0.0, 1.0 - (mono_ns() - t0) / 1e9) + 0.1)
    if not stopped:
        run.problems.append("a never logged the end of its term")
    elif stopped["mono_ns"] - t0 > 1e9:
        run.problems.append("a's work stopped %.0f ms after its key was deleted (want < 1000)" %
                            ms(stopped["mono_ns"] - t0))
    second = run.event("b", "started")
    if stopped and second:
        print("a's work stopped %.0f ms after the release began; b started %.0f ms after it (a led on for %.0f ms "
              "past b's start)" % (ms(stopped["mono_ns"] - t0), ms(second["mono_ns"] - t0),
                                   max(0, ms(stopped["mono_ns"] - second["mono_ns"]))), flush=True)
    if first and second and second["transitions"] <= first["transitions"]:
        run.problems.append("token did not increase: %d then %d" % (first["transitions"], second["transitions"]))
    # a queued again with a new key: b's release hands back to the oldest key, g (Go).
    b.signal(signal.SIGTERM)
    b.wait_exit(10)
    run.wait_leader(lambda l: l == "g", 5, "g (Go) leads after b's release")
    if run.status().get("holder") != "g":
        run.problems.append("status does not name g")
    return run.finish(excuse=("a", t0))


def mode_member_restart(args, cluster):
    run = Run(args, cluster, args.timings, "etcd.member_restart")
    run.leasehold("a")
    run.wait_leader(lambda l: l == "a", 10, "a leads")
    run.leasehold("b")
    run.go("g")
    time.sleep(1)
    t0 = mono_ns()
    victim = cluster.member_of(cluster.endpoints()[0])
    subprocess.check_call([os.path.join(args.bin, "etcdcluster"), "kill", "--dir", cluster.dir, "--member",
                           str(victim)], stdout=subprocess.DEVNULL)
    print("killed member %d (the first endpoint)" % victim, flush=True)
    time.sleep(args.timings.lease_ms / 1e3 * 2)
    subprocess.check_call([os.path.join(args.bin, "etcdcluster"), "restart", "--dir", cluster.dir, "--member",
                           str(victim)], stdout=subprocess.DEVNULL)
    print("restarted member %d" % victim, flush=True)
    time.sleep(args.timings.lease_ms / 1e3 * 2)
    if run.event("a", "stopped", t0) or current_leader(run.log.snapshot()) != "a":
        run.problems.append("a lost its term while one member of three was down (leader now %s)" %
                            current_leader(run.log.snapshot()))
    return run.finish()


def mode_partition(args, cluster):
    run = Run(args, cluster, args.timings, "etcd.partition")
    target = cluster.endpoints()[0].split("://", 1)[1]
    proxy = subprocess.Popen([os.path.join(args.bin, "faultproxy"), "--target", target], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        listening = json.loads(proxy.stdout.readline())["listening"]
        scheme = "etcds://" if cluster.info.get("tls") else "etcd://"
        run.leasehold("a", url=scheme + listening + run.prefix, extra=["--recampaign"])
        run.wait_leader(lambda l: l == "a", 10, "a leads")
        run.go("g")
        run.leasehold("b")
        time.sleep(1.5)
        proxy.stdin.write("partition\n")
        print("partition: %s" % proxy.stdout.readline().strip(), flush=True)
        t0 = mono_ns()
        nxt = run.wait_leader(lambda l: l not in (None, "a"), args.timings.lease_ms / 1e3 + 5, "a successor leads")
        stopped = run.event("a", "stopped", t0)
        started = run.event(nxt, "started", t0) if nxt else None
        # a's deadline as it reported it: the last renewal sent before the partition + renew_deadline.
        renew = [e for e in run.log.snapshot() if e.get("proc") == "a" and e["event"] in ("renewed", "started")]
        deadline = max((e.get("sent_mono_ns", 0) + int(args.timings.renew_ms * 1e6)) if e["event"] == "renewed"
                       else e.get("deadline_mono_ns", 0) for e in renew)
        if not stopped:
            run.problems.append("a never stopped its work while partitioned")
        elif stopped["mono_ns"] > deadline + 300e6:
            run.problems.append("a stopped %.0f ms after its deadline" % ms(stopped["mono_ns"] - deadline))
        if stopped and started:
            print("a stopped %.0f ms before its deadline; %s started %.0f ms after a stopped" %
                  (ms(deadline - stopped["mono_ns"]), nxt, ms(started["mono_ns"] - stopped["mono_ns"])), flush=True)
        proxy.stdin.write("heal\n")
        print("heal: %s" % proxy.stdout.readline().strip(), flush=True)
        # a campaigns again (its old key went with its lease) and follows.
        time.sleep(args.timings.lease_ms / 1e3 + 2)
        if current_leader(run.log.snapshot()) == "a":
            run.problems.append("a leads again after heal although %s never stopped" % nxt)
        return run.finish()
    finally:
        proxy.stdin.close()
        proxy.wait(10)


def mode_compaction(args, cluster):
    run = Run(args, cluster, args.timings, "etcd.compaction")
    target = cluster.endpoints()[0].split("://", 1)[1]
    proxy = subprocess.Popen([os.path.join(args.bin, "faultproxy"), "--target", target], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, bufsize=1)

    def say(cmd):
        proxy.stdin.write(cmd + "\n")
        return proxy.stdout.readline().strip()

    latency_s = args.latency_ms / 1e3
    junk = "/leasehold/junk-%d" % os.getpid()  # outside the election's prefix
    try:
        listening = json.loads(proxy.stdout.readline())["listening"]
        a = run.leasehold("a")
        run.wait_leader(lambda l: l == "a", 10, "a leads")
        hit = None
        for attempt in range(1, 4):
            say("latency %d" % args.latency_ms)
            proc = "b%d" % attempt
            b = run.leasehold(proc, url="etcd://" + listening + run.prefix)
            # b's key lands at t_c; its read of the older key reaches etcd
            # 2 x latency later, its watch create 4 x latency later: compact
            # in between, at 3 x latency.
            run.wait_keys(2)
            t_c = time.monotonic()
            time.sleep(3 * latency_s)
            for i in range(3):
                rev = cluster.put(junk, "v%d" % i)
            cluster.compact(rev)
            print("attempt %d: compacted at revision %d, %.0f ms after b's key appeared" %
                  (attempt, rev, (time.monotonic() - t_c) * 1e3), flush=True)
            deadline = time.monotonic() + 4 * latency_s + 3
            while time.monotonic() < deadline and not hit:
                with open(os.path.join(cluster.dir, proc + ".err"), errors="replace") as f:
                    hit = next((line.strip() for line in f if "compacted" in line), None)
                time.sleep(0.05)
            if hit:
                print("%s: %s" % (proc, hit), flush=True)
                break
            print("attempt %d: the compaction missed b's watch; again with a new b" % attempt, flush=True)
            b.signal(signal.SIGTERM)
            b.wait_exit(10)
            run.wait_keys_at_most(1)
        if not hit:
            run.problems.append("in 3 tries the compaction never fell between b's read and its watch")
            return run.finish()
        # b recovered if it read again and waits on a's key once more: a's
        # release must hand over to it in one watch event and one read.
        say("latency 0")
        time.sleep(4 * latency_s + 0.5)  # what the proxy still holds arrives
        a.signal(signal.SIGTERM)
        t0 = mono_ns()
        run.wait_leader(lambda l: l == b.proc, 5, "%s leads after a's release" % b.proc)
        stopped = run.event("a", "stopped", t0)
        started = run.event(b.proc, "started", t0)
        if stopped and started:
            took = ms(started["mono_ns"] - stopped["mono_ns"])
            print("%s started %.0f ms after a stopped" % (b.proc, took), flush=True)
            if took > 1000:
                run.problems.append("%s took %.0f ms after a's release (bound 1000 ms)" % (b.proc, took))
        return run.finish()
    finally:
        proxy.stdin.close()
        proxy.wait(10)


def mode_tls_auth(args, cluster):
    run = Run(args, cluster, args.timings, "etcd.tls_auth")
    info = cluster.info

    def secret(name, text):
        path = os.path.join(cluster.dir, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        return path

    good, bad = secret("pw", info["password"]), secret("bad-pw", "not-the-password-7f3a")
    tls = ["--etcd-cacert", info["cacert"], "--etcd-cert", info["cert"], "--etcd-key", info["key"]]
    user = ["--etcd-user", info["user"]]
    run.leasehold("a", extra=tls + user + ["--etcd-password-file", good])
    run.wait_leader(lambda l: l == "a", 15, "a leads over TLS as user " + info["user"])
    run.leasehold("wrong-password", extra=tls + user + ["--etcd-password-file", bad])
    run.leasehold("no-client-cert", extra=["--etcd-cacert", info["cacert"]] + user + ["--etcd-password-file", good])
    time.sleep(4)

    def err_of(proc):
        with open(os.path.join(cluster.dir, proc + ".err")) as f:
            return f.read()

    wrong = err_of("wrong-password")
    want = 'authentication as "%s" failed' % info["user"]
    if want not in wrong:
        run.problems.append("wrong password: no line saying %r in its log:\n%s" % (want, wrong[-1500:]))
    if "not-the-password-7f3a" in wrong or info["password"] in wrong:
        run.problems.append("a password appears in the log")
    nocert = err_of("no-client-cert")
    if "certificate" not in nocert:
        run.problems.append("no client certificate: no line naming the certificate:\n%s" % nocert[-1500:])
    print("wrong password says: %s" % next((l for l in wrong.splitlines() if want in l), "?")[:300])
    print("no client certificate says: %s" % next((l for l in nocert.splitlines() if "certificate" in l), "?")[:300])
    for proc in ("wrong-password", "no-client-cert"):
        if run.event(proc, "started"):
            run.problems.append("%s led" % proc)
    return run.finish()


def sidecar_metrics(out_path, timeout_s):
    """GET /metrics of the sidecar whose output (with its "serving ... on
    http://HOST:PORT" line) is OUT_PATH, once a keepalive has been counted
    (or TIMEOUT_S passed); "" when it never said where it serves."""
    import re
    import urllib.request
    deadline = time.monotonic() + timeout_s
    body = ""
    while time.monotonic() < deadline:
        with open(out_path, errors="replace") as f:
            m = re.search(r"serving .* on (http://\S+:\d+)", f.read())
        if m:
            with urllib.request.urlopen(m.group(1) + "/metrics", timeout=5) as r:
                body = r.read().decode()
            if metric_value(body, "leasehold_renewals_total"):
                return body
        time.sleep(0.1)
    return body


def metric_value(text, name):
    """The value of the first sample of NAME in a Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def mode_sidecar_partition(args, cluster):
    """`leasehold run` on etcd:// through faultproxy: cut off, its worker's
    tree is gone (seen in the process table) within renew_deadline + 500 ms
    of the cut, and before a Go candidate leads."""
    run = Run(args, cluster, args.timings, "etcd.sidecar_partition")
    target = cluster.endpoints()[0].split("://", 1)[1]
    proxy = subprocess.Popen([os.path.join(args.bin, "faultproxy"), "--target", target], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, bufsize=1)
    pidfile = os.path.join(cluster.dir, "worker.pid")
    t = args.timings
    sidecar = None
    try:
        listening = json.loads(proxy.stdout.readline())["listening"]
        sidecar = subprocess.Popen(
            [args.cli, "run", "--lock", "etcd://" + listening + run.prefix, "--identity", "sidecar",
             "--http-address", "127.0.0.1:0", "--leader-elect-lease-duration", "%dms" % t.lease_ms, "--leader-elect-renew-deadline", "%dms" % t.renew_ms,
             "--leader-elect-retry-period", "%dms" % t.retry_ms, "--", "sh", "-c",
             "echo $$ > %s; exec sleep 1000" % pidfile],
            stdout=open(os.path.join(cluster.dir, "sidecar.out"), "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 15
        while not os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(pidfile):
            run.problems.append("the sidecar's worker never started")
            return run.finish()
        time.sleep(0.2)
        worker = int(open(pidfile).read())
        run.go("g")
        run.wait_keys(2)
        time.sleep(1)
        # Its metrics: each keepalive that landed is a renewal, timed.
        metrics = sidecar_metrics(os.path.join(cluster.dir, "sidecar.out"), 5)
        renewals = metric_value(metrics, "leasehold_renewals_total")
        timed = metric_value(metrics, "leasehold_renew_duration_seconds_count")
        print("sidecar metrics: renewals %s, renew latencies %s" % (renewals, timed), flush=True)
        if not renewals or not timed:
            run.problems.append("the sidecar's /metrics counts %s renewals and %s renew latencies; want both > 0" %
                                (renewals, timed))
        proxy.stdin.write("partition\n")
        proxy.stdout.readline()
        t0 = mono_ns()
        gone = None
        while mono_ns() - t0 < (t.lease_ms + 5000) * 1e6:
            try:
                os.kill(worker, 0)
                with open("/proc/%d/stat" % worker) as f:
                    if f.read().split(")")[-1].split()[0] == "Z":
                        raise ProcessLookupError
            except (ProcessLookupError, FileNotFoundError):
                gone = mono_ns()
                break
            time.sleep(0.005)
        g_started = run.log.wait(lambda evs: next((e for e in evs if e["event"] == "started" and e["proc"] == "g"),
                                                  None), t.lease_ms / 1e3 + 5)
        if gone is None:
            run.problems.append("the worker (pid %d) outlived the partition by %.0f ms" % (worker, t.lease_ms + 5000))
        else:
            print("worker gone %.0f ms after the cut (renew deadline %d ms)" % (ms(gone - t0), t.renew_ms), flush=True)
            if gone - t0 > (t.renew_ms + 500) * 1e6:
                run.problems.append("the worker was gone only %.0f ms after the cut" % ms(gone - t0))
        if not g_started:
            run.problems.append("g never led")
        elif gone is not None:
            print("g led %.0f ms after the worker was gone" % ms(g_started["mono_ns"] - gone), flush=True)
            if g_started["mono_ns"] < gone:
                run.problems.append("g led %.0f ms before the worker was gone" % ms(gone - g_started["mono_ns"]))
        proxy.stdin.write("heal\n")
        proxy.stdout.readline()
        return run.finish()
    finally:
        if sidecar:
            sidecar.terminate()
            try:
                sidecar.wait(15)
            except subprocess.TimeoutExpired:
                sidecar.kill()
        proxy.stdin.close()
        proxy.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="testenv bin dir")
    ap.add_argument("--candidate", required=True, help="path of leasehold_candidate")
    ap.add_argument("--cli", required=True, help="path of the leasehold command")
    ap.add_argument("--timings", type=Timings.parse, default=None,
                    help="LEASE/RENEW/RETRY (default 3s/2s/500ms; member-restart 6s/4s/1s: a killed raft leader "
                         "takes etcd an election (1 s timeout, often more on a loaded machine) to replace, which "
                         "the renew deadline must outlast)")
    ap.add_argument("--latency-ms", type=int, default=700,
                    help="compaction: faultproxy latency each way in front of the waiting candidate")
    ap.add_argument("mode", choices=["admin-delete", "member-restart", "partition", "tls-auth", "sidecar-partition",
                                     "compaction"])
    args = ap.parse_args()
    if args.timings is None:
        # compaction: requests through 2 x latency of round trip must fit
        # the request timeout (renew_deadline / 2).
        args.timings = Timings.parse({"member-restart": "6s/4s/1s", "compaction": "10s/6s/1s"}.get(
            args.mode, "3s/2s/500ms"))
    members = 3 if args.mode == "member-restart" else 1
    cluster = EtcdCluster(args.bin, members, ["--tls", "--auth"] if args.mode == "tls-auth" else [])
    try:
        return {"admin-delete": mode_admin_delete, "member-restart": mode_member_restart,
                "partition": mode_partition, "tls-auth": mode_tls_auth, "compaction": mode_compaction,
                "sidecar-partition": mode_sidecar_partition}[args.mode](args, cluster)
    finally:
        cluster.down()


if __name__ == "__main__":
    sys.exit(main())
