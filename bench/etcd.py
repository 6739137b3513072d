#!/usr/bin/env python3
"""etcd:// beside Go's concurrency.Election, in one run, on one etcd.

Measures, for leasehold (tests/leasehold_candidate --lock etcd://...) and the
Go reference candidate (testenv/etcdpeer: concurrency.Election), with the
same TTL:
  1. graceful failover: the leader is sent SIGTERM (it releases: deletes its
     key, revokes its session); time from the signal to the standby's
     "started" line (CLOCK_MONOTONIC, both processes), --graceful trials;
  2. crash take-over: the leader is SIGKILLed; lateness = standby started -
     (kill + TTL). etcd expires the lease TTL after the last keepalive it
     heard, which came before the kill, so the lateness is usually
     negative (leasehold's keepalives go every min(TTL/3, renew_deadline/4),
     Go's every TTL/3); --crash trials;
  3. etcd requests per minute for a leader alone, and for one standby more,
     from etcd's own counters (/metrics grpc_server_msg_received_total: every
     message a client sent, keepalives of a stream included; the JSON
     gateway's calls reach the same gRPC server), over --window each;
  4. leasehold only: 1,000 elections (distinct prefixes) in one process on
     one session lease (bench/scale_bench.cc --lock-prefix): client CPU and
     RSS over --window, and etcd messages per minute.

  bench/etcd.py --bin TESTENV_BIN --candidate build/tests/leasehold_candidate \\
      --scale-bench build/bench/leasehold_scale_bench [--out bench/results/etcd.json]

Prints each step's progress and a table; --out writes the numbers as JSON
and --plot a PNG of the failover distributions (needs matplotlib).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from fleet import EventLog, Candidate, Timings, mono_ns, ms  # noqa: E402
from etcd_fleet import EtcdCluster  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


class Bench:
    def __init__(self, args, cluster):
        self.args, self.cluster = args, cluster
        self.t = args.timings
        self.ttl_s = self.t.lease_ms // 1000
        self.n = 0

    def spawn(self, impl, log, prefix, proc):
        if impl == "leasehold":
            argv = [self.args.candidate, "--lock", self.cluster.lock_url(prefix), "--identity", proc] + self.t.flags()
        else:
            argv = [os.path.join(self.args.bin, "etcdpeer"), "--endpoints", ",".join(self.cluster.endpoints()),
                    "--prefix", prefix, "--id", proc, "--ttl", str(self.ttl_s)]
        return Candidate(log, impl, proc, argv, stderr_path=os.path.join(self.cluster.dir, "bench.stderr"))

    def pair(self, impl):
        """A leader and a standby whose key exists; returns (log, leader, standby)."""
        self.n += 1
        prefix = "/leasehold/bench-%s-%d" % (impl, self.n)
        log = EventLog()
        a = self.spawn(impl, log, prefix, "a")
        if not log.wait(lambda evs: any(e["event"] == "started" and e["proc"] == "a" for e in evs), 15):
            raise RuntimeError("%s: the first candidate did not lead" % impl)
        b = self.spawn(impl, log, prefix, "b")
        deadline = time.monotonic() + 15
        while self.cluster.count_keys(prefix) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("%s: the standby never queued" % impl)
            time.sleep(0.02)
        time.sleep(0.3)  # the standby's watch of the leader's key is up
        return log, a, b

    def failover(self, impl, sig, trials):
        out = []
        for i in range(trials):
            log, a, b = self.pair(impl)
            ev = a.signal(sig)
            t0 = ev["mono_ns"]
            got = log.wait(lambda evs: next((e for e in evs if e["event"] == "started" and e["proc"] == "b"), None),
                           self.ttl_s + 10)
            if got:
                d = got["mono_ns"] - t0
                out.append(ms(d) if sig == signal.SIGTERM else ms(d) - self.ttl_s * 1e3)
            for c in (a, b):
                c.kill_now()
            if (i + 1) % 10 == 0 or i + 1 == trials:
                print("[etcd bench] %s %s: %d/%d trials" % (impl, signal.Signals(sig).name, i + 1, trials),
                      flush=True)
        return out

    def metrics(self, name="grpc_server_msg_received_total"):
        with urllib.request.urlopen(self.cluster.endpoints()[0] + "/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def rate(self, window_s):
        """(messages, calls) per minute: gRPC messages received, and calls
        (unary requests and streams) started."""
        m0, c0 = self.metrics(), self.metrics("grpc_server_started_total")
        time.sleep(window_s)
        return ((self.metrics() - m0) * 60.0 / window_s,
                (self.metrics("grpc_server_started_total") - c0) * 60.0 / window_s)

    def requests(self, impl, window_s):
        idle = self.rate(window_s / 2)  # whatever else talks to etcd (nothing, normally)
        self.n += 1
        prefix = "/leasehold/rate-%s-%d" % (impl, self.n)
        log = EventLog()
        a = self.spawn(impl, log, prefix, "a")
        log.wait(lambda evs: any(e["event"] == "started" for e in evs), 15)
        time.sleep(2)
        leader = self.rate(window_s)
        b = self.spawn(impl, log, prefix, "b")
        time.sleep(2)
        both = self.rate(window_s)
        for c in (a, b):
            c.signal(signal.SIGTERM)
            c.wait_exit(10)
            c.kill_now()
        return {"idle_per_min": idle[0], "leader_per_min": leader[0] - idle[0], "standby_per_min": both[0] - leader[0],
                "leader_calls_per_min": leader[1] - idle[1], "standby_calls_per_min": both[1] - leader[1]}

    def scale(self, n, window):
        prefix = self.cluster.lock_url("/leasehold/scale-%d-" % os.getpid())
        m0 = m1 = None
        argv = [self.args.scale_bench, "--lock-prefix", prefix, "--n", str(n), "--window", window,
                "--lease-duration", "%dms" % self.t.lease_ms, "--renew-deadline", "%dms" % self.t.renew_ms,
                "--retry-period", "%dms" % self.t.retry_ms, "--release-on-cancel", "true"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            sys.stderr.write(line)
            if m1 is None and "stopping" in line:
                m1 = (time.monotonic(), self.metrics())
            # From the first progress line of the steady window (10 s in:
            # the watches and reads of the start are over) to its end.
            if m0 is None and re.search(r"window \d+/\d+ s", line):
                m0 = (time.monotonic(), self.metrics())
        out = p.stdout.read()
        p.wait()
        res = json.loads(out.strip().splitlines()[-1])
        if m0 and m1:
            res["etcd_messages_per_min_steady"] = (m1[1] - m0[1]) * 60.0 / (m1[0] - m0[0])
        return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--candidate", required=True)
    ap.add_argument("--scale-bench", required=True)
    ap.add_argument("--timings", type=Timings.parse, default=Timings.parse("15s/10s/2s"))
    ap.add_argument("--crash-timings", type=Timings.parse, default=Timings.parse("3s/2s/500ms"),
                    help="for the crash trials (each waits a TTL)")
    ap.add_argument("--graceful", type=int, default=50)
    ap.add_argument("--crash", type=int, default=20)
    ap.add_argument("--window", type=float, default=60, help="seconds per request-rate window")
    ap.add_argument("--scale", type=int, default=1000)
    ap.add_argument("--scale-window", default="60s")
    ap.add_argument("--out")
    ap.add_argument("--plot", help="PNG of the failover distributions")
    args = ap.parse_args()
    cluster = EtcdCluster(args.bin, 1)
    results = {"timings": str(args.timings), "crash_timings": str(args.crash_timings), "leasehold": {}, "etcd_go": {}}
    try:
        b = Bench(args, cluster)
        for impl, key in (("leasehold", "leasehold"), ("etcd-go", "etcd_go")):
            print("[etcd bench 1/4] %s: graceful failover, %d trials at %s" % (impl, args.graceful, args.timings),
                  flush=True)
            g = b.failover(impl, signal.SIGTERM, args.graceful)
            results[key]["graceful_failover_ms"] = {"n": len(g), "p50": pct(g, 50), "p99": pct(g, 99),
                                                    "max": max(g) if g else None, "raw": g}
        bc = Bench(args, cluster)
        bc.t, bc.ttl_s = args.crash_timings, args.crash_timings.lease_ms // 1000
        for impl, key in (("leasehold", "leasehold"), ("etcd-go", "etcd_go")):
            print("[etcd bench 2/4] %s: crash take-over, %d trials at %s" % (impl, args.crash, args.crash_timings),
                  flush=True)
            c = bc.failover(impl, signal.SIGKILL, args.crash)
            results[key]["crash_lateness_past_ttl_ms"] = {"n": len(c), "p50": pct(c, 50), "p99": pct(c, 99),
                                                          "max": max(c) if c else None, "raw": c}
        for impl, key in (("leasehold", "leasehold"), ("etcd-go", "etcd_go")):
            print("[etcd bench 3/4] %s: etcd messages per minute, leader then leader + standby (%.0f s each)" %
                  (impl, args.window), flush=True)
            results[key]["etcd_messages_per_min"] = b.requests(impl, args.window)
        print("[etcd bench 4/4] leasehold: %d elections in one process, one session lease" % args.scale, flush=True)
        res = b.scale(args.scale, args.scale_window)
        res["cpu_s_per_hour_per_election"] = res["cpu_s_window"] / res["window_s"] * 3600 / res["leases"]
        results["leasehold"]["scale"] = res
    finally:
        cluster.down()
    print("\n| | leasehold | concurrency.Election |\n|---|---|---|")
    L, G = results["leasehold"], results["etcd_go"]
    for name, k in (("graceful failover p50 / p99 (ms)", "graceful_failover_ms"),
                    ("crash take-over lateness past TTL p50 / p99 (ms)", "crash_lateness_past_ttl_ms")):
        print("| %s | %.1f / %.1f | %.1f / %.1f |" % (name, L[k]["p50"], L[k]["p99"], G[k]["p50"], G[k]["p99"]))
    for name, k in (("etcd messages/min, leader", "leader_per_min"), ("etcd messages/min, standby", "standby_per_min"),
                    ("etcd calls started/min, leader", "leader_calls_per_min"),
                    ("etcd calls started/min, standby", "standby_calls_per_min")):
        print("| %s | %.1f | %.1f |" % (name, L["etcd_messages_per_min"][k], G["etcd_messages_per_min"][k]))
    s = L["scale"]
    print("\n%d elections in one process: %d leading at the end; CPU %.3f s per election-hour; RSS %d KiB; "
          "etcd messages/min %.0f" % (s["leases"], s["leading_at_end"], s["cpu_s_per_hour_per_election"],
                                      s["rss_kib"], s.get("etcd_messages_per_min_steady", -1)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        print("wrote " + args.out)
    if args.plot:
        plot(results, args.plot)
    return 0


def plot(results, path):
    """CDFs of both failover measurements, leasehold beside concurrency.Election."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("etcd bench: matplotlib is missing (scripts/deps.sh --bench installs python3-matplotlib; run with "
              "/usr/bin/python3); no plot drawn", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "graceful_failover_ms", "SIGTERM -> the standby leads (%s)" % results["timings"]),
                           (axes[1], "crash_lateness_past_ttl_ms",
                            "SIGKILL -> the standby leads, minus the TTL (%s)" % results["crash_timings"])):
        for impl, label in (("leasehold", "leasehold"), ("etcd_go", "Go concurrency.Election")):
            xs = sorted(results[impl][key]["raw"])
            if xs:
                ax.step(xs, [(i + 1) / len(xs) for i in range(len(xs))], where="post", label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ms")
        ax.set_ylabel("fraction of trials")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote " + path)


if __name__ == "__main__":
    sys.exit(main())
