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

# exact_error WANT-RC MESSAGE leasehold-args...: stderr is exactly the one
# line "leasehold: MESSAGE", nothing on stdout, exit WANT-RC, and no lock
# file written ($never, the lock the cases below name, never appears).
# Each run is cut off after 10 s.
never="$dir/never.lease"
nolock="file://$never"
exact_error() {
  local want_rc=$1 want="leasehold: $2"; shift 2
  local err rc
  rm -f "$never" "$never.lock"  # a failed case is not blamed on the next
  err=$(timeout 10 "$bin" "$@" 2>&1 >"$dir/stdout"); rc=$?  # a value wrongly accepted campaigns: 10 s at most
  if [[ $rc -eq $want_rc && "$err" == "$want" && ! -s "$dir/stdout" && ! -e "$never" && ! -e "$never.lock" ]]; then
    pass "leasehold $(printf '%q ' "$@")-> $rc: $err"
  else
    fail "leasehold $(printf '%q ' "$@"): rc=$rc (want $want_rc), stderr: $err (want: $want), stdout: $(cat "$dir/stdout"), files: $(ls "$dir" | grep never)"
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
# A value from the environment is reported under the variable's name (item 8).
LEASEHOLD_LEADER_ELECT_LEASE_DURATION=long exact_error 2 'LEASEHOLD_LEADER_ELECT_LEASE_DURATION: "long" is not a duration (expected a number; use e.g. 15s, 500ms, 1m30s)' serve --lock "$nolock"
LEASEHOLD_LEADER_ELECT_RETRY_PERIOD=abc exact_error 2 'LEASEHOLD_LEADER_ELECT_RETRY_PERIOD: "abc" is not a duration (expected a number; use e.g. 15s, 500ms, 1m30s)' run --lock "$nolock" -- true
LEASEHOLD_LOG_FORMAT=xml exact_error 2 'LEASEHOLD_LOG_FORMAT: "xml" is not text or json' serve --lock "$nolock"
LEASEHOLD_RELEASE_ON_CANCEL=perhaps exact_error 2 'LEASEHOLD_RELEASE_ON_CANCEL: "perhaps" is not true or false' serve --lock "$nolock"
LEASEHOLD_LEADER_ELECT_RENEW_DEADLINE=20s exact_error 2 '--leader-elect-lease-duration: must be greater than LEASEHOLD_LEADER_ELECT_RENEW_DEADLINE (20000ms), got 15000ms' serve --lock "$nolock"
LEASEHOLD_OUTPUT=xml exact_error 2 'LEASEHOLD_OUTPUT: "xml" is not table, wide, json or yaml' status "$nolock"
# ...and the flag wins over the variable, and is named.
LEASEHOLD_LEADER_ELECT_RETRY_PERIOD=2s exact_error 2 '--leader-elect-retry-period: "x" is not a duration (expected a number; use e.g. 15s, 500ms, 1m30s)' serve --lock "$nolock" --leader-elect-retry-period=x

# An empty lock argument names no lock (found by fuzz.command_line).
exact_error 2 'status: which lock? e.g. leasehold status file:///run/app/app.lease' status ""

# ---- lower bounds on the timings, named with the flag and the bound (item 8) ----
exact_error 2 '--leader-elect-retry-period=1ns: below the minimum of 100ms' run --lock "$nolock" --leader-elect-retry-period=1ns -- true
exact_error 2 '--leader-elect-retry-period=99ms: below the minimum of 100ms' serve --lock "$nolock" --leader-elect-retry-period=99ms
exact_error 2 '--leader-elect-renew-deadline=100ms: below the minimum of 500ms' serve --lock "$nolock" --leader-elect-renew-deadline=100ms
exact_error 2 '--leader-elect-lease-duration=500ms: below the minimum of 1s' serve --lock "$nolock" --leader-elect-lease-duration=500ms
LEASEHOLD_LEADER_ELECT_RETRY_PERIOD=1ms exact_error 2 'LEASEHOLD_LEADER_ELECT_RETRY_PERIOD=1ms: below the minimum of 100ms' serve --lock "$nolock"
exact_error 2 '--poll-period=1ns: below the minimum of 100ms' observe "$nolock" --poll-period=1ns
help=$("$bin" run --help)
for bound in "wait between attempts to acquire or renew; at least 100ms" "at least 500ms, more than 1.2 x the retry period" \
             "whole seconds, at least 1s (2s on etcd://), at most 24h"; do
  check "run --help states the bound: $bound" grep -qF "$bound" <<<"$help"
done
check "observe --help states its bound" grep -qF "at least 100ms" <<<"$("$bin" observe --help)"
# The smallest accepted timings campaign and run the command.
out=$("$bin" run --lock "file://$dir/bounds.lease" --identity b --leader-elect-lease-duration=1s \
  --leader-elect-renew-deadline=500ms --leader-elect-retry-period=100ms --grace-period=0s -- echo ran 2>/dev/null)
check "the bounds themselves are accepted ($out)" test "$out" = ran

# ---- --http-address: malformed is a usage error, checked before anything starts (item 8) ----
exact_error 2 '--http-address "8090": want HOST:PORT, :PORT or [IPV6]:PORT' serve --lock "$nolock" --http-address=8090
exact_error 2 '--http-address ":http": port "http" is not a number from 0 to 65535' run --lock "$nolock" --http-address=:http -- true
exact_error 2 '--http-address "::1:8090": an IPv6 host goes in brackets: [IPV6]:PORT' serve --lock "$nolock" --http-address=::1:8090
LEASEHOLD_HTTP_ADDRESS='127.0.0.1:99999' exact_error 2 'LEASEHOLD_HTTP_ADDRESS "127.0.0.1:99999": port "99999" is not a number from 0 to 65535' serve --lock "$nolock"

# ---- an identity with a control character is refused, not logged as two lines (item 9) ----
exact_error 2 '--identity: contains the control character \x0a (an identity is written into log lines and the lease)' run --lock "$nolock" --identity $'a\nb' -- true
LEASEHOLD_IDENTITY=$'x\ty' exact_error 2 'LEASEHOLD_IDENTITY: contains the control character \x09 (an identity is written into log lines and the lease)' serve --lock "$nolock"
POD_NAME=$'pod\r' exact_error 2 'POD_NAME: contains the control character \x0d (an identity is written into log lines and the lease)' serve --lock "$nolock"
# A value echoed in an error stays on one line.
exact_error 2 '--log-format: "a\x0ab" is not text or json' serve --lock "$nolock" --log-format=$'a\nb'
# Item 1: the identity checks that once looped end at once.
err=$(timeout 5 "$bin" run --coordinated --binary-version=1.36.3 --identity Foo --lock k8s://ns/app -- true 2>&1 >"$dir/stdout"); rc=$?
check "coordinated with an identity the rewrite once looped on: exit 2, one line, at once (rc $rc): $err" \
  test $rc -eq 2 -a "$(wc -l <<<"$err")" -eq 1 -a ! -s "$dir/stdout"

# ---- no arguments, help, version (item 8) ----
err=$("$bin" 2>&1 >"$dir/stdout"); rc=$?
check "no arguments: the usage on stderr, exit 2 (rc $rc)" test $rc -eq 2 -a ! -s "$dir/stdout"
check "no arguments: it is the usage" grep -q '^usage:' <<<"$err"
usage=$("$bin" help 2>"$dir/stderr"); rc=$?
check "help: the usage on stdout, exit 0 (rc $rc)" test $rc -eq 0 -a ! -s "$dir/stderr" -a "$usage" = "$err"
for h in --help -h; do
  check "leasehold $h is leasehold help" test "$("$bin" $h)" = "$usage"
done
for cmd in run serve status observe release handoff; do
  for h in --help -h; do
    out=$("$bin" $cmd $h 2>"$dir/stderr"); rc=$?
    check "$cmd $h: its help on stdout, exit 0 (rc $rc)" test $rc -eq 0 -a ! -s "$dir/stderr" \
      -a -n "$(grep "^usage: leasehold $cmd" <<<"$out")"
  done
  check "help $cmd is $cmd --help" test "$("$bin" help $cmd)" = "$("$bin" $cmd --help)"
done
exact_error 2 'help: no topic "bogus" (topics: run, serve, status, observe, release, handoff)' help bogus
exact_error 2 'version: takes no arguments' version extra
want_version=$(sed -n 's/^project(leasehold VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../../CMakeLists.txt")
for v in version --version; do
  out=$("$bin" $v 2>"$dir/stderr"); rc=$?
  check "leasehold $v: the project's version ($out, want $want_version)" \
    test $rc -eq 0 -a "$out" = "leasehold $want_version" -a ! -s "$dir/stderr"
done
# The top-level usage lists every lock scheme the binary knows (the unknown-scheme error lists them).
supported=$("$bin" status zk://x 2>&1 | sed -n 's/.*(supported: \(.*\))$/\1/p' | tr ',' '\n' | sed 's/^ *//; s/:.*//')
check "the unknown-scheme error lists the schemes ($(echo $supported))" test "$(wc -w <<<"$supported")" -ge 7
for scheme in $supported; do
  check "the usage lists $scheme://" grep -q "^  $scheme://" <<<"$usage"
done
check "the usage states the exit codes" grep -q '2 for bad usage' <<<"$usage"

# ---- bad lock URLs ----
one_line_error 2 'unknown scheme "zk"' serve --lock zk://x
one_line_error 2 'lock URL "file://relative/x"' serve --lock file://relative/x
one_line_error 2 'does not exist' serve --lock file:///no/such/dir/x
one_line_error 2 'lock URL "k8s://onlyns"' serve --lock k8s://onlyns
# A bad lock is a usage error even when the HTTP port is taken too: the lock
# is checked before the port is bound (make stress-test once saw exit 1 from
# the bind on :8090, taken by another test, instead).
exec {held}< <(python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)')
port_holder=$!
read -r taken <&$held
one_line_error 2 'unknown scheme "zk"' serve --lock zk://x --http-address="127.0.0.1:$taken"
kill "$port_holder" 2>/dev/null
exec {held}<&-
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
# An empty name once matched the first directory of PATH, campaigned, and
# failed only as leader.
one_line_error 127 "cannot start \"\": the command's name is empty" run --lock "$lock" --identity a "${fast[@]}" -- ""
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

# ---- a lock file too large: reported with its true size (item 9) ----
head -c 3145728 /dev/zero | tr '\0' ' ' >"$dir/big.lease"
err=$("$bin" status "file://$dir/big.lease" 2>&1 >"$dir/stdout"); rc=$?
check "a 3 MB lock file: exit 1, its true size (rc $rc): $err" test $rc -eq 1 -a ! -s "$dir/stdout" \
  -a "$err" = "leasehold: Invalid: $dir/big.lease: record is 3145728 bytes; at most 65536 expected"

# ---- status shows what the contract trusts, labelled (item 9) ----
# A holder whose clock runs an hour behind ours: its renewTime is an hour old
# here. status shows the record's lease and that the age is by the remote
# clock; it never says "expired" (an elector would time the lease itself).
skew="$dir/skew.lease"
renewed=$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%S.000000Z)
printf '{"kind":"leasehold.io/file-lock","apiVersion":1,"generation":1,"holderIdentity":"h","leaseDurationSeconds":15,"acquireTime":"%s","renewTime":"%s","leaseTransitions":2,"strategy":"","preferredHolder":""}\n' \
  "$renewed" "$renewed" >"$skew"
chmod 600 "$skew"
out=$("$bin" status "file://$skew")
check "status labels the remote-clock column ($(head -n1 <<<"$out"))" grep -q 'RENEWED AGO (REMOTE CLOCK)' <<<"$out"
check "status row: lease 15s, renewed ~3600s ago by the remote clock ($(tail -n1 <<<"$out"))" \
  grep -qE '^h +[0-9TZ:.-]+ +[0-9TZ:.-]+ +15s +360[0-9]\.[0-9]s +2$' <<<"$(tail -n1 <<<"$out")"
check "status draws no 'expired' verdict" test -z "$(grep -i expire <<<"$out")"
out=$("$bin" status -o json "file://$skew")
check "status json: renewed_ago_seconds_remote_clock ($out)" grep -qE '"renewed_ago_seconds_remote_clock":360[0-9]\.' <<<"$out"

# ---- an undecodable file lock: an explicit, safe repair (item 9) ----
broken="$dir/broken.lease"
printf 'garbage\n' >"$broken"; chmod 600 "$broken"
cp "$broken" "$dir/broken.orig"
err=$("$bin" release "file://$broken" --force 2>&1 >"$dir/stdout"); rc=$?
check "release --force on an undecodable record: exit 1, one line pointing at --repair (rc $rc): $err" \
  test $rc -eq 1 -a ! -s "$dir/stdout" -a "$err" = "leasehold: release file://$broken: the record does not decode ($broken: not valid JSON (torn or foreign file?)); no elector can use this lock until it is replaced: leasehold release file://$broken --force --repair (prints what it found first)"
exact_error 2 'release: --repair needs --force too (it replaces the record)' release "file://$broken" --repair
exact_error 2 'release: --repair is for file:// locks (their record can be a torn or foreign file)' release mem://x --force --repair
err=$("$bin" release "file://$broken" --force --repair 2>&1 >"$dir/stdout"); rc=$?
check "--repair of a file written just now is refused, one line (rc $rc): $err" \
  test $rc -eq 1 -a ! -s "$dir/stdout" -a "$(wc -l <<<"$err")" -eq 1 -a -n "$(grep -F 'does not decode: not valid JSON (torn or foreign file?); not replaced: it was written less than 60s ago' <<<"$err")"
check "...and the file is untouched" cmp -s "$broken" "$dir/broken.orig"
touch -d '2 minutes ago' "$broken"
out=$("$bin" release "file://$broken" --force --repair 2>"$dir/stderr"); rc=$?
check "--repair of a broken file 2 minutes old: exit 0, says what it found ($out)" test $rc -eq 0 -a ! -s "$dir/stderr" -a \
  -n "$(grep -E "^found $broken \(8 bytes, last written 1[0-9]{2}s ago, begins \"garbage\\\\x0a\"\) does not decode: not valid JSON" <<<"$out")"
check "...and replaced it with a free record" grep -q '"exists":true,"holder":""' <<<"$("$bin" status -o json "file://$broken")"
out=$("$bin" run --lock "file://$broken" --identity after-repair "${fast[@]}" -- echo led 2>/dev/null)
check "an elector leads on the repaired lock ($out)" test "$out" = led
err=$("$bin" release "file://$broken" --force --repair 2>&1 >/dev/null); rc=$?
check "--repair of a record that decodes does nothing (rc $rc): $err" test $rc -eq 1 -a -n "$(grep -F 'the record decodes' <<<"$err")"

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
