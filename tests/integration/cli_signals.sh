#!/usr/bin/env bash
# Signals of `leasehold run` (issue 13): USR1, USR2 and HUP reach the worker's
# process group and never end the signal thread (SIGTERM still stops the
# worker and releases afterwards); as PID 1 of a PID namespace the sidecar
# reaps orphans that are not its worker's (no zombie stays).
set -uo pipefail
bin=$1
source "$(dirname "$0")/cli_lib.sh"
cli_setup signals
cat >"$dir/worker.sh" <<'SH'
#!/bin/bash
trap 'echo usr1 >>"$OUT"' USR1
trap 'echo usr2 >>"$OUT"' USR2
trap 'echo hup >>"$OUT"' HUP
echo started >>"$OUT"
while :; do sleep 0.05; done
SH
chmod +x "$dir/worker.sh"

OUT="$dir/out" "$bin" run --lock "$lock" --identity a "${fast[@]}" -- "$dir/worker.sh" 2>"$dir/a.log" &
sidecar=$!
check "the worker started" wait_for 5 grep -qs started "$dir/out"
for sig in USR1 USR2 HUP; do
  kill -"$sig" "$sidecar"
  lower=$(tr 'A-Z' 'a-z' <<<"$sig")
  check "SIG$sig forwarded to the worker" wait_for 3 grep -q "^$lower\$" "$dir/out"
done
check "the sidecar still runs after USR1, USR2, HUP" kill -0 "$sidecar"
kill -TERM "$sidecar"
check "SIGTERM still stops it (after the other signals)" wait_for 5 bash -c "! kill -0 $sidecar 2>/dev/null"
wait "$sidecar" 2>/dev/null
check "the lease was released" wait_for 3 is_holder ""

# As PID 1: an orphan re-parented to the sidecar (not in the worker's tree) is reaped.
if unshare --pid --fork --mount-proc true 2>/dev/null; then
  unshare --pid --fork --mount-proc --kill-child "$bin" run --lock "file://$dir/pid1.lease" --identity p \
    "${fast[@]}" -- sleep 30 2>"$dir/p.log" &
  ns_pid=""
  for _ in $(seq 50); do  # the sidecar is the unshare child: PID 1 inside
    ns_pid=$(pgrep -f "leasehold run --lock file://$dir/pid1.lease" | while read -r p; do
      [[ $(awk '{print $1}' /proc/"$p"/status 2>/dev/null) ]] || continue
      grep -q '^NSpid:.*[[:space:]]1$' /proc/"$p"/status && echo "$p"; done | head -n1)
    [[ -n $ns_pid ]] && break
    sleep 0.1
  done
  check "the sidecar is PID 1 in its namespace" test -n "$ns_pid"
  if [[ -n $ns_pid ]]; then
    # A shell in the namespace starts a short sleep and exits: the sleep is orphaned to PID 1.
    nsenter -t "$ns_pid" -p -m -- sh -c '(sleep 0.3 &) ; exit 0'
    sleep 1.5
    zombies=$(nsenter -t "$ns_pid" -p -m -- ps -eo stat=,comm= | awk '$1 ~ /^Z/' | wc -l)
    check "no zombie left in the namespace ($zombies)" test "$zombies" -eq 0
    kill -TERM "$ns_pid"
    check "PID 1 sidecar stops on SIGTERM" wait_for 5 bash -c "! kill -0 $ns_pid 2>/dev/null"
  fi
else
  fail "unshare --pid is not permitted here: the PID-1 reaping could not be tested"
fi

cli_finish "cli signals"
