#!/usr/bin/env bash
# Bad input to the leasehold command: unknown flags, bad durations, bad lock
# URLs and commands that cannot be started (ENOENT, EACCES, a directory, an
# exec format error) each give one line naming the problem, a non-zero exit
# and nothing left running or held. Also: the identity defaults (POD_NAME,
# else hostname-RANDOM), every flag from the environment, and no token in
# the logs.
set -uo pipefail
bin=$1
source "$(dirname "$0")/cli_lib.sh"
cli_setup badinput

# one_line_error WANT-RC SUBSTRING leasehold-args...: exactly one line on
# stderr containing SUBSTRING, nothing on stdout, exit WANT-RC.
one_line_error() {
  local want_rc=$1 want=$2; shift 2
  local err rc
  err=$("$bin" "$@" 2>&1 >"$dir/stdout"); rc=$?
  if [[ $rc -eq $want_rc && "$err" == *"$want"* && $(wc -l <<<"$err") -eq 1 && ! -s "$dir/stdout" ]]; then
    pass "leasehold $* -> $rc: $err"
  else
    fail "leasehold $*: rc=$rc (want $want_rc), stderr: $err, stdout: $(cat "$dir/stdout")"
  fi
}

# ---- unknown flags, every command ----
for cmd in run serve status observe release; do
  one_line_error 2 "unknown flag --bogus" $cmd --bogus
done
one_line_error 2 "unknown command \"frobnicate\"" frobnicate

# ---- bad durations and values ----
one_line_error 2 '--leader-elect-lease-duration: "15" is not a duration (missing unit' run --lock "$lock" --leader-elect-lease-duration=15 -- true
one_line_error 2 '--leader-elect-retry-period: "-1s" is not a duration' serve --lock "$lock" --leader-elect-retry-period=-1s
one_line_error 2 '--grace-period: "soon" is not a duration' run --lock "$lock" --grace-period=soon -- true
# A grace the lease cannot cover is refused, naming both timings and the largest that fits.
one_line_error 2 '--grace-period=10s is longer than the lease allows: --leader-elect-lease-duration=15s - --leader-elect-renew-deadline=10s - margin 265ms leaves at most 4735ms' \
  run --lock "$lock" --grace-period=10s -- true
one_line_error 2 '--leader-elect-renew-deadline=2900ms leaves no time to stop the worker' \
  run --lock "$lock" --leader-elect-lease-duration=3s --leader-elect-renew-deadline=2900ms -- true
one_line_error 2 '--worker-cgroup: "maybe" is not auto or off' run --lock "$lock" --worker-cgroup=maybe -- true
# Kubernetes names are checked before any request (a 422 used to be retried forever; a '?' went into the URL).
one_line_error 2 '"My_App" is not an object name' run --lock k8s://ns/My_App -- true
one_line_error 2 '"a?labelSelector=x" is not an object name' run --lock 'k8s://ns/a?labelSelector=x' -- true
one_line_error 2 '"Bad_NS" is not a namespace name' status k8s://Bad_NS/app
one_line_error 2 '"x.y" is not a namespace name' observe configmap://x.y/app
# An identity longer than an object name is refused at once (the error rewrite once looped on it).
one_line_error 2 '--identity: longer than 253 characters' run --lock "$lock" --identity "$(printf 'a%.0s' {1..254})" -- true
one_line_error 2 '--leader-elect-lease-duration: must be greater than --leader-elect-renew-deadline (20000ms)' run --lock "$lock" --leader-elect-renew-deadline=20s -- true
one_line_error 2 '--on-child-exit: "explode" is not exit, restart or release' run --lock "$lock" --on-child-exit=explode -- true
one_line_error 2 '--log-format: "xml" is not text or json' serve --lock "$lock" --log-format=xml
one_line_error 2 '--enable-leader-election: "maybe" is not true or false' run --enable-leader-election=maybe -- true
one_line_error 2 'flag --lock needs a value' serve --lock
LEASEHOLD_LEADER_ELECT_LEASE_DURATION=long one_line_error 2 '--leader-elect-lease-duration: "long" is not a duration' serve --lock "$lock"

# ---- bad lock URLs ----
one_line_error 2 'unknown scheme "zk"' serve --lock zk://x
one_line_error 2 'lock URL "file://relative/x"' serve --lock file://relative/x
one_line_error 2 'does not exist' serve --lock file:///no/such/dir/x
one_line_error 2 'lock URL "k8s://onlyns"' serve --lock k8s://onlyns
one_line_error 2 'no lock: set --lock URL' serve
one_line_error 2 '--leader-elect-resource-lock: unknown kind "zookeeper"' serve --leader-elect-resource-lock=zookeeper --leader-elect-resource-name=x
one_line_error 2 'the file lock needs an absolute path' serve --leader-elect-resource-lock=file --leader-elect-resource-name=rel

# ---- commands that cannot be started: checked before campaigning ----
printf 'echo hi\n' >"$dir/not-executable"; chmod 644 "$dir/not-executable"
mkdir "$dir/a-directory"
one_line_error 127 "cannot start \"/no/such/program\": No such file or directory" run --lock "$lock" --identity a "${fast[@]}" -- /no/such/program
one_line_error 127 "cannot start \"no-such-program-xyz\": not found in PATH" run --lock "$lock" --identity a "${fast[@]}" -- no-such-program-xyz
one_line_error 127 "cannot start \"$dir/not-executable\": Permission denied" run --lock "$lock" --identity a "${fast[@]}" -- "$dir/not-executable"
one_line_error 127 "cannot start \"$dir/a-directory\": it is a directory" run --lock "$lock" --identity a "${fast[@]}" -- "$dir/a-directory"
one_line_error 127 "cannot start \"/no/such/program\"" run --enable-leader-election=false -- /no/such/program
out=$("$bin" status "$lock")
check "none of them campaigned ($out)" test "$out" = "LOCK $lock: no record (never held)"

# An executable that execve refuses (no #! line, not ELF): found only when the
# leader starts it. It says so, releases the lease and exits 127.
printf '\x01\x02garbage' >"$dir/bad-format"; chmod 755 "$dir/bad-format"
"$bin" run --lock "$lock" --identity a "${fast[@]}" -- "$dir/bad-format" 2>"$dir/badformat.log"; rc=$?
check "exec format error: exit 127 ($rc)" test $rc -eq 127
check "exec format error: the log names it" grep -q "cannot start \"$dir/bad-format\": Exec format error" "$dir/badformat.log"
check "exec format error: lease released" grep -q '"holder":""' <<<"$("$bin" status "$lock" -o json)"
check "nothing left running" test -z "$(pgrep -f "$dir/" || true)"

# observe: a read that fails is an error on every output, never "no record".
echo garbage >"$dir/corrupt.lease"
out=$(timeout 2 "$bin" observe "file://$dir/corrupt.lease" 2>/dev/null)
check "observe (text) of a corrupt file reports the error ($out)" \
  grep -q "cannot read the lock: Invalid: .*not valid JSON" <<<"$out"
out=$(timeout 2 "$bin" observe -o json "file://$dir/corrupt.lease" 2>/dev/null)
check "observe (json) of a corrupt file reports the error ($out)" grep -q '"error":"Invalid: ' <<<"$out"
check "observe never said no record" test -z "$( (timeout 2 "$bin" observe "file://$dir/corrupt.lease"; \
  timeout 2 "$bin" observe -o json "file://$dir/corrupt.lease") 2>/dev/null | grep -E 'never held|"exists":false')"

# ---- identity defaults ----
out=$(POD_NAME=pod-xyz "$bin" run --lock "$lock" "${fast[@]}" -- sh -c 'echo "$LEASEHOLD_IDENTITY"' 2>/dev/null)
check "identity from POD_NAME ($out)" test "$out" = pod-xyz
host=$(hostname)
id1=$(env -u POD_NAME "$bin" run --lock "$lock" "${fast[@]}" -- sh -c 'echo "$LEASEHOLD_IDENTITY"' 2>/dev/null)
id2=$(env -u POD_NAME "$bin" run --lock "$lock" "${fast[@]}" -- sh -c 'echo "$LEASEHOLD_IDENTITY"' 2>/dev/null)
check "identity hostname-RANDOM ($id1, $id2)" grep -qE "^${host}-[0-9a-f]{6}$" <<<"$id1"
check "identity suffix differs per start" test "$id1" != "$id2"

# ---- every flag from the environment ----
for cmd in run serve status observe release; do
  help=$("$bin" $cmd --help)
  flags=$(grep -cE '^  --' <<<"$help")
  envs=$(grep -cE '\[env LEASEHOLD_[A-Z_]+\]$' <<<"$help")
  check "$cmd --help: every flag names its variable ($envs of $flags)" test "$flags" -gt 0 -a "$flags" -eq "$envs"
done
out=$(LEASEHOLD_LOCK="$lock" LEASEHOLD_IDENTITY=from-env LEASEHOLD_LEADER_ELECT_LEASE_DURATION=3s \
      LEASEHOLD_LEADER_ELECT_RENEW_DEADLINE=2s LEASEHOLD_LEADER_ELECT_RETRY_PERIOD=250ms \
      LEASEHOLD_LOG_FORMAT=json "$bin" run -- sh -c 'echo "$LEASEHOLD_IDENTITY $LEASEHOLD_LEASE"' 2>"$dir/env.log")
check "lock, identity and timings from the environment ($out)" test "$out" = "from-env $lock"
check "--log-format from the environment: JSON lines" grep -q '^{"ts":"[^"]*","level":"info","identity":"from-env"' "$dir/env.log"
out=$(LEASEHOLD_OUTPUT=json "$bin" status "$lock")
check "status -o from LEASEHOLD_OUTPUT" grep -q '^{"lock":' <<<"$out"

# ---- tokens never reach the logs ----
token="leasehold-test-secret-token-4f1d"
cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: "$token"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
EOF
timeout -s TERM 3 "$bin" serve --lock k8s://default/leasehold-test --kubeconfig "$dir/kubeconfig" --identity t \
  "${fast[@]}" --http-address= --log-format=json 2>"$dir/kube.log"
check "a failing k8s:// lock logs its errors ($(grep -c . "$dir/kube.log") lines)" grep -q '"level":"warning"' "$dir/kube.log"
"$bin" status k8s://default/leasehold-test --kubeconfig "$dir/kubeconfig" 2>>"$dir/kube.log" >/dev/null
"$bin" release k8s://default/leasehold-test --force --kubeconfig "$dir/kubeconfig" 2>>"$dir/kube.log" >/dev/null
check "no token in logs and errors" test -z "$(grep -F "$token" "$dir/kube.log")"

cli_finish "cli bad input"
