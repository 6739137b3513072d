#!/usr/bin/env bash
# A Lease in a namespace that does not exist (issue 18, item 2): the sidecar
# logs the server's message and retries once per retry period, as client-go
# does — it once sent 142 creates in 8 s. Counted from kube-apiserver's audit
# log, not from our own logs.
#   kube_missing_namespace.sh LEASEHOLD   (env: LEASEHOLD_TESTENV_DIR, from ctest)
set -uo pipefail
bin=$1
source "$(dirname "$0")/cli_lib.sh"
cli_setup missing-ns
te=${LEASEHOLD_TESTENV_DIR:?set by ctest: the control plane state dir}
ns="no-such-ns-$RANDOM$RANDOM"
seconds=8
"$bin" run --lock "k8s://$ns/app" --identity a --kubeconfig "$te/kubeconfig-admin" \
  --leader-elect-lease-duration=4s --leader-elect-renew-deadline=3s --leader-elect-retry-period=1s \
  -- sleep 60 2>"$dir/run.log" &
sidecar=$!
sleep "$seconds"
kill -TERM "$sidecar"
wait "$sidecar" 2>/dev/null
sleep 2  # the audit log is written in batches of at most 1 s
creates=$(python3 - "$te/audit.log" "$ns" <<'PY'
import json, sys
path, ns = sys.argv[1:]
ids = set()
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    ref = e.get("objectRef", {})
    if ref.get("namespace") == ns and ref.get("resource") == "leases" and e.get("verb") == "create":
        ids.add(e.get("auditID"))
print(len(ids))
PY
)
# One create per jittered retry period, [1, 2.2) s: at most seconds + 1 of them.
check "creates in $seconds s at a 1 s retry period: $creates (want 3..$((seconds + 1)))" \
  test "$creates" -ge 3 -a "$creates" -le $((seconds + 1))
check "the log names the server's reason" grep -q "namespaces \\\\\?\"$ns\\\\\?\" not found" "$dir/run.log"
cli_finish "kube missing namespace"
