#!/usr/bin/env bash
# kube.deploy_rbac: deploy/base/rbac.yaml is enough for the sidecar, and no more.
#
# On the real control plane (the ctest fixture), in a fresh namespace:
#  1. apply deploy/base's RBAC (rendered by kubectl kustomize into that
#     namespace); validate the sidecar overlay's Deployment and the PDB on the
#     server (dry run, strict field validation);
#  2. get a token for the ServiceAccount (TokenRequest) as a kubeconfig;
#  3. with only that token, `leasehold run` A acquires the Lease (creating it)
#     and renews it, B follows; A is stopped (SIGTERM) and releases, B takes
#     over, B is stopped and releases;
#  4. the audit log shows no request of the ServiceAccount was refused (401,
#     403), that it used every verb the Role grants (no unused grant) and
#     nothing beyond;
#  5. least privilege: the API server's own authorizer (SelfSubjectAccessReview)
#     refuses delete, patch, list, another Lease, another namespace, Pods and
#     Secrets; and `leasehold run` in another namespace gets a 403 that names
#     the missing rule, and never starts its child.
# usage: rbac_test.sh LEASEHOLD_BIN SOURCE_DIR   (env: LEASEHOLD_TESTENV_DIR, LEASEHOLD_TESTENV_BIN)
set -euo pipefail
leasehold=$1
src=$(cd "$2" && pwd)
dir=${LEASEHOLD_TESTENV_DIR:?}
te=${LEASEHOLD_TESTENV_BIN:?}/testenv
ns=deploy-rbac-$(date +%s)-$$
sa_user="system:serviceaccount:$ns:my-app"
work=$(mktemp -d "${TMPDIR:-/tmp}/leasehold-rbac.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "rbac_test: FAIL: $*" >&2
  for f in "$work"/*.log; do [[ -e $f ]] && { echo "--- $f"; tail -20 "$f"; }; done >&2
  exit 1
}
step() { echo "== $*"; }
# wait_for FILE PATTERN SECONDS
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "no \"$2\" in $1 after $3s"
    sleep 0.1
  done
}
status() { # prints the JSON status of a lock, read as admin
  "$leasehold" status "$1" -o json --kubeconfig "$dir/kubeconfig-admin"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }

step "apply deploy/base's RBAC in namespace $ns; validate the sidecar overlay's Deployment and PDB"
kubectl=${LEASEHOLD_TESTENV_BIN:?}/kubectl
source "$src/tests/deploy/kustomize_lib.sh"
render base "$ns" >"$work/base.yaml"
render overlays/sidecar "$ns" >"$work/sidecar.yaml"
# rbac.yaml: the base's ServiceAccount, Role and RoleBinding (every object before the PDB).
sed '/^kind: PodDisruptionBudget$/,$d' "$work/base.yaml" | sed '$d' >"$work/rbac.yaml"
grep -q '^kind: RoleBinding$' "$work/rbac.yaml" || fail "no RoleBinding rendered from deploy/base: $(cat "$work/base.yaml")"
"$te" apply --dir "$dir" --namespace "$ns" "$work/rbac.yaml"
"$te" apply --dir "$dir" --namespace "$ns" --dry-run "$work/sidecar.yaml"

step "TokenRequest for serviceaccount $ns/my-app"
kc="$work/kubeconfig-sa"
"$te" token --dir "$dir" --namespace "$ns" --sa my-app --out "$kc" --ttl 1h

lock="k8s://$ns/my-app"
timing=(--leader-elect-lease-duration=4s --leader-elect-renew-deadline=3s --leader-elect-retry-period=500ms)
child='echo "child started, term $LEASEHOLD_TERM"; trap "exit 0" TERM; while :; do sleep 0.1; done'
start_candidate() { # identity
  "$leasehold" run --kubeconfig "$kc" --lock "$lock" --identity "$1" "${timing[@]}" \
    --http-address=127.0.0.1:0 -- /bin/sh -c "$child" >"$work/$1.log" 2>&1 &
  pids+=($!)
}

step "candidate A acquires with the ServiceAccount's token"
start_candidate pod-a
pid_a=${pids[-1]}
wait_for "$work/pod-a.log" "child started, term 0" 20
[[ "$(status "$lock" | field holder)" == pod-a ]] || fail "holder is not pod-a: $(status "$lock")"

step "candidate B follows; A renews"
start_candidate pod-b
pid_b=${pids[-1]}
renewed1=$(status "$lock" | field renewed)
sleep 1.5  # three renew intervals
renewed2=$(status "$lock" | field renewed)
[[ "$renewed1" != "$renewed2" ]] || fail "A did not renew: renewTime stayed $renewed1"
[[ "$(status "$lock" | field holder)" == pod-a ]] || fail "A lost the lease: $(status "$lock")"
grep -q "child started" "$work/pod-b.log" && fail "B ran its child while A leads"

step "the probes of the sidecar overlay answer: /healthz on both, /readyz on the leader only"
http_code() { # log, path: the HTTP status of the endpoint the candidate logged
  local addr
  addr=$(grep -o 'on http://[0-9.]*:[0-9]*' "$1" | head -1 | sed 's|on http://||')
  [[ -n "$addr" ]] || fail "no endpoint address in $1"
  python3 -c 'import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)' "http://$addr$2"
}
for path in $(sed -n 's/^ *path: \(\/[a-z]*\)$/\1/p' "$work/sidecar.yaml" | sort -u); do
  [[ "$(http_code "$work/pod-a.log" "$path")" == 200 ]] || fail "A: $path is not 200"
  [[ "$(http_code "$work/pod-b.log" "$path")" == 200 ]] || fail "B: $path is not 200"
done
[[ "$(http_code "$work/pod-a.log" /readyz)" == 200 ]] || fail "A (leader): /readyz is not 200"
[[ "$(http_code "$work/pod-b.log" /readyz)" == 503 ]] || fail "B (follower): /readyz is not 503"

step "A stops (SIGTERM) and releases; B takes over"
t0=$(date +%s%N)
kill -TERM "$pid_a"
wait "$pid_a" || fail "leasehold run A exited with $?"
wait_for "$work/pod-b.log" "child started, term 1" 10
took_ms=$((($(date +%s%N) - t0) / 1000000))
echo "   take-over after release: ${took_ms} ms"

step "B stops and releases"
kill -TERM "$pid_b"
wait "$pid_b" || fail "leasehold run B exited with $?"
final=$(status "$lock")
[[ "$(field holder <<<"$final")" == "" ]] || fail "the lease was not released: $final"
[[ "$(field transitions <<<"$final")" == 1 ]] || fail "expected 1 transition: $final"

step "audit log: no request of $sa_user was refused (401/403); every granted verb was used"
sleep 2  # the audit log is written in batches of at most 1s
python3 - "$dir/audit.log" "$sa_user" "$ns" <<'PY' || fail "audit log check"
import json, sys
path, user, ns = sys.argv[1:]
# A watch is logged when it starts (ResponseStarted) and again when it ends;
# count each request (auditID) once.
requests = {}
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("user", {}).get("username") != user:
        continue
    if e.get("stage") not in ("ResponseStarted", "ResponseComplete"):
        continue
    requests[e.get("auditID")] = e
used, bad = {}, []
for e in requests.values():
    ref = e.get("objectRef", {})
    code = e.get("responseStatus", {}).get("code", 0)
    key = (ref.get("resource"), e.get("verb"))
    used[key] = used.get(key, 0) + 1
    # 404 (no Lease yet) and 409 (compare-and-swap lost) are the election at
    # work; 401 and 403 would mean the ServiceAccount or its Role falls short.
    if code in (401, 403):
        bad.append(f'{e.get("verb")} {ref.get("resource")} {ref.get("namespace")}/{ref.get("name")}: HTTP {code}')
print("   requests by verb:", ", ".join(f"{v} {r}: {n}" for (r, v), n in sorted(used.items())))
if bad:
    print("   refused:", *bad, sep="\n     ")
    sys.exit(1)
granted = {("leases", v) for v in ("get", "create", "update", "watch")} | {("events", "create")}
unused = granted - set(used)
if unused:
    print("   granted but never used:", sorted(unused))
    sys.exit(1)
# leasehold asks (SelfSubjectAccessReview, allowed to every authenticated
# user by system:basic-user) whether it may watch every Lease of the
# namespace before trying; that is not a grant of our Role.
extra = set(used) - granted - {("selfsubjectaccessreviews", "create")}
if extra:
    print("   used beyond the Role:", sorted(extra))
    sys.exit(1)
PY

step "least privilege: what the ServiceAccount may not do"
can() { "$te" can-i --kubeconfig "$kc" "$@" >/dev/null; }
expect_yes() { can "$@" || fail "the ServiceAccount should be allowed: $*"; }
expect_no() { if can "$@"; then fail "the ServiceAccount should NOT be allowed: $*"; fi; }
# What it needs (so that the refusals below are not vacuous).
for v in get update watch; do expect_yes --namespace "$ns" --name my-app "$v" coordination.k8s.io/leases; done
expect_yes --namespace "$ns" create coordination.k8s.io/leases
expect_yes --namespace "$ns" create events
# What it must not have.
for v in delete patch; do expect_no --namespace "$ns" --name my-app "$v" coordination.k8s.io/leases; done
expect_no --namespace "$ns" list coordination.k8s.io/leases
expect_no --namespace "$ns" watch coordination.k8s.io/leases  # every Lease of the namespace
expect_no --namespace "$ns" deletecollection coordination.k8s.io/leases
for v in get update watch; do expect_no --namespace "$ns" --name other-app "$v" coordination.k8s.io/leases; done
for v in get create update; do expect_no --namespace default --name my-app "$v" coordination.k8s.io/leases; done
expect_no --namespace "$ns" get pods
expect_no --namespace "$ns" get secrets
expect_no --namespace "$ns" create configmaps
expect_no --namespace "$ns" --name x update events
expect_no --namespace default create events
expect_no --namespace "$ns" create rbac.authorization.k8s.io/roles

step "the sidecar in another namespace: refused with a 403 naming the rule, the child never runs"
# (Another Lease name in the same namespace is covered by the access reviews
# above: RBAC cannot limit create by name, so such a candidate could create a
# Lease but never read, renew or watch it.)
log="$work/forbidden.log"
timeout 5 "$leasehold" run --kubeconfig "$kc" --lock k8s://default/my-app --identity pod-x "${timing[@]}" \
  -- /bin/sh -c 'echo child started' >"$log" 2>&1 || true
grep -q "child started" "$log" && fail "the child ran on k8s://default/my-app"
grep -q 'forbidden (RBAC: grant verb "get" on resource "leases" in API group "coordination.k8s.io" in namespace "default")' "$log" \
  || fail "no 403 naming the rule: $(head -c 600 "$log")"
echo "rbac_test: OK"
