#!/usr/bin/env bash
# The sidecar's HTTP endpoints on the file lock: `serve` and `run` as leader
# and as follower (/healthz, /readyz, /leader, /metrics), a leader stepping
# down on time while the lock store is stuck (another process holds the file
# lock's flock, so the leader cannot renew), a taken port refused before
# campaigning, and malformed or slow clients answered without harm.
# Needs only bash (HTTP through /dev/tcp) and flock(1).
set -uo pipefail
bin=$1
source "$(dirname "$0")/cli_lib.sh"
cli_setup endpoints

# http PORT PATH [RAW-REQUEST]: prints the whole response (status line first).
http() {
  local port=$1 path=$2 req=${3:-}
  [[ -n "$req" ]] || printf -v req 'GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n' "$path"
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%s' "$req" >&3
  timeout 10 cat <&3
  exec 3<&-
}
code() { http "$1" "$2" | head -n1 | cut -d' ' -f2; }
body() { http "$1" "$2" | sed '1,/^\r$/d'; }
port_of() { # log file: waits for the "serving ... on http://HOST:PORT" line
  for _ in $(seq 200); do
    local p; p=$(sed -n 's/.*serving .* on http:\/\/[^ ]*:\([0-9]*\)$/\1/p' "$1" | head -n1)
    [[ -n "$p" ]] && { echo "$p"; return 0; }
    sleep 0.05
  done
  return 1
}
is_code() { test "$(code "$1" "$2")" = "$3"; }  # port path status
has_metric() { body "$1" /metrics | grep -qE "$2"; }  # port regex

# ---- serve: a leader and a follower ----
"$bin" serve --lock "$lock" --identity alpha --http-address=127.0.0.1:0 "${fast[@]}" 2>"$dir/alpha.log" &
alpha=$!
pa=$(port_of "$dir/alpha.log") || fail "alpha never said where it serves: $(cat "$dir/alpha.log")"
wait_for 5 is_holder alpha || fail "alpha never led"
"$bin" serve --lock "$lock" --identity beta --http-address=127.0.0.1:0 "${fast[@]}" 2>"$dir/beta.log" &
beta=$!
pb=$(port_of "$dir/beta.log") || fail "beta never said where it serves"
wait_for 5 grep -q "leader is now alpha" "$dir/beta.log" || fail "beta never saw alpha"

check "leader /healthz 200" test "$(code "$pa" /healthz)" = 200
check "leader /readyz 200" test "$(code "$pa" /readyz)" = 200
check "follower /healthz 200" test "$(code "$pb" /healthz)" = 200
check "follower /readyz 503" test "$(code "$pb" /readyz)" = 503
out=$(body "$pb" /readyz)
check "follower /readyz names the leader ($out)" grep -q "not leading: the leader is alpha" <<<"$out"
j=$(body "$pa" /leader)
check "leader /leader JSON ($j)" grep -q '"identity":"alpha".*"phase":"leading","leading":true,"holder":"alpha","term":0,"transitions":0,"seconds_left":[0-9.]*,"renew_deadline_seconds_left":[0-9.]*' <<<"$j"
j=$(body "$pb" /leader)
check "follower /leader JSON ($j)" grep -q '"identity":"beta".*"phase":"following","leading":false,"holder":"alpha","term":null,"transitions":0,"seconds_left":[0-9.]*,"renew_deadline_seconds_left":null' <<<"$j"
m=$(body "$pa" /metrics)
n="name=\"$lock\""
check "leader master_status 1" grep -qxF "leader_election_master_status{$n} 1" <<<"$m"
check "leader holder info" grep -qxF "leasehold_leader_info{$n,holder=\"alpha\"} 1" <<<"$m"
if wait_for 3 has_metric "$pa" "^leasehold_renewals_total\{$n\} [1-9][0-9]*$"; then
  pass "leader renewals counted"
else  # seen once in CI, not reproduced: say what the leader counted and logged
  fail "leader renewals counted; its renewal metrics: $(body "$pa" /metrics | grep -E 'renew|failed|master' | tr '\n' ' ')"
  echo "alpha's log, last lines:"; tail -n 20 "$dir/alpha.log"
fi
check "leader renew histogram count > 0" has_metric "$pa" "^leasehold_renew_duration_seconds_count\{$n\} [1-9][0-9]*$"
check "leader lease seconds left" grep -qE "^leasehold_lease_seconds_left\{$n\} [0-9.]+$" <<<"$m"
m=$(body "$pb" /metrics)
check "follower master_status 0" grep -qxF "leader_election_master_status{$n} 0" <<<"$m"
check "follower sees holder alpha" grep -qxF "leasehold_leader_info{$n,holder=\"alpha\"} 1" <<<"$m"
check "HEAD has no body" test "$(http "$pa" /healthz $'HEAD /healthz HTTP/1.1\r\n\r\n' | sed '1,/^\r$/d' | wc -c)" = 0

# ---- bad clients ----
check "malformed request -> 400" test "$(http "$pa" / $'NONSENSE\r\n\r\n' | head -n1 | cut -d' ' -f2)" = 400
printf -v big 'GET / HTTP/1.1\r\nX-Pad: %s\r\n\r\n' "$(head -c 10000 /dev/zero | tr '\0' a)"
check "oversized request -> 431" test "$(http "$pa" / "$big" | head -n1 | cut -d' ' -f2)" = 431
check "POST -> 405" test "$(http "$pa" /healthz $'POST /healthz HTTP/1.1\r\n\r\n' | head -n1 | cut -d' ' -f2)" = 405
exec 4<>"/dev/tcp/127.0.0.1/$pa"  # a slow client: connects, sends half a line, waits
printf 'GET /hea' >&4
check "answers others while a slow client waits" test "$(code "$pa" /healthz)" = 200
slow=$(timeout 10 cat <&4 | head -n1 | cut -d' ' -f2)
exec 4<&-
check "slow client gets 408 and is closed" test "$slow" = 408

# ---- a taken port: refused before campaigning ----
out=$("$bin" serve --lock "$lock" --identity gamma --http-address="127.0.0.1:$pa" "${fast[@]}" 2>&1); rc=$?
check "taken port: one line, exit 1 ($out)" test $rc -eq 1 -a "$(wc -l <<<"$out")" -eq 1
check "taken port: names the address and the error" grep -q "http-address \"127.0.0.1:$pa\": bind: Address already in use" <<<"$out"
out=$("$bin" serve --lock "$lock" --http-address=nonsense 2>&1); rc=$?
check "bad address: exit non-zero, names it ($out)" test $rc -ne 0 -a -n "$(grep 'http-address "nonsense"' <<<"$out")"
out=$("$bin" serve --lock "$lock" -- sleep 1 2>&1); rc=$?
check "serve refuses a command ($rc)" test $rc -eq 2 -a -n "$(grep 'serve: runs no command' <<<"$out")"

# ---- a stuck store: the leader's renewals time out on a held flock. The
# file lock never blocks the I/O thread, so the leader steps down at its
# renew deadline: not ready, not master, and healthy (nothing is stuck; the
# verdict for "believes it leads past its deadline" is unit-tested). ----
flock "$dir/t.lease.lock" sleep 4 &
blocker=$!
check "stuck store: the leader steps down at its deadline: /readyz 503" wait_for 4 is_code "$pa" /readyz 503
m=$(body "$pa" /metrics)
check "stuck store: master_status 0" grep -qxF "leader_election_master_status{$n} 0" <<<"$m"
check "stuck store: /healthz stays 200 (it stepped down on time)" test "$(code "$pa" /healthz)" = 200
wait $blocker
a_leader() { local h; h=$(holder); [[ $h == alpha || $h == beta ]]; }
check "after the store recovers: a leader again" wait_for 8 a_leader
check "after the store recovers: /healthz 200" is_code "$pa" /healthz 200

# ---- SIGTERM: the leader releases; the follower leads and says so ----
h=$(holder)
if [[ "$h" == alpha ]]; then lead=$alpha; fp=$pb; fid=beta; else lead=$beta; fp=$pa; fid=alpha; fi
# The follower counts a change when the holder it sees changes. After the
# stuck store it may not have seen the new term yet (and still see itself,
# its own last term): then its taking over again is no change. So: one more
# than before if it saw the other, at least as many otherwise.
changes() { body "$fp" /metrics | grep -F "leasehold_leader_changes_total{$n} " | awk '{print $2}'; }
seen_before=$(body "$fp" /leader | sed -n 's/.*"holder":"\([^"]*\)".*/\1/p')
changes_before=$(changes)
kill -TERM $lead
wait $lead; rc=$?
check "serve exits 0 on SIGTERM" test $rc -eq 0
check "the other takes over: its /readyz 200" wait_for 5 is_code "$fp" /readyz 200
m=$(body "$fp" /metrics)
check "new leader: master_status 1" grep -qxF "leader_election_master_status{$n} 1" <<<"$m"
want=$changes_before
[[ "$seen_before" != "$fid" ]] && want=$((changes_before + 1))
check "new leader: leader changes counted ($changes_before before, saw ${seen_before:-nobody}; want >= $want)" \
  test "$(changes)" -ge "$want"
kill -TERM $alpha $beta 2>/dev/null
wait $alpha $beta 2>/dev/null

# ---- run: the same endpoints beside a child ----
"$bin" run --lock "$lock" --identity runner --http-address=127.0.0.1:0 "${fast[@]}" -- sleep 30 2>"$dir/run.log" &
runner=$!
pr=$(port_of "$dir/run.log") || fail "run never said where it serves"
check "run: /readyz 200 while leading" wait_for 5 is_code "$pr" /readyz 200
check "run: /leader names it" grep -q '"holder":"runner"' <<<"$(body "$pr" /leader)"
kill -TERM $runner
wait $runner
check "run: port closed after exit" test -z "$(http "$pr" /healthz 2>/dev/null)"

cli_finish "cli endpoints"
