#!/usr/bin/env python3
"""The sidecar's probes under hostile neighbours (issue 18, item 5): with
1,000 idle TCP connections and 50 slow clients (one byte of a request every
300 ms) held open against `leasehold serve`, /healthz is still answered, every
time, quickly. Prints the probes' latencies (p50/p99/max) and
`N passed, N failed`.

usage: http_flood.py --bin LEASEHOLD [--idle 1000] [--slow 50] [--probes 100]
"""
import argparse
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time


def probe(port, timeout):
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        ok = data.startswith(b"HTTP/1.1 200")
        return ok, (time.monotonic() - t0) * 1e3, data[:40]
    except OSError as e:
        return False, (time.monotonic() - t0) * 1e3, str(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=50)
    ap.add_argument("--probes", type=int, default=100)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + args.slow + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    passes = fails = 0

    def check(what, cond):
        nonlocal passes, fails
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        passes += bool(cond)
        fails += not cond

    with tempfile.TemporaryDirectory(prefix="leasehold-http-flood.") as d:
        srv = subprocess.Popen([args.bin, "serve", "--lock", "file://%s/x.lease" % d, "--identity", "a",
                                "--http-address", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + 10
        while port is None and time.monotonic() < deadline:
            line = srv.stderr.readline()
            m = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()  # keep draining
        try:
            check("serve bound a port", port is not None)
            if port is None:
                return 1
            ok, ms, _ = probe(port, 2)
            check("a probe is answered before the flood (%.1f ms)" % ms, ok)

            idle = []
            for _ in range(args.idle):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            stop = threading.Event()
            slow_socks = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(args.slow)]

            def trickle():
                req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                i = 0
                while not stop.is_set():
                    for s in list(slow_socks):
                        try:
                            s.send(req[i % (len(req) - 1):i % (len(req) - 1) + 1])
                        except OSError:
                            slow_socks.remove(s)  # closed by the server: open another slow one
                            try:
                                slow_socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
                            except OSError:
                                pass
                    i += 1
                    stop.wait(0.3)

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            time.sleep(0.5)
            lat, bad = [], []
            for _ in range(args.probes):
                ok, ms, what = probe(port, 1.0)  # a kubelet probe's default timeout is 1 s
                (lat if ok else bad).append(ms if ok else what)
                time.sleep(0.02)
            stop.set()
            t.join()
            lat.sort()
            pick = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] if lat else float("nan")
            print("     %d idle + %d slow connections open: %d/%d probes answered 200; latency p50 %.2f ms, "
                  "p99 %.2f ms, max %.2f ms" % (args.idle, args.slow, len(lat), args.probes, pick(0.5), pick(0.99),
                                                lat[-1] if lat else float("nan")))
            check("every probe answered 200 within 1 s under the flood (%d failed%s)" % (
                len(bad), ": %s" % bad[0] if bad else ""), not bad)
            for s in idle + slow_socks:
                s.close()
            ok, ms, _ = probe(port, 2)
            check("a probe is answered after the flood (%.1f ms)" % ms, ok)
            check("the sidecar is still running", srv.poll() is None)
        finally:
            srv.terminate()
            try:
                srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
    print("http flood: %d passed, %d failed" % (passes, fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
