#!/usr/bin/env bash
# leasehold handoff on the file lock: two `leasehold run` replicas; the admin
# asks the leader to hand over to the standby by name; the leader's child is
# stopped before the standby's starts, the standby holds the lease, and the
# old leader stands by. Also: a handoff to a replica that is not running
# times out with a message saying why.
set -uo pipefail
bin=$1
source "$(dirname "$0")/cli_lib.sh"
cli_setup handoff
# Each child appends "ID start NS" / "ID stop NS" to one file (one host: date +%s%N orders them).
cat >"$dir/worker.sh" <<'SH'
#!/bin/sh
echo "$LEASEHOLD_IDENTITY start $(date +%s%N)" >>"$EVENTS"
trap 'echo "$LEASEHOLD_IDENTITY stop $(date +%s%N)" >>"$EVENTS"; exit 0' TERM
while :; do sleep 0.05; done
SH
chmod +x "$dir/worker.sh"
worker() {
  EVENTS="$dir/events" "$bin" run --lock "$lock" --identity "$1" "${fast[@]}" --grace-period=500ms -- "$dir/worker.sh" \
    2>"$dir/$1.log" &
}
worker alpha
check "alpha leads" wait_for 5 is_holder alpha
worker beta
sleep 1
check "beta stands by" is_holder alpha

out=$("$bin" handoff "$lock" 2>&1); rc=$?
check "handoff without --to: exit 2 ($out)" test $rc -eq 2
out=$("$bin" handoff "$lock" --to beta --timeout=10s 2>&1); rc=$?
echo "$out"
check "handoff to beta: exit 0" test $rc -eq 0
check "handoff to beta: beta holds the lease" is_holder beta
check "handoff reports the time taken" grep -q "beta now holds" <<<"$out"
wait_for 3 grep -q "beta start" "$dir/events"
a_stop=$(sed -n 's/^alpha stop //p' "$dir/events" | head -n1)
b_start=$(sed -n 's/^beta start //p' "$dir/events" | head -n1)
check "alpha's child stopped (${a_stop:-none}) before beta's started (${b_start:-none})" \
  test -n "$a_stop" -a -n "$b_start" -a "${a_stop:-0}" -lt "${b_start:-0}"
[[ -n $a_stop && -n $b_start ]] && echo "     alpha's child stopped -> beta's child started: $(( (b_start - a_stop) / 1000000 )) ms"
sleep 1.5
check "alpha stands by behind beta" is_holder beta
check "no third start" test "$(grep -c start "$dir/events")" -eq 2

out=$("$bin" handoff "$lock" --to gamma --timeout=2s 2>&1); rc=$?
check "handoff to a replica that is not running: exit 1" test $rc -eq 1
check "it says why ($(tail -n1 <<<"$out" | cut -c1-100)...)" grep -q "gamma has not confirmed it within 2s" <<<"$out"

cli_finish "cli handoff"
