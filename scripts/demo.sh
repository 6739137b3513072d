#!/usr/bin/env bash
# make demo: three candidates compete for one lease (a local file, no cluster
# needed). Only the leader runs the "critical work". We crash the leader, watch
# a standby take over, then stop the new leader politely and watch the hand-off.
set -euo pipefail
bin=${1:-build/leasehold}
dir=$(mktemp -d /tmp/leasehold-demo.XXXXXX)
lock="file://$dir/demo.lease"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

bold=$'\e[1m'; green=$'\e[32m'; dim=$'\e[2m'; red=$'\e[31m'; off=$'\e[0m'
[[ -t 1 ]] || { bold=""; green=""; dim=""; red=""; off=""; }

say() { printf '%s\n' "$*"; }
now_ms() { date +%s%3N; }
holder() { "$bin" status "$lock" -o json 2>/dev/null | sed -n 's/.*"holder":"\([^"]*\)".*/\1/p'; }

say "${bold}leasehold demo${off}: leader election on one machine, with a file as the lock ($dir/demo.lease)."
say "Three copies of a program start. Each wants to do the same critical job (think: rotate"
say "credentials), but it must run in exactly one copy at a time. They agree through a lease:"
say "whoever holds it does the job and renews it every 0.5s; the others stand by."
say ""
for i in 1 2 3; do
  "$bin" run --lock "$lock" --identity "candidate-$i" \
    --leader-elect-lease-duration=4s --leader-elect-renew-deadline=3s --leader-elect-retry-period=500ms \
    -- bash -c 'while :; do echo "  [$LEASEHOLD_IDENTITY] doing the critical work (term $LEASEHOLD_TERM)"; sleep 1; done' \
    >"$dir/candidate-$i.out" 2>"$dir/candidate-$i.log" &
  pids+=($!)
  say "started candidate-$i (pid $!)"
done

show() {
  local h; h=$(holder)
  for i in 1 2 3; do
    local state="${dim}standing by${off}"
    if ! kill -0 "${pids[$((i-1))]}" 2>/dev/null; then state="${red}gone${off}"
    elif [[ "$h" == "candidate-$i" ]]; then state="${green}LEADER - running the job${off}"; fi
    printf '    candidate-%d  %s\n' "$i" "$state"
  done
}

wait_for_leader() { # prints the leader's name once one holds the lease
  local not=${1:-}
  for _ in $(seq 1 200); do
    local h; h=$(holder)
    if [[ -n "$h" && "$h" != "$not" ]]; then echo "$h"; return 0; fi
    sleep 0.05
  done
  echo "none"; return 1
}

leader=$(wait_for_leader)
say ""
say "${bold}1. An election happened.${off} $leader won; the others wait:"
show
sleep 2
say "   What the leader's job printed so far:"
tail -n 2 "$dir/$leader.out"

idx=${leader#candidate-}
say ""
say "${bold}2. Crash:${off} we kill $leader with SIGKILL (no goodbye, like a node dying)."
t0=$(now_ms)
kill -KILL "${pids[$((idx-1))]}"
disown "${pids[$((idx-1))]}" 2>/dev/null || true  # no "Killed" notice from bash later
say "   Its lease still says \"$leader\" for up to 4s, so nobody may start the job until it expires..."
new=$(wait_for_leader "$leader")
t1=$(now_ms)
say "   ${green}$new took over after $(( t1 - t0 )) ms${off} (lease 4s: the standby waited for the crashed leader's lease to run out)."
show
sleep 1.5
tail -n 1 "$dir/$new.out"

idx=${new#candidate-}
say ""
say "${bold}3. Graceful stop:${off} we ask $new to shut down (SIGTERM). It stops its job, then releases the lease."
t0=$(now_ms)
kill -TERM "${pids[$((idx-1))]}"
third=$(wait_for_leader "$new")
t1=$(now_ms)
say "   ${green}$third took over after $(( t1 - t0 )) ms${off} - no waiting for expiry, because the lease was released."
wait "${pids[$((idx-1))]}" 2>/dev/null || true
show
sleep 1.5
tail -n 1 "$dir/$third.out"

say ""
say "${bold}What you saw:${off} at every moment at most one copy ran the job; a crash cost one lease"
say "duration, a clean shutdown cost almost nothing. The lease record now:"
"$bin" status "$lock"
say ""
say "Logs of each candidate were in $dir (removed on exit). Stopping the rest..."
