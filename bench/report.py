#!/usr/bin/env python3
"""Merges the benchmark results into bench/results/latest.json and writes
docs/benchmarks.md with its plots (docs/benchmarks/*.png). Last step of
`make bench`; run it alone to redraw from the JSON already in bench/results:

  /usr/bin/python3 bench/report.py [--results bench/results] [--doc docs/benchmarks.md]

Inputs (each written by one driver of `make bench`, raw samples inside):
  failover.json     bench/failover.py    graceful and crash failover, crash take-over lateness and
                                         requests/min of one Lease with 3 candidates (audit log)
  sidecar.json      bench/sidecar.py     RSS and CPU of one idle elector process, leader and follower
  contention.json   bench/contention.py  50 cold candidates on one Lease
  scale.json        bench/scale.py       1,000 Leases in one process
  kube_client.json  leasehold_kube_client_bench  GET/PUT round trips and client CPU
  cadence.json      bench/cadence.py     longest kube-apiserver outage survived per renew_interval
                                         (leasehold only: client-go renews every retry period)

latest.json has a `leasehold` and a `client_go` object with the same keys, a
`ratio` object (client_go / leasehold: above 1, leasehold is better — lower is
better for every key), the goals of issues 8 and 15 with their verdicts, and
`meta` naming each input and when it ran. A missing input is reported, never
invented: its keys are null and the doc says it was not run.

Issue 15's numbers, in both objects (and their ratios): scale_cpu_s_per_hour_per_lease
and apiserver_cpu_s_per_hour_per_lease (scale.json, 1,000 Leases), ha_lease_requests_per_min,
graceful_failover_p99_ms and crash_takeover_lateness_p50_ms / _p99_ms (failover.json). The
doc shows them in a table and a plot (benchmarks/headline.png) and names where
client-go is better.

Plots need matplotlib (Debian python3-matplotlib: scripts/deps.sh --bench).
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True

IMPLS = ("leasehold", "client_go")
LABEL = {"leasehold": "leasehold", "client_go": "client-go"}
COLOR = {"leasehold": "#1b7837", "client_go": "#5e3c99"}


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def get(d, *keys):
    for k in keys:
        if d is None:
            return None
        d = d.get(k) if isinstance(d, dict) else None
    return d


def merge(results):
    src = {n: load(results, n + ".json") for n in ("failover", "sidecar", "contention", "scale", "kube_client",
                                                   "cadence")}
    out = {impl: {} for impl in IMPLS}
    for impl in IMPLS:
        o = out[impl]
        fo = get(src["failover"], impl) or {}
        for k in ("graceful_failover_p50_ms", "graceful_failover_p99_ms", "graceful_trials",
                  "graceful_server_writes_p50_ms", "graceful_server_writes_p99_ms",
                  "graceful_client_share_p50_ms", "graceful_client_share_p99_ms",
                  "crash_takeover_write_p99_ms", "crash_takeover_lateness_client_share_p99_ms",
                  "crash_failover_over_lease_p50_ms", "crash_failover_over_lease_p99_ms", "crash_trials",
                  "crash_timings", "crash_failover_over_lease_defaults_p50_ms",
                  "crash_failover_over_lease_defaults_p99_ms", "crash_trials_defaults",
                  "crash_takeover_lateness_p50_ms", "crash_takeover_lateness_p99_ms",
                  "crash_takeover_lateness_trials", "crash_takeovers_before_holder_expiry",
                  "ha_lease_requests_per_min", "ha_lease_candidates",
                  "leader_requests_per_min", "follower_requests_per_min"):
            o[k] = fo.get(k)
        sc = get(src["sidecar"], impl) or {}
        for k in ("sidecar_rss_mib", "sidecar_rss_mib_leader", "sidecar_rss_mib_follower",
                  "sidecar_uss_mib_leader", "sidecar_uss_mib_follower", "sidecar_pss_mib_leader",
                  "sidecar_pss_mib_follower", "cpu_s_per_hour_leader", "cpu_s_per_hour_follower"):
            o[k] = sc.get(k)
        ct = get(src["contention"], impl) or {}
        o["contention_candidates"] = get(src["contention"], "meta", "candidates")
        o["contention_trials"] = ct.get("trials")
        o["contention_first_leader_p50_ms"] = ct.get("time_to_first_leader_p50_ms")
        o["contention_first_leader_max_ms"] = ct.get("time_to_first_leader_max_ms")
        o["contention_conflicts_per_trial"] = ct.get("conflicts_per_trial_mean")
        o["contention_requests_first_10s"] = ct.get("requests_first_10s_mean")
        sl = get(src["scale"], impl) or {}
        o["scale_leases"] = sl.get("leases")
        o["scale_leading_at_end"] = sl.get("leading_at_end")
        o["scale_cpu_s_per_hour"] = sl.get("cpu_s_per_hour")
        o["scale_cpu_s_per_hour_per_lease"] = sl.get("cpu_s_per_hour_per_lease")
        if impl == "leasehold":
            lc = get(src["scale"], "leasehold_curl") or {}
            o["scale_cpu_s_per_hour_per_lease_curl"] = lc.get("cpu_s_per_hour_per_lease")
        o["scale_rss_mib"] = sl.get("rss_mib")
        o["scale_rss_kib_per_lease"] = sl.get("rss_kib_per_lease")
        o["scale_apiserver_requests_per_min"] = sl.get("apiserver_requests_per_min")
        # kube-apiserver CPU (its /proc) per Lease-hour at the scale run's N:
        # what a cluster operator pays. leasehold: protobuf; client-go: JSON.
        o["apiserver_cpu_s_per_hour_per_lease"] = sl.get("apiserver_cpu_s_per_hour_per_lease")
        o["scale_lease_wire_format"] = sl.get("lease_format")
        kc = get(src["kube_client"], "summary") or {}
        for k in ("get_p50_ns", "put_p50_ns", "get_cpu_ns", "put_cpu_ns"):
            v = get(kc, k, impl)
            o["client_" + k.replace("_ns", "_us")] = round(v / 1000.0, 1) if v is not None else None
    ratio = {}
    for k, v in out["leasehold"].items():
        g = out["client_go"].get(k)
        if isinstance(v, (int, float)) and isinstance(g, (int, float)) and v > 0 and g > 0 and \
                "trials" not in k and not k.endswith(("_leases", "leading_at_end", "candidates")) and \
                k not in NOT_COMPARED:
            ratio[k] = round(g / v, 2)
    return src, out, ratio


def wire(src):
    """leasehold's Lease wire formats side by side (scale.json's leasehold and
    leasehold_json: the same binary, protobuf vs forced JSON); None if not run."""
    pb, js = get(src["scale"], "leasehold"), get(src["scale"], "leasehold_json")
    if not pb or not js:
        return None
    keys = ("scale_cpu_s_per_hour_per_lease", "apiserver_cpu_s_per_hour_per_lease", "apiserver_cpu_ms_per_request",
            "scale_apiserver_requests_per_min")
    col = lambda s: {"scale_cpu_s_per_hour_per_lease": s.get("cpu_s_per_hour_per_lease"),
                     "apiserver_cpu_s_per_hour_per_lease": s.get("apiserver_cpu_s_per_hour_per_lease"),
                     "apiserver_cpu_ms_per_request": s.get("apiserver_cpu_ms_per_request"),
                     "scale_apiserver_requests_per_min": s.get("apiserver_requests_per_min"),
                     "lease_format": s.get("lease_format"), "leading_at_end": s.get("leading_at_end")}
    p, j = col(pb), col(js)
    return {"protobuf": p, "json": j,
            "ratio_json_over_protobuf": {k: round(j[k] / p[k], 2) if p.get(k) and j.get(k) is not None else None
                                         for k in keys}}


def transport(src):
    """leasehold's two Kubernetes transports side by side with client-go
    (scale.json's leasehold: the default, its own HTTP/2; leasehold_curl: the
    same binary on libcurl; and client_go); None if leasehold_curl was not run."""
    h2, cu, go = (get(src["scale"], k) for k in ("leasehold", "leasehold_curl", "client_go"))
    if not cu or not h2:
        return None
    keys = ("cpu_s_per_hour_per_lease", "rss_kib_per_lease", "apiserver_cpu_s_per_hour_per_lease",
            "apiserver_requests_per_min", "leading_at_end", "sockets", "threads", "context_switches_per_request")
    col = lambda s: {k: s.get(k) for k in keys} if s else None
    ratio = lambda over, under: {k: round(over[k] / under[k], 2) if under.get(k) and over.get(k) is not None else None
                                 for k in keys[:4]}
    c, h, g = col(cu), col(h2), col(go)
    return {"curl": c, "default": h, "client_go": g, "ratio_curl_over_default": ratio(c, h),
            "ratio_client_go_over_curl": ratio(g, c) if g else None}


def cadence(src):
    """Rows of cadence.json: renew_interval, writes/min, the theoretical bounds
    and the measured outages (worst phase; best phase when it was run)."""
    rows = []
    for c in get(src["cadence"], "cadences") or []:
        row = {"renew_interval_s": c.get("renew_interval_s"), "writes_per_min": c.get("writes_per_min"),
               "theory": c.get("theory")}
        for phase in ("worst", "best"):
            m = c.get(phase)
            if m:
                row[phase] = {k: m.get(k) for k in ("longest_survived_s", "shortest_lost_s", "trials")}
                # The term it had left when it began: renew_deadline - phase.
                rd, ph = get(c, "theory", "best", "max_s"), m.get("longest_survived_phase_s")
                row[phase]["longest_survived_term_left_s"] = round(rd - ph, 2) if None not in (rd, ph) else None
        rows.append(row)
    return rows or None


def goals(out, src):
    """The goals of issues 8 and 15 with their verdicts (benchmarks, not
    tests). Issue 15's supersede issue 8's graceful (<= 50 ms), crash (<= +100
    ms over the lease) and the CPU half of its cost per Lease."""
    lh, go = out["leasehold"], out["client_go"]
    g = []

    def add(name, value, target, ok, note=""):
        g.append({"goal": name, "value": value, "target": target,
                  "met": None if ok is None else bool(ok), "note": note})

    def vs(a, b):
        """leasehold's and client-go's values and client-go / leasehold, or None."""
        return None if None in (a, b) or not a else {"leasehold": a, "client_go": b, "ratio": round(b / a, 2)}

    c = vs(lh["scale_cpu_s_per_hour_per_lease"], go["scale_cpu_s_per_hour_per_lease"])
    n = format(lh["scale_leases"], ",") if isinstance(lh["scale_leases"], int) else "1,000"
    add("client CPU per Lease-hour at %s Leases vs client-go" % n, c, ">= 5x lower",
        None if c is None else c["ratio"] >= 5,
        "issue 15; CPU s per hour per Lease, one process; the default transport: leasehold's own HTTP/2")
    t = transport(src)
    if t and t.get("client_go"):
        h = vs(t["curl"].get("cpu_s_per_hour_per_lease"), t["client_go"].get("cpu_s_per_hour_per_lease"))
        add("the same on the libcurl transport", h, ">= 5x lower", None if h is None else h["ratio"] >= 5,
            "issue 15; libcurl carries proxies, http:// and HTTP/1.1-only servers, or LEASEHOLD_KUBE_TRANSPORT=curl")
    a = vs(lh.get("apiserver_cpu_s_per_hour_per_lease"), go.get("apiserver_cpu_s_per_hour_per_lease"))
    add("kube-apiserver CPU per Lease-hour vs client-go", a, "lower (ratio > 1)",
        None if a is None else a["leasehold"] < a["client_go"],
        "issue 15; at %s Leases, leasehold on %s, client-go on JSON" %
        (n, lh.get("scale_lease_wire_format") or "its default wire format"))
    v = lh["graceful_failover_p99_ms"]
    add("graceful failover p99", v, "<= 5 ms", None if v is None else v <= 5, "issue 15; at %s%s" %
        (get(src["failover"], "meta", "timings") or "15s/10s/2s",
         "" if lh.get("graceful_server_writes_p99_ms") is None else
         "; kube-apiserver's release and take-over writes alone: p99 %s ms; the rest: p99 %s ms" %
         (fmt(lh["graceful_server_writes_p99_ms"]), fmt(lh.get("graceful_client_share_p99_ms")))))
    v = lh["crash_takeover_lateness_p99_ms"]
    add("crash take-over lateness past the observed expiry, p99", v, "<= 5 ms", None if v is None else v <= 5,
        "issue 15; audit log; at %s%s" % (lh.get("crash_timings"),
                                          "" if lh.get("crash_takeover_write_p99_ms") is None else
                                          "; the take-over write alone: p99 %s ms; the rest: p99 %s ms" %
                                          (fmt(lh["crash_takeover_write_p99_ms"]),
                                           fmt(lh.get("crash_takeover_lateness_client_share_p99_ms")))))
    v = lh["follower_requests_per_min"]
    add("follower requests while its watch is healthy", v, "0 per minute", None if v is None else v == 0)
    v = lh["sidecar_rss_mib"]
    add("sidecar RSS", v, "<= 5 MiB", None if v is None else v <= 5)
    r = vs(lh["scale_rss_kib_per_lease"], go["scale_rss_kib_per_lease"])
    add("RSS per Lease at %s Leases vs client-go" % n, r, ">= 5x lower",
        None if r is None else r["ratio"] >= 5, "issue 8")
    return g


def headline_rows(out):
    """Issue 15's numbers: (title, key, unit, goal for leasehold or None)."""
    n = out["leasehold"].get("scale_leases") or out["client_go"].get("scale_leases") or 1000
    n = format(n, ",") if isinstance(n, int) else n
    cand = out["leasehold"].get("ha_lease_candidates") or 3
    return [("Client CPU per Lease-hour\n(%s Leases, one process)" % n, "scale_cpu_s_per_hour_per_lease",
             "CPU s/hour", "client-go / 5"),
            ("kube-apiserver CPU per Lease-hour\n(%s Leases)" % n, "apiserver_cpu_s_per_hour_per_lease",
             "CPU s/hour", None),
            ("kube-apiserver requests/min,\none Lease, %s candidates" % cand, "ha_lease_requests_per_min",
             "requests/min", None),
            ("Graceful failover p99", "graceful_failover_p99_ms", "ms", 5),
            ("Crash take-over past the\nobserved expiry, p99", "crash_takeover_lateness_p99_ms", "ms", 5)]


def out_ratio(lh_v, go_v):
    """client-go / leasehold, or None when either is missing or not above 0."""
    if isinstance(lh_v, (int, float)) and isinstance(go_v, (int, float)) and lh_v > 0 and go_v > 0:
        return round(go_v / lh_v, 2)
    return None


HIGHER_IS_BETTER = ("scale_leading_at_end",)
# The control plane's own write times: the same server for both, not a property of either client.
NOT_COMPARED = ("scale_leases", "graceful_server_writes_p50_ms", "graceful_server_writes_p99_ms",
                "crash_takeover_write_p99_ms")


def client_go_better(lh, go, k):
    """True when client-go's number is the better one (lower, except
    HIGHER_IS_BETTER), False when it is not, None when either is missing."""
    v, g = lh.get(k), go.get(k)
    if k in NOT_COMPARED or not isinstance(v, (int, float)) or not isinstance(g, (int, float)):
        return None
    return g > v if k in HIGHER_IS_BETTER else g < v


# ---------------------------------------------------------------- plots

def plots(src, out, figdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is missing (scripts/deps.sh --bench installs python3-matplotlib; "
              "run with /usr/bin/python3); no plots drawn", file=sys.stderr)
        return []
    os.makedirs(figdir, exist_ok=True)
    made = []

    def save(fig, name, rect=None):
        path = os.path.join(figdir, name)
        fig.tight_layout(rect=rect)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(name)

    fo = src["failover"]
    if fo:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for ax, key, title, xl in (
                (axes[0], "graceful_ms", "Graceful release -> other leads (%s)" % fo["meta"]["timings"],
                 "ms (log scale)"),
                (axes[1], "crash_over_lease_ms", "SIGKILL -> other leads, minus the lease (%s)" %
                 (get(fo, "leasehold", "crash_timings") or ""), "ms after the lease expired"),
                (axes[2], "crash_takeover_lateness_ms", "SIGKILL: take-over past the expiry the follower "
                 "observed\n(audit log, %s)" % (get(fo, "leasehold", "crash_timings") or ""),
                 "ms (symmetric log scale)")):
            for impl in IMPLS:
                xs = sorted(get(fo, impl, "raw", key) or [])
                if not xs:
                    continue
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                ax.step(xs, ys, where="post", color=COLOR[impl], label="%s (n=%d)" % (LABEL[impl], len(xs)))
            if key == "graceful_ms":
                ax.set_xscale("log")
            elif key == "crash_takeover_lateness_ms":
                ax.set_xscale("symlog", linthresh=1)
            if key != "crash_over_lease_ms":
                ax.axvline(5, color="grey", ls="--", lw=1)
                ax.text(5, 0.03, " goal p99 5 ms", color="grey", fontsize=8, transform=ax.get_xaxis_transform())
            ax.set_ylim(0, 1.02)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(xl)
            ax.set_ylabel("fraction of trials")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, loc="lower right")
            else:  # an input from before this measurement
                ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes, color="grey")
        save(fig, "failover.png")

    def bars(ax, groups, title, ylabel, fmt="%.1f"):
        import numpy as np
        xs = np.arange(len(groups))
        w = 0.38
        for k, impl in enumerate(IMPLS):
            vals = [v[k] if v[k] is not None else 0 for _, v in groups]
            b = ax.bar(xs + (k - 0.5) * w, vals, w, color=COLOR[impl], label=LABEL[impl])
            for rect, (_, v) in zip(b, groups):
                ax.annotate("n/a" if v[k] is None else fmt % v[k], (rect.get_x() + rect.get_width() / 2,
                            rect.get_height()), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(xs)
        ax.set_xticklabels([g for g, _ in groups], fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)

    lh, go = out["leasehold"], out["client_go"]
    if fo or src["sidecar"]:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        bars(axes[0], [("leader", (lh["leader_requests_per_min"], go["leader_requests_per_min"])),
                       ("follower", (lh["follower_requests_per_min"], go["follower_requests_per_min"])),
                       ("HA Lease\n(%s candidates)" % (lh["ha_lease_candidates"] or 3),
                        (lh["ha_lease_requests_per_min"], go["ha_lease_requests_per_min"]))],
             "kube-apiserver requests per minute (audit log)", "requests/min")
        bars(axes[1], [("RSS leader", (lh["sidecar_rss_mib_leader"], go["sidecar_rss_mib_leader"])),
                       ("RSS follower", (lh["sidecar_rss_mib_follower"], go["sidecar_rss_mib_follower"])),
                       ("USS leader", (lh["sidecar_uss_mib_leader"], go["sidecar_uss_mib_leader"]))],
             "Elector process memory", "MiB")
        axes[1].axhline(5, color="grey", ls="--", lw=1)
        bars(axes[2], [("leader", (lh["cpu_s_per_hour_leader"], go["cpu_s_per_hour_leader"])),
                       ("follower", (lh["cpu_s_per_hour_follower"], go["cpu_s_per_hour_follower"]))],
             "Elector process CPU", "CPU seconds per hour")
        save(fig, "idle_cost.png")

    # Issue 15's numbers side by side, one panel each (lower is better).
    heads = headline_rows(out)
    if any(lh[k] is not None or go[k] is not None for _, k, _, _ in heads):
        fig, axes = plt.subplots(1, len(heads), figsize=(3.1 * len(heads), 4.1))
        for ax, (title, k, unit, goal) in zip(axes, heads):
            vals = (lh[k], go[k])
            bars(ax, [("", vals)], title, unit, "%.4g")
            ax.get_legend().remove()  # one legend for the figure
            ax.set_xticks([])
            if vals == (None, None):
                ax.set_yticks([])  # not run: "n/a" on an empty axis
            ax.margins(y=0.12)
            if goal == "client-go / 5":
                goal, glabel = (go[k] / 5.0 if go[k] else None), "goal: client-go / 5 "
            else:
                glabel = "goal %s %s " % (goal, unit)
            if goal is not None:
                ax.axhline(goal, color="grey", ls="--", lw=1)
                ax.text(1.0, goal, glabel, color="black", fontsize=7, ha="right", va="bottom",
                        transform=ax.get_yaxis_transform(), bbox=dict(facecolor="white", alpha=0.8, lw=0, pad=1))
            # client-go's failover is two orders of magnitude longer: a log
            # axis keeps leasehold's bar visible.
            if None not in vals and min(vals) > 0 and max(vals) / min(vals) > 30:
                ax.set_yscale("log")
            r = out_ratio(lh[k], go[k])
            if r is not None:
                ax.set_xlabel("client-go / leasehold = %s%s" % (r, " (client-go better)" if go[k] < lh[k] else ""),
                              fontsize=8)
        fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=2, fontsize=9)
        save(fig, "headline.png", rect=(0, 0, 1, 0.92))

    ct = src["contention"]
    if ct:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        for impl in IMPLS:
            t = get(ct, impl, "raw", "time_to_first_leader_ms") or []
            c = get(ct, impl, "raw", "conflicts_409") or []
            axes[0].plot(range(1, len(t) + 1), t, "o-", color=COLOR[impl], label=LABEL[impl])
            axes[1].plot(range(1, len(c) + 1), c, "o-", color=COLOR[impl], label=LABEL[impl])
        axes[0].set_title("%s cold candidates: first spawn -> first leader" %
                          (get(ct, "meta", "candidates") or "?"), fontsize=10)
        axes[0].set_ylabel("ms")
        axes[1].set_title("Conflicts (409 from kube-apiserver) per trial", fontsize=10)
        axes[1].set_ylabel("responses")
        from matplotlib.ticker import MaxNLocator
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("trial")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        save(fig, "contention.png")

    if src["scale"]:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        bars(axes[0], [("per lease", (lh["scale_cpu_s_per_hour_per_lease"], go["scale_cpu_s_per_hour_per_lease"]))],
             "Client CPU per lease (%s leases)" % lh["scale_leases"], "CPU seconds per hour", "%.2f")
        bars(axes[1], [("per lease", (lh["scale_rss_kib_per_lease"], go["scale_rss_kib_per_lease"]))],
             "Client RSS per lease", "KiB")
        bars(axes[2], [("whole process", (lh["scale_rss_mib"], go["scale_rss_mib"]))], "Client RSS", "MiB")
        save(fig, "scale.png")

    kc = src["kube_client"]
    if kc:
        s = kc["summary"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        bars(axes[0], [(k.split("_")[0].upper() + " p50", (s[k]["leasehold"] / 1e3, s[k]["client_go"] / 1e3))
                       for k in ("get_p50_ns", "put_p50_ns")], "Round trip to kube-apiserver", "µs", "%.0f")
        bars(axes[1], [(k.split("_")[0].upper(), (s[k]["leasehold"] / 1e3, s[k]["client_go"] / 1e3))
                       for k in ("get_cpu_ns", "put_cpu_ns")], "Client CPU per request", "µs", "%.0f")
        save(fig, "kube_client.png")

    cd = get(src["cadence"], "cadences")
    if cd:
        fig, ax = plt.subplots(figsize=(8, 4))
        rs = [c["renew_interval_s"] for c in cd]
        w = min([b - a for a, b in zip(rs, rs[1:])] or [1.0]) * 0.12
        for k, (phase, color, label) in enumerate((("worst", "#d6604d", "theory, worst phase (sure .. max)"),
                                                   ("best", "#4393c3", "theory, best phase (sure .. max)"))):
            for i, c in enumerate(cd):
                th = get(c, "theory", phase)
                if th:
                    x = c["renew_interval_s"] + (k - 0.5) * 2.2 * w
                    ax.bar(x, th["max_s"] - th["sure_s"], 2 * w, bottom=th["sure_s"], color=color, alpha=0.35,
                           label=label if i == 0 else None)
            pts = [(c["renew_interval_s"] + (k - 0.5) * 2.2 * w, get(c, phase, "longest_survived_s"),
                    get(c, phase, "shortest_lost_s")) for c in cd if c.get(phase)]
            if pts:
                ax.plot([p[0] for p in pts if p[1] is not None], [p[1] for p in pts if p[1] is not None], "o",
                        color=color, label="measured %s phase: longest survived" % phase)
                ax.plot([p[0] for p in pts if p[2] is not None], [p[2] for p in pts if p[2] is not None], "x",
                        color=color, label="measured %s phase: shortest lost" % phase)
        ax.set_xticks(rs)
        ax.set_xticklabels(["%gs\n%g writes/min" % (c["renew_interval_s"], c["writes_per_min"]) for c in cd],
                           fontsize=9)
        ax.set_xlabel("renew_interval (leader writes per minute)")
        ax.set_ylabel("kube-apiserver outage (s)")
        ax.set_title("Longest kube-apiserver outage a leader survives, by renewal cadence (%s)" %
                     get(src["cadence"], "meta", "timings"), fontsize=10)
        top = max([get(c, "theory", "best", "max_s") or get(c, "theory", "worst", "max_s") or 0 for c in cd])
        ax.set_ylim(0, top * 1.45)  # room for the legend above the bars
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", ncol=2)
        save(fig, "cadence.png")
    return made


# ---------------------------------------------------------------- doc

def fmt(v, unit=""):
    if v is None:
        return "not run"
    if isinstance(v, float):
        if 0 < abs(v) < 1:
            v = "%.3g" % v  # per-Lease CPU and ratios below 1: three significant digits
        else:
            v = ("%.2f" % v).rstrip("0").rstrip(".") if abs(v) < 100 else "%.0f" % v
    return "%s%s" % (v, unit)


def doc(src, out, ratio, gl, made, path):
    lh, go = out["leasehold"], out["client_go"]
    L = []
    w = L.append
    w("# Benchmarks: leasehold beside client-go")
    w("")
    w("<!-- Generated by bench/report.py from bench/results/*.json (`make bench`); edit the script, not this file. -->")
    w("")
    w("Every number here comes from one `make bench` run on the real control plane (kube-apiserver v1.36.3 and "
      "etcd v3.6.16 built by `testenv/build.sh`, on loopback), with leasehold and the client-go peer "
      "(`testenv/peer`, client-go v0.36.3 `tools/leaderelection`) measured side by side in the same run and "
      "with the same timings. The raw samples are in `bench/results/*.json`; the merged view is "
      "`bench/results/latest.json` (a `leasehold` and a `client_go` object with the same keys). "
      "Ratio = client-go / leasehold: above 1, leasehold is better (lower is better for every row).")
    w("")
    metas = []
    for name in ("failover", "sidecar", "contention", "scale", "kube_client", "cadence"):
        s = src[name]
        if s is None:
            metas.append("- `%s.json`: **not run**" % name)
            continue
        m = s.get("meta", {})
        la = m.get("loadavg_after") or m.get("loadavg_after_each_run") or m.get("loadavg_before") or \
            s.get("loadavg_at_end")
        when = ("finished %s, " % m["finished"]) if m.get("finished") else ""
        metas.append("- `%s.json`: %sload average after %s on %s CPUs" % (name, when, la, m.get("cpus", s.get("cpus", 2))))
    w("The machine: 2 cores shared by kube-apiserver, etcd and every candidate; the load average is "
      "recorded with each result, because it moves wall-clock numbers:")
    w("")
    L.extend(metas)
    w("")
    w("## Goals")
    w("")
    w("Benchmarks, not tests: a goal not met is reported here, it fails nothing.")
    w("")
    w("| goal | target | leasehold | met | note |")
    w("|---|---|---|---|---|")
    for g in gl:
        w("| %s | %s | %s | %s | %s |" % (
            g["goal"], g["target"], fmt(g["value"]) if not isinstance(g["value"], dict)
            else ", ".join("%s %s" % (LABEL.get(k, k), fmt(v)) for k, v in g["value"].items()),
            {True: "yes", False: "**no**", None: "not run"}[g["met"]], g["note"]))
    w("")
    w("## Issue 15: cost per Lease, requests of one HA Lease, failover")
    w("")
    w("Lower is better in every row. Client and kube-apiserver CPU come from the scale run (`scale.json`, "
      "%s Leases in one process, %s); the rest from `failover.json`. The HA Lease is one Lease with "
      "%s candidates (1 leader, 2 standbys), each its own user, counted from the audit log. Crash take-over "
      "lateness is measured in the audit log alone (one clock): the follower's first successful update after "
      "the kill, minus the expiry it observed (the killed leader's last successful write as the follower saw "
      "it, by its watch or, for a polling follower, its next GET, plus the lease duration); see "
      "`takeover_lateness()` in `bench/failover.py` for its known errors." %
      (format(lh["scale_leases"], ",") if isinstance(lh.get("scale_leases"), int) else "1,000",
       get(src["scale"], "meta", "timings") or "15s/10s/2s", lh.get("ha_lease_candidates") or 3))
    w("")
    w("| | leasehold | client-go | ratio | better |")
    w("|---|---|---|---|---|")
    heads = headline_rows(out) + [("Crash take-over past the observed expiry, p50", "crash_takeover_lateness_p50_ms",
                                   "ms", None)]
    go_wins = []
    for title, k, unit, _ in heads:
        label = "%s, %s" % (title.replace("\n", " "), unit)
        b = client_go_better(lh, go, k)
        if b:
            go_wins.append(label)
        r = out_ratio(lh.get(k), go.get(k))
        w("| %s | %s | %s | %s | %s |" % (label, fmt(lh.get(k)), fmt(go.get(k)), fmt(r) if r is not None else "",
                                         {True: "**client-go**", False: "leasehold" if lh.get(k) != go.get(k)
                                          else "equal", None: ""}[b]))
    w("")
    w("**Where client-go is better here:** %s." % ("; ".join(go_wins) if go_wins else "nowhere in this table"))
    w("")
    if "headline.png" in made:
        w("![headline](benchmarks/headline.png)")
        w("")
    w("## Summary")
    w("")
    w("| | leasehold | client-go | ratio |")
    w("|---|---|---|---|")
    rows = [
        ("graceful release → other leads, p50 (ms)", "graceful_failover_p50_ms"),
        ("graceful release → other leads, p99 (ms)", "graceful_failover_p99_ms"),
        ("graceful: kube-apiserver's release + take-over writes, p50 (ms, audit log)",
         "graceful_server_writes_p50_ms"),
        ("graceful: kube-apiserver's release + take-over writes, p99 (ms, audit log)",
         "graceful_server_writes_p99_ms"),
        ("graceful: the rest (total - those writes), p50 (ms)", "graceful_client_share_p50_ms"),
        ("graceful: the rest (total - those writes), p99 (ms)", "graceful_client_share_p99_ms"),
        ("SIGKILL → other leads, minus the lease, p50 (ms) at %s" % lh.get("crash_timings"),
         "crash_failover_over_lease_p50_ms"),
        ("SIGKILL → other leads, minus the lease, p99 (ms) at %s" % lh.get("crash_timings"),
         "crash_failover_over_lease_p99_ms"),
        ("SIGKILL at the defaults 15s/10s/2s, p50 (ms)", "crash_failover_over_lease_defaults_p50_ms"),
        ("SIGKILL at the defaults 15s/10s/2s, p99 (ms)", "crash_failover_over_lease_defaults_p99_ms"),
        ("SIGKILL → take-over past the observed expiry, p50 (ms, audit log) at %s" % lh.get("crash_timings"),
         "crash_takeover_lateness_p50_ms"),
        ("SIGKILL → take-over past the observed expiry, p99 (ms, audit log) at %s" % lh.get("crash_timings"),
         "crash_takeover_lateness_p99_ms"),
        ("SIGKILL → take-over write in kube-apiserver, p99 (ms, audit log)", "crash_takeover_write_p99_ms"),
        ("SIGKILL → take-over past the observed expiry minus that write, p99 (ms)",
         "crash_takeover_lateness_client_share_p99_ms"),
        ("SIGKILL → take-overs before the dead holder's lease ran out (of %s trials, audit log)" %
         lh.get("crash_takeover_lateness_trials"), "crash_takeovers_before_holder_expiry"),
        ("kube-apiserver requests/min, one Lease with %s candidates" % (lh.get("ha_lease_candidates") or 3),
         "ha_lease_requests_per_min"),
        ("kube-apiserver requests/min, leader", "leader_requests_per_min"),
        ("kube-apiserver requests/min, one follower", "follower_requests_per_min"),
        ("elector process RSS, leader (MiB)", "sidecar_rss_mib_leader"),
        ("elector process RSS, follower (MiB)", "sidecar_rss_mib_follower"),
        ("elector process private memory (USS), leader (MiB)", "sidecar_uss_mib_leader"),
        ("elector process private memory (USS), follower (MiB)", "sidecar_uss_mib_follower"),
        ("CPU s/hour, leader", "cpu_s_per_hour_leader"),
        ("CPU s/hour, follower", "cpu_s_per_hour_follower"),
        ("contention: first spawn → first leader, p50 (ms)", "contention_first_leader_p50_ms"),
        ("contention: first spawn → first leader, max (ms)", "contention_first_leader_max_ms"),
        ("contention: conflicts (409) per trial", "contention_conflicts_per_trial"),
        ("contention: requests in the first 10 s", "contention_requests_first_10s"),
        ("scale: leases held by one process", "scale_leases"),
        ("scale: leading at the end", "scale_leading_at_end"),
        ("scale: CPU s/hour per lease", "scale_cpu_s_per_hour_per_lease"),
        ("scale: RSS per lease (KiB)", "scale_rss_kib_per_lease"),
        ("scale: RSS of the process (MiB)", "scale_rss_mib"),
        ("scale: kube-apiserver requests/min", "scale_apiserver_requests_per_min"),
        ("scale: kube-apiserver CPU s/hour per lease", "apiserver_cpu_s_per_hour_per_lease"),
        ("client GET p50 (µs)", "client_get_p50_us"),
        ("client PUT p50 (µs)", "client_put_p50_us"),
        ("client CPU per GET (µs)", "client_get_cpu_us"),
        ("client CPU per PUT (µs)", "client_put_cpu_us"),
    ]
    for label, k in rows:
        r = ratio.get(k)
        w("| %s | %s | %s | %s |" % (label, fmt(lh.get(k)), fmt(go.get(k)), fmt(r) if r is not None else ""))
    w("")
    better = [label for label, k in rows if client_go_better(lh, go, k)]
    w("**Where client-go is better in this run:** %s." % ("; ".join(better) if better else "nowhere in this table"))
    w("")
    wf = wire(src)
    if wf:
        w("## Lease wire format: protobuf against JSON")
        w("")
        w("The scale run's leasehold process again, forced to JSON (`LEASEHOLD_KUBE_CONTENT_TYPE=json`), in "
          "the same run. Ratio = JSON / protobuf: above 1, protobuf is cheaper.")
        w("")
        w("| at %s Leases | protobuf | JSON | ratio |" % lh.get("scale_leases"))
        w("|---|---|---|---|")
        for label, k in (("client CPU s/hour per lease", "scale_cpu_s_per_hour_per_lease"),
                         ("kube-apiserver CPU s/hour per lease", "apiserver_cpu_s_per_hour_per_lease"),
                         ("kube-apiserver CPU ms per request", "apiserver_cpu_ms_per_request"),
                         ("kube-apiserver requests/min", "scale_apiserver_requests_per_min")):
            r = wf["ratio_json_over_protobuf"].get(k)
            w("| %s | %s | %s | %s |" % (label, fmt(wf["protobuf"].get(k)), fmt(wf["json"].get(k)),
                                        fmt(r) if r is not None else ""))
        w("")
    tr = transport(src)
    if tr:
        w("## Kubernetes transport: leasehold's own HTTP/2 (the default) against libcurl")
        w("")
        w("The scale run's leasehold process on its default transport, its own HTTP/2 (nghttp2 and OpenSSL on one "
          "poll loop, a round's requests in one TLS write, a tick's renewal answers read together: 4 ms apart at "
          "most while only renewals are in flight), and again on libcurl (`LEASEHOLD_KUBE_TRANSPORT=curl`, "
          "what proxies, `http://` and HTTP/1.1-only servers get), in the same run, with client-go beside them. "
          "Ratios above 1: the own transport, or leasehold on libcurl, costs less.")
        w("")
        w("| at %s Leases | leasehold, own HTTP/2 | leasehold, libcurl | client-go | libcurl / own | "
          "client-go / libcurl |" % lh.get("scale_leases"))
        w("|---|---|---|---|---|---|")
        for label, k in (("client CPU s/hour per lease", "cpu_s_per_hour_per_lease"),
                         ("RSS per lease (KiB)", "rss_kib_per_lease"),
                         ("kube-apiserver CPU s/hour per lease", "apiserver_cpu_s_per_hour_per_lease"),
                         ("kube-apiserver requests/min", "apiserver_requests_per_min"),
                         ("leading at the end", "leading_at_end"),
                         ("context switches per request (the process's, in the window)",
                          "context_switches_per_request")):
            r1 = tr["ratio_curl_over_default"].get(k)
            r2 = (tr["ratio_client_go_over_curl"] or {}).get(k)
            w("| %s | %s | %s | %s | %s | %s |" % (
                label, fmt(tr["default"].get(k)), fmt(tr["curl"].get(k)),
                fmt((tr["client_go"] or {}).get(k)), fmt(r1) if r1 is not None else "",
                fmt(r2) if r2 is not None else ""))
        w("")
    cd = cadence(src)
    w("## Renewal cadence: writes against outage tolerance")
    w("")
    if not cd:
        w("`cadence.json`: **not run** (`make bench-cadence`).")
        w("")
        return L
    m = get(src["cadence"], "meta") or {}
    w("leasehold only (client-go renews every retry period), at %s: one leader per `renew_interval`, "
      "kube-apiserver frozen (SIGSTOP) for an outage that begins just before a renewal is due (%s s before: "
      "the worst phase), bisected between the theoretical bounds. Theory: the term has renew_deadline − φ left "
      "when the outage begins, φ the time since the last successful renewal was sent (≤ renew_interval); an "
      "outage D is survived for sure if D + retry_period < renew_deadline − φ and never if "
      "D ≥ renew_deadline − φ. Writes per minute are the leader's renewals (a follower writes nothing)."
      % (m.get("timings"), fmt(m.get("lead_s"))))
    w("")
    best = any(r.get("best") for r in cd)
    w("| renew_interval | leader writes/min | theory, worst phase (sure … max) | theory, best phase (sure … max) "
      "| measured longest survived, worst phase (term left when it began) | shortest lost | trials |%s" %
      (" measured longest survived, best phase |" if best else ""))
    w("|---|---|---|---|---|---|---|%s" % ("---|" if best else ""))
    for r in cd:
        th = r["theory"] or {}
        wst = r.get("worst") or {}
        w("| %ss%s | %s | %s … %s s | %s … %s s | %s | %s | %s |%s" % (
            fmt(r["renew_interval_s"]), " (default)" if r["renew_interval_s"] == 2 else "", fmt(r["writes_per_min"]),
            fmt(get(th, "worst", "sure_s")), fmt(get(th, "worst", "max_s")),
            fmt(get(th, "best", "sure_s")), fmt(get(th, "best", "max_s")),
            fmt(wst.get("longest_survived_s"), " s") + (" (%s s)" % fmt(wst["longest_survived_term_left_s"])
                                                         if wst.get("longest_survived_term_left_s") is not None
                                                         else ""),
            fmt(wst.get("shortest_lost_s"), " s"),
            fmt(wst.get("trials")),
            (" %s |" % fmt(get(r, "best", "longest_survived_s"), " s")) if best else ""))
    w("")
    errs = m.get("errors") or []
    if errs:
        w("Errors in this run: %s." % "; ".join(errs))
        w("")
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="bench/results")
    ap.add_argument("--doc", default="docs/benchmarks.md")
    ap.add_argument("--notes", default="bench/notes.md",
                    help="hand-written method and interpretation, appended to the generated doc")
    args = ap.parse_args()
    src, out, ratio = merge(args.results)
    gl = goals(out, src)
    figdir = os.path.join(os.path.dirname(os.path.abspath(args.doc)), "benchmarks")
    made = plots(src, out, figdir)
    latest = {"leasehold": out["leasehold"], "client_go": out["client_go"], "ratio": ratio, "goals": gl,
              "lease_wire_format": wire(src), "kube_transport": transport(src), "renewal_cadence": cadence(src),
              "meta": {"inputs": {n: os.path.join(args.results, n + ".json") if src[n] is not None else None
                                  for n in src},
                       "finished": {n: get(src[n], "meta", "finished") for n in src},
                       "ratio": "client_go / leasehold; above 1, leasehold is better (lower is better for every key)"}}
    with open(os.path.join(args.results, "latest.json"), "w") as f:
        json.dump(latest, f, indent=2)
    L = doc(src, out, ratio, gl, made, args.doc)
    if made:
        L.append("## Plots")
        L.append("")
        for m in made:
            if m == "headline.png":
                continue  # under the issue 15 table
            L.append("![%s](benchmarks/%s)" % (m[:-4], m))
            L.append("")
    if os.path.exists(args.notes):
        with open(args.notes) as f:
            L.append(f.read().rstrip("\n"))
            L.append("")
    with open(args.doc, "w") as f:
        f.write("\n".join(L))
    print("report: wrote %s, %s and %d plots in %s" % (os.path.join(args.results, "latest.json"), args.doc,
                                                       len(made), figdir))
    for g in gl:
        print("  goal %-62s %-17s %s" % (g["goal"], g["target"],
                                          {True: "met", False: "NOT met", None: "not run"}[g["met"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
