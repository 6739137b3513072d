# Shared by the cli_*.sh tests (and tests/deploy's scripts, for check, wait_for and
# cli_finish), sourced right after `set -uo pipefail` and `bin=$1`: a temporary
# directory, the pass/fail tally and the helpers every script uses.
#
#   cli_setup NAME     $dir (mktemp), removed on exit after every background
#                      job is killed and waited for (kept when KEEP is set);
#                      $lock (a file lock in it) and $fast (short timings)
#   check WHAT CMD...  pass when CMD succeeds, else fail
#   wait_for S CMD...  polls CMD every 0.1 s for up to S seconds
#   holder, is_holder ID   the holder of $lock, as `leasehold status` reports it
#   cli_finish TITLE   prints the tally; exits 1 if anything failed

cli_setup() {
  dir=$(mktemp -d "/tmp/leasehold-$1-test.XXXXXX")
  trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; [[ ${KEEP:-} ]] || rm -rf "$dir"' EXIT
  lock="file://$dir/t.lease"
  fast=(--leader-elect-lease-duration=3s --leader-elect-renew-deadline=2s --leader-elect-retry-period=250ms)
}
fails=0
passes=0
pass() { echo "ok   $*"; passes=$((passes + 1)); }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # description, command...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
wait_for() { # seconds, command...: polls every 0.1s
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
holder() { "$bin" status "$lock" -o json | sed -n 's/.*"holder":"\([^"]*\)".*/\1/p'; }
is_holder() { test "$(holder)" = "$1"; }
cli_finish() {
  echo "$1: $passes passed, $fails failed"
  exit $((fails > 0))
}
