#!/usr/bin/env bash
# make stress-test [STRESS_ITERATIONS=10]: the `integration` and `interop`
# labels of ctest, N times, while a CPU burner keeps both cores busy, so
# waits that assume a fast machine show up. Prints each iteration's failures
# and, at the end, the failures by test. Not part of make test.
#   scripts/stress_test.sh BUILD_DIR ITERATIONS
set -uo pipefail
build=$1
iterations=${2:-10}
burners=$(nproc)
log_dir=$build/stress-test
mkdir -p "$log_dir"
echo "stress-test: $iterations iterations of ctest -L 'integration|interop' under $burners CPU burners; logs in $log_dir"
pids=()
for _ in $(seq "$burners"); do
  python3 -c 'while True: pass' &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
declare -A failures=()
total=0
for i in $(seq "$iterations"); do
  started=$(date +%s)
  ctest --test-dir "$build" -L 'integration|interop' -j 2 --output-on-failure >"$log_dir/run-$i.log" 2>&1
  failed=$(awk '/^The following tests FAILED:/ {on = 1; next} on && /^[[:space:]]+[0-9]+ - / {print $3}' \
    "$log_dir/run-$i.log")
  n=$(grep -c . <<<"$failed")
  [[ -z $failed ]] && n=0
  total=$((total + n))
  for t in $failed; do failures[$t]=$(( ${failures[$t]:-0} + 1 )); done
  echo "iteration $i/$iterations: $n failed in $(( $(date +%s) - started )) s${failed:+: $(tr '\n' ' ' <<<"$failed")}"
done
echo "failures by test:"
for t in "${!failures[@]}"; do echo "  ${failures[$t]} x $t"; done
[[ $total -eq 0 ]] && echo "  none"
echo "stress-test: $iterations iterations, $total failures"
exit $((total > 0))
