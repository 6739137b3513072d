#!/usr/bin/env python3
"""Idle cost of one elector process: the leasehold sidecar beside the client-go
peer, one run, one control plane (part of `make bench`).

Two `leasehold run k8s://...` sidecars (child: sleep) compete for one Lease and
two client-go peers (testenv/peer) for another, all at the defaults 15s/10s/2s.
Once each Lease has a leader, every process is sampled for --seconds of steady
state:

  rss_mib          VmRSS of the elector process itself (the sidecar's child,
                   the user's program, is not counted), mean of samples every
                   5 s; rss_max_mib the largest sample
  uss_mib          the process's private memory (Private_Clean + Private_Dirty
                   of /proc/PID/smaps_rollup): what one more replica costs
                   the node, since shared-library pages are shared between
                   processes; pss_mib: RSS with shared pages divided among
                   their sharers
  cpu_s_per_hour   (utime + stime) over the window, from /proc/PID/stat,
                   scaled to an hour

Writes --out (default bench/results/sidecar.json): a `leasehold` and a
`client_go` object with the same keys, and the raw samples.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import fleet as F  # noqa: E402
from failover import ControlPlane, proc_cpu_s  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def rollup_mib(pid):
    """(pss, uss) in MiB from /proc/PID/smaps_rollup."""
    vals = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                vals[parts[0][:-1]] = int(parts[1])
    return (vals.get("Pss", 0) / 1024.0,
            (vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)) / 1024.0)


def holder(cp, lease):
    try:
        return cp.request("GET", "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (F.NS, lease)) \
            .get("spec", {}).get("holderIdentity")
    except Exception:  # not created yet
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="testenv bin dir (testenv, peer)")
    ap.add_argument("--leasehold", required=True, help="path of the leasehold command")
    ap.add_argument("--dir", default="build/bench-sidecar-testenv", help="state dir of the control plane")
    ap.add_argument("--out", default="bench/results/sidecar.json")
    ap.add_argument("--seconds", type=int, default=300, help="steady-state window")
    args = ap.parse_args()
    args.dir = os.path.abspath(args.dir)
    cp = ControlPlane(args)
    print("[sidecar] control plane in %s" % args.dir, flush=True)
    cp.up()
    procs = {}
    logs = []
    try:
        kc = os.path.join(args.dir, "kubeconfig-elector")
        lh_lease, go_lease = F.unique_lease("sidecar-lh"), F.unique_lease("sidecar-go")
        for ident in ("lh-a", "lh-b"):
            err = open(os.path.join(args.dir, "sidecar-%s.log" % ident), "wb")
            logs.append(err)
            procs[ident] = subprocess.Popen(
                [args.leasehold, "run", "--lock", "k8s://%s/%s" % (F.NS, lh_lease), "--kubeconfig", kc,
                 "--identity", ident, "--", "sleep", "infinity"],
                stdout=err, stderr=err, start_new_session=True)
            time.sleep(1)  # the first one leads
        for ident in ("go-a", "go-b"):
            err = open(os.path.join(args.dir, "sidecar-%s.log" % ident), "wb")
            logs.append(err)
            procs[ident] = subprocess.Popen(
                [os.path.join(args.bin, "peer"), "--kubeconfig", kc, "--namespace", F.NS, "--name", go_lease,
                 "--identity", ident], stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            time.sleep(1)
        leaders = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(leaders) < 2:
            for impl, lease in (("leasehold", lh_lease), ("client_go", go_lease)):
                h = holder(cp, lease)
                if h:
                    leaders[impl] = h
            time.sleep(0.5)
        if len(leaders) < 2:
            print("[sidecar] ERROR: no leader within 60 s: %s" % leaders)
            return 1
        role = {}
        for impl, prefix in (("leasehold", "lh"), ("client_go", "go")):
            for ident in (prefix + "-a", prefix + "-b"):
                role[ident] = (impl, "leader" if ident == leaders[impl] else "follower")
        time.sleep(10)  # past the start-up requests
        cpu0 = {i: proc_cpu_s(p.pid) for i, p in procs.items()}
        samples = {i: [] for i in procs}
        shares = {i: [] for i in procs}  # (pss, uss)
        t0 = time.monotonic()
        print("[sidecar] leaders %s; sampling RSS and CPU for %d s" % (leaders, args.seconds), flush=True)
        next_report = t0 + 60
        while time.monotonic() - t0 < args.seconds:
            for i, p in procs.items():
                if p.poll() is not None:
                    print("[sidecar] ERROR: %s exited (rc %s)" % (i, p.returncode))
                    return 1
                samples[i].append(round(rss_mib(p.pid), 2))
                shares[i].append(rollup_mib(p.pid))
            if time.monotonic() >= next_report:
                print("[sidecar] %3.0f/%d s: RSS MiB %s" % (time.monotonic() - t0, args.seconds,
                      {i: s[-1] for i, s in samples.items()}), flush=True)
                next_report += 60
            time.sleep(5)
        window = time.monotonic() - t0
        cpu1 = {i: proc_cpu_s(p.pid) for i, p in procs.items()}
        changed = [impl for impl, lease in (("leasehold", lh_lease), ("client_go", go_lease))
                   if holder(cp, lease) != leaders[impl]]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
        cp.down()
    result = {"leasehold": {}, "client_go": {}}
    for ident, (impl, r) in role.items():
        s = samples[ident]
        result[impl]["sidecar_rss_mib_" + r] = round(sum(s) / len(s), 2)
        result[impl]["sidecar_rss_max_mib_" + r] = max(s)
        result[impl]["sidecar_pss_mib_" + r] = round(sum(x[0] for x in shares[ident]) / len(s), 2)
        result[impl]["sidecar_uss_mib_" + r] = round(sum(x[1] for x in shares[ident]) / len(s), 2)
        result[impl]["cpu_s_per_hour_" + r] = round((cpu1[ident] - cpu0[ident]) * 3600.0 / window, 2)
        result[impl].setdefault("raw", {})["rss_mib_" + r] = s
    for impl in result:
        result[impl]["sidecar_rss_mib"] = max(result[impl]["sidecar_rss_mib_leader"],
                                              result[impl]["sidecar_rss_mib_follower"])
    doc = dict(result, meta={
        "what": "leasehold: `leasehold run --lock k8s://... -- sleep infinity` (the sidecar process only); "
                "client_go: testenv/peer (client-go leaderelection, LeaseLock)",
        "timings": "15s/10s/2s", "window_s": round(window, 1), "leaders_changed": changed,
        "cpu_tick_s": 1.0 / TICK, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print("%-28s %10s %10s" % ("", "leasehold", "client-go"))
    for k in ("sidecar_rss_mib_leader", "sidecar_rss_mib_follower", "sidecar_uss_mib_leader",
              "sidecar_uss_mib_follower", "cpu_s_per_hour_leader",
              "cpu_s_per_hour_follower"):
        print("%-28s %10s %10s" % (k, result["leasehold"][k], result["client_go"][k]))
    print("[sidecar] wrote %s" % args.out)
    if changed:
        print("[sidecar] ERROR: leadership changed during the window: %s" % changed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
