#!/usr/bin/env bash
# kube.kubectl_plugin: `kubectl leasehold status|observe|release|handoff` with
# the real kubectl (v1.36, built by testenv) finding the binary on PATH as
# kubectl-leasehold (a link: argv[0] selects the plugin), on the real control
# plane: -n, the kubeconfig context's namespace when -n is absent, --context,
# --kubeconfig and $KUBECONFIG, -o json|yaml|wide, TYPE/NAME, and bad input
# refused with a one-line error and exit code 2.
# usage: kubectl_plugin_test.sh LEASEHOLD_BIN   (env: LEASEHOLD_TESTENV_DIR, LEASEHOLD_TESTENV_BIN)
set -uo pipefail
bin=$(realpath "$1")
dir=${LEASEHOLD_TESTENV_DIR:?}
kubectl=${LEASEHOLD_TESTENV_BIN:?}/kubectl
admin=$dir/kubeconfig-admin
work=$(mktemp -d "${TMPDIR:-/tmp}/leasehold-kubectl-plugin.XXXXXX")
ns=kubectl-plugin-$(date +%s)-$$
cleanup() {
  kill $(jobs -p) 2>/dev/null
  wait 2>/dev/null
  "$kubectl" --kubeconfig "$admin" delete namespace "$ns" --wait=false >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/../integration/cli_lib.sh"  # check, wait_for, cli_finish
mkdir "$work/path"
ln -s "$bin" "$work/path/kubectl-leasehold"
export PATH="$work/path:$PATH"
k() { KUBECONFIG=$admin "$kubectl" "$@"; }
holder_is() { test "$(k leasehold status plug -n "$ns" -o json | sed -n 's/.*"holder":"\([^"]*\)".*/\1/p')" = "$1"; }

k create namespace "$ns" >/dev/null
check "kubectl plugin list finds kubectl-leasehold" grep -q "kubectl-leasehold" <(k plugin list 2>&1)
fast=(--leader-elect-lease-duration=3s --leader-elect-renew-deadline=2s --leader-elect-retry-period=250ms)
"$bin" run --lock "k8s://$ns/plug" --identity alpha --kubeconfig "$admin" "${fast[@]}" -- sleep 600 \
  2>"$work/alpha.log" &
check "alpha leads (read by the plugin with -o json)" wait_for 15 holder_is alpha
"$bin" run --lock "k8s://$ns/plug" --identity beta --kubeconfig "$admin" "${fast[@]}" -- sleep 600 \
  2>"$work/beta.log" &

out=$(k leasehold status plug -n "$ns" 2>&1)
check "status NAME -n NS: the table names alpha ($(tr '\n' '|' <<<"$out"))" \
  bash -c 'head -n1 <<<"$1" | grep -q "^HOLDER" && sed -n 2p <<<"$1" | grep -q "^alpha "' _ "$out"
out=$(k leasehold status lease/plug --namespace="$ns" -o yaml 2>&1)
check "status lease/NAME --namespace=NS -o yaml ($(tr '\n' '|' <<<"$out"))" \
  bash -c 'grep -qx "holder: alpha" <<<"$1" && grep -qx "exists: true" <<<"$1"' _ "$out"
out=$(k leasehold status plug -n "$ns" -o wide 2>&1)
check "status -o wide adds columns ($(head -n1 <<<"$out"))" \
  bash -c 'head -n1 <<<"$1" | grep -q "TRANSITIONS PREFERRED HOLDER VERSION$"' _ "$out"
check "--kubeconfig FILE instead of \$KUBECONFIG" \
  bash -c '"$1" leasehold status plug -n "$2" --kubeconfig "$3" -o json | grep -q "\"holder\":\"alpha\""' \
  _ "$kubectl" "$ns" "$admin"

# The context's namespace when -n is absent, and --context.
cp "$admin" "$work/kubeconfig"
ctx=$("$kubectl" --kubeconfig "$work/kubeconfig" config current-context)
"$kubectl" --kubeconfig "$work/kubeconfig" config set-context "$ctx" --namespace="$ns" >/dev/null
"$kubectl" --kubeconfig "$work/kubeconfig" config set-context other --cluster=nowhere --user=nobody >/dev/null
check "no -n: the namespace of the kubeconfig's current context" \
  bash -c 'KUBECONFIG=$1 "$2" leasehold status plug -o json | grep -q "\"lock\":\"k8s://$3/plug\".*\"holder\":\"alpha\""' \
  _ "$work/kubeconfig" "$kubectl" "$ns"
check "--context CTX selects the context (and its namespace)" \
  bash -c 'KUBECONFIG=$1 "$2" leasehold status plug --context "$3" -o json | grep -q "\"holder\":\"alpha\""' \
  _ "$work/kubeconfig" "$kubectl" "$ctx"
err=$(KUBECONFIG=$work/kubeconfig "$kubectl" leasehold status plug --context no-such-context 2>&1); rc=$?
check "--context no-such-context fails naming it (rc $rc: $err)" \
  bash -c '[[ $1 -ne 0 ]] && grep -q "no-such-context" <<<"$2"' _ "$rc" "$err"

# observe: the first state, one JSON object per line.
timeout 3 env KUBECONFIG="$admin" "$kubectl" leasehold observe plug -n "$ns" -o json >"$work/observe.out" 2>&1
check "observe -o json prints the holder ($(head -n1 "$work/observe.out"))" grep -q '"holder":"alpha"' "$work/observe.out"

# handoff and release.
wait_for 10 grep -q "leader is now alpha" "$work/beta.log"
out=$(k leasehold handoff plug -n "$ns" --to beta 2>&1); rc=$?
check "handoff NAME -n NS --to beta (rc $rc: $(tail -n1 <<<"$out"))" test "$rc" = 0
check "beta leads after the handoff" wait_for 10 holder_is beta
kill %1 %2 2>/dev/null
wait 2>/dev/null
out=$(k leasehold release plug -n "$ns" --force 2>&1); rc=$?
check "release NAME -n NS --force (rc $rc)" test "$rc" = 0
check "the lease is free" holder_is ""

# Bad input: one line, exit 2.
err=$(k leasehold status pod/plug -n "$ns" 2>&1); rc=$?
check "TYPE pod is refused, exit 2 ($rc: $(head -n1 <<<"$err"))" \
  bash -c '[[ $1 == 2 ]] && head -n1 <<<"$2" | grep -q "\"pod\" in \"pod/plug\" is not a lock type"' _ "$rc" "$err"
err=$(k leasehold frobnicate plug 2>&1); rc=$?
check "an unknown command is refused, exit 2 ($rc: $(head -n1 <<<"$err"))" \
  bash -c '[[ $1 == 2 ]] && head -n1 <<<"$2" | grep -q "unknown command \"frobnicate\""' _ "$rc" "$err"
err=$(k leasehold status "k8s://$ns/plug" -n "$ns" 2>&1); rc=$?
check "-n with a lock URL is refused, exit 2 ($rc)" test "$rc" = 2
check "help names the commands" bash -c '"$1" leasehold help | grep -q "handoff"' _ "$kubectl"
cli_finish "kubectl plugin"
