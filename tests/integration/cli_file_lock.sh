#!/usr/bin/env bash
# The leasehold command on the file lock: the child runs only while leading,
# gets its environment, is stopped on SIGTERM before the lease is released,
# and bad input gives one clear line and a non-zero exit.
set -uo pipefail
bin=$1
source "$(dirname "$0")/cli_lib.sh"
cli_setup cli

expect_error() { # expected-substring, args...
  local want=$1; shift
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  if [[ $rc -ne 0 && "$out" == *"$want"* ]]; then pass "leasehold $* -> $want"
  else fail "leasehold $*: rc=$rc, output: $out"; fi
}
expect_error "unknown flag --bogus" run --bogus -- true
expect_error "not a duration" run --lock "$lock" --leader-elect-lease-duration=fast -- true
expect_error "--leader-elect-lease-duration: must be greater than --leader-elect-renew-deadline" run --lock "$lock" --leader-elect-lease-duration=5s -- true
expect_error "unknown scheme" run --lock "zk://x" -- true
expect_error "does not exist" run --lock "file:///no/such/dir/x" -- true
expect_error "no command given" run --lock "$lock"
expect_error "unknown command" frobnicate
expect_error "not found in PATH" run --lock "$lock" --identity a "${fast[@]}" -- no-such-program-xyz
if pgrep -f "no-such-program-xyz" >/dev/null; then fail "left something running"; else pass "nothing left running"; fi

# Leader runs the child with its environment; exit status propagates (--on-child-exit=exit).
out=$("$bin" run --lock "$lock" --identity alpha "${fast[@]}" -- bash -c 'echo "$LEASEHOLD_IDENTITY $LEASEHOLD_LEASE term=$LEASEHOLD_TERM"; exit 7' 2>"$dir/alpha.log")
rc=$?
[[ $rc -eq 7 ]] && pass "exit status of the child (7)" || fail "exit status $rc, want 7"
[[ "$out" == "alpha $lock term=0" ]] && pass "child environment: $out" || fail "child environment: $out"
holder=$("$bin" status "$lock" -o json | sed -n 's/.*"holder":"\([^"]*\)".*/\1/p')
[[ -z "$holder" ]] && pass "lease released after the child exited" || fail "lease still held by $holder"

# A standby never runs its child; SIGTERM stops the leader's child, then releases.
"$bin" run --lock "$lock" --identity one "${fast[@]}" -- bash -c 'echo started >> '"$dir"'/one.txt; trap "echo stopped >> '"$dir"'/one.txt; exit 0" TERM; while :; do sleep 0.1; done' 2>"$dir/one.log" &
one=$!
for _ in $(seq 100); do [[ -s "$dir/one.txt" ]] && break; sleep 0.05; done
"$bin" run --lock "$lock" --identity two "${fast[@]}" -- bash -c 'echo started >> '"$dir"'/two.txt; sleep 30' 2>"$dir/two.log" &
two=$!
sleep 1
[[ ! -e "$dir/two.txt" ]] && pass "standby did not run its child" || fail "standby ran its child"
kill -TERM $one
wait $one; rc=$?
[[ $rc -eq 0 ]] && pass "leader exited 0 after SIGTERM" || fail "leader exit $rc"
[[ "$(cat "$dir/one.txt")" == $'started\nstopped' ]] && pass "child got SIGTERM before exit" || fail "child log: $(cat "$dir/one.txt")"
for _ in $(seq 100); do [[ -s "$dir/two.txt" ]] && break; sleep 0.05; done
[[ -s "$dir/two.txt" ]] && pass "standby took over after release" || fail "standby never started"
kill -TERM $two; wait $two

# A stderr nobody reads stalls no election: the sidecar's lines wait in a
# bounded queue of their own (dropped past it). Here the standby's stderr is
# a pipe filled before it starts, and never read: its first log line once
# blocked its main thread before it campaigned.
mkfifo "$dir/stalled"
exec {stalled}<>"$dir/stalled"  # a reader that never reads: a full pipe blocks its writers
dd if=/dev/zero of="$dir/stalled" bs=4096 count=64 oflag=nonblock 2>/dev/null  # stops at EAGAIN: full
"$bin" run --lock "$lock" --identity three "${fast[@]}" -- sleep 600 2>"$dir/three.log" &
three=$!
check "three leads" wait_for 5 is_holder three
"$bin" run --lock "$lock" --identity four "${fast[@]}" -- bash -c 'echo started > '"$dir"'/four.txt; exec sleep 600' 2>"$dir/stalled" &
four=$!
sleep 1
kill -TERM $three; wait $three
check "a standby whose stderr is a full pipe takes over" wait_for 10 test -s "$dir/four.txt"
check "... and holds the lease" is_holder four
# Ended: gone from the process table, or a zombie waiting for `wait`.
ended() { [[ ! -e /proc/$1 ]] || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }
kill -TERM $four
if wait_for 10 ended $four; then
  wait $four; rc=$?
  [[ $rc -eq 143 ]] && pass "... and stops on SIGTERM with a stderr still full (exit $rc)" || fail "four exited $rc"
else
  fail "four still runs 10 s after SIGTERM (blocked on its stderr?)"
  kill -KILL $four; wait $four
fi
exec {stalled}<&-

# --enable-leader-election=false runs the command directly.
out=$("$bin" run --enable-leader-election=false -- echo direct)
[[ "$out" == "direct" ]] && pass "--enable-leader-election=false runs CMD directly" || fail "direct run: $out"
out=$(LEASEHOLD_ENABLE_LEADER_ELECTION=false "$bin" run -- echo env)
[[ "$out" == "env" ]] && pass "flags from the environment" || fail "env flag: $out"

cli_finish cli
