#!/usr/bin/env python3
"""The leasehold image, built by scripts/image.sh and run against the real
control plane.

  image_run.py --bin LEASEHOLD --out DIR --testenv TESTENV_STATE_DIR

1. Builds the image (buildah, from scratch) around LEASEHOLD and checks its
   config (user 65532, leasehold as entrypoint) and contents (no shell).
2. Runs it: with podman when `podman run` works on this machine; otherwise
   the image's own layers, unpacked, under unshare (new PID and mount
   namespaces: leasehold is PID 1) and chroot as user 65532. It says which.
   A user's image adds its worker; here a static test worker (compiled below)
   that leaves an orphan to be reaped.
3. The container acquires a Lease (read from outside with `leasehold
   status`), serves /healthz, reaps the orphan (no zombie in the container
   a second after it exits, seen in the host's process table), and on SIGTERM
   releases the Lease and exits 0 with every process of the container gone.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
failures = []

WORKER = r"""
// The test's worker inside the image: a child forks a grandchild and exits at
// once, so the grandchild is orphaned; it exits a second later and must be
// reaped by the container's init side (the watchdog subreaper or PID 1).
#include <csignal>
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>
int main() {
  pid_t child = fork();
  if (child == 0) {
    if (fork() == 0) { sleep(1); _exit(0); }
    _exit(0);
  }
  waitpid(child, nullptr, 0);
  std::printf("image-worker ready\n");
  std::fflush(stdout);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("image-worker stopping\n");
  return 0;
}
"""


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else f": {detail}"), flush=True)
    if not ok:
        failures.append(what)
    return ok


def proc_stat(pid):
    """(state, ppid) of pid, or None when it is gone."""
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def descendants(root):
    """Every process whose ancestry reaches root (root included)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                parent[int(d)] = st[1]
    out = []
    for pid in parent:
        p = pid
        while p and p != root and p in parent:
            p = parent[p]
        if p == root:
            out.append(pid)
    return out


def unpack_image(archive, rootfs):
    """The OCI archive's layers, in order, into rootfs; returns its config."""
    oci = archive + ".d"
    shutil.rmtree(oci, ignore_errors=True)
    with tarfile.open(archive) as t:
        t.extractall(oci)
    blob = lambda digest: os.path.join(oci, "blobs", *digest.split(":"))
    index = json.load(open(os.path.join(oci, "index.json")))
    manifest = json.load(open(blob(index["manifests"][0]["digest"])))
    config = json.load(open(blob(manifest["config"]["digest"])))
    shutil.rmtree(rootfs, ignore_errors=True)
    os.makedirs(rootfs)
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"])) as t:
            t.extractall(rootfs, numeric_owner=True)
    return config


def kubeconfig_for_image(te_dir):
    """kubeconfig-elector (least privilege) with its CA inlined: the container
    cannot see the host's paths."""
    text = open(os.path.join(te_dir, "kubeconfig-elector")).read()
    ca_path = re.search(r"certificate-authority: (\S+)", text).group(1)
    ca = base64.b64encode(open(ca_path, "rb").read()).decode()
    return text.replace(f"certificate-authority: {ca_path}", f"certificate-authority-data: {ca}")


def podman_works(archive, workdir):
    storage = ["--root", os.path.join(workdir, "podman"), "--runroot", os.path.join(workdir, "podman-run"),
               "--storage-driver", "vfs"]
    if not shutil.which("podman"):
        return None, "podman is not installed"
    r = subprocess.run(["podman", *storage, "run", "--rm", "--network", "host", f"oci-archive:{archive}", "--version"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 0:
        return storage, ""
    return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--testenv", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    te = a.testenv
    admin = os.path.join(te, "kubeconfig-admin")
    ns = dict(line.split("=", 1) for line in open(os.path.join(te, "env")).read().split())["TESTENV_NAMESPACE"]
    lease = f"image-test-{os.getpid()}"
    lock = f"k8s://{ns}/{lease}"

    # ---- 1. build ----
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "scripts", "image.sh"), a.out, a.bin], capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    if not check(f"scripts/image.sh built the image in {time.monotonic() - t0:.1f} s", r.returncode == 0):
        sys.exit(1)
    archive = re.search(r"^image: (\S+\.oci\.tar)$", r.stdout, re.M).group(1)
    rootfs = os.path.join(a.out, "container-root")
    config = unpack_image(archive, rootfs)
    cc = config.get("config", {})
    check(f"the image runs as 65532:65532 ({cc.get('User')})", cc.get("User") == "65532:65532")
    check(f"its entrypoint is leasehold ({cc.get('Entrypoint')})", cc.get("Entrypoint") == ["/usr/local/bin/leasehold"])
    check("it has no shell", not any(os.path.lexists(os.path.join(rootfs, p)) for p in ("bin/sh", "usr/bin/sh", "bin/bash")))
    check("it records its Debian packages", os.path.getsize(os.path.join(rootfs, "usr/share/leasehold/packages.txt")) > 0)

    # ---- 2. a user's layer: the worker and a kubeconfig ----
    worker_src = os.path.join(a.out, "image-worker.cc")
    open(worker_src, "w").write(WORKER)
    subprocess.run(["g++", "-O2", "-static", "-o", os.path.join(rootfs, "usr/local/bin/image-worker"), worker_src],
                   check=True)
    os.makedirs(os.path.join(rootfs, "etc/leasehold"), exist_ok=True)
    kc = os.path.join(rootfs, "etc/leasehold/kubeconfig")
    open(kc, "w").write(kubeconfig_for_image(te))
    os.chmod(kc, 0o644)
    for d in ("proc", "dev"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    args = ["run", "--lock", lock, "--identity", "image-test", "--kubeconfig", "/etc/leasehold/kubeconfig",
            "--http-address=127.0.0.1:0", "--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s",
            "--leader-elect-retry-period=500ms", "--", "/usr/local/bin/image-worker"]

    storage, why = podman_works(archive, a.out)
    log_path = os.path.join(a.out, "container.log")
    log = open(log_path, "w")
    if storage:
        print("running the image with podman")
        launcher = subprocess.Popen(
            ["podman", *storage, "run", "--rm", "--network", "host",
             "-v", f"{rootfs}/usr/local/bin/image-worker:/usr/local/bin/image-worker:ro",
             "-v", f"{kc}:/etc/leasehold/kubeconfig:ro", f"oci-archive:{archive}", *args],
            stdout=log, stderr=subprocess.STDOUT)
    else:
        print(f"podman cannot run a container here ({why}); running the image's root filesystem "
              "under unshare (PID and mount namespaces) + chroot as 65532:65532")
        inner = (f"mount -t proc proc '{rootfs}/proc' && mount --rbind /dev '{rootfs}/dev' && "
                 f"exec chroot --userspec=65532:65532 '{rootfs}' /usr/local/bin/leasehold "
                 + " ".join(f"'{x}'" for x in args))
        launcher = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--propagation", "private",
                                     "/bin/sh", "-c", inner], stdout=log, stderr=subprocess.STDOUT)

    def logtext():
        return open(log_path).read()

    try:
        # ---- 3. the container's PID 1 ----
        init = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and init is None and launcher.poll() is None:
            for pid in descendants(launcher.pid):
                try:
                    st = open(f"/proc/{pid}/status").read()
                    exe = os.readlink(f"/proc/{pid}/exe")
                except OSError:
                    continue
                nspid = re.search(r"^NSpid:\s+(.*)$", st, re.M).group(1).split()
                if exe.endswith("/usr/local/bin/leasehold") and nspid[-1] == "1":
                    init = pid
                    uid = re.search(r"^Uid:\s+(\d+)", st, re.M).group(1)
            time.sleep(0.1)
        if not check("leasehold runs as PID 1 of the container", init is not None, logtext()):
            sys.exit(1)
        check(f"as user 65532 (uid {uid})", uid == "65532")

        def holder():
            r = subprocess.run([a.bin, "status", lock, "--kubeconfig", admin, "-o", "json"],
                               capture_output=True, text=True)
            m = re.search(r'"holder":"([^"]*)"', r.stdout)
            return m.group(1) if m else None

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and holder() != "image-test":
            time.sleep(0.2)
        check("the container acquires the Lease", holder() == "image-test", logtext())
        port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not port:
            m = re.search(r"serving .* on http://[^ ]*:(\d+)$", logtext(), re.M)
            port = m and m.group(1)
            time.sleep(0.1)
        code = None
        if port:
            code = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status
        check(f"it serves /healthz ({code})", code == 200, logtext())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "image-worker ready" not in logtext():
            time.sleep(0.1)
        check("its worker started", "image-worker ready" in logtext(), logtext())
        time.sleep(2.5)  # the orphan exits 1 s after the worker is ready
        procs = descendants(init)
        zombies = [p for p in procs if (proc_stat(p) or ("?",))[0] == "Z"]
        check(f"no zombie among the container's {len(procs)} processes 1.5 s after the orphan exited",
              not zombies, zombies)

        # ---- 4. SIGTERM ----
        os.kill(init, signal.SIGTERM)
        try:
            rc = launcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        check(f"SIGTERM: the container exits 0 ({rc})", rc == 0, logtext())
        check("its worker was stopped", "image-worker stopping" in logtext(), logtext())
        check("the Lease is released", holder() == "", logtext())
        left = [p for p in procs if proc_stat(p) and proc_stat(p)[0] != "Z"]
        check("no process of the container is left", not left, left)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        subprocess.run(["umount", "-R", os.path.join(rootfs, "dev")], capture_output=True)
        subprocess.run(["umount", os.path.join(rootfs, "proc")], capture_output=True)
    print(f"image.run: {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
